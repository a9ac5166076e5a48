"""Checkpoints: one documented safetensors format, atomic writes, clear errors, exact resume."""

from __future__ import annotations

import contextlib
import json
import os

import forged_checkpoints as forged
import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint as ckpt
from rnnbptt import data


def small_corpus():
    text = data.default_corpus()[:4758]  # its first essay: short epochs
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
    assert header["__metadata__"]["format_version"] == "3"


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
    metadata = {"format": "rnnbptt-checkpoint", "format_version": "4"}
    save_file(tensors, str(tmp_path / "v3.safetensors"), metadata=metadata)
    with pytest.raises(rb.CheckpointError, match="expected format version 1, 2 or 3 in .* got 4"):
        ckpt.load(tmp_path / "v3.safetensors")
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(rb.CheckpointError, match="expected format 'rnnbptt-checkpoint'"):
        ckpt.load(tmp_path / "other.safetensors")


@contextlib.contextmanager
def file_size_limit(nbytes):
    """Writes past ``nbytes`` fail (EFBIG) in this process while the block runs: a real failure
    of the core's write, where a full disk would fail it."""
    import resource
    import signal

    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path):
    vocab, corpus = small_corpus()
    trainer = make_trainer(vocab)
    path = trainer.save(tmp_path / "model.safetensors")
    before = path.read_bytes()
    trainer.model.params[:] += 1.0

    with pytest.raises(rb.CheckpointError, match="cannot save: write failed .*File too large"), file_size_limit(100):
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


# ---- integrity: the digest covers the header as well as the tensors ------------------------
def tiny_checkpoint(tmp_path, name="tiny.safetensors"):
    """A small checkpoint with everything a header can hold: a vocabulary with non-ASCII
    symbols, Adam state, and a sequential epoch interrupted part-way (runner tensors)."""
    text = "the café is open, naïve ones. " * 30
    vocab = data.Vocab.from_text(text)
    corpus = vocab.encode(text)
    model = rb.RNN(len(vocab), 3, len(vocab), seed=0)
    trainer = rb.Trainer(model, vocab=vocab, optimizer="adam", lr=0.01, batch_size=2, num_steps=5, seed=1)
    trainer.fit(corpus, steps=30)
    assert trainer.state()["epoch_in_progress"] is not None
    return trainer.save(tmp_path / name)


def assert_rejected(path):
    """Loading must raise CheckpointError: never load (changed content), never another error."""
    with pytest.raises(rb.CheckpointError):
        ckpt.load(path)


def test_every_header_byte_flip_is_detected(tmp_path):
    path = tiny_checkpoint(tmp_path)
    payload = path.read_bytes()
    header_end = 8 + int.from_bytes(payload[:8], "little")
    assert set(ckpt.load(path).trainer_state) == {"runner.state"}
    fd = os.open(path, os.O_RDWR)
    try:
        for position in range(header_end):  # the length prefix and every byte of the JSON header
            for mask in (0xFF, 0x01):
                os.pwrite(fd, bytes([payload[position] ^ mask]), position)
                assert_rejected(path)
                os.pwrite(fd, payload[position : position + 1], position)
        for position in range(header_end, len(payload)):  # and every byte of the tensor data
            os.pwrite(fd, bytes([payload[position] ^ 0x01]), position)
            assert_rejected(path)
            os.pwrite(fd, payload[position : position + 1], position)
    finally:
        os.close(fd)
    assert path.read_bytes() == payload
    ckpt.load(path)


