"""Standard networks as :class:`~accelsim.workload.Workload` s (the model zoo).

Every builder returns the *inference* layer sequence of one network in execution order, with
layer names following the PyTorch reference implementation (torchvision for CNNs, HuggingFace
``BertModel`` for BERT, NVIDIA DeepLearningExamples for GNMT v2), so a PyTorch front-end can map
its modules onto these layers by name.

Conventions shared by all builders:

- Batch normalisation is folded into the preceding convolution (inference); ReLU / ReLU6 are fused
  into the producing layer and not listed. Biases are not modelled (the IR counts weight words
  of the GEMM ``B`` operand only), so ``Workload.total_weight_words`` is the published parameter
  count minus biases and BN parameters (1.0 % for MobileNetV2, < 0.6 % for the other CNNs).
- Memory-bound layers are listed explicitly: max/avg pooling (:class:`Pool`), residual adds
  (:class:`Elementwise`, 2 inputs) and, for the transformer, softmax / LayerNorm / GELU.
- MAC counts are dense (compression is applied later by the engines) and count only GEMM work
  (conv, linear, matmul, recurrent); that is what the published "multiply-adds" / torchvision
  "GFLOPS" columns count.

Published figures quoted in the docstrings come from the papers and from the torchvision model
documentation (https://pytorch.org/vision/stable/models.html, columns ``num_params`` and
``GFLOPS``; the latter are in fact giga multiply-accumulates at 224x224).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from pydantic import ValidationError

from ..errors import ConfigError
from .layer import Conv2d, Elementwise, LayerBase, Linear, Matmul, Pool, Recurrent
from .workload import Workload

__all__ = [
    "resnet18", "resnet50", "mobilenet_v2", "vgg16", "alexnet", "bert_base", "gnmt", "tiny_cnn",
    "ZOO", "PUBLISHED", "get_model", "model_names",
]


# --- helpers ---------------------------------------------------------------------------------

def _check_int(model: str, field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", source=f"zoo.{model}", field=field)
    return value


def _make(model: str, cls: type[LayerBase], **fields: Any) -> LayerBase:
    """Build one layer; shape errors become a ConfigError naming the model and layer."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        msg = exc.errors()[0].get("msg", "invalid layer").removeprefix("Value error, ")
        raise ConfigError(f"{msg} (input size too small for this network?)", source=f"zoo.{model}",
                          field=str(fields.get("name", "?"))) from None


class _FeatureMap:
    """Builds a CNN layer by layer while tracking the current feature map (C, H, W)."""

    def __init__(self, model: str, batch: int, channels: int, height: int, width: int):
        self.model = model
        self.batch = batch
        self.c, self.h, self.w = channels, height, width
        self.layers: list[LayerBase] = []

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.c, self.h, self.w

    def conv(self, name: str, out_channels: int, kernel: int, stride: int = 1, padding: int = 0,
             groups: int = 1, src: tuple[int, int, int] | None = None) -> Conv2d:
        """Conv on the current map (or on ``src`` for a shortcut); the output becomes current."""
        c, h, w = src if src is not None else self.shape
        layer = _make(self.model, Conv2d, name=name, batch=self.batch, in_channels=c, out_channels=out_channels,
                      in_h=h, in_w=w, kernel=kernel, stride=stride, padding=padding, groups=groups)
        assert isinstance(layer, Conv2d)
        self.layers.append(layer)
        self.c, self.h, self.w = out_channels, layer.out_h, layer.out_w
        return layer

    def pool(self, name: str, kernel: int = 1, stride: int = 1, padding: int = 0, mode: str = "max",
             global_pool: bool = False) -> Pool:
        layer = _make(self.model, Pool, name=name, batch=self.batch, channels=self.c, in_h=self.h, in_w=self.w,
                      kernel=kernel, stride=stride, padding=padding, mode=mode, global_pool=global_pool)
        assert isinstance(layer, Pool)
        self.layers.append(layer)
        self.h, self.w = layer.out_h, layer.out_w
        return layer

    def adaptive_avg_pool(self, name: str, target: int) -> None:
        """``nn.AdaptiveAvgPool2d(target)``: identity when the map is already target x target
        (left out), a uniform avg pool when the map is a multiple of it, else an error (PyTorch
        would use unequal windows, which :class:`Pool` cannot describe)."""
        if self.h == target and self.w == target:
            return
        if self.h % target or self.w % target:
            raise ConfigError(
                f"the final feature map is {self.h}x{self.w}; AdaptiveAvgPool2d({target}) is only modelled for "
                f"multiples of {target} (use resolution 224 or one giving such a map)",
                source=f"zoo.{self.model}", field="resolution")
        kh, kw = self.h // target, self.w // target
        layer = _make(self.model, Pool, name=name, batch=self.batch, channels=self.c, in_h=self.h, in_w=self.w,
                      kernel=[kh, kw], stride=[kh, kw], mode="avg")
        self.layers.append(layer)
        self.h, self.w = target, target

    def add(self, name: str) -> Elementwise:
        """Residual add of two maps of the current shape."""
        layer = _make(self.model, Elementwise, name=name, batch=self.batch, elements=self.c * self.h * self.w,
                      num_inputs=2)
        assert isinstance(layer, Elementwise)
        self.layers.append(layer)
        return layer

    def linear(self, name: str, out_features: int) -> Linear:
        """Fully connected layer on the flattened current map."""
        layer = _make(self.model, Linear, name=name, batch=self.batch, in_features=self.c * self.h * self.w,
                      out_features=out_features)
        assert isinstance(layer, Linear)
        self.layers.append(layer)
        self.c, self.h, self.w = out_features, 1, 1
        return layer


