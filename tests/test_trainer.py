"""Trainer pieces: optimizers against NumPy/PyTorch, logs, progress, schedules, errors."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_step(dtype):
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(100).astype(dtype), rng.standard_normal(100).astype(dtype)
    expected = p - dtype(0.1) * (g + dtype(0.01) * p)
    rb.SGD(0.1, weight_decay=0.01).step(p, g)
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_adam_matches_torch(torch):
    rng = np.random.default_rng(1)
    p = rng.standard_normal(50)
    tensor = torch.tensor(p.copy(), requires_grad=True)
    reference = torch.optim.Adam([tensor], lr=0.01, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.1)
    ours = rb.Adam(50, np.float64, lr=0.01, beta1=0.8, beta2=0.95, eps=1e-7, weight_decay=0.1)
    for _ in range(25):
        g = rng.standard_normal(50)
        tensor.grad = torch.from_numpy(g.copy())
        reference.step()
        ours.step(p, g)
    np.testing.assert_allclose(p, tensor.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr: expected a finite value > 0, got -1"):
        rb.Adam(5, np.float32, lr=-1)
    with pytest.raises(ValueError, match=r"beta1: expected a value in \[0, 1\), got 1"):
        rb.Adam(5, np.float32, beta1=1.0)
    with pytest.raises(ValueError, match="params: expected 5 values"):
        rb.Adam(5, np.float64).step(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"grads: .*\(size=4,\)"):
        rb.SGD(0.1).step(np.zeros(4), np.zeros(3))


def sgd(**k):
    return rb.SGD(k.pop("lr", 0.1), **k)


def adam(**k):
    return rb.Adam(1, np.float32, **k)


@pytest.mark.parametrize("make, name, value", [
    (make, name, value)
    for make in (sgd, adam)
    for name, value in [("lr", 1e39), ("lr", 1e-46), ("weight_decay", 1e39), ("eps", 1e-50), ("eps", 1e39)]
    if name != "eps" or make is adam  # SGD has no eps
])
def test_float32_hyperparameters_outside_float32_are_refused(make, name, value):
    """A float32 step rounds its hyper-parameters to float32: above 3.4e38 they became inf (NaN or
    inf parameters), below 1.4e-45 they became 0 (no update, or a division by 0). Refused, naming
    the argument, and the parameters are left as they were."""
    optimizer = make(**{name: value})
    p, g = np.ones(1, np.float32), np.full(1, 1e38, np.float32)
    with pytest.raises(ValueError, match=f"{name}: expected a value representable in the parameters' precision"):
        optimizer.step(p, g)
    assert p[0] == 1.0
    if isinstance(optimizer, rb.Adam):
        assert optimizer.config()["step_count"] == 0  # the refused step is not counted


def test_adam_bias_corrected_step_outside_float32_is_refused():
    adam = rb.Adam(1, np.float32, lr=1e38)  # lr / (1 - 0.9) = 1e39 at the first step
    with pytest.raises(ValueError, match=r"lr: expected lr / \(1 - beta1\^t\), the bias-corrected step"):
        adam.step(np.zeros(1, np.float32), np.ones(1, np.float32))


def test_adam_load_state_refuses_what_a_step_cannot_use():
    adam = rb.Adam(2, np.float64)
    good = {"m": np.zeros(2), "v": np.ones(2)}
    for state, config, text in [
        ({"m": np.array([np.nan, 0.0]), "v": np.ones(2)}, {"step_count": 1},
         r"state\['m'\]: expected moments finite in float64"),
        ({"m": np.zeros(2), "v": np.array([1.0, -1.0])}, {"step_count": 1},
         r"state\['v'\]: expected second moments >= 0"),
        ({"m": np.zeros(3), "v": np.ones(3)}, {"step_count": 1}, r"state\['m'\]: expected shape \(2,\)"),
        (good, {"step_count": -1},
         r"config\['step_count'\]: expected a number of steps taken in \[0, 2\*\*62\), got -1"),
        (good, {"step_count": 2**63 - 1}, r"config\['step_count'\]: expected a number of steps taken"),
        (good, {"step_count": 1.5}, r"config\['step_count'\]: expected an integer, got 1.5"),
        (good, {"step_count": True}, r"config\['step_count'\]: expected an integer, got True"),
    ]:
        with pytest.raises(ValueError, match=text):
            adam.load_state(state, config)
        assert adam.config()["step_count"] == 0 and np.all(adam.state()["v"] == 0)  # unchanged
    adam.load_state(good, {"step_count": np.array(3)})  # a 0-d array, as npz files hold numbers
    assert adam.config()["step_count"] == 3 and np.all(adam.state()["v"] == 1)
    # float64 moments of 1e39 would be inf in a float32 Adam.
    adam32 = rb.Adam(2, np.float32)
    with pytest.raises(ValueError, match=r"state\['v'\]: expected moments finite in float32"):
        adam32.load_state({"m": np.zeros(2), "v": np.array([1e39, 0.0])}, {"step_count": 1})
    assert adam32.config()["step_count"] == 0


def corpus_and_model(seed=0):
    text = data.default_corpus()[:4758]  # its first essay: short epochs
    vocab = data.Vocab.from_text(text)
    model = rb.RNN(len(vocab), 16, len(vocab), dtype=np.float64, seed=seed, init_std=0.1)
    return vocab, vocab.encode(text), model


def test_logs_hold_the_history(tmp_path):
    vocab, corpus, model = corpus_and_model()
    train, valid = data.split(corpus, 0.1)
    for suffix in ("csv", "jsonl"):
        log = tmp_path / f"log.{suffix}"
        trainer = rb.Trainer(rb.RNN(len(vocab), 16, len(vocab), dtype=np.float64, init_std=0.1),
                             vocab=vocab, batch_size=8, num_steps=10, log=log)
        history = trainer.fit(train, 3, valid=valid)
        if suffix == "csv":
            rows = list(csv.DictReader(log.open()))
            values = [float(r["train_perplexity"]) for r in rows]
        else:
            values = [json.loads(line)["train_perplexity"] for line in log.read_text().splitlines()]
        assert values == pytest.approx([r.train_perplexity for r in history], rel=1e-12)
        assert history[-1].valid_perplexity == pytest.approx(trainer.evaluate(valid), rel=1e-12)


def test_evaluate_is_exp_mean_cross_entropy():
    vocab, corpus, model = corpus_and_model()
    trainer = rb.Trainer(model, vocab=vocab)
    ids = corpus[:700]
    model.forward(ids[:-1].reshape(-1, 1))
    expected = np.exp(model.loss(ids[1:].reshape(-1, 1)))
    assert trainer.evaluate(ids, chunk=64) == pytest.approx(expected, rel=1e-12)


def test_plain_progress_without_tqdm(monkeypatch, capsys):
    vocab, corpus, model = corpus_and_model()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if the extra were not installed
    trainer = rb.Trainer(model, vocab=vocab, batch_size=8, num_steps=10, progress=True)
    trainer.fit(corpus, 1)
    err = capsys.readouterr().err
    assert "epoch 1: 100%" in err and "epoch 1: 10%" in err


def test_cosine_schedule_and_callable():
    vocab, corpus, model = corpus_and_model()
    trainer = rb.Trainer(model, vocab=vocab, lr=2.0, lr_schedule="cosine", batch_size=8, num_steps=10)
    history = trainer.fit(corpus, 3)
    assert [r.lr for r in history] == pytest.approx([2.0, 2.0 * 0.55, 0.2])
    trainer = rb.Trainer(model, vocab=vocab, lr_schedule=lambda epoch, total: 0.1 * (epoch + 1),
                         batch_size=8, num_steps=10)
    assert [r.lr for r in trainer.fit(corpus, 2)] == pytest.approx([0.1, 0.2])


def test_trainer_errors():
    vocab, corpus, model = corpus_and_model()
    with pytest.raises(ValueError, match="iterator: expected 'sequential' or 'random', got 'shuffled'"):
        rb.Trainer(model, iterator="shuffled")
    with pytest.raises(ValueError, match="clip: expected a threshold > 0 or None, got 0"):
        rb.Trainer(model, clip=0)
    with pytest.raises(ValueError, match="optimizer: expected 'sgd' or 'adam', got 'rmsprop'"):
        rb.Trainer(model, optimizer="rmsprop")
    with pytest.raises(ValueError, match="vocab: expected"):
        rb.Trainer(model, vocab=rb.Vocab(list("ab")))
    with pytest.raises(ValueError, match=r"truncation: .*got 'regular:'"):
        rb.Trainer(model, truncation="regular:")
    with pytest.raises(ValueError, match=r"pi: expected every keep probability"):
        rb.Trainer(model, truncation="randomized:2")
    with pytest.raises(ValueError, match="corpus: expected at least"):
        rb.Trainer(model, batch_size=64, num_steps=100).fit(corpus[:100], 1)


def test_steps_instead_of_epochs():
    vocab, corpus, _ = corpus_and_model()

    def trainer():
        model = rb.RNN(len(vocab), 16, len(vocab), dtype=np.float64, seed=1, init_std=0.1)
        return rb.Trainer(model, vocab=vocab, batch_size=8, num_steps=10, seed=1)

    by_epochs = trainer()
    by_epochs.fit(corpus, 2)
    steps = by_epochs.step
    by_steps = trainer()
    by_steps.fit(corpus, steps=steps)
    assert by_steps.step == steps and by_steps.epoch == 2
    assert np.array_equal(by_steps.model.params, by_epochs.model.params)
    partial = trainer()
    history = partial.fit(corpus, steps=steps - 3)  # stops three chunks before the end of epoch 2
    assert partial.step == steps - 3 and history[-1].step == steps - 3 and len(history) == 2
    with pytest.raises(ValueError, match="fit: expected exactly one of epochs and steps"):
        trainer().fit(corpus, 2, steps=5)
    with pytest.raises(ValueError, match="fit: expected exactly one of epochs and steps"):
        trainer().fit(corpus)


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_trainer_takes_truncation_objects_and_strings(tmp_path, iterator):
    """One vocabulary: an object or its string form train the same model; logs and checkpoints
    carry the string; one runner serves the run, so randomized draws follow the global step."""
    vocab, corpus, _ = corpus_and_model()

    def run(truncation, log=None):
        model = rb.RNN(len(vocab), 16, len(vocab), dtype=np.float64, seed=2, init_std=0.1)
        trainer = rb.Trainer(model, vocab=vocab, batch_size=4, num_steps=10, seed=2,
                             truncation=truncation, iterator=iterator, log=log)
        trainer.fit(corpus, 2)
        return trainer

    for truncation in (rb.Regular(5), rb.Regular(5, 10), rb.Randomized(0.7, seed=3)):
        by_object = run(truncation, log=tmp_path / "log.jsonl")
        by_string = run(str(truncation))
        assert by_object.truncation == truncation and by_string.truncation == truncation
        assert np.array_equal(by_object.model.params, by_string.model.params), truncation
        logged = [json.loads(line)["truncation"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
        assert logged == [str(truncation)] * 2
        assert by_object.runner.position == by_object.step * 10
        assert by_object.state()["truncation"] == str(truncation)
        (tmp_path / "log.jsonl").unlink()
    # Randomized: the second epoch draws cuts of its own (keyed by global steps it has not
    # seen), unlike a runner rebuilt every epoch, which would repeat the first epoch's cuts.
    trainer = run(rb.Randomized(0.7, seed=3))
    last_windows = trainer.runner.windows
    repeat = rb.StreamRunner(trainer.model, rb.Randomized(0.7, seed=3))
    repeat.step(np.zeros((10, 4), np.int64), np.zeros((10, 4), np.int64))
    assert trainer.runner.position > 10 and last_windows != repeat.windows


def test_trainer_truncation_errors():
    _, _, model = corpus_and_model()
    with pytest.raises(ValueError, match="num_steps: expected a multiple of k1 = 4 for regular:4,6"):
        rb.Trainer(model, truncation=rb.Regular(4, 6), num_steps=10)
    with pytest.raises(TypeError, match="truncation: expected a Truncation or its string form, got 5"):
        rb.Trainer(model, truncation=5)
