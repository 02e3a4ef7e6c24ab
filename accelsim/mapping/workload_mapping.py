"""Map every conv/GEMM/matmul layer of a workload, optionally as a ZigZag mapping file says.

:func:`map_workload` is the entry the simulator (``accelsim simulate --mapping``) and
``accelsim map`` call: per compute layer it picks the mapping file's entry (layer name, else
operator type, else ``default``: :meth:`ZigzagMappingFile.spec_for`), relinks the hierarchy's
operands if the entry's ``memory_operand_links`` differ, and runs
:func:`accelsim.mapping.search.search_layer` with the entry's spatial mapping / hint / temporal
ordering. Identical layer shapes under the same hierarchy and entry are searched once (the
search cache). Non-compute layers (pooling, element-wise, recurrent) have no loop-nest mapping
and are not in the result.

Assumptions:

- a layer's **operator type** is the ONNX node's ``op_type`` (``Conv``, ``Gemm``, ``MatMul``,
  ...) for ONNX workloads and ``operator_type`` for ZigZag workload YAML, as ZigZag's parsers
  set it; for other workloads it is derived from the accelsim op (:data:`OPERATOR_TYPE_OF_OP`);
- operand widths are a ZigZag workload YAML's ``operand_precision`` (``W``, ``I``, ``O``,
  ``O_final``) where given, as ZigZag costs them; otherwise the array's
  (``hierarchy.array.precision``: ZigZag's ONNX defaults 8/8/16/8 unless the accelerator's
  ``input_precision`` says otherwise);
- when no mapping is found among the search's default spatial candidates (``max_spatial``), every
  spatial candidate is searched before the layer is declared unmappable;
- a ZigZag accelerator given as a path is rebuilt per distinct ``memory_operand_links`` from the
  file itself; a :class:`MemoryHierarchy` object is assumed built with ZigZag's default links
  (``W: I2, I: I1, O: O``) and relabelled.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError
from ..hardware.hierarchy import MemoryHierarchy
from ..hardware.zigzag_io import DEFAULT_LINKS
from .ir import LayerDims
from .search import _DEFAULT_CACHE, MappingCache, SearchResult, _as_hierarchy, search_layer
from .zigzag_mapping import LayerMappingSpec, ZigzagMappingFile, load_mapping_file

#: operator type ZigZag would give a layer of each accelsim op (when the source file does not say)
OPERATOR_TYPE_OF_OP: dict[str, str] = {"conv2d": "Conv", "linear": "Gemm", "matmul": "MatMul", "pool": "Pooling",
                                       "elementwise": "Add"}
MAPPED_OPS = ("conv2d", "linear", "matmul")


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, bytes)) or hasattr(x, "__fspath__")


def operator_types(workload_path: str | Path) -> dict[str, str]:
    """Layer name -> operator type as ZigZag's parsers see it (ONNX ``op_type``, ZigZag YAML
    ``operator_type``); ``{}`` for other formats. Layer names follow the workload readers'
    naming (``workload.onnx_io``: node name or ``<op_type>_<index>``, repeats suffixed)."""
    p = Path(str(workload_path))
    if not p.is_file():
        return {}
    if p.suffix.lower() in (".yaml", ".yml"):
        from ..workload.zigzag_workload import is_zigzag_workload_file
        if not is_zigzag_workload_file(p):
            return {}
        from ..hardware import zigzag_io
        data = zigzag_io._read_yaml(p)
        return {str(it.get("name", f"Layer{it.get('id')}")): str(it.get("operator_type"))
                for it in data if isinstance(it, dict)}
    from ..workload.onnx_io import is_onnx_file
    if p.suffix.lower() in (".yaml", ".yml", ".json", ".csv") or not is_onnx_file(p):
        return {}
    try:
        import onnx
    except ModuleNotFoundError:  # pragma: no cover - load_workload already needed it
        return {}
    model = onnx.load(str(p), load_external_data=False)
    seen: Counter = Counter()
    out: dict[str, str] = {}
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        seen[name] += 1
        if seen[name] > 1:  # the same renaming as onnx_io._Reader.unique
            k = seen[name]
            while f"{name}_{k}" in seen:
                k += 1
            name = f"{name}_{k}"
            seen[name] += 1
        out[name] = node.op_type
    return out


_INDEX = re.compile(r"\[(\w+)\]")


def zigzag_dim_names(workload_path: str | Path) -> dict[str, dict[str, str]]:
    """For ZigZag workload YAML whose GEMM layers use generic loop names (``D0, D1, D2`` of
    ``gemm_layer.yaml``): layer name -> {loop name: accelsim letter}, from the equation: in O and
    W only -> ``K``, in W and I only -> ``C``, the one in O and I only -> ``N`` (rows). Layers with
    dimension relations (convolutions) use ZigZag's standard names and get no entry."""
    p = Path(str(workload_path))
    if p.suffix.lower() not in (".yaml", ".yml") or not p.is_file():
        return {}
    from ..workload.zigzag_workload import is_zigzag_workload_file
    if not is_zigzag_workload_file(p):
        return {}
    from ..hardware import zigzag_io
    out: dict[str, dict[str, str]] = {}
    for it in zigzag_io._read_yaml(p) or []:
        if not isinstance(it, dict) or it.get("dimension_relations") or not isinstance(it.get("equation"), str):
            continue
        eq = it["equation"].replace(" ", "").replace("+=", "=")
        try:
            lhs, rhs = eq.split("=")
            a, b = re.split(r"[*+]", rhs)
        except ValueError:
            continue
        ops = {t[0]: {x.upper() for x in _INDEX.findall(t)} for t in (lhs, a, b)}
        if set(ops) != {"O", "W", "I"}:
            continue
        o, w, i = ops["O"], ops["W"], ops["I"]
        names: dict[str, str] = {}
        names.update({d: "K" for d in (o & w) - i})
        names.update({d: "C" for d in (w & i) - o})
        rows = sorted((o & i) - w)
        if len(rows) == 1:
            names[rows[0]] = "N"
        if len(names) == len(o | w | i):
            out[str(it.get("name", f"Layer{it.get('id')}"))] = names
    return out


