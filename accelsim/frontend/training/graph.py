"""Which output channels of a network's conv/linear layers can be removed on their own.

Early-Bird and DJPQ prune *output channels* of a layer. That is only sound when nothing but the
input channels of other conv/linear layers sees those channels: a channel that reaches a residual
add, a concatenation, an attention matmul or the network output is shared with another branch
(its zeroed producer would not remove it). :func:`channel_groups` traces the model with
``torch.fx`` and, for every conv/linear layer, finds

- its **gate point**: the BatchNorm (1d/2d) or :class:`~.models.ChannelScale` that is the only
  user of the layer's output (channel masks and gates act after it, so BatchNorm cannot undo them),
  else the layer itself;
- whether its channels are **free**: every path from the gate point passes only channel-wise ops
  (ReLU/GELU/SiLU/sigmoid/tanh/dropout/identity, max/avg/adaptive pooling, flatten) and ends in
  the input of a conv (``groups == 1``) or linear layer;
- those **consumers** with the number of their input columns fed by one channel (``H*W`` after a
  flatten of ``C x H x W``; 1 otherwise).

Assumptions (conservative; anything else is "not free", so it is never pruned): the model is
fx-traceable; channels are dim 1 of conv outputs and the last dim of linear outputs; a flatten is
channel-major (``flatten(1)`` of NCHW). In a ResNet this keeps exactly the channels inside the
residual blocks (conv1 of each basic block) prunable, as the Early-Bird reference code's
``resprune``; in a transformer the FFN neurons (``fc1`` outputs).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.Dropout,
                        nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_CHANNELWISE_FUNCTIONS = {F.relu, F.relu6, F.gelu, F.silu, F.leaky_relu, F.dropout, F.max_pool2d, F.avg_pool2d,
                          F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.relu, torch.sigmoid, torch.tanh,
                          F.elu, F.hardswish}
_CHANNELWISE_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone"}


@dataclass
class ChannelGroup:
    """One conv/linear layer's output channels and where they go (see the module docstring)."""

    layer: str
    channels: int
    gate_point: str                      # module name of the BN / ChannelScale after it, or the layer
    scale: str | None = None             # the BN / ChannelScale module name (None: no scale module)
    free: bool = False
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (layer, input columns per channel)
    reason: str = ""                     # why not free


def _is_scale(m: "nn.Module", channels: int) -> bool:
    from .models import ChannelScale

    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return m.num_features == channels and m.affine
    return isinstance(m, ChannelScale) and m.weight.numel() == channels


def _trace(model: "nn.Module") -> Any:
    import torch.fx as fx

    from .models import ChannelScale

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m: "nn.Module", qualname: str) -> bool:
            return isinstance(m, ChannelScale) or super().is_leaf_module(m, qualname)

    try:
        return fx.GraphModule(model, _Tracer().trace(model))
    except Exception as exc:  # data-dependent control flow, shape unpacking, ...
        raise ConfigError(f"the model cannot be traced by torch.fx ({type(exc).__name__}: {exc}); channel pruning "
                          "needs the graph to find which channels feed residual adds or attention",
                          source=type(model).__name__) from None


def channel_groups(model: "nn.Module") -> dict[str, ChannelGroup]:
    """A :class:`ChannelGroup` for every conv/linear module of ``model`` (definition order)."""
    gm = _trace(model)
    mods = dict(model.named_modules())
    layers = {n: m for n, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear))}
    node_of: dict[str, Any] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in layers:
            if node.target in node_of:
                raise ConfigError(f"module {node.target!r} is called more than once; channel pruning needs one "
                                  "call per layer", source=type(model).__name__)
            node_of[node.target] = node
    out: dict[str, ChannelGroup] = {}
    for name, m in layers.items():
        channels = int(m.weight.shape[0])
        grp = ChannelGroup(layer=name, channels=channels, gate_point=name)
        node = node_of.get(name)
        if node is None:
            grp.reason = "not called in the traced forward"
            out[name] = grp
            continue
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module" and _is_scale(mods[users[0].target], channels):
            grp.gate_point = grp.scale = str(users[0].target)
            node = users[0]
        grp.free, grp.reason = _follow(node, channels, mods, layers, isinstance(m, nn.Conv2d), grp.consumers)
        if not grp.consumers and grp.free:
            grp.free, grp.reason = False, "feeds no layer"
        out[name] = grp
    return out


