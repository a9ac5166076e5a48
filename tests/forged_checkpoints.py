"""Forged checkpoints: files whose digest is right (recomputed after the change) but whose
contents lie, for the loaders of both languages (tests/test_checkpoint_forged.py runs Python's,
tests/test_cpp_examples.py the C++ one through the `generate` example).

Each case starts from a committed fixture (tests/data/checkpoints/README.md) and changes one
thing: sizes in the configuration, JSON nesting, numbers out of range, tensor shapes and
dtypes, the stream runner's carried state, or the raw safetensors header (offsets, shapes,
lengths), where no digest can be recomputed and the container's own checks must hold.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "data" / "checkpoints"
#: The richest fixture: Adam moments, a vocabulary, a trainer state interrupted mid-epoch with
#: Regular(2, 4) history (runner state, history ids and states).
BASE = FIXTURES / "v2-python-adam-regular-midepoch.safetensors"

Metadata = dict[str, str]
Tensors = dict[str, np.ndarray]


def read(path: Path) -> tuple[Metadata, Tensors]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata()), {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118


def digest_v2(metadata: Metadata, tensors: Tensors) -> str:
    """The format-2 digest of docs/checkpoints.md, written here from the specification (the
    package's one implementation is the C++ reader's), so that forged files carry a right one."""
    import hashlib

    def u64(value: int) -> bytes:
        return int(value).to_bytes(8, "little")

    def string(text: str) -> bytes:
        raw = text.encode("utf-8")
        return u64(len(raw)) + raw

    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
    h = hashlib.sha256(string("rnnbptt-checkpoint-v2"))
    for key in sorted(metadata, key=lambda k: k.encode("utf-8")):
        if key != "sha256":
            h.update(string(key) + string(metadata[key]))
    for name in sorted(tensors, key=lambda k: k.encode("utf-8")):
        array = np.ascontiguousarray(tensors[name])
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        h.update(string(name) + string(dtypes[array.dtype.newbyteorder("=")]) + u64(array.ndim))
        h.update(b"".join(u64(d) for d in array.shape) + u64(len(data)) + data)
    return h.hexdigest()


def write(path: Path, metadata: Metadata, tensors: Tensors) -> Path:
    """Writes a safetensors file whose sha256 entry is the digest of what it holds."""
    from safetensors.numpy import save_file

    metadata = {k: v for k, v in metadata.items() if k != "sha256"}
    metadata["sha256"] = digest_v2(metadata, tensors)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def json_edit(key: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Metadata, Tensors], None]:
    def apply(metadata: Metadata, tensors: Tensors) -> None:
        value = json.loads(metadata[key])
        change(value)
        metadata[key] = json.dumps(value)
    return apply


def raw_entry(key: str, text: str) -> Callable[[Metadata, Tensors], None]:
    def apply(metadata: Metadata, tensors: Tensors) -> None:
        metadata[key] = text
    return apply


def set_in(key: str, field: str, value: Any) -> Callable[[Metadata, Tensors], None]:
    return json_edit(key, lambda d: d.__setitem__(field, value))


def with_number_text(key: str, field: str, text: str) -> Callable[[Metadata, Tensors], None]:
    """Puts ``text`` (such as ``1e400``, which json.dumps cannot write) as the field's value."""
    def apply(metadata: Metadata, tensors: Tensors) -> None:
        value = json.loads(metadata[key])
        value[field] = "@@"
        metadata[key] = json.dumps(value).replace('"@@"', text)
    return apply


def tensor(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Metadata, Tensors], None]:
    def apply(metadata: Metadata, tensors: Tensors) -> None:
        tensors[name] = change(tensors[name].copy())
    return apply


def set_item(index: Any, value: Any) -> Callable[[np.ndarray], np.ndarray]:
    def apply(array: np.ndarray) -> np.ndarray:
        array[index] = value
        return array
    return apply


def hidden_size_with_tensors(h: int) -> Callable[[Metadata, Tensors], None]:
    """A config with hidden_size ``h``, the tensors left as they are (a 9 KB file that asked the
    old reader for h^2 floats)."""
    return set_in("config", "hidden_size", h)


