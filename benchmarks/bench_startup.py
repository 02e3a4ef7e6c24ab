"""Start-up and sweep-scaling figures of this tree next to a baseline commit, measured in one run.

Run (about two minutes on 2 idle cores)::

    python benchmarks/bench_startup.py                       # baseline e2c7944, best of 5 / 3
    python benchmarks/bench_startup.py --baseline HEAD~3 --repeat 7 --sweep-repeat 5
    python benchmarks/bench_startup.py --skip-sweep        # start-up figures only
    python benchmarks/bench_startup.py --skip-startup      # sweep figures only

The baseline is checked out into a temporary ``git worktree`` (removed at the end); every figure
is a fresh subprocess of this interpreter with ``PYTHONPATH`` (and the working directory) set to
one tree, the two trees alternating so that load from other processes hits both alike:

- ``import accelsim`` -- whole process, wall;
- ``accelsim --version`` -- whole process, wall (the console script's code: ``accelsim.cli.main``);
- ``accelsim simulate`` of ResNet-50 on the 128x128 systolic array -- whole process, wall, warm
  (the first, discarded run fills the OS file cache and any on-disk JIT cache);
- structural sweep points/s with 1 and 2 workers: the 144-point grid of ``bench_sweep.py``
  (array shape x dataflow x SRAM sizes x DRAM bandwidth; every point needs a new tiling and
  simulation), points / wall time of ``run_sweep`` in a fresh process (store writes and the final
  Pareto front included, interpreter start-up excluded), and the 1 -> 2 worker scaling (1 and 2
  workers run back to back; the best such pair);
- a control: the same ratio for a pure-Python CPU loop in 1 vs 2 forked processes, i.e. what the
  machine gives any CPU-bound job at that moment (on a shared machine it is well below 2).

Each figure is the best of N runs; the 1-minute load average (``/proc/loadavg``) at the start of
that best run is printed next to it, since the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HW = "hw_configs/systolic_128x128_os.yaml"
CLI = "import sys; from accelsim.cli import main; sys.argv[0] = 'accelsim'; sys.exit(main())"
SWEEP_CODE = r"""
import json, sys, tempfile, time
from pathlib import Path
spec = json.loads(sys.argv[1]); workers = int(sys.argv[2])
from accelsim.dse import run_sweep
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    res = run_sweep(spec, Path(d) / "s.sqlite", workers=workers)
    wall = time.perf_counter() - t0
assert res.evaluated == int(sys.argv[3]), (res.evaluated, res.errors, res.invalid)
print(json.dumps({"points_per_s": res.evaluated / wall, "wall_s": wall}))
"""
CONTROL_CODE = r"""
import multiprocessing as mp, time
def spin(n=3_000_000):
    s = 0
    for i in range(n):
        s += i * i
    return s
if __name__ == "__main__":
    t0 = time.perf_counter(); spin(); spin(); one = time.perf_counter() - t0
    ctx = mp.get_context("fork")
    ps = [ctx.Process(target=spin) for _ in range(2)]
    t0 = time.perf_counter()
    for p in ps: p.start()
    for p in ps: p.join()
    print(one / (time.perf_counter() - t0))
"""
STRUCTURAL = {
    "name": "bench_structural", "hardware": HW, "workloads": ["zoo:resnet50"],
    "axes": {"rows": [64, 128, 256], "cols": [64, 128, 256], "dataflow": ["os", "ws"],
             "ifmap_sram.size_kb": [128, 512], "filter_sram.size_kb": [64, 256], "dram.bw_gbps": [12.8, 25.6]},
}
STRUCTURAL_POINTS = 144


def load1() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def run(tree: Path, args: list[str]) -> tuple[float, str]:
    """Wall time of one fresh interpreter running ``args`` in ``tree``; its stdout."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: {' '.join(args)[:80]} failed:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def best(samples: list[tuple[float, float]], higher_is_better: bool = False) -> tuple[float, float]:
    """(value, load at its start) of the best sample."""
    return max(samples) if higher_is_better else min(samples)


