"""GRU, LSTM and stacked layers in the C++ core (rnnbptt.RNN(cell=..., num_layers=...)) against
independent oracles: PyTorch autograd (nn.RNN, nn.GRU, nn.LSTM + nn.Linear, float64) for Full,
Regular(k) (detach every k steps) and Randomized (the reported flow replayed with gradient
hooks); the NumPy reference's brute-force windows for Regular(k1 < k2); and the identities
that must hold bit for bit for every cell."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reference_cells import torch_run

import rnnbptt as rb
from rnnbptt import reference

from conftest import rel_err

CELLS = ("elman", "gru", "lstm")
TOLERANCE = 1e-10  # float64 relative error against autograd, the bound


def build(cell, num_layers, d, h, q, *, bias=True, seed=0, dtype=np.float64, activation="tanh"):
    """A model and the same parameters as a dict for the oracles (scale 0.6: gates away from
    saturation, so the gradients are not all tiny)."""
    params = reference.init_cell_params(cell, d, h, q, num_layers, bias=bias, seed=seed, scale=0.6)
    model = rb.RNN(d, h, q, cell=cell, num_layers=num_layers, bias=bias, dtype=dtype, activation=activation)
    assert model.parameter_names() == tuple(params)
    for name, value in params.items():
        model.param(name)[...] = value
    return model, params


def state_arrays(model, states):
    """The oracles' {"h": (L, n, h), "c": ...} as the model's one state array."""
    if model.cell == "lstm":
        return np.stack([states["h"], states["c"]])
    if model.cell == "elman" and model.num_layers == 1:
        return states["h"][0]
    return states["h"]


def as_states(model, array):
    """The model's state array as {"h": (L, n, h), "c": ...}."""
    if model.cell == "lstm":
        return {"h": array[0], "c": array[1]}
    if model.cell == "elman" and model.num_layers == 1:
        return {"h": array[None]}
    return {"h": array}


def ours(model, x, targets, truncation, h0=None, dh_T=None, step_offset=0):
    _, h_T = model.forward(x, h0)
    loss = model.loss(targets)
    dh0, dx = model.backward(dh_T, truncation, step_offset=step_offset, dx=x.ndim == 3)
    return loss, {k: v.copy() for k, v in model.named_gradients().items()}, dh0, dx, h_T


def assert_close(actual, expected, what):
    assert set(actual) == set(expected), what
    for name in expected:
        assert rel_err(actual[name], expected[name]) <= TOLERANCE, f"{what}: {name}"


