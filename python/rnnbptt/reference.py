"""BPTT in plain NumPy, written straight from the equations of docs/design.md sections 2 and 3
(the oracle for tests).

Column vectors as in those notes: ``h_t``, ``x_t`` and ``o_t`` are columns and a batch of ``n``
sequences is ``n`` columns side by side. Nothing here is fast; everything is readable.

    a_t = W_hx x_t + W_hh h_{t-1} + b_h,   h_t = phi(a_t),   o_t = W_qh h_t + b_q
    L   = sum_{t,b} w_tb l(o_tb, y_tb) / sum_{t,b} w_tb

    dL/dh_t = W_qh^T dL/do_t + xi_{t+1} W_hh^T dL/da_{t+1}      dL/da_t = phi'(a_t) * dL/dh_t
    dW_qh = sum_t dL/do_t h_t^T     dW_hx = sum_t dL/da_t x_t^T     dW_hh = sum_t dL/da_t h_{t-1}^T

Gated cells and stacked layers. The second half of this module (:func:`cell_forward`, :func:`cell_backward`,
:func:`cell_loss_and_grads`, :func:`cell_regular_grads`) generalises the recursion above to three
cells, ``"elman"``, ``"gru"`` and ``"lstm"``, stacked in ``L >= 1`` layers, still with columns as
sequences. Layer ``l`` reads ``x^l_t``: the input ``x_t`` for ``l = 0``, the state ``h^{l-1}_t`` of
the layer below otherwise (so ``d_0 = d`` and ``d_l = h``). The output layer reads the top state,
``o_t = W_qh h^{L-1}_t + b_q``, and the loss is the one above. Parameter names of layer ``0`` carry
no suffix, those of layer ``l >= 1`` end with ``_l{l}`` (``W_hx_l1``, ``b_hh_l2``).
``sigma`` is the logistic function, ``*`` the elementwise product, and ``[u; v; w]`` stacks
blocks of rows; the gate blocks are in PyTorch's order, so that ``W_hx``, ``W_hh``, ``b_hx`` and
``b_hh`` are ``weight_ih_l*``, ``weight_hh_l*``, ``bias_ih_l*`` and ``bias_hh_l*`` of ``nn.GRU`` and
``nn.LSTM`` as they are. Without biases (``bias=False``) every ``b_*`` is absent and counts as 0.

Elman (``W_hx`` h x d_l, ``W_hh`` h x h, ``b_h``), exactly the cell of the first half::

    h_t = phi(W_hx x_t + W_hh h_{t-1} + b_h)

GRU (``W_hx`` 3h x d_l, ``W_hh`` 3h x h, ``b_hx`` and ``b_hh`` of 3h, blocks r, z, n)::

    [p_r; p_z; p_n] = W_hx x_t + b_hx          [s_r; s_z; s_n] = W_hh h_{t-1} + b_hh
    r_t = sigma(p_r + s_r)     z_t = sigma(p_z + s_z)     n_t = tanh(p_n + r_t * s_n)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

LSTM (``W_hx`` 4h x d_l, ``W_hh`` 4h x h, ``b_hx`` and ``b_hh`` of 4h, blocks i, f, g, o; the state
is the pair ``(h_t, c_t)``)::

    [p_i; p_f; p_g; p_o] = W_hx x_t + b_hx + W_hh h_{t-1} + b_hh
    i_t = sigma(p_i)   f_t = sigma(p_f)   g_t = tanh(p_g)   o_t = sigma(p_o)
    c_t = f_t * c_{t-1} + i_t * g_t            h_t = o_t * tanh(c_t)

Backward, one step of one layer. What arrives is ``dh_t``, the sum of the gradient from above
(``W_qh^T dL/do_t`` for the top layer, the input gradient ``W_hx^T dp_t`` of layer ``l + 1`` for the
others: never scaled) and of the recurrent gradient from step ``t + 1`` times its flow factor
(plus ``dc_t`` for the LSTM, likewise scaled). ``dp`` is the gradient of the input-side
pre-activations and ``ds`` that of the recurrent-side ones; ``sigma' = sigma (1 - sigma)`` and
``tanh' = 1 - tanh^2`` are read off the kept gate values::

    Elman:  dp = ds = phi'(a_t) * dh_t
    GRU:    dn = (1 - z_t) * dh_t        dp_n = tanh'(n_t) * dn       dz = (h_{t-1} - n_t) * dh_t
            dp_z = sigma'(z_t) * dz      dp_r = sigma'(r_t) * (s_n * dp_n)
            dp = [dp_r; dp_z; dp_n]      ds = [dp_r; dp_z; r_t * dp_n]
            direct term to h_{t-1}:  z_t * dh_t
    LSTM:   dc = dc_t + o_t * tanh'(c_t) * dh_t          do = tanh(c_t) * dh_t
            di = g_t * dc   df = c_{t-1} * dc   dg = i_t * dc
            dp = ds = [sigma'(i_t) di; sigma'(f_t) df; tanh'(g_t) dg; sigma'(o_t) do]
            direct term to c_{t-1}:  f_t * dc

    dW_hx += dp x_t^T    db_hx += sum_b dp    dW_hh += ds h_{t-1}^T    db_hh += sum_b ds
    (Elman: db_h += sum_b dp)       input gradient (to layer l - 1, or dL/dx_t):  W_hx^T dp
    recurrent gradient:  W_hh^T ds  (+ z_t * dh_t for the GRU),  and f_t * dc for the LSTM

The recurrent gradient leaving step ``t`` towards ``h_{t-1}`` (and ``c_{t-1}``) is multiplied by
the flow factor ``xi_t`` (``flow[t - 1]`` in 0-based code, as in the first half) in every
layer alike, including the GRU's direct ``z_t * dh_t`` term and the LSTM's ``f_t * dc``; ``xi_1``
scales the gradient of the initial states. A zero therefore detaches the whole state of every layer at that
step, as PyTorch's ``h.detach()`` does. Seeds ``dL/dh_T`` (and ``dL/dc_T``) handed in from a
later chunk enter at step ``T`` unscaled, as ``dh_T`` does above.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

Params = dict[str, np.ndarray]


def _phi(activation: str, a: np.ndarray) -> np.ndarray:
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0.0)
    return a


def _dphi(activation: str, h: np.ndarray) -> np.ndarray:
    """phi'(a) read off h = phi(a)."""
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    return np.ones_like(h)


