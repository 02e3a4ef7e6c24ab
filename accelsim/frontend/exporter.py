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
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._validation import atomic_write_bytes
from ..errors import ConfigError
from ..workload import Compression, Factorization, Quant, Sparsity, Workload, save_workload
from ..workload.layer import Conv2d, Elementwise, Embedding, LayerBase, Linear, Matmul, Pool, Recurrent
from ._deps import require_torch
from .graph import Keep, Recorder, conv_keep, linear_keep, liveness, op_kind, out_shape, shape_of
from .graph import trace as trace_graph
from .state import UnitState, is_compressed

torch = require_torch()
nn = torch.nn
F = torch.nn.functional
fx = torch.fx

# modules with parameters that are folded / fused into their neighbours (not layers of their own)
_FOLDED_WITH_PARAMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU)
_FORMAT = {"unstructured": "bitmask", "block": "bitmask", "nm": "nm_index", "pattern": "pattern_index",
           "gs": "gs_index", "filter": "dense", "channel": "dense"}


@dataclass
class _Ctx:
    cm: Any  # CompressedModel | None
    layers: list[LayerBase] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    # (module scope, MACs the torch code performs) of every compute layer, for the FLOP cross-check
    run_macs: list[tuple[str, int]] = field(default_factory=list)
    unmodelled: list[str] = field(default_factory=list)  # modules with parameters left out

    def ran(self, scope: str, macs: int) -> None:
        self.run_macs.append((scope, int(macs)))

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


# --- per-module layer builders ----------------------------------------------------------------

def _restore(layer: LayerBase, structural: dict[str, int]) -> LayerBase:
    """``layer`` with the shapes structural pruning removed put back (what the torch module runs)."""
    if not structural:
        return layer
    return type(layer).model_validate({**layer.model_dump(), **structural, "compression": Compression()})


def _padding(m: Any, name: str) -> tuple[int, int]:
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return 0, 0
        ext = [d * (k - 1) for d, k in zip(_pair(m.dilation), _pair(m.kernel_size))]
        if m.padding == "same" and all(e % 2 == 0 for e in ext):
            return ext[0] // 2, ext[1] // 2
        raise ConfigError(f"padding={m.padding!r} with an even kernel extent is not supported; use integer padding",
                          source="export", field=name)
    return _pair(m.padding)


