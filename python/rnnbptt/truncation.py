"""The three truncation strategies of the seed's figure (DESIGN.md section 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from . import _core
from ._core import Truncation


def Full() -> Truncation:  # noqa: N802 - named like the strategy it builds
    """Full BPTT: the gradient flows through every step (``c_t = 1``)."""
    return _core.full()


def Regular(k1: int, k2: Optional[int] = None) -> Truncation:  # noqa: N802
    """Williams & Peng's TBPTT(k1, k2): every ``k1`` steps a backward pass runs ``k2 >= k1``
    steps back and injects only the losses of the last ``k1`` steps. ``Regular(k)`` equals
    detaching the hidden state every ``k`` steps."""
    if k2 is None:
        k2 = k1
    elif k2 < 1 <= k1:  # the core reads k2 = 0 as "k2 = k1"; an explicit 0 is an error
        raise ValueError(f"k2: expected k2 >= k1 = {k1}, got {k2}")
    return _core.regular(k1, k2)


def Randomized(pi: Union[float, Sequence[float]], seed: int = 0) -> Truncation:  # noqa: N802
    """Randomized truncation: ``c_t = 1/pi_t`` with probability ``pi_t``, else 0 (a cut), so
    that the gradient is an unbiased estimate of the full one.

    ``pi`` is a constant keep probability in (0, 1], or a schedule where
    ``pi_t = pi[min(length, len(pi)) - 1]`` and ``length`` is how many steps the current
    segment already holds. The same ``seed`` gives the same cuts, bit for bit.
    """
    if isinstance(pi, (int, float)):
        return _core.randomized(float(pi), seed)
    return _core.randomized_schedule([float(p) for p in pi], seed)
