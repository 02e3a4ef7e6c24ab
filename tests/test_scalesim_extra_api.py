"""The extra SCALE-Sim runs (tests/data/scalesim_extra, cases never in the reference set),
checked end to end: SCALE-Sim .cfg + layer -> accelsim.simulate -> cycles, stalls, SRAM counts."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import accelsim
from accelsim.engines.systolic import fold_plan
from accelsim.hardware import load_hardware
from accelsim.workload import Conv2d, Linear, Workload

EXTRA = Path(__file__).resolve().parent / "data" / "scalesim_extra"
with open(EXTRA / "scalesim_user_extra.csv", newline="") as fh:
    ROWS = list(csv.DictReader(fh))


def _layer(row: dict[str, str]):
    g = {k: int(row[k]) for k in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")}
    if row["is_gemm"] == "True":
        return Linear(name="g", in_features=g["ifmap_w"], out_features=g["num_filters"], tokens=g["ifmap_h"])
    return Conv2d(name="c", in_channels=g["channels"], out_channels=g["num_filters"], in_h=g["ifmap_h"], in_w=g["ifmap_w"],
                  kernel_h=g["filter_h"], kernel_w=g["filter_w"], stride=g["stride"], out_rounding="ceil")


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_extra_case_end_to_end(row):
    hw = load_hardware(EXTRA / "configs" / f"{row['case']}.cfg")
    layer = _layer(row)
    s = accelsim.simulate(Workload(name="x", layers=[layer]), hw).layers[0]
    assert s.stall_cycles == int(row["stall_cycles"])
    assert s.total_cycles == int(row["compute_cycles"])
    assert s.compute_cycles == int(row["compute_cycles"]) - int(row["stall_cycles"])
    assert s.sram_accesses["ifmap_sram_reads"] == int(row["sram_ifmap_reads"])
    assert s.sram_accesses["filter_sram_reads"] == int(row["sram_filter_reads"])
    extra = 0
    if row["dataflow"] == "os":
        plan = fold_plan(layer.gemms()[0], hw.rows, hw.cols, "os")
        extra = plan.folds * (hw.rows + hw.cols)
    assert s.sram_accesses["ofmap_sram_writes"] + extra == int(row["sram_ofmap_writes"])
    if row["bw_mode"] == "USER":
        assert s.latency_cycles == int(row["total_cycles"])
