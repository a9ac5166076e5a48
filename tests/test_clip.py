"""Clipping over the flat gradient buffer against NumPy and torch.nn.utils.clip_grad_norm_."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnbptt as rb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_is_the_l2_norm(dtype):
    g = np.random.default_rng(0).standard_normal(10_001).astype(dtype)
    assert rb.global_norm(g) == pytest.approx(np.linalg.norm(g.astype(np.float64)), rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_every_tail_and_a_fixed_order(dtype):
    """Each length up to past two blocks of the 16 partial sums, values far apart in size (a lost
    or doubled element shows), and the order stated in the docstring: element i in partial sum
    i % 16, then the 16 sums in order."""
    rng = np.random.default_rng(1)
    for size in [*range(0, 40), 1_000_003]:
        g = (rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4, size)).astype(dtype)
        squares = g.astype(np.float64) ** 2
        # 16 running sums of 62,500 squares against NumPy's pairwise sum: a few 1e-14 apart.
        rel = 1e-14 if size < 40 else 1e-12
        assert rb.global_norm(g) == pytest.approx(np.sqrt(squares.sum()), rel=rel, abs=0.0), size
        if size < 40 and dtype == np.float32:  # the exact order (a float's square is exact in double)
            partial = [0.0] * 16
            for i, square in enumerate(squares):
                partial[i % 16] += float(square)
            total = 0.0
            for value in partial:  # in order (Python 3.12's sum() compensates its rounding)
                total += value
            assert rb.global_norm(g) == np.sqrt(total), size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_scales_above_theta(dtype):
    g = np.random.default_rng(1).standard_normal(1000).astype(dtype)
    norm = np.linalg.norm(g.astype(np.float64))
    original = g.copy()
    report = rb.clip_grad_norm(g, norm / 4)
    assert report.norm == pytest.approx(norm, rel=1e-12)
    assert report.scale == pytest.approx(0.25, rel=1e-12) and report.finite
    np.testing.assert_allclose(g, original * 0.25, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_clip_grad_norm_leaves_small_and_boundary_gradients_exactly():
    g = np.array([3.0, 4.0])  # norm 5 exactly
    for theta in (5.0, 7.0):
        report = rb.clip_grad_norm(g, theta)
        assert report.scale == 1.0 and report.norm == 5.0
        assert np.array_equal(g, [3.0, 4.0])


def test_clip_grad_norm_matches_torch_away_from_the_boundary(torch):
    g = np.random.default_rng(2).standard_normal(5000)
    for theta in (0.1, 10.0, 70.0, 1000.0):
        ours = g.copy()
        report = rb.clip_grad_norm(ours, theta)
        tensor = torch.zeros(5000, dtype=torch.float64, requires_grad=True)
        tensor.grad = torch.from_numpy(g.copy())
        torch_norm = torch.nn.utils.clip_grad_norm_([tensor], theta)
        assert report.norm == pytest.approx(torch_norm.item(), rel=1e-13)
        # Torch divides by norm + 1e-6: a relative difference of about 1e-6 / norm.
        np.testing.assert_allclose(ours, tensor.grad.numpy(), rtol=2e-6 / report.norm, atol=0)


@pytest.mark.parametrize("exponent", [-320, -300, -200, -160, 160, 200, 300, 305])
def test_float64_norms_where_the_squares_leave_float64s_range(exponent):
    """Gradients whose squares overflow (above about 1e154) or underflow (below about 1e-154)
    while the norm is an ordinary float64: against math.hypot (an accurate multi-argument
    hypot) and against NumPy's norm of the gradient divided by its largest magnitude (with no
    absolute tolerance: pytest.approx's default 1e-12 would pass 0 for 1e-300)."""
    rng = np.random.default_rng(exponent + 1000)
    for size in (1, 2, 17, 33, 1001):
        g = rng.standard_normal(size) * 10.0**exponent
        largest = float(np.max(np.abs(g)))
        norm = rb.global_norm(g)
        assert norm == pytest.approx(math.hypot(*g), rel=1e-14, abs=0.0), size
        assert norm == pytest.approx(largest * np.linalg.norm(g / largest), rel=1e-14, abs=0.0), size
        report = rb.clip_grad_norm(g, 1.0)
        assert report.finite and report.norm == norm
        assert rb.global_norm(g) == pytest.approx(min(1.0, norm), rel=1e-12, abs=0.0), size


