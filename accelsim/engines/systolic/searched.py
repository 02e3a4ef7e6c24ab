"""``mapping: search`` on a systolic array: each dense conv/linear/matmul layer on its best loop-nest mapping.

Per layer: the layer's loop bounds (:class:`~accelsim.mapping.ir.LayerDims`, at its quantised
widths, partial sums at ``accumulator_bits``), the array's implied hierarchy
(:func:`accelsim.mapping.implied.implied_hierarchy`) with the MAC priced as ``energy.py`` prices
the layer's MAC, then the mapper (:func:`accelsim.mapping.search.search_layer`) over spatial
unrollings that keep the array's ``dataflow`` (:func:`dataflow_spatial_specs`) and every temporal
loop order/tiling, for ``hw.objective``; the best mapping is lowered by
:func:`accelsim.mapping.lowering.lower_mapping`.

**Dataflow -> spatial unrolling** (mirrors :mod:`.folds`: rows = array dimension ``D1``, columns
= ``D2``): OS: output pixels (``N``, ``P``, ``Q``) on rows x ``K`` on columns; WS: reduction
(``C``, ``R``, ``S``) on rows x ``K`` on columns; IS: reduction on rows x output pixels on
columns. The fold order flattens a group of loop dimensions onto one array dimension; here each
array dimension unrolls one or several of its group's dimensions (greedy in each order of the
group, efficient factors ``ceil(b / ceil(b / f))``); the ``SPECS_KEPT`` candidates with the fewest
ideal temporal cycles (ties: their text) are searched. Groups run one after another (no group
packing), as in the fold order.

**Check against the fold order.** The searched mapping and the fold order are compared on the
objective with one estimator (dynamic energy of the priced actions; latency = the larger of the
compute cycles and the DRAM transfer cycles; edp their product); if the fold order's estimate is
lower by more than ``FOLD_MARGIN`` it is kept and the layer's notes say so. The two lowerings
price PE registers by one rule (:mod:`accelsim.mapping.implied`: the fold model's per-dataflow
rule), so the comparison is between mappings, not between two register accountings. The fold
order is walked only when it wins (or might exceed the tile budget): a lower bound of its estimate
from the fold plan's closed forms, then its exact estimate without the walk, decide first
(:func:`_lower_searched`).

**Latency near-ties.** With ``objective: latency``, mappings within :data:`LATENCY_TIE_SHARE`
(0.5 %) of the fastest count as tied and the one moving the fewest bits wins
(:func:`search_best`; docs/mapping.md, "128x128 OS").

Identical layer shapes are mapped once per process (the mapper's :class:`MappingCache`, keyed by
shape x hierarchy x objective x spatial spec).
"""
from __future__ import annotations

import copy
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from itertools import permutations
from math import ceil, prod
from typing import Callable, Protocol

from ..._idmemo import ValueKey, identity_memo, value_key
from ...energy import price_actions, unit_energy_pj
from ...hardware.hierarchy import MemoryHierarchy
from ...hardware.systolic import SystolicArray
from ...mapping.implied import implied_hierarchy
from ...mapping.ir import LayerDims
from ...mapping.lowering import lower_mapping, mapping_text
from ...mapping.fast import FastEvaluator
from ...mapping.search import RankedMapping, SearchResult, search_layer, tie_winner
from ...stats import Action, LayerProgram
from ...workload.layer import LayerBase

#: array dimension -> the loop dimensions each dataflow unrolls on it (D1 = rows, D2 = cols)
DATAFLOW_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "os": {"D1": ("Q", "P", "N"), "D2": ("K",)},
    "ws": {"D1": ("C", "S", "R"), "D2": ("K",)},
    "is": {"D1": ("C", "S", "R"), "D2": ("Q", "P", "N")},
}
#: spatial candidates searched per layer (best ideal temporal cycles first)
SPECS_KEPT = 3
MAPPED_OPS = ("conv2d", "linear", "matmul")
#: the fold order is kept only when its estimate of the objective is lower by more than this share
FOLD_MARGIN = 0.01
#: ``objective: latency``: mappings within this share of the fastest (cost-model latency, over all
#: the dataflow's spatial candidates) count as tied; the one moving the fewest bits wins
#: (:func:`tiebreak_hierarchy` prices). Why: docs/mapping.md, "128x128 OS ... near-tie"
LATENCY_TIE_SHARE = 0.005


