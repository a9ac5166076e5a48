"""The three kinds of data the :class:`~rnnbptt.Trainer` trains on.

- :class:`TokenStream`: one long stream of token ids (a text), each token's target the next
  one: a language model, cross-entropy, scored by perplexity.
- :class:`DenseSeries`: one long series of ``d`` input features per step and ``q`` target
  features per step (for forecasting, the next value): regression, squared error, reported as
  ``0.5 * MSE`` (the loss ``0.5 ||o - y||^2`` averaged over steps and sequences).
- :class:`Sequences`: ``S`` whole sequences of ``T`` steps with a label per sequence or per
  step (classes, or values) and optional weights that mark padding: classification or
  regression of whole sequences, each starting from a zero state.

The two streams are cut into ``batch_size`` parallel streams of chunks of ``num_steps`` steps,
as d2l cuts a text: sequentially (the state carries from chunk to chunk; the cut is the core's
``split_streams`` / ``split_dense_streams``) or at random positions (every chunk a stream of
its own). :class:`Sequences` are drawn ``batch_size`` at a time, in order or shuffled, and run
whole.

Every kind yields :class:`Chunk` values and knows how to fingerprint itself, so that a
checkpoint taken in the middle of an epoch resumes on the same data only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from . import _core
from ._checks import check_integer
from .data import marked_batches

__all__ = ["Chunk", "DenseSeries", "Sequences", "TokenStream", "TrainingData", "as_training_data"]


class Chunk(NamedTuple):
    """One optimizer step's data, time-major as :meth:`~rnnbptt.RNN.forward` takes it."""

    x: np.ndarray  #: token ids ``(T, n)`` or dense input ``(T, n, d)``
    targets: np.ndarray  #: class ids ``(T, n)`` or values ``(T, n, q)``
    weights: Optional[np.ndarray]  #: ``(T, n)`` loss weights, or None (all 1)
    new_stream: bool  #: whether the chunk starts from a zero state (else it continues the last)
    resets: Optional[np.ndarray] = None  #: ``(T, n)`` bool: a document starts there (packed documents)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_values(name: str, part: str, values: np.ndarray, dtype: Any) -> None:
    """The data's values must be of the model's dtype: nothing is converted silently."""
    if values.dtype != dtype:
        wanted = np.dtype(dtype).name
        raise TypeError(f"{name}: expected {part} of the model's dtype {wanted}, got {values.dtype} (convert it "
                        f"explicitly with {part}.astype(np.{wanted}), which copies)")


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")


