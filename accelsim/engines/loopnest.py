"""Engine of ``kind: loopnest`` (a ZigZag accelerator file): every conv/GEMM/matmul layer on its searched mapping.

Per compute layer: :func:`accelsim.mapping.workload_mapping.map_workload_detailed` on the
accelerator (honouring ``mapping_file``: the entry by layer name > operator type > default, its
spatial mapping / hints / temporal ordering / operand links) for ``objective``, then
:func:`accelsim.mapping.lowering.lower_mapping` turns the best mapping into a program: actions
per memory level (component = the level's name in the file) and operand straight from the cost
model's access counts, priced by :meth:`LoopNestAccelerator.action_energy_pj` at the file's
``r_cost``/``w_cost`` -- so a layer's dynamic energy is the cost model's energy of its mapping,
the number ``accelsim map`` prints; the tile stream of the DRAM-level loops is timed by the
pipeline (double-buffered, one DRAM channel at the top level's port width), so latency =
temporal + fill/drain + DRAM stalls as that model sees them (not the cost model's own stall
estimate, kept in ``extra['mapping_latency_cycles']``). Per-operand, per-level energies are in
``extra['energy_<level>_<operand>_pj']``.

Element-wise and pooling layers (and any other op without MACs) are **skipped**: a ZigZag
accelerator describes no vector unit; they get zero cycles and energy and a note saying so.
"""
from __future__ import annotations

from functools import lru_cache

from ..hardware.loopnest import LoopNestAccelerator
from ..mapping.lowering import lower_mapping, mapping_text
from ..mapping.workload_mapping import MAPPED_OPS, map_workload_detailed
from ..mapping.zigzag_mapping import ZigzagMappingFile, load_mapping_file
from ..stats import Action, LayerProgram
from ..workload.layer import LayerBase
from ..workload.workload import Workload
from .base import Engine

SKIP_NOTE = "skipped: a ZigZag accelerator describes no vector unit, element-wise/pooling layers are not costed"


@lru_cache(maxsize=16)
def _mapping_file(path: str) -> ZigzagMappingFile:
    return load_mapping_file(path)


class LoopNestEngine(Engine[LoopNestAccelerator]):
    """Searched loop-nest mappings on a ZigZag memory hierarchy (module docstring)."""

    def lower(self, layer: LayerBase, hw: LoopNestAccelerator, workload: Workload | None = None) -> LayerProgram:
        if getattr(layer, "op", None) not in MAPPED_OPS:
            return LayerProgram(layer=layer.name, op=layer.op, engine="loopnest", body=(), compute_cycles=0,
                                actions=[], macs=0, dense_macs=0, pe_count=hw.num_pes, notes=[SKIP_NOTE])
        mfile = _mapping_file(hw.mapping_file) if hw.mapping_file else None
        one = Workload(name=layer.name, layers=[layer])
        m = map_workload_detailed(one, hw.accelerator, mfile, hw.objective)[layer.name]
        res, h = m.result, m.hierarchy
        dims = res.layer
        mac = Action("mac", "mac", dims.macs, dims.w_bits, dims.i_bits)
        prog = lower_mapping(layer.name, layer.op, dims, h, res.mapping, res.cost, mac=mac, pe_count=h.array.num_macs,
                             engine="loopnest", mapping_text=mapping_text(res.mapping, h), dense_macs=dims.macs)
        for lc in res.cost.levels:
            key = f"energy_{lc.level}_{lc.operand}_pj"
            prog.extra[key] = prog.extra.get(key, 0.0) + float(lc.energy_pj)
        if m.spec is not None:
            prog.notes.append(f"mapping file entry {m.spec.entry!r} (by {m.spec.matched_by})")
        return prog
