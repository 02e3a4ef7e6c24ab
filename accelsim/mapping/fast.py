"""Compiled (numba) evaluator of :mod:`accelsim.mapping.cost`, for mapping search.

``FastEvaluator(layer, hierarchy, rounding="accelsim"|"zigzag")`` turns the layer and the
hierarchy into flat arrays once;
``evaluate(mapping)`` returns the same :class:`MappingCost` as :func:`cost.evaluate` (tested
equal on every reference layer and on random mappings in ``tests/test_mapping_cost.py``) and
``energy_latency(mapping)`` just ``(energy_pj, latency_cycles)`` for a search loop, and
``batch(...)`` many temporal mappings of one spatial unrolling in one compiled call (scratch
allocated once per call; hierarchy-derived arrays cached per equal hierarchy).

The kernel follows ``cost.py`` step by step (same names in comments). One difference in method,
not in result: the union of a port's periodic update windows is computed in closed form
(periods of one mapping are prefix products of one loop order, so each divides the next)
instead of on a cycle-by-cycle indicator array.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, prod
from typing import Sequence

import numpy as np
from numba import njit

from .._idmemo import identity_memo
from .._jit import JIT_ONLY, NO_NRT

from ..hardware.hierarchy import MemoryHierarchy
from .cost import MappingCost, OperandLevelCost, _effective_sizes, validate
from .ir import DIMS, LayerDims, Mapping

_OPS = ("W", "I", "O")
_DIRS = ("tl", "fh", "fl", "th")
_DIM_CODE = {d: i for i, d in enumerate(DIMS)}  # N G K C P Q R S -> 0..7; IYr 8, IYir 9, IXr 10, IXir 11

# relevance per operand (W=0, I=1, O=2) over codes 0..11
_R = np.zeros((3, 12), dtype=np.bool_)
_IR = np.zeros((3, 12), dtype=np.bool_)
for _op, _r, _ir in ((0, "GKCRS", "NPQ"), (1, "NGC", "K"), (2, "NGKPQ", "CRS")):
    for _d in _r:
        _R[_op, _DIM_CODE[_d]] = True
    for _d in _ir:
        _IR[_op, _DIM_CODE[_d]] = True
_R[1, 8] = _R[1, 10] = True
_IR[1, 9] = _IR[1, 11] = True


@njit(cache=True)
def _window(a, b, stride, dilation, clip):  # pragma: no cover - jitted
    """Input rows of ``a`` outputs x ``b`` kernel taps (integer or, for fractional tiles, float
    arguments: numba compiles one specialisation each)."""
    g = stride
    h = dilation
    while h:
        g, h = h, g % h
    n = a * b - max(0, b - stride // g) * (a - dilation // g)
    if clip > 0 and clip < n:
        return clip
    return n


# rows of _op_view's float scratch: products per arch level of relevant loops in 1s2t (r2) and of
# irrelevant ones in 1s1t (ir1), of relevant and of all spatial loops (sp_r, sp_tot), unique data per
# unit (unit_unique), boost, cumulative irrelevant (caal), cycles per period, low/high raw bandwidth
_R2, _IR1, _SPR, _SPT, _UU, _BOOST, _CAAL, _CYC, _LOW, _HIGH = range(10)
_PSUM, _FLAG = range(2)  # rows of its bool scratch


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT, inline="always")
def _op_view(n_lv, tm_dim, tm_size, counts, sp_dim, sp_size, sp_slot, geo, bits, total, R, IR, moves, du, prec, uc,
             tir, tr, part, zz, bnd, f, flags, st, op0, op1, vw, sp_c, sp_ok):  # pragma: no cover - jitted
    """Fills, for each operand ``op`` in ``op0 .. op1 - 1`` (W I O = 0 1 2; row ``op`` of ``counts``, ``sp_slot`` and of the outputs),
    moves[op, m, dir, (amount, bits, period, count, req_bw, window)] and the per-arch-level data
    unrolled ``du``, precision ``prec``, unit count ``uc``, top irrelevant / relevant loop products
    ``tir`` / ``tr`` and partial-sum flags ``part``. Scratch (read only after written here):
    ``bnd`` [n + 1] ints, ``f`` [10, n + 3] floats (rows _R2 .. _HIGH), ``flags`` [2, n + 1]
    bools (_PSUM, _FLAG), ``st`` [8] floats. ``sp_c[vw, op]`` [2, n + 1]: the unit counts and
    boosts of view ``vw`` (functions of ``sp_size`` only), valid if ``sp_ok[vw, op]`` (the caller
    clears it when the view's spatial sizes change), else computed and stored.

    No helper calls, and compiled without reference counting (``_nrt=False``: it allocates
    nothing), like every per-row function of the kernel: with it, numba increfs and decrefs each
    array argument of a call (two atomic operations each, ~0.2 us per call of this function)."""
    nsp = sp_dim.shape[0]
    for op in range(op0, op1):
        n = n_lv[op]
        # temporal levels after cost's merge-down (an irrelevant loop at the bottom of a level moves one
        # level down, until stable) in closed form: level m >= 1 starts at the first relevant loop at or
        # after its original start (the loops keep their order; level 0 only grows)
        end = 0
        for m in range(n):
            end += counts[op, m]
        start = 0
        bnd[0] = 0
        for m in range(1, n):
            start += counts[op, m - 1]
            q = start
            while q < end and IR[op, tm_dim[q]]:
                q += 1
            bnd[m] = q
        bnd[n] = end
        mac_st = 1.0  # irrelevant loops at the bottom of level 0
        q = 0
        while q < end and IR[op, tm_dim[q]]:
            mac_st *= tm_size[q]
            q += 1
        dec = op == 1  # input operand: sliding-window decoupling
        # per arch level al = 0..n, products of loop sizes (innermost first) over three loop structures
        # of cost.py: 1s2t (temporal level al-1, then the spatial loops of slot al-1), loops relevant to
        # op -> f[_R2]; 1s1t (temporal level al-1, then spatial slot al), irrelevant loops -> f[_IR1];
        # spatial slot al, relevant loops -> f[_SPR] and all -> f[_SPT]. With dec, each structure's
        # loops pass through sliding-window decoupling first (cost._decouple: a P/R row or Q/S column
        # loop becomes an input-window loop, code 8/10, and an input-reuse loop, 9/11; st = cumulative
        # P R Q S, previous window rows/cols, previous reuse rows/cols): the same factors in the same
        # order as a product over the decoupled loop list, so bit-identical.
        if not dec:  # the four products in one pass per level (each keeps its own order of factors)
            for al in range(n + 1):
                p0 = 1.0
                p1 = 1.0
                psr = 1.0
                pst = 1.0
                if al >= 1:
                    for jj in range(bnd[al - 1], bnd[al]):
                        dm = tm_dim[jj]
                        if R[op, dm]:
                            p0 *= tm_size[jj]
                        if IR[op, dm]:
                            p1 *= tm_size[jj]
                for kk in range(nsp):
                    sl = sp_slot[op, kk]
                    dm = sp_dim[kk]
                    if sl == al - 1 and R[op, dm]:
                        p0 *= sp_size[kk]
                    if sl == al:
                        if IR[op, dm]:
                            p1 *= sp_size[kk]
                        if R[op, dm]:
                            psr *= sp_size[kk]
                        pst *= sp_size[kk]
                f[_R2, al] = p0
                f[_IR1, al] = p1
                f[_SPR, al] = psr
                f[_SPT, al] = pst
        for kind in range(3 if dec else 0):  # 0: 1s2t, 1: 1s1t, 2: spatial
            for ii in range(8):
                st[ii] = 1.0
            row = _R2 if kind == 0 else (_IR1 if kind == 1 else _SPR)
            for al in range(n + 1):
                pp = 1.0
                p_all = 1.0
                t0 = 0
                t1 = 0
                if kind != 2 and al >= 1:
                    t0 = bnd[al - 1]
                    t1 = bnd[al]
                slot = al - 1 if kind == 0 else al
                for jj in range(t0, t1 + nsp):
                    if jj < t1:
                        dm = tm_dim[jj]
                        sz = tm_size[jj]
                    else:
                        kk = jj - t1
                        if slot < 0 or sp_slot[op, kk] != slot:
                            continue
                        dm = sp_dim[kk]
                        sz = sp_size[kk]
                    if not dec or dm < 4 or dm > 7:
                        if IR[op, dm] if kind == 1 else R[op, dm]:
                            pp *= sz
                        p_all *= sz
                        continue
                    st[dm - 4] *= sz
                    if dm == 4 or dm == 6:  # rows
                        dd = 0
                        if zz:
                            r = float(_window(int(st[0]), int(st[2]), geo[0], geo[2], geo[4]))
                        else:
                            r = _window(st[0], st[2], geo[0], geo[2], geo[4])  # float version: fractional tiles
                        tot = st[0] * st[2]
                    else:
                        dd = 1
                        if zz:
                            r = float(_window(int(st[1]), int(st[3]), geo[1], geo[3], geo[5]))
                        else:
                            r = _window(st[1], st[3], geo[1], geo[3], geo[5])
                        tot = st[1] * st[3]
                    ir = tot / r
                    w = r / st[4 + dd]
                    u = ir / st[6 + dd]
                    st[4 + dd] = r
                    st[6 + dd] = ir
                    if IR[op, 8 + 2 * dd] if kind == 1 else R[op, 8 + 2 * dd]:
                        pp *= w
                    p_all *= w
                    if IR[op, 9 + 2 * dd] if kind == 1 else R[op, 9 + 2 * dd]:
                        pp *= u
                    p_all *= u
                f[row, al] = pp
                if kind == 2:
                    f[_SPT, al] = p_all
        acc = 1.0
        for a in range(n + 1):
            acc *= f[_R2, a]
            du[op, a] = float(np.rint(np.rint(acc))) if zz else np.round(acc, 9)
        if sp_ok[vw, op]:  # unit counts and boosts read the spatial loops only: as last computed
            for a in range(n + 1):
                uc[op, a] = sp_c[vw, op, 0, a]
                f[_BOOST, a] = sp_c[vw, op, 1, a]
        else:
            for a in range(n + 1):
                pu = 1.0
                pt = 1.0
                for b in range(a, n + 1):
                    pu *= f[_SPR, b]
                    pt *= f[_SPT, b]
                f[_UU, a] = pu
                uc[op, a] = float(np.rint(np.round(pt, 3))) if zz else np.round(pt, 9)
            f[_BOOST, n] = 1.0
            for a in range(n):
                f[_BOOST, a] = float(np.rint(f[_UU, a] / f[_UU, a + 1])) if zz else np.round(
                    f[_UU, a] / f[_UU, a + 1], 9)
            for a in range(n + 1):
                sp_c[vw, op, 0, a] = uc[op, a]
                sp_c[vw, op, 1, a] = f[_BOOST, a]
            sp_ok[vw, op] = True
        if op == 2:
            for a in range(n + 1):
                flags[_FLAG, a] = False
                if a >= 1:
                    for t in range(bnd[a - 1], bnd[a]):
                        if IR[2, tm_dim[t]] and tm_size[t] > 1:
                            flags[_FLAG, a] = True
                for s in range(sp_dim.shape[0]):
                    if sp_slot[op, s] == a and IR[2, sp_dim[s]] and sp_size[s] > 1:
                        flags[_FLAG, a] = True
            for a in range(n + 1):
                anyf = False
                for b in range(a + 1, n + 1):
                    if flags[_FLAG, b]:
                        anyf = True
                flags[_PSUM, a] = anyf
                anyp = False
                for b in range(a, n + 1):
                    if flags[_FLAG, b]:
                        anyp = True
                part[op, a] = anyp
                prec[op, a] = bits[2] if flags[_PSUM, a] else bits[3]
            for a in range(n + 1):
                p = 1.0
                for b in range(a, n + 1):
                    p *= f[_IR1, b]
                f[_CAAL, a] = p
            f[_CAAL, n + 1] = 1.0
            f[_CAAL, n + 2] = 1.0
        else:
            for a in range(n + 1):
                prec[op, a] = bits[op]
                part[op, a] = False
        # cycles
        cc = 1.0
        for m in range(n):
            for t in range(bnd[m], bnd[m + 1]):
                cc *= tm_size[t]
            f[_CYC, m + 1] = cc
        f[_CYC, 0] = mac_st if op != 2 else 1.0
        for a in range(n + 1):
            tir[op, a] = 1.0
            tr[op, a] = 1.0
        for m in range(n):
            for t in range(bnd[m + 1] - 1, bnd[m] - 1, -1):
                if R[op, tm_dim[t]]:
                    tr[op, m + 1] *= tm_size[t]
                else:
                    break
            for t in range(bnd[m + 1] - 1, bnd[m] - 1, -1):
                if IR[op, tm_dim[t]]:
                    tir[op, m + 1] *= tm_size[t]
                else:
                    break
        for a in range(n + 1):
            f[_LOW, a] = du[op, a] * prec[op, a] / f[_CYC, a]
            f[_HIGH, a] = f[_LOW, a] * f[_BOOST, a]
        # moves[op, m, dir, field]: amount, bits, period, count, req_bw, window
        for m in range(n):
            for d in range(4):
                for fi in range(6):
                    moves[op, m, d, fi] = 0.0
            pd_lo = f[_CYC, m]
            pd_hi = f[_CYC, m + 1]
            lo_amount = du[op, m] * f[_BOOST, m]
            hi_amount = du[op, m + 1]
            lo_count = np.floor(total / pd_lo)
            hi_count = np.floor(total / pd_hi)
            if op != 2:
                moves[op, m, 0, 0] = lo_amount
                moves[op, m, 0, 1] = bits[op]
                moves[op, m, 0, 2] = pd_lo
                moves[op, m, 0, 3] = lo_count
                moves[op, m, 0, 4] = f[_HIGH, m]
                moves[op, m, 1, 0] = hi_amount
                moves[op, m, 1, 1] = bits[op]
                moves[op, m, 1, 2] = pd_hi
                moves[op, m, 1, 3] = hi_count
                moves[op, m, 1, 4] = f[_LOW, m + 1]
            else:
                if zz:
                    lo_amount = float(int(lo_amount))
                pl = f[_CAAL, m + 1] - 1 != 0
                ph = f[_CAAL, m + 2] - 1 != 0
                moves[op, m, 2, 0] = lo_amount
                moves[op, m, 2, 1] = bits[2] if pl else bits[3]
                moves[op, m, 2, 2] = pd_lo
                moves[op, m, 2, 3] = lo_count
                moves[op, m, 2, 4] = f[_HIGH, m]
                moves[op, m, 3, 0] = hi_amount
                moves[op, m, 3, 1] = bits[2] if ph else bits[3]
                moves[op, m, 3, 2] = pd_hi
                moves[op, m, 3, 3] = hi_count
                moves[op, m, 3, 4] = f[_LOW, m + 1]
                if flags[_PSUM, m]:
                    moves[op, m, 0, 0] = lo_amount
                    moves[op, m, 0, 1] = bits[2] if pl else 0.0
                    moves[op, m, 0, 2] = pd_lo
                    moves[op, m, 0, 3] = lo_count
                    moves[op, m, 0, 4] = f[_HIGH, m]
                if flags[_PSUM, m + 1]:
                    moves[op, m, 1, 0] = hi_amount
                    moves[op, m, 1, 1] = bits[2] if ph else 0.0
                    moves[op, m, 1, 2] = pd_hi
                    moves[op, m, 1, 3] = hi_count
                    moves[op, m, 1, 4] = f[_LOW, m + 1]
            for d in range(4):
                scale = tir[op, m] if (d == 0 or d == 2) else tir[op, m + 1]
                moves[op, m, d, 4] = float(int(moves[op, m, d, 4]))
                per = moves[op, m, d, 2]
                moves[op, m, d, 5] = float(int(per / scale)) if per != 0 else 0.0
                moves[op, m, d, 2] = float(int(per))
                moves[op, m, d, 3] = float(int(moves[op, m, d, 3]))
            if m == n - 1:
                for d in (1, 3):
                    for fi in range(6):
                        moves[op, m, d, fi] = 0.0


# rows of the kernel's per-port float scratch ``pf`` [9, MAXE] and int scratch ``pi`` [3, MAXE]: per
# activity allowed, period, count, real cycles; union's distinct periods, windows, covered counts;
# on-loading totals and minima; and union's sort order, the single-transfer entries, their order
_AA, _AP, _AC, _AR, _PS, _WS, _CNT, _TOTS, _MINS = range(9)
_UORD, _C1, _ORD = range(3)


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT)
def _stable_argsort(x, xr, n, order, orow, desc):  # pragma: no cover - jitted
    """Stable argsort of ``x[xr, :n]`` into ``order[orow, :n]``, ascending (or descending: the order of a
    stable ascending sort of ``-x``). Insertion sort: the same order as ``np.argsort(kind="mergesort")``;
    numba's mergesort costs seconds of compilation."""
    for i in range(n):
        j = i
        while j > 0 and ((x[xr, order[orow, j - 1]] < x[xr, i]) if desc else (x[xr, order[orow, j - 1]] > x[xr, i])):
            order[orow, j] = order[orow, j - 1]
            j -= 1
        order[orow, j] = i


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT)
def _union(pf, pi, na):  # pragma: no cover - jitted
    """Union of periodic windows [k*P, k*P+A) (nested periods), times the count of the largest, of the
    activities ``pf[_AA / _AP / _AC, :na]`` (allowed, period, count; other rows of ``pf``, ``pi``: scratch)."""
    for i in range(na):
        if pf[_AP, i] == pf[_AA, i]:
            return pf[_AP, i] * pf[_AC, i]
    # the first activity with the largest period gives the count
    maxp = -1.0
    pc_max = 0.0
    for i in range(na):
        if pf[_AP, i] > maxp:
            maxp = pf[_AP, i]
            pc_max = pf[_AC, i]
    # distinct periods ascending, window = max allowed among equal periods
    _stable_argsort(pf, _AP, na, pi, _UORD, False)
    k = 0
    for j in range(na):
        i = pi[_UORD, j]
        p = pf[_AP, i]
        if p <= 0:
            continue
        a = min(pf[_AA, i], p)
        if k > 0 and pf[_PS, k - 1] == p:
            pf[_WS, k - 1] = max(pf[_WS, k - 1], a)
        else:
            pf[_PS, k] = p
            pf[_WS, k] = a
            k += 1
    if k == 0:
        return 0.0
    # cnt[i] = covered points in [0, ps[i]) by activities 0..i (periodic with ps[i])
    for i in range(k):
        if i == 0:
            pf[_CNT, 0] = pf[_WS, 0]
        else:
            # a_i + C_{i-1}(p_i) - C_{i-1}(a_i)
            pf[_CNT, i] = pf[_WS, i] + _count_below(pf, i - 1, pf[_PS, i]) - _count_below(pf, i - 1, pf[_WS, i])
    return pf[_CNT, k - 1] * pc_max


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT)
def _count_below(pf, i, x):  # pragma: no cover - jitted
    """Covered points in [0, x) of the periodic set S_i (activities 0..i, period ps[i] = pf[_PS, i])."""
    q = np.floor(x / pf[_PS, i])
    y = x - q * pf[_PS, i]
    if i == 0:
        return q * pf[_CNT, 0] + min(y, pf[_WS, 0])
    # points of S_i in [0, y): min(y, a_i) + C_{i-1}(y) - C_{i-1}(min(y, a_i))
    lo = min(y, pf[_WS, i])
    return q * pf[_CNT, i] + lo + _count_below(pf, i - 1, y) - _count_below(pf, i - 1, lo)


