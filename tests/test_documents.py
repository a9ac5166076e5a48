"""Documents packed into one stream (rnnbptt.datasets.TokenStream.from_documents): each chunk
carries resets where a document begins and masks the target that would cross into the next
one; the Trainer trains on the built-in corpus split into its essays, evaluates each essay
from a zero state, and resumes mid-epoch exactly with the resets its history held."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import data
from rnnbptt.datasets import TokenStream


def essays():
    texts = data.default_essays()
    vocab = data.Vocab.from_text("".join(texts))
    return vocab, [vocab.encode(text) for text in texts]


def test_the_built_in_corpus_splits_into_its_essays():
    texts = data.default_essays()
    assert "".join(texts) == data.default_corpus()
    assert len(texts) == 20
    assert texts[0].startswith("On Remembering, and on Forgetting\n\n")
    assert all(text.splitlines()[1] == "" for text in texts)


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_chunks_reset_at_each_document_and_mask_the_crossing_target(iterator):
    bounds = np.cumsum([0, 7, 13, 3, 25, 11, 40, 9])
    docs = [np.arange(100 + a, 100 + b) for a, b in zip(bounds[:-1], bounds[1:])]  # id = position + 100
    stream = TokenStream.from_documents(docs)
    starts = set(stream.starts.tolist())
    owner = np.concatenate([np.full(len(d), i) for i, d in enumerate(docs)])
    chunks = list(stream.chunks(2, 5, iterator, np.random.default_rng(3), np.float32))
    assert chunks
    for x, y, w, _, resets in chunks:
        position = x - 100  # the ids are the positions plus 100
        assert np.array_equal(resets, np.isin(position, list(starts)))
        crossing = owner[position] != owner[y - 100]
        assert np.array_equal(w == 0, crossing) and w.dtype == np.float32


def test_documents_are_checked():
    with pytest.raises(ValueError, match=r"starts: expected increasing positions in \(0, 5\)"):
        TokenStream(np.arange(5), starts=[3, 2])
    with pytest.raises(ValueError, match=r"starts: expected increasing positions in \(0, 5\)"):
        TokenStream(np.arange(5), starts=[0])
    with pytest.raises(TypeError, match="expected each document as a non-empty 1-D array of integer ids"):
        TokenStream.from_documents([np.arange(3), np.arange(0)])
    with pytest.raises(TypeError, match="starts: expected a 1-D list of integer positions"):
        TokenStream(np.arange(5), starts=[1.5])


def make_trainer(vocab, truncation="regular:5,10", iterator="sequential"):
    model = rb.RNN(len(vocab), 24, len(vocab), cell="gru", seed=4)
    return rb.Trainer(model, vocab=vocab, optimizer="adam", lr=0.01, truncation=truncation, iterator=iterator,
                      batch_size=4, num_steps=10, seed=7)


def test_a_language_model_trains_on_the_essays_packed_into_streams():
    """Trained on 18 essays, scored on the 2 it did not see, each from a zero state: it beats
    the unigram model of the training essays."""
    vocab, docs = essays()
    train, valid = TokenStream.from_documents(docs[:18]), TokenStream.from_documents(docs[18:])
    trainer = make_trainer(vocab)
    before = trainer.evaluate(valid)
    trainer.fit(train, epochs=2)
    after = trainer.evaluate(valid)
    counts = np.bincount(train.ids, minlength=len(vocab)) + 1.0
    unigram = float(np.exp(-np.mean(np.log((counts / counts.sum())[valid.ids]))))
    assert after < before and after < unigram, (before, after, unigram)
    assert "documents" in train.fingerprint() and "in 18 documents" in train.describe()


@pytest.mark.parametrize("chunk", [512, 37])
def test_evaluation_restarts_with_each_document(chunk):
    """Packed documents are scored side by side (lengths end each row), each from a zero
    state: the mean of each document scored alone, weighted by its targets."""
    vocab, docs = essays()
    model = rb.RNN(len(vocab), 24, len(vocab), cell="gru", seed=4, dtype=np.float64)
    trainer = rb.Trainer(model, vocab=vocab, optimizer="adam", lr=0.01, batch_size=4, num_steps=10, seed=7)
    pieces = [doc[: 40 + 97 * i] for i, doc in enumerate(docs[:5])] + [docs[5][:1], docs[6][:2]]
    packed = trainer.evaluate(TokenStream.from_documents(pieces), chunk=chunk)
    scored = [doc for doc in pieces if len(doc) >= 2]
    alone = [trainer._scores(TokenStream(doc), chunk)[0] for doc in scored]
    weights = [len(doc) - 1 for doc in scored]
    assert np.log(packed) == pytest.approx(np.average(alone, weights=weights), rel=1e-12)


@pytest.mark.parametrize("truncation", ["regular:5,10", "full"])
def test_resume_mid_epoch_on_documents_is_exact(tmp_path, truncation):
    """The checkpoint holds no flags: on resume, the chunks replayed to the interruption give
    the resets the runner's history held (some essays start inside it)."""
    vocab, docs = essays()
    stream = TokenStream.from_documents([doc[a : a + 23] for doc in docs for a in range(0, 230, 23)])
    uninterrupted = make_trainer(vocab, truncation)
    uninterrupted.fit(stream, steps=40)
    continued = make_trainer(vocab, truncation)
    continued.fit(stream, steps=23)
    if truncation != "full":  # an essay starts inside the history the next chunk reaches into
        assert len(continued.runner.history) == 3 and continued.runner.history[2].any()
    path = continued.save(tmp_path / "mid.safetensors")
    resumed = rb.Trainer.resume(path)
    resumed.fit(stream, steps=40)
    assert resumed.step == uninterrupted.step
    assert np.array_equal(resumed.model.params, uninterrupted.model.params)


