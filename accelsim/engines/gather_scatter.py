"""Gather-scatter engine: sparse layers on a vector processor with a banked scratchpad.

**Execution.** Every weight layer is a sequence of matrix-vector products: each *input vector*
(one output pixel's receptive field, one token, one time step) is multiplied by the weight
matrix ``W`` (rows = outputs, columns = reduction, see :mod:`accelsim.workload.masks`), whose
values and indices stream from the weight buffer while the activations sit in the scratchpad
(the SpMV kernels of the GS paper, arXiv 2112.10898, and its SVE code). Per input vector:

- **dense** (also channel/filter-pruned layers, whose shapes are already shrunk): *vertical*
  form -- lane ``i`` computes output row ``i`` of a group of ``V`` rows; per reduction element
  one broadcast activation and one contiguous weight vector: ``ceil(n/V) * k`` instructions.
- **unstructured** (and PatDNN patterns) in CSR (values, ``index_bits`` column indices, row
  pointers): the cheaper of the *reduction* form (lanes along a row, ``V`` non-zeros per
  gather, a horizontal sum per row, tail lanes idle) and the *vertical* form (lane = row of a
  group of ``V`` rows; the group runs as long as its longest row: load imbalance).
- **block** ``bh x bw``: kept blocks are dense; the cheaper of vertical-in-block
  (``bw * ceil(bh/V)`` instructions per block) and reduction-in-block (``bh * ceil(bw/V)`` +
  sums) with contiguous loads, and -- when both block sides are narrower than ``V`` -- the CSR
  forms gathering several blocks' columns per instruction; one index per block either way.
- **N:M**: like CSR with ``log2(m)``-bit indices; every row holds the same count, so the
  vertical form is balanced and its gathers stay inside ``m``-element windows.
- **GS** (``gs_group_rows = G``): the compact format -- entries of ``V`` values + ``V``
  indices; the non-zeros of a ``G``-row group are interleaved row by row and packed ``V`` per
  entry, so no lane idles (load-balanced by construction). ``G > V`` adds a scatter of the
  ``V`` partial sums per entry; ``G < V`` a horizontal sum per group.

A vector instruction issues one ``V``-lane MAC per cycle; a gather of ``a`` elements costs
``max(ceil(a / gather_elems_per_cycle), most distinct words in one bank)`` cycles (bank =
activation address mod ``banks``; activations are NHWC in the scratchpad, so a convolution's
reduction element (channel c, kernel row r, column s) sits at ``(r*W_in + s)*C_in + c``).
Contiguous and broadcast loads take one cycle. Each row (CSR reduction), row group (vertical,
GS) or block row costs ``loop_overhead_cycles`` more; a horizontal sum ``reduction_cycles``.

**Masks vs densities.** With a real mask (``compression.sparsity.mask`` + the workload's mask
file, validated by :mod:`accelsim.workload.masks`) the numba kernels in
:mod:`accelsim.engines.gs_kernels` walk the actual non-zeros: per-row/per-group work, idle
lanes and bank conflicts are measured. With only a density the engine reports the
*expectation* over i.i.d. masks of that kind: ``expected_sample_groups`` seeded random row
groups (Bernoulli positions; exact N:M / GS structure) run through the same kernels and are
scaled to the matrix; block layers use the kept fraction directly. The layer's notes say which.
With ``pack_for_banks`` the format builder orders each row's / group's non-zeros to avoid
bank conflicts (the optimum is computed exactly, see :mod:`accelsim.engines.gs_kernels`).

**Memory.** Input vectors are processed in tiles that fit half the scratchpad (activations of
the tile -- for convolutions whole input rows, line-buffer assumption -- plus its outputs), the
next tile loading into the other half. Weights (values + indices + pointers) are loaded once
when they fit half the weight buffer; otherwise the engine picks the cheaper loop order
(re-stream the weights for every activation tile, or re-fetch the activations for every
weight chunk). Index/pointer traffic is reported as its own DRAM operand (``index``).

**Energy actions.** MACs (idle lanes are clock-gated: only useful MACs), gathered/scattered
elements on ``gather_unit``, scratchpad reads (gathers, broadcasts) and writes (fills,
outputs), weight-buffer reads of values and indices for every input vector, horizontal-sum
adds on ``vector``, DRAM per operand.

**Zero activations** (``sparsity.compute`` acting on ``inputs``, :mod:`.act_sparsity`): the
activation side is the layer's ``act_density`` (uniform i.i.d.) or a real activation mask
(im2col of the recorded inputs). ``gate``: MAC energy only for effectual pairs (exact
``activation rows x weight column non-zeros`` with both masks real, else ``MACs x density``),
cycles unchanged. ``skip``: dense weights skip the broadcast column of a zero activation
(instructions ``x`` density); CSR / pattern / N:M weights run the kernels on the effectual
pairs ``W & a`` of ``act_sample_vectors`` input vectors (seeded Bernoulli rows, or evenly
spaced real rows) and take the mean; GS / block entries are packed offline and fall back to
gating. Skip reads the positions from the scratchpad (its input format, a bitmask written on
fill when uncompressed); ``levels.dram.format.inputs`` sets the DRAM traffic of the inputs
(payload as ``ifmap``, metadata as ``ifmap_meta``; tiles are sized on uncompressed inputs).

**Ignored**: instruction-issue limits other than one vector MAC per cycle, vector-register
pressure, reuse of a loaded weight vector across several input vectors, DRAM row effects,
overlap between layers, depthwise packing of channels into lanes (a depthwise layer uses one
lane per group), SmartExchange-style factorisation (weights run as stored).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedLayerError
from ..hardware.gather_scatter import GatherScatterHardware
from ..stats import Action, LayerProgram, Node, Tile, charge_tiles, split_tile, tile_bounded
from ..workload.layer import Conv2d, Elementwise, Gemm, LayerBase, Pool, ceil_div
from ..workload.masks import block_counts, block_sizes, gemm_weight_views, layer_mask
from ..workload.workload import Workload
from . import gs_kernels as K
from .act_sparsity import ActSide, act_side, act_storage, level_notes
from .base import Engine
from .lowering import buffered_vector_program, compress_runs, node_cycles


@dataclass
class MatrixWork:
    """Work of applying the weight matrices of one GEMM (all instances) to one input vector."""

    form: str
    cycles: float
    instructions: float
    ideal_cycles: float
    useful_macs: float
    gathered: float = 0.0
    scattered: float = 0.0
    broadcast_reads: float = 0.0
    reduces: float = 0.0
    value_bits: int = 0          # stored weight values (all instances)
    index_bits: int = 0          # stored indices + pointers (all instances)
    read_value_words: float = 0.0  # weight-buffer value words read per input vector
    read_index_bits: float = 0.0   # weight-buffer index/pointer bits read per input vector
    weight_macs: float = -1.0      # MACs before zero activations were dropped (-1: = useful_macs)

    def add(self, o: "MatrixWork") -> "MatrixWork":
        return MatrixWork(
            self.form if self.form == o.form else f"{self.form}+{o.form}", self.cycles + o.cycles,
            self.instructions + o.instructions, self.ideal_cycles + o.ideal_cycles, self.useful_macs + o.useful_macs,
            self.gathered + o.gathered, self.scattered + o.scattered, self.broadcast_reads + o.broadcast_reads,
            self.reduces + o.reduces, self.value_bits + o.value_bits, self.index_bits + o.index_bits,
            self.read_value_words + o.read_value_words, self.read_index_bits + o.read_index_bits,
            self.base_macs + o.base_macs,
        )

    @property
    def base_macs(self) -> float:
        """MACs of the weight non-zeros for one input vector, before any activation skipping."""
        return self.useful_macs if self.weight_macs < 0 else self.weight_macs


@dataclass
class _Ctx:
    hw: GatherScatterHardware
    wb: int  # weight bits
    ib: int  # index bits
    notes: list[str] = field(default_factory=list)


# --- addresses ------------------------------------------------------------------------------

def bank_of_reduction(layer: LayerBase, g: Gemm, banks: int) -> np.ndarray:
    """Scratchpad bank of each reduction element (NHWC activations for convolutions)."""
    k = g.k
    if isinstance(layer, Conv2d) and g.conv is not None:
        c = g.conv
        j = np.arange(k, dtype=np.int64)  # natural order: channel, kernel row, kernel column
        s = j % c.kernel_w
        r = (j // c.kernel_w) % c.kernel_h
        ch = j // (c.kernel_w * c.kernel_h)
        addr = (r * c.dilation_h * c.in_w + s * c.dilation_w) * layer.in_channels + ch
    else:
        addr = np.arange(k, dtype=np.int64)
    return (addr % banks).astype(np.int64)


# --- per-form work ---------------------------------------------------------------------------

def _dense(n: int, k: int, inst: int, ctx: _Ctx) -> MatrixWork:
    v = ctx.hw.lanes
    groups = ceil_div(n, v)
    instr = groups * k * inst
    return MatrixWork("dense-vertical", instr + groups * inst * ctx.hw.loop_overhead_cycles, instr,
                      instr + groups * inst * ctx.hw.loop_overhead_cycles, n * k * inst,
                      broadcast_reads=instr, value_bits=n * k * inst * ctx.wb, read_value_words=n * k * inst)


def _run_rows(view: np.ndarray, bank: np.ndarray, ctx: _Ctx, form: str, group_rows: int = 0) -> tuple[int, ...]:
    """Sum a kernel over the instances of ``view``: (instructions, cycles, ideal, elements, rows, nnz)."""
    hw = ctx.hw
    v, gt, banks = hw.lanes, hw.gather_elems_per_cycle, hw.banks
    out = [0, 0, 0, 0, 0, 0]
    for mat in view:
        ptr, idx = K.csr_of(np.ascontiguousarray(mat))
        if form == "reduction":
            r = (K.bank_aware_row_cost(ptr, idx, bank, banks, v, gt) if hw.pack_for_banks
                 else K.csr_reduction_cost(ptr, idx, bank, banks, v, gt))
        elif form == "vertical":
            r = (K.bank_aware_group_cost(ptr, idx, bank, banks, v, gt, v, True) if hw.pack_for_banks
                 else K.csr_vertical_cost(ptr, idx, bank, banks, v, gt))
        else:  # gs packed
            r = (K.bank_aware_group_cost(ptr, idx, bank, banks, v, gt, group_rows, group_rows == v) if hw.pack_for_banks
                 else K.packed_cost(ptr, idx, bank, banks, v, gt, group_rows))
        for i, x in enumerate((r[0], r[1], r[2], r[3], mat.shape[0], ptr[-1])):
            out[i] += int(x)
    return tuple(out)


def _csr(view: np.ndarray, bank: np.ndarray, ctx: _Ctx, *, index_bits: int, pointers: bool, prefix: str) -> MatrixWork:
    """CSR-like storage run in the cheaper of the reduction and vertical forms."""
    hw = ctx.hw
    ri, rc, rd, re, rows, nnz = _run_rows(view, bank, ctx, "reduction")
    vi, vc, vd, ve, _, _ = _run_rows(view, bank, ctx, "vertical")
    groups = sum(ceil_div(m.shape[0], hw.lanes) for m in view)
    red_over = rows * (hw.reduce_cycles + hw.loop_overhead_cycles)
    vert_over = groups * hw.loop_overhead_cycles
    ptr_bits = (rows + view.shape[0]) * hw.pointer_bits if pointers else 0
    index = nnz * index_bits + ptr_bits
    common = dict(value_bits=nnz * ctx.wb, index_bits=index, read_value_words=nnz, read_index_bits=index)
    if rc + red_over <= vc + vert_over:
        return MatrixWork(f"{prefix}-reduction", rc + red_over, ri, rd + red_over, nnz, gathered=re, reduces=rows,
                          **common)  # type: ignore[arg-type]
    return MatrixWork(f"{prefix}-vertical", vc + vert_over, vi, vd + vert_over, nnz, gathered=ve, **common)  # type: ignore[arg-type]


def _gs_extras(instr: float, groups: int, g_rows: int, ctx: _Ctx) -> tuple[float, float, float]:
    """(extra cycles, scattered elements, reduces) of the GS format for ``groups`` row groups."""
    hw = ctx.hw
    v, gt = hw.lanes, hw.gather_elems_per_cycle
    extra = groups * hw.loop_overhead_cycles
    scattered = reduces = 0.0
    if g_rows > v:  # lanes hold rows of a larger group: scatter-add the V partial sums per entry
        extra += instr * -(-v // gt)
        scattered = instr * v
    elif g_rows < v:  # several lanes per row: one horizontal sum per group
        extra += groups * hw.reduce_cycles
        reduces = groups
    return extra, scattered, reduces


def _gs(view: np.ndarray, bank: np.ndarray, g_rows: int, ctx: _Ctx) -> MatrixWork:
    hw = ctx.hw
    instr, cyc, ideal, elems, rows, nnz = _run_rows(view, bank, ctx, "gs", g_rows)
    groups = sum(ceil_div(m.shape[0], g_rows) for m in view)
    extra, scattered, reduces = _gs_extras(instr, groups, g_rows, ctx)
    stored = instr * hw.lanes  # entries are padded to V values + V indices
    index = int(stored) * ctx.ib + (groups + view.shape[0]) * hw.pointer_bits
    return MatrixWork("gs-packed", cyc + extra, instr, ideal + extra, nnz, gathered=elems, scattered=scattered,
                      reduces=reduces, value_bits=int(stored) * ctx.wb, index_bits=index, read_value_words=stored,
                      read_index_bits=index)


#: largest expectation-mode weight sample (bool elements, i.e. bytes) the engine allocates
MAX_SAMPLE_ELEMENTS = 2**28


def _csr_skip(view: np.ndarray, bank: np.ndarray, ctx: _Ctx, act_rows: np.ndarray, *, index_bits: int,
              pointers: bool, prefix: str) -> MatrixWork:
    """CSR work when an intersection unit drops the pairs whose activation is zero: the mean over
    ``act_rows`` of the kernels run on ``view & a`` (sample vector ``i`` uses its instance slices;
    a one-instance sample view of a multi-instance GEMM uses slice ``i mod instances``). Storage
    and index reads stay those of the full format (the unit reads every index to intersect)."""
    inst, _, k = view.shape
    full = _csr(view, bank, ctx, index_bits=index_bits, pointers=pointers, prefix=prefix)
    groups = act_rows.shape[1] // k
    acc: MatrixWork | None = None
    forms: dict[str, int] = {}
    for i, a in enumerate(act_rows):
        if inst == groups:
            a_view = a.reshape(inst, 1, k)
        else:
            j = i % max(groups, 1)
            a_view = a[j * k:(j + 1) * k].reshape(1, 1, k)
        w = _csr(view & a_view, bank, ctx, index_bits=index_bits, pointers=pointers, prefix=prefix)
        forms[w.form] = forms.get(w.form, 0) + 1
        acc = w if acc is None else acc.add(w)
    assert acc is not None
    out = _scale(acc, 1.0 / act_rows.shape[0])
    out.form = max(forms, key=lambda f: forms[f]) + "-actskip"
    out.value_bits, out.index_bits, out.read_index_bits = full.value_bits, full.index_bits, full.read_index_bits
    out.weight_macs = full.useful_macs
    return out


def _sample_view(layer: LayerBase, g: Gemm, sp, group: int, ctx: _Ctx) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A seeded i.i.d. sample of whole row groups of one weight matrix (expectation mode)."""
    from ..workload.masks import _fill_structured

    hw = ctx.hw
    rows = min(g.n, max(hw.expected_sample_groups * group, group))
    if rows * g.k > MAX_SAMPLE_ELEMENTS:  # checked before allocating
        raise UnsupportedLayerError(
            f"layer {layer.name!r}: the expectation sample of {rows:,} x {g.k:,} weights exceeds the "
            f"{MAX_SAMPLE_ELEMENTS:,} elements the gather-scatter engine allocates; lower expected_sample_groups "
            "or give a real mask")
    rng = np.random.default_rng([hw.expected_seed, g.n, g.k, zlib.crc32(sp.kind.encode())])
    out = np.zeros((1, rows, g.k), dtype=bool)
    if sp.kind in ("unstructured", "pattern"):
        out[0] = rng.random((rows, g.k)) < sp.effective_density
    else:
        _fill_structured(out[0], sp, sp.effective_density, rng)
    return out