def input_columns(x: np.ndarray, d: int, t: int) -> np.ndarray:
    """x_t as a (d, n) matrix of columns; token ids become one-hot columns."""
    if x.ndim == 2:
        return np.eye(d)[:, x[t]]
    return x[t].T.astype(np.float64)


def forward(
    params: Params, x: np.ndarray, h0: Optional[np.ndarray] = None, activation: str = "tanh"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Returns ``hs = [h_0, ..., h_T]`` and ``os = [o_1, ..., o_T]``, each (size, n)."""
    W_hx, W_hh, W_qh = params["W_hx"], params["W_hh"], params["W_qh"]
    h, d = W_hx.shape
    n = x.shape[1]
    b_h = params.get("b_h", np.zeros(h))
    b_q = params.get("b_q", np.zeros(W_qh.shape[0]))
    hs = [np.zeros((h, n)) if h0 is None else h0.T.astype(np.float64)]
    os = []
    for t in range(x.shape[0]):
        a_t = W_hx @ input_columns(x, d, t) + W_hh @ hs[-1] + b_h[:, None]
        hs.append(_phi(activation, a_t))
        os.append(W_qh @ hs[-1] + b_q[:, None])
    return hs, os


def loss_and_output_grads(
    os: list[np.ndarray], targets: np.ndarray, weights: Optional[np.ndarray] = None
) -> tuple[float, list[np.ndarray]]:
    """L and dL/do_t. Integer targets (T, n): softmax cross-entropy; float targets (T, n, q):
    0.5 ||o_t - y_t||^2."""
    T, n = targets.shape[:2]
    w = np.ones((T, n)) if weights is None else weights.astype(np.float64)
    # sum(w l) / sum(w) does not change when every weight is scaled: w / max(w) keeps weights
    # of 1e308 from overflowing the sum and subnormal ones from losing their precision.
    if weights is not None and w.max() > 0:
        w = w / w.max()
    total_weight = w.sum()
    loss, grads = 0.0, []
    for t in range(T):
        o = os[t]
        if np.issubdtype(targets.dtype, np.integer):
            # log softmax by log-sum-exp with the maximum subtracted: -log p_c stays finite
            # (e.g. 800 for a logit gap of 800) where log(exp(...) / sum) would give inf.
            shifted = o - o.max(axis=0)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=0))
            loss += -(w[t] * log_p[targets[t], np.arange(n)]).sum()
            p = np.exp(log_p)
            p[targets[t], np.arange(n)] -= 1.0
            grads.append(p * w[t] / total_weight)
        else:
            diff = o - targets[t].T
            loss += 0.5 * (w[t] * (diff * diff).sum(axis=0)).sum()
            grads.append(diff * w[t] / total_weight)
    return loss / total_weight, grads


def backward(
    params: Params,
    x: np.ndarray,
    hs: list[np.ndarray],
    dos: list[np.ndarray],
    activation: str = "tanh",
    flow: Optional[np.ndarray] = None,
    dh_T: Optional[np.ndarray] = None,
) -> tuple[Params, np.ndarray, np.ndarray]:
    """The backward recursion of docs/design.md section 3.1 with the truncation factors ``flow``
    (xi_1..xi_T, default all 1). Returns the parameter gradients, dL/dh_0 (n, h) and dL/dx (T, n, d)."""
    W_hx, W_hh, W_qh = params["W_hx"], params["W_hh"], params["W_qh"]
    d = W_hx.shape[1]
    T = len(dos)
    xi = np.ones(T) if flow is None else flow
    grads = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    dx = np.zeros((T, x.shape[1], d))
    da_next = None
    for t in reversed(range(T)):  # t is 0-based: step t + 1 of the 1-based maths
        dh = W_qh.T @ dos[t]
        if t == T - 1:
            if dh_T is not None:
                dh = dh + dh_T.T
        else:
            dh = dh + xi[t + 1] * (W_hh.T @ da_next)
        da = _dphi(activation, hs[t + 1]) * dh
        grads["W_qh"] += dos[t] @ hs[t + 1].T
        grads["W_hx"] += da @ input_columns(x, d, t).T
        grads["W_hh"] += da @ hs[t].T
        if "b_h" in grads:
            grads["b_h"] += da.sum(axis=1)
            grads["b_q"] += dos[t].sum(axis=1)
        dx[t] = (W_hx.T @ da).T
        da_next = da
    dh0 = (xi[0] * (W_hh.T @ da_next)).T
    return grads, dh0, dx


def loss_and_grads(
    params: Params,
    x: np.ndarray,
    targets: np.ndarray,
    *,
    h0: Optional[np.ndarray] = None,
    weights: Optional[np.ndarray] = None,
    activation: str = "tanh",
    flow: Optional[np.ndarray] = None,
    dh_T: Optional[np.ndarray] = None,
) -> tuple[float, Params, np.ndarray, np.ndarray]:
    """One whole BPTT step, min-char-rnn style: (L, grads, dL/dh_0, dL/dx)."""
    hs, os = forward(params, x, h0, activation)
    loss, dos = loss_and_output_grads(os, targets, weights)
    grads, dh0, dx = backward(params, x, hs, dos, activation, flow, dh_T)
    return loss, grads, dh0, dx


def closed_form_dh(W_hh: np.ndarray, W_qh: np.ndarray, dos: list[np.ndarray]) -> list[np.ndarray]:  # noqa: N803
    """The closed form for the linear model (docs/design.md section 3.3), used literally (1-based t):

        dL/dh_t = sum_{i=t}^{T} (W_hh^T)^{T-i} W_qh^T dL/do_{T+t-i}
    """
    T = len(dos)
    out = []
    for t in range(1, T + 1):
        total = np.zeros((W_hh.shape[0], dos[0].shape[1]))
        for i in range(t, T + 1):
            total += np.linalg.matrix_power(W_hh.T, T - i) @ W_qh.T @ dos[T + t - i - 1]
        out.append(total)
    return out


def regular_windows(T: int, k1: int, k2: int, step_offset: int = 0) -> list[tuple[int, int, int]]:
    """TBPTT(k1, k2)'s windows ``(first, begin, end)`` over steps ``[0, T)``, in Python's
    unbounded integers: blocks end where the global step index ``step_offset + t`` is a multiple
    of ``k1``; each window injects its block's losses ``[begin, end)`` and reaches ``k2 - k1``
    steps before the block's nominal start (a block may start before step 0)."""
    windows = []
    block = -(step_offset % k1)
    while block < T:
        windows.append((max(0, block - (k2 - k1)), max(block, 0), min(block + k1, T)))
        block += k1
    return windows


def regular_grads(
    params: Params,
    x: np.ndarray,
    targets: np.ndarray,
    k1: int,
    k2: int,
    *,
    h0: Optional[np.ndarray] = None,
    weights: Optional[np.ndarray] = None,
    activation: str = "tanh",
    step_offset: int = 0,
) -> tuple[float, Params]:
    """TBPTT(k1, k2) by brute force: one separate backward pass per window of
    :func:`regular_windows` (blocks aligned to global multiples of k1 from ``step_offset``),
    injecting only the block's losses. The state before a window is a constant (detached),
    except at the sequence start."""
    hs, os = forward(params, x, h0, activation)
    loss, dos = loss_and_output_grads(os, targets, weights)
    T = len(dos)
    total = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    for first, block_start, block_end in regular_windows(T, k1, k2, step_offset):
        window_dos = [
            dos[t] if block_start <= t < block_end else np.zeros_like(dos[t])
            for t in range(first, block_end)
        ]
        window_x = x[first:block_end]
        grads, _, _ = backward(params, window_x, hs[first : block_end + 1], window_dos, activation)
        for name in total:
            total[name] += grads[name]
    return loss, total


# --------------------------------------------------------------------------------------------
# Gated cells (GRU, LSTM) and stacked layers: the equations of the module docstring's second half.
# --------------------------------------------------------------------------------------------

States = dict[str, np.ndarray]

CELLS = ("elman", "gru", "lstm")
"""The cells of :func:`cell_forward`: the Elman cell of the first half, PyTorch's GRU and LSTM."""

_GATES = {"elman": 1, "gru": 3, "lstm": 4}


def _layer_name(base: str, layer: int) -> str:
    """``base`` for layer 0, ``base_l{layer}`` above it (``W_hx``, ``W_hx_l1``, ...)."""
    return base if layer == 0 else f"{base}_l{layer}"


def _check_cell(cell: str, activation: str) -> None:
    if cell not in _GATES:
        raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
    if cell == "elman":
        if activation not in ("tanh", "relu", "identity"):
            raise ValueError(f"activation: expected 'tanh', 'relu' or 'identity', got {activation!r}")
    elif activation != "tanh":
        raise ValueError(f"activation: the {cell} cell has no activation choice, got {activation!r}")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow: exp only ever sees -|a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def cell_param_shapes(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    num_layers: int = 1,
    bias: bool = True,
) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the parameters of a stack of cells and its output layer.

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    input_size, hidden_size, output_size : int
        ``d`` (features per step, or the vocabulary size for token ids), ``h`` and ``q``.
    num_layers : int
        ``L >= 1``; layer ``l >= 1`` reads the state of layer ``l - 1`` (``d_l = h``).
    bias : bool
        Whether the ``b_*`` parameters exist.

    Returns
    -------
    dict
        ``name -> shape`` in layer order, each layer as PyTorch orders it (``W_hx``, ``W_hh``,
        then ``b_h`` for Elman or ``b_hx``, ``b_hh`` for GRU and LSTM), then ``W_qh`` and ``b_q``.
        Layer 0's names have no suffix, layer ``l >= 1``'s end with ``_l{l}``. Gated cells stack
        their gate blocks along the rows: ``3h`` (r, z, n) for GRU, ``4h`` (i, f, g, o) for LSTM.
    """
    _check_cell(cell, "tanh")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
        if value < 1:
            raise ValueError(f"{name}: expected a positive size, got {value}")
    if num_layers < 1:
        raise ValueError(f"num_layers: expected at least 1, got {num_layers}")
    rows = _GATES[cell] * hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(num_layers):
        d = input_size if layer == 0 else hidden_size
        shapes[_layer_name("W_hx", layer)] = (rows, d)
        shapes[_layer_name("W_hh", layer)] = (rows, hidden_size)
        if bias:
            if cell == "elman":
                shapes[_layer_name("b_h", layer)] = (rows,)
            else:
                shapes[_layer_name("b_hx", layer)] = (rows,)
                shapes[_layer_name("b_hh", layer)] = (rows,)
    shapes["W_qh"] = (output_size, hidden_size)
    if bias:
        shapes["b_q"] = (output_size,)
    return shapes


def init_cell_params(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    num_layers: int = 1,
    bias: bool = True,
    seed: int = 0,
    dtype: type = np.float64,
    scale: Optional[float] = None,
) -> Params:
    """Random parameters for :func:`cell_forward`, drawn as PyTorch draws its defaults.

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    input_size, hidden_size, output_size : int
        ``d``, ``h`` and ``q``.
    num_layers : int
        ``L >= 1``.
    bias : bool
        Whether the ``b_*`` parameters exist.
    seed : int
        Seed of the NumPy generator; the same seed gives the same parameters.
    dtype : float32 or float64
        Scalar type of the arrays (the reference computes in float64 either way).
    scale : float, optional
        Every entry is uniform in ``[-scale, scale]``; by default ``1 / sqrt(h)``, as
        ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` and ``nn.Linear(h, q)`` draw theirs.

    Returns
    -------
    dict
        ``name -> ndarray`` with the names and shapes of :func:`cell_param_shapes`.
    """
    shapes = cell_param_shapes(cell, input_size, hidden_size, output_size, num_layers, bias)
    bound = 1.0 / np.sqrt(hidden_size) if scale is None else float(scale)
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}


def _cell_layout(cell: str, params: Params) -> tuple[int, int, bool]:
    """``(L, h, bias)`` read off the parameters, whose names and shapes are checked."""
    if "W_hx" not in params or "W_hh" not in params or "W_qh" not in params:
        raise ValueError(f"params: expected at least 'W_hx', 'W_hh' and 'W_qh', got {sorted(params)}")
    num_layers = 1
    while _layer_name("W_hx", num_layers) in params:
        num_layers += 1
    hidden = params["W_hh"].shape[-1]
    bias = "b_q" in params
    expected = cell_param_shapes(cell, params["W_hx"].shape[1], hidden, params["W_qh"].shape[0], num_layers, bias)
    if set(params) != set(expected):
        raise ValueError(f"params: expected the keys {sorted(expected)}, got {sorted(params)}")
    for name, shape in expected.items():
        if params[name].shape != shape:
            raise ValueError(f"params: expected {name!r} of shape {shape}, got {params[name].shape}")
    return num_layers, hidden, bias


def _state_stack(
    states: Optional[States], key: str, num_layers: int, n: int, hidden: int, what: str = "states"
) -> np.ndarray:
    """One state (``"h"`` or ``"c"``) of every layer as ``(L, n, h)`` float64, zeros if absent."""
    if states is None or key not in states:
        return np.zeros((num_layers, n, hidden))
    value = np.asarray(states[key], dtype=np.float64)
    if value.shape != (num_layers, n, hidden):
        label = f"{what}[{key!r}]" if what == "states" else what
        raise ValueError(f"{label}: expected shape {(num_layers, n, hidden)}, got {value.shape}")
    return value


class LayerTrace:
    """What the forward pass of one layer keeps for its backward pass (columns, float64).

    Parameters
    ----------
    inputs : list of ndarray
        ``x^l_1 .. x^l_T``, each ``(d_l, n)``: the input columns for layer 0, the states of the
        layer below otherwise.
    h : list of ndarray
        ``h_0 .. h_T``, each ``(h, n)``.
    c : list of ndarray
        ``c_0 .. c_T`` for the LSTM, each ``(h, n)``; empty for the other cells.
    gates : list of dict
        Per step, the values the backward pass reads: nothing for Elman (``phi'`` comes from
        ``h_t``); ``"r"``, ``"z"``, ``"n"`` and ``"s_n"`` (``W_hn h_{t-1} + b_hn``) for GRU;
        ``"i"``, ``"f"``, ``"g"``, ``"o"`` and ``"tanh_c"`` for LSTM.
    """

    def __init__(
        self,
        inputs: list[np.ndarray],
        h: list[np.ndarray],
        c: list[np.ndarray],
        gates: list[dict[str, np.ndarray]],
    ) -> None:
        self.inputs = inputs
        self.h = h
        self.c = c
        self.gates = gates

    def window(self, first: int, end: int) -> LayerTrace:
        """The steps ``[first, end)`` (0-based), starting from the state after step ``first``."""
        return LayerTrace(
            self.inputs[first:end], self.h[first : end + 1], self.c[first : end + 1], self.gates[first:end]
        )


def _cell_step(
    cell: str,
    activation: str,
    params: Params,
    layer: int,
    x: np.ndarray,
    h_prev: np.ndarray,
    c_prev: Optional[np.ndarray],
) -> tuple[np.ndarray, Optional[np.ndarray], dict[str, np.ndarray]]:
    """One step of one layer: ``(h_t, c_t or None, kept gate values)``."""
    W_hx, W_hh = params[_layer_name("W_hx", layer)], params[_layer_name("W_hh", layer)]
    if cell == "elman":
        a = W_hx @ x + W_hh @ h_prev
        b_h = params.get(_layer_name("b_h", layer))
        if b_h is not None:
            a = a + b_h[:, None]
        return _phi(activation, a), None, {}
    p = W_hx @ x
    s = W_hh @ h_prev
    b_hx = params.get(_layer_name("b_hx", layer))
    if b_hx is not None:
        p = p + b_hx[:, None]
        s = s + params[_layer_name("b_hh", layer)][:, None]
    hidden = h_prev.shape[0]
    if cell == "gru":
        r = _sigmoid(p[:hidden] + s[:hidden])
        z = _sigmoid(p[hidden : 2 * hidden] + s[hidden : 2 * hidden])
        s_n = s[2 * hidden :]
        n_t = np.tanh(p[2 * hidden :] + r * s_n)
        h_t = (1.0 - z) * n_t + z * h_prev
        return h_t, None, {"r": r, "z": z, "n": n_t, "s_n": s_n}
    assert c_prev is not None
    a = p + s
    i = _sigmoid(a[:hidden])
    f = _sigmoid(a[hidden : 2 * hidden])
    g = np.tanh(a[2 * hidden : 3 * hidden])
    o = _sigmoid(a[3 * hidden :])
    c_t = f * c_prev + i * g
    tanh_c = np.tanh(c_t)
    return o * tanh_c, c_t, {"i": i, "f": f, "g": g, "o": o, "tanh_c": tanh_c}


def cell_forward(
    cell: str,
    params: Params,
    x: np.ndarray,
    states: Optional[States] = None,
    *,
    activation: str = "tanh",
) -> tuple[list[LayerTrace], list[np.ndarray], States]:
    """Forward pass of a stack of ``L`` cells and the output layer.

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer (module docstring, second half).
    params : dict
        ``name -> ndarray`` as :func:`cell_param_shapes` lists them; ``L`` is read off the names.
    x : ndarray
        Dense input ``(T, n, d)`` or token ids ``(T, n)`` (one-hot columns of size ``d``).
    states : dict, optional
        Initial states: ``"h"`` (and ``"c"`` for LSTM), each ``(L, n, h)`` with layer 0 first,
        as PyTorch's ``h_0`` and ``c_0``; a missing key means zeros.
    activation : {"tanh", "relu", "identity"}
        ``phi`` of the Elman cell; the gated cells take only ``"tanh"`` (their own gates).

    Returns
    -------
    layers : list of LayerTrace
        Per layer, bottom first, what :func:`cell_backward` needs.
    os : list of ndarray
        ``o_1 .. o_T``, each ``(q, n)``.
    states_T : dict
        Final states ``"h"`` (and ``"c"``), each ``(L, n, h)``, as PyTorch's ``h_n`` and ``c_n``.
    """
    _check_cell(cell, activation)
    num_layers, hidden, bias = _cell_layout(cell, params)
    T, n = x.shape[:2]
    d = params["W_hx"].shape[1]
    h0 = _state_stack(states, "h", num_layers, n, hidden)
    c0 = _state_stack(states, "c", num_layers, n, hidden)
    below = [input_columns(x, d, t) for t in range(T)]
    layers = []
    for layer in range(num_layers):
        trace = LayerTrace(below, [h0[layer].T], [c0[layer].T] if cell == "lstm" else [], [])
        for t in range(T):
            h_t, c_t, kept = _cell_step(
                cell, activation, params, layer, below[t], trace.h[-1], trace.c[-1] if trace.c else None
            )
            trace.h.append(h_t)
            if c_t is not None:
                trace.c.append(c_t)
            trace.gates.append(kept)
        layers.append(trace)
        below = trace.h[1:]
    W_qh = params["W_qh"]
    b_q = params["b_q"] if bias else np.zeros(W_qh.shape[0])
    os = [W_qh @ h_t + b_q[:, None] for h_t in layers[-1].h[1:]]
    states_T = {"h": np.stack([trace.h[-1].T for trace in layers])}
    if cell == "lstm":
        states_T["c"] = np.stack([trace.c[-1].T for trace in layers])
    return layers, os, states_T


def _cell_step_backward(
    cell: str,
    activation: str,
    params: Params,
    grads: Params,
    layer: int,
    trace: LayerTrace,
    t: int,
    dh: np.ndarray,
    dc: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Backward through step ``t`` (0-based) of one layer, given the total ``dL/dh_t`` (and
    ``dL/dc_t``). Adds the step's terms into ``grads``; returns the input gradient ``W_hx^T dp``
    and the unscaled recurrent gradients w.r.t. ``h_{t-1}`` (and ``c_{t-1}``)."""
    W_hx, W_hh = params[_layer_name("W_hx", layer)], params[_layer_name("W_hh", layer)]
    x, h_prev, kept = trace.inputs[t], trace.h[t], trace.gates[t]
    dc_prev = None
    if cell == "elman":
        dp = ds = _dphi(activation, trace.h[t + 1]) * dh
        dh_direct = None
    elif cell == "gru":
        r, z, n_t, s_n = kept["r"], kept["z"], kept["n"], kept["s_n"]
        dp_n = (1.0 - n_t * n_t) * ((1.0 - z) * dh)
        dp_z = z * (1.0 - z) * ((h_prev - n_t) * dh)
        dp_r = r * (1.0 - r) * (s_n * dp_n)
        dp = np.concatenate([dp_r, dp_z, dp_n])
        ds = np.concatenate([dp_r, dp_z, r * dp_n])
        dh_direct = z * dh
    else:
        assert dc is not None
        i, f, g, o, tanh_c = kept["i"], kept["f"], kept["g"], kept["o"], kept["tanh_c"]
        dc_total = dc + o * (1.0 - tanh_c * tanh_c) * dh
        dp = ds = np.concatenate(
            [
                i * (1.0 - i) * (g * dc_total),
                f * (1.0 - f) * (trace.c[t] * dc_total),
                (1.0 - g * g) * (i * dc_total),
                o * (1.0 - o) * (tanh_c * dh),
            ]
        )
        dh_direct = None
        dc_prev = f * dc_total
    grads[_layer_name("W_hx", layer)] += dp @ x.T
    grads[_layer_name("W_hh", layer)] += ds @ h_prev.T
    if cell == "elman":
        if _layer_name("b_h", layer) in grads:
            grads[_layer_name("b_h", layer)] += dp.sum(axis=1)
    elif _layer_name("b_hx", layer) in grads:
        grads[_layer_name("b_hx", layer)] += dp.sum(axis=1)
        grads[_layer_name("b_hh", layer)] += ds.sum(axis=1)
    dh_prev = W_hh.T @ ds
    if dh_direct is not None:
        dh_prev = dh_prev + dh_direct
    return W_hx.T @ dp, dh_prev, dc_prev


def cell_backward(
    cell: str,
    params: Params,
    layers: list[LayerTrace],
    dos: list[np.ndarray],
    *,
    activation: str = "tanh",
    flow: Optional[np.ndarray] = None,
    dh_T: Optional[np.ndarray] = None,
    dc_T: Optional[np.ndarray] = None,
) -> tuple[Params, States, np.ndarray]:
    """Exact BPTT through a stack of cells, with the truncation factors ``flow``.

    Steps run from ``T`` down to 1 and, within a step, layers from the top down: the gradient
    reaching ``h^l_t`` is the one from above at the same step (``W_qh^T dL/do_t``, or layer
    ``l + 1``'s input gradient; never scaled) plus ``flow[t]`` (0-based) times the recurrent
    gradient from the next step. For ``cell="elman"`` and ``L = 1`` this is :func:`backward`,
    operation for operation.

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    params : dict
        The parameters :func:`cell_forward` ran with.
    layers : list of LayerTrace
        What :func:`cell_forward` kept (or a :meth:`LayerTrace.window` of it, for a window).
    dos : list of ndarray
        ``dL/do_1 .. dL/do_T``, each ``(q, n)`` (:func:`loss_and_output_grads`).
    activation : {"tanh", "relu", "identity"}
        ``phi`` of the Elman cell.
    flow : ndarray, optional
        ``(T,)`` factors, all 1 by default. ``flow[t]`` (0-based) multiplies the whole gradient
        that crosses from step ``t + 1`` back into the states after step ``t`` (``h`` of every
        layer, with the GRU's ``z * dh`` term, and the LSTM's ``c``); ``flow[0]`` scales the
        gradient of the initial states. Zeros are PyTorch's ``detach()`` at those steps.
    dh_T, dc_T : ndarray, optional
        ``dL/dh_T`` and, for LSTM, ``dL/dc_T``, each ``(L, n, h)``, handed in from a later chunk;
        they enter at the last step unscaled.

    Returns
    -------
    grads : dict
        ``dL/dparams``, same keys and shapes as ``params``, float64.
    dstates0 : dict
        ``dL/dh_0`` (and ``dL/dc_0``) of every layer, each ``(L, n, h)``, scaled by ``flow[0]``.
    dx : ndarray
        ``dL/dx`` ``(T, n, d)``: the input gradient of layer 0 (for token ids, that of the one-hot
        columns).
    """
    _check_cell(cell, activation)
    num_layers, hidden, _ = _cell_layout(cell, params)
    T = len(dos)
    if T < 1 or len(layers) != num_layers:
        raise ValueError(f"expected T >= 1 steps and {num_layers} layer traces, got {T} and {len(layers)}")
    n = dos[0].shape[1]
    xi = np.ones(T) if flow is None else np.asarray(flow, dtype=np.float64)
    if xi.shape != (T,):
        raise ValueError(f"flow: expected shape {(T,)}, got {xi.shape}")
    if dc_T is not None and cell != "lstm":
        raise ValueError(f"dc_T: only the lstm cell has a cell state, got cell {cell!r}")
    seed_h = None if dh_T is None else _state_stack({"h": dh_T}, "h", num_layers, n, hidden, "dh_T")
    seed_c = None if dc_T is None else _state_stack({"c": dc_T}, "c", num_layers, n, hidden, "dc_T")
    W_qh = params["W_qh"]
    grads = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    dx = np.zeros((T, n, params["W_hx"].shape[1]))
    dh_next: list[Optional[np.ndarray]] = [None] * num_layers  # unscaled, from step t + 1
    dc_next: list[Optional[np.ndarray]] = [None] * num_layers
    top = layers[-1]
    for t in reversed(range(T)):  # t is 0-based: step t + 1 of the 1-based maths
        grads["W_qh"] += dos[t] @ top.h[t + 1].T
        if "b_q" in grads:
            grads["b_q"] += dos[t].sum(axis=1)
        from_above = W_qh.T @ dos[t]
        for layer in reversed(range(num_layers)):
            dh = from_above
            dc: Optional[np.ndarray] = None
            if t == T - 1:
                if seed_h is not None:
                    dh = dh + seed_h[layer].T
                if cell == "lstm":
                    dc = np.zeros((hidden, n)) if seed_c is None else seed_c[layer].T
            else:
                carried = dh_next[layer]
                assert carried is not None
                dh = dh + xi[t + 1] * carried
                if cell == "lstm":
                    carried_c = dc_next[layer]
                    assert carried_c is not None
                    dc = xi[t + 1] * carried_c
            from_above, dh_next[layer], dc_next[layer] = _cell_step_backward(
                cell, activation, params, grads, layer, layers[layer], t, dh, dc
            )
        dx[t] = from_above.T
    dstates0 = {"h": np.stack([(xi[0] * dh).T for dh in dh_next if dh is not None])}
    if cell == "lstm":
        dstates0["c"] = np.stack([(xi[0] * dc).T for dc in dc_next if dc is not None])
    return grads, dstates0, dx


def cell_loss_and_grads(
    cell: str,
    params: Params,
    x: np.ndarray,
    targets: np.ndarray,
    *,
    states: Optional[States] = None,
    weights: Optional[np.ndarray] = None,
    activation: str = "tanh",
    flow: Optional[np.ndarray] = None,
    dh_T: Optional[np.ndarray] = None,
    dc_T: Optional[np.ndarray] = None,
) -> tuple[float, Params, States, States]:
    """One whole BPTT step through a stack of cells: forward, loss, backward.

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    params : dict
        ``name -> ndarray`` as :func:`cell_param_shapes` lists them.
    x : ndarray
        Dense input ``(T, n, d)`` or token ids ``(T, n)``.
    targets : ndarray
        Integer classes ``(T, n)`` (softmax cross-entropy) or floats ``(T, n, q)`` (squared
        error), as in :func:`loss_and_output_grads`.
    states : dict, optional
        Initial ``"h"`` (and ``"c"``), each ``(L, n, h)``; zeros by default.
    weights : ndarray, optional
        ``(T, n)`` per-position weights; the loss is ``sum(w l) / sum(w)``.
    activation : {"tanh", "relu", "identity"}
        ``phi`` of the Elman cell.
    flow : ndarray, optional
        ``(T,)`` truncation factors (:func:`cell_backward`); all 1 (full BPTT) by default.
    dh_T, dc_T : ndarray, optional
        Gradients w.r.t. the final states, ``(L, n, h)`` each, from a later chunk.

    Returns
    -------
    loss : float
        ``L``.
    grads : dict
        ``dL/dparams``, same keys as ``params``.
    dstates0 : dict
        ``dL/dh_0`` (and ``dL/dc_0``), each ``(L, n, h)``.
    states_T : dict
        Final states ``"h"`` (and ``"c"``), each ``(L, n, h)``.
    """
    layers, os, states_T = cell_forward(cell, params, x, states, activation=activation)
    loss, dos = loss_and_output_grads(os, targets, weights)
    grads, dstates0, _ = cell_backward(
        cell, params, layers, dos, activation=activation, flow=flow, dh_T=dh_T, dc_T=dc_T
    )
    return loss, grads, dstates0, states_T


def cell_regular_grads(
    cell: str,
    params: Params,
    x: np.ndarray,
    targets: np.ndarray,
    k1: int,
    k2: int,
    *,
    states: Optional[States] = None,
    weights: Optional[np.ndarray] = None,
    activation: str = "tanh",
) -> tuple[float, Params]:
    """TBPTT(k1, k2) through a stack of cells by brute force, as :func:`regular_grads` does it.

    One forward pass; then, for every block of ``k1`` steps (aligned to multiples of ``k1``),
    a separate backward pass over the ``k2`` steps that end with the block, injecting only the
    block's losses. The states before a window (of every layer, ``c`` included) are constants,
    except at the sequence start. ``k1 = k2 = k`` equals ``flow`` zero at every multiple of
    ``k`` (PyTorch's detach every ``k`` steps).

    Parameters
    ----------
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    params : dict
        ``name -> ndarray`` as :func:`cell_param_shapes` lists them.
    x, targets : ndarray
        As in :func:`cell_loss_and_grads`.
    k1, k2 : int
        Block and window lengths, ``1 <= k1 <= k2``.
    states : dict, optional
        Initial ``"h"`` (and ``"c"``), each ``(L, n, h)``; zeros by default.
    weights : ndarray, optional
        ``(T, n)`` per-position weights.
    activation : {"tanh", "relu", "identity"}
        ``phi`` of the Elman cell.

    Returns
    -------
    loss : float
        ``L`` of the whole sequence.
    grads : dict
        The sum over blocks of the windows' gradients, same keys as ``params``.
    """
    if not 1 <= k1 <= k2:
        raise ValueError(f"k1, k2: expected 1 <= k1 <= k2, got {k1} and {k2}")
    layers, os, _ = cell_forward(cell, params, x, states, activation=activation)
    loss, dos = loss_and_output_grads(os, targets, weights)
    T = len(dos)
    total = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    for first, block_start, block_end in regular_windows(T, k1, k2):
        window_dos = [
            dos[t] if block_start <= t < block_end else np.zeros_like(dos[t]) for t in range(first, block_end)
        ]
        window = [trace.window(first, block_end) for trace in layers]
        grads, _, _ = cell_backward(cell, params, window, window_dos, activation=activation)
        for name in total:
            total[name] += grads[name]
    return loss, total
