"""Text generation from a prefix: greedy decoding or sampling with a temperature."""

from __future__ import annotations

import numpy as np

from ._checks import check_integer, check_real
from .data import Vocab
from .model import RNN


def generate(
    model: RNN, vocab: Vocab, prefix: str, length: int, *, temperature: float = 0.0, seed: int = 0
) -> str:
    """Continue ``prefix`` by ``length`` characters.

    ``temperature = 0`` picks the most likely character at every step (greedy); a positive
    temperature samples from ``softmax(o / temperature)`` with a seeded generator.
    """
    if not isinstance(model, RNN):
        raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab: expected an rnnbptt.Vocab, got {type(vocab).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string, got {type(prefix).__name__}")
    if not prefix:
        raise ValueError("prefix: expected at least one character, got an empty string")
    length = check_integer(length, "length", 0)
    temperature = check_real(temperature, "temperature", nonnegative=True)
    seed = check_integer(seed, "seed", 0)
    if len(vocab) != model.input_size or len(vocab) != model.output_size:
        raise ValueError(
            f"vocab: expected {model.input_size} symbols (the model's input and output size), got {len(vocab)}"
        )
    for name, value in model.named_parameters().items():
        if not np.isfinite(value).all():
            bad = value[~np.isfinite(value)].flat[0]
            raise ValueError(f"model: expected finite parameters, got {bad} in {name}")
    rng = np.random.default_rng(seed)
    ids = vocab.encode(prefix).reshape(-1, 1)
    outputs, state = model.forward(ids)  # warm the state up on the prefix
    logits: np.ndarray = outputs[-1, 0].astype(np.float64)
    produced = []
    step: np.ndarray = np.empty((1, 1), dtype=np.int64)
    for _ in range(length):
        if temperature == 0:
            token = int(np.argmax(logits))
        else:
            z = logits / temperature
            p = np.exp(z - z.max())
            token = int(rng.choice(len(p), p=p / p.sum()))
        produced.append(token)
        step[0, 0] = token
        outputs, state = model.forward(step, state)
        logits = outputs[0, 0].astype(np.float64)
    return prefix + vocab.decode(produced)