def _conv(ctx: _Ctx, name: str, m: "nn.Conv2d", in_shape: tuple[int, ...], keep: Keep,
          act_density: float | None) -> None:
    unit = ctx.unit(name)
    n, c, h, w = in_shape
    O, G = m.out_channels, m.groups
    cin_g = m.in_channels // G
    mask_t = unit.masks.get("weight") if unit is not None else None
    keep_out, keep_in, depthwise = keep.keep_out, keep.keep_in, keep.depthwise
    out_c = int(keep_out.sum())
    in_c = out_c if depthwise else keep.in_kept * G
    groups = out_c if depthwise else G
    original: dict[str, int] = {}
    if out_c != O:
        original["out_channels"] = O
    if in_c != m.in_channels:
        original["in_channels"] = m.in_channels
    if groups != G:
        original["groups"] = G
    structural = dict(original)
    mask = None
    if mask_t is not None:
        mk = mask_t.cpu().numpy().astype(bool)[keep_out]
        mask = mk if depthwise else keep.gather_in(mk)
    kept_fraction = (out_c * (in_c // groups)) / (O * cin_g)
    extra = _extra_arrays(unit, keep_out, None if depthwise else keep)
    fact, f_orig, factor_of = _factorization(unit)
    if f_orig:
        original = {**f_orig, **original}
    comp = Compression(sparsity=_sparsity(unit, name, mask, ctx, kept_fraction, extra), quant=_quant(unit),
                       factorization=fact, original=original or None, factor_of=factor_of,
                       act_density=_act(act_density))
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride)
    ph, pw = _padding(m, name)
    dh, dw = _pair(m.dilation)
    layer = Conv2d(name=ctx.unique(name), batch=n, in_channels=in_c, out_channels=out_c, in_h=h, in_w=w,
                   kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, dilation_h=dh,
                   dilation_w=dw, groups=groups, compression=comp)
    ctx.add(layer)
    ctx.ran(name, _restore(layer, structural).macs)


def _conv_transpose(ctx: _Ctx, name: str, m: "nn.ConvTranspose2d", in_shape: tuple[int, ...],
                    out: tuple[int, ...]) -> None:
    """A transposed conv as it runs on a GEMM engine: one GEMM per input pixel and group
    (``in/groups -> out/groups * kh * kw``, a 1x1 conv over the input map) followed by the col2im
    overlap-add, a vector op over the output map (``num_inputs`` = kernel area / stride area, rounded
    up: the partial sums added into each output element on average)."""
    n, c, h, w = in_shape
    kh, kw = _pair(m.kernel_size)
    sh, sw = _pair(m.stride)
    layer = Conv2d(name=ctx.unique(name), batch=n, in_channels=m.in_channels, out_channels=m.out_channels * kh * kw,
                   in_h=h, in_w=w, kernel_h=1, kernel_w=1, groups=m.groups)
    ctx.add(layer)
    ctx.ran(name, layer.macs)
    overlap = max(1, math.ceil(kh * kw / (sh * sw)))
    ctx.add(Elementwise(name=ctx.unique(name + ".col2im"), batch=n, elements=int(np.prod(out[1:])),
                        num_inputs=overlap, ops_per_element=overlap))


def _act(d: float | None) -> float:
    if d is None:
        return 1.0
    return float(min(max(d, 1e-6), 1.0))


def _extra_arrays(unit: UnitState | None, keep_out: np.ndarray, keep_in: "np.ndarray | Keep | None") -> dict[str, np.ndarray]:
    if unit is None:
        return {}
    out: dict[str, np.ndarray] = {}
    if unit.pattern is not None:
        ids = unit.pattern.assignment.cpu().numpy()[keep_out]
        if isinstance(keep_in, Keep):
            ids = keep_in.gather_in(ids)
        elif keep_in is not None:
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


def _linear(ctx: _Ctx, name: str, m: "nn.Linear", in_shape: tuple[int, ...], keep: Keep,
            act_density: float | None, scope: str | None = None) -> None:
    unit = ctx.unit(name)
    batch = in_shape[0] if len(in_shape) >= 2 else 1
    tokens = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
    mask_t = unit.masks.get("weight") if unit is not None else None
    O, I = m.out_features, m.in_features
    keep_out, keep_in = keep.keep_out, keep.keep_in
    out_f, in_f = int(keep_out.sum()), int(keep_in.sum())
    original: dict[str, int] = {}
    if out_f != O:
        original["out_features"] = O
    if in_f != I:
        original["in_features"] = I
    structural = dict(original)
    mask = mask_t.cpu().numpy().astype(bool)[keep_out][:, keep_in] if mask_t is not None else None
    fact, f_orig, factor_of = _factorization(unit)
    if f_orig:
        original = {**f_orig, **original}
    comp = Compression(sparsity=_sparsity(unit, name, mask, ctx, out_f * in_f / (O * I), _extra_arrays(unit, keep_out, keep_in)),
                       quant=_quant(unit), factorization=fact, original=original or None, factor_of=factor_of,
                       act_density=_act(act_density))
    layer = Linear(name=ctx.unique(name), batch=batch, in_features=in_f, out_features=out_f, tokens=tokens,
                   compression=comp)
    ctx.add(layer)
    ctx.ran(scope if scope is not None else name, _restore(layer, structural).macs)


def _attention(ctx: _Ctx, base: str, scope: str, batch: int, heads: int, L: int, S: int, d_qk: int, d_v: int,
               keep_heads: np.ndarray | None = None) -> None:
    """Scores ``Q K^T`` (per head ``L x d_qk x S``), softmax over the scores, context ``P V``;
    with ``keep_heads`` (head pruning) over the kept heads only (``original`` keeps ``heads``)."""
    kept = heads if keep_heads is None else int(keep_heads.sum())
    comp = Compression(original={"heads": heads}) if kept != heads else Compression()
    scores = Matmul(name=ctx.unique(base + "scores"), batch=batch, heads=kept, m=L, k=d_qk, n=S, compression=comp)
    ctx.add(scores)
    ctx.ran(scope, scores.macs * heads // kept)
    _elementwise(ctx, base + "softmax", (batch, heads, L, S), 1, 5, alive=keep_heads)
    context = Matmul(name=ctx.unique(base + "context"), batch=batch, heads=kept, m=L, k=S, n=d_v, compression=comp)
    ctx.add(context)
    ctx.ran(scope, context.macs * heads // kept)


def _arg(node: Any, i: int, key: str) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(key)


def _mha(ctx: _Ctx, name: str, m: "nn.MultiheadAttention", node: Any, act_density: float | None) -> None:
    """``nn.MultiheadAttention``: Q/K/V projections (one packed ``in_proj`` for self-attention),
    per-head scores, softmax, context, ``out_proj`` (which carries the compression of
    ``<name>.out_proj``)."""
    q, k, v = _arg(node, 0, "query"), _arg(node, 1, "key"), _arg(node, 2, "value")
    qs, ks = out_shape(q), out_shape(k)
    if not isinstance(qs, tuple) or not isinstance(ks, tuple):
        ctx.notes.append(f"{name}: attention inputs of unknown shape are not modelled")
        return
    if len(qs) == 3:
        B, L = (qs[0], qs[1]) if m.batch_first else (qs[1], qs[0])
        S0 = ks[1] if m.batch_first else ks[0]
    else:
        B, L, S0 = 1, qs[0], ks[0]
    from .heads import kept_heads

    E, H, d = m.embed_dim, m.num_heads, m.head_dim
    keep_h = kept_heads(ctx.unit(name), m)  # head pruning of the masked model (None: all heads)
    inner = H * d  # == E, except for a heads.PrunedMultiheadAttention
    kept_inner = inner if keep_h is None else int(keep_h.sum()) * d
    comp = Compression(original={"out_features": inner}) if kept_inner != inner else Compression()
    parts = [("in_proj", L, E, 3)] if q is k and k is v else [("q_proj", L, E, 1), ("k_proj", S0, m.kdim, 1),
                                                               ("v_proj", S0, m.vdim, 1)]
    for part, tokens, fin, n in parts:
        if n == 3 and comp.original:
            comp = Compression(original={"out_features": 3 * inner})
        proj = Linear(name=ctx.unique(f"{name}.{part}"), batch=B, tokens=tokens, in_features=fin,
                      out_features=n * kept_inner, compression=comp)
        ctx.add(proj)
        ctx.ran(name, proj.macs * inner // kept_inner)
    S = S0 + (1 if m.bias_k is not None else 0) + (1 if m.add_zero_attn else 0)
    _attention(ctx, name + ".", name, B, H, L, S, d, d, keep_h)
    op = m.out_proj
    keep = linear_keep(op, ctx.unit(name + ".out_proj"), None)
    if keep_h is not None:
        keep.keep_in &= np.repeat(keep_h, d)
    _linear(ctx, name + ".out_proj", op, (B, L, E), keep, act_density, scope=name)


def _sdpa(ctx: _Ctx, base: str, scope: str, node: Any) -> None:
    qs, ks, vs = (out_shape(_arg(node, i, key)) for i, key in enumerate(("query", "key", "value")))
    if not all(isinstance(x, tuple) and len(x) >= 2 for x in (qs, ks, vs)):
        ctx.notes.append(f"{base}scaled_dot_product_attention: inputs of unknown shape are not modelled")
        return
    lead = qs[:-2]
    batch = lead[0] if lead else 1
    heads = int(np.prod(lead[1:])) if len(lead) > 1 else 1
    _attention(ctx, base, scope, batch, heads, qs[-2], ks[-2], qs[-1], vs[-1])


def _embedding(ctx: _Ctx, name: str, num: int, dim: int, idx_shape: Any) -> None:
    if not isinstance(idx_shape, tuple):
        ctx.notes.append(f"{name}: embedding lookup of unknown shape is not modelled")
        return
    batch = idx_shape[0] if len(idx_shape) >= 2 else 1
    tokens = max(int(np.prod(idx_shape)) // batch, 1)
    ctx.add(Embedding(name=ctx.unique(name), batch=batch, elements=tokens * dim, embedding_dim=dim,
                      num_embeddings=num))


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
            layer = Recurrent(name=ctx.unique(lname), op=op, batch=batch, input_size=in_size,
                              hidden_size=m.hidden_size, seq_len=seq, compression=comp)
            ctx.add(layer)
            ctx.ran(name, layer.macs)


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


def _elementwise(ctx: _Ctx, name: str, shape: Any, num_inputs: int, ops: int,
                 alive: np.ndarray | None = None) -> None:
    if not isinstance(shape, tuple) or not shape:
        ctx.notes.append(f"{name}: element-wise op of unknown shape is not modelled")
        return
    batch = shape[0] if len(shape) >= 2 else 1
    elements = int(np.prod(shape)) // batch
    comp = Compression()
    if alive is not None and len(shape) >= 2 and len(alive) == shape[1 if len(shape) in (2, 4) else -1] and not alive.all():
        per = elements // len(alive)
        comp = Compression(original={"elements": elements})
        elements = int(alive.sum()) * per
    ctx.add(Elementwise(name=ctx.unique(name), batch=batch, elements=max(elements, 1), num_inputs=num_inputs,
                        ops_per_element=ops, compression=comp))


def _matmul(ctx: _Ctx, name: str, scope: str, a: Any, b: Any, b_weight: bool) -> None:
    if not isinstance(a, tuple) or not isinstance(b, tuple) or len(a) < 2 or len(b) < 2:
        ctx.unmodelled.append(f"{name} (matrix x vector product)")
        return
    m_, k_ = a[-2], a[-1]
    n_ = b[-1]
    lead = a[:-2] if len(a) >= len(b) else b[:-2]
    batch = lead[0] if lead else 1
    heads = int(np.prod(lead[1:])) if len(lead) > 1 else 1
    if b_weight:
        # weight B shared over the batch: rows of all batches form one GEMM
        layer = Matmul(name=ctx.unique(name), batch=1, m=m_ * int(np.prod(lead) if lead else 1), k=k_, n=n_,
                       heads=1, b_operand="weight")
    else:
        layer = Matmul(name=ctx.unique(name), batch=batch, m=m_, k=k_, n=n_, heads=heads, b_operand="activation")
    ctx.add(layer)
    ctx.ran(scope, layer.macs)


# --- graph walk -----------------------------------------------------------------------------------

def _attach_act_stats(ctx: _Ctx, start: int, first: Any) -> None:
    """Give the conv/linear layers added since ``start`` the per-channel densities and activation
    masks recorded on their input node ``first`` (when its shape matches the exported layer)."""
    ch, mk = first.meta.get("nz_ch"), first.meta.get("nz_mask")
    if ch is None and mk is None:
        return
    for i in range(start, len(ctx.layers)):
        layer = ctx.layers[i]
        if isinstance(layer, Conv2d):
            width = layer.in_channels
        elif isinstance(layer, Linear):
            width = layer.in_features
        else:
            continue
        upd: dict[str, Any] = {}
        if ch is not None:
            if len(ch) == width:
                upd["act_channel_density"] = tuple(ch)
            else:
                ctx.notes.append(f"{layer.name}: per-channel activation densities not recorded (input has "
                                 f"{len(ch)} channels, the exported layer {width})")
        if mk is not None:
            ok = (mk.ndim == 4 and isinstance(layer, Conv2d) and mk.shape[1:] == (layer.in_channels, layer.in_h, layer.in_w)) \
                or (isinstance(layer, Linear) and mk.shape[-1] == layer.in_features)
            if ok:
                key = layer.name + ".act"
                ctx.masks[key] = mk.astype(bool)
                upd["act_mask"] = key
            else:
                ctx.notes.append(f"{layer.name}: activation mask not saved (input {tuple(mk.shape)} does not match "
                                 "the exported layer)")
        if upd:
            comp = layer.compression.model_copy(update=upd)
            ctx.layers[i] = layer.model_copy(update={"compression": type(comp).model_validate(comp.model_dump())})


def _walk_fx(gm: Any, ctx: _Ctx, density: bool) -> None:
    modules = dict(gm.named_modules())
    lv = liveness(gm, ctx.unit)
    for node in gm.graph.nodes:
        start = len(ctx.layers)
        _walk_fx_node(gm, ctx, density, modules, lv, node)
        first = node.args[0] if node.args else None
        if density and isinstance(first, fx.Node) and len(ctx.layers) > start:
            _attach_act_stats(ctx, start, first)


def _walk_fx_node(gm: Any, ctx: _Ctx, density: bool, modules: dict[str, Any], lv: Any, node: Any) -> None:
    kind = op_kind(node, modules)
    out = node.meta.get("out_shape")
    args = node.args
    first = args[0] if args else None
    act = first.meta.get("nz") if density and isinstance(first, fx.Node) else None
    ins = out_shape(first)
    if node.op == "call_module":
        name, scope = node.target, node.target
        m = modules[name]
    else:
        scope = node.meta.get("scope", "")
        name, m = (scope + ".") if scope else "", None
    if kind == "conv":
        _conv(ctx, name, m, ins, lv.keeps[node], act)
    elif kind == "conv_transpose":
        _conv_transpose(ctx, name, m, ins, out)
    elif kind == "linear":
        _linear(ctx, name, m, ins, lv.keeps[node], act)
    elif kind == "rnn":
        _rnn(ctx, name, m, ins, act)
    elif kind == "mha":
        _mha(ctx, name, m, node, act)
    elif kind == "embedding":
        _embedding(ctx, name, m.num_embeddings, m.embedding_dim, ins)
    elif kind == "embedding_fn":
        w = out_shape(_arg(node, 1, "weight"))
        if isinstance(w, tuple) and len(w) == 2:
            _embedding(ctx, name + "embedding", w[0], w[1], ins)
    elif kind == "add":
        _elementwise(ctx, name if m is not None else name + "add", out, 2, 1, lv.of(node))
    elif kind == "mul":
        _elementwise(ctx, name + "mul", out, 2, 1)
    elif kind == "matmul":
        b = args[1]
        _matmul(ctx, name if m is not None else name + "matmul", scope, out_shape(args[0]), out_shape(b),
                m is None and b.op == "get_attr")
    elif kind == "sdpa":
        _sdpa(ctx, name, scope, node)
    elif kind in ("pool", "adaptive_pool"):
        _pool_node(ctx, node, name, m, kind, ins, out, lv.of(first))
    elif kind == "softmax":
        _elementwise(ctx, name if m is not None else name + "softmax", out, 1, 5)
    elif kind == "layer_norm":
        _elementwise(ctx, name if m is not None else name + "layer_norm", out, 1, 5)
    elif kind == "gelu":
        _elementwise(ctx, name if m is not None else name + "gelu", out, 1, 8, lv.of(first))
    elif kind == "module" and any(True for _ in m.parameters(recurse=False)) \
            and not isinstance(m, _FOLDED_WITH_PARAMS):
        ctx.unmodelled.append(f"{name} ({type(m).__name__})")


def _pool_node(ctx: _Ctx, node: Any, name: str, m: Any, kind: str, ins: Any, out: Any,
               alive: np.ndarray | None) -> None:
    if m is not None:
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            _pool(ctx, name, "max" if isinstance(m, nn.MaxPool2d) else "avg", ins, out,
                  {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding, "ceil_mode": m.ceil_mode},
                  alive)
        else:
            _pool(ctx, name, "adaptive_avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "adaptive_max", ins, out, {},
                  alive)
        return
    t = node.target
    if kind == "adaptive_pool":
        avg = t is F.adaptive_avg_pool2d
        _pool(ctx, name + ("avgpool" if avg else "maxpool"), "adaptive_avg" if avg else "adaptive_max", ins, out, {},
              alive)
        return
    kw_ = dict(node.kwargs)
    for i, v in enumerate(node.args[1:4]):
        kw_.setdefault(["kernel_size", "stride", "padding"][i], v)
    mx = t is F.max_pool2d
    _pool(ctx, name + ("max_pool" if mx else "avg_pool"), "max" if mx else "avg", ins, out, kw_, alive)


def _walk_hooks(model: "nn.Module", x: Any, ctx: _Ctx, density: bool) -> None:
    """Fallback: forward hooks on leaf modules (no functional ops, no structural propagation)."""
    calls: list[tuple[str, Any, Any, Any, float | None]] = []
    handles = []
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.LSTM, nn.GRU, nn.MultiheadAttention, nn.Embedding,
             nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Softmax, nn.LayerNorm,
             nn.GELU)
    from .models import Add, MatMul

    for name, m in model.named_modules():
        if isinstance(m, kinds + (Add, MatMul)):
            def hook(mod: Any, inp: Any, out: Any, name: str = name) -> None:
                nz = float((inp[0] != 0).float().mean()) if density and inp and torch.is_tensor(inp[0]) else None
                calls.append((name, mod, [shape_of(i) for i in inp], shape_of(out), nz))
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x) if not isinstance(x, (tuple, list)) else model(*x)
    finally:
        for h in handles:
            h.remove()
    for name, m, ins, out, nz in calls:
        if isinstance(m, nn.Conv2d):
            _conv(ctx, name, m, ins[0], conv_keep(m, ctx.unit(name), None), nz)
        elif isinstance(m, nn.ConvTranspose2d):
            _conv_transpose(ctx, name, m, ins[0], out)
        elif isinstance(m, nn.Linear):
            _linear(ctx, name, m, ins[0], linear_keep(m, ctx.unit(name), None), nz)
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            _rnn(ctx, name, m, ins[0], nz)
        elif isinstance(m, nn.Embedding):
            _embedding(ctx, name, m.num_embeddings, m.embedding_dim, ins[0])
        elif isinstance(m, Add):
            _elementwise(ctx, name, out, 2, 1)
        elif isinstance(m, MatMul):
            _matmul(ctx, name, name, ins[0], ins[1], False)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            _pool(ctx, name, "max" if isinstance(m, nn.MaxPool2d) else "avg", ins[0], out,
                  {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding, "ceil_mode": m.ceil_mode}, None)
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            _pool(ctx, name, "adaptive_avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "adaptive_max", ins[0], out, {}, None)
        elif isinstance(m, (nn.Softmax, nn.LayerNorm)):
            _elementwise(ctx, name, out, 1, 5)
        elif isinstance(m, nn.GELU):
            _elementwise(ctx, name, out, 1, 8)
        elif isinstance(m, nn.MultiheadAttention):
            ctx.notes.append(f"{name}: attention is not modelled by the forward-hook fallback")


# --- FLOP cross-check -------------------------------------------------------------------------------

@contextmanager
def _flop_counter(net: "nn.Module") -> Iterator[Any]:
    """``FlopCounterMode`` with the attention fast paths and oneDNN RNN kernels, which the counter
    cannot see into, switched off and the math SDPA kernel selected."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    has_rnn = any(isinstance(m, (nn.LSTM, nn.RNN)) for m in net.modules())
    fast = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings(), ExitStack() as stack:
        warnings.simplefilter("ignore")
        stack.enter_context(torch.no_grad())
        stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        if has_rnn:
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with FlopCounterMode(display=False) as fc:
                yield fc
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)


def _total_flops(fc: Any) -> int:
    return int(sum(fc.flop_counts["Global"].values()))


class _CountingRecorder(Recorder):
    """Records every node's output shape and the FLOPs torch's counter sees while the node runs,
    attributed to the node's module (its scope for functional ops)."""

    def __init__(self, gm: Any, density: bool, fc: Any):
        super().__init__(gm, density)
        self.fc = fc
        self.macs: dict[str, int] = {}

    def run_node(self, n: Any) -> Any:
        before = _total_flops(self.fc)
        out = super().run_node(n)
        delta = _total_flops(self.fc) - before
        if delta:
            scope = n.target if n.op == "call_module" else n.meta.get("scope", "")
            self.macs[scope] = self.macs.get(scope, 0) + delta // 2
        return out


def _record_and_count(gm: Any, net: "nn.Module", example_input: Any, density: bool, channels: bool = False,
                      masks: int = 0) -> dict[str, int]:
    """One forward pass: node shapes + counted MACs per exact scope."""
    args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    with _flop_counter(net) as fc:
        rec = _CountingRecorder(gm, density, fc)
        rec.channels, rec.masks = channels, masks
        rec.run(*args)
    return rec.macs


def count_macs(net: "nn.Module", example_input: Any) -> dict[str, int]:
    """MACs per module qualname (``""`` = the whole model, sub-modules included) counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on one forward pass."""
    args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    with _flop_counter(net) as fc:
        net(*args)
    out: dict[str, int] = {}
    for key, ops in fc.get_flop_counts().items():
        flops = int(sum(ops.values()))
        mod = "" if key == "Global" or "." not in key else key.partition(".")[2]
        out[mod] = max(out.get(mod, 0), flops // 2)
    return out


def _aggregate(pairs: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for scope, macs in pairs:
        parts = scope.split(".") if scope else []
        for i in range(len(parts) + 1):
            key = ".".join(parts[:i])
            out[key] = out.get(key, 0) + macs
    return out


def _check_macs(counted: dict[str, int], ctx: _Ctx, exact: bool) -> list[tuple[str, str]]:
    """(module, description) of every module whose exported MACs differ from the counted ones.
    ``counted`` is per exact scope (``exact``, from the fx pass) or per module including its
    sub-modules (FlopCounterMode's own module tracking, hooks fallback). A mismatch inside a block
    also shows at the block; only the innermost mismatching modules are named."""
    exported = _aggregate(ctx.run_macs)
    if exact:
        counted = _aggregate(list(counted.items()))
        keys = set(counted) | set(exported)
    else:
        keys = set(counted) | {scope for scope, _ in ctx.run_macs}  # modules that ran (not a ModuleList)
    bad = {k for k in keys if counted.get(k, 0) != exported.get(k, 0)}

    def inside(o: str, k: str) -> bool:
        return o != k and (not k or o.startswith(k + "."))

    deepest = sorted(k for k in bad if not any(inside(o, k) for o in bad))
    return [(k or "<model>", f"{k or '<model>'} (counted {counted.get(k, 0):,} MACs, exported {exported.get(k, 0):,})")
            for k in deepest]


# --- public -----------------------------------------------------------------------------------------

def export(model: Any, example_input: Any, name: str | None = None, *,
           act_density: bool = False, trace: str = "auto", strict: bool = True, act_channels: bool = False,
           act_masks: int = 0) -> Workload:
    """Trace ``model`` (an ``nn.Module`` or a :class:`~.compressor.CompressedModel`) on
    ``example_input`` and describe it as a :class:`Workload`.

    The result has its masks attached in memory (``wl.mask(layer)``); :func:`save_export` writes the
    YAML and the ``.npz``. ``act_density=True`` records the measured fraction of non-zero input
    activations of every compute layer (meaningful with real example data). ``trace``: ``auto``
    (fx, falling back to hooks), ``fx`` or ``hooks``. With ``act_density=True`` (fx tracing):
    ``act_channels=True`` also records each conv/linear layer's density per input channel
    (``compression.act_channel_density``), ``act_masks=k`` saves the 0/1 input-activation masks of
    the first ``k`` inputs of the batch (``compression.act_mask`` = ``<layer>.act`` in the masks).

    Every export is checked against ``torch.utils.flop_counter.FlopCounterMode``: the MACs the
    exported layers stand for (before structural pruning shrank them) must equal the counted MACs
    of every module, and every module with parameters must be modelled. A violation raises a
    :class:`ConfigError` naming the modules; ``strict=False`` turns it into a note that travels in
    ``Workload.notes`` (and so into simulation reports).
    """
    cm = model if is_compressed(model) else None
    net = cm.model if cm is not None else model
    if not isinstance(net, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module or CompressedModel, got {type(model).__name__}",
                          source="export", field="model")
    if cm is not None and getattr(cm, "needs_channel_sync", False):
        cm.sync_channel_masks(example_input)  # removed channels exactly zero (bias / batch norm)
    ctx = _Ctx(cm)
    _WEIGHTS.clear()
    if cm is not None:
        for u in cm.units.values():
            if u.gs is not None:
                _WEIGHTS[u.name] = net.get_submodule(u.name).weight.detach()
    was_training = net.training
    net.eval()
    method = "hooks"
    with ExitStack() as stack:
        # weights projected once for both passes; activation fake-quant does not change shapes or MACs
        stack.enter_context(torch.nn.utils.parametrize.cached())
        if cm is not None and not act_density and hasattr(cm, "without_act_quant"):
            stack.enter_context(cm.without_act_quant())
        try:
            gm = None
            if trace in ("auto", "fx"):
                try:
                    gm = trace_graph(net)
                except Exception as exc:  # fx cannot trace data-dependent control flow etc.
                    if trace == "fx":
                        raise ConfigError(f"torch.fx cannot trace the model: {exc}", source="export",
                                          field="trace") from None
                    ctx.notes.append(f"fx tracing failed ({type(exc).__name__}); exported with forward hooks")
            if gm is not None:
                counted = _record_and_count(gm, net, example_input, act_density, act_density and act_channels,
                                            int(act_masks) if act_density else 0)
                _walk_fx(gm, ctx, act_density)
                method = "torch.fx"
            else:
                _walk_hooks(net, example_input, ctx, act_density)
                counted = count_macs(net, example_input)
            problems = [(u.split(" ")[0], f"{u}: not modelled by the exporter") for u in ctx.unmodelled]
            problems += [(mod, f"MAC mismatch with torch.utils.flop_counter at {text}")
                         for mod, text in _check_macs(counted, ctx, exact=gm is not None)]
        finally:
            net.train(was_training)
            _WEIGHTS.clear()
    if problems:
        if strict:
            raise ConfigError("export is incomplete: " + "; ".join(t for _, t in problems) + " (export(..., "
                              "strict=False) exports anyway and records this as a note)", source="export",
                              field=problems[0][0])
        ctx.notes += ["not modelled exactly: " + t for _, t in problems]
    if not ctx.layers:
        raise ConfigError("the model has no layer accelsim can model (conv, linear, LSTM/GRU, matmul)",
                          source="export", field="model")
    notes = (list(cm.notes) if cm is not None else []) + ctx.notes
    recipes = ", ".join(cm.recipes) if cm is not None and cm.recipes else "none (dense)"
    desc = f"exported from {type(net).__name__} by accelsim.frontend ({method}); recipes: {recipes}"
    wl = Workload(name=name or type(net).__name__.lower(), layers=ctx.layers, description=desc,
                  source="accelsim.frontend.export", notes=notes)
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


__all__ = ["export", "save_export", "export_masks", "count_macs"]
