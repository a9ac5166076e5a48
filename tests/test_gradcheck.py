"""BPTT gradients against central finite differences of the model's own loss."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbptt import gradcheck

from conftest import make_problem


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_finite_differences(activation, tokens, loss):
    p = make_problem(activation=activation, tokens=tokens, loss=loss, masked=True, T=12)
    errors = gradcheck.check_gradients(
        p.model, p.x, p.targets, h0=p.h0, weights=p.weights, samples=15
    )
    assert set(errors) == set(p.model.parameter_names())
    for name, error in errors.items():
        assert error <= 1e-6, (name, error)


def test_check_catches_a_wrong_gradient():
    """The check itself can fail: a perturbed analytic gradient is reported."""
    p = make_problem()
    p.model.forward_backward(p.x, p.targets, h0=p.h0)
    analytic = p.model.grad("W_hh").copy().reshape(-1)
    indices = np.arange(analytic.size)

    def loss():
        p.model.forward(p.x, p.h0)
        return p.model.loss(p.targets)

    numeric = gradcheck.numerical_gradient(loss, p.model.W_hh, indices)
    assert gradcheck.relative_error(analytic, numeric) <= 1e-6
    analytic[3] *= 1.01
    assert gradcheck.relative_error(analytic, numeric) > 1e-4
