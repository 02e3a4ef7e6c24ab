"""Engine of ``kind: loopnest`` (a ZigZag accelerator file): every conv/GEMM/matmul layer on its searched mapping.

Per compute layer: :func:`accelsim.mapping.workload_mapping.map_workload_detailed` on the
accelerator (honouring ``mapping_file``: the entry by layer name > operator type > default, its
spatial mapping / hints / temporal ordering / operand links) for ``objective``, then
:func:`accelsim.mapping.lowering.lower_mapping` turns the best mapping into a program: actions
per memory level (component = the level's name in the file) and operand straight from the cost
model's access counts, priced by :meth:`LoopNestAccelerator.action_energy_pj` at the file's
``r_cost``/``w_cost`` -- so a layer's dynamic energy is the cost model's energy of its mapping,
the number ``accelsim map`` prints. Per-operand, per-level energies are in
``extra['energy_<level>_<operand>_pj']``.

**Latency is the cost model's** (``stall_model: double_buffer``, the default): the layer's
timing is ``temporal + fill/drain`` as compute, ``onload`` as fill, ``offload`` as drain and the
per-level bandwidth stalls as stall (:func:`accelsim.mapping.cost.evaluate`, ZigZag 3.9.1's
latency model), the same number the mapper minimised. Why not the SimPy pipeline: it times only
the DRAM-level tile stream through one DRAM channel (no on-chip port stalls, no ZigZag
on-/off-loading, its own double-buffer overlap), so on the four ZigZag reference runs its layer
latencies were 0.69-1.30x ZigZag's while the cost model's meet <= 1.02x on 70/71 layers
(docs/mapping.md, "Reported latency of kind: loopnest"); a mapper that optimises one latency and
a report that shows another would disagree on which mapping is faster. The pipeline's figure of
the same tile stream stays as a cross-check in ``extra['pipeline_latency_cycles']`` (plus
``dram.latency_cycles``; set by :func:`accelsim.sim.run.simulate_layer_program`). With ``stall_model: none`` the layer takes
``temporal + fill/drain`` cycles (ideal bandwidth), as on every other engine.

Element-wise and pooling layers (and any other op without MACs) are **skipped**: a ZigZag
accelerator describes no vector unit; they get zero cycles and energy and a note saying so.
"""
from __future__ import annotations

from functools import lru_cache

from ..hardware.loopnest import LoopNestAccelerator
from ..mapping.lowering import lower_mapping, mapping_text
from ..mapping.workload_mapping import MAPPED_OPS, map_workload_detailed
from ..mapping.zigzag_mapping import ZigzagMappingFile, load_mapping_file
from ..mapping.cost import MappingCost
from ..stats import Action, LayerProgram, Timing, program_totals, tile_bounded
from ..workload.layer import LayerBase
from ..workload.workload import Workload
from .base import Engine

SKIP_NOTE = "skipped: a ZigZag accelerator describes no vector unit, element-wise/pooling layers are not costed"


@lru_cache(maxsize=16)
def _mapping_file(path: str) -> ZigzagMappingFile:
    return load_mapping_file(path)


class LoopNestEngine(Engine[LoopNestAccelerator]):
    """Searched loop-nest mappings on a ZigZag memory hierarchy (module docstring)."""

    @tile_bounded
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
        if hw.stall_model == "double_buffer":
            prog.timing = cost_model_timing(prog, res.cost, hw.dram_bits_per_cycle(), hw.dram.latency_cycles)
        if m.spec is not None:
            prog.notes.append(f"mapping file entry {m.spec.entry!r} (by {m.spec.matched_by})")
        return prog


def cost_model_timing(prog: LayerProgram, cost: MappingCost, dram_bits_per_cycle: float,
                      dram_latency_cycles: int = 0) -> Timing:
    """The cost model's latency of ``prog``'s mapping as a :class:`Timing`: compute = the program's
    ``temporal + fill/drain``, fill = on-loading (+ ``dram_latency_cycles`` once, as the pipeline
    path adds ``dram.latency_cycles``), drain = off-loading, stall = the rest of the (rounded)
    latency, i.e. the per-level bandwidth stalls; DRAM busy = the program's DRAM traffic over the
    channel's bits per cycle."""
    onload, drain = int(round(cost.onload_cycles)), int(round(cost.offload_cycles))
    stall = max(0, int(round(cost.latency_cycles)) - onload - prog.compute_cycles - drain)
    fill = onload + dram_latency_cycles
    _, load_bits, _, store_bits, _ = program_totals(prog.body)
    return Timing(compute_cycles=prog.compute_cycles, stall_cycles=stall, fill_cycles=fill, drain_cycles=drain,
                  dram_busy_cycles=int((load_bits + store_bits) / dram_bits_per_cycle),
                  source="loop-nest cost model (accelsim.mapping.cost, ZigZag latency model)",
                  stall_input_cycles=stall)
