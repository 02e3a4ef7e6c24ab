"""Pareto utilities against brute force and hand-computed hypervolumes."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from accelsim.dse.pareto import (hypervolume, non_dominated_mask, non_dominated_sort, pareto_front,
                                 to_minimisation)


def brute_front(F):
    n = len(F)
    keep = np.ones(n, bool)
    for i, j in itertools.product(range(n), range(n)):
        if i != j and np.all(F[j] <= F[i]) and np.any(F[j] < F[i]):
            keep[i] = False
    return keep


@pytest.mark.parametrize("d", [2, 3, 4])
def test_non_dominated_matches_brute_force(d):
    rng = np.random.default_rng(d)
    for _ in range(20):
        F = rng.integers(0, 6, size=(40, d)).astype(float)  # many ties and duplicates
        assert np.array_equal(non_dominated_mask(F), brute_front(F))


def test_duplicates_and_nan():
    F = np.array([[1, 2], [1, 2], [2, 1], [3, 3], [np.nan, 0]])
    assert non_dominated_mask(F).tolist() == [True, True, True, False, False]
    assert non_dominated_sort(F).tolist() == [0, 0, 0, 1, -1]


def test_sort_ranks_are_layered():
    rng = np.random.default_rng(0)
    F = rng.random((60, 3))
    ranks = non_dominated_sort(F)
    for r in range(ranks.max() + 1):
        layer = F[ranks == r]
        assert brute_front(layer).all()  # each layer is mutually non-dominated
        if r:
            prev = F[ranks == r - 1]
            for p in layer:  # ... and every point of layer r is dominated by some point of layer r-1
                assert any(np.all(q <= p) and np.any(q < p) for q in prev)


def test_hypervolume_hand_computed():
    # 2-D staircase: (1,3), (2,2), (3,1) with ref (4,4): 3 + 2 + 1 = 6
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), [4, 4]) == pytest.approx(6.0)
    # a dominated point and a point beyond the reference add nothing
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]]), [4, 4]) == pytest.approx(6.0)
    # 3-D: two boxes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] under ref (2,2,1): 2 + 2 - 1 = 3
    assert hypervolume(np.array([[0, 1, 0], [1, 0, 0]]), [2, 2, 1]) == pytest.approx(3.0)
    # single point: product of distances
    assert hypervolume(np.array([[1, 2, 3, 4]]), [2, 4, 6, 8]) == pytest.approx(1 * 2 * 3 * 4)
    assert hypervolume(np.empty((0, 2)), [1, 1]) == 0.0


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(7)
    F = rng.random((12, 3))
    ref = np.ones(3)
    exact = hypervolume(F, ref)
    S = rng.random((200_000, 3))
    dominated = np.zeros(len(S), bool)
    for p in F:
        dominated |= np.all(S >= p, axis=1)
    mc = dominated.mean()
    assert exact == pytest.approx(mc, abs=4 * np.sqrt(mc * (1 - mc) / len(S)))


def test_pareto_front_frame_with_max_objective():
    df = pd.DataFrame({"latency_ms": [1, 2, 3, 1.5], "accuracy": [0.80, 0.95, 0.97, 0.70], "tag": list("abcd")})
    front = pareto_front(df, [("latency_ms", "min"), ("accuracy", "max")])
    assert front["tag"].tolist() == ["a", "b", "c"]  # d is slower and less accurate than a
    vals = to_minimisation(df[["latency_ms", "accuracy"]].to_numpy(), ["min", "max"])
    assert (vals[:, 1] <= 0).all()
    with pytest.raises(KeyError):
        pareto_front(df, [("energy_uj", "min")])
