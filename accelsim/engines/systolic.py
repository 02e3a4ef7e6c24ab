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

**Sparse options** (``hw.sparse``, all off by default; dense layers and the default config
run exactly the dense mapping above). Per fold ``(r, c)`` the streaming dimension ``T`` shrinks
or the fold is skipped; fill/drain per fold are unchanged:

- ``nm_speedup``: an N:M layer that fits the datapath's ``nm_n:nm_m`` (checked on the real mask
  when there is one) runs as a dense GEMM with reduction ``ceil(k * nm_n / nm_m)``; weights
  carry ``log2(nm_m)`` metadata bits each; activations are read and fetched dense.
- ``zero_skipping``: compressed weights (values + ``index_bits`` each). OS: a column fold
  streams ``max`` over its output channels of their non-zero count (load imbalance); WS: each
  column's non-zeros are packed into ``ceil(max nnz / R)`` row folds, the rest are skipped;
  IS cannot pack (the reduction is spatial and the outputs stream), so only output channels
  with no non-zero in a row fold's reduction range are skipped. Matching activations to packed
  weights is assumed to happen in the PEs' operand registers (no extra SRAM reads counted).
- ``block_skipping``: a fold skips what is all-zero in its weight tile -- OS reduction steps
  with no non-zero in the column fold, WS whole empty tiles, IS empty output channels; kept
  tiles are stored dense plus one index per kept step/tile. Executed MACs include the zeros
  inside kept tiles.
- ``bit_serial``: ``T -> ceil(T * weight_bits / word_bits)``; MACs priced as ``weight_bits``
  shift-adds (``bit_serial_mac``).

Without a mask, expected structures for i.i.d. non-zeros (or i.i.d. kept blocks) are used:
``E[max]`` of binomial counts for the load imbalance, ``1 - (1 - d)^units`` for a tile or step
being non-empty. Partial-sum traffic is counted as in the dense mapping.

**Ignored**: bank conflicts, DRAM row-buffer effects, pipelining across layers, depthwise
packing of several groups into one fold (groups run one after another).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..hardware.systolic import SystolicArray
from ..stats import Action, LayerProgram, Node, Repeat, StallOverride, Tile, compress_runs, split_tile
from ..workload.layer import Elementwise, Gemm, LayerBase, Pool, ceil_div
from ..workload.workload import Workload
from .base import register_engine

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


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




