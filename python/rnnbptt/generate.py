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

    Parameters
    ----------
    model : RNN
        A model over the vocabulary's symbols (input and output size ``len(vocab)``).
    vocab : Vocab
        The symbols of the model's ids.
    prefix : str
        At least one character, to warm the state up on.
    length : int
        Characters to add, >= 0.
    temperature : float
        0 (default) picks the most likely character at every step (greedy); a finite
        temperature > 0 samples from ``softmax(o / temperature)`` with a seeded generator.
    seed : int
        Seeds that generator.

    Notes
    -----
    The softmax is computed as ``exp((o - max o) / temperature)``, normalized, so any finite
    temperature > 0 is valid: nothing overflows, and no NaN or warning arises. As the
    temperature goes to 0 the distribution becomes greedy: once every other logit's
    probability underflows to 0 (for temperatures below about ``gap / 745``, ``gap`` the
    distance from the largest logit to the next), the sample is the most likely character, as
    with ``temperature = 0`` (among logits tied exactly for the largest, one is drawn at
    random). The C++ ``generate`` (``cpp/src/io/inference.cpp``) computes the same softmax.
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
            token = int(rng.choice(len(logits), p=_softmax(logits, temperature)))
        produced.append(token)
        step[0, 0] = token
        outputs, state = model.forward(step, state)
        logits = outputs[0, 0].astype(np.float64)
    return prefix + vocab.decode(produced)



def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` in float64 for a finite ``temperature`` > 0, without
    overflow or warnings: the largest logit is subtracted before dividing, so every exponent
    is <= 0 and the largest is exactly 0 (the sum is at least 1). Differences that overflow
    (a tiny temperature, or logits far apart) become ``-inf``, and their exponentials 0."""
    with np.errstate(over="ignore"):
        shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
        p = np.exp(shifted / temperature)
    return p / p.sum()
