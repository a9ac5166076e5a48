"""Text generation from a prefix: greedy decoding or sampling with a temperature."""

from __future__ import annotations

from . import _core
from ._checks import check_integer, check_real, check_utf8
from .data import Vocab
from .model import RNN


def generate(
    model: RNN, vocab: Vocab, prefix: str, length: int, *, temperature: float = 0.0, seed: int = 0
) -> str:
    """Continue ``prefix`` by ``length`` characters.

    Parameters
    ----------
    model : RNN
        A model over the vocabulary's symbols (input and output size ``len(vocab)``), with
        finite parameters.
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
        Seeds that generator, in ``[0, 2**64)``.

    Notes
    -----
    This is the C++ ``rnnbptt::generate_text`` (``cpp/include/rnnbptt/io/text.hpp``): the
    prefix runs as one forward pass from a zero state, then one step per produced character,
    so a C++ program gives the same text for the same model, prefix, temperature and seed,
    greedy or sampled, on the same SIMD variant. Sampling draws from rnnbptt's own portable
    generator (``rnnbptt::Random``), not NumPy's.

    The softmax is computed as ``exp((o - max o) / temperature)`` in float64, normalized, so
    any finite temperature > 0 is valid: nothing overflows. As the temperature goes to 0 the
    distribution becomes greedy: once every other logit's probability underflows to 0 (for
    temperatures below about ``gap / 745``, ``gap`` the distance from the largest logit to the
    next), the sample is the most likely character, as with ``temperature = 0``.
    """
    if not isinstance(model, RNN):
        raise TypeError(f"model: expected an rnnbptt.RNN, got {type(model).__name__}")
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab: expected an rnnbptt.Vocab, got {type(vocab).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a string, got {type(prefix).__name__}")
    check_utf8(prefix, "prefix")
    length = check_integer(length, "length", 0, 2**63)
    temperature = check_real(temperature, "temperature", nonnegative=True)
    seed = check_integer(seed, "seed", 0, 2**64)
    return _core.generate_text(model.core, vocab.core, prefix, length, temperature, seed)


#: ``softmax(logits / temperature)`` as sampling computes it (float64 logits, finite temperature > 0).
_softmax = _core.softmax
