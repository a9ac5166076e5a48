"""Forged checkpoints against Python's loader (tests/forged_checkpoints.py makes them): every
one is refused with CheckpointError, by load or at the latest by Trainer.resume, in a process
whose address space is capped at 512 MiB, with no other exception type and no hang. The C++
loader reads the same files in tests/test_cpp_examples.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import forged_checkpoints as forged
import pytest

import rnnbptt as rb

pytest.importorskip("safetensors")

CAP = 512 << 20

PROBE = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
import rnnbptt as rb
from rnnbptt import checkpoint
results = {{}}
for name, path in json.loads(sys.argv[1]).items():
    try:
        loaded = checkpoint.load(path)
        if loaded.trainer:
            rb.Trainer.resume(path)
        results[name] = ["clean", ""]
    except checkpoint.CheckpointError as error:
        results[name] = ["CheckpointError", str(error)]
    except BaseException as error:
        results[name] = [type(error).__name__, repr(error)]
print(json.dumps(results))
"""

CHILD_ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def probe(paths: dict[str, Path]) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(cap=CAP), json.dumps({k: str(v) for k, v in paths.items()})],
        capture_output=True, text=True, timeout=300, env=CHILD_ENV,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, list[str]]:
    return probe(forged.make_all(tmp_path_factory.mktemp("forged")))


def test_the_unforged_base_loads_and_resumes_under_the_cap():
    assert probe({"base": forged.BASE}) == {"base": ["clean", ""]}


@pytest.mark.parametrize("name", [*forged.CASES, *forged.RAW_CASES])
def test_every_forged_file_is_refused_with_checkpoint_error(results, name):
    kind, message = results[name]
    assert kind == "CheckpointError", f"{name}: {kind}: {message}"
    assert f"{name}.safetensors" in message, message  # names the file


@pytest.mark.parametrize("name, expected", [
    ("config-hidden-30000", r"tensor 'W_hx' in .*: expected shape \(30000, 28\)"),
    ("nested-trainer-100000", "the 'trainer' entry of .*: expected JSON nested at most 64 deep, got 100001"),
    ("nested-config-100000", "the 'config' entry of .*: expected JSON nested at most 64 deep"),
    ("nested-vocab-100000", "the 'vocab' entry of .*: expected JSON nested at most 64 deep"),
    ("batch-size-1e400", "the 'trainer' entry of .*number overflow parsing '1e400'"),
    ("epoch-1e400", "the 'trainer' entry of .*number overflow parsing '1e400'"),
    ("epoch-float", "expected 'epoch' to be an integer >= 0, got 0.5"),
    ("history-id-outside", r"'trainer.runner.history_inputs' .*expected token ids in \[0, 28\), got 28 at \[1, 2\]"),
    ("history-id-negative", r"expected token ids in \[0, 28\), got -1 at \[0, 0\]"),
    ("runner-state-nan", "'trainer.runner.state' .*expected finite values"),
    ("history-states-mismatch", "expected its last row to equal 'trainer.runner.state'"),
])
def test_the_refusal_says_what_is_wrong(results, name, expected):
    import re

    assert re.search(expected, results[name][1]), results[name][1]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    code = "import sys\nfrom rnnbptt import checkpoint\ntry:\n    checkpoint.load(sys.argv[1])\n" \
           "except checkpoint.CheckpointError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"checkpoint: {fifo} is not a regular file", out.stderr


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(rb.CheckpointError, match=f"checkpoint: {tmp_path} is a directory, not a checkpoint file"):
        rb.checkpoint.load(tmp_path)