def _workload(name: str, layers: list[LayerBase], description: str, source: str) -> Workload:
    return Workload(name=name, layers=layers, description=description, source=source)


# --- ResNet ----------------------------------------------------------------------------------

def _resnet(model: str, block: str, blocks: tuple[int, int, int, int], batch: int, resolution: int,
            num_classes: int, description: str, source: str) -> Workload:
    batch = _check_int(model, "batch", batch)
    resolution = _check_int(model, "resolution", resolution)
    num_classes = _check_int(model, "num_classes", num_classes)
    fm = _FeatureMap(model, batch, 3, resolution, resolution)
    fm.conv("conv1", 64, kernel=7, stride=2, padding=3)
    fm.pool("maxpool", kernel=3, stride=2, padding=1)
    expansion = 4 if block == "bottleneck" else 1
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for i in range(count):
            stride = 2 if (stage > 1 and i == 0) else 1
            p = f"layer{stage}.{i}"
            block_in = fm.shape
            out = planes * expansion
            if block == "bottleneck":  # torchvision v1.5: stride on the 3x3 conv
                fm.conv(f"{p}.conv1", planes, kernel=1)
                fm.conv(f"{p}.conv2", planes, kernel=3, stride=stride, padding=1)
                fm.conv(f"{p}.conv3", out, kernel=1)
            else:
                fm.conv(f"{p}.conv1", planes, kernel=3, stride=stride, padding=1)
                fm.conv(f"{p}.conv2", planes, kernel=3, padding=1)
            if stride != 1 or block_in[0] != out:
                fm.conv(f"{p}.downsample.0", out, kernel=1, stride=stride, src=block_in)
            fm.add(f"{p}.add")
    fm.pool("avgpool", mode="avg", global_pool=True)
    fm.linear("fc", num_classes)
    return _workload(model, fm.layers, description.format(batch=batch, res=resolution), source)


def resnet18(batch: int = 1, resolution: int = 224, num_classes: int = 1000) -> Workload:
    """ResNet-18 (torchvision ``resnet18``), input ``batch x 3 x resolution x resolution``.

    Source: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv 1512.03385), Table 1: 1.8e9 FLOPs (multiply-adds) at 224x224. torchvision docs
    (ResNet18_Weights.IMAGENET1K_V1): num_params 11,689,512, GFLOPS 1.81.

    Layers: conv1 7x7/2, maxpool 3x3/2, 4 stages of 2 BasicBlocks (``layerS.B.conv1``,
    ``.conv2``, ``.downsample.0`` 1x1 shortcut conv where the shape changes, ``.add`` residual
    add), global ``avgpool``, ``fc``. At 224x224: 1,814,073,344 MACs, 11,678,912 weight words
    (= 11,689,512 params - 9,600 BN - 1,000 fc bias).
    """
    return _resnet("resnet18", "basic", (2, 2, 2, 2), batch, resolution, num_classes,
                   "ResNet-18 (torchvision), batch {batch}, {res}x{res} input",
                   "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv 1512.03385); torchvision resnet18")


