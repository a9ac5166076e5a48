"""Plots (the ``plot`` extra, matplotlib): training curves per strategy, and vanishing and
exploding gradients (docs/design.md section 3.4) as ||dL/dh_t|| against t."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from .diagnostics import spectral_radius
from .model import RNN


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plots need matplotlib: pip install 'rnnbptt[plot]'") from error
    return plt


def _save(plt: Any, fig: Any, ax: Any, path: Union[str, Path]) -> Path:
    """Log y axis, grid, legend, then write and close the figure."""
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_training_curves(histories: Mapping[str, Sequence[Any]], path: Union[str, Path]) -> Path:
    """Training (solid) and validation (dashed) perplexity per epoch, one colour per run; for
    data that is not a text (no perplexity) the loss, ``0.5 * MSE`` for values.
    ``histories`` maps a label to a list of :class:`~rnnbptt.trainer.EpochRecord`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    text = all(r.train_perplexity is not None for records in histories.values() for r in records)
    for label, records in histories.items():
        epochs = [r.epoch for r in records]
        train = [r.train_perplexity if text else r.train_loss for r in records]
        (line,) = ax.plot(epochs, train, label=f"{label} (train)")
        valid = [r.valid_perplexity if text else r.valid_loss for r in records]
        if all(v is not None for v in valid):
            ax.plot(epochs, valid, "--", color=line.get_color(), label=f"{label} (valid)")
    ax.set_xlabel("epoch")
    dense = any(r.data == "dense" for records in histories.values() for r in records)
    ax.set_ylabel("perplexity" if text else "0.5 * MSE" if dense else "loss")
    return _save(plt, fig, ax, path)


def plot_task_curves(task: Any, results: Sequence[Any], path: Union[str, Path]) -> Path:
    """The held-out score against optimizer steps, one line per strategy, with the score of a
    model that learned nothing (chance accuracy, or the MSE of always answering 1) dashed.
    ``task`` is a :class:`~rnnbptt.tasks.Task`, and ``results`` holds one
    :class:`~rnnbptt.tasks.TaskResult` per strategy, from :func:`~rnnbptt.tasks.train_task`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in results:
        ax.plot([r.step for r in result.curve], [r.score for r in result.curve], label=result.truncation)
    accuracy = task.metric == "accuracy"
    ax.axhline(task.baseline, color="gray", linestyle="--",
               label="chance" if accuracy else "always answering 1")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("held-out accuracy" if accuracy else "held-out MSE (log scale)")
    ax.set_title(f"{task.name}, lag {task.lag}: the gradient must reach {task.lag} steps back")
    if accuracy:
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return Path(path)
    return _save(plt, fig, ax, path)


def gradient_norms_by_radius(
    radii: Sequence[float] = (0.8, 1.0, 1.2), steps: int = 60, hidden: int = 32, seed: int = 0
) -> dict[float, np.ndarray]:
    """||dL/dh_t|| for t = 1..T of a linear RNN whose W_hh has the given spectral radius,
    with the loss at the last step only: the powers of W_hh^T in dL/dh_t, measured."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    out = {}
    for radius in radii:
        model = RNN(8, hidden, 8, activation="identity", bias=False, dtype=np.float64, seed=seed)
        model.W_hh[...] = Q @ np.diag(radius * np.linspace(0.5, 1.0, hidden)) @ Q.T
        assert abs(spectral_radius(model.W_hh) - radius) < 1e-9
        x = rng.integers(0, 8, (steps, 1))
        weights = np.zeros((steps, 1))
        weights[-1] = 1.0
        model.forward(x)
        model.loss(rng.integers(0, 8, (steps, 1)), weights)
        model.backward(record_dh_norms=True)
        out[radius] = model.dh_norms
    return out


def plot_gradient_norms(path: Union[str, Path], radii: Sequence[float] = (0.8, 1.0, 1.2)) -> Path:
    """||dL/dh_t|| against t for spectral radius below, at and above 1 (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for radius, norms in gradient_norms_by_radius(radii).items():
        ax.plot(np.arange(1, len(norms) + 1), norms, label=f"spectral radius {radius:g}")
    ax.set_xlabel("t (loss at the last step)")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title("Vanishing and exploding gradients: powers of W_hh^T")
    return _save(plt, fig, ax, path)
