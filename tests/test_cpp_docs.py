"""docs/cpp.md's programs compile and run: every ```cpp block that starts with a `// <name>.cpp`
line is written to that file, the page's find_package CMakeLists.txt (the ```cmake block that
lists them) is used as it is, and the programs are built against the session's installed
library and run in the page's order (train.cpp on the built-in corpus; generate.cpp then reads
the checkpoint train.cpp wrote)."""

from __future__ import annotations

import re
import subprocess

import pytest

from test_cpp_consumer import CMAKE, ROOT, CppBuild, configure_flags, cpp_build, run

pytestmark = [pytest.mark.skipif(CMAKE is None, reason="needs cmake on PATH")]

DOC = ROOT / "docs" / "cpp.md"
CORPUS = ROOT / "python" / "rnnbptt" / "corpus" / "default.txt"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> CppBuild:
    return cpp_build(tmp_path_factory)


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def programs() -> dict[str, str]:
    """name -> source of every block that names its file on its first line."""
    found = {}
    for block in blocks("cpp"):
        first = block.splitlines()[0]
        match = re.fullmatch(r"// (\w+)\.cpp", first)
        if match:
            found[match.group(1)] = block
    return found


def test_the_page_has_its_programs_and_their_cmakelists():
    names = list(programs())
    assert names == ["first", "train", "forecast", "bias", "generate", "errors"], names
    lists = [b for b in blocks("cmake") if "find_package(rnnbptt" in b and "add_executable" in b]
    assert len(lists) == 1
    assert "foreach(program " + " ".join(names) + ")" in lists[0]
    # Every C++ block with a main() is one of them: nothing that claims to be a program escapes.
    assert sum("int main(" in b for b in blocks("cpp")) == len(names)


def test_the_programs_compile_and_run(build, tmp_path):
    source, binary, work = tmp_path / "src", tmp_path / "build", tmp_path / "work"
    source.mkdir()
    work.mkdir()
    (source / "CMakeLists.txt").write_text(next(b for b in blocks("cmake") if "find_package(rnnbptt" in b))
    for name, code in programs().items():
        (source / f"{name}.cpp").write_text(code)
    run(CMAKE, "-S", str(source), "-B", str(binary), *configure_flags(str(build.prefix)), "-DCMAKE_BUILD_TYPE=Release")
    run(CMAKE, "--build", str(binary))
    outputs = {}
    for name in programs():
        out = subprocess.run([str(binary / name), str(CORPUS)] if name == "train" else [str(binary / name)],
                             cwd=work, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{name}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        outputs[name] = out.stdout
    assert "SSE2" in outputs["first"] and "loss" in outputs["first"]
    assert "perplexity" in outputs["train"] and (work / "model.safetensors").exists()
    # forecast.cpp: a dense series, the held-out chunk against persistence (tomorrow = today).
    model_mse, persistence_mse = map(float, re.fullmatch(r"held-out MSE ([\d.]+), persistence ([\d.]+)\n",
                                                         outputs["forecast"]).groups())
    assert model_mse < 0.7 * persistence_mse, outputs["forecast"]
    # bias.cpp: the model learned the recall; Regular's bias falls as k grows, and Randomized's
    # mean (256 draws) lies within three standard errors of the Full gradient.
    lines = outputs["bias"].splitlines()
    assert float(re.fullmatch(r"loss at the last step ([\d.]+) \(chance: [\d.]+\)", lines[0])[1]) < 0.1
    line_pattern = r"(\S+) +bias ([\d.]+)  cosine [-\d.]+  standard error ([\d.]+)"
    bias = {m[1]: (float(m[2]), float(m[3])) for m in (re.fullmatch(line_pattern, line) for line in lines[1:])}
    assert list(bias) == ["regular:2", "regular:4", "regular:8", "randomized:0.9,seed=0"], outputs["bias"]
    assert bias["regular:2"][0] > bias["regular:4"][0] > bias["regular:8"][0] > 0.3
    assert 0 < bias["randomized:0.9,seed=0"][0] < 3 * bias["randomized:0.9,seed=0"][1]
    # generate.cpp prints the greedy text (64 characters, which may include line breaks), the
    # sampled one, then the greedy one again, made step by step; train.cpp ended with 84 greedy
    # characters of the same model.
    generated = outputs["generate"]
    greedy = generated[:64]
    assert greedy.startswith("The ") and generated[64] == "\n" and generated.endswith("\n" + greedy + "\n")
    assert outputs["train"][-85:-1].startswith(greedy)
    assert outputs["errors"].splitlines() == [
        "x: expected token ids in [0, 5), got 7 at [2, 0]",
        "backward: expected a forward pass first, got none",
    ]
