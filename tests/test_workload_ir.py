"""The workload IR: GEMM views, output sizes, unique operand words, compression records, I/O."""
from __future__ import annotations

import pytest

from accelsim.workload import (
    Compression, Conv2d, Elementwise, Linear, Matmul, Pool, Quant, Recurrent, Sparsity, Workload, load_workload,
    read_scalesim_topology, save_workload,
)
from conftest import REF


def test_conv_gemm_view_and_macs():
    c = Conv2d(name="c", in_channels=64, out_channels=128, in_h=56, in_w=56, kernel=3, stride=2, padding=1)
    assert (c.out_h, c.out_w) == (28, 28)
    (g,) = c.gemms()
    assert (g.m, g.n, g.k, g.count) == (28 * 28, 128, 9 * 64, 1)
    assert c.macs == 28 * 28 * 128 * 9 * 64
    assert c.weight_words == 128 * 64 * 9
    assert g.a_unique == 64 * 56 * 56  # every input pixel is read once (padding is free)


def test_depthwise_runs_one_gemm_per_group():
    c = Conv2d(name="dw", in_channels=32, out_channels=32, in_h=16, in_w=16, kernel=3, padding=1, groups=32)
    (g,) = c.gemms()
    assert c.is_depthwise and (g.m, g.n, g.k, g.count) == (256, 1, 9, 32)
    assert c.macs == 256 * 9 * 32


def test_strided_1x1_conv_reads_only_needed_pixels():
    c = Conv2d(name="ds", in_channels=8, out_channels=16, in_h=8, in_w=8, kernel=1, stride=2)
    (g,) = c.gemms()
    assert (c.out_h, c.out_w) == (4, 4)
    assert g.a_unique == 8 * 4 * 4  # every other row and column


def test_scalesim_ceil_rounding():
    c = Conv2d(name="c", in_channels=3, out_channels=8, in_h=56, in_w=56, kernel=1, stride=2, out_rounding="ceil")
    assert c.out_h == 29  # SCALE-Sim: ceil((56 - 1 + 2) / 2), not 28
    c = Conv2d(name="c", in_channels=3, out_channels=8, in_h=224, in_w=224, kernel=7, stride=2, out_rounding="ceil")
    assert c.out_h == 110  # SCALE-Sim's ceil((224 - 7 + 2) / 2)
    c = Conv2d(name="c", in_channels=3, out_channels=8, in_h=57, in_w=57, kernel=1, stride=2, out_rounding="ceil")
    assert c.out_h == 29


def test_matmul_attention_and_weight_sharing():
    qk = Matmul(name="qk", m=128, k=64, n=128, heads=12)
    (g,) = qk.gemms()
    assert g.count == 12 and not g.b_is_weight and qk.weight_words == 0
    w = Matmul(name="w", m=4, k=8, n=16, batch=3, b_operand="weight")
    assert w.weight_words == 8 * 16  # weights shared across the batch
    assert w.gemms()[0].b_distinct == 1


def test_lstm_lowers_to_input_and_recurrent_gemms():
    r = Recurrent(name="l", op="lstm", input_size=8, hidden_size=4, seq_len=5, batch=2)
    x, h = r.gemms()
    assert (x.m, x.n, x.k, x.count) == (10, 16, 8, 1)
    assert (h.m, h.n, h.k, h.count) == (2, 16, 4, 5)
    assert r.macs == 5 * 2 * (8 + 4) * 16
    assert r.weight_words == 16 * (8 + 4)  # recurrent weights counted once, not per step
    gru = Recurrent(name="g", op="gru", input_size=8, hidden_size=4)
    assert gru.gates == 3


def test_memory_bound_layers():
    e = Elementwise(name="add", elements=100, num_inputs=2)
    assert e.macs == 0 and e.input_words == 200 and e.output_words == 100 and not e.is_compute
    p = Pool(name="gp", channels=512, in_h=7, in_w=7, global_pool=True, mode="avg")
    assert (p.out_h, p.out_w) == (1, 1) and p.vector_ops == 512 * 49


def test_compression_roundtrip_and_densified(tmp_path):
    comp = Compression(sparsity=Sparsity(kind="nm", n=2, m=4, density=0.5, format="nm_index"),
                       quant=Quant(weight_bits=4), original={"out_channels": 64})
    layer = Conv2d(name="c", in_channels=16, out_channels=48, in_h=8, in_w=8, kernel=3, padding=1, compression=comp)
    wl = Workload(name="w", layers=[layer, Linear(name="fc", in_features=48, out_features=10)])
    path = tmp_path / "w.yaml"
    save_workload(wl, path)
    back = load_workload(path)
    assert back == wl
    assert not back.is_dense
    dense = back.densified()
    assert dense.is_dense and dense.layers[0].out_channels == 64
    json_path = tmp_path / "w.json"
    save_workload(wl, json_path)
    assert load_workload(json_path) == wl


def test_nm_density_defaults_to_n_over_m():
    s = Sparsity(kind="nm", n=1, m=4)
    assert s.effective_density == 0.25


def test_scalesim_topologies_read(ref=REF):
    wl = read_scalesim_topology(REF / "scalesim_topologies" / "conv_nets" / "Resnet18.csv")
    assert len(wl) == 21 and wl.layers[0].out_h == 110
    g = read_scalesim_topology(REF / "scalesim_topologies" / "GEMM_mnk" / "gpt2.csv")
    assert all(layer.op == "linear" for layer in g.layers)


def test_zoo_prefix():
    wl = load_workload("zoo:tiny_cnn")
    assert wl.total_macs > 0


@pytest.mark.parametrize("bad", [{"kind": "block"}, {"kind": "pattern"}, {"kind": "dense", "density": 0.5}])
def test_sparsity_records_validate(bad):
    with pytest.raises(ValueError):
        Sparsity(**bad)
