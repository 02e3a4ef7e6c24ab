"""Compiled (numba) evaluator of :mod:`accelsim.mapping.cost`, for mapping search.

``FastEvaluator(layer, hierarchy, rounding="accelsim"|"zigzag")`` turns the layer and the
hierarchy into flat arrays once;
``evaluate(mapping)`` returns the same :class:`MappingCost` as :func:`cost.evaluate` (tested
equal on every reference layer and on random mappings in ``tests/test_mapping_cost.py``) and
``energy_latency(mapping)`` just ``(energy_pj, latency_cycles)`` for a search loop.

The kernel follows ``cost.py`` step by step (same names in comments). One difference in method,
not in result: the union of a port's periodic update windows is computed in closed form
(periods of one mapping are prefix products of one loop order, so each divides the next)
instead of on a cycle-by-cycle indicator array.
"""
from __future__ import annotations

from math import ceil, prod

import numpy as np
from numba import njit

from ..hardware.hierarchy import MemoryHierarchy
from .cost import MappingCost, OperandLevelCost, _effective_sizes, validate
from .ir import DIMS, LayerDims, Mapping

_OPS = ("W", "I", "O")
_DIRS = ("tl", "fh", "fl", "th")
_DIM_CODE = {d: i for i, d in enumerate(DIMS)}  # N G K C P Q R S -> 0..7; IYr 8, IYir 9, IXr 10, IXir 11
MAXL = 32  # loops per level (after sliding-window decoupling)

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


@njit(cache=True)
def _decouple(dims, sizes, lens, nlev, geo, zz):  # pragma: no cover - jitted
    """Sliding-window decoupling of a level structure (see cost._decouple)."""
    od = np.zeros((nlev, MAXL), dtype=np.int64)
    osz = np.ones((nlev, MAXL), dtype=np.float64)
    ol = np.zeros(nlev, dtype=np.int64)
    cab = np.ones(4)  # P R Q S cumulative
    prev_size = np.ones(2)
    prev_reuse = np.ones(2)
    for lv in range(nlev):
        k = 0
        for i in range(lens[lv]):
            d = dims[lv, i]
            s = sizes[lv, i]
            if d < 4 or d > 7:
                od[lv, k] = d
                osz[lv, k] = s
                k += 1
                continue
            cab[d - 4] *= s
            if d == 4 or d == 6:  # rows
                dd = 0
                if zz:
                    r = float(_window(int(cab[0]), int(cab[2]), geo[0], geo[2], geo[4]))
                else:
                    r = _window(cab[0], cab[2], geo[0], geo[2], geo[4])  # float specialisation: fractional tiles
                tot = cab[0] * cab[2]
            else:
                dd = 1
                if zz:
                    r = float(_window(int(cab[1]), int(cab[3]), geo[1], geo[3], geo[5]))
                else:
                    r = _window(cab[1], cab[3], geo[1], geo[3], geo[5])
                tot = cab[1] * cab[3]
            ir = tot / r
            od[lv, k] = 8 + 2 * dd
            osz[lv, k] = r / prev_size[dd]
            od[lv, k + 1] = 9 + 2 * dd
            osz[lv, k + 1] = ir / prev_reuse[dd]
            k += 2
            prev_size[dd] = r
            prev_reuse[dd] = ir
        ol[lv] = k
    return od, osz, ol


@njit(cache=True)
def _prod_sel(dims, sizes, n, table, op):  # pragma: no cover - jitted
    p = 1.0
    for i in range(n):
        if table[op, dims[i]]:
            p *= sizes[i]
    return p


