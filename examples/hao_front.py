"""HAO completion on a ZU3EG: measured accuracy predictor + bit widths in the integer program -> accuracy-latency front.

Rerun (seeded, CPU, well under a minute on 2 cores)::

    python examples/hao_front.py                 # prints the tables, writes hao_predictor.json
    python examples/hao_front.py --write-docs    # also refreshes the tables in docs/fpga.md

1. Train :class:`accelsim.frontend.models.TinyCNN` on scikit-learn digits (Adam, 30 epochs).
2. *Measure* the test accuracy of every per-layer bit-width assignment (weights and activations of
   a layer at the same width, from ``--bits``; fake quantisation of
   :func:`accelsim.frontend.layerwise.fake_quant_model`).
3. Fit the additive accuracy predictor (:mod:`accelsim.dse.fpga.predictor`) and report its error on
   the held-out 25 % of the measured configurations.
4. Overlay front (one datapath width, each point re-simulated by the FPGA engine) and pipeline
   front (per-stage bit widths as integer-program decisions, epsilon-constraint, exact) on the
   ZU3EG under ``--budget``; each front point's accuracy is then *measured* next to its prediction,
   and the fronts (with their dominated evaluated points) are stored in ``--store`` with the
   measured accuracy (``measured_accuracy``, also the ``accuracy`` column).
The same front from the command line:
``accelsim fpga-optimize -w zoo:tiny_cnn --device zu3eg --front --predictor hao_predictor.json``.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

from _common import ROOT, example_parser, report  # noqa: E402  (examples/ is on sys.path when run as a script)
from _progress import Progress  # noqa: E402

DOCS = ROOT / "docs" / "fpga.md"
MARKER = "hao-front"


def main() -> int:
    ap = example_parser(__doc__)
    ap.add_argument("--bits", default="2,3,4,8")
    ap.add_argument("--budget", default="dsp=64,bram18=100", help="ZU3EG resource budget of the overlay")
    ap.add_argument("--pipeline-budgets", default="dsp=16;dsp=64;bram18=12;bram18=16,dsp=16",
                    help="';'-separated ZU3EG budgets for the pipeline fronts")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--predictor-out", default="hao_predictor.json")
    ap.add_argument("--store", default="hao_front.sqlite",
                    help="results store the fronts are written to, with measured accuracies (accelsim results / plot)")
    args = ap.parse_args()

    from accelsim.dse.fpga.cli import _load_fpga
    from accelsim.dse.fpga.front import default_front_name, overlay_front, pipeline_front, store_front
    from accelsim.dse.fpga.ilp import PipelineSpace
    from accelsim.dse.fpga.predictor import fit_predictor
    from accelsim.frontend import imaging as im
    from accelsim.frontend import layerwise as lw
    from accelsim.frontend.models import TinyCNN
    from accelsim.frontend.training import load_digits_data
    from accelsim.workload.zoo import get_model

    bits = tuple(int(b) for b in args.bits.split(","))
    progress = Progress(total=6)
    im.set_threads(1)
    data = load_digits_data(seed=args.seed)
    import torch

    torch.manual_seed(args.seed)
    net = lw.train_classifier(TinyCNN(), data.x_train, data.y_train, epochs=args.epochs, seed=args.seed)
    float_acc = lw.classifier_accuracy(net, data.x_test, data.y_test)
    progress.step(f"trained TinyCNN: float accuracy {float_acc:.4f}")
    names = ["conv1", "conv2", "fc"]
    calib = data.x_train[:256]

    measured: dict[tuple, float] = {}

    def measure(cfg: dict[str, tuple[int, int]]) -> float:
        key = tuple(cfg[n] for n in names)
        if key not in measured:
            measured[key] = lw.classifier_accuracy(lw.fake_quant_model(net, cfg, calib), data.x_test, data.y_test)
        return measured[key]

    samples, accs = [], []
    for combo in itertools.product(bits, repeat=len(names)):
        cfg = {n: (b, b) for n, b in zip(names, combo)}
        samples.append({n: {"weight_bits": b, "act_bits": b} for n, b in zip(names, combo)})
        accs.append(measure(cfg))
    progress.step(f"measured {len(accs)} bit-width configurations")
    pred = fit_predictor(samples, accs, seed=args.seed)
    pred.meta = {"model": "tiny_cnn", "float_accuracy": float_acc, "measured": len(accs)}
    pred.save(args.predictor_out)
    progress.step(f"fitted the predictor (held-out MAE {pred.holdout_mae:.4f}); wrote {args.predictor_out}")

    wl = get_model("tiny_cnn")
    base = _load_fpga("zu3eg", args.budget, None)
    ov = overlay_front(wl, base, pred, bits)
    progress.step("overlay front solved and simulated")
    fronts = [(b, pipeline_front(wl, _load_fpga("zu3eg", b, None), pred, PipelineSpace(bits=bits)))
              for b in args.pipeline_budgets.split(";")]
    progress.step(f"{len(fronts)} pipeline fronts solved")
    stored = [store_front(ov, wl, base, args.store, measured=lambda bits: measure({n: bits[n] for n in names}))]
    for b, pf in fronts:  # one sweep per budget; every front and dominated point with its measured accuracy
        stored.append(store_front(pf, wl, _load_fpga("zu3eg", b, None), args.store,
                                  default_front_name(wl.name, pf.device, f"pipeline_{b}"),
                                  measured=lambda bits: measure({n: bits[n] for n in names})))

    uni = ", ".join(f"all {b}-bit {accs[samples.index({n: {'weight_bits': b, 'act_bits': b} for n in names})]:.4f}"
                    for b in bits)
    out = [f"TinyCNN on digits: float accuracy {float_acc:.4f} (measured {uni}); {len(accs)} measured configurations "
           f"(bits {', '.join(map(str, bits))} per layer); predictor held-out error on {pred.n_test} configurations: "
           f"MAE {pred.holdout_mae:.4f}, max {pred.holdout_max_abs_error:.4f} (fitted on {pred.n_train}).", "",
           f"Overlay front on ZU3EG, budget {args.budget} (one MILP per datapath width, every point simulated):", "",
           "| datapath | array | MAC/DSP | DSP | estimate cycles | simulated latency | predicted acc. | measured acc. |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in ov.points:
        b = p.bits["conv1"][0]
        meas = measure({n: p.bits[n] for n in names})
        out.append(f"| {b}x{b}-bit | {p.detail['array']} | {p.detail['macs_per_dsp']:g} | {p.detail['dsp']} | {p.detail['est_cycles']:,} | "
                   f"{p.simulated['latency_ms'] * 1e3:.2f} us | {p.predicted_accuracy:.4f} | {meas:.4f} |")
    out += ["", "Pipeline fronts (per-stage bit widths as integer-program decisions, exact epsilon-constraint):", "",
            "| budget | frame interval | fps | DSP | BRAM18 | bits conv1/conv2/fc | predicted acc. | measured acc. | solves, time |",
            "|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for b, pf in fronts:
        for p in pf.points:
            meas = measure({n: p.bits[n] for n in names})
            out.append(f"| {b} | {p.latency_cycles:,} cycles | {p.detail['fps']:,.0f} | {p.detail['dsp']} | "
                       f"{p.detail['bram18']} | {'/'.join(str(p.bits[n][0]) for n in names)} | "
                       f"{p.predicted_accuracy:.4f} | {meas:.4f} | {pf.solves}, {pf.seconds:.2f} s |")
    out += ["", f"Stored in `{Path(args.store).name}` (`--store`) with measured accuracies: "
            + ", ".join(f"`{r.sweep}` {r.requested} points" for r in stored)
            + " (front points `on_front` 1, dominated evaluated ones 0; `accelsim results` / `accelsim plot`)."]
    progress.step("measured the accuracy of every front point")
    text = "\n".join(out)
    return report(text, args.write_docs, DOCS, MARKER, Path(__file__).name)


if __name__ == "__main__":
    sys.exit(main())