@st.composite
def cases(draw):
    cell = draw(st.sampled_from(CELLS))
    return dict(
        cell=cell,
        activation="relu" if cell == "elman" and draw(st.booleans()) else "tanh",
        num_layers=draw(st.integers(1, 3)),
        bias=draw(st.booleans()),
        tokens=draw(st.booleans()),
        T=draw(st.integers(1, 9)),
        n=draw(st.integers(1, 3)),
        d=draw(st.integers(1, 5)),
        h=draw(st.integers(1, 6)),
        q=draw(st.integers(1, 4)),
        strategy=draw(st.sampled_from(["full", "regular", "randomized"])),
        k=draw(st.integers(1, 4)),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_gradients_match_torch_autograd(torch, case):
    """Full, Regular(k) (detach every k) and Randomized (its flow replayed with hooks): the
    parameter gradients, dL/dh0 (and c0), dL/dx and the final states, with dL/dh_T seeds."""
    c = case
    rng = np.random.default_rng(c["seed"])
    model, params = build(c["cell"], c["num_layers"], c["d"], c["h"], c["q"], bias=c["bias"], seed=c["seed"],
                          activation=c["activation"])
    T, n = c["T"], c["n"]
    x = rng.integers(0, c["d"], (T, n)) if c["tokens"] else rng.standard_normal((T, n, c["d"]))
    targets = rng.integers(0, c["q"], (T, n))
    L = c["num_layers"]
    states = {"h": 0.5 * rng.standard_normal((L, n, c["h"]))}
    seeds = {"h": 0.3 * rng.standard_normal((L, n, c["h"]))}
    if c["cell"] == "lstm":
        states["c"] = rng.standard_normal((L, n, c["h"]))
        seeds["c"] = 0.3 * rng.standard_normal((L, n, c["h"]))
    truncation = {"full": rb.Full(), "regular": rb.Regular(c["k"]),
                  "randomized": rb.Randomized(0.6, seed=c["seed"])}[c["strategy"]]
    loss, grads, dh0, dx, h_T = ours(model, x, targets, truncation, state_arrays(model, states),
                                     state_arrays(model, seeds), step_offset=3)
    oracle = dict(dh_T=seeds["h"], dc_T=seeds.get("c"))
    if c["strategy"] == "randomized":
        oracle["flow"] = model.flow
    elif c["strategy"] == "regular":
        # step_offset 3: local step t (0-based) is global step t + 4; blocks start at global
        # steps 1, k + 1, ..., so the state before t >= 1 is detached when (t + 3) % k == 0.
        # (The gradient into h0 always flows: dh0 is the earlier chunk's dh_T.)
        oracle["cuts"] = [t for t in range(1, T) if (t + 3) % c["k"] == 0]
    t_loss, t_grads, t_dstates0, t_states_T, _, t_dx = torch_run(
        torch, c["cell"], c["activation"], params, x, targets, states, **oracle)
    assert abs(loss - t_loss) <= TOLERANCE * max(1.0, abs(t_loss))
    assert_close(grads, t_grads, str(c))
    for key, value in as_states(model, dh0).items():
        assert rel_err(value, t_dstates0[key]) <= TOLERANCE, key
    for key, value in as_states(model, h_T).items():
        assert rel_err(value, t_states_T[key]) <= TOLERANCE, key
    if not c["tokens"]:
        assert rel_err(dx, t_dx) <= TOLERANCE


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("k1,k2", [(2, 5), (3, 7), (1, 4)])
@pytest.mark.parametrize("tokens", [True, False])
def test_regular_k1_below_k2_matches_brute_force_windows(cell, num_layers, k1, k2, tokens):
    """Overlapping windows (several lanes) against one backward pass per window."""
    rng = np.random.default_rng(k1 * 10 + k2)
    model, params = build(cell, num_layers, 4, 3, 5, seed=k2)
    x = rng.integers(0, 4, (11, 2)) if tokens else rng.standard_normal((11, 2, 4))
    y = rng.integers(0, 5, (11, 2))
    loss, grads, _, _, _ = ours(model, x, y, rb.Regular(k1, k2))
    ref_loss, ref_grads = reference.cell_regular_grads(cell, params, x, y, k1, k2)
    assert abs(loss - ref_loss) <= 1e-12
    assert_close(grads, ref_grads, f"{cell} x {num_layers} Regular({k1}, {k2})")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_squared_error_and_weights_match_the_reference(cell, num_layers):
    rng = np.random.default_rng(5)
    model, params = build(cell, num_layers, 3, 4, 2, seed=1)
    x = rng.standard_normal((6, 3, 3))
    y = rng.standard_normal((6, 3, 2))
    w = rng.uniform(0, 2, (6, 3))
    model.forward(x)
    loss = model.loss(y, w)
    model.backward()
    ref_loss, ref_grads, _, _ = reference.cell_loss_and_grads(cell, params, x, y, weights=w)
    assert abs(loss - ref_loss) <= 1e-12
    assert_close(model.named_gradients(), ref_grads, cell)


def grads_of(model, x, y, truncation, h0=None, step_offset=0):
    model.forward(x, h0)
    loss = model.loss(y)
    dh0, _ = model.backward(truncation=truncation, step_offset=step_offset)
    return loss, model.grads.copy(), dh0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identities_bit_for_bit(cell, num_layers, dtype):
    """Regular(T) = Regular(T, 2T) = Randomized(1) = Full, and any thread count gives the same
    bits."""
    rng = np.random.default_rng(num_layers)
    model = rb.RNN(6, 20, 6, cell=cell, num_layers=num_layers, dtype=dtype, seed=3)
    x = rng.integers(0, 6, (13, 4))
    y = rng.integers(0, 6, (13, 4))
    h0 = rng.standard_normal(model.state_shape(4)).astype(dtype)
    full = grads_of(model, x, y, rb.Full(), h0)
    for truncation in (rb.Regular(13), rb.Regular(13, 26), rb.Randomized(1.0, seed=4)):
        other = grads_of(model, x, y, truncation, h0)
        assert other[0] == full[0]
        assert np.array_equal(other[1], full[1]), truncation
        assert np.array_equal(other[2], full[2]), truncation
    before = rb.get_num_threads()
    try:
        for threads in (1, 2, 3):
            rb.set_num_threads(threads)
            for truncation in (rb.Full(), rb.Regular(3, 7), rb.Randomized(0.5, seed=1)):
                reference_run = grads_of(model, x, y, truncation, h0)
                rb.set_num_threads(1)
                single = grads_of(model, x, y, truncation, h0)
                rb.set_num_threads(threads)
                assert np.array_equal(reference_run[1], single[1]), (threads, truncation)
                assert np.array_equal(reference_run[2], single[2]), (threads, truncation)
    finally:
        rb.set_num_threads(before)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("truncation", [rb.Full(), rb.Regular(4), rb.Randomized(0.7, seed=2)])
def test_streaming_is_the_chunks_run_one_by_one(cell, num_layers, truncation):
    """A stream's every chunk equals a forward from the carried state and a backward at its
    global offset, bit for bit; the chunks' gradients add up to the one-pass gradient."""
    rng = np.random.default_rng(8)
    model = rb.RNN(5, 7, 5, cell=cell, num_layers=num_layers, dtype=np.float64, seed=1)
    x = rng.integers(0, 5, (24, 3))
    y = rng.integers(0, 5, (24, 3))
    runner = rb.StreamRunner(model, truncation)
    state = None
    total = np.zeros_like(model.grads)
    for start in range(0, 24, 8):
        loss = runner.step(x[start : start + 8], y[start : start + 8])
        streamed = model.grads.copy()
        windows = runner.windows
        _, next_state = model.forward(x[start : start + 8], state)
        assert model.loss(y[start : start + 8]) == loss
        model.backward(truncation=truncation, step_offset=start)
        assert windows == model.windows
        assert np.array_equal(model.grads, streamed)
        assert np.array_equal(runner.state, next_state)
        state = next_state
        total += streamed / 3
    if truncation.kind != rb.Truncation.Kind.randomized:
        # Full cuts at the chunk boundaries: the one-pass Regular(8) (Regular(4) is that already).
        whole = rb.Regular(4) if truncation.kind == rb.Truncation.Kind.regular else rb.Regular(8)
        _, one_pass, _ = grads_of(model, x, y, whole)
        assert rel_err(total, one_pass) <= 1e-12


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("k1,k2,chunk", [(4, 10, 8), (3, 7, 6), (2, 9, 4), (5, 12, 5)])
@pytest.mark.parametrize("tokens", [True, False])
def test_regular_streams_reach_across_chunks(cell, num_layers, k1, k2, chunk, tokens):
    """Regular(k1 < k2) windows reach back into earlier chunks through the runner's history:
    the chunks' gradients add up to the unchunked sequence's (fixed parameters)."""
    rng = np.random.default_rng(k2)
    model = rb.RNN(4, 5, 4, cell=cell, num_layers=num_layers, dtype=np.float64, seed=k1)
    T = 60
    x = rng.integers(0, 4, (T, 2)) if tokens else rng.standard_normal((T, 2, 4))
    y = rng.integers(0, 4, (T, 2))
    runner = rb.StreamRunner(model, rb.Regular(k1, k2))
    total = np.zeros_like(model.grads)
    for start in range(0, T, chunk):
        steps = min(chunk, T - start)
        runner.step(x[start : start + steps], y[start : start + steps])
        total += model.grads * steps / T
    _, one_pass, _ = grads_of(model, x, y, rb.Regular(k1, k2))
    assert rel_err(total, one_pass) <= 1e-10
    assert rel_err(runner.state, model.forward(x)[1]) <= 1e-12


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("truncation", [rb.Full(), rb.Regular(4), rb.Regular(3, 8), rb.Randomized(0.7, seed=2)])
def test_a_restored_runner_continues_exactly(cell, truncation):
    """reset(position, state, history) puts a second runner where the first stands, history
    included: the next chunk's loss, gradient and state are bit-identical."""
    rng = np.random.default_rng(3)
    model = rb.RNN(5, 6, 5, cell=cell, num_layers=2, dtype=np.float32, seed=2)
    x = rng.integers(0, 5, (48, 2))
    y = rng.integers(0, 5, (48, 2))
    first = rb.StreamRunner(model, truncation)
    for start in range(0, 36, 12):
        first.step(x[start : start + 12], y[start : start + 12])
        model.params[:] -= 0.1 * model.grads  # training: the history was computed with older parameters
    assert first.state.shape == model.state_shape(2)
    assert (first.history is None) == (truncation.k2 <= truncation.k1)
    second = rb.StreamRunner(model, truncation)
    second.reset(first.position, state=first.state, history=first.history)
    results = []
    for runner in (first, second):
        results.append((runner.step(x[36:], y[36:]), model.grads.copy(), runner.state, runner.history))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])
    assert np.array_equal(results[0][2], results[1][2])
    if results[0][3] is not None:
        for a, b in zip(results[0][3], results[1][3]):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_history_that_does_not_hold_the_state_is_refused(cell):
    model = rb.RNN(3, 4, 3, cell=cell, num_layers=2, dtype=np.float64)
    runner = rb.StreamRunner(model, rb.Regular(2, 5))
    rng = np.random.default_rng(0)
    runner.step(rng.integers(0, 3, (4, 2)), rng.integers(0, 3, (4, 2)))
    inputs, states = runner.history
    k = inputs.shape[0]
    per_layer = (k + 1) * 2 + 4 * k if cell == "lstm" else (k + 1) + 4 * k  # h (c), gates (s_n)
    assert states.shape == (2 * per_layer, 2, 4)
    other = rb.StreamRunner(model, rb.Regular(2, 5))
    bad_state = runner.state.copy()
    bad_state.reshape(-1)[-1] += 1.0  # the last layer's c (lstm) or h (gru)
    with pytest.raises(ValueError, match="history states: expected the rows of the carried state to equal state"):
        other.reset(runner.position, state=bad_state, history=(inputs, states))
    with pytest.raises(ValueError, match=r"history states: expected an? .*\(rows="):
        other.reset(runner.position, state=runner.state, history=(inputs, states[1:]))


