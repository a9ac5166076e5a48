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
    model = from_torch(rnn.state_dict(), linear.state_dict(), dtype=np.float64, nonlinearity="tanh")
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
    linear = torch.nn.Linear(6, 3)
    for rnn in (torch.nn.RNN(4, 6, num_layers=2, bidirectional=True), torch.nn.LSTM(4, 6, proj_size=3)):
        with pytest.raises(ValueError, match="rnn_state: expected a unidirectional nn.RNN, nn.GRU or nn.LSTM without "
                           "projections, with biases, got keys .*(_reverse|weight_hr_l0)"):
            from_torch(rnn.state_dict(), linear.state_dict(), nonlinearity="tanh" if rnn.mode != "LSTM" else None)
    with pytest.raises(TypeError, match="rnn_state: expected an nn.RNN, nn.GRU or nn.LSTM .*got Linear"):
        from_torch(linear, linear)


@pytest.mark.parametrize(
    "where,key,shape,message",
    [
        ("rnn", "weight_ih_l0", (10,), r"rnn_state: expected 'weight_ih_l0' of shape \(G h, d\), got \(10,\)"),
        ("rnn", "weight_hh_l0", (1, 10), r"rnn_state: expected 'weight_hh_l0' of shape \(10, h\) with 10 = h, 3h or "
         r"4h \(nn.RNN, nn.GRU, nn.LSTM\), got \(1, 10\)"),
        ("rnn", "weight_hh_l0", (10,), r"rnn_state: expected 'weight_hh_l0' of shape \(10, h\) .*got \(10,\)"),
        ("rnn", "weight_hh_l0", (10, 5), r"rnn_state: expected 'weight_hh_l0' of shape \(10, h\) .*got \(10, 5\)"),
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
        from_torch(rnn, linear, nonlinearity="tanh")


def test_from_torch_names_missing_and_unknown_keys(torch):
    rnn = torch.nn.RNN(7, 10).state_dict()
    linear = torch.nn.Linear(10, 5).state_dict()
    del rnn["weight_hh_l0"]
    with pytest.raises(ValueError, match="rnn_state: expected key 'weight_hh_l0'"):
        from_torch(rnn, linear, nonlinearity="tanh")
    rnn = torch.nn.RNN(7, 10).state_dict()
    del rnn["bias_hh_l0"]
    with pytest.raises(ValueError, match="rnn_state: expected both 'bias_ih_l0' and 'bias_hh_l0' or neither"):
        from_torch(rnn, linear, nonlinearity="tanh")
    with pytest.raises(ValueError, match="rnn_state: expected a unidirectional nn.RNN, nn.GRU or nn.LSTM"):
        from_torch(torch.nn.RNN(7, 10, bidirectional=True).state_dict(), linear, nonlinearity="tanh")


def torch_outputs(torch, rnn, linear, x: np.ndarray) -> np.ndarray:
    """The oracle: PyTorch's own forward pass, in the modules' dtype."""
    dtype = next(rnn.parameters()).dtype
    with torch.no_grad():
        return linear(rnn(torch.from_numpy(x).to(dtype))[0]).double().numpy()


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("as_modules", [True, False])
def test_from_torch_keeps_the_nonlinearity(torch, nonlinearity, as_modules):
    torch.manual_seed(0)
    rnn = torch.nn.RNN(6, 16, nonlinearity=nonlinearity, dtype=torch.float64)
    linear = torch.nn.Linear(16, 5, dtype=torch.float64)
    if as_modules:
        model = from_torch(rnn, linear)
    else:
        model = from_torch(rnn.state_dict(), linear.state_dict(), nonlinearity=rnn.nonlinearity)
    assert model.activation == nonlinearity
    x = np.random.default_rng(1).standard_normal((8, 3, 6))
    theirs = torch_outputs(torch, rnn, linear, x)
    ours, _ = model.forward(x)
    assert np.abs(ours - theirs).max() <= 1e-12 * np.abs(theirs).max()


def test_from_torch_never_guesses_the_nonlinearity(torch):
    rnn = torch.nn.RNN(6, 16, nonlinearity="relu")
    linear = torch.nn.Linear(16, 5)
    with pytest.raises(TypeError, match="nonlinearity: expected 'tanh' or 'relu' with a state dict, which does not "
                                        r"record it .*got None"):
        from_torch(rnn.state_dict(), linear.state_dict())
    with pytest.raises(ValueError, match="nonlinearity: expected the nn.RNN's own 'relu' \\(or None\\), got 'tanh'"):
        from_torch(rnn, linear, nonlinearity="tanh")
    with pytest.raises(ValueError, match="nonlinearity: expected 'tanh' or 'relu' .*got 'sigmoid'"):
        from_torch(rnn.state_dict(), linear.state_dict(), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity: the gru cell has none to choose, got 'relu'"):
        from_torch(torch.nn.GRU(6, 16), linear, nonlinearity="relu")


@pytest.mark.parametrize("torch_dtype,expected", [("float32", np.float32), ("float64", np.float64)])
def test_from_torch_keeps_the_dtype_of_the_weights(torch, torch_dtype, expected):
    torch.manual_seed(0)
    rnn = torch.nn.RNN(6, 16, dtype=getattr(torch, torch_dtype))
    linear = torch.nn.Linear(16, 5, dtype=getattr(torch, torch_dtype))
    model = from_torch(rnn, linear)
    assert model.dtype == expected
    for name, tensor in [("W_hx", rnn.weight_ih_l0), ("W_hh", rnn.weight_hh_l0), ("W_qh", linear.weight)]:
        assert np.array_equal(model.param(name), tensor.detach().numpy())  # not rounded on the way
    assert from_torch(rnn, linear, dtype=expected).dtype == expected  # the same dtype, asked for


def test_from_torch_refuses_a_dtype_other_than_the_weights(torch):
    rnn = torch.nn.RNN(6, 16, dtype=torch.float64)
    linear = torch.nn.Linear(16, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"dtype: expected the torch weights' own dtype, float64 \(or None\), "
                                         r"got float32"):
        from_torch(rnn, linear, dtype=np.float32)
    with pytest.raises(ValueError, match="linear_state: expected weights of one dtype, got float64 .* and float32"):
        from_torch(rnn, torch.nn.Linear(16, 5))
    with pytest.raises(ValueError, match="rnn_state: expected float32 or float64 weights, got float16"):
        from_torch(rnn.half(), linear.half())


def test_from_torch_names_a_missing_layer_and_refuses_dropout(torch):
    state = torch.nn.GRU(3, 4, num_layers=3).state_dict()
    linear = torch.nn.Linear(4, 2)
    del state["weight_ih_l1"]
    with pytest.raises(ValueError, match=r"rnn_state: expected key 'weight_ih_l1' \(the keys name layers up to 2\)"):
        from_torch(state, linear)
    with pytest.raises(ValueError, match=r"rnn_state: expected a module without dropout between layers .*0.5"):
        from_torch(torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5), linear)
