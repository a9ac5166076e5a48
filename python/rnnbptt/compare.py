"""``rnnbptt compare`` on the synthetic tasks: one model per truncation strategy, trained on the
same data from the same seed, then a table and the plots (the command line is in
``rnnbptt.cli``; the tasks and the training loop in :mod:`rnnbptt.tasks`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ._table import text_table
from .bias import truncation_bias
from .model import RNN
from .tasks import Adding, DelayedRecall, Task, TaskResult, train_task
from .truncation import Truncation

__all__ = ["bias_comparison", "describe_task", "gradient_reach", "results_table", "run_comparison", "write_plots"]


def gradient_reach(truncation: Truncation, length: int) -> str:
    """How many steps back the gradient of a loss can travel under ``truncation`` in a sequence
    of ``length`` steps: the longest dependency it can teach (docs/design.md section 4)."""
    if truncation.kind == Truncation.Kind.full:
        return f"{length - 1} (all)"
    if truncation.kind == Truncation.Kind.regular:
        k1, k2 = int(truncation.k1), int(truncation.k2)
        reach = min(k2, length) - 1
        if k1 == k2:
            return f"{reach}"
        return f"{min(k2 - k1, reach)} to {reach}"
    keep = truncation.keep_probability
    if len(set(keep)) == 1:
        return f"s w.p. {keep[0]:g}^s"
    return "random (schedule)"


def describe_task(task: Task) -> str:
    """One line that says what the task asks and what a model that learns nothing scores."""
    if isinstance(task, DelayedRecall):
        return (
            f"delayed recall: output the symbol seen {task.lag} steps earlier; sequences of {task.length} steps "
            f"over {task.symbols} symbols (chance accuracy {task.baseline:.3f})"
        )
    if isinstance(task, Adding):
        return (
            f"the adding problem: the sum of two marked values, the first {task.lag} steps before the end; "
            f"sequences of {task.length} steps (MSE of always answering 1: {task.baseline:.3f}; of knowing "
            f"only the second value: {task.baseline / 2:.3f})"
        )
    return repr(task)


def run_comparison(
    task: Task,
    strategies: Sequence[Truncation],
    *,
    on_result: Optional[Callable[[TaskResult], None]] = None,
    **options: object,
) -> list[TaskResult]:
    """:func:`~rnnbptt.tasks.train_task` for every strategy with the same ``options`` (hidden
    size, steps, batch size, learning rate, clipping, seed, ...); ``on_result`` is called
    after each."""
    results = []
    for strategy in strategies:
        result = train_task(task, strategy, **options)  # type: ignore[arg-type]
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def results_table(task: Task, results: Sequence[TaskResult]) -> str:
    """The comparison as a text table, with the notes that say how to read it."""
    metric = "accuracy" if task.metric == "accuracy" else "MSE"
    rows = [
        [
            r.truncation, gradient_reach(Truncation.parse(r.truncation), task.length), f"{r.score:.3f}",
            f"{r.seconds:.1f}", f"{r.memory_bytes / 1024:,.0f}", str(r.steps_held),
        ]
        for r in results
    ]
    headers = ["strategy", "gradient reach (steps)", metric, "time (s)", "memory (KiB)", "steps held"]
    if task.metric == "accuracy":
        score_note = (
            f"accuracy: on held-out sequences, over the steps t >= {task.lag}; chance is {task.baseline:.3f}. "
            f"Learning the task needs a gradient reach of at least {task.lag} steps."
        )
    else:
        score_note = (
            f"MSE: on held-out sequences, at the last step; always answering 1 scores {task.baseline:.3f}, "
            f"knowing only the second value {task.baseline / 2:.3f}. Learning the first value needs a gradient "
            f"reach of at least {task.lag} steps."
        )
    return "\n".join([
        text_table(headers, rows),
        "",
        score_note,
        "gradient reach: how many steps back the gradient of a loss can travel (regular:K: K - 1; randomized: "
        "s steps with probability pi^s, scaled up by 1/pi^s).",
        "memory: bytes of the stream runner's buffers (activations, history, scratch); regular:K runs each "
        "sequence in chunks of K steps (steps held), the others hold the whole sequence.",
    ])


def write_plots(task: Task, results: Sequence[TaskResult], path: Union[str, Path]) -> tuple[Path, Path]:
    """The learning curves at ``path`` and ``||dL/dh_t||`` against ``t`` for spectral radius
    below, at and above 1 next to it (``NAME-gradients.png``). Needs the ``plot`` extra."""
    from .plots import plot_gradient_norms, plot_task_curves

    curves = plot_task_curves(task, results, path)
    gradients = plot_gradient_norms(Path(path).with_name(Path(path).stem + "-gradients.png"))
    return curves, gradients


def bias_comparison(
    strategies: Sequence[Truncation],
    start: RNN,
    trained: Sequence[RNN],
    x: np.ndarray,
    targets: np.ndarray,
    *,
    weights: Optional[np.ndarray] = None,
    draws: Optional[int] = None,
) -> str:
    """Each strategy's gradient bias against the Full gradient (:func:`~rnnbptt.bias.truncation_bias`)
    on one batch, at two points: the ``start`` model (the same for every strategy) and the
    model the strategy trained (``trained``, in the order of ``strategies``). A text table with
    the notes that say how to read it. ``draws``: of each Randomized strategy (default
    :data:`~rnnbptt.bias.DEFAULT_DRAWS`)."""
    if len(trained) != len(strategies):
        raise ValueError(f"trained: expected one model per strategy ({len(strategies)}), got {len(trained)}")

    def cell(model: RNN, strategy: Truncation) -> tuple[str, str]:
        randomized = strategy.kind == Truncation.Kind.randomized
        r = truncation_bias(model, x, targets, strategy, weights=weights, draws=draws if randomized else None)
        relative = f"{r.total.relative:.3f}" + (f" ± {r.total.standard_error:.3f}" if randomized else "")
        return relative, f"{r.total.cosine:.3f}"

    rows = []
    for strategy, model in zip(strategies, trained):
        rows.append([str(strategy), *cell(start, strategy), *cell(model, strategy)])
    headers = ["strategy", "bias at the start", "cosine", "bias once trained", "cosine"]
    return "\n".join([
        text_table(headers, rows),
        "",
        "bias: ||g - g_full|| / ||g_full|| for the strategy's gradient g and the Full gradient g_full of the same "
        "loss on the same batch, at the same parameters; cosine: of the angle between them. 'at the start' is the "
        "initial model, the same for every strategy; 'once trained' the model the strategy trained.",
        "randomized: g is the mean of its draws (one per seed), ± the standard error of that mean: an unbiased "
        "estimate shows a bias of the order of its standard error.",
    ])
