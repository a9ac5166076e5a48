"""Limits of the compiled core (issue 9): sizes whose products overflow or cannot be
allocated, the non-finite policy (inputs are checked at entry, naming the argument), loss
weights of any scale, a stable oracle, and one model's buffers never used by two threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import _core, reference

# ---- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes,bias,name",
    [
        ((2**62, 4, 1), True, "input_size"),  # h*d wrapped to 0: 25 parameters, then a segfault
        ((2**32, 2**32, 2**32), False, "hidden_size"),  # wrapped to 0 parameters
        ((5, 2**40, 3), True, "hidden_size"),  # h*h = 2**80
        ((3, 2**31 + 1, 2**33), True, "output_size"),  # q*h wraps
    ],
)
def test_parameter_count_overflow_is_refused(sizes, bias, name):
    for cls in (_core.ModelFloat32, _core.ModelFloat64):
        with pytest.raises(ValueError, match=rf"^{name}: expected sizes whose product fits .*overflows"):
            cls(*sizes, "tanh", bias)
    with pytest.raises(ValueError, match=rf"^{name}: "):
        rb.RNN(*sizes, bias=bias)


def test_parameter_bytes_beyond_ptrdiff_max_are_refused():
    # 2**62 values fit std::ptrdiff_t, their bytes do not.
    with pytest.raises(ValueError, match=r"^input_size: expected sizes whose buffers fit in memory, .*PTRDIFF_MAX"):
        _core.ModelFloat32(2**60, 4, 1, "tanh", True)
    with pytest.raises(ValueError, match=r"^hidden_size: .*values of 8 bytes .*PTRDIFF_MAX"):
        _core.ModelFloat64(1, 2**30 + 2**29, 1, "tanh", False)


def test_unallocatable_model_is_a_memory_error_naming_the_argument():
    # 2**56 parameters fit size_t and PTRDIFF_MAX, but no machine has 2**58 bytes.
    with pytest.raises(MemoryError, match=r"^hidden_size: cannot allocate \d+ bytes for the parameters"):
        _core.ModelFloat32(5, 2**28, 3, "tanh", True)
    with pytest.raises(MemoryError, match=r"hidden_size: cannot allocate \d+ bytes"):
        rb.RNN(5, 2**28, 3)


def test_unallocatable_workspace_is_a_memory_error_naming_x():
    # T*n*q*8 = 2**48 bytes: more than any address space, for 64 MB of (untouched) token ids.
    m = _core.ModelFloat64(2, 1, 2**21, "identity", True)
    x = np.zeros((2**12, 2**12), np.int32)
    with pytest.raises(MemoryError, match=r"^x: cannot allocate 281474976710656 bytes for the outputs T x n x q"):
        m.forward(x, None)
    outputs, _ = m.forward(np.zeros((2, 1), np.int32), None)  # still usable
    assert outputs.shape == (2, 1, 2**21)


# ---- non-finite inputs ---------------------------------------------------------------------


def small_model(dtype=np.float64):
    m = rb.RNN(3, 4, 2, dtype=dtype, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(dtype)
    m.forward(x)
    m.loss(np.zeros((5, 2), np.int64))
    return m


@pytest.mark.parametrize("bad,text", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_dh_T_is_refused(bad, text, dtype):
    m = small_model(dtype)
    m.backward()
    before = m.grads.copy()
    dh_T = np.zeros((2, 4), dtype)
    dh_T[1, 2] = bad
    with pytest.raises(ValueError, match=rf"^dh_T: expected finite values, got {text} at \[1, 2\]$"):
        m.backward(dh_T)
    assert np.array_equal(m.grads, before)  # checked before anything is written


def test_non_finite_h0_and_d_outputs_name_the_position():
    m = rb.RNN(3, 4, 2, dtype=np.float64)
    h0 = np.zeros((2, 4))
    h0[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"^h0: expected finite values, got nan at \[0, 3\]$"):
        m.forward(np.zeros((5, 2, 3)), h0)
    m.forward(np.zeros((5, 2, 3)))
    g = np.zeros((5, 2, 2))
    g[4, 1, 0] = -np.inf
    with pytest.raises(ValueError, match=r"^d_outputs: expected finite values, got -inf at \[4, 1, 0\]$"):
        m.set_output_gradient(g)


@pytest.mark.parametrize("value", [1e300, np.inf, np.nan, -1.0])
def test_init_std_must_give_finite_float32_parameters(value):
    m = _core.ModelFloat32(3, 4, 2, "tanh", True)
    m.init_normal(0.1, 0)
    before = m.params.copy()
    with pytest.raises(ValueError, match=r"^init_std: expected a finite value >= 0.*, got "):
        m.init_normal(value, 0)
    assert np.array_equal(m.params, before)  # unchanged on error
    if value == 1e300:
        with pytest.raises(ValueError, match=r"got 1e\+300 \(parameters would not be finite in float32\)"):
            m.init_normal(value, 0)
        with pytest.raises(ValueError, match=r"init_std: .*1e\+300"):
            rb.RNN(3, 4, 2, init_std=1e300)


def test_init_std_and_bound_limits():
    m64 = _core.ModelFloat64(3, 4, 2, "tanh", True)
    m64.init_normal(1e300, 0)  # finite in float64
    assert np.isfinite(m64.params).all() and np.abs(m64.params).max() > 1e299
    with pytest.raises(ValueError, match=r"init_std: .*got 1e\+308 \(parameters would not be finite in float64\)"):
        m64.init_normal(1e308, 3)
    m32 = _core.ModelFloat32(3, 4, 2, "tanh", True)
    message = r"^bound: expected a finite value >= 0, got 1e\+39 \(parameters would not be finite in float32\)"
    with pytest.raises(ValueError, match=message):
        m32.init_uniform(1e39, 0)
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match=r"^bound: expected a finite value >= 0"):
            m64.init_uniform(bad, 0)
    m64.init_uniform(1e300, 0)
    assert np.isfinite(m64.params).all()


@pytest.mark.parametrize("cls", [_core.AdamFloat32, _core.AdamFloat64])
@pytest.mark.parametrize("bad,text", [(np.inf, "inf"), (np.nan, "nan"), (0.0, "0"), (-1.0, "-1")])
def test_adam_lr_setter_validates(cls, bad, text):
    adam = cls(4, 0.01)
    with pytest.raises(ValueError, match=rf"^lr: expected a finite value > 0, got {text}$"):
        adam.lr = bad
    assert adam.lr == 0.01
    params, grads = np.ones(4, adam.m.dtype), np.ones(4, adam.m.dtype)
    adam.step(params, grads)
    assert np.isfinite(params).all()
    adam.lr = 0.5
    assert adam.lr == 0.5


def test_adam_wrapper_refuses_infinite_lr():
    adam = rb.Adam(4, np.float64, lr=0.01)
    with pytest.raises(ValueError, match="lr: "):
        adam.lr = float("inf")


@pytest.mark.parametrize("function", [rb.spectral_radius, rb.largest_singular_value])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diagnostics_refuse_non_finite_matrices(function, dtype):
    W = np.eye(3, dtype=dtype)
    W[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^W_hh: expected finite values, got nan at \[1, 0\]$"):
        function(W)
    W[1, 0] = 0
    W[2, 2] = np.inf
    with pytest.raises(ValueError, match=r"^W_hh: expected finite values, got inf at \[2, 2\]$"):
        function(W)


# ---- loss weights of any scale -------------------------------------------------------------


def weighted_step(targets, weights):
    m = rb.RNN(3, 5, 4, dtype=np.float64, seed=2)
    x = np.random.default_rng(3).standard_normal((6, 3, 3))
    m.forward(x)
    loss = m.loss(targets, weights)
    m.backward()
    return loss, m.grads.copy()


@pytest.mark.parametrize("kind", ["cross_entropy", "squared_error"])
def test_loss_does_not_depend_on_the_weights_scale(kind):
    rng = np.random.default_rng(4)
    if kind == "cross_entropy":
        targets = rng.integers(0, 4, (6, 3))
    else:
        targets = rng.standard_normal((6, 3, 4))
    w = rng.uniform(0.1, 1.0, (6, 3))
    w[2, 1] = 0.0  # a masked position
    loss, grads = weighted_step(targets, w)
    for scale in (1e300, 1e-300):
        scaled_loss, scaled_grads = weighted_step(targets, w * scale)
        assert np.isfinite(scaled_loss) and scaled_loss == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(scaled_grads, grads, rtol=1e-12, atol=1e-15 * np.abs(grads).max())
    ones_loss, ones_grads = weighted_step(targets, np.ones((6, 3)))
    for constant in (1e308, 1e-320):  # 1e-320 is subnormal
        c_loss, c_grads = weighted_step(targets, np.full((6, 3), constant))
        assert c_loss == pytest.approx(ones_loss, rel=1e-12)
        np.testing.assert_allclose(c_grads, ones_grads, rtol=1e-12, atol=1e-15 * np.abs(ones_grads).max())
    unweighted_loss, unweighted_grads = weighted_step(targets, None)
    assert unweighted_loss == pytest.approx(ones_loss, rel=1e-12)
    np.testing.assert_allclose(unweighted_grads, ones_grads, rtol=1e-12)
    # What is checked stays as it was: finite weights >= 0, not all zero.
    with pytest.raises(ValueError, match="weights: expected a positive sum, got 0"):
        weighted_step(targets, np.zeros((6, 3)))
    w[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"weights: expected finite values >= 0, got inf at \[3, 1\]"):
        weighted_step(targets, w)


# ---- a stable oracle -----------------------------------------------------------------------


def test_logit_gap_of_800_gives_loss_800_in_core_and_reference():
    m = rb.RNN(1, 1, 2, activation="identity", bias=False, dtype=np.float64)
    m.params[:] = [1.0, 0.0, 800.0, 0.0]  # W_hx, W_hh, W_qh: h = x, o = (800 h, 0)
    x = np.ones((1, 1, 1))
    targets = np.array([[1]], np.int64)
    m.forward(x)
    assert m.loss(targets) == 800.0
    m.backward()
    loss, grads, _, _ = reference.loss_and_grads(m.named_parameters(), x, targets, activation="identity")
    assert loss == 800.0
    np.testing.assert_allclose(grads["W_qh"].ravel(), m.grad("W_qh").ravel(), rtol=1e-12)
    np.testing.assert_allclose(grads["W_hx"].ravel(), m.grad("W_hx").ravel(), rtol=1e-12)


# ---- one model, one thread -----------------------------------------------------------------


def test_buffer_functions_are_refused_during_another_threads_backward(restore_threads):
    """A worker runs forward, loss and a long backward on one model; once it is inside the
    backward, every binding that takes a view of that model's buffers is refused."""
    rb.set_num_threads(1)  # a long backward, and a core left for this thread
    m = rb.RNN(64, 256, 64, dtype=np.float64)
    x = np.random.default_rng(0).integers(0, 64, (1500, 16))
    y = np.random.default_rng(1).integers(0, 64, (1500, 16))
    adam = rb._core.AdamFloat64(m.num_parameters, 1e-3)
    in_backward = threading.Event()
    errors: list[BaseException] = []
    span: list[float] = []

    def work():
        try:
            m.forward(x)
            m.loss(y)
            in_backward.set()
            span.append(time.perf_counter())
            m.backward()
            span.append(time.perf_counter())
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    worker = threading.Thread(target=work)
    worker.start()
    assert in_backward.wait(30)
    time.sleep(0.05)  # the worker is in C++ now, holding the model
    calls = {
        "global_norm": lambda: rb.global_norm(m.grads),
        "clip_grad_norm": lambda: rb.clip_grad_norm(m.grads, 1.0),
        "clip_grad_value": lambda: rb.clip_grad_value(m.grads[10:20], 1.0),
        "sgd_step": lambda: _core.sgd_step(m.params, m.grads, 0.1),
        "adam_step": lambda: adam.step(m.params, m.grads),
        "spectral_radius": lambda: rb.spectral_radius(m.W_hh),
    }
    refused = {}
    for name, call in calls.items():
        try:
            call()
        except RuntimeError as error:
            refused[name] = str(error)
    checked_at = time.perf_counter()
    worker.join()
    assert not errors, errors
    assert checked_at < span[1], "the backward ended before the checks; make it longer"
    assert set(refused) == set(calls), refused
    assert all("another thread is using this model" in text for text in refused.values())
    # Afterwards the same calls work, and the arrays of other owners are never locked.
    assert np.isfinite(rb.global_norm(m.grads))
    adam.step(m.params, m.grads)
    assert rb.global_norm(np.ones(4)) == 2.0


def test_loss_and_backward_must_run_on_the_forward_thread():
    m = rb.RNN(3, 4, 2, dtype=np.float64)
    x = np.zeros((5, 2, 3))
    y = np.zeros((5, 2), np.int64)
    worker = threading.Thread(target=lambda: m.forward(x))
    worker.start()
    worker.join()
    message = r"^model: expected the thread that ran forward, got another thread \(use one model per thread\)$"
    with pytest.raises(RuntimeError, match=message):
        m.loss(y)
    with pytest.raises(RuntimeError, match=message):
        m.set_output_gradient(np.zeros((5, 2, 2)))
    with pytest.raises(RuntimeError, match=message):
        m.backward()
    m.forward(x)  # this thread's forward: the rest follows
    m.loss(y)
    m.backward()
    assert np.isfinite(m.grads).all()
