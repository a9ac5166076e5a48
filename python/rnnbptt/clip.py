"""Gradient clipping over a flat gradient buffer (docs/design.md section 6), in C++.

``clip_grad_norm`` computes ``g <- min(1, theta / ||g||) g`` with ``||g||`` the L2 norm of all
gradients as one vector, and returns the norm before clipping. At ``||g|| == theta`` the
gradient is left exactly as it is. ``torch.nn.utils.clip_grad_norm_`` scales by
``theta / (||g|| + 1e-6)`` instead, so it shrinks a gradient at the boundary by a relative
``1e-6 / theta``, and elsewhere the two differ by a relative ``1e-6 / ||g||``.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._checks import check_real
from ._core import ClipReport, NonFiniteError

__all__ = ["ClipReport", "NonFiniteError", "clip_grad_norm", "clip_grad_value", "global_norm"]

_POLICIES = {"raise": _core.NonFinitePolicy.raise_, "report": _core.NonFinitePolicy.report}


def global_norm(grads: np.ndarray) -> float:
    """L2 norm of a flat float32/float64 buffer, accumulated in float64 in one fixed order.

    Element ``i`` is added into partial sum ``i % 16`` and the 16 partial sums are then added in
    order, whatever the thread count or SIMD variant (for float32 input the result is the same
    bits on every variant: a float's square is exact in float64). float64 elements whose squares
    leave float64's range (above about 1e154, or all below about 1e-154) are summed again in the
    same order, scaled by a power of two, so the norm is right wherever it is itself a finite
    float64: ``inf`` only when it exceeds the largest float64 or an element is infinite, ``nan``
    when an element is NaN.
    """
    return float(_core.global_norm(grads))


def clip_grad_norm(grads: np.ndarray, max_norm: float, nonfinite: str = "raise") -> ClipReport:
    """Scale ``grads`` in place so that its L2 norm is at most ``max_norm``.

    Parameters
    ----------
    grads : ndarray
        Flat, writable, C-contiguous float32 or float64 array (e.g. ``model.grads``).
    max_norm : float
        ``theta > 0``.
    nonfinite : {"raise", "report"}
        When the norm is NaN or infinite: raise :class:`NonFiniteError` (a
        ``FloatingPointError``), or return a report with ``finite=False``. Either way the
        gradient is left untouched.

    Returns
    -------
    ClipReport
        ``norm`` before clipping, ``scale`` applied (``max_norm / norm`` as a float64, which
        can underflow to 0 for a huge norm and a tiny ``max_norm``; the gradient is still
        scaled right), ``finite``.
    """
    if nonfinite not in _POLICIES:
        raise ValueError(f"nonfinite: expected 'raise' or 'report', got {nonfinite!r}")
    return _core.clip_grad_norm(grads, check_real(max_norm, "max_norm", finite=False), _POLICIES[nonfinite])


def clip_grad_value(grads: np.ndarray, clip_value: float) -> int:
    """Clamp every gradient to ``[-clip_value, clip_value]`` in place; returns how many were
    clipped."""
    return int(_core.clip_grad_value(grads, check_real(clip_value, "clip_value", finite=False)))
