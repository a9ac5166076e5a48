"""Every command-line mistake is one line on stderr naming the flag, exit code 2, no traceback."""

from __future__ import annotations

import shlex
import subprocess
import sys

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint
from rnnbptt.cli import main

# Tiny settings, so that a mistake the parser lets through fails fast (or a run ends fast).
TRAIN = "train --hidden 8 --steps 1 --batch-size 2 --num-steps 5 --sample-length 5"


@pytest.fixture
def files(tmp_path, monkeypatch):
    """tmp_path as the working directory, with checkpoints and texts of every bad kind."""
    monkeypatch.chdir(tmp_path)
    model = rb.RNN(5, 4, 5, seed=0)
    vocab = rb.Vocab(list("abcde"))
    checkpoint.save("no-trainer.safetensors", checkpoint.Checkpoint(model=model, vocab=vocab))
    checkpoint.save("no-vocab.safetensors", checkpoint.Checkpoint(model=model))
    payload = bytearray((tmp_path / "no-trainer.safetensors").read_bytes())
    payload[-3] ^= 0xFF  # damage the tensor bytes
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(payload))
    (tmp_path / "garbage.safetensors").write_bytes(b"not a checkpoint at all")
    nan_model = rb.RNN(5, 4, 5, seed=0)
    nan_model.W_hh[0, 0] = np.nan
    checkpoint.save("nan.safetensors", checkpoint.Checkpoint(model=nan_model, vocab=vocab))
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 " * 50)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("abcdefghij")
    return tmp_path


