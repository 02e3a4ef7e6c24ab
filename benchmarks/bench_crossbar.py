"""Speed of the crossbar engine: mask block counting (numba), workload mapping, full simulations.

Run: python benchmarks/bench_crossbar.py   (prints figures; takes ~15 s on 2 cores)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import accelsim  # noqa: E402
from accelsim.engines import crossbar as xb  # noqa: E402
from accelsim.engines.crossbar_kernels import block_nnz  # noqa: E402


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    hw = accelsim.load_hardware(ROOT / "hw_configs" / "isaac_like.yaml")
    vgg = accelsim.load_workload(ROOT / "models" / "vgg16.yaml")

    rng = np.random.default_rng(0)
    mask = rng.random((4096, 25088), dtype=np.float32) < 0.1   # VGG-16 fc6, 102.8 M weights
    t0 = time.perf_counter()
    block_nnz(mask[:8, :8], 1, 128, 32)
    first = time.perf_counter() - t0
    t, _ = timed(lambda: block_nnz(mask, 1, 128, 32))
    print(f"block_nnz: first call (compile or cache load) {first * 1e3:.0f} ms; "
          f"fc6 mask {mask.size / 1e6:.1f} M entries in {t * 1e3:.0f} ms = {mask.size / t / 1e9:.2f} G entries/s")

    def fresh_map(wl):
        xb._CACHE.clear()
        return xb.map_workload(wl, hw)

    t, cm = timed(lambda: fresh_map(vgg))
    print(f"map_workload vgg16 dense: {t * 1e3:.1f} ms ({cm.allocation.crossbars:,} crossbars, {cm.allocation.tiles} tiles)")

    from crossbar_pruning import prune_workload  # the example's numpy block pruning

    t, pruned = timed(lambda: prune_workload(vgg, hw, 0.0625, 0), repeat=1)
    print(f"block-pruning masks for vgg16 (numpy, 138 M weights): {t:.2f} s")
    t, cm = timed(lambda: fresh_map(pruned))
    print(f"map_workload vgg16 with real masks: {t * 1e3:.0f} ms ({cm.allocation.crossbars:,} crossbars)")

    for name, wl in [("vgg16 dense", vgg), ("vgg16 pruned (masks)", pruned),
                     ("resnet50", accelsim.load_workload(ROOT / "models" / "resnet50.yaml")),
                     ("mobilenet_v2", accelsim.load_workload(ROOT / "models" / "mobilenet_v2.yaml"))]:
        xb._CACHE.clear()
        t, rep = timed(lambda: accelsim.simulate(wl, hw, compare_dense=False), repeat=2)
        print(f"simulate {name:<22} {t * 1e3:7.0f} ms  ({len(rep.layers)} layers, {rep.latency_cycles:,} cycles)")


if __name__ == "__main__":
    main()