def resnet50(batch: int = 1, resolution: int = 224, num_classes: int = 1000) -> Workload:
    """ResNet-50 v1.5 (torchvision ``resnet50``: stride 2 on the 3x3 conv of each bottleneck).

    Source: He et al., CVPR 2016 (arXiv 1512.03385), Table 1: 3.8e9 multiply-adds for the
    original v1 (stride on the first 1x1 conv). torchvision docs (ResNet50_Weights): num_params
    25,557,032, GFLOPS 4.09 — the v1.5 variant built here.

    Layers: conv1, maxpool, 4 stages of [3, 4, 6, 3] Bottlenecks (``layerS.B.conv1`` 1x1,
    ``.conv2`` 3x3, ``.conv3`` 1x1, ``.downsample.0``, ``.add``), ``avgpool``, ``fc``.
    At 224x224: 4,089,184,256 MACs, 25,502,912 weight words (= 25,557,032 - 53,120 BN - 1,000
    fc bias).
    """
    return _resnet("resnet50", "bottleneck", (3, 4, 6, 3), batch, resolution, num_classes,
                   "ResNet-50 v1.5 (torchvision), batch {batch}, {res}x{res} input",
                   "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv 1512.03385); torchvision resnet50 (v1.5)")


# --- MobileNetV2 -----------------------------------------------------------------------------

def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision ``_make_divisible``: round to a multiple of 8, never more than 10 % down."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v2(batch: int = 1, resolution: int = 224, width_mult: float = 1.0, num_classes: int = 1000) -> Workload:
    """MobileNetV2 (torchvision ``mobilenet_v2``), inverted residuals with linear bottlenecks.

    Source: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks", CVPR 2018 (arXiv 1801.04381), Table 4: 300M multiply-adds, 3.4M parameters
    (width 1.0, 224x224). torchvision docs: num_params 3,504,872, GFLOPS 0.30.

    Layers: ``features.0.0`` 3x3/2 stem conv; blocks ``features.1`` .. ``features.17`` with
    ``conv.0.0`` 1x1 expansion (absent when t = 1), depthwise 3x3 (``groups == channels``;
    ``conv.1.0``, or ``conv.0.0`` when t = 1), linear 1x1 projection (``conv.2`` / ``conv.1``)
    and ``features.N.add`` when stride 1 and in == out channels; ``features.18.0`` 1x1 to 1280;
    global ``avgpool``; ``classifier.1``. At 224x224, width 1.0: 300,774,272 MACs, 3,469,760
    weight words (= 3,504,872 - 34,112 BN - 1,000 classifier bias).
    """
    model = "mobilenet_v2"
    batch = _check_int(model, "batch", batch)
    resolution = _check_int(model, "resolution", resolution)
    num_classes = _check_int(model, "num_classes", num_classes)
    if not isinstance(width_mult, (int, float)) or isinstance(width_mult, bool) or width_mult <= 0:
        raise ConfigError(f"expected a positive number, got {width_mult!r}", source=f"zoo.{model}", field="width_mult")
    # (expansion t, output channels c, repeats n, first stride s) — paper Table 2
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    fm = _FeatureMap(model, batch, 3, resolution, resolution)
    fm.conv("features.0.0", _make_divisible(32 * width_mult), kernel=3, stride=2, padding=1)
    idx = 1
    for t, c, n, s in settings:
        out = _make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{idx}.conv"
            cin = fm.c
            hidden = int(round(cin * t))
            sub = 0
            if t != 1:
                fm.conv(f"{p}.0.0", hidden, kernel=1)
                sub = 1
            fm.conv(f"{p}.{sub}.0", hidden, kernel=3, stride=stride, padding=1, groups=hidden)
            fm.conv(f"{p}.{sub + 1}", out, kernel=1)
            if stride == 1 and cin == out:
                fm.add(f"features.{idx}.add")
            idx += 1
    fm.conv(f"features.{idx}.0", _make_divisible(1280 * max(1.0, width_mult)), kernel=1)
    fm.pool("avgpool", mode="avg", global_pool=True)
    fm.linear("classifier.1", num_classes)
    return _workload(model, fm.layers, f"MobileNetV2 (torchvision), width {width_mult:g}, batch {batch}, "
                     f"{resolution}x{resolution} input",
                     "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018 (arXiv 1801.04381); torchvision mobilenet_v2")


