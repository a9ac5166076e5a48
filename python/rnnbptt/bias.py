"""The truncation-bias meter (docs/design.md section 4.7): how far a truncated gradient lies
from the Full one, on given data.

Truncation trades bias for cost; :func:`truncation_bias` measures the bias. It runs one forward
pass and one loss, the Full backward pass (``g_F``) and the truncated one (``g_T``) on the same
activations, and compares them over all parameters and tensor by tensor: the relative norm of
the difference and the cosine. Randomized truncation is a random estimate of ``g_F``; the meter
runs it ``draws`` times (draw ``i`` with seed ``seed + i``), compares the mean of the draws with
``g_F`` and gives the standard error of that mean, so that an unbiased estimate shows as a
relative bias of the order of its standard error, shrinking as ``1/sqrt(draws)``.

The computation is the core's (``rnnbptt/train/bias.hpp``), the same from C++.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._checks import as_lengths, check_integer
from ._table import text_table
from .model import RNN
from .truncation import Truncation

__all__ = ["BiasMeasure", "DEFAULT_DRAWS", "ParameterBias", "TruncationBias", "bias_table", "truncation_bias"]

BiasMeasure = _core.BiasMeasure
ParameterBias = _core.ParameterBias
TruncationBias = _core.TruncationBias
#: Draws of a Randomized strategy when ``draws`` is not given.
DEFAULT_DRAWS: int = int(_core.DEFAULT_BIAS_DRAWS)


def truncation_bias(
    model: RNN,
    x: np.ndarray,
    targets: np.ndarray,
    truncation: Truncation,
    *,
    weights: Optional[np.ndarray] = None,
    h0: Optional[np.ndarray] = None,
    draws: Optional[int] = None,
    step_offset: int = 0,
    resets: Optional[np.ndarray] = None,
    lengths: Optional[ArrayLike] = None,
) -> TruncationBias:
    """Measure the bias of ``truncation``'s gradient against the Full gradient.

    Parameters
    ----------
    model : rnnbptt.RNN
        Its current parameters are the point where both gradients are taken. Afterwards the
        model holds this forward pass and loss, and ``model.grads`` holds the Full gradient.
    x : ndarray
        Input as :meth:`~rnnbptt.RNN.forward` takes it: dense ``(T, n, d)`` or token ids ``(T, n)``.
    targets : ndarray
        As :meth:`~rnnbptt.RNN.loss` takes them: class ids ``(T, n)`` or values ``(T, n, q)``.
    truncation : Truncation
        ``Regular(k1, k2)``, ``Randomized(pi, seed)`` (or ``Full()``, whose bias is 0).
    weights : ndarray, optional
        Loss weights ``(T, n)``, as :meth:`~rnnbptt.RNN.loss` takes them.
    h0 : ndarray, optional
        Initial state (:meth:`~rnnbptt.RNN.state_shape`); zeros by default.
    draws : int, optional
        Randomized: how many draws, at least 2 (default :data:`DEFAULT_DRAWS`); draw ``i`` uses
        seed ``truncation.seed + i``. A deterministic strategy runs exactly one.
    step_offset : int
        Global index of the step before the sequence: aligns Regular blocks and keys Randomized
        draws, as in :meth:`~rnnbptt.RNN.backward`.
    resets, lengths : optional
        Sequences that start again or end inside the batch, as :meth:`~rnnbptt.RNN.forward`
        takes them: both gradients then stop at the same boundaries.

    Returns
    -------
    TruncationBias
        ``total`` (a ``BiasMeasure`` over all parameters: ``relative``, ``cosine``,
        ``standard_error``, ``full_norm``, ``mean_norm``, ``difference_norm``), ``parameters``
        (one ``ParameterBias`` per tensor), ``loss``, ``draws``, and over the draws the
        mean and variance of each draw's own relative error (``draw_relative_mean``,
        ``draw_relative_variance``). A relative bias or cosine is NaN where ``g_F`` is 0.

    Raises
    ------
    TypeError
        ``model`` is not an :class:`~rnnbptt.RNN`, ``truncation`` not a
        :class:`~rnnbptt.truncation.Truncation`, ``draws`` or ``step_offset`` not an integer, or
        an array of the wrong type.
    ValueError
        ``draws`` does not fit the strategy, ``step_offset < 0``, or an array of the wrong shape
        or values (as :meth:`~rnnbptt.RNN.forward` and :meth:`~rnnbptt.RNN.loss` say).
    """
    if not isinstance(model, RNN):
        raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
    if not isinstance(truncation, Truncation):
        raise TypeError(
            "truncation: expected a Truncation (Full(), Regular(k1, k2), Randomized(pi, seed) or "
            f"Truncation.parse(spec)), got {truncation!r}"
        )
    count = 0 if draws is None else check_integer(draws, "draws", 1, 2**63)
    offset = check_integer(step_offset, "step_offset", 0, 2**63)
    result: TruncationBias = _core.truncation_bias(model.core, x, targets, truncation, weights, h0, count, offset,
                                                   resets, None if lengths is None else as_lengths(lengths))
    return result


def _number(value: float, digits: int = 4) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}g}"


def bias_table(results: Sequence[TruncationBias], *, per_parameter: bool = False) -> str:
    """The measurements as a text table: one row per strategy (``per_parameter``: one row per
    strategy and tensor after the total), with the relative bias, the cosine, the standard
    error (``-`` for a deterministic strategy) and, for Randomized, the mean and standard
    deviation of each draw's own relative error."""
    rows = []
    for r in results:
        parts = [("all", r.total)] + ([(p.name, p.measure) for p in r.parameters] if per_parameter else [])
        for name, m in parts:
            random = r.draws > 1
            rows.append([
                r.truncation if name == "all" else "", name, _number(m.relative), _number(m.cosine, 6),
                _number(m.standard_error) if random else "-", str(r.draws) if name == "all" else "",
                f"{_number(r.draw_relative_mean)} ± {_number(math.sqrt(r.draw_relative_variance))}"
                if random and name == "all" else "",
            ])
    headers = ["strategy", "parameters", "relative bias", "cosine", "standard error", "draws", "one draw's error"]
    return text_table(headers, rows)
