"""Latency-constrained per-layer pruning-ratio search: the simulator is the latency model.

After the compiler-aware real-time super-resolution paper's third stage: given a hardware
config and a latency target, choose one weight density per layer (from ``levels``) that
maximises an accuracy proxy subject to *simulated* latency <= target.

Method (exact for the additive model, then verified):

1. Price every layer at every density level with :func:`accelsim.simulate` (one simulation of
   the whole network per level: layers are timed independently, the network's latency is the sum
   of its layers' -- checked in step 3, not assumed).
2. Solve the multiple-choice knapsack ``max sum_l score_l(d_l)  s.t.  sum_l lat_l(d_l) <= budget``
   exactly (``scipy.optimize.milp``, binaries ``x_{l,k}``, one level per layer).
3. Re-simulate the chosen network. If it exceeds the target, lower the budget to the pick's
   additive estimate minus its excess (so that pick is excluded) and go back to 2 (at most
   ``max_rounds`` times). The returned point's latency is always the
   re-simulated one and never exceeds the target; when none fits, :class:`InfeasibleError` says
   how far the sparsest network is from the target.

The score is the caller's accuracy proxy ``score(layer, density) -> float`` (e.g. the retained
weight magnitude of :func:`accelsim.frontend.layerwise.magnitude_scores`) or a mapping
``{layer: {density: value}}``; :func:`kept_weight_score` (weights kept, numpy only) is the default.
ASSUMPTIONS: the proxy is additive over layers; a density is applied as ``sparsity.kind``
(default ``unstructured``, so the hardware must exploit it -- e.g. a systolic array with
``sparse.zero_skipping``; on hardware that ignores sparsity every level costs the same and the
search keeps density 1 wherever the dense network already meets the target).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import AccelsimError, ConfigError, InfeasibleError

DEFAULT_LEVELS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125)
Score = "Callable[[str, float], float] | Mapping[str, Mapping[float, float]]"


def _prunable(layer: Any) -> bool:
    return layer.op in ("conv2d", "linear") and layer.weight_words > 0


def apply_densities(workload: Any, densities: Mapping[str, float], kind: str = "unstructured") -> Any:
    """``workload`` with layer ``name`` pruned to ``densities[name]`` (``sparsity.kind = kind``; 1.0 = dense)."""
    layers = []
    for layer in workload.layers:
        d = densities.get(layer.name)
        if d is not None and d < 1.0:
            sp = layer.compression.sparsity.model_copy(update={"kind": kind, "density": float(d)})
            layer = layer.model_copy(update={"compression": layer.compression.model_copy(update={"sparsity": sp})})
        layers.append(layer)
    return workload.with_layers(layers)


def kept_weight_score(workload: Any) -> Callable[[str, float], float]:
    """Proxy: fraction of the network's weights a layer keeps (``density * weights_l / weights``)."""
    words = {l.name: l.weight_words for l in workload.layers if _prunable(l)}
    total = float(sum(words.values())) or 1.0
    return lambda name, d: d * words.get(name, 0) / total


@dataclass
class ConstrainedResult:
    """The chosen per-layer densities and their re-simulated latency."""

    densities: dict[str, float]
    latency_ms: float
    target_ms: float
    score: float
    dense_latency_ms: float
    sparsest_latency_ms: float
    simulations: int
    rounds: int
    seconds: float
    workload: Any = None
    layer_latency_ms: dict[str, dict[float, float]] = field(default_factory=dict)

    @property
    def mean_density(self) -> float:
        return float(np.mean(list(self.densities.values()))) if self.densities else 1.0

    def text(self) -> str:
        lines = [f"latency target {self.target_ms:.5g} ms: re-simulated {self.latency_ms:.5g} ms "
                 f"(dense {self.dense_latency_ms:.5g} ms, sparsest {self.sparsest_latency_ms:.5g} ms), "
                 f"score {self.score:.4f}, {self.simulations} simulations, {self.rounds} round(s), {self.seconds:.1f} s"]
        lines += [f"  {n:<24} density {d:.3f}" for n, d in self.densities.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"densities": self.densities, "latency_ms": self.latency_ms, "target_ms": self.target_ms,
                "score": self.score, "dense_latency_ms": self.dense_latency_ms,
                "sparsest_latency_ms": self.sparsest_latency_ms, "simulations": self.simulations,
                "rounds": self.rounds, "mean_density": self.mean_density}


