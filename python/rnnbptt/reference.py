"""BPTT in plain NumPy, written straight from the equations of docs/design.md sections 2 and 3
(the oracle for tests).

Column vectors as in those notes: ``h_t``, ``x_t`` and ``o_t`` are columns and a batch of ``n``
sequences is ``n`` columns side by side. Nothing here is fast; everything is readable.

    a_t = W_hx x_t + W_hh h_{t-1} + b_h,   h_t = phi(a_t),   o_t = W_qh h_t + b_q
    L   = sum_{t,b} w_tb l(o_tb, y_tb) / sum_{t,b} w_tb

    dL/dh_t = W_qh^T dL/do_t + c_{t+1} W_hh^T dL/da_{t+1}      dL/da_t = phi'(a_t) * dL/dh_t
    dW_qh = sum_t dL/do_t h_t^T     dW_hx = sum_t dL/da_t x_t^T     dW_hh = sum_t dL/da_t h_{t-1}^T
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
    (c_1..c_T, default all 1). Returns the parameter gradients, dL/dh_0 (n, h) and dL/dx (T, n, d)."""
    W_hx, W_hh, W_qh = params["W_hx"], params["W_hh"], params["W_qh"]
    d = W_hx.shape[1]
    T = len(dos)
    c = np.ones(T) if flow is None else flow
    grads = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    dx = np.zeros((T, x.shape[1], d))
    da_next = None
    for t in reversed(range(T)):  # t is 0-based: step t + 1 of the 1-based maths
        dh = W_qh.T @ dos[t]
        if t == T - 1:
            if dh_T is not None:
                dh = dh + dh_T.T
        else:
            dh = dh + c[t + 1] * (W_hh.T @ da_next)
        da = _dphi(activation, hs[t + 1]) * dh
        grads["W_qh"] += dos[t] @ hs[t + 1].T
        grads["W_hx"] += da @ input_columns(x, d, t).T
        grads["W_hh"] += da @ hs[t].T
        if "b_h" in grads:
            grads["b_h"] += da.sum(axis=1)
            grads["b_q"] += dos[t].sum(axis=1)
        dx[t] = (W_hx.T @ da).T
        da_next = da
    dh0 = (c[0] * (W_hh.T @ da_next)).T
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
) -> tuple[float, Params]:
    """TBPTT(k1, k2) by brute force: one separate backward pass per block of k1 steps, over
    the k2 steps that end with the block, injecting only the block's losses. The state before
    a window is a constant (detached), except at the sequence start."""
    hs, os = forward(params, x, h0, activation)
    loss, dos = loss_and_output_grads(os, targets, weights)
    T = len(dos)
    total = {name: np.zeros_like(value, dtype=np.float64) for name, value in params.items()}
    for block_start in range(0, T, k1):
        block_end = min(block_start + k1, T)
        first = max(0, block_start - (k2 - k1))
        window_dos = [
            dos[t] if block_start <= t < block_end else np.zeros_like(dos[t])
            for t in range(first, block_end)
        ]
        window_x = x[first:block_end]
        grads, _, _ = backward(params, window_x, hs[first : block_end + 1], window_dos, activation)
        for name in total:
            total[name] += grads[name]
    return loss, total
