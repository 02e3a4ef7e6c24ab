"""Evaluate design points in a worker (a local process or a dask worker).

A point is ``accelsim.simulate(workload, hardware, program_cache=..., timing_key=...)`` and its
metrics are :meth:`accelsim.report.Report.metrics` -- the same path as the API, so a stored point
has exactly the numbers ``simulate(...).summary()`` gives. What is specific to sweeps lives here:

- each worker keeps one :class:`~accelsim.program_cache.ProgramCache` per sweep context, keyed
  by the hardware without its pricing-only fields (the point's ``timing_key``, from
  :func:`accelsim.dse.space.timing_view`), so an axis such as ``energy.mac_pj`` or
  ``dram.pj_per_bit`` only re-prices cached action counts, and layers with the same shape and
  compression are lowered and timed once (ResNet-50 has 30 distinct layers out of 72);
- the cache is a bounded LRU, so memory stays flat however many points a worker sees;
- workloads (or, in co-exploration, compressed models with their accuracy) are loaded once;
- points that differ only in ``dram.bw_gbps`` (of a chunk, or as the runner lists them in a task's
  ``dram_bw_siblings``: of its triage batch) share their mapping searches: while one is evaluated, :data:`accelsim.engines.systolic.searched.SIBLING_DRAM_BW_GBPS` holds the others'
  bandwidths, so its searches cover their hierarchies too and they find them cached (results
  identical: each search result equals its own; only where the work is done changes);
- a point never raises: bad combinations are ``invalid``, anything else is an ``error``.
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Any

from ..errors import AccelsimError
from .keys import digest
from .space import timing_view

PROGRAM_CACHE_ENTRIES = 4096


def counters() -> dict[str, int]:
    """How many layers this process lowered+timed and priced through program caches (tests, benchmarks)."""
    from ..program_cache import counters as _counters

    return _counters()


#: modules every point imports (the systolic engines and the mapper come with the first point)
_WARM_MODULES = ("accelsim.api", "accelsim.dse.spec", "accelsim.dse.space", "accelsim.engines.systolic.engine",
                 "accelsim.engines.systolic.searched", "accelsim.mapping.search", "accelsim.engines.lowering",
                 "accelsim.sim.pipeline")


def _searches(tasks: list[dict[str, Any]]) -> bool:
    """True when a task's hardware searches its mappings (a systolic array, ``mapping: search``)."""
    from .space import hardware_of

    for t in tasks:
        try:
            if not t.get("prepare") and getattr(hardware_of(t["hardware"]), "mapping", None) == "search":
                return True
        except Exception:  # an invalid point: its worker reports it
            continue
    return False


def _load_mapper_kernels() -> None:
    """Load (from numba's disk cache, or compile) the mapper's and the lowering's kernels by running
    them on a tiny problem; the module-level search caches are left as they were (the tiny problem's
    entries removed), so what a sweep searches and counts does not change. Nothing to do when this
    process has them already (every kernel has a compiled signature)."""
    from ..engines import _periodic_kernel
    from ..mapping import _search_kernels, fast, search
    from ..sim.warmup import _mapper, _periodic

    kernels = (fast._batch, _search_kernels.enumerate_orders, _periodic_kernel.periodic_plan)
    if all(getattr(k, "signatures", None) for k in kernels):
        return
    caches = [search._CANDIDATES, search._PROBLEMS, search._ORDER_CACHE, search._MEMORIES_JSON,
              fast._COMPATIBLE, fast._HIER_CACHE]
    before = [set(c) for c in caches]
    try:
        _mapper()
        _periodic()
    finally:
        for c, keys in zip(caches, before):
            for k in [k for k in c if k not in keys]:
                del c[k]


def warm_up(tasks: list[dict[str, Any]] | None = None) -> None:
    """Import what evaluating a point needs and, when ``tasks`` search mappings, load the mapper's
    numba kernels (~0.35 s of CPU per process): a pool's parent calls this before forking its
    workers, so the workers inherit them instead of each loading them again."""
    import importlib

    for mod in _WARM_MODULES:
        importlib.import_module(mod)
    if tasks and _searches(tasks):
        _load_mapper_kernels()


