"""``rnnbptt train --resume FILE``: the checkpoint remembers its text, its settings and its plan,
so the file alone continues the run, in place, bit for bit; a flag that contradicts it is one
line and exit 2; ``--lr`` and ``--clip`` change the run; ``--more-epochs N`` adds N."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnbptt import checkpoint as ckpt
from rnnbptt import data
from rnnbptt.cli import main

SMALL = ["--hidden", "16", "--batch-size", "4", "--num-steps", "10", "--sample-length", "5", "--temperature", "0"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(data.default_corpus()[:20000], encoding="utf-8")
    return path


def run(tmp_path, *args):
    command = [sys.executable, "-m", "rnnbptt", "train", *args]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_checkpoint(process, target):
    """SIGKILL ``process`` as soon as its first checkpoint ``target`` exists."""
    try:
        deadline = time.monotonic() + 30
        while not target.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint within 30 s"
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL


def cli(capsys, *args):
    code = main(["train", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_same_run(a_path, b_path):
    a, b = ckpt.load(a_path), ckpt.load(b_path)
    assert np.array_equal(a.model.params, b.model.params)
    for name in ("m", "v"):
        assert np.array_equal(a.optimizer_state[name], b.optimizer_state[name])
    keys = ("epoch", "step", "train_perplexity", "valid_perplexity")
    assert [[r[k] for k in keys] for r in a.trainer["history"]] == [[r[k] for k in keys] for r in b.trainer["history"]]


def test_a_killed_run_resumes_from_the_file_alone_bit_for_bit(tmp_path, text):
    common = [*SMALL, "--text", str(text), "--epochs", "25", "--truncation", "regular:5,10", "--lr", "0.01"]
    target = tmp_path / "run.safetensors"
    kill_after_checkpoint(run(tmp_path, *common, "--checkpoint-every", "1", "--checkpoint", target.name), target)
    left = ckpt.load(target)
    assert 0 < left.trainer["epoch"] < 25
    assert left.trainer["data"] == {
        "source": "text", "path": str(text.resolve()), "size": text.stat().st_size,
        "sha256": __import__("hashlib").sha256(text.read_bytes()).hexdigest(),
        "d2l": False, "max_tokens": None, "valid_fraction": 0.1,
    }

    resumed = run(tmp_path, "--resume", target.name)  # nothing else: the file says it all
    reference = run(tmp_path, *common, "--checkpoint-every", "1", "--checkpoint", "reference.safetensors")
    for process in (resumed, reference):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert ckpt.load(target).trainer["epoch"] == 25  # written in place
    assert_same_run(target, tmp_path / "reference.safetensors")


@pytest.fixture
def trained(tmp_path, text, capsys):
    path = tmp_path / "done.safetensors"
    code, out, err = cli(capsys, *SMALL, "--text", str(text), "--epochs", "2", "--checkpoint", str(path))
    assert code == 0, err
    return path


@pytest.mark.parametrize("flag,value,expected", [
    ("--hidden", "32", "argument --hidden: expected 16 (what {path} was trained with; it cannot change on resume), "
                       "got 32"),
    ("--truncation", "regular:5", "argument --truncation: expected full (what {path} was trained with"),
    ("--optimizer", "sgd", "argument --optimizer: expected adam"),
    ("--batch-size", "8", "argument --batch-size: expected 4"),
    ("--dtype", "float64", "argument --dtype: expected float32"),
    ("--d2l", None, "argument --d2l: {path} was trained with no --d2l, which cannot change on resume"),
    ("--max-tokens", "1000", "argument --max-tokens: {path} was trained with no --max-tokens"),
    ("--batch", "8", "argument --batch-size: expected 4"),  # argparse's abbreviation, seen as given
    ("--init-std", "0.01", "argument --init-std: expected no initialization when resuming"),
])
def test_a_flag_that_contradicts_the_checkpoint_is_named(capsys, trained, flag, value, expected):
    args = ["--resume", str(trained), "--more-epochs", "1", flag, *([value] if value is not None else [])]
    code, _, err = cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected.format(path=trained) in lines[0], err


def test_the_same_values_given_again_are_fine_and_lr_and_clip_change_the_run(capsys, trained):
    code, out, err = cli(capsys, "--resume", str(trained), "--more-epochs", "1", "--hidden", "16", "--lr", "0.001",
                         "--clip", "0")
    assert code == 0, err
    assert "changed on resume: lr 0.002 -> 0.001, clip 1.0 -> None" in out
    state = ckpt.load(trained).trainer
    assert state["epoch"] == 3 and state["base_lr"] == 0.001 and state["clip"] is None


def test_more_epochs_adds_and_epochs_is_the_total(capsys, trained):
    code, _, err = cli(capsys, "--resume", str(trained), "--more-epochs", "2")
    assert code == 0, err
    assert ckpt.load(trained).trainer["epoch"] == 4
    code, _, err = cli(capsys, "--resume", str(trained), "--epochs", "3")
    assert code == 2 and "argument --epochs: expected more than the 4 epochs" in err
    code, _, err = cli(capsys, "--resume", str(trained), "--epochs", "5")
    assert code == 0, err
    assert ckpt.load(trained).trainer["epoch"] == 5


def test_a_finished_run_says_how_to_go_on(capsys, trained):
    code, _, err = cli(capsys, "--resume", str(trained))
    assert code == 2 and "has finished its run (2 epochs" in err and "--more-epochs N" in err


def test_a_changed_or_missing_text_is_named(capsys, trained, text):
    text.write_text(text.read_text(encoding="utf-8") + "more", encoding="utf-8")
    code, _, err = cli(capsys, "--resume", str(trained), "--more-epochs", "1")
    assert code == 2 and f"was trained on {text.resolve()}, which has changed since" in err
    text.unlink()
    code, _, err = cli(capsys, "--resume", str(trained), "--more-epochs", "1")
    assert code == 2 and "which cannot be read" in err and "give --text" in err


def test_more_epochs_needs_resume(capsys):
    code, _, err = cli(capsys, "--more-epochs", "1")
    assert code == 2 and "argument --more-epochs: expected it with --resume" in err


def test_totals_that_train_nothing_and_an_empty_resume_are_mistakes(capsys, trained):
    code, _, err = cli(capsys, "--resume", str(trained), "--epochs", "2")
    assert code == 2 and "argument --epochs: expected more than the 2 epochs" in err
    state = ckpt.load(trained).trainer
    code, _, err = cli(capsys, "--resume", str(trained), "--steps", str(state["step"]))
    assert code == 2 and f"argument --steps: expected more than the {state['step']} steps" in err
    code, _, err = cli(capsys, "--resume", "", "--more-epochs", "1")
    assert code == 2 and "argument --resume: expected a checkpoint file, got an empty string" in err


@pytest.fixture
def series(tmp_path):
    """A noisy sine as train --data reads it: inputs and targets (the next value)."""
    rng = np.random.default_rng(0)
    s = np.sin(0.07 * np.arange(3001)) + 0.05 * rng.standard_normal(3001)
    path = tmp_path / "sine.npz"
    np.savez(path, inputs=s[:-1], targets=s[1:])
    return path


def test_a_killed_series_run_resumes_from_the_file_alone_bit_for_bit(tmp_path, series):
    """train --data: a dense stream with Regular(k1 < k2), so the checkpoint holds the carried
    state and the dense history; killed after a step checkpoint, continued by --resume FILE."""
    common = ["--data", str(series), "--hidden", "8", "--cell", "gru", "--batch-size", "4", "--num-steps", "10",
              "--epochs", "30", "--truncation", "regular:5,10", "--lr", "0.01", "--checkpoint-every-steps", "7"]
    target = tmp_path / "run.safetensors"
    kill_after_checkpoint(run(tmp_path, *common, "--checkpoint", target.name), target)
    left = ckpt.load(target)
    assert left.trainer["data"]["source"] == "npz" and left.trainer["data"]["path"] == str(series.resolve())
    assert left.trainer["step"] < 30 * 67
    resumed = run(tmp_path, "--resume", target.name)
    reference = run(tmp_path, *common, "--checkpoint", "reference.safetensors")
    outputs = []
    for process in (resumed, reference):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.append(out)
    assert "train 0.5*MSE" in outputs[1] and "valid 0.5*MSE" in outputs[1]
    a, b = ckpt.load(target), ckpt.load(tmp_path / "reference.safetensors")
    assert a.trainer["epoch"] == 30
    assert np.array_equal(a.model.params, b.model.params)
    keys = ("epoch", "step", "train_loss", "valid_loss")
    assert [[r[k] for k in keys] for r in a.trainer["history"]] == [[r[k] for k in keys] for r in b.trainer["history"]]


def test_the_series_summary_holds_the_held_out_loss(capsys, tmp_path, series):
    """The summary's held-out 0.5*MSE is Trainer.evaluate's on the file's last 10%, and its
    baseline 0.5*MSE of the training targets' mean, computed here."""
    import rnnbptt as rb
    from rnnbptt.datasets import DenseSeries

    path = tmp_path / "s.safetensors"
    code, out, err = cli(capsys, "--data", str(series), "--hidden", "8", "--epochs", "2", "--num-steps", "10",
                         "--batch-size", "4", "--checkpoint", str(path))
    assert code == 0, err
    arrays = np.load(series)
    inputs, targets = arrays["inputs"].astype(np.float32)[:, None], arrays["targets"].astype(np.float32)[:, None]
    valid = DenseSeries(inputs[2700:], targets[2700:])
    trainer = rb.Trainer.resume(path)
    baseline = 0.5 * np.mean((targets[2700:] - targets[:2700].mean()) ** 2)
    assert f"Held-out 0.5*MSE {trainer.evaluate(valid):.6g}, against {baseline:.6g}" in out


