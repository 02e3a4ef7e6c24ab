"""Pareto utilities: non-dominated filtering and sorting, hypervolume.

Below both users in the layer order: the explorer (:mod:`accelsim.dse`, which re-exports these
as :mod:`accelsim.dse.pareto`) and the plots (:func:`accelsim.plot.plot_pareto`).

All functions work on an ``(n, d)`` array of objective values to be *minimised*; use
:func:`to_minimisation` to flip ``max`` objectives. A point ``a`` dominates ``b`` when it is no
worse in every objective and better in at least one; equal points do not dominate each other.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def to_minimisation(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Negate the columns whose sense is ``max``."""
    v = np.asarray(values, dtype=float).copy()
    for j, s in enumerate(senses):
        if s == "max":
            v[:, j] = -v[:, j]
    return v


def non_dominated_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows (NaN rows are never on the front).

    Lexicographic sort first: a later row can never dominate an earlier one, so each candidate is
    compared only with the front found so far (O(n x front) comparisons).
    """
    F = np.asarray(values, dtype=float)
    n = len(F)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    finite = ~np.isnan(F).any(axis=1)
    idx = np.flatnonzero(finite)
    if len(idx) == 0:
        return mask
    order = idx[np.lexsort(F[idx].T[::-1])]
    front: list[int] = []
    front_vals = np.empty((0, F.shape[1]))
    for i in order:
        f = F[i]
        if len(front):
            le = np.all(front_vals <= f, axis=1)
            lt = np.any(front_vals < f, axis=1)
            if np.any(le & lt):
                continue
        front.append(i)
        front_vals = np.vstack([front_vals, f])
    mask[front] = True
    return mask


def non_dominated_sort(values: np.ndarray) -> np.ndarray:
    """Front rank of every row (0 = Pareto front, 1 = front after removing it, ...; NaN rows -1)."""
    F = np.asarray(values, dtype=float)
    ranks = np.full(len(F), -1, dtype=int)
    remaining = np.flatnonzero(~np.isnan(F).any(axis=1)) if len(F) else np.array([], dtype=int)
    r = 0
    while len(remaining):
        m = non_dominated_mask(F[remaining])
        ranks[remaining[m]] = r
        remaining = remaining[~m]
        r += 1
    return ranks


def hypervolume(values: np.ndarray, ref: Sequence[float]) -> float:
    """Volume dominated by ``values`` and bounded by the reference point ``ref`` (minimisation).

    Exact: a sweep in 2-D, slicing along the last objective in higher dimensions (fine for fronts
    of a few hundred points in 3-4 objectives). Points not strictly better than ``ref`` in every
    objective contribute nothing.
    """
    F = np.asarray(values, dtype=float)
    r = np.asarray(ref, dtype=float)
    if F.size == 0:
        return 0.0
    F = F[~np.isnan(F).any(axis=1)]
    F = F[np.all(F < r, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[non_dominated_mask(F)]
    return float(_hv(F, r))


def _hv(F: np.ndarray, r: np.ndarray) -> float:
    d = F.shape[1]
    if d == 1:
        return float(r[0] - F[:, 0].min())
    if d == 2:
        P = F[np.argsort(F[:, 0], kind="stable")]
        vol, best_y = 0.0, r[1]
        for x, y in P:
            if y < best_y:
                vol += (r[0] - x) * (best_y - y)
                best_y = y
        return vol
    order = np.argsort(F[:, -1], kind="stable")
    P = F[order]
    vol = 0.0
    for i in range(len(P)):
        z = P[i, -1]
        z_next = P[i + 1, -1] if i + 1 < len(P) else r[-1]
        if z_next <= z:
            continue
        sub = P[: i + 1, :-1]
        sub = sub[non_dominated_mask(sub)]
        vol += _hv(sub, r[:-1]) * (z_next - z)
    return vol


def pareto_front(df, objectives: Sequence[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """Rows of ``df`` on the Pareto front of ``objectives`` (``[(column, 'min'|'max'), ...]``).

    Rows missing an objective are ignored. Returned sorted by the first objective.
    """
    cols = [c for c, _ in objectives]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"objective column(s) {missing} not in the results (columns: {list(df.columns)[:20]} ...)")
    if len(df) == 0:
        return df.copy()
    vals = to_minimisation(df[cols].to_numpy(dtype=float), [s for _, s in objectives])
    mask = non_dominated_mask(vals)
    front = df[mask]
    asc = objectives[0][1] == "min"
    return front.sort_values(cols[0], ascending=asc, kind="stable")
