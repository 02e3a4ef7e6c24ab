"""Dense fold mapping of a GEMM on a systolic array (OS/WS/IS), SCALE-Sim-compatible compute model.

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
packing of several groups into one fold (groups run one after another).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ...hardware.systolic import SystolicArray
from ...stats import Node, charge_tiles, split_tile_arrays
from ...workload.layer import Gemm, ceil_div
from ..lowering import compress_periodic_arrays, compress_runs_arrays, compress_sequence


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
class OperandBits:
    """Bit widths of the three operands and of partial sums."""

    a: int
    b: int
    c: int
    psum: int


@dataclass(frozen=True)
class FoldOverrides:
    """Per-fold cycles and weight bits of a sparse mapping (row_folds x col_folds arrays)."""

    cycles: np.ndarray
    b_bits: np.ndarray | None = None  # None: the dense slices at the weight width
    b_total_bits: int = 0


@dataclass(frozen=True)
class GemmTraffic:
    """DRAM bits of one GEMM repetition's fold walk, per operand (:meth:`GemmLowering.traffic_bound`)."""

    a: int
    b: int
    c: int
    psum_read: int
    psum_write: int


@dataclass
class _ColumnIteration:
    """The tiles of one column fold and the DRAM traffic they move."""

    nodes: tuple[Node, ...]
    dram_a: int
    dram_b: int
    dram_c: int
    dram_psum_read: int
    dram_psum_write: int


