"""Weights to and from PyTorch's ``nn.RNN`` (one layer, unidirectional) + ``nn.Linear``.

``nn.RNN`` has two biases, ``b_ih`` and ``b_hh``, that always appear as a sum: loading sets
``b_h = b_ih + b_hh``; exporting puts ``b_h`` in ``b_ih`` and zeros in ``b_hh``. Outputs are
identical either way. The nonlinearity is the module's, not its state dict's (which does not
record it), and the dtype is the weights' own: nothing is guessed or silently converted.
"""

from __future__ import annotations

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


def _nonlinearity(rnn: Any, nonlinearity: Optional[str]) -> str:
    if nonlinearity is not None and (not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES):
        error = ValueError if isinstance(nonlinearity, str) else TypeError
        raise error(f"nonlinearity: expected 'tanh' or 'relu' (or None with an nn.RNN), got {shown(nonlinearity)}")
    if rnn is not None:
        own = getattr(rnn, "nonlinearity", None)
        if own not in NONLINEARITIES:
            raise TypeError(
                f"rnn_state: expected an nn.RNN (nonlinearity 'tanh' or 'relu'), got {type(rnn).__name__}"
                + (f" with nonlinearity {shown(own)}" if own is not None else "")
            )
        if nonlinearity is not None and nonlinearity != own:
            raise ValueError(f"nonlinearity: expected the nn.RNN's own {own!r} (or None), got {nonlinearity!r}")
        return str(own)
    if nonlinearity is None:
        raise TypeError(
            "nonlinearity: expected 'tanh' or 'relu' with a state dict, which does not record it (pass "
            "nonlinearity=rnn.nonlinearity, or the nn.RNN itself), got None"
        )
    return nonlinearity


def from_torch(
    rnn_state: Any,
    linear_state: Any,
    dtype: Optional[npt.DTypeLike] = None,
    *,
    nonlinearity: Optional[str] = None,
) -> RNN:
    """Build an :class:`~rnnbptt.RNN` from ``nn.RNN`` and ``nn.Linear``, or from their state dicts.

    Parameters
    ----------
    rnn_state : torch.nn.RNN or dict
        The ``nn.RNN`` (one layer, unidirectional), or its ``state_dict()``.
    linear_state : torch.nn.Linear or dict
        The ``nn.Linear`` on top of it, or its ``state_dict()``.
    dtype : float32 or float64, optional
        None (default): the dtype of the torch weights, which must be float32 or float64 (all
        alike). Given: it must be that dtype (ValueError otherwise); weights are never
        converted (``module.double()`` or ``module.float()`` converts them in PyTorch).
    nonlinearity : {'tanh', 'relu'}, optional
        Required with a state dict, which does not record it: ``rnn.nonlinearity``. With the
        module it is read from the module, and if given must be the same.

    Returns
    -------
    RNN
        The model, with ``activation`` the nonlinearity and ``b_h = bias_ih_l0 + bias_hh_l0``.

    Raises
    ------
    TypeError
        Without the nonlinearity, or for arguments that are neither modules nor state dicts.
    ValueError
        For another architecture or other shapes: they must be exactly nn.RNN's and
        nn.Linear's, ``weight_ih_l0`` (h, d), ``weight_hh_l0`` (h, h), ``bias_ih_l0`` and
        ``bias_hh_l0`` (h,), ``weight`` (q, h) and ``bias`` (q,); the message names the key
        (nothing is broadcast). Also for weights that are not float32 or float64, of mixed
        dtypes, or of another dtype than ``dtype``.
    """
    rnn_state, rnn_module = _state(rnn_state, "rnn_state", "nn.RNN")
    linear_state, _ = _state(linear_state, "linear_state", "nn.Linear")
    keys = set(rnn_state)
    unsupported = sorted(keys - {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"})
    if unsupported:
        raise ValueError(f"rnn_state: expected a one-layer unidirectional nn.RNN, got keys {unsupported}")
    activation = _nonlinearity(rnn_module, nonlinearity)
    rnn = {key: _numpy(value, key, "rnn_state") for key, value in rnn_state.items()}
    linear = {key: _numpy(value, key, "linear_state") for key, value in linear_state.items()}
    if "weight_ih_l0" not in rnn:
        raise ValueError(f"rnn_state: expected key 'weight_ih_l0', got keys {sorted(rnn)}")
    first = rnn["weight_ih_l0"]
    if first.ndim != 2:
        raise ValueError(f"rnn_state: expected 'weight_ih_l0' of shape (h, d), got {tuple(first.shape)}")
    h, d = first.shape
    if "weight" not in linear:
        raise ValueError(f"linear_state: expected key 'weight', got keys {sorted(linear)}")
    out = linear["weight"]
    if out.ndim != 2 or out.shape[1] != h:
        raise ValueError(f"linear_state: expected 'weight' of shape (q, {h}), got {tuple(out.shape)}")
    q = out.shape[0]
    bias = "bias_ih_l0" in rnn
    if bias != ("bias_hh_l0" in rnn):
        raise ValueError("rnn_state: expected both 'bias_ih_l0' and 'bias_hh_l0' or neither")
    if bias != ("bias" in linear):
        raise ValueError("linear_state: expected biases in both nn.RNN and nn.Linear or in neither")
    W_hh = _shaped(rnn, "weight_hh_l0", (h, h), "rnn_state")
    extra = sorted(set(linear) - {"weight", "bias"})
    if extra:
        raise ValueError(f"linear_state: expected the keys of nn.Linear ('weight', 'bias'), got also {extra}")
    b_h = b_q = None
    if bias:
        b_h = _shaped(rnn, "bias_ih_l0", (h,), "rnn_state") + _shaped(rnn, "bias_hh_l0", (h,), "rnn_state")
        b_q = _shaped(linear, "bias", (q,), "linear_state")
    model = RNN(d, h, q, activation=activation, bias=bias, dtype=_weights_dtype(rnn, linear, dtype))
    model.W_hx[...] = first
    model.W_hh[...] = W_hh
    model.W_qh[...] = out
    if b_h is not None and b_q is not None:
        model.param("b_h")[...] = b_h
        model.param("b_q")[...] = b_q
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
    """State dicts for ``nn.RNN(d, h, nonlinearity=model.activation)`` and ``nn.Linear(h, q)``,
    in the model's dtype (:func:`from_torch` needs that nonlinearity back with state dicts)."""
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
