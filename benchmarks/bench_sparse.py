"""Speed of the sparse engines on ResNet-50 with real (synthetic, seeded) masks.

Target (issue #5): ResNet-50 with real unstructured masks (~25 M weights) on the gather-scatter
engine in under 2 s. Prints the time of mask validation + numba kernels + simulation for one
``simulate`` call (masks are built beforehand; the first call also loads numba's on-disk cache),
then warm repeats, then other kinds and engines for reference.

    /work/venv/bin/python benchmarks/bench_sparse.py
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import accelsim
from accelsim.workload.masks import synthetic_mask
from accelsim.errors import MaskError
from accelsim.hardware import load_hardware
from accelsim.workload import Workload
from accelsim.workload.compression import Compression, Factorization, Sparsity
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent


def masked(wl: Workload, sp: Sparsity, seed: int = 0) -> tuple[Workload, float]:
    t = time.perf_counter()
    layers, masks = [], {}
    for lay in wl.layers:
        if lay.op in ("conv2d", "linear"):
            lay = lay.model_copy(update={"compression": Compression(sparsity=sp.model_copy(update={"mask": lay.name}))})
            masks[lay.name] = synthetic_mask(lay, seed=seed)
        layers.append(lay)
    out = wl.with_layers(layers)
    out.attach_masks(masks)
    return out, time.perf_counter() - t


def timed(wl: Workload, hw, repeats: int = 1) -> tuple[list[float], accelsim.Report]:
    times = []
    rep = None
    for _ in range(repeats):
        t = time.perf_counter()
        rep = accelsim.simulate(wl, hw, compare_dense=False)
        times.append(time.perf_counter() - t)
    assert rep is not None
    return times, rep


def main() -> None:
    r50 = get_model("resnet50")
    gs = load_hardware(ROOT / "hw_configs" / "gather_scatter_sve128.yaml")
    wl, t_mask = masked(r50, Sparsity(kind="unstructured", density=0.2))
    weights = sum(m.size for m in wl._mask_cache.values())  # noqa: SLF001
    print(f"ResNet-50: {weights:,} masked weights, mask generation {t_mask:.2f} s (not part of the target)")
    times, rep = timed(wl, gs, repeats=3)
    print(f"gather-scatter, unstructured 0.2, real masks: first {times[0]:.2f} s, warm {min(times[1:]):.2f} s "
          f"(target < 2 s) -> {rep.latency_cycles:,} cycles")
    for kind, extra in (("gs", {"gs_group_rows": 8}), ("nm", {"n": 1, "m": 4}), ("block", {"block_h": 8, "block_w": 8})):
        w, _ = masked(r50, Sparsity(kind=kind, density=0.25, **extra))
        t, _ = timed(w, gs)
        print(f"gather-scatter, {kind} 0.25, real masks: {t[0]:.2f} s")
    bad = dict(wl._mask_cache)  # noqa: SLF001
    bad["fc"] = np.ones((1000, 2047), dtype=np.uint8)
    wl.attach_masks(bad)
    t = time.perf_counter()
    try:
        accelsim.simulate(wl, gs, compare_dense=False)
    except MaskError as exc:
        print(f"bad mask rejected after {time.perf_counter() - t:.2f} s: {exc}")
    sys_sparse = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
    w, _ = masked(r50, Sparsity(kind="unstructured", density=0.2))
    t, _ = timed(w, sys_sparse)
    print(f"sparse systolic (zero skipping), real masks: {t[0]:.2f} s")
    se = load_hardware(ROOT / "hw_configs" / "smartexchange_32x32.yaml")
    fac = Factorization(kind="smartexchange", basis_size=3, ce_density=0.4, ce_bits=4, basis_bits=8)
    w = r50.with_layers([lay.model_copy(update={"compression": Compression(factorization=fac)})
                         if lay.op in ("conv2d", "linear") else lay for lay in r50.layers])
    t, _ = timed(w, se)
    print(f"SmartExchange, ce_density 0.4 (expectation): {t[0]:.2f} s")


if __name__ == "__main__":
    main()
