"""Min-max robust co-design: one systolic array for ResNet-50, MobileNetV2 and BERT-base.

    python examples/minmax_codesign.py            # ~2-3 minutes on 2 cores; writes the table into docs/dse.md

Chooses rows x cols x dataflow x SRAM of one systolic array for three workloads at once, three ways
on the same simulated grid (every design simulated exactly on every workload, stored once):
``aggregate: mean`` (uniform averaging, the seed paper's baseline), ``aggregate: minmax`` (min over
design, max over the simplex of workload weights, solved by alternating best responses and
exponentiated-gradient weight steps; learned weights reported) and the differentiable min-max
game through per-workload surrogates (``search: {method: differentiable}``), which simulates only
its fit samples, held-out points and the designs its trajectory passes. The metric is EDP
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


def sweep(aggregate: str, search: dict | None = None) -> dict:
    sw = {"name": f"robust_{aggregate}" + ("_diff" if search else ""),
          "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"), "workloads": WORKLOADS,
          "axes": {"rows": [16, 32, 64, 128, 256], "cols": [16, 32, 64, 128, 256], "dataflow": ["os", "ws", "is"]},
          "objectives": [{"metric": METRIC, "aggregate": aggregate, "normalize": "best"}]}
    if search:
        sw["search"] = search
    return sw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/tmp/accelsim_minmax_codesign.sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    progress = Progress(total=4)
    runs = []
    for agg, search in (("mean", None), ("minmax", None), ("max", None),
                        ("minmax", {"method": "differentiable", "fit_samples": 16, "holdout": 6, "steps": 300,
                                    "trade_offs": 8, "seed": 0})):
        t0 = time.perf_counter()
        r = run_sweep(sweep(agg, search), args.store, workers=args.workers)
        runs.append((agg + (" (differentiable)" if search else " (grid)"), r, time.perf_counter() - t0))
        progress.step(f"{r.sweep}: {r.evaluated} simulated, {r.skipped} reused")
    grid = load(args.store, sweep="robust_mean")
    best = grid.groupby("workload")[METRIC].min()
    lines = ["| method | design (rows x cols, dataflow) | " + " | ".join(f"{w[4:]} EDP / best" for w in WORKLOADS)
             + " | worst | weights (" + ", ".join(w[4:] for w in WORKLOADS) + ") | simulations | wall s |",
             "| --- | --- | " + " | ".join("---:" for _ in WORKLOADS) + " | ---: | --- | ---: | ---: |"]
    for name, r, wall in runs:
        b = r.best
        p = b["best_params"]
        reg = [b["per_workload"][w] / best[w] for w in WORKLOADS]
        sims = r.evaluated + (r.search_info.get("fit_simulations", 0) + r.search_info.get("holdout_simulations", 0)
                              if "differentiable" in name else 0)
        if "grid" in name:
            sims = len(grid)
        wts = ", ".join(f"{r.workload_weights[w]:.2f}" for w in WORKLOADS)
        lines.append(f"| {name} | {p['rows']} x {p['cols']}, {p['dataflow']} | "
                     + " | ".join(f"{x:.3f}" for x in reg) + f" | {max(reg):.3f} | {wts} | {sims} | {wall:.1f} |")
    diff = runs[-1][1].search_info["surrogate_error"]
    lines.append("")
    lines.append("Differentiable game: surrogate held-out mean |relative error| of EDP "
                 + ", ".join(f"{w[4:]} {diff[w]['mean_rel_err']:.3f} (max {diff[w]['max_rel_err']:.3f})" for w in WORKLOADS)
                 + f" on {diff[WORKLOADS[0]]['points']} fresh designs each.")
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_docs_block(DOCS, "minmax", text, "`python examples/minmax_codesign.py`")


if __name__ == "__main__":
    main()
