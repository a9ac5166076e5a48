"""The C++ layers of docs/design.md ("The map") hold: every #include in cpp/include/rnnbptt/,
cpp/src/ and tests/cpp/ names its own layer or a layer below it in the map's order, the folders
on disk are the map's, and nothing in cpp/ outside the bindings includes pybind11 or Python.
Needs no build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The map's order: a layer may include itself and the layers before it.
LAYERS = ["core", "kernels", "cells", "bptt", "train", "io"]
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](?:rnnbptt/)?([a-z_]+)/[\w/.]+\.hpp[>"]', re.MULTILINE)
TREES = [ROOT / "cpp" / "include" / "rnnbptt", ROOT / "cpp" / "src", ROOT / "tests" / "cpp"]


def layer_of(path: Path) -> str:
    for tree in TREES:
        if path.is_relative_to(tree):
            parts = path.relative_to(tree).parts
            return parts[0] if len(parts) > 1 else ""
    raise AssertionError(path)


def sources() -> list[Path]:
    return sorted(p for tree in TREES for p in tree.rglob("*") if p.suffix in {".hpp", ".cpp", ".h"})


def violations(layer: str, text: str) -> list[str]:
    if layer not in LAYERS:
        return []
    allowed = LAYERS[: LAYERS.index(layer) + 1]
    return [used for used in INCLUDE.findall(text) if used in LAYERS and used not in allowed]


def test_every_include_goes_to_the_same_layer_or_below():
    bad = []
    for path in sources():
        layer = layer_of(path)
        for used in violations(layer, path.read_text(encoding="utf-8")):
            bad.append(f"{path.relative_to(ROOT)} ({layer}) includes {used}/")
    assert not bad, "\n".join(bad)


def test_the_check_flags_an_upward_include():
    assert violations("kernels", '#include "rnnbptt/bptt/model.hpp"\n') == ["bptt"]
    assert violations("core", "#include <rnnbptt/io/checkpoint.hpp>\n") == ["io"]
    assert violations("io", '#include "rnnbptt/core/span.hpp"\n#include "kernels/gemm.hpp"\n') == []


@pytest.mark.parametrize("tree", TREES[:2], ids=["include", "src"])
def test_the_folders_are_the_maps_layers(tree):
    folders = sorted(p.name for p in tree.iterdir() if p.is_dir())
    assert set(folders) <= set(LAYERS), folders
    assert tree.name == "rnnbptt" or set(LAYERS) <= set(folders), folders  # cpp/src holds every layer
    design = (ROOT / "docs/design.md").read_text(encoding="utf-8")
    for layer in LAYERS:
        assert f"| `{layer}/` |" in design, layer


def test_only_the_bindings_know_python():
    for path in sources():
        text = path.read_text(encoding="utf-8")
        assert "pybind11" not in text and "Python.h" not in text, path


def test_activation_names_are_listed_once():
    """The core's kActivations is the one list: no Python module writes a tuple or list of the
    three names (reference.py, the independent oracle, and torch_interop.py, which names
    PyTorch's nonlinearities, excepted; docstrings may name them)."""
    import re as regex

    name = r"""\s*["'](?:identity|tanh|relu)["']\s*"""
    together = regex.compile(r"[(\[]" + name + "," + name + "," + name + r"[)\]]")  # a tuple or list of them
    for path in sorted((ROOT / "python" / "rnnbptt").glob("*.py")):
        if path.name in {"reference.py", "torch_interop.py"}:
            continue
        assert not together.search(path.read_text(encoding="utf-8")), path


def test_the_readme_names_every_public_header():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    for header in sorted((ROOT / "cpp" / "include" / "rnnbptt").rglob("*.hpp")):
        layer = header.parent.name
        if layer == "rnnbptt":
            assert header.name in layout, header.name
        else:
            block = layout.split(f"{layer}/ (", 1)[1].split(")", 1)[0]
            assert header.stem in block.replace(",", " ").split(), header
