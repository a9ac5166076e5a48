"""Arguments of the Python classes: integers are integers, floats are finite reals, every
error names the argument, what was expected and what was received."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import data

TRUNCATION_TYPE = r"truncation: expected a Truncation \(Full\(\), Regular\(k1, k2\), Randomized\(pi, seed\) or Truncation.parse\(spec\)\), got 'full'"  # noqa: E501


# ---- RNN ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"hidden_size": np.float32(4.9)}, TypeError, r"hidden_size: expected an integer, got 4.9 \(float32\)"),
        ({"input_size": 5.0}, TypeError, r"input_size: expected an integer, got 5.0 \(float\)"),
        ({"output_size": "3"}, TypeError, r"output_size: expected an integer, got '3' \(str\)"),
        ({"hidden_size": True}, TypeError, r"hidden_size: expected an integer, got True \(bool\)"),
        ({"seed": -1}, ValueError, r"seed: expected an integer in \[0, 2\*\*64\), got -1"),
        ({"seed": 2**70}, ValueError, r"seed: expected an integer in \[0, 2\*\*64\), got 1180591620717411303424"),
        ({"seed": np.float64(3.0)}, TypeError, r"seed: expected an integer, got 3.0 \(float64\)"),
        ({"init_std": float("inf")}, ValueError, "init_std: expected a finite value > 0, got inf"),
        ({"init_std": float("nan")}, ValueError, "init_std: expected a finite value > 0, got nan"),
        ({"init_std": -0.5}, ValueError, "init_std: expected a finite value > 0, got -0.5"),
        ({"init_std": "0.01"}, TypeError, r"init_std: expected a real number, got '0.01' \(str\)"),
        ({"activation": 3}, TypeError, "activation: expected 'identity', 'tanh' or 'relu', got 3"),
        ({"bias": "no"}, TypeError, r"bias: expected True or False, got 'no' \(str\)"),
    ],
)
def test_rnn_construction(kwargs, error, message):
    args = {"input_size": 5, "hidden_size": 4, "output_size": 3, **kwargs}
    sizes = [args.pop(k) for k in ("input_size", "hidden_size", "output_size")]
    with pytest.raises(error, match=message):
        rb.RNN(*sizes, **args)


def test_rnn_accepts_numpy_integers():
    m = rb.RNN(np.int64(5), np.int32(4), np.uint8(3), seed=np.uint64(2**64 - 1), init_std=np.float32(0.1))
    assert (m.input_size, m.hidden_size, m.output_size) == (5, 4, 3)


def model_after_loss():
    m = rb.RNN(5, 4, 3, dtype=np.float64)
    m.forward(np.zeros((3, 2), dtype=np.int64))
    m.loss(np.zeros((3, 2), dtype=np.int64))
    return m


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"truncation": "full"}, TypeError, TRUNCATION_TYPE),
        ({"step_offset": np.float32(2.5)}, TypeError, r"step_offset: expected an integer, got 2.5 \(float32\)"),
        ({"step_offset": 2.0}, TypeError, r"step_offset: expected an integer, got 2.0 \(float\)"),
        ({"step_offset": 2**64}, ValueError, "step_offset: expected a global step index below 2\\*\\*63"),
        ({"record_dh_norms": "yes"}, TypeError, r"record_dh_norms: expected True or False, got 'yes' \(str\)"),
        ({"dx": 1}, TypeError, r"dx: expected True or False, got 1 \(int\)"),
    ],
)
def test_backward_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        model_after_loss().backward(**kwargs)


def test_backward_accepts_numpy_step_offset():
    model_after_loss().backward(truncation=rb.Regular(1), step_offset=np.int64(4))


def test_stream_reset_position():
    runner = rb.StreamRunner(rb.RNN(5, 4, 5), rb.Full())
    with pytest.raises(TypeError, match=r"position: expected an integer, got 2.0 \(float\)"):
        runner.reset(2.0)


# ---- optimizers ---------------------------------------------------------------------------
def test_optimizers():
    with pytest.raises(ValueError, match="size: expected a positive number of parameters, got -1"):
        rb.Adam(-1, np.float32)
    with pytest.raises(TypeError, match=r"size: expected an integer, got 5.5 \(float\)"):
        rb.Adam(5.5, np.float32)
    with pytest.raises(ValueError, match="lr: expected a finite value > 0, got inf"):
        rb.SGD(float("inf"))
    with pytest.raises(TypeError, match=r"lr: expected a real number, got '1' \(str\)"):
        rb.SGD("1")
    with pytest.raises(ValueError, match="weight_decay: expected a finite value >= 0, got nan"):
        rb.SGD(0.1, weight_decay=float("nan"))
    adam, sgd = rb.Adam(5, np.float32), rb.SGD(0.1)
    for optimizer in (adam, sgd):
        with pytest.raises(ValueError, match="lr: expected a finite value > 0, got inf"):
            optimizer.lr = float("inf")
        with pytest.raises(ValueError, match="lr: expected a finite value > 0, got nan"):
            optimizer.lr = float("nan")
    assert adam.lr == pytest.approx(1e-3) and sgd.lr == 0.1


# ---- Trainer ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"batch_size": 2.5}, TypeError, r"batch_size: expected an integer, got 2.5 \(float\)"),
        ({"batch_size": 0}, ValueError, "batch_size: expected an integer >= 1, got 0"),
        ({"num_steps": np.float32(5)}, TypeError, r"num_steps: expected an integer, got 5.0 \(float32\)"),
        ({"num_steps": 0}, ValueError, "num_steps: expected an integer >= 1, got 0"),
        ({"seed": -1}, ValueError, "seed: expected an integer >= 0, got -1"),
        ({"seed": 1.0}, TypeError, r"seed: expected an integer, got 1.0 \(float\)"),
        ({"lr": float("inf")}, ValueError, "lr: expected a finite value > 0, got inf"),
        ({"lr": "1"}, TypeError, r"lr: expected a real number, got '1' \(str\)"),
        ({"clip": float("inf")}, ValueError, "clip: expected a threshold > 0 or None, got inf"),
        ({"clip": "1"}, TypeError, "clip: expected a threshold > 0 or None, got '1'"),
        ({"weight_decay": float("inf")}, ValueError, "weight_decay: expected a finite value >= 0, got inf"),
        ({"weight_decay": "0", "optimizer": "adam"}, TypeError, r"weight_decay: expected a real number, got '0'"),
        ({"progress": "yes"}, TypeError, r"progress: expected True or False, got 'yes' \(str\)"),
    ],
)
def test_trainer_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        rb.Trainer(rb.RNN(5, 4, 5), **kwargs)


def test_trainer_needs_a_model():
    with pytest.raises(TypeError, match="model: expected an rnnbptt.RNN, got str"):
        rb.Trainer("model")


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"epochs": 0}, ValueError, "epochs: expected an integer >= 1, got 0"),
        ({"epochs": 1.5}, TypeError, r"epochs: expected an integer, got 1.5 \(float\)"),
        ({"steps": 0}, ValueError, "steps: expected an integer >= 1, got 0"),
        ({"steps": -3}, ValueError, "steps: expected an integer >= 1, got -3"),
        ({"epochs": 1, "checkpoint_every": 0}, ValueError, "checkpoint_every: expected an integer >= 1, got 0"),
    ],
)
def test_fit_arguments(kwargs, error, message, tmp_path):
    trainer = rb.Trainer(rb.RNN(3, 4, 3), batch_size=2, num_steps=3)
    corpus = np.arange(100) % 3
    with pytest.raises(error, match=message):
        trainer.fit(corpus, checkpoint=tmp_path / "c.safetensors", **kwargs)
    assert trainer.epoch == 0 and trainer.history == []


# ---- generate -----------------------------------------------------------------------------
def test_generate_arguments():
    vocab = rb.Vocab(list("abc"))
    model = rb.RNN(3, 4, 3, seed=0)
    with pytest.raises(TypeError, match=r"length: expected an integer, got 2.5 \(float\)"):
        rb.generate(model, vocab, "ab", 2.5)
    with pytest.raises(TypeError, match=r"temperature: expected a real number, got '1' \(str\)"):
        rb.generate(model, vocab, "ab", 2, temperature="1")
    with pytest.raises(ValueError, match="temperature: expected a finite value >= 0, got nan"):
        rb.generate(model, vocab, "ab", 2, temperature=float("nan"))
    with pytest.raises(TypeError, match=r"seed: expected an integer, got 1.5 \(float\)"):
        rb.generate(model, vocab, "ab", 2, temperature=1.0, seed=1.5)
    model.W_hh[1, 2] = np.nan
    with pytest.raises(ValueError, match="model: expected finite parameters, got nan in W_hh"):
        rb.generate(model, vocab, "ab", 2)


# ---- data ---------------------------------------------------------------------------------
def test_decode_checks_ids():
    vocab = rb.Vocab(list("abc"))
    assert vocab.decode([0, np.int64(2)]) == "ac" and vocab.decode(np.array([1, 0], dtype=np.int32)) == "ba"
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 3\), got -1 at index 0"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 3\), got 3 at index 1"):
        vocab.decode(np.array([0, 3]))
    with pytest.raises(TypeError, match=r"ids: expected integer ids, got 1.5 \(float\) at index 0"):
        vocab.decode([1.5])
    with pytest.raises(TypeError, match="ids: expected integer ids, got an array of float64"):
        vocab.decode(np.array([1.0]))


def test_data_arguments():
    rng = np.random.default_rng(0)
    corpus = np.arange(200) % 7
    with pytest.raises(TypeError, match=r"batch_size: expected an integer, got 2.5 \(float\)"):
        next(data.sequential_batches(corpus, 2.5, 5, rng))
    with pytest.raises(TypeError, match=r"num_steps: expected an integer, got 5.0 \(float\)"):
        next(data.random_batches(corpus, 2, 5.0, rng))
    with pytest.raises(TypeError, match="corpus: expected a 1-D array of integer token ids"):
        next(data.sequential_batches(corpus.astype(np.float64), 2, 5, rng))
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator, got int"):
        next(data.sequential_batches(corpus, 2, 5, 0))
    with pytest.raises(TypeError, match="valid_fraction: expected a real number, got '0.1'"):
        data.split(corpus, "0.1")
    with pytest.raises(TypeError, match="text: expected a string, got list"):
        rb.Vocab(list("abc")).encode(["a"])


def test_a_float64_array_for_a_float32_model_says_how_to_convert():
    """NumPy's default float64 is refused for a float32 model (nothing is copied silently), and
    the message says how to convert explicitly."""
    model = rb.RNN(3, 4, 2, dtype=np.float32)
    x = np.zeros((5, 2, 3))
    with pytest.raises(TypeError, match=r"x: expected .*float32.*got float64 .*convert it explicitly with "
                                        r"x\.astype\(np\.float32\), which copies"):
        model.forward(x)
    model.forward(x.astype(np.float32))
    with pytest.raises(TypeError, match=r"targets: .*convert it explicitly with targets\.astype\(np\.float32\)"):
        model.loss(np.zeros((5, 2, 2)))
