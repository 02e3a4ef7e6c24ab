"""Worker affinity of searched points: points posing the same mapping searches run on one worker
(per-process mapping caches are hit, not rebuilt), and where a point runs never changes its result."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from accelsim.dse import run_sweep
from accelsim.dse.executors import LocalExecutor, chunk_locality
from accelsim.dse.space import locality_view, timing_view

ROOT = Path(__file__).resolve().parent.parent
BASE = {"kind": "systolic", "rows": 32, "cols": 64, "dram": {"bw_gbps": 25.6, "pj_per_bit": 8.0},
        "ifmap_sram": {"size_kb": 64.0}}


def _loc(**over):
    hw = json.loads(json.dumps(BASE))
    for k, v in over.items():
        node = hw
        *parts, last = k.split("__")
        for p in parts:
            node = node.setdefault(p, {})
        node[last] = v
    return locality_view(timing_view(hw))


def test_locality_drops_what_searches_share_and_keeps_what_they_do_not():
    ref = _loc()
    # bandwidth, clock and the shorter array edge do not change which searches a point runs
    assert _loc(dram__bw_gbps=51.2) == ref
    assert _loc(clock_mhz=500) == ref
    assert _loc(rows=16) == ref and _loc(rows=64, cols=32) == ref
    assert _loc(dram__pj_per_bit=20.0) == ref  # a price (latency objective: not in the timing view)
    # the longer edge (SRAM port width), the dataflow, SRAM sizes and an energy objective's prices do
    assert _loc(cols=128) != ref
    assert _loc(dataflow="ws") != ref
    assert _loc(ifmap_sram__size_kb=128.0) != ref
    assert _loc(objective="energy") != ref
    assert _loc(objective="energy", dram__pj_per_bit=20.0) != _loc(objective="energy")
    # the fold order has no mapping search: no locality beyond its timing key
    assert _loc(mapping="scalesim") is None


def _chunk(loc: str, n: int = 1) -> list[dict]:
    return [{"key": f"{loc}{i}", "locality": loc} for i in range(n)]


def test_routing_keeps_a_locality_on_its_worker_and_steals_only_for_an_idle_one():
    ex = LocalExecutor(2)  # no process starts before the first submit
    buf = [_chunk("a"), _chunk("a"), _chunk("b")]
    assert ex._pick(buf, 0, [0, 0]) == 0 and ex._home == {"a": 0}  # new locality -> this worker
    buf.pop(0)
    assert ex._pick(buf, 1, [1, 0]) == 1 and ex._home["b"] == 1  # worker 1 skips a's chunk for a new one
    buf.pop(1)
    assert ex._pick(buf, 0, [1, 1]) == 0  # a's next chunk goes home
    assert ex._pick(buf, 1, [1, 1]) is None and ex.stolen == 0  # busy worker 1 does not take a's chunk
    assert ex._pick(buf, 1, [1, 0]) == 0 and ex.stolen == 1  # an idle one does
    assert chunk_locality([{"timing_key": "t"}]) == "t"


def _cold() -> None:
    """Empty this process's caches of the searched path and the sweep evaluators."""
    from accelsim.dse import evaluate
    from accelsim.engines.systolic import searched
    from accelsim.mapping import search
    from accelsim.sim import pipeline

    for memo in (search._DEFAULT_CACHE, search._ORDER_CACHE, searched._LOWERED, pipeline._MEMO, evaluate._EVALUATORS):
        memo.clear()


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT key, status, metrics_json, hardware_json, worker FROM points ORDER BY key").fetchall()


def test_two_workers_give_the_one_worker_results_and_keep_localities_together(tmp_path):
    sweep = {"name": "loc", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
             "workloads": [{"zoo": "resnet18", "resolution": 32}],
             "axes": {"rows": [16, 32], "cols": [32, 64], "dataflow": ["os", "ws"], "dram.bw_gbps": [6.4, 25.6],
                      "dram.pj_per_bit": [3.9, 20.0]}}
    _cold()  # the workers fork from this process: they start with empty caches, as this process then does
    ex = LocalExecutor(2)
    try:
        two = run_sweep(sweep, tmp_path / "two.sqlite", executor=ex, chunk_size=1)
    finally:
        ex.close()
    one = run_sweep(sweep, tmp_path / "one.sqlite", workers=1)
    assert one.evaluated == two.evaluated == 32 and two.errors == 0
    a, b = _rows(tmp_path / "one.sqlite"), _rows(tmp_path / "two.sqlite")
    assert [r[:3] for r in a] == [r[:3] for r in b]  # same points, status and every metric, exactly
    # each locality (dataflow x longer array edge: 4 here) ran on one worker, but for chunks an idle worker stole
    workers: dict[tuple, set] = {}
    for _key, _st, _m, hw_json, worker in b:
        hw = json.loads(hw_json)
        workers.setdefault((hw.get("dataflow", "os"), max(hw["rows"], hw["cols"])), set()).add(worker)
    assert len(workers) == 4
    assert sum(len(w) - 1 for w in workers.values()) <= ex.stolen
