"""Mapper: the best loop-nest mapping of a conv/GEMM layer on a memory hierarchy.

**Search space** (per layer, hierarchy and spatial specification):

1. *Spatial unrollings.* Either given (``spatial={"D1": [("K", 32)], ...}``, ZigZag's
   ``spatial_mapping``), hinted (``hint={"D1": ["K", "P"], ...}``, ZigZag's
   ``spatial_mapping_hint``: each array dimension unrolls one of its hinted loop dimensions) or
   free (every loop dimension may go on every array dimension, one per array dimension, each
   loop dimension at most once). Given *and* hinted: the array dimensions of ``spatial`` are
   fixed, the others are searched from the hint (all loop dimensions when the hint does not name
   them) — ZigZag's ``SpatialMappingGeneratorStage`` rule for a partial ``spatial_mapping``. Unroll factors run over the *efficient* values
   ``ceil(bound / t)`` for every temporal trip count ``t`` (the smallest factor giving that trip
   count; partial unrolling, e.g. ``C 3`` on 32 PEs, included), capped by the array dimension
   (and, for a given mapping, by the given factor). Candidates are ranked by ideal temporal
   cycles, then by their canonical text; the first ``max_spatial`` that admit a feasible
   mapping are searched (at most ``MAX_TRIED_FACTOR x max_spatial`` tried).
2. *Temporal loop orders.* The temporal trip count of every dimension is split into prime
   factors (merged down to ``lpf_limit`` factors like ZigZag's LOMA); every distinct
   permutation of that multiset is a loop order.
3. *Memory allocation.* Each order is allocated to the memory levels bottom-up as LOMA does
   (``_search_kernels.AllocationProblem``): most reuse that fits each level's capacity.

A given ``temporal_ordering`` (:class:`~accelsim.mapping.ordering.TemporalOrdering`, ZigZag's
``temporal_ordering``) replaces step 2: a complete one is the only order (allocated by step 3),
a partial one keeps only the orders satisfying its pins (rule in :mod:`accelsim.mapping.ordering`).

This is ZigZag 3.9.1's LOMA space for a given spatial mapping (with ``lpf_limit=6``) — the
mapper's result is therefore never worse than LOMA's under the same cost model — widened by
the spatial candidates.

**Pruning** (sound: none can drop the optimum of the space):

- equal loops are never permuted (multiset permutations);
- loop orders whose allocated mapping has the same *stationarity signature* for every operand
  (per level: the loops after ZigZag's irrelevant-loop merge-down as a multiset, the top
  irrelevant and relevant runs, the bottom irrelevant run, and the input-window loop order) are
  evaluated once: the cost model's access counts and transfer windows depend on nothing else
  (``tests/test_mapping_search.py`` checks this on random orders against ``cost.evaluate``);
- branch-and-bound over spatial candidates: a candidate's latency is at least its ideal
  temporal cycles plus fill/drain and its energy at least its MAC energy; candidates whose bound
  cannot beat the best found so far are skipped (exact, since the bounds are lower bounds);
- branch-and-bound over the rows of a batch (``bound=True``; :func:`accelsim.mapping.fast._kernel`):
  a mapping whose key's lower bound (latency: temporal cycles + fill/drain + a stall term read
  off one operand's moves; energy: exact; edp: energy x the latency bound) is above the k-th
  best key known, and for the near-tie rule above ``(1 + share)`` x the fastest latency known, is
  not fully priced (exact: it can enter neither ``top`` nor ``front``; counted in
  ``SearchStats.pruned_rows``, and still in ``evaluated``).

**Objective and tie rule.** ``latency``: minimise (latency, energy); ``energy``: (energy,
latency); ``edp``: (energy x latency, latency, energy). Remaining ties go to the candidate met
first in the enumeration order, which is fixed: spatial candidates in rank order, loop orders
in lexicographic order of ``(dimension index in DIMS, size)`` innermost first — never dict or
set order.

**Latency near-ties** (``latency_tie_share = s > 0``, objective ``latency``): latencies within a
fraction of a percent are within the model's own granularity (docs/mapping.md, "128x128 OS"), so
the best mapping is the one of least energy (the hierarchy's prices, as given) among those whose
latency is at most ``(1 + s)`` x the fastest of the space; ties: lower latency, then enumeration
order. One pass: each candidate's batch folds its (latency, energy) Pareto points within the
tolerance of the fastest-so-far into a small front (a point beyond the tolerance never returns,
since the fastest only falls); the spatial bound skips a candidate only when its latency bound is
beyond the tolerance too. Identical layer shapes are mapped once (:class:`MappingCache`, keyed by shape x
hierarchy x objective x spatial specification x options).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import product as _iproduct
from math import ceil, prod
from typing import Callable, Iterable, Literal, Mapping as _MappingT, Sequence

from .._idmemo import identity_memo
from .._jit import notice_if_cold
from ..errors import ConfigError
from ..hardware.hierarchy import MemoryHierarchy
from . import _search_kernels as K
import numpy as np

from .cost import MappingCost
from .fast import FastEvaluator, variant_compatible
from .fast import _batch as _fast_batch
from .fast import _variant_args as _fast_variant_args
from .ir import ACCELSIM_TO_ZIGZAG, DIMS, OPERANDS, ZIGZAG_DIMS, LayerDims, Loop, Mapping, SpatialUnroll
from .ordering import TemporalOrdering

Objective = Literal["energy", "latency", "edp"]
Evaluator = Callable[[LayerDims, MemoryHierarchy, Mapping], MappingCost]
OBJECTIVES: tuple[str, ...] = ("energy", "latency", "edp")


def objective_key(cost: MappingCost, objective: str) -> tuple[float, ...]:
    """The tuple minimised for ``objective`` (see the module docstring)."""
    if objective == "latency":
        return (cost.latency_cycles, cost.energy_pj)
    if objective == "energy":
        return (cost.energy_pj, cost.latency_cycles)
    if objective == "edp":
        return (cost.energy_pj * cost.latency_cycles, cost.latency_cycles, cost.energy_pj)
    raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")


@dataclass(frozen=True)
class RankedMapping:
    """One searched mapping with its cost and objective key."""

    mapping: Mapping
    cost: MappingCost
    key: tuple[float, ...]


class _DeferredRanked(RankedMapping):
    """A :class:`RankedMapping` whose full cost breakdown is evaluated on first access of ``cost``
    (``evaluate(mapping)``, the compiled evaluator whose batch ranked it): a caller that only
    needs the mapping and key (e.g. the systolic engine, which re-prices the winner on its own
    hierarchy) never pays for it. Equality, ``repr``, copies and pickles see the evaluated cost
    (a copy or pickle is a plain :class:`RankedMapping`)."""

    def __init__(self, mapping: Mapping, key: tuple[float, ...], evaluate: Callable[[Mapping], MappingCost] | None = None,
                 cost: MappingCost | None = None):
        object.__setattr__(self, "mapping", mapping)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "_evaluate", evaluate)
        if cost is not None:  # ``dataclasses.replace`` passes every field
            object.__setattr__(self, "cost", cost)

    def __getattr__(self, name: str):  # only reached while ``cost`` is not set yet
        if name != "cost":
            raise AttributeError(name)
        cost = self._evaluate(self.mapping)
        object.__setattr__(self, "cost", cost)
        return cost

    def __eq__(self, other):  # equal to a plain RankedMapping of equal fields (tried first: subclass)
        if isinstance(other, RankedMapping):
            return (self.mapping, self.cost, self.key) == (other.mapping, other.cost, other.key)
        return NotImplemented

    __hash__ = RankedMapping.__hash__

    def __reduce__(self):
        return (RankedMapping, (self.mapping, self.cost, self.key))


@dataclass(frozen=True)
class SearchStats:
    """How much of the space was enumerated, deduplicated, evaluated and pruned."""

    spatial_candidates: int = 0
    spatial_searched: int = 0
    spatial_pruned: int = 0
    loop_orders: int = 0
    infeasible: int = 0
    unique_mappings: int = 0
    #: mappings handed to the evaluator (one per unique mapping of each searched spatial candidate)
    evaluated: int = 0
    #: of ``evaluated``, those the compiled evaluator's row bound proved unable to enter the top-k or
    #: the near-tie front, so not fully priced (``fast._kernel``; 0 with ``bound=False`` or ``evaluator``)
    pruned_rows: int = 0


@dataclass(frozen=True)
class SearchResult:
    """Best mapping and the top-k (best first, distinct mappings) of one layer."""

    layer: LayerDims
    objective: str
    top: tuple[RankedMapping, ...]
    stats: SearchStats
    cached: bool = False
    #: with ``latency_tie_share > 0`` (objective ``latency``): the (latency, energy) Pareto points
    #: within the tolerance of the fastest as ((latency, energy), mapping), fastest first (the first
    #: of ``top`` is the most energy-efficient of them); lets a caller merge several searches under
    #: the same rule exactly (costs are not evaluated: only the winner's is needed)
    front: tuple[tuple[tuple[float, float], Mapping], ...] = ()

    @property
    def best(self) -> RankedMapping:
        return self.top[0]

    @property
    def mapping(self) -> Mapping:
        return self.top[0].mapping

    @property
    def cost(self) -> MappingCost:
        return self.top[0].cost


# ---------------------------------------------------------------------------- spatial candidates
def _efficient_factors(bound: int, cap: int) -> list[int]:
    """Unroll factors <= cap that are the smallest giving their temporal trip count, descending."""
    out = set()
    for t in range(1, bound + 1):
        f = ceil(bound / t)
        if f <= cap:
            out.add(f)
        if f == 1:
            break
    return sorted(out, reverse=True)


def _norm_dim(d: str) -> str:
    d = str(d).strip()
    if d in DIMS:
        return d
    if d in ZIGZAG_DIMS:
        return ZIGZAG_DIMS[d]
    raise ConfigError(f"unknown loop dimension {d!r}", source="mapping", field="spatial")


def spatial_candidates(layer: LayerDims, hierarchy: MemoryHierarchy, *,
                       spatial: _MappingT[str, Sequence] | None = None,
                       hint: _MappingT[str, Sequence[str]] | None = None,
                       vary_factors: bool = False) -> list[tuple[SpatialUnroll, ...]]:
    """All spatial unrollings of the space, ranked (ideal temporal cycles, canonical text).

    A given ``spatial`` mapping is used as is (factors above a loop bound reduced to it, as ZigZag
    does) unless ``vary_factors``, which also tries every smaller efficient factor of its loops.
    Memoised on exactly what it reads: the loop bounds, the array dimensions (names, sizes), the
    specification (its ``repr``) and ``vary_factors``.
    """
    arr = tuple((d.name, d.size) for d in hierarchy.array.dimensions)
    key = (_sizes(layer), arr, repr(spatial), repr(hint), bool(vary_factors))
    hit = _CANDIDATES.get(key)
    if hit is None:
        hit = _spatial_candidates(layer, arr, spatial, hint, vary_factors)
        if len(_CANDIDATES) >= _CANDIDATES_MAX:
            del _CANDIDATES[next(iter(_CANDIDATES))]
        _CANDIDATES[key] = hit
    return list(hit)


@identity_memo(maxsize=1024)
def _sizes(layer: LayerDims) -> tuple[int, ...]:
    """The loop bounds of ``layer`` in ``DIMS`` order (once per frozen layer object)."""
    return tuple(layer.size(d) for d in DIMS)


@identity_memo(maxsize=1024)
def _shape_key(layer: LayerDims) -> tuple:
    """``layer.shape_key`` (once per frozen layer object)."""
    return layer.shape_key


#: ranked spatial candidates (tuples of immutable unrollings), see :func:`spatial_candidates`; FIFO-bounded
_CANDIDATES: dict[tuple, tuple] = {}
_CANDIDATES_MAX = 4096


def _spatial_candidates(layer: LayerDims, arr: tuple[tuple[str, int], ...], spatial, hint,
                        vary_factors: bool) -> tuple[tuple[SpatialUnroll, ...], ...]:
    names = {n for n, _ in arr}
    for src in (spatial or {}), (hint or {}):
        for ad in src:
            if ad not in names:
                raise ConfigError(f"unknown array dimension {ad!r} (array has {', '.join(sorted(names))})",
                                  source="mapping", field="spatial")
    per_dim: list[list[tuple[Loop, ...]]] = []
    for ad, size in arr:
        opts: list[tuple[Loop, ...]] = []
        if spatial is not None and (ad in spatial or hint is None):
            given = spatial.get(ad, [])
            items = []
            for it in given:
                dim, f = (_norm_dim(it[0]), int(it[1])) if not isinstance(it, Loop) else (it.dim, it.size)
                items.append((dim, f))
            if not items:
                opts.append(())
            else:
                if vary_factors:
                    choices = [[(dm, f2) for f2 in _efficient_factors(layer.size(dm), min(f, size))] for dm, f in items]
                else:  # ZigZag: a given factor larger than the loop bound is reduced to the bound
                    choices = [[(dm, min(f, layer.size(dm)))] for dm, f in items]
                for combo in _iproduct(*choices):
                    if prod(f2 for _, f2 in combo) <= size:
                        opts.append(tuple(Loop(dm, f2) for dm, f2 in combo if f2 > 1))
        else:
            dims = [_norm_dim(x) for x in (hint.get(ad, []) if hint is not None else DIMS)]
            if hint is not None and ad not in hint:
                dims = list(DIMS)
            opts.append(())
            for dm in dims:
                for f in _efficient_factors(layer.size(dm), size):
                    if f > 1:
                        opts.append((Loop(dm, f),))
        per_dim.append(sorted(set(opts), key=lambda t: tuple((lp.dim, -lp.size) for lp in t)))
    out = []
    fixed = {ad for ad, _ in arr if spatial is not None and (ad in spatial or hint is None)}
    for combo in _iproduct(*per_dim):
        # a searched loop dimension is unrolled on one array dimension only (a given mapping may
        # unroll one dimension on several, e.g. ZigZag's ``D3: [OX 2, OY 2], D4: [OX 2, OY 2]``)
        used = [lp.dim for (ad, _), t in zip(arr, combo) if ad not in fixed for lp in t]
        given = {lp.dim for (ad, _), t in zip(arr, combo) if ad in fixed for lp in t}
        if len(used) != len(set(used)) or given.intersection(used):
            continue
        out.append(tuple(SpatialUnroll(ad, t) for (ad, _), t in zip(arr, combo)))

    bounds = dict(zip(DIMS, _sizes(layer)))

    def rank(sp):
        f = dict.fromkeys(DIMS, 1)
        for su in sp:
            for lp in su.loops:
                f[lp.dim] *= lp.size
        tc = 1
        for d in DIMS:
            tc *= -(-bounds[d] // f[d])
        return (tc, tuple((su.array_dim, tuple((lp.dim, -lp.size) for lp in su.loops)) for su in sp))
    out.sort(key=rank)
    return tuple(out)


# ---------------------------------------------------------------------------- allocation problem
#: allocation problems (shared: never modified) keyed by exactly what :func:`_problem_of`
#: reads: per memory its name, capacity, operands and served dimensions, the spatial unrolling,
#: the widths and the geometry (no bandwidth, no price). FIFO-bounded.
_PROBLEMS: dict[tuple, K.AllocationProblem] = {}
_PROBLEMS_MAX = 4096


def _problem(layer: LayerDims, hierarchy: MemoryHierarchy, sp: tuple[SpatialUnroll, ...]) -> K.AllocationProblem:
    """The allocation problem of ``layer`` on ``hierarchy`` with spatial unrolling ``sp`` (memoised)."""
    key = (_memories_key(hierarchy.memories), sp,
           layer.w_bits, layer.i_bits, layer.o_bits, layer.o_final_bits,
           (layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w, layer.in_h, layer.in_w))
    hit = _PROBLEMS.get(key)
    if hit is None:
        hit = _problem_of(layer, hierarchy, sp)
        if len(_PROBLEMS) >= _PROBLEMS_MAX:
            del _PROBLEMS[next(iter(_PROBLEMS))]
        _PROBLEMS[key] = hit
    return hit


@identity_memo(maxsize=256)
def _memories_key(memories: tuple) -> tuple:
    """What :func:`_problem_of` reads of each memory (name, capacity, operands, served dimensions),
    built once per (frozen) memories tuple: derived hierarchies share their base's tuple."""
    return tuple((m.name, m.size_bits, m.operands, m.served_dimensions) for m in memories)


