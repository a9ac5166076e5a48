"""The C++ examples against Python, across the checkpoint file:

- a model trained by `rnnbptt train` continues a prefix in the C++ `generate` example exactly as
  `rnnbptt generate` does (greedy), for float32 and float64 checkpoints;
- the C++ `embedded_trainer` example's checkpoint loads in Python, whose outputs on a fixed input
  equal the C++ outputs bit for bit, and `rnnbptt generate` continues a prefix with it as the C++
  `generate` does;
- a mistake on either example's command line is one line on stderr with exit code 2.

Bit-for-bit equality needs both sides on the same SIMD code: a plain CMake build compiles the
portable baseline (no -march flags: SSE2 on x86-64, test_a_plain_build_is_the_baseline_variant),
and the Python wheel dispatches to the best variant the CPU runs, so Python runs here with
RNNBPTT_ISA=baseline, which loads the wheel's baseline module (the same code, the same flags)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cpp_consumer import CMAKE, ROOT, CppBuild, build_against_install, cpp_build

pytestmark = [pytest.mark.skipif(CMAKE is None, reason="needs cmake on PATH")]

CORPUS = ROOT / "python" / "rnnbptt" / "corpus" / "default.txt"
BASELINE = {"RNNBPTT_ISA": "baseline"}


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> CppBuild:
    return cpp_build(tmp_path_factory)


def rnnbptt_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "rnnbptt"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rnnbptt"]
    out = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, **BASELINE))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def example(build: CppBuild, name: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(build.example(name)), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def python_baseline(code: str) -> str:
    """Runs `code` in a Python process that loads the core's baseline variant."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, **BASELINE))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_a_plain_build_is_the_baseline_variant(build, tmp_path):
    """No -march flags: the C++ build reports the instruction sets of the wheel's baseline."""
    out = example(build, "embedded_trainer", str(CORPUS), "--steps", "1", "--hidden", "8", "--sample-length", "0",
                  "--checkpoint", str(tmp_path / "one.safetensors"), cwd=tmp_path)
    header = out.stdout.splitlines()[0]
    simd = python_baseline("import rnnbptt as rb; info = rb.build_info(); print(info['isa'], info['simd'])").split()
    assert simd[0] == "baseline"
    assert header.endswith(", " + " ".join(simd[1:])), (header, simd)
    assert "AVX" not in header


@pytest.mark.parametrize("dtype,cell,layers", [("float32", "elman", "1"), ("float64", "elman", "1"),
                                               ("float32", "lstm", "2"), ("float64", "gru", "1")])
def test_generate_continues_a_python_checkpoint_as_rnnbptt_generate(build, tmp_path, dtype, cell, layers):
    checkpoint = tmp_path / "python.safetensors"
    rnnbptt_cli("train", "--steps", "40", "--hidden", "48", "--batch-size", "8", "--num-steps", "16",
                "--truncation", "regular:8,16", "--dtype", dtype, "--optimizer", "adam", "--lr", "0.01",
                "--cell", cell, "--layers", layers,
                "--checkpoint", str(checkpoint), "--sample-length", "0", cwd=tmp_path)
    for prefix in ("The ", "A recurrent network"):
        flags = ["--checkpoint", str(checkpoint), "--prefix", prefix, "--length", "150"]
        python = rnnbptt_cli("generate", *flags, cwd=tmp_path).stdout
        cpp = example(build, "generate", *flags, cwd=tmp_path).stdout
        assert cpp == python
        assert cpp.startswith(prefix) and len(cpp) == len(prefix) + 150 + 1
    # Sampling uses our own generator in C++: reproducible for a seed, different across seeds.
    sample = ["--checkpoint", str(checkpoint), "--prefix", "The ", "--length", "60", "--temperature", "0.9"]
    first = example(build, "generate", *sample, "--seed", "3", cwd=tmp_path).stdout
    assert first == example(build, "generate", *sample, "--seed", "3", cwd=tmp_path).stdout
    assert first != example(build, "generate", *sample, "--seed", "4", cwd=tmp_path).stdout


@pytest.mark.parametrize("cell,layers", [("elman", "1"), ("gru", "2")])
def test_the_embedded_trainers_checkpoint_gives_python_the_same_bits(build, tmp_path, cell, layers):
    checkpoint, outputs = tmp_path / "embedded.safetensors", tmp_path / "outputs.txt"
    out = example(build, "embedded_trainer", str(CORPUS), "--steps", "30", "--hidden", "40", "--batch", "8",
                  "--cell", cell, "--layers", layers,
                  "--num-steps", "16", "--truncation", "regular:8,16", "--checkpoint", str(checkpoint),
                  "--outputs", str(outputs), "--sample-length", "60", "--prefix", "The ", cwd=tmp_path)
    assert "perplexity" in out.stdout and "validation" in out.stdout and "greedy:" in out.stdout

    lines = outputs.read_text().split()
    T, q = int(lines[0]), int(lines[1])
    cpp = np.array([float.fromhex(v) for v in lines[2:]], dtype=np.float32).reshape(T, 1, q)
    script = f"""
import numpy as np
from rnnbptt import checkpoint
loaded = checkpoint.load({str(checkpoint)!r})
text = open({str(CORPUS)!r}, encoding="utf-8").read()
ids = loaded.vocab.encode(text)[:{T}].reshape(-1, 1)
outputs, _ = loaded.model.forward(ids)
assert outputs.dtype == np.float32, outputs.dtype
print(" ".join(float(v).hex() for v in outputs.ravel()))
"""
    python = np.array([float.fromhex(v) for v in python_baseline(script).split()], dtype=np.float32).reshape(T, 1, q)
    assert np.array_equal(cpp.view(np.uint32), python.view(np.uint32))

    # And the other way round: Python continues a prefix with the C++ model as C++ does, which
    # is also what the trainer printed as its greedy sample.
    flags = ["--checkpoint", str(checkpoint), "--prefix", "The ", "--length", "60"]
    python_text = rnnbptt_cli("generate", *flags, cwd=tmp_path).stdout
    assert example(build, "generate", *flags, cwd=tmp_path).stdout == python_text
    assert "greedy:\n" + python_text in out.stdout


