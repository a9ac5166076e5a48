"""The Trainer beyond characters (rnnbptt.datasets): a dense series (regression on a stream) and
whole sequences with a label per sequence or per step.

- The Trainer's run equals a loop written here from the public pieces (our own NumPy split of
  the series, StreamRunner or forward/loss/backward, clipping, Adam), bit for bit.
- evaluate is 0.5 * MSE of the NumPy reference's outputs; accuracy counts argmax hits.
- A run killed in the middle of an epoch resumes bit for bit, and refuses other data.
- Bad data gets one clear error naming the argument.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference
from rnnbptt.datasets import DenseSeries, Sequences

SETTINGS = dict(optimizer="adam", lr=0.01, clip=1.0, batch_size=4, num_steps=20, seed=3)


def sine(n=1500, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + 1)
    series = np.sin(0.1 * t) + 0.05 * rng.standard_normal(n + 1)
    inputs = np.stack([series[:-1], np.cos(0.1 * t[:-1])], axis=1).astype(dtype)
    return DenseSeries(inputs, series[1:, None].astype(dtype))


def our_split(series, batch, num_steps, offset):
    """The sequential split written out: after `offset` steps, `batch` contiguous streams of
    L = (N - offset) // batch steps, whole chunks only, time-major."""
    L = (len(series.inputs) - offset) // batch
    keep = (L // num_steps) * num_steps
    x = np.stack([series.inputs[offset + b * L : offset + b * L + keep] for b in range(batch)], axis=1)
    y = np.stack([series.targets[offset + b * L : offset + b * L + keep] for b in range(batch)], axis=1)
    return x, y


@pytest.mark.parametrize("truncation", ["full", "regular:10", "regular:5,10", "randomized:0.8,seed=2"])
def test_a_dense_series_trains_as_the_hand_written_loop(truncation):
    data = sine()
    model = rb.RNN(2, 8, 1, dtype=np.float64, seed=1, cell="gru")
    twin = rb.RNN(2, 8, 1, dtype=np.float64, seed=1, cell="gru")
    trainer = rb.Trainer(model, truncation=truncation, **SETTINGS)
    history = trainer.fit(data, 2)

    rng = np.random.default_rng(3)
    runner = rb.StreamRunner(twin, rb.Truncation.parse(truncation))
    adam = rb.Adam(twin.num_parameters, np.float64, lr=0.01)
    step = 0
    for epoch in range(2):
        x_all, y_all = our_split(data, 4, 20, int(rng.integers(0, 21)))
        runner.reset(step * 20)
        losses = []
        for i in range(0, len(x_all), 20):
            losses.append(runner.step(np.ascontiguousarray(x_all[i : i + 20]), np.ascontiguousarray(y_all[i : i + 20])))
            rb.clip_grad_norm(twin.grads, 1.0)
            adam.step(twin.params, twin.grads)
            step += 1
        assert history[epoch].train_loss == pytest.approx(np.mean(losses), rel=1e-12)
    np.testing.assert_array_equal(model.params, twin.params)
    assert history[-1].train_perplexity is None and history[-1].data == "dense"


def test_dense_evaluate_is_half_the_mse_of_the_reference():
    data = sine(300)
    model = rb.RNN(2, 6, 1, dtype=np.float64, seed=4)
    trainer = rb.Trainer(model, **SETTINGS)
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    _, outputs = reference.forward(params, data.inputs[:, None, :])
    expected = 0.5 * np.mean((np.stack(outputs)[:, 0, :] - data.targets) ** 2)
    assert trainer.evaluate(data, chunk=64) == pytest.approx(expected, rel=1e-12)


def recall_sequences(S, T, per_step, padded, dense, seed=0, dtype=np.float64):
    """Class = the first symbol of the sequence (per sequence), or the running first symbol
    (per step); some sequences padded at the end (weight 0)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 4, (S, T))
    x = np.eye(4, dtype=dtype)[ids] if dense else ids
    targets = np.repeat(ids[:, :1], T, axis=1) if per_step else ids[:, 0].copy()
    weights = None
    if padded:
        weights = np.ones((S, T), dtype=dtype)
        for s, length in enumerate(rng.integers(T // 2, T + 1, S)):
            weights[s, length:] = 0
    return Sequences(x, targets, weights)


def our_batch(data, rows, dtype):
    """The batch written out: time-major; a per-sequence label at every step, weight 1 only at
    the last step whose weight is not zero."""
    S, T = len(rows), data.x.shape[1]
    x = np.ascontiguousarray(np.moveaxis(data.x[rows], 0, 1))
    w = np.ones((S, T)) if data.weights is None else data.weights[rows]
    if data.per_step:
        return x, np.ascontiguousarray(data.targets[rows].T), None if data.weights is None else np.ascontiguousarray(
            w.T.astype(dtype))
    y = np.ascontiguousarray(np.tile(data.targets[rows], (T, 1)))
    mask = np.zeros((T, S), dtype=dtype)
    for s in range(S):
        mask[max(t for t in range(T) if w[s, t] > 0), s] = 1
    return x, y, mask


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_sequences_train_as_the_hand_written_loop(per_step, padded, dense, iterator):
    data = recall_sequences(22, 9, per_step, padded, dense)
    model = rb.RNN(4, 6, 4, dtype=np.float64, seed=2, cell="lstm")
    twin = rb.RNN(4, 6, 4, dtype=np.float64, seed=2, cell="lstm")
    truncation = rb.Randomized(0.7, seed=5)
    trainer = rb.Trainer(model, truncation=truncation, iterator=iterator,
                         **{**SETTINGS, "batch_size": 5, "num_steps": 10})
    history = trainer.fit(data, 2)

    rng = np.random.default_rng(3)
    adam = rb.Adam(twin.num_parameters, np.float64, lr=0.01)
    step = 0
    for epoch in range(2):
        order = np.arange(22)
        if iterator == "random":
            rng.shuffle(order)
        total, weight = 0.0, 0.0
        for i in range(0, 20, 5):  # the last 2 sequences of the order wait for another epoch
            x, y, w = our_batch(data, order[i : i + 5], np.float64)
            twin.forward(x)
            loss = twin.loss(y, w)
            twin.backward(truncation=truncation, step_offset=step * 9)
            rb.clip_grad_norm(twin.grads, 1.0)
            adam.step(twin.params, twin.grads)
            step += 1
            chunk_weight = w.sum() if w is not None else y.size
            total, weight = total + loss * chunk_weight, weight + chunk_weight
        assert history[epoch].train_loss == pytest.approx(total / weight, rel=1e-12)
    np.testing.assert_array_equal(model.params, twin.params)


def test_accuracy_and_validation_of_sequences():
    train = recall_sequences(64, 6, False, True, False, seed=1)
    valid = recall_sequences(40, 6, False, True, False, seed=2)
    model = rb.RNN(4, 16, 4, dtype=np.float64, seed=0)
    trainer = rb.Trainer(model, optimizer="adam", lr=0.02, batch_size=16, num_steps=6)
    history = trainer.fit(train, 3, valid=valid)
    # Accuracy by hand: the output at each sequence's last unpadded step.
    outputs, _ = model.forward(np.ascontiguousarray(valid.x.T))
    last = valid.weights.shape[1] - 1 - np.argmax(valid.weights[:, ::-1] > 0, axis=1)
    predicted = outputs[last, np.arange(40)].argmax(axis=1)
    expected = float(np.mean(predicted == valid.targets))
    assert trainer.accuracy(valid) == pytest.approx(expected, abs=1e-12)
    assert history[-1].valid_accuracy == pytest.approx(expected, abs=1e-12)
    assert history[-1].valid_loss == pytest.approx(trainer.evaluate(valid), rel=1e-12)


@pytest.mark.parametrize("kind", ["dense", "sequences"])
def test_a_run_killed_mid_epoch_resumes_bit_for_bit(tmp_path, kind):
    data = sine(900) if kind == "dense" else recall_sequences(40, 8, True, True, True)
    d, q = (2, 1) if kind == "dense" else (4, 4)
    settings = {**SETTINGS, "truncation": "regular:5,10", "num_steps": 10}

    def fresh():
        return rb.Trainer(rb.RNN(d, 5, q, dtype=np.float64, seed=7), **settings)

    whole = fresh()
    whole.fit(data, steps=13)
    interrupted = fresh()
    interrupted.fit(data, steps=6, checkpoint=tmp_path / "run.safetensors")
    assert interrupted.mid_epoch
    resumed = rb.Trainer.resume(tmp_path / "run.safetensors")
    resumed.fit(data, steps=13)
    np.testing.assert_array_equal(resumed.model.params, whole.model.params)
    other = sine(901) if kind == "dense" else recall_sequences(40, 8, True, True, True, seed=9)
    again = rb.Trainer.resume(tmp_path / "run.safetensors")
    with pytest.raises(ValueError, match=r"corpus: expected the corpus epoch \d+ was interrupted on"):
        again.fit(other, steps=13)


def test_bad_data_is_refused_clearly():
    with pytest.raises(TypeError, match=r"inputs: expected a 2-D float32 or float64 array"):
        DenseSeries(np.zeros(10), np.zeros((10, 1)))
    with pytest.raises(TypeError, match=r"targets: expected the inputs' dtype float64, got float32"):
        DenseSeries(np.zeros((10, 1)), np.zeros((10, 1), np.float32))
    with pytest.raises(ValueError, match=r"targets: expected 10 steps \(the inputs'\), got 9"):
        DenseSeries(np.zeros((10, 1)), np.zeros((9, 1)))
    with pytest.raises(TypeError, match=r"x: expected token ids \(S, T\) or float32/float64 values"):
        Sequences(np.zeros((3, 4)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"targets: expected \(S,\) or \(S, T\) with S=3, got shape \(4,\)"):
        Sequences(np.zeros((3, 4), np.int64), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"weights: expected every sequence to have a step with weight > 0"):
        Sequences(np.zeros((3, 4), np.int64), np.zeros(3, np.int64), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"weights: expected finite values >= 0"):
        Sequences(np.zeros((3, 4), np.int64), np.zeros(3, np.int64), -np.ones((3, 4)))
    model = rb.RNN(2, 4, 1, seed=0)  # float32
    trainer = rb.Trainer(model, **SETTINGS)
    with pytest.raises(TypeError, match=r"corpus: expected inputs of the model's dtype float32, got float64 \(convert "
                       r"it explicitly with inputs.astype\(np.float32\), which copies\)"):
        trainer.fit(sine(), 1)
    with pytest.raises(ValueError, match=r"corpus: expected inputs of 2 features \(the model's input_size\), got 3"):
        trainer.fit(DenseSeries(np.zeros((200, 3), np.float32), np.zeros((200, 1), np.float32)), 1)
    with pytest.raises(TypeError, match=r"valid: expected weights of the model's dtype float32, got float64"):
        rb.Trainer(rb.RNN(4, 4, 4, seed=0), **SETTINGS).fit(
            recall_sequences(8, 5, False, False, False), 1, valid=recall_sequences(8, 5, False, True, False))
    with pytest.raises(TypeError, match=r"valid: expected the same kind of data as corpus \(dense\), got tokens"):
        trainer.fit(sine(dtype=np.float32), 1, valid=np.arange(50))
    with pytest.raises(ValueError, match=r"corpus: expected at least 100 steps for batch_size=4 and num_steps=20"):
        trainer.fit(sine(50, dtype=np.float32), 1)
    with pytest.raises(TypeError, match=r"corpus: expected token ids \(a 1-D integer array\), a DenseSeries"):
        trainer.fit([1, 2, 3], 1)
    assert math.isfinite(trainer.evaluate(sine(200, dtype=np.float32)))


def test_a_dense_history_in_a_checkpoint_is_checked_when_loaded(tmp_path):
    """The dense stream's history inputs ((k, n, d) values) in a file: forged ones are refused."""
    from forged_checkpoints import read, write

    trainer = rb.Trainer(rb.RNN(2, 5, 1, dtype=np.float64, seed=7),
                         **{**SETTINGS, "truncation": "regular:5,10", "num_steps": 10})
    trainer.fit(sine(900), steps=6, checkpoint=tmp_path / "run.safetensors")
    metadata, tensors = read(tmp_path / "run.safetensors")
    assert tensors["trainer.runner.history_inputs"].shape == (5, 4, 2)
    assert tensors["trainer.runner.history_inputs"].dtype == np.float64
    nan = tensors["trainer.runner.history_inputs"].copy()
    nan[1, 2, 0] = np.nan
    for name, inputs in {"nan": nan, "shape": np.zeros((5, 4, 3))}.items():
        forged = {**tensors, "trainer.runner.history_inputs": inputs}
        path = write(tmp_path / f"{name}.safetensors", dict(metadata), forged)
        with pytest.raises(rb.CheckpointError, match=r"tensor 'trainer.runner.history_inputs' in the file: expected"):
            rb.Trainer.resume(path)


def test_the_docs_examples_beat_their_baselines():
    """docs/other-data.md's two examples, run as a reader would: the forecaster's held-out loss
    below persistence's, the classifier's accuracy far above chance."""
    import contextlib
    import io
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "other-data.md").read_text(encoding="utf-8")
    forecaster, classifier, *_ = re.findall(r"```python\n(.*?)```", page, re.S)  # the third: test_documents.py
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(forecaster, "docs/other-data.md", "exec"), {})
        exec(compile(classifier, "docs/other-data.md", "exec"), {})
    ours, persistence = map(float, re.search(r"held-out 0.5\*MSE ([\d.]+), persistence ([\d.]+)", printed.getvalue())
                            .groups())
    assert ours < 0.8 * persistence, printed.getvalue()
    accuracy = float(re.search(r"held-out accuracy ([\d.]+) \(chance 0.25\)", printed.getvalue())[1])
    assert accuracy > 0.6, printed.getvalue()


def test_a_checkpoint_from_before_loss_weights_resumes_with_the_right_loss(tmp_path):
    """An epoch in progress saved by an earlier rnnbptt has no 'weight': its positions count."""
    import json

    from forged_checkpoints import read, write

    ids = np.random.default_rng(0).integers(0, 6, 3000)
    settings = {**SETTINGS, "num_steps": 10}

    def fresh():
        return rb.Trainer(rb.RNN(6, 8, 6, seed=3), **settings)

    whole = fresh()
    whole.fit(ids, steps=100)
    interrupted = fresh()
    interrupted.fit(ids, steps=30, checkpoint=tmp_path / "run.safetensors")
    metadata, tensors = read(tmp_path / "run.safetensors")
    trainer = json.loads(metadata["trainer"])
    del trainer["epoch_in_progress"]["weight"]
    metadata["trainer"] = json.dumps(trainer)
    resumed = rb.Trainer.resume(write(tmp_path / "old.safetensors", metadata, tensors))
    resumed.fit(ids, steps=100)
    assert [r.train_perplexity for r in resumed.history] == pytest.approx(
        [r.train_perplexity for r in whole.history], rel=1e-12)
