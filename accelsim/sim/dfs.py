"""Expected cost and spread over inputs of a network whose layers choose their width per input (DFS).

A workload layer with ``compression.dynamic_precision`` (:class:`~accelsim.workload.compression.
DynamicPrecision`) runs, for each input, at the width its gate chose (``0``: skipped). Given, per
gate, the simulated latency / energy of its layers at every width (:class:`GateCosts`, made by
:func:`accelsim.api.simulate`, which simulates the gated layers once per width) and the cost of the
layers without a gate, :func:`combine` gives:

- the expected latency / energy per input: ``fixed + sum_gates sum_b p_g(b) * cost_g(b)``, and
  its split per width class (``expected_*_by_bits``);
- p50 / p95 over inputs: exact over the measured inputs when every gate carries a ``trace`` of
  the same inputs (the joint choice of all gates per input), else under the assumption that the
  gates choose independently of each other (the exact distribution of the sum, by convolution;
  supports above :data:`MAX_SUPPORT` values are merged onto a grid, and a note says how fine);
- the network with every gate at one width (``latency_cycles_by_bits``), the classes' extremes.

Assumptions (stated in the notes of the result): layers are priced independently (as
:func:`accelsim.simulate` does: no overlap between layers); a skipped layer costs nothing (its
weights are not fetched); a layer's cost at a width does not depend on the other layers' choices.
Quantiles are the inverted CDF (the smallest cost reached by at least that share of inputs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: largest support of the independent-gates cost distribution kept exact
MAX_SUPPORT = 20_000
#: a narrower width that saves less than this fraction of the gated layers' latency is "not exploited"
UNEXPLOITED_GAIN = 0.05


@dataclass(frozen=True)
class GateCosts:
    """One gate: its layers, the share of inputs at each width and their summed cost at each width."""

    gate: str
    layers: tuple[str, ...]
    probability: dict[int, float]  # width -> share of inputs (0 = skipped)
    latency_cycles: dict[int, int]  # width -> summed latency of the gate's layers (0 -> 0)
    energy_pj: dict[int, float]
    trace: tuple[int, ...] | None = None


@dataclass
class DynamicPrecisionStats:
    """Expected and spread latency (cycles) / energy (pJ) per input of a dynamic-precision network."""

    gates: int
    inputs: int | None
    exact_spread: bool  # True: per-input traces; False: gates assumed independent
    fixed_latency_cycles: int
    fixed_energy_pj: float
    expected_latency_cycles: float
    p50_latency_cycles: float
    p95_latency_cycles: float
    expected_energy_pj: float
    p50_energy_pj: float
    p95_energy_pj: float
    expected_latency_cycles_by_bits: dict[int, float]  # gated layers' expected share per width class
    expected_energy_pj_by_bits: dict[int, float]
    latency_cycles_by_bits: dict[int, int]  # the network with every gate at that width
    energy_pj_by_bits: dict[int, float]
    decision_share_by_bits: dict[int, float]  # mean over gates of the share of inputs at each width
    notes: list[str] = field(default_factory=list)


def quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` (inverted CDF)."""
    order = np.argsort(values, kind="stable")
    cdf = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cdf, q - 1e-12)), len(values) - 1)])