@njit(cache=True)
def _op_view(op, n, tm_dim, tm_size, counts, sp_dim, sp_size, sp_slot, geo, bits, total,
             R, IR, moves, data_unrolled, prec, unit_count, top_ir, top_r, partial, zz):  # pragma: no cover - jitted
    """Fills moves[m, dir, (amount, bits, period, count, req_bw, window)] and per-arch arrays."""
    # temporal levels
    lvd = np.zeros((n, MAXL), dtype=np.int64)
    lvs = np.ones((n, MAXL), dtype=np.float64)
    lvl = np.zeros(n, dtype=np.int64)
    t = 0
    for m in range(n):
        for i in range(counts[m]):
            lvd[m, lvl[m]] = tm_dim[t]
            lvs[m, lvl[m]] = tm_size[t]
            lvl[m] += 1
            t += 1
    # merge-down until stable
    mac_st = 1.0
    while True:
        nd = np.zeros((n, MAXL), dtype=np.int64)
        ns = np.ones((n, MAXL), dtype=np.float64)
        nl = np.zeros(n, dtype=np.int64)
        mac_st = 1.0
        for lv in range(n):
            j = 0
            while j < lvl[lv] and IR[op, lvd[lv, j]]:
                if lv == 0:
                    mac_st *= lvs[lv, j]
                    nd[0, nl[0]] = lvd[lv, j]
                    ns[0, nl[0]] = lvs[lv, j]
                    nl[0] += 1
                else:
                    nd[lv - 1, nl[lv - 1]] = lvd[lv, j]
                    ns[lv - 1, nl[lv - 1]] = lvs[lv, j]
                    nl[lv - 1] += 1
                j += 1
            for k in range(j, lvl[lv]):
                nd[lv, nl[lv]] = lvd[lv, k]
                ns[lv, nl[lv]] = lvs[lv, k]
                nl[lv] += 1
        same = True
        for lv in range(n):
            if nl[lv] != lvl[lv]:
                same = False
                break
            for k in range(nl[lv]):
                if nd[lv, k] != lvd[lv, k] or ns[lv, k] != lvs[lv, k]:
                    same = False
                    break
            if not same:
                break
        lvd, lvs, lvl = nd, ns, nl
        if same:
            break
    # spatial slots
    nsp = sp_dim.shape[0]
    sud = np.zeros((n + 1, MAXL), dtype=np.int64)
    sus = np.ones((n + 1, MAXL), dtype=np.float64)
    sul = np.zeros(n + 1, dtype=np.int64)
    for s in range(nsp):
        j = sp_slot[s]
        sud[j, sul[j]] = sp_dim[s]
        sus[j, sul[j]] = sp_size[s]
        sul[j] += 1
    # combined 1s1t (c1) and 1s2t (c2)
    c1d = np.zeros((n + 1, MAXL), dtype=np.int64)
    c1s = np.ones((n + 1, MAXL), dtype=np.float64)
    c1l = np.zeros(n + 1, dtype=np.int64)
    c2d = np.zeros((n + 1, MAXL), dtype=np.int64)
    c2s = np.ones((n + 1, MAXL), dtype=np.float64)
    c2l = np.zeros(n + 1, dtype=np.int64)
    for a in range(n + 1):
        k = 0
        if a >= 1:
            for i in range(lvl[a - 1]):
                c1d[a, k] = lvd[a - 1, i]
                c1s[a, k] = lvs[a - 1, i]
                k += 1
        for i in range(sul[a]):
            c1d[a, k] = sud[a, i]
            c1s[a, k] = sus[a, i]
            k += 1
        c1l[a] = k
        if a >= 1:
            k = 0
            for i in range(lvl[a - 1]):
                c2d[a, k] = lvd[a - 1, i]
                c2s[a, k] = lvs[a - 1, i]
                k += 1
            for i in range(sul[a - 1]):
                c2d[a, k] = sud[a - 1, i]
                c2s[a, k] = sus[a - 1, i]
                k += 1
            c2l[a] = k
    if op == 1:
        c1d, c1s, c1l = _decouple(c1d, c1s, c1l, n + 1, geo, zz)
        c2d, c2s, c2l = _decouple(c2d, c2s, c2l, n + 1, geo, zz)
        sud, sus, sul = _decouple(sud, sus, sul, n + 1, geo, zz)
    r2 = np.ones(n + 1)
    ir1 = np.ones(n + 1)
    sp_r = np.ones(n + 1)
    sp_tot = np.ones(n + 1)
    for a in range(n + 1):
        r2[a] = _prod_sel(c2d[a], c2s[a], c2l[a], R, op)
        ir1[a] = _prod_sel(c1d[a], c1s[a], c1l[a], IR, op)
        sp_r[a] = _prod_sel(sud[a], sus[a], sul[a], R, op)
        p = 1.0
        for i in range(sul[a]):
            p *= sus[a, i]
        sp_tot[a] = p
    acc = 1.0
    for a in range(n + 1):
        acc *= r2[a]
        data_unrolled[a] = float(np.rint(np.rint(acc))) if zz else np.round(acc, 9)
    unit_unique = np.ones(n + 1)
    for a in range(n + 1):
        pu = 1.0
        pt = 1.0
        for b in range(a, n + 1):
            pu *= sp_r[b]
            pt *= sp_tot[b]
        unit_unique[a] = pu
        unit_count[a] = float(np.rint(np.round(pt, 3))) if zz else np.round(pt, 9)
    boost = np.ones(n + 1)
    for a in range(n):
        boost[a] = float(np.rint(unit_unique[a] / unit_unique[a + 1])) if zz else np.round(
            unit_unique[a] / unit_unique[a + 1], 9)
    psum = np.zeros(n + 1, dtype=np.bool_)
    caal = np.ones(n + 3)
    if op == 2:
        flag = np.zeros(n + 1, dtype=np.bool_)
        for a in range(n + 1):
            for i in range(c1l[a]):
                if IR[2, c1d[a, i]] and c1s[a, i] > 1:
                    flag[a] = True
                    break
        for a in range(n + 1):
            anyf = False
            for b in range(a + 1, n + 1):
                if flag[b]:
                    anyf = True
            psum[a] = anyf
            anyp = False
            for b in range(a, n + 1):
                if flag[b]:
                    anyp = True
            partial[a] = anyp
            prec[a] = bits[2] if psum[a] else bits[3]
        for a in range(n + 1):
            p = 1.0
            for b in range(a, n + 1):
                p *= ir1[b]
            caal[a] = p
    else:
        for a in range(n + 1):
            prec[a] = bits[op]
            partial[a] = False
    # cycles
    cycle_each = np.ones(n + 1)
    cc = 1.0
    for m in range(n):
        for i in range(lvl[m]):
            cc *= lvs[m, i]
        cycle_each[m + 1] = cc
    cycle_each[0] = mac_st if op != 2 else 1.0
    for a in range(n + 1):
        top_ir[a] = 1.0
        top_r[a] = 1.0
    for m in range(n):
        for i in range(lvl[m] - 1, -1, -1):
            if R[op, lvd[m, i]] and lvd[m, i] < 8:
                top_r[m + 1] *= lvs[m, i]
            else:
                break
        for i in range(lvl[m] - 1, -1, -1):
            d = lvd[m, i]
            if d < 8 and IR[op, d]:
                top_ir[m + 1] *= lvs[m, i]
            else:
                break
    low_raw = np.zeros(n + 1)
    high_raw = np.zeros(n + 1)
    for a in range(n + 1):
        low_raw[a] = data_unrolled[a] * prec[a] / cycle_each[a]
        high_raw[a] = low_raw[a] * boost[a]
    # moves[m, dir, field]: amount, bits, period, count, req_bw, window
    for m in range(n):
        for d in range(4):
            for f in range(6):
                moves[m, d, f] = 0.0
        pd_lo = cycle_each[m]
        pd_hi = cycle_each[m + 1]
        lo_amount = data_unrolled[m] * boost[m]
        hi_amount = data_unrolled[m + 1]
        lo_count = np.floor(total / pd_lo)
        hi_count = np.floor(total / pd_hi)
        if op != 2:
            moves[m, 0, 0] = lo_amount
            moves[m, 0, 1] = bits[op]
            moves[m, 0, 2] = pd_lo
            moves[m, 0, 3] = lo_count
            moves[m, 0, 4] = high_raw[m]
            moves[m, 1, 0] = hi_amount
            moves[m, 1, 1] = bits[op]
            moves[m, 1, 2] = pd_hi
            moves[m, 1, 3] = hi_count
            moves[m, 1, 4] = low_raw[m + 1]
        else:
            if zz:
                lo_amount = float(int(lo_amount))
            pl = caal[m + 1] - 1 != 0
            ph = caal[m + 2] - 1 != 0
            moves[m, 2, 0] = lo_amount
            moves[m, 2, 1] = bits[2] if pl else bits[3]
            moves[m, 2, 2] = pd_lo
            moves[m, 2, 3] = lo_count
            moves[m, 2, 4] = high_raw[m]
            moves[m, 3, 0] = hi_amount
            moves[m, 3, 1] = bits[2] if ph else bits[3]
            moves[m, 3, 2] = pd_hi
            moves[m, 3, 3] = hi_count
            moves[m, 3, 4] = low_raw[m + 1]
            if psum[m]:
                moves[m, 0, 0] = lo_amount
                moves[m, 0, 1] = bits[2] if pl else 0.0
                moves[m, 0, 2] = pd_lo
                moves[m, 0, 3] = lo_count
                moves[m, 0, 4] = high_raw[m]
            if psum[m + 1]:
                moves[m, 1, 0] = hi_amount
                moves[m, 1, 1] = bits[2] if ph else 0.0
                moves[m, 1, 2] = pd_hi
                moves[m, 1, 3] = hi_count
                moves[m, 1, 4] = low_raw[m + 1]
        for d in range(4):
            scale = top_ir[m] if (d == 0 or d == 2) else top_ir[m + 1]
            moves[m, d, 4] = float(int(moves[m, d, 4]))
            per = moves[m, d, 2]
            moves[m, d, 5] = float(int(per / scale)) if per != 0 else 0.0
            moves[m, d, 2] = float(int(per))
            moves[m, d, 3] = float(int(moves[m, d, 3]))
        if m == n - 1:
            for d in (1, 3):
                for f in range(6):
                    moves[m, d, f] = 0.0
    return 0


