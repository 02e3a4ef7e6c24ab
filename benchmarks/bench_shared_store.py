"""Two ``accelsim sweep`` processes on one results store: how many simulations for how many points.

    python benchmarks/bench_shared_store.py [--workers N]

Starts two processes on the same 450-point sweep and store (the second once the first has stored a
few points), waits for both, and prints each run's simulated/skipped counts and the total. With
claims the total equals the number of points; without, overlapping runs repeat work.
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        sweep = Path(d) / "shared.yaml"
        sweep.write_text(yaml.safe_dump({
            "name": "shared", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": [{"zoo": "resnet18", "resolution": 64}],
            "axes": {"rows": [8, 16, 32, 64, 128], "cols": [8, 16, 32, 64, 128],
                     "dram.bw_gbps": [6.4, 12.8, 51.2], "dataflow": ["os", "ws"],
                     "ifmap_sram.size_kb": [64, 256, 1024]},
            "chunk_size": 4}))
        db = Path(d) / "shared.sqlite"
        cmd = [sys.executable, "-m", "accelsim.cli", "sweep", str(sweep), "--store", str(db),
               "--workers", str(args.workers), "--no-progress"]
        t0 = time.perf_counter()
        a = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        while a.poll() is None:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                n = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if n >= 10:
                break
            time.sleep(0.05)
        b = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        a.wait(), b.wait()
        wall = time.perf_counter() - t0
        con = sqlite3.connect(db)
        runs = con.execute("SELECT run_id, evaluated, skipped FROM runs ORDER BY started_at").fetchall()
        points = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        con.close()
    for rid, ev, sk in runs:
        print(f"run {rid}: {ev} simulated, {sk} skipped")
    print(f"{points} points, {sum(r[1] or 0 for r in runs)} simulations in total, {wall:.1f} s wall "
          f"(exit codes {a.returncode}, {b.returncode})")


if __name__ == "__main__":
    main()