MAXE = 32  # port allocation entries per port


@njit(cache=True, nogil=True, **JIT_ONLY)
def _variant_workspace(nv, n_ports, maxn, nsp):  # pragma: no cover - jitted
    """:func:`_kernel`'s per-variant, per-port and per-view arrays (its ``ws2``; allocated here: the
    kernel runs without reference counting)."""
    return (np.zeros(nv, dtype=np.bool_), np.zeros(nv, dtype=np.bool_), np.zeros(n_ports, dtype=np.int64),
            np.zeros(n_ports), np.zeros(n_ports), np.zeros((nv, n_ports)), np.zeros((nv, n_ports)), np.zeros(nv),
            np.zeros((nv, 3, maxn, 4)), np.zeros((2, 3, 2, maxn + 1)), np.zeros((2, 3), dtype=np.bool_),
            np.zeros((2, nsp)), np.zeros(8))


@njit(cache=True, nogil=True, **JIT_ONLY)
def _workspace(maxn, nsp, nt):  # pragma: no cover - jitted
    """Every array :func:`_kernel` needs, allocated once per batch (``maxn`` = most memory levels of an
    operand, ``nsp`` spatial loops, ``nt`` most temporal loops): (acc, energy, moves, du, prec, uc,
    tir, tr, part, indiv, shared, db, real, allowed, lc, ls, port floats, port ints, bnd, f, flags,
    st, sp_e, sp_l, tm_e)."""
    return (np.zeros((3, maxn, 4)), np.zeros((3, maxn)), np.zeros((3, maxn, 4, 6)), np.zeros((3, maxn + 1)),
            np.zeros((3, maxn + 1)), np.zeros((3, maxn + 1)), np.ones((3, maxn + 1)), np.ones((3, maxn + 1)),
            np.zeros((3, maxn + 1), dtype=np.bool_), np.zeros((3, maxn)), np.zeros((3, maxn)),
            np.zeros((3, maxn + 1), dtype=np.bool_), np.zeros((3, maxn, 4)), np.zeros((3, maxn, 4)),
            np.zeros((3, maxn, 4)), np.zeros((3, maxn, 4), dtype=np.bool_), np.zeros((9, MAXE)),
            np.zeros((3, MAXE), dtype=np.int64), np.zeros(maxn + 1, dtype=np.int64), np.zeros((10, maxn + 3)),
            np.zeros((2, maxn + 1), dtype=np.bool_), np.ones(8), np.zeros(nsp), np.zeros(nsp), np.zeros(nt))


