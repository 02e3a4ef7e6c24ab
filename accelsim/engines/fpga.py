"""FPGA overlay engine: layers tiled onto a ``pe_in x pe_out x pe_pix`` DSP/LUT array with BRAM buffers.

**Mapping.** Every compute layer is a set of GEMMs ``C[m x n] = A[m x k] B[k x n]`` (``m`` output
pixels, ``n`` output channels, ``k = R*S*C_in/groups``; see :mod:`accelsim.workload.layer`). Per
cycle the array multiplies ``pe_in`` reduction elements by ``pe_out`` output channels for
``pe_pix`` pixels (one port word from each buffer). A GEMM is cut into tiles of ``tm`` pixels x
``tn`` channels x ``tk`` reduction elements; a tile computes in
``ceil(tm/pe_pix) * ceil(tn/pe_out) * ceil(tk/pe_in) + overhead`` cycles, where the overhead
(default ``4 + ceil(log2 pe_in)``) is the DSP/adder pipeline fill. The reduction over ``tk``
accumulates in the DSP (48-bit) and the partial sums of a ``tm x tn`` block stay in the ofmap
buffer at ``accumulator_bits`` until the last ``tk`` chunk: outputs never spill to DDR.
Convolution pixel tiles are whole output rows (``rows`` per tile, of one image) or segments of
``tm`` pixels of one row; the input they need is counted exactly (halo rows/columns, padding).
A ``k`` chunk needs the proportional share of the tile's input words (cumulative division keeps
totals exact). Grouped convolutions run group by group; with ``group_packing`` up to
``pe_out // (C_out/groups)`` groups run side by side on the output lanes (depthwise convolutions
fill the array). Layers narrower than the datapath run at the datapath widths.

**Loop order** (per GEMM, chosen per layer): ``wr`` (weight reuse: channel blocks outer, pixel
blocks inner) or ``ir`` (input reuse: pixel blocks outer), reduction innermost. A buffer
reloads a block only when the next tile needs a different one, so ``wr`` with the whole
reduction in one chunk fetches weights once and inputs once per channel block, ``ir`` the other
way round; with several reduction chunks both operands are refetched for every block pair.
Tiles must fit one half of each buffer (double buffering).

**Tiling choice.** Among all (pixel tile, ``tn``, ``tk``, order) with ``tm``/``tn``/``tk``
powers of two times the lanes (or the whole dimension) that fit the buffers, the engine takes
the smallest *roofline estimate* ``max(first load + compute + last store, DDR transfer)`` cycles
(the same model the integer program of :mod:`accelsim.dse.fpga.ilp` minimises); ties go to
less DDR traffic. The simulator then times the tile stream (double buffering, one shared DDR
channel), which can only be slower than the estimate.

**Memory-bound layers** (pooling, element-wise) run on a vector unit of ``vector_lanes`` lanes,
one operation per lane per cycle, streaming their inputs through the ifmap buffer in at least 16
tiles (and tiles no larger than half the buffer); DDR bandwidth usually bounds them.

**Energy actions.** MACs at the datapath widths (DSP operations are shared by packed MACs); one
ifmap and one filter port read per active array cycle; one ofmap port write per (pixel group,
channel group) per tile (+ a read when accumulating onto an earlier reduction chunk, + the drain
to DDR); buffer fills from DDR; DDR reads/writes per operand.

**Ignored**: sparsity (dense execution; a note says so), bank conflicts, DDR row-buffer effects
and AXI burst overheads, overlap between layers, the latency of the PS/driver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterator

import numpy as np

from ..errors import InfeasibleError
from ..hardware.fpga import ArrayShape, FpgaAccelerator, port_bits
from ..stats import Action, LayerProgram, Node, Repeat, Tile, charge_tiles, tile_bounded
from ..workload.layer import ConvGeometry, Elementwise, LayerBase, Pool, ceil_div, input_span
from ..workload.workload import Workload
from .base import Engine
from .lowering import compress_runs, compress_sequence, stream_tiles, vector_program, vector_work

ORDERS = ("wr", "ir")
VECTOR_MIN_TILES = 16  # pooling/element-wise layers stream in at least this many tiles


# --- array parameters the tiling model needs --------------------------------------------------

@dataclass(frozen=True)
class ArrayParams:
    """What the tiling/latency model needs to know about an array (no buffer sizes)."""

    shape: ArrayShape
    weight_bits: int
    act_bits: int
    accumulator_bits: int
    overhead_cycles: int
    dram_bits_per_cycle: float

    @classmethod
    def of(cls, hw: FpgaAccelerator) -> "ArrayParams":
        return cls(hw.shape, hw.weight_bits, hw.act_bits, hw.accumulator_bits, hw.overhead_cycles,
                   hw.dram_bits_per_cycle())

    @property
    def ports(self) -> dict[str, int]:
        return port_bits(self.shape, self.weight_bits, self.act_bits, self.accumulator_bits)


def default_overhead(pe_in: int) -> int:
    return 4 + math.ceil(math.log2(pe_in)) if pe_in > 1 else 4


# --- work items: the GEMMs of a layer as the array runs them ----------------------------------

@dataclass(frozen=True)
class Work:
    """A GEMM the array runs ``count`` times; ``groups`` groups side by side (group packing)."""

    layer: str
    m: int
    n: int
    k: int
    count: int
    groups: int = 1
    conv: ConvGeometry | None = None
    b_shared: bool = False
    tag: str = "main"

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


def work_items(layer: LayerBase, shape: ArrayShape) -> list[Work]:
    """The GEMMs of ``layer``; grouped GEMMs packed ``pe_out // n`` at a time with group packing."""
    out: list[Work] = []
    for g in layer.gemms():
        b_shared = g.b_distinct == 1 and g.count > 1
        if shape.group_packing and g.count > 1 and g.n < shape.pe_out and g.conv is not None:
            pack = min(g.count, shape.pe_out // g.n)
            full, rest = divmod(g.count, pack)
            if full:
                out.append(Work(layer.name, g.m, g.n * pack, g.k, full, pack, g.conv, False, g.tag))
            if rest:
                out.append(Work(layer.name, g.m, g.n * rest, g.k, 1, rest, g.conv, False, g.tag + ".rest"))
        else:
            out.append(Work(layer.name, g.m, g.n, g.k, g.count, 1, g.conv, b_shared, g.tag))
    return out


# --- pixel blocks ------------------------------------------------------------------------------



@dataclass(frozen=True)
class PixelTiling:
    """How the ``m`` pixels are cut: ``rows`` whole output rows, or ``seg`` pixels of one row."""

    rows: int = 0
    seg: int = 0
    tm: int = 0  # non-conv GEMMs: plain blocks of tm rows

    def label(self) -> str:
        if self.rows:
            return f"{self.rows} out-rows"
        if self.seg:
            return f"{self.seg} px"
        return f"m={self.tm}"


@dataclass(frozen=True)
class PixelBlocks:
    """Pixel blocks of one GEMM repetition: pixels and input words (all k) per block."""

    pixels: tuple[int, ...]
    a_words: tuple[int, ...]
    repeat: int  # the block list repeats this many times (images of the batch)

    @property
    def count(self) -> int:
        return len(self.pixels) * self.repeat

    def sum_groups(self, lanes: int) -> int:
        return _sum_groups(self.pixels, lanes) * self.repeat

    @property
    def a_total(self) -> int:
        return self.repeat * sum(self.a_words)

    @property
    def a_max(self) -> int:
        return max(self.a_words)

    @property
    def pix_max(self) -> int:
        return max(self.pixels)

    def iter(self) -> Iterator[tuple[int, int]]:
        for _ in range(self.repeat):
            yield from zip(self.pixels, self.a_words)


@lru_cache(maxsize=65536)
def _sum_groups(pixels: tuple[int, ...], lanes: int) -> int:
    """sum(ceil(p / lanes)) over the blocks (a handful of distinct sizes)."""
    counts: dict[int, int] = {}
    for p in pixels:
        counts[p] = counts.get(p, 0) + 1
    return sum(n * ceil_div(p, lanes) for p, n in counts.items())


@lru_cache(maxsize=4096)
def pixel_blocks(w: Work, pt: PixelTiling) -> PixelBlocks:
    """Blocks of ``w``'s pixels for tiling ``pt`` (input words include all ``groups``)."""
    c = w.conv
    if c is None:
        tm = pt.tm
        nblk = ceil_div(w.m, tm)
        pix = tuple(min(tm, w.m - i * tm) for i in range(nblk))
        return PixelBlocks(pix, tuple(p * w.k * w.groups for p in pix), 1)
    words_per_pos = c.channels * w.groups
    if pt.rows:
        pix, aw = [], []
        for r0 in range(0, c.out_h, pt.rows):
            r1 = min(r0 + pt.rows, c.out_h) - 1
            rows_in = input_span(r0, r1, c.kernel_h, c.stride_h, c.pad_h, c.dilation_h, c.in_h)
            pix.append((r1 - r0 + 1) * c.out_w)
            aw.append(rows_in * c.in_w * words_per_pos)
        return PixelBlocks(tuple(pix), tuple(aw), c.batch)
    seg = pt.seg
    col_spans = []
    for q0 in range(0, c.out_w, seg):
        q1 = min(q0 + seg, c.out_w) - 1
        col_spans.append((q1 - q0 + 1, input_span(q0, q1, c.kernel_w, c.stride_w, c.pad_w, c.dilation_w, c.in_w)))
    pix, aw = [], []
    for oh in range(c.out_h):
        rows_in = input_span(oh, oh, c.kernel_h, c.stride_h, c.pad_h, c.dilation_h, c.in_h)
        for npix, cols_in in col_spans:
            pix.append(npix)
            aw.append(rows_in * cols_in * words_per_pos)
    return PixelBlocks(tuple(pix), tuple(aw), c.batch)


def _pow2_steps(start: int, limit: int) -> list[int]:
    out, v = [], max(start, 1)
    while v < limit:
        out.append(v)
        v *= 2
    return out


def pixel_tilings(w: Work, pe_pix: int) -> list[PixelTiling]:
    c = w.conv
    if c is None:
        return [PixelTiling(tm=t) for t in _pow2_steps(pe_pix, w.m)] + [PixelTiling(tm=w.m)]
    return ([PixelTiling(seg=s) for s in _pow2_steps(pe_pix, c.out_w)]
            + [PixelTiling(rows=r) for r in _pow2_steps(1, c.out_h)] + [PixelTiling(rows=c.out_h)])


def dim_tiles(total: int, lanes: int) -> list[int]:
    return _pow2_steps(lanes, total) + [total]


# --- cost of one tiling -------------------------------------------------------------------------

@dataclass(frozen=True)
class TileChoice:
    pixels: PixelTiling
    tn: int
    tk: int
    order: str

    def label(self) -> str:
        return f"{self.pixels.label()} x n={self.tn} x k={self.tk}, {self.order}"


@dataclass(frozen=True)
class TileCost:
    """Closed-form counts of one work item under one tiling (all repetitions)."""

    est_cycles: int
    compute_cycles: int
    active_cycles: int
    a_load_words: int
    b_load_words: int
    c_words: int
    need_bits: tuple[int, int, int]  # half-buffer bits needed: ifmap, filter, ofmap
    tiles: int

    def dram_bits(self, p: ArrayParams) -> int:
        return self.a_load_words * p.act_bits + self.b_load_words * p.weight_bits + self.c_words * p.act_bits


def _reloads(order: str, mb: int, nb: int, kb: int) -> tuple[int, int]:
    """How many times the whole A and the whole B of one repetition are fetched."""
    if kb > 1:
        return nb, mb
    if order == "wr":
        return (1 if mb == 1 else nb), 1
    return 1, (1 if nb == 1 else mb)


def _split_sum(total: int, tile: int, lanes: int) -> tuple[int, int]:
    """(number of blocks, sum over blocks of ceil(block / lanes))."""
    nblk = ceil_div(total, tile)
    full, last = divmod(total, tile)
    return nblk, full * ceil_div(tile, lanes) + (ceil_div(last, lanes) if last else 0)


def tile_cost(w: Work, blocks: PixelBlocks, tn: int, tk: int, order: str, p: ArrayParams) -> TileCost:
    s = p.shape
    mb = blocks.count
    nb, sum_n = _split_sum(w.n, tn, s.pe_out)
    kb, sum_k = _split_sum(w.k, tk, s.pe_in)
    sum_m = blocks.sum_groups(s.pe_pix)
    active_rep = sum_m * sum_n * sum_k
    compute_rep = active_rep + p.overhead_cycles * mb * nb * kb
    ra, rb = _reloads(order, mb, nb, kb)
    a_rep = blocks.a_total * ra
    b_words = w.k * w.n
    b_rep = b_words * rb
    b_total = b_rep * w.count
    if w.b_shared and nb == 1 and kb == 1:
        b_total = b_words  # the same weights stay resident for every repetition
    c_words = w.m * w.n * w.count
    a_total = a_rep * w.count
    bpc = p.dram_bits_per_cycle
    tk0, tn0 = min(tk, w.k), min(tn, w.n)
    first = blocks.a_words[0] * tk0 // w.k * p.act_bits + tk0 * tn0 * p.weight_bits
    last_n = w.n - (nb - 1) * tn
    last = blocks.pixels[-1] * last_n * p.act_bits
    compute = compute_rep * w.count
    dram = a_total * p.act_bits + b_total * p.weight_bits + c_words * p.act_bits
    est = max(math.ceil(first / bpc) + compute + math.ceil(last / bpc), math.ceil(dram / bpc))
    need = (ceil_div(blocks.a_max * tk0, w.k) * p.act_bits, tk0 * tn0 * p.weight_bits,
            blocks.pix_max * tn0 * p.accumulator_bits)
    return TileCost(est, compute, active_rep * w.count, a_total, b_total, c_words, need, mb * nb * kb * w.count)


@dataclass(frozen=True)
class TileTable:
    """Every candidate tiling of one work item (flat numpy arrays, one entry per candidate)."""

    pixel_tilings: tuple[PixelTiling, ...]
    index: np.ndarray  # (candidates, 4): pixel tiling, tn, tk, order (0 wr, 1 ir)
    est: np.ndarray
    compute: np.ndarray
    active: np.ndarray
    a_load: np.ndarray
    b_load: np.ndarray
    c_words: int
    need: np.ndarray  # (candidates, 3) half-buffer bits: ifmap, filter, ofmap
    dram_bits: np.ndarray
    tiles: np.ndarray

    def __len__(self) -> int:
        return len(self.est)

    def choice(self, i: int) -> TileChoice:
        pt, tn, tk, order = (int(v) for v in self.index[i])
        return TileChoice(self.pixel_tilings[pt], tn, tk, ORDERS[order])

    def cost(self, i: int) -> TileCost:
        return TileCost(int(self.est[i]), int(self.compute[i]), int(self.active[i]), int(self.a_load[i]),
                        int(self.b_load[i]), self.c_words, tuple(int(v) for v in self.need[i]),  # type: ignore[arg-type]
                        int(self.tiles[i]))

    def best(self, halves: tuple[int, int, int]) -> int | None:
        """Index of the fitting candidate with the smallest (estimate, DDR bits, tiles), or None."""
        ok = np.all(self.need <= np.asarray(halves, dtype=np.int64), axis=1)
        if not ok.any():
            return None
        idx = np.flatnonzero(ok)
        order = np.lexsort((idx, self.tiles[idx], self.dram_bits[idx], self.est[idx]))
        return int(idx[order[0]])


def _split_arrays(total: int, tiles: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    nblk = -(-total // tiles)
    full = total // tiles
    last = total - full * tiles
    sums = full * (-(-tiles // lanes)) + np.where(last > 0, -(-last // lanes), 0)
    return nblk, sums


@lru_cache(maxsize=8192)
def tile_table(w: Work, p: ArrayParams) -> TileTable:
    """Vectorised :func:`tile_cost` over every (pixel tiling, tn, tk, order); same numbers."""
    s = p.shape
    pts = pixel_tilings(w, s.pe_pix)
    tns = np.array(dim_tiles(w.n, s.pe_out), dtype=np.int64)
    tks = np.array(dim_tiles(w.k, s.pe_in), dtype=np.int64)
    blocks = [pixel_blocks(w, pt) for pt in pts]
    mb = np.array([b.count for b in blocks], dtype=np.int64)[:, None, None]
    sum_m = np.array([b.sum_groups(s.pe_pix) for b in blocks], dtype=np.int64)[:, None, None]
    a_tot = np.array([b.a_total for b in blocks], dtype=np.int64)[:, None, None]
    a_max = np.array([b.a_max for b in blocks], dtype=np.int64)[:, None, None]
    a_first = np.array([b.a_words[0] for b in blocks], dtype=np.int64)[:, None, None]
    pix_last = np.array([b.pixels[-1] for b in blocks], dtype=np.int64)[:, None, None]
    pix_max = np.array([b.pix_max for b in blocks], dtype=np.int64)[:, None, None]
    nb, sum_n = _split_arrays(w.n, tns, s.pe_out)
    kb, sum_k = _split_arrays(w.k, tks, s.pe_in)
    nb, sum_n, tn = nb[None, :, None], sum_n[None, :, None], tns[None, :, None]
    kb, sum_k, tk = kb[None, None, :], sum_k[None, None, :], tks[None, None, :]
    active_rep = sum_m * sum_n * sum_k
    tiles_rep = mb * nb * kb
    compute_rep = active_rep + p.overhead_cycles * tiles_rep
    multi_k = kb > 1
    # reload factors for wr and ir (see _reloads)
    ra_wr = np.where(multi_k, nb, np.where(mb == 1, 1, nb))
    rb_wr = np.where(multi_k, mb, 1)
    ra_ir = np.where(multi_k, nb, 1)
    rb_ir = np.where(multi_k, mb, np.where(nb == 1, 1, mb))
    b_words = w.k * w.n
    shared = w.b_shared & (nb == 1) & (kb == 1)
    c_words = w.m * w.n * w.count
    bpc = p.dram_bits_per_cycle
    tk0, tn0 = np.minimum(tk, w.k), np.minimum(tn, w.n)
    first = a_first * tk0 // w.k * p.act_bits + tk0 * tn0 * p.weight_bits
    last = pix_last * (w.n - (nb - 1) * tn) * p.act_bits
    compute = compute_rep * w.count
    fixed = np.ceil(first / bpc).astype(np.int64) + compute + np.ceil(last / bpc).astype(np.int64)
    need_i = -(-(a_max * tk0) // w.k) * p.act_bits
    need_f = tk0 * tn0 * p.weight_bits
    need_o = pix_max * tn0 * p.accumulator_bits
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("est", "compute", "active", "a", "b", "need", "dram", "tiles",
                                                         "index")}
    shape3 = np.broadcast_shapes(active_rep.shape, fixed.shape)
    grid = np.indices(shape3).reshape(3, -1).T
    a_wr = np.broadcast_to(a_tot * ra_wr * w.count, shape3)
    b_wr = np.broadcast_to(np.where(shared, b_words, b_words * rb_wr * w.count), shape3)
    a_ir = np.broadcast_to(a_tot * ra_ir * w.count, shape3)
    b_ir = np.broadcast_to(np.where(shared, b_words, b_words * rb_ir * w.count), shape3)
    same = (a_wr == a_ir) & (b_wr == b_ir)
    for order, a_l, b_l, keep in ((0, a_wr, b_wr, np.ones(shape3, bool)), (1, a_ir, b_ir, ~same)):
        dram = a_l * p.act_bits + b_l * p.weight_bits + c_words * p.act_bits
        est = np.maximum(fixed, np.ceil(dram / bpc).astype(np.int64))
        sel = keep.reshape(-1)
        out["est"].append(est.reshape(-1)[sel])
        out["compute"].append(np.broadcast_to(compute, shape3).reshape(-1)[sel])
        out["active"].append(np.broadcast_to(active_rep * w.count, shape3).reshape(-1)[sel])
        out["a"].append(a_l.reshape(-1)[sel])
        out["b"].append(b_l.reshape(-1)[sel])
        out["dram"].append(dram.reshape(-1)[sel])
        out["tiles"].append(np.broadcast_to(tiles_rep * w.count, shape3).reshape(-1)[sel])
        need = np.stack([np.broadcast_to(x, shape3).reshape(-1) for x in (need_i, need_f, need_o)], axis=1)
        out["need"].append(need[sel])
        g = grid[sel]
        out["index"].append(np.stack([g[:, 0], tns[g[:, 1]], tks[g[:, 2]], np.full(len(g), order)], axis=1))
    cat = {k: np.concatenate(v) for k, v in out.items()}
    return TileTable(tuple(pts), cat["index"], cat["est"], cat["compute"], cat["active"], cat["a"], cat["b"], c_words,
                     cat["need"], cat["dram"], cat["tiles"])


def tile_options(w: Work, p: ArrayParams) -> list[tuple[TileChoice, TileCost]]:
    """Every candidate tiling of ``w`` with its cost (no buffer-size filtering)."""
    t = tile_table(_anonymous(w), p)
    return [(t.choice(i), t.cost(i)) for i in range(len(t))]


def _halves(hw: FpgaAccelerator) -> tuple[int, int, int]:
    return hw.ifmap_sram.half_bits, hw.filter_sram.half_bits, hw.ofmap_sram.half_bits


def best_tiling(w: Work, hw: FpgaAccelerator, p: ArrayParams | None = None) -> tuple[TileChoice, TileCost] | None:
    """The fitting tiling with the smallest estimate (ties: less DDR traffic, fewer tiles)."""
    t = tile_table(_anonymous(w), p or ArrayParams.of(hw))
    i = t.best(_halves(hw))
    return None if i is None else (t.choice(i), t.cost(i))


def smallest_needs(w: Work, p: ArrayParams) -> tuple[int, int, int]:
    """Per buffer, the smallest half-buffer bits any tiling of ``w`` needs."""
    return tuple(int(v) for v in tile_table(_anonymous(w), p).need.min(axis=0))  # type: ignore[return-value]


def _anonymous(w: Work) -> Work:
    """The work item without its names, so identical GEMMs of different layers share a cache entry."""
    return replace(w, layer="", tag="")




@dataclass
class _Counts:
    a_bits: int = 0
    b_bits: int = 0
    c_bits: int = 0
    ofmap_writes: int = 0
    ofmap_reads: int = 0
    tiles: int = 0


def _rep_nodes(w: Work, blocks: PixelBlocks, ch: TileChoice, p: ArrayParams, b_resident: bool,
               counts: _Counts) -> tuple[Node, ...]:
    """Tiles of one repetition in loop order (reload a block only when it changes)."""
    s = p.shape
    charge_tiles(blocks.count * ceil_div(w.n, ch.tn) * ceil_div(w.k, ch.tk), "on-chip buffers (FPGA tiles)")
    blist = list(blocks.iter())
    n_edges = [(j, min(j + ch.tn, w.n)) for j in range(0, w.n, ch.tn)]
    k_edges = [(k, min(k + ch.tk, w.k)) for k in range(0, w.k, ch.tk)]
    kb = len(k_edges)
    ovh = p.overhead_cycles
    cur_a: tuple[int, int] | None = None
    cur_b: tuple[int, int] | None = ("resident", 0) if b_resident else None  # type: ignore[assignment]

    def tile(i: int, j: int, l: int) -> Tile:
        nonlocal cur_a, cur_b
        pix, a_all = blist[i]
        n0, n1 = n_edges[j]
        k0, k1 = k_edges[l]
        load = 0
        if cur_a != (i, l):
            a_words = a_all * k1 // w.k - a_all * k0 // w.k
            load += a_words * p.act_bits
            counts.a_bits += a_words * p.act_bits
            cur_a = (i, l)
        if not b_resident and cur_b != (j, l):
            b_bits = (k1 - k0) * (n1 - n0) * p.weight_bits
            load += b_bits
            counts.b_bits += b_bits
            cur_b = (j, l)
        groups = ceil_div(pix, s.pe_pix) * ceil_div(n1 - n0, s.pe_out)
        cycles = groups * ceil_div(k1 - k0, s.pe_in) + ovh
        counts.ofmap_writes += groups
        if l > 0:
            counts.ofmap_reads += groups
        store = 0
        if l == kb - 1:
            store = pix * (n1 - n0) * p.act_bits
            counts.c_bits += store
            counts.ofmap_reads += ceil_div(pix * (n1 - n0), s.pe_out * s.pe_pix)
        counts.tiles += 1
        return Tile(load, cycles, store)

    outer: list[tuple[Node, ...]] = []
    if ch.order == "wr":
        for j in range(len(n_edges)):
            inner = [compress_runs([tile(i, j, l) for l in range(kb)]) for i in range(len(blist))]
            outer.append(compress_sequence(inner))
    else:
        for i in range(len(blist)):
            inner = [compress_runs([tile(i, j, l) for l in range(kb)]) for j in range(len(n_edges))]
            outer.append(compress_sequence(inner))
    return compress_sequence(outer)


class FpgaEngine(Engine[FpgaAccelerator]):
    """Engine for :class:`~accelsim.hardware.fpga.FpgaAccelerator` (see the module docstring).

    ``hw.sparsity.compute.action == "gate"``: the MAC of a lane whose operand (``on_zeros``) is zero is
    clock-gated: the ``mac`` count is multiplied by the effectual fraction (``act_density``, or the
    activation mask's density when the workload has one; ``sparsity.density`` for weights; their
    product for the intersection, assuming independent zeros). Cycles, buffer reads (one wide
    read per active cycle feeds every lane) and traffic are unchanged.
    """

    def exploited(self, hw: FpgaAccelerator) -> frozenset[str]:
        return self.exploits | {"act_sparsity"} if hw.sparsity.compute.acts_on("inputs") else self.exploits


    def supports(self, layer: LayerBase, hw: FpgaAccelerator) -> tuple[bool, str]:
        q = layer.compression.quant
        if isinstance(layer, (Elementwise, Pool)):
            if q.act_bits > hw.act_bits:
                return False, f"act_bits {q.act_bits} exceed the {hw.act_bits}-bit datapath"
            return True, ""
        if q.scheme == "float":
            return False, "the FPGA array is fixed-point; quantise the layer (scheme int/pow2/binary)"
        if q.weight_bits > hw.weight_bits or q.act_bits > hw.act_bits:
            return False, (f"layer needs {q.weight_bits}x{q.act_bits}-bit operands but the datapath is "
                           f"{hw.weight_bits}x{hw.act_bits}-bit (raise weight_bits/act_bits)")
        p = ArrayParams.of(hw)
        halves = (hw.ifmap_sram.half_bits, hw.filter_sram.half_bits, hw.ofmap_sram.half_bits)
        for w in work_items(layer, hw.shape):
            if best_tiling(w, hw, p) is None:
                need = smallest_needs(w, p)
                bad = [f"{name} needs {n / 8192 * 2:.2f} KB (has {hw_kb:g} KB)"
                       for name, n, h, hw_kb in zip(("ifmap_sram", "filter_sram", "ofmap_sram"), need, halves,
                                                    (hw.ifmap_sram.size_kb, hw.filter_sram.size_kb, hw.ofmap_sram.size_kb))
                       if n > h]
                return False, "no tile fits the buffers: " + ("; ".join(bad) or "no single tile fits all three")
        return True, ""

    # ------------------------------------------------------------------------------------------
    @tile_bounded
    def lower(self, layer: LayerBase, hw: FpgaAccelerator, workload: Workload | None = None) -> LayerProgram:
        check_fits(hw)
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        p = ArrayParams.of(hw)
        nodes: list[Node] = []
        counts = _Counts()
        macs = active = compute = compulsory = 0
        choices = []
        est = 0
        for w in work_items(layer, hw.shape):
            found = best_tiling(w, hw, p)
            if found is None:  # supports() said so already; keep a clear message if called directly
                raise InfeasibleError(f"layer {layer.name!r}: no tile fits the buffers of fpga '{hw.name}'")
            ch, cost = found
            choices.append(ch)
            blocks = pixel_blocks(w, ch.pixels)
            first = _rep_nodes(w, blocks, ch, p, False, counts)
            nodes.extend(first)
            if w.count > 1:
                rest_resident = w.b_shared and ch.tn >= w.n and ch.tk >= w.k
                before = _Counts(**vars(counts))
                rest = _rep_nodes(w, blocks, ch, p, rest_resident, counts)
                for f in vars(counts):  # the rest is counted once above; scale to count - 1 repetitions
                    delta = getattr(counts, f) - getattr(before, f)
                    setattr(counts, f, getattr(before, f) + delta * (w.count - 1))
                nodes.append(Repeat(rest, w.count - 1))
            macs += w.macs
            active += cost.active_cycles
            compute += cost.compute_cycles
            est += cost.est_cycles
            compulsory += (w.m * w.k if w.conv is None else pixel_blocks(w, PixelTiling(rows=w.conv.out_h)).a_total) \
                * p.act_bits * w.count
            compulsory += w.k * w.n * p.weight_bits * (1 if w.b_shared else w.count)
        ab, wb = p.act_bits, p.weight_bits
        ports = p.ports
        gate = _gated_fraction(layer, hw, workload)
        actions = [
            Action("mac", "mac", int(round(macs * gate)), wb, ab, "int"),
            Action("ifmap_sram", "read", active, ports["ifmap_sram"]),
            Action("filter_sram", "read", active, ports["filter_sram"]),
            Action("ifmap_sram", "write", ceil_div(counts.a_bits, ports["ifmap_sram"]), ports["ifmap_sram"]),
            Action("filter_sram", "write", ceil_div(counts.b_bits, ports["filter_sram"]), ports["filter_sram"]),
            Action("ofmap_sram", "write", counts.ofmap_writes, ports["ofmap_sram"]),
            Action("ofmap_sram", "read", counts.ofmap_reads, ports["ofmap_sram"]),
            Action("dram", "read", counts.a_bits // ab, ab),
            Action("dram", "read", counts.b_bits // wb, wb),
            Action("dram", "write", counts.c_bits // ab, ab),
        ]
        q = layer.compression.quant
        dense_macs = layer.densified().macs if not layer.compression.is_dense else layer.macs
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="fpga", body=tuple(nodes), compute_cycles=compute,
            actions=[a for a in actions if a.count], macs=macs, dense_macs=dense_macs, pe_count=hw.num_pes,
            mapping_efficiency=macs / (active * hw.num_pes) if active else 0.0,
            dram_read_bits={"ifmap": counts.a_bits, "filter": counts.b_bits}, dram_write_bits={"ofmap": counts.c_bits},
            compulsory_read_bits=compulsory, compulsory_write_bits=layer.output_words * ab,
            sram_accesses={
                "ifmap_sram_reads": active, "filter_sram_reads": active, "ofmap_sram_writes": counts.ofmap_writes,
                "ofmap_sram_reads": counts.ofmap_reads,
            },
            extra={"est_cycles": float(est), "tiles": float(counts.tiles)},
        )
        prog.notes.append("tiling: " + "; ".join(c.label() for c in choices))
        if q.weight_bits < wb or q.act_bits < ab:
            prog.notes.append(f"{q.weight_bits}x{q.act_bits}-bit layer runs on the {wb}x{ab}-bit datapath")
        sp = layer.compression.sparsity
        if sp.kind not in ("dense", "channel", "filter"):
            prog.notes.append(f"{sp.kind} sparsity (density {sp.effective_density:.2f}) executed dense: no zero skipping"
                              + (" (zero weights gated)" if hw.sparsity.compute.acts_on("weights") else ""))
        if hw.sparsity.compute.action == "gate":
            prog.notes.append(f"zero gating on {hw.sparsity.compute.on_zeros}: {gate:.3f} of MACs effectual")
            prog.extra["effectual_mac_fraction"] = gate
        return prog

    def _lower_vector(self, layer: Elementwise | Pool, hw: FpgaAccelerator) -> LayerProgram:
        ab = hw.act_bits
        w = vector_work(layer, hw.vector_lanes, ab)
        parts = max(ceil_div(w.read_bits, hw.ifmap_sram.half_bits), VECTOR_MIN_TILES)
        tiles = stream_tiles(w.read_bits, w.cycles, w.write_bits, parts, spread_stores=True)
        ports = hw.port_bits
        actions = [
            Action("vector", "op", w.ops, ab),
            Action("ifmap_sram", "write", ceil_div(w.read_bits, ports["ifmap_sram"]), ports["ifmap_sram"]),
            Action("ifmap_sram", "read", ceil_div(w.read_bits, ports["ifmap_sram"]), ports["ifmap_sram"]),
            Action("dram", "read", layer.input_words, ab),
            Action("dram", "write", layer.output_words, ab),
        ]
        return vector_program(
            layer, w, engine="fpga.vector", body=compress_runs(tiles), actions=actions, pe_count=hw.vector_lanes,
            sram_accesses={"ifmap_sram_reads": ceil_div(w.read_bits, ports["ifmap_sram"])},
            extra={"est_cycles": float(vector_estimate(layer, hw.vector_lanes, ab, hw.dram_bits_per_cycle()))},
        )



def vector_estimate(layer: Elementwise | Pool, lanes: int, act_bits: int, bits_per_cycle: float) -> int:
    """Roofline estimate of a pooling/element-wise layer on the vector unit."""
    cycles = max(ceil_div(layer.vector_ops, lanes), 1)
    dram = (layer.input_words + layer.output_words) * act_bits
    return max(cycles, math.ceil(dram / bits_per_cycle))


def check_fits(hw: FpgaAccelerator) -> None:
    """Raise :class:`InfeasibleError` naming the binding resource when ``hw`` exceeds its budget."""
    t = hw.fits()
    if t.fits:
        return
    worst = t.over[0]
    detail = ", ".join(f"{r} {t.used[r]:,} > {t.limit[r]:,} ({t.utilization(r):.0%})" for r in t.over)
    raise InfeasibleError(
        f"fpga '{hw.name}' does not fit {t.device} under its budget: {detail}; binding resource: {worst} "
        f"(reduce pe_in/pe_out/pe_pix or the buffers, or run `accelsim fpga-fit --hw FILE` for the table)")


def _gated_fraction(layer: LayerBase, hw: FpgaAccelerator, workload: Workload | None) -> float:
    """Fraction of MACs not clock-gated by ``hw.sparsity.compute`` (1 without gating)."""
    c = hw.sparsity.compute
    if c.action != "gate":
        return 1.0
    from ..sparsity.actions import target_density, weight_density
    from ..workload.masks import layer_act_mask

    act = layer_act_mask(workload, layer)
    d_i = float(act.mean()) if act is not None else layer.compression.act_density
    sp = layer.compression.sparsity
    return target_density(c.on_zeros, weight_density(sp.kind, sp.effective_density), d_i)
