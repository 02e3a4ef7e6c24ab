"""SIGKILL of a sweep's main process takes its pool workers with it (no orphans left computing)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from accelsim._proc import start_time

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SWEEP = {
    "name": "orphans",
    "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
    "workloads": [{"zoo": "resnet18", "resolution": 64}],
    "axes": {"rows": [8, 16, 32, 64, 128, 256], "cols": [8, 16, 32, 64, 128, 256], "dram.bw_gbps": [12.8, 51.2]},
    "chunk_size": 1,
}


def _children(pid: int) -> set[int]:
    kids: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            kids |= {int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()}
        except OSError:
            pass
    return kids


def test_sigkill_of_sweep_kills_its_workers(tmp_path):
    sweep = tmp_path / "orphans.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP))
    cmd = [sys.executable, "-m", "accelsim.cli", "sweep", str(sweep), "--store", str(tmp_path / "o.sqlite"),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    workers: set[int] = set()
    try:
        limit = time.monotonic() + 300  # generous: only bounds a hang, not a speed
        while len(workers) < 2 and time.monotonic() < limit and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 2, "the sweep's pool did not start"
        # let them be busy computing before the kill
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        limit = time.monotonic() + 120
        alive = {w for w in workers if start_time(w) is not None}
        while alive and time.monotonic() < limit:
            time.sleep(0.1)
            alive = {w for w in alive if start_time(w) is not None}
        assert not alive, f"worker processes {sorted(alive)} outlived their killed sweep"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
