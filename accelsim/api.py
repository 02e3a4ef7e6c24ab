"""``accelsim.simulate``: workload x hardware -> Report."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ._version import __version__
from .errors import ConfigError, UnsupportedLayerError
from .energy import leakage_energy_pj, leakage_power_mw, price_actions
from .engines.base import engine_for, lower_layer
from .hardware.common import HardwareBase
from .hardware.io import load_hardware
from .program_cache import ProgramCache, count_priced
from .report import SAME_RATIO_TOL, LayerStats, Report, dense_gap_note
from .sim.dfs import DynamicPrecisionStats, GateCosts, combine, unexploited_width_notes
from .sim.run import simulate_layer_program, with_measured_dram
from .stats import Action, LayerProgram, Timing
from .workload.io import load_workload
from .workload.workload import Workload

STALL_BOTTLENECK_SHARE = 0.2
MAPPING_BOTTLENECK_UTIL = 0.5


def _as_workload(workload: Workload | str | Path) -> Workload:
    return workload if isinstance(workload, Workload) else load_workload(workload)


def _as_hardware(hw: HardwareBase | str | Path) -> HardwareBase:
    return hw if isinstance(hw, HardwareBase) else load_hardware(hw)


def _bottleneck(prog: LayerProgram, t: Timing, hw: HardwareBase) -> tuple[str, str]:
    """(kind, reason) of one layer, from its own cycle split: DRAM-bound when fill + stall + drain
    exceed :data:`STALL_BOTTLENECK_SHARE` of the latency (``dram_write`` when output writes --
    output stalls and drain -- outweigh input reads -- input stalls and fill), then the vector unit
    (no MACs), then a poorly used PE array, else compute."""
    latency = t.latency_cycles
    if latency == 0:
        return "none", "empty layer"
    mem_wait = t.stall_cycles + t.fill_cycles + t.drain_cycles
    dram_bytes = (prog.dram_read_total_bits + prog.dram_write_total_bits) / 8
    if mem_wait / latency > STALL_BOTTLENECK_SHARE:
        writes = t.stall_output_cycles + t.drain_cycles
        kind = "dram_write" if writes > t.stall_input_cycles + t.fill_cycles else "dram_bandwidth"
        needed = dram_bytes * 8 / hw.dram_bits_per_cycle()
        pieces = []
        if t.fill_cycles:
            pieces.append(f"fill {t.fill_cycles:,} ({t.fill_cycles / latency:.0%}, first tiles loaded before compute)")
        if t.stall_cycles:
            split = (f": inputs {t.stall_input_cycles:,}, output writes {t.stall_output_cycles:,}"
                     if t.stall_input_cycles and t.stall_output_cycles else "")
            pieces.append(f"stall {t.stall_cycles:,} ({t.stall_cycles / latency:.0%}, compute waits for DRAM{split})")
        if t.drain_cycles:
            pieces.append(f"drain {t.drain_cycles:,} ({t.drain_cycles / latency:.0%}, last outputs written after compute)")
        return kind, (f"DRAM time not hidden by compute: " + ", ".join(pieces) + f" of {latency:,} cycles "
                      f"(compute {t.compute_cycles:,}); {dram_bytes / 1024:,.0f} KB at {hw.dram.bw_gbps:g} GB/s "
                      f"take {needed:,.0f} cycles")
    if prog.macs == 0:
        return "vector_unit", (f"element-wise/pooling layer: the vector unit computes {t.compute_cycles / latency:.0%} "
                               f"of the layer's {latency:,} cycles")
    util = prog.macs / (t.compute_cycles * prog.pe_count) if t.compute_cycles and prog.pe_count else 0.0
    if util < MAPPING_BOTTLENECK_UTIL:
        return "array_mapping", (f"the layer keeps only {util:.0%} of the {prog.pe_count} PEs busy "
                                 f"(mapping efficiency {prog.mapping_efficiency:.0%}, fill/drain of each fold)")
    return "compute", f"PE array busy {util:.0%} of its cycles"


class Prices:
    """``energy.price_actions`` and ``energy.leakage_energy_pj`` for one hardware, with the energy of
    each distinct action and the leakage powers computed once (same sums in the same order, so
    the numbers are bit-identical)."""

    def __init__(self, hw: HardwareBase):
        self.hw = hw
        self._units: dict[tuple[object, ...], float] = {}
        self._powers: list[float] | None = None

    def dynamic_pj(self, actions: list[Action]) -> dict[str, float]:
        """Dynamic energy per component (pJ)."""
        return price_actions(actions, self.hw, self._units)

    def static_pj(self, cycles: float) -> float:
        """Leakage energy over ``cycles`` (pJ)."""
        if self._powers is None:
            self._powers = list(leakage_power_mw(self.hw).values())
        return leakage_energy_pj(self.hw, cycles, self._powers)


def layer_energy_pj(prog: LayerProgram, timing: Timing, prices: Prices) -> dict[str, float]:
    """Energy per component of one layer: its actions priced (DRAM as the timing model counted it,
    when it did: :func:`~accelsim.sim.run.with_measured_dram`), plus leakage over its latency ("static")."""
    energy = prices.dynamic_pj(with_measured_dram(prog, timing).actions)
    energy["static"] = prices.static_pj(timing.latency_cycles)
    return energy


def layer_stats(prog: LayerProgram, timing: Timing, hw: HardwareBase, prices: Prices | None = None) -> LayerStats:
    """Combine an engine's counts, the simulator's timing and the priced energy."""
    return _unpriced_stats(prog, timing, hw, layer_energy_pj(prog, timing, prices or Prices(hw)))


def _unpriced_stats(prog: LayerProgram, timing: Timing, hw: HardwareBase, energy: dict[str, float]) -> LayerStats:
    prog = with_measured_dram(prog, timing)
    total = timing.total_cycles
    pes = max(prog.pe_count, 1)
    bottleneck, reason = _bottleneck(prog, timing, hw)
    # MACs the PEs perform: zero-gated/skipped activation MACs are not performed (utilization <= 1)
    performed = min(float(prog.extra.get("effectual_macs", prog.macs)), float(prog.macs))
    actions: dict[str, dict[str, int]] = {}
    for a in prog.actions:
        per = actions.setdefault(a.component, {})
        per[a.action] = per.get(a.action, 0) + a.count
    return LayerStats(
        layer=prog.layer, op=prog.op, engine=prog.engine, macs=prog.macs, dense_macs=prog.dense_macs,
        compute_cycles=timing.compute_cycles, stall_cycles=timing.stall_cycles, fill_cycles=timing.fill_cycles,
        drain_cycles=timing.drain_cycles,
        utilization=performed / (total * pes) if total else 0.0,
        compute_utilization=performed / (timing.compute_cycles * pes) if timing.compute_cycles else 0.0,
        mapping_efficiency=prog.mapping_efficiency,
        dram_read_bytes=prog.dram_read_total_bits / 8, dram_write_bytes=prog.dram_write_total_bits / 8,
        compulsory_dram_bytes=(prog.compulsory_read_bits + prog.compulsory_write_bits) / 8,
        dram_busy_cycles=timing.dram_busy_cycles, energy_by_component_pj=energy,
        sram_accesses=dict(prog.sram_accesses),
        dram_read_bytes_by_operand={k: v / 8 for k, v in prog.dram_read_bits.items()},
        bottleneck=bottleneck, bottleneck_reason=reason, timing_source=timing.source, notes=list(prog.notes),
        stall_input_cycles=timing.stall_input_cycles, stall_output_cycles=timing.stall_output_cycles,
        pe_count=prog.pe_count, extra=dict(prog.extra), actions_by_component=actions,
        decode_busy_cycles=timing.decode_busy_cycles, mapping=prog.mapping, prefetch_cycles=timing.prefetch_cycles,
    )


def simulate_programs(workload: Workload, hw: HardwareBase, *, skip: bool = True) -> list[tuple[LayerProgram, Timing]]:
    """Lower and time every layer (no energy pricing)."""
    out = []
    for layer in workload.layers:
        prog = lower_layer(layer, hw, workload)
        out.append((prog, simulate_layer_program(prog, hw, skip=skip)))
    return out


def _cached_layer_stats(wl: Workload, hw: HardwareBase, cache: ProgramCache, timing_key: str | None,
                        skip: bool) -> list[LayerStats]:
    """Layer stats through ``cache``: each distinct layer lowered, timed and summarised once per hardware
    structure (kept in the cache entry) and priced once per call."""
    prices = Prices(hw)
    out: list[LayerStats] = []
    energies: dict[str, dict[str, float]] = {}
    for layer, key, entry in cache.programs(wl, hw, timing_key=timing_key, skip=skip):
        energy = energies.get(key)
        if energy is None:
            energy = energies[key] = layer_energy_pj(entry.program, entry.timing, prices)
        template = entry.stats
        if template is None:  # everything but energy depends on the program and timing only
            template = entry.stats = _unpriced_stats(entry.program, entry.timing, hw, {})
        out.append(template.copy_for(layer.name, energy))
    count_priced(len(energies))
    return out


@contextmanager
def _gc_deferred() -> Iterator[None]:
    """Run the block with Python's cyclic garbage collector paused (left as it was if already
    paused; enabled again after the outermost block, also on errors). A sweep point allocates many
    objects that survive (caches) or are freed by reference counting; with the collector on, its
    young-generation passes promote them and trigger full passes over the whole heap every few
    points (ResNet-50 shapes sweep: ~4 ms of ~110 ms CPU per point). Paused, it runs once after
    the call. Only reference cycles wait for it (a pipeline run leaves ~60 small objects in cycles;
    its tile records are freed when it returns), so the extra memory is bounded by one call."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def simulate(
    workload: Workload | str | Path,
    hw: HardwareBase | str | Path,
    *,
    compare_dense: bool | None = None,
    skip: bool = True,
    program_cache: ProgramCache | None = None,
    timing_key: str | None = None,
) -> Report:
    """Simulate ``workload`` on ``hw`` layer by layer.

    ``workload``/``hw`` may be objects or file paths (accelsim YAML, SCALE-Sim CSV/.cfg).
    ``compare_dense`` (default: when the workload is compressed) also runs the dense original
    on the same hardware and adds ``speedup_vs_dense`` / ``energy_saving_vs_dense`` per layer.
    ``skip=False`` disables the periodic fast-forward (full event replay; slow, for checking).
    ``program_cache`` (a :class:`~accelsim.program_cache.ProgramCache`) reuses lowered and timed
    layers across calls and across identical layers; ``timing_key`` names ``hw``'s tiling/timing
    fields for it (hardware with equal keys must lower and time identically; default: the whole
    config). The numbers are the same with or without a cache; with one, layers of the same shape
    and compression share their count dicts (``sram_accesses``, ``actions_by_component``, ...):
    treat them as read-only. Python's cyclic garbage collector is paused during the call
    (:func:`_gc_deferred`).
    """
    with _gc_deferred():
        return _simulate(workload, hw, compare_dense=compare_dense, skip=skip, program_cache=program_cache,
                         timing_key=timing_key)


