"""Optimizers whose updates run in C++ on the flat parameter buffer."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from . import _core
from ._checks import check_integer, check_real
from ._dtypes import check_dtype, core_class


class SGD:
    """``p <- p - lr * (g + weight_decay * p)``: d2l's minibatch SGD (on a mean loss).

    The step runs in the parameters' dtype: for float32 parameters, ``lr`` and ``weight_decay``
    must be representable in float32 (at most about 3.4e38, and a nonzero value must not round
    to 0: at least about 7e-46); ``step()`` raises ``ValueError`` naming the argument otherwise.
    """

    name = "sgd"

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = check_real(weight_decay, "weight_decay", nonnegative=True)

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_real(value, "lr", positive=True)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        _core.sgd_step(params, grads, self.lr, self.weight_decay)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        pass


class Adam:
    """Adam with bias correction, as ``torch.optim.Adam`` (L2 weight decay added to g).

    The step runs in ``dtype``: for float32, ``lr``, ``eps``, ``weight_decay`` and the
    bias-corrected step ``lr / (1 - beta1**t)`` must be representable in ``dtype`` (for float32
    at most about 3.4e38, and a nonzero value must not round to 0: at least about 7e-46; for
    float64 the step must stay below about 1.8e308); ``step()`` raises ``ValueError`` naming
    the argument otherwise, without counting the step. As in ``torch.optim.Adam``, a
    gradient for which ``(1 - beta2) * g * g`` overflows the dtype (above about 6e20 in
    float32, 4e155 in float64, with ``beta2 = 0.999``) makes ``v`` infinite and the update 0.
    """

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
        size = check_integer(size, "size")
        if size < 1:
            raise ValueError(f"size: expected a positive number of parameters, got {size}")
        lr = check_real(lr, "lr", positive=True)
        beta1 = check_real(beta1, "beta1")
        beta2 = check_real(beta2, "beta2")
        eps = check_real(eps, "eps", positive=True)
        weight_decay = check_real(weight_decay, "weight_decay", nonnegative=True)
        self._core: _core._Adam = core_class("Adam", check_dtype(dtype))(size, lr, beta1, beta2, eps, weight_decay)

    @property
    def lr(self) -> float:
        return float(self._core.lr)

    @lr.setter
    def lr(self, value: float) -> None:
        self._core.lr = check_real(value, "lr", positive=True)

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
        """Restores the moments and the step count that ``state()`` and ``config()`` gave.

        Raises ``ValueError`` naming the entry for moments of another shape, moments that are
        not finite in the optimizer's dtype, second moments below 0, or a step count that is not
        an integer in ``[0, 2**62)``; nothing is changed then.
        """
        moments = {}
        for key in ("m", "v"):
            given = np.asarray(state[key])
            if given.shape != self._core.m.shape:
                raise ValueError(f"state[{key!r}]: expected shape {self._core.m.shape}, got {given.shape}")
            with np.errstate(over="ignore"):  # a float64 1e39 becomes inf in float32: refused below
                values = given.astype(self._core.m.dtype)
            if not np.all(np.isfinite(values)):
                raise ValueError(
                    f"state[{key!r}]: expected moments finite in {self._core.m.dtype}, got a NaN or infinite value"
                )
            moments[key] = values
        m, v = moments["m"], moments["v"]
        if np.any(v < 0):
            raise ValueError("state['v']: expected second moments >= 0, got a negative value")
        count = config["step_count"]
        if isinstance(count, np.ndarray) and count.shape == ():
            count = count[()]  # a 0-d array, as npz files hold numbers
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
            raise ValueError(f"config['step_count']: expected an integer, got {count!r}")
        if not 0 <= int(count) < _core.ADAM_MAX_STEPS:
            raise ValueError(
                f"config['step_count']: expected a number of steps taken in [0, 2**62), got {count}"
            )
        self._core.m[...] = m
        self._core.v[...] = v
        self._core.step_count = int(count)


Optimizer = Union[SGD, Adam]


def check_optimizer_name(name: Any) -> str:
    """``name`` if it names an optimizer (``"sgd"`` or ``"adam"``): TypeError for anything but a
    string, ValueError for another string."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")
    if name not in (SGD.name, Adam.name):
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")
    return name


def make_optimizer(name: str, size: int, dtype: Any, lr: float, weight_decay: float = 0.0) -> Optimizer:
    if check_optimizer_name(name) == SGD.name:
        return SGD(lr, weight_decay)
    return Adam(size, dtype, lr=lr, weight_decay=weight_decay)
