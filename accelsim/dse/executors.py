"""Where points are evaluated: in-process, a local process pool, or a dask.distributed cluster.

Every executor takes chunks of point tasks (lists of dicts) and yields ``(chunk, results)`` as they
finish, with at most ``max_in_flight`` chunks submitted at a time (memory stays flat however long
the sweep). ``results`` is the list returned by :func:`accelsim.dse.evaluate.evaluate_chunk`, or
an exception when the chunk as a whole failed (e.g. a worker process died; the local pool reruns
the chunks caught in such a crash one at a time, so only the culprit fails); the runner then
records the chunk's points as errors and goes on.

dask is imported only by :class:`DaskExecutor` (``pip install 'accelsim[dask]'``).
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from ..errors import ConfigError
from .evaluate import evaluate_chunk

Chunk = list[dict[str, Any]]
Outcome = tuple[Chunk, "list[dict[str, Any]] | BaseException"]


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return max(1, os.cpu_count() or 1)


class InlineExecutor:
    """Evaluate in this process, one chunk at a time (``--workers 1``; debugging, notebooks)."""

    name = "inline"

    def __init__(self) -> None:
        self.workers = 1

    def run(self, context: dict[str, Any], chunks: Iterable[Chunk], max_in_flight: int = 1) -> Iterator[Outcome]:
        for chunk in chunks:
            try:
                yield chunk, evaluate_chunk(context, chunk)
            except Exception as exc:  # evaluate_chunk catches per point; this is a safety net
                yield chunk, exc

    def close(self) -> None:
        pass


PR_SET_PDEATHSIG = 1
#: seconds between the watchdog's checks that the parent still runs
PARENT_POLL_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the sweep process that started it dies, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` -- the kernel kills the worker when its parent
    thread exits (the pool forks its workers from the sweep's main thread). Everywhere, as the
    fallback: a daemon thread that ends the worker once it has been re-parented (``getppid()``
    changes). A parent that died before either was armed is caught by the first check.
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="accelsim-parent-watchdog", daemon=True).start()


def _init_worker(parent_pid: int | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if parent_pid is not None:
        _die_with_parent(parent_pid)


def _prefork(tasks: Chunk | None = None) -> None:
    """Prepare this process to be forked by a pool: load what every worker needs once, here.

    ``import accelsim`` loads almost nothing, so without this each forked worker would import
    the simulator (API, engines, the mapper's numba kernels when ``tasks`` search mappings) on its
    first point -- the same work in every worker. Then ``gc.freeze()`` moves the heap out of the
    collector's reach, so workers do not touch (and copy) every inherited page at their first
    collection (copy-on-write pages stay shared); the parent unfreezes once the workers are forked.
    No ``gc.collect()`` first: it cost the parent ~0.1 s per pool (a full scan of its heap); garbage
    frozen with the heap is collected by the parent after ``gc.unfreeze()``.
    """
    from .evaluate import warm_up

    warm_up(tasks)
    gc.freeze()


def _run_chunk(context: dict[str, Any], chunk: Chunk) -> list[dict[str, Any]]:
    return evaluate_chunk(context, chunk)


def _mp_context() -> Any:
    """fork on Linux (instant start, works from scripts without a ``__main__`` guard); spawn elsewhere.

    All workers are forked at once (:meth:`LocalExecutor._start`), before their pools start their
    manager threads.
    """
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _noop() -> None:
    """Submitted to a new worker to start it (where its pool cannot be told to fork at once)."""


def chunk_locality(chunk: Chunk) -> str:
    """The affinity key of a chunk: its first task's ``locality`` (the runner never mixes them)."""
    task = chunk[0] if chunk else {}
    return str(task.get("locality") or task.get("timing_key") or "")


class LocalExecutor:
    """``workers`` local processes (default: all cores), each its own single-process pool.

    Chunks are routed by their locality (:func:`chunk_locality`; for searched systolic points the
    mapping searches they share, see :func:`accelsim.dse.space.locality_view`): a locality seen
    for the first time goes to a worker with a free slot, later chunks of it to that same worker,
    so each mapping problem is searched in one process, not in every one. A worker that runs
    dry takes (steals) the next chunk whatever its locality: an idle core costs more than a
    repeated search. Up to ``LOOKAHEAD`` chunks wait in the parent so that each worker finds its
    own; results do not depend on where a chunk runs.

    The workers die with the process that created the executor (see :func:`_die_with_parent`), so
    a SIGKILLed sweep leaves no orphaned worker behind; on Linux they are bound to the thread that
    first submits work, so create and use an executor from one long-lived thread.
    """

    name = "local"
    #: chunks each worker holds at once (one running, one queued)
    PER_WORKER = 2
    #: chunks held in the parent to find each worker one of its own localities
    LOOKAHEAD = 8

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._pools: list[ProcessPoolExecutor | None] = [None] * self.workers
        self._forked = [False] * self.workers
        self._home: dict[str, int] = {}
        self._assigned = [0] * self.workers  # points sent to each worker (balances new localities)
        self.stolen = 0  # chunks run away from their locality's worker (benchmarks)
        self.prefork_cpu_s = 0.0  # CPU seconds this process spent in _prefork (benchmarks)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=_mp_context(), initializer=_init_worker,
                                   initargs=(os.getpid(),))

    def _start(self, tasks: Chunk | None = None) -> None:
        """Fork every missing worker at once, after :func:`_prefork` of ``tasks`` (fork start method)."""
        missing = [i for i in range(self.workers) if self._pools[i] is None or not self._forked[i]]
        if not missing:
            return
        fork = _mp_context().get_start_method() == "fork"
        if fork:
            cpu = time.process_time()
            _prefork(tasks)
            self.prefork_cpu_s += time.process_time() - cpu
        try:
            for i in missing:
                pool = self._pools[i] = self._pools[i] or self._new_pool()
                launch = getattr(pool, "_launch_processes", None)  # CPython >= 3.9
                if fork and launch is not None:
                    launch()  # fork now: before any of the new pools starts its manager thread
                else:
                    pool.submit(_noop)
                self._forked[i] = True
        finally:
            if fork:
                gc.unfreeze()

    def _submit(self, worker: int, context: dict[str, Any], chunk: Chunk) -> Future:
        if self._pools[worker] is None or not self._forked[worker]:
            self._start(chunk)
        self._assigned[worker] += len(chunk)
        return self._pools[worker].submit(_run_chunk, context, chunk)  # type: ignore[union-attr]

    def _pick(self, buf: list[Chunk], worker: int, load: list[int]) -> int | None:
        """Index in ``buf`` of the chunk ``worker`` runs next: its own locality first, then a new one
        (it becomes its home), then -- when the worker is idle -- the oldest chunk."""
        new = None
        for j, chunk in enumerate(buf):
            home = self._home.get(chunk_locality(chunk))
            if home == worker:
                return j
            if home is None and new is None:
                new = j
        if new is not None:
            if len(self._home) > 100_000:  # bound memory on endless sweeps (only locality is lost)
                self._home.clear()
            self._home[chunk_locality(buf[new])] = worker
            return new
        if buf and load[worker] == 0:
            self.stolen += 1
            return 0
        return None

    def run(self, context: dict[str, Any], chunks: Iterable[Chunk], max_in_flight: int | None = None) -> Iterator[Outcome]:
        per = max(1, (max_in_flight or self.PER_WORKER * self.workers) // self.workers)
        it = iter(chunks)
        buf: list[Chunk] = []
        pending: dict[Future, tuple[int, Chunk]] = {}
        load = [0] * self.workers
        exhausted = False
        while True:
            placed = True
            while placed:
                while not exhausted and len(buf) < self.LOOKAHEAD:
                    chunk = next(it, None)
                    if chunk is None:
                        exhausted = True
                    else:
                        buf.append(chunk)
                placed = False
                # least-loaded worker first (ties: fewest points so far), so new localities spread evenly
                for w in sorted(range(self.workers), key=lambda i: (load[i], self._assigned[i])):
                    j = self._pick(buf, w, load) if load[w] < per else None
                    if j is None:
                        continue
                    chunk = buf.pop(j)
                    try:
                        pending[self._submit(w, context, chunk)] = (w, chunk)
                        load[w] += 1
                    except BrokenProcessPool as exc:
                        self._pools[w] = None
                        self._forked[w] = False
                        yield chunk, exc
                    placed = True
                    break
            if not pending:
                return
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            suspects: dict[int, list[Chunk]] = {}
            for fut in done:
                w, chunk = pending.pop(fut)
                load[w] -= 1
                try:
                    yield chunk, fut.result()
                except BrokenProcessPool:
                    suspects.setdefault(w, []).append(chunk)
                except Exception as exc:
                    yield chunk, exc
            for w, held in suspects.items():  # a worker died: each chunk it held is suspect, the culprit unknown
                held += [pending.pop(f)[1] for f in [f for f, (i, _) in pending.items() if i == w]]
                load[w] = 0
                self._pools[w] = None
                self._forked[w] = False
                yield from self._isolate(w, context, held)

    def _isolate(self, worker: int, context: dict[str, Any], chunks: list[Chunk]) -> Iterator[Outcome]:
        """Rerun the chunks of a dead worker one at a time in a fresh one: a chunk whose worker
        dies again is the culprit and fails; the innocent ones, caught in the crash, succeed."""
        for chunk in chunks:
            try:
                yield chunk, self._submit(worker, context, chunk).result()
            except BrokenProcessPool:
                self._pools[worker] = None
                self._forked[worker] = False
                yield chunk, RuntimeError("a worker process died while running this chunk (rerun alone: it died again)")
            except Exception as exc:
                yield chunk, exc

    def each_worker(self, fn: Callable[[], Any]) -> list[Any]:
        """``fn()`` run once in every worker process, in worker order (e.g. per-process cache counters)."""
        self._start()
        return [pool.submit(fn).result() for pool in self._pools if pool is not None]

    def close(self) -> None:
        for i, pool in enumerate(self._pools):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                self._pools[i] = None


def _probe(address: str, timeout_s: float) -> None:
    """Fail fast (one line) when nothing listens at a tcp:// scheduler address."""
    import socket
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    u = urlsplit(address)
    if u.hostname is None or u.port is None:
        raise ConfigError(f"expected tcp://HOST:PORT, got {address!r}", source="scheduler")
    try:
        socket.create_connection((u.hostname, u.port), timeout=min(timeout_s, 10.0)).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the dask scheduler at {address}: {exc}", source="scheduler") from None


class DaskExecutor:
    """Run chunks on a ``dask.distributed`` cluster: a scheduler address or an existing Client."""

    name = "dask"

    def __init__(self, address: str | None = None, *, client: Any = None, timeout_s: float = 30.0):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs dask.distributed: pip install 'accelsim[dask]'",
                              source="scheduler") from None
        if client is None:
            if not address:
                raise ConfigError("give a scheduler address such as tcp://127.0.0.1:8786", source="scheduler")
            _probe(address, timeout_s)
            try:
                client = Client(address, timeout=timeout_s)
            except OSError as exc:
                raise ConfigError(f"cannot reach the dask scheduler at {address}: {exc}", source="scheduler") from None
            self._own_client = True
        else:
            self._own_client = False
        self.client = client
        info = client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, context: dict[str, Any], chunks: Iterable[Chunk], max_in_flight: int | None = None) -> Iterator[Outcome]:
        from distributed import as_completed

        limit = max_in_flight or 2 * self.workers
        ctx = self.client.scatter(context, broadcast=True, hash=False)
        it = iter(chunks)
        futures: dict[Any, Chunk] = {}
        ac = as_completed()
        for _ in range(limit):
            chunk = next(it, None)
            if chunk is None:
                break
            fut = self.client.submit(evaluate_chunk, ctx, chunk, pure=False)
            futures[fut.key] = chunk
            ac.add(fut)
        for fut in ac:
            chunk = futures.pop(fut.key)
            try:
                yield chunk, fut.result()
            except Exception as exc:
                yield chunk, exc
            fut.release()
            nxt = next(it, None)
            if nxt is not None:
                f2 = self.client.submit(evaluate_chunk, ctx, nxt, pure=False)
                futures[f2.key] = nxt
                ac.add(f2)

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Any:
    """``scheduler`` -> dask; ``workers == 1`` -> in-process; else a local process pool."""
    if scheduler:
        return DaskExecutor(scheduler)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}", source="command line", field="workers")
    if workers == 1:
        return InlineExecutor()
    return LocalExecutor(workers)
