"""The RNN model: parameters and gradients as NumPy views of the C++ buffers."""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple, Optional, overload

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from . import _core
from ._checks import as_lengths, check_flag, check_integer, check_real, shown
from ._dtypes import check_dtype, core_class
from .truncation import Full, Truncation

#: The parameters of one Elman layer with biases, in the flat order. Other configurations:
#: :meth:`RNN.parameter_names`.
PARAMETER_NAMES = ("W_hx", "W_hh", "b_h", "W_qh", "b_q")
#: The activation names, as the core defines them (``rnnbptt._core.ACTIVATIONS``).
ACTIVATIONS: tuple[str, ...] = tuple(_core.ACTIVATIONS)
_ACTIVATION_CHOICES = ", ".join(repr(a) for a in ACTIVATIONS[:-1]) + f" or {ACTIVATIONS[-1]!r}"
#: The cell names, as the core defines them (``rnnbptt._core.CELLS``).
CELLS: tuple[str, ...] = tuple(_core.CELLS)
_CELL_CHOICES = ", ".join(repr(c) for c in CELLS[:-1]) + f" or {CELLS[-1]!r}"


def _check_size(value: Any, name: str) -> int:
    size = check_integer(value, name)
    if size < 1:
        raise ValueError(f"{name}: expected a positive integer, got {size}")
    if size >= 2**63:
        raise ValueError(f"{name}: expected a positive integer below 2**63, got {size}")
    return size


class Gradients(NamedTuple):
    """What backward returns besides the parameter gradients (which land in ``model.grads``)."""

    dh0: np.ndarray  #: dL/dh_0, the shape of the state (:meth:`RNN.state_shape`)
    dx: Optional[np.ndarray]  #: dL/dx_t, shape (T, n, d), when requested for dense input