class _GemmLowering:
    """Fold-by-fold loads/stores of one GEMM repetition on a systolic array."""

    def __init__(self, g: Gemm, hw: SystolicArray, bits: _Bits, b_resident_from_before: bool = False,
                 sparse: "FoldOverrides | None" = None):
        self.g, self.hw, self.bits = g, hw, bits
        self.plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
        self.sparse = sparse  # per-fold cycles / weight bits of a sparse mapping (None: dense)
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
        sp_bits = self.sparse is not None and self.sparse.b_bits is not None
        b_total_bits = self.sparse.b_total_bits if sp_bits else g.b_unique * bits.b  # type: ignore[union-attr]
        a_resident = a_total_bits <= self.cap_a
        b_resident = b_total_bits <= self.cap_b
        col_iters: list[tuple[Node, ...]] = []
        for c in range(p.col_folds):
            fold_tiles: list[Tile] = []
            psum_bits = self._psum_block(c) * bits.psum if df != "os" else 0
            psum_on_chip = psum_bits <= self.cap_c
            for r in range(p.row_folds):
                a_words, b_words = self._slice_sizes(r, c)
                b_bits = int(self.sparse.b_bits[r, c]) if sp_bits else b_words * bits.b  # type: ignore[union-attr,index]
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
                    fetch_b = r == 0 or b_bits > self.cap_b
                elif df == "ws":  # both
                    fetch_b = True
                else:  # is: row fold only
                    fetch_b = (c == 0) or not b_resident
                if fetch_b:
                    load += b_bits
                    self.dram_b += b_bits
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
                    ceil_div(b_bits, self.cap_b) if fetch_b else 1,
                    1,
                )
                cycles = p.cycles_per_fold if self.sparse is None else int(self.sparse.cycles[r, c])
                fold_tiles.extend(split_tile(Tile(load, cycles, store), parts))
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
            return True, f"{sp.kind} sparsity runs dense unless a matching hw.sparse option is on"
        return True, ""

    # ------------------------------------------------------------------------------------
    def lower(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None = None) -> LayerProgram:  # type: ignore[override]
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        sparse_reason = ""
        if hw.sparse.any:
            from .masks import layer_mask

            mask = layer_mask(workload, layer)
            mode, sparse_reason = self.sparse_mode(layer, hw, mask)
            if mode is not None:
                return self._lower_sparse(layer, hw, workload, mode, sparse_reason, mask)
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
        if sparse_reason:
            prog.notes.append(sparse_reason)
        if hw.stall_model == "scalesim_user":
            prog.stall_override = self._scalesim_user(layer, hw)
        elif hw.stall_model == "none":
            prog.stall_override = StallOverride(0, 0, 0, source="ideal bandwidth (stall_model: none)")
        return prog

    # ------------------------------------------------------------------------------------
    _SKIPPABLE = ("unstructured", "pattern", "gs", "nm", "block")

    def sparse_mode(self, layer: LayerBase, hw: SystolicArray, mask: "np.ndarray | None" = None) -> tuple[str | None, str]:
        """How ``hw.sparse`` runs ``layer``: (``nm`` | ``zero`` | ``block`` | ``bits`` | None, reason).

        None is the dense mapping (SCALE-Sim-compatible). ``bits``: dense structure on bit-serial PEs.
        """
        o = hw.sparse
        sp = layer.compression.sparsity
        if not o.any or isinstance(layer, (Elementwise, Pool)):
            return None, ""
        if o.nm_speedup and sp.kind == "nm":
            ok, why = self._nm_fits(layer, hw, mask)
            if ok:
                return "nm", f"{sp.n}:{sp.m} on the {o.nm_n}:{o.nm_m} sparse datapath ({o.nm_m / o.nm_n:g}x reduction)"
            reason = why
        else:
            reason = ""
        if o.zero_skipping and sp.kind in self._SKIPPABLE:
            return "zero", (reason + "; " if reason else "") + f"zero skipping of {sp.kind} weights"
        if o.block_skipping and sp.kind in self._SKIPPABLE:
            return "block", (reason + "; " if reason else "") + f"all-zero {sp.kind} tiles skipped"
        if o.bit_serial:
            return "bits", (reason + "; " if reason else "") + "bit-serial PEs, no sparsity skipping"
        return None, reason

    @staticmethod
    def _nm_fits(layer: LayerBase, hw: SystolicArray, mask: "np.ndarray | None") -> tuple[bool, str]:
        o, sp = hw.sparse, layer.compression.sparsity
        hn, hm = o.nm_n, o.nm_m
        if mask is not None:
            from .masks import gemm_weight_views, nm_group_counts

            for v in gemm_weight_views(layer, mask):
                worst = int(nm_group_counts(v, hm).max()) if v.size else 0
                if worst > hn:
                    return False, f"mask has {worst} non-zeros in a group of {hm}: does not fit the {hn}:{hm} datapath"
            return True, ""
        n, m = sp.n or 1, sp.m or 1
        if (m % hm == 0 and n <= hn) or (hm % m == 0 and n * (hm // m) <= hn):
            return True, ""
        return False, f"{n}:{m} does not fit the {hn}:{hm} datapath"

    def _lower_sparse(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None, mode: str, reason: str,
                      mask: "np.ndarray | None") -> LayerProgram:
        import numpy as np

        from .gs_kernels import ceil_log2
        from .masks import gemm_weight_views

        o = hw.sparse
        q = layer.compression.quant
        sp = layer.compression.sparsity
        wb, ab, pb = q.weight_bits, q.act_bits, hw.energy.accumulator_bits
        ib = sp.index_bits or o.index_bits
        meta = ceil_log2(o.nm_m)
        views = gemm_weight_views(layer, mask) if mask is not None and mode in ("zero", "block") else None
        unit = (sp.block_h or 1, sp.block_w or 1) if sp.kind == "block" else (1, 1)
        nodes: list[Node] = []
        acc = {"ifmap_reads": 0, "filter_reads": 0, "ofmap_writes": 0, "ofmap_reads": 0}
        dram = {"ifmap": 0, "filter": 0, "index": 0, "psum": 0}
        dram_w = {"ofmap": 0, "psum": 0}
        compulsory = 0
        macs = 0
        eff_num = 0.0
        eff_den = 0
        compute_cycles = 0
        index_reads = 0
        for gi, g in enumerate(layer.gemms()):
            gmode = mode if g.b_is_weight else ("bits" if o.bit_serial else "dense")
            lowerings: list[tuple[_GemmLowering, int, int, dict[str, int], int, float]] = []
            # (lowering, times, macs per rep, sram per rep, value-bit share numerator, value share)

            folds_cache: dict[int, _SparseFolds] = {}

            def make(inst: int, preloaded: bool) -> tuple[_GemmLowering, int, dict[str, int], float]:
                if gmode == "nm":
                    k2 = ceil_div(g.k * o.nm_n, o.nm_m)
                    ge = _CompressedGemm(g.m, g.n, k2, g.count, a_words=g.a_unique, b_is_weight=g.b_is_weight,
                                         b_instances=g.b_instances, tag=g.tag, conv=g.conv, a_k=g.k)
                    plan = fold_plan(ge, hw.rows, hw.cols, hw.dataflow)
                    ov = None
                    if o.bit_serial:
                        ov = FoldOverrides(_fold_cycles(np.full((plan.row_folds, plan.col_folds), plan.t), hw, wb))
                    low = _GemmLowering(ge, hw, _Bits(ab, wb + meta, ab, pb), preloaded, sparse=ov)
                    sram = sram_word_accesses(ge, plan, hw.dataflow)
                    sram["ifmap_reads"] = sram_word_accesses(g, fold_plan(g, hw.rows, hw.cols, hw.dataflow),
                                                             hw.dataflow)["ifmap_reads"]
                    return low, ge.m * ge.n * ge.k, sram, wb / (wb + meta)
                plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
                if gmode in ("zero", "block"):
                    if inst not in folds_cache:
                        w_kn = views[gi][inst % views[gi].shape[0]].T if views is not None else None
                        folds_cache[inst] = sparse_folds(g, plan, hw, gmode, w_kn, unit, sp.effective_density, wb, ib)
                    sf = folds_cache[inst]
                    ov = FoldOverrides(_fold_cycles(sf.t, hw, wb), sf.b_bits, sf.b_total_bits)
                    low = _GemmLowering(g, hw, _Bits(ab, wb, ab, pb), preloaded, sparse=ov)
                    sram = dict(sf.sram)
                    share = sf.value_bits / sf.b_total_bits if sf.b_total_bits else 1.0
                    return low, sf.macs, sram, share
                # dense structure (activation operands, or bit-serial only)
                ov = None
                if o.bit_serial:
                    ov = FoldOverrides(_fold_cycles(np.full((plan.row_folds, plan.col_folds), plan.t), hw, wb))
                low = _GemmLowering(g, hw, _Bits(ab, wb if g.b_is_weight else ab, ab, pb), preloaded, sparse=ov)
                return low, g.m * g.n * g.k, sram_word_accesses(g, plan, hw.dataflow), 1.0

            per_instance = views is not None and g.b_distinct > 1
            if not per_instance:
                first, mac1, sram1, share = make(0, False)
                nodes.extend(first.tiles())
                lowerings.append((first, 1, mac1, sram1, 0, share))
                if g.count > 1:
                    fs = first.sparse
                    b_total = fs.b_total_bits if fs is not None and fs.b_bits is not None else first.g.b_unique * first.bits.b
                    b_fits = b_total <= hw.filter_sram.size_bits // 2
                    rest, _, _, _ = make(0, g.b_distinct == 1 and b_fits)
                    nodes.append(Repeat(rest.tiles(), g.count - 1))
                    lowerings.append((rest, g.count - 1, mac1, sram1, 0, share))
            else:
                passes = g.count // g.b_distinct
                inst_nodes: list[Node] = []
                for i in range(g.b_distinct):
                    low, mac_i, sram_i, share = make(i, False)
                    inst_nodes.extend(low.tiles())
                    lowerings.append((low, passes, mac_i, sram_i, 0, share))
                nodes.extend(inst_nodes) if passes == 1 else nodes.append(Repeat(tuple(inst_nodes), passes))
            g_acc = {"ifmap_reads": 0, "filter_reads": 0, "ofmap_writes": 0}
            for low, times, mac_r, sram_r, _, share in lowerings:
                dram["ifmap"] += low.dram_a * times
                dram["filter"] += int(round(low.dram_b * share)) * times
                dram["index"] += (low.dram_b - int(round(low.dram_b * share))) * times
                dram["psum"] += low.dram_psum_read * times
                dram_w["ofmap"] += low.dram_c * times
                dram_w["psum"] += low.dram_psum_write * times
                macs += mac_r * times
                for key in g_acc:
                    g_acc[key] += sram_r[key] * times
                if low.sparse is not None:
                    compute_cycles += int(low.sparse.cycles.sum()) * times
                else:
                    compute_cycles += low.plan.folds * low.plan.cycles_per_fold * times
                eff_num += low.plan.sr * low.plan.sc / (hw.rows * hw.cols) * times
                eff_den += low.plan.folds * times
                if gmode in ("zero", "nm"):
                    index_reads += sram_r["filter_reads"] * times
            outs = g.c_unique * g.count
            for key, val in g_acc.items():
                acc[key] += val
            # partial sums (WS/IS) written beyond the final outputs are read back once each
            acc["ofmap_reads"] += max(g_acc["ofmap_writes"] - outs, 0) + outs
            stored = [(x.sparse.b_total_bits if x.sparse is not None and x.sparse.b_bits is not None
                       else x.g.b_unique * x.bits.b) for x, *_ in lowerings]
            b_stored = sum(stored) if per_instance else stored[0] * g.b_distinct
            compulsory += g.a_unique * ab * g.count + b_stored
        compute_cycles -= 1
        body = _peel_last(tuple(nodes))
        outputs = sum(g.c_unique * g.count for g in layer.gemms())
        psum_writes = max(acc["ofmap_writes"] - outputs, 0)
        mac_action = Action("mac", "bit_serial_mac", macs, wb, ab) if o.bit_serial else Action("mac", "mac", macs, wb, ab, q.scheme)
        actions = [mac_action]
        if hw.dataflow == "os":
            actions += [Action("pe_rf", "write", macs, wb), Action("pe_rf", "write", macs, ab)]
        else:
            stat, mov = (wb, ab) if hw.dataflow == "ws" else (ab, wb)
            actions += [Action("pe_rf", "read", macs, stat), Action("pe_rf", "write", macs, mov),
                        Action("pe_rf", "write", macs, pb)]
        idx_bits = meta if mode == "nm" else ib
        actions += [
            Action("ifmap_sram", "read", acc["ifmap_reads"], ab),
            Action("ifmap_sram", "write", dram["ifmap"] // ab, ab),
            Action("filter_sram", "read", acc["filter_reads"], wb),
            Action("filter_sram", "read", index_reads, idx_bits),
            Action("filter_sram", "write", (dram["filter"] + dram["index"]) // 8, 8),
            Action("ofmap_sram", "write", acc["ofmap_writes"] - psum_writes, ab),
            Action("ofmap_sram", "write", psum_writes, pb),
            Action("ofmap_sram", "read", acc["ofmap_reads"], pb if psum_writes else ab),
            Action("dram", "read", dram["ifmap"] // ab, ab),
            Action("dram", "read", (dram["filter"] + dram["index"]) // 8, 8),
            Action("dram", "read", dram["psum"] // pb, pb),
            Action("dram", "write", dram_w["ofmap"] // ab, ab),
            Action("dram", "write", dram_w["psum"] // pb, pb),
        ]
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine=f"systolic.{mode}", body=body, compute_cycles=compute_cycles,
            actions=[a for a in actions if a.count], macs=macs,
            dense_macs=layer.densified().macs if not layer.compression.is_dense else layer.macs,
            pe_count=hw.num_pes, mapping_efficiency=eff_num / eff_den if eff_den else 0.0,
            dram_read_bits=dict(dram), dram_write_bits=dict(dram_w), compulsory_read_bits=compulsory,
            compulsory_write_bits=layer.output_words * ab,
            sram_accesses={
                "ifmap_sram_reads": acc["ifmap_reads"], "filter_sram_reads": acc["filter_reads"],
                "ofmap_sram_writes": acc["ofmap_writes"], "ofmap_sram_reads": acc["ofmap_reads"],
                "ifmap_sram_writes": dram["ifmap"] // ab, "filter_sram_writes": (dram["filter"] + dram["index"]) // 8,
            },
            notes=[reason] if reason else [],
            extra={"index_dram_bytes": dram["index"] / 8},
        )
        if mode in ("zero", "block") and mask is None and sp.kind in self._SKIPPABLE:
            prog.notes.append(f"no mask: expected skipping for i.i.d. {'blocks' if sp.kind == 'block' else 'non-zeros'} "
                              f"at density {sp.effective_density:.3f}")
        if hw.stall_model == "none":
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
        tiles = split_tile(Tile(read_bits, cycles, write_bits), ceil_div(read_bits, hw.ifmap_sram.size_bits // 2))
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


# --- sparse mappings (hw.sparse) ----------------------------------------------------------------

@dataclass(frozen=True)
class FoldOverrides:
    """Per-fold cycles and weight bits of a sparse mapping (row_folds x col_folds arrays)."""

    cycles: "np.ndarray"
    b_bits: "np.ndarray | None" = None  # None: the dense slices at the weight width
    b_total_bits: int = 0


@dataclass(frozen=True)
class _CompressedGemm(Gemm):
    """A GEMM whose reduction the hardware compressed (N:M) while activations stay dense."""

    a_k: int = 0

    def a_words_for_rows(self, lo: int, hi: int) -> int:
        if self.conv is not None:
            return self.conv.input_words_for_pixels(lo, hi)
        return max(hi - lo, 0) * self.a_k


@dataclass
class _SparseFolds:
    """A sparse weight matrix on the fold grid: streaming steps per fold, stored bits, counts."""

    t: "np.ndarray"          # (row_folds, col_folds) streaming steps (0 = fold skipped)
    b_bits: "np.ndarray"     # weight bits fold (r, c) fetches when it fetches its slice
    b_total_bits: int
    macs: int                # executed MACs per repetition
    sram: dict[str, int]     # SRAM word accesses per repetition (SCALE-Sim's keys)
    value_bits: int          # stored weight values (bits) -- the rest of b_total_bits is index


def _extents(total: int, tile: int) -> "np.ndarray":
    import numpy as np

    n = ceil_div(total, tile)
    out = np.full(n, tile, dtype=np.int64)
    if total % tile:
        out[-1] = total % tile
    return out


def _expected_max_binom(k: int, d: float, count: int) -> float:
    from .gs_kernels import expected_max_binomial

    return expected_max_binomial(k, d, count)


def sparse_folds(g: Gemm, plan: FoldPlan, hw: SystolicArray, mode: str, w_kn: "np.ndarray | None",
                 unit: tuple[int, int], density: float, wb: int, ib: int) -> _SparseFolds:
    """Skipping structure of one weight matrix (``w_kn``: k x n bool, or None: expectation).

    ``mode``: ``zero`` (zero skipping) or ``block`` (all-zero tile skipping). ``unit`` is the
    (outputs, reduction) size of the independently kept units in expectation mode (block shape
    for block sparsity, 1 x 1 otherwise).
    """
    import numpy as np

    R, C, df = hw.rows, hw.cols, hw.dataflow
    m, n, k = g.m, g.n, g.k
    bh, bw = unit
    rows_r = _extents(plan.sr, R)
    cols_c = _extents(plan.sc, C)
    nrf, ncf = plan.row_folds, plan.col_folds
    t = np.zeros((nrf, ncf), dtype=np.int64)
    b_bits = np.zeros((nrf, ncf), dtype=np.int64)
    if w_kn is not None:
        nnz_o = w_kn.sum(axis=0, dtype=np.int64)  # per output channel
    else:
        nnz_o = None
    d = density
    if df in ("os", "ws"):
        # column folds are output-channel ranges
        lo = np.arange(ncf) * C
        if w_kn is not None:
            assert nnz_o is not None
            maxnnz = np.array([int(nnz_o[a:a + c].max()) for a, c in zip(lo, cols_c)])
            sumnnz = np.array([int(nnz_o[a:a + c].sum()) for a, c in zip(lo, cols_c)])
            union = np.array([int(w_kn[:, a:a + c].any(axis=1).sum()) for a, c in zip(lo, cols_c)])
        else:
            u_r = -(-cols_c // bh)
            strips = ceil_div(k, bw)
            maxnnz = np.array([min(k, int(round(bw * _expected_max_binom(strips, d, int(u))))) for u in u_r])
            sumnnz = np.rint(cols_c * k * d).astype(np.int64)
            union = np.rint(k * (1.0 - (1.0 - d) ** u_r)).astype(np.int64)
        if df == "os":  # T = k per column fold
            tc = maxnnz if mode == "zero" else union
            t[:, :] = tc[None, :]
            if mode == "zero":
                per_c = sumnnz * (wb + ib)
                value = int(sumnnz.sum()) * wb
            else:
                per_c = tc * cols_c * wb + tc * ib
                value = int((tc * cols_c).sum()) * wb
            b_bits[:, :] = per_c[None, :]
            macs = (int(sumnnz.sum()) if mode == "zero" else int((tc * cols_c).sum())) * m
            steps = int(tc.sum())
            sram = {"ifmap_reads": steps * m, "filter_reads": nrf * (int(sumnnz.sum()) if mode == "zero"
                                                                        else int((tc * cols_c).sum())),
                    "ofmap_writes": m * n}
            total = int(per_c.sum())
        else:  # ws: rows = k-ranges, T = m
            if mode == "zero":
                folds_c = -(-maxnnz // R)
                kept = np.arange(nrf)[:, None] < folds_c[None, :]
                packed = np.zeros((nrf, ncf), dtype=np.int64)
                if w_kn is not None:
                    assert nnz_o is not None
                    for c, (a, cc) in enumerate(zip(lo, cols_c)):
                        nz = nnz_o[a:a + cc]
                        for r in range(int(folds_c[c])):
                            packed[r, c] = int(np.clip(nz - r * R, 0, R).sum())
                else:
                    for c in range(ncf):
                        per_out = k * d
                        for r in range(int(folds_c[c])):
                            packed[r, c] = int(round(cols_c[c] * min(max(per_out - r * R, 0.0), R)))
                b_bits = packed * (wb + ib)
                value = int(packed.sum()) * wb
                macs = int(sumnnz.sum()) * m
                filt = int(packed.sum())
            else:
                if w_kn is not None:
                    kept = np.zeros((nrf, ncf), dtype=bool)
                    for r in range(nrf):
                        for c, (a, cc) in enumerate(zip(lo, cols_c)):
                            kept[r, c] = bool(w_kn[r * R:r * R + rows_r[r], a:a + cc].any())
                else:
                    kept = np.zeros((nrf, ncf), dtype=bool)
                    for c in range(ncf):
                        blocks = (-(-rows_r // bw)) * ceil_div(int(cols_c[c]), bh)
                        p_keep = 1.0 - (1.0 - d) ** blocks
                        nkeep = int(round(float(p_keep.mean()) * nrf))
                        kept[:nkeep, c] = True
                words = rows_r[:, None] * cols_c[None, :]
                b_bits = np.where(kept, words * wb + ib, 0)
                value = int(np.where(kept, words, 0).sum()) * wb
                macs = int(np.where(kept, words, 0).sum()) * m
                filt = int(np.where(kept, words, 0).sum())
            t = np.where(kept, m, 0).astype(np.int64)
            sram = {"ifmap_reads": int(np.where(kept, rows_r[:, None], 0).sum()) * m, "filter_reads": filt,
                    "ofmap_writes": int(np.where(kept, cols_c[None, :], 0).sum()) * m}
            total = int(b_bits.sum())
    else:  # is: rows = k-ranges, columns = pixels, T = n output channels
        lo = np.arange(nrf) * R
        if w_kn is not None:
            tr = np.array([int(w_kn[a:a + rr, :].any(axis=0).sum()) for a, rr in zip(lo, rows_r)])
        else:  # an output is streamed when one of its units in the k-range is kept; whole folds may empty
            p_o = 1.0 - (1.0 - d) ** (-(-rows_r // bw))
            p_empty = (1.0 - p_o) ** ceil_div(n, bh)
            tr = np.rint(n * p_o / np.maximum(1.0 - p_empty, 1e-12)).astype(np.int64)
            empty = int(round(float(p_empty.mean()) * nrf))
            if empty:
                tr[nrf - empty:] = 0
        t[:, :] = tr[:, None]
        per_r = tr * rows_r * wb + tr * ib
        b_bits[:, :] = per_r[:, None]
        value = int((tr * rows_r).sum()) * wb
        macs = int((tr * rows_r).sum()) * m
        sram = {"ifmap_reads": int(rows_r[tr > 0].sum()) * m, "filter_reads": ncf * int((tr * rows_r).sum()),
                "ofmap_writes": int(tr.sum()) * m}
        total = int(per_r.sum())
    return _SparseFolds(t, b_bits, total, macs, sram, value)


def _fold_cycles(t: "np.ndarray", hw: SystolicArray, wb: int) -> "np.ndarray":
    """Cycles of each fold from its streaming steps (bit-serial scaling, 0 = skipped)."""
    import numpy as np

    if hw.sparse.bit_serial:
        t = -(-(t * wb) // hw.word_bits)
    R, C = hw.rows, hw.cols
    per = t + R + C - 2 if hw.dataflow == "os" else 2 * R + C + t - 2
    return np.where(t > 0, per, 0).astype(np.int64)