#: objective codes of the kernel's row pruning (``_kernel``'s ``obj``; 0: every row priced)
OBJ_CODE = {"latency": 1, "energy": 2, "edp": 3}


@njit(cache=True, nogil=True)
def _stride(nb):  # pragma: no cover - jitted
    """A step coprime with ``nb`` near ``nb`` / golden ratio: ``(i * step) % nb`` visits every row once,
    spread over the batch (a batch's rows come in lexicographic loop order, which clusters slow ones)."""
    s = max(1, int(nb * 0.6180339887498949))
    while True:
        a, c = s, nb
        while c:
            a, c = c, a % c
        if a == 1:
            return s
        s += 1


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT, inline="always")
def _pruned_by_operand(op, n_lv, moves, bwmax, total, drain, tie, kbest, l_run, nop, pr):  # pragma: no cover
    """Marks in ``pr`` the variants whose latency bound from operand ``op``'s moves alone (latency view)
    exceeds their threshold (objective latency, see :func:`_kernel`); whether every variant is out.
    The bound needs no double-buffering decision: a transfer's allowed window is at most its period
    (the window is the period over a product of loop sizes >= 1), so its stall term is at least
    (real - period) x (count - 1), and the stall is at least each term (and 0)."""
    nk = kbest.shape[1]
    live = False
    for v in range(pr.shape[0]):
        if nop[v] or pr[v]:
            continue
        slb = 0.0
        for m in range(n_lv[op]):
            for d in range(4):
                mx = bwmax[v, op, m, d]
                cnt = moves[op, m, d, 3]
                if cnt != 0 and mx > 0:
                    slb = max(slb, (np.ceil(moves[op, m, d, 0] * moves[op, m, d, 1] / mx) - np.ceil(moves[op, m, d, 2]))
                              * (cnt - 1))
        thr = kbest[v, nk - 1]
        if tie > 0:
            thr = max(thr, (1.0 + tie) * l_run[v])
        if (total + slb) + drain > thr:
            pr[v] = True
        else:
            live = True
    return not live


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT, **JIT_ONLY)
def _kernel(n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax, shared_mems, shared_ops,
            port_bw, port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2,
            tm_dims, tm_sizes, n_tm, counts, sp_dim, sp_size, sp_ad, sp_slot, sys_mask, bounds,
            geo, bits, R, IR, zz, effective, totals, ws, ws2, res, obj, tie, kbest, l_run, mac_e):  # pragma: no cover
    """Costs of B temporal mappings (rows ``b``: ``tm_dims[b, :n_tm[b]]``, ``tm_sizes[b, :n_tm[b]]``,
    ``counts[b]``) sharing one spatial unrolling, on V hierarchy variants that differ only in
    memory prices and port bandwidths (leading axis V of ``mem_r``, ``mem_w``, ``bwmin``,
    ``bwmax``, ``port_bw``): ``res[v, b]`` = (stall, onload, offload cycles, memory energy pJ,
    latency cycles); stall -1: a movement has no port; -2: pruned (below). The operand views,
    moves, double-buffering decisions, transfer windows (and each port's union of them) and
    fill/drain read no price or bandwidth: computed once per row; access counts, energy, stalls
    and on/off-loading per variant (each variant's arithmetic is the single-hierarchy one, so
    results are bit-identical to V separate calls). With ``effective``, the energy-view and
    latency-view sizes of uneven rows come from :func:`_effective` and the temporal cycles from
    the row; otherwise from ``ws`` (sp_e, sp_l, tm_e, one row) and ``totals[b]``. The last row
    priced leaves its per-level accesses and energy in ``ws[0]``, ``ws[1]``. ``ws``: :func:`_workspace`.

    **Row pruning** (``obj`` 1 latency, 2 energy, 3 edp; 0: none, rows in order). Per variant
    ``v``, ``kbest[v]`` (ascending; updated) holds the ``k`` smallest primary keys known (latency;
    energy incl. ``mac_e``; energy x latency: each as the caller computes it from the outputs) and
    ``l_run[v]`` the least latency known (updated); every fully priced row is added. A row is
    priced no further for ``v`` (``res[v, b, 0] = -2``) once a lower bound of its primary key
    exceeds ``kbest[v, k-1]`` (``k`` keys strictly better: it cannot enter a top ``k``) and, with
    ``tie > 0`` (latency), ``(1 + tie) * l_run[v]`` too (beyond the near-tie tolerance of a latency
    no less than the final fastest: it cannot enter the near-tie front). Bounds (floating-point
    lower bounds of the values computed later: rounding is monotone and every term is >= 0):
    latency >= (total + stall_lb) + drain, stall_lb = the largest stall term of a one-transfer
    port or positive part of a shared port (the stall is their max after the shared ports add a
    term >= 0); energy: exact (priced first); edp: energy x (total + drain), then energy x the
    latency bound. Objective latency prices the latency view first, the others the energy view.
    Rows are visited in the order ``(i * _stride(B)) % B`` (a near-best row comes early). A
    variant's decisions read only its own state and row values: a joint batch prunes each
    variant as a batch of its own would."""
    (acc, energy, moves, du, prec, uc, tir, tr, part, indiv, shared, db, real, allowed, lc, ls, pf, pi, bnd, f,
     flags, st, sp_e, sp_l, tm_e_all) = ws
    nv = mem_r.shape[0]
    nb = tm_dims.shape[0]
    nk = kbest.shape[1]
    # per variant: a movement of this row has no port, the row is pruned; per port: transfers with a count,
    # their windows' union and sum; per variant and port: positive and negative stall terms; per variant:
    # the largest stall term of the one-transfer ports, real transfer cycles; per view: _op_view's
    # spatial-only results, whether valid, the spatial sizes they are of; _effective's scratch
    nop, pr, pna, punion, pmuw, ppos, pneg, s1, realv, sp_c, sp_ok, sp_k, fd = ws2
    n_ports = port_bw.shape[1]
    step_b = _stride(nb) if obj else 1
    for i in range(nb):
        b = (i * step_b) % nb
        nt = n_tm[b]
        tm_dim = tm_dims[b, :nt]
        tm_size_l = tm_sizes[b, :nt]
        tm_size_e = tm_e_all[:nt]
        cnt_b = counts[b]
        if effective:
            _effective(bounds, sp_dim, sp_size, tm_dim, tm_size_l, sp_e, sp_l, tm_size_e, fd)
            total = 1.0
            for j in range(nt):
                total *= tm_size_l[j]
        else:
            total = totals[b]
        even = True  # the two views equal
        for j in range(nt):
            if tm_size_e[j] != tm_size_l[j]:
                even = False
        for j in range(sp_e.shape[0]):
            if sp_e[j] != sp_l[j]:
                even = False
        # fill/drain: per systolic array dimension, (product of its energy-view unrolling) - 1
        drain = 0.0
        for a in range(sys_mask.shape[1]):
            util = 1.0
            used = False
            for j in range(sp_dim.shape[0]):
                if sp_ad[j] == a:
                    util *= sp_e[j]
                    used = True
            if used and sys_mask[0, a]:
                drain += max(np.ceil(np.round(util, 6)) - 1.0, 0.0)
        lat_lb0 = total + drain  # a lower bound of every variant's latency
        nop[:] = False
        pr[:] = False
        view = -1  # the view in ``moves`` etc.: 0 energy (fractional sizes), 1 latency (integer sizes)
        live = True  # a variant is neither port-less nor pruned
        for step in range(2):  # energy, then latency (latency first for obj 1)
            if not live:
                break
            lat_step = (step == 0) == (obj == 1)
            want = 1 if lat_step and not even else 0
            if want != view:
                tm_v = tm_size_l if want else tm_size_e
                sp_v = sp_l if want else sp_e
                for j in range(sp_v.shape[0]):
                    if sp_k[want, j] != sp_v[j]:
                        for jj in range(sp_v.shape[0]):
                            sp_k[want, jj] = sp_v[jj]
                        sp_ok[want, :] = False
                        break
                # objective latency: operand by operand, O then W, each's moves often prove a row out
                by_op = obj == 1 and lat_step
                out = False
                for sg in range(3 if by_op else 1):  # one call site: _op_view is inlined
                    o0 = (2, 0, 1)[sg] if by_op else 0
                    _op_view(n_lv, tm_dim, tm_v, cnt_b, sp_dim, sp_v, sp_slot, geo, bits, total, R, IR, moves,
                             du, prec, uc, tir, tr, part, zz, bnd, f, flags, st, o0, o0 + 1 if by_op else 3, want,
                             sp_c, sp_ok)
                    if by_op and sg < 2 and _pruned_by_operand(o0, n_lv, moves, bwmax, total, drain, tie, kbest,
                                                               l_run, nop, pr):
                        out = True
                        break
                if out:
                    break
                view = want
            live = False
            if not lat_step:  # energy per variant
                for v in range(nv):
                    if pr[v]:
                        continue
                    noport = False
                    for op in range(3):
                        n = n_lv[op]
                        for m in range(n):
                            mem = lv_mem[op, m]
                            for d in range(4):
                                acc[op, m, d] = 0.0
                                amount = moves[op, m, d, 0]
                                bt = moves[op, m, d, 1]
                                if amount == 0 or bt == 0:
                                    continue
                                mn = bwmin[v, op, m, d]
                                mx = bwmax[v, op, m, d]
                                if mx == 0:
                                    noport = True  # caller raises / prices the row inf
                                    break
                                acc[op, m, d] = float(int(np.ceil(amount * bt / mn) * (mn / mx) * moves[op, m, d, 3]
                                                          * uc[op, m + 1]))
                            if noport:
                                break
                            energy[op, m] = ((acc[op, m, 0] + acc[op, m, 3]) * mem_r[v, mem]
                                             + acc[op, m, 1] * mem_w[v, mem, 1] + acc[op, m, 2] * mem_w[v, mem, 0])
                        if noport:
                            break
                    nop[v] = noport
                    if noport:
                        res[v, b, 0] = -1.0
                        continue
                    res[v, b, 3] = energy.sum()
                    e_tot = res[v, b, 3] + mac_e
                    if obj == 2 and e_tot > kbest[v, nk - 1]:
                        pr[v] = True
                    elif obj == 3 and e_tot >= 0 and e_tot * lat_lb0 > kbest[v, nk - 1]:
                        pr[v] = True
                    else:
                        live = True
                continue
            # latency: double buffering (operand order O, W, I)
            for op in range(3):
                for m in range(n_lv[op]):
                    eff = np.floor(du[op, m + 1] * prec[op, m + 1] / tr[op, m + 1])
                    indiv[op, m] = eff / mem_size[lv_mem[op, m]]
                    shared[op, m] = indiv[op, m]
            for s in range(shared_mems.shape[0]):
                tot = 0.0
                for op in range(3):
                    lv = shared_ops[s, op]
                    if lv >= 0:
                        tot += indiv[op, lv]
                for op in range(3):
                    lv = shared_ops[s, op]
                    if lv >= 0:
                        shared[op, lv] = tot
            db[:] = False
            for oi in range(3):
                op = (2, 0, 1)[oi]
                for m in range(n_lv[op]):
                    mem = lv_mem[op, m]
                    mode = mem_db[mem]
                    if mode == 1:
                        db[op, m + 1] = True
                    elif mode == 2:
                        db[op, m + 1] = False
                    elif shared[op, m] <= 0.5:
                        db[op, m + 1] = True
                    elif indiv[op, m] <= 1 - shared[op, m]:
                        db[op, m + 1] = True
                        for s in range(shared_mems.shape[0]):
                            if shared_mems[s] == mem:
                                for o2 in range(3):
                                    lv = shared_ops[s, o2]
                                    if lv >= 0:
                                        shared[o2, lv] += indiv[op, m]
            for op in range(3):
                for m in range(n_lv[op]):
                    for d in range(4):
                        use_db = db[op, m] if (d == 0 or d == 2) else db[op, m + 1]
                        allowed[op, m, d] = np.ceil(moves[op, m, d, 2] if use_db else moves[op, m, d, 5])
            # per port: transfers with a count (no bandwidth)
            for p in range(n_ports):
                na = np.int64(0)
                for e in range(port_start[p], port_start[p] + port_len[p]):
                    if moves[ent_op[e], ent_lv[e], ent_dir[e], 3] != 0:
                        na += 1
                pna[p] = na
            # per variant: transfer cycles, stall terms of each port, the latency bound
            for v in range(nv):
                if nop[v] or pr[v]:
                    continue
                for op in range(3):
                    for m in range(n_lv[op]):
                        for d in range(4):
                            mx = bwmax[v, op, m, d]
                            realv[v, op, m, d] = np.ceil(moves[op, m, d, 0] * moves[op, m, d, 1] / mx) if mx > 0 else 0.0
                sv = 0.0
                slb = 0.0
                for p in range(n_ports):
                    na = pna[p]
                    if na == 0:
                        continue
                    pos = 0.0
                    neg = 0.0
                    for e in range(port_start[p], port_start[p] + port_len[p]):
                        op = ent_op[e]
                        m = ent_lv[e]
                        d = ent_dir[e]
                        if moves[op, m, d, 3] == 0:
                            continue
                        ss = (realv[v, op, m, d] - allowed[op, m, d]) * (moves[op, m, d, 3] - 1)
                        if na == 1:
                            sv = max(sv, ss)
                        elif ss > 0:
                            pos += ss
                        else:
                            neg += ss
                    ppos[v, p] = pos
                    pneg[v, p] = neg
                    slb = max(slb, pos)
                s1[v] = sv
                if obj == 1 or obj == 3:
                    lb = (total + max(sv, slb)) + drain
                    if obj == 1:
                        thr = kbest[v, nk - 1]
                        if tie > 0:
                            thr = max(thr, (1.0 + tie) * l_run[v])
                        if lb > thr:
                            pr[v] = True
                            continue
                    else:
                        e_tot = res[v, b, 3] + mac_e
                        if e_tot >= 0 and e_tot * lb > kbest[v, nk - 1]:
                            pr[v] = True
                            continue
                live = True
            if not live:
                break
            # per port: the union of the update windows and their sum (no bandwidth)
            for p in range(n_ports):
                na = pna[p]
                if na < 2:
                    continue
                na = np.int64(0)
                for e in range(port_start[p], port_start[p] + port_len[p]):
                    op = ent_op[e]
                    m = ent_lv[e]
                    d = ent_dir[e]
                    if moves[op, m, d, 3] == 0:
                        continue
                    pf[_AA, na] = allowed[op, m, d]
                    pf[_AP, na] = np.ceil(moves[op, m, d, 2])
                    pf[_AC, na] = moves[op, m, d, 3]
                    na += 1
                punion[p] = _union(pf, pi, na)
                muw = 0.0
                for j in range(na):
                    muw += pf[_AA, j] * (pf[_AC, j] - 1)
                pmuw[p] = muw
            for v in range(nv):  # per variant: stall, on-/off-loading
                if nop[v] or pr[v]:
                    continue
                stall = s1[v]
                for p in range(n_ports):
                    if pna[p] > 1:
                        stall = max(stall, ppos[v, p] + max(0.0, pneg[v, p] + pmuw[p] - punion[p]))
                # on-/off-loading
                lc[:] = 0.0
                ls[:] = False
                for p in range(n_ports):
                    bw_max = port_bw[v, p]
                    n1 = np.int64(0)
                    req = 0.0
                    for e in range(port_start[p], port_start[p] + port_len[p]):
                        op = ent_op[e]
                        m = ent_lv[e]
                        d = ent_dir[e]
                        if op == 2 and (d == 0 or d == 1):
                            continue
                        cnt = moves[op, m, d, 3]
                        if cnt == 0:
                            continue
                        if cnt == 1:
                            pi[_C1, n1] = e
                            n1 += 1
                        else:
                            req += np.ceil(moves[op, m, d, 4])
                            lc[op, m, d] = realv[v, op, m, d]
                            ls[op, m, d] = port_shared2[p]
                    if n1 > 0:
                        for j in range(n1):
                            e = pi[_C1, j]
                            pf[_TOTS, j] = realv[v, ent_op[e], ent_lv[e], ent_dir[e]]
                            pf[_MINS, j] = np.ceil(du[ent_op[e], 1] * prec[ent_op[e], 1] / bw_max)
                        s = max(0.0, (bw_max - req) / bw_max * (total + stall))
                        _stable_argsort(pf, _TOTS, n1, pi, _ORD, True)  # largest first
                        for j in range(n1):
                            if s <= 0:
                                break
                            k = pi[_ORD, j]
                            r = min(max(0.0, pf[_TOTS, k] - pf[_MINS, k]), s)
                            pf[_TOTS, k] -= r
                            s -= r
                        for j in range(n1):
                            e = pi[_C1, j]
                            lc[ent_op[e], ent_lv[e], ent_dir[e]] = pf[_TOTS, j]
                            ls[ent_op[e], ent_lv[e], ent_dir[e]] = port_shared2[p]
                # W, I x (individual, half, shared)
                w_ind = w_half = w_sh = i_ind = i_half = i_sh = 0.0
                for op in range(2):  # W=0, I=1
                    ind = half = sh = 0.0
                    for m in range(n_lv[op] - 1):
                        v1 = lc[op, m, 1]
                        s1_ = ls[op, m, 1]
                        v2 = lc[op, m + 1, 0]
                        s2 = ls[op, m + 1, 0]
                        longest = max(v1, v2)
                        if s1_ and s2:
                            sh += longest
                        elif (not s1_) and (not s2):
                            ind += longest
                        else:
                            half = longest
                    if op == 0:
                        w_ind, w_half, w_sh = ind, half, sh
                    else:
                        i_ind, i_half, i_sh = ind, half, sh
                onload = min(w_sh + max(i_sh + i_half + i_ind, w_half + w_ind),
                             i_sh + max(w_sh + w_half + w_ind, i_half + i_ind))
                offload = 0.0
                for m in range(n_lv[2] - 1):
                    offload += max(lc[2, m, 3], lc[2, m + 1, 2])
                res[v, b, 0] = stall
                res[v, b, 1] = onload
                res[v, b, 2] = offload
                res[v, b, 4] = total + stall + onload + offload + drain
                live = True
        if not obj:
            continue
        for v in range(nv):  # pruned rows marked; priced rows join the known keys
            if pr[v]:
                res[v, b, 0] = -2.0
                continue
            if nop[v]:
                continue
            lat = res[v, b, 4]
            key = lat if obj == 1 else (res[v, b, 3] + mac_e if obj == 2 else (res[v, b, 3] + mac_e) * lat)
            l_run[v] = min(l_run[v], lat)
            if key < kbest[v, nk - 1]:
                j = nk - 1
                while j > 0 and kbest[v, j - 1] > key:
                    kbest[v, j] = kbest[v, j - 1]
                    j -= 1
                kbest[v, j] = key


