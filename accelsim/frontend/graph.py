"""The traced graph of a model and its channel liveness (shared by export, compression and surgery).

:func:`trace` runs ``torch.fx`` symbolic tracing with a tracer that keeps the modules accelsim
models (conv, linear, RNNs, attention, embeddings, ...) opaque and records each node's module
scope; :func:`record_shapes` runs one forward pass through an fx Interpreter and stores every
node's output shape (and optionally its fraction of non-zeros).

:func:`op_kind` classifies a node once, for everybody. :func:`liveness` computes, for every node,
which channels of its output are *alive* (``None`` = all), starting from filter / channel masks:

- a conv / linear keeps the filters its mask keeps (``keep_out``) and reads the alive input
  channels its channel mask keeps (``keep_in``); a depthwise conv keeps a channel only if its
  input channel is alive and its filter kept; a grouped (non-depthwise) conv keeps the same
  number of filters and of input channels in every group (so it stays one grouped conv with the
  same ``groups``): the largest per-group count, a group with fewer padded with its removed
  (all-zero) filters / dead (all-zero) input channels of lowest index (``in_index``: the kept
  group-local input channels of every group). Filter pruning of grouped convs keeps equal counts
  per group in the first place (:func:`.pruning.filter_mask`), so the padding only appears when
  the producer's alive channels are unbalanced;
- batch norm, ReLU-family / tanh / GELU / SiLU / hardswish activations, dropout, pooling keep the
  alive set (they map 0 to 0, batch norm once its removed channels are masked, which
  :class:`~.compressor.CompressedModel` does); sigmoid-like ops (0 -> 0.5) stop it;
- a residual add keeps a channel if any input keeps it; concatenation along channels joins the
  sets; flatten of ``N x C x H x W`` repeats each channel's flag ``H*W`` times;
- anything else sees all channels (the alive set stops).

The channel axis is dim 1 of 2-D and 4-D tensors and the last dim otherwise (linear layers on
``B x S x E`` token tensors).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._deps import require_torch
from .models import Add, MatMul

torch = require_torch()
nn = torch.nn
F = torch.nn.functional
fx = torch.fx

LEAF_MODULES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.LSTM, nn.GRU, nn.MultiheadAttention, nn.Embedding,
                nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, Add, MatMul)
# map 0 to 0 (channel-wise): a removed channel stays removed through them
_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Tanh, nn.Hardswish, nn.Dropout, nn.Identity,
                        nn.BatchNorm2d, nn.BatchNorm1d)
_CHANNELWISE_FUNCS = {F.relu, F.relu6, F.silu, F.leaky_relu, F.dropout, torch.relu, torch.tanh, F.hardswish,
                      torch.nn.functional.relu_}
_CHANNELWISE_METHODS = {"relu", "tanh", "contiguous", "clone", "relu_"}
_ADD_FUNCS = {operator.add, operator.iadd, torch.add}
_MUL_FUNCS = {operator.mul, operator.imul, torch.mul}
_MATMUL_FUNCS = {operator.matmul, torch.matmul, torch.bmm}
_SOFTMAX_FUNCS = {F.softmax, torch.softmax}
_POOL_FUNCS = {F.max_pool2d: "max", F.avg_pool2d: "avg"}
_ADAPTIVE_FUNCS = {F.adaptive_avg_pool2d: "adaptive_avg", F.adaptive_max_pool2d: "adaptive_max"}


class Tracer(fx.Tracer):
    """fx tracer that keeps accelsim's layer modules opaque and records each node's module scope."""

    def __init__(self) -> None:
        super().__init__()
        self._acc_scope = ""

    def is_leaf_module(self, m: "nn.Module", qualname: str) -> bool:
        if isinstance(m, LEAF_MODULES):
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


def trace(net: "nn.Module") -> Any:
    """An fx GraphModule of ``net`` whose nodes carry ``meta['scope']``.

    A GraphModule that already carries scopes (e.g. from :func:`~.surgery.pruned_module`) is used
    as it is, so its functional ops keep their names.
    """
    if isinstance(net, fx.GraphModule) and all("scope" in n.meta for n in net.graph.nodes):
        return net
    tracer = Tracer()
    graph = tracer.trace(net)
    return fx.GraphModule(tracer.root, graph)


def shape_of(x: Any) -> Any:
    if torch.is_tensor(x):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)):
        return [shape_of(v) for v in x]
    return None


class Recorder(fx.Interpreter):
    """Records each node's output shape; with ``density`` its fraction of non-zeros (``nz``),
    per channel (``nz_ch``: dim 1 of 4-d tensors, the last dim otherwise) when ``channels``, and
    the 0/1 masks of the first ``masks`` inputs of the batch (``nz_mask``)."""

    def __init__(self, gm: Any, density: bool, channels: bool = False, masks: int = 0):
        super().__init__(gm)
        self.density = density
        self.channels = channels
        self.masks = masks

    def run_node(self, n: Any) -> Any:
        out = super().run_node(n)
        n.meta["out_shape"] = shape_of(out)
        if self.density and torch.is_tensor(out) and out.is_floating_point():
            nz = out != 0
            n.meta["nz"] = float(nz.float().mean())
            if self.channels and nz.dim() >= 2:
                dims = tuple(d for d in range(nz.dim()) if d != (1 if nz.dim() == 4 else nz.dim() - 1))
                n.meta["nz_ch"] = tuple(float(v) for v in nz.float().mean(dim=dims).tolist())
            if self.masks and nz.dim() >= 2:
                n.meta["nz_mask"] = nz[: self.masks].cpu().numpy()
        return out


def record_shapes(gm: Any, example_input: Any, density: bool = False) -> None:
    """Run ``example_input`` through ``gm`` once (no grad) and store each node's output shape."""
    args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    with torch.no_grad():
        Recorder(gm, density).run(*args)


