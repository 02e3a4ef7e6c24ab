"""Skip/gate actions on zeros (Sparseloop's vocabulary), shared by every engine.

A storage level or the compute level may act on the zeros of one operand (``weights``,
``inputs``) or of their ``intersection`` (a MAC is ineffectual when either operand is zero):

- ``gate``: the ineffectual access or MAC still takes its slot (no cycle is saved) but its
  datapath is clock-gated, so it costs no dynamic energy (Eyeriss' zero-gating);
- ``skip``: the ineffectual access or MAC is not issued at all, so it saves its energy and its
  time -- but lanes that move in lock-step wait for the busiest one (load imbalance, see
  :func:`lockstep_steps`), and finding the next non-zero needs metadata (the storage format);
- ``none``: every access and MAC is executed and priced (today's behaviour).

Densities: ``weights`` and ``inputs`` are the tensors' non-zero fractions; the intersection has
density ``d_w x d_i`` in expectation (zeros of the two operands independent -- stated
assumption; :class:`Intersection` gives its tile occupancy; the actual-mask path intersects the
real masks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .density import DensityModel

ACTIONS = ("none", "gate", "skip")
TARGETS = ("weights", "inputs", "intersection")
OPERANDS = ("weights", "inputs", "outputs")


def target_density(on: str, weight_density: float, input_density: float) -> float:
    """Fraction of events that are effectual when acting on the zeros of ``on``."""
    if on == "weights":
        return float(weight_density)
    if on == "inputs":
        return float(input_density)
    if on == "intersection":
        return float(weight_density) * float(input_density)
    raise ValueError(f"unknown sparsity target {on!r} (expected one of {', '.join(TARGETS)})")


#: weight sparsity kinds whose zeros were removed from the exported shapes (the layer's weights are dense)
SHRUNK_KINDS = ("dense", "channel", "filter")


def weight_density(kind: str, effective_density: float) -> float:
    """Non-zero fraction of the weights an engine actually holds: channel/filter pruning already
    shrank the layer (its recorded density is for reporting), so those weights are dense."""
    return 1.0 if kind in SHRUNK_KINDS else float(effective_density)


def effectual_macs(macs: float, weight_density: float, input_density: float) -> float:
    """Expected effectual MACs: both operands non-zero (independent zeros)."""
    return float(macs) * float(weight_density) * float(input_density)


def exploits(action: str, on: str, operand: str) -> bool:
    """Whether an action ``action`` on ``on`` acts on the zeros of ``operand``
    (``weights`` or ``inputs``): the intersection acts on both."""
    return action != "none" and (on == operand or on == "intersection")


@dataclass(frozen=True)
class Intersection(DensityModel):
    """Occupancy of the intersection of two independent operands over the same coordinates: a tile
    of ``t`` elements where ``a`` holds ``x`` non-zeros; those ``x`` positions hold the other
    operand's occupancy of an ``x``-element tile, so
    ``P(k) = sum_x P_a(x; t) P_b(k; x)`` (exact for one tile of independent operands; the spread of
    both operands' counts is kept, unlike a uniform model at ``d_a x d_b``)."""

    a: DensityModel
    b: DensityModel

    @property
    def density(self) -> float:  # type: ignore[override]
        return self.a.density * self.b.density

    def occupancy_pmf(self, tile: int) -> np.ndarray:
        pa = self.a.occupancy_pmf(int(tile))
        out = np.zeros(int(tile) + 1)
        for x, p in enumerate(pa):
            if p > 1e-15:
                pb = self.b.occupancy_pmf(x) if x > 0 else np.ones(1)
                out[: pb.size] += p * pb
        return out


def intersection_model(weights: DensityModel, inputs: DensityModel, size: int | None = None) -> DensityModel:
    """Occupancy model of the intersection of two independent operands (:class:`Intersection`;
    the actual-mask path intersects real masks). ``size`` is accepted for symmetry, unused."""
    return Intersection(inputs, weights)


def lockstep_steps(model: DensityModel, tile: int, lanes: int) -> float:
    """Expected steps of ``lanes`` lanes that each process the non-zeros of their own tile of
    ``tile`` elements in lock-step: E[max over lanes of the tile's non-zeros] (>= the mean: the
    load imbalance of skipping)."""
    if tile <= 0 or lanes <= 0:
        return 0.0
    return model.expected_max_nnz(int(tile), int(lanes))


#: Monte-Carlo trials of :func:`grid_intersection_max` (fixed seed: deterministic)
GRID_TRIALS = 400


def grid_intersection_max(inputs: DensityModel, weights: DensityModel, tile: int, rows: int, cols: int,
                          seed: int = 0) -> float:
    """E[max over a ``rows x cols`` grid of PEs of the intersection count of a ``tile``-element
    reduction], where the PEs of a row share one input tile and the PEs of a column one weight
    tile (an output-stationary array): the lanes are *not* independent, so the max is drawn
    jointly -- input and weight occupancies from their models, each PE's intersection
    hypergeometric given both (independent zero positions) -- averaged over ``GRID_TRIALS``
    seeded draws (sampling error ~0.3% at 400 trials for grids >= 4x4)."""
    if tile <= 0 or rows <= 0 or cols <= 0:
        return 0.0
    rng = np.random.default_rng(seed)
    pa, pw = inputs.occupancy_pmf(int(tile)), weights.occupancy_pmf(int(tile))
    a = rng.choice(pa.size, size=(GRID_TRIALS, rows, 1), p=pa / pa.sum())
    return _grid_max(rng, a, pw, tile, cols)


def _grid_max(rng: np.random.Generator, a: np.ndarray, pw: np.ndarray, tile: int, cols: int) -> float:
    """Mean over draws of the grid max: rows' input occupancies ``a`` (draws, rows, 1), columns'
    weight occupancies drawn from ``pw``, each PE's intersection hypergeometric given both."""
    w = rng.choice(pw.size, size=(a.shape[0], 1, cols), p=pw / pw.sum())
    a, w = np.broadcast_arrays(a, w)
    x = rng.hypergeometric(a, int(tile) - a, w)
    return float(x.reshape(a.shape[0], -1).max(axis=1).mean())


def grid_rows_intersection_max(row_counts: np.ndarray, weights: DensityModel, tile: int, cols: int,
                               seed: int = 0) -> float:
    """:func:`grid_intersection_max` with the rows' input occupancies *known* (a real mask):
    ``row_counts`` (groups, rows) holds the non-zeros of each row's ``tile``-element input tile
    in each lock-step group; ``GRID_TRIALS`` seeded draws each pick a group, draw the ``cols``
    columns' weight occupancies from ``weights`` and every PE's intersection hypergeometric given
    both; the mean of the grid maxima over the draws."""
    a_all = np.asarray(row_counts, dtype=np.int64)
    if tile <= 0 or cols <= 0 or a_all.size == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    pw = weights.occupancy_pmf(int(tile))
    return _grid_max(rng, a_all[rng.integers(0, a_all.shape[0], GRID_TRIALS)][:, :, None], pw, tile, cols)


def actual_lockstep_steps(counts: np.ndarray) -> float:
    """Mean over groups of the max non-zeros over the lanes of a group: ``counts`` has shape
    (groups, lanes) of real per-lane non-zero counts."""
    c = np.asarray(counts)
    if c.size == 0:
        return 0.0
    return float(c.reshape(c.shape[0], -1).max(axis=1).mean())