@njit(cache=True, nogil=True, error_model="numpy", **NO_NRT, inline="always")
def _effective(bounds, sp_dim, sp_size, tm_dim, tm_size, sp_e, sp_l, tm_e, fd):  # pragma: no cover - jitted
    """Energy-view (fractional) and latency-view sizes of an uneven mapping (see cost._effective_sizes)
    into ``sp_e``, ``sp_l``, ``tm_e`` (the latency view of temporal loops is ``tm_size`` itself);
    ``fd`` [8]: scratch (per dimension, the product of its spatial then temporal loop sizes)."""
    for d in range(8):
        fd[d] = 1.0
    for i in range(sp_dim.shape[0]):
        sp_e[i] = sp_size[i]
        sp_l[i] = sp_size[i]
        fd[sp_dim[i]] *= sp_size[i]
    for i in range(tm_dim.shape[0]):
        tm_e[i] = tm_size[i]
        fd[tm_dim[i]] *= tm_size[i]
    for d in range(8):
        f = fd[d]
        if f <= bounds[d]:
            continue
        scale = bounds[d] / f
        last = -1
        for i in range(sp_dim.shape[0]):
            if sp_dim[i] == d and sp_size[i] > 1:
                last = i
        if last >= 0:
            sp_e[last] = sp_size[last] * scale
            sp_l[last] = max(1.0, float(int(sp_e[last])))
        else:
            for i in range(tm_dim.shape[0] - 1, -1, -1):
                if tm_dim[i] == d:
                    tm_e[i] = tm_size[i] * scale
                    break


