"""NRMF (nuclear-norm rank minimisation, global elastic ranks) vs VBMF-selected ranks on digits.

Rerun (seeded, CPU; a few minutes on 2 cores)::

    python examples/nrmf_vs_vbmf.py                   # prints the tables
    python examples/nrmf_vs_vbmf.py --write-docs      # also refreshes docs/training.md and the plot

Per model (the digits CNN: conv2 + fc; the row-token transformer: its 12 encoder linear layers;
the first and last layer stay dense) a float model is trained first (``--pretrain`` epochs). Then:

- **VBMF**: every target layer is factorised with the front-end's ``FactorizeSpec(rank_rule="vbmf")``
  (Tucker-2 with VBMF ranks of both unfoldings for convs, SVD with the VBMF rank for linears; a
  layer whose factors would not be smaller stays dense, as in the compressor) and fine-tuned for
  ``--reg + --finetune`` epochs (the same training budget as NRMF).
- **NRMF** at the budget VBMF landed on and at ``--budgets``: ``--reg`` epochs of proximal SVT with
  the global rank decision every epoch, ``--finetune`` epochs of rank-projected fine-tuning, then
  factorisation (:class:`~accelsim.frontend.training.NRMF`).

Columns: weights of the target layers after factorisation / their dense weights; test accuracy
right after factorisation (VBMF) or right after truncating the regularised weights to the decided ranks
(NRMF), and after fine-tuning;
the ranks; training wall time (optimisation steps); simulated latency of one inference of the exported
workload on ``--hw``. The cross-layer rank correlation is the Spearman correlation, over all
unfoldings of the target layers, between the ranks (as fractions of the full rank) NRMF chose at
VBMF's budget and the VBMF ranks; "NRMF budget consistency" correlates NRMF's ranks at the two
largest budgets (undefined, "nan", when either side has constant ranks or < 3 unfoldings). "rank
changes" counts the epochs whose rank decision differed from the previous one (the first compared
with the decision before training).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from _progress import write_docs_block  # noqa: E402  (examples/_progress.py)

DOCS = ROOT / "docs" / "training.md"
PLOT = ROOT / "docs" / "img" / "nrmf_vs_vbmf.png"
MARKER = "nrmf-table"
SETUP = {  # optimiser, lr, NRMF lam, layers kept dense
    "cnn": ("sgd", 0.05, 0.1, ["conv1"]),
    "transformer": ("adam", 3e-3, 1.0, ["embed", "head"]),
}


@dataclass
class Point:
    model: str
    method: str
    param_fraction: float
    acc_before: float
    accuracy: float
    train_s: float
    latency_us: float
    ranks: dict[str, list[int]] = field(default_factory=dict)
    rank_changes: int | None = None


def _spearman(a: list[float], b: list[float]) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")  # undefined: fewer than 3 unfoldings or constant ranks
    return float(spearmanr(a, b).statistic)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="cnn,transformer")
    ap.add_argument("--pretrain", type=int, default=20)
    ap.add_argument("--reg", type=int, default=10)
    ap.add_argument("--finetune", type=int, default=5)
    ap.add_argument("--budgets", default="0.05,0.1,0.2,0.35")
    ap.add_argument("--tail-scale", type=float, default=2.0, help="NRMF threshold multiplier beyond the rank")
    ap.add_argument("--hw", default=str(ROOT / "hw_configs" / "systolic_32x32_is.yaml"))
    ap.add_argument("--out", default=str(ROOT / "out" / "nrmf_vs_vbmf"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import accelsim
    from accelsim.frontend.factorization import factor_record, factorize_conv, factorize_linear, parts
    from accelsim.frontend.recipe import FactorizeSpec
    from accelsim.frontend.training.data import load_digits_data
    from accelsim.frontend.training.export import export_trained
    from accelsim.frontend.training.loop import Method, TrainConfig, evaluate, train
    from accelsim.frontend.training.metrics import LayerCompression
    from accelsim.frontend.training.models import build_model
    from accelsim.frontend.training.nrmf import NRMF, NRMFConfig, dense_params, nrmf_targets, project_rank
    from accelsim.hardware.io import load_hardware

    nn = torch.nn
    hw = load_hardware(args.hw)
    data = load_digits_data(args.seed)
    ex = data.x_test[:1]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budgets = [float(b) for b in args.budgets.split(",")]
    points: list[Point] = []
    corr_lines: list[str] = []
    t_all = time.perf_counter()

    def latency(model: Any, recs: dict[str, LayerCompression], name: str) -> float:
        wl = export_trained(model, recs, ex, name=name, method=name)
        return accelsim.simulate(wl, hw, compare_dense=False).latency_cycles / hw.clock_mhz

    for kind in args.models.split(","):
        opt, lr, lam, skip = SETUP[kind]
        tc = dict(optimizer=opt, lr=lr, seed=args.seed, progress=False, batch_size=64)
        base = train(build_model(kind, seed=args.seed), data, Method(),
                     TrainConfig(epochs=args.pretrain, checkpoint=out / f"{kind}_float.pt", **tc))
        targets = nrmf_targets(base.model, None, skip)
        shapes = {n: tuple(base.model.get_submodule(n).weight.shape) for n in targets}
        dense = sum(dense_params(s) for s in shapes.values())
        points.append(Point(kind, "float", 1.0, base.test_accuracy, base.test_accuracy, base.train_time_s,
                            latency(base.model, {}, f"{kind}_float")))
        print(f"{kind}: float {base.test_accuracy:.4f}; {len(targets)} target layers, {dense} weights", flush=True)

        # --- VBMF ranks (front-end factorisation), then plain fine-tuning ---------------------------------
        net = copy.deepcopy(base.model)
        recs: dict[str, LayerCompression] = {}
        vbmf_ranks: dict[str, list[int]] = {}
        held = 0
        for n in targets:
            m = net.get_submodule(n)
            if isinstance(m, nn.Conv2d):
                new = factorize_conv(m, FactorizeSpec(method="tucker2", rank_rule="vbmf"))
                original = {"in_channels": m.in_channels, "out_channels": m.out_channels,
                            "kernel_h": m.kernel_size[0], "kernel_w": m.kernel_size[1]}
            else:
                new = factorize_linear(m, FactorizeSpec(method="svd", rank_rule="vbmf"))
                original = {"in_features": m.in_features, "out_features": m.out_features}
            rec = factor_record(new)
            r = list(rec["ranks"]) if "ranks" in rec else [rec["rank"]]
            vbmf_ranks[n] = r
            after = sum(p.numel() for pn, p in new.named_parameters() if "weight" in pn)
            if after >= dense_params(shapes[n]):
                held += dense_params(shapes[n])
                continue
            held += after
            parent, _, child = n.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, new)
            for i, c in enumerate(parts(new)):
                recs[f"{n}.{c}"] = LayerCompression(name=f"{n}.{c}", unit_fields={"group": n, "factor": dict(rec),
                                                                                   "part": i, "original": original})
        acc0 = evaluate(net, data.x_test, data.y_test)
        ft = train(net, data, Method(), TrainConfig(epochs=args.reg + args.finetune, **tc))
        vbmf_budget = held / dense
        points.append(Point(kind, "vbmf", vbmf_budget, acc0, ft.test_accuracy, ft.train_time_s,
                            latency(ft.model, recs, f"{kind}_vbmf"), vbmf_ranks))
        print(f"  vbmf: weights {vbmf_budget:.3f}, acc {acc0:.4f} -> {ft.test_accuracy:.4f}, ranks {vbmf_ranks}", flush=True)

        # --- NRMF at VBMF's budget and the grid -----------------------------------------------------------------
        nrmf_pts: dict[float, Point] = {}
        for b in sorted(set([round(vbmf_budget, 4)] + budgets)):
            m = NRMF(NRMFConfig(budget=b, lam=lam, tail_scale=args.tail_scale, reg_epochs=args.reg,
                                finetune_epochs=args.finetune, skip=skip))
            net = copy.deepcopy(base.model)
            path = out / f"{kind}_nrmf_{b:g}.pt"
            path.unlink(missing_ok=True)
            train(net, data, m, TrainConfig(checkpoint=path, **tc), max_epochs_this_run=args.reg)
            probe = copy.deepcopy(net)  # accuracy right after truncation to the decided ranks
            with torch.no_grad():
                for n in targets:
                    if m.is_factorised(n):
                        w = probe.get_submodule(n).weight
                        w.copy_(project_rank(w, m.ranks[n]))
            acc_reg = evaluate(probe, data.x_test, data.y_test)
            res = train(net, data, m, TrainConfig(checkpoint=path, **tc))
            frac = m.param_count()[0] / dense
            changes = sum(1 for x, y in zip([m.initial_ranks] + [h["ranks"] for h in m.log], [h["ranks"] for h in m.log])
                          if {k: list(v) for k, v in x.items()} != y)
            p = Point(kind, f"nrmf (budget {b:g})", frac, acc_reg, res.test_accuracy, res.train_time_s,
                      latency(res.model, m.records(res.model), f"{kind}_nrmf"), {n: list(r) for n, r in m.ranks.items()},
                      changes)
            points.append(p)
            nrmf_pts[b] = p
            print(f"  nrmf budget {b:g}: weights {frac:.3f}, acc {acc_reg:.4f} -> {res.test_accuracy:.4f}, "
                  f"rank changes over epochs {changes}, ranks {p.ranks}", flush=True)

        def fractions(ranks: dict[str, list[int]]) -> list[float]:
            vals = []
            for n in targets:
                s = shapes[n]
                full = [min(s[0], dense_params(s) // s[0]), min(s[1], dense_params(s) // s[1])] if len(s) == 4 else [min(s)]
                vals += [r / f for r, f in zip(ranks[n], full)]
            return vals

        at_vbmf = nrmf_pts[round(vbmf_budget, 4)]
        rho = _spearman(fractions(at_vbmf.ranks), fractions(vbmf_ranks))
        top2 = sorted(nrmf_pts)[-2:]
        lo, hi = nrmf_pts[top2[0]], nrmf_pts[top2[-1]]
        rho_b = _spearman(fractions(lo.ranks), fractions(hi.ranks))
        n_unf = len(fractions(vbmf_ranks))
        corr_lines.append(f"- {kind}: Spearman(NRMF ranks at VBMF's budget, VBMF ranks) over {n_unf} unfoldings = "
                          f"{rho:.2f}; NRMF budget consistency (budget {top2[0]:g} vs {top2[-1]:g}) = {rho_b:.2f}")

    wall = time.perf_counter() - t_all
    lines = ["| model | method | weights kept | acc. before fine-tune | acc. final | train time (s) | sim. latency (us) | "
             "rank changes | ranks |", "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        ranks = ", ".join(f"{n}: {'x'.join(str(v) for v in r)}" for n, r in p.ranks.items())
        lines.append(f"| {p.model} | {p.method} | {p.param_fraction:.3f} | {p.acc_before:.4f} | {p.accuracy:.4f} | "
                     f"{p.train_s:.1f} | {p.latency_us:.2f} | {'' if p.rank_changes is None else p.rank_changes} | {ranks} |")
    text = "\n".join(lines) + "\n\nCross-layer rank correlation:\n\n" + "\n".join(corr_lines) + \
        f"\n\nWhole script wall time: {wall:.0f} s. Plot: `docs/img/nrmf_vs_vbmf.png`.\n"
    print(text)
    _plot(points, PLOT if args.write_docs else out / "nrmf_vs_vbmf.png")
    if args.write_docs:
        cmd = "`python " + " ".join(["examples/nrmf_vs_vbmf.py"] + [a for a in (argv if argv is not None else sys.argv[1:])
                                                                    if a != "--write-docs"]) + "`"
        _write_docs(text, cmd)
    return 0


def _plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({p.model for p in points}, key=lambda m: [q.model for q in points].index(m))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.2), dpi=80, squeeze=False)
    for ax, kind in zip(axes[0], models):
        nr = sorted((p for p in points if p.model == kind and p.method.startswith("nrmf")), key=lambda p: p.param_fraction)
        ax.plot([p.param_fraction for p in nr], [p.accuracy for p in nr], "o-", label="NRMF (global elastic ranks)")
        for p in points:
            if p.model == kind and p.method == "vbmf":
                ax.plot([p.param_fraction], [p.accuracy], "s", color="C3", label="VBMF ranks + fine-tune")
            if p.model == kind and p.method == "float":
                ax.axhline(p.accuracy, color="grey", ls="--", lw=1, label="float")
        ax.set_title(kind)
        ax.set_xlabel("weights kept (target layers)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    print(f"wrote {path}")


def _write_docs(text: str, cmd: str) -> None:
    write_docs_block(DOCS, MARKER, text, cmd)


if __name__ == "__main__":
    raise SystemExit(main())
