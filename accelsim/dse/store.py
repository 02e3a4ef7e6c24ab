"""The results store: an embedded SQLite database (WAL mode) that never loses a finished point.

Tables:

- ``points``: one row per (workload, hardware, compression, version) -- the primary key is the
  sha256 of those four, so the same design simulated by two sweeps is stored once. Columns: status
  (``ok`` | ``invalid`` | ``error``), the error message, the canonical hardware and recipe as JSON,
  the headline metrics as columns and every metric in ``metrics_json``.
- ``members``: which sweep asked for which point, with that sweep's axis values (``params_json``).
- ``sweeps`` and ``runs``: the sweep specs and one row per ``accelsim sweep`` invocation.

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
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ConfigError

SCHEMA_VERSION = 1
#: metrics stored as their own columns (all metrics are also in metrics_json)
METRIC_COLUMNS = ("latency_cycles", "latency_ms", "energy_pj", "energy_uj", "edp_uj_ms", "area_mm2", "accuracy",
                  "utilization")
FINISHED = ("ok", "invalid")

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
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, sweep TEXT, executor TEXT, workers INTEGER, started_at REAL, finished_at REAL,
    evaluated INTEGER, skipped INTEGER, invalid INTEGER, errors INTEGER
);
"""


def _json(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


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
        now = time.time()
        with self._tx():
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


def export(path: str | Path, out: str | Path, **filters: Any) -> Path:
    """Write the store as CSV (``.csv``) or Parquet (``.parquet``, needs pyarrow); returns ``out``."""
    from .._validation import atomic_write_bytes, atomic_write_text

    df = load(path, **filters)
    o = Path(out)
    suffix = o.suffix.lower()
    if suffix == ".csv":
        atomic_write_text(o, df.to_csv(index=False))
    elif suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("Parquet export needs pyarrow (pip install pyarrow)", source=str(o)) from None
        atomic_write_bytes(o, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        raise ConfigError(f"unknown export format {suffix!r}; expected .csv or .parquet", source=str(o))
    return o
