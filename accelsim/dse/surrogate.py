"""A smooth, differentiable surrogate of a positive simulator metric over relaxed hardware axes.

``LogQuadSurrogate`` models ``log y`` (latency, energy: positive and spanning decades) as

    f(z, q) = quadratic polynomial in z  +  sum_j q_j . (a_j + B_j z)

with ``z`` the continuous hardware axes mapped to [-1, 1] (in log2 space for positive axes, so
``rows`` 8..256 are evenly spaced), and ``q_j`` a probability vector over the values of the j-th
categorical axis (dataflow, booleans; a one-hot vector at an exact design, a softmax during a
relaxed search). Fitted by ridge regression on real ``simulate`` results; the gradient with
respect to ``z`` and every ``q_j`` is analytic (``value_and_grad``).

Assumptions: the metric is smooth in the log of each numeric axis between the sampled extremes
(array size and buffer sizes act through fold counts and tile sizes, which are stepwise; the
quadratic is their smooth envelope) and a categorical choice shifts it and its slopes, not its
curvature. The held-out error (:func:`heldout_error`) says how well that holds for a given sweep.
numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


def _pairs(d: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(d) for j in range(i, d)]


def features(z: np.ndarray, qs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Feature vector phi(z, q) and its Jacobians d phi / d z (P x d) and d phi / d q_j (P x K_j)."""
    z = np.asarray(z, dtype=float)
    d = z.size
    parts: list[float] = [1.0]
    jz: list[np.ndarray] = [np.zeros(d)]
    for i in range(d):
        parts.append(z[i])
        g = np.zeros(d)
        g[i] = 1.0
        jz.append(g)
    for i, j in _pairs(d):
        parts.append(z[i] * z[j])
        g = np.zeros(d)
        g[i] += z[j]
        g[j] += z[i]
        jz.append(g)
    n_base = len(parts)
    jq_rows: list[list[tuple[int, int, float]]] = []  # per feature: (block, index, coefficient)
    for b, q in enumerate(qs):
        for k in range(len(q)):
            parts.append(q[k])
            jz.append(np.zeros(d))
            jq_rows.append([(b, k, 1.0)])
            for i in range(d):
                parts.append(q[k] * z[i])
                g = np.zeros(d)
                g[i] = q[k]
                jz.append(g)
                jq_rows.append([(b, k, z[i])])
    phi = np.asarray(parts)
    jac_z = np.vstack(jz) if jz else np.zeros((len(parts), d))
    jac_q = [np.zeros((len(parts), len(q))) for q in qs]
    for r, entries in enumerate(jq_rows):
        for b, k, c in entries:
            jac_q[b][n_base + r, k] = c
    return phi, jac_z, jac_q


@dataclass
class LogQuadSurrogate:
    """``y ~ exp(f(z, q))`` (see the module docstring); ``coef`` from :meth:`fit`."""

    dims: int
    cat_sizes: list[int]
    ridge: float = 1e-3
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _design(self, Z: np.ndarray, Q: Sequence[np.ndarray]) -> np.ndarray:
        return np.vstack([features(Z[n], [Qj[n] for Qj in Q])[0] for n in range(len(Z))])

    def fit(self, Z: np.ndarray, Q: Sequence[np.ndarray], y: np.ndarray) -> "LogQuadSurrogate":
        """Ridge least squares of ``log y`` on the features (``Z``: N x d in [-1, 1]; ``Q[j]``: N x K_j)."""
        y = np.asarray(y, dtype=float)
        if np.any(~np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("surrogate targets must be finite and positive")
        X = self._design(np.asarray(Z, dtype=float).reshape(len(y), self.dims), Q)
        t = np.log(y)
        pen = self.ridge * len(t) * np.eye(X.shape[1])
        pen[0, 0] = 0.0  # the intercept is not shrunk
        self.coef = np.linalg.solve(X.T @ X + pen, X.T @ t)
        return self

    def log_value_and_grad(self, z: np.ndarray, qs: Sequence[np.ndarray]) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """f(z, q), df/dz, [df/dq_j]."""
        phi, jz, jq = features(z, qs)
        return float(phi @ self.coef), self.coef @ jz, [self.coef @ j for j in jq]

    def value_and_grad(self, z: np.ndarray, qs: Sequence[np.ndarray]) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """y = exp(f), dy/dz, [dy/dq_j]."""
        f, gz, gq = self.log_value_and_grad(z, qs)
        y = float(np.exp(f))
        return y, y * gz, [y * g for g in gq]

    def predict(self, Z: np.ndarray, Q: Sequence[np.ndarray]) -> np.ndarray:
        Z = np.asarray(Z, dtype=float).reshape(-1, self.dims)
        return np.exp(self._design(Z, Q) @ self.coef)


def heldout_error(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Mean and max absolute relative error (``|pred - true| / true``) on held-out points."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    rel = np.abs(p - t) / np.abs(t)
    return {"mean_rel_err": float(rel.mean()) if rel.size else float("nan"),
            "max_rel_err": float(rel.max()) if rel.size else float("nan"), "points": int(rel.size)}
