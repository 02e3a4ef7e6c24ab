"""Export a (compressed) PyTorch model as an accelsim :class:`~accelsim.workload.Workload`.

Shapes are captured by tracing: ``torch.fx`` symbolic tracing with a tracer that records the
module scope of every node, then one forward pass of ``example_input`` through an fx
Interpreter that records every node's output shape. Models that fx cannot trace (data-dependent
control flow) fall back to forward hooks on leaf modules (then plain ``+`` / ``torch.matmul``
calls are not seen, and structural pruning does not shrink consumers; the workload description
says so).

What becomes a layer (in execution order):

- ``nn.Conv2d`` (incl. grouped / depthwise) -> ``Conv2d``; ``nn.Linear`` -> ``Linear`` (``tokens`` =
  product of the middle dims of a ``B x ... x in`` input); ``nn.LSTM`` / ``nn.GRU`` -> one
  ``Recurrent`` per layer and direction (``<name>.l<k>[_reverse]``; just ``<name>`` for a
  1-layer unidirectional RNN).
- ``MatMul`` modules, ``torch.matmul`` / ``@`` / ``torch.bmm`` -> ``Matmul`` (``b_operand: weight``
  when B is a parameter); leading dims give ``batch`` (first) and ``heads`` (the rest).
- ``Add`` modules and tensor + tensor -> ``Elementwise`` (2 inputs); ``nn.Softmax`` / softmax and
  ``nn.LayerNorm`` / layer_norm -> ``Elementwise`` with 5 ops per element, ``nn.GELU`` / gelu with 8
  (the zoo's conventions); max/avg pooling (incl. adaptive) -> ``Pool`` (an adaptive pool whose
  output equals its input is the identity and left out).
- ReLU-family activations, batch norm, dropout, reshapes are fused / free and not listed.
  Other leaf modules with parameters (e.g. embeddings) are not modelled and are noted.

Compression: weight masks (``mask`` key = layer name) are stored as ``uint8`` 0/1 arrays in the
weight's natural layout *of the exported (shrunk) layer*: conv ``out x in/groups x kh x kw``,
linear ``out x in``, LSTM/GRU ``gates*hidden x (input_size + hidden_size)`` = ``[W_ih | W_hh]``.
Extra arrays: ``<layer>.patterns`` (library, P x 3 x 3) and ``<layer>.pattern_ids`` (out x in,
-1 = kernel removed) for pattern pruning; ``<layer>.gs_values`` / ``.gs_indices`` (column of each
non-zero, row-major) / ``.gs_group_nnz`` / ``.gs_group_rows`` for gather-scatter; ``<layer>.se_ce``
(rows x R x S) and ``<layer>.se_basis`` (rows x S x S) for SmartExchange.

Filter pruning (and input-channel pruning) shrinks shapes: a channel-liveness pass over the fx
graph carries the kept output channels of each layer through channel-wise ops (batch norm,
activations, pooling, dropout), adds (a channel stays if any input keeps it), concatenation and
flatten, so consumers lose the matching input channels (a removed channel's constant batch-norm
shift is assumed folded into the consumer's bias). ``Compression.original`` keeps the shapes
before shrinking. Grouped (non-depthwise) convs and anything else stop the propagation.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import atomic_write_bytes
from ..errors import ConfigError
from ..workload import Compression, Factorization, Quant, Sparsity, Workload, save_workload
from ..workload.layer import Conv2d, Elementwise, LayerBase, Linear, Matmul, Pool, Recurrent
from ._deps import require_torch
from .compressor import CompressedModel, UnitState
from .models import Add, MatMul

torch = require_torch()
nn = torch.nn
F = torch.nn.functional
fx = torch.fx

_FUSED_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                  nn.Dropout, nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten)
_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                        nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.BatchNorm1d, nn.MaxPool2d, nn.AvgPool2d,
                        nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.GELU)
_CHANNELWISE_FUNCS = {F.relu, F.relu6, F.gelu, F.silu, F.leaky_relu, F.dropout, F.max_pool2d, F.avg_pool2d,
                      F.adaptive_avg_pool2d, torch.relu, torch.sigmoid, torch.tanh, F.hardswish}
_CHANNELWISE_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone", "relu_"}
_ADD_FUNCS = {operator.add, operator.iadd, torch.add}
_MATMUL_FUNCS = {operator.matmul, torch.matmul, torch.bmm}
_SOFTMAX_FUNCS = {F.softmax, torch.softmax}
_FORMAT = {"unstructured": "bitmask", "block": "bitmask", "nm": "nm_index", "pattern": "pattern_index",
           "gs": "gs_index", "filter": "dense", "channel": "dense"}


class _Tracer(fx.Tracer):
    """fx tracer that keeps our leaf modules opaque and records each node's module scope."""

    def __init__(self) -> None:
        super().__init__()
        self._acc_scope = ""

    def is_leaf_module(self, m: "nn.Module", qualname: str) -> bool:
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM, nn.GRU, Add, MatMul)):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: "nn.Module", forward: Any, args: Any, kwargs: Any) -> Any:
        old = self._acc_scope
        self._acc_scope = self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._acc_scope = old

    def create_node(self, *args: Any, **kwargs: Any) -> Any:
        node = super().create_node(*args, **kwargs)
        node.meta["scope"] = self._acc_scope
        return node