class TokenStream:
    """A text as token ids ``(N,)``; the target of each token is the next one.

    Parameters
    ----------
    ids : ndarray
        1-D integer ids (each in ``[0, vocabulary size)``; the model checks them).
    starts : array_like of int, optional
        Where documents packed into the stream begin (positions in ``(0, N)``, increasing;
        the first document begins at 0). Each chunk then carries ``resets`` at those positions,
        so the state starts again from zeros with each document and no gradient crosses
        from one to the next, and the last token of a document (whose target would be the
        next document's first) weighs 0 in the loss. :meth:`from_documents` packs a list of
        documents.
    """

    kind = "tokens"
    loss = "cross_entropy"

    def __init__(self, ids: np.ndarray, name: str = "corpus", *, starts: Optional[Any] = None) -> None:
        if not isinstance(ids, np.ndarray) or ids.ndim != 1 or ids.dtype.kind not in "iu":
            shown = f"an array of shape {ids.shape} and dtype {ids.dtype}" if isinstance(ids, np.ndarray) else (
                type(ids).__name__)
            raise TypeError(f"{name}: expected a 1-D array of integer token ids, got {shown}")
        self.ids = ids
        self.starts: Optional[np.ndarray] = None
        self._marks: Optional[np.ndarray] = None  # (N,) int8: 1 where a document begins
        if starts is not None:
            positions = np.asarray(starts)
            if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
                raise TypeError(f"starts: expected a 1-D list of integer positions, got {positions.dtype} values "
                                f"of shape {positions.shape}")
            positions = positions.astype(np.int64)
            if positions.size and (positions[0] <= 0 or positions[-1] >= len(ids) or np.any(np.diff(positions) <= 0)):
                raise ValueError(f"starts: expected increasing positions in (0, {len(ids)}), got "
                                 f"{positions[:8].tolist()}{' ...' if positions.size > 8 else ''}")
            self.starts = positions
            self._marks = np.zeros(len(ids), dtype=np.int8)
            self._marks[positions] = 1

    @classmethod
    def from_documents(cls, documents: Any, name: str = "corpus") -> TokenStream:
        """Pack documents (a sequence of 1-D integer id arrays, none empty) into one stream
        with their ``starts``."""
        parts = [np.asarray(document) for document in documents]
        if not parts:
            raise ValueError(f"{name}: expected at least one document, got none")
        for i, part in enumerate(parts):
            if part.ndim != 1 or part.dtype.kind not in "iu" or part.size == 0:
                raise TypeError(f"{name}: expected each document as a non-empty 1-D array of integer ids, got "
                                f"document {i} of shape {part.shape} and dtype {part.dtype}")
        lengths = np.array([part.size for part in parts], dtype=np.int64)
        return cls(np.concatenate(parts).astype(np.int64), name, starts=np.cumsum(lengths)[:-1])

    def __len__(self) -> int:
        return len(self.ids)

    def check_model(self, model: Any, name: str = "corpus") -> None:
        """Nothing to check before training: the model checks every id it reads."""

    def chunks(self, batch_size: int, num_steps: int, iterator: str, rng: np.random.Generator,
               dtype: Any = None) -> Iterator[Chunk]:
        """d2l's sequential partitioning or random sampling (:mod:`rnnbptt.data`); with
        documents, each chunk's resets and weights (a chunk in which no target lies inside a
        document, only possible with one-token documents, is skipped)."""
        sequential = iterator == "sequential"
        for x, y, marks in marked_batches(self.ids, self._marks, batch_size, num_steps, rng, sequential=sequential):
            if marks is None:
                yield Chunk(x, y, None, not sequential)
                continue
            weights = (marks[1] == 0).astype(np.float64 if dtype is None else dtype)
            if not weights.any():
                continue
            yield Chunk(x, y, weights, not sequential, np.ascontiguousarray(marks[0] != 0))

    def chunks_per_epoch(self, batch_size: int, num_steps: int) -> int:
        return max(1, len(self.ids) // (batch_size * num_steps))

    def fingerprint(self) -> dict[str, Any]:
        data = np.ascontiguousarray(self.ids, dtype=np.int64)
        found = {"tokens": int(data.size), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
        if self.starts is not None:
            found["documents"] = int(self.starts.size) + 1
            found["starts_sha256"] = hashlib.sha256(self.starts.tobytes()).hexdigest()
        return found

    def describe(self) -> str:
        if self.starts is not None:
            count = self.starts.size + 1
            return f"{len(self.ids):,} tokens in {count:,} document{'s' if count > 1 else ''}"
        return f"{len(self.ids):,} tokens"


class DenseSeries:
    """One series of ``N`` steps: ``inputs`` ``(N, d)`` and ``targets`` ``(N, q)``, both of
    the model's dtype (float32 or float64), the target of step ``t`` being what the model
    should output after reading input ``t``.

    Parameters
    ----------
    inputs, targets : ndarray
        2-D, the same number of rows, of one floating dtype (use ``a.astype(np.float32)`` for a
        float32 model: nothing is converted silently).
    """

    kind = "dense"
    loss = "squared_error"

    def __init__(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        for name, a in (("inputs", inputs), ("targets", targets)):
            if not isinstance(a, np.ndarray) or a.ndim != 2 or a.dtype not in (np.float32, np.float64):
                shown = f"an array of shape {a.shape} and dtype {a.dtype}" if isinstance(a, np.ndarray) else (
                    type(a).__name__)
                raise TypeError(f"{name}: expected a 2-D float32 or float64 array (steps, features), got {shown}")
        if targets.dtype != inputs.dtype:
            raise TypeError(f"targets: expected the inputs' dtype {inputs.dtype}, got {targets.dtype}")
        if len(targets) != len(inputs):
            raise ValueError(f"targets: expected {len(inputs)} steps (the inputs'), got {len(targets)}")
        if len(inputs) == 0 or inputs.shape[1] == 0 or targets.shape[1] == 0:
            raise ValueError(f"inputs: expected at least one step of at least one feature, and targets of at least "
                             f"one, got shapes {inputs.shape} and {targets.shape}")
        self.inputs = np.ascontiguousarray(inputs)
        self.targets = np.ascontiguousarray(targets)

    def __len__(self) -> int:
        return len(self.inputs)

    def check_model(self, model: Any, name: str = "corpus") -> None:
        """TypeError or ValueError naming ``name`` unless the series fits ``model``: its dtype,
        ``d`` input and ``q`` target features."""
        _check_values(name, "inputs", self.inputs, model.dtype)
        if self.inputs.shape[1] != model.input_size:
            raise ValueError(f"{name}: expected inputs of {model.input_size} features (the model's input_size), got "
                             f"{self.inputs.shape[1]}")
        if self.targets.shape[1] != model.output_size:
            raise ValueError(f"{name}: expected targets of {model.output_size} features (the model's output_size), "
                             f"got {self.targets.shape[1]}")

    def _check(self, batch_size: int, num_steps: int) -> None:
        needed = batch_size * num_steps + num_steps
        if len(self) < needed:
            raise ValueError(
                f"corpus: expected at least {needed} steps for batch_size={batch_size} and num_steps={num_steps}, "
                f"got {len(self)}"
            )

    def chunks(self, batch_size: int, num_steps: int, iterator: str, rng: np.random.Generator,
               dtype: Any = None) -> Iterator[Chunk]:
        """Sequential: the core's ``split_dense_streams`` after a random offset in ``[0,
        num_steps]`` (the state carries from chunk to chunk). Random: windows of ``num_steps``
        steps at shuffled positions, each a stream of its own."""
        batch_size = check_integer(batch_size, "batch_size", 1)
        num_steps = check_integer(num_steps, "num_steps", 1)
        _check_rng(rng)
        self._check(batch_size, num_steps)
        if iterator == "sequential":
            offset = int(rng.integers(0, num_steps + 1))
            xs, ys = _core.split_dense_streams(self.inputs, self.targets, batch_size, num_steps, offset)
            for i in range(0, xs.shape[0], num_steps):
                yield Chunk(xs[i : i + num_steps], ys[i : i + num_steps], None, False)
            return
        start = int(rng.integers(0, num_steps))
        count = (len(self) - start) // num_steps
        starts = start + np.arange(count) * num_steps
        rng.shuffle(starts)
        for i in range(0, (count // batch_size) * batch_size, batch_size):
            rows = starts[i : i + batch_size, None] + np.arange(num_steps)[None, :]  # (n, T)
            x = np.ascontiguousarray(self.inputs[rows.T])
            y = np.ascontiguousarray(self.targets[rows.T])
            yield Chunk(x, y, None, True)

    def chunks_per_epoch(self, batch_size: int, num_steps: int) -> int:
        return max(1, len(self) // (batch_size * num_steps))

    def fingerprint(self) -> dict[str, Any]:
        return {"steps": len(self), "sha256": _digest(self.inputs, self.targets)}

    def describe(self) -> str:
        return f"{len(self):,} steps of {self.inputs.shape[1]} -> {self.targets.shape[1]} features"


class Sequences:
    """``S`` whole sequences of ``T`` steps and their labels.

    Parameters
    ----------
    x : ndarray
        Token ids ``(S, T)`` (integers) or dense input ``(S, T, d)`` of the model's dtype.
    targets : ndarray
        A label per sequence, scored at the sequence's last step (the last whose weight is not
        0): class ids ``(S,)`` or values ``(S, q)``. Or a label per step: class ids ``(S, T)``
        or values ``(S, T, q)``. Values are of the model's dtype.
    weights : ndarray, optional
        ``(S, T)`` loss weights >= 0 of the model's dtype; 0 marks padding. For a label per
        sequence only the last step with a nonzero weight counts (its weight is 1).
    """

    kind = "sequences"

    def __init__(self, x: np.ndarray, targets: np.ndarray, weights: Optional[np.ndarray] = None) -> None:
        if not isinstance(x, np.ndarray) or not (
            (x.ndim == 2 and x.dtype.kind in "iu") or (x.ndim == 3 and x.dtype in (np.float32, np.float64))
        ):
            shown = f"an array of shape {x.shape} and dtype {x.dtype}" if isinstance(x, np.ndarray) else (
                type(x).__name__)
            raise TypeError(f"x: expected token ids (S, T) or float32/float64 values (S, T, d), got {shown}")
        S, T = x.shape[:2]
        if S < 1 or T < 1:
            raise ValueError(f"x: expected at least one sequence of at least one step, got shape {x.shape}")
        if not isinstance(targets, np.ndarray):
            raise TypeError(f"targets: expected an array, got {type(targets).__name__}")
        classes = targets.dtype.kind in "iu"
        if not classes and targets.dtype not in (np.float32, np.float64):
            raise TypeError(f"targets: expected integer class ids or float32/float64 values, got {targets.dtype}")
        per_step_ndim = 2 if classes else 3
        if targets.shape[:1] != (S,) or targets.ndim not in (per_step_ndim - 1, per_step_ndim):
            expected = "(S,) or (S, T)" if classes else "(S, q) or (S, T, q)"
            raise ValueError(f"targets: expected {expected} with S={S}, got shape {targets.shape}")
        per_step = targets.ndim == per_step_ndim
        if per_step and targets.shape[1] != T:
            raise ValueError(f"targets: expected {T} steps (x's), got shape {targets.shape}")
        if weights is not None:
            if not isinstance(weights, np.ndarray) or weights.shape != (S, T):
                shown = f"shape {weights.shape}" if isinstance(weights, np.ndarray) else type(weights).__name__
                raise ValueError(f"weights: expected shape (S, T) = ({S}, {T}), got {shown}")
            if not np.all(weights >= 0) or not np.all(np.isfinite(weights)):
                raise ValueError("weights: expected finite values >= 0, got a negative or non-finite one")
            if not np.all(weights.sum(axis=1) > 0):
                empty = int(np.flatnonzero(weights.sum(axis=1) == 0)[0])
                raise ValueError(f"weights: expected every sequence to have a step with weight > 0, sequence {empty} "
                                 "has none")
        self.x, self.targets, self.weights = x, targets, weights
        self.classes = classes
        self.per_step = per_step
        self.loss = "cross_entropy" if classes else "squared_error"

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def check_model(self, model: Any, name: str = "corpus") -> None:
        """TypeError or ValueError naming ``name`` unless the sequences fit ``model``: the dtype
        of dense input, values and weights, ``d`` input and ``q`` target features."""
        if self.x.ndim == 3:
            _check_values(name, "x", self.x, model.dtype)
            if self.x.shape[2] != model.input_size:
                raise ValueError(f"{name}: expected x of {model.input_size} features (the model's input_size), got "
                                 f"{self.x.shape[2]}")
        if not self.classes:
            _check_values(name, "targets", self.targets, model.dtype)
            if self.targets.shape[-1] != model.output_size:
                raise ValueError(f"{name}: expected targets of {model.output_size} features (the model's "
                                 f"output_size), got {self.targets.shape[-1]}")
        if self.weights is not None:
            _check_values(name, "weights", self.weights, model.dtype)

    @property
    def steps(self) -> int:
        return int(self.x.shape[1])

    def batch(self, rows: np.ndarray, dtype: Any) -> Chunk:
        """Sequences ``rows``, time-major; a label per sequence becomes a target at every step
        with weight only at its last (nonzero-weight) step."""
        T = self.steps
        x = np.ascontiguousarray(np.swapaxes(self.x[rows], 0, 1))
        w = None if self.weights is None else np.swapaxes(self.weights[rows], 0, 1)
        if self.per_step:
            y = np.ascontiguousarray(np.swapaxes(self.targets[rows], 0, 1))
            return Chunk(x, y, None if w is None else np.ascontiguousarray(w, dtype=dtype), True)
        labels = self.targets[rows]
        y = np.ascontiguousarray(np.broadcast_to(labels[None], (T, *labels.shape)))
        last = np.full(len(rows), T - 1) if w is None else T - 1 - np.argmax(w[::-1] > 0, axis=0)
        mask = np.zeros((T, len(rows)), dtype=dtype)
        mask[last, np.arange(len(rows))] = 1
        return Chunk(x, y, mask, True)

    def chunks(self, batch_size: int, num_steps: int, iterator: str, rng: np.random.Generator,
               dtype: Any = np.float32) -> Iterator[Chunk]:
        """``batch_size`` sequences at a time, in order (``"sequential"``) or shuffled
        (``"random"``, a new order every epoch), run whole; the last ``S % batch_size`` of the
        order are left out of the epoch (as d2l's random sampling leaves a remainder), so that
        every batch, and every process's share of it with MPI, is full. ``num_steps`` is not
        used."""
        batch_size = check_integer(batch_size, "batch_size", 1)
        _check_rng(rng)
        if len(self) < batch_size:
            raise ValueError(f"corpus: expected at least batch_size={batch_size} sequences, got {len(self)}")
        order = np.arange(len(self))
        if iterator != "sequential":
            rng.shuffle(order)
        for i in range(0, (len(self) // batch_size) * batch_size, batch_size):
            yield self.batch(order[i : i + batch_size], dtype)

    def chunks_per_epoch(self, batch_size: int, num_steps: int) -> int:
        return max(1, len(self) // batch_size)

    def fingerprint(self) -> dict[str, Any]:
        arrays = [self.x, self.targets] + ([] if self.weights is None else [self.weights])
        return {"sequences": len(self), "sha256": _digest(*arrays)}

    def describe(self) -> str:
        label = "a label per step" if self.per_step else "a label per sequence"
        return f"{len(self):,} sequences of {self.steps} steps with {label}"


TrainingData = Union[TokenStream, DenseSeries, Sequences]


def as_training_data(corpus: Any, name: str = "corpus") -> TrainingData:
    """``corpus`` as one of the three kinds: a 1-D integer array is a :class:`TokenStream`."""
    if isinstance(corpus, (TokenStream, DenseSeries, Sequences)):
        return corpus
    if isinstance(corpus, np.ndarray):
        return TokenStream(corpus, name)
    raise TypeError(
        f"{name}: expected token ids (a 1-D integer array), a DenseSeries or Sequences, got {type(corpus).__name__}"
    )

