"""Command line: ``rnnbptt {demo,train,generate,compare,gradcheck}`` (also ``python -m rnnbptt``).

The package: ``arguments`` (defaults, argument types, errors), ``train`` (demo, gradcheck,
train, generate), ``compare``, and here the parser and ``main``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .. import _core, data, distributed, set_num_threads
from ..model import ACTIVATIONS, CELLS
from ..truncation import Truncation
from .arguments import (
    DEFAULT_CHECKPOINT,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_TEMPERATURE,
    UsageError,
    _as_flag,
    _integer,
    _one_line,
    _Parser,
    _truncation,
    clip_threshold,
    document_separator,
    fraction,
    given_options,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seed_int,
)
from .compare import (
    COMPARE_TASK_DEFAULTS,
    COMPARE_TEXT_DEFAULTS,
    DEFAULT_COMPARE_PLOT,
    cmd_compare,
)
from .train import (
    BUILT_IN_PREFIX,
    cmd_demo,
    cmd_generate,
    cmd_gradcheck,
    cmd_train,
    unigram_perplexity,
)

__all__ = ["UsageError", "build_parser", "main", "unigram_perplexity"]


# ---- parser ---------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("data")
    g.add_argument("--text", type=Path, help="train on this UTF-8 file (default: the built-in corpus)")
    g.add_argument("--timemachine", action="store_true",
                   help="download The Time Machine (d2l's copy, SHA-1 checked, cached)")
    g.add_argument("--timemachine-url", default=data.TIME_MACHINE_URL, help=argparse.SUPPRESS)
    g.add_argument("--d2l", action="store_true",
                   help="d2l's preprocessing: letters and spaces, lower case (28 symbols)")
    g.add_argument("--max-tokens", type=positive_int, help="use only the first N tokens")
    g.add_argument("--valid-fraction", type=fraction, default=0.1, help="held-out share of the text (default 0.1)")
    return g


def _add_model_args(p: argparse.ArgumentParser, epochs: int) -> None:
    g = p.add_argument_group("model and optimization")
    g.add_argument("--cell", choices=CELLS, default="elman", help="the recurrent cell (default elman)")
    g.add_argument("--layers", type=positive_int, default=1, help="stacked layers (default 1)")
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

    p = sub.add_parser("train", help="train a character-level language model (or a regression with --data)")
    g = _add_data_args(p)
    g.add_argument(
        "--data", type=Path, metavar="FILE.npz",
        help="a dense series instead of text: arrays 'inputs' (steps, d) and 'targets' (steps, q), optionally "
        "'valid_inputs' and 'valid_targets' (else the last --valid-fraction is held out); squared error, "
        "reported as 0.5*MSE")
    g.add_argument(
        "--documents", nargs="?", const=data.DOCUMENT_SEPARATOR, type=document_separator, metavar="SEPARATOR",
        help="the text is documents: the state starts again with each, no gradient crosses between them, and "
        "whole documents are held out. The built-in corpus's documents are its essays; a --text file's are "
        f"separated by lines holding only SEPARATOR (default {data.DOCUMENT_SEPARATOR})")
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
    g.add_argument("--resume", metavar="FILE",
                   help="continue the run of this checkpoint: on the text it recorded, up to its planned epochs "
                   "(or --epochs in all, or --more-epochs N more), writing to FILE unless --checkpoint says otherwise")
    g.add_argument("--more-epochs", type=positive_int, metavar="N",
                   help="with --resume: train N epochs more than the checkpoint has")
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
    p.set_defaults(**{name: None for name in COMPARE_TEXT_DEFAULTS}, documents=None)  # train's --documents only
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
    p.add_argument("--bias", action="store_true",
                   help="also measure each strategy's gradient bias against the Full gradient, on one held-out "
                   "batch (on text: the first batch), at the start and once trained")
    p.add_argument("--bias-draws", type=_at_least_two,
                   help="draws of each randomized strategy for --bias (default 32)")
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
    args.given = given_options(sys.argv[1:] if argv is None else argv)
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        return int(args.run(args))
    except UsageError as error:
        message = str(error)
    except BrokenPipeError:
        # The reader went away (`rnnbptt train | head`): stop quietly, as a program killed by
        # SIGPIPE does, with no error and no traceback when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # the shell's status for SIGPIPE
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
