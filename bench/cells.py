"""GRU and LSTM training steps against PyTorch's nn.GRU / nn.LSTM and JAX, interleaved.

    python bench/cells.py                  # every SIMD variant this CPU runs, 5 passes
    python bench/cells.py --quick          # 3 passes
    python bench/cells.py --variants avx512

A step is what bench/run.py times for the Elman cell (workloads.py): forward over one-hot
tokens, mean cross-entropy, full BPTT, global-norm clipping at 1 and SGD, for the
configurations S, M, L, X with one layer and M with two (M2). Each SIMD variant of rnnbptt
runs in its own process (RNNBPTT_ISA) with its peers, interleaved (A B C A B C ...) on the
same threads; the ratio is the best peer's median time over rnnbptt's. Targets: >= 1.5x at S,
M and L, >= 3x at X. Results go to bench/results/cells.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import have_jax, have_torch, interleaved_passes, machine, machine_variants, set_threads  # noqa: E402
from workloads import (  # noqa: E402
    CELL_CONFIGS,
    cell_executed_flops,
    jax_cell_step,
    rnnbptt_cell_step,
    torch_cell_step,
)

TARGETS = {"S": 1.5, "M": 1.5, "L": 1.5, "X": 3.0, "M2": 1.5}
PEERS = {"torch": "PyTorch", "jax": "JAX"}


def worker(cells: list[str], configs: list[str], passes: int, threads: int) -> dict[str, Any]:
    set_threads(threads)
    import rnnbptt as rb

    out: dict[str, Any] = {"isa": rb.build_info()["isa"], "simd": rb.build_info()["simd"], "rows": []}
    for cell in cells:
        for name in configs:
            V, h, n, T, layers = CELL_CONFIGS[name]
            steps: dict[str, Callable[[], Any]] = {"rnnbptt": rnnbptt_cell_step(cell, V, h, n, T, layers)}
            if have_torch():
                steps["torch"] = torch_cell_step(cell, V, h, n, T, layers)
            if have_jax():
                steps["jax"] = jax_cell_step(cell, V, h, n, T, layers)
            seconds, done = interleaved_passes(steps, passes, min_seconds=0.0)
            out["rows"].append({"cell": cell, "config": name, "V": V, "h": h, "n": n, "T": T, "layers": layers,
                                "seconds": seconds, "passes": done,
                                "executed_flops": cell_executed_flops(cell, V, h, n, T, layers)})
            print(f"{out['isa']} {cell} {name}: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in seconds.items()),
                  file=sys.stderr, flush=True)
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# GRU and LSTM training steps", "",
             f"- CPU: {m['cpu']} ({m['cores']} cores), {m['threads']} threads for every library; started "
             f"{m['started']}, load average {', '.join(f'{x:.2f}' for x in m['load_start'])}",
             f"- PyTorch {m.get('torch', 'not installed')}; executed FLOPs: per layer 6 T n h (G h) "
             "(recurrent product, dL/dh_{t-1}, dW_hh), 6 T n h (G h) for the input side above the first layer, "
             "6 T n h V for the output layer", ""]
    for isa, block in results["variants"].items():
        lines += [f"## rnnbptt `{isa}` variant ({block['simd']})", "",
                  "| cell | config (V, h, n, T, layers) | rnnbptt ms | GFLOP/s | " +
                  " | ".join(f"{PEERS[p]} ms" for p in PEERS) + " | ratio to best peer | target |",
                  "|---|---|---:|---:|" + "---:|" * len(PEERS) + "---:|---|"]
        for row in block["rows"]:
            ours = row["seconds"]["rnnbptt"]
            peers = {p: row["seconds"][p] for p in PEERS if p in row["seconds"]}
            cells = [row["cell"], f"{row['config']} = ({row['V']}, {row['h']}, {row['n']}, {row['T']}, {row['layers']})",
                     f"{1e3 * ours:.1f}", f"{row['executed_flops'] / ours / 1e9:.0f}"]
            cells += [f"{1e3 * peers[p]:.1f}" if p in peers else "-" for p in PEERS]
            if peers:
                best = min(peers, key=lambda p: peers[p])
                ratio = peers[best] / ours
                target = TARGETS[row["config"]]
                cells += [f"**{ratio:.2f}x** ({PEERS[best]})", f">= {target}x " + ("met" if ratio >= target else
                                                                                  "**not met**")]
            else:
                cells += ["-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 passes instead of 5")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--variants", help="comma-separated SIMD variants (default: all this CPU runs)")
    parser.add_argument("--cells", default="gru,lstm")
    parser.add_argument("--configs", default=",".join(CELL_CONFIGS))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cells, configs = args.cells.split(","), args.configs.split(",")
    if args.worker:
        print(json.dumps(worker(cells, configs, args.passes, args.threads)))
        return 0
    variants = args.variants.split(",") if args.variants else machine_variants()
    results: dict[str, Any] = {"machine": machine(args.threads), "variants": {}}
    print(f"machine: {results['machine']['cpu']}, {args.threads} threads", flush=True)
    for isa in variants:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--cells", args.cells, "--configs",
                   args.configs, "--passes", str(3 if args.quick else args.passes), "--threads", str(args.threads)]
        env = {**os.environ, "RNNBPTT_ISA": isa}
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(name, None)
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"worker {isa} failed:\n{out.stderr[-3000:]}")
        results["variants"][isa] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{isa} done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cells.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "cells.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
