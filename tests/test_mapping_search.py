"""Mapper (accelsim.mapping.search): exact on its own space, deterministic, cached, LOMA's allocation.

The search is tested with a small stand-in cost (``_standin``, defined here) that has the
properties the mapper relies on (latency >= ideal temporal cycles, energy >= MAC energy, cost
a function of the stationarity signature); when ``accelsim.mapping.cost.evaluate`` is
implemented, the brute-force tests also run on it.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from math import prod
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _mapper_fixtures import tpu_like  # noqa: E402

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.mapping import _search_kernels as K  # noqa: E402
from accelsim.mapping import search as S  # noqa: E402
from accelsim.mapping.cost import MappingCost, OperandLevelCost, evaluate  # noqa: E402
from accelsim.mapping.fast import FastEvaluator  # noqa: E402
from accelsim.mapping.ir import DIMS, OPERANDS, LayerDims, Loop, Mapping, SpatialUnroll  # noqa: E402


@lru_cache(maxsize=None)
def _spatial_at(layer, hier, spatial):
    return S._problem(layer, hier, spatial).spatial_at


def _standin(layer: LayerDims, hier, m: Mapping) -> MappingCost:
    """A simple access-count cost (tests only): fetch words per level, DRAM-bandwidth latency."""
    geo = (layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w, layer.in_h, layer.in_w)
    order = [(K.DIM_INDEX[lp.dim], lp.size) for lp in m.temporal]
    levels_cost = []
    energy = layer.macs * hier.array.mac_energy_pj
    dram_bits = 0
    for op in OPERANDS:
        mems = hier.levels(op)
        sig = K.stationary_levels(op, order, m.counts(op))
        ext = [1] * 8
        sp_at = _spatial_at(layer, hier, m.spatial)[op]
        loops_by_level = [list(s[0]) for s in sig]
        for i, mem in enumerate(mems):
            for d, s in sp_at[i] + loops_by_level[i]:
                ext[d] *= s
            above = prod(s for lv in loops_by_level[i + 1:] for _, s in lv)
            bits = layer.bits(op)
            words = K.footprint(op, ext, geo) * above * bits / 64.0
            e = 0.0
            if i + 1 < len(mems):
                e = words * (mems[i + 1].read_pj + mem.write_pj) * (1.0 + 0.001 * sig[i][1])
                if mems[i + 1].name == "dram":
                    dram_bits += words * 64
            energy += e
            levels_cost.append(OperandLevelCost(op, mem.name, words, words, 0.0, 0.0, e))
    tc = m.temporal_cycles
    stall = max(0.0, dram_bits / 64.0 - tc)
    return MappingCost(energy_pj=energy, mac_energy_pj=layer.macs * hier.array.mac_energy_pj,
                       latency_cycles=tc + stall, ideal_cycles=layer.macs / hier.array.num_macs, temporal_cycles=tc,
                       stall_cycles=stall, onload_cycles=0.0, offload_cycles=0.0, fill_drain_cycles=0.0,
                       levels=tuple(levels_cost))


EVALUATORS = [pytest.param(_standin, id="standin"), pytest.param(None, id="cost_model")]


SMALL = [
    LayerDims(K=8, C=6, P=3, Q=2, R=3, S=1, name="conv_small"),
    LayerDims(K=12, C=4, P=5, Q=5, R=1, S=1, name="pointwise_odd"),
    LayerDims(K=6, C=8, P=2, Q=2, R=3, S=2, stride_h=2, stride_w=2, name="strided"),
    LayerDims(N=4, K=10, C=12, name="gemm"),
]


def _hier():
    # small tpu_like: 4x4 PEs, 16 B weight RF, 4 B output RF, 256 B SRAM, so capacities bind
    return tpu_like(4, 4, sram_bits=2048, rf_w_bits=128, rf_o_bits=32)


def _brute_force(layer, hier, objective, evaluator, spatial=None, hint=None, lpf_limit=None, max_spatial=None):
    """Every spatial candidate x every distinct loop order x LOMA allocation, no pruning."""
    if evaluator is None:
        fe = FastEvaluator(layer, hier)

        def key_of(m):
            e, lat = fe.energy_latency(m)
            return {"latency": (lat, e), "energy": (e, lat), "edp": (e * lat, lat, e)}[objective]
    else:
        def key_of(m):
            return S.objective_key(evaluator(layer, hier, m), objective)
    best = None
    for si, oi, m in _every_mapping(layer, hier, spatial, hint, lpf_limit, max_spatial):
        key = (key_of(m), si, oi)
        if best is None or key < best[0]:
            best = (key, m)
    return best


def _every_mapping(layer, hier, spatial=None, hint=None, lpf_limit=None, max_spatial=None):
    """(spatial rank, order rank, mapping) of every spatial candidate x distinct loop order x LOMA allocation."""
    n_feasible = 0
    for si, sp in enumerate(S.spatial_candidates(layer, hier, spatial=spatial, hint=hint)):
        if max_spatial is not None and (n_feasible >= max_spatial or si >= S.MAX_TRIED_FACTOR * max_spatial):
            break
        prob = S._problem(layer, hier, sp)
        feasible = False
        for oi, order in enumerate(K.multiset_permutations(K.loop_prime_factors(S._trips(layer, sp), lpf_limit))):
            counts = prob.allocate(order)
            if counts is None:
                continue
            feasible = True
            yield si, oi, S._to_mapping(sp, order, counts)
        n_feasible += feasible


@pytest.mark.parametrize("evaluator", EVALUATORS)
@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("layer", SMALL, ids=lambda l: l.name)
def test_search_equals_brute_force(layer, objective, evaluator):
    hier = _hier()
    spatial = {"D1": [("K", 4)], "D2": [("C", 4)]}
    res = S.search_layer(layer, hier, objective=objective, spatial=spatial, lpf_limit=None, evaluator=evaluator,
                         cache=None, top_k=3, max_spatial=4)
    (key, _, _), m = _brute_force(layer, hier, objective, evaluator, spatial=spatial, max_spatial=4)
    assert res.best.key == key
    assert res.mapping == m
    if evaluator is None:  # the reported cost is the reference model's
        ref = evaluate(layer, hier, m)
        assert res.cost.energy_pj == pytest.approx(ref.energy_pj, rel=1e-9)
        assert res.cost.latency_cycles == pytest.approx(ref.latency_cycles, rel=1e-9)
    assert res.stats.unique_mappings <= res.stats.loop_orders - res.stats.infeasible
    assert [r.key for r in res.top] == sorted(r.key for r in res.top)


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_free_spatial_search_equals_brute_force(objective):
    layer = LayerDims(K=6, C=5, P=4, Q=3, name="free")
    hier = _hier()
    res = S.search_layer(layer, hier, objective=objective, lpf_limit=None, evaluator=_standin, cache=None,
                         max_spatial=30)
    (key, _, _), m = _brute_force(layer, hier, objective, _standin, lpf_limit=None, max_spatial=30)
    assert res.best.key == key and res.mapping == m
    if objective == "latency":
        assert res.stats.spatial_pruned > 0  # the bound skipped candidates that could not win


def test_pruning_rules_do_not_change_the_result():
    layer = LayerDims(K=8, C=8, P=6, Q=6, R=3, S=3, name="c33")  # 6 prime factors after unrolling
    hier = _hier()
    kw = dict(objective="latency", hint={"D1": ["K", "P"], "D2": ["C", "R"]}, lpf_limit=6, evaluator=_standin,
              cache=None, top_k=4)
    a = S.search_layer(layer, hier, **kw)
    b = S.search_layer(layer, hier, dedupe=False, bound=False, **kw)
    assert a.best.key == b.best.key and a.mapping == b.mapping
    assert a.stats.evaluated < b.stats.evaluated


def test_result_is_a_valid_covering_mapping_that_fits():
    layer = LayerDims(K=12, C=6, P=7, Q=5, R=3, S=3, name="uneven")
    hier = _hier()
    res = S.search_layer(layer, hier, objective="energy", evaluator=_standin, cache=None, top_k=5)
    for r in res.top:
        m = r.mapping
        for d in DIMS:  # conservation: spatial x temporal covers every loop bound
            assert m.spatial_factor(d) * m.temporal_factor(d) >= layer.size(d)
        for su in m.spatial:
            assert su.size <= hier.array.size_of(su.array_dim)
        # capacity: every operand's tile at every level fits (shared levels summed)
        prob = S._problem(layer, hier, m.spatial)
        assert prob.allocate([(K.DIM_INDEX[lp.dim], lp.size) for lp in m.temporal]) == {
            op: m.counts(op) for op in OPERANDS}
        assert r.cost.latency_cycles >= m.temporal_cycles
        assert r.cost.energy_pj >= layer.macs * hier.array.mac_energy_pj


def test_deterministic_and_tie_rule():
    layer = LayerDims(K=8, C=8, P=4, Q=4, name="ties")
    hier = _hier()
    flat = lambda l, h, m: MappingCost(1.0, 0.0, float(m.temporal_cycles), 1, m.temporal_cycles, 0, 0, 0, 0, ())  # noqa: E731
    a = S.search_layer(layer, hier, objective="latency", evaluator=flat, cache=None, top_k=3)
    b = S.search_layer(layer, hier, objective="latency", evaluator=flat, cache=None, top_k=3)
    assert [r.mapping for r in a.top] == [r.mapping for r in b.top]
    # all mappings with the best spatial unrolling tie: the first loop order (lexicographic) wins
    sp = a.mapping.spatial
    first = next(o for o in K.multiset_permutations(K.loop_prime_factors(S._trips(layer, sp), 6))
                 if S._problem(layer, hier, sp).allocate(o) is not None)
    assert [(K.DIM_INDEX[lp.dim], lp.size) for lp in a.mapping.temporal] == list(first)


def test_cache_maps_identical_shapes_once():
    cache = S.MappingCache()
    hier = _hier()
    a = LayerDims(K=8, C=8, P=4, Q=4, R=3, S=3, name="a")
    b = LayerDims(K=8, C=8, P=4, Q=4, R=3, S=3, name="b")
    ra = S.search_layer(a, hier, evaluator=_standin, cache=cache)
    rb = S.search_layer(b, hier, evaluator=_standin, cache=cache)
    assert not ra.cached and rb.cached and cache.hits == 1 and cache.misses == 1
    assert ra.mapping == rb.mapping
    S.search_layer(a, hier, evaluator=_standin, cache=cache, objective="energy")
    S.search_layer(a, tpu_like(8, 8), evaluator=_standin, cache=cache)
    assert cache.misses == 3


def test_loma_prime_factors_and_merging():
    assert K.prime_factors(112) == [2, 2, 2, 2, 7]
    # ZigZag 3.9.1 on ResNet-18 conv1 (K 64/32, OX=OY=112, FX=FY=7): OX -> [112], OY -> [7, 16]
    lp = K.loop_prime_factors({"K": 2, "Q": 112, "P": 112, "R": 7, "S": 7}, 6)
    byd = {}
    for d, s in lp:
        byd.setdefault(DIMS[d], []).append(s)
    assert byd == {"K": [2], "Q": [112], "P": [7, 16], "R": [7], "S": [7]}
    assert K.loop_prime_factors({"K": 2, "C": 3}, 1) == [(K.DIM_INDEX["K"], 2), (K.DIM_INDEX["C"], 3)]
    perms = list(K.multiset_permutations([(1, 2), (1, 2), (3, 3)]))
    assert perms == sorted(set(perms)) and len(perms) == 3


def test_allocation_follows_loma_on_a_hand_case():
    # tpu_like 32x32 ResNet-18 layer1 conv: ZigZag puts C,FX,FY into the 2 B output register
    # only when nothing spills; with K32 x C32 spatial, O's 16-bit psum fills rf_2B at once.
    hier = tpu_like()
    ld = LayerDims(K=64, C=64, P=56, Q=56, R=3, S=3)
    sp = (SpatialUnroll("D1", (Loop("K", 32),)), SpatialUnroll("D2", (Loop("C", 32),)))
    prob = S._problem(ld, hier, sp)
    order = [(K.DIM_INDEX[d], s) for d, s in [("P", 56), ("Q", 56), ("K", 2), ("R", 3), ("S", 3), ("C", 2)]]
    # values produced by ZigZag 3.9.1's MemoryAllocator for this order
    assert prob.allocate(order) == {"W": (6, 0), "I": (6, 0), "O": (0, 6, 0)}
    order2 = [(K.DIM_INDEX[d], s) for d, s in [("R", 3), ("S", 3), ("C", 2), ("K", 2), ("P", 56), ("Q", 56)]]
    c = prob.allocate(order2)
    assert c["O"][0] == 3  # C,R,S (irrelevant to O) stay in the output register: 1 psum of 16 b
    assert c["W"] == (6, 0)  # W ignores P, Q: 3*3*2*2 = 36 weights x 8 b = 288 b fit the 1024 b register


def test_bad_input():
    hier = _hier()
    ld = LayerDims(K=4, C=4)
    with pytest.raises(ConfigError, match="objective"):
        S.search_layer(ld, hier, objective="speed", evaluator=_standin, cache=None)
    with pytest.raises(ConfigError, match="array dimension"):
        S.search_layer(ld, hier, spatial={"D9": [("K", 4)]}, evaluator=_standin, cache=None)
    with pytest.raises(ConfigError, match="fits"):
        S.search_layer(LayerDims(K=4, C=4, P=4, Q=4), tpu_like(4, 4, sram_bits=8, rf_w_bits=8, rf_o_bits=16),
                       spatial={"D1": [("K", 4)], "D2": [("C", 4)]}, evaluator=_standin, cache=None)


def test_format_mapping_table():
    hier = _hier()
    res = S.search_layer(LayerDims(K=8, C=8, P=4, Q=4, R=3, S=3, name="conv"), hier, evaluator=_standin,
                         cache=None, top_k=2)
    txt = S.format_mapping_table(res, hier)
    assert "layer conv" in txt and "latency_cycles" in txt
    assert txt.count("spatial   D1:") == 2
    assert "rf_128B[" in txt and "sram_2MB[" in txt and "dram[" in txt


# ---------------------------------------------------------------------------- on ZigZag's hardware
REF = Path(__file__).parent / "data" / "reference"


def _zz_hier(name: str):
    from accelsim.hardware.zigzag_io import load_zigzag_accelerator
    return load_zigzag_accelerator(REF / "zigzag_inputs" / "hardware" / f"{name}.yaml")


def _enumerate(hier, layer, sp, lpfs, dedupe=False, pins=(), hash_mask=K.FULL_HASH):
    """The loop-order kernel on every permutation of ``lpfs`` (spatial unrolling ``sp``)."""
    kd = np.array([d for d, _ in lpfs], dtype=np.int64)
    ks = np.array([s for _, s in lpfs], dtype=np.int64)
    return K.enumerate_orders(kd, ks, *S._problem(layer, hier, sp).arrays(), K.n_distinct_permutations(lpfs), dedupe,
                              *K.pin_arrays(pins, lpfs), hash_mask)


@pytest.mark.parametrize("hw, layer, spatial", [
    ("tpu_like", LayerDims(K=128, C=64, P=28, Q=28, R=3, S=3, stride_h=2, stride_w=2, in_h=56, in_w=56),
     {"D1": [("K", 32)], "D2": [("C", 32)]}),
    ("eyeriss_like", LayerDims(K=128, C=64, P=28, Q=28, R=1, S=1, stride_h=2, stride_w=2, in_h=56, in_w=56),
     {"D1": [("P", 14)], "D2": [("C", 11)]}),
    ("edge_tpu_like", LayerDims(K=64, C=64, P=56, Q=56, R=3, S=3, in_h=56, in_w=56),
     {"D1": [("K", 8)], "D2": [("C", 8)], "D3": [("Q", 4)], "D4": [("P", 4)]}),
])
def test_signature_classes_have_equal_cost_in_the_cost_model(hw, layer, spatial):
    """The dedupe rule is sound: loop orders with one signature get identical energy and latency."""
    import numpy as np
    hier = _zz_hier(hw)
    sp = S.spatial_candidates(layer, hier, spatial=spatial)[0]
    prob = S._problem(layer, hier, sp)
    lpfs = K.loop_prime_factors(S._trips(layer, sp), 6)
    kd = np.array([d for d, _ in lpfs], dtype=np.int64)
    ks = np.array([s for _, s in lpfs], dtype=np.int64)
    n_all = K.n_distinct_permutations(lpfs)
    idx, orders, counts, cls, n, n_bad = _enumerate(hier, layer, sp, lpfs)
    assert n == n_all and len(idx) == n_all - n_bad
    fe = FastEvaluator(layer, hier)
    e, lat = fe.batch(sp, kd[orders], ks[orders].astype(float), np.full(len(idx), len(lpfs)), counts)
    groups: dict = {}
    for j in range(len(idx)):
        groups.setdefault(int(cls[j]), set()).add((round(float(e[j]), 3), float(lat[j])))
    if hw == "tpu_like":
        assert len(groups) < len(idx)  # the rule does merge loop orders here
    assert all(len(v) == 1 for v in groups.values())
    # the deduplicated enumeration keeps exactly the first row of every class
    first = _enumerate(hier, layer, sp, lpfs, dedupe=True)
    assert list(first[0]) == [int(idx[j]) for j in np.unique(cls, return_index=True)[1]]
    # and the kernel's allocation equals the reference implementation of LOMA's rule; the
    # infeasible orders are exactly those the reference cannot allocate
    kept = set(idx.tolist())
    for i, perm in enumerate(K.multiset_permutations(lpfs)):
        if i % max(1, n_all // 60) == 0:
            ref = prob.allocate(perm)
            assert (ref is not None) == (i in kept)
            if ref is not None:
                j = int(np.searchsorted(idx, i))
                assert [lpfs[x] for x in orders[j]] == list(perm)
                assert ref == {op: tuple(int(x) for x in counts[j, o, :len(prob.levels[op])])
                               for o, op in enumerate(OPERANDS)}


def test_at_least_as_good_as_loma_on_zigzag_runs():
    """ZigZag's own chosen mappings (ResNet-18, tpu_like and eyeriss_like, first layers): the mapper,
    given ZigZag's spatial unrolling, finds latency <= ZigZag's mapping's in the same cost model."""
    pytest.importorskip("onnx")
    from accelsim.mapping.zigzag_runs import load_reference_run
    for tag in ("resnet18_tpu_like", "resnet18_eyeriss_like"):
        hier, rows = load_reference_run(REF, tag)
        for layer, zmap, ref in rows[5:9]:
            spatial = {su.array_dim: [(lp.dim, lp.size) for lp in su.loops] for su in zmap.spatial}
            res = S.search_layer(layer, hier, objective="latency", spatial=spatial, cache=None)
            zc = evaluate(layer, hier, zmap)
            assert res.cost.latency_cycles <= zc.latency_cycles * 1.02, ref.name
            assert 0.8 <= res.cost.energy_pj / zc.energy_pj <= 1.05, ref.name
            from accelsim.mapping.cost import validate
            validate(layer, res.mapping, hier)  # fits every memory, covers every loop


