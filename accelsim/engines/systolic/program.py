"""Program assembly of the systolic array: counters of a lowered layer -> actions + LayerProgram.

Shared by the dense mapping (:mod:`.engine`) and the sparse modes (:mod:`.sparse`): the same
actions are counted from the same counters (see the energy paragraph of :mod:`.folds`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...hardware.systolic import SystolicArray
from ...stats import Action, LayerProgram, Node
from ...workload.layer import LayerBase


@dataclass
class LayerCounters:
    """What lowering a layer's GEMMs counted (SRAM in words, DRAM in bits)."""

    sram: dict[str, int] = field(default_factory=lambda: {"ifmap_reads": 0, "filter_reads": 0, "ofmap_writes": 0,
                                                          "ofmap_reads": 0})
    dram_read_bits: dict[str, int] = field(default_factory=lambda: {"ifmap": 0, "filter": 0, "psum": 0})
    dram_write_bits: dict[str, int] = field(default_factory=lambda: {"ofmap": 0, "psum": 0})
    compulsory_read_bits: int = 0
    macs: int = 0
    eff_num: float = 0.0   # sum over folds of the used fraction of the array
    eff_den: int = 0       # folds
    compute_cycles: int = 0
    index_reads: int = 0   # sparse weight indices read from the filter SRAM


def systolic_program(layer: LayerBase, hw: SystolicArray, c: LayerCounters, *, engine: str, body: tuple[Node, ...],
                     mac: Action, act_bits: int, weight_bits: int, weight_unit_bits: int, index_bits: int = 0,
                     dense_macs: int, notes: list[str] | None = None,
                     extra: dict[str, float] | None = None) -> LayerProgram:
    """Actions and the LayerProgram from ``c``.

    Weights (and their indices) move between DRAM and the filter SRAM in units of
    ``weight_unit_bits`` (the weight width when dense, bytes when compressed).
    """
    ab, wb, pb = act_bits, weight_bits, hw.energy.accumulator_bits
    macs, acc, dram, dram_w = c.macs, c.sram, c.dram_read_bits, c.dram_write_bits
    actions = [mac]
    if hw.dataflow == "os":  # both operands forwarded; the sum stays in the MAC's accumulator
        actions += [Action("pe_rf", "write", macs, wb), Action("pe_rf", "write", macs, ab)]
    else:  # stationary operand read, moving operand and partial sum forwarded
        stat, mov = (wb, ab) if hw.dataflow == "ws" else (ab, wb)
        actions += [Action("pe_rf", "read", macs, stat), Action("pe_rf", "write", macs, mov),
                    Action("pe_rf", "write", macs, pb)]
    outputs = sum(g.c_unique * g.count for g in layer.gemms())
    psum_writes = max(acc["ofmap_writes"] - outputs, 0)
    weight_units = (dram["filter"] + dram.get("index", 0)) // weight_unit_bits
    actions += [
        Action("ifmap_sram", "read", acc["ifmap_reads"], ab),
        Action("ifmap_sram", "write", dram["ifmap"] // ab, ab),
        Action("filter_sram", "read", acc["filter_reads"], wb),
        Action("filter_sram", "read", c.index_reads, index_bits),
        Action("filter_sram", "write", weight_units, weight_unit_bits),
        Action("ofmap_sram", "write", acc["ofmap_writes"] - psum_writes, ab),
        Action("ofmap_sram", "write", psum_writes, pb),
        Action("ofmap_sram", "read", acc["ofmap_reads"], pb if psum_writes else ab),
        Action("dram", "read", dram["ifmap"] // ab, ab),
        Action("dram", "read", weight_units, weight_unit_bits),
        Action("dram", "read", dram["psum"] // pb, pb),
        Action("dram", "write", dram_w["ofmap"] // ab, ab),
        Action("dram", "write", dram_w["psum"] // pb, pb),
    ]
    return LayerProgram(
        layer=layer.name, op=layer.op, engine=engine, body=body, compute_cycles=c.compute_cycles,
        actions=[a for a in actions if a.count], macs=macs, dense_macs=dense_macs,
        pe_count=hw.num_pes, mapping_efficiency=c.eff_num / c.eff_den if c.eff_den else 0.0,
        dram_read_bits=dict(dram), dram_write_bits=dict(dram_w), compulsory_read_bits=c.compulsory_read_bits,
        compulsory_write_bits=layer.output_words * ab,
        sram_accesses={
            "ifmap_sram_reads": acc["ifmap_reads"], "filter_sram_reads": acc["filter_reads"],
            "ofmap_sram_writes": acc["ofmap_writes"], "ofmap_sram_reads": acc["ofmap_reads"],
            "ifmap_sram_writes": dram["ifmap"] // ab, "filter_sram_writes": weight_units,
        },
        notes=list(notes or []), extra=dict(extra or {}),
    )
