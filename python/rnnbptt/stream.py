"""BPTT over a stream far longer than memory, chunk by chunk, with the state carried."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from .model import RNN
from .truncation import Truncation

_STREAMS = {np.dtype(np.float32): _core.StreamFloat32, np.dtype(np.float64): _core.StreamFloat64}


class StreamRunner:
    """Feeds a long sequence to ``model`` one chunk at a time.

    Each :meth:`step` runs forward from the carried state, the loss, and the backward pass
    under ``truncation``, and overwrites ``model.grads`` with that chunk's gradient, so an
    optimizer can step between chunks. Memory depends on the chunk length and the truncation
    window, never on how long the stream is.

    Regular(k1, k2) windows reach across chunk boundaries exactly (the runner keeps
    ``k2 - k1`` steps of history), so chunk lengths must be multiples of ``k1``. For Full and
    Randomized a chunk boundary is a cut: the state is carried, the gradient is not.
    """

    def __init__(self, model: RNN, truncation: Truncation) -> None:
        if not isinstance(model, RNN):
            raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
        self.model = model
        self._core: Any = _STREAMS[model.dtype](model._core, truncation)

    def step(
        self, x: np.ndarray, targets: np.ndarray, weights: Optional[np.ndarray] = None
    ) -> float:
        """Process the next chunk (``x`` as in :meth:`RNN.forward`); returns its loss."""
        return float(self._core.step(x, targets, weights))

    def reset(self) -> None:
        """Start a new stream: zero state, no history."""
        self._core.reset()

    @property
    def truncation(self) -> Truncation:
        return self._core.truncation

    @property
    def position(self) -> int:
        """Steps consumed so far."""
        return int(self._core.position)

    @property
    def state(self) -> Optional[np.ndarray]:
        """The carried hidden state ``(n, h)`` (a copy), or None before the first chunk."""
        return self._core.state  # type: ignore[no-any-return]

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the runner's buffers."""
        return int(self._core.memory_bytes)

    @property
    def segments(self) -> list[tuple[int, int]]:
        """Backward segments of the last chunk (steps of history first, if any)."""
        return list(self._core.segments)
