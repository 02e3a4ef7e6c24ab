"""The systolic-array engine: dense fold mapping (:mod:`.folds`), sparse modes (:mod:`.sparse`),
a vector unit for memory-bound layers, and the SCALE-Sim topology row that the ``scalesim_user``
stall model (:mod:`accelsim.sim.scalesim_user`) replays."""
from __future__ import annotations

from ...hardware.systolic import SystolicArray
from ...stats import Action, LayerProgram, Node, Repeat, TopologyRow
from ...workload.layer import Elementwise, LayerBase, Pool, ceil_div
from ...workload.masks import layer_mask
from ...workload.workload import Workload
from ..base import Engine
from ..lowering import compress_runs, stream_tiles, vector_program, vector_work
from .folds import GemmLowering, OperandBits, fold_plan, peel_last, sram_word_accesses
from .sparse import lower_sparse, sparse_mode as _sparse_mode


def topology_row(layer: LayerBase) -> TopologyRow:
    """A single-GEMM conv/linear layer as a SCALE-Sim topology row (a GEMM ``M, N, K`` is
    ``ifmap M x K``, filter ``1 x K``, one channel, ``N`` filters, stride 1)."""
    g = layer.gemms()[0]
    if g.conv is not None:
        c = g.conv
        return TopologyRow(c.in_h, c.in_w, c.kernel_h, c.kernel_w, c.channels, g.n, c.stride_h)
    return TopologyRow(g.m, g.k, 1, g.k, 1, g.n, 1)