# --- VGG-16 / AlexNet ------------------------------------------------------------------------

def vgg16(batch: int = 1, resolution: int = 224, num_classes: int = 1000) -> Workload:
    """VGG-16 (configuration D; torchvision ``vgg16``, no batch norm).

    Source: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015 (arXiv 1409.1556), Table 2: 138M parameters. torchvision docs:
    num_params 138,357,544, GFLOPS 15.47.

    Layers: 13 3x3 convs (pad 1) named by their ``features.N`` index (0, 2, 5, 7, 10, 12, 14, 17,
    19, 21, 24, 26, 28), 2x2/2 max pools ``features.4/9/16/23/30``, ``avgpool`` (AdaptiveAvgPool
    7x7: identity at 224 and left out), ``classifier.0`` (25088 -> 4096), ``classifier.3``,
    ``classifier.6``. At 224x224: 15,470,264,320 MACs, 138,344,128 weight words
    (= 138,357,544 - 13,416 biases).
    """
    model = "vgg16"
    batch = _check_int(model, "batch", batch)
    resolution = _check_int(model, "resolution", resolution)
    num_classes = _check_int(model, "num_classes", num_classes)
    cfg: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    fm = _FeatureMap(model, batch, 3, resolution, resolution)
    idx = 0
    for v in cfg:
        if v == "M":
            fm.pool(f"features.{idx}", kernel=2, stride=2)
            idx += 1
        else:
            assert isinstance(v, int)
            fm.conv(f"features.{idx}", v, kernel=3, padding=1)
            idx += 2  # conv, ReLU
    fm.adaptive_avg_pool("avgpool", 7)
    fm.linear("classifier.0", 4096)
    fm.linear("classifier.3", 4096)
    fm.linear("classifier.6", num_classes)
    return _workload(model, fm.layers, f"VGG-16 (torchvision), batch {batch}, {resolution}x{resolution} input",
                     "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015 (arXiv 1409.1556); torchvision vgg16")


def alexnet(batch: int = 1, resolution: int = 224, num_classes: int = 1000) -> Workload:
    """AlexNet, torchvision single-tower variant (64-192-384-256-256 filters, no LRN, no groups).

    Source: Krizhevsky, "One weird trick for parallelizing convolutional neural networks",
    arXiv 1404.5997 (the variant torchvision implements); torchvision docs: num_params
    61,100,840, GFLOPS 0.71. The original two-GPU AlexNet (Krizhevsky, Sutskever, Hinton,
    NIPS 2012; 96-256-384-384-256, grouped convs, 227x227) has ~0.72 GMACs and 61M parameters;
    it is *not* what this builder returns.

    Layers: ``features.0`` conv 11x11/4 pad 2, ``features.2`` max pool 3x3/2, ``features.3``
    conv 5x5 pad 2, ``features.5`` pool, ``features.6/8/10`` 3x3 convs, ``features.12`` pool,
    ``avgpool`` (AdaptiveAvgPool 6x6; identity at 224, left out), ``classifier.1`` (9216 ->
    4096), ``classifier.4``, ``classifier.6``. At 224x224: 714,188,480 MACs, 61,090,496 weight
    words (= 61,100,840 - 10,344 biases).
    """
    model = "alexnet"
    batch = _check_int(model, "batch", batch)
    resolution = _check_int(model, "resolution", resolution)
    num_classes = _check_int(model, "num_classes", num_classes)
    fm = _FeatureMap(model, batch, 3, resolution, resolution)
    fm.conv("features.0", 64, kernel=11, stride=4, padding=2)
    fm.pool("features.2", kernel=3, stride=2)
    fm.conv("features.3", 192, kernel=5, padding=2)
    fm.pool("features.5", kernel=3, stride=2)
    fm.conv("features.6", 384, kernel=3, padding=1)
    fm.conv("features.8", 256, kernel=3, padding=1)
    fm.conv("features.10", 256, kernel=3, padding=1)
    fm.pool("features.12", kernel=3, stride=2)
    fm.adaptive_avg_pool("avgpool", 6)
    fm.linear("classifier.1", 4096)
    fm.linear("classifier.4", 4096)
    fm.linear("classifier.6", num_classes)
    return _workload(model, fm.layers, f"AlexNet (torchvision one-weird-trick variant), batch {batch}, "
                     f"{resolution}x{resolution} input",
                     "Krizhevsky, One weird trick for parallelizing convolutional neural networks, arXiv 1404.5997; torchvision alexnet")