class Evaluator:
    """Evaluates points of one sweep context; keeps workloads and the program cache."""

    def __init__(self, context: dict[str, Any]):
        from ..program_cache import ProgramCache

        self.context = context
        self._workloads: dict[str, Any] = {}
        self.programs = ProgramCache(int(context.get("cache_entries") or PROGRAM_CACHE_ENTRIES))

    # --- workloads ----------------------------------------------------------------------
    def workload(self, label: str, recipe: dict[str, Any] | None) -> tuple[Any, float | None]:
        """The workload of a point and, in co-exploration, the model's accuracy."""
        comp = self.context.get("compression")
        if comp is not None:
            from .coexplore import compressed_model

            result = compressed_model(comp, recipe or {})  # memoised per recipe (same object each time)
            return result.workload, result.accuracy
        wl = self._workloads.get(label)
        if wl is None:
            from .spec import WorkloadRef

            ref = next(WorkloadRef(**w) for w in self.context["workloads"] if w["label"] == label)
            wl = self._workloads[label] = ref.load()
        return wl, None

    # --- one point ----------------------------------------------------------------------
    def metrics(self, wl: Any, hw: Any, tkey: str) -> dict[str, Any]:
        """The stored metrics of ``wl`` on ``hw``: ``simulate(...).metrics()`` through the program cache."""
        from ..api import simulate

        return simulate(wl, hw, compare_dense=False, program_cache=self.programs, timing_key=tkey).metrics()

    def prepare(self, task: dict[str, Any]) -> dict[str, Any]:
        """Co-exploration: compress + measure one recipe into the disk cache (never raises)."""
        from .coexplore import compressed_model

        t0 = time.perf_counter()
        res: dict[str, Any] = {"key": task["key"], "status": "ok", "error": None}
        try:
            res["accuracy"] = compressed_model(self.context["compression"], task["recipe"]).accuracy
        except Exception as exc:
            res["status"], res["error"] = "error", f"{exc.__class__.__name__}: {exc}"
        res["elapsed_s"] = time.perf_counter() - t0
        return res

    def evaluate(self, task: dict[str, Any]) -> dict[str, Any]:
        """One point -> ``{key, status: ok|invalid|error, error, metrics, elapsed_s}``; never raises."""
        from .space import hardware_of

        t0 = time.perf_counter()
        res: dict[str, Any] = {"key": task["key"], "status": "ok", "error": None, "metrics": None,
                               "worker": f"{os.uname().nodename}:{os.getpid()}"}
        try:
            hw = hardware_of(task["hardware"])
            tkey = task.get("timing_key") or digest(timing_view(task["hardware"]))
            wl, accuracy = self.workload(task["workload"], task.get("recipe"))
            m = self.metrics(wl, hw, tkey)
            if accuracy is not None:
                m["accuracy"] = float(accuracy)
            res["metrics"] = m
        except AccelsimError as exc:  # the hardware cannot run this workload / bad combination
            res["status"], res["error"] = "invalid", str(exc)
        except Exception as exc:  # a bug: record it and go on
            tb = traceback.format_exc(limit=3).strip().splitlines()
            res["status"] = "error"
            res["error"] = f"{exc.__class__.__name__}: {exc} [{' | '.join(line.strip() for line in tb[-3:])}]"
        res["elapsed_s"] = time.perf_counter() - t0
        return res


_EVALUATORS: dict[str, Evaluator] = {}


def evaluator_for(context: dict[str, Any]) -> Evaluator:
    """The process-wide evaluator of ``context`` (workers keep it between tasks)."""
    key = context["id"]
    ev = _EVALUATORS.get(key)
    if ev is None:
        if len(_EVALUATORS) > 8:
            _EVALUATORS.clear()
        ev = Evaluator(context)
        _EVALUATORS[key] = ev
    return ev


def sibling_bandwidths(tasks: list[dict[str, Any]]) -> list[tuple[float, ...]]:
    """Per task, the distinct ``dram.bw_gbps`` of the tasks whose hardware equals its own but for
    that field (and name/description), in task order; ``()`` for a task without one."""
    keys: list[str | None] = []
    groups: dict[str, dict[float, None]] = {}
    for t in tasks:
        hwd = t.get("hardware")
        dram = hwd.get("dram") if isinstance(hwd, dict) and not t.get("prepare") else None
        if not isinstance(dram, dict) or not isinstance(dram.get("bw_gbps"), (int, float)):
            keys.append(None)
            continue
        rest = {k: v for k, v in hwd.items() if k not in ("name", "description", "dram")}
        k = digest([rest, {f: v for f, v in dram.items() if f != "bw_gbps"}])
        keys.append(k)
        groups.setdefault(k, {})[float(dram["bw_gbps"])] = None
    return [tuple(groups[k]) if k is not None and len(groups[k]) > 1 else () for k in keys]


def evaluate_chunk(context: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate a list of point tasks (the unit of work sent to an executor); points differing
    only in DRAM bandwidth share mapping searches (module docstring)."""
    ev = evaluator_for(context)
    sibs = sibling_bandwidths(tasks)  # a task from the runner carries those of its whole batch
    sibs = [tuple(t["dram_bw_siblings"]) if "dram_bw_siblings" in t else s for t, s in zip(tasks, sibs)]
    if not any(sibs):
        return [ev.prepare(t) if t.get("prepare") else ev.evaluate(t) for t in tasks]
    from ..engines.systolic.searched import SIBLING_DRAM_BW_GBPS

    out = []
    for t, bws in zip(tasks, sibs):
        token = SIBLING_DRAM_BW_GBPS.set(bws)
        try:
            out.append(ev.prepare(t) if t.get("prepare") else ev.evaluate(t))
        finally:
            SIBLING_DRAM_BW_GBPS.reset(token)
    return out
