"""The systolic-array engine: dense fold mapping (:mod:`.folds`), sparse modes (:mod:`.sparse`),
a vector unit for memory-bound layers, and the SCALE-Sim topology row that the ``scalesim_user``
stall model (:mod:`accelsim.sim.scalesim_user`) replays."""
from __future__ import annotations

from functools import cached_property, lru_cache

from ..._idmemo import ValueKey, identity_memo
from ...hardware.sparsity import SparsityBase
from ...hardware.systolic import SystolicArray
from ...stats import Action, LayerProgram, Node, Repeat, TileLimitError, TopologyRow, tile_bounded, tiles_left
from ...workload.layer import Elementwise, Gemm, LayerBase, Pool
from ...workload.masks import layer_mask
from ...workload.workload import Workload
from ..base import Engine
from ..lowering import buffered_vector_program, peel_last
from .act_searched import searched_sparse_program
from .act_sparsity import ActSparsity
from .folds import FoldOverrides, FoldPlan, GemmLowering, GemmTraffic, OperandBits, fold_plan, sram_word_accesses
from .program import LayerCounters, systolic_program
from .searched import fresh_copy, lower_searched, maps_layer, nameless_key, searched_program
from .sparse import lower_sparse, sparse_mode as _sparse_mode


def topology_row(layer: LayerBase) -> TopologyRow:
    """A single-GEMM conv/linear layer as a SCALE-Sim topology row (a GEMM ``M, N, K`` is
    ``ifmap M x K``, filter ``1 x K``, one channel, ``N`` filters, stride 1)."""
    g = layer.gemms()[0]
    if g.conv is not None:
        c = g.conv
        return TopologyRow(c.in_h, c.in_w, c.kernel_h, c.kernel_w, c.channels, g.n, c.stride_h)
    return TopologyRow(g.m, g.k, 1, g.k, 1, g.n, 1)


def _scalesim_row_check(layer: LayerBase) -> tuple[bool, str]:
    """Whether SCALE-Sim can run ``layer`` as one topology row; why not."""
    gemms = layer.gemms()
    if len(gemms) != 1 or gemms[0].count != 1 or layer.op not in ("conv2d", "linear"):
        return False, ("the SCALE-Sim USER-mode emulation runs single-GEMM conv2d/linear layers only "
                       "(SCALE-Sim has no groups, matmul heads or recurrent layers)")
    conv = gemms[0].conv
    if conv is not None and (conv.pad_h or conv.pad_w or conv.dilation_h > 1 or conv.stride_h != conv.stride_w):
        return False, "the SCALE-Sim USER-mode emulation needs unpadded, undilated convs with equal strides"
    return True, ""


#: most array folds one layer may take when its lowering keeps per-fold arrays (the ``hw.sparse``
#: modes and the ``sparsity:`` block's overrides: ``row_folds x col_folds`` entries each); a
#: 2,304-MAC conv at batch 10^6 on an 8x8 array is 8e6 folds, i.e. gigabytes. Refused before
#: lowering, with what to change. The dense fold order groups folds by column (:class:`.folds.GemmLowering`)
#: and is bounded by what it materialises instead (:data:`accelsim.stats.MAX_TILES_PER_LAYER`).
MAX_FOLDS_PER_LAYER = 2**21


def layer_folds(layer: LayerBase, hw: SystolicArray) -> int:
    """Array folds of ``layer``'s GEMMs in the fold order (all repetitions)."""
    return sum(fold_plan(g, hw.rows, hw.cols, hw.dataflow).folds * g.count for g in layer.gemms())


def _check_fold_count(layer: LayerBase, hw: SystolicArray) -> None:
    """Refuse a per-fold lowering of more than :data:`MAX_FOLDS_PER_LAYER` folds."""
    folds = layer_folds(layer, hw)
    if folds > MAX_FOLDS_PER_LAYER:
        amount = f"{folds:,} folds of the {hw.rows}x{hw.cols} array (limit {MAX_FOLDS_PER_LAYER:,} with sparsity)"
        raise TileLimitError(f"layer {layer.name!r} needs {amount}: use a larger array or a smaller batch",
                             amount=amount, source=hw.name, field=f"layers.{layer.name}")


