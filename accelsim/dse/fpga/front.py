"""Accuracy-latency Pareto fronts on an FPGA with bit widths as decisions of the integer program (HAO).

**Pipeline** (:func:`pipeline_front`): every compute stage's option ``c`` now also fixes its bit
width ``b_c`` (weights and activations), which sets its DSP packing (4-bit operands pack more
MACs per DSP48E2, see :func:`accelsim.hardware.fpga.macs_per_dsp`) and its weight memory. With
an additive :class:`~.predictor.AccuracyPredictor` the predicted accuracy is linear in the
binaries, so the front is traced exactly by the epsilon-constraint method::

    repeat:  T* = min T  s.t. pipeline constraints,  b0 + sum_{l,c} acc_{l,c} x_{l,c} >= A_floor
             A* = max sum acc_{l,c} x_{l,c}  s.t. the same and T <= T*       (lexicographic)
             keep (T*, A*);  A_floor = A* + eps

Every kept point is non-dominated (the next one is strictly more accurate and, being optimal
under a tighter floor, no faster). :func:`exhaustive_pipeline_front` enumerates all
combinations: the reference in the tests.

**Overlay** (:func:`overlay_front`): the shared array has one datapath width (narrower layers run
at the datapath width, see :mod:`accelsim.engines.fpga`), so the width decision is one one-hot
choice over the candidate widths; we solve it by decomposition (one overlay MILP per width, the
exact optimum of the joint program is the best of them), set every layer to that width, predict
its accuracy and **re-simulate** each configuration with the engine; the front is the
non-dominated set of (simulated latency, predicted accuracy).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ConfigError, InfeasibleError
from ...hardware.fpga import FpgaAccelerator
from ...workload.layer import Elementwise, Pool
from ...workload.workload import Workload
from .ilp import (used_if_fits, OverlaySpace, PipelineSpace, StageOption, _PipelineProblem, _pipeline_model, _solve, _tie,
                  _tie_weights, optimize_overlay)
from .predictor import AccuracyPredictor

#: accuracy step of the epsilon-constraint loop; 10x HiGHS's MIP feasibility tolerance (1e-6): with a
#: step at the tolerance the solver may return the previous point again (``acc >= floor`` violated
#: by 1e-6 counts as met), and the loop repeated one point until ``max_points``
EPS_ACC = 1e-5


@dataclass
class FrontPoint:
    """One accuracy-latency trade-off: the configuration, its latency and predicted accuracy."""

    latency_cycles: int
    latency_ms: float
    predicted_accuracy: float
    bits: dict[str, tuple[int, int]]  # layer -> (weight_bits, act_bits)
    detail: dict[str, Any] = field(default_factory=dict)
    simulated: dict[str, Any] | None = None


@dataclass
class Front:
    """A non-dominated list of points, fastest first."""

    mode: str
    device: str
    points: list[FrontPoint]
    seconds: float
    solves: int = 0
    predictor_holdout_mae: float = float("nan")
    complete: str = "yes"  # or why the front may miss points (time limit, max_points)
    evaluated: list[FrontPoint] = field(default_factory=list)  # every point computed, dominated ones too

    @property
    def dominated(self) -> list[FrontPoint]:
        """Evaluated points not on the front (each configuration once)."""
        on = {_config_key(p) for p in self.points}
        out: dict[tuple[Any, ...], FrontPoint] = {}
        for p in self.evaluated:
            out.setdefault(_config_key(p), p)
        return [p for k, p in out.items() if k not in on]

    def text(self) -> str:
        sim = any(p.simulated for p in self.points)
        lines = [f"accuracy-latency front on {self.device} ({self.mode}, {len(self.points)} points, {self.solves} solves, "
                 f"{self.seconds:.2f} s; predictor held-out MAE {self.predictor_holdout_mae:.4f})"
                 + ("" if self.complete == "yes" else f"\n  INCOMPLETE: {self.complete}"),
                 f"  {'latency ms':>10} {'cycles':>12} {'pred. acc':>9}  {'simulated ms' if sim else '':>12}  bits per layer"]
        for p in self.points:
            bits = " ".join(f"{w}/{a}" for w, a in p.bits.values())
            s = f"{p.simulated['latency_ms']:12.4f}" if p.simulated else " " * 12
            lines.append(f"  {p.latency_ms:10.4f} {p.latency_cycles:12,} {p.predicted_accuracy:9.4f}  {s}  {bits}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "device": self.device, "seconds": self.seconds, "solves": self.solves,
                "complete": self.complete, "dominated_points": len(self.dominated),
                "predictor_holdout_mae": self.predictor_holdout_mae,
                "points": [{"latency_cycles": p.latency_cycles, "latency_ms": p.latency_ms,
                            "predicted_accuracy": p.predicted_accuracy,
                            "bits": {k: list(v) for k, v in p.bits.items()}, **p.detail,
                            **({"simulated": p.simulated} if p.simulated else {})} for p in self.points]}


def _config_key(p: FrontPoint) -> tuple[Any, ...]:
    return (p.latency_cycles, tuple(sorted(p.bits.items())), str(p.detail.get("array", "")),
            tuple(sorted((k, v) for k, v in p.detail.items() if isinstance(v, (int, float, str)))))


def non_dominated(points: Sequence[FrontPoint]) -> list[FrontPoint]:
    """Points no other point beats in both latency (lower) and predicted accuracy (higher), fastest first."""
    out: list[FrontPoint] = []
    for p in sorted(points, key=lambda p: (p.latency_cycles, -p.predicted_accuracy)):
        if out and p.predicted_accuracy <= out[-1].predicted_accuracy + EPS_ACC:
            continue
        out.append(p)
    return out


# --- pipeline ---------------------------------------------------------------------------------------

def _acc_coefs(prob: _PipelineProblem, pred: AccuracyPredictor) -> list[list[float]]:
    out = []
    for layer, opts in zip(prob.layers, prob.options):
        if isinstance(layer, (Elementwise, Pool)):
            out.append([0.0] * len(opts))
        else:
            out.append([pred.term(layer.name, o.weight_bits, o.act_bits) for o in opts])
    return out


def _pipe_point(prob: _PipelineProblem, picks: list[StageOption], acc: float) -> FrontPoint:
    res = prob.result(picks, "milp", 0.0, 0, 0)
    bits = {l.name: (o.weight_bits, o.act_bits) for l, o in zip(prob.layers, picks) if o.weight_bits}
    used = res.utilization.used
    return FrontPoint(res.interval_cycles, res.interval_cycles / (prob.base.clock_mhz * 1e3), acc, bits,
                      {"fps": res.fps, "frame_latency_cycles": res.latency_cycles, "dsp": used["dsp"],
                       "bram18": used["bram18"]})


def _check_predictor(prob_layers: Sequence[Any], pred: AccuracyPredictor, bits: Sequence[int]) -> None:
    bad = [b for b in bits if b not in pred.bits]
    if bad:
        raise ConfigError(f"bit width(s) {bad} were not measured; the predictor knows {pred.bits}",
                          source="fpga front", field="bits")
    missing = [l.name for l in prob_layers if not isinstance(l, (Elementwise, Pool)) and l.name not in pred.weight_bit_terms]
    if missing:
        raise ConfigError(f"the predictor has no terms for layer(s) {', '.join(missing[:5])}; fit it on this workload",
                          source="fpga front", field="predictor")


def pipeline_front(workload: Workload, base: FpgaAccelerator, predictor: AccuracyPredictor,
                   space: PipelineSpace = PipelineSpace(bits=(4, 8)), *, layers: Sequence[str] | None = None,
                   max_points: int = 50, time_limit_s: float | None = 60.0) -> Front:
    """Exact accuracy-latency front of the HAO-style pipeline with per-stage bit widths (see module doc)."""
    if not space.bits:
        raise ConfigError("the front needs candidate bit widths", source="fpga front", field="bits")
    t0 = time.perf_counter()
    prob = _PipelineProblem(workload, base, space, layers)
    _check_predictor(prob.layers, predictor, space.bits)
    c, integrality, lb, ub, rows, res_rows, x_idx = _pipeline_model(prob)
    acc = _acc_coefs(prob, predictor)
    acc_row = {x_idx[li, ci]: a for li, opts in enumerate(acc) for ci, a in enumerate(opts) if a}
    all_rows = rows + [(coefs, -np.inf, hi) for coefs, hi in res_rows.values()]
    points: list[FrontPoint] = []
    evaluated: list[FrontPoint] = []
    floor = -math.inf
    solves = 0
    complete = "yes"

    def picks_of(x: np.ndarray) -> list[StageOption]:
        return [opts[next(ci for ci in range(len(opts)) if round(x[x_idx[li, ci]]) == 1)]
                for li, opts in enumerate(prob.options)]

    while len(points) < max_points:
        extra = [(acc_row, floor - predictor.intercept, np.inf)] if math.isfinite(floor) and acc_row else []
        r1 = _solve(c, integrality, lb, ub, all_rows + extra, time_limit_s)
        solves += 1
        if r1.x is None:
            if r1.status == 1:
                complete = f"solver time limit ({time_limit_s} s) reached above accuracy {floor:.4f}"
            elif not points:
                raise InfeasibleError(f"no pipeline configuration fits {base.device.name} under the budget")
            break
        if r1.status != 0:
            complete = "a solve stopped at its time limit (that point may not be optimal)"
        t_star = max(max(o.cycles for o in picks_of(r1.x)), prob.dram_cycles)
        ub2 = ub.copy()
        ub2[0] = t_star
        c2 = np.zeros_like(c)
        for j, a in acc_row.items():
            c2[j] = -a
        w = _tie_weights(prob.limits)  # among equally accurate, prefer the smaller design
        scale = 1e-9
        for (li, ci), j in x_idx.items():
            c2[j] += scale * _tie(prob.options[li][ci].res, w)
        r2 = _solve(c2, integrality, lb, ub2, all_rows + extra, time_limit_s)
        solves += 1
        picks = picks_of(r2.x if r2.x is not None else r1.x)
        a_star = predictor.intercept + sum(acc[li][prob.options[li].index(o)] for li, o in enumerate(picks))
        points.append(_pipe_point(prob, picks, a_star))
        evaluated.append(points[-1])
        first = picks_of(r1.x)
        if first != picks:  # the fastest configuration the first solve found: as fast, less accurate (dominated)
            evaluated.append(_pipe_point(prob, first, predictor.intercept
                                      + sum(acc[li][prob.options[li].index(o)] for li, o in enumerate(first))))
        floor = a_star + EPS_ACC
        if not acc_row:
            break
    else:
        complete = f"stopped at max_points={max_points}"
    return Front("pipeline", base.device.name, non_dominated(points), time.perf_counter() - t0, solves,
                 predictor.holdout_mae, complete, evaluated)


def exhaustive_pipeline_front(workload: Workload, base: FpgaAccelerator, predictor: AccuracyPredictor,
                              space: PipelineSpace = PipelineSpace(bits=(4, 8)), *, layers: Sequence[str] | None = None,
                              max_combinations: int = 2_000_000) -> Front:
    """Enumerate every combination of stage options (the tests' reference for :func:`pipeline_front`)."""
    t0 = time.perf_counter()
    prob = _PipelineProblem(workload, base, space, layers)
    _check_predictor(prob.layers, predictor, space.bits)
    total = math.prod(len(o) for o in prob.options)
    if total > max_combinations:
        raise ConfigError(f"{total:,} combinations exceed max_combinations {max_combinations:,}",
                          source="exhaustive_pipeline_front")
    acc = _acc_coefs(prob, predictor)
    best: dict[int, tuple[float, list[StageOption]]] = {}  # interval -> most accurate combination
    for idx in itertools.product(*[range(len(o)) for o in prob.options]):
        picks = [prob.options[li][ci] for li, ci in enumerate(idx)]
        used = used_if_fits(prob, picks)
        if used is None:
            continue
        interval = max(max(o.cycles for o in picks), prob.dram_cycles)
        a = predictor.intercept + sum(acc[li][ci] for li, ci in enumerate(idx))
        if interval not in best or a > best[interval][0] + EPS_ACC:
            best[interval] = (a, picks)
    points = [_pipe_point(prob, picks, a) for a, picks in best.values()]
    return Front("pipeline-exhaustive", base.device.name, non_dominated(points), time.perf_counter() - t0, 0,
                 predictor.holdout_mae)


# --- overlay ----------------------------------------------------------------------------------------

def with_uniform_bits(workload: Workload, weight_bits: int, act_bits: int) -> Workload:
    """``workload`` with every layer quantised to ``weight_bits x act_bits`` int (pool/element-wise too)."""
    layers = []
    for layer in workload.layers:
        q = layer.compression.quant.model_copy(update={"weight_bits": weight_bits, "act_bits": act_bits, "scheme": "int"})
        layers.append(layer.model_copy(update={"compression": layer.compression.model_copy(update={"quant": q})}))
    return workload.with_layers(layers)


def overlay_front(workload: Workload, base: FpgaAccelerator, predictor: AccuracyPredictor,
                  bits: Sequence[int] = (4, 8), space: OverlaySpace = OverlaySpace(), *,
                  simulate: bool = True, time_limit_s: float | None = 120.0, progress: Any = None) -> Front:
    """Front over the overlay's datapath width (one MILP per width), each point simulated (module doc)."""
    from ...hardware.io import hardware_to_dict

    t0 = time.perf_counter()
    _check_predictor(workload.layers, predictor, bits)
    pts = []
    for b in sorted(set(bits)):
        hw_b = FpgaAccelerator.model_validate({**base.model_dump(), "weight_bits": b, "act_bits": b})
        wl_b = with_uniform_bits(workload, b, b)
        try:
            res = optimize_overlay(wl_b, hw_b, space, time_limit_s=time_limit_s)
        except InfeasibleError:
            continue
        acc = predictor.predict({l.name: {"weight_bits": b, "act_bits": b} for l in wl_b.layers
                                 if l.name in predictor.weight_bit_terms})
        sim = None
        cycles = res.est_cycles
        if simulate:
            from ...api import simulate as run

            s = run(wl_b, res.hw, compare_dense=False).summary()
            sim = {k: s[k] for k in ("latency_cycles", "latency_ms", "energy_pj", "utilization")}
            cycles = int(s["latency_cycles"])
        layer_bits = {l.name: (b, b) for l in wl_b.layers if not isinstance(l, (Elementwise, Pool))}
        pts.append(FrontPoint(cycles, cycles / (hw_b.clock_mhz * 1e3), acc, layer_bits,
                              {"est_cycles": res.est_cycles, "array": f"{res.hw.pe_in}x{res.hw.pe_out}x{res.hw.pe_pix}",
                               "macs_per_dsp": res.hw.macs_per_dsp, "dsp": res.utilization.used["dsp"],
                               "hardware": hardware_to_dict(res.hw)}, sim))
        if progress:
            progress(f"{b}-bit datapath: {res.hw.pe_in}x{res.hw.pe_out}x{res.hw.pe_pix}, {cycles:,} cycles")
    if not pts:
        raise InfeasibleError(f"no overlay configuration fits {base.device.name} at any of the bit widths {list(bits)}")
    return Front("overlay", base.device.name, non_dominated(pts), time.perf_counter() - t0, len(pts),
                 predictor.holdout_mae, evaluated=pts)


def plot_front(front: Front, path: Any, title: str = "") -> None:
    """Accuracy vs latency of the front points (PNG/PDF/SVG by extension), written atomically."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..._validation import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = [p.latency_ms * 1e3 for p in front.points]
    ys = [p.predicted_accuracy for p in front.points]
    ax.step(xs, ys, where="post", color="0.6", lw=0.8)
    ax.scatter(xs, ys, zorder=3)
    for p, x, y in zip(front.points, xs, ys):
        ax.annotate("/".join(str(w) for w, _ in p.bits.values()), (x, y), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    ax.set_xlabel("simulated latency (us)" if any(p.simulated for p in front.points) else "frame interval (us)")
    ax.set_ylabel("predicted accuracy")
    ax.set_title(title or f"accuracy-latency front on {front.device} ({front.mode})")
    fig.tight_layout()
    atomic_write_bytes(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120))
    plt.close(fig)


def front_points(front: Front, workload: Workload, base: FpgaAccelerator,
                 measured: Callable[[dict[str, tuple[int, int]]], float | None] | None = None) -> list[Any]:
    """The front as results-store points (:class:`accelsim.dse.external.ExternalPoint`).

    Parameters: the bit widths per layer (``bits.<layer>.weight`` / ``.act``) and the front's
    detail (array shape, DSPs); metrics: the re-simulated figures when the point was simulated (else
    the integer program's), ``predicted_accuracy`` (also as ``accuracy``), ``on_front`` (1: on the
    front; 0: an evaluated configuration the front dominates, stored so results/plots show the
    trade-off) and the predictor's held-out MAE. ``measured`` (``{layer: (weight_bits, act_bits)} ->
    accuracy or None``, e.g. quantise and evaluate the model, or a lookup in the measured points the
    predictor was fitted on) adds ``measured_accuracy`` where it gives one, which then is the
    ``accuracy`` column (``accuracy_measured`` 1; else 0 and ``accuracy`` is the prediction). Overlay
    points are keyed by their chosen hardware, pipeline points by the base device plus their per-stage picks."""
    from ...hardware.io import hardware_to_dict
    from ..external import ExternalPoint
    from ..space import workload_fingerprint

    base_hw = hardware_to_dict(base)
    fp = workload_fingerprint(workload)
    out = []
    for p, on in [(p, 1) for p in front.points] + [(p, 0) for p in front.dominated]:
        detail = {k: v for k, v in p.detail.items() if k != "hardware"}
        params: dict[str, Any] = {"front.mode": front.mode}
        for layer, (wb, ab) in p.bits.items():
            params[f"bits.{layer}.weight"] = wb
            params[f"bits.{layer}.act"] = ab
        params.update({f"front.{k}": v for k, v in detail.items() if isinstance(v, (int, float, str))})
        metrics: dict[str, Any] = {"latency_cycles": p.latency_cycles, "latency_ms": p.latency_ms,
                                   **(p.simulated or {}), "predicted_accuracy": p.predicted_accuracy,
                                   "accuracy": p.predicted_accuracy, "on_front": on, "simulated": int(bool(p.simulated)),
                                   "predictor_holdout_mae": front.predictor_holdout_mae, "accuracy_measured": 0}
        got = measured(dict(p.bits)) if measured is not None else None
        if got is not None:
            metrics["measured_accuracy"] = metrics["accuracy"] = float(got)
            metrics["accuracy_measured"] = 1
        hw = p.detail.get("hardware") or base_hw
        comp = {"hao_front": front.mode, "bits": {k: list(v) for k, v in p.bits.items()},
                **({} if "hardware" in p.detail else {"picks": detail})}
        out.append(ExternalPoint(workload.name, fp, hw, comp, params, metrics))
    return out


def default_front_name(workload: str, device: str, mode: str) -> str:
    """``hao_<workload>_<device>_<mode>`` with characters a sweep name may not hold replaced by ``_``."""
    import re

    return re.sub(r"[^\w.\-]", "_", f"hao_{workload}_{device}_{mode}")


def store_front(front: Front, workload: Workload, base: FpgaAccelerator, store: Any, name: str | None = None,
                measured: Callable[[dict[str, tuple[int, int]]], float | None] | None = None) -> Any:
    """Record the front's points (and the dominated evaluated ones, ``on_front`` 0) in the results store
    ``store`` as sweep ``name`` (default ``hao_<workload>_<device>_<mode>``); a rerun adds no point, but
    fills in ``measured_accuracy`` of stored points that lack it when ``measured`` now gives one (one
    transaction). Returns :class:`~accelsim.dse.external.StoredRun` (``filled``: points updated)."""
    from ..external import store_points

    name = name or default_front_name(workload.name, front.device, front.mode)
    spec = {"hao_front": {"workload": workload.name, "device": front.device, "mode": front.mode}}
    return store_points(store, name, f"fpga-optimize --front ({workload.name} on {front.device})", spec,
                        [("latency_ms", "min"), ("accuracy" if measured else "predicted_accuracy", "max")],
                        front_points(front, workload, base, measured),
                        executor="milp", fill="measured_accuracy")
