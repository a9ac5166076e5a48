"""PyTorch weight interop: nn.RNN + nn.Linear to and from an RNN, identical outputs."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbptt.torch_interop import from_torch, to_torch


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


@pytest.mark.parametrize(
    "where,key,shape,message",
    [
        ("rnn", "weight_ih_l0", (10,), r"rnn_state: expected 'weight_ih_l0' of shape \(h, d\), got \(10,\)"),
        ("rnn", "weight_hh_l0", (1, 10), r"rnn_state: expected 'weight_hh_l0' of shape \(10, 10\), got \(1, 10\)"),
        ("rnn", "weight_hh_l0", (10,), r"rnn_state: expected 'weight_hh_l0' of shape \(10, 10\), got \(10,\)"),
        ("rnn", "bias_ih_l0", (1,), r"rnn_state: expected 'bias_ih_l0' of shape \(10,\), got \(1,\)"),
        ("rnn", "bias_hh_l0", (10, 1), r"rnn_state: expected 'bias_hh_l0' of shape \(10,\), got \(10, 1\)"),
        ("linear", "weight", (5, 1), r"linear_state: expected 'weight' of shape \(q, 10\), got \(5, 1\)"),
        ("linear", "bias", (1,), r"linear_state: expected 'bias' of shape \(5,\), got \(1,\)"),
    ],
)
def test_from_torch_requires_exact_shapes(torch, where, key, shape, message):
    rnn = torch.nn.RNN(7, 10).state_dict()
    linear = torch.nn.Linear(10, 5).state_dict()
    target = rnn if where == "rnn" else linear
    target[key] = torch.zeros(shape)  # would broadcast into the model if it were not checked
    with pytest.raises(ValueError, match=message):
        from_torch(rnn, linear)


def test_from_torch_names_missing_and_unknown_keys(torch):
    rnn = torch.nn.RNN(7, 10).state_dict()
    linear = torch.nn.Linear(10, 5).state_dict()
    del rnn["weight_hh_l0"]
    with pytest.raises(ValueError, match="rnn_state: expected key 'weight_hh_l0'"):
        from_torch(rnn, linear)
    rnn = torch.nn.RNN(7, 10).state_dict()
    del rnn["bias_hh_l0"]
    with pytest.raises(ValueError, match="rnn_state: expected both 'bias_ih_l0' and 'bias_hh_l0' or neither"):
        from_torch(rnn, linear)
    with pytest.raises(ValueError, match="rnn_state: expected a one-layer unidirectional nn.RNN"):
        from_torch(torch.nn.RNN(7, 10, bidirectional=True).state_dict(), linear)
