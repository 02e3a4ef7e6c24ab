"""FPGA engine and integer programs: solve times, ILP vs exhaustive search, estimate vs simulation.

Run: python benchmarks/bench_fpga.py [--quick]   (prints figures; ~3 min on 2 cores, --quick ~30 s)

1. Overlay MILP vs exhaustive enumeration on the default search space (same optimum required).
2. Pipeline (HAO-style) MILP vs exhaustive on growing MobileNetV2 subgraphs: the enumerated space
   grows as the product of per-layer options, the MILP does not.
3. Roofline estimate (the ILP objective) vs the simulated latency of the shipped configs.
4. Simulation wall time of the shipped configs.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.engines import fpga as F  # noqa: E402
from accelsim.dse.fpga.ilp import (PipelineSpace, _PipelineProblem, exhaustive_overlay,  # noqa: E402
                                       exhaustive_pipeline, optimize_overlay, optimize_pipeline)
from accelsim.api import simulate_programs  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402

CONFIGS = {"zu3eg": ROOT / "hw_configs" / "zu3eg.yaml", "zcu104": ROOT / "hw_configs" / "zcu104.yaml"}


def clear_caches() -> None:
    F.tile_table.cache_clear()
    F.pixel_blocks.cache_clear()
    F._sum_groups.cache_clear()


def overlay(models: list[str], devices: list[str]) -> None:
    print("1. overlay: MILP vs exhaustive (default OverlaySpace; times include building the tiling tables)")
    print(f"   {'model':<14}{'device':<8}{'configs':>10}{'vars':>8}{'milp s':>8}{'exh s':>8}{'milp cycles':>14}"
          f"{'exh cycles':>14}{'same':>6}  chosen")
    for dev in devices:
        base = accelsim.load_hardware(CONFIGS[dev])
        for m in models:
            wl = get_model(m)
            clear_caches()
            t = time.perf_counter()
            r = optimize_overlay(wl, base)
            tm = time.perf_counter() - t
            clear_caches()
            t = time.perf_counter()
            e = exhaustive_overlay(wl, base)
            te = time.perf_counter() - t
            h = r.hw
            print(f"   {m:<14}{dev:<8}{r.stats.candidates:>10,}{r.stats.variables:>8,}{tm:>8.1f}{te:>8.1f}"
                  f"{r.est_cycles:>14,}{e.est_cycles:>14,}{str(r.est_cycles == e.est_cycles):>6}  "
                  f"{h.pe_in}x{h.pe_out}x{h.pe_pix} gp={h.group_packing} DSP {r.utilization.used['dsp']}")


def pipeline(max_layers: int) -> None:
    print("\n2. pipeline (HAO-style): MILP vs exhaustive on the first k conv layers of MobileNetV2 (ZU3EG)")
    base = accelsim.load_hardware(CONFIGS["zu3eg"])
    wl = get_model("mobilenet_v2")
    convs = [l.name for l in wl.layers if l.op == "conv2d"]
    space = PipelineSpace(parallel=(1, 2, 4, 8, 16, 32))
    print(f"   {'k':>3}{'raw configs':>20}{'after pruning':>15}{'milp s':>8}{'exh s':>8}{'interval':>10}{'same':>6}")
    for k in range(2, max_layers + 1):
        names = convs[:k]
        t = time.perf_counter()
        r = optimize_pipeline(wl, base, space, layers=names)
        tm = time.perf_counter() - t
        pruned = math.prod(len(o) for o in _PipelineProblem(wl, base, space, names).options)
        if pruned <= 3_000_000:
            t = time.perf_counter()
            e = exhaustive_pipeline(wl, base, space, layers=names, max_combinations=3_000_000)
            te = f"{time.perf_counter() - t:8.1f}"
            same = str(e.interval_cycles == r.interval_cycles)
        else:
            te, same = "    skip", "-"
        print(f"   {k:>3}{r.stats.candidates:>20,}{pruned:>15,}{tm:>8.2f}{te}{r.interval_cycles:>10,}{same:>6}")


def estimate_vs_sim(models: list[str]) -> None:
    print("\n3. roofline estimate (ILP objective) vs simulated latency, shipped configs")
    print(f"   {'config':<8}{'model':<14}{'estimate':>12}{'simulated':>12}{'sim/est':>9}{'worst layer':>13}{'sim s':>7}")
    for dev, path in CONFIGS.items():
        hw = accelsim.load_hardware(path)
        for m in models:
            wl = get_model(m)
            t = time.perf_counter()
            pairs = simulate_programs(wl, hw)
            ts = time.perf_counter() - t
            est = sum(p.extra["est_cycles"] for p, _ in pairs)
            sim = sum(t.latency_cycles for _, t in pairs)
            worst = max(t.latency_cycles / p.extra["est_cycles"] for p, t in pairs)
            print(f"   {dev:<8}{m:<14}{int(est):>12,}{sim:>12,}{sim / est:>9.4f}{worst:>13.3f}{ts:>7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small models only")
    args = ap.parse_args()
    if args.quick:
        overlay(["tiny_cnn", "resnet18"], ["zu3eg"])
        pipeline(5)
        estimate_vs_sim(["tiny_cnn", "resnet18"])
    else:
        overlay(["tiny_cnn", "resnet18", "mobilenet_v2"], ["zu3eg", "zcu104"])
        pipeline(8)
        estimate_vs_sim(["tiny_cnn", "resnet18", "mobilenet_v2", "bert_base"])


if __name__ == "__main__":
    main()
