"""Atomic writes leave no temp file behind: not on failure, and not after a SIGKILL (the next write
of the same target removes the killed writer's temp file)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelsim._proc import identity, is_alive
from accelsim._validation import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent


def _leftovers(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.startswith("."))


def test_failing_write_leaves_nothing(tmp_path):
    out = tmp_path / "report.json"

    def boom(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(out, boom)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_failing_simulate_out_leaves_nothing(tmp_path):
    # --out into a path whose temp file cannot be renamed onto (a directory): fails, exit 2, no temp
    out = tmp_path / "run.csv"
    out.mkdir()
    (out / "keep").write_text("x")
    r = subprocess.run([sys.executable, "-m", "accelsim.cli", "simulate", "--hw", str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
                        "--workload", str(ROOT / "models" / "resnet18.yaml"), "--out", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert _leftovers(tmp_path) == []


_KILLED_WRITER = """
import sys, time
from accelsim._validation import atomic_write_bytes
def slow(tmp):
    with open(tmp, "w") as fh:
        fh.write("partial"); fh.flush()
        print("writing", flush=True)
        time.sleep(600)
atomic_write_bytes(sys.argv[1], slow)
"""


def test_sigkilled_writer_temp_removed_by_next_write(tmp_path):
    out = tmp_path / "run.csv"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "writing"
        stale = _leftovers(tmp_path)
        assert len(stale) == 1 and stale[0].startswith(".run.csv.accelsim-tmp-")
        # a concurrent write by a live writer does not touch its temp file
        atomic_write_text(out, "first\n")
        assert _leftovers(tmp_path) == stale
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _leftovers(tmp_path) == stale  # SIGKILL cannot clean up ...
    other = tmp_path / "other.csv"
    atomic_write_text(other, "x\n")
    assert _leftovers(tmp_path) == stale  # ... a write of another target leaves it alone ...
    atomic_write_text(out, "second\n")
    assert _leftovers(tmp_path) == []  # ... the next write of the same target removes it
    assert out.read_text() == "second\n"


def test_process_identity():
    me = identity()
    assert is_alive(me) is True
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = identity(proc.pid)
    proc.wait()
    assert is_alive(ident) is False
    assert is_alive("otherhost0000:1:1") is None  # another machine: cannot tell
    # same pid, other start time: a later process reusing the pid, so the named one is gone
    boot, pid, start = me.split(":")
    if int(start):
        assert is_alive(f"{boot}:{pid}:{int(start) + 1}") is False
