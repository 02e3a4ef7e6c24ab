"""numba kernels of :mod:`.djpq` (learnable quantiser, BOPs + KL penalty).

Each has a plain-torch reference in :mod:`.djpq` that autograd differentiates; the tests check the
kernels' values and gradients against it. They exist because the per-step Python/autograd
overhead of ~30 small ops per layer would dominate training the small digits networks.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

LN2 = math.log(2.0)


@njit(cache=True)
def dq_forward(x: np.ndarray, d: np.float32, qmax: np.float32, signed: bool, out: np.ndarray) -> None:  # pragma: no cover
    """``out = d * round(clip(x, lo, qmax) / d)`` (round half to even, as torch.round)."""
    lo = -qmax if signed else np.float32(0.0)
    for i in range(x.size):
        v = min(max(x[i], lo), qmax)
        out[i] = d * np.round(v / d)


@njit(cache=True, fastmath=True)
def dq_backward(g: np.ndarray, x: np.ndarray, d: np.float32, qmax: np.float32, signed: bool,
                grad_x: np.ndarray) -> tuple[float, float]:  # pragma: no cover
    """Straight-through gradients: ``grad_x`` (0 where clipped) and the sums ``dL/dd``, ``dL/dqmax``."""
    lo = -qmax if signed else np.float32(0.0)
    neg = np.float32(1.0) if signed else np.float32(0.0)
    inv = np.float32(1.0) / d
    sd = np.float32(0.0)
    sq = np.float32(0.0)
    for i in range(x.size):
        v = x[i]
        gv = g[i]
        above = v > qmax
        below = v < lo
        grad_x[i] = np.float32(0.0) if (above or below) else gv
        sq += gv if above else (-neg * gv if below else np.float32(0.0))
        y = min(max(v, lo), qmax) * inv
        sd += gv * (np.round(y) - y)
    return float(sd), float(sq)


@njit(cache=True)
def _bits_and_grad(ld: float, lq: float, signed: bool, lo: float, hi: float) -> tuple[float, float]:  # pragma: no cover
    """Continuous bits ``log2(exp(lq - ld) + 1) + s`` clamped to [lo, hi] and d bits / d lq."""
    r = math.exp(lq - ld)
    b = math.log(r + 1.0) / LN2 + (1.0 if signed else 0.0)
    if b < lo or b > hi:
        return min(max(b, lo), hi), 0.0
    return b, r / ((r + 1.0) * LN2)


@njit(cache=True)
def penalty(qp: np.ndarray, int_bits: np.ndarray, signed_act: np.ndarray, macs: np.ndarray, quantize: bool,
            mu: np.ndarray, lv: np.ndarray, offsets: np.ndarray, gated: np.ndarray, threshold: float,
            temperature: float, kl_weight: float, bops_scale: float, min_bits: float, max_bits: float,
            g_qp: np.ndarray, g_mu: np.ndarray, g_lv: np.ndarray) -> tuple[float, float, float]:  # pragma: no cover
    """``kl_weight * KL + bops_scale * soft BOPs`` and its gradients (written into ``g_*``).

    ``qp[l] = (log_d_w, log_qmax_w, log_d_a, log_qmax_a)``; ``int_bits[l] = (b_w, b_a)`` the
    integer bits used in the forward (straight-through: gradients of the continuous bits);
    gates of layer ``l`` are ``mu[offsets[l]:offsets[l+1]]`` when ``gated[l]``.
    Returns ``(total, kl, soft_bops)``.
    """
    L = macs.shape[0]
    keep = np.ones(L)
    for l in range(L):
        if gated[l]:
            a, b = offsets[l], offsets[l + 1]
            s = 0.0
            for c in range(a, b):
                la = lv[c] - math.log(mu[c] * mu[c] + 1e-8)
                s += 1.0 / (1.0 + math.exp(-(threshold - la) / temperature))
            keep[l] = s / (b - a)
    bw = np.full(L, 32.0)
    ba = np.full(L, 32.0)
    dbw = np.zeros(L)
    dba = np.zeros(L)
    if quantize:
        for l in range(L):
            _, dbw[l] = _bits_and_grad(qp[l, 0], qp[l, 1], True, min_bits, max_bits)
            _, dba[l] = _bits_and_grad(qp[l, 2], qp[l, 3], signed_act[l], min_bits, max_bits)
            bw[l] = int_bits[l, 0]
            ba[l] = int_bits[l, 1]
    bops = 0.0
    d_keep = np.zeros(L)
    for l in range(L):
        p_in = keep[l - 1] if l > 0 else 1.0
        term = macs[l] * p_in * keep[l]
        bops += term * bw[l] * ba[l]
        if quantize:
            gbw = bops_scale * term * ba[l] * dbw[l]  # d/d lq_w; d/d ld_w is its negative
            gba = bops_scale * term * bw[l] * dba[l]
            g_qp[l, 0] += -gbw
            g_qp[l, 1] += gbw
            g_qp[l, 2] += -gba
            g_qp[l, 3] += gba
        d_keep[l] += macs[l] * p_in * bw[l] * ba[l]
        if l > 0:
            d_keep[l - 1] += macs[l] * keep[l] * bw[l] * ba[l]
    kl = 0.0
    for l in range(L):
        if not gated[l]:
            continue
        a, b = offsets[l], offsets[l + 1]
        n = b - a
        for c in range(a, b):
            m2 = mu[c] * mu[c]
            la = lv[c] - math.log(m2 + 1e-8)
            sg = 1.0 / (1.0 + math.exp(-(threshold - la) / temperature))
            dp_dla = -sg * (1.0 - sg) / temperature / n
            dla_dmu = -2.0 * mu[c] / (m2 + 1e-8)
            g = bops_scale * d_keep[l] * dp_dla
            g_mu[c] += g * dla_dmu
            g_lv[c] += g
            ev = math.exp(lv[c])
            kl += 0.5 * math.log1p(m2 / ev)
            g_mu[c] += kl_weight * mu[c] / (ev + m2)
            g_lv[c] += -kl_weight * 0.5 * m2 / (ev + m2)
    return kl_weight * kl + bops_scale * bops, kl, bops


@njit(cache=True)
def dq_forward2(x: np.ndarray, dx: np.float32, qx: np.float32, sx: bool, ox: np.ndarray,
                w: np.ndarray, dw: np.float32, qw: np.float32, ow: np.ndarray) -> None:  # pragma: no cover
    """:func:`dq_forward` of a layer's input (signed ``sx``) and of its (signed) weight in one call."""
    dq_forward(x, dx, qx, sx, ox)
    dq_forward(w, dw, qw, True, ow)


