"""Synthetic tasks with a known dependency length, for comparing truncation strategies.

A truncated gradient cannot carry a dependency longer than the truncation: with ``Regular(k)``
the loss at step ``t`` reaches back through at most ``k - 1`` steps of the recurrence
(docs/design.md section 4.4), so a target that depends on the input ``lag`` steps earlier can be
learned only when ``k > lag``. Text hides this (most of what predicts the next character is a
few characters back); these tasks make the dependency length a parameter.

- :class:`DelayedRecall`: the input is a stream of random symbols, and the target at step ``t``
  is the symbol seen ``lag`` steps earlier. Scored by accuracy over the steps ``t >= lag``;
  chance is ``1 / symbols``.
- :class:`Adding`: the adding problem of Hochreiter & Schmidhuber (1997). Two input channels,
  a value in ``[0, 1)`` and a marker; two steps are marked, the first exactly ``lag`` steps
  before the last step. The target at the last step is the sum of the two marked values.
  Scored by mean squared error against the trivial predictor that always answers 1
  (MSE ``1/6``).

Both are generated on the fly from a seeded generator. :func:`train_task` trains one model per
strategy on the same data and seed and records its learning curve, time and memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt

from ._checks import check_integer, check_real
from .clip import clip_grad_norm, global_norm
from .model import RNN
from .optim import make_optimizer
from .stream import StreamRunner
from .truncation import Truncation

__all__ = [
    "Adding", "DelayedRecall", "Task", "TaskBatch", "TaskRecord", "TaskResult", "default_strategies",
    "make_task", "sequence_gradient", "task_model", "train_task",
]

TASKS = ("recall", "adding")


class TaskBatch(NamedTuple):
    """``n`` sequences of a task, time-major as :meth:`~rnnbptt.RNN.forward` takes them."""

    x: np.ndarray  #: token ids ``(T, n)`` or dense input ``(T, n, d)``
    targets: np.ndarray  #: class ids ``(T, n)`` or values ``(T, n, q)``
    weights: np.ndarray  #: ``(T, n)``: 1 where a step is scored, 0 elsewhere


class Task:
    """A synthetic sequence task: how to draw a batch and how to score a model's outputs.

    Subclasses set :attr:`input_size`, :attr:`output_size`, :attr:`metric` (``"accuracy"`` or
    ``"mse"``), :attr:`baseline` (the score of a model that has not learned the dependency)
    and :attr:`higher_is_better`.
    """

    #: The task's name on the command line.
    name = "task"
    #: ``"accuracy"`` or ``"mse"``.
    metric = "score"
    #: Whether a larger score is better (accuracy) or worse (mean squared error).
    higher_is_better = True
    #: Optimizer steps and Adam learning rate with which full BPTT learns the task at lag 20.
    default_steps = 800
    default_lr = 3e-3

    def __init__(self, lag: int, length: Optional[int] = None) -> None:
        self.lag = check_integer(lag, "lag", 1)
        self.length = 4 * self.lag if length is None else check_integer(length, "length", 1)
        if self.length <= self.lag:
            raise ValueError(
                f"length: expected a sequence longer than lag = {self.lag} steps, got {self.length}"
            )

    #: Features per step (dense input) or symbols (token ids).
    input_size: int
    #: Classes (cross-entropy) or target features (squared error).
    output_size: int
    #: The score of a model that has not learned the dependency: chance accuracy, or the MSE of
    #: always answering the mean.
    baseline: float

    def sample(self, rng: np.random.Generator, n: int, dtype: npt.DTypeLike = np.float32) -> TaskBatch:
        """``n`` fresh sequences drawn from ``rng``."""
        raise NotImplementedError

    def score(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """The task's metric of ``outputs`` (``(T, n, q)``, from :meth:`~rnnbptt.RNN.forward`) on ``batch``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lag={self.lag}, length={self.length})"


