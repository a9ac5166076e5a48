"""Checkpoints: safetensors files that Python and C++ read and write alike.

The format is specified in ``docs/checkpoints.md``; its one implementation (container, digest,
validation, atomic writing) is the C++ ``rnnbptt/io/checkpoint.hpp``, which this module binds.
Reading is strict: every file it refuses raises :class:`CheckpointError` naming the file and the
problem, and a hostile file costs at most about its own size in memory. Writes are atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import _core
from .data import Vocab
from .model import RNN

FORMAT: str = _core.CHECKPOINT_FORMAT
FORMAT_VERSION: int = _core.CHECKPOINT_VERSION
READABLE_VERSIONS = (1, 2)
#: The deepest nesting of arrays and objects a JSON metadata entry may have.
MAX_JSON_DEPTH: int = _core.MAX_JSON_DEPTH
#: A checkpoint that is missing, corrupt, truncated or of another format version (a ValueError).
CheckpointError = _core.CheckpointError


@dataclass
class Checkpoint:
    model: RNN
    vocab: Optional[Vocab] = None
    #: ``{}``, or the optimizer's ``config()``: SGD's or Adam's settings.
    optimizer: dict[str, Any] = field(default_factory=dict)
    #: Adam's moments ``m`` and ``v`` (``(num_parameters,)``, the model's dtype).
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    #: The trainer's state, any JSON object (``Trainer.state()``).
    trainer: dict[str, Any] = field(default_factory=dict)
    #: Arrays of the trainer's state (the stream runner's carried state: ``runner.state``, with
    #: ``runner.history_inputs`` and ``runner.history_states``), stored as ``trainer.<name>``.
    trainer_state: dict[str, np.ndarray] = field(default_factory=dict)


def save(path: Union[str, Path], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically, in format version 3; CheckpointError
    (``cannot save``) for contents that could not be loaded back, and for system errors."""
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint: expected an rnnbptt.checkpoint.Checkpoint, got {type(checkpoint).__name__}")
    if not isinstance(checkpoint.model, RNN):
        raise TypeError(f"checkpoint.model: expected an rnnbptt.RNN, got {type(checkpoint.model).__name__}")
    if checkpoint.vocab is not None and not isinstance(checkpoint.vocab, Vocab):
        raise TypeError(f"checkpoint.vocab: expected an rnnbptt.Vocab or None, got {type(checkpoint.vocab).__name__}")
    trainer = json.dumps(checkpoint.trainer)
    vocab = checkpoint.vocab.core if checkpoint.vocab is not None else None
    _core.save_checkpoint(os.fsencode(path), checkpoint.model.core, vocab, dict(checkpoint.optimizer),
                          dict(checkpoint.optimizer_state), trainer, dict(checkpoint.trainer_state))
    return Path(path)


def load(path: Union[str, Path]) -> Checkpoint:
    """Read a checkpoint of format version 1, 2 or 3; :class:`CheckpointError` says what is wrong
    with a file it refuses."""
    contents = _core.load_checkpoint(os.fsencode(path))
    try:
        trainer = json.loads(contents["trainer"])
    except (ValueError, RecursionError) as error:  # the core checked it is a JSON object
        raise CheckpointError(f"checkpoint: the 'trainer' entry of {path} is not valid JSON ({error})") from None
    return Checkpoint(
        model=RNN._from_core(contents["model"]),
        vocab=Vocab._from_core(contents["vocab"]) if contents["vocab"] is not None else None,
        optimizer=contents["optimizer"],
        optimizer_state=contents["optimizer_state"],
        trainer=trainer,
        trainer_state=contents["trainer_state"],
    )
