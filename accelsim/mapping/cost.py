"""Access-count cost model of a loop-nest mapping on an explicit memory hierarchy (ZigZag-equivalent).

Given a layer (:class:`LayerDims`), a :class:`MemoryHierarchy` and a :class:`Mapping`, count for
every operand (``W``, ``I``, ``O``) at every memory level holding it the accesses in ZigZag's four
directions — ``tl`` reads to the level below, ``fh`` writes from the level above, ``fl`` writes
from below (partial sums / outputs coming up), ``th`` reads to the level above — and price them;
then derive the latency. The model follows ZigZag 3.9.1's cost model term by term (so that the
same mapping gives the same numbers; validated on ZigZag's own ResNet-18/AlexNet runs, see
``docs/mapping.md``). Assumptions, all ZigZag's unless marked *accelsim*:

Data and reuse
- A memory level's tile is the data indexed by all loops (temporal and spatial) below it. Input
  rows/columns of a sliding window are counted exactly (``(P-1)*stride + (R-1)*dilation + 1``,
  unique indices when stride > kernel), clipped to the layer's input extent.
- **Stationarity merge-down**: loops at the bottom of a level that do not index the operand are
  moved to the level below (the lower level keeps its data while they iterate); those at the
  bottom of the innermost level make the datum stay at the MAC's input (read once per stay).
- Sliding-window loops (P,R / Q,S for inputs) are split into a data-growing and a reuse part
  level by level (ZigZag's "pr-loop decoupling"), so their reuse may be fractional.
- Each level is refilled once per iteration of the loops above it that index its operand
  (transfers per period x periods); a spatial loop that does not index the operand is a
  broadcast (inputs) or a spatial reduction (outputs) and moves one datum for all PEs.
- Outputs: while reduction loops (C, R, S) remain above a level, every refill of it writes
  partial sums up at the partial-sum precision (``o_bits``) and reads them back down (the first
  read-back of a fresh output is counted too, as ZigZag does); otherwise final outputs move up
  at ``o_final_bits``. Traffic between the top level and the outside world is not counted.

Energy
- An access moves one port word of ``bandwidth_max_bits``: a transfer of ``b`` bits costs
  ``ceil(b / bw_min) * bw_min / bw_max`` accesses per instance per period; energy = accesses x
  the level's ``read_pj`` / ``write_pj`` (writes from above at ``fh_write_pj`` when a level
  gives one, *accelsim*); MAC energy = MACs x ``mac_energy_pj`` (idle PEs free,
  no leakage, no interconnect energy).
- Uneven mappings (a dimension's loops cover more than its bound): for energy the spatial factor
  (else the outermost temporal factor) of that dimension is taken fractional so the covered
  space equals the bound (ZigZag's "greedy" spatial mapping: K=1000 over 32 temporal steps
  unrolls 31.25); the latency terms other than the temporal cycles use that factor rounded
  down (ZigZag's integer spatial mapping), the temporal cycles the integer loops. Tile sizes,
  active memory instances, per-period fan-out and sliding-window extents derived from a
  fractional factor are exact averages over the folds (*accelsim*; ZigZag rounds them to
  nearest and truncates window sizes, which can count less traffic than the data compulsorily
  moved; ``rounding="zigzag"`` reproduces ZigZag). Capacity checks use the integer loops (the
  largest fold).

Latency
- ``temporal_cycles`` = product of the temporal loops (one MAC per PE per cycle).
- Per memory level, operand and direction: per period, a transfer of ``ceil(bits / bw_max)``
  cycles must fit the allowed window: the whole period when the level being written/read for
  is double-buffered (``auto``: its tile uses <= half the capacity left to it, ZigZag's rule;
  *accelsim*: ``always``/``never`` force it), else the window left after the top irrelevant
  loops of the level. Stall (or slack if negative) = (real - allowed) x (periods - 1).
- Movements sharing one physical port are combined (stalls summed, slack credited against the
  union of their update windows); ports work in parallel, so the layer stall is the largest
  port stall (never negative).
- On-loading (before compute): data moved only once (one period) is loaded before compute, but
  a port's spare bandwidth during compute hides part of it (down to one innermost tile);
  movements of several periods cost their first transfer. Paths of the two inputs over shared
  ports serialise. Off-loading: the last outputs' transfers, level by level, in series.
- Systolic fill/drain: ``sum over systolic array dimensions of (unrolling - 1)`` cycles.
- ``latency = temporal + stall + onload + offload + fill/drain``. Memory access latency
  (the YAML ``latency`` field) is not modelled, only bandwidth.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, gcd, prod

import numpy as np

from ..errors import ConfigError
from ..hardware.hierarchy import MemoryHierarchy
from .ir import DIMS, OPERANDS, LayerDims, Mapping
from .ir import validate as validate_structure

# ZigZag relevancy (accelsim letters): r = indexes the operand, ir = does not, pr = sliding window
_R = {"W": frozenset("GKCRS"), "O": frozenset("NGKPQ"), "I": frozenset("NGC")}
_IR = {"W": frozenset("NPQ"), "O": frozenset("CRS"), "I": frozenset("K")}
_PR_DATA = {"P": "IY", "R": "IY", "Q": "IX", "S": "IX"}  # input rows / columns
_DIRS = ("tl", "fh", "fl", "th")


@dataclass(frozen=True)
class OperandLevelCost:
    """Accesses of one operand at one memory level, in port words per direction, and their energy."""

    operand: str
    level: str
    tl: float  # reads to the level below
    fh: float  # writes from the level above
    fl: float  # writes from the level below (partial sums / outputs going up)
    th: float  # reads to the level above
    energy_pj: float

    @property
    def reads(self) -> float:
        return self.tl + self.th

    @property
    def writes(self) -> float:
        return self.fh + self.fl


@dataclass(frozen=True)
class MappingCost:
    """Cost of one mapping of one layer (energies in pJ, times in cycles)."""

    energy_pj: float
    mac_energy_pj: float
    latency_cycles: float
    ideal_cycles: float
    temporal_cycles: float
    stall_cycles: float
    onload_cycles: float
    offload_cycles: float
    fill_drain_cycles: float
    levels: tuple[OperandLevelCost, ...]

    @property
    def memory_energy_pj(self) -> float:
        return self.energy_pj - self.mac_energy_pj

    @property
    def edp(self) -> float:
        return self.energy_pj * self.latency_cycles

    @property
    def utilization(self) -> float:
        """Ideal cycles (all MACs busy) / latency, <= 1."""
        return self.ideal_cycles / self.latency_cycles if self.latency_cycles else 0.0

    def energy_of(self, operand: str) -> tuple[float, ...]:
        """Energy (pJ) of ``operand`` per memory level, innermost first."""
        return tuple(c.energy_pj for c in self.levels if c.operand == operand)

    def breakdown(self) -> str:
        """Readable table: operand, level, accesses per direction, energy."""
        rows = [f"{'op':2} {'level':12} {'tl':>12} {'fh':>12} {'fl':>12} {'th':>12} {'energy_pj':>14}"]
        for c in self.levels:
            rows.append(f"{c.operand:2} {c.level:12} {c.tl:12.0f} {c.fh:12.0f} {c.fl:12.0f} {c.th:12.0f} {c.energy_pj:14.1f}")
        rows.append(f"MAC energy {self.mac_energy_pj:.1f} pJ, total {self.energy_pj:.1f} pJ; latency {self.latency_cycles:.0f} "
                    f"= temporal {self.temporal_cycles:.0f} + stall {self.stall_cycles:.0f} + onload {self.onload_cycles:.0f}"
                    f" + offload {self.offload_cycles:.0f} + fill/drain {self.fill_drain_cycles:.0f}")
        return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# hierarchy plan (derived once per hierarchy object)
# ---------------------------------------------------------------------------------------------

class _Plan:
    """Lookup tables of a hierarchy the evaluator needs on every call."""

    def __init__(self, h: MemoryHierarchy):
        self.h = h
        self.levels = {op: h.levels(op) for op in OPERANDS}
        self.n = {op: len(self.levels[op]) for op in OPERANDS}
        self.level_of = {op: {mem.name: m for m, mem in enumerate(self.levels[op])} for op in OPERANDS}
        self.bw: dict[tuple[str, int, str], tuple[int, int] | None] = {}
        for op in OPERANDS:
            for m, mem in enumerate(self.levels[op]):
                for d in _DIRS:
                    p = mem.port_of(op, d)
                    self.bw[(op, m, d)] = None if p is None else (p.bandwidth_min_bits, p.bandwidth_max_bits)
        # ports: (bw_max, [(op, level, dir)], shared by both inputs)
        self.ports = []
        for mem in h.memories:
            for port in mem.ports:
                served = [(a.operand, self.level_of[a.operand][mem.name], a.direction) for a in port.allocation]
                shared2 = len({a.operand for a in port.allocation if a.operand in ("W", "I")}) > 1
                self.ports.append((port.bandwidth_max_bits, served, shared2))
        self.shared_mems = [(mem.name, mem.operands) for mem in h.memories if len(mem.operands) > 1]
        self.served = {op: [set(m.served_dimensions) for m in self.levels[op]] for op in OPERANDS}
        self.num_macs = h.array.num_macs
        self.systolic = set(h.array.systolic_dimensions)


_PLANS: dict[int, tuple[MemoryHierarchy, _Plan]] = {}


def _plan(h: MemoryHierarchy) -> _Plan:
    hit = _PLANS.get(id(h))
    if hit is not None and hit[0] is h:
        return hit[1]
    if len(_PLANS) > 256:
        _PLANS.clear()
    p = _Plan(h)
    _PLANS[id(h)] = (h, p)
    return p


# ---------------------------------------------------------------------------------------------
# mapping resolution
# ---------------------------------------------------------------------------------------------

def spatial_slots(hierarchy: MemoryHierarchy, mapping: Mapping, operand: str) -> list[int]:
    """For each spatial unroll of ``mapping`` (in order), the slot index ``j`` where it sits for
    ``operand``: below the ``j``-th memory level holding the operand (the lowest one whose
    ``served_dimensions`` contain the array dimension)."""
    served = _plan(hierarchy).served[operand]
    out = []
    for su in mapping.spatial:
        j = next((i for i, s in enumerate(served) if su.array_dim in s), None)
        if j is None:
            raise ConfigError(f"no memory holding {operand} serves array dimension {su.array_dim}",
                              source=hierarchy.name, field="served_dimensions")
        out.append(j)
    return out


def _effective_sizes(layer: LayerDims, mapping: Mapping) -> tuple[dict[tuple[int, int], float], dict[int, float]]:
    """Fractional loop sizes making each dimension's covered space equal its bound (energy view).

    Returns overrides for spatial loops keyed by (unroll index, loop index) and for temporal
    loops keyed by temporal index."""
    sp_over: dict[tuple[int, int], float] = {}
    tm_over: dict[int, float] = {}
    for d in DIMS:
        bound = layer.size(d)
        total = mapping.spatial_factor(d) * mapping.temporal_factor(d)
        if total <= bound:
            continue
        scale = bound / total
        last_sp = None
        for ui, su in enumerate(mapping.spatial):
            for li, lp in enumerate(su.loops):
                if lp.dim == d and lp.size > 1:
                    last_sp = (ui, li, lp.size)
        if last_sp is not None:
            sp_over[(last_sp[0], last_sp[1])] = last_sp[2] * scale
        else:
            ti = max(i for i, lp in enumerate(mapping.temporal) if lp.dim == d)
            tm_over[ti] = mapping.temporal[ti].size * scale
    return sp_over, tm_over


def _merge_down(levels: list[list[tuple[str, float]]], ir: frozenset[str]) -> tuple[list[list[tuple[str, float]]], float]:
    """ZigZag's stationarity merge-down; returns the new levels and the MAC-level stationary cycles."""
    prev = [list(lv) for lv in levels]
    while True:
        st: list[list[tuple[str, float]]] = [[] for _ in prev]
        mac_st = 1.0
        for lv, loops in enumerate(prev):
            rest = list(loops)
            for lp in loops:
                if lp[0] in ir:
                    if lv == 0:
                        mac_st *= lp[1]
                        st[0].append(lp)
                    else:
                        st[lv - 1].append(lp)
                    rest.remove(lp)
                else:
                    st[lv].extend(rest)
                    break
        if st == prev:
            return st, mac_st
        prev = st