class DelayedRecall(Task):
    """Output the symbol seen ``lag`` steps earlier.

    Parameters
    ----------
    lag : int
        The dependency length, >= 1.
    length : int, optional
        Steps per sequence ``T`` (default ``4 * lag``); must exceed ``lag``.
    symbols : int
        Alphabet size ``V`` >= 2 (default 8); the input is token ids, uniform over ``[0, V)``.

    Notes
    -----
    The target at step ``t`` (0-based) is ``x[t - lag]``. Steps ``t < lag`` have no target and
    weight 0. Accuracy is counted over the scored steps; chance is ``1 / symbols``.
    """

    name = "recall"
    metric = "accuracy"
    higher_is_better = True
    default_steps = 800
    default_lr = 3e-3

    def __init__(self, lag: int, length: Optional[int] = None, symbols: int = 8) -> None:
        super().__init__(lag, length)
        self.symbols = check_integer(symbols, "symbols", 2)
        self.input_size = self.output_size = self.symbols
        self.baseline = 1.0 / self.symbols

    def sample(self, rng: np.random.Generator, n: int, dtype: npt.DTypeLike = np.float32) -> TaskBatch:
        n = check_integer(n, "n", 1)
        T, lag = self.length, self.lag
        x = rng.integers(0, self.symbols, (T, n), dtype=np.int64)
        targets = np.zeros_like(x)
        targets[lag:] = x[:-lag]
        weights = np.zeros((T, n), dtype=dtype)
        weights[lag:] = 1
        return TaskBatch(x, targets, weights)

    def score(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        lag = self.lag
        return float(np.mean(outputs[lag:].argmax(axis=-1) == batch.targets[lag:]))

    def __repr__(self) -> str:
        return f"DelayedRecall(lag={self.lag}, length={self.length}, symbols={self.symbols})"


class Adding(Task):
    """The adding problem (Hochreiter & Schmidhuber, 1997) with a fixed dependency length.

    Parameters
    ----------
    lag : int
        Steps between the first marked value and the last step, where the answer is read.
    length : int, optional
        Steps per sequence ``T`` (default ``4 * lag``); must exceed ``lag``.

    Notes
    -----
    Channel 0 holds values uniform in ``[0, 1)``, channel 1 the markers. The first marked step
    is ``T - 1 - lag``; the second is uniform over the steps after it. The loss is the squared
    error at the last step only. A model that answers 1, the mean of the sum, has MSE ``1/6``
    (:attr:`baseline`); one that knows only the second value has MSE ``1/12``.
    """

    name = "adding"
    metric = "mse"
    higher_is_better = False
    default_steps = 3000
    default_lr = 1e-3
    input_size = 2
    output_size = 1
    baseline = 1.0 / 6.0

    def sample(self, rng: np.random.Generator, n: int, dtype: npt.DTypeLike = np.float32) -> TaskBatch:
        n = check_integer(n, "n", 1)
        T = self.length
        x = np.zeros((T, n, 2), dtype=dtype)
        x[:, :, 0] = rng.random((T, n))
        first = T - 1 - self.lag
        second = rng.integers(first + 1, T, n)
        columns = np.arange(n)
        x[first, :, 1] = 1
        x[second, columns, 1] = 1
        targets = np.zeros((T, n, 1), dtype=dtype)
        targets[-1, :, 0] = x[first, :, 0] + x[second, columns, 0]
        weights = np.zeros((T, n), dtype=dtype)
        weights[-1] = 1
        return TaskBatch(x, targets, weights)

    def score(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        error = outputs[-1, :, 0].astype(np.float64) - batch.targets[-1, :, 0]
        return float(np.mean(error**2))


def make_task(name: str, lag: int, length: Optional[int] = None, symbols: int = 8) -> Task:
    """``"recall"`` (:class:`DelayedRecall`) or ``"adding"`` (:class:`Adding`); ``symbols``
    applies to recall only."""
    if name == "recall":
        return DelayedRecall(lag, length, symbols)
    if name == "adding":
        return Adding(lag, length)
    raise ValueError(f"task: expected one of {', '.join(repr(t) for t in TASKS)}, got {name!r}")


def default_strategies(lag: int) -> list[Truncation]:
    """Full, Regular(k) with ``k = max(1, lag // 2)`` (too short for the dependency),
    Regular(``2 * lag``) (long enough) and Randomized(0.9, seed=0)."""
    lag = check_integer(lag, "lag", 1)
    return [
        Truncation.full(), Truncation.regular(max(1, lag // 2), max(1, lag // 2)),
        Truncation.regular(2 * lag, 2 * lag), Truncation.randomized([0.9], 0),
    ]


@dataclass
class TaskRecord:
    """One point of a learning curve."""

    step: int  #: optimizer steps taken
    loss: float  #: mean training loss since the previous record
    score: float  #: the task's metric on the held-out batch
    seconds: float  #: training time so far (evaluation excluded)


@dataclass
class TaskResult:
    """What :func:`train_task` did for one strategy."""

    truncation: str  #: the strategy's string form
    task: str
    metric: str
    baseline: float
    score: float  #: the metric on the held-out batch at the end
    seconds: float  #: training time (evaluation excluded)
    memory_bytes: int  #: bytes held by the stream runner's buffers (activations, history, scratch)
    steps_held: int  #: steps of activations kept for one backward pass (the chunk length)
    curve: list[TaskRecord] = field(default_factory=list)
    model: Optional[RNN] = None  #: the trained model


def _orthogonal(rng: np.random.Generator, size: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


def _chunk_length(truncation: Truncation, length: int) -> int:
    """Regular(k, k) runs a sequence in chunks of ``k`` steps when ``k`` divides it (its
    windows never cross a block boundary, so the gradient is the same and only ``k`` steps are
    held); every other strategy needs the whole sequence in memory."""
    if truncation.kind == Truncation.Kind.regular and truncation.k1 == truncation.k2 and length % truncation.k1 == 0:
        return int(truncation.k1)
    return length


def sequence_gradient(
    runner: StreamRunner, batch: TaskBatch, chunk: int, *, position: int = 0, total: Optional[np.ndarray] = None
) -> float:
    """Forward, loss and backward of whole sequences, ``chunk`` steps at a time; leaves the
    gradient of the batch's loss in ``runner.model.grads`` and returns the loss.

    The sequences start a new stream at ``position`` (from a zero state). With ``chunk`` below
    the sequence length, each chunk's gradient (of its own weighted-mean loss) is added into
    ``total`` (a scratch array like ``model.grads``) weighted by the chunk's share of the loss
    weights, which gives the gradient of the whole sequence's loss; a chunk without loss weight
    only moves the state on. This equals one backward pass over the whole sequence when the
    runner's truncation never reaches across a chunk boundary: ``Regular(k)`` with ``chunk`` a
    multiple of ``k`` (the runner requires that anyway).
    """
    if not isinstance(runner, StreamRunner):
        raise TypeError(f"runner: expected an rnnbptt.StreamRunner, got {type(runner).__name__}")
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch: expected a TaskBatch (from Task.sample), got {type(batch).__name__}")
    model = runner.model
    T = int(batch.x.shape[0])
    chunk = check_integer(chunk, "chunk", 1)
    if chunk < T and total is None:
        raise ValueError(f"total: expected a scratch array shaped like the gradients when chunk ({chunk}) < T ({T})")
    runner.reset(position)
    weight = float(batch.weights.sum())
    if not weight > 0:
        raise ValueError("batch: expected loss weights with a positive sum, got none")
    loss = 0.0
    if total is not None and chunk < T:
        total[:] = 0
    for begin in range(0, T, chunk):
        piece = slice(begin, begin + chunk)
        x = np.ascontiguousarray(batch.x[piece])
        weights = np.ascontiguousarray(batch.weights[piece])
        share = float(weights.sum()) / weight
        if share == 0.0:  # no loss in this chunk: it only moves the state on
            _, state = model.forward(x, runner.state)
            runner.reset(runner.position + len(x), state=state)
            continue
        chunk_loss = runner.step(x, np.ascontiguousarray(batch.targets[piece]), weights)
        loss += share * chunk_loss
        if total is not None and chunk < T:
            total += share * model.grads
    if total is not None and chunk < T:
        model.grads[:] = total
    return loss


def task_model(
    task: Task,
    *,
    hidden_size: int = 64,
    seed: int = 0,
    dtype: npt.DTypeLike = np.float32,
    cell: str = "elman",
    num_layers: int = 1,
) -> RNN:
    """The model :func:`train_task` starts from with these arguments: every recurrent matrix
    (each gate's block of it, for GRU and LSTM) a random orthogonal matrix drawn from ``seed``,
    the other weights as :class:`~rnnbptt.RNN` initializes them."""
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an rnnbptt.tasks.Task, got {type(task).__name__}")
    hidden_size = check_integer(hidden_size, "hidden_size", 1)
    init = np.random.default_rng([check_integer(seed, "seed", 0, 2**64), 0])
    model = RNN(task.input_size, hidden_size, task.output_size, dtype=dtype, seed=seed, cell=cell,
                num_layers=num_layers)
    for name in model.parameter_names():
        if name.startswith("W_hh"):
            W_hh = model.param(name)
            for block in range(0, W_hh.shape[0], hidden_size):
                W_hh[block : block + hidden_size] = _orthogonal(init, hidden_size)
    return model


def train_task(
    task: Task,
    truncation: Union[Truncation, str],
    *,
    hidden_size: int = 64,
    steps: Optional[int] = None,
    batch_size: int = 32,
    lr: Optional[float] = None,
    optimizer: str = "adam",
    clip: Optional[float] = 1.0,
    seed: int = 0,
    eval_every: Optional[int] = None,
    eval_size: int = 256,
    dtype: npt.DTypeLike = np.float32,
    cell: str = "elman",
    num_layers: int = 1,
) -> TaskResult:
    """Train a recurrent network (tanh Elman by default) on ``task`` with one truncation
    strategy, Adam (by default) and clipping.

    Every optimizer step draws ``batch_size`` fresh sequences; each starts from a zero state.
    Every recurrent matrix (each gate's block of it, for GRU and LSTM) starts as a random
    orthogonal matrix (spectral radius 1), so that gradients neither vanish nor explode at the
    start (docs/design.md section 3.4); the other
    weights as :class:`~rnnbptt.RNN` initializes them. The same ``seed`` gives the same model, data and
    evaluation batch for every strategy, so the strategies differ only in the gradient.

    Parameters
    ----------
    task : Task
        :class:`DelayedRecall` or :class:`Adding` (see :func:`make_task`).
    truncation : Truncation or str
        The strategy, or its string form (``"regular:10"``).
    hidden_size : int
        Hidden units (default 64).
    steps : int, optional
        Optimizer steps (default: the task's ``default_steps``).
    batch_size : int
        Sequences per step.
    lr : float, optional
        Learning rate (default: the task's ``default_lr``, tuned for Adam).
    optimizer : {"adam", "sgd"}
    clip : float or None
        Global-norm clipping threshold (None: no clipping).
    seed : int
        Seeds the initialization, the training data and the held-out batch.
    eval_every : int, optional
        Steps between points of the learning curve (default: ``steps // 20``, at least 1).
    eval_size : int
        Sequences in the held-out batch.
    dtype : float32 or float64
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    num_layers : int
        Stacked layers.

    Returns
    -------
    TaskResult
        The final score, the learning curve, time and memory.

    Notes
    -----
    ``Regular(k)`` with ``k`` dividing the sequence length runs through a
    :class:`StreamRunner` in chunks of ``k`` steps, with the chunk gradients added up before
    the optimizer step: the same gradient as one backward pass over the whole sequence, with
    ``k`` steps of activations held instead of ``T``. Full, Randomized and other Regular
    schedules run the whole sequence as one chunk. Randomized draws new cuts for every
    sequence (its draws are keyed by the global step, which keeps counting).
    """
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an rnnbptt.tasks.Task, got {type(task).__name__}")
    if isinstance(truncation, str):
        truncation = Truncation.parse(truncation)
    elif not isinstance(truncation, Truncation):
        raise TypeError(f"truncation: expected a Truncation or its string form, got {truncation!r}")
    hidden_size = check_integer(hidden_size, "hidden_size", 1)
    steps = task.default_steps if steps is None else check_integer(steps, "steps", 1)
    batch_size = check_integer(batch_size, "batch_size", 1)
    lr = task.default_lr if lr is None else check_real(lr, "lr", positive=True)
    if clip is not None:
        clip = check_real(clip, "clip", positive=True)
    seed = check_integer(seed, "seed", 0, 2**64)
    eval_every = max(1, steps // 20) if eval_every is None else check_integer(eval_every, "eval_every", 1)
    eval_size = check_integer(eval_size, "eval_size", 1)

    data = np.random.default_rng([seed, 1])
    held_out = task.sample(np.random.default_rng([seed, 2]), eval_size, dtype)
    model = task_model(task, hidden_size=hidden_size, seed=seed, dtype=dtype, cell=cell, num_layers=num_layers)
    update = make_optimizer(optimizer, model.num_parameters, model.dtype, lr)
    runner = StreamRunner(model, truncation)
    T = task.length
    chunk = _chunk_length(truncation, T)
    randomized = truncation.kind == Truncation.Kind.randomized
    total = np.zeros_like(model.grads) if chunk < T else None  # the sum of the chunks' gradients

    curve: list[TaskRecord] = []
    seconds, loss_sum, loss_count = 0.0, 0.0, 0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        batch = task.sample(data, batch_size, model.dtype)
        # A new stream per sequence; Randomized keeps counting global steps for fresh cuts.
        loss = sequence_gradient(runner, batch, chunk, position=(step - 1) * T if randomized else 0, total=total)
        if clip is not None:
            norm = clip_grad_norm(model.grads, clip).norm
        else:
            norm = global_norm(model.grads)
        if not math.isfinite(norm):  # pragma: no cover - clip_grad_norm raises first
            raise FloatingPointError(f"train_task: non-finite gradient norm at step {step}")
        update.step(model.params, model.grads)
        seconds += time.perf_counter() - start
        loss_sum += loss
        loss_count += 1
        if step % eval_every == 0 or step == steps:
            outputs, _ = model.forward(held_out.x)
            curve.append(TaskRecord(step, loss_sum / loss_count, task.score(outputs, held_out), seconds))
            loss_sum, loss_count = 0.0, 0
    return TaskResult(
        truncation=str(truncation), task=task.name, metric=task.metric, baseline=task.baseline,
        score=curve[-1].score, seconds=seconds, memory_bytes=runner.memory_bytes, steps_held=chunk, curve=curve,
        model=model,
    )
