"""Cross-check against PyTorch autograd: nn.RNN + nn.Linear + cross_entropy."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_problem, model_grads, rel_err, torch_modules


def torch_gradients(torch, p, activation, bias, tokens, dtype):
    m = p.model
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    rnn, linear = torch_modules(torch, m, activation)
    if tokens:
        x = torch.nn.functional.one_hot(torch.from_numpy(p.x), m.input_size).to(tdtype)
    else:
        x = torch.from_numpy(p.x)
    h0 = torch.from_numpy(p.h0)[None].requires_grad_(True)
    out, _ = rnn(x, h0)
    logits = linear(out)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, m.output_size), torch.from_numpy(p.targets).reshape(-1)
    )
    loss.backward()
    grads = {"W_hx": rnn.weight_ih_l0.grad, "W_hh": rnn.weight_hh_l0.grad, "W_qh": linear.weight.grad}
    if bias:
        grads["b_h"] = rnn.bias_ih_l0.grad
        grads["b_q"] = linear.bias.grad
    return loss.item(), {k: v.numpy() for k, v in grads.items()}, h0.grad[0].numpy()


@pytest.mark.parametrize("dtype,tolerance", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_autograd(torch, dtype, tolerance, activation, tokens, bias):
    p = make_problem(
        T=15, n=4, d=7, h=12, q=9, activation=activation, tokens=tokens, bias=bias, dtype=dtype
    )
    p.model.forward(p.x, p.h0)
    value = p.model.loss(p.targets)
    result = p.model.backward()
    torch_loss, torch_grads, torch_dh0 = torch_gradients(torch, p, activation, bias, tokens, dtype)
    assert abs(value - torch_loss) <= tolerance * abs(torch_loss)
    grads = model_grads(p.model)
    assert set(grads) == set(torch_grads)
    for name in grads:
        assert rel_err(grads[name], torch_grads[name]) <= tolerance, name
    assert rel_err(result.dh0, torch_dh0) <= tolerance
