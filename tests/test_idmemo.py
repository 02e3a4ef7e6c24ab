"""Identity memos in front of value-keyed caches (accelsim._idmemo): same results as the value path."""
from __future__ import annotations

import pytest

import accelsim
from accelsim._idmemo import ValueKey, identity_memo, value_key
from accelsim.engines.systolic import searched as SR


def test_value_key_equality_is_value_equality():
    hw = accelsim.load_hardware("hw_configs/systolic_128x128_os.yaml")
    twin = hw.model_copy()  # equal, another object
    other = hw.model_copy(update={"rows": 64})
    assert twin is not hw
    assert value_key(hw) is value_key(hw)  # built once per object
    assert value_key(hw) == value_key(twin) and hash(value_key(hw)) == hash(value_key(twin))
    assert value_key(hw) != value_key(other)
    assert {value_key(hw): 1}.get(ValueKey(twin)) == 1
    with pytest.raises(TypeError):
        ValueKey([1, 2])  # unhashable: the callers fall back to no memo


def test_identity_memo_calls_once_per_object_and_value():
    calls = []

    @identity_memo(maxsize=2)
    def f(obj, k):
        calls.append((obj, k))
        return (tuple(obj), k)

    a, b = [1, 2], [1, 2]  # equal, two objects (the first argument is keyed by identity only)
    assert f(a, 1) == f(a, 1) == f(b, 1) == ((1, 2), 1)
    assert len(calls) == 2  # a once, b (equal but another object) once
    f(a, 2), f(b, 2)  # evicts (FIFO, maxsize 2)
    f(a, 1)
    assert len(calls) == 5
    f.cache_clear()
    f(a, 1)
    assert len(calls) == 6


def test_searched_helpers_equal_to_uncached():
    hw = accelsim.load_hardware("hw_configs/systolic_128x128_os.yaml")
    spec = {"D1": [("K", 16)], "D2": [("OX", 8), ("OY", 2)]}
    base = SR._base_hierarchy(hw, 8, 8)
    assert base is SR._base_hierarchy(hw, 8, 8)
    assert base == SR._base_hierarchy.__wrapped__.__wrapped__(hw, 8, 8)
    arr = SR._spec_array(base, spec)
    assert arr is SR._spec_array(base, {k: list(v) for k, v in spec.items()})
    sizes = {d.name: d.size for d in arr.array.dimensions}
    assert sizes == {"D1": 16, "D2": 16}
    assert SR._repriced(base, 0.5).array.mac_energy_pj == 0.5
    assert SR._repriced(base, 0.5) == base.model_copy(
        update={"array": base.array.model_copy(update={"mac_energy_pj": 0.5})})


def test_dram_traffic_memo_equals_the_cost_model_views():
    """dram_traffic's memo (keyed by layer, mapping and the hierarchy's structure) gives what the
    views compute, for hierarchies that differ in DRAM bandwidth / prices (shared) and in array
    shape (not shared)."""
    from accelsim.engines.systolic.searched import layer_dims, layer_hierarchy, search_best
    from accelsim.hardware import DramConfig, SramConfig, SystolicArray
    from accelsim.mapping import lowering as LW
    from accelsim.stats import Action
    from accelsim.workload.layer import Conv2d

    layer = Conv2d(name="c", in_channels=16, out_channels=24, in_h=14, in_w=14, kernel_h=3, kernel_w=3, pad_h=1,
                   pad_w=1)
    mac = Action("mac", "mac", layer.macs, 8, 8, "int")
    LW._TRAFFIC.clear()
    for rows, bw, pj in [(8, 8, 20.0), (8, 32, 20.0), (8, 8, 5.0), (16, 8, 20.0)]:
        hw = SystolicArray(name="t", rows=rows, cols=8, dataflow="ws", ifmap_sram=SramConfig(size_kb=4),
                           filter_sram=SramConfig(size_kb=4), ofmap_sram=SramConfig(size_kb=4),
                           dram=DramConfig(bw_gbps=bw, pj_per_bit=pj))
        dims = layer_dims(layer, hw)
        hier = layer_hierarchy(hw, mac, dims)
        mapping = search_best(dims, hier, hw).mapping
        got = LW.dram_traffic(dims, hier, mapping)
        assert got == LW._dram_traffic(dims, hier, mapping)
        assert got.read_bits is not LW.dram_traffic(dims, hier, mapping).read_bits  # fresh dicts per call
    shapes = {k[2] for k in LW._TRAFFIC}
    assert len(shapes) == 1  # DRAM bandwidth/price and array rows are not part of the structure
