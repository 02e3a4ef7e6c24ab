"""Small networks for the digits experiments.

- ``cnn``: the front-end's :class:`~accelsim.frontend.models.TinyCNN` (conv1 16, conv2 32, 2x2 max
  pool, fc; the workload zoo's ``tiny_cnn``). ``bn=True`` adds BatchNorm after each conv
  (:class:`TinyCNNBN`; Early-Bird tickets read channel masks from BN scales).
- ``mlp``: :class:`DigitsMLP`, 64 -> 128 -> 64 -> 10 with ReLU (BatchNorm1d after the hidden
  layers when ``bn=True``).
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


def build_model(kind: str, bn: bool = False, seed: int = 0) -> "nn.Module":
    """``kind`` ``cnn`` or ``mlp`` with ``torch.manual_seed(seed)`` initial weights (train mode)."""
    torch.manual_seed(seed)
    if kind == "cnn":
        if bn:
            return TinyCNNBN()
        from ..models import TinyCNN

        return TinyCNN()
    if kind == "mlp":
        return DigitsMLP(bn=bn)
    raise ConfigError(f"unknown model kind {kind!r}; expected 'cnn' or 'mlp'", source="training models", field="kind")


__all__ = ["TinyCNNBN", "DigitsMLP", "build_model"]