def _follow(start: Any, channels: int, mods: dict[str, "nn.Module"], layers: dict[str, "nn.Module"],
            conv_producer: bool, consumers: list[tuple[str, int]]) -> tuple[bool, str]:
    """Walk every path from ``start``; True when all end in conv/linear inputs (fills ``consumers``)."""
    stack = [(u, start, False) for u in start.users]
    seen = set()
    while stack:
        node, src, flat = stack.pop()
        if (node, src) in seen:
            continue
        seen.add((node, src))
        if node.op == "call_module":
            m = mods[str(node.target)]
            if str(node.target) in layers:
                if node.args[0] is not src:
                    return False, f"used as a non-input argument of {node.target}"
                if isinstance(m, nn.Conv2d):
                    if m.groups != 1 or m.in_channels != channels or flat:
                        return False, f"feeds {node.target} other than through its input channels"
                    consumers.append((str(node.target), 1))
                else:
                    if m.in_features % channels or (conv_producer and not flat):
                        return False, f"feeds {node.target} other than through its input features"
                    consumers.append((str(node.target), m.in_features // channels))
                continue
            if isinstance(m, _CHANNELWISE_MODULES):
                stack.extend((u, node, flat) for u in node.users)
                continue
            if isinstance(m, nn.Flatten) and m.start_dim == 1:
                stack.extend((u, node, True) for u in node.users)
                continue
            return False, f"reaches module {node.target} ({type(m).__name__})"
        if node.op == "call_function" and node.target in _CHANNELWISE_FUNCTIONS and node.args[0] is src:
            stack.extend((u, node, flat) for u in node.users)
            continue
        if node.op == "call_function" and node.target is torch.flatten and _flatten_from_1(node):
            stack.extend((u, node, True) for u in node.users)
            continue
        if node.op == "call_method" and node.target in _CHANNELWISE_METHODS:
            stack.extend((u, node, flat) for u in node.users)
            continue
        if node.op == "call_method" and node.target == "flatten" and _flatten_from_1(node):
            stack.extend((u, node, True) for u in node.users)
            continue
        what = node.target if node.op != "output" else "the network output"
        if node.target in (operator.add, torch.add, operator.iadd):
            what = "a residual add"
        return False, f"reaches {getattr(what, '__name__', what)}"
    return True, ""


def _flatten_from_1(node: Any) -> bool:
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return start == 1 and end == -1


def is_chain(groups: dict[str, ChannelGroup]) -> bool:
    """True when every layer but the last is free, has no scale module and feeds exactly the next
    layer (the networks the fused numba DJPQ kernels were written for)."""
    names = list(groups)
    for i, n in enumerate(names[:-1]):
        g = groups[n]
        if not g.free or g.scale is not None or [c for c, _ in g.consumers] != [names[i + 1]]:
            return False
    return bool(names) and not groups[names[-1]].free


def weight_masks(model: "nn.Module", groups: dict[str, ChannelGroup],
                 keep: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Boolean weight masks of every layer touched by ``keep`` (kept output channels per free layer):
    the producer's rows and the consumers' input columns of removed channels are False."""
    out: dict[str, torch.Tensor] = {}

    def base(name: str) -> "torch.Tensor":
        if name not in out:
            w = model.get_submodule(name).weight
            out[name] = torch.ones(w.shape, dtype=torch.bool, device=w.device)
        return out[name]

    for layer, k in keep.items():
        w = model.get_submodule(layer).weight
        k = k.to(w.device)
        out[layer] = base(layer) & k.view(-1, *([1] * (w.dim() - 1)))
        for cons, per in groups[layer].consumers:
            wc = model.get_submodule(cons).weight
            cols = k.repeat_interleave(per) if per > 1 else k
            out[cons] = base(cons) & cols.view(1, -1, *([1] * (wc.dim() - 2)))
    return out


__all__ = ["ChannelGroup", "channel_groups", "is_chain", "weight_masks"]
