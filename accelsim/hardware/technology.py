"""Energy scaling across CMOS technology nodes (Stillmaker & Baas 2017).

Model: the dynamic energy of a logic or SRAM operation at node ``n`` relative to 45 nm is

    factor(n) = E(n, V) / E(45, V),   E(n, V) = a_n V^2 + b_n V + c_n,

with the per-node polynomial coefficients fitted by A. Stillmaker and B. Baas, "Scaling equations
for the accurate prediction of CMOS device performance from 180 nm to 7 nm", Integration, the
VLSI Journal 58 (2017) 74-81 (HSPICE on PTM/ITRS models, R^2 > 0.95), as transcribed in
Accelergy's ``hwcomponents`` scaling module for the nodes 130, 90, 65, 45, 32, 20, 16, 14, 10 and
7 nm. Both nodes are evaluated at the same supply ``V = 0.8 V`` (hwcomponents' default), so the
factor is a pure technology effect; between tabulated nodes the polynomial value is linearly
interpolated in the node's table position (as hwcomponents does).

Validity: 7..130 nm (the tabulated range); other nodes are rejected, never extrapolated.
Examples: 45 nm -> 1.0 exactly, 7 nm -> 0.0943, 130 nm -> 3.07.
"""
from __future__ import annotations

import math

#: tabulated nodes (nm), largest first
TECH_NODES_NM: tuple[int, ...] = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)
#: (a, b, c) of E = a V^2 + b V + c per node of :data:`TECH_NODES_NM` (Stillmaker & Baas 2017)
ENERGY_POLY: tuple[tuple[float, float, float], ...] = (
    (7.171, -6.709, 2.904),
    (4.762, -4.781, 2.092),
    (3.755, -4.398, 1.975),
    (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471),
    (0.373, -0.1582, 0.04104),
    (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239),
    (0.2068, -0.09311, 0.02375),
    (0.1776, -0.09097, 0.02447),
)
REFERENCE_NODE_NM = 45
SCALING_VDD_V = 0.8
MIN_NODE_NM, MAX_NODE_NM = min(TECH_NODES_NM), max(TECH_NODES_NM)


def _poly(i: int, vdd: float) -> float:
    a, b, c = ENERGY_POLY[i]
    return a * vdd * vdd + b * vdd + c


def _energy_at(node_nm: float, vdd: float) -> float:
    if not MIN_NODE_NM <= node_nm <= MAX_NODE_NM:
        raise ValueError(f"technology node {node_nm} nm outside the scaling range {MIN_NODE_NM}..{MAX_NODE_NM} nm")
    for i in range(len(TECH_NODES_NM) - 1):
        hi, lo = TECH_NODES_NM[i], TECH_NODES_NM[i + 1]
        if node_nm == hi:
            return _poly(i, vdd)
        if lo < node_nm < hi:
            t = (hi - node_nm) / (hi - lo)
            return _poly(i, vdd) * (1 - t) + _poly(i + 1, vdd) * t
    return _poly(len(TECH_NODES_NM) - 1, vdd)


def energy_scale(node_nm: float, vdd: float = SCALING_VDD_V) -> float:
    """Dynamic energy at ``node_nm`` relative to 45 nm (1.0 at 45 nm); ValueError outside 7..130 nm."""
    if node_nm == REFERENCE_NODE_NM:
        return 1.0
    f = _energy_at(node_nm, vdd) / _energy_at(REFERENCE_NODE_NM, vdd)
    assert math.isfinite(f) and f > 0
    return f
