"""Design-space exploration: sweeps, a results store that never loses a point, Pareto fronts.

>>> from accelsim import dse
>>> res = dse.run_sweep("sweeps/systolic_resnet50.yaml", store="r50.sqlite", workers=2)
>>> res.front                       # Pareto-optimal points
>>> df = dse.load("r50.sqlite")     # every stored point as a DataFrame
>>> dse.export("r50.sqlite", "r50.parquet")

Modules: :mod:`.spec` (sweep file schema), :mod:`.axes`, :mod:`.space` (points and keys),
:mod:`.store` (SQLite WAL), :mod:`.evaluate` (cached pricing in workers), :mod:`.executors`
(local processes, dask), :mod:`.runner`, :mod:`.pareto`, :mod:`.search` (NSGA-II via optuna),
:mod:`.coexplore` (compression x hardware with accuracy from the front-end), :mod:`.differentiable`
(DNA-style gradient co-search through :mod:`.surrogate` models over :mod:`.relax`-ed axes, fitted by
:mod:`.fitdata`), :mod:`.minmax` (robust co-design over workloads),
:mod:`.constrained`
(latency-constrained per-layer density search), :mod:`.distill` (generator distillation search),
:mod:`.fpga` (FPGA integer programs, HAO accuracy-latency fronts), :mod:`.cli`.
dask and optuna are imported only when used; the names below load on first use (so the CLI
registers ``accelsim sweep`` without importing the explorer).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "run_sweep": "runner", "front_of": "runner", "SweepResult": "runner",
    "load_sweep": "spec", "Sweep": "spec",
    "load": "store", "export": "store", "ResultsStore": "store",
    "pareto_front": "pareto", "hypervolume": "pareto", "non_dominated_mask": "pareto", "non_dominated_sort": "pareto",
    "constrained_density_search": "constrained", "apply_densities": "constrained",
    "distillation_search": "distill",
}

__all__ = [
    "run_sweep", "load_sweep", "load", "export", "pareto_front", "hypervolume", "non_dominated_mask",
    "non_dominated_sort", "front_of", "ResultsStore", "Sweep", "SweepResult",
    "constrained_density_search", "apply_densities", "distillation_search",
]

if TYPE_CHECKING:  # pragma: no cover
    from .pareto import hypervolume, non_dominated_mask, non_dominated_sort, pareto_front
    from .runner import SweepResult, front_of, run_sweep
    from .spec import Sweep, load_sweep
    from .store import ResultsStore, export, load


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
