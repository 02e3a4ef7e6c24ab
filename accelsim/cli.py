"""Command line: ``accelsim simulate | info | validate`` (+ subcommands of optional modules).

Bad input prints one line (``accelsim: error: <file>: field '<x>': <what was expected>``) and
exits with code 2. Other packages add subcommands through :data:`SUBCOMMAND_MODULES`: each
module defines ``register(subparsers)``, and must not import heavy optional dependencies at
module level.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ._version import __version__
from .errors import AccelsimError

SUBCOMMAND_MODULES = ["accelsim.frontend.cli", "accelsim.dse.cli", "accelsim.dse.fpga.cli", "accelsim.sim.warmup",
                      "accelsim.mapping.cli"]
EXIT_BAD_INPUT = 2


def resolve_workload(spec: str):  # type: ignore[no-untyped-def]
    """A workload file, or ``zoo:<name>`` for a built-in model."""
    from .workload.io import load_workload

    return load_workload(spec)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--top 0`` is an error, not an empty plot)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def check_output_path(path: str, option: str, suffixes: Sequence[str] = ()) -> None:
    """Refuse an output path before any work is done: a directory, a missing or unwritable parent
    directory (never created silently), or a suffix outside ``suffixes``."""
    from .errors import ConfigError

    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise ConfigError(f"unsupported file type {p.suffix or '(none)'!r}; expected one of {', '.join(suffixes)}",
                          source=option, field=None)
    if p.is_dir() or path.endswith(("/", os.sep)) or p.name in ("", ".", ".."):
        raise ConfigError(f"{path!r} is a directory; give a file name", source=option)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"directory {str(parent)!r} does not exist (create it first)", source=option)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"directory {str(parent)!r} is not writable", source=option)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .api import simulate
    from .hardware.io import load_hardware

    if args.out:
        check_output_path(args.out, "--out")
    if args.plot:
        check_output_path(args.plot, "--plot", PLOT_SUFFIXES)
    wl = resolve_workload(args.workload)
    hw = load_hardware(args.hw)
    compare = None if args.compare_dense is None else args.compare_dense
    report = simulate(wl, hw, compare_dense=compare)
    if args.format == "table":
        print(report.table(max_rows=args.max_rows))
        print()
        print(report.summary_text())
    elif args.format == "csv":
        sys.stdout.write(report.to_frame().to_csv(index=False))
    else:
        sys.stdout.write(report.to_json() + "\n")
    if args.out:
        report.to_csv(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.plot:
        report.plot(args.plot, top=args.top)
        print(f"wrote {args.plot}", file=sys.stderr)
        if report.area_by_component_mm2:
            from .plot.area import area_plot_path

            print(f"wrote {area_plot_path(args.plot)}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .plot._html_cli import run_report

    return run_report(args)


def _describe_workload(wl: Any) -> str:
    df = wl.to_frame()
    lines = [f"workload '{wl.name}': {len(wl)} layers, {wl.total_macs:,} MACs, {wl.total_weight_words:,} weights"]
    ops = df["op"].value_counts().to_dict()
    lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in ops.items()))
    if not wl.is_dense:
        comp = df[df["sparsity"] != "dense"]
        lines.append(f"  compressed layers: {len(comp)}; mean density {df['density'].mean():.2f}; "
                     f"weight bits {sorted(set(df['weight_bits']))}")
    lines.append(df[["layer", "op", "macs", "weight_words", "sparsity", "density", "weight_bits"]].to_string(index=False))
    lines += [f"  note: {n}" for n in wl.notes]
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    from .hardware.io import hardware_to_dict, load_hardware

    target = args.file
    path = Path(target)
    is_hw = path.suffix.lower() == ".cfg"
    if not is_hw and not target.startswith("zoo:") and path.suffix.lower() in (".yaml", ".yml", ".json"):
        from ._validation import read_yaml

        data = read_yaml(path) if path.suffix.lower() != ".json" else None
        is_hw = isinstance(data, dict) and "kind" in data and "layers" not in data
    if is_hw:
        import yaml

        hw = load_hardware(path)
        print(hw.summary())
        print(yaml.safe_dump(hardware_to_dict(hw), sort_keys=False).rstrip())
        table = hw.component_table_text()
        if table is not None:
            print(table)
        from .energy import leakage_power_mw

        leak = leakage_power_mw(hw)
        if leak:
            print("static power (mW): " + ", ".join(f"{k} {v:.3f}" for k, v in leak.items()))
        return 0
    print(_describe_workload(resolve_workload(target)))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .hardware.io import load_hardware

    for f in args.files:
        p = Path(f)
        if p.suffix.lower() == ".cfg":
            load_hardware(p)
            kind = "hardware"
        else:
            try:
                resolve_workload(f)
                kind = "workload"
            except AccelsimError as exc:
                if "looks like a hardware file" not in str(exc):
                    raise
                load_hardware(p)
                kind = "hardware"
        print(f"{f}: valid {kind}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accelsim", description="Simulate compressed neural networks on accelerator hardware.")
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("simulate", help="simulate a workload on a hardware config and print the per-layer breakdown")
    p.add_argument("--workload", "-w", required=True, help="workload YAML/JSON, SCALE-Sim topology CSV, or zoo:<model>")
    p.add_argument("--hw", required=True, help="hardware YAML/JSON or SCALE-Sim .cfg")
    p.add_argument("--out", "-o", help="write the per-layer table as CSV (one row per layer, workload order)")
    p.add_argument("--plot", help="write the energy/latency breakdown figure (PNG, PDF or SVG)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="what to print (default: table)")
    p.add_argument("--top", type=_positive_int, default=None, help="plot only the N slowest layers")
    p.add_argument("--max-rows", type=_positive_int, default=None, help="print at most N table rows")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--compare-dense", dest="compare_dense", action="store_true", default=None,
                   help="also simulate the dense original (default when the workload is compressed)")
    g.add_argument("--no-compare-dense", dest="compare_dense", action="store_false")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("info", help="describe a workload or hardware file")
    p.add_argument("file", help="workload/hardware file or zoo:<model>")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("validate", help="check workload/hardware files; exit 2 on the first invalid one")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("report", help="write a self-contained interactive HTML page of a simulate run or a sweep",
                       description="Simulate (--workload/--hw), read a saved 'simulate --format json' (--json) or a "
                       "results store (--store), and write one HTML file that opens offline (needs plotly).")
    from .plot._html_cli import add_arguments as _report_arguments  # argparse only; plotly loads when run

    _report_arguments(p)
    p.set_defaults(func=_cmd_report)

    for mod_name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == mod_name or mod_name.startswith(exc.name + ".")):
                continue  # that optional part is not present
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("accelsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `accelsim simulate ... | head`
        return 0
    except Exception as exc:  # a bug, not bad input: say so in one line
        if os.environ.get("ACCELSIM_DEBUG"):
            raise
        print(f"accelsim: internal error: {exc.__class__.__name__}: {exc} "
              "(please report it; set ACCELSIM_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
