"""SmartExchange engine: hand-computed rebuild/skip counts, breakdown direction vs a dense array."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.energy import price_actions
from accelsim.engines.base import lower_layer
from accelsim.errors import ConfigError, MaskError
from accelsim.hardware import SramConfig, load_hardware
from accelsim.hardware.io import hardware_from_dict
from accelsim.hardware.smartexchange import SmartExchangeAccelerator
from accelsim.sim.run import simulate_layer_program
from accelsim.workload import Conv2d, Linear, Workload
from accelsim.workload.compression import Compression, Factorization, Sparsity

from conftest import ROOT

SE_FAC = Factorization(kind="smartexchange", basis_size=3, ce_density=0.5, ce_bits=4, basis_bits=8)


def _se_workload(layer, ce: np.ndarray, key: str = "w"):
    """A layer whose weight mask and exported Ce array come from ``ce`` (out, R, S)."""
    pieces = (ce != 0).any(axis=2)
    mask = np.repeat(pieces, 3, axis=1)[:, : int(np.prod(layer_shape(layer)[1:]))].reshape(layer_shape(layer))
    sp = Sparsity(kind="unstructured", density=float(mask.mean()), mask=key)
    layer = layer.model_copy(update={"compression": Compression(sparsity=sp, factorization=SE_FAC)})
    wl = Workload(name="se", layers=[layer])
    wl.attach_masks({key: mask.astype(np.uint8), f"{key}.se_ce": ce})
    return wl


def layer_shape(layer):
    from accelsim.workload.masks import expected_mask_shape

    return expected_mask_shape(layer)


def test_dense_linear_hand_computed():
    hw = SmartExchangeAccelerator(name="t", ce_buffer=SramConfig(size_kb=64))
    layer = Linear(name="fc", in_features=96, out_features=64, tokens=32)
    prog = lower_layer(layer, hw)
    assert prog.compute_cycles == 2 * 96  # 2 channel tiles x 1 pixel tile x 96 reduction steps
    assert prog.macs == layer.macs
    assert not any(a.component == "decoder" for a in prog.actions)
    assert prog.extra["decode_cycles"] == 0


def test_rebuild_and_skip_hand_computed():
    conv = Conv2d(name="c", in_channels=4, out_channels=2, in_h=4, in_w=4, kernel=3, padding=1)
    ce = np.zeros((2, 12, 3), dtype=np.float32)  # 36 weights per output row -> 12 pieces of 3
    for r, nnz in enumerate([3, 1, 1, 1, 2, 2]):
        ce[0, r, :nnz] = 0.5
    for r in range(3):
        ce[1, r, 0] = -0.25
    ce[1, 11, :] = 1.0
    wl = _se_workload(conv, ce)
    hw = SmartExchangeAccelerator(name="t", pe_rows=2, pe_cols=16, rebuild_shift_adders=4,
                                  weight_buffer=SramConfig(size_kb=1))
    prog = lower_layer(wl.layers[0], hw, wl)
    # pieces non-zero in some line: 0..5 and 11 -> 7 x 3 cycles for the single 16-pixel tile
    assert prog.compute_cycles == 21
    # shift-adds: sum of Ce non-zeros x 3 = (10 + 3 + 3) x 3; decoder 4 per cycle
    assert prog.extra["shift_adds"] == 48
    assert prog.extra["decode_cycles"] == 12
    # executed MACs: (6 + 4) non-zero pieces x 3 weights x 16 pixels
    assert prog.macs == 30 * 16
    # storage: 10 non-zero Ce rows x 3 x 4 bits, 2 x 12 bitmap bits, 2 bases x 9 x 8 bits
    assert prog.dram_read_bits["filter"] == 120
    assert prog.dram_read_bits["index"] == 24
    assert prog.dram_read_bits["basis"] == 144
    energy = price_actions(prog.actions, hw)
    assert energy["decoder"] == pytest.approx(48 * hw.energy.shift_add_pj_per_bit * (8 + 7))
    timing = simulate_layer_program(prog, hw)
    assert timing.decode_busy_cycles == 12
    assert timing.stall_input_cycles == 0 and timing.fill_cycles >= 12  # the rebuild precedes the first tile


def _structured_ce(out: int, cin: int, aligned: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ce = rng.choice([0.5, -0.25, 1.0], size=(out, cin * 3, 3)).astype(np.float32)
    for o in range(out):
        drop = np.arange(cin // 2) if aligned else rng.choice(cin, cin // 2, replace=False)
        for c in drop:
            ce[o, 3 * c:3 * c + 3, :] = 0  # all three kernel rows of input channel c
    return ce


def test_zero_rows_aligned_across_lines_skip_cycles():
    conv = Conv2d(name="c", in_channels=64, out_channels=64, in_h=8, in_w=8, kernel=3, padding=1)
    hw = load_hardware(ROOT / "hw_configs" / "smartexchange_32x32.yaml")
    aligned = _se_workload(conv, _structured_ce(64, 64, True))
    scattered = _se_workload(conv, _structured_ce(64, 64, False))
    pa = lower_layer(aligned.layers[0], hw, aligned)
    ps = lower_layer(scattered.layers[0], hw, scattered)
    dense = lower_layer(conv, hw)
    assert pa.macs == ps.macs == dense.macs // 2
    assert pa.compute_cycles == pytest.approx(dense.compute_cycles / 2, rel=0.01)
    assert ps.compute_cycles == pytest.approx(dense.compute_cycles, rel=0.01)  # some line always needs the piece
    assert pa.extra["shift_adds"] == ps.extra["shift_adds"]


def test_rebuild_bound_when_the_decoder_is_narrow():
    conv = Conv2d(name="c", in_channels=64, out_channels=64, in_h=8, in_w=8, kernel=3, padding=1)
    lay = conv.model_copy(update={"compression": Compression(factorization=SE_FAC)})
    wide = load_hardware(ROOT / "hw_configs" / "smartexchange_32x32.yaml")
    narrow = wide.model_copy(update={"rebuild_shift_adders": 8})
    w = accelsim.simulate(Workload(name="a", layers=[lay]), wide, compare_dense=False).layers[0]
    n = accelsim.simulate(Workload(name="a", layers=[lay]), narrow, compare_dense=False).layers[0]
    assert n.extra["decode_cycles"] > 4 * w.extra["decode_cycles"] * 0.99
    assert n.latency_cycles > 2 * w.latency_cycles
    assert n.stall_input_cycles > 0
    assert "expectation" in " ".join(w.notes)


def test_direction_vs_dense_systolic_on_a_weight_bound_layer():
    """FC at batch 1: weights dominate DRAM, so Ce x B storage cuts energy and time."""
    fc = Linear(name="fc", in_features=4096, out_features=4096, tokens=1)
    se_fc = fc.model_copy(update={"compression": Compression(
        factorization=SE_FAC.model_copy(update={"ce_density": 0.25}))})
    se = load_hardware(ROOT / "hw_configs" / "smartexchange_32x32.yaml")
    sy = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml")
    assert se.num_pes == sy.num_pes
    assert se.total_sram_kb == sy.ifmap_sram.size_kb + sy.filter_sram.size_kb + sy.ofmap_sram.size_kb
    r_se = accelsim.simulate(Workload(name="fc", layers=[se_fc]), se, compare_dense=False).layers[0]
    r_sy = accelsim.simulate(Workload(name="fc", layers=[fc]), sy).layers[0]
    assert r_se.dram_read_bytes < 0.4 * r_sy.dram_read_bytes  # (0.58 x 3 x 4 + 1) bits per 3 weights vs 24
    assert r_se.energy_pj < 0.5 * r_sy.energy_pj
    assert r_se.latency_cycles < 0.85 * r_sy.latency_cycles  # the dense array waits for DRAM, SE does not
    e = r_se.energy_by_component_pj
    assert 0 < e["decoder"] < 0.05 * e["dram"]  # rebuild is cheap next to the traffic it saves
    assert r_se.dram_read_bytes + r_se.dram_write_bytes >= r_se.compulsory_dram_bytes
    assert 0 < r_se.utilization <= 1


def test_bad_ce_array_and_config():
    conv = Conv2d(name="c", in_channels=4, out_channels=2, in_h=4, in_w=4, kernel=3, padding=1)
    wl = _se_workload(conv, np.ones((2, 12, 3), dtype=np.float32))
    wl.attach_masks({"w": np.ones((2, 4, 3, 3), dtype=np.uint8), "w.se_ce": np.ones((2, 11, 3))})
    with pytest.raises(MaskError, match=r"\(out, ceil\(k/S\), S\)"):
        lower_layer(wl.layers[0], load_hardware(ROOT / "hw_configs" / "smartexchange_32x32.yaml"), wl)
    with pytest.raises(ConfigError, match="weight_buffer"):
        hardware_from_dict({"kind": "smartexchange", "pe_rows": 4096, "weight_buffer": {"size_kb": 1}}, "x.yaml")
