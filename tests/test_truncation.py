"""The three truncation strategies against independent oracles (DESIGN.md section 3)."""

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
    lengths = [end - begin for begin, end in p.model.segments]
    assert sum(lengths) == 200 and len(lengths) > 5
    assert min(lengths[:-1]) >= 4  # the first three steps of a segment are never cut
    flow = p.model.flow
    assert set(np.unique(flow)) <= {0.0, 1.0, 2.0}


def test_cuts_are_visible_and_follow_the_flow():
    p = make_problem(T=30)
    grads_for(p, rb.Randomized(0.7, seed=11))
    flow, segments = p.model.flow, p.model.segments
    cuts = [t for t in range(1, 30) if flow[t] == 0]
    assert [begin for begin, _ in segments[1:]] == cuts
    assert np.allclose(flow[flow != 0][1:], 1 / 0.7)
    grads_for(p, rb.Regular(8))
    assert p.model.segments == [(0, 8), (8, 16), (16, 24), (24, 30)]
    grads_for(p, rb.Regular(8, 12))
    assert p.model.segments == [(0, 8), (4, 16), (12, 24), (20, 30)]


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
    assert repr(rb.Regular(5)) == "Regular(k1=5, k2=5)"
    assert repr(rb.Randomized(0.5, seed=2)) == "Randomized(pi=0.5, seed=2)"
