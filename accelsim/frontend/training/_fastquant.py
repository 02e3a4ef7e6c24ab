"""Fused (numba) versions of the front-end's fake quantisers for the per-step training paths.

- :func:`fake_quant_act` = :func:`..quantization.fake_quant_activation` (dynamic asymmetric per
  tensor, straight-through gradient) in two passes over the tensor instead of ~12 torch ops.
- :func:`quantize_weight` = :func:`..quantization.quantize_weight`; the symmetric ``int`` scheme
  (per tensor or per output channel) runs as one kernel, every other scheme falls back to the
  front-end function.

Both give the same float32 values as the front-end (same IEEE operations in the same order;
tested for equality), they only save per-op overhead on small tensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .._deps import require_torch
from .. import quantization as qz

torch = require_torch()


@njit(cache=True)
def _minmax(x: np.ndarray) -> tuple[float, float]:  # pragma: no cover (numba)
    lo = x[0]
    hi = x[0]
    for i in range(1, x.size):
        v = x[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi


@njit(cache=True)
def _act_quant(x: np.ndarray, scale: np.float32, zero: np.float32, qmax: np.float32, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(x.size):
        q = np.round(x[i] / scale) + zero
        q = min(max(q, np.float32(0.0)), qmax)
        out[i] = (q - zero) * scale


@njit(cache=True)
def _sym_quant_rows(x: np.ndarray, qmax: np.float32, out: np.ndarray) -> None:  # pragma: no cover
    """Per-row symmetric quantisation; the scale ``max(amax / qmax, 1e-12)`` in float32 as torch."""
    for r in range(x.shape[0]):
        m = np.float32(0.0)
        for c in range(x.shape[1]):
            a = abs(x[r, c])
            if a > m:
                m = a
        s = max(np.float32(m / qmax), np.float32(1e-12))
        for c in range(x.shape[1]):
            q = np.round(x[r, c] / s)
            out[r, c] = min(max(q, -qmax), qmax) * s


def _act_quant_tensor(x: "torch.Tensor", bits: int) -> "torch.Tensor":
    """The dynamic activation fake-quant of a float32 CPU tensor (no autograd)."""
    xf = x.detach()
    if not xf.is_contiguous():
        xf = xf.contiguous()
    xn = xf.numpy().reshape(-1)
    lo, hi = _minmax(xn)
    # the front-end's scalar arithmetic, in float32
    lo32, hi32 = min(np.float32(lo), np.float32(0.0)), max(np.float32(hi), np.float32(0.0))
    qmax = np.float32(2 ** bits - 1)
    scale = max(np.float32((hi32 - lo32) / qmax), np.float32(1e-12))
    zero = np.float32(np.round(-lo32 / scale))
    out = torch.empty(xf.shape, dtype=xf.dtype)
    _act_quant(xn, scale, zero, qmax, out.numpy().reshape(-1))
    return out


class _ActQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor", bits: int) -> "torch.Tensor":
        return _act_quant_tensor(x, bits)

    @staticmethod
    def backward(ctx: Any, g: "torch.Tensor") -> tuple[Any, None]:
        return g, None


def fake_quant_act(x: "torch.Tensor", bits: int) -> "torch.Tensor":
    """Fused :func:`..quantization.fake_quant_activation` (float32 CPU tensors; else the original)."""
    if bits >= 16:
        return x
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.numel() == 0:
        return qz.fake_quant_activation(x, bits)
    return _ActQuant.apply(x, bits)


def quantize_weight(w: "torch.Tensor", spec: Any) -> "torch.Tensor":
    """Fused :func:`..quantization.quantize_weight` for symmetric ``int`` (per tensor or per output
    channel; no autograd); other schemes use the front-end function."""
    if (getattr(spec, "scheme", None) != "int" or not spec.symmetric or w.dtype != torch.float32
            or w.numel() == 0 or w.device.type != "cpu"):
        return qz.quantize_weight(w, spec)
    qmax = 2 ** (spec.weight_bits - 1) - 1
    rows = w.shape[0] if spec.granularity == "channel" and w.dim() > 1 else 1  # per tensor = one "row"
    wd = w.detach()
    if not wd.is_contiguous():
        wd = wd.contiguous()
    out = torch.empty(wd.shape, dtype=wd.dtype)
    _sym_quant_rows(wd.numpy().reshape(rows, -1), np.float32(qmax), out.numpy().reshape(rows, -1))
    return out


class _QuantLayer(torch.autograd.Function):
    """A conv/linear layer with fake-quantised input and weight in one autograd node.

    Forward: ``layer(Qa(x), Qw(W))``; backward: straight-through for both quantisers (the input
    gradient passes unchanged, the weight gradient is the gradient w.r.t. ``Qw(W)``, masked).
    """

    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor", w: "torch.Tensor", b: "torch.Tensor | None", mod: Any, weight_fn: Any,
                act_bits: int, mask: "torch.Tensor | None") -> "torch.Tensor":
        if act_bits >= 16:
            xq = x.detach()
        elif x.dtype == torch.float32 and x.numel():
            xq = _act_quant_tensor(x, act_bits)
        else:
            xq = qz.fake_quant_activation(x.detach(), act_bits)
        with torch.no_grad():
            wq = weight_fn(w.detach())
        bd = None if b is None else b.detach()
        conv = isinstance(mod, torch.nn.Conv2d)
        y = (torch.nn.functional.conv2d(xq, wq, bd, mod.stride, mod.padding, mod.dilation, mod.groups) if conv
             else torch.nn.functional.linear(xq, wq, bd))
        ctx.save_for_backward(xq, wq, mask)
        ctx.info = (mod, conv, b is not None)
        return y

    @staticmethod
    def backward(ctx: Any, g: "torch.Tensor") -> tuple[Any, ...]:
        xq, wq, mask = ctx.saved_tensors
        mod, conv, has_bias = ctx.info
        need_x = ctx.needs_input_grad[0]
        if conv:
            gx, gw, gb = torch.ops.aten.convolution_backward(
                g, xq, wq, [wq.shape[0]] if has_bias else None, list(mod.stride), list(mod.padding),
                list(mod.dilation), False, [0, 0], mod.groups, [need_x, True, has_bias])
        else:
            g2 = g if g.dim() == 2 else g.reshape(-1, g.shape[-1])
            gx = (g2 @ wq).view(xq.shape) if need_x else None
            gw = g2.t() @ (xq if xq.dim() == 2 else xq.reshape(-1, xq.shape[-1]))
            gb = g2.sum(dim=0) if has_bias else None
        if mask is not None:
            gw = gw * mask
        return gx, gw, gb, None, None, None, None


def install_quant_forward(module: Any, weight_fn: Any, act_bits: int, mask: "torch.Tensor | None" = None) -> None:
    """Route ``module``'s forward through :class:`_QuantLayer` (undo with :func:`remove_quant_forward`).

    ``weight_fn(w)`` returns the projected (quantised, masked) weight; ``mask`` (float) masks the
    weight gradient; activations use :func:`fake_quant_act` with ``act_bits`` (>= 16: none).
    """
    def forward(x: "torch.Tensor") -> "torch.Tensor":
        return _QuantLayer.apply(x, module.weight, module.bias, module, weight_fn, act_bits, mask)

    module.forward = forward


def remove_quant_forward(module: Any) -> None:
    if "forward" in vars(module):
        del module.forward


__all__ = ["fake_quant_act", "quantize_weight", "install_quant_forward", "remove_quant_forward"]
