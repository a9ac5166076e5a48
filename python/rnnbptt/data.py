"""Text data for character-level language models: vocabulary, d2l's preprocessing and
iterators, train/validation splits, the embedded default corpus and The Time Machine."""

from __future__ import annotations

import hashlib
import operator
import os
import re
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import _core
from ._checks import check_flag, check_integer, check_utf8

#: d2l's copy of H. G. Wells' *The Time Machine* (public domain) and its SHA-1.
TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
UNKNOWN = "<unk>"

Batch = tuple[np.ndarray, np.ndarray]  # x (T, n) and y (T, n), int64, time-major, C-contiguous


class Vocab:
    """Characters <-> integer ids: the C++ ``rnnbptt::Vocab`` (``cpp/include/rnnbptt/io/text.hpp``),
    which C++ programs and checkpoints share.

    Parameters
    ----------
    tokens : sequence of str
        The symbols, in id order: distinct, non-empty strings that UTF-8 can encode (no lone
        surrogates; ValueError naming the symbol's index otherwise), so that the vocabulary can
        be saved. ``"<unk>"`` (if present) receives unknown characters.

    Notes
    -----
    A character is a Unicode code point, as in a Python ``str``. ``encode`` maps each
    character to the symbol equal to it, so symbols of several characters other than
    ``"<unk>"`` are only ever produced by ``decode``.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError(f"tokens: expected a sequence of strings, got {type(tokens).__name__}")
        for i, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                raise TypeError(f"tokens: expected non-empty strings, got {token!r} at index {i}")
            try:
                token.encode("utf-8")
            except UnicodeEncodeError as error:
                where = f"in the symbol {token!r} " if len(token) > 1 else ""
                raise ValueError(
                    f"tokens: expected symbols that UTF-8 can encode, got the lone surrogate "
                    f"U+{ord(token[error.start]):04X} {where}at index {i}"
                ) from None
        self._core = _core.Vocab(list(tokens))

    @classmethod
    def _from_core(cls, core: _core.Vocab) -> Vocab:
        vocab = cls.__new__(cls)
        vocab._core = core
        return vocab

    @property
    def core(self) -> _core.Vocab:
        """The compiled vocabulary this object wraps."""
        return self._core

    @property
    def tokens(self) -> list[str]:
        """The symbols in id order (a new list)."""
        return list(self._core.tokens)

    @property
    def index(self) -> dict[str, int]:
        """Symbol -> id (a new dict)."""
        return {token: i for i, token in enumerate(self._core.tokens)}

    @property
    def unknown(self) -> Optional[int]:
        """The id of ``"<unk>"``, if the vocabulary holds it."""
        return self._core.unknown

    @classmethod
    def from_text(cls, text: str, *, unknown: bool = False) -> Vocab:
        """Every distinct character of ``text``, most frequent first (ties by first use);
        with ``unknown``, ``"<unk>"`` first, as d2l does.

        Raises
        ------
        ValueError
            When UTF-8 cannot encode ``text`` (a lone surrogate, such as ``"\\ud800"``), naming the
            index of the first such character: the vocabulary could not be saved.
        """
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        check_utf8(text, "text")
        return cls._from_core(_core.Vocab.from_text(text, check_flag(unknown, "unknown")))

    def __len__(self) -> int:
        return len(self._core)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` as int64. Unknown characters map to ``"<unk>"`` or raise."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        check_utf8(text, "text")
        return self._core.encode(text)

    def decode(self, ids: Union[np.ndarray, Sequence[int]]) -> str:
        """The text of ``ids``: integers in ``[0, len(self))``, a 1-D array or a sequence."""
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1:
                raise ValueError(f"ids: expected a 1-D array of ids, got shape {ids.shape}")
            if ids.dtype.kind not in "iu":
                raise TypeError(f"ids: expected integer ids, got an array of {ids.dtype}")
            values: list = ids.tolist()
        elif isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(f"ids: expected a sequence of integer ids, got {type(ids).__name__}")
        else:
            values = [check_id(value, i) for i, value in enumerate(ids)]
        for i, value in enumerate(values):  # the core checks the range of what int64 holds
            if not -(2**63) <= value < 2**63:
                raise ValueError(f"ids: expected ids in [0, {len(self)}), got {value} at index {i}")
        return self._core.decode(np.array(values, dtype=np.int64))

    def to_json(self) -> str:
        return self._core.to_json()

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        return cls._from_core(_core.Vocab.from_json(text))

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> Vocab:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._core == other._core

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocab({len(self)} symbols)"


def check_id(value: object, i: int) -> int:
    """``value`` as a Python int: an integer id (not a bool), TypeError naming index ``i`` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"ids: expected integer ids, got {value!r} (bool) at index {i}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"ids: expected integer ids, got {value!r} ({type(value).__name__}) at index {i}") from None


