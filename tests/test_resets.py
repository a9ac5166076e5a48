"""Resets and lengths inside a batch (``forward(..., resets=, lengths=)``, docs/design.md
section 4.8) for every cell, layer count and strategy: gradients against PyTorch autograd
with the state masked by hand, a batch of packed sequences against the same sequences run one
by one (bit for bit), and the checks on bad resets and lengths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cells import assert_close, build, state_arrays
from test_reference_cells import torch_run

import rnnbptt as rb

from conftest import rel_err

TOLERANCE = 1e-10


@st.composite
def cases(draw):
    cell = draw(st.sampled_from(("elman", "gru", "lstm")))
    T = draw(st.integers(1, 9))
    n = draw(st.integers(1, 4))
    return dict(
        cell=cell,
        num_layers=draw(st.integers(1, 3)),
        bias=draw(st.booleans()),
        tokens=draw(st.booleans()),
        T=T,
        n=n,
        d=draw(st.integers(1, 4)),
        h=draw(st.integers(1, 5)),
        q=draw(st.integers(1, 3)),
        strategy=draw(st.sampled_from(["full", "regular", "randomized"])),
        k=draw(st.integers(1, 4)),
        seed=draw(st.integers(0, 2**16)),
        resets=draw(st.booleans()),
        lengths=draw(st.booleans()),
        initial=draw(st.booleans()),
    )


def problem(c):
    """The drawn case's generator, model, its parameters for the oracles, input and targets."""
    rng = np.random.default_rng(c["seed"])
    model, params = build(c["cell"], c["num_layers"], c["d"], c["h"], c["q"], bias=c["bias"], seed=c["seed"])
    T, n = c["T"], c["n"]
    x = rng.integers(0, c["d"], (T, n)) if c["tokens"] else rng.standard_normal((T, n, c["d"]))
    return rng, model, params, x, rng.integers(0, c["q"], (T, n))


def initial_and_seeds(rng, cell, L, n, h):
    """The oracles' initial states and dL/dstate_T seeds, {"h": (L, n, h)[, "c": ...]}."""
    states = {"h": 0.5 * rng.standard_normal((L, n, h))}
    seeds = {"h": 0.3 * rng.standard_normal((L, n, h))}
    if cell == "lstm":
        states["c"] = rng.standard_normal((L, n, h))
        seeds["c"] = 0.3 * rng.standard_normal((L, n, h))
    return states, seeds


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_gradients_match_torch_with_the_state_masked_by_hand(torch, case):
    """Loss, every parameter gradient, dL/dh0 (h and c), dL/dx and the final states, with
    dL/dh_T seeds, for Full, Regular(k) and Randomized (its flow replayed)."""
    c = case
    rng, model, params, x, targets = problem(c)
    T, n, L = c["T"], c["n"], c["num_layers"]
    resets = rng.random((T, n)) < 0.3 if c["resets"] else None
    lengths = rng.integers(0, T + 1, n) if c["lengths"] else None
    if lengths is not None:
        lengths[rng.integers(n)] = max(1, int(lengths.max()))  # some step inside a length
    states, seeds = initial_and_seeds(rng, c["cell"], L, n, c["h"])
    if not c["initial"]:
        states = {key: np.zeros_like(value) for key, value in states.items()}
    truncation = {"full": rb.Full(), "regular": rb.Regular(c["k"]),
                  "randomized": rb.Randomized(0.6, seed=c["seed"])}[c["strategy"]]
    h0 = state_arrays(model, states) if c["initial"] else None
    _, h_T = model.forward(x, h0, resets=resets, lengths=lengths)
    loss = model.loss(targets)
    dh0, dx = model.backward(state_arrays(model, seeds), truncation, step_offset=3, dx=x.ndim == 3)
    grads = {k: v.copy() for k, v in model.named_gradients().items()}
    oracle = dict(dh_T=seeds["h"], dc_T=seeds.get("c"), resets=resets, lengths=lengths)
    if c["strategy"] == "randomized":
        oracle["flow"] = model.flow
    elif c["strategy"] == "regular":
        oracle["cuts"] = [t for t in range(1, T) if (t + 3) % c["k"] == 0]
    t_loss, t_grads, t_dstates0, t_states_T, _, t_dx = torch_run(torch, c["cell"], "tanh", params, x, targets,
                                                                 states, **oracle)
    assert abs(loss - t_loss) <= TOLERANCE * max(1.0, abs(t_loss))
    assert_close(grads, t_grads, str(c))
    assert rel_err(h_T, state_arrays(model, t_states_T)) <= TOLERANCE
    assert rel_err(dh0, state_arrays(model, t_dstates0)) <= TOLERANCE
    if dx is not None:
        assert rel_err(dx, t_dx) <= TOLERANCE


