"""Reuse lowered and timed layers between simulations (what the design-space explorer runs on).

A layer's :class:`~accelsim.stats.LayerProgram` and :class:`~accelsim.stats.Timing` depend on
the layer (shape, compression, mask), the workload it belongs to (an engine may map the whole
network at once) and the hardware fields that shape tiling and timing -- never on prices (energy
per action, leakage power): engines count, the simulator times, ``energy.py`` prices.
:class:`ProgramCache` keeps the (program, timing) pairs in a bounded LRU under
``(workload digest, layer digest, timing key, skip)``; ``accelsim.simulate(..., program_cache=c)``
then lowers and times each distinct layer of a workload once per hardware structure and only
re-prices the rest. Layers that differ only in their name share one entry (ResNet-50 has 30
distinct layers out of 72).

The *timing key* names the hardware's timing-relevant content. The caller may give it (the
explorer passes the digest of the hardware without its pricing-only fields); hardware with equal
keys must lower and time identically. Without one, the key is a digest of the whole hardware
config: no reuse across prices, still reuse across identical layers and repeated calls.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

from .engines.base import lower_layer
from .hardware.common import HardwareBase
from .sim.run import simulate_layer_program
from .stats import LayerProgram, Timing
from .workload.layer import LayerBase
from .workload.workload import Workload

#: default bound of a cache (entries of one (program, timing) pair each)
DEFAULT_ENTRIES = 4096
#: workloads whose layer digests are remembered (by object identity)
_WORKLOAD_MEMO = 64

_COUNTERS = {"lowered": 0, "priced": 0}


def counters() -> dict[str, int]:
    """How many layers this process lowered+timed and priced through a cache (tests, benchmarks)."""
    return dict(_COUNTERS)


def count_priced(n: int = 1) -> None:
    """Record that ``n`` distinct layers were priced (called by :func:`accelsim.simulate`)."""
    _COUNTERS["priced"] += n


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def layer_digests(wl: Workload) -> list[str]:
    """One content digest per layer: everything but the name, plus the real mask when there is one."""
    keys = []
    for layer in wl.layers:
        d = layer.model_dump(mode="json", exclude={"name"})
        if layer.compression.sparsity.mask:
            mask = wl.mask(layer)
            d["_mask"] = hashlib.sha256(mask.tobytes()).hexdigest() + str(mask.shape) if mask is not None else None
        keys.append(json.dumps(d, sort_keys=True))
    return keys


def hardware_digest(hw: HardwareBase) -> str:
    """The default timing key: a digest of the whole hardware config."""
    return _sha(json.dumps(hw.model_dump(mode="json"), sort_keys=True, default=str))


@dataclass(slots=True)
class CachedLayer:
    """One cache entry: a layer's program and timing (and its unpriced stats, filled in by the API)."""

    program: LayerProgram
    timing: Timing
    stats: Any = None


class ProgramCache:
    """Bounded LRU of lowered + timed layers, shared by every simulation given it.

    ``max_entries`` bounds memory however many design points one process sees. Not thread-safe
    (one per process or thread; the explorer keeps one per worker process).
    """

    def __init__(self, max_entries: int = DEFAULT_ENTRIES):
        self.max_entries = max(1, int(max_entries))
        self._entries: OrderedDict[tuple[str, str, str, bool], CachedLayer] = OrderedDict()
        self._workloads: dict[int, tuple[Workload, str, list[str]]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._workloads.clear()

    def keys_of(self, wl: Workload) -> tuple[str, list[str]]:
        """(workload digest, per-layer digests) of ``wl``, remembered per workload object."""
        got = self._workloads.get(id(wl))
        if got is not None and got[0] is wl:
            return got[1], got[2]
        layer_keys = layer_digests(wl)
        wl_key = _sha(json.dumps([wl.name, layer_keys]))
        if len(self._workloads) >= _WORKLOAD_MEMO:
            self._workloads.clear()
        self._workloads[id(wl)] = (wl, wl_key, layer_keys)
        return wl_key, layer_keys

    def programs(self, wl: Workload, hw: HardwareBase, *, timing_key: str | None = None,
                 skip: bool = True) -> Iterator[tuple[LayerBase, str, CachedLayer]]:
        """``(layer, layer digest, entry)`` for every layer of ``wl`` in order (lowering and timing on a miss)."""
        tkey = timing_key if timing_key is not None else hardware_digest(hw)
        wl_key, layer_keys = self.keys_of(wl)
        entries = self._entries
        for layer, lk in zip(wl.layers, layer_keys):
            k = (wl_key, lk, tkey, skip)
            hit = entries.get(k)
            if hit is not None:
                entries.move_to_end(k)
                self.hits += 1
            else:
                prog = lower_layer(layer, hw, wl)
                hit = CachedLayer(prog, simulate_layer_program(prog, hw, skip=skip))
                _COUNTERS["lowered"] += 1
                self.misses += 1
                entries[k] = hit
                if len(entries) > self.max_entries:
                    entries.popitem(last=False)
            yield layer, lk, hit

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses,
                "max_entries": self.max_entries}
