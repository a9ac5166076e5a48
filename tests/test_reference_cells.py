"""The NumPy reference's GRU, LSTM and stacked cells (rnnbptt.reference, second half) against
independent oracles: PyTorch autograd (nn.RNN, nn.GRU, nn.LSTM + nn.Linear, float64, weights
copied by hand), PyTorch with detached states or gradient hooks for the truncation factors,
central finite differences, and the reference's own Elman functions (first half)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnbptt import reference

from conftest import rel_err

T, N, D, H, Q = 7, 3, 5, 4, 6

# (cell, activation): the Elman cell in both of nn.RNN's nonlinearities, then the gated cells.
CELLS = [("elman", "tanh"), ("elman", "relu"), ("gru", "tanh"), ("lstm", "tanh")]


def pname(base: str, layer: int) -> str:
    return base if layer == 0 else f"{base}_l{layer}"


def make_case(cell, num_layers, *, bias=True, tokens=True, seed=0, loss="cross_entropy", steps=T):
    """Parameters, input, targets and initial states (every layer, c included for LSTM)."""
    rng = np.random.default_rng(seed + 100)
    params = reference.init_cell_params(cell, D, H, Q, num_layers, bias=bias, seed=seed, scale=0.6)
    x = rng.integers(0, D, (steps, N)) if tokens else rng.standard_normal((steps, N, D))
    if loss == "cross_entropy":
        targets = rng.integers(0, Q, (steps, N))
    else:
        targets = rng.standard_normal((steps, N, Q))
    states = {"h": 0.5 * rng.standard_normal((num_layers, N, H))}
    if cell == "lstm":
        states["c"] = rng.standard_normal((num_layers, N, H))
    return params, x, targets, states


def seeds_for(cell, num_layers, seed=7):
    rng = np.random.default_rng(seed)
    dh_T = 0.3 * rng.standard_normal((num_layers, N, H))
    dc_T = 0.3 * rng.standard_normal((num_layers, N, H)) if cell == "lstm" else None
    return dh_T, dc_T


# ---------------------------------------------------------------------------------------------
# PyTorch oracle
# ---------------------------------------------------------------------------------------------


def torch_modules(torch, cell, activation, params, num_layers, bias):
    """nn.RNN / nn.GRU / nn.LSTM + nn.Linear holding ``params``. nn.RNN's two biases always
    appear as a sum: ``b_h`` goes to ``bias_ih``, ``bias_hh`` is zero (as tests/conftest.py)."""
    d, h, q = params["W_hx"].shape[1], params["W_hh"].shape[1], params["W_qh"].shape[0]
    kwargs = dict(num_layers=num_layers, bias=bias, dtype=torch.float64)
    if cell == "elman":
        rnn = torch.nn.RNN(d, h, nonlinearity=activation, **kwargs)
    elif cell == "gru":
        rnn = torch.nn.GRU(d, h, **kwargs)
    else:
        rnn = torch.nn.LSTM(d, h, **kwargs)
    linear = torch.nn.Linear(h, q, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for layer in range(num_layers):
            getattr(rnn, f"weight_ih_l{layer}").copy_(torch.from_numpy(params[pname("W_hx", layer)]))
            getattr(rnn, f"weight_hh_l{layer}").copy_(torch.from_numpy(params[pname("W_hh", layer)]))
            if bias:
                if cell == "elman":
                    getattr(rnn, f"bias_ih_l{layer}").copy_(torch.from_numpy(params[pname("b_h", layer)]))
                    getattr(rnn, f"bias_hh_l{layer}").zero_()
                else:
                    getattr(rnn, f"bias_ih_l{layer}").copy_(torch.from_numpy(params[pname("b_hx", layer)]))
                    getattr(rnn, f"bias_hh_l{layer}").copy_(torch.from_numpy(params[pname("b_hh", layer)]))
        linear.weight.copy_(torch.from_numpy(params["W_qh"]))
        if bias:
            linear.bias.copy_(torch.from_numpy(params["b_q"]))
    return rnn, linear


def torch_grads(cell, rnn, linear, num_layers, bias):
    def grad(tensor):
        return np.zeros(tuple(tensor.shape)) if tensor.grad is None else tensor.grad.numpy().copy()

    grads = {}
    for layer in range(num_layers):
        grads[pname("W_hx", layer)] = grad(getattr(rnn, f"weight_ih_l{layer}"))
        grads[pname("W_hh", layer)] = grad(getattr(rnn, f"weight_hh_l{layer}"))
        if bias:
            if cell == "elman":
                grads[pname("b_h", layer)] = grad(getattr(rnn, f"bias_ih_l{layer}"))
            else:
                grads[pname("b_hx", layer)] = grad(getattr(rnn, f"bias_ih_l{layer}"))
                grads[pname("b_hh", layer)] = grad(getattr(rnn, f"bias_hh_l{layer}"))
    grads["W_qh"] = grad(linear.weight)
    if bias:
        grads["b_q"] = grad(linear.bias)
    return grads


def torch_inputs(torch, x, d):
    if x.ndim == 2:
        return torch.nn.functional.one_hot(torch.from_numpy(x), d).to(torch.float64)
    return torch.from_numpy(x.copy()).requires_grad_(True)


def torch_position_losses(torch, logits, targets):
    """Per-position losses (T, n): cross-entropy for integer targets, 0.5 ||o - y||^2 otherwise."""
    steps, n, q = logits.shape
    if np.issubdtype(targets.dtype, np.integer):
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, q), torch.from_numpy(targets).reshape(-1), reduction="none"
        ).reshape(steps, n)
    return 0.5 * ((logits - torch.from_numpy(targets)) ** 2).sum(dim=-1)


def torch_run(
    torch,
    cell,
    activation,
    params,
    x,
    targets,
    states,
    *,
    weights=None,
    flow=None,
    cuts=(),
    dh_T=None,
    dc_T=None,
    resets=None,
    lengths=None,
    normalizer=None,
):
    """Loss, parameter gradients, initial-state gradients, final states, logits and dL/dx by
    autograd. ``cuts``: steps (0-based) before which the state is detached (whole segments run
    in one call each). ``flow``: run step by step and scale the gradient reaching the state
    before step t by flow[t] with a tensor hook (flow[0] for the initial states).
    ``resets`` (T, n) bool: the state masked by hand, ``where(resets[t], initial, state)``
    before step t (then its flow or cut); ``lengths`` (n,): positions past a length weigh 0
    and the final state is gathered at each sequence's length. ``normalizer``: divide the
    weighted loss sum by it instead of by the weights' sum (one window of several)."""
    num_layers = states["h"].shape[0]
    bias = "b_q" in params
    rnn, linear = torch_modules(torch, cell, activation, params, num_layers, bias)
    X = torch_inputs(torch, x, params["W_hx"].shape[1])
    leaves = [torch.from_numpy(states[key].copy()).requires_grad_(True) for key in ("h", "c") if key in states]
    state = tuple(leaves) if cell == "lstm" else leaves[0]

    def each(s, f):
        return tuple(f(v) for v in s) if isinstance(s, tuple) else f(s)

    def hooked(v, factor):
        v = v.view_as(v)
        v.register_hook(lambda g: g * factor)
        return v

    steps = x.shape[0]
    initial = state
    visited = [initial]  # the state after each step
    if flow is not None or resets is not None or lengths is not None:
        outs = []
        for t in range(steps):
            if resets is not None and resets[t].any():
                mask = torch.from_numpy(np.ascontiguousarray(resets[t]))[None, :, None]
                state = (tuple(torch.where(mask, v0, v) for v, v0 in zip(state, initial)) if cell == "lstm"
                         else torch.where(mask, initial, state))
            if flow is not None:
                state = each(state, lambda v, t=t: hooked(v, float(flow[t])))
            elif t in cuts:
                state = each(state, lambda v: v.detach())
            out, state = rnn(X[t : t + 1], state)
            outs.append(out)
            visited.append(state)
        out = torch.cat(outs)
    else:
        bounds = sorted({0, *cuts, steps})
        outs = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            if a in cuts:
                state = each(state, lambda v: v.detach())
            out, state = rnn(X[a:b], state)
            outs.append(out)
        out = torch.cat(outs)
    logits = linear(out)
    w = torch.ones(x.shape[:2], dtype=torch.float64) if weights is None else torch.from_numpy(weights)
    if lengths is not None:
        w = w * torch.from_numpy(np.arange(steps)[:, None] < np.asarray(lengths)[None, :])
        # Targets past a length are padding: any valid id stands in (their weight is 0).
        inside = np.arange(steps)[:, None] < np.asarray(lengths)[None, :]
        targets = np.where(inside if targets.ndim == 2 else inside[..., None], targets, 0)
        parts = len(state) if cell == "lstm" else 1
        gathered = []
        for part in range(parts):
            pick = [visited[int(length)] for length in lengths]
            pick = [p[part] if cell == "lstm" else p for p in pick]
            gathered.append(torch.stack([pick[i][:, i] for i in range(len(pick))], dim=1))
        state = tuple(gathered) if cell == "lstm" else gathered[0]
    loss = (torch_position_losses(torch, logits, targets) * w).sum() / (w.sum() if normalizer is None else normalizer)
    objective = loss
    final = list(state) if cell == "lstm" else [state]
    if dh_T is not None:
        objective = objective + (final[0] * torch.from_numpy(dh_T)).sum()
    if dc_T is not None:
        objective = objective + (final[1] * torch.from_numpy(dc_T)).sum()
    objective.backward()
    keys = ("h", "c") if cell == "lstm" else ("h",)
    dstates0 = {
        key: (np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy().copy())
        for key, leaf in zip(keys, leaves)
    }
    states_T = {key: v.detach().numpy().copy() for key, v in zip(keys, final)}
    dx = None if x.ndim == 2 else X.grad.numpy().copy()
    grads = torch_grads(cell, rnn, linear, num_layers, bias)
    return loss.item(), grads, dstates0, states_T, logits.detach().numpy(), dx


