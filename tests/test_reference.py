"""The C++ core against the pure-NumPy reference written from the equations of docs/design.md."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference

from conftest import DEEP_PRODUCTS, make_problem, model_grads, rel_err

CASES = list(
    itertools.product(
        ["tanh", "relu", "identity"],  # activation
        [True, False],  # tokens
        ["cross_entropy", "squared_error"],  # loss
        [False, True],  # masked
        [True, False],  # bias
    )
)


@pytest.mark.parametrize("activation,tokens,loss,masked,bias", CASES)
def test_float64_matches_reference(activation, tokens, loss, masked, bias):
    p = make_problem(activation=activation, tokens=tokens, loss=loss, masked=masked, bias=bias)
    rng = np.random.default_rng(1)
    dh_T = rng.standard_normal(p.h0.shape)
    outputs, h_T = p.model.forward(p.x, p.h0)
    value = p.model.loss(p.targets, p.weights)
    result = p.model.backward(dh_T, dx=not tokens)

    hs, os = reference.forward(p.params64(), p.x, p.h0, activation)
    ref_loss, ref_grads, ref_dh0, ref_dx = reference.loss_and_grads(
        p.params64(), p.x, p.targets, h0=p.h0, weights=p.weights, activation=activation, dh_T=dh_T
    )
    assert rel_err(outputs, np.stack([o.T for o in os])) <= 1e-12
    assert rel_err(h_T, hs[-1].T) <= 1e-12
    assert abs(value - ref_loss) <= 1e-12 * abs(ref_loss)
    grads = model_grads(p.model)
    assert set(grads) == set(ref_grads)
    for name in grads:
        assert rel_err(grads[name], ref_grads[name]) <= 1e-10, name
    assert rel_err(result.dh0, ref_dh0) <= 1e-10
    if not tokens:
        assert rel_err(result.dx, ref_dx) <= 1e-10


@pytest.mark.parametrize("tokens", [True, False])
def test_float32_matches_reference(tokens):
    p = make_problem(tokens=tokens, dtype=np.float32, T=20, n=4, h=16, q=7)
    p.model.forward(p.x, p.h0)
    value = p.model.loss(p.targets)
    p.model.backward()
    ref_loss, ref_grads, _, _ = reference.loss_and_grads(p.params64(), p.x, p.targets, h0=p.h0)
    assert abs(value - ref_loss) <= 1e-5 * abs(ref_loss)
    for name, g in model_grads(p.model).items():
        assert rel_err(g, ref_grads[name]) <= 1e-5, name


def test_linear_model_is_identity_without_bias():
    """The textbook's linear model exactly: h_t = W_hx x_t + W_hh h_{t-1}, o_t = W_qh h_t."""
    p = make_problem(activation="identity", bias=False, tokens=False, with_h0=False)
    assert p.model.b_h is None and p.model.b_q is None
    outputs, _ = p.model.forward(p.x)
    h = np.zeros((p.x.shape[1], p.model.hidden_size))
    for t in range(p.x.shape[0]):
        h = p.x[t] @ p.model.W_hx.T + h @ p.model.W_hh.T
        assert rel_err(outputs[t], h @ p.model.W_qh.T) <= 1e-12


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e17), (np.float64, 1e200), (np.float32, 1e30)])
def test_cross_entropy_with_huge_logits(dtype, scale):
    """Logits far beyond exp's range: the loss is log(sum exp(o - max)) + max - o_c (NumPy, in
    float64, on the model's own logits). Written as m + log s - o_c it rounded to 0 for equal
    logits of 1e16 and more."""
    model = rb.RNN(1, 1, 3, dtype=dtype, seed=0)
    model.params[:] = 0
    model.W_hx[:] = 100  # h = tanh(100) = 1
    model.W_qh[:] = np.array([[1.0], [1.0], [-1.0]]) * scale  # logits (scale, scale, -scale)
    o = model.forward(np.zeros((1, 1), np.int64))[0].astype(np.float64).reshape(3)
    loss = model.loss(np.array([[1]]))
    m = o.max()
    expected = np.log(np.sum(np.exp(o - m))) + (m - o[1])
    assert expected == pytest.approx(np.log(2.0), rel=1e-12)
    assert loss == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-14, abs=0.0)


def test_squared_error_of_large_float32_outputs_is_summed_in_float64():
    model = rb.RNN(1, 1, 1, dtype=np.float32, seed=0)
    model.params[:] = 0
    model.W_hx[:] = 100
    model.W_qh[:] = 2e19  # o = 2e19: its square overflows float32, the loss 2e38 does not
    o = float(model.forward(np.zeros((1, 1), np.int64))[0].reshape(()))
    loss = model.loss(np.zeros((1, 1, 1), np.float32))
    assert loss == pytest.approx(0.5 * o * o, rel=1e-12, abs=0.0) and np.isfinite(loss)


def test_unweighted_loss_is_mean_over_all_positions():
    p = make_problem(T=4, n=5)
    p.model.forward(p.x)
    unweighted = p.model.loss(p.targets)
    ones = np.ones(p.targets.shape)
    p.model.forward(p.x)
    assert p.model.loss(p.targets, ones) == pytest.approx(unweighted, rel=1e-14)


def test_custom_output_gradient_matches_loss_gradient():
    p = make_problem(loss="squared_error", tokens=False)
    outputs, _ = p.model.forward(p.x, p.h0)
    p.model.loss(p.targets)
    p.model.backward()
    expected = model_grads(p.model)
    p.model.forward(p.x, p.h0)
    T, n = p.targets.shape[:2]
    p.model.set_output_gradient((outputs - p.targets) / (T * n))
    p.model.backward()
    for name, g in model_grads(p.model).items():
        assert rel_err(g, expected[name]) <= 1e-13


# Products over many rows, against the reference:
# - chunked: T n = 3,000 rows make two chunks of the batched products (cpp/src/kernels/overlap.hpp),
#   and n h^2 is small: with 2 threads they overlap the recurrence, with 1 after it;
# - deep: the weight gradients sum over T n = 2,240 rows in several tiles per thread, which
#   share their packed operands (cpp/src/kernels/gemm.hpp; DEEP_PRODUCTS in conftest.py).
MANY_ROWS = {
    "chunked": dict(T=150, n=20, h=24, q=9),
    "deep": DEEP_PRODUCTS,
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("shape", list(MANY_ROWS))
def test_products_over_many_rows_match_reference(restore_threads, threads, tokens, shape):
    rb.set_num_threads(threads)
    p = make_problem(tokens=tokens, **MANY_ROWS[shape])
    rng = np.random.default_rng(2)
    dh_T = rng.standard_normal(p.h0.shape)
    outputs, h_T = p.model.forward(p.x, p.h0)
    value = p.model.loss(p.targets)
    result = p.model.backward(dh_T, dx=not tokens)
    hs, os = reference.forward(p.params64(), p.x, p.h0, "tanh")
    ref_loss, ref_grads, ref_dh0, ref_dx = reference.loss_and_grads(p.params64(), p.x, p.targets, h0=p.h0, dh_T=dh_T)
    assert rel_err(outputs, np.stack([o.T for o in os])) <= 1e-12
    assert abs(value - ref_loss) <= 1e-12 * abs(ref_loss)
    for name, g in model_grads(p.model).items():
        assert rel_err(g, ref_grads[name]) <= 1e-10, name
    assert rel_err(result.dh0, ref_dh0) <= 1e-10
    if not tokens:
        assert rel_err(result.dx, ref_dx) <= 1e-10