def test_map_layer_report():
    txt = S.map_layer_report("zoo:resnet18", REF / "zigzag_inputs" / "hardware" / "tpu_like.yaml", "layer1.0.conv1",
                             top_k=2, spatial={"D1": [("K", 32)], "D2": [("C", 32)]})
    assert "layer layer1.0.conv1" in txt and txt.count("spatial   D1: K 32, D2: C 32") == 2
    assert "rf_2B[" in txt and "energy_pj W:" in txt
    with pytest.raises(ConfigError, match="no layer named"):
        S.map_layer_report("zoo:resnet18", REF / "zigzag_inputs" / "hardware" / "tpu_like.yaml", "nope")


def test_objectives_are_each_optimal_on_the_same_space():
    hier = _zz_hier("eyeriss_like")
    layer = LayerDims(K=64, C=64, P=28, Q=28, R=3, S=3, in_h=30, in_w=30)
    kw = dict(hint={"D1": ["K", "P"], "D2": ["C", "R"]}, cache=None, max_spatial=3, bound=False)
    r = {obj: S.search_layer(layer, hier, objective=obj, **kw).cost for obj in ("latency", "energy", "edp")}
    assert r["energy"].energy_pj <= min(r["latency"].energy_pj, r["edp"].energy_pj)
    assert r["latency"].latency_cycles <= min(r["energy"].latency_cycles, r["edp"].latency_cycles)
    assert r["edp"].edp <= min(r["latency"].edp, r["energy"].edp)
    for c in r.values():  # conservation: at least the ideal cycles, never more MAC energy than the MACs
        assert c.latency_cycles >= layer.macs / hier.array.num_macs
        assert c.mac_energy_pj == pytest.approx(layer.macs * hier.array.mac_energy_pj)


