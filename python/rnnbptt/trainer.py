"""A thin training loop over the C++ core: per chunk, one call for forward + loss + backward
(through a :class:`StreamRunner`), one for clipping and one for the optimizer update; on
several MPI processes, one in-place allreduce of the gradient buffer in between
(:mod:`rnnbptt.distributed`)."""

from __future__ import annotations

import copy
import csv
import json
import math
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Union

import numpy as np

from . import checkpoint as ckpt
from ._checks import check_flag, check_integer, check_real
from .clip import clip_grad_norm, global_norm
from .data import Vocab
from .datasets import Chunk, Sequences, TokenStream, TrainingData, as_training_data
from .distributed import CollectiveError, DataParallel, agreement, batch_share
from .model import RNN
from .optim import check_optimizer_name, make_optimizer
from .stream import StreamRunner
from .truncation import Truncation

LrSchedule = Union[str, Callable[[int, int], float]]

#: The ``lr_schedule`` that :class:`TrainerSettings` (and a checkpoint) records for a callable
#: schedule; the callable itself stays on the :class:`Trainer`.
CALLABLE_SCHEDULE = "callable"


def _schedule_error(lr_schedule: object) -> ValueError:
    return ValueError(f"lr_schedule: expected 'constant', 'cosine' or a callable, got {lr_schedule!r}")


def _require_state(path: Union[str, Path], trainer: dict[str, Any], optimizer: dict[str, Any], keys: Any) -> None:
    """CheckpointError naming the file unless the trainer entry of its checkpoint has ``keys``
    and its optimizer entry a name."""
    missing = sorted(set(keys) - set(trainer))
    if missing or "name" not in optimizer:
        raise ckpt.CheckpointError(
            f"checkpoint: {path} has no trainer state (no {(missing or ['optimizer name'])[0]!r}); "
            "resume a checkpoint written by Trainer.save or 'rnnbptt train'"
        )


@dataclass(frozen=True)
class TrainerSettings:
    """The settings of a :class:`Trainer` run, checked once: what processes must agree on with
    MPI, what a checkpoint records and what :meth:`Trainer.resume` reads back.

    Parameters
    ----------
    optimizer : {"sgd", "adam"}
    lr : float
        Base learning rate, > 0 and finite (``base_lr`` in a checkpoint's trainer entry).
    lr_schedule : {"constant", "cosine", "callable"}
        ``"callable"`` records that the run used a callable schedule (see
        :meth:`from_arguments`); the callable itself is not a setting.
    weight_decay : float
        >= 0 and finite.
    clip : float or None
        Global L2-norm clipping threshold, > 0 and finite, or None (no clipping).
    truncation : str
        The string form of a :class:`~rnnbptt.truncation.Truncation` (kept in its canonical form,
        ``str(Truncation.parse(truncation))``); ``num_steps`` must suit it.
    batch_size, num_steps : int
        At least 1.
    iterator : {"sequential", "random"}
    seed : int
        At least 0.

    Raises
    ------
    TypeError, ValueError
        For a setting of the wrong type or out of range, naming it.
    """

    optimizer: str = "sgd"
    lr: float = 1.0
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    clip: Optional[float] = 1.0
    truncation: str = "full"
    batch_size: int = 32
    num_steps: int = 35
    iterator: str = "sequential"
    seed: int = 0

    #: The keys of a checkpoint's trainer entry that hold settings (``to_state``).
    STATE_KEYS: ClassVar[tuple[str, ...]] = (
        "seed", "truncation", "batch_size", "num_steps", "iterator", "clip", "base_lr", "lr_schedule",
    )

    def __post_init__(self) -> None:
        iterator, clip = self.iterator, self.clip
        if not isinstance(iterator, str) or iterator not in ("sequential", "random"):
            raise ValueError(f"iterator: expected 'sequential' or 'random', got {iterator!r}")
        lr = check_real(self.lr, "lr", positive=True)
        weight_decay = check_real(self.weight_decay, "weight_decay", nonnegative=True)
        if clip is not None:
            if isinstance(clip, (bool, np.bool_)) or not isinstance(clip, (int, float, np.integer, np.floating)):
                raise TypeError(f"clip: expected a threshold > 0 or None, got {clip!r} ({type(clip).__name__})")
            if not (clip > 0 and math.isfinite(clip)):
                raise ValueError(f"clip: expected a threshold > 0 or None, got {clip}")
            clip = float(clip)
        batch_size = check_integer(self.batch_size, "batch_size", 1)
        num_steps = check_integer(self.num_steps, "num_steps", 1)
        seed = check_integer(self.seed, "seed", 0)
        if not isinstance(self.lr_schedule, str) or self.lr_schedule not in ("constant", "cosine", CALLABLE_SCHEDULE):
            raise _schedule_error(self.lr_schedule)
        if not isinstance(self.truncation, str):
            raise TypeError(f"truncation: expected a Truncation or its string form, got {self.truncation!r}")
        truncation = Truncation.parse(self.truncation)
        truncation.check_chunk(num_steps, "num_steps")
        check_optimizer_name(self.optimizer)
        normalized = {
            "lr": lr, "weight_decay": weight_decay, "clip": clip, "truncation": str(truncation),
            "batch_size": batch_size, "num_steps": num_steps, "seed": seed,
        }
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_arguments(
        cls,
        *,
        optimizer: str = "sgd",
        lr: float = 1.0,
        lr_schedule: LrSchedule = "constant",
        weight_decay: float = 0.0,
        clip: Optional[float] = 1.0,
        truncation: Union[Truncation, str] = "full",
        batch_size: int = 32,
        num_steps: int = 35,
        iterator: str = "sequential",
        seed: int = 0,
    ) -> TrainerSettings:
        """The settings of :class:`Trainer`'s arguments of the same names.

        Parameters
        ----------
        lr_schedule : "constant", "cosine" or callable
            A callable is recorded as ``"callable"`` (which is not itself an argument).
        truncation : Truncation or str
            Recorded as its string form.
        optimizer, lr, weight_decay, clip, batch_size, num_steps, iterator, seed
            As in :class:`TrainerSettings`.

        Returns
        -------
        TrainerSettings
        """
        if isinstance(lr_schedule, str) and lr_schedule == CALLABLE_SCHEDULE:
            raise _schedule_error(lr_schedule)  # the marker, not a schedule to run
        schedule: Any = CALLABLE_SCHEDULE if callable(lr_schedule) else lr_schedule
        form: Any = str(truncation) if isinstance(truncation, Truncation) else truncation
        return cls(
            optimizer=optimizer, lr=lr, lr_schedule=schedule, weight_decay=weight_decay, clip=clip,
            truncation=form, batch_size=batch_size, num_steps=num_steps, iterator=iterator, seed=seed,
        )

    @classmethod
    def from_state(cls, path: Union[str, Path], trainer: dict[str, Any], optimizer: dict[str, Any]) -> TrainerSettings:
        """The settings that a checkpoint records, from its trainer and optimizer entries.

        Parameters
        ----------
        path : path
            The checkpoint's file, named in errors.
        trainer, optimizer : dict
            Its ``trainer`` entry (:meth:`to_state` wrote the settings into it) and its
            ``optimizer`` entry (the optimizer's name and weight decay).

        Returns
        -------
        TrainerSettings

        Raises
        ------
        rnnbptt.checkpoint.CheckpointError
            For a missing or ill-typed entry, naming ``path``.
        """
        _require_state(path, trainer, optimizer, cls.STATE_KEYS)
        try:
            return cls(
                optimizer=optimizer["name"], lr=trainer["base_lr"], lr_schedule=trainer["lr_schedule"],
                weight_decay=optimizer.get("weight_decay", 0.0), clip=trainer["clip"],
                truncation=trainer["truncation"], batch_size=trainer["batch_size"],
                num_steps=trainer["num_steps"], iterator=trainer["iterator"], seed=trainer["seed"],
            )
        except (TypeError, ValueError, OverflowError, RecursionError) as error:
            raise ckpt.CheckpointError(f"checkpoint: {path} has an inconsistent trainer state ({error!r})") from None

    def to_state(self) -> dict[str, Any]:
        """The settings as a checkpoint's trainer entry holds them (``STATE_KEYS``; the
        optimizer's name and weight decay are in its optimizer entry)."""
        return {
            "seed": self.seed, "truncation": self.truncation, "batch_size": self.batch_size,
            "num_steps": self.num_steps, "iterator": self.iterator, "clip": self.clip, "base_lr": self.lr,
            "lr_schedule": self.lr_schedule,
        }

    def describe(self) -> str:
        """How the run reads its text, for a log: ``"truncation full, sequential batches of 32 x 35"``."""
        return f"truncation {self.truncation}, {self.iterator} batches of {self.batch_size} x {self.num_steps}"


