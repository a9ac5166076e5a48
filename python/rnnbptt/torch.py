"""rnnbptt as a PyTorch layer: our forward pass, and our exactly truncated BPTT as its backward.

``rnnbptt.torch.RNN`` is a ``torch.nn.Module`` whose ``forward`` runs the compiled forward pass
and whose backward (through ``torch.autograd.Function``) runs rnnbptt's BPTT with the module's
:class:`~rnnbptt.truncation.Truncation`. Gradients reach the module's inputs (``x`` when it is dense, and
``h0``) and its parameters, which are ``nn.Parameter`` views of the model's own buffers: a
PyTorch optimizer stepping them steps the rnnbptt model, with nothing copied.

It needs PyTorch (the ``torch`` extra); ``import rnnbptt`` does not import it.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from . import model as _model
from ._checks import as_lengths
from .truncation import Full, Truncation

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class RNN(torch.nn.Module):
    """A recurrent layer (Elman, GRU or LSTM, stacked) with an output projection, trained by
    rnnbptt's BPTT.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        ``d``, ``h`` and ``q``, as :class:`rnnbptt.RNN`.
    activation : {"tanh", "relu", "identity"}
        The Elman cell's; the gated cells take only ``"tanh"``.
    bias : bool
    dtype : torch.float32 or torch.float64
    truncation : Truncation
        How backward truncates: ``Full()`` (default), ``Regular(k1, k2)`` or
        ``Randomized(pi, seed)``. May be changed between calls (the attribute).
    seed : int
        Seed of the initialization (as :class:`rnnbptt.RNN`).
    model : rnnbptt.RNN, optional
        Wrap this model instead of building one (the sizes then come from it).
    cell : {"elman", "gru", "lstm"}
    num_layers : int

    Notes
    -----
    ``forward(x, h0=None)`` takes dense input ``(T, n, d)`` of the module's dtype or token ids
    ``(T, n)`` (int64), CPU and contiguous, and returns ``(outputs, h_T)``: ``(T, n, q)`` and
    the final state of :meth:`rnnbptt.RNN.state_shape` (``(n, h)`` for one Elman layer,
    ``(2, L, n, h)`` for the LSTM). The parameters (``model.parameter_names()``) are the model's
    buffers; do not replace their ``.data``.

    The model keeps one forward pass for its backward, so each ``forward`` must be followed by
    its backward before the next forward on the same model (the usual training step); a backward
    whose forward is no longer the model's latest raises ``RuntimeError`` rather than return a
    wrong gradient. Second derivatives are refused (``once_differentiable``), and so is an
    in-place change to ``x``, ``h0`` or a parameter between forward and backward.

    The attribute ``step_offset`` (default 0) is handed to backward: it aligns Regular blocks
    and keys Randomized draws when a call is one piece of a longer sequence. Randomized
    truncation draws the same cuts for the same ``step_offset``, so with independent batches
    advance it yourself (``layer.step_offset += T`` after each step) to draw fresh cuts.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 1,
        output_size: int = 1,
        *,
        activation: str = "tanh",
        bias: bool = True,
        dtype: torch.dtype = torch.float32,
        truncation: Optional[Truncation] = None,
        seed: int = 0,
        model: Optional[_model.RNN] = None,
        cell: str = "elman",
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        if model is None:
            if dtype not in _DTYPES:
                raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
            model = _model.RNN(input_size, hidden_size, output_size, activation=activation, bias=bias,
                               dtype=_DTYPES[dtype], seed=seed, cell=cell, num_layers=num_layers)
        elif not isinstance(model, _model.RNN):
            raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
        elif _DTYPES.get(dtype) != model.dtype.type and dtype != torch.float32:
            raise ValueError(f"dtype: expected the model's {model.dtype} (or nothing) with model=, got {dtype}")
        self.model = model
        self.truncation = truncation if truncation is not None else Full()
        self.step_offset = 0
        for name, view in model.named_parameters().items():
            self.register_parameter(name, torch.nn.Parameter(torch.from_numpy(view)))

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (``torch.save`` of the module, ``copy.deepcopy``): the model pickles its
        parameters; the torch parameters, views of its buffers, are made again on loading."""
        state = self.__dict__.copy()
        state["_parameters"] = {}
        state["_requires_grad"] = {name: p.requires_grad for name, p in self._parameters.items() if p is not None}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        requires_grad = state.pop("_requires_grad", {})
        super().__setstate__(state)
        for name, view in self.model.named_parameters().items():
            self.register_parameter(
                name, torch.nn.Parameter(torch.from_numpy(view), requires_grad=requires_grad.get(name, True)))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.model.dtype == np.float32 else torch.float64

    def forward(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None, *, resets: Optional[torch.Tensor] = None,
                lengths: Optional[Any] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs, h_T)`` of the sequence ``x`` from ``h0`` (zeros by default).

        Parameters
        ----------
        x : torch.Tensor
            Dense input ``(T, n, d)`` of the layer's dtype, or token ids ``(T, n)`` (int64);
            CPU and contiguous (a clear error otherwise: nothing is copied).
        h0 : torch.Tensor, optional
            The initial state (``model.state_shape(n)``, ``(n, h)`` for one Elman layer), of the
            layer's dtype.
        resets : torch.Tensor, optional
            ``(T, n)`` bool: sequences that start again from ``h0``'s row (or zeros) before a step,
            with no gradient across (:meth:`rnnbptt.RNN.forward`).
        lengths : torch.Tensor or array_like, optional
            ``(n,)``: each sequence ends after its length; later positions send no gradient and
            ``h_T`` is each sequence's state after its own last step.

        Returns
        -------
        outputs : torch.Tensor
            ``(T, n, q)``.
        h_T : torch.Tensor
            The final state, shaped as ``h0``.
        """
        if not isinstance(self.truncation, Truncation):
            raise TypeError(f"truncation: expected a Truncation, got {self.truncation!r}")
        params = [getattr(self, name) for name in self.model.parameter_names()]
        for name, param in zip(self.model.parameter_names(), params):
            if param.data_ptr() != self.model.param(name).ctypes.data or param.dtype != self.dtype:
                raise RuntimeError(
                    f"{name}: expected the parameter to view the model's buffer, got one whose data was replaced "
                    "(assign into it with .data.copy_(...) instead)"
                )
        cuts = (None if resets is None else _array(resets, "resets", np.bool_),
                None if lengths is None else as_lengths(lengths.numpy() if isinstance(lengths, torch.Tensor)
                                                        else lengths))
        outputs, h_T = _BPTT.apply(self, x, h0, cuts, *params)
        return outputs, h_T

    def extra_repr(self) -> str:
        m = self.model
        cells = "" if m.cell == "elman" and m.num_layers == 1 else f", cell={m.cell!r}, num_layers={m.num_layers}"
        return (f"{m.input_size}, {m.hidden_size}, {m.output_size}, activation={m.activation!r}, bias={m.bias}, "
                f"dtype={self.dtype}{cells}, truncation={self.truncation!r}")


