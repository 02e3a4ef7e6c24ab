"""Read an ONNX graph into the workload IR (needs the optional ``onnx`` package: ``accelsim[onnx]``).

:func:`load_onnx` walks the graph's nodes in file order (ONNX requires topological order) and
makes one IR layer per node that does work:

- ``Conv`` (1-D or 2-D; grouped, depthwise, strided, dilated, ``pads`` incl. asymmetric,
  ``auto_pad`` SAME_UPPER / SAME_LOWER / VALID) -> ``conv2d`` (a 1-D conv is ``1 x L``).
  ``ConvInteger`` / ``QLinearConv`` likewise. Integer operands (also through ``DequantizeLinear``
  of an integer tensor, the QDQ format) give ``quant.weight_bits`` / ``act_bits``.
  3-D convs are rejected. The IR pads symmetrically: asymmetric pads become the symmetric pad
  (and, if no pad fits, an input one row/column larger) that gives the *same output size*, so
  MACs and output words are exact; which input rows a tile reads may differ by one border row.
  The layer's notes name every layer where this happened.
- ``Gemm`` (``transA`` / ``transB``; ``alpha``/``beta``/``C`` are free) and ``MatMul`` (numpy
  semantics: 1-D operands, broadcast batch dims; ``MatMulInteger`` / ``QLinearMatMul`` too):
  with a constant B (initializer, ``Constant``, or computed from constants only, e.g.
  ``DequantizeLinear(W)``) -> ``linear`` (``batch`` = first dim of A, ``tokens`` = the other
  leading dims x rows, as the front-end exporter does), or ``matmul`` with ``b_operand: weight``
  when B has its own batch dims (``heads`` = distinct B matrices); with a constant A the product
  is read transposed (``W X = (X^T W^T)^T``); two activations -> ``matmul`` (``b_operand:
  activation``, ``batch`` = first leading dim, ``heads`` = the rest), e.g. attention.
- ``LSTM`` / ``GRU`` -> one ``lstm`` / ``gru`` layer per direction (``<name>`` forward,
  ``<name>_reverse`` backward).
- ``MaxPool`` / ``AveragePool`` (``ceil_mode``, pads as for Conv; pooling dilation is rejected),
  ``GlobalAveragePool`` / ``GlobalMaxPool`` -> ``pool``.
- Element-wise nodes -> ``elementwise`` (``num_inputs`` = activation inputs of the output's full
  size, at least 1). A node with a single activation input (``Relu``, ``Clip``, ``Sigmoid``,
  ``BatchNormalization``, ``Add`` of a bias, ``Mul``/``Div`` by a constant, ...) whose input
  comes straight from a layer is *fused* into that layer (its post-op, free, like the zoo and the
  front-end exporter treat activations, batch norm and biases); ``fuse_activations=False`` makes
  each its own layer. ``Softmax`` / ``LogSoftmax`` / ``LayerNormalization`` are always layers
  with 5 ops per element, ``Gelu`` with 8 (the zoo's conventions), ``LRN`` with ``size``.
- Everything else (``Reshape``, ``Flatten``, ``Transpose``, ``Concat``, ``Constant``, ``Dropout``,
  reductions, ...) has no layer: it is listed in the workload's ``description`` ("skipped") and
  in :attr:`OnnxImport.skipped`. Compute nodes accelsim does not model (``ConvTranspose``,
  ``Einsum``, ``RNN``, custom domains) are listed separately as *not modelled* (their MACs are
  missing from the totals).

Shapes come from initializers, ``Constant`` nodes, graph inputs/outputs and ``value_info``;
when a node needs a shape that is not declared, ``onnx.shape_inference`` runs once (shape-only
graphs such as ZigZag's work). ``input_shapes`` overrides the graph inputs (e.g. to fix a
symbolic batch dimension). External tensor data is never read: only dims matter.

Layer names are the ONNX node names, unchanged (ZigZag reports ``/conv1/Conv`` etc.). A node
without a name is called ``<op_type>_<index>`` (its index in the graph); a repeated name gets
``_2``, ``_3``, ...; :func:`torch_module_name` turns a ``torch.onnx.export`` name
(``/layer1/layer1.0/conv1/Conv``) into the PyTorch module name (``layer1.0.conv1``).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from ..errors import ConfigError
from .compression import Compression, Quant
from .layer import Conv2d, Elementwise, LayerBase, Linear, Matmul, Pool, Recurrent, _out_size
from .workload import Workload

INSTALL_HINT = "pip install 'accelsim[onnx]' (or pip install 'onnx>=1.15')"

Shape = tuple[int, ...]

# ModelProto field tags that can follow ir_version (field 1) in a serialized model
_MODEL_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}

CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}  # op -> (X index, W index)
MATMUL_OPS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
POOL_OPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
RNN_OPS = {"LSTM", "GRU"}
# element-wise ops (same-shape output); value = ops per element
ELEMENTWISE_OPS: dict[str, int] = {
    **{op: 1 for op in (
        "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
        "Celu", "ThresholdedRelu", "Softplus", "Softsign", "Mish", "BatchNormalization",
        "InstanceNormalization", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Sqrt",
        "Reciprocal", "Exp", "Log", "Abs", "Neg", "Erf", "Where", "Floor", "Ceil", "Round", "Sign",
        "QuantizeLinear", "DequantizeLinear", "Cos", "Sin")},
    "Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 5, "Gelu": 8,
}
NEVER_FUSED = {"Softmax", "LogSoftmax", "LayerNormalization", "Gelu", "LRN", "InstanceNormalization"}
# compute ops accelsim has no layer for (listed as "not modelled", never silently dropped)
UNMODELLED_COMPUTE = {"ConvTranspose", "Einsum", "RNN", "Attention", "DeformConv", "MultiHeadAttention",
                      "FusedConv", "FusedMatMul", "QLinearConvTranspose", "If", "Loop", "Scan"}  # + sub-graphs
# data movement / layout only: no layer, but a post-op after them still belongs to the producing layer
PASS_THROUGH = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast"}
_MAX_FOLD_ROUNDS = 20
_MAX_FOLD_ELEMENTS = 1024  # only shape-like tensors are evaluated
_FOLDABLE = {
    "Shape", "Size", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Mod", "Add", "Sub", "Mul", "Div",
    "Cast", "Reshape", "Constant", "ConstantOfShape", "Range", "Equal", "Where", "Expand", "Floor", "Ceil",
    "Sqrt", "Neg", "Abs", "Min", "Max", "ReduceProd", "ReduceSum", "Identity", "Not", "Less", "Greater",
    "And", "Or", "Transpose", "Pow", "Flatten", "Split", "GatherElements", "Tile",
}
_INT_BITS = {2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 12: 32, 13: 64, 21: 4, 22: 4}  # TensorProto elem type -> bits


@dataclass
class OnnxImport:
    """What :func:`read_onnx` made of a graph."""

    workload: Workload
    fused: dict[str, str] = field(default_factory=dict)  # node name -> layer it is fused into
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (node name, op_type): no layer
    not_modelled: list[tuple[str, str]] = field(default_factory=list)  # compute nodes without a layer
    notes: list[str] = field(default_factory=list)  # modelling approximations, per layer


def _require_onnx(source: str):  # type: ignore[no-untyped-def]
    try:
        import onnx
    except ModuleNotFoundError:
        raise ConfigError(f"reading ONNX needs the 'onnx' package: {INSTALL_HINT}", source=source) from None
    return onnx


def is_onnx_file(path: str | Path) -> bool:
    """True for a ``.onnx`` path, or a file whose first bytes are a serialized ONNX ModelProto
    (field 1 ``ir_version`` as a small varint, then another ModelProto field)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] < 0x40 and head[2] in _MODEL_TAGS


