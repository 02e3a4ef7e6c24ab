"""Lowering of a searched loop-nest mapping into a :class:`~accelsim.stats.LayerProgram`.

One job: (layer, hierarchy, :class:`~accelsim.mapping.ir.Mapping`, its
:class:`~accelsim.mapping.cost.MappingCost`) -> the actions the energy model prices and the tile
stream the SimPy pipeline times. Used by the systolic engine for ``mapping: search``.

**Actions** (one per memory level, operand and read/write, straight from the cost model's access
counts, so pricing them in ``energy.py`` gives the cost model's energy):

- a level's accesses are the cost model's port-word counts (``tl + th`` reads, ``fh + fl``
  writes); each action moves one port word of the level's ``bandwidth_max_bits`` (an SRAM access
  is one word per array-edge PE; a register access one register word, the accumulator at
  ``accumulator_bits``; a DRAM access one DRAM-channel word), so ``count x bits x pJ/bit`` equals
  ``accesses x read_pj`` of the implied hierarchy (:mod:`accelsim.mapping.implied`); a
  register direction the hierarchy prices at 0 pJ (a moving operand's read, the OS
  accumulator) is wiring in the fold model's rule and gets no action;
- component names are the ones ``energy.py`` prices for a systolic array: register levels
  (``reg_*``) -> ``pe_rf``, SRAMs and ``dram`` by their own name, ``mac`` for the MACs (the
  layer's MACs at its weight/activation widths and number format; the hierarchy's
  ``mac_energy_pj`` must be the same price, :func:`layer_hierarchy` makes it so);
- partial sums move at the precision the cost model gives them (``o_bits`` = the array's
  ``accumulator_bits``); final outputs at ``o_final_bits`` (the layer's activation width).

**DRAM traffic and tiles.** DRAM bits per operand = the cost model's DRAM-level movements
in bits (each transfer rounded up to the DRAM port's access granularity; the energy actions use
the cost model's access counts, which round the total down to whole DRAM words, so DRAM energy
may lag the bits by less than one DRAM word per operand) (reads: weights, inputs, partial-sum read-backs; writes: outputs, split into final outputs
at ``o_final_bits`` (at most the compulsory output bits) and the rest as partial-sum spills).
The tile stream comes from the mapping's outer temporal loops: for each operand, the level
below DRAM is refilled whenever a DRAM-level loop that indexes the operand steps (irrelevant
loops at the bottom of its DRAM level are merged down: the data stays below while they iterate,
ZigZag's rule); outputs are written back when an output tile is complete (a relevant loop of O
is about to step) and read back where the output refills. The *outer loops* are the temporal
loops from the lowest such refill loop upward; every iteration of them is one
:class:`~accelsim.stats.Tile` whose ``compute_cycles`` are the product of the loops below
(one MAC per PE per cycle); tile ``i`` loads operand X iff its index digits below X's refill
loop are all zero, stores outputs iff they are all at their maximum. Assumptions:

- each refill of an operand moves an equal share of its DRAM bits (``floor(total / refills)``,
  the remainder with the first refill; stores: with the last), so sliding-window halos and
  partial folds are averaged over the refills;
- within a DRAM tile, loads, compute and stores stream in equal chunks of at least
  ``CHUNK_CYCLES`` DRAM-channel cycles (:func:`stream_chunks`): the SRAM is filled in the order
  its loops consume it, so compute starts after the first chunk (the cost model's on-loading
  rule, "down to one innermost tile", at a granularity where per-transfer rounding is < 2%);
- the array's fill/drain (the cost model's ``fill_drain_cycles``, once per layer) is added to
  the last tile's compute, so the program's compute cycles are ``temporal_cycles +
  fill_drain_cycles``;
- the pipeline's double-buffered DRAM model times the DRAM transfers (it replaces the cost
  model's DRAM-port stall and on/off-loading terms); stalls of on-chip ports (SRAM <-> PE
  registers), which the pipeline does not model, are kept in ``extra['mapping_onchip_stall_bound']``
  as the cost model's total stall (an upper bound of the on-chip part); the mapping search
  minimises them, and for the implied systolic hierarchies they are normally zero.

Totals are exact: sum of tile loads/stores = the program's DRAM read/write bits; sum of tile
compute cycles = temporal + fill/drain cycles; MACs = the layer's MACs.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, prod

from .._idmemo import identity_memo
from ..hardware.hierarchy import MemoryHierarchy, MemoryLevel
from ..stats import Action, LayerProgram, Node, Repeat, Tile
from .cost import MappingCost, top_moves
from .ir import OPERANDS, LayerDims, Mapping, is_relevant

#: memory level name -> the component ``energy.py`` prices it as (others keep their own name)
COMPONENT_OF_LEVEL = {"reg_w": "pe_rf", "reg_i": "pe_rf", "reg_o": "pe_rf"}
_DRAM_READ_KEY = {"W": "filter", "I": "ifmap", "O": "psum"}


def port_word_bits(level: MemoryLevel, operand: str, direction: str) -> int:
    """``bandwidth_max_bits`` of the port of ``level`` moving ``operand`` in ``direction``."""
    for port in level.ports:
        if any(a.operand == operand and a.direction == direction for a in port.allocation):
            return int(port.bandwidth_max_bits)
    return int(max(p.bandwidth_max_bits for p in level.ports))


@dataclass(frozen=True)
class TrafficSummary:
    """DRAM bits of a mapped layer (reads per operand key, writes per ``ofmap``/``psum``)."""

    read_bits: dict[str, int]
    write_bits: dict[str, int]


def mapping_actions(layer: LayerDims, hierarchy: MemoryHierarchy, cost: MappingCost, *, mac: Action) -> list[Action]:
    """The actions whose prices sum to ``cost.energy_pj`` (``mac`` carries the layer's MAC count/format);
    actions equal but for their count are summed (first-seen order)."""
    plan = _action_plan(hierarchy)
    acc = {_action_key(mac): mac.count}
    for lc in cost.levels:
        for d, key in plan[(lc.level, lc.operand)]:
            n = getattr(lc, d)
            if n:
                acc[key] = acc.get(key, 0) + int(round(n))
    return [Action(c, k, n, b, ab, s) for (c, k, b, ab, s), n in acc.items()]


def _action_key(a: Action) -> tuple[str, str, int, int, str]:
    """``a`` but for its count."""
    return a.component, a.action, a.bits, a.act_bits, a.scheme


#: directions in :func:`mapping_actions`' order (reads, then writes) and their action kinds
_ACTION_DIRS = (("tl", "read"), ("th", "read"), ("fh", "write"), ("fl", "write"))


@identity_memo(maxsize=256)
def _action_plan(hierarchy: MemoryHierarchy) -> dict[tuple[str, str], tuple[tuple[str, tuple[str, str, int, int, str]], ...]]:
    """Per (level name, operand): the priced directions of :func:`mapping_actions`, each with its
    action's :func:`_action_key` (component, kind, port word bits, default width and format); reads
    the hierarchy's names, prices and ports only (a frozen model: memoised by identity)."""
    plan = {}
    for mem in hierarchy.memories:
        comp = COMPONENT_OF_LEVEL.get(mem.name, mem.name)
        for op in OPERANDS:
            dirs = []
            for d, kind in _ACTION_DIRS:
                price = mem.read_pj if kind == "read" else mem.fh_pj if d == "fh" else mem.write_pj
                if mem.name in COMPONENT_OF_LEVEL and price == 0:
                    continue  # an unpriced register direction is wiring (implied.py), not an access
                dirs.append((d, _action_key(Action(comp, kind, 0, port_word_bits(mem, op, d)))))
            plan[(mem.name, op)] = tuple(dirs)
    return plan


@identity_memo(maxsize=1024)
def _traffic_shape(hierarchy: MemoryHierarchy) -> tuple:
    """All :func:`dram_traffic` reads of ``hierarchy``: each operand's levels (name, served array
    dimensions: the cost model's views depend on the hierarchy through them only) and the top
    level's name and ports (access granularity, allocation) -- not bandwidths or prices."""
    top = hierarchy.memories[-1]
    return (tuple(tuple((m.name, frozenset(m.served_dimensions)) for m in hierarchy.levels(op)) for op in OPERANDS),
            top.name, tuple((p.bandwidth_min_bits, tuple((a.operand, a.direction) for a in p.allocation))
                            for p in top.ports))


#: :func:`dram_traffic` results keyed by (layer, mapping, :func:`_traffic_shape`): sweep points that
#: differ in DRAM bandwidth or prices and map a layer alike share one computation (FIFO eviction)
_TRAFFIC: dict[tuple, TrafficSummary] = {}
_TRAFFIC_MAX = 4096


def dram_traffic(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping) -> TrafficSummary:
    """DRAM bits per operand of ``mapping``: the cost model's top-level movements in bits, before
    they are rounded down to whole DRAM words for energy (ZigZag's ``int`` of the access count,
    which can count less than the compulsory data); module docstring for the split. Memoised
    (:data:`_TRAFFIC`); each call returns fresh dicts."""
    key = (layer, mapping, _traffic_shape(hierarchy))
    try:
        hit = _TRAFFIC.get(key)
    except TypeError:  # an unhashable field: no memo
        return _dram_traffic(layer, hierarchy, mapping)
    if hit is None:
        hit = _dram_traffic(layer, hierarchy, mapping)
        if len(_TRAFFIC) >= _TRAFFIC_MAX:
            del _TRAFFIC[next(iter(_TRAFFIC))]
        _TRAFFIC[key] = hit
    return TrafficSummary(dict(hit.read_bits), dict(hit.write_bits))


def _dram_traffic(layer: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping) -> TrafficSummary:
    moves = top_moves(layer, hierarchy, mapping)
    top = hierarchy.memories[-1]
    reads = {"ifmap": 0, "filter": 0, "psum": 0}
    written = 0
    for op in OPERANDS:
        if hierarchy.levels(op)[-1].name != top.name:
            continue
        mvs, units = moves[op]

        def raw(d: str) -> int:
            mv = mvs[d]
            if mv.amount == 0 or mv.bits == 0:
                return 0
            bmin = next(p.bandwidth_min_bits for p in top.ports
                        if any(a.operand == op and a.direction == d for a in p.allocation))
            bits = ceil(mv.amount * mv.bits / bmin) * bmin * mv.count * units
            return int(ceil(bits - 1e-6))

        reads[_DRAM_READ_KEY[op]] += raw("tl")
        if op == "O":
            written += raw("fl")
    final = min(written, layer.operand_elems("O") * layer.o_final_bits)
    return TrafficSummary(reads, {"ofmap": final, "psum": written - final})


def _refill_index(mapping: Mapping, operand: str) -> int:
    """Index (in ``mapping.temporal``) of the lowest DRAM-level loop whose step refills the level
    below for ``operand`` (``len(temporal)``: the operand is loaded once)."""
    n = len(mapping.temporal)
    start = n - len(mapping.levels(operand)[-1])
    for j in range(start, n):
        lp = mapping.temporal[j]
        if lp.size > 1 and is_relevant(operand, lp.dim):
            return j
    return n


def tile_stream(mapping: Mapping, traffic: TrafficSummary, fill_drain_cycles: int,
                dram_bits_per_cycle: float) -> tuple[Node, ...]:
    """The tile program of a mapped layer (module docstring): one tile per outer-loop iteration,
    nested ``Repeat`` s, totals equal to ``traffic`` and the temporal + fill/drain cycles."""
    temporal = mapping.temporal
    f = {op: _refill_index(mapping, op) for op in OPERANDS}
    base = min(f.values())
    outer = [lp.size for lp in temporal[base:]]
    m = len(outer)
    cc = prod(lp.size for lp in temporal[:base])
    rel = {op: f[op] - base for op in OPERANDS}  # tile loads op iff z_start >= rel[op]

    def events(op: str) -> int:
        return prod(outer[rel[op]:]) if rel[op] < m else 1

    loads = {"W": traffic.read_bits["filter"], "I": traffic.read_bits["ifmap"], "O": traffic.read_bits["psum"]}
    store_total = sum(traffic.write_bits.values())
    share = {op: loads[op] // events(op) for op in OPERANDS}
    first_extra = sum(loads[op] - share[op] * events(op) for op in OPERANDS)
    st_share = store_total // events("O")
    last_extra = store_total - st_share * events("O")

    def tile(s: int, e: int) -> tuple[Node, ...]:
        lb = sum(share[op] for op in OPERANDS if s >= rel[op])
        sb = st_share if e >= rel["O"] else 0
        c = cc
        if s == m:
            lb += first_extra
        if e == m:
            sb += last_extra
            c += fill_drain_cycles
        return stream_chunks(Tile(lb, c, sb), dram_bits_per_cycle)

    below_m = [r for r in rel.values() if r < m]
    cap = max(below_m) if below_m else 0
    memo: dict[tuple[int, int, int], tuple[Node, ...]] = {}

    def norm(j: int, v: int) -> int:  # start/end levels above every threshold (< m) look alike
        return v if v >= m else min(v, max(cap, j))

    def gen(j: int, s: int, e: int) -> tuple[Node, ...]:
        key = (j, norm(j, s), norm(j, e))
        hit = memo.get(key)
        if hit is not None:
            return hit
        if j == 0:
            out: tuple[Node, ...] = tile(s, e)
        else:
            size = outer[j - 1]
            if size == 1:
                out = gen(j - 1, s, e)
            else:
                first = gen(j - 1, s, j - 1)
                last = gen(j - 1, j - 1, e)
                mid: tuple[Node, ...] = ()
                if size > 2:
                    body = gen(j - 1, j - 1, j - 1)
                    mid = (Repeat(body, size - 2),) if not (len(body) == 1 and size - 2 == 1) else body
                out = _join(first + mid + last)
        memo[key] = out
        return out

    return gen(m, m, m)


#: a DRAM tile streams its loads/stores in chunks of at least this many DRAM-channel cycles
CHUNK_CYCLES = 64


def stream_chunks(tile: Tile, bits_per_cycle: float) -> tuple[Node, ...]:
    """``tile`` as ``q`` streamed sub-tiles (loads, compute and stores in equal shares, remainders
    of loads/compute with the first, of stores with the last), ``q`` = the chunks of
    ``CHUNK_CYCLES`` DRAM cycles its larger transfer takes, at most its compute cycles."""
    big = max(tile.load_bits, tile.store_bits)
    q = min(tile.compute_cycles, max(1, int(big // (CHUNK_CYCLES * max(bits_per_cycle, 1.0)))))
    if q <= 1:
        return (tile,)
    lb, cc, sb = tile.load_bits // q, tile.compute_cycles // q, tile.store_bits // q
    first = Tile(tile.load_bits - lb * (q - 1), tile.compute_cycles - cc * (q - 1), sb)
    last = Tile(lb, cc, tile.store_bits - sb * (q - 1))
    mid = Tile(lb, cc, sb)
    out: list[Node] = [first]
    if q > 2:
        out.append(Repeat((mid,), q - 2))
    out.append(last)
    return _join(tuple(out))


def _join(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Merge neighbouring equal single tiles / equal-body repeats (keeps the expansion)."""
    out: list[Node] = []
    for nd in nodes:
        if out:
            prev = out[-1]
            a_body, a_n = (prev.body, prev.count) if isinstance(prev, Repeat) else ((prev,), 1)
            b_body, b_n = (nd.body, nd.count) if isinstance(nd, Repeat) else ((nd,), 1)
            if a_body == b_body:
                out[-1] = Repeat(a_body, a_n + b_n)
                continue
        out.append(nd)
    return tuple(out)


def lower_mapping(layer_name: str, op: str, dims: LayerDims, hierarchy: MemoryHierarchy, mapping: Mapping,
                  cost: MappingCost, *, mac: Action, pe_count: int, engine: str, mapping_text: str,
                  dense_macs: int, compulsory_read_bits: int | None = None) -> LayerProgram:
    """The LayerProgram of ``dims`` run on ``mapping`` (module docstring for every assumption)."""
    traffic = dram_traffic(dims, hierarchy, mapping)
    fill_drain = int(round(cost.fill_drain_cycles))
    body = tile_stream(mapping, traffic, fill_drain, float(hierarchy.memories[-1].ports[0].bandwidth_max_bits))
    temporal = int(mapping.temporal_cycles)
    actions = mapping_actions(dims, hierarchy, cost, mac=mac)
    sram: dict[str, int] = {}
    for lc in cost.levels:
        if lc.level.endswith("_sram"):
            sram[f"{lc.level}_reads"] = sram.get(f"{lc.level}_reads", 0) + int(round(lc.reads))
            sram[f"{lc.level}_writes"] = sram.get(f"{lc.level}_writes", 0) + int(round(lc.writes))
    comp_read = (dims.operand_elems("W") * dims.w_bits + dims.operand_elems("I") * dims.i_bits
                 if compulsory_read_bits is None else compulsory_read_bits)
    return LayerProgram(
        layer=layer_name, op=op, engine=engine, body=body, compute_cycles=temporal + fill_drain, actions=actions,
        macs=dims.macs, dense_macs=dense_macs, pe_count=pe_count,
        mapping_efficiency=dims.macs / (temporal * pe_count) if temporal and pe_count else 0.0,
        dram_read_bits=dict(traffic.read_bits), dram_write_bits=dict(traffic.write_bits),
        compulsory_read_bits=comp_read, compulsory_write_bits=dims.operand_elems("O") * dims.o_final_bits,
        sram_accesses=sram, mapping=mapping_text,
        # no cost-model energy here: the program is re-priced from its actions (a cached program
        # serves every price point of a DSE sweep)
        extra={"mapping_latency_cycles": float(cost.latency_cycles),
               "mapping_onchip_stall_bound": float(cost.stall_cycles)},
    )


def mapping_text(mapping: Mapping, hierarchy: MemoryHierarchy) -> str:
    """One readable line: ``spatial D1:OY8,OX4 D2:K32 | W: reg_w[] filter_sram[C2 OX7] dram[...] | ...``
    (ZigZag loop names, innermost first per level; unrolling factors of 1 left out)."""
    from .ir import ACCELSIM_TO_ZIGZAG as zz
    sp = " ".join(f"{su.array_dim}:" + ",".join(f"{zz.get(lp.dim, lp.dim)}{lp.size}" for lp in su.loops if lp.size > 1)
                  for su in mapping.spatial if su.size > 1)
    parts = [f"spatial {sp or '-'}"]
    loop_text = [f"{zz.get(lp.dim, lp.dim)}{lp.size}" for lp in mapping.temporal]
    level_names = _level_names(hierarchy)
    for op in OPERANDS:
        names = level_names[op]
        lv = []
        start = 0
        for i, n in enumerate(mapping.counts(op)):  # the loops of mapping.levels(op)[i]
            body = " ".join(loop_text[start:start + n])
            start += n
            lv.append(f"{names[i] if i < len(names) else f'L{i}'}[{body}]")
        parts.append(f"{op}: " + " ".join(lv))
    return " | ".join(parts)


@identity_memo(maxsize=256)
def _level_names(hierarchy: MemoryHierarchy) -> dict[str, tuple[str, ...]]:
    """Per operand, the names of its memory levels, innermost first (frozen hierarchy: by identity)."""
    return {op: tuple(m.name for m in hierarchy.levels(op)) for op in OPERANDS}


__all__ = ["COMPONENT_OF_LEVEL", "TrafficSummary", "dram_traffic", "lower_mapping", "mapping_actions", "mapping_text",
           "port_word_bits", "tile_stream"]
