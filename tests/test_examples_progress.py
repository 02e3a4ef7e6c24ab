"""Issue 13 item 9: the long example scripts print a line per step with the elapsed time (stderr)."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^\[\s*(\d+)(?:/(\d+))? +(\d+\.\d) s\] (.+)$")


def _import(name: str):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_progress_lines(capsys, monkeypatch):
    monkeypatch.delenv("ACCELSIM_QUIET", raising=False)
    prog = _import("_progress").Progress(total=12)
    prog.step("first")
    prog.step("second")
    err = capsys.readouterr().err.splitlines()
    m = [LINE.match(line) for line in err]
    assert all(m) and [x.group(1) for x in m] == ["1", "2"] and m[0].group(2) == "12"
    assert m[1].group(4) == "second" and float(m[1].group(3)) >= float(m[0].group(3))
    monkeypatch.setenv("ACCELSIM_QUIET", "1")
    _import("_progress").Progress().step("silent")
    assert capsys.readouterr().err == ""


def test_digits_example_reports_each_step(capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    monkeypatch.delenv("ACCELSIM_QUIET", raising=False)
    demo = _import("digits_compression")
    names = ["unstructured 20%", "int4 per-channel"]
    demo.run(seed=0, epochs=1, finetune_epochs=1, variants=names, max_steps=2)
    lines = [LINE.match(line) for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and all(lines) and {m.group(2) for m in lines} == {"4"}
    assert lines[1].group(4).startswith("dense model trained")
    assert [m.group(4).split(":")[0] for m in lines[2:]] == names


def test_fpga_example_reports_each_step(capsys, monkeypatch):
    pytest.importorskip("scipy")
    monkeypatch.delenv("ACCELSIM_QUIET", raising=False)
    hao = _import("fpga_hao")
    monkeypatch.setattr(sys, "argv", ["fpga_hao.py", "--model", "tiny_cnn"])
    assert hao.main() == 0
    lines = [LINE.match(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 5 and all(lines)
    assert lines[-1].group(4) == "pipeline integer program solved"


def test_sparse_trends_has_progress_per_simulation():
    src = (ROOT / "examples" / "sparse_trends.py").read_text()
    calls = src.count("accelsim.simulate(")
    assert calls >= 4 and src.count("PROGRESS.step(") == calls  # every simulation is followed by its line
