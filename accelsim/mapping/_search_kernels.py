"""Hot parts of the mapper: loop prime factors, multiset permutations, LOMA-style allocation.

Everything here works on small integer tuples (dimension indices into ``ir.DIMS``) so the
search in :mod:`accelsim.mapping.search` can enumerate thousands of loop orders per layer
without building :class:`~accelsim.mapping.ir.Mapping` objects for each.

Assumptions (shared with ZigZag 3.9.1's LOMA, which this reproduces):

- temporal loop sizes are the prime factors of each dimension's temporal trip count
  ``ceil(bound / spatial factor)``; when there are more than ``lpf_limit`` of them, the two
  smallest factors of the dimension with the most factors are merged (first such dimension in
  ZigZag's ONNX order ``N, K, G, Q, P, C, S, R``), repeatedly, until ``lpf_limit`` remain;
- a loop order is allocated to the memory levels bottom-up: at each memory, every operand it
  holds takes a prefix of its still unallocated loops; among the prefix combinations whose
  summed tile fits the capacity, the one with the fewest words fetched from the level above
  (``unallocated iterations x tile bits``) wins, later combinations winning ties (ZigZag's
  ``<=``); an operand's outermost memory takes all remaining loops.
"""
from __future__ import annotations

from itertools import product as _iproduct
from math import gcd, prod
from typing import Iterator, Sequence

from .ir import DIMS

