"""BPTT over a stream far longer than memory, chunk by chunk, with the state carried."""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _core
from ._checks import check_integer
from ._dtypes import core_class
from .model import RNN
from .truncation import Truncation


class StreamRunner:
    """Feeds a long sequence to ``model`` one chunk at a time.

    Each :meth:`step` runs forward from the carried state, the loss, and the backward pass
    under ``truncation``, and overwrites ``model.grads`` with that chunk's gradient, so an
    optimizer can step between chunks. Memory depends on the chunk length and the truncation
    window, never on how long the stream is.

    Regular(k1, k2) windows reach across chunk boundaries exactly (the runner keeps
    ``k2 - k1`` steps of history), so chunk lengths must be multiples of ``k1``. For Full and
    Randomized a chunk boundary is a cut: the state is carried, the gradient is not.
    Stacks and gated cells carry every layer's state (and ``c``), and their history holds what
    their backward pass reads of those steps (states and gate values, computed with the
    parameters of their time), so they reach across chunks as exactly.

    A chunk's ``resets`` ``(T, n)`` start new sequences inside the stream (packed documents,
    episodes): a row whose flag is set at step t starts again from zeros there, and no
    gradient crosses that boundary, also when a window reaches back into the history.
    """

    def __init__(self, model: RNN, truncation: Truncation) -> None:
        if not isinstance(model, RNN):
            raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
        if not isinstance(truncation, Truncation):
            raise TypeError(
                f"truncation: expected a Truncation (Full(), Regular(k1, k2), Randomized(pi, seed) or "
                f"Truncation.parse(spec)), got {truncation!r}"
            )
        self.model = model
        self._core: _core._Stream = core_class("Stream", model.dtype)(model.core, truncation)

    def step(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        weights: Optional[np.ndarray] = None,
        *,
        resets: Optional[np.ndarray] = None,
    ) -> float:
        """Process the next chunk (``x`` and ``resets``, bool ``(T, n)``, as in
        :meth:`~rnnbptt.RNN.forward`; a reset restarts from zeros); returns its loss."""
        return float(self._core.step(x, targets, weights, resets))

    def reset(
        self,
        position: int = 0,
        state: Optional[np.ndarray] = None,
        history: Optional[tuple[np.ndarray, ...]] = None,
    ) -> None:
        """Start a new stream whose first step has global index ``position + 1``.

        Randomized draws are keyed by that index, so a trainer that restarts streams passes
        ``position=runner.position`` to keep drawing new cuts. For Regular, ``position`` must be
        a multiple of ``k1``. By default the stream starts from a zero state with no history;
        to continue a saved run, pass its carried ``state`` (the model's ``state_shape(n)``,
        ``(n, h)`` for one Elman layer) and, with Regular(k1 < k2), its ``history`` as
        :attr:`history` returned it: token ids ``(k, n)`` (dense inputs ``(k, n, d)`` for a
        dense stream) and the rows of states ``(rows, n, h)``
        whose rows of the carried state equal ``state``, and the history's reset flags
        ``(k, n)`` bool when :attr:`history` gave them. Everything is copied.
        """
        position = check_integer(position, "position")
        if position < 0:
            raise ValueError(f"position: expected a global step index >= 0, got {position}")
        if position >= 2**63:
            raise ValueError(f"position: expected a global step index below 2**63, got {position}")
        self._core.reset(position, state, history)

    @property
    def history(self) -> Optional[tuple[np.ndarray, ...]]:
        """The steps of history held between chunks (Regular(k1 < k2)): copies of their inputs,
        token ids ``(k, n)`` or dense values ``(k, n, d)``, and of what the backward pass reads
        of them, ``(rows, n, h)``:
        for one Elman layer its ``k + 1`` states (the last is :attr:`state`); for a stack, per
        layer, ``k + 1`` rows of ``h``, ``k + 1`` of ``c`` (LSTM), the ``k`` steps' gate values
        gate by gate and ``k`` rows of ``s_n`` (GRU) (``rnnbptt/bptt/stream.hpp``,
        ``history_rows``); a third array, the history's reset flags ``(k, n)``, when any is
        set. None without a history."""
        return self._core.history

    @property
    def truncation(self) -> Truncation:
        return self._core.truncation

    @property
    def position(self) -> int:
        """Steps consumed so far."""
        return int(self._core.position)

    @property
    def state(self) -> Optional[np.ndarray]:
        """The carried state (the model's ``state_shape(n)``; a copy), or None before the first
        chunk."""
        return self._core.state

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the runner's buffers."""
        return int(self._core.memory_bytes)

    @property
    def windows(self) -> list[tuple[int, int, int]]:
        """The last chunk's backward windows ``(first, begin, end)`` (see :attr:`RNN.windows`);
        steps are counted from the first step of history held, if any."""
        return self._core.windows