def test_float64_norm_with_magnitudes_far_apart_and_beyond_the_largest_float64():
    g = np.array([1e300, -3e299, 1e-300, 0.0, 5e-324])
    assert rb.global_norm(g) == pytest.approx(math.hypot(*g), rel=1e-15, abs=0.0)
    # No square overflows, but their sum does: 10,000 x (1e153)^2 = 1e310.
    assert rb.global_norm(np.full(10_000, 1e153)) == pytest.approx(1e155, rel=1e-14, abs=0.0)
    # NaN stays NaN beside huge or tiny elements and beside an infinite one.
    for other in (1e300, 1e-300, np.inf):
        assert math.isnan(rb.global_norm(np.array([other, np.nan, 1.0])))
    assert rb.global_norm(np.array([1e-300, -np.inf])) == np.inf
    assert rb.global_norm(np.full(4, 1.5e308)) == np.inf  # the norm, 3e308, is not a float64
    with pytest.raises(rb.NonFiniteError, match="expected a finite value, got inf"):
        rb.clip_grad_norm(np.full(4, 1.5e308), 1.0)


def test_float64_rescaled_norm_is_the_in_order_sum_when_no_square_rounds():
    """Elements near 2^-410 have squares near 2^-820 (normal doubles, below the 2^-800 where the
    sum is taken again scaled by a power of two): the scaled sum is exact scaling of the same
    sums, so the norm is the same bits as sqrt of the in-order sum of the squares."""
    g = np.random.default_rng(7).uniform(0.5, 1.0, 37) * 2.0**-410
    partial = [0.0] * 16
    for i, x in enumerate(g):
        partial[i % 16] += float(x) * float(x)
    total = 0.0
    for value in partial:
        total += value
    assert total < 2.0**-800
    assert rb.global_norm(g) == math.sqrt(total)


@pytest.mark.parametrize("dtype, value, theta", [(np.float64, 1e308, 1e-15), (np.float64, 1e308, 1e-20),
                                                  (np.float32, 3e38, 1e-10), (np.float32, 3e38, 1e-3)])
def test_clip_to_a_factor_below_the_normal_range(dtype, value, theta):
    """theta / ||g|| below the dtype's smallest normal number: as a factor in that dtype it kept
    a few digits (10% off for 1e308 clipped to 1e-15) or none (0). The clipped gradient has norm
    theta."""
    g = np.array([value, -value / 2], dtype=dtype)
    norm = math.hypot(float(g[0]), float(g[1]))
    report = rb.clip_grad_norm(g, theta)
    assert report.norm == pytest.approx(norm, rel=1e-15, abs=0.0)
    expected = np.array([value, -value / 2], dtype=np.float64) / norm * theta
    np.testing.assert_allclose(g.astype(np.float64), expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradients_raise_or_report(bad):
    g = np.ones(10)
    g[4] = bad
    with pytest.raises(rb.NonFiniteError, match="gradient norm: expected a finite value"):
        rb.clip_grad_norm(g, 1.0)
    assert issubclass(rb.NonFiniteError, FloatingPointError)
    report = rb.clip_grad_norm(g, 1.0, nonfinite="report")
    assert not report.finite and report.scale == 1.0
    assert np.array_equal(g[:4], np.ones(4))  # untouched


def test_clip_grad_value():
    g = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    expected = np.clip(g, -0.5, 0.5)
    clipped = rb.clip_grad_value(g, 0.5)
    assert np.array_equal(g, expected)
    assert clipped == int((np.abs(expected) == 0.5).sum())


def test_clip_on_model_grads_is_in_place():
    m = rb.RNN(4, 5, 3, dtype=np.float64)
    m.grads[:] = 1.0
    rb.clip_grad_norm(m.grads, 1.0)
    assert rb.global_norm(m.grads) == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("theta", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_theta(theta):
    with pytest.raises(ValueError, match="max_norm: expected a finite theta > 0"):
        rb.clip_grad_norm(np.ones(3), theta)


def test_invalid_buffers():
    with pytest.raises(ValueError, match="clip_value: expected a finite limit > 0, got 0"):
        rb.clip_grad_value(np.ones(3), 0.0)
    with pytest.raises(TypeError, match="grads: expected a C-contiguous float32 or float64 array"):
        rb.clip_grad_norm(np.ones(3, dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match="grads: .*not C-contiguous"):
        rb.clip_grad_norm(np.ones(6)[::2], 1.0)
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="grads: expected a writeable array"):
        rb.clip_grad_norm(read_only, 1.0)
    with pytest.raises(ValueError, match="nonfinite: expected 'raise' or 'report'"):
        rb.clip_grad_norm(np.ones(3), 1.0, nonfinite="ignore")
