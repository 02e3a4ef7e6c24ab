"""Loop-nest mapping IR for conv / GEMM / matmul layers (ZigZag-style).

Loop dimensions use the workload IR's letters: ``N`` batch, ``G`` groups, ``K`` output channels
(per group), ``C`` input channels (per group), ``P``/``Q`` output rows/columns, ``R``/``S``
kernel rows/columns (ZigZag's B, G, K, C, OY, OX, FY, FX). A linear/GEMM layer is ``N=M`` rows
(or ``P``), ``K=N`` outputs, ``C=K`` reduction, all else 1.

A :class:`Mapping` is

- a **spatial unrolling**: per array dimension (``D1``, ``D2``, ...), the loops unrolled on it
  (several loops may share one array dimension, their product must fit its size; partial
  unrolling, e.g. ``C 3`` on a 32-wide dimension, is allowed);
- a **temporal loop nest**: one ordered list of loops, innermost first, shared by all operands
  (the order in which the array steps through the layer), and, per operand (``W``, ``I``,
  ``O``), how many of those loops are kept at each memory level that holds the operand
  (innermost level first; the outermost level takes all remaining loops). This is exactly
  ZigZag's per-operand, per-level temporal mapping, stored without redundancy.

Loop sizes need not divide the layer dimensions: the product of a dimension's spatial and
temporal factors must be at least the dimension and no loop of it may be redundant (a mapping
of a padded iteration space; uneven factors). Costs are then counted on the padded space, MAC
energy on the real MACs.

Operand relevance (which loops index an operand): W <- G,K,C,R,S; O <- N,G,K,P,Q;
I <- N,G,C and P,R (input rows ``(P-1)*stride_h + (R-1)*dilation_h + 1``) and Q,S (columns);
``K`` never indexes ``I``, ``C,R,S`` never index ``O`` (they are reduction loops).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd, prod
from typing import Iterable, Mapping as _MappingT, Sequence

from ..errors import ConfigError

DIMS: tuple[str, ...] = ("N", "G", "K", "C", "P", "Q", "R", "S")
#: ZigZag loop names -> accelsim letters
ZIGZAG_DIMS: dict[str, str] = {"B": "N", "G": "G", "K": "K", "C": "C", "OY": "P", "OX": "Q", "FY": "R", "FX": "S"}
OPERANDS: tuple[str, ...] = ("W", "I", "O")
ACCELSIM_TO_ZIGZAG: dict[str, str] = {v: k for k, v in ZIGZAG_DIMS.items()}

#: dims fully relevant to each operand (I's P,Q,R,S are "partially relevant": sliding window)
RELEVANT: dict[str, frozenset[str]] = {
    "W": frozenset({"G", "K", "C", "R", "S"}),
    "I": frozenset({"N", "G", "C"}),
    "O": frozenset({"N", "G", "K", "P", "Q"}),
}
PARTIAL_I: frozenset[str] = frozenset({"P", "Q", "R", "S"})
REDUCTION: frozenset[str] = frozenset({"C", "R", "S"})


def is_relevant(operand: str, dim: str) -> bool:
    """Does a loop over ``dim`` index new data of ``operand``? (I: P,Q,R,S count as relevant)."""
    return dim in RELEVANT[operand] or (operand == "I" and dim in PARTIAL_I)


def _window(a: int, b: int, stride: int, dilation: int, clip: int) -> int:
    """Distinct values of ``stride*i + dilation*j`` for i < a, j < b (clipped to ``clip`` if > 0)."""
    g = gcd(stride, dilation)
    n = a * b - max(0, b - stride // g) * (a - dilation // g)
    return min(clip, n) if clip else n


@dataclass(frozen=True)
class LayerDims:
    """Loop bounds and operand precisions of one conv/GEMM layer (one group's K and C).

    Precisions in bits: ``w_bits``, ``i_bits``; ``o_bits`` for partial sums, ``o_final_bits``
    for the final outputs (ZigZag's ``O`` and ``O_final``). ``in_h``/``in_w``: the input's rows/columns
    (0 = the full window extent): input tiles are clipped to them (padding is not fetched).
    """

    N: int = 1
    G: int = 1
    K: int = 1
    C: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    w_bits: int = 8
    i_bits: int = 8
    o_bits: int = 16
    o_final_bits: int = 8
    in_h: int = 0
    in_w: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        for d in DIMS:
            if int(getattr(self, d)) < 1:
                raise ConfigError(f"loop bound {d}={getattr(self, d)} must be >= 1", source=self.name or "layer")
        for f in ("stride_h", "stride_w", "dilation_h", "dilation_w", "w_bits", "i_bits", "o_bits", "o_final_bits"):
            if int(getattr(self, f)) < 1:
                raise ConfigError(f"{f} must be >= 1", source=self.name or "layer", field=f)

    def size(self, dim: str) -> int:
        return int(getattr(self, dim))

    def rows_for(self, p: int, r: int) -> int:
        """Unique input rows read by ``p`` output rows x ``r`` kernel rows (clipped to ``in_h``)."""
        return _window(p, r, self.stride_h, self.dilation_h, self.in_h)

    def cols_for(self, q: int, s: int) -> int:
        """Unique input columns read by ``q`` output columns x ``s`` kernel columns (clipped)."""
        return _window(q, s, self.stride_w, self.dilation_w, self.in_w)

    @property
    def in_rows(self) -> int:
        return self.rows_for(self.P, self.R)

    @property
    def in_cols(self) -> int:
        return self.cols_for(self.Q, self.S)

    @property
    def bounds(self) -> dict[str, int]:
        return {d: self.size(d) for d in DIMS}

    @property
    def macs(self) -> int:
        return prod(self.size(d) for d in DIMS)

    @property
    def shape_key(self) -> tuple:
        """Everything the cost depends on except the name (for caching mappings per shape)."""
        return tuple(self.size(d) for d in DIMS) + (
            self.stride_h, self.stride_w, self.dilation_h, self.dilation_w,
            self.w_bits, self.i_bits, self.o_bits, self.o_final_bits, self.in_rows, self.in_cols)

    def operand_elems(self, operand: str, sizes: _MappingT[str, int] | None = None) -> int:
        """Elements of ``operand`` touched by loop bounds ``sizes`` (default: whole layer)."""
        s = self.bounds if sizes is None else sizes
        g = lambda d: int(s.get(d, 1))  # noqa: E731
        if operand == "W":
            return g("G") * g("K") * g("C") * g("R") * g("S")
        if operand == "O":
            return g("N") * g("G") * g("K") * g("P") * g("Q")
        return g("N") * g("G") * g("C") * self.rows_for(g("P"), g("R")) * self.cols_for(g("Q"), g("S"))

    def bits(self, operand: str, final: bool = False) -> int:
        if operand == "W":
            return self.w_bits
        if operand == "I":
            return self.i_bits
        return self.o_final_bits if final else self.o_bits

    @classmethod
    def from_layer(cls, layer, *, w_bits: int = 8, i_bits: int = 8, o_bits: int = 16,
                   o_final_bits: int = 8) -> "LayerDims":
        """From a workload-IR layer (Conv2d, Linear, Matmul with one GEMM); precisions as given
        (e.g. ``**hierarchy.array.precision.model_dump()`` for the array's widths)."""
        op = getattr(layer, "op", None)
        common = dict(w_bits=w_bits, i_bits=i_bits, o_bits=o_bits, o_final_bits=o_final_bits, name=layer.name)
        if op == "conv2d":
            g = layer.groups
            return cls(in_h=layer.in_h, in_w=layer.in_w,
                       N=layer.batch, G=g, K=layer.out_channels // g, C=layer.in_channels // g,
                       P=layer.out_h, Q=layer.out_w, R=layer.kernel_h, S=layer.kernel_w,
                       stride_h=layer.stride_h, stride_w=layer.stride_w,
                       dilation_h=layer.dilation_h, dilation_w=layer.dilation_w, **common)
        if op == "linear":
            return cls(N=layer.batch * layer.tokens, K=layer.out_features, C=layer.in_features, **common)
        if op == "matmul":
            # heads (and, for an activation B, images) are groups: each has its own B matrix, so
            # B is indexed by G like a grouped conv's weights; a weight B is shared by the batch
            if getattr(layer, "b_operand", "activation") == "weight":
                return cls(N=layer.batch, G=layer.heads, P=layer.m, K=layer.n, C=layer.k, **common)
            return cls(N=1, G=layer.batch * layer.heads, P=layer.m, K=layer.n, C=layer.k, **common)
        raise ConfigError(f"layer op {op!r} has no loop-nest mapping (conv2d, linear, matmul only)",
                          source=getattr(layer, "name", "layer"))


@dataclass(frozen=True)
class Loop:
    """One loop: ``dim`` iterated ``size`` times."""

    dim: str
    size: int

    def __post_init__(self) -> None:
        if self.dim not in DIMS:
            raise ConfigError(f"unknown loop dimension {self.dim!r} (one of {', '.join(DIMS)})", source="mapping")
        if int(self.size) < 1:
            raise ConfigError(f"loop {self.dim} has size {self.size} < 1", source="mapping")

    def __str__(self) -> str:
        return f"{self.dim} {self.size}"


@dataclass(frozen=True)
class SpatialUnroll:
    """Loops unrolled on one array dimension (product <= the dimension's size)."""

    array_dim: str
    loops: tuple[Loop, ...]

    @property
    def size(self) -> int:
        return prod(lp.size for lp in self.loops)

    def __str__(self) -> str:
        return f"{self.array_dim}: " + (", ".join(str(lp) for lp in self.loops) or "-")


def _loops(items: Iterable) -> tuple[Loop, ...]:
    out = []
    for it in items:
        out.append(it if isinstance(it, Loop) else Loop(str(it[0]), int(it[1])))
    return tuple(out)


@dataclass(frozen=True)
class Mapping:
    """Spatial unrolling + one temporal nest (innermost first) split into levels per operand.

    ``level_counts[operand]`` (stored as a tuple of ``(operand, counts)`` pairs to stay hashable)
    gives how many consecutive temporal loops, innermost first, each memory level holding the
    operand keeps; it has one entry per such level and sums to ``len(temporal)``.
    """

    spatial: tuple[SpatialUnroll, ...]
    temporal: tuple[Loop, ...]
    level_counts: tuple[tuple[str, tuple[int, ...]], ...]
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        ops = [op for op, _ in self.level_counts]
        if sorted(ops) != sorted(OPERANDS):
            raise ConfigError(f"level_counts must give W, I and O once each, got {ops}", source="mapping")
        for op, counts in self.level_counts:
            if any(c < 0 for c in counts) or sum(counts) != len(self.temporal):
                raise ConfigError(f"operand {op}: level loop counts {counts} do not sum to the "
                                  f"{len(self.temporal)} temporal loops", source="mapping")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_levels(cls, spatial: _MappingT[str, Sequence] | Sequence[SpatialUnroll],
                    per_operand: _MappingT[str, Sequence[Sequence]], name: str = "") -> "Mapping":
        """From ZigZag-like per-operand level lists (each a list of loops, innermost first).

        All operands must describe the same loop order; only the level boundaries differ.
        ``spatial`` is ``{array_dim: [(dim, size), ...]}`` or a sequence of SpatialUnroll.
        """
        if isinstance(spatial, dict) or hasattr(spatial, "items"):
            sp = tuple(SpatialUnroll(str(ad), _loops(lps)) for ad, lps in spatial.items())
        else:
            sp = tuple(spatial)
        order: tuple[Loop, ...] | None = None
        counts = []
        for op in OPERANDS:
            if op not in per_operand:
                raise ConfigError(f"temporal mapping has no entry for operand {op}", source="mapping")
            levels = [_loops(lv) for lv in per_operand[op]]
            flat = tuple(lp for lv in levels for lp in lv)
            if order is None:
                order = flat
            elif flat != order:
                raise ConfigError(f"operand {op}'s temporal loops differ from the other operands' order",
                                  source="mapping")
            counts.append((op, tuple(len(lv) for lv in levels)))
        return cls(sp, order or (), tuple(counts), name)

    # ------------------------------------------------------------------ queries
    def counts(self, operand: str) -> tuple[int, ...]:
        for op, c in self.level_counts:
            if op == operand:
                return c
        raise KeyError(operand)

    def levels(self, operand: str) -> tuple[tuple[Loop, ...], ...]:
        """Temporal loops per memory level of ``operand``, innermost level first."""
        out, i = [], 0
        for c in self.counts(operand):
            out.append(self.temporal[i:i + c])
            i += c
        return tuple(out)

    def spatial_factor(self, dim: str) -> int:
        return prod(lp.size for su in self.spatial for lp in su.loops if lp.dim == dim)

    def temporal_factor(self, dim: str) -> int:
        return prod(lp.size for lp in self.temporal if lp.dim == dim)

    @property
    def spatial_size(self) -> int:
        """MAC units used per cycle."""
        return prod(su.size for su in self.spatial)

    @property
    def temporal_cycles(self) -> int:
        """Ideal temporal cycles: product of all temporal loops."""
        return prod(lp.size for lp in self.temporal)

    def spatial_on(self, array_dim: str) -> tuple[Loop, ...]:
        for su in self.spatial:
            if su.array_dim == array_dim:
                return su.loops
        return ()

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        sp = "; ".join(str(su) for su in self.spatial if su.loops) or "none"
        lines = [f"spatial {sp}"]
        for op in OPERANDS:
            lv = self.levels(op)
            lines.append(f"{op}: " + " | ".join("[" + ", ".join(str(lp) for lp in lvl) + "]" for lvl in lv))
        return "\n".join(lines)

    def loop_nest(self) -> str:
        """The nest outermost first, one loop per line, like ZigZag's printed temporal mapping."""
        lines = []
        for lp in reversed(self.temporal):
            lines.append(f"for {lp.dim} in [0, {lp.size})")
        lines.append("  parfor " + ", ".join(f"{lp.dim} {lp.size} ({su.array_dim})" for su in self.spatial for lp in su.loops))
        return "\n".join(lines)

    def short(self) -> str:
        """One line, for report columns: spatial / temporal innermost first."""
        sp = ",".join(f"{lp.dim}{lp.size}" for su in self.spatial for lp in su.loops)
        tm = ",".join(f"{lp.dim}{lp.size}" for lp in self.temporal)
        return f"sp[{sp}] tm[{tm}]"


def validate(layer: LayerDims, mapping: Mapping, hierarchy=None, *, source: str = "mapping") -> None:
    """Raise ConfigError unless ``mapping`` covers ``layer`` (and matches ``hierarchy``'s shape).

    Checks: every dimension's spatial x temporal product covers its bound without a redundant
    loop; each array dimension's unrolling fits its size; per operand, one level count per
    memory level holding it. Whether each level's tile fits its capacity needs tile sizes, so it
    is :func:`accelsim.mapping.cost.validate` (this check plus capacities).
    """
    for d in DIMS:
        bound = layer.size(d)
        factors = [lp.size for su in mapping.spatial for lp in su.loops if lp.dim == d]
        factors += [lp.size for lp in mapping.temporal if lp.dim == d]
        total = prod(factors)
        if total < bound:
            raise ConfigError(f"loops over {d} cover {total} < layer bound {bound}", source=source, field=d)
        if total > bound and any(total // f >= bound for f in factors if f > 1):
            raise ConfigError(f"loops over {d} cover {total}, more than the bound {bound} needs (a redundant loop)",
                              source=source, field=d)
    if hierarchy is None:
        return
    arr = {ad.name: ad.size for ad in hierarchy.array.dimensions}
    for su in mapping.spatial:
        if su.array_dim not in arr:
            raise ConfigError(f"unknown array dimension {su.array_dim}", source=source, field="spatial")
        if su.size > arr[su.array_dim]:
            raise ConfigError(f"unrolling {su.size} exceeds array dimension {su.array_dim} of size {arr[su.array_dim]}",
                              source=source, field="spatial")
    for op in OPERANDS:
        nlev = len(hierarchy.levels(op))
        if len(mapping.counts(op)) != nlev:
            raise ConfigError(f"operand {op}: {len(mapping.counts(op))} temporal levels given, hierarchy has {nlev}",
                              source=source, field=f"temporal.{op}")

__all__ = [
    "DIMS", "OPERANDS", "ZIGZAG_DIMS", "ACCELSIM_TO_ZIGZAG", "RELEVANT", "REDUCTION", "is_relevant",
    "LayerDims", "Loop", "SpatialUnroll", "Mapping", "validate",
]
