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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/tmp/accelsim_minmax_codesign.sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):  # a fresh store: the first grid run simulates every point
        Path(args.store + suffix).unlink(missing_ok=True)
    progress = Progress(total=7)
    out: list[str] = []
    for budget, metric in ((True, METRIC), (False, METRIC)):
        runs = []
        methods = [("mean", None), ("minmax", None), ("max", None)]
        if not budget:
            methods.append(("minmax", {"method": "differentiable", "fit_samples": 10, "holdout": 4, "steps": 300,
                                       "trade_offs": 9, "seed": 0}))
        for agg, search in methods:
            t0 = time.perf_counter()
            r = run_sweep(sweep(agg, search, metric, budget), args.store, workers=args.workers)
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
                       "refinement rounds); initial surrogate held-out mean |relative error| of EDP "
                       + ", ".join(f"{w[4:]} {diff[w]['mean_rel_err']:.3f} (max {diff[w]['max_rel_err']:.3f})"
                                   for w in WORKLOADS)
                       + f" on {diff[WORKLOADS[0]]['points']} fresh designs each. Wall times of grid runs after the "
                       "first reuse its stored points (same hardware points, every metric stored).")
    lines = out
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_docs_block(DOCS, "minmax", text, "`python examples/minmax_codesign.py`")


if __name__ == "__main__":
    main()
