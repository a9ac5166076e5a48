"""The truncation-bias meter (rnnbptt.truncation_bias, docs/design.md section 4.7).

- Its numbers against the NumPy reference: the Full and truncated gradients from
  ``reference.cell_loss_and_grads`` / ``cell_regular_grads`` (Randomized: the reference with
  each draw's flow, drawn from ``uniform_at`` as the design notes define it), and the statistics
  computed here from them, for every cell and a stack.
- On the delayed-recall task: the bias of Regular falls as k passes the lag, and Randomized's
  mean bias is zero within its standard error (and shrinks with more draws, where a biased
  estimate's would not).
- Bad arguments get clear errors; the model is left holding the forward and the Full gradient.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference, tasks
from rnnbptt.bias import bias_table

from conftest import rel_err

CELLS = ("elman", "gru", "lstm")


def build(cell, num_layers, d, h, q, seed=0):
    params = reference.init_cell_params(cell, d, h, q, num_layers, seed=seed, scale=0.6)
    model = rb.RNN(d, h, q, cell=cell, num_layers=num_layers, dtype=np.float64)
    for name, value in params.items():
        model.param(name)[...] = value
    return model, params


def randomized_flow(pi, seed, T):
    """xi_t = 1/pi with probability pi (uniform draw keyed by seed and global step t), else 0."""
    return np.array([1 / pi if rb._core.uniform_at(seed, t + 1) < pi else 0.0 for t in range(T)])


def flat(grads, names):
    return np.concatenate([np.ravel(grads[name]) for name in names])


def expected_measure(draws, full):
    """The statistics of docs/design.md section 4.7, from the draws (N x P) and g_F (P)."""
    mean = draws.mean(axis=0)
    full_norm = np.linalg.norm(full)
    variance = draws.var(axis=0, ddof=1).sum() if len(draws) > 1 else 0.0
    return {
        "relative": np.linalg.norm(mean - full) / full_norm,
        "cosine": mean @ full / (np.linalg.norm(mean) * full_norm),
        "standard_error": math.sqrt(variance / len(draws)) / full_norm,
        "full_norm": full_norm,
    }


def assert_measure(measure, expected, what):
    for key, value in expected.items():
        assert abs(getattr(measure, key) - value) <= 1e-10 * max(1.0, abs(value)), f"{what}: {key}"


@pytest.mark.parametrize("cell,num_layers", [("elman", 1), ("gru", 1), ("lstm", 1), ("lstm", 2), ("gru", 2)])
@pytest.mark.parametrize("strategy", ["regular:3", "regular:2,5", "randomized:0.7,seed=11"])
def test_the_meter_matches_the_reference(cell, num_layers, strategy):
    rng = np.random.default_rng(3)
    T, n, d, h, q = 13, 3, 4, 5, 4
    model, params = build(cell, num_layers, d, h, q, seed=2)
    names = model.parameter_names()
    x = rng.integers(0, d, (T, n))
    y = rng.integers(0, q, (T, n))
    w = rng.uniform(0.5, 2.0, (T, n))
    truncation = rb.Truncation.parse(strategy)
    randomized = truncation.kind == rb.Truncation.Kind.randomized

    loss, full_grads, _, _ = reference.cell_loss_and_grads(cell, params, x, y, weights=w)
    full = flat(full_grads, names)
    if randomized:
        N = 6
        draws = np.stack([
            flat(reference.cell_loss_and_grads(cell, params, x, y, weights=w,
                                               flow=randomized_flow(0.7, 11 + i, T))[1], names)
            for i in range(N)
        ])
    else:
        N = None
        k1, k2 = int(truncation.k1), int(truncation.k2)
        draws = flat(reference.cell_regular_grads(cell, params, x, y, k1, k2, weights=w)[1], names)[None]

    result = rb.truncation_bias(model, x, y, truncation, weights=w, draws=N)
    assert result.truncation == strategy
    assert result.draws == len(draws)
    assert abs(result.loss - loss) <= 1e-12
    assert_measure(result.total, expected_measure(draws, full), f"{cell} x {num_layers} {strategy}")
    errors = np.linalg.norm(draws - full, axis=1) / np.linalg.norm(full)
    assert abs(result.draw_relative_mean - errors.mean()) <= 1e-10
    assert abs(result.draw_relative_variance - (errors.var(ddof=1) if len(draws) > 1 else 0.0)) <= 1e-10
    assert [p.name for p in result.parameters] == list(names)
    offset = 0
    for part in result.parameters:
        size = int(np.prod(params[part.name].shape))
        piece = slice(offset, offset + size)
        offset += size
        if np.linalg.norm(full[piece]) == 0.0:
            assert math.isnan(part.measure.relative)
            continue
        assert_measure(part.measure, expected_measure(draws[:, piece], full[piece]), f"{cell} {part.name}")
    # The model holds the forward, and the Full gradient exactly.
    assert rel_err(model.grads, full) <= 1e-12
    held = model.grads.copy()
    model.backward()
    np.testing.assert_array_equal(model.grads, held)


def test_full_has_no_bias_and_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    model = rb.RNN(4, 8, 4, cell="gru", seed=1)
    x = rng.integers(0, 4, (20, 4))
    y = np.roll(x, 2, axis=0)
    full = rb.truncation_bias(model, x, y, rb.Full())
    assert full.total.relative == 0.0 and full.total.cosine == pytest.approx(1.0)
    assert full.total.standard_error == 0.0 and full.draws == 1
    wide = rb.RNN(4, 8, 4, cell="gru", seed=1, dtype=np.float64)
    wide.params[...] = model.params
    single = rb.truncation_bias(model, x, y, rb.Regular(3)).total
    double = rb.truncation_bias(wide, x, y, rb.Regular(3)).total
    assert single.relative == pytest.approx(double.relative, rel=1e-4)
    assert single.cosine == pytest.approx(double.cosine, rel=1e-5)


@pytest.fixture(scope="module")
def recall():
    """A tanh RNN trained with Full BPTT on delayed recall (lag 5) until it uses the
    dependency (accuracy near 1), and a held-out batch."""
    task = tasks.DelayedRecall(5)
    result = tasks.train_task(task, rb.Full(), hidden_size=32, steps=300, seed=0, dtype=np.float64)
    assert result.score > 0.9
    return task, result.model, task.sample(np.random.default_rng(9), 256, np.float64)


def test_regulars_bias_falls_as_k_passes_the_lag(recall):
    task, model, batch = recall

    def bias(truncation):
        return rb.truncation_bias(model, batch.x, batch.targets, truncation, weights=batch.weights).total.relative

    lag = task.lag
    # Regular(1, k): every loss reaches back k - 1 steps. The gradient that teaches the recall
    # crosses lag steps (x_{t-lag} enters h_{t-lag}); short of it nearly all of g_F is missing.
    reach = {k: bias(rb.Regular(1, k)) for k in range(1, 2 * lag + 1)}
    assert min(reach[k] for k in range(1, lag + 1)) > 0.7
    assert max(reach[k] for k in range(lag + 3, 2 * lag + 1)) < 0.4
    assert reach[2 * lag] < reach[lag + 3] < reach[lag + 1]
    # Regular(k): a block's first losses still reach back fewer than lag steps, so the bias
    # falls more slowly, roughly as the share of losses that can reach the clue grows.
    blocks = {k: bias(rb.Regular(k)) for k in range(1, 3 * lag)}
    assert min(blocks[k] for k in range(1, lag + 1)) > 0.7
    assert blocks[3 * lag - 1] < 0.5
    short = np.mean([blocks[k] for k in range(1, lag + 1)])
    assert np.mean([blocks[k] for k in range(2 * lag, 3 * lag)]) < 0.75 * short


def test_randomized_is_unbiased_within_its_standard_error(recall):
    _, model, batch = recall
    few, many = (
        rb.truncation_bias(model, batch.x, batch.targets, rb.Randomized(0.8, seed=4), weights=batch.weights, draws=N)
        for N in (25, 400)
    )
    for r in (few, many):
        assert r.total.relative <= 3 * r.total.standard_error, r
    # The standard error shrinks as 1/sqrt(N), and so does the mean's distance from g_F.
    assert many.total.standard_error == pytest.approx(few.total.standard_error / 4, rel=0.5)
    assert many.total.relative < 0.5 * few.total.relative
    # Each draw alone is far from g_F: the mean, not one draw, is what is unbiased.
    assert many.draw_relative_mean > 5 * many.total.relative
    # The criterion has power: the same draws scaled by 0.7 (a 30% bias) are rejected.
    names = model.parameter_names()
    model.forward(batch.x)
    model.loss(batch.targets, batch.weights)
    model.backward()
    full = model.grads.copy()
    draws = []
    for i in range(400):
        model.backward(truncation=rb.Randomized(0.8, seed=4 + i))
        draws.append(0.7 * model.grads)
    biased = expected_measure(np.stack(draws), full)
    assert biased["relative"] > 3 * biased["standard_error"]
    assert len(names) == len(many.parameters)


def test_the_table_lists_every_strategy_and_tensor(recall):
    _, model, batch = recall
    results = [
        rb.truncation_bias(model, batch.x, batch.targets, t, weights=batch.weights, draws=d)
        for t, d in ((rb.Regular(3), None), (rb.Randomized(0.9), 4))
    ]
    text = bias_table(results, per_parameter=True)
    assert "regular:3" in text and "randomized:0.9,seed=0" in text
    for name in model.parameter_names():
        assert name in text
    assert "±" in text


def test_bad_arguments_are_refused_clearly():
    model = rb.RNN(3, 4, 3, seed=0)
    x = np.zeros((5, 2), dtype=np.int64)
    y = np.zeros((5, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"draws: expected at least 2 draws of randomized:0.5,seed=0 .*got 1"):
        rb.truncation_bias(model, x, y, rb.Randomized(0.5), draws=1)
    with pytest.raises(ValueError, match=r"draws: expected 1 for the deterministic strategy regular:2, got 3"):
        rb.truncation_bias(model, x, y, rb.Regular(2), draws=3)
    with pytest.raises(ValueError, match=r"draws: expected an integer in \[1, 2\*\*63\), got 0"):
        rb.truncation_bias(model, x, y, rb.Regular(2), draws=0)
    with pytest.raises(TypeError, match=r"draws: expected an integer, got True"):
        rb.truncation_bias(model, x, y, rb.Regular(2), draws=True)
    with pytest.raises(TypeError, match=r"truncation: expected a Truncation"):
        rb.truncation_bias(model, x, y, "regular:2")
    with pytest.raises(TypeError, match=r"model: expected an rnnbptt.RNN, got ModelFloat32"):
        rb.truncation_bias(model.core, x, y, rb.Regular(2))
    with pytest.raises(ValueError, match=r"step_offset: expected an integer in \[0, 2\*\*63\), got -1"):
        rb.truncation_bias(model, x, y, rb.Regular(2), step_offset=-1)
    with pytest.raises(ValueError, match=r"^targets: expected .*\(T=5, n=2\)"):
        rb.truncation_bias(model, x, y[:4], rb.Regular(2))
    with pytest.raises(ValueError, match=r"^x: "):
        rb.truncation_bias(model, np.full((5, 2), 3), y, rb.Regular(2))
    with pytest.raises(ValueError, match=r"^h0: "):
        rb.truncation_bias(model, x, y, rb.Regular(2), h0=np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"^x: expected dense float32"):
        rb.truncation_bias(model, np.zeros((5, 2, 3)), y, rb.Regular(2))


def test_the_docs_example_runs_and_shows_the_bias_falling_past_the_lag():
    """docs/compare.md's Python example, as a reader would run it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "compare.md").read_text(encoding="utf-8")
    code = page.split("## Measuring the bias")[1].split("```python\n")[1].split("```")[0]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/compare.md", "exec"), {})
    totals = {m[1]: float(m[2]) for m in re.finditer(r"^(\S+) +all +([\d.]+)", printed.getvalue(), re.M)}
    assert list(totals) == ["regular:1,4", "regular:1,6", "regular:1,8", "randomized:0.8,seed=0"]
    assert totals["regular:1,4"] > 0.7 > totals["regular:1,6"] > totals["regular:1,8"]
    assert re.search(r"^ +W_qh +0 +1 +-$", printed.getvalue(), re.M)