class RNN:
    """A stack of recurrent cells and an output layer, ``o_t = W_qh h_t + b_q`` on the top layer.

    The cells are PyTorch's (docs/design.md section 9):

    - ``"elman"``: ``h_t = phi(W_hx x_t + W_hh h_{t-1} + b_h)`` (``nn.RNN``);
    - ``"gru"``: gates ``r, z, n`` with ``n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))``
      and ``h_t = (1 - z_t) n_t + z_t h_{t-1}`` (``nn.GRU``);
    - ``"lstm"``: gates ``i, f, g, o``, state ``(h_t, c_t)`` (``nn.LSTM``).

    Parameters
    ----------
    input_size : int
        ``d``: features per step for dense input, or the vocabulary size for token ids.
    hidden_size : int
        ``h``.
    output_size : int
        ``q``: classes for cross-entropy, or target features for squared error.
    activation : {"tanh", "relu", "identity"}
        ``phi`` of the Elman cell; ``"identity"`` with ``bias=False`` is the linear model of
        docs/design.md section 3.3. The gated cells take only ``"tanh"``.
    bias : bool
        Whether the biases exist (every ``b_*``).
    dtype : float32 or float64
        Scalar type of parameters, inputs and gradients. Inputs must match it exactly.
    seed : int
        Seed of the initialization.
    init_std : float, optional
        Draw weights from ``N(0, init_std^2)`` with zero biases (d2l uses 0.01). By default
        every parameter is ``U(-1/sqrt(h), 1/sqrt(h))``, as PyTorch's ``nn.RNN``, ``nn.GRU`` and
        ``nn.LSTM``.
    cell : {"elman", "gru", "lstm"}
        The cell of every layer.
    num_layers : int
        ``L >= 1`` stacked layers; layer ``l >= 1`` reads the states of layer ``l - 1``.

    Notes
    -----
    ``params`` and ``grads`` are flat views of the C++ buffers in the order of
    :meth:`parameter_names`: per layer ``W_hx``, ``W_hh`` and ``b_h`` (Elman) or ``b_hx``,
    ``b_hh`` (gated; gate blocks stacked along the rows in PyTorch's order, so they are
    ``weight_ih_l*``, ``weight_hh_l*``, ``bias_ih_l*``, ``bias_hh_l*`` as they are), then
    ``W_qh`` and ``b_q``. Layer 0's names have no suffix, layer ``l >= 1``'s end with
    ``_l{l}``. ``param(name)`` is a shaped view into ``params``. Writing to them changes the
    model; nothing is copied.

    The state (``h0``, ``h_T``, ``dh_T``, ``dh0``) is one array of :meth:`state_shape`:
    ``(n, h)`` for one Elman layer, ``(L, n, h)`` for stacks and the GRU (layer 0 first, as
    PyTorch's ``h_0``), and ``(2, L, n, h)`` for the LSTM, whose ``state[0]`` is ``h`` and
    ``state[1]`` is ``c`` (``h, c = state`` gives PyTorch's pair).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        activation: str = "tanh",
        bias: bool = True,
        dtype: npt.DTypeLike = np.float32,
        seed: int = 0,
        init_std: Optional[float] = None,
        cell: str = "elman",
        num_layers: int = 1,
    ) -> None:
        input_size = _check_size(input_size, "input_size")
        hidden_size = _check_size(hidden_size, "hidden_size")
        output_size = _check_size(output_size, "output_size")
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            error = ValueError if isinstance(activation, str) else TypeError
            raise error(f"activation: expected {_ACTIVATION_CHOICES}, got {shown(activation)}")
        if not isinstance(cell, str) or cell not in CELLS:
            error = ValueError if isinstance(cell, str) else TypeError
            raise error(f"cell: expected {_CELL_CHOICES}, got {shown(cell)}")
        if cell != "elman" and activation != "tanh":
            raise ValueError(f"activation: the {cell} cell has no activation choice (its gates fix them), "
                             f"expected 'tanh', got {activation!r}")
        num_layers = _check_size(num_layers, "num_layers")
        bias = check_flag(bias, "bias")
        seed = check_integer(seed, "seed", 0, 2**64)
        if init_std is not None:
            init_std = check_real(init_std, "init_std", positive=True)
        self.dtype = check_dtype(dtype)
        self._core: _core._Model = core_class("Model", self.dtype)(
            input_size, hidden_size, output_size, activation, bias, cell, num_layers
        )
        if init_std is None:
            self._core.init_uniform(1.0 / np.sqrt(hidden_size), seed)
        else:
            self._core.init_normal(init_std, seed)

    @property
    def core(self) -> _core._Model:
        """The compiled model this object wraps (``rnnbptt._core.ModelFloat32`` or
        ``ModelFloat64``), for the compiled helpers that run on it (:class:`StreamRunner`)."""
        return self._core

    # ---- configuration -------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self._core.input_size)

    @property
    def hidden_size(self) -> int:
        return int(self._core.hidden_size)

    @property
    def output_size(self) -> int:
        return int(self._core.output_size)

    @property
    def activation(self) -> str:
        return str(self._core.activation)

    @property
    def bias(self) -> bool:
        return bool(self._core.bias)

    @property
    def cell(self) -> str:
        return str(self._core.cell)

    @property
    def num_layers(self) -> int:
        return int(self._core.num_layers)

    def state_shape(self, n: int) -> tuple[int, ...]:
        """The shape of the state of ``n`` sequences: ``(n, h)`` for one Elman layer,
        ``(L, n, h)`` for stacks and the GRU, ``(2, L, n, h)`` (``h`` then ``c``) for the LSTM."""
        n = _check_size(n, "n")
        return tuple(int(v) for v in self._core.state_shape(n))

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (without seed and init), e.g. for checkpoints: the
        checkpoint's ``config`` entry, which the core writes (``rnnbptt::to_json``)."""
        config: dict[str, Any] = json.loads(self._core.config_json)
        return config

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any], np.ndarray]]:
        """Pickling (and ``copy.deepcopy``): the configuration and a copy of the parameters."""
        return _rebuild, (self.config(), self.params.copy())

    @classmethod
    def _from_core(cls, core: _core._Model) -> RNN:
        """An RNN around a compiled model (what ``checkpoint.load`` builds)."""
        model = cls.__new__(cls)
        model.dtype = np.dtype(np.float32 if isinstance(core, _core.ModelFloat32) else np.float64)
        model._core = core
        return model

    # ---- parameters and gradients --------------------------------------------------------
    @property
    def params(self) -> np.ndarray:
        """All parameters as one flat, writable view of the C++ buffer."""
        return self._core.params

    @property
    def grads(self) -> np.ndarray:
        """All gradients, same layout as ``params``; overwritten by every backward."""
        return self._core.grads

    @property
    def num_parameters(self) -> int:
        return int(self._core.num_parameters)

    def parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters that exist (biases only when ``bias=True``), in the flat
        order: ``W_hx, W_hh, b_h, W_qh, b_q`` for one Elman layer."""
        names: Optional[tuple[str, ...]] = getattr(self, "_names", None)
        if names is None:  # the layout never changes: asked once
            names = self._names = tuple(self._core.parameter_names)
            self._name_set = frozenset(names)
        return names

    def param(self, name: str) -> np.ndarray:
        """Shaped, writable view of one parameter: for one Elman layer ``W_hx`` (h, d),
        ``W_hh`` (h, h), ``b_h`` (h,), ``W_qh`` (q, h), ``b_q`` (q,); gated cells have ``G h``
        rows in ``W_hx``, ``W_hh``, ``b_hx`` and ``b_hh`` (G = 3 for GRU, 4 for LSTM)."""
        self._check_name(name)
        return self._core.param(name)

    def grad(self, name: str) -> np.ndarray:
        """Shaped view of one parameter's gradient."""
        self._check_name(name)
        return self._core.grad(name)

    def _check_name(self, name: str) -> None:
        names = self.parameter_names()
        if name not in self._name_set:
            raise KeyError(f"name: expected one of {names}, got {name!r}")

    @property
    def W_hx(self) -> np.ndarray:
        return self.param("W_hx")

    @property
    def W_hh(self) -> np.ndarray:
        return self.param("W_hh")

    @property
    def W_qh(self) -> np.ndarray:
        return self.param("W_qh")

    @property
    def b_h(self) -> Optional[np.ndarray]:
        """Layer 0's bias of an Elman model (``None`` without biases)."""
        if self.cell != "elman":
            raise AttributeError(f"b_h: the {self.cell} cell has b_hx and b_hh, use param('b_hx') or param('b_hh')")
        return self.param("b_h") if self.bias else None

    @property
    def b_q(self) -> Optional[np.ndarray]:
        return self.param("b_q") if self.bias else None

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {name: self.param(name) for name in self.parameter_names()}

    def named_gradients(self) -> dict[str, np.ndarray]:
        return {name: self.grad(name) for name in self.parameter_names()}

    # ---- forward / loss / backward -------------------------------------------------------
    @overload
    def forward(
        self,
        x: np.ndarray,
        h0: Optional[np.ndarray] = None,
        *,
        return_states: Literal[False] = False,
        resets: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def forward(
        self,
        x: np.ndarray,
        h0: Optional[np.ndarray] = None,
        *,
        return_states: Literal[True],
        resets: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def forward(
        self,
        x: np.ndarray,
        h0: Optional[np.ndarray] = None,
        *,
        return_states: bool = False,
        resets: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None,
    ) -> tuple[np.ndarray, ...]:
        """Run the sequence.

        Parameters
        ----------
        x : ndarray
            Dense input ``(T, n, d)`` of the model's dtype, or token ids ``(T, n)`` (int32 or
            int64, each in ``[0, d)``), C-contiguous. Dense input is used in place and kept (not
            copied) until the next forward, for backward: changing it in between changes the
            gradient backward computes. Token ids are copied (8 bytes each) and checked, so
            backward always uses the ids forward saw.
        h0 : ndarray, optional
            Initial state of :meth:`state_shape` (``(n, h)`` for one Elman layer); zeros by
            default.
        return_states : bool
            Also return every step's hidden state.
        resets : ndarray of bool, optional
            ``(T, n)``: where ``resets[t, i]`` is set, sequence ``i`` starts again before step
            ``t`` from its initial state (``h0``'s row, or zeros), and :meth:`backward` sends no
            gradient back across that boundary (its share goes to ``dh0``). A row of the batch
            can then hold several sequences one after another: packed documents, episodes.
        lengths : array_like of int, optional
            ``(n,)`` values in ``[0, T]``: sequence ``i`` ends after step ``lengths[i]``. Later
            steps are left out of the loss (their targets are not read: padding targets may be
            anything) and send no gradient; ``h_T`` holds each sequence's state after its own
            last step. Those steps are still computed, so their inputs must be valid (pad with
            an id or a finite value); their outputs and states mean nothing. An int array of
            another integer type, or a list, is converted (it holds n values).

        Returns
        -------
        outputs : ndarray
            ``o_t``, shape ``(T, n, q)`` (a new array).
        h_T : ndarray
            The final state (:meth:`state_shape`), to hand to the next chunk; with ``lengths``,
            each sequence's state after its last step.
        states : ndarray
            With ``return_states``: the top layer's ``h_1 .. h_T``, shape ``(T, n, h)`` (a new
            array), for attention or probing.
        """
        if not isinstance(return_states, (bool, np.bool_)):
            raise TypeError(f"return_states: expected True or False, got {return_states!r}")
        result: tuple[np.ndarray, ...] = self._core.forward(
            x, h0, bool(return_states), resets, None if lengths is None else as_lengths(lengths))
        return result

    def loss(self, targets: np.ndarray, weights: Optional[np.ndarray] = None) -> float:
        """Loss of the last forward; also prepares ``dL/do_t`` for :meth:`backward`.

        ``targets`` are class ids ``(T, n)`` (softmax cross-entropy) or values ``(T, n, q)``
        (squared error ``0.5 ||o - y||^2``). ``weights`` ``(T, n)`` >= 0 give the weighted
        mean ``sum(w l) / sum(w)``; zero weights mask positions out. After a forward with
        ``lengths``, positions past a sequence's length weigh 0 and their targets are not read.
        """
        return float(self._core.loss(targets, weights))

    def set_output_gradient(self, d_outputs: np.ndarray) -> None:
        """Use ``dL/do_t`` ``(T, n, q)`` from a loss computed elsewhere."""
        self._core.set_output_gradient(d_outputs)

    def backward(
        self,
        dh_T: Optional[np.ndarray] = None,
        truncation: Optional[Truncation] = None,
        *,
        step_offset: int = 0,
        record_dh_norms: bool = False,
        dx: bool = False,
    ) -> Gradients:
        """BPTT; overwrites ``grads`` with ``dL/dparams``.

        Parameters
        ----------
        dh_T : ndarray, optional
            ``dL/dh_T`` of the whole state (:meth:`state_shape`; for the LSTM ``dL/dh_T`` and
            ``dL/dc_T`` stacked) handed in from a later chunk. After a forward with ``lengths``,
            the gradient of each sequence's own final state, entering at its last step. The
            returned ``dh0`` includes what flows into the rows that ``resets`` restored from
            ``h0``.
        truncation : Truncation, optional
            ``Full()`` (default), ``Regular(k1, k2)`` or ``Randomized(pi, seed)``.
        step_offset : int
            Global index of the step before this sequence: aligns Regular blocks and keys
            Randomized draws when a sequence is one piece of a longer one.
        record_dh_norms : bool
            Record ``||dL/dh_t||`` per step (see :attr:`dh_norms`); for stacks and the LSTM the
            norm of the whole state's gradient (every layer's ``h``, and ``c``).
        dx : bool
            Also return ``dL/dx_t`` (dense input only).
        """
        if truncation is not None and not isinstance(truncation, Truncation):
            raise TypeError(
                "truncation: expected a Truncation (Full(), Regular(k1, k2), Randomized(pi, seed) or "
                f"Truncation.parse(spec)), got {truncation!r}"
            )
        step_offset = check_integer(step_offset, "step_offset")
        if step_offset < 0:
            raise ValueError(f"step_offset: expected a global step index >= 0, got {step_offset}")
        if step_offset >= 2**63:
            raise ValueError(f"step_offset: expected a global step index below 2**63, got {step_offset}")
        record_dh_norms = check_flag(record_dh_norms, "record_dh_norms")
        dx = check_flag(dx, "dx")
        dh0, dx_array = self._core.backward(
            dh_T, truncation if truncation is not None else Full(), step_offset, record_dh_norms, dx
        )
        return Gradients(dh0, dx_array)

    def forward_backward(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        *,
        h0: Optional[np.ndarray] = None,
        weights: Optional[np.ndarray] = None,
        dh_T: Optional[np.ndarray] = None,
        truncation: Optional[Truncation] = None,
    ) -> tuple[float, np.ndarray]:
        """Forward, loss and backward in one call. Returns ``(loss, h_T)``; ``grads`` holds
        the gradient."""
        _, h_T = self.forward(x, h0)
        value = self.loss(targets, weights)
        self.backward(dh_T, truncation)
        return value, h_T

    # ---- what the last backward did ------------------------------------------------------
    @property
    def flow(self) -> np.ndarray:
        """The flow of the last backward (a copy, length T): ``flow[t]`` is the factor on the
        gradient flowing from step t + 1 into ``h_t`` inside a window that holds both steps; 0
        where no window carries it (a cut). ``flow[0]`` is the factor into ``h_0``.

        Raises ``ValueError`` when no backward has run since the last forward (the flow and the
        windows always describe the same backward)."""
        return self._core.flow

    @property
    def windows(self) -> list[tuple[int, int, int]]:
        """The last backward's windows ``(first, begin, end)``, 0-based: one backward pass over
        steps ``[first, end)`` injecting the losses of ``[begin, end)``. They tile the sequence
        for Full, Randomized and Regular(k, k), and overlap for Regular(k1 < k2).

        Raises ``ValueError`` when no backward has run since the last forward."""
        return self._core.windows

    @property
    def dh_norms(self) -> np.ndarray:
        """``||dL/dh_t||`` (over the batch) for t = 1..T, from ``backward(record_dh_norms=True)``."""
        return self._core.dh_norms

    def __repr__(self) -> str:
        return (
            f"RNN(input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"output_size={self.output_size}, activation={self.activation!r}, "
            f"bias={self.bias}, dtype={self.dtype.name}"
            + ("" if self.cell == "elman" and self.num_layers == 1 else
               f", cell={self.cell!r}, num_layers={self.num_layers}")
            + ")"
        )


def _rebuild(config: dict[str, Any], params: np.ndarray) -> RNN:
    """The model :meth:`RNN.__reduce__` describes."""
    model = RNN(config["input_size"], config["hidden_size"], config["output_size"], activation=config["activation"],
                bias=config["bias"], dtype=config["dtype"], cell=config["cell"], num_layers=config["num_layers"])
    model.params[...] = params
    return model
