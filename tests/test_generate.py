"""Generation against the NumPy reference."""

from __future__ import annotations

import warnings

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
    with pytest.raises(ValueError, match="prefix: expected characters of the vocabulary"):
        rb.generate(model, vocab, "xyz", 5)


@pytest.mark.parametrize("temperature", [5e-324, 1e-310, 1e-300, 1e-30])
def test_tiny_temperatures_sample_the_greedy_text_without_warnings(temperature):
    """Below gap / 745 every probability but the largest logit's underflows to 0: the sample is
    the greedy text (the reference's argmax, as test_greedy_matches_reference_argmax checks),
    with no NaN and no RuntimeWarning."""
    vocab = rb.Vocab(list("abcdefghijkl"))
    model = trained_like_model()
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    ids = list(vocab.encode("abc"))
    for _ in range(25):
        _, os = reference.forward(params, np.array(ids).reshape(-1, 1))
        ids.append(int(np.argmax(os[-1][:, 0])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rb.generate(model, vocab, "abc", 25, temperature=temperature, seed=3) == vocab.decode(ids)


def softmax_oracle(logits, temperature):
    """softmax(logits / temperature) in exact rational arithmetic, rounded once at the end (an
    independent oracle: no shift, no floating-point exponent range)."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    z = [Decimal(float(v)) / Decimal(temperature) for v in logits]
    top = max(z)
    e = [(v - top).exp() for v in z]
    total = sum(e)
    return np.array([float(v / total) for v in e])


@pytest.mark.parametrize(
    "logits,temperature",
    [
        ([3.0, 2.0, 1.0, -4.0], 1.0),
        ([3.0, 2.0, 1.0, -4.0], 0.01),
        ([3.0, 2.999, 1.0, -4.0], 1e-3),
        ([1e300, -1e300, 0.0], 1.0),  # differences overflow: -inf, probability 0
        ([1.0, 1.0, 0.0], 5e-324),  # a tie for the largest: half each
        ([0.5, -0.25, 2.0], 1e308),  # nearly uniform
    ],
)
def test_softmax_against_exact_arithmetic(logits, temperature):
    from rnnbptt.generate import _softmax

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = _softmax(np.array(logits), temperature)
    expected = softmax_oracle(logits, temperature)
    assert np.all(np.isfinite(ours)) and ours.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-300)
