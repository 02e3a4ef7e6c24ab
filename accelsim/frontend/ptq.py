"""Post-training quantisation: calibrated observers, BatchNorm folding, measured mixed-precision sensitivity.

What users of ``torch.ao.quantization`` / Brevitas expect before deploying a quantised model:

- **Observers** (:class:`MinMaxObserver`, :class:`MovingAverageObserver`,
  :class:`PercentileObserver`) watch a tensor over calibration batches and give the affine
  quantisation parameters ``(scale, zero_point)`` of a ``bits``-bit grid, per tensor or per
  channel. Min-max and its moving average (``averaging_constant`` 0.01, as torch.ao's
  ``MovingAverageMinMaxObserver``) follow Jacob et al., CVPR 2018 (arXiv 1712.05877); the
  percentile observer clips outliers at the ``percentile``-th value of the observed distribution
  (computed from a bounded, deterministic subsample of every batch; Wu et al., "Integer
  Quantization for Deep Learning Inference", arXiv 2004.09602, sec. 4.1).
- :func:`calibrate` runs calibration batches through a :class:`~.compressor.CompressedModel` and
  replaces the dynamic per-batch activation fake-quant of every quantised layer with a *static*
  one from the observer (the values a deployed integer kernel uses); the parameters are kept in
  ``cm.act_qparams`` (used by :mod:`.onnx_export`).
- :func:`fold_batchnorm` folds every BatchNorm that directly follows a conv / linear into that
  layer (``W' = W gamma / sigma``, ``b' = (b - mu) gamma / sigma + beta``; eval-mode statistics)
  before quantising, so the quantiser sees the weights the integer kernel will use.
- :func:`loss_sensitivity` measures, per layer and candidate bit-width, the increase of the
  calibration loss (or the accuracy drop) when only that layer's weights are quantised — the
  measured sensitivity of HAWQ / "Post-training mixed precision" (Dong et al., arXiv 1911.03852;
  Cai et al., ZeroQ, arXiv 2001.00281, sec. 3.3) — for :func:`.quantization.assign_bits` /
  :func:`~.compressor.compress` (``sensitivity=``).

Assumptions: activations are quantised per tensor (asymmetric unsigned grid ``0 .. 2^b - 1`` with a
zero point; symmetric signed when asked), weights per output channel (dim 0). Calibration runs in
eval mode without gradients on the model's device.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..errors import ConfigError
from ._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

PERCENTILE_SAMPLES_PER_BATCH = 65536


@dataclass
class QParams:
    """Affine quantisation parameters: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``."""

    scale: "torch.Tensor"        # scalar, or one per channel
    zero_point: "torch.Tensor"   # int, same shape as scale
    qmin: int
    qmax: int
    bits: int
    axis: int | None = None      # channel axis of per-channel parameters

    def fake_quant(self, x: "torch.Tensor") -> "torch.Tensor":
        """Quantise-dequantise ``x`` (straight-through gradient)."""
        s, z = self.scale.to(x.device, x.dtype), self.zero_point.to(x.device, x.dtype)
        if self.axis is not None:
            shape = [1] * x.dim()
            shape[self.axis] = -1
            s, z = s.view(shape), z.view(shape)
        q = (torch.clamp(torch.round(x / s) + z, self.qmin, self.qmax) - z) * s
        return x + (q - x).detach()


def _qparams(lo: "torch.Tensor", hi: "torch.Tensor", bits: int, symmetric: bool, axis: int | None) -> QParams:
    if bits < 2 or bits > 16:
        raise ConfigError(f"activation/weight bits must be in 2..16, got {bits}", source="observer", field="bits")
    lo = torch.minimum(lo, torch.zeros_like(lo)).double()
    hi = torch.maximum(hi, torch.zeros_like(hi)).double()
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = (torch.maximum(-lo, hi) / qmax).clamp_min(1e-12)
        return QParams(scale.float(), torch.zeros_like(scale, dtype=torch.int64), -qmax, qmax, bits, axis)
    qmax = 2 ** bits - 1
    scale = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int64)
    return QParams(scale.float(), zero, 0, qmax, bits, axis)


class Observer:
    """Running statistics of a tensor; :meth:`qparams` turns them into a grid. ``axis``: per-channel."""

    def __init__(self, axis: int | None = None):
        self.axis = axis
        self.batches = 0

    def _reduce(self, x: "torch.Tensor", fn: Callable[..., "torch.Tensor"]) -> "torch.Tensor":
        x = x.detach()
        if self.axis is None:
            return fn(x)
        return fn(x.transpose(0, self.axis).reshape(x.shape[self.axis], -1), dim=1)

    def update(self, x: "torch.Tensor") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def range(self) -> tuple["torch.Tensor", "torch.Tensor"]:  # pragma: no cover - abstract
        raise NotImplementedError

    def qparams(self, bits: int, symmetric: bool = False) -> QParams:
        if self.batches == 0:
            raise ConfigError("the observer saw no data: calibrate with at least one batch", source="observer")
        lo, hi = self.range()
        return _qparams(lo, hi, bits, symmetric, self.axis)


class MinMaxObserver(Observer):
    """Running minimum and maximum over every batch."""

    def __init__(self, axis: int | None = None):
        super().__init__(axis)
        self.lo: "torch.Tensor | None" = None
        self.hi: "torch.Tensor | None" = None

    def update(self, x: "torch.Tensor") -> None:
        lo = self._reduce(x, lambda t, **kw: t.amin(**kw))
        hi = self._reduce(x, lambda t, **kw: t.amax(**kw))
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)
        self.batches += 1

    def range(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        return self.lo, self.hi


class MovingAverageObserver(Observer):
    """Exponential moving average of the per-batch minimum and maximum (first batch taken as is)."""

    def __init__(self, axis: int | None = None, averaging_constant: float = 0.01):
        super().__init__(axis)
        if not 0.0 < averaging_constant <= 1.0:
            raise ConfigError(f"averaging_constant must be in (0, 1], got {averaging_constant}", source="observer",
                              field="averaging_constant")
        self.c = averaging_constant
        self.lo: "torch.Tensor | None" = None
        self.hi: "torch.Tensor | None" = None

    def update(self, x: "torch.Tensor") -> None:
        lo = self._reduce(x, lambda t, **kw: t.amin(**kw))
        hi = self._reduce(x, lambda t, **kw: t.amax(**kw))
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.lo + self.c * (lo - self.lo)
            self.hi = self.hi + self.c * (hi - self.hi)
        self.batches += 1

    def range(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        return self.lo, self.hi


class PercentileObserver(Observer):
    """Clip at the ``percentile`` (and ``100 - percentile``) of the observed values (per tensor).

    Every batch contributes an evenly strided subsample of at most
    :data:`PERCENTILE_SAMPLES_PER_BATCH` values (deterministic); the quantiles are exact on that
    sample.
    """

    def __init__(self, percentile: float = 99.99):
        super().__init__(None)
        if not 50.0 < percentile <= 100.0:
            raise ConfigError(f"percentile must be in (50, 100], got {percentile}", source="observer",
                              field="percentile")
        self.percentile = percentile
        self.samples: list["torch.Tensor"] = []

    def update(self, x: "torch.Tensor") -> None:
        flat = x.detach().reshape(-1).float()
        step = max(1, flat.numel() // PERCENTILE_SAMPLES_PER_BATCH)
        self.samples.append(flat[::step].cpu())
        self.batches += 1

    def range(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        v = torch.cat(self.samples)
        p = self.percentile / 100.0
        if v.numel() > 16_000_000:  # torch.quantile's input limit
            v = v[:: v.numel() // 16_000_000 + 1]
        return torch.quantile(v, 1.0 - p), torch.quantile(v, p)


OBSERVERS: dict[str, Callable[[], Observer]] = {
    "minmax": MinMaxObserver, "moving_average": MovingAverageObserver, "percentile": PercentileObserver,
}


def make_observer(kind: str | Observer | Callable[[], Observer]) -> Observer:
    if isinstance(kind, Observer):
        return kind
    if callable(kind):
        return kind()
    if kind not in OBSERVERS:
        raise ConfigError(f"unknown observer {kind!r}; expected one of {', '.join(OBSERVERS)}", source="calibrate",
                          field="observer")
    return OBSERVERS[kind]()


def _batches_x(batches: Iterable[Any]) -> Iterable["torch.Tensor"]:
    for b in batches:
        yield b[0] if isinstance(b, (tuple, list)) else b


def calibrate(cm: Any, batches: Iterable[Any], observer: str | Callable[[], Observer] = "minmax",
              symmetric: bool = False) -> dict[str, QParams]:
    """Observe the input activation of every quantised layer of ``cm`` over ``batches`` (tensors or
    ``(x, y)`` tuples) and install static fake-quant with the observer's grid in place of the
    dynamic per-batch one. Returns (and stores in ``cm.act_qparams``) the parameters per layer."""
    units = {n: u for n, u in cm.units.items() if u.quant is not None and u.quant.act_bits < 16 and u.type != "lstm"}
    if not units:
        raise ConfigError("nothing to calibrate: no layer has quantised activations", source="calibrate")
    model = cm.model
    observers = {n: make_observer(observer) for n in units}
    for name in units:  # observe the float input (drop the dynamic quantiser while observing)
        h = cm._hooks.pop(name, None)
        if h is not None:
            h.remove()
    hooks = []
    for name in units:
        mod = model.get_submodule(name)
        hooks.append(mod.register_forward_pre_hook(lambda m, a, n=name: observers[n].update(a[0])))
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            seen = 0
            for x in _batches_x(batches):
                model(x.to(device))
                seen += 1
        if not seen:
            raise ConfigError("no calibration batches", source="calibrate", field="batches")
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    out: dict[str, QParams] = {}
    for name, u in units.items():
        qp = observers[name].qparams(u.quant.act_bits, symmetric)
        out[name] = qp
        mod = model.get_submodule(name)
        cm._hooks[name] = mod.register_forward_pre_hook(lambda m, a, qp=qp: (qp.fake_quant(a[0]),) + tuple(a[1:]))
    cm.act_qparams = out
    return out


# --- BatchNorm folding ------------------------------------------------------------------------------

def fold_batchnorm(model: "nn.Module") -> "nn.Module":
    """A copy of ``model`` (eval mode) with every BatchNorm that is the only user of a conv / linear
    output folded into that layer and replaced by ``nn.Identity`` (module names unchanged).
    BatchNorms after anything else stay. Needs an fx-traceable model."""
    import torch.fx as fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    out = copy.deepcopy(model).eval()
    try:
        graph = fx.symbolic_trace(out).graph
    except Exception as exc:
        raise ConfigError(f"BatchNorm folding needs an fx-traceable model ({type(exc).__name__}: {exc})",
                          source=type(model).__name__) from None
    mods = dict(out.named_modules())
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), (nn.Conv2d, nn.Linear)):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module":
            continue
        bn = mods.get(users[0].target)
        layer = mods[node.target]
        if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not layer.transposed:
            fused = fuse_conv_bn_eval(layer, bn)
        elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d) and bn.num_features == layer.out_features:
            fused = fuse_linear_bn_eval(layer, bn)
        else:
            continue
        _replace(out, node.target, fused)
        _replace(out, users[0].target, nn.Identity())
    return out


def _replace(root: "nn.Module", name: str, module: "nn.Module") -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


# --- measured sensitivity ------------------------------------------------------------------------------

def loss_sensitivity(model: "nn.Module", batches: Iterable[Any], metric: str = "loss",
                     granularity: str = "channel") -> Callable[[str, int], float]:
    """``sensitivity(name, bits)``: the calibration loss increase (``metric="loss"``, cross-entropy)
    or accuracy drop (``"accuracy"``) of ``model`` when only layer ``name``'s weights are quantised to
    ``bits`` (symmetric int, ``granularity``; 1 bit = binary), everything else float. Measured once
    per (layer, bits) on the given ``(x, y)`` batches, cached."""
    from . import quantization as qz
    from .recipe import QuantSpec

    if metric not in ("loss", "accuracy"):
        raise ConfigError(f"metric must be 'loss' or 'accuracy', got {metric!r}", source="loss_sensitivity",
                          field="metric")
    data = [(b[0], b[1]) for b in batches]
    if not data:
        raise ConfigError("no calibration batches", source="loss_sensitivity", field="batches")
    device = next(model.parameters()).device
    work = copy.deepcopy(model).eval()

    def score() -> float:
        total, n = 0.0, 0
        with torch.no_grad():
            for x, y in data:
                out = work(x.to(device))
                y = y.to(device)
                if metric == "loss":
                    total += float(F.cross_entropy(out, y, reduction="sum"))
                else:
                    total -= float((out.argmax(1) == y).sum())
                n += len(y)
        return total / max(n, 1)

    base = score()
    cache: dict[tuple[str, int], float] = {}

    def sensitivity(name: str, bits: int) -> float:
        key = (name, bits)
        if key not in cache:
            mod = work.get_submodule(name)
            w = mod.weight.detach().clone()
            spec = QuantSpec(weight_bits=bits, granularity=granularity) if bits >= 2 else \
                QuantSpec(weight_bits=1, scheme="binary", granularity=granularity)
            with torch.no_grad():
                mod.weight.copy_(qz.quantize_weight(w, spec))
                cache[key] = max(score() - base, 0.0)
                mod.weight.copy_(w)
        return cache[key]

    return sensitivity


__all__ = ["QParams", "Observer", "MinMaxObserver", "MovingAverageObserver", "PercentileObserver", "OBSERVERS",
           "make_observer", "calibrate", "fold_batchnorm", "loss_sensitivity"]
