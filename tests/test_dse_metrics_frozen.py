"""Stored sweep metrics are bit-identical to those of the explorer's former hand-written pricing path.

``tests/data/dse_metrics_d4de64c.json`` holds every metric stored by the small sweeps below when
run on commit e2c7944 (before the explorer called ``accelsim.simulate``): five hardware kinds,
structural and pricing-only axes, a compressed workload. Regenerate (only when a change of the
numbers is intended) with ``python tests/test_dse_metrics_frozen.py > tests/data/dse_metrics_<rev>.json``
on the reference tree.

Regenerated at d4de64c (``energy.mac_pj`` became the int8 x int8 reference MAC, other widths
scaled by the bit-width model's ratio instead of w*a/64): exactly 20 values moved, the MAC
energy (and energy, EDP, TOPS/W) of the 4-bit-weight workload under the ``energy.mac_pj`` axis;
every other stored number is unchanged bit for bit.
"""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FROZEN = ROOT / "tests" / "data" / "dse_metrics_d4de64c.json"


def _hw(name: str) -> str:
    return str(ROOT / "hw_configs" / name)


SWEEPS: dict[str, dict[str, Any]] = {
    "systolic": {"name": "frozen_systolic", "hardware": _hw("systolic_128x128_os.yaml"),
                 "workloads": [{"zoo": "resnet18", "resolution": 32}, "zoo:tiny_cnn"],
                 "axes": {"rows": [16, 64], "cols": {"same_as": "rows"}, "dataflow": ["os", "ws"],
                          "dram.pj_per_bit": [3.9, 20.0], "filter_sram.size_kb": [16, 256]}},
    "sparse": {"name": "frozen_sparse", "hardware": _hw("systolic_32x32_os_sparse.yaml"),
               "workloads": ["@TMP@/resnet18_nm24_w4.yaml", _hw("../models/resnet18.yaml")],
               "axes": {"energy.mac_pj": [0.2, 0.9], "rows": [16, 32]}},
    "crossbar": {"name": "frozen_crossbar", "hardware": _hw("isaac_like.yaml"), "workloads": ["zoo:tiny_cnn"],
                 "axes": {"dram.bw_gbps": [12.8, 25.6], "dram.pj_per_bit": [8.0, 20.0]}},
    "gather_scatter": {"name": "frozen_gs", "hardware": _hw("gather_scatter_sve128.yaml"),
                       "workloads": ["zoo:tiny_cnn"], "axes": {"dram.bw_gbps": [12.8, 25.6]}},
    "fpga": {"name": "frozen_fpga", "hardware": _hw("zu3eg.yaml"), "workloads": ["zoo:tiny_cnn"],
             "axes": {"dram.bw_gbps": [4.26, 8.0]}},
}


def stored(store: Path) -> dict[str, Any]:
    """``workload | canonical hardware JSON -> (status, metrics)`` of every point in a store."""
    con = sqlite3.connect(str(store))
    try:
        rows = con.execute("SELECT workload, hardware_json, status, metrics_json FROM points").fetchall()
    finally:
        con.close()
    # a workload file's label is its path: keep the file name only (the reference ran in another tree)
    return {f"{Path(wl).name}|{hw}": [st, json.loads(mj) if mj else None] for wl, hw, st, mj in rows}


def _compressed_workload(path: Path) -> None:
    """ResNet-18 (32x32 input) with 2:4 pruned, 4-bit convolutions (except the first)."""
    from accelsim import save_workload
    from accelsim.workload.compression import Compression, Quant, Sparsity
    from accelsim.workload.zoo import get_model

    wl = get_model("resnet18", resolution=32)
    comp = Compression(sparsity=Sparsity(kind="nm", n=2, m=4, density=0.5), quant=Quant(weight_bits=4))
    layers = [layer.model_copy(update={"compression": comp}) if layer.op == "conv2d" and layer.name != "conv1"
              else layer for layer in wl.layers]
    save_workload(wl.with_layers(layers, name="resnet18_nm24_w4"), path)


def run_all(tmp: Path) -> dict[str, Any]:
    from accelsim.dse import run_sweep

    _compressed_workload(tmp / "resnet18_nm24_w4.yaml")
    out: dict[str, Any] = {}
    for name, spec in SWEEPS.items():
        db = tmp / f"{name}.sqlite"
        spec = json.loads(json.dumps(spec).replace("@TMP@", str(tmp)))
        run_sweep(spec, db, workers=1)
        out[name] = stored(db)
    return out


def _unnamed(points: dict[str, Any]) -> dict[str, Any]:
    """Keys without the hardware's ``name``: a swept point is now named by its axis values
    (``base[rows=16,...]``), which is not part of its identity or metrics."""
    out = {}
    for key, val in points.items():
        wl, _, hw = key.partition("|")
        try:
            d = json.loads(hw)
        except ValueError:
            d = None
        if isinstance(d, dict):
            d.pop("name", None)
            hw = json.dumps(d, sort_keys=True, separators=(",", ":"))
        out[f"{wl}|{hw}"] = val
    return out


def test_stored_metrics_bit_identical_to_the_former_path(tmp_path):
    frozen = {k: _unnamed(v) for k, v in json.loads(FROZEN.read_text()).items()}
    now = {k: _unnamed(v) for k, v in run_all(tmp_path).items()}
    assert set(now) == set(frozen)
    compared = 0
    for name, points in frozen.items():
        assert set(now[name]) == set(points), name
        for key, (status, metrics) in points.items():
            st, m = now[name][key]
            assert st == status, (name, key)
            if metrics is None:
                assert m is None
                continue
            assert set(m) == set(metrics), (name, sorted(set(m) ^ set(metrics)))
            for k, v in metrics.items():
                assert repr(m[k]) == repr(v), (name, key[:60], k, m[k], v)  # bit for bit (JSON keeps floats exactly)
                compared += 1
    assert compared > 500


if __name__ == "__main__":  # regenerate on a reference tree: python tests/test_dse_metrics_frozen.py > file
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        sys.stdout.write(json.dumps(run_all(Path(d)), sort_keys=True, indent=0) + "\n")
