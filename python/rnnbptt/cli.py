"""Command line: ``rnnbptt {demo,train,generate,compare,gradcheck}`` (also ``python -m rnnbptt``)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, Optional

import numpy as np

from . import build_info, data, gradcheck, reference, set_num_threads
from .checkpoint import CheckpointError
from .checkpoint import load as load_checkpoint
from .generate import generate
from .model import RNN
from .trainer import EpochRecord, Trainer
from .truncation import Truncation

DEFAULT_CHECKPOINT = "rnnbptt-checkpoint.safetensors"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- argument types and errors ------------------------------------------------------------
class UsageError(Exception):
    """A mistake on the command line, reported as one line naming the flag (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line, ``rnnbptt train: error: argument --epochs:
    ...``, without the usage block (``--help`` still shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


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


#: Python argument names in error messages -> the flags that set them.
_FLAGS = {
    "batch_size": "--batch-size", "checkpoint": "--checkpoint", "checkpoint_every": "--checkpoint-every",
    "checkpoint_every_steps": "--checkpoint-every-steps",
    "clip": "--clip", "dtype": "--dtype", "epochs": "--epochs", "hidden_size": "--hidden",
    "init_std": "--init-std", "length": "--length", "lr": "--lr", "model": "--checkpoint", "num_steps": "--num-steps",
    "prefix": "--prefix", "seed": "--seed", "steps": "--steps", "temperature": "--temperature",
    "text": "--text", "threads": "--threads", "truncation": "--truncation", "valid_fraction": "--valid-fraction",
}


def _as_flag(message: str, flag: Optional[str] = None) -> str:
    """``"num_steps: expected ..."`` as ``"argument --num-steps: expected ..."``; with ``flag``,
    any leading ``name:`` gives way to that flag."""
    name, sep, rest = message.partition(": ")
    if sep and " " not in name and (flag is not None or name in _FLAGS):
        return f"argument {flag or _FLAGS[name]}: {rest}"
    return f"argument {flag}: {message}" if flag is not None else message


def _check_prefix(prefix: Optional[str], vocab: data.Vocab) -> None:
    if prefix is None:
        return
    if not prefix:
        raise UsageError("argument --prefix: expected at least one character, got an empty string")
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
    table = _table(headers, rows)
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
            text, source = data.time_machine(args.timemachine_url), "The Time Machine"
        except (OSError, ValueError) as error:
            raise UsageError(f"argument --timemachine: could not get The Time Machine ({error})") from None
    else:
        text, source = data.default_corpus(), "the built-in corpus"
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


def _resume(args: argparse.Namespace) -> Trainer:
    try:
        trainer = Trainer.resume(args.resume, log=args.log, progress=args.progress)
    except (ValueError, TypeError) as error:  # CheckpointError included (no trainer state, say)
        raise UsageError(_as_flag(str(error), "--resume")) from None
    if trainer.vocab is None:
        raise UsageError(f"argument --resume: {args.resume} has no vocabulary to encode text with")
    return trainer


def cmd_train(args: argparse.Namespace) -> int:
    if args.log is not None and not Path(args.log).parent.is_dir():
        raise UsageError(f"argument --log: no such directory: {Path(args.log).parent}")
    if Path(args.checkpoint).is_dir():
        raise UsageError(f"argument --checkpoint: expected a file name, got the directory {args.checkpoint}")
    if args.resume:
        trainer = _resume(args)
        train, valid, vocab, source = _load_corpus(args, trainer.vocab)
        args.batch_size, args.num_steps = trainer.batch_size, trainer.num_steps
        _check_prefix(args.prefix, vocab)
        _check_corpus_length(train, args)
        print(f"resuming {args.resume} at epoch {trainer.epoch}")
    else:
        train, valid, vocab, source = _load_corpus(args)
        _check_prefix(args.prefix, vocab)
        _check_corpus_length(train, args)
        model = _build_model(args, vocab)
        try:
            trainer = Trainer(
                model, vocab=vocab, optimizer=args.optimizer, lr=args.lr, lr_schedule=args.lr_schedule,
                clip=args.clip if args.clip > 0 else None, truncation=args.truncation,
                batch_size=args.batch_size, num_steps=args.num_steps, iterator=args.iterator,
                seed=args.seed, log=args.log, progress=args.progress,
            )
        except MemoryError as error:
            raise UsageError(
                f"argument --hidden: not enough memory to train {args.hidden} hidden units ({error})"
            ) from None
    print(f"training on {source}: {len(train):,} tokens ({len(valid):,} held out), "
          f"{len(vocab)} symbols, hidden {trainer.model.hidden_size}, truncation {trainer.truncation}, "
          f"{trainer.iterator} batches of {trainer.batch_size} x {trainer.num_steps}")
    epochs = None if args.steps is not None else args.epochs
    trainer.fit(train, epochs, steps=args.steps, valid=valid if len(valid) > 1 else None,
                checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                checkpoint_every_steps=args.checkpoint_every_steps,
                on_epoch=lambda r: _print_epoch(r, max(1, trainer.epochs_planned // 10), trainer.epochs_planned))
    last = trainer.history[-1]
    valid_text = f", valid ppl {last.valid_perplexity:.3f}" if last.valid_perplexity is not None else ""
    print(f"done: epoch {last.epoch}, step {last.step}, train ppl {last.train_perplexity:.3f}{valid_text}")
    print(f"checkpoint written to {args.checkpoint}")
    prefix = args.prefix if args.prefix is not None else data.Vocab.decode(vocab, train[:10])
    sample = generate(trainer.model, vocab, prefix, args.sample_length, temperature=args.temperature, seed=args.seed)
    print(f"sample ({'greedy' if args.temperature == 0 else f'temperature {args.temperature}'}):\n{sample}")
    return 0


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


def cmd_compare(args: argparse.Namespace) -> int:
    train, valid, vocab, source = _load_corpus(args)
    _check_corpus_length(train, args)
    print(f"comparing {', '.join(map(str, args.strategies))} on {source}: {len(train):,} tokens, "
          f"{args.epochs} epochs, seed {args.seed}\n")
    rows, histories = [], {}
    for strategy in args.strategies:
        model = _build_model(args, vocab)
        trainer = Trainer(
            model, vocab=vocab, optimizer=args.optimizer, lr=args.lr, clip=args.clip if args.clip > 0 else None,
            truncation=strategy, batch_size=args.batch_size, num_steps=args.num_steps,
            iterator="sequential", seed=args.seed,
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
    print(_table(["strategy", "train ppl", "valid ppl", "time (s)", "tokens/s", "memory (MiB)"], rows))
    print("\nmemory: the bytes of the runner's activations, history and scratch buffers")
    if args.plot:
        try:
            from .plots import plot_gradient_norms, plot_training_curves
        except ImportError as error:  # pragma: no cover - plots imports lazily
            print(f"no plot: {error}")
            return 0
        try:
            plot_training_curves(histories, args.plot)
            gradient_plot = Path(args.plot).with_name(Path(args.plot).stem + "-gradients.png")
            plot_gradient_norms(gradient_plot)
            print(f"plots written to {args.plot} and {gradient_plot}")
        except ImportError as error:
            print(f"no plot: {error}")
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
    g.add_argument("--init-std", type=positive_float, default=0.01, help="weights ~ N(0, std^2) (default 0.01, as d2l)")
    g.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    g.add_argument("--lr", type=positive_float, default=1.0, help="learning rate (default 1, as d2l with SGD)")
    g.add_argument("--clip", type=clip_threshold, default=1.0,
                   help="gradient-norm threshold theta; 0 disables (default 1)")
    g.add_argument("--batch-size", type=positive_int, default=32)
    g.add_argument("--num-steps", type=positive_int, default=35, help="steps per chunk (default 35)")
    g.add_argument("--epochs", type=positive_int, default=epochs)
    g.add_argument("--steps", type=positive_int, help="train for this many optimizer steps instead of --epochs")
    g.add_argument("--seed", type=seed_int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnbptt", description="Recurrent networks trained with BPTT.")
    parser.add_argument("--threads", type=positive_int,
                        help="threads for the C++ core (default: OMP_NUM_THREADS or all cores)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="a forward/backward pass and a finite-difference check, as tables")
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("gradcheck", help="compare BPTT gradients with finite differences")
    p.add_argument("--activation", choices=["tanh", "relu", "identity"], default="tanh")
    p.add_argument("--dense", action="store_true", help="dense input instead of token ids")
    p.add_argument("--num-steps", type=positive_int, default=20, help="sequence length T (default 20)")
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--hidden", type=positive_int, default=16)
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_gradcheck)

    p = sub.add_parser("train", help="train a character-level language model")
    _add_data_args(p)
    _add_model_args(p, epochs=150)
    g = p.add_argument_group("training")
    g.add_argument("--truncation", type=_truncation, default=Truncation.full(),
                   help="full | regular:K[,K2] | randomized:PI[,PI...][,seed=S] (default full)")
    g.add_argument("--iterator", choices=["sequential", "random"], default="sequential")
    g.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    g.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"where to save (default {DEFAULT_CHECKPOINT})")
    g.add_argument("--checkpoint-every", type=positive_int, default=10, help="epochs between checkpoints (default 10)")
    g.add_argument("--checkpoint-every-steps", type=positive_int,
                   help="also write the checkpoint every N optimizer steps (mid-epoch checkpoints resume exactly)")
    g.add_argument("--resume", help="continue from this checkpoint (the remaining epochs up to --epochs)")
    g.add_argument("--log", help="epoch records as JSON lines (.jsonl) or CSV (.csv)")
    g.add_argument("--progress", action="store_true", help="progress bar (tqdm, from the 'progress' extra)")
    g.add_argument("--prefix", help="prefix of the final sample (default: the start of the text)")
    g.add_argument("--sample-length", type=nonnegative_int, default=200)
    g.add_argument("--temperature", type=nonnegative_float, default=0.0, help="0 is greedy (default)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("generate", help="continue a prefix with a trained model")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--prefix", required=True)
    p.add_argument("--length", type=nonnegative_int, default=200)
    p.add_argument("--temperature", type=nonnegative_float, default=0.0, help="0 is greedy (default)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("compare", help="the three truncation strategies side by side on the same data and seed")
    _add_data_args(p)
    _add_model_args(p, epochs=40)
    p.add_argument("--strategies", nargs="+", type=_truncation,
                   default=[Truncation.parse(s) for s in ("full", "regular:5", "randomized:0.8")],
                   help="truncations to compare, as for train --truncation (default full regular:5 randomized:0.8)")
    p.add_argument("--plot", default="compare.png", help="training-curve plot (needs the 'plot' extra); '' for none")
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
    print(f"{parser.prog} {args.command}: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