@identity_memo(maxsize=256)
def _dramless_key(hw: SystolicArray) -> ValueKey:
    """Memo key of ``hw`` without its ``dram`` (built once per hw object)."""
    return ValueKey(hw.model_copy(update={"dram": None}))


@identity_memo(maxsize=256)
@lru_cache(maxsize=64)
def _sparsity_on(sparsity: SparsityBase) -> bool:
    """``sparsity.any`` (a walk over the block's levels), once per distinct ``sparsity:`` block."""
    return sparsity.any


#: dense fold-order programs keyed by (layer without its name, hw without its ``dram``): without a
#: ``sparsity:`` block the fold order reads neither the DRAM (bandwidth, prices) nor the workload,
#: so points of a sweep that differ only there share one lowering (FIFO eviction; 0 disables)
_FOLDS: dict[tuple, LayerProgram] = {}
_FOLDS_MAX = 1024


def scalesim_row_ok(layer: LayerBase) -> bool:
    """``layer`` is one SCALE-Sim topology row (single GEMM conv2d/linear, unpadded, equal strides)."""
    return _scalesim_row_check(layer)[0]


def _operand_bits(layer: LayerBase, hw: SystolicArray) -> OperandBits:
    """The fold order's operand widths: activations in and out at ``act_bits``, partial sums at the accumulator's."""
    q = layer.compression.quant
    return OperandBits(a=q.act_bits, b=q.weight_bits, c=q.act_bits, psum=hw.energy.accumulator_bits)


def _count_gemm(c: LayerCounters, g: Gemm, plan: FoldPlan, hw: SystolicArray, bits: OperandBits,
                ov: FoldOverrides | None) -> None:
    """Add the fold order's closed-form counters of ``g`` (all repetitions) to ``c``: SRAM words,
    MACs, array efficiency, compute cycles (per-fold override cycles when sparse), compulsory reads."""
    sram = sram_word_accesses(g, plan, hw.dataflow)
    for key in c.sram:
        c.sram[key] += sram[key] * g.count
    c.macs += g.macs
    c.eff_num += plan.sr * plan.sc / (hw.rows * hw.cols) * g.count
    c.eff_den += plan.folds * g.count
    c.compute_cycles += (int(ov.cycles.sum()) if ov is not None else plan.folds * plan.cycles_per_fold) * g.count
    c.compulsory_read_bits += g.a_unique * bits.a * g.count + g.b_unique * bits.b * g.b_distinct


def _repetitions(g: Gemm, hw: SystolicArray, bits: OperandBits) -> list[tuple[bool, int]]:
    """The fold walks of ``g``'s repetitions: (B resident from the repetition before, times): the
    first, then the rest (B kept when every repetition shares it and it fits half the filter SRAM)."""
    out = [(False, 1)]
    if g.count > 1:
        b_fits = g.b_unique * bits.b <= hw.filter_sram.size_bits // 2
        out.append((g.b_distinct == 1 and b_fits, g.count - 1))
    return out


def _add_traffic(c: LayerCounters, t: GemmTraffic, times: int) -> None:
    """Add ``times`` repetitions of one walk's DRAM bits to ``c``."""
    c.dram_read_bits["ifmap"] += t.a * times
    c.dram_read_bits["filter"] += t.b * times
    c.dram_read_bits["psum"] += t.psum_read * times
    c.dram_write_bits["ofmap"] += t.c * times
    c.dram_write_bits["psum"] += t.psum_write * times


def _assemble(layer: LayerBase, hw: SystolicArray, c: LayerCounters, bits: OperandBits, body: tuple[Node, ...],
              act: ActSparsity | None = None) -> LayerProgram:
    """The fold-order program from its counters (cycles counted 0-based: one off the sum)."""
    c.compute_cycles -= 1
    mac = Action("mac", "mac", c.macs, bits.b, bits.a, layer.compression.quant.scheme)
    if act is not None:
        act.adjust_counters(c, bits.a, bits.b)
        mac = act.mac_action(mac)
    prog = systolic_program(
        layer, hw, c, engine="systolic", body=body, mac=mac, act_bits=bits.a, weight_bits=bits.b,
        weight_unit_bits=bits.b, dense_macs=layer.densified().macs if not layer.compression.is_dense else c.macs,
    )
    prog.mapping = f"scalesim fold order ({hw.dataflow})"
    return prog