@pytest.mark.parametrize("cell, gate, name, value", [("gru", 0, "r", 1.5), ("gru", 2, "n", -1.25),
                                                     ("lstm", 1, "f", -0.5), ("lstm", 2, "g", 2.0)])
def test_a_history_with_forged_gate_values_is_refused(cell, gate, name, value):
    """Gate values are sigmoids in [0, 1] or tanh in [-1, 1]: a finite value outside its range
    cannot have come from a forward pass and is refused, naming the gate, layer and step."""
    model = rb.RNN(3, 4, 3, cell=cell, num_layers=2, dtype=np.float64)
    runner = rb.StreamRunner(model, rb.Regular(2, 5))
    rng = np.random.default_rng(1)
    runner.step(rng.integers(0, 3, (4, 2)), rng.integers(0, 3, (4, 2)))
    inputs, states = runner.history
    k, G = inputs.shape[0], {"gru": 3, "lstm": 4}[cell]
    per_layer = states.shape[0] // 2
    other = rb.StreamRunner(model, rb.Regular(2, 5))
    other.reset(runner.position, state=runner.state, history=(inputs, states))  # the real one restores
    forged = states.copy()
    gates_start = per_layer + (k + 1) * (2 if cell == "lstm" else 1)  # layer 1's gate rows
    forged[gates_start + (k - 1) * G + gate, 1, 3] = value
    with pytest.raises(ValueError, match=rf"history states: expected gate {name} of layer 1 at history step "
                                         rf"{k - 1} in \[-?[01], 1\] .*got {value:g} at sequence 1, unit 3"):
        other.reset(runner.position, state=runner.state, history=(inputs, forged))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_torch_round_trip_gives_identical_outputs(torch, cell, num_layers):
    from rnnbptt.torch_interop import from_torch, to_torch

    module = {"elman": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    torch.manual_seed(num_layers)
    rnn = module(5, 4, num_layers=num_layers, dtype=torch.float64)
    linear = torch.nn.Linear(4, 3, dtype=torch.float64)
    model = from_torch(rnn, linear)
    assert (model.cell, model.num_layers) == (cell, num_layers)
    x = np.random.default_rng(0).standard_normal((6, 2, 5))
    outputs, h_T = model.forward(x)
    out, state = rnn(torch.from_numpy(x))
    assert rel_err(outputs, linear(out).detach().numpy()) <= 1e-12
    expected = torch.stack(state) if cell == "lstm" else state
    assert rel_err(h_T.reshape(expected.shape), expected.detach().numpy()) <= 1e-12
    state_dict, linear_dict = to_torch(model)
    again = module(5, 4, num_layers=num_layers, dtype=torch.float64)
    again.load_state_dict(state_dict)
    assert rel_err(again(torch.from_numpy(x))[0].detach().numpy(), out.detach().numpy()) <= 1e-12
    from_dict = from_torch(state_dict, linear_dict, nonlinearity="tanh" if cell == "elman" else None)
    assert np.array_equal(from_dict.params, model.params)


@pytest.mark.parametrize("cell", CELLS)
def test_checkpoints_record_the_cell_and_the_layers(tmp_path, cell):
    model = rb.RNN(4, 3, 4, cell=cell, num_layers=2, seed=5)
    assert model.config()["cell"] == cell and model.config()["num_layers"] == 2
    path = rb.checkpoint.save(tmp_path / "m.safetensors", rb.checkpoint.Checkpoint(model=model))
    loaded = rb.checkpoint.load(path).model
    assert (loaded.cell, loaded.num_layers) == (cell, 2)
    assert loaded.parameter_names() == model.parameter_names()
    assert np.array_equal(loaded.params, model.params)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match=r"cell: expected 'elman', 'gru' or 'lstm', got 'rnn'"):
        rb.RNN(2, 2, 2, cell="rnn")
    with pytest.raises(TypeError, match=r"cell: expected 'elman', 'gru' or 'lstm', got 3"):
        rb.RNN(2, 2, 2, cell=3)
    with pytest.raises(ValueError, match=r"num_layers: expected a positive integer, got 0"):
        rb.RNN(2, 2, 2, num_layers=0)
    with pytest.raises(ValueError, match=r"num_layers: expected a positive integer below 2\*\*63, got 2\*\*63|"
                       r"num_layers: expected a positive integer below 2\*\*63, got 9223372036854775808"):
        rb.RNN(2, 2, 2, num_layers=2**63)
    with pytest.raises(MemoryError, match=r"num_layers: cannot allocate the parameter layout of 2147483648 layers"):
        rb.RNN(2, 2, 2, cell="gru", num_layers=2**31)
    with pytest.raises(ValueError, match=r"activation: the gru cell has no activation choice"):
        rb.RNN(2, 2, 2, cell="gru", activation="relu")
    model = rb.RNN(2, 3, 2, cell="lstm", num_layers=2)
    with pytest.raises(ValueError, match=r"h0: expected an? .*\(2, L=2, n=1, h=3\)"):
        model.forward(np.zeros((4, 1), dtype=np.int64), np.zeros((2, 1, 3), dtype=np.float32))
    with pytest.raises(AttributeError, match="b_h: the lstm cell has b_hx and b_hh"):
        _ = model.b_h


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_torch_layer_trains_gated_stacks_as_autograd_does(torch, cell):
    """rnnbptt.torch.RNN(cell=..., num_layers=2) inside a PyTorch graph: its gradients (with
    a loss on the final state too) are nn.GRU's / nn.LSTM's."""
    from rnnbptt.torch import RNN as Layer
    from rnnbptt.torch_interop import to_torch

    layer = Layer(4, 5, 3, cell=cell, num_layers=2, dtype=torch.float64, seed=1)
    state_dict, linear_dict = to_torch(layer.model)
    module = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](4, 5, num_layers=2, dtype=torch.float64)
    module.load_state_dict(state_dict)
    linear = torch.nn.Linear(5, 3, dtype=torch.float64)
    linear.load_state_dict(linear_dict)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((6, 2, 4))).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    outputs, h_T = layer(x)
    (outputs.square().sum() + h_T.sum()).backward()
    out, state = module(x2)
    final = torch.stack(state) if cell == "lstm" else state
    (linear(out).square().sum() + final.sum()).backward()
    assert rel_err(x.grad.numpy(), x2.grad.numpy()) <= TOLERANCE
    assert rel_err(layer.W_hh_l1.grad.numpy(), module.weight_hh_l1.grad.numpy()) <= TOLERANCE
    assert rel_err(layer.b_hx.grad.numpy(), module.bias_ih_l0.grad.numpy()) <= TOLERANCE


