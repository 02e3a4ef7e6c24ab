"""Hand-computed cycles, traffic and energy of small GEMMs on tiny systolic arrays (45 nm defaults)."""
from __future__ import annotations

import math

import pytest

import accelsim
from accelsim.hardware import DramConfig, SramConfig, SystolicArray
from accelsim.workload import Linear, Workload


def _hw(dataflow: str, ifmap_kb: float, filter_kb: float = 1, ofmap_kb: float = 1) -> SystolicArray:
    return SystolicArray(rows=2, cols=2, dataflow=dataflow, clock_mhz=1000, ifmap_sram=SramConfig(size_kb=ifmap_kb),
                         filter_sram=SramConfig(size_kb=filter_kb), ofmap_sram=SramConfig(size_kb=ofmap_kb),
                         dram=DramConfig(bw_gbps=1000), mapping="scalesim")  # hand counts of the fold order


def test_os_small_ifmap_buffer_refetches_and_prices():
    # GEMM m=4 (tokens), k=8, n=4 on a 2x2 OS array. ifmap SRAM 16 bytes -> halves of 8 words.
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4)
    hw = _hw("os", ifmap_kb=16 / 1024)
    s = accelsim.simulate(Workload(name="t", layers=[layer]), hw).layers[0]
    # folds: ceil(4/2) x ceil(4/2) = 4, each k + R + C - 2 = 10 cycles; SCALE-Sim counts 40 - 1
    assert s.compute_cycles == 39
    # SRAM: ifmap reads ceil(n/C) m k = 64, filter reads ceil(m/R) k n = 64, ofmap writes m n = 16
    assert s.sram_accesses["ifmap_sram_reads"] == 64
    assert s.sram_accesses["filter_sram_reads"] == 64
    assert s.sram_accesses["ofmap_sram_writes"] == 16
    # A (32 words) does not fit half the ifmap SRAM -> refetched for each of the 2 column folds;
    # B slices (16 words) fit -> fetched once per column fold; outputs written once.
    assert s.dram_read_bytes_by_operand == {"ifmap": 64, "filter": 32, "psum": 0}
    assert s.dram_read_bytes == 96 and s.dram_write_bytes == 16
    assert s.compulsory_dram_bytes == 32 + 32 + 16

    e = s.energy_by_component_pj
    mac = 0.2 / 64 * 8 * 8 + 0.03 / 8 * 32                     # 8x8 multiply + 32-bit accumulate
    assert e["mac"] == pytest.approx(128 * mac)                # 128 MACs
    assert e["pe_rf"] == pytest.approx(128 * 16 * 0.095 / 8)   # OS: weight and activation forwarded
    sram_small = 10 / 64 * math.sqrt((16 / 1024) / 8)          # pJ/bit, sqrt-capacity model
    sram_1k = 10 / 64 * math.sqrt(1 / 8)
    assert e["ifmap_sram"] == pytest.approx((64 + 64) * 8 * sram_small)   # 64 reads + 64 fills
    assert e["filter_sram"] == pytest.approx((64 + 32) * 8 * sram_1k)
    assert e["ofmap_sram"] == pytest.approx((16 + 16) * 8 * sram_1k)      # writes + drain reads
    assert e["dram"] == pytest.approx((96 + 16) * 8 * 20.0)
    leak_mw = 0.46 / 64 * (16 / 1024 + 1 + 1)
    assert e["static"] == pytest.approx(leak_mw * s.latency_cycles / 1000 * 1e3)


def test_ws_partial_sums_spill_when_ofmap_buffer_is_small():
    # WS: k=8 over R=2 -> 4 row folds of partial sums. ofmap SRAM 8 bytes (half = 32 bits) cannot
    # hold one column fold's psum block (m x 2 = 8 words at 32 bits), so psums go to DRAM and back.
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4)
    hw = _hw("ws", ifmap_kb=1, ofmap_kb=8 / 1024)
    s = accelsim.simulate(Workload(name="t", layers=[layer]), hw).layers[0]
    # folds 4 x 2, each 2R + C + T - 2 = 4 + 2 + 4 - 2 = 8 cycles
    assert s.compute_cycles == 8 * 8 - 1
    assert s.sram_accesses["ofmap_sram_writes"] == 4 * 16  # ceil(k/R) m n
    psum_block_bits = 4 * 2 * 32
    # per column fold: 3 spills (row folds 0..2) and 3 read-backs (row folds 1..3); 2 column folds
    assert s.dram_read_bytes_by_operand["psum"] == 2 * 3 * psum_block_bits / 8
    assert s.dram_write_bytes == (2 * 3 * psum_block_bits + 16 * 8) / 8


def test_ws_partial_sums_stay_on_chip_with_room():
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4)
    s = accelsim.simulate(Workload(name="t", layers=[layer]), _hw("ws", ifmap_kb=1)).layers[0]
    assert s.dram_read_bytes_by_operand["psum"] == 0
    assert s.dram_write_bytes == 16


def test_is_mapping_cycles():
    # IS: Sr = k = 8 (4 row folds), Sc = m = 4 (2 col folds), T = n = 4: 8 folds of 2R+C+T-2 = 8
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4)
    s = accelsim.simulate(Workload(name="t", layers=[layer]), _hw("is", ifmap_kb=1)).layers[0]
    assert s.compute_cycles == 63
    assert s.sram_accesses["ifmap_sram_reads"] == 32        # m k
    assert s.sram_accesses["filter_sram_reads"] == 2 * 32   # ceil(m/C) k n


def test_bandwidth_bound_layer_stalls_as_computed():
    # 1 GB/s at 1 GHz = 8 bits/cycle. OS 2x2, GEMM 4x8x4, everything resident except nothing:
    layer = Linear(name="fc", in_features=8, out_features=4, tokens=4)
    hw = _hw("os", ifmap_kb=1).model_copy(update={"dram": DramConfig(bw_gbps=1.0)})
    s = accelsim.simulate(Workload(name="t", layers=[layer]), hw).layers[0]
    # DRAM moves 32 + 32 words in and 16 out = 80 cycles; compute 39 cycles; one channel.
    assert s.dram_busy_cycles == 80
    assert s.latency_cycles >= 80
    assert s.latency_cycles == s.fill_cycles + s.compute_cycles + s.stall_cycles + s.drain_cycles
    assert s.bottleneck in ("dram_bandwidth", "dram_write")


def test_quantised_layer_moves_fewer_bits_and_costs_less_per_mac():
    from accelsim.workload import Compression, Quant

    dense = Linear(name="fc", in_features=64, out_features=64, tokens=16)
    q4 = dense.model_copy(update={"compression": Compression(quant=Quant(weight_bits=4, act_bits=8))})
    hw = _hw("os", ifmap_kb=8, filter_kb=8, ofmap_kb=8)
    r = accelsim.simulate(Workload(name="t", layers=[q4]), hw)
    s = r.layers[0]
    d = accelsim.simulate(Workload(name="t", layers=[dense]), hw).layers[0]
    assert s.dram_read_bytes_by_operand["filter"] == d.dram_read_bytes_by_operand["filter"] / 2
    mac4 = 0.2 / 64 * 4 * 8 + 0.03 / 8 * 32
    assert s.energy_by_component_pj["mac"] == pytest.approx(s.macs * mac4)
    assert r.compared_to_dense and s.dense_energy_pj == pytest.approx(d.energy_pj)
    assert s.energy_pj < d.energy_pj
