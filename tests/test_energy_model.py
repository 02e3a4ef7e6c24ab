"""Energy-model defects of issue 10 item 7: float accumulators, ``mac_pj`` overrides per number
format, ``technology_nm`` scaling, and the notes for compression an engine does not exploit."""
from __future__ import annotations

import math

import pytest

import accelsim
from accelsim.errors import ConfigError
from accelsim.hardware import DramConfig, SramConfig, SystolicArray
from accelsim.hardware.common import EnergyTable
from accelsim.hardware.io import hardware_from_dict
from accelsim.hardware.technology import energy_scale
from accelsim.workload import Linear, Workload
from accelsim.workload.compression import Compression, Quant


# -- 1. floating-point MACs accumulate in a floating-point adder ---------------------------------
def test_fp16_mac_is_horowitz_fp_mult_plus_fp32_add():
    e = EnergyTable()
    # Horowitz 45 nm: FP16 multiply 1.1 pJ + FP32 add 0.9 pJ (default 32-bit accumulator)
    assert e.mac_energy_pj(16, 16, "float") == pytest.approx(1.1 + 0.9)
    # FP32 MAC: 3.7 (1.1 * 2^1.75 = 3.6996) + 0.9
    assert e.mac_energy_pj(32, 32, "float") == pytest.approx(1.1 * 2 ** 1.75 + 0.9)
    # an FP16 accumulator: FP16 add 0.4 pJ
    assert EnergyTable(accumulator_bits=16).mac_energy_pj(16, 16, "float") == pytest.approx(1.1 + 0.4)
    # integer MACs keep the integer adder: 0.2 + 32 * 0.03 / 8
    assert e.mac_energy_pj(8, 8, "int") == pytest.approx(0.2 + 0.12)
    assert e.accumulate_pj("float") == pytest.approx(0.9) and e.accumulate_pj("int") == pytest.approx(0.12)


def test_fp16_layer_priced_with_fp_accumulator_end_to_end():
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4,
                   compression=Compression(quant=Quant(weight_bits=16, act_bits=16, scheme="float")))
    hw = SystolicArray(rows=2, cols=2, dataflow="os", ifmap_sram=SramConfig(size_kb=1),
                       filter_sram=SramConfig(size_kb=1), ofmap_sram=SramConfig(size_kb=1), dram=DramConfig(bw_gbps=1000))
    s = accelsim.simulate(Workload(name="t", layers=[layer]), hw, compare_dense=False).layers[0]
    assert s.macs == 128
    assert s.energy_by_component_pj["mac"] == pytest.approx(128 * 2.0)


# -- 2. a mac_pj override keeps each format's relative cost ----------------------------------------
def test_mac_pj_override_is_the_int8_reference_and_formats_scale_by_model_ratios():
    base, o = EnergyTable(), EnergyTable(mac_pj=0.5)
    ref = base.mac_energy_pj(8, 8)  # 0.32 pJ
    assert o.mac_energy_pj(8, 8) == pytest.approx(0.5)
    for w, a, scheme in ((16, 16, "float"), (1, 8, "binary"), (2, 8, "ternary"), (4, 8, "pow2"), (4, 4, "int"),
                         (8, 16, "int")):
        assert o.mac_energy_pj(w, a, scheme) == pytest.approx(0.5 * base.mac_energy_pj(w, a, scheme) / ref)
    # hand values: fp16 = 2.0/0.32 x, binary = accumulator only 0.12/0.32 x, pow2 = (8*3.75e-3 + 0.12)/0.32 x
    assert o.mac_energy_pj(16, 16, "float") == pytest.approx(0.5 * 2.0 / 0.32)
    assert o.mac_energy_pj(1, 8, "binary") == pytest.approx(0.5 * 0.12 / 0.32)
    assert o.mac_energy_pj(4, 8, "pow2") == pytest.approx(0.5 * (0.03 + 0.12) / 0.32)
    costs = {s: o.mac_energy_pj(w, 8 if s != "float" else 16, s) for s, w in (("binary", 1), ("pow2", 4), ("float", 16))}
    assert costs["binary"] < costs["pow2"] < costs["float"]  # the override no longer flattens formats


def test_mac_pj_override_with_zero_reference_model_is_flat():
    e = EnergyTable(mac_pj=0.7, mult_pj_per_bit2=0.0, add_pj_per_bit=0.0)
    assert e.mac_energy_pj(4, 4) == pytest.approx(0.7)