# (command, text the single error line must contain)
MISTAKES = [
    # optimization and training lengths
    (f"{TRAIN} --epochs 0", "argument --epochs: expected an integer >= 1, got 0"),
    ("train --hidden 8 --epochs 0", "argument --epochs: expected an integer >= 1, got 0"),
    ("train --hidden 8 --steps 0", "argument --steps: expected an integer >= 1, got 0"),
    (f"{TRAIN} --epochs 1.5", "argument --epochs: expected an integer, got '1.5'"),
    (f"{TRAIN} --checkpoint-every 0", "argument --checkpoint-every: expected an integer >= 1, got 0"),
    ("train --hidden 8 --batch-size 0 --steps 5", "argument --batch-size: expected an integer >= 1, got 0"),
    (f"{TRAIN} --num-steps 0", "argument --num-steps: expected an integer >= 1, got 0"),
    (f"--threads 0 {TRAIN}", "argument --threads: expected an integer >= 1, got 0"),
    (f"{TRAIN} --init-std inf", "argument --init-std: expected a finite number, got inf"),
    (f"{TRAIN} --init-std -0.1", "argument --init-std: expected a finite number > 0, got -0.1"),
    (f"{TRAIN} --hidden 1000000000000", "argument --hidden:"),
    (f"{TRAIN} --hidden 0", "argument --hidden: expected an integer >= 1, got 0"),
    (f"{TRAIN} --clip nan", "argument --clip: expected a finite threshold > 0, or 0 for no clipping, got nan"),
    (f"{TRAIN} --clip -1", "argument --clip: expected a finite threshold > 0, or 0 for no clipping, got -1"),
    (f"{TRAIN} --lr 0", "argument --lr: expected a finite number > 0, got 0"),
    (f"{TRAIN} --lr nan", "argument --lr: expected a finite number, got nan"),
    (f"{TRAIN} --lr fast", "argument --lr: expected a number, got 'fast'"),
    (f"{TRAIN} --seed -1", "argument --seed: expected an integer in [0, 2**64), got -1"),
    (f"{TRAIN} --seed 1180591620717411303424", "argument --seed: expected an integer in [0, 2**64)"),
    (f"{TRAIN} --dtype float16", "argument --dtype: invalid choice: 'float16'"),
    (f"{TRAIN} --optimizer rmsprop", "argument --optimizer: invalid choice: 'rmsprop'"),
    (f"{TRAIN} --truncation bogus", "argument --truncation: expected 'full', 'regular:K'"),
    (f"{TRAIN} --truncation regular:4", "argument --num-steps: expected a multiple of k1 = 4"),
    (f"{TRAIN} --lr 1e30 --clip 0", "training diverged"),
    # data
    (f"{TRAIN} --max-tokens -5", "argument --max-tokens: expected an integer >= 1, got -5"),
    (f"{TRAIN} --max-tokens 5", "argument --batch-size/--num-steps:"),
    (f"{TRAIN} --batch-size 100000", "argument --batch-size/--num-steps:"),
    (f"{TRAIN} --valid-fraction 2", "argument --valid-fraction: expected a number in [0, 1), got 2"),
    (f"{TRAIN} --valid-fraction -0.5", "argument --valid-fraction: expected a number in [0, 1), got -0.5"),
    (f"{TRAIN} --text missing.txt", "argument --text: no such file: missing.txt"),
    (f"{TRAIN} --text latin1.txt", "argument --text: expected a UTF-8 file"),
    (f"{TRAIN} --text empty.txt", "argument --text: expected a non-empty file"),
    (f"{TRAIN} --text short.txt", "argument --batch-size/--num-steps:"),
    (f"{TRAIN} --text .", "argument --text:"),
    (f"{TRAIN} --timemachine --timemachine-url http://127.0.0.1:9/none", "argument --timemachine:"),
    # the final sample and the files written
    (f"{TRAIN} --temperature -1", "argument --temperature: expected a finite number >= 0, got -1"),
    (f"{TRAIN} --sample-length -1", "argument --sample-length: expected an integer >= 0, got -1"),
    (f"{TRAIN} --prefix ZZ~", "argument --prefix: expected characters of the model's vocabulary"),
    (f"{TRAIN} --log no-such-dir/log.jsonl", "argument --log: no such directory: no-such-dir"),
    (f"{TRAIN} --checkpoint .", "argument --checkpoint: expected a file name, got the directory ."),
    # resuming
    (f"{TRAIN} --resume no-trainer.safetensors", "argument --resume: no-trainer.safetensors has no trainer state"),
    (f"{TRAIN} --resume missing.safetensors", "argument --resume: no such file: missing.safetensors"),
    (f"{TRAIN} --resume corrupt.safetensors", "argument --resume: corrupt.safetensors is corrupt"),
    # generate
    ("generate --prefix a --length -3", "argument --length: expected an integer >= 0, got -3"),
    ("generate --prefix a --temperature -1", "argument --temperature: expected a finite number >= 0, got -1"),
    ("generate --prefix a --temperature inf", "argument --temperature: expected a finite number, got inf"),
    ("generate --prefix a --seed 1.5", "argument --seed: expected an integer, got '1.5'"),
    ("generate --checkpoint no-trainer.safetensors", "the following arguments are required: --prefix"),
    ("generate --checkpoint missing.safetensors --prefix a", "argument --checkpoint: no such file"),
    ("generate --checkpoint corrupt.safetensors --prefix a", "argument --checkpoint: corrupt.safetensors is corrupt"),
    ("generate --checkpoint garbage.safetensors --prefix a", "argument --checkpoint: garbage.safetensors is not"),
    ("generate --checkpoint . --prefix a", "argument --checkpoint:"),
    ("generate --checkpoint no-vocab.safetensors --prefix a", "argument --checkpoint: no-vocab.safetensors has no"),
    ("generate --checkpoint nan.safetensors --prefix a", "argument --checkpoint: expected finite parameters"),
    ("generate --checkpoint no-trainer.safetensors --prefix xyz", "argument --prefix: expected characters"),
    ("generate --checkpoint no-trainer.safetensors --prefix ''", "argument --prefix: expected at least one"),
    # compare, gradcheck, demo, the top level
    ("compare --hidden 8 --epochs 0", "argument --epochs: expected an integer >= 1, got 0"),
    ("compare --hidden 8 --strategies full bogus", "argument --strategies: expected 'full'"),
    ("compare --task text --hidden 8 --batch-size 100000 --epochs 1", "argument --batch-size/--num-steps:"),
    ("compare --task text --strategies regular:4", "argument --num-steps: expected a multiple of k1 = 4"),
    ("compare --task text --lag 5", "argument --lag: expected --task recall or adding, got --task text"),
    ("compare --task recall --text README.md", "argument --text: applies to --task text, got --task recall"),
    ("compare --epochs 3", "argument --epochs: applies to --task text, got --task recall"),
    ("compare --task adding --num-steps 5", "argument --num-steps: applies to --task text, got --task adding"),
    ("compare --task bogus", "argument --task: invalid choice: 'bogus'"),
    ("compare --lag 0", "argument --lag: expected an integer >= 1, got 0"),
    ("compare --lag 10 --length 10", "argument --length: expected a sequence longer than lag = 10 steps, got 10"),
    ("compare --symbols 1", "argument --symbols: expected an integer >= 2, got 1"),
    ("compare --plot no-such-dir/c.png --steps 1", "argument --plot: no such directory: no-such-dir"),
    (f"{TRAIN} --plot no-such-dir/curve.png", "argument --plot: no such directory: no-such-dir"),
    ("gradcheck --batch 0", "argument --batch: expected an integer >= 1, got 0"),
    ("gradcheck --num-steps -2", "argument --num-steps: expected an integer >= 1, got -2"),
    ("gradcheck --activation sigmoid", "argument --activation: invalid choice: 'sigmoid'"),
    ("demo --seed x", "argument --seed: expected an integer, got 'x'"),
    ("bogus", "argument command: invalid choice: 'bogus'"),
    ("", "the following arguments are required: command"),
    (f"{TRAIN} --no-such-flag", "unrecognized arguments: --no-such-flag"),
]


