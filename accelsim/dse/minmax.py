"""``objectives: [{metric: latency_ms, aggregate: minmax}]``: robust co-design over the sweep's workloads.

The min-max formulation: choose the design x minimising the worst case over workloads (domains)
k, written as a game against weights w on the probability simplex,

    min_x  max_{w in simplex}  sum_k w_k * g_k(x),      g_k = metric_k / norm_k

(``normalize: best`` divides each workload's metric by its best sampled value, so the game
compares regrets rather than raw magnitudes; ``none`` compares the metric itself). It is solved
by alternating a design step on the weighted sum with an exponentiated-gradient ascent step on
the weights, ``w_k <- w_k * exp(eta * g_k(x) / G) / Z`` (``eta`` = ``search.weight_lr``, ``G`` the
largest sampled g): workloads that stay bad gain weight. The reported ``workload_weights`` are the
time-averaged weights (the game's equilibrium estimate): they say which workloads bind.

- grid / random: every design is simulated on every workload (like any sweep); the design step
  is the best response over the simulated designs. The inner max over the simplex is attained at
  a vertex, so the answer is the simulated design with the lowest exact worst case (never above
  the uniform-mean optimum's worst case); the weights are the game's averaged iterates (a
  balanced design that is nobody's best response can still be the answer).
- differentiable: the design step is an Adam step on the relaxed hardware axes (:mod:`.relax`)
  through per-workload surrogates (:mod:`.surrogate`, held-out error reported) fitted on real
  simulations; the designs the trajectory passes through are snapped to the sweep's values,
  simulated exactly on every workload and stored, and the answer is the one with the lowest exact
  worst case.

``aggregate: mean`` keeps w uniform (the seed's baseline); ``aggregate: max`` minimises the worst
case directly (grid/random: the exact minimum over simulated designs; differentiable: subgradient
steps on the current worst workload) and reports the worst workload's indicator as its weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError


@dataclass
class GameResult:
    """Solution of the min-max game over a finite set of simulated designs."""

    best: int
    weights: np.ndarray
    history: list[np.ndarray] = field(default_factory=list)
    visited: list[int] = field(default_factory=list)


def normalisers(M: np.ndarray, normalize: str) -> np.ndarray:
    """Per-workload divisor: 1, or the best (smallest) value of that workload over the rows of ``M``."""
    if normalize == "best":
        return np.nanmin(M, axis=0)
    return np.ones(M.shape[1])


def solve_game(M: np.ndarray, aggregate: str, *, eta: float = 0.5, iters: int = 200,
               normalize: str = "none") -> GameResult:
    """``M``: designs x workloads (exact metric values, NaN = failed). See the module docstring."""
    M = np.asarray(M, dtype=float)
    ok = ~np.isnan(M).any(axis=1)
    if not ok.any():
        raise ConfigError("no design was evaluated on every workload", field="objectives")
    G = M / normalisers(M[ok], normalize)
    G[~ok] = np.inf
    K = M.shape[1]
    worst = G.max(axis=1)
    if aggregate == "mean":
        w = np.full(K, 1.0 / K)
        best = int(np.argmin(G @ w))
        return GameResult(best, w, [w], [best])
    if aggregate == "max":
        best = int(np.argmin(worst))
        w = np.zeros(K)
        w[int(np.argmax(G[best]))] = 1.0
        return GameResult(best, w, [w], [best])
    scale = float(np.max(G[ok]))
    w = np.full(K, 1.0 / K)
    hist, visited = [], []
    for _ in range(iters):
        x = int(np.argmin(np.where(ok, G @ w, np.inf)))
        visited.append(x)
        hist.append(w.copy())
        w = w * np.exp(eta * G[x] / scale)
        w /= w.sum()
    avg = np.mean(hist, axis=0)
    avg /= avg.sum()
    # the inner max over the simplex is attained at a vertex, so over a finite set of simulated
    # designs min_x max_w is the design with the lowest worst case; the best responses alone may
    # miss it (a balanced design inside the convex hull of two specialists is nobody's best response)
    best = int(np.argmin(worst))
    return GameResult(best, avg, hist, visited)


@dataclass
class MinmaxReport:
    """What an aggregate objective found: the design, its exact per-workload metric, the weights."""

    aggregate: str
    metric: str
    normalize: str
    workload_weights: dict[str, float]
    best_params: dict[str, Any]
    per_workload: dict[str, float]
    worst: float
    mean: float
    designs: int
    surrogate_error: dict[str, dict[str, float]] = field(default_factory=dict)
    fit_simulations: int = 0
    holdout_simulations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _objective(sweep: Any) -> Any:
    return sweep.objectives[0]


def matrix_of(session: Any, params: Sequence[dict[str, Any]], metric: str) -> np.ndarray:
    """designs x workloads matrix of ``metric`` from the store (NaN where a point is not ok or breaks a
    constraint of the sweep)."""
    labels = [w.label for w in session.sweep.workloads]
    keys = [[p.key for p in session.space.points_for(i, prm)] for i, prm in enumerate(params)]
    stored = session.store.metrics_of([k for ks in keys for k in ks])
    M = np.full((len(params), len(labels)), np.nan)
    for i, ks in enumerate(keys):
        for j, k in enumerate(ks):
            status, m = stored.get(k, ("error", None))
            if status == "ok" and m is not None and m.get(metric) is not None:
                lookup = {**m, **params[i]}
                if all(c.ok(lookup.get(c.metric, float("nan"))) for c in session.sweep.constraints):
                    M[i, j] = float(m[metric])  # an infeasible point rules its design out
    return M


def report_from(session: Any, params: Sequence[dict[str, Any]], M: np.ndarray, game: GameResult,
                weights: np.ndarray | None = None) -> MinmaxReport:
    o = _objective(session.sweep)
    labels = [w.label for w in session.sweep.workloads]
    w = game.weights if weights is None else weights
    row = M[game.best]
    return MinmaxReport(aggregate=o.aggregate, metric=o.name, normalize=o.normalize,
                        workload_weights={lb: float(x) for lb, x in zip(labels, w)},
                        best_params=dict(params[game.best]), per_workload={lb: float(v) for lb, v in zip(labels, row)},
                        worst=float(np.max(row)), mean=float(np.mean(row)), designs=len(params))


def minmax_over_stored(session: Any) -> MinmaxReport:
    """grid / random sweeps: solve the game over the sweep's simulated designs."""
    spec = session.sweep.spec.search
    o = _objective(session.sweep)
    params = list(session.space.iter_params())
    M = matrix_of(session, params, o.name)
    game = solve_game(M, o.aggregate, eta=spec.weight_lr, normalize=o.normalize)
    return report_from(session, params, M, game)


