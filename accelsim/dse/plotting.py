"""Figures from a results store (``accelsim plot``): Pareto scatter, breakdowns, heatmaps, roofline.

Per-layer figures (``--point``) re-simulate the chosen point from its stored hardware and workload
with :func:`accelsim.simulate`; everything else reads the store only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .store import ResultsStore, load


def _sweep_name(store: ResultsStore, sweep: str | None) -> str:
    names = store.sweeps()
    if not names:
        raise ConfigError("the results store has no sweep yet", source=str(store.path))
    if sweep is None:
        return names[-1]
    if sweep not in names:
        raise ConfigError(f"no sweep {sweep!r} in the store; it has {names}", source=str(store.path), field="sweep")
    return sweep


def _resolved(store: ResultsStore, name: str) -> dict[str, Any]:
    spec = store.spec_of(name) or {}
    return spec.get("_resolved") or {}


def select_point(df: Any, point: str | None, objectives: list[tuple[str, str]], source: str):  # type: ignore[no-untyped-def]
    """One row: ``best:<metric>`` (its natural sense), ``index:<n>``, or a key prefix; default best of objective 1."""
    from .spec import METRICS, canonical_metric

    if len(df) == 0:
        raise ConfigError("no successfully simulated point to plot", source=source)
    if point is None:
        point = f"best:{objectives[0][0]}" if objectives else "best:latency_ms"
    if point.startswith("best:"):
        metric = canonical_metric(point[5:])
        if metric not in df.columns:
            raise ConfigError(f"unknown metric {metric!r}", source=source, field="point")
        sense = dict(objectives).get(metric, METRICS.get(metric, "min"))
        data = df.dropna(subset=[metric])
        return data.loc[data[metric].idxmin() if sense == "min" else data[metric].idxmax()]
    if point.startswith("index:"):
        try:
            idx = int(point[6:])
        except ValueError:
            raise ConfigError(f"expected index:<integer>, got {point!r}", source=source, field="point") from None
        hit = df[df["point_index"] == idx]
        if len(hit) == 0:
            raise ConfigError(f"no point with index {idx}", source=source, field="point")
        return hit.iloc[0]
    hit = df[df["key"].str.startswith(point)]
    if len(hit) != 1:
        raise ConfigError(f"key prefix {point!r} matches {len(hit)} points; give more characters", source=source,
                          field="point")
    return hit.iloc[0]


def resimulate(row: Any, resolved: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The full :class:`~accelsim.report.Report` of one stored point."""
    import json

    from ..api import simulate
    from ..hardware.io import hardware_from_dict

    hw = hardware_from_dict(json.loads(row["hardware_json"]), source=f"point {row['key'][:10]}")
    comp = resolved.get("compression")
    if comp:
        from .coexplore import compressed_model

        wl = compressed_model(comp, json.loads(row["compression_json"] or "{}")).workload
    else:
        from .spec import WorkloadRef

        refs = [WorkloadRef(**w) for w in resolved.get("workloads", []) if w["label"] == row["workload"]]
        if not refs:
            raise ConfigError(f"cannot rebuild workload {row['workload']!r} of this point", source="results store")
        wl = refs[0].load()
    return simulate(wl, hw, compare_dense=False)


