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
from ._validation import PLOT_SUFFIXES, check_output_path, positive_int_arg

SUBCOMMAND_MODULES = ["accelsim.frontend.cli", "accelsim.dse.cli", "accelsim.dse.fpga.cli", "accelsim.sim.warmup",
                      "accelsim.mapping.cli"]
EXIT_BAD_INPUT = 2


def resolve_workload(spec: str):  # type: ignore[no-untyped-def]
    """A workload file, or ``zoo:<name>`` for a built-in model."""
    from .workload.io import load_workload

    return load_workload(spec)


def with_objective(hw: Any, objective: str, source: str) -> Any:
    """``hw`` with its mapper objective set (``--objective``): systolic configs on ``mapping: search``
    and ZigZag accelerators (``kind: loopnest``); anything else is a one-line ConfigError (the
    objective would be silently ignored)."""
    from .errors import ConfigError

    if hw.kind != "loopnest" and (getattr(hw, "mapping", None) != "search" or not hasattr(hw, "objective")):
        what = f"kind {hw.kind!r}" if not hasattr(hw, "objective") else f"mapping {getattr(hw, 'mapping', None)!r}"
        raise ConfigError(f"--objective applies to hardware that searches mappings (systolic with mapping: search, "
                          f"a ZigZag accelerator), not {what}", source=str(source), field="objective")
    return type(hw).model_validate({**hw.model_dump(), "objective": objective})


def with_mapping_file(hw: Any, mapping: str, source: str) -> Any:
    """``hw`` (a ZigZag accelerator, ``kind: loopnest``) with a ZigZag mapping file (``--mapping``);
    any other hardware is a one-line ConfigError."""
    from .errors import ConfigError

    if hw.kind != "loopnest":
        raise ConfigError(f"--mapping (a ZigZag mapping file) applies to a ZigZag accelerator file (kind loopnest), "
                          f"not kind {hw.kind!r}", source=str(source), field="mapping")
    return checked_mapping_file(type(hw).model_validate({**hw.model_dump(), "mapping_file": str(mapping)}))


def checked_mapping_file(hw: Any) -> Any:
    """``hw`` once its ZigZag mapping file (``mapping_file`` of ``kind: loopnest``), if any, parses:
    errors before any simulation starts (the hardware layer only reads the YAML)."""
    if getattr(hw, "mapping_file", None):
        from .mapping.zigzag_mapping import load_mapping_file

        load_mapping_file(hw.mapping_file)
    return hw


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .api import simulate
    from .hardware.io import load_hardware

    if args.out:
        check_output_path(args.out, "out")
    if args.plot:
        check_output_path(args.plot, "plot", PLOT_SUFFIXES)
    wl = resolve_workload(args.workload)
    hw = load_hardware(args.hw)
    if args.objective is not None:
        hw = with_objective(hw, args.objective, args.hw)
    if args.mapping is not None:
        hw = with_mapping_file(hw, args.mapping, args.hw)
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


def _shape_cells(layer: Any) -> list[str]:
    """SCALE-Sim's view of a layer: C (input channels), K (output channels), H/W (input map),
    R/S (kernel), stride; linear layers as 1x1 convs on a 1x``tokens`` map; '-' where it does not apply."""
    op = layer.op
    if op in ("conv2d", "pool"):
        c = layer.in_channels if op == "conv2d" else layer.channels
        k = layer.out_channels if op == "conv2d" else layer.channels
        stride = (str(layer.stride_h) if layer.stride_h == layer.stride_w else f"{layer.stride_h}x{layer.stride_w}")
        return [str(c), str(k), str(layer.in_h), str(layer.in_w), str(layer.kernel_h), str(layer.kernel_w), stride]
    if op == "linear":
        return [str(layer.in_features), str(layer.out_features), "1", str(layer.tokens), "1", "1", "1"]
    return ["-"] * 7


