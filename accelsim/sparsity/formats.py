"""Storage formats of a sparse tile: payload and metadata bits (Sparseloop's format vocabulary).

A format encodes a tile of ``size`` elements holding ``k`` non-zeros of ``value_bits`` each.
Bits per tile (``k`` non-zeros; ``ceil(log2 x)`` written ``lg x``, at least 1 bit):

- ``uncompressed``: ``size x value_bits``, no metadata;
- ``bitmask``: ``k x value_bits`` payload + ``size`` bits of mask (one per element);
- ``run_length``: ``k x value_bits`` payload + ``k x run_bits`` runs (zeros before each
  non-zero), plus one padding entry (a zero value with a full run) each time a run of zeros
  reaches ``2^run_bits - 1`` before the next non-zero (counted exactly from a mask when one is
  given, else its exact expectation for ``k`` uniformly placed non-zeros);
- ``coordinate_payload`` (COO): ``k x (value_bits + lg size)``;
- ``csr`` over ``rows`` rows of ``size / rows`` elements: ``k x (value_bits + lg cols)`` +
  ``(rows + 1) x lg(size + 1)`` row pointers.

Expected bits under a density model are ``sum_k P(k) bits(k)``
(:func:`expected_format_bits`). Metadata counts as traffic and as storage wherever the tile
moves or sits; decoding costs are the engine's business.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2

import numpy as np

from ..errors import ConfigError
from .density import DensityModel

FORMATS = ("uncompressed", "bitmask", "run_length", "coordinate_payload", "csr")


def _lg(x: float) -> int:
    return max(1, ceil(log2(max(x, 2))))


@dataclass(frozen=True)
class FormatCost:
    """Bits of one tile in a format."""

    payload_bits: float
    metadata_bits: float

    @property
    def total_bits(self) -> float:
        return self.payload_bits + self.metadata_bits


def _rle_padding_exact(size: int, k: int, cap: int) -> float:
    """E[padding entries] for ``k`` non-zeros placed uniformly among ``size`` elements: the
    ``k + 1`` zero runs (before each non-zero, and trailing) are exchangeable, one run is at
    least ``j`` long with probability ``C(size - j, k) / C(size, k)``, and a run of ``L`` zeros
    needs ``floor(L / cap)`` padding entries, so ``E = (k + 1) sum_{m>=1} P(L >= m cap)``."""
    if k >= size:
        return 0.0
    from math import lgamma

    def log_comb(n: int, r: int) -> float:
        return lgamma(n + 1) - lgamma(r + 1) - lgamma(n - r + 1)

    base = log_comb(size, k)
    total, m = 0.0, 1
    while size - m * cap >= k:
        total += np.exp(log_comb(size - m * cap, k) - base)
        m += 1
    return (k + 1) * float(total)


def _rle_padding_uniform(size: int, k: float, run_bits: int) -> float:
    """:func:`_rle_padding_exact`, linear between the neighbouring integers for a fractional
    (expected) ``k``."""
    cap = 2 ** run_bits - 1
    lo = int(np.floor(k))
    frac = k - lo
    pad = _rle_padding_exact(size, lo, cap)
    return pad if frac == 0 else (1 - frac) * pad + frac * _rle_padding_exact(size, lo + 1, cap)


def rle_padding_from_mask(row: np.ndarray, run_bits: int) -> int:
    """Exact padding entries of run-length coding one mask row."""
    cap = 2 ** run_bits - 1
    nz = np.flatnonzero(np.asarray(row) != 0)
    gaps = np.diff(np.concatenate([[-1], nz, [len(row)]])) - 1  # zeros before each non-zero, and trailing
    return int(np.sum(gaps // cap))


def format_cost(fmt: str, size: int, nnz: float, value_bits: int, *, rows: int = 1, run_bits: int = 4,
                padding: float | None = None) -> FormatCost:
    """Bits of a tile of ``size`` elements with ``nnz`` non-zeros in format ``fmt``
    (``padding``: run-length padding entries if known, else the uniform expectation)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown storage format {fmt!r} (expected one of {', '.join(FORMATS)})", field="format")
    if size < 1 or not (0 <= nnz <= size):
        raise ConfigError(f"a tile of {size} elements cannot hold {nnz} non-zeros", field="format")
    vb = int(value_bits)
    if fmt == "uncompressed":
        return FormatCost(size * vb, 0.0)
    if fmt == "bitmask":
        return FormatCost(nnz * vb, float(size))
    if fmt == "run_length":
        pad = _rle_padding_uniform(size, nnz, run_bits) if padding is None else padding
        return FormatCost((nnz + pad) * vb, (nnz + pad) * run_bits)
    if fmt == "coordinate_payload":
        return FormatCost(nnz * vb, nnz * _lg(size))
    cols = max(1, size // max(1, rows))
    return FormatCost(nnz * vb, nnz * _lg(cols) + (rows + 1) * _lg(size + 1))


def expected_format_bits(fmt: str, model: DensityModel, tile: int, value_bits: int, *, rows: int = 1,
                         run_bits: int = 4) -> FormatCost:
    """E[bits of a tile] in ``fmt`` when its occupancy follows ``model``."""
    pmf = model.occupancy_pmf(tile)
    pay = meta = 0.0
    for k, p in enumerate(pmf):
        if p <= 1e-15:  # negligible (the hypergeometric tails underflow far below this)
            continue
        c = format_cost(fmt, tile, k, value_bits, rows=rows, run_bits=run_bits)
        pay += p * c.payload_bits
        meta += p * c.metadata_bits
    return FormatCost(pay, meta)
