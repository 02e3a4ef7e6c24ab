"""Counting types shared by engines, the event simulator, the energy model and reports.

An engine turns (layer, hardware) into a :class:`LayerProgram`: a stream of :class:`Tile` s
(compressed with :class:`Repeat`) that the simulator times, plus :class:`Action` counts that
:mod:`accelsim.energy` prices. Engines count, the simulator times, the energy model prices:
every breakdown can be checked against its counts.
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class Tile:
    """One unit of pipelined work: fetch, (decode), compute, write back.

    ``load_bits`` come from DRAM into a free input-buffer half before the tile may compute;
    ``decode_cycles`` run on a decoder unit (e.g. SmartExchange weight rebuild) between load and
    compute; ``compute_cycles`` occupy the compute array; ``store_bits`` go to DRAM after it.
    """

    load_bits: int
    compute_cycles: int
    store_bits: int = 0
    decode_cycles: int = 0

    def __post_init__(self) -> None:
        if min(self.load_bits, self.compute_cycles, self.store_bits, self.decode_cycles) < 0:
            raise ValueError(f"negative amount in {self}")


@dataclass(frozen=True)
class Repeat:
    """``body`` executed ``count`` times in a row."""

    body: tuple["Node", ...]
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("Repeat.count must be >= 0")


Node = Union[Tile, Repeat]


def iter_tiles(nodes: tuple[Node, ...] | list[Node]):
    """Expand a program into its tiles (for replay and tests; can be long)."""
    for node in nodes:
        if isinstance(node, Tile):
            yield node
        else:
            for _ in range(node.count):
                yield from iter_tiles(node.body)


def program_totals(nodes: tuple[Node, ...] | list[Node]) -> tuple[int, int, int, int, int]:
    """(tiles, load_bits, compute_cycles, store_bits, decode_cycles) summed without expanding."""
    t = lb = cc = sb = dc = 0
    for node in nodes:
        if isinstance(node, Tile):
            t += 1
            lb += node.load_bits
            cc += node.compute_cycles
            sb += node.store_bits
            dc += node.decode_cycles
        else:
            a, b, c, d, e = program_totals(node.body)
            t += a * node.count
            lb += b * node.count
            cc += c * node.count
            sb += d * node.count
            dc += e * node.count
    return t, lb, cc, sb, dc


#: most tiles one layer's lowering may materialise (split sub-tiles, per-tile lists) before
#: run-length compression; beyond it the lists need gigabytes (a conv with ``in_w: 10^6`` on an
#: 8x8 array with 16 kB SRAMs splits its 10^6 folds into 2.3e7 sub-tiles). Checked before allocating.
MAX_TILES_PER_LAYER = 2**21

# [tiles charged so far, layer name, hardware name] of the layer being lowered (tile_bounded)
_TILE_BUDGET: ContextVar[list | None] = ContextVar("accelsim_tile_budget", default=None)


class TileLimitError(ConfigError):
    """A lowering would materialise more than :data:`MAX_TILES_PER_LAYER` tiles (or, for the
    systolic fold order's per-fold arrays, folds); ``amount`` says how many, of what."""

    def __init__(self, message: str, *, amount: str, source: str | None = None, field: str | None = None):
        super().__init__(message, source=source, field=field)
        self.amount = amount


def charge_tiles(count: int, what: str = "buffers") -> None:
    """Count ``count`` tiles about to be materialised against the layer's :data:`MAX_TILES_PER_LAYER`
    (the layer of the enclosing :func:`tile_bounded` lowering; without one, this call alone);
    past it a :class:`~accelsim.errors.ConfigError` names the layer and what to change."""
    budget = _TILE_BUDGET.get()
    used = count + (budget[0] if budget is not None else 0)
    if used > MAX_TILES_PER_LAYER:
        name, source = (budget[1], budget[2]) if budget is not None else ("?", None)
        amount = f"more than {MAX_TILES_PER_LAYER:,} tiles through the {what} ({used:,} so far)"
        raise TileLimitError(f"layer {name!r} needs {amount}: use larger buffers (size_kb), a larger array or a "
                             "smaller layer", amount=amount, source=source, field=f"layers.{name}")
    if budget is not None:
        budget[0] = used


def tiles_left() -> int:
    """Tiles the enclosing :func:`tile_bounded` lowering may still charge without an error (without
    one, what a single :func:`charge_tiles` call may)."""
    budget = _TILE_BUDGET.get()
    return MAX_TILES_PER_LAYER - (budget[0] if budget is not None else 0)


def tile_bounded(lower: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an engine's ``lower(self, layer, hw, workload=None)``: its tiles share one budget."""
    @functools.wraps(lower)
    def bounded(self: Any, layer: Any, hw: Any, *args: Any, **kwargs: Any) -> Any:
        token = _TILE_BUDGET.set([0, layer.name, getattr(hw, "name", None)])
        try:
            return lower(self, layer, hw, *args, **kwargs)
        finally:
            _TILE_BUDGET.reset(token)
    return bounded


def split_tile(tile: Tile, parts: int) -> list[Tile]:
    """Split a tile whose loads exceed a buffer half into ``parts`` streamed sub-tiles.

    Loads and compute cycles are divided evenly (totals kept exactly), the store goes with the
    last part; never more parts than compute cycles. The parts count against the layer's tiles
    (:func:`charge_tiles`) before they are built.
    """
    parts = min(parts, max(tile.compute_cycles, 1))
    if parts <= 1:
        return [tile]
    charge_tiles(parts)
    out = []
    for i in range(parts):
        lb = tile.load_bits * (i + 1) // parts - tile.load_bits * i // parts
        cc = tile.compute_cycles * (i + 1) // parts - tile.compute_cycles * i // parts
        dc = tile.decode_cycles * (i + 1) // parts - tile.decode_cycles * i // parts
        out.append(Tile(lb, cc, tile.store_bits if i == parts - 1 else 0, dc))
    return out


def _even_shares(total: np.ndarray, parts: np.ndarray, idx: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Share ``i`` of ``total[idx]`` split in ``parts[idx]``: ``t (i+1) // p - t i // p``, exactly
    (``t = q p + r``: ``q + r (i+1) // p - r i // p``, no int64 overflow for ``p < 2^31``)."""
    p = parts[idx]
    q, r = np.divmod(total[idx], p)
    return q + (r * (i + 1)) // p - (r * i) // p


def split_tile_arrays(load_bits: np.ndarray, compute_cycles: np.ndarray, store_bits: np.ndarray,
                      parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_tile` of many tiles given column-wise (int64 arrays), without building
    :class:`Tile` objects: the sub-tiles' loads, cycles and stores, in order."""
    load_bits, compute_cycles, store_bits = (np.asarray(a, dtype=np.int64) for a in (load_bits, compute_cycles, store_bits))
    n = np.maximum(np.minimum(np.asarray(parts, dtype=np.int64), np.maximum(compute_cycles, 1)), 1)
    total = int(n.sum())
    charge_tiles(total)
    idx = np.repeat(np.arange(len(n)), n)
    i = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    last = i == n[idx] - 1
    return (_even_shares(load_bits, n, idx, i), _even_shares(compute_cycles, n, idx, i),
            np.where(last, store_bits[idx], 0))


@dataclass(frozen=True)
class Action:
    """``count`` events of ``action`` on ``component``, each moving/processing ``bits`` bits.

    For ``action == 'mac'``: ``bits`` is the weight width and ``act_bits`` the activation width (other actions leave it at its default);
    ``scheme`` the number format ('int', 'pow2', 'binary', ...).
    """

    component: str
    action: str
    count: int
    bits: int = 8
    act_bits: int = 8
    scheme: str = "int"


@dataclass(frozen=True)
class TopologyRow:
    """A single-GEMM conv/linear layer as one row of a SCALE-Sim topology CSV.

    Engines attach it for stall models that replay the layer themselves (``scalesim_user``).
    """

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int


@dataclass
class LayerProgram:
    """What an engine hands to the simulator for one layer."""

    layer: str
    op: str
    engine: str
    body: tuple[Node, ...]
    compute_cycles: int
    actions: list[Action]
    macs: int
    dense_macs: int
    pe_count: int
    mapping_efficiency: float = 1.0
    dram_read_bits: dict[str, int] = field(default_factory=dict)
    dram_write_bits: dict[str, int] = field(default_factory=dict)
    compulsory_read_bits: int = 0
    compulsory_write_bits: int = 0
    sram_accesses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    topology: TopologyRow | None = None  # for stall models that replay the layer (scalesim_user)
    extra: dict[str, float] = field(default_factory=dict)
    mapping: str = ""  # how the layer was mapped, readable (loop-nest text or e.g. "scalesim fold order (ws)")
    #: the layer's timing as the engine's own model computed it (e.g. the loop-nest cost model of
    #: ``kind: loopnest``); when set, :func:`accelsim.sim.run.simulate_layer_program` reports it
    #: instead of timing ``body`` itself
    timing: "Timing | None" = None

    @property
    def dram_read_total_bits(self) -> int:
        return sum(self.dram_read_bits.values())

    @property
    def dram_write_total_bits(self) -> int:
        return sum(self.dram_write_bits.values())


@dataclass(frozen=True)
class MeasuredDram:
    """DRAM words a timing model counted itself (e.g. the SCALE-Sim USER-mode emulation), by operand."""

    read_words: dict[str, int]
    write_words: dict[str, int]
    word_bits: int

    @property
    def read_bits(self) -> dict[str, int]:
        return {k: v * self.word_bits for k, v in self.read_words.items()}

    @property
    def write_bits(self) -> dict[str, int]:
        return {k: v * self.word_bits for k, v in self.write_words.items()}


@dataclass
class Timing:
    """What the simulator measured for one layer program."""

    compute_cycles: int
    stall_cycles: int
    fill_cycles: int
    drain_cycles: int
    dram_busy_cycles: int
    decode_busy_cycles: int = 0
    simulated_tiles: int = 0
    skipped_tiles: int = 0
    source: str = "simpy"
    stall_input_cycles: int = 0   # compute waited for its data (load / decode)
    stall_output_cycles: int = 0  # compute waited for a free output-buffer half (write-back)
    #: DRAM traffic the timing model counted itself, replacing the program's own counts in the
    #: report and its energy (:func:`accelsim.sim.run.with_measured_dram`); None: the program's stand
    measured_dram: "MeasuredDram | None" = None
    #: cycles outside the latency that a reference tool adds (SCALE-Sim CALC mode's start-up fill
    #: and final ofmap drain, "Total Cycles (incl. prefetch)" minus "Total Cycles"); 0: none
    prefetch_cycles: int = 0

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    @property
    def latency_cycles(self) -> int:
        return self.fill_cycles + self.compute_cycles + self.stall_cycles + self.drain_cycles


def duration_text(ms: float) -> str:
    """A duration with a unit that keeps 3-4 significant digits: "12.3 ms", "41.2 us", "850 ns"."""
    if ms >= 1 or ms == 0:
        return f"{ms:,.3f} ms"
    if ms >= 1e-3:
        return f"{ms * 1e3:.4g} us"
    return f"{ms * 1e6:.4g} ns"
