"""C++ users: the installed CMake package and the embedded source tree both build a program
with no Python, whose numbers match the NumPy reference."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnbptt import reference

from conftest import rel_err

ROOT = Path(__file__).resolve().parent.parent
CONSUMER = ROOT / "examples" / "cpp_consumer"
CMAKE = shutil.which("cmake")
pytestmark = [
    pytest.mark.skipif(CMAKE is None, reason="needs cmake on PATH"),
    pytest.mark.skipif(not (ROOT / "CMakeLists.txt").exists(), reason="needs the source tree"),
]


def eigen_prefix() -> list[str]:
    """cmeel-eigen's prefix when installed (the test extra brings it), else a system Eigen."""
    try:
        out = subprocess.run([sys.executable, "-m", "cmeel", "cmake"], capture_output=True,
                             text=True, check=True)
        return [out.stdout.strip()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return []


def run(*args: str, cwd: Path | None = None) -> str:
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def check_output(stdout: str) -> None:
    result = json.loads(stdout)
    d = h = q = 5
    h = 4
    flat = np.array(result["params"])
    shapes = {"W_hx": (h, d), "W_hh": (h, h), "b_h": (h,), "W_qh": (q, h), "b_q": (q,)}
    params, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        params[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    x = np.array(result["tokens"]).reshape(6, 2)
    y = np.array(result["targets"]).reshape(6, 2)
    loss, grads, _, _ = reference.loss_and_grads(params, x, y)
    assert abs(result["loss"] - loss) <= 1e-12 * loss
    full = np.concatenate([grads[k].ravel() for k in shapes])
    assert rel_err(result["grads_full"], full) <= 1e-10
    _, regular = reference.regular_grads(params, x, y, 2, 3)
    regular_flat = np.concatenate([regular[k].ravel() for k in shapes])
    assert rel_err(result["grads_regular_2_3"], regular_flat) <= 1e-10
    assert result["norm_before_clip"] == pytest.approx(np.linalg.norm(regular_flat), rel=1e-12)
    assert result["norm_after_clip"] == pytest.approx(0.01, rel=1e-12)
    assert result["error"] == "k2: expected k2 >= k1 = 3, got 2"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Configure, build and `cmake --install` the library alone (no Python parts)."""
    work = tmp_path_factory.mktemp("rnnbptt_cpp")
    prefix = work / "install"
    run(CMAKE, "-S", str(ROOT), "-B", str(work / "build"), *generator(),
        f"-DCMAKE_PREFIX_PATH={';'.join(eigen_prefix())}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
        "-DRNNBPTT_BUILD_PYTHON=OFF")
    run(CMAKE, "--build", str(work / "build"))
    run(CMAKE, "--install", str(work / "build"))
    return prefix


def test_install_ships_headers_library_and_config(installed):
    assert (installed / "include" / "rnnbptt" / "rnnbptt.hpp").exists()
    configs = list(installed.glob("lib*/cmake/rnnbptt/rnnbpttConfig.cmake"))
    assert configs, "no CMake package config installed"
    text = configs[0].read_text()
    assert "find_dependency(Eigen3" in text and "find_dependency(OpenMP" in text
    targets = (configs[0].parent / "rnnbpttTargets.cmake").read_text()
    assert "include" in targets and "rnnbptt::rnnbptt" in targets
    assert list(installed.glob("lib*/librnnbptt.*"))


def test_find_package_consumer(installed, tmp_path):
    prefixes = ";".join([str(installed), *eigen_prefix()])
    run(CMAKE, "-S", str(CONSUMER), "-B", str(tmp_path), *generator(), f"-DCMAKE_PREFIX_PATH={prefixes}")
    run(CMAKE, "--build", str(tmp_path))
    check_output(run(str(tmp_path / "consumer")))


def test_no_heap_allocation_in_steady_state_steps(installed, tmp_path):
    """Counted with interposed allocator functions: zero after warm-up, with threads."""
    prefixes = ";".join([str(installed), *eigen_prefix()])
    run(CMAKE, "-S", str(ROOT / "tests" / "cpp"), "-B", str(tmp_path), *generator(), f"-DCMAKE_PREFIX_PATH={prefixes}")
    run(CMAKE, "--build", str(tmp_path), "--target", "steady_state_allocations")
    out = subprocess.run([str(tmp_path / "steady_state_allocations")], capture_output=True, text=True)
    counts = dict(line.split() for line in out.stdout.splitlines())
    assert len(counts) == 6, out.stdout + out.stderr
    assert all(v == "0" for v in counts.values()), counts
    assert out.returncode == 0


def test_readme_cpp_example_builds_and_runs(installed, tmp_path):
    """The README's C++ snippet, verbatim, against the installed package."""
    text = (ROOT / "README.md").read_text()
    snippet = text.split("## C++ in twenty lines")[1].split("```cpp")[1].split("```")[0]
    (tmp_path / "main.cpp").write_text(snippet)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(readme_example LANGUAGES CXX)\n"
        "find_package(rnnbptt CONFIG REQUIRED)\nadd_executable(example main.cpp)\n"
        "target_link_libraries(example PRIVATE rnnbptt::rnnbptt)\n"
    )
    prefixes = ";".join([str(installed), *eigen_prefix()])
    run(CMAKE, "-S", str(tmp_path), "-B", str(tmp_path / "build"), *generator(), f"-DCMAKE_PREFIX_PATH={prefixes}")
    run(CMAKE, "--build", str(tmp_path / "build"))
    run(str(tmp_path / "build" / "example"))


def test_embedded_consumer(tmp_path):
    run(CMAKE, "-S", str(CONSUMER), "-B", str(tmp_path), *generator(),
        f"-DCMAKE_PREFIX_PATH={';'.join(eigen_prefix())}", f"-DRNNBPTT_SOURCE_DIR={ROOT}")
    run(CMAKE, "--build", str(tmp_path))
    check_output(run(str(tmp_path / "consumer")))
