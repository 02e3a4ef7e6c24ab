"""Memristor crossbar engine (ISAAC / NeuroSim style): weight-stationary mapping, bit-serial timing.

**Mapping.** Every weight of the network stays in crossbars for the whole run (weights are
programmed once; programming time and energy are not counted). A GEMM's weight matrix
(``K`` reduction rows x ``N`` outputs, ``distinct`` copies for conv groups / weight heads) is
cut into *crossbar blocks* of ``rows`` reduction indices x ``W`` outputs, where ``W = cols //
cpw`` (slices in adjacent columns) or ``cols`` (one crossbar per slice, ``slice_layout:
separate``); ``cpw = ceil(weight_bits / cell_bits)``, doubled for differential pairs. A block
occupies 1 (adjacent) or ``cpw`` (separate) crossbars. Conv weights are flattened as PyTorch's
``weight.reshape(out, -1)`` (input channel, kh, kw) so crossbar rows are consecutive runs of
that order. A layer's crossbars are packed into whole IMAs (an IMA serves one layer); the IMAs
of all layers fill tiles, tiles fill chips (``max_chips`` is a budget: more is an
:class:`~accelsim.errors.InfeasibleError`).

**Crossbar-block pruning.** A block whose weights are all zero is neither allocated (no
crossbar, DACs, S&H, ADCs; fewer IMAs/tiles/chips -> less area and static power) nor computed.
With a real mask (``workload.mask(layer)``: conv ``(out, in/groups, kh, kw)``, linear
``(out, in)``) the non-empty blocks are counted exactly (numba,
:mod:`~accelsim.engines.crossbar_kernels`). Without one, a block is non-empty with probability
``1 - (1 - density)^u`` where ``u`` is the number of pruning units the block overlaps
(``block``: ``ceil(rows/block_w) ceil(W/block_h)`` blocks; ``pattern``: kernels at
``kernel_density``; ``unstructured``/``gs``: elements -- practically never empty; ``nm``,
``channel``/``filter`` (already shrunk) and dense: always non-empty) -- the expectation under
independent random placement, rounded. Zeros inside a non-empty block are computed.

**Replication** (``mapping.replication``) gives a layer ``r`` copies of its crossbars; its
input vectors are spread over the copies (``ceil(V / r)`` rounds). ``balance`` spends the
``max_chips`` budget's spare IMAs greedily on the copy that saves the most cycles per IMA.

**Timing.** One round (a vector through every block of a layer, all blocks in parallel) takes
``ceil(act_bits / dac_bits)`` steps of :attr:`~accelsim.hardware.crossbar.CrossbarAccelerator.step_ns`
(read and ADC conversion pipelined through S&H, or sequential mux reads without it), or the
tile-buffer transfer time when ``tile.buffer.bw_bits_per_ns`` is given and slower. A layer
takes ``rounds x round`` plus one crossbar read of pipeline fill per GEMM; several GEMMs of a
layer (LSTM input and recurrent projection) run one after another. The SimPy pipeline sees the
layer as tiles of rounds: loads/stores are the layer's DRAM traffic. Activations live in the
tile buffers (the allocated tiles' buffers pooled); a layer reads its input from DRAM when it
is the first layer or its input exceeds half the pooled buffer, and writes its output to DRAM
when it is the last layer or its output exceeds half of it.

**Action counts** per vector and non-empty block (``R`` used rows, ``C`` used outputs,
``s`` steps, ``x`` crossbars per block): DAC drives ``R x s``, crossbar row reads ``R x x s
(x columns_per_adc without S&H)``, ADC conversions = S&H samples = IMA shift-adds
``C cpw s``; input register write ``R ab`` bits and read ``R ab x``; output register
``2 C psum_bits``; bus ``R ab + C psum_bits``; tile buffer reads ``R ab`` + ``outputs ab``
(to the next layer) and writes ``outputs ab`` plus the layer input once; router: layer input
once + ``outputs ab`` per vector (+ partial sums when a layer spans tiles); tile shift-add
(partial-sum merges of row blocks + one offset correction per output with ``offset``
encoding) and tile output register ``2 psum_bits`` per merge; one activation op per output.
Pooling / element-wise layers run on the tile pooling / activation units of all allocated
tiles (throughput ``ops_per_ns``), reading and writing the tile buffers.

**Static energy** (leakage of every allocated unit: ISAAC's HyperTransport links, eDRAM
refresh, ...) is charged per layer as ``static`` actions over ``max(compute cycles, DRAM
transfer cycles) + DRAM latency`` -- an estimate of the layer's latency made before the SimPy
run (stalls beyond plain DRAM-boundness are not charged).

**Zero activations** (``sparsity.compute`` acting on ``inputs``, :mod:`.act_sparsity`; a
non-zero activation is assumed non-zero in every bit slice): ``gate`` drives no row whose
input is zero (DAC drives, row reads and input-register reads x the driven fraction), same
conversions and time; ``skip`` also lets a crossbar block whose rows are all zero for a
vector skip its waves (no read, ADC conversion, S&H sample or shift-add: x the busy-block
fraction), while the crossbars stay in lock-step, so a round is saved only when the whole
vector is zero. Statistical: ``1 - P(empty)`` of the uniform model for the block's rows;
actual: counted on the real view. ``extra['effectual_macs']``: non-zero weights (or cells
without a mask) x driven rows.

**Input formats** (``sparsity.levels.dram|tile_buffer.format.inputs``,
:func:`.act_sparsity.input_formats`): a layer input fetched from DRAM moves at the DRAM
format's payload + metadata bits per word (``ifmap`` / ``ifmap_meta``; whether it is fetched
is still decided on its uncompressed size, as its producer wrote it); it is written to the
tile buffer (and routed) at the tile buffer format's bits. Rows are driven from decoded words:
reads, DAC drives and input bit-slice skipping are unchanged. Weight/output formats at these
levels are named in the notes as unused.

**Ignored**: inter-layer pipelining (ISAAC streams layers through each other; here layers run
one after another), activation x activation products (attention:
unsupported), chip-to-chip traffic (only the link's static power), crossbar programming,
analog non-idealities (IR drop, variation, drift, ADC clipping effects on accuracy), NoC
contention and distances, and the latency of the digital tail (shift-add, activation) after
the last step of a round.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, InfeasibleError, MaskError
from ..hardware.crossbar import Allocation, CrossbarAccelerator
from ..stats import Action, LayerProgram, Tile, tile_bounded
from ..workload.layer import Conv2d, Elementwise, Gemm, LayerBase, Linear, Matmul, Pool, ceil_div
from ..workload.masks import layer_mask
from ..workload.workload import Workload
from ..sparsity import Uniform
from .act_sparsity import ActSide, InputFormats, act_side, input_formats, level_notes, vector_format_notes
from .base import Engine
from .crossbar_kernels import block_nnz
from .lowering import VectorWork, compress_runs, vector_program

MAX_CHUNKS = 64  # SimPy tiles per GEMM at most (rounds are grouped into chunks)
MIN_CHUNKS_WITH_DRAM = 8


# --- mapping records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GemmMapping:
    """How one GEMM of a layer sits in crossbars (sums run over non-empty blocks of all copies)."""

    tag: str
    k: int
    n: int
    distinct: int
    vectors: int
    weight_bits: int
    act_bits: int
    rows: int
    wcols: int
    cpw: int
    xbars_per_block: int
    row_blocks: int
    col_blocks: int
    nonempty_blocks: int
    rows_used: int
    cols_used: int
    cells_used: int
    merges: int
    source: str
    nonzeros: int | None = None
    packed: int = 1  # copies (groups) sharing one block, block-diagonally

    @property
    def total_blocks(self) -> int:
        return self.row_blocks * self.col_blocks * ceil_div(self.distinct, self.packed)

    @property
    def crossbars(self) -> int:
        return self.nonempty_blocks * self.xbars_per_block

    @property
    def outputs(self) -> int:
        """Outputs of one vector over all copies."""
        return self.n * self.distinct

    @property
    def weight_slots(self) -> int:
        """Weights the allocated crossbars can hold."""
        return self.nonempty_blocks * self.rows * self.wcols


@dataclass
class LayerMapping:
    layer: str
    gemms: tuple[GemmMapping, ...]
    crossbars_per_copy: int
    imas_per_copy: int
    mvm_cycles: int
    replication: int = 1

    @property
    def crossbars(self) -> int:
        return self.crossbars_per_copy * self.replication

    @property
    def imas(self) -> int:
        return self.imas_per_copy * self.replication

    def rounds(self, replication: int | None = None) -> list[int]:
        r = self.replication if replication is None else replication
        return [ceil_div(g.vectors, r) for g in self.gemms]

    def cycles(self, replication: int | None = None) -> int:
        return sum(self.rounds(replication)) * self.mvm_cycles


@dataclass
class ChipMapping:
    """A workload mapped onto crossbars: per-layer mappings and the hardware they allocate."""

    workload: str
    layers: dict[str, LayerMapping]
    order: list[str]
    allocation: Allocation
    buffer_bits: int
    notes: list[str] = field(default_factory=list)

    @property
    def crossbars(self) -> int:
        return self.allocation.crossbars

    def summary(self) -> dict[str, float]:
        blocks = sum(g.total_blocks for lm in self.layers.values() for g in lm.gemms)
        nonempty = sum(g.nonempty_blocks for lm in self.layers.values() for g in lm.gemms)
        return {"crossbars": self.allocation.crossbars, "imas": self.allocation.imas, "tiles": self.allocation.tiles,
                "chips": self.allocation.chips, "crossbar_blocks": blocks, "nonempty_blocks": nonempty}


# --- block statistics -----------------------------------------------------------------------------

def block_shape(layer: LayerBase, hw: CrossbarAccelerator) -> tuple[int, int]:
    """(reduction rows, outputs) one crossbar block of ``layer`` spans on ``hw``."""
    wb = layer.compression.quant.weight_bits
    return hw.crossbar.rows, hw.weight_cols_per_block(wb)


def _sizes(total: int, block: int) -> np.ndarray:
    nb = ceil_div(total, block)
    s = np.full(nb, block, dtype=np.int64)
    s[-1] = total - block * (nb - 1)
    return s


def _mask_matrix(layer: LayerBase, mask: np.ndarray, source: str) -> tuple[np.ndarray, int]:
    """(out, reduction) view of a mask and the number of groups; shape checked."""
    where = f"{layer.name}.compression.sparsity.mask"
    if isinstance(layer, Conv2d):
        expected: tuple[int, ...] = (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_h, layer.kernel_w)
        groups = layer.groups
    elif isinstance(layer, Linear):
        expected = (layer.out_features, layer.in_features)
        groups = 1
    else:
        raise MaskError(f"the crossbar engine reads masks of conv2d and linear layers only, not {layer.op}",
                        source=source, field=where)
    if tuple(mask.shape) != expected:
        raise MaskError(f"mask shape {tuple(mask.shape)} does not match the layer's weight shape {expected}",
                        source=source, field=where)
    return mask.reshape(expected[0], -1), groups


def _p_nonempty(layer: LayerBase, rows_used: np.ndarray, cols_used: np.ndarray) -> tuple[np.ndarray, str]:
    """Probability that a block of the given used extents holds a non-zero (no real mask)."""
    sp = layer.compression.sparsity
    kind, d = sp.kind, sp.effective_density
    shape = (rows_used.size, cols_used.size)
    if kind in ("dense", "channel", "filter", "nm") or d >= 1.0:
        return np.ones(shape), "dense" if kind == "dense" else f"{kind} (no block can be empty)"
    r = rows_used[:, None].astype(float)
    c = cols_used[None, :].astype(float)
    if kind == "block":
        assert sp.block_h is not None and sp.block_w is not None
        units = np.ceil(r / sp.block_w) * np.ceil(c / sp.block_h)
    elif kind == "pattern":
        if sp.kernel_density is None:
            return np.ones(shape), "pattern (no kernel pruning)"
        ksz = layer.kernel_h * layer.kernel_w if isinstance(layer, Conv2d) else 1
        units = np.ceil(r / ksz) * c
        d = sp.kernel_density
    else:  # unstructured, gs: any element may be zero on its own
        units = r * c
    return 1.0 - (1.0 - d) ** units, f"{kind} estimate"


def _gemm_mapping(layer: LayerBase, g: Gemm, hw: CrossbarAccelerator, mask2d: np.ndarray | None,
                  groups: int) -> GemmMapping:
    q = layer.compression.quant
    wb, ab = q.weight_bits, q.act_bits
    rows, wcols = block_shape(layer, hw)
    cpw, xpb = hw.columns_per_weight(wb), hw.crossbars_per_block(wb)
    distinct = g.b_distinct
    vectors = g.m * g.count // distinct
    rs, cs = _sizes(g.k, rows), _sizes(g.n, wcols)
    rb, cb = rs.size, cs.size
    nonzeros = None
    common = dict(tag=g.tag, k=g.k, n=g.n, distinct=distinct, vectors=vectors, weight_bits=wb, act_bits=ab,
                  rows=rows, wcols=wcols, cpw=cpw, xbars_per_block=xpb, row_blocks=rb, col_blocks=cb)
    pack = min(rows // g.k, wcols // g.n, distinct) if hw.mapping.pack_groups and distinct > 1 else 1
    if pack > 1:  # every group is one block: pack the non-empty groups block-diagonally
        if mask2d is not None:
            counts = block_nnz(mask2d, groups, rows, wcols)
            nonzeros = int(counts.sum())
            kept, source = int((counts.reshape(distinct) > 0).sum()), "mask"
        else:
            p, source = _p_nonempty(layer, rs, cs)
            kept = distinct if source == "dense" else max(1, int(round(float(p[0, 0]) * distinct)))
        return GemmMapping(**common, nonempty_blocks=ceil_div(kept, pack), rows_used=kept * g.k, cols_used=kept * g.n,
                           cells_used=kept * g.k * g.n, merges=0, source=source, nonzeros=nonzeros, packed=pack)
    if mask2d is not None:
        counts = block_nnz(mask2d, groups, rows, wcols)  # (distinct, rb, cb)
        ne = counts > 0
        nonzeros = int(counts.sum())
        nonempty = int(ne.sum())
        rows_used = int((ne * rs[None, :, None]).sum())
        cols_used = int((ne * cs[None, None, :]).sum())
        cells = int((ne * (rs[:, None] * cs[None, :])[None]).sum())
        per_col = ne.sum(axis=1)  # (distinct, cb)
        merges = int((np.maximum(per_col - 1, 0) * cs[None, :]).sum())
        source = "mask"
    else:
        p, source = _p_nonempty(layer, rs, cs)
        if source == "dense" or np.all(p >= 1.0):
            nonempty, rows_used, cols_used = rb * cb * distinct, g.k * cb * distinct, g.n * rb * distinct
            cells, merges = g.k * g.n * distinct, (rb - 1) * g.n * distinct
        else:
            expected = float(p.sum()) * distinct
            nonempty = max(1, int(round(expected)))
            scale = nonempty / expected if expected > 0 else 0.0
            rows_used = int(round(float((p * rs[:, None]).sum()) * distinct * scale))
            cols_used = int(round(float((p * cs[None, :]).sum()) * distinct * scale))
            cells = int(round(float((p * rs[:, None] * cs[None, :]).sum()) * distinct * scale))
            e_merges = (p.sum(axis=0) - (1.0 - np.prod(1.0 - p, axis=0))) * cs
            merges = int(round(float(e_merges.sum()) * distinct * scale))
    return GemmMapping(**common, nonempty_blocks=nonempty, rows_used=rows_used, cols_used=cols_used,
                       cells_used=cells, merges=merges, source=source, nonzeros=nonzeros)


def _layer_mapping(layer: LayerBase, hw: CrossbarAccelerator, workload: Workload) -> LayerMapping:
    mask = layer_mask(workload, layer)
    mask2d, groups = None, 1
    if mask is not None:
        mask2d, groups = _mask_matrix(layer, np.asarray(mask), workload.mask_source)
    gms = tuple(_gemm_mapping(layer, g, hw, mask2d, groups) for g in layer.gemms())
    xbars = sum(g.crossbars for g in gms)
    imas = ceil_div(xbars, hw.ima.crossbars)
    mvm = max(hw.ns_to_cycles(hw.mvm_ns(layer.compression.quant.act_bits)), 1)
    return LayerMapping(layer=layer.name, gemms=gms, crossbars_per_copy=xbars, imas_per_copy=imas, mvm_cycles=mvm)


def _replicate(maps: dict[str, LayerMapping], hw: CrossbarAccelerator, workload: Workload, notes: list[str]) -> None:
    rep = hw.mapping.replication
    cap = hw.mapping.max_replication
    if isinstance(rep, dict):
        for name, r in rep.items():
            if name not in maps:
                known = ", ".join(list(maps)[:8])
                raise ConfigError(f"no crossbar-mapped layer {name!r} in workload '{workload.name}' (e.g. {known})",
                                  source=hw.name, field=f"mapping.replication.{name}")
            most = max(g.vectors for g in maps[name].gemms)
            maps[name].replication = min(r, most, cap)
            if maps[name].replication < r:
                notes.append(f"replication of {name} capped at {maps[name].replication} (vectors per copy / max_replication)")
        return
    if rep != "balance":
        return
    assert hw.max_chips is not None
    budget = hw.max_chips * hw.chip.tiles * hw.tile.imas
    spare = budget - sum(m.imas for m in maps.values())
    if spare <= 0:
        return
    heap: list[tuple[float, int, str]] = []

    def push(name: str, i: int) -> None:
        m = maps[name]
        r = m.replication
        if r >= cap or r >= max(g.vectors for g in m.gemms):
            return
        gain = m.cycles(r) - m.cycles(r + 1)
        if gain > 0:
            heapq.heappush(heap, (-gain / m.imas_per_copy, i, name))

    for i, name in enumerate(maps):
        push(name, i)
    order = {name: i for i, name in enumerate(maps)}
    while heap and spare > 0:
        _, i, name = heapq.heappop(heap)
        m = maps[name]
        if m.imas_per_copy > spare:
            continue  # cannot afford another copy of this layer; others may still fit
        m.replication += 1
        spare -= m.imas_per_copy
        push(name, order[name])


def _build_mapping(workload: Workload, hw: CrossbarAccelerator) -> ChipMapping:
    maps: dict[str, LayerMapping] = {}
    for layer in workload.layers:
        if layer.is_compute and CrossbarEngine().supports(layer, hw)[0]:
            maps[layer.name] = _layer_mapping(layer, hw, workload)
    notes: list[str] = []
    _replicate(maps, hw, workload, notes)
    crossbars = sum(m.crossbars for m in maps.values())
    imas = sum(m.imas for m in maps.values())
    tiles = max(1, ceil_div(imas, hw.tile.imas))
    chips = ceil_div(tiles, hw.chip.tiles)
    if hw.max_chips is not None and chips > hw.max_chips:
        raise InfeasibleError(
            f"workload '{workload.name}' needs {chips} chips ({tiles:,} tiles, {imas:,} IMAs, {crossbars:,} crossbars) "
            f"but hardware '{hw.name}' allows max_chips {hw.max_chips}; raise max_chips, prune/quantize more, "
            f"or use larger crossbars/cells")
    alloc = Allocation(crossbars=crossbars, imas=imas, tiles=tiles, chips=chips)
    return ChipMapping(workload=workload.name, layers=maps, order=[layer.name for layer in workload.layers],
                       allocation=alloc, buffer_bits=tiles * hw.tile.buffer.size_bits, notes=notes)


_CACHE: dict[tuple[int, int], tuple[Workload, CrossbarAccelerator, object, ChipMapping]] = {}
_CACHE_SIZE = 8


def map_workload(workload: Workload, hw: CrossbarAccelerator) -> ChipMapping:
    """Map every crossbar-capable layer of ``workload`` onto ``hw`` (cached per workload and hardware)."""
    key = (id(workload), id(hw))
    hit = _CACHE.get(key)
    masks = workload._mask_cache
    if hit is not None and hit[0] is workload and hit[1] == hw and hit[2] is masks:
        return hit[3]
    result = _build_mapping(workload, hw)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (workload, hw, workload._mask_cache, result)
    return result


# --- lowering ---------------------------------------------------------------------------------------

def _chunk_tiles(rounds: int, cycles_per_round: int, fill: int, load_bits: int, store_bits: int,
                 half_buffer_bits: int) -> list[Tile]:
    """Split ``rounds`` into SimPy tiles; DRAM loads/stores spread over them in proportion."""
    if load_bits == 0 and store_bits == 0:
        n = 1
    else:
        need = ceil_div(max(load_bits, store_bits), max(half_buffer_bits, 1))
        n = min(rounds, MAX_CHUNKS, max(MIN_CHUNKS_WITH_DRAM, need))
    n = max(1, min(n, rounds)) if rounds > 0 else 1
    tiles: list[Tile] = []
    done = lb_done = sb_done = 0
    for i in range(n):
        r = rounds * (i + 1) // n - rounds * i // n
        done += r
        lb = load_bits * done // max(rounds, 1) - lb_done if rounds else load_bits
        sb = store_bits * done // max(rounds, 1) - sb_done if rounds else store_bits
        lb_done += lb
        sb_done += sb
        tiles.append(Tile(load_bits=lb, compute_cycles=r * cycles_per_round + (fill if i == 0 else 0), store_bits=sb))
    return tiles


@dataclass(frozen=True)
class ActWaves:
    """Activation side of one GEMM on crossbars: ``density`` of driven rows; ``busy_blocks``:
    mean over row blocks of the fraction of vectors whose rows in the block hold a non-zero (the
    block's crossbars must read and convert); ``busy_vectors``: fraction of vectors with any
    non-zero in the GEMM's rows (rounds that must run: the crossbars run in lock-step)."""

    density: float
    busy_blocks: float
    busy_vectors: float


def act_waves(g: GemmMapping, side: ActSide) -> ActWaves:
    """Statistical: a set of ``R`` rows is all zero with the uniform model's ``P(empty)`` over the
    whole input view (i.i.d. zeros) -- for a padded conv or per-channel densities ``prod (1 -
    d_channel)`` over the block's real rows per vector, averaged over the vectors (padding zeros
    cluster; a block of sparse channels is empty more often: see :mod:`.act_sparsity`); actual: counted on the real view's vectors. Packed groups
    share a block: its rows are the ``packed`` groups' reduction elements together."""
    k, inst = g.k, g.distinct
    if g.packed > 1:
        sizes = np.full(ceil_div(inst, g.packed), g.packed * k, dtype=np.int64)
        sizes[-1] = (inst - g.packed * (sizes.size - 1)) * k
        spans = [(int(b * g.packed * k), int(b * g.packed * k + sz)) for b, sz in enumerate(sizes)]
    else:
        rs = _sizes(k, g.rows)
        starts = np.concatenate([[0], np.cumsum(rs)[:-1]])
        spans = [(i * k + int(a), i * k + int(a + sz)) for i in range(inst) for a, sz in zip(starts, rs)]
    if side.structured:  # padding pattern / per-channel densities: i.i.d. over the real inputs only
        busy_sets = side.busy_sets(spans + [(0, k * inst)], k * inst)
        return ActWaves(side.density, float(busy_sets[:-1].mean()), float(busy_sets[-1]))
    if side.rows is None or side.rows.shape[1] != k * inst:
        dens = side.density if side.rows is None else float(side.rows.mean())
        model = Uniform(dens, max(g.vectors * k * inst, k * inst))
        busy = np.array([1.0 - model.prob_empty(hi - lo) for lo, hi in spans])
        return ActWaves(dens, float(busy.mean()), 1.0 - model.prob_empty(k * inst))
    rows = side.rows
    if rows.shape[0] == 0:
        return ActWaves(0.0, 0.0, 0.0)
    busy = np.array([rows[:, lo:hi].any(axis=1).mean() for lo, hi in spans])
    return ActWaves(float(rows.mean()), float(busy.mean()), float(rows.any(axis=1).mean()))


class CrossbarEngine(Engine[CrossbarAccelerator]):
    """Engine for :class:`~accelsim.hardware.crossbar.CrossbarAccelerator`."""

    ignore_reasons = {"act_sparsity": "sparsity.compute does not gate or skip zero inputs on this config "
                                      "(bit-serial DACs drive every row)",
                      "smartexchange": "SmartExchange factors are stored rebuilt (dense weights) in the crossbars"}

    def exploited(self, hw: CrossbarAccelerator) -> frozenset[str]:
        return self.exploits | ({"act_sparsity"} if hw.act_zero != "none" else set())

    def area_mm2(self, workload: Workload, hw: CrossbarAccelerator) -> dict[str, float]:
        """Area by component of the crossbars, IMAs and tiles ``workload`` occupies (pruned blocks excluded)."""
        return hw.area_mm2_of(map_workload(workload, hw).allocation)

    def supports(self, layer: LayerBase, hw: CrossbarAccelerator) -> tuple[bool, str]:
        if isinstance(layer, Matmul) and layer.b_operand == "activation":
            return False, ("activation x activation products (attention) would need crossbar writes for every "
                           "input; only weights can stay in crossbars")
        q = layer.compression.quant
        if q.scheme == "float":
            return False, "crossbars store fixed-point conductance levels; quantize float weights first"
        if layer.is_compute and hw.slice_layout == "adjacent" and hw.columns_per_weight(q.weight_bits) > hw.crossbar.cols:
            return False, (f"{q.weight_bits}-bit weights need {hw.columns_per_weight(q.weight_bits)} columns but the "
                           f"crossbar has {hw.crossbar.cols} (use more cell bits or slice_layout: separate)")
        return True, ""

    # ----------------------------------------------------------------------------------------
    def _context(self, layer: LayerBase, hw: CrossbarAccelerator, workload: Workload | None) -> tuple[Workload, ChipMapping]:
        if workload is not None:
            try:
                same = workload[layer.name] == layer
            except KeyError:
                same = False
            wl = workload if same else workload.with_layers([layer])
        else:
            wl = Workload(name=layer.name, layers=[layer])
        return wl, map_workload(wl, hw)

    def _dram_sides(self, layer: LayerBase, wl: Workload, cm: ChipMapping) -> tuple[int, int]:
        ab = layer.compression.quant.act_bits
        idx = cm.order.index(layer.name)
        half = cm.buffer_bits // 2
        in_bits, out_bits = layer.input_words * ab, layer.output_words * ab
        from_dram = idx == 0 or in_bits > half
        to_dram = idx == len(cm.order) - 1 or out_bits > half
        return (in_bits if from_dram else 0), (out_bits if to_dram else 0)

    def _static(self, hw: CrossbarAccelerator, cm: ChipMapping, compute_cycles: int, dram_bits: int) -> list[Action]:
        dram_cycles = math.ceil(dram_bits / hw.dram_bits_per_cycle()) if dram_bits else 0
        cycles = max(compute_cycles, dram_cycles) + (hw.dram.latency_cycles if dram_bits else 0)
        return [Action(comp, act, units * cycles, 1) for comp, act, units, _ in hw.static_groups(cm.allocation)]

    @tile_bounded
    def lower(self, layer: LayerBase, hw: CrossbarAccelerator, workload: Workload | None = None) -> LayerProgram:
        wl, cm = self._context(layer, hw, workload)
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_digital(layer, hw, wl, cm)
        lm = cm.layers[layer.name]
        q = layer.compression.quant
        ab, psum = q.act_bits, hw.psum_bits
        steps = hw.input_steps(ab)
        r = lm.replication
        layer_tiles = max(1, ceil_div(lm.imas, hw.tile.imas))
        load_bits, store_bits = self._dram_sides(layer, wl, cm)
        formats = input_formats(layer, workload if workload is not None else wl, hw.sparsity, "crossbar",
                                ("dram", "tile_buffer"), ab,
                                {"weights": "weights sit in crossbar cells (programmed once, no weight traffic)",
                                 "outputs": "outputs are written uncompressed"})
        load_pay, load_meta = InputFormats.split(load_bits // ab, formats.dram) if load_bits else (0, 0)
        load_bits = load_pay + load_meta
        half = cm.buffer_bits // 2
        fill = hw.ns_to_cycles(hw.fill_ns)
        bw = hw.buffer_bw_bits_per_ns()
        nodes: list[Tile] = []
        acts: dict[tuple[str, str], int] = {}

        def add(comp: str, act: str, count: int) -> None:
            acts[(comp, act)] = acts.get((comp, act), 0) + int(count)

        macs = 0
        eff_macs = gated_macs = 0.0
        compute = 0
        slots = 0
        cells = 0
        mode = hw.act_zero
        side = act_side(layer, workload if workload is not None else wl) if mode != "none" else None
        waves_used: list[ActWaves] = []
        for i, g in enumerate(lm.gemms):
            mvm = lm.mvm_cycles
            if bw is not None:
                per_round_bits = r * (g.rows_used + 2 * g.outputs) * ab
                mvm = max(mvm, hw.ns_to_cycles(per_round_bits / (layer_tiles * bw)))
            rounds = ceil_div(g.vectors, r)
            drive = busy = 1.0
            if side is not None:
                wv = act_waves(g, side)
                waves_used.append(wv)
                drive = wv.density
                if mode == "skip":  # lock-step crossbars: a round is skipped when the whole vector is zero
                    rounds = ceil_div(int(math.ceil(wv.busy_vectors * g.vectors - 1e-9)), r)
                    busy = wv.busy_blocks
            lb = load_bits if i == 0 else 0
            sb = store_bits if i == len(lm.gemms) - 1 else 0
            chunk = _chunk_tiles(rounds, mvm, fill, lb, sb, half)
            nodes.extend(chunk)
            compute += sum(t.compute_cycles for t in chunk)
            v = g.vectors
            x = g.xbars_per_block
            conv = g.cols_used * g.cpw * steps
            add("dac", "drive", round(g.rows_used * steps * x * v * drive))
            add("crossbar", "row_read", round(g.rows_used * x * steps * hw.reads_per_step * v * drive))
            add("adc", "convert", round(conv * v * busy))
            if hw.sample_hold.enabled:
                add("sample_hold", "sample", round(conv * v * busy))
            add("shift_add", "op", round(conv * v * busy))
            add("input_register", "write", g.rows_used * ab * v)
            add("input_register", "read", round(g.rows_used * ab * x * v * drive))
            add("output_register", "write", g.cols_used * psum * v)
            add("output_register", "read", g.cols_used * psum * v)
            add("bus", "transfer", (g.rows_used * ab + g.cols_used * psum) * v)
            offset_ops = g.outputs if hw.signed_weights == "offset" else 0
            add("shift_add", "tile_op", (g.merges + offset_ops) * v)
            add("output_register", "tile_write", g.merges * psum * v)
            add("output_register", "tile_read", g.merges * psum * v)
            add("tile_buffer", "read", (g.rows_used + g.outputs) * ab * v)
            add("tile_buffer", "write", g.outputs * ab * v)
            add("router", "transfer", g.outputs * ab * v + (g.merges * psum * v if layer_tiles > 1 else 0))
            add("activation", "op", g.outputs * v)
            macs += g.cells_used * v
            eff_macs += (g.nonzeros if g.nonzeros is not None else g.cells_used) * v * drive
            gated_macs += g.cells_used * v * drive
            slots += g.weight_slots * r
            cells += g.cells_used
        in_bits = sum(InputFormats.split(layer.input_words, formats.buffer))
        add("tile_buffer", "write", in_bits)  # the layer input arrives once (as the tile_buffer stores it)
        add("router", "transfer", in_bits)
        actions = [Action(c, a, n, 1) for (c, a), n in acts.items() if n]
        if load_pay:
            actions.append(Action("dram", "read", load_pay // ab, ab))
        if load_meta:
            actions.append(Action("dram", "read", load_meta // 8, 8))
        if store_bits:
            actions.append(Action("dram", "write", store_bits // ab, ab))
        actions += self._static(hw, cm, compute, load_bits + store_bits)
        pe = max(1, math.ceil(slots / lm.mvm_cycles))
        dense_macs = layer.macs if layer.compression.is_dense else layer.densified().macs
        blocks = sum(g.total_blocks for g in lm.gemms)
        nonempty = sum(g.nonempty_blocks for g in lm.gemms)
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="crossbar", body=compress_runs(nodes), compute_cycles=compute,
            actions=actions, macs=macs, dense_macs=dense_macs, pe_count=pe,
            mapping_efficiency=cells / max(sum(g.weight_slots for g in lm.gemms), 1),
            dram_read_bits={k: v for k, v in (("ifmap", load_pay), ("ifmap_meta", load_meta)) if v},
            dram_write_bits={"ofmap": store_bits} if store_bits else {},
            compulsory_read_bits=load_bits, compulsory_write_bits=store_bits,
            sram_accesses={"tile_buffer_read_bits": acts.get(("tile_buffer", "read"), 0),
                           "tile_buffer_write_bits": acts.get(("tile_buffer", "write"), 0)},  # ADC conversions: the adc.convert action
            extra={"crossbars": lm.crossbars, "imas": lm.imas, "tiles": layer_tiles, "replication": r,
                   "crossbar_blocks": blocks, "nonempty_blocks": nonempty, "adc_bits": hw.adc_bits,
                   "adc_bits_required": hw.adc_bits_required, "chip_tiles": cm.allocation.tiles,
                   "chips": cm.allocation.chips},
        )
        prog.extra["effectual_macs"] = eff_macs
        if side is not None:
            prog.macs = int(round(gated_macs))  # cells on rows that are driven
            prog.extra["act_density_used"] = waves_used[0].density
            prog.extra["act_busy_block_fraction"] = waves_used[0].busy_blocks
            prog.notes.append(f"activation sparsity exploited ({mode}) from {side.source}: zero rows not driven"
                              + ("; a crossbar whose rows are all zero for a vector skips its waves (no read or "
                                 "conversion); a round is skipped only when the whole vector is zero"
                                 if mode == "skip" else ""))
        prog.notes.extend(level_notes(hw.sparsity, "crossbar"))
        prog.notes.extend(formats.notes)
        self._notes(prog, layer, hw, lm)
        return prog

    def _notes(self, prog: LayerProgram, layer: LayerBase, hw: CrossbarAccelerator, lm: LayerMapping) -> None:
        if hw.adc.bits is not None and hw.adc.bits < hw.adc_bits_required:
            prog.notes.append(f"ADC {hw.adc.bits} b < {hw.adc_bits_required} b for exact column sums: partial sums "
                              "are clipped (accuracy effect not modelled)")
        sources = {g.source for g in lm.gemms}
        sp = layer.compression.sparsity
        if sp.kind != "dense":
            pruned = sum(g.total_blocks - g.nonempty_blocks for g in lm.gemms)
            total = sum(g.total_blocks for g in lm.gemms)
            prog.notes.append(f"{sp.kind} sparsity ({', '.join(sorted(sources))}): {pruned}/{total} crossbar blocks "
                              "empty (not allocated, not computed); zeros inside kept blocks are computed")

    def _lower_digital(self, layer: Elementwise | Pool, hw: CrossbarAccelerator, wl: Workload,
                       cm: ChipMapping) -> LayerProgram:
        """On the tiles' digital activation/pool units; DRAM only where the layer crosses the chip edge."""
        ab = layer.compression.quant.act_bits
        unit = "pool" if isinstance(layer, Pool) else "activation"
        ops = layer.vector_ops
        tiles = cm.allocation.tiles
        ns = ops / (tiles * hw.digital_ops_per_ns(unit))
        cycles = max(1, hw.ns_to_cycles(ns))
        load_bits, store_bits = self._dram_sides(layer, wl, cm)
        body = compress_runs(_chunk_tiles(cycles, 1, 0, load_bits, store_bits, cm.buffer_bits // 2))
        in_bits, out_bits = layer.input_words * ab, layer.output_words * ab
        actions = [Action(unit, "op", ops, 1), Action("tile_buffer", "read", in_bits, 1),
                   Action("tile_buffer", "write", out_bits, 1)]
        if load_bits:
            actions.append(Action("dram", "read", load_bits // ab, ab))
        if store_bits:
            actions.append(Action("dram", "write", store_bits // ab, ab))
        actions += self._static(hw, cm, cycles, load_bits + store_bits)
        units = tiles * getattr(hw.tile, unit).count
        prog = vector_program(
            layer, VectorWork(ops, cycles, load_bits, store_bits, ab), engine=f"crossbar.{unit}", body=body,
            actions=actions, pe_count=max(units, 1),
            dram_read_bits={"ifmap": load_bits} if load_bits else {}, dram_write_bits={"ofmap": store_bits} if store_bits else {},
            sram_accesses={"tile_buffer_read_bits": in_bits, "tile_buffer_write_bits": out_bits},
            extra={"tiles": tiles, "units": units},
        )
        prog.notes.extend(vector_format_notes(hw.sparsity, "crossbar"))
        return prog
