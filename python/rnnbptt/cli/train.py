"""``rnnbptt demo``, ``gradcheck``, ``train`` and ``generate``."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import shlex
import time
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .. import build_info, data, distributed, get_num_threads, gradcheck, reference, set_num_threads
from .._checks import check_utf8
from .._table import text_table
from ..checkpoint import CheckpointError
from ..checkpoint import load as load_checkpoint
from ..datasets import TokenStream
from ..generate import generate
from ..model import RNN
from ..trainer import EpochRecord, Trainer
from ..truncation import Truncation
from .arguments import (
    DEFAULT_CHECKPOINT,
    DEFAULT_LR,
    UsageError,
    _as_flag,
    _flag,
    aborting_on_one_rank,
    describe_cells,
)
from .series import train_series


def _check_prefix(prefix: Optional[str], vocab: data.Vocab) -> None:
    if prefix is None:
        return
    if not prefix:
        raise UsageError("argument --prefix: expected at least one character, got an empty string")
    try:
        check_utf8(prefix, "prefix")  # bytes that are not UTF-8 arrive as lone surrogates (surrogateescape)
    except ValueError as error:
        raise UsageError(_as_flag(f"{error} (bytes on the command line that are not UTF-8?)")) from None
    if vocab.unknown is None:
        known = set(vocab.tokens)
        missing = sorted({c for c in prefix if c not in known})
        if missing:
            raise UsageError(
                f"argument --prefix: expected characters of the model's vocabulary ({len(vocab)} symbols), "
                f"got {missing[:10]!r}"
            )


def _check_corpus_length(train: Corpus, args: argparse.Namespace) -> None:
    needed = args.batch_size * args.num_steps + args.num_steps + 1
    if len(train) < needed:
        what = "the training documents have" if isinstance(train, TokenStream) else "the text has"
        raise UsageError(
            f"argument --batch-size/--num-steps: --batch-size {args.batch_size} with --num-steps "
            f"{args.num_steps} needs at least {needed} training tokens, {what} {len(train)} "
            "(use a longer --text, a larger --max-tokens or smaller values)"
        )


def _learning_rate(args: argparse.Namespace) -> float:
    """``--lr``, else the default of the ``--optimizer``."""
    return float(args.lr) if args.lr is not None else DEFAULT_LR[args.optimizer]


def _build_model(args: argparse.Namespace, vocab: data.Vocab) -> RNN:
    try:
        return RNN(len(vocab), args.hidden, len(vocab), dtype=args.dtype, seed=args.seed, init_std=args.init_std,
                   cell=args.cell, num_layers=args.layers)
    except MemoryError as error:
        raise UsageError(
            f"argument --hidden/--layers: not enough memory for a model of {args.layers} layer(s) of {args.hidden} "
            f"hidden units ({error})"
        ) from None


# ---- demo / gradcheck ---------------------------------------------------------------------
def _gradcheck_table(
    activation: str, tokens: bool, steps: int, batch: int, hidden: int, seed: int
) -> tuple[str, float]:
    d = q = 10
    rng = np.random.default_rng(seed)
    model = RNN(d, hidden, q, activation=activation, dtype=np.float64, seed=seed)
    x = rng.integers(0, d, (steps, batch)) if tokens else rng.standard_normal((steps, batch, d))
    y = rng.integers(0, q, (steps, batch))
    loss, _ = model.forward_backward(x, y)
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    _, ref_grads, _, _ = reference.loss_and_grads(params, x, y, activation=activation)
    errors = gradcheck.check_gradients(model, x, y, samples=20, seed=seed)
    model.forward_backward(x, y)
    rows, worst = [], 0.0
    for name in model.parameter_names():
        g = model.grad(name)
        ref_error = gradcheck.relative_error(g, ref_grads[name])
        worst = max(worst, errors[name], ref_error)
        rows.append([name, str(tuple(g.shape)), f"{np.linalg.norm(g):.4e}", f"{errors[name]:.2e}", f"{ref_error:.2e}"])
    header = (
        f"loss {loss:.6f} on T={steps}, n={batch}, d={d}, h={hidden}, q={q}, {activation}, "
        f"{'token ids' if tokens else 'dense input'}, float64\n"
    )
    headers = ["parameter", "shape", "||grad||", "finite differences (rel. err.)", "NumPy reference (rel. err.)"]
    table = text_table(headers, rows)
    return header + table, worst


def cmd_gradcheck(args: argparse.Namespace) -> int:
    text, worst = _gradcheck_table(args.activation, not args.dense, args.num_steps, args.batch, args.hidden, args.seed)
    print(text)
    ok = worst <= 1e-6
    print(f"\n{'PASS' if ok else 'FAIL'}: largest relative error {worst:.2e} (tolerance 1e-6)")
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    info = build_info()
    print(f"rnnbptt {info['version']} (OpenMP: {info['openmp']}, SIMD: {info['simd']})\n")
    worst = 0.0
    for activation, tokens in (("tanh", True), ("relu", False), ("identity", False)):
        text, error = _gradcheck_table(activation, tokens, 12, 3, 8, args.seed)
        worst = max(worst, error)
        print(text + "\n")
    ok = worst <= 1e-6
    print(f"{'PASS' if ok else 'FAIL'}: BPTT gradients agree with finite differences and the NumPy "
          f"reference; largest relative error {worst:.2e} (tolerance 1e-6)")
    return 0 if ok else 1


# ---- train ---------------------------------------------------------------------------------
BUILT_IN_SOURCE = "the built-in corpus"
#: What train trains a language model on: token ids, or documents packed into a stream.
Corpus = Union[np.ndarray, TokenStream]
TIME_MACHINE_SOURCE = "The Time Machine"


def _load_corpus(
    args: argparse.Namespace, vocab: Optional[data.Vocab] = None
) -> tuple[Corpus, Corpus, data.Vocab, str]:
    """The text (or with ``--documents`` its documents) read, preprocessed, encoded, cut to
    ``--max-tokens`` and split: token ids, or documents packed into streams
    (``TokenStream.from_documents``) with the last documents, whole, held out."""
    texts, source = _read_texts(args)
    if args.d2l:
        texts = [data.d2l_preprocess(text) for text in texts]
    if vocab is None:
        vocab = data.Vocab.from_text("".join(texts), unknown=args.d2l)
    documents = [vocab.encode(text) for text in texts]
    if args.max_tokens is not None:  # the first N tokens, the last document cut there
        kept, total = [], 0
        for ids in documents:
            if total >= args.max_tokens:
                break
            kept.append(ids[: args.max_tokens - total])
            total += len(kept[-1])
        documents = kept
    if args.documents is None:
        ids, held_out = data.split(documents[0], args.valid_fraction)
        return ids, held_out, vocab, source
    documents = [ids for ids in documents if len(ids)]
    train, valid, held = _hold_out_documents(documents, args, source)
    return train, valid, vocab, f"{source} ({len(documents)} documents, {held} held out)"


def _read_texts(args: argparse.Namespace) -> tuple[list[str], str]:
    """The text of --text, --timemachine or the built-in corpus as one string in a list, or with
    --documents the built-in corpus's essays or a --text file's documents; and its source."""
    if args.documents is not None and args.timemachine:
        raise UsageError("argument --timemachine: expected --text or the built-in corpus with --documents "
                         "(The Time Machine is one novel: one document)")
    if args.documents is not None and args.text is None and args.documents != data.DOCUMENT_SEPARATOR:
        raise UsageError(f"argument --documents: expected no separator for the built-in corpus (its documents are "
                         f"its essays), got {args.documents}")
    if args.text is not None:
        try:
            text, source = data.read_text(args.text), str(args.text)
        except (OSError, ValueError) as error:
            raise UsageError(_as_flag(str(error), "--text")) from None
        if args.documents is None:
            return [text], source
        texts = data.split_documents(text, args.documents)
        if len(texts) == 1 and args.documents in texts[0]:
            raise UsageError(f"argument --documents: expected {args.documents} on lines of its own in {args.text} "
                             "(the separator lines), found it only inside lines")
        return texts, source
    if args.timemachine:
        try:
            return [data.time_machine(args.timemachine_url)], TIME_MACHINE_SOURCE
        except (OSError, ValueError) as error:
            raise UsageError(f"argument --timemachine: could not get The Time Machine ({error})") from None
    if args.documents is not None:
        return data.default_essays(), BUILT_IN_SOURCE
    return [data.default_corpus()], BUILT_IN_SOURCE


def _hold_out_documents(documents: list[np.ndarray], args: argparse.Namespace,
                     source: str) -> tuple[Corpus, Corpus, int]:
    """(train, held-out, count held out): whole documents held out, from the end; with
    --valid-fraction > 0, at least one and as many as come closest to that share of the tokens,
    leaving at least one to train on."""
    if not documents:
        raise UsageError(f"argument --documents: expected at least one document in {source}, got none")
    held_tokens = np.cumsum([len(ids) for ids in reversed(documents)])[: len(documents) - 1]
    target = args.valid_fraction * sum(len(ids) for ids in documents)
    held = 0 if args.valid_fraction == 0 or not len(held_tokens) else int(np.argmin(np.abs(held_tokens - target))) + 1
    if held and all(len(ids) < 2 for ids in documents[len(documents) - held :]):
        raise UsageError("argument --valid-fraction: the documents it holds out have fewer than 2 tokens each: "
                         "nothing to score (give another fraction, or 0)")
    train = TokenStream.from_documents(documents[: len(documents) - held])
    valid: Corpus = TokenStream.from_documents(documents[len(documents) - held :]) if held else np.zeros(0, np.int64)
    return train, valid, held


def _ids(corpus: Corpus) -> np.ndarray:
    """The token ids of a text, or of documents packed into a stream."""
    return corpus.ids if isinstance(corpus, TokenStream) else corpus


def _targets(corpus: Corpus) -> np.ndarray:
    """The tokens a language model is scored on: every one but the first (of each document)."""
    ids = _ids(corpus)
    if not isinstance(corpus, TokenStream) or corpus.starts is None:
        return ids[1:]
    first: np.ndarray = np.zeros(len(ids), dtype=bool)
    first[corpus.starts] = True
    return ids[1:][~first[1:]]


def _print_epoch(record: EpochRecord, every: int, epochs: int) -> None:
    if record.epoch % every == 0 or record.epoch >= epochs or record.epoch == 1:
        valid = f"  valid ppl {record.valid_perplexity:8.3f}" if record.valid_perplexity is not None else ""
        print(f"epoch {record.epoch:4d}/{epochs}  train ppl {record.train_perplexity:8.3f}{valid}  "
              f"{record.tokens_per_second:10,.0f} tokens/s  |g| {record.grad_norm:.3f}", flush=True)


def _file_record(given: object) -> dict[str, object]:
    """A file's path, size and SHA-256, for a checkpoint to find it again."""
    path = Path(str(given)).resolve()
    if not path.is_file():  # a pipe or a FIFO: read once, nothing to check it against later
        return {"path": None, "size": None, "sha256": None}
    raw = path.read_bytes()
    try:
        shown: Optional[str] = str(path).encode("utf-8").decode("utf-8")
    except UnicodeEncodeError:  # a path that is not UTF-8: --resume then needs the flag again
        shown = None
    return {"path": shown, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def _data_record(args: argparse.Namespace) -> dict[str, object]:
    """What ``train`` trains on, for the checkpoint (``Trainer.data``): the text's (or the
    ``--data`` file's) path, size and SHA-256, or the built-in corpus or The Time Machine; with
    the preprocessing flags."""
    if args.data is not None:
        return {"source": "npz", **_file_record(args.data), "valid_fraction": args.valid_fraction}
    common = {"d2l": bool(args.d2l), "max_tokens": args.max_tokens, "valid_fraction": args.valid_fraction,
              **({"documents": args.documents} if args.documents is not None else {})}
    if args.text is not None:
        return {"source": "text", **_file_record(args.text), **common}
    return {"source": "timemachine" if args.timemachine else "built-in", **common}


#: ``train`` arguments that a resumed run takes from its checkpoint: giving another value is a
#: mistake (the model, the optimizer and the data stream are the run's identity).
_FIXED_ON_RESUME = ("cell", "layers", "hidden", "dtype", "optimizer", "truncation", "lr_schedule", "batch_size",
                    "num_steps", "iterator", "seed", "d2l", "max_tokens", "valid_fraction", "documents")


def _apply_resume(args: argparse.Namespace, trainer: Trainer) -> None:
    """Fill ``args`` from the checkpoint of ``--resume``: every setting it fixes (a different
    value given is exit 2, naming the flag), the text it recorded, the epochs it planned and
    the file it came from as ``--checkpoint``; ``--lr`` and ``--clip`` given change the run
    (printed)."""
    given: set[str] = getattr(args, "given", set())
    recorded = trainer.data or {}
    saved = {
        "cell": trainer.model.cell, "layers": trainer.model.num_layers,
        "hidden": trainer.model.hidden_size, "dtype": trainer.model.dtype.name,
        "optimizer": trainer.settings.optimizer, "truncation": str(trainer.truncation),
        "lr_schedule": trainer.settings.lr_schedule, "batch_size": trainer.batch_size,
        "num_steps": trainer.num_steps, "iterator": trainer.iterator, "seed": trainer.seed,
        **{key: recorded[key] for key in ("d2l", "max_tokens", "valid_fraction") if key in recorded},
        # A text run records "documents" only when it had them.
        **({"documents": recorded.get("documents")} if recorded and recorded.get("source") != "npz" else {}),
    }
    for dest in _FIXED_ON_RESUME:
        if dest not in saved:
            continue
        value = str(args.truncation) if dest == "truncation" else getattr(args, dest)
        if dest in given and value != saved[dest]:
            flag = _flag(dest)
            if isinstance(saved[dest], bool) or saved[dest] is None:  # a switch, or a limit it did not set
                had = flag if saved[dest] is True else f"no {flag}"
                raise UsageError(f"argument {flag}: {args.resume} was trained with {had}, which cannot change on "
                                 "resume")
            raise UsageError(
                f"argument {flag}: expected {saved[dest]} (what {args.resume} was trained with; it cannot "
                f"change on resume), got {value}"
            )
        setattr(args, dest, Truncation.parse(saved[dest]) if dest == "truncation" else saved[dest])
    if "init_std" in given:
        raise UsageError("argument --init-std: expected no initialization when resuming (the checkpoint holds "
                         "the weights)")
    changes: dict[str, object] = {}
    if "lr" in given and args.lr != trainer.base_lr:
        changes["lr"] = args.lr
    if "clip" in given and (args.clip if args.clip > 0 else None) != trainer.clip:
        changes["clip"] = args.clip if args.clip > 0 else None
    if changes:
        before = {"lr": trainer.base_lr, "clip": trainer.clip}
        trainer.change(**changes)  # type: ignore[arg-type]
        print("changed on resume: " + ", ".join(f"{k} {before[k]} -> {v}" for k, v in changes.items()))
    if recorded.get("source") == "npz" and not {"text", "timemachine", "data"} & given:
        args.data = _recorded_text(args.resume, recorded, "--data")
    elif "text" not in given and "timemachine" not in given and "data" not in given:
        if not recorded:
            print(f"note: {args.resume} does not record what it was trained on (an earlier rnnbptt, or the Trainer "
                  "API, wrote it); training on the built-in corpus (give --text or --timemachine for another)")
        if recorded.get("source") == "text":
            args.text = _recorded_text(args.resume, recorded)
        elif recorded.get("source") == "timemachine":
            args.timemachine = True
    if "checkpoint" not in given:
        args.checkpoint = args.resume
    _resume_length(args, trainer, given)


def _recorded_text(resume: str, recorded: dict[str, object], flag: str = "--text") -> Path:
    """The text (or ``--data`` file) a checkpoint recorded, checked against its size and SHA-256."""
    what = "text" if flag == "--text" else "data file"
    if recorded.get("path") is None:
        raise UsageError(f"argument --resume: {resume} does not record its {what}'s path; give it with {flag}")
    path = Path(str(recorded["path"]))
    hint = f"give {flag} to continue on another {what}"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UsageError(f"argument --resume: {resume} was trained on {path}, which cannot be read "
                         f"({error.strerror}); {hint}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) != recorded.get("size") or digest != recorded.get("sha256"):
        raise UsageError(f"argument --resume: {resume} was trained on {path}, which has changed since (SHA-256 "
                         f"{digest[:12]}..., recorded {str(recorded.get('sha256'))[:12]}...); {hint}")
    return path


def _resume_length(args: argparse.Namespace, trainer: Trainer, given: set[str]) -> None:
    """``--epochs`` (the total), ``--steps`` (the total) or ``--more-epochs N``; none of them:
    what the checkpoint's run planned."""
    if args.more_epochs is not None:
        if "epochs" in given or "steps" in given:
            raise UsageError("argument --more-epochs: expected it without --epochs or --steps (which give the total)")
        args.epochs, args.steps = trainer.epoch + args.more_epochs, None
        return
    if "epochs" in given or "steps" in given:
        if args.steps is not None and args.steps <= trainer.step:
            raise UsageError(f"argument --steps: expected more than the {trainer.step} steps {args.resume} has "
                             f"trained (--steps is the total), got {args.steps}")
        if args.steps is None and args.epochs <= trainer.epoch:
            raise UsageError(f"argument --epochs: expected more than the {trainer.epoch} epochs {args.resume} has "
                             f"completed (--epochs is the total; --more-epochs N adds N), got {args.epochs}")
        return
    if trainer.steps_target is not None:
        args.steps = trainer.steps_target
        done = trainer.step >= args.steps
    else:
        args.epochs = trainer.epochs_planned
        done = trainer.epoch >= args.epochs
    if done:
        raise UsageError(f"argument --resume: {args.resume} has finished its run ({trainer.epoch} epochs, "
                         f"{trainer.step} steps); add --more-epochs N to train on")


def _resume(args: argparse.Namespace, comm: object = None) -> Trainer:
    try:
        trainer = Trainer.resume(args.resume, log=args.log, progress=args.progress, comm=comm)
    except (ValueError, TypeError) as error:  # CheckpointError included (no trainer state, say)
        raise UsageError(_as_flag(str(error), "--resume")) from None
    return trainer


def _mpi_world(args: argparse.Namespace) -> object:
    """MPI's world when a launcher (``mpirun -n P``, ``srun -n P``, P > 1) started this process,
    else None; a mistake when the launcher's environment and MPI disagree on P. Only rank 0
    prints; each rank runs ``--threads``, else ``OMP_NUM_THREADS``, else its share of the
    machine's cores."""
    try:
        comm = distributed.launched_world()
    except (ImportError, distributed.LaunchError) as error:
        raise UsageError(str(error)) from None
    if comm is None:
        return None
    if args.threads is None and not os.environ.get("OMP_NUM_THREADS"):
        set_num_threads(distributed.default_threads(comm))
    return comm


def cmd_train(args: argparse.Namespace) -> int:
    comm = _mpi_world(args)
    if comm is None or distributed.launched_rank() == 0:
        return _train(args, comm)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank 0 reports
        return _train(args, comm)


def _train(args: argparse.Namespace, comm: object) -> int:
    # With MPI, a mistake that only some processes see (a file) stops them all (agreement).
    with distributed.agreement(comm):
        if args.log is not None and not Path(args.log).parent.is_dir():
            raise UsageError(f"argument --log: no such directory: {Path(args.log).parent}")
        if Path(args.checkpoint).is_dir():
            raise UsageError(f"argument --checkpoint: expected a file name, got the directory {args.checkpoint}")
        _check_plot(args.plot, required=True)
    args.given = getattr(args, "given", set())
    if args.more_epochs is not None and args.resume is None:
        raise UsageError("argument --more-epochs: expected it with --resume (a new run takes --epochs)")
    if args.resume is not None and not args.resume:
        raise UsageError("argument --resume: expected a checkpoint file, got an empty string")
    resumed = _resume(args, comm) if args.resume is not None else None
    with distributed.agreement(comm):
        if resumed is not None:
            _apply_resume(args, resumed)
    if args.data is not None:
        with distributed.agreement(comm):
            record = _data_record(args)
        return train_series(args, comm, resumed, record, _learning_rate(args))
    with distributed.agreement(comm):
        if resumed is not None and resumed.vocab is None:
            raise UsageError(f"argument --resume: {args.resume} has no vocabulary to encode text with")
        try:
            train, valid, vocab, source = _load_corpus(args, resumed.vocab if resumed is not None else None)
        except UsageError:
            if resumed is not None and resumed.data is None and not {"text", "timemachine"} & args.given:
                raise UsageError(
                    f"argument --resume: {args.resume} does not record what it was trained on (an earlier "
                    "rnnbptt wrote it) and the built-in corpus does not suit its vocabulary: give --text or "
                    "--timemachine"
                ) from None
            raise
        record = _data_record(args)
        _check_prefix(args.prefix, vocab)
        _check_corpus_length(train, args)
        model = _build_model(args, vocab) if resumed is None else resumed.model
    if resumed is not None:
        trainer = resumed
        print(f"resuming {args.resume} at epoch {trainer.epoch}")
    else:
        try:
            trainer = Trainer(
                model, vocab=vocab, optimizer=args.optimizer, lr=_learning_rate(args), lr_schedule=args.lr_schedule,
                clip=args.clip if args.clip > 0 else None, truncation=args.truncation,
                batch_size=args.batch_size, num_steps=args.num_steps, iterator=args.iterator,
                seed=args.seed, log=args.log, progress=args.progress, comm=comm,
            )
        except MemoryError as error:
            raise UsageError(
                f"argument --hidden/--layers: not enough memory to train {args.layers} layer(s) of {args.hidden} "
                f"hidden units ({error})"
            ) from None
    trainer.data = record
    if comm is not None:
        print(f"data parallel on {trainer.comm.Get_size()} processes x {get_num_threads()} threads")
    model = trainer.model
    print(f"training on {source}: {len(train):,} tokens ({len(valid):,} held out), {len(vocab)} symbols, "
          f"{describe_cells(model.cell, model.num_layers, model.hidden_size)}, {trainer.settings.describe()}")
    epochs = None if args.steps is not None else args.epochs
    started, first_step = time.perf_counter(), trainer.step
    with aborting_on_one_rank(trainer, comm):
        trainer.fit(train, epochs, steps=args.steps, valid=valid if len(valid) > 1 else None,
                    checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                    checkpoint_every_steps=args.checkpoint_every_steps,
                    on_epoch=lambda r: _print_epoch(r, max(1, trainer.epochs_planned // 10), trainer.epochs_planned))
    if comm is not None and trainer.comm.Get_rank() != 0:
        return 0  # rank 0 reports and samples
    seconds = time.perf_counter() - started
    last = trainer.history[-1]
    valid_text = f", valid ppl {last.valid_perplexity:.3f}" if last.valid_perplexity is not None else ""
    print(f"done: epoch {last.epoch}, step {last.step}, train ppl {last.train_perplexity:.3f}{valid_text}")
    print(f"checkpoint written to {args.checkpoint}")
    prefix = args.prefix if args.prefix is not None else _default_prefix(source, vocab, _ids(train))
    greedy = generate(trainer.model, vocab, prefix, args.sample_length, temperature=0.0)
    print(f"\nsample (greedy):\n{greedy}")
    if args.temperature > 0:
        drawn = generate(trainer.model, vocab, prefix, args.sample_length, temperature=args.temperature, seed=args.seed)
        print(f"\nsample (temperature {args.temperature:g}, seed {args.seed}):\n{drawn}")
    tokens = (trainer.step - first_step) * trainer.batch_size * trainer.num_steps
    print(f"\n{_train_summary(args, trainer, _ids(train), _targets(valid), _targets(train), tokens, seconds)}")
    if args.plot:
        from ..plots import plot_training_curves

        plot_training_curves({str(trainer.truncation): trainer.history}, args.plot)
        print(f"\ntraining curve written to {args.plot}")
    print(f"\n{_next_commands(args, source, prefix)}")
    return 0


def _check_plot(path: Optional[str], *, required: bool) -> None:
    """``--plot``, before any training: its folder must exist and its extension must name a
    format that matplotlib writes. Without matplotlib, a mistake when the plot was asked for
    (``required``), else the run goes on and says that it draws no plot."""
    if not path:
        return
    if not Path(path).parent.is_dir():
        raise UsageError(f"argument --plot: no such directory: {Path(path).parent}")
    formats = _plot_formats()
    if formats is None:
        if required:
            raise UsageError(
                "argument --plot: plots need matplotlib, from the 'plot' extra: pip install 'rnnbptt[plot]'"
            )
        return
    extension = Path(path).suffix[1:].lower()
    if extension not in formats:
        got = f"the extension {Path(path).suffix!r}" if extension else "no extension"
        raise UsageError(
            f"argument --plot: expected a file name ending in an image format that matplotlib writes "
            f"({', '.join(sorted(formats))}), got {got} in {path}"
        )


def _plot_formats() -> Optional[set[str]]:
    """The file extensions that matplotlib saves figures as, or None without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return {name.lower() for name in Figure().canvas.get_supported_filetypes()}


#: The start of the final samples on the built-in corpus (elsewhere: the text's first characters).
BUILT_IN_PREFIX = "The network"


def _default_prefix(source: str, vocab: data.Vocab, train: np.ndarray) -> str:
    if source.startswith(BUILT_IN_SOURCE) and set(BUILT_IN_PREFIX) <= set(vocab.tokens):
        return BUILT_IN_PREFIX
    return vocab.decode(train[:10])


def unigram_perplexity(train: np.ndarray, held_out: np.ndarray, size: int) -> float:
    """Perplexity on ``held_out`` of the unigram model of ``train``: every token predicted by its
    frequency in ``train`` alone (add-one smoothed over the ``size`` symbols), whatever came
    before it. The baseline that a language model has to beat by learning order."""
    counts = np.bincount(np.asarray(train, dtype=np.int64), minlength=size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(np.exp(-np.mean(log_p[np.asarray(held_out, dtype=np.int64)])))


def _train_summary(args: argparse.Namespace, trainer: Trainer, train: np.ndarray, valid_targets: np.ndarray,
                   train_targets: np.ndarray, tokens: int, seconds: float) -> str:
    """The closing summary; the unigram baseline is scored on the targets the model is scored on."""
    last = trainer.history[-1]
    size = trainer.model.output_size
    if last.valid_perplexity is not None:
        which, perplexity = "validation", last.valid_perplexity
        baseline = unigram_perplexity(train, valid_targets, size)
    else:
        assert last.train_perplexity is not None  # the command line trains on text
        which, perplexity, baseline = "training", last.train_perplexity, unigram_perplexity(train, train_targets, size)
    speed = f"{tokens / seconds:,.0f}" if seconds > 0 else "-"
    return (
        f"summary: {tokens:,} tokens trained in {seconds:.1f} s ({speed} tokens/s, evaluation and checkpoints "
        f"included). Final {which} perplexity {perplexity:.2f}, against {baseline:.2f} for the unigram baseline "
        f"of the same text (each symbol predicted by its frequency alone): the model predicts as if choosing among "
        f"{perplexity:.1f} symbols instead of {baseline:.1f}. The checkpoint is {args.checkpoint}."
    )


def _next_commands(args: argparse.Namespace, source: str, prefix: str) -> str:
    generate_command = f"rnnbptt generate --prefix {shlex.quote(prefix)} --temperature 0.5"
    if args.checkpoint != DEFAULT_CHECKPOINT:
        generate_command += f" --checkpoint {shlex.quote(str(args.checkpoint))}"
    lines = [
        (generate_command, "continue a text of your own with the saved model"),
        ("rnnbptt compare --task recall --lag 20", "the truncation strategies where they differ: table and plots"),
    ]
    if source != TIME_MACHINE_SOURCE:
        lines.append(("rnnbptt train --timemachine", "a whole novel (downloaded once, then cached)"))
    width = max(len(command) for command, _ in lines)
    return "next:\n" + "\n".join(f"  {command.ljust(width)}  # {what}" for command, what in lines)


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        loaded = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise UsageError(_as_flag(str(error), "--checkpoint")) from None
    if loaded.vocab is None:
        raise UsageError(f"argument --checkpoint: {args.checkpoint} has no vocabulary")
    _check_prefix(args.prefix, loaded.vocab)
    print(generate(loaded.model, loaded.vocab, args.prefix, args.length, temperature=args.temperature, seed=args.seed))
    return 0


#: ``rnnbptt compare --plot`` when it is not given (drawn only with matplotlib installed).
