"""The dense peers of the sparse engines (accelsim.hardware.peers): same resources, searched mappings."""
from __future__ import annotations

import pytest

import accelsim
from accelsim.hardware import load_hardware
from accelsim.hardware.peers import dense_peer, with_tile_overheads
from accelsim.workload import Conv2d, Linear, Workload


@pytest.fixture(scope="module")
def se(root):
    return load_hardware(root / "hw_configs" / "smartexchange_32x32.yaml")


def test_smartexchange_peer_is_the_shipped_equal_resource_array(root, se):
    peer = dense_peer(se)
    shipped = load_hardware(root / "hw_configs" / "systolic_32x32_os_256kb.yaml")
    assert peer.mapping == "search" and peer.num_pes == se.num_pes
    total = peer.ifmap_sram.size_kb + peer.filter_sram.size_kb + peer.ofmap_sram.size_kb
    assert total == se.total_sram_kb == 256
    assert peer.dram == se.dram and peer.clock_mhz == se.clock_mhz and peer.energy == se.energy
    keep = {"name", "description"}
    assert peer.model_dump(exclude=keep) == shipped.model_dump(exclude=keep)
    assert dense_peer(se, objective="energy").objective == "energy"


def test_gather_scatter_peer_keeps_lanes_and_sram(root):
    gs = load_hardware(root / "hw_configs" / "gather_scatter_sve128.yaml")
    peer = dense_peer(gs)
    assert (peer.rows, peer.cols, peer.dataflow) == (1, gs.lanes, "ws")
    total = peer.ifmap_sram.size_kb + peer.filter_sram.size_kb + peer.ofmap_sram.size_kb
    assert total == gs.scratchpad.size_kb + gs.weight_buffer.size_kb
    rep = accelsim.simulate(Workload(name="fc", layers=[Linear(name="fc", in_features=64, out_features=32)]), peer)
    assert rep.macs == 64 * 32 and rep.latency_cycles >= 64 * 32 / gs.lanes  # 8 MACs per cycle at most


def test_no_peer_for_other_kinds(root):
    with pytest.raises(TypeError, match="no dense peer"):
        dense_peer(load_hardware(root / "hw_configs" / "isaac_like.yaml"))


def test_tile_overheads_add_fill_drain_per_tile(se):
    ovh = with_tile_overheads(se)
    assert ovh.tile_overhead_cycles == se.pe_rows + se.pe_cols - 2 == 62
    # 64 output channels x 16x16 pixels with a 3x3x32 reduction: 2 channel tiles x 8 pixel tiles of 32
    wl = Workload(name="c", layers=[Conv2d(name="c", in_channels=32, out_channels=64, in_h=16, in_w=16,
                                          kernel=3, padding=1)])
    base = accelsim.simulate(wl, se.model_copy(update={"stall_model": "none"}))
    more = accelsim.simulate(wl, ovh.model_copy(update={"stall_model": "none"}))
    assert more.layers[0].compute_cycles - base.layers[0].compute_cycles == 62 * 2 * 8
    assert more.macs == base.macs == 64 * 16 * 16 * 32 * 9
