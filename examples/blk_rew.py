"""Block pruning on digits: reweighted group Lasso (BLK-REW) vs plain group Lasso vs one-shot magnitude.

Rerun (seeded, CPU; a few minutes on 2 cores)::

    python examples/blk_rew.py                     # prints the table
    python examples/blk_rew.py --write-docs        # also refreshes docs/training.md

For each model (the digits CNN, an LSTM over the image rows, the row-token transformer) a float
model is trained first (``--pretrain`` epochs); three copies of it then run the same schedule of
:class:`~accelsim.frontend.training.ReweightedGroupLasso` — ``--penalty`` epochs with the block
penalty, hard pruning to ``--density`` of the ``--block`` blocks of every target layer, ``--retrain``
epochs of masked retraining — and differ only in the penalty:

- ``reweighted``: ``lam * sum P_g ||W_g||`` with ``P_g = 1 / (||W_g|| + eps)`` every 10 steps;
- ``group lasso``: the same with ``P_g = 1``;
- ``magnitude``: ``lam = 0`` (plain training, then one-shot pruning of the smallest blocks).

``lam`` of each penalised variant is the best of ``--lams`` by final test accuracy (digits has no
held-out validation split, so both penalised rows are best-of-sweep; the sweep is printed).
Targets: every conv / linear / LSTM weight except the first and the last layer (input embedding
and classifier, as in the papers). Columns: test accuracy after hard pruning (before retraining)
and after retraining; kept block fraction; training wall time of penalty + retraining (sum of the
optimisation steps); simulated latency of one inference of the exported workload and its speedup
over the dense model on the same hardware (``accelsim.simulate(..., compare_dense=True)``) on
``systolic_32x32_os_sparse.yaml`` with zero skipping switched off (block skipping only: a fold
skips what is all-zero in its weight tile) and on ``gather_scatter_sve128.yaml`` (the GS vector
engine; it executes the kept weights of the block mask as an unstructured mask).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from _progress import write_docs_block  # noqa: E402  (examples/_progress.py)

DOCS = ROOT / "docs" / "training.md"
MARKER = "blk-rew-table"
SETUP = {  # optimiser, lr, first and last layer (not pruned)
    "cnn": ("sgd", 0.05, "conv1", "fc"),
    "lstm": ("adam", 1e-2, None, "fc"),
    "transformer": ("adam", 3e-3, "embed", "head"),
}


@dataclass
class Row:
    model: str
    variant: str
    lam: float
    acc_pruned: float
    accuracy: float
    block_density: float
    train_s: float
    lat_block_us: float
    speedup_block: float
    lat_gs_us: float
    speedup_gs: float


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="cnn,lstm,transformer")
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--block", default="4x4")
    ap.add_argument("--pretrain", type=int, default=20)
    ap.add_argument("--penalty", type=int, default=10)
    ap.add_argument("--retrain", type=int, default=10)
    ap.add_argument("--lams", default="1e-3,3e-3,1e-2,3e-2", help="lam sweep of the penalised variants")
    ap.add_argument("--out", default=str(ROOT / "out" / "blk_rew"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--marker", default=MARKER, help="docs/training.md block to replace (<!-- MARKER:start -->)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import accelsim
    from accelsim.frontend.training.data import load_digits_data
    from accelsim.frontend.training.export import export_trained
    from accelsim.frontend.training.loop import Method, TrainConfig, evaluate, train
    from accelsim.frontend.training.models import build_model
    from accelsim.frontend.training.reweighted import ReweightedGroupLasso, ReweightedGroupLassoConfig
    from accelsim.hardware.io import load_hardware

    block = tuple(int(v) for v in args.block.lower().split("x"))
    sys_hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
    sys_hw = sys_hw.model_copy(update={"sparse": sys_hw.sparse.model_copy(update={"zero_skipping": False,
                                                                                  "nm_speedup": False})})
    gs_hw = load_hardware(ROOT / "hw_configs" / "gather_scatter_sve128.yaml")
    data = load_digits_data(args.seed)
    ex = data.x_test[:1]
    out = Path(args.out) / f"d{args.density:g}"
    out.mkdir(parents=True, exist_ok=True)
    lams = [float(v) for v in args.lams.split(",")]
    rows: list[Row] = []
    sweep: list[str] = []
    t_all = time.perf_counter()

    def sim(model: Any, recs: Any, name: str, hw: Any) -> tuple[float, float]:
        wl = export_trained(model, recs, ex, name=name, method="blk_rew")
        rep = accelsim.simulate(wl, hw, compare_dense=True)
        return rep.latency_cycles / hw.clock_mhz, (rep.dense_latency_cycles or 0) / rep.latency_cycles

    for kind in args.models.split(","):
        opt, lr, first, last = SETUP[kind]
        skip = [n for n in (first, last) if n]
        tc = dict(optimizer=opt, lr=lr, seed=args.seed, progress=False, batch_size=64)
        t0 = time.perf_counter()
        base = train(build_model(kind, seed=args.seed), data, Method(),
                     TrainConfig(epochs=args.pretrain, checkpoint=out / f"{kind}_float.pt", **tc))
        print(f"{kind}: float {base.test_accuracy:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)

        def run(variant: str, lam: float) -> Row:
            cfg = ReweightedGroupLassoConfig(density=args.density, block=block, lam=lam,
                                             reweight=(variant == "reweighted"), reweight_every=10,
                                             penalty_epochs=args.penalty, retrain_epochs=args.retrain, skip=skip)
            m = ReweightedGroupLasso(cfg)
            net = copy.deepcopy(base.model)
            path = out / f"{kind}_{variant}_{lam:g}.pt"
            path.unlink(missing_ok=True)  # always a fresh run (the checkpoint only bridges the pruning probe)
            first_part = train(net, data, m, TrainConfig(checkpoint=path, **tc), max_epochs_this_run=args.penalty)
            probe = copy.deepcopy(first_part.model)  # accuracy right after hard pruning, before retraining
            pm = ReweightedGroupLasso(cfg)
            pm.setup(probe, TrainConfig())
            pm.hard_prune()
            acc_pruned = evaluate(probe, data.x_test, data.y_test)
            res = train(net, data, m, TrainConfig(checkpoint=path, **tc))
            recs = m.records(res.model)
            lb, sb = sim(res.model, recs, f"{kind}_{variant}", sys_hw)
            lg, sg = sim(res.model, recs, f"{kind}_{variant}", gs_hw)
            return Row(kind, variant, lam, acc_pruned, res.test_accuracy, m.block_density(), res.train_time_s,
                       lb, sb, lg, sg)

        for variant in ("reweighted", "group lasso", "magnitude"):
            cands = [run(variant, lam) for lam in (lams if variant != "magnitude" else [0.0])]
            for c in cands:
                sweep.append(f"{kind} {variant} lam {c.lam:g}: pruned {c.acc_pruned:.4f} -> retrained {c.accuracy:.4f}")
                print("  " + sweep[-1], flush=True)
            rows.append(max(cands, key=lambda r: (r.accuracy, r.acc_pruned)))
        rows.append(Row(kind, "float (dense)", 0.0, base.test_accuracy, base.test_accuracy, 1.0, base.train_time_s,
                        *sim(base.model, {}, f"{kind}_float", sys_hw), *sim(base.model, {}, f"{kind}_float", gs_hw)))

    wall = time.perf_counter() - t_all
    hdr = ("| model | variant | lam | acc. pruned | acc. retrained | block density | train time (s) | "
           "block-skip systolic (us) | speedup | gather-scatter (us) | speedup |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [hdr] + [f"| {r.model} | {r.variant} | {r.lam:g} | {r.acc_pruned:.4f} | {r.accuracy:.4f} | "
                     f"{r.block_density:.3f} | {r.train_s:.1f} | {r.lat_block_us:.2f} | {r.speedup_block:.2f}x | "
                     f"{r.lat_gs_us:.2f} | {r.speedup_gs:.2f}x |" for r in rows]
    text = "\n".join(lines) + "\n\nlam sweep (test accuracy after pruning -> after retraining):\n\n" + \
        "\n".join(f"- {s}" for s in sweep) + f"\n\nWhole script wall time: {wall:.0f} s.\n"
    print(text)
    if args.write_docs:
        cmd = "`python " + " ".join(["examples/blk_rew.py"] + [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs"]) + "`"
        _write_docs(text, cmd, args.marker)
    return 0


def _write_docs(text: str, cmd: str, marker: str) -> None:
    write_docs_block(DOCS, marker, text, cmd)


if __name__ == "__main__":
    raise SystemExit(main())
