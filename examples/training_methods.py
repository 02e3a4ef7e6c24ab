"""Every training-time compression method on scikit-learn's digits, with a small CNN and an MLP.

Rerun (seeded, CPU; a few minutes on 2 cores; finished runs are reloaded from their checkpoints)::

    python examples/training_methods.py                       # prints the table
    python examples/training_methods.py --write-docs          # also refreshes docs/training.md
    python examples/training_methods.py --models mlp --methods dst,djpq --fresh

Data: ``sklearn.datasets.load_digits`` (1,797 8x8 images, shipped: no download), a stratified
75/25 split (``random_state = seed``), pixels / 16. Networks: the front-end's ``TinyCNN`` (conv
1->16, conv 16->32, max-pool, fc 512->10; BatchNorm added for Early-Bird) and a 64-128-64-10 MLP.

Columns: test accuracy; sparsity (1 - kept / weights over conv/linear layers); average weight
bits (weight-count weighted, float = 32); BOPs per sample (MACs left after pruning x weight bits x
activation bits, literature.md H-E1); training wall time (sum of the optimisation steps, from the
loop); simulated latency and energy of one inference of the exported workload on ``--hw``
(``accelsim.simulate``; float layers are simulated at the hardware's 8-bit baseline). Every run
writes a checkpoint per epoch under ``--out``/checkpoints (a rerun resumes / reloads it; wall
time is then the checkpointed one).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs" / "training.md"
START, END = "<!-- training-table:start -->", "<!-- training-table:end -->"
METHODS = ("plain", "admm", "admm_struct", "admm_binary", "admm_crossbar", "dst", "earlybird", "djpq", "djpq_pow2",
           "two_stage", "niti")


@dataclass
class Row:
    method: str
    model: str
    accuracy: float
    sparsity: float
    avg_bits: float
    bops: float
    train_s: float
    latency_us: float = float("nan")
    energy_uj: float = float("nan")
    notes: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="cnn,mlp", help="cnn, mlp, resnet, transformer (comma-separated)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--hw", default=str(ROOT / "hw_configs" / "systolic_32x32_is.yaml"))
    ap.add_argument("--out", default=str(ROOT / "out" / "training_methods"))
    ap.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--marker", default="training-table",
                    help="docs/training.md block to replace (<!-- MARKER:start --> ... <!-- MARKER:end -->)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import accelsim
    from accelsim.frontend.recipe import BlockPrune, PatternPrune, QuantSpec, UnstructuredPrune
    from accelsim.frontend.training import admm, crossbar, djpq, dst, earlybird, niti
    from accelsim.frontend.training.data import load_digits_data
    from accelsim.frontend.training.export import export_trained
    from accelsim.frontend.training.loop import Method, TrainConfig, evaluate, train
    from accelsim.frontend.training.metrics import LayerCompression, model_cost
    from accelsim.frontend.training.models import build_model
    from accelsim.hardware.io import load_hardware

    hw = load_hardware(args.hw)
    data = load_digits_data(args.seed)
    ex = data.x_test[:1]
    out = Path(args.out)
    ckdir = out / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    seed = args.seed

    def cfg(name: str, **kw: Any) -> TrainConfig:
        path = ckdir / f"{name}.pt"
        if args.fresh and path.exists():
            path.unlink()
        return TrainConfig(seed=seed, checkpoint=path, progress=not args.quiet, desc=name, **kw)

    def simulate(model: Any, recs: dict[str, LayerCompression], name: str) -> tuple[float, float, Any]:
        wl = export_trained(model, recs, ex, name=name, method=name)
        rep = accelsim.simulate(wl, hw, compare_dense=False)
        return rep.latency_cycles / hw.clock_mhz, rep.energy_pj / 1e6, wl

    rows: list[Row] = []

    def add(method: str, kind: str, res: Any, recs: dict[str, LayerCompression], notes: list[str] | None = None,
            model: Any = None, example: Any = ex) -> Row:
        net = model if model is not None else res.model
        cost = model_cost(net, example, recs)
        lat, en, _ = simulate(net, recs, f"{kind}_{method}")
        row = Row(method, kind, res.test_accuracy, cost.sparsity, cost.avg_bits, cost.bops, res.train_time_s, lat, en,
                  notes or [])
        rows.append(row)
        print(f"  {kind:3s} {method:14s} acc {row.accuracy:.4f}  sparsity {row.sparsity:.3f}  bits {row.avg_bits:5.2f}  "
              f"BOPs {row.bops / 1e6:8.3f} M  train {row.train_s:6.2f} s  {'; '.join(row.notes)}", flush=True)
        return row

    wanted = set(args.methods.split(","))
    for kind in args.models.split(","):
        first, last = {"cnn": ("conv1", "fc"), "mlp": ("fc1", "fc3"), "resnet": ("conv1", "fc"),
                       "transformer": ("embed", "head")}[kind]
        real = kind in ("resnet", "transformer")
        sgd = dict(epochs=30, lr=0.05)
        adam = dict(optimizer="adam", lr=1e-3)
        admm_opt = {k: v for k, v in sgd.items() if k != "epochs"}
        if kind == "resnet":  # residual net: Adam + cosine (SGD 0.05 oscillates on 1,347 images; ADMM keeps SGD)
            adam = dict(optimizer="adam", lr=1e-3, lr_schedule="cosine")
            sgd = dict(epochs=30, **adam)
            admm_opt = dict(lr=0.05, lr_schedule="cosine")
        if kind == "transformer":
            sgd = adam = dict(epochs=40, optimizer="adam", lr=3e-3, lr_schedule="cosine")
            admm_opt = {k: v for k, v in sgd.items() if k != "epochs"}
        if "plain" in wanted:
            res = train(build_model(kind, seed=seed), data, Method(), cfg(f"{kind}_plain", **sgd))
            add("float", kind, res, {})
        if "admm" in wanted:  # progressive unstructured pruning 50% -> 25% -> 10%, then 4-bit weights
            m = admm.ADMM(admm.ADMMConfig(prune=UnstructuredPrune(density=0.1), quant=QuantSpec(weight_bits=4),
                                          stage_densities=[0.5, 0.25, 0.1]))
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_admm", **admm_opt))
            add("admm unstr+int4", kind, res, m.records(res.model), [f"{len(m.phases)} phases"])
        if "admm_struct" in wanted and not real:  # structured: PatDNN patterns (convs) / 4x4 blocks (MLP), pow2 4-bit
            prune: Any = PatternPrune(entries=4, num_patterns=8, kernel_density=0.5) if kind == "cnn" else \
                BlockPrune(density=0.25, block=(4, 4))
            over = {"fc": (BlockPrune(density=0.25, block=(4, 4)), QuantSpec(weight_bits=4, scheme="pow2"))} \
                if kind == "cnn" else {}
            m = admm.ADMM(admm.ADMMConfig(prune=prune, quant=QuantSpec(weight_bits=4, scheme="pow2"), overrides=over,
                                          stage_densities=[0.75, 0.5] if kind == "cnn" else [0.5, 0.25]))
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_admm_struct", lr=0.05))
            label = "admm pattern+pow2" if kind == "cnn" else "admm block+pow2"
            add(label, kind, res, m.records(res.model))
        if "admm_binary" in wanted and not real:  # binary hidden layers, first/last layer 8-bit
            q8 = QuantSpec(weight_bits=8)
            m = admm.ADMM(admm.ADMMConfig(quant=QuantSpec(weight_bits=1, scheme="binary", granularity="channel"),
                                          overrides={first: (None, q8), last: (None, q8)},
                                          quant_admm_epochs=10, quant_retrain_epochs=10))
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_admm_binary", lr=0.05))
            add("admm binary", kind, res, m.records(res.model))
        if "admm_crossbar" in wanted:  # crossbar-aware: 16x16 tiles, 50% kept, 16 conductance levels
            xq = crossbar.ConductanceQuant(levels=16, mismatch_sigma=0.05)
            xp = crossbar.CrossbarBlockPrune(density=0.5, rows=16, cols=16)
            m = admm.ADMM(admm.ADMMConfig(prune=xp, quant=xq, overrides={first: (None, xq)},
                                          stage_densities=[0.75, 0.5]))
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_admm_crossbar", **admm_opt))
            recs = m.records(res.model)
            accs = []
            for s in range(5):  # program the devices with mismatch noise (5 seeded draws)
                noisy = _with_mismatch(res.model, m, xq, s)
                accs.append(evaluate(noisy, data.x_test, data.y_test))
            occ = [crossbar.crossbar_occupancy(m.masks[n], xp.rows, xp.cols) for n in m.masks]
            used, total = sum(o[0] for o in occ), sum(o[1] for o in occ)
            add("admm crossbar", kind, res, recs,
                [f"{used}/{total} crossbars used", f"acc with {xq.mismatch_sigma:.0%} mismatch {sum(accs) / len(accs):.4f}"
                 f" (min {min(accs):.4f})"])
        if "dst" in wanted:
            m = dst.DST(alpha=1e-2)
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_dst", **{**adam, "epochs": 40}))
            dens = ", ".join(f"{n} {d:.2f}" for n, d in m.info()["layer_density"].items())
            add("dst", kind, res, m.records(res.model), [f"density {dens}"])
        if "earlybird" in wanted:
            net = build_model(kind, bn=True, seed=seed)
            m = earlybird.EarlyBird(prune_ratio=0.5, max_search_epochs=30, retrain_epochs=15)
            dense_macs = m.record_dense_macs(net, ex)
            dense_wl_model = build_model(kind, bn=True, seed=seed)
            res = train(net, data, m, cfg(f"{kind}_earlybird", **{k: v for k, v in sgd.items() if k != "epochs"}))
            recs = m.records(res.model)
            tc = m.training_cost(res.model, ex, len(data.y_train), dense_macs)
            info = m.info()
            found = f"EB at epoch {info['found_epoch']}" if info["found_epoch"] else "no EB (pruned at max)"
            row = add("earlybird", kind, res, recs, [found, f"channels {info['kept_channels']}",
                                                     f"train MACs saved {tc['saving']:.2f}x"])
            # simulated training energy: 3x the inference energy per sample (forward + two backward GEMMs)
            _, e_dense, _ = simulate(dense_wl_model, {}, f"{kind}_earlybird_dense")
            n = len(data.y_train)
            eb_e = 3 * n * ((m.pruned_at or 0) * e_dense + m.retrain_epochs * row.energy_uj)
            std_e = 3 * n * (m.max_search_epochs * e_dense + m.retrain_epochs * row.energy_uj)
            row.notes.append(f"sim. train energy {eb_e / 1e6:.2f} J vs {std_e / 1e6:.2f} J ({std_e / eb_e:.2f}x)")
        djpq_rows = {}
        for variant, pow2 in (("djpq", False), ("djpq_pow2", True)):
            if variant not in wanted and not (variant == "djpq" and "two_stage" in wanted):
                continue
            m = djpq.DJPQ(ex, bops_weight=1.0, kl_weight=1e-3, pow2_bits=pow2)
            res = train(build_model(kind, seed=seed), data, m, cfg(f"{kind}_{variant}", **{**adam, "epochs": 30}))
            bits = ", ".join(f"{n} {w}/{a}" for n, (w, a) in m.info()["bits"].items())
            chans = ", ".join(f"{n} {k}" for n, k in m.info()["kept_channels"].items())
            djpq_rows[variant] = (m, res)
            if variant in wanted:
                add("djpq" + (" pow2-bits" if pow2 else ""), kind, res, m.records(res.model),
                    [f"w/a bits {bits}", f"channels {chans}"])
        if "two_stage" in wanted:
            m, res = djpq_rows["djpq"]
            target = m.bops()
            recs = m.records(res.model)
            act = round(sum(model_cost(res.model, ex, recs).per_layer()[n]["act_bits"] * m.macs[n] for n in m.macs)
                        / sum(m.macs.values()))
            base = djpq.two_stage_baseline(build_model(kind, seed=seed), data, ex, target, act,
                                           cfg(f"{kind}_two_stage_prune", **{**adam, "epochs": 15}),
                                           cfg(f"{kind}_two_stage_qat", epochs=15, lr=0.02), kl_weight=1e-3)
            r2 = base["qat_result"]
            r2.train_time_s += base["prune_result"].train_time_s
            add("2-stage (BOPs match)", kind, r2, base["records"],
                [f"BOPs {base['bops'] / 1e6:.3f} M vs DJPQ {target / 1e6:.3f} M", f"act bits {act}",
                 "w bits " + ", ".join(f"{n} {b[0]}" for n, b in base["bits"].items())])
        if "niti" in wanted and not real:
            tw = train(niti.float_twin(kind, seed=seed), data, Method(), cfg(f"{kind}_niti_float", **sgd))
            net = niti.IntNet(kind, seed=seed)
            m = niti.NITI()
            res = train(net, data, m, cfg(f"{kind}_niti", epochs=30))
            fnet = net.to_float()
            add("niti int8", kind, res, m.records(net), [f"float twin (same layers) {tw.test_accuracy:.4f}"], model=fnet)

    text = _table(rows)
    print()
    print(text)
    if args.write_docs:
        extra = f" --marker {args.marker}" if args.marker != "training-table" else ""
        cmd = f"`python examples/training_methods.py --seed {seed} --models {args.models} --hw {Path(args.hw).name}{extra}`"
        _write_docs(text, cmd, args.marker)
    return 0


def _with_mismatch(model: Any, method: Any, spec: Any, seed: int) -> Any:
    """A copy of ``model`` whose crossbar layers hold weights read back from programmed devices."""
    import copy

    import torch

    from accelsim.frontend.training import crossbar

    net = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, (_, quant) in method.targets.items():
            if quant is None:
                continue
            w = net.get_submodule(name).weight
            w.copy_(crossbar.program_crossbar(w, quant, method.masks.get(name), g))
    return net


def _table(rows: list[Row]) -> str:
    head = ("| method | model | accuracy | sparsity | avg bits | BOPs/sample (M) | train time (s) | "
            "sim. latency (us) | sim. energy (uJ) | notes |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r.method} | {r.model} | {r.accuracy:.4f} | {r.sparsity:.3f} | {r.avg_bits:.2f} | "
                     f"{r.bops / 1e6:.3f} | {r.train_s:.1f} | {r.latency_us:.2f} | {r.energy_uj:.3f} | "
                     f"{'; '.join(r.notes)} |")
    return "\n".join(lines)


def _write_docs(text: str, cmd: str, marker: str = "training-table") -> None:
    START, END = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    doc = DOCS.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOCS} has no {START} ... {END} markers")
    stamp = time.strftime("%Y-%m-%d")
    block = f"{START}\nProduced by {cmd} on {stamp}:\n\n{text}\n{END}"
    doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    from accelsim._validation import atomic_write_text

    atomic_write_text(DOCS, doc)
    print(f"updated {DOCS}")


if __name__ == "__main__":
    raise SystemExit(main())
