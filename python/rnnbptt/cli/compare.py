"""``rnnbptt compare``: truncation strategies side by side, on text or a synthetic task."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .. import _core
from .._table import text_table
from ..trainer import Trainer
from ..truncation import Truncation
from .arguments import (
    DEFAULT_LR,
    UsageError,
    _as_flag,
    _flag,
    describe_cells,
)
from .train import (
    _build_model,
    _check_corpus_length,
    _check_plot,
    _learning_rate,
    _load_corpus,
)

DEFAULT_COMPARE_PLOT = "compare.png"

#: compare's defaults on text (``--task text``) for the flags that apply to text only.
COMPARE_TEXT_DEFAULTS = {"hidden": 256, "epochs": 40, "num_steps": 35, "init_std": 0.01, "valid_fraction": 0.1,
                         "batch_size": 32}
#: compare's default on the synthetic tasks.
COMPARE_TASK_DEFAULTS = {"hidden": 64, "lag": 20, "batch_size": 32}
#: compare's arguments that apply to text only, to the synthetic tasks only, to recall only.
_TEXT_ONLY = ("text", "timemachine", "d2l", "max_tokens", "valid_fraction", "epochs", "num_steps", "init_std")
_TASK_ONLY = ("lag", "length", "symbols")
_RECALL_ONLY = ("symbols",)


def _compare_task(args: argparse.Namespace) -> str:
    """``--task``, else text when a text was named (``--text``, ``--timemachine``), else recall;
    a flag of another task (``--symbols`` with adding, say) is a mistake."""
    reads_text = args.text is not None or args.timemachine
    task = args.task or ("text" if reads_text else "recall")
    if task == "text":
        for name in _TASK_ONLY:
            if getattr(args, name) is not None:
                raise UsageError(f"argument {_flag(name)}: expected --task recall or adding, got --task text")
        for name, value in COMPARE_TEXT_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    else:
        for name in _TEXT_ONLY:
            if getattr(args, name) not in (None, False):
                raise UsageError(f"argument {_flag(name)}: applies to --task text, got --task {task}")
        for name in _RECALL_ONLY:
            if task != "recall" and getattr(args, name) is not None:
                raise UsageError(f"argument {_flag(name)}: applies to --task recall, got --task {task}")
        for name, value in COMPARE_TASK_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    return task


def cmd_compare(args: argparse.Namespace) -> int:
    task_name = _compare_task(args)
    if args.bias_draws is not None and not args.bias:
        raise UsageError("argument --bias-draws: applies with --bias, got no --bias")
    asked = args.plot is not None  # an explicit --plot needs matplotlib; the default plot does not
    if not asked:
        args.plot = DEFAULT_COMPARE_PLOT
    _check_plot(args.plot, required=asked)
    if task_name != "text":
        return _compare_on_task(args, task_name)
    strategies = args.strategies or [Truncation.parse(s) for s in ("full", "regular:5", "randomized:0.8")]
    train, valid, vocab, source = _load_corpus(args)
    _check_corpus_length(train, args)
    for strategy in strategies:
        try:
            strategy.check_chunk(args.num_steps, "num_steps")
        except ValueError as error:
            raise UsageError(_as_flag(str(error))) from None
    print(f"comparing {', '.join(map(str, strategies))} on {source}: {len(train):,} tokens, "
          f"{args.epochs if args.steps is None else f'{args.steps} steps of'} "
          f"{'epochs' if args.steps is None else 'chunks'}, seed {args.seed}\n")
    rows, histories, models = [], {}, []
    for strategy in strategies:
        model = _build_model(args, vocab)
        models.append(model)
        trainer = Trainer(
            model, vocab=vocab, optimizer=args.optimizer, lr=_learning_rate(args),
            clip=args.clip if args.clip > 0 else None, truncation=strategy, batch_size=args.batch_size,
            num_steps=args.num_steps, iterator="sequential", seed=args.seed,
        )
        start = time.perf_counter()
        epochs = None if args.steps is not None else args.epochs
        history = trainer.fit(train, epochs, steps=args.steps, valid=valid if len(valid) > 1 else None)
        seconds = time.perf_counter() - start
        histories[str(strategy)] = history
        last = history[-1]
        rows.append([
            str(strategy), f"{last.train_perplexity:.3f}",
            f"{last.valid_perplexity:.3f}" if last.valid_perplexity is not None else "-",
            f"{seconds:.1f}", f"{sum(r.tokens_per_second for r in history) / len(history):,.0f}",
            f"{last.memory_bytes / 2**20:.2f}",
        ])
        print(f"  {strategy}: done in {seconds:.1f} s", flush=True)
    print()
    print(text_table(["strategy", "train ppl", "valid ppl", "time (s)", "tokens/s", "memory (MiB)"], rows))
    print("\nmemory: the bytes of the runner's activations, history and scratch buffers")
    if args.bias:
        from .. import compare

        # The first chunk of the training text, as the trainer's sequential batches cut it (offset 0).
        xs, ys = _core.split_streams(np.ascontiguousarray(train, dtype=np.int64), args.batch_size, args.num_steps, 0)
        print(f"\ngradient bias on the first {args.num_steps}-step chunk of {args.batch_size} streams of the "
              "training text:\n")
        print(compare.bias_comparison(strategies, _build_model(args, vocab), models,
                                      np.ascontiguousarray(xs[: args.num_steps]),
                                      np.ascontiguousarray(ys[: args.num_steps]), draws=args.bias_draws))
    if args.plot:
        try:
            from ..plots import plot_gradient_norms, plot_training_curves

            plot_training_curves(histories, args.plot)
            gradient_plot = Path(args.plot).with_name(Path(args.plot).stem + "-gradients.png")
            plot_gradient_norms(gradient_plot)
            print(f"plots written to {args.plot} and {gradient_plot}")
        except ImportError as error:
            print(f"no plot: {error}")
    return 0


def _compare_on_task(args: argparse.Namespace, name: str) -> int:
    from .. import compare, tasks

    try:
        task = tasks.make_task(name, args.lag, args.length, 8 if args.symbols is None else args.symbols)
    except ValueError as error:
        raise UsageError(_as_flag(str(error), "--length" if str(error).startswith("length") else None)) from None
    strategies = args.strategies or tasks.default_strategies(task.lag)
    steps = args.steps if args.steps is not None else task.default_steps
    lr = args.lr if args.lr is not None else task.default_lr if args.optimizer == "adam" else DEFAULT_LR["sgd"]
    print(f"comparing {', '.join(map(str, strategies))}\non {compare.describe_task(task)};\n"
          f"{steps} steps of {args.batch_size} fresh sequences, {describe_cells(args.cell, args.layers, args.hidden)}, "
          f"{args.optimizer} lr {lr:g}, "
          f"seed {args.seed}\n", flush=True)

    def report(result: tasks.TaskResult) -> None:
        print(f"  {result.truncation}: {task.metric} {result.score:.3f} in {result.seconds:.1f} s", flush=True)

    results = compare.run_comparison(
        task, strategies, on_result=report, hidden_size=args.hidden, steps=steps, batch_size=args.batch_size,
        lr=lr, optimizer=args.optimizer, clip=args.clip if args.clip > 0 else None, seed=args.seed,
        dtype=args.dtype, cell=args.cell, num_layers=args.layers,
    )
    print()
    print(compare.results_table(task, results))
    if args.bias:
        held_out = task.sample(np.random.default_rng([args.seed, 3]), 64, args.dtype)
        start = tasks.task_model(task, hidden_size=args.hidden, seed=args.seed, dtype=args.dtype, cell=args.cell,
                                 num_layers=args.layers)
        trained = [result.model for result in results if result.model is not None]
        print("\ngradient bias on 64 held-out sequences:\n")
        print(compare.bias_comparison(strategies, start, trained, held_out.x, held_out.targets,
                                      weights=held_out.weights, draws=args.bias_draws))
    if args.plot:
        try:
            curves, gradients = compare.write_plots(task, results, args.plot)
            print(f"\nplots written to {curves} (learning curves) and {gradients} (||dL/dh_t|| against t)")
        except ImportError as error:
            print(f"\nno plot: {error}")
    return 0


