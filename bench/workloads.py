"""One training step, as rnnbptt, PyTorch and JAX do it, for the benchmark.

A step is: forward of an Elman RNN (tanh) + output layer + mean cross-entropy over integer
tokens, full backward, global-norm clipping at 1, and an SGD update.

FLOP model (stated with every figure): forward F = 2 T n (h V + h h + V h); a step is 3F.
Token input is counted as the dense product h V it stands for, though rnnbptt gathers a
column of W_hx instead. Executed FLOPs (what rnnbptt runs, used for the share of the GEMM
peak): 2 T n (3 h h + 3 h V): the recurrence forward and backward, dW_hh, the output layer,
dW_qh and dL/do W_qh; the gather and the scatter-add of token input execute no products.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

CONFIGS: dict[str, tuple[int, int, int, int]] = {  # name: (V, h, n, T)
    "S": (28, 256, 32, 35),
    "M": (65, 512, 64, 100),
    "L": (256, 1024, 128, 100),
    "X": (28, 128, 8, 10_000),
}


def step_flops(V: int, h: int, n: int, T: int) -> float:
    return 3.0 * 2.0 * T * n * (h * V + h * h + V * h)


def executed_flops(V: int, h: int, n: int, T: int) -> float:
    return 2.0 * T * n * (3 * h * h + 3 * h * V)


def tokens(V: int, n: int, T: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).integers(0, V, (T, n))
    return x, np.ascontiguousarray(np.roll(x, -1, axis=0))


def rnnbptt_step(V: int, h: int, n: int, T: int, dtype: type = np.float32) -> Callable[[], float]:
    import rnnbptt as rb

    model = rb.RNN(V, h, V, dtype=dtype, seed=0)
    sgd = rb.SGD(0.01)
    x, y = tokens(V, n, T)

    def step() -> float:
        model.forward(x)
        loss = model.loss(y)
        model.backward()
        rb.clip_grad_norm(model.grads, 1.0)
        sgd.step(model.params, model.grads)
        return loss

    return step


def _torch_training_step(params: list[Any], forward: Callable[[], Any], y: Any, V: int) -> Callable[[], float]:
    """The PyTorch side of the common step: cross-entropy over `forward()`'s logits, backward,
    global-norm clipping at 1 and SGD."""
    import torch

    optimizer = torch.optim.SGD(params, lr=0.01)

    def step() -> float:
        loss = torch.nn.functional.cross_entropy(forward().reshape(-1, V), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return float(loss.detach())

    return step


def torch_step(V: int, h: int, n: int, T: int, dtype: type = np.float32) -> Callable[[], float]:
    import torch

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    rnn = torch.nn.RNN(V, h, nonlinearity="tanh", dtype=tdtype)
    linear = torch.nn.Linear(h, V, dtype=tdtype)
    x_np, y_np = tokens(V, n, T)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np).reshape(-1)
    return _torch_training_step(list(rnn.parameters()) + list(linear.parameters()),
                                lambda: linear(rnn(torch.nn.functional.one_hot(x, V).to(tdtype))[0]), y, V)


def torch_embedding_step(V: int, h: int, n: int, T: int, dtype: type = np.float32) -> Callable[[], float]:
    """PyTorch as a character model is usually written: nn.Embedding(V, h) feeding nn.RNN(h, h).
    Its input projection is an h x h product instead of h x V, more work than one-hot when V < h."""
    import torch

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(V, h, dtype=tdtype)
    rnn = torch.nn.RNN(h, h, nonlinearity="tanh", dtype=tdtype)
    linear = torch.nn.Linear(h, V, dtype=tdtype)
    x_np, y_np = tokens(V, n, T)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np).reshape(-1)
    params = list(embedding.parameters()) + list(rnn.parameters()) + list(linear.parameters())
    return _torch_training_step(params, lambda: linear(rnn(embedding(x))[0]), y, V)


def _jax_training_step(loss_fn: Callable[..., Any], params: dict[str, Any], x: Any, y: Any) -> Callable[[], float]:
    """The JAX side of the common step: one jit-compiled function for the value and gradient of
    `loss_fn`, global-norm clipping at 1 and SGD."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def update(p: dict[str, Any], x: Any, y: Any) -> tuple[dict[str, Any], Any]:
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        norm = jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(g)))
        scale = jnp.minimum(1.0, 1.0 / (norm + 1e-6))
        return jax.tree_util.tree_map(lambda w, d: w - 0.01 * scale * d, p, g), loss

    state = {"params": params}

    def step() -> float:
        state["params"], loss = update(state["params"], x, y)
        return float(loss)

    return step


