"""Trained models reach the simulator: export through the front-end, metrics agree, torch stays optional."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_training_package_imports_without_torch():
    code = textwrap.dedent("""
        import sys
        sys.modules['torch'] = None
        import accelsim.frontend.training as t
        assert 'ADMM' in t.__all__
        try:
            t.train
        except ImportError as exc:  # MissingDependencyError is not an ImportError; the import itself fails
            print('import-error', exc)
        except Exception as exc:
            print(type(exc).__name__, exc)
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
    assert "torch" in proc.stdout  # the failure names the missing dependency


torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import accelsim  # noqa: E402
from accelsim.frontend import metrics as fe_metrics  # noqa: E402
from accelsim.frontend.recipe import QuantSpec, UnstructuredPrune  # noqa: E402
from accelsim.frontend.training import admm, crossbar, dst, niti  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.export import export_trained  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.metrics import model_cost  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402

torch.set_num_threads(1)
HW = ROOT / "hw_configs" / "systolic_32x32_is.yaml"
FAST = dict(admm_epochs=1, retrain_epochs=1, quant_admm_epochs=1, quant_retrain_epochs=1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(192, 32)


def test_admm_result_exports_and_simulates(data):
    ex = data.x_test[:1]
    m = admm.ADMM(admm.ADMMConfig(prune=UnstructuredPrune(density=0.2), quant=QuantSpec(weight_bits=4), **FAST))
    res = train(build_model("cnn"), data, m, TrainConfig(progress=False, lr=0.05))
    recs = m.records(res.model)
    wl = export_trained(res.model, recs, ex, name="cnn_admm")
    for name in ("conv1", "conv2", "fc"):
        comp = wl[name].compression
        assert comp.sparsity.kind == "unstructured" and comp.quant.weight_bits == 4
        n = recs[name].mask.numel()
        assert comp.sparsity.density == pytest.approx(round(0.2 * n) / n)
        assert (wl.mask(wl[name]).astype(bool) == recs[name].mask.numpy()).all()
    cost = model_cost(res.model, ex, recs)
    assert sum(lm.bops for lm in fe_metrics.layer_metrics(wl)) == cost.bops  # same BOPs as the front-end's
    rep = accelsim.simulate(wl, HW, compare_dense=False)
    dense = accelsim.simulate(wl.densified(), HW, compare_dense=False)
    assert rep.macs == dense.macs == 309_248  # a dense systolic array runs every MAC ...
    assert 0 < rep.energy_pj < dense.energy_pj  # ... but moves 4-bit sparse weights


def test_crossbar_mode_exports_crossbar_blocks(data):
    xp = crossbar.CrossbarBlockPrune(density=0.5, rows=16, cols=8)
    xq = crossbar.ConductanceQuant(levels=8)
    m = admm.ADMM(admm.ADMMConfig(prune=xp, quant=xq, skip=("fc1",), **FAST))
    res = train(build_model("mlp"), data, m, TrainConfig(progress=False, lr=0.05))
    wl = export_trained(res.model, m.records(res.model), data.x_test[:1], name="mlp_xbar")
    sp = wl["fc2"].compression.sparsity
    assert (sp.kind, sp.block_h, sp.block_w) == ("block", 8, 16) and sp.density == pytest.approx(0.5)
    assert wl["fc2"].compression.quant.weight_bits == xq.weight_bits == 4
    used, total = crossbar.crossbar_occupancy(m.masks["fc2"], 16, 8)
    assert (used, total) == (32, 64)
    w = res.model.fc2.weight.detach()
    assert w.unique().numel() <= 2 * 8 - 1


def test_dst_and_niti_results_export(data):
    ex = data.x_test[:1]
    m = dst.DST(alpha=5e-2)
    res = train(build_model("mlp"), data, m, TrainConfig(epochs=2, optimizer="adam", lr=1e-2, progress=False))
    wl = export_trained(res.model, m.records(res.model), ex, name="mlp_dst")
    assert [wl[n].compression.sparsity.density for n in ("fc1", "fc2", "fc3")] == \
        pytest.approx([m.final_density[n] for n in ("fc1", "fc2", "fc3")])
    net = niti.IntNet("cnn")
    wl2 = export_trained(net.to_float(), niti.NITI().records(net), ex, name="cnn_niti")
    assert [(l.name, l.compression.quant.weight_bits) for l in wl2.layers if l.op != "pool"] == \
        [("conv1", 8), ("conv2", 8), ("fc", 8)]
    assert accelsim.simulate(wl2, HW).macs == 309_248
