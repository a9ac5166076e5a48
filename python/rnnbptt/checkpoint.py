"""Checkpoints in the safetensors format, readable from C++ without Python.

Layout (format version 2)
-------------------------
A safetensors file: an 8-byte little-endian header length, a JSON header, raw tensor bytes.

Tensors, all little-endian and C order:

- ``W_hx``, ``W_hh``, ``W_qh`` (and ``b_h``, ``b_q`` with biases), of exactly the shapes and
  the dtype that ``config`` gives;
- ``optimizer.m`` and ``optimizer.v`` for Adam: ``(num_parameters,)``, the model's dtype;
- ``trainer.runner.state`` when a sequential epoch was interrupted part-way: the carried
  hidden state ``(batch_size, h)``, the model's dtype; with Regular(k1 < k2) truncation also
  ``trainer.runner.history_inputs`` ``(k, batch_size)`` int64 token ids and
  ``trainer.runner.history_states`` ``(k + 1, batch_size, h)``, the last ``k <= k2 - k1``
  steps the runner holds.

``__metadata__`` (all values are strings):

- ``format``: ``"rnnbptt-checkpoint"``; ``format_version``: ``"2"``
- ``config``: the model's configuration, JSON
- ``vocab``: the vocabulary, JSON (may be absent for models without one)
- ``optimizer``: optimizer name and hyper-parameters, JSON
- ``trainer``: epoch, step, random-generator state and, for an epoch interrupted part-way,
  ``epoch_in_progress`` (chunks consumed, the generator state before the epoch's draws,
  running totals), JSON
- ``sha256``: the digest below, so that any change to the file's meaning is detected.

The digest (version 2) is SHA-256 over one byte string; ``u64(x)`` is ``x`` as 8 bytes little
endian and ``str(s)`` is ``u64(len(b)) + b`` with ``b`` the UTF-8 bytes of ``s``:

1. ``str("rnnbptt-checkpoint-v2")``;
2. for every ``__metadata__`` entry except ``sha256``, in ascending byte order of the keys:
   ``str(key) + str(value)`` (the decoded JSON strings);
3. for every tensor, in ascending byte order of the names: ``str(name) + str(dtype)`` (the
   safetensors dtype, ``"F32"``, ``"F64"``, ``"I64"``), ``u64(ndim)``, ``u64`` of each
   dimension, ``u64(nbytes)`` and the tensor's raw bytes.

Version 1 files (rnnbptt before the full digest) are still read: their ``sha256`` covers the
tensors only (per tensor in name order, the UTF-8 name followed by its bytes), and their
trainer state always sits at an epoch boundary. Saving always writes version 2; to migrate a
file, ``save(path, load(path))``. rnnbptt versions that only know version 1 refuse version 2
files with a clear error rather than resuming them inexactly.

Writes are atomic: the bytes go to ``.<name>.<random>.tmp`` in the target's folder, are
flushed, and the file is renamed over the target (then the folder is synced). A failure in
this process removes its temporary file; temporary files of the same target left by killed
processes are removed after the next successful save (so only one process should write a given
target at a time). The new file gets the permissions that ``open(path, "w")`` would give: those
of the file it replaces, else ``0o666`` minus the umask.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import _core
from .data import Vocab
from .model import RNN

FORMAT = "rnnbptt-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

#: numpy dtype <-> safetensors dtype names, for the tensors a checkpoint holds.
_ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}

#: The deepest nesting of arrays and objects a JSON metadata entry may have (the C++ reader
#: has the same limit): rnnbptt writes at most 3 levels, and deeper text only costs stack.
MAX_JSON_DEPTH = 64


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or of another format version."""


@dataclass
class Checkpoint:
    model: RNN
    vocab: Optional[Vocab] = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    #: Arrays of the trainer's state (the stream runner's carried state), stored as
    #: ``trainer.<name>`` tensors.
    trainer_state: dict[str, np.ndarray] = field(default_factory=dict)


def _digest_v1(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name]).tobytes())
    return h.hexdigest()


