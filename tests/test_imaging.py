"""Image-to-image task, generator space, pruning/quantisation helpers and the generator search (torch)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.gen_search import search_generator  # noqa: E402
from accelsim.frontend.imaging import (Cell, GenSpec, Generator, count_macs, gen_workload, load_sr_digits,  # noqa: E402
                                       psnr, ssim, uniform_spec)
from accelsim.frontend.layerwise import fake_quant_model, magnitude_masks, magnitude_scores  # noqa: E402

SPECS = [uniform_spec(8), GenSpec(4, (Cell(8, 5, "dwsep"), Cell(8, 3, "res"), Cell(4, 1, "conv"))),
         GenSpec(6, (Cell(6, 3, "res"), Cell(12, 1, "dwsep")))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label())
def test_workload_matches_the_torch_generator(spec):
    g = Generator(spec)
    x = torch.rand(2, 1, 4, 4)
    assert g(x).shape == (2, 1, 8, 8)
    convs = {n: m for n, m in g.named_modules() if isinstance(m, torch.nn.Conv2d)}
    wl = gen_workload(spec)
    by_name = {l.name: l for l in wl.layers if l.op == "conv2d"}
    assert set(by_name) == set(convs)
    for n, m in convs.items():  # every conv runs at 4x4 with 'same' padding: MACs = weights * 16
        assert by_name[n].macs == m.weight.numel() * 16
        assert by_name[n].weight_words == m.weight.numel()
    assert count_macs(spec) == sum(m.weight.numel() * 16 for m in convs.values())


def test_metrics_by_hand():
    a = torch.zeros(1, 1, 8, 8)
    b = torch.full((1, 1, 8, 8), 0.1)
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert ssim(b, b) == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, b) < 1.0
    d = load_sr_digits()
    assert d.lr_train.shape[1:] == (1, 4, 4) and d.hr_train.shape[1:] == (1, 8, 8)
    assert torch.allclose(d.lr_test[0, 0, 0, 0], d.hr_test[0, 0, :2, :2].mean())


def test_masks_and_scores():
    g = Generator(uniform_spec(8))
    masks = magnitude_masks(g, {"cells.0.a": 0.25, "head": 0.5})
    assert set(masks) == {"cells.0.a.weight", "head.weight"}
    assert float(masks["cells.0.a.weight"].mean()) == pytest.approx(0.25, abs=0.02)
    s = magnitude_scores(g, (1.0, 0.5, 0.25))
    assert sum(v[1.0] for v in s.values()) == pytest.approx(1.0)
    for v in s.values():  # magnitude kept: more than the density's share (largest weights first)
        assert v[1.0] >= v[0.5] >= v[0.25] and v[0.5] >= 0.5 * v[1.0] - 1e-9


def test_fake_quant():
    torch.manual_seed(0)
    g = Generator(uniform_spec(8)).eval()
    x = torch.rand(16, 1, 4, 4)
    names = [n for n, m in g.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        ref = g(x)
        q8 = fake_quant_model(g, {n: (8, 8) for n in names}, x)(x)
        q2 = fake_quant_model(g, {n: (2, 2) for n in names}, x)(x)
    e8, e2 = float((q8 - ref).abs().max()), float((q2 - ref).abs().max())
    assert 0 < e8 < 0.05 and e2 > 4 * e8
    with pytest.raises(ConfigError, match="bits"):
        fake_quant_model(g, {"nope": (8, 8)}, x)


def test_generator_search_respects_the_budget():
    torch.set_num_threads(1)
    d = load_sr_digits()
    teacher = Generator(uniform_spec(8)).eval()
    budget = count_macs(uniform_spec(6))
    res = search_generator(teacher, d, max_macs=budget, widths=(2, 4, 6, 8), kernels=(1, 3), cells=2,
                           population=3, generations=1, proxy_epochs=1, seed=0)
    assert res.evaluated and all(c.macs <= budget for c in res.evaluated)
    assert res.best.macs <= budget and math.isfinite(res.best.proxy_psnr)
    assert res.best.proxy_psnr == max(c.proxy_psnr for c in res.evaluated)
    with pytest.raises(ConfigError, match="budget"):
        search_generator(teacher, d)
    with pytest.raises(ConfigError, match="budget"):
        search_generator(teacher, d, max_macs=10, widths=(8,), cells=2, population=2)
    with pytest.raises(ConfigError, match="op"):
        GenSpec(4, (Cell(4, 3, "bogus"),))


def test_distillation_search_report_respects_the_latency_budget():
    from accelsim.dse import distillation_search
    from accelsim.dse.distill import simulated_latency_ms
    from accelsim.hardware.io import load_hardware
    from pathlib import Path

    hw = load_hardware(Path(__file__).resolve().parent.parent / "hw_configs" / "systolic_32x32_os_256kb.yaml")
    teacher_ms = simulated_latency_ms(hw)(gen_workload(uniform_spec(8, 2)))
    budget = 0.6 * teacher_ms
    rep = distillation_search(hw, max_latency_ms=budget, teacher_width=8, cells=2, epochs=1, widths=(2, 4, 6),
                              kernels=(1, 3), population=2, generations=1, proxy_epochs=1)
    roles = [r.role for r in rep.rows]
    assert roles == ["nearest upscaling", "teacher", "hand-shrunk (distilled)", "searched (distilled)"]
    teacher, hand, searched = rep.rows[1:]
    assert teacher.latency_ms == pytest.approx(teacher_ms)
    assert hand.latency_ms <= budget and searched.latency_ms <= budget
    assert all(c["latency_ms"] <= budget for c in rep.search_log)
    assert "| teacher |" in rep.text() and rep.to_dict()["budget"]["max_latency_ms"] == budget


def test_distilled_workloads_feed_a_sweep(tmp_path):
    """The searched networks are saved as workload files that a sweep file lists (the sweep-file path)."""
    from pathlib import Path

    from accelsim.dse import distillation_search, load, run_sweep
    from accelsim.hardware.io import load_hardware

    hwp = Path(__file__).resolve().parent.parent / "hw_configs" / "systolic_32x32_os_256kb.yaml"
    rep = distillation_search(load_hardware(hwp), max_macs=count_macs(uniform_spec(4, 2)), teacher_width=6, cells=2,
                              epochs=1, widths=(2, 4), kernels=(1, 3), population=2, generations=0, proxy_epochs=1)
    paths = rep.save_workloads(tmp_path / "wl")
    assert sorted(p.name for p in paths) == ["hand_shrunk.yaml", "searched.yaml", "teacher.yaml"]
    res = run_sweep({"name": "gen", "hardware": str(hwp), "axes": {"rows": [16, 32]},
                     "workloads": [str(p) for p in paths]}, tmp_path / "g.sqlite", workers=1)
    assert res.evaluated == 6
    df = load(tmp_path / "g.sqlite")
    row = df[(df["workload"] == str(paths[-1])) & (df["rows"] == 32)]
    assert int(row["macs"].iloc[0]) == {r.role: r for r in rep.rows}["searched (distilled)"].macs
