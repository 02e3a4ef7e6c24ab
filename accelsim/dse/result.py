"""The result of a sweep run: counts, wall time, the Pareto front and what a search learned."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SweepResult:
    """What a sweep run did and the Pareto front it found (from every stored point of the sweep)."""

    sweep: str
    store: Path
    run_id: str
    executor: str
    workers: int
    requested: int = 0
    evaluated: int = 0
    skipped: int = 0
    invalid: int = 0
    errors: int = 0
    wall_s: float = 0.0
    objectives: list[tuple[str, str]] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    front: Any = None            # pandas DataFrame
    params: list[str] = field(default_factory=list)
    feasible: int = 0
    #: aggregate objectives: workload label -> learned simplex weight (sums to 1)
    workload_weights: dict[str, float] | None = None
    #: aggregate objectives: the chosen design, its exact per-workload metric and worst case
    best: dict[str, Any] | None = None
    #: differentiable search: surrogate / predictor held-out errors, simulation counts, designs
    search_info: dict[str, Any] | None = None

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.wall_s if self.wall_s else 0.0

    def summary_text(self, max_rows: int = 30) -> str:
        lines = [
            f"sweep '{self.sweep}': {self.requested} points requested, {self.evaluated} simulated, {self.skipped} already "
            f"in the store, {self.invalid} invalid, {self.errors} failed; {self.wall_s:.1f} s "
            f"({self.points_per_s:.1f} points/s, {self.executor} x{self.workers})",
            f"store: {self.store}",
        ]
        if self.constraints:
            lines.append(f"constraints: {', '.join(self.constraints)} ({self.feasible} feasible points)")
        obj = ", ".join(f"{n} ({s})" for n, s in self.objectives)
        if self.front is None or len(self.front) == 0:
            lines.append(f"Pareto front over {obj}: no feasible point")
            return "\n".join(lines)
        lines.append(f"Pareto front over {obj}: {len(self.front)} points")
        cols = ["workload"] + self.params + [n for n, _ in self.objectives]
        cols = [c for c in dict.fromkeys(cols) if c in self.front.columns]
        view = self.front[cols]
        if view["workload"].nunique() == 1:
            view = view.drop(columns=["workload"])
        lines.append(view.head(max_rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if len(self.front) > max_rows:
            lines.append(f"... {len(self.front) - max_rows} more (accelsim.dse.load + pareto_front for all)")
        lines.extend(self._search_lines())
        return "\n".join(lines)

    def _search_lines(self) -> list[str]:
        out = []
        if self.best is not None:
            b = self.best
            out.append(f"{b['aggregate']} {b['metric']}: worst {b['worst']:.4g}, mean {b['mean']:.4g} at "
                       + ", ".join(f"{k}={v}" for k, v in b["best_params"].items()))
            out.append("per workload: " + ", ".join(f"{k} {v:.4g}" for k, v in b["per_workload"].items()))
        if self.workload_weights is not None:
            out.append("workload weights: " + ", ".join(f"{k} {v:.3f}" for k, v in self.workload_weights.items()))
        info = self.search_info or {}
        for m, e in (info.get("surrogate_error") or {}).items():
            out.append(f"surrogate {m}: held-out mean |rel err| {e['mean_rel_err']:.3f}, max {e['max_rel_err']:.3f} "
                       f"({e['points']} points)")
        if info.get("accuracy_error"):
            e = info["accuracy_error"]
            out.append(f"accuracy predictor: leave-one-out mean |err| {e['mean_abs_err']:.4f} ({e['points']} points)")
        return out


__all__ = ["SweepResult"]
