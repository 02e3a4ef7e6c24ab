"""Read a ZigZag 3.9.1 accelerator YAML file as it is (the hardware side of ZigZag's inputs).

- **Accelerator** (detected by its ``operational_array``/``memories`` keys): memories innermost
  first with ``size`` (bits), ``r_cost``/``w_cost`` (pJ per port-word access), ``operands``
  (memory operands ``I1``, ``I2``, ``O``), ``ports`` (``name``, ``type``, ``bandwidth_min``,
  ``bandwidth_max``, ``allocation: ["I1, tl", ...]``), ``served_dimensions``, optional
  ``force_double_buffering`` (becomes ``double_buffering: always``: tiles must fit twice, and
  transfers may use the whole period; ZigZag 3.9.1 applies it to its mapper's capacity only); ``operational_array`` with ``unit_energy``, ``dimensions``,
  ``sizes``, optional ``systolic_dimensions``. Becomes a :class:`MemoryHierarchy` whose operands
  are the layer operands, through ``memory_operand_links`` (default ZigZag's ``W: I2, I: I1,
  O: O``). ``input_precision: [I, W]`` sets the array's operand widths (partial sums at twice
  the input width, as ZigZag's ONNX parser does). ``area``, ``unit_area`` and ``latency`` are
  read and ignored (they do not enter ZigZag's cost either). CACTI cost extraction and in-memory-computing
  arrays are not supported (one-line ConfigError naming the key and the file).
- **YAML** (:func:`_read_yaml`): ZigZag's files as PyYAML reads them (repeated keys: the last
  wins); the mapping and workload readers use it too.

Mapping files (loop names, spatial/temporal mappings) are read by
:mod:`accelsim.mapping.zigzag_mapping`, the one reader of them: they are a mapping-layer
concept, and hardware sits below mapping in the layer order (``tests/test_architecture.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from .hierarchy import (ArrayDimension, ArrayPrecision, MemoryHierarchy, MemoryLevel, MemoryPort, OperationalArray,
                        PortAllocation)

DEFAULT_LINKS: dict[str, str] = {"W": "I2", "I": "I1", "O": "O"}
_MEM_KEYS = {"size", "r_cost", "w_cost", "area", "latency", "operands", "ports", "served_dimensions",
             "force_double_buffering", "auto_cost_extraction", "min_r_granularity", "min_w_granularity", "mem_type"}
_ARRAY_KEYS = {"unit_energy", "unit_area", "dimensions", "sizes", "systolic_dimensions", "input_precision",
               "is_imc"}
_PORT_KEYS = {"name", "type", "bandwidth_min", "bandwidth_max", "allocation"}


def is_zigzag_accelerator(data: Any) -> bool:
    """True for a parsed ZigZag accelerator file (``operational_array`` and ``memories`` keys)."""
    return isinstance(data, dict) and "operational_array" in data and "memories" in data


def _read_yaml(path: str | Path) -> Any:
    """Parse a ZigZag YAML file (top level may be a list); errors are one-line ConfigErrors.

    ZigZag's files are read as they are: a repeated key keeps its last value (as PyYAML, which
    ZigZag uses, does; its ``tpu_like.yaml`` repeats ``ports``) with a logged warning."""
    from .._validation import load_yaml_text, read_text_file

    return load_yaml_text(read_text_file(path), str(path), duplicates="last")


def _err(msg: str, src: str, key: str) -> ConfigError:
    return ConfigError(msg, source=src, field=key)


def hierarchy_from_zigzag(data: Any, source: str = "<zigzag accelerator>",
                          operand_links: dict[str, str] | None = None) -> MemoryHierarchy:
    """Build a :class:`MemoryHierarchy` from a parsed ZigZag accelerator file."""
    if not is_zigzag_accelerator(data):
        raise ConfigError("not a ZigZag accelerator (needs 'operational_array' and 'memories')", source=source)
    links = dict(operand_links or DEFAULT_LINKS)
    to_layer = {mem_op: layer_op for layer_op, mem_op in links.items()}
    extra = set(data) - {"name", "memories", "operational_array"}
    if extra:
        k = sorted(str(x) for x in extra)[0]
        raise _err(f"unsupported key '{k}'", source, k)
    oa = data["operational_array"]
    if not isinstance(oa, dict):
        raise _err("must be a mapping", source, "operational_array")
    for k in oa:
        if k not in _ARRAY_KEYS or (k == "is_imc" and oa[k]):
            raise _err(f"unsupported key '{k}' (in-memory computing arrays are not supported)"
                       if k in ("is_imc",) else f"unsupported key '{k}'", source, f"operational_array.{k}")
    if "unit_energy" not in oa:
        raise _err("missing 'unit_energy'", source, "operational_array.unit_energy")
    dims = _list(oa.get("dimensions"), source, "operational_array.dimensions")
    sizes = _list(oa.get("sizes"), source, "operational_array.sizes")
    _list(oa.get("systolic_dimensions"), source, "operational_array.systolic_dimensions")
    if len(dims) != len(sizes) or not dims:
        raise _err("'dimensions' and 'sizes' must be non-empty lists of equal length", source, "operational_array")
    try:
        prec = ArrayPrecision()
        if oa.get("input_precision") is not None:  # ZigZag: [I, W] operand widths
            ip = _list(oa["input_precision"], source, "operational_array.input_precision")
            if len(ip) != 2:
                raise _err("input_precision must be [input_bits, weight_bits]", source, "operational_array.input_precision")
            prec = ArrayPrecision(i_bits=int(ip[0]), w_bits=int(ip[1]), o_final_bits=int(ip[0]),
                                  o_bits=2 * int(ip[0]))
        array = OperationalArray(
            dimensions=tuple(ArrayDimension(name=str(d), size=int(s)) for d, s in zip(dims, sizes)),
            mac_energy_pj=float(oa["unit_energy"]),
            systolic_dimensions=tuple(str(d) for d in oa.get("systolic_dimensions") or ()), precision=prec)
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:  # OverflowError: int(inf)
        raise _err(_first_error(exc), source, "operational_array") from None
    mems = []
    if not isinstance(data["memories"], dict) or not data["memories"]:
        raise _err("must be a non-empty mapping of memory names", source, "memories")
    for name, m in data["memories"].items():
        key = f"memories.{name}"
        _check_keys(m, _MEM_KEYS, source, key)
        if m.get("auto_cost_extraction"):
            raise _err("CACTI cost extraction is not supported; give r_cost and w_cost", source,
                       f"{key}.auto_cost_extraction")
        for k in ("min_r_granularity", "min_w_granularity"):
            if m.get(k) is not None:
                raise _err(f"unsupported key '{k}'", source, f"{key}.{k}")
        for k in ("size", "r_cost", "w_cost", "operands", "ports"):
            if k not in m:
                raise _err(f"missing '{k}'", source, f"{key}.{k}")
        ops = []
        _list(m.get("served_dimensions"), source, f"{key}.served_dimensions")
        for mo in _list(m["operands"], source, f"{key}.operands"):
            if str(mo) not in to_layer:
                raise _err(f"memory operand {mo} is not linked to a layer operand (links {links})", source,
                           f"{key}.operands")
            ops.append(to_layer[str(mo)])
        ports = []
        for i, p in enumerate(_list(m["ports"], source, f"{key}.ports")):
            pkey = f"{key}.ports[{i}]"
            _check_keys(p, _PORT_KEYS, source, pkey)
            alloc = []
            for a in _list(p.get("allocation"), source, f"{pkey}.allocation"):
                parts = [s.strip() for s in str(a).split(",")]
                if len(parts) != 2 or parts[1] not in ("fh", "tl", "fl", "th"):
                    raise _err(f"allocation {a!r} must be 'OPERAND, fh|tl|fl|th'", source, f"{pkey}.allocation")
                if parts[0] not in to_layer:
                    raise _err(f"allocation operand {parts[0]} is not linked to a layer operand", source,
                               f"{pkey}.allocation")
                alloc.append(PortAllocation(operand=to_layer[parts[0]], direction=parts[1]))
            try:
                ports.append(MemoryPort(name=str(p.get("name", f"port{i}")), type=p.get("type"),
                                        bandwidth_min_bits=int(p.get("bandwidth_min", p.get("bandwidth_max"))),
                                        bandwidth_max_bits=int(p.get("bandwidth_max")), allocation=tuple(alloc)))
            except (ValidationError, ValueError, TypeError, OverflowError) as exc:
                raise _err(_first_error(exc), source, pkey) from None
        fdb = m.get("force_double_buffering")
        try:
            mems.append(MemoryLevel(
                name=str(name), size_bits=int(m["size"]), operands=tuple(ops), read_pj=float(m["r_cost"]),
                write_pj=float(m["w_cost"]), ports=tuple(p for p in ports if p.allocation),
                served_dimensions=tuple(str(d) for d in m.get("served_dimensions") or ()),
                double_buffering="always" if fdb else "auto"))
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            raise _err(_first_error(exc), source, key) from None
    try:
        return MemoryHierarchy(name=str(data.get("name", Path(source).stem)), array=array, memories=tuple(mems))
    except (ValidationError, ValueError) as exc:
        raise _err(_first_error(exc), source, "memories") from None


def _check_keys(value: Any, allowed: set[str], source: str, key: str) -> None:
    """``value`` must be a mapping whose keys are all in ``allowed``."""
    if not isinstance(value, dict):
        raise _err("must be a mapping", source, key)
    for k in value:
        if k not in allowed:
            raise _err(f"unsupported key '{k}'", source, f"{key}.{k}")


def _list(value: Any, source: str, key: str) -> list[Any]:
    """``value`` as a list (``None``: empty); any other type is a ConfigError naming ``key``."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _err(f"expected a list, got {type(value).__name__}", source, key)
    return list(value)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        loc = ".".join(str(x) for x in e.get("loc", ()))
        return f"{loc}: {e.get('msg')}" if loc else str(e.get("msg"))
    return str(exc)


def load_zigzag_accelerator(path: str | Path, operand_links: dict[str, str] | None = None) -> MemoryHierarchy:
    """Read a ZigZag accelerator YAML file into a :class:`MemoryHierarchy`."""
    return hierarchy_from_zigzag(_read_yaml(path), str(path), operand_links)


__all__ = ["DEFAULT_LINKS", "is_zigzag_accelerator", "hierarchy_from_zigzag", "load_zigzag_accelerator"]