def assert_close(actual, expected, tolerance, what=""):
    assert set(actual) == set(expected), what
    for name in expected:
        assert rel_err(actual[name], expected[name]) <= tolerance, f"{what} {name}"


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,activation", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("tokens", [True, False])
def test_matches_torch_autograd(torch, cell, activation, num_layers, bias, tokens):
    """Outputs, final states, loss, every parameter gradient, the initial-state gradients (h and
    c of every layer), dL/dx and the final-state seeds, against nn.RNN / nn.GRU / nn.LSTM."""
    params, x, targets, states = make_case(cell, num_layers, bias=bias, tokens=tokens, seed=num_layers)
    dh_T, dc_T = seeds_for(cell, num_layers)
    layers, os, states_T = reference.cell_forward(cell, params, x, states, activation=activation)
    loss, dos = reference.loss_and_output_grads(os, targets)
    grads, dstates0, dx = reference.cell_backward(
        cell, params, layers, dos, activation=activation, dh_T=dh_T, dc_T=dc_T
    )
    t_loss, t_grads, t_dstates0, t_states_T, t_logits, t_dx = torch_run(
        torch, cell, activation, params, x, targets, states, dh_T=dh_T, dc_T=dc_T
    )
    assert rel_err(np.stack([o.T for o in os]), t_logits) <= 1e-12
    assert_close(states_T, t_states_T, 1e-12, "states_T")
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
    assert_close(grads, t_grads, 1e-10, "grads")
    assert_close(dstates0, t_dstates0, 1e-10, "dstates0")
    if not tokens:
        assert rel_err(dx, t_dx) <= 1e-10
    # The one-call API gives the same numbers.
    loss2, grads2, dstates2, states_T2 = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, dh_T=dh_T, dc_T=dc_T
    )
    assert loss2 == loss
    for name in grads:
        assert np.array_equal(grads2[name], grads[name]), name
    for key in dstates0:
        assert np.array_equal(dstates2[key], dstates0[key])
        assert np.array_equal(states_T2[key], states_T[key])


