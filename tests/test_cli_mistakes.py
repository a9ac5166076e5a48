"""Every command-line mistake is one line on stderr naming the flag, exit code 2, no traceback."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint
from rnnbptt.cli import main

from conftest import LAUNCH_VARIABLES, FakeMPI

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
    (tmp_path / "surrogate.txt").write_bytes(b"ab\xed\xa0\x80 " * 50)  # U+D800 spelled as UTF-8 would
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("abcdefghij")
    return tmp_path


# (command, text the single error line must contain)
MISTAKES = [
    # documents
    (f"{TRAIN} --documents --timemachine", "argument --timemachine: expected --text or the built-in corpus with "
                                           "--documents"),
    (f"{TRAIN} --documents=XX", "argument --documents: expected no separator for the built-in corpus"),
    (f"{TRAIN} --documents ''", "argument --documents: expected a non-empty line, got ''"),
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
    (f"{TRAIN} --text surrogate.txt", "argument --text: expected a UTF-8 file"),
    (f"{TRAIN} --text empty.txt", "argument --text: expected a non-empty file"),
    (f"{TRAIN} --text short.txt", "argument --batch-size/--num-steps:"),
    (f"{TRAIN} --text .", "argument --text:"),
    (f"{TRAIN} --timemachine --timemachine-url http://127.0.0.1:9/none", "argument --timemachine:"),
    # the final sample and the files written
    (f"{TRAIN} --temperature -1", "argument --temperature: expected a finite number >= 0, got -1"),
    (f"{TRAIN} --sample-length -1", "argument --sample-length: expected an integer >= 0, got -1"),
    (f"{TRAIN} --prefix ZZ~", "argument --prefix: expected characters of the model's vocabulary"),
    # bytes that are not UTF-8 on a command line arrive as lone surrogates (surrogateescape)
    (f"{TRAIN} --d2l --prefix ab\udcff", "argument --prefix: expected text that UTF-8 can encode, got the lone "
     "surrogate U+DCFF at index 2"),
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
    ("generate --checkpoint no-trainer.safetensors --prefix \ud800a", "argument --prefix: expected text that UTF-8 "
     "can encode, got the lone surrogate U+D800 at index 0"),
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
    ("compare --bias-draws 8", "argument --bias-draws: applies with --bias, got no --bias"),
    ("compare --bias --bias-draws 1", "argument --bias-draws: expected an integer >= 2, got 1"),
    ("compare --lag 0", "argument --lag: expected an integer >= 1, got 0"),
    ("compare --lag 10 --length 10", "argument --length: expected a sequence longer than lag = 10 steps, got 10"),
    ("compare --symbols 1", "argument --symbols: expected an integer >= 2, got 1"),
    ("compare --task adding --symbols 4", "argument --symbols: applies to --task recall, got --task adding"),
    ("compare --task adding --symbols 4 --lag 3 --steps 1 --hidden 4 --plot ''",
     "argument --symbols: applies to --task recall, got --task adding"),
    ("compare --task text --symbols 4", "argument --symbols: expected --task recall or adding, got --task text"),
    ("compare --plot c.notaformat --steps 1", "argument --plot: expected a file name ending in an image format "
     "that matplotlib writes"),
    ("compare --task text --plot text.notaformat --epochs 1", "argument --plot: expected a file name ending in"),
    ("compare --plot c --steps 1", "argument --plot: expected a file name ending in an image format that "
     "matplotlib writes"),
    (f"{TRAIN} --plot curve.notaformat", "argument --plot: expected a file name ending in an image format that "
     "matplotlib writes"),
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


def test_version_prints_the_packages_version(capsys):
    """`rnnbptt --version` said "the following arguments are required: command"."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rnnbptt {rb.__version__}"


@pytest.mark.parametrize(
    "command,expected",
    [
        (f"{TRAIN} --epochs 0", "rnnbptt train: error: argument --epochs: expected an integer >= 1, got 0"),
        (f"{TRAIN} --resume no-trainer.safetensors", "argument --resume: no-trainer.safetensors has no trainer"),
        ("generate --checkpoint nan.safetensors --prefix a", "argument --checkpoint: expected finite parameters"),
        # the byte 0xff on the command line, which is not UTF-8
        ("generate --checkpoint no-trainer.safetensors --prefix ab\udcff", "argument --prefix: expected text that "
         "UTF-8 can encode, got the lone surrogate U+DCFF at index 2"),
        (f"{TRAIN} --plot c.notaformat", "argument --plot: expected a file name ending in an image format"),
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


# ---- --plot, before the run ------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [f"{TRAIN} --plot curve.notaformat", f"{TRAIN} --plot curve", "compare --steps 1 --hidden 4 --plot c.notaformat",
     "compare --task text --epochs 1 --hidden 4 --max-tokens 500 --plot c.notaformat"],
)
def test_a_plot_format_that_matplotlib_does_not_write_stops_the_run_before_it_starts(files, capsys, command):
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()  # the oracle: matplotlib's own list
    assert main(shlex.split(command)) == 2
    captured = capsys.readouterr()
    check_one_line(captured.err, "argument --plot: expected a file name ending in an image format")
    assert all(name in captured.err for name in formats)
    assert captured.out == ""  # nothing ran
    assert not (files / "rnnbptt-checkpoint.safetensors").exists()


