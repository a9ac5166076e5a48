"""Checkpoints: one documented safetensors format, atomic writes, clear errors, exact resume."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt import data


def small_corpus():
    text = data.default_corpus()
    vocab = data.Vocab.from_text(text)
    return vocab, vocab.encode(text)


def make_trainer(vocab, optimizer="sgd", truncation="full", iterator="sequential", seed=3):
    model = rb.RNN(len(vocab), 24, len(vocab), dtype=np.float64, seed=seed, init_std=0.1)
    lr = 1.0 if optimizer == "sgd" else 0.01
    return rb.Trainer(model, vocab=vocab, optimizer=optimizer, lr=lr, truncation=truncation,
                      iterator=iterator, batch_size=8, num_steps=10, seed=seed, lr_schedule="cosine")


def test_round_trip_and_safetensors_layout(tmp_path):
    vocab, corpus = small_corpus()
    trainer = make_trainer(vocab, optimizer="adam")
    trainer.fit(corpus, 2)
    path = trainer.save(tmp_path / "model.safetensors")
    loaded = ckpt.load(path)
    assert loaded.vocab == vocab
    assert loaded.model.config() == trainer.model.config()
    assert np.array_equal(loaded.model.params, trainer.model.params)
    assert np.array_equal(loaded.optimizer_state["m"], trainer.optimizer.state()["m"])
    assert loaded.optimizer["step_count"] == trainer.step
    # Readable by the safetensors package alone, under documented names.
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    assert np.array_equal(tensors["W_hh"], trainer.model.W_hh)
    assert set(tensors) == {"W_hx", "W_hh", "b_h", "W_qh", "b_q", "optimizer.m", "optimizer.v"}
    header_size = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_size])
    assert header["__metadata__"]["format"] == "rnnbptt-checkpoint"
    assert header["__metadata__"]["format_version"] == "1"


def test_damaged_files_give_clear_errors(tmp_path):
    vocab, corpus = small_corpus()
    trainer = make_trainer(vocab)
    path = trainer.save(tmp_path / "good.safetensors")
    payload = path.read_bytes()

    corrupt = tmp_path / "corrupt.safetensors"
    flipped = bytearray(payload)
    flipped[-5] ^= 0xFF  # inside the tensor data, invisible to the header
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(rb.CheckpointError, match="is corrupt"):
        ckpt.load(corrupt)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(rb.CheckpointError, match="not a readable safetensors file"):
        ckpt.load(truncated)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(rb.CheckpointError, match="not a readable safetensors file"):
        ckpt.load(garbage)

    with pytest.raises(rb.CheckpointError, match="no such file"):
        ckpt.load(tmp_path / "missing.safetensors")


def test_version_and_format_mismatch(tmp_path):
    from safetensors.numpy import save_file

    tensors = {"W_hh": np.zeros((2, 2), dtype=np.float32)}
    metadata = {"format": "rnnbptt-checkpoint", "format_version": "2"}
    save_file(tensors, str(tmp_path / "v2.safetensors"), metadata=metadata)
    with pytest.raises(rb.CheckpointError, match="expected format version 1 .* got 2"):
        ckpt.load(tmp_path / "v2.safetensors")
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(rb.CheckpointError, match="expected format 'rnnbptt-checkpoint'"):
        ckpt.load(tmp_path / "other.safetensors")


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    vocab, corpus = small_corpus()
    trainer = make_trainer(vocab)
    path = trainer.save(tmp_path / "model.safetensors")
    before = path.read_bytes()
    trainer.model.params[:] += 1.0

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temp files left


@pytest.mark.parametrize(
    "optimizer,truncation,iterator",
    [("sgd", "full", "sequential"), ("adam", "randomized:0.8", "sequential"), ("sgd", "regular:5,8", "random")],
)
def test_resume_reproduces_the_uninterrupted_run(tmp_path, optimizer, truncation, iterator):
    vocab, corpus = small_corpus()
    uninterrupted = make_trainer(vocab, optimizer, truncation, iterator)
    uninterrupted.fit(corpus, 5)
    expected = [r.train_perplexity for r in uninterrupted.history]

    class Interrupted(Exception):
        pass

    def crash_after_two(record):
        if record.epoch == 2:
            raise Interrupted

    first = make_trainer(vocab, optimizer, truncation, iterator)
    with pytest.raises(Interrupted):
        first.fit(corpus, 5, checkpoint=tmp_path / "run.safetensors", checkpoint_every=1, on_epoch=crash_after_two)
    resumed = rb.Trainer.resume(tmp_path / "run.safetensors")
    resumed.fit(corpus, 5)
    assert [r.train_perplexity for r in resumed.history] == expected
    assert np.array_equal(resumed.model.params, uninterrupted.model.params)
