"""The one place the Python layer picks a compiled class by dtype.

The core binds each class once per scalar type (``ModelFloat32``, ``ModelFloat64``, ...);
functions over flat buffers (clipping, ``sgd_step``) take either dtype and dispatch in C++.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core

_SUFFIXES = {np.dtype(np.float32): "Float32", np.dtype(np.float64): "Float64"}


def check_dtype(dtype: npt.DTypeLike) -> np.dtype:
    """``dtype`` as a NumPy dtype, if it is float32 or float64; TypeError otherwise."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from error
    if resolved not in _SUFFIXES:
        raise TypeError(f"dtype: expected float32 or float64, got {resolved}")
    return resolved


def core_class(family: str, dtype: npt.DTypeLike) -> Any:
    """The compiled class of ``family`` ("Model", "Stream", "Adam") for ``dtype``."""
    return getattr(_core, family + _SUFFIXES[check_dtype(dtype)])
