"""The command line's vocabulary: defaults, argument types, the one-line usage error and
the mapping from argument names to flags."""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, Optional

from .. import distributed
from ..truncation import Truncation

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


def document_separator(text: str) -> str:
    """argparse type: a line that separates documents (non-empty, one line)."""
    if not text or "\n" in text or "\r" in text:
        raise argparse.ArgumentTypeError(f"expected a non-empty line, got {text!r}")
    return text


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


def describe_cells(cell: str, layers: int, hidden: int) -> str:
    """``"hidden 256"`` for one Elman layer, else ``"gru, hidden 256"`` or ``"2-layer lstm, hidden 256"``."""
    if cell == "elman" and layers == 1:
        return f"hidden {hidden}"
    return f"{f'{layers}-layer ' if layers > 1 else ''}{cell}, hidden {hidden}"


def _truncation(spec: str) -> Truncation:
    """argparse type: the string form of a truncation, parsed here at the edge."""
    try:
        return Truncation.parse(spec)
    except ValueError as error:
        message = str(error)
        raise argparse.ArgumentTypeError(message.removeprefix("truncation: ")) from None


#: Python argument names in error messages whose flag's destination has another name.
_DEST_OF_NAME = {"hidden_size": "hidden", "num_layers": "layers", "model": "checkpoint"}


def _option_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every option of ``parser`` and of its subcommands (not positionals, not --help)."""
    parsers = [parser]
    while parsers:
        current = parsers.pop(0)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                yield action


@functools.cache
def _flags() -> dict[str, str]:
    """Every option's destination (``args.num_steps``) -> its flag (``--num-steps``), read from
    the parser's actions, its subcommands' included."""
    from . import build_parser  # the parser imports the commands, which import this module

    flags: dict[str, str] = {}
    for action in _option_actions(build_parser()):
        flags.setdefault(action.dest, max(action.option_strings, key=len))
    return flags


def given_options(argv: Sequence[str]) -> set[str]:
    """The destinations of the options written in ``argv`` (a command line that parses), so that
    a flag given can be told from its default: ``argv`` parsed again by a parser whose options
    have no defaults, so argparse's own rules (abbreviations, ``--flag=value``) decide."""
    from . import build_parser

    parser = build_parser()
    for action in _option_actions(parser):
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(list(argv))))


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




@contextlib.contextmanager
def aborting_on_one_rank(trainer: Any, comm: object) -> Iterator[None]:
    """Around ``train``'s ``fit``: with MPI, an error that only this process raises (the others
    wait in an allreduce) is printed as one line naming the rank and ends the whole job (exit
    2); errors that every rank raises pass through as they are."""
    try:
        yield
    except Exception as error:
        collective = (FloatingPointError, OverflowError, distributed.CollectiveError)  # raised on every rank
        if comm is not None and not isinstance(error, collective):
            text = _one_line(str(error)) or repr(error)
            print(f"rnnbptt train: error on rank {trainer.comm.Get_rank()}: {text}", file=sys.stderr, flush=True)
            trainer.comm.Abort(2)
        raise
