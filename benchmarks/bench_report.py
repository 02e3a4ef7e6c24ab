"""``accelsim report``: time to build the HTML pages and their size.

Run (about half a minute on 2 idle cores)::

    python benchmarks/bench_report.py [--points 1296]

1. ``simulate``: ResNet-18 (224x224, dense) on the 128x128 OS array, :func:`simulate_page` only
   (the simulation is timed separately).
2. ``store``: a grid sweep of tiny_cnn (rows x cols x dataflow x DRAM bandwidth x DRAM pJ/bit, the
   first ``--points`` of 1,296) into a fresh store, then :func:`store_page` with ``layers_for=0``
   (store reading, front, hover texts, heatmap, JSON) and with the default 20 (adds re-simulation of
   the front points).

Prints wall time (``time.perf_counter``) and page size in MB; peak RSS of this process at the end.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1296)
    args = ap.parse_args()
    import accelsim
    from accelsim.dse import run_sweep
    from accelsim.plot.html_report import simulate_page, store_page

    t0 = time.perf_counter()
    rep = accelsim.simulate("zoo:resnet18", ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    t1 = time.perf_counter()
    page = simulate_page(rep)
    t2 = time.perf_counter()
    print(f"simulate: resnet18 simulated in {t1 - t0:.2f} s; page built in {t2 - t1:.2f} s, "
          f"{len(page.encode()) / 1e6:.2f} MB")
    sweep = {
        "name": "bench", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
        "workloads": ["zoo:tiny_cnn"],
        "axes": {"rows": {"pow2": [4, 128]}, "cols": {"pow2": [4, 128]}, "dataflow": ["os", "ws", "is"],
                 "dram.bw_gbps": [6.4, 12.8, 25.6], "dram.pj_per_bit": [3.9, 8.0, 12.0, 20.0]},
        "search": {"method": "random", "samples": args.points, "seed": 0} if args.points < 1296 else {"method": "grid"},
        "objectives": ["latency", {"metric": "peak_gops", "goal": "min"}],
    }
    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "bench.sqlite"
        res = run_sweep(sweep, store, workers=2)
        for layers in (0, 20):
            t0 = time.perf_counter()
            page = store_page(store, layers_for=layers)
            t1 = time.perf_counter()
            print(f"store: {res.evaluated} points, front {len(res.front)}, layers_for={layers}: page built in "
                  f"{t1 - t0:.2f} s, {len(page.encode()) / 1e6:.2f} MB")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