def _simulate(workload: Workload | str | Path, hw: HardwareBase | str | Path, *, compare_dense: bool | None,
              skip: bool, program_cache: ProgramCache | None, timing_key: str | None) -> Report:
    wl = _as_workload(workload)
    if wl._masks_attached and not wl._masks_checked:  # loaded mask files were checked at load
        from .workload.masks import validate_workload_masks

        validate_workload_masks(wl)  # every engine, also those that ignore masks, refuses a bad one
        wl._masks_checked = True
    hardware = _as_hardware(hw)
    if program_cache is None:
        prices = Prices(hardware)
        stats = [layer_stats(p, t, hardware, prices) for p, t in simulate_programs(wl, hardware, skip=skip)]
    else:
        stats = _cached_layer_stats(wl, hardware, program_cache, timing_key, skip)
    if compare_dense is None:
        compare_dense = not wl.is_dense
    dense_totals: tuple[int, float] | None = None
    fold_totals: tuple[int, float] | None = None
    if compare_dense:
        dense = simulate(wl.densified(), hardware, compare_dense=False, skip=skip, program_cache=program_cache,
                         timing_key=timing_key)
        dense_totals = (dense.latency_cycles, dense.energy_pj)
        _attach_dense(wl, stats, dense)
        fold_hw = fold_order_hardware(hardware)
        if fold_hw is not None:
            fold = dense if fold_hw is hardware else simulate(
                wl.densified(), fold_hw, compare_dense=False, skip=skip, program_cache=program_cache)
            fold_totals = (fold.latency_cycles, fold.energy_pj)
            _attach_dense(wl, stats, fold, latency_attr="fold_latency_cycles", energy_attr="fold_energy_pj",
                          notes=False)
    area = engine_for(hardware).area_mm2(wl, hardware)
    dynamic = _dynamic_precision(wl, hardware, stats, skip, program_cache, timing_key)
    return Report(
        workload=wl.name, hardware=hardware.name, hardware_kind=hardware.kind, clock_mhz=hardware.clock_mhz,
        layers=stats, hardware_summary=hardware.summary(), accelsim_version=__version__,
        compared_to_dense=bool(compare_dense), area_by_component_mm2=dict(area),
        dram_bw_gbps=hardware.dram.bw_gbps,
        dense_latency_cycles=dense_totals[0] if dense_totals else None,
        dense_energy_pj=dense_totals[1] if dense_totals else None, notes=list(wl.notes), dynamic=dynamic,
        dense_fold_latency_cycles=fold_totals[0] if fold_totals else None,
        dense_fold_energy_pj=fold_totals[1] if fold_totals else None,
    )


