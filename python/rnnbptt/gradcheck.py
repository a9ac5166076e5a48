"""Central finite differences for any parameter of an :class:`~rnnbptt.RNN`."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .model import RNN


def numerical_gradient(
    f: Callable[[], float], array: np.ndarray, indices: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """``(f(a + eps e_i) - f(a - eps e_i)) / (2 eps)`` for each flat index ``i`` of ``array``
    (modified in place and restored)."""
    flat = array.reshape(-1)
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        out[k] = (plus - minus) / (2 * eps)
    return out


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a - n| / max(max |a|, max |n|, tiny)``: scale-aware, defined at zero."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-300)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def check_gradients(
    model: RNN,
    x: np.ndarray,
    targets: np.ndarray,
    *,
    h0: Optional[np.ndarray] = None,
    weights: Optional[np.ndarray] = None,
    samples: int = 20,
    eps: float = 1e-6,
    seed: int = 0,
) -> dict[str, float]:
    """Compare the model's BPTT gradient with central differences of its own loss on
    ``samples`` random entries of each parameter. Returns the relative error per parameter.
    Use float64: float32 differences are too coarse for a meaningful check."""

    def loss() -> float:
        model.forward(x, h0)
        return model.loss(targets, weights)

    model.forward_backward(x, targets, h0=h0, weights=weights)
    analytic = {name: model.grad(name).copy() for name in model.parameter_names()}
    rng = np.random.default_rng(seed)
    errors = {}
    for name in model.parameter_names():
        param = model.param(name)
        indices = rng.choice(param.size, size=min(samples, param.size), replace=False)
        numeric = numerical_gradient(loss, param, indices, eps)
        errors[name] = relative_error(analytic[name].reshape(-1)[indices], numeric)
    return errors