# -- 3. technology_nm scales logic and SRAM energies (Stillmaker & Baas 2017) ----------------------
def test_energy_scale_hand_values():
    # E(n) = a V^2 + b V + c at V = 0.8 V; 45 nm: 1.103*.64 - .362*.8 + .2767 = 0.69302
    e45 = 1.103 * 0.64 - 0.362 * 0.8 + 0.2767
    e7 = 0.1776 * 0.64 - 0.09097 * 0.8 + 0.02447
    e32 = 0.9559 * 0.64 - 0.7823 * 0.8 + 0.471
    e20 = 0.373 * 0.64 - 0.1582 * 0.8 + 0.04104
    assert energy_scale(45) == 1.0
    assert energy_scale(7) == pytest.approx(e7 / e45)
    assert energy_scale(7) == pytest.approx(0.0943, abs=1e-4)
    # 28 nm lies a third of the way from 32 to 20 nm (linear in table position)
    assert energy_scale(28) == pytest.approx((e32 * (2 / 3) + e20 / 3) / e45)
    assert energy_scale(130) > energy_scale(65) > 1.0 > energy_scale(32) > energy_scale(16) > energy_scale(7)


@pytest.mark.parametrize("node", [7, 28, 130])
def test_technology_scales_mac_rf_sram_adders_but_not_dram(node):
    f = energy_scale(node)
    e45, e = EnergyTable(), EnergyTable(technology_nm=node)
    assert e.mac_energy_pj(8, 8) == pytest.approx(f * e45.mac_energy_pj(8, 8))
    assert e.mac_energy_pj(16, 16, "float") == pytest.approx(f * 2.0)
    assert EnergyTable(technology_nm=node, mac_pj=0.3).mac_energy_pj(8, 8) == pytest.approx(f * 0.3)
    assert e.pe_rf_pj(8) == pytest.approx(f * 0.095)
    assert e.sram_pj_per_bit(32) == pytest.approx(f * 20 / 64)
    assert e.add_pj(32) == pytest.approx(f * 0.12) and e.shift_add_pj(8) == pytest.approx(f * 0.03)

    layer = Linear(name="fc", in_features=64, out_features=64, tokens=16)
    wl = Workload(name="t", layers=[layer])
    kw = dict(rows=4, cols=4, dataflow="os", ifmap_sram=SramConfig(size_kb=4), filter_sram=SramConfig(size_kb=4),
              ofmap_sram=SramConfig(size_kb=4), dram=DramConfig(bw_gbps=10))
    a = accelsim.simulate(wl, SystolicArray(**kw), compare_dense=False).layers[0]
    b = accelsim.simulate(wl, SystolicArray(**kw, energy=EnergyTable(technology_nm=node)), compare_dense=False).layers[0]
    assert b.latency_cycles == a.latency_cycles
    ea, eb = a.energy_by_component_pj, b.energy_by_component_pj
    for comp in ("mac", "pe_rf", "ifmap_sram", "filter_sram", "ofmap_sram"):
        assert eb[comp] == pytest.approx(f * ea[comp]), comp
    assert eb["dram"] == pytest.approx(ea["dram"])  # DRAM interface energy is not scaled
    assert eb["static"] == pytest.approx(ea["static"])  # leakage is not scaled


@pytest.mark.parametrize("node", [5, 3, 180, 250])
def test_technology_outside_fitted_range_is_a_config_error(node):
    with pytest.raises(ConfigError, match="technology_nm"):
        hardware_from_dict({"kind": "systolic", "rows": 4, "cols": 4, "dataflow": "os",
                            "ifmap_sram": {"size_kb": 4}, "filter_sram": {"size_kb": 4}, "ofmap_sram": {"size_kb": 4},
                            "energy": {"technology_nm": node}}, source="hw.yaml")
    with pytest.raises(ValueError):
        energy_scale(node)


def test_math_constants_are_horowitz_anchors():
    from accelsim.hardware.common import FP_ADD_EXPONENT, FP_ADD_PJ_AT_16B

    assert FP_ADD_PJ_AT_16B * 2 ** FP_ADD_EXPONENT == pytest.approx(0.9)
    assert math.isclose(FP_ADD_EXPONENT, math.log2(2.25))


# -- 4. compression an engine does not exploit is noted (one central mechanism) -----------------
def _sparse_act_layer(**comp) -> Linear:
    return Linear(name="fc", in_features=64, out_features=32, tokens=8, compression=Compression(act_density=0.3, **comp))