def d2l_preprocess(text: str) -> str:
    """d2l's ``read_time_machine``: per line, runs of non-letters become one space, strip,
    lower-case; lines are then joined without separator (d2l's corpus). 27 symbols remain
    (26 letters and the space), 28 with ``"<unk>"``."""
    lines = [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]
    return "".join(lines)


def read_text(path: Union[str, Path]) -> str:
    """A UTF-8 file's text, with a clear error for a missing, empty or non-UTF-8 file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"text: no such file: {path}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"text: expected a UTF-8 file, got invalid bytes in {path}: {error}") from None
    if not text:
        raise ValueError(f"text: expected a non-empty file, got an empty one: {path}")
    return text


def split(corpus: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The first ``1 - valid_fraction`` of the ids for training, the rest for validation."""
    _check_corpus(corpus)
    if isinstance(valid_fraction, (bool, np.bool_)) or not isinstance(valid_fraction, (int, float, np.number)):
        raise TypeError(f"valid_fraction: expected a real number, got {valid_fraction!r}")
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a value in [0, 1), got {valid_fraction}")
    cut = int(round(len(corpus) * (1.0 - valid_fraction)))
    return corpus[:cut], corpus[cut:]


def _check_corpus(corpus: np.ndarray) -> None:
    if not isinstance(corpus, np.ndarray) or corpus.ndim != 1 or corpus.dtype.kind not in "iu":
        shown = f"an array of shape {corpus.shape} and dtype {corpus.dtype}" if isinstance(corpus, np.ndarray) else (
            type(corpus).__name__
        )
        raise TypeError(f"corpus: expected a 1-D array of integer token ids, got {shown}")


