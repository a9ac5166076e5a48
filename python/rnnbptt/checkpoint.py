"""Checkpoints in the safetensors format, readable from C++ without Python.

Layout (format version 1)
-------------------------
A safetensors file: an 8-byte little-endian header length, a JSON header, raw tensor bytes.

Tensors: ``W_hx``, ``W_hh``, ``W_qh`` (and ``b_h``, ``b_q`` with biases), in the model's
dtype and C order; ``optimizer.m`` and ``optimizer.v`` for Adam.

``__metadata__`` (all values are strings):

- ``format``: ``"rnnbptt-checkpoint"``; ``format_version``: ``"1"``
- ``config``: the model's configuration, JSON
- ``vocab``: the vocabulary, JSON (may be absent for models without one)
- ``optimizer``: optimizer name and hyper-parameters, JSON
- ``trainer``: epoch, step and random-generator state, JSON
- ``sha256``: SHA-256 over the tensors' bytes in the order of their names, so that damage
  inside the data (which the safetensors header cannot see) is detected.

Files are written to a temporary file in the same folder, flushed, and renamed over the
target, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .data import Vocab
from .model import RNN

FORMAT = "rnnbptt-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or of another format version."""


@dataclass
class Checkpoint:
    model: RNN
    vocab: Optional[Vocab] = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name]).tobytes())
    return h.hexdigest()


def save(path: Union[str, Path], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically."""
    from safetensors.numpy import save as to_bytes

    path = Path(path)
    tensors = {name: np.ascontiguousarray(v) for name, v in checkpoint.model.named_parameters().items()}
    for name, value in checkpoint.optimizer_state.items():
        tensors[f"optimizer.{name}"] = np.ascontiguousarray(value)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(checkpoint.model.config()),
        "optimizer": json.dumps(checkpoint.optimizer),
        "trainer": json.dumps(checkpoint.trainer),
        "sha256": _digest(tensors),
    }
    if checkpoint.vocab is not None:
        metadata["vocab"] = checkpoint.vocab.to_json()
    payload = to_bytes(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: Union[str, Path]) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` says what is wrong with a bad file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint: no such file: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"checkpoint: {path} is not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint: expected format {FORMAT!r} in {path}, got {metadata.get('format')!r}"
        )
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"checkpoint: expected format version {FORMAT_VERSION} in {path}, got {version} "
            "(written by another version of rnnbptt)"
        )
    if metadata.get("sha256") != _digest(tensors):
        raise CheckpointError(f"checkpoint: {path} is corrupt (its tensors fail the SHA-256 check)")
    try:
        config = json.loads(metadata["config"])
        model = RNN(
            config["input_size"], config["hidden_size"], config["output_size"],
            activation=config["activation"], bias=config["bias"], dtype=config["dtype"],
        )
        for name in model.parameter_names():
            model.param(name)[...] = tensors[name]
        vocab = Vocab.from_json(metadata["vocab"]) if "vocab" in metadata else None
        optimizer_state = {
            name[len("optimizer.") :]: value for name, value in tensors.items() if name.startswith("optimizer.")
        }
        return Checkpoint(
            model=model,
            vocab=vocab,
            optimizer=json.loads(metadata["optimizer"]),
            optimizer_state=optimizer_state,
            trainer=json.loads(metadata["trainer"]),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"checkpoint: {path} has inconsistent contents ({error})") from None
