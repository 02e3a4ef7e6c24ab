"""Searched mappings vs SCALE-Sim's fold order on the shipped systolic configs, end to end.

Run::

    python benchmarks/bench_mapping_sim.py            # ResNet-18/50 on every shipped systolic config + sweep
    python benchmarks/bench_mapping_sim.py --no-sweep
    python benchmarks/bench_mapping_sim.py --sweep-only --workers 2 [--big]

Prints per config and model, fold order (``mapping: scalesim``) next to searched (``mapping:
search``, the config's objective): simulate time cold (every cache of the searched path empty,
numba kernels loaded) and warm (same process, second call: memo hits), total latency (cycles) and energy (uJ), and the ratios.
Then ``accelsim sweep``-equivalents (``dse.run_sweep``, ``--workers`` processes, default 1) on ResNet-50, searched and fold
order: array shapes x dataflow x DRAM bandwidth (:data:`SWEEP_AXES`, 54 points, 9 shapes) and the
hard case of a new array shape at every point (:data:`SHAPES_AXES`, 21 points); with ``--big`` also
the shipped 1,800-point ``sweeps/systolic_resnet50.yaml`` (a few minutes). Points/s (caches start
empty and are shared by every point in a process: equal layer shape x hierarchy x objective is
searched once, equal allocation problems are enumerated once) and, summed over the worker
processes, the mapping searches: distinct hierarchies and search keys, searches run (more than
the distinct keys when a search was repeated in a second worker), cache hits; and how many chunks
an idle worker took away from their locality's worker (``dse.executors.LocalExecutor``); with workers,
a second line splits the parent's CPU into what it spends once before forking and the rest per point.
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
    """Empty every per-process cache of the searched path (mapping cache, spatial candidates, allocation
    problems, loop-order enumerations, bandwidth siblings, lowered programs, DRAM traffic, fold-order programs,
    pipeline results)."""
    from accelsim.engines.systolic import engine as EN, searched as SR
    from accelsim.mapping import lowering as LW
    from accelsim.sim import pipeline as P

    S._DEFAULT_CACHE.clear()
    S._ORDER_CACHE.clear()
    S._CANDIDATES.clear()
    S._PROBLEMS.clear()
    SR._SIBLINGS.clear()
    SR._SIBLING_SPECS.clear()
    SR._LOWERED.clear()
    LW._TRAFFIC.clear()
    EN._FOLDS.clear()
    EN._BOUNDS.clear()
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


def _cache_stats() -> dict:
    """This process's searched-mapping caches: search keys held, searches run (misses), hits."""
    res = S._DEFAULT_CACHE.results
    return {"keys": set(res), "searches": S._DEFAULT_CACHE.misses, "hits": S._DEFAULT_CACHE.hits,
            "orders": set(S._ORDER_CACHE), "cpu_s": time.process_time()}


def _run_spec(label: str, spec: dict | str | Path, workers: int = 1) -> None:
    """One sweep into a fresh store, caches empty; prints points/s and the mapping caches of every worker."""
    from accelsim.dse import evaluate
    from accelsim.dse.executors import InlineExecutor, LocalExecutor
    from accelsim.dse.runner import run_sweep

    clear_caches()
    evaluate._EVALUATORS.clear()  # cold (forked workers would inherit this process's caches)
    ex = InlineExecutor() if workers == 1 else LocalExecutor(workers)
    try:
        with tempfile.TemporaryDirectory() as d:
            t, c = time.perf_counter(), time.process_time()
            res = run_sweep(spec, Path(d) / "s.sqlite", executor=ex)
            dt, cpu_parent = time.perf_counter() - t, time.process_time() - c
        stats = [_cache_stats()] if workers == 1 else ex.each_worker(_cache_stats)
    finally:
        ex.close()
    keys = set().union(*(s["keys"] for s in stats))
    searches = sum(s["searches"] for s in stats)
    hits = sum(s["hits"] for s in stats)
    cpu = cpu_parent if workers == 1 else sum(s["cpu_s"] for s in stats)  # a forked worker's clock starts at 0
    n = max(1, res.evaluated)
    per_worker = f" ({' + '.join(format(s['cpu_s'], '.1f') for s in stats)} s)" if workers > 1 else ""
    print(f"sweep ResNet-50 {label:18} ({workers} worker{'s' * (workers > 1)}): {res.evaluated} points in {dt:.1f} s = "
          f"{res.evaluated / dt:.1f} points/s; CPU {1000 * cpu / n:.0f} ms/point in workers"
          f"{per_worker}"
          f"{f' + {1000 * cpu_parent / n:.1f} in the parent' if workers > 1 else ''}; mapping searches: {len({k[1] for k in keys})} hierarchies, "
          f"{len(keys)} distinct, {searches} run ({searches - len(keys)} repeated in another worker), {hits} hits; "
          f"loop-order enumerations {'+'.join(str(len(s['orders'])) for s in stats)} "
          f"({len(set().union(*(s['orders'] for s in stats)))} distinct)"
          f"{f'; {ex.stolen} chunks stolen by an idle worker' if workers > 1 else ''}", flush=True)
    if workers > 1:
        print(f"  parent CPU: {ex.prefork_cpu_s:.2f} s once before forking (imports, numba kernels the workers "
              f"inherit) + {1000 * (cpu_parent - ex.prefork_cpu_s) / n:.1f} ms/point (chunks, results, store)", flush=True)


