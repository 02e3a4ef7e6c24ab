"""Integer programs that choose an FPGA accelerator under resource budgets (after HAO, arXiv 2104.12766).

HAO puts an integer program inside its search: given DSP/BRAM/LUT budgets it returns the
latency-optimal accelerator configuration for a DNN (sub)graph on a ZU3EG. HAO's exact variables
were not available to us (literature.md H-F1); the two formulations below are ours, solved exactly
with ``scipy.optimize.milp`` (HiGHS branch and bound, relative gap 0) and checked against
exhaustive enumeration in ``tests/test_fpga.py``.

**Overlay** (:func:`optimize_overlay`): one shared array runs the layers in sequence, as
:mod:`accelsim.engines.fpga` simulates it. Decisions: the array shape ``s`` (``pe_in``, ``pe_out``,
``pe_pix``, ``mac_impl``, ``group_packing``) from a candidate grid; per buffer a depth ``d`` (port
words, both halves) and a memory (BRAM18/URAM); per GEMM of every layer a tiling ``t`` (pixel
tile, channel tile, reduction tile, loop order). Binary variables ``a_s``, ``u_{o,d,mem}``,
``x_{s,g,t}``; continuous ``v_{o,s,d,mem} >= a_s + u_{o,d,mem} - 1`` linearise the buffer cost,
which depends on both the port width (from ``s``) and the depth. ::

    min  sum_{s,g,t} est_{s,g,t} x_{s,g,t}                       (roofline cycles, see engines.fpga)
    s.t. sum_s a_s = 1;  sum_{d,mem} u_{o,d,mem} = 1                for each buffer o
         sum_t x_{s,g,t} = a_s                                     for each shape s, GEMM g
         sum_t need_{o,s,g,t} x_{s,g,t} <= sum_{d,mem} d u_{o,d,mem}   (tile fits half of buffer o)
         sum_s R_r(s) a_s + sum R_r(o,s,d,mem) v_{o,s,d,mem} + R_r(fixed) <= limit_r   for r in DSP, BRAM18, URAM, LUT, FF

Tilings dominated in (estimate, depth needed per buffer) are removed before solving (this does
not change the optimum).

**Pipeline** (:func:`optimize_pipeline`): HAO-style dataflow design for a subgraph: every layer
gets its own array (``pe_in`` x ``pe_out`` lanes, weights held on chip in BRAM or URAM, a line
buffer of ``kernel_h`` input rows), layers overlap at row granularity and the design's frame
interval is its slowest stage. Binary ``x_{l,c}`` picks option ``c`` of layer ``l``; continuous
``T`` is the interval::

    min T   s.t.  sum_c x_{l,c} = 1;  T >= sum_c cycles_{l,c} x_{l,c};  T >= DDR cycles per frame;
                  sum_{l,c} R_r(l,c) x_{l,c} + R_r(fixed) <= limit_r

When no configuration fits, both raise :class:`~accelsim.errors.InfeasibleError` naming the
resource(s) that bind (the smallest amount of each resource any configuration needs, computed
with the other budgets in force).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from ...errors import ConfigError, InfeasibleError
from ...hardware.fpga import (
    RESOURCES, ArrayShape, FpgaAccelerator, FpgaBuffer, Resources, UtilizationTable, array_resources,
    buffer_resources, effective_limits, fixed_resources, port_bits,
)
from ...workload.layer import Elementwise, LayerBase, Pool
from ...workload.workload import Workload
from ...engines.fpga import ArrayParams, TileChoice, Work, default_overhead, tile_table, vector_estimate, work_items

BUFFERS = ("ifmap_sram", "filter_sram", "ofmap_sram")


# --- search spaces ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OverlaySpace:
    """Candidate values the overlay integer program chooses from."""

    pe_in: tuple[int, ...] = (4, 8, 9, 16, 18, 32, 36, 64)
    pe_out: tuple[int, ...] = (4, 8, 12, 16, 24, 32, 48, 64)
    pe_pix: tuple[int, ...] = (1, 2, 4)
    mac_impl: tuple[str, ...] = ("dsp",)
    group_packing: tuple[bool, ...] = (False, True)
    depths: tuple[int, ...] = (512, 1024, 2048, 4096, 8192)
    memories: tuple[str, ...] = ("bram", "uram")

    def shapes(self) -> list[ArrayShape]:
        return [ArrayShape(i, o, p, m, g) for i, o, p, m, g in
                itertools.product(self.pe_in, self.pe_out, self.pe_pix, self.mac_impl, self.group_packing)]

    def size(self) -> int:
        return len(self.shapes()) * (len(self.depths) * len(self.memories)) ** 3


@dataclass(frozen=True)
class PipelineSpace:
    """Candidate per-layer parallelism (lanes over the reduction and over output channels)."""

    parallel: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    memories: tuple[str, ...] = ("bram", "uram")
    #: candidate bit widths per compute stage (weights and activations of the stage both at ``b``);
    #: empty: the base datapath widths (the layers' own quantisation is checked against them)
    bits: tuple[int, ...] = ()


# --- shared helpers --------------------------------------------------------------------------------

def _select_layers(workload: Workload, layers: Sequence[str] | None) -> list[LayerBase]:
    if not layers:
        return list(workload.layers)
    by_name = {l.name: l for l in workload.layers}
    missing = [n for n in layers if n not in by_name]
    if missing:
        raise ConfigError(f"unknown layer(s) {', '.join(missing)}; the workload has {', '.join(list(by_name)[:8])}...",
                          source=f"workload '{workload.name}'", field="layers")
    return [by_name[n] for n in layers]


def _params(base: FpgaAccelerator, shape: ArrayShape) -> ArrayParams:
    ovh = base.tile_overhead_cycles if base.tile_overhead_cycles is not None else default_overhead(shape.pe_in)
    return ArrayParams(shape, base.weight_bits, base.act_bits, base.accumulator_bits, ovh, base.dram_bits_per_cycle())


def _tie_weights(limits: dict[str, int]) -> dict[str, float]:
    """Objective weight per resource unit that breaks latency ties towards smaller designs.

    The weights add at most 0.5 in total (0.1 per resource at 100 % use), so they never outweigh
    one cycle: the latency optimum is unchanged.
    """
    return {r: (0.1 / limits[r] if limits[r] else 0.0) for r in RESOURCES}


def _tie(res: Resources, w: dict[str, float]) -> float:
    return sum(getattr(res, r) * w[r] for r in RESOURCES)


def _pareto(items: list[tuple[tuple, Any]]) -> list[tuple[tuple, Any]]:
    """Items whose key tuple (all to be minimised) no other item dominates; first of equals kept."""
    items = sorted(items, key=lambda it: it[0])
    kept: list[tuple[tuple, Any]] = []
    for key, val in items:
        if any(all(a <= b for a, b in zip(k, key)) for k, _ in kept):
            continue
        kept.append((key, val))
    return kept


@dataclass
class SolveStats:
    method: str
    seconds: float
    variables: int = 0
    constraints: int = 0
    candidates: int = 0
    status: str = ""


def _solve(c: np.ndarray, integrality: np.ndarray, lb: np.ndarray, ub: np.ndarray,
           rows: list[tuple[dict[int, float], float, float]], time_limit_s: float | None):
    """Build the sparse constraint matrix and call scipy.optimize.milp."""
    ri, ci, vals, clo, chi = [], [], [], [], []
    for r, (coefs, lo, hi) in enumerate(rows):
        for j, v in coefs.items():
            ri.append(r)
            ci.append(j)
            vals.append(v)
        clo.append(lo)
        chi.append(hi)
    A = coo_matrix((vals, (ri, ci)), shape=(len(rows), len(c))).tocsr()
    opts: dict[str, Any] = {"mip_rel_gap": 0.0, "presolve": True}
    if time_limit_s:
        opts["time_limit"] = float(time_limit_s)
    return milp(c, integrality=integrality, bounds=Bounds(lb, ub),
                constraints=LinearConstraint(A, np.array(clo), np.array(chi)), options=opts)


# --- overlay ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GemmChoice:
    """The tiling chosen for one GEMM of one layer."""

    layer: str
    tag: str
    choice: TileChoice
    est_cycles: int


@dataclass
class OverlayResult:
    """The chosen overlay accelerator and its estimated latency."""

    hw: FpgaAccelerator
    est_cycles: int
    choices: list[GemmChoice]
    utilization: UtilizationTable
    stats: SolveStats
    layers: list[str] = field(default_factory=list)

    @property
    def est_latency_ms(self) -> float:
        return self.est_cycles / (self.hw.clock_mhz * 1e3)

    @property
    def est_fps(self) -> float:
        return 1e3 / self.est_latency_ms if self.est_cycles else math.inf

    def text(self) -> str:
        h = self.hw
        lines = [
            f"best overlay on {h.device.name} ({self.stats.method}, {self.stats.seconds:.2f} s, "
            f"{self.stats.candidates:,} configurations, {self.stats.variables:,} variables)",
            f"  array: pe_in {h.pe_in} x pe_out {h.pe_out} x pe_pix {h.pe_pix} = {h.num_pes} {h.mac_impl.upper()} lanes "
            f"({h.macs_per_dsp:g} MAC/DSP), group_packing {h.group_packing}",
            "  buffers: " + ", ".join(f"{b} {getattr(h, b).size_kb:g} KB {getattr(h, b).memory}" for b in BUFFERS),
            f"  estimated latency {self.est_cycles:,} cycles = {self.est_latency_ms:.3f} ms at {h.clock_mhz:g} MHz "
            f"({self.est_fps:.1f} fps)",
            "  per-layer tiling:",
        ]
        for g in self.choices:
            lines.append(f"    {g.layer:<24} {g.tag:<10} {g.choice.label():<40} {g.est_cycles:>12,} cycles")
        lines.append(self.utilization.text())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        from ...hardware.io import hardware_to_dict

        return {"method": self.stats.method, "seconds": self.stats.seconds, "est_cycles": self.est_cycles,
                "est_latency_ms": self.est_latency_ms, "est_fps": self.est_fps, "hardware": hardware_to_dict(self.hw),
                "utilization": self.utilization.to_dict(),
                "tilings": [{"layer": g.layer, "gemm": g.tag, "tiling": g.choice.label(), "est_cycles": g.est_cycles}
                            for g in self.choices]}


@dataclass
class _ShapeData:
    shape: ArrayShape
    res: Resources
    ports: dict[str, int]
    # identical GEMMs (same shapes in several layers) share one unit: ((layer, tag), ...), options
    units: list[tuple[tuple[tuple[str, str], ...], list[tuple[int, tuple[int, int, int], TileChoice]]]]


class _OverlayProblem:
    """Candidate shapes, buffer options and per-GEMM tilings of one overlay search."""

    def __init__(self, workload: Workload, base: FpgaAccelerator, space: OverlaySpace, layers: Sequence[str] | None):
        self.base = base
        self.space = space
        self.layers = _select_layers(workload, layers)
        self.limits = effective_limits(base.device, base.budget, base.utilization_limit)
        mems = tuple(m for m in space.memories if m == "bram" or base.device.uram > 0)
        self.mem_opts = [(d, m) for m in mems for d in sorted(space.depths)]
        self.depth_grid = sorted(space.depths)
        fixed = Resources()
        for r in fixed_resources(base.vector_lanes, base.costs).values():
            fixed = fixed + r
        self.fixed = fixed
        self.const_cycles = 0
        bpc = base.dram_bits_per_cycle()
        compute_layers = []
        for layer in self.layers:
            if isinstance(layer, (Elementwise, Pool)):
                self.const_cycles += vector_estimate(layer, base.vector_lanes, base.act_bits, bpc)
            else:
                q = layer.compression.quant
                if q.scheme == "float" or q.weight_bits > base.weight_bits or q.act_bits > base.act_bits:
                    raise ConfigError(f"layer {layer.name!r} needs {q.weight_bits}x{q.act_bits}-bit {q.scheme} operands; "
                                      f"the datapath is {base.weight_bits}x{base.act_bits}-bit int",
                                      source=f"fpga '{base.name}'", field="weight_bits")
                compute_layers.append(layer)
        self.compute_layers = compute_layers
        self.rejected: dict[str, int] = {"resources": 0, "buffers": 0}
        self.shapes: list[_ShapeData] = []
        self.cheapest: list[Resources] = []  # lower bound of each candidate shape's resources
        for shape in space.shapes():
            sd = self._shape_data(shape)
            if sd is not None:
                self.shapes.append(sd)

    def _buffer_res(self, sd: _ShapeData | ArrayShape, buf: str, depth: int, mem: str) -> Resources:
        ports = sd.ports if isinstance(sd, _ShapeData) else port_bits(sd, self.base.weight_bits, self.base.act_bits,
                                                                        self.base.accumulator_bits)
        return buffer_resources(ports[buf], depth * ports[buf], mem)

    def _shape_data(self, shape: ArrayShape) -> _ShapeData | None:
        b = self.base
        res, _ = array_resources(shape, b.weight_bits, b.act_bits, b.accumulator_bits, b.costs, b.dsp_packing)
        ports = port_bits(shape, b.weight_bits, b.act_bits, b.accumulator_bits)
        cheapest = res + self.fixed
        for buf in BUFFERS:
            per = [buffer_resources(ports[buf], d * ports[buf], m) for d, m in self.mem_opts]
            cheapest = cheapest + Resources(**{r: min(getattr(x, r) for x in per) for r in RESOURCES})
        if any(getattr(cheapest, r) > self.limits[r] for r in RESOURCES):
            self.rejected["resources"] += 1
            self._note_min(cheapest)
            return None
        p = _params(b, shape)
        grid = np.array(self.depth_grid, dtype=np.int64)
        port_arr = np.array([ports[buf] for buf in BUFFERS], dtype=np.int64)
        members: dict[Work, list[tuple[str, str]]] = {}
        for layer in self.compute_layers:
            for w in work_items(layer, shape):
                members.setdefault(replace(w, layer="", tag=""), []).append((layer.name, w.tag))
        units = []
        for w, names in members.items():
            table = tile_table(w, p)
            req = -(-(2 * table.need) // port_arr)  # depth (port words) each buffer needs
            idx = np.stack([np.searchsorted(grid, req[:, j]) for j in range(3)], axis=1)
            ok = np.all(idx < len(grid), axis=1)
            if not ok.any():
                self.rejected["buffers"] += 1
                return None
            cand = np.flatnonzero(ok)
            # best candidate per (ifmap, filter, ofmap) depth triple, then the Pareto set of those
            order = np.lexsort((cand, table.tiles[cand], table.dram_bits[cand], table.est[cand]))
            best_per: dict[tuple[int, int, int], int] = {}
            for i in cand[order]:
                key = (int(idx[i, 0]), int(idx[i, 1]), int(idx[i, 2]))
                if key not in best_per:
                    best_per[key] = int(i)
            items = [((int(table.est[i]), *key), i) for key, i in best_per.items()]
            opts = [(int(table.est[i]), tuple(int(grid[j]) for j in key[1:]), table.choice(i))
                    for key, i in _pareto(items)]
            units.append((tuple(names), opts))
        self._note_min(cheapest)
        return _ShapeData(shape, res, ports, units)

    def in_layer_order(self, choices: list[GemmChoice]) -> list[GemmChoice]:
        pos = {l.name: i for i, l in enumerate(self.layers)}
        return sorted(choices, key=lambda g: (pos[g.layer], g.tag))

    def _note_min(self, r: Resources) -> None:
        self.cheapest.append(r)

    def resources_of(self, sd: _ShapeData, bufs: Sequence[tuple[int, str]]) -> Resources:
        total = sd.res + self.fixed
        for buf, (d, m) in zip(BUFFERS, bufs):
            total = total + self._buffer_res(sd, buf, d, m)
        return total

    def infeasible(self, why: str) -> InfeasibleError:
        """Every shape was rejected before solving: which budget binds, with the others in force."""
        limits = self.limits
        need: dict[str, int] = {}
        for r in RESOURCES:
            ok = [c for c in self.cheapest if all(getattr(c, o) <= limits[o] for o in RESOURCES if o != r)]
            if ok and min(getattr(c, r) for c in ok) > limits[r]:
                need[r] = min(getattr(c, r) for c in ok)
        binding = sorted(need, key=lambda r: -need[r] / max(limits[r], 1))
        if binding:
            detail = ", ".join(f"{r} needs at least {need[r]:,} > limit {limits[r]:,}" for r in binding)
            msg = f"no overlay configuration fits {self.base.device.name} under the budget: {detail}; binding resource: {binding[0]}"
        else:
            msg = f"no overlay configuration fits {self.base.device.name} under the budget: {why}"
        err = InfeasibleError(msg)
        err.binding = binding  # type: ignore[attr-defined]
        return err

    def build_hw(self, sd: _ShapeData, bufs: Sequence[tuple[int, str]], suffix: str) -> FpgaAccelerator:
        data = self.base.model_dump()
        s = sd.shape
        data.update(pe_in=s.pe_in, pe_out=s.pe_out, pe_pix=s.pe_pix, mac_impl=s.mac_impl, group_packing=s.group_packing,
                    name=f"{self.base.device.name}-{s.pe_in}x{s.pe_out}x{s.pe_pix}-{suffix}",
                    description=f"chosen by accelsim fpga-optimize ({suffix}) for {', '.join(l.name for l in self.layers[:3])}"
                                f"{'...' if len(self.layers) > 3 else ''}")
        for buf, (d, m) in zip(BUFFERS, bufs):
            data[buf] = FpgaBuffer(size_kb=d * sd.ports[buf] / 8192, memory=m).model_dump()  # type: ignore[arg-type]
        return FpgaAccelerator.model_validate(data)


def _overlay_model(prob: _OverlayProblem):
    """Variables, objective and constraints of the overlay MILP (resource rows kept apart)."""
    nvar = 0
    a_idx: dict[int, int] = {}
    for si, _ in enumerate(prob.shapes):
        a_idx[si] = nvar
        nvar += 1
    u_idx: dict[tuple[int, int], int] = {}
    for bi, _ in enumerate(BUFFERS):
        for mi, _ in enumerate(prob.mem_opts):
            u_idx[bi, mi] = nvar
            nvar += 1
    v_idx: dict[tuple[int, int, int], int] = {}
    for bi, _ in enumerate(BUFFERS):
        for si, _ in enumerate(prob.shapes):
            for mi, _ in enumerate(prob.mem_opts):
                v_idx[bi, si, mi] = nvar
                nvar += 1
    x_idx: dict[tuple[int, int, int], int] = {}
    for si, sd in enumerate(prob.shapes):
        for ui, (_, opts) in enumerate(sd.units):
            for ti, _ in enumerate(opts):
                x_idx[si, ui, ti] = nvar
                nvar += 1
    c = np.zeros(nvar)
    integrality = np.ones(nvar)
    for j in v_idx.values():
        integrality[j] = 0
    for (si, ui, ti), j in x_idx.items():
        names, opts = prob.shapes[si].units[ui]
        c[j] = opts[ti][0] * len(names)
    w = _tie_weights(prob.limits)
    for si, sd in enumerate(prob.shapes):
        c[a_idx[si]] += _tie(sd.res, w)
        for bi, buf in enumerate(BUFFERS):
            for mi, (d, m) in enumerate(prob.mem_opts):
                c[v_idx[bi, si, mi]] += _tie(prob._buffer_res(sd, buf, d, m), w)
    rows: list[tuple[dict[int, float], float, float]] = []
    rows.append(({a_idx[si]: 1.0 for si in a_idx}, 1, 1))
    for bi, _ in enumerate(BUFFERS):
        rows.append(({u_idx[bi, mi]: 1.0 for mi, _ in enumerate(prob.mem_opts)}, 1, 1))
    for si, sd in enumerate(prob.shapes):
        for ui, (_, opts) in enumerate(sd.units):
            link = {x_idx[si, ui, ti]: 1.0 for ti in range(len(opts))}
            link[a_idx[si]] = -1.0
            rows.append((link, 0, 0))
            for bi, _ in enumerate(BUFFERS):
                # a tiling needing more than depth D excludes every buffer choice of depth <= D
                for depth in prob.depth_grid[:-1]:
                    too_big = {x_idx[si, ui, ti]: 1.0 for ti, opt in enumerate(opts) if opt[1][bi] > depth}
                    if not too_big:
                        continue
                    for mi, (d, _) in enumerate(prob.mem_opts):
                        if d <= depth:
                            too_big[u_idx[bi, mi]] = 1.0
                    rows.append((too_big, -np.inf, 1))
    for (bi, si, mi), j in v_idx.items():
        rows.append(({a_idx[si]: 1.0, u_idx[bi, mi]: 1.0, j: -1.0}, -np.inf, 1))
    res_rows: dict[str, tuple[dict[int, float], float]] = {}
    for r in RESOURCES:
        coefs: dict[int, float] = {}
        for si, sd in enumerate(prob.shapes):
            v = getattr(sd.res, r)
            if v:
                coefs[a_idx[si]] = float(v)
            for bi, buf in enumerate(BUFFERS):
                for mi, (d, m) in enumerate(prob.mem_opts):
                    bv = getattr(prob._buffer_res(sd, buf, d, m), r)
                    if bv:
                        coefs[v_idx[bi, si, mi]] = float(bv)
        res_rows[r] = (coefs, float(prob.limits[r] - getattr(prob.fixed, r)))
    return c, integrality, rows, res_rows, (a_idx, u_idx, v_idx, x_idx)


def optimize_overlay(workload: Workload, base: FpgaAccelerator, space: OverlaySpace = OverlaySpace(), *,
                     layers: Sequence[str] | None = None, time_limit_s: float | None = 120.0) -> OverlayResult:
    """The overlay configuration with the smallest estimated latency under ``base``'s budget (MILP).

    ``base`` supplies the device, budget, clock, DDR, bit widths, costs and energy; its shape and
    buffers are replaced. ``layers`` restricts the objective to a subgraph (layer names).
    """
    t0 = time.perf_counter()
    prob = _OverlayProblem(workload, base, space, layers)
    if not prob.shapes:
        raise prob.infeasible("every candidate array shape exceeds a budget or no tile fits the largest buffers")
    c, integrality, rows, res_rows, (a_idx, u_idx, _, x_idx) = _overlay_model(prob)
    nvar = len(c)
    all_rows = rows + [(coefs, -np.inf, hi) for coefs, hi in res_rows.values()]
    res = _solve(c, integrality, np.zeros(nvar), np.ones(nvar), all_rows, time_limit_s)
    seconds = time.perf_counter() - t0
    if res.x is None:
        if res.status == 1:
            raise InfeasibleError(f"the overlay integer program hit its time limit ({time_limit_s} s) before finding "
                                  "a configuration; raise the time limit or shrink the search space")
        raise _diagnose(prob.base.device.name, "overlay", c, integrality, rows, res_rows, prob.limits, prob.fixed,
                        time_limit_s)
    x = np.round(res.x).astype(int)
    si = next(s for s in a_idx if x[a_idx[s]] == 1)
    bufs = [prob.mem_opts[next(mi for mi in range(len(prob.mem_opts)) if x[u_idx[bi, mi]] == 1)]
            for bi in range(len(BUFFERS))]
    sd = prob.shapes[si]
    choices = []
    for ui, (names, opts) in enumerate(sd.units):
        ti = next(t for t in range(len(opts)) if x[x_idx[si, ui, t]] == 1)
        choices.extend(GemmChoice(lname, tag, opts[ti][2], opts[ti][0]) for lname, tag in names)
    choices = prob.in_layer_order(choices)
    hw = prob.build_hw(sd, bufs, "ilp")
    est = sum(g.est_cycles for g in choices) + prob.const_cycles
    status = "optimal" if res.status == 0 else "time limit reached (best found, optimality not proven)"
    stats = SolveStats("milp", seconds, nvar, len(all_rows), _count_configs(prob), status)
    return OverlayResult(hw, est, choices, hw.fits(), stats, [l.name for l in prob.layers])


def _count_configs(prob: _OverlayProblem) -> int:
    return len(prob.shapes) * len(prob.mem_opts) ** 3


def _diagnose(device: str, what: str, c: np.ndarray, integrality: np.ndarray, rows: list, res_rows: dict,
              limits: dict[str, int], fixed: Resources, time_limit_s: float | None) -> InfeasibleError:
    """Which budgets bind (binary model with 0/1 bounds); see :func:`_diagnose_generic`."""
    n = len(c)
    return _diagnose_generic(device, what, integrality, np.zeros(n), np.ones(n), rows, res_rows, limits, fixed,
                             time_limit_s, np.zeros(n))


def exhaustive_overlay(workload: Workload, base: FpgaAccelerator, space: OverlaySpace = OverlaySpace(), *,
                       layers: Sequence[str] | None = None) -> OverlayResult:
    """Enumerate every shape x buffer combination (the reference the MILP is tested against)."""
    t0 = time.perf_counter()
    prob = _OverlayProblem(workload, base, space, layers)
    best_val: float | None = None
    best: tuple[_ShapeData, tuple, list[GemmChoice]] | None = None
    w = _tie_weights(prob.limits)
    for sd in prob.shapes:
        arrays = [(np.array([o[0] for o in opts]), np.array([o[1] for o in opts])) for _, opts in sd.units]
        for combo in itertools.product(prob.mem_opts, repeat=len(BUFFERS)):
            total = prob.resources_of(sd, combo)
            if any(getattr(total, r) > prob.limits[r] for r in RESOURCES):
                continue
            depths = np.array([d for d, _ in combo])
            val = prob.const_cycles
            picks = []
            ok = True
            for (est, req), (names, opts) in zip(arrays, sd.units):
                mask = np.all(req <= depths, axis=1)
                if not mask.any():
                    ok = False
                    break
                ti = int(np.flatnonzero(mask)[np.argmin(est[mask])])
                val += int(est[ti]) * len(names)
                picks.extend(GemmChoice(lname, tag, opts[ti][2], int(est[ti])) for lname, tag in names)
            score = val + _tie(total, w)
            if ok and (best_val is None or score < best_val):
                best_val, best = score, (sd, combo, picks)
    seconds = time.perf_counter() - t0
    if best is None:
        if not prob.shapes:
            raise prob.infeasible("every candidate array shape exceeds a budget or no tile fits the largest buffers")
        c, integrality, rows, res_rows, _ = _overlay_model(prob)
        raise _diagnose(prob.base.device.name, "overlay", c, integrality, rows, res_rows, prob.limits, prob.fixed, None)
    sd, combo, picks = best
    picks = prob.in_layer_order(picks)
    hw = prob.build_hw(sd, combo, "exhaustive")
    stats = SolveStats("exhaustive", seconds, 0, 0, _count_configs(prob), "optimal")
    est = sum(g.est_cycles for g in picks) + prob.const_cycles
    return OverlayResult(hw, est, picks, hw.fits(), stats, [l.name for l in prob.layers])
# --- pipeline (HAO-style dataflow) ----------------------------------------------------------------

@dataclass(frozen=True)
class StageOption:
    """One way to build the stage of one layer."""

    pe_in: int
    pe_out: int
    memory: str  # where the weights live ("-" for weight-less stages)
    cycles: int
    res: Resources
    lanes: int
    weight_bits: int = 0  # the stage's datapath widths (0: weight-less stage)
    act_bits: int = 0

    def label(self) -> str:
        if self.memory == "-":
            return f"{self.lanes} vector lanes"
        return f"{self.pe_in} x {self.pe_out} lanes {self.weight_bits}x{self.act_bits}b, weights in {self.memory}"


@dataclass(frozen=True)
class StageChoice:
    layer: str
    op: str
    option: StageOption
    macs: int


@dataclass
class PipelineResult:
    """The chosen per-layer parallelism of a dataflow design and its throughput."""

    device: str
    clock_mhz: float
    stages: list[StageChoice]
    interval_cycles: int
    dram_cycles: int
    latency_cycles: int
    utilization: UtilizationTable
    stats: SolveStats

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.interval_cycles if self.interval_cycles else math.inf

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def bottleneck(self) -> str:
        slowest = max(self.stages, key=lambda s: s.option.cycles)
        if self.dram_cycles >= slowest.option.cycles:
            return "DDR bandwidth"
        return f"stage {slowest.layer}"

    def text(self) -> str:
        lines = [
            f"best pipeline on {self.device} ({self.stats.method}, {self.stats.seconds:.2f} s, "
            f"{self.stats.candidates:,} configurations, {self.stats.variables:,} variables)",
            f"  frame interval {self.interval_cycles:,} cycles = {self.fps:,.1f} fps at {self.clock_mhz:g} MHz "
            f"(bound by {self.bottleneck}); one-frame latency ~{self.latency_cycles:,} cycles = {self.latency_ms:.3f} ms",
            f"  {'stage':<24} {'op':<11} {'parallelism':<34} {'cycles':>12} {'util':>6} {'DSP':>5} {'BRAM18':>6} {'URAM':>5} {'LUT':>7}",
        ]
        for s in self.stages:
            o = s.option
            util = s.macs / (o.cycles * o.lanes) if o.cycles and s.macs else 0.0
            lines.append(f"  {s.layer:<24} {s.op:<11} {o.label():<34} {o.cycles:>12,} {util:>6.0%} {o.res.dsp:>5} "
                         f"{o.res.bram18:>6} {o.res.uram:>5} {o.res.lut:>7,}")
        lines.append(self.utilization.text())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.stats.method, "seconds": self.stats.seconds, "interval_cycles": self.interval_cycles,
                "fps": self.fps, "latency_cycles": self.latency_cycles, "dram_cycles": self.dram_cycles,
                "utilization": self.utilization.to_dict(),
                "stages": [{"layer": s.layer, "op": s.op, "pe_in": s.option.pe_in, "pe_out": s.option.pe_out,
                            "memory": s.option.memory, "cycles": s.option.cycles, "weight_bits": s.option.weight_bits,
                            "act_bits": s.option.act_bits, **s.option.res.as_dict()}
                           for s in self.stages]}


def _cands(total: int, parallel: Sequence[int]) -> list[int]:
    vals = sorted({p for p in parallel if p < total} | ({total} if total <= max(parallel) else set()))
    return vals or [min(parallel)]


def _stage_options(layer: LayerBase, base: FpgaAccelerator, space: PipelineSpace, mems: Sequence[str],
                   bits: int | None = None) -> list[StageOption]:
    """Every (parallelism, weight memory) of ``layer``'s stage with its cycles per frame and resources.

    ``bits``: build the stage at ``bits x bits`` (a decision of the integer program) instead of the
    base datapath; the layer's own quantisation is then not checked (the program chooses it).
    """
    b, costs = base, base.costs
    ab, wb = (b.act_bits, b.weight_bits) if bits is None else (bits, bits)
    stage = Resources(lut=costs.lut_per_stage, ff=costs.ff_per_stage)
    if isinstance(layer, (Elementwise, Pool)):
        out = []
        for v in sorted(set(space.parallel)):
            res = stage + Resources(lut=math.ceil(v * costs.lut_per_vector_lane), ff=math.ceil(v * costs.ff_per_vector_lane))
            if isinstance(layer, Pool) and not layer.global_pool and layer.kernel_h > 1:
                res = res + buffer_resources(v * ab, layer.kernel_h * layer.in_w * layer.channels * ab, "bram")
            out.append(StageOption(1, v, "-", max(math.ceil(layer.vector_ops / v), 1), res, v))
        return out
    gemms = layer.gemms()
    if len(gemms) != 1 or layer.op not in ("conv2d", "linear") or not gemms[0].b_is_weight:
        raise ConfigError(f"layer {layer.name!r} ({layer.op}): pipeline mode builds conv2d, linear, pool and elementwise "
                          "stages only (recurrent layers and activation x activation matmuls need the overlay)",
                          source="fpga-optimize --mode pipeline", field="layers")
    q = layer.compression.quant
    if bits is None and (q.scheme == "float" or q.weight_bits > wb or q.act_bits > ab):
        raise ConfigError(f"layer {layer.name!r} needs {q.weight_bits}x{q.act_bits}-bit {q.scheme} operands; the datapath is "
                          f"{wb}x{ab}-bit int", source=f"fpga '{base.name}'", field="weight_bits")
    g = gemms[0]
    K, N = g.k, g.n * g.count
    grouped = g.count > 1
    line = Resources()
    conv = g.conv
    out = []
    for pi in _cands(K, space.parallel):
        for po in _cands(N, space.parallel):
            shape = ArrayShape(pi, po, 1, b.mac_impl, grouped)
            arr, _ = array_resources(shape, wb, ab, b.accumulator_bits, costs, b.dsp_packing)
            if conv is not None and conv.kernel_h > 1:
                in_port = pi * ab * (po if grouped else 1)
                line = buffer_resources(in_port, conv.kernel_h * conv.in_w * conv.channels * g.count * ab, "bram")
            cycles = g.m * math.ceil(K / pi) * math.ceil(N / po)
            for mem in mems:
                weights = buffer_resources(pi * po * wb, g.k * g.n * g.count * wb, mem)
                out.append(StageOption(pi, po, mem, cycles, stage + arr + line + weights, pi * po, wb, ab))
    return out


def _fill_cycles(layers: list[LayerBase], cycles: list[int]) -> int:
    """Cycles before each stage's successor can start (row-granular overlap through line buffers)."""
    fill = 0
    for cur, nxt, cyc in zip(layers, layers[1:], cycles):
        out_h = getattr(cur, "out_h", None)
        need = getattr(nxt, "kernel_h", None) if not getattr(nxt, "global_pool", False) else None
        if out_h and need and nxt.op in ("conv2d", "pool"):
            fill += math.ceil(cyc * min(1.0, need / out_h))
        elif out_h and nxt.op == "elementwise":
            fill += math.ceil(cyc / out_h)
        else:
            fill += cyc
    return fill