def _tpu_case():
    hier = _zz_hier("tpu_like")
    layer = LayerDims(K=128, C=64, P=28, Q=28, R=3, S=3, stride_h=2, stride_w=2, in_h=56, in_w=56)
    return hier, layer, S.spatial_candidates(layer, hier, spatial={"D1": [("K", 32)], "D2": [("C", 32)]})[0]


def test_signature_classes_are_exact_even_when_every_hash_collides():
    """The loop-order kernel groups rows by full signature equality: with the hash masked to 0 (every
    row collides) it keeps the same rows, with the same classes, as with the full hash."""
    hier, layer, sp = _tpu_case()
    lpfs = K.loop_prime_factors(S._trips(layer, sp), 6)
    for dedupe in (True, False):
        a = _enumerate(hier, layer, sp, lpfs, dedupe)
        b = _enumerate(hier, layer, sp, lpfs, dedupe, hash_mask=np.uint64(0))
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    assert len(np.unique(a[3])) < len(a[3])  # classes do merge rows here


def test_kernel_pins_equal_the_reference_rule():
    """Position pins applied in the loop-order kernel keep exactly the feasible orders that
    :meth:`TemporalOrdering.allowed` accepts; a pin beyond the last loop keeps none."""
    from accelsim.mapping.ordering import TemporalOrdering
    hier, layer, sp = _tpu_case()
    for loops in ([("P", "*"), ("C", 2)], [("R", 3)], [("K", "*")] * 9):
        to = TemporalOrdering.of(loops)
        lpfs = to.constrained_factors(S._trips(layer, sp), 6)
        free = _enumerate(hier, layer, sp, lpfs)
        pinned = _enumerate(hier, layer, sp, lpfs, pins=to.position_pins())
        ref = free[0][to.allowed(free[1], lpfs)]
        assert list(pinned[0]) == list(ref) and pinned[4:] == free[4:]
        assert (len(ref) == 0) == (len(loops) > len(lpfs))


