"""Shared lowering: the encoders expand to their input; the closed-form fold mapping equals a
fold-by-fold walk (the implementation before issue #11, kept here as the reference)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from accelsim.engines.lowering import (compress_periodic, compress_periodic_arrays, compress_runs, compress_runs_arrays,
                                       compress_sequence, node_cycles, stream_tiles)
from accelsim.engines.systolic.folds import GemmLowering, OperandBits, fold_plan
from accelsim.hardware import hardware_from_dict
from accelsim.stats import Repeat, Tile, iter_tiles, split_tile
from accelsim.workload.layer import Conv2d, Gemm, Linear, ceil_div


def _random_tiles(rng: random.Random, n: int) -> list[Tile]:
    alphabet = [Tile(rng.randrange(0, 50), rng.randrange(1, 9), rng.randrange(0, 3)) for _ in range(rng.randrange(1, 4))]
    period = [rng.choice(alphabet) for _ in range(rng.randrange(1, 6))]
    out: list[Tile] = []
    while len(out) < n:
        out.extend(period if rng.random() < 0.8 else [rng.choice(alphabet)])
    return out[:n]


@pytest.mark.parametrize("seed", range(40))
def test_encoders_expand_to_their_input(seed):
    rng = random.Random(seed)
    tiles = _random_tiles(rng, rng.randrange(0, 120))
    cols = [[t.load_bits for t in tiles], [t.compute_cycles for t in tiles], [t.store_bits for t in tiles]]
    assert list(iter_tiles(compress_runs(tiles))) == tiles
    assert compress_runs_arrays(*cols) == compress_runs(tiles)
    periodic = compress_periodic_arrays(*cols, max_period=8)
    assert list(iter_tiles(periodic)) == tiles
    assert periodic == tuple(compress_periodic([(t,) for t in tiles], max_period=8))  # same greedy choice
    assert sum(node_cycles(n) for n in periodic) == sum(t.compute_cycles for t in tiles)
    blocks = [tuple(tiles[:3])] * 4 + [tuple(tiles[3:5])]
    assert list(iter_tiles(compress_sequence(blocks))) == [t for b in blocks for t in b]


def test_periodic_pattern_becomes_one_repeat():
    a, b = Tile(5, 2, 0), Tile(1, 2, 0)
    tiles = ([a] + [b] * 6) * 9
    nodes = compress_periodic_arrays([t.load_bits for t in tiles], [2] * len(tiles), [0] * len(tiles))
    assert nodes == (Repeat((a, Repeat((b,), 6)), 9),)


def test_stream_tiles_keep_totals():
    for spread in (False, True):
        tiles = stream_tiles(1001, 37, 55, 8, spread_stores=spread)
        assert len(tiles) == 8
        assert sum(t.load_bits for t in tiles) == 1001 and sum(t.compute_cycles for t in tiles) == 37
        assert sum(t.store_bits for t in tiles) == 55
    assert len(stream_tiles(1001, 3, 55, 8)) == 3  # never more tiles than cycles


def _reference_tiles(low: GemmLowering) -> tuple[list[Tile], tuple[int, ...]]:
    """Fold-by-fold walk of the dense mapping (one Python iteration per fold)."""
    g, p, hw, bits = low.g, low.plan, low.hw, low.bits
    df = hw.dataflow
    cap_a, cap_b, cap_c = low.cap_a, low.cap_b, low.cap_c
    a_res = g.a_unique * bits.a <= cap_a
    b_res = g.b_unique * bits.b <= cap_b
    tiles: list[Tile] = []
    da = db = dc = dpr = dpw = 0
    for c in range(p.col_folds):
        c0, c1 = c * hw.cols, min((c + 1) * hw.cols, p.sc)
        block = g.m * (c1 - c0) if df == "ws" else (c1 - c0) * g.n
        on_chip = df == "os" or block * bits.psum <= cap_c
        for r in range(p.row_folds):
            r0, r1 = r * hw.rows, min((r + 1) * hw.rows, p.sr)
            if df == "os":
                aw, bw_ = g.a_words_for_rows(r0, r1), g.k * (c1 - c0)
            elif df == "ws":
                aw, bw_ = g.a_unique * r1 // g.k - g.a_unique * r0 // g.k, (r1 - r0) * (c1 - c0)
            else:
                rw = g.a_words_for_rows(c0, c1)
                aw, bw_ = rw * r1 // g.k - rw * r0 // g.k, (r1 - r0) * g.n
            b_bits = bw_ * bits.b
            fa = (c == 0 or not a_res) if df in ("os", "ws") else True
            if low.b_preloaded:
                fb = False
            elif df == "os":
                fb = r == 0 or b_bits > cap_b
            elif df == "ws":
                fb = True
            else:
                fb = c == 0 or not b_res
            load = (aw * bits.a if fa else 0) + (b_bits if fb else 0)
            da += aw * bits.a if fa else 0
            db += b_bits if fb else 0
            if df == "os":
                store = (r1 - r0) * (c1 - c0) * bits.c
                dc += store
            else:
                store = 0
                if r == p.row_folds - 1:
                    store = block * bits.c
                    dc += store
                elif not on_chip:
                    store = block * bits.psum
                    dpw += store
                if r > 0 and not on_chip:
                    load += block * bits.psum
                    dpr += block * bits.psum
            parts = max(ceil_div(aw * bits.a, cap_a) if fa else 1, ceil_div(b_bits, cap_b) if fb else 1, 1)
            tiles.extend(split_tile(Tile(load, p.cycles_per_fold, store), parts))
    return tiles, (da, db, dc, dpr, dpw)


def _layers(rng: random.Random):
    yield Linear(name="fc", in_features=rng.randrange(1, 300), out_features=rng.randrange(1, 300))
    yield Conv2d(name="c", in_channels=rng.randrange(1, 40), out_channels=rng.randrange(1, 70), in_h=rng.randrange(5, 30),
                 in_w=rng.randrange(5, 30), kernel=rng.choice([1, 3, 5]), stride=rng.choice([1, 2, 3]),
                 padding=rng.choice([0, 1, 2]), batch=rng.choice([1, 2]))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_closed_form_folds_equal_a_fold_by_fold_walk(seed, df):
    rng = random.Random(seed * 7 + len(df))
    size = rng.choice([0.25, 1, 8, 64])
    hw = hardware_from_dict({"kind": "systolic", "rows": rng.choice([4, 8, 16]), "cols": rng.choice([4, 8, 32]),
                             "dataflow": df, "ifmap_sram": {"size_kb": size}, "filter_sram": {"size_kb": size},
                             "ofmap_sram": {"size_kb": rng.choice([0.25, 4])}})
    bits = OperandBits(a=8, b=rng.choice([4, 8]), c=8, psum=32)
    for layer in _layers(rng):
        for g in layer.gemms():
            for pre in (False, True):
                low = GemmLowering(g, hw, bits, b_resident_from_before=pre)
                nodes = low.tiles()
                ref, counters = _reference_tiles(GemmLowering(g, hw, bits, b_resident_from_before=pre))
                assert list(iter_tiles(nodes)) == ref
                assert (low.dram_a, low.dram_b, low.dram_c, low.dram_psum_read, low.dram_psum_write) == counters
                assert fold_plan(g, hw.rows, hw.cols, df).folds * fold_plan(g, hw.rows, hw.cols, df).cycles_per_fold \
                    == sum(t.compute_cycles for t in ref)


def test_conv_pixel_ranges_vectorised_equal_scalar():
    rng = random.Random(3)
    for _ in range(30):
        layer = Conv2d(name="c", in_channels=3, out_channels=4, in_h=rng.randrange(5, 20), in_w=rng.randrange(5, 20),
                       kernel=rng.choice([1, 2, 3]), stride=rng.choice([1, 2, 4]), padding=rng.choice([0, 1]),
                       dilation=rng.choice([1, 2]), batch=3)
        g: Gemm = layer.gemms()[0]

        lo = np.array(sorted(rng.randrange(0, g.m) for _ in range(20)))
        hi = np.minimum(lo + np.array([rng.randrange(0, 2 * g.m) for _ in range(20)]), g.m)
        assert g.a_words_for_row_ranges(lo, hi).tolist() == [g.a_words_for_rows(int(a), int(b)) for a, b in zip(lo, hi)]


def test_periodic_kernel_equals_the_python_rule():
    """compress_periodic_arrays (numba plan) picks the patterns of the plain-Python rule of
    compress_periodic (ties, short and long sequences, default and small max_period)."""
    import numpy as np

    rng = np.random.default_rng(7)
    for trial in range(1500):
        n, k = int(rng.integers(1, 40 if trial % 3 else 300)), int(rng.integers(1, 4))
        pat = rng.integers(0, k, size=(int(rng.integers(1, 9)), 3))
        rows = np.concatenate([np.tile(pat, (int(rng.integers(1, 40)), 1)), rng.integers(0, k, size=(4, 3)),
                               np.tile(pat[::-1], (int(rng.integers(1, 9)), 1))])[:n]
        if rng.random() < 0.3:
            rows = rng.integers(0, k, size=(n, 3))
        max_period = 64 if trial % 2 else int(rng.integers(1, 9))
        got = compress_periodic_arrays(rows[:, 0], rows[:, 1], rows[:, 2], max_period=max_period)
        want = tuple(compress_periodic([(Tile(*r),) for r in rows.tolist()], max_period=max_period))
        assert got == want, rows.tolist()