@pytest.mark.parametrize("name", ["curve.png", "curve.PDF", "curve.svg"])
def test_a_plot_format_that_matplotlib_writes_is_accepted(files, capsys, name):
    assert main(shlex.split(f"{TRAIN} --plot {name}")) == 0
    assert (files / name).stat().st_size > 0


def test_an_explicit_compare_plot_without_matplotlib_is_a_mistake_before_the_run(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert main(shlex.split("compare --steps 1 --hidden 4 --plot c.png")) == 2
    captured = capsys.readouterr()
    check_one_line(captured.err, "argument --plot: plots need matplotlib, from the 'plot' extra")
    assert captured.out == ""
    # The default plot is drawn when it can be; without matplotlib the run goes on without it.
    assert main(shlex.split("compare --lag 2 --steps 1 --hidden 4 --strategies full")) == 0
    assert "no plot: plots need matplotlib" in capsys.readouterr().out


# ---- launched by MPI, Hydra or Slurm ---------------------------------------------------------
#: One launcher's environment for a job of 2 processes, as seen by rank 0.
LAUNCHED = {
    "open-mpi": ("mpirun", "OMPI_COMM_WORLD_SIZE", {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}),
    "hydra": ("mpiexec", "PMI_SIZE", {"PMI_SIZE": "2", "PMI_RANK": "0"}),
    "mvapich": ("mpirun", "MV2_COMM_WORLD_SIZE", {"MV2_COMM_WORLD_SIZE": "2", "MV2_COMM_WORLD_RANK": "0"}),
    "srun": ("srun", "SLURM_STEP_NUM_TASKS", {"SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "0",
                                                "SLURM_STEP_ID": "0", "SLURM_JOB_ID": "17"}),
    "srun-old": ("srun", "SLURM_NTASKS", {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_STEPID": "3"}),
}


@pytest.fixture
def no_launcher(monkeypatch):
    """An environment that no launcher has touched."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("launch", list(LAUNCHED))
def test_a_launch_that_mpi_does_not_see_is_refused_on_one_line(files, no_launcher, capsys, launch):
    """The launcher's environment says 2 processes, MPI's world has 1 (mpi4py built for another MPI,
    or variables set by hand): each would train alone."""
    launcher, variable, environment = LAUNCHED[launch]
    for name, value in environment.items():
        no_launcher.setenv(name, value)
    no_launcher.setattr(rb.distributed, "import_mpi", lambda: FakeMPI(1))
    assert main(shlex.split(TRAIN)) == 2
    captured = capsys.readouterr()
    check_one_line(captured.err, f"MPI.COMM_WORLD: expected 2 processes, as {launcher}'s {variable}=2 says, got 1")
    assert f"unset {variable}" in captured.err and "Fake MPI 1.0" in captured.err
    assert captured.out == "" and not (files / "rnnbptt-checkpoint.safetensors").exists()


@pytest.mark.parametrize("launch", list(LAUNCHED))
def test_a_launch_without_mpi4py_is_refused_on_one_line(files, no_launcher, capsys, launch):
    launcher, variable, environment = LAUNCHED[launch]
    for name, value in environment.items():
        no_launcher.setenv(name, value)
    no_launcher.setitem(sys.modules, "mpi4py", None)  # as if not installed
    assert main(shlex.split(TRAIN)) == 2
    check_one_line(capsys.readouterr().err, f"launched by {launcher} as 2 processes ({variable}=2), but MPI: mpi4py")


@pytest.mark.parametrize(
    "environment",
    [
        {"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_JOB_ID": "17"},  # an sbatch script
        {"SLURM_NTASKS": "4", "SLURM_JOB_ID": "17"},  # an salloc shell
        {"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_STEP_ID": "4294967291"},  # Slurm's batch step
    ],
)
def test_a_slurm_allocation_outside_srun_trains_one_process(files, no_launcher, capsys, environment):
    for name, value in environment.items():
        no_launcher.setenv(name, value)

    def no_mpi():
        raise AssertionError("MPI imported outside a launched job")

    no_launcher.setattr(rb.distributed, "import_mpi", no_mpi)
    assert main(shlex.split(TRAIN)) == 0
    assert "data parallel" not in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs mpi4py (the mpi extra)")
def test_the_launcher_variables_without_the_launcher_are_refused_with_the_real_mpi(files):
    """Issue 23: OMPI_COMM_WORLD_SIZE=2 without mpirun gave 'data parallel on 1 processes' and
    exit 0. Here the real mpi4py initializes a world of 1 process, in a subprocess."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_", "SLURM_"))}
    environment.update(OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="0", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "rnnbptt", *shlex.split(TRAIN)],
        cwd=files, capture_output=True, text=True, timeout=120, env=environment,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    check_one_line(result.stderr, "MPI.COMM_WORLD: expected 2 processes, as mpirun's OMPI_COMM_WORLD_SIZE=2 says, "
                                  "got 1")
    assert "data parallel" not in result.stdout
