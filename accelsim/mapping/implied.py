"""The memory hierarchy a plain ``kind: systolic`` config implies (no explicit hierarchy given).

``rows x cols`` PEs (array dimensions ``D1`` = rows, ``D2`` = cols, both systolic), each with
three one-word registers — a weight register, an input register (the systolic pipeline
register that forwards the input to the next PE) and an accumulator of ``accumulator_bits``
(``served_dimensions: []``, one per PE) — fed by the config's three SRAMs (``filter_sram`` for
W, ``ifmap_sram`` for I, ``ofmap_sram`` for O; one instance for the whole array), behind DRAM.

Assumptions (stated, not measured):
- register access energy = ``energy.pe_rf_pj_per_bit`` x the register width; one access per
  word (ZigZag's rf_128B/rf_2B pricing style);
- an SRAM port moves one word per array edge PE per cycle (``max(rows, cols) x word_bits``
  bits, outputs ``max(rows, cols) x accumulator_bits``), with word granularity (an access of
  fewer bits costs proportionally); per-bit energy from the SRAM's own table value;
  ``double_buffering: auto`` (a tile using at most half an SRAM is double-buffered, as
  accelsim's SRAM halves);
- DRAM: one read/write port of ``dram.bw_gbps`` converted to bits per cycle at ``clock_mhz``
  (rounded down, at least one word), ``dram.pj_per_bit`` / ``write_energy_pj_per_bit``;
- MAC energy = ``energy.mac_energy_pj(word_bits, word_bits)``.
"""
from __future__ import annotations

from typing import Any

from ..hardware.hierarchy import (ArrayDimension, ArrayPrecision, MemoryHierarchy, MemoryLevel, MemoryPort,
                                  OperationalArray, PortAllocation)

DRAM_SIZE_BITS = 8 * 2**40  # "unbounded" off-chip memory (1 TiB)


def _alloc(*pairs: tuple[str, str]) -> tuple[PortAllocation, ...]:
    return tuple(PortAllocation(operand=o, direction=d) for o, d in pairs)


def _register(name: str, operand: str, bits: int, pj_per_bit: float) -> MemoryLevel:
    pj = pj_per_bit * bits
    if operand == "O":
        ports = (
            MemoryPort(name="r", type="read", bandwidth_min_bits=bits, bandwidth_max_bits=bits,
                       allocation=_alloc(("O", "tl"), ("O", "th"))),
            MemoryPort(name="w", type="write", bandwidth_min_bits=bits, bandwidth_max_bits=bits,
                       allocation=_alloc(("O", "fh"), ("O", "fl"))),
        )
    else:
        ports = (
            MemoryPort(name="r", type="read", bandwidth_min_bits=bits, bandwidth_max_bits=bits,
                       allocation=_alloc((operand, "tl"))),
            MemoryPort(name="w", type="write", bandwidth_min_bits=bits, bandwidth_max_bits=bits,
                       allocation=_alloc((operand, "fh"))),
        )
    return MemoryLevel(name=name, size_bits=bits, operands=(operand,), read_pj=pj, write_pj=pj, ports=ports,
                       served_dimensions=())


def implied_hierarchy(hw: Any) -> MemoryHierarchy:
    """Hierarchy of a ``SystolicArray``-like config (``rows``, ``cols``, ``word_bits``, three
    ``*_sram``, ``dram``, ``energy``, ``clock_mhz``)."""
    table = hw.energy
    wb = int(hw.word_bits)
    acc = int(table.accumulator_bits)
    edge = max(int(hw.rows), int(hw.cols))
    regs = [
        _register("reg_w", "W", wb, table.pe_rf_pj_per_bit),
        _register("reg_i", "I", wb, table.pe_rf_pj_per_bit),
        _register("reg_o", "O", acc, table.pe_rf_pj_per_bit),
    ]
    srams = []
    for name, op in (("filter_sram", "W"), ("ifmap_sram", "I"), ("ofmap_sram", "O")):
        cfg = getattr(hw, name)
        word = acc if op == "O" else wb
        bw = edge * word
        rd = cfg.read_energy_pj_per_bit(table) * bw
        wr = cfg.write_energy_pj_per_bit(table) * bw
        reads = (("O", "tl"), ("O", "th")) if op == "O" else ((op, "tl"),)
        writes = (("O", "fh"), ("O", "fl")) if op == "O" else ((op, "fh"),)
        srams.append(MemoryLevel(
            name=name, size_bits=int(cfg.size_kb * 1024 * 8), operands=(op,), read_pj=rd, write_pj=wr,
            ports=(MemoryPort(name="r", type="read", bandwidth_min_bits=word, bandwidth_max_bits=bw,
                              allocation=_alloc(*reads)),
                   MemoryPort(name="w", type="write", bandwidth_min_bits=word, bandwidth_max_bits=bw,
                              allocation=_alloc(*writes))),
            served_dimensions=("D1", "D2")))
    dram_bw = max(wb, int(hw.dram.bits_per_cycle(hw.clock_mhz)))
    dram = MemoryLevel(
        name="dram", size_bits=DRAM_SIZE_BITS, operands=("W", "I", "O"),
        read_pj=hw.dram.pj_per_bit * dram_bw, write_pj=hw.dram.write_energy_pj_per_bit() * dram_bw,
        ports=(MemoryPort(name="rw", type="read_write", bandwidth_min_bits=min(wb, dram_bw), bandwidth_max_bits=dram_bw,
                          allocation=_alloc(("W", "tl"), ("W", "fh"), ("I", "tl"), ("I", "fh"),
                                            ("O", "tl"), ("O", "th"), ("O", "fh"), ("O", "fl"))),),
        served_dimensions=("D1", "D2"))
    array = OperationalArray(
        dimensions=(ArrayDimension(name="D1", size=int(hw.rows)), ArrayDimension(name="D2", size=int(hw.cols))),
        mac_energy_pj=table.mac_energy_pj(wb, wb), systolic_dimensions=("D1", "D2"),
        precision=ArrayPrecision(w_bits=wb, i_bits=wb, o_bits=acc, o_final_bits=wb))
    return MemoryHierarchy(name=f"{getattr(hw, 'name', 'systolic')} (implied)", array=array,
                           memories=tuple(regs + srams + [dram]))


__all__ = ["implied_hierarchy", "DRAM_SIZE_BITS"]
