"""DNA-style differentiable network/accelerator co-search vs NSGA-II at an equal number of simulations.

    python examples/dna_search.py            # a few minutes on 2 cores; writes the table into docs/dse.md
    python examples/dna_search.py --constraint 'latency_ms <= 0.0012'   # without vs with a constraint

Space: per-layer compression choices of the digits TinyCNN (conv1, conv2, fc each pick an
unstructured pruning density in {0.25, 0.5, 1.0} and weight bits in {4, 8}: 6^3 = 216 networks)
x a sparse systolic array (rows, cols in {8, 16, 32, 64}, zero skipping on/off): 6,912 designs.
Objectives: digits test accuracy (max, measured by the front-end after compression and
fine-tuning) and latency (min, simulated).

- ``search: {method: differentiable}`` fits per-layer latency surrogates on real simulations and
  an additive accuracy predictor on measured recipes, descends the relaxed problem for several
  accuracy/latency weightings, snaps and re-simulates each result exactly (all stored);
- NSGA-II (optuna) searches the same space -- the per-layer choices are sweep axes
  ``recipe.layers[<layer>].<section>.<field>`` -- with population x generations equal to the
  differentiable search's number of real simulations.

Hypervolume over (accuracy, latency) of every stored point of each run, with a common reference
point (lowest accuracy and highest latency seen by either run, widened by 1 %), and wall time
(each run has its own accuracy cache, so both pay for their training).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _progress import Progress, write_docs_block  # noqa: E402  (examples/_progress.py)

from accelsim.dse import hypervolume, load, non_dominated_mask, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "dse.md"
LAYERS = ("conv1", "conv2", "fc")
CHOICES = {"prune.density": [0.25, 0.5, 1.0], "quantize.weight_bits": [4, 8]}
HW_AXES = {"rows": [8, 16, 32, 64], "cols": [8, 16, 32, 64], "sparse.zero_skipping": [True, False]}


def base(name: str) -> dict:
    return {"name": name, "hardware": str(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml"),
            "compression": {"model": "tiny_cnn", "seed": 0, "train": {"epochs": 4, "finetune_epochs": 1},
                            "recipe": {"prune": {"kind": "unstructured", "density": 1.0},
                                       "quantize": {"weight_bits": 8, "act_bits": 8}}},
            "objectives": ["accuracy", "latency_ms"]}


def dna_spec(name: str) -> dict:
    """The differentiable search of this example (per-layer choices as ``recipe.*`` axes)."""
    dna = base(name)
    dna["axes"] = {**{f"recipe.{k}": v for k, v in CHOICES.items()}, **HW_AXES}
    dna["search"] = {"method": "differentiable", "fit_samples": 10, "holdout": 8, "accuracy_samples": 10,
                     "steps": 300, "trade_offs": 8, "seed": 0}
    return dna


def compare_constraint(out: Path, text: str, workers: int, docs: bool) -> None:
    """The differentiable search without and with ``text`` (one accuracy cache: trainings are shared)."""
    from accelsim.dse.spec import parse_constraint

    c = parse_constraint(text)
    rows = [f"| constraint | designs re-simulated | meeting `{text}` | front points | best accuracy on front | "
            f"lowest latency on front (ms) | {c.metric} range of designs | wall s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for i, cons in enumerate([[], [text]]):
        sw = dna_spec(f"dna_c{i}")
        sw["compression"]["cache_dir"] = str(out / "accuracy_cache")
        sw["constraints"] = cons
        t0 = time.perf_counter()
        r = run_sweep(sw, out / f"dna_c{i}.sqlite", workers=workers)
        wall = time.perf_counter() - t0
        df = load(out / f"dna_c{i}.sqlite", sweep=sw["name"], status="ok")
        meets = int(df[c.metric].map(c.ok).sum())
        assert meets == sum(r.search_info["feasible"]) or not cons  # the hard check = this recount
        fr = r.front
        best = f"{fr['accuracy'].max():.4f}" if len(fr) else "-"
        low = f"{fr['latency_ms'].min():.4g}" if len(fr) else "-"
        rows.append(f"| {text if cons else 'none'} | {len(df)} | {meets} | {len(fr)} | {best} | {low} | "
                    f"{df[c.metric].min():.4g} .. {df[c.metric].max():.4g} | {wall:.1f} |")
        print(rows[-1])
    text_out = "\n".join(rows)
    print(text_out)
    if docs:
        write_docs_block(DOCS, "dna-constraint", text_out, f"`python examples/dna_search.py --constraint '{text}'`")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/accelsim_dna_search")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--constraint", help="instead: the differentiable search without and with this sweep constraint "
                    "(e.g. 'energy_uj <= 0.5'), re-simulated designs checked against it")
    args = ap.parse_args()
    out = Path(args.dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    progress = Progress(total=2)

    if args.constraint:
        compare_constraint(out, args.constraint, args.workers, not args.no_docs)
        return
    dna = dna_spec("dna")
    t0 = time.perf_counter()
    r_dna = run_sweep(dna, out / "dna.sqlite", workers=args.workers)
    wall_dna = time.perf_counter() - t0
    info = r_dna.search_info
    sims = info["fit_simulations"] + info["holdout_simulations"] + r_dna.evaluated
    progress.step(f"differentiable: {sims} simulations, {wall_dna:.1f} s")

    nsga = base("nsga2")
    nsga["axes"] = {**{f"recipe.layers[{ly}].{k}": v for ly in LAYERS for k, v in CHOICES.items()}, **HW_AXES}
    pop = 12
    nsga["search"] = {"method": "nsga2", "population": pop, "generations": max(1, math.ceil(sims / pop)), "seed": 0}
    t0 = time.perf_counter()
    r_ns = run_sweep(nsga, out / "nsga2.sqlite", workers=args.workers)
    wall_ns = time.perf_counter() - t0
    progress.step(f"nsga2: {r_ns.evaluated} simulations, {wall_ns:.1f} s")

    frames = {"differentiable": load(out / "dna.sqlite", sweep="dna", status="ok"),
              "NSGA-II": load(out / "nsga2.sqlite", sweep="nsga2", status="ok")}
    allv = np.vstack([f[["accuracy", "latency_ms"]].to_numpy(float) for f in frames.values()])
    ref = [-(allv[:, 0].min() - 0.01), allv[:, 1].max() * 1.01]
    rows = ["| method | real simulations | accuracy evaluations | points on own front | hypervolume | best accuracy "
            "| lowest latency (ms) | wall s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    walls = {"differentiable": wall_dna, "NSGA-II": wall_ns}
    nsim = {"differentiable": sims, "NSGA-II": r_ns.requested}  # NSGA-II asks; repeats are looked up
    nacc = {"differentiable": info["accuracy_evaluations"] + r_dna.evaluated,
            "NSGA-II": len(frames["NSGA-II"][[c for c in frames["NSGA-II"].columns if c.startswith("recipe.")]]
                           .drop_duplicates())}
    for name, f in frames.items():
        v = f[["accuracy", "latency_ms"]].to_numpy(float)
        mins = np.column_stack([-v[:, 0], v[:, 1]])
        hv = hypervolume(mins, ref)
        rows.append(f"| {name} | {nsim[name]} | {nacc[name]} | {int(non_dominated_mask(mins).sum())} | {hv:.4g} | "
                    f"{v[:, 0].max():.4f} | {v[:, 1].min():.4g} | {walls[name]:.1f} |")
    e = info["surrogate_error"]["latency_ms"]
    a = info["accuracy_error"]
    rows += ["", f"Reference point: accuracy {-ref[0]:.4f}, latency {ref[1]:.4g} ms. Differentiable search: "
             f"{info['fit_simulations']} fit + {info['holdout_simulations']} held-out + {r_dna.evaluated} final "
             f"simulations; latency surrogate held-out mean |relative error| {e['mean_rel_err']:.3f} (max "
             f"{e['max_rel_err']:.3f}, {e['points']} per-layer-mixed networks on fresh hardware); accuracy predictor "
             f"leave-one-out mean |error| {a['mean_abs_err']:.4f} (max {a['max_abs_err']:.4f}, {a['points']} recipes); "
             f"gradient search itself {info['search_s']:.1f} s incl. fitting and training."]
    text = "\n".join(rows)
    print(text)
    if not args.no_docs:
        write_docs_block(DOCS, "dna", text, "`python examples/dna_search.py`")


if __name__ == "__main__":
    main()
