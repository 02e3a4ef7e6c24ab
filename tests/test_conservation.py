"""Conservation laws on every shipped model x every shipped systolic config."""
from __future__ import annotations

import math

import pytest

import accelsim
from accelsim.hardware import SystolicArray

from conftest import ROOT

MODELS = sorted(p.name for p in (ROOT / "models").glob("*.yaml"))
SYSTOLIC = sorted(p.name for p in (ROOT / "hw_configs").glob("*.yaml")
                  if isinstance(accelsim.load_hardware(p), SystolicArray))


@pytest.fixture(scope="module")
def reports():
    out = {}
    for hw_name in SYSTOLIC:
        hw = accelsim.load_hardware(ROOT / "hw_configs" / hw_name)
        for m in MODELS:
            wl = accelsim.load_workload(ROOT / "models" / m)
            out[(hw_name, m)] = (wl, hw, accelsim.simulate(wl, hw))
    return out


@pytest.mark.parametrize("hw_name", SYSTOLIC)
@pytest.mark.parametrize("model", MODELS)
def test_conservation(reports, hw_name, model):
    wl, hw, rep = reports[(hw_name, model)]
    assert rep.macs == wl.total_macs  # MACs done = MACs in the workload
    bw_bits = hw.dram_bits_per_cycle()
    for s in rep.layers:
        assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes  # >= compulsory traffic
        assert 0.0 <= s.utilization <= 1.0 + 1e-12
        assert 0.0 <= s.compute_utilization <= 1.0 + 1e-12
        assert 0.0 <= s.mapping_efficiency <= 1.0 + 1e-12
        assert s.stall_cycles >= 0 and s.fill_cycles >= 0 and s.drain_cycles >= 0
        assert s.latency_cycles == s.fill_cycles + s.compute_cycles + s.stall_cycles + s.drain_cycles
        assert s.dram_busy_cycles <= s.latency_cycles
        dram_bits = 8 * (s.dram_read_bytes + s.dram_write_bytes)
        assert s.dram_busy_cycles >= math.floor(dram_bits / bw_bits) - 1  # the channel moved every bit
        assert all(e >= 0 for e in s.energy_by_component_pj.values())
        assert s.energy_pj == pytest.approx(sum(s.energy_by_component_pj.values()))
    df = rep.to_frame()
    assert list(df["layer"]) == [layer.name for layer in wl.layers]  # workload order


def test_deterministic(reports):
    wl, hw, rep = reports[(SYSTOLIC[0], "resnet50.yaml")]
    again = accelsim.simulate(wl, hw)
    assert again.to_frame().equals(rep.to_frame())
