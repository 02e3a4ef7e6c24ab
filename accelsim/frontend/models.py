"""In-house PyTorch model zoo (no torchvision / transformers): the networks of
:mod:`accelsim.workload.zoo` as ``nn.Module`` s, with the same module names, so that
``export(model, example_input)`` of a dense model reproduces the hand-written workload.

Residual adds and attention products are tiny modules (:class:`Add`, :class:`MatMul`) so they get
the zoo's names (``layer1.0.add``, ``attention.self.scores``); the exporter also understands the
plain ``+`` / ``torch.matmul`` of user models (named ``<scope>.add`` / ``<scope>.matmul``).

- ``resnet18`` / ``resnet50`` (torchvision v1.5 layout), ``mobilenet_v2``, ``vgg16``: random init.
- ``bert_base``: the encoder stack (``encoder.layer.i``); input = hidden states ``B x S x 768``
  (embeddings are not modelled, as in the zoo).
- ``small_lstm``: 2-layer LSTM (input 32, hidden 64) + linear classifier; input ``B x S x 32``.
- ``tiny_cnn``: the 8x8 digits CNN of :func:`accelsim.workload.zoo.tiny_cnn`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ConfigError
from ._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


class Add(nn.Module):
    """Residual / element-wise add (exported as an ``Elementwise`` layer with 2 inputs)."""

    def forward(self, a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
        return a + b


class MatMul(nn.Module):
    """Activation x activation product (exported as a ``Matmul`` layer)."""

    def forward(self, a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
        return torch.matmul(a, b)


# --- ResNet --------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: "nn.Module | None" = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.add = Add()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(self.add(out, identity))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: "nn.Module | None" = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.add = Add()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(self.add(out, identity))


class ResNet(nn.Module):
    def __init__(self, block: type, layers: tuple[int, int, int, int], num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(block, 64, layers[0], 1)
        self.layer2 = self._make(block, 128, layers[1], 2)
        self.layer3 = self._make(block, 256, layers[2], 2)
        self.layer4 = self._make(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make(self, block: type, planes: int, blocks: int, stride: int) -> "nn.Sequential":
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000) -> "ResNet":
    """ResNet-18 (He et al., CVPR 2016, arXiv 1512.03385), torchvision layout and names."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def resnet50(num_classes: int = 1000) -> "ResNet":
    """ResNet-50 v1.5 (stride on the 3x3 conv), torchvision layout and names."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


# --- MobileNetV2 -----------------------------------------------------------------------------------

def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> "nn.Sequential":
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = int(round(cin * t))
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if t != 1:
            layers.append(_conv_bn_relu(cin, hidden, 1))
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        if self.use_res:
            self.add = Add()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.add(x, self.conv(x)) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al., CVPR 2018, arXiv 1801.04381), torchvision layout and names."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        cin = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        feats: list[nn.Module] = [_conv_bn_relu(3, cin, 3, 2)]
        for t, c, n, s in settings:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                feats.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        feats.append(_conv_bn_relu(cin, last, 1))
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- VGG-16 ---------------------------------------------------------------------------------------

class VGG16(nn.Module):
    """VGG-16 configuration D (Simonyan & Zisserman, ICLR 2015, arXiv 1409.1556), torchvision names."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        cfg: list[Any] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        layers: list[nn.Module] = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 49, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Dropout(), nn.Linear(4096, num_classes))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- BERT encoder ---------------------------------------------------------------------------------

class BertSelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.d = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.scores, self.context = MatMul(), MatMul()
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(0.1)

    def _split(self, x: "torch.Tensor") -> "torch.Tensor":
        return x.unflatten(-1, (self.heads, self.d)).transpose(1, 2)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        att = self.scores(q, k.transpose(-1, -2)) / math.sqrt(self.d)
        ctx = self.context(self.dropout(self.softmax(att)), v)
        return ctx.transpose(1, 2).flatten(2)


class BertOutputBlock(nn.Module):
    """``dense`` -> dropout -> ``add`` (residual) -> ``LayerNorm`` (HF BertSelfOutput / BertOutput)."""

    def __init__(self, cin: int, hidden: int):
        super().__init__()
        self.dense = nn.Linear(cin, hidden)
        self.dropout = nn.Dropout(0.1)
        self.add = Add()
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: "torch.Tensor", residual: "torch.Tensor") -> "torch.Tensor":
        return self.LayerNorm(self.add(self.dropout(self.dense(x)), residual))


class BertAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.self = BertSelfAttention(hidden, heads)
        self.output = BertOutputBlock(hidden, hidden)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    def __init__(self, hidden: int, ff: int):
        super().__init__()
        self.dense = nn.Linear(hidden, ff)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.intermediate_act_fn(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ff: int):
        super().__init__()
        self.attention = BertAttention(hidden, heads)
        self.intermediate = BertIntermediate(hidden, ff)
        self.output = BertOutputBlock(ff, hidden)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        a = self.attention(x)
        return self.output(self.intermediate(a), a)


class BertEncoderModel(nn.Module):
    """BERT-base encoder stack (Devlin et al., NAACL 2019, arXiv 1810.04805), HuggingFace names."""

    def __init__(self, num_layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([BertLayer(hidden, heads, intermediate) for _ in range(num_layers)])

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        for layer in self.encoder.layer:
            x = layer(x)
        return x


# --- small LSTM and tiny CNN -----------------------------------------------------------------------

class SmallLSTM(nn.Module):
    """2-layer LSTM over ``B x S x input_size`` + a classifier on the last step."""

    def __init__(self, input_size: int = 32, hidden: int = 64, num_layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class TinyCNN(nn.Module):
    """The 8x8 digits CNN of :func:`accelsim.workload.zoo.tiny_cnn`."""

    def __init__(self, num_classes: int = 10, resolution: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * (resolution // 2) ** 2, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def bert_base(num_layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072) -> BertEncoderModel:
    return BertEncoderModel(num_layers, hidden, heads, intermediate)


# name -> (builder, example-input factory(batch, **kw))
TORCH_ZOO: dict[str, tuple[Callable[..., "nn.Module"], Callable[..., "torch.Tensor"]]] = {
    "resnet18": (resnet18, lambda batch=1, resolution=224: torch.randn(batch, 3, resolution, resolution)),
    "resnet50": (resnet50, lambda batch=1, resolution=224: torch.randn(batch, 3, resolution, resolution)),
    "mobilenet_v2": (MobileNetV2, lambda batch=1, resolution=224: torch.randn(batch, 3, resolution, resolution)),
    "vgg16": (VGG16, lambda batch=1, resolution=224: torch.randn(batch, 3, resolution, resolution)),
    "bert_base": (bert_base, lambda batch=1, seq_len=128, hidden=768: torch.randn(batch, seq_len, hidden)),
    "small_lstm": (SmallLSTM, lambda batch=1, seq_len=16, input_size=32: torch.randn(batch, seq_len, input_size)),
    "tiny_cnn": (TinyCNN, lambda batch=1, resolution=8: torch.randn(batch, 1, resolution, resolution)),
}


def get_torch_model(name: str, seed: int = 0, **kwargs: Any) -> "nn.Module":
    """Build zoo model ``name`` with ``torch.manual_seed(seed)`` weights (eval mode)."""
    key = name.strip().lower().replace("-", "_")
    if key not in TORCH_ZOO:
        raise ConfigError(f"unknown torch model {name!r}; known: {', '.join(TORCH_ZOO)}", source="torch model zoo",
                          field="model")
    torch.manual_seed(seed)
    try:
        model = TORCH_ZOO[key][0](**kwargs)
    except TypeError as exc:
        raise ConfigError(str(exc), source="torch model zoo", field=key) from None
    return model.eval()


def example_input(name: str, batch: int = 1, seed: int = 0, **kwargs: Any) -> "torch.Tensor":
    """A seeded random example input of the right shape for zoo model ``name``."""
    key = name.strip().lower().replace("-", "_")
    if key not in TORCH_ZOO:
        raise ConfigError(f"unknown torch model {name!r}; known: {', '.join(TORCH_ZOO)}", source="torch model zoo",
                          field="model")
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        return TORCH_ZOO[key][1](batch=batch, **kwargs)


__all__ = ["Add", "MatMul", "ResNet", "MobileNetV2", "VGG16", "BertEncoderModel", "SmallLSTM", "TinyCNN",
           "resnet18", "resnet50", "bert_base", "TORCH_ZOO", "get_torch_model", "example_input"]