class SystolicEngine(Engine[SystolicArray]):
    """Engine for :class:`~accelsim.hardware.systolic.SystolicArray`."""

    def supports(self, layer: LayerBase, hw: SystolicArray) -> tuple[bool, str]:
        sp = layer.compression.sparsity
        if hw.stall_model == "scalesim_user":
            gemms = layer.gemms()
            if len(gemms) != 1 or gemms[0].count != 1 or layer.op not in ("conv2d", "linear"):
                return False, ("the SCALE-Sim USER-mode emulation runs single-GEMM conv2d/linear layers only "
                               "(SCALE-Sim has no groups, matmul heads or recurrent layers)")
            conv = gemms[0].conv
            if conv is not None and (conv.pad_h or conv.pad_w or conv.dilation_h > 1 or conv.stride_h != conv.stride_w):
                return False, "the SCALE-Sim USER-mode emulation needs unpadded, undilated convs with equal strides"
        if sp.kind not in ("dense", "channel", "filter"):
            # Structured pruning that shrinks shapes is dense by the time it reaches us. Other
            # sparsity is run dense (no skipping) -- stated in the report notes, never silently.
            return True, f"{sp.kind} sparsity runs dense unless a matching hw.sparse option is on"
        return True, ""

    #: how ``hw.sparse`` runs a layer: (mode, reason); see :func:`.sparse.sparse_mode`
    sparse_mode = staticmethod(_sparse_mode)

    def lower(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None = None) -> LayerProgram:
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        sparse_reason = ""
        if hw.sparse.any:
            mask = layer_mask(workload, layer)
            mode, sparse_reason = _sparse_mode(layer, hw, mask)
            if mode is not None:
                return lower_sparse(layer, hw, workload, mode, sparse_reason, mask)
        q = layer.compression.quant
        bits = OperandBits(a=q.act_bits, b=q.weight_bits, c=q.act_bits, psum=hw.energy.accumulator_bits)
        nodes: list[Node] = []
        actions: list[Action] = []
        acc = {"ifmap_reads": 0, "filter_reads": 0, "ofmap_writes": 0, "ofmap_reads": 0}
        dram = {"ifmap": 0, "filter": 0, "psum": 0}
        dram_w = {"ofmap": 0, "psum": 0}
        compulsory_read = 0
        macs = 0
        eff_num = 0.0
        eff_den = 0
        compute_cycles = 0
        for g in layer.gemms():
            plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
            sram = sram_word_accesses(g, plan, hw.dataflow)
            for key in acc:
                acc[key] += sram[key] * g.count
            macs += g.macs
            eff_num += plan.sr * plan.sc / (hw.rows * hw.cols) * g.count
            eff_den += plan.folds * g.count
            compute_cycles += plan.folds * plan.cycles_per_fold * g.count
            b_shared = g.b_distinct == 1  # e.g. recurrent weights: the same at every time step
            first = GemmLowering(g, hw, bits)
            first_nodes = first.tiles()
            nodes.extend(first_nodes)
            lowerings = [(first, 1)]
            if g.count > 1:
                b_fits = g.b_unique * bits.b <= hw.filter_sram.size_bits // 2
                rest = GemmLowering(g, hw, bits, b_resident_from_before=b_shared and b_fits)
                rest_nodes = rest.tiles()
                nodes.append(Repeat(rest_nodes, g.count - 1))
                lowerings.append((rest, g.count - 1))
            for low, times in lowerings:
                dram["ifmap"] += low.dram_a * times
                dram["filter"] += low.dram_b * times
                dram["psum"] += low.dram_psum_read * times
                dram_w["ofmap"] += low.dram_c * times
                dram_w["psum"] += low.dram_psum_write * times
            compulsory_read += g.a_unique * bits.a * g.count + g.b_unique * bits.b * g.b_distinct
        compute_cycles -= 1
        body = peel_last(tuple(nodes))
        mapping_eff = eff_num / eff_den if eff_den else 0.0
        # --- actions ----------------------------------------------------------------------
        ab, wb, pb = bits.a, bits.b, bits.psum
        actions.append(Action("mac", "mac", macs, wb, ab, q.scheme))
        if hw.dataflow == "os":  # both operands forwarded; the sum stays in the MAC's accumulator
            actions += [Action("pe_rf", "write", macs, wb), Action("pe_rf", "write", macs, ab)]
        else:  # stationary operand read, moving operand and partial sum forwarded
            stat, mov = (wb, ab) if hw.dataflow == "ws" else (ab, wb)
            actions += [Action("pe_rf", "read", macs, stat), Action("pe_rf", "write", macs, mov),
                        Action("pe_rf", "write", macs, pb)]
        actions += [
            Action("ifmap_sram", "read", acc["ifmap_reads"], ab),
            Action("ifmap_sram", "write", dram["ifmap"] // ab, ab),
            Action("filter_sram", "read", acc["filter_reads"], wb),
            Action("filter_sram", "write", dram["filter"] // wb, wb),
        ]
        psum_writes = acc["ofmap_writes"] - sum(g.c_unique * g.count for g in layer.gemms())
        actions += [
            Action("ofmap_sram", "write", acc["ofmap_writes"] - psum_writes, bits.c),
            Action("ofmap_sram", "write", psum_writes, pb),
            Action("ofmap_sram", "read", acc["ofmap_reads"], pb if psum_writes else bits.c),
            Action("dram", "read", dram["ifmap"] // ab, ab),
            Action("dram", "read", dram["filter"] // wb, wb),
            Action("dram", "read", dram["psum"] // pb, pb),
            Action("dram", "write", dram_w["ofmap"] // bits.c, bits.c),
            Action("dram", "write", dram_w["psum"] // pb, pb),
        ]
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="systolic", body=body, compute_cycles=compute_cycles,
            actions=[a for a in actions if a.count], macs=macs, dense_macs=layer.densified().macs if not layer.compression.is_dense else macs,
            pe_count=hw.num_pes, mapping_efficiency=mapping_eff,
            dram_read_bits={k: v for k, v in dram.items()}, dram_write_bits=dict(dram_w),
            compulsory_read_bits=compulsory_read, compulsory_write_bits=layer.output_words * bits.c,
            sram_accesses={
                "ifmap_sram_reads": acc["ifmap_reads"], "filter_sram_reads": acc["filter_reads"],
                "ofmap_sram_writes": acc["ofmap_writes"], "ofmap_sram_reads": acc["ofmap_reads"],
                "ifmap_sram_writes": dram["ifmap"] // ab, "filter_sram_writes": dram["filter"] // wb,
            },
        )
        sp = layer.compression.sparsity
        if sp.kind not in ("dense", "channel", "filter"):
            prog.notes.append(f"{sp.kind} sparsity (density {sp.effective_density:.2f}) executed dense: this array does not skip zeros")
        if sparse_reason:
            prog.notes.append(sparse_reason)
        if hw.stall_model == "scalesim_user":
            prog.topology = topology_row(layer)
        return prog

    def _lower_vector(self, layer: Elementwise | Pool, hw: SystolicArray) -> LayerProgram:
        """On a ``cols``-lane vector unit, bound by DRAM; cycles counted 0-based like the folds."""
        ab = layer.compression.quant.act_bits
        w = vector_work(layer, hw.cols, ab)
        tiles = stream_tiles(w.read_bits, w.cycles, w.write_bits, ceil_div(w.read_bits, hw.ifmap_sram.size_bits // 2))
        actions = [
            Action("vector", "op", w.ops, ab),
            Action("ifmap_sram", "write", layer.input_words, ab),
            Action("ifmap_sram", "read", layer.input_words, ab),
            Action("ofmap_sram", "write", layer.output_words, ab),
            Action("ofmap_sram", "read", layer.output_words, ab),
            Action("dram", "read", layer.input_words, ab),
            Action("dram", "write", layer.output_words, ab),
        ]
        return vector_program(
            layer, w, engine="systolic.vector", body=peel_last(compress_runs(tiles)), actions=actions, pe_count=hw.cols,
            compute_cycles=w.cycles - 1,
            sram_accesses={"ifmap_sram_reads": layer.input_words, "ofmap_sram_writes": layer.output_words},
        )
