"""Pruning / quantisation / factorisation / SmartExchange projections on real tensors."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from accelsim.frontend import factorization as fz  # noqa: E402
from accelsim.frontend import pruning as pr  # noqa: E402
from accelsim.frontend import quantization as qz  # noqa: E402
from accelsim.frontend.recipe import FactorizeSpec, QuantSpec  # noqa: E402
from accelsim.frontend.smart_exchange import decompose  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture()
def w():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 16, 3, 3, generator=g)


def test_unstructured_keeps_exactly_the_largest(w):
    m = pr.unstructured_mask(w, 0.3)
    assert int(m.sum()) == round(0.3 * w.numel())
    assert w.abs()[m].min() >= w.abs()[~m].max()


def test_global_unstructured_uses_one_threshold():
    a = torch.linspace(-1, 1, 100).reshape(10, 10)
    b = 1.2 * torch.linspace(-1, 1, 100).reshape(20, 5)
    ms = pr.global_unstructured_masks({"a": a, "b": b}, 0.25)
    kept = torch.cat([a[ms["a"]].abs(), b[ms["b"]].abs()])
    dropped = torch.cat([a[~ms["a"]].abs(), b[~ms["b"]].abs()])
    assert len(kept) == 50 and kept.min() >= dropped.max()
    assert ms["b"].sum() > ms["a"].sum()  # larger weights survive more


def test_filter_and_channel_masks_are_whole_rows_and_columns(w):
    f = pr.filter_mask(w, 0.25, "l1")
    rows = f.reshape(32, -1)
    assert bool((rows.all(1) | (~rows).all(1)).all()) and int(rows.all(1).sum()) == 8
    norms = w.abs().reshape(32, -1).sum(1)
    assert norms[rows.all(1)].min() >= norms[~rows.all(1)].max()
    c = pr.channel_mask(w, 0.5, "l2")
    cols = c.permute(1, 0, 2, 3).reshape(16, -1)
    assert bool((cols.all(1) | (~cols).all(1)).all()) and int(cols.all(1).sum()) == 8


def test_block_mask_is_blockwise():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 20, generator=g)
    m = pr.block_mask(x, 0.25, (4, 5))
    blocks = m.reshape(3, 4, 4, 5).permute(0, 2, 1, 3).reshape(12, 20)
    assert bool((blocks.all(1) | (~blocks).all(1)).all())
    assert int(blocks.all(1).sum()) == 3  # 25% of 12 blocks


def test_nm_mask(w):
    m = pr.nm_mask(w, 2, 4)
    groups = m.reshape(32, -1).reshape(-1, 4)
    assert bool((groups.sum(1) == 2).all())
    vals = w.reshape(32, -1).reshape(-1, 4).abs()
    assert bool((vals[groups].reshape(-1, 2).min(1).values >= vals[~groups].reshape(-1, 2).max(1).values).all())
    with pytest.raises(ValueError):
        pr.nm_mask(torch.randn(4, 6), 2, 4)


def test_pattern_library_and_connectivity(w):
    assert pr.candidate_patterns(4).shape == (56, 9)  # C(8,3)
    lib = pr.pattern_library([w], 4, 6)
    assert lib.shape == (6, 3, 3) and bool(lib[:, 1, 1].all()) and bool((lib.sum((1, 2)) == 4).all())
    res = pr.pattern_mask(w, lib, 0.75)
    kernels = res.mask.reshape(-1, 9)
    kept = kernels.any(1)
    assert int(kept.sum()) == round(0.75 * 32 * 16)
    libset = {tuple(p.reshape(-1).tolist()) for p in lib}
    assert all(tuple(k.tolist()) in libset for k in kernels[kept])
    assert math.isclose(float(res.mask.float().mean()), 4 / 9 * 0.75, rel_tol=1e-6)
    ids = res.assignment.reshape(-1)
    assert bool(((ids >= 0) == kept).all())


def test_pattern_library_picks_the_most_frequent_pattern():
    # every kernel has its energy on the centre + the 3 top-row entries -> that pattern wins
    k = torch.full((8, 4, 3, 3), 0.01)
    k[:, :, 1, 1] = 1.0
    k[:, :, 0, :] = 1.0
    lib = pr.pattern_library([k], 4, 1)
    expected = torch.tensor([[1, 1, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert torch.equal(lib[0], expected)


def test_gs_rows_in_a_group_have_equal_nonzeros(w):
    res = pr.gs_mask(w, 0.3, group_rows=8)
    rows = res.mask.reshape(32, -1).sum(1).reshape(4, 8)
    assert bool((rows == rows[:, :1]).all())
    assert torch.equal(rows[:, 0], res.group_nnz)
    assert abs(float(res.mask.float().mean()) - 0.3) < 8 / w.numel() * 8 + 1e-9
    compact = pr.gs_compact(w, res)
    assert len(compact["values"]) == int(res.mask.sum())
    w2 = w.reshape(32, -1)
    rec = np.zeros(w2.shape, dtype=np.float32)
    row_ids = np.repeat(np.arange(32), res.mask.reshape(32, -1).sum(1).numpy())
    rec[row_ids, compact["indices"]] = compact["values"]
    assert np.allclose(rec, (w2 * res.mask.reshape(32, -1)).numpy())


def test_block_group_lasso_reweighting():
    x = torch.ones(4, 4, requires_grad=True)
    pen, weights = pr.block_group_lasso([x], (2, 2))
    assert math.isclose(float(pen.detach()), 4 * 2.0, rel_tol=1e-5)  # 4 blocks of norm 2
    pen.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert math.isclose(float(weights[0][0, 0]), 1 / (2 + 1e-3), rel_tol=1e-5)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_int_symmetric_levels_and_error(w, bits):
    q = qz.quantize_int(w, bits)
    assert qz.distinct_levels(q) <= 2 ** bits - 1
    scale = w.abs().max() / (2 ** (bits - 1) - 1)
    assert torch.allclose(q / scale, torch.round(q / scale), atol=1e-4)
    assert float((q - w).abs().max()) <= float(scale) / 2 + 1e-6


def test_quant_error_falls_with_bits_and_per_channel_helps(w):
    w = w * torch.linspace(0.1, 3, 32)[:, None, None, None]
    errs = [qz.relative_error(w, qz.quantize_weight(w, QuantSpec(weight_bits=b))) for b in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]
    pc = qz.relative_error(w, qz.quantize_weight(w, QuantSpec(weight_bits=4, granularity="channel")))
    assert pc < errs[1]
    asym = qz.quantize_int(torch.rand(100) + 1.0, 4, symmetric=False)
    assert qz.distinct_levels(asym) <= 16


def test_pow2_binary_ternary(w):
    q = qz.quantize_pow2(w, 4)
    nz = q[q != 0].abs()
    assert torch.allclose(torch.log2(nz), torch.round(torch.log2(nz)))
    assert torch.unique(nz).numel() <= 7
    b = qz.quantize_binary(w, per_channel=True)
    assert all(torch.unique(b[i]).numel() <= 2 for i in range(32))
    assert torch.allclose(b[0].abs().max(), w[0].abs().mean())
    t = qz.quantize_ternary(w, per_channel=False)
    assert torch.unique(t).numel() == 3 and bool(((t == 0) == (w.abs() <= 0.7 * w.abs().mean())).all())


def test_fake_quant_activation_has_straight_through_gradient():
    x = torch.linspace(-1, 3, 50, requires_grad=True)
    y = qz.fake_quant_activation(x, 4)
    assert torch.unique(y.detach()).numel() <= 16
    y.sum().backward()
    assert torch.allclose(x.grad, torch.ones(50))


def test_mixed_precision_meets_the_budget_and_gives_sensitive_layers_more_bits():
    g = torch.Generator().manual_seed(0)
    smooth = torch.randn(2000, generator=g)
    spiky = torch.randn(2000, generator=g) * torch.where(torch.rand(2000, generator=g) < 0.01, 50.0, 1.0)
    layers = {"smooth": {"weight": smooth, "macs": 1000, "nnz": 2000},
              "spiky": {"weight": spiky, "macs": 1000, "nnz": 2000}}
    bits, summary = qz.assign_bits(layers, [2, 4, 8], "bops", 0.75, granularity="tensor")
    assert summary["met"] == 1.0 and summary["cost"] <= 0.75 * summary["reference"]
    assert bits["spiky"] >= bits["smooth"]
    bits, summary = qz.assign_bits(layers, [4, 8], "size", 0.1)
    assert summary["met"] == 0.0 and bits == {"smooth": 4, "spiky": 4}


def test_svd_rank_rules():
    s = np.array([10.0, 5.0, 1.0, 0.1])
    assert fz.rank_by_energy(s, 0.9) == 1 + (100 / 126.01 < 0.9)  # 100/126.01 = 0.79 -> 2
    assert fz.rank_by_energy(s, 0.999) == 3
    g = torch.Generator().manual_seed(0)
    low = torch.randn(60, 5, generator=g) @ torch.randn(5, 80, generator=g)
    assert fz.vbmf_rank(low + 0.05 * torch.randn(60, 80, generator=g)) == 5


def test_factorized_layers_reproduce_at_full_rank_and_shrink_otherwise():
    torch.manual_seed(0)
    lin = torch.nn.Linear(40, 24)
    x = torch.randn(5, 40)
    full = fz.factorize_linear(lin, FactorizeSpec(rank_rule="fixed", rank=24))
    assert torch.allclose(full(x), lin(x), atol=1e-4)
    half = fz.factorize_linear(lin, FactorizeSpec(rank_rule="fixed", rank_fraction=0.5))
    assert half.v.out_features == 12 and half.u.in_features == 12
    conv = torch.nn.Conv2d(8, 12, 3, stride=2, padding=1)
    xc = torch.randn(2, 8, 9, 9)
    tk = fz.factorize_conv(conv, FactorizeSpec(method="tucker2", rank_rule="fixed", rank_fraction=1.0))
    assert isinstance(tk, fz.Tucker2Conv) and torch.allclose(tk(xc), conv(xc), atol=1e-4)
    ch = fz.factorize_conv(conv, FactorizeSpec(method="channel", rank_rule="fixed", rank=12))
    assert isinstance(ch, fz.ChannelDecomposedConv) and torch.allclose(ch(xc), conv(xc), atol=1e-4)
    small = fz.factorize_conv(conv, FactorizeSpec(method="tucker2", rank_rule="fixed", rank=3))
    assert small.core.weight.shape == (3, 3, 3, 3)
    err_small = float((small(xc) - conv(xc)).norm())
    mid = fz.factorize_conv(conv, FactorizeSpec(method="tucker2", rank_rule="fixed", rank=6))
    assert float((mid(xc) - conv(xc)).norm()) < err_small


def test_nuclear_norm_penalty_and_svt():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 4, generator=g, requires_grad=True)
    pen = fz.nuclear_norm_penalty([m])
    assert math.isclose(float(pen.detach()), float(torch.linalg.svdvals(m.detach()).sum()), rel_tol=1e-5)
    pen.backward()
    assert m.grad is not None
    s = torch.linalg.svdvals(m.detach())
    out = fz.svt(m.detach(), float(s[1]))
    assert int((torch.linalg.svdvals(out) > 1e-5).sum()) == 1


def test_smartexchange_structure_and_error(w):
    res = decompose(w, basis_size=3, ce_density=0.4, ce_bits=4, basis_bits=8, iterations=3)
    assert res.ce.shape == (32, 16 * 3, 3) and res.basis.shape == (32, 3, 3)
    nz = res.ce[res.ce != 0].abs()
    assert torch.allclose(torch.log2(nz), torch.round(torch.log2(nz)))  # signed powers of two
    assert torch.unique(nz).numel() <= 2 ** 3 - 1
    assert res.ce_density <= 0.4 + 1e-9
    rebuilt = (res.ce @ res.basis).reshape(32, -1)
    assert torch.allclose(rebuilt, res.weight.reshape(32, -1), atol=1e-5)
    denser = decompose(w, basis_size=3, ce_density=0.9, ce_bits=6, iterations=3)
    assert denser.rel_error < res.rel_error < 1.0
    assert res.storage_bits() == int((res.ce != 0).sum()) * 4 + 32 * 9 * 8
