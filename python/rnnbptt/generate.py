"""Text generation from a prefix: greedy decoding or sampling with a temperature."""

from __future__ import annotations

import numpy as np

from .data import Vocab
from .model import RNN


def generate(
    model: RNN, vocab: Vocab, prefix: str, length: int, *, temperature: float = 0.0, seed: int = 0
) -> str:
    """Continue ``prefix`` by ``length`` characters.

    ``temperature = 0`` picks the most likely character at every step (greedy); a positive
    temperature samples from ``softmax(o / temperature)`` with a seeded generator.
    """
    if not prefix:
        raise ValueError("prefix: expected at least one character, got an empty string")
    if length < 0:
        raise ValueError(f"length: expected an integer >= 0, got {length}")
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature: expected a finite value >= 0, got {temperature}")
    if len(vocab) != model.input_size or len(vocab) != model.output_size:
        raise ValueError(
            f"vocab: expected {model.input_size} symbols (the model's input and output size), got {len(vocab)}"
        )
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
