"""The compiled evaluator's batch path (``accelsim.mapping.fast``) on real layers.

Every row the mapper prices while searching a few ResNet-50 layers on a systolic array (the
rows ``FastEvaluator.batch`` receives, captured) is compared with the pure-Python reference
``accelsim.mapping.cost.evaluate``, in both roundings, uneven mappings included. The
per-hierarchy cache of ``FastEvaluator`` is checked to share only layer-independent arrays.
(Bit-identity with the kernel of 4baa135 on a whole ResNet-50 point: ``benchmarks/bench_kernel.py``.)
"""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.hardware.systolic import SystolicArray
from accelsim.mapping import fast as F
from accelsim.mapping import search as S
from accelsim.mapping.cost import _effective_sizes, evaluate
from accelsim.mapping.implied import implied_hierarchy
from accelsim.mapping.ir import DIMS, OPERANDS, LayerDims, Loop, Mapping

# ResNet-50: stem 7x7/2, 3x3, strided 1x1 downsample, classifier
LAYERS = {
    "conv1": LayerDims(K=64, C=3, P=112, Q=112, R=7, S=7, stride_h=2, stride_w=2, in_h=224, in_w=224),
    "layer1.0.conv2": LayerDims(K=64, C=64, P=56, Q=56, R=3, S=3, in_h=56, in_w=56),
    "layer3.0.downsample": LayerDims(K=1024, C=512, P=14, Q=14, stride_h=2, stride_w=2, in_h=28, in_w=28),
    "fc": LayerDims(N=1, K=1000, C=2048),
}
ROWS_PER_LAYER = 40


def _hierarchy(sram_kb: int = 64, dataflow: str = "os"):
    sram = {"size_kb": sram_kb}
    return implied_hierarchy(SystolicArray(name="t", rows=16, cols=16, dataflow=dataflow, ifmap_sram=sram,
                                           filter_sram=sram, ofmap_sram=sram))


