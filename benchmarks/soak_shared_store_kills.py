"""Soak: two ``accelsim sweep`` processes on one store, one SIGKILLed at a random moment, N times.

    python benchmarks/soak_shared_store_kills.py [ITERATIONS]     (default 10)

Each iteration: a fresh store, a 450-point sweep started twice at once (1 or 2 workers), one of the
two SIGKILLed 2.5-6 s later, then a completing run. Checked and printed per iteration: every point
stored once and ok, every point a member, no claim left, ``PRAGMA integrity_check``, and for each
run that finished, simulated == rows it stored (nothing computed twice and overwritten).
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 450


def main(iterations: int) -> int:
    rng = random.Random(1)
    kills = bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sw = d / "soak.yaml"
        sw.write_text(yaml.safe_dump({
            "name": "soak", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": [{"zoo": "resnet18", "resolution": 64}],
            "axes": {"rows": [8, 16, 32, 64, 128], "cols": [8, 16, 32, 64, 128], "dram.bw_gbps": [6.4, 12.8, 51.2],
                     "dataflow": ["os", "ws"], "ifmap_sram.size_kb": [64, 256, 1024]},
            "chunk_size": 2}))
        for it in range(iterations):
            db = d / f"s{it}.sqlite"

            def cmd(workers: int) -> list[str]:
                return [sys.executable, "-m", "accelsim.cli", "sweep", str(sw), "--store", str(db),
                        "--workers", str(workers), "--no-progress"]

            a = subprocess.Popen(cmd(rng.choice([1, 2])), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            b = subprocess.Popen(cmd(1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(rng.uniform(2.5, 6.0))
            victim = rng.choice([a, b])
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
                kills += 1
            a.wait(), b.wait()
            subprocess.run(cmd(1), capture_output=True, check=True)
            con = sqlite3.connect(db)
            pts = con.execute("SELECT COUNT(*), SUM(status = 'ok') FROM points").fetchone()
            mem = con.execute("SELECT COUNT(*) FROM members").fetchone()[0]
            left = con.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
            integ = con.execute("PRAGMA integrity_check").fetchone()[0]
            fin = [(e, con.execute("SELECT COUNT(*) FROM points WHERE run_id = ?", (rid,)).fetchone()[0])
                   for rid, e in con.execute("SELECT run_id, evaluated FROM runs WHERE finished_at IS NOT NULL")]
            con.close()
            ok = pts == (TOTAL, TOTAL) and mem == TOTAL and left == 0 and integ == "ok" and all(e == n for e, n in fin)
            bad += not ok
            print(f"{it}: exit {a.returncode},{b.returncode}; points {pts[0]} ({pts[1]} ok), members {mem}, claims left "
                  f"{left}, integrity {integ}, finished runs simulated/stored {fin} -> {'OK' if ok else 'BAD'}", flush=True)
    print(f"{iterations} iterations, {kills} SIGKILLs, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
