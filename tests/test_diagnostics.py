"""Vanishing/exploding diagnostics: ||dL/dh_t|| per step, spectral radius, sigma_max."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference

from conftest import make_problem, rel_err


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spectral_quantities_match_numpy(dtype):
    W = np.random.default_rng(0).standard_normal((40, 40)).astype(dtype)
    assert rb.spectral_radius(W) == pytest.approx(np.abs(np.linalg.eigvals(W.astype(np.float64))).max(), rel=1e-10)
    assert rb.largest_singular_value(W) == pytest.approx(np.linalg.norm(W.astype(np.float64), 2), rel=1e-10)


def test_spectral_errors():
    with pytest.raises(ValueError, match="W_hh: expected a non-empty square matrix"):
        rb.spectral_radius(np.ones((3, 4)))
    with pytest.raises(TypeError, match="W_hh: expected a C-contiguous float32 or float64 array"):
        rb.largest_singular_value(np.ones((3, 3), dtype=np.int32))


def reference_dh_norms(p, activation):
    """||dL/dh_t|| from the reference's recursion, written out here step by step."""
    params = p.params64()
    hs, os = reference.forward(params, p.x, p.h0, activation)
    _, dos = reference.loss_and_output_grads(os, p.targets, p.weights)
    norms, da = [], None
    for t in reversed(range(len(dos))):
        dh = params["W_qh"].T @ dos[t]
        if da is not None:
            dh = dh + params["W_hh"].T @ da
        norms.append(np.linalg.norm(dh))
        da = (1 - hs[t + 1] ** 2) * dh if activation == "tanh" else dh
    return norms[::-1]


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_dh_norms_match_reference(activation):
    p = make_problem(T=15, activation=activation, masked=True)
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets, p.weights)
    p.model.backward(record_dh_norms=True)
    assert rel_err(p.model.dh_norms, reference_dh_norms(p, activation)) <= 1e-10


@pytest.mark.parametrize("radius,vanishes", [(0.5, True), (1.5, False)])
def test_seed_story_vanishing_and_exploding(radius, vanishes):
    """Loss only at the last step: ||dL/dh_t|| scales like radius^(T - t) for a linear RNN
    whose W_hh is symmetric (so sigma_max equals the spectral radius)."""
    T = 30
    p = make_problem(T=T, activation="identity", bias=False, tokens=True, with_h0=False)
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    p.model.W_hh[:] = Q @ np.diag(radius * np.linspace(0.6, 1.0, 6)) @ Q.T
    assert rb.spectral_radius(p.model.W_hh) == pytest.approx(radius, rel=1e-12)
    assert rb.largest_singular_value(p.model.W_hh) == pytest.approx(radius, rel=1e-12)
    weights = np.zeros(p.targets.shape)
    weights[-1] = 1.0
    p.model.forward(p.x)
    p.model.loss(p.targets, weights)
    p.model.backward(record_dh_norms=True)
    norms = p.model.dh_norms
    ratio = norms[0] / norms[-1]
    bound = radius ** (T - 1)  # sigma_max^(T-1) bounds the growth from step T back to 1
    assert ratio <= bound * (1 + 1e-9)
    if vanishes:
        assert ratio < 1e-6
    else:
        assert ratio > 1e3


@pytest.mark.parametrize("scale", [1e200, 1e-170, 3.0])
def test_the_largest_singular_value_of_extreme_matrices(scale):
    """W^T W of such matrices would overflow or underflow; the norm is still right."""
    W = scale * np.diag([1.0, 0.5, 0.25])
    assert rb.largest_singular_value(W) == pytest.approx(scale, rel=1e-12)
    assert rb.largest_singular_value(np.zeros((3, 3))) == 0.0
