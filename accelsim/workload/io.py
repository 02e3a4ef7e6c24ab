"""Read and write workloads: accelsim YAML/JSON and SCALE-Sim topology CSVs (ONNX: :mod:`.onnx_io`).

accelsim YAML schema (``accelsim_workload: 1``)::

    accelsim_workload: 1
    name: resnet18
    description: ...            # optional
    masks: resnet18_masks.npz   # optional, relative to this file
    layers:
      - {name: conv1, op: conv2d, in_channels: 3, out_channels: 64, in_h: 224, in_w: 224,
         kernel: 7, stride: 2, padding: 3}
      - {name: fc, op: linear, in_features: 512, out_features: 1000}
      - name: l1.conv1
        op: conv2d
        ...
        compression:
          sparsity: {kind: nm, n: 2, m: 4, density: 0.5}
          quant: {weight_bits: 4, act_bits: 8}

Every layer field is documented on its class in :mod:`accelsim.workload.layer`; ``kernel``,
``stride``, ``padding`` and ``dilation`` accept one integer or ``[h, w]``.

SCALE-Sim topologies: conv rows ``Layer name, IFMAP Height, IFMAP Width, Filter Height,
Filter Width, Channels, Num Filter, Strides[, N:M]`` (no padding, output rounded up as SCALE-Sim
does), or GEMM rows ``Layer Name, M, N, K[, N:M]``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .._validation import read_text_file, atomic_write_text, read_config_file, validate_model
from ..errors import ConfigError
from .compression import Compression, Sparsity
from .layer import Conv2d, Linear
from .workload import Workload


def load_workload(path: str | Path) -> Workload:
    """Load a workload from accelsim YAML/JSON, a SCALE-Sim topology CSV (by extension), a ZigZag
    workload YAML (a top-level list of layers) or an ONNX model (``.onnx``, or any file that
    starts like a serialized ONNX model; needs ``accelsim[onnx]``).

    ``zoo:<name>`` builds a model of :mod:`accelsim.workload.zoo` instead (e.g. ``zoo:resnet50``).
    """
    if isinstance(path, str) and path.startswith("zoo:"):
        from .zoo import get_model

        return get_model(path[4:])
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return read_scalesim_topology(p)
    from .onnx_io import is_onnx_file  # the onnx package itself is imported only to read one

    if suffix not in (".yaml", ".yml", ".json") and is_onnx_file(p):
        from .onnx_io import load_onnx

        return load_onnx(p)
    if suffix in (".yaml", ".yml"):
        from .zigzag_workload import is_zigzag_workload_file, load_zigzag_workload

        if is_zigzag_workload_file(p):  # a top-level list of layers
            return load_zigzag_workload(p)
    data = read_config_file(p, "workload", ", .csv, .onnx")
    wl = workload_from_dict(data, source=str(p), base_dir=p.parent)
    if wl.masks is not None:
        from .masks import validate_workload_masks

        validate_workload_masks(wl)
    return wl


def workload_from_dict(data: Any, source: str = "<workload>", base_dir: Path | None = None) -> Workload:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with 'name' and 'layers'", source=source)
    if "kind" in data and "layers" not in data:
        raise ConfigError("this looks like a hardware file (it has 'kind'), not a workload", source=source)
    wl = validate_model(Workload, data, source)
    wl._base_dir = base_dir
    return wl


def workload_to_dict(wl: Workload) -> dict[str, Any]:
    """Compact dict: default-valued fields are left out."""
    out: dict[str, Any] = {"accelsim_workload": wl.accelsim_workload, "name": wl.name}
    if wl.description:
        out["description"] = wl.description
    if wl.source:
        out["source"] = wl.source
    if wl.masks:
        out["masks"] = wl.masks
    if wl.notes:
        out["notes"] = list(wl.notes)
    layers = []
    for layer in wl.layers:
        d = layer.model_dump(exclude_defaults=True)
        d = {"name": layer.name, "op": layer.op, **{k: v for k, v in d.items() if k not in ("name", "op")}}
        for prefix, short in (("kernel", "kernel"), ("stride", "stride"), ("pad", "padding"), ("dilation", "dilation")):
            hk, wk = f"{prefix}_h", f"{prefix}_w"
            if hk in d or wk in d:
                h, w = getattr(layer, hk), getattr(layer, wk)
                d.pop(hk, None)
                d.pop(wk, None)
                d[short] = h if h == w else [h, w]
        if layer.compression == Compression():
            d.pop("compression", None)
        layers.append(d)
    out["layers"] = layers
    return out


class _FlowDumper(yaml.SafeDumper):
    pass


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = all(not isinstance(v, (dict, list)) for v in data.values()) and len(data) <= 14
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = len(data) > 16 and all(isinstance(v, int) for v in data)  # e.g. a DFS per-input trace: one line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True if flow else None)


_FlowDumper.add_representer(dict, _represent_dict)
_FlowDumper.add_representer(list, _represent_list)
_FlowDumper.add_representer(tuple, lambda d, t: d.represent_list(list(t)))


def dump_workload_yaml(wl: Workload) -> str:
    data = workload_to_dict(wl)
    head = {k: v for k, v in data.items() if k != "layers"}
    text = yaml.safe_dump(head, sort_keys=False, width=120)
    text += "layers:\n"
    for layer in data["layers"]:
        text += "  - " + yaml.dump(layer, Dumper=_FlowDumper, sort_keys=False, width=200).strip().replace("\n", "\n    ") + "\n"
    return text


def save_workload(wl: Workload, path: str | Path) -> None:
    """Write ``wl`` as accelsim YAML (or JSON for a ``.json`` path), atomically."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        atomic_write_text(p, json.dumps(workload_to_dict(wl), indent=1) + "\n")
    else:
        atomic_write_text(p, dump_workload_yaml(wl))