_PREC_KEYS = {"W": "w_bits", "I": "i_bits", "O": "o_bits", "O_final": "o_final_bits"}


def zigzag_precisions(workload_path: str | Path) -> dict[str, dict[str, int]]:
    """For ZigZag workload YAML: layer name -> operand widths from ``operand_precision`` (``W``,
    ``I``, ``O`` partial sums, ``O_final``) as ``LayerDims`` keywords; ``{}`` for other formats."""
    p = Path(str(workload_path))
    if p.suffix.lower() not in (".yaml", ".yml") or not p.is_file():
        return {}
    from ..workload.zigzag_workload import is_zigzag_workload_file
    if not is_zigzag_workload_file(p):
        return {}
    from ..hardware import zigzag_io
    out: dict[str, dict[str, int]] = {}
    for it in zigzag_io._read_yaml(p) or []:
        prec = it.get("operand_precision") if isinstance(it, dict) else None
        if isinstance(prec, dict):
            out[str(it.get("name", f"Layer{it.get('id')}"))] = {
                _PREC_KEYS[k]: int(v) for k, v in prec.items()
                if k in _PREC_KEYS and isinstance(v, int) and not isinstance(v, bool) and v > 0}
    return out


def _accelerator(hw: Any) -> tuple[MemoryHierarchy, dict | None, str]:
    """(hierarchy with default links, raw ZigZag accelerator data or None, source name)."""
    if _is_path(hw):
        from ..hardware import zigzag_io
        path = str(hw)
        if path.endswith((".yaml", ".yml")):
            data = zigzag_io._read_yaml(path)
            if zigzag_io.is_zigzag_accelerator(data):
                mem_ops = {str(o) for m in (data.get("memories") or {}).values() if isinstance(m, dict)
                           for o in (m.get("operands") or [])}
                links = DEFAULT_LINKS if set(DEFAULT_LINKS.values()) >= mem_ops else None
                h = zigzag_io.hierarchy_from_zigzag(data, path, links) if links else None
                return h, data, path  # type: ignore[return-value]
    h = _as_hierarchy(hw)
    return h, None, h.name


def load_mapping(mapping_file: Any) -> ZigzagMappingFile | None:
    """A :class:`ZigzagMappingFile` from a path, an already parsed file, or None."""
    if mapping_file is None or isinstance(mapping_file, ZigzagMappingFile):
        return mapping_file
    return load_mapping_file(mapping_file)