def maps_layer(layer: LayerBase) -> bool:
    """Whether ``layer`` runs on a searched mapping (one-GEMM-shape conv/linear/matmul)."""
    return layer.op in MAPPED_OPS


def _efficient(bound: int, cap: int) -> int:
    f = min(bound, cap)
    return ceil(bound / ceil(bound / f)) if f >= 1 else 1


def _group_options(dims: LayerDims, group: tuple[str, ...], size: int) -> tuple[tuple[tuple[str, int], ...], ...]:
    """The unrollings of ``group``'s loop dimensions on an array dimension of ``size`` PEs."""
    return _group_options_of(tuple(dims.size(d) for d in group), group, size)


@lru_cache(maxsize=4096)
def _group_options_of(bounds: tuple[int, ...], group: tuple[str, ...], size: int) -> tuple[tuple[tuple[str, int], ...], ...]:
    """:func:`_group_options` by exactly what it reads: ``group``'s loop bounds (memoised)."""
    bound = dict(zip(group, bounds))
    out = []
    active = [d for d in group if bound[d] > 1] or [group[0]]
    for order in permutations(active):
        left, loops = size, []
        for d in order:
            if left < 2:
                break
            f = _efficient(bound[d], left)
            if f > 1:
                loops.append((d, f))
                left //= f
        opt = tuple(loops) or ((order[0], 1),)
        if opt not in out:
            out.append(opt)
    return tuple(out)


def dataflow_spatial_specs(dims: LayerDims, hw: SystolicArray) -> list[dict[str, list[tuple[str, int]]]]:
    """The spatial unrollings searched for ``dims`` on ``hw`` (module docstring), best first."""
    return [s for _, s in _ranked_specs(dims, hw)]


def _ranked_specs(dims: LayerDims, hw: SystolicArray) -> list[tuple[int, dict[str, list[tuple[str, int]]]]]:
    """:func:`dataflow_spatial_specs` with each spec's :func:`spec_temporal_cycles`."""
    groups = DATAFLOW_GROUPS[hw.dataflow]
    d1 = _group_options(dims, groups["D1"], hw.rows)
    d2 = _group_options(dims, groups["D2"], hw.cols)
    specs = []
    for a in d1:
        for b in d2:
            spec = {"D1": list(a), "D2": list(b)}
            specs.append((spec_temporal_cycles(dims, spec), str((a, b)), spec))
    specs.sort(key=lambda t: (t[0], t[1]))
    return [(c, s) for c, _, s in specs[:SPECS_KEPT]]


