"""Argument checks for the public Python entries: one place, one wording.

Integers are integers (``operator.index``: Python and NumPy integers; floats, strings and
bools are refused with TypeError), real numbers are real numbers, flags are bools. Every
message names the argument, what was expected and what was received.
"""

from __future__ import annotations

import math
import operator
from numbers import Real
from typing import Any, Optional

import numpy as np


def shown(value: object) -> str:
    """``value`` for an error message: strings quoted, NumPy scalars as plain numbers."""
    return repr(value) if isinstance(value, (str, bytes)) else str(value)


def check_integer(value: Any, name: str, minimum: Optional[int] = None, below: Optional[int] = None) -> int:
    """``value`` as a Python int: ints and NumPy integers, never floats, strings or bools
    (TypeError); ValueError outside ``[minimum, below)``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {value!r} (bool)")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {shown(value)} ({type(value).__name__})") from None
    if below is not None and minimum is not None and not minimum <= number < below:
        raise ValueError(f"{name}: expected an integer in [{minimum}, {_power_of_two(below)}), got {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {number}")
    return number


def _power_of_two(value: int) -> str:
    return f"2**{value.bit_length() - 1}" if value > 1024 and value & (value - 1) == 0 else str(value)


def check_real(
    value: Any, name: str, *, positive: bool = False, nonnegative: bool = False, finite: bool = True
) -> float:
    """``value`` as a Python float: real numbers only (TypeError for strings, bools, None);
    ValueError unless finite (and > 0 or >= 0 when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {shown(value)} ({type(value).__name__})")
    number = float(value)
    if finite and not math.isfinite(number) or positive and not number > 0 or nonnegative and not number >= 0:
        bound = " > 0" if positive else " >= 0" if nonnegative else ""
        raise ValueError(f"{name}: expected {'a finite value' if finite else 'a value'}{bound}, got {shown(value)}")
    return number


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool: True or False (NumPy's too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {shown(value)} ({type(value).__name__})")
    return bool(value)


def check_utf8(text: str, name: str) -> None:
    """ValueError unless UTF-8 can encode ``text``: a Python string may hold lone surrogates
    (U+D800 to U+DFFF, from ``"\\ud800"`` or from bytes that were not UTF-8, decoded with
    ``surrogateescape``), which no UTF-8 file or checkpoint can store. The message names the
    index of the first one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name}: expected text that UTF-8 can encode, got the lone surrogate "
            f"U+{ord(text[error.start]):04X} at index {error.start}"
        ) from None


def as_lengths(value: Any) -> np.ndarray:
    """Sequence lengths (``lengths=``) as a C-contiguous int64 array: a list or any integer
    array (n values, converted); floats, bools and strings are refused (TypeError). Their
    shape and range are checked where they are used."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers (one per sequence), got {array.dtype} values")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"lengths: expected values in [0, T], got {int(array.max())}")
    return np.ascontiguousarray(array, dtype=np.int64)
