"""Whole-network simulation speed and memory (the foundation issue's benchmark).

Each case runs in a fresh subprocess so peak RSS (ru_maxrss) is the case's own, including
Python, numpy, pandas and SimPy. Reported: wall time of `accelsim.simulate` (median of 5 after
one warm-up run, which also fills numba's cache), peak RSS of the process, and total cycles.

Run: python benchmarks/bench_simulate.py
SCALE-Sim 3.0.0 takes ~300 s and 2.4-5.5 GB for ResNet-18/ResNet-50 on this 2-core machine
(issue #2), for the same compute cycles.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "data" / "reference"

CASES = [
    ("ResNet-18 SCALE-Sim topology, 128x128 OS (CALC cfg)", REF / "scalesim_topologies/conv_nets/Resnet18.csv",
     REF / "scalesim_configs/full_Resnet18_128x128_os.cfg"),
    ("ResNet-50 SCALE-Sim topology, 128x128 OS (CALC cfg)", REF / "scalesim_topologies/conv_nets/Resnet50.csv",
     REF / "scalesim_configs/full_Resnet18_128x128_os.cfg"),
    ("ResNet-18 (models/), 128x128 OS, DRAM-limited", ROOT / "models/resnet18.yaml", ROOT / "hw_configs/systolic_128x128_os.yaml"),
    ("ResNet-50 (models/), 128x128 OS, DRAM-limited", ROOT / "models/resnet50.yaml", ROOT / "hw_configs/systolic_128x128_os.yaml"),
    ("ResNet-50 (models/), 128x128 WS, DRAM-limited", ROOT / "models/resnet50.yaml", ROOT / "hw_configs/systolic_128x128_ws.yaml"),
    ("BERT-base seq 128, 128x128 OS", ROOT / "models/bert_base.yaml", ROOT / "hw_configs/systolic_128x128_os.yaml"),
    ("GNMT LSTM stack, 32x32 IS", ROOT / "models/gnmt.yaml", ROOT / "hw_configs/systolic_32x32_is.yaml"),
]

CHILD = textwrap.dedent("""
    import json, resource, statistics, sys, time
    import accelsim
    from accelsim.workload import load_workload
    from accelsim.hardware import load_hardware
    wl = load_workload(sys.argv[1]); hw = load_hardware(sys.argv[2])
    accelsim.simulate(wl, hw)
    times = []
    for _ in range(5):
        t = time.perf_counter(); r = accelsim.simulate(wl, hw); times.append(time.perf_counter() - t)
    print(json.dumps({"seconds": statistics.median(times), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "layers": len(r.layers), "compute_cycles": sum(s.compute_cycles for s in r.layers),
                      "latency_cycles": r.latency_cycles}))
""")


def run_case(workload: Path, hw: Path) -> dict:
    topo = workload
    if workload.suffix == ".csv" and "Resnet50" in workload.name:
        # SCALE-Sim's shipped Resnet50.csv has an empty row and 3 extra columns; use the first 8.
        import csv
        import tempfile

        rows = [r[:8] for r in csv.reader(workload.read_text().splitlines()) if any(c.strip() for c in r)]
        tmp = Path(tempfile.mkdtemp()) / "Resnet50_clean.csv"
        tmp.write_text("\n".join(",".join(r) + "," for r in rows) + "\n")
        topo = tmp
    out = subprocess.run([sys.executable, "-c", CHILD, str(topo), str(hw)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'case':58s} {'layers':>6s} {'seconds':>8s} {'peak RSS MB':>11s} {'compute cycles':>15s} {'latency cycles':>15s}")
    for name, wl, hw in CASES:
        r = run_case(wl, hw)
        print(f"{name:58s} {r['layers']:6d} {r['seconds']:8.3f} {r['rss_mb']:11.0f} {r['compute_cycles']:15,d} {r['latency_cycles']:15,d}")


if __name__ == "__main__":
    main()
