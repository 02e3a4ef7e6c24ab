"""Gather-scatter engine: hand-computed kernel cases, closed forms, conservation and the GS trend."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.engines import gs_kernels as K
from accelsim.engines.base import lower_layer
from accelsim.workload.masks import synthetic_mask
from accelsim.hardware import SramConfig, load_hardware
from accelsim.hardware.gather_scatter import GatherScatterHardware
from accelsim.workload import Linear, Recurrent, Workload
from accelsim.workload.compression import Compression, Sparsity
from accelsim.workload.zoo import get_model

from conftest import ROOT

I64 = np.int64


def _csr(rows: list[list[int]]):
    ptr = np.zeros(len(rows) + 1, dtype=I64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    return ptr, np.array([j for r in rows for j in r], dtype=np.int32)


BANK4 = np.arange(256, dtype=I64) % 4


def test_kernels_hand_cases():
    ptr, idx = _csr([[0, 4, 8, 1]])
    # one 4-lane gather: banks 0,0,0,1 -> 3 cycles (ideal 1)
    assert K.csr_reduction_cost(ptr, idx, BANK4, 4, 4, 4) == (1, 3, 1, 4)
    # 2 lanes: [0,4] both bank 0 -> 2 cycles, [8,1] -> 1
    assert K.csr_reduction_cost(ptr, idx, BANK4, 4, 2, 2) == (2, 3, 2, 4)
    # a gather unit of 1 element/cycle: 4 cycles even without conflicts
    assert K.csr_reduction_cost(*_csr([[0, 1, 2, 3]]), BANK4, 4, 4, 1) == (1, 4, 4, 4)
    ptr, idx = _csr([[0, 1, 2], [4]])
    # vertical: t0 = {0, 4} (bank 0 twice) 2 cycles, t1 = {1}, t2 = {2}
    assert K.csr_vertical_cost(ptr, idx, BANK4, 4, 2, 2) == (3, 4, 3, 4)
    # GS packing interleaves rows: 0,4 | 1,2
    assert K.packed_cost(ptr, idx, BANK4, 4, 2, 2, 2) == (2, 3, 2, 4)
    # bank-aware: 3 entries (longest row), busiest bank holds 2 -> 3 cycles
    assert K.bank_aware_group_cost(ptr, idx, BANK4, 4, 2, 2, 2, True) == (3, 3, 3, 4)
    assert K.bank_aware_row_cost(*_csr([[0, 4, 8, 1]]), BANK4, 4, 4, 4) == (1, 3, 1, 4)
    # the same word read by two lanes is one bank access
    assert K.csr_vertical_cost(*_csr([[0], [0]]), BANK4, 4, 2, 2) == (1, 1, 1, 2)


def test_kernels_match_closed_forms_on_random_masks():
    rng = np.random.default_rng(7)
    rows, k, d, v, banks = 512, 300, 0.1, 8, 16
    mat = rng.random((rows, k)) < d
    bank = rng.integers(0, banks, size=k).astype(I64)
    ptr, idx = K.csr_of(mat)
    red = K.csr_reduction_cost(ptr, idx, bank, banks, v, v)
    vert = K.csr_vertical_cost(ptr, idx, bank, banks, v, v)
    assert red[0] == pytest.approx(rows * K.expected_ceil_binomial(k, d, v), rel=0.03)
    assert vert[0] == pytest.approx(rows / v * K.expected_max_binomial(k, d, v), rel=0.03)
    # full-width gathers at random banks cost E[max bank load] (balls into bins)
    packed = K.packed_cost(ptr, idx, bank, banks, v, v, rows)
    assert packed[1] / packed[0] == pytest.approx(K.expected_gather_cycles(v, banks, v), rel=0.03)
    assert K.expected_gather_cycles(8, 1, 8) == 8.0 and K.expected_gather_cycles(1, 16, 1) == 1.0


def _hw(**kw) -> GatherScatterHardware:
    base = dict(name="t", lanes=4, scratchpad=SramConfig(size_kb=256, banks=16), weight_buffer=SramConfig(size_kb=64),
                gather_elems_per_cycle=4, loop_overhead_cycles=1)
    base.update(kw)
    return GatherScatterHardware(**base)


def test_dense_linear_hand_computed():
    hw = _hw(lanes=8, gather_elems_per_cycle=8)
    layer = Linear(name="fc", in_features=64, out_features=20, tokens=3)
    prog = lower_layer(layer, hw)
    # vertical form: ceil(20/8) = 3 row groups x 64 reduction steps + 3 loop overheads per input vector
    assert prog.compute_cycles == 3 * (3 * 64 + 3)
    assert prog.macs == layer.macs == 3 * 64 * 20
    assert prog.dram_read_bits["index"] == 0
    assert prog.dram_read_bits["filter"] == 64 * 20 * 8


def _conflict_layer():
    layer = Linear(name="fc", in_features=256, out_features=8, tokens=2)
    mask = np.zeros((8, 256), dtype=np.uint8)
    for r in range(8):  # every kept column sits in bank 0 of 16
        for i in range(4):
            mask[r, 16 * ((4 * r + i) % 16)] = 1
    sp = Sparsity(kind="unstructured", density=mask.mean(), mask="w")
    layer = layer.model_copy(update={"compression": Compression(sparsity=sp)})
    wl = Workload(name="c", layers=[layer])
    wl.attach_masks({"w": mask})
    return wl


@pytest.mark.parametrize("aware", [False, True])
def test_bank_conflicts_hand_computed(aware):
    wl = _conflict_layer()
    prog = lower_layer(wl.layers[0], _hw(pack_for_banks=aware), wl)
    # vertical form per 4-row group: 4 entries of 4 distinct bank-0 words -> 4 x 4 cycles + 1 overhead;
    # (reduction form: 4 rows x (4 + 2 sum + 1) = 28 is worse). Two groups, two input vectors.
    assert prog.compute_cycles == 2 * 2 * 17
    assert prog.extra["bank_conflict_cycles"] == 2 * 2 * (17 - 5)
    assert prog.macs == 2 * 32
    # CSR storage: 32 values + 32 16-bit indices + 9 32-bit row pointers, loaded once
    assert prog.dram_read_bits["filter"] == 32 * 8
    assert prog.dram_read_bits["index"] == 32 * 16 + 9 * 32
    assert "measured" in " ".join(prog.notes)


def _sparse_resnet18(kind: str, density: float, masks: bool, seed: int = 0, layers: int = 8, **extra):
    wl = get_model("resnet18")
    keep = [lay for lay in wl.layers if lay.op == "conv2d"][:layers]
    sp = Sparsity(kind=kind, density=density, **extra)
    out, arrays = [], {}
    for lay in keep:
        s = sp.model_copy(update={"mask": lay.name}) if masks else sp
        lay = lay.model_copy(update={"compression": Compression(sparsity=s)})
        if masks:
            arrays[lay.name] = synthetic_mask(lay, seed=seed)
        out.append(lay)
    w = Workload(name=f"r18-{kind}", layers=out)
    if masks:
        w.attach_masks(arrays)
    return w


CASES = [("unstructured", 0.2, {}), ("gs", 0.2, {"gs_group_rows": 8}), ("nm", 0.25, {"n": 1, "m": 4}),
         ("block", 0.25, {"block_h": 8, "block_w": 8})]


@pytest.mark.parametrize("kind,density,extra", CASES, ids=[c[0] for c in CASES])
def test_expectation_agrees_with_iid_masks(kind, density, extra):
    hw = load_hardware(ROOT / "hw_configs" / "gather_scatter_sve128.yaml")
    exp = accelsim.simulate(_sparse_resnet18(kind, density, False, **extra), hw, compare_dense=False)
    real = accelsim.simulate(_sparse_resnet18(kind, density, True, **extra), hw, compare_dense=False)
    assert exp.latency_cycles == pytest.approx(real.latency_cycles, rel=0.03)
    assert exp.macs == pytest.approx(real.macs, rel=0.02)
    assert all("no mask: expected" in " ".join(s.notes) for s in exp.layers)
    for s in real.layers:  # conservation
        assert s.macs <= s.dense_macs
        assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
        assert 0 < s.utilization <= 1.0
        assert s.dram_read_bytes_by_operand["index"] > 0


def test_dense_macs_match_systolic_and_smartexchange():
    wl = get_model("resnet18")
    engines = ["gather_scatter_sve128.yaml", "smartexchange_32x32.yaml", "systolic_32x32_os_256kb.yaml"]
    progs = {e: [lower_layer(lay, load_hardware(ROOT / "hw_configs" / e)).macs for lay in wl.layers] for e in engines}
    assert progs[engines[0]] == progs[engines[1]] == progs[engines[2]]
    assert sum(progs[engines[0]]) == wl.total_macs


def test_gs_is_load_balanced_and_beats_unstructured_at_high_sparsity():
    hw = load_hardware(ROOT / "hw_configs" / "gather_scatter_sve512_banked.yaml")
    rep = {k: accelsim.simulate(_sparse_resnet18(k, d, True, layers=6, **e), hw, compare_dense=False)
           for k, d, e in [("unstructured", 0.05, {}), ("gs", 0.05, {"gs_group_rows": 32}),
                           ("block", 0.05, {"block_h": 32, "block_w": 4})]}
    dense = accelsim.simulate(_sparse_resnet18("unstructured", 0.05, False, layers=6).densified(), hw)
    gs_util = [s.extra["lane_utilization"] for s in rep["gs"].layers]
    un_util = [s.extra["lane_utilization"] for s in rep["unstructured"].layers]
    assert min(gs_util) > 0.99  # every lane busy: equal non-zeros per row of a group
    assert max(un_util) < 0.95
    assert rep["gs"].latency_cycles < 0.8 * rep["unstructured"].latency_cycles
    assert rep["block"].latency_cycles <= rep["gs"].latency_cycles * 1.05
    assert dense.latency_cycles > 5 * rep["gs"].latency_cycles


def test_gs_group_shapes_scatter_and_reduce():
    base = Linear(name="fc", in_features=128, out_features=32, tokens=1)
    for g_rows, key in ((16, "scattered"), (2, "reduces")):
        sp = Sparsity(kind="gs", density=0.25, gs_group_rows=g_rows, mask="w")
        lay = base.model_copy(update={"compression": Compression(sparsity=sp)})
        wl = Workload(name="g", layers=[lay])
        wl.attach_masks({"w": synthetic_mask(lay, seed=2)})
        prog = lower_layer(lay, _hw(lanes=8, gather_elems_per_cycle=8), wl)
        assert prog.macs == 32 * 32
        acts = {(a.component, a.action): a.count for a in prog.actions}
        if key == "scattered":
            assert acts[("gather_unit", "scatter")] == prog.extra["vector_instructions"] * 8
        else:
            assert acts[("vector", "add")] == (32 // 2) * 7  # one 8-lane horizontal sum per 2-row group


def test_recurrent_and_tiling_conservation():
    hw = _hw(scratchpad=SramConfig(size_kb=4, banks=16), weight_buffer=SramConfig(size_kb=2))
    r = Recurrent(name="lstm", input_size=64, hidden_size=32, seq_len=6)
    sp = Sparsity(kind="unstructured", density=0.3, mask="r")
    r = r.model_copy(update={"compression": Compression(sparsity=sp)})
    wl = Workload(name="l", layers=[r])
    wl.attach_masks({"r": synthetic_mask(r, seed=0)})
    rep = accelsim.simulate(wl, hw, compare_dense=True)
    s = rep.layers[0]
    assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
    assert s.speedup_vs_dense is not None and s.speedup_vs_dense > 1.5
    again = accelsim.simulate(wl, hw, compare_dense=True)
    assert again.to_frame().equals(rep.to_frame())  # deterministic


def test_narrow_blocks_on_wide_vectors_use_gathers():
    hw = _hw(lanes=16, gather_elems_per_cycle=16, scratchpad=SramConfig(size_kb=256, banks=32), pack_for_banks=True)
    lay = Linear(name="fc", in_features=512, out_features=256, tokens=4)
    sp = Sparsity(kind="block", density=0.25, block_h=4, block_w=4, mask="w")
    lay = lay.model_copy(update={"compression": Compression(sparsity=sp)})
    wl = Workload(name="b", layers=[lay])
    wl.attach_masks({"w": synthetic_mask(lay, seed=1)})
    prog = lower_layer(lay, hw, wl)
    dense = lower_layer(Linear(name="fc", in_features=512, out_features=256, tokens=4), hw)
    assert "block-gather" in prog.notes[0]
    assert prog.mapping_efficiency > 0.8  # a contiguous 4-row block would fill only 4 of 16 lanes
    assert prog.compute_cycles < 0.3 * dense.compute_cycles
    # storage stays one index per kept block
    assert prog.dram_read_bits["index"] == (256 * 512 // 16 // 4) * 16 + (256 // 4 + 1) * 32