def packed(rng, n, T, d, tokens):
    """n rows of T steps, each row several sequences back to back: (x, resets, pieces) with
    pieces[i] the (start, stop) of each sequence in row i."""
    x = rng.integers(0, d, (T, n)) if tokens else rng.standard_normal((T, n, d))
    resets = np.zeros((T, n), dtype=bool)
    pieces = []
    for i in range(n):
        starts = sorted({0, *rng.integers(1, T, rng.integers(0, 4)).tolist()})
        resets[starts[1:], i] = True
        pieces.append(list(zip(starts, [*starts[1:], T])))
    return x, resets, pieces


CONFIGS = [("elman", 1), ("elman", 2), ("gru", 1), ("gru", 2), ("lstm", 1), ("lstm", 2)]


@pytest.mark.parametrize("cell,num_layers", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tokens", [True, False])
def test_a_packed_batch_equals_its_sequences_one_by_one(cell, num_layers, dtype, tokens):
    """Outputs, every step's state and each sequence's final state (lengths mark where the
    last one ends) against each sequence run alone, on 1 and 2 threads: to a few ulp. (Not
    bit for bit: the products' kernels round a row differently with the number of rows around
    it, with or without resets: each sequence alone is a batch of one.)"""
    rng = np.random.default_rng(7)
    T, n, d, h, q = 23, 5, 6, 37, 4  # h = 37: whole packets and a remainder in every variant
    model = rb.RNN(d, h, q, cell=cell, num_layers=num_layers, dtype=dtype, seed=3)
    x, resets, pieces = packed(rng, n, T, d, tokens)
    x = x if tokens else x.astype(dtype)
    lengths = np.array([rng.integers(pieces[i][-1][0] + 1, T + 1) for i in range(n)])
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    default = rb.get_num_threads()
    for threads in (1, 2):
        rb.set_num_threads(threads)
        try:
            out, h_T, states = model.forward(x, resets=resets, lengths=lengths, return_states=True)
            for i in range(n):
                for start, stop in pieces[i]:
                    stop = min(stop, lengths[i]) if start < lengths[i] else stop
                    o, s_T, s = model.forward(np.ascontiguousarray(x[start:stop, i : i + 1]), return_states=True)
                    assert rel_err(out[start:stop, i : i + 1], o) <= tolerance, (i, start, threads)
                    assert rel_err(states[start:stop, i : i + 1], s) <= tolerance, (i, start, threads)
                    if stop == lengths[i]:
                        axis = 0 if cell == "elman" and num_layers == 1 else model.state_shape(n).index(n)
                        assert rel_err(np.take(h_T, [i], axis=axis), s_T) <= tolerance, (i, threads)
        finally:
            rb.set_num_threads(default)


@pytest.mark.parametrize("cell,num_layers", CONFIGS)
def test_no_reset_and_full_lengths_change_no_bit(cell, num_layers):
    """Flags that are all 0 and lengths that are all T run the batch's own arithmetic: the same
    outputs, states, loss and gradients, bit for bit."""
    rng = np.random.default_rng(2)
    T, n = 9, 3
    model = rb.RNN(4, 7, 3, cell=cell, num_layers=num_layers, dtype=np.float32, seed=5)
    x = rng.standard_normal((T, n, 4)).astype(np.float32)
    targets = rng.integers(0, 3, (T, n))
    runs = []
    for kwargs in ({}, dict(resets=np.zeros((T, n), dtype=bool), lengths=[T] * n)):
        out, h_T = model.forward(x, **kwargs)
        loss = model.loss(targets)
        dh0, dx = model.backward(np.ones(model.state_shape(n), np.float32), rb.Regular(2, 4), dx=True)
        runs.append((out.tobytes(), h_T.tobytes(), loss, model.grads.tobytes(), dh0.tobytes(), dx.tobytes()))
    assert runs[0] == runs[1]


def test_lengths_leave_padding_unread_and_end_each_sequence_at_its_length():
    rng = np.random.default_rng(1)
    model = rb.RNN(3, 4, 5, cell="gru", dtype=np.float64, seed=1)
    x = rng.integers(0, 3, (6, 3))
    lengths = [6, 2, 0]
    targets = rng.integers(0, 5, (6, 3))
    padded = targets.copy()
    padded[2:, 1] = -100  # PyTorch's ignore index: never read past the length
    padded[:, 2] = 99
    _, h_T, states = model.forward(x, lengths=lengths, return_states=True)
    assert np.array_equal(h_T[0, 0], states[5, 0]) and np.array_equal(h_T[0, 1], states[1, 1])
    assert np.array_equal(h_T[0, 2], np.zeros(4))  # length 0: the initial state
    loss = model.loss(padded)
    weights = (np.arange(6)[:, None] < np.array(lengths)[None, :]).astype(np.float64)
    model.forward(x)
    assert loss == pytest.approx(model.loss(targets, weights), rel=1e-14)
    model.forward(x, lengths=[0, 0, 0])
    with pytest.raises(ValueError, match="lengths: expected at least one sequence with steps, got all 0"):
        model.loss(targets)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(resets=np.zeros((4, 2), dtype=np.int64)), TypeError, "resets: expected a C-contiguous bool array"),
        (dict(resets=np.zeros((4, 3), dtype=bool)), ValueError, r"resets: expected .*\(T=4, n=2\)"),
        (dict(resets=np.array([[0, 2]] * 4, dtype=np.uint8).view(bool)), ValueError,
         r"resets: expected flags 0 or 1 \(T x n\), got 2 at \[0, 1\]"),
        (dict(lengths=[1, 5]), ValueError, r"lengths: expected values in \[0, T = 4\], got 5 at \[1\]"),
        (dict(lengths=[1, -1]), ValueError, r"lengths: expected values in \[0, T = 4\], got -1 at \[1\]"),
        (dict(lengths=[1.0, 2.0]), TypeError, "lengths: expected integers"),
        (dict(lengths=[1, 2, 3]), ValueError, r"lengths: expected .*\(n=2,\), got int64 array of shape \(3,\)"),
    ],
)
def test_bad_resets_and_lengths_get_one_clear_error(kwargs, error, message):
    model = rb.RNN(3, 4, 2)
    with pytest.raises(error, match=message):
        model.forward(np.zeros((4, 2), dtype=np.int64), **kwargs)


