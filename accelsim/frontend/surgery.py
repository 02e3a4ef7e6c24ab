"""Physically smaller models: turn filter / channel masks into a module with fewer parameters
and fewer MACs that computes exactly what the masked model computes.

:func:`pruned_module` works on the fx graph of the masked model and the channel analysis the
exporter uses (:func:`.graph.liveness`), so the export of the result equals the export of the
masked model layer for layer (names, shapes, MACs):

- a conv / linear keeps the filters and input channels the analysis keeps (weights, bias sliced);
  a depthwise conv keeps its alive channels; a grouped conv keeps the same number of filters and
  input channels in every group (``groups`` unchanged; each filter reads its group's kept
  inputs); batch norms keep their alive channels;
- a tensor's *physical* channels are its alive channels; where a consumer needs another set (a
  residual add takes the union of its inputs, a conv reads only its kept input channels, any op
  the analysis does not understand reads all channels) a :class:`ChannelRemap` gathers the
  channels it needs and fills the others with zeros (no MACs: an index copy);
- ``view`` / ``reshape`` of a pruned ``N x C x H x W`` tensor become ``flatten(x, 1)``;
- a head-pruned ``nn.MultiheadAttention`` becomes a :class:`.heads.PrunedMultiheadAttention`
  with only its kept heads (Q/K/V rows and ``out_proj`` columns removed).

Removed channels are exactly zero in the masked model (:meth:`.CompressedModel.sync_channel_masks`
zeroes their biases and batch norms), so the outputs agree up to float rounding (the only
difference is summation order). Activation fake-quantisation with an asymmetric range sees fewer
zeros in a pruned tensor and may pick a different range.

Why not Torch-Pruning (MIT, 1.6.1 runs on torch 2.13): its dependency graph prunes *coupled
groups* (a conv feeding a residual add is pruned together with every layer on the same residual
stream), which cannot express per-layer filter choices whose union stays alive at the add, and
it would be a second channel analysis that can disagree with the exporter's. See docs/frontend.md.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ._deps import require_torch
from .graph import liveness, op_kind, out_shape, record_shapes, trace
from .heads import PrunedMultiheadAttention, kept_heads, prune_heads

torch = require_torch()
nn = torch.nn
fx = torch.fx
parametrize = torch.nn.utils.parametrize

_PASS_THROUGH = ("pool", "adaptive_pool", "gelu", "channelwise", "flatten", "reshape", "cat")


class ChannelRemap(nn.Module):
    """Move a tensor from one set of channels to another (gather kept ones, zero-fill missing).

    ``src`` / ``dst``: boolean keep vectors over the ``full`` original channels (None = all).
    ``axis``: ``"channel"`` (dim 1 of 2-D / 4-D tensors, else the last) or an int.
    """

    def __init__(self, src: np.ndarray | None, dst: np.ndarray | None, full: int, axis: "str | int" = "channel"):
        super().__init__()
        s_idx = np.arange(full) if src is None else np.flatnonzero(src)
        d_idx = np.arange(full) if dst is None else np.flatnonzero(dst)
        common = np.intersect1d(s_idx, d_idx)
        self.register_buffer("src_pos", torch.as_tensor(np.searchsorted(s_idx, common), dtype=torch.long))
        self.register_buffer("dst_pos", torch.as_tensor(np.searchsorted(d_idx, common), dtype=torch.long))
        self.out_len = int(len(d_idx))
        self.subset = bool(len(common) == len(d_idx))
        self.axis = axis

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        axis = (1 if x.dim() in (2, 4) else x.dim() - 1) if self.axis == "channel" else int(self.axis)
        picked = x.index_select(axis, self.src_pos)
        if self.subset:
            return picked
        shape = list(x.shape)
        shape[axis] = self.out_len
        return x.new_zeros(shape).index_copy(axis, self.dst_pos, picked)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return (a is None or bool(a.all())) and (b is None or bool(b.all()))
    return len(a) == len(b) and bool(np.array_equal(a, b))


def _bake(net: "nn.Module") -> None:
    """Replace every parametrisation of a *deep copy* by a plain parameter holding its value.

    (``remove_parametrizations`` would delete the property from the dynamically created
    ``Parametrized<X>`` class, which a deep copy shares with the original model.)"""
    for m in list(net.modules()):
        if parametrize.is_parametrized(m):
            with torch.no_grad():
                vals = {name: getattr(m, name).detach().clone() for name in m.parametrizations.keys()}
            m.__class__ = m.__class__.__bases__[0]
            del m._modules["parametrizations"]
            for name, v in vals.items():
                m.register_parameter(name, nn.Parameter(v))


def _set(root: "nn.Module", name: str, module: "nn.Module") -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def _idx(keep: np.ndarray, device: Any) -> "torch.Tensor":
    return torch.as_tensor(np.flatnonzero(keep), dtype=torch.long, device=device)


def _new_conv(m: "nn.Conv2d", keep: Any) -> "nn.Conv2d":
    w = m.weight.detach()
    out_i = _idx(keep.keep_out, w.device)
    if keep.depthwise:
        w2, groups = w.index_select(0, out_i), len(out_i)
        cin = groups
    elif m.groups == 1:
        w2, groups = w.index_select(0, out_i).index_select(1, _idx(keep.keep_in, w.device)), 1
        cin = w2.shape[1]
    else:  # grouped: equal kept filters and input channels per group (graph.Keep.in_index)
        w2 = w.index_select(0, out_i)
        G = m.groups
        idx = torch.as_tensor(keep.in_index, dtype=torch.long, device=w.device)
        rows = idx.repeat_interleave(w2.shape[0] // G, dim=0)  # kept-filter row -> its group's inputs
        w2 = torch.gather(w2, 1, rows[:, :, None, None].expand(-1, -1, *w2.shape[2:]))
        groups, cin = G, idx.shape[1] * G
    new = nn.Conv2d(cin, w2.shape[0], m.kernel_size, m.stride, m.padding, m.dilation, groups, m.bias is not None,
                    m.padding_mode, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w2)
        if m.bias is not None:
            new.bias.copy_(m.bias.detach()[out_i])
    new._forward_pre_hooks.update(m._forward_pre_hooks)
    return new


def _new_linear(m: "nn.Linear", keep: Any) -> "nn.Linear":
    w = m.weight.detach()
    out_i, in_i = _idx(keep.keep_out, w.device), _idx(keep.keep_in, w.device)
    w2 = w.index_select(0, out_i).index_select(1, in_i)
    new = nn.Linear(w2.shape[1], w2.shape[0], m.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w2)
        if m.bias is not None:
            new.bias.copy_(m.bias.detach()[out_i])
    new._forward_pre_hooks.update(m._forward_pre_hooks)
    return new


def _new_bn(m: "nn.Module", alive: np.ndarray) -> "nn.Module":
    cls = nn.BatchNorm2d if isinstance(m, nn.BatchNorm2d) else nn.BatchNorm1d
    ref = m.weight if m.affine else m.running_mean
    i = _idx(alive, ref.device if ref is not None else "cpu")
    new = cls(len(i), m.eps, m.momentum, m.affine, m.track_running_stats)
    if ref is not None:
        new = new.to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        if m.affine:
            new.weight.copy_(m.weight.detach()[i])
            new.bias.copy_(m.bias.detach()[i])
        if m.track_running_stats:
            new.running_mean.copy_(m.running_mean[i])
            new.running_var.copy_(m.running_var[i])
            new.num_batches_tracked.copy_(m.num_batches_tracked)
    return new


def pruned_module(cm: Any, example_input: Any) -> "fx.GraphModule":
    """A new ``nn.Module`` (an fx ``GraphModule``) with the channels that filter / channel pruning
    removed from ``cm`` (a :class:`~.compressor.CompressedModel`) physically gone. ``cm.model`` is
    not modified (beyond :meth:`~.compressor.CompressedModel.sync_channel_masks`)."""
    if cm.needs_channel_sync:
        cm.sync_channel_masks(example_input)
    net = copy.deepcopy(cm.model)
    training = net.training
    _bake(net)
    net.eval()
    gm = trace(net)
    record_shapes(gm, example_input)
    lv = liveness(gm, cm.units.get)
    modules = dict(gm.named_modules())
    physical: dict[Any, np.ndarray | None] = {}
    cache: dict[tuple[Any, bytes, str], Any] = {}
    count = [0]

    def phys(n: Any) -> np.ndarray | None:
        return physical.get(n) if isinstance(n, fx.Node) else None

    def remap(src_node: Any, dst: np.ndarray | None, before: Any, full: int | None = None,
              axis: "str | int" = "channel") -> Any:
        src = phys(src_node) if axis == "channel" else None
        if axis == "channel" and _same(src, dst):
            return src_node
        n_full = full if full is not None else len(src if src is not None else dst)
        key = (src_node, b"" if dst is None else np.packbits(dst).tobytes() + bytes(str(len(dst)), "ascii"), str(axis))
        if key in cache:
            return cache[key]
        name = f"accelsim_remap_{count[0]}"
        count[0] += 1
        gm.add_submodule(name, ChannelRemap(src, dst, n_full, axis).to(_device(gm)))
        with gm.graph.inserting_before(before):
            new = gm.graph.call_module(name, (src_node,))
        new.meta["scope"] = src_node.meta.get("scope", "")
        physical[new] = None if dst is None or dst.all() else dst
        if axis != "channel":
            physical[new] = None
        cache[key] = new
        return new

    def to_full(node: Any) -> None:
        def f(a: Any) -> Any:
            return remap(a, None, node) if phys(a) is not None else a
        node.args = fx.node.map_arg(node.args, f)
        node.kwargs = fx.node.map_arg(node.kwargs, f)

    for node in list(gm.graph.nodes):
        kind = op_kind(node, modules)
        first = node.args[0] if node.args else None
        if kind == "conv":
            m, keep = modules[node.target], lv.keeps[node]
            need = keep.keep_out if keep.depthwise else keep.keep_in if m.groups == 1 else keep.need_in(m.in_channels)
            node.args = (remap(first, need, node, full=m.in_channels),) + tuple(node.args[1:])
            _set(gm, node.target, _new_conv(m, keep))
        elif kind == "linear":
            m, keep = modules[node.target], lv.keeps[node]
            x = first
            src = phys(first)
            if src is not None and (len(src) != m.in_features or len(out_shape(first) or ()) == 4):
                x = remap(first, None, node)  # alive over another axis: restore all channels first
                src = None
            if src is None:
                if not keep.keep_in.all():
                    x = remap(x, keep.keep_in, node, full=m.in_features, axis=-1)
            else:
                x = remap(x, keep.keep_in, node, full=m.in_features)
            node.args = (x,) + tuple(node.args[1:])
            _set(gm, node.target, _new_linear(m, keep))
        elif kind == "add":
            target = lv.of(node)
            node.args = tuple(remap(a, target, node) if isinstance(a, fx.Node) else a for a in node.args[:2]) \
                + tuple(node.args[2:])
        elif kind in _PASS_THROUGH:
            if lv.of(node) is None:
                to_full(node)
            elif kind == "channelwise" and node.op == "call_module" and \
                    isinstance(modules[node.target], (nn.BatchNorm1d, nn.BatchNorm2d)):
                _set(gm, node.target, _new_bn(modules[node.target], lv.of(node)))
            elif kind == "reshape":
                node.op, node.target = "call_function", torch.flatten
                node.args, node.kwargs = (first, 1), {}
        elif kind == "mha":
            to_full(node)
            keep_h = kept_heads(cm.units.get(node.target), modules[node.target])
            if keep_h is not None:  # head pruning: a smaller attention module (heads.PrunedMultiheadAttention)
                _set(gm, node.target, prune_heads(modules[node.target], keep_h))
        elif node.op != "placeholder" and node.op != "get_attr":
            to_full(node)
        if node in lv.alive and node.op != "output":
            physical[node] = lv.alive[node]
    done = {n.target for n in gm.graph.nodes if n.op == "call_module" and isinstance(gm.get_submodule(n.target),
                                                                                    PrunedMultiheadAttention)}
    for name, u in cm.units.items():
        if u.prune is not None and u.prune.kind == "head" and name not in done:
            note = (f"pruned_module: {name} is inside a module fx keeps opaque (e.g. nn.TransformerEncoderLayer); "
                    f"its heads stay masked, not removed")
            if note not in cm.notes:
                cm.notes.append(note)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm.train(training)


def _device(gm: Any) -> Any:
    for p in gm.parameters():
        return p.device
    return torch.device("cpu")


__all__ = ["pruned_module", "ChannelRemap"]