def test_kernel_allocation_with_resumed_scans_equals_the_reference_on_every_order():
    """The loop-order kernel resumes each level's tile scan at the first loop position that changed
    since the previous order: every order's allocation (and infeasibility) equals the reference
    ``AllocationProblem.allocate`` of that order alone, on hierarchies with shared memories
    (edge_tpu_like; a small tpu_like whose capacities bind) and on the implied systolic one,
    strided and dilated."""
    from accelsim.hardware.systolic import SystolicArray
    from accelsim.mapping.implied import implied_hierarchy
    sram = {"size_kb": 1}
    cases = [(_zz_hier("edge_tpu_like"), LayerDims(K=32, C=16, P=14, Q=14, R=3, S=3, in_h=16, in_w=16),
              {"D1": [("K", 8)], "D2": [("C", 8)], "D3": [("Q", 2)], "D4": [("P", 2)]}),
             (_hier(), LayerDims(K=32, C=16, P=8, Q=8, R=3, S=3), {"D1": [("C", 4)], "D2": [("P", 4)]}),
             (implied_hierarchy(SystolicArray(name="s", rows=4, cols=4, ifmap_sram=sram, filter_sram=sram,
                                              ofmap_sram=sram)),
              LayerDims(K=16, C=12, P=10, Q=6, R=3, S=3, stride_h=2, dilation_w=2, in_h=21, in_w=10), None)]
    for hier, layer, spatial in cases:
        sp = S.spatial_candidates(layer, hier, spatial=spatial)[0]
        prob = S._problem(layer, hier, sp)
        lpfs = K.loop_prime_factors(S._trips(layer, sp), 6)
        idx, orders, counts, _, n, n_bad = _enumerate(hier, layer, sp, lpfs)
        assert n == K.n_distinct_permutations(lpfs) and len(idx) == n - n_bad
        at = {int(i): j for j, i in enumerate(idx)}
        for i, perm in enumerate(K.multiset_permutations(lpfs)):
            ref = prob.allocate(perm)
            assert (ref is not None) == (i in at)
            if ref is not None:
                j = at[i]
                assert [lpfs[x] for x in orders[j]] == list(perm)
                assert ref == {op: tuple(int(x) for x in counts[j, o, :len(prob.levels[op])])
                               for o, op in enumerate(OPERANDS)}


