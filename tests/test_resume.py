"""Resuming is exact at any step, not only at epoch boundaries: in process, after a crash in
the middle of an epoch, and after a real `rnnbptt train` process is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt import data

TOTAL = 300  # optimizer steps; an epoch of the built-in corpus is about 118 chunks of 4 x 10
INTERRUPT = 170  # in the middle of the second epoch

def corpus():
    text = data.default_corpus()[:4758]  # its first essay: short epochs
    vocab = data.Vocab.from_text(text)
    return vocab, vocab.encode(text)


def make_trainer(vocab, optimizer, iterator, truncation, lr_schedule="constant"):
    model = rb.RNN(len(vocab), 16, len(vocab), seed=4, init_std=0.1)
    return rb.Trainer(
        model, vocab=vocab, optimizer=optimizer, lr=1.0 if optimizer == "sgd" else 0.01,
        lr_schedule=lr_schedule, truncation=truncation, iterator=iterator, batch_size=4, num_steps=10, seed=7,
    )


def assert_same_run(a: rb.Trainer, b: rb.Trainer) -> None:
    assert a.step == b.step and a.epoch == b.epoch
    assert np.array_equal(a.model.params, b.model.params)
    assert a.optimizer.config() == b.optimizer.config()
    for name, value in a.optimizer.state().items():
        assert np.array_equal(value, b.optimizer.state()[name]), name
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    keys = ("epoch", "step", "train_perplexity", "grad_norm", "lr")
    assert [[getattr(r, k) for k in keys] for r in a.history] == [[getattr(r, k) for k in keys] for r in b.history]


CASES = [
    (optimizer, iterator, truncation)
    for optimizer in ("sgd", "adam")
    for iterator in ("sequential", "random")
    for truncation in ("full", "regular:5,10", "randomized:0.8")
]


@pytest.mark.parametrize("optimizer,iterator,truncation", CASES)
def test_resume_in_the_middle_of_an_epoch_is_exact(tmp_path, optimizer, iterator, truncation):
    vocab, ids = corpus()
    uninterrupted = make_trainer(vocab, optimizer, iterator, truncation)
    uninterrupted.fit(ids, steps=TOTAL)

    # The same trainer continuing: the partial epoch is finished, not counted whole.
    continued = make_trainer(vocab, optimizer, iterator, truncation)
    continued.fit(ids, steps=INTERRUPT)
    assert continued.step == INTERRUPT and continued.epoch == 1
    path = continued.save(tmp_path / "mid.safetensors")
    continued.fit(ids, steps=TOTAL)
    assert_same_run(continued, uninterrupted)

    # A trainer resumed from the mid-epoch checkpoint.
    resumed = rb.Trainer.resume(path)
    assert resumed.step == INTERRUPT and resumed.epoch == 1
    resumed.fit(ids, steps=TOTAL)
    assert_same_run(resumed, uninterrupted)


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_a_crash_after_a_step_checkpoint_resumes_exactly(tmp_path, iterator):
    """checkpoint_every_steps writes mid-epoch checkpoints; a crash between two of them loses
    only the steps since the last one, and the cosine schedule planned for the same total is
    kept."""
    vocab, ids = corpus()
    args = (vocab, "adam", iterator, "regular:5,10", "cosine")
    uninterrupted = make_trainer(*args)
    uninterrupted.fit(ids, steps=TOTAL)

    crashing = make_trainer(*args)
    step = crashing.optimizer.step

    def step_then_crash(params, grads):
        if crashing.step == 190:
            raise KeyboardInterrupt
        step(params, grads)

    crashing.optimizer.step = step_then_crash
    path = tmp_path / "run.safetensors"
    with pytest.raises(KeyboardInterrupt):
        crashing.fit(ids, steps=TOTAL, checkpoint=path, checkpoint_every=100, checkpoint_every_steps=40)
    loaded = ckpt.load(path)
    assert loaded.trainer["step"] == 160 and loaded.trainer["epoch_in_progress"]["chunks"] > 0
    assert bool(loaded.trainer_state) == (iterator == "sequential")
    resumed = rb.Trainer.resume(path)
    resumed.fit(ids, steps=TOTAL)
    assert_same_run(resumed, uninterrupted)


def test_resuming_mid_epoch_on_another_corpus_is_refused(tmp_path):
    vocab, ids = corpus()
    trainer = make_trainer(vocab, "sgd", "random", "full")
    trainer.fit(ids, steps=INTERRUPT)
    path = trainer.save(tmp_path / "mid.safetensors")
    with pytest.raises(ValueError, match="corpus: expected the corpus epoch 2 was interrupted on"):
        rb.Trainer.resume(path).fit(ids[:-1], steps=TOTAL)


# ---- a real process, killed --------------------------------------------------------------
def train(tmp_path, *args):
    command = [sys.executable, "-m", "rnnbptt", "train", "--hidden", "16", "--batch-size", "4", "--num-steps", "10",
               "--sample-length", "5", *args]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def params_of(path):
    return ckpt.load(path).model.params


@pytest.mark.parametrize(
    "iterator,every",
    [("sequential", ["--checkpoint-every", "1"]), ("random", ["--checkpoint-every-steps", "25"]),
     ("sequential", ["--checkpoint-every-steps", "25"])],
    ids=["sequential-epoch-checkpoints", "random-step-checkpoints", "sequential-step-checkpoints"],
)
def test_a_killed_training_process_resumes_to_the_uninterrupted_result(tmp_path, iterator, every):
    common = ["--iterator", iterator, "--optimizer", "adam", "--lr", "0.01", "--truncation", "regular:5,10"]
    target = tmp_path / "run.safetensors"
    killed = train(tmp_path, *common, *every, "--steps", "1000000", "--checkpoint", target.name)
    try:
        deadline = time.monotonic() + 20
        while not target.exists():
            assert killed.poll() is None, killed.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint within 20 s"
            time.sleep(0.005)
        time.sleep(0.02)  # let it run into the next epoch (or between step checkpoints)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.kill()
        killed.communicate()
    assert killed.returncode == -signal.SIGKILL

    left = ckpt.load(target)  # the killed run's checkpoint is whole
    step = left.trainer["step"]
    assert 0 < step < 1000000
    if "--checkpoint-every-steps" in every:
        assert left.trainer["epoch_in_progress"] is not None, "expected a mid-epoch checkpoint"
    total = str(step + 150)
    saved = tmp_path / "killed.safetensors"
    saved.write_bytes(target.read_bytes())

    resumed = train(tmp_path, *every, "--resume", target.name, "--steps", total, "--checkpoint", target.name)
    reference = train(tmp_path, *common, *every, "--steps", total, "--checkpoint", "reference.safetensors")
    for process in (resumed, reference):
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    assert ckpt.load(target).trainer["step"] == int(total)
    assert np.array_equal(params_of(target), params_of(tmp_path / "reference.safetensors"))
    a, b = ckpt.load(target), ckpt.load(tmp_path / "reference.safetensors")
    for name in ("m", "v"):
        assert np.array_equal(a.optimizer_state[name], b.optimizer_state[name])
    history = [(r["epoch"], r["step"], r["train_perplexity"]) for r in a.trainer["history"]]
    assert history == [(r["epoch"], r["step"], r["train_perplexity"]) for r in b.trainer["history"]]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # stale temp files removed
    assert json.loads(json.dumps(left.trainer))["step"] == step


def test_the_runner_state_travels_through_the_checkpoint(tmp_path):
    """The carried state and the Regular(5, 10) history saved mid-epoch are the runner's own."""
    vocab, ids = corpus()
    trainer = make_trainer(vocab, "sgd", "sequential", "regular:5,10")
    trainer.fit(ids, steps=INTERRUPT)
    inputs, states = trainer.runner.history
    assert inputs.shape == (5, 4) and states.shape == (6, 4, 16)
    assert np.array_equal(states[-1], trainer.runner.state)
    loaded = ckpt.load(trainer.save(tmp_path / "mid.safetensors"))
    assert np.array_equal(loaded.trainer_state["runner.state"], trainer.runner.state)
    assert np.array_equal(loaded.trainer_state["runner.history_inputs"], inputs)
    assert np.array_equal(loaded.trainer_state["runner.history_states"], states)


