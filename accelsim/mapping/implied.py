"""The memory hierarchy a plain ``kind: systolic`` config implies (no explicit hierarchy given).

``rows x cols`` PEs (array dimensions ``D1`` = rows, ``D2`` = cols, both systolic), each with
three one-word registers — a weight register, an input register (the systolic pipeline
register that forwards the input to the next PE) and an accumulator of ``accumulator_bits``
(``served_dimensions: []``, one per PE) — fed by the config's three SRAMs (``filter_sram`` for
W, ``ifmap_sram`` for I, ``ofmap_sram`` for O; one instance for the whole array), behind DRAM.

Register sizes: the weight and input registers are as wide as the layer's operands
(``w_bits`` / ``i_bits``, default ``word_bits``; a layer wider than the array's word, e.g. fp16
on an 8-bit config, gets registers of its own width, as the fold model prices it), the
accumulator ``accumulator_bits``.

**Register pricing = the fold model's rule** (:func:`accelsim.engines.systolic.program.systolic_program`),
so a searched mapping and the fold order are priced by one accounting. Per access, at
``energy.pe_rf_pj(bits)`` (technology-scaled):
- a *moving* operand's register (OS: weights and inputs; WS: inputs; IS: weights) pays a write
  per word entering it; its read into the MAC / the neighbour PE is wiring (0 pJ);
- the *stationary* operand's register (WS: weights; IS: inputs) pays a read per use and a write
  per fill;
- the accumulator: on OS the read-modify-write is inside the MAC (0 pJ for reads and writes);
  on WS/IS every partial sum the MAC updates (``fl``) pays a write of ``accumulator_bits``; the
  partial sum arriving from the neighbour PE or read back from the output SRAM (``fh``) and
  reads are wiring into the adder (0 pJ; the SRAM read is priced at the SRAM).
Evaluated on the fold order's own loop nest this gives exactly the fold model's ``pe_rf``
energy for moving operands and partial sums (``tests/test_mapping_register_pricing.py``). One
structural difference remains (``docs/mapping.md``, known differences): the cost model reads a
stationary datum once per stay at the MAC input and writes it once per fill (ZigZag's
stationarity rule), where the fold model reads it on every MAC, so on WS/IS the cost model's
stationary-register energy is ``2 / stay`` of the fold model's (stay = the MACs a datum serves
in a row, >= 2 on every fold of the fold order's loop nest).

Assumptions (stated, not measured):
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


#: per dataflow, operand -> which accesses of its PE register are priced: (reads, writes from
#: above ``fh``, writes from the MAC ``fl``) (module docstring)
REGISTER_PRICING: dict[str, dict[str, tuple[bool, bool, bool]]] = {
    "os": {"W": (False, True, True), "I": (False, True, True), "O": (False, False, False)},
    "ws": {"W": (True, True, True), "I": (False, True, True), "O": (False, False, True)},
    "is": {"W": (False, True, True), "I": (True, True, True), "O": (False, False, True)},
}


def _register(name: str, operand: str, bits: int, pj: float, priced: tuple[bool, bool, bool]) -> MemoryLevel:
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
    return MemoryLevel(name=name, size_bits=bits, operands=(operand,), read_pj=pj if priced[0] else 0.0,
                       write_pj=pj if priced[2] else 0.0, fh_write_pj=pj if priced[1] else 0.0, ports=ports,
                       served_dimensions=())


def implied_hierarchy(hw: Any, *, w_bits: int | None = None, i_bits: int | None = None) -> MemoryHierarchy:
    """Hierarchy of a ``SystolicArray``-like config (``rows``, ``cols``, ``word_bits``,
    ``dataflow``, three ``*_sram``, ``dram``, ``energy``, ``clock_mhz``), registers sized for a
    layer of ``w_bits`` weights and ``i_bits`` inputs (default ``word_bits``)."""
    table = hw.energy
    wb = int(hw.word_bits)
    rw, ri = int(w_bits or wb), int(i_bits or wb)
    acc = int(table.accumulator_bits)
    edge = max(int(hw.rows), int(hw.cols))
    pricing = REGISTER_PRICING[getattr(hw, "dataflow", "os")]
    regs = [_register(name, op, bits, table.pe_rf_pj(bits), pricing[op])
            for name, op, bits in (("reg_w", "W", rw), ("reg_i", "I", ri), ("reg_o", "O", acc))]
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
        mac_energy_pj=table.mac_energy_pj(rw, ri), systolic_dimensions=("D1", "D2"),
        precision=ArrayPrecision(w_bits=rw, i_bits=ri, o_bits=acc, o_final_bits=ri))
    return MemoryHierarchy(name=f"{getattr(hw, 'name', 'systolic')} (implied)", array=array,
                           memories=tuple(regs + srams + [dram]))


__all__ = ["implied_hierarchy", "DRAM_SIZE_BITS", "REGISTER_PRICING"]
