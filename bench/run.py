"""rnnbptt's benchmark suite: speed and memory against PyTorch, JAX, oneDNN and the GEMM peak.

    python bench/run.py                 # the whole suite, about twenty minutes on 2 cores
    python bench/run.py --quick         # fewer passes and sizes
    python bench/run.py --variants avx2 # only these SIMD variants (default: all this CPU runs)
    python bench/run.py --sections cells,layer   # only these parts (default: all of them)

Only ratios measured side by side in one run mean something on a noisy host: every
comparison interleaves rnnbptt and its peers (A B C A B C ...) over several passes and
reports medians. Each SIMD variant of rnnbptt runs in its own process (RNNBPTT_ISA). The
peers are PyTorch (one-hot input and nn.Embedding) and JAX when installed; the targets are
ratios against the best of them. Peak memory is measured in a fresh process per (library,
configuration).

The sections: `elman` (the Elman training step at S, M, L, X, and float64), `cells` (the
same step for GRU and LSTM at S, M, L, X and a 2-layer M, against nn.GRU / nn.LSTM and JAX),
`layer` (the recurrent layer alone, every cell, against oneDNN's vanilla RNN, lbr GRU and
LSTM primitives: a C++ program, bench/onednn/layer.cpp, built per variant with CMake when
oneDNN's CMake package is found (Debian: libdnnl-dev); otherwise skipped with the reason),
`memory` and `scaling`. Results go to
bench/results/ as Markdown and JSON, and as a plot when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import (  # noqa: E402
    CELL_CONFIGS,
    CONFIGS,
    cell_executed_flops,
    executed_flops,
    jax_cell_step,
    jax_step,
    rnnbptt_cell_step,
    rnnbptt_step,
    step_flops,
    tokens,
    torch_cell_step,
    torch_embedding_step,
    torch_step,
)

SECTIONS = ("elman", "cells", "layer", "memory", "scaling")
LAYER_CELLS = ("elman", "gru", "lstm")

# Compiler flags of each SIMD variant, as CMakeLists.txt builds the Python modules.
VARIANT_FLAGS = {"baseline": "", "avx2": "-mavx2 -mfma",
                 "avx512": "-mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma"}


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def have_jax() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_flags() -> set[str]:
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return set()
    for line in path.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def machine_variants() -> list[str]:
    """The SIMD variants this CPU runs, best first."""
    flags = cpu_flags()
    out = []
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx2", "fma"} <= flags:
        out.append("avx512")
    if {"avx2", "fma"} <= flags:
        out.append("avx2")
    return out + ["baseline"]


def set_threads(threads: int, torch_too: bool = True) -> None:
    import rnnbptt as rb

    rb.set_num_threads(threads)
    if torch_too and have_torch():
        import torch

        torch.set_num_threads(threads)


def interleaved(steps: dict[str, Callable[[], Any]], passes: int, repeat: int = 1) -> dict[str, float]:
    """Median seconds per call of each step, measured A B A B ... after one warm-up each."""
    return interleaved_passes(steps, passes, repeat)[0]


def interleaved_passes(steps: dict[str, Callable[[], Any]], passes: int, repeat: int = 1,
                       min_seconds: float = 0.0) -> tuple[dict[str, float], int]:
    """interleaved(), with `passes` passes and more (up to 30 times as many) while the passes so
    far took less than `min_seconds`: a short step's median then spans as many seconds of the
    machine's changing speed as a long one's. Also returns the number of passes run."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    begin = time.perf_counter()
    done = 0
    while done < passes or (done < 30 * passes and time.perf_counter() - begin < min_seconds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(repeat):
                step()
            times[name].append((time.perf_counter() - start) / repeat)
        done += 1
    return {name: float(np.median(t)) for name, t in times.items()}, done


def gemm_peak(threads: int, size: int = 4096) -> dict[str, Any]:
    """fp32 GEMM GFLOP/s on size^3 with NumPy's BLAS and with PyTorch's, interleaved, median of
    7 each; the machine's peak is the faster of the two (their BLAS libraries differ by CPU)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.copy()
    products: dict[str, Callable[[], Any]] = {"numpy": lambda: a @ b}
    if have_torch():
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        products["torch"] = lambda: torch.mm(ta, tb)
    seconds = interleaved(products, passes=7)
    each = {name: 2.0 * size**3 / s / 1e9 for name, s in seconds.items()}
    best = max(each, key=lambda name: each[name])
    detail = ", ".join(f"{name} {gflops:.0f}" for name, gflops in each.items())
    return {"gflops": each[best], "source": f"{size}^3 fp32, best of {detail} GFLOP/s", "each": each,
            "threads": threads}


# ---- workers: run in a subprocess so that each measures in a clean process -----------------
def worker_throughput(configs: list[str], passes: int, threads: int, dtype: str,
                      min_seconds: float = 0.0) -> dict[str, Any]:
    set_threads(threads)
    import rnnbptt as rb

    np_dtype = np.float64 if dtype == "float64" else np.float32
    out: dict[str, Any] = {"isa": rb.build_info()["isa"], "simd": rb.build_info()["simd"], "rows": []}
    if have_jax():
        import jax

        out["jax"] = jax.__version__
    for name in configs:
        V, h, n, T = CONFIGS[name]
        steps = {"rnnbptt": rnnbptt_step(V, h, n, T, np_dtype)}
        if have_torch():
            steps["torch"] = torch_step(V, h, n, T, np_dtype)
            steps["torch_embedding"] = torch_embedding_step(V, h, n, T, np_dtype)
        if have_jax() and np_dtype == np.float32:
            steps["jax"] = jax_step(V, h, n, T)
        seconds, done = interleaved_passes(steps, passes, min_seconds=min_seconds)
        out["rows"].append({"config": name, "V": V, "h": h, "n": n, "T": T, "seconds": seconds, "passes": done,
                            "flops": step_flops(V, h, n, T), "executed_flops": executed_flops(V, h, n, T)})
    return out


def worker_cells(configs: list[str], passes: int, threads: int, min_seconds: float = 0.0) -> dict[str, Any]:
    """GRU and LSTM training steps (workloads.py: the Elman step's recipe) against nn.GRU / nn.LSTM
    and JAX, interleaved; configs name CELL_CONFIGS."""
    set_threads(threads)
    import rnnbptt as rb

    out: dict[str, Any] = {"isa": rb.build_info()["isa"], "simd": rb.build_info()["simd"], "rows": []}
    for cell in ("gru", "lstm"):
        for name in configs:
            V, h, n, T, layers = CELL_CONFIGS[name]
            steps: dict[str, Callable[[], Any]] = {"rnnbptt": rnnbptt_cell_step(cell, V, h, n, T, layers)}
            if have_torch():
                steps["torch"] = torch_cell_step(cell, V, h, n, T, layers)
            if have_jax():
                steps["jax"] = jax_cell_step(cell, V, h, n, T, layers)
            seconds, done = interleaved_passes(steps, passes, min_seconds=min_seconds)
            out["rows"].append({"cell": cell, "config": name, "V": V, "h": h, "n": n, "T": T, "layers": layers,
                                "seconds": seconds, "passes": done,
                                "executed_flops": cell_executed_flops(cell, V, h, n, T, layers)})
            print(f"{out['isa']} {cell} {name}: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in seconds.items()),
                  file=sys.stderr, flush=True)
    return out


def _status_kib(field: str) -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def worker_memory(library: str, config: list[int], threads: int, stream: Optional[int]) -> dict[str, Any]:
    """Peak RSS of a few training steps, and RSS once everything is set up before the first."""
    set_threads(threads, torch_too=library == "torch")
    V, h, n, T = config
    if stream:  # rnnbptt streaming Regular(35) over T steps in chunks of `stream` steps
        import rnnbptt as rb

        model = rb.RNN(V, h, V, seed=0)
        runner = rb.StreamRunner(model, rb.Regular(35))
        x, y = tokens(V, n, stream)
        before = _status_kib("VmRSS")
        runner.step(x, y)  # sizes the buffers
        timed = T // stream - 1  # whole chunks after the first
        if timed < 1:
            raise SystemExit(f"--stream: expected T >= 2 x stream = {2 * stream} steps, got T = {T}")
        start = time.perf_counter()
        for _ in range(timed):
            runner.step(x, y)
            rb.clip_grad_norm(model.grads, 1.0)
            model.params[:] -= 0.01 * model.grads
        seconds = time.perf_counter() - start
        # The time of T steps at the timed chunks' rate (T - stream steps were timed only when
        # stream divides T: at T = 1,000, one chunk of 350).
        return {"before_kib": before, "peak_kib": _status_kib("VmHWM"), "seconds": seconds * T / (timed * stream),
                "runner_bytes": runner.memory_bytes}
    step = rnnbptt_step(V, h, n, T) if library == "rnnbptt" else torch_step(V, h, n, T)
    before = _status_kib("VmRSS")
    step()  # the first step sizes the buffers; time the steady state after it
    start = time.perf_counter()
    for _ in range(3):
        step()
    seconds = (time.perf_counter() - start) / 3
    return {"before_kib": before, "peak_kib": _status_kib("VmHWM"), "seconds": seconds}


# ---- the recurrent layer alone against oneDNN (bench/onednn) -------------------------------
LAYER_CONFIGS = {name: (h, n, T) for name, (_, h, n, T) in CONFIGS.items()}  # dense input of width h


def cmake_prefix() -> list[str]:
    """Where CMake finds Eigen when it comes from PyPI's cmeel-eigen (as for the Python build)."""
    out = subprocess.run([sys.executable, "-m", "cmeel", "cmake"], capture_output=True, text=True)
    return [f"-DCMAKE_PREFIX_PATH={out.stdout.strip()}"] if out.returncode == 0 and out.stdout.strip() else []


def build_layer(variant: str, build_root: Path, wrapper: list[str], rebuild: bool = True,
                dnnl_dir: Optional[Path] = None, index: int = 0) -> tuple[Optional[Path], str]:
    """Configures and builds bench/onednn for one variant against one oneDNN (``dnnl_dir``: its
    CMake package directory; None: the one CMake finds, Debian's); (executable, "") or (None,
    reason). With rebuild=False an executable already there is used as it is."""
    build = build_root / (f"onednn-{variant}" if index == 0 else f"onednn{index + 1}-{variant}")
    if not rebuild and (build / "layer").exists():
        return build / "layer", ""
    if shutil.which("cmake") is None:
        return None, "cmake not found"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", str(HERE / "onednn"), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
                 f"-DCMAKE_CXX_FLAGS={VARIANT_FLAGS[variant]}", f"-DPython3_EXECUTABLE={sys.executable}",
                 *cmake_prefix(), *([f"-Ddnnl_DIR={dnnl_dir}"] if dnnl_dir is not None else [])]
    out = subprocess.run(configure, capture_output=True, text=True)
    if out.returncode != 0:
        text = out.stdout + out.stderr
        if "dnnl" in text:
            return None, "oneDNN's CMake package (dnnl) not found: install libdnnl-dev or set dnnl_DIR"
        return None, f"CMake configure failed: {text[-500:]}"
    out = subprocess.run([*wrapper, "cmake", "--build", str(build), "--target", "layer"], capture_output=True, text=True)
    if out.returncode != 0:
        return None, f"build failed: {(out.stdout + out.stderr)[-1500:]}"
    return build / "layer", ""


def onednn_layer(variants: list[str], threads: int, passes: int, build_root: Path,
                 wrapper: list[str], rebuild: bool = True,
                 dnnl_dirs: tuple[Optional[Path], ...] = (None,)) -> list[dict[str, Any]]:
    """One result per oneDNN (``dnnl_dirs``), each {"variants": {variant: rows}}; with several,
    every configuration runs on each build in turn (interleaved), so they meet the same machine."""
    results: list[dict[str, Any]] = [{"variants": {}} for _ in dnnl_dirs]
    for variant in variants:
        exes = []
        for index, dnnl_dir in enumerate(dnnl_dirs):
            exe, reason = build_layer(variant, build_root, wrapper, rebuild, dnnl_dir, index)
            if exe is None:
                results[index]["skipped"] = reason
                print(f"oneDNN layer ({variant}, {dnnl_dir or 'found by CMake'}) skipped: {reason}", flush=True)
            exes.append(exe)
        if all(exe is None for exe in exes):
            return results
        rows: list[list[dict[str, Any]]] = [[] for _ in dnnl_dirs]
        for cell in LAYER_CELLS:
            for name, (h, n, T) in LAYER_CONFIGS.items():
                for index, exe in enumerate(exes):
                    if exe is None:
                        continue
                    out = subprocess.run([str(exe), "--cell", cell, "--h", str(h), "--n", str(n), "--T", str(T),
                                          "--threads", str(threads), "--passes", str(passes)],
                                         capture_output=True, text=True)
                    if out.returncode != 0:
                        raise RuntimeError(f"{exe} failed for {cell} {name}:\n{out.stderr[-3000:]}")
                    rows[index].append({"config": name, **json.loads(out.stdout.strip().splitlines()[-1])})
        for index, exe in enumerate(exes):
            if exe is not None:
                results[index]["variants"][variant] = rows[index]
        print(f"oneDNN layer ({variant}) done", flush=True)
    return results


def spawn(args: list[str], env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the suite ----------------------------------------------------------------------------
def machine(threads: int) -> dict[str, Any]:
    import rnnbptt as rb

    model = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {"cpu": model, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
                            "numpy": np.__version__, "rnnbptt": rb.build_info(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                            "load_start": list(os.getloadavg())}
    if have_torch():
        import torch

        info["torch"] = torch.__version__
    return info


def run_suite(quick: bool, threads: int, variants: list[str], build_root: Path, wrapper: list[str],
              rebuild: bool = True, sections: tuple[str, ...] = SECTIONS,
              dnnl_dirs: tuple[Optional[Path], ...] = (None,)) -> dict[str, Any]:
    import rnnbptt as rb

    # Training steps: 7 interleaved passes, and more (up to 210) while they take under 15 s: the
    # machine's speed moves from second to second, and a short step's 7 passes last one second.
    passes, min_seconds = (3, 0.0) if quick else (7, 15.0)
    results: dict[str, Any] = {"machine": machine(threads), "sections": list(sections),
                               "flop_model": "forward F = 2 T n (h V + h h + V h); step = 3F"}
    print(f"machine: {results['machine']['cpu']}, {threads} threads, rnnbptt {rb.build_info()}", flush=True)
    set_threads(threads)
    results["gemm_peak"] = gemm_peak(threads)
    print(f"GEMM peak: {results['gemm_peak']['gflops']:.0f} GFLOP/s ({results['gemm_peak']['source']})", flush=True)
    if "layer" in sections:
        layer_variants = [v for v in variants if v in ("avx2", "avx512")]  # the variants the goal is for
        results["onednn_layer"] = onednn_layer(layer_variants, threads, 3 if quick else 5, build_root, wrapper,
                                               rebuild, dnnl_dirs)

    configs = list(CONFIGS)
    if rb.build_info()["isa"] == "native":
        variants = ["native"]
    timing = ["--passes", str(passes), "--min-seconds", str(min_seconds), "--threads", str(threads)]

    def isa_env(isa: str) -> dict[str, str]:
        return {"RNNBPTT_ISA": isa} if isa != "native" else {}

    def per_variant(worker: str, names: list[str]) -> dict[str, Any]:
        """A timing worker in its own process per variant (RNNBPTT_ISA), one after the other."""
        out = {}
        for isa in variants:
            out[isa] = spawn(["--worker", worker, "--configs", ",".join(names), *timing], isa_env(isa))
            print(f"{worker} ({isa}) done", flush=True)
        return out

    if "elman" in sections:
        results["throughput"] = per_variant("throughput", configs)
        results["float64"] = spawn(["--worker", "throughput", "--configs", "S", *timing, "--dtype", "float64"],
                                   isa_env(variants[0]))
    if "cells" in sections:
        results["cells"] = per_variant("cells", list(CELL_CONFIGS))

    if "memory" in sections:
        results["memory"] = []
        for name in configs:
            for library in ["rnnbptt"] + (["torch"] if have_torch() else []):
                row = spawn(["--worker", "memory", "--library", library, "--config",
                             ",".join(map(str, CONFIGS[name])), "--threads", str(threads)])
                results["memory"].append({"config": name, "library": library, **row})
        print("memory done", flush=True)

    if "scaling" in sections:
        lengths = [100, 1_000, 10_000] + ([] if quick else [100_000])
        results["scaling_T"] = []
        for T in lengths:
            config = [28, 128, 8, T]
            full = spawn(["--worker", "memory", "--library", "rnnbptt", "--config", ",".join(map(str, config)),
                          "--threads", str(threads)])
            streamed = spawn(["--worker", "memory", "--library", "rnnbptt", "--config", ",".join(map(str, config)),
                              "--threads", str(threads), "--stream", "350"]) if T >= 2 * 350 else None
            results["scaling_T"].append({"T": T, "full": full, "stream_regular_35": streamed})
        print("scaling in T done", flush=True)

        results["scaling_h"] = []
        for h in [64, 128, 256, 512] + ([] if quick else [1024]):
            V, n, T = 65, 32, 50
            steps = {"rnnbptt": rnnbptt_step(V, h, n, T)}
            if have_torch():
                steps["torch"] = torch_step(V, h, n, T)
            seconds = interleaved(steps, max(3, passes // 2))
            results["scaling_h"].append({"h": h, "V": V, "n": n, "T": T, "seconds": seconds,
                                         "flops": step_flops(V, h, n, T)})
        print("scaling in h done", flush=True)
    results["machine"]["load_end"] = list(os.getloadavg())
    return results


# ---- reporting ----------------------------------------------------------------------------
TARGETS = {"S": 2.5, "M": 1.5, "L": 1.2, "X": 3.0}  # against the best peer
L_PEAK_SHARE = 0.80  # L's executed FLOPs against the GEMM peak
TARGET_VARIANTS = ("avx2", "avx512", "native")
PEERS = {"torch": "PyTorch one-hot", "torch_embedding": "PyTorch embedding", "jax": "JAX"}
CELL_TARGETS = {"S": 1.5, "M": 1.5, "L": 1.5, "X": 3.0, "M2": 1.5}  # GRU and LSTM against the best peer
CELL_PEERS = {"torch": "PyTorch", "jax": "JAX"}


def best_peer(seconds: dict[str, float]) -> Optional[str]:
    peers = [name for name in PEERS if name in seconds]
    return min(peers, key=lambda name: seconds[name]) if peers else None


def cells_markdown(cells: dict[str, Any]) -> list[str]:
    """The GRU and LSTM training steps, one table per variant."""
    if not cells:
        return []
    lines = ["## GRU and LSTM training steps (median of interleaved passes)", "",
             "The Elman step's recipe (forward over one-hot tokens, mean cross-entropy, full BPTT, clipping at 1, "
             "SGD) with nn.GRU / nn.LSTM and JAX as the peers. Executed FLOPs: per layer 6 T n h (G h) for the "
             "recurrent side (G = 3, 4), 6 T n h (G h) for the input side above the first layer, 6 T n h V for the "
             "output layer.", ""]
    for isa, block in cells.items():
        lines += [f"### rnnbptt `{isa}` variant ({block['simd']})", "",
                  "| cell | config (V, h, n, T, layers) | rnnbptt ms | GFLOP/s | " +
                  " | ".join(f"{CELL_PEERS[p]} ms" for p in CELL_PEERS) + " | ratio to best peer | target |",
                  "|---|---|---:|---:|" + "---:|" * len(CELL_PEERS) + "---:|---|"]
        for row in block["rows"]:
            ours = row["seconds"]["rnnbptt"]
            peers = {p: row["seconds"][p] for p in CELL_PEERS if p in row["seconds"]}
            cells_ = [row["cell"], f"{row['config']} = ({row['V']}, {row['h']}, {row['n']}, {row['T']}, "
                      f"{row['layers']})", f"{1e3 * ours:.1f}", f"{row['executed_flops'] / ours / 1e9:.0f}"]
            cells_ += [f"{1e3 * peers[p]:.1f}" if p in peers else "-" for p in CELL_PEERS]
            if peers:
                best = min(peers, key=lambda p: peers[p])
                ratio = peers[best] / ours
                target = CELL_TARGETS[row["config"]]
                met = "" if isa not in TARGET_VARIANTS else (" met" if ratio >= target else " **not met**")
                cells_ += [f"**{ratio:.2f}x** ({CELL_PEERS[best]})", f">= {target}x{met}"]
            else:
                cells_ += ["-", "-"]
            lines.append("| " + " | ".join(cells_) + " |")
        lines.append("")
    return lines


def layer_markdown(layer: dict[str, Any], peak: float) -> list[str]:
    """The recurrent layer alone against oneDNN, one table per variant, every cell."""
    lines: list[str] = []
    lines += ["## The recurrent layer alone against oneDNN", ""]
    if "skipped" in layer:
        lines += [f"Skipped: {layer['skipped']}.", ""]
    for variant, rows in layer.get("variants", {}).items():
        first = rows[0]
        lines += [f"### rnnbptt `{variant}` variant against oneDNN {first['onednn']} ({first['threads']} threads)", "",
                  "Forward training + backward of one layer (elman: tanh against vanilla RNN; gru against the lbr "
                  "GRU, PyTorch's GRU; lstm against the LSTM), dense input of width h, dL/dh_t given for every t; "
                  "both compute dW_hx, dW_hh, the biases, dL/dx and dL/dh_0 (and dL/dc_0). oneDNN as a training loop "
                  "runs it: weights reordered from the plain layout into each primitive's, weight gradients zeroed "
                  "(its backward adds into them) and reordered back. Executed FLOPs: 12 T n h (G h), G = 1, 3, 4 "
                  "gate blocks. Ratio = oneDNN's time / rnnbptt's (> 1: rnnbptt faster); goal >= 1.", "",
                  "| cell | config (h, n, T) | rnnbptt ms (fwd + bwd) | GFLOP/s | % of peak | oneDNN ms (fwd + bwd) "
                  "| GFLOP/s | % of peak | oneDNN primitives only, ms | ratio | goal |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            ours, theirs = row["rnnbptt"], row["onednn_step"]
            gf_o, gf_t = row["flops"] / ours["step"] / 1e9, row["flops"] / theirs["step"] / 1e9
            ratio = theirs["step"] / ours["step"]
            lines.append(f"| {row.get('cell', 'elman')} | {row['config']} = ({row['h']}, {row['n']}, {row['T']}) | "
                         f"{1e3 * ours['step']:.1f} ({1e3 * ours['forward']:.1f} + {1e3 * ours['backward']:.1f}) | "
                         f"{gf_o:.0f} | {100 * gf_o / peak:.0f}% | "
                         f"{1e3 * theirs['step']:.1f} ({1e3 * theirs['forward']:.1f} + {1e3 * theirs['backward']:.1f}) | "
                         f"{gf_t:.0f} | {100 * gf_t / peak:.0f}% | {1e3 * row['onednn_primitives']:.1f} | "
                         f"**{ratio:.2f}x** | {'met' if ratio >= 1 else '**not met**'} |")
        lines += ["", "oneDNN's layouts: " + first["onednn_layouts"] + ". Largest differences between the two "
                  "libraries' results (a check that both compute the same layer): " +
                  "; ".join(f"{row.get('cell', 'elman')} {row['config']}: h_T {row['check']['h_T_max_abs_diff']:.1e}, "
                            f"dW {row['check']['dW_max_abs_diff']:.1e} (of {row['check']['dW_max_abs']:.1e}), dx "
                            f"{row['check']['dx_max_abs_diff']:.1e}" for row in rows) + ".", ""]
    return lines


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    peak = r["gemm_peak"]["gflops"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores), {m['threads']} threads for every library; run started "
        f"{m.get('started', '?')}, load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in m.get('load_start', []))} "
        f"at the start and {', '.join(f'{x:.2f}' for x in m.get('load_end', []))} at the end",
        f"- rnnbptt {m['rnnbptt']['version']} (variant loaded by default: `{m['rnnbptt']['isa']}`), "
        f"PyTorch {m.get('torch', 'not installed')}, NumPy {m['numpy']}, Python {m['python']}",
        f"- fp32 GEMM peak measured in this run: **{peak:.0f} GFLOP/s** ({r['gemm_peak']['source']})",
        f"- FLOP model: {r['flop_model']}",
        f"- sections: {', '.join(r.get('sections', SECTIONS))}",
        "",
    ]
    if "throughput" in r:
        lines += ["## Training step: tokens/s and GFLOP/s (median of interleaved passes)", ""]
    for isa, block in r.get("throughput", {}).items():
        versions = f", JAX {block['jax']}" if "jax" in block else ""
        lines += [f"### rnnbptt `{isa}` variant ({block['simd']}) against its peers{versions}", ""]
        if isa not in TARGET_VARIANTS:
            lines += ["(The portable baseline is measured for reference; the targets apply to the AVX2 and AVX-512 "
                      "variants.)", ""]
        rows = block["rows"]
        peers = [name for name in PEERS if rows and name in rows[0]["seconds"]]
        head = "| config (V, h, n, T) | rnnbptt tokens/s | executed GFLOP/s | % of GEMM peak | "
        head += " | ".join(f"{PEERS[p]} tokens/s" for p in peers)
        head += " | ratio to best peer | target |" if peers else " |"
        lines += [head, "|---|" + "---:|" * (3 + len(peers) + (2 if peers else 0))]
        for row in rows:
            tok = row["T"] * row["n"]
            ours = row["seconds"]["rnnbptt"]
            cfg = f"{row['config']} = ({row['V']}, {row['h']}, {row['n']}, {row['T']})"
            gf = row["executed_flops"] / ours / 1e9
            share = gf / peak
            cells = [cfg, f"{tok / ours:,.0f}", f"{gf:.0f}", f"{100 * share:.0f}%"]
            cells += [f"{tok / row['seconds'][p]:,.0f}" for p in peers]
            best = best_peer(row["seconds"])
            if best is not None:
                ratio = row["seconds"][best] / ours
                target = TARGETS[row["config"]]
                met = ratio >= target
                text = f">= {target}x"
                if row["config"] == "L":
                    met = met and share >= L_PEAK_SHARE
                    text += f", >= {100 * L_PEAK_SHARE:.0f}% of peak"
                if isa in TARGET_VARIANTS:
                    text += " met" if met else " **not met**"
                cells += [f"**{ratio:.2f}x** ({PEERS[best]})", text]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if rows and all("passes" in row for row in rows):
            lines += ["Interleaved passes per config (each library once per pass; medians above): "
                      + ", ".join(f"{row['config']} {row['passes']}" for row in rows) + ".", ""]
    if "float64" in r:
        f64 = r["float64"]["rows"][0]
        if "torch" in f64["seconds"]:
            lines += [f"float64, config S: rnnbptt {f64['T'] * f64['n'] / f64['seconds']['rnnbptt']:,.0f} tokens/s, "
                      f"PyTorch {f64['T'] * f64['n'] / f64['seconds']['torch']:,.0f} tokens/s "
                      f"(ratio {f64['seconds']['torch'] / f64['seconds']['rnnbptt']:.2f}x"
                      + (f", {f64['passes']} interleaved passes" if "passes" in f64 else "") + ").", ""]
    lines += cells_markdown(r.get("cells", {}))
    layers = r.get("onednn_layer", [])
    for layer in layers if isinstance(layers, list) else [layers]:  # one per oneDNN (one dict before 0.2)
        lines += layer_markdown(layer, peak)
    if "memory" in r:
        lines += ["## Peak memory of a full-BPTT training step (fresh process each)", "",
                  "Growth = peak RSS minus RSS once model and data are set up: what the step itself needs.", "",
                  "| config | library | RSS before (MiB) | peak RSS (MiB) | growth (MiB) |", "|---|---|---:|---:|---:|"]
        for row in r["memory"]:
            lines.append(f"| {row['config']} | {row['library']} | {row['before_kib'] / 1024:.0f} | "
                         f"{row['peak_kib'] / 1024:.0f} | {(row['peak_kib'] - row['before_kib']) / 1024:.0f} |")
        lines.append("")
    if "scaling_T" in r:
        lines += ["## Scaling in T (V=28, h=128, n=8): full BPTT against streaming Regular(35)", "",
                  "| T | full: tokens/s | full: peak RSS (MiB) | stream: tokens/s | stream: peak RSS (MiB) "
                  "| stream: runner buffers (MiB) |", "|---:|---:|---:|---:|---:|---:|"]
        for row in r["scaling_T"]:
            full, s = row["full"], row["stream_regular_35"]
            full_tps = row["T"] * 8 / full["seconds"]
            cells = [f"{row['T']:,}", f"{full_tps:,.0f}", f"{full['peak_kib'] / 1024:.0f}"]
            if s is None:
                cells += ["-", "-", "-"]
            else:
                cells += [f"{row['T'] * 8 / s['seconds']:,.0f}", f"{s['peak_kib'] / 1024:.0f}", f"{s['runner_bytes'] / 2**20:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "## Scaling in h (V=65, n=32, T=50)", "", "| h | rnnbptt GFLOP/s | PyTorch GFLOP/s | ratio |",
                  "|---:|---:|---:|---:|"]
        for row in r["scaling_h"]:
            ours = row["flops"] / row["seconds"]["rnnbptt"] / 1e9
            theirs = row["seconds"].get("torch")
            if theirs is None:
                lines.append(f"| {row['h']} | {ours:.0f} | - | - |")
            else:
                lines.append(f"| {row['h']} | {ours:.0f} | {row['flops'] / theirs / 1e9:.0f} | "
                             f"{theirs / row['seconds']['rnnbptt']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> Optional[Path]:
    if "scaling_T" not in r:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = r["scaling_T"]
    axes[0].loglog([x["T"] for x in rows], [x["full"]["peak_kib"] / 1024 for x in rows], "o-", label="full BPTT")
    streamed = [x for x in rows if x["stream_regular_35"]]
    axes[0].loglog([x["T"] for x in streamed], [x["stream_regular_35"]["peak_kib"] / 1024 for x in streamed], "s-",
                   label="streaming Regular(35)")
    axes[0].set_xlabel("T")
    axes[0].set_ylabel("peak RSS (MiB)")
    axes[0].legend()
    axes[0].grid(True, alpha=0.3)
    hs = r["scaling_h"]
    axes[1].plot([x["h"] for x in hs], [x["flops"] / x["seconds"]["rnnbptt"] / 1e9 for x in hs], "o-", label="rnnbptt")
    if all("torch" in x["seconds"] for x in hs):
        axes[1].plot([x["h"] for x in hs], [x["flops"] / x["seconds"]["torch"] / 1e9 for x in hs], "s-", label="PyTorch")
    axes[1].axhline(r["gemm_peak"]["gflops"], color="gray", ls="--", label="GEMM peak")
    axes[1].set_xscale("log", base=2)
    axes[1].set_xlabel("hidden size h")
    axes[1].set_ylabel("GFLOP/s")
    axes[1].legend()
    axes[1].grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer passes and sizes")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--variants", help="comma-separated SIMD variants (default: all this CPU runs)")
    parser.add_argument("--build-dir", type=Path, default=HERE.parent / "build" / "bench",
                        help="where bench/onednn is built, one directory per variant")
    parser.add_argument("--build-wrapper", default="",
                        help="command prefixed to the build, e.g. 'flock /tmp/build.lock'")
    parser.add_argument("--no-build", action="store_true", help="use bench/onednn executables already built as they are")
    parser.add_argument("--onednn", action="append", type=Path, default=None, metavar="DIR",
                        help="a oneDNN CMake package directory to build the layer against (repeat for several, "
                             "run interleaved; 'found' is the one CMake finds, e.g. Debian's libdnnl-dev; "
                             "default: that one), e.g. a venv's lib/cmake/dnnl from PyPI's onednn-devel-cpu-gomp")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated parts to run (default: all of {', '.join(SECTIONS)})")
    parser.add_argument("--worker", choices=["throughput", "cells", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--configs", help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--min-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "throughput":
        print(json.dumps(worker_throughput(args.configs.split(","), args.passes, args.threads, args.dtype,
                                            args.min_seconds)))
        return 0
    if args.worker == "cells":
        print(json.dumps(worker_cells(args.configs.split(","), args.passes, args.threads, args.min_seconds)))
        return 0
    if args.worker == "memory":
        config = [int(v) for v in args.config.split(",")]
        print(json.dumps(worker_memory(args.library, config, args.threads, args.stream)))
        return 0
    sections = tuple(args.sections.split(","))
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        parser.error(f"--sections: expected some of {', '.join(SECTIONS)}, got {', '.join(unknown)}")
    variants = args.variants.split(",") if args.variants else machine_variants()
    dnnl_dirs = tuple(None if str(d) == "found" else d.resolve() for d in args.onednn) if args.onednn else (None,)
    results = run_suite(args.quick, args.threads, variants, args.build_dir, shlex.split(args.build_wrapper),
                        not args.no_build, sections, dnnl_dirs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "latest.md").write_text(text)
    picture = plot(results, args.out / "latest.png")
    print()
    print(text)
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'}" + (f", {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
