"""Area (and network energy) breakdown by component, for one design or several side by side."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ._save import save_figure

if TYPE_CHECKING:  # pragma: no cover
    from ..report import Report


def area_plot_path(path: str | Path) -> Path:
    """Where the area figure of a ``--plot x.png`` run goes: ``x_area.png``."""
    p = Path(path)
    return p.with_name(f"{p.stem}_area{p.suffix or '.png'}")


def _is_report(obj: Any) -> bool:
    """A :class:`~accelsim.report.Report` (duck-typed: the plot layer does not import the report at run time)."""
    return hasattr(obj, "area_by_component_mm2") and callable(getattr(obj, "summary", None))


def _normalise(designs: Any) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(area by design, energy by design); energy only for designs given as Reports."""
    if _is_report(designs):
        designs = {designs.hardware: designs}
    if not isinstance(designs, Mapping) or not designs:
        raise ValueError("plot_area needs a Report, {label: Report} or {label: {component: area_mm2}}")
    if all(isinstance(v, (int, float)) for v in designs.values()):
        designs = {"design": designs}
    areas: dict[str, dict[str, float]] = {}
    energies: dict[str, dict[str, float]] = {}
    for label, d in designs.items():
        if _is_report(d):
            areas[str(label)] = dict(d.area_by_component_mm2)
            energies[str(label)] = dict(d.summary()["energy_by_component_pj"])
        else:
            areas[str(label)] = {str(k): float(v) for k, v in dict(d).items()}
    return areas, energies


def plot_area(designs: "Report | Mapping[str, Any]", path: str | Path | None = None, *, title: str | None = None):  # type: ignore[no-untyped-def]
    """Stacked bars of area by component (mm^2) per design, plus network energy by component (uJ)
    when Reports are given.

    ``designs``: a :class:`~accelsim.report.Report` (its ``area_by_component_mm2``), a mapping
    ``{label: Report}`` (e.g. dense vs pruned), or ``{label: {component: area_mm2}}``. Saves to
    ``path`` (PNG/PDF/SVG, written atomically) when given; returns the matplotlib Figure. A
    design without an area model (empty area) is drawn empty and says so in the title.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    areas, energies = _normalise(designs)
    labels = list(areas)
    comps = [c for c in dict.fromkeys(c for a in areas.values() for c in a)]
    panels = 2 if energies else 1
    fig, axes = plt.subplots(1, panels, figsize=(max(5.0, 1.3 * len(labels) + 3.5) * panels, 4.8), squeeze=False)
    cmap = plt.get_cmap("tab20")
    colors = {c: cmap(i % 20) for i, c in enumerate(dict.fromkeys(comps + [c for e in energies.values() for c in e]))}

    def stacked(ax, data: dict[str, dict[str, float]], scale: float, unit: str, what: str) -> None:  # type: ignore[no-untyped-def]
        names = list(data)
        parts = list(dict.fromkeys(c for d in data.values() for c in d))
        bottom = [0.0] * len(names)
        for comp in parts:
            vals = [data[n].get(comp, 0.0) * scale for n in names]
            if not any(vals):
                continue
            ax.bar(range(len(names)), vals, bottom=bottom, label=comp, color=colors.get(comp))
            bottom = [b + v for b, v in zip(bottom, vals)]
        for i, total in enumerate(bottom):
            ax.annotate(f"{total:,.3g}", (i, total), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=20 if len(names) > 3 else 0, fontsize=8)
        ax.set_ylabel(f"{what} ({unit})")
        ax.legend(fontsize=7, loc="upper right", ncol=2)

    stacked(axes[0][0], areas, 1.0, "mm$^2$", "area")
    empty = [n for n, a in areas.items() if not a]
    axes[0][0].set_title("area by component" + (f" (no area model: {', '.join(empty)})" if empty else ""), fontsize=10)
    if energies:
        stacked(axes[0][1], energies, 1e-6, "uJ", "energy")
        axes[0][1].set_title("network energy by component", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