class _Hierarchies:
    """The hierarchy each operand linking asks for (built once per distinct linking)."""

    def __init__(self, hw: Any):
        self.base, self.data, self.source = _accelerator(hw)
        self._by_links: dict[tuple, MemoryHierarchy] = {}
        if self.base is not None:
            self._by_links[tuple(sorted(DEFAULT_LINKS.items()))] = self.base

    @property
    def memory_operands(self) -> set[str] | None:
        if self.data is None:
            return None
        return {str(o) for m in self.data["memories"].values() for o in (m.get("operands") or [])}

    def default(self, mfile: ZigzagMappingFile | None) -> MemoryHierarchy:
        if self.base is not None:
            return self.base
        spec = mfile.entry("default") if mfile is not None else None
        if spec is None:  # a ZigZag accelerator whose memory operands are not I1/I2/O and no mapping file
            raise ConfigError("the accelerator's memory operands are not I1, I2, O: give a mapping file with "
                              "memory_operand_links", source=self.source, field="memories")
        return self.for_spec(spec)

    def for_spec(self, spec: LayerMappingSpec) -> MemoryHierarchy:
        key = spec.operand_links
        h = self._by_links.get(key)
        if h is None:
            if self.data is not None:
                from ..hardware.zigzag_io import hierarchy_from_zigzag
                h = hierarchy_from_zigzag(self.data, self.source, spec.links)
            else:
                h = spec.hierarchy_for(self.base)
            self._by_links[key] = h
        return h


def layer_specs(workload: Any, mapping_file: Any, *, op_types: dict[str, str] | None = None
                ) -> dict[str, LayerMappingSpec]:
    """Layer name -> the mapping file entry each compute layer uses (ZigZag's precedence)."""
    wl, types, _, _ = _workload(workload, op_types)
    mfile = load_mapping(mapping_file)
    if mfile is None:
        return {}
    return {ly.name: mfile.spec_for(ly.name, types.get(ly.name, OPERATOR_TYPE_OF_OP.get(ly.op)))
            for ly in wl.layers if getattr(ly, "op", None) in MAPPED_OPS}


def _workload(workload: Any, op_types: dict[str, str] | None):
    from ..workload.io import load_workload
    types: dict[str, str] = {}
    dims: dict[str, dict[str, str]] = {}
    prec: dict[str, dict[str, int]] = {}
    if _is_path(workload) and not str(workload).startswith("zoo:"):
        types = operator_types(workload)
        dims = zigzag_dim_names(workload)
        prec = zigzag_precisions(workload)
    wl = load_workload(workload) if _is_path(workload) else workload
    types.update(op_types or {})
    return wl, types, dims, prec


@dataclass(frozen=True)
class MappedLayer:
    """One layer's search result with the hierarchy it was mapped on and the entry used."""

    result: SearchResult
    hierarchy: MemoryHierarchy
    spec: LayerMappingSpec | None


def map_workload(workload: Any, hierarchy: Any, mapping_file: Any = None, objective: str = "latency", *,
                 op_types: dict[str, str] | None = None, top_k: int = 1,
                 cache: MappingCache | None = _DEFAULT_CACHE, **search_kw: Any) -> dict[str, SearchResult]:
    """Best mapping of every conv/GEMM/matmul layer: layer name -> :class:`SearchResult`.

    ``workload``: a Workload or anything ``accelsim.load_workload`` reads (ONNX, ZigZag YAML,
    accelsim YAML, ``zoo:name``); ``hierarchy``: a :class:`MemoryHierarchy`, a ZigZag
    accelerator YAML, or an accelsim hardware file/object whose kind implies one;
    ``mapping_file``: a ZigZag mapping YAML (path or :class:`ZigzagMappingFile`) or None (free
    search); ``op_types`` overrides layer operator types. ``search_kw`` goes to
    :func:`search_layer` (e.g. ``lpf_limit``, ``max_spatial``).
    """
    return {k: v.result for k, v in map_workload_detailed(workload, hierarchy, mapping_file, objective,
                                                          op_types=op_types, top_k=top_k, cache=cache,
                                                          **search_kw).items()}


