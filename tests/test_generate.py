"""Generation against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference


def trained_like_model(vocab_size=12, hidden=16, seed=0):
    model = rb.RNN(vocab_size, hidden, vocab_size, dtype=np.float64, seed=seed)
    model.params[:] = np.random.default_rng(seed).normal(0, 0.6, model.num_parameters)
    return model


def test_greedy_matches_reference_argmax():
    vocab = rb.Vocab(list("abcdefghijkl"))
    model = trained_like_model()
    text = rb.generate(model, vocab, "abc", 25)
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    ids = list(vocab.encode("abc"))
    for _ in range(25):
        _, os = reference.forward(params, np.array(ids).reshape(-1, 1))
        ids.append(int(np.argmax(os[-1][:, 0])))
    assert text == vocab.decode(ids)


def test_sampling_is_seeded_and_tends_to_greedy_when_cold():
    vocab = rb.Vocab(list("abcdefghijkl"))
    model = trained_like_model()
    a = rb.generate(model, vocab, "ab", 40, temperature=1.0, seed=5)
    assert a == rb.generate(model, vocab, "ab", 40, temperature=1.0, seed=5)
    assert a != rb.generate(model, vocab, "ab", 40, temperature=1.0, seed=6)
    assert rb.generate(model, vocab, "ab", 40, temperature=1e-4, seed=1) == rb.generate(model, vocab, "ab", 40)


def test_generate_errors():
    vocab = rb.Vocab(list("abcdefghijkl"))
    model = trained_like_model()
    with pytest.raises(ValueError, match="prefix: expected at least one character"):
        rb.generate(model, vocab, "", 5)
    with pytest.raises(ValueError, match="temperature: expected a finite value >= 0, got -1"):
        rb.generate(model, vocab, "a", 5, temperature=-1)
    with pytest.raises(ValueError, match="vocab: expected 12 symbols"):
        rb.generate(model, rb.Vocab(list("ab")), "a", 5)
    with pytest.raises(ValueError, match="text: expected characters of the vocabulary"):
        rb.generate(model, vocab, "xyz", 5)
