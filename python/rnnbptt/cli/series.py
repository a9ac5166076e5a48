"""``rnnbptt train --data FILE.npz``: regression on a dense series instead of a text.

The file is NumPy's ``.npz`` (``numpy.savez``) with the arrays

- ``inputs`` ``(N, d)`` and ``targets`` ``(N, q)``: the series, the target of step ``t`` being
  what the model should output after reading input ``t`` (for forecasting, the next value);
  a 1-D array is one feature per step;
- optionally ``valid_inputs`` and ``valid_targets`` (together): a held-out series; without
  them the last ``--valid-fraction`` of the steps is held out.

Values are read as ``--dtype`` (the conversion happens here, at the edge) and must be finite.
The loss is squared error, reported as ``0.5 * MSE``; the summary compares the held-out loss
with predicting the training targets' mean.
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from .. import distributed
from ..datasets import DenseSeries
from ..model import RNN
from ..trainer import EpochRecord, Trainer
from .arguments import UsageError, _flag, aborting_on_one_rank, describe_cells

#: The arrays a ``--data`` file may hold.
SERIES_KEYS = ("inputs", "targets", "valid_inputs", "valid_targets")
#: ``train`` flags for text only.
TEXT_ONLY = ("text", "timemachine", "d2l", "max_tokens", "prefix", "sample_length", "temperature", "documents")


def _array(path: Path, key: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if value.dtype.kind not in "fiu" or value.ndim not in (1, 2) or len(value) == 0:
        raise UsageError(f"argument --data: expected '{key}' in {path} to be a non-empty 1-D or 2-D array of numbers "
                         f"(steps, features), got shape {value.shape} and dtype {value.dtype}")
    values = np.ascontiguousarray(value.reshape(len(value), -1), dtype=dtype)
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        raise UsageError(f"argument --data: expected finite values in '{key}' of {path} (as {dtype.name}), got "
                         f"{values[tuple(bad)]} at {tuple(int(i) for i in bad)}")
    return values


def load_series(path: Path, dtype: np.dtype, valid_fraction: float) -> tuple[DenseSeries, Optional[DenseSeries]]:
    """The training series and the held-out one (None when nothing is held out) of a ``--data``
    file; UsageError naming ``--data`` for anything else."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array (.npy), not an archive of named arrays")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise UsageError(f"argument --data: no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"argument --data: expected an .npz file (numpy.savez) with arrays 'inputs' and 'targets', "
                         f"got {path} ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    unknown = sorted(set(arrays) - set(SERIES_KEYS))
    if unknown:
        raise UsageError(f"argument --data: expected the arrays {', '.join(SERIES_KEYS)} in {path}, got "
                         f"{unknown[0]!r}")
    for key in ("inputs", "targets"):
        if key not in arrays:
            raise UsageError(f"argument --data: expected an array '{key}' in {path}, got none")
    if ("valid_inputs" in arrays) != ("valid_targets" in arrays):
        raise UsageError(f"argument --data: expected 'valid_inputs' and 'valid_targets' together in {path}, got one")
    parts = {key: _array(path, key, value, dtype) for key, value in arrays.items()}
    for prefix in ("", "valid_"):
        if prefix + "inputs" in parts and len(parts[prefix + "inputs"]) != len(parts[prefix + "targets"]):
            raise UsageError(f"argument --data: expected '{prefix}targets' of {len(parts[prefix + 'inputs'])} steps "
                             f"(as '{prefix}inputs') in {path}, got {len(parts[prefix + 'targets'])}")
    inputs, targets = parts["inputs"], parts["targets"]
    if "valid_inputs" in parts:
        valid_inputs, valid_targets = parts["valid_inputs"], parts["valid_targets"]
        if valid_inputs.shape[1] != inputs.shape[1] or valid_targets.shape[1] != targets.shape[1]:
            raise UsageError(f"argument --data: expected the held-out arrays of {path} to have the features of "
                             f"'inputs' and 'targets' ({inputs.shape[1]} and {targets.shape[1]}), got "
                             f"{valid_inputs.shape[1]} and {valid_targets.shape[1]}")
        return DenseSeries(inputs, targets), DenseSeries(valid_inputs, valid_targets)
    cut = int(round(len(inputs) * (1.0 - valid_fraction)))
    if cut >= len(inputs) or cut < 1:
        return DenseSeries(inputs, targets), None
    return DenseSeries(inputs[:cut], targets[:cut]), DenseSeries(inputs[cut:], targets[cut:])


def _print_epoch(record: EpochRecord, every: int, epochs: int) -> None:
    if record.epoch % every == 0 or record.epoch >= epochs or record.epoch == 1:
        valid = f"  valid 0.5*MSE {record.valid_loss:.6g}" if record.valid_loss is not None else ""
        print(f"epoch {record.epoch:4d}/{epochs}  train 0.5*MSE {record.train_loss:.6g}{valid}  "
              f"{record.tokens_per_second:10,.0f} positions/s  |g| {record.grad_norm:.3f}", flush=True)


def train_series(args: argparse.Namespace, comm: object, resumed: Optional[Trainer], record: dict[str, object],
                 learning_rate: float) -> int:
    """The ``train`` command on ``--data``."""
    for name in TEXT_ONLY:
        if name in args.given:
            raise UsageError(f"argument {_flag(name)}: applies to text, not to --data")
    if resumed is not None and resumed.vocab is not None:
        raise UsageError(f"argument --data: {args.resume} was trained on text (it has a vocabulary), not on a series")
    path = Path(args.data)
    with distributed.agreement(comm):  # a file that one process cannot read stops them all
        train, valid = load_series(path, np.dtype(args.dtype), args.valid_fraction)
        needed = args.batch_size * args.num_steps + args.num_steps
        if len(train) < needed:
            raise UsageError(
                f"argument --batch-size/--num-steps: --batch-size {args.batch_size} with --num-steps "
                f"{args.num_steps} needs at least {needed} training steps, --data has {len(train)} (use smaller values)"
            )
        d, q = train.inputs.shape[1], train.targets.shape[1]
        if resumed is not None and (resumed.model.input_size, resumed.model.output_size) != (d, q):
            raise UsageError(f"argument --data: expected {resumed.model.input_size} input and "
                             f"{resumed.model.output_size} target features (what {args.resume} was trained on), got "
                             f"{d} and {q}")
    if resumed is not None:
        model = resumed.model
        trainer = resumed
        print(f"resuming {args.resume} at epoch {trainer.epoch}")
    else:
        try:
            model = RNN(d, args.hidden, q, dtype=args.dtype, seed=args.seed, init_std=args.init_std, cell=args.cell,
                        num_layers=args.layers)
            trainer = Trainer(
                model, optimizer=args.optimizer, lr=learning_rate, lr_schedule=args.lr_schedule,
                clip=args.clip if args.clip > 0 else None, truncation=args.truncation, batch_size=args.batch_size,
                num_steps=args.num_steps, iterator=args.iterator, seed=args.seed, log=args.log,
                progress=args.progress, comm=comm,
            )
        except MemoryError as error:
            raise UsageError(f"argument --hidden/--layers: not enough memory for {args.layers} layer(s) of "
                             f"{args.hidden} hidden units ({error})") from None
    trainer.data = record
    held = len(valid) if valid is not None else 0
    print(f"training on {path}: {len(train):,} steps of {d} -> {q} features ({held:,} held out), "
          f"{describe_cells(model.cell, model.num_layers, model.hidden_size)}, {trainer.settings.describe()}; "
          "loss 0.5*MSE, the mean of 0.5 ||o - y||^2 over steps and streams")
    epochs = None if args.steps is not None else args.epochs
    started = time.perf_counter()
    with aborting_on_one_rank(trainer, comm):
        trainer.fit(train, epochs, steps=args.steps, valid=valid, checkpoint=args.checkpoint,
                    checkpoint_every=args.checkpoint_every, checkpoint_every_steps=args.checkpoint_every_steps,
                    on_epoch=lambda r: _print_epoch(r, max(1, trainer.epochs_planned // 10), trainer.epochs_planned))
    if comm is not None and trainer.comm.Get_rank() != 0:
        return 0
    seconds = time.perf_counter() - started
    last = trainer.history[-1]
    valid_text = f", valid 0.5*MSE {last.valid_loss:.6g}" if last.valid_loss is not None else ""
    print(f"done: epoch {last.epoch}, step {last.step}, train 0.5*MSE {last.train_loss:.6g}{valid_text}")
    print(f"checkpoint written to {args.checkpoint}")
    scored = valid if valid is not None else train
    baseline = 0.5 * float(np.mean(np.sum((scored.targets - train.targets.mean(axis=0)) ** 2, axis=1)))
    loss = trainer.evaluate(scored)
    print(f"\nsummary: trained in {seconds:.2f} s. {'Held-out' if valid is not None else 'Training'} 0.5*MSE "
          f"{loss:.6g}, against {baseline:.6g} for always predicting the training targets' mean (the baseline a "
          "model must beat by reading its inputs).")
    if args.plot:
        from ..plots import plot_training_curves

        plot_training_curves({str(trainer.truncation): trainer.history}, args.plot)
        print(f"\ntraining curve written to {args.plot}")
    return 0
