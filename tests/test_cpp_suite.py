"""The C++ test suite (tests/cpp: GoogleTest, registered with CTest, plus the steady-state
allocation count, which asserts zero heap allocations per training or inference step after
warm-up, and the examples' runs), run with ctest in the session's one C++ build."""

from __future__ import annotations

import subprocess

import pytest

from test_cpp_consumer import CMAKE, CTEST, CppBuild, cpp_build

pytestmark = [
    pytest.mark.skipif(CMAKE is None or CTEST is None, reason="needs cmake and ctest on PATH"),
]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> CppBuild:
    return cpp_build(tmp_path_factory)


def ctest(build: CppBuild, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CTEST), "--output-on-failure", "--timeout", "900", *args], cwd=build.build,
                          capture_output=True, text=True)


def test_ctest_runs_the_suite_the_allocation_count_and_the_examples(build):
    if not build.has_gtest:
        pytest.skip("GoogleTest is not installed (Debian: apt-get install libgtest-dev): tests/cpp was not built")
    listed = subprocess.run([str(CTEST), "-N"], cwd=build.build, capture_output=True, text=True).stdout
    # Every area has tests, the fuzz test and the allocation count are there, and so are the examples.
    for name in ("Gradients", "Truncation", "Stream", "Clip", "Optim", "Predictor", "Checkpoint.", "CheckpointFuzz",
                 "Errors", "steady_state_allocations", "example_consumer", "example_embedded_trainer",
                 "example_generate"):
        assert name in listed, f"{name} is not registered with CTest:\n{listed}"
    out = ctest(build, "-j", "2")
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-4000:]
    assert "100% tests passed" in out.stdout
    # The allocation count prints one line per case (training steps of every kind, a Predictor).
    log = (build.build / "Testing" / "Temporary" / "LastTest.log").read_text(errors="replace")
    for case in ("tokens_full_adam", "stream_regular_10_25_sgd", "dense_full_float64", "predictor_step"):
        assert f"{case} 0\n" in log, case

