"""The mapper's loop-order enumeration (``_search_kernels.enumerate_orders``) now vs an older version.

Run::

    python benchmarks/bench_enumerate.py                 # ms per call and per point, old vs new
    python benchmarks/bench_enumerate.py --base integ21  # the older version (a git revision)
    python benchmarks/bench_enumerate.py --points 18     # only the first points of the sweep
    python benchmarks/bench_enumerate.py --shapes        # the 21-point array-shape sweep instead

Workload: every ``enumerate_orders`` call made while ``accelsim.simulate`` maps ResNet-50 on the
54-point sweep of ``bench_mapping_sim`` (``hw_configs/systolic_128x128_os.yaml`` at rows x cols
in {32, 64, 128}^2 x os/ws x DRAM 12.8/25.6/51.2 GB/s; with ``--shapes`` the 21 array shapes of
``bench_mapping_sim.SHAPES_AXES``, each point a new hierarchy; caches empty at the start and shared by
the points, as in one sweep worker), captured once, then replayed on both kernels. The older
``_search_kernels.py`` is taken from git into a module in a temp directory (its numba cache kept
there). Checks that both return equal arrays (ranks, orders, allocations, classes, counts) on every
call, then prints CPU ms per call and per point (best of ``--repeat`` passes; outputs kept alive,
as the search's cache keeps them). The number of calls per point is this version's (its cache key
decides which problems share an enumeration).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accelsim  # noqa: E402
from accelsim.mapping import _search_kernels as K  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402
from bench_kernel import load_old  # noqa: E402


def sweep_points(n: int | None = None, shapes: bool = False):
    """The 54 hardware points of the sweep, or the 21 of the array-shape sweep (first ``n`` of them)."""
    hw0 = accelsim.load_hardware(ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    if shapes:
        from bench_mapping_sim import SHAPES_AXES
        return [hw0.model_copy(update={"rows": r, "cols": c})
                for r in SHAPES_AXES["rows"] for c in SHAPES_AXES["cols"]][:n]
    pts = [hw0.model_copy(update={"rows": r, "cols": c, "dataflow": df,
                                  "dram": hw0.dram.model_copy(update={"bw_gbps": bw})})
           for r, c, df, bw in itertools.product([32, 64, 128], [32, 64, 128], ["os", "ws"], [12.8, 25.6, 51.2])]
    return pts[:n]


def capture(points) -> list[tuple]:
    """Argument tuples of every enumerate_orders call while simulating ResNet-50 on ``points``."""
    from bench_mapping_sim import clear_caches

    accelsim.simulate(get_model("tiny_cnn"), points[0])  # kernels loaded
    calls = []
    orig = K.enumerate_orders

    def wrap(*args):
        calls.append(args)
        return orig(*args)

    K.enumerate_orders = wrap
    try:
        clear_caches()
        wl = get_model("resnet50")
        for hw in points:
            accelsim.simulate(wl, hw)
    finally:
        K.enumerate_orders = orig
    return calls


def replay(fn, calls, repeat: int):
    """(outputs, best CPU seconds for all calls)."""
    outs = [fn(*a) for a in calls]  # loads / compiles
    best = float("inf")
    for _ in range(repeat):
        kept = []
        t = time.process_time()
        for a in calls:
            kept.append(fn(*a))
        best = min(best, time.process_time() - t)
    return outs, best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="integ21", help="git revision of the older _search_kernels.py (default integ21)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--points", type=int, default=None, help="first N points of the 54 (default all)")
    ap.add_argument("--shapes", action="store_true", help="the 21-point array-shape sweep (a new hierarchy per point)")
    args = ap.parse_args(argv)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    old = load_old(args.base, "accelsim/mapping/_search_kernels.py")
    pts = sweep_points(args.points, args.shapes)
    calls = capture(pts)
    o_out, o_t = replay(old.enumerate_orders, calls, args.repeat)
    n_out, n_t = replay(K.enumerate_orders, calls, args.repeat)
    bad = sum(not all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)) for a, b in zip(o_out, n_out))
    perms = sum(int(o[4]) for o in n_out)
    print(f"ResNet-50, {len(pts)}-point {'shapes ' if args.shapes else ''}sweep: {len(calls)} enumerations ({len(calls) / len(pts):.1f} per point), "
          f"{perms} loop orders; calls differing old vs new: {bad}")
    print(f"{'CPU':18} {args.base + ' (old)':>14} {'now':>10} {'speed-up':>9}")
    print(f"{'ms per call':18} {1e3 * o_t / len(calls):14.3f} {1e3 * n_t / len(calls):10.3f} {o_t / n_t:8.2f}x")
    print(f"{'us per loop order':18} {1e6 * o_t / perms:14.3f} {1e6 * n_t / perms:10.3f}")
    print(f"{'ms per point':18} {1e3 * o_t / len(pts):14.2f} {1e3 * n_t / len(pts):10.2f}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
