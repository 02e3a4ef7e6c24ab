"""Min-max robust co-design: one systolic array for ResNet-50, MobileNetV2 and BERT-base.

    python examples/minmax_codesign.py            # ~2-3 minutes on 2 cores; writes the table into docs/dse.md

Chooses rows x cols x dataflow x SRAM of one systolic array for three workloads at once, three ways
on the same simulated grid (every design simulated exactly on every workload, stored once):
``aggregate: mean`` (uniform averaging, the seed paper's baseline), ``aggregate: minmax`` (min over
design, max over the simplex of workload weights, solved by alternating best responses and
exponentiated-gradient weight steps; learned weights reported) and the differentiable min-max
game through per-workload surrogates (``search: {method: differentiable}``), which simulates only
its fit samples, held-out points and the designs its refinement rounds pick (at most 9). The metric is EDP
(energy x latency), normalised per workload by its best design (``normalize: best``), so the
worst case is the largest regret.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _progress import Progress, write_docs_block  # noqa: E402  (examples/_progress.py)

from accelsim.dse import load, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "dse.md"
WORKLOADS = ["zoo:resnet50", "zoo:mobilenet_v2", "zoo:bert_base"]
METRIC = "edp_uj_ms"
DIFF_SEARCH = {"method": "differentiable", "fit_samples": 10, "holdout": 4, "steps": 300, "trade_offs": 9, "seed": 0}


def sweep(aggregate: str, search: dict | None = None, metric: str = METRIC, budget: bool = False) -> dict:
    sw = {"name": f"robust_{metric}_{aggregate}" + ("_diff" if search else "") + ("_4096pe" if budget else ""),
          "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"), "workloads": WORKLOADS,
          "axes": {"rows": [16, 32, 64, 128, 256], "cols": [16, 32, 64, 128, 256], "dataflow": ["os", "ws", "is"]},
          "objectives": [{"metric": metric, "aggregate": aggregate, "normalize": "best"}]}
    if budget:  # at most 4,096 PEs (2 ops x PEs x 1 GHz): the array's shape and dataflow are the trade-off
        sw["constraints"] = ["peak_gops <= 8192"]
    if search:
        sw["search"] = search
    return sw


def table(runs: list, best, metric: str) -> list[str]:
    lines = ["| method | design (rows x cols, dataflow) | " + " | ".join(f"{w[4:]} / best" for w in WORKLOADS)
             + " | worst | weights (" + ", ".join(w[4:] for w in WORKLOADS) + ") | simulations | wall s |",
             "| --- | --- | " + " | ".join("---:" for _ in WORKLOADS) + " | ---: | --- | ---: | ---: |"]
    for name, r, wall, sims in runs:
        b = r.best
        p = b["best_params"]
        reg = [b["per_workload"][w] / best[w] for w in WORKLOADS]
        wts = ", ".join(f"{r.workload_weights[w]:.2f}" for w in WORKLOADS)
        lines.append(f"| {name} | {p['rows']} x {p['cols']}, {p['dataflow']} | "
                     + " | ".join(f"{x:.3f}" for x in reg) + f" | {max(reg):.3f} | {wts} | {sims} | {wall:.1f} |")
    return lines


def replay_seeds(grid, search: dict, seeds: range) -> list[str]:
    """Replay the differentiable game (same settings, other seeds) on the grid's stored values: no new
    simulation; how often it finds the grid's min-max design, against random search with as many designs."""
    import numpy as np

    from accelsim.dse import load_sweep
    from accelsim.dse.minmax import distinct_sampler, solve_game, surrogate_game
    from accelsim.dse.relax import HardwareSpace

    hs = HardwareSpace(load_sweep(sweep("minmax", search)).hardware_axes)
    table = {(int(r.rows), int(r.cols), r.dataflow, r.workload): float(getattr(r, METRIC)) for r in grid.itertuples()}
    keys = sorted({k[:3] for k in table})
    full = np.array([[table[k + (w,)] for w in WORKLOADS] for k in keys])
    regret = dict(zip(keys, (full / full.min(axis=0)).max(axis=1)))
    optimum = min(regret.values())

    def evaluate(ps):
        return np.array([[table[(p["rows"], p["cols"], p["dataflow"], w)] for w in WORKLOADS] for p in ps])

    found, used = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        gs = surrogate_game(hs, evaluate, distinct_sampler(lambda: hs.sample(rng)), aggregate="minmax", normalize="best",
                            fit_samples=search["fit_samples"], holdout=search["holdout"], refine=search["trade_offs"],
                            steps=search["steps"], lr=0.05, weight_lr=0.5)
        p = gs.designs[solve_game(gs.M, "max", normalize="best").best]
        found.append(regret[(p["rows"], p["cols"], p["dataflow"])])
        used.append(len(gs.designs))
    hits = sum(abs(f - optimum) < 1e-12 for f in found)
    n = max(used)
    return [f"Seed robustness (the game replayed on the grid's stored values, seeds {seeds.start}-{seeds.stop - 1}, "
            f"no new simulation): it finds the grid's min-max design ({optimum:.3f}) with {hits} of {len(found)} seeds "
            f"(worst case mean {np.mean(found):.3f}, max {max(found):.3f}), using {min(used)}-{n} designs; random "
            f"search with {n} of the {len(keys)} designs contains it with probability {n / len(keys):.2f}."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/tmp/accelsim_minmax_codesign.sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    diff_store = args.store + ".differentiable"  # its own fresh store: its wall time includes its simulations
    for suffix in ("", "-wal", "-shm"):  # fresh stores: the first grid run simulates every point
        Path(args.store + suffix).unlink(missing_ok=True)
        Path(diff_store + suffix).unlink(missing_ok=True)
    progress = Progress(total=7)
    out: list[str] = []
    for budget, metric in ((True, METRIC), (False, METRIC)):
        runs = []
        methods = [("mean", None), ("minmax", None), ("max", None)]
        if not budget:
            methods.append(("minmax", DIFF_SEARCH))
        for agg, search in methods:
            t0 = time.perf_counter()
            r = run_sweep(sweep(agg, search, metric, budget), diff_store if search else args.store, workers=args.workers)
            wall = time.perf_counter() - t0
            # every design a method asks for, on every workload (the grid's are simulated once and reused by the
            # next runs; the differentiable game's fit, held-out and refinement designs are stored points too)
            sims = r.requested
            runs.append((agg + (" (differentiable)" if search else " (grid)"), r, wall, sims))
            progress.step(f"{r.sweep}: {r.evaluated} simulated, {r.skipped} reused")
        grid = load(args.store, sweep=runs[0][1].sweep, status="ok")
        if budget:
            grid = grid[grid["peak_gops"] <= 8192]
        best = grid.groupby("workload")[metric].min()
        title = ("EDP under a 4,096-PE budget (`constraints: [\"peak_gops <= 8192\"]`), normalised per workload by its "
                 "best feasible design:" if budget else "EDP (energy x latency), no budget, normalised per workload by "
                 "its best design:")
        out += [title, ""] + table(runs, best, metric) + [""]
        if not budget:
            info = runs[-1][1].search_info
            diff = info["surrogate_error"]
            k = len(WORKLOADS)
            out.append(f"Differentiable game: {info['designs']} designs simulated on every workload "
                       f"({info['fit_simulations'] // k} fit, {info['holdout_simulations'] // k} held-out, "
                       f"{info['designs'] - (info['fit_simulations'] + info['holdout_simulations']) // k} picked by the "
                       "refinement rounds, in a fresh store); initial surrogate held-out mean |relative error| of EDP "
                       + ", ".join(f"{w[4:]} {diff[w]['mean_rel_err']:.3f} (max {diff[w]['max_rel_err']:.3f})"
                                   for w in WORKLOADS)
                       + f" on {diff[WORKLOADS[0]]['points']} fresh designs each. Wall times of grid runs after the "
                       "first reuse its stored points (same hardware points, every metric stored).")
    out += [""] + replay_seeds(load(args.store, sweep=runs[0][1].sweep, status="ok"), DIFF_SEARCH, range(20))
    lines = out
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_docs_block(DOCS, "minmax", text, "`python examples/minmax_codesign.py`")


if __name__ == "__main__":
    main()