@pytest.mark.parametrize(
    "name,args,words",
    [
        ("generate", [], "the following arguments are required: --prefix"),
        ("generate", ["--prefix", "a", "--length", "x"], "argument --length: expected an integer, got 'x'"),
        ("generate", ["--prefix", "a", "--length", "-1"], "argument --length: expected an integer >= 0, got -1"),
        ("generate", ["--prefix", "a", "--temperature", "nan"], "argument --temperature: expected a finite number"),
        ("generate", ["--prefix", "a", "--seed", "-3"], "argument --seed: expected an integer in [0, 2**64)"),
        ("generate", ["--prefix", "a", "--bogus", "1"], "unrecognized argument: --bogus"),
        ("generate", ["--prefix", "a", "--checkpoint", "missing.safetensors"],
         "argument --checkpoint: no such file: missing.safetensors"),
        ("generate", ["--prefix", ""], "argument --prefix: expected at least one character"),
        ("generate", ["--prefix", "\u2603", "--checkpoint", "{checkpoint}"], "argument --prefix: "),
        ("generate", ["--prefix", "a", "--length"], "argument --length: expected a value"),
        ("embedded_trainer", [], "the following arguments are required: TEXT"),
        ("embedded_trainer", ["missing.txt"], "argument TEXT: cannot read missing.txt"),
        ("embedded_trainer", ["{corpus}", "--steps", "0"], "argument --steps: expected an integer >= 1, got 0"),
        ("embedded_trainer", ["{corpus}", "--lr", "0"], "argument --lr: expected a finite number > 0, got 0"),
        ("embedded_trainer", ["{corpus}", "--truncation", "sometimes"], "argument --truncation: truncation: expected"),
        ("embedded_trainer", ["{corpus}", "--truncation", "regular:5", "--num-steps", "12"],
         "argument --num-steps: expected a multiple of k1 = 5 for regular:5"),
        ("embedded_trainer", ["{corpus}", "--batch", "100000"], "argument TEXT: too short for --batch 100000"),
        ("embedded_trainer", ["{corpus}", "--prefix", "\u2603"], "argument --prefix: "),
        ("embedded_trainer", ["{corpus}", "extra.txt"], "unrecognized argument: extra.txt"),
    ],
)
def test_a_command_line_mistake_is_one_line_and_exit_code_2(build, tmp_path, name, args, words):
    checkpoint = tmp_path / "tiny.safetensors"
    if any("{checkpoint}" in a for a in args):
        example(build, "embedded_trainer", str(CORPUS), "--steps", "1", "--hidden", "4", "--sample-length", "0",
                "--checkpoint", str(checkpoint), cwd=tmp_path)
    args = [a.replace("{corpus}", str(CORPUS)).replace("{checkpoint}", str(checkpoint)) for a in args]
    out = example(build, name, *args, cwd=tmp_path, check=False)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{name}: error: ") and words in lines[0], lines[0]


def test_help_is_not_an_error(build, tmp_path):
    for name in ("generate", "embedded_trainer"):
        out = example(build, name, "--help", cwd=tmp_path)
        assert out.stdout.startswith(f"usage: {name}")


def test_examples_build_on_their_own_against_the_install(build, tmp_path):
    """Each example's CMakeLists.txt works on its own (find_package)."""
    for folder in ("generate", "embedded_trainer"):
        build_against_install(build, ROOT / "examples" / folder, tmp_path / folder)
        assert (tmp_path / folder / folder).exists()


def test_forged_checkpoints_are_refused_by_the_cpp_reader_within_512_mib(build, tmp_path):
    """The files of tests/forged_checkpoints.py through the C++ reader (the `generate` example),
    its address space capped at 512 MiB: each is refused as a command-line error naming
    --checkpoint and the file (exit 2, one line), never a crash, a hang or an allocation failure.
    Fields of the trainer entry that only Python's Trainer.resume reads may load."""
    import resource

    import forged_checkpoints as forged

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))

    paths = forged.make_all(tmp_path / "forged")
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    paths.update(fifo=fifo, directory=tmp_path / "forged")
    for name, path in paths.items():
        command = [str(build.example("generate")), "--checkpoint", str(path), "--prefix", "t", "--length", "1"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=cap)
        if name in forged.TRAINER_ONLY and out.returncode == 0:
            continue
        assert out.returncode == 2, (name, out.returncode, out.stderr[-2000:])
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "argument --checkpoint: " + str(path) in lines[0], (name, out.stderr)
