"""The mapper's per-object memos and shortcuts give exactly what the plain computations give."""
from __future__ import annotations

import sys
from itertools import permutations
from math import ceil, prod
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _mapper_fixtures import tpu_like  # noqa: E402

from accelsim.engines.systolic import searched as SR  # noqa: E402
from accelsim.mapping import _search_kernels as K  # noqa: E402
from accelsim.mapping import fast as F  # noqa: E402
from accelsim.mapping import search as S  # noqa: E402
from accelsim.mapping.ir import DIMS, LayerDims, Loop, SpatialUnroll  # noqa: E402

LAYERS = [LayerDims(K=64, C=3, P=112, Q=112, R=7, S=7, stride_h=2, stride_w=2),
          LayerDims(K=1000, C=2048), LayerDims(N=2, K=17, C=33, P=5, Q=9, R=3, S=1)]


def test_trips_and_spec_cycles_equal_float_ceilings():
    for layer in LAYERS:
        for f1, f2 in [(1, 1), (3, 7), (16, 128), (5, 2)]:
            sp = (SpatialUnroll("D1", (Loop("K", f1),)), SpatialUnroll("D2", (Loop("Q", f2), Loop("C", 3))))
            f = {d: prod(lp.size for su in sp for lp in su.loops if lp.dim == d) for d in DIMS}
            want = {d: ceil(layer.size(d) / f[d]) for d in DIMS}
            assert S._trips(layer, sp) == want
            spec = {"D1": [("K", f1)], "D2": [("Q", f2), ("C", 3)]}
            assert SR.spec_temporal_cycles(layer, spec) == prod(want.values())


def _group_options_plain(dims, group, size):
    """The unmemoised reference (reads the layer directly)."""
    out = []
    active = [d for d in group if dims.size(d) > 1] or [group[0]]
    for order in permutations(active):
        left, loops = size, []
        for d in order:
            if left < 2:
                break
            f = SR._efficient(dims.size(d), left)
            if f > 1:
                loops.append((d, f))
                left //= f
        opt = tuple(loops) or ((order[0], 1),)
        if opt not in out:
            out.append(opt)
    return tuple(out)


def test_group_options_memo_by_bounds():
    for layer in LAYERS:
        for groups in SR.DATAFLOW_GROUPS.values():
            for g in groups.values():
                for size in (1, 16, 48, 128):
                    assert SR._group_options(layer, g, size) == _group_options_plain(layer, g, size)


def test_hierarchy_key_memo_equals_fresh_digest():
    h = tpu_like(4, 4, sram_bits=2048, rf_w_bits=128, rf_o_bits=32)
    k = S.hierarchy_key(h)
    assert S.hierarchy_key(h) == k  # identity hit
    copy = h.model_copy(update={"name": "other"})  # equal but for the name: another object
    assert S.hierarchy_key(copy) == k
    bigger = h.model_copy(update={"array": h.array.model_copy(update={"mac_energy_pj": 7.0})})
    assert S.hierarchy_key(bigger) != k


def test_single_variant_args_equal_concatenated():
    h = F._hier_arrays(tpu_like(4, 4, sram_bits=2048, rf_w_bits=128, rf_o_bits=32))
    one = F._variant_args([h])
    two = F._variant_args([h, h])
    for i, (a, b) in enumerate(zip(one, two)):
        if i in F._VARIANT_ARGS:
            assert a.shape[0] == 1 and np.array_equal(np.concatenate([a, a]), b)
        else:
            assert a is b


def test_factor_arrays_and_no_pins_equal_fresh():
    lpfs = tuple(K.loop_prime_factors({"K": 12, "C": 8, "P": 1, "Q": 9}, 6))
    kd, ks, n = S._factor_arrays(lpfs)
    assert kd.tolist() == [d for d, _ in lpfs] and ks.tolist() == [s for _, s in lpfs]
    assert n == K.n_distinct_permutations(lpfs)
    for a, b in zip(S._no_pins(len(lpfs)), K.pin_arrays((), lpfs)):
        assert np.array_equal(a, b) and a.dtype == b.dtype
