"""Exact row pruning of the compiled evaluator (``fast._kernel``, ``FastEvaluator.batch_pruned``):
rows whose bound proves they cannot enter the top-k or the near-tie front are not fully priced,
and nothing the search reports changes (compared with the same search with pruning switched off,
on several layers, hierarchies, objectives, top-k, tie shares and sibling variants)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _mapper_fixtures import tpu_like  # noqa: E402

from accelsim.hardware.systolic import SystolicArray  # noqa: E402
from accelsim.mapping import fast as F  # noqa: E402
from accelsim.mapping import search as S  # noqa: E402
from accelsim.mapping.implied import implied_hierarchy  # noqa: E402
from accelsim.mapping.ir import LayerDims  # noqa: E402
from test_mapping_siblings import _variant  # noqa: E402


def _implied(rows: int, cols: int, dataflow: str, sram_kb: int = 4):
    sram = {"size_kb": sram_kb}
    return implied_hierarchy(SystolicArray(name="t", rows=rows, cols=cols, dataflow=dataflow, ifmap_sram=sram,
                                           filter_sram=sram, ofmap_sram=sram))


def _layer(rng: random.Random, i: int) -> LayerDims:
    s = rng.choice((1, 2))
    return LayerDims(N=rng.choice((1, 2)), K=rng.randint(4, 24), C=rng.randint(3, 24), P=rng.randint(2, 9),
                     Q=rng.randint(2, 9), R=rng.choice((1, 3)), S=rng.choice((1, 3)), stride_h=s, stride_w=s,
                     name=f"r{i}")


LAYERS = [_layer(random.Random(11), i) for i in range(3)] + [
    LayerDims(K=16, C=12, P=7, Q=7, R=3, S=3, in_h=9, in_w=9, name="conv"), LayerDims(N=6, K=20, C=14, name="gemm")]
HIERS = [tpu_like(4, 4, sram_bits=4096, rf_w_bits=128, rf_o_bits=32), _implied(8, 8, "os"), _implied(4, 8, "ws")]
CASES = [("latency", 0.0), ("latency", 0.005), ("latency", 0.05), ("energy", 0.0), ("edp", 0.0)]


def _unpruned(monkeypatch):
    """Row pruning off (``batch_pruned`` prices every row), all else as is."""
    monkeypatch.setattr(F, "OBJ_CODE", {"latency": 0, "energy": 0, "edp": 0})


def _reported(r: S.SearchResult):
    return ([(t.key, t.mapping, t.cost) for t in r.top], r.front, S.replace(r.stats, pruned_rows=0))


@pytest.mark.parametrize("objective,tie", CASES)
def test_search_with_row_pruning_equals_without(objective, tie, monkeypatch):
    pruned = 0
    for i, layer in enumerate(LAYERS):
        for hier in HIERS:
            kw = dict(objective=objective, latency_tie_share=tie, top_k=(1, 3)[i % 2], max_spatial=4, cache=None)
            got = S.search_layer(layer, hier, **kw)
            with monkeypatch.context() as mp:
                _unpruned(mp)
                ref = S.search_layer(layer, hier, **kw)
            assert ref.stats.pruned_rows == 0
            assert _reported(got) == _reported(ref)
            pruned += got.stats.pruned_rows
    assert pruned > 0  # the bound did skip rows


@pytest.mark.parametrize("objective,tie", [("latency", 0.005), ("energy", 0.0), ("edp", 0.0)])
def test_sibling_search_with_row_pruning_equals_separate_unpruned(objective, tie, monkeypatch):
    """Variants in one pruned batch: each equals its own unpruned search (and its own pruned one,
    stats included: a variant's pruning reads only its own state)."""
    base = HIERS[0]
    hs = [_variant(base, 8), _variant(base, 64, 3.0), _variant(base, 512, 0.5)]
    for layer in LAYERS[2:]:
        kw = dict(objective=objective, latency_tie_share=tie, top_k=2, max_spatial=4)
        cache = S.MappingCache()
        S.search_layer(layer, hs[0], cache=cache, siblings=hs[1:], **kw)
        for h in hs:
            got = S.replace(S.search_layer(layer, h, cache=cache, **kw), cached=False)
            assert got == S.search_layer(layer, h, cache=None, **kw)
            with monkeypatch.context() as mp:
                _unpruned(mp)
                ref = S.search_layer(layer, h, cache=None, **kw)
            assert _reported(got) == _reported(ref)


@pytest.mark.parametrize("objective,tie", CASES)
def test_pruned_rows_cannot_be_selected(objective, tie):
    """Kernel level, on every row of a few candidates and with prior keys: unpruned rows == the
    unpruned batch (==); each pruned row's true primary key exceeds the k-th smallest known and,
    with a tie share, its latency the tolerance of the fastest."""
    n_pruned = n_rows = 0
    for layer, hier in ((LAYERS[3], HIERS[1]), (LAYERS[4], HIERS[2]), (LAYERS[0], HIERS[0])):
        fe = F.FastEvaluator(layer, hier)
        for sp in S.spatial_candidates(layer, hier)[:3]:
            od = S._order_arrays(S._problem(layer, hier, sp), S._loop_factors(tuple(S._trips(layer, sp).items()), 6),
                                 True)
            if not len(od.rank):
                continue
            args = (sp, od.tm_dims, od.tm_sizes, od.n_tm, od.counts)
            e, lat = fe.batch(*args)
            key = {"latency": lat, "energy": e, "edp": e * lat}[objective]
            fin = np.isfinite(key)
            for k in (1, 4):
                for prior in (np.inf, float(np.median(key[fin]))):
                    kbest = np.full((1, k), np.inf)
                    kbest[0, 0] = prior
                    l_min = np.array([prior if objective == "latency" else np.inf])
                    e2, l2, pr = fe.batch_pruned(*args, None, objective, tie, kbest, l_min)
                    pr = pr[0]
                    assert np.array_equal(e2[0][~pr], e[~pr]) and np.array_equal(l2[0][~pr], lat[~pr])
                    assert np.isinf(e2[0][pr]).all() and np.isinf(l2[0][pr]).all()
                    kth = np.sort(np.concatenate([kbest[0], key[fin]]))[k - 1]
                    assert (key[pr] > kth).all()
                    if tie:
                        assert (lat[pr] > (1 + tie) * min(l_min[0], lat[fin].min())).all()
                    n_pruned += int(pr.sum())
                    n_rows += len(pr)
    assert 0 < n_pruned < n_rows
