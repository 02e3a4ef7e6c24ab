"""``search: {method: differentiable}``: DNA-style joint network/accelerator search by gradient descent.

The search space is the sweep's own: per-layer compression choices from its ``recipe.*`` axes
(every combination of their values is one choice, made independently for each compressible layer
of the model) and its hardware axes, relaxed by :mod:`.relax` (numeric axes continuous in
[-1, 1], categorical ones such as ``dataflow`` as softmax probabilities). The relaxed problem is

    minimise  sum_m w_m * log E[m] / span_m  -  w_acc * E[accuracy] / span_acc
    E[m]       = sum_l sum_c p_lc * S_lm(z, q, c)        (p_l = softmax(alpha_l): the supernet's
    E[accuracy] = b0 + sum_l sum_c p_lc * beta_lc          architecture parameters)

where ``S_lm`` is a :class:`~.surrogate.LogQuadSurrogate` of layer ``l``'s latency or energy,
fitted on real ``simulate`` results (every hardware sample is simulated with every *uniform*
choice, which gives each layer a sample of every choice at once; latency and energy of a network
are sums over its layers), and the accuracy term an additive predictor over per-layer choices
fitted on accuracies measured by the sweep's evaluator (the digits front-end or the user's, as in
:mod:`.coexplore`). Both have analytic gradients (:class:`RelaxedProblem`, checked against
finite differences in the tests). Adam descends ``alpha``, ``z`` and the categorical logits for
``trade_offs`` weightings ``w`` of the objectives (one per point of the front); each result is
snapped to the nearest exact design (argmax per layer, nearest axis value) and evaluated like any
sweep point -- compressed and measured by the evaluator, simulated exactly, stored.

Constraints (bounds on latency/energy/accuracy) add ``rho * max(0, v)^2`` to the relaxed objective
(:class:`Penalty`; ``rho`` grows 100x over the steps; bounds tightened by the models' measured
error); the snapped designs are then checked exactly: one over a bound is stored, flagged
``feasible: false`` in the report and kept off the front.

Without a compression section the search is over hardware only for the sweep's single workload
(``aggregate`` objectives over several workloads are :mod:`.minmax`'s).

Assumptions (reported, not hidden): a layer's latency/energy depends on its own compression and
the hardware only (true of the per-layer engines; the held-out error checks it on per-layer
mixed networks); the accuracy predictor is additive over layers. The accuracy term is *not* a
weight-sharing supernet trained jointly with the architecture parameters as in DNA: the
evaluator is a black box (a user's evaluator has no gradients), so it is fitted instead; its
leave-one-out error is reported.
"""
from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .relax import Adam, HardwareSpace, softmax, softmax_vjp
from .fitdata import fit_models, sample_hardware, simulate_exact
from .surrogate import LogQuadSurrogate, heldout_error

#: metrics the surrogate can model per layer (sums over layers)
ADDITIVE = ("latency_ms", "latency_cycles", "energy_pj", "energy_uj")
LAYER_PARAM = re.compile(r"^recipe\.layers\[(.+?)\]\.(.+)$")
_SECTIONS = ("prune", "quantize", "factorize", "smartexchange")


def layer_param(layer: str, path: str) -> str:
    """The sweep parameter of a per-layer choice: ``recipe.layers[conv1].prune.density``."""
    return f"recipe.layers[{layer}].{path[len('recipe.'):]}"


def layer_metric(stats: Any, metric: str, clock_mhz: float) -> float:
    """One layer's contribution to ``metric`` (the report's totals are these sums)."""
    if metric == "latency_cycles":
        return float(stats.latency_cycles)
    if metric == "latency_ms":
        return float(stats.latency_cycles) / (clock_mhz * 1e3)
    if metric == "energy_pj":
        return float(stats.energy_pj)
    if metric == "energy_uj":
        return float(stats.energy_pj) / 1e6
    raise ValueError(metric)


# --- the relaxed problem --------------------------------------------------------------------------

@dataclass
class UnitModel:
    """Surrogates of one layer (or a whole workload): metric -> model; ``choice`` if it has a choice block."""

    models: dict[str, LogQuadSurrogate]
    choice: int | None = None  # index into the problem's compressible layers
    floor: dict[str, float] = field(default_factory=dict)  # metrics that are always 0 for this unit


