"""Systolic-array engine (output/weight/input stationary), SCALE-Sim-compatible compute model.

**Mapping.** A GEMM ``C[m x n] = A[m x k] B[k x n]`` is folded onto the ``R x C`` array as in
SCALE-Sim: ``(Sr, Sc, T)`` = ``(m, n, k)`` for OS, ``(k, n, m)`` for WS, ``(k, m, n)`` for IS;
``Sr`` maps to array rows, ``Sc`` to columns, ``T`` streams in time. There are
``ceil(Sr/R) * ceil(Sc/C)`` folds, column folds outer, row folds inner. Every fold takes the
full-array time (partial folds are padded) and folds do not overlap:
OS ``T + R + C - 2`` cycles per fold, WS/IS ``2R + C + T - 2`` (weight/input preload, stream,
drain). A layer's stall-free ``compute_cycles`` is the sum over folds minus one: cycles are
counted as SCALE-Sim counts them, up to the cycle in which the last output is written
(0-based). This equals SCALE-Sim 3.0.0 "Total Cycles" minus its stall cycles exactly.

**SRAM accesses** (words) per GEMM, as SCALE-Sim's demand matrices count them:
OS ifmap reads ``ceil(n/C) m k``, filter reads ``ceil(m/R) k n``, ofmap writes ``m n``;
WS ifmap ``ceil(n/C) m k``, filter ``k n``, ofmap writes ``ceil(k/R) m n`` (partial sums);
IS ifmap ``m k``, filter ``ceil(m/C) k n``, ofmap writes ``ceil(k/R) m n``. (SCALE-Sim adds a
spurious ``folds * (R + C)`` to OS ofmap writes; we do not.) Partial-sum read-backs
(``(ceil(k/R) - 1) m n``) and the drain of outputs to DRAM are counted as ofmap SRAM reads.

**DRAM traffic** (our model; SCALE-Sim's own counts are reproduced only in ``scalesim_user``
mode). Each SRAM is split in two halves (double buffering). An input operand whose unique size
fits in half its SRAM is fetched once. Otherwise an operand indexed only by the inner (row)
fold is refetched for every column fold; one indexed only by the outer (column) fold is
reused across the row folds when its slice fits in half the SRAM; one indexed by both is
fetched fold by fold (each element once). For convolutions the unique input words of a slice
are whole input rows (line-buffer assumption), so halos are refetched. Partial sums (WS/IS)
stay in the ofmap SRAM while one column fold's block fits in half of it; otherwise every row
fold spills them to DRAM at ``accumulator_bits`` and reads them back. Outputs are written
once at activation precision. A fold whose loads exceed half an SRAM is split into sub-tiles.

**Memory-bound layers** (element-wise, pooling) run on a vector unit of ``cols`` lanes
(1 op per lane per cycle) and are bound by DRAM traffic.

**Energy actions.** MACs at the layer's weight/activation widths. PE registers: in OS both
operands are forwarded to the neighbour (one register write each per MAC) and the sum stays in
the MAC's accumulator; in WS/IS the stationary operand is read, the moving operand and the
partial sum (``accumulator_bits``) are forwarded. SRAM reads/writes as above (fills = DRAM
reads); DRAM reads and writes per operand. Leakage is added by the simulator from time.

**Ignored**: bank conflicts, DRAM row-buffer effects, pipelining across layers, depthwise
packing of several groups into one fold (groups run one after another), sparsity (dense
mapping; see the sparse options of later engines).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..hardware.systolic import SystolicArray
from ..stats import Action, LayerProgram, Node, Repeat, StallOverride, Tile, compress_runs
from ..workload.layer import Elementwise, Gemm, LayerBase, Pool, ceil_div
from ..workload.workload import Workload
from .base import register_engine


@dataclass(frozen=True)
class FoldPlan:
    """How one GEMM folds onto the array."""

    sr: int
    sc: int
    t: int
    row_folds: int
    col_folds: int
    cycles_per_fold: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds


def fold_plan(g: Gemm, rows: int, cols: int, dataflow: str) -> FoldPlan:
    if dataflow == "os":
        sr, sc, t = g.m, g.n, g.k
        per = t + rows + cols - 2
    elif dataflow == "ws":
        sr, sc, t = g.k, g.n, g.m
        per = 2 * rows + cols + t - 2
    elif dataflow == "is":
        sr, sc, t = g.k, g.m, g.n
        per = 2 * rows + cols + t - 2
    else:  # pragma: no cover - validated by the config
        raise ValueError(dataflow)
    return FoldPlan(sr, sc, t, ceil_div(sr, rows), ceil_div(sc, cols), per)


def sram_word_accesses(g: Gemm, plan: FoldPlan, dataflow: str) -> dict[str, int]:
    """SRAM accesses (words) of one GEMM repetition, as SCALE-Sim counts them."""
    m, n, k = g.m, g.n, g.k
    if dataflow == "os":
        out = {"ifmap_reads": plan.col_folds * m * k, "filter_reads": plan.row_folds * k * n, "ofmap_writes": m * n}
    elif dataflow == "ws":
        out = {"ifmap_reads": plan.col_folds * m * k, "filter_reads": k * n, "ofmap_writes": plan.row_folds * m * n}
    else:
        out = {"ifmap_reads": m * k, "filter_reads": plan.col_folds * k * n, "ofmap_writes": plan.row_folds * m * n}
    psum_readback = (plan.row_folds - 1) * m * n if dataflow in ("ws", "is") else 0
    out["ofmap_reads"] = psum_readback + m * n
    return out


@dataclass
class _Bits:
    a: int
    b: int
    c: int
    psum: int


def _peel_last(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Rewrite so the final tile is explicit and one cycle shorter (SCALE-Sim's 0-based count)."""
    if not nodes:
        return nodes
    *head, last = nodes
    if isinstance(last, Tile):
        return (*head, Tile(last.load_bits, max(last.compute_cycles - 1, 0), last.store_bits, last.decode_cycles))
    if last.count == 0:
        return (*_peel_last(tuple(head)), last)
    rest: list[Node] = list(head)
    if last.count > 1:
        rest.append(Repeat(last.body, last.count - 1))
    return (*rest, *_peel_last(last.body))


