"""Quantisation: projections of a weight tensor onto quantisation levels, fake-quant and mixed precision.

All functions return *dequantised* float tensors (the values the quantised network computes
with), so the model can be evaluated as is ("fake quant"). Schemes:

- ``int``: uniform ``k``-bit, symmetric (levels ``-(2^(k-1)-1) .. 2^(k-1)-1`` times a scale) or
  asymmetric (``0 .. 2^k-1`` with a zero point), per tensor or per output channel (Jacob et al.,
  "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
  CVPR 2018, arXiv 1712.05877).
- ``pow2``: 0 or ±2^e with ``2^(k-1) - 1`` consecutive exponents below the largest weight
  (1 sign bit + ``k-1`` exponent bits; INQ, Zhou et al., ICLR 2017, arXiv 1702.03044).
- ``binary``: ``alpha * sign(w)`` with ``alpha = mean|w|`` (XNOR-Net, Rastegari et al., ECCV 2016,
  arXiv 1603.05279).
- ``ternary``: ``{-alpha, 0, alpha}`` with threshold ``0.7 mean|w|`` (TWN, Li & Liu, arXiv 1605.04711).

Mixed precision (:func:`assign_bits`) follows the HAWQ-V3 / Bayesian-Bits cost model
(BOPs = MACs x weight bits x activation bits, arXiv 2011.10680): a greedy search lowers the bits of
the layer whose sensitivity grows least per unit of cost saved until the budget holds.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ._deps import require_torch

torch = require_torch()


def _reduce_dims(w: "torch.Tensor", per_channel: bool) -> tuple[int, ...] | None:
    return tuple(range(1, w.dim())) if per_channel and w.dim() > 1 else None


def _amax(x: "torch.Tensor", dims: tuple[int, ...] | None) -> "torch.Tensor":
    return x.abs().amax() if dims is None else x.abs().amax(dim=dims, keepdim=True)


def quantize_int(w: "torch.Tensor", bits: int, symmetric: bool = True, per_channel: bool = False) -> "torch.Tensor":
    """Uniform integer fake-quant of ``w`` (per tensor or per output channel = dim 0)."""
    if bits < 2 and symmetric:
        raise ValueError("symmetric int quantisation needs >= 2 bits (use scheme 'binary' for 1 bit)")
    dims = _reduce_dims(w, per_channel)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = (_amax(w, dims) / qmax).clamp_min(1e-12)
        return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    lo = w.amin() if dims is None else w.amin(dim=dims, keepdim=True)
    hi = w.amax() if dims is None else w.amax(dim=dims, keepdim=True)
    lo, hi = torch.minimum(lo, torch.zeros_like(lo)), torch.maximum(hi, torch.zeros_like(hi))
    qmax = 2 ** bits - 1
    scale = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.round(-lo / scale)
    return (torch.clamp(torch.round(w / scale) + zero, 0, qmax) - zero) * scale


def quantize_pow2(w: "torch.Tensor", bits: int, per_channel: bool = False) -> "torch.Tensor":
    """Signed powers of two: ``2^(bits-1) - 1`` exponents ``e_max - L + 1 .. e_max`` plus zero, where
    ``e_max = floor(log2(4/3 max|w|))`` (INQ's rule); rounding to the nearest level in the log domain,
    magnitudes below half the smallest level become 0."""
    levels = 2 ** (bits - 1) - 1
    dims = _reduce_dims(w, per_channel)
    amax = _amax(w, dims).clamp_min(1e-12)
    e_max = torch.floor(torch.log2(amax * 4.0 / 3.0))
    e_min = e_max - (levels - 1)
    mag = w.abs()
    e = torch.round(torch.log2(mag.clamp_min(1e-30)))
    e = torch.minimum(torch.maximum(e, e_min), e_max)
    q = torch.sign(w) * torch.pow(2.0, e)
    return torch.where(mag < torch.pow(2.0, e_min - 1), torch.zeros_like(w), q)


def quantize_binary(w: "torch.Tensor", per_channel: bool = True) -> "torch.Tensor":
    """XNOR-Net binarisation ``alpha * sign(w)`` (sign(0) taken as +1)."""
    dims = _reduce_dims(w, per_channel)
    alpha = w.abs().mean() if dims is None else w.abs().mean(dim=dims, keepdim=True)
    return torch.where(w >= 0, alpha, -alpha).to(w.dtype) * torch.ones_like(w)


def quantize_ternary(w: "torch.Tensor", per_channel: bool = True) -> "torch.Tensor":
    """Ternary weight networks: threshold ``0.7 mean|w|``, scale = mean of the kept magnitudes."""
    dims = _reduce_dims(w, per_channel)
    mean = w.abs().mean() if dims is None else w.abs().mean(dim=dims, keepdim=True)
    delta = 0.7 * mean
    keep = w.abs() > delta
    kept = (w.abs() * keep)
    cnt = keep.sum() if dims is None else keep.sum(dim=dims, keepdim=True)
    alpha = (kept.sum() if dims is None else kept.sum(dim=dims, keepdim=True)) / cnt.clamp_min(1)
    return torch.sign(w) * keep * alpha


def quantize_weight(w: "torch.Tensor", spec: Any) -> "torch.Tensor":
    """Project ``w`` onto the levels of a :class:`~accelsim.frontend.recipe.QuantSpec`.

    Zeros stay zero for ``int`` symmetric, ``pow2``, ``ternary`` (pruned weights remain pruned);
    ``binary`` has no zero level, so callers multiply by the pruning mask afterwards.
    """
    per_channel = spec.granularity == "channel"
    if spec.scheme == "int":
        return quantize_int(w, spec.weight_bits, spec.symmetric, per_channel)
    if spec.scheme == "pow2":
        return quantize_pow2(w, spec.weight_bits, per_channel)
    if spec.scheme == "binary":
        return quantize_binary(w, per_channel)
    if spec.scheme == "ternary":
        return quantize_ternary(w, per_channel)
    raise ValueError(f"unknown quantisation scheme {spec.scheme!r}")


def fake_quant_activation(x: "torch.Tensor", bits: int) -> "torch.Tensor":
    """Dynamic asymmetric per-tensor fake-quant of an activation (min/max of this batch), with a
    straight-through gradient."""
    if bits >= 16:
        return x
    lo = torch.minimum(x.detach().amin(), torch.zeros((), dtype=x.dtype))
    hi = torch.maximum(x.detach().amax(), torch.zeros((), dtype=x.dtype))
    qmax = 2 ** bits - 1
    scale = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.round(-lo / scale)
    q = (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero) * scale
    return x + (q - x).detach()


def distinct_levels(q: "torch.Tensor", per_channel: bool = False) -> int:
    """Number of distinct values in ``q`` (max over output channels when ``per_channel``)."""
    if per_channel and q.dim() > 1:
        return max(int(torch.unique(q[i]).numel()) for i in range(q.shape[0]))
    return int(torch.unique(q).numel())


def relative_error(w: "torch.Tensor", q: "torch.Tensor") -> float:
    """``||w - q||^2 / ||w||^2`` (the default quantisation sensitivity)."""
    den = float(w.detach().pow(2).sum())
    return float((w.detach() - q.detach()).pow(2).sum()) / den if den > 0 else 0.0


def assign_bits(layers: dict[str, dict[str, Any]], candidates: list[int], budget: str, fraction: float,
                act_bits: int = 8, sensitivity: Callable[[str, int], float] | None = None,
                granularity: str = "channel", method: str = "greedy",
                resolution: int = 4000) -> tuple[dict[str, int], dict[str, float]]:
    """Mixed-precision weight bits per layer under a cost budget.

    ``layers`` maps a name to ``{"weight": tensor, "macs": effective MACs, "nnz": non-zeros}``;
    ``budget`` is ``"bops"`` (sum MACs x b_w x b_a) or ``"size"`` (sum nnz x b_w) and the target is
    ``fraction`` of that cost with every layer at 8-bit weights and ``act_bits`` activations.
    Sensitivity of a layer at b bits defaults to the relative quantisation error of its weights
    (:func:`relative_error`, per-channel symmetric int); pass ``sensitivity(name, bits)`` for a
    measured one (e.g. loss increase on calibration data, :func:`.ptq.loss_sensitivity`).

    ``method="greedy"``: start at the largest candidate and repeatedly lower the layer with the
    smallest sensitivity increase per unit of cost saved. ``method="optimal"``: the
    multiple-choice knapsack ``min sum_l s(l, b_l)`` s.t. ``cost <= target`` solved exactly by
    dynamic programming over the cost discretised into ``resolution`` steps of ``target /
    resolution`` (every layer's cost rounded *up*, so the result always meets the budget; it is
    optimal up to that rounding). Sensitivities are assumed additive over layers (HAWQ-V3's
    integer-programming formulation, arXiv 2011.10680).

    Returns ``(bits, summary)``; summary has ``cost``, ``target``, ``reference`` and ``met`` (1/0).
    """
    from .recipe import QuantSpec

    cands = sorted(set(candidates), reverse=True)
    if not cands:
        raise ValueError("mixed precision needs at least one candidate bit-width")

    def unit_cost(name: str) -> float:
        info = layers[name]
        return float(info["macs"]) * act_bits if budget == "bops" else float(info["nnz"])

    sens: dict[tuple[str, int], float] = {}

    def s(name: str, b: int) -> float:
        key = (name, b)
        if key not in sens:
            if sensitivity is not None:
                sens[key] = float(sensitivity(name, b))
            else:
                w = layers[name]["weight"]
                spec = QuantSpec(weight_bits=max(b, 2), granularity=granularity) if b >= 2 else \
                    QuantSpec(weight_bits=1, scheme="binary", granularity=granularity)
                sens[key] = relative_error(w, quantize_weight(w.detach(), spec))
        return sens[key]

    bits = {name: cands[0] for name in layers}
    reference = sum(unit_cost(n) * 8 for n in layers)
    target = fraction * reference

    def cost() -> float:
        return sum(unit_cost(n) * bits[n] for n in layers)

    if method not in ("greedy", "optimal"):
        raise ValueError(f"method must be 'greedy' or 'optimal', got {method!r}")
    if method == "optimal":
        solved = _knapsack(list(layers), cands, unit_cost, s, target, resolution)
        if solved is not None:
            bits = solved
        else:  # infeasible even at the smallest bits: every layer at the smallest candidate
            bits = {name: cands[-1] for name in layers}
        final = cost()
        return bits, {"cost": final, "target": target, "reference": reference, "met": float(final <= target + 1e-9)}

    while cost() > target:
        best, best_ratio = None, math.inf
        for name in layers:
            idx = cands.index(bits[name])
            if idx + 1 >= len(cands):
                continue
            nb = cands[idx + 1]
            saved = unit_cost(name) * (bits[name] - nb)
            if saved <= 0:
                continue
            ratio = (s(name, nb) - s(name, bits[name])) / saved
            if ratio < best_ratio:
                best, best_ratio = (name, nb), ratio
        if best is None:
            break
        bits[best[0]] = best[1]
    final = cost()
    return bits, {"cost": final, "target": target, "reference": reference, "met": float(final <= target + 1e-9)}


def _knapsack(names: list[str], cands: list[int], unit_cost: Callable[[str], float], sens: Callable[[str, int], float],
              target: float, resolution: int) -> dict[str, int] | None:
    """Exact multiple-choice knapsack on integer cost units (see :func:`assign_bits`); None if infeasible."""
    import numpy as np

    if target <= 0:
        return None
    unit = target / resolution
    cap = resolution
    inf = float("inf")
    best = np.full(cap + 1, inf)
    best[0] = 0.0
    choice = []
    for name in names:
        new = np.full(cap + 1, inf)
        pick = np.full(cap + 1, -1, dtype=np.int64)
        for j, b in enumerate(cands):
            c = int(math.ceil(unit_cost(name) * b / unit - 1e-9))
            if c > cap:
                continue
            cand = np.full(cap + 1, inf)
            cand[c:] = best[:cap + 1 - c] + sens(name, b)
            better = cand < new
            new[better] = cand[better]
            pick[better] = j
        choice.append(pick)
        best = new
    end = int(np.argmin(best))
    if not np.isfinite(best[end]):
        return None
    out: dict[str, int] = {}
    for name, pick in zip(reversed(names), reversed(choice)):
        j = int(pick[end])
        out[name] = cands[j]
        end -= int(math.ceil(unit_cost(name) * cands[j] / unit - 1e-9))
    return out


__all__ = [
    "quantize_int", "quantize_pow2", "quantize_binary", "quantize_ternary", "quantize_weight",
    "fake_quant_activation", "distinct_levels", "relative_error", "assign_bits",
]
