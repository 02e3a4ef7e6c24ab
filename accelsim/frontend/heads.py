"""Attention-head pruning of ``nn.MultiheadAttention`` (recipe ``prune: {kind: head, density}``).

Criterion (stated; data-free): the importance of head ``h`` is the squared L2 norm (``criterion:
l1``: the L1 norm) of all of its parameters -- its rows of the Q, K and V projections (weights and
biases) and its ``head_dim`` columns of the output projection. Every attention module keeps the
``round(density * num_heads)`` (>= 1) heads of largest importance (ties: lower index first).
Magnitude is a stand-in for the gradient-based head importance of Michel, Levy, Neubig, "Are
Sixteen Heads Really Better than One?", NeurIPS 2019, arXiv 1905.10650, which needs data.

Masking: a removed head's Q, K and V rows and biases are zeroed (a parametrisation of
``in_proj_weight`` / ``q,k,v_proj_weight`` and ``in_proj_bias``). Its value vectors are then zero,
so its context is zero and the output projection's columns for it multiply zeros: the masked
module computes exactly what a module without that head computes (``bias_k`` / ``bias_v`` are not
supported). :class:`PrunedMultiheadAttention` is that smaller module: ``embed_dim`` and
``head_dim`` kept, ``num_heads`` = the kept heads, projections ``embed_dim -> kept * head_dim`` and
``kept * head_dim -> embed_dim``. The exporter models both the same way (Q/K/V projections with
``kept * head_dim`` outputs, scores / softmax / context over the kept heads, ``out_proj`` with
``kept * head_dim`` inputs).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._deps import require_torch
from .pruning import _keep_count, _topk_mask

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


def _raw(m: "nn.Module", p: str) -> "torch.Tensor | None":
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(m, p):
        return getattr(m.parametrizations, p).original
    return getattr(m, p, None)


def projection_params(m: "nn.MultiheadAttention") -> list[str]:
    """The Q/K/V parameters a head mask applies to (packed or separate weights, bias if any)."""
    ps = ["in_proj_weight"] if m._qkv_same_embed_dim else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
    return ps + (["in_proj_bias"] if m.in_proj_bias is not None else [])


def check_supported(m: "nn.MultiheadAttention") -> str | None:
    """Why head pruning cannot apply to ``m`` (None if it can)."""
    if m.bias_k is not None or m.bias_v is not None:
        return "head pruning of attention with add_bias_kv is not supported"
    return None


def head_scores(m: "nn.MultiheadAttention", criterion: str = "l2") -> "torch.Tensor":
    """Importance of each head (see the module doc)."""
    H, d, E = m.num_heads, m.head_dim, m.embed_dim

    def score(t: "torch.Tensor") -> "torch.Tensor":
        return t.abs() if criterion == "l1" else t.pow(2)

    with torch.no_grad():
        s = torch.zeros(H, dtype=torch.float64)
        if m._qkv_same_embed_dim:
            w = _raw(m, "in_proj_weight")
            s += score(w.double()).reshape(3, H, d, -1).sum(dim=(0, 2, 3))
        else:
            for p in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                s += score(_raw(m, p).double()).reshape(H, d, -1).sum(dim=(1, 2))
        b = _raw(m, "in_proj_bias")
        if b is not None:
            s += score(b.double()).reshape(3, H, d).sum(dim=(0, 2))
        wo = _raw(m.out_proj, "weight")
        s += score(wo.double()).reshape(E, H, d).sum(dim=(0, 2))
    return s


def keep_heads(m: "nn.MultiheadAttention", density: float, criterion: str = "l2") -> np.ndarray:
    """Boolean keep vector over the heads of ``m``."""
    return _topk_mask(head_scores(m, criterion), _keep_count(m.num_heads, density)).numpy()


def head_masks(m: "nn.MultiheadAttention", keep: np.ndarray) -> dict[str, "torch.Tensor"]:
    """Masks of the Q/K/V parameters of ``m`` that zero the removed heads' rows."""
    d = m.head_dim
    rows = torch.as_tensor(np.repeat(keep, d), dtype=torch.bool)  # E rows of one of Q/K/V
    out: dict[str, torch.Tensor] = {}
    for p in projection_params(m):
        t = _raw(m, p)
        r = rows.repeat(3) if p in ("in_proj_weight", "in_proj_bias") else rows
        mask = r.to(t.device)
        out[p] = (mask[:, None].expand_as(t) if t.dim() == 2 else mask).clone()
    return out


def kept_heads(unit: Any, m: "nn.MultiheadAttention") -> np.ndarray | None:
    """The keep vector a head-pruned unit's masks encode (None: not head-pruned)."""
    if unit is None or unit.prune is None or getattr(unit.prune, "kind", None) != "head":
        return None
    p = projection_params(m)[0]
    mask = unit.masks.get(p)
    if mask is None:
        return None
    rows = mask.reshape(mask.shape[0], -1).any(dim=1).cpu().numpy()
    if p == "in_proj_weight":
        rows = rows[:m.embed_dim]
    return rows.reshape(m.num_heads, m.head_dim).any(axis=1)


class PrunedMultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with fewer heads than ``embed_dim / head_dim`` (built by
    :func:`prune_heads`). Same call signature and outputs as the module it was cut from (dropout
    on the attention weights in training; ``need_weights`` averages over the kept heads unless
    ``average_attn_weights=False``)."""

    def __init__(self, src: "nn.MultiheadAttention", keep: np.ndarray):
        nn.Module.__init__(self)
        H, d, E = src.num_heads, src.head_dim, src.embed_dim
        idx = torch.as_tensor(np.flatnonzero(np.repeat(keep, d)))
        inner = len(idx)
        self.embed_dim, self.kdim, self.vdim = E, src.kdim, src.vdim
        self._qkv_same_embed_dim = src._qkv_same_embed_dim
        self.num_heads, self.head_dim, self.dropout = int(keep.sum()), d, src.dropout
        self.batch_first, self.bias_k, self.bias_v, self.add_zero_attn = src.batch_first, None, None, src.add_zero_attn
        self.original_num_heads = H
        with torch.no_grad():
            if src._qkv_same_embed_dim:
                w = src.in_proj_weight.detach()
                packed = torch.cat([w[i * E:(i + 1) * E][idx] for i in range(3)])
                self.in_proj_weight = nn.Parameter(packed.clone())
                self.register_parameter("q_proj_weight", None)
                self.register_parameter("k_proj_weight", None)
                self.register_parameter("v_proj_weight", None)
            else:
                self.register_parameter("in_proj_weight", None)
                for p in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    setattr(self, p, nn.Parameter(getattr(src, p).detach()[idx].clone()))
            if src.in_proj_bias is not None:
                b = src.in_proj_bias.detach()
                self.in_proj_bias = nn.Parameter(torch.cat([b[i * E:(i + 1) * E][idx] for i in range(3)]).clone())
            else:
                self.register_parameter("in_proj_bias", None)
            op = src.out_proj
            self.out_proj = nn.Linear(inner, E, op.bias is not None, device=op.weight.device, dtype=op.weight.dtype)
            self.out_proj.weight.copy_(op.weight.detach()[:, idx])
            if op.bias is not None:
                self.out_proj.bias.copy_(op.bias.detach())

    def _proj(self, x: "torch.Tensor", i: int) -> "torch.Tensor":
        inner = self.num_heads * self.head_dim
        b = self.in_proj_bias[i * inner:(i + 1) * inner] if self.in_proj_bias is not None else None
        if self._qkv_same_embed_dim:
            return F.linear(x, self.in_proj_weight[i * inner:(i + 1) * inner], b)
        return F.linear(x, (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i], b)

    def forward(self, query: "torch.Tensor", key: "torch.Tensor", value: "torch.Tensor",  # type: ignore[override]
                key_padding_mask: "torch.Tensor | None" = None, need_weights: bool = True,
                attn_mask: "torch.Tensor | None" = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        L, B, _ = query.shape
        Hk, d = self.num_heads, self.head_dim
        if self._qkv_same_embed_dim and query is key and key is value:
            inner = Hk * d
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).split(inner, dim=-1)
        else:
            q, k, v = self._proj(query, 0), self._proj(key, 1), self._proj(value, 2)
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros((1,) + k.shape[1:])])
            v = torch.cat([v, v.new_zeros((1,) + v.shape[1:])])
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (0, 1))
        S = k.shape[0]
        q = q.reshape(L, B, Hk, d).permute(1, 2, 0, 3)  # B x H x L x d
        k = k.reshape(S, B, Hk, d).permute(1, 2, 0, 3)
        v = v.reshape(S, B, Hk, d).permute(1, 2, 0, 3)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / float(d) ** 0.5)
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=q.device).triu(1)
        if attn_mask is not None:
            am = attn_mask.reshape(B, -1, L, S) if attn_mask.dim() == 3 else attn_mask
            scores = scores.masked_fill(am, float("-inf")) if am.dtype == torch.bool else scores + am
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            scores = scores.masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool else scores + kpm
        p = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            p = F.dropout(p, self.dropout)
        ctx = torch.matmul(p, v)  # B x H x L x d
        ctx = ctx.permute(2, 0, 1, 3).reshape(L, B, Hk * d)
        out = F.linear(ctx, self.out_proj.weight, self.out_proj.bias)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = p.mean(dim=1) if average_attn_weights else p
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights


def prune_heads(m: "nn.MultiheadAttention", keep: np.ndarray) -> PrunedMultiheadAttention:
    """A new module with only the kept heads of ``m`` (``m`` is not changed)."""
    return PrunedMultiheadAttention(m, np.asarray(keep, dtype=bool))


__all__ = ["head_scores", "keep_heads", "head_masks", "kept_heads", "prune_heads", "PrunedMultiheadAttention",
           "projection_params", "check_supported"]