@pytest.mark.parametrize("cell,num_layers,truncation", [("lstm", 2, "regular:5,10"), ("gru", 2, "full"),
                                                        ("gru", 1, "regular:5,10"), ("elman", 3, "randomized:0.8")])
def test_resume_of_gated_and_stacked_models_is_exact(tmp_path, cell, num_layers, truncation):
    """The checkpoint records the cell and the layers, and mid-epoch the whole state of every
    layer and, for Regular(k1 < k2), the history of every layer: the resumed run is the
    uninterrupted one, bit for bit."""
    vocab, ids = corpus()

    def make():
        model = rb.RNN(len(vocab), 12, len(vocab), seed=4, init_std=0.1, cell=cell, num_layers=num_layers)
        return rb.Trainer(model, vocab=vocab, optimizer="adam", lr=0.01, lr_schedule="constant",
                          truncation=truncation, batch_size=4, num_steps=10, seed=7)

    uninterrupted = make()
    uninterrupted.fit(ids, steps=160)
    continued = make()
    continued.fit(ids, steps=130)
    path = continued.save(tmp_path / "mid.safetensors")
    stored = rb.checkpoint.load(path)
    assert (stored.model.cell, stored.model.num_layers) == (cell, num_layers)
    assert stored.trainer_state["runner.state"].shape == continued.model.state_shape(4)
    resumed = rb.Trainer.resume(path)
    resumed.fit(ids, steps=160)
    assert_same_run(resumed, uninterrupted)


def test_a_runner_state_that_does_not_fit_the_trainer_entry_is_refused_at_resume(tmp_path):
    """A checkpoint whose runner history is longer than its truncation keeps (a forged or
    mixed-up file) is refused when resumed, naming the file, not at the first step."""
    vocab, ids = corpus()
    model = rb.RNN(len(vocab), 8, len(vocab), seed=4, cell="gru", num_layers=2)
    trainer = rb.Trainer(model, vocab=vocab, truncation="regular:2,5", batch_size=4, num_steps=10, seed=7)
    trainer.fit(ids, steps=5)
    stored = rb.checkpoint.load(trainer.save(tmp_path / "mid.safetensors"))
    assert stored.trainer_state["runner.history_inputs"].shape[0] == 3
    stored.trainer["truncation"] = "regular:2,4"
    forged = rb.checkpoint.save(tmp_path / "forged.safetensors", stored)
    with pytest.raises(rb.CheckpointError, match=r"checkpoint: .*forged.safetensors has a runner state that does not "
                       r"fit its trainer entry \(history: expected 0 to 2 steps for regular:2,4, got 3\)"):
        rb.Trainer.resume(forged)
