"""Heatmap of one metric over two swept axes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ._save import save_figure
from .pareto import _label, _pyplot


def heatmap_table(df: Any, x: str, y: str, metric: str, agg: str = "min"):  # type: ignore[no-untyped-def]
    """``metric`` aggregated (``min``/``max``/``mean``/``median``) over every point with the same (x, y)."""
    missing = [c for c in (x, y, metric) if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the results")
    data = df.dropna(subset=[metric])
    return data.pivot_table(index=y, columns=x, values=metric, aggfunc=agg).sort_index(ascending=True)


def colorbar_label(metric: str, agg: str) -> str:
    """"min latency (ms)": the aggregate first, the unit once ("latency (ms) (min)" read badly)."""
    return f"{agg} {_label(metric)}"


def plot_heatmap(df: Any, x: str, y: str, metric: str, *, agg: str = "min", path: str | Path | None = None,
                 title: str | None = None, annotate: bool = True, cmap: str = "viridis_r"):  # type: ignore[no-untyped-def]
    """Cells coloured by ``metric`` over axes ``x`` (columns) and ``y`` (rows); points differing in
    other axes are combined with ``agg``. Returns the Figure (saved to ``path`` when given)."""
    import numpy as np

    plt = _pyplot(path)
    table = heatmap_table(df, x, y, metric, agg)
    vals = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * table.shape[1] + 2.5), max(3.5, 0.6 * table.shape[0] + 1.8)))
    im = ax.imshow(vals, cmap=cmap, aspect="auto", origin="lower")
    fig.colorbar(im, ax=ax, label=colorbar_label(metric, agg))
    ax.set_xticks(range(table.shape[1]))
    ax.set_xticklabels([f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in table.columns], fontsize=8)
    ax.set_yticks(range(table.shape[0]))
    ax.set_yticklabels([f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in table.index], fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if annotate and vals.size <= 400:
        finite = vals[np.isfinite(vals)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                v = vals[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                            color="white" if v > mid else "black")
    ax.set_title(title or f"{_label(metric)} over {x} x {y}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
