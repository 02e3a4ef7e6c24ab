"""Per-layer stacked energy-by-component and latency breakdown bars."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..components import component_sort_key
from ._save import save_figure

if TYPE_CHECKING:  # pragma: no cover
    from ..report import Report

_COLORS = {
    "mac": "#4C72B0", "pe_rf": "#64B5CD", "vector": "#8172B3", "decoder": "#CCB974", "ifmap_sram": "#55A868",
    "filter_sram": "#8DC891", "ofmap_sram": "#B7DEB8", "dram": "#C44E52", "static": "#999999",
    "compute": "#4C72B0", "stall": "#C44E52", "fill": "#DD8452", "drain": "#F2B880",
}


def _energy_text(uj: float) -> str:
    """Energy with a unit that keeps 3-4 significant digits: "3.06 mJ", "412 uJ", "85.2 nJ"."""
    if uj >= 1e3:
        return f"{uj / 1e3:.4g} mJ"
    if uj >= 1 or uj == 0:
        return f"{uj:.4g} uJ"
    return f"{uj * 1e3:.4g} nJ"


def plot_breakdown(report: "Report", path: str | Path | None = None, *, top: int | None = None):  # type: ignore[no-untyped-def]
    """Two stacked bar charts per layer: energy by component (uJ) and latency (k cycles).

    ``top`` keeps the layers with the largest latency. Saves to ``path`` (PNG/PDF/SVG by
    extension, written atomically) when given; returns the matplotlib Figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layers = list(report.layers)
    if top is not None and len(layers) > top:
        keep = {s.layer for s in sorted(layers, key=lambda s: -s.latency_cycles)[:top]}
        layers = [s for s in layers if s.layer in keep]
    names = [s.layer for s in layers]
    comps = sorted({c for s in layers for c in s.energy_by_component_pj}, key=component_sort_key)
    width = max(6.0, min(0.28 * len(layers) + 2.5, 30.0))
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True)
    x = range(len(layers))
    bottom = [0.0] * len(layers)
    for comp in comps:
        vals = [s.energy_by_component_pj.get(comp, 0.0) / 1e6 for s in layers]
        ax_e.bar(x, vals, bottom=bottom, label=comp, color=_COLORS.get(comp))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax_e.set_ylabel("energy (uJ)")
    ax_e.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    s = report.summary()
    import textwrap

    from ..stats import duration_text

    ax_e.set_title(textwrap.fill(f"{report.workload} on {report.hardware}: {duration_text(s['latency_ms'])}, "
                                 f"{_energy_text(s['energy_uj'])}, utilization {s['utilization']:.0%}",
                                 int(12 * width)), fontsize=10)
    bottom = [0.0] * len(layers)
    for part in ("compute", "stall", "fill", "drain"):
        vals = [getattr(s, f"{part}_cycles") / 1e3 for s in layers]
        if not any(vals):
            continue
        ax_t.bar(x, vals, bottom=bottom, label=part, color=_COLORS[part])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax_t.set_ylabel("latency (k cycles)")
    ax_t.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax_t.set_xticks(list(x))
    ax_t.set_xticklabels(names, rotation=90, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