def test_enumerations_shared_by_problems_with_equal_kernel_input():
    """Loop-order enumerations are keyed on the kernel's input arrays: two spatial unrollings that
    put the same loops at the same levels (here K 4 x C 4 on D1/D2 and swapped, both dimensions
    served by the same memories) share one enumeration, equal to a fresh one of each; the spatial
    candidates' memo returns fresh lists equal to an unmemoised computation."""
    hier = _hier()
    layer = LayerDims(K=8, C=8, P=6, Q=6, R=3, S=3, name="share")
    a = S.spatial_candidates(layer, hier, spatial={"D1": [("K", 4)], "D2": [("C", 4)]})[0]
    b = S.spatial_candidates(layer, hier, spatial={"D1": [("C", 4)], "D2": [("K", 4)]})[0]
    pa, pb = S._problem(layer, hier, a), S._problem(layer, hier, b)
    assert pa.spatial_at != pb.spatial_at and S._problem_key(pa) == S._problem_key(pb)
    lpfs = list(S._loop_factors(tuple(S._trips(layer, a).items()), 6))
    S._ORDER_CACHE.clear()
    oa = S._order_arrays(pa, lpfs, True)
    assert S._order_arrays(pb, lpfs, True) is oa and len(S._ORDER_CACHE) == 1
    for p in (pa, pb):
        fresh = S._order_arrays_uncached(p, lpfs, True)
        for f in ("rank", "orders", "counts", "tm_dims", "tm_sizes", "n_tm"):
            assert np.array_equal(getattr(fresh, f), getattr(oa, f))
        assert (fresh.n_all, fresh.n_bad) == (oa.n_all, oa.n_bad)
    S._ORDER_CACHE.clear()
    kw = dict(hint={"D1": ["K", "P"], "D2": ["C", "R"]})
    first = S.spatial_candidates(layer, hier, **kw)
    kept = list(first)
    first.clear()  # a caller's list: the memo is unaffected
    assert kept and S.spatial_candidates(layer, hier, **kw) == kept
    S._CANDIDATES.clear()
    assert S.spatial_candidates(layer, hier, **kw) == kept