@njit(cache=True, nogil=True, error_model="numpy")
def _batch(bounds, macs, mac_pj, sys_mask, n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax,
           shared_mems, shared_ops, port_bw, port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2,
           sp_dim, sp_size, sp_ad, sp_slot, tm_dims, tm_sizes, n_tm, counts, geo, bits, R, IR, zz, effective, totals,
           sp_e, sp_l, tm_e, obj, tie, kbest, l_min):  # pragma: no cover
    """(energy_pj[V, B], latency_cycles[V, B], _kernel's res[V, B, 5], the last row's accesses [3, levels, 4]
    and energy [3, levels] on the last variant) of B temporal mappings on V hierarchy variants of one spatial unrolling (see FastEvaluator.batch).
    ``effective``: sizes of the energy / latency views from :func:`_effective` (else ``sp_e``,
    ``sp_l``, ``tm_e`` and ``totals`` give them for a single row). ``obj``, ``tie``, ``kbest`` [V, k],
    ``l_min`` [V]: :func:`_kernel`'s row pruning (copied, not modified; ``obj`` 0: none); a pruned or
    port-less row prices inf (``res[v, b, 0]`` -2 or -1). The one entry point from Python for both
    the batch and the single-mapping path, so that numba compiles _kernel once."""
    # np.int64(0), not 0, for a counter passed to a jitted callee (here and in _kernel): a literal 0
    # makes numba compile the callee once more for Literal[int](0) while it types the loop (wasted)
    maxn = np.int64(0)
    for op in range(3):
        maxn = max(maxn, n_lv[op])
    ws = _workspace(maxn, sp_dim.shape[0], tm_dims.shape[1])
    if not effective:
        ws[-3][:] = sp_e
        ws[-2][:] = sp_l
        ws[-1][:] = tm_e
    nb = tm_dims.shape[0]
    nv = mem_r.shape[0]
    res = np.empty((nv, nb, 5))
    ws2 = _variant_workspace(nv, port_bw.shape[1], maxn, sp_dim.shape[0])
    _kernel(n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax, shared_mems, shared_ops, port_bw,
            port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2, tm_dims, tm_sizes, n_tm, counts, sp_dim,
            sp_size, sp_ad, sp_slot, sys_mask, bounds, geo, bits, R, IR, zz, effective, totals, ws, ws2, res, obj, tie,
            kbest.copy(), l_min.copy(), macs * mac_pj)
    out_e = np.empty((nv, nb))
    out_l = np.empty((nv, nb))
    for v in range(nv):
        for b in range(nb):
            if res[v, b, 0] < 0:
                out_e[v, b] = np.inf
                out_l[v, b] = np.inf
            else:
                out_e[v, b] = res[v, b, 3] + macs * mac_pj
                out_l[v, b] = res[v, b, 4]
    return out_e, out_l, res, ws[0], ws[1]


