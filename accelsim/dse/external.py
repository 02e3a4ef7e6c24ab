"""Store points computed outside a sweep's design space (HAO accuracy-latency fronts, distilled
generator students) in the results store, so ``accelsim results`` / ``plot`` / ``load`` treat them
like sweep points.

Each point is keyed like a sweep point (sha256 of workload fingerprint, canonical hardware,
compression and simulator version), so a rerun stores nothing twice: :meth:`ResultsStore.record`
keeps ``ok`` rows and membership as they are. All points of one call are written in one
transaction. The stored spec carries ``_resolved.objectives`` so ``accelsim plot --kind pareto``
draws the right two metrics (with their senses) by default.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .keys import digest
from .space import Point
from .store import ResultsStore
from .version import model_version


@dataclass
class ExternalPoint:
    """A finished point: its workload (label + content fingerprint), hardware, parameters and metrics."""

    workload: str
    workload_fp: str
    hardware: dict[str, Any]
    compression: dict[str, Any] | None
    params: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class StoredRun:
    """What :func:`store_points` wrote."""

    sweep: str
    store: Path
    run_id: str
    requested: int
    evaluated: int  # points new to the store
    skipped: int    # points already stored (a rerun)
    filled: int = 0  # of those, points whose missing ``fill`` metric this call added


def store_points(store_path: str | Path, name: str, source: str, spec: dict[str, Any],
                 objectives: Sequence[tuple[str, str]], points: Sequence[ExternalPoint],
                 executor: str = "local", fill: str | None = None) -> StoredRun:
    """Record ``points`` as the members of sweep ``name`` in the store at ``store_path`` (module doc).

    ``fill``: a metric (e.g. ``measured_accuracy``) that already stored points may lack; where a point
    of this call carries it, its metrics are merged into the stored row (:meth:`ResultsStore.fill_metrics`)."""
    version = model_version()
    axes = list(dict.fromkeys(k for p in points for k in p.params))
    full = {**spec, "_resolved": {"objectives": [list(o) for o in objectives], "constraints": [], "axes": axes,
                                  "workloads": [], "version": version}}
    pts = [Point(index=i, params=dict(p.params), workload=p.workload, workload_fp=p.workload_fp,
                 hardware=p.hardware, recipe=p.compression,
                 key=digest({"workload": p.workload_fp, "hardware": p.hardware, "compression": p.compression,
                             "version": version}))
           for i, p in enumerate(points)]
    run_id = uuid.uuid4().hex[:12]
    with ResultsStore(store_path) as st:
        st.begin_run(run_id, name, source, full, executor, 1)
        known = st.status_of([p.key for p in pts])
        fresh = sum(1 for p in pts if known.get(p.key) not in ("ok", "invalid"))
        st.record(name, [(pt, {"status": "ok", "metrics": p.metrics}) for pt, p in zip(pts, points)],
                  version=version, run_id=run_id)
        filled = st.fill_metrics({pt.key: p.metrics for pt, p in zip(pts, points) if known.get(pt.key) == "ok"},
                                 fill) if fill else []
        st.end_run(run_id, evaluated=fresh, skipped=len(pts) - fresh, invalid=0, errors=0)
    return StoredRun(name, Path(store_path), run_id, len(pts), fresh, len(pts) - fresh, len(filled))
