"""Pruning masks: projections of a weight tensor onto a sparsity set (one function per granularity).

Every ``*_mask`` function takes a weight tensor in its natural layout (conv ``out x in/groups x kh
x kw``, linear ``out x in``, LSTM ``gates*hidden x (input + hidden)``) and returns a boolean mask
of the same shape that keeps the weights of largest magnitude under the constraint. The *GEMM
view* used by block / N:M / GS is ``w.reshape(out, -1)``: rows are outputs, columns the
reduction (``in/groups * kh * kw``, input-channel-major as PyTorch stores it).

:func:`project_sparsity` dispatches on a recipe spec; :func:`project` applies a mask. These are
the projection operators training-time methods (ADMM Z-steps, dynamic sparse training) reuse.
All functions are deterministic (ties are broken by index through a stable sort).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from ._deps import require_torch

torch = require_torch()


def _keep_count(total: int, density: float) -> int:
    return max(1, min(total, int(round(density * total))))


def _topk_mask(scores: "torch.Tensor", keep: int) -> "torch.Tensor":
    """Boolean mask of the ``keep`` largest entries of a flat score tensor (stable ties)."""
    flat = scores.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if keep >= flat.numel():
        mask[:] = True
    else:
        idx = torch.argsort(flat, descending=True, stable=True)[:keep]
        mask[idx] = True
    return mask.reshape(scores.shape)


def unstructured_mask(w: "torch.Tensor", density: float) -> "torch.Tensor":
    """Magnitude pruning (Han, Pool, Tran, Dally, "Learning both Weights and Connections for
    Efficient Neural Networks", NeurIPS 2015, arXiv 1506.02626): keep the ``density`` fraction of
    weights with the largest |w|."""
    return _topk_mask(w.detach().abs(), _keep_count(w.numel(), density))


def global_unstructured_masks(weights: dict[str, "torch.Tensor"], density: float) -> dict[str, "torch.Tensor"]:
    """Global magnitude pruning: one |w| threshold over all given tensors (each keeps >= 1 weight)."""
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    keep = _keep_count(flat.numel(), density)
    mask = _topk_mask(flat, keep)
    out, start = {}, 0
    for name, w in weights.items():
        m = mask[start:start + w.numel()].reshape(w.shape).clone()
        if not m.any():
            m.view(-1)[int(torch.argmax(w.detach().abs()))] = True
        out[name] = m
        start += w.numel()
    return out


def _norm(x: "torch.Tensor", dim: tuple[int, ...], norm: str) -> "torch.Tensor":
    return x.abs().sum(dim=dim) if norm == "l1" else x.pow(2).sum(dim=dim).sqrt()


def filter_mask(w: "torch.Tensor", density: float, norm: str = "l1", groups: int = 1) -> "torch.Tensor":
    """Filter pruning (Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets",
    ICLR 2017, arXiv 1608.08710): keep the output filters (rows) of largest L1/L2 norm. With
    ``groups > 1`` (a grouped conv's filters, ``groups`` consecutive blocks) every group keeps the
    same number, ``round(density * out / groups)`` (>= 1), so the shrunk conv stays grouped."""
    w2 = w.detach().reshape(w.shape[0], -1)
    scores = _norm(w2, (1,), norm)
    if groups > 1 and w.shape[0] % groups == 0:
        per = scores.reshape(groups, -1)
        k = _keep_count(per.shape[1], density)
        keep = torch.cat([_topk_mask(row, k) for row in per])
    else:
        keep = _topk_mask(scores, _keep_count(w.shape[0], density))
    return keep.view(-1, *([1] * (w.dim() - 1))).expand_as(w).clone()


def channel_mask(w: "torch.Tensor", density: float, norm: str = "l1") -> "torch.Tensor":
    """Input-channel pruning: keep the input channels (dim 1) of largest L1/L2 norm over all filters
    (the channel-selection criterion of He, Zhang, Sun, ICCV 2017, arXiv 1707.06168, by magnitude)."""
    dims = tuple(d for d in range(w.dim()) if d != 1)
    keep = _topk_mask(_norm(w.detach(), dims, norm), _keep_count(w.shape[1], density))
    shape = [1] * w.dim()
    shape[1] = -1
    return keep.view(shape).expand_as(w).clone()


def block_mask(w: "torch.Tensor", density: float, block: tuple[int, int] = (4, 4), norm: str = "l2") -> "torch.Tensor":
    """Block-structured pruning (BLK-REW: Ma et al., arXiv 2001.08357; Li et al., EMNLP Findings 2020,
    arXiv 2009.08065): tile the GEMM view into ``bh x bw`` blocks (edge blocks may be smaller) and
    keep the ``density`` fraction of blocks with the largest norm. The exact kept fraction of
    weights can differ slightly from ``density`` when edge blocks are partial."""
    bh, bw = block
    w2 = w.detach().reshape(w.shape[0], -1)
    rows, cols = w2.shape
    nbr, nbc = math.ceil(rows / bh), math.ceil(cols / bw)
    padded = torch.zeros(nbr * bh, nbc * bw, dtype=w2.dtype, device=w2.device)
    padded[:rows, :cols] = w2
    blocks = padded.view(nbr, bh, nbc, bw).permute(0, 2, 1, 3)
    scores = _norm(blocks, (2, 3), norm)
    keep = _topk_mask(scores, _keep_count(nbr * nbc, density))
    full = keep[:, None, :, None].expand(nbr, bh, nbc, bw).reshape(nbr * bh, nbc * bw)[:rows, :cols]
    return full.reshape(w.shape).clone()


def nm_mask(w: "torch.Tensor", n: int, m: int) -> "torch.Tensor":
    """N:M fine-grained structured sparsity (Mishra et al., "Accelerating Sparse Deep Neural Networks",
    arXiv 2104.08378, NVIDIA Ampere 2:4): in every group of ``m`` consecutive weights along the
    reduction axis keep the ``n`` largest. The reduction length must be a multiple of ``m``."""
    w2 = w.detach().reshape(w.shape[0], -1)
    if w2.shape[1] % m:
        raise ValueError(f"N:M {n}:{m} needs the reduction length ({w2.shape[1]}) to be a multiple of {m}")
    groups = w2.abs().reshape(-1, m)
    idx = torch.argsort(groups, dim=1, descending=True, stable=True)[:, :n]
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask.reshape(w.shape)


# --- PatDNN kernel patterns ----------------------------------------------------------------------

def candidate_patterns(entries: int = 4, kh: int = 3, kw: int = 3) -> "torch.Tensor":
    """All ``kh x kw`` patterns with ``entries`` non-zeros that include the centre (PatDNN: 56 for 4/9)."""
    centre = (kh // 2) * kw + kw // 2
    others = [i for i in range(kh * kw) if i != centre]
    pats = []
    for combo in combinations(others, entries - 1):
        p = torch.zeros(kh * kw, dtype=torch.bool)
        p[list(combo) + [centre]] = True
        pats.append(p)
    return torch.stack(pats)


@dataclass
class PatternResult:
    """Mask plus the pattern library and per-kernel assignment (-1 = kernel removed)."""

    mask: "torch.Tensor"
    library: "torch.Tensor"  # num_patterns x kh x kw bool
    assignment: "torch.Tensor"  # out x in/groups int (index into library, -1 removed)
    info: dict[str, Any] = field(default_factory=dict)


def pattern_library(weights: list["torch.Tensor"], entries: int = 4, num_patterns: int = 8) -> "torch.Tensor":
    """PatDNN pattern selection (Niu et al., "PatDNN: Achieving Real-Time DNN Execution on Mobile
    Devices with Pattern-based Weight Pruning", ASPLOS 2020, arXiv 2001.00138): for every 3x3
    kernel pick the candidate pattern keeping the largest L2 norm, count how often each candidate
    wins, and keep the ``num_patterns`` most frequent ones (ties by candidate index)."""
    cands = candidate_patterns(entries).to(torch.float32)  # P x 9
    counts = torch.zeros(cands.shape[0], dtype=torch.int64)
    for w in weights:
        k = w.detach().reshape(-1, 9).to(torch.float32).pow(2)
        best = torch.argmax(k @ cands.T, dim=1)
        counts += torch.bincount(best, minlength=cands.shape[0])
    order = torch.argsort(counts, descending=True, stable=True)[:num_patterns]
    return cands[order].bool().reshape(-1, 3, 3)


def pattern_mask(w: "torch.Tensor", library: "torch.Tensor", kernel_density: float = 1.0) -> PatternResult:
    """Assign each 3x3 kernel the library pattern keeping the most energy, then connectivity pruning
    (PCONV: Ma et al., AAAI 2020, arXiv 1909.05073): remove whole kernels with the smallest
    remaining L2 norm so that ``kernel_density`` of the kernels stay."""
    if tuple(w.shape[2:]) != (3, 3):
        raise ValueError(f"pattern pruning needs 3x3 kernels, got {tuple(w.shape[2:])}")
    o, i = w.shape[:2]
    k = w.detach().reshape(o * i, 9).to(torch.float32).pow(2)
    lib = library.reshape(-1, 9).to(torch.float32)
    energy = k @ lib.T  # kernels x P
    best = torch.argmax(energy, dim=1)
    kept_energy = energy.gather(1, best[:, None]).squeeze(1)
    keep_k = _topk_mask(kept_energy, _keep_count(o * i, kernel_density))
    mask = lib[best].bool() & keep_k[:, None]
    assignment = torch.where(keep_k, best, torch.full_like(best, -1)).reshape(o, i)
    return PatternResult(mask.reshape(w.shape), library.clone(), assignment,
                         {"kernels_kept": int(keep_k.sum()), "kernels": o * i})


# --- gather-scatter patterns -----------------------------------------------------------------------

@dataclass
class GSResult:
    """GS mask and its compact format: per group, every row keeps ``group_nnz[g]`` entries."""

    mask: "torch.Tensor"
    group_nnz: "torch.Tensor"  # int per group of rows
    group_rows: int


def gs_mask(w: "torch.Tensor", density: float, group_rows: int = 8) -> GSResult:
    """Load-balanced gather-scatter patterns (Sun, Qin, Zhang, Ma, Li, Luo, Zhao, Chen, Xie,
    "Load-balanced Gather-scatter Patterns for Sparse Deep Neural Networks", arXiv 2112.10898).

    Rows of the GEMM view are grouped ``group_rows`` at a time (one row per vector lane); inside a
    group every row keeps the same number ``k_g`` of its largest weights, so each gather/scatter
    vector instruction carries one non-zero per lane. ``k_g`` differs between groups: the budget
    ``density * rows * cols`` is spread greedily by the marginal |w| *per kept weight* a group
    gains from one more non-zero per row (the gains are non-increasing in ``k_g``, so picking the
    largest gain per unit cost is the greedy fractional-knapsack order). Ranking by the total gain
    of a step would starve a partial last group (fewer rows, so a smaller total per step) although
    its weights are as large as anyone's."""
    w2 = w.detach().reshape(w.shape[0], -1).abs().to(torch.float32)
    rows, cols = w2.shape
    ngroups = math.ceil(rows / group_rows)
    pad = ngroups * group_rows - rows
    srt, order = torch.sort(w2, dim=1, descending=True, stable=True)
    if pad:
        srt = torch.cat([srt, torch.zeros(pad, cols, device=srt.device)], dim=0)
    gains = srt.reshape(ngroups, group_rows, cols).sum(dim=1)  # ngroups x cols, non-increasing
    rows_in_group = torch.full((ngroups,), group_rows, dtype=torch.int64, device=srt.device)
    if pad:
        rows_in_group[-1] = group_rows - pad
    budget = _keep_count(rows * cols, density)
    # pick the largest gains per weight; a group's step j costs rows_in_group[g] weights
    cost = rows_in_group[:, None].expand(ngroups, cols).reshape(-1)
    per_weight = gains.reshape(-1) / cost.to(gains.dtype)
    pick = torch.argsort(per_weight, descending=True, stable=True)
    csum = torch.cumsum(cost[pick], dim=0)
    take = pick[csum <= budget]
    if take.numel() == 0:
        take = pick[:1]
    chosen = torch.zeros(ngroups * cols, dtype=torch.bool, device=srt.device)
    chosen[take] = True
    group_nnz = chosen.reshape(ngroups, cols).sum(dim=1)
    k_row = group_nnz.repeat_interleave(group_rows)[:rows]
    rank_mask = torch.arange(cols, device=srt.device)[None, :] < k_row[:, None]  # in sorted order
    mask2 = torch.zeros(rows, cols, dtype=torch.bool, device=srt.device)
    mask2.scatter_(1, order, rank_mask)
    return GSResult(mask2.reshape(w.shape), group_nnz, group_rows)


def gs_compact(w: "torch.Tensor", res: GSResult) -> dict[str, Any]:
    """The GS compact format: ``values`` and ``indices`` (column of each kept weight), row-major
    inside each row, rows in order; ``group_nnz`` gives the non-zeros per row of every group."""
    import numpy as np

    w2 = w.detach().reshape(w.shape[0], -1)
    m2 = res.mask.reshape(w.shape[0], -1)
    idx = m2.nonzero(as_tuple=False)
    values = w2[idx[:, 0], idx[:, 1]].cpu().numpy().astype(np.float32)
    return {"values": values, "indices": idx[:, 1].cpu().numpy().astype(np.int32),
            "group_nnz": res.group_nnz.cpu().numpy().astype(np.int32),
            "group_rows": np.array(res.group_rows, dtype=np.int32)}


# --- dispatch ----------------------------------------------------------------------------------------

def project_sparsity(w: "torch.Tensor", spec: Any, library: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Mask of ``w`` for a prune spec of :mod:`.recipe` (``kind`` decides the granularity).

    ``library`` is the PatDNN pattern library for ``kind: pattern`` (built from ``w`` alone when
    omitted). Global unstructured pruning needs all tensors: use :func:`global_unstructured_masks`.
    """
    kind = spec.kind
    if kind == "unstructured":
        return unstructured_mask(w, spec.density)
    if kind == "filter":
        return filter_mask(w, spec.density, spec.norm)
    if kind == "channel":
        return channel_mask(w, spec.density, spec.norm)
    if kind == "block":
        return block_mask(w, spec.density, tuple(spec.block), spec.norm)
    if kind == "nm":
        return nm_mask(w, spec.n, spec.m)
    if kind == "pattern":
        lib = library if library is not None else pattern_library([w], spec.entries, spec.num_patterns)
        return pattern_mask(w, lib, spec.kernel_density).mask
    if kind == "gs":
        return gs_mask(w, spec.density, spec.group_rows).mask
    raise ValueError(f"unknown pruning kind {kind!r}")


def project(w: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Euclidean projection of ``w`` onto the masked support (zero the pruned weights)."""
    return w * mask.to(w.dtype)


def block_group_lasso(weights: list["torch.Tensor"], block: tuple[int, int] = (4, 4),
                      reweight: list["torch.Tensor"] | None = None, eps: float = 1e-3) -> tuple["torch.Tensor", list["torch.Tensor"]]:
    """Reweighted group-lasso regulariser over ``bh x bw`` blocks (Wen et al., NeurIPS 2016,
    arXiv 1608.03665; reweighting as in BLK-REW, arXiv 2001.08357 / Candes et al. 2008).

    Returns ``(penalty, new_weights)``: penalty = sum_g P_g * ||W_g||_F with the given per-block
    factors ``reweight`` (1 when None); ``new_weights`` are P_g = 1 / (||W_g|| + eps) from the
    current weights, to pass back in on the next reweighting step. Add ``lam * penalty`` to the
    loss while fine-tuning; small blocks are pushed towards zero, then :func:`block_mask` prunes.
    """
    bh, bw = block
    total = torch.zeros((), dtype=torch.float32)
    new = []
    for i, w in enumerate(weights):
        w2 = w.reshape(w.shape[0], -1)
        rows, cols = w2.shape
        nbr, nbc = math.ceil(rows / bh), math.ceil(cols / bw)
        padded = torch.nn.functional.pad(w2, (0, nbc * bw - cols, 0, nbr * bh - rows))
        norms = padded.reshape(nbr, bh, nbc, bw).pow(2).sum(dim=(1, 3)).add(1e-12).sqrt()
        factor = reweight[i] if reweight is not None else torch.ones_like(norms)
        total = total + (factor * norms).sum()
        new.append(1.0 / (norms.detach() + eps))
    return total, new


__all__ = [
    "unstructured_mask", "global_unstructured_masks", "filter_mask", "channel_mask", "block_mask", "nm_mask",
    "candidate_patterns", "pattern_library", "pattern_mask", "PatternResult", "gs_mask", "gs_compact", "GSResult",
    "project_sparsity", "project", "block_group_lasso",
]
