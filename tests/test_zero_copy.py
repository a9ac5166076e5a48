"""Parameters, gradients and inputs are shared with C++, never copied."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference

from conftest import make_problem, rel_err


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameter_and_gradient_views_share_memory(dtype):
    m = rb.RNN(5, 6, 4, dtype=dtype)
    assert m.params.dtype == dtype and m.params.flags.writeable
    assert m.params.size == m.num_parameters == 6 * 5 + 6 * 6 + 6 + 4 * 6 + 4
    for name in m.parameter_names():
        assert np.shares_memory(m.param(name), m.params)
        assert np.shares_memory(m.grad(name), m.grads)
    # Every call returns a view of the same buffer.
    assert np.shares_memory(m.params, m.params)
    assert m.params.__array_interface__["data"][0] == m.params.__array_interface__["data"][0]


def test_writes_through_views_change_the_model():
    p = make_problem()
    p.model.W_hh[:] = 0.0  # through the shaped view
    p.model.params[: p.model.W_hx.size] *= 2.0  # through the flat view
    outputs, _ = p.model.forward(p.x, p.h0)
    _, os = reference.forward(p.params64(), p.x, p.h0, "tanh")
    assert rel_err(outputs, np.stack([o.T for o in os])) <= 1e-12
    assert not p.model.W_hh.any()


def test_gradients_land_in_the_flat_buffer():
    p = make_problem()
    flat = p.model.grads
    p.model.forward_backward(p.x, p.targets, h0=p.h0)
    _, grads, _, _ = reference.loss_and_grads(p.params64(), p.x, p.targets, h0=p.h0)
    offset = 0
    for name in p.model.parameter_names():
        size = grads[name].size
        assert rel_err(flat[offset : offset + size].reshape(grads[name].shape), grads[name]) <= 1e-10
        offset += size


def test_input_is_used_in_place_until_backward():
    """backward reads x from the caller's array: a change to it shows in dW_hx, which a copy
    taken at forward time could not."""
    p = make_problem(tokens=False)
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets)
    p.x[0] += 1.0  # after forward, before backward
    p.model.backward()
    hs, os = reference.forward(p.params64(), p.x - np.eye(1, p.x.shape[0])[0][:, None, None], p.h0)
    _, dos = reference.loss_and_output_grads(os, p.targets)
    grads, _, _ = reference.backward(p.params64(), p.x, hs, dos)
    assert rel_err(p.model.grad("W_hx"), grads["W_hx"]) <= 1e-10


def test_views_keep_the_model_alive():
    m = rb.RNN(3, 4, 2, dtype=np.float64)
    m.params[:] = 0.25
    view = m.W_hh
    del m
    import gc

    gc.collect()
    assert (view == 0.25).all()


@pytest.mark.parametrize("d,h,q", [(1, 4, 3), (3, 1, 2), (1, 1, 1)])
def test_unit_sizes_keep_matrix_shapes(d, h, q):
    """A scalar input (d = 1) or a single hidden unit (h = 1) still gives matrices, and
    N(0, std^2) initializes them: only b_h and b_q are vectors (and start at zero)."""
    m = rb.RNN(d, h, q, dtype=np.float64, init_std=0.5)
    assert m.W_hx.shape == (h, d) and m.W_hh.shape == (h, h) and m.W_qh.shape == (q, h)
    assert m.b_h.shape == (h,) and m.b_q.shape == (q,)
    assert np.all(m.W_hx != 0) and np.all(m.W_hh != 0) and not m.b_h.any() and not m.b_q.any()
    x = np.random.default_rng(0).standard_normal((5, 2, d))
    y = np.random.default_rng(1).standard_normal((5, 2, q))
    loss, _ = m.forward_backward(x, y)
    ref_loss, ref_grads, _, _ = reference.loss_and_grads(m.named_parameters(), x, y)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for name, g in m.named_gradients().items():
        assert rel_err(g, ref_grads[name]) <= 1e-10, name
