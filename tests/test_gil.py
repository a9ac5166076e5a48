"""The GIL is released while C++ runs, and one model refuses concurrent use."""

from __future__ import annotations

import threading
import time

import numpy as np

import rnnbptt as rb


def long_problem():
    m = rb.RNN(64, 256, 64, dtype=np.float64)
    x = np.random.default_rng(0).integers(0, 64, (3000, 16))
    return m, x


def test_python_runs_while_the_core_computes(restore_threads):
    """With the GIL held by the worker, the main thread would stall for the whole call; the
    largest gap between its loop iterations shows whether it did."""
    rb.set_num_threads(1)  # leave a core for the main thread
    m, x = long_problem()
    start = time.perf_counter()
    m.forward(x)
    call = time.perf_counter() - start
    done = threading.Event()

    def work():
        m.forward(x)
        done.set()

    worker = threading.Thread(target=work)
    stamps = [time.perf_counter()]
    worker.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    worker.join()
    gaps = np.diff(stamps)
    assert len(stamps) > 100
    assert gaps.max() < 0.5 * call, (gaps.max(), call)


def test_concurrent_use_of_one_model_is_refused():
    """Two threads call one model for a while: some calls must be refused with a clear error
    (the GIL is released, so they do overlap), none may crash, and the model stays usable."""
    m, x = long_problem()
    x = x[:300]
    refused: list[str] = []
    deadline = time.perf_counter() + 1.0

    def hammer():
        while time.perf_counter() < deadline:
            try:
                m.forward(x)
            except RuntimeError as error:
                refused.append(str(error))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refused and all("another thread" in message for message in refused)
    outputs, _ = m.forward(x)  # still correct after the contention
    expected, _ = rb.RNN(64, 256, 64, dtype=np.float64).forward(x)
    assert np.array_equal(outputs, expected)
