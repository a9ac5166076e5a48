"""The C++ test suite under AddressSanitizer and UndefinedBehaviorSanitizer: one build of
tests/cpp on its own, with the library compiled into it from this source tree
(-DRNNBPTT_SOURCE_DIR, the embedded way of cmake/rnnbpttFindOrEmbed.cmake) and the examples
added, everything with the same sanitizer flags. ctest then runs the GoogleTest suite (every
error path, the checkpoint fuzz test, gradients, streams, ...) and the examples; any sanitizer
report aborts the program and fails its test. (The allocation count interposes malloc, which a
sanitizer's allocator does not allow: it runs in the normal build, tests/test_cpp_suite.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_cpp_consumer import CMAKE, CTEST, ROOT, check_output, configure_flags, generator, run

pytestmark = [
    pytest.mark.skipif(CMAKE is None or CTEST is None, reason="needs cmake and ctest on PATH"),
    pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"),
]

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
# Leak checking needs ptrace, which some containers forbid; memory errors are what matter here.
# allocator_may_return_null: the tests ask for 2**58 bytes on purpose and expect AllocationError
# (std::bad_alloc), which a sanitizer's allocator otherwise reports as an error of its own.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=0:strict_string_checks=1:allocator_may_return_null=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("sanitized")
    run(CMAKE, "-S", str(ROOT / "tests" / "cpp"), "-B", str(build), *configure_flags(), f"-DRNNBPTT_SOURCE_DIR={ROOT}",
        "-DRNNBPTT_BUILD_EXAMPLES=ON", "-DRNNBPTT_CHECK_ALLOCATIONS=OFF", "-DCMAKE_BUILD_TYPE=Debug",
        f"-DCMAKE_CXX_FLAGS={SANITIZE}")
    run(CMAKE, "--build", str(build))
    return build


def test_the_suite_and_the_examples_under_asan_and_ubsan(sanitized):
    if not (sanitized / "rnnbptt_tests").exists():
        pytest.skip("GoogleTest is not installed (Debian: apt-get install libgtest-dev): the suite was not built")
    listed = subprocess.run([str(CTEST), "-N"], cwd=sanitized, capture_output=True, text=True,
                            env=dict(os.environ, **SANITIZER_ENV)).stdout
    for name in ("CheckpointFuzz", "Errors", "Gradients", "example_embedded_trainer", "example_generate"):
        assert name in listed, f"{name} is not registered with CTest:\n{listed}"
    out = subprocess.run([str(CTEST), "--output-on-failure", "--timeout", "1800", "-j", "2"], cwd=sanitized,
                         capture_output=True, text=True, env=dict(os.environ, **SANITIZER_ENV))
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-4000:]
    assert "100% tests passed" in out.stdout


def test_the_example_consumer_under_asan_and_ubsan(sanitized):
    out = subprocess.run([str(sanitized / "examples" / "cpp_consumer" / "consumer")], capture_output=True, text=True,
                         env=dict(os.environ, **SANITIZER_ENV))
    assert out.returncode == 0, out.stderr[-6000:]
    assert "ERROR: AddressSanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-6000:]
    check_output(out.stdout)


def test_the_sanitizer_build_catches_an_overflow(tmp_path):
    """The harness can fail: a deliberate heap overflow, built the same way, is reported."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(overflow LANGUAGES CXX)\n"
        "add_executable(overflow main.cpp)\n"
    )
    (tmp_path / "src" / "main.cpp").write_text(
        "#include <vector>\nint main(int argc, char**) { std::vector<int> v(4); return v.data()[argc + 3]; }\n"
    )
    run(CMAKE, "-S", str(tmp_path / "src"), "-B", str(tmp_path / "build"), *generator(),
        f"-DCMAKE_CXX_FLAGS={SANITIZE}")
    run(CMAKE, "--build", str(tmp_path / "build"))
    out = subprocess.run([str(tmp_path / "build" / "overflow")], capture_output=True, text=True,
                         env=dict(os.environ, **SANITIZER_ENV))
    assert out.returncode != 0 and "heap-buffer-overflow" in out.stderr