@njit(cache=True)
def dq_backward2(gx: np.ndarray, x: np.ndarray, dx: np.float32, qx: np.float32, sx: bool, ox: np.ndarray,
                 gw: np.ndarray, w: np.ndarray, dw: np.float32, qw: np.float32,
                 ow: np.ndarray) -> tuple[float, float, float, float]:  # pragma: no cover
    """:func:`dq_backward` of the input and the weight quantiser in one call."""
    a, b = dq_backward(gx, x, dx, qx, sx, ox)
    c, d = dq_backward(gw, w, dw, qw, True, ow)
    return a, b, c, d


@njit(cache=True)
def gate_forward(y: np.ndarray, mu: np.ndarray, lv: np.ndarray, eps: np.ndarray, out: np.ndarray,
                 z: np.ndarray) -> None:  # pragma: no cover
    """``z[n, c] = mu[c] + exp(lv[c] / 2) eps[n, c]``; ``out[n, c, l] = y[n, c, l] z[n, c]``."""
    n, c, L = y.shape
    for j in range(c):
        s = np.float32(np.exp(np.float32(0.5) * lv[j]))
        m = mu[j]
        for i in range(n):
            zz = m + s * eps[i, j]
            z[i, j] = zz
            for k in range(L):
                out[i, j, k] = y[i, j, k] * zz


@njit(cache=True, fastmath=True)
def gate_backward(g: np.ndarray, y: np.ndarray, z: np.ndarray, eps: np.ndarray, lv: np.ndarray, gy: np.ndarray,
                  gmu: np.ndarray, glv: np.ndarray) -> None:  # pragma: no cover
    """``gy = g z``; adds ``sum g y`` to ``gmu`` and ``sum g y eps * exp(lv / 2) / 2`` to ``glv``."""
    n, c, L = y.shape
    for j in range(c):
        s = np.float32(np.exp(np.float32(0.5) * lv[j]))
        a = np.float32(0.0)
        b = np.float32(0.0)
        for i in range(n):
            zz = z[i, j]
            t = np.float32(0.0)
            for k in range(L):
                gv = g[i, j, k]
                gy[i, j, k] = gv * zz
                t += gv * y[i, j, k]
            a += t
            b += t * eps[i, j]
        gmu[j] += a
        glv[j] += b * np.float32(0.5) * s


@njit(cache=True)
def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float) -> None:  # pragma: no cover
    """Adam (betas 0.9 / 0.999, eps 1e-8, bias-corrected) on flat arrays, in place; ``t`` >= 1."""
    b1, b2 = 0.9, 0.999
    c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
    for i in range(p.size):
        m[i] = b1 * m[i] + (1.0 - b1) * g[i]
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i]
        p[i] -= lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + 1e-8)


@njit(cache=True)
def clip_steps(q: np.ndarray, lo_w: float, hi_w: float, lo_a: np.ndarray, hi_a: np.ndarray) -> None:  # pragma: no cover
    """Keep ``log d`` within ``[log q_max + lo, log q_max + hi]`` for the weight (cols 0, 1) and
    activation (cols 2, 3) quantiser of every layer (bit-width limits)."""
    for i in range(q.shape[0]):
        q[i, 0] = min(max(q[i, 0], q[i, 1] + lo_w), q[i, 1] + hi_w)
        q[i, 2] = min(max(q[i, 2], q[i, 3] + lo_a[i]), q[i, 3] + hi_a[i])
