"""Run a sweep: enumerate (or search) points, skip the stored ones, evaluate the rest, keep the front.

>>> from accelsim.dse import run_sweep
>>> res = run_sweep("sweeps/systolic_resnet50.yaml", store="resnet50.sqlite", workers=2)
>>> res.front          # DataFrame: the Pareto-optimal points (axis values + objectives)

Points are generated lazily, checked against the store in batches, sent to the executor in chunks
with a bounded number in flight, and written to the store as each chunk finishes, so memory does
not grow with the number of points and a killed sweep resumes where it stopped.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError
from .evaluate import sibling_bandwidths
from .executors import make_executor
from .pareto import pareto_front
from .result import SweepResult
from .keys import digest
from .space import DesignSpace, Point, workload_fingerprint
from .spec import Sweep, feasible_mask, load_sweep
from .store import FINISHED, LEASE_S, ResultsStore, representable_result

TRIAGE_BATCH = 256
#: run ids of the sessions of this process that are running (a claim of this process by a run not
#: in here is left over and may be taken over)
_ACTIVE_RUNS: set[str] = set()


class _Progress:
    """tqdm bar on stderr (ETA), or nothing."""

    def __init__(self, total: int | None, enabled: bool, desc: str):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="pt", desc=desc, file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                            mininterval=0.5)

    def update(self, n: int, **post: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)
            self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SweepSession:
    """One run of one sweep against one store (used by grid/random and by the NSGA-II search)."""

    def __init__(self, sweep: Sweep, store: ResultsStore, executor: Any, *, chunk_size: int | None = None,
                 progress: bool = True, cache_dir: str | None = None):
        self.sweep = sweep
        self.store = store
        self.executor = executor
        self.run_id = uuid.uuid4().hex[:12]
        self.compression = None
        if sweep.spec.compression is not None:
            comp = sweep.spec.compression.model_dump()  # python mode: callables stay callables
            from .coexplore import resolve_user_file

            for key in ("evaluator", "model"):
                comp[key] = resolve_user_file(comp.get(key), sweep.base_dir, field=f"compression.{key}")
            given = comp.get("cache_dir") or cache_dir
            comp["cache_dir"] = str((sweep.base_dir / given).resolve() if given else Path(f"{store.path}.cache").resolve())
            from .coexplore import check_available

            check_available(comp)
            self.compression = comp
        fps = {}
        for ref in sweep.workloads:
            fps[ref.label] = workload_fingerprint(ref.load())
        self.space = DesignSpace(sweep, fps, self.compression)
        self.context = {
            "id": digest({"sweep": sweep.name, "workloads": [w.to_payload() for w in sweep.workloads],
                          "compression": self._compression_json(exact=True), "fps": fps}),
            "workloads": [w.to_payload() for w in sweep.workloads],
            "compression": self.compression,
        }
        total = self.space.size() or 0
        workers = getattr(executor, "workers", 1)
        self.chunk_size = chunk_size or sweep.spec.chunk_size or max(1, min(32, total // max(1, workers * 16)))
        self.result = SweepResult(sweep=sweep.name, store=store.path, run_id=self.run_id, executor=executor.name,
                                  workers=workers, objectives=[(o.name, o.sense) for o in sweep.objectives],
                                  constraints=[str(c) for c in sweep.constraints],
                                  params=[a.path for a in sweep.axes])
        self.progress = _Progress(total, progress, sweep.name)
        self._inflight: dict[str, Point] = {}
        self._deferred: dict[str, Point] = {}  # claimed by another live run: wait, then take or skip
        from .._proc import identity

        self.owner = f"{identity()}/{self.run_id}"
        _ACTIVE_RUNS.add(self.run_id)
        self._renewed = time.monotonic()
        self._t0 = time.perf_counter()

    def _compression_json(self, exact: bool = False) -> dict[str, Any] | None:
        """The resolved compression section with callables as ``module:qualname`` (importable again;
        ``exact`` adds a digest of their source), JSON-safe."""
        if self.compression is None:
            return None
        from .coexplore import callable_ref, ref_label

        label = callable_ref if exact else ref_label
        return {k: label(v) if callable(v) else v for k, v in self.compression.items()}

    def stored_spec(self) -> dict[str, Any]:
        """The sweep spec as stored with the results, plus what plotting needs to rebuild points."""
        spec = self.sweep.spec.model_dump(mode="json")
        spec["_resolved"] = {
            "objectives": [[o.name, o.sense] for o in self.sweep.objectives],
            "constraints": [str(c) for c in self.sweep.constraints],
            "axes": [a.path for a in self.sweep.axes],
            "workloads": [w.to_payload() for w in self.sweep.workloads],
            "compression": self._compression_json(),
            "version": self.space.version,
            "context": self.context["id"],  # workload contents: a changed workload is a changed sweep
        }
        return spec

    # --- bookkeeping --------------------------------------------------------------------
    def _tick(self, n: int) -> None:
        r = self.result
        self.progress.update(n, new=r.evaluated, skipped=r.skipped, invalid=r.invalid, errors=r.errors)

    def _task(self, p: Point, siblings: tuple[float, ...] = ()) -> dict[str, Any]:
        task = {"key": p.key, "workload": p.workload, "hardware": p.hardware, "recipe": p.recipe,
                "timing_key": p.timing_key, "locality": p.locality or p.timing_key}
        if siblings:
            task["dram_bw_siblings"] = siblings
        return task

    def triage(self, points: list[Point]) -> Iterator[list[dict[str, Any]]]:
        """Record stored/invalid points at once; yield chunks of tasks for the rest."""
        self.result.requested += len(points)
        status = self.store.status_of([p.key for p in points])
        done, invalid, todo = [], [], []
        seen: set[str] = set()
        for p in points:
            if status.get(p.key) in FINISHED or p.key in seen or p.key in self._inflight or p.key in self._deferred:
                done.append(p)
            elif not p.valid:
                invalid.append(p)
            else:
                todo.append(p)
            seen.add(p.key)
        if done:
            self.store.add_members(self.sweep.name, done)
            self.result.skipped += len(done)
            self._tick(len(done))
        if invalid:
            self.store.record(self.sweep.name, [(p, {"status": "invalid", "error": p.error}) for p in invalid],
                              version=self.space.version, run_id=self.run_id)
            self.result.invalid += len(invalid)
            self._tick(len(invalid))
        # DRAM bandwidths of the batch's points equal but for it (one locality: the same worker), so
        # a point's mapping searches cover theirs (evaluate.evaluate_chunk; results unchanged)
        sibs = dict(zip((p.key for p in todo), sibling_bandwidths([{"hardware": p.hardware} for p in todo])))
        for chunk in self._split(todo):
            chunk = self._claim(chunk)  # claimed as the executor asks for it, not earlier
            if not chunk:
                continue
            for p in chunk:
                self._inflight[p.key] = p
            yield [self._task(p, sibs[p.key]) for p in chunk]

    # --- claims (concurrent runs on one store) ------------------------------------------
    def _claim(self, points: list[Point]) -> list[Point]:
        """Claim ``points`` in the store; return those this run computes now.

        Points finished meanwhile by another run count as skipped; points another live run is
        computing are deferred (see :meth:`_drain_deferred`)."""
        granted, finished, busy = self.store.claim([p.key for p in points], self.owner, active=_ACTIVE_RUNS)
        by_key = {p.key: p for p in points}
        if finished:
            self.store.add_members(self.sweep.name, [by_key[k] for k in finished])
            self.result.skipped += len(finished)
            self._tick(len(finished))
        for k in busy:
            self._deferred[k] = by_key[k]
        ok = set(granted)
        return [p for p in points if p.key in ok]

    def _heartbeat(self) -> None:
        if time.monotonic() - self._renewed > LEASE_S / 4:
            self.store.renew(self.owner)
            self._renewed = time.monotonic()

    def _drain_deferred(self) -> None:
        """Wait for the points other runs were computing: skip them once stored, compute them when
        their claimant died (its claims are then taken over). Runs after this run's own chunks
        are all recorded, so two runs waiting on each other always progress."""
        wait_s = 0.02
        while self._deferred:
            pending = list(self._deferred.values())
            self._deferred.clear()
            mine = self._claim(pending)
            if mine:
                for p in mine:
                    self._inflight[p.key] = p
                tasks = [[self._task(p) for p in c] for c in self._split(mine)]
                for chunk, outcome in self.executor.run(self.context, iter(tasks)):
                    self._record_outcome(chunk, outcome)
                wait_s = 0.02
            elif self._deferred:
                time.sleep(wait_s)
                wait_s = min(1.0, wait_s * 2)
                self._heartbeat()

    def release(self) -> None:
        """Drop this run's claims (it ends, finished or not)."""
        _ACTIVE_RUNS.discard(self.run_id)
        self.store.release(self.owner)

    def _split(self, todo: list[Point]) -> Iterator[list[Point]]:
        """Chunks of about ``chunk_size`` that keep points sharing a tiling/timing key together.

        A worker then lowers and simulates each structure once and only re-prices the rest; two
        workers never both compute the same structure. A group larger than 4 chunks is split
        (the repeated lowering is then small next to the pricing work). Points of different
        localities (:func:`~accelsim.dse.space.locality_view`: the mapping searches they share)
        are never in one chunk, so the executor can send each chunk where its searches are cached.
        """
        chunk: list[Point] = []
        size = self.chunk_size
        for p in todo:
            if chunk and (len(chunk) >= 4 * size or p.locality != chunk[-1].locality or
                          (len(chunk) >= size and p.timing_key != chunk[-1].timing_key)):
                yield chunk
                chunk = []
            chunk.append(p)
        if chunk:
            yield chunk

    def _chunks(self, params: Iterable[dict[str, Any]], start_index: int = 0) -> Iterator[list[dict[str, Any]]]:
        batch: list[Point] = []
        for i, prm in enumerate(params, start=start_index):
            pts = self.space.points_for(i, prm)
            if len(batch) >= TRIAGE_BATCH and pts and pts[0].timing_key != batch[-1].timing_key:
                yield from self.triage(batch)  # cut between structures, not inside one
                batch = []
            batch.extend(pts)
            if len(batch) >= 4 * TRIAGE_BATCH:
                yield from self.triage(batch)
                batch = []
        if batch:
            yield from self.triage(batch)

    def _record_outcome(self, chunk: list[dict[str, Any]], outcome: Any) -> list[tuple[Point, dict[str, Any]]]:
        if isinstance(outcome, BaseException):
            msg = f"{outcome.__class__.__name__}: {outcome}"
            results = [{"key": t["key"], "status": "error", "error": msg} for t in chunk]
        else:
            results = outcome
        items = []
        for res in results:
            p = self._inflight.pop(res["key"])
            res = representable_result(p, res)
            items.append((p, res))
            st = res["status"]
            if st == "ok":
                self.result.evaluated += 1
            elif st == "invalid":
                self.result.invalid += 1
            else:
                self.result.errors += 1
        self.store.record(self.sweep.name, items, version=self.space.version, run_id=self.run_id)
        self._tick(len(items))
        self._heartbeat()
        return items

    def run_points(self, params: Iterable[dict[str, Any]], start_index: int = 0) -> list[tuple[Point, dict[str, Any]]]:
        """Evaluate ``params`` (skipping stored points); returns the newly finished (point, result) pairs."""
        self.prepare_compression(params if isinstance(params, list) else None)
        out: list[tuple[Point, dict[str, Any]]] = []
        for chunk, outcome in self.executor.run(self.context, self._chunks(params, start_index)):
            out.extend(self._record_outcome(chunk, outcome))
        self._drain_deferred()  # points other runs computed are in the store, not in ``out``
        return out

    def evaluate_params(self, params: list[dict[str, Any]], start_index: int = 0) -> list[tuple[str, dict[str, Any] | None]]:
        """Evaluate ``params`` (one workload) and return ``(status, metrics)`` per parameter set, in order."""
        self.run_points(params, start_index)
        points = [self.space.points_for(start_index + i, p)[0] for i, p in enumerate(params)]
        stored = self.store.metrics_of([p.key for p in points])
        return [stored.get(p.key, ("error", None)) for p in points]

    def stream(self, params: Iterable[dict[str, Any]]) -> None:
        """Like :meth:`run_points` without keeping results (grid/random: memory stays flat)."""
        for chunk, outcome in self.executor.run(self.context, self._chunks(params)):
            self._record_outcome(chunk, outcome)
        self._drain_deferred()

    # --- co-exploration -----------------------------------------------------------------
    def prepare_compression(self, params: list[dict[str, Any]] | None) -> None:
        """Compress + measure each distinct, uncached recipe once, in parallel, before the hardware points."""
        if self.compression is None:
            return
        from .coexplore import is_cached

        source = params if params is not None else self.space.iter_params()
        recipes: dict[str, dict[str, Any]] = {}
        for prm in source:
            rec, err = self.space.recipe_for(prm)
            if rec is not None and err is None:
                fp = digest(rec)
                if fp not in recipes and not is_cached(self.compression, rec):
                    recipes[fp] = rec
        if not recipes:
            return
        tasks = [[{"key": fp, "prepare": True, "recipe": rec}] for fp, rec in recipes.items()]
        bar = _Progress(len(tasks), self.progress.bar is not None, f"{self.sweep.name}: compress+accuracy")
        try:
            for _chunk, _outcome in self.executor.run(self.context, iter(tasks)):
                bar.update(1)
        finally:
            bar.close()

    # --- finishing ----------------------------------------------------------------------
    def finish(self) -> SweepResult:
        self.progress.close()
        self.release()
        r = self.result
        r.wall_s = time.perf_counter() - self._t0
        self.store.end_run(self.run_id, evaluated=r.evaluated, skipped=r.skipped, invalid=r.invalid, errors=r.errors)
        r.front, r.feasible = front_of(self.store, self.sweep, self.space.version)
        return r


