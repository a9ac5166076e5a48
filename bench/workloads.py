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
