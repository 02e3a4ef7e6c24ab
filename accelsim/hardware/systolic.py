"""Configuration of a systolic array (TPU-style) with three double-buffered SRAMs."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import Dataflow, HardwareBase, ScaleSimPorts, SramConfig
from .registry import register_hardware


@register_hardware("systolic")
class SystolicArray(HardwareBase):
    """A ``rows`` x ``cols`` array of MAC PEs fed by ifmap/filter SRAMs, draining to an ofmap SRAM.

    ``dataflow``: ``os`` (output stationary), ``ws`` (weight stationary), ``is`` (input
    stationary); see :mod:`accelsim.engines.systolic` for how each maps a GEMM.
    ``word_bits``: width of one SRAM word and of the operands at 8-bit-equivalent precision;
    quantised layers scale traffic by their own bit widths.
    ``stall_model``:

    - ``double_buffer`` (default): accelsim's model — tiles are fetched over one shared DRAM
      channel (``dram.bw_gbps``) into double-buffered SRAM halves while the previous tile
      computes; outputs drain the same way.
    - ``none``: infinite DRAM bandwidth (SCALE-Sim's CALC mode): stall cycles are 0.
    - ``scalesim_user``: emulate SCALE-Sim 3.0.0's USER-mode memory model with independent
      per-operand DRAM ports (``scalesim_ports``), to reproduce its stall counts.
    """

    kind: Literal["systolic"] = "systolic"
    rows: int = Field(gt=0, le=4096)
    cols: int = Field(gt=0, le=4096)
    dataflow: Dataflow = "os"
    word_bits: int = Field(8, ge=1, le=64)
    ifmap_sram: SramConfig
    filter_sram: SramConfig
    ofmap_sram: SramConfig
    stall_model: Literal["double_buffer", "none", "scalesim_user"] = "double_buffer"
    scalesim_ports: ScaleSimPorts | None = None

    @model_validator(mode="after")
    def _check(self) -> "SystolicArray":
        if self.stall_model == "scalesim_user" and self.scalesim_ports is None:
            raise ValueError("stall_model 'scalesim_user' needs scalesim_ports (words per cycle per operand)")
        for name in ("ifmap_sram", "filter_sram", "ofmap_sram"):
            sram: SramConfig = getattr(self, name)
            if sram.words(self.word_bits) < 2:
                raise ValueError(f"{name}.size_kb {sram.size_kb} holds fewer than two {self.word_bits}-bit words")
        return self

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols

    def summary(self) -> str:
        return (f"systolic {self.rows}x{self.cols} {self.dataflow.upper()} '{self.name}', {self.clock_mhz:g} MHz, "
                f"SRAM I/F/O {self.ifmap_sram.size_kb:g}/{self.filter_sram.size_kb:g}/{self.ofmap_sram.size_kb:g} KB, "
                f"DRAM {self.dram.bw_gbps:g} GB/s")
