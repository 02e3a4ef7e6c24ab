"""Model zoo: MAC and parameter counts vs published figures, shape chaining, committed YAMLs.

Published oracles (all at batch 1, 224x224 unless noted):

- torchvision model docs (https://pytorch.org/vision/stable/models.html), columns ``num_params``
  and ``GFLOPS`` (the latter are giga multiply-accumulates of conv + linear layers):
  resnet18 11,689,512 / 1.81; resnet50 (v1.5) 25,557,032 / 4.09; mobilenet_v2 3,504,872 / 0.30;
  vgg16 138,357,544 / 15.47; alexnet (one-weird-trick variant, arXiv 1404.5997) 61,100,840 / 0.71.
- Papers: ResNet (arXiv 1512.03385) 1.8 G / 3.8 G (v1) multiply-adds; MobileNetV2
  (arXiv 1801.04381) 300 M multiply-adds, 3.4 M params; VGG (arXiv 1409.1556) 138 M params;
  BERT (arXiv 1810.04805) 110 M params in total.

The zoo's weight words leave out biases and batch-norm parameters (BN is folded into the convs
for inference), so the exact expected weight-word counts below are "published params - BN - biases",
with the subtraction written out.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.workload import (  # noqa: E402
    Conv2d, Elementwise, Linear, Matmul, Pool, Recurrent, Workload, dump_workload_yaml, load_workload,
    workload_from_dict,
)
from accelsim.workload.zoo import ZOO, get_model  # noqa: E402

MODELS = ROOT / "models"
CNNS = {"resnet18": 3, "resnet50": 3, "mobilenet_v2": 3, "vgg16": 3, "alexnet": 3, "tiny_cnn": 1}
EXPECTED_NAMES = {"resnet18", "resnet50", "mobilenet_v2", "vgg16", "alexnet", "bert_base", "gnmt", "tiny_cnn"}

_CACHE: dict[str, Workload] = {}


def model(name: str) -> Workload:
    """Default build of a zoo model, built once per test session."""
    if name not in _CACHE:
        _CACHE[name] = get_model(name)
    return _CACHE[name]


def test_registry_has_all_models():
    assert set(ZOO) == EXPECTED_NAMES
    for name in ZOO:
        wl = model(name)
        assert wl.name == name
        assert wl.source and wl.description
        doc = ZOO[name].__doc__ or ""
        assert "Source" in doc and "MACs" in doc, f"{name}: docstring must cite the source and MAC count"
        assert "arXiv" in doc or name == "tiny_cnn"


# --- MACs ------------------------------------------------------------------------------------

# (model, published MACs, relative tolerance, exact value of this zoo's count)
MAC_CASES = [
    ("resnet18", 1.81e9, 0.01, 1_814_073_344),       # torchvision 1.81 G; paper 1.8 G
    ("resnet50", 4.09e9, 0.01, 4_089_184_256),       # torchvision v1.5 4.09 G (paper v1: 3.8 G)
    ("mobilenet_v2", 300e6, 0.01, 300_774_272),      # paper Table 4: 300 M; torchvision 0.30 G
    ("vgg16", 15.47e9, 0.01, 15_470_264_320),        # torchvision 15.47 G (commonly 15.5 G)
    ("alexnet", 0.714e9, 0.01, 714_188_480),         # torchvision variant 0.71 G (original 2012 net: ~0.72 G)
    ("bert_base", 11.2e9, 0.01, 11_173_625_856),     # derived below: 12 x 931,135,488 at seq 128
    ("tiny_cnn", 309_248, 0.0, 309_248),             # by construction (see tiny_cnn docstring)
]


@pytest.mark.parametrize("name,published,tol,exact", MAC_CASES, ids=[c[0] for c in MAC_CASES])
def test_macs_match_published(name, published, tol, exact):
    macs = model(name).total_macs
    assert macs == exact
    assert abs(macs - published) <= tol * published, f"{name}: {macs:,} vs published {published:,.0f}"


def test_alexnet_is_the_torchvision_variant_between_071_and_072_gmacs():
    # 0.71 G (torchvision, single tower 64-192-384-256-256) .. 0.72 G (2012 two-tower original).
    assert 0.71e9 <= model("alexnet").total_macs <= 0.72e9
    convs = [layer for layer in model("alexnet") if isinstance(layer, Conv2d)]
    assert [c.out_channels for c in convs] == [64, 192, 384, 256, 256]


def test_bert_macs_derivation():
    """BERT-base, seq s = 128, hidden h = 768, a = 12 heads of d = 64, FFN f = 3072, 12 layers.

    Counted per layer: Q, K, V, O projections 4*s*h*h; attention scores Q K^T a*s*s*d and context
    P V a*s*s*d; FFN 2*s*h*f. Not counted: embeddings, pooler, softmax/LayerNorm/GELU (no MACs).
    """
    s, h, a, f, n = 128, 768, 12, 3072, 12
    d = h // a
    per_layer = 4 * s * h * h + 2 * a * s * s * d + 2 * s * h * f
    assert per_layer == 931_135_488
    wl = model("bert_base")
    assert wl.total_macs == n * per_layer
    # seq-length argument: the attention part grows quadratically, the rest linearly
    s2 = 64
    assert get_model("bert_base", seq_len=s2).total_macs == n * (4 * s2 * h * h + 2 * a * s2 * s2 * d + 2 * s2 * h * f)


def test_gnmt_macs_derivation():
    """GNMT v2: S source / T target tokens, H = 1024, vocab V = 32320; LSTM weights 4H(in + H).

    MACs = S*W_enc + T*(W_dec + W_q + W_cls) + S*W_k + 2*T*S*H (score vector + context bmm).
    """
    S = T = 50
    H, V = 1024, 32320
    lstm = lambda i: 4 * H * (i + H)  # noqa: E731
    w_enc = 2 * lstm(H) + lstm(2 * H) + 2 * lstm(H)
    w_dec = lstm(H) + 3 * lstm(2 * H)
    expected = S * w_enc + T * (w_dec + H * H + H * V) + S * H * H + 2 * T * S * H
    assert expected == 6_378_496_000
    assert model("gnmt").total_macs == expected
    S2, T2 = 30, 40
    expected2 = S2 * w_enc + T2 * (w_dec + H * H + H * V) + S2 * H * H + 2 * T2 * S2 * H
    assert get_model("gnmt", seq_len=S2, tgt_len=T2).total_macs == expected2


# --- parameters (weight words) ---------------------------------------------------------------

# (model, published params, exact weight words = published - BN params - biases, arithmetic)
PARAM_CASES = [
    ("resnet18", 11_689_512, 11_689_512 - 2 * 4_800 - 1_000),       # BN over 4,800 channels; fc bias
    ("resnet50", 25_557_032, 25_557_032 - 2 * 26_560 - 1_000),      # BN over 26,560 channels; fc bias
    ("mobilenet_v2", 3_504_872, 3_504_872 - 2 * 17_056 - 1_000),    # BN over 17,056 channels; fc bias
    ("vgg16", 138_357_544, 138_357_544 - 4_224 - 9_192),            # 13 conv biases; 3 fc biases
    ("alexnet", 61_100_840, 61_100_840 - 1_152 - 9_192),            # 5 conv biases; 3 fc biases
    ("bert_base", 85_054_464, 85_054_464 - 12 * (4 * 768 + 3072 + 768 + 4 * 768)),  # linear biases + 2 LayerNorms
    ("gnmt", 160_671_297, 160_671_297 - 32320 * 1024 - 9 * 8192 - 32_320 - 1_025),  # shared embedding, LSTM/cls biases, attn norm
    ("tiny_cnn", 9_930, 9_930 - 58),
]


@pytest.mark.parametrize("name,published,exact", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_weight_words_match_published(name, published, exact):
    words = model(name).total_weight_words
    assert words == exact
    if name != "gnmt":  # the GNMT published count includes a 33 M-word embedding table
        # only biases and BN parameters are missing: at most 1.5 % (MobileNetV2: 1.0 %, the rest < 0.6 %)
        assert 0 < published - words <= 0.015 * published


def test_weight_words_vs_paper_headlines():
    assert abs(model("resnet50").total_weight_words - 25.5e6) <= 0.01 * 25.5e6
    assert abs(model("resnet18").total_weight_words - 11.7e6) <= 0.01 * 11.7e6
    assert abs(model("mobilenet_v2").total_weight_words - 3.4e6) <= 0.03 * 3.4e6   # paper 3.4 M, torchvision 3.5 M
    assert abs(model("vgg16").total_weight_words - 138e6) <= 0.01 * 138e6
    assert abs(model("bert_base").total_weight_words - 85e6) <= 0.01 * 85e6
    # BERT-base 110 M in total = encoder + word/position/type embeddings + embedding LayerNorm + pooler
    embeddings = (30522 + 512 + 2) * 768 + 2 * 768
    pooler = 768 * 768 + 768
    assert abs(85_054_464 + embeddings + pooler - 110e6) <= 0.01 * 110e6


# --- structure -------------------------------------------------------------------------------

def _block_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0].startswith("layer") or parts[0] == "features":
        return ".".join(parts[:2])
    return None


def check_chain(wl: Workload, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Walk a CNN and check every layer consumes what the previous one produced.

    Residual blocks (``layerS.B.*`` / ``features.N.*``): a ``downsample.0`` conv reads the block
    input; an add needs the main path and the shortcut (block input or downsample output) to
    have the same shape. Returns the final (C, H, W).
    """
    cur = in_shape
    block, block_in, shortcut = None, cur, cur
    for layer in wl.layers:
        b = _block_of(layer.name)
        if b != block:
            block, block_in, shortcut = b, cur, cur
        if isinstance(layer, Conv2d):
            is_shortcut = layer.name.endswith(".downsample.0")
            src = block_in if is_shortcut else cur
            assert (layer.in_channels, layer.in_h, layer.in_w) == src, f"{layer.name}: input {src} expected"
            out = (layer.out_channels, layer.out_h, layer.out_w)
            if is_shortcut:
                shortcut = out
            else:
                cur = out
        elif isinstance(layer, Pool):
            assert (layer.channels, layer.in_h, layer.in_w) == cur, layer.name
            cur = (layer.channels, layer.out_h, layer.out_w)
        elif isinstance(layer, Elementwise):
            assert layer.num_inputs == 2 and shortcut == cur, f"{layer.name}: {shortcut} + {cur}"
            assert layer.elements == math.prod(cur), layer.name
        elif isinstance(layer, Linear):
            assert layer.in_features == math.prod(cur), layer.name
            cur = (layer.out_features, 1, 1)
        else:
            raise AssertionError(f"unexpected layer {layer.describe()} in a CNN")
    return cur