def _problem_of(layer: LayerDims, hierarchy: MemoryHierarchy, sp: tuple[SpatialUnroll, ...]) -> K.AllocationProblem:
    levels = {op: [m.name for m in hierarchy.levels(op)] for op in OPERANDS}
    spatial_at: dict[str, list[list[tuple[int, int]]]] = {}
    for op in OPERANDS:
        mems = hierarchy.levels(op)
        at: list[list[tuple[int, int]]] = [[] for _ in mems]
        for su in sp:
            idx = next((i for i, m in enumerate(mems) if su.array_dim in m.served_dimensions), len(mems) - 1)
            for lp in su.loops:
                at[idx].append((K.DIM_INDEX[lp.dim], lp.size))
        spatial_at[op] = at
    memories = [(m.name, m.size_bits, tuple(op for op in m.operands)) for m in hierarchy.memories]
    return K.AllocationProblem(levels=levels, spatial_at=spatial_at, memories=memories,
                               bits={"W": layer.w_bits, "I": layer.i_bits, "O": layer.o_bits},
                               o_final_bits=layer.o_final_bits,
                               geo=(layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w,
                                    layer.in_h, layer.in_w))


def _trips(layer: LayerDims, sp: tuple[SpatialUnroll, ...]) -> dict[str, int]:
    """Temporal trip count per dimension (``DIMS`` order): ``ceil(bound / spatial factor)``
    (integer ceiling: equal to ``ceil(bound / f)`` for these small integers)."""
    f = dict.fromkeys(DIMS, 1)
    for su in sp:
        for lp in su.loops:
            f[lp.dim] *= lp.size
    return {d: -(-int(getattr(layer, d)) // f[d]) for d in DIMS}


#: enumerated loop orders keyed by exactly what the loop-order kernel reads of the allocation
#: problem (its :meth:`~_search_kernels.AllocationProblem.arrays`: level -> memory links,
#: capacities, operands per memory, per-level spatial extents, widths, geometry; not the memory
#: names nor the order of spatial loops within a level), the loop prime factors, ``dedupe`` and
#: the ordering pins; bandwidths and prices are not inputs of allocation or signatures, so
#: hierarchies differing only in those (e.g. a DRAM-bandwidth sweep), or array shapes giving a
#: layer the same per-level problem, share one enumeration. Bounded (FIFO eviction).
_ORDER_CACHE: dict[tuple, tuple] = {}
_ORDER_CACHE_MAX = 4096


def _problem_key(prob: K.AllocationProblem) -> tuple:
    """The problem's kernel input as a key (computed once per problem object)."""
    key = getattr(prob, "_search_key", None)
    if key is None:
        key = tuple((x.shape, x.dtype.char, x.tobytes()) if isinstance(x, np.ndarray) else x for x in prob.arrays())
        prob._search_key = key
    return key


@dataclass(frozen=True)
class _Orders:
    """The loop orders of one allocation problem that the search evaluates, ready for
    :meth:`FastEvaluator.batch` (arrays shared through :data:`_ORDER_CACHE`: never modified)."""

    #: [m] enumeration index of each row (lexicographic rank: the tie rule's order rank)
    rank: np.ndarray
    #: [m, n] loop order as indices into the loop factors, innermost first
    orders: np.ndarray
    #: [m, 3, levels] loops per memory level for W, I, O
    counts: np.ndarray
    #: [m, n] loop dimension codes and sizes, and [m] loops per row (``batch``'s temporal arrays)
    tm_dims: np.ndarray
    tm_sizes: np.ndarray
    n_tm: np.ndarray
    #: orders enumerated, of which infeasible (no allocation fits)
    n_all: int
    n_bad: int

    @classmethod
    def of(cls, lpfs: Sequence[tuple[int, int]], rank: np.ndarray, orders: np.ndarray, counts: np.ndarray,
           n_all: int, n_bad: int) -> "_Orders":
        kd, ks = _row_factor_arrays(tuple(lpfs))
        return cls(rank, orders, np.ascontiguousarray(counts), np.ascontiguousarray(kd[orders]),
                   np.ascontiguousarray(ks[orders]), np.full(len(rank), len(lpfs), dtype=np.int64), n_all, n_bad)


@lru_cache(maxsize=4096)
def _row_factor_arrays(lpfs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`_Orders.of`'s loop dimension codes and (float) sizes of ``lpfs`` (one dummy loop when
    empty), built once; only indexed (never modified)."""
    return (np.array([d for d, _ in lpfs] or [0], dtype=np.int64),
            np.array([s for _, s in lpfs] or [1], dtype=np.float64))


def _order_arrays(prob: K.AllocationProblem, lpfs: list[tuple[int, int]], dedupe: bool,
                  ordering: TemporalOrdering | None = None) -> _Orders:
    """The feasible loop orders of ``lpfs`` to evaluate — one per signature class when ``dedupe``,
    the first in lexicographic order —, only those satisfying ``ordering``'s pins if given.
    Memoised in :data:`_ORDER_CACHE`."""
    key = (_problem_key(prob), tuple(lpfs), dedupe, ordering.loops if ordering is not None else None)
    hit = _ORDER_CACHE.get(key)
    if hit is None:
        hit = _order_arrays_uncached(prob, lpfs, dedupe, ordering)
        if len(_ORDER_CACHE) >= _ORDER_CACHE_MAX:
            del _ORDER_CACHE[next(iter(_ORDER_CACHE))]
        _ORDER_CACHE[key] = hit
    return hit


def _order_arrays_uncached(prob: K.AllocationProblem, lpfs: list[tuple[int, int]], dedupe: bool,
                           ordering: TemporalOrdering | None = None) -> _Orders:
    if not lpfs:
        c = prob.allocate(())
        if ordering is not None and ordering.pins():
            c = None
        return _single_order(prob, lpfs, (), c)
    kd, ks, n_perm = _factor_arrays(tuple(lpfs))
    pin_dim, pin_size = K.pin_arrays(ordering.position_pins(), lpfs) if ordering is not None else _no_pins(len(lpfs))
    rank, orders, counts, _, n_all, n_bad = K.enumerate_orders(
        kd, ks, *prob.arrays(), n_perm, dedupe, pin_dim, pin_size, K.FULL_HASH)
    return _Orders.of(lpfs, rank, orders, counts, int(n_all), int(n_bad))


@lru_cache(maxsize=4096)
def _factor_arrays(lpfs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_search_kernels.enumerate_orders`' loop-factor inputs (dimension codes, sizes, number
    of distinct permutations) of ``lpfs``, built once (shared: the kernel only reads them)."""
    return (np.array([d for d, _ in lpfs], dtype=np.int64), np.array([s for _, s in lpfs], dtype=np.int64),
            K.n_distinct_permutations(lpfs))


@lru_cache(maxsize=64)
def _no_pins(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``K.pin_arrays((), factors)`` for ``n`` factors, built once (shared: the kernel only reads them)."""
    return K.pin_arrays((), range(n))


def _single_order(prob: K.AllocationProblem, lpfs, order: tuple[int, ...], c: dict | None) -> _Orders:
    """One order (``order``: indices into ``lpfs``) with its allocation ``c`` (None: infeasible)."""
    nl = max(len(v) for v in prob.levels.values())
    counts = np.zeros((1 if c is not None else 0, 3, nl), dtype=np.int64)
    if c is not None:
        for o, op in enumerate(OPERANDS):
            counts[0, o, :len(c[op])] = c[op]
    orders = np.array([order] if c is not None else [], dtype=np.int64).reshape(len(counts), len(order))
    return _Orders.of(lpfs, np.arange(len(counts), dtype=np.int64), orders, counts, 1, int(c is None))


def _given_order_arrays(prob: K.AllocationProblem, order: tuple[tuple[str, int], ...]):
    """``(lpfs, orders)`` of :func:`_order_arrays` for one complete given order (allocated, not permuted)."""
    lpfs = [(K.DIM_INDEX[d], s) for d, s in order]
    return lpfs, _single_order(prob, lpfs, tuple(range(len(lpfs))), prob.allocate(tuple(lpfs)))


def _mapping_of(sp, lpfs, order_row, counts_row, prob) -> Mapping:
    order = tuple(lpfs[j] for j in order_row.tolist())
    rows = counts_row.tolist()
    cnt = {op: tuple(rows[o][:len(prob.levels[op])]) for o, op in enumerate(OPERANDS)}
    return _to_mapping(sp, order, cnt)


def _pareto_rows(lat: np.ndarray, e: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Indices of the (latency, energy) Pareto points, fastest first: sorted by (latency, energy,
    rank), a row is kept iff its energy is strictly below every earlier row's (so of equal points
    the lowest ``rank`` stays, and of equal energies the fastest)."""
    o = np.lexsort((rank, e, lat))
    es = e[o]
    prev = np.minimum.accumulate(np.concatenate(([np.inf], es[:-1])))
    return o[es < prev]


def _best_rows(cols: Sequence[np.ndarray], rank: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The best ``k`` of ``rows``, best first: lexicographic on ``cols``, then ``rank`` (unique).
    ``k == 1``: narrowed column by column (linear, equal to the sort's first row)."""
    if k == 1:
        for c in cols:
            v = c[rows]
            rows = rows[v == v.min()]
            if len(rows) == 1:
                return rows
        return rows[np.argmin(rank[rows])][None]
    return rows[np.lexsort((rank[rows],) + tuple(c[rows] for c in reversed(cols)))[:k]]


def tie_winner(front: Sequence[tuple], share: float) -> int:
    """Index in ``front`` (entries ``(latency, energy, ...)`` with totally ordered tails) of the
    latency tie rule's choice: among entries whose latency is within ``share`` of the fastest,
    the least energy, then the least latency, then the smallest tail (enumeration order)."""
    thr = (1.0 + share) * min(f[0] for f in front)
    near = [i for i, f in enumerate(front) if f[0] <= thr]
    return min(near, key=lambda i: (front[i][1], front[i][0]) + tuple(front[i][2:4]))


def _merge_front(front: list[tuple], l_min: float, tie: float, lat: np.ndarray, e: np.ndarray,
                 rank: np.ndarray, si: int, payload: Callable[[int], tuple]) -> tuple[float, list[tuple]]:
    """Fold one spatial candidate's evaluated rows into the near-tie front (see ``search_layer``):
    returns the new fastest latency and the Pareto points within ``(1 + tie)`` of it.
    ``payload(r)`` gives row ``r``'s (mapping, cost, raw) entry."""
    l_min = min(l_min, float(lat.min()))
    thr = (1.0 + tie) * l_min
    # the Pareto rows within the tolerance are the Pareto rows of the rows within it: a row is
    # dropped only for a row of lower or equal latency, which is within the tolerance too
    near = np.nonzero(lat <= thr)[0]
    new = [(float(lat[r]), float(e[r]), si, int(rank[r])) + payload(int(r))
           for r in near[_pareto_rows(lat[near], e[near], rank[near])]]
    merged, best_e = [], float("inf")
    for f in sorted(front + new, key=lambda f: f[:4]):
        if f[0] <= thr and f[1] < best_e:
            merged.append(f)
            best_e = f[1]
    return l_min, merged


def _push(top: list, entry: tuple, top_k: int) -> None:
    if len(top) < top_k or entry[:3] < top[-1][:3]:
        top.append(entry)
        top.sort(key=lambda e: e[:3])
        del top[top_k:]


@lru_cache(maxsize=4096)
def _loop(d: int, size: int) -> Loop:
    """The (immutable) loop of dimension index ``d`` and ``size``, built once."""
    return Loop(DIMS[d], size)


def _to_mapping(sp, order, counts) -> Mapping:
    temporal = tuple(_loop(d, s) for d, s in order)
    return Mapping(sp, temporal, tuple((op, counts[op]) for op in OPERANDS))


@lru_cache(maxsize=4096)
def _loop_factors(trips: tuple[tuple[str, int], ...], lpf_limit: int | None) -> tuple[tuple[int, int], ...]:
    """:func:`_search_kernels.loop_prime_factors` of ``trips`` (memoised; a tuple: shared)."""
    return tuple(K.loop_prime_factors(dict(trips), lpf_limit))


def _lower_bound(layer: LayerDims, hierarchy: MemoryHierarchy, sp, objective: str,
                 trips: dict[str, int] | None = None) -> tuple[float, ...]:
    """A lower bound of the objective key for every mapping with spatial unrolling ``sp``
    (``trips``: its :func:`_trips`, computed if not given)."""
    tc = prod((_trips(layer, sp) if trips is None else trips).values())
    lat = float(tc)
    en = layer.macs * hierarchy.array.mac_energy_pj
    if objective == "latency":
        return (lat, en)
    if objective == "energy":
        return (en, lat)
    return (en * lat, lat, en)


# ---------------------------------------------------------------------------- the search
@dataclass
class MappingCache:
    """Search results keyed by layer shape x hierarchy x objective x spatial spec x options."""

    results: dict[tuple, "SearchResult"] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def clear(self) -> None:
        self.results.clear()
        self.hits = self.misses = 0


_DEFAULT_CACHE = MappingCache()


#: JSON of memory tuples by identity (value: (the tuple itself, its JSON)): hierarchies derived
#: with ``model_copy`` (a new array, a new name) share their frozen ``memories`` tuple, so its
#: serialisation is done once. Holding the tuple keeps its ``id`` from being reused. FIFO-bounded.
_MEMORIES_JSON: dict[int, tuple[tuple, str]] = {}
_MEMORIES_JSON_MAX = 256


@identity_memo(maxsize=1024)
def hierarchy_key(hierarchy: MemoryHierarchy) -> str:
    """A stable digest of everything in ``hierarchy`` (its name excluded): every field but the
    name and the memories as JSON, then each memory's JSON (memoised per memories tuple, and the
    digest per hierarchy object: frozen models, so one object always gives one digest)."""
    mems = hierarchy.memories
    hit = _MEMORIES_JSON.get(id(mems))
    if hit is None or hit[0] is not mems:
        hit = (mems, "[" + ",".join(m.model_dump_json() for m in mems) + "]")
        if len(_MEMORIES_JSON) >= _MEMORIES_JSON_MAX:
            del _MEMORIES_JSON[next(iter(_MEMORIES_JSON))]
        _MEMORIES_JSON[id(mems)] = hit
    data = hierarchy.model_dump_json(exclude={"name", "memories"}) + hit[1]
    return hashlib.sha1(data.encode()).hexdigest()


def _spec_key(spatial, hint) -> tuple:
    def norm(x):
        if x is None:
            return None
        return tuple(sorted((str(k), tuple(str(tuple(v)) if not isinstance(v, str) else v for v in vals))
                            for k, vals in x.items()))
    return (norm(spatial), norm(hint))


#: at most this many times ``max_spatial`` spatial candidates are tried (infeasible ones included)
MAX_TRIED_FACTOR = 8


def search_layer(layer: LayerDims, hierarchy: MemoryHierarchy, *, objective: str = "latency",
                 spatial: _MappingT[str, Sequence] | None = None,
                 hint: _MappingT[str, Sequence[str]] | None = None,
                 temporal_ordering: TemporalOrdering | Sequence | None = None,
                 top_k: int = 5, lpf_limit: int | None = 6, max_spatial: int | None = 8,
                 vary_factors: bool = False,
                 dedupe: bool = True, bound: bool = True, latency_tie_share: float = 0.0,
                 evaluator: Evaluator | None = None, cache: MappingCache | None = _DEFAULT_CACHE,
                 siblings: Sequence[MemoryHierarchy] = ()) -> SearchResult:
    """Search the space described in the module docstring; return the best ``top_k`` mappings.

    Mappings are priced by the compiled :class:`~accelsim.mapping.fast.FastEvaluator` (equal to
    :func:`accelsim.mapping.cost.evaluate`), a whole spatial candidate's loop orders in one batch;
    ``evaluator(layer, hierarchy, mapping) -> MappingCost`` replaces it (one call per mapping). ``dedupe``/``bound`` switch the two pruning rules off (for the brute-force
    tests). ``cache=None`` disables caching. ``temporal_ordering`` (ZigZag's, innermost first):
    evaluate exactly that order when it is complete, else search only the orders it allows.

    ``latency_tie_share`` (objective ``latency`` only; see "Latency near-ties" in the module
    docstring): the best mapping is the least-energy one among those within this share of the
    fastest; the rest of ``top`` follows in (latency, energy) order and ``front`` holds the
    Pareto points within the tolerance.

    ``siblings``: hierarchies that differ from ``hierarchy`` only in memory prices and port
    bandwidths (:func:`~accelsim.mapping.fast.variant_compatible`, e.g. other DRAM bandwidths of a
    sweep) are searched in the same pass over spatial candidates and loop orders (one compiled
    batch prices all of them; each keeps its own selection, front, bound and stats), and their
    results go into ``cache`` under their own keys: each equals ``search_layer(sibling, ...)``.
    Without a cache, or with ``evaluator``, siblings are ignored; incompatible ones are searched
    on their own.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")
    if top_k < 1:
        raise ConfigError("top_k must be >= 1", field="top_k")
    if not 0.0 <= latency_tie_share < 1.0:
        raise ConfigError(f"latency_tie_share must be in [0, 1), got {latency_tie_share!r}", field="latency_tie_share")
    tie = float(latency_tie_share) if objective == "latency" else 0.0
    tord = None
    if temporal_ordering is not None:
        tord = temporal_ordering if isinstance(temporal_ordering, TemporalOrdering) \
            else TemporalOrdering.of(temporal_ordering)
    opts = (objective, _spec_key(spatial, hint), top_k, lpf_limit, max_spatial, vary_factors, dedupe, bound,
            id(evaluator) if evaluator is not None else None, tord.loops if tord is not None else None, tie)
    todo: list[tuple[MemoryHierarchy, tuple | None]] = []
    main = None
    if cache is not None:
        shape = _shape_key(layer)
        key = (shape, hierarchy_key(hierarchy)) + opts
        hit = cache.results.get(key)
        if hit is not None:
            cache.hits += 1
            main = replace(hit, layer=layer, cached=True)
        else:
            cache.misses += 1
            todo.append((hierarchy, key))
        if evaluator is None:
            seen = {key}
            for h in siblings:
                k = (shape, hierarchy_key(h)) + opts
                if k in seen or k in cache.results:
                    continue
                seen.add(k)
                if variant_compatible(hierarchy, h):
                    cache.misses += 1
                    todo.append((h, k))
                else:
                    search_layer(layer, h, objective=objective, spatial=spatial, hint=hint, temporal_ordering=tord,
                                 top_k=top_k, lpf_limit=lpf_limit, max_spatial=max_spatial, vary_factors=vary_factors,
                                 dedupe=dedupe, bound=bound, latency_tie_share=latency_tie_share, cache=cache)
    else:
        todo.append((hierarchy, None))
    if not todo:
        return main
    results = _search_variants(layer, [h for h, _ in todo], objective, spatial, hint, tord, top_k, lpf_limit,
                               max_spatial, vary_factors, dedupe, bound, tie, evaluator)
    for (_, k), res in zip(todo, results):
        if k is not None:
            cache.results[k] = res
    return main if main is not None else results[0]


@dataclass
class _VariantState:
    """One hierarchy variant's selection state in :func:`_search_variants`."""

    hierarchy: MemoryHierarchy
    fe: FastEvaluator | None
    # (key, spatial rank, order rank, mapping, cost or None, raw)
    top: list = field(default_factory=list)
    # latency near-ties: Pareto points (latency, energy, spatial rank, order rank, mapping, cost,
    # raw) within (1 + tie) x the fastest latency so far (a point beyond it never comes back)
    front: list = field(default_factory=list)
    l_min: float = float("inf")
    active: bool = True
    n_orders: int = 0
    n_infeasible: int = 0
    n_unique: int = 0
    n_eval: int = 0
    n_rows_pruned: int = 0
    n_pruned: int = 0
    n_searched: int = 0

    def known_keys(self, top_k: int) -> list[float]:
        """The primary keys of ``top`` (ascending), inf-padded to ``top_k``: the row bound's threshold."""
        return [t[0][0] for t in self.top] + [np.inf] * (top_k - len(self.top))


def _search_variants(layer: LayerDims, hiers: list[MemoryHierarchy], objective: str, spatial, hint,
                     tord: TemporalOrdering | None, top_k: int, lpf_limit, max_spatial, vary_factors: bool,
                     dedupe: bool, bound: bool, tie: float, evaluator: Evaluator | None) -> list[SearchResult]:
    """:func:`search_layer`'s search (no cache) of ``layer`` on each of ``hiers`` (variants of the
    first differing only in prices and bandwidths; one with ``evaluator``), in one pass."""
    hierarchy = hiers[0]
    cands = spatial_candidates(layer, hierarchy, spatial=spatial, hint=hint, vary_factors=vary_factors)
    n_cands = len(cands)
    if evaluator is None:
        notice_if_cold(_fast_batch, "the mapper's kernels", "~30 s")
    fe = FastEvaluator(layer, hierarchy, variants=hiers[1:]) if evaluator is None else None
    vs = [_VariantState(h, FastEvaluator(layer, h) if (fe is not None and i) else fe) for i, h in enumerate(hiers)]
    args_of: dict[tuple[int, ...], tuple] = {}  # active variants -> the kernel's hierarchy arguments
    n_searched = n_feasible = 0
    # candidates are in rank order, which is also ascending lower-bound order (the bound is the
    # ideal temporal cycles / the constant MAC energy): once one is bounded out, all later are
    for si, sp in enumerate(cands):
        if max_spatial is not None and (n_feasible >= max_spatial or n_searched >= MAX_TRIED_FACTOR * max_spatial):
            break
        trips = _trips(layer, sp)
        lb = _lower_bound(layer, hierarchy, sp, objective, trips)
        for v in vs:
            if v.active and bound and len(v.top) >= top_k and lb > v.top[top_k - 1][0] \
                    and not (tie and lb[0] <= (1 + tie) * v.l_min):
                v.n_pruned = n_cands - si
                v.active = False
        act = [i for i, v in enumerate(vs) if v.active]
        if not act:
            break
        n_searched += 1
        prob = _problem(layer, hierarchy, sp)
        given = tord.complete_order(trips) if tord is not None else None
        if given is not None:
            lpfs, od = _given_order_arrays(prob, given)
        elif tord is not None:
            lpfs = tord.constrained_factors(trips, lpf_limit, layer.name or "layer")
            od = _order_arrays(prob, lpfs, dedupe, tord)
        else:
            lpfs = _loop_factors(tuple(trips.items()), lpf_limit)
            od = _order_arrays(prob, lpfs, dedupe)
        for i in act:
            v = vs[i]
            v.n_searched += 1
            v.n_orders += od.n_all
            v.n_infeasible += od.n_bad
            v.n_unique += len(od.rank)
        if not len(od.rank):
            continue
        n_feasible += 1
        idx = od.rank

        def raw(r: int) -> tuple:
            return (sp, lpfs, od.orders[r], od.counts[r], prob)

        if fe is not None:
            ka = args_of.get(tuple(act))
            if ka is None:
                ka = args_of[tuple(act)] = _fast_variant_args([vs[i].fe.hw for i in act])
            if bound:  # rows that cannot be selected are not fully priced (exact: see fast._kernel)
                e_all, lat_all, pruned = fe.batch_pruned(
                    sp, od.tm_dims, od.tm_sizes, od.n_tm, od.counts, ka, objective, tie,
                    np.array([vs[i].known_keys(top_k) for i in act]), np.array([vs[i].l_min for i in act]))
            else:
                e_all, lat_all = fe.batch_variants(sp, od.tm_dims, od.tm_sizes, od.n_tm, od.counts, ka)
                pruned = None
            for j, i in enumerate(act):
                if pruned is not None:
                    vs[i].n_rows_pruned += int(pruned[j].sum())
                _select(vs[i], e_all[j], lat_all[j], idx, si, objective, tie, top_k, raw)
        else:
            v = vs[0]
            got = []
            for r in range(len(idx)):
                m = _mapping_of(*raw(r))
                c = evaluator(layer, hierarchy, m)
                v.n_eval += 1
                k = objective_key(c, objective)
                _push(v.top, (k, si, int(idx[r]), m, c, None), top_k)
                got.append((m, c))
            if tie:
                lat_a = np.array([c.latency_cycles for _, c in got])
                e_a = np.array([c.energy_pj for _, c in got])
                ok = np.isfinite(lat_a) & np.isfinite(e_a)
                sel = np.nonzero(ok)[0]
                if len(sel):
                    v.l_min, v.front = _merge_front(v.front, v.l_min, tie, lat_a[sel], e_a[sel], idx[sel], si,
                                                    lambda r: got[sel[r]] + (None,))
    return [_result_of(layer, v, objective, tie, top_k, n_cands, tord) for v in vs]


def _select(v: _VariantState, e: np.ndarray, lat: np.ndarray, idx: np.ndarray, si: int, objective: str, tie: float,
            top_k: int, raw: Callable[[int], tuple]) -> None:
    """Fold one spatial candidate's batch-priced rows into variant ``v``'s top and near-tie front."""
    v.n_eval += len(idx)
    cols = (lat, e) if objective == "latency" else (e, lat) if objective == "energy" else (e * lat, lat, e)
    finite = np.isfinite(e) & np.isfinite(lat)
    rows = np.nonzero(finite)[0]
    if not len(rows):
        return
    if tie:
        v.l_min, v.front = _merge_front(v.front, v.l_min, tie, lat[rows], e[rows], idx[rows], si,
                                        lambda r: (None, None, raw(rows[r])))
    for r in _best_rows(cols, idx, rows, top_k):
        k = tuple(float(c[r]) for c in cols)
        _push(v.top, (k, si, int(idx[r]), None, None, raw(r)), top_k)


def _result_of(layer: LayerDims, v: _VariantState, objective: str, tie: float, top_k: int, n_cands: int,
               tord: TemporalOrdering | None) -> SearchResult:
    """Variant ``v``'s :class:`SearchResult` from its selection state."""
    top, front, fe = v.top, v.front, v.fe
    if not top:
        what = f" with temporal_ordering {tord}" if tord is not None else ""
        raise ConfigError(f"no mapping of layer {layer.name or layer.shape_key}{what} fits hierarchy "
                          f"{v.hierarchy.name} ({v.n_orders} loop orders over {n_cands} spatial unrollings tried)",
                          source=v.hierarchy.name)
    stats = SearchStats(spatial_candidates=n_cands, spatial_searched=v.n_searched, spatial_pruned=v.n_pruned,
                        loop_orders=v.n_orders, infeasible=v.n_infeasible, unique_mappings=v.n_unique,
                        evaluated=v.n_eval, pruned_rows=v.n_rows_pruned)

    built: dict[tuple[int, int], Mapping] = {}  # (spatial rank, order rank) -> its mapping, built once

    def mapping_of(si: int, oi: int, m, raw) -> Mapping:
        if m is not None:
            return m
        mp = built.get((si, oi))
        if mp is None:
            mp = built[si, oi] = _mapping_of(*raw)
        return mp

    ranked = [RankedMapping(mp, c, k) if m is not None else _DeferredRanked(mp, k, fe.evaluate)
              for k, si, oi, m, c, raw in top for mp in (mapping_of(si, oi, m, raw),)]
    fr: tuple[tuple[tuple[float, float], Mapping], ...] = ()
    if tie:
        fr = tuple(((f[0], f[1]), mapping_of(f[2], f[3], f[4], f[6])) for f in front)
        wi = tie_winner(front, tie)
        wk, wm = fr[wi]
        w = next((r for r in ranked if r.mapping == wm), None)
        if w is None:
            w = RankedMapping(wm, front[wi][5], wk) if front[wi][5] is not None \
                else _DeferredRanked(wm, wk, fe.evaluate)
        ranked = [w] + [r for r in ranked if r.mapping != wm]
        del ranked[top_k:]
    return SearchResult(layer, objective, tuple(ranked), stats, front=fr)


def search_layers(layers: Iterable[LayerDims], hierarchy: MemoryHierarchy, **kw) -> dict[str, SearchResult]:
    """:func:`search_layer` for each layer (identical shapes are searched once via the cache)."""
    kw.setdefault("cache", _DEFAULT_CACHE)
    return {ld.name: search_layer(ld, hierarchy, **kw) for ld in layers}


# ---------------------------------------------------------------------------- printing
def _zz(d: str) -> str:
    return ACCELSIM_TO_ZIGZAG.get(d, d)


def mapping_loops_text(m: Mapping, hierarchy: MemoryHierarchy | None = None) -> list[str]:
    """ZigZag-like lines: spatial unrolling, then per operand its levels' loops, innermost first."""
    sp = ", ".join(f"{su.array_dim}: " + ("/".join(f"{_zz(lp.dim)} {lp.size}" for lp in su.loops) or "-")
                   for su in m.spatial)
    lines = [f"  spatial   {sp}"]
    for op in OPERANDS:
        names = [mm.name for mm in hierarchy.levels(op)] if hierarchy is not None else None
        parts = []
        for i, lv in enumerate(m.levels(op)):
            body = ", ".join(f"({_zz(lp.dim)}, {lp.size})" for lp in lv)
            lbl = names[i] if names and i < len(names) else f"L{i}"
            parts.append(f"{lbl}[{body}]")
        lines.append(f"  {op:<9} " + " ".join(parts))
    return lines


def format_mapping_table(result: SearchResult, hierarchy: MemoryHierarchy | None = None, top_k: int | None = None) -> str:
    """Readable table of the top mappings: cost breakdown, then the loops per operand and level."""
    rows = result.top[: top_k or len(result.top)]
    lay = result.layer
    head = (f"layer {lay.name or '?'}  N={lay.N} G={lay.G} K={lay.K} C={lay.C} P={lay.P} Q={lay.Q} R={lay.R} "
            f"S={lay.S}  MACs={lay.macs:,}  objective={result.objective}")
    st = result.stats
    out = [head, (f"searched {st.spatial_searched}/{st.spatial_candidates} spatial unrollings "
                  f"({st.spatial_pruned} bounded out), {st.loop_orders} loop orders, "
                  f"{st.unique_mappings} distinct mappings evaluated" + (" [cached]" if result.cached else ""))]
    out.append(f"{'#':>2} {'latency_cycles':>15} {'energy_pj':>14} {'temporal':>11} {'stall':>9} "
               f"{'onload':>8} {'offload':>8} {'mac_util':>8}")
    n_macs = hierarchy.array.num_macs if hierarchy is not None else None
    for i, r in enumerate(rows, 1):
        c = r.cost
        util = (lay.macs / (c.latency_cycles * n_macs)) if n_macs and c.latency_cycles else float("nan")
        out.append(f"{i:>2} {c.latency_cycles:>15,.0f} {c.energy_pj:>14,.0f} {c.temporal_cycles:>11,.0f} "
                   f"{c.stall_cycles:>9,.0f} {c.onload_cycles:>8,.0f} {c.offload_cycles:>8,.0f} {util:>8.3f}")
        out.extend(mapping_loops_text(r.mapping, hierarchy))
        by_op = []
        for op in OPERANDS:
            lv = [f"{lc.level}={lc.energy_pj:,.0f}" for lc in c.levels if lc.operand == op]
            by_op.append(f"{op}: " + " ".join(lv))
        out.append("  energy_pj " + "; ".join(by_op) + f"; MAC={c.mac_energy_pj:,.0f}")
    return "\n".join(out)


def map_layer_report(workload, hw_or_hierarchy, layer_name: str, top_k: int = 5, objective: str = "latency",
                     **search_kw) -> str:
    """Text for ``accelsim map``: the best ``top_k`` mappings of one layer with cost breakdowns.

    ``workload``: a Workload or a path (anything ``accelsim.load_workload`` reads);
    ``hw_or_hierarchy``: a :class:`MemoryHierarchy`, an object with a ``hierarchy()`` method or
    ``hierarchy`` attribute, or a ZigZag accelerator YAML path.
    """
    from ..workload.io import load_workload
    wl = load_workload(workload) if isinstance(workload, (str, bytes)) or hasattr(workload, "__fspath__") else workload
    hier = _as_hierarchy(hw_or_hierarchy)
    layer = next((ly for ly in wl.layers if ly.name == layer_name), None)
    if layer is None:
        names = ", ".join(ly.name for ly in wl.layers[:12])
        raise ConfigError(f"no layer named {layer_name!r} (layers: {names}{', ...' if len(wl.layers) > 12 else ''})",
                          source=getattr(wl, "name", "workload"), field="layer")
    ld = LayerDims.from_layer(layer)
    res = search_layer(ld, hier, objective=objective, top_k=top_k, **search_kw)
    return format_mapping_table(res, hier, top_k)


def _as_hierarchy(hw) -> MemoryHierarchy:
    """A MemoryHierarchy from a hierarchy, a hardware config object or a file path (a ZigZag
    accelerator YAML, or any accelsim hardware file whose kind implies a hierarchy)."""
    if isinstance(hw, MemoryHierarchy):
        return hw
    from .implied import implied_hierarchy
    if isinstance(hw, (str, bytes)) or hasattr(hw, "__fspath__"):
        from ..hardware import zigzag_io
        path = str(hw)
        if path.endswith((".yaml", ".yml")) and zigzag_io.is_zigzag_accelerator(zigzag_io._read_yaml(path)):
            return zigzag_io.load_zigzag_accelerator(path)
        from ..hardware.io import load_hardware
        hw = load_hardware(path)
    if getattr(hw, "kind", None) != "systolic":
        raise ConfigError(f"hardware kind {getattr(hw, 'kind', type(hw).__name__)!r} has no loop-nest memory "
                          "hierarchy to map on; give a systolic config or a ZigZag accelerator YAML",
                          source=getattr(hw, "name", "hardware"), field="kind")
    return implied_hierarchy(hw)


__all__ = ["OBJECTIVES", "objective_key", "RankedMapping", "SearchStats", "SearchResult", "MappingCache",
           "spatial_candidates", "search_layer", "search_layers", "format_mapping_table", "mapping_loops_text",
           "map_layer_report", "hierarchy_key", "tie_winner"]
