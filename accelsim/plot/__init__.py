"""Plots: per-layer energy/latency breakdowns (more in later modules)."""
from .breakdown import plot_breakdown

__all__ = ["plot_breakdown"]
