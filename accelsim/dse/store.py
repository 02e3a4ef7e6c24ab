"""The results store: an embedded SQLite database (WAL mode) that never loses a finished point.

Tables:

- ``points``: one row per (workload, hardware, compression, version) -- the primary key is the
  sha256 of those four, so the same design simulated by two sweeps is stored once. Columns: status
  (``ok`` | ``invalid`` | ``error``), the error message, the canonical hardware and recipe as JSON,
  the headline metrics as columns and every metric in ``metrics_json``.
- ``members``: which sweep asked for which point, with that sweep's axis values (``params_json``).
- ``sweeps`` and ``runs``: the sweep specs and one row per ``accelsim sweep`` invocation. When a
  sweep is run again with a different spec (an axis narrowed, a workload changed), its
  ``members`` are cleared at the start of the run and rebuilt from the points it asks for now, so
  its front and its rows are those of the sweep as it is now (the points themselves stay stored).
  Two *different* specs run at once under one name on one store share (and reset) one membership:
  give them different names.
- ``claims``: which run is computing which point (see :meth:`ResultsStore.claim`), so runs
  sharing a store (two ``accelsim sweep`` processes, same or overlapping points) never compute
  a point twice.

Each batch of finished points is written in one transaction (so each point is all there or not at
all); a SIGKILL at any moment loses at most the points still being computed. WAL with
``synchronous=NORMAL`` survives a killed process (committed pages are in the OS); use
``durable=True`` for ``synchronous=FULL`` when power loss matters. Rows with status ``error`` are
replaced when a later run computes the point again; ``ok``/``invalid`` rows are never rewritten.
"""
from __future__ import annotations

import json
import sqlite3
import time
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ConfigError

SCHEMA_VERSION = 1
#: metrics stored as their own columns (all metrics are also in metrics_json)
METRIC_COLUMNS = ("latency_cycles", "latency_ms", "energy_pj", "energy_uj", "edp_uj_ms", "area_mm2", "accuracy",
                  "utilization")