@dataclass(frozen=True)
class _HierArrays:
    """A hierarchy flattened for the kernels (layer-independent; shared by every evaluator on an equal hierarchy)."""

    n_lv: np.ndarray  # levels per operand W I O
    maxn: int
    #: (n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax, shared_mems, shared_ops, port_bw, port_start,
    #: port_len, ent_op, ent_lv, ent_dir, port_shared2): the hierarchy arguments of _kernel / _batch, in order
    #: (the variant arguments, positions :data:`_VARIANT_ARGS`, with a leading axis of length 1)
    kernel_args: tuple
    served: dict  # operand -> per level, the array dimensions it serves
    systolic: frozenset
    mac_pj: float
    num_macs: int
    level_names: dict
    sys_mask: np.ndarray  # [1, array dims]: systolic or not
    sp_cache: dict  # spatial unrolling -> FastEvaluator.spatial_arrays


def _flatten(hierarchy: MemoryHierarchy) -> _HierArrays:
    levels = {op: hierarchy.levels(op) for op in _OPS}
    mem_index = {m.name: i for i, m in enumerate(hierarchy.memories)}
    n_lv = np.array([len(levels[op]) for op in _OPS], dtype=np.int64)
    maxn = int(n_lv.max())
    lv_mem = np.zeros((3, maxn), dtype=np.int64)
    bwmin = np.zeros((3, maxn, 4))
    bwmax = np.zeros((3, maxn, 4))
    for o, op in enumerate(_OPS):
        for m, mem in enumerate(levels[op]):
            lv_mem[o, m] = mem_index[mem.name]
            for d, dn in enumerate(_DIRS):
                p = mem.port_of(op, dn)
                if p is not None:
                    bwmin[o, m, d] = p.bandwidth_min_bits
                    bwmax[o, m, d] = p.bandwidth_max_bits
    mems = hierarchy.memories
    mem_size = np.array([m.size_bits for m in mems], dtype=np.float64)
    mem_r = np.array([m.read_pj for m in mems], dtype=np.float64)
    mem_w = np.array([[m.write_pj, m.fh_pj] for m in mems], dtype=np.float64)  # writes from below (fl), above (fh)
    mem_db = np.array([{"auto": 0, "always": 1, "never": 2}[m.double_buffering] for m in mems], dtype=np.int64)
    level_of = {op: {m.name: i for i, m in enumerate(levels[op])} for op in _OPS}
    shared = [m for m in mems if len(m.operands) > 1]
    shared_mems = np.array([mem_index[m.name] for m in shared], dtype=np.int64)
    shared_ops = np.full((len(shared), 3), -1, dtype=np.int64)
    for s, m in enumerate(shared):
        for o, op in enumerate(_OPS):
            if op in m.operands:
                shared_ops[s, o] = level_of[op][m.name]
    pbw, pstart, plen, eop, elv, edir, psh = [], [], [], [], [], [], []
    for m in mems:
        for port in m.ports:
            pbw.append(port.bandwidth_max_bits)
            pstart.append(len(eop))
            plen.append(len(port.allocation))
            for a in port.allocation:
                eop.append(_OPS.index(a.operand))
                elv.append(level_of[a.operand][m.name])
                edir.append(_DIRS.index(a.direction))
            psh.append(len({a.operand for a in port.allocation if a.operand in ("W", "I")}) > 1)
    kernel_args = (n_lv, lv_mem, mem_size, mem_r[None], mem_w[None], mem_db, bwmin[None], bwmax[None], shared_mems,
                   shared_ops, np.array(pbw, dtype=np.float64)[None], np.array(pstart, dtype=np.int64), np.array(plen, dtype=np.int64),
                   np.array(eop, dtype=np.int64), np.array(elv, dtype=np.int64), np.array(edir, dtype=np.int64),
                   np.array(psh, dtype=np.bool_))
    systolic = frozenset(hierarchy.array.systolic_dimensions)
    return _HierArrays(
        n_lv=n_lv, maxn=maxn, kernel_args=kernel_args,
        served={op: [set(m.served_dimensions) for m in levels[op]] for op in _OPS}, systolic=systolic,
        mac_pj=hierarchy.array.mac_energy_pj, num_macs=hierarchy.array.num_macs,
        level_names={op: [m.name for m in levels[op]] for op in _OPS},
        sys_mask=np.array([[d.name in systolic for d in hierarchy.array.dimensions]], dtype=np.bool_), sp_cache={})