def _describe_workload(wl: Any) -> str:
    """Totals, op counts, compression of the layers that have weights, and one row per layer with
    its SCALE-Sim-style shape (C/K/H/W/R/S/stride) and compression."""
    layers = list(wl.layers)
    lines = [f"workload '{wl.name}': {len(layers)} layers, {wl.total_macs:,} MACs, {wl.total_weight_words:,} weights"]
    ops: dict[str, int] = {}
    for layer in layers:
        ops[layer.op] = ops.get(layer.op, 0) + 1
    lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in ops.items()))
    if not wl.is_dense:
        weighted = [ly for ly in layers if ly.weight_words > 0]  # element-wise/pool layers have no weights
        comp = [ly for ly in weighted if ly.compression.sparsity.kind != "dense"]
        words = sum(ly.weight_words for ly in weighted)
        dens = [ly.compression.sparsity.effective_density for ly in weighted]
        kept = sum(ly.weight_words * ly.compression.sparsity.effective_density for ly in weighted)
        bits = sorted({ly.compression.quant.weight_bits for ly in weighted})
        lines.append(f"  compressed layers: {len(comp)} of {len(weighted)} with weights; mean density "
                     f"{sum(dens) / len(dens) if dens else 1.0:.2f} over those {len(weighted)} layers "
                     f"({kept / words if words else 1.0:.2f} of all weights kept); weight bits {bits}")
    head = ["layer", "op", "C", "K", "H", "W", "R", "S", "stride", "macs", "weight_words", "sparsity", "density",
            "weight_bits"]
    rows = [head]
    for ly in layers:
        c = ly.compression
        rows.append([ly.name, ly.op, *_shape_cells(ly), f"{ly.macs:,}", f"{ly.weight_words:,}", c.sparsity.kind,
                     f"{c.sparsity.effective_density:.3g}" if ly.weight_words else "-", str(c.quant.weight_bits)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines += [" ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
              for r in rows]
    lines.append("  C/K: input/output channels, H/W: input height/width, R/S: kernel height/width "
                 "(linear layers as 1x1 convs on a 1 x tokens map, as SCALE-Sim writes them)")
    lines += [f"  note: {n}" for n in wl.notes]
    return "\n".join(lines)


#: what ``info``/``validate`` call each kind of file
FILE_KINDS = ("workload", "hardware", "recipe", "sweep", "zigzag workload", "zigzag accelerator", "zigzag mapping")
_RECIPE_KEYS = {"prune", "quantize", "factorize", "smartexchange", "mixed_precision", "overrides"}


def detect_kind(target: str) -> str:
    """The kind of a file (one of :data:`FILE_KINDS`) from its extension and top-level keys:
    ``accelsim_recipe``/``accelsim_sweep`` markers (or recipe sections / sweep ``axes``), ZigZag
    lists (mapping entries have ``spatial_mapping``-style keys, workload entries ``operator_type``),
    ZigZag accelerators (``operational_array`` + ``memories``), accelsim hardware (``kind``, no
    ``layers``); anything else is read as a workload (SCALE-Sim CSV, ONNX, ``zoo:``...)."""
    if target.startswith("zoo:"):
        return "workload"
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix == ".cfg":
        return "hardware"
    if suffix not in (".yaml", ".yml", ".json"):
        return "workload"
    from .workload.zigzag_workload import is_zigzag_workload_file

    if suffix != ".json" and is_zigzag_workload_file(path):
        from .hardware.zigzag_io import _read_yaml
        from .mapping.zigzag_mapping import MAPPING_KEYS

        data = _read_yaml(path)
        first = data[0] if isinstance(data, list) and data else None
        if isinstance(first, dict) and "operator_type" not in first and set(first) <= set(MAPPING_KEYS):
            return "zigzag mapping"
        return "zigzag workload"
    from ._validation import read_config_file
    from .errors import ConfigError

    try:
        data = read_config_file(path, "input", ", .cfg, .csv, .onnx")
    except ConfigError as exc:
        # ZigZag's accelerator files are read as they are (repeated keys allowed); ours stay strict
        from .hardware.zigzag_io import _read_yaml, is_zigzag_accelerator

        if suffix == ".json" or "duplicate key" not in str(exc) or not is_zigzag_accelerator(_read_yaml(path)):
            raise
        return "zigzag accelerator"
    if not isinstance(data, dict):
        return "workload"  # its reader names what is wrong
    if "accelsim_sweep" in data or ("axes" in data and "layers" not in data):
        return "sweep"
    if "accelsim_recipe" in data or (data and "layers" not in data and "kind" not in data
                                     and set(data) & _RECIPE_KEYS):
        return "recipe"
    from .hardware.zigzag_io import is_zigzag_accelerator

    if is_zigzag_accelerator(data):
        return "zigzag accelerator"
    if "kind" in data and "layers" not in data:
        return "hardware"
    return "workload"


def load_as(kind: str, target: str) -> Any:
    """Read and fully check ``target`` as ``kind`` (errors: one-line ConfigErrors naming file and field)."""
    if kind in ("workload", "zigzag workload"):
        return resolve_workload(target)
    if kind == "hardware":
        from .hardware.io import load_hardware

        return checked_mapping_file(load_hardware(target))
    if kind == "recipe":
        from .frontend.recipe import load_recipe  # pydantic only: no torch

        return load_recipe(target)
    if kind == "sweep":
        from .dse.spec import load_sweep

        return load_sweep(target)
    if kind == "zigzag accelerator":
        from .hardware.zigzag_io import load_zigzag_accelerator

        return load_zigzag_accelerator(target)
    from .mapping.zigzag_mapping import load_mapping_file

    return load_mapping_file(target)


def _describe_hardware(hw: Any) -> str:
    import yaml

    from .energy import leakage_power_mw
    from .hardware.io import hardware_to_dict

    lines = [hw.summary(), yaml.safe_dump(hardware_to_dict(hw), sort_keys=False).rstrip()]
    table = hw.component_table_text()
    if table is not None:
        lines.append(table)
    leak = leakage_power_mw(hw)
    if leak:
        lines.append("static power (mW): " + ", ".join(f"{k} {v:.3f}" for k, v in leak.items()))
    return "\n".join(lines)


def _describe_recipe(rec: Any, source: str) -> str:
    lines = [f"recipe '{rec.name}' ({source})" + (f": {rec.description}" if rec.description else ""),
             f"  layer types: {', '.join(rec.types)}; seed {rec.seed}"]
    for sec in ("prune", "quantize", "factorize", "smartexchange", "mixed_precision"):
        spec = getattr(rec, sec)
        if spec is not None:
            lines.append(f"  {sec}: " + ", ".join(f"{k}={v}" for k, v in spec.model_dump(exclude_none=True).items()))
    for i, ov in enumerate(rec.overrides):
        d = ov.model_dump(exclude_none=True, exclude_unset=True)
        sel = {k: d.pop(k) for k in ("names", "regex", "types") if k in d}
        changes = ", ".join(f"{k}: {'removed' if v is None else v}" for k, v in
                            ov.model_dump(exclude_unset=True).items() if k not in sel)
        lines.append(f"  override {i}: " + ", ".join(f"{k}={v}" for k, v in sel.items()) + f" -> {changes or 'nothing'}")
    if not rec.overrides:
        lines.append("  overrides: none")
    return "\n".join(lines)


def _describe_sweep(sw: Any) -> str:
    from .dse.axes import grid_size

    spec = sw.spec
    hw = sw.base_hardware
    lines = [f"sweep '{sw.name}' ({sw.source})" + (f": {spec.description}" if spec.description else ""),
             f"  base hardware: {hw.get('name', '?')} (kind {hw.get('kind', '?')})"]
    if spec.compression is not None:
        lines.append(f"  compression: model {spec.compression.model} on {spec.compression.dataset}, base recipe "
                     f"{spec.compression.recipe}")
    else:
        lines.append("  workloads: " + ", ".join(w.label for w in sw.workloads))
    lines.append(f"  axes ({len(sw.axes)}):")
    lines += [f"    {a.describe()}" + (f"  ({len(a.values())} values)" if a.is_finite else "") for a in sw.axes]
    n_wl = max(1, len(sw.workloads))
    s = spec.search
    if s.method == "grid":
        lines.append(f"  search: grid, {grid_size(sw.axes) * n_wl:,} points ({n_wl} workload(s))")
    elif s.method == "random":
        lines.append(f"  search: random, {s.samples:,} samples per workload, seed {s.seed}")
    else:
        lines.append(f"  search: nsga2, population {s.population} x {s.generations} generations, seed {s.seed}")
    lines.append("  objectives: " + ", ".join(f"{o.name} ({o.sense})" for o in sw.objectives))
    if sw.constraints:
        lines.append("  constraints: " + ", ".join(spec.constraints))
    return "\n".join(lines)


def _kb_text(kb: float) -> str:
    return f"{kb:,.0f} KB" if kb >= 10 else f"{kb:.3g} KB"


def _describe_zigzag_accelerator(h: Any, source: str) -> str:
    arr = h.array
    lines = [f"ZigZag accelerator '{h.name}' ({source}): {arr.num_macs:,} MACs on "
             + " x ".join(f"{d.name}={d.size}" for d in arr.dimensions)]
    for m in h.memories:
        lines.append(f"  {m.name}: {_kb_text(m.size_bits / 8192)} x {h.instances(m)} instance(s), operands "
                     f"{'/'.join(m.operands)}, read {m.read_pj:g} pJ, write {m.write_pj:g} pJ, "
                     f"{len(m.ports)} port(s)" + (f", serves {'/'.join(m.served_dimensions)}" if m.served_dimensions else ""))
    return "\n".join(lines)


def _generic_names_note(mp: Any) -> str:
    """A note on a mapping file's non-standard loop names (checked only against a workload)."""
    names = mp.generic_loop_names()
    return (f" (loop names {', '.join(names)} are not ZigZag's standard ones: they must be loops of the "
            f"workload's layers, checked when mapped)") if names else ""


def _describe_zigzag_mapping(mp: Any, source: str) -> str:
    """Entries with ZigZag's loop names as written (``K32``; ``D0:8`` for a name ending in a digit)."""
    def loop(x: str, n: Any) -> str:
        size = "*" if n is None else n
        return f"{x}:{size}" if x[-1:].isdigit() else f"{x}{size}"

    lines = [f"ZigZag mapping ({source}): {len(mp.entries)} entr{'y' if len(mp.entries) == 1 else 'ies'}"
             + _generic_names_note(mp)]
    for e in mp.entries:
        parts = []
        if e.spatial is not None:
            parts.append("spatial " + "; ".join(f"{d}: " + ",".join(loop(x, n) for x, n in loops) for d, loops in e.spatial))
        if e.hint is not None:
            parts.append("hint " + "; ".join(f"{d}: {','.join(x)}" for d, x in e.hint))
        if e.temporal_ordering is not None:
            parts.append("temporal " + " ".join(loop(x, n) for x, n in e.temporal_ordering))
        if not e.default_links:
            parts.append("links " + ", ".join(f"{op}->{m}" for op, m in e.operand_links))
        lines.append(f"  {e.entry}: " + ("; ".join(parts) or "free (the mapper chooses)"))
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    target = args.file
    kind = detect_kind(target)
    obj = load_as(kind, target)
    if kind == "hardware":
        text = _describe_hardware(obj)
    elif kind == "recipe":
        text = _describe_recipe(obj, target)
    elif kind == "sweep":
        text = _describe_sweep(obj)
    elif kind == "zigzag accelerator":
        text = _describe_zigzag_accelerator(obj, target)
    elif kind == "zigzag mapping":
        text = _describe_zigzag_mapping(obj, target)
    else:
        text = _describe_workload(obj)
    print(text)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    for f in args.files:
        kind = detect_kind(f)
        obj = load_as(kind, f)
        print(f"{f}: valid {kind}" + (_generic_names_note(obj) if kind == "zigzag mapping" else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accelsim", description="Simulate compressed neural networks on accelerator hardware.")
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "simulate", help="simulate a workload on a hardware config and print the per-layer breakdown",
        description="Simulate a workload layer by layer on one hardware config and print a per-layer table "
        "(fill + compute + stall + drain = latency cycles, utilization, DRAM traffic, energy, bottleneck, "
        "numbered notes) and a summary. A compressed workload is also run dense on the same hardware and each "
        "layer says how much faster/slower and more/less energy it is, and why when it is worse. "
        "Example: accelsim simulate -w models/resnet18.yaml --hw hw_configs/systolic_128x128_os.yaml "
        "--out report.csv --plot breakdown.png")
    p.add_argument("--workload", "-w", required=True, help="workload YAML/JSON, SCALE-Sim topology CSV, or zoo:<model>")
    p.add_argument("--hw", required=True, help="hardware YAML/JSON, SCALE-Sim .cfg or ZigZag 3.9.1 accelerator YAML")
    p.add_argument("--mapping", help="ZigZag 3.9.1 mapping YAML for a ZigZag accelerator --hw (spatial mapping, hints, "
                                     "temporal ordering, operand links)")
    p.add_argument("--out", "-o", help="write the per-layer table as CSV (one row per layer, workload order)")
    p.add_argument("--plot", help="write the energy/latency breakdown figure (PNG, PDF or SVG)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="what to print (default: table)")
    p.add_argument("--top", type=positive_int_arg, default=None, help="plot only the N slowest layers")
    p.add_argument("--max-rows", type=positive_int_arg, default=None, help="print at most N table rows")
    p.add_argument("--objective", choices=["latency", "energy", "edp"], default=None,
                   help="what the mapper minimises per layer (systolic configs with mapping: search, ZigZag "
                        "accelerators; default: the config's objective)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--compare-dense", dest="compare_dense", action="store_true", default=None,
                   help="also simulate the dense original (default when the workload is compressed; on a "
                        "mapping: search array the gain over the dense workload in fold order is split into "
                        "mapping x compression)")
    g.add_argument("--no-compare-dense", dest="compare_dense", action="store_false")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("info", help="describe a workload, hardware, recipe, sweep or ZigZag file",
                       description="Describe a file; its kind comes from its extension and top-level keys: "
                       "workload (YAML/JSON, SCALE-Sim CSV, ONNX, ZigZag list, zoo:<model>; per-layer C/K/H/W/R/S), "
                       "hardware (YAML/JSON, SCALE-Sim .cfg), recipe, sweep, ZigZag accelerator or mapping.")
    p.add_argument("file", help="a file of any of those kinds, or zoo:<model>")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("validate", help="check files of any kind; exit 2 on the first invalid one",
                       description="Check each file as the kind it is (workload, hardware, recipe, sweep, ZigZag "
                       "workload/accelerator/mapping; see 'accelsim info') and print '<file>: valid <kind>'.")
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
    for p in sub.choices.values():  # help is plain text: no reStructuredText ``literals``
        if p.description:
            p.description = p.description.replace("``", "")
        for action in p._actions:
            if isinstance(action.help, str):
                action.help = action.help.replace("``", "")
    return parser


def _log_to_stderr() -> None:
    """Notices of the ``accelsim`` logger (e.g. a one-off kernel compilation) as ``accelsim: ...``
    lines on stderr; library users configure logging themselves."""
    import logging

    class _Stderr(logging.Handler):  # resolves sys.stderr at emit time (it may be swapped, e.g. by pytest)
        def emit(self, record: logging.LogRecord) -> None:
            print(self.format(record), file=sys.stderr)

    log = logging.getLogger("accelsim")
    if not log.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("accelsim: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    _log_to_stderr()
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
