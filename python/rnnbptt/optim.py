"""Optimizers whose updates run in C++ on the flat parameter buffer."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from . import _core
from ._dtypes import core_class


class SGD:
    """``p <- p - lr * (g + weight_decay * p)``: d2l's minibatch SGD (on a mean loss)."""

    name = "sgd"

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr: expected a value > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay: expected a value >= 0, got {weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        _core.sgd_step(params, grads, self.lr, self.weight_decay)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        pass


class Adam:
    """Adam with bias correction, as ``torch.optim.Adam`` (L2 weight decay added to g)."""

    name = "adam"

    def __init__(
        self,
        size: int,
        dtype: Union[type, np.dtype],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self._core: _core._Adam = core_class("Adam", dtype)(size, lr, beta1, beta2, eps, weight_decay)

    @property
    def lr(self) -> float:
        return float(self._core.lr)

    @lr.setter
    def lr(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"lr: expected a value > 0, got {value}")
        self._core.lr = float(value)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self._core.step(params, grads)

    def config(self) -> dict[str, Any]:
        c = self._core
        return {
            "name": self.name, "lr": c.lr, "beta1": c.beta1, "beta2": c.beta2, "eps": c.eps,
            "weight_decay": c.weight_decay, "step_count": int(c.step_count),
        }

    def state(self) -> dict[str, np.ndarray]:
        return {"m": self._core.m.copy(), "v": self._core.v.copy()}

    def load_state(self, state: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        self._core.m[...] = state["m"]
        self._core.v[...] = state["v"]
        self._core.step_count = int(config["step_count"])


Optimizer = Union[SGD, Adam]


def make_optimizer(name: str, size: int, dtype: Any, lr: float, weight_decay: float = 0.0) -> Optimizer:
    if name == "sgd":
        return SGD(lr, weight_decay)
    if name == "adam":
        return Adam(size, dtype, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")