def test_the_docs_example_beats_the_unigram_model():
    """docs/other-data.md's packed-documents example, run as a reader would."""
    import contextlib
    import io
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "other-data.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", page, re.S)[2]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "docs/other-data.md", "exec"), {})
    found = re.search(r"in 18 documents; held-out perplexity ([\d.]+), unigram ([\d.]+)", printed.getvalue())
    assert found, printed.getvalue()
    ours, unigram = map(float, found.groups())
    assert ours < 0.85 * unigram, printed.getvalue()


def test_the_command_line_trains_on_documents_and_resumes_with_them(tmp_path, monkeypatch, capsys):
    """rnnbptt train --documents: the built-in corpus's essays (whole ones held out) or a
    --text file's documents; --resume remembers it, and another separator is one line, exit 2."""
    from rnnbptt.cli import main

    monkeypatch.chdir(tmp_path)
    base = "train --hidden 16 --cell gru --epochs 1 --batch-size 4 --num-steps 10 --sample-length 5"
    assert main([*base.split(), "--documents"]) == 0
    out = capsys.readouterr().out
    assert "training on the built-in corpus (20 documents, 3 held out)" in out, out
    saved = rb.Trainer.resume(tmp_path / "rnnbptt-checkpoint.safetensors")
    assert saved.data["documents"] == data.DOCUMENT_SEPARATOR and saved.data["source"] == "built-in"
    assert main(["train", "--resume", "rnnbptt-checkpoint.safetensors", "--epochs", "2"]) == 0
    assert "(20 documents, 3 held out)" in capsys.readouterr().out
    assert main(["train", "--resume", "rnnbptt-checkpoint.safetensors", "--epochs", "3", "--documents", "==="]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --documents: expected <|endoftext|>" in err, err

    assert main([*base.split(), "--checkpoint", "plain.safetensors"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "plain.safetensors", "--epochs", "2", "--documents"]) == 2
    err = capsys.readouterr().err
    assert "argument --documents: plain.safetensors was trained with no --documents" in err, err

    text = "".join(f"document {i}: " + "abc def " * (40 + 9 * i) + f"\n{'===' if i < 5 else ''}\n" for i in range(6))
    (tmp_path / "docs.txt").write_text(text, encoding="utf-8")
    assert main([*base.split(), "--text", "docs.txt", "--documents", "===", "--checkpoint", "docs.safetensors"]) == 0
    assert "docs.txt (6 documents, 1 held out)" in capsys.readouterr().out
    assert data.split_documents(text, "===")[0].startswith("document 0:")
    assert len(data.split_documents(text, "===")) == 6


def test_document_mistakes_are_one_line(tmp_path, monkeypatch, capsys):
    from rnnbptt.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["train", "--hidden", "8", "--steps", "1", "--batch-size", "2", "--num-steps", "5"]
    (tmp_path / "inline.txt").write_text("one<|endoftext|>two<|endoftext|>three " * 20, encoding="utf-8")
    (tmp_path / "short.txt").write_text("abcdef " * 30 + "\n<|endoftext|>\nx", encoding="utf-8")
    (tmp_path / "s.npz").write_bytes(b"")
    for args, expected in [
        (["--text", "inline.txt", "--documents"], "argument --documents: expected <|endoftext|> on lines of its own"),
        (["--text", "short.txt", "--documents"], "argument --valid-fraction: the documents it holds out have fewer "
                                                 "than 2 tokens each"),
        (["--data", "s.npz", "--documents"], "argument --documents: applies to text, not to --data"),
    ]:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