def check_one_line(err: str, expected: str) -> None:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    assert lines[0].startswith("rnnbptt") and ": error: " in lines[0], err
    assert expected in lines[0], err


@pytest.mark.parametrize("command,expected", MISTAKES, ids=[c for c, _ in MISTAKES])
def test_mistake_is_one_line_and_exit_code_2(files, capsys, command, expected):
    code = main(shlex.split(command))
    captured = capsys.readouterr()
    assert code == 2, captured
    check_one_line(captured.err, expected)
    assert "Traceback" not in captured.out


def test_the_command_is_named(files, capsys):
    assert main(shlex.split(f"{TRAIN} --epochs 0")) == 2
    assert capsys.readouterr().err.startswith("rnnbptt train: error: argument --epochs:")
    assert main(["--threads", "0", "demo"]) == 2
    assert capsys.readouterr().err.startswith("rnnbptt: error: argument --threads:")


def test_clip_zero_still_means_no_clipping(files, capsys):
    assert main(shlex.split(f"{TRAIN} --clip 0")) == 0
    loaded = checkpoint.load(files / "rnnbptt-checkpoint.safetensors")
    assert loaded.trainer["clip"] is None


def test_help_still_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--checkpoint-every" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command,expected",
    [
        (f"{TRAIN} --epochs 0", "rnnbptt train: error: argument --epochs: expected an integer >= 1, got 0"),
        (f"{TRAIN} --resume no-trainer.safetensors", "argument --resume: no-trainer.safetensors has no trainer"),
        ("generate --checkpoint nan.safetensors --prefix a", "argument --checkpoint: expected finite parameters"),
    ],
)
def test_no_traceback_reaches_the_terminal(files, command, expected):
    result = subprocess.run(
        [sys.executable, "-m", "rnnbptt", *shlex.split(command)],
        cwd=files, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    check_one_line(result.stderr, expected)
    assert "Traceback" not in result.stdout
