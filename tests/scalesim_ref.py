"""Helpers to turn rows of the SCALE-Sim reference CSV into accelsim objects."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from accelsim.hardware import SystolicArray, load_hardware
from accelsim.workload import LayerBase, Linear, read_scalesim_topology

REF = Path(__file__).resolve().parent / "data" / "reference"


@lru_cache(maxsize=None)
def rows() -> list[dict[str, str]]:
    with open(REF / "scalesim_cycles_visible.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=None)
def _topology(name: str):
    return read_scalesim_topology(REF / "scalesim_topologies" / "conv_nets" / f"{name}.csv")


def layer_of(row: dict[str, str]) -> LayerBase:
    topo = row["topology"]
    if topo.startswith("gemm_"):
        size = int(topo.split("_")[1])
        return Linear(name=topo, in_features=size, out_features=size, tokens=size)
    return _topology(topo).layers[int(row["layer_id"])]


def hardware_of(row: dict[str, str]) -> SystolicArray:
    hw = load_hardware(REF / "scalesim_configs" / f"{row['run_name']}.cfg")
    assert isinstance(hw, SystolicArray)
    return hw