@pytest.mark.parametrize("cell,activation", CELLS)
def test_weighted_squared_error_matches_torch(torch, cell, activation):
    """The other loss of the reference, with per-position weights (some zero)."""
    params, x, targets, states = make_case(cell, 2, tokens=False, loss="squared_error", seed=3)
    weights = np.random.default_rng(5).uniform(0.2, 2.0, x.shape[:2])
    weights[1, :2] = 0.0
    loss, grads, dstates0, _ = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, weights=weights, activation=activation
    )
    t_loss, t_grads, t_dstates0, _, _, _ = torch_run(
        torch, cell, activation, params, x, targets, states, weights=weights
    )
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
    assert_close(grads, t_grads, 1e-10)
    assert_close(dstates0, t_dstates0, 1e-10)


def test_default_states_are_zeros(torch):
    params, x, targets, states = make_case("lstm", 2, seed=4)
    zeros = {key: np.zeros_like(value) for key, value in states.items()}
    loss, grads, dstates0, states_T = reference.cell_loss_and_grads("lstm", params, x, targets)
    loss0, grads0, dstates00, states_T0 = reference.cell_loss_and_grads("lstm", params, x, targets, states=zeros)
    assert loss == loss0
    for name in grads:
        assert np.array_equal(grads[name], grads0[name])
    t_loss, t_grads, t_dstates0, t_states_T, _, _ = torch_run(torch, "lstm", "tanh", params, x, targets, zeros)
    assert abs(loss - t_loss) <= 1e-12 * t_loss
    assert_close(grads, t_grads, 1e-10)
    assert_close(dstates0, t_dstates0, 1e-10)
    assert_close(states_T, t_states_T, 1e-12)