def _shape_of(x: Any) -> Any:
    if torch.is_tensor(x):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)):
        return [_shape_of(v) for v in x]
    return None


class _Recorder(fx.Interpreter):
    def __init__(self, gm: Any, density: bool):
        super().__init__(gm)
        self.density = density

    def run_node(self, n: Any) -> Any:
        out = super().run_node(n)
        n.meta["out_shape"] = _shape_of(out)
        if self.density and torch.is_tensor(out) and out.is_floating_point():
            n.meta["nz"] = float((out != 0).float().mean())
        return out


@dataclass
class _Ctx:
    cm: CompressedModel | None
    layers: list[LayerBase] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    def unit(self, name: str) -> UnitState | None:
        return self.cm.units.get(name) if self.cm is not None else None

    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def add(self, layer: LayerBase) -> None:
        self.names.add(layer.name)
        self.layers.append(layer)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _quant(unit: UnitState | None) -> Quant:
    if unit is None or unit.quant is None:
        return Quant()
    q = unit.quant
    return Quant(weight_bits=q.weight_bits, act_bits=q.act_bits, scheme=q.scheme, granularity=q.granularity,
                 symmetric=q.symmetric)


def _sparsity(unit: UnitState | None, key: str, mask: np.ndarray | None, ctx: _Ctx, kept_fraction: float,
              extra: dict[str, np.ndarray]) -> Sparsity:
    """The Sparsity record of a (possibly shrunk) layer; registers its mask arrays."""
    spec = unit.prune if unit is not None else None
    elem_density = float(mask.mean()) if mask is not None and mask.size else 1.0
    if spec is None and elem_density >= 1.0:
        return Sparsity()
    kind = spec.kind if spec is not None else "unstructured"
    if kind in ("filter", "channel"):
        return Sparsity(kind=kind, density=max(min(kept_fraction * elem_density, 1.0), 1e-9), format="dense")
    if elem_density <= 0.0:
        elem_density = 1e-9
    fields: dict[str, Any] = {"kind": kind, "density": min(elem_density, 1.0), "format": _FORMAT.get(kind, "bitmask")}
    if kind == "block":
        fields.update(block_h=int(spec.block[0]), block_w=int(spec.block[1]))
    elif kind == "nm":
        fields.update(n=spec.n, m=spec.m, density=spec.n / spec.m, index_bits=max(1, math.ceil(math.log2(spec.m))))
    elif kind == "pattern":
        kd = unit.pattern.info["kernels_kept"] / unit.pattern.info["kernels"] if unit.pattern is not None else spec.kernel_density
        fields.update(pattern_entries=spec.entries, num_patterns=spec.num_patterns, kernel_density=max(kd, 1e-9),
                      index_bits=max(1, math.ceil(math.log2(spec.num_patterns + 1))))
    elif kind == "gs":
        fields.update(gs_group_rows=spec.group_rows, index_bits=16)
    if mask is not None:
        ctx.masks[key] = mask.astype(np.uint8)
        fields["mask"] = key
        for k, v in extra.items():
            ctx.masks[f"{key}.{k}"] = v
    return Sparsity(**fields)


