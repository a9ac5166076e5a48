"""Streaming: chunk by chunk with a carried state, equal to unchunked where the strategy says so."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb

from conftest import make_problem, model_grads, rel_err, torch_modules


def stream_gradients(p, truncation, chunk):
    """Gradient of the whole sequence's mean loss, assembled from equal chunks (fixed params)."""
    runner = rb.StreamRunner(p.model, truncation)
    T = p.x.shape[0]
    total = None
    for start in range(0, T, chunk):
        steps = min(chunk, T - start)  # each chunk's loss is a mean over its own steps
        runner.step(p.x[start : start + steps], p.targets[start : start + steps])
        grads = {k: v * steps / T for k, v in model_grads(p.model).items()}
        total = grads if total is None else {k: total[k] + grads[k] for k in grads}
    return total, runner


def unchunked(p, truncation):
    p.model.forward(p.x)
    p.model.loss(p.targets)
    p.model.backward(truncation=truncation)
    return model_grads(p.model)


@pytest.mark.parametrize("k1,k2,chunk", [(4, 4, 8), (4, 4, 4), (3, 7, 6), (2, 9, 4), (5, 12, 5), (4, 10, 12)])
@pytest.mark.parametrize("tokens", [True, False])
def test_regular_stream_equals_unchunked(k1, k2, chunk, tokens):
    p = make_problem(T=60, tokens=tokens, with_h0=False)
    streamed, runner = stream_gradients(p, rb.Regular(k1, k2), chunk)
    expected = unchunked(p, rb.Regular(k1, k2))
    for name in expected:
        assert rel_err(streamed[name], expected[name]) <= 1e-10, name
    assert runner.position == 60
    p.model.forward(p.x)
    assert rel_err(runner.state, p.model.forward(p.x)[1]) <= 1e-12


def test_full_stream_cuts_at_chunk_boundaries():
    p = make_problem(T=40, with_h0=False)
    streamed, _ = stream_gradients(p, rb.Full(), 10)
    expected = unchunked(p, rb.Regular(10))
    for name in expected:
        assert rel_err(streamed[name], expected[name]) <= 1e-10, name


def test_randomized_stream_draws_depend_on_the_global_step():
    p = make_problem(T=40, with_h0=False)
    runner = rb.StreamRunner(p.model, rb.Randomized(0.7, seed=5))
    state = np.zeros((p.x.shape[1], p.model.hidden_size))
    for start in range(0, 40, 10):
        runner.step(p.x[start : start + 10], p.targets[start : start + 10])
        streamed = model_grads(p.model)
        windows = runner.windows
        _, next_state = p.model.forward(p.x[start : start + 10], state)
        p.model.loss(p.targets[start : start + 10])
        p.model.backward(truncation=rb.Randomized(0.7, seed=5), step_offset=start)
        assert windows == p.model.windows
        for name, g in model_grads(p.model).items():
            assert rel_err(streamed[name], g) <= 1e-12
        state = next_state


def test_regular_stream_matches_torch_detach_idiom_with_sgd(torch):
    """Training: one SGD step per chunk of k steps, as `h = h.detach()` every k steps does."""
    k, lr, chunks = 6, 0.5, 12
    p = make_problem(T=k * chunks, n=4, d=7, h=10, q=7, with_h0=False, seed=2)
    m = p.model
    rnn, linear = torch_modules(torch, m)
    params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, linear.weight, linear.bias]
    optimizer = torch.optim.SGD(params, lr=lr)
    x = torch.nn.functional.one_hot(torch.from_numpy(p.x), m.input_size).double()
    y = torch.from_numpy(p.targets)
    h = torch.zeros(1, p.x.shape[1], m.hidden_size, dtype=torch.float64)
    runner = rb.StreamRunner(m, rb.Regular(k))
    for c in range(chunks):
        s = slice(c * k, (c + 1) * k)
        h = h.detach()
        out, h = rnn(x[s], h)
        loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, m.output_size), y[s].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ours = runner.step(p.x[s], p.targets[s])
        rb_sgd(m, lr)
        assert abs(ours - loss.item()) <= 1e-12 * loss.item()
    # nn.RNN's two biases both move by lr * grad; their sum is our b_h.
    b_h = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().numpy()
    assert rel_err(m.b_h, b_h) <= 1e-10
    assert rel_err(m.W_hh, rnn.weight_hh_l0.detach().numpy()) <= 1e-10
    assert rel_err(m.W_hx, rnn.weight_ih_l0.detach().numpy()) <= 1e-10
    assert rel_err(m.W_qh, linear.weight.detach().numpy()) <= 1e-10
    assert rel_err(runner.state, h[0].detach().numpy()) <= 1e-10


def rb_sgd(model, lr):
    # nn.RNN has b_ih and b_hh, each stepped by lr * grad: our single b_h moves twice as far.
    model.params[:] -= lr * model.grads
    model.b_h[:] -= lr * model.grad("b_h")


def test_memory_does_not_grow_with_the_stream():
    p = make_problem(T=8, n=2, with_h0=False)
    runner = rb.StreamRunner(p.model, rb.Regular(4, 10))
    sizes = []
    for _ in range(50):
        runner.step(p.x, p.targets)
        sizes.append(runner.memory_bytes)
    assert runner.position == 400
    assert len(set(sizes[1:])) == 1, sizes