class _PipelineProblem:
    def __init__(self, workload: Workload, base: FpgaAccelerator, space: PipelineSpace, layers: Sequence[str] | None):
        self.base = base
        self.layers = _select_layers(workload, layers)
        self.limits = effective_limits(base.device, base.budget, base.utilization_limit)
        mems = tuple(m for m in space.memories if m == "bram" or base.device.uram > 0) or ("bram",)
        self.fixed = fixed_resources(0, base.costs)["control"]
        self.options: list[list[StageOption]] = []
        self.raw_count = 1
        for layer in self.layers:
            weightless = isinstance(layer, (Elementwise, Pool))
            kept_all: list[StageOption] = []
            n_raw = 0
            # with bit widths as decisions, dominance is judged within one bit width (accuracy differs)
            for bits in ((None,) if weightless or not space.bits else space.bits):
                opts = _stage_options(layer, base, space, mems, bits)
                n_raw += len(opts)
                kept_all += [o for _, o in _pareto([((o.cycles, *o.res.as_dict().values()), o) for o in opts])]
            self.raw_count *= n_raw
            self.options.append(kept_all)
        first, last = self.layers[0], self.layers[-1]
        io_bits = (first.input_words + last.output_words) * base.act_bits
        self.dram_cycles = math.ceil(io_bits / base.dram_bits_per_cycle())

    def result(self, picks: list[StageOption], method: str, seconds: float, nvar: int, ncons: int) -> PipelineResult:
        used = self.fixed
        comps: dict[str, Resources] = {"control": self.fixed}
        for layer, o in zip(self.layers, picks):
            used = used + o.res
            comps[layer.name] = o.res
        table = UtilizationTable(self.base.device.name, used.as_dict(), self.limits,
                                 {r: self.base.device.limit(r) for r in RESOURCES},
                                 {k: v.as_dict() for k, v in comps.items()} if len(comps) <= 6 else
                                 {"stages": (used + Resources(**{r: -getattr(self.fixed, r) for r in RESOURCES})).as_dict(),
                                  "control": self.fixed.as_dict()})
        stage_cycles = [o.cycles for o in picks]
        interval = max(max(stage_cycles), self.dram_cycles)
        latency = interval + _fill_cycles(self.layers, stage_cycles)
        stages = [StageChoice(l.name, l.op, o, l.macs) for l, o in zip(self.layers, picks)]
        stats = SolveStats(method, seconds, nvar, ncons, self.raw_count, "optimal")
        return PipelineResult(self.base.device.name, self.base.clock_mhz, stages, interval, self.dram_cycles, latency,
                              table, stats)


