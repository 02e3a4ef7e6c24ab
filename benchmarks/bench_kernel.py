"""The mapper's compiled evaluator (``accelsim.mapping.fast``) now vs a frozen older version, side by side.

Run::

    python benchmarks/bench_kernel.py                 # us per row and FastEvaluator.__init__, old vs new
    python benchmarks/bench_kernel.py --compile       # also cold numba compile time of each (fresh cache dirs)
    python benchmarks/bench_kernel.py --base 4baa135  # the older version to compare with (a git revision)

Workload: every ``FastEvaluator.batch`` call (rows = temporal mappings of one spatial unrolling)
and every ``FastEvaluator`` construction made while ``accelsim.simulate`` maps ResNet-50 on
``hw_configs/systolic_128x128_os.yaml`` resized to 64x64 (``mapping: search``, caches empty), captured
once, then replayed on both kernels. The older ``fast.py`` is taken from git (``git show
REV:accelsim/mapping/fast.py``) into a module ``accelsim.mapping._fast_<rev>`` in a temp directory
(its numba cache is kept there between runs). Checks that both give bit-identical (``==``) energy
and latency on every row (and that the new one with the mapper's row pruning, as ``search_best``
calls it, keeps the fastest row and prices every kept row equal), then prints us/row (best of
``--repeat`` passes; the pruned figure per row submitted), the speed-up, and the
per-construction time of ``FastEvaluator`` (hierarchy-derived arrays cached per hierarchy object in
the new version; the replay builds each (layer, hierarchy) pair as the search did).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.mapping import fast as F  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402


def load_old(rev: str, file: str = "accelsim/mapping/fast.py"):
    """The module ``file`` (default ``accelsim/mapping/fast.py``) as of git revision ``rev``, as
    ``accelsim.mapping._<stem>_<rev>`` (relative imports resolve in accelsim.mapping)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{file}"], check=True,
                         capture_output=True, text=True).stdout
    d = Path(tempfile.gettempdir()) / f"accelsim_bench_kernel_{os.getuid()}"
    d.mkdir(exist_ok=True)
    stem = Path(file).stem.lstrip("_")
    path = d / f"_{stem}_{rev}.py"
    if not path.exists() or path.read_text() != src:  # keep the mtime (numba's cache key) when unchanged
        path.write_text(src)
    name = f"accelsim.mapping._{stem}_{rev}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_N_ARGS = 34  # _batch(bounds, ..., R, IR, zz) of 4baa135


#: the mapper's row pruning as ``search_best`` calls it on a search's first candidate: objective
#: latency, near-tie share 0.005, top-1, nothing known yet (``fast._kernel``)
_PRUNE = (F.OBJ_CODE["latency"], 0.005, np.full((1, 1), np.inf), np.full(1, np.inf))


def _run_batch(mod, a, prune: bool = False):
    """``mod._batch`` on captured arguments ``a`` -> (energy, latency) (``prune``: with the mapper's
    row pruning; pruned rows are inf)."""
    if mod._batch.py_func.__code__.co_argcount == _N_ARGS:  # 4baa135: one hierarchy, the variant arrays
        return mod._batch(*(x[0] if i - 4 in F._VARIANT_ARGS else x for i, x in enumerate(a)))  # without axis 0
    e, lat = mod._batch(*a, True, F._EMPTY, F._EMPTY, F._EMPTY, F._EMPTY, *(_PRUNE if prune else F._NO_PRUNE))[:2]
    return e[0], lat[0]


def capture(rows: int = 64, cols: int = 64):
    """(batch argument tuples, (layer, hierarchy) of each FastEvaluator construction) of a searched ResNet-50 point."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_mapping_sim import clear_caches

    hw = accelsim.load_hardware(ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    hw = hw.model_copy(update={"rows": rows, "cols": cols, "mapping": "search"})
    calls, inits = [], []
    orig_batch, orig_init = F._batch, F.FastEvaluator.__init__

    def batch(*args):
        if len(args) == _N_ARGS or args[_N_ARGS]:  # a batch call (not FastEvaluator.evaluate's single row)
            calls.append(args[:_N_ARGS])  # the arguments both versions take (the new one adds four more)
        return orig_batch(*args)

    def init(self, layer, hierarchy, rounding="accelsim", variants=()):
        inits.append((layer, hierarchy, rounding))
        orig_init(self, layer, hierarchy, rounding, variants)

    F._batch, F.FastEvaluator.__init__ = batch, init
    try:
        clear_caches()
        accelsim.simulate(get_model("resnet50"), hw)
    finally:
        F._batch, F.FastEvaluator.__init__ = orig_batch, orig_init
    return calls, inits


def replay(mod, calls, inits, repeat: int, prune: bool = False):
    """(outputs, best seconds for all batch calls, best seconds for all constructions) on module ``mod``."""
    new = mod is F
    outs = [_run_batch(mod, a, prune) for a in calls]  # loads / compiles
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for a in calls:
            _run_batch(mod, a, prune)
        best = min(best, time.perf_counter() - t)
    best_init = float("inf")
    for _ in range(repeat):
        if new and hasattr(F, "_HIER_CACHE"):
            F._HIER_CACHE.clear()  # as at a new searched point: every hierarchy is new
            getattr(F, "_HIER_BY_ID", {}).clear()
        t = time.perf_counter()
        for layer, h, r in inits:
            mod.FastEvaluator(layer, h, r)
        best_init = min(best_init, time.perf_counter() - t)
    return outs, best, best_init


_COMPILE = """
import sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
if {rev!r}:
    from bench_kernel import load_old
    mod = load_old({rev!r})
