"""The vanishing/exploding analysis of docs/design.md section 3.4, made measurable.

``dL/dh_t`` holds powers of ``W_hh^T`` (the closed form of section 3.3). Their long-run growth is set
by the spectral radius of ``W_hh``; the largest singular value bounds how much a single step
can amplify a gradient (``||W_hh^T g|| <= sigma_max ||g||``). Per-step gradient norms come
from ``model.backward(record_dh_norms=True)`` and ``model.dh_norms``.
"""

from __future__ import annotations

import numpy as np

from . import _core


def spectral_radius(W_hh: np.ndarray) -> float:  # noqa: N803 - the textbook's name
    """``max |lambda_i(W_hh)|``."""
    return float(_core.spectral_radius(W_hh))


def largest_singular_value(W_hh: np.ndarray) -> float:  # noqa: N803
    """``sigma_max(W_hh) = ||W_hh||_2``."""
    return float(_core.largest_singular_value(W_hh))