def out_shape(node: Any) -> Any:
    return node.meta.get("out_shape") if isinstance(node, fx.Node) else None


def two_tensors(args: tuple[Any, ...]) -> bool:
    return len(args) >= 2 and all(isinstance(x, fx.Node) and isinstance(x.meta.get("out_shape"), tuple)
                                  for x in args[:2])


def channel_axis(ndim: int) -> int:
    return 1 if ndim in (2, 4) else -1


def op_kind(node: Any, modules: dict[str, "nn.Module"]) -> str:
    """What a node is, for the exporter and the channel analysis (one classification for both)."""
    if node.op == "call_module":
        m = modules[node.target]
        for cls, kind in ((nn.Conv2d, "conv"), (nn.ConvTranspose2d, "conv_transpose"), (nn.Linear, "linear"),
                          (nn.LSTM, "rnn"), (nn.GRU, "rnn"), (nn.MultiheadAttention, "mha"),
                          (nn.Embedding, "embedding"), (Add, "add"), (MatMul, "matmul"),
                          (nn.MaxPool2d, "pool"), (nn.AvgPool2d, "pool"), (nn.AdaptiveAvgPool2d, "adaptive_pool"),
                          (nn.AdaptiveMaxPool2d, "adaptive_pool"), (nn.Softmax, "softmax"),
                          (nn.LayerNorm, "layer_norm"), (nn.GroupNorm, "layer_norm"), (nn.InstanceNorm2d, "layer_norm"),
                          (nn.GELU, "gelu"), (nn.Flatten, "flatten")):
            if isinstance(m, cls):
                return kind
        if isinstance(m, _CHANNELWISE_MODULES):
            return "channelwise"
        return "module"
    if node.op not in ("call_function", "call_method"):
        return node.op  # placeholder, get_attr, output
    t, args = node.target, node.args
    is_m = node.op == "call_method"
    if (t in _ADD_FUNCS or (is_m and t in ("add", "add_", "__add__"))) and two_tensors(args):
        return "add"
    if (t in _MUL_FUNCS or (is_m and t in ("mul", "mul_", "__mul__"))) and two_tensors(args):
        return "mul"
    if (t in _MATMUL_FUNCS or (is_m and t in ("matmul", "bmm", "__matmul__"))) and two_tensors(args):
        return "matmul"
    if t is F.scaled_dot_product_attention:
        return "sdpa"
    if t in _SOFTMAX_FUNCS or (is_m and t == "softmax"):
        return "softmax"
    if t is F.layer_norm:
        return "layer_norm"
    if t is F.gelu or (is_m and t == "gelu"):
        return "gelu"
    if t in _POOL_FUNCS:
        return "pool"
    if t in _ADAPTIVE_FUNCS:
        return "adaptive_pool"
    if t is F.embedding:
        return "embedding_fn"
    if t in _CHANNELWISE_FUNCS or (is_m and t in _CHANNELWISE_METHODS):
        return "channelwise"
    if t is torch.flatten or (is_m and t == "flatten"):
        return "flatten"
    if is_m and t in ("view", "reshape"):
        return "reshape"
    if t is torch.cat:
        return "cat"
    return "function"


