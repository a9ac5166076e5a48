"""Data-parallel scaling on MPI, measured on this machine and modelled for clusters.

    python bench/scaling.py                      # S, M and L: a few minutes on 2 cores
    python bench/scaling.py --configs S --steps 20 --rounds 1

Measured: tokens/s of the trainer (``Trainer.train_epoch``: forward, loss, backward,
allreduce, clipping, SGD) for the same total cores spent two ways, 1 process x 2 threads and
2 processes x 1 thread (``mpirun -n 2``; the ``mpi`` extra), with the time per step spent in the
gradient's allreduce (which includes waiting for the slower process) and that of a bare
allreduce of the same buffer after a barrier. 1 process x 1 thread is the per-core reference.
The three settings take turns over several rounds and each keeps its fastest round, the one
least disturbed by other work on a shared host (the load average is reported).

Modelled: per step, compute against a ring allreduce that moves ``2 (P - 1) / P`` of the
gradient buffer over each node's link in ``2 (P - 1)`` latency-bound steps, for 1, 8 and 64
nodes on 10 and 100 Gb/s links; see ``docs/scaling.md``. Results go to
bench/results/scaling.json and are printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import CONFIGS  # noqa: E402

#: Steps timed per configuration (after one warm-up step), by default.
STEPS = {"S": 40, "M": 8, "L": 4}
#: Links of the model: name -> (bytes per second, latency per message in seconds). 10 Gb/s
#: Ethernet with TCP, and a 100 Gb/s RDMA fabric (InfiniBand or RoCE).
LINKS = {"10 Gb/s": (10e9 / 8, 20e-6), "100 Gb/s": (100e9 / 8, 3e-6)}
NODES = (1, 8, 64)


# ---- one measurement, in one process of a launch --------------------------------------------
def measure(config: str, steps: int, mpi: bool) -> Optional[dict[str, Any]]:
    """Time ``steps`` trainer steps of ``config`` (float32, full BPTT, SGD, clipping at 1);
    returns the figures on rank 0 (None elsewhere)."""
    import rnnbptt as rb

    V, h, n, T = CONFIGS[config]
    comm, timed = None, None
    if mpi:
        from mpi4py import MPI

        class Timed(MPI.Intracomm):
            """COMM_WORLD, timing each buffer allreduce (the gradient's)."""

            seconds: list[float] = []

            def Allreduce(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802 - mpi4py's name
                start = time.perf_counter()
                super().Allreduce(*args, **kwargs)
                Timed.seconds.append(time.perf_counter() - start)

        comm, timed = Timed(MPI.COMM_WORLD), Timed
    corpus = np.random.default_rng(0).integers(0, V, (steps + 2) * n * T + T + 1)
    model = rb.RNN(V, h, V, dtype=np.float32, seed=0)
    trainer = rb.Trainer(model, lr=0.01, clip=1.0, truncation="full", batch_size=n, num_steps=T, comm=comm)
    stamps: list[float] = []
    trainer.train_epoch(corpus, max_steps=1)  # warm-up
    if timed is not None:
        timed.seconds.clear()
    stamps.append(time.perf_counter())
    trainer.train_epoch(corpus, max_steps=1 + steps, on_step=lambda: stamps.append(time.perf_counter()))
    per_step = statistics.median(np.diff(stamps))
    out: dict[str, Any] = {
        "config": config, "processes": comm.Get_size() if comm is not None else 1, "threads": rb.get_num_threads(),
        "steps": steps, "seconds_per_step": per_step, "tokens_per_second": n * T / per_step,
        "parameters": model.num_parameters, "buffer_bytes": model.grads.nbytes,
    }
    if comm is not None and timed is not None:
        out["allreduce_in_step"] = statistics.median(timed.seconds)
        bare = []
        for _ in range(20):  # the buffer alone, after a barrier: transfer without waiting
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, model.grads, op=MPI.SUM)
            bare.append(time.perf_counter() - start)
        out["allreduce_bare"] = statistics.median(bare)
        everyone = comm.gather(out, root=0)
        if comm.Get_rank() != 0:
            return None
        out["allreduce_in_step_by_rank"] = [r["allreduce_in_step"] for r in everyone]
    return out


# ---- the launches ---------------------------------------------------------------------------
def mpirun() -> str:
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if found is None:
        raise SystemExit('bench/scaling.py: error: no mpirun; install the mpi extra: pip install ".[mpi]"')
    return found


def launch(config: str, steps: int, processes: int, threads: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", config, "--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if processes > 1:
        runner = mpirun()
        version = subprocess.run([runner, "--version"], capture_output=True, text=True).stdout
        # Open MPI binds each process to a core when there are as many as cores; "none" lets
        # each process's threads run on any core, as the single process's do.
        flags = ["--oversubscribe", "--bind-to", "none"] if "Open MPI" in version else []
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        command = [runner, *flags, "-n", str(processes), *command, "--mpi"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench/scaling.py: error: {' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the model ------------------------------------------------------------------------------
def ring_allreduce_seconds(nbytes: int, nodes: int, bandwidth: float, latency: float) -> float:
    """A ring allreduce: ``2 (P - 1)`` steps, each sending ``1 / P`` of the buffer."""
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) * (latency + nbytes / nodes / bandwidth)


#: Node classes of the model: name -> cores like this machine's. A node computes a step in the
#: measured single-core time (1 process x 1 thread) divided by its cores: ideal threading, which
#: makes compute short and so the allreduce's share, and the model, pessimistic.
NODE_CLASSES = {"2 cores (this machine)": 2, "32 cores": 32}


def model_rows(measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per node class, config, link and node count: compute and allreduce seconds per step, and
    the efficiency (speed-up / nodes) when the global batch is split (strong scaling, needs
    ``n >= P``) and when every node keeps the configuration's batch (weak scaling)."""
    rows = []
    for node_class, cores in NODE_CLASSES.items():
        for config, m in measured.items():
            compute = m["1x1"]["seconds_per_step"] / cores
            nbytes = m["1x1"]["buffer_bytes"]
            n = CONFIGS[config][2]
            for link, (bandwidth, latency) in LINKS.items():
                for nodes in NODES:
                    allreduce = ring_allreduce_seconds(nbytes, nodes, bandwidth, latency)
                    strong = compute / nodes
                    rows.append({
                        "node": node_class, "config": config, "link": link, "nodes": nodes, "compute": compute,
                        "allreduce": allreduce,
                        "efficiency_strong": strong / (strong + allreduce) if nodes <= n else None,
                        "efficiency_weak": compute / (compute + allreduce),
                    })
    return rows


def break_even(measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per node class, config and link: the most nodes (a power of 2) at which splitting the
    batch still runs at >= 50 % efficiency (each node's compute >= the allreduce), and whether
    the batch (n sequences) or the network bounds it."""
    out = []
    for node_class, cores in NODE_CLASSES.items():
        for config, m in measured.items():
            compute = m["1x1"]["seconds_per_step"] / cores
            n = CONFIGS[config][2]
            for link, (bandwidth, latency) in LINKS.items():
                best, nodes = 1, 2
                while nodes <= 4096:
                    allreduce = ring_allreduce_seconds(m["1x1"]["buffer_bytes"], nodes, bandwidth, latency)
                    if compute / nodes < allreduce:
                        break
                    best, nodes = nodes, nodes * 2
                out.append({"node": node_class, "config": config, "link": link, "nodes": min(best, n),
                            "bound": "batch" if n < best else "network"})
    return out


def markdown(measured: dict[str, dict[str, Any]], rows: list[dict[str, Any]], even: list[dict[str, Any]],
             cpu: str) -> str:
    lines = [f"Measured on {cpu}; float32, full BPTT, SGD with clipping; the fastest of the rounds.", "",
             "| config | 1 x 1 tokens/s | 1 x 2 tokens/s | 2 x 1 tokens/s | 2 x 1 / 1 x 2 | allreduce in step | "
             "bare allreduce | gradient buffer |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for config, m in measured.items():
        one, two, dp = m["1x1"], m["1x2"], m["2x1"]
        share = dp["allreduce_in_step"] / dp["seconds_per_step"]
        lines.append(
            f"| {config} | {one['tokens_per_second']:,.0f} | {two['tokens_per_second']:,.0f} | "
            f"{dp['tokens_per_second']:,.0f} | {dp['tokens_per_second'] / two['tokens_per_second']:.2f} | "
            f"{dp['allreduce_in_step'] * 1e3:.3f} ms ({100 * share:.1f} %) | {dp['allreduce_bare'] * 1e3:.3f} ms | "
            f"{dp['buffer_bytes'] / 2**20:.2f} MiB |"
        )
    for node_class in NODE_CLASSES:
        lines += ["", f"Model, nodes of {node_class}: efficiency with the batch split (strong) and with a batch "
                  "per node (weak).", "",
                  "| config | nodes | compute per step, 1 node | allreduce 10 / 100 Gb/s | strong 10 Gb/s | "
                  "strong 100 Gb/s | weak 10 Gb/s | weak 100 Gb/s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        mine = [r for r in rows if r["node"] == node_class]
        for config in measured:
            for nodes in NODES:
                ten, hundred = (next(r for r in mine if r["config"] == config and r["nodes"] == nodes
                                     and r["link"] == link) for link in LINKS)
                cells = [f"{100 * r[k]:.0f} %" if r[k] is not None else "n < P"
                         for k in ("efficiency_strong",) for r in (ten, hundred)]
                cells += [f"{100 * r['efficiency_weak']:.0f} %" for r in (ten, hundred)]
                lines.append(f"| {config} | {nodes} | {ten['compute'] * 1e3:.1f} ms | {ten['allreduce'] * 1e3:.2f} / "
                             f"{hundred['allreduce'] * 1e3:.2f} ms | " + " | ".join(cells) + " |")
    lines += ["", "Most nodes with the batch split at >= 50 % efficiency:", "",
              "| nodes are | config | 10 Gb/s | 100 Gb/s |", "| --- | --- | ---: | ---: |"]
    for node_class in NODE_CLASSES:
        for config in measured:
            cells = [next(e for e in even if e["node"] == node_class and e["config"] == config and e["link"] == link)
                     for link in LINKS]
            lines.append(f"| {node_class} | {config} | " + " | ".join(f"{e['nodes']} ({e['bound']})" for e in cells)
                         + " |")
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="S,M,L", help="comma-separated names from bench/workloads.py")
    parser.add_argument("--steps", type=int, help="steps timed per run (default: S 40, M 8, L 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three settings, the fastest kept")
    parser.add_argument("--model-only", help="print the model from this scaling.json instead of measuring")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mpi", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = measure(args.worker, args.steps, args.mpi)
        if out is not None:
            print(json.dumps(out))
        return
    if args.model_only:
        saved = json.loads(Path(args.model_only).read_text())
        print(markdown(saved["measured"], model_rows(saved["measured"]), break_even(saved["measured"]), saved["cpu"]))
        return
    import rnnbptt as rb

    load = [os.getloadavg()[0]]
    measured: dict[str, dict[str, Any]] = {}
    settings = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # processes x threads
    for config in args.configs.split(","):
        steps = args.steps or STEPS[config]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
        for _ in range(args.rounds):
            for name, (processes, threads) in settings.items():
                runs[name].append(launch(config, steps, processes, threads))
        measured[config] = {name: max(found, key=lambda r: r["tokens_per_second"]) for name, found in runs.items()}
        print(f"{config}: done", file=sys.stderr, flush=True)
    load.append(os.getloadavg()[0])
    rows, even = model_rows(measured), break_even(measured)
    cpu = f"{cpu_name()}, rnnbptt {rb.build_info()['isa']} variant, load average {load[0]:.1f} -> {load[1]:.1f}"
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "scaling.json").write_text(json.dumps({"cpu": cpu, "measured": measured, "model": rows, "break_even": even},
                                                           indent=1))
    print(markdown(measured, rows, even, cpu))


if __name__ == "__main__":
    main()