def torch_module_name(node_name: str) -> str:
    """PyTorch module name of a ``torch.onnx.export`` node name.

    ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``; ``/features/features.1/conv/conv.0/conv.0.0/Conv``
    -> ``features.1.conv.0.0``. Names not of that form come back unchanged.
    """
    parts = [s for s in node_name.split("/") if s]
    if len(parts) < 2 or not node_name.startswith("/"):
        return node_name
    full, prev = "", ""
    for comp in parts[:-1]:
        if prev and comp.startswith(prev + "."):
            full += comp[len(prev):]
        else:
            full = f"{full}.{comp}" if full else comp
        prev = comp
    return full


# --- graph facts ------------------------------------------------------------------------------

class _Graph:
    """Shapes, element types, constants and producers of one ONNX graph."""

    def __init__(self, onnx: Any, model: Any, source: str, input_shapes: dict[str, Shape] | None):
        self.onnx = onnx
        self.model = model
        self.source = source
        g = model.graph
        if input_shapes:
            known = {i.name for i in g.input}
            for name, dims in input_shapes.items():
                if name not in known:
                    raise ConfigError(f"no graph input named {name!r} (inputs: {sorted(known)})", source=source,
                                      field="input_shapes")
            for inp in g.input:
                if inp.name in input_shapes:
                    shape = inp.type.tensor_type.shape
                    del shape.dim[:]
                    for d in input_shapes[inp.name]:
                        shape.dim.add().dim_value = int(d)
            del g.value_info[:]  # stale for other input shapes: re-inferred
            for out in g.output:
                out.type.tensor_type.ClearField("shape")
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self.elem: dict[str, int] = {}
        self.inferred = False
        self.inference_error = ""
        self._collect(model)
        self.const: set[str] = {t.name for t in g.initializer}
        self.producer: dict[str, int] = {}
        for i, node in enumerate(g.node):
            for out in node.output:
                if out:
                    self.producer[out] = i
            ins = [x for x in node.input if x]
            if node.op_type == "Constant" or (ins and all(x in self.const for x in ins)):
                self.const.update(o for o in node.output if o)

    def _collect(self, model: Any) -> None:
        g = model.graph
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            tt = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and tt.elem_type:
                self.elem.setdefault(vi.name, tt.elem_type)
            if vi.type.HasField("tensor_type") and tt.HasField("shape"):
                dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim)
                old = self.shapes.get(vi.name)
                if old is None or not _concrete(old):
                    self.shapes[vi.name] = dims
        for t in g.initializer:
            self.shapes[t.name] = tuple(t.dims)
            self.elem[t.name] = t.data_type
        for node in g.node:
            if node.op_type == "Constant" and node.output:
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        self.shapes[node.output[0]] = tuple(a.t.dims)
                        self.elem[node.output[0]] = a.t.data_type
                    elif a.name in ("value_float", "value_int"):
                        self.shapes[node.output[0]] = ()
                    elif a.name in ("value_floats", "value_ints"):
                        self.shapes[node.output[0]] = (len(a.floats) or len(a.ints),)

    def infer(self) -> None:
        """Run ONNX shape inference and merge what it finds (once).

        ONNX's inference cannot follow shapes computed at run time (``Shape`` -> ``Gather`` ->
        ``Concat`` -> ``Reshape``, as PyTorch's exporter writes ``x.view(*x.size()[:-1], h, d)``).
        So small integer tensors whose inputs are all known are evaluated (``Shape`` from the known
        shape, the rest with ``onnx.reference`` one node at a time), put in as constants, and
        inference runs again, until nothing new is learnt.
        """
        if self.inferred:
            return
        self.inferred = True
        values = self._seed_values()
        self.skeleton = self._strip_weights(self.model)
        model = self.skeleton
        for _ in range(_MAX_FOLD_ROUNDS):
            try:
                inferred = self.onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
            except Exception as exc:  # noqa: BLE001 - any failure just leaves shapes missing
                self.inference_error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                return
            self._collect(inferred)
            if not self._fold(values):
                return
            model = self._with_values(values)

    def _strip_weights(self, model: Any) -> Any:
        """A copy of the model without the data of large initializers (inference needs dims only)."""
        out = self.onnx.ModelProto()
        out.ir_version = model.ir_version
        out.opset_import.extend(model.opset_import)
        out.functions.extend(model.functions)
        src, g = model.graph, out.graph
        g.name = src.name
        g.node.extend(src.node)
        g.input.extend(src.input)
        g.output.extend(src.output)
        g.value_info.extend(src.value_info)
        for t in src.initializer:
            if math.prod(t.dims) <= _MAX_FOLD_ELEMENTS and t.data_location != 1:
                g.initializer.append(t)
            else:
                stub = g.initializer.add()
                stub.name, stub.data_type = t.name, t.data_type
                stub.dims.extend(t.dims)
        return out

    def _seed_values(self) -> dict[str, Any]:
        from onnx import numpy_helper

        values: dict[str, Any] = {}
        for t in self.model.graph.initializer:
            if math.prod(t.dims) <= _MAX_FOLD_ELEMENTS and t.data_location != 1:
                try:
                    values[t.name] = numpy_helper.to_array(t)
                except Exception:  # noqa: BLE001 - a tensor we cannot read is simply not folded
                    pass
        return values

    def _fold(self, values: dict[str, Any]) -> bool:
        """Evaluate foldable nodes whose inputs are known; True if anything new was learnt."""
        import numpy as np

        new = False
        for node in self.model.graph.node:
            outs = [o for o in node.output if o]
            if not outs or all(o in values for o in outs) or node.op_type not in _FOLDABLE:
                continue
            if node.domain not in ("", "ai.onnx"):
                continue
            ins = [x for x in node.input if x]
            if node.op_type in ("Shape", "Size"):
                dims = self.shapes.get(ins[0]) if ins else None
                if dims is None or not _concrete(dims):
                    continue
                a = _attrs(self.onnx, node)
                arr = np.array(dims, dtype=np.int64)
                if node.op_type == "Size":
                    res = [np.array(math.prod(dims), dtype=np.int64)]
                else:
                    res = [arr[a.get("start", 0):a.get("end", len(dims))]]
            elif all(x in values for x in ins):
                try:
                    res = self._run_node(node, {x: values[x] for x in ins})
                except Exception:  # noqa: BLE001 - not foldable here; inference may still cope
                    continue
            else:
                continue
            for o, r in zip(outs, res):
                if r is not None and np.size(r) <= _MAX_FOLD_ELEMENTS:
                    values[o] = np.asarray(r)
                    new = True
        return new

    def _run_node(self, node: Any, feeds: dict[str, Any]) -> list[Any]:
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
                  for k, v in feeds.items()]
        outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        return list(ReferenceEvaluator(model).run(None, feeds))

    def _with_values(self, values: dict[str, Any]) -> Any:
        """A copy of the model where known small tensors are initializers and their producers are gone."""
        from onnx import numpy_helper

        model = self.onnx.ModelProto()
        model.CopyFrom(self.skeleton)
        g = model.graph
        have = {t.name for t in g.initializer}
        gone = [bool(n.output) and all((not o) or o in values for o in n.output) for n in g.node]
        keep = [n for n, drop in zip(g.node, gone) if not drop]
        folded = {o for n, drop in zip(g.node, gone) if drop for o in n.output if o}
        keep_copy = [self.onnx.NodeProto() for _ in keep]
        for dst, src in zip(keep_copy, keep):
            dst.CopyFrom(src)
        del g.node[:]
        g.node.extend(keep_copy)
        for name in sorted(folded - have):
            g.initializer.append(numpy_helper.from_array(values[name], name))
        return model

    def shape(self, tensor: str, where: str, what: str) -> Shape:
        """The concrete shape of ``tensor`` (inferring shapes if needed) or a ConfigError."""
        dims = self.shapes.get(tensor)
        if dims is None or not _concrete(dims):
            self.infer()
            dims = self.shapes.get(tensor)
        if dims is None or not _concrete(dims):
            if dims is None:
                why = "has no shape in the graph"
            else:
                why = f"has a symbolic shape {list(dims)} (pass input_shapes to fix it)"
            extra = f"; shape inference failed: {self.inference_error}" if self.inference_error else ""
            raise ConfigError(f"{what} '{tensor}' {why}{extra}", source=self.source, field=where)
        return tuple(int(d) for d in dims)

    def maybe_shape(self, tensor: str) -> Shape | None:
        dims = self.shapes.get(tensor)
        if (dims is None or not _concrete(dims)) and tensor:
            self.infer()
            dims = self.shapes.get(tensor)
        return tuple(int(d) for d in dims) if dims is not None and _concrete(dims) else None

    def bits(self, tensor: str) -> int | None:
        """Integer width of a tensor, or of the integer tensor a ``DequantizeLinear`` made it from."""
        bits = _INT_BITS.get(self.elem.get(tensor, 0))
        if bits is None and tensor in self.producer:
            node = self.model.graph.node[self.producer[tensor]]
            if node.op_type == "DequantizeLinear" and node.input:
                bits = _INT_BITS.get(self.elem.get(node.input[0], 0))
        return bits