def _pipeline_model(prob: _PipelineProblem):
    nvar = 1  # T
    x_idx: dict[tuple[int, int], int] = {}
    for li, opts in enumerate(prob.options):
        for ci, _ in enumerate(opts):
            x_idx[li, ci] = nvar
            nvar += 1
    c = np.zeros(nvar)
    c[0] = 1.0
    w = _tie_weights(prob.limits)
    integrality = np.ones(nvar)
    integrality[0] = 0
    for (li, ci), j in x_idx.items():
        c[j] = _tie(prob.options[li][ci].res, w)
    rows: list[tuple[dict[int, float], float, float]] = []
    for li, opts in enumerate(prob.options):
        rows.append(({x_idx[li, ci]: 1.0 for ci in range(len(opts))}, 1, 1))
        stage = {x_idx[li, ci]: float(o.cycles) for ci, o in enumerate(opts)}
        stage[0] = -1.0
        rows.append((stage, -np.inf, 0))
    res_rows = {}
    for r in RESOURCES:
        coefs = {x_idx[li, ci]: float(getattr(o.res, r)) for li, opts in enumerate(prob.options)
                 for ci, o in enumerate(opts) if getattr(o.res, r)}
        res_rows[r] = (coefs, float(prob.limits[r] - getattr(prob.fixed, r)))
    lb = np.zeros(nvar)
    ub = np.ones(nvar)
    lb[0] = prob.dram_cycles
    ub[0] = np.inf
    return c, integrality, lb, ub, rows, res_rows, x_idx


