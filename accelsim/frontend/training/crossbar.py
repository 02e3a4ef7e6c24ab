"""Crossbar-aware compression for memristor (ReRAM) accelerators.

Yuan et al., "An Ultra-Efficient Memristor-Based DNN Framework with Structured Weight Pruning and
Quantization Using ADMM" (arXiv, Aug 2019; ISLPED 2019) prune whole crossbar blocks, quantise
weights to the conductance levels a device can hold and account for device mismatch
(literature.md B5). The functions here are the projections :mod:`.admm` uses for that mode.

Mapping assumed (as ISAAC/NeuroSim do): a layer's GEMM-view weight ``out x K`` (K = in/groups *
kh * kw) is stored transposed, inputs drive the ``rows`` word lines and outputs are read on the
``cols`` bit lines, so one ``rows x cols`` crossbar holds a ``cols (outputs) x rows (reduction)``
block of the GEMM view. A crossbar whose whole block is pruned is not needed at all — this, not
element sparsity, is what saves crossbars, ADCs and DACs.

Signed weights use a differential pair ``w ∝ G+ - G-`` (one device programmed, the other left
at ``g_min``); ``levels`` conductance states per device give ``2*levels - 1`` weight values
(``ceil(log2(2*levels - 1))`` bits). Device mismatch: every device of an occupied crossbar gets
``G * (1 + sigma * eps)``, ``eps ~ N(0, 1)`` drawn from a seeded generator (programming
variation); weights of removed crossbars stay exactly zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .._deps import require_torch
from ..pruning import block_mask

torch = require_torch()


@dataclass(frozen=True)
class CrossbarBlockPrune:
    """Keep the ``density`` fraction of ``rows x cols`` crossbar blocks (by L2 norm)."""

    density: float
    rows: int = 128
    cols: int = 128
    kind: str = "crossbar_block"

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"crossbar block density must be in (0, 1], got {self.density}")
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"crossbar rows/cols must be >= 1, got {self.rows}x{self.cols}")

    @property
    def block(self) -> tuple[int, int]:
        """The block in the GEMM view (outputs x reduction)."""
        return (self.cols, self.rows)


@dataclass(frozen=True)
class ConductanceQuant:
    """Weights as differential conductance pairs with ``levels`` states per device.

    ``g_min_us`` / ``g_max_us`` (micro-siemens) only matter with mismatch noise (the noise is
    relative to the programmed conductance, so the off-device at ``g_min`` also fluctuates).
    """

    levels: int = 16
    g_min_us: float = 1.0
    g_max_us: float = 100.0
    mismatch_sigma: float = 0.0
    act_bits: int = 8
    kind: str = "conductance"

    def __post_init__(self) -> None:
        if self.levels < 2:
            raise ValueError(f"a device needs >= 2 conductance levels, got {self.levels}")
        if not 0.0 <= self.g_min_us < self.g_max_us:
            raise ValueError(f"need 0 <= g_min_us < g_max_us, got {self.g_min_us}, {self.g_max_us}")
        if self.mismatch_sigma < 0:
            raise ValueError(f"mismatch_sigma must be >= 0, got {self.mismatch_sigma}")

    @property
    def weight_bits(self) -> int:
        return max(1, math.ceil(math.log2(2 * self.levels - 1)))


def crossbar_block_mask(w: "torch.Tensor", spec: CrossbarBlockPrune) -> "torch.Tensor":
    """Boolean mask keeping whole crossbar blocks (see the module docstring for the mapping)."""
    return block_mask(w, spec.density, spec.block, norm="l2")


def crossbar_occupancy(mask: "torch.Tensor", rows: int, cols: int) -> tuple[int, int]:
    """``(occupied, total)`` crossbars needed for a weight with ``mask`` (any non-zero = occupied)."""
    m2 = mask.reshape(mask.shape[0], -1).bool()
    out, k = m2.shape
    nbo, nbk = math.ceil(out / cols), math.ceil(k / rows)
    padded = torch.zeros(nbo * cols, nbk * rows, dtype=torch.bool)
    padded[:out, :k] = m2
    occ = padded.view(nbo, cols, nbk, rows).any(dim=3).any(dim=1)
    return int(occ.sum()), nbo * nbk


def _scale(w: "torch.Tensor", levels: int) -> "torch.Tensor":
    return (w.detach().abs().amax() / (levels - 1)).clamp_min(1e-12)


def quantize_conductance(w: "torch.Tensor", spec: ConductanceQuant) -> "torch.Tensor":
    """Noise-free projection of ``w`` onto the ``2*levels - 1`` differential-pair weight values
    (uniform steps of ``max|w| / (levels - 1)``); zero stays zero."""
    s = _scale(w, spec.levels)
    return torch.clamp(torch.round(w / s), -(spec.levels - 1), spec.levels - 1) * s


def program_crossbar(w: "torch.Tensor", spec: ConductanceQuant, mask: "torch.Tensor | None" = None,
                     generator: "torch.Generator | None" = None) -> "torch.Tensor":
    """Weights as read back from programmed devices: conductance levels plus mismatch noise.

    ``mask`` marks the weights kept by pruning; the crossbars they occupy get noise, weights
    outside ``mask`` are exactly zero. Without noise this equals :func:`quantize_conductance`.
    """
    s = _scale(w, spec.levels)
    lvl = torch.clamp(torch.round(w.detach() / s), -(spec.levels - 1), spec.levels - 1)
    if spec.mismatch_sigma == 0.0:
        out = lvl * s
        return out * mask.to(out.dtype) if mask is not None else out
    g_step = (spec.g_max_us - spec.g_min_us) / (spec.levels - 1)
    g_pos = spec.g_min_us + torch.clamp(lvl, min=0) * g_step
    g_neg = spec.g_min_us + torch.clamp(-lvl, min=0) * g_step
    noise_p = torch.randn(w.shape, generator=generator, dtype=w.dtype)
    noise_n = torch.randn(w.shape, generator=generator, dtype=w.dtype)
    g_pos = g_pos * (1 + spec.mismatch_sigma * noise_p)
    g_neg = g_neg * (1 + spec.mismatch_sigma * noise_n)
    out = (g_pos - g_neg) / g_step * s
    return out * mask.to(out.dtype) if mask is not None else out


__all__ = ["CrossbarBlockPrune", "ConductanceQuant", "crossbar_block_mask", "crossbar_occupancy",
           "quantize_conductance", "program_crossbar"]
