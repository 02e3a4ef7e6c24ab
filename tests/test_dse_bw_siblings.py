"""Sweep points that differ only in DRAM bandwidth share their mapping searches
(``SIBLING_DRAM_BW_GBPS``): the stored results are exactly those of separate searches."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from accelsim.dse import evaluate, run_sweep, runner
from accelsim.mapping import search

sys.path.insert(0, str(Path(__file__).parent))
from test_dse_locality import _cold  # noqa: E402  (empties the searched path's caches)

ROOT = Path(__file__).resolve().parent.parent


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT key, status, metrics_json FROM points ORDER BY key").fetchall()


def test_sibling_bandwidths_group_points_that_differ_only_in_bandwidth():
    hw = {"kind": "systolic", "rows": 8, "dram": {"bw_gbps": 6.4, "pj_per_bit": 8.0}}
    tasks = [{"hardware": {**hw, "name": "a"}}, {"hardware": {**hw, "dram": {"bw_gbps": 25.6, "pj_per_bit": 8.0}}},
             {"hardware": {**hw, "rows": 16}}, {"hardware": {"kind": "systolic"}},
             {"hardware": {**hw, "dram": {"bw_gbps": 51.2, "pj_per_bit": 3.9}}}, {"prepare": True, "hardware": hw}]
    assert evaluate.sibling_bandwidths(tasks) == [(6.4, 25.6), (6.4, 25.6), (), (), (), ()]


def test_sweep_results_identical_with_and_without_shared_searches(tmp_path, monkeypatch):
    sweep = {"name": "bw", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
             "workloads": [{"zoo": "resnet18", "resolution": 32}],
             "axes": {"rows": [16, 32], "dataflow": ["os", "ws"], "dram.bw_gbps": [3.2, 12.8, 51.2]}}
    shared = []
    real = search._search_variants

    def spy(layer, hiers, *a):
        shared.append(len(hiers))
        return real(layer, hiers, *a)

    monkeypatch.setattr(search, "_search_variants", spy)
    _cold()
    on = run_sweep(sweep, tmp_path / "on.sqlite", workers=1)
    n_on = len(shared)
    assert max(shared) == 3  # the three bandwidths searched in one pass
    for mod in (evaluate, runner):  # no sharing: every point searches alone
        monkeypatch.setattr(mod, "sibling_bandwidths", lambda tasks: [()] * len(tasks))
    _cold()
    shared.clear()
    off = run_sweep(sweep, tmp_path / "off.sqlite", workers=1)
    assert max(shared) == 1 and len(shared) > n_on
    assert on.evaluated == off.evaluated == 12 and on.errors == off.errors == 0
    assert _rows(tmp_path / "on.sqlite") == _rows(tmp_path / "off.sqlite")  # every stored metric, exactly
    _cold()
