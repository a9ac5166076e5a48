"""The C++ is formatted by .clang-format and clean under .clang-tidy (bugprone-* and
performance-*), checked with Debian's clang-format and clang-tidy 14 (one pinned version: other
versions format differently), which CI installs (.ci/run). Skipped where they are missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_cpp_consumer import CMAKE, configure_flags

ROOT = Path(__file__).resolve().parent.parent
VERSION = 14


def tool(name: str) -> str | None:
    """clang-<tool>-14, or clang-<tool> when it is version 14."""
    found = shutil.which(f"{name}-{VERSION}") or shutil.which(name)
    if found is None:
        return None
    out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.", out)
    return found if match and int(match.group(1)) == VERSION else None


def cpp_files(*patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file())


FORMATTED = ("cpp/**/*.[ch]pp", "tests/cpp/**/*.[ch]pp", "examples/**/*.[ch]pp", "bench/**/*.cpp")
TIDIED = ("cpp/src/**/*.cpp", "cpp/bindings/**/*.cpp", "examples/**/*.cpp")


@pytest.mark.skipif(tool("clang-format") is None, reason=f"needs clang-format {VERSION}")
def test_cpp_is_formatted():
    files = cpp_files(*FORMATTED)
    assert len(files) > 50
    out = subprocess.run([str(tool("clang-format")), "--dry-run", "--Werror", *map(str, files)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, "run clang-format -i on:\n" + "\n".join(
        sorted({line.split(":")[0] for line in out.stderr.splitlines() if "error:" in line}))


@pytest.mark.skipif(tool("clang-tidy") is None, reason=f"needs clang-tidy {VERSION}")
@pytest.mark.skipif(CMAKE is None, reason="needs cmake on PATH")
def test_cpp_is_clean_under_clang_tidy(tmp_path):
    pybind11 = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True)
    if pybind11.returncode != 0:
        pytest.skip("needs pybind11 (the test extra) for the bindings' compile commands")
    build = tmp_path / "tidy"
    subprocess.run([CMAKE, "-S", str(ROOT), "-B", str(build), *configure_flags(), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                    "-DRNNBPTT_BUILD_PYTHON=ON", f"-Dpybind11_DIR={pybind11.stdout.strip()}",
                    "-DRNNBPTT_BUILD_EXAMPLES=ON"], check=True, capture_output=True)
    files = cpp_files(*TIDIED)

    def tidy(path: Path) -> str:
        # GCC compiles in C++17 by default, so CMake writes no -std flag; clang needs one.
        command = [str(tool("clang-tidy")), "-p", str(build), "--quiet", "--extra-arg=-std=c++17", str(path)]
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        return "\n".join(line for line in out.stdout.splitlines() if re.search(r"(warning|error): ", line))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        findings = [text for text in pool.map(tidy, files) if text]
    assert not findings, "\n".join(findings)