def stream_problem(cell, num_layers, T=48, n=3, tokens=True, seed=4):
    rng = np.random.default_rng(seed)
    model = rb.RNN(5, 6, 4, cell=cell, num_layers=num_layers, dtype=np.float64, seed=seed)
    x = rng.integers(0, 5, (T, n)) if tokens else rng.standard_normal((T, n, 5))
    targets = rng.integers(0, 4, (T, n))
    resets = rng.random((T, n)) < 0.08
    resets[min(12, T - 1), 0] = True  # on a chunk boundary
    resets[min(13, T - 1), n - 1] = True  # just after one
    return model, x, targets, resets


@pytest.mark.parametrize("cell,num_layers", CONFIGS)
@pytest.mark.parametrize("k1,k2,chunk", [(3, 8, 6), (4, 4, 12), (2, 9, 4)])
def test_a_stream_with_resets_equals_the_unchunked_sequence(cell, num_layers, k1, k2, chunk):
    """Regular(k1, k2) over chunks, with resets inside chunks, on their boundaries and in the
    history a window reaches back into: the gradient of the whole sequence (resets to zeros)."""
    model, x, targets, resets = stream_problem(cell, num_layers)
    T = x.shape[0]
    runner = rb.StreamRunner(model, rb.Regular(k1, k2))
    total = 0
    for start in range(0, T, chunk):
        runner.step(x[start : start + chunk], targets[start : start + chunk],
                    resets=np.ascontiguousarray(resets[start : start + chunk]))
        total = total + model.grads * chunk / T
    _, h_T = model.forward(x, resets=resets)
    model.loss(targets)
    model.backward(truncation=rb.Regular(k1, k2))
    assert rel_err(total, model.grads) <= 1e-10
    assert rel_err(runner.state, h_T) <= 1e-12


