"""Read a ZigZag (3.x) workload YAML into the workload IR.

A ZigZag workload is a YAML *list* of layers (what tells it apart from accelsim's mapping with
``layers``), each with ``id``, optional ``name`` (default ``Layer<id>``, as ZigZag names it),
``operator_type``, ``equation`` (e.g. ``O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]``),
``dimension_relations`` (``ix=2*ox+1*fx``: stride 2, dilation 1), ``loop_dims`` / ``loop_sizes``,
``operand_precision``, ``operand_source`` (an operand whose source is the layer's own id is a
constant, i.e. a weight), and optionally ``pr_loop_dims`` / ``pr_loop_sizes`` / ``padding``.

The loop dimensions are classified from the equation, so any dimension names work (ZigZag's
``gemm_layer.yaml`` uses ``D0, D1, D2``):

- in O and I but not W: rows (``B`` = batch, the others multiply the rows, or for pooling and
  ``Add`` the channels); in O and W only: output channels; in W and I only: reduction
  (input channels); in O, W and I: groups (depthwise ``G``); the two sides of a relation:
  output pixels (stride) and filter taps (dilation).
- ``Conv`` / ``Conv_downsample`` with two relations -> ``conv2d`` (one relation: ``1 x L``);
  without relations -> ``linear`` (constant W), ``matmul`` with ``b_operand: weight`` (constant
  W with group dims) or ``matmul`` activation x activation (W from another layer). ``Gemm``
  likewise.
- ``Pooling`` / ``Pool`` / ``MaxPool`` / ``AveragePool`` / ``GlobalAveragePool`` -> ``pool``.
  ZigZag's generic ``Pooling`` does not say max or average: a window covering its whole input
  with a 1x1 output is read as global average pooling, any other as max pooling.
- ``Add`` / ``Max`` -> ``elementwise`` with 2 inputs.

Input size along a relation ``i = s*o + d*f``: ``pr_loop_sizes`` if given; else the relation's
extent ``s*(O-1) + d*(F-1) + 1`` minus the ``padding`` ``[lo, hi]`` of that dimension; with no
padding given the extent itself (ZigZag's own view: its example ResNet-18 has no padding, so a
3x3 conv on 56x56 reads a 58x58 input). Padding becomes the symmetric pad with the same output
size (as for ONNX). MACs always equal ZigZag's (the product of the loop sizes) for conv/GEMM
layers; pooling and ``Add`` are vector work in accelsim (``vector_ops`` = ZigZag's count).
``operand_precision`` ``W`` / ``I`` become ``quant.weight_bits`` / ``act_bits``; ``O`` /
``O_final`` (partial-sum precision) is a hardware property in accelsim and not read here.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .compression import Compression, Quant
from .layer import MAX_DIM, MAX_GEMM_ROWS, Conv2d, Elementwise, LayerBase, Linear, Matmul, Pool
from .workload import Workload

_EQUATION = re.compile(r"^O((?:\[\w+\])+)\+?=(\w)((?:\[\w*\])+)([*+])(\w)((?:\[\w*\])+)$")
_RELATION = re.compile(r"^(\w+)\s*=\s*(?:(\w+)\s*\*\s*)?(\w+)\s*\+\s*(?:(\w+)\s*\*\s*)?(\w+)$")
_KEYS = {"id", "name", "operator_type", "equation", "dimension_relations", "loop_dims", "loop_sizes",
         "operand_precision", "operand_source", "pr_loop_dims", "pr_loop_sizes", "padding"}
CONV_TYPES = {"Conv", "Conv_downsample", "Gemm"}
POOL_TYPES = {"Pooling", "Pool", "MaxPool", "AveragePool", "GlobalAveragePool"}
ADD_TYPES = {"Add", "Max"}


def is_zigzag_workload_file(path: str | Path) -> bool:
    """True if a YAML file's top level is a list (a ZigZag workload; accelsim's is a mapping)."""
    try:
        if not Path(path).is_file():
            return False  # the ordinary reader reports it
        with open(path, "rb") as fh:  # the first 64 KiB decide (no unbounded read)
            text = fh.read(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        s = line.split("#", 1)[0].rstrip()
        if not s.strip() or s.strip() == "---":
            continue
        return s.startswith("-") and (len(s) == 1 or s[1] in " \t")
    return False


def load_zigzag_workload(path: str | Path, name: str | None = None) -> Workload:
    """Read a ZigZag workload YAML (see the module docstring)."""
    p = Path(path)
    source = str(p)
    from .._validation import load_yaml_text, read_text_file

    data = load_yaml_text(read_text_file(p), source, duplicates="last")  # ZigZag's files as they are
    return workload_from_zigzag(data, source=source, name=name or p.stem)


def workload_from_zigzag(data: Any, source: str = "<zigzag workload>", name: str = "zigzag") -> Workload:
    if not isinstance(data, list) or not data:
        raise ConfigError("a ZigZag workload is a non-empty list of layers", source=source)
    layers: list[LayerBase] = []
    notes: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        layer = _layer(item, i, source, notes)
        if layer.name in seen:
            raise ConfigError(f"layer name {layer.name!r} is used twice", source=source, field=f"[{i}].name")
        seen.add(layer.name)
        layers.append(layer)
    return Workload(name=name, layers=layers, source=f"ZigZag workload {Path(source).name}",
                    description="; ".join([f"ZigZag workload, {len(layers)} layers", *notes]))


def _layer(item: Any, i: int, source: str, notes: list[str]) -> LayerBase:
    where = f"[{i}]"

    def err(msg: str, key: str = "") -> ConfigError:
        return ConfigError(msg, source=source, field=f"{where}.{key}" if key else where)

    if not isinstance(item, dict):
        raise err(f"expected a mapping (a layer), got {type(item).__name__}")
    for key in ("id", "operator_type", "equation", "loop_dims", "loop_sizes"):
        if key not in item:
            raise err("missing (a ZigZag layer needs id, operator_type, equation, loop_dims, loop_sizes)", key)
    lid = item["id"]
    if not isinstance(lid, int) or isinstance(lid, bool):
        raise err(f"expected an integer, got {lid!r}", "id")
    name = item.get("name") or f"Layer{lid}"
    if not isinstance(name, str):
        raise err(f"expected a string, got {type(name).__name__}", "name")
    where = f"[{i}]({name})"
    unknown = sorted(str(k) for k in set(item) - _KEYS)  # YAML keys may be numbers or null
    if unknown:
        raise err(f"unknown key (supported: {', '.join(sorted(_KEYS))})", unknown[0])
    for key in ("dimension_relations", "pr_loop_dims", "pr_loop_sizes", "padding"):
        if item.get(key) is not None and not isinstance(item[key], list):
            raise err(f"expected a list, got {type(item[key]).__name__}", key)
    op = item["operator_type"]
    if not isinstance(op, str) or op not in CONV_TYPES | POOL_TYPES | ADD_TYPES:
        raise err(f"unsupported operator_type {op!r} (supported: {', '.join(sorted(CONV_TYPES | POOL_TYPES | ADD_TYPES))})",
                  "operator_type")
    dims, sizes = item["loop_dims"], item["loop_sizes"]
    if not isinstance(dims, list) or not isinstance(sizes, list) or len(dims) != len(sizes):
        raise err("loop_dims and loop_sizes must be lists of the same length", "loop_sizes")
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_GEMM_ROWS for s in sizes):
        raise err(f"expected positive integers up to {MAX_GEMM_ROWS:,}, got {sizes}", "loop_sizes")
    if not all(isinstance(d, str) for d in dims):
        raise err(f"expected dimension names (strings), got {dims}", "loop_dims")
    size = {str(d).lower(): s for d, s in zip(dims, sizes)}
    eq = _EQUATION.match(str(item["equation"]).replace(" ", ""))
    if not eq:
        raise err(f"cannot parse {item['equation']!r} (expected like O[b][k]+=W[k][c]*I[b][c])", "equation")
    o_dims = _indices(eq.group(1))
    operands = {eq.group(2): _indices(eq.group(3)), eq.group(5): _indices(eq.group(6))}
    if set(operands) != {"W", "I"}:
        raise err(f"operands must be W and I, got {sorted(operands)}", "equation")
    w_dims, i_dims = operands["W"], operands["I"]
    relations = []  # (input dim, output dim, stride, filter dim, dilation)
    for j, text in enumerate(item.get("dimension_relations") or []):
        m = _RELATION.match(str(text).replace(" ", ""))
        if not m:
            raise err(f"cannot parse {text!r} (expected like ix=2*ox+1*fx)", f"dimension_relations[{j}]")
        d1, c2, d2, c3, d3 = (g.lower() if g else g for g in m.groups())
        try:
            c2i, c3i = int(c2 or 1), int(c3 or 1)
        except ValueError:
            raise err(f"coefficients must be integers in {text!r}", f"dimension_relations[{j}]") from None
        if not (0 < c2i <= MAX_DIM and 0 < c3i <= MAX_DIM):
            raise err(f"coefficients must be integers in 1..{MAX_DIM:,} in {text!r}", f"dimension_relations[{j}]")
        if d2 in o_dims and d3 not in o_dims:
            relations.append((d1, d2, c2i, d3, c3i))
        elif d3 in o_dims and d2 not in o_dims:
            relations.append((d1, d3, c3i, d2, c2i))
        else:
            raise err(f"one side of {text!r} must be an output dimension, the other a filter dimension",
                      f"dimension_relations[{j}]")
    relations.sort(key=lambda r: i_dims.index(r[0]) if r[0] in i_dims else len(i_dims))
    rel_in = {r[0] for r in relations}
    used = set(o_dims) | set(w_dims) | (set(i_dims) - rel_in)
    missing = sorted(d for d in used if d not in size)
    if missing:
        raise err(f"equation dimension {missing[0]!r} has no loop size", "loop_dims")
    extra = sorted(d for d in size if d not in used and size[d] != 1)
    if extra:
        raise err(f"loop dimension {extra[0].upper()!r} does not appear in the equation", "loop_dims")
    rel_out = {r[1] for r in relations}
    rel_filt = {r[3] for r in relations}
    O, W, I = set(o_dims), set(w_dims), set(i_dims) - rel_in
    rows = [d for d in o_dims if d in I and d not in W and d not in rel_out]
    groups = [d for d in o_dims if d in W and d in I]
    outs = [d for d in o_dims if d in W and d not in I]
    reds = [d for d in w_dims if d in I and d not in O]
    for d in sorted(used):
        if d not in set(rows) | set(groups) | set(outs) | set(reds) | rel_out | rel_filt:
            raise err(f"dimension {d.upper()!r} is in none of the supported roles (rows, output/input channels, "
                      "groups, output pixels, filter taps)", "equation")

    def prod(ds: list[str]) -> int:
        return math.prod(size[d] for d in ds)

    batch_dims = [d for d in rows if d == "b"]
    other_rows = [d for d in rows if d != "b"]
    batch = prod(batch_dims)
    spatial, rounding, approx = _spatial(item, relations, size, err)
    if approx:
        notes.append(f"{name}: padding {item.get('padding')} modelled as symmetric pad "
                     f"{[a[5] for a in spatial]} (same output size and MACs)")
    src = item.get("operand_source") or {}
    prec = item.get("operand_precision") or {}
    for key, value in (("operand_source", src), ("operand_precision", prec)):
        if not isinstance(value, dict):
            raise err(f"expected a mapping, got {type(value).__name__}", key)
    w_const = "W" not in src or src.get("W") == lid
    comp = _compression(prec, err) if op in CONV_TYPES else Compression()

    def build(cls: type[LayerBase], **fields: Any) -> LayerBase:
        try:
            return cls(name=name, **fields)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise err(str(e.get("msg", "invalid layer")).removeprefix("Value error, ")) from None

    if op in ADD_TYPES:
        if relations:
            raise err(f"{op} with dimension_relations is not supported", "dimension_relations")
        return build(Elementwise, batch=batch, elements=prod(other_rows + groups + outs), num_inputs=2)
    if op in POOL_TYPES:
        channels = prod(other_rows + groups + outs)
        if reds:
            raise err(f"a pooling layer cannot reduce over {reds[0].upper()!r}", "equation")
        if not spatial:
            raise err("a pooling layer needs dimension_relations (its window)", "dimension_relations")
        (ih, oh, kh, sh, dh, ph), (iw, ow, kw, sw, dw, pw) = _two(spatial)
        if dh != 1 or dw != 1:
            raise err("pooling with dilation is not supported (the pool layer has no dilation)", "dimension_relations")
        whole = oh == 1 and ow == 1 and kh >= ih and kw >= iw
        mode = "avg" if op in ("AveragePool", "GlobalAveragePool") or (op in ("Pooling", "Pool") and whole) else "max"
        if whole and ih == kh and iw == kw:
            return build(Pool, batch=batch, channels=channels, in_h=ih, in_w=iw, mode=mode, global_pool=True)
        return build(Pool, batch=batch, channels=channels, in_h=ih, in_w=iw, kernel_h=kh, kernel_w=kw, stride_h=sh,
                     stride_w=sw, pad_h=ph, pad_w=pw, mode=mode, out_rounding=rounding)
    # conv / GEMM
    g = prod(groups)
    if spatial:
        if not w_const:
            raise err("a convolution whose W comes from another layer is not supported", "operand_source")
        (ih, oh, kh, sh, dh, ph), (iw, ow, kw, sw, dw, pw) = _two(spatial)
        return build(Conv2d, batch=batch * prod(other_rows), in_channels=prod(reds) * g, out_channels=prod(outs) * g,
                     groups=g, in_h=ih, in_w=iw, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph,
                     pad_w=pw, dilation_h=dh, dilation_w=dw, out_rounding=rounding, compression=comp)
    m_, k_, n_ = prod(rows), prod(reds), prod(outs)
    if not w_const:
        return build(Matmul, batch=g, m=m_, k=k_, n=n_, b_operand="activation", compression=comp)
    if g > 1:
        return build(Matmul, batch=1, heads=g, m=m_, k=k_, n=n_, b_operand="weight", compression=comp)
    return build(Linear, batch=m_, in_features=k_, out_features=n_, compression=comp)


def _indices(text: str) -> list[str]:
    return [t.lower() for t in re.findall(r"\[(\w*)\]", text) if t]


def _compression(prec: dict[str, Any], err) -> Compression:  # type: ignore[no-untyped-def]
    bits = {}
    for key, field in (("W", "weight_bits"), ("I", "act_bits")):
        v = prec.get(key)
        if v is None or v == 0:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 32:
            raise err(f"expected bits in 1..32, got {v!r}", f"operand_precision.{key}")
        bits[field] = v
    return Compression(quant=Quant(**bits)) if bits else Compression()


def _spatial(item: dict[str, Any], relations: list[tuple[str, str, int, str, int]], size: dict[str, int],
             err) -> tuple[list[tuple[int, int, int, int, int, int]], str, bool]:  # type: ignore[no-untyped-def]
    """Per relation (input size, output size, kernel, stride, dilation, symmetric pad), the output
    rounding, and whether the padding had to be approximated (asymmetric/odd: same output size)."""
    from .onnx_io import _fit_spatial  # pure-Python helper (no onnx import)

    pr_dims = [str(d).lower() for d in (item.get("pr_loop_dims") or [])]
    pr_sizes = item.get("pr_loop_sizes")
    padding = item.get("padding")
    if pr_sizes is not None and (len(pr_sizes) != len(pr_dims) or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_DIM for n in pr_sizes)):
        raise err(f"pr_loop_sizes needs one integer in 1..{MAX_DIM:,} per pr_loop_dims entry", "pr_loop_sizes")
    if padding is not None and (len(padding) != len(pr_dims)
                                or not all(isinstance(p, list) and len(p) == 2 for p in padding)):
        raise err("padding needs one [lo, hi] pair per pr_loop_dims entry", "padding")
    unknown = [d for d in pr_dims if d not in {r[0] for r in relations}]
    if unknown:
        raise err(f"{unknown[0].upper()!r} is not the input side of a dimension relation", "pr_loop_dims")
    axes = []  # (input size, output size, kernel, stride, dilation, total pad)
    for in_dim, o_dim, stride, f_dim, dil in relations:
        o, k = size[o_dim], size.get(f_dim, 1)
        extent = stride * (o - 1) + dil * (k - 1) + 1
        lo = hi = 0
        if in_dim in pr_dims:
            j = pr_dims.index(in_dim)
            if padding is not None:
                lo, hi = padding[j]
                if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_DIM for x in (lo, hi)):
                    raise err(f"padding must be non-negative integers, got {padding[j]}", f"padding[{j}]")
            n = int(pr_sizes[j]) if pr_sizes is not None else extent - lo - hi
        else:
            n = extent
        if n < 1:
            raise err(f"input size along {in_dim.upper()!r} would be {n}", "padding")
        axes.append((n, o, k, stride, dil, lo + hi))
    if not axes:
        return [], "floor", False
    if len(axes) > 2:
        raise err(f"{len(axes)} dimension relations: only 1-D and 2-D windows are supported", "dimension_relations")
    fit = _fit_spatial(*(tuple(a[i] for a in axes) for i in (0, 2, 3, 4, 5, 1)), "floor")
    if fit is None:
        raise err(f"no padding gives outputs {[a[1] for a in axes]} from inputs {[a[0] for a in axes]}", "padding")
    fitted, rounding = fit
    changed = any(f.in_size != a[0] or 2 * f.pad != a[5] for f, a in zip(fitted, axes))
    return [(f.in_size, a[1], a[2], a[3], a[4], f.pad) for f, a in zip(fitted, axes)], rounding, changed


def _two(spatial: list[tuple[int, int, int, int, int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return ((1, 1, 1, 1, 1, 0), spatial[0]) if len(spatial) == 1 else (spatial[0], spatial[1])


__all__ = ["is_zigzag_workload_file", "load_zigzag_workload", "workload_from_zigzag"]
