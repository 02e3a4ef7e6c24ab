"""Export: dense zoo models equal the hand-written workloads; MACs equal an independent count;
compressed exports carry masks, shrunk shapes and records; the result simulates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from accelsim.frontend import compress, export  # noqa: E402
from accelsim.frontend.exporter import save_export  # noqa: E402
from accelsim.frontend.metrics import compare, layer_metrics, totals  # noqa: E402
from accelsim.frontend.models import example_input, get_torch_model  # noqa: E402
from accelsim.workload import load_workload, workload_to_dict  # noqa: E402
from accelsim.workload.zoo import get_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(2)
nn = torch.nn


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet18", "resnet50", "mobilenet_v2", "vgg16"])
def test_dense_export_equals_models_file(name):
    wl = export(get_torch_model(name), example_input(name), name=name)
    ref = load_workload(ROOT / "models" / f"{name}.yaml")
    assert workload_to_dict(wl)["layers"] == workload_to_dict(ref)["layers"]
    assert wl.total_macs == ref.total_macs and wl.is_dense


def test_dense_bert_encoder_equals_zoo():
    wl = export(get_torch_model("bert_base", num_layers=2), example_input("bert_base", seq_len=32), name="bert_base")
    ref = get_model("bert_base", num_layers=2, seq_len=32)
    assert workload_to_dict(wl)["layers"] == workload_to_dict(ref)["layers"]


def _independent_macs(model, x):
    """MACs from forward hooks on the modules + explicit matmul counting (no exporter code)."""
    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    def lstm_hook(m, inp, out):
        nonlocal total
        b, s, _ = inp[0].shape
        g = 4 * m.hidden_size
        for k in range(m.num_layers):
            i = m.input_size if k == 0 else m.hidden_size
            total += b * s * g * (i + m.hidden_size)

    def mm_hook(m, inp, out):
        nonlocal total
        total += out.numel() * inp[0].shape[-1]

    from accelsim.frontend.models import MatMul
    hs = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hs.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hs.append(m.register_forward_hook(lin_hook))
        elif isinstance(m, nn.LSTM):
            hs.append(m.register_forward_hook(lstm_hook))
        elif isinstance(m, MatMul):
            hs.append(m.register_forward_hook(mm_hook))
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total


@pytest.mark.parametrize("name, kw, xkw", [
    ("mobilenet_v2", {"width_mult": 0.5}, {"batch": 2, "resolution": 64}),   # depthwise + grouped
    ("bert_base", {"num_layers": 1, "hidden": 64, "heads": 4, "intermediate": 128}, {"seq_len": 16, "hidden": 64}),
    ("small_lstm", {}, {"batch": 3, "seq_len": 7}),
    ("resnet18", {}, {"batch": 2, "resolution": 64}),
])
def test_exported_macs_equal_an_independent_count(name, kw, xkw):
    model = get_torch_model(name, **kw)
    x = example_input(name, **xkw)
    wl = export(model, x)
    assert wl.total_macs == _independent_macs(model, x)


def test_lstm_export_layers():
    wl = export(get_torch_model("small_lstm"), example_input("small_lstm", batch=2, seq_len=5))
    rec = [l for l in wl.layers if l.op == "lstm"]
    assert [l.name for l in rec] == ["lstm.l0", "lstm.l1"]
    assert (rec[0].input_size, rec[1].input_size, rec[0].hidden_size, rec[0].seq_len, rec[0].batch) == (32, 64, 64, 5, 2)


class UserNet(nn.Module):
    """Plain functional ops: + , torch.matmul with a parameter, F.max_pool2d, grouped conv."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.proj = nn.Parameter(torch.randn(8 * 4 * 4, 6))

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = y + self.b(y)
        y = torch.nn.functional.max_pool2d(y, 2)
        return torch.matmul(y.flatten(1), self.proj)


class Dynamic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.fc2 = nn.Linear(20, 5)

    def forward(self, x):
        h = self.fc1(x)
        if h.sum() > 0:  # data-dependent: fx cannot trace this
            h = torch.relu(h)
        return self.fc2(h)


def test_functional_ops_are_named_by_scope():
    wl = export(UserNet(), torch.randn(2, 1 * 4, 8, 8))
    names = [l.name for l in wl.layers]
    assert names == ["a", "b", "add", "max_pool", "matmul"]
    mm = wl["matmul"]
    assert mm.b_operand == "weight" and (mm.m, mm.k, mm.n) == (2, 128, 6)
    assert wl["b"].groups == 2 and wl["max_pool"].out_h == 4


def test_untraceable_model_falls_back_to_hooks():
    wl = export(Dynamic(), torch.randn(3, 10))
    assert [l.name for l in wl.layers] == ["fc1", "fc2"] and any("forward hooks" in n for n in wl.notes)
    assert wl.total_macs == 3 * (10 * 20 + 20 * 5)


