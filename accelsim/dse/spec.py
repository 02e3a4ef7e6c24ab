"""The sweep file: a pydantic schema whose errors name the sweep file and the field.

Example (``sweeps/systolic_resnet50.yaml``)::

    accelsim_sweep: 1
    name: systolic_resnet50
    hardware: ../hw_configs/systolic_128x128_os.yaml   # base config (path relative to this file) or a mapping
    workloads: [zoo:resnet50]                          # zoo:<name>, a workload file, or {zoo: resnet18, resolution: 64}
                                                       # or {constrained: {...}} (accelsim.dse.constrained)
    axes:                                              # dotted paths into the hardware schema
      rows: [32, 64, 128]
      cols: {same_as: rows}
      dram.bw_gbps: [12.8, 25.6]
      energy.mac_pj: {linspace: [0.2, 0.6, 3]}
    search: {method: grid}                             # grid | random | nsga2 | differentiable (see docs/dse.md)
    objectives: [latency_ms, energy_uj]                # or {metric: accuracy, goal: max}
    constraints: ["utilization >= 0.3"]

Co-exploration replaces ``workloads`` by ``compression`` (a front-end model, a base recipe and a
seed) and may sweep ``recipe.<dotted path>`` axes (e.g. ``recipe.prune.density``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from .._validation import read_yaml, reject_bool_numbers, validate_model
from ..errors import ConfigError
from .axes import Axis, parse_axis, resolve_ties

#: metric -> default goal; energy_<component>_pj columns are also metrics (goal min)
METRICS: dict[str, str] = {
    "latency_cycles": "min", "latency_ms": "min", "energy_pj": "min", "energy_uj": "min", "edp_uj_ms": "min",
    "area_mm2": "min", "accuracy": "max", "utilization": "max", "inferences_per_s": "max", "tops_per_w": "max",
    "compute_cycles": "min", "stall_cycles": "min", "dram_read_bytes": "min", "dram_write_bytes": "min",
    "macs": "min", "peak_gops": "max", "achieved_gops": "max", "operational_intensity": "max",
}
ALIASES = {"latency": "latency_ms", "energy": "energy_uj", "edp": "edp_uj_ms", "area": "area_mm2"}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_constraint(text: str, source: str = "<constraint>", field: str | None = None) -> "Constraint":
    """``'area_mm2 <= 10'`` -> Constraint (ConfigError naming ``source``/``field`` when malformed)."""
    m = _CONSTRAINT.match(text)
    if not m:
        raise ConfigError(f"expected 'metric <op> number' such as 'area_mm2 <= 10', got {text!r}", source=source,
                          field=field)
    return Constraint(metric=canonical_metric(m.group(1)), op=m.group(2), value=float(m.group(3)))


def feasible_mask(df, constraints: "list[Constraint]"):  # type: ignore[no-untyped-def]
    """Boolean Series: rows of ``df`` meeting every constraint (a missing column fails it)."""
    import pandas as pd

    ok = pd.Series(True, index=df.index)
    for c in constraints:
        if c.metric not in df.columns:
            return pd.Series(False, index=df.index)
        ok &= df[c.metric].map(lambda x, c=c: c.ok(float("nan") if x is None else x))
    return ok


def canonical_metric(name: str) -> str:
    return ALIASES.get(name, name)


def is_metric(name: str) -> bool:
    return name in METRICS or bool(re.fullmatch(r"energy_\w+_pj", name))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)


class Objective(_Spec):
    """A metric to minimise or maximise (``goal`` defaults to the metric's natural direction)."""

    metric: str
    goal: Literal["min", "max"] | None = None
    aggregate: Literal["minmax", "mean", "max"] | None = Field(
        None, description="over the sweep's workloads: minmax (learned simplex weights), mean (uniform) or max")
    normalize: Literal["none", "best"] = Field(
        "none", description="aggregate: divide each workload's metric by its best sampled value first")

    @property
    def name(self) -> str:
        return canonical_metric(self.metric)

    @property
    def sense(self) -> str:
        return self.goal or METRICS.get(self.name, "min")


class Constraint(_Spec):
    """``metric op value`` (e.g. ``area_mm2 <= 10``); the metric may also be an axis path."""

    metric: str
    op: Literal["<=", ">=", "<", ">", "==", "!="]
    value: float

    def ok(self, x: float) -> bool:
        if x is None or x != x:  # missing or NaN never satisfies a constraint
            return False
        return {"<=": x <= self.value, ">=": x >= self.value, "<": x < self.value, ">": x > self.value,
                "==": x == self.value, "!=": x != self.value}[self.op]

    def violation(self, x: float) -> float:
        """How far ``x`` is from satisfying (0 when it does); NaN counts as 1e300."""
        if x is None or x != x:
            return 1e300
        if self.op in ("<=", "<"):
            return max(0.0, x - self.value)
        if self.op in (">=", ">"):
            return max(0.0, self.value - x)
        return 0.0 if self.ok(x) else abs(x - self.value) or 1.0

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


#: upper bounds checked when a sweep file loads (a seed numpy, optuna and torch all accept; points
#: one store holds in reasonable time)
MAX_SEED = 2**32 - 1
MAX_SWEEP_POINTS = 10_000_000


# --- method: distill (AutoGAN-Distiller-style generator search, accelsim.dse.distill) ----------------

class DistillSearchSpec(_Spec):
    """``search.distill``: the generator space, budget and training of ``method: distill``."""

    max_macs: int | None = Field(None, gt=0, description="budget: MACs of a student (per 8x8 output image)")
    max_latency_ms: float | None = Field(None, gt=0, description="budget: simulated latency of a student on the sweep's hardware")
    teacher_width: int = Field(32, ge=1, le=512, description="channels of the teacher's stem and cells")
    cells: int = Field(3, ge=1, le=16, description="cells of teacher and students")
    widths: list[int] = Field([4, 8, 12, 16, 24], min_length=1, description="channel choices per cell / stem")
    kernels: list[int] = Field([1, 3, 5], min_length=1, description="kernel choices per cell (odd)")
    ops: list[Literal["conv", "dwsep", "res"]] = Field(["conv", "dwsep", "res"], min_length=1,
                                                       description="op choices per cell")
    epochs: int = Field(40, ge=1, le=100_000, description="training epochs of teacher and final students")
    proxy_epochs: int = Field(8, ge=1, le=100_000, description="distillation epochs of each candidate")

    @model_validator(mode="after")
    def _check(self) -> "DistillSearchSpec":
        if self.max_macs is None and self.max_latency_ms is None:
            raise ValueError("give a budget: max_macs and/or max_latency_ms")
        if any(w < 1 for w in self.widths):
            raise ValueError("widths must be >= 1")
        if any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ValueError("kernels must be odd and >= 1")
        return self


def check_distill_sweep(spec: "SweepSpec", axes: list[Any], source: str) -> None:
    """Sweep-level checks of ``method: distill`` (one-line errors naming the field)."""
    if spec.search.method != "distill":
        raise ConfigError(f"search.distill applies to method distill only, not {spec.search.method!r}", source=source,
                          field="search.distill")
    if spec.search.distill is None:
        raise ConfigError("method distill needs a search.distill section (budget, space, epochs)", source=source,
                          field="search.distill")
    for fld, bad in (("workloads", spec.workloads), ("compression", spec.compression), ("axes", axes),
                     ("constraints", spec.constraints)):
        if bad:
            raise ConfigError(f"method distill searches generators on the sweep's hardware: drop {fld}",
                              source=source, field=fld)


class SearchSpec(_Spec):
    """How points are chosen: every combination, seeded random samples, or NSGA-II (optuna)."""

    method: Literal["grid", "random", "nsga2", "differentiable", "distill"] = "grid"
    samples: int | None = Field(None, gt=0, le=MAX_SWEEP_POINTS, description="random: number of draws")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of every random draw (0 .. 2**32-1)")
    population: int = Field(16, ge=2, le=100_000, description="nsga2: individuals per generation")
    generations: int = Field(10, ge=1, le=100_000, description="nsga2: generations (incl. the random first one)")
    mutation_prob: float | None = Field(None, gt=0, le=1, description="nsga2: per-parameter mutation probability")
    crossover_prob: float = Field(0.9, ge=0, le=1)
    # differentiable (see accelsim.dse.differentiable / .minmax)
    fit_samples: int = Field(16, ge=2, le=100_000, description="differentiable: hardware draws simulated to fit the surrogate")
    holdout: int = Field(8, ge=0, le=100_000, description="differentiable: fresh draws simulated to measure its error")
    accuracy_samples: int = Field(8, ge=0, le=100_000, description="differentiable: random per-layer mixes measured for accuracy")
    steps: int = Field(300, ge=1, le=1_000_000, description="differentiable: gradient steps per trade-off")
    lr: float = Field(0.05, gt=0, le=100, description="differentiable: Adam step size")
    penalty: float = Field(10.0, gt=0, le=1e9, description="differentiable: constraint penalty weight (grows 100x over the steps)")
    trade_offs: int = Field(6, ge=1, le=10_000, description="differentiable: objective weightings (front points)")
    weight_lr: float = Field(0.5, gt=0, le=100, description="aggregate minmax: exponentiated-gradient step on the simplex")
    distill: DistillSearchSpec | None = Field(None, description="method distill: generator space, budget, epochs")

    @model_validator(mode="after")
    def _check(self) -> "SearchSpec":
        if self.method == "random" and self.samples is None:
            raise ValueError("method 'random' needs samples (number of points to draw)")
        if self.method != "random" and self.samples is not None:
            raise ValueError(f"samples applies to method 'random' only, not {self.method!r}")
        return self


class CompressionSpec(_Spec):
    """Co-exploration: a front-end model compressed by ``recipe`` (swept with ``recipe.*`` axes).

    ``model`` is a front-end zoo model trained on ``dataset`` (scikit-learn digits) or the user's
    factory; its accuracy after compression is measured by the front-end (or by the user's
    ``evaluator``, see :mod:`.coexplore`) and cached on disk (``cache_dir``, default
    ``<store>.cache``). ``train`` passes extra options to the evaluator.
    """

    model: str | Callable[..., Any] = Field(description="zoo name, 'file.py:factory', 'module:factory' or (Python) a factory")
    recipe: dict[str, Any] | str = Field(default_factory=dict)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    dataset: Literal["digits"] = "digits"
    train: dict[str, Any] = Field(default_factory=dict)
    cache_dir: str | None = None
    evaluator: str | Callable[..., Any] | None = Field(
        None, description="'module:function' or 'file.py:function': a full evaluator or evaluate(model) -> accuracy")

    @field_validator("model", "evaluator")
    @classmethod
    def _nonempty(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_serializer("model", "evaluator", when_used="json")
    def _ref(self, v: Any) -> Any:
        if callable(v):
            from .coexplore import ref_label

            return ref_label(v)
        return v


class SweepSpec(_Spec):
    """The sweep file (see the module docstring)."""

    accelsim_sweep: Literal[1] = 1
    name: str = Field(min_length=1, pattern=r"^[\w.\-]+$")
    description: str = ""
    hardware: str | dict[str, Any]
    workloads: list[str | dict[str, Any]] = Field(default_factory=list)
    compression: CompressionSpec | None = None
    axes: dict[str, Any] = Field(default_factory=dict)
    search: SearchSpec = SearchSpec()
    objectives: list[str | Objective] = Field(default_factory=lambda: ["latency_ms", "energy_uj"], min_length=1)
    constraints: list[str] = Field(default_factory=list)
    chunk_size: int | None = Field(None, ge=1, description="points per task sent to a worker (default: automatic)")

    @model_validator(mode="after")
    def _check(self) -> "SweepSpec":
        if not self.workloads and self.compression is None and self.search.method != "distill":
            raise ValueError("give workloads (zoo:<name> or workload files) or a compression section")
        if self.workloads and self.compression is not None:
            raise ValueError("give either workloads or compression (its model is the workload), not both")
        return self


@dataclass
class WorkloadRef:
    """One workload of the sweep: what the user wrote and how to build it."""

    label: str            # e.g. 'zoo:resnet50' or 'models/resnet18.yaml'
    zoo: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # absolute
    constrained: dict[str, Any] | None = None  # latency-constrained pruning (see accelsim.dse.constrained)

    def to_payload(self) -> dict[str, Any]:
        out = {"label": self.label, "zoo": self.zoo, "kwargs": dict(self.kwargs), "path": self.path}
        if self.constrained is not None:
            out["constrained"] = self.constrained
        return out

    def load(self):  # type: ignore[no-untyped-def]
        if self.constrained is not None:
            from .constrained import constrained_workload

            return constrained_workload(self.constrained)
        if self.zoo is not None:
            from ..workload.zoo import get_model

            return get_model(self.zoo, **self.kwargs)
        from ..workload.io import load_workload

        return load_workload(self.path)  # type: ignore[arg-type]


@dataclass
class Sweep:
    """A validated sweep: the schema plus its resolved parts (base hardware, axes, workloads)."""

    spec: SweepSpec
    source: str
    base_dir: Path
    base_hardware: dict[str, Any]
    axes: list[Axis]
    workloads: list[WorkloadRef]
    objectives: list[Objective]
    constraints: list[Constraint]
    base_recipe: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hardware_axes(self) -> list[Axis]:
        return [a for a in self.axes if not a.path.startswith("recipe.")]

    @property
    def recipe_axes(self) -> list[Axis]:
        return [a for a in self.axes if a.path.startswith("recipe.")]

    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]


def _resolve_path(text: str, base_dir: Path) -> Path:
    p = Path(text).expanduser()
    if p.is_absolute():
        return p
    here = base_dir / p
    if here.exists():
        return here
    cwd = Path.cwd() / p
    return cwd if cwd.exists() else here


def _check_hw_path(path: str, hw_full: dict[str, Any], source: str) -> None:
    node: Any = hw_full
    walked = []
    for part in path.split("."):
        if node is None:
            return  # an optional section that is unset in the base: pydantic checks the point later
        if not isinstance(node, dict) or part not in node:
            where = ".".join(walked) or "the hardware config"
            known = sorted(node) if isinstance(node, dict) else []
            raise ConfigError(f"unknown hardware field {part!r} in {where}; known fields: {', '.join(known)}",
                              source=source, field=f"axes.{path}")
        node = node[part]
        walked.append(part)
    if isinstance(node, dict):
        raise ConfigError(f"'{path}' is a section ({', '.join(sorted(node))}); sweep one of its fields",
                          source=source, field=f"axes.{path}")


def load_sweep(path: str | Path | dict[str, Any], *, base_dir: str | Path | None = None) -> Sweep:
    """Read and check a sweep file (or a dict): every error names the file and the field."""
    if isinstance(path, dict):
        data, source = path, "<sweep>"
        bdir = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        p = Path(path)
        data, source = read_yaml(p), str(p)
        bdir = Path(base_dir) if base_dir is not None else p.resolve().parent
    spec = validate_model(SweepSpec, data, source)

    # base hardware
    from ..hardware.io import hardware_from_dict, hardware_to_dict, load_hardware

    if isinstance(spec.hardware, str):
        hw_path = _resolve_path(spec.hardware, bdir)
        try:
            hw = load_hardware(hw_path)
        except ConfigError as exc:
            raise ConfigError(f"base hardware: {exc}", source=source, field="hardware") from None
    else:
        hw = hardware_from_dict(spec.hardware, source=f"{source}: hardware")
    base_hw = hardware_to_dict(hw)
    hw_full = hw.model_dump(mode="json")

    # axes
    axes = [parse_axis(k, v, source) for k, v in spec.axes.items()]
    resolve_ties(axes, source)
    for a in axes:
        if a.path.startswith("recipe."):
            if spec.compression is None:
                raise ConfigError("recipe.* axes need a compression section (model + recipe)", source=source,
                                  field=f"axes.{a.path}")
        else:
            _check_hw_path(a.path, hw_full, source)
    if spec.search.method == "distill" or spec.search.distill is not None:
        check_distill_sweep(spec, axes, source)
    if spec.search.method == "grid":
        for a in axes:
            if not a.is_finite and not a.is_tied:
                raise ConfigError(f"{a.kind} is a distribution: a grid needs finite values (values, range, linspace, "
                                  "geomspace, pow2) or search.method random/nsga2", source=source, field=f"axes.{a.path}")
    if spec.search.method == "differentiable" and not axes:
        raise ConfigError("a differentiable search needs axes (hardware and/or recipe.*)", source=source, field="axes")
    if spec.search.method == "nsga2" and not axes:
        raise ConfigError("nsga2 needs at least one axis to search", source=source, field="axes")

    # workloads
    refs: list[WorkloadRef] = []
    for i, w in enumerate(spec.workloads):
        fld = f"workloads[{i}]"
        if isinstance(w, str):
            if w.startswith("zoo:"):
                refs.append(WorkloadRef(label=w, zoo=w[4:]))
            else:
                wp = _resolve_path(w, bdir)
                if not wp.exists():
                    raise ConfigError(f"workload file {w!r} not found (looked next to the sweep file and in the current "
                                      "directory)", source=source, field=fld)
                refs.append(WorkloadRef(label=w, path=str(wp.resolve())))
        elif "constrained" in w:
            from .constrained import constrained_ref

            refs.append(WorkloadRef(**constrained_ref(w, base_hw, bdir, source, fld)))
        else:
            if "zoo" not in w:
                raise ConfigError("a workload mapping needs 'zoo: <model>' plus the model's arguments (or "
                                  "'constrained: {...}')", source=source, field=fld)
            kwargs = {k: v for k, v in w.items() if k != "zoo"}
            label = "zoo:" + str(w["zoo"]) + "".join(f",{k}={v}" for k, v in sorted(kwargs.items()))
            refs.append(WorkloadRef(label=label, zoo=str(w["zoo"]), kwargs=kwargs))
    labels = [r.label for r in refs]
    if len(set(labels)) != len(labels):
        raise ConfigError("a workload is listed twice", source=source, field="workloads")
    for i, r in enumerate(refs):  # fail early on unknown models/arguments
        try:
            if r.zoo is not None:
                from ..workload.zoo import get_model

                get_model(r.zoo, **r.kwargs)
        except ConfigError as exc:
            raise ConfigError(exc.message, source=source, field=f"workloads[{i}]") from None

    # objectives and constraints
    objectives: list[Objective] = []
    axis_paths = {a.path for a in axes}
    for i, o in enumerate(spec.objectives):
        obj = Objective(metric=o) if isinstance(o, str) else o
        if not is_metric(obj.name):
            raise ConfigError(f"unknown metric {obj.metric!r}; known: {', '.join(METRICS)} (aliases "
                              f"{', '.join(ALIASES)}) or energy_<component>_pj", source=source, field=f"objectives[{i}]")
        objectives.append(obj)
    names = [o.name for o in objectives]
    for i, o in enumerate(objectives):
        fld = f"objectives[{i}]"
        if o.aggregate is None:
            if o.normalize != "none":
                raise ConfigError("normalize applies to an aggregate objective only", source=source, field=fld)
            continue
        if len(objectives) != 1:
            raise ConfigError("an aggregate objective is the sweep's only objective", source=source, field=fld)
        if spec.compression is not None or len(spec.workloads) < 2:
            raise ConfigError(f"aggregate {o.aggregate} is taken over the sweep's workloads: list two or more (no "
                              "compression section)", source=source, field=fld)
        if spec.search.method == "nsga2":
            raise ConfigError("an aggregate objective is solved by grid, random or differentiable search, not nsga2",
                              source=source, field="search.method")
        if o.sense != "min":
            raise ConfigError(f"aggregate {o.aggregate} minimises; {o.name} is maximised", source=source, field=fld)
    if len(set(names)) != len(names):
        raise ConfigError("an objective is listed twice", source=source, field="objectives")
    if "accuracy" in names and spec.compression is None:
        raise ConfigError("accuracy comes from the front-end: add a compression section (model + recipe)",
                          source=source, field="objectives")
    if "area_mm2" in names and not type(hw).has_area_model:
        raise ConfigError(f"hardware kind {hw.kind!r} has no area model, so area_mm2 cannot be an objective",
                          source=source, field="objectives")
    constraints: list[Constraint] = []
    for i, text in enumerate(spec.constraints):
        c = parse_constraint(text, source, f"constraints[{i}]")
        if not is_metric(c.metric) and c.metric not in axis_paths:
            raise ConfigError(f"unknown metric or axis {c.metric!r}", source=source, field=f"constraints[{i}]")
        constraints.append(c)

    base_recipe = None
    if spec.compression is not None:
        rec = spec.compression.recipe
        if isinstance(rec, str):
            rp = _resolve_path(rec, bdir)
            rec = read_yaml(rp)
        from ..frontend.recipe import load_recipe  # torch-free schema

        try:
            load_recipe(dict(rec))
        except ConfigError as exc:
            raise ConfigError(exc.message, source=source, field=f"compression.recipe.{exc.field}" if exc.field
                              else "compression.recipe") from None
        base_recipe = dict(rec)
    sweep = Sweep(spec=spec, source=source, base_dir=bdir, base_hardware=base_hw, axes=axes, workloads=refs,
                  objectives=objectives, constraints=constraints, base_recipe=base_recipe)
    if spec.search.method == "differentiable":
        from .differentiable import check_spec

        check_spec(sweep)
    return sweep