@njit(cache=True)
def _stable_argsort(x):  # pragma: no cover - jitted
    """Stable ascending argsort of a short vector (insertion sort: the same order as
    ``np.argsort(kind="mergesort")``; numba's mergesort costs seconds of compilation)."""
    n = x.shape[0]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = i
        while j > 0 and x[order[j - 1]] > x[i]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    return order


@njit(cache=True)
def _union(acts_allowed, acts_period, acts_count, na):  # pragma: no cover - jitted
    """Union of periodic windows [k*P, k*P+A) (nested periods), times the count of the largest."""
    for i in range(na):
        if acts_period[i] == acts_allowed[i]:
            return acts_period[i] * acts_count[i]
    # the first activity with the largest period gives the count
    maxp = -1.0
    pc_max = 0.0
    for i in range(na):
        if acts_period[i] > maxp:
            maxp = acts_period[i]
            pc_max = acts_count[i]
    # distinct periods ascending, window = max allowed among equal periods
    order = _stable_argsort(acts_period)
    ps = np.zeros(na)
    ws = np.zeros(na)
    k = 0
    for j in range(na):
        i = order[j]
        p = acts_period[i]
        if p <= 0:
            continue
        a = min(acts_allowed[i], p)
        if k > 0 and ps[k - 1] == p:
            ws[k - 1] = max(ws[k - 1], a)
        else:
            ps[k] = p
            ws[k] = a
            k += 1
    if k == 0:
        return 0.0
    # cnt[i] = covered points in [0, ps[i]) by activities 0..i (periodic with ps[i])
    cnt = np.zeros(k)
    for i in range(k):
        if i == 0:
            cnt[0] = ws[0]
        else:
            # a_i + C_{i-1}(p_i) - C_{i-1}(a_i)
            cnt[i] = ws[i] + _count_below(ps, ws, cnt, i - 1, ps[i]) - _count_below(ps, ws, cnt, i - 1, ws[i])
    return cnt[k - 1] * pc_max


