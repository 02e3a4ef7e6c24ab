"""ResNet-50 with real activation masks for one input (issue 14 must-show: < 2 s warm).

The front-end exports ResNet-50 (``accelsim.frontend.models.resnet50``, random weights, BN folded
as exported; one seeded random 224x224 input -- no downloads) with ``act_density=True`` and
``act_masks=1``: every conv/linear layer carries its measured input density and the real 0/1 mask
of its input. The workload is saved and loaded back (masks from the ``.npz``), then simulated on:

- ``eyeriss_like_gating.yaml`` (compute gate on inputs, from the real masks: im2col counts),
- ``scnn_like_skipping.yaml`` (intersection skipping; per-fold lock-step work from the masks),
- ``eyeriss_like_dense.yaml`` (reference: no gating, "not exploited" notes).

Also printed: DRAM traffic and energy, and how many layers note that a format makes their
traffic larger than uncompressed (run-length coding at high input density; docs/sparsity.md).
Wall and CPU time of ``accelsim.simulate`` are the median of 3 warm calls after one warm-up call
(a fresh ``simulate`` each time: nothing is cached between calls except numba/scipy code).

Run: python benchmarks/bench_act_sparsity.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    import accelsim
    from accelsim.frontend.exporter import export, save_export
    from accelsim.frontend.models import resnet50
    from accelsim.hardware.io import load_hardware
    from accelsim.workload import load_workload

    torch.manual_seed(0)
    net = resnet50()
    x = torch.randn(1, 3, 224, 224)
    t0 = time.perf_counter()
    wl = export(net, x, "resnet50", act_density=True, act_masks=1)
    t_export = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = save_export(wl, Path(tmp) / "resnet50.yaml")
        npz = path.with_name(path.stem + "_masks.npz")
        wl = load_workload(path)
        with_mask = sum(1 for layer in wl.layers if layer.compression.act_mask)
        dens = [layer.compression.act_density for layer in wl.layers if layer.compression.act_mask]
        print(f"export {t_export:.1f} s; {with_mask} layers with activation masks, input density "
              f"min {min(dens):.2f} median {statistics.median(dens):.2f} max {max(dens):.2f}; "
              f"masks file {npz.stat().st_size / 1e6:.1f} MB")
        print(f"{'config':<22} {'wall s':>7} {'cpu s':>7} {'latency Mcyc':>13} {'energy mJ':>10} {'MAC energy mJ':>14} "
              f"{'DRAM MB':>8} {'DRAM mJ':>8} {'layers: format > dense':>23}")
        for name in ("eyeriss_like_gating", "scnn_like_skipping", "eyeriss_like_dense"):
            hw = load_hardware(ROOT / "hw_configs" / f"{name}.yaml")
            accelsim.simulate(wl, hw, compare_dense=False)  # warm-up
            walls, cpus = [], []
            for _ in range(3):
                w0, c0 = time.perf_counter(), time.process_time()
                r = accelsim.simulate(wl, hw, compare_dense=False)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            s = r.summary()
            mac = sum(layer.energy_by_component_pj.get("mac", 0.0) for layer in r.layers)
            dram_pj = sum(layer.energy_by_component_pj.get("dram", 0.0) for layer in r.layers)
            dram_mb = sum(layer.dram_read_bytes + layer.dram_write_bytes for layer in r.layers) / 1e6
            larger = sum(any("makes this traffic larger" in n for n in layer.notes) for layer in r.layers)
            print(f"{name:<22} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f} "
                  f"{s['latency_cycles'] / 1e6:13.2f} {s['energy_pj'] / 1e9:10.3f} {mac / 1e9:14.4f} "
                  f"{dram_mb:8.2f} {dram_pj / 1e9:8.3f} {larger:23d}")


if __name__ == "__main__":
    main()