def _convolve(dists: list[dict[float, float]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Distribution of the sum of independent discrete variables: (values, probabilities, grid step)."""
    vals, probs = np.zeros(1), np.ones(1)
    step = 0.0
    for d in dists:
        dv = np.array(list(d.keys()), dtype=float)
        dp = np.array(list(d.values()), dtype=float)
        vals = (vals[:, None] + dv[None, :]).ravel()
        probs = (probs[:, None] * dp[None, :]).ravel()
        if len(vals) > MAX_SUPPORT:
            lo, hi = float(vals.min()), float(vals.max())
            step = max(step, (hi - lo) / MAX_SUPPORT)
            vals = lo + np.round((vals - lo) / step) * step if step > 0 else vals
        vals, inv = np.unique(vals, return_inverse=True)
        probs = np.bincount(inv.ravel(), weights=probs, minlength=len(vals))
    return vals, probs, step


def combine(fixed_latency_cycles: int, fixed_energy_pj: float, gates: list[GateCosts]) -> DynamicPrecisionStats:
    """Expected value, p50 / p95 and per-width figures of the network cost per input."""
    widths = sorted({b for g in gates for b in g.latency_cycles} | {b for g in gates for b in g.probability})
    exp_lat_b = {b: sum(g.probability.get(b, 0.0) * g.latency_cycles.get(b, 0) for g in gates) for b in widths}
    exp_en_b = {b: sum(g.probability.get(b, 0.0) * g.energy_pj.get(b, 0.0) for g in gates) for b in widths}
    all_lat_b = {b: fixed_latency_cycles + sum(g.latency_cycles[b] for g in gates)
                 for b in widths if all(b in g.latency_cycles for g in gates)}
    all_en_b = {b: fixed_energy_pj + sum(g.energy_pj[b] for g in gates)
                for b in widths if all(b in g.energy_pj for g in gates)}
    share = {b: sum(g.probability.get(b, 0.0) for g in gates) / len(gates) for b in widths}
    notes = ["layers are priced independently; a skipped (0-bit) layer costs nothing; the table rows price "
             "each gated layer at its record's quant"]
    traces = [g.trace for g in gates]
    exact = all(t is not None for t in traces) and len({len(t) for t in traces if t is not None}) == 1
    if exact:
        n = len(traces[0])  # type: ignore[arg-type]
        lat = np.full(n, float(fixed_latency_cycles))
        en = np.full(n, float(fixed_energy_pj))
        for g in gates:
            t = np.asarray(g.trace)
            for b in set(g.trace or ()):
                lat[t == b] += g.latency_cycles[b]
                en[t == b] += g.energy_pj[b]
        w = np.ones(n)
        lat_q = [quantile(lat, w, q) for q in (0.5, 0.95)]
        en_q = [quantile(en, w, q) for q in (0.5, 0.95)]
        inputs: int | None = n
        notes.append(f"p50/p95 are exact over the {n} measured inputs (per-input traces of every gate)")
    else:
        lv, lp, ls = _convolve([{float(g.latency_cycles[b]): p for b, p in g.probability.items() if p > 0}
                                for g in gates])
        ev, ep, es = _convolve([{float(g.energy_pj[b]): p for b, p in g.probability.items() if p > 0} for g in gates])
        lat_q = [fixed_latency_cycles + quantile(lv, lp, q) for q in (0.5, 0.95)]
        en_q = [fixed_energy_pj + quantile(ev, ep, q) for q in (0.5, 0.95)]
        inputs = None
        grid = f"; costs merged on a {ls:.3g}-cycle / {es:.3g}-pJ grid" if ls or es else ""
        notes.append("p50/p95 assume the gates choose independently of each other (the workload's gates do not all "
                     "carry per-input traces of the same length)" + grid)
    return DynamicPrecisionStats(
        gates=len(gates), inputs=inputs, exact_spread=exact, fixed_latency_cycles=fixed_latency_cycles,
        fixed_energy_pj=fixed_energy_pj, expected_latency_cycles=fixed_latency_cycles + sum(exp_lat_b.values()),
        p50_latency_cycles=lat_q[0], p95_latency_cycles=lat_q[1],
        expected_energy_pj=fixed_energy_pj + sum(exp_en_b.values()), p50_energy_pj=en_q[0], p95_energy_pj=en_q[1],
        expected_latency_cycles_by_bits=exp_lat_b, expected_energy_pj_by_bits=exp_en_b,
        latency_cycles_by_bits=all_lat_b, energy_pj_by_bits=all_en_b, decision_share_by_bits=share, notes=notes)


def unexploited_width_notes(hardware: str, gates: list[GateCosts], min_gain: float = UNEXPLOITED_GAIN) -> list[str]:
    """One note naming the width pairs the hardware gains (almost) nothing from: the gated layers at
    the narrower width run less than ``min_gain`` faster (summed over the gates having both widths)."""
    widths = sorted({b for g in gates for b in g.latency_cycles if b > 0})
    pairs = []
    for i, lo in enumerate(widths):
        for hi in widths[i + 1:]:
            both = [g for g in gates if lo in g.latency_cycles and hi in g.latency_cycles]
            t_lo = sum(g.latency_cycles[lo] for g in both)
            t_hi = sum(g.latency_cycles[hi] for g in both)
            if both and t_lo > 0 and t_hi / t_lo < 1.0 + min_gain:
                pairs.append(f"{lo}-bit {t_hi / t_lo:.3f}x faster than {hi}-bit ({t_lo:,} vs {t_hi:,} cycles)")
    if not pairs:
        return []
    return [f"{hardware} barely exploits narrower widths in the gated layers: " + ", ".join(pairs) +
            f" (less than {min_gain:.0%} gain: its datapath has one width, narrower operands only cut memory "
            "traffic; there mainly skipped layers save time)"]


__all__ = ["GateCosts", "DynamicPrecisionStats", "combine", "quantile", "unexploited_width_notes", "MAX_SUPPORT",
           "UNEXPLOITED_GAIN"]