# --- SCALE-Sim topology CSV --------------------------------------------------------------

_CONV_COLS = 7
_GEMM_HEADER_WORDS = {"m", "n", "k"}


def _parse_nm(text: str, source: str, field: str) -> Sparsity | None:
    text = text.strip()
    if not text:
        return None
    try:
        n_str, m_str = text.split(":")
        n, m = int(n_str), int(m_str)
    except ValueError:
        raise ConfigError(f"expected sparsity as N:M (e.g. 2:4), got {text!r}", source=source, field=field) from None
    if n <= 0 or m <= 0 or n > m:
        raise ConfigError(f"N:M sparsity needs 0 < N <= M, got {text!r}", source=source, field=field)
    if n == m:
        return None
    return Sparsity(kind="nm", n=n, m=m, density=n / m, format="nm_index")


def read_scalesim_topology(path: str | Path, name: str | None = None) -> Workload:
    """Read a SCALE-Sim topology CSV (conv or GEMM form, detected from the header)."""
    p = Path(path)
    source = str(p)
    text = read_text_file(p)
    if "\x00" in text:
        raise ConfigError("binary data (NUL bytes) in a CSV file", source=source)
    try:
        rows = [r for r in csv.reader(text.splitlines())]
    except csv.Error as exc:  # e.g. a cell over csv.field_size_limit() (131,072 characters)
        raise ConfigError(f"malformed CSV: {exc}", source=source) from None
    rows = [[c.strip() for c in r] for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ConfigError("empty topology file", source=source)
    header = [h.lower() for h in rows[0] if h]
    is_gemm = len(header) >= 4 and set(header[1:4]) == _GEMM_HEADER_WORDS
    layers = []
    for i, row in enumerate(rows[1:], start=2):
        cells = [c for c in row]
        while cells and cells[-1] == "":
            cells.pop()
        lname = cells[0] if cells else ""
        where = f"line {i}" + (f" ({lname})" if lname else "")
        need = 4 if is_gemm else _CONV_COLS + 1
        if len(cells) < need:
            raise ConfigError(f"expected {need} columns, found {len(cells)}", source=source, field=where)
        nums = []
        for j, cell in enumerate(cells[1:need]):
            col = rows[0][j + 1].strip() if j + 1 < len(rows[0]) else f"column {j + 2}"
            try:
                if len(cell) > 40:
                    raise ValueError
                v = int(float(cell))
                if v != float(cell):
                    raise ValueError
            except (ValueError, OverflowError):
                raise ConfigError(f"expected a positive integer, got {cell!r}", source=source, field=f"{where}: {col}") from None
            if v <= 0:
                raise ConfigError(f"must be a positive integer, got {v}", source=source, field=f"{where}: {col}")
            nums.append(v)
        extra = cells[need] if len(cells) > need else ""
        sp = _parse_nm(extra, source, f"{where}: N:M")
        comp = Compression(sparsity=sp) if sp is not None else Compression()
        try:
            if is_gemm:
                m, n, k = nums
                # SCALE-Sim runs a GEMM as a conv: ifmap M x K, filter 1 x K, 1 channel, N filters.
                layers.append(Linear(name=lname or f"gemm{i - 1}", in_features=k, out_features=n, tokens=m, compression=comp))
            else:
                h, w, r, s, c, k, stride = nums
                layers.append(Conv2d(
                    name=lname or f"layer{i - 1}", in_channels=c, out_channels=k, in_h=h, in_w=w,
                    kernel_h=r, kernel_w=s, stride_h=stride, stride_w=stride, out_rounding="ceil",
                    compression=comp,
                ))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(str(err.get("msg", "invalid layer")).removeprefix("Value error, "), source=source,
                              field=where) from None
    if not layers:
        raise ConfigError("no layers found (only a header?)", source=source)
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):  # SCALE-Sim allows repeats; we make them unique
        counts: dict[str, int] = {}
        renamed = []
        for layer in layers:
            counts[layer.name] = counts.get(layer.name, 0) + 1
            renamed.append(layer if counts[layer.name] == 1 else layer.model_copy(update={"name": f"{layer.name}_{counts[layer.name]}"}))
        layers = renamed
    return Workload(name=name or p.stem, layers=layers, source=f"SCALE-Sim topology {p.name}")
