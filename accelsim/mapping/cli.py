"""``accelsim map``: the best loop-nest mappings of one layer, with their cost breakdowns."""
from __future__ import annotations

import argparse
from typing import Any

from .._validation import positive_int_arg


def _cmd_map(args: argparse.Namespace) -> int:
    from .workload_mapping import map_report

    print(map_report(args.workload, args.hw, args.mapping, args.layer, objective=args.objective, top_k=args.top))
    return 0


def register(subparsers: Any) -> None:
    """Add ``accelsim map`` to the command line."""
    p = subparsers.add_parser(
        "map", help="search the best mappings (spatial unrolling, loop order, tiling) of a layer or a workload",
        description="Search loop-nest mappings of one layer (or every layer) on a memory hierarchy and print the best "
                    "few with per-operand, per-level energy and latency. --hw takes a ZigZag 3.9.1 accelerator YAML or an "
                    "accelsim systolic config (its implied hierarchy).")
    p.add_argument("--workload", required=True, help="workload file (YAML/JSON, SCALE-Sim CSV, ONNX, zoo:<name>)")
    p.add_argument("--hw", required=True, help="hardware file (ZigZag accelerator YAML or accelsim YAML)")
    p.add_argument("--layer", help="layer name as in the workload (default: every conv/GEMM/matmul layer, one "
                                   "line each)")
    p.add_argument("--mapping", help="ZigZag 3.9.1 mapping YAML (spatial_mapping, spatial_mapping_hint, "
                                     "temporal_ordering, memory_operand_links; entries by layer name, operator "
                                     "type or default)")
    p.add_argument("--objective", choices=["latency", "energy", "edp"], default="latency")
    p.add_argument("--top", type=positive_int_arg, default=5, help="how many mappings to print (default 5)")
    p.set_defaults(func=_cmd_map)
