"""``results --export`` streams: the Python memory it needs does not grow with the store."""
from __future__ import annotations

import hashlib
import tracemalloc
from types import SimpleNamespace

import pandas as pd
import pytest

from accelsim.dse.store import ResultsStore, export, load

N_ROWS = 12_000
#: peak Python allocations allowed while exporting N_ROWS points (loading them all first, as
#: before, peaked at 33 MB for 12k rows and grows with the rows; streaming stays flat)
PEAK_LIMIT_MB = 8.0


def _make_store(path, n: int) -> None:
    metrics_names = [f"energy_{c}_pj" for c in ("mac", "sram", "dram", "noc", "leak", "ctrl")]
    with ResultsStore(path) as st:
        for start in range(0, n, 2000):
            items = []
            for i in range(start, min(n, start + 2000)):
                key = hashlib.sha256(str(i).encode()).hexdigest()
                hw = {"kind": "systolic", "rows": 8 << (i % 6), "cols": 8 << (i // 6 % 6), "dram": {"bw_gbps": 12.8}}
                pt = SimpleNamespace(key=key, workload="resnet18", hardware=hw, recipe=None, index=i,
                                     params={"rows": hw["rows"], "cols": hw["cols"], "dataflow": "os" if i % 2 else "ws"})
                if i % 97 == 0:
                    res = {"status": "invalid", "error": f"rows {i} too large"}
                else:
                    m = {"latency_cycles": 1000 + i, "latency_ms": (1000 + i) / 1e6, "energy_pj": 5.0e6 + i,
                         "energy_uj": 5.0 + i / 1e6, "edp_uj_ms": 0.005, "area_mm2": 1.5, "utilization": 0.5,
                         **{name: float(i * j) for j, name in enumerate(metrics_names)}}
                    res = {"status": "ok", "metrics": m, "elapsed_s": 0.01, "worker": "w0"}
                items.append((pt, res))
            st.record("big", items, version="v1", run_id="r")


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("export") / "big.sqlite"
    _make_store(db, N_ROWS)
    return db


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_memory_is_bounded(big_store, tmp_path, suffix):
    out = tmp_path / f"all{suffix}"
    export(big_store, tmp_path / f"warm{suffix}", sweep="none")  # imports (pyarrow) are not the export's data
    peak = _peak_mb(lambda: export(big_store, out, sweep="big"))
    assert peak < PEAK_LIMIT_MB, f"export of {N_ROWS} rows peaked at {peak:.1f} MB of Python allocations"
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    ref = load(big_store, sweep="big")
    assert len(back) == N_ROWS and list(back.columns) == list(ref.columns)
    assert back["key"].tolist() == ref["key"].tolist()
    assert (back["status"] == "invalid").sum() == len(range(0, N_ROWS, 97))
    pd.testing.assert_series_equal(back["energy_pj"], ref["energy_pj"], check_dtype=False)
    pd.testing.assert_series_equal(back["energy_leak_pj"], ref["energy_leak_pj"], check_dtype=False)
    assert back["rows"].tolist() == ref["rows"].tolist()


def test_export_empty_and_filtered(big_store, tmp_path):
    out = export(big_store, tmp_path / "none.csv", sweep="no such sweep")
    assert out.read_text() == ""
    pq = export(big_store, tmp_path / "inv.parquet", sweep="big", status="invalid")
    back = pd.read_parquet(pq)
    assert len(back) == len(range(0, N_ROWS, 97)) and set(back["status"]) == {"invalid"}