def optimize_pipeline(workload: Workload, base: FpgaAccelerator, space: PipelineSpace = PipelineSpace(), *,
                      layers: Sequence[str] | None = None, time_limit_s: float | None = 120.0) -> PipelineResult:
    """Per-layer parallelism of a dataflow design minimising the frame interval under the budget (MILP).

    Every selected layer becomes a stage with its own array; weights stay on chip. ``base``
    supplies device, budget, clock, DDR, bit widths and costs.
    """
    t0 = time.perf_counter()
    prob = _PipelineProblem(workload, base, space, layers)
    c, integrality, lb, ub, rows, res_rows, x_idx = _pipeline_model(prob)
    all_rows = rows + [(coefs, -np.inf, hi) for coefs, hi in res_rows.values()]
    res = _solve(c, integrality, lb, ub, all_rows, time_limit_s)
    if res.x is None:
        if res.status == 1:
            raise InfeasibleError(f"the pipeline integer program hit its time limit ({time_limit_s} s) before finding "
                                  "a configuration; raise the time limit or shrink the search space")
        zero = np.zeros(len(c))
        raise _diagnose_generic(prob.base.device.name, "pipeline", integrality, lb, ub, rows, res_rows, prob.limits,
                                prob.fixed, time_limit_s, zero)
    x = np.round(res.x[1:]).astype(int)
    picks = []
    for li, opts in enumerate(prob.options):
        ci = next(ci for ci in range(len(opts)) if x[x_idx[li, ci] - 1] == 1)
        picks.append(opts[ci])
    out = prob.result(picks, "milp", time.perf_counter() - t0, len(c), len(all_rows))
    if res.status != 0:
        out.stats.status = "time limit reached (best found, optimality not proven)"
    return out


