"""Low-rank factorisation of linear and conv layers, rank selection and a nuclear-norm regulariser.

- Linear: truncated SVD ``W (out x in) ~ U_r S_r V_r^T`` exported as two layers ``v`` (in -> r) and
  ``u`` (r -> out) (Denton et al., "Exploiting Linear Structure Within Convolutional Networks for
  Efficient Evaluation", NeurIPS 2014, arXiv 1404.0736).
- Conv, Tucker-2 (Kim et al., "Compression of Deep Convolutional Neural Networks for Fast and Low
  Power Mobile Applications", ICLR 2016, arXiv 1511.06530): ``W (K x C x kh x kw) ~ G x_0 U0 x_1 U1``,
  exported as ``first`` 1x1 (C -> r_in), ``core`` kh x kw (r_in -> r_out, original stride/padding)
  and ``last`` 1x1 (r_out -> K). Factors from a truncated HOSVD refined by one HOOI sweep.
- Conv, channel decomposition (Zhang et al., "Accelerating Very Deep Convolutional Networks for
  Classification and Detection", TPAMI 2016, arXiv 1505.06798, without the non-linear refinement):
  SVD of the ``K x (C kh kw)`` unfolding, exported as ``core`` kh x kw (C -> r) and ``last`` 1x1 (r -> K).
- Rank: smallest rank keeping ``energy`` of the squared singular values, a fixed rank/fraction, or
  the analytic empirical VBMF rule (Nakajima, Sugiyama, Babacan, Tomioka, "Global analytic solution
  of fully-observed variational Bayesian matrix factorization", JMLR 2013).
- :func:`nuclear_norm_penalty`: sum of nuclear norms of the layer unfoldings, added to the loss to
  shrink ranks during training (NRMF: Ran, Lin, So, Chesi, Wong, "Exploiting Elasticity in Tensor
  Ranks for Compressing Neural Networks", ICPR 2020, arXiv 2105.04218); :func:`svt` is its
  proximal step (singular-value soft-thresholding).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._deps import require_torch

torch = require_torch()
nn = torch.nn


# --- rank selection ------------------------------------------------------------------------------

def rank_by_energy(s: np.ndarray | "torch.Tensor", energy: float) -> int:
    """Smallest r with sum(s[:r]^2) >= energy * sum(s^2)."""
    s2 = np.asarray(s, dtype=np.float64) ** 2
    total = s2.sum()
    if total <= 0:
        return 1
    c = np.cumsum(s2) / total
    return int(min(len(s2), np.searchsorted(c, energy - 1e-12) + 1))


def _tau(x: np.ndarray, alpha: float) -> np.ndarray:
    return 0.5 * (x - (1 + alpha) + np.sqrt(np.maximum((x - (1 + alpha)) ** 2 - 4 * alpha, 0.0)))


def vbmf_rank(y: np.ndarray | "torch.Tensor") -> int:
    """Rank of the empirical VBMF solution of matrix ``y`` (noise variance estimated by minimising
    the free energy, Nakajima et al. JMLR 2013, Theorem 2 / Eq. 28), as in the EVBMF reference code."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y, dtype=np.float64)
    if y.shape[0] > y.shape[1]:
        y = y.T
    L, M = y.shape
    s = np.sqrt(np.clip(np.linalg.eigvalsh(y @ y.T)[::-1], 0.0, None))
    H = L
    alpha = L / M
    tauubar = 2.5129 * math.sqrt(alpha)
    xubar = (1 + tauubar) * (1 + alpha / tauubar)
    residual = 0.0
    eh_ub = int(min(math.ceil(L / (1 + alpha)) - 1, H)) - 1
    eh_ub = max(min(eh_ub, H - 2), -1)
    upper = (np.sum(s ** 2) + residual) / (L * M)
    lower = max(s[eh_ub + 1] ** 2 / (M * xubar), np.mean(s[eh_ub + 1:] ** 2) / M)
    if not upper > lower:
        return 1

    def free_energy(sigma2: float) -> float:
        x = s ** 2 / (M * sigma2)
        z1 = x[x > xubar]
        z2 = x[x <= xubar]
        tz1 = _tau(z1, alpha)
        obj = np.sum(z2 - np.log(np.maximum(z2, 1e-300))) + np.sum(z1 - tz1)
        obj += np.sum(np.log((tz1 + 1) / z1)) + alpha * np.sum(np.log(tz1 / alpha + 1))
        return float(obj + residual / (M * sigma2) + (L - H) * math.log(sigma2))

    sigma2 = minimize_scalar(free_energy, bounds=(lower, upper), method="bounded").x
    threshold = math.sqrt(M * sigma2 * (1 + tauubar) * (1 + alpha / tauubar))
    return max(1, int(np.sum(s > threshold)))


