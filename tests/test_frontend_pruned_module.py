"""Physically smaller models (issue #12): ``CompressedModel.pruned_module()`` drops parameters and
MACs as the exported workload says, computes what the masked model computes, leaves the masked
model untouched, and exports exactly like it — across residual adds, concatenations, grouped /
depthwise convs and transformer blocks."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from accelsim.frontend import compress, export  # noqa: E402
from accelsim.frontend.models import example_input, get_torch_model  # noqa: E402

torch.set_num_threads(2)
nn = torch.nn
F = torch.nn.functional


def flop_macs(model, x):
    """Total MACs by torch's FlopCounterMode (attention fast paths off, as in the export tests)."""
    from test_frontend_export_check import flop_counter_macs

    return flop_counter_macs(model, x)[""]


def weight_words(model):
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return n + sum(m.in_proj_weight.numel() for m in model.modules() if isinstance(m, nn.MultiheadAttention))


def shapes(wl):
    return [{k: v for k, v in layer.model_dump().items() if k != "compression"} for layer in wl.layers]


def check(model, x, recipe, atol=1e-5):
    cm = compress(model, recipe, example_input=x)
    before = {k: v.clone() for k, v in cm.model.state_dict().items()}
    pm = cm.pruned_module()
    after = cm.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # untouched
    assert pm is not cm.model
    with torch.no_grad():
        ref, out = cm(x), pm(x)
    assert torch.allclose(ref, out, atol=atol, rtol=0), float((ref - out).abs().max())
    wm, wp = export(cm, x), export(pm, x)
    assert shapes(wm) == shapes(wp)  # the physically pruned export equals the masked export
    assert weight_words(pm) == wm.total_weight_words < weight_words(model)
    assert flop_macs(pm, x) == wm.total_macs < flop_macs(model, x)
    return cm, pm, wm


def test_resnet18_half_filters():
    model = get_torch_model("resnet18")
    x = example_input("resnet18", batch=2, resolution=32)
    cm, pm, wm = check(model, x, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5}})
    n_model = sum(p.numel() for p in model.parameters())
    n_pm = sum(p.numel() for p in pm.parameters())
    assert n_model == 11_689_512 and n_pm < 0.45 * n_model
    # every conv keeps half its filters; a residual stream keeps a channel any branch keeps
    assert pm.get_submodule("layer1.0.conv1").out_channels == 32
    assert pm.get_submodule("layer1.0.conv2").in_channels == 32
    assert wm["layer1.0.conv2"].out_channels == 32 and wm["layer1.0.add"].compression.original


def test_mobilenet_v2_depthwise_and_residuals():
    model = get_torch_model("mobilenet_v2", width_mult=0.5)
    x = example_input("mobilenet_v2", batch=1, resolution=32)
    cm, pm, wm = check(model, x, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5},
                                  "overrides": [{"regex": r"features\.\d+\.conv\.1\.0", "prune": None}]})
    dw = pm.get_submodule("features.2.conv.1.0")  # depthwise after a pruned expansion conv
    assert dw.groups == dw.in_channels == dw.out_channels == 24