@pytest.mark.parametrize("config", ["systolic_32x32_os_256kb.yaml", "zu3eg.yaml"])
def test_unexploited_activation_sparsity_is_noted(root, config):
    hw = accelsim.load_hardware(root / "hw_configs" / config)
    s = accelsim.simulate(Workload(name="t", layers=[_sparse_act_layer()]), hw, compare_dense=False).layers[0]
    notes = [n for n in s.notes if n.startswith("activation sparsity")]
    assert notes == ["activation sparsity (density 0.30) not exploited: this array does not gate or skip zero "
                     "activations (every MAC is executed and priced)"]
    dense = accelsim.simulate(Workload(name="t", layers=[_sparse_act_layer().model_copy(
        update={"compression": Compression()})]), hw, compare_dense=False).layers[0]
    assert not any("not exploited" in n for n in dense.notes)
    assert s.macs == dense.macs and s.energy_pj == pytest.approx(dense.energy_pj)  # really not exploited


def test_unexploited_smartexchange_factorisation_is_noted(root):
    from accelsim.workload.compression import Factorization

    se = Factorization(kind="smartexchange", basis_size=4, ce_density=0.25, ce_bits=4)
    layer = Linear(name="fc", in_features=64, out_features=32, tokens=8, compression=Compression(factorization=se))
    wl = Workload(name="t", layers=[layer])
    sys_notes = accelsim.simulate(wl, accelsim.load_hardware(root / "hw_configs" / "systolic_32x32_os_256kb.yaml"),
                                  compare_dense=False).layers[0].notes
    assert any(n.startswith("SmartExchange factorisation (basis 4x4, Ce density 0.25) not exploited") for n in sys_notes)
    se_notes = accelsim.simulate(wl, accelsim.load_hardware(root / "hw_configs" / "smartexchange_32x32.yaml"),
                                 compare_dense=False).layers[0].notes
    assert not any("not exploited" in n for n in se_notes)  # the SmartExchange engine exploits it


def test_engines_declare_what_they_exploit(root):
    from accelsim.engines.base import EXPLOITABLE, engine_for

    for cfg in ("systolic_32x32_os_256kb", "zu3eg", "smartexchange_32x32", "isaac_like", "gather_scatter_sve128"):
        eng = engine_for(accelsim.load_hardware(root / "hw_configs" / f"{cfg}.yaml"))
        assert eng.exploits <= set(EXPLOITABLE)
        assert set(eng.ignore_reasons) <= set(EXPLOITABLE)


# -- 5. SCALE-Sim USER mode reports (and prices) the emulation's DRAM counts ----------------------
def _user_rows():
    from scalesim_ref import rows

    return [r for r in rows() if r["bw_mode"] == "USER"]


@pytest.mark.parametrize("row", _user_rows(), ids=lambda r: r["run_name"])
def test_scalesim_user_dram_counts_are_scalesims(row):
    from scalesim_ref import hardware_of, layer_of

    hw = hardware_of(row)
    assert hw.stall_model == "scalesim_user" and hw.word_bits == 8
    s = accelsim.simulate(Workload(name="one", layers=[layer_of(row)]), hw).layers[0]
    reads = {"ifmap": int(row["dram_ifmap_reads"]), "filter": int(row["dram_filter_reads"])}
    writes = int(row["dram_ofmap_writes"])
    assert s.dram_read_bytes_by_operand == reads  # 1-byte words, as SCALE-Sim counts them
    assert s.dram_read_bytes == sum(reads.values()) and s.dram_write_bytes == writes
    assert s.energy_by_component_pj["dram"] == pytest.approx(
        (sum(reads.values()) * hw.dram.pj_per_bit + writes * hw.dram.write_energy_pj_per_bit()) * 8)
    assert s.actions_by_component["dram"] == {"read": sum(reads.values()), "write": writes}
    assert s.dram_busy_cycles == int((sum(reads.values()) + writes) * 8 / hw.dram_bits_per_cycle())
    assert any(n.startswith("DRAM traffic counted by the SCALE-Sim 3.0.0 USER-mode emulation") for n in s.notes)
    if s.bottleneck == "dram_bandwidth":
        assert f"{(sum(reads.values()) + writes) / 1024:,.0f} KB" in s.bottleneck_reason


# -- 6. CALC mode: "Total Cycles" and "Total Cycles (incl. prefetch)" both reported ----------------
def _calc_ref_rows():
    from scalesim_ref import rows

    return [r for r in rows() if r["bw_mode"] == "CALC"]


