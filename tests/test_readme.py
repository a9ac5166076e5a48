"""The README's self-contained Python examples, run verbatim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnnbptt as rb

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(after_heading: str, occurrence: int = 0) -> str:
    text = README.read_text().split(after_heading, 1)[1]
    return text.split("```python")[occurrence + 1].split("```")[0]


def test_python_in_ten_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet("## Python in ten lines"), "README", "exec"), scope)
    model, report = scope["model"], scope["report"]
    assert np.shares_memory(model.W_hh, model.params)
    assert report.norm > 0 and np.isfinite(scope["loss"])


def test_training_from_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = snippet("From Python:").replace("epochs=50", "epochs=3")  # the same code, shorter
    scope: dict = {}
    exec(compile(code, "README", "exec"), scope)
    assert (tmp_path / "run.safetensors").exists()
    history = scope["trainer"].history
    assert len(history) == 3 and history[-1].train_perplexity < history[0].train_perplexity
    assert isinstance(scope["vocab"], rb.Vocab)


def test_snippets_are_found():
    assert "rb.RNN(" in snippet("## Python in ten lines")
    with pytest.raises(IndexError):
        snippet("## Python in ten lines", occurrence=99)
