"""Vocabulary, d2l preprocessing and iterators, splits, and the Time Machine download."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from rnnbptt import data

SHARED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "timemachine.txt"
needs_text = pytest.mark.skipif(
    not SHARED_TEXT.exists(), reason="needs The Time Machine text beside the repository (shared/data)"
)


def test_vocab_round_trip_and_files(tmp_path):
    text = "héllo, wörld — ünïcode ok\n"
    vocab = data.Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and vocab.decode(ids) == text
    assert vocab.tokens[:2] == [" ", "l"]  # most frequent first, ties by first use
    vocab.save(tmp_path / "vocab.json")
    assert data.Vocab.load(tmp_path / "vocab.json") == vocab
    with pytest.raises(ValueError, match=r"text: expected characters of the vocabulary, got 'z' \(U\+007A\)"):
        vocab.encode("z")
    with_unknown = data.Vocab.from_text(text, unknown=True)
    assert with_unknown.tokens[0] == data.UNKNOWN
    assert with_unknown.decode(with_unknown.encode("z")) == data.UNKNOWN


@pytest.mark.parametrize("surrogate", ["\ud800", "\udbff", "\udc00", "\udcff", "\udfff"])
@pytest.mark.parametrize("position", [0, 2, 7])
def test_a_vocabulary_is_never_built_from_text_that_utf8_cannot_encode(tmp_path, surrogate, position):
    """A lone surrogate is a Python string that no UTF-8 file (vocab.json, a checkpoint) can hold:
    refused where the vocabulary is built, naming its index, rather than when it is saved."""
    text = "abcdefghij"[:position] + surrogate + "abcdefghij"[position:]
    with pytest.raises(UnicodeEncodeError):  # what saving such a vocabulary used to raise
        text.encode("utf-8")
    code = f"U\\+{ord(surrogate):04X}"
    with pytest.raises(ValueError, match=f"text: expected text that UTF-8 can encode, got the lone surrogate "
                                         f"{code} at index {position}$"):
        data.Vocab.from_text(text)
    with pytest.raises(ValueError, match=f"text: .* at index {position}$"):
        data.Vocab.from_text(text, unknown=True)
    symbols = list("abcdefghij")
    symbols.insert(position, surrogate)
    with pytest.raises(ValueError, match=f"tokens: expected symbols that UTF-8 can encode, got the lone "
                                         f"surrogate {code} at index {position}$"):
        data.Vocab(symbols)
    symbols[position] = "x" + surrogate  # inside a longer symbol
    with pytest.raises(ValueError, match=f"tokens: .*{code} in the symbol .* at index {position}$"):
        data.Vocab(symbols)
    escaped = json.dumps({"tokens": ["a", surrogate]})  # JSON's \uXXXX escapes can spell one
    with pytest.raises(ValueError, match=f"tokens: .*{code} at index 1$"):
        data.Vocab.from_json(escaped)
    (tmp_path / "vocab.json").write_text(escaped, encoding="utf-8")
    with pytest.raises(ValueError, match=f"tokens: .*{code} at index 1$"):
        data.Vocab.load(tmp_path / "vocab.json")


def test_text_that_utf8_can_encode_still_builds_and_saves(tmp_path):
    text = "a\U0001F600b\u20ac\ufffd\x00"  # astral, BMP, the replacement character, NUL: all encodable
    vocab = data.Vocab.from_text(text)
    vocab.save(tmp_path / "vocab.json")
    assert data.Vocab.load(tmp_path / "vocab.json") == vocab
    assert vocab.decode(vocab.encode(text)) == text


@needs_text
def test_d2l_preprocessing_gives_28_symbols():
    text = data.d2l_preprocess(SHARED_TEXT.read_text())
    vocab = data.Vocab.from_text(text, unknown=True)
    assert len(vocab) == 28
    assert set(text) == set("abcdefghijklmnopqrstuvwxyz ")
    assert text.startswith("the time machine by h g wells")
    assert vocab.tokens[:3] == [data.UNKNOWN, " ", "e"]  # d2l's order: <unk>, then by frequency


def test_sequential_batches_continue_each_other():
    corpus = np.arange(1000, dtype=np.int64)
    rng = np.random.default_rng(0)
    batches = list(data.sequential_batches(corpus, 4, 7, rng))
    assert all(x.shape == (7, 4) and x.flags.c_contiguous and y.flags.c_contiguous for x, y in batches)
    for x, y in batches:
        assert np.array_equal(y, x + 1)  # next-token targets
    for b in range(4):  # each column is one contiguous stream across batches
        stream = np.concatenate([x[:, b] for x, _ in batches])
        assert np.array_equal(np.diff(stream), np.ones(len(stream) - 1))
    assert len(batches) == ((1000 - batches[0][0][0, 0] - 1) // 4) // 7


def test_random_batches_are_disjoint_subsequences():
    corpus = np.arange(1000, dtype=np.int64)
    batches = list(data.random_batches(corpus, 5, 9, np.random.default_rng(1)))
    starts = []
    for x, y in batches:
        assert x.shape == (9, 5) and np.array_equal(y, x + 1)
        assert np.array_equal(np.diff(x, axis=0), np.ones((8, 5)))
        starts += list(x[0])
    assert len(set(starts)) == len(starts)
    assert len({s % 9 for s in starts}) == 1  # all on one grid of num_steps
    assert starts != sorted(starts)  # shuffled


def test_iterators_reject_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        next(data.sequential_batches(np.arange(100), 0, 5, rng))
    with pytest.raises(ValueError, match=r"corpus: expected at least 41 tokens .* got 20"):
        next(data.random_batches(np.arange(20), 7, 5, rng))
    with pytest.raises(ValueError, match=r"valid_fraction: expected a value in \[0, 1\), got 1.0"):
        data.split(np.arange(10), 1.0)


def test_split_and_read_text(tmp_path):
    train, valid = data.split(np.arange(100), 0.1)
    assert np.array_equal(np.concatenate([train, valid]), np.arange(100)) and len(valid) == 10
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ValueError, match="text: expected a UTF-8 file"):
        data.read_text(path)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="text: expected a non-empty file"):
        data.read_text(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError, match="text: no such file"):
        data.read_text(tmp_path / "missing.txt")


def test_default_corpus_is_shipped():
    text = data.default_corpus()
    assert len(text) > 4000 and "backpropagation through time" in text


class _Server:
    """A local HTTP server for one folder, on a free loopback port."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        _QuietHandler.requests += 1
        super().do_GET()


@needs_text
def test_time_machine_download_verifies_and_caches(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "timemachine.txt").write_bytes(SHARED_TEXT.read_bytes())
    (served / "tampered.txt").write_bytes(SHARED_TEXT.read_bytes() + b"!")
    cache = tmp_path / "cache"
    _QuietHandler.requests = 0
    with _Server(served) as server:
        text = data.time_machine(f"{server.url}/timemachine.txt", directory=cache)
        assert hashlib.sha1(text.encode()).hexdigest() == data.TIME_MACHINE_SHA1
        assert (cache / "timemachine.txt").exists()
        data.time_machine(f"{server.url}/timemachine.txt", directory=cache)
        assert _QuietHandler.requests == 1  # the second call used the cache
        other = tmp_path / "other"
        with pytest.raises(ValueError, match="download: expected SHA-1 090b5e7e.* got .*not saved"):
            data.time_machine(f"{server.url}/tampered.txt", directory=other)
        assert not any(other.glob("*")) if other.exists() else True