@pytest.mark.parametrize("name", list(CNNS))
def test_cnn_shapes_chain(name):
    wl = model(name)
    res = 8 if name == "tiny_cnn" else 224
    assert check_chain(wl, (CNNS[name], res, res)) == (10 if name == "tiny_cnn" else 1000, 1, 1)


def test_cnn_shapes_chain_other_resolution_and_batch():
    for name, res in (("resnet50", 160), ("resnet18", 96), ("mobilenet_v2", 192), ("vgg16", 448), ("alexnet", 224)):
        wl = get_model(name, batch=2, resolution=res)
        assert all(layer.batch == 2 for layer in wl)
        check_chain(wl, (3, res, res))
    assert get_model("resnet50", batch=4).total_macs == 4 * model("resnet50").total_macs
    assert get_model("resnet50", batch=4).total_weight_words == model("resnet50").total_weight_words


def test_cnn_memory_bound_layers_present():
    def count(wl, cls):
        return sum(isinstance(layer, cls) for layer in wl)

    assert count(model("resnet18"), Elementwise) == 8 and count(model("resnet50"), Elementwise) == 16
    assert count(model("mobilenet_v2"), Elementwise) == 10
    assert count(model("resnet50"), Pool) == 2 and model("resnet50")["avgpool"].global_pool
    assert count(model("vgg16"), Pool) == 5 and count(model("alexnet"), Pool) == 3
    for name in CNNS:
        assert isinstance(model(name).layers[-1], Linear)
        assert all(layer.macs == 0 for layer in model(name) if isinstance(layer, (Pool, Elementwise)))