def _concrete(dims: tuple[Any, ...]) -> bool:
    return all(isinstance(d, int) and d > 0 for d in dims)


def _numel(shape: Shape) -> int:
    return math.prod(shape) if shape else 1


# --- attributes ---------------------------------------------------------------------------------

def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        try:
            out[a.name] = onnx.helper.get_attribute_value(a)
        except Exception:  # noqa: BLE001 - unreadable attributes are reported when used
            out[a.name] = None
    return out


def _as_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# --- padding -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Axis:
    in_size: int
    pad: int


def _fit_spatial(sizes: Shape, kernel: Shape, strides: Shape, dil: Shape, pads_total: Shape, targets: Shape,
                 natural: str) -> tuple[list[_Axis], str] | None:
    """Symmetric pads (and input sizes) with the target output size on every axis, for one rounding.

    Preference: unchanged input size, then the pad closest to half the ONNX total, then the
    rounding ONNX uses (``natural``).
    """
    best: tuple[Any, ...] | None = None
    for rounding in ("floor", "ceil"):
        axes, cost = [], [0, 0, int(rounding != natural)]
        for size, k, s, d, total, target in zip(sizes, kernel, strides, dil, pads_total, targets):
            found = None
            for grow in (0, 1, -1):
                n = size + grow
                if n < 1:
                    continue
                for p in sorted(range(0, total + d * (k - 1) + 2), key=lambda p: (abs(2 * p - total), p)):
                    if _out_size(n, k, s, p, d, rounding) == target:
                        found = (abs(grow), abs(2 * p - total), _Axis(n, p))
                        break
                if found:
                    break
            if found is None:
                break
            cost[0] += found[0]
            cost[1] += found[1]
            axes.append(found[2])
        else:
            key = tuple(cost)
            if best is None or key < best[0]:
                best = (key, axes, rounding)
    return (best[1], best[2]) if best else None