def _axes_and_objectives(resolved: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    return list(resolved.get("axes", [])), [tuple(o) for o in resolved.get("objectives", [])]  # type: ignore[misc]


def plot_from_store(store_path: str | Path, kind: str, *, out: str | Path | None = None, sweep: str | None = None,
                    x: str | None = None, y: str | None = None, color: str | None = None, metric: str | None = None,
                    axes: list[str] | None = None, agg: str | None = None, point: str | None = None,
                    workload: str | None = None, top: int | None = None) -> Path:
    """Draw ``kind`` (pareto | breakdown | heatmap | roofline) from a store; returns the figure path."""
    from .pareto import pareto_front
    from .spec import METRICS, canonical_metric, feasible_mask, parse_constraint

    sp = Path(store_path)
    if not sp.exists():
        raise ConfigError("results store not found", source=str(sp))
    with ResultsStore(sp) as st:
        name = _sweep_name(st, sweep)
        resolved = _resolved(st, name)
    out_path = Path(out) if out else sp.with_name(f"{sp.stem}_{kind}.png")
    src = str(sp)
    version = resolved.get("version")
    df = load(sp, sweep=name, status="ok", version=version)
    if len(df) == 0:
        df = load(sp, sweep=name, status="ok")  # points of an older simulator version
    if workload is not None:
        df = df[df["workload"] == workload]
    if len(df) == 0:
        raise ConfigError(f"sweep {name!r} has no successfully simulated point" + (f" for {workload}" if workload else ""),
                          source=src)
    axis_names, objectives = _axes_and_objectives(resolved)
    constraints = [parse_constraint(t) for t in resolved.get("constraints", [])]
    feasible = feasible_mask(df, constraints)
    senses = dict(objectives)
    title = f"{name}" + (f" - {df['workload'].iloc[0]}" if df["workload"].nunique() == 1 else "")

    def col(m: str) -> str:
        m = canonical_metric(m)
        if m not in df.columns:
            raise ConfigError(f"unknown column {m!r}; metrics: {', '.join(c for c in df.columns if c in METRICS)}; "
                              f"axes: {', '.join(axis_names)}", source=src)
        return m

    if kind == "pareto":
        from ..plot.pareto import plot_pareto

        xs = col(x or (objectives[0][0] if objectives else "latency_ms"))
        ys = col(y or (objectives[1][0] if len(objectives) > 1 else "energy_uj"))
        xsense = senses.get(xs, METRICS.get(xs, "min"))
        ysense = senses.get(ys, METRICS.get(ys, "min"))
        front = pareto_front(df[feasible], [(xs, xsense), (ys, ysense)])
        plot_pareto(df, xs, ys, x_sense=xsense, y_sense=ysense, color=col(color) if color else None, path=out_path,
                    title=title, front=front, infeasible=None if feasible.all() else ~feasible,
                    constraint_text=", ".join(str(c) for c in constraints))
    elif kind == "heatmap":
        from ..plot.heatmap import plot_heatmap

        if axes is None:
            if len(axis_names) < 2:
                raise ConfigError("a heatmap needs two swept axes (--axes X Y)", source=src)
            axes = axis_names[:2]
        m = col(metric or (objectives[0][0] if objectives else "energy_uj"))
        a = agg or ("min" if senses.get(m, METRICS.get(m, "min")) == "min" else "max")
        plot_heatmap(df, col(axes[0]), col(axes[1]), m, agg=a, path=out_path, title=f"{title}: {m} ({a})")
    elif kind == "breakdown":
        if point is None:
            from ..plot.pareto import plot_front_breakdown

            front = pareto_front(df[feasible], objectives) if objectives else df
            front = front.sort_values(objectives[0][0]) if objectives else front
            varying = [a for a in axis_names if a in front.columns and front[a].nunique() > 1]
            labels = ["\n".join(f"{a}={r[a]:g}" if isinstance(r[a], float) else f"{a}={r[a]}" for a in varying)
                      or r["key"][:8] for _, r in front.iterrows()]
            plot_front_breakdown(front, labels=labels, path=out_path, top=top, title=f"{title}: Pareto points")
        else:
            from ..plot.breakdown import plot_breakdown

            row = select_point(df, point, objectives, src)
            report = resimulate(row, resolved)
            plot_breakdown(report, path=out_path, top=top)
    elif kind == "roofline":
        from ..plot.roofline import plot_roofline, roofline_frame

        row = select_point(df, point, objectives, src)
        report = resimulate(row, resolved)
        frame = roofline_frame(report)
        peak = float(row["peak_gops"])
        bw = float(row["dram_bw_gbps"])
        net = (float(row["operational_intensity"]), float(row["achieved_gops"]), "whole network")
        params = ", ".join(f"{a}={row[a]}" for a in axis_names if a in row)
        plot_roofline(frame, peak, bw, path=out_path, extra=net, title=f"{title}: {params}")
    else:
        raise ConfigError(f"unknown plot kind {kind!r}; expected pareto, breakdown, heatmap or roofline", source=src)
    return out_path
