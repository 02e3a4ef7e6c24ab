"""Multi-objective search for spaces too large to enumerate: NSGA-II (optuna's ``NSGAIISampler``).

Each generation asks ``population`` points from the sampler, evaluates them like a grid chunk
(stored points are looked up, not simulated again; the executor runs the rest in parallel) and
tells the sampler the objective values in the order asked, so a run is reproducible for a given
``search.seed``. Constraints use NSGA-II's constrained domination (violation = distance to the
bound); invalid hardware combinations and failed points are told as failed trials.

Axis kinds map to optuna distributions: finite axes -> categorical, ``uniform`` -> float,
``loguniform`` -> log float, ``randint`` -> int; ``same_as`` axes follow their target.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..errors import ConfigError


def _distributions(axes: list[Any]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for a in axes:
        if a.is_tied:
            continue
        if a.kind == "uniform":
            out[a.path] = FloatDistribution(float(a.args[0]), float(a.args[1]))
        elif a.kind == "loguniform":
            out[a.path] = FloatDistribution(float(a.args[0]), float(a.args[1]), log=True)
        elif a.kind == "randint":
            out[a.path] = IntDistribution(int(a.args[0]), int(a.args[1]))
        else:
            out[a.path] = CategoricalDistribution(tuple(a.values()))
    return out


def run_nsga2(session: Any) -> Any:
    """Run the NSGA-II search of ``session.sweep`` (see :class:`accelsim.dse.runner.SweepSession`)."""
    try:
        with warnings.catch_warnings():  # optuna imports tqdm.auto, which warns in a notebook without ipywidgets
            warnings.filterwarnings("ignore", message="IProgress not found")
            import optuna
    except ImportError:
        raise ConfigError("search.method nsga2 needs optuna: pip install optuna", source=session.sweep.source,
                          field="search.method") from None
    sweep = session.sweep
    spec = sweep.spec.search
    n_targets = 1 if sweep.spec.compression is not None else len(sweep.workloads)
    if n_targets != 1:
        raise ConfigError("nsga2 searches one workload at a time; list a single workload (or run one sweep per "
                          "workload)", source=sweep.source, field="workloads")
    objectives = [(o.name, o.sense) for o in sweep.objectives]
    constraints = list(sweep.constraints)
    dists = _distributions(sweep.axes)
    tied = [a for a in sweep.axes if a.is_tied]

    # optuna >= 5: Trial.set_constraint; older: the sampler's constraints_func reading a user attr
    new_api = hasattr(optuna.trial.Trial, "set_constraint")

    def constraints_func(trial: Any) -> list[float]:
        return list(trial.user_attrs.get("violations", [0.0] * len(constraints)))

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.NSGAIISampler(
                population_size=spec.population, seed=spec.seed, mutation_prob=spec.mutation_prob,
                crossover_prob=spec.crossover_prob,
                constraints_func=constraints_func if constraints and not new_api else None)
            study = optuna.create_study(directions=["minimize" if s == "min" else "maximize" for _, s in objectives],
                                        sampler=sampler)
            for gen in range(spec.generations):
                trials = [study.ask(dists) for _ in range(spec.population)]
                params = []
                for tr in trials:
                    p = {a.path: tr.params[a.path] for a in sweep.axes if not a.is_tied}
                    for a in tied:
                        p[a.path] = p[a.args[0]]
                    params.append({a.path: p[a.path] for a in sweep.axes})
                outcomes = session.evaluate_params(params, start_index=gen * spec.population)
                for tr, prm, (status, metrics) in zip(trials, params, outcomes):
                    if status != "ok" or metrics is None:
                        study.tell(tr, state=optuna.trial.TrialState.FAIL)
                        continue
                    values = [metrics.get(n) for n, _ in objectives]
                    if any(v is None or v != v for v in values):
                        study.tell(tr, state=optuna.trial.TrialState.FAIL)
                        continue
                    if constraints:
                        lookup = {**metrics, **prm}
                        viol = [c.violation(lookup.get(c.metric, float("nan"))) for c in constraints]
                        if new_api:
                            for i, v in enumerate(viol):
                                tr.set_constraint(f"c{i}", v)
                        else:
                            tr.set_user_attr("violations", viol)
                    study.tell(tr, [float(v) for v in values])
    finally:
        optuna.logging.set_verbosity(old)
    return study