def test_a_refused_measurement_leaves_the_model_consistent():
    """Draws that do not fit are refused before the model changes; targets the loss refuses
    leave the model holding the new forward, as Model.forward would (its input kept alive)."""
    rng = np.random.default_rng(2)
    model = rb.RNN(3, 5, 4, dtype=np.float64, seed=1)
    x1, x2 = rng.standard_normal((6, 2, 3)), rng.standard_normal((6, 2, 3))
    y = rng.integers(0, 4, (6, 2))
    model.forward(x1)
    forwards = model.core.forwards
    with pytest.raises(ValueError, match="draws: expected 1"):
        rb.truncation_bias(model, x2, y, rb.Regular(2), draws=5)
    assert model.core.forwards == forwards
    with pytest.raises(ValueError, match=r"^targets: expected class ids in \[0, 4\)"):
        rb.truncation_bias(model, x2.copy(), np.full((6, 2), 9), rb.Regular(2))
    assert model.core.forwards == forwards + 1
    model.loss(y)
    model.backward()
    twin = rb.RNN(3, 5, 4, dtype=np.float64, seed=1)
    twin.forward(x2)
    twin.loss(y)
    twin.backward()
    np.testing.assert_array_equal(model.grads, twin.grads)


@pytest.mark.parametrize("cell", ["elman", "lstm"])
def test_resets_and_lengths_reach_both_gradients(cell):
    """With resets and lengths (checked against autograd in tests/test_resets.py), the meter
    compares the Full and Regular gradients that model.backward gives at those boundaries."""
    rng = np.random.default_rng(4)
    T, n, d, h, q = 12, 3, 4, 5, 4
    model, _ = build(cell, 1, d, h, q, seed=5)
    names = model.parameter_names()
    x, y = rng.integers(0, d, (T, n)), rng.integers(0, q, (T, n))
    resets = rng.random((T, n)) < 0.25
    lengths = [T, 9, 5]
    gradients = []
    for truncation in (rb.Full(), rb.Regular(3, 5)):
        model.forward(x, resets=resets, lengths=lengths)
        model.loss(y)
        model.backward(truncation=truncation)
        gradients.append(np.concatenate([model.grad(name).ravel() for name in names]))
    result = rb.truncation_bias(model, x, y, rb.Regular(3, 5), resets=resets, lengths=lengths)
    assert_measure(result.total, expected_measure(gradients[1][None], gradients[0]), cell)
    plain = rb.truncation_bias(model, x, y, rb.Regular(3, 5))
    assert abs(plain.total.relative - result.total.relative) > 1e-6  # the boundaries matter
