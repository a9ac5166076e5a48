"""Weights to and from PyTorch's ``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` (any ``num_layers``,
unidirectional, no projections) + ``nn.Linear``.

The cells and the gate order are PyTorch's, so ``weight_ih_l{l}``, ``weight_hh_l{l}``,
``bias_ih_l{l}`` and ``bias_hh_l{l}`` are rnnbptt's ``W_hx``, ``W_hh``, ``b_hx`` and ``b_hh`` of
layer ``l`` as they are (names of layer ``l >= 1`` end with ``_l{l}``). ``nn.RNN`` has two biases
that always appear as a sum: loading sets ``b_h = b_ih + b_hh``; exporting puts ``b_h`` in
``b_ih`` and zeros in ``b_hh``. Outputs are identical either way. The cell is read off the
weights (``weight_hh_l0`` has ``h``, ``3h`` or ``4h`` rows); ``nn.RNN``'s nonlinearity is the
module's, not its state dict's (which does not record it), and the dtype is the weights' own:
nothing is guessed or silently converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._checks import shown
from ._dtypes import check_dtype
from .model import RNN

#: The nonlinearities of ``nn.RNN``.
NONLINEARITIES = ("tanh", "relu")


def _numpy(tensor: Any, key: str, name: str) -> np.ndarray:
    if not callable(getattr(tensor, "detach", None)):
        raise TypeError(f"{name}: expected torch tensors, got {type(tensor).__name__} as {key!r}")
    try:
        return tensor.detach().cpu().numpy()
    except TypeError as error:  # a dtype that NumPy cannot hold (bfloat16)
        raise ValueError(
            f"{name}: expected float32 or float64 weights, got {tensor.dtype} in {key!r} ({error})"
        ) from None


def _shaped(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"{name}: expected key {key!r}, got keys {sorted(arrays)}")
    value = arrays[key]
    if value.shape != shape:
        raise ValueError(f"{name}: expected {key!r} of shape {shape}, got {tuple(value.shape)}")
    return value


def _state(value: Any, name: str, module: str) -> tuple[Mapping[str, Any], Any]:
    """``(state dict, module or None)`` of ``value``: a state dict, or a module that has one."""
    if isinstance(value, Mapping):
        return value, None
    if callable(getattr(value, "state_dict", None)):
        return value.state_dict(), value
    raise TypeError(f"{name}: expected the state dict of an {module} or the module itself, got {type(value).__name__}")


#: The cell of each number of gate blocks in ``weight_hh_l0``, and PyTorch's module for it.
_CELL_OF_GATES = {1: "elman", 3: "gru", 4: "lstm"}
_MODULE_OF_CELL = {"elman": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
_MODE_OF_MODULE = {"RNN_TANH": ("elman", "tanh"), "RNN_RELU": ("elman", "relu"), "GRU": ("gru", None),
                   "LSTM": ("lstm", None)}


def _nonlinearity(rnn: Any, cell: str, nonlinearity: Optional[str]) -> str:
    """The activation of the model: the nn.RNN's nonlinearity (from the module, or given with a
    state dict), ``"tanh"`` for the gated cells."""
    if nonlinearity is not None and (not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES):
        error = ValueError if isinstance(nonlinearity, str) else TypeError
        raise error(f"nonlinearity: expected 'tanh' or 'relu' (or None with an nn.RNN), got {shown(nonlinearity)}")
    if rnn is not None:
        mode = getattr(rnn, "mode", None)
        if mode not in _MODE_OF_MODULE:
            raise TypeError(
                f"rnn_state: expected an nn.RNN, nn.GRU or nn.LSTM (or its state dict), got {type(rnn).__name__}"
                + (f" with mode {shown(mode)}" if mode is not None else "")
            )
        own_cell, own = _MODE_OF_MODULE[mode]
        if own_cell != cell:  # pragma: no cover - a module's weights have its own shapes
            raise ValueError(f"rnn_state: the weights are those of the {cell} cell, the module is {mode}")
        if own is None:
            if nonlinearity is not None:
                raise ValueError(f"nonlinearity: the {cell} cell has none to choose, got {nonlinearity!r}")
            return "tanh"
        if nonlinearity is not None and nonlinearity != own:
            raise ValueError(f"nonlinearity: expected the nn.RNN's own {own!r} (or None), got {nonlinearity!r}")
        return own
    if cell != "elman":
        if nonlinearity is not None:
            raise ValueError(f"nonlinearity: the {cell} cell has none to choose, got {nonlinearity!r}")
        return "tanh"
    if nonlinearity is None:
        raise TypeError(
            "nonlinearity: expected 'tanh' or 'relu' with a state dict, which does not record it (pass "
            "nonlinearity=rnn.nonlinearity, or the nn.RNN itself), got None"
        )
    return nonlinearity


def _suffix(layer: int) -> str:
    return "" if layer == 0 else f"_l{layer}"


def from_torch(
    rnn_state: Any,
    linear_state: Any,
    dtype: Optional[npt.DTypeLike] = None,
    *,
    nonlinearity: Optional[str] = None,
) -> RNN:
    """Build an :class:`~rnnbptt.RNN` from ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` and ``nn.Linear``,
    or from their state dicts.

    Parameters
    ----------
    rnn_state : torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM or dict
        The recurrent module (any ``num_layers``, unidirectional, no ``proj_size``), or its
        ``state_dict()``. The cell is read off ``weight_hh_l0`` (``h``, ``3h`` or ``4h`` rows)
        and the layers off the keys.
    linear_state : torch.nn.Linear or dict
        The ``nn.Linear`` on top of it, or its ``state_dict()``.
    dtype : float32 or float64, optional
        None (default): the dtype of the torch weights, which must be float32 or float64 (all
        alike). Given: it must be that dtype (ValueError otherwise); weights are never
        converted (``module.double()`` or ``module.float()`` converts them in PyTorch).
    nonlinearity : {'tanh', 'relu'}, optional
        For ``nn.RNN`` only. Required with its state dict, which does not record it:
        ``rnn.nonlinearity``. With the module it is read from the module, and if given must be
        the same.

    Returns
    -------
    RNN
        The model: ``cell``, ``num_layers``, ``bias`` and ``activation`` those of the module;
        for ``nn.RNN`` ``b_h = bias_ih_l* + bias_hh_l*``.

    Raises
    ------
    TypeError
        Without the nonlinearity of an ``nn.RNN`` state dict, or for arguments that are
        neither modules nor state dicts.
    ValueError
        For another architecture (bidirectional, projections) or other shapes: they must be
        exactly PyTorch's, ``weight_ih_l0`` (G h, d), ``weight_ih_l{l}`` (G h, h) above,
        ``weight_hh_l{l}`` (G h, h), ``bias_ih_l{l}`` and ``bias_hh_l{l}`` (G h,), ``weight``
        (q, h) and ``bias`` (q,); the message names the key (nothing is broadcast). Also for
        weights that are not float32 or float64, of mixed dtypes, or of another dtype than
        ``dtype``.
    """
    rnn_state, rnn_module = _state(rnn_state, "rnn_state", "nn.RNN, nn.GRU or nn.LSTM")
    if rnn_module is not None and getattr(rnn_module, "mode", None) not in _MODE_OF_MODULE:
        raise TypeError(f"rnn_state: expected an nn.RNN, nn.GRU or nn.LSTM (or its state dict), got "
                        f"{type(rnn_module).__name__}")
    linear_state, _ = _state(linear_state, "linear_state", "nn.Linear")
    rnn = {key: _numpy(value, key, "rnn_state") for key, value in rnn_state.items()}
    linear = {key: _numpy(value, key, "linear_state") for key, value in linear_state.items()}
    num_layers = 0
    while f"weight_ih_l{num_layers}" in rnn:
        num_layers += 1
    if num_layers == 0:
        raise ValueError(f"rnn_state: expected key 'weight_ih_l0', got keys {sorted(rnn)}")
    layers_named = {int(match.group(1)) for key in rnn if (match := re.fullmatch(r"\w+_l(\d+)", key))}
    if layers_named and max(layers_named) >= num_layers:
        raise ValueError(f"rnn_state: expected key 'weight_ih_l{num_layers}' (the keys name layers up to "
                         f"{max(layers_named)}), got keys {sorted(rnn)}")
    dropout = getattr(rnn_module, "dropout", 0) if rnn_module is not None else 0
    if dropout:
        raise ValueError(f"rnn_state: expected a module without dropout between layers (rnnbptt has none), got "
                         f"dropout={dropout}")
    bias = "bias_ih_l0" in rnn
    if bias != ("bias_hh_l0" in rnn):
        raise ValueError("rnn_state: expected both 'bias_ih_l0' and 'bias_hh_l0' or neither")
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if bias else ())
    expected = {f"{name}_l{layer}" for layer in range(num_layers) for name in names}
    unsupported = sorted(set(rnn) - expected)
    if unsupported:
        raise ValueError(
            f"rnn_state: expected a unidirectional nn.RNN, nn.GRU or nn.LSTM without projections, "
            f"{'with' if bias else 'without'} biases, got keys {unsupported}"
        )
    first = rnn["weight_ih_l0"]
    if first.ndim != 2:
        raise ValueError(f"rnn_state: expected 'weight_ih_l0' of shape (G h, d), got {tuple(first.shape)}")
    if "weight_hh_l0" not in rnn:
        raise ValueError(f"rnn_state: expected key 'weight_hh_l0', got keys {sorted(rnn)}")
    W_hh, rows = rnn["weight_hh_l0"], first.shape[0]
    # The cell is read off weight_hh_l0: (G h, h) with G = 1, 3 or 4, as many rows as weight_ih_l0.
    if W_hh.ndim != 2 or W_hh.shape[0] != rows or W_hh.shape[1] == 0 or rows % W_hh.shape[1] != 0 or \
            rows // W_hh.shape[1] not in _CELL_OF_GATES:
        raise ValueError(f"rnn_state: expected 'weight_hh_l0' of shape ({rows}, h) with {rows} = h, 3h or 4h "
                         f"(nn.RNN, nn.GRU, nn.LSTM), got {tuple(W_hh.shape)}")
    h = W_hh.shape[1]
    gates = rows // h
    cell = _CELL_OF_GATES[gates]
    activation = _nonlinearity(rnn_module, cell, nonlinearity)
    d = first.shape[1]
    if "weight" not in linear:
        raise ValueError(f"linear_state: expected key 'weight', got keys {sorted(linear)}")
    out = linear["weight"]
    if out.ndim != 2 or out.shape[1] != h:
        raise ValueError(f"linear_state: expected 'weight' of shape (q, {h}), got {tuple(out.shape)}")
    q = out.shape[0]
    if bias != ("bias" in linear):
        raise ValueError(f"linear_state: expected biases in both {_MODULE_OF_CELL[cell]} and nn.Linear or in neither")
    extra = sorted(set(linear) - {"weight", "bias"})
    if extra:
        raise ValueError(f"linear_state: expected the keys of nn.Linear ('weight', 'bias'), got also {extra}")
    values: dict[str, np.ndarray] = {}
    rows = gates * h
    for layer in range(num_layers):
        sfx = _suffix(layer)
        values["W_hx" + sfx] = _shaped(rnn, f"weight_ih_l{layer}", (rows, d if layer == 0 else h), "rnn_state")
        values["W_hh" + sfx] = _shaped(rnn, f"weight_hh_l{layer}", (rows, h), "rnn_state")
        if bias:
            b_ih = _shaped(rnn, f"bias_ih_l{layer}", (rows,), "rnn_state")
            b_hh = _shaped(rnn, f"bias_hh_l{layer}", (rows,), "rnn_state")
            if cell == "elman":
                values["b_h" + sfx] = b_ih + b_hh
            else:
                values["b_hx" + sfx], values["b_hh" + sfx] = b_ih, b_hh
    values["W_qh"] = out
    if bias:
        values["b_q"] = _shaped(linear, "bias", (q,), "linear_state")
    model = RNN(d, h, q, activation=activation, bias=bias, dtype=_weights_dtype(rnn, linear, dtype), cell=cell,
                num_layers=num_layers)
    for name, value in values.items():
        model.param(name)[...] = value
    return model


def _weights_dtype(
    rnn: dict[str, np.ndarray], linear: dict[str, np.ndarray], dtype: Optional[npt.DTypeLike]
) -> np.dtype:
    """The one dtype of the weights (float32 or float64), which ``dtype``, if given, must be."""
    found = {(name, key): value.dtype for name, arrays in (("rnn_state", rnn), ("linear_state", linear))
             for key, value in arrays.items()}
    (name, key), weights = next(iter(found.items()))
    for (other_name, other_key), other in found.items():
        if other != weights:
            raise ValueError(
                f"{other_name}: expected weights of one dtype, got {weights} in {key!r} of {name} and {other} "
                f"in {other_key!r}"
            )
    if weights not in (np.float32, np.float64):
        raise ValueError(f"{name}: expected float32 or float64 weights, got {weights} in {key!r} (module.float() "
                         "converts them)")
    if dtype is not None:
        requested = check_dtype(dtype)
        if requested != weights:
            raise ValueError(
                f"dtype: expected the torch weights' own dtype, {weights} (or None), got {requested}; weights are "
                f"not converted (module.{'double' if requested == np.float64 else 'float'}() converts them)"
            )
    return weights


def to_torch(model: RNN) -> tuple[dict[str, Any], dict[str, Any]]:
    """State dicts for the model's PyTorch twin and ``nn.Linear(h, q)``, in the model's dtype:
    ``nn.RNN(d, h, num_layers, nonlinearity=model.activation)``, ``nn.GRU(d, h, num_layers)`` or
    ``nn.LSTM(d, h, num_layers)`` (each with ``bias=model.bias``; :func:`from_torch` needs the
    nn.RNN's nonlinearity back with state dicts)."""
    try:
        import torch
    except ImportError as error:
        raise ImportError("to_torch needs PyTorch: pip install torch") from error
    if model.activation not in ("tanh", "relu"):
        raise ValueError(f"model: nn.RNN supports tanh and relu, got {model.activation!r}")
    rnn: dict[str, Any] = {}
    for layer in range(model.num_layers):
        sfx = _suffix(layer)
        rnn[f"weight_ih_l{layer}"] = torch.from_numpy(model.param("W_hx" + sfx).copy())
        rnn[f"weight_hh_l{layer}"] = torch.from_numpy(model.param("W_hh" + sfx).copy())
        if model.bias and model.cell == "elman":
            rnn[f"bias_ih_l{layer}"] = torch.from_numpy(model.param("b_h" + sfx).copy())
            rnn[f"bias_hh_l{layer}"] = torch.zeros(model.hidden_size, dtype=rnn[f"bias_ih_l{layer}"].dtype)
        elif model.bias:
            rnn[f"bias_ih_l{layer}"] = torch.from_numpy(model.param("b_hx" + sfx).copy())
            rnn[f"bias_hh_l{layer}"] = torch.from_numpy(model.param("b_hh" + sfx).copy())
    linear = {"weight": torch.from_numpy(model.W_qh.copy())}
    if model.bias:
        linear["bias"] = torch.from_numpy(model.param("b_q").copy())
    return rnn, linear