@pytest.mark.parametrize("cell,activation", CELLS)
def test_flow_of_ones_is_full_bptt(cell, activation):
    params, x, targets, states = make_case(cell, 2, seed=6)
    dh_T, dc_T = seeds_for(cell, 2)
    full = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, dh_T=dh_T, dc_T=dc_T
    )
    ones = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, dh_T=dh_T, dc_T=dc_T, flow=np.ones(T)
    )
    for name in full[1]:
        assert np.array_equal(full[1][name], ones[1][name]), name
    for key in full[2]:
        assert np.array_equal(full[2][key], ones[2][key]), key


@pytest.mark.parametrize("cell,activation", CELLS)
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("cuts", [(3,), (0, 4), (2, 5, 6)])
def test_zero_flow_is_torch_detach(torch, cell, activation, num_layers, cuts):
    """flow = 0 at the cuts equals PyTorch detaching the states of every layer (h and c) there:
    the sum of the gradients of independently run segments, each from its constant start."""
    params, x, targets, states = make_case(cell, num_layers, seed=8 + num_layers)
    dh_T, dc_T = seeds_for(cell, num_layers)
    flow = np.ones(T)
    flow[list(cuts)] = 0.0
    loss, grads, dstates0, _ = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, flow=flow, dh_T=dh_T, dc_T=dc_T
    )
    t_loss, t_grads, t_dstates0, _, _, _ = torch_run(
        torch, cell, activation, params, x, targets, states, cuts=cuts, dh_T=dh_T, dc_T=dc_T
    )
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
    assert_close(grads, t_grads, 1e-10)
    assert_close(dstates0, t_dstates0, 1e-10)
    if 0 in cuts:
        assert all(not value.any() for value in dstates0.values())
    # A truncated gradient really differs from the full one.
    _, full, _, _ = reference.cell_loss_and_grads(cell, params, x, targets, states=states, activation=activation)
    assert rel_err(grads["W_hh"], full["W_hh"]) > 1e-6


@pytest.mark.parametrize("cell,activation", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_any_flow_is_torch_gradient_hooks(torch, cell, activation, num_layers):
    """Arbitrary factors (Randomized's 1/pi, zeros, ones, 0.5): PyTorch run step by step with a
    hook scaling the gradient of the whole state (every layer, h and c) before each step."""
    params, x, targets, states = make_case(cell, num_layers, tokens=False, seed=20 + num_layers)
    dh_T, dc_T = seeds_for(cell, num_layers)
    flow = np.array([2.5, 1.0, 0.0, 0.5, 4.0, 1.0, 1.25])
    loss, grads, dstates0, _ = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, flow=flow, dh_T=dh_T, dc_T=dc_T
    )
    t_loss, t_grads, t_dstates0, _, _, _ = torch_run(
        torch, cell, activation, params, x, targets, states, flow=flow, dh_T=dh_T, dc_T=dc_T
    )
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
    assert_close(grads, t_grads, 1e-10)
    assert_close(dstates0, t_dstates0, 1e-10)


def torch_regular(torch, cell, activation, params, x, targets, states, k1, k2):
    """TBPTT(k1, k2) in PyTorch: per block, a window from the detached state at its first step
    (computed without gradients), backward of the block's share of the loss, gradients summed."""
    num_layers = states["h"].shape[0]
    bias = "b_q" in params
    rnn, linear = torch_modules(torch, cell, activation, params, num_layers, bias)
    X = torch_inputs(torch, x, params["W_hx"].shape[1])
    start = tuple(torch.from_numpy(states[k]) for k in ("h", "c")) if cell == "lstm" else torch.from_numpy(states["h"])
    steps = x.shape[0]
    for block_start in range(0, steps, k1):
        block_end = min(block_start + k1, steps)
        first = max(0, block_start - (k2 - k1))
        state = start
        if first > 0:
            with torch.no_grad():
                _, state = rnn(X[:first], start)
        out, _ = rnn(X[first:block_end], state)
        losses = torch_position_losses(torch, linear(out), targets[first:block_end])
        (losses[block_start - first :].sum() / (steps * x.shape[1])).backward()
    return torch_grads(cell, rnn, linear, num_layers, bias)


