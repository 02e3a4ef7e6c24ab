"""Access-count cost model of a loop-nest mapping on an explicit memory hierarchy.

(Body being written; the public names ``evaluate``, ``MappingCost``, ``OperandLevelCost`` are stable.)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..hardware.hierarchy import MemoryHierarchy
from .ir import LayerDims, Mapping


@dataclass(frozen=True)
class OperandLevelCost:
    """Accesses of one operand at one memory level (counts in port words and in elements)."""

    operand: str
    level: str
    reads: float  # port-word read accesses (to the level below and to the level above)
    writes: float  # port-word write accesses (from above and from below)
    energy_pj: float


@dataclass(frozen=True)
class MappingCost:
    """Cost of one mapping of one layer."""

    energy_pj: float
    mac_energy_pj: float
    latency_cycles: float
    ideal_cycles: float
    temporal_cycles: float
    stall_cycles: float
    onload_cycles: float
    offload_cycles: float
    fill_drain_cycles: float
    levels: tuple[OperandLevelCost, ...]

    @property
    def edp(self) -> float:
        return self.energy_pj * self.latency_cycles

    def energy_of(self, operand: str) -> tuple[float, ...]:
        """Energy (pJ) of ``operand`` per memory level, innermost first."""
        return tuple(c.energy_pj for c in self.levels if c.operand == operand)


def evaluate(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, *, check: bool = True) -> MappingCost:
    """Energy and latency of ``mapping`` for ``layer`` on ``hierarchy`` (``check``: validate first)."""
    raise NotImplementedError


__all__ = ["OperandLevelCost", "MappingCost", "evaluate"]