def test_compressed_export_records_and_masks(tmp_path):
    model = get_torch_model("resnet18")
    x = example_input("resnet18", resolution=32)
    cm = compress(model, ROOT / "recipes" / "pattern_4bit.yaml")
    wl = export(cm, x, name="r18p")
    c = wl["layer1.0.conv1"].compression
    assert c.sparsity.kind == "pattern" and c.quant.weight_bits == 4 and c.quant.granularity == "channel"
    mask = wl.mask(wl["layer1.0.conv1"])
    assert mask.shape == (64, 64, 3, 3) and mask.dtype == np.uint8
    assert np.isclose(mask.mean(), c.sparsity.density) and np.isclose(c.sparsity.density, 4 / 9 * 0.8, atol=1e-3)
    assert wl["conv1"].compression.quant.weight_bits == 8 and wl["fc"].compression.quant.weight_bits == 8
    # every pruned weight of the model's effective (pruned + 4-bit) weight is zero
    w = cm.model.get_submodule("layer1.0.conv1").weight.detach().numpy()
    assert not w[~mask.astype(bool)].any() and (w != 0).sum() > 0.9 * mask.sum()
    path = save_export(wl, tmp_path / "r18p.yaml")
    back = load_workload(path)
    assert back.masks == "r18p_masks.npz"
    assert np.array_equal(back.mask(back["layer1.0.conv1"]), mask)
    assert back.densified().total_macs == export(model, x).total_macs
    ids = back._load_masks()["layer1.0.conv1.pattern_ids"]
    assert ids.shape == (64, 64) and np.isclose((ids >= 0).mean(), 0.8, atol=1e-3)
    t = totals(back)
    assert t["macs_eff"] < t["macs"] and t["bops"] < totals(export(model, x))["bops"] / 4


def test_filter_pruning_shrinks_consumers_and_densifies_back():
    model = get_torch_model("tiny_cnn")
    x = example_input("tiny_cnn")
    cm = compress(model, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5}})
    wl = export(cm, x)
    c1, c2, fc = wl["conv1"], wl["conv2"], wl["fc"]
    assert (c1.out_channels, c2.in_channels, c2.out_channels, fc.in_features) == (8, 8, 16, 16 * 16)
    assert c1.compression.original == {"out_channels": 16}
    assert fc.compression.original == {"in_features": 512}
    assert wl["pool"].channels == 16
    dense = export(model, x)
    assert workload_to_dict(wl.densified())["layers"] == workload_to_dict(dense)["layers"]
    # the shrunk network computes what the masked one does
    with torch.no_grad():
        assert torch.allclose(cm(x), cm.model(x))


def test_residual_add_keeps_a_channel_when_any_branch_keeps_it():
    model = get_torch_model("resnet18")
    cm = compress(model, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5},
                          "overrides": [{"names": ["conv1"], "prune": None}]})
    wl = export(cm, example_input("resnet18", resolution=32))
    # layer1 adds conv2's kept half onto the unpruned stem: all 64 channels stay alive
    assert wl["layer1.0.conv2"].out_channels == 32 and wl["layer1.1.conv1"].in_channels == 64
    assert wl["layer1.0.conv1"].in_channels == 64
    assert wl["layer1.0.conv2"].in_channels == 32  # follows conv1's kept filters


def test_factorized_and_smartexchange_exports():
    model = get_torch_model("tiny_cnn")
    x = example_input("tiny_cnn")
    cm = compress(model, {"factorize": {"rank_rule": "fixed", "rank_fraction": 0.25},
                          "overrides": [{"names": ["conv1"], "factorize": None,
                                         "smartexchange": {"ce_density": 0.3}}]})
    wl = export(cm, x)
    names = [l.name for l in wl.layers]
    assert names == ["conv1", "conv2.first", "conv2.core", "conv2.last", "pool", "fc.v", "fc.u"]
    assert wl["conv2.core"].compression.factorization.kind == "tucker"
    assert wl["conv2.core"].compression.factorization.ranks == (8, 4)
    assert wl["conv2.core"].compression.original["out_channels"] == 32
    assert wl["fc.v"].compression.factorization.rank == 2
    se = wl["conv1"].compression.factorization
    assert se.kind == "smartexchange" and se.basis_size == 3 and se.ce_density <= 0.3 and se.ce_bits == 4
    df = compare(export(model, x), wl)
    row = df[df.layer == "fc"].iloc[0]
    assert row.params_before == 5120 and row.params_after == 2 * 512 + 2 * 10
    assert {m.group for m in layer_metrics(wl)} == {"conv1", "conv2", "fc"}


def test_export_simulates_on_the_systolic_engine():
    import accelsim

    model = get_torch_model("tiny_cnn")
    cm = compress(model, {"prune": {"kind": "nm", "n": 2, "m": 4}, "quantize": {"weight_bits": 4}})
    wl = export(cm, example_input("tiny_cnn"))
    report = accelsim.simulate(wl, ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    assert sum(l.dense_macs for l in report.layers) == wl.total_macs
