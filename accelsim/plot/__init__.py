"""Plots: per-layer energy/latency breakdowns, area, Pareto fronts, sweep heatmaps, rooflines."""
from .area import plot_area
from .breakdown import plot_breakdown
from .heatmap import plot_heatmap
from .pareto import plot_front_breakdown, plot_pareto
from .roofline import plot_roofline

__all__ = ["plot_area", "plot_breakdown", "plot_heatmap", "plot_pareto", "plot_front_breakdown", "plot_roofline"]