def spec_temporal_cycles(dims: LayerDims, spec: dict[str, list[tuple[str, int]]]) -> int:
    """Temporal cycles (product of the temporal trip counts) of every mapping with spatial
    unrolling ``spec``: a lower bound of the cost model's latency (which adds stalls, on/off-loading
    and fill/drain)."""
    sp = {d: 1 for d in "NGKCPQRS"}
    for loops in spec.values():
        for d, f in loops:
            sp[d] *= f
    return prod(-(-int(getattr(dims, d)) // f) for d, f in sp.items())  # exact integer ceilings


def layer_dims(layer: LayerBase, hw: SystolicArray) -> LayerDims:
    q = layer.compression.quant
    return LayerDims.from_layer(layer, w_bits=q.weight_bits, i_bits=q.act_bits, o_bits=hw.energy.accumulator_bits,
                                o_final_bits=q.act_bits)


@identity_memo(maxsize=2048)
def nameless_key(layer: LayerBase) -> ValueKey:
    """Memo key of ``layer`` without its name (equal for layers equal but for their name; built once
    per layer object; ``TypeError`` for a layer with an unhashable field)."""
    return ValueKey(layer.model_copy(update={"name": ""}))


@identity_memo(maxsize=256)
@lru_cache(maxsize=256)
def _base_hierarchy(hw: SystolicArray, w_bits: int | None, i_bits: int | None) -> MemoryHierarchy:
    return implied_hierarchy(hw, w_bits=w_bits, i_bits=i_bits)


def layer_hierarchy(hw: SystolicArray, mac: Action, dims: LayerDims | None = None) -> MemoryHierarchy:
    """The implied hierarchy (registers sized for ``dims``' operand widths, default the array's
    word) with the MAC priced as ``energy.py`` prices ``mac``."""
    base = _base_hierarchy(hw, dims.w_bits if dims else None, dims.i_bits if dims else None)
    price = unit_energy_pj(mac, hw)
    if price == base.array.mac_energy_pj:
        return base
    return _repriced(base, price)


@identity_memo(maxsize=256)
def _repriced(base: MemoryHierarchy, mac_energy_pj: float) -> MemoryHierarchy:
    """``base`` with its MAC at ``mac_energy_pj`` (one object per base and price: the search's
    caches keyed by the hierarchy then hit by identity)."""
    return base.model_copy(update={"array": base.array.model_copy(update={"mac_energy_pj": mac_energy_pj})})


#: price per bit moved of the latency tie-break (:func:`tiebreak_hierarchy`): DRAM bits first,
#: then SRAM bits, then register bits
TIEBREAK_PJ_PER_BIT = {"dram": 1e6, "sram": 1e3, "reg": 1.0}


@identity_memo(maxsize=256)
@lru_cache(maxsize=256)
def tiebreak_hierarchy(hier: MemoryHierarchy) -> MemoryHierarchy:
    """``hier`` with price-independent access prices, for the ``latency`` objective's tie-break:
    a level's access costs its port word in bits x :data:`TIEBREAK_PJ_PER_BIT` (DRAM, on-chip
    buffers, PE registers; a register direction the real hierarchy leaves unpriced stays 0, which
    depends on the dataflow only), MACs 0. Among mappings of equal latency the one moving the
    fewest DRAM bits wins, then the fewest SRAM bits, then register bits, so energy prices never
    steer the tiling of a latency-optimised array (the DSE then re-prices cached timing)."""
    mems = []
    for m in hier.memories:
        kind = "dram" if m.name == "dram" else "reg" if m.name.startswith("reg_") else "sram"
        w = TIEBREAK_PJ_PER_BIT[kind] * max(p.bandwidth_max_bits for p in m.ports)
        mems.append(m.model_copy(update={"read_pj": w if m.read_pj > 0 or kind != "reg" else 0.0,
                                         "write_pj": w if m.write_pj > 0 or kind != "reg" else 0.0,
                                         "fh_write_pj": w if m.fh_pj > 0 or kind != "reg" else 0.0}))
    return hier.model_copy(update={"memories": tuple(mems),
                                   "array": hier.array.model_copy(update={"mac_energy_pj": 0.0})})


def _spec_array(hier: MemoryHierarchy, spec: dict[str, list[tuple[str, int]]]) -> MemoryHierarchy:
    """``hier`` with each array dimension shrunk to the spatial unrolling ``spec`` puts on it.

    With the spatial unrolling given, the cost model depends on the array only through that
    unrolling (fill/drain, instances, capacities; the SRAM port width comes from the real array
    and stays), except ``ideal_cycles``, which the search does not rank by: arrays of different
    shapes that unroll a layer alike share one search (:class:`MappingCache` key). Memoised by
    the identity of ``hier`` and the value of ``spec`` (one object per pair)."""
    return _spec_array_of(hier, tuple((d, tuple(f)) for d, f in spec.items()))


@identity_memo(maxsize=1024)
def _spec_array_of(hier: MemoryHierarchy, spec_items: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]) -> MemoryHierarchy:
    spec = dict(spec_items)
    dims = tuple(d.model_copy(update={"size": max(1, prod(f for _, f in spec.get(d.name, ())))})
                 for d in hier.array.dimensions)
    return hier.model_copy(update={"array": hier.array.model_copy(update={"dimensions": dims})})


#: DRAM bandwidths (GB/s) of other design points that share everything else with the one being
#: simulated (a sweep sets it per chunk: :func:`accelsim.dse.evaluate.evaluate_chunk`). Their
#: hierarchies differ from the point's only in the DRAM port widths and, for ``objective:
#: latency``, the tie-break prices that scale with them, so :func:`search_best` searches them in
#: the same pass (``search_layer(..., siblings=...)``) and caches their results under their own
#: keys; the point's own result is unchanged. Empty outside a sweep.
SIBLING_DRAM_BW_GBPS: ContextVar[tuple[float, ...]] = ContextVar("SIBLING_DRAM_BW_GBPS", default=())


@lru_cache(maxsize=256)
def _with_dram_bw(hw: SystolicArray, bw_gbps: float) -> SystolicArray:
    """``hw`` with ``dram.bw_gbps`` replaced (validated, as a point with that bandwidth is built)."""
    return hw.model_copy(update={"dram": type(hw.dram).model_validate({**hw.dram.model_dump(), "bw_gbps": bw_gbps})})


def _sibling_spaces(dims: LayerDims, hw: SystolicArray, mac: Action | None) -> list[MemoryHierarchy]:
    """The search spaces (before :func:`_spec_array`) of :data:`SIBLING_DRAM_BW_GBPS`'s other
    bandwidths, each built as a point with that bandwidth builds its own (hw copy ->
    :func:`layer_hierarchy` -> :func:`tiebreak_hierarchy` for ``objective: latency``)."""
    bws = SIBLING_DRAM_BW_GBPS.get()
    if not bws or mac is None:
        return []
    key = (id(hw), mac, dims.w_bits, dims.i_bits, bws)
    hit = _SIBLINGS.get(key)
    if hit is not None and hit[0] is hw:
        return hit[1]
    out = []
    for bw in bws:
        if bw == hw.dram.bw_gbps:
            continue
        h = layer_hierarchy(_with_dram_bw(hw, bw), mac, dims)
        out.append(tiebreak_hierarchy(h) if hw.objective == "latency" else h)
    if len(_SIBLINGS) >= 256:
        del _SIBLINGS[next(iter(_SIBLINGS))]
    _SIBLINGS[key] = (hw, out)  # holding hw keeps its id from being reused
    return out


#: :func:`_sibling_spaces` by (id of hw, MAC, operand widths, bandwidths): one sweep point's layers
#: share one hw object, so its siblings are built once per point, not per layer (FIFO-bounded)
_SIBLINGS: dict[tuple, tuple[SystolicArray, list[MemoryHierarchy]]] = {}


def _sibling_spec_arrays(siblings: list[MemoryHierarchy], spec: dict[str, list[tuple[str, int]]]) -> list[MemoryHierarchy]:
    """:func:`_spec_array` of each sibling (memoised by sibling identity and ``spec``: the same
    objects again, so the mapper's per-hierarchy caches find them by identity)."""
    out = []
    for h in siblings:
        key = (id(h), repr(spec))
        hit = _SIBLING_SPECS.get(key)
        if hit is None or hit[0] is not h:
            if len(_SIBLING_SPECS) >= 1024:
                del _SIBLING_SPECS[next(iter(_SIBLING_SPECS))]
            hit = _SIBLING_SPECS[key] = (h, _spec_array(h, spec))
        out.append(hit[1])
    return out


_SIBLING_SPECS: dict[tuple, tuple[MemoryHierarchy, MemoryHierarchy]] = {}


def search_best(dims: LayerDims, hier: MemoryHierarchy, hw: SystolicArray, mac: Action | None = None) -> SearchResult:
    """Best mapping over the dataflow's spatial candidates (ties: the first candidate).

    Each candidate is searched on the hierarchy with the array shrunk to it (:func:`_spec_array`)
    and, with ``objective: latency``, price-free (:func:`tiebreak_hierarchy`: prices do not steer
    the tiling; the cache key is price-free) under the near-tie rule: among the mappings of all
    candidates within :data:`LATENCY_TIE_SHARE` of the fastest, the fewest bits moved (tie-break
    energy), then lower latency, then the first candidate. The candidates' near-tie fronts are
    merged, so the rule holds over the union exactly. Branch and bound (exact): candidates come in
    ascending temporal cycles (:func:`spec_temporal_cycles`, a lower bound of their latency), so
    once a candidate's bound exceeds ``(1 + LATENCY_TIE_SHARE)`` x the fastest latency found, it
    and all later ones hold no mapping the rule could pick and are not searched. The winner is
    re-evaluated on ``hier``.

    ``mac`` (the action ``hier``'s MAC is priced as): with :data:`SIBLING_DRAM_BW_GBPS` set, each
    candidate's search also covers those bandwidths' hierarchies (results cached for their points)."""
    latency = hw.objective == "latency"
    siblings = _sibling_spaces(dims, hw, mac)
    space = tiebreak_hierarchy(hier) if latency else hier
    share = LATENCY_TIE_SHARE if latency else 0.0
    results: list[SearchResult] = []
    l_min = float("inf")
    for cycles, spec in _ranked_specs(dims, hw):
        if latency and cycles > (1 + share) * l_min:
            break
        res = search_layer(dims, _spec_array(space, spec), objective=hw.objective, spatial=spec, top_k=1,
                           latency_tie_share=share, siblings=_sibling_spec_arrays(siblings, spec))
        results.append(res)
        if latency:
            l_min = min(l_min, res.front[0][0][0] if share else res.best.key[0])
    if share:
        pts = [k + (si, j) for si, res in enumerate(results) for j, (k, _) in enumerate(res.front)]
        si, j = pts[tie_winner(pts, share)][2:]
        best, (tie_key, mapping) = results[si], results[si].front[j]
    else:
        best = min(results, key=lambda r: r.best.key)  # first of equal keys
        tie_key, mapping = best.best.key, best.mapping
    cost = FastEvaluator(dims, hier).evaluate(mapping)
    key = (cost.latency_cycles, tie_key[1]) if latency else tie_key
    return replace(best, top=(RankedMapping(mapping, cost, key),))


class Estimated(Protocol):
    """What :func:`_estimate` reads of a program: a :class:`LayerProgram` or a stand-in bounding one."""

    compute_cycles: int

    @property
    def dram_read_total_bits(self) -> int: ...

    @property
    def dram_write_total_bits(self) -> int: ...

    @property
    def actions(self) -> list[Action]: ...


class FoldBoundLike(Estimated, Protocol):
    """A lower bound of the fold order's :func:`_estimate` (engine: ``FoldBound``)."""

    def tighter(self) -> FoldBoundLike | None:
        """A bound at least as high (still at most the fold order's), or ``None``: no tighter one."""


def _estimate(prog: Estimated, hw: SystolicArray, objective: str) -> float:
    """``objective``'s estimate of ``prog`` (module docstring): latency = the larger of the compute
    cycles and the DRAM transfer cycles, energy = the priced actions (read only for ``energy`` and
    ``edp``), edp = their product."""
    bw = hw.dram_bits_per_cycle() if hw.stall_model != "none" else float("inf")
    latency = max(float(prog.compute_cycles), (prog.dram_read_total_bits + prog.dram_write_total_bits) / bw)
    if objective == "latency":
        return latency
    energy = sum(price_actions(prog.actions, hw).values())
    return energy if objective == "energy" else energy * latency


def searched_program(layer: LayerBase, hw: SystolicArray, mac: Action, dense_macs: int) -> tuple[LayerProgram, SearchResult]:
    """The layer on its best searched mapping (no comparison with the fold order) and the search result."""
    dims = layer_dims(layer, hw)
    hier = layer_hierarchy(hw, mac, dims)
    res = search_best(dims, hier, hw, mac=mac)
    prog = lower_mapping(layer.name, layer.op, dims, hier, res.mapping, res.cost, mac=mac, pe_count=hw.num_pes,
                         engine="systolic", mapping_text=mapping_text(res.mapping, hier), dense_macs=dense_macs)
    return prog, res


#: lowered programs of :func:`lower_searched` keyed by (layer without its name, hw, MAC, dense
#: MACs), layer and hw as :class:`ValueKey`: a network's repeated layer shapes are lowered once
#: (FIFO eviction)
_LOWERED: dict[tuple, LayerProgram] = {}
_LOWERED_MAX = 1024


def fresh_copy(prog: LayerProgram, name: str) -> LayerProgram:
    """``prog`` renamed, with its mutable containers copied (callers append notes and extras); a
    shallow copy (``LayerProgram`` is a plain dataclass: no ``__post_init__`` to re-run)."""
    out = copy.copy(prog)
    out.layer = name
    for k, v in vars(prog).items():  # the fields
        if isinstance(v, (list, dict)):
            setattr(out, k, copy.copy(v))
    return out


#: skip lowering the fold order when its lower bound already loses the comparison (exact:
#: :func:`_lower_searched`); ``False`` lowers it for every comparison (tests compare the two)
FOLD_SKIP = True


def lower_searched(layer: LayerBase, hw: SystolicArray, mac: Action, dense_macs: int,
                   fold_program: Callable[[], LayerProgram],
                   fold_bound: Callable[[], FoldBoundLike | None] | None = None) -> LayerProgram:
    """The layer on its searched mapping, or the fold order (``fold_program()``, a function of
    ``layer`` and ``hw`` only, called on a memo miss only, and then only when ``fold_bound``
    cannot rule it out: :func:`_lower_searched`) if that is better in the shared estimate
    (module docstring).
    Memoised: a layer equal to an earlier one but for its name gets a renamed copy of its program."""
    try:  # layer and hw by value, each hashed once per object (identity memos)
        key = (nameless_key(layer), value_key(hw), mac, dense_macs)
        hit = _LOWERED.get(key)
    except TypeError:  # a field that cannot be hashed (e.g. a DFS bit-width distribution): no memo
        return _lower_searched(layer, hw, mac, dense_macs, fold_program, fold_bound)
    if hit is None:
        hit = _lower_searched(layer, hw, mac, dense_macs, fold_program, fold_bound)
        if _LOWERED_MAX > 0:  # 0 disables the memo
            if len(_LOWERED) >= _LOWERED_MAX:
                del _LOWERED[next(iter(_LOWERED))]
            _LOWERED[key] = fresh_copy(hit, "")
        return hit
    return fresh_copy(hit, layer.name)


def _lower_searched(layer: LayerBase, hw: SystolicArray, mac: Action, dense_macs: int,
                    fold_program: Callable[[], LayerProgram],
                    fold_bound: Callable[[], FoldBoundLike | None] | None) -> LayerProgram:
    """The comparison. ``fold_bound()`` (cheap; engine:
    :func:`~accelsim.engines.systolic.engine.fold_bound_program`) is a bound whose
    :func:`_estimate` is at most the fold order's on every objective, and its ``tighter()`` ones
    too, or ``None`` when lowering the fold order might fail. Exact skip: the fold order is kept
    iff ``e(fold) < limit``; with ``e(bound) <= e(fold)``, ``e(bound) >= limit`` rules that out,
    so the fold order is not lowered. ``None`` (or no ``fold_bound``, or :data:`FOLD_SKIP` off):
    the fold order is lowered first, as its error (engine: tile budget) spares the search."""
    bound = fold_bound() if FOLD_SKIP and fold_bound is not None else None
    fold = fold_program() if bound is None else None
    prog, _ = searched_program(layer, hw, mac, dense_macs)
    limit = (1 - FOLD_MARGIN) * _estimate(prog, hw, hw.objective)
    if fold is None:
        while bound is not None:
            if _estimate(bound, hw, hw.objective) >= limit:
                return prog
            bound = bound.tighter()
        fold = fold_program()
    if _estimate(fold, hw, hw.objective) < limit:
        fold.notes.append(f"searched mapping worse than the fold order on {hw.objective} in this estimate; "
                          "fold order kept")
        return fold
    return prog


__all__ = ["DATAFLOW_GROUPS", "LATENCY_TIE_SHARE", "SIBLING_DRAM_BW_GBPS", "dataflow_spatial_specs", "spec_temporal_cycles", "layer_dims", "layer_hierarchy", "lower_searched",
           "FOLD_SKIP", "fresh_copy", "maps_layer", "search_best", "searched_program"]
