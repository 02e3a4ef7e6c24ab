"""The front printed by a rerun is that of the sweep as it is now (an axis narrowed: the dropped
points leave the sweep's front and rows, and stay in the store)."""
from __future__ import annotations

from pathlib import Path

import yaml

from accelsim.dse import load, run_sweep
from accelsim.dse.store import ResultsStore

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, dataflows: list[str]) -> Path:
    spec = {"name": "narrow", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": [{"zoo": "resnet18", "resolution": 32}],
            "axes": {"rows": [8, 32, 128], "cols": [8, 32, 128], "dataflow": dataflows},
            "objectives": ["latency_ms", "energy_uj"]}
    p = tmp_path / "narrow.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def test_narrowed_axis_front_has_only_current_points(tmp_path):
    db = tmp_path / "n.sqlite"
    wide = run_sweep(_write(tmp_path, ["os", "ws"]), db, workers=1)
    assert wide.evaluated == 18 and "os" in set(wide.front["dataflow"])
    narrow = run_sweep(_write(tmp_path, ["ws"]), db, workers=1)
    assert narrow.evaluated == 0 and narrow.skipped == 9
    assert len(narrow.front) >= 1 and set(narrow.front["dataflow"]) == {"ws"}
    assert narrow.feasible == 9
    assert set(load(db, sweep="narrow")["dataflow"]) == {"ws"} and len(load(db, sweep="narrow")) == 9
    with ResultsStore(db) as st:
        assert st.count() == 18  # nothing deleted: the os points are still stored ...
    again = run_sweep(_write(tmp_path, ["os", "ws"]), db, workers=1)
    assert again.evaluated == 0 and again.skipped == 18  # ... and widening again simulates nothing
    assert again.front.equals(wide.front)
