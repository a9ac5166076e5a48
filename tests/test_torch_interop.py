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
