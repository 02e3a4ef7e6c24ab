"""``accelsim fpga-fit`` and ``accelsim fpga-optimize``: FPGA resource checks and the integer program.

- ``fpga-fit --hw FILE``: the per-resource utilisation table of an ``kind: fpga`` config against
  its budget; exit code 0 when it fits, 1 when it does not (the table names what is over).
- ``fpga-optimize --workload FILE --device FILE``: the accelerator configuration that minimises
  latency under the budget (``--mode overlay``: array shape, buffers and per-layer tiling of one
  shared array, then simulated; ``--mode pipeline``: HAO-style per-layer parallelism of a dataflow
  design). No feasible configuration -> one line naming the binding resource, exit code 2.
- ``fpga-optimize ... --front --predictor P.json [--bits 4,8] [--measured M.json]``: the accuracy-latency
  Pareto front with bit widths as decisions (:mod:`accelsim.dse.fpga.front`); overlay points are
  re-simulated; front and dominated points are stored, with measured accuracy where measured.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..._validation import dumps_strict_json
from ...errors import ConfigError

EXIT_DOES_NOT_FIT = 1


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}", source=flag) from None
    if not vals or any(v <= 0 for v in vals):
        raise ConfigError(f"expected positive integers, got {text!r}", source=flag)
    return vals


def parse_budget(text: str | None) -> dict[str, int]:
    """``dsp=300,bram18=400`` -> {'dsp': 300, 'bram18': 400}."""
    from ...hardware.fpga import RESOURCES

    out: dict[str, int] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in RESOURCES:
            raise ConfigError(f"expected RESOURCE=COUNT with RESOURCE in {', '.join(RESOURCES)}, got {part!r}",
                              source="--budget")
        try:
            n = int(value)
        except ValueError:
            raise ConfigError(f"expected an integer count for {key}, got {value!r}", source="--budget") from None
        if n < 0:
            raise ConfigError(f"{key} must be >= 0, got {n}", source="--budget")
        out[key] = n
    return out


#: ``--device NAME`` without a file: the base configs of ``hw_configs/zu3eg.yaml`` and
#: ``hw_configs/zcu104.yaml`` (a test keeps them equal). ASSUMPTIONS are those files': zu3eg 200 MHz,
#: LPDDR4 4.26 GB/s at 8 pJ/bit; zu7ev 300 MHz, DDR4 19.2 GB/s at 15 pJ/bit; int8 datapath.
DEVICE_BASE_CONFIGS: dict[str, dict[str, Any]] = {
    "zu3eg": dict(kind="fpga", name="zu3eg-16x16x2",
                  description="ZU3EG (Ultra96) int8 overlay, 512 MAC lanes on 256 DSPs, 200 MHz, LPDDR4 4.26 GB/s",
                  device="zu3eg", clock_mhz=200, pe_in=16, pe_out=16, pe_pix=2,
                  weight_bits=8, act_bits=8, ifmap_sram={"size_kb": 64}, filter_sram={"size_kb": 128},
                  ofmap_sram={"size_kb": 128}, vector_lanes=32,
                  dram={"bw_gbps": 4.26, "pj_per_bit": 8.0, "type": "LPDDR4"}),
    "zu7ev": dict(kind="fpga", name="zcu104-16x32x4",
                  description="ZCU104 (ZU7EV) int8 overlay, 2048 MAC lanes on 1024 DSPs, 300 MHz, DDR4 19.2 GB/s",
                  device="zcu104", clock_mhz=300, pe_in=16, pe_out=32, pe_pix=4,
                  weight_bits=8, act_bits=8, ifmap_sram={"size_kb": 256, "memory": "uram"},
                  filter_sram={"size_kb": 2048, "memory": "uram"}, ofmap_sram={"size_kb": 256}, vector_lanes=64,
                  dram={"bw_gbps": 19.2, "pj_per_bit": 15.0, "type": "DDR4"}),
}
DEVICE_BASE_CONFIGS["ultra96"] = DEVICE_BASE_CONFIGS["zu3eg"]
DEVICE_BASE_CONFIGS["zcu104"] = DEVICE_BASE_CONFIGS["zu7ev"]


def load_device(spec: str):  # type: ignore[no-untyped-def]
    """An FPGA config from a file, or from a device preset name (``zu3eg``, ``ultra96``, ``zu7ev``,
    ``zcu104``) when no file of that name exists: see :data:`DEVICE_BASE_CONFIGS`."""
    from ...hardware.io import hardware_from_dict, load_hardware

    key = spec.strip().lower()
    if not Path(spec).exists() and key in DEVICE_BASE_CONFIGS:
        return hardware_from_dict(dict(DEVICE_BASE_CONFIGS[key]), source=f"device preset {key!r}")
    if not Path(spec).suffix and not Path(spec).exists():
        raise ConfigError(f"no such file and not a device preset; presets: {', '.join(sorted(DEVICE_BASE_CONFIGS))}, "
                          "or an FPGA config file such as hw_configs/zu3eg.yaml", source=spec)
    return load_hardware(spec)


def _load_fpga(path: str, budget: str | None, utilization_limit: float | None):  # type: ignore[no-untyped-def]
    from ..._validation import validate_model
    from ...hardware.fpga import FpgaAccelerator

    hw = load_device(path)
    if not isinstance(hw, FpgaAccelerator):
        raise ConfigError(f"expected an FPGA config (kind: fpga), got kind {hw.kind!r}; see hw_configs/zu3eg.yaml",
                          source=path, field="kind")
    extra = parse_budget(budget)
    if not extra and utilization_limit is None:
        return hw
    data = hw.model_dump()
    data["budget"] = {**data["budget"], **extra}
    if utilization_limit is not None:
        data["utilization_limit"] = utilization_limit
    return validate_model(FpgaAccelerator, data, f"{path} with --budget/--utilization-limit")


def plot_utilization(table: Any, path: str | Path, title: str = "") -> None:
    """Stacked bars: share of each resource's limit used by each component (the FPGA 'area' breakdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..._validation import atomic_write_bytes
    from ...hardware.fpga import RESOURCES

    fig, ax = plt.subplots(figsize=(7, 3.8))
    bottoms = [0.0] * len(RESOURCES)
    for comp, usage in table.by_component.items():
        vals = [usage.get(r, 0) / table.limit[r] * 100 if table.limit[r] else 0.0 for r in RESOURCES]
        if not any(vals):
            continue
        ax.bar(RESOURCES, vals, bottom=bottoms, label=comp)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_ylabel("% of budget")
    ax.set_title(title or f"resource use on {table.device}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_write_bytes(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120))
    plt.close(fig)


def _check_outputs(args: argparse.Namespace) -> None:
    from ..._validation import check_output_path

    for flag in ("out", "plot"):
        if getattr(args, flag, None):
            check_output_path(getattr(args, flag), flag)


def _cmd_fit(args: argparse.Namespace) -> int:
    _check_outputs(args)
    hw = _load_fpga(args.hw, args.budget, args.utilization_limit)
    table = hw.fits()
    if args.format == "json":
        print(dumps_strict_json({"hardware": hw.name, **table.to_dict()}, indent=1))
    elif args.format == "csv":
        sys.stdout.write(table.to_frame().to_csv(index=False))
    else:
        print(hw.summary())
        print(table.text())
    if args.plot:
        plot_utilization(table, args.plot, f"{hw.name} on {hw.device.name}")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0 if table.fits else EXIT_DOES_NOT_FIT


def _cmd_optimize(args: argparse.Namespace) -> int:
    from ..._validation import atomic_write_text
    from ...workload.io import load_workload as resolve_workload
    from .ilp import (OverlaySpace, PipelineSpace, exhaustive_overlay, exhaustive_pipeline,
                                   optimize_overlay, optimize_pipeline)

    _check_outputs(args)
    if args.plot and not args.front:
        raise ConfigError("--plot draws the --front; add --front --predictor FILE", source="fpga-optimize",
                          field="--plot")
    if args.front and not args.predictor:
        raise ConfigError("--front needs --predictor FILE.json (an accuracy predictor fitted on measured points, "
                          "e.g. written by examples/hao_front.py)", source="fpga-optimize", field="--predictor")
    wl = resolve_workload(args.workload)
    base = _load_fpga(args.device, args.budget, args.utilization_limit)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    out: dict[str, Any] = {}
    if args.front:
        return _cmd_front(args, wl, base, layers)
    if args.mode == "pipeline":
        space = PipelineSpace(parallel=_ints(args.parallel, "--parallel")) if args.parallel else PipelineSpace()
        res = optimize_pipeline(wl, base, space, layers=layers, time_limit_s=args.time_limit)
        text = res.text()
        out = res.to_dict()
        if args.check_exhaustive:
            ex = exhaustive_pipeline(wl, base, space, layers=layers)
            same = ex.interval_cycles == res.interval_cycles
            text += (f"\nexhaustive search: {ex.interval_cycles:,} cycles in {ex.stats.seconds:.2f} s -> "
                     f"{'same optimum' if same else 'DIFFERENT'}")
            out["exhaustive_interval_cycles"] = ex.interval_cycles
    else:
        kw: dict[str, Any] = {}
        for flag, key in (("pe_in", "pe_in"), ("pe_out", "pe_out"), ("pe_pix", "pe_pix"), ("depths", "depths")):
            val = getattr(args, flag)
            if val:
                kw[key] = _ints(val, "--" + flag.replace("_", "-"))
        if args.group_packing != "both":
            kw["group_packing"] = (args.group_packing == "on",)
        if args.mac_impl:
            impls = tuple(v.strip() for v in args.mac_impl.split(",") if v.strip())
            if not impls or any(v not in ("dsp", "lut") for v in impls):
                raise ConfigError(f"expected dsp and/or lut, got {args.mac_impl!r}", source="--mac-impl")
            kw["mac_impl"] = impls
        space = OverlaySpace(**kw)
        res = optimize_overlay(wl, base, space, layers=layers, time_limit_s=args.time_limit)
        text = res.text()
        out = res.to_dict()
        if args.check_exhaustive:
            ex = exhaustive_overlay(wl, base, space, layers=layers)
            same = ex.est_cycles == res.est_cycles
            text += (f"\nexhaustive search: {ex.est_cycles:,} cycles in {ex.stats.seconds:.2f} s -> "
                     f"{'same optimum' if same else 'DIFFERENT'}")
            out["exhaustive_est_cycles"] = ex.est_cycles
        if not args.no_simulate:
            from ...api import simulate
            from ...workload.workload import Workload

            target = wl if layers is None else Workload(name=f"{wl.name}[{len(layers)} layers]",
                                                        layers=[wl[n] for n in layers])
            rep = simulate(target, res.hw, compare_dense=False)
            s = rep.summary()
            text += (f"\nsimulated: {s['latency_cycles']:,} cycles = {s['latency_ms']:.3f} ms "
                     f"({s['inferences_per_s']:.1f} fps), estimate/simulated = {res.est_cycles / s['latency_cycles']:.3f}, "
                     f"energy {s['energy_uj']:.1f} uJ, array utilization {s['utilization']:.1%}")
            out["simulated"] = {k: s[k] for k in ("latency_cycles", "latency_ms", "inferences_per_s", "energy_pj", "utilization")}
        if args.out:
            import yaml

            from ...hardware.io import hardware_to_dict

            atomic_write_text(args.out, "# written by accelsim fpga-optimize\n"
                              + yaml.safe_dump(hardware_to_dict(res.hw), sort_keys=False))
            print(f"wrote {args.out}", file=sys.stderr)
    if args.format == "json":
        print(dumps_strict_json(out, indent=1))
    else:
        print(text)
    return 0


def _cmd_front(args: argparse.Namespace, wl: Any, base: Any, layers: list[str] | None) -> int:
    from ..._validation import atomic_write_text
    from .front import overlay_front, pipeline_front
    from .ilp import OverlaySpace, PipelineSpace
    from .predictor import AccuracyPredictor, MeasuredPoints, load_measured

    pred = AccuracyPredictor.load(args.predictor)
    entries = load_measured(args.measured) if args.measured else pred.measured  # bad file: fail before solving
    table = MeasuredPoints(entries, pred.layers, pred.ref_bits, args.measured or args.predictor) if entries else None
    bits = _ints(args.bits, "--bits") if args.bits else tuple(pred.bits)
    if args.mode == "pipeline":
        kw: dict[str, Any] = {"bits": bits}
        if args.parallel:
            kw["parallel"] = _ints(args.parallel, "--parallel")
        front = pipeline_front(wl, base, pred, PipelineSpace(**kw), layers=layers, time_limit_s=args.time_limit)
    else:
        if layers:
            raise ConfigError("overlay fronts cover the whole workload; drop --layers or use --mode pipeline",
                              source="fpga-optimize", field="--layers")
        front = overlay_front(wl, base, pred, bits, OverlaySpace(), simulate=not args.no_simulate,
                              time_limit_s=args.time_limit,
                              progress=lambda m: print(m, file=sys.stderr))
    from ..runner import check_store_path
    from .front import default_front_name, store_front

    name = default_front_name(wl.name, front.device, front.mode)
    stored = store_front(front, wl, base, check_store_path(args.store or f"{name}.sqlite"), name,
                         measured=table.get if table else None)
    n_meas = sum(1 for p in front.points + front.dominated if table and table.get(p.bits) is not None)
    print(f"stored {stored.requested} points ({len(front.points)} on the front, {len(front.dominated)} dominated; "
          f"{n_meas} with measured accuracy) in {stored.store} as sweep '{name}' ({stored.evaluated} new, "
          f"{stored.skipped} already there, {stored.filled} given their measured accuracy now): "
          f"accelsim results / plot --store {stored.store}", file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, json.dumps(front.to_dict(), indent=1, default=float))
        print(f"wrote {args.out}", file=sys.stderr)
    if args.plot:
        from .front import plot_front

        plot_front(front, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    print(json.dumps(front.to_dict(), indent=1, default=float) if args.format == "json" else front.text())
    return 0


def register(subparsers: Any) -> None:
    """Add ``fpga-fit`` and ``fpga-optimize`` to the accelsim command line."""
    p = subparsers.add_parser("fpga-fit", help="does an FPGA accelerator config fit its device/budget? (utilisation table)")
    p.add_argument("--hw", required=True, help="FPGA hardware YAML (kind: fpga), e.g. hw_configs/zu3eg.yaml")
    p.add_argument("--budget", help="override limits, e.g. dsp=300,bram18=400,lut=60000")
    p.add_argument("--utilization-limit", type=float, default=None, help="usable fraction of every device resource (0-1]")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--plot", help="write the resource-use breakdown (PNG/PDF/SVG)")
    p.set_defaults(func=_cmd_fit)

    p = subparsers.add_parser("fpga-optimize", help="integer program: best FPGA accelerator configuration for a workload")
    p.add_argument("--workload", "-w", required=True, help="workload file or zoo:<model>")
    p.add_argument("--device", required=True,
                   help="FPGA config (kind: fpga) giving device, budget, clock, DDR, bit widths, or a device preset "
                        "(zu3eg/ultra96, zu7ev/zcu104: the base configs of hw_configs/zu3eg.yaml, zcu104.yaml)")
    p.add_argument("--budget", help="resource limits, e.g. dsp=300,bram18=400")
    p.add_argument("--utilization-limit", type=float, default=None, help="usable fraction of every device resource (0-1]")
    p.add_argument("--mode", choices=["overlay", "pipeline"], default="overlay",
                   help="overlay: one shared array (default); pipeline: one array per layer (HAO-style dataflow)")
    p.add_argument("--layers", help="comma-separated layer names: optimise this subgraph only")
    p.add_argument("--pe-in", help="overlay candidates for pe_in, e.g. 8,16,32")
    p.add_argument("--pe-out", help="overlay candidates for pe_out")
    p.add_argument("--pe-pix", help="overlay candidates for pe_pix")
    p.add_argument("--depths", help="overlay candidate buffer depths in port words, e.g. 512,1024,2048")
    p.add_argument("--group-packing", choices=["both", "on", "off"], default="both")
    p.add_argument("--mac-impl", help="overlay MAC implementations to consider: dsp, lut or dsp,lut (default dsp)")
    p.add_argument("--parallel", help="pipeline candidates for per-layer parallelism, e.g. 1,2,4,8,16,32")
    p.add_argument("--time-limit", type=float, default=120.0, help="solver time limit in seconds (default 120)")
    p.add_argument("--check-exhaustive", action="store_true", help="also enumerate the space and compare optima")
    p.add_argument("--no-simulate", action="store_true", help="overlay: skip simulating the chosen configuration")
    p.add_argument("--out", "-o", help="overlay: write the chosen hardware config as YAML (with --front: the front as JSON)")
    p.add_argument("--front", action="store_true",
                   help="accuracy-latency Pareto front with bit widths as decisions (needs --predictor)")
    p.add_argument("--predictor", help="accuracy predictor JSON (accelsim.dse.fpga.predictor) for --front")
    p.add_argument("--bits", help="--front: candidate bit widths, e.g. 4,8 (default: the predictor's)")
    p.add_argument("--measured", help="--front: JSON list of measured points [{\"config\": {layer: {\"weight_bits\": b, "
                   "\"act_bits\": b}}, \"accuracy\": a}] (default: the ones the predictor file was fitted on); front "
                   "points whose configuration was measured store measured_accuracy")
    p.add_argument("--plot", help="--front: plot accuracy vs latency (PNG/PDF/SVG)")
    p.add_argument("--store", help="--front: results database the front's points are stored in (SQLite, like "
                   "'accelsim sweep'; default ./hao_<workload>_<device>_<mode>.sqlite; rerun adds nothing)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_optimize)