def test_kernel_window_formula_equals_the_cost_model():
    """The kernel's footprints use the window formula on stride and dilation divided by their gcd
    (no gcd per footprint): equal to ``LayerDims.rows_for`` everywhere, clipped or not."""
    for st in range(1, 5):
        for dl in range(1, 5):
            for clip in (0, 3, 9):
                rg = K.reduced_geo(np.array([st, 1, dl, 1, clip, 0], dtype=np.int64))
                ld = LayerDims(stride_h=st, dilation_h=dl, in_h=clip)
                for a in range(1, 9):
                    for b in range(1, 6):
                        assert K._window_reduced(a, b, rg[0], rg[2], rg[4]) == ld.rows_for(a, b), (st, dl, clip, a, b)


def _with_dram_bw(hier, bits: int):
    data = hier.model_dump()
    for m in data["memories"]:
        if m["name"] == "dram":
            for p in m["ports"]:
                p["bandwidth_min_bits"] = min(p["bandwidth_min_bits"], bits)
                p["bandwidth_max_bits"] = bits
    return type(hier).model_validate(data)


def test_loop_order_enumeration_is_shared_across_bandwidths():
    """Allocation and signatures do not depend on bandwidth: a DRAM-bandwidth sweep enumerates the
    loop orders once, and the search on the shared enumeration equals a fresh one."""
    layer = LayerDims(K=8, C=8, P=6, Q=6, R=3, S=3, name="bw")
    base = _hier()
    kw = dict(objective="latency", hint={"D1": ["K", "P"], "D2": ["C", "R"]}, cache=None, top_k=3)
    fresh = {}
    for bw in (8, 64, 512):
        S._ORDER_CACHE.clear()
        fresh[bw] = S.search_layer(layer, _with_dram_bw(base, bw), **kw)
    S._ORDER_CACHE.clear()
    for bw, ref in fresh.items():
        warm = S.search_layer(layer, _with_dram_bw(base, bw), **kw)
        assert [(r.key, r.mapping) for r in warm.top] == [(r.key, r.mapping) for r in ref.top]
    # spatial candidates are tried in one bandwidth-free rank order (the bound stops earlier or
    # later): one enumeration per candidate, shared by every bandwidth
    assert len(S._ORDER_CACHE) == max(r.stats.spatial_searched for r in fresh.values())
    assert sum(r.stats.spatial_searched for r in fresh.values()) > len(S._ORDER_CACHE)
    assert len({r.best.cost.latency_cycles for r in fresh.values()}) > 1  # bandwidth does matter here


def _all_points(layer, hier, evaluator, spatial=None, lpf_limit=None, max_spatial=None):
    """(latency, energy, spatial rank, order rank, mapping) of every mapping of the space (no pruning)."""
    fe = FastEvaluator(layer, hier) if evaluator is None else None
    pts = []
    for si, oi, m in _every_mapping(layer, hier, spatial, None, lpf_limit, max_spatial):
        if fe is not None:
            e, lat = fe.energy_latency(m)
        else:
            c = evaluator(layer, hier, m)
            e, lat = c.energy_pj, c.latency_cycles
        pts.append((lat, e, si, oi, m))
    return pts


def _tie_rule(pts, share):
    """The stated rule, literally: least energy among latency <= (1 + share) x fastest; then latency, order."""
    l_min = min(p[0] for p in pts)
    return min((p for p in pts if p[0] <= (1 + share) * l_min), key=lambda p: (p[1], p[0], p[2], p[3]))