def _at_width(layer, bits: int):  # type: ignore[no-untyped-def]
    """``layer`` with ``bits``-bit weights and activations and no dynamic record."""
    c = layer.compression
    quant = c.quant.model_copy(update={"weight_bits": bits, "act_bits": bits,
                                       "scheme": c.quant.scheme if c.quant.scheme in ("int", "pow2") else "int"})
    return layer.model_copy(update={"compression": c.model_copy(update={"quant": quant, "dynamic_precision": None})})


def _dynamic_precision(wl: Workload, hw: HardwareBase, stats: list[LayerStats], skip: bool,
                       program_cache: ProgramCache | None, timing_key: str | None) -> DynamicPrecisionStats | None:
    """Expected / p50 / p95 cost per input of the layers whose width is chosen per input (DFS):
    each gated layer simulated once at every width of the workload's gates (:mod:`accelsim.sim.dfs`)."""
    gated = [(layer, layer.compression.dynamic_precision) for layer in wl.layers
             if layer.compression.dynamic_precision is not None]
    if not gated:
        return None
    widths = sorted({b for _, d in gated for b in d.bits_probability if b > 0})
    names = {layer.name for layer, _ in gated}
    per_width: dict[int, dict[str, LayerStats]] = {}
    for b in widths:
        variant = wl.with_layers([_at_width(layer, b) for layer, _ in gated], notes=[])
        try:
            rep = simulate(variant, hw, compare_dense=False, skip=skip, program_cache=program_cache,
                           timing_key=timing_key)
        except UnsupportedLayerError as exc:
            raise UnsupportedLayerError(f"dynamic precision: the {b}-bit class of the gated layers: {exc}") from None
        per_width[b] = {s.layer: s for s in rep.layers}
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for layer, d in gated:
        groups.setdefault(d.gate, []).append((layer, d))
    gates = []
    for gate, members in groups.items():
        first = members[0][1]
        for layer, d in members[1:]:
            if d.bits_probability != first.bits_probability or d.trace != first.trace:
                raise ConfigError(f"layers of gate {gate!r} disagree on bits_probability/trace ({members[0][0].name} "
                                  f"vs {layer.name})", source=wl.name,
                                  field=f"{layer.name}.compression.dynamic_precision")
        lat = {0: 0, **{b: sum(per_width[b][layer.name].latency_cycles for layer, _ in members) for b in widths}}
        en = {0: 0.0, **{b: sum(per_width[b][layer.name].energy_pj for layer, _ in members) for b in widths}}
        gates.append(GateCosts(gate, tuple(layer.name for layer, _ in members), dict(first.bits_probability), lat, en,
                               tuple(first.trace) if first.trace is not None else None))
    fixed = [s for s in stats if s.layer not in names]
    out = combine(sum(s.latency_cycles for s in fixed), float(sum(s.energy_pj for s in fixed)), gates)
    out.notes += unexploited_width_notes(hw.name, gates)
    return out


