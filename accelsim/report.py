"""Per-layer results, their tidy tables, summaries and breakdown plots."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._validation import atomic_write_text, dumps_strict_json
from .components import COMPONENT_ORDER, component_sort_key
from .stats import duration_text

if TYPE_CHECKING:
    from .sim.dfs import DynamicPrecisionStats

__all__ = ["COMPONENT_ORDER", "LayerStats", "Report", "SWEEP_METRICS", "GainSplit", "dense_gap_note", "duration_text",
           "energy_phrase", "speed_phrase"]

#: ratios within this of 1 are "same latency" / "same energy"
SAME_RATIO_TOL = 0.005

#: the scalar totals of :meth:`Report.summary` that :meth:`Report.metrics` keeps (plus energy and
#: area by component, flattened); what the design-space explorer stores for every point
SWEEP_METRICS = (
    "latency_cycles", "latency_ms", "energy_pj", "energy_uj", "edp_uj_ms", "macs", "compute_cycles", "stall_cycles",
    "utilization", "inferences_per_s", "tops_per_w", "dram_read_bytes", "dram_write_bytes", "pe_count", "clock_mhz",
    "dram_bw_gbps", "peak_gops", "achieved_gops", "operational_intensity", "layers",
)


@dataclass
class LayerStats:
    """Everything measured for one layer (cycles at the hardware clock, energies in pJ)."""

    layer: str
    op: str
    engine: str
    macs: int
    dense_macs: int
    compute_cycles: int
    stall_cycles: int
    fill_cycles: int
    drain_cycles: int
    utilization: float
    compute_utilization: float
    mapping_efficiency: float
    dram_read_bytes: float
    dram_write_bytes: float
    compulsory_dram_bytes: float
    dram_busy_cycles: int
    energy_by_component_pj: dict[str, float]
    sram_accesses: dict[str, int] = field(default_factory=dict)
    dram_read_bytes_by_operand: dict[str, float] = field(default_factory=dict)
    bottleneck: str = "compute"
    bottleneck_reason: str = ""
    timing_source: str = ""
    notes: list[str] = field(default_factory=list)
    stall_input_cycles: int = 0
    stall_output_cycles: int = 0
    dense_latency_cycles: int | None = None
    dense_energy_pj: float | None = None
    pe_count: int = 1
    extra: dict[str, float] = field(default_factory=dict)
    actions_by_component: dict[str, dict[str, int]] = field(default_factory=dict)
    decode_busy_cycles: int = 0
    mapping: str = ""  # how the engine mapped the layer (loop-nest text, "scalesim fold order (ws)", or empty)
    #: SCALE-Sim CALC mode (``stall_model: none`` on a systolic array): the start-up DRAM fill and
    #: final ofmap drain that SCALE-Sim's "Total Cycles (incl. prefetch)" adds; 0 elsewhere
    prefetch_cycles: int = 0
    #: the dense original on the same hardware in SCALE-Sim's fold order (``mapping: scalesim``), for
    #: the mapping/compression gain split (systolic arrays, ``compare_dense``); None elsewhere
    fold_latency_cycles: int | None = None
    fold_energy_pj: float | None = None

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    @property
    def latency_cycles(self) -> int:
        return self.fill_cycles + self.compute_cycles + self.stall_cycles + self.drain_cycles

    @property
    def latency_incl_prefetch_cycles(self) -> int:
        """``latency_cycles`` plus ``prefetch_cycles`` (SCALE-Sim's "Total Cycles (incl. prefetch)"
        in CALC mode, where ``latency_cycles`` is its "Total Cycles"; equal elsewhere)."""
        return self.latency_cycles + self.prefetch_cycles

    @property
    def energy_pj(self) -> float:
        return float(sum(self.energy_by_component_pj.values()))

    def copy_for(self, layer: str, energy_by_component_pj: dict[str, float] | None = None) -> "LayerStats":
        """A copy for ``layer`` (same shape and compression), optionally with other energies.

        The copy has its own energy dict and notes; the count dicts of the program
        (``sram_accesses``, ``dram_read_bytes_by_operand``, ``extra``, ``actions_by_component``)
        are shared with this one -- treat them as read-only. (Hot in sweeps: no ``__init__``.)
        """
        new = LayerStats.__new__(LayerStats)
        d = new.__dict__
        d.update(self.__dict__)
        d["layer"] = layer
        d["energy_by_component_pj"] = dict(self.energy_by_component_pj if energy_by_component_pj is None
                                           else energy_by_component_pj)
        d["notes"] = list(self.notes)
        return new

    @property
    def speedup_vs_dense(self) -> float | None:
        if self.dense_latency_cycles is None or self.latency_cycles == 0:
            return None
        return self.dense_latency_cycles / self.latency_cycles

    @property
    def gain_split(self) -> "GainSplit | None":
        """Latency and energy gain vs the dense fold-order baseline, split into mapping x compression."""
        if self.fold_latency_cycles is None or self.dense_latency_cycles is None or self.dense_energy_pj is None \
                or self.fold_energy_pj is None:
            return None
        return GainSplit.of(self.fold_latency_cycles, self.dense_latency_cycles, self.latency_cycles,
                            self.fold_energy_pj, self.dense_energy_pj, self.energy_pj)

    def row(self) -> dict[str, Any]:
        r: dict[str, Any] = {
            "layer": self.layer, "op": self.op, "engine": self.engine,
            "compute_cycles": self.compute_cycles, "stall_cycles": self.stall_cycles,
            "total_cycles": self.total_cycles, "fill_cycles": self.fill_cycles, "drain_cycles": self.drain_cycles,
            "latency_cycles": self.latency_cycles, "utilization": self.utilization,
            "compute_utilization": self.compute_utilization, "mapping_efficiency": self.mapping_efficiency,
            "macs": self.macs, "dense_macs": self.dense_macs,
            "dram_read_bytes": self.dram_read_bytes, "dram_write_bytes": self.dram_write_bytes,
            "compulsory_dram_bytes": self.compulsory_dram_bytes,
            "energy_pj": self.energy_pj,
        }
        for comp in sorted(self.energy_by_component_pj, key=component_sort_key):
            r[f"energy_{comp}_pj"] = self.energy_by_component_pj[comp]
        for k, v in self.sram_accesses.items():
            r[k] = v
        for k, v in self.dram_read_bytes_by_operand.items():
            r[f"dram_read_bytes_{k}"] = v
        r["bottleneck"] = self.bottleneck
        r["bottleneck_reason"] = self.bottleneck_reason
        if self.dense_latency_cycles is not None:
            r["dense_latency_cycles"] = self.dense_latency_cycles
            r["speedup_vs_dense"] = self.speedup_vs_dense
            r["dense_energy_pj"] = self.dense_energy_pj
            r["energy_saving_vs_dense"] = (self.dense_energy_pj / self.energy_pj) if self.energy_pj else None
        split = self.gain_split
        if split is not None:
            r.update(split.columns())
        if self.prefetch_cycles:
            r["latency_incl_prefetch_cycles"] = self.latency_incl_prefetch_cycles
        r["timing_source"] = self.timing_source
        r["mapping"] = self.mapping
        r["notes"] = "; ".join(self.notes)
        return r




def _ratio_phrase(ratio: float | None, same: str, above: str, below: str) -> str:
    """A ratio in the direction that is true: ``ratio`` > 1 -> "{ratio}x {above}", < 1 ->
    "{1/ratio}x {below}" (the factor is always >= 1), within SAME_RATIO_TOL of 1 -> ``same``."""
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return "n/a"
    if abs(ratio - 1.0) < SAME_RATIO_TOL:
        return same
    return f"{ratio:.2f}x {above}" if ratio > 1 else f"{1 / ratio:.2f}x {below}"


def speed_phrase(speedup: float | None) -> str:
    """``dense / this`` latency -> "1.21x faster" | "2.17x slower" | "same latency"."""
    return _ratio_phrase(speedup, "same latency", "faster", "slower")


def energy_phrase(energy_ratio: float | None) -> str:
    """``this / dense`` energy -> "2.20x more energy" | "1.50x less energy" | "same energy"."""
    return _ratio_phrase(energy_ratio, "same energy", "more energy", "less energy")


def _kb(nbytes: float) -> str:
    return f"{nbytes / 1024:,.0f} KB"


def dense_gap_note(s: LayerStats, dense: LayerStats) -> str | None:
    """Why ``s`` (a compressed layer) is slower and/or costlier than ``dense`` (its dense original on
    the same hardware), from the two layers' numbers; None when it is neither.

    Slower: the latency parts (fill/compute/stall/drain) that grew, the bottleneck, the DRAM
    operands that grew (e.g. ``index`` metadata), the engine's overhead cycle counts that grew
    (``extra`` entries named ``*_cycles``, e.g. bank conflicts) and whether zeros were skipped.
    Costlier: the energy components that grew most.
    """
    parts: list[str] = []
    lat, dlat = s.latency_cycles, dense.latency_cycles
    if dlat and lat > dlat * (1 + SAME_RATIO_TOL):
        grew = [(name, getattr(s, f"{name}_cycles") - getattr(dense, f"{name}_cycles"))
                for name in ("fill", "compute", "stall", "drain")]
        grew = sorted([g for g in grew if g[1] > 0], key=lambda g: -g[1])
        why = [f"{name} +{d:,} cycles" for name, d in grew]
        over = [f"{k} {v:,.0f}" for k, v in sorted(s.extra.items())
                if k.endswith("_cycles") and v > dense.extra.get(k, 0.0)]
        if over:
            why.append("overhead " + ", ".join(over))
        ops = [f"{op} +{_kb(v - dense.dram_read_bytes_by_operand.get(op, 0.0))}"
               for op, v in s.dram_read_bytes_by_operand.items() if v > dense.dram_read_bytes_by_operand.get(op, 0.0)]
        if ops:
            why.append(f"DRAM reads {_kb(s.dram_read_bytes)} vs {_kb(dense.dram_read_bytes)} dense (" + ", ".join(ops) + ")")
        if s.macs >= dense.macs:
            why.append("no MACs skipped")
        else:
            why.append(f"{1 - s.macs / dense.macs:.0%} of MACs skipped")
        parts.append(f"{lat / dlat:.2f}x slower than dense ({lat:,} vs {dlat:,} cycles; bottleneck {s.bottleneck}): "
                     + "; ".join(why))
    e, de = s.energy_pj, dense.energy_pj
    if de and e > de * (1 + SAME_RATIO_TOL):
        comps = {c for c in s.energy_by_component_pj} | set(dense.energy_by_component_pj)
        deltas = sorted(((c, s.energy_by_component_pj.get(c, 0.0) - dense.energy_by_component_pj.get(c, 0.0))
                         for c in comps), key=lambda kv: -kv[1])
        top = [f"{c} +{d / 1e6:.3g} uJ" for c, d in deltas[:3] if d > 0]
        parts.append(f"{e / de:.2f}x the dense energy ({e / 1e6:.3g} vs {de / 1e6:.3g} uJ): " + ", ".join(top))
    return ". ".join(parts) if parts else None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class GainSplit:
    """Gain of a compressed run on searched mappings over the dense workload in SCALE-Sim's fold
    order on the same hardware, split multiplicatively: ``total = mapping x compression`` with
    ``mapping`` = dense fold / dense searched and ``compression`` = dense searched / compressed
    (latency: cycles ratios, "speedup"; energy: pJ ratios, "saving"). A factor < 1 is a loss."""

    fold_latency_cycles: int
    dense_latency_cycles: int
    latency_cycles: int
    fold_energy_pj: float
    dense_energy_pj: float
    energy_pj: float
    mapping_speedup: float | None
    compression_speedup: float | None
    total_speedup: float | None
    mapping_energy_saving: float | None
    compression_energy_saving: float | None
    total_energy_saving: float | None

    @classmethod
    def of(cls, fold_cycles: int, dense_cycles: int, cycles: int,
           fold_pj: float, dense_pj: float, pj: float) -> "GainSplit":
        return cls(fold_cycles, dense_cycles, cycles, fold_pj, dense_pj, pj,
                   _ratio(fold_cycles, dense_cycles), _ratio(dense_cycles, cycles), _ratio(fold_cycles, cycles),
                   _ratio(fold_pj, dense_pj), _ratio(dense_pj, pj), _ratio(fold_pj, pj))

    def columns(self) -> dict[str, Any]:
        """The per-layer / summary columns (``dense_fold_*``, ``*_speedup``, ``*_energy_saving``)."""
        return {"dense_fold_latency_cycles": self.fold_latency_cycles, "dense_fold_energy_pj": self.fold_energy_pj,
                "speedup_vs_dense_fold": self.total_speedup, "mapping_speedup": self.mapping_speedup,
                "compression_speedup": self.compression_speedup,
                "energy_saving_vs_dense_fold": self.total_energy_saving,
                "mapping_energy_saving": self.mapping_energy_saving,
                "compression_energy_saving": self.compression_energy_saving}

    def text(self) -> str:
        """E.g. "2.10x faster than dense in fold order = 1.62x from mapping x 1.30x from compression;
        1.50x less energy = ..."; a factor < 1 is spelled out as a loss."""
        speed = speed_phrase(self.total_speedup)
        speed = "same latency as" if speed == "same latency" else speed + " than"
        return (f"{speed} dense in fold order "
                f"({self.fold_latency_cycles:,} cycles) = {_factor_words(self.mapping_speedup, self.compression_speedup, 'slower')}; "
                f"{energy_phrase(_inverse(self.total_energy_saving))} ({self.fold_energy_pj * 1e-6:.2f} uJ) = "
                f"{_factor_words(self.mapping_energy_saving, self.compression_energy_saving, 'more energy')}")