class FoldBound:
    """A stand-in of a dense fold-order program (no ``sparsity:`` block) that
    :func:`.searched._estimate` cannot rank above it, built without the fold walk
    (:func:`fold_bound_program`): the compute cycles and DRAM totals at once, the actions (read
    for ``energy``/``edp`` only) from :attr:`program`, assembled on first use.

    ``program`` is the lowering's own assembly of the same counters but for the DRAM bits, which
    are :meth:`.folds.GemmLowering.traffic_bound` (each at most the walk's: equal but, unless
    ``exact``, OS/IS input reads of convolutions) over the same repetitions: the same compute
    cycles, MACs, SRAM and register actions, and each DRAM/SRAM-fill action count (``bits //
    width``) at most the real one. Hence its estimate is at most the program's on every
    objective, in floating point too: latency ``max(cycles, bits / bandwidth)`` (int -> float
    and division by the same positive number are monotone); energy, a sum in one fixed action
    order of ``count x unit price`` with prices >= 0 (validated; an action dropped for a zero
    count adds 0.0; rounded sums and products are monotone in each operand); edp, the product of
    two such non-negative numbers."""

    def __init__(self, layer: LayerBase, hw: SystolicArray, bits: OperandBits, c: LayerCounters, exact: bool):
        self.compute_cycles = c.compute_cycles - 1  # as _assemble counts them
        self.dram_read_total_bits = sum(c.dram_read_bits.values())
        self.dram_write_total_bits = sum(c.dram_write_bits.values())
        self.exact = exact  # the walk's DRAM bits exactly: the estimate is the program's
        self._parts = (layer, hw, bits, c)
        self._tighter: FoldBound | None = None

    @cached_property
    def program(self) -> LayerProgram:
        """The bound as a program (empty body)."""
        layer, hw, bits, c = self._parts
        return _assemble(layer, hw, c, bits, ())

    @property
    def actions(self) -> list[Action]:
        return self.program.actions

    def tighter(self) -> FoldBound | None:
        """The bound with the walk's input reads exactly (``exact``), or ``None`` when it is already
        (built once)."""
        if self.exact:
            return None
        if self._tighter is None:
            layer, hw, bits, _ = self._parts
            c, _, _ = _bound_counters(layer, hw, bits, exact_a=True)
            self._tighter = FoldBound(layer, hw, bits, c, True)
        return self._tighter


def _bound_counters(layer: LayerBase, hw: SystolicArray, bits: OperandBits,
                    exact_a: bool) -> tuple[LayerCounters, int, bool]:
    """The dense fold order's counters without the walk (DRAM bits:
    :meth:`.folds.GemmLowering.traffic_bound`), at least the tiles the walk charges, and whether
    the DRAM bits are the walk's exactly."""
    c = LayerCounters()
    tiles, exact = 0, True
    for g in layer.gemms():
        plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
        _count_gemm(c, g, plan, hw, bits, None)
        for b_preloaded, times in _repetitions(g, hw, bits):
            low = GemmLowering(g, hw, bits, b_resident_from_before=b_preloaded)
            tiles += low.tiles_bound()
            exact = exact and (exact_a or low.a_bound_exact)
            _add_traffic(c, low.traffic_bound(exact_a), times)
    return c, tiles, exact


#: :func:`fold_bound_program`'s (tiles bound, bound) keyed as :data:`_FOLDS`: the bound reads neither
#: the DRAM nor the workload (prices enter only when it is estimated), so points of a sweep that
#: differ only in the DRAM share one (FIFO eviction; 0 disables)
_BOUNDS: dict[tuple, tuple[int, FoldBound]] = {}
_BOUNDS_MAX = 1024