def jax_step(V: int, h: int, n: int, T: int) -> Callable[[], float]:
    """The same step in JAX (float32): one-hot input, lax.scan over the steps, jit-compiled
    value_and_grad, global-norm clipping at 1 and SGD in the same compiled function."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    bound = 1.0 / np.sqrt(h)

    def uniform(key: Any, shape: tuple[int, ...]) -> Any:
        return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

    params = {"W_hx": uniform(keys[0], (V, h)), "W_hh": uniform(keys[1], (h, h)), "b_h": jnp.zeros(h, jnp.float32),
              "W_qh": uniform(keys[2], (h, V)), "b_q": jnp.zeros(V, jnp.float32)}
    x_np, y_np = tokens(V, n, T)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def loss_fn(p: dict[str, Any], x: Any, y: Any) -> Any:
        a = jax.nn.one_hot(x, V, dtype=jnp.float32) @ p["W_hx"] + p["b_h"]  # T x n x h

        def cell(state: Any, a_t: Any) -> tuple[Any, Any]:
            state = jnp.tanh(a_t + state @ p["W_hh"])
            return state, state

        _, H = jax.lax.scan(cell, jnp.zeros((n, h), jnp.float32), a)
        logp = jax.nn.log_softmax(H @ p["W_qh"] + p["b_q"])
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    return _jax_training_step(loss_fn, params, x, y)


# ---- GRU and LSTM (bench/run.py --sections cells) ------------------------------------------
#: The cells' configurations: the four above with one layer, and M with two.
CELL_CONFIGS: dict[str, tuple[int, int, int, int, int]] = {  # name: (V, h, n, T, layers)
    **{name: (*config, 1) for name, config in CONFIGS.items()},
    "M2": (*CONFIGS["M"], 2),
}
GATES = {"gru": 3, "lstm": 4}


def cell_executed_flops(cell: str, V: int, h: int, n: int, T: int, layers: int) -> float:
    """What a step executes in products: per layer the recurrent product forward, dL/dh_{t-1}
    and dW_hh (3 x 2 T n h G h), the input side of layers above the first (3 x 2 T n h G h:
    p_t, dL/dx, dW_hx; the first layer's token input is a gather), and the output layer
    (3 x 2 T n h V)."""
    G = GATES[cell]
    return 2.0 * T * n * (3 * h * G * h * layers + 3 * h * G * h * (layers - 1) + 3 * h * V)


def rnnbptt_cell_step(cell: str, V: int, h: int, n: int, T: int, layers: int) -> Callable[[], float]:
    import rnnbptt as rb

    model = rb.RNN(V, h, V, cell=cell, num_layers=layers, seed=0)
    sgd = rb.SGD(0.01)
    x, y = tokens(V, n, T)

    def step() -> float:
        model.forward(x)
        loss = model.loss(y)
        model.backward()
        rb.clip_grad_norm(model.grads, 1.0)
        sgd.step(model.params, model.grads)
        return loss

    return step


def torch_cell_step(cell: str, V: int, h: int, n: int, T: int, layers: int) -> Callable[[], float]:
    """nn.GRU or nn.LSTM on one-hot input + nn.Linear, float32."""
    import torch

    torch.manual_seed(0)
    module = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](V, h, num_layers=layers)
    linear = torch.nn.Linear(h, V)
    x_np, y_np = tokens(V, n, T)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np).reshape(-1)
    return _torch_training_step(list(module.parameters()) + list(linear.parameters()),
                                lambda: linear(module(torch.nn.functional.one_hot(x, V).float())[0]), y, V)


def jax_cell_step(cell: str, V: int, h: int, n: int, T: int, layers: int) -> Callable[[], float]:
    """The same step in JAX (float32): PyTorch's GRU or LSTM equations in lax.scan, one-hot
    input, jit-compiled value_and_grad, clipping and SGD."""
    import jax
    import jax.numpy as jnp

    G = GATES[cell]
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 4 * layers + 2))
    bound = 1.0 / np.sqrt(h)

    def uniform(shape: tuple[int, ...]) -> Any:
        return jax.random.uniform(next(keys), shape, jnp.float32, -bound, bound)

    params: dict[str, Any] = {"W_qh": uniform((h, V)), "b_q": jnp.zeros(V, jnp.float32)}
    for layer in range(layers):
        params[f"W_hx{layer}"] = uniform((V if layer == 0 else h, G * h))
        params[f"W_hh{layer}"] = uniform((h, G * h))
        params[f"b_hx{layer}"] = uniform((G * h,))
        params[f"b_hh{layer}"] = uniform((G * h,))
    x_np, y_np = tokens(V, n, T)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def layer_scan(p: dict[str, Any], layer: int, inputs: Any) -> Any:
        pre = inputs @ p[f"W_hx{layer}"] + p[f"b_hx{layer}"]  # T x n x G h

        def gru(state: Any, p_t: Any) -> tuple[Any, Any]:
            s = state @ p[f"W_hh{layer}"] + p[f"b_hh{layer}"]
            r = jax.nn.sigmoid(p_t[:, :h] + s[:, :h])
            z = jax.nn.sigmoid(p_t[:, h : 2 * h] + s[:, h : 2 * h])
            c = jnp.tanh(p_t[:, 2 * h :] + r * s[:, 2 * h :])
            state = (1 - z) * c + z * state
            return state, state

        def lstm(state: Any, p_t: Any) -> tuple[Any, Any]:
            hh, cc = state
            a = p_t + hh @ p[f"W_hh{layer}"] + p[f"b_hh{layer}"]
            i, f = jax.nn.sigmoid(a[:, :h]), jax.nn.sigmoid(a[:, h : 2 * h])
            g, o = jnp.tanh(a[:, 2 * h : 3 * h]), jax.nn.sigmoid(a[:, 3 * h :])
            cc = f * cc + i * g
            hh = o * jnp.tanh(cc)
            return (hh, cc), hh

        zeros = jnp.zeros((n, h), jnp.float32)
        if cell == "gru":
            return jax.lax.scan(gru, zeros, pre)[1]
        return jax.lax.scan(lstm, (zeros, zeros), pre)[1]

    def loss_fn(p: dict[str, Any], x: Any, y: Any) -> Any:
        H = jax.nn.one_hot(x, V, dtype=jnp.float32)
        for layer in range(layers):
            H = layer_scan(p, layer, H)
        logp = jax.nn.log_softmax(H @ p["W_qh"] + p["b_q"])
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    return _jax_training_step(loss_fn, params, x, y)