def _inverse(x: float | None) -> float | None:
    return 1.0 / x if x else None


def _factor_words(mapping: float | None, compression: float | None, loss: str) -> str:
    """"1.62x from mapping x 0.77x from compression (compression alone: 1.30x slower)"."""
    def one(f: float | None, name: str) -> str:
        if f is None or not math.isfinite(f):
            return f"n/a from {name}"
        return f"{f:.2f}x from {name}" + (f" ({name} alone: {1 / f:.2f}x {loss})"
                                           if f < 1 - SAME_RATIO_TOL else "")
    return one(mapping, "mapping") + " x " + one(compression, "compression")


@dataclass
class Report:
    """Result of :func:`accelsim.simulate`: per-layer stats plus what was simulated."""

    workload: str
    hardware: str
    hardware_kind: str
    clock_mhz: float
    layers: list[LayerStats]
    hardware_summary: str = ""
    accelsim_version: str = ""
    compared_to_dense: bool = False
    area_by_component_mm2: dict[str, float] = field(default_factory=dict)
    dense_latency_cycles: int | None = None
    dense_energy_pj: float | None = None
    dram_bw_gbps: float | None = None
    notes: list[str] = field(default_factory=list)  # the workload's notes (what its producer left out)
    #: the dense workload in SCALE-Sim's fold order on the same hardware (gain split; see :class:`GainSplit`)
    dense_fold_latency_cycles: int | None = None
    dense_fold_energy_pj: float | None = None
    #: layers whose width is chosen per input (DFS): expected cost and spread per input (None: none)
    dynamic: DynamicPrecisionStats | None = None

    @property
    def gain_split(self) -> GainSplit | None:
        """Whole-network gain vs the dense fold-order baseline, split into mapping x compression."""
        if self.dense_fold_latency_cycles is None or self.dense_fold_energy_pj is None \
                or self.dense_latency_cycles is None or self.dense_energy_pj is None:
            return None
        return GainSplit.of(self.dense_fold_latency_cycles, self.dense_latency_cycles, self.latency_cycles,
                            self.dense_fold_energy_pj, self.dense_energy_pj, self.energy_pj)

    # --- tables -----------------------------------------------------------------------------
    def to_frame(self):  # type: ignore[no-untyped-def]
        """One row per layer (workload order); cycles, utilisation, traffic, energy by component."""
        import pandas as pd

        df = pd.DataFrame([s.row() for s in self.layers])
        energy_cols = [c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
        df[energy_cols] = df[energy_cols].fillna(0.0)
        return df

    def component_frame(self):  # type: ignore[no-untyped-def]
        """Tidy table per layer x component: action counts, busy cycles (where timed), energy."""
        import pandas as pd

        rows = []
        for s in self.layers:
            busy = {"mac": s.compute_cycles, "dram": s.dram_busy_cycles, "decoder": s.decode_busy_cycles}
            comps = sorted(set(s.energy_by_component_pj) | set(s.actions_by_component), key=component_sort_key)
            for comp in comps:
                acts = s.actions_by_component.get(comp, {})
                rows.append({"layer": s.layer, "component": comp, **{f"{a}_count": n for a, n in sorted(acts.items())},
                             "busy_cycles": busy.get(comp), "energy_pj": s.energy_by_component_pj.get(comp, 0.0)})
        return pd.DataFrame(rows)

    def energy_frame(self):  # type: ignore[no-untyped-def]
        """Tidy (long) table: layer, component, energy_pj."""
        import pandas as pd

        rows = [
            {"layer": s.layer, "component": comp, "energy_pj": e}
            for s in self.layers for comp, e in sorted(s.energy_by_component_pj.items(), key=lambda kv: component_sort_key(kv[0]))
        ]
        return pd.DataFrame(rows)

    # --- totals -----------------------------------------------------------------------------
    @property
    def total_cycles(self) -> int:
        return sum(s.total_cycles for s in self.layers)

    @property
    def latency_cycles(self) -> int:
        return sum(s.latency_cycles for s in self.layers)

    @property
    def latency_incl_prefetch_cycles(self) -> int:
        """Sum of the layers' :attr:`LayerStats.latency_incl_prefetch_cycles` (SCALE-Sim CALC mode's
        "Total Cycles (incl. prefetch)"; equal to :attr:`latency_cycles` in other timing modes)."""
        return sum(s.latency_incl_prefetch_cycles for s in self.layers)

    @property
    def energy_pj(self) -> float:
        return float(sum(s.energy_pj for s in self.layers))

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.layers)

    def summary(self) -> dict[str, Any]:
        """Network totals: latency, energy, utilisation, throughput, efficiency and the roofline
        coordinates (``peak_gops`` = 2 x PEs x clock, ``achieved_gops``, ``operational_intensity`` =
        2 x MACs per DRAM byte); ``edp_uj_ms`` = energy x latency. Every metric the design-space
        explorer stores is here (:meth:`metrics` is the flat view)."""
        # one pass, the same sums in the same order as the properties (bit-identical totals)
        latency = total = compute = stall = fill = drain = macs = pe_cycles = pe_max = 0
        energy_sum: float = 0
        dram_r: float = 0
        dram_w: float = 0
        by_comp: dict[str, float] = {}
        bott: dict[str, int] = {}
        for s in self.layers:
            comp_s = s.compute_cycles
            stall_s = s.stall_cycles
            lat_s = s.fill_cycles + comp_s + stall_s + s.drain_cycles
            latency += lat_s
            total += comp_s + stall_s
            compute += comp_s
            stall += stall_s
            fill += s.fill_cycles
            drain += s.drain_cycles
            macs += s.macs
            if s.macs:
                pe_cycles += (comp_s + stall_s) * s.pe_count
            if s.pe_count > pe_max:
                pe_max = s.pe_count
            energy = s.energy_by_component_pj
            energy_sum += float(sum(energy.values()))
            for k, v in energy.items():
                by_comp[k] = by_comp.get(k, 0.0) + v
            dram_r += s.dram_read_bytes
            dram_w += s.dram_write_bytes
            bott[s.bottleneck] = bott.get(s.bottleneck, 0) + lat_s
        energy_pj = float(energy_sum)
        latency_s = latency / (self.clock_mhz * 1e6)
        energy_j = energy_pj * 1e-12
        out: dict[str, Any] = {
            "workload": self.workload, "hardware": self.hardware, "layers": len(self.layers),
            "macs": macs, "fill_cycles": fill, "compute_cycles": compute, "stall_cycles": stall,
            "drain_cycles": drain, "total_cycles": total,
            "latency_cycles": latency, "latency_ms": latency_s * 1e3,
            "inferences_per_s": 1.0 / latency_s if latency_s else float("inf"),
            "utilization": macs / pe_cycles if pe_cycles else 0.0,
            "energy_pj": energy_pj, "energy_uj": energy_pj * 1e-6,
            "edp_uj_ms": energy_pj * 1e-6 * latency_s * 1e3,
            "tops_per_w": (2 * macs / energy_j) / 1e12 if energy_j else 0.0,
            "dram_read_bytes": dram_r, "dram_write_bytes": dram_w,
            "pe_count": pe_max, "clock_mhz": self.clock_mhz, "dram_bw_gbps": self.dram_bw_gbps,
            "peak_gops": 2 * pe_max * self.clock_mhz * 1e6 / 1e9,
            "achieved_gops": 2 * macs / latency_s / 1e9 if latency_s else 0.0,
            "operational_intensity": 2 * macs / (dram_r + dram_w) if dram_r + dram_w else float("inf"),
            "energy_by_component_pj": dict(sorted(by_comp.items(), key=lambda kv: component_sort_key(kv[0]))),
        }
        if self.area_by_component_mm2:
            out["area_mm2"] = float(sum(self.area_by_component_mm2.values()))
            out["area_by_component_mm2"] = dict(self.area_by_component_mm2)
        out["latency_share_by_bottleneck"] = {k: v / latency for k, v in bott.items()} if latency else {}
        prefetch = sum(s.prefetch_cycles for s in self.layers)
        if prefetch:
            out["latency_incl_prefetch_cycles"] = latency + prefetch
        if self.notes:
            out["notes"] = list(self.notes)
        if self.dynamic is not None:
            out.update(self.dynamic_summary())
        if self.compared_to_dense:
            dense_lat = self.dense_latency_cycles or 0
            dense_e = self.dense_energy_pj or 0.0
            out["dense_latency_cycles"] = dense_lat
            out["speedup_vs_dense"] = dense_lat / latency if latency else None
            out["dense_energy_pj"] = dense_e
            out["energy_saving_vs_dense"] = dense_e / energy_pj if energy_pj else None
            if self.dense_fold_latency_cycles is not None and self.dense_fold_energy_pj is not None:
                out.update(GainSplit.of(self.dense_fold_latency_cycles, dense_lat, latency,
                                        self.dense_fold_energy_pj, dense_e, energy_pj).columns())
        return out

    def dynamic_summary(self) -> dict[str, Any]:
        """Per-input figures of a dynamic-precision (DFS) workload ({} without one): expected, p50 and
        p95 latency (cycles, ms) and energy (uJ) per input; the network with every gate at one width
        (``latency_ms_by_bits``, ``energy_uj_by_bits``; 0 = all gated layers skipped); each width
        class's part of the expected latency / energy; the share of gate decisions per width."""
        d = self.dynamic
        if d is None:
            return {}
        ms = 1e3 / (self.clock_mhz * 1e6)
        return {
            "dynamic_gates": d.gates, "dynamic_inputs": d.inputs, "dynamic_spread_exact": d.exact_spread,
            "expected_latency_cycles": d.expected_latency_cycles, "p50_latency_cycles": d.p50_latency_cycles,
            "p95_latency_cycles": d.p95_latency_cycles, "expected_latency_ms": d.expected_latency_cycles * ms,
            "p50_latency_ms": d.p50_latency_cycles * ms, "p95_latency_ms": d.p95_latency_cycles * ms,
            "expected_energy_uj": d.expected_energy_pj * 1e-6, "p50_energy_uj": d.p50_energy_pj * 1e-6,
            "p95_energy_uj": d.p95_energy_pj * 1e-6,
            "latency_ms_by_bits": {b: v * ms for b, v in d.latency_cycles_by_bits.items()},
            "energy_uj_by_bits": {b: v * 1e-6 for b, v in d.energy_pj_by_bits.items()},
            "expected_latency_ms_by_bits": {b: v * ms for b, v in d.expected_latency_cycles_by_bits.items()},
            "expected_energy_uj_by_bits": {b: v * 1e-6 for b, v in d.expected_energy_pj_by_bits.items()},
            "decision_share_by_bits": dict(d.decision_share_by_bits),
            "dynamic_notes": list(d.notes),
        }

    def _dynamic_lines(self) -> list[str]:
        s = self.dynamic_summary()
        if not s:
            return []
        def bits(b: int) -> str:
            return "skipped" if b == 0 else f"{b} bits"
        over = (f"exact over {s['dynamic_inputs']} measured inputs" if s["dynamic_spread_exact"]
                else "gates assumed independent")
        lines = [
            f"  dynamic precision (DFS, {s['dynamic_gates']} gates; the table above prices gated layers at their "
            "record's quant):",
            f"    per input: expected latency {duration_text(s['expected_latency_ms'])}, p50 "
            f"{duration_text(s['p50_latency_ms'])}, p95 {duration_text(s['p95_latency_ms'])} ({over})",
            f"    per input: expected energy {s['expected_energy_uj']:.3f} uJ, p50 {s['p50_energy_uj']:.3f} uJ, "
            f"p95 {s['p95_energy_uj']:.3f} uJ",
            "    every gate at one width: " + ", ".join(
                f"{bits(b)} {duration_text(v)} / {s['energy_uj_by_bits'][b]:.3f} uJ"
                for b, v in sorted(s["latency_ms_by_bits"].items())),
            "    gate decisions: " + ", ".join(
                f"{bits(b)} {p:.1%} (expected latency part {duration_text(s['expected_latency_ms_by_bits'][b])})"
                for b, p in sorted(s["decision_share_by_bits"].items())),
        ]
        return lines + [f"    note: {n}" for n in s["dynamic_notes"]]

    def metrics(self) -> dict[str, Any]:
        """The flat numbers a sweep stores for a design point: :data:`SWEEP_METRICS` from
        :meth:`summary`, ``energy_<component>_pj`` per component and, for kinds with an area
        model, ``area_mm2`` and ``area_<component>_mm2``."""
        s = self.summary()
        out: dict[str, Any] = {k: s[k] for k in SWEEP_METRICS}
        for c, v in s["energy_by_component_pj"].items():
            out[f"energy_{c}_pj"] = v
        if "area_mm2" in s:
            out["area_mm2"] = s["area_mm2"]
            for c, v in s["area_by_component_mm2"].items():
                out[f"area_{c}_mm2"] = float(v)
        return out

    def summary_text(self) -> str:
        s = self.summary()
        lines = [
            f"{self.workload} on {self.hardware_summary or self.hardware}",
            f"  layers {s['layers']}, MACs {s['macs']:,}",
            f"  latency {s['latency_cycles']:,} cycles = {duration_text(s['latency_ms'])} ({s['inferences_per_s']:,.1f} "
            "inferences/s)",
            f"  = fill {s['fill_cycles']:,} + compute {s['compute_cycles']:,} + stall {s['stall_cycles']:,} + drain "
            f"{s['drain_cycles']:,} cycles (fill: first tiles loaded before compute, stall: compute waits for DRAM, "
            "drain: last outputs written after compute)",
            f"  utilization {s['utilization']:.1%} (MACs / (PEs x (compute + stall) cycles))",
            f"  energy {s['energy_uj']:.2f} uJ ({s['tops_per_w']:.2f} TOPS/W); DRAM read {s['dram_read_bytes'] / 1e6:.2f} MB, "
            f"write {s['dram_write_bytes'] / 1e6:.2f} MB",
            "  energy by component: " + ", ".join(f"{k} {v / s['energy_pj']:.1%}" for k, v in s["energy_by_component_pj"].items() if s["energy_pj"]),
            "  latency by bottleneck: " + ", ".join(f"{k} {v:.1%}" for k, v in sorted(s["latency_share_by_bottleneck"].items(), key=lambda kv: -kv[1])),
        ]
        if "area_mm2" in s:
            area = s["area_mm2"]
            parts = sorted(s["area_by_component_mm2"].items(), key=lambda kv: -kv[1])
            lines.append(f"  area {area:.2f} mm2 (" + ", ".join(f"{k} {v / area:.0%}" for k, v in parts[:6] if area) + ")")
        if self.compared_to_dense:
            e_ratio = s["energy_pj"] / s["dense_energy_pj"] if s["dense_energy_pj"] else None
            lines.append(f"  vs dense on the same hardware: {speed_phrase(s['speedup_vs_dense'])} "
                         f"({s['dense_latency_cycles']:,} dense cycles), {energy_phrase(e_ratio)} "
                         f"({s['dense_energy_pj'] * 1e-6:.2f} dense uJ)")
            worse = [x.layer for x in self.layers if x.dense_latency_cycles is not None and
                     (x.latency_cycles > x.dense_latency_cycles * (1 + SAME_RATIO_TOL)
                      or (x.dense_energy_pj and x.energy_pj > x.dense_energy_pj * (1 + SAME_RATIO_TOL)))]
            split = self.gain_split
            if split is not None:
                lines.append("  vs dense in SCALE-Sim fold order (mapping x compression): " + split.text())
            if worse:
                lines.append(f"  {len(worse)} layer(s) slower or costlier than dense ({', '.join(worse[:8])}"
                             + (", ..." if len(worse) > 8 else "") + "): see their notes")
        lines += self._dynamic_lines()
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def table(self, max_rows: int | None = None) -> str:
        """A human-readable per-layer table (columns right-aligned, as pandas' ``to_string`` prints
        them; rendered without pandas so a CLI run does not pay for importing it), followed by the
        numbered notes its ``notes`` column refers to. ``fill + compute + stall + drain =
        latency_cycles`` in every row; ``vs_dense`` says "1.25x slower" / "2.01x faster"."""
        head = ["layer", "op", "fill_cycles", "compute_cycles", "stall_cycles", "drain_cycles", "latency_cycles",
                "utilization", "dram_rd_kb", "dram_wr_kb", "energy_uj"]
        if self.compared_to_dense:
            head += ["speed_vs_dense", "energy_vs_dense"]
        head += ["bottleneck", "notes"]
        layers = self.layers if max_rows is None else self.layers[:max_rows]
        footnotes: dict[str, int] = {}
        rows = []
        for s in layers:
            cells = [s.layer, s.op, str(s.fill_cycles), str(s.compute_cycles), str(s.stall_cycles),
                     str(s.drain_cycles), str(s.latency_cycles), f"{s.utilization * 100:5.1f}%",
                     f"{s.dram_read_bytes / 1024:,.1f}", f"{s.dram_write_bytes / 1024:,.1f}",
                     f"{s.energy_pj / 1e6:,.3f}"]
            if self.compared_to_dense:
                cells.append(speed_phrase(s.speedup_vs_dense))
                ratio = s.energy_pj / s.dense_energy_pj if s.dense_energy_pj else None
                cells.append(energy_phrase(ratio).replace(" energy", ""))
            cells.append(s.bottleneck)
            refs = [footnotes.setdefault(n, len(footnotes) + 1) for n in s.notes]
            cells.append(",".join(str(r) for r in refs) or "-")
            rows.append(cells)
        numeric = {2, 3, 4, 5, 6}  # pandas keeps one more column of room before a number column's header
        widths = [max([len(h) + (i in numeric)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
        text = "\n".join(" ".join(c.rjust(w) for c, w in zip(line, widths)) for line in [head, *rows])
        if footnotes:
            text += "\nnotes:\n" + "\n".join(f"  [{k}] {n}" for n, k in footnotes.items())
        return text

    # --- output -----------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> None:
        """Write the per-layer table atomically."""
        atomic_write_text(path, self.to_frame().to_csv(index=False))

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "hardware": self.hardware, "hardware_kind": self.hardware_kind,
            "clock_mhz": self.clock_mhz, "accelsim_version": self.accelsim_version,
            "summary": self.summary(), "layers": [dict(asdict(s), total_cycles=s.total_cycles,
                                                        latency_cycles=s.latency_cycles, energy_pj=s.energy_pj)
                                                   for s in self.layers],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as strict JSON: a non-finite number (e.g. a ratio to a zero) is ``null``."""
        text = dumps_strict_json(self.to_dict(), indent=1)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    def plot(self, path: str | Path | None = None, *, top: int | None = None):  # type: ignore[no-untyped-def]
        """Stacked energy-by-component and latency (compute/stall/fill/drain) bars per layer."""
        from .plot.breakdown import plot_breakdown

        fig = plot_breakdown(self, path=path, top=top)
        if self.area_by_component_mm2 and path is not None:  # kinds with an area model: also <path>_area
            from .plot.area import area_plot_path, plot_area

            plot_area(self, area_plot_path(path))
        return fig

    def __repr__(self) -> str:
        return f"Report({self.workload!r} on {self.hardware!r}: {len(self.layers)} layers, {self.latency_cycles:,} cycles, {self.energy_pj / 1e6:.3f} uJ)"
