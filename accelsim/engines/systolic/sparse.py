"""Sparse mappings of the systolic array (``hw.sparse``).

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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hardware.systolic import SystolicArray
from ...stats import Action, LayerProgram, Node, Repeat
from ...workload.layer import Elementwise, Gemm, LayerBase, Pool, ceil_div
from ...workload.workload import Workload
from ..lowering import peel_last
from .folds import FoldOverrides, FoldPlan, GemmLowering, OperandBits, fold_plan, sram_word_accesses
from .program import LayerCounters, systolic_program

SKIPPABLE = ("unstructured", "pattern", "gs", "nm", "block")


def sparse_mode(layer: LayerBase, hw: SystolicArray, mask: "np.ndarray | None" = None) -> tuple[str | None, str]:
    """How ``hw.sparse`` runs ``layer``: (``nm`` | ``zero`` | ``block`` | ``bits`` | None, reason).

    None is the dense mapping (SCALE-Sim-compatible). ``bits``: dense structure on bit-serial PEs.
    """
    o = hw.sparse
    sp = layer.compression.sparsity
    if not o.any or isinstance(layer, (Elementwise, Pool)):
        return None, ""
    if o.nm_speedup and sp.kind == "nm":
        ok, why = nm_fits(layer, hw, mask)
        if ok:
            return "nm", f"{sp.n}:{sp.m} on the {o.nm_n}:{o.nm_m} sparse datapath ({o.nm_m / o.nm_n:g}x reduction)"
        reason = why
    else:
        reason = ""
    if o.zero_skipping and sp.kind in SKIPPABLE:
        return "zero", (reason + "; " if reason else "") + f"zero skipping of {sp.kind} weights"
    if o.block_skipping and sp.kind in SKIPPABLE:
        return "block", (reason + "; " if reason else "") + f"all-zero {sp.kind} tiles skipped"
    if o.bit_serial:
        return "bits", (reason + "; " if reason else "") + "bit-serial PEs, no sparsity skipping"
    return None, reason


def nm_fits(layer: LayerBase, hw: SystolicArray, mask: "np.ndarray | None") -> tuple[bool, str]:
    o, sp = hw.sparse, layer.compression.sparsity
    hn, hm = o.nm_n, o.nm_m
    if mask is not None:
        from ...workload.masks import gemm_weight_views, nm_group_counts

        for v in gemm_weight_views(layer, mask):
            worst = int(nm_group_counts(v, hm).max()) if v.size else 0
            if worst > hn:
                return False, f"mask has {worst} non-zeros in a group of {hm}: does not fit the {hn}:{hm} datapath"
        return True, ""
    n, m = sp.n or 1, sp.m or 1
    if (m % hm == 0 and n <= hn) or (hm % m == 0 and n * (hm // m) <= hn):
        return True, ""
    return False, f"{n}:{m} does not fit the {hn}:{hm} datapath"


def lower_sparse(layer: LayerBase, hw: SystolicArray, workload: Workload | None, mode: str, reason: str,
                  mask: "np.ndarray | None") -> LayerProgram:
    from ...workload.masks import gemm_weight_views
    from ..gs_kernels import ceil_log2

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
        lowerings: list[tuple[GemmLowering, int, int, dict[str, int], int, float]] = []
        # (lowering, times, macs per rep, sram per rep, value-bit share numerator, value share)

        folds_cache: dict[int, _SparseFolds] = {}

        def make(inst: int, preloaded: bool) -> tuple[GemmLowering, int, dict[str, int], float]:
            if gmode == "nm":
                k2 = ceil_div(g.k * o.nm_n, o.nm_m)
                ge = CompressedGemm(g.m, g.n, k2, g.count, a_words=g.a_unique, b_is_weight=g.b_is_weight,
                                     b_instances=g.b_instances, tag=g.tag, conv=g.conv, a_k=g.k)
                plan = fold_plan(ge, hw.rows, hw.cols, hw.dataflow)
                ov = None
                if o.bit_serial:
                    ov = FoldOverrides(_fold_cycles(np.full((plan.row_folds, plan.col_folds), plan.t), hw, wb))
                low = GemmLowering(ge, hw, OperandBits(ab, wb + meta, ab, pb), preloaded, sparse=ov)
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
                low = GemmLowering(g, hw, OperandBits(ab, wb, ab, pb), preloaded, sparse=ov)
                sram = dict(sf.sram)
                share = sf.value_bits / sf.b_total_bits if sf.b_total_bits else 1.0
                return low, sf.macs, sram, share
            # dense structure (activation operands, or bit-serial only)
            ov = None
            if o.bit_serial:
                ov = FoldOverrides(_fold_cycles(np.full((plan.row_folds, plan.col_folds), plan.t), hw, wb))
            low = GemmLowering(g, hw, OperandBits(ab, wb if g.b_is_weight else ab, ab, pb), preloaded, sparse=ov)
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
    body = peel_last(tuple(nodes))
    mac_action = Action("mac", "bit_serial_mac", macs, wb, ab) if o.bit_serial else Action("mac", "mac", macs, wb, ab, q.scheme)
    counters = LayerCounters(sram=acc, dram_read_bits=dram, dram_write_bits=dram_w, compulsory_read_bits=compulsory,
                             macs=macs, eff_num=eff_num, eff_den=eff_den, compute_cycles=compute_cycles,
                             index_reads=index_reads)
    prog = systolic_program(
        layer, hw, counters, engine=f"systolic.{mode}", body=body, mac=mac_action, act_bits=ab, weight_bits=wb,
        weight_unit_bits=8, index_bits=meta if mode == "nm" else ib,
        dense_macs=layer.densified().macs if not layer.compression.is_dense else layer.macs,
        notes=[reason] if reason else [], extra={"index_dram_bytes": dram["index"] / 8},
    )
    if mode in ("zero", "block") and mask is None and sp.kind in SKIPPABLE:
        prog.notes.append(f"no mask: expected skipping for i.i.d. {'blocks' if sp.kind == 'block' else 'non-zeros'} "
                          f"at density {sp.effective_density:.3f}")
    return prog


@dataclass(frozen=True)
class CompressedGemm(Gemm):
    """A GEMM whose reduction the hardware compressed (N:M) while activations stay dense."""
    a_k: int = 0

    def a_words_for_rows(self, lo: int, hi: int) -> int:
        if self.conv is not None:
            return self.conv.input_words_for_pixels(lo, hi)
        return max(hi - lo, 0) * self.a_k

    def a_words_for_row_ranges(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        if self.conv is not None:
            return self.conv.input_words_for_pixel_ranges(lo, hi)
        return np.maximum(hi - lo, 0) * self.a_k


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
    n = ceil_div(total, tile)
    out = np.full(n, tile, dtype=np.int64)
    if total % tile:
        out[-1] = total % tile
    return out


def _expected_max_binom(k: int, d: float, count: int) -> float:
    from ..gs_kernels import expected_max_binomial

    return expected_max_binomial(k, d, count)


def sparse_folds(g: Gemm, plan: FoldPlan, hw: SystolicArray, mode: str, w_kn: "np.ndarray | None",
                 unit: tuple[int, int], density: float, wb: int, ib: int) -> _SparseFolds:
    """Skipping structure of one weight matrix (``w_kn``: k x n bool, or None: expectation).

    ``mode``: ``zero`` (zero skipping) or ``block`` (all-zero tile skipping). ``unit`` is the
    (outputs, reduction) size of the independently kept units in expectation mode (block shape
    for block sparsity, 1 x 1 otherwise).
    """
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
    if hw.sparse.bit_serial:
        t = -(-(t * wb) // hw.word_bits)
    R, C = hw.rows, hw.cols
    per = t + R + C - 2 if hw.dataflow == "os" else 2 * R + C + t - 2
    return np.where(t > 0, per, 0).astype(np.int64)
