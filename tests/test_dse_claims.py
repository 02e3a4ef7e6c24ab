"""Runs sharing a results store claim points, so no point is computed twice; a SIGKILLed run's
claims are taken over (its points are neither lost nor duplicated). Real processes throughout."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from accelsim.dse import load, run_sweep
from accelsim.dse.store import ResultsStore

ROOT = Path(__file__).resolve().parent.parent
AXES = {"rows": [8, 16, 32, 64, 128, 256], "cols": [8, 16, 32, 64, 128, 256],
        "dram.bw_gbps": [6.4, 12.8, 25.6, 51.2]}
TOTAL = 6 * 6 * 4


def _sweep(tmp_path: Path, name: str, **over) -> Path:
    spec = {"name": name, "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": [{"zoo": "resnet18", "resolution": 64}], "axes": AXES, "chunk_size": 2, **over}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def _start(sweep: Path, db: Path, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "accelsim.cli", "sweep", str(sweep), "--store", str(db), "--workers", str(workers),
           "--no-progress"]
    return subprocess.Popen(cmd, cwd=sweep.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _q(db: Path, sql: str, *args):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _wait_points(db: Path, n: int, procs: list[subprocess.Popen], run_of: subprocess.Popen | None = None) -> None:
    """Poll until ``n`` points are stored (by the run of ``run_of`` if given); a bound on hangs, not a speed."""
    limit = time.monotonic() + 300
    while time.monotonic() < limit and all(p.poll() is None for p in procs):
        rows = _q(db, "SELECT run_id, COUNT(*) FROM points GROUP BY run_id")
        counts = dict(rows)
        runs = [r for r, in _q(db, "SELECT run_id FROM runs ORDER BY started_at")]
        if run_of is not None:
            got = counts.get(runs[-1], 0) if len(runs) >= 2 else 0
        else:
            got = sum(counts.values())
        if got >= n:
            return
        time.sleep(0.05)
    pytest.fail("the sweeps ended or hung before the point to act: "
                + " | ".join((p.stderr.read() or "")[-300:] for p in procs if p.poll() is not None))


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-800:]
    return out


def _kill_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def test_two_runs_of_one_sweep_share_the_work(tmp_path):
    sweep, db = _sweep(tmp_path, "shared"), tmp_path / "s.sqlite"
    a = _start(sweep, db, 1)
    procs = [a]
    try:
        _wait_points(db, 8, procs)  # A is running and has stored a few points ...
        b = _start(sweep, db, 1)    # ... when B starts on the same points
        procs.append(b)
        _finish(a), _finish(b)
    finally:
        _kill_all(procs)
    with ResultsStore(db) as st:
        runs = st.runs()
        assert st.claims_count() == 0
    assert len(runs) == 2 and runs["finished_at"].notna().all()
    assert runs["started_at"].iloc[1] < runs["finished_at"].iloc[0], "B started after A ended: no overlap tested"
    # every point simulated exactly once over both runs, and each run stored what it simulated
    assert int(runs["evaluated"].sum()) == TOTAL
    per_run = dict(_q(db, "SELECT run_id, COUNT(*) FROM points GROUP BY run_id"))
    assert {r: int(e) for r, e in zip(runs["run_id"], runs["evaluated"]) if e} == per_run
    df = load(db, sweep="shared")
    assert len(df) == TOTAL and df["key"].is_unique and (df["status"] == "ok").all()


def test_sigkill_of_one_run_its_claims_are_taken_over(tmp_path):
    # A and B overlap in half their points (bandwidths 25.6 and 51.2); A is SIGKILLed mid-run
    a_sw = _sweep(tmp_path, "a")
    b_sw = _sweep(tmp_path, "b", axes={**AXES, "dram.bw_gbps": [25.6, 51.2, 102.4, 204.8]})
    db = tmp_path / "k.sqlite"
    a = _start(a_sw, db, 2)
    procs = [a]
    try:
        _wait_points(db, 10, procs)
        b = _start(b_sw, db, 1)
        procs.append(b)
        _wait_points(db, 4, procs, run_of=b)  # both are computing now
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=60)
        _finish(b)
    finally:
        _kill_all(procs)
    runs = _q(db, "SELECT run_id, sweep, evaluated FROM runs ORDER BY started_at")
    (a_run, _, a_eval), (b_run, _, b_eval) = runs
    assert a_eval is None  # killed: never wrote its end
    per_run = dict(_q(db, "SELECT run_id, COUNT(*) FROM points GROUP BY run_id"))
    assert per_run[b_run] == b_eval  # B stored each point it simulated: none overwritten, none twice
    b_df = load(db, sweep="b")
    assert len(b_df) == TOTAL and b_df["key"].is_unique and (b_df["status"] == "ok").all()
    # A's rerun completes A: only the points nobody stored are simulated
    stored_before = sum(per_run.values())
    again = run_sweep(a_sw, db, workers=1)
    a_df = load(db, sweep="a")
    assert len(a_df) == TOTAL and (a_df["status"] == "ok").all()
    all_points = _q(db, "SELECT COUNT(*) FROM points")[0][0]
    assert all_points == TOTAL + TOTAL // 2  # the union of both sweeps, each point once
    assert again.evaluated == all_points - stored_before and again.errors == 0
    assert _q(db, "SELECT COUNT(*) FROM claims")[0][0] == 0


def test_claim_rules(tmp_path):
    """Hand cases of ResultsStore.claim: own, live other, dead other, other machine (lease), finished."""
    from accelsim._proc import identity

    db = tmp_path / "c.sqlite"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_id = identity(dead.pid)
    dead.wait()
    me = identity()
    with ResultsStore(db) as st:
        g, f, b = st.claim(["k1", "k2"], f"{me}/r1", active={"r1"})
        assert (g, f, b) == (["k1", "k2"], [], [])
        assert st.claim(["k1"], f"{me}/r1", active={"r1"}) == (["k1"], [], [])  # own claim: still mine
        assert st.claim(["k1"], f"{me}/r2", active={"r1", "r2"}) == ([], [], ["k1"])  # live run of this process
        assert st.claim(["k1"], f"{me}/r2", active={"r2"}) == (["k1"], [], [])  # r1 ended without releasing
        st.conn.execute("INSERT INTO claims VALUES ('k3', ?, ?)", (f"{dead_id}/x", time.time() + 1e6))
        assert st.claim(["k3"], f"{me}/r2", active={"r2"}) == (["k3"], [], [])  # dead process: taken at once
        st.conn.execute("INSERT INTO claims VALUES ('k4', 'elsewhere0001:1:1/x', ?)", (time.time() + 1e6,))
        assert st.claim(["k4"], f"{me}/r2", active={"r2"}) == ([], [], ["k4"])  # other machine, lease valid
        st.conn.execute("UPDATE claims SET expires_at = ? WHERE key = 'k4'", (time.time() - 1,))
        assert st.claim(["k4"], f"{me}/r2", active={"r2"}) == (["k4"], [], [])  # lease expired
        st.conn.execute("INSERT INTO points (key, status, workload, version) VALUES ('k5', 'ok', 'w', 'v')")
        assert st.claim(["k5"], f"{me}/r2", active={"r2"}) == ([], ["k5"], [])  # finished meanwhile
        st.release(f"{me}/r2")
        assert st.claims_count() == 1  # k2, still r1's
        st.release(f"{me}/r1")
        assert st.claims_count() == 0