else:
    from accelsim.mapping import fast as mod
from accelsim.hardware.systolic import SystolicArray
from accelsim.mapping.implied import implied_hierarchy
from accelsim.mapping.ir import LayerDims, Mapping
sram = {{"size_kb": 8}}
h = implied_hierarchy(SystolicArray(name="w", rows=4, cols=4, ifmap_sram=sram, filter_sram=sram, ofmap_sram=sram))
layer = LayerDims(K=8, C=8, P=4, Q=4, R=3, S=3, in_h=6, in_w=6)
loops = [("K", 2), ("C", 2), ("P", 4), ("Q", 4), ("R", 3), ("S", 3)]
m = Mapping.from_levels({{"D1": [("K", 4)], "D2": [("C", 4)]}},
                        {{op: [[]] * (len(h.levels(op)) - 1) + [loops] for op in "WIO"}})
t0 = time.process_time()  # CPU seconds: less sensitive to other load than wall time
fe = mod.FastEvaluator(layer, h)
d, s, c = fe.mapping_arrays(m)
fe.batch(m.spatial, d[None], s[None], [len(d)], c[None])
fe.evaluate(m)
print(time.process_time() - t0)
"""


def compile_seconds(rev: str | None) -> float:
    """CPU seconds to compile ``_batch`` and the ``evaluate`` path of one version from an empty numba cache
    (its own kernels only: no search)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        code = _COMPILE.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), rev=rev or "")
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="4baa135", help="git revision of the older fast.py (default 4baa135)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also measure cold compile time of both (subprocesses)")
    args = ap.parse_args(argv)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    old = load_old(args.base)
    calls, inits = capture()
    n_rows = sum(a[26].shape[0] for a in calls)
    o_out, o_t, o_init = replay(old, calls, inits, args.repeat)
    n_out, n_t, n_init = replay(F, calls, inits, args.repeat)
    p_out, p_t, _ = replay(F, calls, inits[:0], args.repeat, prune=True)
    same_api = old._batch.py_func.__code__.co_argcount != _N_ARGS
    op_t = replay(old, calls, inits[:0], args.repeat, prune=True)[1] if same_api else float("nan")
    bad = sum(not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])) for a, b in zip(o_out, n_out))
    kept = [np.isfinite(p[1]) for p in p_out]  # pruned rows: inf; the others must be equal
    bad += sum(not (np.array_equal(a[0][k], p[0][k]) and np.array_equal(a[1][k], p[1][k])
                    and np.isfinite(p[1]).any() and a[1][np.isfinite(a[1])].min() == p[1][k].min())
               for a, p, k in zip(o_out, p_out, kept) if np.isfinite(a[1]).any())
    share = 1 - sum(k.sum() for k in kept) / n_rows
    print(f"ResNet-50, 64x64 os, one searched point: {len(calls)} batch calls, {n_rows} rows, "
          f"{len(inits)} FastEvaluator constructions; rows differing old vs new: {bad} calls")
    print(f"{'':28} {args.base + ' (old)':>14} {'now':>10} {'speed-up':>9}")
    print(f"{'kernel us/row':28} {1e6 * o_t / n_rows:14.2f} {1e6 * n_t / n_rows:10.2f} {o_t / n_t:8.1f}x")
    print(f"{'kernel ms/point':28} {1e3 * o_t:14.1f} {1e3 * n_t:10.1f}")
    print(f"{'  with row pruning us/row':28} {1e6 * op_t / n_rows:14.2f} {1e6 * p_t / n_rows:10.2f} {o_t / p_t:8.1f}x"
          f"  ({100 * share:.0f}% of rows pruned: latency, tie 0.005, top-1)")
    print(f"{'FastEvaluator() us each':28} {1e6 * o_init / len(inits):14.1f} {1e6 * n_init / len(inits):10.1f} "
          f"{o_init / n_init:8.1f}x")
    if args.compile:
        co, cn = compile_seconds(args.base), compile_seconds(None)
        print(f"{'cold compile CPU s':28} {co:14.1f} {cn:10.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
