"""ONNX input: ZigZag's shipped graphs, accelsim's own model files, hand-built graphs (checked
against onnx's reference evaluator / numpy), errors, the CLI, and a torch.onnx round trip."""
from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from accelsim.cli import main  # noqa: E402
from accelsim.errors import ConfigError  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from accelsim.workload.layer import Conv2d, Elementwise, Linear, Matmul, Pool, Recurrent  # noqa: E402
from accelsim.workload.onnx_io import is_onnx_file, load_onnx, read_onnx, torch_module_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "reference"
ZZ = REF / "zigzag_inputs" / "workload"
RUNS = [Path("/work/shared/reference/zigzag_runs"), REF / "zigzag_runs"]
HW = ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml"
F = TensorProto.FLOAT


# --- helpers -------------------------------------------------------------------------------------

def _save(tmp_path: Path, nodes, inputs, outputs, inits=(), value_info=(), name="m.onnx", opset=17) -> Path:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(inits),
                              value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def _init(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def _compute(wl):
    return [layer for layer in wl.layers if layer.is_compute]


def _same_fields(a, b) -> bool:
    return a.model_dump(exclude={"name"}) == b.model_dump(exclude={"name"})


# --- ZigZag's graphs -----------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["resnet18", "alexnet", "mobilenetv2"])
def test_zigzag_graphs_load(net):
    r = read_onnx(ZZ / f"{net}.onnx")
    wl = r.workload
    assert wl.name == net and wl.source == f"ONNX {net}.onnx"
    g = onnx.load(ZZ / f"{net}.onnx", load_external_data=False).graph
    compute = [n for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    # every Conv/Gemm node is a compute layer, named exactly as in the graph, in graph order
    assert [layer.name for layer in _compute(wl)] == [n.name for n in compute]
    # nothing disappears silently: every node is a layer, fused into one, or listed as skipped
    accounted = {layer.name for layer in wl.layers} | set(r.fused) | {n for n, _ in r.skipped}
    assert accounted == {n.name for n in g.node}
    assert not r.not_modelled
    for name, op in r.skipped:
        assert op in wl.description


def _zigzag_csv_rows():
    with open(REF / "zigzag_results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_macs_equal_zigzag_results_csv():
    rows = _zigzag_csv_rows()
    assert rows
    loaded = {}
    for row in rows:
        wl = loaded.setdefault(row["workload"], load_onnx(ZZ / f"{row['workload']}.onnx"))
        assert wl[row["layer"]].macs == int(row["macs"]), (row["workload"], row["layer"])
    # ZigZag evaluates exactly the Conv/Gemm layers: totals agree too
    for net, wl in loaded.items():
        per_acc = {}
        for row in rows:
            if row["workload"] == net:
                per_acc[row["accelerator"]] = per_acc.get(row["accelerator"], 0) + int(row["macs"])
        for total in per_acc.values():
            assert sum(layer.macs for layer in _compute(wl)) == total == wl.total_macs


def test_macs_equal_zigzag_runs_json():
    runs_dir = next((d for d in RUNS if d.is_dir() and list(d.glob("*.json"))), None)
    if runs_dir is None:
        pytest.skip("ZigZag per-layer runs not available")
    runs = sorted(runs_dir.glob("*.json"))
    assert len(runs) >= 4
    for path in runs:
        run = json.loads(path.read_text())
        wl = load_onnx(ZZ / run["workload"])
        for layer in run["layers"]:
            assert wl[layer["layer"]].macs == layer["macs"], (path.name, layer["layer"])
        assert wl.total_macs == sum(layer["macs"] for layer in run["layers"])


@pytest.mark.parametrize("net,model", [("resnet18", "resnet18"), ("mobilenetv2", "mobilenet_v2")])
def test_zigzag_graph_equals_accelsim_model_file(net, model):
    onnx_wl = load_onnx(ZZ / f"{net}.onnx")
    ref = load_workload(ROOT / "models" / f"{model}.yaml")
    assert onnx_wl.total_macs == ref.total_macs
    assert onnx_wl.total_weight_words == ref.total_weight_words
    assert len(onnx_wl) == len(ref)
    for layer in _compute(onnx_wl):  # same dims layer by layer, matched by PyTorch module name
        assert _same_fields(layer, ref[torch_module_name(layer.name)]), layer.name
    # residual adds and pools: same sequence of shapes
    assert [lay.model_dump(exclude={"name"}) for lay in onnx_wl.layers if not lay.is_compute] == \
           [lay.model_dump(exclude={"name"}) for lay in ref.layers if not lay.is_compute]


# The ZigZag AlexNet is the original BVLC (Caffe) AlexNet: 96-256-384-384-256 filters, conv2/4/5
# in two groups, conv1 without padding (54x54 outputs), LRN after conv1/conv2. models/alexnet.yaml
# is torchvision's "one weird trick" variant (64-192-384-256-256, no groups, padding 2). Only the
# three fully connected layers are the same; the convs are checked against the BVLC shapes.
BVLC_CONVS = [  # (Cin, Cout, in, kernel, stride, pad, groups)
    (3, 96, 224, 11, 4, 0, 1), (96, 256, 26, 5, 1, 2, 2), (256, 384, 12, 3, 1, 1, 1),
    (384, 384, 12, 3, 1, 1, 2), (384, 256, 12, 3, 1, 1, 2),
]


def test_zigzag_alexnet_is_bvlc_alexnet():
    wl = load_onnx(ZZ / "alexnet.onnx")
    convs = [lay for lay in wl.layers if isinstance(lay, Conv2d)]
    assert len(convs) == 5
    for conv, (cin, cout, size, k, s, p, g) in zip(convs, BVLC_CONVS):
        assert (conv.in_channels, conv.out_channels, conv.in_h, conv.in_w, conv.kernel_h, conv.stride_h, conv.pad_h,
                conv.groups) == (cin, cout, size, size, k, s, p, g)
        out = (size + 2 * p - k) // s + 1
        assert conv.macs == cout * out * out * (cin // g) * k * k
    tv = load_workload(ROOT / "models" / "alexnet.yaml")
    fcs = [lay for lay in wl.layers if isinstance(lay, Linear)]
    assert [_same_fields(a, tv[n]) for a, n in zip(fcs, ["classifier.1", "classifier.4", "classifier.6"])] == [True] * 3
    assert wl.total_macs == 654_560_384 != tv.total_macs == 714_188_480
    assert "Dropout x2" in wl.description and "Reshape x1" in wl.description


# --- hand-built graphs, checked against onnx's reference evaluator ------------------------------

CONV_CASES = [  # (x shape, w shape, attrs)
    ((1, 4, 9, 9), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 4, 9, 8), (8, 4, 3, 3), {"pads": [0, 1, 2, 0]}),  # asymmetric, stride 1
    ((2, 4, 10, 9), (6, 4, 3, 3), {"pads": [1, 0, 0, 1], "strides": [2, 2]}),
    ((1, 3, 10, 7), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 9, 9), (4, 3, 4, 2), {"auto_pad": "SAME_LOWER"}),  # even kernel: odd total pad
    ((1, 3, 11, 11), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [3, 3]}),
    ((1, 4, 12, 12), (8, 4, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 8, 7, 7), (6, 4, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    ((1, 8, 7, 7), (16, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 8, "strides": [2, 2]}),  # depthwise x2
    ((2, 5, 17), (7, 5, 4), {"pads": [2, 1], "strides": [2]}),  # 1-D
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv_matches_reference_evaluator(tmp_path, x_shape, w_shape, attrs):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    path = _save(tmp_path, [node], [_vi("x", list(x_shape))], [_vi("y", None)], [_init("w", w_shape)])
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    (y,) = ReferenceEvaluator(onnx.load(path)).run(None, {"x": x})
    layer = load_onnx(path)["conv"]
    assert isinstance(layer, Conv2d)
    group = attrs.get("group", 1)
    assert layer.groups == group and layer.batch == x_shape[0]
    assert (layer.out_channels, layer.out_h, layer.out_w) == ((y.shape[1],) + ((1,) if y.ndim == 3 else (y.shape[2],))
                                                                + (y.shape[-1],))
    assert layer.macs == y.size * (x_shape[1] // group) * math.prod(w_shape[2:])
    assert layer.output_words == y.size
    # the IR pads symmetrically: an odd total pad may cost one extra border row/column, never more
    in_hw = (1, *x_shape[2:]) if len(x_shape) == 3 else x_shape[2:]
    assert (layer.in_h - in_hw[0], layer.in_w - in_hw[1]) in ((0, 0), (0, 1), (1, 0), (1, 1))
    if attrs.get("pads", [0, 0, 0, 0])[:2] == attrs.get("pads", [0, 0, 0, 0])[2:] and "auto_pad" not in attrs:
        assert (layer.in_h, layer.in_w) == in_hw and layer.input_words == x.size


def test_asymmetric_pads_are_noted(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 1, 2, 0])
    path = _save(tmp_path, [node], [_vi("x", [1, 4, 9, 8])], [_vi("y", None)], [_init("w", (8, 4, 3, 3))])
    wl = load_onnx(path)
    assert "c: pads [0, 1, 2, 0] modelled as symmetric pad" in wl.description


POOL_CASES = [
    ("MaxPool", (1, 3, 10, 10), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", (1, 3, 9, 9), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1]}),
    ("AveragePool", (2, 3, 8, 8), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("GlobalAveragePool", (2, 5, 7, 6), {}),
    ("GlobalMaxPool", (1, 5, 7, 6), {}),
]


@pytest.mark.parametrize("op,x_shape,attrs", POOL_CASES)
def test_pool_matches_reference_evaluator(tmp_path, op, x_shape, attrs):
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    path = _save(tmp_path, [node], [_vi("x", list(x_shape))], [_vi("y", None)])
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    (y,) = ReferenceEvaluator(onnx.load(path)).run(None, {"x": x})
    layer = load_onnx(path)["pool"]
    assert isinstance(layer, Pool)
    assert layer.mode == ("max" if "Max" in op else "avg") and layer.global_pool == op.startswith("Global")
    assert (layer.batch, layer.channels, layer.out_h, layer.out_w) == y.shape
    assert layer.output_words == y.size and layer.input_words == x.size


MATMUL_CASES = [  # (A shape, B shape, A constant, B constant, expected type, expected fields)
    ((3, 5), (5, 7), False, True, Linear, {"batch": 3, "tokens": 1, "in_features": 5, "out_features": 7}),
    ((2, 6, 5), (5, 7), False, True, Linear, {"batch": 2, "tokens": 6, "in_features": 5, "out_features": 7}),
    ((5,), (5, 7), False, True, Linear, {"batch": 1, "tokens": 1, "in_features": 5, "out_features": 7}),
    ((2, 4, 6, 8), (2, 4, 8, 6), False, False, Matmul, {"batch": 2, "heads": 4, "m": 6, "k": 8, "n": 6,
                                                          "b_operand": "activation"}),
    ((1, 4, 6, 8), (2, 1, 8, 3), False, False, Matmul, {"batch": 2, "heads": 4, "m": 6, "k": 8, "n": 3}),
    ((6, 8), (3, 8, 5), False, True, Matmul, {"batch": 1, "heads": 3, "m": 6, "k": 8, "n": 5, "b_operand": "weight"}),
    ((4, 5), (5, 3), True, False, Linear, {"batch": 3, "tokens": 1, "in_features": 5, "out_features": 4}),
    ((2, 3, 4), (4,), False, False, Matmul, {"batch": 2, "heads": 1, "m": 3, "k": 4, "n": 1}),
]


@pytest.mark.parametrize("a_shape,b_shape,a_const,b_const,cls,fields", MATMUL_CASES)
def test_matmul(tmp_path, a_shape, b_shape, a_const, b_const, cls, fields):
    inputs = [] if a_const else [_vi("a", list(a_shape))]
    inputs += [] if b_const else [_vi("b", list(b_shape))]
    inits = ([_init("a", a_shape)] if a_const else []) + ([_init("b", b_shape, 1)] if b_const else [])
    path = _save(tmp_path, [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")], inputs, [_vi("y", None)], inits)
    layer = load_onnx(path)["mm"]
    assert isinstance(layer, cls)
    assert {k: getattr(layer, k) for k in fields} == fields
    out = np.matmul(np.zeros(a_shape), np.zeros(b_shape))
    assert layer.macs == out.size * a_shape[-1]
    assert layer.output_words == out.size
    assert layer.weight_words == (math.prod(b_shape) if b_const else math.prod(a_shape) if a_const else 0)


def test_matmul_weight_computed_from_constants_is_a_weight(tmp_path):
    # DequantizeLinear/Transpose of an initializer is still a weight
    nodes = [helper.make_node("Transpose", ["wt"], ["w"], perm=[1, 0], name="t"),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    path = _save(tmp_path, nodes, [_vi("x", [4, 6])], [_vi("y", None)], [_init("wt", (5, 6))])
    r = read_onnx(path)
    assert isinstance(r.workload["mm"], Linear) and r.workload["mm"].out_features == 5
    assert ("t", "Transpose") in r.skipped


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("b_const", [True, False])
def test_gemm(tmp_path, trans_a, trans_b, b_const):
    m_, k_, n_ = 3, 5, 7
    a_shape = (k_, m_) if trans_a else (m_, k_)
    b_shape = (n_, k_) if trans_b else (k_, n_)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="gemm", transA=trans_a, transB=trans_b, alpha=0.5)
    inputs = [_vi("a", list(a_shape))] + ([] if b_const else [_vi("b", list(b_shape))])
    inits = [_init("c", (n_,), 2)] + ([_init("b", b_shape, 1)] if b_const else [])
    path = _save(tmp_path, [node], inputs, [_vi("y", None)], inits)
    feeds = {"a": np.ones(a_shape, np.float32)} | ({} if b_const else {"b": np.ones(b_shape, np.float32)})
    (y,) = ReferenceEvaluator(onnx.load(path)).run(None, feeds)
    assert y.shape == (m_, n_)
    layer = load_onnx(path)["gemm"]
    assert layer.macs == m_ * n_ * k_ and layer.output_words == y.size
    if b_const:
        assert isinstance(layer, Linear) and (layer.batch, layer.in_features, layer.out_features) == (m_, k_, n_)
    else:
        assert isinstance(layer, Matmul) and (layer.m, layer.k, layer.n, layer.b_operand) == (m_, k_, n_, "activation")


def test_integer_and_qdq_operands_give_bits(tmp_path):
    w4 = helper.make_tensor("w4", TensorProto.INT4, [4, 3, 3, 3], [1] * 108)
    a8 = helper.make_tensor("b8", TensorProto.INT8, [6, 5], [1] * 30)
    nodes = [helper.make_node("DequantizeLinear", ["w4", "scale"], ["w"], name="dq"),
             helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
             helper.make_node("MatMulInteger", ["a", "b8"], ["z"], name="mmi")]
    path = _save(tmp_path, nodes, [_vi("x", [1, 3, 5, 5]), _vi("a", [2, 6], TensorProto.UINT8)],
                 [_vi("y", None), _vi("z", None)], [w4, a8, numpy_helper.from_array(np.float32(0.5), "scale")],
                 opset=21)
    r = read_onnx(path)
    conv, mmi = r.workload["conv"], r.workload["mmi"]
    assert conv.compression.quant.weight_bits == 4 and conv.macs == 4 * 3 * 3 * 27
    assert isinstance(mmi, Linear) and mmi.compression.quant.weight_bits == 8 and mmi.macs == 2 * 6 * 5
    assert ("dq", "DequantizeLinear") in r.skipped


def test_lstm_and_gru_per_direction(tmp_path):
    seq, batch, feat, hid = 5, 2, 3, 4
    nodes = [helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm", hidden_size=hid, direction="bidirectional"),
             helper.make_node("GRU", ["x", "wg", "rg"], ["yg"], name="gru", hidden_size=hid)]
    inits = [_init("w", (2, 4 * hid, feat)), _init("r", (2, 4 * hid, hid)), _init("wg", (1, 3 * hid, feat)),
             _init("rg", (1, 3 * hid, hid))]
    path = _save(tmp_path, nodes, [_vi("x", [seq, batch, feat])], [_vi("y", None), _vi("yg", None)], inits)
    wl = load_onnx(path)
    assert [layer.name for layer in wl.layers] == ["lstm", "lstm_reverse", "gru"]
    for layer, gates in zip(wl.layers, (4, 4, 3)):
        assert isinstance(layer, Recurrent) and (layer.seq_len, layer.batch, layer.input_size) == (seq, batch, feat)
        assert layer.macs == seq * batch * gates * hid * (feat + hid)


def _small_net(tmp_path, value_info=True, fuse_name="m.onnx"):
    nodes = [
        helper.make_node("Conv", ["x", "w", "bias"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bias", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "x2"], ["sum"], name="add"),
        helper.make_node("MaxPool", ["sum"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["out"], name="softmax"),
        helper.make_node("ConvTranspose", ["x2", "wt"], ["up"], name="deconv"),
    ]
    inits = [_init("w", (8, 3, 3, 3)), _init("bias", (8,)), _init("s", (8,)), _init("mean", (8,)), _init("var", (8,)),
             _init("fc_w", (10, 8 * 4 * 4)), _init("fc_b", (10,)), _init("wt", (8, 2, 2, 2))]
    vis = [_vi("c", [1, 8, 8, 8]), _vi("sum", [1, 8, 8, 8]), _vi("f", [1, 128])] if value_info else []
    return _save(tmp_path, nodes, [_vi("x", [1, 3, 8, 8]), _vi("x2", [1, 8, 8, 8])],
                 [_vi("out", [1, 10]), _vi("up", None)], inits, vis, name=fuse_name)


def test_fusion_skips_and_unmodelled_are_listed(tmp_path):
    r = read_onnx(_small_net(tmp_path))
    wl = r.workload
    assert [(layer.name, layer.op) for layer in wl.layers] == [
        ("conv", "conv2d"), ("add", "elementwise"), ("pool", "pool"), ("fc", "linear"), ("softmax", "elementwise")]
    assert r.fused == {"bn": "conv", "relu": "conv"}
    assert wl["add"].num_inputs == 2 and wl["add"].elements == 8 * 8 * 8
    assert wl["softmax"].ops_per_element == 5 and wl["softmax"].num_inputs == 1
    assert r.skipped == [("flatten", "Flatten")] and r.not_modelled == [("deconv", "ConvTranspose")]
    assert "fused into the producing layer: BatchNormalization x1, Relu x1" in wl.description
    assert "skipped (no accelsim layer): Flatten x1 (flatten)" in wl.description
    assert "NOT MODELLED compute nodes (their MACs are missing): ConvTranspose x1 (deconv)" in wl.description
    assert wl.total_macs == 8 * 8 * 8 * 27 + 10 * 128


def test_declared_output_shapes_are_checked(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    path = _save(tmp_path, [node], [_vi("x", [1, 2, 6, 6])], [_vi("y", [1, 4, 5, 6])], [_init("w", (4, 2, 3, 3))])
    with pytest.raises(ConfigError, match=r"output size computed as \[6, 6\] but the graph declares \[5, 6\]"):
        load_onnx(path)
    # ceil_mode: a last window starting in the end padding is dropped by PyTorch (declared 3, not 4)
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                            pads=[1, 1, 1, 1], ceil_mode=1)
    path = _save(tmp_path, [node], [_vi("x", [1, 2, 5, 5])], [_vi("y", [1, 2, 3, 3])], name="p.onnx")
    layer = load_onnx(path)["pool"]
    assert (layer.out_h, layer.out_w) == (3, 3)


def test_post_op_after_a_reshape_is_fused_and_subgraphs_are_flagged(tmp_path):
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [_vi("t", [1, 2, 3, 3])])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("Relu", ["f"], ["y"], name="relu"),
             helper.make_node("If", ["cond"], ["z"], name="branch", then_branch=then, else_branch=then)]
    path = _save(tmp_path, nodes, [_vi("x", [1, 2, 3, 3]), _vi("cond", [], TensorProto.BOOL)],
                 [_vi("y", None), _vi("z", None)], [_init("w", (4, 2, 3, 3))])
    r = read_onnx(path)
    assert [layer.name for layer in r.workload.layers] == ["conv"] and r.fused == {"relu": "conv"}
    assert r.not_modelled == [("branch", "If")] and "NOT MODELLED compute nodes" in r.workload.description


def test_shape_inference_fills_missing_shapes(tmp_path):
    a = read_onnx(_small_net(tmp_path, value_info=True, fuse_name="a.onnx")).workload
    b = read_onnx(_small_net(tmp_path, value_info=False, fuse_name="b.onnx")).workload
    assert a.layers == b.layers


def test_no_fusion_makes_every_elementwise_node_a_layer(tmp_path):
    wl = load_onnx(_small_net(tmp_path), fuse_activations=False)
    assert [layer.name for layer in wl.layers] == ["conv", "bn", "relu", "add", "pool", "fc", "softmax"]
    assert all(isinstance(wl[n], Elementwise) and wl[n].num_inputs == 1 for n in ("bn", "relu"))


def test_activation_of_a_graph_input_is_a_layer_and_bias_add_is_fused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="bias")]
    path = _save(tmp_path, nodes, [_vi("x", [2, 6])], [_vi("y", None)], [_init("w", (6, 4)), _init("b", (4,))])
    r = read_onnx(path)
    assert [layer.name for layer in r.workload.layers] == ["relu", "mm"]
    assert r.fused == {"bias": "mm"}


def test_runtime_shape_computation_is_folded(tmp_path):
    # x.view(*x.shape[:-1], 2, 3) as PyTorch exports it: Shape -> Slice -> Concat -> Reshape
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "st", "en"], ["s2"], name="slice"),
        helper.make_node("Concat", ["s2", "hd"], ["ns"], axis=0, name="concat"),
        helper.make_node("Reshape", ["x", "ns"], ["xr"], name="reshape"),
        helper.make_node("Transpose", ["xr"], ["xt"], perm=[0, 2, 1, 3], name="tr"),
        helper.make_node("Transpose", ["xr"], ["xk"], perm=[0, 2, 3, 1], name="trk"),
        helper.make_node("MatMul", ["xt", "xk"], ["scores"], name="scores"),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([2], np.int64), "en"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "hd")]
    path = _save(tmp_path, nodes, [_vi("x", [1, 5, 6])], [_vi("scores", None)], inits)
    layer = load_onnx(path)["scores"]
    assert isinstance(layer, Matmul) and (layer.batch, layer.heads, layer.m, layer.k, layer.n) == (1, 2, 5, 3, 5)


def test_unnamed_and_repeated_node_names(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="c"),
             helper.make_node("Conv", ["b", "w2"], ["y"], name="c")]
    path = _save(tmp_path, nodes, [_vi("x", [1, 2, 5, 5])], [_vi("y", None)],
                 [_init("w", (3, 2, 1, 1)), _init("w2", (3, 3, 1, 1))])
    wl = load_onnx(path)
    assert [layer.name for layer in wl.layers] == ["Conv_0", "c", "c_2"]
    assert "node name 'c' is used more than once: this one is 'c_2'" in wl.description


def test_symbolic_batch_needs_input_shapes(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    path = _save(tmp_path, [node], [_vi("x", ["N", 3, 6, 6])], [_vi("y", None)], [_init("w", (4, 3, 3, 3))])
    with pytest.raises(ConfigError, match=r"symbolic shape \['N', 3, 6, 6\] \(pass input_shapes"):
        load_onnx(path)
    layer = load_onnx(path, input_shapes={"x": (2, 3, 6, 6)})["conv"]
    assert layer.batch == 2 and layer.macs == 2 * 4 * 4 * 4 * 27


def test_torch_module_name():
    assert torch_module_name("/conv1/Conv") == "conv1"
    assert torch_module_name("/layer2/layer2.0/downsample/downsample.0/Conv") == "layer2.0.downsample.0"
    assert torch_module_name("/features/features.1/conv/conv.0/conv.0.0/Conv") == "features.1.conv.0.0"
    assert torch_module_name("Op4") == "Op4"


# --- bad input -----------------------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_truncated_file_never_loads(tmp_path):
    data = (ZZ / "resnet18.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    for cut in [*range(1, len(data), 41), len(data) - 1]:
        path.write_bytes(data[:cut])
        with pytest.raises(ConfigError) as info:
            load_workload(path)
        assert _one_line(info.value).startswith(str(path)), cut


@pytest.mark.parametrize("content,needle", [
    (b"", "empty file"),
    (b"name: x\nlayers: []\n", "not"),
    (b"\x00\x01\x02garbage", "not"),
])
def test_not_onnx(tmp_path, content, needle):
    path = tmp_path / "x.onnx"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle) as info:
        load_onnx(path)
    assert _one_line(info.value).startswith(str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_workload(tmp_path / "nope.onnx")
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(ConfigError, match="directory"):
        load_workload(tmp_path / "d.onnx")


def _conv_model(tmp_path, x_shape, w_shape, x_has_shape=True, op="Conv", **attrs):
    node = helper.make_node(op, ["x", "w"] if op == "Conv" else ["x"], ["y"], name="bad/node", **attrs)
    x = _vi("x", list(x_shape)) if x_has_shape else helper.make_tensor_value_info("x", F, None)
    return _save(tmp_path, [node], [x], [_vi("y", None)], [_init("w", w_shape)] if w_shape else [])


@pytest.mark.parametrize("kwargs,field,needle", [
    (dict(x_shape=(1, 2, 4, 4, 4), w_shape=(3, 2, 3, 3, 3)), "kernel_shape", "only 1-D and 2-D convolutions"),
    (dict(x_shape=(1, 4, 8, 8), w_shape=(6, 3, 3, 3), group=2), "group", "does not fit 4 input channels"),
    (dict(x_shape=(1, 2, 8, 8), w_shape=(3, 2, 3, 3), auto_pad="SAME"), "auto_pad", "unknown auto_pad 'SAME'"),
    (dict(x_shape=(1, 2, 8, 8), w_shape=(3, 2, 3, 3), pads=[1, 1]), "pads", "expected 4 non-negative pads"),
    (dict(x_shape=(1, 2, 8, 8), w_shape=(3, 2, 3, 3), x_has_shape=False), "", "input 'x' has no shape"),
    (dict(x_shape=(1, 2, 8, 8), w_shape=None, op="MaxPool", kernel_shape=[2, 2], dilations=[2, 2]), "dilations",
     "pooling with dilations"),
])
def test_bad_nodes_name_file_and_node(tmp_path, kwargs, field, needle):
    path = _conv_model(tmp_path, **kwargs)
    with pytest.raises(ConfigError) as info:
        load_onnx(path)
    text = _one_line(info.value)
    assert text.startswith(f"{path}: field 'nodes[0](bad/node){'.' + field if field else ''}'"), text
    assert needle in text


def test_missing_onnx_package_one_line_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ConfigError, match=r"needs the 'onnx' package: pip install 'accelsim\[onnx\]'") as info:
        load_workload(ZZ / "resnet18.onnx")
    _one_line(info.value)


def test_core_imports_and_runs_without_onnx():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import accelsim, accelsim.workload.onnx_io\n"
            "from accelsim.workload import load_workload\n"
            "print(load_workload('models/tiny_cnn.yaml').total_macs)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "309248"


# --- detection and the CLI ------------------------------------------------------------------------

def test_detected_by_contents(tmp_path):
    path = tmp_path / "model.bin"
    shutil.copy(ZZ / "resnet18.onnx", path)
    assert is_onnx_file(path)
    assert load_workload(path).total_macs == load_onnx(ZZ / "resnet18.onnx").total_macs
    assert not is_onnx_file(ROOT / "models" / "resnet18.yaml")
    assert not is_onnx_file(REF / "scalesim_cycles_visible.csv")


def test_cli_simulate_onnx(tmp_path, capsys):
    path = _small_net(tmp_path)
    out_csv = tmp_path / "r.csv"
    assert main(["simulate", "--workload", str(path), "--hw", str(HW), "--out", str(out_csv)]) == 0
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["layer"] for row in rows] == ["conv", "add", "pool", "fc", "softmax"]
    assert "MACs 15,104" in capsys.readouterr().out


def test_cli_bad_onnx_exit_2(tmp_path, capsys):
    path = tmp_path / "x.onnx"
    path.write_bytes((ZZ / "resnet18.onnx").read_bytes()[:500])
    assert main(["simulate", "--workload", str(path), "--hw", str(HW)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"accelsim: error: {path}: ") and "\n" not in err


# --- torch.onnx round trip -----------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs,xkwargs", [
    ("tiny_cnn", {}, {}),
    ("small_block", {}, {}),
    ("small_lstm", {}, {}),
    ("bert_base", {"num_layers": 1, "hidden": 64, "heads": 4, "intermediate": 128}, {"seq_len": 16, "hidden": 64}),
])
def test_torch_onnx_export_round_trip(tmp_path, name, kwargs, xkwargs):
    torch = pytest.importorskip("torch")
    from accelsim.frontend import export
    from accelsim.frontend.models import example_input, get_torch_model

    if name == "small_block":
        model, x = _small_block(torch)
    else:
        model = get_torch_model(name, **kwargs).eval()
        x = example_input(name, **xkwargs)
    ref = export(model, x, name=name)
    path = tmp_path / f"{name}.onnx"
    try:
        with _quiet():
            torch.onnx.export(model, (x,), str(path), dynamo=False)
    except ModuleNotFoundError as exc:  # the exporter needs a package that is not installed
        pytest.skip(f"torch.onnx.export needs {exc.name}")
    wl = load_onnx(path)
    assert wl.total_macs == ref.total_macs
    assert len(wl) == len(ref)
    for a, b in zip(wl.layers, ref.layers):  # same layers, same order, same fields (names differ in form)
        assert _same_fields(a, b), (a.name, b.name)
        assert torch_module_name(a.name) in b.name, (a.name, b.name)


def _small_block(torch):
    """Batch 2; grouped + depthwise + strided conv, batch norm, residual add, max/avg pool, linear."""
    from accelsim.frontend.models import Add

    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.gc = nn.Conv2d(16, 16, 1, groups=4)
            self.add = Add()
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.avg = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            y = torch.relu(self.bn(self.stem(x)))
            y = self.add(self.gc(torch.relu(self.dw(y))), y)
            return self.fc(torch.flatten(self.avg(self.pool(y)), 1))

    torch.manual_seed(0)
    return Block().eval(), torch.randn(2, 3, 20, 18)


class _quiet:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