@njit(cache=True)
def _count_below(ps, ws, cnt, i, x):  # pragma: no cover - jitted
    """Covered points in [0, x) of the periodic set S_i (activities 0..i, period ps[i])."""
    q = np.floor(x / ps[i])
    y = x - q * ps[i]
    if i == 0:
        return q * cnt[0] + min(y, ws[0])
    # points of S_i in [0, y): min(y, a_i) + C_{i-1}(y) - C_{i-1}(min(y, a_i))
    lo = min(y, ws[i])
    return q * cnt[i] + lo + _count_below(ps, ws, cnt, i - 1, y) - _count_below(ps, ws, cnt, i - 1, lo)


@njit(cache=True)
def _kernel(n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax, shared_mems, shared_ops,
            port_bw, port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2,
            tm_dim, tm_size_e, tm_size_l, counts, sp_dim, sp_size_e, sp_size_l, sp_slot,
            geo, bits, R, IR, total, zz):  # pragma: no cover - jitted
    maxn = 0
    for op in range(3):
        maxn = max(maxn, n_lv[op])
    acc = np.zeros((3, maxn, 4))
    energy = np.zeros((3, maxn))
    moves = np.zeros((3, maxn, 4, 6))
    du = np.zeros((3, maxn + 1))
    prec = np.zeros((3, maxn + 1))
    uc = np.zeros((3, maxn + 1))
    tir = np.ones((3, maxn + 1))
    tr = np.ones((3, maxn + 1))
    part = np.zeros((3, maxn + 1), dtype=np.bool_)
    # energy view (fractional sizes)
    for op in range(3):
        n = n_lv[op]
        _op_view(op, n, tm_dim, tm_size_e, counts[op], sp_dim, sp_size_e, sp_slot[op], geo, bits, total,
                 R, IR, moves[op], du[op], prec[op], uc[op], tir[op], tr[op], part[op], zz)
        for m in range(n):
            mem = lv_mem[op, m]
            for d in range(4):
                amount = moves[op, m, d, 0]
                b = moves[op, m, d, 1]
                if amount == 0 or b == 0:
                    continue
                mn = bwmin[op, m, d]
                mx = bwmax[op, m, d]
                if mx == 0:
                    return acc, energy, -1.0, 0.0, 0.0  # no port: caller raises
                acc[op, m, d] = float(int(np.ceil(amount * b / mn) * (mn / mx) * moves[op, m, d, 3] * uc[op, m + 1]))
            energy[op, m] = (acc[op, m, 0] + acc[op, m, 3]) * mem_r[mem] + (acc[op, m, 1] + acc[op, m, 2]) * mem_w[mem]
    # latency view (integer sizes), only when the mapping is uneven
    even = True
    for i in range(tm_size_e.shape[0]):
        if tm_size_e[i] != tm_size_l[i]:
            even = False
    for i in range(sp_size_e.shape[0]):
        if sp_size_e[i] != sp_size_l[i]:
            even = False
    for op in range(3 if not even else 0):
        _op_view(op, n_lv[op], tm_dim, tm_size_l, counts[op], sp_dim, sp_size_l, sp_slot[op], geo, bits, total,
                 R, IR, moves[op], du[op], prec[op], uc[op], tir[op], tr[op], part[op], zz)
    # double buffering (operand order O, W, I)
    indiv = np.zeros((3, maxn))
    shared = np.zeros((3, maxn))
    for op in range(3):
        for m in range(n_lv[op]):
            eff = np.floor(du[op, m + 1] * prec[op, m + 1] / tr[op, m + 1])
            indiv[op, m] = eff / mem_size[lv_mem[op, m]]
            shared[op, m] = indiv[op, m]
    for s in range(shared_mems.shape[0]):
        mem = shared_mems[s]
        tot = 0.0
        for op in range(3):
            lv = shared_ops[s, op]
            if lv >= 0:
                tot += indiv[op, lv]
        for op in range(3):
            lv = shared_ops[s, op]
            if lv >= 0:
                shared[op, lv] = tot
    db = np.zeros((3, maxn + 1), dtype=np.bool_)
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
    real = np.zeros((3, maxn, 4))
    allowed = np.zeros((3, maxn, 4))
    for op in range(3):
        for m in range(n_lv[op]):
            for d in range(4):
                mx = bwmax[op, m, d]
                real[op, m, d] = np.ceil(moves[op, m, d, 0] * moves[op, m, d, 1] / mx) if mx > 0 else 0.0
                use_db = db[op, m] if (d == 0 or d == 2) else db[op, m + 1]
                allowed[op, m, d] = np.ceil(moves[op, m, d, 2] if use_db else moves[op, m, d, 5])
    stall = 0.0
    aa = np.zeros(32)
    ap = np.zeros(32)
    ac = np.zeros(32)
    ar = np.zeros(32)
    for p in range(port_bw.shape[0]):
        na = 0
        for e in range(port_start[p], port_start[p] + port_len[p]):
            op = ent_op[e]
            m = ent_lv[e]
            d = ent_dir[e]
            if moves[op, m, d, 3] == 0:
                continue
            ar[na] = real[op, m, d]
            aa[na] = allowed[op, m, d]
            ap[na] = np.ceil(moves[op, m, d, 2])
            ac[na] = moves[op, m, d, 3]
            na += 1
        if na == 1:
            stall = max(stall, (ar[0] - aa[0]) * (ac[0] - 1))
        elif na > 1:
            union = _union(aa[:na].copy(), ap[:na].copy(), ac[:na].copy(), na)
            pos = 0.0
            neg = 0.0
            muw = 0.0
            for i in range(na):
                ss = (ar[i] - aa[i]) * (ac[i] - 1)
                if ss > 0:
                    pos += ss
                else:
                    neg += ss
                muw += aa[i] * (ac[i] - 1)
            stall = max(stall, pos + max(0.0, neg + muw - union))
    # on-/off-loading
    lc = np.zeros((3, maxn, 4))
    ls = np.zeros((3, maxn, 4), dtype=np.bool_)
    for p in range(port_bw.shape[0]):
        bw_max = port_bw[p]
        c1 = np.zeros(32, dtype=np.int64)
        n1 = 0
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
                c1[n1] = e
                n1 += 1
            else:
                req += np.ceil(moves[op, m, d, 4])
                lc[op, m, d] = real[op, m, d]
                ls[op, m, d] = port_shared2[p]
        if n1 > 0:
            tots = np.zeros(n1)
            mins = np.zeros(n1)
            for i in range(n1):
                e = c1[i]
                tots[i] = real[ent_op[e], ent_lv[e], ent_dir[e]]
                mins[i] = np.ceil(du[ent_op[e], 1] * prec[ent_op[e], 1] / bw_max)
            s = max(0.0, (bw_max - req) / bw_max * (total + stall))
            order = _stable_argsort(-tots)
            for j in range(n1):
                if s <= 0:
                    break
                i = order[j]
                r = min(max(0.0, tots[i] - mins[i]), s)
                tots[i] -= r
                s -= r
            for i in range(n1):
                e = c1[i]
                lc[ent_op[e], ent_lv[e], ent_dir[e]] = tots[i]
                ls[ent_op[e], ent_lv[e], ent_dir[e]] = port_shared2[p]
    parts = np.zeros((2, 3))  # W, I x (individual, half, shared)
    for k in range(2):
        op = k  # W=0, I=1
        for m in range(n_lv[op] - 1):
            v1 = lc[op, m, 1]
            s1 = ls[op, m, 1]
            v2 = lc[op, m + 1, 0]
            s2 = ls[op, m + 1, 0]
            longest = max(v1, v2)
            if s1 and s2:
                parts[k, 2] += longest
            elif (not s1) and (not s2):
                parts[k, 0] += longest
            else:
                parts[k, 1] = longest
    w_ind, w_half, w_sh = parts[0, 0], parts[0, 1], parts[0, 2]
    i_ind, i_half, i_sh = parts[1, 0], parts[1, 1], parts[1, 2]
    onload = min(w_sh + max(i_sh + i_half + i_ind, w_half + w_ind), i_sh + max(w_sh + w_half + w_ind, i_half + i_ind))
    offload = 0.0
    for m in range(n_lv[2] - 1):
        offload += max(lc[2, m, 3], lc[2, m + 1, 2])
    return acc, energy, stall, onload, offload