class Inception(nn.Module):
    """Branches concatenated along channels, a grouped conv, a residual add and BN1d on features."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.proj = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        s = F.relu(self.bn(self.stem(x)))
        y = torch.cat([self.b1(s), self.b2(s)], dim=1)
        y = F.relu(self.grouped(y)) + self.proj(s)
        y = F.max_pool2d(y, 2)
        return self.fc(y.view(y.size(0), -1))


def test_concat_grouped_and_residual():
    torch.manual_seed(0)
    model = Inception().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for bn in (model.bn, model.b2[1]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    x = torch.randn(3, 3, 8, 8)
    cm, pm, wm = check(model, x, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5}})
    g = pm.get_submodule("grouped")  # grouped convs shrink too, with equal counts per group
    assert g.groups == 4 and g.out_channels == 8 and g.in_channels % 4 == 0 and g.in_channels < 16
    assert pm.get_submodule("b2.0").out_channels == 4 and pm.get_submodule("b2.1").num_features == 4


def test_transformer_encoder_filter_pruned_ffn():
    model = get_torch_model("bert_base", num_layers=2, hidden=64, heads=4, intermediate=256)
    x = example_input("bert_base", batch=2, seq_len=8, hidden=64)
    cm, pm, wm = check(model, x, {"types": ["linear"], "prune": {"kind": "filter", "density": 0.5},
                                  "overrides": [{"regex": r".*(output\.dense)", "prune": None}]}, atol=1e-4)
    # FFN: the intermediate projection loses half its outputs and the output projection its inputs
    assert pm.get_submodule("encoder.layer.0.intermediate.dense").out_features == 128
    assert pm.get_submodule("encoder.layer.0.output.dense").in_features == 128


def test_functional_blocks_vit_style():
    """Functional adds / matmuls inside blocks survive surgery and the re-export (scopes kept)."""
    from test_frontend_export_check import ViT

    torch.manual_seed(0)
    model = ViT(depth=3).eval()
    x = torch.randn(2, 3, 32, 32)
    cm, pm, wm = check(model, x, {"types": ["linear"], "prune": {"kind": "filter", "density": 0.5},
                                  "overrides": [{"regex": r"head|.*mlp\.2|.*proj|.*attn\.out_proj", "prune": None}]},
                       atol=1e-4)
    assert pm.get_submodule("blocks.1.mlp.0").out_features == 128
    assert "blocks.2.matmul" in [layer.name for layer in wm.layers]


def test_channel_pruning_and_tiny_cnn_classifier():
    model = get_torch_model("tiny_cnn")
    x = example_input("tiny_cnn", batch=4)
    check(model, x, {"types": ["conv2d"], "prune": {"kind": "channel", "density": 0.5},
                     "overrides": [{"names": ["conv1"], "prune": None}]})
    cm, pm, wm = check(model, x, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.25}})
    assert pm.get_submodule("fc").in_features == 8 * 16


def test_pruned_module_needs_an_input():
    from accelsim.errors import ConfigError

    cm = compress(get_torch_model("tiny_cnn"), {"prune": {"kind": "filter", "density": 0.5}})
    with pytest.raises(ConfigError) as ei:
        cm.pruned_module()
    assert ei.value.field == "example_input"
    pm = cm.pruned_module(example_input("tiny_cnn"))
    assert weight_words(pm) < weight_words(cm.model)


class GroupedNet(nn.Module):
    """stem -> grouped conv (groups G) -> BN -> ReLU -> grouped conv (groups G) -> residual add -> head."""

    def __init__(self, groups: int):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.g1 = nn.Conv2d(16, 32, 3, padding=1, groups=groups)
        self.bn = nn.BatchNorm2d(32)
        self.g2 = nn.Conv2d(32, 16, 3, padding=1, groups=groups)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        s = F.relu(self.stem(x))
        y = self.g2(F.relu(self.bn(self.g1(s)))) + s
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_convs_shrink_with_equal_counts_per_group(groups):
    torch.manual_seed(groups)
    model = GroupedNet(groups).eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 8, 8)
    # the stem keeps 6 of 16 by norm, unevenly over g1's groups; g1 and g2 keep half per group
    cm, pm, wm = check(model, x, {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5},
                                  "overrides": [{"names": ["stem"], "prune": {"kind": "filter", "density": 0.375}}]})
    g1, g2 = pm.get_submodule("g1"), pm.get_submodule("g2")
    assert g1.groups == g2.groups == groups  # the group count is kept
    assert g1.out_channels == 16 and g2.out_channels == 8  # half the filters of every group
    keep_stem = cm.units["stem"].masks["weight"].reshape(16, -1).any(1).numpy()
    per_group = keep_stem.reshape(groups, -1).sum(1)
    assert g1.in_channels == groups * per_group.max()  # padded to the fullest group
    mask_g1 = cm.units["g1"].masks["weight"].reshape(32, -1).any(1).reshape(groups, -1)
    assert (mask_g1.sum(1) == 16 // groups).all()  # filter pruning kept equal counts per group
    assert wm["g1"].groups == groups and wm["g1"].in_channels == g1.in_channels and wm["g1"].out_channels == 16
    # residual: g2 keeps 8 of 16 and the stem 6; the add's stream is their union
    keep_g2 = cm.units["g2"].masks["weight"].reshape(16, -1).any(1).numpy()
    assert pm.get_submodule("fc").in_features == int((keep_stem | keep_g2).sum()) < 16


def test_grouped_conv_padding_reads_dead_zero_channels():
    """A producer whose alive channels are unbalanced over the groups: the grouped conv reads the
    largest per-group count, the others padded with dead (zero) channels, and still matches."""
    from accelsim.frontend.graph import Keep, _grouped_keep

    m = nn.Conv2d(8, 4, 1, groups=2)
    alive = torch.tensor([1, 1, 1, 0, 1, 0, 0, 0], dtype=torch.bool).numpy()
    k = _grouped_keep(m, None, None, alive)
    assert k.in_index.tolist() == [[0, 1, 2], [0, 1, 2]]  # group 1 has one alive, padded with 2 dead
    assert k.need_in(8).tolist() == [True, True, True, False, True, True, True, False]
    arr = torch.arange(16).reshape(4, 4).numpy()
    assert Keep.gather_in(k, arr).tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10], [12, 13, 14]]
