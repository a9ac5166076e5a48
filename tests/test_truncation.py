"""The three truncation strategies against independent oracles (docs/design.md section 4)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference

from conftest import make_problem, model_grads, rel_err, torch_modules


def grads_for(p, truncation, step_offset=0):
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets, p.weights)
    result = p.model.backward(truncation=truncation, step_offset=step_offset)
    return model_grads(p.model), result.dh0


def test_regular_T_and_randomized_pi_1_equal_full_exactly():
    p = make_problem(T=17, masked=True)
    full, full_dh0 = grads_for(p, rb.Full())
    for truncation in [rb.Regular(17), rb.Regular(17, 40), rb.Randomized(1.0, seed=9)]:
        grads, dh0 = grads_for(p, truncation)
        for name in full:
            assert np.array_equal(grads[name], full[name]), (truncation, name)
        assert np.array_equal(dh0, full_dh0)


@pytest.mark.parametrize("k1,k2", [(1, 1), (4, 4), (5, 5), (1, 3), (4, 7), (3, 11), (5, 30)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_regular_matches_brute_force_windows(k1, k2, activation):
    p = make_problem(T=23, activation=activation, masked=True)
    grads, _ = grads_for(p, rb.Regular(k1, k2))
    _, expected = reference.regular_grads(
        p.params64(), p.x, p.targets, k1, k2, h0=p.h0, weights=p.weights, activation=activation
    )
    for name in grads:
        assert rel_err(grads[name], expected[name]) <= 1e-10, name
    full, _ = grads_for(p, rb.Full())
    if k2 < 23:
        assert rel_err(grads["W_hh"], full["W_hh"]) > 1e-6  # truncation did something
    else:  # every window reaches the sequence start: that is Full
        assert rel_err(grads["W_hh"], full["W_hh"]) <= 1e-12


def torch_tbptt(torch, p, k1, k2):
    """Williams & Peng with PyTorch's idiom: for each block, rerun the window from a detached
    state and backpropagate only the block's losses."""
    m = p.model
    rnn, linear = torch_modules(torch, m)
    x = torch.nn.functional.one_hot(torch.from_numpy(p.x), m.input_size).double()
    y = torch.from_numpy(p.targets)
    T, n = p.targets.shape
    with torch.no_grad():
        states, _ = rnn(x, torch.from_numpy(p.h0)[None])
    states = torch.cat([torch.from_numpy(p.h0)[None], states])
    for start in range(0, T, k1):
        end = min(start + k1, T)
        first = max(0, start - (k2 - k1))
        out, _ = rnn(x[first:end], states[first][None].detach())
        logits = linear(out[start - first :])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, m.output_size), y[start:end].reshape(-1), reduction="sum"
        ) / (T * n)
        loss.backward()
    return {
        "W_hx": rnn.weight_ih_l0.grad, "W_hh": rnn.weight_hh_l0.grad, "b_h": rnn.bias_ih_l0.grad,
        "W_qh": linear.weight.grad, "b_q": linear.bias.grad,
    }


@pytest.mark.parametrize("k1,k2", [(5, 5), (3, 8)])
def test_regular_matches_torch_detach_idiom(torch, k1, k2):
    p = make_problem(T=21, n=3, h=8)
    grads, _ = grads_for(p, rb.Regular(k1, k2))
    expected = torch_tbptt(torch, p, k1, k2)
    for name in grads:
        assert rel_err(grads[name], expected[name].numpy()) <= 1e-10, name


def randomized_samples(p, pi, count):
    samples = []
    for seed in range(count):
        grads, _ = grads_for(p, rb.Randomized(pi, seed=seed))
        samples.append(np.concatenate([g.ravel() for g in grads.values()]))
    return np.array(samples)