@pytest.mark.parametrize("share", [0.005, 0.05, 0.3])
@pytest.mark.parametrize("evaluator", EVALUATORS)
@pytest.mark.parametrize("layer", SMALL, ids=lambda l: l.name)
def test_latency_tie_rule_equals_brute_force(layer, evaluator, share):
    hier = _hier()
    spatial = {"D1": [("K", 4)], "D2": [("C", 4)]}
    res = S.search_layer(layer, hier, objective="latency", spatial=spatial, lpf_limit=None, evaluator=evaluator,
                         cache=None, top_k=3, max_spatial=4, latency_tie_share=share)
    pts = _all_points(layer, hier, evaluator, spatial=spatial, max_spatial=4)
    lat, e, _, _, m = _tie_rule(pts, share)
    assert res.mapping == m and res.best.key == (lat, e)
    assert res.best.cost.latency_cycles <= (1 + share) * min(p[0] for p in pts) * (1 + 1e-12)
    # the front: Pareto points within the tolerance, fastest first, the fastest of the space included
    assert res.front[0][0][0] == min(p[0] for p in pts)
    assert [k for k, _ in res.front] == sorted(k for k, _ in res.front)
    assert all(a[0][1] > b[0][1] for a, b in zip(res.front, res.front[1:]))
    assert (lat, e) in [k for k, _ in res.front] and m in [mp for _, mp in res.front]
    plain = S.search_layer(layer, hier, objective="latency", spatial=spatial, lpf_limit=None, evaluator=evaluator,
                           cache=None, top_k=1, max_spatial=4)
    assert res.best.cost.energy_pj <= plain.best.cost.energy_pj  # never more energy than the strict rule


@pytest.mark.parametrize("share", [0.02, 0.3])
def test_latency_tie_rule_with_spatial_bound_equals_brute_force(share):
    """Free spatial search: the bound may skip a candidate only beyond the tolerance."""
    layer = LayerDims(K=6, C=5, P=4, Q=3, name="free")
    hier = _hier()
    res = S.search_layer(layer, hier, objective="latency", lpf_limit=None, evaluator=_standin, cache=None,
                         max_spatial=30, latency_tie_share=share)
    lat, e, _, _, m = _tie_rule(_all_points(layer, hier, _standin, lpf_limit=None, max_spatial=30), share)
    assert res.mapping == m and res.best.key == (lat, e)
    unbounded = S.search_layer(layer, hier, objective="latency", lpf_limit=None, evaluator=_standin, cache=None,
                               max_spatial=30, latency_tie_share=share, bound=False, dedupe=False)
    assert unbounded.mapping == m


def test_latency_tie_share_is_validated_and_keys_the_cache():
    layer, hier, cache = LayerDims(K=8, C=8, P=4, Q=4, name="t"), _hier(), S.MappingCache()
    with pytest.raises(ConfigError, match="latency_tie_share"):
        S.search_layer(layer, hier, latency_tie_share=-0.1, cache=None)
    S.search_layer(layer, hier, evaluator=_standin, cache=cache)
    r = S.search_layer(layer, hier, evaluator=_standin, cache=cache, latency_tie_share=0.3)
    assert not r.cached and r.front
    assert S.search_layer(layer, hier, evaluator=_standin, cache=cache, latency_tie_share=0.3).cached