def test_header_changes_that_keep_valid_json_are_detected(tmp_path):
    """Edits a flipped byte could make in a value (epoch, learning rate, vocabulary), and the
    whole header rewritten by a tool: all fail the digest."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = tiny_checkpoint(tmp_path)
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    trainer = json.loads(metadata["trainer"])
    optimizer = json.loads(metadata["optimizer"])
    edits = {
        "trainer": json.dumps({**trainer, "epoch": trainer["epoch"] + 1}),
        "optimizer": json.dumps({**optimizer, "lr": optimizer["lr"] * 2}),
        "vocab": metadata["vocab"].replace("é", "e\u0301"),
        "config": metadata["config"].replace('"tanh"', '"relu"'),
    }
    for key, value in edits.items():
        assert value != metadata[key]
        save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={**metadata, key: value})
        with pytest.raises(rb.CheckpointError, match="is corrupt .*header or tensors fail the SHA-256 check"):
            ckpt.load(tmp_path / "edited.safetensors")
    save_file(tensors, str(tmp_path / "same.safetensors"), metadata=metadata)  # rewritten, same meaning
    ckpt.load(tmp_path / "same.safetensors")
    extra = {**metadata, "note": "added"}
    save_file(tensors, str(tmp_path / "extra.safetensors"), metadata=extra)
    assert_rejected(tmp_path / "extra.safetensors")


def test_truncated_files_are_rejected(tmp_path):
    path = tiny_checkpoint(tmp_path)
    payload = path.read_bytes()
    header_end = 8 + int.from_bytes(payload[:8], "little")
    lengths = sorted({0, 1, 7, 8, 9, 100, header_end // 2, header_end - 1, header_end, header_end + 1,
                      (header_end + len(payload)) // 2, len(payload) - 4, len(payload) - 1})
    for length in lengths:
        cut = tmp_path / f"cut{length}.safetensors"
        cut.write_bytes(payload[:length])
        assert_rejected(cut)
    longer = tmp_path / "longer.safetensors"
    longer.write_bytes(payload + b"\0")
    assert_rejected(longer)


def test_the_digest_is_the_documented_one(tmp_path):
    """Recomputed from the raw bytes as the module documentation (and README) describe it,
    as a reader in another language would."""
    import hashlib

    path = tiny_checkpoint(tmp_path)
    payload = path.read_bytes()
    size = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8 : 8 + size])
    data_start = 8 + size

    def u64(x):
        return int(x).to_bytes(8, "little")

    def string(text):
        raw = text.encode("utf-8")
        return u64(len(raw)) + raw

    metadata = header.pop("__metadata__")
    message = string("rnnbptt-checkpoint-v2")
    for key in sorted(metadata, key=lambda k: k.encode("utf-8")):
        if key != "sha256":
            message += string(key) + string(metadata[key])
    for name in sorted(header, key=lambda k: k.encode("utf-8")):
        entry = header[name]
        begin, end = entry["data_offsets"]
        message += string(name) + string(entry["dtype"]) + u64(len(entry["shape"]))
        message += b"".join(u64(d) for d in entry["shape"]) + u64(end - begin)
        message += payload[data_start + begin : data_start + end]
    assert metadata["format_version"] == "3"
    assert hashlib.sha256(message).hexdigest() == metadata["sha256"]
    assert {header[n]["dtype"] for n in header} == {"F32"}


def v2_config(config):
    """A model config as format versions 1 and 2 wrote it: one Elman layer, no cell or layers."""
    assert config["cell"] == "elman" and config["num_layers"] == 1
    return {k: v for k, v in config.items() if k not in ("cell", "num_layers")}


def test_version_1_files_still_load_with_their_tensor_digest(tmp_path):
    """Migration: files of format version 1 (tensor-only digest, epoch-boundary trainer state)
    load and resume; saving them again writes version 3."""
    import hashlib

    from safetensors.numpy import save_file

    vocab, corpus = small_corpus()
    trainer = make_trainer(vocab, optimizer="adam")
    trainer.fit(corpus, 1)
    tensors = {name: np.ascontiguousarray(v) for name, v in trainer.model.named_parameters().items()}
    tensors.update({f"optimizer.{k}": v for k, v in trainer.optimizer.state().items()})
    state = trainer.state()
    del state["epoch_in_progress"], state["steps_target"]  # what version 1 wrote
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].tobytes())
    metadata = {
        "format": "rnnbptt-checkpoint", "format_version": "1",
        "config": json.dumps(v2_config(trainer.model.config())), "optimizer": json.dumps(trainer.optimizer.config()),
        "trainer": json.dumps(state), "vocab": vocab.to_json(), "sha256": digest.hexdigest(),
    }
    old = tmp_path / "v1.safetensors"
    save_file(tensors, str(old), metadata=metadata)
    resumed = rb.Trainer.resume(old)
    assert np.array_equal(resumed.model.params, trainer.model.params)
    trainer.fit(corpus, 2)
    resumed.fit(corpus, 2)
    assert np.array_equal(resumed.model.params, trainer.model.params)
    new = ckpt.save(tmp_path / "v3.safetensors", ckpt.load(old))
    assert json.loads(new.read_bytes()[8 : 8 + int.from_bytes(new.read_bytes()[:8], "little")])[
        "__metadata__"]["format_version"] == "3"
    damaged = bytearray(old.read_bytes())
    damaged[-3] ^= 0x01
    (tmp_path / "v1bad.safetensors").write_bytes(bytes(damaged))
    with pytest.raises(rb.CheckpointError, match="is corrupt .*its tensors fail the SHA-256 check"):
        ckpt.load(tmp_path / "v1bad.safetensors")


# ---- strict shapes and dtypes ----------------------------------------------------------------
def rewrite(tmp_path, path, change):
    """A copy of ``path`` with its tensors changed by ``change`` and a correct digest, so that
    only the shape and dtype checks can catch it."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    change(tensors)
    del metadata["sha256"]
    metadata["sha256"] = forged.digest_v2(metadata, tensors)
    out = tmp_path / "rewritten.safetensors"
    save_file(tensors, str(out), metadata=metadata)
    return out


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.update(W_hh=t["W_hh"][:1].copy()),
         r"tensor 'W_hh' in .*: expected shape \(3, 3\) and dtype float32, got shape \(1, 3\) and dtype float32"),
        (lambda t: t.update(W_hx=t["W_hx"].astype(np.float64)),
         r"tensor 'W_hx' in .*: expected shape \(3, \d+\) and dtype float32, got shape \(3, \d+\) and dtype float64"),
        (lambda t: t.update(b_q=t["b_q"][None, :].copy()),
         r"tensor 'b_q' in .*: expected shape \(\d+,\) and dtype float32, got shape \(1, \d+\)"),
        (lambda t: t.pop("W_qh"), r"lacks tensor 'W_qh'"),
        (lambda t: t.update({"optimizer.m": t["optimizer.m"][:-1].copy()}),
         r"tensor 'optimizer.m' in .*: expected shape \(\d+,\) and dtype float32, got shape \(\d+,\)"),
        (lambda t: t.update({"optimizer.v": t["optimizer.v"].astype(np.float64)}),
         r"tensor 'optimizer.v' in .*: expected shape \(\d+,\) and dtype float32, got shape \(\d+,\) "
         r"and dtype float64"),
        (lambda t: t.pop("optimizer.v"), r"lacks tensor 'optimizer.v'"),
        (lambda t: t.update({"trainer.runner.state": t["trainer.runner.state"][:1].copy()}),
         r"tensor 'trainer.runner.state' in .*: expected shape \(2, 3\) and dtype float32, got shape \(1, 3\)"),
        (lambda t: t.update(extra=np.zeros(2, np.float32)), r"holds unexpected tensors \['extra'\]"),
    ],
)
def test_tensors_must_match_the_config_exactly(tmp_path, change, message):
    path = tiny_checkpoint(tmp_path)
    with pytest.raises(rb.CheckpointError, match=message):
        ckpt.load(rewrite(tmp_path, path, change))


