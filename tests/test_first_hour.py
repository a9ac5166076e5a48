"""What a new user meets first: the built-in text, the end of ``rnnbptt train`` (two samples, a
summary, the next commands, a plot) and ``rnnbptt compare`` on the tasks, with tiny settings."""

from __future__ import annotations

import collections
import importlib.util
import math
import re
import shlex

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import checkpoint, data
from rnnbptt.cli import main, unigram_perplexity

TINY = "train --hidden 16 --steps 3 --batch-size 4 --num-steps 10 --sample-length 30"


def test_the_built_in_text_is_prose_long_enough_to_learn_words():
    text = data.default_corpus()
    assert len(text) >= 50_000
    assert text.isascii()
    assert "```" not in text and "](" not in text and "$" not in text  # prose, not Markdown or maths
    words = re.findall(r"[a-z]+", text.lower())
    assert len(words) > 8_000 and len(set(words)) > 1_000


def test_unigram_perplexity_is_the_frequency_model():
    train = np.array([0, 0, 0, 1, 1, 2])
    held_out = np.array([0, 2, 3])
    # Add-one counts over 4 symbols: 4, 3, 2, 1 of 10.
    expected = math.exp(-(math.log(4 / 10) + math.log(2 / 10) + math.log(1 / 10)) / 3)
    assert unigram_perplexity(train, held_out, 4) == pytest.approx(expected, rel=1e-12)
    # On text: counting characters gives the same number.
    text = "the cat sat on the mat and the hat"
    vocab = rb.Vocab.from_text(text)
    ids = vocab.encode(text)
    counts = collections.Counter(text[:20])
    by_counting = math.exp(-sum(math.log((counts[c] + 1) / (20 + len(vocab))) for c in text[20:]) / len(text[20:]))
    assert unigram_perplexity(ids[:20], ids[20:], len(vocab)) == pytest.approx(by_counting, rel=1e-12)


def test_train_ends_with_samples_summary_next_commands_and_a_plot(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(f"{TINY} --checkpoint my.safetensors --plot curve.png --valid-fraction 0")) == 0
    out = capsys.readouterr().out
    loaded = checkpoint.load(tmp_path / "my.safetensors")
    drawn = rb.generate(loaded.model, loaded.vocab, "The network", 30, temperature=0.5, seed=0)
    assert f"sample (temperature 0.5, seed 0):\n{drawn}\n" in out
    # Without a held-out part the summary compares the training perplexity.
    assert re.search(r"Final training perplexity [\d.]+, against [\d.]+ for the unigram baseline", out)
    assert "The checkpoint is my.safetensors." in out
    assert "rnnbptt generate --prefix 'The network' --temperature 0.5 --checkpoint my.safetensors" in out
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert "training curve written to curve.png" in out


def test_temperature_0_prints_the_greedy_sample_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(f"{TINY} --temperature 0 --text {__file__} --prefix import")) == 0
    out = capsys.readouterr().out
    assert "sample (greedy):\nimport" in out and "sample (temperature" not in out
    assert "rnnbptt train --timemachine" in out and "--prefix import " in out


def test_plot_without_matplotlib_is_a_mistake_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find_spec(name))
    assert main(shlex.split(f"{TINY} --plot curve.png")) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "rnnbptt train: error: argument --plot: plots need matplotlib, from the 'plot' extra: "
        "pip install 'rnnbptt[plot]'"
    )
    assert not (tmp_path / "rnnbptt-checkpoint.safetensors").exists()  # nothing was trained


def test_compare_on_the_adding_task(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split("compare --task adding --lag 4 --steps 30 --hidden 8 --plot '' "
                            "--strategies full regular:2")) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(full|regular:2) +(.+?) +([\d.]+) +[\d.]+ +[\d,]+ +(\d+)$", out, re.M)
    assert [(r[0], r[1], r[3]) for r in rows] == [("full", "15 (all)", "16"), ("regular:2", "1", "2")]
    assert "always answering 1 scores 0.167" in out
    assert not list(tmp_path.iterdir())  # --plot '' writes nothing


def test_compare_without_matplotlib_still_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib fails
    assert main(shlex.split("compare --lag 2 --steps 5 --hidden 8 --strategies full")) == 0
    out = capsys.readouterr().out
    assert re.search(r"^full +7 \(all\)", out, re.M)  # sequences of 4 x lag = 8 steps
    assert "no plot: plots need matplotlib: pip install 'rnnbptt[plot]'" in out