def measure(trees: dict[str, Path], repeat: int, sweep_repeat: int, sweep: bool,
            startup: bool = True) -> dict[str, dict[str, tuple[float, float]]]:
    probes = {
        "import accelsim (s)": ["-c", "import accelsim"],
        "accelsim --version (s)": ["-c", CLI, "--version"],
        "accelsim simulate ResNet-50 128x128 (s)": ["-c", CLI, "simulate", "--workload", "models/resnet50.yaml",
                                                    "--hw", HW],
    }
    out: dict[str, dict[str, tuple[float, float]]] = {name: {} for name in trees}
    for tree in trees.values():  # warm the file cache (and any on-disk JIT cache) once per tree
        run(tree, probes["accelsim simulate ResNet-50 128x128 (s)"])
    for label, args in (probes if startup else {}).items():
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for _ in range(repeat):
            for name, tree in trees.items():
                load = load1()
                samples[name].append((run(tree, args)[0], load))
        for name in trees:
            out[name][label] = best(samples[name])
        print(f"  measured {label}", file=sys.stderr, flush=True)
    if not sweep:
        return out
    spec = json.dumps(STRUCTURAL)
    labels = {w: f"structural sweep, {w} worker{'s' if w > 1 else ''} (points/s)" for w in (1, 2)}
    sweeps: dict[str, dict[int, list[tuple[float, float]]]] = {name: {1: [], 2: []} for name in trees}
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    control = []
    for _ in range(sweep_repeat):
        for name, tree in trees.items():  # 1 then 2 workers back to back: the pair sees the same load
            got = {}
            for workers in (1, 2):
                load = load1()
                _, text = run(tree, ["-c", SWEEP_CODE, spec, str(workers), str(STRUCTURAL_POINTS)])
                got[workers] = (json.loads(text)["points_per_s"], load)
                sweeps[name][workers].append(got[workers])
            pairs[name].append((got[2][0] / got[1][0], max(got[1][1], got[2][1])))
        load = load1()  # what the machine gives a CPU-bound job at this moment
        control.append((float(run(ROOT, ["-c", CONTROL_CODE])[1]), load))
    print("  measured structural sweeps", file=sys.stderr, flush=True)
    for name in trees:
        for w in (1, 2):
            out[name][labels[w]] = best(sweeps[name][w], higher_is_better=True)
        out[name]["scaling 1 -> 2 workers, best pair (x)"] = best(pairs[name], higher_is_better=True)
        out[name]["control: pure-Python loop, 2 processes vs 1 (x)"] = best(control, higher_is_better=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="e2c7944", help="commit to compare with (default e2c7944)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per start-up figure (best is kept)")
    ap.add_argument("--sweep-repeat", type=int, default=3, help="runs per sweep figure (best is kept)")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    args = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="accelsim-bench-") as d:
        base = Path(d) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            trees = {f"baseline {args.baseline}": base, f"HEAD {head}{'+dirty' if dirty else ''}": ROOT}
            print(f"cpus {len(os.sched_getaffinity(0))}, python {sys.version.split()[0]}, load at start {load1():.2f}",
                  flush=True)
            res = measure(trees, args.repeat, args.sweep_repeat, not args.skip_sweep, not args.skip_startup)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    names = list(trees)
    labels = list(res[names[0]])
    w = max((len(x) for x in labels), default=22)
    w = max(w, 22)
    print(f"\n{'best of ' + str(args.repeat) + ' (sweeps: ' + str(args.sweep_repeat) + ')':<{w}}  " +
          "  ".join(f"{n:>26}" for n in names) + "   HEAD/baseline")
    for label in labels:
        cells = [f"{res[n][label][0]:>10.3f} (load {res[n][label][1]:5.2f})" for n in names]
        ratio = res[names[1]][label][0] / res[names[0]][label][0]
        print(f"{label:<{w}}  " + "  ".join(f"{c:>26}" for c in cells) + f"   {ratio:10.2f}")
    print(json.dumps({n: {k: round(v[0], 4) for k, v in r.items()} for n, r in res.items()}))


if __name__ == "__main__":
    main()
