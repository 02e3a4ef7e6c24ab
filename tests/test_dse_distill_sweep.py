"""search: {method: distill} in a sweep file: validation, stored points, budget (accelsim.dse.distill)."""
from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.dse.spec import load_sweep
from accelsim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
HW = str(ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml")


def _sweep(**search):
    return {"accelsim_sweep": 1, "name": "d", "hardware": HW, "search": {"method": "distill", **search}}


@pytest.mark.parametrize("data, field, words", [
    (_sweep(), "search.distill", "search.distill section"),
    (_sweep(distill={"epochs": 2}), "search.distill", "budget"),
    (_sweep(distill={"max_macs": 0}), "search.distill.max_macs", "greater than 0"),
    (_sweep(distill={"max_macs": 100, "kernels": [2]}), "search.distill", "odd"),
    (_sweep(distill={"max_macs": 100, "ops": ["pool"]}), "search.distill.ops", "conv"),
    (_sweep(distill={"max_macs": 100, "epoch": 3}), "search.distill.epoch", ""),
    ({**_sweep(distill={"max_macs": 100}), "workloads": ["zoo:tiny_cnn"]}, "workloads", "drop workloads"),
    ({**_sweep(distill={"max_macs": 100}), "axes": {"rows": [8, 16]}}, "axes", "drop axes"),
    ({**_sweep(distill={"max_macs": 100}), "search": {"method": "grid", "distill": {"max_macs": 100}},
      "workloads": ["zoo:tiny_cnn"]}, "search.distill", "method distill only"),
])
def test_spec_errors_name_the_field(data, field, words):
    with pytest.raises(ConfigError) as ei:
        load_sweep(data)
    msg = str(ei.value)
    assert field in msg and words in msg and "\n" not in msg


def test_shipped_sweep_file_loads():
    sw = load_sweep(ROOT / "sweeps" / "distill_sr_digits.yaml")
    assert sw.spec.search.method == "distill" and sw.spec.search.distill.max_macs == 60000


def test_tiny_run_stores_points_within_budget(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from accelsim.dse import run_sweep
    from accelsim.dse.store import ResultsStore, load
    from accelsim.frontend import imaging as im

    budget = 3000
    data = _sweep(population=2, generations=1, distill={
        "max_macs": budget, "teacher_width": 6, "cells": 1, "widths": [2, 3, 4], "kernels": [1, 3], "ops": ["conv"],
        "epochs": 1, "proxy_epochs": 1})
    db = tmp_path / "d.sqlite"
    res = run_sweep(data, db)
    df = load(db, sweep="d", status="ok")
    assert len(df) == res.requested == res.evaluated >= 4 and len(df) == df["key"].nunique()
    roles = list(df["role"])
    assert {"teacher", "hand_shrunk", "searched"} <= set(roles) and "candidate" in roles
    students = df[df["role"] != "teacher"]
    assert (students["macs"] <= budget).all() and (students["within_budget"] == 1).all()
    for _, r in df.iterrows():  # stored MACs are the generator's and the simulator did all of them
        spec = im.GenSpec(int(r["stem"]), (im.Cell(int(r["cell0.width"]), int(r["cell0.kernel"]), r["cell0.op"]),))
        assert r["macs"] == im.count_macs(spec)
        assert r["latency_ms"] > 0 and 0 < r["utilization"] <= 1
    finals = df[df["role"] != "candidate"]
    assert finals["psnr_db"].notna().all() and df[df["role"] == "candidate"]["proxy_psnr_db"].notna().all()
    assert set(res.front["role"]) <= {"teacher", "hand_shrunk", "searched"}
    import accelsim.dse.distill as dd

    with monkeypatch.context() as mp:
        mp.setattr(dd, "distillation_search", lambda *a, **k: pytest.fail("a rerun of a stored search trained again"))
        again = run_sweep(data, db)  # a rerun finds this search stored: no training, nothing duplicated
    assert again.evaluated == 0 and again.skipped == res.requested and len(again.front) == len(res.front)
    changed = run_sweep({**data, "search": {**data["search"], "seed": 1}}, db)  # a changed search runs
    assert changed.evaluated >= 1
    with ResultsStore(db) as st:
        assert st.count() == len(df) + changed.evaluated and st.count(sweep="d") == changed.requested
        assert st.search_info("d")["method"] == "distill"