@pytest.mark.parametrize("cell,num_layers", [("elman", 1), ("lstm", 2)])
def test_a_restored_runner_keeps_the_resets_of_its_history(cell, num_layers):
    """history gives the history's reset flags with its inputs and states; a runner restored
    from them continues bit for bit, and one restored without them does not."""
    model, x, targets, resets = stream_problem(cell, num_layers, T=24, n=2)
    resets[:] = False
    resets[10, 1] = True  # inside the history the next chunk reaches back into
    first = rb.StreamRunner(model, rb.Regular(3, 9))
    first.step(x[:12], targets[:12], resets=resets[:12].copy())
    history = first.history
    assert history is not None and len(history) == 3 and history[2].dtype == bool
    assert history[2].any()
    runs = []
    for saved in (history, history[:2]):
        runner = rb.StreamRunner(model, rb.Regular(3, 9))
        runner.reset(first.position, state=first.state, history=saved)
        runs.append((runner.step(x[12:], targets[12:]), model.grads.copy()))
    loss = first.step(x[12:], targets[12:])
    assert runs[0][0] == loss and np.array_equal(runs[0][1], model.grads)
    assert not np.array_equal(runs[1][1], model.grads)


def test_a_stream_refuses_lengths_and_bad_flags():
    model, x, targets, resets = stream_problem("gru", 1, T=12, n=2)
    runner = rb.StreamRunner(model, rb.Regular(3, 6))
    with pytest.raises(ValueError, match=r"resets: expected flags 0 or 1 \(T x n\), got 3 at \[0, 0\]"):
        runner.step(x[:6], targets[:6], resets=np.full((6, 2), 3, np.uint8).view(bool))
    with pytest.raises(TypeError, match="resets: expected a C-contiguous bool array"):
        runner.step(x[:6], targets[:6], resets=np.zeros((6, 2), np.int8))
    runner.step(x[:6], targets[:6], resets=resets[:6].copy())
    with pytest.raises(ValueError, match=r"history resets: expected a C-contiguous bool array of shape \(k=3, n=2\)"):
        runner.reset(6, state=runner.state, history=(*runner.history[:2], np.zeros((2, 2), bool)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases(), k1=st.integers(1, 3), extra=st.integers(1, 4))
def test_overlapping_windows_match_torch_window_by_window(torch, case, k1, extra):
    """Regular(k1 < k2), whose windows run in lanes: the sum over the reported windows of
    autograd on each (detached before its first step, its loss on its injecting steps over the
    whole weight, dL/dh_T where a row's last step is injected), with resets and lengths."""
    c = case
    rng, model, params, x, targets = problem(c)
    T, n, L = c["T"], c["n"], c["num_layers"]
    resets = rng.random((T, n)) < 0.3
    lengths = rng.integers(1, T + 1, n)
    states, seeds = initial_and_seeds(rng, c["cell"], L, n, c["h"])
    model.forward(x, state_arrays(model, states), resets=resets, lengths=lengths)
    model.loss(targets)
    dh0, _ = model.backward(state_arrays(model, seeds), rb.Regular(k1, k1 + extra))
    inside = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)
    grads, t_dh0 = None, None
    for first, begin, end in model.windows:
        injecting = inside * ((np.arange(T) >= begin) & (np.arange(T) < end))[:, None]
        seeded = (begin <= lengths - 1) & (lengths - 1 < end)
        window_seeds = {key: value * seeded[None, :, None] for key, value in seeds.items()}
        _, g, d0, _, _, _ = torch_run(torch, c["cell"], "tanh", params, x, targets, states, weights=injecting,
                                      cuts=[first] if first > 0 else [], resets=resets, lengths=lengths,
                                      normalizer=inside.sum(), dh_T=window_seeds["h"], dc_T=window_seeds.get("c"))
        grads = g if grads is None else {k: grads[k] + g[k] for k in g}
        d0 = state_arrays(model, d0)
        t_dh0 = d0 if t_dh0 is None else t_dh0 + d0
    assert_close({k: v.copy() for k, v in model.named_gradients().items()}, grads, str(c))
    assert rel_err(dh0, t_dh0) <= TOLERANCE