def front_of(store: ResultsStore, sweep: Sweep, version: str | None = None, batch: int = 2000) -> tuple[Any, int]:
    """The Pareto front (per workload) of the sweep's ok, feasible points in ``store``; and the feasible count."""
    import pandas as pd

    axis_paths = {a.path for a in sweep.axes}
    metrics = [m for m in dict.fromkeys([o.name for o in sweep.objectives] + [c.metric for c in sweep.constraints])
               if m not in axis_paths]
    objectives = [(o.name, o.sense) for o in sweep.objectives]
    # batch by batch: keep the running front only, so memory does not grow with the sweep
    front = None
    feasible = 0
    for part in store.iter_columns(sweep.name, metrics, version=version, batch=batch):
        part = part[feasible_mask(part, sweep.constraints)]
        feasible += len(part)
        pool = part if front is None else pd.concat([front, part], ignore_index=True)
        fronts = [pareto_front(g, objectives) for _, g in pool.groupby("workload", sort=False)]
        front = pd.concat(fronts) if fronts else pool.iloc[:0]
    if front is None:
        return store.columns_frame(sweep.name, metrics, version=version), 0
    return front.reset_index(drop=True), feasible


def run_sweep(sweep: str | Path | dict[str, Any] | Sweep, store: str | Path | None = None, *,
              workers: int | None = None, scheduler: str | None = None, executor: Any = None,
              progress: bool = False, chunk_size: int | None = None) -> SweepResult:
    """Run ``sweep`` into the results store ``store`` (default ``<sweep name>.sqlite``).

    ``executor`` overrides ``workers``/``scheduler`` (e.g. a :class:`DaskExecutor` on an existing
    Client). Points already stored are skipped; invalid ones and failures are recorded and the
    sweep goes on. Returns counts, wall time and the Pareto front.
    """
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    store_path = Path(store) if store is not None else Path(f"{sw.name}.sqlite")
    if sw.spec.search.method == "distill":  # trains generators in this process (accelsim.dse.distill)
        from .distill import run_distill_sweep

        return run_distill_sweep(sw, check_store_path(store_path), progress=progress)
    own_exec = executor is None
    ex = executor if executor is not None else make_executor(workers, scheduler)
    try:
        with ResultsStore(store_path) as st:
            session = SweepSession(sw, st, ex, chunk_size=chunk_size, progress=progress)
            st.begin_run(session.run_id, sw.name, sw.source, session.stored_spec(), ex.name, getattr(ex, "workers", 1))
            try:
                info: dict[str, Any] | None = None
                if sw.spec.search.method == "nsga2":
                    from .search import run_nsga2

                    run_nsga2(session)
                elif sw.spec.search.method == "differentiable" and any(o.aggregate for o in sw.objectives):
                    from .minmax import run_minmax_differentiable

                    info = run_minmax_differentiable(session).to_dict()
                elif sw.spec.search.method == "differentiable":
                    from .differentiable import run_differentiable

                    info = run_differentiable(session).to_dict()
                else:
                    session.prepare_compression(None)
                    session.stream(session.space.iter_params())
                    if any(o.aggregate for o in sw.objectives):
                        from .minmax import minmax_over_stored

                        info = minmax_over_stored(session).to_dict()
            except BaseException:  # interrupted or failed: record what this run did so far
                r = session.result
                try:
                    session.release()
                except Exception:
                    pass
                try:
                    st.end_run(session.run_id, evaluated=r.evaluated, skipped=r.skipped, invalid=r.invalid,
                               errors=r.errors)
                except Exception:
                    pass
                raise
            finally:
                session.progress.close()
            res = session.finish()
            if info is not None:
                if "workload_weights" in info:
                    res.workload_weights = dict(info["workload_weights"])
                    res.best = {k: info[k] for k in ("aggregate", "metric", "normalize", "best_params",
                                                     "per_workload", "worst", "mean", "designs")}
                res.search_info = info
                st.save_search_info(sw.name, session.run_id, info)
            return res
    finally:
        if own_exec:
            ex.close()


def check_store_path(path: str | Path) -> Path:
    p = Path(path)
    if p.exists() and p.is_dir():
        raise ConfigError("is a directory, expected a results database file", source=str(p))
    return p