def used_if_fits(prob, picks):  # type: ignore[no-untyped-def]
    """Resources of ``prob.fixed`` plus the chosen stage options, or None if any exceeds its limit."""
    used = prob.fixed
    for o in picks:
        used = used + o.res
    return None if any(getattr(used, r) > prob.limits[r] for r in RESOURCES) else used


def exhaustive_pipeline(workload: Workload, base: FpgaAccelerator, space: PipelineSpace = PipelineSpace(), *,
                        layers: Sequence[str] | None = None, max_combinations: int = 2_000_000) -> PipelineResult:
    """Enumerate every combination of (non-dominated) stage options: the reference for tests."""
    t0 = time.perf_counter()
    prob = _PipelineProblem(workload, base, space, layers)
    total = math.prod(len(o) for o in prob.options)
    if total > max_combinations:
        raise ConfigError(f"{total:,} combinations exceed max_combinations {max_combinations:,}; use optimize_pipeline",
                          source="exhaustive_pipeline")
    w = _tie_weights(prob.limits)
    best = None
    best_key = None
    for picks in itertools.product(*prob.options):
        used = used_if_fits(prob, picks)
        if used is None:
            continue
        interval = max(max(o.cycles for o in picks), prob.dram_cycles)
        key = interval + _tie(used, w)
        if best_key is None or key < best_key:
            best, best_key = list(picks), key
    if best is None:
        c, integrality, lb, ub, rows, res_rows, _ = _pipeline_model(prob)
        raise _diagnose_generic(prob.base.device.name, "pipeline", integrality, lb, ub, rows, res_rows, prob.limits,
                                prob.fixed, None, np.zeros(len(c)))
    return prob.result(best, "exhaustive", time.perf_counter() - t0, 0, 0)