def _captured_rows(layer: LayerDims, hier, monkeypatch) -> list[Mapping]:
    """Mappings of (a deterministic sample of) the rows priced while searching ``layer``."""
    calls = []
    orig = F.FastEvaluator.batch_pruned  # the mapper's batch call (one or several hierarchy variants)

    def batch(self, spatial, tm_dims, tm_sizes, n_tm, counts, *args, **kw):
        calls.append((spatial, np.array(tm_dims), np.array(tm_sizes), np.array(n_tm), np.array(counts)))
        return orig(self, spatial, tm_dims, tm_sizes, n_tm, counts, *args, **kw)

    monkeypatch.setattr(F.FastEvaluator, "batch_pruned", batch)
    S.search_layer(layer, hier, objective="latency", cache=S.MappingCache())
    monkeypatch.undo()
    n_lv = {op: len(hier.levels(op)) for op in OPERANDS}
    maps = []
    for spatial, dims, sizes, n_tm, counts in calls:
        for b in range(len(dims)):
            temporal = tuple(Loop(DIMS[int(d)], int(s)) for d, s in zip(dims[b, :n_tm[b]], sizes[b, :n_tm[b]]))
            lc = tuple((op, tuple(int(c) for c in counts[b, o, :n_lv[op]])) for o, op in enumerate(OPERANDS))
            maps.append(Mapping(tuple(spatial), temporal, lc))
    uneven = [m for m in maps if any(_effective_sizes(layer, m))]
    even = [m for m in maps if not any(_effective_sizes(layer, m))]
    step = max(1, len(even) // ROWS_PER_LAYER)
    return even[::step][:ROWS_PER_LAYER] + uneven[:: max(1, len(uneven) // ROWS_PER_LAYER)][:ROWS_PER_LAYER]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_batch_rows_equal_reference_on_resnet50_layers(name, monkeypatch):
    layer = LAYERS[name]
    hier = _hierarchy()
    maps = _captured_rows(layer, hier, monkeypatch)
    assert len(maps) >= 20
    if name in ("layer3.0.downsample", "fc"):  # K 1000 / strided P 14 on 16 columns: uneven rows, latency view
        assert any(any(_effective_sizes(layer, m)) for m in maps)
    for rounding in ("accelsim", "zigzag"):
        fe = F.FastEvaluator(layer, hier, rounding=rounding)
        by_spatial: dict = {}
        for m in maps:
            by_spatial.setdefault(m.spatial, []).append(m)
        for spatial, ms in by_spatial.items():
            rows = [fe.mapping_arrays(m) for m in ms]
            t = max(len(d) for d, _, _ in rows)
            dims = np.zeros((len(ms), t), dtype=np.int64)
            sizes = np.ones((len(ms), t))
            for b, (d, s, _) in enumerate(rows):
                dims[b, :len(d)], sizes[b, :len(s)] = d, s
            e, lat = fe.batch(spatial, dims, sizes, np.array([len(d) for d, _, _ in rows]),
                              np.stack([c for _, _, c in rows]))
            for b, m in enumerate(ms):
                ref = evaluate(layer, hier, m, check=False, rounding=rounding)
                assert e[b] == pytest.approx(ref.energy_pj, rel=1e-12), (name, rounding, m)
                assert lat[b] == pytest.approx(ref.latency_cycles, rel=1e-12), (name, rounding, m)
                assert ref.ideal_cycles <= lat[b]  # utilization <= 1
                one = fe.evaluate(m)  # the single-mapping path of the same kernel
                assert (one.energy_pj, one.latency_cycles) == pytest.approx((e[b], lat[b]), rel=1e-12)
                assert [(x.tl, x.fh, x.fl, x.th) for x in one.levels] == [(x.tl, x.fh, x.fl, x.th) for x in ref.levels]


def test_hierarchy_arrays_shared_by_equal_hierarchies_only():
    layer, other = LAYERS["layer1.0.conv2"], LAYERS["fc"]
    h1, h2, h3 = _hierarchy(), _hierarchy(), _hierarchy(sram_kb=32)
    assert h1 is not h2 and h1 == h2 and h1 != h3
    a, b, c = F.FastEvaluator(layer, h1), F.FastEvaluator(other, h2), F.FastEvaluator(layer, h3)
    assert a.hw is b.hw and a.hw is not c.hw
    assert not np.array_equal(a.bounds, b.bounds)  # layer arrays stay per evaluator
    assert a.hierarchy is h1 and b.hierarchy is h2
    res = S.search_layer(layer, h1, objective="latency", cache=S.MappingCache())
    m = res.best.mapping
    for fe in (a, F.FastEvaluator(layer, h2)):
        got = fe.evaluate(m)
        ref = evaluate(layer, h1, m, check=False)
        assert got.latency_cycles == pytest.approx(ref.latency_cycles, rel=1e-12)
        assert got.energy_pj == pytest.approx(ref.energy_pj, rel=1e-12)
    # a smaller SRAM (other sizes and access energies) prices the mapping from its own arrays
    small = c.evaluate(m)
    assert small.energy_pj == pytest.approx(evaluate(layer, h3, m, check=False).energy_pj, rel=1e-12)
    assert small.energy_pj != a.evaluate(m).energy_pj


def test_batch_of_a_row_without_port_is_inf():
    """A movement with no port: batch prices the row inf (evaluate raises); other rows unaffected."""
    layer = LAYERS["layer1.0.conv2"]
    hier = _hierarchy()
    fe = F.FastEvaluator(layer, hier)
    m = S.search_layer(layer, hier, objective="latency", cache=S.MappingCache()).best.mapping
    d, s, c = fe.mapping_arrays(m)
    args = F._batch.py_func.__code__.co_varnames[:F._batch.py_func.__code__.co_argcount]
    kw = dict(zip(args, (fe.bounds, float(layer.macs), fe.hw.mac_pj, fe.hw.sys_mask, *fe.hw.kernel_args,
                         *fe.spatial_arrays(m.spatial), np.stack([d, d]), np.stack([s, s]), np.array([len(d)] * 2),
                         np.stack([c, c]), fe.geo, fe.bits, F._R, F._IR, False, True, *[F._EMPTY] * 4, *F._NO_PRUNE)))
    e_ok, l_ok = F._batch(*kw.values())[:2]  # [variants = 1, rows]
    assert np.isfinite(e_ok).all() and e_ok[0, 0] == e_ok[0, 1] and l_ok[0, 0] == l_ok[0, 1]
    kw["bwmax"] = np.zeros_like(kw["bwmax"])  # no port anywhere
    e, lat, res = F._batch(*kw.values())[:3]
    assert (res[..., 0] == -1).all()
    assert np.isinf(e).all() and np.isinf(lat).all()
