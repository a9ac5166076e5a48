"""C++ users: one CMake build of the library with its GoogleTest suite and examples, installed
to a prefix, serves every C++ test (tests/test_cpp_suite.py, test_cpp_examples.py,
test_cpp_docs.py use it too). Here: what the install ships, and programs built against it with
find_package (the example consumer, whose numbers match the NumPy reference, and the README's
snippet).

The embedded way (-DRNNBPTT_SOURCE_DIR, cmake/rnnbpttFindOrEmbed.cmake) is the sanitizer build
of tests/test_sanitizers.py, so that no third build of the library is needed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from rnnbptt import reference

from conftest import rel_err

ROOT = Path(__file__).resolve().parent.parent
CONSUMER = ROOT / "examples" / "cpp_consumer"
CMAKE = shutil.which("cmake")
CTEST = shutil.which("ctest")
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


def run(*args: str, cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None) -> str:
    full_env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2), **(env or {}))
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=full_env)
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}"
    return out.stdout


def generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def configure_flags(*prefixes: str) -> list[str]:
    """What every configure here passes: the generator, where Eigen is, and the interpreter whose
    site-packages may hold PyPI's nlohmann-json (the library's JSON parser, when the system has
    none)."""
    return [*generator(), f"-DCMAKE_PREFIX_PATH={';'.join([*prefixes, *eigen_prefix()])}",
            f"-DPython3_EXECUTABLE={sys.executable}"]


class CppBuild:
    """The one normal build: Release (as the Python wheel's core), no -march flags (the portable
    baseline), tests and examples on, installed to `prefix`."""

    def __init__(self, work: Path) -> None:
        self.build = work / "build"
        self.prefix = work / "install"
        run(CMAKE, "-S", str(ROOT), "-B", str(self.build), *configure_flags(), "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={self.prefix}", "-DRNNBPTT_BUILD_PYTHON=OFF", "-DRNNBPTT_BUILD_TESTS=ON",
            "-DRNNBPTT_BUILD_EXAMPLES=ON")
        run(CMAKE, "--build", str(self.build))
        run(CMAKE, "--install", str(self.build))

    @property
    def has_gtest(self) -> bool:
        """The top level adds tests/cpp only when it finds GoogleTest."""
        return (self.build / "tests" / "cpp").is_dir()

    def example(self, name: str) -> Path:
        folder = {"consumer": "cpp_consumer"}.get(name, name)
        return self.build / "examples" / folder / name


_BUILD: dict[str, CppBuild] = {}


def cpp_build(tmp_path_factory: pytest.TempPathFactory) -> CppBuild:
    """The session's build, made by the first test that needs it (each test module has a
    fixture that calls this; the build happens once)."""
    if "build" not in _BUILD:
        _BUILD["build"] = CppBuild(tmp_path_factory.mktemp("rnnbptt_cpp"))
    return _BUILD["build"]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> CppBuild:
    return cpp_build(tmp_path_factory)


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


def test_install_ships_headers_library_and_config(build):
    installed = build.prefix
    for header in ("rnnbptt.hpp", "core/span.hpp", "io/inference.hpp", "io/checkpoint.hpp", "io/text.hpp",
                   "train/data.hpp", "version.hpp"):
        assert (installed / "include" / "rnnbptt" / header).exists(), header
    configs = list(installed.glob("lib*/cmake/rnnbptt/rnnbpttConfig.cmake"))
    assert configs, "no CMake package config installed"
    text = configs[0].read_text()
    assert "find_dependency(Eigen3" in text and "find_dependency(OpenMP" in text
    targets = (configs[0].parent / "rnnbpttTargets.cmake").read_text()
    assert "include" in targets and "rnnbptt::rnnbptt" in targets
    assert list(installed.glob("lib*/librnnbptt.*"))


def test_the_example_consumer_matches_the_reference(build):
    check_output(run(str(build.example("consumer"))))


def build_against_install(build: CppBuild, source: Path, binary: Path) -> None:
    run(CMAKE, "-S", str(source), "-B", str(binary), *configure_flags(str(build.prefix)), "-DCMAKE_BUILD_TYPE=Release")
    run(CMAKE, "--build", str(binary))


def test_find_package_consumer(build, tmp_path):
    """The example's own CMakeLists.txt, on its own, finds the installed package."""
    build_against_install(build, CONSUMER, tmp_path)
    check_output(run(str(tmp_path / "consumer")))


def test_readme_cpp_example_builds_and_runs(build, tmp_path):
    """The README's C++ snippet, verbatim, against the installed package."""
    text = (ROOT / "README.md").read_text()
    snippet = text.split("## C++ in twenty lines")[1].split("```cpp")[1].split("```")[0]
    (tmp_path / "main.cpp").write_text(snippet)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(readme_example LANGUAGES CXX)\n"
        "find_package(rnnbptt CONFIG REQUIRED)\nadd_executable(example main.cpp)\n"
        "target_link_libraries(example PRIVATE rnnbptt::rnnbptt)\n"
    )
    build_against_install(build, tmp_path, tmp_path / "build")
    run(str(tmp_path / "build" / "example"))


def test_a_guest_without_a_build_type_compiles_the_library_optimized(tmp_path):
    """add_subdirectory into a project that sets no CMAKE_BUILD_TYPE: the library's sources get
    Release's flags (a trial's program ran 20 times slower without them); configure only."""
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(guest LANGUAGES CXX)\n"
        f"add_subdirectory({ROOT.as_posix()} rnnbptt)\n"
    )
    out = run(CMAKE, "-S", str(tmp_path), "-B", str(tmp_path / "build"), *configure_flags(),
              "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
    assert "the parent project sets no CMAKE_BUILD_TYPE" in out
    commands = json.loads((tmp_path / "build" / "compile_commands.json").read_text())
    library = [c["command"] for c in commands if "/cpp/src/" in c["file"]]
    assert library and all(" -O3 " in c or " -O2 " in c for c in library), library[:1]


def test_the_fetchcontent_recipe_of_the_cpp_guide(tmp_path):
    """docs/cpp.md's FetchContent recipe, as written: the archive made by its `git archive`
    command from this repository, fetched and configured into a guest project (configure only,
    as above: the library's sources are part of the guest's build, optimized)."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to make the archive")
    doc = (ROOT / "docs" / "cpp.md").read_text(encoding="utf-8")
    command = re.search(r"^(git archive [^\n]+)$", doc, re.MULTILINE)
    assert command, "docs/cpp.md states how to make the archive"
    (tmp_path / "third_party").mkdir()
    subprocess.run(shlex.split(command.group(1).replace("-o ", f"-o {tmp_path}/third_party/")), cwd=ROOT,
                   check=True, capture_output=True)
    recipe = re.search(r"```cmake\n(include\(FetchContent\)\n.*?)```", doc, re.DOTALL)
    assert recipe
    (tmp_path / "main.cpp").write_text("#include <rnnbptt/rnnbptt.hpp>\nint main() { return 0; }\n")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(guest LANGUAGES CXX)\nadd_executable(my_app main.cpp)\n"
        + recipe.group(1)
    )
    run(CMAKE, "-S", str(tmp_path), "-B", str(tmp_path / "build"), *configure_flags(),
        "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
    commands = json.loads((tmp_path / "build" / "compile_commands.json").read_text())
    assert any("/cpp/src/" in c["file"] and "_deps/rnnbptt-src" in c["file"] for c in commands), commands[:1]