def _diagnose_generic(device: str, what: str, integrality: np.ndarray, lb: np.ndarray, ub: np.ndarray, rows: list,
                      res_rows: dict, limits: dict[str, int], fixed: Resources, time_limit_s: float | None,
                      zero: np.ndarray) -> InfeasibleError:
    """Which budgets bind: the least of each resource any configuration needs with the other budgets in force.

    A resource binds when even that least amount exceeds its limit. When none does on its own,
    the budgets are jointly infeasible and the message says so.
    """
    need: dict[str, int] = {}
    for r in RESOURCES:
        coefs, _ = res_rows[r]
        obj = zero.copy()
        for j, v in coefs.items():
            obj[j] = v
        others = [(cf, -np.inf, hi) for o, (cf, hi) in res_rows.items() if o != r]
        sol = _solve(obj, integrality, lb, ub, rows + others, time_limit_s)
        if sol.x is None:
            continue
        least = int(round(sol.fun)) + getattr(fixed, r)
        if least > limits[r]:
            need[r] = least
    if need:
        order = sorted(need, key=lambda r: -need[r] / max(limits[r], 1))
        detail = ", ".join(f"{r} needs at least {need[r]:,} > limit {limits[r]:,}" for r in order)
        err = InfeasibleError(f"no {what} configuration fits {device} under the budget: {detail}; binding resource: {order[0]}")
        err.binding = order  # type: ignore[attr-defined]
        return err
    err = InfeasibleError(f"no {what} configuration fits {device} under the budget: no single resource explains it "
                          "(the budgets exclude every combination jointly); relax several budgets or widen the search space")
    err.binding = []  # type: ignore[attr-defined]
    return err