def choose_rank(mat: "torch.Tensor", spec: Any) -> int:
    """Rank of the 2-D ``mat`` for a :class:`~accelsim.frontend.recipe.FactorizeSpec`."""
    full = min(mat.shape)
    if spec.rank_rule == "fixed":
        r = spec.rank if spec.rank is not None else int(round(spec.rank_fraction * full))
    elif spec.rank_rule == "vbmf":
        r = vbmf_rank(mat)
    else:
        r = rank_by_energy(_singular_values(mat.detach().double()), spec.energy)
    return max(1, min(full, r))


def _gram_eig(mat: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor", bool]:
    """Eigen-decomposition of the smaller Gram matrix of ``mat`` (descending): (values, vectors, left)."""
    left = mat.shape[0] <= mat.shape[1]
    g = mat @ mat.T if left else mat.T @ mat
    vals, vecs = torch.linalg.eigh(g)
    return vals.flip(0).clamp_min(0.0), vecs.flip(1), left


def truncated(mat: "torch.Tensor", spec: Any) -> tuple["torch.Tensor", "torch.Tensor"]:
    """``(L, R)`` with ``mat ~ L @ R``, rank from ``spec``, singular values split evenly (``U S^1/2``,
    ``S^1/2 V^T``). Computed from the eigenvectors of the smaller Gram matrix (fast for the
    wide/tall unfoldings of conv kernels)."""
    mat = mat.detach().double()
    vals, vecs, left = _gram_eig(mat)
    s = vals.sqrt()
    full = min(mat.shape)
    if spec.rank_rule == "energy":
        r = rank_by_energy(s.cpu().numpy(), spec.energy)
    else:
        r = choose_rank(mat, spec)
    r = max(1, min(full, r))
    s_r = s[:r].clamp_min(1e-12)
    if left:
        u = vecs[:, :r]
        return u * s_r.sqrt()[None, :], (u.T @ mat) / s_r.sqrt()[:, None]
    v = vecs[:, :r]
    return (mat @ v) / s_r.sqrt()[None, :], v.T * s_r.sqrt()[:, None]


# --- factorised modules -------------------------------------------------------------------------

class LowRankLinear(nn.Module):
    """``u(v(x))``: ``v`` in -> rank (no bias), ``u`` rank -> out (original bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.v = nn.Linear(in_features, rank, bias=False)
        self.u = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.u(self.v(x))


class Tucker2Conv(nn.Module):
    """``last(core(first(x)))``: 1x1 C -> r_in, kh x kw r_in -> r_out, 1x1 r_out -> K."""

    def __init__(self, conv: "nn.Conv2d", r_in: int, r_out: int):
        super().__init__()
        self.first = nn.Conv2d(conv.in_channels, r_in, 1, bias=False)
        self.core = nn.Conv2d(r_in, r_out, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                              dilation=conv.dilation, bias=False)
        self.last = nn.Conv2d(r_out, conv.out_channels, 1, bias=conv.bias is not None)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.last(self.core(self.first(x)))


class ChannelDecomposedConv(nn.Module):
    """``last(core(x))``: kh x kw C -> r (original stride/padding), 1x1 r -> K."""

    def __init__(self, conv: "nn.Conv2d", rank: int):
        super().__init__()
        self.core = nn.Conv2d(conv.in_channels, rank, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                              dilation=conv.dilation, bias=False)
        self.last = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.last(self.core(x))


FACTORIZED_TYPES = (LowRankLinear, Tucker2Conv, ChannelDecomposedConv)


def factorize_linear(layer: "nn.Linear", spec: Any) -> "LowRankLinear":
    """Truncated-SVD replacement of ``layer`` (rank from ``spec``)."""
    left, right = truncated(layer.weight, spec)
    r = left.shape[1]
    out = LowRankLinear(layer.in_features, layer.out_features, r, bias=layer.bias is not None)
    with torch.no_grad():
        out.v.weight.copy_(right.to(layer.weight.dtype))
        out.u.weight.copy_(left.to(layer.weight.dtype))
        if layer.bias is not None:
            out.u.bias.copy_(layer.bias.detach())
    return out


def _unfold(t: "torch.Tensor", mode: int) -> "torch.Tensor":
    return t.movedim(mode, 0).reshape(t.shape[mode], -1)


def _leading(mat: "torch.Tensor", r: int) -> "torch.Tensor":
    """Leading r left singular vectors, from the eigenvectors of the (small) Gram matrix."""
    _, vecs = torch.linalg.eigh(mat @ mat.T)
    return vecs.flip(1)[:, :r]


def _singular_values(mat: "torch.Tensor") -> np.ndarray:
    small = mat @ mat.T if mat.shape[0] <= mat.shape[1] else mat.T @ mat
    ev = torch.linalg.eigvalsh(small.double()).flip(0).clamp_min(0.0)
    return ev.sqrt().cpu().numpy()


def tucker2(w: "torch.Tensor", r_out: int, r_in: int, sweeps: int = 1) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """Tucker-2 of a conv kernel: ``(core r_out x r_in x kh x kw, U0 K x r_out, U1 C x r_in)``."""
    w = w.detach().double()
    u0 = _leading(_unfold(w, 0), r_out)
    u1 = _leading(_unfold(w, 1), r_in)
    for _ in range(sweeps):  # HOOI
        y = torch.einsum("kchw,ci->kihw", w, u1)
        u0 = _leading(_unfold(y, 0), r_out)
        y = torch.einsum("kchw,ko->ochw", w, u0)
        u1 = _leading(_unfold(y, 1), r_in)
    core = torch.einsum("kchw,ko,ci->oihw", w, u0, u1)
    return core, u0, u1


def factorize_conv(conv: "nn.Conv2d", spec: Any) -> "nn.Module":
    """Tucker-2 (``method`` tucker2, or auto for kernels > 1x1) or channel decomposition (1x1 / ``channel``)."""
    w = conv.weight.detach()
    method = spec.method
    if method == "auto":
        method = "tucker2" if conv.kernel_size != (1, 1) else "channel"
    if method in ("channel", "svd"):
        left, right = truncated(_unfold(w.double(), 0), spec)
        r = left.shape[1]
        out = ChannelDecomposedConv(conv, r)
        with torch.no_grad():
            out.core.weight.copy_(right.reshape(r, *w.shape[1:]).to(w.dtype))
            out.last.weight.copy_(left.reshape(w.shape[0], r, 1, 1).to(w.dtype))
            if conv.bias is not None:
                out.last.bias.copy_(conv.bias.detach())
        return out
    r_out = choose_rank(_unfold(w.double(), 0), spec)
    r_in = choose_rank(_unfold(w.double(), 1), spec)
    core, u0, u1 = tucker2(w, r_out, r_in)
    out = Tucker2Conv(conv, r_in, r_out)
    with torch.no_grad():
        out.first.weight.copy_(u1.T.reshape(r_in, -1, 1, 1).to(w.dtype))
        out.core.weight.copy_(core.to(w.dtype))
        out.last.weight.copy_(u0.reshape(w.shape[0], r_out, 1, 1).to(w.dtype))
        if conv.bias is not None:
            out.last.bias.copy_(conv.bias.detach())
    return out


def factor_record(module: "nn.Module") -> dict[str, Any]:
    """The IR factorisation fields of a factorised module (``kind`` lowrank/tucker, rank/ranks)."""
    if isinstance(module, LowRankLinear):
        return {"kind": "lowrank", "rank": module.v.out_features}
    if isinstance(module, ChannelDecomposedConv):
        return {"kind": "lowrank", "rank": module.core.out_channels}
    if isinstance(module, Tucker2Conv):
        return {"kind": "tucker", "ranks": (module.core.out_channels, module.core.in_channels)}
    raise TypeError(f"{type(module).__name__} is not a factorised module")


def parts(module: "nn.Module") -> list[str]:
    """Child names of the compute parts of a factorised module, in execution order."""
    if isinstance(module, LowRankLinear):
        return ["v", "u"]
    if isinstance(module, ChannelDecomposedConv):
        return ["core", "last"]
    return ["first", "core", "last"]


# --- training-time rank reduction -------------------------------------------------------------

def nuclear_norm_penalty(weights: list["torch.Tensor"]) -> "torch.Tensor":
    """NRMF-style regulariser: sum over layers of ||W_(0)||_* (+ ||W_(1)||_* for conv kernels), the
    nuclear norms of the output- and input-channel unfoldings. Differentiable (``svdvals``)."""
    total = torch.zeros((), dtype=torch.float32)
    for w in weights:
        total = total + torch.linalg.svdvals(_unfold(w, 0)).sum()
        if w.dim() == 4:
            total = total + torch.linalg.svdvals(_unfold(w, 1)).sum()
    return total


def svt(mat: "torch.Tensor", tau: float) -> "torch.Tensor":
    """Singular-value soft-thresholding: the proximal operator of ``tau * ||.||_*`` on a matrix."""
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    return (u * torch.clamp(s - tau, min=0.0)[None, :]) @ vh


__all__ = [
    "rank_by_energy", "vbmf_rank", "choose_rank", "LowRankLinear", "Tucker2Conv", "ChannelDecomposedConv",
    "FACTORIZED_TYPES", "truncated", "factorize_linear", "factorize_conv", "tucker2", "factor_record", "parts",
    "nuclear_norm_penalty", "svt",
]