def _split(tile: Tile, parts: int) -> list[Tile]:
    """Split a fold whose loads exceed a buffer half into ``parts`` streamed sub-tiles."""
    parts = min(parts, max(tile.compute_cycles, 1))
    if parts <= 1:
        return [tile]
    out = []
    for i in range(parts):
        lb = tile.load_bits * (i + 1) // parts - tile.load_bits * i // parts
        cc = tile.compute_cycles * (i + 1) // parts - tile.compute_cycles * i // parts
        sb = tile.store_bits if i == parts - 1 else 0
        out.append(Tile(lb, cc, sb))
    return out


class _GemmLowering:
    """Fold-by-fold loads/stores of one GEMM repetition on a systolic array."""

    def __init__(self, g: Gemm, hw: SystolicArray, bits: _Bits, b_resident_from_before: bool = False):
        self.g, self.hw, self.bits = g, hw, bits
        self.plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
        self.cap_a = hw.ifmap_sram.size_bits // 2
        self.cap_b = hw.filter_sram.size_bits // 2
        self.cap_c = hw.ofmap_sram.size_bits // 2
        self.b_preloaded = b_resident_from_before
        self.dram_a = self.dram_b = self.dram_psum_read = 0
        self.dram_c = self.dram_psum_write = 0

    # unique words of slices -----------------------------------------------------------
    def _a_rows(self, lo: int, hi: int) -> int:
        return self.g.a_words_for_rows(lo, hi)

    def _slice_sizes(self, r: int, c: int) -> tuple[int, int]:
        """(A words, B words) fold (r, c) uses; cumulative division keeps totals exact."""
        g, p, hw = self.g, self.plan, self.hw
        r0, r1 = r * hw.rows, min((r + 1) * hw.rows, p.sr)
        c0, c1 = c * hw.cols, min((c + 1) * hw.cols, p.sc)
        if hw.dataflow == "os":  # A rows [r0, r1) x all k; B all k x cols [c0, c1)
            return self._a_rows(r0, r1), g.k * (c1 - c0)
        if hw.dataflow == "ws":  # A all m x k-range [r0, r1); B k-range x n-range
            return g.a_unique * r1 // g.k - g.a_unique * r0 // g.k, (r1 - r0) * (c1 - c0)
        # is: A m-range [c0, c1) x k-range [r0, r1); B k-range x all n
        rows_words = self._a_rows(c0, c1)
        return rows_words * r1 // g.k - rows_words * r0 // g.k, (r1 - r0) * g.n

    def _psum_block(self, c: int) -> int:
        p, hw, g = self.plan, self.hw, self.g
        c0, c1 = c * hw.cols, min((c + 1) * hw.cols, p.sc)
        if hw.dataflow == "ws":
            return g.m * (c1 - c0)
        return (c1 - c0) * g.n  # is

    def tiles(self) -> tuple[Node, ...]:
        g, p, hw, bits = self.g, self.plan, self.hw, self.bits
        df = hw.dataflow
        a_total_bits = g.a_unique * bits.a
        b_total_bits = g.b_unique * bits.b
        a_resident = a_total_bits <= self.cap_a
        b_resident = b_total_bits <= self.cap_b
        col_iters: list[tuple[Node, ...]] = []
        for c in range(p.col_folds):
            fold_tiles: list[Tile] = []
            psum_bits = self._psum_block(c) * bits.psum if df != "os" else 0
            psum_on_chip = psum_bits <= self.cap_c
            for r in range(p.row_folds):
                a_words, b_words = self._slice_sizes(r, c)
                load = 0
                # operand A
                if df in ("os", "ws"):  # indexed by the row fold only
                    fetch_a = (c == 0) or not a_resident
                else:  # is: A indexed by both folds
                    fetch_a = True
                if fetch_a:
                    load += a_words * bits.a
                    self.dram_a += a_words * bits.a
                # operand B
                if self.b_preloaded:
                    fetch_b = False
                elif df == "os":  # indexed by the column fold only
                    fetch_b = r == 0 or b_words * bits.b > self.cap_b
                elif df == "ws":  # both
                    fetch_b = True
                else:  # is: row fold only
                    fetch_b = (c == 0) or not b_resident
                if fetch_b:
                    load += b_words * bits.b
                    self.dram_b += b_words * bits.b
                # outputs
                store = 0
                if df == "os":
                    r0, r1 = r * hw.rows, min((r + 1) * hw.rows, p.sr)
                    c0, c1 = c * hw.cols, min((c + 1) * hw.cols, p.sc)
                    store = (r1 - r0) * (c1 - c0) * bits.c
                    self.dram_c += store
                else:
                    block = self._psum_block(c)
                    last = r == p.row_folds - 1
                    if last:
                        store = block * bits.c
                        self.dram_c += store
                    elif not psum_on_chip:
                        store = block * bits.psum
                        self.dram_psum_write += store
                    if r > 0 and not psum_on_chip:
                        load += block * bits.psum
                        self.dram_psum_read += block * bits.psum
                parts = max(
                    ceil_div(a_words * bits.a, self.cap_a) if fetch_a else 1,
                    ceil_div(b_words * bits.b, self.cap_b) if fetch_b else 1,
                    1,
                )
                fold_tiles.extend(_split(Tile(load, p.cycles_per_fold, store), parts))
            col_iters.append(compress_runs(fold_tiles))
        # compress identical column iterations
        out: list[Node] = []
        i = 0
        while i < len(col_iters):
            j = i
            while j + 1 < len(col_iters) and col_iters[j + 1] == col_iters[i]:
                j += 1
            n = j - i + 1
            out.extend(col_iters[i]) if n == 1 else out.append(Repeat(col_iters[i], n))
            i = j + 1
        return tuple(out)


