"""d2l's GRU, LSTM and deep (2-layer) LSTM on The Time Machine, against a PyTorch replica.

    python bench/d2l_cells.py [--text PATH] [--epochs 500] [--seeds 3] [--models gru,lstm,deep]

d2l's setup ("Modern Recurrent Neural Networks"): 28-symbol preprocessing, the first 10,000
tokens, batch 32, 35 steps, 256 hidden units, sequential partitioning (the state carried from
batch to batch and detached between them, zero at each epoch's start), SGD with lr 1 (2 for
the deep LSTM), clipping at 1, 500 epochs. The replica is nn.GRU / nn.LSTM + nn.Linear on
one-hot input, trained on the very batches rnnbptt sees (rnnbptt.data.sequential_batches
with the same seed), PyTorch's default initialization in both. For every model the script
reports the median training perplexity of the last 50 epochs of each run, and whether
rnnbptt's median lies within the replica's spread (min to max) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import rnnbptt as rb
from rnnbptt import data

MODELS = {"gru": ("gru", 1, 1.0), "lstm": ("lstm", 1, 1.0), "deep": ("lstm", 2, 2.0)}  # cell, layers, lr


def ours(cell: str, layers: int, lr: float, vocab: data.Vocab, corpus: np.ndarray, epochs: int,
         seed: int) -> list[float]:
    model = rb.RNN(len(vocab), 256, len(vocab), cell=cell, num_layers=layers, seed=seed)
    trainer = rb.Trainer(model, vocab=vocab, optimizer="sgd", lr=lr, clip=1.0, batch_size=32, num_steps=35,
                         iterator="sequential", seed=seed)
    return [r.train_perplexity for r in trainer.fit(corpus, epochs)]


def replica(cell: str, layers: int, lr: float, vocab: data.Vocab, corpus: np.ndarray, epochs: int,
            seed: int) -> list[float]:
    import torch

    torch.manual_seed(seed)
    V = len(vocab)
    module = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](V, 256, num_layers=layers)
    linear = torch.nn.Linear(256, V)
    params = list(module.parameters()) + list(linear.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        state = None
        total, count = 0.0, 0
        for x, y in data.sequential_batches(corpus, 32, 35, rng):
            if state is not None:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            inputs = torch.nn.functional.one_hot(torch.from_numpy(np.asarray(x, dtype=np.int64)), V).float()
            output, state = module(inputs, state)
            loss = torch.nn.functional.cross_entropy(linear(output).reshape(-1, V),
                                                     torch.from_numpy(np.asarray(y, dtype=np.int64)).reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            total += loss.item() * y.size
            count += y.size
        out.append(math.exp(total / count))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, default=None,
                        help="a local copy of The Time Machine (default: download d2l's, verify its SHA-1, cache it)")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the replica (and of rnnbptt)")
    parser.add_argument("--models", default="gru,lstm,deep")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "d2l_cells.json")
    args = parser.parse_args()
    raw = data.read_text(args.text) if args.text is not None else data.time_machine()
    text = data.d2l_preprocess(raw)
    vocab = data.Vocab.from_text(text, unknown=True)
    corpus = vocab.encode(text)[:10_000]
    print(f"{len(vocab)} symbols, {len(corpus):,} tokens, rnnbptt {rb.build_info()['isa']}, "
          f"{rb.get_num_threads()} threads, {args.epochs} epochs, seeds 0..{args.seeds - 1}", flush=True)
    results = {}
    tail = min(50, args.epochs)
    for name in args.models.split(","):
        cell, layers, lr = MODELS[name]
        runs: dict[str, list[dict[str, float]]] = {"rnnbptt": [], "torch": []}
        for seed in range(args.seeds):
            for library, run in (("rnnbptt", ours), ("torch", replica)):
                start = time.perf_counter()
                ppl = run(cell, layers, lr, vocab, corpus, args.epochs, seed)
                seconds = time.perf_counter() - start
                median = float(np.median(ppl[-tail:]))
                runs[library].append({"seed": seed, "median_last": median, "final": ppl[-1], "seconds": seconds})
                print(f"{name} ({cell} x {layers}, lr {lr:g}) {library} seed {seed}: median perplexity of the last "
                      f"{tail} epochs {median:.3f}, final {ppl[-1]:.3f}, {seconds:.0f} s", flush=True)
        spread = [r["median_last"] for r in runs["torch"]]
        inside = [min(spread) <= r["median_last"] <= max(spread) for r in runs["rnnbptt"]]
        results[name] = {"cell": cell, "layers": layers, "lr": lr, "runs": runs,
                         "replica_spread": [min(spread), max(spread)], "within": inside}
        print(f"{name}: replica spread {min(spread):.3f} .. {max(spread):.3f}; rnnbptt "
              + ", ".join(f"{r['median_last']:.3f}" for r in runs["rnnbptt"])
              + (" (all within)" if all(inside) else " (NOT all within)"), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