def _u64(value: int) -> bytes:
    return int(value).to_bytes(8, "little")


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    return _u64(len(data)) + data


def _digest_v2(metadata: dict[str, str], tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(_string("rnnbptt-checkpoint-v2"))
    for key in sorted(metadata, key=lambda k: k.encode("utf-8")):
        if key != "sha256":
            h.update(_string(key) + _string(metadata[key]))
    for name in sorted(tensors, key=lambda k: k.encode("utf-8")):
        array = tensors[name]
        dtype = _ST_DTYPES.get(array.dtype.newbyteorder("="))
        if dtype is None:
            raise CheckpointError(
                f"checkpoint: tensor {name!r}: expected dtype float32, float64 or int64, got {array.dtype}"
            )
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        h.update(_string(name) + _string(dtype) + _u64(array.ndim))
        h.update(b"".join(_u64(d) for d in array.shape))
        h.update(_u64(len(data)) + data)
    return h.hexdigest()


def _creation_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: the existing file's, else
    ``0o666`` minus the umask (read from /proc when possible: changing the umask to read it
    is not thread-safe)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(r"\." + re.escape(path.name) + r"\.[0-9a-f]{16}\.tmp")


def _remove_stale_temps(path: Path, keep: Optional[Path] = None) -> None:
    pattern = _temp_pattern(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry != keep:
            try:
                entry.unlink()
            except OSError:
                pass


def save(path: Union[str, Path], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (see the module documentation)."""
    from safetensors.numpy import save as to_bytes

    path = Path(path)
    tensors = {name: np.ascontiguousarray(v) for name, v in checkpoint.model.named_parameters().items()}
    for name, value in checkpoint.optimizer_state.items():
        tensors[f"optimizer.{name}"] = np.ascontiguousarray(value)
    for name, value in checkpoint.trainer_state.items():
        tensors[f"trainer.{name}"] = np.ascontiguousarray(value)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(checkpoint.model.config()),
        "optimizer": json.dumps(checkpoint.optimizer),
        "trainer": json.dumps(checkpoint.trainer),
    }
    if checkpoint.vocab is not None:
        metadata["vocab"] = checkpoint.vocab.to_json()
    metadata["sha256"] = _digest_v2(metadata, tensors)
    payload = to_bytes(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _creation_mode(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful rename; ours to remove otherwise
    _sync_folder(path.parent)
    _remove_stale_temps(path)
    return path


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_tensor(
    path: Path, name: str, value: Optional[np.ndarray], shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    if value is None:
        raise CheckpointError(f"checkpoint: {path} lacks tensor {name!r} (expected shape {shape}, dtype {dtype})")
    if value.dtype != dtype or value.shape != shape:
        raise CheckpointError(
            f"checkpoint: tensor {name!r} in {path}: expected shape {shape} and dtype {dtype}, "
            f"got shape {value.shape} and dtype {value.dtype}"
        )
    return value


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, outside strings (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _shallow(path: Path, metadata: dict[str, str], key: str) -> str:
    """The metadata entry ``key``, refused if its JSON nests deeper than MAX_JSON_DEPTH."""
    text = metadata[key]
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(
            f"checkpoint: the {key!r} entry of {path}: expected JSON nested at most {MAX_JSON_DEPTH} deep, got {depth}"
        )
    return text


def _json_entry(path: Path, metadata: dict[str, str], key: str) -> Any:
    """The metadata entry ``key`` parsed: a JSON object, nested at most MAX_JSON_DEPTH deep."""
    if key not in metadata:
        raise CheckpointError(f"checkpoint: {path} has inconsistent contents (no {key!r} entry in its metadata)")
    text = _shallow(path, metadata, key)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"checkpoint: the {key!r} entry of {path} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(
            f"checkpoint: the {key!r} entry of {path}: expected a JSON object, got {type(value).__name__}"
        )
    return value


def _size(path: Path, entry: str, values: dict[str, Any], key: str, minimum: int) -> int:
    """An integer ``values[key] >= minimum`` that fits in int64 (JSON floats, bools, 1e400 and
    the like are refused, never truncated)."""
    value = values.get(key)
    if type(value) is not int or not minimum <= value <= 2**63 - 1:
        shown = "none" if key not in values else repr(value)
        raise CheckpointError(
            f"checkpoint: {path}: {entry}: expected {key!r} to be an integer >= {minimum}, got {shown}"
        )
    return value


def _check_optimizer(path: Path, optimizer: dict[str, Any], dtype: str) -> None:
    """The optimizer entry holds ``{}`` or settings the optimizer itself accepts (its own checks)."""
    from .optim import SGD, Adam

    if not optimizer:
        return
    name = optimizer.get("name")
    try:
        if name == "sgd":
            SGD(optimizer["lr"], optimizer["weight_decay"])
        elif name == "adam":
            Adam(1, np.dtype(dtype), optimizer["lr"], optimizer["beta1"], optimizer["beta2"], optimizer["eps"],
                 optimizer["weight_decay"])
            if _size(path, "optimizer", optimizer, "step_count", 0) >= _core.ADAM_MAX_STEPS:
                count = optimizer["step_count"]
                raise ValueError(f"step_count: expected a number of steps taken in [0, 2**62), got {count}")
        else:
            raise ValueError(f"expected 'name' to be 'sgd' or 'adam', got {name!r}")
    except KeyError as error:
        raise CheckpointError(f"checkpoint: {path}: optimizer: expected a number {error}, got none") from None
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint: {path}: optimizer: {error}") from None


def _parameter_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter tensor of a model with this configuration, computed without
    building the model (so that a forged config is compared with the file before it allocates)."""
    d, h, q = config["input_size"], config["hidden_size"], config["output_size"]
    shapes: dict[str, tuple[int, ...]] = {"W_hx": (h, d), "W_hh": (h, h), "W_qh": (q, h)}
    if config["bias"] is True:
        shapes.update(b_h=(h,), b_q=(q,))
    return shapes


def load(path: Union[str, Path]) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` says what is wrong with a bad file.

    A hostile file costs at most about its own size in memory before it is refused: tensors
    are bounded by the file, and the configuration's sizes are compared with the file's
    tensors before the model is built."""
    from safetensors import safe_open

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint: no such file: {path}") from None
    except OSError as error:
        raise CheckpointError(f"checkpoint: {path}: cannot read the file ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"checkpoint: {path} is a directory, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
        raise CheckpointError(f"checkpoint: {path} is not a regular file")
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
    if version not in {str(v) for v in READABLE_VERSIONS}:
        raise CheckpointError(
            f"checkpoint: expected format version {' or '.join(map(str, READABLE_VERSIONS))} in {path}, "
            f"got {version} (written by another version of rnnbptt)"
        )
    try:
        digest = _digest_v1(tensors) if version == "1" else _digest_v2(metadata, tensors)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint: {path} is corrupt ({error})") from None
    if metadata.get("sha256") != digest:
        covered = "its tensors" if version == "1" else "its header or tensors"
        raise CheckpointError(f"checkpoint: {path} is corrupt ({covered} fail the SHA-256 check)")
    config = _json_entry(path, metadata, "config")
    optimizer = _json_entry(path, metadata, "optimizer")
    trainer = _json_entry(path, metadata, "trainer")
    for key in ("input_size", "hidden_size", "output_size"):
        _size(path, "config", config, key, 1)
    if "bias" not in config or not isinstance(config["bias"], bool):
        raise CheckpointError(
            f"checkpoint: {path}: config: expected 'bias' to be true or false, got {config.get('bias')!r}"
        )
    dtype_name = config.get("dtype")
    if dtype_name not in ("float32", "float64"):
        raise CheckpointError(
            f"checkpoint: {path}: config: expected 'dtype' to be \"float32\" or \"float64\", got {dtype_name!r}"
        )
    _check_optimizer(path, optimizer, dtype_name)
    for name, shape in _parameter_shapes(config).items():  # before the model allocates
        _check_tensor(path, name, tensors.get(name), shape, np.dtype(dtype_name))
    try:
        model = RNN(
            config["input_size"], config["hidden_size"], config["output_size"],
            activation=config["activation"], bias=config["bias"], dtype=config["dtype"],
        )
        dtype = model.dtype
        for name in model.parameter_names():
            target = model.param(name)
            target[...] = _check_tensor(path, name, tensors.pop(name, None), target.shape, dtype)
        vocab = Vocab.from_json(_shallow(path, metadata, "vocab")) if "vocab" in metadata else None
        optimizer_state = {}
        if optimizer.get("name") == "adam":
            for name in ("m", "v"):
                optimizer_state[name] = _check_tensor(
                    path, f"optimizer.{name}", tensors.pop(f"optimizer.{name}", None), (model.num_parameters,), dtype
                )
        trainer_state = _trainer_tensors(path, tensors, trainer, model)
        if tensors:
            raise CheckpointError(f"checkpoint: {path} holds unexpected tensors {sorted(tensors)}")
        return Checkpoint(
            model=model,
            vocab=vocab,
            optimizer=optimizer,
            optimizer_state=optimizer_state,
            trainer=trainer,
            trainer_state=trainer_state,
        )
    except CheckpointError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError, RecursionError) as error:
        raise CheckpointError(f"checkpoint: {path} has inconsistent contents ({error!r})") from None


def _trainer_tensors(
    path: Path, tensors: dict[str, np.ndarray], trainer: dict[str, Any], model: RNN
) -> dict[str, np.ndarray]:
    """The runner's carried state, checked against the trainer's batch size and the model."""
    out: dict[str, np.ndarray] = {}
    if "trainer.runner.state" not in tensors:
        for name in ("trainer.runner.history_inputs", "trainer.runner.history_states"):
            if name in tensors:
                raise CheckpointError(f"checkpoint: {path} has {name!r} without 'trainer.runner.state'")
        return out
    n, h = _size(path, "trainer (with a runner state)", trainer, "batch_size", 1), model.hidden_size
    out["runner.state"] = state = _check_tensor(
        path, "trainer.runner.state", tensors.pop("trainer.runner.state"), (n, h), model.dtype
    )
    if not np.isfinite(state).all():
        raise CheckpointError(
            f"checkpoint: tensor 'trainer.runner.state' in {path}: expected finite values, got NaN or inf"
        )
    if "trainer.runner.history_inputs" in tensors or "trainer.runner.history_states" in tensors:
        inputs = tensors.pop("trainer.runner.history_inputs", None)
        k = inputs.shape[0] if inputs is not None and inputs.ndim == 2 else 0
        out["runner.history_inputs"] = _check_tensor(
            path, "trainer.runner.history_inputs", inputs, (k, n), np.dtype(np.int64)
        )
        out["runner.history_states"] = states = _check_tensor(
            path, "trainer.runner.history_states", tensors.pop("trainer.runner.history_states", None),
            (k + 1, n, h), model.dtype,
        )
        ids = out["runner.history_inputs"]
        outside = np.flatnonzero((ids < 0) | (ids >= model.input_size))
        if outside.size:
            t, i = divmod(int(outside[0]), n)
            raise CheckpointError(
                f"checkpoint: tensor 'trainer.runner.history_inputs' in {path}: expected token ids in "
                f"[0, {model.input_size}), got {ids[t, i]} at [{t}, {i}]"
            )
        if not np.isfinite(states).all():
            raise CheckpointError(
                f"checkpoint: tensor 'trainer.runner.history_states' in {path}: expected finite values, got NaN or inf"
            )
        if not np.array_equal(states[k], state):
            raise CheckpointError(
                f"checkpoint: tensor 'trainer.runner.history_states' in {path}: expected its last row to equal "
                "'trainer.runner.state' (the carried state), got another"
            )
    return out
