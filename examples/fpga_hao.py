"""Pick the best FPGA accelerator for a network on a ZU3EG (Ultra96) with integer programming, after HAO.

Run: python examples/fpga_hao.py [--model mobilenet_v2|resnet18|tiny_cnn] [--budget dsp=300,bram18=400]

1. Overlay: the integer program chooses the array shape, buffers and per-layer tiling of one
   shared MAC array that minimise the network's latency under the budget; the choice is then
   simulated (double-buffered DDR pipeline) and compared with the hand-written shipped config.
2. Pipeline (HAO-style): for one block of the network, every layer gets its own array and the
   integer program picks each layer's parallelism to minimise the frame interval.
Takes ~15 s for MobileNetV2 on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from _progress import Progress  # noqa: E402  (a line per step on stderr)

import accelsim  # noqa: E402
from accelsim.dse.fpga.ilp import optimize_overlay, optimize_pipeline  # noqa: E402
from accelsim.errors import AccelsimError  # noqa: E402
from accelsim.dse.fpga.cli import _load_fpga  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402

BLOCKS = {"mobilenet_v2": "features.2.", "resnet18": "layer1.0.", "tiny_cnn": ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v2", choices=sorted(BLOCKS))
    ap.add_argument("--device", default=str(ROOT / "hw_configs" / "zu3eg.yaml"), help="FPGA config (device, clock, DDR)")
    ap.add_argument("--budget", default=None, help="e.g. dsp=300,bram18=400")
    args = ap.parse_args()
    progress = Progress(total=5)
    try:
        base = _load_fpga(args.device, args.budget, None)
        wl = get_model(args.model)
        progress.step(f"loaded {wl.name} and {base.name}")

        print(f"== {wl.name}: {wl.total_macs / 1e6:,.0f} M MACs, {len(wl)} layers, on {base.device.name} at "
              f"{base.clock_mhz:g} MHz, DDR {base.dram.bw_gbps:g} GB/s ==\n")
        best = optimize_overlay(wl, base)
        progress.step("overlay integer program solved")
        lines = best.text().splitlines()
        print("\n".join(lines[:5]))
        print(f"  ({len(best.choices)} per-layer tilings chosen; `accelsim fpga-optimize` prints them all)")
        print("\n".join(lines[-7:]))

        print("\nsimulated (double-buffered DDR pipeline):")
        for label, hw in (("ILP choice", best.hw), ("shipped config", base)):
            s = accelsim.simulate(wl, hw, compare_dense=False).summary()
            progress.step(f"simulated the {label}")
            shares = ", ".join(f"{k} {v / s['energy_pj']:.0%}" for k, v in s["energy_by_component_pj"].items())
            print(f"  {label:<15} {hw.pe_in}x{hw.pe_out}x{hw.pe_pix}: {s['latency_ms']:7.3f} ms = "
                  f"{s['inferences_per_s']:6.1f} fps, {s['energy_uj'] / 1e3:6.2f} mJ ({shares})")

        prefix = BLOCKS[args.model]
        block = [l.name for l in wl.layers if l.name.startswith(prefix)]
        print(f"\n== HAO-style pipeline for the block '{prefix or wl.name}' ({len(block)} layers) ==")
        text = optimize_pipeline(wl, base, layers=block).text()
        progress.step("pipeline integer program solved")
        print(text)
    except AccelsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
