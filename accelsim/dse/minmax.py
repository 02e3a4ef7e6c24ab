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
- differentiable (:func:`surrogate_game`): the design step is an Adam step on the relaxed hardware
  axes (:mod:`.relax`) through per-workload surrogates (:mod:`.surrogate`) fitted on real
  simulations of ``fit_samples`` random designs (their error measured on ``holdout`` fresh ones).
  The surrogates are least accurate exactly where the game ends (the regret optimum tends to sit at
  a corner of the space, where a quadratic in log space extrapolates), so the search is closed-loop:
  each of at most ``trade_offs`` rounds simulates one design the game picks (the first snapped
  design of its trajectory not yet simulated; when it only revisits simulated ones, the incumbent's
  unsimulated neighbour with the lowest predicted worst case), adds it to the fit data and refits;
  round 0 starts at the centre of the space, later rounds at the incumbent. Every design simulated
  (fit, held-out, refinement) is an exactly evaluated, stored candidate; the answer is the one with
  the lowest exact worst case.

``aggregate: mean`` keeps w uniform (the seed's baseline); ``aggregate: max`` minimises the worst
case directly (grid/random: the exact minimum over simulated designs; differentiable: subgradient
steps on the current worst workload) and reports the worst workload's indicator as its weights.
"""
from __future__ import annotations

import itertools
import math
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


@dataclass
class GameSearch:
    """What :func:`surrogate_game` simulated: every design (fit, held-out, refinement), its exact
    designs x workloads matrix, the averaged weights of the last game and the surrogates' held-out errors."""

    designs: list[dict[str, Any]]
    M: np.ndarray
    weights: np.ndarray
    errors: list[dict[str, float]]
    fit: int
    holdout: int
    rounds: int = 0


def _play(models: Sequence[Any], hs: Any, start: tuple[np.ndarray, list[np.ndarray]], norm: np.ndarray,
          gscale: float, aggregate: str, steps: int, lr: float, weight_lr: float,
          snapshots: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One relaxed game through the surrogates from ``start`` (z, logits): Adam on the design, exponentiated
    gradient on the weights. Returns the snapped designs it passes (last first) and the averaged weights."""
    from .relax import Adam, softmax, softmax_vjp

    n_z, sizes = hs.dims, hs.cat_sizes
    theta = np.concatenate([np.atleast_1d(start[0])] + list(start[1])) if sizes else np.atleast_1d(start[0]).copy()
    K = len(models)
    w = np.full(K, 1.0 / K)
    opt = Adam(theta.size, lr)
    hist: list[np.ndarray] = []
    seen: list[dict[str, Any]] = []
    every = max(1, steps // max(1, snapshots))

    def unpack(th: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        z, out, i = th[:n_z], [], n_z
        for k in sizes:
            out.append(th[i:i + k])
            i += k
        return z, out

    for t in range(steps):
        z, gam = unpack(theta)
        qs = [softmax(g) for g in gam]
        vals, gz_all, gq_all = [], [], []
        for mdl, nk in zip(models, norm):
            y, gz, gq = mdl.value_and_grad(z, qs)
            vals.append(y / nk / gscale)
            gz_all.append(gz / nk / gscale)
            gq_all.append([g / nk / gscale for g in gq])
        g = np.array(vals)
        if aggregate == "max":
            w = np.eye(K)[int(np.argmax(g))]
        hist.append(w.copy())
        grad_z = sum(wk * gz for wk, gz in zip(w, gz_all))
        grad_g = [softmax_vjp(q, sum(wk * gq[j] for wk, gq in zip(w, gq_all))) for j, q in enumerate(qs)]
        theta = opt.step(theta, np.concatenate([np.atleast_1d(grad_z)] + grad_g) if grad_g else np.atleast_1d(grad_z))
        theta[:n_z] = np.clip(theta[:n_z], -1.0, 1.0)
        if aggregate == "minmax":
            w = w * np.exp(weight_lr * g)
            w /= w.sum()
        if (t + 1) % every == 0 or t == steps - 1:
            z, gam = unpack(theta)
            prm = hs.decode(z, [softmax(x) for x in gam])
            if prm in seen:
                seen.remove(prm)
            seen.append(prm)
    avg = np.mean(hist, axis=0)
    return seen[::-1], avg / avg.sum()


def _neighbours(hs: Any, prm: dict[str, Any], diagonal: bool, limit: int = 4096) -> list[dict[str, Any]]:
    """Designs one value step away from ``prm`` on one finite numeric axis, or with another value of one
    categorical axis; ``diagonal``: on every axis at once (the grid's king moves, at most ``limit``)."""
    steps: list[list[tuple[str, Any]]] = []
    for n in hs.num:
        if n.values is None:
            continue
        vals = sorted(n.values, key=n.to_u)
        i = vals.index(prm[n.axis.path])
        steps.append([(n.axis.path, vals[j]) for j in (i - 1, i, i + 1) if 0 <= j < len(vals)])
    steps += [[(a.path, v) for v in vals] for a, vals in hs.cat]
    if diagonal and math.prod(len(s) for s in steps) <= limit:
        out = [{**prm, **dict(c)} for c in itertools.product(*steps)]
    else:
        out = [{**prm, k: v} for s in steps for k, v in s]
    for o in out:
        for t in hs.tied:
            o[t.path] = o[t.args[0]]
    return [o for o in out if o != prm]


def distinct_sampler(draw: Any, tries: int = 20) -> Any:
    """``sample(n, exclude)`` for :func:`surrogate_game`: up to ``n`` distinct designs from ``draw()`` (a random
    design, or None when invalid) not in ``exclude``; gives up after ``tries * n`` draws (a small space)."""
    def sample(n: int, exclude: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(max(1, n) * tries):
            if len(out) >= n:
                break
            p = draw()
            if p is not None and p not in exclude and p not in out:
                out.append(p)
        return out
    return sample


def surrogate_game(hs: Any, evaluate: Any, sample: Any, *, aggregate: str, normalize: str, fit_samples: int,
                   holdout: int, refine: int, steps: int, lr: float, weight_lr: float) -> GameSearch:
    """The differentiable min-max game with surrogate refinement (see the module docstring).

    ``evaluate(params list) -> designs x workloads`` exact metric (NaN = failed); ``sample(n, exclude)``
    -> up to ``n`` distinct valid random designs not in ``exclude``. Simulates ``fit_samples + holdout`` random designs,
    then at most ``refine`` designs chosen by the game: each round refits the per-workload surrogates on
    every design simulated so far, plays the relaxed game (round 0 from the centre of the space, later
    rounds from the incumbent, the simulated design with the lowest exact worst case) and simulates the
    first snapped design of its trajectory not yet simulated (or, when the trajectory only revisits
    simulated designs, the incumbent's unsimulated neighbour with the lowest predicted worst case)."""
    from .fitdata import fit_models
    from .surrogate import heldout_error

    designs = list(sample(fit_samples, []))
    if len(designs) < 2:
        raise ConfigError("fewer than two distinct valid hardware designs to fit on", field="search.fit_samples")
    M = evaluate(designs)
    n_fit = len(designs)
    errors: list[dict[str, float]] = []
    K = M.shape[1]

    def fit(rows: np.ndarray) -> list[Any]:
        models = []
        for k in range(K):
            data = [(designs[i], [[float(M[i, k])]]) for i in rows if np.isfinite(M[i, k])]
            if len(data) < 2:
                raise ConfigError("fewer than two sampled designs could be simulated", field="search.fit_samples")
            ms, floor = fit_models(hs, data, ["y"])
            if floor:
                raise ConfigError(f"the metric is 0 for workload {k}", field="objectives[0]")
            models.append(ms["y"])
        return models

    if holdout:
        models = fit(np.arange(len(designs)))
        hold = list(sample(holdout, designs))
        Mh = evaluate(hold) if hold else np.zeros((0, K))
        for k in range(K):
            ok = np.isfinite(Mh[:, k])
            pred = [models[k].value_and_grad(*hs.encode(p))[0] for p, good in zip(hold, ok) if good]
            errors.append(heldout_error(Mh[ok, k], pred))
        designs += hold
        M = np.vstack([M, Mh])
    n_init = len(designs)
    weights = np.full(K, 1.0 / K)
    rounds = 0
    while len(designs) < n_init + refine:
        rounds += 1
        ok = np.isfinite(M).all(axis=1)
        models = fit(np.flatnonzero(np.isfinite(M).any(axis=1)))
        norm = normalisers(M[ok], normalize) if ok.any() else np.ones(K)
        G = M[ok] / norm
        gscale = float(np.max(G)) if G.size else 1.0
        worst = np.where(ok, np.nanmax(M / norm, axis=1), np.inf)
        inc = designs[int(np.argmin(worst))]
        if rounds == 1:
            start = (np.zeros(hs.dims), [np.zeros(k) for k in hs.cat_sizes])
        else:
            z, qs = hs.encode(inc)
            start = (z, [q.copy() for q in qs])  # logits: the incumbent's dataflow ahead by 1 (softmax 0.58 of 3)
        path, weights = _play(models, hs, start, norm, gscale, aggregate, steps, lr, weight_lr, snapshots=8)
        new = [p for p in path if p not in designs]
        if not new:
            cands = [p for p in _neighbours(hs, inc, False) if p not in designs] \
                or [p for p in _neighbours(hs, inc, True) if p not in designs]
            if not cands:
                break

            def predicted(p: dict[str, Any]) -> float:
                zc, qc = hs.encode(p)
                v = np.array([m.value_and_grad(zc, qc)[0] for m in models]) / norm
                return float(np.max(v) if aggregate != "mean" else np.mean(v))
            new = [min(cands, key=predicted)]
        pick = new[:1]
        designs += pick
        M = np.vstack([M, evaluate(pick)])
    return GameSearch(designs, M, weights, errors, n_fit, n_init - n_fit, rounds)


def run_minmax_differentiable(session: Any) -> MinmaxReport:
    """The differentiable min-max game over the relaxed hardware axes (see the module docstring)."""
    from .relax import HardwareSpace

    sweep = session.sweep
    spec = sweep.spec.search
    o = _objective(sweep)
    rng = np.random.default_rng(spec.seed)
    hs = HardwareSpace(sweep.hardware_axes)
    if not hs.dims and not hs.cat_sizes:
        raise ConfigError("nothing to search: give hardware axes with two or more values", source=sweep.source,
                          field="axes")

    done: list[dict[str, Any]] = []

    def evaluate(params: list[dict[str, Any]]) -> np.ndarray:
        session.run_points(params, start_index=len(done))  # exact, stored for every workload
        done.extend(params)  # sweep members are numbered across calls
        return matrix_of(session, params, o.name)

    def draw() -> dict[str, Any] | None:
        prm = hs.sample(rng)
        return prm if session.space.hardware_for(prm)[0] is not None else None

    sample = distinct_sampler(draw)

    try:
        gs = surrogate_game(hs, evaluate, sample, aggregate=o.aggregate, normalize=o.normalize,
                            fit_samples=spec.fit_samples, holdout=spec.holdout, refine=spec.trade_offs,
                            steps=spec.steps, lr=spec.lr, weight_lr=spec.weight_lr)
    except ConfigError as exc:
        raise ConfigError(exc.message, source=sweep.source, field=exc.field or "search") from None
    exact = solve_game(gs.M, "max" if o.aggregate != "mean" else "mean", normalize=o.normalize)
    rep = report_from(session, gs.designs, gs.M, exact, weights=gs.weights)
    labels = [w.label for w in sweep.workloads]
    rep.surrogate_error = dict(zip(labels, gs.errors))
    K = len(labels)
    rep.fit_simulations = gs.fit * K
    rep.holdout_simulations = gs.holdout * K
    return rep