def _run(label: str, axes: dict, workers: int = 1) -> None:
    spec = {"name": "bench_mapping_" + label.replace(", ", "_"), "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": ["zoo:resnet50"], "axes": axes, "objectives": ["latency_ms", "energy_uj"]}
    _run_spec(label, spec, workers)


#: the shipped 1,800-point sweep (25 array shapes x 2 dataflows x 4 SRAM sizes x 3 DRAM bandwidths x
#: 3 DRAM technologies; the last only re-prices)
BIG_SWEEP = ROOT / "sweeps" / "systolic_resnet50.yaml"


def bare_loop(axes: dict, label: str) -> None:
    """The sweep's points as a plain loop of ``accelsim.simulate`` in this process (no store, no
    workers, no program cache): the floor the sweep machinery's overhead is measured against."""
    from accelsim.dse.space import DesignSpace, hardware_of, workload_fingerprint
    from accelsim.dse.spec import load_sweep

    wl = get_model("resnet50")
    sw = load_sweep({"name": "bare", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
                     "workloads": ["zoo:resnet50"], "axes": axes, "objectives": ["latency_ms"]})
    space = DesignSpace(sw, {"zoo:resnet50": workload_fingerprint(wl)})
    hws = [hardware_of(p.hardware) for i, prm in enumerate(space.iter_params()) for p in space.points_for(i, prm)]
    clear_caches()
    t, c = time.perf_counter(), time.process_time()
    for hw in hws:
        accelsim.simulate(wl, hw, compare_dense=False).metrics()
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"bare loop       {label:18} (1 process): {len(hws)} points in {dt:.1f} s = {len(hws) / dt:.1f} points/s; "
          f"CPU {1000 * cpu / len(hws):.0f} ms/point", flush=True)


def sweep(workers: int = 1, big: bool = False, shapes: bool = True) -> None:
    _run("search", SWEEP_AXES, workers)
    _run("scalesim", {**SWEEP_AXES, "mapping": ["scalesim"]}, workers)
    bare_loop({**SWEEP_AXES, "mapping": ["scalesim"]}, "scalesim")
    if shapes:
        _run("search, shapes", SHAPES_AXES, workers)
        _run("scalesim, shapes", {**SHAPES_AXES, "mapping": ["scalesim"]}, workers)
    if big:
        _run_spec("1800 (shipped)", BIG_SWEEP, workers)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--sweep-only", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="sweep workers (processes)")
    ap.add_argument("--big", action="store_true", help=f"also the shipped 1,800-point sweep ({BIG_SWEEP.name}; minutes)")
    ap.add_argument("--no-shapes", action="store_true", help="skip the 21-shape sweeps")
    ap.add_argument("--models", nargs="*", default=["resnet18", "resnet50"])
    a = ap.parse_args()
    if not a.sweep_only:
        compare(tuple(a.models))
    if not a.no_sweep:
        sweep(a.workers, big=a.big, shapes=not a.no_shapes)
