"""Configuration of a SmartExchange-style accelerator (Zhao et al., ISCA 2020, arXiv 2005.03403).

Weights live off-chip and in the ``ce_buffer`` as a sparse power-of-two coefficient matrix Ce
(plus a per-row bitmap) and small bases B (``basis_buffer``); a *rebuild engine* of
shift-and-add units recreates the ordinary weights tile by tile into a double-buffered
``weight_buffer`` (two rebuild engines in ping-pong: one fills a half while the other half feeds
the PE array), and a ``pe_rows x pe_cols`` MAC array consumes them. Published facts we use
(``literature.md`` C/H-C): rebuild by shift-and-add, two double-buffered rebuild engines, zero Ce
rows skip input channels, 8-bit activations, 8-bit B, 4-bit Ce in the evaluation, MACs still
performed after the rebuild. The PE count, buffer sizes and rebuild width are not published in
what we could read; the shipped ``hw_configs/smartexchange_*.yaml`` state our choices. See
:mod:`accelsim.engines.smartexchange` for the dataflow.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..stats import Action
from .common import HardwareBase, SramConfig
from .registry import register_hardware
from .act_zero import act_zero_mode
from .sparsity import sparsity_block

#: storage levels a SmartExchange ``sparsity:`` block may name
SmartExchangeSparsity = sparsity_block("smartexchange", ("dram", "act_buffer"))


@register_hardware("smartexchange", engine="accelsim.engines.smartexchange:SmartExchangeEngine")
class SmartExchangeAccelerator(HardwareBase):
    """``pe_rows`` PE lines (output channels) x ``pe_cols`` PEs (output pixels) + a rebuild engine.

    - ``rebuild_shift_adders``: shift-and-add operations the active rebuild engine completes per
      cycle (one per rebuilt-weight element per non-zero Ce entry).
    - ``rebuild_acc_bits``: width of the rebuild adders (default ``basis_bits + 2**(ce_bits-1) - 1``
      of the layer: a B entry shifted by the largest Ce exponent).
    - ``default_ce_bits`` / ``default_basis_bits``: used when a layer's factorisation record leaves
      them unset.
    - ``tile_overhead_cycles``: cycles added per (channel tile, pixel tile) for draining the
      accumulators (0: drained through double-buffered output registers, hidden).
    - ``sparsity`` (:mod:`accelsim.hardware.sparsity`; levels ``dram``, ``act_buffer``):
      ``compute: {action, on_zeros: inputs | intersection}`` on zero input activations -- ``none``
      (default: every MAC runs), ``gate`` (a PE
      whose broadcast activation is zero is clock-gated: MAC and PE-register energy only for
      non-zero activations, same cycles), ``skip`` (gating, and a reduction element whose
      activation is zero for all ``pe_cols`` pixels of the pixel tile -- an all-zero broadcast
      wave, e.g. a dead input channel -- takes no cycle, no weight read; a zero detector on the
      act_buffer fill writes one flag bit per element and pixel tile, read before each wave).
    """

    kind: Literal["smartexchange"] = "smartexchange"
    pe_rows: int = Field(32, gt=0, le=4096)
    pe_cols: int = Field(32, gt=0, le=4096)
    word_bits: int = Field(8, ge=1, le=64)
    rebuild_shift_adders: int = Field(96, gt=0)
    rebuild_acc_bits: int | None = Field(None, ge=1, le=64)
    default_ce_bits: int = Field(4, ge=1, le=8)
    default_basis_bits: int = Field(8, ge=1, le=32)
    tile_overhead_cycles: int = Field(0, ge=0)
    sparsity: SmartExchangeSparsity = SmartExchangeSparsity()  # type: ignore[valid-type]
    act_buffer: SramConfig = SramConfig(size_kb=128)
    ce_buffer: SramConfig = SramConfig(size_kb=44)
    basis_buffer: SramConfig = SramConfig(size_kb=4)
    weight_buffer: SramConfig = SramConfig(size_kb=16)
    out_buffer: SramConfig = SramConfig(size_kb=64)

    @model_validator(mode="after")
    def _check(self) -> "SmartExchangeAccelerator":
        for name in ("act_buffer", "ce_buffer", "basis_buffer", "weight_buffer", "out_buffer"):
            sram: SramConfig = getattr(self, name)
            if sram.words(self.word_bits) < 2:
                raise ValueError(f"{name}.size_kb {sram.size_kb} holds fewer than two {self.word_bits}-bit words")
        if self.weight_buffer.size_bits // 2 < self.pe_rows * self.word_bits * 3:
            raise ValueError(f"weight_buffer.size_kb {self.weight_buffer.size_kb}: half of it must hold at least one "
                             f"rebuilt 3-weight row for each of the {self.pe_rows} PE lines")
        return self

    @property
    def num_pes(self) -> int:
        return self.pe_rows * self.pe_cols

    @property
    def act_zero(self) -> str:
        """What the PEs do with zero input activations (``sparsity.compute``)."""
        return act_zero_mode(self.sparsity)

    @property
    def total_sram_kb(self) -> float:
        return sum(getattr(self, n).size_kb for n in ("act_buffer", "ce_buffer", "basis_buffer", "weight_buffer",
                                                      "out_buffer"))

    def action_energy_pj(self, action: Action) -> float | None:
        """The rebuild engine's shift-adds (component ``decoder``); the rest is generic."""
        if action.component == "decoder" and action.action == "shift_add":
            return self.energy.shift_add_pj(action.bits)
        return None

    def summary(self) -> str:
        return (f"smartexchange '{self.name}': {self.pe_rows}x{self.pe_cols} PEs, {self.clock_mhz:g} MHz, rebuild "
                f"{self.rebuild_shift_adders} shift-adds/cycle, SRAM {self.total_sram_kb:g} KB "
                f"(act {self.act_buffer.size_kb:g}, Ce {self.ce_buffer.size_kb:g}, B {self.basis_buffer.size_kb:g}, "
                f"weights {self.weight_buffer.size_kb:g}, out {self.out_buffer.size_kb:g}), DRAM {self.dram.bw_gbps:g} GB/s")
