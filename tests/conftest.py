"""Shared helpers: random problems and comparisons against independent oracles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

import rnnbptt as rb


@dataclass
class Problem:
    """A model and a batch, with everything the oracles need as float64 copies."""

    model: rb.RNN
    x: np.ndarray
    targets: np.ndarray
    weights: Optional[np.ndarray]
    h0: Optional[np.ndarray]

    def params64(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float64) for k, v in self.model.named_parameters().items()}


def make_problem(
    *,
    T: int = 9,
    n: int = 3,
    d: int = 5,
    h: int = 6,
    q: int = 4,
    activation: str = "tanh",
    bias: bool = True,
    tokens: bool = True,
    loss: str = "cross_entropy",
    masked: bool = False,
    with_h0: bool = True,
    dtype=np.float64,
    seed: int = 0,
    scale: float = 0.5,
) -> Problem:
    rng = np.random.default_rng(seed)
    model = rb.RNN(d, h, q, activation=activation, bias=bias, dtype=dtype, seed=seed)
    model.params[:] = rng.uniform(-scale, scale, model.num_parameters).astype(dtype)
    x = rng.integers(0, d, (T, n)) if tokens else rng.standard_normal((T, n, d)).astype(dtype)
    if loss == "cross_entropy":
        targets = rng.integers(0, q, (T, n))
    else:
        targets = rng.standard_normal((T, n, q)).astype(dtype)
    weights = None
    if masked:
        weights = rng.uniform(0.2, 2.0, (T, n)).astype(dtype)
        weights[rng.random((T, n)) < 0.3] = 0.0  # masked-out positions
        weights[0, 0] = 1.0
    h0 = rng.standard_normal((n, h)).astype(dtype) if with_h0 else None
    return Problem(model, x, targets, weights, h0)


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max |e| (absolute when e is all zeros)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected).max(initial=0.0)
    diff = np.abs(actual - expected).max(initial=0.0)
    return float(diff / scale) if scale > 0 else float(diff)


def model_grads(model: rb.RNN) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.named_gradients().items()}


# Products summed over T n = 2,240 >= 2,048 rows share each thread's packed operands between its
# tiles (cpp/src/kernels/gemm.hpp): dW_hh in 2 x 2 tiles, dW_qh in 3 x 2 (2 threads take 3 tiles each,
# across two tile rows), dW_hx (dense input) in 2 x 2. Small weights (||W_hh|| about 0.73):
# with the default scale, 70 steps of h = 256 are chaotic, and rounding differences grow to
# O(1), in the NumPy reference as much as here.
DEEP_PRODUCTS = dict(T=70, n=32, d=260, h=256, q=520, scale=0.04)


@pytest.fixture
def restore_threads():
    """Gives back the library's thread count after a test that sets it."""
    previous = rb.get_num_threads()
    yield
    rb.set_num_threads(previous)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def torch_modules(torch, model: rb.RNN, nonlinearity: str = "tanh"):
    """nn.RNN + nn.Linear holding the model's weights, copied by hand (independent of
    rnnbptt.torch_interop): b_h goes to bias_ih, bias_hh is zero."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    rnn = torch.nn.RNN(model.input_size, model.hidden_size, nonlinearity=nonlinearity, bias=model.bias, dtype=dtype)
    linear = torch.nn.Linear(model.hidden_size, model.output_size, bias=model.bias, dtype=dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(model.W_hx.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(model.W_hh.copy()))
        linear.weight.copy_(torch.from_numpy(model.W_qh.copy()))
        if model.bias:
            rnn.bias_ih_l0.copy_(torch.from_numpy(model.param("b_h").copy()))
            rnn.bias_hh_l0.zero_()
            linear.bias.copy_(torch.from_numpy(model.param("b_q").copy()))
    return rnn, linear


#: Every environment variable through which a launcher describes a job (rnnbptt.distributed
#: reads some of them), cleared by tests that set their own.
LAUNCH_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK", "MV2_COMM_WORLD_SIZE",
                    "MV2_COMM_WORLD_RANK", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_STEP_ID",
                    "SLURM_STEPID", "SLURM_JOB_ID")


class FakeWorld:
    def __init__(self, size: int) -> None:
        self.size = size

    def Get_size(self) -> int:
        return self.size


class FakeMPI:
    """An mpi4py.MPI whose world has ``size`` processes: the pytest process never initializes
    MPI itself (tests/test_mpi.py says why)."""

    def __init__(self, size: int) -> None:
        self.COMM_WORLD = FakeWorld(size)

    @staticmethod
    def Get_library_version() -> str:
        return "Fake MPI 1.0, for tests\nmore lines\n"