def _score_fn(score: Any) -> Callable[[str, float], float]:
    if callable(score):
        return score
    if isinstance(score, Mapping):
        def look(name: str, d: float) -> float:
            table = score.get(name)
            if table is None:
                raise ConfigError(f"no score for layer {name!r}", source="constrained search", field="score")
            for k, v in table.items():
                if abs(float(k) - d) < 1e-9:
                    return float(v)
            raise ConfigError(f"no score for layer {name!r} at density {d:g}", source="constrained search", field="score")
        return look
    raise ConfigError("score must be a callable (layer, density) -> float or {layer: {density: value}}",
                      source="constrained search", field="score")


def _mckp(lat: np.ndarray, val: np.ndarray, budget: float, dens: np.ndarray) -> np.ndarray | None:
    """Exact multiple-choice knapsack: pick one level per row maximising value within the latency budget.

    Ties in value go to the denser choice (a flat proxy is no reason to prune more)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    L, K = lat.shape
    n = L * K
    A_one = np.zeros((L, n))
    for i in range(L):
        A_one[i, i * K:(i + 1) * K] = 1.0
    cons = [LinearConstraint(A_one, 1, 1), LinearConstraint(lat.reshape(1, n), -np.inf, budget)]
    # tie-break towards higher density (weight 1e-7 of the largest value, spread over the layers)
    c = -val.reshape(n) - 1e-7 * max(float(np.abs(val).max()), 1e-30) / L * dens.reshape(n)
    res = milp(c, integrality=np.ones(n), bounds=Bounds(0, 1), constraints=cons, options={"mip_rel_gap": 0.0})
    if res.x is None:
        return None
    return np.round(res.x).reshape(L, K).argmax(axis=1)


def constrained_density_search(workload: Any, hardware: Any, target_latency_ms: float, score: Any = None, *,
                               levels: Sequence[float] = DEFAULT_LEVELS, layers: Sequence[str] | None = None,
                               kind: str = "unstructured", max_rounds: int = 6,
                               progress: Callable[[str], None] | None = None) -> ConstrainedResult:
    """Per-layer densities maximising ``score`` with re-simulated latency <= ``target_latency_ms`` (module doc)."""
    from ..api import simulate

    t0 = time.perf_counter()
    if not target_latency_ms or target_latency_ms <= 0:
        raise ConfigError(f"target_latency_ms must be > 0, got {target_latency_ms!r}", source="constrained search",
                          field="target_latency_ms")
    lv = sorted({float(x) for x in levels}, reverse=True)
    if not lv or any(not 0.0 < x <= 1.0 for x in lv):
        raise ConfigError(f"levels must be densities in (0, 1], got {list(levels)}", source="constrained search",
                          field="levels")
    names = [l.name for l in workload.layers if _prunable(l)]
    if layers:
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ConfigError(f"not prunable layer(s) of {workload.name}: {', '.join(unknown)}",
                              source="constrained search", field="layers")
        names = [n for n in names if n in layers]
    if not names:
        raise ConfigError("the workload has no prunable (conv2d/linear) layer", source="constrained search", field="layers")
    fn = _score_fn(score if score is not None else kept_weight_score(workload))
    sims = 0
    lat = np.zeros((len(names), len(lv)))
    fixed_ms = 0.0
    for k, d in enumerate(lv):
        rep = simulate(apply_densities(workload, {n: d for n in names}, kind), hardware, compare_dense=False)
        sims += 1
        per = {s.layer: s.latency_cycles / (rep.clock_mhz * 1e3) for s in rep.layers}
        for i, n in enumerate(names):
            lat[i, k] = per[n]
        if k == 0:
            fixed_ms = sum(v for layer, v in per.items() if layer not in names)
            dense_ms = rep.latency_cycles / (rep.clock_mhz * 1e3)
        if progress:
            progress(f"priced every layer at density {d:g}: network {rep.latency_cycles / (rep.clock_mhz * 1e3):.4f} ms")
    sparsest_ms = fixed_ms + float(lat[:, -1].sum())
    val = np.array([[fn(n, d) for d in lv] for n in names])
    budget = target_latency_ms - fixed_ms
    for rnd in range(1, max_rounds + 1):
        pick = _mckp(lat, val, budget, np.tile(np.array(lv), (len(names), 1)))
        if pick is None:
            raise InfeasibleError(f"latency target {target_latency_ms:g} ms is below what the sparsest levels reach "
                                  f"({sparsest_ms:.4g} ms at density {lv[-1]:g} on {hardware.name}); raise the target "
                                  "or add lower density levels")
        dens = {n: lv[int(k)] for n, k in zip(names, pick)}
        wl = apply_densities(workload, dens, kind)
        rep = simulate(wl, hardware, compare_dense=False)
        sims += 1
        got_ms = rep.latency_cycles / (rep.clock_mhz * 1e3)
        if progress:
            progress(f"round {rnd}: budget {budget + fixed_ms:.6g} ms -> re-simulated {got_ms:.6g} ms ({dens})")
        if got_ms <= target_latency_ms:
            total = float(sum(val[i, int(k)] for i, k in enumerate(pick)))
            return ConstrainedResult(dens, got_ms, target_latency_ms, total, dense_ms, sparsest_ms, sims, rnd,
                                     time.perf_counter() - t0, wl,
                                     {n: dict(zip(lv, map(float, lat[i]))) for i, n in enumerate(names)})
        # the pick's additive estimate must drop by its excess: this excludes the same pick next round
        est_ms = float(sum(lat[i, int(k)] for i, k in enumerate(pick)))
        budget = min(budget, est_ms - (got_ms - target_latency_ms)) - 1e-12 * max(target_latency_ms, 1.0)
    raise InfeasibleError(f"no point within the latency target {target_latency_ms:g} ms after {max_rounds} rounds "
                          "(re-simulated latency keeps exceeding the additive estimate)")


# --- sweep-file hook: a workload entry {constrained: {...}} ----------------------------------------

class ConstrainedSpec(BaseModel):
    """``workloads: [{constrained: {...}}]`` in a sweep file: the workload pruned by this search.

    The search runs on ``hardware`` (default: the sweep's base hardware) when the sweep is loaded;
    the pruned workload is then simulated on every point of the sweep and stored like any other.
    The score is :func:`kept_weight_score` (a sweep file cannot carry a trained model).
    """

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(description="zoo:<name> or a workload file")
    target_latency_ms: float = Field(gt=0)
    levels: list[float] = Field(default_factory=lambda: list(DEFAULT_LEVELS), min_length=1)
    kind: Literal["unstructured"] = "unstructured"
    layers: list[str] | None = None
    hardware: str | None = Field(None, description="hardware file to search on (default: the sweep's base hardware)")


def constrained_ref(entry: Mapping[str, Any], base_hw: dict[str, Any], base_dir: Path, source: str,
                    fld: str) -> dict[str, Any]:
    """Validate a ``{constrained: {...}}`` workload entry and return the WorkloadRef fields (runs the search once)."""
    from .._validation import validate_model

    extra = [k for k in entry if k != "constrained"]
    if extra or not isinstance(entry.get("constrained"), Mapping):
        raise ConfigError("expected {constrained: {workload: ..., target_latency_ms: ...}} and nothing else",
                          source=source, field=fld)
    spec = validate_model(ConstrainedSpec, dict(entry["constrained"]), f"{source}: {fld}.constrained")
    payload = spec.model_dump()
    wl = payload["workload"]
    if not wl.startswith("zoo:"):
        wp = Path(wl).expanduser()
        wp = wp if wp.is_absolute() else (base_dir / wp if (base_dir / wp).exists() else Path.cwd() / wp)
        if not wp.exists():
            raise ConfigError(f"workload file {wl!r} not found", source=source, field=f"{fld}.constrained.workload")
        payload["workload"] = str(wp.resolve())
    if payload["hardware"]:
        hp = Path(payload["hardware"]).expanduser()
        hp = hp if hp.is_absolute() else (base_dir / hp if (base_dir / hp).exists() else Path.cwd() / hp)
        from ..hardware.io import hardware_to_dict, load_hardware

        try:
            payload["hardware"] = hardware_to_dict(load_hardware(hp))
        except ConfigError as exc:
            raise ConfigError(exc.message, source=source, field=f"{fld}.constrained.hardware") from None
    else:
        payload["hardware"] = base_hw
    try:
        constrained_workload(payload)
    except AccelsimError as exc:
        msg = getattr(exc, "message", str(exc))
        raise ConfigError(msg, source=source, field=f"{fld}.constrained") from None
    label = f"constrained:{spec.workload}@{spec.target_latency_ms:g}ms"
    return {"label": label, "constrained": payload}


def constrained_workload(payload: Mapping[str, Any]) -> Any:
    """The pruned workload a ``{constrained: ...}`` entry stands for (memoised per process)."""
    return _constrained_cached(json.dumps(payload, sort_keys=True, default=str))


@lru_cache(maxsize=16)
def _constrained_cached(key: str) -> Any:
    from ..hardware.io import hardware_from_dict
    from ..workload.io import load_workload

    p = json.loads(key)
    wl = load_workload(p["workload"])
    hw = hardware_from_dict(dict(p["hardware"]))
    res = constrained_density_search(wl, hw, p["target_latency_ms"], levels=p["levels"], layers=p["layers"],
                                     kind=p["kind"])
    return res.workload.with_layers(list(res.workload.layers),
                                    name=f"{wl.name}[constrained {p['target_latency_ms']:g} ms]")