def _fifo_put(store: dict, key: tuple, value: object, maxsize: int) -> None:
    """``store[key] = value``, evicting the oldest entry at ``maxsize`` (0: store nothing)."""
    if maxsize > 0:
        if len(store) >= maxsize:
            del store[next(iter(store))]
        store[key] = value


def fold_bound_program(layer: LayerBase, hw: SystolicArray) -> FoldBound | None:
    """:class:`FoldBound` of ``layer``'s dense fold order on ``hw`` (O(1) per GEMM; its
    :meth:`~FoldBound.tighter` makes it exact); ``None`` when the walk might exceed the layer's
    tile budget (then only lowering it tells, and raises): the walks'
    :meth:`.folds.GemmLowering.tiles_bound` summed, at most :func:`~accelsim.stats.tiles_left`,
    and the walk cannot raise :class:`TileLimitError`. Memoised (:data:`_BOUNDS`)."""
    try:
        key: tuple | None = (nameless_key(layer), _dramless_key(hw))
        hit = _BOUNDS.get(key)
    except TypeError:  # a field that cannot be hashed: no memo
        key, hit = None, None
    if hit is None:
        bits = _operand_bits(layer, hw)
        c, tiles, exact = _bound_counters(layer, hw, bits, exact_a=False)
        hit = (tiles, FoldBound(layer, hw, bits, c, exact))
        if key is not None:
            _fifo_put(_BOUNDS, key, hit, _BOUNDS_MAX)
    return hit[1] if hit[0] <= tiles_left() else None


class _FoldTooLong(Exception):
    """The fold order of a searched layer exceeds the tile budget (wraps its :class:`TileLimitError`,
    so that one of the searched lowering itself is not mistaken for it)."""

    def __init__(self, error: TileLimitError):
        super().__init__(str(error))
        self.error = error