# --- channel liveness --------------------------------------------------------------------------------

@dataclass
class Keep:
    """Channels a conv / linear node keeps (``keep_in`` over input channels of one group; for a
    grouped conv ``in_index[g]`` lists the kept group-local input channels of group ``g``, equal
    counts, and ``keep_in`` is their union over the group-local positions)."""

    keep_out: np.ndarray
    keep_in: np.ndarray
    depthwise: bool = False
    grouped: bool = False
    in_index: np.ndarray | None = None

    @property
    def in_kept(self) -> int:
        """Input channels per group of the shrunk layer."""
        return int(self.in_index.shape[1]) if self.in_index is not None else int(self.keep_in.sum())

    def need_in(self, in_channels: int) -> np.ndarray:
        """Input channels (over all ``in_channels``) the shrunk grouped conv reads, in order."""
        assert self.in_index is not None
        G, cin_g = self.in_index.shape[0], in_channels // self.in_index.shape[0]
        need = np.zeros(in_channels, dtype=bool)
        need[(np.arange(G)[:, None] * cin_g + self.in_index).reshape(-1)] = True
        return need

    def gather_in(self, arr: np.ndarray) -> np.ndarray:
        """Columns (dim 1, group-local input channels) of ``arr`` whose rows are the kept filters."""
        if self.in_index is None:
            return arr[:, self.keep_in]
        G = self.in_index.shape[0]
        group = np.repeat(np.arange(G), len(arr) // G)
        idx = self.in_index[group]
        return np.take_along_axis(arr, idx.reshape(idx.shape + (1,) * (arr.ndim - 2)), axis=1) if arr.ndim > 2 \
            else np.take_along_axis(arr, idx, axis=1)


@dataclass
class Liveness:
    alive: dict[Any, np.ndarray | None] = field(default_factory=dict)
    keeps: dict[Any, Keep] = field(default_factory=dict)

    def of(self, node: Any) -> np.ndarray | None:
        return self.alive.get(node) if isinstance(node, fx.Node) else None


def _mask_and_kind(unit: Any) -> tuple[Any, str | None]:
    if unit is None:
        return None, None
    mask = unit.masks.get("weight")
    kind = unit.prune.kind if unit.prune is not None else None
    return mask, kind


def conv_keep(m: "nn.Conv2d", unit: Any, in_alive: np.ndarray | None) -> Keep:
    mask_t, kind = _mask_and_kind(unit)
    O, G = m.out_channels, m.groups
    cin_g = m.in_channels // G
    depthwise = G > 1 and G == m.in_channels and O == G
    keep_out = np.ones(O, dtype=bool)
    keep_in = np.ones(cin_g, dtype=bool)
    if kind == "filter" and mask_t is not None and (G == 1 or depthwise):
        keep_out &= mask_t.reshape(O, -1).any(dim=1).cpu().numpy()
    if depthwise and in_alive is not None and len(in_alive) == O:
        keep_out &= in_alive
    if G == 1:
        if in_alive is not None and len(in_alive) == m.in_channels:
            keep_in &= in_alive
        if kind == "channel" and mask_t is not None:
            keep_in &= mask_t.any(dim=(0, 2, 3)).cpu().numpy()
    if G > 1 and not depthwise:
        return _grouped_keep(m, mask_t, kind, in_alive)
    if not keep_out.any():
        keep_out[0] = True  # a layer keeps at least one filter
    if not keep_in.any():
        keep_in[0] = True
    return Keep(keep_out, keep_in, depthwise, False)


def _balanced(keep: np.ndarray) -> np.ndarray:
    """``keep`` (G x n) with every row raised to the largest row count by its first unkept entries."""
    k = max(1, int(keep.sum(axis=1).max()))
    out = keep.copy()
    for row in out:
        missing = k - int(row.sum())
        if missing > 0:
            row[np.flatnonzero(~row)[:missing]] = True
    return out


def _grouped_keep(m: "nn.Conv2d", mask_t: Any, kind: str | None, in_alive: np.ndarray | None) -> Keep:
    """Equal kept counts per group (see the module doc)."""
    O, G = m.out_channels, m.groups
    cin_g = m.in_channels // G
    keep_out = np.ones((G, O // G), dtype=bool)
    if kind == "filter" and mask_t is not None:
        keep_out &= mask_t.reshape(O, -1).any(dim=1).cpu().numpy().reshape(G, -1)
    keep_in = np.ones((G, cin_g), dtype=bool)
    if in_alive is not None and len(in_alive) == m.in_channels:
        keep_in &= in_alive.reshape(G, cin_g)
    if kind == "channel" and mask_t is not None:
        keep_in &= mask_t.any(dim=(0, 2, 3)).cpu().numpy()[None, :]
    keep_in = _balanced(keep_in)
    in_index = np.stack([np.flatnonzero(row) for row in keep_in])
    return Keep(_balanced(keep_out).reshape(-1), keep_in.any(axis=0), False, True, in_index)


def linear_keep(m: "nn.Linear", unit: Any, in_alive: np.ndarray | None) -> Keep:
    mask_t, kind = _mask_and_kind(unit)
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
    return Keep(keep_out, keep_in)


def _none_if_all(v: np.ndarray | None) -> np.ndarray | None:
    return None if v is None or v.all() else v


def union(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
    if x is None or y is None or len(x) != len(y):
        return None
    return _none_if_all(x | y)


def flatten_alive(al: np.ndarray | None, ins: Any, out: Any) -> np.ndarray | None:
    if al is None or not isinstance(ins, tuple) or not isinstance(out, tuple):
        return None
    if len(ins) == 4 and len(out) == 2 and out[1] == ins[1] * ins[2] * ins[3] and len(al) == ins[1]:
        return np.repeat(al, ins[2] * ins[3])
    if len(ins) == 2 and tuple(out) == tuple(ins):
        return al
    return None


def cat_alive(node: Any, lv: Liveness) -> np.ndarray | None:
    tensors = node.args[0]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, fx.Node) for t in tensors):
        return None
    shapes = [t.meta.get("out_shape") for t in tensors]
    if not all(isinstance(s, tuple) and len(s) == 4 for s in shapes) or dim not in (1, -3):
        return None
    parts = [lv.of(t) if lv.of(t) is not None else np.ones(s[1], dtype=bool) for t, s in zip(tensors, shapes)]
    return _none_if_all(np.concatenate(parts))


def _bn_ok(node: Any) -> bool:
    shp = out_shape(node)
    return isinstance(shp, tuple) and len(shp) in (2, 4)


def liveness(gm: Any, unit_of: Any) -> Liveness:
    """Alive channels of every node of ``gm`` (shapes recorded); ``unit_of(name)`` gives the
    compression state of a leaf module (or None)."""
    modules = dict(gm.named_modules())
    lv = Liveness()
    for node in gm.graph.nodes:
        kind = op_kind(node, modules)
        args = node.args
        first = args[0] if args else None
        res: np.ndarray | None = None
        if kind == "conv":
            ins = out_shape(first)
            k = conv_keep(modules[node.target], unit_of(node.target), lv.of(first) if _rank(ins) == 4 else None)
            lv.keeps[node] = k
            res = _none_if_all(k.keep_out)
        elif kind == "linear":
            ins = out_shape(first)
            k = linear_keep(modules[node.target], unit_of(node.target), lv.of(first) if _rank(ins) in (2, 3) else None)
            lv.keeps[node] = k
            res = _none_if_all(k.keep_out)
        elif kind == "add":
            res = union(lv.of(args[0]), lv.of(args[1]))
        elif kind in ("pool", "adaptive_pool", "gelu"):
            res = lv.of(first) if _rank(out_shape(first)) == 4 or kind == "gelu" else None
        elif kind == "channelwise":
            m = modules.get(node.target) if node.op == "call_module" else None
            if not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) or _bn_ok(node):
                res = lv.of(first)
        elif kind in ("flatten", "reshape"):
            res = flatten_alive(lv.of(first), out_shape(first), out_shape(node))
        elif kind == "cat":
            res = cat_alive(node, lv)
        if res is not None:
            lv.alive[node] = res
    return lv


def _rank(shape: Any) -> int:
    return len(shape) if isinstance(shape, tuple) else -1


def propagates(kind: str) -> bool:
    """Whether a node of this kind consumes a channel-pruned input as it is (else it needs all channels)."""
    return kind in ("conv", "linear", "add", "pool", "adaptive_pool", "gelu", "channelwise", "flatten", "reshape",
                    "cat")


__all__ = ["Tracer", "trace", "record_shapes", "op_kind", "liveness", "Liveness", "Keep", "conv_keep",
           "linear_keep", "channel_axis", "propagates", "out_shape", "shape_of", "two_tensors"]