#: positions in ``_HierArrays.kernel_args`` of the per-variant arrays (mem_r, mem_w, bwmin, bwmax, port_bw):
#: memory prices and port bandwidths, the only hierarchy inputs of the kernel's per-variant part
_VARIANT_ARGS = (3, 4, 6, 7, 10)


def variant_compatible(a: MemoryHierarchy, b: MemoryHierarchy) -> bool:
    """Whether ``b`` differs from ``a`` at most in memory prices and port bandwidths (so one
    :class:`FastEvaluator` prices both in one pass, and the mapper's allocation problems,
    spatial candidates and bounds, which read neither, are the same)."""
    if a is b:
        return True
    ha, hb = _hier_arrays(a), _hier_arrays(b)
    key = (id(ha), id(hb))
    hit = _COMPATIBLE.get(key)
    if hit is not None and hit[0] is ha and hit[1] is hb:
        return hit[2]
    ok = a.array == b.array and ha.served == hb.served and ha.level_names == hb.level_names and all(
        x.shape == y.shape and (i in _VARIANT_ARGS or np.array_equal(x, y))
        for i, (x, y) in enumerate(zip(ha.kernel_args, hb.kernel_args)))
    if len(_COMPATIBLE) >= _HIER_CACHE_MAX:
        del _COMPATIBLE[next(iter(_COMPATIBLE))]
    _COMPATIBLE[key] = (ha, hb, ok)  # holding both keeps their ids from being reused
    return ok


#: :func:`variant_compatible` by the identities of the two hierarchies' arrays (FIFO-bounded)
_COMPATIBLE: dict[tuple[int, int], tuple[_HierArrays, _HierArrays, bool]] = {}


def _variant_args(hs: "Sequence[_HierArrays]") -> tuple:
    """The kernel's hierarchy arguments of several variants (the first's variant-free arrays; one
    variant: its own arguments, whose variant arrays already have the leading axis of length 1)."""
    if len(hs) == 1:
        return hs[0].kernel_args
    args = list(hs[0].kernel_args)
    for i in _VARIANT_ARGS:
        args[i] = np.ascontiguousarray(np.concatenate([h.kernel_args[i] for h in hs]))
    return tuple(args)


_EMPTY = np.empty(0)  # _batch's totals and given sizes when it computes them
_NO_PRUNE = (0, 0.0, np.full((1, 1), np.inf), np.full(1, np.inf))  # _batch's pruning arguments: none

#: hierarchy -> its flattened arrays; keyed by value (hierarchies are frozen pydantic models: equal
#: hierarchies built at different points share one entry); bounded, oldest dropped first
_HIER_CACHE: dict[MemoryHierarchy, _HierArrays] = {}
_HIER_CACHE_MAX = 256


#: front of :data:`_HIER_CACHE` by object identity (value: (the hierarchy, its arrays); holding it
#: keeps its id from being reused): a hierarchy object met again is not hashed again (hashing a
#: pydantic hierarchy walks every memory and port). FIFO-bounded.
_HIER_BY_ID: dict[int, tuple[MemoryHierarchy, _HierArrays]] = {}


def _hier_arrays(hierarchy: MemoryHierarchy) -> _HierArrays:
    hit = _HIER_BY_ID.get(id(hierarchy))
    if hit is not None and hit[0] is hierarchy:
        return hit[1]
    arrays = _hier_arrays_by_value(hierarchy)
    if len(_HIER_BY_ID) >= _HIER_CACHE_MAX:
        del _HIER_BY_ID[next(iter(_HIER_BY_ID))]
    _HIER_BY_ID[id(hierarchy)] = (hierarchy, arrays)
    return arrays


def _hier_arrays_by_value(hierarchy: MemoryHierarchy) -> _HierArrays:
    try:
        hit = _HIER_CACHE.get(hierarchy)
    except TypeError:  # a field holds an unhashable value: no caching
        return _flatten(hierarchy)
    if hit is None:
        hit = _flatten(hierarchy)
        if len(_HIER_CACHE) >= _HIER_CACHE_MAX:
            del _HIER_CACHE[next(iter(_HIER_CACHE))]
        _HIER_CACHE[hierarchy] = hit
    return hit


