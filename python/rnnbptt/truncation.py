"""The three truncation strategies (docs/design.md section 4).

Every strategy is a :class:`Truncation`, an immutable object validated once, where it is built:
by :func:`Full`, :func:`Regular` and :func:`Randomized`, or from its string form with
:meth:`Truncation.parse` (``"full"``, ``"regular:K"``, ``"regular:K1,K2"``,
``"randomized:PI[,PI...][,seed=S]"``). ``str(t)`` gives that form back, and
``Truncation.parse(str(t)) == t``: command lines, logs and checkpoints use the string, everything
else the object.

``t.schedule(T, step_offset)`` shows what backward will run: the flow ``xi_t`` and the windows
``(first, begin, end)``: steps ``[first, end)`` of one backward pass, injecting the losses of
``[begin, end)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, Optional, Union

from ._checks import check_integer
from ._core import Truncation

__all__ = ["Full", "Randomized", "Regular", "Truncation"]


def _integer(value: Any, name: str) -> int:
    number = check_integer(value, name)
    if not -(2**63) <= number < 2**63:  # the core says what is wrong with the rest
        raise ValueError(f"{name}: expected a positive number of steps below 2**63, got {number}")
    return number


def _probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a probability in (0, 1], got {value!r} ({type(value).__name__})")
    return float(value)


def Full() -> Truncation:  # noqa: N802 - named like the strategy it builds
    """Full BPTT: the gradient flows through every step (``xi_t = 1``)."""
    return Truncation.full()


def Regular(k1: int, k2: Optional[int] = None) -> Truncation:  # noqa: N802
    """Williams & Peng's TBPTT(k1, k2): every ``k1`` steps a backward pass runs ``k2 >= k1``
    steps back and injects only the losses of the last ``k1`` steps. ``Regular(k)`` (that is,
    ``k2 = k1``) equals detaching the hidden state every ``k`` steps.

    Raises
    ------
    TypeError
        ``k1`` or ``k2`` is not an integer (NumPy integers are).
    ValueError
        ``k1 < 1`` or ``k2 < k1``.
    """
    first = _integer(k1, "k1")
    return Truncation.regular(first, first if k2 is None else _integer(k2, "k2"))


def Randomized(pi: Union[float, Sequence[float]], seed: int = 0) -> Truncation:  # noqa: N802
    """Randomized truncation: ``xi_t = 1/pi_t`` with probability ``pi_t``, else 0 (a cut), so
    that the gradient is an unbiased estimate of the full one.

    ``pi`` is a constant keep probability in (0, 1], or a schedule where
    ``pi_t = pi[min(length, len(pi)) - 1]`` and ``length`` is how many steps the current
    segment already holds. Draws are keyed by ``seed`` and the global step index: the same
    seed gives the same cuts, bit for bit, however a stream is cut into chunks.
    """
    if isinstance(pi, Sequence) and not isinstance(pi, str):
        schedule = [_probability(p, f"pi[{i}]") for i, p in enumerate(pi)]
    else:
        schedule = [_probability(pi, "pi")]
    draw_seed = check_integer(seed, "seed")
    if not 0 <= draw_seed < 2**64:
        raise ValueError(f"seed: expected an integer in [0, 2**64), got {draw_seed}")
    return Truncation.randomized(schedule, draw_seed)
