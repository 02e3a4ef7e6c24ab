"""Density models: how many non-zeros a tile of a tensor holds (Sparseloop's density models).

A model answers, for a tile of ``tile`` elements cut from the tensor, the distribution of its
non-zero count (:meth:`DensityModel.occupancy_pmf`), from which everything an engine needs
follows: expected non-zeros (effectual work), the probability that a tile is empty (what a
skip saves), the expected maximum over ``n`` tiles processed in lock-step (load imbalance), and
the expected metadata of a storage format (:mod:`.formats`).

- :class:`Uniform` — ``nnz = round(density x size)`` non-zeros placed uniformly at random among
  the ``size`` elements. A tile of ``t`` elements then holds a **hypergeometric** number of
  non-zeros (drawing ``t`` of ``size`` without replacement), exact for one tile. For the maximum
  over several tiles the tiles are treated as independent draws (exact as ``size`` grows; a
  slight over-estimate of the spread for tiles covering much of the tensor) — stated, tested
  against Monte-Carlo.
- :class:`Structured` — N:M, block or channel pruning: every aligned group keeps a fixed count,
  so occupancy is deterministic once tiles align with groups (``tile`` a multiple of the group);
  unaligned tiles fall back to the uniform model of the same density (stated).
- :class:`Actual` — a real 0/1 mask: occupancy counted over the tiles of the mask cut along its
  last axis (row-major, the GEMM view's reduction axis), the distribution is the histogram.

Assumptions: a tile is a set of ``tile`` elements of one tensor (its shape does not matter for
the uniform model); densities are in (0, 1]; the uniform model rounds ``density x size`` to the
nearest integer (at least one non-zero).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import ConfigError


class DensityModel(ABC):
    """Distribution of the non-zero count of a tile of a tensor."""

    density: float

    @abstractmethod
    def occupancy_pmf(self, tile: int) -> np.ndarray:
        """P(a tile of ``tile`` elements holds k non-zeros), k = 0..tile."""

    def expected_nnz(self, tile: int) -> float:
        pmf = self.occupancy_pmf(tile)
        return float(np.dot(np.arange(pmf.size), pmf))

    def prob_empty(self, tile: int) -> float:
        """P(a tile holds no non-zero): the fraction of tiles a skip can elide."""
        return float(self.occupancy_pmf(tile)[0])

    def expected_max_nnz(self, tile: int, n: int) -> float:
        """E[max non-zeros over ``n`` tiles processed in lock-step] (independent tiles)."""
        if n <= 0 or tile <= 0:
            return 0.0
        cdf = np.cumsum(self.occupancy_pmf(tile))
        cdf = np.minimum(cdf, 1.0)
        # E[max] = sum_{k>=0} P(max > k) = sum_k (1 - F(k)^n)
        return float(np.sum(1.0 - cdf[:-1] ** n))

    def expected(self, tile: int, f) -> float:  # type: ignore[no-untyped-def]
        """E[f(k)] over the occupancy of a tile (``f`` vectorised over k = 0..tile)."""
        pmf = self.occupancy_pmf(tile)
        return float(np.dot(np.asarray(f(np.arange(pmf.size)), dtype=float), pmf))


def _check_density(density: float, where: str) -> float:
    d = float(density)
    if not (0.0 < d <= 1.0) or d != d:
        raise ConfigError(f"density must be in (0, 1], got {density!r}", source=where, field="density")
    return d


@lru_cache(maxsize=16384)
def _hypergeom_pmf(size: int, nnz: int, tile: int) -> np.ndarray:
    """P(k non-zeros in a tile of ``tile`` drawn from ``size`` elements holding ``nnz``), k = 0..tile:
    ``C(nnz, k) C(size - nnz, tile - k) / C(size, tile)`` in log-gamma form (scipy's ``hypergeom``
    gives the same to ~1e-12 and is ~100x slower)."""
    from scipy.special import gammaln

    k = np.arange(tile + 1, dtype=np.float64)
    ok = (k <= nnz) & (tile - k <= size - nnz)
    kk = np.where(ok, k, 0.0)

    def lcomb(n: float, r: np.ndarray) -> np.ndarray:
        return gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)

    logp = lcomb(nnz, kk) + lcomb(size - nnz, tile - kk) - lcomb(size, np.array(float(tile)))
    pmf = np.where(ok, np.exp(logp), 0.0)
    pmf /= pmf.sum()
    pmf.flags.writeable = False  # cached and shared: callers must not modify it
    return pmf


@dataclass(frozen=True)
class Uniform(DensityModel):
    """``round(density x size)`` non-zeros uniformly at random among ``size`` elements."""

    density: float
    size: int

    def __post_init__(self) -> None:
        _check_density(self.density, "uniform density model")
        if int(self.size) < 1:
            raise ConfigError(f"tensor size must be >= 1, got {self.size!r}", source="uniform density model", field="size")

    @property
    def nnz(self) -> int:
        return max(1, int(round(self.density * self.size)))

    def occupancy_pmf(self, tile: int) -> np.ndarray:
        t = min(int(tile), int(self.size))
        pmf = np.asarray(_hypergeom_pmf(int(self.size), self.nnz, t))
        if t < tile:  # a tile larger than the tensor holds the whole tensor
            pmf = np.concatenate([pmf, np.zeros(int(tile) - t)])
        return pmf


@dataclass(frozen=True)
class Structured(DensityModel):
    """A fixed count ``keep`` per aligned group of ``group`` elements (N:M: keep=N, group=M;
    block/channel pruning: group = the block or channel size, keep = group or 0 by fraction)."""

    keep: int
    group: int
    size: int

    @property
    def density(self) -> float:  # type: ignore[override]
        return self.keep / self.group

    def __post_init__(self) -> None:
        if not (0 < int(self.keep) <= int(self.group)):
            raise ConfigError(f"structured model needs 0 < keep <= group, got {self.keep}:{self.group}",
                              source="structured density model", field="keep")

    def occupancy_pmf(self, tile: int) -> np.ndarray:
        tile = int(tile)
        pmf = np.zeros(tile + 1)
        if tile % self.group == 0:  # aligned: every group contributes exactly `keep`
            pmf[tile // self.group * self.keep] = 1.0
            return pmf
        return Uniform(self.density, max(int(self.size), tile)).occupancy_pmf(tile)


@dataclass(frozen=True)
class Actual(DensityModel):
    """A real 0/1 mask; tiles are consecutive runs of ``tile`` elements along its last axis
    (row-major), a row's last partial tile counted at its true size."""

    mask: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.size == 0:
            raise ConfigError("mask is empty", source="actual density model", field="mask")
        object.__setattr__(self, "mask", (m != 0).reshape(-1, m.shape[-1]) if m.ndim else (m != 0).reshape(1, 1))

    @property
    def density(self) -> float:  # type: ignore[override]
        return float(self.mask.mean())

    def tile_counts(self, tile: int) -> np.ndarray:
        """Non-zeros of every full tile (rows split into ``tile``-element runs; a ragged last run
        of a row is left out so every count is over ``tile`` elements)."""
        rows, cols = self.mask.shape
        tile = int(tile)
        if tile <= cols:
            full = cols // tile
            return self.mask[:, :full * tile].reshape(rows, full, tile).sum(axis=2).ravel()
        flat = self.mask.ravel()  # tiles spanning rows: cut the flattened tensor
        full = flat.size // tile
        return flat[:full * tile].reshape(full, tile).sum(axis=1)

    def occupancy_pmf(self, tile: int) -> np.ndarray:
        counts = self.tile_counts(tile)
        if counts.size == 0:  # the tensor is smaller than one tile: the whole tensor
            pmf = np.zeros(int(tile) + 1)
            pmf[int(self.mask.sum())] = 1.0
            return pmf
        return np.bincount(counts, minlength=int(tile) + 1)[: int(tile) + 1] / counts.size


def density_model(density: float | None = None, *, size: int | None = None, mask: np.ndarray | None = None,
                  n: int | None = None, m: int | None = None) -> DensityModel:
    """The model a tensor's description implies: its mask if given (``actual``), else N:M
    (``structured``), else ``uniform(density)`` over ``size`` elements."""
    if mask is not None:
        return Actual(mask)
    if n and m:
        return Structured(int(n), int(m), int(size or m))
    if density is None or size is None:
        raise ConfigError("a density model needs a mask, n:m, or density and size", source="density model")
    return Uniform(float(density), int(size))