@njit(cache=True)
def _effective(bounds, sp_dim, sp_size, tm_dim, tm_size):  # pragma: no cover - jitted
    """Energy-view (fractional) and latency-view sizes of an uneven mapping (see cost._effective_sizes)."""
    sp_e = sp_size.copy()
    sp_l = sp_size.copy()
    tm_e = tm_size.copy()
    for d in range(8):
        f = 1.0
        for i in range(sp_dim.shape[0]):
            if sp_dim[i] == d:
                f *= sp_size[i]
        for i in range(tm_dim.shape[0]):
            if tm_dim[i] == d:
                f *= tm_size[i]
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
    return sp_e, sp_l, tm_e


@njit(cache=True)
def _batch(bounds, macs, mac_pj, sys_dim_of_loop, n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax,
           shared_mems, shared_ops, port_bw, port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2,
           sp_dim, sp_size, sp_ad, sp_slot, tm_dims, tm_sizes, n_tm, counts, geo, bits, R, IR, zz):  # pragma: no cover
    nb = tm_dims.shape[0]
    out_e = np.zeros(nb)
    out_l = np.zeros(nb)
    for b in range(nb):
        nt = n_tm[b]
        tm_dim = tm_dims[b, :nt].copy()
        tm_size = tm_sizes[b, :nt].copy()
        sp_e, sp_l, tm_e = _effective(bounds, sp_dim, sp_size, tm_dim, tm_size)
        total = 1.0
        for i in range(nt):
            total *= tm_size[i]
        acc, energy, stall, onload, offload = _kernel(
            n_lv, lv_mem, mem_size, mem_r, mem_w, mem_db, bwmin, bwmax, shared_mems, shared_ops, port_bw,
            port_start, port_len, ent_op, ent_lv, ent_dir, port_shared2, tm_dim, tm_e, tm_size, counts[b],
            sp_dim, sp_e, sp_l, sp_slot, geo, bits, R, IR, total, zz)
        if stall < 0:
            out_e[b] = np.inf
            out_l[b] = np.inf
            continue
        # fill/drain: per systolic array dimension, (product of its energy-view unrolling) - 1
        drain = 0.0
        for a in range(sys_dim_of_loop.shape[1]):
            util = 1.0
            used = False
            for i in range(sp_dim.shape[0]):
                if sp_ad[i] == a:
                    util *= sp_e[i]
                    used = True
            if used and sys_dim_of_loop[0, a]:
                drain += max(np.ceil(np.round(util, 6)) - 1.0, 0.0)
        out_e[b] = energy.sum() + macs * mac_pj
        out_l[b] = total + stall + onload + offload + drain
    return out_e, out_l