@pytest.mark.parametrize("cell,activation", CELLS)
@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (7, 7)])
def test_regular_grads_match_torch(torch, cell, activation, k1, k2):
    params, x, targets, states = make_case(cell, 2, seed=30)
    _, grads = reference.cell_regular_grads(cell, params, x, targets, k1, k2, states=states, activation=activation)
    assert_close(grads, torch_regular(torch, cell, activation, params, x, targets, states, k1, k2), 1e-10)
    if k1 == k2:
        # Regular(k, k) is flow = 0 at every multiple of k (k = T: full BPTT).
        flow = np.ones(T)
        flow[k1::k1] = 0.0
        _, by_flow, _, _ = reference.cell_loss_and_grads(
            cell, params, x, targets, states=states, activation=activation, flow=flow
        )
        assert_close(grads, by_flow, 1e-13)


ELMAN_CASES = list(
    itertools.product(
        ["tanh", "relu", "identity"],  # activation
        [True, False],  # bias
        [True, False],  # tokens
        ["cross_entropy", "squared_error"],  # loss
    )
)


@pytest.mark.parametrize("activation,bias,tokens,loss", ELMAN_CASES)
def test_one_elman_layer_is_the_first_half_bit_for_bit(activation, bias, tokens, loss):
    """cell="elman", L = 1 through the general functions gives the first half's numbers exactly,
    with weights, truncation factors and a final-state seed."""
    params, x, targets, states = make_case("elman", 1, bias=bias, tokens=tokens, loss=loss, seed=40)
    rng = np.random.default_rng(41)
    weights = rng.uniform(0.2, 2.0, x.shape[:2])
    flow = np.array([0.5, 1.0, 0.0, 2.0, 1.0, 1.0, 3.0])
    dh_T = rng.standard_normal((1, N, H))
    h0 = states["h"][0]

    hs, os = reference.forward(params, x, h0, activation)
    layers, cell_os, states_T = reference.cell_forward("elman", params, x, states, activation=activation)
    assert all(np.array_equal(a, b) for a, b in zip(hs, layers[0].h))
    assert all(np.array_equal(a, b) for a, b in zip(os, cell_os))
    assert np.array_equal(states_T["h"][0], hs[-1].T)

    expected = reference.loss_and_grads(
        params, x, targets, h0=h0, weights=weights, activation=activation, flow=flow, dh_T=dh_T[0]
    )
    loss_value, grads, dstates0, _ = reference.cell_loss_and_grads(
        "elman", params, x, targets, states=states, weights=weights, activation=activation, flow=flow, dh_T=dh_T
    )
    assert loss_value == expected[0]
    assert set(grads) == set(expected[1])
    for name in grads:
        assert np.array_equal(grads[name], expected[1][name]), name
    assert np.array_equal(dstates0["h"][0], expected[2])
    _, dos = reference.loss_and_output_grads(cell_os, targets, weights)
    _, _, dx = reference.cell_backward("elman", params, layers, dos, activation=activation, flow=flow, dh_T=dh_T)
    assert np.array_equal(dx, expected[3])


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (1, 4)])
def test_one_elman_layer_regular_grads_is_the_first_half_bit_for_bit(k1, k2):
    params, x, targets, states = make_case("elman", 1, tokens=False, seed=50)
    expected_loss, expected = reference.regular_grads(params, x, targets, k1, k2, h0=states["h"][0])
    loss_value, grads = reference.cell_regular_grads("elman", params, x, targets, k1, k2, states=states)
    assert loss_value == expected_loss
    for name in expected:
        assert np.array_equal(grads[name], expected[name]), name