@dataclass
class EpochRecord:
    """What one epoch did; one line of the log.

    ``train_loss`` is the mean training loss: cross-entropy, or for values ``0.5 * MSE`` (the
    loss ``0.5 ||o - y||^2`` averaged over the weighted positions); the perplexities are its
    exponential on a token stream (None for other data). ``tokens_per_second`` counts
    positions (steps x sequences) of any kind of data."""

    epoch: int
    step: int
    train_perplexity: Optional[float]
    valid_perplexity: Optional[float]
    tokens_per_second: float
    grad_norm: float
    lr: float
    seconds: float
    memory_bytes: int
    truncation: str  #: the strategy's string form, ``str(Truncation)``
    train_loss: Optional[float] = None  #: None in the records of older checkpoints
    valid_loss: Optional[float] = None
    valid_accuracy: Optional[float] = None  #: for class labels of :class:`~rnnbptt.datasets.Sequences`
    data: str = "tokens"  #: the kind of data: ``"tokens"``, ``"dense"`` or ``"sequences"``


@dataclass
class EpochProgress:
    """Where an epoch interrupted part-way stands (saved in checkpoints, so that resuming is
    exact at any step): the random-generator state before the epoch's draws (the iterator is
    re-created from it and its first ``chunks`` chunks are skipped), the running totals of its
    record, and a fingerprint of the corpus it reads."""

    rng: dict[str, Any]
    chunks: int = 0
    loss: float = 0.0  #: the sum of each chunk's mean loss times its weight
    tokens: int = 0  #: positions (steps x sequences) trained on
    weight: float = 0.0  #: the loss weights' sum (0 in older checkpoints: then ``tokens``)
    norms: float = 0.0
    seconds: float = 0.0
    corpus: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False  #: a partial record of this epoch is already in the history


def _describe_fingerprint(fingerprint: dict[str, Any]) -> str:
    sizes = ", ".join(f"{v} {k}" for k, v in fingerprint.items() if not k.endswith("sha256"))
    return f"{sizes} with SHA-256 {fingerprint.get('sha256')}"


