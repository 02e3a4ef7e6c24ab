"""Export a quantised model to ONNX in QDQ form (QuantizeLinear / DequantizeLinear pairs).

Deployment tools (ONNX Runtime, TensorRT, OpenVINO, vendor NPU compilers) read a quantised network
as a float graph in which every quantised tensor passes through ``QuantizeLinear ->
DequantizeLinear`` with its scale and zero point; they fuse the pairs into integer kernels.

:func:`export_onnx_qdq` wraps every quantised conv / linear of a copy of the model so that its
input goes through a per-tensor QDQ pair (the static grid from :func:`.ptq.calibrate` or LSQ)
and its weight through a per-output-channel QDQ pair, and exports with ``torch.onnx.export``
(TorchScript exporter, constant folding off so weight QDQ pairs stay visible).

Assumptions and limits: ONNX QDQ of this opset stores int8 / uint8, so grids of 2..8 bits are
exported as int8 / uint8 containers — a ``b``-bit activation grid is exact because its input is
clipped to the grid's range first (an explicit ``Clip``), a ``b``-bit weight grid because the
weights already lie on it (checked: a weight not representable as ``scale * k`` with ``|k| <=
127`` is a :class:`~accelsim.errors.ConfigError` naming the layer). More than 8 bits, asymmetric
weights, and layers without a static activation grid are errors too. Supported weight schemes:
symmetric ``int``, ``binary``, ``ternary`` and ``pow2`` (step = the smallest power of two).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

DEFAULT_OPSET = 19


class _QDQLayer(nn.Module):
    """A conv / linear whose input and weight pass through fake-quant ops that export as QDQ."""

    def __init__(self, layer: "nn.Module", w_scale: "torch.Tensor", act: Any):
        super().__init__()
        self.layer = layer
        self.register_buffer("w_scale", w_scale.detach().reshape(-1).float().clone())
        self.register_buffer("w_zero", torch.zeros(self.w_scale.numel(), dtype=torch.int32))
        self.a_scale = float(act.scale.reshape(()))
        self.a_zero = int(act.zero_point.reshape(()))
        self.a_lo = (act.qmin - self.a_zero) * self.a_scale
        self.a_hi = (act.qmax - self.a_zero) * self.a_scale
        self.a_range = (0, 255) if act.qmin >= 0 else (-128, 127)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = torch.clamp(x, self.a_lo, self.a_hi)
        x = torch.fake_quantize_per_tensor_affine(x, self.a_scale, self.a_zero, *self.a_range)
        w = torch.fake_quantize_per_channel_affine(self.layer.weight, self.w_scale, self.w_zero, 0, -128, 127)
        m = self.layer
        if isinstance(m, nn.Conv2d):
            return F.conv2d(x, w, m.bias, m.stride, m.padding, m.dilation, m.groups)
        return F.linear(x, w, m.bias)


def _plain_copy(m: "nn.Module") -> "nn.Module":
    """A plain conv / linear with ``m``'s hyper-parameters and its current (projected) weight."""
    if isinstance(m, nn.Conv2d):
        new = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                        m.bias is not None, m.padding_mode)
    else:
        new = nn.Linear(m.in_features, m.out_features, m.bias is not None)
    new = new.to(m.weight.device, m.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(m.weight.detach())
        if m.bias is not None:
            new.bias.copy_(m.bias.detach())
    return new


def weight_step(w: "torch.Tensor", spec: Any) -> "torch.Tensor":
    """Per-output-channel step of a weight already projected with ``spec`` (a ``QuantSpec``)."""
    dims = tuple(range(1, w.dim()))
    amax = w.detach().abs().amax(dim=dims) if spec.granularity == "channel" else \
        w.detach().abs().amax().expand(w.shape[0])
    amax = amax.clamp_min(1e-12)
    if spec.scheme == "int":
        if not spec.symmetric:
            raise ConfigError("asymmetric weight grids are not exported (use symmetric: true)", source="onnx export",
                              field="quantize.symmetric")
        return amax / (2 ** (spec.weight_bits - 1) - 1)
    if spec.scheme in ("binary", "ternary"):
        return amax
    if spec.scheme == "pow2":
        e_max = torch.floor(torch.log2(amax * 4.0 / 3.0))
        return torch.pow(2.0, e_max - (2 ** (spec.weight_bits - 1) - 1 - 1))
    raise ConfigError(f"scheme {spec.scheme!r} has no QDQ form", source="onnx export", field="quantize.scheme")


def _check_on_grid(name: str, w: "torch.Tensor", step: "torch.Tensor") -> None:
    k = w.detach() / step.view(-1, *([1] * (w.dim() - 1)))
    if k.numel() and (float(k.max()) > 127.5 or float(k.min()) < -128.5):
        raise ConfigError(f"weights need more than 8 bits on their grid (w/step in [{float(k.min()):.0f}, "
                          f"{float(k.max()):.0f}])", source="onnx export", field=name)
    err = float((k - torch.round(k)).abs().max()) if k.numel() else 0.0
    if err > 1e-3:
        raise ConfigError(f"weights are not on the quantisation grid (max deviation {err:.3g} steps); freeze the "
                          "quantised model first", source="onnx export", field=name)


def export_onnx_qdq(model: "nn.Module", example_input: "torch.Tensor", path: str | Path,
                    weight_steps: dict[str, "torch.Tensor"], act_qparams: dict[str, Any],
                    opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (float weights already on their grids) as a QDQ ONNX file at ``path``.

    ``weight_steps``: per layer, the per-output-channel step; ``act_qparams``: per layer, the
    static :class:`~.ptq.QParams` of its input. Layers in one mapping but not the other are errors.
    The model's own forward pre-hooks on those layers (fake-quant) are dropped in the copy: the
    QDQ wrapper replaces them. Returns the path.
    """
    from .ptq import _replace

    names = set(weight_steps)
    if names != set(act_qparams):
        missing = sorted(names ^ set(act_qparams))
        raise ConfigError(f"layers {missing} have a weight grid but no static activation grid or vice versa "
                          "(calibrate first)", source="onnx export", field="act_qparams")
    if not names:
        raise ConfigError("no quantised layer to export", source="onnx export")
    # swap QDQ wrappers into the model for the export and restore it afterwards (a deep copy of a
    # parametrised model is not reliable)
    wrappers = {}
    for name in sorted(names):
        m = model.get_submodule(name)
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            raise ConfigError(f"only conv2d / linear layers are exported with QDQ, got {type(m).__name__}",
                              source="onnx export", field=name)
        qa = act_qparams[name]
        if qa.bits > 8:
            raise ConfigError(f"activation grid of {qa.bits} bits does not fit ONNX int8/uint8 QDQ",
                              source="onnx export", field=name)
        plain = _plain_copy(m)  # baked weight, no hooks / parametrisations
        step = weight_steps[name].to(plain.weight.device)
        _check_on_grid(name, plain.weight, step)
        wrappers[name] = _QDQLayer(plain, step, qa)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    import warnings

    originals = {name: model.get_submodule(name) for name in wrappers}
    was = model.training
    try:
        for name, w in wrappers.items():
            _replace(model, name, w)
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example_input,), buf, dynamo=False, opset_version=opset,
                              do_constant_folding=False, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    finally:
        for name, m in originals.items():
            _replace(model, name, m)
        model.train(was)
    from .._validation import atomic_write_bytes

    data = buf.getvalue()
    atomic_write_bytes(out, lambda tmp: Path(tmp).write_bytes(data))
    return out


def export_compressed_onnx(cm: Any, example_input: "torch.Tensor", path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """QDQ ONNX of a calibrated :class:`~.compressor.CompressedModel` (:func:`.ptq.calibrate`).

    Call ``cm.freeze()`` first (weights baked onto their grids); pruned weights are exported as
    zeros on the grid."""
    from torch.nn.utils import parametrize

    if not cm.act_qparams:
        raise ConfigError("the model has no static activation grids: run accelsim.frontend.ptq.calibrate first",
                          source="onnx export", field="act_qparams")
    if any(parametrize.is_parametrized(m) for m in cm.model.modules()):
        raise ConfigError("bake the projections first: cm.freeze() (a deep copy of a parametrised model is not "
                          "reliable)", source="onnx export", field="model")
    model = cm.model
    steps = {}
    for name in cm.act_qparams:
        u = cm.units[name]
        steps[name] = weight_step(model.get_submodule(name).weight, u.quant)
    return export_onnx_qdq(model, example_input, path, steps, cm.act_qparams, opset)


def export_lsq_onnx(model: "nn.Module", example_input: "torch.Tensor", path: str | Path,
                    opset: int = DEFAULT_OPSET) -> Path:
    """QDQ ONNX of a model trained with :func:`.lsq.prepare_lsq` (the learned steps are the grids)."""
    from .lsq import lsq_qparams

    wq, aq = lsq_qparams(model)
    for name, q in wq.items():
        if q.bits > 8:
            raise ConfigError(f"weight grid of {q.bits} bits does not fit ONNX int8 QDQ", source="onnx export",
                              field=name)
    return export_onnx_qdq(model, example_input, path, {n: q.scale for n, q in wq.items()}, aq, opset)


def qdq_counts(path: str | Path) -> dict[str, int]:
    """Number of ``QuantizeLinear`` / ``DequantizeLinear`` nodes in an ONNX file (needs ``onnx``)."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("reading ONNX files needs the onnx package: pip install 'accelsim[torch]'",
                          source=str(path)) from None
    graph = onnx.load(str(path)).graph
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    return counts


__all__ = ["export_onnx_qdq", "export_compressed_onnx", "export_lsq_onnx", "weight_step", "qdq_counts"]
