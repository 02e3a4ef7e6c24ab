"""Roofline: achieved throughput vs operational intensity (DRAM), under the compute and bandwidth roofs.

Operational intensity = 2 x MACs / DRAM bytes (read + write) -- ops per byte moved off-chip;
achieved = 2 x MACs / latency. Roofs: ``peak_gops`` = 2 x PEs x clock, and ``bw_gbps`` x intensity.
Layers without MACs (pooling, element-wise) or without DRAM traffic are left out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ._save import save_figure
from .pareto import _pyplot


def roofline_frame(report: Any):  # type: ignore[no-untyped-def]
    """Per-layer roofline coordinates of a :class:`~accelsim.report.Report`."""
    import pandas as pd

    rows = []
    clock_hz = report.clock_mhz * 1e6
    for s in report.layers:
        dram = s.dram_read_bytes + s.dram_write_bytes
        if not s.macs or not dram or not s.latency_cycles:
            continue
        rows.append({"layer": s.layer, "op": s.op, "ops_per_byte": 2 * s.macs / dram,
                     "gops": 2 * s.macs / (s.latency_cycles / clock_hz) / 1e9, "macs": s.macs,
                     "bottleneck": s.bottleneck})
    return pd.DataFrame(rows, columns=["layer", "op", "ops_per_byte", "gops", "macs", "bottleneck"])


def label_positions(points: Any, top: int, *, near_decades: float = 0.12,
                    step_pt: float = 8.0) -> list[tuple[tuple[float, float], str, float]]:
    """Labels of the ``top`` layers with the most MACs, laid out so they do not overlap: layers at
    the same point share one label ("a, b +2 more"), and a label within ``near_decades`` (log10, both
    axes) of labels already placed moves up to the lowest free ``step_pt`` step. Returns
    ``((x, y), text, y_offset_pt)`` in drawing order."""
    import math

    groups: dict[tuple[float, float], list[Any]] = {}
    for _, r in points.nlargest(top, "macs").iterrows():
        key = (round(math.log10(r["ops_per_byte"]), 3), round(math.log10(r["gops"]), 3))
        groups.setdefault(key, []).append(r)
    placed: list[tuple[float, float, float]] = []
    out = []
    for (lx, ly), rows in groups.items():
        names = [str(r["layer"]) for r in rows]
        text = ", ".join(names[:2]) + (f" +{len(names) - 2} more" if len(names) > 2 else "")
        taken = {dy for px, py, dy in placed if abs(px - lx) < near_decades and abs(py - ly) < near_decades}
        dy = 0.0
        while dy in taken:
            dy += step_pt
        placed.append((lx, ly, dy))
        out.append(((float(rows[0]["ops_per_byte"]), float(rows[0]["gops"])), text, dy))
    return out


def plot_roofline(points: Any, peak_gops: float, bw_gbps: float, *, path: str | Path | None = None,
                  title: str | None = None, label_top: int = 3, extra: Any = None):  # type: ignore[no-untyped-def]
    """Points (``ops_per_byte``, ``gops`` columns; marker size ~ MACs when given) under the two roofs.

    ``extra``: optional ``(ops_per_byte, gops, label)`` of the whole network, drawn as a star.
    ``label_top`` names the layers with the most MACs. Returns the Figure.
    """
    import numpy as np

    plt = _pyplot(path)
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    oi = points["ops_per_byte"].to_numpy(dtype=float) if len(points) else np.array([1.0])
    lo = max(min(oi.min(), peak_gops / bw_gbps) / 10, 1e-3)
    hi = max(oi.max(), peak_gops / bw_gbps) * 10
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, np.minimum(peak_gops, bw_gbps * xs), color="black", lw=1.5, label="roof")
    ax.axvline(peak_gops / bw_gbps, color="grey", ls=":", lw=1)
    ax.text(peak_gops / bw_gbps, peak_gops * 1.08, f" ridge {peak_gops / bw_gbps:.3g} op/B", fontsize=7)
    if len(points):
        size = 10 + 120 * points["macs"] / points["macs"].max() if "macs" in points else 20
        colors = {"compute": "#4C72B0", "array_mapping": "#8172B3", "dram_bandwidth": "#C44E52",
                  "dram_write": "#DD8452"}
        if "bottleneck" in points:
            for b, g in points.groupby("bottleneck"):
                s = size[g.index] if hasattr(size, "__getitem__") else size
                ax.scatter(g["ops_per_byte"], g["gops"], s=s, alpha=0.7, color=colors.get(b, "#55A868"),
                           label=f"layers: {b}", edgecolor="black", lw=0.3)
        else:
            ax.scatter(points["ops_per_byte"], points["gops"], s=size, alpha=0.7, label="layers")
        if label_top and "layer" in points:
            for (x, y), text, dy in label_positions(points, label_top):
                ax.annotate(text, (x, y), fontsize=6, xytext=(4, 3 + dy), textcoords="offset points",
                            arrowprops=dict(arrowstyle="-", lw=0.4, color="grey") if dy else None)
    if extra is not None:
        ax.scatter([extra[0]], [extra[1]], marker="*", s=180, color="gold", edgecolor="black", zorder=5,
                   label=extra[2])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops per DRAM byte)")
    ax.set_ylabel("achieved throughput (GOPS)")
    import textwrap

    ax.set_title(textwrap.fill(title or f"roofline: peak {peak_gops:,.0f} GOPS, DRAM {bw_gbps:g} GB/s", 90), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    return fig
