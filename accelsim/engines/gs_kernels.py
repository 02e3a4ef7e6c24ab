"""Hot loops of the gather-scatter engine (numba) and their closed-form expectations.

A weight matrix (rows = outputs, columns = reduction) in CSR form (``ptr``, ``idx``) is walked
the way the vector unit executes it, one vector instruction at a time; each instruction gathers
the activations at its column indices from a word-interleaved banked scratchpad
(``bank_of[j]`` is the bank of reduction element ``j``). One gather costs
``max(ceil(elements / gather_per_cycle), most distinct words hit in one bank)`` cycles
(equal columns in one instruction read one word once).

Three execution forms (see :mod:`accelsim.engines.gather_scatter`):

- :func:`csr_reduction_cost` -- lanes run along one row, ``V`` consecutive non-zeros per
  instruction (tail instructions partly empty);
- :func:`csr_vertical_cost` -- lane ``i`` runs row ``i`` of a group of ``V`` rows, instruction
  ``t`` takes the ``t``-th non-zero of every row (rows that ran out leave lanes idle: the load
  imbalance);
- :func:`packed_cost` -- the GS compact format: the non-zeros of a row group, interleaved row by
  row, packed ``V`` per entry (no idle lanes).

Each returns ``(instructions, cycles, ideal_cycles, elements)`` where ``ideal_cycles`` is the
cost without bank conflicts. ``bank_aware_*`` are the same forms when the format builder may
order each row's / group's non-zeros freely to avoid conflicts (exact optimum, see their
docstrings). The ``expected_*`` functions are closed forms for i.i.d. non-zero positions and
uniformly random banks; tests check the kernels against them.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit


def csr_of(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers (int64, rows+1) and column indices (int32) of a 2-D 0/1 matrix."""
    rows = mat.shape[0]
    r, c = np.nonzero(mat)
    ptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=ptr[1:])
    return ptr, c.astype(np.int32)


@njit(cache=True)
def _gather(js, n, bank_of, gt, counts, touched):  # pragma: no cover - numba
    maxload = 0
    nt = 0
    for a in range(n):
        j = js[a]
        dup = False
        for b in range(a):
            if js[b] == j:
                dup = True
                break
        if dup:
            continue
        bk = bank_of[j]
        if counts[bk] == 0:
            touched[nt] = bk
            nt += 1
        counts[bk] += 1
        if counts[bk] > maxload:
            maxload = counts[bk]
    for t in range(nt):
        counts[touched[t]] = 0
    base = (n + gt - 1) // gt
    return base if base > maxload else maxload, base


@njit(cache=True)
def csr_reduction_cost(ptr, idx, bank_of, banks, lanes, gt):  # pragma: no cover - numba
    counts = np.zeros(banks, np.int64)
    touched = np.zeros(lanes, np.int64)
    js = np.zeros(lanes, np.int64)
    instr = 0
    cycles = 0
    ideal = 0
    elems = 0
    for r in range(ptr.shape[0] - 1):
        p = ptr[r]
        end = ptr[r + 1]
        while p < end:
            n = min(lanes, end - p)
            for a in range(n):
                js[a] = idx[p + a]
            c, b = _gather(js, n, bank_of, gt, counts, touched)
            instr += 1
            cycles += c
            ideal += b
            elems += n
            p += n
    return instr, cycles, ideal, elems


@njit(cache=True)
def csr_vertical_cost(ptr, idx, bank_of, banks, lanes, gt):  # pragma: no cover - numba
    counts = np.zeros(banks, np.int64)
    touched = np.zeros(lanes, np.int64)
    js = np.zeros(lanes, np.int64)
    rows = ptr.shape[0] - 1
    instr = 0
    cycles = 0
    ideal = 0
    elems = 0
    for g0 in range(0, rows, lanes):
        g1 = min(g0 + lanes, rows)
        longest = 0
        for r in range(g0, g1):
            if ptr[r + 1] - ptr[r] > longest:
                longest = ptr[r + 1] - ptr[r]
        for t in range(longest):
            n = 0
            for r in range(g0, g1):
                if ptr[r] + t < ptr[r + 1]:
                    js[n] = idx[ptr[r] + t]
                    n += 1
            c, b = _gather(js, n, bank_of, gt, counts, touched)
            instr += 1
            cycles += c
            ideal += b
            elems += n
    return instr, cycles, ideal, elems