FINISHED = ("ok", "invalid")
#: seconds a claim made on another machine holds without a heartbeat (claims of this machine are
#: checked by process liveness instead, see :meth:`ResultsStore.claim`)
LEASE_S = 120.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    error TEXT,
    workload TEXT NOT NULL,
    hardware_kind TEXT,
    hardware_json TEXT,
    compression_json TEXT,
    version TEXT NOT NULL,
    {", ".join(f"{c} REAL" for c in METRIC_COLUMNS)},
    metrics_json TEXT,
    elapsed_s REAL,
    worker TEXT,
    run_id TEXT,
    created_at REAL
);
CREATE TABLE IF NOT EXISTS members (
    sweep TEXT NOT NULL,
    key TEXT NOT NULL,
    point_index INTEGER,
    params_json TEXT,
    PRIMARY KEY (sweep, key)
);
CREATE INDEX IF NOT EXISTS members_key ON members(key);
CREATE TABLE IF NOT EXISTS sweeps (name TEXT PRIMARY KEY, source TEXT, spec_json TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS claims_owner ON claims(owner);
CREATE TABLE IF NOT EXISTS search_info (sweep TEXT PRIMARY KEY, run_id TEXT, info_json TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, sweep TEXT, executor TEXT, workers INTEGER, started_at REAL, finished_at REAL,
    evaluated INTEGER, skipped INTEGER, invalid INTEGER, errors INTEGER
);
"""


def _json(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


#: SQLite's INTEGER range (64-bit signed)
_INT64_MAX = 2**63 - 1


def representable_result(pt: Any, res: dict[str, Any]) -> dict[str, Any]:
    """``res``, or an ``invalid`` result naming the point's axis values when a metric is an integer
    SQLite cannot store (e.g. ``latency_cycles`` ~1e300 from ``dram.bw_gbps: 1e-300``)."""
    m = res.get("metrics") or {}
    big = next((c for c in METRIC_COLUMNS if isinstance(m.get(c), int) and abs(m[c]) > _INT64_MAX), None)
    if big is None:
        return res
    axes = ", ".join(f"{k}={v!r}" for k, v in sorted((pt.params or {}).items())) or "base hardware"
    return {**res, "status": "invalid", "metrics": None,
            "error": f"{big} = {float(m[big]):.3g} exceeds a 64-bit integer: the axis values ({axes}) "
                     "are outside any meaningful range"}


def _num(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None  # SQLite has no NaN/inf in REAL columns; metrics_json keeps the value
    return v


class ResultsStore:
    """A results database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path, *, durable: bool = False, timeout_s: float = 60.0):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ConfigError("is a directory, expected a results database file", source=str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            self.conn.executescript(_SCHEMA)
            row = self.conn.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
            if row is None:
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif not str(row[0]).strip().isdigit() or int(row[0]) != SCHEMA_VERSION:
                raise ConfigError(f"results store schema {row[0]} is not supported (expected {SCHEMA_VERSION})",
                                  source=str(self.path))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"not a usable results database ({exc})", source=str(self.path)) from None

    # --- context manager ----------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------
    def begin_run(self, run_id: str, sweep: str, source: str, spec: dict[str, Any], executor: str, workers: int) -> None:
        """Record a run of ``sweep``; a changed spec clears the sweep's members (they are rebuilt by the run)."""
        now = time.time()
        with self._tx():
            row = self.conn.execute("SELECT spec_json FROM sweeps WHERE name = ?", (sweep,)).fetchone()
            if row is not None and row[0] != _json(spec):
                self.conn.execute("DELETE FROM members WHERE sweep = ?", (sweep,))
            self.conn.execute("INSERT INTO sweeps VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET source=excluded.source, "
                              "spec_json=excluded.spec_json, updated_at=excluded.updated_at",
                              (sweep, source, _json(spec), now))
            self.conn.execute("INSERT INTO runs (run_id, sweep, executor, workers, started_at) VALUES (?,?,?,?,?)",
                              (run_id, sweep, executor, workers, now))

    def end_run(self, run_id: str, *, evaluated: int, skipped: int, invalid: int, errors: int) -> None:
        with self._tx():
            self.conn.execute("UPDATE runs SET finished_at=?, evaluated=?, skipped=?, invalid=?, errors=? WHERE run_id=?",
                              (time.time(), evaluated, skipped, invalid, errors, run_id))

    def _tx(self):  # type: ignore[no-untyped-def]
        store = self

        class _Tx:
            def __enter__(self) -> None:
                store.conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
                store.conn.execute("COMMIT" if et is None else "ROLLBACK")

        return _Tx()

    def record(self, sweep: str, items: Sequence[tuple[Any, dict[str, Any]]], *, version: str, run_id: str = "") -> None:
        """Store finished points (``(Point, result)`` pairs) in one transaction.

        A point already stored as ``ok``/``invalid`` is left as it is; an ``error`` row is replaced.
        """
        now = time.time()
        rows, members = [], []
        for pt, res in items:
            res = representable_result(pt, res)
            m = res.get("metrics") or {}
            hw_kind = (pt.hardware or {}).get("kind")
            rows.append((
                pt.key, res["status"], res.get("error"), pt.workload, hw_kind, _json(pt.hardware), _json(pt.recipe),
                version, *[_num(m.get(c)) for c in METRIC_COLUMNS], _json(m) if m else None,
                res.get("elapsed_s"), res.get("worker"), run_id, now,
            ))
            members.append((sweep, pt.key, pt.index, _json(pt.params)))
        cols = ("key, status, error, workload, hardware_kind, hardware_json, compression_json, version, "
                + ", ".join(METRIC_COLUMNS) + ", metrics_json, elapsed_s, worker, run_id, created_at")
        marks = ",".join("?" * (8 + len(METRIC_COLUMNS) + 5))
        update = ", ".join(f"{c}=excluded.{c}" for c in cols.split(", ") if c != "key")
        with self._tx():
            self.conn.executemany(
                f"INSERT INTO points ({cols}) VALUES ({marks}) ON CONFLICT(key) DO UPDATE SET {update} "
                "WHERE points.status NOT IN ('ok', 'invalid')", rows)
            self.conn.executemany("INSERT OR IGNORE INTO members VALUES (?,?,?,?)", members)
            self.conn.executemany("DELETE FROM claims WHERE key = ?", [(r[0],) for r in rows])

    # --- claims -------------------------------------------------------------------------
    def claim(self, keys: Sequence[str], owner: str, *, lease_s: float = LEASE_S,
              active: Iterable[str] = ()) -> tuple[list[str], list[str], list[str]]:
        """Claim ``keys`` for ``owner`` (``"<process identity>/<run id>"``) in one transaction.

        Returns ``(granted, finished, busy)``: the keys now claimed by ``owner`` (new claims and its
        own), the keys stored as ``ok``/``invalid`` meanwhile (nothing to compute), and the keys
        another live run is computing (wait for them; claim again later). A claim is taken over
        when its owner is gone: on this machine when its process no longer runs (exact, at once:
        see :mod:`accelsim._proc`), or a run of this process not in ``active``; a claim made on
        another machine when its lease (renewed by :meth:`renew`) has expired. A point is never
        lost (a dead owner's claims are taken over) and two live runs never compute it both.
        """
        from .._proc import identity, is_alive

        me = identity()
        active_set = set(active)
        granted: list[str] = []
        finished: list[str] = []
        busy: list[str] = []
        alive_of: dict[str, bool | None] = {}
        now = time.time()
        with self._tx():
            for i in range(0, len(keys), 500):
                chunk = list(keys[i:i + 500])
                marks = ",".join("?" * len(chunk))
                done = {k for (k,) in self.conn.execute(
                    f"SELECT key FROM points WHERE key IN ({marks}) AND status IN ('ok', 'invalid')", chunk)}
                held = {k: (o, exp) for k, o, exp in self.conn.execute(
                    f"SELECT key, owner, expires_at FROM claims WHERE key IN ({marks})", chunk)}
                take = []
                for k in chunk:
                    if k in done:
                        finished.append(k)
                        continue
                    if k in held and held[k][0] != owner:
                        other, expires = held[k]
                        proc, _, run = other.partition("/")
                        if proc == me:
                            gone = run not in active_set
                        else:
                            if proc not in alive_of:
                                alive_of[proc] = is_alive(proc)
                            alive = alive_of[proc]
                            gone = alive is False or (alive is None and expires < now)
                        if not gone:
                            busy.append(k)
                            continue
                    take.append((k, owner, now + lease_s))
                    granted.append(k)
                self.conn.executemany("INSERT INTO claims VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                                      "owner=excluded.owner, expires_at=excluded.expires_at", take)
        return granted, finished, busy

    def renew(self, owner: str, *, lease_s: float = LEASE_S) -> None:
        """Extend the lease of every claim of ``owner`` (the heartbeat of a run)."""
        with self._tx():
            self.conn.execute("UPDATE claims SET expires_at = ? WHERE owner = ?", (time.time() + lease_s, owner))

    def release(self, owner: str) -> None:
        """Drop every claim of ``owner`` (a run that ends, finished or not)."""
        with self._tx():
            self.conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def claims_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0])

    def add_members(self, sweep: str, points: Iterable[Any]) -> None:
        """Record that ``sweep`` also asked for these (already stored) points."""
        with self._tx():
            self.conn.executemany("INSERT OR IGNORE INTO members VALUES (?,?,?,?)",
                                  [(sweep, p.key, p.index, _json(p.params)) for p in points])

    # --- reading ------------------------------------------------------------------------
    def status_of(self, keys: Sequence[str]) -> dict[str, str]:
        """``key -> status`` for the keys already stored (queried in chunks; memory stays small)."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i:i + 500])
            q = f"SELECT key, status FROM points WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.conn.execute(q, chunk).fetchall()))
        return out

    def fill_metrics(self, updates: dict[str, dict[str, Any]], missing: str) -> list[str]:
        """Merge ``updates[key]`` into the metrics of stored ``ok`` points that lack the metric ``missing``
        (e.g. a measured accuracy that arrives on a rerun), in one transaction: read, merge and write under
        the write lock, so concurrent fills neither lose nor duplicate anything. Returns the keys changed."""
        changed: list[str] = []
        keys = [k for k, m in updates.items() if m.get(missing) is not None]
        with self._tx():
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, metrics_json FROM points WHERE status = 'ok' AND key IN ({','.join('?' * len(chunk))})"
                for k, mj in self.conn.execute(q, chunk).fetchall():
                    old = json.loads(mj) if mj else {}
                    if old.get(missing) is not None:
                        continue
                    m = {**old, **updates[k]}
                    sets = [c for c in METRIC_COLUMNS if c in updates[k]]
                    self.conn.execute(f"UPDATE points SET metrics_json = ?{''.join(f', {c} = ?' for c in sets)} WHERE key = ?",
                                      (_json(m), *[_num(m[c]) for c in sets], k))
                    changed.append(k)
        return changed

    def metrics_of(self, keys: Sequence[str]) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """``key -> (status, metrics)`` for stored keys."""
        out: dict[str, tuple[str, dict[str, Any] | None]] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i:i + 500])
            q = f"SELECT key, status, metrics_json FROM points WHERE key IN ({','.join('?' * len(chunk))})"
            for k, st, mj in self.conn.execute(q, chunk):
                out[k] = (st, json.loads(mj) if mj else None)
        return out

    def count(self, sweep: str | None = None, status: str | None = None) -> int:
        q = "SELECT COUNT(*) FROM points p"
        args: list[Any] = []
        conds = []
        if sweep is not None:
            q += " JOIN members m ON m.key = p.key"
            conds.append("m.sweep = ?")
            args.append(sweep)
        if status is not None:
            conds.append("p.status = ?")
            args.append(status)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        return int(self.conn.execute(q, args).fetchone()[0])

    def iter_rows(self, sweep: str | None = None, version: str | None = None,
                  status: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows as flat dicts: point columns + that sweep's axis values + every metric."""
        if sweep is not None:
            q = ("SELECT p.*, m.sweep AS sweep, m.point_index AS point_index, m.params_json AS params_json "
                 "FROM points p JOIN members m ON m.key = p.key WHERE m.sweep = ?")
            args: list[Any] = [sweep]
        else:
            q = ("SELECT p.*, m.sweep AS sweep, m.point_index AS point_index, m.params_json AS params_json "
                 "FROM points p LEFT JOIN members m ON m.rowid = (SELECT MIN(rowid) FROM members WHERE key = p.key) "
                 "WHERE 1=1")
            args = []
        if version is not None:
            q += " AND p.version = ?"
            args.append(version)
        if status is not None:
            q += " AND p.status = ?"
            args.append(status)
        q += " ORDER BY p.rowid"
        cur = self.conn.execute(q, args)
        names = [d[0] for d in cur.description]
        for raw in cur:
            row = dict(zip(names, raw))
            params = json.loads(row.pop("params_json") or "{}")
            metrics = json.loads(row.pop("metrics_json") or "{}")
            out = {k: v for k, v in row.items() if k not in METRIC_COLUMNS}
            out.update(params)
            for c in METRIC_COLUMNS:
                out[c] = row[c]
            out.update(metrics)
            yield out

    def iter_columns(self, sweep: str, metrics: Sequence[str], *, version: str | None = None, status: str = "ok",
                     batch: int = 2000):  # type: ignore[no-untyped-def]
        """``sweep``'s points as DataFrames of at most ``batch`` rows (0: one frame): key, workload,
        axis values and the named metrics only."""
        import pandas as pd

        sel = []
        for m in metrics:
            if m in METRIC_COLUMNS:
                sel.append(f"p.{m}")
            else:
                sel.append(f"json_extract(p.metrics_json, '$.\"{m}\"')")
        q = ("SELECT p.key, p.workload, m.params_json" + "".join(f", {s}" for s in sel) +
             " FROM points p JOIN members m ON m.key = p.key WHERE m.sweep = ? AND p.status = ?")
        args: list[Any] = [sweep, status]
        if version is not None:
            q += " AND p.version = ?"
            args.append(version)
        q += " ORDER BY m.point_index, p.rowid"
        cur = self.conn.execute(q, args)
        while True:
            raws = cur.fetchmany(batch) if batch else cur.fetchall()
            if not raws:
                break
            rows = []
            for raw in raws:
                row = {"key": raw[0], "workload": raw[1]}
                row.update(json.loads(raw[2] or "{}"))
                for name, v in zip(metrics, raw[3:]):
                    row[name] = float("nan") if v is None else v
                rows.append(row)
            yield pd.DataFrame(rows)
            if not batch:
                break

    def columns_frame(self, sweep: str, metrics: Sequence[str], *, version: str | None = None,
                      status: str = "ok"):  # type: ignore[no-untyped-def]
        """A slim DataFrame of ``sweep``'s points: key, workload, axis values and the named metrics only."""
        import pandas as pd

        parts = list(self.iter_columns(sweep, metrics, version=version, status=status, batch=0))
        if not parts:
            cols = ["key", "workload"] + list(dict.fromkeys(self.param_names(sweep))) + list(metrics)
            return pd.DataFrame(columns=cols)
        return parts[0]

    def sweeps(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sweeps ORDER BY updated_at")]

    def runs(self):  # type: ignore[no-untyped-def]
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM runs ORDER BY started_at", self.conn)

    def spec_of(self, sweep: str) -> dict[str, Any] | None:
        """The stored spec of ``sweep`` (with its ``_resolved`` section), or None."""
        row = self.conn.execute("SELECT spec_json FROM sweeps WHERE name = ?", (sweep,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def save_search_info(self, sweep: str, run_id: str, info: dict[str, Any]) -> None:
        """Keep what a search learned beyond its points (aggregate weights, surrogate errors), latest run wins."""
        with self._tx():
            self.conn.execute("INSERT INTO search_info VALUES (?,?,?,?) ON CONFLICT(sweep) DO UPDATE SET "
                              "run_id=excluded.run_id, info_json=excluded.info_json, created_at=excluded.created_at",
                              (sweep, run_id, _json(info), time.time()))

    def search_info(self, sweep: str) -> dict[str, Any] | None:
        """What the latest differentiable / aggregate run of ``sweep`` stored (``workload_weights``, ...), or None."""
        row = self.conn.execute("SELECT info_json FROM search_info WHERE sweep = ?", (sweep,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def param_names(self, sweep: str) -> list[str]:
        """The axis names of ``sweep`` (from its stored spec)."""
        row = self.conn.execute("SELECT spec_json FROM sweeps WHERE name = ?", (sweep,)).fetchone()
        if row is None or not row[0]:
            return []
        return list((json.loads(row[0]).get("axes") or {}).keys())


def load(path: str | Path, *, sweep: str | None = None, status: str | None = None, version: str | None = None):  # type: ignore[no-untyped-def]
    """The store at ``path`` as a pandas DataFrame (one row per point).

    ``sweep`` keeps the points that sweep asked for (with its axis values); ``status`` filters
    (``ok``, ``invalid``, ``error``); ``version`` keeps one simulator version. Columns: ``key``,
    ``status``, ``error``, ``workload``, ``hardware_kind``, ``hardware_json``, ``compression_json``,
    ``version``, ``sweep``, ``point_index``, the axis values (by dotted path) and every metric.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise ConfigError("results store not found", source=str(p))
    with ResultsStore(p) as store:
        rows = list(store.iter_rows(sweep=sweep, status=status, version=version))
    return pd.DataFrame(rows)


def export(path: str | Path, out: str | Path, *, sweep: str | None = None, status: str | None = None,
           version: str | None = None, batch: int = 1000) -> Path:
    """Write the store as CSV (``.csv``) or Parquet (``.parquet``, needs pyarrow); returns ``out``.

    Streamed: rows are read from the store and written ``batch`` at a time, so memory does not
    grow with the number of points. Two passes over one read snapshot (a sweep writing meanwhile
    changes neither): the first finds the columns (in order of first appearance, as :func:`load`)
    and, for Parquet, each column's type; the second writes. CSV cells: empty for a missing value
    or NaN, ``str(value)`` otherwise. Parquet types: bool, int64, float64 (ints and floats
    mixed), string (text, or anything else written as text), null (no value at all).
    """
    from .._validation import atomic_write_bytes

    p = Path(path)
    if not p.exists():
        raise ConfigError("results store not found", source=str(p))
    o = Path(out)
    suffix = o.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("Parquet export needs pyarrow (pip install pyarrow)", source=str(o)) from None
    elif suffix != ".csv":
        raise ConfigError(f"unknown export format {suffix!r}; expected .csv or .parquet", source=str(o))
    with ResultsStore(p) as store:
        store.conn.execute("BEGIN")  # one snapshot for both passes
        try:
            kinds: dict[str, set[type]] = {}
            for row in store.iter_rows(sweep=sweep, status=status, version=version):
                for k, v in row.items():
                    seen = kinds.setdefault(k, set())
                    if v is not None and not (isinstance(v, float) and v != v):
                        seen.add(type(v))
            rows = store.iter_rows(sweep=sweep, status=status, version=version)
            if suffix == ".csv":
                atomic_write_bytes(o, lambda tmp: _write_csv(tmp, list(kinds), rows))
            else:
                atomic_write_bytes(o, lambda tmp: _write_parquet(tmp, kinds, rows, batch))
        finally:
            store.conn.execute("COMMIT")
    return o


def _csv_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v)


def _write_csv(tmp: str, columns: list[str], rows: Iterator[dict[str, Any]]) -> None:
    import csv
    import os

    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        if columns:
            w.writerow(columns)
        for row in rows:
            w.writerow([_csv_cell(row.get(c)) for c in columns])
        fh.flush()
        os.fsync(fh.fileno())


def _arrow_type(kinds: set[type]):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    if not kinds:
        return pa.null()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _arrow_cell(v: Any, typ: Any) -> Any:
    import pyarrow as pa

    if typ == pa.float64():
        return None if v is None else float(v)
    if v is None or (isinstance(v, float) and v != v):
        return None
    if typ == pa.string() and not isinstance(v, str):
        return _json(v) if isinstance(v, (dict, list)) else str(v)
    return v


def _write_parquet(tmp: str, kinds: dict[str, set[type]], rows: Iterator[dict[str, Any]], batch: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, _arrow_type(k)) for c, k in kinds.items()])
    types = {f.name: f.type for f in schema}
    with pq.ParquetWriter(tmp, schema) as writer:
        while True:
            part = list(islice(rows, batch))
            if part:
                cols = {c: [_arrow_cell(r.get(c), types[c]) for r in part] for c in kinds}
                writer.write_table(pa.Table.from_pydict(cols, schema=schema))
            if len(part) < batch:
                break
