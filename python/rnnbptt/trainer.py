"""A thin training loop over the C++ core: per chunk, one call for forward + loss + backward
(through a :class:`StreamRunner`), one for clipping and one for the optimizer update."""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from . import checkpoint as ckpt
from .clip import clip_grad_norm, global_norm
from .data import Batch, Vocab, random_batches, sequential_batches
from .model import RNN
from .optim import make_optimizer
from .stream import StreamRunner
from .truncation import Truncation

LrSchedule = Union[str, Callable[[int, int], float]]


@dataclass
class EpochRecord:
    """What one epoch did; one line of the log."""

    epoch: int
    step: int
    train_perplexity: float
    valid_perplexity: Optional[float]
    tokens_per_second: float
    grad_norm: float
    lr: float
    seconds: float
    memory_bytes: int
    truncation: str  #: the strategy's string form, ``str(Truncation)``


class Trainer:
    """Trains an :class:`RNN` language model on integer-encoded text.

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
    ) -> None:
        if iterator not in ("sequential", "random"):
            raise ValueError(f"iterator: expected 'sequential' or 'random', got {iterator!r}")
        if clip is not None and not clip > 0:
            raise ValueError(f"clip: expected a threshold > 0 or None, got {clip}")
        if not (callable(lr_schedule) or lr_schedule in ("constant", "cosine")):
            raise ValueError(f"lr_schedule: expected 'constant', 'cosine' or a callable, got {lr_schedule!r}")
        if isinstance(truncation, str):
            truncation = Truncation.parse(truncation)
        elif not isinstance(truncation, Truncation):
            raise TypeError(f"truncation: expected a Truncation or its string form, got {truncation!r}")
        truncation.check_chunk(num_steps, "num_steps")
        if vocab is not None and (len(vocab) != model.input_size or len(vocab) != model.output_size):
            raise ValueError(f"vocab: expected {model.input_size} symbols (the model's sizes), got {len(vocab)}")
        self.model = model
        self.vocab = vocab
        self.optimizer = make_optimizer(optimizer, model.num_parameters, model.dtype, lr, weight_decay)
        self.base_lr = float(lr)
        self.lr_schedule = lr_schedule
        self.clip = clip
        self.truncation = truncation
        self.runner = StreamRunner(model, truncation)
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.iterator = iterator
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.step = 0
        self.epochs_planned = 0
        self.history: list[EpochRecord] = []
        self.log = Path(log) if log is not None else None
        self.progress = progress

    # ---- one epoch ----------------------------------------------------------------------
    def _lr(self) -> float:
        if callable(self.lr_schedule):
            return float(self.lr_schedule(self.epoch, self.epochs_planned))
        if self.lr_schedule == "cosine" and self.epochs_planned > 1:
            progress = self.epoch / (self.epochs_planned - 1)
            return self.base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        return self.base_lr

    def _batches(self, corpus: np.ndarray) -> Iterator[Batch]:
        make = sequential_batches if self.iterator == "sequential" else random_batches
        return make(corpus, self.batch_size, self.num_steps, self.rng)

    def train_epoch(
        self, corpus: np.ndarray, max_steps: Optional[int] = None
    ) -> tuple[float, float, float, int, float]:
        """One pass over ``corpus``, or fewer chunks when the optimizer step count reaches
        ``max_steps``: (perplexity, tokens/s, mean gradient norm, runner bytes, seconds)."""
        runner = self.runner
        runner.reset(self.step * self.num_steps)  # a new stream; global steps keep counting
        lr = self._lr()
        self.optimizer.lr = lr
        params, grads = self.model.params, self.model.grads
        total_loss, tokens, norms, count = 0.0, 0, 0.0, 0
        start = time.perf_counter()
        for x, y in self._progress(self._batches(corpus), corpus):
            if max_steps is not None and self.step >= max_steps:
                break
            if self.iterator == "random":  # every chunk a stream of its own
                runner.reset(runner.position)
            loss = runner.step(x, y)
            if self.clip is not None:
                norms += clip_grad_norm(grads, self.clip).norm
            else:
                norms += global_norm(grads)
            self.optimizer.step(params, grads)
            total_loss += loss * x.size
            tokens += x.size
            count += 1
            self.step += 1
        seconds = time.perf_counter() - start
        self.epoch += 1
        return math.exp(total_loss / tokens), tokens / seconds, norms / count, runner.memory_bytes, seconds

    def _progress(self, batches: Iterator[Batch], corpus: np.ndarray) -> Iterator[Batch]:
        if not self.progress:
            return batches
        total = max(1, len(corpus) // (self.batch_size * self.num_steps))
        try:
            from tqdm import tqdm
        except ImportError:
            return _plain_progress(batches, total, f"epoch {self.epoch + 1}")
        return iter(tqdm(batches, total=total, desc=f"epoch {self.epoch + 1}", leave=False, unit="chunk"))

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, corpus: np.ndarray, chunk: int = 512) -> float:
        """Perplexity ``exp(mean cross-entropy)`` of predicting each next token of ``corpus``,
        read as one stream with the state carried."""
        if len(corpus) < 2:
            raise ValueError(f"corpus: expected at least 2 tokens to evaluate, got {len(corpus)}")
        state = None
        total, count = 0.0, 0
        for start in range(0, len(corpus) - 1, chunk):
            x = np.ascontiguousarray(corpus[start : start + chunk][: len(corpus) - 1 - start]).reshape(-1, 1)
            y = np.ascontiguousarray(corpus[start + 1 : start + 1 + len(x)]).reshape(-1, 1)
            _, state = self.model.forward(x, state)
            total += self.model.loss(y) * len(x)
            count += len(x)
        return math.exp(total / count)

    # ---- the whole run ------------------------------------------------------------------
    def fit(
        self,
        corpus: np.ndarray,
        epochs: Optional[int] = None,
        *,
        steps: Optional[int] = None,
        valid: Optional[np.ndarray] = None,
        checkpoint: Optional[Union[str, Path]] = None,
        checkpoint_every: int = 1,
        on_epoch: Optional[Callable[[EpochRecord], None]] = None,
    ) -> list[EpochRecord]:
        """Train until ``epochs`` epochs, or ``steps`` optimizer steps, have run in total (a
        resumed trainer continues its counts). With ``steps`` the last epoch may stop part-way;
        its record covers the chunks it ran. Checkpoints are written every
        ``checkpoint_every`` epochs and at the end."""
        if (epochs is None) == (steps is None):
            raise ValueError(f"fit: expected exactly one of epochs and steps, got epochs={epochs}, steps={steps}")
        if epochs is not None and epochs < self.epoch:
            raise ValueError(f"epochs: expected at least the {self.epoch} already trained, got {epochs}")
        if steps is not None and steps < self.step:
            raise ValueError(f"steps: expected at least the {self.step} already taken, got {steps}")
        if epochs is not None:
            self.epochs_planned = epochs
        else:  # as many epochs as the steps span, for the learning-rate schedule
            assert steps is not None
            per_epoch = max(1, len(corpus) // (self.batch_size * self.num_steps))
            self.epochs_planned = self.epoch + max(1, -(-(steps - self.step) // per_epoch))

        def more() -> bool:
            if epochs is not None:
                return self.epoch < epochs
            assert steps is not None
            return self.step < steps

        while more():
            lr = self._lr()
            ppl, speed, norm, memory, seconds = self.train_epoch(corpus, max_steps=steps)
            record = EpochRecord(
                epoch=self.epoch, step=self.step, train_perplexity=ppl,
                valid_perplexity=self.evaluate(valid) if valid is not None and len(valid) > 1 else None,
                tokens_per_second=speed, grad_norm=norm, lr=lr,
                seconds=seconds, memory_bytes=memory, truncation=str(self.truncation),
            )
            self.history.append(record)
            self._write_log(record)
            if checkpoint is not None and (self.epoch % checkpoint_every == 0 or not more()):
                self.save(checkpoint)
            if on_epoch is not None:
                on_epoch(record)
        return self.history

    def _write_log(self, record: EpochRecord) -> None:
        if self.log is None:
            return
        row = asdict(record)
        if self.log.suffix == ".csv":
            new = not self.log.exists() or self.log.stat().st_size == 0
            with self.log.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    writer.writeheader()
                writer.writerow(row)
        else:
            with self.log.open("a") as f:
                f.write(json.dumps(row) + "\n")

    # ---- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "step": self.step, "epochs_planned": self.epochs_planned,
            "rng": self.rng.bit_generator.state, "seed": self.seed, "truncation": str(self.truncation),
            "batch_size": self.batch_size, "num_steps": self.num_steps, "iterator": self.iterator,
            "clip": self.clip, "base_lr": self.base_lr,
            "lr_schedule": self.lr_schedule if isinstance(self.lr_schedule, str) else "callable",
            "history": [asdict(r) for r in self.history],
        }

    def save(self, path: Union[str, Path]) -> Path:
        return ckpt.save(
            path,
            ckpt.Checkpoint(
                model=self.model, vocab=self.vocab, optimizer=self.optimizer.config(),
                optimizer_state=self.optimizer.state(), trainer=self.state(),
            ),
        )

    @classmethod
    def resume(
        cls, path: Union[str, Path], *, log: Optional[Union[str, Path]] = None, progress: bool = False,
        lr_schedule: Optional[LrSchedule] = None,
    ) -> Trainer:
        """A trainer that continues exactly where the checkpoint at ``path`` stopped."""
        loaded = ckpt.load(path)
        s, opt = loaded.trainer, loaded.optimizer
        schedule = lr_schedule if lr_schedule is not None else s["lr_schedule"]
        if schedule == "callable":
            raise ValueError("lr_schedule: this run used a callable schedule; pass it again to resume")
        trainer = cls(
            loaded.model, vocab=loaded.vocab, optimizer=opt["name"], lr=s["base_lr"],
            lr_schedule=schedule, weight_decay=opt.get("weight_decay", 0.0), clip=s["clip"],
            truncation=s["truncation"], batch_size=s["batch_size"], num_steps=s["num_steps"],
            iterator=s["iterator"], seed=s["seed"], log=log, progress=progress,
        )
        trainer.optimizer.load_state(loaded.optimizer_state, opt)
        trainer.rng.bit_generator.state = s["rng"]
        trainer.epoch, trainer.step = s["epoch"], s["step"]
        trainer.epochs_planned = s["epochs_planned"]
        trainer.history = [EpochRecord(**r) for r in s["history"]]
        return trainer


def _plain_progress(batches: Iterator[Batch], total: int, label: str) -> Iterator[Batch]:
    """Progress without tqdm: a line at every tenth of the epoch, on stderr."""
    marks = {max(1, round(total * k / 10)) for k in range(1, 11)}
    for i, batch in enumerate(batches, start=1):
        yield batch
        if i in marks:
            print(f"{label}: {min(100, round(100 * i / total))}%", file=sys.stderr, flush=True)
