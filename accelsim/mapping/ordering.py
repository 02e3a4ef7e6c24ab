"""A user-given temporal loop order (ZigZag 3.9.1's ``temporal_ordering``) and its rule.

ZigZag 3.9.1 reads ``temporal_ordering`` as a list of ``[DIM, SIZE]`` or ``[DIM, "*"]`` loops,
innermost first (``zigzag/workload/layer_attributes.py: LayerTemporalOrdering``), and uses it
in ``zigzag/stages/mapping/temporal_mapping_generator_stage.py`` as follows; this module
reproduces each step:

1. Entries whose dimension is not a loop dimension of the layer are dropped
   (``LayerTemporalOrdering.remove_invalid_layer_dims``, called by
   ``parser/workload_factory.py``). This also drops the ``["*", "*"]`` "count from the outermost
   loop" marker that ``get_constraints`` would honour, so in 3.9.1 the marker has no effect and
   every later entry counts from the innermost loop as well; accelsim does the same. Every
   accelsim layer has all eight loop dimensions (``N G K C P Q R S``, size 1 when absent).
2. **Complete ordering** (``is_complete``): every size is an integer and, per dimension, the
   product of the sizes (loops of size 1 ignored) equals the temporal trip count left by the
   spatial unrolling (``ceil(bound / spatial factor)``, dimensions with trip 1 ignored). The
   order is then used exactly as given (no prime factorisation) and only allocated to the memory
   levels by LOMA's ``MemoryAllocator``: :meth:`TemporalOrdering.complete_order`.
3. **Partial ordering**: the entries become constraints on LOMA's permutations of loop prime
   factors: entry ``i`` pins position ``i`` (innermost first) of the order, ``[D, n]`` to a
   loop of dimension ``D`` and size ``n`` (``StaticPositionsAndSizesConstraint``), ``[D, "*"]``
   to a loop of dimension ``D`` of any size (``StaticPositionsConstraint``). A pinned size is
   kept as one factor (``LomaEngine.reduce_static_fps``); the ``lpf_limit`` merging of the other
   factors never merges a pinned one (``find_smallest_non_static_pf``). Every order satisfying
   all pins is searched: :meth:`TemporalOrdering.constrained_factors` and
   :meth:`TemporalOrdering.allowed`.

Where ZigZag raises an exception (a pinned size that does not divide the dimension's trip
count, a pin beyond the last loop, no order satisfying the pins) accelsim raises a one-line
:class:`~accelsim.errors.ConfigError`. Known difference: ZigZag 3.9.1's merge of non-pinned
factors when a dimension has fewer than two of them is not well defined (its
``find_smallest_non_static_pf`` may return a pinned index); accelsim then merges within the
dimension with the most non-pinned factors instead. Measured with zigzag-dse 3.9.1
(``benchmarks/zigzag_mapping_crosscheck.py``): pinning ``[OX, 7]`` of a 14-wide OX on
``tpu_like`` makes ZigZag merge the pinned 7 with the 2 and fail (``NoValidLoopOrderingFound``),
a composite pin such as ``[OX, 14]`` crashes it (``factorial() not defined for negative
values``); accelsim keeps the pin. On pinned positions, complete orders, the dropped marker and
generic loop names accelsim and ZigZag give identical latency and energy.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from ._search_kernels import prime_factors
from .ir import DIMS

#: the wildcard of ``temporal_ordering`` (a size ``"*"`` is stored as ``None``)
WILDCARD = "*"


@dataclass(frozen=True)
class TemporalOrdering:
    """Loops ``(dim, size)`` innermost first; ``dim`` an accelsim letter (or ``"*"``), ``size``
    an int or ``None`` for ``"*"``. See the module docstring for how it constrains a mapping."""

    loops: tuple[tuple[str, int | None], ...]

    @classmethod
    def of(cls, loops: Iterable[Sequence]) -> "TemporalOrdering":
        """From ``[(dim, size or "*" or None), ...]``; ZigZag names (OX, FY, B, ...) accepted."""
        from .ir import ZIGZAG_DIMS
        out = []
        for lp in loops:
            if len(lp) != 2:
                raise ConfigError(f"temporal loop {lp!r} must be (dim, size)", source="mapping",
                                  field="temporal_ordering")
            d = str(lp[0]).strip()
            d = ZIGZAG_DIMS.get(d, d)
            if d != WILDCARD and d not in DIMS:
                raise ConfigError(f"unknown loop dimension {lp[0]!r} in temporal ordering", source="mapping",
                                  field="temporal_ordering")
            s = lp[1]
            if s is None or (isinstance(s, str) and s.strip() == WILDCARD):
                size = None
            elif isinstance(s, bool) or not isinstance(s, (int, np.integer)) or int(s) < 1:
                raise ConfigError(f"temporal loop {lp!r}: size must be a positive integer or '*'", source="mapping",
                                  field="temporal_ordering")
            else:
                size = int(s)
            out.append((d, size))
        return cls(tuple(out))

    @property
    def effective(self) -> tuple[tuple[str, int | None], ...]:
        """The loops ZigZag 3.9.1 keeps (entries that are not a layer dimension dropped)."""
        return tuple(lp for lp in self.loops if lp[0] in DIMS)

    def complete_order(self, trips: dict[str, int]) -> tuple[tuple[str, int], ...] | None:
        """The order itself (size-1 loops dropped) if it is complete for ``trips``, else None."""
        eff = self.effective
        if any(s is None for _, s in eff):
            return None
        got = {d: prod(s for dd, s in eff if dd == d) for d in DIMS}
        need = {d: int(trips.get(d, 1)) for d in DIMS}
        if any(got[d] != need[d] for d in DIMS):
            return None
        return tuple((d, int(s)) for d, s in eff if s and s > 1)

    def pins(self) -> tuple[tuple[int, str, int | None], ...]:
        """``(position, dim, size or None)`` constraints, positions innermost first."""
        return tuple((i, d, s) for i, (d, s) in enumerate(self.effective))

    def position_pins(self) -> tuple[tuple[int, int, int | None], ...]:
        """:meth:`pins` with dimension indices into ``DIMS`` (the loop-order kernel's form)."""
        return tuple((i, DIMS.index(d), s) for i, d, s in self.pins())

    def constrained_factors(self, trips: dict[str, int], lpf_limit: int | None,
                            layer: str = "layer") -> list[tuple[int, int]]:
        """Loop factors ``(dim index, size)`` to permute for a partial ordering: pinned sizes kept
        whole, the rest split into primes and merged down to ``lpf_limit`` (pinned factors
        counted, never merged), sorted by ``(dim index, size)``."""
        static: dict[str, list[int]] = {d: [] for d in DIMS}
        for _, d, s in self.pins():
            if s is not None and s > 1:
                static[d].append(s)
        free: dict[str, list[int]] = {}
        for d in DIMS:
            t = int(trips.get(d, 1))
            ps = prod(static[d])
            if t % ps:
                raise ConfigError(f"temporal_ordering pins {d} loops of sizes {static[d]} but {d} has "
                                  f"{t} temporal iterations in layer {layer} (not a divisor)",
                                  source="mapping", field="temporal_ordering")
            free[d] = prime_factors(t // ps)
        from ._search_kernels import ZIGZAG_DIM_ORDER
        dims = [d for d in ZIGZAG_DIM_ORDER if static[d] or free[d]]
        if lpf_limit is not None:
            limit = max(int(lpf_limit), len(dims))
            n = sum(len(static[d]) + len(free[d]) for d in dims)
            while n > limit:
                cands = [d for d in dims if len(free[d]) >= 2]
                if not cands:
                    break
                best = max(cands, key=lambda d: (len(static[d]) + len(free[d]), len(free[d])))
                f = sorted(free[best])
                free[best] = sorted(f[2:] + [f[0] * f[1]])
                n -= 1
        out = [(DIMS.index(d), s) for d in dims for s in static[d] + free[d]]
        return sorted(out)

    def allowed(self, orders: np.ndarray, factors: Sequence[tuple[int, int]]) -> np.ndarray:
        """Boolean mask over ``orders`` (rows of indices into ``factors``, innermost first) of
        the orders that satisfy every pin; a pin beyond the last loop satisfies none (ZigZag
        fails on it)."""
        n, length = orders.shape if orders.ndim == 2 else (len(orders), 0)
        mask = np.ones(n, dtype=bool)
        if not len(factors):
            return mask & (len(self.pins()) == 0)
        kd = np.array([d for d, _ in factors], dtype=np.int64)
        ks = np.array([s for _, s in factors], dtype=np.int64)
        for pos, d, s in self.pins():
            if pos >= length:
                return np.zeros(n, dtype=bool)
            col = orders[:, pos]
            mask &= kd[col] == DIMS.index(d)
            if s is not None:
                mask &= ks[col] == s
        return mask

    def __str__(self) -> str:
        return "[" + ", ".join(f"({d}, {'*' if s is None else s})" for d, s in self.loops) + "]"


__all__ = ["TemporalOrdering", "WILDCARD"]
