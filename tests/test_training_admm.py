"""ADMM: projections honour every granularity and quantisation set; W/Z/U mechanics; progressive schedule."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend.recipe import (BlockPrune, FilterPrune, NMPrune, PatternPrune, QuantSpec,  # noqa: E402
                                      UnstructuredPrune)
from accelsim.frontend.training import admm, crossbar  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402

torch.set_num_threads(1)


def _w(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _blocks_uniform(mask2d, bh, bw) -> bool:
    rows, cols = mask2d.shape
    for r in range(0, rows, bh):
        for c in range(0, cols, bw):
            blk = mask2d[r:r + bh, c:c + bw]
            if blk.any() and not blk.all():
                return False
    return True


def test_unstructured_projection_keeps_exact_count_of_largest():
    w = _w(16, 8, 3, 3)
    z, mask = admm.project(w, UnstructuredPrune(density=0.25), None)
    assert int(mask.sum()) == round(0.25 * w.numel())
    assert float(w.abs()[~mask].max()) <= float(w.abs()[mask].min())
    assert torch.equal(z, w * mask)


def test_filter_projection_removes_whole_rows():
    w = _w(12, 4, 3, 3)
    _, mask = admm.project(w, FilterPrune(density=0.5), None)
    rows = mask.reshape(12, -1)
    assert all(bool(r.all()) or not bool(r.any()) for r in rows) and int(rows.all(dim=1).sum()) == 6


def test_block_and_crossbar_projections_keep_whole_tiles():
    w = _w(32, 48)
    _, mask = admm.project(w, BlockPrune(density=0.25, block=(4, 8)), None)
    assert _blocks_uniform(mask, 4, 8) and int(mask.sum()) == 0.25 * w.numel()
    xp = crossbar.CrossbarBlockPrune(density=0.5, rows=16, cols=8)  # 16 word lines (K) x 8 bit lines (out)
    _, mask = admm.project(w, xp, None)
    assert _blocks_uniform(mask, 8, 16)  # GEMM view: 8 outputs x 16 reduction
    assert not _blocks_uniform(mask, 16, 8) or mask.all()
    used, total = crossbar.crossbar_occupancy(mask, 16, 8)
    assert (used, total) == (6, 12)


def test_pattern_projection_uses_library_patterns_only():
    w = _w(8, 4, 3, 3)
    spec = PatternPrune(entries=4, num_patterns=6, kernel_density=0.75)
    lib = admm.pr.pattern_library([w], spec.entries, spec.num_patterns)
    _, mask = admm.project(w, spec, None, library=lib)
    kernels = mask.reshape(-1, 9)
    allowed = {tuple(p.reshape(-1).tolist()) for p in lib}
    kept = [k for k in kernels if k.any()]
    assert len(kept) == round(0.75 * 32)
    assert all(tuple(k.tolist()) in allowed for k in kept) and all(int(k.sum()) == 4 for k in kept)


def test_nm_projection():
    _, mask = admm.project(_w(8, 16), NMPrune(n=2, m=4), None)
    assert (mask.reshape(8, 4, 4).sum(dim=2) == 2).all()


@pytest.mark.parametrize("spec,check", [
    (QuantSpec(weight_bits=4), lambda q: q.unique().numel() <= 15),
    (QuantSpec(weight_bits=4, scheme="pow2"),
     lambda q: all(v == 0 or abs(math.log2(abs(v)) - round(math.log2(abs(v)))) < 1e-6 for v in q.unique().tolist())),
    (QuantSpec(weight_bits=1, scheme="binary", granularity="channel"),
     lambda q: all(row.abs().unique().numel() == 1 for row in q.reshape(q.shape[0], -1))),
    (crossbar.ConductanceQuant(levels=4), lambda q: q.unique().numel() <= 7),
])
def test_quantisation_projections_land_on_levels(spec, check):
    w = _w(10, 20, seed=1)
    z, _ = admm.project(w, None, spec)
    assert check(z)
    # masked: the pruned weights stay exactly zero after quantisation (binary has no zero level)
    mask = w.abs() > 0.5
    zm, _ = admm.project(w, None, spec, mask=mask)
    assert (zm[~mask] == 0).all()


def test_conductance_levels_and_mismatch():
    spec = crossbar.ConductanceQuant(levels=8, mismatch_sigma=0.0)
    w = _w(6, 10)
    q = crossbar.quantize_conductance(w, spec)
    assert q.unique().numel() <= 2 * 8 - 1 and spec.weight_bits == 4
    mask = torch.zeros_like(w, dtype=torch.bool)
    mask[:3] = True
    assert torch.equal(crossbar.program_crossbar(w, spec, mask), q * mask)
    noisy_spec = crossbar.ConductanceQuant(levels=8, mismatch_sigma=0.1)
    a = crossbar.program_crossbar(w, noisy_spec, mask, torch.Generator().manual_seed(0))
    b = crossbar.program_crossbar(w, noisy_spec, mask, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, q * mask)  # seeded, and the noise is there
    assert (a[~mask] == 0).all()
    rel = ((a - q)[mask].abs() / q.abs().max()).max()
    assert 0 < float(rel) < 1.0


def test_z_and_u_updates_follow_admm():
    model = build_model("mlp")
    m = admm.ADMM(admm.ADMMConfig(prune=UnstructuredPrune(density=0.2), admm_epochs=2, retrain_epochs=1))
    m.setup(model, TrainConfig())
    m.on_epoch_start(model, 0)
    assert m.phase.kind == "admm_prune"
    w = model.fc2.weight
    z0 = m.Z["fc2"].clone()
    assert torch.equal(z0, admm.project(w.detach(), UnstructuredPrune(density=0.2), None)[0])
    assert (m.U["fc2"] == 0).all()
    with torch.no_grad():
        w.add_(0.01 * _w(*w.shape, seed=3))
    rho0 = m.rho
    m.on_epoch_end(model, 0, {})
    z1 = admm.project(w.detach() + 0, UnstructuredPrune(density=0.2), None)[0]  # U was 0: Z = P(W + U)
    assert torch.equal(m.Z["fc2"], z1)
    assert torch.allclose(m.U["fc2"], w.detach() - z1)
    assert m.rho == pytest.approx(rho0 * m.cfg.rho_growth)
    # the W-step gradient of rho/2 ||W - Z + U||^2 is rho (W - Z + U)
    w.grad = torch.zeros_like(w)
    m.after_backward(model)
    assert torch.allclose(w.grad, m.rho * (w.detach() - m.Z["fc2"] + m.U["fc2"]))


def test_progressive_training_meets_every_constraint():
    data = load_digits_data(0).subset(256, 64)
    cfg = admm.ADMMConfig(prune=BlockPrune(density=0.25, block=(4, 4)), quant=QuantSpec(weight_bits=3, scheme="pow2"),
                          stage_densities=[0.5, 0.25], admm_epochs=1, retrain_epochs=1, quant_admm_epochs=1,
                          quant_retrain_epochs=1, skip=("fc3",))
    m = admm.ADMM(cfg)
    res = train(build_model("mlp"), data, m, TrainConfig(progress=False, lr=0.05))
    assert [p.kind for p in m.phases] == ["admm_prune", "retrain", "admm_prune", "retrain", "admm_quant",
                                          "retrain_quant"]
    assert res.epochs_run == 6 and [h["phase"] for h in res.history][:2] == ["admm_prune", "retrain"]
    recs = m.records(res.model)
    assert set(recs) == {"fc1", "fc2"}
    for name in ("fc1", "fc2"):
        w = res.model.get_submodule(name).weight.detach()
        mask = m.masks[name]
        assert abs(float(mask.float().mean()) - 0.25) < 1e-6 and _blocks_uniform(mask, 4, 4)
        assert (w[~mask] == 0).all()
        nz = w[w != 0].abs()
        assert torch.allclose(torch.log2(nz), torch.round(torch.log2(nz)))  # powers of two
        assert nz.unique().numel() <= 3  # 3-bit pow2: sign + 3 exponents
        assert recs[name].weight_bits == 3 and recs[name].scheme == "pow2" and recs[name].prune.kind == "block"
    assert res.model.fc3.weight.detach().unique().numel() > 100  # skipped layer untouched by constraints


def test_fused_quantisers_equal_the_front_end():
    from accelsim.frontend import quantization as qz
    from accelsim.frontend.training import _fastquant as fq

    g = torch.Generator().manual_seed(0)
    for shape in [(16, 1, 3, 3), (10, 512)]:
        w = torch.randn(shape, generator=g)
        for gran in ("tensor", "channel"):
            for b in (2, 4, 8):
                spec = QuantSpec(weight_bits=b, granularity=gran)
                assert torch.equal(fq.quantize_weight(w, spec), qz.quantize_weight(w, spec))
        for shift in (0.0, 0.5, 3.0):
            x = torch.relu(torch.randn(64, *shape[1:], generator=g)) - shift
            for b in (2, 4, 8):
                assert torch.equal(fq.fake_quant_act(x, b), qz.fake_quant_activation(x, b))


@pytest.mark.parametrize("conv", [False, True])
def test_fused_quant_layer_is_straight_through(conv):
    from accelsim.frontend import quantization as qz
    from accelsim.frontend.training import _fastquant as fq

    g = torch.Generator().manual_seed(1)
    mod = torch.nn.Conv2d(3, 4, 3, padding=1) if conv else torch.nn.Linear(12, 5)
    x = torch.randn((2, 3, 5, 5) if conv else (6, 12), generator=g, requires_grad=True)
    spec = QuantSpec(weight_bits=3)
    mask = (torch.rand(mod.weight.shape, generator=g) > 0.3).float()
    fq.install_quant_forward(mod, lambda w: qz.quantize_weight(w * mask, spec), 4, mask)
    up = torch.randn(mod(x).shape, generator=g)
    (mod(x) * up).sum().backward()
    gx, gw, gb = x.grad.clone(), mod.weight.grad.clone(), mod.bias.grad.clone()
    fq.remove_quant_forward(mod)
    x2 = x.detach().clone().requires_grad_(True)
    wq = mod.weight + (qz.quantize_weight(mod.weight.detach() * mask, spec) - mod.weight).detach()
    xq = qz.fake_quant_activation(x2, 4)
    y = torch.nn.functional.conv2d(xq, wq, mod.bias, padding=1) if conv else torch.nn.functional.linear(xq, wq, mod.bias)
    mod.weight.grad = None
    mod.bias.grad = None
    (y * up).sum().backward()
    assert torch.allclose(gx, x2.grad, atol=1e-5) and torch.allclose(gb, mod.bias.grad, atol=1e-5)
    assert torch.allclose(gw, mod.weight.grad * mask, atol=1e-5)
