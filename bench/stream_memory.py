"""Training over a 10-million-step stream at constant memory (streaming Regular BPTT).

    python bench/stream_memory.py [--steps 10000000] [--chunk 350] [--k1 35 --k2 70] [--cell lstm --layers 2]

One sequence (n = 1 ... the --batch you choose) of `steps` tokens is consumed chunk by chunk
with an SGD update after each chunk. RSS is sampled as the stream grows; the runner's own
buffers are reported too. The stream is generated on the fly, so the input itself never
occupies memory either.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import rnnbptt as rb


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=350)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=28)
    parser.add_argument("--k1", type=int, default=35)
    parser.add_argument("--k2", type=int, default=70)
    parser.add_argument("--cell", choices=rb.CELLS, default="elman")
    parser.add_argument("--layers", type=int, default=1)
    args = parser.parse_args()
    model = rb.RNN(args.vocab, args.hidden, args.vocab, seed=0, init_std=0.1, cell=args.cell,
                   num_layers=args.layers)
    runner = rb.StreamRunner(model, rb.Regular(args.k1, args.k2))
    rng = np.random.default_rng(0)
    chunks = args.steps // args.chunk
    marks = {int(chunks * f) for f in (0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 1.0)}
    print(f"stream of {chunks * args.chunk:,} steps x {args.batch} sequences, chunks of {args.chunk}, "
          f"Regular({args.k1}, {args.k2}), {args.cell} x {args.layers}, h={args.hidden}")
    print(f"{'steps so far':>14} {'RSS (MiB)':>10} {'peak RSS (MiB)':>15} {'runner buffers (MiB)':>21} {'loss':>7}")
    start = time.perf_counter()
    x = np.empty((args.chunk + 1, args.batch), dtype=np.int64)
    x[-1] = rng.integers(0, args.vocab, args.batch)
    for i in range(1, chunks + 1):
        # A stream with structure to learn: each token is the previous one plus 1 or 2.
        x[0] = x[-1]
        x[1:] = (x[0] + np.cumsum(rng.integers(1, 3, (args.chunk, args.batch)), axis=0)) % args.vocab
        loss = runner.step(np.ascontiguousarray(x[:-1]), np.ascontiguousarray(x[1:]))
        rb.clip_grad_norm(model.grads, 1.0)
        model.params[:] -= 0.5 * model.grads
        if i in marks:
            print(f"{i * args.chunk:>14,} {rss_mib():>10.1f} {rss_mib('VmHWM'):>15.1f} "
                  f"{runner.memory_bytes / 2**20:>21.3f} {loss:>7.3f}", flush=True)
    seconds = time.perf_counter() - start
    print(f"{chunks * args.chunk * args.batch / seconds:,.0f} tokens/s, {seconds:.0f} s")


if __name__ == "__main__":
    main()