@pytest.mark.parametrize("arrays,expected", [
    ({"inputs": np.zeros(50)}, "argument --data: expected an array 'targets' in {path}, got none"),
    ({"inputs": np.zeros(50), "targets": np.zeros(49)},
     "argument --data: expected 'targets' of 50 steps (as 'inputs') in {path}, got 49"),
    ({"inputs": np.zeros(50), "targets": np.full(50, np.nan)},
     "argument --data: expected finite values in 'targets' of {path} (as float32), got nan at (0, 0)"),
    ({"inputs": np.zeros(50), "targets": np.zeros(50), "labels": np.zeros(50)},
     "argument --data: expected the arrays inputs, targets, valid_inputs, valid_targets in {path}, got 'labels'"),
    ({"inputs": np.zeros(50), "targets": np.zeros(50), "valid_inputs": np.zeros(5)},
     "argument --data: expected 'valid_inputs' and 'valid_targets' together in {path}, got one"),
    ({"inputs": np.zeros((50, 2, 2)), "targets": np.zeros(50)},
     "argument --data: expected 'inputs' in {path} to be a non-empty 1-D or 2-D array of numbers (steps, "
     "features), got shape (50, 2, 2) and dtype float64"),
    ({"inputs": np.zeros(50), "targets": np.zeros(50)},
     "argument --batch-size/--num-steps: --batch-size 32 with --num-steps 35 needs at least 1155 training steps, "
     "--data has 45 (use smaller values)"),
])
def test_a_bad_data_file_is_one_line(capsys, tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code, out, err = cli(capsys, "--data", str(path))
    assert code == 2
    assert err.strip() == "rnnbptt train: error: " + expected.format(path=path), err


def test_data_files_that_are_not_npz_and_text_flags_are_refused(capsys, tmp_path, series):
    not_npz = tmp_path / "x.npz"
    not_npz.write_text("hello")
    np.save(tmp_path / "one.npy", np.zeros(5))
    for args, expected in [
        (["--data", str(tmp_path / "missing.npz")], f"argument --data: no such file: {tmp_path / 'missing.npz'}"),
        (["--data", str(not_npz)], "argument --data: expected an .npz file (numpy.savez) with arrays 'inputs' and "
                                   f"'targets', got {not_npz}"),
        (["--data", str(tmp_path / "one.npy")], "argument --data: expected an .npz file (numpy.savez) with arrays "
                                                "'inputs' and 'targets', got "
                                                f"{tmp_path / 'one.npy'} (a single array (.npy), not an archive"),
        (["--data", str(series), "--prefix", "ab"], "argument --prefix: applies to text, not to --data"),
        (["--data", str(series), "--text", str(series)], "argument --text: applies to text, not to --data"),
    ]:
        code, out, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert err.strip().startswith("rnnbptt train: error: " + expected), err
