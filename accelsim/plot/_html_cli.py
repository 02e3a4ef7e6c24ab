"""``accelsim report``: argument handling and the JSON reader (the pages are in :mod:`.html_report`).

Three sources, exactly one per call: ``--workload W --hw H`` (simulate, then write the page),
``--json run.json`` (the output of ``accelsim simulate --format json``) or ``--store S``
(a sweep of a results store). No plotly import here: :mod:`.html_report` loads it when a page is built.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: a simulate JSON larger than this is refused before it is read
MAX_JSON_BYTES = 256 * 1024 * 1024


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``accelsim report`` options."""
    p.add_argument("--workload", "-w", help="simulate this workload (YAML/JSON, SCALE-Sim CSV or zoo:<model>) ...")
    p.add_argument("--hw", help="... on this hardware (YAML/JSON or SCALE-Sim .cfg)")
    p.add_argument("--json", dest="json_file", help="or: a saved 'accelsim simulate --format json' output")
    p.add_argument("--store", help="or: a results store written by 'accelsim sweep'")
    p.add_argument("--sweep", help="--store: which sweep (default: the most recent)")
    p.add_argument("--x", help="--store: scatter x metric (default: first objective)")
    p.add_argument("--y", help="--store: scatter y metric (default: second objective)")
    p.add_argument("--layers", type=_non_negative_int, default=20,
                   help="--store: re-simulate the first N front points for a per-layer breakdown (default 20; 0: none)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--compare-dense", dest="compare_dense", action="store_true", default=None,
                   help="also simulate the dense original (default when the workload is compressed)")
    g.add_argument("--no-compare-dense", dest="compare_dense", action="store_false")
    p.add_argument("--out", "-o", required=True, help="the HTML file to write (its directory must exist)")


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def run_report(args: argparse.Namespace) -> int:
    """Build the page the arguments ask for and write it atomically to ``--out``."""
    from .html_report import check_out_path, require_plotly, simulate_page, store_page, write_page

    sources = [n for n, v in (("--workload/--hw", args.workload or args.hw), ("--json", args.json_file),
                              ("--store", args.store)) if v]
    if len(sources) != 1:
        raise ConfigError("give exactly one of --workload with --hw, --json or --store"
                          + (f" (got {', '.join(sources)})" if sources else ""), source="accelsim report")
    store_only = [o for o, v in (("--sweep", args.sweep), ("--x", args.x), ("--y", args.y)) if v is not None]
    if store_only and not args.store:
        raise ConfigError(f"{', '.join(store_only)} only apply to --store", source="accelsim report")
    if args.compare_dense is not None and not args.workload:
        raise ConfigError("--compare-dense/--no-compare-dense only apply to --workload/--hw", source="accelsim report")
    out = check_out_path(args.out)  # before any simulation runs
    require_plotly()
    if args.store:
        text = store_page(args.store, sweep=args.sweep, x=args.x, y=args.y, layers_for=args.layers)
    else:
        if args.json_file:
            report = load_report_json(args.json_file)
        else:
            if not (args.workload and args.hw):
                raise ConfigError("--workload and --hw go together", source="accelsim report")
            from ..api import simulate
            from ..hardware.io import load_hardware
            from ..workload.io import load_workload

            report = simulate(load_workload(args.workload), load_hardware(args.hw), compare_dense=args.compare_dense)
        text = simulate_page(report)
    write_page(out, text)
    print(f"wrote {out} ({len(text.encode()) / 1e6:.1f} MB, opens offline)", file=sys.stderr)
    return 0


def load_report_json(path: str | Path):  # type: ignore[no-untyped-def]
    """A :class:`~accelsim.report.Report` rebuilt from ``accelsim simulate --format json`` output."""
    from ..report import LayerStats, Report

    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise ConfigError("file not found", source=src)
    if p.stat().st_size > MAX_JSON_BYTES:
        raise ConfigError(f"larger than {MAX_JSON_BYTES // 2**20} MB; not a simulate report", source=src)
    try:
        data = json.loads(p.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ConfigError(f"not a simulate JSON report ({str(exc).splitlines()[0][:120]})", source=src) from None
    if not isinstance(data, dict):
        raise ConfigError("expected the JSON object written by 'accelsim simulate --format json'", source=src)
    for key in ("workload", "hardware", "clock_mhz", "layers"):
        if key not in data:
            raise ConfigError("missing (expected 'accelsim simulate --format json' output)", source=src, field=key)
    if not isinstance(data["layers"], list) or not data["layers"]:
        raise ConfigError("expected a non-empty list of layers", source=src, field="layers")
    clock = data["clock_mhz"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not clock > 0 or clock == float("inf"):
        raise ConfigError(f"expected a positive number, got {clock!r}", source=src, field="clock_mhz")
    names = {f.name for f in fields(LayerStats)}
    required = {f.name for f in fields(LayerStats) if f.default is MISSING and f.default_factory is MISSING}
    layers = []
    for i, raw in enumerate(data["layers"]):
        if not isinstance(raw, dict):
            raise ConfigError("expected an object", source=src, field=f"layers[{i}]")
        missing = sorted(required - set(raw))
        if missing:
            raise ConfigError(f"missing {', '.join(missing)}", source=src, field=f"layers[{i}]")
        try:
            s = LayerStats(**{k: v for k, v in raw.items() if k in names})
            _check_layer(s)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), source=src, field=f"layers[{i}]") from None
        layers.append(s)
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    compared = "speedup_vs_dense" in summary
    area = summary.get("area_by_component_mm2") or {}
    return Report(
        workload=str(data["workload"]), hardware=str(data["hardware"]),
        hardware_kind=str(data.get("hardware_kind", "")), clock_mhz=float(clock), layers=layers,
        hardware_summary=str(data.get("hardware_summary") or data["hardware"]),
        accelsim_version=str(data.get("accelsim_version", "")), compared_to_dense=compared,
        area_by_component_mm2={str(k): float(v) for k, v in area.items()} if isinstance(area, dict) else {},
        dense_latency_cycles=summary.get("dense_latency_cycles") if compared else None,
        dense_energy_pj=summary.get("dense_energy_pj") if compared else None,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _check_layer(s: Any) -> None:
    import math

    for name in ("compute_cycles", "stall_cycles", "fill_cycles", "drain_cycles", "macs"):
        v = getattr(s, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"field {name!r}: expected a non-negative integer, got {v!r}")
    if not isinstance(s.energy_by_component_pj, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in s.energy_by_component_pj.values()):
        raise ValueError("field 'energy_by_component_pj': expected an object of finite numbers")
    if not isinstance(s.notes, list):
        raise ValueError("field 'notes': expected a list of strings")