def test_best_rows_equals_the_lexicographic_sort():
    """The per-candidate selection (linear narrowing for k = 1) picks the rows a full lexsort on
    (key columns..., rank) puts first, with many exact ties in every column."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        cols = tuple(rng.integers(0, 3, size=n).astype(float) for _ in range(int(rng.integers(1, 4))))
        rank = rng.permutation(1000)[:n].astype(np.int64)
        rows = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
        ref = rows[np.lexsort((rank[rows],) + tuple(c[rows] for c in reversed(cols)))]
        for k in (1, 2, 5):
            assert list(S._best_rows(cols, rank, rows, k)) == list(ref[:k])


def _kernel_signature(order, counts, nlev: int, maxlev: int) -> tuple:
    """Pure-Python statement of the loop-order kernel's signature row for one operand's side of
    ``_search_kernels._signature_nb`` (the merge-down done on lists): per level, the dim products,
    the top irrelevant / top relevant / bottom irrelevant run products and the ordered top run of
    one relevance class (an input-window loop alone) plus the loop below it."""
    def sig(o: int, op: str):
        irr = K.IRRELEVANT[op]
        lv, i = [], 0
        for c in counts[o][:nlev[o]]:
            lv.append(list(order[i:i + c]))
            i += c
        changed = True
        while changed:
            changed = False
            for j in range(1, len(lv)):
                while lv[j] and lv[j][0][0] in irr:
                    lv[j - 1].append(lv[j].pop(0))
                    changed = True

        def cls(d):
            return 0 if d in irr else (2 + d if op == "I" and d >= 4 else 1)

        def run(loops, keep):
            p = 1
            for d, s in loops:
                if not keep(d):
                    break
                p *= s
            return p
        out = []
        for loops in lv:
            prods = [1] * 8
            for d, s in loops:
                prods[d] *= s
            top = loops[::-1]
            seq = []
            for t, (d, s) in enumerate(top):
                seq.append((d, s))
                if cls(d) != cls(top[0][0]) or cls(d) >= 2:
                    break
            seq += top[len(seq):len(seq) + 1]
            out.append((tuple(prods), run(top, lambda d: d in irr), run(top, lambda d: d not in irr),
                        run(loops, lambda d: d in irr), tuple(seq)))
        return tuple(out) + ((),) * (maxlev - len(lv))
    return tuple(sig(o, op) for o, op in enumerate(OPERANDS))


def _reference_enumeration(prob, lpfs, dedupe: bool, pins=()) -> tuple:
    """``enumerate_orders``'s outputs from the pure-Python pieces: ``multiset_permutations``,
    ``AllocationProblem.allocate``, the position pins and :func:`_kernel_signature` classes."""
    nlev = [len(prob.levels[op]) for op in OPERANDS]
    maxlev = max(nlev)
    rank, orders, counts, cls, classes, n_bad = [], [], [], [], {}, 0
    index = {f: i for i, f in reversed(list(enumerate(lpfs)))}  # first key index of each factor
    perms = list(K.multiset_permutations(lpfs))
    for k, perm in enumerate(perms):
        c = prob.allocate(perm)
        if c is None:
            n_bad += 1
            continue
        if any(p >= len(perm) or perm[p][0] != d or (sz is not None and perm[p][1] != sz) for p, d, sz in pins):
            continue
        row = [[c[op][i] if i < len(c[op]) else 0 for i in range(maxlev)] for op in OPERANDS]
        key = _kernel_signature(perm, row, nlev, maxlev)
        new = key not in classes
        cl = classes.setdefault(key, len(classes))
        if new or not dedupe:
            rank.append(k)
            orders.append([index[f] for f in perm])
            counts.append(row)
            cls.append(cl)
    return rank, orders, counts, cls, len(perms), n_bad


def test_kernel_equals_the_python_reference_on_several_problems():
    """The loop-order kernel (compiled per-order loop, resumed scans, signature classes, rows and
    class table grown past their presized 4,096) returns exactly the pure-Python reference's rows
    (rank, order, allocation, class) and counts (orders, infeasible): layers conv / strided /
    dilated / GEMM, output- and weight-stationary systolic hierarchies with capacities that make
    orders infeasible, shared memories, position pins, dedupe on and off."""
    from accelsim.hardware.systolic import SystolicArray
    from accelsim.mapping.implied import implied_hierarchy

    def systolic(df: str, kb: float):
        sram = {"size_kb": kb}
        return implied_hierarchy(SystolicArray(name="s", rows=4, cols=4, dataflow=df, ifmap_sram=sram,
                                               filter_sram=sram, ofmap_sram=sram))
    cases = [
        (systolic("os", 0.25), LayerDims(K=16, C=12, P=10, Q=6, R=3, S=3, stride_h=2, dilation_w=2, in_h=21, in_w=10),
         None, [], 6),
        (systolic("ws", 0.125), LayerDims(K=24, C=20, P=7, Q=7, R=3, S=3, in_h=9, in_w=9), None, [(0, "C", None)], 6),
        (_hier(), LayerDims(K=32, C=16, P=8, Q=8, R=3, S=3), {"D1": [("C", 4)], "D2": [("P", 4)]}, [], 6),
        # a 160 b SRAM shared by I and O: feasible only if O's register keeps its tile small
        (tpu_like(4, 4, sram_bits=160, rf_w_bits=64, rf_o_bits=64),
         LayerDims(K=16, C=12, P=10, Q=6, R=3, S=3, stride_h=2, dilation_w=2, in_h=21, in_w=10, name="tight"),
         {"D1": [("K", 4)], "D2": [("C", 4)]}, [(2, "P", None)], 6),
        (_zz_hier("edge_tpu_like"), LayerDims(K=32, C=16, P=14, Q=14, R=3, S=3, in_h=16, in_w=16),
         {"D1": [("K", 8)], "D2": [("C", 8)], "D3": [("Q", 2)], "D4": [("P", 2)]}, [(1, "R", 3)], 6),
        # 7 distinct factors: 5,040 orders, past the kernel's presized rows and class table
        (_hier(), LayerDims(N=1, K=210 * 4, C=30 * 4, name="gemm7"), {"D1": [("K", 4)], "D2": [("C", 4)]}, [], None),
    ]
    for hier, layer, spatial, pin_spec, limit in cases:
        sp = S.spatial_candidates(layer, hier, spatial=spatial)[0]
        prob = S._problem(layer, hier, sp)
        lpfs = K.loop_prime_factors(S._trips(layer, sp), limit)
        pins = [(p, K.DIM_INDEX[d], sz) for p, d, sz in pin_spec]
        for dedupe in (False, True):
            got = _enumerate(hier, layer, sp, lpfs, dedupe, pins)
            ref = _reference_enumeration(prob, lpfs, dedupe, pins)
            assert [x.tolist() for x in got[:4]] == list(ref[:4]), (layer.name, dedupe)
            assert (int(got[4]), int(got[5])) == ref[4:], (layer.name, dedupe)
        if layer.name == "tight":
            assert 0 < ref[5] < ref[4]  # some orders, not all, are infeasible
        if layer.name == "gemm7":
            assert ref[4] == 5040 and len(ref[0]) > 4096  # the growth paths ran


def test_grown_keeps_the_first_rows_of_every_rank_and_dtype():
    """enumerate_orders' buffer growth: the first ``m`` rows copied, the shape's first axis ``cap``."""
    rng = np.random.default_rng(3)
    for shape, dtype in (((5,), np.int64), ((5, 3), np.int64), ((5, 2, 4), np.int64), ((5,), np.uint64)):
        x = rng.integers(0, 1000, size=shape).astype(dtype)
        for m in (0, 3, 5):
            y = K._grown(x, m, 11)
            assert y.shape == (11,) + shape[1:] and y.dtype == dtype
            assert np.array_equal(y[:m], x[:m])
