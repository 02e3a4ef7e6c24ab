"""Density models and storage formats (issue 14): hand-computed cases, Monte-Carlo over random
masks, and the statistical path against the actual-mask path."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest

from accelsim.errors import ConfigError
from accelsim.sparsity import (Actual, Structured, Uniform, density_model, expected_format_bits, format_cost,
                               rle_padding_from_mask)


def _random_mask(rng, rows, cols, density):
    """Exactly round(density x size) non-zeros, uniformly placed (the uniform model's premise)."""
    size = rows * cols
    flat = np.zeros(size, dtype=np.uint8)
    flat[rng.choice(size, max(1, round(density * size)), replace=False)] = 1
    return flat.reshape(rows, cols)


def test_hypergeometric_occupancy_by_hand():
    u = Uniform(0.3, 10)  # 3 non-zeros among 10 elements
    pmf = u.occupancy_pmf(4)
    assert pmf[0] == pytest.approx(comb(7, 4) / comb(10, 4))          # 35/210
    assert pmf[3] == pytest.approx(comb(3, 3) * comb(7, 1) / comb(10, 4))
    assert pmf.sum() == pytest.approx(1.0)
    assert u.expected_nnz(4) == pytest.approx(4 * 3 / 10)
    assert Uniform(1.0, 10).prob_empty(3) == 0.0


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_uniform_model_matches_monte_carlo(density):
    rng = np.random.default_rng(int(density * 100))
    rows, cols, tile = 64, 128, 16
    u = Uniform(density, rows * cols)
    counts = np.concatenate([Actual(_random_mask(rng, rows, cols, density)).tile_counts(tile) for _ in range(40)])
    hist = np.bincount(counts, minlength=tile + 1) / counts.size
    assert 0.5 * np.abs(hist - u.occupancy_pmf(tile)).sum() < 0.02  # total variation
    assert counts.mean() == pytest.approx(u.expected_nnz(tile), rel=0.01)
    # lock-step maximum over 8 tiles (load imbalance)
    groups = counts[: counts.size // 8 * 8].reshape(-1, 8).max(axis=1)
    assert groups.mean() == pytest.approx(u.expected_max_nnz(tile, 8), rel=0.02)


@pytest.mark.parametrize("density", [0.1, 0.25, 0.5, 0.75, 0.9])
def test_statistical_and_actual_mask_paths_agree(density):
    """Issue 14's bar: the two paths within 2% on random masks at densities 0.1-0.9."""
    rng = np.random.default_rng(7)
    mask = _random_mask(rng, 256, 256, density)
    a, u = Actual(mask), Uniform(density, mask.size)
    for tile in (4, 16, 64):
        assert a.expected_nnz(tile) == pytest.approx(u.expected_nnz(tile), rel=0.02)
        assert a.expected_max_nnz(tile, 16) == pytest.approx(u.expected_max_nnz(tile, 16), rel=0.02)
        assert abs(a.prob_empty(tile) - u.prob_empty(tile)) < 0.02
        for fmt in ("bitmask", "coordinate_payload", "csr"):
            assert (expected_format_bits(fmt, a, tile, 8).total_bits
                    == pytest.approx(expected_format_bits(fmt, u, tile, 8).total_bits, rel=0.02))


def test_structured_nm_is_deterministic_when_aligned_and_matches_a_real_mask():
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 64), dtype=np.uint8)
    for r in range(32):
        for g in range(16):
            mask[r, 4 * g + rng.choice(4, 2, replace=False)] = 1  # 2:4
    s, a = Structured(2, 4, mask.size), Actual(mask)
    assert s.density == 0.5
    for tile in (4, 8, 16):
        assert s.expected_nnz(tile) == a.expected_nnz(tile) == tile / 2
        assert s.expected_max_nnz(tile, 8) == pytest.approx(tile / 2)
        np.testing.assert_allclose(s.occupancy_pmf(tile), a.occupancy_pmf(tile))
    assert s.prob_empty(4) == 0.0
    assert density_model(n=2, m=4, size=64) == Structured(2, 4, 64)
    assert isinstance(density_model(mask=mask), Actual)
    assert density_model(0.5, size=100) == Uniform(0.5, 100)


def test_format_bits_by_hand():
    # a 16-element tile with 4 non-zeros of 8 bits
    assert format_cost("uncompressed", 16, 4, 8).total_bits == 128
    bm = format_cost("bitmask", 16, 4, 8)
    assert (bm.payload_bits, bm.metadata_bits) == (32, 16)
    coo = format_cost("coordinate_payload", 16, 4, 8)
    assert (coo.payload_bits, coo.metadata_bits) == (32, 4 * 4)
    csr = format_cost("csr", 16, 4, 8, rows=2)  # 2 rows of 8: column index 3 bits, 3 pointers of lg(17)=5 bits
    assert (csr.payload_bits, csr.metadata_bits) == (32, 4 * 3 + 3 * 5)
    rle = format_cost("run_length", 16, 4, 8, run_bits=4, padding=0)
    assert (rle.payload_bits, rle.metadata_bits) == (32, 16)
    # run-length padding counted exactly from a row: 20 zeros then a 1 with 2-bit runs (cap 3)
    row = np.zeros(21, dtype=np.uint8)
    row[-1] = 1
    assert rle_padding_from_mask(row, 2) == 20 // 3


@pytest.mark.parametrize("density", [0.1, 0.3, 0.6])
def test_run_length_padding_expectation_matches_masks(density):
    rng = np.random.default_rng(3)
    tile, run_bits = 64, 2
    rows = [r for _ in range(30) for r in _random_mask(rng, 64, tile, density)]
    exact = np.mean([rle_padding_from_mask(r, run_bits) for r in rows])
    k = np.mean([int(r.sum()) for r in rows])
    model = format_cost("run_length", tile, k, 8, run_bits=run_bits)
    assert model.metadata_bits / run_bits - k == pytest.approx(exact, rel=0.05, abs=0.05)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="density"):
        Uniform(0.0, 10)
    with pytest.raises(ConfigError, match="density"):
        Uniform(float("nan"), 10)
    with pytest.raises(ConfigError, match="keep"):
        Structured(5, 4, 16)
    with pytest.raises(ConfigError, match="format"):
        format_cost("zip", 16, 4, 8)
    with pytest.raises(ConfigError, match="cannot hold"):
        format_cost("bitmask", 16, 20, 8)
    with pytest.raises(ConfigError, match="empty"):
        Actual(np.zeros((0, 4)))
