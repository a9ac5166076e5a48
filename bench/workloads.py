"""One training step, as rnnbptt and as PyTorch do it, for the benchmark.

A step is: forward of an Elman RNN (tanh) + output layer + mean cross-entropy over integer
tokens, full backward, global-norm clipping at 1, and an SGD update.

FLOP model (stated with every figure): forward F = 2 T n (h V + h h + V h); a step is 3F.
Token input is counted as the dense product h V it stands for, though rnnbptt gathers a
column of W_hx instead.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

CONFIGS: dict[str, tuple[int, int, int, int]] = {  # name: (V, h, n, T)
    "S": (28, 256, 32, 35),
    "M": (65, 512, 64, 100),
    "L": (256, 1024, 128, 100),
    "X": (28, 128, 8, 10_000),
}


def step_flops(V: int, h: int, n: int, T: int) -> float:
    return 3.0 * 2.0 * T * n * (h * V + h * h + V * h)


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


def torch_step(V: int, h: int, n: int, T: int, dtype: type = np.float32) -> Callable[[], float]:
    import torch

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    rnn = torch.nn.RNN(V, h, nonlinearity="tanh", dtype=tdtype)
    linear = torch.nn.Linear(h, V, dtype=tdtype)
    params = list(rnn.parameters()) + list(linear.parameters())
    optimizer = torch.optim.SGD(params, lr=0.01)
    x_np, y_np = tokens(V, n, T)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np).reshape(-1)

    def step() -> float:
        inputs = torch.nn.functional.one_hot(x, V).to(tdtype)
        out, _ = rnn(inputs)
        loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, V), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return float(loss.detach())

    return step
