"""Pareto scatter (front highlighted) and per-point energy/latency breakdown of sweep results."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Sequence

from ._save import save_figure

_COMP_COLORS = {
    "mac": "#4C72B0", "pe_rf": "#64B5CD", "vector": "#8172B3", "decoder": "#CCB974", "ifmap_sram": "#55A868",
    "filter_sram": "#8DC891", "ofmap_sram": "#B7DEB8", "dram": "#C44E52", "static": "#999999",
}


def _pyplot(path: Any):  # type: ignore[no-untyped-def]
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _label(metric: str) -> str:
    units = {"latency_ms": "latency (ms)", "energy_uj": "energy (uJ)", "edp_uj_ms": "EDP (uJ x ms)",
             "area_mm2": "area (mm^2)", "accuracy": "accuracy", "latency_cycles": "latency (cycles)",
             "energy_pj": "energy (pJ)", "utilization": "utilization", "tops_per_w": "TOPS/W"}
    return units.get(metric, metric)


def _wide(values: Any) -> bool:
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) > 1 and v.max() / v.min() > 20


def plot_pareto(df: Any, x: str, y: str, *, x_sense: str = "min", y_sense: str = "min", color: str | None = None,
                front: Any = None, path: str | Path | None = None, title: str | None = None,
                annotate: Sequence[str] = (), infeasible: Any = None,
                constraint_text: str = ""):  # type: ignore[no-untyped-def]
    """Scatter of every point in ``df`` with the Pareto front of (x, y) highlighted.

    ``front``: rows to highlight (default: the 2-D front of ``x``/``y`` with their senses).
    ``infeasible``: boolean mask of rows violating the sweep's constraints (drawn as hollow marks).
    ``color``: a column to colour points by (colour bar). ``annotate``: columns written next to
    each front point. Axes switch to log scale when the values span more than two decades.
    Returns the matplotlib Figure (saved to ``path`` when given).
    """
    import numpy as np

    from ..pareto import pareto_front

    plt = _pyplot(path)
    if infeasible is not None and infeasible.any():
        bad = df[infeasible].dropna(subset=[x, y])
        df = df[~infeasible]
    else:
        bad = None
    data = df.dropna(subset=[x, y])
    own_front = front is None
    if own_front:
        front = pareto_front(data, [(x, x_sense), (y, y_sense)])
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    if bad is not None and len(bad):
        ax.scatter(bad[x], bad[y], facecolors="none", edgecolors="#C9CED6", s=14, lw=0.6,
                   label=f"infeasible ({len(bad)})" + (f": not {constraint_text}" if constraint_text else ""))
    if color and color in data.columns and len(data):
        sc = ax.scatter(data[x], data[y], c=data[color].astype(float), cmap="viridis", s=14, alpha=0.75,
                        label=f"feasible points ({len(data)})")
        fig.colorbar(sc, ax=ax, label=_label(color))
    else:
        ax.scatter(data[x], data[y], color="#7A8796", s=14, alpha=0.6, label=f"feasible points ({len(data)})")
    if len(front):
        f = front.sort_values(x)
        if own_front:  # a 2-D front: draw its staircase (a front of more objectives is shown as points)
            ax.plot(f[x], f[y], color="#C44E52", lw=1.2, drawstyle="steps-post" if x_sense == y_sense else "default",
                    zorder=3)
        ax.scatter(f[x], f[y], color="#C44E52", edgecolor="black", s=40, zorder=4, label=f"Pareto front ({len(f)})")
        for _, row in f.iterrows():
            if annotate:
                text = ", ".join(f"{c}={row[c]:g}" if isinstance(row[c], (int, float, np.number)) else f"{c}={row[c]}"
                                 for c in annotate if c in row)
                ax.annotate(text, (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    every = data if bad is None else __import__("pandas").concat([data, bad])
    if _wide(every[x]):
        ax.set_xscale("log")
    if _wide(every[y]):
        ax.set_yscale("log")
    ax.set_xlabel(_label(x) + (" (higher is better)" if x_sense == "max" else ""))
    ax.set_ylabel(_label(y) + (" (higher is better)" if y_sense == "max" else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(textwrap.fill(title, 90), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_front_breakdown(df: Any, *, labels: Sequence[str] | None = None, path: str | Path | None = None,
                         title: str | None = None, top: int | None = None):  # type: ignore[no-untyped-def]
    """Stacked energy-by-component (uJ) and latency (compute / stall / fill+drain, ms) bars, one per point.

    ``df`` rows are sweep points with ``energy_<component>_pj``, ``latency_cycles``,
    ``compute_cycles``, ``stall_cycles`` and ``clock_mhz`` columns (as stored by ``accelsim sweep``).
    """
    plt = _pyplot(path)
    rows = df.head(top) if top else df
    comps = [c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
    order = list(_COMP_COLORS)
    comps.sort(key=lambda c: (order.index(c[7:-3]) if c[7:-3] in order else len(order), c))
    names = list(labels) if labels is not None else [str(i) for i in range(len(rows))]
    names = names[: len(rows)]
    width = max(6.0, min(0.6 * len(rows) + 3.5, 30.0))
    label_lines = max((str(n).count("\n") + 1 for n in names), default=1)
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(width, 6.0 + 0.15 * label_lines), sharex=True)
    xs = range(len(rows))
    bottom = [0.0] * len(rows)
    for c in comps:
        vals = [float(v) / 1e6 if v == v else 0.0 for v in rows[c].fillna(0.0)]
        if not any(vals):
            continue
        comp = c[7:-3]
        ax_e.bar(xs, vals, bottom=bottom, label=comp, color=_COMP_COLORS.get(comp))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax_e.set_ylabel("energy (uJ)")
    ax_e.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    clock = rows["clock_mhz"].astype(float) * 1e3  # cycles per ms
    parts = {
        "compute": rows["compute_cycles"].astype(float) / clock,
        "stall": rows["stall_cycles"].astype(float) / clock,
        "fill+drain": (rows["latency_cycles"] - rows["compute_cycles"] - rows["stall_cycles"]).astype(float) / clock,
    }
    colors = {"compute": "#4C72B0", "stall": "#C44E52", "fill+drain": "#DD8452"}
    bottom = [0.0] * len(rows)
    for k, series in parts.items():
        vals = list(series)
        if not any(vals):
            continue
        ax_t.bar(xs, vals, bottom=bottom, label=k, color=colors[k])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax_t.set_ylabel("latency (ms)")
    ax_t.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax_t.set_xticks(list(xs))
    multiline = label_lines > 1
    ax_t.set_xticklabels(names, rotation=0 if multiline else 60, ha="center" if multiline else "right", fontsize=7)
    if title:
        ax_e.set_title(textwrap.fill(title, 90), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
