"""Lowering pieces every engine shares: memory-bound layers and run-length encoding of tiles.

Memory-bound (element-wise, pooling) layers run on a vector unit of ``lanes`` lanes, one op per
lane per cycle: :func:`vector_work` counts them, :func:`stream_tiles` splits the stream into
tiles that fit a buffer half, :func:`vector_program` assembles the LayerProgram from the counts
(no MACs; DRAM traffic = inputs read once, outputs written once unless the engine says otherwise).

- :func:`compress_runs`: consecutive identical tiles -> ``Repeat((tile,), n)``;
- :func:`compress_runs_arrays`: the same from columns of numbers (no Tile per element);
- :func:`compress_sequence`: concatenate blocks of nodes, merging consecutive identical blocks
  into one ``Repeat`` (loop nests: identical inner loops of an outer loop);
- :func:`compress_periodic`: runs of a repeating *pattern* of blocks (period up to
  ``max_period``), e.g. pixel tiles that fall on output rows with a short period;
- :func:`node_cycles`: compute cycles of a node without expanding it.

Every encoder returns nodes whose expansion (:func:`accelsim.stats.iter_tiles`) is exactly the
input tile sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..stats import Action, LayerProgram, Node, Repeat, Tile, split_tile
from ..workload.layer import Elementwise, Pool, ceil_div


@dataclass(frozen=True)
class VectorWork:
    """An element-wise/pooling layer on a vector unit: ops, cycles and its DRAM streams (bits)."""

    ops: int
    cycles: int
    read_bits: int
    write_bits: int
    act_bits: int


def vector_work(layer: Elementwise | Pool, lanes: int, act_bits: int) -> VectorWork:
    """Ops at one per lane per cycle (at least one cycle); inputs read and outputs written once."""
    ops = layer.vector_ops
    return VectorWork(ops, max(ceil_div(ops, lanes), 1), layer.input_words * act_bits, layer.output_words * act_bits,
                      act_bits)


def stream_tiles(load_bits: int, cycles: int, store_bits: int, parts: int, *, spread_stores: bool = False) -> list[Tile]:
    """Split one stream into ``parts`` tiles (never more than ``cycles``): loads and cycles evenly;
    stores with the last tile (:func:`accelsim.stats.split_tile`) or, with ``spread_stores``, evenly."""
    if not spread_stores:
        return split_tile(Tile(load_bits, cycles, store_bits), parts)
    parts = max(min(parts, cycles), 1)
    return [Tile(load_bits * (i + 1) // parts - load_bits * i // parts, cycles * (i + 1) // parts - cycles * i // parts,
                 store_bits * (i + 1) // parts - store_bits * i // parts) for i in range(parts)]


def vector_program(layer: Elementwise | Pool, work: VectorWork, *, engine: str, body: tuple[Node, ...],
                   actions: list[Action], pe_count: int, compute_cycles: int | None = None,
                   dram_read_bits: dict[str, int] | None = None, dram_write_bits: dict[str, int] | None = None,
                   sram_accesses: dict[str, int] | None = None, extra: dict[str, float] | None = None) -> LayerProgram:
    """The LayerProgram of a memory-bound layer from its counts (``compute_cycles`` defaults to
    ``work.cycles``; DRAM defaults to ``work``'s read/write streams, which are also compulsory)."""
    reads = {"ifmap": work.read_bits} if dram_read_bits is None else dram_read_bits
    writes = {"ofmap": work.write_bits} if dram_write_bits is None else dram_write_bits
    return LayerProgram(
        layer=layer.name, op=layer.op, engine=engine, body=body,
        compute_cycles=work.cycles if compute_cycles is None else compute_cycles, actions=actions, macs=0, dense_macs=0,
        pe_count=pe_count, mapping_efficiency=1.0, dram_read_bits=reads, dram_write_bits=writes,
        compulsory_read_bits=sum(reads.values()), compulsory_write_bits=sum(writes.values()),
        sram_accesses=dict(sram_accesses or {}), extra=dict(extra or {}),
    )


def peel_last(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Rewrite so the final tile is explicit and one cycle shorter (SCALE-Sim's 0-based count)."""
    if not nodes:
        return nodes
    *head, last = nodes
    if isinstance(last, Tile):
        return (*head, Tile(last.load_bits, max(last.compute_cycles - 1, 0), last.store_bits, last.decode_cycles))
    if last.count == 0:
        return (*peel_last(tuple(head)), last)
    rest: list[Node] = list(head)
    if last.count > 1:
        rest.append(Repeat(last.body, last.count - 1))
    return (*rest, *peel_last(last.body))


def buffered_vector_program(layer: Elementwise | Pool, *, lanes: int, in_buffer: str, in_buffer_bits: int,
                            out_buffer: str, engine: str, zero_based: bool = False,
                            sram_accesses: dict[str, int] | None = None) -> LayerProgram:
    """A memory-bound layer on a ``lanes``-wide vector unit that streams its input from DRAM
    through ``in_buffer`` (tiles of half its ``in_buffer_bits``, double-buffered) and its output
    through ``out_buffer`` back to DRAM: every word written and read once in each buffer and
    moved once over DRAM. ``zero_based``: cycles counted from 0 and the last tile peeled
    (the systolic array's fold convention)."""
    ab = layer.compression.quant.act_bits
    w = vector_work(layer, lanes, ab)
    tiles = stream_tiles(w.read_bits, w.cycles, w.write_bits, -(-w.read_bits // (in_buffer_bits // 2)))
    actions = [
        Action("vector", "op", w.ops, ab),
        Action(in_buffer, "write", layer.input_words, ab),
        Action(in_buffer, "read", layer.input_words, ab),
        Action(out_buffer, "write", layer.output_words, ab),
        Action(out_buffer, "read", layer.output_words, ab),
        Action("dram", "read", layer.input_words, ab),
        Action("dram", "write", layer.output_words, ab),
    ]
    body = peel_last(compress_runs(tiles)) if zero_based else compress_runs(tiles)
    return vector_program(layer, w, engine=engine, body=body, actions=actions, pe_count=lanes,
                          compute_cycles=w.cycles - 1 if zero_based else None, sram_accesses=sram_accesses)


def compress_runs(tiles: Sequence[Tile]) -> tuple[Node, ...]:
    """Run-length encode consecutive identical tiles."""
    out: list[Node] = []
    i = 0
    n_tiles = len(tiles)
    while i < n_tiles:
        j = i
        while j + 1 < n_tiles and tiles[j + 1] == tiles[i]:
            j += 1
        n = j - i + 1
        out.append(tiles[i] if n == 1 else Repeat((tiles[i],), n))
        i = j + 1
    return tuple(out)


def compress_runs_arrays(load_bits: np.ndarray, compute_cycles: np.ndarray, store_bits: np.ndarray,
                         decode_cycles: np.ndarray | None = None) -> tuple[Node, ...]:
    """:func:`compress_runs` of the tiles given column-wise (equal-length integer arrays)."""
    cols = [np.asarray(load_bits, dtype=np.int64), np.asarray(compute_cycles, dtype=np.int64),
            np.asarray(store_bits, dtype=np.int64)]
    if decode_cycles is not None:
        cols.append(np.asarray(decode_cycles, dtype=np.int64))
    n = len(cols[0])
    if n == 0:
        return ()
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for col in cols:
        change[1:] |= col[1:] != col[:-1]
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n)).tolist()
    values = [col[starts].tolist() for col in cols]
    out: list[Node] = []
    for idx, count in enumerate(counts):
        tile = Tile(*(v[idx] for v in values))
        out.append(tile if count == 1 else Repeat((tile,), count))
    return tuple(out)


def _periodic(ids: list[int], max_period: int, body_of: Callable[[int, int], tuple[Node, ...]]) -> list[Node]:
    """The periodic rule over block ids: at each position the period (<= ``max_period``) whose
    repetitions cover the longest stretch (ties: the smallest period); ``body_of(i, j)`` encodes
    blocks ``i..j-1`` as one pattern."""
    n = len(ids)
    pmax = min(max_period, n // 2)
    out: list[Node] = []
    i = 0
    while i < n:
        best_p, best_reps = 1, 1
        for p in range(1, pmax + 1):
            r = 0  # how many of positions i, i+1, ... (consecutively) equal the position p later
            while i + r + p < n and ids[i + r] == ids[i + r + p]:
                r += 1
            reps = r // p + 1
            if reps > 1 and reps * p > best_reps * best_p:
                best_p, best_reps = p, reps
        body = body_of(i, i + best_p)
        if best_reps > 1:
            out.append(Repeat(body, best_reps))
        else:
            out.extend(body)
        i += best_p * best_reps
    return out


def compress_periodic_arrays(load_bits: np.ndarray, compute_cycles: np.ndarray, store_bits: np.ndarray,
                             max_period: int = 64) -> tuple[Node, ...]:
    """:func:`compress_periodic` of single-tile blocks given column-wise: runs of a repeating
    pattern of up to ``max_period`` tiles become one ``Repeat`` of the run-length encoded pattern
    (e.g. the row folds of a convolution, whose input words repeat with the output row); the
    choice of pattern is :func:`~._periodic_kernel.periodic_plan`'s (numba), the rule of
    :func:`_periodic` (periods also capped by ``2**24 // n``)."""
    from ._periodic_kernel import periodic_plan  # numba: loaded by the first layer that needs it

    cols = [np.ascontiguousarray(c, dtype=np.int64) for c in (load_bits, compute_cycles, store_bits)]
    runs, periods, reps = periodic_plan(cols[0], cols[1], cols[2], max_period)
    if runs <= 2:  # at most two runs: nothing periodic beyond run-length encoding
        return compress_runs_arrays(*cols)
    rows = list(zip(*(c.tolist() for c in cols)))
    out: list[Node] = []
    i = 0
    for p, r in zip(periods.tolist(), reps.tolist()):
        body = compress_runs([Tile(*t) for t in rows[i:i + p]])
        if r > 1:
            out.append(Repeat(body, r))
        else:
            out.extend(body)
        i += p * r
    return tuple(out)


def compress_sequence(blocks: Sequence[tuple[Node, ...]]) -> tuple[Node, ...]:
    """Concatenate node blocks, merging consecutive identical blocks into a ``Repeat``."""
    out: list[Node] = []
    i = 0
    n_blocks = len(blocks)
    while i < n_blocks:
        j = i
        while j + 1 < n_blocks and (blocks[j + 1] is blocks[i] or blocks[j + 1] == blocks[i]):
            j += 1
        n = j - i + 1
        if n == 1:
            out.extend(blocks[i])
        else:
            out.append(Repeat(tuple(blocks[i]), n))
        i = j + 1
    return tuple(out)


def compress_periodic(blocks: Sequence[tuple[Node, ...]], max_period: int = 64) -> list[Node]:
    """Run-length encode periodic runs of blocks.

    A run of ``reps`` repetitions of a ``p``-block pattern (``p <= max_period``, the longest
    covered stretch wins) becomes one :class:`~accelsim.stats.Repeat`, so the simulator can
    fast-forward it; the tiles inside a pattern are run-length encoded.
    """
    ids_of: dict[tuple[Node, ...], int] = {}
    ids = [ids_of.setdefault(b, len(ids_of)) for b in blocks]
    return _periodic(ids, max_period,
                     lambda i, j: compress_runs([t for blk in blocks[i:j] for t in blk]))  # type: ignore[misc]


def node_cycles(node: Node) -> int:
    """Compute cycles of ``node`` (a Repeat counts its body ``count`` times)."""
    if isinstance(node, Tile):
        return node.compute_cycles
    return node.count * sum(node_cycles(b) for b in node.body)