def standardized_error(samples, target):
    """Per component: (sample mean - target) / standard error of the mean."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    varying = se > 1e-12 * np.abs(target).max()
    return np.abs(mean - target)[varying] / se[varying]


def test_randomized_is_unbiased():
    p = make_problem(T=12, n=2, h=5, q=4, scale=0.6)
    full, _ = grads_for(p, rb.Full())
    full_flat = np.concatenate([g.ravel() for g in full.values()])
    samples = randomized_samples(p, 0.75, 3000)
    z = standardized_error(samples, full_flat)
    # ~100 components: max |z| of that many standard normals is rarely above 4.
    assert z.size > 50 and z.max() < 5.0, z.max()
    # The same statistic rejects a biased estimator: Regular(3) is not the full gradient.
    regular, _ = grads_for(p, rb.Regular(3))
    regular_flat = np.concatenate([g.ravel() for g in regular.values()])
    assert standardized_error(samples, regular_flat).max() > 10.0


def test_randomized_spread_grows_as_pi_falls():
    p = make_problem(T=12, n=2, h=5, q=4, scale=0.6)
    spreads = [randomized_samples(p, pi, 400).std(axis=0).sum() for pi in (0.95, 0.8, 0.6, 0.4)]
    assert all(a < b for a, b in zip(spreads, spreads[1:])), spreads


def test_randomized_schedule_depends_on_segment_length():
    p = make_problem(T=200, n=1, h=4)
    grads_for(p, rb.Randomized([1.0, 1.0, 1.0, 0.5], seed=4))
    lengths = [end - first for first, _, end in p.model.windows]
    assert sum(lengths) == 200 and len(lengths) > 5
    assert min(lengths[:-1]) >= 4  # the first three steps of a segment are never cut
    flow = p.model.flow
    assert set(np.unique(flow)) <= {0.0, 1.0, 2.0}


def test_cuts_are_visible_and_follow_the_flow():
    p = make_problem(T=30)
    grads_for(p, rb.Randomized(0.7, seed=11))
    flow, windows = p.model.flow, p.model.windows
    cuts = [t for t in range(1, 30) if flow[t] == 0]
    assert [first for first, _, _ in windows[1:]] == cuts
    assert all(first == begin for first, begin, _ in windows)
    assert np.allclose(flow[flow != 0][1:], 1 / 0.7)
    grads_for(p, rb.Regular(8))
    assert p.model.windows == [(0, 0, 8), (8, 8, 16), (16, 16, 24), (24, 24, 30)]
    grads_for(p, rb.Regular(8, 12))
    assert p.model.windows == [(0, 0, 8), (4, 8, 16), (12, 16, 24), (20, 24, 30)]


# ---- the schedule: windows and flow against brute force ----------------------------------


def brute_force_windows(k1, k2, T, step_offset=0, context=0):
    """Regular(k1, k2) windows by grouping steps into blocks of the global step index: every
    block of k1 steps that holds a step after the history injects those steps' losses and
    reaches k2 - k1 steps before the block's first (global) step."""
    blocks: dict[int, list[int]] = {}
    for t in range(context, T):
        blocks.setdefault((step_offset + t) // k1, []).append(t)
    windows = []
    for block, steps in sorted(blocks.items()):
        block_first = block * k1 - step_offset  # local index of the block's first step
        windows.append((max(0, block_first - (k2 - k1)), steps[0], steps[-1] + 1))
    return windows


def brute_force_flow(truncation, T, step_offset=0, context=0):
    """xi_t per strategy: Full 1; Randomized 1/pi or 0 from the counter-based draws; Regular 1
    wherever some window joins step t to t - 1 (or step 0 to h_0), else 0."""
    if truncation.kind == rb.Truncation.Kind.full:
        return np.ones(T)
    if truncation.kind == rb.Truncation.Kind.randomized:
        pis, flow, length = truncation.keep_probability, np.ones(T), 1
        for t in range(1, T):
            pi = pis[min(length, len(pis)) - 1]
            keep = rb._core.uniform_at(truncation.seed, step_offset + t + 1) < pi
            flow[t], length = (1 / pi, length + 1) if keep else (0.0, 1)
        return flow
    flow = np.zeros(T)
    for first, _, end in brute_force_windows(truncation.k1, truncation.k2, T, step_offset, context):
        flow[first + 1 : end] = 1.0
        flow[0] = 1.0 if first == 0 else flow[0]
    return flow


@pytest.mark.parametrize("step_offset", [0, 3, 10])
@pytest.mark.parametrize("context", [0, 2, 5])
def test_regular_schedule_equals_brute_force(step_offset, context):
    for k1 in range(1, 7):
        for k2 in range(k1, 15):
            t = rb.Regular(k1, k2)
            for T in (context + 1, 7, 13, 20):
                if T <= context:
                    continue
                flow, windows, lanes = t.schedule(T, step_offset, context)
                expected = brute_force_windows(k1, k2, T, step_offset, context)
                assert windows == expected, (k1, k2, T)
                assert np.array_equal(flow, brute_force_flow(t, T, step_offset, context)), (k1, k2, T)
                assert lanes == min(-(-k2 // k1), len(expected))


def test_flow_is_c_t_for_every_strategy():
    """model.flow is the factor xi_t for every strategy (never a count of windows), and for the
    strategies that tile the sequence it reproduces the gradient in the NumPy reference."""
    p = make_problem(T=24, masked=True)
    strategies = [rb.Full(), rb.Regular(1), rb.Regular(5), rb.Regular(3, 6), rb.Regular(4, 13),
                  rb.Randomized(0.6, seed=3), rb.Randomized([1.0, 0.9, 0.5], seed=8)]
    for truncation in strategies:
        for step_offset in (0, 7):
            grads, dh0 = grads_for(p, truncation, step_offset)
            flow = p.model.flow
            assert np.array_equal(flow, brute_force_flow(truncation, 24, step_offset)), truncation
            assert np.array_equal(flow, truncation.schedule(24, step_offset)[0])
            if truncation.kind == rb.Truncation.Kind.regular and truncation.k2 > truncation.k1:
                assert np.all(flow == 1.0)  # inside every window the flow is whole
                continue
            _, expected, expected_dh0, _ = reference.loss_and_grads(
                p.params64(), p.x, p.targets, h0=p.h0, weights=p.weights, flow=flow
            )
            for name in grads:
                assert rel_err(grads[name], expected[name]) <= 1e-10, (truncation, name)
            assert rel_err(dh0, expected_dh0) <= 1e-10


# ---- the string form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "truncation",
    [rb.Full(), rb.Regular(5), rb.Regular(5, 10), rb.Randomized(0.1, seed=2**64 - 1),
     rb.Randomized([1.0, 0.3, 1 / 3], seed=7), rb.Randomized(0.8)],
)
def test_string_form_round_trips(truncation):
    spec = str(truncation)
    assert rb.Truncation.parse(spec) == truncation
    assert str(rb.Truncation.parse(spec)) == spec
    assert hash(rb.Truncation.parse(spec)) == hash(truncation)
    import pickle

    assert pickle.loads(pickle.dumps(truncation)) == truncation
    assert eval(repr(truncation), {"Full": rb.Full, "Regular": rb.Regular, "Randomized": rb.Randomized}) == truncation


def test_parse_reads_the_documented_forms():
    assert rb.Truncation.parse("full") == rb.Full()
    assert rb.Truncation.parse("regular:7") == rb.Regular(7, 7)
    assert rb.Truncation.parse("regular:5,10") == rb.Regular(5, 10)
    assert rb.Truncation.parse("randomized:0.5") == rb.Randomized(0.5, seed=0)
    assert rb.Truncation.parse("randomized:0.9,0.5,seed=3") == rb.Randomized([0.9, 0.5], seed=3)
    assert rb.Full() != rb.Regular(3) and rb.Regular(3) != rb.Regular(3, 4)


@pytest.mark.parametrize(
    "spec,words",
    [("", "got ''"), ("ful", "got 'ful'"), ("full:3", "got 'full:3'"), ("regular", "got 'regular'"),
     ("regular:", "K1 '' is not a valid number"), ("regular:2.5", "K1 '2.5'"), ("regular:0", "k1: expected a positive"),
     ("regular:5,3", "k2: expected k2 >= k1 = 5"), ("regular:1,2,3", "got 'regular:1,2,3'"),
     ("randomized:", "PI ''"), ("randomized:1.5", "pi: expected every keep probability in (0, 1]"),
     ("randomized:nan", "pi: expected"), ("randomized:0.5,seed=-1", "S '-1'"),
     ("randomized:seed=3,0.5", "seed=S must come last"), ("randomized:seed=3", "empty schedule"),
     ("regular:99999999999999999999", "K1")],
)
def test_parse_rejects_bad_specs_by_name(spec, words):
    with pytest.raises(ValueError, match="truncation: expected 'full'") as error:
        rb.Truncation.parse(spec)
    assert words in str(error.value)


def test_factories_take_integers_not_truncated_floats():
    assert rb.Regular(np.int64(4), np.int32(6)) == rb.Regular(4, 6)
    for bad in (np.float32(2.9), 2.0, "3", None):
        with pytest.raises(TypeError, match="k1: expected an integer"):
            rb.Regular(bad)
    with pytest.raises(TypeError, match="k2: expected an integer"):
        rb.Regular(2, 3.5)
    with pytest.raises(ValueError, match="k2: expected k2 >= k1 = 3, got 0"):
        rb.Regular(3, 0)  # no sentinel: 0 is an error like any other k2 < k1
    with pytest.raises(TypeError, match="seed: expected an integer"):
        rb.Randomized(0.5, seed=1.5)
    with pytest.raises(ValueError, match="seed: expected an integer in"):
        rb.Randomized(0.5, seed=-1)
    with pytest.raises(TypeError, match="pi: expected a probability"):
        rb.Randomized("0.5")


def test_backward_rejects_negative_step_offset():
    p = make_problem(T=6)
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets)
    with pytest.raises(ValueError, match="step_offset: expected a global step index >= 0, got -3"):
        p.model.backward(truncation=rb.Regular(2), step_offset=-3)


GRADIENT_HASH = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import make_problem
import rnnbptt as rb
p = make_problem(T=40, n=8, h=64, q=30, d=30, seed=3, dtype=np.float32)
p.model.forward(p.x, p.h0); p.model.loss(p.targets)
p.model.backward(truncation=rb.Randomized(0.8, seed=123))
print(hashlib.sha256(p.model.grads.tobytes()).hexdigest())
"""


def test_same_seed_same_gradient_across_runs_and_thread_counts():
    script = GRADIENT_HASH.format(tests=os.path.dirname(__file__))
    hashes = set()
    for threads in ("1", "2"):
        for _ in range(2):
            env = dict(os.environ, OMP_NUM_THREADS=threads)
            out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                 text=True, check=True)
            hashes.add(out.stdout.strip())
    assert len(hashes) == 1, hashes
    p = make_problem(T=40, n=8, h=64, q=30, d=30, seed=3, dtype=np.float32)
    p.model.forward(p.x, p.h0)
    p.model.loss(p.targets)
    p.model.backward(truncation=rb.Randomized(0.8, seed=124))
    assert hashlib.sha256(p.model.grads.tobytes()).hexdigest() not in hashes


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rb.Regular(0), "k1: expected a positive number of steps, got 0"),
        (lambda: rb.Regular(-3), "k1: expected a positive number of steps, got -3"),
        (lambda: rb.Regular(5, 4), "k2: expected k2 >= k1 = 5, got 4"),
        (lambda: rb.Randomized(0.0), r"pi: expected every keep probability in \(0, 1\], got 0"),
        (lambda: rb.Randomized(1.5), r"pi: .*got 1.5"),
        (lambda: rb.Randomized(float("nan")), r"pi: .*got nan"),
        (lambda: rb.Randomized([0.5, -0.1]), r"pi: .*got -0.1 at index 1"),
        (lambda: rb.Randomized([]), "pi: expected a probability or a non-empty schedule"),
    ],
)
def test_invalid_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_repr_names_the_strategy():
    assert repr(rb.Full()) == "Full()"
    assert repr(rb.Regular(5)) == "Regular(5, 5)"
    assert repr(rb.Randomized(0.5, seed=2)) == "Randomized(0.5, seed=2)"
    assert repr(rb.Randomized([1.0, 0.5], seed=2)) == "Randomized([1.0, 0.5], seed=2)"


def test_schedule_refuses_step_indices_that_do_not_fit():
    """step_offset + T must fit in int64: beyond, the block arithmetic would overflow."""
    with pytest.raises(ValueError, match=r"step_offset: expected at most 2\*\*63 - 1 - T = 9223372036854775801"):
        rb.Regular(6).schedule(6, 2**63 - 1)
    flow, windows, _ = rb.Regular(6).schedule(6, 2**63 - 7)  # the last offset that fits
    assert windows and all(first <= begin < end for first, begin, end in windows)


def test_regular_with_the_largest_k2_is_regular_reaching_the_start():
    """ceil(k2 / k1) lanes is computed without overflow: k2 = 2**63 - 1 reaches the start from
    every block, exactly as any k2 >= T does."""
    p = make_problem(T=10)
    huge, _ = grads_for(p, rb.Truncation.parse(f"regular:2,{2**63 - 1}"))
    reaching, _ = grads_for(p, rb.Regular(2, 100))
    for name in huge:
        assert np.array_equal(huge[name], reaching[name]), name
    assert np.any(huge["W_hh"] != 0)


def regular_schedule_in_python(k1: int, k2: int, T: int, step_offset: int, context: int = 0):
    """Regular(k1, k2)'s flow, windows and lane count in Python's unbounded integers: blocks end
    where the global step index is a multiple of k1, a window reaches k2 - k1 steps before its
    block, windows are dealt round-robin to ceil(k2 / k1) lanes."""
    flow, windows, begin = np.zeros(T), [], context
    while begin < T:
        block = begin - (step_offset + begin) % k1
        end, first = min(block + k1, T), max(0, block - (k2 - k1))
        windows.append((first, begin, end))
        flow[first + 1 : end] = 1.0
        if first == 0:
            flow[0] = 1.0
        begin = end
    return flow, windows, min(-(-k2 // k1), len(windows))


def test_regular_schedule_at_the_int64_edge():
    """k1 + j >= 2**63 used to overflow (block + k1) and grow memory until bad_alloc."""
    flow, windows, lanes = rb.Regular(2**63 - 2).schedule(3, 2**63 - 4)
    assert windows == [(0, 0, 2), (2, 2, 3)] and lanes == 1
    assert np.array_equal(flow, [1.0, 1.0, 0.0])
    assert rb.Regular(2**62).schedule(3, 2**62 - 2)[1] == windows  # the same phase, far from the edge


EDGE = 2**63 - 1
EDGE_CASES = [
    (k1, k2, T, offset, context)
    for k1 in (1, 2, 3, 7, 2**62, EDGE - 9, EDGE - 2, EDGE - 1, EDGE)
    for k2 in sorted({k1, k1 + 1, 2 * k1, EDGE - 1, EDGE} - {k for k in (2 * k1, k1 + 1) if k > EDGE})
    if k2 >= k1
    for T in (1, 3, 8)
    for offset in (0, 1, EDGE - T - 5, EDGE - T - 1, EDGE - T)
    for context in sorted({0, T - 1})
]


@pytest.mark.parametrize("k1, k2, T, offset, context", EDGE_CASES)
def test_regular_schedule_matches_unbounded_integers(k1, k2, T, offset, context):
    flow, windows, lanes = rb.Regular(k1, k2).schedule(T, offset, context)
    ref_flow, ref_windows, ref_lanes = regular_schedule_in_python(k1, k2, T, offset, context)
    assert windows == ref_windows and lanes == ref_lanes
    assert np.array_equal(flow, ref_flow)


def test_backward_at_the_int64_edge_equals_the_same_schedule_far_from_it():
    """backward(step_offset=...) near 2**63 runs its schedule, not bad_alloc: with k1 = 2**63 - 2
    and offset 2**63 - 6 the blocks are [0, 4) and [4, 4 + k1), reaching one step back, which is
    Regular(4, 5)'s schedule from offset 0."""
    p = make_problem(T=5)
    edge_truncation = rb.Regular(2**63 - 2, 2**63 - 1)
    assert edge_truncation.schedule(5, 2**63 - 6)[1] == [(0, 0, 4), (3, 4, 5)]
    edge, edge_dh0 = grads_for(p, edge_truncation, step_offset=2**63 - 6)
    near, near_dh0 = grads_for(p, rb.Regular(4, 5))
    for name in near:
        assert np.array_equal(edge[name], near[name]), name
    assert np.array_equal(edge_dh0, near_dh0)


@pytest.mark.parametrize("spec", [b"full", bytearray(b"full"), b"regular:3", 3, None])
def test_parse_takes_text_only(spec):
    with pytest.raises(TypeError, match=r"spec: expected a str, got .*" + type(spec).__name__):
        rb.Truncation.parse(spec)


def test_flow_and_windows_describe_the_backward_of_the_last_forward():
    """A forward with no backward leaves no schedule to describe: flow (which used to have the
    new T, padded with zeros) and windows (which still held the old sequence's) both refuse."""
    p = make_problem(T=6)
    with pytest.raises(ValueError, match="flow: expected a backward pass after the last forward, got none"):
        _ = p.model.flow
    grads_for(p, rb.Regular(2))
    flow, windows = p.model.flow, p.model.windows
    expected_flow, expected_windows, _ = rb.Regular(2).schedule(6)
    assert windows == expected_windows and np.array_equal(flow, expected_flow)
    longer = np.concatenate([p.x, p.x])
    p.model.forward(longer)
    for name in ("flow", "windows"):
        with pytest.raises(ValueError, match=name + ": expected a backward pass after the last forward, got none"):
            getattr(p.model, name)
    p.model.loss(np.concatenate([p.targets, p.targets]))
    p.model.backward(truncation=rb.Regular(4))
    assert p.model.windows == rb.Regular(4).schedule(12)[1]
    assert np.array_equal(p.model.flow, rb.Regular(4).schedule(12)[0])