def _window_frac(a: float, b: float, stride: int, dilation: int, clip: int) -> float:
    """``LayerDims._window`` for fractional (average) sizes: linear between whole sizes."""
    g = gcd(stride, dilation)
    n = a * b - max(0.0, b - stride // g) * (a - dilation // g)
    return min(clip, n) if clip else n


class _Geometry:
    """Sliding-window extents (unique input indices, clipped to the layer's input)."""

    def __init__(self, layer: LayerDims, zigzag: bool):
        self.layer = layer
        self.zigzag = zigzag

    def extent(self, data_dim: str, sizes: dict[str, float]) -> float:
        lay = self.layer
        if self.zigzag:  # ZigZag truncates fractional (uneven) sizes
            if data_dim == "IY":
                return lay.rows_for(int(sizes["P"]), int(sizes["R"]))
            return lay.cols_for(int(sizes["Q"]), int(sizes["S"]))
        if data_dim == "IY":
            return _window_frac(sizes["P"], sizes["R"], lay.stride_h, lay.dilation_h, lay.in_h)
        return _window_frac(sizes["Q"], sizes["S"], lay.stride_w, lay.dilation_w, lay.in_w)


def _decouple(levels: list[list[tuple[str, float]]], geo: _Geometry) -> list[list[tuple[str, float]]]:
    """Replace each input sliding-window loop by a data-growing ``*r`` and a reuse ``*ir`` loop."""
    cabl = {"IY": {"P": 1.0, "R": 1.0}, "IX": {"Q": 1.0, "S": 1.0}}
    prev_size = {"IY": 1.0, "IX": 1.0}
    prev_reuse = {"IY": 1.0, "IX": 1.0}
    out: list[list[tuple[str, float]]] = []
    for loops in levels:
        new: list[tuple[str, float]] = []
        for dim, size in loops:
            dd = _PR_DATA.get(dim)
            if dd is None:
                new.append((dim, size))
                continue
            cabl[dd][dim] *= size
            r = geo.extent(dd, cabl[dd])
            ir = prod(cabl[dd].values()) / r
            new.append((dd + "r", r / prev_size[dd]))
            new.append((dd + "ir", ir / prev_reuse[dd]))
            prev_size[dd], prev_reuse[dd] = r, ir
        out.append(new)
    return out


def _r_of(op: str, dim: str) -> bool:
    if op == "I":
        return dim in _R["I"] or dim in ("IYr", "IXr")
    return dim in _R[op]


def _ir_of(op: str, dim: str) -> bool:
    if op == "I":
        return dim in _IR["I"] or dim in ("IYir", "IXir")
    return dim in _IR[op]


@dataclass
class _Move:
    """One operand/level/direction data movement (per instance of the memory)."""

    amount: float = 0.0  # elements per period
    bits: int = 0  # precision
    period: float = 0.0
    count: float = 0.0  # periods in the layer
    req_bw: float = 0.0
    window: float = 0.0  # instantaneous window (not double-buffered)


@dataclass
class _OpView:
    """Everything derived from the mapping for one operand (one variant: energy or latency)."""

    n: int
    data_unrolled: list[float]  # per arch level 0..n (elements in one instance)
    prec: list[int]
    unit_count: list[float]
    unit_unique: list[float]
    top_r: list[float]
    top_ir: list[float]
    cycle_cabl: list[float]
    moves: list[dict[str, _Move]]  # per memory level
    partial: list[bool]  # per arch level: holds partial sums at some time (outputs only)


def _op_view(op: str, layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, slots: list[int],
             sp_sizes: list[list[float]], tm_sizes: list[float], geo: _Geometry, total_cycles: float,
             zigzag: bool) -> _OpView:
    n, su, tm, mac_st = _level_loops(op, hierarchy, mapping, slots, sp_sizes, tm_sizes)
    seed = [[]] + tm + [[]]
    c1 = [seed[a] + su[a] for a in range(n + 1)]
    c2 = [[]] + [seed[a] + su[a - 1] for a in range(1, n + 1)]
    if op == "I":
        c1, c2, su_ref = _decouple(c1, geo), _decouple(c2, geo), _decouple(su, geo)
    else:
        su_ref = su
    r2 = [prod(s for d, s in lv if _r_of(op, d)) for lv in c2]
    ir1 = [prod(s for d, s in lv if _ir_of(op, d)) for lv in c1]
    if zigzag:  # ZigZag rounds fractional (uneven) tile sizes, instance counts and fan-outs to nearest
        data_unrolled = [float(round(round(prod(r2[: a + 1])))) for a in range(n + 1)]
    else:  # accelsim: exact averages over the folds of an uneven unrolling
        data_unrolled = [round(prod(r2[: a + 1]), 9) for a in range(n + 1)]
    sp_r = [prod(s for d, s in lv if _r_of(op, d)) for lv in su_ref]
    sp_tot = [prod(s for d, s in lv) for lv in su_ref]
    unit_unique = [prod(sp_r[a:]) for a in range(n + 1)]
    if zigzag:
        unit_count = [float(round(round(prod(sp_tot[a:]), 3))) for a in range(n + 1)]
        boost = [float(round(unit_unique[a] / unit_unique[a + 1])) for a in range(n)] + [1.0]
    else:
        unit_count = [round(prod(sp_tot[a:]), 9) for a in range(n + 1)]
        boost = [round(unit_unique[a] / unit_unique[a + 1], 9) for a in range(n)] + [1.0]
    # output precision per arch level
    if op == "O":
        flag = [any(_ir_of("O", d) and s > 1 for d, s in lv) for lv in c1]
        psum = [any(flag[a + 1:]) for a in range(n + 1)]
        prec = [layer.o_bits if psum[a] else layer.o_final_bits for a in range(n + 1)]
        partial = [any(flag[a:]) for a in range(n + 1)]
        caal = [prod(ir1[a:]) for a in range(n + 1)] + [1.0, 1.0]
    else:
        prec = [layer.bits(op)] * (n + 1)
        partial = [False] * (n + 1)
    # cycles
    per_level = [prod(s for _, s in lv) for lv in tm]
    cycle_cabl = [prod(per_level[: m + 1]) for m in range(n)]
    cycle_each = ([mac_st] if op != "O" else [1.0]) + cycle_cabl
    top_r = [1.0] * (n + 1)
    top_ir = [1.0] * (n + 1)
    for m, loops in enumerate(tm):
        for d, s in reversed(loops):
            if d in _R[op]:
                top_r[m + 1] *= s
            else:
                break
        for d, s in reversed(loops):
            if d in _IR[op]:
                top_ir[m + 1] *= s
            else:
                break
    low_raw = [data_unrolled[a] * prec[a] / cycle_each[a] for a in range(n + 1)]
    high_raw = [low_raw[a] * boost[a] for a in range(n + 1)]
    moves: list[dict[str, _Move]] = []
    for m in range(n):
        mv = {d: _Move() for d in _DIRS}
        pd_lo, pd_hi = cycle_each[m], cycle_each[m + 1]
        lo = _Move(data_unrolled[m] * boost[m], 0, pd_lo, total_cycles // pd_lo, high_raw[m])
        hi = _Move(data_unrolled[m + 1], 0, pd_hi, total_cycles // pd_hi, low_raw[m + 1])
        if op != "O":
            lo.bits = hi.bits = layer.bits(op)
            mv["tl"], mv["fh"] = lo, hi
        else:
            if zigzag:
                lo.amount = float(int(lo.amount))
            partial_low = caal[m + 1] - 1 != 0
            partial_high = caal[m + 2] - 1 != 0
            fl = _Move(lo.amount, layer.o_bits if partial_low else layer.o_final_bits, lo.period, lo.count, lo.req_bw)
            th = _Move(hi.amount, layer.o_bits if partial_high else layer.o_final_bits, hi.period, hi.count, hi.req_bw)
            mv["fl"], mv["th"] = fl, th
            if psum[m]:
                mv["tl"] = _Move(fl.amount, layer.o_bits if partial_low else 0, fl.period, fl.count, fl.req_bw)
            if psum[m + 1]:
                mv["fh"] = _Move(th.amount, layer.o_bits if partial_high else 0, th.period, th.count, th.req_bw)
        for d in _DIRS:
            scale = top_ir[m] if d in ("tl", "fl") else top_ir[m + 1]
            mv[d].req_bw = float(int(mv[d].req_bw))
            mv[d].window = float(int(mv[d].period / scale)) if mv[d].period else 0.0
            mv[d].period = float(int(mv[d].period))
            mv[d].count = float(int(mv[d].count))
        if m == n - 1:
            mv["th"] = _Move()
            mv["fh"] = _Move()
        moves.append(mv)
    return _OpView(n, data_unrolled, prec, unit_count, unit_unique, top_r, top_ir, cycle_cabl, moves, partial)


def _level_loops(op: str, hierarchy: MemoryHierarchy, mapping: Mapping, slots: list[int],
                 sp_sizes: list[list[float]], tm_sizes: list[float]
                 ) -> tuple[int, list[list[tuple[str, float]]], list[list[tuple[str, float]]], float]:
    """``op``'s memory levels ``n``, its spatial loops per slot (0..n), its temporal loops per
    memory level after the stationarity merge-down and the MAC-level stationary cycles."""
    n = _plan(hierarchy).n[op]
    su: list[list[tuple[str, float]]] = [[] for _ in range(n + 1)]
    for ui, su_def in enumerate(mapping.spatial):
        for li, lp in enumerate(su_def.loops):
            su[slots[ui]].append((lp.dim, sp_sizes[ui][li]))
    tm: list[list[tuple[str, float]]] = []
    i = 0
    for c in mapping.counts(op):
        tm.append([(mapping.temporal[k].dim, tm_sizes[k]) for k in range(i, i + c)])
        i += c
    tm, mac_st = _merge_down(tm, _IR[op])
    return n, su, tm, mac_st


def _view_sizes(layer: LayerDims, mapping: Mapping, view: str) -> tuple[list[list[float]], list[float], float]:
    """The loop sizes of ``view`` (:func:`_views`): spatial per unroll, temporal, and the temporal cycles."""
    sp_sizes = [[float(lp.size) for lp in su.loops] for su in mapping.spatial]
    tm_sizes = [float(lp.size) for lp in mapping.temporal]
    if view != "padded":
        sp_over, tm_over = _effective_sizes(layer, mapping)
        for (ui, li), v in sp_over.items():
            sp_sizes[ui][li] = v if view == "energy" else float(max(1, int(v)))
        if view == "energy":
            for ti, v in tm_over.items():
                tm_sizes[ti] = v
    return sp_sizes, tm_sizes, float(prod(lp.size for lp in mapping.temporal))


def _views(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, view: str,
           zigzag: bool = False) -> dict[str, _OpView]:
    """Per-operand views; ``view``: ``energy`` (fractional uneven factors), ``latency`` (rounded
    down, ZigZag's integer spatial mapping) or ``padded`` (the mapping's own integer loops)."""
    sp_sizes, tm_sizes, total = _view_sizes(layer, mapping, view)
    geo = _Geometry(layer, zigzag)
    return {op: _op_view(op, layer, hierarchy, mapping, spatial_slots(hierarchy, mapping, op), sp_sizes, tm_sizes,
                         geo, total, zigzag) for op in OPERANDS}


def top_moves(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping) -> dict[str, tuple[dict[str, _Move], float]]:
    """Per operand: the ``energy`` view's (:func:`_views`, not ZigZag's rounding) movements at the
    operand's top memory level -- ``amount``, ``bits`` and ``count`` of ``tl`` and ``fl`` (the
    others zero; ``period``, ``req_bw`` and ``window`` not set) -- and the instance count of the
    level above it (``unit_count[n]``). The same float operations as :func:`_op_view` on the
    levels these read only (:func:`~accelsim.mapping.lowering.dram_traffic`'s; a test compares
    the two): the top level's data below it (``data_unrolled[n-1]``), fan-out (``boost[n-1]``),
    period (``cycle_each[n-1]``) and, for outputs, whether they are partial above and below it."""
    sp_sizes, tm_sizes, total = _view_sizes(layer, mapping, "energy")
    geo = _Geometry(layer, False)
    return {op: _top_move(op, layer, hierarchy, mapping, spatial_slots(hierarchy, mapping, op), sp_sizes, tm_sizes,
                          geo, total) for op in OPERANDS}


def _top_move(op: str, layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, slots: list[int],
              sp_sizes: list[list[float]], tm_sizes: list[float], geo: _Geometry,
              total_cycles: float) -> tuple[dict[str, _Move], float]:
    n, su, tm, mac_st = _level_loops(op, hierarchy, mapping, slots, sp_sizes, tm_sizes)
    m = n - 1
    c2 = [[]] + [tm[a - 1] + su[a - 1] for a in range(1, n)]  # _op_view's c2[0..n-1]
    su_ref = su
    if op == "I":
        c2, su_ref = _decouple(c2, geo), _decouple(su, geo)
    r2 = [prod(s for d, s in lv if _r_of(op, d)) for lv in c2]
    sp_r = [prod(s for d, s in lv if _r_of(op, d)) for lv in su_ref]
    amount = round(prod(r2), 9) * round(prod(sp_r[m:]) / prod(sp_r[n:]), 9)
    unit_count = round(prod(prod(s for d, s in lv) for lv in su_ref[n:]), 9)
    per_level = [prod(s for _, s in lv) for lv in tm]
    period = prod(per_level[:m]) if m > 0 else mac_st if op != "O" else 1.0
    count = float(int(total_cycles // period))
    mv = {d: _Move() for d in _DIRS}
    if op != "O":
        mv["tl"] = _Move(amount, layer.bits(op), count=count)
        return mv, unit_count
    top = tm[m] + su[n]  # _op_view's c1[n]
    psum = any(_ir_of("O", d) and s > 1 for d, s in top)
    partial = prod(s for d, s in top if _ir_of("O", d)) - 1 != 0
    mv["fl"] = _Move(amount, layer.o_bits if partial else layer.o_final_bits, count=count)
    if psum:
        mv["tl"] = _Move(amount, layer.o_bits if partial else 0, count=count)
    return mv, unit_count


# ---------------------------------------------------------------------------------------------
# energy
# ---------------------------------------------------------------------------------------------

def _energy(layer: LayerDims, hierarchy: MemoryHierarchy, views: dict[str, _OpView]) -> tuple[OperandLevelCost, ...]:
    out = []
    plan = _plan(hierarchy)
    for op in OPERANDS:
        v = views[op]
        for m, mem in enumerate(plan.levels[op]):
            acc = {}
            for d in _DIRS:
                mv = v.moves[m][d]
                if mv.amount == 0 or mv.bits == 0:
                    acc[d] = 0.0
                    continue
                bw = plan.bw[(op, m, d)]
                if bw is None:
                    raise ConfigError(f"memory {mem.name} has no port for operand {op} direction {d}",
                                      source=hierarchy.name, field=f"{mem.name}.ports")
                bmin, bmax = bw
                acc[d] = float(int(ceil(mv.amount * mv.bits / bmin) * (bmin / bmax) * mv.count * v.unit_count[m + 1]))
            e = (acc["tl"] + acc["th"]) * mem.read_pj + acc["fh"] * mem.fh_pj + acc["fl"] * mem.write_pj
            out.append(OperandLevelCost(op, mem.name, acc["tl"], acc["fh"], acc["fl"], acc["th"], e))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# latency
# ---------------------------------------------------------------------------------------------

def _double_buffered(layer: LayerDims, hierarchy: MemoryHierarchy, views: dict[str, _OpView]) -> dict[str, list[bool]]:
    plan = _plan(hierarchy)
    indiv: dict[str, list[float]] = {}
    for op in ("O", "W", "I"):
        v = views[op]
        indiv[op] = []
        for m, mem in enumerate(plan.levels[op]):
            eff = (v.data_unrolled[m + 1] * v.prec[m + 1]) // v.top_r[m + 1]
            indiv[op].append(eff / mem.size_bits)
    level_of = plan.level_of
    shared = {op: list(vals) for op, vals in indiv.items()}
    for name, ops in plan.shared_mems:
        s = sum(indiv[o][level_of[o][name]] for o in ops)
        for o in ops:
            shared[o][level_of[o][name]] = s
    db: dict[str, list[bool]] = {}
    for op in ("O", "W", "I"):
        db[op] = [False]
        for m, mem in enumerate(plan.levels[op]):
            if mem.double_buffering == "always":
                db[op].append(True)
            elif mem.double_buffering == "never":
                db[op].append(False)
            elif shared[op][m] <= 0.5:
                db[op].append(True)
            elif indiv[op][m] <= 1 - shared[op][m]:
                db[op].append(True)
                if len(mem.operands) > 1:
                    for o in mem.operands:
                        shared[o][level_of[o][mem.name]] += indiv[op][m]
            else:
                db[op].append(False)
    return db


def _union(acts: list[tuple[float, float, float, float]]) -> float:
    """Union length of periodic update windows [k*P, k*P + A) over the layer; acts: (real, allowed, P, PC)."""
    for _, allowed, period, count in acts:
        if period == allowed:
            return period * count
    max_p = int(max(a[2] for a in acts))
    pc_of_max = next(a[3] for a in acts if int(a[2]) == max_p)
    used = np.zeros(max_p, dtype=bool)
    for _, allowed, period, _ in acts:
        p, a = int(period), int(allowed)
        if p <= 0:
            continue
        used.reshape(-1, p)[:, :a] = True
    return float(used.sum()) * pc_of_max


def _reduce_ordered(c: list[float], mins: list[float], s: float) -> tuple[list[float], list[float]]:
    if s <= 0 or not c:
        return list(c), [0.0] * len(c)
    idx = sorted(range(len(c)), key=lambda i: c[i], reverse=True)
    res, red = list(c), [0.0] * len(c)
    for i in idx:
        if s <= 0:
            break
        r = min(max(0.0, res[i] - mins[i]), s)
        res[i] -= r
        red[i] += r
        s -= r
    return res, red


def _latency(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, views: dict[str, _OpView]
             ) -> tuple[float, float, float, float]:
    """(stall, onload, offload, fill_drain) cycles."""
    db = _double_buffered(layer, hierarchy, views)
    plan = _plan(hierarchy)
    total = float(prod(lp.size for lp in mapping.temporal))
    real: dict[tuple[str, int, str], float] = {}
    allowed: dict[tuple[str, int, str], float] = {}
    for op in OPERANDS:
        v = views[op]
        for m in range(plan.n[op]):
            for d in _DIRS:
                mv = v.moves[m][d]
                bw = plan.bw[(op, m, d)]
                real[(op, m, d)] = float(ceil(mv.amount * mv.bits / bw[1])) if bw else 0.0
                use_db = db[op][m] if d in ("tl", "fl") else db[op][m + 1]
                allowed[(op, m, d)] = float(ceil(mv.period if use_db else mv.window))
    # stalls per physical port
    stalls = [0.0]
    for _, served, _ in plan.ports:
        acts = []
        for op, m, d in served:
            mv = views[op].moves[m][d]
            if mv.count == 0:
                continue
            acts.append((real[(op, m, d)], allowed[(op, m, d)], float(ceil(mv.period)), mv.count))
        if len(acts) == 1:
            r, al, _, pc = acts[0]
            stalls.append((r - al) * (pc - 1))
        elif acts:
            union = _union(acts)
            pos = sum((r - al) * (pc - 1) for r, al, _, pc in acts if (r - al) * (pc - 1) > 0)
            neg = sum((r - al) * (pc - 1) for r, al, _, pc in acts if (r - al) * (pc - 1) <= 0)
            muw = sum(al * (pc - 1) for _, al, _, pc in acts)
            stalls.append(pos + max(0.0, neg + muw - union))
    stall = max(stalls)
    # on-/off-loading per port
    load_cc: dict[tuple[str, int, str], tuple[float, bool]] = {}
    for bw_max, served, shared2 in plan.ports:
        c1, cg = [], []
        for op, m, d in served:
            if op == "O" and d in ("tl", "fh"):
                continue
            mv = views[op].moves[m][d]
            if mv.count == 0:
                continue
            (c1 if mv.count == 1 else cg).append((op, m, d))
        if c1:
            req = sum(ceil(views[op].moves[m][d].req_bw) for op, m, d in cg)
            mins = [ceil(views[op].data_unrolled[1] * views[op].prec[1] / bw_max) for op, _, _ in c1]
            tots = [real[k] for k in c1]
            surplus = max(0.0, (bw_max - req) / bw_max * (total + stall))
            rem, _ = _reduce_ordered(tots, mins, surplus)
            for k, r in zip(c1, rem):
                load_cc[k] = (r, shared2)
        for k in cg:
            load_cc[k] = (real[k], shared2)
    parts = {op: {"ind": 0.0, "half": 0.0, "shared": 0.0} for op in ("W", "I")}
    for op in ("W", "I"):
        for m in range(plan.n[op] - 1):
            e1 = load_cc.get((op, m, "fh"), (0.0, False))
            e2 = load_cc.get((op, m + 1, "tl"), (0.0, False))
            longest = max(e1[0], e2[0])
            if e1[1] and e2[1]:
                parts[op]["shared"] += longest
            elif not e1[1] and not e2[1]:
                parts[op]["ind"] += longest
            else:
                parts[op]["half"] = longest
    w, i = parts["W"], parts["I"]
    onload = min(w["shared"] + max(i["shared"] + i["half"] + i["ind"], w["half"] + w["ind"]),
                 i["shared"] + max(w["shared"] + w["half"] + w["ind"], i["half"] + i["ind"]))
    offload = 0.0
    for m in range(plan.n["O"] - 1):
        offload += max(load_cc.get(("O", m, "th"), (0.0, False))[0], load_cc.get(("O", m + 1, "fl"), (0.0, False))[0])
    # systolic fill/drain over the (energy-view) unrolling of each systolic dimension
    sp_over, _ = _effective_sizes(layer, mapping)
    drain = 0.0
    for ui, su in enumerate(mapping.spatial):
        if su.array_dim in plan.systolic and su.loops:
            util = prod(sp_over.get((ui, li), lp.size) for li, lp in enumerate(su.loops))
            drain += max(ceil(round(util, 6)) - 1, 0)
    return stall, onload, offload, drain


def evaluate(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, *, check: bool = True,
             rounding: str = "accelsim") -> MappingCost:
    """Energy and latency of ``mapping`` for ``layer`` on ``hierarchy`` (``check``: validate first).

    See the module docstring for every assumption. ``rounding`` only matters for uneven
    (fractional) unrollings: ``accelsim`` (default) takes exact averages over the folds,
    ``zigzag`` reproduces ZigZag 3.9.1's rounding (to nearest; sliding-window sizes truncated),
    for like-for-like comparisons with ZigZag. Raises ConfigError for a mapping that does not
    cover the layer, exceeds the array or a memory's capacity (when ``check``), or moves an
    operand through a memory without a port for that direction.
    """
    if rounding not in ("accelsim", "zigzag"):
        raise ConfigError(f"rounding must be 'accelsim' or 'zigzag', got {rounding!r}", source="evaluate")
    zz = rounding == "zigzag"
    if check:
        validate(layer, mapping, hierarchy)
    energy_views = _views(layer, hierarchy, mapping, "energy", zz)
    levels = _energy(layer, hierarchy, energy_views)
    uneven = any(mapping.spatial_factor(d) * mapping.temporal_factor(d) != layer.size(d) for d in DIMS)
    lat_views = _views(layer, hierarchy, mapping, "latency", zz) if uneven else energy_views
    stall, onload, offload, drain = _latency(layer, hierarchy, mapping, lat_views)
    mac_e = layer.macs * hierarchy.array.mac_energy_pj
    temporal = float(mapping.temporal_cycles)
    ideal = float(ceil(layer.macs / _plan(hierarchy).num_macs))
    latency = temporal + stall + onload + offload + drain
    return MappingCost(
        energy_pj=mac_e + sum(c.energy_pj for c in levels), mac_energy_pj=mac_e, latency_cycles=latency,
        ideal_cycles=ideal, temporal_cycles=temporal, stall_cycles=stall, onload_cycles=onload,
        offload_cycles=offload, fill_drain_cycles=drain, levels=levels)


def level_tile_bits(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping, operand: str) -> list[int]:
    """Bits of ``operand`` held by one instance of each of its memory levels (innermost first).

    The tile of a level is the data indexed by the temporal loops kept at or below it and the
    spatial loops below it (those of array dimensions it serves); each dimension's extent is
    capped at the layer bound (the largest fold of an uneven unrolling, never phantom data).
    Outputs count at partial-sum precision where a reduction loop runs at or above the level.
    *accelsim*: ZigZag sizes outputs at partial-sum precision only when a reduction loop runs
    strictly above the level (a 16-bit accumulator holding a running sum counts as 8 bits).
    """
    slots = spatial_slots(hierarchy, mapping, operand)
    counts = mapping.counts(operand)
    n = len(counts)
    out = []
    start = 0
    for m in range(n):
        stop = start + counts[m]
        sizes = {d: 1 for d in DIMS}
        for lp in mapping.temporal[:stop]:
            sizes[lp.dim] *= lp.size
        for su, j in zip(mapping.spatial, slots):
            if j <= m:
                for lp in su.loops:
                    sizes[lp.dim] *= lp.size
        sizes = {d: min(v, layer.size(d)) for d, v in sizes.items()}
        elems = layer.operand_elems(operand, sizes)
        if operand == "O":
            above = any(lp.size > 1 and lp.dim in "CRS" for lp in mapping.temporal[start:]) or any(
                lp.size > 1 and lp.dim in "CRS" for su, j in zip(mapping.spatial, slots) if j > m for lp in su.loops)
            bits = layer.o_bits if above else layer.o_final_bits
        else:
            bits = layer.bits(operand)
        out.append(int(elems * bits))
        start = stop
    return out



def validate(layer: LayerDims, mapping: Mapping, hierarchy: MemoryHierarchy | None = None, *,
             source: str = "mapping") -> None:
    """Raise ConfigError unless ``mapping`` covers ``layer`` and fits ``hierarchy`` (when given):
    :func:`accelsim.mapping.ir.validate`, then each level's tile (the data of all loops at and
    below it, spatial unrolling below it included) within its capacity (shared levels: the sum
    over their operands, at partial-sum precision for ``O`` below its top level; twice that for
    ``double_buffering: always``)."""
    validate_structure(layer, mapping, hierarchy, source=source)
    if hierarchy is None:
        return
    used: dict[str, int] = {}
    for op in OPERANDS:
        for mem, bits in zip(hierarchy.levels(op), level_tile_bits(layer, hierarchy, mapping, op)):
            used[mem.name] = used.get(mem.name, 0) + bits
    for mem in hierarchy.memories:
        need = used.get(mem.name, 0) * (2 if mem.double_buffering == "always" else 1)
        if need > mem.size_bits:
            raise ConfigError(f"tile of {used[mem.name]} bits does not fit memory {mem.name} ({mem.size_bits} bits"
                              f"{', double-buffered' if mem.double_buffering == 'always' else ''})",
                              source=source, field=mem.name)

__all__ = ["OperandLevelCost", "MappingCost", "evaluate", "level_tile_bits", "spatial_slots", "top_moves", "validate"]
