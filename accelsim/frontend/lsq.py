"""Learned Step Size Quantization (LSQ) for quantisation-aware training.

Esser, McKinstry, Bablani, Appuswamy, Modha, "Learned Step Size Quantization", ICLR 2020,
arXiv 1902.08153: the quantiser ``x_q = round(clip(x / s, -Q_N, Q_P)) * s`` has a *learned* step
``s`` (one per tensor, or per output channel for weights), trained with the straight-through
estimator; its gradient is

    d x_q / d s = -x/s + round(x/s)   inside the range,   -Q_N or Q_P   outside,

scaled by ``g = 1 / sqrt(N * Q_P)`` (``N`` = elements per step) so step and weights learn at
comparable rates. ``s`` starts at ``2 mean|x| / sqrt(Q_P)`` of the first tensor seen. Signed
grids are ``-2^(b-1) .. 2^(b-1) - 1`` (weights; ``Q_N = 2^(b-1)``), unsigned ``0 .. 2^b - 1``
(activations after ReLU); :func:`prepare_lsq` makes an activation quantiser signed when its first
input has negative values.

:func:`prepare_lsq` attaches LSQ weight quantisers (``torch.nn.utils.parametrize``, per output
channel) and input-activation quantisers (forward pre-hooks) to the conv / linear layers of a
model; train it as usual (the steps are parameters of the model). :func:`lsq_records` gives the
bit-widths as training :class:`~.training.metrics.LayerCompression` records for export, and
:func:`lsq_qparams` the learned grids for :mod:`.onnx_export`.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError
from ._deps import require_torch

torch = require_torch()
nn = torch.nn


def _grad_scale(x: "torch.Tensor", g: float) -> "torch.Tensor":
    return (x - x * g).detach() + x * g


def _round_pass(x: "torch.Tensor") -> "torch.Tensor":
    return (torch.round(x) - x).detach() + x


class LSQQuantizer(nn.Module):
    """One LSQ fake quantiser; ``channels`` > 0: one step per slice along dim 0 (weights)."""

    def __init__(self, bits: int, signed: bool, channels: int = 0):
        super().__init__()
        if not 2 <= bits <= 16:
            raise ConfigError(f"LSQ bits must be in 2..16, got {bits}", source="lsq", field="bits")
        self.bits, self.signed, self.channels = bits, signed, channels
        self.q_n = 2 ** (bits - 1) if signed else 0
        self.q_p = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
        self.step = nn.Parameter(torch.ones(max(channels, 1)))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def _init(self, x: "torch.Tensor") -> None:
        with torch.no_grad():
            if self.channels:
                m = x.detach().abs().reshape(x.shape[0], -1).mean(dim=1)
            else:
                m = x.detach().abs().mean().reshape(1)
            self.step.copy_((2 * m / math.sqrt(self.q_p)).clamp_min(1e-8).to(self.step.dtype))
            self.initialized.fill_(True)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if not bool(self.initialized):
            self._init(x)
        n = x.numel() // max(self.channels, 1)
        # |step|: an optimiser step may overshoot zero (as Brevitas, the magnitude is the step)
        s = _grad_scale(self.step.abs().clamp_min(1e-8), 1.0 / math.sqrt(max(n, 1) * self.q_p))
        if self.channels:
            s = s.view(-1, *([1] * (x.dim() - 1)))
        return _round_pass(torch.clamp(x / s, -self.q_n, self.q_p)) * s


class _WeightLSQ(nn.Module):
    """Parametrisation ``W -> LSQ(W)`` (the quantiser is registered as a submodule)."""

    def __init__(self, quantizer: LSQQuantizer):
        super().__init__()
        self.quantizer = quantizer

    def forward(self, w: "torch.Tensor") -> "torch.Tensor":
        return self.quantizer(w)


def prepare_lsq(model: "nn.Module", weight_bits: int = 4, act_bits: int = 8, example_input: Any = None,
                layers: list[str] | None = None, bits: dict[str, tuple[int, int]] | None = None) -> "nn.Module":
    """Attach LSQ quantisers to ``model`` in place and return it.

    ``layers``: conv / linear names (default: all); ``bits``: per-layer ``(weight, act)`` overrides.
    ``example_input`` (recommended) runs once in eval mode to initialise the activation steps and
    decide their signedness; otherwise the first training batch initialises them (unsigned).
    """
    from torch.nn.utils import parametrize

    targets = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if layers is not None:
        missing = sorted(set(layers) - set(targets))
        if missing:
            raise ConfigError(f"no conv/linear layer named {missing}; layers: {', '.join(targets)}", source="lsq",
                              field="layers")
        targets = {n: targets[n] for n in layers}
    bits = bits or {}
    signed: dict[str, bool] = {}
    if example_input is not None:
        seen: dict[str, "torch.Tensor"] = {}
        hooks = [m.register_forward_pre_hook(lambda mod, a, n=n: seen.__setitem__(n, a[0].detach()))
                 for n, m in targets.items()]
        was = model.training
        model.eval()
        with torch.no_grad():
            model(example_input)
        model.train(was)
        for h in hooks:
            h.remove()
        signed = {n: bool((x < 0).any()) for n, x in seen.items()}
    for name, m in targets.items():
        wb, ab = bits.get(name, (weight_bits, act_bits))
        wq = LSQQuantizer(wb, True, channels=m.weight.shape[0]).to(m.weight.device)
        parametrize.register_parametrization(m, "weight", _WeightLSQ(wq))
        aq = LSQQuantizer(ab, signed.get(name, False)).to(m.weight.device)
        m.lsq_act = aq  # a submodule: its step is a model parameter, saved in the state dict
        m.register_forward_pre_hook(lambda mod, a: (mod.lsq_act(a[0]),) + tuple(a[1:]))
        if example_input is not None:
            aq._init(seen[name])
    return model


def lsq_layers(model: "nn.Module") -> dict[str, "nn.Module"]:
    return {n: m for n, m in model.named_modules() if hasattr(m, "lsq_act")}


def lsq_records(model: "nn.Module") -> dict[str, Any]:
    """``LayerCompression`` records (bits, per-channel int) of the LSQ layers, for export/metrics."""
    from .training.metrics import LayerCompression

    out = {}
    for name, m in lsq_layers(model).items():
        wq = m.parametrizations.weight[0].quantizer
        out[name] = LayerCompression(name=name, weight_bits=wq.bits, act_bits=m.lsq_act.bits, scheme="int",
                                     granularity="channel")
    return out


def lsq_qparams(model: "nn.Module") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(weight, activation)`` :class:`~.ptq.QParams` of every LSQ layer (the learned grids)."""
    from .ptq import QParams

    wq_out, aq_out = {}, {}
    for name, m in lsq_layers(model).items():
        wq = m.parametrizations.weight[0].quantizer
        s = wq.step.detach().abs()
        wq_out[name] = QParams(s, torch.zeros_like(s, dtype=torch.int64), -wq.q_n, wq.q_p, wq.bits, axis=0)
        aq = m.lsq_act
        sa = aq.step.detach().abs().reshape(())
        aq_out[name] = QParams(sa, torch.zeros((), dtype=torch.int64), -aq.q_n, aq.q_p, aq.bits)
    return wq_out, aq_out


__all__ = ["LSQQuantizer", "prepare_lsq", "lsq_layers", "lsq_records", "lsq_qparams"]
