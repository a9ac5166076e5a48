"""The C++ checks with no Python, once plain and once under AddressSanitizer and
UndefinedBehaviorSanitizer (library and checks compiled together with the same flags): every
strategy, streams with history, and misuse that must throw instead of touching memory it does
not own. Any sanitizer report aborts the program, and the test fails with it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_cpp_consumer import CMAKE, ROOT, check_output, eigen_prefix, generator, run

pytestmark = [
    pytest.mark.skipif(CMAKE is None, reason="needs cmake on PATH"),
    pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"),
]

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
# Leak checking needs ptrace, which some containers forbid; memory errors are what matter here.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=0:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def configure_and_build(source: Path, build: Path, *flags: str) -> None:
    run(CMAKE, "-S", str(source), "-B", str(build), *generator(), f"-DCMAKE_PREFIX_PATH={';'.join(eigen_prefix())}",
        f"-DRNNBPTT_SOURCE_DIR={ROOT}", *flags)
    run(CMAKE, "--build", str(build))


def run_checked(program: Path, env: dict[str, str]) -> str:
    out = subprocess.run([str(program)], capture_output=True, text=True, env=dict(os.environ, **env))
    assert out.returncode == 0, f"{program.name} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    assert "ERROR: AddressSanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-6000:]
    return out.stdout


def checks_line(stdout: str) -> tuple[int, int]:
    words = stdout.split()
    return int(words[words.index("checks") + 1]), int(words[words.index("failures") + 1])


def test_hostile_inputs_plain(tmp_path):
    configure_and_build(ROOT / "tests" / "cpp", tmp_path, "-DRNNBPTT_CHECK_ALLOCATIONS=OFF")
    checks, failures = checks_line(run_checked(tmp_path / "hostile_inputs", {}))
    assert failures == 0 and checks > 200


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("sanitized")
    configure_and_build(ROOT / "tests" / "cpp", build, "-DRNNBPTT_CHECK_ALLOCATIONS=OFF",
                        "-DCMAKE_BUILD_TYPE=Debug", f"-DCMAKE_CXX_FLAGS={SANITIZE}")
    return build


def test_hostile_inputs_under_asan_and_ubsan(sanitized):
    checks, failures = checks_line(run_checked(sanitized / "hostile_inputs", SANITIZER_ENV))
    assert failures == 0 and checks > 200


def test_consumer_under_asan_and_ubsan(sanitized):
    check_output(run_checked(sanitized / "consumer", SANITIZER_ENV))


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
