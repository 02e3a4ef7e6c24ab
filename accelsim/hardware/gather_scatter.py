"""Configuration of a vector processor with a banked scratchpad and a gather/scatter engine.

Modelled on the machine targeted by the gather-scatter (GS) patterns paper (Sun et al., arXiv
2112.10898): vector lanes, an on-chip scratchpad ("TCM") that a gather/scatter unit reads with
indirect (indexed) loads and writes with indexed stores, and DRAM. The only published parameter
we could verify is the vector width of the authors' code (128-bit SVE: ``lanes = 8`` fp16
elements, 16-bit indices); scratchpad size, banks and gather throughput are our choices and are
marked as such in ``hw_configs/gather_scatter_*.yaml``. See :mod:`accelsim.engines.gather_scatter`
for how layers run on it.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ..stats import Action
from .common import PRICING_ONLY, HardwareBase, SramConfig
from .registry import register_hardware
from .act_zero import act_zero_mode
from .sparsity import sparsity_block

#: storage levels a gather-scatter ``sparsity:`` block may name
GatherScatterSparsity = sparsity_block("gather_scatter", ("dram", "scratchpad"))


@register_hardware("gather_scatter", engine="accelsim.engines.gather_scatter:GatherScatterEngine")
class GatherScatterHardware(HardwareBase):
    """``lanes``-wide vector MAC unit, banked ``scratchpad`` + gather/scatter unit, ``weight_buffer``.

    - ``lanes`` (V): elements per vector instruction; one vector MAC instruction per cycle.
    - ``scratchpad``: holds input activations (gather source) and outputs; ``scratchpad.banks``
      word-interleaved banks, one word per bank per cycle.
    - ``gather_elems_per_cycle``: peak elements the gather/scatter unit moves per cycle when the
      addresses hit distinct banks (a gather of V elements takes
      ``max(ceil(V / gather_elems_per_cycle), most accesses to one bank)`` cycles).
    - ``weight_buffer``: double-buffered buffer that weights (values + indices) stream through.
    - ``index_bits`` / ``pointer_bits``: width of one stored column index / row pointer when the
      layer's sparsity record does not give ``index_bits``.
    - ``loop_overhead_cycles``: cycles per row (CSR), per row group (vertical/GS) or per block
      row (loop control, pointer load, output store); ``reduction_cycles`` (default
      ``ceil(log2 V)``): horizontal sum of one vector.
    - ``gather_pj_per_element``: energy of one gathered/scattered element's address generation
      and bank crossbar traversal (default: an adder at the scratchpad address width, from the
      technology table).
    - ``pack_for_banks``: the format builder orders each row's / group's non-zeros to avoid bank
      conflicts (default off: sorted column order, as the GS authors' code stores them).
    - ``expected_sample_groups`` / ``expected_seed``: without a mask, the work is the expectation
      over i.i.d. masks, estimated on this many seeded random row groups.
    - ``sparsity`` (:mod:`accelsim.hardware.sparsity`; levels ``dram``, ``scratchpad``): weight
      zeros are always skipped by the layer's own format; ``compute: {action, on_zeros: inputs |
      intersection}`` sets what happens to zero input activations -- ``none`` (default: every
      gathered pair is multiplied), ``gate`` (a zero activation gates its MAC lane: MAC energy
      only for effectual pairs, same cycles and gathers), ``skip`` (an intersection unit ANDs
      the activation bitmask with the weight indices before the gather: only effectual pairs
      are gathered and issued; dense weights skip whole broadcast columns, Cnvlutin-style;
      statically packed GS/block entries cannot be compacted and fall back to gating).
      ``levels.dram.format.inputs``: how input activations travel from DRAM (metadata counted
      as traffic); ``levels.scratchpad.format.inputs``: the positions the skip reads (an
      uncompressed scratchpad gets a bitmask written on fill).
    - ``act_sample_vectors``: input vectors (seeded random, or evenly spaced rows of a real
      activation mask) the ``skip`` kernels run on per weight matrix.
    """

    kind: Literal["gather_scatter"] = "gather_scatter"
    lanes: int = Field(8, gt=0, le=256)
    word_bits: int = Field(16, ge=1, le=64)
    scratchpad: SramConfig = SramConfig(size_kb=256, banks=16)
    weight_buffer: SramConfig = SramConfig(size_kb=64)
    gather_elems_per_cycle: int = Field(8, gt=0, le=1024)
    index_bits: int = Field(16, ge=1, le=32)
    pointer_bits: int = Field(32, ge=1, le=64)
    loop_overhead_cycles: int = Field(1, ge=0)
    reduction_cycles: int | None = Field(None, ge=0)
    gather_pj_per_element: float | None = Field(None, ge=0, json_schema_extra=PRICING_ONLY)
    pack_for_banks: bool = False
    expected_sample_groups: int = Field(8, gt=0, le=4096)
    expected_seed: int = Field(0, ge=0)
    act_sample_vectors: int = Field(64, gt=0, le=4096)
    sparsity: GatherScatterSparsity = GatherScatterSparsity()  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> "GatherScatterHardware":
        for name in ("scratchpad", "weight_buffer"):
            sram: SramConfig = getattr(self, name)
            if sram.words(self.word_bits) < 2 * self.lanes:
                raise ValueError(f"{name}.size_kb {sram.size_kb} holds fewer than two {self.lanes}-lane vectors")
        return self

    @property
    def num_pes(self) -> int:
        return self.lanes

    @property
    def act_zero(self) -> str:
        """What the datapath does with zero input activations (``sparsity.compute``)."""
        return act_zero_mode(self.sparsity)

    @property
    def banks(self) -> int:
        return self.scratchpad.banks

    @property
    def reduce_cycles(self) -> int:
        if self.reduction_cycles is not None:
            return self.reduction_cycles
        return int(math.ceil(math.log2(self.lanes))) if self.lanes > 1 else 0

    @property
    def address_bits(self) -> int:
        return max(1, int(math.ceil(math.log2(max(self.scratchpad.words(self.word_bits), 2)))))

    def action_energy_pj(self, action: Action) -> float | None:
        """Gather/scatter elements; everything else is priced generically."""
        if action.component == "gather_unit" and action.action in ("gather", "scatter"):
            if self.gather_pj_per_element is not None:
                return self.gather_pj_per_element
            return self.energy.add_pj(self.address_bits)
        return None

    def summary(self) -> str:
        return (f"gather-scatter '{self.name}': {self.lanes} lanes, {self.clock_mhz:g} MHz, scratchpad "
                f"{self.scratchpad.size_kb:g} KB / {self.banks} banks, gather {self.gather_elems_per_cycle}/cycle, "
                f"weight buffer {self.weight_buffer.size_kb:g} KB, DRAM {self.dram.bw_gbps:g} GB/s")
