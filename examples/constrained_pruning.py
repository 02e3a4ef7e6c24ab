"""Latency-constrained per-layer pruning ratios: the simulator is the latency model (SR + classifier).

Rerun (seeded, CPU, about a minute on 2 cores)::

    python examples/constrained_pruning.py                # prints the tables
    python examples/constrained_pruning.py --write-docs   # also refreshes the tables in docs/dse.md

For each network and each latency target (a fraction of the dense network's simulated latency on
``--hw``, default the sparse 32x32 systolic array with zero skipping):

1. :func:`accelsim.dse.constrained_density_search` picks one density per layer maximising an
   accuracy proxy subject to simulated latency <= target, and re-simulates the result. Two
   proxies: the retained weight magnitude of the whole network
   (:func:`accelsim.frontend.layerwise.magnitude_scores`) and the measured one-shot sensitivity
   (:func:`accelsim.frontend.layerwise.sensitivity_scores`: PSNR / accuracy on 300 training images
   with only that layer pruned to that density, summed over layers);
2. the trained network is magnitude-pruned to those densities and fine-tuned with the masks fixed
   (``--finetune-epochs``), then *measured*: PSNR/SSIM on held-out digits for the 2x
   super-resolution generator, top-1 accuracy for the TinyCNN classifier;
3. baseline: the same network pruned *uniformly* to the densest level that meets the target
   (found with the simulator too), fine-tuned the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import ROOT, example_parser, report  # noqa: E402  (examples/ is on sys.path when run as a script)
from _progress import Progress  # noqa: E402

DOCS = ROOT / "docs" / "dse.md"
MARKER = "constrained-pruning"
LEVELS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125, 0.0625)


def main() -> int:
    ap = example_parser(__doc__)
    ap.add_argument("--hw", default=str(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml"))
    ap.add_argument("--targets", default="0.8,0.6,0.45", help="latency targets as fractions of the dense latency")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--sr-width", type=int, default=24)
    args = ap.parse_args()

    import copy

    import torch

    from accelsim.api import simulate
    from accelsim.dse import apply_densities, constrained_density_search
    from accelsim.errors import InfeasibleError
    from accelsim.frontend import imaging as im
    from accelsim.frontend import layerwise as lw
    from accelsim.frontend.models import TinyCNN
    from accelsim.frontend.training import load_digits_data
    from accelsim.hardware.io import load_hardware
    from accelsim.workload.zoo import get_model

    im.set_threads(1)
    hw = load_hardware(args.hw)
    fracs = [float(f) for f in args.targets.split(",")]
    progress = Progress(total=2 + 2 * len(fracs))

    def ms(wl) -> float:  # noqa: ANN001
        r = simulate(wl, hw, compare_dense=False)
        return r.latency_cycles / (r.clock_mhz * 1e3)

    # --- the two networks ---
    sr = im.load_sr_digits(seed=args.seed)
    spec = im.uniform_spec(args.sr_width)
    gen = im.train_generator(im.make_generator(spec, args.seed), sr, epochs=args.epochs, seed=args.seed)
    sr_wl = im.gen_workload(spec, name="sr_generator")
    digits = load_digits_data(seed=args.seed)
    torch.manual_seed(args.seed)
    cnn = lw.train_classifier(TinyCNN(), digits.x_train, digits.y_train, epochs=30, seed=args.seed)
    progress.step("trained the SR generator and the classifier")

    def sr_quality(net, densities) -> str:  # noqa: ANN001
        net = copy.deepcopy(net)
        masks = lw.magnitude_masks(net, densities)
        lw.apply_masks(net, masks)
        im.train_generator(net, sr, epochs=args.finetune_epochs, lr=1e-3, seed=args.seed, masks=masks)
        p, s = im.evaluate_generator(net, sr)
        return f"{p:.2f} dB / {s:.4f}"

    def cls_quality(net, densities) -> str:  # noqa: ANN001
        net = copy.deepcopy(net)
        masks = lw.magnitude_masks(net, densities)
        lw.apply_masks(net, masks)
        lw.train_classifier(net, digits.x_train, digits.y_train, epochs=args.finetune_epochs, lr=1e-3,
                            seed=args.seed, masks=masks)
        return f"{lw.classifier_accuracy(net, digits.x_test, digits.y_test):.4f}"

    p0, s0 = im.evaluate_generator(gen, sr)
    nb = im.nearest_baseline(sr)
    cases = [("SR generator " + spec.label(), gen, sr_wl, sr_quality, f"{p0:.2f} dB / {s0:.4f}", "PSNR / SSIM"),
             ("TinyCNN classifier", cnn, get_model("tiny_cnn"), cls_quality,
              f"{lw.classifier_accuracy(cnn, digits.x_test, digits.y_test):.4f}", "top-1")]
    progress.step("measured the dense networks")
    out = [f"Hardware: {hw.name}. Nearest-neighbour upscaling: {nb[0]:.2f} dB / {nb[1]:.4f}. Density levels "
           f"{', '.join(f'{x:g}' for x in LEVELS)}; fine-tuning {args.finetune_epochs} epochs with masks fixed.", ""]
    for title, net, wl, quality, dense_q, metric in cases:
        dense_ms = ms(wl)
        names = [l.name for l in wl.layers if l.op in ("conv2d", "linear")]
        # the sensitivity proxy is measured on training pairs (the test split only scores the results)
        sr_calib = im.SRData(sr.lr_train, sr.hr_train, sr.lr_train[:300], sr.hr_train[:300])
        one_shot = (lambda m: im.evaluate_generator(m, sr_calib)[0]) if net is gen else (
            lambda m: lw.classifier_accuracy(m, digits.x_train[:300], digits.y_train[:300]))
        proxies = {"magnitude": lw.magnitude_scores(net, LEVELS), "sensitivity": lw.sensitivity_scores(net, LEVELS, one_shot)}
        out += [f"**{title}** (dense: {dense_ms * 1e3:.2f} us simulated, {metric} {dense_q})", "",
                f"| target | proxy | re-simulated | per-layer density ({', '.join(names)}) | {metric} "
                f"| uniform density meeting target | uniform {metric} |",
                "|---:|---|---:|---|---:|---:|---:|"]
        for f in fracs:
            target = dense_ms * f
            uni = next((d for d in LEVELS if ms(apply_densities(wl, {n: d for n in names})) <= target), None)
            uq = quality(net, {n: uni for n in names}) if uni is not None else "-"
            for pname, scores in proxies.items():
                try:
                    res = constrained_density_search(wl, hw, target, scores, levels=LEVELS)
                except InfeasibleError as exc:
                    out.append(f"| {target * 1e3:.2f} us | {pname} | infeasible: {exc} | | | | |")
                    continue
                q = quality(net, res.densities)
                out.append(f"| {target * 1e3:.2f} us ({f:.0%}) | {pname} | {res.latency_ms * 1e3:.2f} us | "
                           f"{', '.join(f'{res.densities[n]:g}' for n in names)} | {q} | "
                           f"{uni if uni is not None else 'none'} | {uq} |")
            progress.step(f"{title}: target {f:.0%} -> {res.latency_ms * 1e3:.2f} us, {metric} {q}")
        out.append("")
    text = "\n".join(out).rstrip()
    return report(text, args.write_docs, DOCS, MARKER, Path(__file__).name)


if __name__ == "__main__":
    sys.exit(main())
