"""d2l's RNN-from-scratch result on The Time Machine, in full (500 epochs).

    python bench/d2l_reproduction.py [--text PATH] [--epochs 500]

By default the text is d2l's copy of The Time Machine, downloaded once, checked against its
SHA-1 and cached (rnnbptt.data.time_machine); --text reads a local copy instead.

28-symbol preprocessing, the first 10,000 tokens, batch 32, 35 steps, 512 hidden units,
N(0, 0.01^2) initialization, SGD with lr 1, clipping at 1; sequential partitioning, then
random sampling. d2l reports a training perplexity of about 1.0 (sequential).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import rnnbptt as rb
from rnnbptt import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, default=None,
                        help="a local copy of The Time Machine (default: download d2l's, verify its SHA-1, cache it)")
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args()
    raw = data.read_text(args.text) if args.text is not None else data.time_machine()
    text = data.d2l_preprocess(raw)
    vocab = data.Vocab.from_text(text, unknown=True)
    corpus = vocab.encode(text)[:10_000]
    print(f"{len(vocab)} symbols, {len(corpus):,} tokens, rnnbptt {rb.build_info()['isa']}, "
          f"{rb.get_num_threads()} threads")
    for iterator in ("sequential", "random"):
        model = rb.RNN(len(vocab), 512, len(vocab), dtype=np.float32, seed=0, init_std=0.01)
        trainer = rb.Trainer(model, vocab=vocab, lr=1.0, clip=1.0, batch_size=32, num_steps=35,
                             iterator=iterator, seed=0)
        start = time.perf_counter()
        history = trainer.fit(corpus, args.epochs)
        seconds = time.perf_counter() - start
        ppl = [r.train_perplexity for r in history]
        first_at_most = next((r.epoch for r in history if r.train_perplexity <= 1.1), None)
        tail = ppl[-max(1, len(ppl) // 10):]
        print(f"{iterator:>10}: final perplexity {ppl[-1]:.3f}, min {min(ppl):.3f}, "
              f"median of the last 10% of epochs {np.median(tail):.3f}, first <= 1.1 at epoch {first_at_most}, "
              f"{seconds:.0f} s ({np.mean([r.tokens_per_second for r in history]):,.0f} tokens/s)")
        print(f"{'':>12}sample: {rb.generate(model, vocab, 'time traveller', 50)!r}")


if __name__ == "__main__":
    main()
