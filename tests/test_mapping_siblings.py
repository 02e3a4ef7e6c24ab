"""One mapping search shared by hierarchy variants that differ only in memory prices and port
bandwidths (a DRAM-bandwidth sweep): the compiled evaluator prices all variants in one pass and
``search_layer(..., siblings=...)`` gives each variant exactly its own search's result."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _mapper_fixtures import tpu_like  # noqa: E402

from accelsim.mapping import search as S  # noqa: E402
from accelsim.mapping.fast import FastEvaluator, variant_compatible  # noqa: E402
from accelsim.mapping.ir import LayerDims  # noqa: E402


def _hier():
    return tpu_like(4, 4, sram_bits=2048, rf_w_bits=128, rf_o_bits=32)


def _variant(hier, dram_bits: int, price: float = 1.0, sram_bits: int | None = None):
    """``hier`` with the DRAM ports at ``dram_bits`` bits per cycle (minimum capped), DRAM prices
    x ``price`` (and the SRAM ports at ``sram_bits``)."""
    data = hier.model_dump()
    for m in data["memories"]:
        width = dram_bits if m["name"] == "dram" else sram_bits if m["name"].startswith("sram") else None
        if width is not None:
            for p in m["ports"]:
                p["bandwidth_min_bits"] = min(p["bandwidth_min_bits"], width)
                p["bandwidth_max_bits"] = width
        if m["name"] == "dram":
            m["read_pj"] *= price
            m["write_pj"] *= price
    return type(hier).model_validate(data)


def _random_layer(rng: random.Random, i: int) -> LayerDims:
    s = rng.choice((1, 1, 2))
    return LayerDims(N=rng.choice((1, 1, 2)), K=rng.randint(2, 12), C=rng.randint(2, 12), P=rng.randint(1, 6),
                     Q=rng.randint(1, 6), R=rng.choice((1, 3)), S=rng.choice((1, 2, 3)), stride_h=s, stride_w=s,
                     name=f"rand{i}")


LAYERS = [_random_layer(random.Random(7), i) for i in range(4)] + [
    LayerDims(K=8, C=6, P=3, Q=2, R=3, S=1, name="conv_small"), LayerDims(N=4, K=10, C=12, name="gemm")]
SIBLING_SETS = [(8, 64, 512), (16, 17), (32, (32, 3.0), (8, 0.5))]


def _hiers(spec):
    base = _hier()
    return [_variant(base, *(s if isinstance(s, tuple) else (s,))) for s in spec]


def test_variant_batch_equals_separate_batches():
    """Every row of a multi-variant batch == that variant's own batch (==, incl. inf rows)."""
    layer = LAYERS[4]
    hs = _hiers((8, 64, (512, 2.5), 1))
    fe = FastEvaluator(layer, hs[0], variants=hs[1:])
    singles = [FastEvaluator(layer, h) for h in hs]
    n_rows = 0
    for sp in S.spatial_candidates(layer, hs[0])[:6]:
        od = S._order_arrays(S._problem(layer, hs[0], sp), S._loop_factors(tuple(S._trips(layer, sp).items()), 6),
                             False)
        if not len(od.rank):
            continue
        e, lat = fe.batch_variants(sp, od.tm_dims, od.tm_sizes, od.n_tm, od.counts)
        assert e.shape == (len(hs), len(od.rank))
        for v, one in enumerate(singles):
            e1, l1 = one.batch(sp, od.tm_dims, od.tm_sizes, od.n_tm, od.counts)
            assert np.array_equal(e[v], e1) and np.array_equal(lat[v], l1)
        n_rows += len(od.rank)
    assert n_rows > 50
    # the variants really differ (latency through the DRAM bandwidth, energy through its price)
    assert not np.array_equal(lat[0], lat[1]) and not np.array_equal(e[1], e[2])


def test_compatibility():
    base = _hier()
    assert variant_compatible(base, _variant(base, 8, 2.0))
    assert not variant_compatible(base, tpu_like(4, 4, sram_bits=4096, rf_w_bits=128, rf_o_bits=32))
    assert not variant_compatible(base, tpu_like(4, 8, sram_bits=2048, rf_w_bits=128, rf_o_bits=32))


def _same(a: S.SearchResult, b: S.SearchResult) -> None:
    assert a.stats == b.stats
    assert [(r.key, r.mapping, r.cost) for r in a.top] == [(r.key, r.mapping, r.cost) for r in b.top]
    assert a.front == b.front
    assert a == b


@pytest.mark.parametrize("objective,tie", [("latency", 0.0), ("latency", 0.02), ("energy", 0.0), ("edp", 0.0)])
def test_sibling_search_equals_separate_searches(objective, tie):
    """Each sibling's result (stored in the cache under its own key) == its own search; later calls hit."""
    for li, layer in enumerate(LAYERS):
        for spec in SIBLING_SETS:
            hs = _hiers(spec)
            kw = dict(objective=objective, latency_tie_share=tie, top_k=(1, 3)[li % 2], max_spatial=4,
                      hint={"D1": ["K", "P", "N"], "D2": ["C", "R", "Q"]} if li % 3 else None)
            refs = [S.search_layer(layer, h, cache=None, **kw) for h in hs]
            cache = S.MappingCache()
            got = S.search_layer(layer, hs[0], cache=cache, siblings=hs[1:], **kw)
            _same(got, refs[0])
            assert cache.misses == len(hs) and len(cache.results) == len(hs)
            for h, ref in zip(hs[1:], refs[1:]):
                hit = S.search_layer(layer, h, cache=cache, **kw)
                assert hit.cached
                _same(S.replace(hit, cached=False), ref)
            assert cache.hits == len(hs) - 1


def test_sibling_bound_stops_each_variant_on_its_own():
    """A 1-bit DRAM port makes every mapping slow: its bound stops later than the wide one's."""
    layer = LayerDims(K=8, C=8, P=6, Q=6, R=3, S=3, name="bw")
    hs = _hiers((4096, 1))
    kw = dict(objective="latency", hint={"D1": ["K", "P"], "D2": ["C", "R"]}, top_k=1, max_spatial=None)
    refs = [S.search_layer(layer, h, cache=None, **kw) for h in hs]
    assert refs[0].stats.spatial_searched != refs[1].stats.spatial_searched
    cache = S.MappingCache()
    _same(S.search_layer(layer, hs[1], cache=cache, siblings=hs[:1], **kw), refs[1])
    _same(S.replace(S.search_layer(layer, hs[0], cache=cache, **kw), cached=False), refs[0])


def test_incompatible_or_cached_siblings():
    """An incompatible sibling is searched on its own (still cached); a cached main still fills siblings."""
    layer = LAYERS[4]
    base = _hier()
    other = tpu_like(4, 4, sram_bits=4096, rf_w_bits=128, rf_o_bits=32)
    wide = _variant(base, 512)
    cache = S.MappingCache()
    first = S.search_layer(layer, base, cache=cache, top_k=2)
    again = S.search_layer(layer, base, cache=cache, top_k=2, siblings=[other, wide, base])
    assert again.cached and S.replace(again, cached=False) == first
    for h in (other, wide):
        _same(S.replace(S.search_layer(layer, h, cache=cache, top_k=2), cached=False),
              S.search_layer(layer, h, cache=None, top_k=2))
    assert len(cache.results) == 3
