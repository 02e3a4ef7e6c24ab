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
from math import prod
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

    ``geo`` = (stride_h, stride_w, dilation_h, dilation_w) for the input's sliding window.
    """
    if op == "W":
        return v[_G] * v[_K] * v[_C] * v[_R] * v[_S]
    if op == "O":
        return v[_N] * v[_G] * v[_K] * v[_P] * v[_Q]
    sh, sw, dh, dw = geo
    return v[_N] * v[_G] * v[_C] * ((v[_P] - 1) * sh + (v[_R] - 1) * dh + 1) * ((v[_Q] - 1) * sw + (v[_S] - 1) * dw + 1)


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


def total_trip(order: Sequence[tuple[int, int]]) -> int:
    return prod(s for _, s in order)
