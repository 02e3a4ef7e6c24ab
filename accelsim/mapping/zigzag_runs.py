"""ZigZag 3.9.1 result files (``zigzag_runs/*.json``) as accelsim mappings, for validation.

Each run lists, per layer, ZigZag's chosen spatial mapping (which loops sit below which memory
level of each operand) and temporal mapping (per operand, per memory level, innermost first,
after ZigZag's stationarity merge-down), its energies per operand per level and its latency
terms. :func:`load_run` turns every layer into a (:class:`LayerDims`, :class:`Mapping`,
reference) triple evaluable by :func:`accelsim.mapping.cost.evaluate`.

Which array dimension a spatial loop sits on is not in the JSON: it is taken from the mapping
file's ``spatial_mapping`` (or ``spatial_mapping_hint``) entry of the layer. Layer bounds come
from the ONNX graph the run used (:func:`onnx_layer_dims`, through ``workload.onnx_io``): ZigZag's
printed spatial factors are rounded (AlexNet's last layer unrolls K 31.25 and prints 31), so an
unrolling that leaves a dimension uncovered is rounded up to cover it (an uneven mapping whose
energy view is ZigZag's fractional one).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .ir import DIMS, ZIGZAG_DIMS, LayerDims, Loop, Mapping, SpatialUnroll
from .zigzag_mapping import ZigzagMappingFile, load_mapping_file


@dataclass(frozen=True)
class ZigzagLayerResult:
    """ZigZag's figures for one layer (energies pJ per operand per level innermost first)."""

    name: str
    op_type: str
    macs: int
    energy_pj: float
    mac_energy_pj: float
    mem_energy_pj: dict[str, tuple[float, ...]]
    mem_levels: dict[str, tuple[str, ...]]
    latency_cycles: float
    temporal_cycles: float
    stall_cycles: float
    onload_cycles: float
    offload_cycles: float
    fill_drain_cycles: float
    spatial_per_level: dict[str, list[list[tuple[str, float]]]]
    temporal_per_level: dict[str, list[list[tuple[str, float]]]]


def _parse_loops(text: str) -> dict[str, list[list[tuple[str, float]]]]:
    body = text
    m = re.match(r"^\s*SpatialMapping\((.*)\)\s*$", text, re.S)
    if m:
        body = m.group(1)
    body = re.sub(r"([{,]\s*)(\w+):", r"\1'\2':", body)
    body = re.sub(r"\((\w+),", r"('\1',", body)
    data = ast.literal_eval(body)
    return {op: [[(ZIGZAG_DIMS[d], s) for d, s in lv] for lv in lvls] for op, lvls in data.items()}


def parse_layer(entry: dict[str, Any]) -> ZigzagLayerResult:
    """One layer of a run JSON."""
    return ZigzagLayerResult(
        name=entry["layer"], op_type=entry.get("op_type", ""), macs=int(entry["macs"]),
        energy_pj=float(entry["energy_total"]), mac_energy_pj=float(entry["mac_energy"]),
        mem_energy_pj={k: tuple(v) for k, v in entry["mem_energy_breakdown"].items()},
        mem_levels={k: tuple(v) for k, v in entry["mem_levels"].items()},
        latency_cycles=float(entry["latency_total2"]), temporal_cycles=float(entry["ideal_temporal_cycle"]),
        stall_cycles=float(entry["stall_slack_comb"]), onload_cycles=float(entry["onload"]),
        offload_cycles=float(entry["offload"]), fill_drain_cycles=float(entry["systolic_drain"]),
        spatial_per_level=_parse_loops(entry["spatial_mapping"]),
        temporal_per_level=_parse_loops(entry["temporal_mapping"]))


def onnx_layer_dims(path: str | Path) -> dict[str, LayerDims]:
    """Conv/Gemm/MatMul layers of an ONNX graph (shape-only graphs included) as LayerDims, by
    node name, read with :func:`accelsim.workload.onnx_io.load_onnx` (needs ``onnx``).

    Precisions are ZigZag's defaults (8-bit W and I, 16-bit partial sums, 8-bit outputs);
    ``in_h``/``in_w`` are the input's rows/columns (ZigZag's clip of input tiles).
    """
    from ..workload.onnx_io import load_onnx

    out: dict[str, LayerDims] = {}
    for layer in load_onnx(path).layers:
        if getattr(layer, "op", None) in ("conv2d", "linear", "matmul"):
            out[layer.name] = LayerDims.from_layer(layer)
    return out


def _array_dim_of(dim: str, entry_spatial: dict | None, entry_hint: dict | None, used: dict[str, int],
                  sizes: dict[str, int], size: int) -> str:
    for table in (entry_spatial, entry_hint):
        if not table:
            continue
        for ad, items in table.items():
            dims = [it[0] if isinstance(it, tuple) else it for it in items]
            if dim in dims and used.get(ad, 1) * size <= sizes[ad]:
                return ad
    raise ConfigError(f"cannot tell which array dimension unrolls {dim}", source="zigzag run")


