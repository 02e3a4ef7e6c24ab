"""Small networks for the digits experiments.

- ``cnn``: the front-end's :class:`~accelsim.frontend.models.TinyCNN` (conv1 16, conv2 32, 2x2 max
  pool, fc; the workload zoo's ``tiny_cnn``). ``bn=True`` adds BatchNorm after each conv
  (:class:`TinyCNNBN`; Early-Bird tickets read channel masks from BN scales).
- ``mlp``: :class:`DigitsMLP`, 64 -> 128 -> 64 -> 10 with ReLU (BatchNorm1d after the hidden
  layers when ``bn=True``).
- ``resnet``: :class:`DigitsResNet`, the ResNet-18 layout (stem conv + BN, four stages of two
  basic blocks, widths 16/32/64/128, stride 2 and a 1x1 conv + BN downsample branch at the start
  of stages 2-4, global average pool, fc) at 8x8 resolution. Always has BatchNorm.
- ``transformer``: :class:`DigitsTransformer`, the 8x8 image as 8 row tokens of 8 pixels: linear
  embedding to ``dim`` + learned positions, pre-norm encoder layers (q/k/v/out projections,
  scaled dot-product attention written as ``q @ k^T`` / softmax / ``@ v``, an FFN ``fc1 -> GELU
  -> fc2`` with a learnable per-neuron :class:`ChannelScale` after ``fc1`` — the slimming
  coefficients Early-Bird reads, as EarlyBERT, Chen et al., ACL 2021, arXiv 2101.00063), mean
  pooling over tokens, LayerNorm and a linear classifier.
- ``lstm``: :class:`DigitsLSTM`, the image rows as an 8-step sequence through a 1-layer LSTM
  (hidden 64) and a classifier on the last hidden state.
"""
from __future__ import annotations

from ...errors import ConfigError
from .._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


class TinyCNNBN(nn.Module):
    """:class:`~accelsim.frontend.models.TinyCNN` with BatchNorm after conv1 and conv2."""

    def __init__(self, num_classes: int = 10, resolution: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * (resolution // 2) ** 2, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(self.pool(x).flatten(1))


class DigitsMLP(nn.Module):
    """``in -> hidden[0] -> hidden[1] -> classes`` with ReLU (optionally BatchNorm1d) in between."""

    def __init__(self, in_features: int = 64, hidden: tuple[int, int] = (128, 64), num_classes: int = 10,
                 bn: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)
        self.bn1 = nn.BatchNorm1d(hidden[0]) if bn else nn.Identity()
        self.bn2 = nn.BatchNorm1d(hidden[1]) if bn else nn.Identity()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = x.flatten(1)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.fc2(x)))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv + BN when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(out + idt)


class DigitsResNet(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks) for small images; ``widths`` per stage."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128),
                 blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for s, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for b in range(n):
                layers.append(BasicBlock(cin, w, 2 if (b == 0 and s > 0) else 1))
                cin = w
            self.add_module(f"layer{s + 1}", nn.Sequential(*layers))
        self.stages = len(widths)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ChannelScale(nn.Module):
    """A learnable per-channel scale on the last dimension (network-slimming coefficients)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return x * self.weight


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with hand-written multi-head attention."""

    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"dim {dim} is not a multiple of heads {heads}", source="training models", field="heads")
        self.heads, self.dim = heads, dim
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.scale1 = ChannelScale(ffn)
        self.fc2 = nn.Linear(ffn, dim)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        b, t, d = x.shape[0], x.shape[1], self.dim  # no tuple unpacking of a shape: fx-traceable
        h = self.norm1(x)
        hd = d // self.heads
        q = self.q(h).view(b, t, self.heads, hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.heads, hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.heads, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / hd ** 0.5, dim=-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.scale1(self.fc1(self.norm2(x)))))


class DigitsTransformer(nn.Module):
    """Image rows as tokens (``N x 1 x R x C`` -> ``N x R x C``) through a small encoder."""

    def __init__(self, num_classes: int = 10, rows: int = 8, cols: int = 8, dim: int = 32, heads: int = 4,
                 ffn: int = 64, depth: int = 2):
        super().__init__()
        self.embed = nn.Linear(cols, dim)
        self.pos = nn.Parameter(torch.zeros(1, rows, dim))
        self.blocks = nn.Sequential(*[EncoderLayer(dim, heads, ffn) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = self.embed(x.flatten(1, 2)) + self.pos  # N x 1 x R x C -> N x R x C -> N x R x dim
        x = self.blocks(x)
        return self.head(self.norm(x.mean(dim=1)))


class DigitsLSTM(nn.Module):
    """Image rows as a sequence (``N x 1 x R x C`` -> ``N x R x C``) through an LSTM; classifier on
    the last step's hidden state."""

    def __init__(self, num_classes: int = 10, cols: int = 8, hidden: int = 64, num_layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(cols, hidden, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        out, _ = self.lstm(x.flatten(1, 2))
        return self.fc(out[:, -1])


MODEL_KINDS = ("cnn", "mlp", "resnet", "transformer", "lstm")


def build_model(kind: str, bn: bool = False, seed: int = 0) -> "nn.Module":
    """``kind`` in :data:`MODEL_KINDS` with ``torch.manual_seed(seed)`` initial weights (train
    mode). ``bn`` applies to ``cnn`` / ``mlp``; the ResNet always has BatchNorm and the
    transformer its FFN scales."""
    torch.manual_seed(seed)
    if kind == "resnet":
        return DigitsResNet()
    if kind == "transformer":
        return DigitsTransformer()
    if kind == "lstm":
        return DigitsLSTM()
    if kind == "cnn":
        if bn:
            return TinyCNNBN()
        from ..models import TinyCNN

        return TinyCNN()
    if kind == "mlp":
        return DigitsMLP(bn=bn)
    raise ConfigError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}",
                      source="training models", field="kind")


__all__ = ["TinyCNNBN", "DigitsMLP", "DigitsResNet", "BasicBlock", "DigitsTransformer", "EncoderLayer",
           "ChannelScale", "DigitsLSTM", "build_model", "MODEL_KINDS"]
