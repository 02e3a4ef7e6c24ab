"""``accelsim sweep``, ``accelsim plot`` and ``accelsim results`` (registered by :mod:`accelsim.cli`).

No heavy imports at module level: dask, optuna and matplotlib load only when a command needs them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._validation import positive_int_arg
from ..errors import ConfigError

PLOT_KINDS = ("pareto", "breakdown", "heatmap", "roofline")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .runner import run_sweep
    from .spec import load_sweep

    sweep = load_sweep(args.sweep)
    store = Path(args.store) if args.store else Path(f"{sweep.name}.sqlite")
    if store.is_dir():
        raise ConfigError("is a directory; give the results database file", source=str(store), field="--store")
    res = run_sweep(sweep, store, workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                    chunk_size=args.chunk_size)
    print(res.summary_text(max_rows=args.max_rows))
    attempted = res.requested - res.skipped
    if res.invalid and res.invalid >= attempted and not res.errors:
        # nothing of this run could be simulated: the sweep itself is bad input (exit 2)
        raise ConfigError(f"all {res.invalid} points of this run are invalid (status 'invalid' in {store}: "
                          f"'accelsim results {store}' lists why)", source=str(args.sweep), field="axes")
    if args.export:
        from .store import export

        export(store, args.export, sweep=sweep.name)
        print(f"wrote {args.export}", file=sys.stderr)
    if args.front_csv:
        from .._validation import atomic_write_text

        atomic_write_text(args.front_csv, res.front.to_csv(index=False))
        print(f"wrote {args.front_csv}", file=sys.stderr)
    # some points failed: the valid ones are simulated, stored and exported above; say how many
    # failed and exit 1 (docs/dse.md, "Exit codes")
    if res.invalid:
        print(f"accelsim: {res.invalid} of {res.requested} points of sweep '{sweep.name}' are invalid, "
              f"{attempted - res.invalid - res.errors} were simulated (status 'invalid' in {store}: 'accelsim results {store}' lists why)",
              file=sys.stderr)
    if res.errors:  # a bug in an engine
        print(f"accelsim: internal error: {res.errors} of {res.requested} points of sweep '{sweep.name}' failed "
              f"(status 'error' in {store}; please report it)", file=sys.stderr)
    return 1 if res.invalid or res.errors else 0


def _cmd_results(args: argparse.Namespace) -> int:
    from .store import ResultsStore, export

    p = Path(args.store)
    if not p.exists():
        raise ConfigError("results store not found", source=str(p))
    if p.is_file() and p.stat().st_size == 0:
        raise ConfigError("empty file, not a results store written by 'accelsim sweep'", source=str(p))
    with ResultsStore(p) as st:
        print(f"{p}: {st.count()} points ({st.count(status='ok')} ok, {st.count(status='invalid')} invalid, "
              f"{st.count(status='error')} failed)")
        for name in st.sweeps():
            print(f"  sweep '{name}': {st.count(sweep=name)} points")
            info = st.search_info(name)
            if info and info.get("workload_weights"):
                print(f"    {info['aggregate']} {info['metric']}: worst {info['worst']:.4g} at "
                      + ", ".join(f"{k}={v}" for k, v in info["best_params"].items()) + "; workload weights "
                      + ", ".join(f"{k} {v:.3f}" for k, v in info["workload_weights"].items()))
        runs = st.runs()
        if len(runs):
            print(runs[["run_id", "sweep", "executor", "workers", "evaluated", "skipped", "invalid", "errors"]]
                  .to_string(index=False))
    if args.export:
        export(p, args.export, sweep=args.sweep)
        print(f"wrote {args.export}", file=sys.stderr)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plotting import plot_from_store

    out = plot_from_store(args.store, args.kind, out=args.out, sweep=args.sweep, x=args.x, y=args.y,
                          color=args.color, metric=args.metric, axes=args.axes, agg=args.agg, point=args.point,
                          workload=args.workload, top=args.top)
    print(f"wrote {out}", file=sys.stderr)
    return 0




def _scheduler_address(text: str) -> str:
    """argparse type: a dask scheduler address ``tcp://HOST:PORT`` (also tls://, ucx://)."""
    import re

    if not re.fullmatch(r"(tcp|tls|ucx)://[^\s/:]+:\d{1,5}", text):
        raise argparse.ArgumentTypeError(f"expected a scheduler address such as tcp://127.0.0.1:8786, got {text!r}")
    return text


def register(subparsers: Any) -> None:
    """Add ``sweep``, ``plot`` and ``results`` to the ``accelsim`` command line."""
    p = subparsers.add_parser("sweep", help="explore a design space: run a sweep file into a results store, print the Pareto front")
    p.add_argument("sweep", help="sweep YAML (see docs/dse.md)")
    p.add_argument("--store", help="results database (SQLite; default: ./<sweep name>.sqlite); rerun to resume")
    p.add_argument("--workers", type=positive_int_arg, default=None,
                   help="local worker processes (default: all cores; 1 runs in this process)")
    p.add_argument("--scheduler", type=_scheduler_address, help="run on a dask.distributed cluster, e.g. tcp://127.0.0.1:8786 (needs accelsim[dask])")
    p.add_argument("--chunk-size", type=positive_int_arg, default=None, help="points per task (default: automatic)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--export", help="also write the sweep's points as CSV or Parquet")
    p.add_argument("--front-csv", help="write the Pareto front as CSV")
    p.add_argument("--max-rows", type=positive_int_arg, default=30, help="print at most N front rows (default 30)")
    p.set_defaults(func=_cmd_sweep)

    p = subparsers.add_parser("plot", help="plot a results store: Pareto front, breakdown, heatmap or roofline")
    p.add_argument("--store", required=True, help="results database written by 'accelsim sweep'")
    p.add_argument("--kind", required=True, choices=PLOT_KINDS)
    p.add_argument("--out", "-o", help="figure file (PNG/PDF/SVG; default <store>_<kind>.png)")
    p.add_argument("--sweep", help="which sweep of the store (default: the most recent)")
    p.add_argument("--x", help="pareto: x metric (default: first objective)")
    p.add_argument("--y", help="pareto: y metric (default: second objective)")
    p.add_argument("--color", help="pareto: colour points by this metric or axis")
    p.add_argument("--metric", help="heatmap: the metric shown (default: first objective)")
    p.add_argument("--axes", nargs=2, metavar=("X_AXIS", "Y_AXIS"), help="heatmap: two swept axes (default: the first two)")
    p.add_argument("--agg", choices=["min", "max", "mean", "median"], default=None,
                   help="heatmap: how points differing in other axes are combined (default: best for the metric)")
    p.add_argument("--point", help="breakdown/roofline: one point by key prefix, 'best:<metric>' or 'index:<n>' "
                   "(per-layer plot, re-simulated); default breakdown: the front's points by component")
    p.add_argument("--workload", help="only this workload's points")
    p.add_argument("--top", type=positive_int_arg, default=None, help="breakdown: at most N bars")
    p.set_defaults(func=_cmd_plot)

    p = subparsers.add_parser("results", help="summarise a results store; --export writes CSV/Parquet")
    p.add_argument("store")
    p.add_argument("--export", help="write the points as CSV (.csv) or Parquet (.parquet)")
    p.add_argument("--sweep", help="only this sweep's points")
    p.set_defaults(func=_cmd_results)