@pytest.mark.parametrize("cell,activation", CELLS)
def test_finite_differences(cell, activation):
    """Central differences of L + <dh_T, h_T> + <dc_T, c_T> for a few entries of every parameter
    and of the initial states, two layers, float64."""
    num_layers = 2
    params, x, targets, states = make_case(cell, num_layers, tokens=False, seed=60)
    if activation == "relu":  # keep every pre-activation away from the kink
        params = {k: v * 0.5 for k, v in params.items()}
    dh_T, dc_T = seeds_for(cell, num_layers)

    def objective(p, s):
        value, _, _, final = reference.cell_loss_and_grads(cell, p, x, targets, states=s, activation=activation)
        value += float((final["h"] * dh_T).sum())
        if dc_T is not None:
            value += float((final["c"] * dc_T).sum())
        return value

    _, grads, dstates0, _ = reference.cell_loss_and_grads(
        cell, params, x, targets, states=states, activation=activation, dh_T=dh_T, dc_T=dc_T
    )
    rng = np.random.default_rng(61)
    eps = 1e-6
    checked = 0
    for kind, values, analytic in [("param", params, grads), ("state", states, dstates0)]:
        for name in values:
            for _ in range(3):
                index = tuple(int(rng.integers(0, size)) for size in values[name].shape)
                plus = {k: v.copy() for k, v in values.items()}
                minus = {k: v.copy() for k, v in values.items()}
                plus[name][index] += eps
                minus[name][index] -= eps
                if kind == "param":
                    numeric = (objective(plus, states) - objective(minus, states)) / (2 * eps)
                else:
                    numeric = (objective(params, plus) - objective(params, minus)) / (2 * eps)
                exact = analytic[name][index]
                assert abs(numeric - exact) <= 1e-7 * max(1.0, abs(exact)), (kind, name, index, numeric, exact)
                checked += 1
    assert checked >= 3 * (len(params) + len(states))


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_layout_is_torchs(torch, cell, num_layers, bias):
    """Names and shapes: ours map one to one onto nn.RNN / nn.GRU / nn.LSTM + nn.Linear (nn.RNN's
    bias_hh aside); no biases at all without bias; the default draw is within 1 / sqrt(h)."""
    params = reference.init_cell_params(cell, D, H, Q, num_layers, bias=bias, seed=1)
    shapes = reference.cell_param_shapes(cell, D, H, Q, num_layers, bias)
    assert list(params) == list(shapes)
    assert all(params[k].shape == shapes[k] and params[k].dtype == np.float64 for k in params)
    assert all(np.abs(v).max() <= 1 / np.sqrt(H) for v in params.values())
    if not bias:
        assert not any(k.startswith("b_") for k in params)
    rnn, linear = torch_modules(torch, cell, "tanh", params, num_layers, bias)
    torch_shapes = {k: tuple(v.shape) for k, v in rnn.state_dict().items()}
    for layer in range(num_layers):
        assert shapes[pname("W_hx", layer)] == torch_shapes[f"weight_ih_l{layer}"]
        assert shapes[pname("W_hh", layer)] == torch_shapes[f"weight_hh_l{layer}"]
    assert len(shapes) == len(torch_shapes) + len(linear.state_dict()) - (num_layers if cell == "elman" and bias else 0)
    same = reference.init_cell_params(cell, D, H, Q, num_layers, bias=bias, seed=1, dtype=np.float32)
    assert all(same[k].dtype == np.float32 and np.array_equal(same[k], params[k].astype(np.float32)) for k in params)


def test_bad_arguments_are_refused():
    params, x, targets, states = make_case("gru", 2)
    with pytest.raises(ValueError, match="cell"):
        reference.cell_forward("rnn", params, x)
    with pytest.raises(ValueError, match="activation"):
        reference.cell_forward("gru", params, x, activation="relu")
    with pytest.raises(ValueError, match="shape"):
        reference.cell_forward("lstm", params, x)  # GRU's 3h rows are not an LSTM's 4h
    with pytest.raises(ValueError, match="states"):
        reference.cell_forward("gru", params, x, {"h": states["h"][0]})
    with pytest.raises(ValueError, match="flow"):
        reference.cell_loss_and_grads("gru", params, x, targets, flow=np.ones(T + 1))
    with pytest.raises(ValueError, match="dh_T"):
        reference.cell_loss_and_grads("gru", params, x, targets, dh_T=np.zeros((1, N, H)))
    with pytest.raises(ValueError, match="dc_T"):
        reference.cell_loss_and_grads("gru", params, x, targets, dc_T=np.zeros((2, N, H)))
    with pytest.raises(ValueError, match="k1"):
        reference.cell_regular_grads("gru", params, x, targets, 3, 2)