def layer_mapping(result: ZigzagLayerResult, layer: LayerDims, mapping_file: ZigzagMappingFile,
                  array_sizes: dict[str, int]) -> Mapping:
    """The accelsim Mapping of ZigZag's choice for one layer."""
    entry = mapping_file.spec_for(result.name, result.op_type or None)
    sp_table = entry.spatial_letters()
    hint = entry.hint_letters()
    loops = [lp for lv in result.spatial_per_level["I"] for lp in lv]
    temporal_factor = {d: 1.0 for d in DIMS}
    for lv in result.temporal_per_level["I"]:
        for d, s in lv:
            temporal_factor[d] *= s
    sizes = [int(round(s)) for _, s in loops]
    for d in DIMS:
        idx = [i for i, (dd, _) in enumerate(loops) if dd == d]
        if not idx:
            continue
        sp = prod(sizes[i] for i in idx)
        if sp * temporal_factor[d] < layer.size(d):  # printed factor rounded down (fractional unrolling)
            rest = sp // sizes[idx[-1]] * int(temporal_factor[d])
            sizes[idx[-1]] = -(-layer.size(d) // rest)
    used: dict[str, int] = {}
    per_ad: dict[str, list[Loop]] = {}
    for (d, _), size in zip(loops, sizes):
        ad = _array_dim_of(d, sp_table, hint, used, array_sizes, size)
        used[ad] = used.get(ad, 1) * size
        per_ad.setdefault(ad, []).append(Loop(d, size))
    spatial = tuple(SpatialUnroll(ad, tuple(lps)) for ad, lps in sorted(per_ad.items()))
    per_op = {op: [[(d, int(round(s))) for d, s in lv] for lv in lvls]
              for op, lvls in result.temporal_per_level.items()}
    return Mapping.from_levels(spatial, per_op, name=result.name)


def load_run(json_path: str | Path, onnx_path: str | Path, mapping_file: ZigzagMappingFile,
             array_sizes: dict[str, int]) -> list[tuple[LayerDims, Mapping, ZigzagLayerResult]]:
    """Every layer of a ZigZag run as (layer, ZigZag's mapping, ZigZag's figures)."""
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    dims = onnx_layer_dims(onnx_path)
    out = []
    for entry in data["layers"]:
        res = parse_layer(entry)
        if res.name not in dims:
            raise ConfigError(f"layer {res.name} is not a Conv/Gemm node of {onnx_path}", source=str(json_path))
        layer = dims[res.name]
        if layer.macs != res.macs:
            raise ConfigError(f"layer {res.name}: {layer.macs} MACs from ONNX, {res.macs} in the run",
                              source=str(json_path))
        out.append((layer, layer_mapping(res, layer, mapping_file, array_sizes), res))
    return out


#: the four reference runs: tag -> (ONNX workload, accelerator file, mapping file), relative to
#: the reference folder (``tests/data/reference``: ``zigzag_inputs/...``, ``zigzag_runs/...``)
REFERENCE_RUNS: dict[str, tuple[str, str, str]] = {
    "resnet18_tpu_like": ("zigzag_inputs/workload/resnet18.onnx", "zigzag_inputs/hardware/tpu_like.yaml",
                          "zigzag_inputs/mapping/tpu_like.yaml"),
    "resnet18_edge_tpu_like": ("zigzag_inputs/workload/resnet18.onnx", "zigzag_inputs/hardware/edge_tpu_like.yaml",
                               "zigzag_inputs/mapping/edge_tpu_like.yaml"),
    "resnet18_eyeriss_like": ("zigzag_inputs/workload/resnet18.onnx", "zigzag_inputs/hardware/eyeriss_like.yaml",
                              "zigzag_runs/eyeriss_like_mapping.yaml"),
    "alexnet_tpu_like": ("zigzag_inputs/workload/alexnet.onnx", "zigzag_inputs/hardware/tpu_like.yaml",
                         "zigzag_inputs/mapping/tpu_like.yaml"),
}


def load_reference_run(ref_dir: str | Path, tag: str):
    """(hierarchy, [(layer, mapping, ZigZag figures), ...]) of one of :data:`REFERENCE_RUNS`."""
    from ..hardware.zigzag_io import load_zigzag_accelerator

    ref = Path(ref_dir)
    onnx_rel, acc_rel, map_rel = REFERENCE_RUNS[tag]
    mapping_file = load_mapping_file(ref / map_rel)
    hierarchy = load_zigzag_accelerator(ref / acc_rel, mapping_file.spec_for("default").links)
    sizes = {d.name: d.size for d in hierarchy.array.dimensions}
    return hierarchy, load_run(ref / "zigzag_runs" / f"{tag}.json", ref / onnx_rel, mapping_file, sizes)


__all__ = ["ZigzagLayerResult", "parse_layer", "onnx_layer_dims", "layer_mapping", "load_run", "REFERENCE_RUNS",
           "load_reference_run"]