def run_minmax_differentiable(session: Any) -> MinmaxReport:
    """The differentiable min-max game over the relaxed hardware axes (see the module docstring)."""
    from .fitdata import fit_models, sample_hardware, simulate_exact as _simulate
    from .relax import Adam, HardwareSpace, softmax, softmax_vjp
    from .surrogate import heldout_error

    sweep = session.sweep
    spec = sweep.spec.search
    o = _objective(sweep)
    metric = o.name
    rng = np.random.default_rng(spec.seed)
    hs = HardwareSpace(sweep.hardware_axes)
    if not hs.dims and not hs.cat_sizes:
        raise ConfigError("nothing to search: give hardware axes with two or more values", source=sweep.source,
                          field="axes")
    wls = [w.load() for w in sweep.workloads]
    fit_hw = sample_hardware(session, hs, rng, spec.fit_samples)
    hold_hw = sample_hardware(session, hs, rng, spec.holdout) if spec.holdout else []
    models, fit_vals = [], []
    for wl in wls:
        data = [(prm, [[float(_simulate(wl, hw).metrics()[metric])]]) for prm, hw in fit_hw]
        fit_vals.append([d[1][0][0] for d in data])
        ms, floor = fit_models(hs, data, [metric])
        if floor:
            raise ConfigError(f"{metric} is 0 for workload {sweep.workloads[len(models)].label}", source=sweep.source,
                              field="objectives[0]")
        models.append(ms[metric])
    F = np.array(fit_vals).T  # fit samples x workloads
    norm = np.min(F, axis=0) if o.normalize == "best" else np.ones(len(wls))
    gscale = float(np.max(F / norm))
    errors: dict[str, dict[str, float]] = {}
    for wl, ref, mdl in zip(wls, sweep.workloads, models):
        if hold_hw:
            true = [float(_simulate(wl, hw).metrics()[metric]) for _, hw in hold_hw]
            pred = [mdl.value_and_grad(*hs.encode(prm))[0] for prm, _ in hold_hw]
            errors[ref.label] = heldout_error(true, pred)

    n_z, sizes = hs.dims, hs.cat_sizes
    theta = np.zeros(n_z + sum(sizes))
    K = len(wls)
    w = np.full(K, 1.0 / K)
    opt = Adam(theta.size, spec.lr)
    hist: list[np.ndarray] = []
    designs: list[dict[str, Any]] = []
    every = max(1, spec.steps // max(1, spec.trade_offs))

    def unpack(th: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        z, out, i = th[:n_z], [], n_z
        for k in sizes:
            out.append(th[i:i + k])
            i += k
        return z, out

    for t in range(spec.steps):
        z, gam = unpack(theta)
        qs = [softmax(g) for g in gam]
        vals, gz_all, gq_all = [], [], []
        for mdl, nk in zip(models, norm):
            y, gz, gq = mdl.value_and_grad(z, qs)
            vals.append(y / nk / gscale)
            gz_all.append(gz / nk / gscale)
            gq_all.append([g / nk / gscale for g in gq])
        g = np.array(vals)
        if o.aggregate == "max":
            w = np.eye(K)[int(np.argmax(g))]
        hist.append(w.copy())
        grad_z = sum(wk * gz for wk, gz in zip(w, gz_all))
        grad_g = [softmax_vjp(q, sum(wk * gq[j] for wk, gq in zip(w, gq_all))) for j, q in enumerate(qs)]
        theta = opt.step(theta, np.concatenate([np.atleast_1d(grad_z)] + grad_g) if grad_g else np.atleast_1d(grad_z))
        theta[:n_z] = np.clip(theta[:n_z], -1.0, 1.0)
        if o.aggregate == "minmax":
            w = w * np.exp(spec.weight_lr * g)
            w /= w.sum()
        if (t + 1) % every == 0 or t == spec.steps - 1:
            z, gam = unpack(theta)
            prm = hs.decode(z, [softmax(x) for x in gam])
            if prm not in designs:
                designs.append(prm)
    avg = np.mean(hist, axis=0)
    avg /= avg.sum()
    session.run_points(designs)  # exact, stored for every workload
    M = matrix_of(session, designs, metric)
    exact = solve_game(M, "max" if o.aggregate != "mean" else "mean", normalize=o.normalize)
    rep = report_from(session, designs, M, exact, weights=avg)
    rep.surrogate_error = errors
    rep.fit_simulations = len(fit_hw) * K
    rep.holdout_simulations = len(hold_hw) * K
    return rep

