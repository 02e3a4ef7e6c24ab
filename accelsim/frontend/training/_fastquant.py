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
def _absmax(x: np.ndarray) -> float:  # pragma: no cover (numba)
    m = np.float32(0.0)
    for i in range(x.size):
        a = abs(x[i])
        if a > m:
            m = a
    return m


@njit(cache=True)
def _sym_quant(x: np.ndarray, scale: np.float32, qmax: np.float32, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(x.size):
        q = np.round(x[i] / scale)
        out[i] = min(max(q, -qmax), qmax) * scale


@njit(cache=True)
def _row_absmax(x: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (numba)
    for r in range(x.shape[0]):
        m = np.float32(0.0)
        for c in range(x.shape[1]):
            a = abs(x[r, c])
            if a > m:
                m = a
        out[r] = m


@njit(cache=True)
def _sym_quant_rows(x: np.ndarray, scale: np.ndarray, qmax: np.float32, out: np.ndarray) -> None:  # pragma: no cover
    for r in range(x.shape[0]):
        s = scale[r]
        for c in range(x.shape[1]):
            q = np.round(x[r, c] / s)
            out[r, c] = min(max(q, -qmax), qmax) * s


class _ActQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor", bits: int) -> "torch.Tensor":
        xf = x.detach().contiguous().reshape(-1)
        lo, hi = _minmax(xf.numpy())
        # the front-end's scalar arithmetic, in float32
        lo32, hi32 = min(np.float32(lo), np.float32(0.0)), max(np.float32(hi), np.float32(0.0))
        qmax = np.float32(2 ** bits - 1)
        scale = max(np.float32((hi32 - lo32) / qmax), np.float32(1e-12))
        zero = np.float32(np.round(-lo32 / scale))
        out = torch.empty_like(xf)
        _act_quant(xf.numpy(), scale, zero, qmax, out.numpy())
        return out.view(x.shape)

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
    if spec.granularity == "channel" and w.dim() > 1:
        w2 = w.detach().contiguous().reshape(w.shape[0], -1)
        amax = torch.empty(w.shape[0], dtype=torch.float32)
        _row_absmax(w2.numpy(), amax.numpy())
        scale = (amax / qmax).clamp_min(1e-12)
        out = torch.empty_like(w2)
        _sym_quant_rows(w2.numpy(), scale.numpy(), np.float32(qmax), out.numpy())
        return out.view(w.shape)
    wf = w.detach().contiguous().reshape(-1)
    scale = max(np.float32(np.float32(_absmax(wf.numpy())) / np.float32(qmax)), np.float32(1e-12))
    out = torch.empty_like(wf)
    _sym_quant(wf.numpy(), scale, np.float32(qmax), out.numpy())
    return out.view(w.shape)


__all__ = ["fake_quant_act", "quantize_weight"]
