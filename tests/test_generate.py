"""Generation against the NumPy reference, and PyTorch weight interop."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference
from rnnbptt.torch_interop import from_torch, to_torch


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


@pytest.mark.parametrize("bias", [True, False])
def test_torch_round_trip_gives_identical_outputs(torch, bias):
    rnn = torch.nn.RNN(7, 10, bias=bias, dtype=torch.float64)
    linear = torch.nn.Linear(10, 5, bias=bias, dtype=torch.float64)
    if bias:
        with torch.no_grad():
            rnn.bias_hh_l0.normal_()  # both nn.RNN biases in use
    model = from_torch(rnn.state_dict(), linear.state_dict(), dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((9, 3, 7))
    ours, _ = model.forward(x)
    with torch.no_grad():
        theirs = linear(rnn(torch.from_numpy(x))[0]).numpy()
    assert np.abs(ours - theirs).max() <= 1e-12 * np.abs(theirs).max()
    rnn_state, linear_state = to_torch(model)
    rnn2 = torch.nn.RNN(7, 10, bias=bias, dtype=torch.float64)
    linear2 = torch.nn.Linear(10, 5, bias=bias, dtype=torch.float64)
    rnn2.load_state_dict(rnn_state)
    linear2.load_state_dict(linear_state)
    with torch.no_grad():
        again = linear2(rnn2(torch.from_numpy(x))[0]).numpy()
    assert np.abs(again - theirs).max() <= 1e-12 * np.abs(theirs).max()


def test_torch_interop_rejects_other_architectures(torch):
    rnn = torch.nn.RNN(4, 6, num_layers=2)
    with pytest.raises(ValueError, match="rnn_state: expected a one-layer unidirectional nn.RNN"):
        from_torch(rnn.state_dict(), torch.nn.Linear(6, 3).state_dict())