@dataclass
class AccuracyModel:
    """``accuracy ~ b0 + sum_l beta[l, c_l]`` (ridge on one-hot per-layer choices)."""

    b0: float
    beta: np.ndarray  # L x C

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, L: int, C: int, ridge: float = 1e-2) -> "AccuracyModel":
        mu = float(y.mean())
        A = X.astype(float)
        coef = np.linalg.solve(A.T @ A + ridge * np.eye(A.shape[1]), A.T @ (y - mu))
        return cls(b0=mu, beta=coef.reshape(L, C))

    def predict(self, choices: Sequence[int]) -> float:
        return self.b0 + float(sum(self.beta[l, c] for l, c in enumerate(choices)))


def onehot_choices(choices: Sequence[int], C: int) -> np.ndarray:
    x = np.zeros(len(choices) * C)
    for l, c in enumerate(choices):
        x[l * C + c] = 1.0
    return x


@dataclass
class Penalty:
    """One constraint of the relaxed search: ``sign`` +1 for an upper bound (``<=``, ``<``), -1 for a
    lower one; ``margin`` (in span units) tightens the bound by the surrogate's measured error."""

    metric: str
    sign: float
    bound: float
    margin: float = 0.0


class RelaxedProblem:
    """The differentiable objective over ``theta = [alpha (L*C), z (d), categorical logits]``."""

    def __init__(self, hs: HardwareSpace, units: list[UnitModel], n_layers: int, n_choices: int,
                 accuracy: AccuracyModel | None, weights: dict[str, float], spans: dict[str, float]):
        self.hs, self.units, self.L, self.C = hs, units, n_layers, n_choices
        self.accuracy, self.weights, self.spans = accuracy, weights, spans
        self.n_alpha = n_layers * n_choices
        self.penalties: list[Penalty] = []
        self.rho = 10.0
        self.size = self.n_alpha + hs.dims + sum(hs.cat_sizes)

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        alpha = theta[:self.n_alpha].reshape(self.L, self.C)
        z = theta[self.n_alpha:self.n_alpha + self.hs.dims]
        gam, i = [], self.n_alpha + self.hs.dims
        for k in self.hs.cat_sizes:
            gam.append(theta[i:i + k])
            i += k
        return alpha, z, gam

    def expected(self, metric: str, P: np.ndarray, z: np.ndarray, qs: list[np.ndarray]
                 ) -> tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]:
        """E[metric], dE/dP (L x C), dE/dz, [dE/dq_j]."""
        val, dP = 0.0, np.zeros((self.L, self.C))
        dz, dq = np.zeros(self.hs.dims), [np.zeros(k) for k in self.hs.cat_sizes]
        for u in self.units:
            if metric in u.floor:
                continue
            m = u.models[metric]
            if u.choice is None:
                y, gz, gq = m.value_and_grad(z, qs)
                val += y
                dz += gz
                for j in range(len(dq)):
                    dq[j] += gq[j]
                continue
            p = P[u.choice]
            for c in range(self.C):
                e = np.zeros(self.C)
                e[c] = 1.0
                y, gz, gq = m.value_and_grad(z, qs + [e])
                val += p[c] * y
                dP[u.choice, c] += y
                dz += p[c] * gz
                for j in range(len(dq)):
                    dq[j] += p[c] * gq[j]
        return val, dP, dz, dq

    def scaled(self, metric: str, P: np.ndarray, z: np.ndarray, qs: list[np.ndarray]
               ) -> tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]:
        """``f = log E[m] / span_m`` (latency/energy) or ``E[accuracy] / span_acc``, and its gradients."""
        s = 1.0 / self.spans[metric]
        if metric == "accuracy":
            assert self.accuracy is not None
            return (s * (self.accuracy.b0 + float(np.sum(P * self.accuracy.beta))), s * self.accuracy.beta,
                    np.zeros(self.hs.dims), [np.zeros(k) for k in self.hs.cat_sizes])
        val, dP, dz, dq = self.expected(metric, P, z, qs)
        return s * float(np.log(val)), s * dP / val, s * dz / val, [s * g / val for g in dq]

    def scaled_bound(self, metric: str, bound: float) -> float:
        """A constraint's bound on the scale of :meth:`scaled`."""
        return (bound if metric == "accuracy" else float(np.log(bound))) / self.spans[metric]

    def loss(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted objectives plus ``rho * max(0, v)^2`` per constraint, ``v = sign * (f - f_bound) + margin``."""
        alpha, z, gam = self.unpack(theta)
        P = np.array([softmax(a) for a in alpha]).reshape(self.L, self.C)
        qs = [softmax(g) for g in gam]
        J, gP = 0.0, np.zeros((self.L, self.C))
        gz, gq = np.zeros(self.hs.dims), [np.zeros(k) for k in self.hs.cat_sizes]
        cache: dict[str, tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]] = {}

        def add(metric: str, k: float) -> float:  # gradients += k * df; returns f
            nonlocal gP, gz
            if metric not in cache:
                cache[metric] = self.scaled(metric, P, z, qs)
            f, dP, dz, dq = cache[metric]
            gP, gz = gP + k * dP, gz + k * dz
            for j in range(len(gq)):
                gq[j] += k * dq[j]
            return f

        for metric, w in self.weights.items():
            if w != 0:
                s = -w if metric == "accuracy" else w
                J += s * add(metric, s)
        for pen in self.penalties:
            if pen.metric == "accuracy" and self.accuracy is None:
                continue  # accuracy does not depend on the search variables here
            if pen.metric not in cache:
                cache[pen.metric] = self.scaled(pen.metric, P, z, qs)
            v = pen.sign * (cache[pen.metric][0] - self.scaled_bound(pen.metric, pen.bound)) + pen.margin
            if v > 0:
                J += self.rho * v * v
                add(pen.metric, 2.0 * self.rho * v * pen.sign)
        g_alpha = np.array([softmax_vjp(P[l], gP[l]) for l in range(self.L)]).reshape(-1)
        g_gam = [softmax_vjp(q, g) for q, g in zip(qs, gq)]
        return J, np.concatenate([g_alpha, gz, *g_gam]) if g_gam else np.concatenate([g_alpha, gz])

    def optimise(self, steps: int, lr: float, theta0: np.ndarray | None = None) -> np.ndarray:
        """Adam on ``theta`` (``z`` kept in [-1, 1]); the penalty weight grows geometrically from
        ``rho`` to ``100 * rho`` over the steps (a penalty continuation: the objective shapes the
        early steps, feasibility dominates the last ones)."""
        theta = np.zeros(self.size) if theta0 is None else theta0.copy()
        opt = Adam(self.size, lr)
        zs = slice(self.n_alpha, self.n_alpha + self.hs.dims)
        rho0 = self.rho
        try:
            for k in range(steps):
                self.rho = rho0 * 100.0 ** (k / max(steps - 1, 1))
                _, g = self.loss(theta)
                theta = opt.step(theta, g)
                theta[zs] = np.clip(theta[zs], -1.0, 1.0)
        finally:
            self.rho = rho0
        return theta

    def decode(self, theta: np.ndarray) -> tuple[list[int], dict[str, Any]]:
        alpha, z, gam = self.unpack(theta)
        return [int(np.argmax(a)) for a in alpha], self.hs.decode(z, [softmax(g) for g in gam])


# --- the search ---------------------------------------------------------------------------------

@dataclass
class DifferentiableReport:
    """What the differentiable search did: measured surrogate / predictor errors and real evaluations."""

    surrogate_error: dict[str, dict[str, float]] = field(default_factory=dict)
    accuracy_error: dict[str, float] | None = None
    fit_simulations: int = 0
    holdout_simulations: int = 0
    accuracy_evaluations: int = 0
    designs: list[dict[str, Any]] = field(default_factory=list)
    feasible: list[bool] = field(default_factory=list)  # per design: meets every constraint when re-simulated
    search_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"surrogate_error": self.surrogate_error, "accuracy_error": self.accuracy_error,
                "fit_simulations": self.fit_simulations, "holdout_simulations": self.holdout_simulations,
                "accuracy_evaluations": self.accuracy_evaluations, "designs": self.designs,
                "feasible": self.feasible,
                "search_s": self.search_s}


def check_spec(sweep: Any) -> None:
    """Sweep-file checks of a differentiable search (one-line errors naming the field)."""
    src = sweep.source
    names = sweep.objective_names()
    for i, o in enumerate(sweep.objectives):
        if getattr(o, "aggregate", None):
            continue
        if o.name == "accuracy":
            if o.sense != "max":
                raise ConfigError("accuracy can only be maximised", source=src, field=f"objectives[{i}]")
        elif o.name not in ADDITIVE or o.sense != "min":
            raise ConfigError(f"method differentiable models {', '.join(ADDITIVE)} (min) and accuracy (max); "
                              f"not {o.name} ({o.sense})", source=src, field=f"objectives[{i}]")
    check_constraints(sweep)
    for a in sweep.recipe_axes:
        parts = a.path.split(".")
        if len(parts) != 3 or parts[1] not in _SECTIONS:
            raise ConfigError(f"a differentiable search chooses per layer among recipe.<{'|'.join(_SECTIONS)}>.<field> "
                              f"values; {a.path!r} is not one", source=src, field=f"axes.{a.path}")
        if not a.is_finite or a.is_tied:
            raise ConfigError("per-layer choices need a finite list of values", source=src, field=f"axes.{a.path}")
    has_agg = any(getattr(o, "aggregate", None) for o in sweep.objectives)
    if sweep.spec.compression is None and not has_agg:
        if len(sweep.workloads) != 1:
            raise ConfigError("a differentiable hardware search takes one workload (or an aggregate objective "
                              "over several)", source=src, field="workloads")
        if "accuracy" in names:
            raise ConfigError("accuracy needs a compression section", source=src, field="objectives")
    if not sweep.hardware_axes and not sweep.recipe_axes:
        raise ConfigError("nothing to search: give hardware or recipe.* axes", source=src, field="axes")


def check_constraints(sweep: Any) -> None:
    """Constraints a differentiable search can penalise: bounds on latency/energy/accuracy."""
    src = sweep.source
    has_agg = any(getattr(o, "aggregate", None) for o in sweep.objectives)
    for i, c in enumerate(sweep.constraints):
        fld = f"constraints[{i}]"
        if has_agg:
            raise ConfigError("an aggregate differentiable search takes no constraints (use grid or random)",
                              source=src, field=fld)
        if c.metric not in ADDITIVE and c.metric != "accuracy":
            raise ConfigError(f"method differentiable penalises bounds on {', '.join(ADDITIVE)} and accuracy; "
                              f"not {c.metric!r}", source=src, field=fld)
        if c.op in ("==", "!="):
            raise ConfigError(f"a differentiable penalty needs a bound (<=, <, >=, >), not {c.op!r}", source=src,
                              field=fld)
        if c.metric != "accuracy" and c.value <= 0:
            raise ConfigError(f"a bound on {c.metric} must be > 0, got {c.value:g}", source=src, field=fld)
        if c.metric == "accuracy" and sweep.spec.compression is None:
            raise ConfigError("accuracy needs a compression section", source=src, field=fld)


def constraint_margins(sweep: Any, problem: "RelaxedProblem", rep: "DifferentiableReport") -> list[Penalty]:
    """The sweep's constraints as penalties, each bound tightened by its model's measured mean error
    (``log(1 + mean relative error)`` of the latency/energy surrogate, the accuracy predictor's
    leave-one-out mean absolute error), so the snapped design is more likely to pass the exact check."""
    out = []
    for c in sweep.constraints:
        if c.metric == "accuracy":
            err = (rep.accuracy_error or {}).get("mean_abs_err", 0.0)
        else:
            err = float(np.log1p(rep.surrogate_error.get(c.metric, {}).get("mean_rel_err", 0.0)))
        span = problem.spans.get(c.metric, 1.0)
        out.append(Penalty(c.metric, 1.0 if c.op in ("<=", "<") else -1.0, c.value, err / span))
    return out


def exact_feasibility(session: Any, designs: list[dict[str, Any]]) -> list[bool]:
    """The hard check: each design's exact (re-simulated, measured) metrics against every constraint."""
    cons = session.sweep.constraints
    out = []
    for prm, (status, m) in zip(designs, session.evaluate_params(designs)):
        look = {**(m or {}), **prm}
        out.append(status == "ok" and all(c.ok(look.get(c.metric, float("nan"))) for c in cons))
    return out


def run_differentiable(session: Any) -> DifferentiableReport:
    """Run the differentiable search of ``session.sweep`` (see the module docstring)."""
    sweep = session.sweep
    check_spec(sweep)
    spec = sweep.spec.search
    t0 = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    hs = HardwareSpace(sweep.hardware_axes)
    hw_metrics = [n for n in sweep.objective_names() if n != "accuracy"]
    hw_metrics += [m for m in dict.fromkeys(c.metric for c in sweep.constraints)
                   if m != "accuracy" and m not in hw_metrics]
    rep = DifferentiableReport()
    fit_hw = sample_hardware(session, hs, rng, spec.fit_samples)
    hold_hw = sample_hardware(session, hs, rng, spec.holdout) if spec.holdout else []

    if sweep.spec.compression is None:  # hardware only, one workload: one unit = the whole workload
        wl = sweep.workloads[0].load()
        data = []
        for prm, hw in fit_hw:
            r = simulate_exact(wl, hw)
            data.append((prm, [[float(r.metrics()[m]) for m in hw_metrics]]))
        rep.fit_simulations = len(data)
        models, floor = fit_models(hs, data, hw_metrics)
        units = [UnitModel(models, None, floor)]
        L, C, layers, choices, acc_model = 0, 1, [], [{}], None
        hold = [(prm, [], simulate_exact(wl, hw).metrics()) for prm, hw in hold_hw]
    else:
        from .coexplore import compressed_model

        comp = session.compression
        raxes = [a for a in sweep.recipe_axes]
        choices = [dict(zip([a.path for a in raxes], combo)) for combo in itertools.product(*[a.values() for a in raxes])]
        C = len(choices)
        base_rec, err = session.space.recipe_for({})
        if err:
            raise ConfigError(err, source=sweep.source, field="compression.recipe")
        types = set(base_rec.get("types") or ("conv2d", "linear"))
        session.prepare_compression([dict(c) for c in choices])
        uniform = [compressed_model(comp, session.space.recipe_for(dict(c))[0]) for c in choices]
        layers = [ly.name for ly in uniform[0].workload.layers if ly.op in types] if C > 1 else []
        others = [ly.name for ly in uniform[0].workload.layers if ly.name not in layers]
        L = len(layers)
        # accuracy: the uniform recipes plus random per-layer mixes, measured by the evaluator
        acc_params: list[dict[str, Any]] = []
        acc_choices: list[list[int]] = []
        for _ in range(spec.accuracy_samples if L else 0):
            ch = [int(rng.integers(0, C)) for _ in range(L)]
            acc_choices.append(ch)
            acc_params.append(per_layer_params(layers, [choices[c] for c in ch]))
        session.prepare_compression(acc_params)
        mixed = [compressed_model(comp, session.space.recipe_for(p)[0]) for p in acc_params]
        rep.accuracy_evaluations = C + len(mixed)
        acc_model = None
        if "accuracy" in sweep.objective_names() + [c.metric for c in sweep.constraints] and L:
            X = np.array([onehot_choices([c] * L, C) for c in range(C)] + [onehot_choices(ch, C) for ch in acc_choices])
            y = np.array([u.accuracy for u in uniform] + [m.accuracy for m in mixed], dtype=float)
            if np.any(~np.isfinite(y)):
                raise ConfigError("the evaluator returned no accuracy", source=sweep.source, field="compression.evaluator")
            acc_model = AccuracyModel.fit(X, y, max(L, 1), C)
            loo = [AccuracyModel.fit(np.delete(X, i, 0), np.delete(y, i), max(L, 1), C).predict(
                list(np.argmax(X[i].reshape(max(L, 1), C), axis=1))) for i in range(len(y))]
            rep.accuracy_error = {"mean_abs_err": float(np.mean(np.abs(np.array(loo) - y))),
                                  "max_abs_err": float(np.max(np.abs(np.array(loo) - y))), "points": int(len(y)),
                                  "method": "leave-one-out"}
        # per-layer latency/energy: every fit hardware sample x every uniform choice
        per_layer: dict[str, list[tuple[dict[str, Any], list[Any]]]] = {n: [] for n in layers + others}
        for prm, hw in fit_hw:
            for c, u in enumerate(uniform):
                r = simulate_exact(u.workload, hw)
                rep.fit_simulations += 1
                onehot = np.eye(C)[c]
                for s in r.layers:
                    vals = [layer_metric(s, m, hw.clock_mhz) for m in hw_metrics]
                    if s.layer in layers:
                        per_layer[s.layer].append((prm, [vals, onehot]))
                    elif c == 0:
                        per_layer[s.layer].append((prm, [vals]))
        units = []
        for i, n in enumerate(layers):
            models, floor = fit_models(hs, per_layer[n], hw_metrics, extra_cat=C)
            units.append(UnitModel(models, i, floor))
        for n in others:
            models, floor = fit_models(hs, per_layer[n], hw_metrics)
            units.append(UnitModel(models, None, floor))
        # held out: new hardware x the measured per-layer mixes (or the uniform networks)
        pool = [(ch, m.workload) for ch, m in zip(acc_choices, mixed)] or [([c] * L, u.workload) for c, u in enumerate(uniform)]
        hold = []
        for i, (prm, hw) in enumerate(hold_hw):
            ch, wl = pool[i % len(pool)]
            hold.append((prm, ch, simulate_exact(wl, hw).metrics()))
    rep.holdout_simulations = len(hold)

    weights_list = _trade_offs(sweep, spec.trade_offs, rng)
    if acc_model is None:  # no per-layer choice: accuracy does not depend on the search variables
        weights_list = [{k: v for k, v in w.items() if k != "accuracy"} or {hw_metrics[0]: 1.0} for w in weights_list]
        weights_list = [w for i, w in enumerate(weights_list) if w not in weights_list[:i]]
    spans = _spans(units, hs, fit_hw, hw_metrics, acc_model, L, C)
    problem = RelaxedProblem(hs, units, L, C, acc_model, weights_list[0], spans)
    for m in hw_metrics:  # the surrogate's measured held-out error on the whole network
        if hold:
            pred = [problem_total(problem, m, ch, prm) for prm, ch, _ in hold]
            rep.surrogate_error[m] = heldout_error([h[2][m] for h in hold], pred)
    problem.penalties = constraint_margins(sweep, problem, rep)
    problem.rho = spec.penalty
    designs: list[dict[str, Any]] = []
    for w in weights_list:
        problem.weights = w
        theta = problem.optimise(spec.steps, spec.lr)
        ch, hw_prm = problem.decode(theta)
        prm = dict(hw_prm)
        if L:
            prm.update(per_layer_params(layers, [choices[c] for c in ch]))
        if prm not in designs:
            designs.append(prm)
    rep.designs = designs
    rep.search_s = time.perf_counter() - t0
    # exact: compressed + measured by the evaluator, simulated, stored; a design over a constraint stays
    # in the store but off the front (front_of keeps feasible points only)
    rep.feasible = exact_feasibility(session, designs)
    return rep


def per_layer_params(layers: Sequence[str], picks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {layer_param(n, path): v for n, pick in zip(layers, picks) for path, v in pick.items()}


def problem_total(problem: RelaxedProblem, metric: str, choices: Sequence[int], prm: dict[str, Any]) -> float:
    """The surrogate's prediction of ``metric`` for an exact design."""
    z, qs = problem.hs.encode(prm)
    P = np.zeros((problem.L, problem.C))
    for l, c in enumerate(choices):
        P[l, c] = 1.0
    return problem.expected(metric, P, z, qs)[0]


def _spans(units: list[UnitModel], hs: HardwareSpace, fit_hw: list[tuple[dict[str, Any], Any]],
           metrics: Sequence[str], acc: AccuracyModel | None, L: int, C: int) -> dict[str, float]:
    """Scale of each objective term: the spread of log(metric) over the fit samples, of accuracy over choices."""
    spans: dict[str, float] = {}
    tmp = RelaxedProblem(hs, units, L, C, None, {}, {})
    for m in metrics:
        vals = []
        for prm, _ in fit_hw:
            z, qs = hs.encode(prm)
            for c in range(C):
                P = np.zeros((L, C))
                P[:, c] = 1.0
                vals.append(tmp.expected(m, P, z, qs)[0])
        lv = np.log(np.maximum(vals, 1e-300))
        spans[m] = max(float(lv.max() - lv.min()), 1e-3)
    if acc is not None:
        spread = float(np.sum(acc.beta.max(axis=1) - acc.beta.min(axis=1)))
        spans["accuracy"] = max(spread, 1e-3)
    return spans


def _trade_offs(sweep: Any, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """``n`` weightings of the objectives: evenly spaced for two, seeded Dirichlet draws (+ corners) for more."""
    names = sweep.objective_names()
    if len(names) == 1:
        return [{names[0]: 1.0}]
    if len(names) == 2:
        ts = np.linspace(0.05, 0.95, n) if n > 1 else np.array([0.5])
        return [{names[0]: float(t), names[1]: float(1 - t)} for t in ts]
    out = []
    for i in range(n):
        w = rng.dirichlet(np.ones(len(names))) if i >= len(names) else np.eye(len(names))[i] * 0.9 + 0.1 / len(names)
        out.append({k: float(v) for k, v in zip(names, w)})
    return out


def summary_json(rep: DifferentiableReport) -> str:
    return json.dumps(rep.to_dict(), sort_keys=True, default=str)
