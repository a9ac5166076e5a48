"""Weights to and from PyTorch's ``nn.RNN`` (one layer, unidirectional) + ``nn.Linear``.

``nn.RNN`` has two biases, ``b_ih`` and ``b_hh``, that always appear as a sum: loading sets
``b_h = b_ih + b_hh``; exporting puts ``b_h`` in ``b_ih`` and zeros in ``b_hh``. Outputs are
identical either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import RNN


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def from_torch(rnn_state: dict[str, Any], linear_state: dict[str, Any], dtype: Any = np.float32) -> RNN:
    """Build an :class:`RNN` from the state dicts of ``nn.RNN`` and ``nn.Linear``."""
    keys = set(rnn_state)
    unsupported = sorted(k for k in keys if not k.endswith("_l0"))
    if unsupported:
        raise ValueError(f"rnn_state: expected a one-layer unidirectional nn.RNN, got keys {unsupported}")
    W_ih, W_hh = _numpy(rnn_state["weight_ih_l0"]), _numpy(rnn_state["weight_hh_l0"])
    W_ho = _numpy(linear_state["weight"])
    bias = "bias_ih_l0" in rnn_state
    if bias != ("bias" in linear_state):
        raise ValueError("linear_state: expected biases in both nn.RNN and nn.Linear or in neither")
    model = RNN(W_ih.shape[1], W_ih.shape[0], W_ho.shape[0], bias=bias, dtype=dtype)
    model.W_hx[...] = W_ih
    model.W_hh[...] = W_hh
    model.W_qh[...] = W_ho
    if bias:
        model.param("b_h")[...] = _numpy(rnn_state["bias_ih_l0"]) + _numpy(rnn_state["bias_hh_l0"])
        model.param("b_q")[...] = _numpy(linear_state["bias"])
    return model


def to_torch(model: RNN) -> tuple[dict[str, Any], dict[str, Any]]:
    """State dicts for ``nn.RNN(d, h, nonlinearity=...)`` and ``nn.Linear(h, q)``."""
    try:
        import torch
    except ImportError as error:
        raise ImportError("to_torch needs PyTorch: pip install torch") from error
    if model.activation not in ("tanh", "relu"):
        raise ValueError(f"model: nn.RNN supports tanh and relu, got {model.activation!r}")
    rnn = {"weight_ih_l0": torch.from_numpy(model.W_hx.copy()), "weight_hh_l0": torch.from_numpy(model.W_hh.copy())}
    linear = {"weight": torch.from_numpy(model.W_qh.copy())}
    if model.bias:
        rnn["bias_ih_l0"] = torch.from_numpy(model.param("b_h").copy())
        rnn["bias_hh_l0"] = torch.zeros(model.hidden_size, dtype=rnn["bias_ih_l0"].dtype)
        linear["bias"] = torch.from_numpy(model.param("b_q").copy())
    return rnn, linear