#: name -> change of (metadata, tensors); every one must be refused with CheckpointError.
CASES: dict[str, Callable[[Metadata, Tensors], None]] = {
    # sizes in the configuration
    "config-hidden-30000": hidden_size_with_tensors(30000),
    "config-hidden-2^62": hidden_size_with_tensors(2**62),
    "config-hidden-2^70": hidden_size_with_tensors(2**70),
    "config-hidden-1e400": with_number_text("config", "hidden_size", "1e400"),
    "config-hidden-negative": hidden_size_with_tensors(-8),
    "config-hidden-zero": hidden_size_with_tensors(0),
    "config-hidden-true": hidden_size_with_tensors(True),
    "config-hidden-float": hidden_size_with_tensors(8.0),
    "config-hidden-string": hidden_size_with_tensors("8"),
    "config-input-huge": set_in("config", "input_size", 2**40),
    "config-output-huge": set_in("config", "output_size", 2**40),
    "config-no-hidden": json_edit("config", lambda d: d.pop("hidden_size")),
    "config-activation": set_in("config", "activation", "sigmoid"),
    "config-dtype": set_in("config", "dtype", "float16"),
    "config-bias-string": set_in("config", "bias", "yes"),
    "config-not-object": raw_entry("config", "[1, 2]"),
    "config-not-json": raw_entry("config", "{"),
    # nesting
    "nested-trainer-100": set_in("trainer", "history", nested(100)),
    "nested-trainer-100000": raw_entry("trainer", '{"epoch": ' + "[" * 100000 + "]" * 100000 + "}"),
    "nested-config-100000": raw_entry("config", "[" * 100000 + "]" * 100000),
    "nested-optimizer-1000": with_number_text("optimizer", "lr", "[" * 1000 + "1" + "]" * 1000),
    "nested-vocab-100000": raw_entry("vocab", '{"tokens": ' + "[" * 100000 + "]" * 100000 + "}"),
    "nested-batch-size-70": set_in("trainer", "batch_size", nested(70)),
    # numbers out of range
    "batch-size-1e400": with_number_text("trainer", "batch_size", "1e400"),
    "batch-size-2^70": set_in("trainer", "batch_size", 2**70),
    "batch-size-negative": set_in("trainer", "batch_size", -3),
    "batch-size-float": set_in("trainer", "batch_size", 3.0),
    "batch-size-true": set_in("trainer", "batch_size", True),
    "batch-size-huge": set_in("trainer", "batch_size", 2**40),
    "epoch-1e400": with_number_text("trainer", "epoch", "1e400"),
    "epoch-float": set_in("trainer", "epoch", 0.5),
    "epoch-negative": set_in("trainer", "epoch", -1),
    "epoch-true": set_in("trainer", "epoch", True),
    "step-2^70": set_in("trainer", "step", 2**70),
    "step-string": set_in("trainer", "step", "7"),
    "epochs-planned-nan": with_number_text("trainer", "epochs_planned", "NaN"),
    "lr-1e400": with_number_text("optimizer", "lr", "1e400"),
    "lr-negative": set_in("optimizer", "lr", -0.01),
    "beta1-nan": with_number_text("optimizer", "beta1", "NaN"),
    "step-count-2^70": set_in("optimizer", "step_count", 2**70),
    "optimizer-name": set_in("optimizer", "name", "rmsprop"),
    # tensor shapes and dtypes
    "W_hh-shape": tensor("W_hh", lambda a: a[:4]),
    "W_hx-dtype-f64": tensor("W_hx", lambda a: a.astype(np.float64)),
    "W_qh-dtype-i64": tensor("W_qh", lambda a: a.astype(np.int64)),
    "b_q-shape-2d": tensor("b_q", lambda a: a[None, :]),
    "optimizer-m-short": tensor("optimizer.m", lambda a: a[:-1]),
    "runner-state-shape": tensor("trainer.runner.state", lambda a: a[:1]),
    "history-states-shape": tensor("trainer.runner.history_states", lambda a: a[:2]),
    "history-inputs-dtype": tensor("trainer.runner.history_inputs", lambda a: a.astype(np.float32)),
    # the stream runner's carried state
    "history-id-negative": tensor("trainer.runner.history_inputs", set_item((0, 0), -1)),
    "history-id-outside": tensor("trainer.runner.history_inputs", set_item((1, 2), 28)),
    "history-id-huge": tensor("trainer.runner.history_inputs", set_item((1, 0), 2**62)),
    "runner-state-nan": tensor("trainer.runner.state", set_item((0, 0), np.nan)),
    "runner-state-inf": tensor("trainer.runner.state", set_item((2, 7), -np.inf)),
    "history-states-nan": tensor("trainer.runner.history_states", set_item((0, 1, 1), np.nan)),
    "history-states-mismatch": tensor("trainer.runner.history_states", set_item((2, 0, 0), 0.123)),
}


#: Cases in the trainer entry that only Trainer.resume reads: the checkpoint format keeps the
#: trainer entry as an opaque JSON object, so load (and the C++ reader) may accept them.
TRAINER_ONLY = {name for name in CASES if name.split("-")[0] in {"epoch", "epochs", "step"}}


def header_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """Rewrites the safetensors header (the digest cannot follow: offsets are not in it)."""
    def apply(data: bytes) -> bytes:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        change(header)
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + data[8 + size :]
    return apply


def set_field(name: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda header: header[name].__setitem__(field, value)


#: name -> change of the raw bytes; every one must be refused with CheckpointError.
RAW_CASES: dict[str, Callable[[bytes], bytes]] = {
    "offsets-beyond-the-file": header_edit(set_field("W_hh", "data_offsets", [0, 1 << 40])),
    "offsets-overlapping": header_edit(lambda h: h["W_hh"].__setitem__("data_offsets", h["W_hx"]["data_offsets"])),
    "offsets-reversed": header_edit(lambda h: h["W_hh"].__setitem__("data_offsets", h["W_hh"]["data_offsets"][::-1])),
    "shape-huge-same-bytes": header_edit(set_field("W_hh", "shape", [2**31, 2**31])),
    "shape-overflowing": header_edit(set_field("W_hh", "shape", [2**62, 2**62, 16])),
    "dtype-unknown": header_edit(set_field("W_hh", "dtype", "F16")),
    "header-length-huge": lambda data: struct.pack("<Q", 1 << 62) + data[8:],
    "header-length-past-end": lambda data: struct.pack("<Q", len(data)) + data[8:],
    "header-length-too-long": lambda data: struct.pack("<Q", struct.unpack("<Q", data[:8])[0] + 16) + data[8:],
    # a byte that is not UTF-8 in the header: the JSON parser's message quotes it ("last read")
    "header-not-utf8": lambda data: data.replace(b'"F32"', b'"F\xff2"', 1),
    "header-nested": lambda data: (lambda text: struct.pack("<Q", len(text)) + text)(
        b'{"x": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
    "truncated": lambda data: data[: len(data) - 100],
}


def make_all(folder: Path) -> dict[str, Path]:
    """Writes every forged file into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, change in CASES.items():
        metadata, tensors = read(BASE)
        change(metadata, tensors)
        out[name] = write(folder / f"{name}.safetensors", metadata, tensors)
    data = BASE.read_bytes()
    for name, change in RAW_CASES.items():
        path = folder / f"{name}.safetensors"
        path.write_bytes(change(data))
        out[name] = path
    return out