class Trainer:
    """Trains an :class:`~rnnbptt.RNN` language model on integer-encoded text.

    Parameters
    ----------
    model : RNN
        Its input and output sizes are the vocabulary size.
    vocab : Vocab, optional
        Saved in checkpoints.
    optimizer : {"sgd", "adam"}
    lr : float
        Base learning rate.
    lr_schedule : "constant", "cosine" or callable
        ``"cosine"`` decays from ``lr`` to ``lr / 10`` over the run; a callable gets
        ``(epoch, epochs)`` and returns the learning rate of that epoch.
    clip : float or None
        Global L2-norm clipping threshold ``theta`` (None: no clipping).
    truncation : Truncation or str
        ``Full()``, ``Regular(k1, k2)``, ``Randomized(pi, seed)``, or the string form that
        :meth:`Truncation.parse` reads (``"regular:5,10"``). One stream runner serves the whole
        run, so Randomized draws stay keyed by the global step and never repeat across epochs
        (they come from the truncation's own seed, not from ``seed`` below).
    batch_size, num_steps : int
        ``n`` sequences of ``T`` steps per chunk.
    iterator : {"sequential", "random"}
        d2l's sequential partitioning (the state carries across chunks) or random sampling
        (the state starts at zero for every chunk).
    seed : int
        Seeds the iterator's random offsets and shuffles.
    log : path, optional
        Epoch records as JSON lines (``.jsonl``/``.json``) or CSV (``.csv``).
    progress : bool
        A tqdm progress bar per epoch (the ``progress`` extra), or plain lines without it.
    comm : mpi4py.MPI.Intracomm, optional
        Train one model on the communicator's ``P`` processes (data parallelism, the ``mpi``
        extra); every process constructs its trainer with the same arguments. Each process
        runs a contiguous share of the ``batch_size`` sequences (so ``batch_size >= P``) and
        carries the state of its own streams; after backward, one in-place allreduce of
        ``model.grads`` makes it the whole batch's gradient on every process, and clipping (on
        that global norm) and the optimizer step run everywhere, so the parameters stay
        identical. The model's parameters are broadcast from rank 0 at construction. Rank 0
        alone logs, shows progress and writes checkpoints, which look exactly like a single
        process's: any number of processes resumes them. The global batch, and so the trained
        model, is the single-process run's up to the order of floating-point sums
        (``docs/scaling.md``). ``fit``, ``train_epoch``, ``save``, ``state``, ``state_arrays``,
        ``step_loss`` and ``check_replicas`` are then collective: every process calls them.

    Notes
    -----
    With ``comm``, setting ``RNNBPTT_CHECK_REPLICAS=N`` in the environment checks every ``N``
    optimizer steps that all processes hold the same parameters and optimizer state
    (:meth:`check_replicas`), a debug mode.
    """

    def __init__(
        self,
        model: RNN,
        *,
        vocab: Optional[Vocab] = None,
        optimizer: str = "sgd",
        lr: float = 1.0,
        lr_schedule: LrSchedule = "constant",
        weight_decay: float = 0.0,
        clip: Optional[float] = 1.0,
        truncation: Union[Truncation, str] = "full",
        batch_size: int = 32,
        num_steps: int = 35,
        iterator: str = "sequential",
        seed: int = 0,
        log: Optional[Union[str, Path]] = None,
        progress: bool = False,
        comm: Any = None,
    ) -> None:
        if not isinstance(model, RNN):
            raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
        if vocab is not None and not isinstance(vocab, Vocab):
            raise TypeError(f"vocab: expected an rnnbptt.Vocab or None, got {type(vocab).__name__}")
        settings = TrainerSettings.from_arguments(
            optimizer=optimizer, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay, clip=clip,
            truncation=truncation, batch_size=batch_size, num_steps=num_steps, iterator=iterator, seed=seed,
        )
        progress = check_flag(progress, "progress")
        if vocab is not None and (len(vocab) != model.input_size or len(vocab) != model.output_size):
            raise ValueError(f"vocab: expected {model.input_size} symbols (the model's sizes), got {len(vocab)}")
        self._dp = DataParallel(comm) if comm is not None else None
        self._share = slice(0, settings.batch_size)  # this process's sequences of the batch
        if self._dp is not None:
            self._share = batch_share(settings.batch_size, self._dp.size, self._dp.rank)
            self._dp.check_same(
                {"model": model.config(), **asdict(settings), "vocab": vocab.tokens if vocab is not None else None},
                "comm", "the same trainer arguments",
            )
            self._dp.broadcast_array(model.params)
        #: The run's settings (:class:`TrainerSettings`); ``base_lr``, ``clip``, ``batch_size``,
        #: ``num_steps``, ``iterator`` and ``seed`` read them.
        self.settings = settings
        self.model = model
        self.vocab = vocab
        self.optimizer = make_optimizer(
            settings.optimizer, model.num_parameters, model.dtype, settings.lr, settings.weight_decay
        )
        #: The schedule: ``"constant"``, ``"cosine"`` or the callable given.
        self.lr_schedule: LrSchedule = lr_schedule if callable(lr_schedule) else settings.lr_schedule
        #: The truncation strategy (the one given, or parsed from its string form).
        self.truncation = truncation if isinstance(truncation, Truncation) else Truncation.parse(settings.truncation)
        self.runner = StreamRunner(model, self.truncation)
        self.rng = np.random.default_rng(settings.seed)
        self.epoch = 0
        self.step = 0
        self.epochs_planned = 0
        self.history: list[EpochRecord] = []
        self.log = Path(log) if log is not None and self._is_root else None
        self.progress = progress and self._is_root
        self._in_progress: Optional[EpochProgress] = None  # the epoch interrupted part-way
        self._runner_snapshot: Optional[dict[str, np.ndarray]] = None  # to restore on resume
        self._steps_target: Optional[int] = None  # the ``steps`` that epochs_planned was made for
        self._last_loss = math.nan  # the last step's loss (with MPI: this process's share of it)
        #: What the run trains on, as JSON-ready values (None: not recorded): saved in checkpoints
        #: and given back by :meth:`resume`. ``rnnbptt train`` records its text's path, size and
        #: SHA-256 here, so that ``--resume FILE`` alone continues on the same text.
        self.data: Optional[dict[str, Any]] = None

    @property
    def base_lr(self) -> float:
        """The base learning rate (``settings.lr``)."""
        return self.settings.lr

    @property
    def clip(self) -> Optional[float]:
        """The global-norm clipping threshold, or None (``settings.clip``)."""
        return self.settings.clip

    @property
    def batch_size(self) -> int:
        """Sequences per chunk (``settings.batch_size``)."""
        return self.settings.batch_size

    @property
    def num_steps(self) -> int:
        """Steps per chunk (``settings.num_steps``)."""
        return self.settings.num_steps

    @property
    def iterator(self) -> str:
        """``"sequential"`` or ``"random"`` (``settings.iterator``)."""
        return self.settings.iterator

    @property
    def seed(self) -> int:
        """The iterator's seed (``settings.seed``)."""
        return self.settings.seed

    @property
    def comm(self) -> Any:
        """The mpi4py communicator the trainer runs on, or None (a single process)."""
        return self._dp.comm if self._dp is not None else None

    @property
    def _is_root(self) -> bool:
        return self._dp is None or self._dp.is_root

    # ---- one epoch ----------------------------------------------------------------------
    def _lr(self) -> float:
        if callable(self.lr_schedule):
            return float(self.lr_schedule(self.epoch, self.epochs_planned))
        if self.lr_schedule == "cosine" and self.epochs_planned > 1:
            progress = self.epoch / (self.epochs_planned - 1)
            return self.base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        return self.base_lr

    def _batches(self, data: TrainingData) -> Iterator[Chunk]:
        return data.chunks(self.batch_size, self.num_steps, self.iterator, self.rng, self.model.dtype)

    def _whole_sequences(self, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray]) -> float:
        """Forward, loss and backward of a batch of whole sequences from a zero state (the
        chunk length is the sequences', which need not suit the truncation's blocks): Regular
        blocks start with the sequences, Randomized draws are keyed by the global position,
        which keeps counting."""
        self.model.forward(x)
        loss = self.model.loss(y, w)
        randomized = self.truncation.kind == Truncation.Kind.randomized
        offset = self.step * int(x.shape[0]) if randomized else 0  # Regular blocks start with each sequence
        self.model.backward(truncation=self.truncation, step_offset=offset)
        return loss

    def train_epoch(
        self, corpus: Union[np.ndarray, TrainingData], max_steps: Optional[int] = None, *,
        on_step: Optional[Callable[[], None]] = None,
    ) -> tuple[float, float, float, int, float]:
        """One pass over ``corpus`` (token ids, or any kind of :mod:`rnnbptt.datasets`), or
        fewer chunks when the optimizer step count reaches ``max_steps``: (mean loss,
        positions/s, mean gradient norm, runner bytes, seconds); the mean loss is
        cross-entropy, or ``0.5 * MSE`` for values.

        An epoch stopped by ``max_steps`` stays in progress (``epoch`` does not count it yet):
        the next call, in this process or after :meth:`resume`, continues it exactly where it
        stopped, and its figures then cover the whole epoch. ``on_step`` runs after every
        optimizer step. With MPI every process calls it with the same corpus."""
        data = as_training_data(corpus)
        runner = self.runner
        progress = self._in_progress
        if progress is not None and progress.chunks == 0 and self._runner_snapshot is None:
            # An epoch that consumed nothing (its first chunk was refused): it starts again, on
            # whatever data it is given now, from the generator state it began with.
            self.rng.bit_generator.state = copy.deepcopy(progress.rng)
            self._in_progress = progress = None
        if progress is None:  # a new epoch: remember the generator before its draws
            progress = EpochProgress(rng=copy.deepcopy(dict(self.rng.bit_generator.state)), corpus=data.fingerprint())
            if self._dp is not None:
                self._dp.check_same(progress.corpus, "corpus", "the same corpus")
            self._in_progress = progress
            runner.reset(self.step * self.num_steps)  # a new stream; global steps keep counting
        else:
            found = data.fingerprint()
            if found != progress.corpus:
                raise ValueError(
                    f"corpus: expected the corpus epoch {self.epoch + 1} was interrupted on "
                    f"({_describe_fingerprint(progress.corpus)}), got {_describe_fingerprint(found)}"
                )
            self.rng.bit_generator.state = copy.deepcopy(progress.rng)
        lr = self._lr()
        self.optimizer.lr = lr
        params, grads = self.model.params, self.model.grads
        dp, share = self._dp, self._share
        batches = self._batches(data)
        whole = isinstance(data, Sequences)
        consumed: list[Optional[np.ndarray]] = []  # their resets: what the history held of them
        for _ in range(progress.chunks):  # the chunks consumed before the interruption
            skipped = next(batches, None)
            if skipped is None:
                raise ValueError(
                    f"corpus: expected at least {progress.chunks} chunks in epoch {self.epoch + 1}, "
                    "got fewer (not the corpus or batch shape of the interrupted run)"
                )
            consumed = [*consumed, skipped.resets][-max(1, self._history_steps()) :]
        if self._runner_snapshot is not None:  # resumed from a checkpoint
            self._restore_runner(self._runner_snapshot, progress, carried=not isinstance(data, Sequences),
                                 resets=consumed)
            self._runner_snapshot = None
        start = time.perf_counter()
        finished = True
        for x, y, w, new_stream, resets in self._progress(batches, data):
            if max_steps is not None and self.step >= max_steps:
                finished = False
                break
            if new_stream and not whole:  # a stream of its own
                runner.reset(runner.position)
            positions = int(x.shape[0]) * int(x.shape[1])
            weight = float(w.sum()) if w is not None else float(positions)
            if dp is not None:  # this process's sequences; their mean-loss gradient, weighted by their share
                x, y = np.ascontiguousarray(x[:, share]), np.ascontiguousarray(y[:, share])
                w = None if w is None else np.ascontiguousarray(w[:, share])
                resets = None if resets is None else np.ascontiguousarray(resets[:, share])
            mine = float(w.sum()) if w is not None else float(x.shape[0] * x.shape[1])
            if dp is not None and w is not None and mine == 0.0:
                # This process's share weighs nothing (packed documents): it still runs, to carry
                # its state, unweighted, and the factor mine / weight = 0 removes its loss and gradient.
                w = None
            loss = self._whole_sequences(x, y, w) if whole else runner.step(x, y, w, resets=resets)
            if dp is not None:
                loss *= mine / weight
                dp.reduce_gradient(grads, mine / weight)
            if self.clip is not None:
                norm = clip_grad_norm(grads, self.clip).norm
            else:
                norm = global_norm(grads)
            self.optimizer.step(params, grads)
            progress.loss += loss * weight  # with MPI: this process's share of the sum
            progress.weight += weight
            progress.tokens += positions
            progress.norms += norm
            progress.chunks += 1
            self.step += 1
            self._last_loss = loss
            if dp is not None and dp.check_every and self.step % dp.check_every == 0:
                self.check_replicas()
            if on_step is not None:
                progress.seconds += time.perf_counter() - start
                start = time.perf_counter()
                on_step()
        progress.seconds += time.perf_counter() - start
        if finished:
            self.epoch += 1
            self._in_progress = None
        tokens, seconds = progress.tokens, progress.seconds
        loss_sum = progress.loss if dp is None else dp.sum(progress.loss)
        total = progress.weight if progress.weight > 0 else tokens
        return (
            loss_sum / total if total else math.nan,
            tokens / seconds if seconds > 0 else math.nan,
            progress.norms / progress.chunks if progress.chunks else math.nan,
            runner.memory_bytes,
            seconds,
        )

    @property
    def _state_batch_axis(self) -> int:
        """The batch axis of the model's state: 0 in ``(n, h)``, else the one before ``h``."""
        return len(self.model.state_shape(1)) - 2

    def _history_steps(self) -> int:
        t = self.truncation
        return t.k2 - t.k1 if t.kind == Truncation.Kind.regular else 0

    def _runner_arrays(self) -> dict[str, np.ndarray]:
        """What the sequential iterator's stream carries from one chunk to the next, when an
        epoch is in progress: the hidden state and, for Regular(k1 < k2), the history. With
        MPI, the processes' shares joined in batch order on rank 0 (empty elsewhere)."""
        if self._in_progress is None or self.iterator != "sequential" or self._in_progress.chunks == 0:
            return {}
        if self._runner_snapshot is not None:  # resumed and not yet continued: the whole batch's
            return dict(self._runner_snapshot) if self._is_root else {}
        state = self.runner.state
        if state is None:
            return {}
        out = {"runner.state": np.array(state)}
        history = self.runner.history
        if history is not None:
            inputs, states = history[:2]  # its reset flags (packed documents) come back from the data on resume
            out["runner.history_inputs"] = np.array(inputs)  # token ids (k, n), or dense inputs (k, n, d)
            out["runner.history_states"] = np.array(states)
        if self._dp is None:
            return out
        batch_axis = {"runner.state": self._state_batch_axis, "runner.history_inputs": 1, "runner.history_states": 1}
        joined = {name: self._dp.gather_batch(out[name], batch_axis[name]) for name in sorted(out)}
        return {name: value for name, value in joined.items() if value is not None}

    def _restore_runner(self, arrays: dict[str, np.ndarray], progress: EpochProgress, carried: bool = True,
                        resets: Sequence[Optional[np.ndarray]] = ()) -> None:
        """Put the runner back for an epoch resumed part-way; ``carried`` is False for data that
        carries no state from one chunk to the next (whole sequences). ``resets``: those of the
        last chunks consumed (the data gives them again), whose last steps the history held."""
        position = self.step * self.num_steps
        if self.iterator != "sequential" or progress.chunks == 0 or not carried:
            self.runner.reset(position)
            return
        inexact = None
        if "runner.state" not in arrays:
            inexact = "the checkpoint holds no carried hidden state"
        elif self._history_steps() > 0 and "runner.history_inputs" not in arrays:
            inexact = "the checkpoint holds no truncation history"
        if inexact is not None:
            warnings.warn(
                f"resume: epoch {self.epoch + 1} was interrupted after {progress.chunks} chunks and "
                f"{inexact}; its rest starts from a zero state, so the run is not exactly the "
                "uninterrupted one",
                RuntimeWarning, stacklevel=3,
            )
            self.runner.reset(position)
            return
        self.runner.reset(position, **self._runner_share(arrays, resets))

    def _runner_share(self, arrays: dict[str, np.ndarray],
                      resets: Sequence[Optional[np.ndarray]] = ()) -> dict[str, Any]:
        """``state`` and ``history`` for ``StreamRunner.reset`` from a checkpoint's runner
        arrays: this process's share of the batch (the whole batch without MPI), with the
        history's reset flags from ``resets`` (the last chunks' flags, None for none)."""
        share = self._share
        history: Optional[tuple[np.ndarray, ...]] = None
        if "runner.history_inputs" in arrays:
            history = (
                np.ascontiguousarray(arrays["runner.history_inputs"][:, share]),
                np.ascontiguousarray(arrays["runner.history_states"][:, share]),
            )
            flags = [r for r in resets if r is not None]
            k = history[0].shape[0]
            if k and flags and len(flags) == len(resets):  # packed documents: every chunk has flags
                joined = np.concatenate(flags)[-k:][:, share]
                if joined.any():
                    history = (*history, np.ascontiguousarray(joined))
        state = arrays["runner.state"][(slice(None),) * self._state_batch_axis + (share,)]
        return {"state": np.ascontiguousarray(state), "history": history}

    def _progress(self, batches: Iterator[Chunk], data: TrainingData) -> Iterator[Chunk]:
        if not self.progress:
            return batches
        total = data.chunks_per_epoch(self.batch_size, self.num_steps)
        try:
            from tqdm import tqdm
        except ImportError:
            return _plain_progress(batches, total, f"epoch {self.epoch + 1}")
        return iter(tqdm(batches, total=total, desc=f"epoch {self.epoch + 1}", leave=False, unit="chunk"))

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, corpus: Union[np.ndarray, TrainingData], chunk: int = 512) -> float:
        """On token ids: the perplexity ``exp(mean cross-entropy)`` of predicting each next
        token of ``corpus``, read as one stream with the state carried (packed documents: each
        document from a zero state, no target crossing into the next). On a
        :class:`~rnnbptt.datasets.DenseSeries`: ``0.5 * MSE`` of the series read the same way.
        On :class:`~rnnbptt.datasets.Sequences`: the weighted mean loss of every sequence, each
        from a zero state (:meth:`accuracy` gives the share of class labels predicted)."""
        data = as_training_data(corpus)
        data.check_model(self.model, "corpus")
        chunk = check_integer(chunk, "chunk", 1)
        if not isinstance(data, TokenStream):
            return self._scores(data, chunk)[0]
        return math.exp(self._scores(data, chunk)[0])

    def accuracy(self, sequences: Sequences, chunk: int = 512) -> float:
        """The share of the weighted positions of ``sequences`` (class labels) whose largest
        output is the label: for a label per sequence, of the sequences."""
        if not isinstance(sequences, Sequences) or not sequences.classes:
            shown = "Sequences with values" if isinstance(sequences, Sequences) else type(sequences).__name__
            raise TypeError(f"sequences: expected rnnbptt.datasets.Sequences with class labels, got {shown}")
        sequences.check_model(self.model, "sequences")
        accuracy = self._scores(sequences, check_integer(chunk, "chunk", 1))[1]
        assert accuracy is not None
        return accuracy

    def _scores(self, data: TrainingData, chunk: int) -> tuple[float, Optional[float]]:
        """(mean loss, accuracy or None) of a token stream or a dense series (one stream, the
        state carried, ``chunk`` steps at a time) or of sequences (``chunk`` at a time)."""
        model = self.model
        if isinstance(data, TokenStream):  # each token predicts the next, within its document
            corpus = data.ids
            if len(corpus) < 2:
                raise ValueError(f"corpus: expected at least 2 tokens to evaluate, got {len(corpus)}")
            if data.starts is not None:
                return self._document_scores(corpus, data.starts, chunk), None
            state = None
            total, count = 0.0, 0
            for start in range(0, len(corpus) - 1, chunk):
                x = np.ascontiguousarray(corpus[start : start + chunk][: len(corpus) - 1 - start]).reshape(-1, 1)
                y = np.ascontiguousarray(corpus[start + 1 : start + 1 + len(x)]).reshape(-1, 1)
                _, state = model.forward(x, state)
                total += model.loss(y) * len(x)
                count += len(x)
            return total / count, None
        if isinstance(data, Sequences):
            loss_sum, weight_sum, hits = 0.0, 0.0, 0.0
            for start in range(0, len(data), chunk):
                x, y, w, *_ = data.batch(np.arange(start, min(len(data), start + chunk)), model.dtype)
                outputs, _ = model.forward(x)
                weight = float(w.sum()) if w is not None else float(y.shape[0] * y.shape[1])
                loss_sum += model.loss(y, w) * weight
                weight_sum += weight
                if data.classes:
                    right = (outputs.argmax(axis=2) == y).astype(np.float64)
                    hits += float((right * (1.0 if w is None else w)).sum())
            return loss_sum / weight_sum, hits / weight_sum if data.classes else None
        state = None
        total, count = 0.0, 0
        for start in range(0, len(data), chunk):
            x = np.ascontiguousarray(data.inputs[start : start + chunk, None, :])  # type: ignore[union-attr]
            y = np.ascontiguousarray(data.targets[start : start + chunk, None, :])  # type: ignore[union-attr]
            _, state = model.forward(x, state)
            total += model.loss(y) * len(x)
            count += len(x)
        return total / count, None

    def _document_scores(self, corpus: np.ndarray, starts: np.ndarray, chunk: int, group: int = 64) -> float:
        """Mean cross-entropy of packed documents, each from a zero state: ``group`` documents
        side by side in one batch, ``chunk`` steps at a time with each row's state carried and
        each row ending at its own length (``forward(..., lengths=)``)."""
        model = self.model
        bounds = [(a, b) for a, b in zip([0, *starts.tolist()], [*starts.tolist(), len(corpus)]) if b - a >= 2]
        if not bounds:
            raise ValueError("corpus: expected a document of at least 2 tokens to evaluate, got none")
        total, count = 0.0, 0
        for first in range(0, len(bounds), group):
            part = bounds[first : first + group]
            steps = max(b - a - 1 for a, b in part)  # each document's last token predicts nothing
            state = None
            for start in range(0, steps, chunk):
                T = min(chunk, steps - start)
                lengths = np.array([min(max(b - a - 1 - start, 0), T) for a, b in part], dtype=np.int64)
                x = np.zeros((T, len(part)), dtype=np.int64)
                y = np.zeros((T, len(part)), dtype=np.int64)
                for i, (a, _) in enumerate(part):
                    x[: lengths[i], i] = corpus[a + start : a + start + lengths[i]]
                    y[: lengths[i], i] = corpus[a + start + 1 : a + start + 1 + lengths[i]]
                _, state = model.forward(x, state, lengths=lengths)
                positions = int(lengths.sum())
                total += model.loss(y) * positions
                count += positions
        return total / count

    # ---- the whole run ------------------------------------------------------------------
    def fit(
        self,
        corpus: Union[np.ndarray, TrainingData],
        epochs: Optional[int] = None,
        *,
        steps: Optional[int] = None,
        valid: Optional[Union[np.ndarray, TrainingData]] = None,
        checkpoint: Optional[Union[str, Path]] = None,
        checkpoint_every: int = 1,
        on_epoch: Optional[Callable[[EpochRecord], None]] = None,
        checkpoint_every_steps: Optional[int] = None,
    ) -> list[EpochRecord]:
        """Train until ``epochs`` epochs, or ``steps`` optimizer steps, have run in total (a
        resumed trainer continues its counts). With ``steps`` the last epoch may stop part-way;
        its record covers the chunks it ran, and the next ``fit`` (or a resumed trainer)
        continues that epoch exactly where it stopped, replacing the partial record with the
        whole epoch's. Checkpoints are written every ``checkpoint_every`` epochs, every
        ``checkpoint_every_steps`` optimizer steps (if given; mid-epoch checkpoints resume
        exactly too) and at the end.

        ``corpus`` and ``valid`` are token ids (a language model), or any kind of
        :mod:`rnnbptt.datasets`: a :class:`~rnnbptt.datasets.DenseSeries` (regression on a
        stream, chunked and carried as text is) or :class:`~rnnbptt.datasets.Sequences` (whole
        sequences with labels). Both must be of the same kind."""
        data = as_training_data(corpus)
        data.check_model(self.model, "corpus")
        valid_data = None if valid is None else as_training_data(valid, "valid")
        if valid_data is not None and valid_data.kind != data.kind:
            raise TypeError(f"valid: expected the same kind of data as corpus ({data.kind}), got {valid_data.kind}")
        if valid_data is not None:
            valid_data.check_model(self.model, "valid")
        if (epochs is None) == (steps is None):
            raise ValueError(f"fit: expected exactly one of epochs and steps, got epochs={epochs}, steps={steps}")
        if epochs is not None:
            epochs = check_integer(epochs, "epochs", 1)
        if steps is not None:
            steps = check_integer(steps, "steps", 1)
        checkpoint_every = check_integer(checkpoint_every, "checkpoint_every", 1)
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"on_epoch: expected a callable or None, got {type(on_epoch).__name__}")
        if epochs is not None and epochs < self.epoch:
            raise ValueError(f"epochs: expected at least the {self.epoch} already trained, got {epochs}")
        if steps is not None and steps < self.step:
            raise ValueError(f"steps: expected at least the {self.step} already taken, got {steps}")
        if checkpoint_every_steps is not None:
            checkpoint_every_steps = check_integer(checkpoint_every_steps, "checkpoint_every_steps", 1)
        if epochs is not None:
            self.epochs_planned = epochs
            self._steps_target = None
        elif steps != self._steps_target or not self.epochs_planned:
            # As many epochs as the steps span, for the learning-rate schedule; kept when a
            # resumed run continues to the same target, so that its schedule stays the same.
            assert steps is not None
            per_epoch = data.chunks_per_epoch(self.batch_size, self.num_steps)
            done = self._in_progress.chunks if self._in_progress is not None else 0
            self.epochs_planned = self.epoch + max(1, -(-(steps - self.step + done) // per_epoch))
            self._steps_target = steps

        def more() -> bool:
            if epochs is not None:
                return self.epoch < epochs
            assert steps is not None
            return self.step < steps

        on_step = None
        if checkpoint is not None and checkpoint_every_steps is not None:
            every = checkpoint_every_steps

            def on_step() -> None:
                if self.step % every == 0 and more():
                    self.save(checkpoint)

        while more():
            lr = self._lr()
            partial = self._in_progress is not None and self._in_progress.recorded
            loss, speed, norm, memory, seconds = self.train_epoch(data, max_steps=steps, on_step=on_step)
            finished = self._in_progress is None
            tokens = isinstance(data, TokenStream)
            valid_loss, valid_accuracy = self._validate(valid_data)
            record = EpochRecord(
                epoch=self.epoch if finished else self.epoch + 1, step=self.step,
                train_perplexity=_perplexity(loss) if tokens else None,
                valid_perplexity=_perplexity(valid_loss) if tokens and valid_loss is not None else None,
                tokens_per_second=speed, grad_norm=norm, lr=lr,
                seconds=seconds, memory_bytes=memory, truncation=str(self.truncation),
                train_loss=loss, valid_loss=valid_loss, valid_accuracy=valid_accuracy, data=data.kind,
            )
            if partial and self.history and self.history[-1].epoch == record.epoch:
                self.history[-1] = record  # the epoch's whole record replaces its partial one
            else:
                self.history.append(record)
            if not finished:
                assert self._in_progress is not None
                self._in_progress.recorded = True
            self._write_log(record)
            if checkpoint is not None and ((finished and self.epoch % checkpoint_every == 0) or not more()):
                self.save(checkpoint)
            if on_epoch is not None:
                on_epoch(record)
        return self.history

    def _validate(self, valid: Optional[TrainingData]) -> tuple[Optional[float], Optional[float]]:
        """Validation (mean loss, accuracy or None); with MPI computed on rank 0 and sent to the
        others."""
        if valid is None or (isinstance(valid, TokenStream) and len(valid) <= 1):
            return None, None

        def scores() -> tuple[float, Optional[float]]:
            return self._scores(valid, 512)

        if self._dp is None:
            return scores()
        value = scores() if self._dp.is_root else None
        loss, accuracy = self._dp.broadcast(value)
        return float(loss), accuracy

    def _write_log(self, record: EpochRecord) -> None:
        if self.log is None:
            return
        row = asdict(record)
        if self.log.suffix == ".csv":
            new = not self.log.exists() or self.log.stat().st_size == 0
            fields = list(row)
            if not new:  # a log begun by an earlier rnnbptt keeps its columns
                with self.log.open(newline="") as f:
                    fields = next(csv.reader(f), fields) or fields
            with self.log.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(row)
        else:
            with self.log.open("a") as f:
                f.write(json.dumps(row) + "\n")

    # ---- several processes --------------------------------------------------------------
    def step_loss(self) -> float:
        """The last optimizer step's loss over the whole batch (NaN before the first step). With
        MPI a collective call: it sums the processes' shares."""
        if self._dp is None:
            return self._last_loss
        return self._dp.sum(self._last_loss)

    def check_replicas(self) -> None:
        """With MPI, raise :class:`~rnnbptt.distributed.ReplicaError` on every process unless all
        hold the same parameters, optimizer state, step and random-generator state (compared by
        SHA-256; a collective call). Without MPI there is nothing to compare."""
        if self._dp is None:
            return
        arrays = {"params": self.model.params, **{f"optimizer.{k}": v for k, v in self.optimizer.state().items()}}
        extra = (self.step, self.epoch, self.optimizer.config(), self.rng.bit_generator.state)
        self._dp.check_replicas(self.step, arrays, extra)

    @property
    def steps_target(self) -> Optional[int]:
        """The ``steps`` of the last ``fit(steps=...)`` (None when the run counts epochs)."""
        return self._steps_target

    @property
    def mid_epoch(self) -> bool:
        """Whether an epoch was interrupted part-way (by ``steps`` or a kill after a step
        checkpoint): the next ``fit`` finishes it first."""
        return self._in_progress is not None

    def change(self, *, lr: Optional[float] = None, clip: Union[float, None, str] = "keep") -> None:
        """Change the settings that may change during a run: the base learning rate ``lr``
        (> 0) and the clipping threshold ``clip`` (> 0, or None for no clipping); the rest of
        the settings are the run's identity. Checked as the constructor checks them."""
        changes: dict[str, Any] = {}
        if lr is not None:
            changes["lr"] = lr
        if clip != "keep":
            changes["clip"] = clip
        self.settings = replace(self.settings, **changes)

    # ---- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The trainer's state as JSON-ready values (a collective call with MPI: the running
        loss of an epoch in progress is summed over the processes)."""
        in_progress = asdict(self._in_progress) if self._in_progress is not None else None
        if self._dp is not None and in_progress is not None:
            in_progress["loss"] = self._dp.sum(in_progress["loss"])
        return {
            "epoch": self.epoch, "step": self.step, "epochs_planned": self.epochs_planned,
            "rng": self.rng.bit_generator.state, **self.settings.to_state(),
            "history": [asdict(r) for r in self.history],
            "steps_target": self._steps_target,
            # An epoch interrupted part-way (None at an epoch boundary); the stream runner's
            # carried state goes into the checkpoint as tensors (see state_arrays).
            "epoch_in_progress": in_progress,
            **({"data": self.data} if self.data is not None else {}),
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the trainer's state: mid-epoch with the sequential iterator, the
        stream runner's carried hidden state (and history, for Regular(k1 < k2)), of the whole
        batch (with MPI: gathered on rank 0, a collective call; empty elsewhere)."""
        return self._runner_arrays()

    def save(self, path: Union[str, Path]) -> Path:
        """Write a checkpoint from which :meth:`resume` continues exactly, at an epoch
        boundary or in the middle of an epoch.

        With MPI a collective call: rank 0 writes the file (atomically), which holds the whole
        batch's state as a single process's would; a failed write raises
        :class:`~rnnbptt.distributed.CollectiveError` on every process."""
        checkpoint = ckpt.Checkpoint(
            model=self.model, vocab=self.vocab, optimizer=self.optimizer.config(),
            optimizer_state=self.optimizer.state(), trainer=self.state(),
            trainer_state=self.state_arrays(),
        )
        if self._dp is None:
            return ckpt.save(path, checkpoint)
        failure = None
        if self._dp.is_root:
            try:
                ckpt.save(path, checkpoint)
            except Exception as error:  # the others must hear of it, or they wait forever
                failure = f"{type(error).__name__}: {error}"
        failure = self._dp.broadcast(failure)
        if failure is not None:
            raise CollectiveError(f"checkpoint: rank 0 could not write {path} ({failure})")
        return Path(path)

    @classmethod
    def resume(
        cls, path: Union[str, Path], *, log: Optional[Union[str, Path]] = None, progress: bool = False,
        lr_schedule: Optional[LrSchedule] = None, comm: Any = None,
    ) -> Trainer:
        """A trainer that continues exactly where the checkpoint at ``path`` stopped, also in
        the middle of an epoch (the next :meth:`fit` finishes that epoch first).

        With ``comm`` (see :class:`Trainer`) every process reads the checkpoint, a single
        process's or one written by any number of processes, and takes its share of the
        carried state: a run resumes on any number of processes up to its batch size. If one
        process cannot read the file, all raise its error."""
        with agreement(comm):  # with MPI, a file that one process cannot read stops them all
            loaded = ckpt.load(path)
        s, opt = loaded.trainer, loaded.optimizer
        _require_state(path, s, opt, {*TrainerSettings.STATE_KEYS, "rng", "epoch", "step", "epochs_planned", "history"})
        settings = TrainerSettings.from_state(path, s, opt)
        if comm is not None:
            size = DataParallel(comm).size
            if settings.batch_size < size:
                raise ValueError(
                    f"comm: expected at most {settings.batch_size} processes to share {path}'s batch of "
                    f"{settings.batch_size} sequences (one at least each), got {size}"
                )
        schedule = lr_schedule if lr_schedule is not None else settings.lr_schedule
        if schedule == CALLABLE_SCHEDULE:
            raise ValueError("lr_schedule: this run used a callable schedule; pass it again to resume")
        try:
            arguments = {**asdict(settings), "lr_schedule": schedule}
            trainer = cls(loaded.model, vocab=loaded.vocab, log=log, progress=progress, comm=comm, **arguments)
            trainer.optimizer.load_state(loaded.optimizer_state, opt)
            trainer.rng.bit_generator.state = s["rng"]
            trainer.epoch, trainer.step = (_count(path, s, key) for key in ("epoch", "step"))
            trainer.epochs_planned = _count(path, s, "epochs_planned")
            trainer.history = [EpochRecord(**r) for r in s["history"]]
            trainer._steps_target = s.get("steps_target")  # absent in format version 1
            data = s.get("data")  # absent before rnnbptt recorded it
            if data is not None and not isinstance(data, dict):
                raise TypeError(f"expected 'data' to be a JSON object, got {data!r}")
            trainer.data = data
            in_progress = s.get("epoch_in_progress")
            if in_progress is not None and "weight" not in in_progress:  # written before weights were kept
                in_progress = {**in_progress, "weight": float(in_progress.get("tokens", 0))}
            trainer._in_progress = EpochProgress(**in_progress) if in_progress is not None else None
            if trainer._in_progress is not None and not trainer._is_root:
                trainer._in_progress.loss = 0.0  # the running loss sum stays on rank 0
        except ckpt.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as error:
            raise ckpt.CheckpointError(f"checkpoint: {path} has an inconsistent trainer state ({error!r})") from None
        if trainer._in_progress is not None:
            trainer._runner_snapshot = dict(loaded.trainer_state)
            progress_made = trainer._in_progress.chunks > 0 and trainer.iterator == "sequential"
            if progress_made and "runner.state" in trainer._runner_snapshot:
                # What the first fit will restore, tried now on a scratch runner: a runner state
                # that does not fit the trainer entry (its truncation, its step) names the file.
                try:
                    StreamRunner(trainer.model, trainer.truncation).reset(
                        trainer.step * trainer.num_steps, **trainer._runner_share(trainer._runner_snapshot))
                except ValueError as error:
                    raise ckpt.CheckpointError(
                        f"checkpoint: {path} has a runner state that does not fit its trainer entry ({error})"
                    ) from None
        return trainer


def _perplexity(loss: float) -> float:
    return math.exp(loss) if math.isfinite(loss) else math.nan


def _count(path: Union[str, Path], values: dict[str, Any], key: str) -> int:
    """The trainer entry's ``values[key]``: an integer >= 0 that fits in int64 (JSON floats,
    bools, 1e400 and the like are refused with CheckpointError, never truncated)."""
    value = values.get(key)
    if type(value) is not int or not 0 <= value <= 2**63 - 1:
        shown = "none" if key not in values else repr(value)
        raise ckpt.CheckpointError(f"checkpoint: {path}: trainer: expected {key!r} to be an integer >= 0, got {shown}")
    return value


def _plain_progress(batches: Iterator[Chunk], total: int, label: str) -> Iterator[Chunk]:
    """Progress without tqdm: a line at every tenth of the epoch, on stderr."""
    marks = {max(1, round(total * k / 10)) for k in range(1, 11)}
    for i, batch in enumerate(batches, start=1):
        yield batch
        if i in marks:
            print(f"{label}: {min(100, round(100 * i / total))}%", file=sys.stderr, flush=True)
