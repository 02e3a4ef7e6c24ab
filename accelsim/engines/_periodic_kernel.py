"""Hot loop of :func:`accelsim.engines.lowering.compress_periodic_arrays` (numba).

:func:`periodic_plan` picks, at each position of a tile sequence given column-wise, the period
``p <= pmax`` whose repetitions cover the longest stretch (ties: the smallest ``p``), the rule of
:func:`accelsim.engines.lowering._periodic`. For each period it keeps the first position ``j``
at or after the current one where tile ``j`` differs from tile ``j + p`` (or ``j + p`` is past
the end); positions only move forward, so each period's pointer walks the sequence once:
``O(pmax * n)`` time and ``O(pmax)`` memory (the numpy form it replaces held several
``(pmax, n)`` arrays).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def periodic_plan(load: np.ndarray, cycles: np.ndarray, store: np.ndarray,
                  max_period: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(runs, periods, reps)``: ``runs`` is the number of runs of equal consecutive tiles; if it
    is above 2, the i-th pattern covers ``periods[i] * reps[i]`` tiles from where the previous
    one ended (``reps == 1``: a single tile, ``periods == 1``); else the plan is empty (run-length
    encoding says it all). Periods are at most ``min(max_period, n // 2, 2**24 // n)`` (the last:
    the memory bound of the numpy form this replaced, kept so huge layers compress alike)."""
    n = load.shape[0]
    runs = 1 if n else 0
    for j in range(1, n):
        if load[j] != load[j - 1] or cycles[j] != cycles[j - 1] or store[j] != store[j - 1]:
            runs += 1
    if runs <= 2:
        return runs, np.empty(0, np.int64), np.empty(0, np.int64)
    pmax = min(max_period, n // 2, max(1, 2**24 // n))
    mismatch = np.zeros(pmax + 1, np.int64)  # per period: first j >= (a past position) with tile j != tile j + p
    out_p = np.empty(n, np.int64)
    out_r = np.empty(n, np.int64)
    k = 0
    i = 0
    while i < n:
        best_p, best_reps, best_cover = 1, 1, 0
        for p in range(1, pmax + 1):
            j = mismatch[p]
            if j < i:
                j = i
            while j + p < n and load[j] == load[j + p] and cycles[j] == cycles[j + p] and store[j] == store[j + p]:
                j += 1
            mismatch[p] = j
            reps = (j - i) // p + 1
            if reps > 1 and reps * p > best_cover:
                best_p, best_reps, best_cover = p, reps, reps * p
        out_p[k] = best_p
        out_r[k] = best_reps
        k += 1
        i += best_p * best_reps
    return runs, out_p[:k], out_r[:k]
