"""Activation-sparsity trends side by side (the tables of docs/sparsity.md), in one run.

1. Eyeriss-style zero gating: AlexNet's five conv layers on ``eyeriss_like_gating.yaml`` vs its
   dense peer ``eyeriss_like_dense.yaml`` with every conv's input density swept (the first conv's
   input is the image: density 1). PE energy = MAC + PE registers; cycles must not change.
2. SCNN-style intersection skipping: VGG-16's conv layers on ``scnn_like_skipping.yaml`` vs the
   dense peer ``systolic_32x32_os_256kb.yaml`` (same array, SRAM, DRAM; both on searched mappings) over a grid of weight x
   activation densities (uniform model), stall-free compute speedup, latency speedup and energy
   ratio next to the ideal ``1 / (d_w d_i)``.
3. Statistical vs actual-mask paths: random masks at densities 0.1..0.9 on a linear layer, a
   padded and an unpadded 3x3 conv and a 1x1 conv (OS zero skipping on inputs, 16x16 array), on
   the fold order and on searched mappings -- the difference in compute cycles.

Run: /work/venv/bin/python examples/act_sparsity_trends.py [--write-docs]   (~1 min)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import accelsim  # noqa: E402
from accelsim.hardware.io import hardware_from_dict, load_hardware  # noqa: E402
from accelsim.workload import Workload  # noqa: E402
from accelsim.workload.compression import Compression, Sparsity  # noqa: E402
from accelsim.workload.layer import Conv2d, Linear  # noqa: E402
from accelsim.workload.zoo import alexnet, vgg16  # noqa: E402

DOCS = ROOT / "docs" / "sparsity.md"


def _convs(wl: Workload, d_in: float, d_w: float = 1.0, first_dense: bool = True) -> Workload:
    layers = []
    for i, layer in enumerate(x for x in wl.layers if x.op == "conv2d"):
        sp = Sparsity(kind="unstructured", density=d_w) if d_w < 1.0 else Sparsity()
        d = 1.0 if (first_dense and i == 0) else d_in
        layers.append(layer.model_copy(update={"compression": Compression(act_density=d, sparsity=sp)}))
    return Workload(name=wl.name + "-convs", layers=layers)


def _pe(rep) -> float:  # type: ignore[no-untyped-def]
    return sum(s.energy_by_component_pj.get("mac", 0.0) + s.energy_by_component_pj.get("pe_rf", 0.0) for s in rep.layers)


def part1() -> str:
    gate, dense = (load_hardware(ROOT / "hw_configs" / f"eyeriss_like_{n}.yaml") for n in ("gating", "dense"))
    rows = ["| input density (conv2-5) | PE energy saving | MAC energy saving | total energy saving | "
            "DRAM bytes (gate / dense) | compute cycles (gate / dense) |", "|---|---|---|---|---|---|"]
    for d in (1.0, 0.8, 0.6, 0.55, 0.5, 0.4, 0.2):
        wl = _convs(alexnet(), d)
        g, n = accelsim.simulate(wl, gate, compare_dense=False), accelsim.simulate(wl, dense, compare_dense=False)
        mac = lambda r: sum(s.energy_by_component_pj.get("mac", 0.0) for s in r.layers)  # noqa: E731
        cyc = lambda r: sum(s.compute_cycles for s in r.layers)  # noqa: E731
        dram = lambda r: sum(s.dram_read_bytes + s.dram_write_bytes for s in r.layers)  # noqa: E731
        rows.append(f"| {d:.2f} | {1 - _pe(g) / _pe(n):.1%} | {1 - mac(g) / mac(n):.1%} | "
                    f"{1 - g.summary()['energy_pj'] / n.summary()['energy_pj']:.1%} | {dram(g) / dram(n):.3f} | "
                    f"{cyc(g) / cyc(n):.3f} |")
    return "\n".join(rows)


def part2() -> str:
    skip, dense = load_hardware(ROOT / "hw_configs" / "scnn_like_skipping.yaml"), \
        load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml")
    rows = ["| d_w | d_i | ideal 1/(d_w d_i) | compute speedup | latency speedup | energy (skip / dense) |",
            "|---|---|---|---|---|---|"]
    base = vgg16()
    for d_w in (1.0, 0.5, 0.3, 0.1):
        for d_i in (1.0, 0.5, 0.3, 0.1):
            wl = _convs(base, d_i, d_w, first_dense=False)
            s, n = accelsim.simulate(wl, skip, compare_dense=False), accelsim.simulate(wl, dense, compare_dense=False)
            cs = sum(x.compute_cycles for x in n.layers) / sum(x.compute_cycles for x in s.layers)
            ls = n.summary()["latency_cycles"] / s.summary()["latency_cycles"]
            rows.append(f"| {d_w:.1f} | {d_i:.1f} | {1 / (d_w * d_i):.1f} | {cs:.2f} | {ls:.2f} | "
                        f"{s.summary()['energy_pj'] / n.summary()['energy_pj']:.3f} |")
    return "\n".join(rows)


#: part 3's layers: (label, mask shape, layer factory)
PATH_CASES = (
    ("linear 1024x256 -> 32", (1024, 256),
     lambda c: Linear(name="l", in_features=256, out_features=32, tokens=1024, compression=c)),
    ("conv 32ch 28x28 3x3 pad 1 -> 32", (1, 32, 28, 28),
     lambda c: Conv2d(name="l", in_channels=32, out_channels=32, in_h=28, in_w=28, kernel=3, padding=1, compression=c)),
    ("conv 32ch 28x28 3x3 pad 0 -> 32", (1, 32, 28, 28),
     lambda c: Conv2d(name="l", in_channels=32, out_channels=32, in_h=28, in_w=28, kernel=3, compression=c)),
    ("conv 64ch 56x56 1x1 -> 32", (1, 64, 56, 56),
     lambda c: Conv2d(name="l", in_channels=64, out_channels=32, in_h=56, in_w=56, kernel=1, compression=c)),
)


def part3() -> str:
    rows = ["| mapping | layer | density | cycles, density model | cycles, actual mask | difference |",
            "|---|---|---|---|---|---|"]
    for mapping in ("scalesim", "search"):
        hw = hardware_from_dict({"kind": "systolic", "rows": 16, "cols": 16, "dataflow": "os", "stall_model": "none",
                                 "mapping": mapping, "ifmap_sram": {"size_kb": 64}, "filter_sram": {"size_kb": 64},
                                 "ofmap_sram": {"size_kb": 64},
                                 "sparsity": {"compute": {"action": "skip", "on_zeros": "inputs"}}})
        for kind, shape, mk in PATH_CASES:
            for d in (0.1, 0.3, 0.5, 0.7, 0.9):
                rng = np.random.default_rng(int(d * 100) + 1)
                flat = np.zeros(int(np.prod(shape)), dtype=bool)
                flat[rng.choice(flat.size, int(round(d * flat.size)), replace=False)] = True
                mask = flat.reshape(shape)
                stat = accelsim.simulate(Workload(name="s", layers=[mk(Compression(act_density=float(mask.mean())))]), hw)
                wl = Workload(name="a", layers=[mk(Compression(act_density=float(mask.mean()), act_mask="l.act"))])
                wl.attach_masks({"l.act": mask})
                real = accelsim.simulate(wl, hw)
                a, b = stat.layers[0].compute_cycles, real.layers[0].compute_cycles
                rows.append(f"| {mapping} | {kind} | {d:.1f} | {a:,} | {b:,} | {(b - a) / a:+.1%} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-docs", action="store_true", help="replace the tables in docs/sparsity.md")
    args = ap.parse_args()
    blocks = {"act-gating": part1(), "act-scnn": part2(), "act-paths": part3()}
    for marker, text in blocks.items():
        print(f"\n## {marker}\n{text}")
    if args.write_docs:
        from _progress import write_docs_block

        for marker, text in blocks.items():
            write_docs_block(DOCS, marker, text, "`python examples/act_sparsity_trends.py --write-docs`")


if __name__ == "__main__":
    main()