def test_torch_style_names():
    assert model("resnet50")["layer1.0.downsample.0"].out_channels == 256
    assert model("resnet50")["layer2.0.conv2"].stride_h == 2  # v1.5: stride on the 3x3
    assert model("resnet18")["fc"].in_features == 512
    assert model("mobilenet_v2")["features.18.0"].out_channels == 1280
    assert model("mobilenet_v2")["classifier.1"].in_features == 1280
    assert model("vgg16")["classifier.0"].in_features == 512 * 7 * 7
    assert model("alexnet")["classifier.1"].in_features == 256 * 6 * 6
    assert model("bert_base")["encoder.layer.0.attention.self.query"].tokens == 128
    assert model("bert_base")["encoder.layer.11.output.dense"].in_features == 3072
    assert model("gnmt")["decoder.classifier.classifier"].out_features == 32320
    assert [layer.name for layer in model("tiny_cnn")] == ["conv1", "conv2", "pool", "fc"]


def test_mobilenet_v2_depthwise_layers():
    wl = model("mobilenet_v2")
    grouped = [layer for layer in wl if isinstance(layer, Conv2d) and layer.groups > 1]
    assert len(grouped) == 17
    for layer in grouped:
        assert layer.groups == layer.in_channels == layer.out_channels, layer.name
        assert layer.is_depthwise and layer.kernel_h == layer.kernel_w == 3
        assert layer.weight_words == 9 * layer.in_channels
    strided = [layer.name for layer in grouped if layer.stride_h == 2]
    assert strided == ["features.2.conv.1.0", "features.4.conv.1.0", "features.7.conv.1.0", "features.14.conv.1.0"]
    assert wl["features.1.conv.0.0"].is_depthwise  # t = 1 block: no expansion conv