# --- tiny CNN --------------------------------------------------------------------------------

def tiny_cnn(batch: int = 1, resolution: int = 8, num_classes: int = 10) -> Workload:
    """A small CNN for 8x8x1 images such as scikit-learn's ``load_digits`` (10 classes).

    Source: accelsim's own reference network (no paper); input data: scikit-learn digits
    (UCI optical recognition of handwritten digits, 1,797 8x8 images). Exact PyTorch module the
    front-end trains (layer names are its attribute names)::

        class TinyCNN(nn.Module):
            def __init__(self, num_classes=10, resolution=8):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)   # + ReLU
                self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)  # + ReLU
                self.pool = nn.MaxPool2d(2)                               # 8x8 -> 4x4
                self.fc = nn.Linear(32 * (resolution // 2) ** 2, num_classes)

            def forward(self, x):                    # x: N x 1 x 8 x 8
                x = F.relu(self.conv1(x))
                x = F.relu(self.conv2(x))
                x = self.pool(x).flatten(1)
                return self.fc(x)

    At 8x8: conv1 9,216 + conv2 294,912 + fc 5,120 = 309,248 MACs; 144 + 4,608 + 5,120 = 9,872
    weight words (9,930 parameters with the 58 biases).
    """
    model = "tiny_cnn"
    batch = _check_int(model, "batch", batch)
    resolution = _check_int(model, "resolution", resolution, minimum=2)
    num_classes = _check_int(model, "num_classes", num_classes)
    fm = _FeatureMap(model, batch, 1, resolution, resolution)
    fm.conv("conv1", 16, kernel=3, padding=1)
    fm.conv("conv2", 32, kernel=3, padding=1)
    fm.pool("pool", kernel=2, stride=2)
    fm.linear("fc", num_classes)
    return _workload(model, fm.layers, f"Tiny CNN for 8x8 digits, batch {batch}, {resolution}x{resolution}x1 input",
                     "accelsim reference network for scikit-learn load_digits (8x8x1, 10 classes)")


# --- BERT-base -------------------------------------------------------------------------------

