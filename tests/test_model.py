"""RNN.forward's optional outputs, against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference


@pytest.mark.parametrize("tokens", [True, False])
def test_return_states_gives_every_hidden_state(tokens):
    """``forward(..., return_states=True)``: h_1 .. h_T against the NumPy reference's forward."""
    rng = np.random.default_rng(4)
    model = rb.RNN(5, 6, 3, dtype=np.float64, seed=2)
    x = rng.integers(0, 5, (7, 2)) if tokens else rng.normal(size=(7, 2, 5))
    h0 = rng.normal(size=(2, 6))
    outputs, h_T, states = model.forward(x, h0, return_states=True)
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    hs, os_ = reference.forward(params, x, h0=h0)
    np.testing.assert_allclose(states, np.stack([h.T for h in hs[1:]]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outputs, np.stack([o.T for o in os_]), rtol=1e-12, atol=1e-14)
    assert np.array_equal(states[-1], h_T)
    assert len(model.forward(x, h0)) == 2
    with pytest.raises(TypeError, match="return_states: expected True or False"):
        model.forward(x, h0, return_states=1)
