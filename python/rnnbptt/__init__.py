"""rnnbptt: recurrent networks trained with exact, truncated and randomized BPTT.

The compiled core (``rnnbptt._core``, C++/Eigen) runs the forward pass, the backward
recursion, clipping and optimizer updates on flat buffers that NumPy sees without copies.
"""

from __future__ import annotations

from . import _core, gradcheck, reference
from ._checks import check_integer
from .bias import TruncationBias, truncation_bias
from .checkpoint import Checkpoint, CheckpointError
from .clip import ClipReport, NonFiniteError, clip_grad_norm, clip_grad_value, global_norm
from .data import Vocab
from .diagnostics import largest_singular_value, spectral_radius
from .generate import generate
from .model import CELLS, PARAMETER_NAMES, RNN, Gradients
from .optim import SGD, Adam
from .stream import StreamRunner
from .trainer import EpochRecord, Trainer, TrainerSettings
from .truncation import Full, Randomized, Regular, Truncation

__version__: str = _core.__version__


def set_num_threads(threads: int) -> None:
    """Threads for the core's OpenMP loops and its own tiled matrix products (Eigen itself
    runs single-threaded inside them); default ``OMP_NUM_THREADS``, else all cores. Results
    are bit-identical for any thread count.

    Parameters
    ----------
    threads : int
        At least 1 (and below 2**31): a Python or NumPy integer, never a bool, float or
        string (TypeError).
    """
    threads = check_integer(threads, "threads", minimum=1)
    if threads >= 2**31:
        raise ValueError(f"threads: expected an integer >= 1 and < 2**31, got {threads}")
    _core.set_num_threads(threads)


def get_num_threads() -> int:
    """Threads the core uses."""
    return int(_core.get_num_threads())


def build_info() -> dict[str, object]:
    """How the core was compiled: the variant loaded (``"avx512"``, ``"avx2"``,
    ``"baseline"`` or ``"native"``), OpenMP, and the SIMD instruction sets it uses."""
    return {
        "version": __version__,
        "isa": str(_core.isa),
        "openmp": bool(_core.has_openmp()),
        "simd": str(_core.simd_instruction_sets()),
    }


__all__ = [
    "CELLS",
    "PARAMETER_NAMES",
    "SGD",
    "Adam",
    "Checkpoint",
    "CheckpointError",
    "EpochRecord",
    "Trainer",
    "TrainerSettings",
    "Vocab",
    "generate",
    "RNN",
    "ClipReport",
    "Full",
    "Gradients",
    "NonFiniteError",
    "Randomized",
    "Regular",
    "StreamRunner",
    "Truncation",
    "TruncationBias",
    "__version__",
    "build_info",
    "truncation_bias",
    "clip_grad_norm",
    "clip_grad_value",
    "get_num_threads",
    "global_norm",
    "gradcheck",
    "largest_singular_value",
    "reference",
    "set_num_threads",
    "spectral_radius",
]