@identity_memo(maxsize=1024)
def _layer_arrays(layer: LayerDims) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The kernel's layer inputs (geometry, widths, loop bounds, MACs), built once per (frozen)
    layer object; shared by its evaluators, never modified."""
    return (np.array([layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w, layer.in_h, layer.in_w],
                     dtype=np.int64),
            np.array([layer.w_bits, layer.i_bits, layer.o_bits, layer.o_final_bits], dtype=np.float64),
            np.array([layer.size(d) for d in DIMS], dtype=np.float64), layer.macs)


class FastEvaluator:
    """Compiled evaluator of mappings of one layer on one hierarchy (same results as cost.evaluate)."""

    def __init__(self, layer: LayerDims, hierarchy: MemoryHierarchy, rounding: str = "accelsim",
                 variants: Sequence[MemoryHierarchy] = ()):
        if rounding not in ("accelsim", "zigzag"):
            from ..errors import ConfigError
            raise ConfigError(f"rounding must be 'accelsim' or 'zigzag', got {rounding!r}", source="FastEvaluator")
        self.zigzag = rounding == "zigzag"
        self.layer = layer
        self.hierarchy = hierarchy
        hw = self.hw = _hier_arrays(hierarchy)
        self.maxn = hw.maxn
        self.geo, self.bits, self.bounds, self.macs = _layer_arrays(layer)
        self.ideal = float(ceil(self.macs / hw.num_macs))
        for h in variants:
            if not variant_compatible(hierarchy, h):
                from ..errors import ConfigError
                raise ConfigError(f"hierarchy {h.name} differs from {hierarchy.name} in more than memory prices "
                                  "and port bandwidths", source="FastEvaluator")
        #: the kernel's hierarchy arguments of ``hierarchy`` followed by each of ``variants``
        self.variant_args = _variant_args([hw] + [_hier_arrays(h) for h in variants]) if variants else hw.kernel_args

    def _run(self, mapping: Mapping):
        sp_over, tm_over = _effective_sizes(self.layer, mapping)
        sp_dim, sp_size, sp_ad, sp_slot = self.spatial_arrays(mapping.spatial)
        tm_dim, tm_l, counts = self.mapping_arrays(mapping)
        sp_e, sp_l, tm_e = sp_size.copy(), sp_size.copy(), tm_l.copy()  # the two views, as cost.evaluate sizes them
        k = 0
        for ui, su in enumerate(mapping.spatial):
            for li in range(len(su.loops)):
                v = sp_over.get((ui, li))
                if v is not None:
                    sp_e[k], sp_l[k] = v, float(max(1, int(v)))
                k += 1
        for ti, v in tm_over.items():
            tm_e[ti] = v
        total = float(prod(lp.size for lp in mapping.temporal))
        _, _, res, acc, energy = self._price((sp_dim, sp_size, sp_ad, sp_slot), tm_dim[None], tm_l[None],
                                             np.array([len(tm_dim)]), counts[None], np.array([total]), sp_e, sp_l, tm_e)
        stall, onload, offload = res[0, 0, :3]
        if stall < 0:
            from ..errors import ConfigError
            raise ConfigError("a memory has no port for a data movement the mapping needs", source=self.hierarchy.name)
        drain = 0.0
        for ui, su in enumerate(mapping.spatial):
            if su.array_dim in self.hw.systolic and su.loops:
                util = prod(sp_over.get((ui, li), lp.size) for li, lp in enumerate(su.loops))
                drain += max(ceil(round(util, 6)) - 1, 0)
        return acc, energy, float(stall), float(onload), float(offload), drain, total

    def spatial_arrays(self, spatial) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(loop dim codes, sizes, array-dimension index, slot per operand [3, loops]) of a spatial unrolling."""
        key = tuple(spatial)
        cache = self.hw.sp_cache
        hit = cache.get(key)
        if hit is not None:
            return hit
        ad_index = {d.name: i for i, d in enumerate(self.hierarchy.array.dimensions)}
        dims, sizes, ads, slots = [], [], [], [[], [], []]
        for su in spatial:
            js = []
            for op in _OPS:
                j = next((i for i, s in enumerate(self.hw.served[op]) if su.array_dim in s), None)
                if j is None:
                    from ..errors import ConfigError
                    raise ConfigError(f"no memory holding {op} serves array dimension {su.array_dim}",
                                      source=self.hierarchy.name, field="served_dimensions")
                js.append(j)
            for lp in su.loops:
                dims.append(_DIM_CODE[lp.dim])
                sizes.append(float(lp.size))
                ads.append(ad_index.get(su.array_dim, -1))
                for o in range(3):
                    slots[o].append(js[o])
        out = (np.array(dims, dtype=np.int64), np.array(sizes, dtype=np.float64), np.array(ads, dtype=np.int64),
               np.array(slots, dtype=np.int64).reshape(3, len(dims)))
        cache[key] = out
        return out

    def batch(self, spatial, tm_dims: np.ndarray, tm_sizes: np.ndarray, n_tm: np.ndarray,
              counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(energy_pj[B], latency_cycles[B]) of B temporal mappings sharing one spatial unrolling.

        ``tm_dims``/``tm_sizes``: [B, T] loop dimension codes (``DIMS`` order N G K C P Q R S = 0..7)
        and sizes, innermost first, row ``b`` using its first ``n_tm[b]`` entries; ``counts``:
        [B, 3, max levels] loops per memory level for W, I, O. Rows are not validated; a row
        whose data movement has no port gets ``inf``.
        """
        e, lat = self.batch_variants(spatial, tm_dims, tm_sizes, n_tm, counts, self.hw.kernel_args)
        return e[0], lat[0]

    def batch_variants(self, spatial, tm_dims: np.ndarray, tm_sizes: np.ndarray, n_tm: np.ndarray,
                       counts: np.ndarray, kernel_args: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(energy_pj[V, B], latency_cycles[V, B]) of :meth:`batch` on the hierarchy and each of the
        constructor's ``variants`` (V = 1 + their number), in one pass over the rows (row ``v`` equals
        ``FastEvaluator(layer, variants[v - 1]).batch(...)``); ``kernel_args``: a subset's
        :func:`_variant_args` instead of :attr:`variant_args`."""
        e, lat, _ = self.batch_pruned(spatial, tm_dims, tm_sizes, n_tm, counts, kernel_args)
        return e, lat

    def batch_pruned(self, spatial, tm_dims: np.ndarray, tm_sizes: np.ndarray, n_tm: np.ndarray,
                     counts: np.ndarray, kernel_args: tuple | None = None, objective: str | None = None,
                     tie: float = 0.0, kbest: np.ndarray | None = None,
                     l_min: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`batch_variants` plus a [V, B] mask of pruned rows: with ``objective``, row ``b`` is
        not priced for variant ``v`` (inf, mask True) when a lower bound proves that its key cannot
        enter the ``k`` best given the keys known so far (``kbest[v]``: the ``k`` smallest primary
        keys, ascending, inf-padded: latency, energy or energy x latency as computed from this
        method's outputs) nor, with ``tie > 0`` (objective ``latency``), the near-tie front of a
        fastest latency at most ``l_min[v]`` (rule and bounds: :func:`_kernel`). Unpruned rows are
        priced exactly as without ``objective``."""
        nv = (kernel_args if kernel_args is not None else self.variant_args)[3].shape[0]
        obj = OBJ_CODE[objective] if objective is not None else 0
        if kbest is None:
            kbest = np.full((nv, 1), np.inf)
        if l_min is None:
            l_min = np.full(nv, np.inf)
        e, lat, res, _, _ = self._price(self.spatial_arrays(spatial), np.ascontiguousarray(tm_dims, dtype=np.int64),
                                        np.ascontiguousarray(tm_sizes, dtype=np.float64),
                                        np.ascontiguousarray(n_tm, dtype=np.int64),
                                        np.ascontiguousarray(counts, dtype=np.int64),
                                        kernel_args=self.variant_args if kernel_args is None else kernel_args,
                                        prune=(obj, float(tie), np.ascontiguousarray(kbest, dtype=np.float64),
                                               np.ascontiguousarray(l_min, dtype=np.float64)))
        return e, lat, res[:, :, 0] == -2.0

    def _price(self, sp_arrays, tm_dims, tm_sizes, n_tm, counts, totals=None, sp_e=None, sp_l=None, tm_e=None,
               kernel_args=None, prune=None):
        """:func:`_batch` on this layer and hierarchy (``totals`` etc. given: one row, sizes as given;
        ``kernel_args``: hierarchy arguments of several variants, default the hierarchy's own;
        ``prune``: the kernel's (obj, tie, kbest, l_min), default no pruning)."""
        hw = self.hw
        given = totals is not None
        return _batch(self.bounds, float(self.macs), hw.mac_pj, hw.sys_mask,
                      *(hw.kernel_args if kernel_args is None else kernel_args), *sp_arrays, tm_dims,
                      tm_sizes, n_tm, counts, self.geo, self.bits, _R, _IR, self.zigzag, not given,
                      *((totals, sp_e, sp_l, tm_e) if given else (_EMPTY,) * 4), *(prune or _NO_PRUNE))

    def mapping_arrays(self, mapping: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One mapping's temporal part as (dims [T], sizes [T], counts [3, max levels]) for :meth:`batch`."""
        counts = np.zeros((3, self.maxn), dtype=np.int64)
        for o, op in enumerate(_OPS):
            c = mapping.counts(op)
            counts[o, : len(c)] = c
        return (np.array([_DIM_CODE[lp.dim] for lp in mapping.temporal], dtype=np.int64),
                np.array([float(lp.size) for lp in mapping.temporal]), counts)

    def energy_latency(self, mapping: Mapping) -> tuple[float, float]:
        """(energy_pj, latency_cycles) of a mapping (no validation: the caller's search space is valid)."""
        d, s, c = self.mapping_arrays(mapping)
        e, lat = self.batch(mapping.spatial, d[None], s[None], np.array([len(d)]), c[None])
        if not np.isfinite(e[0]):
            from ..errors import ConfigError
            raise ConfigError("a memory has no port for a data movement the mapping needs", source=self.hierarchy.name)
        return float(e[0]), float(lat[0])

    def evaluate(self, mapping: Mapping, *, check: bool = False) -> MappingCost:
        """Full :class:`MappingCost` (``check``: validate the mapping first)."""
        if check:
            validate(self.layer, mapping, self.hierarchy)
        acc, energy, stall, onload, offload, drain, total = self._run(mapping)
        levels = []
        for o, op in enumerate(_OPS):
            for m, name in enumerate(self.hw.level_names[op]):
                levels.append(OperandLevelCost(op, name, float(acc[o, m, 0]), float(acc[o, m, 1]),
                                               float(acc[o, m, 2]), float(acc[o, m, 3]), float(energy[o, m])))
        mac_e = self.macs * self.hw.mac_pj
        return MappingCost(
            energy_pj=mac_e + float(energy.sum()), mac_energy_pj=mac_e,
            latency_cycles=total + stall + onload + offload + drain, ideal_cycles=self.ideal, temporal_cycles=total,
            stall_cycles=float(stall), onload_cycles=float(onload), offload_cycles=float(offload),
            fill_drain_cycles=drain, levels=tuple(levels))


__all__ = ["FastEvaluator", "variant_compatible"]
