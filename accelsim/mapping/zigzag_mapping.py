"""ZigZag 3.9.1 mapping files, read as they are, as per-layer mapper specifications: the one
reader of these files in accelsim (the CLI's ``info``/``validate``, the mapper, ``kind: loopnest``
and the ZigZag reference runs all use it).

A mapping file is a YAML list of entries (``zigzag/parser/mapping_validator.py`` schema):

- ``name`` (required): a layer name, an operator type (``Conv``, ``Gemm``, ``MatMul``, ``Add``,
  ``Pooling``, ...) or ``default``. A ``default`` entry is required (ZigZag's validator: "No
  default mapping defined").
- ``spatial_mapping``: per array dimension a list of ``"DIM, SIZE"`` strings (several loops may
  share one array dimension); ``null`` allowed.
- ``spatial_mapping_hint``: per array dimension the loop dimensions it may unroll (hints for
  array dimensions the accelerator does not have are ignored, as ZigZag only generates
  unrollings for the array's own dimensions: ``tpu_like_mixed.yaml`` hints D3/D4 for the 2-D
  ``tpu_like``).
- ``memory_operand_links``: ``{O: .., W: .., I: ..}`` -> memory operands of the accelerator
  (default ``O: O, W: I2, I: I1``, ZigZag's).
- ``temporal_ordering``: ``[[DIM, SIZE or "*"], ...]`` innermost first (rule in
  :mod:`accelsim.mapping.ordering`).
- ``core_allocation`` is not a ZigZag 3.9.1 key (its validator rejects unknown keys; Stream and
  later ZigZag versions use it): accepted when it names a single core (``0``, ``[0]``), which is
  what a single-array accelsim hierarchy is; several cores are a ConfigError.

Loop names are ZigZag's (``B K C OY OX FY FX G``), translated to accelsim's letters
(``N K C P Q R S G``). Generic names (``D0``, ... of ZigZag's ``gemm_layer.yaml``) are accepted
in the file and resolved per layer through a name map (:func:`resolve`, given by
:func:`accelsim.mapping.workload_mapping.zigzag_dim_names` for ZigZag workloads); without one
they are a ConfigError when the entry is used. An entry keeps the names as written;
:meth:`LayerMappingSpec.spatial_letters` / :meth:`~LayerMappingSpec.hint_letters` are its
accelsim-letter view, :meth:`LayerMappingSpec.search_kwargs` what the mapper takes.

**Which entry a layer uses** follows ``zigzag/parser/mapping_factory.py: MappingFactory``: the
entry named like the layer; else the entry named like the layer's operator type; else
``default`` (:meth:`ZigzagMappingFile.spec_for`). When a name appears twice the first entry
wins (ZigZag's ``next(filter(...))``).

Everything not described above — an unknown key, an unknown loop dimension, a malformed loop, a
wrong type — is a one-line :class:`~accelsim.errors.ConfigError` naming the file, the entry and
the key. :meth:`ZigzagMappingFile.validate` checks a file against an accelerator (array
dimensions exist, unrollings fit them, operand links name the accelerator's memory operands).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal

from ..errors import ConfigError
from ..hardware.hierarchy import MemoryHierarchy
from ..hardware.zigzag_io import DEFAULT_LINKS, _read_yaml
from .ir import ZIGZAG_DIMS
from .ordering import WILDCARD, TemporalOrdering

#: the keys of a mapping entry (ZigZag 3.9.1's schema plus a single-core ``core_allocation``);
#: the CLI tells a mapping file from a ZigZag workload file by them
MAPPING_KEYS: tuple[str, ...] = ("name", "spatial_mapping", "spatial_mapping_hint", "memory_operand_links",
                                 "temporal_ordering", "core_allocation")
_LOOP_NAME = re.compile(r"^[A-Z]+\d*$")
_LAYER_OPERANDS = ("O", "W", "I")

MatchedBy = Literal["name", "operator_type", "default"]
Spatial = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
Hint = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class LayerMappingSpec:
    """What a mapping file says about one layer (loop names as written, ZigZag's).

    ``spatial``: per array dimension the ``(loop, size)`` unrollings (``None``: not given);
    ``hint``: per array dimension the loops it may unroll; ``temporal_ordering``: ZigZag's
    order, innermost first; ``operand_links``: ``(layer operand, memory operand)`` pairs;
    ``entry``/``matched_by``: the entry used and why (layer name, operator type or default).
    """

    entry: str
    spatial: Spatial | None = None
    hint: Hint | None = None
    temporal_ordering: tuple[tuple[str, int | None], ...] | None = None
    operand_links: tuple[tuple[str, str], ...] = tuple(sorted(DEFAULT_LINKS.items()))
    core_allocation: tuple[int, ...] | None = None
    matched_by: MatchedBy | None = None
    source: str = "<zigzag mapping>"

    @property
    def links(self) -> dict[str, str]:
        """Layer operand -> memory operand."""
        return dict(self.operand_links)

    @property
    def default_links(self) -> bool:
        return self.links == DEFAULT_LINKS

    def search_kwargs(self, hierarchy: MemoryHierarchy, dim_names: dict[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`accelsim.mapping.search.search_layer` (accelsim letters).

        ZigZag's rule for array dimensions a given ``spatial_mapping`` leaves out: they are
        filled from the hint, or from every loop dimension when the hint does not name them
        (``SpatialMappingGeneratorStage``: ``oa_dims_to_fill``, ``complete_with_defaults``).
        """
        kw: dict[str, Any] = {}
        spatial = self.spatial_letters(dim_names)
        if spatial is not None:
            kw["spatial"] = {ad: list(loops) for ad, loops in spatial.items()}
        hint = self.hint_letters(dim_names, {d.name for d in hierarchy.array.dimensions})
        if hint is not None:
            kw["hint"] = {ad: list(ds) for ad, ds in hint.items()}
        if "spatial" in kw:
            missing = [d.name for d in hierarchy.array.dimensions if d.name not in kw["spatial"]]
            if missing:
                kw.setdefault("hint", {})
            elif "hint" in kw:
                del kw["hint"]  # every array dimension is given: the hint has nothing to fill
        if self.temporal_ordering is not None:
            kw["temporal_ordering"] = TemporalOrdering.of(
                [(d if d == WILDCARD else _resolve_loose(d, dim_names), s) for d, s in self.temporal_ordering])
        return kw

    def spatial_letters(self, dim_names: dict[str, str] | None = None) -> dict[str, tuple[tuple[str, int], ...]] | None:
        """The accelsim-letter view of ``spatial``: per array dimension the ``(letter, size)``
        unrollings (None: not given). A loop name that is neither ZigZag's (``B K C OY OX FY FX
        G``) nor in ``dim_names`` (a layer's generic names) is a ConfigError naming the entry and key."""
        if self.spatial is None:
            return None
        return {ad: tuple((resolve(d, dim_names, self.source, f"{self.entry}.spatial_mapping.{ad}"), s)
                          for d, s in loops) for ad, loops in self.spatial}

    def hint_letters(self, dim_names: dict[str, str] | None = None,
                     array_dims: set[str] | None = None) -> dict[str, tuple[str, ...]] | None:
        """The accelsim-letter view of ``hint`` (None: not given), as :meth:`spatial_letters`;
        ``array_dims``: keep only these array dimensions (ZigZag ignores hints for dimensions the
        accelerator does not have; their loop names are then not checked either)."""
        if self.hint is None:
            return None
        return {ad: tuple(resolve(d, dim_names, self.source, f"{self.entry}.spatial_mapping_hint.{ad}") for d in ds)
                for ad, ds in self.hint if array_dims is None or ad in array_dims}

    def hierarchy_for(self, hierarchy: MemoryHierarchy,
                      built_with: dict[str, str] | None = None) -> MemoryHierarchy:
        """``hierarchy`` (whose layer operands were linked by ``built_with``, default ZigZag's)
        with its operands relinked by this entry's ``memory_operand_links``."""
        base = dict(built_with or DEFAULT_LINKS)
        if self.links == base:
            return hierarchy
        mem_to_new = {m: op for op, m in self.links.items()}
        relabel = {}
        for op, m in base.items():
            if m not in mem_to_new:
                raise ConfigError(f"does not link the accelerator's memory operand {m!r} to a layer operand",
                                  source=self.source, field=f"{self.entry}.memory_operand_links")
            relabel[op] = mem_to_new[m]
        data = hierarchy.model_dump()
        for mem in data["memories"]:
            mem["operands"] = [relabel[o] for o in mem["operands"]]
            for port in mem["ports"]:
                for a in port["allocation"]:
                    a["operand"] = relabel[a["operand"]]
        return MemoryHierarchy.model_validate(data)


def _resolve_loose(d: str, dim_names: dict[str, str] | None) -> str:
    """A loop name in accelsim letters for a temporal ordering; names that are not a loop of
    the layer are kept as written (ZigZag drops them, so does :class:`TemporalOrdering`)."""
    if dim_names and d in dim_names:
        return dim_names[d]
    return ZIGZAG_DIMS.get(d, d)


def resolve(d: str, dim_names: dict[str, str] | None, source: str, key: str) -> str:
    """ZigZag loop name -> accelsim letter (``dim_names`` first: a layer's generic names)."""
    if dim_names and d in dim_names:
        return dim_names[d]
    if d in ZIGZAG_DIMS:
        return ZIGZAG_DIMS[d]
    raise ConfigError(f"loop dimension {d!r} is not a loop of this layer (ZigZag names: "
                      f"{', '.join(ZIGZAG_DIMS)})", source=source, field=key)


@dataclass(frozen=True)
class ZigzagMappingFile:
    """The entries of one mapping file, in file order."""

    entries: tuple[LayerMappingSpec, ...]
    source: str = "<zigzag mapping>"

    def entry(self, name: str) -> LayerMappingSpec | None:
        """The first entry called ``name`` (None if there is none)."""
        return next((e for e in self.entries if e.entry == name), None)

    def generic_loop_names(self) -> tuple[str, ...]:
        """Loop names of the file that are not ZigZag's standard ones (``D0`` of ``gemm_l1.yaml``, or
        a typo), sorted: valid only for a workload whose layers have such loops, so they are
        checked when a layer is mapped, not when the file is read."""
        names: set[str] = set()
        for e in self.entries:
            names.update(d for _, loops in e.spatial or () for d, _ in loops)
            names.update(d for _, ds in e.hint or () for d in ds)
            names.update(d for d, _ in e.temporal_ordering or () if d != WILDCARD)
        return tuple(sorted(names - set(ZIGZAG_DIMS)))

    def spec_for(self, layer_name: str, operator_type: str | None = None) -> LayerMappingSpec:
        """ZigZag's precedence: entry named like the layer, else like its operator type, else default."""
        e = self.entry(layer_name)
        if e is not None:
            return replace(e, matched_by="name")
        if operator_type is not None:
            e = self.entry(operator_type)
            if e is not None:
                return replace(e, matched_by="operator_type")
        e = self.entry("default")
        if e is None:  # pragma: no cover - the reader requires a default entry
            raise ConfigError("no 'default' entry", source=self.source, field="default")
        return replace(e, matched_by="default")

    def validate(self, hierarchy: MemoryHierarchy, memory_operands: set[str] | None = None) -> None:
        """Check every entry against an accelerator: array dimensions exist, a given unrolling
        fits its array dimension, operand links name the accelerator's memory operands
        (``memory_operands``; default: the operands of ``hierarchy`` through ZigZag's default links)."""
        sizes = {d.name: d.size for d in hierarchy.array.dimensions}
        mem_ops = memory_operands if memory_operands is not None else {
            DEFAULT_LINKS[op] for m in hierarchy.memories for op in m.operands}
        for e in self.entries:
            for key, table in (("spatial_mapping", e.spatial), ("spatial_mapping_hint", e.hint)):
                for ad, loops in table or ():
                    if ad not in sizes and key == "spatial_mapping_hint":
                        continue  # ZigZag generates unrollings for the array's own dimensions only
                    if ad not in sizes:
                        raise ConfigError(f"array dimension {ad!r} does not exist (accelerator {hierarchy.name} has "
                                          f"{', '.join(sizes)})", source=self.source, field=f"{e.entry}.{key}.{ad}")
                    if key == "spatial_mapping":
                        total = 1
                        for _, s in loops:
                            total *= s
                        if total > sizes[ad]:
                            raise ConfigError(f"unrolls {total} on array dimension {ad} of size {sizes[ad]}",
                                              source=self.source, field=f"{e.entry}.{key}.{ad}")
            for op, m in e.operand_links:
                if m not in mem_ops:
                    raise ConfigError(f"links {op} to memory operand {m!r}, which accelerator {hierarchy.name} does "
                                      f"not have (it has {', '.join(sorted(mem_ops))})", source=self.source,
                                      field=f"{e.entry}.memory_operand_links.{op}")


# ------------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------------

def _err(msg: str, src: str, key: str) -> ConfigError:
    return ConfigError(msg, source=src, field=key)


def _loop_name(value: Any, src: str, key: str) -> str:
    if not isinstance(value, str) or not _LOOP_NAME.match(value.strip()):
        raise _err(f"loop dimension {value!r} must be an upper-case name such as K, OX or D0", src, key)
    return value.strip()


def _int(value: Any, src: str, key: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise _err(f"{what} {value!r} is not a positive integer", src, key)
    if value < 1:
        raise _err(f"{what} {value} is not a positive integer", src, key)
    return int(value)


def _per_array_dim(value: Any, src: str, key: str, what: str,
                   parse: Callable[[list[Any], str], tuple[Any, ...]]) -> tuple[tuple[str, Any], ...]:
    """``{array dim: [items]}`` -> ``((array dim, parse(items, key)), ...)``; ``what`` names the items."""
    if not isinstance(value, dict):
        raise _err(f"must map array dimensions to lists of {what}", src, key)
    rows = []
    for ad, items in value.items():
        akey = f"{key}.{ad}"
        if not isinstance(items, list):
            raise _err(f"must be a list of {what}", src, akey)
        rows.append((str(ad), parse(items, akey)))
    return tuple(rows)


def _parse_spatial(sm: Any, src: str, key: str) -> Spatial:
    def loops(items: list[Any], akey: str) -> tuple[tuple[str, int], ...]:
        lps: list[tuple[str, int]] = []
        for lp in items:
            parts = lp.split(",") if isinstance(lp, str) else None
            if parts is None or len(parts) != 2:
                raise _err(f"unrolling {lp!r} must be a string 'DIM, SIZE'", src, akey)
            d = _loop_name(parts[0], src, akey)
            if any(d == x for x, _ in lps):
                raise _err(f"loop dimension {d} is unrolled twice", src, akey)
            lps.append((d, _int(parts[1].strip(), src, akey, "unrolling size")))
        return tuple(lps)

    return _per_array_dim(sm, src, key, "'DIM, SIZE' strings", loops)


def _parse_hint(h: Any, src: str, key: str) -> Hint:
    return _per_array_dim(h, src, key, "loop dimensions",
                          lambda items, akey: tuple(_loop_name(d, src, akey) for d in items))


def _parse_ordering(t: Any, src: str, key: str) -> tuple[tuple[str, int | None], ...]:
    if not isinstance(t, list):
        raise _err("must be a list of [DIM, SIZE or '*'] loops, innermost first", src, key)
    out = []
    for i, lp in enumerate(t):
        lkey = f"{key}[{i}]"
        if not isinstance(lp, list) or len(lp) != 2:
            raise _err(f"loop {lp!r} must be [DIM, SIZE or '*']", src, lkey)
        d = lp[0].strip() if isinstance(lp[0], str) and lp[0].strip() == WILDCARD else _loop_name(lp[0], src, lkey)
        if isinstance(lp[1], str) and lp[1].strip() == WILDCARD:
            size = None
        elif isinstance(lp[1], bool) or not isinstance(lp[1], int) or lp[1] < 1:
            raise _err(f"loop size {lp[1]!r} must be a positive integer or '*'", src, lkey)
        else:
            size = int(lp[1])
        out.append((d, size))
    return tuple(out)


def _parse_links(links: Any, src: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(links, dict):
        raise _err("must map O, W and I to memory operands", src, key)
    for k in links:
        if k not in _LAYER_OPERANDS:
            raise _err(f"unknown layer operand {k!r} (O, W, I)", src, f"{key}.{k}")
    for k in _LAYER_OPERANDS:
        if k not in links:
            raise _err(f"missing layer operand {k}", src, f"{key}.{k}")
        if not isinstance(links[k], str) or not links[k].strip():
            raise _err(f"memory operand {links[k]!r} must be a name such as I1", src, f"{key}.{k}")
    vals = [links[k].strip() for k in _LAYER_OPERANDS]
    if len(set(vals)) != 3:
        raise _err(f"O, W and I must link to three different memory operands, got {vals}", src, key)
    return tuple(sorted((k, links[k].strip()) for k in _LAYER_OPERANDS))


def _parse_cores(c: Any, src: str, key: str) -> tuple[int, ...]:
    cores = c if isinstance(c, list) else [c]
    for x in cores:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise _err(f"core id {x!r} is not a non-negative integer", src, key)
    out = tuple(int(x) for x in cores)
    if len(out) != 1:
        raise _err(f"allocates {len(out)} cores; accelsim maps one array (a single core) per layer", src, key)
    return out


def mapping_file_from_data(data: Any, source: str = "<zigzag mapping>") -> ZigzagMappingFile:
    """Parse the list of entries of a ZigZag mapping file (see the module docstring)."""
    if not isinstance(data, list) or not data:
        raise ConfigError("a ZigZag mapping file is a non-empty list of entries", source=source)
    entries = []
    for i, e in enumerate(data):
        if not isinstance(e, dict):
            raise _err("each entry must be a mapping with a 'name'", source, f"[{i}]")
        if not isinstance(e.get("name"), str) or not e["name"].strip():
            raise _err("each entry needs a 'name' (layer name, operator type or default)", source, f"[{i}].name")
        name = e["name"].strip()
        for k in e:
            if k not in MAPPING_KEYS:
                raise _err(f"unknown key '{k}' (ZigZag mapping keys: {', '.join(MAPPING_KEYS)})", source,
                           f"{name}.{k}")
        spec = LayerMappingSpec(
            entry=name, source=source,
            spatial=(_parse_spatial(e["spatial_mapping"], source, f"{name}.spatial_mapping")
                     if e.get("spatial_mapping") is not None else None),
            hint=(_parse_hint(e["spatial_mapping_hint"], source, f"{name}.spatial_mapping_hint")
                  if e.get("spatial_mapping_hint") is not None else None),
            temporal_ordering=(_parse_ordering(e["temporal_ordering"], source, f"{name}.temporal_ordering")
                               if e.get("temporal_ordering") else None),
            operand_links=(_parse_links(e["memory_operand_links"], source, f"{name}.memory_operand_links")
                           if e.get("memory_operand_links") is not None else tuple(sorted(DEFAULT_LINKS.items()))),
            core_allocation=(_parse_cores(e["core_allocation"], source, f"{name}.core_allocation")
                             if e.get("core_allocation") is not None else None))
        entries.append(spec)
    if not any(s.entry == "default" for s in entries):
        raise ConfigError("no 'default' entry (ZigZag requires one)", source=source, field="default")
    return ZigzagMappingFile(tuple(entries), source)


def load_mapping_file(path: str | Path) -> ZigzagMappingFile:
    """Read a ZigZag mapping YAML file."""
    return mapping_file_from_data(_read_yaml(path), str(path))


__all__ = ["MAPPING_KEYS", "LayerMappingSpec", "ZigzagMappingFile", "load_mapping_file", "mapping_file_from_data",
           "resolve"]
