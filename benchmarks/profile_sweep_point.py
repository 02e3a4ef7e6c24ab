"""Where a ResNet-50 sweep point's time goes, part by part (searched and fold order).

Run::

    python benchmarks/profile_sweep_point.py            # both mappings
    python benchmarks/profile_sweep_point.py scalesim   # fold order only
    python benchmarks/profile_sweep_point.py --share search  # points of one shape share their DRAM-bandwidth searches

The 54 points of ``bench_mapping_sim.SWEEP_AXES`` (9 array shapes x os/ws x 3 DRAM bandwidths)
through one :class:`~accelsim.program_cache.ProgramCache` with a timing key per point, as the
sweep runner evaluates them (every cache empty at the start, numba kernels loaded). Prints the
process CPU time per point (less sensitive to other processes than wall time; the wall time too)
and, per part, the CPU milliseconds per point and calls per point (parts nest: ``engine.lower``
holds ``search_best``, ``fold``, ``lower_mapping``; ``simulate_program`` is the SimPy pipeline
including its memo), and a digest of the points' metrics (equal digests: equal numbers).
"""
from __future__ import annotations

import collections
import functools
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accelsim  # noqa: E402
import accelsim.api as API  # noqa: E402
from accelsim import program_cache as PC  # noqa: E402
from accelsim.engines.systolic import engine as EN, searched as SR  # noqa: E402
from accelsim.mapping import fast as F  # noqa: E402
from accelsim.sim import run as RUN  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402
from bench_mapping_sim import SWEEP_AXES, clear_caches  # noqa: E402

CPU_S: collections.Counter = collections.Counter()
CALLS: collections.Counter = collections.Counter()
#: (module or class, attribute, label) of the timed parts
PARTS = [
    (PC, "lower_layer", "lower_layer"), (EN.SystolicEngine, "lower", "engine.lower"),
    (SR, "search_best", "search_best"), (SR, "search_layer", "search_layer"), (F.FastEvaluator, "batch", "numba batch"),
    (EN.SystolicEngine, "_lower_folds", "fold"), (SR, "lower_mapping", "lower_mapping"), (SR, "_estimate", "_estimate"),
    (RUN, "simulate_program", "simulate_program"), (API, "_unpriced_stats", "_unpriced_stats"),
    (API, "layer_energy_pj", "layer_energy_pj"),
]


def _wrap(owner, name: str, label: str) -> None:
    f = getattr(owner, name)

    @functools.wraps(f)
    def timed(*a, **k):
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            CPU_S[label] += time.process_time() - t
            CALLS[label] += 1
    setattr(owner, name, timed)


def run(mapping: str, share: bool = False) -> None:
    """``share``: as a sweep runs them, each point's searches also cover the other DRAM bandwidths
    (``SIBLING_DRAM_BW_GBPS``); the metrics digest must not change."""
    from accelsim.engines.systolic.searched import SIBLING_DRAM_BW_GBPS

    token = SIBLING_DRAM_BW_GBPS.set(tuple(SWEEP_AXES["dram.bw_gbps"]) if share else ())
    try:
        _run(mapping, share)
    finally:
        SIBLING_DRAM_BW_GBPS.reset(token)


def _run(mapping: str, share: bool) -> None:
    wl = get_model("resnet50")
    base = accelsim.load_hardware(ROOT / "hw_configs" / "systolic_128x128_os.yaml").model_copy(update={"mapping": mapping})
    accelsim.simulate(get_model("tiny_cnn"), base)  # numba kernels loaded, not counted
    pts = [base.model_copy(update={"rows": r, "cols": c, "dataflow": df,
                                   "dram": base.dram.model_copy(update={"bw_gbps": bw})})
           for r in SWEEP_AXES["rows"] for c in SWEEP_AXES["cols"] for df in SWEEP_AXES["dataflow"]
           for bw in SWEEP_AXES["dram.bw_gbps"]]
    clear_caches()
    CPU_S.clear()
    CALLS.clear()
    cache = PC.ProgramCache()
    t, tw = time.process_time(), time.perf_counter()
    metrics = [accelsim.simulate(wl, hw, compare_dense=False, program_cache=cache, timing_key=str(i)).metrics()
               for i, hw in enumerate(pts)]
    n = len(pts)
    cpu, wall = (time.process_time() - t) / n, (time.perf_counter() - tw) / n
    print(f"mapping: {mapping}{' (DRAM-bandwidth searches shared)' if share else ''}: {n} points, {1000 * cpu:.1f} ms CPU per point ({1 / cpu:.1f} points/s of CPU), "
          f"{1000 * wall:.1f} ms wall")
    for label in sorted(CPU_S, key=lambda k: -CPU_S[k]):
        print(f"  {label:18} {1000 * CPU_S[label] / n:8.2f} ms/point  {CALLS[label] / n:6.1f} calls/point")
    print("  metrics digest", hashlib.sha1(json.dumps(metrics, sort_keys=True, default=str).encode()).hexdigest()[:16])


if __name__ == "__main__":
    for owner, name, label in PARTS:
        _wrap(owner, name, label)
    args = [a for a in sys.argv[1:] if a != "--share"]
    for m in args or ["search", "scalesim"]:
        run(m, "--share" in sys.argv)
