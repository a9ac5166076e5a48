"""The synthetic tasks of ``rnnbptt compare``: the data is what the tasks say, the chunked gradient
is the one-pass gradient, and truncation shorter than the dependency cannot learn it."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import compare, tasks


def test_recall_targets_are_the_inputs_lag_steps_earlier():
    task = tasks.DelayedRecall(lag=3, length=10, symbols=5)
    batch = task.sample(np.random.default_rng(0), 4)
    assert batch.x.shape == batch.targets.shape == batch.weights.shape == (10, 4)
    assert batch.x.dtype == np.int64 and batch.x.min() >= 0 and batch.x.max() < 5
    for t in range(10):
        for b in range(4):
            if t >= 3:
                assert batch.targets[t, b] == batch.x[t - 3, b] and batch.weights[t, b] == 1
            else:
                assert batch.weights[t, b] == 0
    assert task.baseline == pytest.approx(1 / 5)
    # Accuracy: the right answers score 1, a constant guess scores about chance.
    exact = np.eye(5)[batch.targets]  # one-hot outputs (T, n, 5)
    assert task.score(exact, batch) == 1.0
    big = task.sample(np.random.default_rng(1), 2000)
    constant = np.zeros((10, 2000, 5))
    constant[..., 2] = 1
    assert task.score(constant, big) == pytest.approx(0.2, abs=0.02)


def test_adding_marks_two_values_and_its_baselines_are_what_the_docs_say():
    lag, T, n = 6, 15, 4000
    task = tasks.Adding(lag=lag, length=T)
    batch = task.sample(np.random.default_rng(0), n, np.float64)
    values, markers = batch.x[..., 0], batch.x[..., 1]
    assert batch.x.shape == (T, n, 2) and batch.targets.shape == (T, n, 1)
    assert np.all(markers.sum(axis=0) == 2) and np.all(markers[T - 1 - lag] == 1)
    assert np.all(markers[: T - 1 - lag] == 0)
    np.testing.assert_allclose(batch.targets[-1, :, 0], (values * markers).sum(axis=0))
    assert np.all(batch.weights[:-1] == 0) and np.all(batch.weights[-1] == 1)
    # Always answering 1 has MSE 1/6; knowing only the second value, 1/12 (Monte Carlo, n = 4000).
    ones = np.ones((T, n, 1))
    assert task.score(ones, batch) == pytest.approx(task.baseline, rel=0.1)
    second = (values * markers)[T - lag :].sum(axis=0)
    assert task.score((second + 0.5)[None, :, None] * ones, batch) == pytest.approx(1 / 12, rel=0.1)


@pytest.mark.parametrize("k,T", [(5, 20), (4, 12)])
def test_chunked_gradient_equals_one_backward_pass(k, T):
    """Regular(k) run in chunks of k steps, the chunks' gradients added up by their share of the
    loss, is the gradient of one backward pass over the whole sequence with Regular(k)."""
    task = tasks.DelayedRecall(lag=7, length=T, symbols=4)
    batch = task.sample(np.random.default_rng(3), 3, np.float64)
    model = rb.RNN(4, 6, 4, dtype=np.float64, seed=1)
    runner = rb.StreamRunner(model, rb.Regular(k))
    loss = tasks.sequence_gradient(runner, batch, k, total=np.zeros_like(model.grads))
    chunked = model.grads.copy()
    model.forward(batch.x)
    expected_loss = model.loss(batch.targets, batch.weights)
    model.backward(truncation=rb.Regular(k))
    np.testing.assert_allclose(chunked, model.grads, rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(expected_loss, rel=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="task: expected one of 'recall', 'adding', got 'copy'"):
        tasks.make_task("copy", 5)
    with pytest.raises(ValueError, match="lag: expected an integer >= 1, got 0"):
        tasks.make_task("recall", 0)
    with pytest.raises(ValueError, match="length: expected a sequence longer than lag = 5 steps, got 5"):
        tasks.make_task("adding", 5, 5)
    with pytest.raises(ValueError, match="symbols: expected an integer >= 2, got 1"):
        tasks.make_task("recall", 5, symbols=1)
    with pytest.raises(TypeError, match="task: expected an rnnbptt.tasks.Task, got str"):
        tasks.train_task("recall", "full")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="truncation: expected a Truncation or its string form, got 3"):
        tasks.train_task(tasks.make_task("recall", 2), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        tasks.train_task(tasks.make_task("recall", 2), "full", steps=0)
    with pytest.raises(ValueError, match="optimizer: expected 'sgd' or 'adam', got 'rmsprop'"):
        tasks.train_task(tasks.make_task("recall", 2), "full", steps=1, optimizer="rmsprop")


@pytest.fixture(scope="module")
def lag_10():
    """One run per strategy at lag 10 (sequences of 40 steps, 8 symbols), seed 0, 300 steps."""
    task = tasks.make_task("recall", 10)
    strategies = ["full", "regular:5", "regular:20", "randomized:1.0"]
    return task, {s: tasks.train_task(task, s, steps=300, seed=0) for s in strategies}


def test_truncation_shorter_than_the_lag_cannot_learn_it(lag_10):
    """The gradient of Regular(5) reaches 4 steps back, so it never connects an answer to the
    symbol 10 steps earlier: it stays near chance (0.125; the readout decodes a little of what
    the recurrence happens to keep). Full and Regular(20) learn the task."""
    task, results = lag_10
    chance = task.baseline
    assert results["full"].score > 0.9
    assert results["regular:20"].score > 0.9
    assert results["regular:5"].score < 0.3
    assert results["regular:5"].score - chance < 0.2 * (results["full"].score - chance)
    # The learning curve of the short truncation never leaves the neighbourhood of chance.
    assert max(r.score for r in results["regular:5"].curve) < 0.4


def test_randomized_with_pi_1_is_full_and_memory_follows_the_chunk(lag_10):
    _, results = lag_10
    full, never_cut = results["full"], results["randomized:1.0"]
    assert [r.score for r in never_cut.curve] == [r.score for r in full.curve]
    assert [r.loss for r in never_cut.curve] == [r.loss for r in full.curve]
    assert (full.steps_held, results["regular:20"].steps_held, results["regular:5"].steps_held) == (40, 20, 5)
    assert full.memory_bytes > results["regular:20"].memory_bytes > results["regular:5"].memory_bytes > 0


def test_results_table_reports_reach_and_chance(lag_10):
    task, results = lag_10
    table = compare.results_table(task, list(results.values()))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["strategy", "gradient", "reach"]
    assert lines[2].split()[:4] == ["full", "39", "(all)", f"{results['full'].score:.3f}"]
    assert lines[3].split()[:3] == ["regular:5", "4", f"{results['regular:5'].score:.3f}"]
    assert "chance is 0.125" in table
    assert compare.gradient_reach(rb.Regular(5, 12), 40) == "7 to 11"
    assert compare.gradient_reach(rb.Randomized([1.0, 0.5]), 40) == "random (schedule)"


def test_adding_needs_the_reach_too():
    """At lag 5 (sequences of 20 steps) Full learns the sum. Regular(2), whose gradient reaches
    one step back, never learns to store the first value where it is marked; its error stays
    several times larger (the readout decodes only what the recurrence happens to keep)."""
    task = tasks.make_task("adding", 5)
    full = tasks.train_task(task, "full", steps=1500, seed=0, lr=3e-3, hidden_size=32)
    short = tasks.train_task(task, "regular:2", steps=1500, seed=0, lr=3e-3, hidden_size=32)
    assert full.score < 1 / 24 and full.score < task.baseline / 10
    assert short.score > 3 * full.score


def test_task_plots(lag_10, tmp_path):
    pytest.importorskip("matplotlib")
    task, results = lag_10
    curves, gradients = compare.write_plots(task, list(results.values()), tmp_path / "c.png")
    assert curves == tmp_path / "c.png" and gradients == tmp_path / "c-gradients.png"
    assert curves.stat().st_size > 1000 and gradients.stat().st_size > 1000
