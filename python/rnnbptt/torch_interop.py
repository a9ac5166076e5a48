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


def _shaped(state: dict[str, Any], key: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"{name}: expected key {key!r}, got keys {sorted(state)}")
    value = _numpy(state[key])
    if value.shape != shape:
        raise ValueError(f"{name}: expected {key!r} of shape {shape}, got {tuple(value.shape)}")
    return value


def from_torch(rnn_state: dict[str, Any], linear_state: dict[str, Any], dtype: Any = np.float32) -> RNN:
    """Build an :class:`RNN` from the state dicts of ``nn.RNN`` and ``nn.Linear``.

    Shapes must be exactly nn.RNN's and nn.Linear's: ``weight_ih_l0`` (h, d),
    ``weight_hh_l0`` (h, h), ``bias_ih_l0`` and ``bias_hh_l0`` (h,), ``weight`` (q, h) and
    ``bias`` (q,); anything else raises ValueError naming the key (nothing is broadcast)."""
    keys = set(rnn_state)
    unsupported = sorted(keys - {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"})
    if unsupported:
        raise ValueError(f"rnn_state: expected a one-layer unidirectional nn.RNN, got keys {unsupported}")
    if "weight_ih_l0" not in rnn_state:
        raise ValueError(f"rnn_state: expected key 'weight_ih_l0', got keys {sorted(rnn_state)}")
    first = _numpy(rnn_state["weight_ih_l0"])
    if first.ndim != 2:
        raise ValueError(f"rnn_state: expected 'weight_ih_l0' of shape (h, d), got {tuple(first.shape)}")
    h, d = first.shape
    if "weight" not in linear_state:
        raise ValueError(f"linear_state: expected key 'weight', got keys {sorted(linear_state)}")
    out = _numpy(linear_state["weight"])
    if out.ndim != 2 or out.shape[1] != h:
        raise ValueError(f"linear_state: expected 'weight' of shape (q, {h}), got {tuple(out.shape)}")
    q = out.shape[0]
    bias = "bias_ih_l0" in rnn_state
    if bias != ("bias_hh_l0" in rnn_state):
        raise ValueError("rnn_state: expected both 'bias_ih_l0' and 'bias_hh_l0' or neither")
    if bias != ("bias" in linear_state):
        raise ValueError("linear_state: expected biases in both nn.RNN and nn.Linear or in neither")
    W_hh = _shaped(rnn_state, "weight_hh_l0", (h, h), "rnn_state")
    extra = sorted(set(linear_state) - {"weight", "bias"})
    if extra:
        raise ValueError(f"linear_state: expected the keys of nn.Linear ('weight', 'bias'), got also {extra}")
    model = RNN(d, h, q, bias=bias, dtype=dtype)
    model.W_hx[...] = first
    model.W_hh[...] = W_hh
    model.W_qh[...] = out
    if bias:
        model.param("b_h")[...] = (
            _shaped(rnn_state, "bias_ih_l0", (h,), "rnn_state") + _shaped(rnn_state, "bias_hh_l0", (h,), "rnn_state")
        )
        model.param("b_q")[...] = _shaped(linear_state, "bias", (q,), "linear_state")
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
