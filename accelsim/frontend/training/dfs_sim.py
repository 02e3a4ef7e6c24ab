"""Input-dependent latency / energy of a DFS network on a hardware model.

For each bit width ``b`` of the DFS set (``0`` excluded) the network is exported with every gated
block's two convs at ``b``-bit weights and activations (full precision is priced at 16 bits, the
IR's widest integer; ungated layers at the hardware's 8-bit baseline) and simulated once
(:func:`accelsim.simulate`). The cost of one input is then the sum over layers of the simulated
latency / energy at the width its gate chose: a skipped block (``b = 0``) costs nothing for its
two convs; every other layer (stem, shortcuts, adds, pooling, classifier) is always paid. Over a
data set this gives the exact per-input distribution (mean, p50, p95) under the simulator's
per-layer model (layers are simulated independently of each other, as the simulator does).

Hardware that cannot exploit a narrower width (e.g. an int8 datapath, where 4-bit MACs take as
long as 8-bit ones) shows equal per-layer figures for those widths; :func:`simulate_dfs` lists
them in ``notes``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._deps import require_torch
from .dfs import DFS, FULL_BITS, SIM_FULL_BITS, plain_copy
from .metrics import LayerCompression

torch = require_torch()
nn = torch.nn


@dataclass
class DFSSimResult:
    """Per-input latency (us) / energy (uJ) on one hardware model, with expected value and spread."""

    hardware: str
    latency_us: np.ndarray
    energy_uj: np.ndarray
    by_bits_latency_us: dict[int, float] = field(default_factory=dict)  # whole network with every block at b
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Mean, p50, p95 (inverted CDF, as :mod:`accelsim.sim.dfs`) of the per-input latency / energy."""
        lat, en = self.latency_us, self.energy_uj

        def q(v: np.ndarray, p: float) -> float:
            return float(np.percentile(v, p, method="inverted_cdf"))
        return {"expected_latency_us": float(lat.mean()), "p50_latency_us": q(lat, 50),
                "p95_latency_us": q(lat, 95), "expected_energy_uj": float(en.mean()),
                "p50_energy_uj": q(en, 50), "p95_energy_uj": q(en, 95)}


def simulate_dfs(model: "nn.Module", method: DFS, x: "torch.Tensor", run: Callable[[Any], Any],
                 name: str = "dfs") -> DFSSimResult:
    """Per-input latency / energy of ``model`` (trained with ``method``) for the inputs ``x``.

    ``run`` simulates one workload and returns its report, e.g.
    ``lambda wl: accelsim.simulate(wl, hw, compare_dense=False)`` (the front-end does not import the
    simulator itself: it may depend on the workload IR only).
    """
    from .export import export_trained

    choices = method.choices(model, x)
    net = plain_copy(model)
    convs = {n: [f"{n}.conv1", f"{n}.conv2"] for n in choices}
    per_layer: dict[int, dict[str, tuple[float, float]]] = {}
    hw_name = ""
    always: dict[str, tuple[float, float]] = {}
    widths = [b for b in method.cfg.bits if b != 0]
    for b in widths:
        sb = min(b, SIM_FULL_BITS)
        recs = {c: LayerCompression(name=c, weight_bits=sb, act_bits=sb, scheme="int") for cs in convs.values() for c in cs}
        wl = export_trained(net, recs, x[:1], name=f"{name}_w{b}", method="dfs")
        rep = run(wl)
        hw_name = rep.hardware
        stats = {s.layer: (s.latency_cycles / rep.clock_mhz, s.energy_pj / 1e6) for s in rep.layers}
        per_layer[b] = stats
        gated = {c for cs in convs.values() for c in cs}
        if not always:
            always = {k: v for k, v in stats.items() if k not in gated}
    n = len(x)
    lat = np.full(n, sum(v[0] for v in always.values()))
    en = np.full(n, sum(v[1] for v in always.values()))
    for blk, ch in choices.items():
        c = ch.cpu().numpy()
        for b in widths:
            sel = c == b
            lat[sel] += sum(per_layer[b][cv][0] for cv in convs[blk])
            en[sel] += sum(per_layer[b][cv][1] for cv in convs[blk])
    notes = []
    for i, b in enumerate(widths[:-1]):
        for b2 in widths[i + 1:]:
            same = [blk for blk in convs if all(per_layer[b][cv][0] == per_layer[b2][cv][0] for cv in convs[blk])]
            if same:
                notes.append(f"{hw_name}: {b}-bit and {min(b2, SIM_FULL_BITS)}-bit convs take the "
                             f"same time in {len(same)}/{len(convs)} blocks (the datapath does not exploit the narrower width)")
    by_bits = {b: sum(v[0] for v in per_layer[b].values()) for b in widths}
    if 0 in method.cfg.bits:
        by_bits[0] = sum(v[0] for v in always.values())
    if FULL_BITS in widths:
        notes.append(f"full precision is priced as {SIM_FULL_BITS}-bit integer arithmetic")
    return DFSSimResult(hw_name, lat, en, by_bits, notes)


__all__ = ["simulate_dfs", "DFSSimResult", "plain_copy", "SIM_FULL_BITS"]