def bert_base(batch: int = 1, seq_len: int = 128, num_layers: int = 12, hidden: int = 768, heads: int = 12,
              intermediate: int = 3072) -> Workload:
    """BERT-base encoder layer stack (HuggingFace ``BertModel.encoder`` naming).

    Source: Devlin, Chang, Lee, Toutanova, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", NAACL 2019 (arXiv 1810.04805): L = 12, H = 768,
    A = 12, 110M parameters in total (including ~23.8M embedding and 0.6M pooler parameters,
    which are not part of this stack). No MAC count is published in the paper; the ~11.2 GMACs
    for sequence 128 below is derived (it matches the commonly quoted ~1.86 GFLOP = 0.93 GMAC
    per encoder block at 128 tokens).

    Per layer ``encoder.layer.i``: ``attention.self.query/key/value`` (Linear 768->768, tokens =
    seq), ``attention.self.scores`` (Matmul Q K^T: m = seq, k = 64, n = seq, heads 12,
    activation x activation), ``attention.self.softmax`` (Elementwise, incl. the 1/sqrt(d)
    scale and mask add), ``attention.self.context`` (Matmul P V: m = seq, k = seq, n = 64),
    ``attention.output.dense``, ``attention.output.add`` (residual), ``attention.output.LayerNorm``,
    ``intermediate.dense`` (768->3072), ``intermediate.intermediate_act_fn`` (GELU),
    ``output.dense`` (3072->768), ``output.add``, ``output.LayerNorm``.

    MACs counted (GEMM work only; embeddings, pooler and classifier heads excluded), per layer
    at seq s = 128: projections 4*s*768*768 = 301,989,888; scores + context
    2*12*s*s*64 = 25,165,824; FFN 2*s*768*3072 = 603,979,776; total 931,135,488; x 12 layers
    = 11,173,625,856 MACs. Weight words: 12 * (4*768^2 + 2*768*3072) = 84,934,656 (the
    encoder has 85,054,464 parameters with biases and LayerNorm).
    """
    model = "bert_base"
    batch = _check_int(model, "batch", batch)
    s = _check_int(model, "seq_len", seq_len)
    num_layers = _check_int(model, "num_layers", num_layers)
    h = _check_int(model, "hidden", hidden)
    a = _check_int(model, "heads", heads)
    ff = _check_int(model, "intermediate", intermediate)
    if h % a:
        raise ConfigError(f"hidden {h} is not divisible by heads {a}", source=f"zoo.{model}", field="heads")
    d = h // a
    layers: list[LayerBase] = []

    def add(cls: type[LayerBase], **fields: Any) -> None:
        layers.append(_make(model, cls, batch=batch, **fields))

    for i in range(num_layers):
        p = f"encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            add(Linear, name=f"{p}.attention.self.{proj}", in_features=h, out_features=h, tokens=s)
        add(Matmul, name=f"{p}.attention.self.scores", m=s, k=d, n=s, heads=a, b_operand="activation")
        add(Elementwise, name=f"{p}.attention.self.softmax", elements=a * s * s, num_inputs=1, ops_per_element=5)
        add(Matmul, name=f"{p}.attention.self.context", m=s, k=s, n=d, heads=a, b_operand="activation")
        add(Linear, name=f"{p}.attention.output.dense", in_features=h, out_features=h, tokens=s)
        add(Elementwise, name=f"{p}.attention.output.add", elements=s * h, num_inputs=2)
        add(Elementwise, name=f"{p}.attention.output.LayerNorm", elements=s * h, num_inputs=1, ops_per_element=5)
        add(Linear, name=f"{p}.intermediate.dense", in_features=h, out_features=ff, tokens=s)
        add(Elementwise, name=f"{p}.intermediate.intermediate_act_fn", elements=s * ff, num_inputs=1, ops_per_element=8)
        add(Linear, name=f"{p}.output.dense", in_features=ff, out_features=h, tokens=s)
        add(Elementwise, name=f"{p}.output.add", elements=s * h, num_inputs=2)
        add(Elementwise, name=f"{p}.output.LayerNorm", elements=s * h, num_inputs=1, ops_per_element=5)
    return _workload(model, layers, f"BERT-base encoder ({num_layers} layers, hidden {h}, {a} heads, FFN {ff}), "
                     f"batch {batch}, sequence {s}",
                     "Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding, NAACL 2019 (arXiv 1810.04805)")


# --- GNMT ------------------------------------------------------------------------------------