def _check_iterator_args(corpus: np.ndarray, batch_size: int, num_steps: int, rng: object) -> None:
    _check_corpus(corpus)
    batch_size = check_integer(batch_size, "batch_size", minimum=1)
    num_steps = check_integer(num_steps, "num_steps", minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    needed = batch_size * num_steps + num_steps + 1
    if len(corpus) < needed:
        raise ValueError(
            f"corpus: expected at least {needed} tokens for batch_size={batch_size} and "
            f"num_steps={num_steps}, got {len(corpus)}"
        )


def sequential_batches(
    corpus: np.ndarray, batch_size: int, num_steps: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """d2l's sequential partitioning: after a random offset, ``batch_size`` contiguous
    streams; batch i + 1 continues batch i, so the hidden state can be carried across.

    The split is the C++ ``rnnbptt::split_streams`` (``cpp/include/rnnbptt/train/data.hpp``)
    with the offset drawn here, ``rng.integers(0, num_steps + 1)``; each batch is a
    C-contiguous view of its arrays."""
    for x, y, _ in marked_batches(corpus, None, batch_size, num_steps, rng, sequential=True):
        yield x, y


def random_batches(
    corpus: np.ndarray, batch_size: int, num_steps: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """d2l's random sampling: subsequences at shuffled positions; neighbouring batches are
    unrelated, so the hidden state starts from zero each time."""
    for x, y, _ in marked_batches(corpus, None, batch_size, num_steps, rng, sequential=False):
        yield x, y


def marked_batches(
    corpus: np.ndarray,
    marks: Optional[np.ndarray],
    batch_size: int,
    num_steps: int,
    rng: np.random.Generator,
    *,
    sequential: bool,
) -> Iterator[tuple[np.ndarray, np.ndarray, Optional[tuple[np.ndarray, np.ndarray]]]]:
    """:func:`sequential_batches` or :func:`random_batches` (the same draws), with ``marks``
    (one int per token, or None) cut the same way: each batch ``(x, y, (mark of x, mark of
    y))``, the third None without marks."""
    _check_iterator_args(corpus, batch_size, num_steps, rng)
    if sequential:
        offset = int(rng.integers(0, num_steps + 1))
        xs, ys = _core.split_streams(np.ascontiguousarray(corpus, dtype=np.int64), batch_size, num_steps, offset)
        if marks is not None:
            mx, my = _core.split_streams(np.ascontiguousarray(marks, dtype=np.int64), batch_size, num_steps, offset)
        for i in range(0, xs.shape[0], num_steps):
            cut = slice(i, i + num_steps)
            yield xs[cut], ys[cut], None if marks is None else (mx[cut], my[cut])
        return
    skip = int(rng.integers(0, num_steps))
    corpus = corpus[skip:]
    num_subseqs = (len(corpus) - 1) // num_steps
    starts = np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(starts)
    for i in range(0, (num_subseqs // batch_size) * batch_size, batch_size):
        chosen = starts[i : i + batch_size]
        rows = chosen[None, :] + np.arange(num_steps)[:, None]  # (num_steps, batch_size) positions
        x, y = np.ascontiguousarray(corpus[rows]), np.ascontiguousarray(corpus[rows + 1])
        yield x, y, None if marks is None else (marks[skip:][rows], marks[skip:][rows + 1])


def default_corpus() -> str:
    """A short English text shipped with the package, for training offline with no
    arguments."""
    return (Path(__file__).parent / "corpus" / "default.txt").read_text(encoding="utf-8")


#: The line that separates documents in a text file (``rnnbptt train --documents``).
DOCUMENT_SEPARATOR = "<|endoftext|>"


def split_documents(text: str, separator: str = DOCUMENT_SEPARATOR) -> list[str]:
    """The documents of ``text``: the parts between lines that hold only ``separator`` (those
    lines dropped; empty parts too). ValueError for an empty separator."""
    if not separator or "\n" in separator or "\r" in separator:
        raise ValueError(f"separator: expected a non-empty line, got {separator!r}")
    documents: list[str] = []
    current: list[str] = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):  # lines end at "\n" only
        if line.rstrip("\r\n") == separator:
            documents.append("".join(current))
            current = []
        else:
            current.append(line)
    documents.append("".join(current))
    return [document for document in documents if document]


def default_essays() -> list[str]:
    """The built-in text (:func:`default_corpus`) split into its essays, each starting with its
    title: a short line of its own between blank lines, with no closing punctuation. Their
    concatenation is the whole text; :meth:`rnnbptt.datasets.TokenStream.from_documents` packs them
    into a stream whose state restarts with each essay."""
    text = default_corpus()
    lines = text.splitlines(keepends=True)
    starts = [
        i
        for i, line in enumerate(lines)
        if line.strip()
        and len(line.strip()) < 60
        and (i == 0 or not lines[i - 1].strip())
        and (i + 1 < len(lines) and not lines[i + 1].strip())
        and line.strip()[-1] not in ".!?,;:)'\""
    ]
    return ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)])]


def cache_dir() -> Path:
    """``$RNNBPTT_CACHE``, else ``$XDG_CACHE_HOME/rnnbptt``, else ``~/.cache/rnnbptt``."""
    if "RNNBPTT_CACHE" in os.environ:
        return Path(os.environ["RNNBPTT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnnbptt"


def download(url: str, sha1: str, destination: Path, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``destination`` unless a file with that SHA-1 is already there.
    The download goes to a temporary file that is renamed only after its SHA-1 matches."""
    if destination.exists() and hashlib.sha1(destination.read_bytes()).hexdigest() == sha1:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed URL
        payload = response.read()
    digest = hashlib.sha1(payload).hexdigest()
    if digest != sha1:
        raise ValueError(f"download: expected SHA-1 {sha1} for {url}, got {digest} (not saved)")
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


def time_machine(url: str = TIME_MACHINE_URL, directory: Optional[Path] = None) -> str:
    """The Time Machine as d2l serves it, downloaded once, verified by SHA-1 and cached."""
    path = download(url, TIME_MACHINE_SHA1, (directory or cache_dir()) / "timemachine.txt")
    return path.read_text(encoding="utf-8")
