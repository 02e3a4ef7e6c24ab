"""Sparse options of the systolic array: hand-computed fold counts, dense invariance, costs."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.energy import price_actions
from accelsim.engines.base import lower_layer
from accelsim.workload.masks import mask_from_gemm_views, synthetic_mask
from accelsim.errors import ConfigError
from accelsim.hardware import SramConfig, SystolicArray
from accelsim.hardware.io import hardware_from_dict
from accelsim.hardware.systolic import SystolicSparseOptions
from accelsim.workload import Conv2d, Linear, Workload
from accelsim.workload.compression import Compression, Quant, Sparsity
from accelsim.workload.zoo import get_model

BIG = SramConfig(size_kb=1024)


def hw(df: str = "os", **opts) -> SystolicArray:
    # sparse modes run on the fold order; mapping: scalesim keeps their dense peer on it too (hand counts)
    return SystolicArray(name="t", rows=16, cols=16, dataflow=df, ifmap_sram=BIG, filter_sram=BIG, ofmap_sram=BIG,
                         sparse=SystolicSparseOptions(**opts), mapping="scalesim")


def with_sparsity(layer, mask: np.ndarray | None = None, quant: Quant | None = None, **sp):
    if mask is not None:
        sp = dict(sp, mask="w", density=sp.get("density", float(mask.mean())))
    c = Compression(sparsity=Sparsity(**sp), quant=quant or Quant())
    layer = layer.model_copy(update={"compression": c})
    wl = Workload(name="w", layers=[layer])
    if mask is not None:
        wl.attach_masks({"w": mask})
    return layer, wl


CONV = Conv2d(name="c", in_channels=32, out_channels=48, in_h=10, in_w=10, kernel=3, padding=1)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_dense_layers_unchanged_by_sparse_options(df):
    dense = lower_layer(CONV, hw(df))
    opts = lower_layer(CONV, hw(df, zero_skipping=True, nm_speedup=True, block_skipping=True))
    assert opts == dense
    serial = lower_layer(CONV, hw(df, bit_serial=True))  # 8-bit weights on 8-lane bit-serial PEs
    assert serial.compute_cycles == dense.compute_cycles and serial.body == dense.body
    assert serial.dram_read_bits == {**dense.dram_read_bits, "index": 0}
    assert serial.sram_accesses == dense.sram_accesses and serial.macs == dense.macs


def test_bit_serial_scales_the_streaming_dimension():
    lin = Linear(name="l", in_features=64, out_features=32, tokens=32)  # OS: 2 x 2 folds, T = 64
    for wb, t in ((8, 64), (4, 32), (2, 16), (16, 128)):
        layer, _ = with_sparsity(lin, quant=Quant(weight_bits=wb))
        prog = lower_layer(layer, hw("os", bit_serial=True))
        assert prog.compute_cycles == 4 * (t + 16 + 16 - 2) - 1
        mac = next(a for a in prog.actions if a.component == "mac")
        assert mac.action == "bit_serial_mac"
        e = hw().energy
        expected = wb * e.add_pj_per_bit * (wb + 8) + e.add_pj_per_bit * e.accumulator_bits
        assert hw("os", bit_serial=True).action_energy_pj(mac) == pytest.approx(expected)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_nm_speedup_halves_the_reduction(df):
    lin = Linear(name="l", in_features=128, out_features=48, tokens=40)
    layer, _ = with_sparsity(lin, kind="nm", n=2, m=4, density=0.5)
    prog = lower_layer(layer, hw(df, nm_speedup=True))
    half = lower_layer(Linear(name="l", in_features=64, out_features=48, tokens=40), hw(df))
    assert prog.compute_cycles == half.compute_cycles
    assert prog.macs == 40 * 48 * 64
    assert prog.dram_read_bits["index"] == 48 * 64 * 2  # 2-bit position per kept weight
    assert prog.dram_read_bits["filter"] == 48 * 64 * 8
    assert prog.dram_read_bits["ifmap"] == lower_layer(lin, hw(df)).dram_read_bits["ifmap"]  # activations stay dense
    one4, _ = with_sparsity(lin, kind="nm", n=1, m=4, density=0.25)
    assert lower_layer(one4, hw(df, nm_speedup=True)).compute_cycles == half.compute_cycles  # 1:4 runs as 2:4
    three4, _ = with_sparsity(lin, kind="nm", n=3, m=4, density=0.75)
    p34 = lower_layer(three4, hw(df, nm_speedup=True))
    assert p34.compute_cycles == lower_layer(lin, hw(df)).compute_cycles
    assert "does not fit" in accelsim.engines.systolic.SystolicEngine().sparse_mode(three4, hw(df, nm_speedup=True))[1]


def test_nm_datapath_fit_is_checked_on_the_real_mask():
    """Declared 4:8 does not fit 2:4 in general; a real mask decides."""
    lin = Linear(name="l", in_features=64, out_features=16, tokens=8)
    declared, _ = with_sparsity(lin, kind="nm", n=4, m=8, density=0.5)
    assert lower_layer(declared, hw("os", nm_speedup=True)).engine == "systolic"  # no mask: 4:8 may not fit
    rows = np.zeros((16, 16, 4), dtype=np.uint8)
    rows[:, :, :2] = 1  # 2 in every group of 4 (also 4 in every 8)
    fits, wl = with_sparsity(lin, mask=rows.reshape(16, 64), kind="nm", n=4, m=8)
    assert lower_layer(fits, hw("os", nm_speedup=True), wl).engine == "systolic.nm"
    rows = np.zeros((16, 8, 8), dtype=np.uint8)
    rows[:, :, :4] = 1  # 4 of 8, all in the first group of 4
    bad, wl2 = with_sparsity(lin, mask=rows.reshape(16, 64), kind="nm", n=4, m=8)
    mode, reason = accelsim.engines.systolic.SystolicEngine().sparse_mode(bad, hw("os", nm_speedup=True), rows.reshape(16, 64))
    assert mode is None and "does not fit" in reason
    prog = lower_layer(bad, hw("os", nm_speedup=True), wl2)
    assert prog.engine == "systolic" and any("does not fit" in n for n in prog.notes)


def _staircase_mask() -> np.ndarray:
    """Linear 32 -> 16: output o keeps its first o + 1 inputs (136 non-zeros)."""
    m = np.zeros((16, 32), dtype=np.uint8)
    for o in range(16):
        m[o, : o + 1] = 1
    return m


def test_zero_skipping_hand_computed():
    lin = Linear(name="l", in_features=32, out_features=16, tokens=16)
    mask = _staircase_mask()
    layer, wl = with_sparsity(lin, mask=mask, kind="unstructured")
    os_ = lower_layer(layer, hw("os", zero_skipping=True), wl)
    # one fold; the densest output channel holds 16 non-zeros: T = 16 instead of 32
    assert os_.compute_cycles == (16 + 30) - 1
    assert os_.macs == 136 * 16
    assert os_.dram_read_bits["filter"] == 136 * 8 and os_.dram_read_bits["index"] == 136 * 4
    ws = lower_layer(layer, hw("ws", zero_skipping=True), wl)
    # k = 32 packs into ceil(16 / 16) = 1 row fold of the 2: one fold of 2R + C + T - 2 = 62
    assert ws.compute_cycles == 62 - 1
    assert lower_layer(lin, hw("ws")).compute_cycles == 2 * 62 - 1
    # without zero skipping the same layer runs dense, and says so
    plain = lower_layer(layer, hw("os", nm_speedup=True), wl)
    assert plain.compute_cycles == lower_layer(lin, hw("os")).compute_cycles
    assert any("executed dense" in n for n in plain.notes)


def test_block_skipping_hand_computed():
    lin = Linear(name="l", in_features=32, out_features=32, tokens=8)
    view = np.zeros((1, 32, 32), dtype=bool)
    view[0, :16, :16] = True
    view[0, 16:, 16:] = True
    mask = mask_from_gemm_views(lin, [view]).astype(np.uint8)
    layer, wl = with_sparsity(lin, mask=mask, kind="block", block_h=16, block_w=16)
    expected = {  # (sparse, dense) compute cycles, counted fold by fold
        "ws": (2 * (32 + 16 + 8 - 2) - 1, 4 * (32 + 16 + 8 - 2) - 1),   # 2 of 4 folds hold weights
        "is": (2 * (32 + 16 + 16 - 2) - 1, 2 * (32 + 16 + 32 - 2) - 1),  # 16 of 32 output channels per row fold
        "os": (2 * (16 + 30) - 1, 2 * (32 + 30) - 1),                   # 16 of 32 reduction steps per column fold
    }
    for df, (sparse, dense) in expected.items():
        prog = lower_layer(layer, hw(df, block_skipping=True), wl)
        assert prog.compute_cycles == sparse, df
        assert lower_layer(lin, hw(df)).compute_cycles == dense
        assert prog.macs == 2 * 256 * 8
        assert prog.macs <= prog.dense_macs


def test_expectation_matches_masks_for_zero_skipping():
    r18 = get_model("resnet18")
    conv = [lay for lay in r18.layers if lay.op == "conv2d"][5]
    layer, _ = with_sparsity(conv, kind="unstructured", density=0.3)
    exp = lower_layer(layer, hw("os", zero_skipping=True))
    ml, wl = with_sparsity(conv, mask=synthetic_mask(layer, seed=0), kind="unstructured")
    real = lower_layer(ml, hw("os", zero_skipping=True), wl)
    assert exp.compute_cycles == pytest.approx(real.compute_cycles, rel=0.05)
    assert exp.macs == pytest.approx(real.macs, rel=0.01)
    assert any("no mask" in n for n in exp.notes)
    assert exp.compute_cycles < 0.5 * lower_layer(conv, hw("os")).compute_cycles


def test_bit_width_scaling_of_energy_and_traffic():
    lin = Linear(name="l", in_features=256, out_features=128, tokens=64)
    r8 = lower_layer(lin, hw())
    l4, _ = with_sparsity(lin, quant=Quant(weight_bits=4, act_bits=4))
    r4 = lower_layer(l4, hw())
    assert r4.dram_read_bits["filter"] * 2 == r8.dram_read_bits["filter"]
    assert r4.dram_read_bits["ifmap"] * 2 == r8.dram_read_bits["ifmap"]
    e = hw().energy
    assert e.mult_pj(8, 8) == pytest.approx(4 * e.mult_pj(4, 4))  # quadratic multiplier
    mac8 = price_actions([a for a in r8.actions if a.component == "mac"], hw())["mac"]
    mac4 = price_actions([a for a in r4.actions if a.component == "mac"], hw())["mac"]
    assert mac4 < mac8 and mac8 / mac4 == pytest.approx((0.2 + 0.12) / (0.05 + 0.12), rel=1e-6)


def test_filter_pruning_shrinks_the_layer():
    pruned = Conv2d(name="c", in_channels=32, out_channels=24, in_h=10, in_w=10, kernel=3, padding=1,
                    compression=Compression(sparsity=Sparsity(kind="filter", density=0.5),
                                            original={"out_channels": 48}))
    rep = accelsim.simulate(Workload(name="p", layers=[pruned]), hw("ws", zero_skipping=True))
    s = rep.layers[0]
    assert s.macs * 2 == s.dense_macs
    assert s.speedup_vs_dense is not None and s.speedup_vs_dense > 1.3


def test_sparse_options_reject_scalesim_emulation():
    data = {"kind": "systolic", "rows": 8, "cols": 8, "ifmap_sram": {"size_kb": 8}, "filter_sram": {"size_kb": 8},
            "ofmap_sram": {"size_kb": 8}, "stall_model": "scalesim_user",
            "scalesim_ports": {"ifmap_words_per_cycle": 1, "filter_words_per_cycle": 1, "ofmap_words_per_cycle": 1},
            "sparse": {"zero_skipping": True}}
    with pytest.raises(ConfigError, match="scalesim_user"):
        hardware_from_dict(data, "bad.yaml")
    with pytest.raises(ConfigError, match="nm_n"):
        hardware_from_dict({**data, "stall_model": "none", "sparse": {"nm_n": 5, "nm_m": 4}}, "bad.yaml")


def test_conservation_on_sparse_resnet_layers():
    r18 = get_model("resnet18")
    layers, masks = [], {}
    for i, lay in enumerate([lay for lay in r18.layers if lay.op == "conv2d"][:6]):
        kind = [dict(kind="unstructured", density=0.3), dict(kind="nm", n=2, m=4, density=0.5),
                dict(kind="block", density=0.4, block_h=16, block_w=16)][i % 3]
        lay = lay.model_copy(update={"compression": Compression(sparsity=Sparsity(mask=lay.name, **kind))})
        masks[lay.name] = synthetic_mask(lay, seed=i)
        layers.append(lay)
    wl = Workload(name="sp", layers=layers)
    wl.attach_masks(masks)
    for df in ("os", "ws", "is"):
        h = SystolicArray(name="s", rows=32, cols=32, dataflow=df, ifmap_sram=SramConfig(size_kb=64),
                          filter_sram=SramConfig(size_kb=32), ofmap_sram=SramConfig(size_kb=32),
                          sparse=SystolicSparseOptions(zero_skipping=True, nm_speedup=True), mapping="scalesim")
        rep = accelsim.simulate(wl, h)
        for s in rep.layers:
            assert s.macs <= s.dense_macs
            assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
            assert 0 < s.utilization <= 1.0 and 0 < s.compute_utilization <= 1.0
            assert s.speedup_vs_dense is not None
            if df != "is" or s.engine == "systolic.nm":
                assert s.speedup_vs_dense > 1.0
            else:  # input stationary cannot pack a column's non-zeros: only empty columns are skipped
                assert s.speedup_vs_dense > 0.95
