"""Design-space explorer throughput: dense ResNet-50 on systolic configs, end to end incl. the store.

Run (about a minute on 2 idle cores)::

    python benchmarks/bench_sweep.py                  # everything
    python benchmarks/bench_sweep.py --skip-10k --skip-dask

Measures, each into a fresh SQLite store (WAL) in a temporary directory:

1. ``mixed``: 1,620 points = 18 array structures (rows x cols x dataflow) x 2 DRAM bandwidths x
   45 energy tables (MAC pJ x DRAM pJ/bit x SRAM pJ/bit) -- the common case where most axes only
   re-price cached tiling/timing. Run with 1 worker (in-process), 2 local worker processes and a
   2-worker dask ``LocalCluster`` (separate processes, loopback TCP).
2. ``structural``: 144 points that all need a new tiling and simulation (array shape, dataflow,
   SRAM sizes, DRAM bandwidth), 1 and 2 local workers and the dask cluster -- the worst case.
3. ``10k``: a 10,240-point grid run as ``accelsim sweep`` in a subprocess with 2 workers; its RSS
   (main process and workers) is sampled against the number of stored points to show memory stays
   flat; wall time and peak RSS are reported.

Points/s = simulated points / wall time of ``run_sweep`` (includes enumeration, validation, keys,
store writes, the final Pareto front), excluding interpreter start-up.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HW = str(ROOT / "hw_configs" / "systolic_128x128_os.yaml")

MIXED = {
    "name": "bench_mixed", "hardware": HW, "workloads": ["zoo:resnet50"],
    "axes": {"rows": [64, 128, 256], "cols": [64, 128, 256], "dataflow": ["os", "ws"], "dram.bw_gbps": [12.8, 25.6],
             "energy.mac_pj": {"linspace": [0.1, 0.5, 5]}, "dram.pj_per_bit": [3.9, 8.0, 20.0],
             "energy.sram_pj_per_bit_at_8kb": [0.1, 0.156, 0.25]},
}
STRUCTURAL = {
    "name": "bench_structural", "hardware": HW, "workloads": ["zoo:resnet50"],
    "axes": {"rows": [64, 128, 256], "cols": [64, 128, 256], "dataflow": ["os", "ws"],
             "ifmap_sram.size_kb": [128, 512], "filter_sram.size_kb": [64, 256], "dram.bw_gbps": [12.8, 25.6]},
}
TEN_K = {
    "name": "bench_10k", "hardware": HW, "workloads": ["zoo:resnet50"],
    "axes": {"rows": [32, 64, 128, 256], "cols": [32, 64, 128, 256], "dataflow": ["os", "ws"],
             "dram.bw_gbps": [12.8, 25.6], "energy.mac_pj": {"linspace": [0.1, 0.45, 8]},
             "dram.pj_per_bit": [3.9, 8.0, 12.0, 20.0], "energy.sram_pj_per_bit_at_8kb": [0.08, 0.12, 0.156, 0.2, 0.25]},
}


def run(spec: dict, store: Path, **kw) -> dict:
    from accelsim.dse import run_sweep
    from accelsim.dse.axes import grid_size, parse_axis

    from accelsim.dse import evaluate

    n = grid_size([parse_axis(k, v, "bench") for k, v in spec["axes"].items()])
    evaluate._EVALUATORS.clear()  # cold caches (forked workers would inherit this process's)
    t0 = time.perf_counter()
    res = run_sweep(spec, store, **kw)
    wall = time.perf_counter() - t0
    assert res.evaluated == n, (res.evaluated, n, res.errors)
    return {"points": n, "wall_s": round(wall, 2), "points_per_s": round(n / wall, 1), "executor": res.executor,
            "workers": res.workers, "front": len(res.front)}


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def ten_k(tmp: Path) -> dict:
    import yaml

    f = tmp / "bench_10k.yaml"
    f.write_text(yaml.safe_dump(TEN_K))
    db = tmp / "bench_10k.sqlite"
    cmd = [sys.executable, "-m", "accelsim.cli", "sweep", str(f), "--store", str(db), "--workers", "2", "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[int, float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            main_kb = _rss_kb(proc.pid)
            kids = sum(_rss_kb(c) for c in _children(proc.pid))
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                n = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if main_kb:
                samples.append((n, main_kb / 1024, kids / 1024))
            stop.wait(1.0)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(err[-2000:])
    n = 10_240
    peak_main = max(s[1] for s in samples)
    peak_workers = max(s[2] for s in samples)
    trace = []
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
        hit = [s for s in samples if s[0] >= frac * n * 0.98]
        if hit:
            trace.append({"points_stored": hit[0][0], "main_rss_mb": round(hit[0][1], 1),
                          "workers_rss_mb": round(hit[0][2], 1)})
    return {"points": n, "wall_s_incl_startup": round(wall, 1), "points_per_s": round(n / wall, 1),
            "peak_main_rss_mb": round(peak_main, 1), "peak_workers_rss_mb_sum": round(peak_workers, 1),
            "rss_vs_points": trace, "store_mb": round(db.stat().st_size / 2**20, 1),
            "summary_line": out.splitlines()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--skip-10k", action="store_true")
    ap.add_argument("--skip-structural", action="store_true")
    args = ap.parse_args()
    from accelsim.dse.version import model_version

    results: dict = {"cpus": len(os.sched_getaffinity(0)), "accelsim": model_version()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results["mixed_1_worker"] = run(MIXED, tmp / "m1.sqlite", workers=1)
        print("mixed, 1 worker:", results["mixed_1_worker"], flush=True)
        results["mixed_2_local"] = run(MIXED, tmp / "m2.sqlite", workers=2)
        print("mixed, 2 local workers:", results["mixed_2_local"], flush=True)
        if not args.skip_dask:
            from distributed import Client, LocalCluster

            from accelsim.dse.executors import DaskExecutor

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
                client.run(lambda: __import__("accelsim.dse.evaluate"))  # warm imports, as a long-lived cluster has
                results["mixed_2_dask"] = run(MIXED, tmp / "m3.sqlite", executor=DaskExecutor(client=client))
                print("mixed, 2-worker dask LocalCluster:", results["mixed_2_dask"], flush=True)
                if not args.skip_structural:
                    results["structural_2_dask"] = run(STRUCTURAL, tmp / "s3.sqlite",
                                                       executor=DaskExecutor(client=client))
                    print("structural, 2-worker dask LocalCluster:", results["structural_2_dask"], flush=True)
        if not args.skip_structural:
            results["structural_1_worker"] = run(STRUCTURAL, tmp / "s1.sqlite", workers=1)
            print("structural, 1 worker:", results["structural_1_worker"], flush=True)
            results["structural_2_local"] = run(STRUCTURAL, tmp / "s2.sqlite", workers=2)
            print("structural, 2 local workers:", results["structural_2_local"], flush=True)
        if not args.skip_10k:
            results["10k_2_local"] = ten_k(tmp)
            print("10k points, 2 local workers:", results["10k_2_local"], flush=True)
    m1, m2 = results["mixed_1_worker"]["points_per_s"], results["mixed_2_local"]["points_per_s"]
    results["scaling_1_to_2_local"] = round(m2 / m1, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