def map_workload_detailed(workload: Any, hierarchy: Any, mapping_file: Any = None, objective: str = "latency", *,
                          op_types: dict[str, str] | None = None, top_k: int = 1, only: Iterable[str] | None = None,
                          cache: MappingCache | None = _DEFAULT_CACHE, **search_kw: Any) -> dict[str, MappedLayer]:
    """:func:`map_workload` with, per layer, the hierarchy used and the mapping-file entry;
    ``only``: map just these layers (unknown names are a ConfigError listing the layers)."""
    wl, types, dims, precs = _workload(workload, op_types)
    wanted = None if only is None else set(only)
    if wanted is not None:
        names = [ly.name for ly in wl.layers if getattr(ly, "op", None) in MAPPED_OPS]
        missing = sorted(wanted - set(names))
        if missing:
            raise ConfigError(f"no conv/GEMM/matmul layer named {missing[0]!r} (layers: {', '.join(names[:12])}"
                              f"{', ...' if len(names) > 12 else ''})", source=getattr(wl, "name", "workload"),
                              field="layer")
    mfile = load_mapping(mapping_file)
    hs = _Hierarchies(hierarchy)
    if mfile is not None:
        mfile.validate(hs.default(mfile), hs.memory_operands)
    out: dict[str, MappedLayer] = {}
    for ly in wl.layers:
        if getattr(ly, "op", None) not in MAPPED_OPS or (wanted is not None and ly.name not in wanted):
            continue
        kw: dict[str, Any] = {}
        spec = None
        if mfile is not None:
            spec = mfile.spec_for(ly.name, types.get(ly.name, OPERATOR_TYPE_OF_OP.get(ly.op)))
            h = hs.for_spec(spec)
            kw = spec.search_kwargs(h, dims.get(ly.name))
        else:
            h = hs.default(None)
        ld = LayerDims.from_layer(ly, **{**h.array.precision.model_dump(), **precs.get(ly.name, {})})
        try:
            res = search_layer(ld, h, objective=objective, top_k=top_k, cache=cache, **kw, **search_kw)
        except ConfigError:
            if "max_spatial" in search_kw:
                raise
            # the first 8 feasible of the best-ranked 64 spatial candidates may all overflow a small
            # per-PE memory: search every candidate before giving up
            res = search_layer(ld, h, objective=objective, top_k=top_k, cache=cache, max_spatial=None,
                               **kw, **search_kw)
        out[ly.name] = MappedLayer(res, h, spec)
    if not out:
        raise ConfigError("no conv/GEMM/matmul layer to map", source=getattr(wl, "name", "workload"))
    return out


def map_report(workload: Any, hw: Any, mapping_file: Any = None, layer: str | None = None,
               objective: str = "latency", top_k: int = 5) -> str:
    """Text of ``accelsim map``: with ``layer``, its best ``top_k`` mappings with cost breakdowns;
    without, one line per compute layer (entry used, mapping, latency, energy) and totals."""
    from .search import format_mapping_table
    if layer is not None:
        m = map_workload_detailed(workload, hw, mapping_file, objective, top_k=top_k, only=[layer])[layer]
        head = f"mapping file entry: {m.spec.entry} (by {m.spec.matched_by})\n" if m.spec is not None else ""
        return head + format_mapping_table(m.result, m.hierarchy, top_k)
    rows = map_workload_detailed(workload, hw, mapping_file, objective, top_k=1)
    w = max([5] + [len(n) for n in rows])
    lines = [f"{'layer':<{w}} {'entry':<18} {'latency_cycles':>15} {'energy_pj':>16} {'mac_util':>8}  mapping"]
    tot_lat = tot_en = 0.0
    for name, m in rows.items():
        c = m.result.cost
        util = m.result.layer.macs / (c.latency_cycles * m.hierarchy.array.num_macs) if c.latency_cycles else 0.0
        entry = f"{m.spec.entry} ({m.spec.matched_by[0]})" if m.spec is not None else "-"
        lines.append(f"{name:<{w}} {entry[:18]:<18} {c.latency_cycles:>15,.0f} {c.energy_pj:>16,.0f} "
                     f"{util:>8.3f}  {m.result.mapping.short()}")
        tot_lat += c.latency_cycles
        tot_en += c.energy_pj
    lines.append(f"{'total (' + str(len(rows)) + ' layers, objective ' + objective + ')':<{w + 19}} "
                 f"{tot_lat:>15,.0f} {tot_en:>16,.0f}")
    lines.append("entry: mapping-file entry used, by (n)ame, (o)perator type or (d)efault")
    return "\n".join(lines)


__all__ = ["map_workload", "map_workload_detailed", "map_report", "MappedLayer", "zigzag_precisions", "layer_specs", "operator_types", "zigzag_dim_names", "load_mapping",
           "OPERATOR_TYPE_OF_OP", "MAPPED_OPS"]
