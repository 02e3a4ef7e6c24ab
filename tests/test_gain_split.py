"""compare_dense on a searched-mapping systolic array: the dense baseline uses the same mapper, and the
gain vs the dense workload in SCALE-Sim fold order splits into mapping x compression."""
from __future__ import annotations

import pytest

import accelsim
from accelsim.api import fold_order_hardware
from accelsim.hardware.io import load_hardware
from accelsim.report import GainSplit
from accelsim.workload import Compression, Conv2d, Linear, Quant, Workload

HW = "hw_configs/systolic_32x32_is.yaml"


def _wl(compressed: bool) -> Workload:
    comp = Compression(quant=Quant(weight_bits=4, act_bits=8)) if compressed else Compression()
    return Workload(name="w", layers=[
        Conv2d(name="conv", in_channels=16, out_channels=48, in_h=14, in_w=14, kernel=3, padding=1, compression=comp),
        Linear(name="fc", in_features=512, out_features=256, tokens=1, compression=comp),
    ])


@pytest.fixture(scope="module")
def searched(root):
    return load_hardware(root / HW)


def test_dense_baseline_uses_the_same_mapper(searched):
    assert searched.mapping == "search"
    rep = accelsim.simulate(_wl(True), searched, compare_dense=True)
    dense = accelsim.simulate(_wl(False), searched, compare_dense=False)
    fold = accelsim.simulate(_wl(False), fold_order_hardware(searched), compare_dense=False)
    assert rep.dense_latency_cycles == dense.latency_cycles and rep.dense_energy_pj == pytest.approx(dense.energy_pj)
    assert all("scalesim" not in s.mapping for s in dense.layers if s.macs)  # searched loop nests, not the fold order
    assert rep.dense_fold_latency_cycles == fold.latency_cycles
    assert rep.dense_fold_energy_pj == pytest.approx(fold.energy_pj)
    for s, d, f in zip(rep.layers, dense.layers, fold.layers):
        assert (s.dense_latency_cycles, s.fold_latency_cycles) == (d.latency_cycles, f.latency_cycles)


def test_factors_multiply_to_the_total(searched):
    rep = accelsim.simulate(_wl(True), searched, compare_dense=True)
    for split in [rep.gain_split, *(s.gain_split for s in rep.layers)]:
        assert split is not None
        assert split.mapping_speedup * split.compression_speedup == pytest.approx(split.total_speedup, rel=1e-12)
        assert split.mapping_energy_saving * split.compression_energy_saving == pytest.approx(
            split.total_energy_saving, rel=1e-12)
    s = rep.summary()
    assert s["speedup_vs_dense_fold"] == pytest.approx(rep.dense_fold_latency_cycles / rep.latency_cycles)
    assert s["mapping_speedup"] == pytest.approx(rep.dense_fold_latency_cycles / rep.dense_latency_cycles)
    assert s["compression_speedup"] == pytest.approx(rep.dense_latency_cycles / rep.latency_cycles)
    assert s["compression_speedup"] > 1.0  # 4-bit weights: the fc layer is DRAM-bound on half the weight bits
    cols = rep.to_frame().columns
    assert {"dense_fold_latency_cycles", "mapping_speedup", "compression_speedup", "mapping_energy_saving"} <= set(cols)
    text = rep.summary_text()
    assert "from mapping" in text and "from compression" in text


def test_dense_workload_has_compression_factor_one(searched):
    rep = accelsim.simulate(_wl(False), searched, compare_dense=True)
    split = rep.gain_split
    assert split.compression_speedup == 1.0 and split.compression_energy_saving == pytest.approx(1.0)
    assert split.mapping_speedup == pytest.approx(split.total_speedup)


def test_fold_order_config_has_mapping_factor_one(searched):
    fold_hw = fold_order_hardware(searched)
    assert fold_hw.mapping == "scalesim" and fold_order_hardware(fold_hw) is fold_hw
    assert fold_hw.model_dump(exclude={"mapping"}) == searched.model_dump(exclude={"mapping"})
    rep = accelsim.simulate(_wl(True), fold_hw, compare_dense=True)
    split = rep.gain_split
    assert split.mapping_speedup == 1.0 and split.mapping_energy_saving == 1.0
    assert split.compression_speedup == pytest.approx(split.total_speedup)


def test_kinds_without_a_mapping_choice_have_no_split(root):
    gs = load_hardware(root / "hw_configs" / "gather_scatter_sve128.yaml")
    assert fold_order_hardware(gs) is None
    assert fold_order_hardware(load_hardware(root / "hw_configs" / "isaac_like.yaml")) is None


def test_a_loss_is_spelled_out():
    # dense fold 100 cycles -> dense searched 50 (2x from mapping) -> compressed 80 (0.625x: 1.6x slower)
    split = GainSplit.of(100, 50, 80, 10e6, 8e6, 10e6)
    assert (split.mapping_speedup, split.compression_speedup, split.total_speedup) == (2.0, 0.625, 1.25)
    text = split.text()
    assert "1.25x faster than dense in fold order" in text
    assert "2.00x from mapping x 0.62x from compression (compression alone: 1.60x slower)" in text
    assert "same energy" in text and "1.25x from mapping x 0.80x from compression (compression alone: 1.25x more energy)" in text


def test_cli_objective_and_gain_footer(root, capsys):
    from accelsim.cli import main

    wl = str(root / "models" / "tiny_cnn.yaml")
    assert main(["simulate", "-w", wl, "--hw", str(root / HW), "--objective", "energy", "--compare-dense"]) == 0
    out = capsys.readouterr().out
    assert "searched mappings (energy)" in out
    assert "vs dense in SCALE-Sim fold order (mapping x compression)" in out and "1.00x from compression" in out
    gs = str(root / "hw_configs" / "gather_scatter_sve128.yaml")
    assert main(["simulate", "-w", wl, "--hw", gs, "--objective", "energy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objective" in err and "gather_scatter" in err