_FACTOR_PARTS = ("u", "v", "first", "core", "last")


def _factorization(unit: UnitState | None) -> tuple[Factorization, dict[str, int] | None, str | None]:
    """(record, original shape fields, name of the original layer) of a factorised piece."""
    if unit is None or unit.factor is None:
        return Factorization(), None, None
    rec = dict(unit.factor)
    base, _, part = unit.name.rpartition(".")
    original = unit.original if part in ("core", "v") else None
    return Factorization(**rec), original, (base if base and part in _FACTOR_PARTS else None)


def _keep_vec(mask: "torch.Tensor | None", dim: int, size: int) -> np.ndarray | None:
    if mask is None:
        return None
    dims = tuple(d for d in range(mask.dim()) if d != dim)
    v = mask.any(dim=dims).cpu().numpy() if dims else mask.cpu().numpy()
    return None if v.all() else v


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


# --- per-module layer builders ----------------------------------------------------------------

def _conv(ctx: _Ctx, name: str, m: "nn.Conv2d", in_shape: tuple[int, ...], in_alive: np.ndarray | None,
          act_density: float | None) -> np.ndarray | None:
    unit = ctx.unit(name)
    n, c, h, w = in_shape
    O, G = m.out_channels, m.groups
    cin_g = m.in_channels // G
    mask_t = unit.masks.get("weight") if unit is not None else None
    kind = unit.prune.kind if unit is not None and unit.prune is not None else None
    keep_out = np.ones(O, dtype=bool)
    keep_in = np.ones(cin_g, dtype=bool)
    if kind == "filter" and mask_t is not None:
        keep_out &= mask_t.reshape(O, -1).any(dim=1).cpu().numpy()
    depthwise = G > 1 and G == m.in_channels and O == G
    if depthwise and in_alive is not None:
        keep_out &= in_alive
    if G == 1:
        if in_alive is not None and len(in_alive) == m.in_channels:
            keep_in &= in_alive
        if kind == "channel" and mask_t is not None:
            keep_in &= mask_t.any(dim=(0, 2, 3)).cpu().numpy()
    if not keep_out.any():
        keep_out[0] = True  # a layer keeps at least one filter
    if not keep_in.any():
        keep_in[0] = True
    out_c = int(keep_out.sum())
    in_c = out_c if depthwise else int(keep_in.sum()) * G
    groups = out_c if depthwise else G
    original: dict[str, int] = {}
    if out_c != O:
        original["out_channels"] = O
    if in_c != m.in_channels:
        original["in_channels"] = m.in_channels
    if groups != G:
        original["groups"] = G
    mask = None
    if mask_t is not None:
        mk = mask_t.cpu().numpy().astype(bool)[keep_out]
        mask = mk if depthwise else mk[:, keep_in]
    kept_fraction = (out_c * (in_c // groups)) / (O * cin_g)
    extra = _extra_arrays(unit, keep_out, None if depthwise else keep_in)
    fact, f_orig, factor_of = _factorization(unit)
    if f_orig:
        original = {**f_orig, **original}
    comp = Compression(sparsity=_sparsity(unit, name, mask, ctx, kept_fraction, extra), quant=_quant(unit),
                       factorization=fact, original=original or None, factor_of=factor_of,
                       act_density=_act(act_density))
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride)
    if isinstance(m.padding, str):
        raise ConfigError(f"padding={m.padding!r} is not supported; use integer padding", source="export", field=name)
    ph, pw = _pair(m.padding)
    dh, dw = _pair(m.dilation)
    ctx.add(Conv2d(name=ctx.unique(name), batch=n, in_channels=in_c, out_channels=out_c, in_h=h, in_w=w,
                   kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, dilation_h=dh,
                   dilation_w=dw, groups=groups, compression=comp))
    return None if keep_out.all() else keep_out


def _act(d: float | None) -> float:
    if d is None:
        return 1.0
    return float(min(max(d, 1e-6), 1.0))


def _extra_arrays(unit: UnitState | None, keep_out: np.ndarray, keep_in: np.ndarray | None) -> dict[str, np.ndarray]:
    if unit is None:
        return {}
    out: dict[str, np.ndarray] = {}
    if unit.pattern is not None:
        ids = unit.pattern.assignment.cpu().numpy()[keep_out]
        if keep_in is not None:
            ids = ids[:, keep_in]
        out["patterns"] = unit.pattern.library.cpu().numpy().astype(np.uint8)
        out["pattern_ids"] = ids.astype(np.int16)
    if unit.gs is not None:
        from .pruning import gs_compact

        m = _get_weight(unit)
        if m is not None:
            for k, v in gs_compact(m, unit.gs).items():
                out[f"gs_{k}"] = v
    if unit.smartexchange is not None:
        out["se_ce"] = unit.smartexchange.ce.cpu().numpy().astype(np.float32)
        out["se_basis"] = unit.smartexchange.basis.cpu().numpy().astype(np.float32)
    return out


_WEIGHTS: dict[str, "torch.Tensor"] = {}


def _get_weight(unit: UnitState) -> "torch.Tensor | None":
    return _WEIGHTS.get(unit.name)


def _linear(ctx: _Ctx, name: str, m: "nn.Linear", in_shape: tuple[int, ...], in_alive: np.ndarray | None,
            act_density: float | None) -> np.ndarray | None:
    unit = ctx.unit(name)
    batch = in_shape[0] if len(in_shape) >= 2 else 1
    tokens = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
    mask_t = unit.masks.get("weight") if unit is not None else None
    kind = unit.prune.kind if unit is not None and unit.prune is not None else None
    O, I = m.out_features, m.in_features
    keep_out = np.ones(O, dtype=bool)
    keep_in = np.ones(I, dtype=bool)
    if kind == "filter" and mask_t is not None:
        keep_out &= mask_t.any(dim=1).cpu().numpy()
    if in_alive is not None and len(in_alive) == I:
        keep_in &= in_alive
    if kind == "channel" and mask_t is not None:
        keep_in &= mask_t.any(dim=0).cpu().numpy()
    keep_out[0] |= not keep_out.any()
    keep_in[0] |= not keep_in.any()
    out_f, in_f = int(keep_out.sum()), int(keep_in.sum())
    original: dict[str, int] = {}
    if out_f != O:
        original["out_features"] = O
    if in_f != I:
        original["in_features"] = I
    mask = mask_t.cpu().numpy().astype(bool)[keep_out][:, keep_in] if mask_t is not None else None
    fact, f_orig, factor_of = _factorization(unit)
    if f_orig:
        original = {**f_orig, **original}
    comp = Compression(sparsity=_sparsity(unit, name, mask, ctx, out_f * in_f / (O * I), _extra_arrays(unit, keep_out, keep_in)),
                       quant=_quant(unit), factorization=fact, original=original or None, factor_of=factor_of,
                       act_density=_act(act_density))
    ctx.add(Linear(name=ctx.unique(name), batch=batch, in_features=in_f, out_features=out_f, tokens=tokens,
                   compression=comp))
    return None if keep_out.all() else keep_out


def _rnn(ctx: _Ctx, name: str, m: "nn.Module", in_shape: tuple[int, ...], act_density: float | None) -> None:
    unit = ctx.unit(name)
    op = "lstm" if isinstance(m, nn.LSTM) else "gru"
    if getattr(m, "proj_size", 0):
        ctx.notes.append(f"{name}: LSTM proj_size is not modelled (exported without the projection)")
    if len(in_shape) == 3:
        batch, seq = (in_shape[0], in_shape[1]) if m.batch_first else (in_shape[1], in_shape[0])
    else:
        batch, seq = 1, in_shape[0]
    dirs = 2 if m.bidirectional else 1
    for k in range(m.num_layers):
        for d in range(dirs):
            sfx = "_reverse" if d else ""
            lname = name if (m.num_layers == 1 and dirs == 1) else f"{name}.l{k}{sfx}"
            in_size = m.input_size if k == 0 else m.hidden_size * dirs
            mask = None
            if unit is not None and unit.masks:
                ih, hh = unit.masks.get(f"weight_ih_l{k}{sfx}"), unit.masks.get(f"weight_hh_l{k}{sfx}")
                if ih is not None and hh is not None:
                    mask = torch.cat([ih, hh], dim=1).cpu().numpy().astype(bool)
            comp = Compression(sparsity=_sparsity(unit, lname, mask, ctx, 1.0, {}), quant=_quant(unit),
                               act_density=_act(act_density))
            ctx.add(Recurrent(name=ctx.unique(lname), op=op, batch=batch, input_size=in_size,
                              hidden_size=m.hidden_size, seq_len=seq, compression=comp))


def _pool(ctx: _Ctx, name: str, kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
          params: dict[str, Any], in_alive: np.ndarray | None) -> None:
    if len(in_shape) != 4:
        ctx.notes.append(f"{name}: {kind} pooling of a {len(in_shape)}-D tensor is not modelled")
        return
    n, c, h, w = in_shape
    ch, comp = _shrunk(c, in_alive, "channels")
    mode = "avg" if "avg" in kind else "max"
    if kind.startswith("adaptive"):
        oh, ow = out_shape[2], out_shape[3]
        if (oh, ow) == (h, w):
            return
        if (oh, ow) == (1, 1):
            ctx.add(Pool(name=ctx.unique(name), batch=n, channels=ch, in_h=h, in_w=w, mode=mode, global_pool=True,
                         compression=comp))
            return
        kh, kw = math.ceil(h / oh), math.ceil(w / ow)
        sh, sw = h // oh, w // ow
        if h % oh or w % ow:
            ctx.notes.append(f"{name}: adaptive pool {h}x{w}->{oh}x{ow} has unequal windows; modelled as "
                             f"kernel {kh}x{kw}, stride {sh}x{sw}")
        ctx.add(Pool(name=ctx.unique(name), batch=n, channels=ch, in_h=h, in_w=w, kernel_h=kh, kernel_w=kw,
                     stride_h=sh, stride_w=sw, mode=mode, compression=comp))
        return
    kh, kw = _pair(params["kernel_size"])
    stride = params.get("stride") or params["kernel_size"]
    sh, sw = _pair(stride)
    ph, pw = _pair(params.get("padding", 0))
    rounding = "ceil" if params.get("ceil_mode") else "floor"
    ctx.add(Pool(name=ctx.unique(name), batch=n, channels=ch, in_h=h, in_w=w, kernel_h=kh, kernel_w=kw, stride_h=sh,
                 stride_w=sw, pad_h=ph, pad_w=pw, mode=mode, out_rounding=rounding, compression=comp))


def _shrunk(size: int, alive: np.ndarray | None, field_name: str, per: int = 1) -> tuple[int, Compression]:
    if alive is None or len(alive) * per != size * per or alive.all():
        return size, Compression()
    kept = int(alive.sum())
    return kept, Compression(original={field_name: size})


def _elementwise(ctx: _Ctx, name: str, shape: tuple[int, ...], num_inputs: int, ops: int,
                 alive: np.ndarray | None = None) -> None:
    batch = shape[0] if len(shape) >= 2 else 1
    elements = int(np.prod(shape)) // batch
    comp = Compression()
    if alive is not None and len(shape) >= 2 and len(alive) == shape[1 if len(shape) == 4 else -1] and not alive.all():
        per = elements // len(alive)
        comp = Compression(original={"elements": elements})
        elements = int(alive.sum()) * per
    ctx.add(Elementwise(name=ctx.unique(name), batch=batch, elements=max(elements, 1), num_inputs=num_inputs,
                        ops_per_element=ops, compression=comp))


def _matmul(ctx: _Ctx, name: str, a: tuple[int, ...], b: tuple[int, ...], b_weight: bool) -> None:
    if len(a) < 2 or len(b) < 2:
        ctx.notes.append(f"{name}: matmul of a vector is not modelled")
        return
    m_, k_ = a[-2], a[-1]
    n_ = b[-1]
    lead = a[:-2] if len(a) >= len(b) else b[:-2]
    batch = lead[0] if lead else 1
    heads = int(np.prod(lead[1:])) if len(lead) > 1 else 1
    if b_weight:
        # weight B shared over the batch: rows of all batches form one GEMM
        ctx.add(Matmul(name=ctx.unique(name), batch=1, m=m_ * int(np.prod(lead) if lead else 1), k=k_, n=n_,
                       heads=1, b_operand="weight"))
        return
    ctx.add(Matmul(name=ctx.unique(name), batch=batch, m=m_, k=k_, n=n_, heads=heads, b_operand="activation"))


# --- graph walk -----------------------------------------------------------------------------------

def _in_shape(node: Any) -> Any:
    return node.meta.get("out_shape") if isinstance(node, fx.Node) else None


def _walk_fx(gm: Any, ctx: _Ctx, density: bool) -> None:
    modules = dict(gm.named_modules())
    alive: dict[Any, np.ndarray | None] = {}

    def a(node: Any) -> np.ndarray | None:
        return alive.get(node) if isinstance(node, fx.Node) else None

    for node in gm.graph.nodes:
        out = node.meta.get("out_shape")
        args = node.args
        first = args[0] if args else None
        res: np.ndarray | None = None
        act = first.meta.get("nz") if density and isinstance(first, fx.Node) else None
        scope = node.meta.get("scope", "")
        if node.op == "call_module":
            m = modules[node.target]
            name = node.target
            ins = _in_shape(first)
            if isinstance(m, nn.Conv2d):
                res = _conv(ctx, name, m, ins, a(first), act)
            elif isinstance(m, nn.Linear):
                res = _linear(ctx, name, m, ins, a(first), act)
            elif isinstance(m, (nn.LSTM, nn.GRU)):
                _rnn(ctx, name, m, ins, act)
            elif isinstance(m, Add):
                res = _or(a(args[0]), a(args[1]))
                _elementwise(ctx, name, out, 2, 1, res)
            elif isinstance(m, MatMul):
                _matmul(ctx, name, _in_shape(args[0]), _in_shape(args[1]), False)
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
                _pool(ctx, name, kind, ins, out, {"kernel_size": m.kernel_size, "stride": m.stride,
                                                  "padding": m.padding, "ceil_mode": m.ceil_mode}, a(first))
                res = a(first)
            elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                kind = "adaptive_avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "adaptive_max"
                _pool(ctx, name, kind, ins, out, {}, a(first))
                res = a(first)
            elif isinstance(m, nn.Softmax):
                _elementwise(ctx, name, out, 1, 5)
            elif isinstance(m, nn.LayerNorm):
                _elementwise(ctx, name, out, 1, 5)
            elif isinstance(m, nn.GELU):
                _elementwise(ctx, name, out, 1, 8, a(first))
                res = a(first)
            elif isinstance(m, _CHANNELWISE_MODULES):
                res = a(first)
            elif isinstance(m, nn.Flatten):
                res = _flatten_alive(a(first), ins, out)
            elif any(True for _ in m.parameters(recurse=False)):
                ctx.notes.append(f"{name} ({type(m).__name__}) is not modelled")
        elif node.op == "call_function" or node.op == "call_method":
            t = node.target
            is_m = node.op == "call_method"
            base = scope + "." if scope else ""
            if (t in _ADD_FUNCS or (is_m and t in ("add", "add_", "__add__"))) and _two_tensors(args):
                res = _or(a(args[0]), a(args[1]))
                _elementwise(ctx, base + "add", out, 2, 1, res)
            elif (t in _MATMUL_FUNCS or (is_m and t in ("matmul", "bmm", "__matmul__"))) and _two_tensors(args):
                _matmul(ctx, base + "matmul", _in_shape(args[0]), _in_shape(args[1]),
                        args[1].op == "get_attr")
            elif t in _SOFTMAX_FUNCS or (is_m and t == "softmax"):
                _elementwise(ctx, base + "softmax", out, 1, 5)
            elif t is F.layer_norm:
                _elementwise(ctx, base + "layer_norm", out, 1, 5)
            elif t is F.gelu or (is_m and t == "gelu"):
                _elementwise(ctx, base + "gelu", out, 1, 8, a(first))
                res = a(first)
            elif t in (F.max_pool2d, F.avg_pool2d):
                kw_ = dict(node.kwargs)
                names = ["kernel_size", "stride", "padding"]
                for i, v in enumerate(args[1:4]):
                    kw_.setdefault(names[i], v)
                _pool(ctx, base + ("max_pool" if t is F.max_pool2d else "avg_pool"), "max" if t is F.max_pool2d else "avg",
                      _in_shape(first), out, kw_, a(first))
                res = a(first)
            elif t is F.adaptive_avg_pool2d:
                _pool(ctx, base + "avgpool", "adaptive_avg", _in_shape(first), out, {}, a(first))
                res = a(first)
            elif t in _CHANNELWISE_FUNCS or (is_m and t in _CHANNELWISE_METHODS):
                res = a(first)
            elif t is torch.flatten or (is_m and t in ("flatten", "view", "reshape")):
                res = _flatten_alive(a(first), _in_shape(first), out)
            elif t is torch.cat:
                res = _cat_alive(node, alive)
        if res is not None:
            alive[node] = res


def _two_tensors(args: tuple[Any, ...]) -> bool:
    return len(args) >= 2 and all(isinstance(x, fx.Node) and isinstance(x.meta.get("out_shape"), tuple) for x in args[:2])


def _or(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
    if x is None or y is None or len(x) != len(y):
        return None
    r = x | y
    return None if r.all() else r


def _flatten_alive(al: np.ndarray | None, ins: Any, out: Any) -> np.ndarray | None:
    if al is None or not isinstance(ins, tuple) or not isinstance(out, tuple):
        return None
    if len(ins) == 4 and len(out) == 2 and out[1] == ins[1] * ins[2] * ins[3]:
        return np.repeat(al, ins[2] * ins[3])
    if len(ins) == 2 and tuple(out) == tuple(ins):
        return al
    return None


def _cat_alive(node: Any, alive: dict[Any, np.ndarray | None]) -> np.ndarray | None:
    tensors = node.args[0]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if dim != 1 or not all(isinstance(t, fx.Node) for t in tensors):
        return None
    parts = []
    for t in tensors:
        shp = t.meta.get("out_shape")
        if not isinstance(shp, tuple) or len(shp) < 2:
            return None
        al = alive.get(t)
        parts.append(al if al is not None else np.ones(shp[1], dtype=bool))
    r = np.concatenate(parts)
    return None if r.all() else r


def _walk_hooks(model: "nn.Module", x: Any, ctx: _Ctx, density: bool) -> None:
    """Fallback: forward hooks on leaf modules (no functional ops, no structural propagation)."""
    calls: list[tuple[str, Any, Any, Any, float | None]] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM, nn.GRU, Add, MatMul, nn.MaxPool2d, nn.AvgPool2d,
                          nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Softmax, nn.LayerNorm, nn.GELU)):
            def hook(mod: Any, inp: Any, out: Any, name: str = name) -> None:
                nz = float((inp[0] != 0).float().mean()) if density and torch.is_tensor(inp[0]) else None
                calls.append((name, mod, [_shape_of(i) for i in inp], _shape_of(out), nz))
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x) if not isinstance(x, (tuple, list)) else model(*x)
    finally:
        for h in handles:
            h.remove()
    for name, m, ins, out, nz in calls:
        if isinstance(m, nn.Conv2d):
            _conv(ctx, name, m, ins[0], None, nz)
        elif isinstance(m, nn.Linear):
            _linear(ctx, name, m, ins[0], None, nz)
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            _rnn(ctx, name, m, ins[0], nz)
        elif isinstance(m, Add):
            _elementwise(ctx, name, out, 2, 1)
        elif isinstance(m, MatMul):
            _matmul(ctx, name, ins[0], ins[1], False)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            _pool(ctx, name, "max" if isinstance(m, nn.MaxPool2d) else "avg", ins[0], out,
                  {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding, "ceil_mode": m.ceil_mode}, None)
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            _pool(ctx, name, "adaptive_avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "adaptive_max", ins[0], out, {}, None)
        elif isinstance(m, (nn.Softmax, nn.LayerNorm)):
            _elementwise(ctx, name, out, 1, 5)
        elif isinstance(m, nn.GELU):
            _elementwise(ctx, name, out, 1, 8)


# --- public -----------------------------------------------------------------------------------------

def export(model: "nn.Module | CompressedModel", example_input: Any, name: str | None = None, *,
           act_density: bool = False, trace: str = "auto") -> Workload:
    """Trace ``model`` on ``example_input`` and describe it as a :class:`Workload`.

    The result has its masks attached in memory (``wl.mask(layer)``); :func:`save_export` writes the
    YAML and the ``.npz``. ``act_density=True`` records the measured fraction of non-zero input
    activations of every compute layer (meaningful with real example data). ``trace``: ``auto``
    (fx, falling back to hooks), ``fx`` or ``hooks``.
    """
    cm = model if isinstance(model, CompressedModel) else None
    net = cm.model if cm is not None else model
    if not isinstance(net, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module or CompressedModel, got {type(model).__name__}",
                          source="export", field="model")
    ctx = _Ctx(cm)
    _WEIGHTS.clear()
    if cm is not None:
        for u in cm.units.values():
            if u.gs is not None:
                _WEIGHTS[u.name] = net.get_submodule(u.name).weight.detach()
    was_training = net.training
    net.eval()
    method = "hooks"
    try:
        gm = None
        if trace in ("auto", "fx"):
            try:
                tracer = _Tracer()
                graph = tracer.trace(net)
                gm = fx.GraphModule(tracer.root, graph)
            except Exception as exc:  # fx cannot trace data-dependent control flow etc.
                if trace == "fx":
                    raise ConfigError(f"torch.fx cannot trace the model: {exc}", source="export", field="trace") from None
                ctx.notes.append(f"fx tracing failed ({type(exc).__name__}); exported with forward hooks")
        if gm is not None:
            args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
            with torch.no_grad():
                _Recorder(gm, act_density).run(*args)
            _walk_fx(gm, ctx, act_density)
            method = "torch.fx"
        else:
            _walk_hooks(net, example_input, ctx, act_density)
    finally:
        net.train(was_training)
        _WEIGHTS.clear()
    if not ctx.layers:
        raise ConfigError("the model has no layer accelsim can model (conv, linear, LSTM/GRU, matmul)",
                          source="export", field="model")
    notes = (cm.notes if cm is not None else []) + ctx.notes
    recipes = ", ".join(cm.recipes) if cm is not None and cm.recipes else "none (dense)"
    desc = f"exported from {type(net).__name__} by accelsim.frontend ({method}); recipes: {recipes}"
    if notes:
        desc += "; notes: " + " | ".join(notes)
    wl = Workload(name=name or type(net).__name__.lower(), layers=ctx.layers, description=desc,
                  source="accelsim.frontend.export")
    wl.attach_masks(ctx.masks)
    return wl


def export_masks(wl: Workload) -> dict[str, np.ndarray]:
    """The in-memory mask arrays of an exported workload."""
    return dict(wl._mask_cache or {})


def save_export(wl: Workload, path: str | Path) -> Path:
    """Write ``wl`` as YAML at ``path`` and its masks as ``<stem>_masks.npz`` next to it.

    Returns the path of the YAML. A workload without masks writes no ``.npz``.
    """
    p = Path(path)
    masks = export_masks(wl)
    out = wl
    if masks:
        npz = p.with_name(p.stem + "_masks.npz")
        atomic_write_bytes(npz, lambda tmp: np.savez_compressed(tmp, **masks))
        out = wl.with_layers(wl.layers, masks=npz.name)
    save_workload(out, p)
    return p


__all__ = ["export", "save_export", "export_masks"]
