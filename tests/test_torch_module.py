"""rnnbptt.torch.RNN against PyTorch autograd: the same network unrolled by hand in PyTorch,
truncated by hand (detach() for Regular, a gradient hook scaling by the flow for Randomized),
for every strategy, dense and token input; and the layer inside a PyTorch model trained by a
PyTorch optimizer."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb

torch = pytest.importorskip("torch")
rtorch = pytest.importorskip("rnnbptt.torch")

T, N, D, H, Q = 13, 3, 5, 7, 4


def layer(truncation, activation="tanh", bias=True, dtype=torch.float64, seed=1):
    return rtorch.RNN(D, H, Q, activation=activation, bias=bias, dtype=dtype, truncation=truncation, seed=seed)


def unrolled(weights, x, h0, activation, flow=None, start=0, stop=None):
    """Outputs and states of steps [start, stop) from h0, in plain PyTorch; with ``flow``, the
    gradient from step t + 1 into h_t is multiplied by flow[t] (a hook)."""
    act = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[activation]
    stop = x.shape[0] if stop is None else stop
    h, outputs = h0, []
    for t in range(start, stop):
        if flow is not None:
            h = h.clone()
            h.register_hook(lambda g, s=float(flow[t]): g * s)
        a = x[t] @ weights["W_hx"].T + h @ weights["W_hh"].T
        if "b_h" in weights:
            a = a + weights["b_h"]
        h = act(a)
        o = h @ weights["W_qh"].T
        outputs.append(o + weights["b_q"] if "b_q" in weights else o)
    return torch.stack(outputs), h


def leaves(module):
    return {name: torch.tensor(module.model.param(name), requires_grad=True) for name in module.model.parameter_names()}


def data(tokens, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, D, (T, N)) if tokens else rng.normal(size=(T, N, D)).astype(dtype)
    return x, rng.integers(0, Q, (T, N)), rng.normal(size=(N, H)).astype(dtype)


def loss_of(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs.reshape(-1, Q), torch.from_numpy(targets).reshape(-1))


def ours(module, x, targets, h0):
    xt = torch.from_numpy(x)
    if xt.is_floating_point():
        xt.requires_grad_(True)
    h0t = torch.from_numpy(h0).requires_grad_(True)
    outputs, h_T = module(xt, h0t)
    (loss_of(outputs, targets) + 0.3 * h_T.sum()).backward()
    grads = {name: getattr(module, name).grad.numpy().copy() for name in module.model.parameter_names()}
    return grads, h0t.grad.numpy(), (xt.grad.numpy() if xt.is_floating_point() else None)


def dense_input(x, tokens):
    xt = torch.nn.functional.one_hot(torch.from_numpy(x), D).double() if tokens else torch.from_numpy(x.copy())
    return xt.requires_grad_(not tokens)


def check(got, expected, tolerance):
    for name in expected[0]:
        np.testing.assert_allclose(got[0][name], expected[0][name].numpy(), rtol=tolerance, atol=tolerance,
                                   err_msg=name)
    np.testing.assert_allclose(got[1], expected[1].numpy(), rtol=tolerance, atol=tolerance, err_msg="dh0")
    if got[2] is not None:
        np.testing.assert_allclose(got[2], expected[2].numpy(), rtol=tolerance, atol=tolerance, err_msg="dx")


@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("activation,bias", [("tanh", True), ("relu", False)])
def test_full_matches_autograd(tokens, activation, bias):
    module = layer(rb.Full(), activation, bias)
    x, targets, h0 = data(tokens)
    got = ours(module, x, targets, h0)
    w, xt, h0t = leaves(module), dense_input(x, tokens), torch.from_numpy(h0).requires_grad_(True)
    outputs, h_T = unrolled(w, xt, h0t, activation)
    (loss_of(outputs, targets) + 0.3 * h_T.sum()).backward()
    check(got, ({k: v.grad for k, v in w.items()}, h0t.grad, xt.grad), 1e-10)


@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("k1,k2", [(4, 4), (3, 7)])
def test_regular_matches_the_detach_idiom(tokens, k1, k2):
    module = layer(rb.Regular(k1, k2))
    x, targets, h0 = data(tokens, seed=2)
    got = ours(module, x, targets, h0)
    w, xt, h0t = leaves(module), dense_input(x, tokens), torch.from_numpy(h0).requires_grad_(True)
    with torch.no_grad():
        states = [h0t]
        for t in range(T):
            states.append(unrolled(w, xt, states[-1], "tanh", start=t, stop=t + 1)[1])
    for begin in range(0, T, k1):  # each block's losses, backpropagated from a detached state k2 back
        end, first = min(begin + k1, T), max(0, begin - (k2 - k1))
        start_state = h0t if first == 0 else states[first].detach()
        outputs, h_last = unrolled(w, xt, start_state, "tanh", start=first, stop=end)
        block = torch.nn.functional.cross_entropy(
            outputs[begin - first :].reshape(-1, Q), torch.from_numpy(targets[begin:end]).reshape(-1), reduction="sum"
        ) / (T * N)
        if end == T:
            block = block + 0.3 * h_last.sum()  # dL/dh_T enters the last block
        block.backward()
    check(got, ({k: v.grad for k, v in w.items()}, h0t.grad, xt.grad), 1e-10)


@pytest.mark.parametrize("tokens", [False, True])
def test_randomized_matches_autograd_with_the_flow_as_a_hook(tokens):
    module = layer(rb.Randomized([1.0, 0.5, 0.3], seed=5))
    x, targets, h0 = data(tokens, seed=3)
    got = ours(module, x, targets, h0)
    flow = module.model.flow
    assert 0 < np.count_nonzero(flow) < T and np.any((flow != 0) & (flow != 1))  # cuts and rescaled steps
    w, xt, h0t = leaves(module), dense_input(x, tokens), torch.from_numpy(h0).requires_grad_(True)
    outputs, h_T = unrolled(w, xt, h0t, "tanh", flow=flow)
    (loss_of(outputs, targets) + 0.3 * h_T.sum()).backward()
    check(got, ({k: v.grad for k, v in w.items()}, h0t.grad, xt.grad), 1e-10)


def test_parameters_are_the_models_buffers():
    module = layer(rb.Full())
    module.W_hh.data.mul_(0.5)
    assert np.array_equal(module.model.W_hh, module.W_hh.detach().numpy())
    assert module.W_hh.data_ptr() == module.model.W_hh.ctypes.data


def test_inside_a_pytorch_model_trained_by_a_pytorch_optimizer():
    """An embedding before and a linear readout after our layer; Adam from PyTorch steps them
    all. Learns to echo the previous token, which needs the recurrence."""
    torch.manual_seed(0)
    embed = torch.nn.Embedding(D, D, dtype=torch.float32)
    rnn = layer(rb.Regular(5, 10), dtype=torch.float32, seed=3)
    readout = torch.nn.Linear(Q, D, dtype=torch.float32)
    opt = torch.optim.Adam([*embed.parameters(), *rnn.parameters(), *readout.parameters()], lr=0.02)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(150):
        ids = torch.from_numpy(rng.integers(0, D, (20, 16)))
        outputs, _ = rnn(embed(ids).contiguous())
        logits = readout(outputs)
        loss = torch.nn.functional.cross_entropy(logits[1:].reshape(-1, D), ids[:-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert embed.weight.grad is not None and embed.weight.grad.abs().sum() > 0  # dx reached the embedding
    assert np.mean(losses[-10:]) < 0.5 * np.log(D), losses[-10:]


def test_a_backward_of_an_earlier_forward_is_refused():
    module = layer(rb.Full())
    x, targets, h0 = data(False)
    first, _ = module(torch.from_numpy(x))
    module(torch.from_numpy(x))
    with pytest.raises(RuntimeError, match="expected the backward of the model.s latest forward"):
        first.sum().backward()


def test_bad_inputs_are_named():
    module = layer(rb.Full())
    x = torch.zeros((T, N, D), dtype=torch.float64)
    with pytest.raises(ValueError, match="x: expected a contiguous tensor"):
        module(x.transpose(0, 1))
    with pytest.raises(TypeError, match="x: expected float64, got float32"):
        module(x.float())
    module.W_hh.data = torch.zeros((H, H), dtype=torch.float64)
    with pytest.raises(RuntimeError, match="W_hh: expected the parameter to view the model's buffer"):
        module(x)


def test_another_forward_on_the_model_before_backward_is_refused():
    module = layer(rb.Full())
    x, _, _ = data(False)
    outputs, _ = module(torch.from_numpy(x))
    module.model.forward(x)  # the same model, through another path
    with pytest.raises(RuntimeError, match="expected the backward of the model's latest forward"):
        outputs.sum().backward()


def test_second_derivatives_and_in_place_changes_are_refused():
    module = layer(rb.Full())
    x, _, _ = data(False)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    outputs, _ = module(xt)
    (g,) = torch.autograd.grad(outputs.sum(), xt, create_graph=True)
    with pytest.raises(RuntimeError):
        (g * g).sum().backward()
    xt = torch.from_numpy(x.copy())
    outputs, _ = module(xt)
    xt.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        outputs.sum().backward()


@pytest.mark.parametrize("tokens", [False, True])
def test_resets_and_lengths_match_autograd_with_the_state_masked_by_hand(tokens):
    """resets= and lengths= (docs/design.md section 4.8) through the layer: a reset row starts
    again from h0's row, a sequence ends at its length (the loss over all positions sends
    nothing from later ones), h_T is each sequence's state at its length."""
    module = layer(rb.Full())
    x, targets, h0 = data(tokens)
    resets = np.zeros((T, N), dtype=bool)
    resets[4, 0] = resets[9, 0] = resets[6, 2] = True
    lengths = [T, 8, 11]
    xt = torch.from_numpy(x)
    if xt.is_floating_point():
        xt.requires_grad_(True)
    h0t = torch.from_numpy(h0).requires_grad_(True)
    outputs, h_T = module(xt, h0t, resets=torch.from_numpy(resets), lengths=torch.tensor(lengths))
    inside = torch.from_numpy((np.arange(T)[:, None] < np.array(lengths)[None, :]).astype(np.float64))
    losses = torch.nn.functional.cross_entropy(outputs.reshape(-1, Q), torch.from_numpy(targets).reshape(-1),
                                               reduction="none").reshape(T, N)
    ((losses * inside).sum() + 0.3 * h_T.sum()).backward()
    got = ({name: getattr(module, name).grad.numpy().copy() for name in module.model.parameter_names()},
           h0t.grad.numpy(), xt.grad.numpy() if xt.is_floating_point() else None)

    w, xd, h0r = leaves(module), dense_input(x, tokens), torch.from_numpy(h0).requires_grad_(True)
    act = torch.tanh
    h, outs, states = h0r, [], [h0r]
    for t in range(T):
        h = torch.where(torch.from_numpy(resets[t])[:, None], h0r, h)
        h = act(xd[t] @ w["W_hx"].T + h @ w["W_hh"].T + w["b_h"])
        outs.append(h @ w["W_qh"].T + w["b_q"])
        states.append(h)
    final = torch.stack([states[length][i] for i, length in enumerate(lengths)])
    expected_losses = torch.nn.functional.cross_entropy(torch.stack(outs).reshape(-1, Q),
                                                        torch.from_numpy(targets).reshape(-1),
                                                        reduction="none").reshape(T, N)
    ((expected_losses * inside).sum() + 0.3 * final.sum()).backward()
    np.testing.assert_allclose(h_T.detach().numpy(), final.detach().numpy(), rtol=1e-12)
    check(got, ({k: v.grad for k, v in w.items()}, h0r.grad, xd.grad), 1e-10)