@pytest.mark.parametrize("cell", CELLS)
def test_models_and_torch_layers_pickle(torch, cell):
    """pickle and copy.deepcopy give an independent model with the same parameters and outputs;
    the torch layer's parameters view the copy's buffers again."""
    import copy
    import pickle

    from rnnbptt.torch import RNN as Layer

    model = rb.RNN(3, 4, 2, cell=cell, num_layers=2, dtype=np.float64, seed=3)
    again = pickle.loads(pickle.dumps(model))
    assert (again.cell, again.num_layers, again.dtype) == (cell, 2, model.dtype)
    assert np.array_equal(again.params, model.params) and not np.shares_memory(again.params, model.params)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    assert np.array_equal(again.forward(x)[0], model.forward(x)[0])
    layer = Layer(3, 4, 2, cell=cell, num_layers=2, dtype=torch.float64, seed=3)
    layer.W_hh.requires_grad_(False)
    for copied in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert not copied.W_hh.requires_grad and copied.W_qh.requires_grad
        outputs, _ = copied(torch.from_numpy(x))
        outputs.sum().backward()
        assert copied.W_qh.grad is not None
        with torch.no_grad():
            copied.W_qh.add_(1.0)  # the copy's own buffer
        assert np.array_equal(copied.model.W_qh, layer.model.W_qh + 1.0)
