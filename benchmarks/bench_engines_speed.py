"""Engine speed, HEAD next to a baseline commit in one run (issue #11, item 5, engines part).

Figures (each in a fresh subprocess, PYTHONPATH pointing at the tree measured):

1. ResNet-50 (``models/resnet50.yaml``) on an 8x8 OS systolic array: lower + simulate, warm
   (median of 5 after one warm-up call; wall and CPU time, the latter robust on a shared machine), with the total cycles and energy to show they are equal;
2. the first SCALE-Sim USER-mode case in a process whose numba cache is empty (a fresh machine):
   the Resnet18 L12 32x32 WS reference .cfg on a 64-channel 28x28 3x3 conv;
3. HEAD only: the same first case after ``python -m accelsim.sim.warmup`` filled that cache;
4. the first mapper search of a process (one ResNet-18 conv on the 128x128 array's implied
   hierarchy) with an empty numba cache and after the warm-up (trees without a mapper: "-").

Run: python benchmarks/bench_engines_speed.py [--baseline PATH]  (default: a git worktree of
e2c7944 at /tmp/accelsim-bench-base, created when missing).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_COMMIT = "e2c7944"
CFG = "tests/data/reference/scalesim_configs/stall_s64k_bw10_Resnet18_L12_32x32_ws.cfg"

RESNET = textwrap.dedent("""
    import json, statistics, sys, time
    import accelsim
    from accelsim.hardware import hardware_from_dict, hardware_to_dict, load_hardware
    from accelsim.workload import load_workload
    wl = load_workload("models/resnet50.yaml")
    d = hardware_to_dict(load_hardware("hw_configs/systolic_128x128_os.yaml")); d["rows"] = d["cols"] = 8
    hw = hardware_from_dict(d)
    r = accelsim.simulate(wl, hw, compare_dense=False)
    times, cpu = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        r = accelsim.simulate(wl, hw, compare_dense=False)
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    print(json.dumps({"s": statistics.median(times), "cpu_s": statistics.median(cpu), "cycles": r.latency_cycles,
                      "energy_pj": r.energy_pj}))
""")

USER = textwrap.dedent("""
    import json, time
    import accelsim
    from accelsim.hardware import load_hardware
    from accelsim.workload import Workload
    from accelsim.workload.layer import Conv2d
    hw = load_hardware(%r)
    wl = Workload(name="one", layers=[Conv2d(name="c", in_channels=64, out_channels=64, in_h=28, in_w=28,
                                             kernel_h=3, kernel_w=3)])
    t, c = time.perf_counter(), time.process_time()
    r = accelsim.simulate(wl, hw)
    print(json.dumps({"s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "stall": r.layers[0].stall_cycles}))
""" % CFG)


MAPPER = textwrap.dedent("""
    import json, time
    from accelsim.hardware import load_hardware
    from accelsim.mapping.implied import implied_hierarchy
    from accelsim.mapping.ir import LayerDims
    from accelsim.mapping.search import search_layer
    from accelsim.workload import load_workload
    h = implied_hierarchy(load_hardware("hw_configs/systolic_128x128_os.yaml"))
    layer = [l for l in load_workload("models/resnet18.yaml").layers if l.op == "conv2d"][3]
    t, c = time.perf_counter(), time.process_time()
    r = search_layer(LayerDims.from_layer(layer), h, objective="latency")
    print(json.dumps({"s": time.perf_counter() - t, "cpu_s": time.process_time() - c}))
""")


def _run(tree: Path, code: str, env_extra: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(path: str | None) -> Path:
    if path:
        return Path(path)
    base = Path("/tmp/accelsim-bench-base")
    if not base.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(base), BASE_COMMIT], cwd=ROOT, check=True,
                       capture_output=True)
    return base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help=f"a checkout of the baseline (default: worktree of {BASE_COMMIT})")
    args = ap.parse_args()
    trees = {"baseline": _baseline(args.baseline), "HEAD": ROOT}
    rows = {}
    for label, tree in trees.items():
        res = _run(tree, RESNET)
        with tempfile.TemporaryDirectory() as cache:
            fresh = _run(tree, USER, {"NUMBA_CACHE_DIR": cache})
            has_mapper = (tree / "accelsim" / "mapping" / "search.py").exists()
            map_fresh = _run(tree, MAPPER, {"NUMBA_CACHE_DIR": cache}) if has_mapper else None
            warmed = map_warm = None
            if (tree / "accelsim" / "sim" / "warmup.py").exists():
                with tempfile.TemporaryDirectory() as cache2:
                    subprocess.run([sys.executable, "-m", "accelsim.sim.warmup"], cwd=tree, check=True, capture_output=True,
                                   env={**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": cache2})
                    warmed = _run(tree, USER, {"NUMBA_CACHE_DIR": cache2})
                    map_warm = _run(tree, MAPPER, {"NUMBA_CACHE_DIR": cache2}) if has_mapper else None
        rows[label] = (res, fresh, warmed, map_fresh, map_warm)
    print(f"{'figure':<58}{'baseline':>14}{'HEAD':>14}")
    b, h = rows["baseline"], rows["HEAD"]
    print(f"{'ResNet-50 on 8x8 OS, lower+simulate warm, wall (s)':<58}{b[0]['s']:>14.3f}{h[0]['s']:>14.3f}")
    print(f"{'ResNet-50 on 8x8 OS, lower+simulate warm, CPU (s)':<58}{b[0]['cpu_s']:>14.3f}{h[0]['cpu_s']:>14.3f}")
    print(f"{'  latency cycles':<58}{b[0]['cycles']:>14,}{h[0]['cycles']:>14,}")
    print(f"{'  energy (pJ)':<58}{b[0]['energy_pj']:>14.6g}{h[0]['energy_pj']:>14.6g}")
    print(f"{'  identical numbers':<58}{'':>14}{str(b[0]['cycles'] == h[0]['cycles'] and b[0]['energy_pj'] == h[0]['energy_pj']):>14}")
    print(f"{'first USER-mode case, empty numba cache, wall (s)':<58}{b[1]['s']:>14.2f}{h[1]['s']:>14.2f}")
    print(f"{'first USER-mode case, empty numba cache, CPU (s)':<58}{b[1]['cpu_s']:>14.2f}{h[1]['cpu_s']:>14.2f}")
    w, wc = (h[2]["s"], h[2]["cpu_s"]) if h[2] else (float("nan"), float("nan"))
    print(f"{'first USER-mode case after warmup, wall (s)':<58}{'-':>14}{w:>14.2f}")
    print(f"{'first USER-mode case after warmup, CPU (s)':<58}{'-':>14}{wc:>14.2f}")
    print(f"{'  stall cycles (equal)':<58}{b[1]['stall']:>14,}{h[1]['stall']:>14,}")

    def cell(r: dict | None, key: str) -> str:
        return f"{r[key]:>14.2f}" if r else f"{'-':>14}"

    for i, what in ((3, "empty numba cache"), (4, "after warmup")):
        for key, unit in (("s", "wall"), ("cpu_s", "CPU")):
            print(f"{f'first mapper search, {what}, {unit} (s)':<58}{cell(b[i], key)}{cell(h[i], key)}")


if __name__ == "__main__":
    main()
