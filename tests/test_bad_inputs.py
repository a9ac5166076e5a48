"""Every bad input raises a clear error naming the argument, what was expected and what was
received; nothing crashes, nothing is silently converted or copied."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb


@pytest.fixture
def model():
    return rb.RNN(5, 4, 3, dtype=np.float32)


def dense(T=6, n=2, d=5, dtype=np.float32):
    return np.zeros((T, n, d), dtype=dtype)


def ids(T=6, n=2, high=3):
    return np.zeros((T, n), dtype=np.int64) % high


@pytest.mark.parametrize(
    "x,error,pieces",
    [
        (dense(dtype=np.float64), TypeError, ["x:", "float32", "float64 array of shape (6, 2, 5)"]),
        (np.zeros((6, 2), dtype=np.float32), ValueError, ["x:", "token ids", "float32 array of shape (6, 2)"]),
        (np.zeros((6, 2), dtype=np.int16), TypeError, ["x:", "int32/int64", "int16"]),
        (np.zeros((6, 2), dtype=np.uint32), TypeError, ["x:", "uint32"]),
        ([[0, 1], [1, 0]], TypeError, ["x:", "got an object of type list"]),
        (dense(d=4), ValueError, ["x:", "(T, n, d=5)", "(6, 2, 4)"]),
        (np.zeros((6, 2, 5, 1), dtype=np.float32), ValueError, ["x:", "(6, 2, 5, 1)"]),
        (np.asfortranarray(dense()), ValueError, ["x:", "not C-contiguous", "ascontiguousarray"]),
        (dense(T=12)[::2], ValueError, ["x:", "not C-contiguous"]),
        (np.zeros((6, 2), dtype=np.int64)[:, ::-1], ValueError, ["x:", "not C-contiguous"]),
        (dense(T=0), ValueError, ["x:", "T >= 1", "T = 0"]),
        (dense(n=0), ValueError, ["x:", "n >= 1", "n = 0"]),
        (np.zeros((0, 2), dtype=np.int32), ValueError, ["x:", "T = 0"]),
        (np.array([[0, 5]], dtype=np.int64), ValueError, ["x:", "[0, 5)", "got 5 at [0, 1]"]),
        (np.array([[-1, 0]], dtype=np.int32), ValueError, ["x:", "got -1 at [0, 0]"]),
        (dense(dtype=np.float32).byteswap().view(np.dtype(">f4")), TypeError, ["x:", ">f4"]),
    ],
)
def test_bad_x(model, x, error, pieces):
    with pytest.raises(error) as info:
        model.forward(x)
    for piece in pieces:
        assert piece in str(info.value), (piece, str(info.value))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(model, bad):
    x = dense()
    x[3, 1, 2] = bad
    with pytest.raises(ValueError, match=r"x: expected finite values, got .* at \[3, 1, 2\]"):
        model.forward(x)


def test_bad_h0(model):
    x = ids()
    with pytest.raises(ValueError, match=r"h0: .*\(n=2, h=4\).*\(3, 4\)"):
        model.forward(x, np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="h0: .*float32.*float64"):
        model.forward(x, np.zeros((2, 4)))
    h0 = np.zeros((2, 4), dtype=np.float32)
    h0[1, 1] = np.nan
    with pytest.raises(ValueError, match="h0: expected finite values"):
        model.forward(x, h0)


def test_bad_targets_and_weights(model):
    model.forward(ids())
    with pytest.raises(ValueError, match=r"targets: .*\(T=6, n=2\).*\(6, 3\)"):
        model.loss(np.zeros((6, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"targets: expected class ids in \[0, 3\), got 3 at \[2, 1\]"):
        y = np.zeros((6, 2), dtype=np.int64)
        y[2, 1] = 3
        model.loss(y)
    with pytest.raises(TypeError, match="targets: .*float64"):
        model.loss(np.zeros((6, 2, 3)))
    with pytest.raises(ValueError, match="targets: expected finite values"):
        model.loss(np.full((6, 2, 3), np.nan, dtype=np.float32))
    y = np.zeros((6, 2), dtype=np.int32)
    with pytest.raises(ValueError, match=r"weights: expected finite values >= 0, got -1 at \[1, 0\]"):
        w = np.ones((6, 2), dtype=np.float32)
        w[1, 0] = -1
        model.loss(y, w)
    with pytest.raises(ValueError, match="weights: expected a positive sum, got 0"):
        model.loss(y, np.zeros((6, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="weights: expected finite"):
        model.loss(y, np.full((6, 2), np.nan, dtype=np.float32))
    with pytest.raises(TypeError, match="weights: .*float32.*float64"):
        model.loss(y, np.ones((6, 2)))


def test_calls_out_of_order():
    m = rb.RNN(5, 4, 3)
    with pytest.raises(ValueError, match="loss: expected a forward pass first"):
        m.loss(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="backward: expected a forward pass first"):
        m.backward()
    m.forward(ids())
    with pytest.raises(ValueError, match=r"backward: expected dL/do"):
        m.backward()
    m.loss(np.zeros((6, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="dx: expected dense input, got token ids"):
        m.backward(dx=True)
    with pytest.raises(ValueError, match=r"dh_T: .*\(n=2, h=4\)"):
        m.backward(np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="dh_norms: expected a backward pass with record_dh_norms"):
        _ = m.dh_norms


def test_bad_construction():
    with pytest.raises(ValueError, match="hidden_size: expected a positive integer, got 0"):
        rb.RNN(5, 0, 3)
    with pytest.raises(ValueError, match="input_size: expected a positive integer, got -2"):
        rb.RNN(-2, 4, 3)
    with pytest.raises(ValueError, match="activation: expected 'identity', 'tanh' or 'relu', got 'sigmoid'"):
        rb.RNN(5, 4, 3, activation="sigmoid")
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got float16"):
        rb.RNN(5, 4, 3, dtype=np.float16)
    with pytest.raises(KeyError, match="name: expected one of"):
        rb.RNN(5, 4, 3, bias=False).param("b_h")


def test_a_failed_call_leaves_the_model_usable():
    m = rb.RNN(5, 4, 3, dtype=np.float64)
    x = np.zeros((6, 2), dtype=np.int64)
    y = np.zeros((6, 2), dtype=np.int64)
    m.forward(x)
    with pytest.raises(ValueError):
        m.forward(np.array([[9]], dtype=np.int64))
    with pytest.raises(ValueError, match="loss: expected a forward pass first"):
        m.loss(y)  # the failed forward invalidated the old activations
    m.forward(x)
    assert np.isfinite(m.loss(y))


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("bad", [10**12, 7, -1, 3])
def test_token_ids_changed_after_forward_cannot_reach_backward(dtype, bad):
    """forward copies and checks the ids (8 T n bytes); backward uses that copy, so changing
    the caller's array in between (this once crashed with SIGSEGV, or corrupted the heap) has
    no effect: the gradient is the one of the ids forward saw."""
    def gradient(mutate):
        m = rb.RNN(5, 4, 3, dtype=np.float64, seed=2)
        x = (np.arange(4) % 5).reshape(4, 1).astype(dtype)
        m.forward(x)
        m.loss(np.zeros((4, 1), np.int64))
        if mutate:
            x[2, 0] = dtype(bad) if np.iinfo(dtype).min <= bad <= np.iinfo(dtype).max else dtype(-2)
        m.backward()
        return m.grads.copy()
    assert np.array_equal(gradient(True), gradient(False))
