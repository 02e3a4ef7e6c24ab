"""Every compressed run is compared with its dense original on the same hardware."""
from __future__ import annotations

import pytest

import accelsim
from accelsim.workload import Compression, Factorization, Linear, Quant, Sparsity, Workload

HW = "hw_configs/systolic_32x32_is.yaml"


def test_factorised_layers_collapse_to_the_original(root):
    fact = Factorization(kind="lowrank", rank=16)
    wl = Workload(name="lr", layers=[
        Linear(name="fc1.v", in_features=512, out_features=16, tokens=64,
               compression=Compression(factorization=fact, factor_of="fc1", original={"out_features": 512})),
        Linear(name="fc1.u", in_features=16, out_features=512, tokens=64,
               compression=Compression(factorization=fact, factor_of="fc1")),
        Linear(name="fc2", in_features=512, out_features=10, tokens=64),
    ])
    dense = wl.densified()
    assert [layer.name for layer in dense.layers] == ["fc1", "fc2"]
    assert dense.layers[0].out_features == 512 and dense.total_macs == 64 * (512 * 512 + 512 * 10)
    rep = accelsim.simulate(wl, root / HW)
    assert rep.compared_to_dense
    ref = accelsim.simulate(dense, root / HW)
    s = rep.summary()
    assert s["dense_latency_cycles"] == ref.latency_cycles
    assert s["speedup_vs_dense"] == pytest.approx(ref.latency_cycles / rep.latency_cycles)
    v, u, fc2 = rep.layers
    # both pieces report the speedup of the whole factorised group
    group = ref.layers[0].latency_cycles / (v.latency_cycles + u.latency_cycles)
    assert v.speedup_vs_dense == pytest.approx(group, rel=1e-3) and u.speedup_vs_dense == pytest.approx(group, rel=1e-3)
    assert fc2.speedup_vs_dense == pytest.approx(1.0)
    assert any("factorised" in n for n in v.notes)


def test_unexploited_sparsity_is_explained(root):
    layer = Linear(name="fc", in_features=256, out_features=256, tokens=32,
                   compression=Compression(sparsity=Sparsity(kind="unstructured", density=0.2)))
    rep = accelsim.simulate(Workload(name="s", layers=[layer]), root / HW)
    s = rep.layers[0]
    assert s.speedup_vs_dense == pytest.approx(1.0)  # this array does not skip zeros ...
    assert any("does not skip zeros" in n for n in s.notes)  # ... and says so


def test_dense_workload_is_not_compared_by_default(root):
    rep = accelsim.simulate(root / "models" / "tiny_cnn.yaml", root / HW)
    assert not rep.compared_to_dense and "speedup_vs_dense" not in rep.to_frame().columns
    rep = accelsim.simulate(root / "models" / "tiny_cnn.yaml", root / HW, compare_dense=True)
    assert rep.summary()["speedup_vs_dense"] == pytest.approx(1.0)


def test_low_bit_layers_show_their_gain(root):
    layer = Linear(name="fc", in_features=1024, out_features=1024, tokens=1,
                   compression=Compression(quant=Quant(weight_bits=4, act_bits=8)))
    rep = accelsim.simulate(Workload(name="q", layers=[layer]), root / HW)
    s = rep.layers[0]
    assert s.speedup_vs_dense > 1.5  # a DRAM-bound layer moves half the weight bits
    assert s.energy_pj < s.dense_energy_pj
