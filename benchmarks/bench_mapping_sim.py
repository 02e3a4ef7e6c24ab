"""Searched mappings vs SCALE-Sim's fold order on the shipped systolic configs, end to end.

Run::

    python benchmarks/bench_mapping_sim.py            # ResNet-18/50 on every shipped systolic config + sweep
    python benchmarks/bench_mapping_sim.py --no-sweep

Prints per config and model, fold order (``mapping: scalesim``) next to searched (``mapping:
search``, the config's objective): simulate time cold (every cache of the searched path empty,
numba kernels loaded) and warm (same process, second call: memo hits), total latency (cycles) and energy (uJ), and the ratios.
Then ``accelsim sweep``-equivalents (``dse.run_sweep``, ``--workers`` processes, default 1) on ResNet-50, searched and fold
order: array shapes x dataflow x DRAM bandwidth (:data:`SWEEP_AXES`, 54 points, 9 shapes) and the
hard case of a new array shape at every point (:data:`SHAPES_AXES`, 21 points), points/s (caches
start empty and are shared by every point in the process: equal layer shape x hierarchy x
objective is searched once, equal allocation problems are enumerated once).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.mapping import search as S  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402


def clear_caches() -> None:
    """Empty every per-process cache of the searched path (mapping cache, loop-order enumerations,
    lowered programs, fold-order programs, pipeline results)."""
    from accelsim.engines.systolic import engine as EN, searched as SR
    from accelsim.sim import pipeline as P

    S._DEFAULT_CACHE.clear()
    S._ORDER_CACHE.clear()
    SR._LOWERED.clear()
    EN._FOLDS.clear()
    P._MEMO.clear()


def _timed(wl, hw):
    t = time.perf_counter()
    rep = accelsim.simulate(wl, hw)
    return rep, time.perf_counter() - t


def compare(models=("resnet18", "resnet50")) -> None:
    cfgs = [p for p in sorted((ROOT / "hw_configs").glob("*.yaml")) if accelsim.load_hardware(p).kind == "systolic"]
    # load the numba kernels once (not counted: a one-time import cost per process)
    accelsim.simulate(get_model("tiny_cnn"), accelsim.load_hardware(cfgs[0]))
    print(f"{'config':30} {'model':9} {'fold s':>7} {'cold s':>7} {'warm s':>7} {'fold lat':>11} {'srch lat':>11} "
          f"{'lat x':>6} {'fold uJ':>9} {'srch uJ':>9} {'en x':>6}")
    for cfg in cfgs:
        hw = accelsim.load_hardware(cfg)
        for model in models:
            wl = get_model(model)
            fold, t_fold = _timed(wl, hw.model_copy(update={"mapping": "scalesim"}))
            clear_caches()
            srch, t_cold = _timed(wl, hw)
            _, t_warm = _timed(wl, hw)
            print(f"{cfg.name:30} {model:9} {t_fold:7.2f} {t_cold:7.2f} {t_warm:7.2f} {fold.latency_cycles:11,} "
                  f"{srch.latency_cycles:11,} {srch.latency_cycles / fold.latency_cycles:6.3f} "
                  f"{fold.energy_pj / 1e6:9.1f} {srch.energy_pj / 1e6:9.1f} {srch.energy_pj / fold.energy_pj:6.3f}")


#: the sweep of issue 10: 9 array shapes x 2 dataflows x 3 DRAM bandwidths = 54 points, each point a
#: new hierarchy (no two points share array shape, dataflow and bandwidth)
SWEEP_AXES = {"rows": [32, 64, 128], "cols": [32, 64, 128], "dataflow": ["os", "ws"],
              "dram.bw_gbps": [12.8, 25.6, 51.2]}
#: the hard case: every point a new array shape (one dataflow, one bandwidth)
SHAPES_AXES = {"rows": [16, 24, 32, 48, 64, 96, 128], "cols": [32, 64, 128]}


def _run(label: str, axes: dict, workers: int = 1) -> None:
    from accelsim.dse.runner import run_sweep

    spec = {"name": "bench_mapping_" + label.replace(", ", "_"), "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": ["zoo:resnet50"], "axes": axes, "objectives": ["latency_ms", "energy_uj"]}
    clear_caches()
    shapes = len(axes.get("rows", [0])) * len(axes.get("cols", [0]))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        res = run_sweep(spec, Path(d) / "s.sqlite", workers=workers)
        dt = time.perf_counter() - t
    print(f"sweep ResNet-50 {label:16} ({workers} worker{'s' * (workers > 1)}): {res.evaluated} points ({shapes} array shapes) in {dt:.1f} s = "
          f"{res.evaluated / dt:.1f} points/s (mapping cache: {S._DEFAULT_CACHE.misses} searches, "
          f"{S._DEFAULT_CACHE.hits} hits; {len(S._ORDER_CACHE)} loop-order enumerations"
          f"{' in this process' if workers > 1 else ''})")


def sweep(workers: int = 1) -> None:
    _run("search", SWEEP_AXES, workers)
    _run("scalesim", {**SWEEP_AXES, "mapping": ["scalesim"]}, workers)
    _run("search, shapes", SHAPES_AXES, workers)
    _run("scalesim, shapes", {**SHAPES_AXES, "mapping": ["scalesim"]}, workers)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--sweep-only", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="sweep workers (processes)")
    ap.add_argument("--models", nargs="*", default=["resnet18", "resnet50"])
    a = ap.parse_args()
    if not a.sweep_only:
        compare(tuple(a.models))
    if not a.no_sweep:
        sweep(a.workers)
