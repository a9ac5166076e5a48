"""The closed form dL/dh_t = sum_i (W_hh^T)^{T-i} W_qh^T dL/do_{T+t-i} of the linear model
(docs/design.md section 3.3)."""

from __future__ import annotations

import numpy as np

from rnnbptt import reference

from conftest import make_problem, model_grads, rel_err


def test_closed_form_gives_the_core_gradients():
    p = make_problem(activation="identity", bias=False, tokens=False, with_h0=True, T=8, scale=0.4)
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets)
    p.model.backward(record_dh_norms=True)
    grads = model_grads(p.model)

    params = p.params64()
    hs, os = reference.forward(params, p.x, p.h0, "identity")
    _, dos = reference.loss_and_output_grads(os, p.targets)
    dhs = reference.closed_form_dh(params["W_hh"], params["W_qh"], dos)
    # Linear model: dL/da_t = dL/dh_t, so the closed form's sums give every weight gradient.
    T = len(dhs)
    dW_hx = sum(dhs[t] @ p.x[t] for t in range(T))
    dW_hh = sum(dhs[t] @ hs[t].T for t in range(T))
    dW_qh = sum(dos[t] @ hs[t + 1].T for t in range(T))
    assert rel_err(grads["W_hx"], dW_hx) <= 1e-10
    assert rel_err(grads["W_hh"], dW_hh) <= 1e-10
    assert rel_err(grads["W_qh"], dW_qh) <= 1e-10
    assert rel_err(p.model.dh_norms, [np.linalg.norm(g) for g in dhs]) <= 1e-10


def test_closed_form_agrees_with_the_recursion():
    p = make_problem(activation="identity", bias=False, tokens=True, T=6)
    params = p.params64()
    hs, os = reference.forward(params, p.x, None, "identity")
    _, dos = reference.loss_and_output_grads(os, p.targets)
    dhs = reference.closed_form_dh(params["W_hh"], params["W_qh"], dos)
    # The recursion dL/dh_t = W_hh^T dL/dh_{t+1} + W_qh^T dL/do_t, step by step.
    dh = params["W_qh"].T @ dos[-1]
    assert rel_err(dhs[-1], dh) <= 1e-12
    for t in range(len(dos) - 2, -1, -1):
        dh = params["W_hh"].T @ dh + params["W_qh"].T @ dos[t]
        assert rel_err(dhs[t], dh) <= 1e-12