# ---- temporary files and permissions ---------------------------------------------------------
def test_failed_writes_remove_their_temporary_file(tmp_path):
    vocab, _ = small_corpus()
    trainer = make_trainer(vocab)

    with pytest.raises(rb.CheckpointError, match="cannot save: write failed .*File too large"), file_size_limit(100):
        trainer.save(tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_of_killed_runs_are_removed(tmp_path):
    vocab, _ = small_corpus()
    trainer = make_trainer(vocab)
    stale = [tmp_path / ".model.safetensors.0123456789abcdef.tmp", tmp_path / ".model.safetensors.fedcba9876543210.tmp"]
    unrelated = [
        tmp_path / ".other.safetensors.0123456789abcdef.tmp",  # another target's
        tmp_path / "model.safetensors.0123456789abcdef.tmp",  # not our naming
        tmp_path / ".model.safetensors.notrandom.tmp",
        tmp_path / "notes.txt",
    ]
    for p in stale + unrelated:
        p.write_bytes(b"partial")
    trainer.save(tmp_path / "model.safetensors")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["model.safetensors"] + [p.name for p in unrelated])
    ckpt.load(tmp_path / "model.safetensors")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_checkpoints_get_the_mode_open_would_give(tmp_path, umask, mode):
    vocab, _ = small_corpus()
    trainer = make_trainer(vocab)
    old = os.umask(umask)
    try:
        path = trainer.save(tmp_path / "model.safetensors")
        probe = tmp_path / "probe"
        probe.write_bytes(b"")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == mode == (probe.stat().st_mode & 0o777)


def test_a_replaced_checkpoint_keeps_its_mode(tmp_path):
    vocab, _ = small_corpus()
    trainer = make_trainer(vocab)
    path = trainer.save(tmp_path / "model.safetensors")
    path.chmod(0o640)
    old = os.umask(0o077)
    try:
        trainer.save(path)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("change,message", [
    (lambda c: c.optimizer.update(momentum=0.9), "optimizer: unexpected key 'momentum'"),
    (lambda c: c.optimizer.update(name="Adam"), "optimizer: expected {} or 'name' \"sgd\" or \"adam\", got 'Adam'"),
    (lambda c: c.optimizer.update(step_count=2**70),
     r"optimizer: expected 'step_count' to be an integer in \[0, 2\*\*62\)"),
    (lambda c: c.optimizer.update(lr=10**400), "optimizer: expected 'lr' to be a finite number"),
    (lambda c: c.optimizer_state.update(extra=np.zeros(3)), "optimizer_state: unexpected array 'extra'"),
    (lambda c: c.trainer_state["runner.state"].fill(np.nan), "runner: tensor 'trainer.runner.state' .*finite"),
])
def test_save_refuses_what_load_would_refuse_or_drop(tmp_path, change, message):
    """Every refusal names the problem; nothing passed is dropped or written unreadable."""
    loaded = ckpt.load(forged.BASE)
    change(loaded)
    with pytest.raises(rb.CheckpointError, match="cannot save: " + message):
        ckpt.save(tmp_path / "out.safetensors", loaded)
    assert not (tmp_path / "out.safetensors").exists()
