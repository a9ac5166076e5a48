"""Every instruction-set variant of the core that this CPU runs gives the reference's
gradients, and rnnbptt._core picks the best one by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnbptt as rb
from rnnbptt import reference

from conftest import make_problem, rel_err

SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import make_problem
import rnnbptt as rb
p = make_problem(**{shape!r}, dtype=np.{dtype}, seed=4, tokens={tokens})
p.model.forward(p.x, p.h0)
p.model.loss(p.targets)
p.model.backward(truncation=rb.Regular(6, 9))
print(json.dumps({{"isa": rb.build_info()["isa"], "grads": p.model.grads.tolist()}}))
"""


# Shapes and the recurrence's micro-kernel blocks they reach (recurrence.hpp; panels of 3
# packets with AVX2, 4 with SSE2 and AVX-512): rows left over after blocks of 4 (5 = 3 + 2,
# 7 = 4 + 3), a lone packet past the last panel (run as two blocks of 2 packets), and
# columns past the last packet.
CASES = {
    "float64": (dict(T=25, n=5, d=9, h=37, q=11), "float64", 1e-10),
    "float64_tails": (dict(T=25, n=7, d=9, h=31, q=11), "float64", 1e-10),
    "float32_tails": (dict(T=25, n=7, d=9, h=37, q=11), "float32", 1e-5),
}


def variant(isa: str, tokens: bool, case: str) -> dict:
    env = dict(os.environ, RNNBPTT_ISA=isa)
    shape, dtype, _ = CASES[case]
    script = SCRIPT.format(tests=os.path.dirname(__file__), tokens=tokens, shape=shape, dtype=dtype)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    if out.returncode != 0 and "this CPU supports" in out.stderr:
        pytest.skip(f"this CPU cannot run the {isa} variant")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)



@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_each_variant_matches_the_reference(isa, tokens, case):
    if rb.build_info()["isa"] == "native":
        pytest.skip("a native build has a single variant")
    result = variant(isa, tokens, case)
    assert result["isa"] == isa
    shape, dtype, tolerance = CASES[case]
    p = make_problem(**shape, dtype=np.dtype(dtype).type, seed=4, tokens=tokens)
    _, expected = reference.regular_grads(p.params64(), p.x, p.targets, 6, 9, h0=p.h0)
    flat = np.concatenate([expected[k].ravel() for k in p.model.parameter_names()])
    assert rel_err(result["grads"], flat) <= tolerance


def test_default_is_the_best_variant_the_cpu_runs():
    info = rb.build_info()
    if info["isa"] == "native":
        pytest.skip("a native build has a single variant")
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx512f" in flags and " avx512bw" in flags and " avx512dq" in flags and " avx512vl" in flags:
        assert info["isa"] == "avx512"
    elif " avx2" in flags and " fma" in flags:
        assert info["isa"] == "avx2"
    assert "SSE2" in info["simd"] or "NEON" in info["simd"]


def test_unknown_isa_is_refused():
    env = dict(os.environ, RNNBPTT_ISA="sse9")
    out = subprocess.run([sys.executable, "-c", "import rnnbptt"], env=env, capture_output=True, text=True)
    if rb.build_info()["isa"] == "native":
        assert out.returncode == 0
    else:
        assert out.returncode != 0
        assert "RNNBPTT_ISA: expected 'baseline', 'avx2' or 'avx512', got 'sse9'" in out.stderr


def test_the_objects_every_variant_shares_hold_no_arithmetic_of_eigens():
    """A dispatching build compiles the bindings and the checkpoint and text code once, at the
    baseline, and links them into every variant's module (CMakeLists.txt). That is safe only
    if they instantiate none of Eigen's arithmetic templates: a weak definition made at the
    baseline could stand in for a variant's own copy. Their symbols say so. (Checked where this
    checkout holds a dispatching pip build, as CI's does.)"""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    objects = sorted(root.glob("build/*/CMakeFiles/rnnbptt_shared.dir/**/*.o"))
    if not objects or shutil.which("nm") is None:
        pytest.skip("no dispatching pip build in this checkout, or no nm")
    # Unity sources: the bindings in two halves, and the checkpoint and text code (CMakeLists.txt).
    included = "".join(path.with_suffix("").read_text() for path in objects if path.with_suffix("").is_file())
    for name in ("bind_model.cpp", "bind_checkpoint.cpp", "io/text.cpp", "checkpoint/validate.cpp",
                 "checkpoint/write.cpp"):
        assert f"/{name}\"" in included, name
    assert "bindings/module.cpp" not in included  # each module its own: its name and instruction set
    allowed = ("aligned_allocator", "throw_std_bad_alloc")
    for path in objects:
        symbols = subprocess.run(["nm", "-C", "--defined-only", str(path)], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
        eigen = [s for s in symbols if "Eigen::" in s and not any(a in s for a in allowed)]
        assert not eigen, f"{path.name}: {eigen[:3]}"