@njit(cache=True)
def packed_cost(ptr, idx, bank_of, banks, lanes, gt, group_rows):  # pragma: no cover - numba
    counts = np.zeros(banks, np.int64)
    touched = np.zeros(lanes, np.int64)
    js = np.zeros(lanes, np.int64)
    rows = ptr.shape[0] - 1
    instr = 0
    cycles = 0
    ideal = 0
    elems = 0
    for g0 in range(0, rows, group_rows):
        g1 = min(g0 + group_rows, rows)
        longest = 0
        for r in range(g0, g1):
            if ptr[r + 1] - ptr[r] > longest:
                longest = ptr[r + 1] - ptr[r]
        n = 0
        for t in range(longest):
            for r in range(g0, g1):
                if ptr[r] + t < ptr[r + 1]:
                    js[n] = idx[ptr[r] + t]
                    n += 1
                    if n == lanes:
                        c, b = _gather(js, n, bank_of, gt, counts, touched)
                        instr += 1
                        cycles += c
                        ideal += b
                        elems += n
                        n = 0
        if n:
            c, b = _gather(js, n, bank_of, gt, counts, touched)
            instr += 1
            cycles += c
            ideal += b
            elems += n
    return instr, cycles, ideal, elems


@njit(cache=True)
def bank_aware_row_cost(ptr, idx, bank_of, banks, lanes, gt):  # pragma: no cover - numba
    """CSR reduction form when each row's non-zeros may be packed in any order.

    A row needs ``ceil(nnz / V)`` instructions and at least as many cycles as its busiest bank
    holds non-zeros; an order reaching ``max(sum of ceil(chunk / gt), busiest bank)`` exists
    (deal the non-zeros round-robin over banks).
    """
    counts = np.zeros(banks, np.int64)
    instr = 0
    cycles = 0
    ideal = 0
    elems = 0
    full_cost = (lanes + gt - 1) // gt
    for r in range(ptr.shape[0] - 1):
        n = ptr[r + 1] - ptr[r]
        if n == 0:
            continue
        maxc = 0
        for p in range(ptr[r], ptr[r + 1]):
            b = bank_of[idx[p]]
            counts[b] += 1
            if counts[b] > maxc:
                maxc = counts[b]
        for p in range(ptr[r], ptr[r + 1]):
            counts[bank_of[idx[p]]] = 0
        base = (n // lanes) * full_cost + ((n % lanes) + gt - 1) // gt
        instr += (n + lanes - 1) // lanes
        cycles += base if base > maxc else maxc
        ideal += base
        elems += n
    return instr, cycles, ideal, elems


@njit(cache=True)
def bank_aware_group_cost(ptr, idx, bank_of, banks, lanes, gt, group_rows, lane_per_row):  # pragma: no cover
    """Row groups when each entry's non-zeros may be chosen freely (vertical / GS forms).

    ``lane_per_row``: lane ``i`` serves row ``i`` (vertical CSR, GS with ``G == V``): a group needs
    ``max_r nnz_r`` entries. Otherwise (GS with ``G != V``) ``ceil(nnz_group / V)`` entries. By
    Koenig's edge-colouring theorem the rows x banks bipartite multigraph splits into
    ``max(entries, busiest bank)`` conflict-free entries, so that is the cycle count (for
    ``gather_per_cycle >= V``; narrower gather units add ``ceil(V / gt)`` per entry).
    """
    counts = np.zeros(banks, np.int64)
    rows = ptr.shape[0] - 1
    instr = 0
    cycles = 0
    ideal = 0
    elems = 0
    for g0 in range(0, rows, group_rows):
        g1 = min(g0 + group_rows, rows)
        longest = 0
        total = 0
        maxc = 0
        for r in range(g0, g1):
            n = ptr[r + 1] - ptr[r]
            total += n
            if n > longest:
                longest = n
            for p in range(ptr[r], ptr[r + 1]):
                b = bank_of[idx[p]]
                counts[b] += 1
                if counts[b] > maxc:
                    maxc = counts[b]
        for r in range(g0, g1):
            for p in range(ptr[r], ptr[r + 1]):
                counts[bank_of[idx[p]]] = 0
        if total == 0:
            continue
        if lane_per_row:
            entries = longest
            width = min(g1 - g0, lanes)
        else:
            entries = (total + lanes - 1) // lanes
            width = lanes
        base = entries * ((width + gt - 1) // gt)
        instr += entries
        cycles += base if base > maxc else maxc
        ideal += base
        elems += total
    return instr, cycles, ideal, elems


# --- expectations (density only) -------------------------------------------------------------

@lru_cache(maxsize=256)
def expected_gather_cycles(elements: int, banks: int, gather_per_cycle: int) -> float:
    """E[max(ceil(a / gt), max bank load)] for ``a`` addresses in uniformly random banks.

    Exact for independent uniform banks (balls into bins), by dynamic programming over banks.
    """
    a = int(elements)
    if a <= 0:
        return 0.0
    base = -(-a // gather_per_cycle)
    if banks <= 1:
        return float(max(base, a))
    # P(max load <= t) for t = 0..a via DP: balls left r, bins left b
    from scipy.stats import binom

    r = np.arange(a + 1)[:, None]
    i = np.arange(a + 1)[None, :]

    def p_all_le(t: int) -> float:
        state = np.zeros(a + 1)
        state[a] = 1.0  # probability that r balls are still to be placed
        for b in range(banks, 1, -1):
            # balls into the next bank ~ Binomial(r, 1/b), at most t of them
            trans = np.where((i <= r) & (i <= t), binom.pmf(i, r, 1.0 / b), 0.0)
            new = np.zeros(a + 1)
            for k in range(t + 1):  # move mass from r to r - k
                new[: a + 1 - k] += state[k:] * trans[k:, k]
            state = new
        return float(state[: t + 1].sum())  # the last bank takes the rest

    exp = float(base)
    for t in range(base, a):
        tail = 1.0 - p_all_le(t)
        if tail < 1e-12:
            break
        exp += tail
    return exp


def _binom_pmf(k: int, d: float) -> np.ndarray:
    from scipy.stats import binom

    return binom.pmf(np.arange(k + 1), k, d)


def expected_max_binomial(k: int, d: float, count: int) -> float:
    """E[max of ``count`` i.i.d. Binomial(k, d)] (the longest row of a group)."""
    if count <= 0 or k <= 0:
        return 0.0
    from scipy.stats import binom

    x = np.arange(k)
    return float(np.sum(1.0 - binom.cdf(x, k, d) ** count))


def expected_ceil_binomial(k: int, d: float, v: int) -> float:
    """E[ceil(X / v)] for X ~ Binomial(k, d) (vector instructions of one CSR row)."""
    if k <= 0:
        return 0.0
    pmf = _binom_pmf(k, d)
    return float(np.sum(pmf * np.ceil(np.arange(k + 1) / v)))


def expected_tail_distribution(k: int, d: float, v: int) -> np.ndarray:
    """P(X mod v == r) for r = 0..v-1, X ~ Binomial(k, d), with P(X == 0) removed from r = 0."""
    pmf = _binom_pmf(k, d)
    out = np.zeros(v)
    for r in range(v):
        out[r] = pmf[r::v].sum()
    out[0] -= pmf[0]
    return out


def ceil_log2(x: int) -> int:
    return int(math.ceil(math.log2(x))) if x > 1 else 0


__all__ = [
    "csr_of", "csr_reduction_cost", "csr_vertical_cost", "packed_cost", "bank_aware_row_cost",
    "bank_aware_group_cost", "expected_gather_cycles",
    "expected_max_binomial", "expected_ceil_binomial", "expected_tail_distribution", "ceil_log2",
]
