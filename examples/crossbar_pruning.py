"""Crossbar-block-pruned vs dense VGG-16 on an ISAAC-like memristor accelerator.

Reproduces the *direction* of the memristor ADMM result (Yuan et al. 2019: crossbar-block
pruned VGG-16 needs far less crossbar area and power; they report 98.29% area and 98.38% power
reduction at 29.81x weight compression) with masks made here in numpy: every conv/linear
weight matrix is cut into the crossbar blocks the hardware uses (``block_shape``), each block
gets a score (the L2 norm of seeded Gaussian weights, drawn as a chi distribution so no weight
tensor is built) and the top ``--keep`` fraction of blocks per layer survive (the first conv,
3x3x3 = 27 rows, stays dense). No training: the masks only have the *structure* of ADMM's
result, so this shows what the hardware saves for a given block-pruning rate, not accuracy.

Run:  python examples/crossbar_pruning.py [--keep 0.0625] [--seed 0] [--plot crossbar_pruning.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.engines.crossbar import block_shape, map_workload  # noqa: E402
from accelsim.hardware.crossbar import CrossbarAccelerator  # noqa: E402
from accelsim.workload import Workload  # noqa: E402
from accelsim.workload.compression import Compression, Sparsity  # noqa: E402
from accelsim.workload.layer import Conv2d, LayerBase, Linear  # noqa: E402


def weight_shape(layer: LayerBase) -> tuple[int, ...]:
    if isinstance(layer, Conv2d):
        return (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_h, layer.kernel_w)
    assert isinstance(layer, Linear)
    return (layer.out_features, layer.in_features)


def block_prune_mask(layer: LayerBase, hw: CrossbarAccelerator, keep: float, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask (PyTorch weight layout) keeping the ``keep`` fraction of crossbar blocks with the largest scores."""
    shape = weight_shape(layer)
    groups = layer.groups if isinstance(layer, Conv2d) else 1
    out_ch, red = shape[0], int(np.prod(shape[1:]))
    per_group = out_ch // groups
    rows, wcols = block_shape(layer, hw)
    rb, cb = -(-red // rows), -(-per_group // wcols)
    r_sizes = np.minimum(rows, red - rows * np.arange(rb))
    c_sizes = np.minimum(wcols, per_group - wcols * np.arange(cb))
    elems = r_sizes[:, None] * c_sizes[None, :]                       # weights per block
    scores = np.sqrt(rng.chisquare(np.broadcast_to(elems, (groups, rb, cb))))  # L2 norm of N(0,1) weights
    n_keep = max(1, int(round(keep * scores.size)))
    cut = np.sort(scores, axis=None)[-n_keep]
    kept = scores >= cut                                               # (groups, rb, cb)
    # expand block decisions to the (out, reduction) matrix, then to the weight layout
    full = np.repeat(np.repeat(kept, r_sizes, axis=1), c_sizes, axis=2)    # (groups, red, per_group)
    mask2d = full.transpose(0, 2, 1).reshape(out_ch, red)
    return np.ascontiguousarray(mask2d.reshape(shape), dtype=np.uint8)


def prune_workload(wl: Workload, hw: CrossbarAccelerator, keep: float, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    layers, masks = [], {}
    first = True
    for layer in wl.layers:
        if not isinstance(layer, (Conv2d, Linear)):
            layers.append(layer)
            continue
        k = 1.0 if first else keep
        first = False
        mask = block_prune_mask(layer, hw, k, rng)
        density = float(mask.mean())
        if density >= 1.0:
            layers.append(layer)
            continue
        rows, wcols = block_shape(layer, hw)
        masks[layer.name] = mask
        sp = Sparsity(kind="block", density=density, block_h=wcols, block_w=rows, mask=layer.name)
        layers.append(layer.model_copy(update={"compression": Compression(sparsity=sp, quant=layer.compression.quant)}))
    pruned = wl.with_layers(layers, name=f"{wl.name}-xbar-block-pruned")
    pruned.attach_masks(masks)
    return pruned


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=float, default=0.0625, help="fraction of crossbar blocks kept per layer (default 1/16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=str(ROOT / "models" / "vgg16.yaml"))
    ap.add_argument("--hw", default=str(ROOT / "hw_configs" / "isaac_like.yaml"))
    ap.add_argument("--plot", default=None, help="write the area/energy comparison figure here")
    args = ap.parse_args(argv)
    if not 0.0 < args.keep <= 1.0:
        ap.error("--keep must be in (0, 1]")

    hw = accelsim.load_hardware(args.hw)
    if not isinstance(hw, CrossbarAccelerator):
        ap.error(f"{args.hw} is not a crossbar config")
    dense = accelsim.load_workload(args.model)
    pruned = prune_workload(dense, hw, args.keep, args.seed)

    rep_d = accelsim.simulate(dense, hw, compare_dense=False)
    rep_p = accelsim.simulate(pruned, hw, compare_dense=False)
    map_d, map_p = map_workload(dense, hw), map_workload(pruned, hw)
    weights_d = sum(layer.weight_words for layer in dense.layers)
    weights_p = sum(int(pruned.mask(layer).sum()) if layer.compression.sparsity.mask else layer.weight_words
                    for layer in pruned.layers)

    def row(name: str, d: float, p: float, unit: str) -> str:
        return f"  {name:<34} {d:>14,.3f} {p:>14,.3f} {unit:<6} ratio {p / d:7.4f}  ({(1 - p / d) * 100:5.1f}% less)"

    print(f"{dense.name} on {hw.summary()}")
    print(f"  kept crossbar blocks per layer: {args.keep:g} (first conv dense), seed {args.seed}")
    print(f"  {'':<34} {'dense':>14} {'pruned':>14}")
    print(row("weights (non-zero)", weights_d / 1e6, weights_p / 1e6, "M"))
    print(row("crossbars allocated", map_d.allocation.crossbars / 1e3, map_p.allocation.crossbars / 1e3, "k"))
    print(f"  {'IMAs / tiles / chips':<34} {map_d.allocation.imas:>6}/{map_d.allocation.tiles}/{map_d.allocation.chips}"
          f"       {map_p.allocation.imas:>6}/{map_p.allocation.tiles}/{map_p.allocation.chips}")
    ad, ap_ = rep_d.area_by_component_mm2, rep_p.area_by_component_mm2
    print(row("crossbar area", ad["crossbar"], ap_["crossbar"], "mm2"))
    xb_parts = ("crossbar", "dac", "adc", "sample_hold")
    print(row("crossbar + DAC/ADC/S&H area", sum(ad.get(c, 0.0) for c in xb_parts), sum(ap_.get(c, 0.0) for c in xb_parts), "mm2"))
    print(row("total area", sum(ad.values()), sum(ap_.values()), "mm2"))
    pd_, pp = hw.power_mw_of(map_d.allocation), hw.power_mw_of(map_p.allocation)
    print(row("table power of crossbar parts", sum(pd_.get(c, 0.0) for c in xb_parts) / 1e3, sum(pp.get(c, 0.0) for c in xb_parts) / 1e3, "W"))
    print(row("table power of allocated hardware", sum(pd_.values()) / 1e3, sum(pp.values()) / 1e3, "W"))
    sd, sp = rep_d.summary(), rep_p.summary()
    print(row("energy per inference", sd["energy_uj"], sp["energy_uj"], "uJ"))
    print(row("average power", sd["energy_pj"] / sd["latency_ms"] * 1e-9, sp["energy_pj"] / sp["latency_ms"] * 1e-9, "W"))
    print(row("latency", sd["latency_ms"], sp["latency_ms"], "ms"))
    print("  memristor ADMM (Yuan et al. 2019), VGG-16: 98.29% less area, 98.38% less power at 29.81x compression")
    if args.plot:
        from accelsim.plot.area import plot_area

        plot_area({"dense": rep_d, f"pruned (keep {args.keep:g})": rep_p}, args.plot,
                  title=f"{dense.name}: crossbar-block pruning on {hw.name}")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