def fold_order_hardware(hw: HardwareBase) -> HardwareBase | None:
    """The fold-order twin of ``hw`` for the mapping/compression gain split: for hardware with a
    ``mapping: search|scalesim`` field (the systolic array), ``hw`` itself when it already maps in SCALE-Sim's fold
    order (``mapping: scalesim``; the mapping factor is then exactly 1) or a copy with
    ``mapping: scalesim`` (same PEs, SRAM, DRAM, prices and sparse options) when it searches
    mappings; ``None`` for kinds without a mapping choice (no split is reported)."""
    mapping = getattr(hw, "mapping", None)
    if not isinstance(mapping, str) or mapping not in ("search", "scalesim"):
        return None
    if mapping == "scalesim":
        return hw
    return type(hw).model_validate({**hw.model_dump(), "mapping": "scalesim"})


def _attach_dense(wl: Workload, stats: list[LayerStats], dense: Report, *,
                  latency_attr: str = "dense_latency_cycles", energy_attr: str = "dense_energy_pj",
                  notes: bool = True) -> None:
    """Per-layer dense baseline (into ``latency_attr``/``energy_attr``). The pieces of a factorised
    layer share their original's numbers, split in proportion to each piece's own latency/energy,
    so per-layer speedups of the pieces equal the speedup of the whole group. ``notes``: add the
    "why slower than dense" notes (off for the fold-order baseline)."""
    by_name = {s.layer: s for s in dense.layers}
    groups: dict[str, list[LayerStats]] = {}
    for layer, s in zip(wl.layers, stats):
        groups.setdefault(layer.dense_name, []).append(s)
    for name, members in groups.items():
        d = by_name.get(name)
        if d is None:
            continue
        lat = sum(m.latency_cycles for m in members) or 1
        en = sum(m.energy_pj for m in members) or 1.0
        for m in members:
            setattr(m, latency_attr, round(d.latency_cycles * m.latency_cycles / lat))
            setattr(m, energy_attr, d.energy_pj * m.energy_pj / en)
            if not notes:
                continue
            if len(members) > 1:
                m.notes.append(f"part of factorised {name!r}: dense baseline shared by {len(members)} layers")
        if not notes:
            continue
        if len(members) == 1:
            note = dense_gap_note(members[0], d)
            if note:
                members[0].notes.append(note)
        elif lat > d.latency_cycles * (1 + SAME_RATIO_TOL) or en > d.energy_pj * (1 + SAME_RATIO_TOL):
            parts = ", ".join(f"{m.layer} {m.latency_cycles:,} cycles/{m.energy_pj / 1e6:.3g} uJ" for m in members)
            for m in members:
                m.notes.append(f"factorised {name!r} ({parts}) takes {lat / max(d.latency_cycles, 1):.2f}x the dense "
                               f"latency ({d.latency_cycles:,} cycles) and {en / max(d.energy_pj, 1e-30):.2f}x its "
                               f"energy ({d.energy_pj / 1e6:.3g} uJ)")