def _scale(w: MatrixWork, f: float) -> MatrixWork:
    return MatrixWork(w.form, w.cycles * f, w.instructions * f, w.ideal_cycles * f, w.useful_macs * f, w.gathered * f,
                      w.scattered * f, w.broadcast_reads * f, w.reduces * f, int(round(w.value_bits * f)),
                      int(round(w.index_bits * f)), w.read_value_words * f, w.read_index_bits * f, w.base_macs * f)


def _block(n: int, k: int, bh: int, bw: int, kept: np.ndarray | float, inst: int, ctx: _Ctx) -> MatrixWork:
    """``kept``: bool array (instances, block rows, block cols) or the kept fraction."""
    hw = ctx.hw
    v = hw.lanes
    sizes = block_sizes(n, k, bh, bw)  # (nbr, nbc)
    nbr = sizes.shape[0]
    hs = np.minimum(bh, n - np.arange(nbr) * bh)[:, None]
    ws = np.minimum(bw, k - np.arange(sizes.shape[1]) * bw)[None, :]
    cost_vert = ws * -(-hs // v)           # instructions per block, vertical-in-block
    cost_red = hs * -(-ws // v)            # instructions per block, reduction-in-block
    if isinstance(kept, np.ndarray):
        kb = kept.sum(axis=0)              # kept count per block position over instances
        n_kept = int(kept.sum())
        elems = float((kb * sizes).sum())
        instr_v = float((kb * cost_vert).sum())
        instr_r = float((kb * cost_red).sum())
        bcast_v = float((kb * ws).sum())
    else:
        f = float(kept)
        n_kept = int(round(f * sizes.size)) * inst
        elems = f * float(sizes.sum()) * inst
        instr_v = f * float(cost_vert.sum()) * inst
        instr_r = f * float(cost_red.sum()) * inst
        bcast_v = f * float(np.broadcast_to(ws, sizes.shape).sum()) * inst
    over_v = nbr * inst * hw.loop_overhead_cycles
    over_r = nbr * inst * hw.loop_overhead_cycles + n * inst * hw.reduce_cycles
    index = n_kept * ctx.ib + (nbr + 1) * inst * hw.pointer_bits
    if instr_v + over_v <= instr_r + over_r:
        return MatrixWork("block-vertical", instr_v + over_v, instr_v, instr_v + over_v, elems, broadcast_reads=bcast_v,
                          value_bits=int(round(elems)) * ctx.wb, index_bits=index, read_value_words=elems,
                          read_index_bits=index)
    return MatrixWork("block-reduction", instr_r + over_r, instr_r, instr_r + over_r, elems, broadcast_reads=elems,
                      reduces=n * inst, value_bits=int(round(elems)) * ctx.wb, index_bits=index,
                      read_value_words=elems, read_index_bits=index)


def matrix_work(layer: LayerBase, g: Gemm, view: np.ndarray | None, ctx: _Ctx,
                act_rows: np.ndarray | None = None) -> MatrixWork:
    """Work per input vector of GEMM ``g`` (all distinct weight instances) under the layer's sparsity.

    ``view`` is the real mask (instances, rows, reduction) or None: then a seeded i.i.d. sample of
    row groups runs through the same kernels and is scaled to the whole matrix (expectation).
    ``act_rows`` (compute ``skip`` on inputs, CSR-like formats): sample input vectors' activation masks
    (vectors, instances x k); the kernels then run on the effectual pairs ``W & a`` of each and
    the work is their mean.
    """
    hw = ctx.hw
    inst = g.b_distinct
    n, k = g.n, g.k
    sp = layer.compression.sparsity
    kind = sp.kind if g.b_is_weight else "dense"
    d = sp.effective_density
    if kind in ("dense", "channel", "filter") or (d >= 1.0 and kind not in ("gs", "nm")):
        return _dense(n, k, inst, ctx)
    bank = bank_of_reduction(layer, g, hw.banks)
    if kind == "block":
        bh, bw = sp.block_h or 1, sp.block_w or 1
        contiguous = _block(n, k, bh, bw, block_counts(view, bh, bw) > 0 if view is not None else d, inst, ctx)
        if bh >= hw.lanes or bw >= hw.lanes:
            return contiguous
        # blocks narrower than the vector: gather several blocks' columns per instruction instead
        scale = 1.0
        sample = view
        if sample is None:
            sample = _sample_view(layer, g, sp, hw.lanes * max(1, bh), ctx)
            scale = n * inst / sample.shape[1]
        gathered = _csr(sample, bank, ctx, index_bits=ctx.ib, pointers=True, prefix="block-gather")
        gathered = _scale(gathered, scale) if scale != 1.0 else gathered
        if gathered.cycles >= contiguous.cycles:
            return contiguous
        gathered.value_bits, gathered.index_bits = contiguous.value_bits, contiguous.index_bits
        gathered.read_index_bits = contiguous.read_index_bits  # addresses come from one index per block
        return gathered
    g_rows = (sp.gs_group_rows or hw.lanes) if kind == "gs" else hw.lanes
    scale = 1.0
    if view is None:
        view = _sample_view(layer, g, sp, g_rows, ctx)
        scale = n * inst / view.shape[1]
    if kind in ("unstructured", "pattern", "nm") and act_rows is not None:
        ib, ptrs, prefix = (ctx.ib, True, "csr") if kind != "nm" else (K.ceil_log2(sp.m or 1), False, "nm")
        w = _csr_skip(view, bank, ctx, act_rows, index_bits=ib, pointers=ptrs, prefix=prefix)
    elif kind in ("unstructured", "pattern"):
        w = _csr(view, bank, ctx, index_bits=ctx.ib, pointers=True, prefix="csr")
    elif kind == "nm":
        w = _csr(view, bank, ctx, index_bits=K.ceil_log2(sp.m or 1), pointers=False, prefix="nm")
    elif kind == "gs":
        w = _gs(view, bank, g_rows, ctx)
    else:  # pragma: no cover - kinds are validated by the IR
        raise AssertionError(kind)
    return _scale(w, scale) if scale != 1.0 else w


# --- engine ---------------------------------------------------------------------------------

def _compactable(layer: LayerBase, g: Gemm) -> str:
    """How ``skip`` drops zero-activation pairs: ``column`` (dense weights: whole broadcast
    columns), ``kernel`` (CSR-like formats: the intersection unit compacts pairs before the
    gather, measured by the kernels) or ``static`` (GS / block entries are packed offline: lanes
    whose activation is zero are only gated)."""
    sp = layer.compression.sparsity
    kind = sp.kind if g.b_is_weight else "dense"
    if kind in ("dense", "channel", "filter") or (sp.effective_density >= 1.0 and kind not in ("gs", "nm")):
        return "column"
    return "kernel" if kind in ("unstructured", "pattern", "nm") else "static"


def _effectual_per_vector(g: Gemm, view: np.ndarray | None, side: ActSide, useful: float) -> float:
    """Effectual MACs (weight non-zero AND activation non-zero) per input vector: exact from a
    real weight mask and real activation rows (activation rows x per-column weight non-zeros),
    else ``useful x density`` (independent weight and activation zeros)."""
    if view is not None and side.rows is not None and side.rows.shape[1] == view.shape[0] * view.shape[2]:
        col_nnz = view.sum(axis=1, dtype=np.int64).reshape(-1)
        return float((side.rows @ col_nnz).mean()) if side.rows.shape[0] else 0.0
    if side.rows is not None and view is None and g.b_is_weight and side.rows.shape[1] == g.k * g.b_distinct:
        return useful * float(side.rows.mean())
    return useful * side.density


def _skip_work(layer: LayerBase, g: Gemm, w: MatrixWork, side: ActSide, eff: float, ctx: _Ctx,
               notes: list[str]) -> MatrixWork:
    """Compute ``skip`` on inputs: the work per input vector once zero activations are dropped."""
    how = _compactable(layer, g)
    if how == "column":  # dense weights: a zero activation skips its broadcast + V-row vector MACs
        hw = ctx.hw
        groups = ceil_div(g.n, hw.lanes) * g.b_distinct
        instr = w.instructions * (eff / w.useful_macs) if w.useful_macs else 0.0
        over = groups * hw.loop_overhead_cycles
        return MatrixWork("dense-vertical-actskip", instr + over, instr, instr + over, eff, broadcast_reads=instr,
                          value_bits=w.value_bits, read_value_words=eff)
    if how == "static":
        notes.append(f"{layer.compression.sparsity.kind} entries are packed offline: zero activations gate their "
                     "lanes (MAC energy) but are still gathered and issued")
        return w
    w.useful_macs = eff  # kernels measured cycles on the sampled vectors; MACs exact
    w.read_value_words = eff
    return w


class GatherScatterEngine(Engine[GatherScatterHardware]):
    """Engine for :class:`~accelsim.hardware.gather_scatter.GatherScatterHardware`."""

    ignore_reasons = {"act_sparsity": "sparsity.compute does not gate or skip zero inputs on this config (every "
                                      "gathered pair is multiplied)"}

    def exploited(self, hw: GatherScatterHardware) -> frozenset[str]:
        return self.exploits | ({"act_sparsity"} if hw.act_zero != "none" else set())


    def supports(self, layer: LayerBase, hw: GatherScatterHardware) -> tuple[bool, str]:
        return True, ""

    @tile_bounded
    def lower(self, layer: LayerBase, hw: GatherScatterHardware, workload: Workload | None = None) -> LayerProgram:
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        q = layer.compression.quant
        sp = layer.compression.sparsity
        ab, wb = q.act_bits, q.weight_bits
        ctx = _Ctx(hw, wb, sp.index_bits or hw.index_bits)
        mask = layer_mask(workload, layer)
        views = gemm_weight_views(layer, mask) if mask is not None else None
        expected = mask is None and sp.kind not in ("dense", "channel", "filter")
        nodes: list[Node] = []
        totals: dict[str, float] = dict.fromkeys(
            ["macs", "cycles", "ideal", "instr", "gathered", "scattered", "bcast", "reduces", "rv_words", "ri_bits",
             "spad_fill_words", "outputs"], 0.0)
        dram: dict[str, int] = {"ifmap": 0, "filter": 0, "index": 0}
        dram_w = {"ofmap": 0}
        compulsory = 0
        forms: list[str] = []
        mode = hw.act_zero
        dram_fmt = hw.sparsity.level("dram").format.inputs
        spad_fmt = hw.sparsity.level("scratchpad").format.inputs
        found = act_side(layer, workload) if (mode != "none" or dram_fmt != "uncompressed") else None
        side = found if mode != "none" else None
        storage = act_storage(layer, found, dram_fmt, ab)
        skip_meta = act_storage(layer, side, "bitmask" if spad_fmt == "uncompressed" else spad_fmt, ab).metadata_per_word
        a_word_bits = storage.payload_per_word + storage.metadata_per_word
        act_notes: list[str] = []
        totals["eff_macs"] = totals["act_meta_bits"] = 0.0
        for gi, g in enumerate(layer.gemms()):
            view = views[gi] if views is not None and g.b_is_weight else None
            g_side = side if g.b_is_weight else None
            act_rows = None
            if g_side is not None and mode == "skip" and _compactable(layer, g) == "kernel":
                act_rows = g_side.sample_rows(hw.act_sample_vectors, g.k * g.b_distinct, hw.expected_seed)
            w = matrix_work(layer, g, view, ctx, act_rows)
            eff = w.useful_macs
            if g_side is not None:
                eff = _effectual_per_vector(g, view, g_side, w.base_macs)
                if mode == "skip":
                    w = _skip_work(layer, g, w, g_side, eff, ctx, act_notes)
                    totals["act_meta_bits"] += skip_meta * g.k * g.b_distinct * (
                        g.m * g.count // g.b_distinct)
            forms.append(w.form)
            vectors = g.m * g.count // g.b_distinct
            a_total = g.a_unique * g.count
            c_total = g.c_unique * g.count
            wbits = w.value_bits + w.index_bits
            g_nodes, d_a, d_w, d_c = self._tiles(layer, g, vectors, w, a_total, c_total, ab, hw, a_word_bits)
            nodes.extend(g_nodes)
            share_v = w.value_bits / wbits if wbits else 1.0
            share_a = storage.payload_per_word / a_word_bits if a_word_bits else 1.0
            dram["ifmap"] += int(round(d_a * share_a))
            if storage.metadata_per_word:
                dram["ifmap_meta"] = dram.get("ifmap_meta", 0) + d_a - int(round(d_a * share_a))
            dram["filter"] += int(round(d_w * share_v))
            dram["index"] += d_w - int(round(d_w * share_v))
            dram_w["ofmap"] += d_c
            compulsory += int(round(a_total * a_word_bits)) + wbits
            totals["eff_macs"] += eff * vectors
            for key, val in (("macs", w.useful_macs), ("cycles", w.cycles), ("ideal", w.ideal_cycles),
                             ("instr", w.instructions), ("gathered", w.gathered), ("scattered", w.scattered),
                             ("bcast", w.broadcast_reads), ("reduces", w.reduces), ("rv_words", w.read_value_words),
                             ("ri_bits", w.read_index_bits)):
                totals[key] += val * vectors
            totals["spad_fill_words"] += d_a / ab
            totals["outputs"] += c_total
        body = tuple(nodes)
        macs = int(round(totals["macs"] if side is None else totals["eff_macs"]))
        compute_cycles = sum(node_cycles(n) for n in body)
        acc = hw.energy.accumulator_bits
        actions = [
            Action("mac", "mac", macs, wb, ab, q.scheme),
            Action("gather_unit", "gather", int(round(totals["gathered"])), ab),
            Action("gather_unit", "scatter", int(round(totals["scattered"])), acc),
            Action("scratchpad", "read", int(round(totals["gathered"] + totals["bcast"])), ab),
            Action("scratchpad", "read", int(round(totals["act_meta_bits"] / 8)), 8),
            Action("scratchpad", "write", int(round(totals["spad_fill_words"])), ab),
            Action("scratchpad", "write", int(totals["outputs"]), ab),
            Action("scratchpad", "read", int(totals["outputs"]), ab),
            Action("weight_buffer", "write", (dram["filter"] + dram["index"]) // 8, 8),
            Action("weight_buffer", "read", int(round(totals["rv_words"])), wb),
            Action("weight_buffer", "read", int(round(totals["ri_bits"] / 8)), 8),
            Action("vector", "add", int(round(totals["reduces"])) * max(hw.lanes - 1, 0), acc),
            Action("dram", "read", dram["ifmap"] // ab, ab),
            Action("dram", "read", dram.get("ifmap_meta", 0) // 8, 8),
            Action("dram", "read", (dram["filter"] + dram["index"]) // 8, 8),
            Action("dram", "write", dram_w["ofmap"] // ab, ab),
        ]
        lane_util = totals["macs"] / (totals["instr"] * hw.lanes) if totals["instr"] else 0.0
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="gather_scatter", body=body, compute_cycles=compute_cycles,
            actions=[a for a in actions if a.count], macs=macs,
            dense_macs=layer.densified().macs if not layer.compression.is_dense else layer.macs,
            pe_count=hw.lanes, mapping_efficiency=min(lane_util, 1.0),
            dram_read_bits=dict(dram), dram_write_bits=dict(dram_w), compulsory_read_bits=compulsory,
            compulsory_write_bits=int(totals["outputs"]) * ab,
            sram_accesses={
                "scratchpad_reads": int(round(totals["gathered"] + totals["bcast"] + totals["outputs"])),
                "scratchpad_writes": int(round(totals["spad_fill_words"] + totals["outputs"])),
                "weight_buffer_reads": int(round(totals["rv_words"])),
            },
            extra={
                "vector_instructions": totals["instr"], "lane_utilization": lane_util,
                "bank_conflict_cycles": totals["cycles"] - totals["ideal"],
                "gathered_elements": totals["gathered"], "index_dram_bytes": dram["index"] / 8,
                "mask_measured": 0.0 if expected else 1.0,
                "effectual_macs": totals["eff_macs"],
            },
        )
        if side is not None:
            prog.extra["act_density_used"] = side.density
            prog.extra["act_mask_measured"] = 1.0 if side.measured else 0.0
            prog.notes.append(f"activation sparsity exploited ({mode}) from {side.source}"
                              + (f"; positions read from a {'bitmask written on fill' if spad_fmt == 'uncompressed' else spad_fmt} scratchpad"
                                 if mode == "skip" else ""))
            prog.notes.extend(dict.fromkeys(act_notes))
        if found is not None and dram_fmt != "uncompressed":
            prog.notes.append(f"input activations move from DRAM as {dram_fmt} ({storage.metadata_per_word:.2f} "
                              f"metadata bits per word, from {found.source})")
        prog.notes.extend(level_notes(hw.sparsity, "gather_scatter"))
        prog.notes.append("format: " + ", ".join(dict.fromkeys(forms)))
        if expected:
            prog.notes.append(f"no mask: expected {sp.kind} work at density {sp.effective_density:.3f} (i.i.d. masks; "
                              f"{hw.expected_sample_groups} seeded sample row groups per matrix)")
        elif mask is not None:
            prog.notes.append(f"mask '{sp.mask}' measured: per-row/group work and bank conflicts from the real non-zeros")
        if layer.compression.factorization.kind not in ("none", "smartexchange"):  # smartexchange: Engine note
            prog.notes.append(f"{layer.compression.factorization.kind} factorization not used: weights run as stored")
        return prog

    # ------------------------------------------------------------------------------------
    def _tiles(self, layer: LayerBase, g: Gemm, vectors: int, w: MatrixWork, a_total: int, c_total: int, ab: int,
               hw: GatherScatterHardware, a_word_bits: float | None = None) -> tuple[list[Node], int, int, int]:
        """Tiles of one GEMM and its DRAM bits (activations at ``a_word_bits`` per word in their
        storage format, default ``ab``; weights; outputs). Tiles are sized on uncompressed inputs."""
        awb = float(ab) if a_word_bits is None else float(a_word_bits)
        cap_s = hw.scratchpad.size_bits // 2
        cap_w = hw.weight_buffer.size_bits // 2
        wbits = w.value_bits + w.index_bits
        per_vec = w.cycles

        def a_words(lo: int, hi: int) -> int:
            if g.conv is not None:
                return g.a_words_for_rows(lo, hi) * g.count
            return a_total * hi // vectors - a_total * lo // vectors

        def c_words(lo: int, hi: int) -> int:
            return c_total * hi // vectors - c_total * lo // vectors

        def fits(t: int) -> bool:
            return (a_words(0, t) + c_words(0, t)) * ab <= cap_s

        lo_t, hi_t = 1, max(vectors, 1)
        while lo_t < hi_t:  # largest tile whose activations + outputs fit half the scratchpad
            mid = (lo_t + hi_t + 1) // 2
            if fits(mid):
                lo_t = mid
            else:
                hi_t = mid - 1
        t_v = lo_t
        charge_tiles(ceil_div(vectors, t_v), "scratchpad")
        bounds = [(lo, min(lo + t_v, vectors)) for lo in range(0, vectors, t_v)]
        n_tiles = len(bounds)

        def cyc(lo: int, hi: int) -> int:  # cumulative rounding keeps the total exact
            return int(round(per_vec * hi)) - int(round(per_vec * lo))

        resident = wbits <= cap_w
        chunks = max(ceil_div(wbits, cap_w), 1)
        tiles: list[Tile] = []
        d_a = d_w = d_c = 0
        weights_outer = (not resident) and (a_total * ab * chunks < wbits * n_tiles) and n_tiles > 1
        if not weights_outer:
            for i, (lo, hi) in enumerate(bounds):
                la = int(round(a_words(lo, hi) * awb))
                lw = wbits if (i == 0 or not resident) else 0
                sc = c_words(lo, hi) * ab
                d_a += la
                d_w += lw
                d_c += sc
                parts = max(ceil_div(lw, cap_w), ceil_div(la, cap_s), 1)
                tiles.extend(split_tile(Tile(la + lw, cyc(lo, hi), sc), parts))
        else:  # weight chunks outer: each chunk's rows run over every activation tile
            charge_tiles((chunks - 1) * n_tiles, "weight buffer")
            for ch in range(chunks):
                lw_total = wbits * (ch + 1) // chunks - wbits * ch // chunks
                for i, (lo, hi) in enumerate(bounds):
                    la = int(round(a_words(lo, hi) * awb))
                    lw = lw_total if i == 0 else 0
                    c_all = cyc(lo, hi)
                    cc = c_all * (ch + 1) // chunks - c_all * ch // chunks
                    cw = c_words(lo, hi) * ab
                    sc = cw * (ch + 1) // chunks - cw * ch // chunks
                    d_a += la
                    d_w += lw
                    d_c += sc
                    tiles.append(Tile(la + lw, cc, sc))
        return list(compress_runs(tiles)), d_a, d_w, d_c

    def _lower_vector(self, layer: Elementwise | Pool, hw: GatherScatterHardware) -> LayerProgram:
        return buffered_vector_program(
            layer, lanes=hw.lanes, in_buffer="scratchpad", in_buffer_bits=hw.scratchpad.size_bits, out_buffer="scratchpad",
            engine="gather_scatter.vector",
            sram_accesses={"scratchpad_reads": layer.input_words + layer.output_words,
                           "scratchpad_writes": layer.input_words + layer.output_words},
        )