def gnmt(batch: int = 1, seq_len: int = 50, tgt_len: int | None = None, hidden: int = 1024, vocab: int = 32320,
         num_layers: int = 4) -> Workload:
    """GNMT v2 (NVIDIA DeepLearningExamples / MLPerf GNMT): 4+4 LSTM layers, hidden 1024.

    Sources: Wu et al., "Google's Neural Machine Translation System: Bridging the Gap between
    Human and Machine Translation", arXiv 1609.08144 (8+8 layers, first encoder layer
    bidirectional, residual connections, additive attention); the 4-layer "GNMT v2" variant
    modelled here is NVIDIA DeepLearningExamples ``PyTorch/Translation/GNMT`` (also the MLPerf
    reference): embedding 1024, encoder layer 0 bidirectional, layer 1 input 2048, residual
    adds from the 3rd layer; decoder layer 0 (``decoder.att_rnn.rnn``) feeds normalised Bahdanau
    attention whose context is concatenated to the inputs of all later decoder layers; shared
    32,320-token embedding; linear classifier to the vocabulary. No MAC count is published; the
    numbers below are derived from the architecture.

    The source sequence has ``seq_len`` tokens S, the target ``tgt_len`` tokens T (default S);
    the decoder is modelled teacher-forced (all T steps, one pass). Layers: ``encoder.rnn_layers.0``
    and ``encoder.rnn_layers.0_reverse`` (the two directions, :class:`Recurrent`),
    ``encoder.rnn_layers.1`` (2048 -> 1024), ``encoder.rnn_layers.2..3`` with ``.residual_add``;
    ``decoder.att_rnn.rnn``; attention ``decoder.att_rnn.attn.linear_q`` (Linear, T tokens),
    ``.linear_k`` (Linear, S tokens), ``.add_tanh`` (Elementwise over T*S*1024: q + k + bias,
    tanh), ``.linear_att`` (Linear 1024 -> 1 on T*S rows: the score vector), ``.softmax``,
    ``.bmm`` (Matmul context = P[T x S] @ keys[S x 1024], activation operand);
    ``decoder.rnn_layers.0..2`` (2048 -> 1024) with ``.residual_add`` from index 1;
    ``decoder.classifier.classifier`` (1024 -> vocab). Embedding lookups are not modelled.

    MACs = S*W_enc + T*(W_dec + W_q + W_cls) + S*W_k + 2*T*S*1024 (W = weight words of each
    part; LSTM W = 4*1024*(in + 1024)): at S = T = 50 this is 2,306,867,200 (encoder) +
    4,014,080,000 (decoder LSTMs, query projection, classifier) + 52,428,800 (key projection) +
    5,120,000 (scores and context) = 6,378,496,000 MACs. Weight words 127,468,544; adding the
    shared 33,095,680-word embedding and the biases gives 160,671,297 parameters, the count
    NVIDIA's GNMT v2 training script reports for this configuration.
    """
    model = "gnmt"
    batch = _check_int(model, "batch", batch)
    s = _check_int(model, "seq_len", seq_len)
    t = s if tgt_len is None else _check_int(model, "tgt_len", tgt_len)
    h = _check_int(model, "hidden", hidden)
    vocab = _check_int(model, "vocab", vocab)
    num_layers = _check_int(model, "num_layers", num_layers, minimum=2)
    layers: list[LayerBase] = []

    def add(cls: type[LayerBase], **fields: Any) -> None:
        layers.append(_make(model, cls, batch=batch, **fields))

    # encoder
    add(Recurrent, name="encoder.rnn_layers.0", op="lstm", input_size=h, hidden_size=h, seq_len=s)
    add(Recurrent, name="encoder.rnn_layers.0_reverse", op="lstm", input_size=h, hidden_size=h, seq_len=s)
    add(Recurrent, name="encoder.rnn_layers.1", op="lstm", input_size=2 * h, hidden_size=h, seq_len=s)
    for i in range(2, num_layers):
        add(Recurrent, name=f"encoder.rnn_layers.{i}", op="lstm", input_size=h, hidden_size=h, seq_len=s)
        add(Elementwise, name=f"encoder.rnn_layers.{i}.residual_add", elements=s * h, num_inputs=2)
    # decoder: first LSTM layer + attention
    att = "decoder.att_rnn.attn"
    add(Recurrent, name="decoder.att_rnn.rnn", op="lstm", input_size=h, hidden_size=h, seq_len=t)
    add(Linear, name=f"{att}.linear_q", in_features=h, out_features=h, tokens=t)
    add(Linear, name=f"{att}.linear_k", in_features=h, out_features=h, tokens=s)
    add(Elementwise, name=f"{att}.add_tanh", elements=t * s * h, num_inputs=2, ops_per_element=3)
    add(Linear, name=f"{att}.linear_att", in_features=h, out_features=1, tokens=t * s)
    add(Elementwise, name=f"{att}.softmax", elements=t * s, num_inputs=1, ops_per_element=4)
    add(Matmul, name=f"{att}.bmm", m=t, k=s, n=h, heads=1, b_operand="activation")
    for i in range(num_layers - 1):
        add(Recurrent, name=f"decoder.rnn_layers.{i}", op="lstm", input_size=2 * h, hidden_size=h, seq_len=t)
        if i >= 1:
            add(Elementwise, name=f"decoder.rnn_layers.{i}.residual_add", elements=t * h, num_inputs=2)
    add(Linear, name="decoder.classifier.classifier", in_features=h, out_features=vocab, tokens=t)
    return _workload(model, layers, f"GNMT v2 ({num_layers}+{num_layers} LSTM layers, hidden {h}, vocab {vocab}), "
                     f"batch {batch}, source {s} / target {t} tokens",
                     "Wu et al., Google's Neural Machine Translation System, arXiv 1609.08144; NVIDIA DeepLearningExamples GNMT v2 (MLPerf)")


