"""Thread control, and results pinned to the single-threaded ones: the stated tolerance is 0
(bit-identical), because every reduction and product runs in an order that does not depend on
the thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnbptt as rb

from conftest import DEEP_PRODUCTS, make_problem

# Large steps split each step into row bands (at least 16 sequences per thread) or column bands
# (cpp/src/kernels/recurrence.hpp): n = 33 gives row bands of 16 and 17 rows at 2 threads and column bands
# at 3; n = 50 gives row bands of 16, 17 and 17 rows at 3 threads (h = 70 in float with AVX2:
# two panels of 24 columns, a block of 2 packets, then 6 single columns). Small steps
# (n h^2 <= 2^20) with two or more threads run the recurrence on one thread and the batched
# products overlapped with it, chunk by chunk (cpp/src/kernels/overlap.hpp): T n = 3,200 rows make two chunks
# of 2,048.
# Deep products (DEEP_PRODUCTS in conftest.py) share each thread's packed operands between its
# tiles (cpp/src/kernels/gemm.hpp).
SHAPES = {
    "large_steps": dict(T=45, n=33, d=70, h=300, q=70),
    "row_bands": dict(T=20, n=50, d=30, h=70, q=30),
    "small_steps": dict(T=100, n=32, d=40, h=96, q=40),
    "deep_products": DEEP_PRODUCTS,
}


@pytest.mark.parametrize("truncation", [rb.Full(), rb.Regular(7, 16), rb.Randomized(0.8, seed=2)])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_threaded_equals_single_threaded(restore_threads, truncation, tokens, shape):
    results = []
    for threads in (1, 2, 3):
        rb.set_num_threads(threads)
        p = make_problem(**SHAPES[shape], tokens=tokens, dtype=np.float32, seed=5)
        outputs, h_T = p.model.forward(p.x, p.h0)
        loss = p.model.loss(p.targets)
        record = not truncation.k2 > truncation.k1  # per-step norms exist for one-pass strategies
        g = p.model.backward(truncation=truncation, dx=not tokens, record_dh_norms=record)
        norms = p.model.dh_norms if record else None
        results.append((outputs, h_T, loss, p.model.grads.copy(), g.dh0, g.dx, norms))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert (a is None and b is None) or np.array_equal(a, b)


def test_set_and_get(restore_threads):
    rb.set_num_threads(3)
    assert rb.get_num_threads() == 3
    with pytest.raises(ValueError, match="threads: expected an integer >= 1, got 0"):
        rb.set_num_threads(0)


@pytest.mark.parametrize(
    "value,message",
    [
        (True, r"threads: expected an integer, got True \(bool\)"),
        (np.True_, r"threads: expected an integer, got (np\.)?True_? \(bool_?\)"),
        (2.0, r"threads: expected an integer, got 2\.0 \(float\)"),
        ("2", r"threads: expected an integer, got '2' \(str\)"),
        (None, r"threads: expected an integer, got None \(NoneType\)"),
    ],
)
def test_set_num_threads_refuses_what_is_not_an_integer(restore_threads, value, message):
    """As every integer argument (rnnbptt._checks.check_integer): a bool is not a thread count."""
    rb.set_num_threads(3)
    with pytest.raises(TypeError, match=message):
        rb.set_num_threads(value)
    assert rb.get_num_threads() == 3  # unchanged
    rb.set_num_threads(np.int64(2))  # NumPy integers are integers
    assert rb.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"threads: expected an integer >= 1 and < 2\*\*31, got 2147483648"):
        rb.set_num_threads(2**31)


def test_omp_num_threads_is_respected():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import rnnbptt; print(rnnbptt.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