DIM_INDEX: dict[str, int] = {d: i for i, d in enumerate(DIMS)}
#: ZigZag's ONNX loop-dimension order (B, K, G, OX, OY, C, FX, FY) in accelsim letters
ZIGZAG_DIM_ORDER: tuple[str, ...] = ("N", "K", "G", "Q", "P", "C", "S", "R")
_N, _G, _K, _C, _P, _Q, _R, _S = range(8)
#: dims irrelevant to each operand (reduction for O, K for I, N/P/Q for W)
IRRELEVANT: dict[str, frozenset[int]] = {
    "W": frozenset({_N, _P, _Q}),
    "I": frozenset({_K}),
    "O": frozenset({_C, _R, _S}),
}


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` in ascending order (``[]`` for 1)."""
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def loop_prime_factors(trips: dict[str, int], lpf_limit: int | None) -> list[tuple[int, int]]:
    """LOMA's loop prime factors ``(dim index, size)`` of the temporal trip counts.

    ``trips`` maps dims to temporal trip counts (1s are dropped). With ``lpf_limit`` the
    factor list is shortened as ZigZag's ``LomaEngine.limit_lpfs`` does (never below one
    factor per dimension). The result is sorted by (dim index, size).
    """
    dims = [d for d in ZIGZAG_DIM_ORDER if trips.get(d, 1) > 1]
    pfs: dict[str, list[int]] = {d: prime_factors(int(trips[d])) for d in dims}
    if lpf_limit is not None:
        limit = max(int(lpf_limit), len(dims))
        n = sum(len(v) for v in pfs.values())
        while n > limit:
            best = max(dims, key=lambda d: len(pfs[d]))  # first dim (ZigZag order) with most factors
            f = sorted(pfs[best])
            pfs[best] = sorted(f[2:] + [f[0] * f[1]])
            n -= 1
    out = [(DIM_INDEX[d], s) for d in dims for s in pfs[d]]
    return sorted(out)


def multiset_permutations(items: Sequence[tuple[int, int]]) -> Iterator[tuple[tuple[int, int], ...]]:
    """Distinct permutations of ``items`` in lexicographic order (deterministic)."""
    pool = sorted(items)
    n = len(pool)
    if n == 0:
        yield ()
        return
    keys = sorted(set(pool))
    counts = [pool.count(k) for k in keys]
    cur: list[tuple[int, int]] = []

    def rec() -> Iterator[tuple[tuple[int, int], ...]]:
        if len(cur) == n:
            yield tuple(cur)
            return
        for i, k in enumerate(keys):
            if counts[i]:
                counts[i] -= 1
                cur.append(k)
                yield from rec()
                cur.pop()
                counts[i] += 1

    yield from rec()


def footprint(op: str, v: Sequence[int], geo: tuple[int, int, int, int]) -> int:
    """Elements of operand ``op`` touched by per-dim extents ``v`` (indexed like ``DIMS``).

    ``geo`` = (stride_h, stride_w, dilation_h, dilation_w, in_h, in_w) for the input's sliding
    window (exact unique rows/columns, clipped to the input as ``LayerDims.rows_for`` does).
    """
    if op == "W":
        return v[_G] * v[_K] * v[_C] * v[_R] * v[_S]
    if op == "O":
        return v[_N] * v[_G] * v[_K] * v[_P] * v[_Q]
    sh, sw, dh, dw, in_h, in_w = geo
    return v[_N] * v[_G] * v[_C] * _window(v[_P], v[_R], sh, dh, in_h) * _window(v[_Q], v[_S], sw, dw, in_w)


def _window(a: int, b: int, stride: int, dilation: int, clip: int) -> int:
    """Distinct input rows (columns) of ``a`` outputs x ``b`` kernel taps, clipped to ``clip`` if > 0
    (the same count as ``LayerDims.rows_for``)."""
    g = gcd(stride, dilation)
    n = a * b - max(0, b - stride // g) * (a - dilation // g)
    return min(clip, n) if clip else n


class AllocationProblem:
    """The fixed part of allocating loop orders to one hierarchy for one layer + spatial mapping.

    ``levels[op]``: memory names holding ``op``, innermost first; ``spatial_at[op][i]``: the
    spatial loops (dim index, size) that first become visible at level ``i`` of ``op`` (a loop
    on array dimension ``D`` belongs to the innermost level of ``op`` that serves ``D``; none:
    the outermost). ``memories``: (name, capacity bits, operands in the memory's order).
    """

    def __init__(self, *, levels: dict[str, list[str]], spatial_at: dict[str, list[list[tuple[int, int]]]],
                 memories: list[tuple[str, int, tuple[str, ...]]], bits: dict[str, int], o_final_bits: int,
                 geo: tuple[int, int, int, int]):
        self.levels = levels
        self.spatial_at = spatial_at
        self.memories = memories
        self.bits = bits
        self.o_final_bits = o_final_bits
        self.geo = geo
        self.ops = tuple(op for op in ("W", "I", "O") if op in levels)
        # spatial ir loops of O above level i (decides partial vs final precision)
        self._o_spatial_ir_above = []
        so = spatial_at["O"]
        for i in range(len(so)):
            above = [s for lv in so[i + 1:] for (d, s) in lv if d in IRRELEVANT["O"] and s > 1]
            self._o_spatial_ir_above.append(bool(above))

    def arrays(self) -> tuple:
        """The problem as numpy arrays for :func:`enumerate_orders` (operand order W, I, O); built
        once per problem (shared: never modified)."""
        hit = getattr(self, "_arrays", None)
        if hit is None:
            hit = self._arrays = self._build_arrays()
        return hit

    def _build_arrays(self) -> tuple:
        import numpy as np
        opi = {"W": 0, "I": 1, "O": 2}
        nlev = np.array([len(self.levels[op]) for op in ("W", "I", "O")], dtype=np.int64)
        maxlev = int(nlev.max())
        names = [m[0] for m in self.memories]
        mem_of_lev = np.full((3, maxlev), -1, dtype=np.int64)
        for op in ("W", "I", "O"):
            for li, nm in enumerate(self.levels[op]):
                mem_of_lev[opi[op], li] = names.index(nm)
        mem_cap = np.array([m[1] for m in self.memories], dtype=np.int64)
        mem_ops = np.full((len(self.memories), 3), -1, dtype=np.int64)
        for mi, (_, _, ops) in enumerate(self.memories):
            for j, op in enumerate([op for op in ops if op in self.ops]):
                mem_ops[mi, j] = opi[op]
        sp_ext = np.ones((3, maxlev, 8), dtype=np.int64)
        for op in ("W", "I", "O"):
            for li, lst in enumerate(self.spatial_at[op]):
                for d, s in lst:
                    sp_ext[opi[op], li, d] *= s
        o_ir = np.zeros(maxlev, dtype=np.bool_)
        for li, f in enumerate(self._o_spatial_ir_above):
            o_ir[li] = f
        bits = np.array([self.bits["W"], self.bits["I"], self.bits["O"]], dtype=np.int64)
        geo = np.array(self.geo, dtype=np.int64)
        return (nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_ir, bits, int(self.o_final_bits), geo, _IRR)

    def allocate(self, order: Sequence[tuple[int, int]]) -> dict[str, tuple[int, ...]] | None:
        """Level loop counts per operand for ``order`` (innermost first), or None if it cannot fit."""
        n = len(order)
        # per operand: extents so far (allocated), position in order, current level index
        ext = {op: [1] * 8 for op in self.ops}
        pos = {op: 0 for op in self.ops}
        lvl = {op: 0 for op in self.ops}
        counts: dict[str, list[int]] = {op: [] for op in self.ops}
        for op in self.ops:
            for d, s in self.spatial_at[op][0]:
                ext[op][d] *= s
        # suffix products of the order's sizes (iterations left above position i)
        suffix = [1] * (n + 1)
        for i in range(n - 1, -1, -1):
            suffix[i] = suffix[i + 1] * order[i][1]
        o_ir_after = [False] * (n + 1)  # any O-irrelevant loop at position >= i
        for i in range(n - 1, -1, -1):
            o_ir_after[i] = o_ir_after[i + 1] or order[i][0] in IRRELEVANT["O"]
        geo = self.geo
        for name, cap, mem_ops in self.memories:
            ops = [op for op in mem_ops if op in self.ops]
            if not ops:
                continue
            sizes: list[list[int]] = []
            for op in ops:
                li = lvl[op]
                top = li == len(self.levels[op]) - 1
                if op == "O":
                    partial = o_ir_after[pos[op]] or self._o_spatial_ir_above[li]
                    bits = self.bits["O"] if partial else self.o_final_bits
                else:
                    bits = self.bits[op]
                v = list(ext[op])
                sz = [footprint(op, v, geo) * bits]
                if sz[0] > cap:
                    return None
                for j in range(pos[op], n):
                    d, s = order[j]
                    v[d] *= s
                    b = footprint(op, v, geo) * bits
                    if b > cap:
                        break
                    sz.append(b)
                if top:
                    if len(sz) != n - pos[op] + 1:
                        return None
                    sz = [sz[-1]]
                sizes.append(sz)
            best_acc, best_idx, first = None, None, True
            for combo in _iproduct(*[range(len(s)) for s in sizes]):
                tot = 0
                acc = 0
                for k, op in enumerate(ops):
                    size = sizes[k][combo[k]]
                    tot += size
                    li = lvl[op]
                    if li != len(self.levels[op]) - 1:
                        acc += suffix[pos[op] + combo[k]] * size
                if tot > cap:
                    if first:
                        return None
                    first = False
                    continue
                first = False
                if best_acc is None or acc <= best_acc:
                    best_acc, best_idx = acc, combo
            if best_idx is None:
                return None
            for k, op in enumerate(ops):
                li = lvl[op]
                top = li == len(self.levels[op]) - 1
                take = (n - pos[op]) if top else best_idx[k]
                for j in range(pos[op], pos[op] + take):
                    d, s = order[j]
                    ext[op][d] *= s
                pos[op] += take
                counts[op].append(take)
                lvl[op] = li + 1
                if lvl[op] < len(self.levels[op]):
                    for d, s in self.spatial_at[op][lvl[op]]:
                        ext[op][d] *= s
        for op in self.ops:
            if pos[op] != n or len(counts[op]) != len(self.levels[op]):
                return None
        return {op: tuple(c) for op, c in counts.items()}


def stationary_levels(op: str, order: Sequence[tuple[int, int]], counts: Sequence[int]) -> tuple:
    """ZigZag's 'innermost stationary loop merge-down' of one operand's levels, as a signature.

    Irrelevant loops at the bottom of a level move to the level below (repeatedly), because the
    data they iterate over stays put. Returns per level (sorted loops, product of the level's
    top irrelevant run, product of its top relevant run), plus the ordered sub-sequence of
    input-window loops (P, Q, R, S) per level for the input operand. Two mappings with equal
    signatures for all operands get equal access counts and transfer windows in ZigZag's model.
    """
    irr = IRRELEVANT[op]
    lv: list[list[tuple[int, int]]] = []
    i = 0
    for c in counts:
        lv.append(list(order[i:i + c]))
        i += c
    changed = True
    while changed:
        changed = False
        for j in range(1, len(lv)):
            while lv[j] and lv[j][0][0] in irr:
                lv[j - 1].append(lv[j].pop(0))
                changed = True
    sig = []
    for loops in lv:
        top_ir = 1
        for d, s in reversed(loops):
            if d in irr:
                top_ir *= s
            else:
                break
        top_r = 1
        for d, s in reversed(loops):
            if d not in irr:
                top_r *= s
            else:
                break
        bottom_ir = 1
        for d, s in loops:
            if d in irr:
                bottom_ir *= s
            else:
                break
        win = tuple(x for x in loops if x[0] in (_P, _Q, _R, _S)) if op == "I" else ()
        sig.append((tuple(sorted(loops)), top_ir, top_r, bottom_ir, win))
    return tuple(sig)


def n_distinct_permutations(items: Sequence) -> int:
    from collections import Counter
    from math import factorial
    out = factorial(len(items))
    for c in Counter(items).values():
        out //= factorial(c)
    return out


def total_trip(order: Sequence[tuple[int, int]]) -> int:
    return prod(s for _, s in order)


# ---------------------------------------------------------------------------- numba fast path
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from .._jit import JIT_ONLY, NO_NRT  # noqa: E402

# The per-order kernels below are compiled with ``_nrt=False`` (numba's runtime off): they
# create no array, and every array argument of a call (or view) would otherwise cost two atomic
# reference-count updates — most of the enumeration's time when profiled (``perf``), since
# the helpers are called several times per loop order. Only :func:`enumerate_orders` allocates.
# :func:`_allocate_nb` and :func:`_scan` (one call site each) are also inlined into the loop
# (``inline='always'``): passing their many array arguments cost ~20% of the loop (measured;
# ~1 s more of cold compile).

#: rows presized by :func:`enumerate_orders` (more: grown by doubling)
_PRESIZE = 4096
_IRR = np.zeros((3, 8), dtype=np.bool_)
for _o, _op in enumerate(("W", "I", "O")):
    for _d in IRRELEVANT[_op]:
        _IRR[_o, _d] = True


@njit(cache=True)
def reduced_geo(geo):  # pragma: no cover - numba
    """``geo`` with each axis' stride and dilation divided by their gcd (``_fp``'s form): the window
    formula then needs no gcd and no division."""
    out = geo.copy()
    for ax in range(2):
        g = geo[ax]
        h = geo[2 + ax]
        while h:
            g, h = h, g % h
        out[ax] = geo[ax] // g
        out[2 + ax] = geo[2 + ax] // g
    return out


@njit(cache=True, **NO_NRT)
def _window_reduced(a, b, stride, dilation, clip):  # pragma: no cover - numba
    """:func:`accelsim.mapping.fast._window` for a coprime ``stride`` and ``dilation`` (its gcd is 1)."""
    n = a * b - max(0, b - stride) * (a - dilation)
    if clip > 0 and clip < n:
        return clip
    return n


@njit(cache=True, **NO_NRT)
def _fp(o, v, rgeo):  # pragma: no cover - numba
    """Elements of operand ``o`` (0 W, 1 I, 2 O) touched by extents ``v``; ``rgeo``: :func:`reduced_geo`."""
    if o == 0:
        return v[1] * v[2] * v[3] * v[6] * v[7]
    if o == 2:
        return v[0] * v[1] * v[2] * v[4] * v[5]
    return (v[0] * v[1] * v[3] * _window_reduced(v[4], v[6], rgeo[0], rgeo[2], rgeo[4])
            * _window_reduced(v[5], v[7], rgeo[1], rgeo[3], rgeo[5]))


@njit(cache=True, **NO_NRT)
def _next_perm(a):  # pragma: no cover - numba
    """Next lexicographic permutation of int array ``a`` in place; returns the first position that
    changed (later ones may have changed too), or -1 after the last permutation."""
    n = a.shape[0]
    i = n - 2
    while i >= 0 and a[i] >= a[i + 1]:
        i -= 1
    if i < 0:
        return -1
    j = n - 1
    while a[j] <= a[i]:
        j -= 1
    t = a[i]
    a[i] = a[j]
    a[j] = t
    lo = i + 1
    hi = n - 1
    while lo < hi:
        t = a[lo]
        a[lo] = a[hi]
        a[hi] = t
        lo += 1
        hi -= 1
    return i


#: fields of the scan memo's integer part (``sc_int[m, j, field]``)
_OK, _POS, _BITS, _CNT, _DIRTY = range(5)


@njit(cache=True, **NO_NRT, inline='always')
def _scan(o, top, pos, b, cap, od, osz, rgeo, ext, m, j, v, sc_int, sc_ext, sc_sizes):  # pragma: no cover
    """Tile sizes (bits) of operand ``o`` at memory ``m`` (its slot ``j``) keeping 0, 1, ... of the
    unallocated loops ``od/osz[pos:]`` on extents ``ext[o]`` at width ``b``, up to the first that
    exceeds ``cap``; for the outermost level (``top``) only the whole tile. Returns how many fit
    (0: not even the first); the sizes are ``sc_sizes[m, j, :count]``. ``v`` [8]: scratch.

    Memo: the slot's previous scan is kept with its inputs (``pos``, ``ext[o]``, ``b``) and the
    first loop position changed since (``_DIRTY``, lowered by the caller at every new order).
    Step ``k`` (positions ``pos .. pos + k - 1`` kept) depends on nothing else, so on equal inputs
    the steps before the dirty position are reused and the scan resumes after them; the whole
    tile of ``top`` depends on the loops from ``pos`` on as a multiset, i.e. on the positions
    below ``pos`` only.
    """
    n = od.shape[0]
    same = sc_int[m, j, _OK] == 1 and sc_int[m, j, _POS] == pos and sc_int[m, j, _BITS] == b
    if same:
        for d in range(8):
            if sc_ext[m, j, d] != ext[o, d]:
                same = False
                break
    dirty = sc_int[m, j, _DIRTY]
    prev = sc_int[m, j, _CNT]
    sc_int[m, j, _DIRTY] = n
    if same and (prev == 0 or (top and pos <= dirty)):
        return prev  # the empty tile depends on no loop position
    for d in range(8):
        v[d] = ext[o, d]
    if top:
        for i in range(pos, n):
            v[od[i]] *= osz[i]
        s = _fp(o, v, rgeo) * b
        sc_sizes[m, j, 0] = s
        cnt = 1 if s <= cap else 0
    else:
        k0 = 0  # the last step kept
        if same:
            k0 = min(prev - 1, max(dirty - pos, 0))
            for i in range(pos, pos + k0):
                v[od[i]] *= osz[i]
        else:
            s = _fp(o, v, rgeo) * b
            if s > cap:
                k0 = -1
            else:
                sc_sizes[m, j, 0] = s
        cnt = k0 + 1
        if k0 >= 0:
            for i in range(pos + k0, n):
                v[od[i]] *= osz[i]
                s = _fp(o, v, rgeo) * b
                if s > cap:
                    break
                cnt += 1
                sc_sizes[m, j, cnt - 1] = s
    if not same:
        sc_int[m, j, _OK] = 1
        sc_int[m, j, _POS] = pos
        sc_int[m, j, _BITS] = b
        for d in range(8):
            sc_ext[m, j, d] = ext[o, d]
    sc_int[m, j, _CNT] = cnt
    return cnt


@njit(cache=True, **NO_NRT, inline='always')
def _allocate_nb(od, osz, nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_sp_ir_above, bits, o_final_bits, rgeo,
                 irr, counts, ext, pos, lvl, suffix, o_ir_after, nsz, take_idx, v, sc_int, sc_ext, sc_sizes):  # pragma: no cover
    """LOMA allocation of one order (dims ``od``, sizes ``osz``); fills ``counts[op, lev]``.
    ``rgeo``: :func:`reduced_geo` of the geometry.

    ``ext`` [3, 8], ``pos``/``lvl``/``nsz``/``take_idx`` [3], ``suffix``/``o_ir_after`` [n + 1], ``v`` [8]:
    scratch space (overwritten; the caller allocates it once); ``sc_*``: the memo of
    :func:`_scan` (kept from order to order)."""
    n = od.shape[0]
    for o in range(3):
        pos[o] = 0
        lvl[o] = 0
        for d in range(8):
            ext[o, d] = sp_ext[o, 0, d]
        for l in range(counts.shape[1]):
            counts[o, l] = 0
    suffix[n] = 1
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] * osz[i]
    o_ir_after[n] = False
    for i in range(n - 1, -1, -1):
        o_ir_after[i] = o_ir_after[i + 1] or irr[2, od[i]]
    nmem = mem_cap.shape[0]
    for m in range(nmem):
        cap = mem_cap[m]
        nops = 0
        for j in range(3):
            if mem_ops[m, j] >= 0:
                nops += 1
        if nops == 0:
            continue
        for j in range(nops):
            o = mem_ops[m, j]
            li = lvl[o]
            b = bits[o]
            if o == 2:
                if not (o_ir_after[pos[o]] or o_sp_ir_above[li]):
                    b = o_final_bits
            # the outermost level takes every remaining loop: footprints grow with every
            # loop added (products; distinct window rows of a superset), so the whole tile
            # fits iff every partial one does — only the whole one is computed
            k = _scan(o, li == nlev[o] - 1, pos[o], b, cap, od, osz, rgeo, ext, m, j, v, sc_int, sc_ext, sc_sizes)
            if k == 0:
                return False
            nsz[j] = k
        sizes = sc_sizes[m]
        best_acc = -1
        if nops == 1:  # one operand: its prefix lengths in order (as below, without the mixed radix)
            o = mem_ops[m, 0]
            if sizes[0, 0] > cap:
                return False
            if lvl[o] == nlev[o] - 1:
                best_acc = 0
                take_idx[0] = 0
            else:
                for ij in range(nsz[0]):
                    acc = suffix[pos[o] + ij] * sizes[0, ij]
                    if best_acc < 0 or acc <= best_acc:
                        best_acc = acc
                        take_idx[0] = ij
        else:
            total = 1
            for j in range(nops):
                total *= nsz[j]
            best_c = -1
            for c in range(total):
                rem = c
                tot = 0
                acc = 0
                # mixed radix, last operand fastest (itertools.product order)
                idx0 = 0
                idx1 = 0
                idx2 = 0
                for j in range(nops - 1, -1, -1):
                    ij = rem % nsz[j]
                    rem //= nsz[j]
                    if j == 0:
                        idx0 = ij
                    elif j == 1:
                        idx1 = ij
                    else:
                        idx2 = ij
                for j in range(nops):
                    ij = idx0 if j == 0 else (idx1 if j == 1 else idx2)
                    o = mem_ops[m, j]
                    s = sizes[j, ij]
                    tot += s
                    if lvl[o] != nlev[o] - 1:
                        acc += suffix[pos[o] + ij] * s
                if tot > cap:
                    if c == 0:
                        return False
                    continue
                if best_acc < 0 or acc <= best_acc:
                    best_acc = acc
                    best_c = c
            if best_c < 0:
                return False
            rem = best_c
            for j in range(nops - 1, -1, -1):
                take_idx[j] = rem % nsz[j]
                rem //= nsz[j]
        for j in range(nops):
            o = mem_ops[m, j]
            li = lvl[o]
            top = li == nlev[o] - 1
            take = (n - pos[o]) if top else take_idx[j]
            for i in range(pos[o], pos[o] + take):
                ext[o, od[i]] *= osz[i]
            pos[o] += take
            counts[o, li] = take
            lvl[o] = li + 1
            if lvl[o] < nlev[o]:
                for d in range(8):
                    ext[o, d] *= sp_ext[o, lvl[o], d]
    for o in range(3):
        if pos[o] != n or lvl[o] != nlev[o]:
            return False
    return True


@njit(cache=True, **NO_NRT)
def _cls(o, d, irr):  # pragma: no cover - numba
    """Relevance class of dim ``d`` for operand ``o``: 0 irrelevant, 1 relevant, 2+ input window."""
    if irr[o, d]:
        return 0
    if o == 1 and d >= 4:
        return 2 + d
    return 1


@njit(cache=True, **NO_NRT)
def _signature_nb(od, osz, nlev, counts, irr, out, lvd, lvs, ln):  # pragma: no cover - numba
    """Stationarity signature of one allocated order into ``out`` (per op, level: 8 dim products,
    top-irrelevant, top-relevant and bottom-irrelevant run products). ``lvd``/``lvs``
    [levels, n] and ``ln`` [levels]: scratch space."""
    n = od.shape[0]
    maxlev = counts.shape[1]
    for i in range(out.shape[0]):  # element loops, here and below: numba compiles a slice
        out[i] = 0                 # assignment's shape-error path in seconds (issue 11: cold start)
    for o in range(3):
        i = 0
        for l in range(nlev[o]):
            ln[l] = 0
            for t in range(counts[o, l]):
                lvd[l, ln[l]] = od[i]
                lvs[l, ln[l]] = osz[i]
                ln[l] += 1
                i += 1
        changed = True
        while changed:
            changed = False
            for l in range(1, nlev[o]):
                while ln[l] > 0 and irr[o, lvd[l, 0]]:
                    lvd[l - 1, ln[l - 1]] = lvd[l, 0]
                    lvs[l - 1, ln[l - 1]] = lvs[l, 0]
                    ln[l - 1] += 1
                    for t in range(1, ln[l]):
                        lvd[l, t - 1] = lvd[l, t]
                        lvs[l, t - 1] = lvs[l, t]
                    ln[l] -= 1
                    changed = True
        for l in range(nlev[o]):
            base = (o * maxlev + l) * (11 + n + 1)
            for d in range(8):
                out[base + d] = 1
            for t in range(ln[l]):
                out[base + lvd[l, t]] *= lvs[l, t]
            top_ir = 1
            for t in range(ln[l] - 1, -1, -1):
                if irr[o, lvd[l, t]]:
                    top_ir *= lvs[l, t]
                else:
                    break
            top_r = 1
            for t in range(ln[l] - 1, -1, -1):
                if not irr[o, lvd[l, t]]:
                    top_r *= lvs[l, t]
                else:
                    break
            bot = 1
            for t in range(ln[l]):
                if irr[o, lvd[l, t]]:
                    bot *= lvs[l, t]
                else:
                    break
            out[base + 8] = top_ir
            out[base + 9] = top_r
            out[base + 10] = bot
            # ordered top run (same relevance class; an input-window loop is a class of its own)
            # plus the loop below it: the cost model's top-run products after sliding-window
            # decoupling depend on which loops these are, not only on their product
            j = 0
            t = ln[l] - 1
            if t >= 0:
                c0 = _cls(o, lvd[l, t], irr)
                while t >= 0:
                    ct = _cls(o, lvd[l, t], irr)
                    out[base + 11 + j] = lvd[l, t] + 8 * lvs[l, t]
                    j += 1
                    t -= 1
                    if ct != c0 or ct >= 2:
                        break
                if t >= 0 and j < n:
                    out[base + 11 + j] = lvd[l, t] + 8 * lvs[l, t]


@njit(cache=True, **NO_NRT)
def _mix(h):  # pragma: no cover - numba
    """Final avalanche of a 64-bit row hash (splitmix64's finaliser)."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@njit(cache=True, **NO_NRT)
def _row_hash(row, hash_mask):  # pragma: no cover - numba
    """FNV-style hash of an int row in four independent lanes (no chain of dependent multiplies
    through the whole row), masked; it only places rows in the table (classes compare rows)."""
    p = np.uint64(1099511628211)
    h0 = np.uint64(1469598103934665603)
    h1 = np.uint64(0x9E3779B97F4A7C15)
    h2 = np.uint64(0xC2B2AE3D27D4EB4F)
    h3 = np.uint64(0x165667B19E3779F9)
    w = row.shape[0]
    i = 0
    while i + 4 <= w:
        h0 = (h0 ^ np.uint64(row[i])) * p
        h1 = (h1 ^ np.uint64(row[i + 1])) * p
        h2 = (h2 ^ np.uint64(row[i + 2])) * p
        h3 = (h3 ^ np.uint64(row[i + 3])) * p
        i += 4
    while i < w:
        h0 = (h0 ^ np.uint64(row[i])) * p
        i += 1
    return _mix(h0 ^ _mix(h1 ^ _mix(h2 ^ _mix(h3)))) & hash_mask


@njit(cache=True, **NO_NRT)
def _same_row(a, b):  # pragma: no cover - numba
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return False
    return True


@njit(cache=True, **NO_NRT)
def _pins_hold(od, osz, pin_dim, pin_size):  # pragma: no cover - numba
    """Whether the order (dims ``od``, sizes ``osz``) satisfies every position pin (-1 / 0: free)."""
    for i in range(pin_dim.shape[0]):
        if pin_dim[i] >= 0 and od[i] != pin_dim[i]:
            return False
        if pin_size[i] > 0 and osz[i] != pin_size[i]:
            return False
    return True


#: :func:`_enumerate_run`'s state ``st``: orders enumerated, infeasible, rows kept, classes, finished
_ST_K, _ST_BAD, _ST_M, _ST_NREP, _ST_DONE = range(5)
#: :func:`_enumerate_run`'s returns: finished, rows full, class table at half load
_RUN_DONE, _RUN_ROWS, _RUN_TABLE = range(3)


@njit(cache=True)
def enumerate_orders(keys_dim, keys_size, nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_sp_ir_above, bits,
                     o_final_bits, geo, irr, max_orders, dedupe, pin_dim, pin_size, hash_mask):  # pragma: no cover
    """Distinct loop orders (lexicographic) with their LOMA allocation, grouped by signature.

    ``keys_*``: the loop prime factors sorted ascending by (dim, size). Every distinct permutation
    is allocated (at most ``max_orders``); the kept rows are the feasible orders satisfying the
    position pins ``pin_dim``/``pin_size`` [n] (-1 / 0: free; ``pin_dim[0] == -2``: no order
    satisfies them), and with ``dedupe`` only the first (lexicographic) of every stationarity
    signature class. Classes are found with an open-addressing hash table over the signature rows
    (``hash_mask`` masks the hash, for tests: 0 makes every row collide); two rows are in one class
    only if their signatures are equal element by element (a class's first row is kept and its
    signature recomputed on a hash match), so the grouping is exact whatever the hash. Returns
    (rank [m]: enumeration index of each kept row, orders [m, n] as indices into the keys, counts
    [m, 3, maxlev], class [m]: index of the row's class among all classes in first-seen order,
    number of orders enumerated, number infeasible).

    This function allocates the arrays; the per-order work runs in :func:`_enumerate_run`
    (compiled without reference counting), which returns here only to have the rows or the class
    table grown.
    """
    n = keys_dim.shape[0]
    maxlev = 0
    for o in range(3):
        if nlev[o] > maxlev:
            maxlev = nlev[o]
    # collapse equal keys so the permutation generator sees a multiset
    rank = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        rank[i] = rank[i - 1] + (1 if (keys_dim[i] != keys_dim[i - 1] or keys_size[i] != keys_size[i - 1]) else 0)
    a = rank.copy()
    # rank value -> key index (first occurrence)
    first = np.zeros(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        first[rank[i]] = i
    width = 3 * maxlev * (11 + n + 1)
    cap = max(1, min(max_orders, _PRESIZE))  # the rows, sized for every order up to _PRESIZE
    out_rank = np.empty(cap, dtype=np.int64)
    out_orders = np.empty((cap, n), dtype=np.int64)
    out_counts = np.empty((cap, 3, maxlev), dtype=np.int64)
    out_cls = np.empty(cap, dtype=np.int64)
    rep_row = np.empty(cap, dtype=np.int64)  # class -> its first row (a kept row)
    rep_hash = np.empty(cap, dtype=np.uint64)
    tsize = 16  # open-addressing table of class indices (-1: empty), load <= 1/2
    while tsize < 2 * cap:
        tsize *= 2
    table = np.full(tsize, -1, dtype=np.int64)
    nmem = mem_cap.shape[0]
    # scratch space of the allocation (its scan memo kept from order to order) and the signature
    alloc = (np.zeros((3, maxlev), dtype=np.int64), np.ones((3, 8), dtype=np.int64), np.zeros(3, dtype=np.int64),
             np.zeros(3, dtype=np.int64), np.ones(n + 1, dtype=np.int64), np.zeros(n + 1, dtype=np.bool_),
             np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), np.ones(8, dtype=np.int64),
             np.zeros((nmem, 3, 5), dtype=np.int64), np.zeros((nmem, 3, 8), dtype=np.int64),
             np.zeros((nmem, 3, n + 1), dtype=np.int64))
    sigs = (np.empty(width, dtype=np.int64), np.empty(width, dtype=np.int64), np.empty((maxlev, n), dtype=np.int64),
            np.empty((maxlev, n), dtype=np.int64), np.zeros(maxlev, dtype=np.int64), np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
    prob = (nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_sp_ir_above, bits, reduced_geo(geo), irr)
    st = np.zeros(5, dtype=np.int64)
    while True:
        r = _enumerate_run(keys_dim, keys_size, first, a, prob, o_final_bits, max_orders, dedupe,
                           n > 0 and pin_dim[0] == -2, pin_dim, pin_size, hash_mask, alloc, sigs,
                           out_rank, out_orders, out_counts, out_cls, rep_row, rep_hash, table, st)
        if r == _RUN_DONE:
            break
        if r == _RUN_ROWS:
            m = st[_ST_M]
            nrep = st[_ST_NREP]
            cap *= 2
            out_rank = _grown(out_rank, m, cap)
            out_orders = _grown(out_orders, m, cap)
            out_counts = _grown(out_counts, m, cap)
            out_cls = _grown(out_cls, m, cap)
            rep_row = _grown(rep_row, nrep, cap)
            rep_hash = _grown(rep_hash, nrep, cap)
        else:  # grow and rehash (a class's index does not depend on the table: exact whatever its size)
            tsize *= 2
            table = np.full(tsize, -1, dtype=np.int64)
            for c in range(st[_ST_NREP]):
                s2 = np.int64(rep_hash[c] & np.uint64(tsize - 1))
                while table[s2] >= 0:
                    s2 = (s2 + 1) & (tsize - 1)
                table[s2] = c
    m = st[_ST_M]
    return out_rank[:m], out_orders[:m], out_counts[:m], out_cls[:m], st[_ST_K], st[_ST_BAD]


@njit(cache=True, **NO_NRT, **JIT_ONLY)
def _enumerate_run(keys_dim, keys_size, first, a, prob, o_final_bits, max_orders, dedupe, none_allowed, pin_dim,
                   pin_size, hash_mask, alloc, sigs, out_rank, out_orders, out_counts, out_cls, rep_row, rep_hash,
                   table, st):  # pragma: no cover - numba
    """:func:`enumerate_orders`'s loop over the orders from the permutation ``a`` on, with the
    counters in ``st``; returns ``_RUN_DONE``, or before an order when the rows might overflow
    (``_RUN_ROWS``) or the class table would pass half load (``_RUN_TABLE``): the caller grows
    them and calls again. Compiled without NRT: no array is created here, and array arguments of
    the helpers cost no reference counting (atomic increments that took most of the time)."""
    nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_sp_ir_above, bits, rgeo, irr = prob
    c, ext, pos, lvl, suffix, o_ir_after, nsz, take_idx, v, sc_int, sc_ext, sc_sizes = alloc
    sig, sig2, lvd, lvs, ln, od, osz, od2, osz2 = sigs
    n = keys_dim.shape[0]
    maxlev = c.shape[1]
    nmem = mem_cap.shape[0]
    cap = out_rank.shape[0]
    tsize = table.shape[0]
    k = st[_ST_K]
    n_bad = st[_ST_BAD]
    m = st[_ST_M]
    nrep = st[_ST_NREP]
    ret = _RUN_DONE
    while st[_ST_DONE] == 0:
        if k >= max_orders:
            break
        if m >= cap:
            ret = _RUN_ROWS
            break
        if 2 * (nrep + 1) > tsize:
            ret = _RUN_TABLE
            break
        for i in range(n):
            od[i] = keys_dim[first[a[i]]]
            osz[i] = keys_size[first[a[i]]]
        if not _allocate_nb(od, osz, nlev, mem_of_lev, mem_cap, mem_ops, sp_ext, o_sp_ir_above, bits,
                            o_final_bits, rgeo, irr, c, ext, pos, lvl, suffix, o_ir_after, nsz, take_idx, v,
                            sc_int, sc_ext, sc_sizes):
            n_bad += 1
        elif not none_allowed and _pins_hold(od, osz, pin_dim, pin_size):
            _signature_nb(od, osz, nlev, c, irr, sig, lvd, lvs, ln)
            h = _row_hash(sig, hash_mask)
            slot = np.int64(h & np.uint64(tsize - 1))
            cls = -1
            while table[slot] >= 0:
                r = table[slot]
                if rep_hash[r] == h:  # compare with the class's first row's signature
                    row = rep_row[r]
                    for i in range(n):
                        od2[i] = keys_dim[out_orders[row, i]]
                        osz2[i] = keys_size[out_orders[row, i]]
                    _signature_nb(od2, osz2, nlev, out_counts[row], irr, sig2, lvd, lvs, ln)
                    if _same_row(sig2, sig):
                        cls = r
                        break
                slot = (slot + 1) & (tsize - 1)
            if cls < 0:  # a new class: its first row is this one
                rep_row[nrep] = m
                rep_hash[nrep] = h
                table[slot] = nrep
                cls = nrep
                nrep += 1
            elif dedupe:
                cls = -1
            if cls >= 0:  # kept
                out_rank[m] = k
                for i in range(n):
                    out_orders[m, i] = first[a[i]]
                for o in range(3):
                    for l in range(maxlev):
                        out_counts[m, o, l] = c[o, l]
                out_cls[m] = cls
                m += 1
        k += 1
        ch = _next_perm(a)
        if ch < 0:
            st[_ST_DONE] = 1
            break
        for mm in range(nmem):  # positions >= ch changed: the scans' memo is dirty from there
            for j in range(3):
                if sc_int[mm, j, _DIRTY] > ch:
                    sc_int[mm, j, _DIRTY] = ch
    st[_ST_K] = k
    st[_ST_BAD] = n_bad
    st[_ST_M] = m
    st[_ST_NREP] = nrep
    return ret


@njit(cache=True)
def _grown(x, m, cap):  # pragma: no cover - numba
    """``x`` (C-contiguous) with its first axis grown to ``cap`` (the first ``m`` rows copied). A flat
    copy loop: numba types an n-d slice assignment per rank and dtype in ~1 s of cold compile each."""
    y = np.empty((cap,) + x.shape[1:], dtype=x.dtype)
    row = x.size // x.shape[0] if x.shape[0] else 0
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    for i in range(m * row):
        yf[i] = xf[i]
    return y


def pin_arrays(pins, factors) -> tuple:
    """``(pin_dim, pin_size)`` [n] for :func:`enumerate_orders` from ``(position, dim index, size or
    None)`` pins over ``n = len(factors)`` loops (a pin beyond the last loop: nothing allowed)."""
    n = len(factors)
    pin_dim = np.full(n, -1, dtype=np.int64)
    pin_size = np.zeros(n, dtype=np.int64)
    for p, d, sz in pins:
        if p >= n:
            pin_dim[:] = -2
            break
        pin_dim[p] = d
        if sz is not None:
            pin_size[p] = sz
    return pin_dim, pin_size


#: ``hash_mask`` of :func:`enumerate_orders` (all 64 bits)
FULL_HASH = np.uint64(2**64 - 1)