# --- the reader ---------------------------------------------------------------------------------

class _Reader:
    def __init__(self, onnx: Any, model: Any, source: str, input_shapes: dict[str, Shape] | None, fuse: bool):
        self.onnx = onnx
        self.g = _Graph(onnx, model, source, input_shapes)
        self.source = source
        self.fuse = fuse
        self.layers: list[LayerBase] = []
        self.layer_of_tensor: dict[str, str] = {}  # tensor -> layer that produced it (incl. fused post-ops)
        self.result = OnnxImport(workload=None)  # type: ignore[arg-type]
        self.names: Counter[str] = Counter()
        self.fused_ops: Counter[str] = Counter()

    # helpers
    def err(self, msg: str, where: str) -> ConfigError:
        return ConfigError(msg, source=self.source, field=where)

    def add(self, layer_cls: type[LayerBase], where: str, **fields: Any) -> LayerBase:
        try:
            layer = layer_cls(**fields)
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e.get("loc", ()))
            msg = str(e.get("msg", "invalid layer")).removeprefix("Value error, ")
            raise self.err(f"{msg}{f' ({loc})' if loc else ''}", where) from None
        self.layers.append(layer)
        return layer

    def unique(self, name: str) -> str:
        self.names[name] += 1
        if self.names[name] == 1:
            return name
        k = self.names[name]
        while f"{name}_{k}" in self.names:
            k += 1
        new = f"{name}_{k}"
        self.names[new] += 1
        self.result.notes.append(f"node name {name!r} is used more than once: this one is {new!r}")
        return new

    def check_out(self, node: Any, where: str, expected: Shape) -> None:
        if not node.output or not node.output[0]:
            return
        declared = self.g.maybe_shape(node.output[0])
        if declared is not None and tuple(declared) != tuple(expected):
            raise self.err(f"{node.op_type} output computed as {list(expected)} but the graph declares "
                           f"{list(declared)} for '{node.output[0]}'", where)

    def produced(self, node: Any, layer_name: str) -> None:
        for o in node.output:
            if o:
                self.layer_of_tensor[o] = layer_name

    # --- the walk -----------------------------------------------------------------------------
    def run(self, name: str, graph_name: str) -> OnnxImport:
        g = self.g.model.graph
        if len(g.node) == 0:
            raise ConfigError("the ONNX graph has no nodes (is this an ONNX model?)", source=self.source)
        raw_names = []
        for i, node in enumerate(g.node):
            raw_names.append(node.name or f"{node.op_type}_{i}")
        for i, node in enumerate(g.node):
            lname = self.unique(raw_names[i])
            where = f"nodes[{i}]({lname})"
            op = node.op_type
            if node.domain not in ("", "ai.onnx"):
                self.result.not_modelled.append((lname, f"{node.domain}.{op}"))
                continue
            handler: Callable[..., None] | None = None
            if op in CONV_OPS:
                handler = self.conv
            elif op == "Gemm":
                handler = self.gemm
            elif op in MATMUL_OPS:
                handler = self.matmul
            elif op in RNN_OPS:
                handler = self.rnn
            elif op in POOL_OPS:
                handler = self.pool
            elif op in ELEMENTWISE_OPS or op == "LRN":
                handler = self.elementwise
            if handler is None:
                if op in UNMODELLED_COMPUTE:
                    self.result.not_modelled.append((lname, op))
                else:
                    self.result.skipped.append((lname, op))
                    if op in PASS_THROUGH and node.input and node.input[0] in self.layer_of_tensor:
                        self.produced(node, self.layer_of_tensor[node.input[0]])
                continue
            handler(node, lname, where)
        if not self.layers:
            raise ConfigError(f"no node of graph '{graph_name}' becomes a layer (ops: "
                              f"{sorted(Counter(n.op_type for n in g.node))})", source=self.source)
        wl = Workload(name=name, layers=self.layers, source=f"ONNX {Path(self.source).name}",
                      description=self.describe(graph_name))
        self.result.workload = wl
        return self.result

    def describe(self, graph_name: str) -> str:
        m = self.g.model
        opsets = ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in m.opset_import)
        parts = [f"ONNX graph '{graph_name}' (opset {opsets}"
                 + (f", producer {m.producer_name} {m.producer_version}".rstrip() if m.producer_name else "") + ")"]

        def listing(items: list[tuple[str, str]]) -> str:
            by_op: dict[str, list[str]] = {}
            for n, op in items:
                by_op.setdefault(op, []).append(n)
            return ", ".join(f"{op} x{len(ns)} ({', '.join(ns[:3])}{', ...' if len(ns) > 3 else ''})"
                             for op, ns in sorted(by_op.items()))

        if self.fused_ops:
            parts.append("fused into the producing layer: "
                         + ", ".join(f"{op} x{k}" for op, k in sorted(self.fused_ops.items())))
        if self.result.skipped:
            parts.append("skipped (no accelsim layer): " + listing(self.result.skipped))
        if self.result.not_modelled:
            parts.append("NOT MODELLED compute nodes (their MACs are missing): " + listing(self.result.not_modelled))
        parts.extend(self.result.notes)
        return "; ".join(parts)

    # --- compute nodes ------------------------------------------------------------------------
    def quant(self, a: str, b: str) -> Compression:
        wb, ab = self.g.bits(b), self.g.bits(a)
        if wb is None and ab is None:
            return Compression()
        return Compression(quant=Quant(weight_bits=min(wb or 8, 32), act_bits=min(ab or 8, 32)))

    def conv(self, node: Any, lname: str, where: str) -> None:
        xi, wi = CONV_OPS[node.op_type]
        if len(node.input) <= wi:
            raise self.err(f"{node.op_type} needs inputs X and W", where)
        x_name, w_name = node.input[xi], node.input[wi]
        x = self.g.shape(x_name, where, "input")
        w = self.g.shape(w_name, where, "weight")
        a = _attrs(self.onnx, node)
        if len(x) not in (3, 4) or len(w) != len(x):
            raise self.err(f"only 1-D and 2-D convolutions are supported (input {list(x)}, weight {list(w)})",
                           f"{where}.kernel_shape")
        nsp = len(x) - 2
        kernel = tuple(a.get("kernel_shape") or w[2:])
        if tuple(kernel) != tuple(w[2:]):
            raise self.err(f"kernel_shape {list(kernel)} does not match the weight {list(w)}", f"{where}.kernel_shape")
        strides = tuple(a.get("strides") or (1,) * nsp)
        dil = tuple(a.get("dilations") or (1,) * nsp)
        group = int(a.get("group", 1) or 1)
        n, c = x[0], x[1]
        m = w[0]
        if w[1] * group != c:
            raise self.err(f"weight {list(w)} with group {group} does not fit {c} input channels", f"{where}.group")
        if m % group:
            raise self.err(f"{m} output channels are not divisible by group {group}", f"{where}.group")
        for key, vals in (("strides", strides), ("dilations", dil)):
            if len(vals) != nsp or any(v < 1 for v in vals):
                raise self.err(f"expected {nsp} positive values, got {list(vals)}", f"{where}.{key}")
        sizes = x[2:]
        fit = self.fit(node, where, a, sizes, kernel, strides, dil, ceil_mode=False)
        targets, axes, rounding = fit
        out_shape = (n, m, *targets)
        self.check_out(node, where, out_shape)
        if nsp == 1:
            axes = [_Axis(1, 0), *axes]
            kernel, strides, dil = (1, *kernel), (1, *strides), (1, *dil)
        layer = self.add(Conv2d, where, name=lname, batch=n, in_channels=c, out_channels=m, in_h=axes[0].in_size,
                         in_w=axes[1].in_size, kernel_h=kernel[0], kernel_w=kernel[1], stride_h=strides[0],
                         stride_w=strides[1], pad_h=axes[0].pad, pad_w=axes[1].pad, dilation_h=dil[0],
                         dilation_w=dil[1], groups=group, out_rounding=rounding,
                         compression=self.quant(x_name, w_name))
        self.produced(node, layer.name)

    def fit(self, node: Any, where: str, a: dict[str, Any], sizes: Shape, kernel: Shape, strides: Shape,
            dil: Shape, ceil_mode: bool) -> tuple[Shape, list[_Axis], str]:
        """Output sizes and the IR's symmetric pads for a conv/pool node's ``pads`` / ``auto_pad``."""
        nsp = len(sizes)
        auto = _as_str(a.get("auto_pad") or "NOTSET")
        ext = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dil))
        natural = "ceil" if ceil_mode else "floor"
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            targets = tuple(-(-s // st) for s, st in zip(sizes, strides))
            totals = tuple(max((t - 1) * st + e - s, 0) for t, st, e, s in zip(targets, strides, ext, sizes))
            begins = tuple(t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in totals)
            pads = (*begins, *(t - b for t, b in zip(totals, begins)))
        elif auto == "VALID":
            pads = (0,) * (2 * nsp)
        elif auto == "NOTSET":
            pads = tuple(a.get("pads") or (0,) * (2 * nsp))
        else:
            raise self.err(f"unknown auto_pad {auto!r} (expected NOTSET, SAME_UPPER, SAME_LOWER, VALID)",
                           f"{where}.auto_pad")
        if len(pads) != 2 * nsp or any(p < 0 for p in pads):
            raise self.err(f"expected {2 * nsp} non-negative pads, got {list(pads)}", f"{where}.pads")
        totals = tuple(pads[i] + pads[i + nsp] for i in range(nsp))
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            targets = tuple(
                (-(-(s + t - e) // st) if ceil_mode else (s + t - e) // st) + 1
                for s, t, e, st in zip(sizes, totals, ext, strides)
            )
        declared = self.g.maybe_shape(node.output[0]) if node.output and node.output[0] else None
        if declared is not None and len(declared) == nsp + 2 and tuple(declared[2:]) != targets:
            # ceil_mode: PyTorch (and newer ONNX) drop a last window that starts in the end padding
            if ceil_mode and all(0 <= t - d <= 1 for t, d in zip(targets, declared[2:])):
                targets = tuple(declared[2:])
            else:
                raise self.err(f"output size computed as {list(targets)} but the graph declares "
                               f"{list(declared[2:])} for '{node.output[0]}'", f"{where}.pads")
        if any(t < 1 for t in targets):
            raise self.err(f"window {list(kernel)} does not fit input {list(sizes)} with pads {list(pads)}",
                           f"{where}.pads")
        fit = _fit_spatial(sizes, kernel, strides, dil, totals, targets, natural)
        if fit is None:
            raise self.err(f"no symmetric padding gives output {list(targets)} for input {list(sizes)}, "
                           f"kernel {list(kernel)}, strides {list(strides)}, pads {list(pads)}", f"{where}.pads")
        axes, rounding = fit
        asym = [i for i in range(nsp) if pads[i] != pads[i + nsp]]
        grown = [i for i, ax in enumerate(axes) if ax.in_size != sizes[i]]
        if asym or grown:
            label = node.name or node.op_type
            msg = (f"{label}: pads {list(pads)}" + (f" (auto_pad {auto})" if auto != "NOTSET" else "")
                   + f" modelled as symmetric pad {[ax.pad for ax in axes]}")
            if grown:
                msg += f" on input {[ax.in_size for ax in axes]} instead of {list(sizes)}"
            msg += " (same output size and MACs)"
            self.result.notes.append(msg)
        return targets, axes, rounding

    def gemm(self, node: Any, lname: str, where: str) -> None:
        if len(node.input) < 2:
            raise self.err("Gemm needs inputs A and B", where)
        a_name, b_name = node.input[0], node.input[1]
        a = self.g.shape(a_name, where, "input A")
        b = self.g.shape(b_name, where, "input B")
        at = _attrs(self.onnx, node)
        if len(a) != 2 or len(b) != 2:
            raise self.err(f"Gemm needs 2-D A and B, got {list(a)} and {list(b)}", where)
        m_, k_ = (a[1], a[0]) if at.get("transA") else (a[0], a[1])
        k2, n_ = (b[1], b[0]) if at.get("transB") else (b[0], b[1])
        if k_ != k2:
            raise self.err(f"A {list(a)} and B {list(b)} do not multiply (transA={at.get('transA', 0)}, "
                           f"transB={at.get('transB', 0)})", where)
        self.check_out(node, where, (m_, n_))
        self.product(node, lname, where, a_name, b_name, (), (), m_, k_, n_)

    def matmul(self, node: Any, lname: str, where: str) -> None:
        ai, bi = MATMUL_OPS[node.op_type]
        if len(node.input) <= bi:
            raise self.err(f"{node.op_type} needs inputs A and B", where)
        a_name, b_name = node.input[ai], node.input[bi]
        a = self.g.shape(a_name, where, "input A")
        b = self.g.shape(b_name, where, "input B")
        if not a or not b:
            raise self.err(f"MatMul of a scalar ({list(a)} x {list(b)})", where)
        a2 = (1, *a) if len(a) == 1 else a
        b2 = (*b, 1) if len(b) == 1 else b
        m_, k_ = a2[-2], a2[-1]
        k2, n_ = b2[-2], b2[-1]
        if k_ != k2:
            raise self.err(f"A {list(a)} and B {list(b)} do not multiply", where)
        la, lb = a2[:-2], b2[:-2]
        width = max(len(la), len(lb))
        la_p, lb_p = (1,) * (width - len(la)) + la, (1,) * (width - len(lb)) + lb
        lead = []
        for x, y in zip(la_p, lb_p):
            if x != y and 1 not in (x, y):
                raise self.err(f"batch dims of A {list(a)} and B {list(b)} do not broadcast", where)
            lead.append(max(x, y))
        out = (*lead, *([m_] if len(a) > 1 else []), *([n_] if len(b) > 1 else []))
        self.check_out(node, where, tuple(out))
        self.product(node, lname, where, a_name, b_name, tuple(la_p), tuple(lb_p), m_, k_, n_, tuple(lead))

    def product(self, node: Any, lname: str, where: str, a_name: str, b_name: str, la: Shape, lb: Shape,
                m_: int, k_: int, n_: int, lead: Shape = ()) -> None:
        """One GEMM-like node: ``[lead..., m x k] @ [lead..., k x n]``."""
        a_const, b_const = a_name in self.g.const, b_name in self.g.const
        comp = self.quant(a_name, b_name)
        if a_const and not b_const:
            # W X = (X^T W^T)^T: the activation rows are B's columns, the weight is A
            la, lb, m_, n_ = lb, la, n_, m_
            comp = self.quant(b_name, a_name)
        if a_const or b_const:
            heads = math.prod(lb) if lb else 1
            if heads == 1:
                batch = lead[0] if lead else m_
                tokens = (math.prod(lead[1:]) * m_) if lead else 1
                layer = self.add(Linear, where, name=lname, batch=batch, tokens=tokens, in_features=k_,
                                 out_features=n_, compression=comp)
            else:
                layer = self.add(Matmul, where, name=lname, batch=math.prod(lead) // heads, heads=heads, m=m_,
                                 k=k_, n=n_, b_operand="weight", compression=comp)
        else:
            batch = lead[0] if lead else 1
            heads = math.prod(lead[1:]) if len(lead) > 1 else 1
            layer = self.add(Matmul, where, name=lname, batch=batch, heads=heads, m=m_, k=k_, n=n_,
                             b_operand="activation", compression=comp)
        self.produced(node, layer.name)

    def rnn(self, node: Any, lname: str, where: str) -> None:
        x = self.g.shape(node.input[0], where, "input X")
        a = _attrs(self.onnx, node)
        if len(x) != 3:
            raise self.err(f"{node.op_type} input must be 3-D, got {list(x)}", where)
        seq, batch, feat = (x[1], x[0], x[2]) if a.get("layout", 0) == 1 else x
        hidden = a.get("hidden_size")
        if not hidden:
            w = self.g.shape(node.input[1], where, "weight W")
            hidden = w[1] // (4 if node.op_type == "LSTM" else 3)
        direction = _as_str(a.get("direction") or "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise self.err(f"unknown direction {direction!r}", f"{where}.direction")
        dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        for d in dirs:
            name = self.unique(f"{lname}_reverse") if d == "reverse" and len(dirs) == 2 else lname
            layer = self.add(Recurrent, where, name=name, op=node.op_type.lower(), batch=batch, input_size=feat,
                             hidden_size=int(hidden), seq_len=seq)
            self.produced(node, layer.name)

    # --- memory-bound nodes -------------------------------------------------------------------
    def pool(self, node: Any, lname: str, where: str) -> None:
        x = self.g.shape(node.input[0], where, "input")
        if len(x) not in (3, 4):
            raise self.err(f"only 1-D and 2-D pooling is supported (input {list(x)})", where)
        n, c, sizes = x[0], x[1], x[2:]
        mode = "max" if "Max" in node.op_type else "avg"
        if node.op_type.startswith("Global"):
            self.check_out(node, where, (n, c, *(1,) * len(sizes)))
            in_h, in_w = (1, sizes[0]) if len(sizes) == 1 else sizes
            layer = self.add(Pool, where, name=lname, batch=n, channels=c, in_h=in_h, in_w=in_w, mode=mode,
                             global_pool=True)
            self.produced(node, layer.name)
            return
        a = _attrs(self.onnx, node)
        kernel = tuple(a.get("kernel_shape") or ())
        if len(kernel) != len(sizes):
            raise self.err(f"kernel_shape {list(kernel)} does not fit input {list(x)}", f"{where}.kernel_shape")
        dil = tuple(a.get("dilations") or (1,) * len(sizes))
        if any(d != 1 for d in dil):
            raise self.err(f"pooling with dilations {list(dil)} is not supported (the pool layer has no dilation)",
                           f"{where}.dilations")
        strides = tuple(a.get("strides") or (1,) * len(sizes))
        targets, axes, rounding = self.fit(node, where, a, sizes, kernel, strides, dil, bool(a.get("ceil_mode", 0)))
        self.check_out(node, where, (n, c, *targets))
        if len(sizes) == 1:
            axes = [_Axis(1, 0), *axes]
            kernel, strides = (1, *kernel), (1, *strides)
        layer = self.add(Pool, where, name=lname, batch=n, channels=c, in_h=axes[0].in_size, in_w=axes[1].in_size,
                         kernel_h=kernel[0], kernel_w=kernel[1], stride_h=strides[0], stride_w=strides[1],
                         pad_h=axes[0].pad, pad_w=axes[1].pad, mode=mode, out_rounding=rounding)
        self.produced(node, layer.name)

    def elementwise(self, node: Any, lname: str, where: str) -> None:
        op = node.op_type
        acts = [t for t in node.input if t and t not in self.g.const]
        if not acts:  # constant folding left over: no run-time work
            self.result.skipped.append((lname, op))
            return
        if op not in NEVER_FUSED and self.fuse and len(set(acts)) == 1 and acts[0] in self.layer_of_tensor:
            target = self.layer_of_tensor[acts[0]]
            self.result.fused[lname] = target
            self.fused_ops[op] += 1
            self.produced(node, target)
            return
        if not node.output or not node.output[0]:
            raise self.err(f"{op} has no output", where)
        out = self.g.shape(node.output[0], where, "output")
        elements = _numel(out)
        full = sum(1 for t in acts if (s := self.g.maybe_shape(t)) is not None and _numel(s) == elements)
        batch = out[0] if len(out) >= 2 else 1
        ops = ELEMENTWISE_OPS.get(op, 1)
        if op == "LRN":
            ops = int(_attrs(self.onnx, node).get("size") or 1)
        layer = self.add(Elementwise, where, name=lname, batch=batch, elements=max(elements // batch, 1),
                         num_inputs=max(full, 1), ops_per_element=ops)
        self.produced(node, layer.name)


def _check_text(g: Any, source: str) -> None:
    """Refuse names protobuf could not decode: a string field that is not valid UTF-8 (a damaged
    file) comes back as ``bytes`` or raises ``UnicodeDecodeError`` when read, which would fail
    later as an internal error."""
    def check(where: str, values: Any) -> None:
        try:
            if any(isinstance(v, bytes) for v in values()):
                raise UnicodeError
        except UnicodeError:  # UnicodeDecodeError included
            raise ConfigError(f"{where} is not valid UTF-8 text (damaged ONNX file?)", source=source) from None

    for i, node in enumerate(g.node):
        check(f"graph.node[{i}] (name, op_type, domain, inputs or outputs)",
              lambda n=node: [n.name, n.op_type, n.domain, *n.input, *n.output])
    for key in ("initializer", "input", "output", "value_info"):
        for j, item in enumerate(getattr(g, key)):
            check(f"graph.{key}[{j}].name", lambda t=item: [t.name])


def read_onnx(path: str | Path, *, input_shapes: dict[str, Shape] | None = None, fuse_activations: bool = True,
              name: str | None = None) -> OnnxImport:
    """Read an ONNX model file; see the module docstring for what becomes which layer."""
    p = Path(path)
    source = str(p)
    onnx = _require_onnx(source)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected an ONNX file", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file ({exc.__class__.__name__}: {exc})", source=source) from None
    if not data:
        raise ConfigError("empty file, not an ONNX model", source=source)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ConfigError(f"not a readable ONNX model (truncated or not ONNX: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'parse error'})", source=source) from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ConfigError("not an ONNX model (no ir_version or no graph)", source=source)
    if not model.opset_import:
        raise ConfigError("ONNX model without opset_import (truncated file?)", source=source)
    _check_text(model.graph, source)
    reader = _Reader(onnx, model, source, input_shapes, fuse_activations)
    return reader.run(name or p.stem, model.graph.name or p.stem)


def load_onnx(path: str | Path, *, input_shapes: dict[str, Shape] | None = None, fuse_activations: bool = True,
              name: str | None = None) -> Workload:
    """The workload of an ONNX model file (Conv/Gemm/MatMul/LSTM/GRU, pools, element-wise ops).

    What was fused, skipped or approximated is written into the workload's ``description``;
    :func:`read_onnx` returns it as lists too.
    """
    return read_onnx(path, input_shapes=input_shapes, fuse_activations=fuse_activations, name=name).workload


__all__ = ["OnnxImport", "load_onnx", "read_onnx", "is_onnx_file", "torch_module_name", "INSTALL_HINT"]