class FastEvaluator:
    """Compiled evaluator of mappings of one layer on one hierarchy (same results as cost.evaluate)."""

    def __init__(self, layer: LayerDims, hierarchy: MemoryHierarchy, rounding: str = "accelsim"):
        if rounding not in ("accelsim", "zigzag"):
            from ..errors import ConfigError
            raise ConfigError(f"rounding must be 'accelsim' or 'zigzag', got {rounding!r}", source="FastEvaluator")
        self.zigzag = rounding == "zigzag"
        self.layer = layer
        self.hierarchy = hierarchy
        levels = {op: hierarchy.levels(op) for op in _OPS}
        mem_index = {m.name: i for i, m in enumerate(hierarchy.memories)}
        self.n_lv = np.array([len(levels[op]) for op in _OPS], dtype=np.int64)
        maxn = int(self.n_lv.max())
        self.maxn = maxn
        self.lv_mem = np.zeros((3, maxn), dtype=np.int64)
        self.bwmin = np.zeros((3, maxn, 4))
        self.bwmax = np.zeros((3, maxn, 4))
        for o, op in enumerate(_OPS):
            for m, mem in enumerate(levels[op]):
                self.lv_mem[o, m] = mem_index[mem.name]
                for d, dn in enumerate(_DIRS):
                    p = mem.port_of(op, dn)
                    if p is not None:
                        self.bwmin[o, m, d] = p.bandwidth_min_bits
                        self.bwmax[o, m, d] = p.bandwidth_max_bits
        mems = hierarchy.memories
        self.mem_size = np.array([m.size_bits for m in mems], dtype=np.float64)
        self.mem_r = np.array([m.read_pj for m in mems])
        self.mem_w = np.array([m.write_pj for m in mems])
        self.mem_db = np.array([{"auto": 0, "always": 1, "never": 2}[m.double_buffering] for m in mems], dtype=np.int64)
        level_of = {op: {m.name: i for i, m in enumerate(levels[op])} for op in _OPS}
        shared = [m for m in mems if len(m.operands) > 1]
        self.shared_mems = np.array([mem_index[m.name] for m in shared], dtype=np.int64)
        self.shared_ops = np.full((len(shared), 3), -1, dtype=np.int64)
        for s, m in enumerate(shared):
            for o, op in enumerate(_OPS):
                if op in m.operands:
                    self.shared_ops[s, o] = level_of[op][m.name]
        pbw, pstart, plen, eop, elv, edir, psh = [], [], [], [], [], [], []
        for m in mems:
            for port in m.ports:
                pbw.append(port.bandwidth_max_bits)
                pstart.append(len(eop))
                plen.append(len(port.allocation))
                for a in port.allocation:
                    o = _OPS.index(a.operand)
                    eop.append(o)
                    elv.append(level_of[a.operand][m.name])
                    edir.append(_DIRS.index(a.direction))
                psh.append(len({a.operand for a in port.allocation if a.operand in ("W", "I")}) > 1)
        self.port_bw = np.array(pbw, dtype=np.float64)
        self.port_start = np.array(pstart, dtype=np.int64)
        self.port_len = np.array(plen, dtype=np.int64)
        self.ent_op = np.array(eop, dtype=np.int64)
        self.ent_lv = np.array(elv, dtype=np.int64)
        self.ent_dir = np.array(edir, dtype=np.int64)
        self.port_shared2 = np.array(psh, dtype=np.bool_)
        self.geo = np.array([layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w,
                             layer.in_h, layer.in_w], dtype=np.int64)
        self.bits = np.array([layer.w_bits, layer.i_bits, layer.o_bits, layer.o_final_bits], dtype=np.float64)
        self.served = {op: [set(m.served_dimensions) for m in levels[op]] for op in _OPS}
        self.systolic = set(hierarchy.array.systolic_dimensions)
        self.mac_pj = hierarchy.array.mac_energy_pj
        self.ideal = float(ceil(layer.macs / hierarchy.array.num_macs))
        self.level_names = {op: [m.name for m in levels[op]] for op in _OPS}
        self.bounds = np.array([layer.size(d) for d in DIMS], dtype=np.float64)
        self.sys_mask = np.array([[d.name in self.systolic for d in hierarchy.array.dimensions]], dtype=np.bool_)
        self._sp_cache: dict = {}

    def _arrays(self, mapping: Mapping):
        layer = self.layer
        sp_over, tm_over = _effective_sizes(layer, mapping)
        sp_dim, sp_e, sp_l, slots = [], [], [], [[], [], []]
        for ui, su in enumerate(mapping.spatial):
            js = []
            for o, op in enumerate(_OPS):
                j = next((i for i, s in enumerate(self.served[op]) if su.array_dim in s), None)
                if j is None:
                    from ..errors import ConfigError
                    raise ConfigError(f"no memory holding {op} serves array dimension {su.array_dim}",
                                      source=self.hierarchy.name, field="served_dimensions")
                js.append(j)
            for li, lp in enumerate(su.loops):
                sp_dim.append(_DIM_CODE[lp.dim])
                v = sp_over.get((ui, li))
                sp_e.append(float(lp.size) if v is None else v)
                sp_l.append(float(lp.size) if v is None else float(max(1, int(v))))
                for o in range(3):
                    slots[o].append(js[o])
        tm_dim = np.array([_DIM_CODE[lp.dim] for lp in mapping.temporal], dtype=np.int64)
        tm_l = np.array([float(lp.size) for lp in mapping.temporal])
        tm_e = tm_l.copy()
        for ti, v in tm_over.items():
            tm_e[ti] = v
        counts = np.zeros((3, self.maxn), dtype=np.int64)
        for o, op in enumerate(_OPS):
            c = mapping.counts(op)
            counts[o, : len(c)] = c
        return (tm_dim, tm_e, tm_l, counts, np.array(sp_dim, dtype=np.int64), np.array(sp_e, dtype=np.float64),
                np.array(sp_l, dtype=np.float64), np.array(slots, dtype=np.int64).reshape(3, len(sp_dim)), sp_over)

    def _run(self, mapping: Mapping):
        tm_dim, tm_e, tm_l, counts, sp_dim, sp_e, sp_l, sp_slot, sp_over = self._arrays(mapping)
        total = float(prod(lp.size for lp in mapping.temporal))
        acc, energy, stall, onload, offload = _kernel(
            self.n_lv, self.lv_mem, self.mem_size, self.mem_r, self.mem_w, self.mem_db, self.bwmin, self.bwmax,
            self.shared_mems, self.shared_ops, self.port_bw, self.port_start, self.port_len, self.ent_op,
            self.ent_lv, self.ent_dir, self.port_shared2, tm_dim, tm_e, tm_l, counts, sp_dim, sp_e, sp_l, sp_slot,
            self.geo, self.bits, _R, _IR, total, self.zigzag)
        if stall < 0:
            from ..errors import ConfigError
            raise ConfigError("a memory has no port for a data movement the mapping needs", source=self.hierarchy.name)
        drain = 0.0
        for ui, su in enumerate(mapping.spatial):
            if su.array_dim in self.systolic and su.loops:
                util = prod(sp_over.get((ui, li), lp.size) for li, lp in enumerate(su.loops))
                drain += max(ceil(round(util, 6)) - 1, 0)
        return acc, energy, stall, onload, offload, drain, total

    def spatial_arrays(self, spatial) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(loop dim codes, sizes, array-dimension index, slot per operand [3, loops]) of a spatial unrolling."""
        key = tuple(spatial)
        hit = self._sp_cache.get(key)
        if hit is not None:
            return hit
        ad_names = [d.name for d in self.hierarchy.array.dimensions]
        dims, sizes, ads, slots = [], [], [], [[], [], []]
        for su in spatial:
            js = []
            for op in _OPS:
                j = next((i for i, s in enumerate(self.served[op]) if su.array_dim in s), None)
                if j is None:
                    from ..errors import ConfigError
                    raise ConfigError(f"no memory holding {op} serves array dimension {su.array_dim}",
                                      source=self.hierarchy.name, field="served_dimensions")
                js.append(j)
            for lp in su.loops:
                dims.append(_DIM_CODE[lp.dim])
                sizes.append(float(lp.size))
                ads.append(ad_names.index(su.array_dim))
                for o in range(3):
                    slots[o].append(js[o])
        out = (np.array(dims, dtype=np.int64), np.array(sizes, dtype=np.float64), np.array(ads, dtype=np.int64),
               np.array(slots, dtype=np.int64).reshape(3, len(dims)))
        self._sp_cache[key] = out
        return out

    def batch(self, spatial, tm_dims: np.ndarray, tm_sizes: np.ndarray, n_tm: np.ndarray,
              counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(energy_pj[B], latency_cycles[B]) of B temporal mappings sharing one spatial unrolling.

        ``tm_dims``/``tm_sizes``: [B, T] loop dimension codes (``DIMS`` order N G K C P Q R S = 0..7)
        and sizes, innermost first, row ``b`` using its first ``n_tm[b]`` entries; ``counts``:
        [B, 3, max levels] loops per memory level for W, I, O. Rows are not validated; a row
        whose data movement has no port gets ``inf``.
        """
        sp_dim, sp_size, sp_ad, sp_slot = self.spatial_arrays(spatial)
        return _batch(self.bounds, float(self.layer.macs), self.mac_pj, self.sys_mask, self.n_lv, self.lv_mem,
                      self.mem_size, self.mem_r, self.mem_w, self.mem_db, self.bwmin, self.bwmax, self.shared_mems,
                      self.shared_ops, self.port_bw, self.port_start, self.port_len, self.ent_op, self.ent_lv,
                      self.ent_dir, self.port_shared2, sp_dim, sp_size, sp_ad, sp_slot,
                      np.ascontiguousarray(tm_dims, dtype=np.int64), np.ascontiguousarray(tm_sizes, dtype=np.float64),
                      np.ascontiguousarray(n_tm, dtype=np.int64), np.ascontiguousarray(counts, dtype=np.int64),
                      self.geo, self.bits, _R, _IR, self.zigzag)

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
            for m, name in enumerate(self.level_names[op]):
                levels.append(OperandLevelCost(op, name, float(acc[o, m, 0]), float(acc[o, m, 1]),
                                               float(acc[o, m, 2]), float(acc[o, m, 3]), float(energy[o, m])))
        mac_e = self.layer.macs * self.mac_pj
        return MappingCost(
            energy_pj=mac_e + float(energy.sum()), mac_energy_pj=mac_e,
            latency_cycles=total + stall + onload + offload + drain, ideal_cycles=self.ideal, temporal_cycles=total,
            stall_cycles=float(stall), onload_cycles=float(onload), offload_cycles=float(offload),
            fill_drain_cycles=drain, levels=tuple(levels))


__all__ = ["FastEvaluator"]