class GemmLowering:
    """Fold-by-fold loads/stores of one GEMM repetition on a systolic array.

    Folds are grouped rather than visited one by one: every quantity of fold ``(r, c)`` depends
    on ``c`` only through a small key (first column fold or not, the column fold's width, and for
    IS the input words of its pixel range, plus the sparse per-fold column when there is one), so
    each distinct key is lowered once, over all row folds at once with numpy, and its traffic is
    multiplied by how many column folds share it. The tile stream is the same one a fold-by-fold
    walk produces (same tiles in the same order, same run-length compression).
    """

    def __init__(self, g: Gemm, hw: SystolicArray, bits: OperandBits, b_resident_from_before: bool = False,
                 sparse: FoldOverrides | None = None):
        self.g, self.hw, self.bits = g, hw, bits
        self.plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
        self.sparse = sparse  # per-fold cycles / weight bits of a sparse mapping (None: dense)
        self.cap_a = hw.ifmap_sram.size_bits // 2
        self.cap_b = hw.filter_sram.size_bits // 2
        self.cap_c = hw.ofmap_sram.size_bits // 2
        self.b_preloaded = b_resident_from_before
        self.dram_a = self.dram_b = self.dram_psum_read = 0
        self.dram_c = self.dram_psum_write = 0

    def _col_widths(self) -> list[tuple[int, int]]:
        """(width, how many column folds have it): full folds of ``cols``, then the last one."""
        p, C = self.plan, self.hw.cols
        last = p.sc - (p.col_folds - 1) * C
        return ([(C, p.col_folds - 1)] if p.col_folds > 1 else []) + [(last, 1)]

    @cached_property
    def _a_span(self) -> int:
        """Input words that bound A per fold and, summed over one pass of the walk, from below:
        WS the whole ``a_unique`` (its per-row-fold words telescope to it); OS/IS the words of all
        ``m`` output rows (``Gemm.a_words_for_rows``), a distinct-word count, so at most the sum
        over any partition of the rows (halos refetched) and at least any part's."""
        g = self.g
        return g.a_unique if self.hw.dataflow == "ws" else g.a_words_for_rows(0, g.m)

    @property
    def a_bound_exact(self) -> bool:
        """Whether :meth:`traffic_bound`'s A is the walk's without ``exact_a`` (WS; a GEMM without
        a convolution, whose row ranges' words ``(hi - lo) k`` add up exactly)."""
        return self.hw.dataflow == "ws" or self.g.conv is None

    def _a_walk_words(self) -> int:
        """The words one pass of the walk reads of A, as :meth:`tiles` counts them: OS the row
        folds' pixel ranges, IS the column folds' (each split over the row folds in shares that
        telescope back to it), WS ``a_unique``."""
        g, p, hw = self.g, self.plan, self.hw
        if hw.dataflow == "ws":
            return g.a_unique
        size = hw.rows if hw.dataflow == "os" else hw.cols
        lo = np.arange(p.row_folds if hw.dataflow == "os" else p.col_folds, dtype=np.int64) * size
        return int(g.a_words_for_row_ranges(lo, np.minimum(lo + size, p.sr if hw.dataflow == "os" else p.sc)).sum())

    def traffic_bound(self, exact_a: bool = False) -> GemmTraffic:
        """What :meth:`tiles` adds to the DRAM counters, in closed form without the walk (dense
        only). Exact for B, C and the partial sums (per column fold the walk's rule depends on the
        fold's width only, and all but the last have width ``cols``), for A with ``exact_a``
        (:meth:`_a_walk_words`, a numpy pass over the fold ranges) or :attr:`a_bound_exact`;
        otherwise A is a lower bound: each pass over the rows (OS/WS: the first column fold, and
        every one when A does not fit; IS: each column fold's pixel range, whose words sum over
        the column folds) moves at least :attr:`_a_span` words."""
        assert self.sparse is None, "dense fold walks only"
        g, p, hw, bits = self.g, self.plan, self.hw, self.bits
        df, nrf = hw.dataflow, p.row_folds
        a = (self._a_walk_words() if exact_a else self._a_span) * bits.a
        if df != "is" and g.a_unique * bits.a > self.cap_a:  # A refetched by every column fold
            a *= p.col_folds
        b = c = psum = 0
        for width, ncols in self._col_widths():
            if df == "os":  # the column's B slice, fetched once, or by every row fold when it does not fit
                b_col = g.k * width * bits.b
                b += b_col * (nrf if b_col > self.cap_b else 1) * ncols
            else:  # partial sums spilled and read back by every row fold but the last
                block = (g.m * width if df == "ws" else width * g.n) * bits.psum
                psum += (nrf - 1) * block * ncols if block > self.cap_c else 0
        if df == "ws":
            b = g.k * g.n * bits.b
        elif df == "is":
            b = g.k * g.n * bits.b * (1 if g.b_unique * bits.b <= self.cap_b else p.col_folds)
        if self.b_preloaded:
            b = 0
        c = g.m * g.n * bits.c
        return GemmTraffic(a, b, c, psum, psum)

    def tiles_bound(self) -> int:
        """At least the tiles :meth:`tiles` charges (:func:`~accelsim.stats.charge_tiles`), dense:
        the fold ranges, one row-fold array per further distinct column key (OS/WS: first fold,
        full width, last width: at most 3 keys), and per key at most ``row_folds x P`` sub-tiles,
        ``P`` = the most parts any fold splits into (A and B per fold at most :attr:`_a_span` words
        and the largest fold's slice of B; never more parts than a fold's cycles)."""
        p, hw, bits, R, C = self.plan, self.hw, self.bits, self.hw.rows, self.hw.cols
        keys = p.col_folds if hw.dataflow == "is" else min(p.col_folds, 3)
        b_words = {"os": self.g.k * min(C, p.sc), "ws": min(R, p.sr) * min(C, p.sc), "is": min(R, p.sr) * self.g.n}
        parts = max(-(-self._a_span * bits.a // self.cap_a), -(-b_words[hw.dataflow] * bits.b // self.cap_b), 1)
        parts = min(parts, max(p.cycles_per_fold, 1))
        return p.col_folds + p.row_folds * keys + (keys * p.row_folds * parts if parts > 1 else 0)

    def traffic(self) -> GemmTraffic:
        """The DRAM bits :meth:`tiles` counted."""
        return GemmTraffic(self.dram_a, self.dram_b, self.dram_c, self.dram_psum_read, self.dram_psum_write)

    def tiles(self) -> tuple[Node, ...]:
        g, p, hw, bits = self.g, self.plan, self.hw, self.bits
        df = hw.dataflow
        R, C = hw.rows, hw.cols
        # entries materialised: fold ranges (row + column) now, one row-fold array per further distinct column
        charge_tiles(p.col_folds + p.row_folds, "array (folds)")
        sp_bits = self.sparse is not None and self.sparse.b_bits is not None
        b_total_bits = self.sparse.b_total_bits if sp_bits else g.b_unique * bits.b  # type: ignore[union-attr]
        a_resident = g.a_unique * bits.a <= self.cap_a
        b_resident = b_total_bits <= self.cap_b
        r0 = np.arange(p.row_folds, dtype=np.int64) * R
        r1 = np.minimum(r0 + R, p.sr)
        c0 = np.arange(p.col_folds, dtype=np.int64) * C
        c1 = np.minimum(c0 + C, p.sc)
        widths = c1 - c0
        # A words per row fold (OS, WS: independent of the column fold)
        if df == "os":
            a_rows = g.a_words_for_row_ranges(r0, r1)
        elif df == "ws":
            a_rows = g.a_unique * r1 // g.k - g.a_unique * r0 // g.k
        else:  # is: columns are pixel ranges; their input words enter the key
            col_words = g.a_words_for_row_ranges(c0, c1)
        cache: dict[tuple, _ColumnIteration] = {}
        col_iters: list[_ColumnIteration] = []
        for c in range(p.col_folds):
            key: tuple = (c == 0, int(widths[c]))
            if df == "is":
                key += (int(col_words[c]),)
            if self.sparse is not None:
                key += (c,)  # per-fold arrays: every column fold is its own
            it = cache.get(key)
            if it is None:
                if cache:
                    charge_tiles(p.row_folds, "array (folds)")
                if df == "is":
                    rw = int(col_words[c])
                    a_words = rw * r1 // g.k - rw * r0 // g.k
                    b_words = (r1 - r0) * g.n
                elif df == "os":
                    a_words, b_words = a_rows, np.full(p.row_folds, g.k * int(widths[c]), dtype=np.int64)
                else:
                    a_words, b_words = a_rows, (r1 - r0) * int(widths[c])
                it = self._column(c, int(widths[c]), r0, r1, a_words, b_words, a_resident, b_resident, sp_bits)
                cache[key] = it
            col_iters.append(it)
        for it in col_iters:
            self.dram_a += it.dram_a
            self.dram_b += it.dram_b
            self.dram_c += it.dram_c
            self.dram_psum_read += it.dram_psum_read
            self.dram_psum_write += it.dram_psum_write
        return compress_sequence([it.nodes for it in col_iters])

    def _column(self, c: int, width: int, r0: np.ndarray, r1: np.ndarray, a_words: np.ndarray, b_words: np.ndarray,
                a_resident: bool, b_resident: bool, sp_bits: bool) -> _ColumnIteration:
        """Tiles of column fold ``c`` over all row folds (vectorised over ``r``)."""
        g, p, hw, bits = self.g, self.plan, self.hw, self.bits
        df = hw.dataflow
        nrf = p.row_folds
        b_bits = self.sparse.b_bits[:, c].astype(np.int64) if sp_bits else b_words * bits.b  # type: ignore[union-attr,index]
        first_row = np.arange(nrf) == 0
        # operand A: OS/WS index it by the row fold only, IS by both
        fetch_a = np.full(nrf, True) if df == "is" else np.full(nrf, c == 0 or not a_resident)
        # operand B
        if self.b_preloaded:
            fetch_b = np.full(nrf, False)
        elif df == "os":  # indexed by the column fold only
            fetch_b = first_row | (b_bits > self.cap_b)
        elif df == "ws":
            fetch_b = np.full(nrf, True)
        else:  # is: row fold only
            fetch_b = np.full(nrf, c == 0 or not b_resident)
        a_load = np.where(fetch_a, a_words * bits.a, 0)
        b_load = np.where(fetch_b, b_bits, 0)
        load = a_load + b_load
        psum_read = psum_write = 0
        if df == "os":
            store = (r1 - r0) * width * bits.c
            dram_c = int(store.sum())
        else:
            block = g.m * width if df == "ws" else width * g.n
            psum_on_chip = block * bits.psum <= self.cap_c
            last = np.arange(nrf) == nrf - 1
            spill = np.full(nrf, not psum_on_chip) & ~last
            store = np.where(last, block * bits.c, np.where(spill, block * bits.psum, 0))
            dram_c = block * bits.c
            psum_write = int(spill.sum()) * block * bits.psum
            read_back = ~first_row & (not psum_on_chip)
            load = load + np.where(read_back, block * bits.psum, 0)
            psum_read = int(read_back.sum()) * block * bits.psum
        parts = np.maximum(np.maximum(np.where(fetch_a, -(-(a_words * bits.a) // self.cap_a), 1),
                                      np.where(fetch_b, -(-b_bits // self.cap_b), 1)), 1)
        cycles = (np.full(nrf, p.cycles_per_fold, dtype=np.int64) if self.sparse is None
                  else self.sparse.cycles[:, c].astype(np.int64))
        store = np.asarray(store, dtype=np.int64)
        if int(parts.max()) <= 1:
            nodes = compress_periodic_arrays(load, cycles, store)
        else:
            nodes = compress_runs_arrays(*split_tile_arrays(load, cycles, store, parts))
        return _ColumnIteration(nodes, int(a_load.sum()), int(b_load.sum()), dram_c, psum_read, psum_write)