# --- published reference figures --------------------------------------------------------------

PUBLISHED: dict[str, dict[str, str]] = {
    "resnet18": {"macs": "1.81 G (torchvision); 1.8 G (paper)", "params": "11.69 M",
                 "source": "He et al. CVPR 2016, arXiv 1512.03385; torchvision docs"},
    "resnet50": {"macs": "4.09 G (torchvision v1.5); 3.8 G (paper, v1)", "params": "25.56 M",
                 "source": "He et al. CVPR 2016, arXiv 1512.03385; torchvision docs"},
    "mobilenet_v2": {"macs": "0.30 G (300 M, paper Table 4)", "params": "3.4 M (paper); 3.50 M (torchvision)",
                     "source": "Sandler et al. CVPR 2018, arXiv 1801.04381; torchvision docs"},
    "vgg16": {"macs": "15.47 G (torchvision)", "params": "138 M (paper); 138.36 M (torchvision)",
              "source": "Simonyan & Zisserman ICLR 2015, arXiv 1409.1556; torchvision docs"},
    "alexnet": {"macs": "0.71 G (torchvision variant)", "params": "61.1 M",
                "source": "Krizhevsky arXiv 1404.5997 (torchvision variant); torchvision docs"},
    "bert_base": {"macs": "11.2 G (derived; ~0.93 G per layer at seq 128)", "params": "110 M total; 85.05 M encoder",
                  "source": "Devlin et al. NAACL 2019, arXiv 1810.04805"},
    "gnmt": {"macs": "none published (derived 6.38 G at 50/50 tokens)", "params": "160.67 M incl. shared embedding",
             "source": "Wu et al. arXiv 1609.08144; NVIDIA DeepLearningExamples GNMT v2"},
    "tiny_cnn": {"macs": "309,248 (by construction)", "params": "9,930 incl. biases",
                 "source": "accelsim reference net for scikit-learn digits"},
}
"""Published MAC / parameter figures per zoo model (strings for reports; tests hold the oracles)."""


# --- registry --------------------------------------------------------------------------------

ZOO: dict[str, Callable[..., Workload]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "vgg16": vgg16,
    "alexnet": alexnet,
    "bert_base": bert_base,
    "gnmt": gnmt,
    "tiny_cnn": tiny_cnn,
}


def model_names() -> list[str]:
    """Names accepted by :func:`get_model`."""
    return list(ZOO)


def get_model(name: str, **kwargs: Any) -> Workload:
    """Build zoo model ``name`` (e.g. ``get_model("resnet50", batch=8)``).

    Unknown names and unknown/invalid arguments raise :class:`~accelsim.errors.ConfigError`.
    """
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in ZOO:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(ZOO)}", source="model zoo", field="name")
    fn = ZOO[key]
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError:
        allowed = ", ".join(inspect.signature(fn).parameters)
        bad = ", ".join(sorted(set(kwargs) - set(inspect.signature(fn).parameters))) or "?"
        raise ConfigError(f"unknown argument(s) {bad} for model {key!r}; accepted: {allowed}",
                          source="model zoo", field=key) from None
    return fn(**kwargs)
