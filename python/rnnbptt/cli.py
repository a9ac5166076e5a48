"""Command line: ``rnnbptt {demo,train,generate,compare,gradcheck}`` (also ``python -m rnnbptt``)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, Optional

import numpy as np

from . import _core, build_info, data, distributed, get_num_threads, gradcheck, reference, set_num_threads
from ._checks import check_utf8
from ._table import text_table
from .checkpoint import CheckpointError
from .checkpoint import load as load_checkpoint
from .generate import generate
from .model import ACTIVATIONS, RNN
from .trainer import EpochRecord, Trainer
from .truncation import Truncation

DEFAULT_CHECKPOINT = "rnnbptt-checkpoint.safetensors"
#: ``rnnbptt train``'s length on the built-in corpus (1.9 million characters): a minute or two on
#: 2 cores, past the lowest validation perplexity that this text allows a 256-unit RNN.
DEFAULT_EPOCHS = 40
#: The temperature of ``rnnbptt train``'s second, seeded sample.
DEFAULT_TEMPERATURE = 0.5
#: ``--lr`` when it is not given, by ``--optimizer``.
DEFAULT_LR = {"adam": 2e-3, "sgd": 1.0}


# ---- argument types and errors ------------------------------------------------------------
class UsageError(Exception):
    """A mistake on the command line, reported as one line naming the flag (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line, ``rnnbptt train: error: argument --epochs:
    ...``, without the usage block (``--help`` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n" if distributed.launched_rank() == 0 else None)


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**64)."""
    value = _integer(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**64), got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = finite_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def clip_threshold(text: str) -> float:
    """argparse type of ``--clip``: a finite threshold > 0, or 0 for no clipping."""
    try:
        return nonnegative_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a finite threshold > 0, or 0 for no clipping, got {text}"
        ) from None


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _truncation(spec: str) -> Truncation:
    """argparse type: the string form of a truncation, parsed here at the edge."""
    try:
        return Truncation.parse(spec)
    except ValueError as error:
        message = str(error)
        raise argparse.ArgumentTypeError(message.removeprefix("truncation: ")) from None


#: Python argument names in error messages whose flag's destination has another name.
_DEST_OF_NAME = {"hidden_size": "hidden", "model": "checkpoint"}


@functools.cache
def _flags() -> dict[str, str]:
    """Every option's destination (``args.num_steps``) -> its flag (``--num-steps``), read from
    the parser's actions, its subcommands' included."""
    flags: dict[str, str] = {}
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop(0)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                flags.setdefault(action.dest, max(action.option_strings, key=len))
    return flags


def _flag(name: str) -> Optional[str]:
    """The flag that sets the argument ``name`` (a destination or a Python argument name), or
    None."""
    return _flags().get(_DEST_OF_NAME.get(name, name))


def _as_flag(message: str, flag: Optional[str] = None) -> str:
    """``"num_steps: expected ..."`` as ``"argument --num-steps: expected ..."``; with ``flag``,
    any leading ``name:`` gives way to that flag."""
    name, sep, rest = message.partition(": ")
    if sep and " " not in name and (flag is not None or _flag(name) is not None):
        return f"argument {flag or _flag(name)}: {rest}"
    return f"argument {flag}: {message}" if flag is not None else message


def _check_prefix(prefix: Optional[str], vocab: data.Vocab) -> None:
    if prefix is None:
        return
    if not prefix:
        raise UsageError("argument --prefix: expected at least one character, got an empty string")
    try:
        check_utf8(prefix, "prefix")  # bytes that are not UTF-8 arrive as lone surrogates (surrogateescape)
    except ValueError as error:
        raise UsageError(_as_flag(f"{error} (bytes on the command line that are not UTF-8?)")) from None
    if vocab.unknown is None:
        missing = sorted({c for c in prefix if c not in vocab.index})
        if missing:
            raise UsageError(
                f"argument --prefix: expected characters of the model's vocabulary ({len(vocab)} symbols), "
                f"got {missing[:10]!r}"
            )


def _check_corpus_length(train: np.ndarray, args: argparse.Namespace) -> None:
    needed = args.batch_size * args.num_steps + args.num_steps + 1
    if len(train) < needed:
        raise UsageError(
            f"argument --batch-size/--num-steps: --batch-size {args.batch_size} with --num-steps "
            f"{args.num_steps} needs at least {needed} training tokens, the text has {len(train)} "
            "(use a longer --text, a larger --max-tokens or smaller values)"
        )


def _learning_rate(args: argparse.Namespace) -> float:
    """``--lr``, else the default of the ``--optimizer``."""
    return float(args.lr) if args.lr is not None else DEFAULT_LR[args.optimizer]


def _build_model(args: argparse.Namespace, vocab: data.Vocab) -> RNN:
    try:
        return RNN(len(vocab), args.hidden, len(vocab), dtype=args.dtype, seed=args.seed, init_std=args.init_std)
    except MemoryError as error:
        raise UsageError(
            f"argument --hidden: not enough memory for a model with {args.hidden} hidden units ({error})"
        ) from None


# ---- demo / gradcheck ---------------------------------------------------------------------
def _gradcheck_table(
    activation: str, tokens: bool, steps: int, batch: int, hidden: int, seed: int
) -> tuple[str, float]:
    d = q = 10
    rng = np.random.default_rng(seed)
    model = RNN(d, hidden, q, activation=activation, dtype=np.float64, seed=seed)
    x = rng.integers(0, d, (steps, batch)) if tokens else rng.standard_normal((steps, batch, d))
    y = rng.integers(0, q, (steps, batch))
    loss, _ = model.forward_backward(x, y)
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    _, ref_grads, _, _ = reference.loss_and_grads(params, x, y, activation=activation)
    errors = gradcheck.check_gradients(model, x, y, samples=20, seed=seed)
    model.forward_backward(x, y)
    rows, worst = [], 0.0
    for name in model.parameter_names():
        g = model.grad(name)
        ref_error = gradcheck.relative_error(g, ref_grads[name])
        worst = max(worst, errors[name], ref_error)
        rows.append([name, str(tuple(g.shape)), f"{np.linalg.norm(g):.4e}", f"{errors[name]:.2e}", f"{ref_error:.2e}"])
    header = (
        f"loss {loss:.6f} on T={steps}, n={batch}, d={d}, h={hidden}, q={q}, {activation}, "
        f"{'token ids' if tokens else 'dense input'}, float64\n"
    )
    headers = ["parameter", "shape", "||grad||", "finite differences (rel. err.)", "NumPy reference (rel. err.)"]
    table = text_table(headers, rows)
    return header + table, worst


def cmd_gradcheck(args: argparse.Namespace) -> int:
    text, worst = _gradcheck_table(args.activation, not args.dense, args.num_steps, args.batch, args.hidden, args.seed)
    print(text)
    ok = worst <= 1e-6
    print(f"\n{'PASS' if ok else 'FAIL'}: largest relative error {worst:.2e} (tolerance 1e-6)")
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    info = build_info()
    print(f"rnnbptt {info['version']} (OpenMP: {info['openmp']}, SIMD: {info['simd']})\n")
    worst = 0.0
    for activation, tokens in (("tanh", True), ("relu", False), ("identity", False)):
        text, error = _gradcheck_table(activation, tokens, 12, 3, 8, args.seed)
        worst = max(worst, error)
        print(text + "\n")
    ok = worst <= 1e-6
    print(f"{'PASS' if ok else 'FAIL'}: BPTT gradients agree with finite differences and the NumPy "
          f"reference; largest relative error {worst:.2e} (tolerance 1e-6)")
    return 0 if ok else 1


# ---- train ---------------------------------------------------------------------------------
BUILT_IN_SOURCE = "the built-in corpus"
TIME_MACHINE_SOURCE = "The Time Machine"


def _load_corpus(
    args: argparse.Namespace, vocab: Optional[data.Vocab] = None
) -> tuple[np.ndarray, np.ndarray, data.Vocab, str]:
    if args.text is not None:
        try:
            text, source = data.read_text(args.text), str(args.text)
        except (OSError, ValueError) as error:
            raise UsageError(_as_flag(str(error), "--text")) from None
    elif args.timemachine:
        try:
            text, source = data.time_machine(args.timemachine_url), TIME_MACHINE_SOURCE
        except (OSError, ValueError) as error:
            raise UsageError(f"argument --timemachine: could not get The Time Machine ({error})") from None
    else:
        text, source = data.default_corpus(), BUILT_IN_SOURCE
    if args.d2l:
        text = data.d2l_preprocess(text)
    if vocab is None:
        vocab = data.Vocab.from_text(text, unknown=args.d2l)
    corpus = vocab.encode(text)
    if args.max_tokens is not None:
        corpus = corpus[: args.max_tokens]
    train, valid = data.split(corpus, args.valid_fraction)
    return train, valid, vocab, source


def _print_epoch(record: EpochRecord, every: int, epochs: int) -> None:
    if record.epoch % every == 0 or record.epoch >= epochs or record.epoch == 1:
        valid = f"  valid ppl {record.valid_perplexity:8.3f}" if record.valid_perplexity is not None else ""
        print(f"epoch {record.epoch:4d}/{epochs}  train ppl {record.train_perplexity:8.3f}{valid}  "
              f"{record.tokens_per_second:10,.0f} tokens/s  |g| {record.grad_norm:.3f}", flush=True)


def _resume(args: argparse.Namespace, comm: object = None) -> Trainer:
    try:
        trainer = Trainer.resume(args.resume, log=args.log, progress=args.progress, comm=comm)
    except (ValueError, TypeError) as error:  # CheckpointError included (no trainer state, say)
        raise UsageError(_as_flag(str(error), "--resume")) from None
    if trainer.vocab is None:
        raise UsageError(f"argument --resume: {args.resume} has no vocabulary to encode text with")
    return trainer


def _mpi_world(args: argparse.Namespace) -> object:
    """MPI's world when a launcher (``mpirun -n P``, ``srun -n P``, P > 1) started this process,
    else None; a mistake when the launcher's environment and MPI disagree on P. Only rank 0
    prints; each rank runs ``--threads``, else ``OMP_NUM_THREADS``, else its share of the
    machine's cores."""
    try:
        comm = distributed.launched_world()
    except (ImportError, distributed.LaunchError) as error:
        raise UsageError(str(error)) from None
    if comm is None:
        return None
    if args.threads is None and not os.environ.get("OMP_NUM_THREADS"):
        set_num_threads(distributed.default_threads(comm))
    return comm


def cmd_train(args: argparse.Namespace) -> int:
    comm = _mpi_world(args)
    if comm is None or distributed.launched_rank() == 0:
        return _train(args, comm)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank 0 reports
        return _train(args, comm)


def _train(args: argparse.Namespace, comm: object) -> int:
    # With MPI, a mistake that only some processes see (a file) stops them all (agreement).
    with distributed.agreement(comm):
        if args.log is not None and not Path(args.log).parent.is_dir():
            raise UsageError(f"argument --log: no such directory: {Path(args.log).parent}")
        if Path(args.checkpoint).is_dir():
            raise UsageError(f"argument --checkpoint: expected a file name, got the directory {args.checkpoint}")
        _check_plot(args.plot, required=True)
    resumed = _resume(args, comm) if args.resume else None
    with distributed.agreement(comm):
        train, valid, vocab, source = _load_corpus(args, resumed.vocab if resumed is not None else None)
        if resumed is not None:
            args.batch_size, args.num_steps = resumed.batch_size, resumed.num_steps
        _check_prefix(args.prefix, vocab)
        _check_corpus_length(train, args)
        model = _build_model(args, vocab) if resumed is None else resumed.model
    if resumed is not None:
        trainer = resumed
        print(f"resuming {args.resume} at epoch {trainer.epoch}")
    else:
        try:
            trainer = Trainer(
                model, vocab=vocab, optimizer=args.optimizer, lr=_learning_rate(args), lr_schedule=args.lr_schedule,
                clip=args.clip if args.clip > 0 else None, truncation=args.truncation,
                batch_size=args.batch_size, num_steps=args.num_steps, iterator=args.iterator,
                seed=args.seed, log=args.log, progress=args.progress, comm=comm,
            )
        except MemoryError as error:
            raise UsageError(
                f"argument --hidden: not enough memory to train {args.hidden} hidden units ({error})"
            ) from None
    if comm is not None:
        print(f"data parallel on {trainer.comm.Get_size()} processes x {get_num_threads()} threads")
    print(f"training on {source}: {len(train):,} tokens ({len(valid):,} held out), "
          f"{len(vocab)} symbols, hidden {trainer.model.hidden_size}, {trainer.settings.describe()}")
    epochs = None if args.steps is not None else args.epochs
    started, first_step = time.perf_counter(), trainer.step
    try:
        trainer.fit(train, epochs, steps=args.steps, valid=valid if len(valid) > 1 else None,
                    checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                    checkpoint_every_steps=args.checkpoint_every_steps,
                    on_epoch=lambda r: _print_epoch(r, max(1, trainer.epochs_planned // 10), trainer.epochs_planned))
    except Exception as error:
        collective = (FloatingPointError, OverflowError, distributed.CollectiveError)  # raised on every rank
        if comm is not None and not isinstance(error, collective):  # the others wait in an allreduce
            text = _one_line(str(error)) or repr(error)
            print(f"rnnbptt train: error on rank {trainer.comm.Get_rank()}: {text}", file=sys.stderr, flush=True)
            trainer.comm.Abort(2)
        raise
    if comm is not None and trainer.comm.Get_rank() != 0:
        return 0  # rank 0 reports and samples
    seconds = time.perf_counter() - started
    last = trainer.history[-1]
    valid_text = f", valid ppl {last.valid_perplexity:.3f}" if last.valid_perplexity is not None else ""
    print(f"done: epoch {last.epoch}, step {last.step}, train ppl {last.train_perplexity:.3f}{valid_text}")
    print(f"checkpoint written to {args.checkpoint}")
    prefix = args.prefix if args.prefix is not None else _default_prefix(source, vocab, train)
    greedy = generate(trainer.model, vocab, prefix, args.sample_length, temperature=0.0)
    print(f"\nsample (greedy):\n{greedy}")
    if args.temperature > 0:
        drawn = generate(trainer.model, vocab, prefix, args.sample_length, temperature=args.temperature, seed=args.seed)
        print(f"\nsample (temperature {args.temperature:g}, seed {args.seed}):\n{drawn}")
    tokens = (trainer.step - first_step) * trainer.batch_size * trainer.num_steps
    print(f"\n{_train_summary(args, trainer, train, valid, tokens, seconds)}")
    if args.plot:
        from .plots import plot_training_curves

        plot_training_curves({str(trainer.truncation): trainer.history}, args.plot)
        print(f"\ntraining curve written to {args.plot}")
    print(f"\n{_next_commands(args, source, prefix)}")
    return 0


def _check_plot(path: Optional[str], *, required: bool) -> None:
    """``--plot``, before any training: its folder must exist and its extension must name a
    format that matplotlib writes. Without matplotlib, a mistake when the plot was asked for
    (``required``), else the run goes on and says that it draws no plot."""
    if not path:
        return
    if not Path(path).parent.is_dir():
        raise UsageError(f"argument --plot: no such directory: {Path(path).parent}")
    formats = _plot_formats()
    if formats is None:
        if required:
            raise UsageError(
                "argument --plot: plots need matplotlib, from the 'plot' extra: pip install 'rnnbptt[plot]'"
            )
        return
    extension = Path(path).suffix[1:].lower()
    if extension not in formats:
        got = f"the extension {Path(path).suffix!r}" if extension else "no extension"
        raise UsageError(
            f"argument --plot: expected a file name ending in an image format that matplotlib writes "
            f"({', '.join(sorted(formats))}), got {got} in {path}"
        )


def _plot_formats() -> Optional[set[str]]:
    """The file extensions that matplotlib saves figures as, or None without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return {name.lower() for name in Figure().canvas.get_supported_filetypes()}


#: The start of the final samples on the built-in corpus (elsewhere: the text's first characters).
BUILT_IN_PREFIX = "The network"


def _default_prefix(source: str, vocab: data.Vocab, train: np.ndarray) -> str:
    if source == BUILT_IN_SOURCE and all(c in vocab.index for c in BUILT_IN_PREFIX):
        return BUILT_IN_PREFIX
    return vocab.decode(train[:10])


def unigram_perplexity(train: np.ndarray, held_out: np.ndarray, size: int) -> float:
    """Perplexity on ``held_out`` of the unigram model of ``train``: every token predicted by its
    frequency in ``train`` alone (add-one smoothed over the ``size`` symbols), whatever came
    before it. The baseline that a language model has to beat by learning order."""
    counts = np.bincount(np.asarray(train, dtype=np.int64), minlength=size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(np.exp(-np.mean(log_p[np.asarray(held_out, dtype=np.int64)])))


def _train_summary(
    args: argparse.Namespace, trainer: Trainer, train: np.ndarray, valid: np.ndarray, tokens: int, seconds: float
) -> str:
    last = trainer.history[-1]
    size = trainer.model.output_size
    if last.valid_perplexity is not None:
        which, perplexity, baseline = "validation", last.valid_perplexity, unigram_perplexity(train, valid[1:], size)
    else:
        which, perplexity, baseline = "training", last.train_perplexity, unigram_perplexity(train, train[1:], size)
    speed = f"{tokens / seconds:,.0f}" if seconds > 0 else "-"
    return (
        f"summary: {tokens:,} tokens trained in {seconds:.1f} s ({speed} tokens/s, evaluation and checkpoints "
        f"included). Final {which} perplexity {perplexity:.2f}, against {baseline:.2f} for the unigram baseline "
        f"of the same text (each symbol predicted by its frequency alone): the model predicts as if choosing among "
        f"{perplexity:.1f} symbols instead of {baseline:.1f}. The checkpoint is {args.checkpoint}."
    )


def _next_commands(args: argparse.Namespace, source: str, prefix: str) -> str:
    generate_command = f"rnnbptt generate --prefix {shlex.quote(prefix)} --temperature 0.5"
    if args.checkpoint != DEFAULT_CHECKPOINT:
        generate_command += f" --checkpoint {shlex.quote(str(args.checkpoint))}"
    lines = [
        (generate_command, "continue a text of your own with the saved model"),
        ("rnnbptt compare --task recall --lag 20", "the truncation strategies where they differ: table and plots"),
    ]
    if source != TIME_MACHINE_SOURCE:
        lines.append(("rnnbptt train --timemachine", "a whole novel (downloaded once, then cached)"))
    width = max(len(command) for command, _ in lines)
    return "next:\n" + "\n".join(f"  {command.ljust(width)}  # {what}" for command, what in lines)


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        loaded = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise UsageError(_as_flag(str(error), "--checkpoint")) from None
    if loaded.vocab is None:
        raise UsageError(f"argument --checkpoint: {args.checkpoint} has no vocabulary")
    _check_prefix(args.prefix, loaded.vocab)
    print(generate(loaded.model, loaded.vocab, args.prefix, args.length, temperature=args.temperature, seed=args.seed))
    return 0


#: ``rnnbptt compare --plot`` when it is not given (drawn only with matplotlib installed).
DEFAULT_COMPARE_PLOT = "compare.png"

#: compare's defaults on text (``--task text``) for the flags that apply to text only.
COMPARE_TEXT_DEFAULTS = {"hidden": 256, "epochs": 40, "num_steps": 35, "init_std": 0.01, "valid_fraction": 0.1,
                         "batch_size": 32}
#: compare's default on the synthetic tasks.
COMPARE_TASK_DEFAULTS = {"hidden": 64, "lag": 20, "batch_size": 32}
#: compare's arguments that apply to text only, to the synthetic tasks only, to recall only.
_TEXT_ONLY = ("text", "timemachine", "d2l", "max_tokens", "valid_fraction", "epochs", "num_steps", "init_std")
_TASK_ONLY = ("lag", "length", "symbols")
_RECALL_ONLY = ("symbols",)


def _compare_task(args: argparse.Namespace) -> str:
    """``--task``, else text when a text was named (``--text``, ``--timemachine``), else recall;
    a flag of another task (``--symbols`` with adding, say) is a mistake."""
    reads_text = args.text is not None or args.timemachine
    task = args.task or ("text" if reads_text else "recall")
    if task == "text":
        for name in _TASK_ONLY:
            if getattr(args, name) is not None:
                raise UsageError(f"argument {_flag(name)}: expected --task recall or adding, got --task text")
        for name, value in COMPARE_TEXT_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    else:
        for name in _TEXT_ONLY:
            if getattr(args, name) not in (None, False):
                raise UsageError(f"argument {_flag(name)}: applies to --task text, got --task {task}")
        for name in _RECALL_ONLY:
            if task != "recall" and getattr(args, name) is not None:
                raise UsageError(f"argument {_flag(name)}: applies to --task recall, got --task {task}")
        for name, value in COMPARE_TASK_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    return task


def cmd_compare(args: argparse.Namespace) -> int:
    task_name = _compare_task(args)
    asked = args.plot is not None  # an explicit --plot needs matplotlib; the default plot does not
    if not asked:
        args.plot = DEFAULT_COMPARE_PLOT
    _check_plot(args.plot, required=asked)
    if task_name != "text":
        return _compare_on_task(args, task_name)
    strategies = args.strategies or [Truncation.parse(s) for s in ("full", "regular:5", "randomized:0.8")]
    train, valid, vocab, source = _load_corpus(args)
    _check_corpus_length(train, args)
    for strategy in strategies:
        try:
            strategy.check_chunk(args.num_steps, "num_steps")
        except ValueError as error:
            raise UsageError(_as_flag(str(error))) from None
    print(f"comparing {', '.join(map(str, strategies))} on {source}: {len(train):,} tokens, "
          f"{args.epochs if args.steps is None else f'{args.steps} steps of'} "
          f"{'epochs' if args.steps is None else 'chunks'}, seed {args.seed}\n")
    rows, histories = [], {}
    for strategy in strategies:
        model = _build_model(args, vocab)
        trainer = Trainer(
            model, vocab=vocab, optimizer=args.optimizer, lr=_learning_rate(args),
            clip=args.clip if args.clip > 0 else None, truncation=strategy, batch_size=args.batch_size,
            num_steps=args.num_steps, iterator="sequential", seed=args.seed,
        )
        start = time.perf_counter()
        epochs = None if args.steps is not None else args.epochs
        history = trainer.fit(train, epochs, steps=args.steps, valid=valid if len(valid) > 1 else None)
        seconds = time.perf_counter() - start
        histories[str(strategy)] = history
        last = history[-1]
        rows.append([
            str(strategy), f"{last.train_perplexity:.3f}",
            f"{last.valid_perplexity:.3f}" if last.valid_perplexity is not None else "-",
            f"{seconds:.1f}", f"{sum(r.tokens_per_second for r in history) / len(history):,.0f}",
            f"{last.memory_bytes / 2**20:.2f}",
        ])
        print(f"  {strategy}: done in {seconds:.1f} s", flush=True)
    print()
    print(text_table(["strategy", "train ppl", "valid ppl", "time (s)", "tokens/s", "memory (MiB)"], rows))
    print("\nmemory: the bytes of the runner's activations, history and scratch buffers")
    if args.plot:
        try:
            from .plots import plot_gradient_norms, plot_training_curves

            plot_training_curves(histories, args.plot)
            gradient_plot = Path(args.plot).with_name(Path(args.plot).stem + "-gradients.png")
            plot_gradient_norms(gradient_plot)
            print(f"plots written to {args.plot} and {gradient_plot}")
        except ImportError as error:
            print(f"no plot: {error}")
    return 0


def _compare_on_task(args: argparse.Namespace, name: str) -> int:
    from . import compare, tasks

    try:
        task = tasks.make_task(name, args.lag, args.length, 8 if args.symbols is None else args.symbols)
    except ValueError as error:
        raise UsageError(_as_flag(str(error), "--length" if str(error).startswith("length") else None)) from None
    strategies = args.strategies or tasks.default_strategies(task.lag)
    steps = args.steps if args.steps is not None else task.default_steps
    lr = args.lr if args.lr is not None else task.default_lr if args.optimizer == "adam" else DEFAULT_LR["sgd"]
    print(f"comparing {', '.join(map(str, strategies))}\non {compare.describe_task(task)};\n"
          f"{steps} steps of {args.batch_size} fresh sequences, hidden {args.hidden}, {args.optimizer} lr {lr:g}, "
          f"seed {args.seed}\n", flush=True)

    def report(result: tasks.TaskResult) -> None:
        print(f"  {result.truncation}: {task.metric} {result.score:.3f} in {result.seconds:.1f} s", flush=True)

    results = compare.run_comparison(
        task, strategies, on_result=report, hidden_size=args.hidden, steps=steps, batch_size=args.batch_size,
        lr=lr, optimizer=args.optimizer, clip=args.clip if args.clip > 0 else None, seed=args.seed,
        dtype=args.dtype,
    )
    print()
    print(compare.results_table(task, results))
    if args.plot:
        try:
            curves, gradients = compare.write_plots(task, results, args.plot)
            print(f"\nplots written to {curves} (learning curves) and {gradients} (||dL/dh_t|| against t)")
        except ImportError as error:
            print(f"\nno plot: {error}")
    return 0


# ---- parser ---------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--text", type=Path, help="train on this UTF-8 file (default: the built-in corpus)")
    g.add_argument("--timemachine", action="store_true",
                   help="download The Time Machine (d2l's copy, SHA-1 checked, cached)")
    g.add_argument("--timemachine-url", default=data.TIME_MACHINE_URL, help=argparse.SUPPRESS)
    g.add_argument("--d2l", action="store_true",
                   help="d2l's preprocessing: letters and spaces, lower case (28 symbols)")
    g.add_argument("--max-tokens", type=positive_int, help="use only the first N tokens")
    g.add_argument("--valid-fraction", type=fraction, default=0.1, help="held-out share of the text (default 0.1)")


def _add_model_args(p: argparse.ArgumentParser, epochs: int) -> None:
    g = p.add_argument_group("model and optimization")
    g.add_argument("--hidden", type=positive_int, default=256, help="hidden units (default 256)")
    g.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    g.add_argument("--init-std", type=positive_float,
                   help="weights ~ N(0, std^2), biases 0 (d2l uses 0.01); default: every parameter "
                   "~ U(-1/sqrt(hidden), 1/sqrt(hidden)), as PyTorch")
    g.add_argument("--optimizer", choices=["sgd", "adam"], default="adam", help="(default adam)")
    g.add_argument("--lr", type=positive_float, help=f"learning rate (default {DEFAULT_LR['adam']:g} with adam, "
                   f"{DEFAULT_LR['sgd']:g} with sgd as d2l)")
    g.add_argument("--clip", type=clip_threshold, default=1.0,
                   help="gradient-norm threshold theta; 0 disables (default 1)")
    g.add_argument("--batch-size", type=positive_int, default=32)
    g.add_argument("--num-steps", type=positive_int, default=35, help="steps per chunk (default 35)")
    g.add_argument("--epochs", type=positive_int, default=epochs)
    g.add_argument("--steps", type=positive_int, help="train for this many optimizer steps instead of --epochs")
    g.add_argument("--seed", type=seed_int, default=0)


def _at_least_two(text: str) -> int:
    """argparse type: an integer >= 2."""
    value = _integer(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {value}")
    return value


def _set_help(p: argparse.ArgumentParser, dest: str, text: str) -> None:
    for action in p._actions:
        if action.dest == dest:
            action.help = text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnbptt", description="Recurrent networks trained with BPTT.")
    parser.add_argument("--version", action="version", version=f"rnnbptt {_core.__version__}",
                        help="print the version and exit")
    parser.add_argument("--threads", type=positive_int,
                        help="threads for the C++ core (default: OMP_NUM_THREADS or all cores)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="a forward/backward pass and a finite-difference check, as tables")
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("gradcheck", help="compare BPTT gradients with finite differences")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
    p.add_argument("--dense", action="store_true", help="dense input instead of token ids")
    p.add_argument("--num-steps", type=positive_int, default=20, help="sequence length T (default 20)")
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--hidden", type=positive_int, default=16)
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_gradcheck)

    p = sub.add_parser("train", help="train a character-level language model")
    _add_data_args(p)
    _add_model_args(p, epochs=DEFAULT_EPOCHS)
    g = p.add_argument_group("training")
    g.add_argument("--truncation", type=_truncation, default=Truncation.full(),
                   help="full | regular:K[,K2] | randomized:PI[,PI...][,seed=S] (default full)")
    g.add_argument("--iterator", choices=["sequential", "random"], default="sequential")
    g.add_argument("--lr-schedule", choices=["constant", "cosine"], default="cosine",
                   help="cosine: from --lr down to a tenth of it over the run (default cosine)")
    g.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"where to save (default {DEFAULT_CHECKPOINT})")
    g.add_argument("--checkpoint-every", type=positive_int, default=10, help="epochs between checkpoints (default 10)")
    g.add_argument("--checkpoint-every-steps", type=positive_int,
                   help="also write the checkpoint every N optimizer steps (mid-epoch checkpoints resume exactly)")
    g.add_argument("--resume", help="continue from this checkpoint (the remaining epochs up to --epochs)")
    g.add_argument("--log", help="epoch records as JSON lines (.jsonl) or CSV (.csv)")
    g.add_argument("--progress", action="store_true", help="progress bar (tqdm, from the 'progress' extra)")
    g.add_argument("--plot", help="write the training curve to this image file (needs the 'plot' extra)")
    g = p.add_argument_group("the final samples")
    g.add_argument("--prefix", help=f"prefix of the final samples (default: {BUILT_IN_PREFIX!r} on the built-in "
                   "corpus, else the start of the text)")
    g.add_argument("--sample-length", type=nonnegative_int, default=200)
    g.add_argument("--temperature", type=nonnegative_float, default=DEFAULT_TEMPERATURE,
                   help=f"after the greedy sample, one drawn at this temperature with --seed; 0 for none "
                   f"(default {DEFAULT_TEMPERATURE:g})")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("generate", help="continue a prefix with a trained model")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--prefix", required=True)
    p.add_argument("--length", type=nonnegative_int, default=200)
    p.add_argument("--temperature", type=nonnegative_float, default=0.0, help="0 is greedy (default)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser(
        "compare", help="the truncation strategies side by side on the same data and seed",
        description="Train one model per truncation strategy on the same data from the same seed, then print a "
        "table and write plots. The synthetic tasks (recall, adding) have a dependency of --lag steps, which only a "
        "strategy whose gradient reaches that far back can learn; --task text compares them on a text.",
    )
    g = p.add_argument_group("task")
    g.add_argument("--task", choices=["recall", "adding", "text"],
                   help="delayed recall, the adding problem, or a text (default recall; text with --text or "
                   "--timemachine)")
    g.add_argument("--lag", type=positive_int,
                   help=f"dependency length of recall and adding (default {COMPARE_TASK_DEFAULTS['lag']})")
    g.add_argument("--length", type=positive_int, help="steps per sequence of recall and adding (default 4 x lag)")
    g.add_argument("--symbols", type=_at_least_two, help="alphabet size of recall (default 8)")
    _add_data_args(p)
    _add_model_args(p, epochs=40)
    p.set_defaults(**{name: None for name in COMPARE_TEXT_DEFAULTS})
    _set_help(p, "hidden", f"hidden units (default {COMPARE_TASK_DEFAULTS['hidden']} on the tasks, "
              f"{COMPARE_TEXT_DEFAULTS['hidden']} on text)")
    _set_help(p, "epochs", f"epochs on text (default {COMPARE_TEXT_DEFAULTS['epochs']})")
    _set_help(p, "init_std", "weights ~ N(0, std^2), biases 0 (default on text 0.01, as d2l; the tasks use "
              "PyTorch's uniform initialization and an orthogonal W_hh)")
    _set_help(p, "steps", "optimizer steps (default on text: --epochs; recall 800, adding 3000)")
    _set_help(p, "lr", f"learning rate (default with adam: recall 0.003, adding 0.001, text {DEFAULT_LR['adam']:g}; "
              f"with sgd {DEFAULT_LR['sgd']:g})")
    p.add_argument("--strategies", nargs="+", type=_truncation,
                   help="truncations to compare, as for train --truncation (default on the tasks: full "
                   "regular:LAG/2 regular:2xLAG randomized:0.9; on text: full regular:5 randomized:0.8)")
    p.add_argument("--plot",
                   help=f"learning curves, and ||dL/dh_t|| in NAME-gradients.png (default {DEFAULT_COMPARE_PLOT}, "
                   "written when the 'plot' extra is installed); '' for none")
    p.set_defaults(run=cmd_compare)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (2 for a mistake, reported on one line)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # argparse has printed the help, or its one-line error
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        return int(args.run(args))
    except UsageError as error:
        message = str(error)
    except MemoryError as error:
        message = f"out of memory ({error or 'MemoryError'}); try a smaller --hidden or --batch-size"
    except (FloatingPointError, OverflowError) as error:  # non-finite gradients, perplexity overflow
        message = f"training diverged ({error}); try a smaller --lr or a --clip threshold"
    except (ValueError, TypeError, OSError, ImportError) as error:  # CheckpointError, FileNotFoundError
        message = _as_flag(str(error))
    except distributed.CollectiveError as error:  # with MPI: a failed checkpoint write, say
        message = str(error)
    if distributed.launched_rank() == 0:  # with MPI every rank has the same error: rank 0 reports
        print(f"{parser.prog} {args.command}: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