@pytest.mark.parametrize("row", _calc_ref_rows(), ids=lambda r: r["run_name"])
def test_calc_mode_reports_total_and_incl_prefetch_cycles(row):
    from scalesim_ref import hardware_of, layer_of

    hw = hardware_of(row)
    assert hw.stall_model == "none"
    report = accelsim.simulate(Workload(name="one", layers=[layer_of(row)]), hw)
    s = report.layers[0]
    assert s.latency_cycles == int(row["compute_cycles"])  # SCALE-Sim "Total Cycles"
    assert s.latency_incl_prefetch_cycles == int(row["total_cycles"])  # "Total Cycles (incl. prefetch)"
    assert report.latency_incl_prefetch_cycles == int(row["total_cycles"])
    assert report.summary()["latency_incl_prefetch_cycles"] == int(row["total_cycles"])
    assert s.row()["latency_incl_prefetch_cycles"] == int(row["total_cycles"])


def test_calc_mode_extra_rows_via_emulation():
    import csv
    from pathlib import Path

    from accelsim.sim.scalesim_user import ScaleSimLayer, simulate_calc_mode

    extra = Path(__file__).resolve().parent / "data" / "scalesim_extra" / "scalesim_user_extra.csv"
    with open(extra, newline="") as fh:
        calc = [r for r in csv.DictReader(fh) if r["bw_mode"] == "CALC"]
    assert len(calc) >= 6
    for r in calc:
        g = {k: int(r[k]) for k in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")}
        layer = ScaleSimLayer(g["ifmap_h"], g["ifmap_w"], g["filter_h"], g["filter_w"], g["channels"], g["num_filters"],
                              g["stride"])
        res = simulate_calc_mode(layer, int(r["rows"]), int(r["cols"]), r["dataflow"], float(r["ifmap_kb"]),
                                 float(r["filter_kb"]), float(r["ofmap_kb"]))
        assert res.total_cycles == int(r["compute_cycles"]), r["case"]
        assert res.total_cycles_incl_prefetch == int(r["total_cycles"]), r["case"]
        assert res.ofmap_dram_stop_cycle == int(r["dram_ofmap_stop"]), r["case"]
        assert min(res.ifmap_dram_start_cycle, res.filter_dram_start_cycle) == min(
            int(r["dram_ifmap_start"]), int(r["dram_filter_start"])), r["case"]


def test_calc_mode_prefetch_hand_case():
    """GEMM 64^3 OS on 32x32 with 64 KB SRAMs: both operands (4096 words) fit the active half
    (65536 words -> 655-word sets, 50 sets), so each is fetched before cycle 0 in
    ceil(4096 / 655) = 7 sets: ceil(7 * 655 / 10) = 459 cycles -> first DRAM row at -459."""
    from accelsim.sim.scalesim_user import ScaleSimLayer, simulate_calc_mode

    res = simulate_calc_mode(ScaleSimLayer.gemm(64, 64, 64), 32, 32, "os", 64, 64, 64)
    assert res.ifmap_unique_words == res.filter_unique_words == 4096
    assert res.ifmap_dram_start_cycle == res.filter_dram_start_cycle == -459
    assert res.total_cycles == 4 * (64 + 32 + 32 - 2) - 1  # folds x per-fold rows - 1
    assert res.total_cycles_incl_prefetch == res.ofmap_dram_stop_cycle + 459
    assert res.ofmap_dram_stop_cycle > res.total_cycles  # the final ofmap drain comes after compute
    assert res.total_cycles_incl_prefetch == 1089  # SCALE-Sim run gemm_64_32x32_os


def test_calc_mode_resnet50_128x128_os(ref):
    """The issue's figures: ResNet-50 (SCALE-Sim topology) on 128x128 OS, 64 KB SRAMs, CALC."""
    from accelsim.hardware.io import read_scalesim_cfg
    from accelsim.workload import read_scalesim_topology

    wl = read_scalesim_topology(ref / "scalesim_topologies" / "conv_nets" / "Resnet50.csv")
    hw = read_scalesim_cfg(ref / "scalesim_topologies" / "configs" / "scale.cfg")
    assert hw.stall_model == "none" and hw.ifmap_sram.size_kb == 64
    hw = hw.model_copy(update={"rows": 128, "cols": 128, "dataflow": "os"})
    r = accelsim.simulate(wl, hw)
    assert r.latency_cycles == 611_561 and r.latency_incl_prefetch_cycles == 795_318
