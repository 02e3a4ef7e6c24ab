"""Pareto utilities of the explorer: :mod:`accelsim.pareto` (below ``dse`` and ``plot``), re-exported."""
from ..pareto import hypervolume, non_dominated_mask, non_dominated_sort, pareto_front, to_minimisation

__all__ = ["hypervolume", "non_dominated_mask", "non_dominated_sort", "pareto_front", "to_minimisation"]