def test_bert_structure():
    wl = model("bert_base")
    matmuls = [layer for layer in wl if isinstance(layer, Matmul)]
    assert len(matmuls) == 24
    for mm in matmuls:
        assert mm.heads == 12 and mm.b_operand == "activation" and mm.weight_words == 0
    assert wl["encoder.layer.0.attention.self.scores"].model_dump(include={"m", "k", "n"}) == {"m": 128, "k": 64, "n": 128}
    assert wl["encoder.layer.0.attention.self.context"].model_dump(include={"m", "k", "n"}) == {"m": 128, "k": 128, "n": 64}
    linears = [layer for layer in wl if isinstance(layer, Linear)]
    assert len(linears) == 12 * 6 and all(layer.tokens == 128 for layer in linears)
    per_layer = [layer.name.split(".", 3)[3] for layer in wl if layer.name.startswith("encoder.layer.0.")]
    assert per_layer == [
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.self.scores",
        "attention.self.softmax", "attention.self.context", "attention.output.dense", "attention.output.add",
        "attention.output.LayerNorm", "intermediate.dense", "intermediate.intermediate_act_fn", "output.dense",
        "output.add", "output.LayerNorm",
    ]


def test_gnmt_structure():
    wl = model("gnmt")
    rnns = [layer for layer in wl if isinstance(layer, Recurrent)]
    assert len(rnns) == 9 and all(r.op == "lstm" and r.hidden_size == 1024 for r in rnns)
    fwd, rev = wl["encoder.rnn_layers.0"], wl["encoder.rnn_layers.0_reverse"]
    assert fwd.model_dump(exclude={"name"}) == rev.model_dump(exclude={"name"})
    assert wl["encoder.rnn_layers.1"].input_size == 2048
    assert [r.input_size for r in rnns if r.name.startswith("decoder.")] == [1024, 2048, 2048, 2048]
    assert wl["decoder.att_rnn.attn.bmm"].b_operand == "activation"
    assert sum(isinstance(layer, Elementwise) and layer.name.endswith("residual_add") for layer in wl) == 4


# --- files and serialisation ----------------------------------------------------------------

def _same(a: Workload, b: Workload) -> None:
    assert (a.name, a.description, a.source) == (b.name, b.description, b.source)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la == lb, la.name


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_committed_yaml_equals_zoo(name):
    path = MODELS / f"{name}.yaml"
    assert path.exists(), f"{path} missing: run python tools/gen_models.py"
    _same(load_workload(path), model(name))
    assert path.read_text(encoding="utf-8") == dump_workload_yaml(model(name)), "stale: run tools/gen_models.py"


def test_committed_readme_is_current():
    spec = importlib.util.spec_from_file_location("gen_models", ROOT / "tools" / "gen_models.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (MODELS / "README.md").read_text(encoding="utf-8") == gen.readme_text()


@pytest.mark.parametrize("name,kwargs", [
    ("resnet50", {"batch": 2, "resolution": 160}),
    ("mobilenet_v2", {"batch": 3, "width_mult": 0.5}),
    ("bert_base", {"batch": 2, "seq_len": 64, "num_layers": 2}),
    ("gnmt", {"batch": 4, "seq_len": 20, "tgt_len": 25}),
    ("tiny_cnn", {"batch": 32}),
])
def test_yaml_round_trip(name, kwargs):
    wl = get_model(name, **kwargs)
    text = dump_workload_yaml(wl)
    back = workload_from_dict(yaml.safe_load(text))
    _same(back, wl)
    assert back.total_macs == wl.total_macs
    assert dump_workload_yaml(back) == text


# --- errors ----------------------------------------------------------------------------------

def test_unknown_model_raises_config_error_listing_names():
    with pytest.raises(ConfigError) as err:
        get_model("nope")
    for name in EXPECTED_NAMES:
        assert name in str(err.value)


def test_bad_arguments_raise_config_error():
    with pytest.raises(ConfigError, match="colour"):
        get_model("resnet18", colour=3)
    with pytest.raises(ConfigError, match="batch"):
        get_model("vgg16", batch=0)
    with pytest.raises(ConfigError, match="features.12"):
        get_model("alexnet", resolution=32)  # the last 3x3 max pool does not fit a 1x1 map
    with pytest.raises(ConfigError, match="AdaptiveAvgPool2d"):
        get_model("vgg16", resolution=160)  # 5x5 final map cannot be pooled uniformly to 7x7
    with pytest.raises(ConfigError, match="heads"):
        get_model("bert_base", heads=5)
