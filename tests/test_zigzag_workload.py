"""ZigZag workload YAML: ZigZag's shipped examples, hand-written layers, errors, detection, CLI."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from accelsim.cli import main
from accelsim.errors import ConfigError
from accelsim.workload import load_workload
from accelsim.workload.layer import Conv2d, Elementwise, Linear, Matmul, Pool
from accelsim.workload.zigzag_workload import is_zigzag_workload_file, load_zigzag_workload

ROOT = Path(__file__).resolve().parents[1]
ZZ = ROOT / "tests" / "data" / "reference" / "zigzag_inputs" / "workload"
HW = ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml"
CONV_EQ = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"


def _write(tmp_path: Path, layers: list[dict], name: str = "zz.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(layers, sort_keys=False))
    return path


def _conv(lid=0, sizes=(1, 64, 64, 56, 56, 3, 3), stride=1, **extra) -> dict:
    return {"id": lid, "operator_type": "Conv", "equation": CONV_EQ,
            "dimension_relations": [f"ix={stride}*ox+1*fx", f"iy={stride}*oy+1*fy"],
            "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"], "loop_sizes": list(sizes),
            "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8}, "operand_source": {"I": 0, "W": lid},
            **extra}


def test_gemm_layer():
    wl = load_workload(ZZ / "gemm_layer.yaml")
    (layer,) = wl.layers
    assert isinstance(layer, Linear) and layer.name == "Layer0"
    assert (layer.batch, layer.in_features, layer.out_features) == (128, 128, 128)
    assert layer.macs == 128 ** 3


def test_resnet18_example_macs_names_and_shapes():
    raw = yaml.safe_load((ZZ / "resnet18.yaml").read_text())
    wl = load_workload(ZZ / "resnet18.yaml")
    assert len(wl) == len(raw) == 31
    for item, layer in zip(raw, wl.layers):
        assert layer.name == (item.get("name") or f"Layer{item['id']}")
        zz_count = math.prod(item["loop_sizes"])
        if item["operator_type"].startswith("Conv"):
            assert isinstance(layer, Conv2d) and layer.macs == zz_count  # ZigZag's MACs, exactly
        elif item["operator_type"] == "Add":
            assert isinstance(layer, Elementwise) and layer.vector_ops == zz_count and layer.num_inputs == 2
        else:
            assert isinstance(layer, Pool) and layer.vector_ops == zz_count
    assert wl["Layer1"].mode == "max" and not wl["Layer1"].global_pool
    assert wl["Layer29"].mode == "avg" and wl["Layer29"].global_pool


def test_resnet18_example_vs_accelsim_model():
    """ZigZag's example ResNet-18 gives no padding (inputs are the relations' extent, e.g. 58x58
    for a 3x3 conv on 56x56) and models the three downsample shortcuts as 3x3 convs (torchvision:
    1x1). Otherwise every layer matches models/resnet18.yaml: channels, kernels, strides, outputs."""
    zz = load_workload(ZZ / "resnet18.yaml")
    ref = load_workload(ROOT / "models" / "resnet18.yaml")
    zz_convs = [lay for lay in zz.layers if isinstance(lay, Conv2d)]
    ref_convs = [lay for lay in ref.layers if isinstance(lay, Conv2d)]
    fc = ref["fc"]
    assert len(zz_convs) == len(ref_convs) + 1  # ZigZag's fc is a 1x1 conv
    downsample = 0
    for z, r in zip(zz_convs, ref_convs):
        assert (z.in_channels, z.out_channels, z.stride_h, z.out_h, z.out_w) == \
               (r.in_channels, r.out_channels, r.stride_h, r.out_h, r.out_w), (z.name, r.name)
        if "downsample" in r.name:
            downsample += 1
            assert (z.kernel_h, r.kernel_h) == (3, 1) and z.macs == 9 * r.macs
        else:
            assert z.kernel_h == r.kernel_h and z.macs == r.macs
            assert z.in_h == r.stride_h * (r.out_h - 1) + r.kernel_h and z.pad_h == 0  # the relation's extent
    assert downsample == 3
    assert zz_convs[-1].macs == fc.macs
    assert zz.total_macs == ref.total_macs + 3 * 8 * ref["layer2.0.downsample.0"].macs
    assert [lay.elements for lay in zz.layers if isinstance(lay, Elementwise)] == \
           [lay.elements for lay in ref.layers if isinstance(lay, Elementwise)]


@pytest.mark.parametrize("extra", [
    {"pr_loop_dims": ["IY", "IX"], "pr_loop_sizes": [56, 56], "padding": [[1, 1], [1, 1]]},
    {"pr_loop_dims": ["IX", "IY"], "padding": [[1, 1], [1, 1]]},
])
def test_padding_gives_the_torchvision_layer(tmp_path, extra):
    layer = load_workload(_write(tmp_path, [_conv(**extra)])).layers[0]
    ref = load_workload(ROOT / "models" / "resnet18.yaml")["layer1.0.conv1"]
    assert layer.model_dump(exclude={"name"}) == ref.model_dump(exclude={"name"})


def test_asymmetric_padding_is_noted(tmp_path):
    item = _conv(sizes=(1, 64, 3, 112, 112, 7, 7), stride=2, pr_loop_dims=["IY", "IX"], padding=[[3, 2], [3, 2]])
    wl = load_workload(_write(tmp_path, [item]))
    ref = load_workload(ROOT / "models" / "resnet18.yaml")["conv1"]
    assert wl.layers[0].model_dump(exclude={"name"}) == ref.model_dump(exclude={"name"})
    assert "Layer0: padding [[3, 2], [3, 2]] modelled as symmetric pad [3, 3]" in wl.description


def test_depthwise_grouped_and_activation_products(tmp_path):
    dw = {"id": 0, "operator_type": "Conv", "equation": "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]",
          "dimension_relations": ["ix=2*ox+1*fx", "iy=2*oy+1*fy"], "loop_dims": ["B", "G", "OY", "OX", "FY", "FX"],
          "loop_sizes": [1, 32, 56, 56, 3, 3], "operand_precision": {"W": 4, "I": 8, "O": 16, "O_final": 8},
          "operand_source": {"I": 0, "W": 0}}
    att = {"id": 1, "operator_type": "Gemm", "equation": "O[h][m][n]+=I[h][m][k]*W[h][k][n]",
           "loop_dims": ["H", "M", "N", "K"], "loop_sizes": [4, 16, 16, 8],
           "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8}, "operand_source": {"I": 0, "W": 0}}
    heads = dict(att, id=2, operand_source={"I": 1, "W": 2})
    wl = load_workload(_write(tmp_path, [dw, att, heads]))
    conv, mm, mw = wl.layers
    assert isinstance(conv, Conv2d) and conv.is_depthwise and conv.groups == conv.in_channels == conv.out_channels == 32
    assert conv.macs == 32 * 56 * 56 * 9 and conv.compression.quant.weight_bits == 4
    assert isinstance(mm, Matmul) and (mm.batch, mm.m, mm.k, mm.n, mm.b_operand) == (4, 16, 8, 16, "activation")
    assert isinstance(mw, Matmul) and (mw.heads, mw.b_operand) == (4, "weight") and mw.macs == 4 * 16 * 16 * 8


@pytest.mark.parametrize("change,field,needle", [
    ({"stride_hint": 2}, "stride_hint", "unknown key"),
    ({"operator_type": "Softmax"}, "operator_type", "unsupported operator_type 'Softmax'"),
    ({"equation": "O[b][k]=W[k]"}, "equation", "cannot parse"),
    ({"loop_sizes": [1, 64, 64, 56, 56, 3]}, "loop_sizes", "same length"),
    ({"loop_sizes": [1, 64, 0, 56, 56, 3, 3]}, "loop_sizes", "positive integers"),
    ({"loop_dims": ["B", "K", "Q", "OY", "OX", "FY", "FX"]}, "loop_dims", "'c' has no loop size"),
    ({"dimension_relations": ["ix=2*ox*fx"]}, "dimension_relations[0]", "cannot parse"),
    ({"padding": [[1, 1]]}, "padding", "one [lo, hi] pair per pr_loop_dims"),
    ({"pr_loop_dims": ["OY"]}, "pr_loop_dims", "not the input side"),
])
def test_bad_layers_name_file_and_key(tmp_path, change, field, needle):
    item = _conv(lid=3, **{"pr_loop_dims": ["IY", "IX"]} if "padding" in change and len(change["padding"]) == 1 else {})
    item.update(change)
    path = _write(tmp_path, [_conv(), item])
    with pytest.raises(ConfigError) as info:
        load_workload(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: field '[1](Layer3).{field}'"), text
    assert needle in text


def test_missing_key_and_non_layer_items(tmp_path):
    item = _conv()
    del item["equation"]
    with pytest.raises(ConfigError, match=r"field '\[0\]\.equation': missing"):
        load_workload(_write(tmp_path, [item]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_workload(_write(tmp_path, ["conv1"], name="b.yaml"))


def test_detection_and_cli(tmp_path, capsys):
    assert is_zigzag_workload_file(ZZ / "resnet18.yaml") and is_zigzag_workload_file(ZZ / "gemm_layer.yaml")
    assert not is_zigzag_workload_file(ROOT / "models" / "resnet18.yaml")
    assert load_workload(ROOT / "models" / "tiny_cnn.yaml").name == "tiny_cnn"
    assert load_zigzag_workload(ZZ / "gemm_layer.yaml").source == "ZigZag workload gemm_layer.yaml"
    assert main(["simulate", "--workload", str(ZZ / "gemm_layer.yaml"), "--hw", str(HW)]) == 0
    assert "MACs 2,097,152" in capsys.readouterr().out
    bad = _write(tmp_path, [{"id": 0}])
    assert main(["simulate", "--workload", str(bad), "--hw", str(HW)]) == 2
    assert capsys.readouterr().err.startswith(f"accelsim: error: {bad}: field '[0].operator_type': missing")