class SystolicEngine(Engine[SystolicArray]):
    """Engine for :class:`~accelsim.hardware.systolic.SystolicArray`."""

    def supports(self, layer: LayerBase, hw: SystolicArray) -> tuple[bool, str]:
        sp = layer.compression.sparsity
        if hw.stall_model == "scalesim_user":
            ok, reason = _scalesim_row_check(layer)
            if not ok:
                return False, reason
        if sp.kind not in ("dense", "channel", "filter"):
            # Structured pruning that shrinks shapes is dense by the time it reaches us. Other
            # sparsity is run dense (no skipping) -- stated in the report notes, never silently.
            return True, f"{sp.kind} sparsity runs dense unless a matching hw.sparse option is on"
        return True, ""

    def exploited(self, hw: SystolicArray) -> frozenset[str]:
        """``act_sparsity`` when the ``sparsity:`` block gates/skips zero inputs or compresses them."""
        sp = hw.sparsity
        uses = sp.acts_on("inputs") or any(sp.level(n).format.inputs != "uncompressed" for n in sp.level_names())
        return self.exploits | {"act_sparsity"} if uses else self.exploits

    #: how ``hw.sparse`` runs a layer: (mode, reason); see :func:`.sparse.sparse_mode`
    sparse_mode = staticmethod(_sparse_mode)

    @tile_bounded
    def lower(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None = None) -> LayerProgram:
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        sparse_reason = ""
        if hw.sparse.any:
            mask = layer_mask(workload, layer)
            mode, sparse_reason = _sparse_mode(layer, hw, mask)
            if mode is not None:
                _check_fold_count(layer, hw)  # the sparse modes lower the fold order
                return lower_sparse(layer, hw, workload, mode, sparse_reason, mask)
        q = layer.compression.quant
        dense_macs = layer.densified().macs if not layer.compression.is_dense else layer.macs
        if hw.mapping == "search" and maps_layer(layer) and _sparsity_on(hw.sparsity):
            # the searched mapping with zero gating/skipping/formats applied (docs/sparsity.md)
            mac = Action("mac", "mac", layer.macs, q.weight_bits, q.act_bits, q.scheme)
            prog = searched_sparse_program(layer, hw, workload, mac, dense_macs)
        elif hw.mapping == "search" and maps_layer(layer):
            mac = Action("mac", "mac", layer.macs, q.weight_bits, q.act_bits, q.scheme)
            def fold() -> LayerProgram:  # the fold order, for the comparison; lowered on a memo miss only
                try:
                    return self._lower_folds(layer, hw, workload)
                except TileLimitError as exc:
                    raise _FoldTooLong(exc) from None

            try:
                prog = lower_searched(layer, hw, mac, dense_macs, fold, lambda: fold_bound_program(layer, hw))
            except _FoldTooLong as too_long:  # the searched mapping alone (its lowering is compact)
                prog, _ = searched_program(layer, hw, mac, dense_macs)
                prog.notes.append(f"fold order not compared: it needs {too_long.error.amount}")
        else:
            prog = self._lower_folds(layer, hw, workload)
        sp = layer.compression.sparsity
        if sp.kind not in ("dense", "channel", "filter") and not hw.sparsity.compute.acts_on("weights"):
            prog.notes.append(f"{sp.kind} sparsity (density {sp.effective_density:.2f}) executed dense: this array does not skip zeros")
        if sparse_reason:
            prog.notes.append(sparse_reason)
        if hw.stall_model == "scalesim_user" or (hw.stall_model == "none" and scalesim_row_ok(layer)):
            prog.topology = topology_row(layer)  # none: for SCALE-Sim CALC's "incl. prefetch" cycles
        return prog

    def _lower_folds(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None = None) -> LayerProgram:
        """SCALE-Sim's fold order (:mod:`.folds`) for a dense GEMM layer (with the ``sparsity:``
        block's zero gating/skipping and formats when the config has one). Memoised without a
        ``sparsity:`` block (:data:`_FOLDS`): a renamed copy of an equal layer's program."""
        if _sparsity_on(hw.sparsity):  # per-fold override arrays (ActSparsity)
            _check_fold_count(layer, hw)
            return self._lower_folds_uncached(layer, hw, workload)
        try:
            key = (nameless_key(layer), _dramless_key(hw))
            hit = _FOLDS.get(key)
        except TypeError:  # a field that cannot be hashed (e.g. a DFS bit-width distribution): no memo
            return self._lower_folds_uncached(layer, hw, workload)
        if hit is None:
            hit = self._lower_folds_uncached(layer, hw, workload)
            if _FOLDS_MAX > 0:
                _fifo_put(_FOLDS, key, fresh_copy(hit, ""), _FOLDS_MAX)
            return hit
        return fresh_copy(hit, layer.name)

    def _lower_folds_uncached(self, layer: LayerBase, hw: SystolicArray, workload: Workload | None) -> LayerProgram:
        bits = _operand_bits(layer, hw)
        nodes: list[Node] = []
        c = LayerCounters()
        # None without a sparsity: block (for_layer's own test, memoised)
        act = ActSparsity.for_layer(layer, hw, workload) if _sparsity_on(hw.sparsity) else None
        for gi, g in enumerate(layer.gemms()):
            plan = fold_plan(g, hw.rows, hw.cols, hw.dataflow)
            ov = act.overrides(gi, g, plan) if act is not None else None
            _count_gemm(c, g, plan, hw, bits, ov)
            for i, (b_preloaded, times) in enumerate(_repetitions(g, hw, bits)):
                low = GemmLowering(g, hw, bits, b_resident_from_before=b_preloaded, sparse=ov)
                if i == 0:
                    nodes.extend(low.tiles())
                else:
                    nodes.append(Repeat(low.tiles(), times))
                _add_traffic(c, low.traffic(), times)
        prog = _assemble(layer, hw, c, bits, peel_last(tuple(nodes)), act)
        if act is not None:
            act.finish(prog)
        return prog

    def _lower_vector(self, layer: Elementwise | Pool, hw: SystolicArray) -> LayerProgram:
        """On a ``cols``-lane vector unit, bound by DRAM; cycles counted 0-based like the folds."""
        return buffered_vector_program(
            layer, lanes=hw.cols, in_buffer="ifmap_sram", in_buffer_bits=hw.ifmap_sram.size_bits, out_buffer="ofmap_sram",
            engine="systolic.vector", zero_based=True,
            sram_accesses={"ifmap_sram_reads": layer.input_words, "ofmap_sram_writes": layer.output_words},
        )