def _array(tensor: torch.Tensor, name: str, dtype: Any) -> np.ndarray:
    """A NumPy view of a CPU, contiguous tensor of ``dtype`` (never a copy)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name}: expected a CPU tensor, got one on {tensor.device} (move it with .cpu())")
    if not tensor.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor, got a strided view (copy it with .contiguous())")
    array = tensor.detach().numpy()
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected {np.dtype(dtype).name}, got {array.dtype} (convert it with .to(...))")
    return array


class _BPTT(torch.autograd.Function):
    """forward: the model's forward pass; backward: its BPTT with the module's truncation."""

    @staticmethod
    def forward(ctx: Any, module: RNN, x: torch.Tensor, h0: Optional[torch.Tensor],  # type: ignore[override]
                cuts: tuple[Optional[np.ndarray], Optional[np.ndarray]], *params: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        model = module.model
        dense = x.dtype.is_floating_point if isinstance(x, torch.Tensor) else False
        x_np = _array(x, "x", model.dtype if dense else np.int64)
        h0_np = None if h0 is None else _array(h0, "h0", model.dtype)
        outputs, h_T = model.forward(x_np, h0_np, resets=cuts[0], lengths=cuts[1])
        # The model's own count of forward passes: any other forward on it (model.forward, a
        # StreamRunner, a second layer over the same model) before this backward is detected.
        ctx.module, ctx.forward, ctx.dense, ctx.has_h0 = module, model.core.forwards, dense, h0 is not None
        ctx.shape = (x.shape[0], x.shape[1])
        # Saved for backward: the model reads the dense input in place, and PyTorch's version
        # counters then refuse an in-place change to x, h0 or a parameter made in between.
        ctx.save_for_backward(x, h0, *params)
        return torch.from_numpy(outputs), torch.from_numpy(h_T)

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second derivative is refused, not wrong
    def backward(ctx: Any, d_outputs: Optional[torch.Tensor],  # type: ignore[override]
                 d_h_T: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
        module: RNN = ctx.module
        model = module.model
        ctx.saved_tensors  # noqa: B018 - raises if x, h0 or a parameter changed in place since forward
        if model.core.forwards != ctx.forward:
            raise RuntimeError(
                "rnnbptt.torch.RNN: expected the backward of the model's latest forward, got one of an earlier "
                "forward (the model keeps one forward pass: run backward before the next forward on it)"
            )
        T, n = ctx.shape
        shape = (T, n, model.output_size)
        d_o = np.zeros(shape, model.dtype) if d_outputs is None else d_outputs.detach().contiguous().numpy()
        model.set_output_gradient(d_o)
        dh_T = None if d_h_T is None else d_h_T.detach().contiguous().numpy()
        wants_dx = ctx.dense and ctx.needs_input_grad[1]
        grads = model.backward(dh_T, module.truncation, step_offset=module.step_offset, dx=wants_dx)
        dx = torch.from_numpy(grads.dx) if wants_dx and grads.dx is not None else None
        dh0 = torch.from_numpy(grads.dh0) if ctx.has_h0 else None
        param_grads = tuple(torch.from_numpy(model.grad(name).copy()) for name in model.parameter_names())
        return (None, dx, dh0, None, *param_grads)
