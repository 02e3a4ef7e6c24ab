"""Per-layer compression state shared by the compressor and the exporter (no dependency on either,
so ``compressor -> exporter`` is the only direction between them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class UnitState:
    """Compression state of one leaf module as the exporter sees it."""

    name: str  # leaf module qualname (e.g. "layer1.0.conv1", "fc.v")
    type: str  # conv2d | linear | lstm
    group: str  # the recipe's layer name (differs from name for factorised parts)
    params: list[str]
    prune: Any = None
    masks: dict[str, Any] = field(default_factory=dict)  # param name -> bool torch.Tensor
    quant: Any = None  # recipe.QuantSpec
    factor: dict[str, Any] | None = None  # IR factorisation fields of the group
    part: int = 0  # index among the parts of a factorised group
    original: dict[str, int] | None = None  # shape of the group before factorisation
    smartexchange: Any = None  # smart_exchange.SmartExchangeResult
    pattern: Any = None  # pruning.PatternResult
    gs: Any = None  # pruning.GSResult

    @property
    def density(self) -> float:
        if not self.masks:
            return 1.0
        kept = sum(int(m.sum()) for m in self.masks.values())
        total = sum(m.numel() for m in self.masks.values())
        return kept / total


def is_compressed(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`~.compressor.CompressedModel` (duck-typed: a model plus units)."""
    return hasattr(obj, "units") and hasattr(obj, "model") and hasattr(obj, "recipes")


__all__ = ["UnitState", "is_compressed"]
