"""Dense peers of the sparse engines: a systolic array with the same resources, mapped by the mapper.

:func:`dense_peer` turns a SmartExchange or gather-scatter config into the dense systolic array it
is compared with in ``docs/sparse_engines.md`` / ``examples/sparse_trends.py``. Assumptions:

- **same PEs**: SmartExchange ``pe_rows x pe_cols`` -> ``rows x cols``; gather-scatter ``lanes``
  -> a ``1 x lanes`` array (one reduction row, one output channel per lane: the dense vertical
  kernel of the vector unit);
- **same SRAM in total, split by role**: SmartExchange ``act_buffer`` -> ifmap, ``ce_buffer +
  basis_buffer + weight_buffer`` -> filter, ``out_buffer`` -> ofmap; gather-scatter
  ``weight_buffer`` -> filter and the ``scratchpad`` split 7/8 ifmap, 1/8 ofmap (the vector unit
  keeps inputs and outputs in its scratchpad; the split is our choice);
- **same DRAM, clock and technology table** (``dram``, ``clock_mhz``, ``energy``) and the same
  operand word (SmartExchange ``word_bits``; gather-scatter ``word_bits``);
- **searched mappings** (``mapping: search``, the given ``objective``) with the dataflow whose
  spatial unrolling matches the engine's: SmartExchange broadcasts a weight along a line of
  output pixels (output channels x output pixels, ``os``); the vector unit keeps one output
  channel per lane and reduces over time (``ws`` on a single row);
- **per-tile overheads**: the searched systolic lowering charges the array's fill/drain
  (``rows + cols - 2`` plus the skew of the cost model) once per layer and hides the per-tile
  drain in double-buffered output registers, which is what ``tile_overhead_cycles: 0`` (the
  shipped SmartExchange configs) charges the SmartExchange array; :func:`with_tile_overheads`
  gives both sides ``rows + cols - 2`` cycles per tile instead when the drain is not hidden.
  The gather-scatter engine's ``loop_overhead_cycles`` per row group is an instruction-issue
  cost with no systolic counterpart; the peer does not pay it.
"""
from __future__ import annotations

from typing import Literal

from .common import HardwareBase, SramConfig
from .gather_scatter import GatherScatterHardware
from .smartexchange import SmartExchangeAccelerator
from .systolic import SystolicArray

Objective = Literal["latency", "energy", "edp"]


def dense_peer(hw: HardwareBase, *, objective: Objective = "latency") -> SystolicArray:
    """The dense systolic peer of a sparse engine config (module docstring: what is kept equal)."""
    common = {"clock_mhz": hw.clock_mhz, "dram": hw.dram.model_dump(), "energy": hw.energy.model_dump(),
              "stall_model": hw.stall_model, "mapping": "search", "objective": objective}
    if isinstance(hw, SmartExchangeAccelerator):
        filt = hw.ce_buffer.size_kb + hw.basis_buffer.size_kb + hw.weight_buffer.size_kb
        return SystolicArray.model_validate({
            **common, "name": f"{hw.name}-dense-peer", "rows": hw.pe_rows, "cols": hw.pe_cols, "dataflow": "os",
            "word_bits": hw.word_bits,
            "description": f"dense systolic peer of {hw.name!r}: same PEs, SRAM ({hw.total_sram_kb:g} KB), DRAM, clock",
            "ifmap_sram": SramConfig(size_kb=hw.act_buffer.size_kb).model_dump(),
            "filter_sram": SramConfig(size_kb=filt).model_dump(),
            "ofmap_sram": SramConfig(size_kb=hw.out_buffer.size_kb).model_dump()})
    if isinstance(hw, GatherScatterHardware):
        return SystolicArray.model_validate({
            **common, "name": f"{hw.name}-dense-peer", "rows": 1, "cols": hw.lanes, "dataflow": "ws",
            "word_bits": hw.word_bits,
            "description": f"dense systolic peer of {hw.name!r}: {hw.lanes} MACs, same SRAM, DRAM, clock",
            "ifmap_sram": SramConfig(size_kb=hw.scratchpad.size_kb * 7 / 8).model_dump(),
            "filter_sram": SramConfig(size_kb=hw.weight_buffer.size_kb).model_dump(),
            "ofmap_sram": SramConfig(size_kb=hw.scratchpad.size_kb / 8).model_dump()})
    raise TypeError(f"no dense peer defined for hardware kind {hw.kind!r}")


def with_tile_overheads(hw: SmartExchangeAccelerator) -> SmartExchangeAccelerator:
    """``hw`` charging an output-stationary array's fill/drain, ``pe_rows + pe_cols - 2`` cycles, per tile."""
    return hw.model_copy(update={"tile_overhead_cycles": hw.pe_rows + hw.pe_cols - 2})