def test_stream_errors():
    p = make_problem(T=8, n=2, with_h0=False)
    runner = rb.StreamRunner(p.model, rb.Regular(3))
    with pytest.raises(ValueError, match=r"x: the chunk length T: expected a multiple of k1 = 3 .*, got 8"):
        runner.step(p.x, p.targets)
    runner = rb.StreamRunner(p.model, rb.Regular(4))
    runner.step(p.x, p.targets)
    with pytest.raises(ValueError, match=r"x: expected the stream's batch size n = 2, got n = 1 \(reset"):
        runner.step(p.x[:, :1].copy(), p.targets[:, :1].copy())
    with pytest.raises(ValueError, match="x: expected token ids as in the stream's earlier chunks, got dense"):
        runner.step(np.zeros((8, 2, 5)), p.targets)
    with pytest.raises(ValueError, match=r"targets: .*\(T=4, n=2\)"):
        runner.step(p.x[:4].copy(), p.targets)
    runner.reset()
    assert runner.position == 0
    runner.step(p.x[:, :1].copy(), p.targets[:, :1].copy())
    with pytest.raises(TypeError, match="model: expected an rnnbptt.RNN"):
        rb.StreamRunner("model", rb.Full())
    for bad in (None, "full"):
        with pytest.raises(TypeError, match="truncation: expected a Truncation"):
            rb.StreamRunner(p.model, bad)
    with pytest.raises(ValueError, match="position: expected a multiple of k1 = 4 for regular:4"):
        runner.reset(6)
    with pytest.raises(ValueError, match="position: expected a global step index >= 0, got -4"):
        runner.reset(-4)


def test_reset_at_a_position_continues_the_global_step():
    """A stream restarted at position P draws the cuts of global steps P+1.. (a trainer that
    restarts streams every epoch never repeats its draws), and equals backward(step_offset=P)."""
    p = make_problem(T=10, with_h0=False)
    truncation = rb.Randomized(0.6, seed=4)
    runner = rb.StreamRunner(p.model, truncation)
    runner.reset(30)
    runner.step(p.x, p.targets)
    assert runner.position == 40
    streamed, windows = model_grads(p.model), runner.windows
    p.model.forward(p.x)
    p.model.loss(p.targets)
    p.model.backward(truncation=truncation, step_offset=30)
    assert windows == p.model.windows
    for name, g in model_grads(p.model).items():
        assert np.array_equal(streamed[name], g), name
    runner.reset()
    with pytest.raises(ValueError, match="windows: expected a step since the runner.s last reset"):
        _ = runner.windows  # the last chunk's windows describe another stream
    runner.step(p.x, p.targets)
    assert runner.windows != windows  # other global steps, other cuts


@pytest.mark.parametrize("truncation", [rb.Regular(3, 8), rb.Regular(4), rb.Full(), rb.Randomized(0.7, seed=2)])
def test_a_restored_runner_continues_exactly(truncation):
    """reset(position, state, history) puts a second runner where the first one stands: the
    next chunk's loss and gradient are bit-identical."""
    p = make_problem(T=48, n=2, with_h0=False, dtype=np.float32)
    first = rb.StreamRunner(p.model, truncation)
    for start in range(0, 36, 12):
        first.step(p.x[start : start + 12], p.targets[start : start + 12])
    second = rb.StreamRunner(p.model, truncation)
    second.reset(first.position, state=first.state, history=first.history)
    assert (first.history is None) == (truncation.k2 <= truncation.k1)
    losses, grads = [], []
    for runner in (first, second):
        losses.append(runner.step(p.x[36:], p.targets[36:]))
        grads.append(p.model.grads.copy())
    assert losses[0] == losses[1] and np.array_equal(grads[0], grads[1])


def test_restore_checks_what_it_is_given():
    p = make_problem(T=12, n=2, with_h0=False, dtype=np.float32)
    runner = rb.StreamRunner(p.model, rb.Regular(3, 8))
    for start in range(0, 12, 6):
        runner.step(p.x[start : start + 6], p.targets[start : start + 6])
    state, (inputs, states) = runner.state, runner.history
    fresh = rb.StreamRunner(p.model, rb.Regular(3, 8))
    with pytest.raises(ValueError, match="history: expected 0 to 5 steps for regular:3,8, got 6"):
        fresh.reset(12, state=state, history=(np.zeros((6, 2), np.int64), np.zeros((7, 2, 6), np.float32)))
    with pytest.raises(ValueError, match="history states: expected the last row to equal state"):
        fresh.reset(12, state=state + 1, history=(inputs, states))
    with pytest.raises(ValueError, match=r"history inputs: expected token ids in \[0, 5\), got 9"):
        fresh.reset(12, state=state, history=(np.full_like(inputs, 9), states))
    with pytest.raises(ValueError, match="state: expected finite values, got nan"):
        fresh.reset(12, state=np.full_like(state, np.nan))
    with pytest.raises(ValueError, match="history: expected None without a state"):
        fresh.reset(12, history=(inputs, states))
    with pytest.raises(ValueError, match="history: expected at most the 3 steps consumed, got 5"):
        fresh.reset(3, state=state, history=(inputs, states))


def test_a_failed_restore_leaves_the_runner_as_it_was():
    p = make_problem(T=24, n=2, with_h0=False, dtype=np.float32)
    runner, twin = rb.StreamRunner(p.model, rb.Regular(3, 8)), rb.StreamRunner(p.model, rb.Regular(3, 8))
    for r in (runner, twin):
        for start in range(0, 12, 6):
            r.step(p.x[start : start + 6], p.targets[start : start + 6])
    state, (inputs, states) = runner.state, runner.history
    with pytest.raises(ValueError, match="history inputs: expected token ids"):
        runner.reset(6, state=state, history=(np.full_like(inputs, 99), states))
    assert runner.position == 12 and np.array_equal(runner.state, state)
    results = []
    for r in (runner, twin):
        results.append((r.step(p.x[12:18], p.targets[12:18]), p.model.grads.copy()))
    assert results[0][0] == results[1][0] and np.array_equal(results[0][1], results[1][1])
