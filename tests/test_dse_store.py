"""The results store: WAL, resume without loss or duplicates (a real SIGKILLed sweep), load/export."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from accelsim.dse import export, load, run_sweep
from accelsim.dse.store import ResultsStore
from accelsim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

KILL_SWEEP = {
    "name": "killme",
    "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
    "workloads": [{"zoo": "resnet18", "resolution": 64}],
    "axes": {"rows": [8, 16, 32, 64, 128, 256], "cols": [8, 16, 32, 64, 128, 256], "dram.bw_gbps": [12.8, 51.2]},
    "chunk_size": 2,
}


def _ok_count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path, workers):
    sweep = tmp_path / "kill.yaml"
    sweep.write_text(yaml.safe_dump(KILL_SWEEP))
    db = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-m", "accelsim.cli", "sweep", str(sweep), "--store", str(db), "--workers", str(workers),
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _ok_count(db) < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, f"sweep ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
        os.kill(proc.pid, signal.SIGKILL)  # the sweep process itself, mid-write
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its worker processes, if any outlived it
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    before = load(db)
    n_before = len(before)
    total = 6 * 6 * 2
    assert 12 <= n_before < total
    assert before["key"].is_unique and (before["status"] == "ok").all()
    first_run = before.set_index("key")[["run_id", "created_at", "latency_cycles", "energy_pj"]]

    res = run_sweep(sweep, db, workers=1)
    assert res.skipped == n_before and res.evaluated == total - n_before and res.errors == 0
    after = load(db)
    assert len(after) == total and after["key"].is_unique
    assert len(after.drop_duplicates(["rows", "cols", "dram.bw_gbps"])) == total
    # rows written before the kill are untouched
    kept = after.set_index("key").loc[first_run.index, first_run.columns]
    pd.testing.assert_frame_equal(kept, first_run)
    # integrity of the database after the kill
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM members WHERE sweep='killme'").fetchone()[0] == total
    con.close()
    # a third run simulates nothing
    again = run_sweep(sweep, db, workers=1)
    assert again.evaluated == 0 and again.skipped == total


def test_load_filters_and_exports(tmp_path):
    hw = str(ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    db = tmp_path / "s.sqlite"
    run_sweep({"name": "a", "hardware": hw, "workloads": ["zoo:tiny_cnn"], "axes": {"rows": [8, 16, 5000]}}, db, workers=1)
    run_sweep({"name": "b", "hardware": hw, "workloads": ["zoo:tiny_cnn"], "axes": {"rows": [16, 32]}}, db, workers=1)
    df = load(db)
    assert len(df) == 4 and df["key"].is_unique  # rows=16 shared by both sweeps, stored once
    assert set(df["status"]) == {"ok", "invalid"}
    assert len(load(db, sweep="a")) == 3 and len(load(db, sweep="b")) == 2
    assert len(load(db, status="ok")) == 3
    for col in ("latency_ms", "energy_uj", "edp_uj_ms", "rows", "workload", "hardware_json", "version", "energy_mac_pj"):
        assert col in df.columns, col
    csv = export(db, tmp_path / "out.csv", sweep="b")
    back = pd.read_csv(csv)
    assert len(back) == 2 and back["energy_pj"].tolist() == load(db, sweep="b")["energy_pj"].tolist()
    pq = export(db, tmp_path / "out.parquet")
    pdf = pd.read_parquet(pq)
    assert len(pdf) == 4 and pdf["latency_cycles"].dropna().astype(int).tolist() == \
        df["latency_cycles"].dropna().astype(int).tolist()
    with pytest.raises(ConfigError, match="unknown export format"):
        export(db, tmp_path / "out.xlsx")
    with pytest.raises(ConfigError, match="results store not found"):
        load(tmp_path / "nope.sqlite")


def test_version_change_reruns_points(tmp_path, monkeypatch):
    """Points from another simulator version are kept but not reused."""
    hw = str(ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    sw = {"name": "v", "hardware": hw, "workloads": ["zoo:tiny_cnn"], "axes": {"rows": [8, 16]}}
    db = tmp_path / "s.sqlite"
    run_sweep(sw, db, workers=1)
    import accelsim.dse.space as space

    monkeypatch.setattr(space, "model_version", lambda: "0.0.0+other")
    res = run_sweep(sw, db, workers=1)
    assert res.evaluated == 2 and res.skipped == 0
    df = load(db)
    assert len(df) == 4 and sorted(df["version"].unique())[0] == "0.0.0+other"
    assert len(res.front) >= 1 and len(load(db, version="0.0.0+other")) == 2


def test_not_a_database(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(ConfigError, match="not a usable results database"):
        ResultsStore(bad)