@register_engine("systolic")
class SystolicEngine:
    """Engine for :class:`~accelsim.hardware.systolic.SystolicArray`."""

    kind = "systolic"

    def supports(self, layer: LayerBase, hw: SystolicArray) -> tuple[bool, str]:  # type: ignore[override]
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
            return True, f"{sp.kind} sparsity runs dense on this array (no zero skipping)"
        return True, ""

    # ------------------------------------------------------------------------------------
    def lower(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None = None) -> LayerProgram:  # type: ignore[override]
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        q = layer.compression.quant
        bits = _Bits(a=q.act_bits, b=q.weight_bits, c=q.act_bits, psum=hw.energy.accumulator_bits)
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
            first = _GemmLowering(g, hw, bits)
            first_nodes = first.tiles()
            nodes.extend(first_nodes)
            lowerings = [(first, 1)]
            if g.count > 1:
                b_fits = g.b_unique * bits.b <= hw.filter_sram.size_bits // 2
                rest = _GemmLowering(g, hw, bits, b_resident_from_before=b_shared and b_fits)
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
        body = _peel_last(tuple(nodes))
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
        if hw.stall_model == "scalesim_user":
            prog.stall_override = self._scalesim_user(layer, hw)
        elif hw.stall_model == "none":
            prog.stall_override = StallOverride(0, 0, 0, source="ideal bandwidth (stall_model: none)")
        return prog

    # ------------------------------------------------------------------------------------
    def _scalesim_user(self, layer: LayerBase, hw: SystolicArray) -> StallOverride:
        from .scalesim_compat import ScaleSimArray, ScaleSimLayer, simulate_user_mode

        g = layer.gemms()[0]
        if g.conv is not None:
            c = g.conv
            sl = ScaleSimLayer(c.in_h, c.in_w, c.kernel_h, c.kernel_w, c.channels, g.n, c.stride_h)
        else:
            sl = ScaleSimLayer(g.m, g.k, 1, g.k, 1, g.n, 1)
        ports = hw.scalesim_ports
        assert ports is not None
        arr = ScaleSimArray(
            hw.rows, hw.cols, hw.dataflow, hw.ifmap_sram.size_kb, hw.filter_sram.size_kb, hw.ofmap_sram.size_kb,
            ports.ifmap_words_per_cycle, ports.filter_words_per_cycle, ports.ofmap_words_per_cycle,
        )
        res = simulate_user_mode(sl, arr)
        extra = res.total_cycles_incl_prefetch - res.compute_cycles
        return StallOverride(res.stall_cycles, fill_cycles=max(extra, 0), drain_cycles=0,
                             source="SCALE-Sim 3.0.0 USER-mode emulation" + ("" if res.exact else " (approximate)"))

    def _lower_vector(self, layer: Elementwise | Pool, hw: SystolicArray) -> LayerProgram:
        q = layer.compression.quant
        ab = q.act_bits
        ops = layer.vector_ops
        cycles = max(ceil_div(ops, hw.cols), 1)
        read_bits = layer.input_words * ab
        write_bits = layer.output_words * ab
        tiles = _split(Tile(read_bits, cycles, write_bits), ceil_div(read_bits, hw.ifmap_sram.size_bits // 2))
        body = _peel_last(compress_runs(tiles))
        actions = [
            Action("vector", "op", ops, ab),
            Action("ifmap_sram", "write", layer.input_words, ab),
            Action("ifmap_sram", "read", layer.input_words, ab),
            Action("ofmap_sram", "write", layer.output_words, ab),
            Action("ofmap_sram", "read", layer.output_words, ab),
            Action("dram", "read", layer.input_words, ab),
            Action("dram", "write", layer.output_words, ab),
        ]
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="systolic.vector", body=body, compute_cycles=cycles - 1,
            actions=actions, macs=0, dense_macs=0, pe_count=hw.cols, mapping_efficiency=1.0,
            dram_read_bits={"ifmap": read_bits}, dram_write_bits={"ofmap": write_bits},
            compulsory_read_bits=read_bits, compulsory_write_bits=write_bits,
            sram_accesses={"ifmap_sram_reads": layer.input_words, "ofmap_sram_writes": layer.output_words},
        )
        if hw.stall_model == "none":
            prog.stall_override = StallOverride(0, 0, 0, source="ideal bandwidth (stall_model: none)")
        return prog
