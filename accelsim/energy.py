"""Price action counts with a hardware's energy tables (the one place energy is computed).

``energy = sum(count x energy per event) + leakage power x time``. Per-event energies:

- ``mac``: ``EnergyTable.mac_energy_pj(weight_bits, act_bits, scheme)``;
- ``<name>_sram`` read/write: the SRAM's pJ/bit (size model or override) x bits;
- ``dram`` read/write: ``dram.pj_per_bit`` (``write_pj_per_bit``) x bits;
- ``pe_rf``: ``pe_rf_pj_per_bit`` x bits; ``vector``/``shift_add``/``decoder`` ops: an adder of
  that width (all of these, and the SRAM size model, at ``energy.technology_nm``);
- hardware kinds may price their own components through ``action_energy_pj(action)``
  (:meth:`HardwareBase.action_energy_pj`, ``None`` for the generic ones); an action
  nothing prices is an engine bug (:class:`~accelsim.errors.InternalError`).

Leakage ("static"): each SRAM's leakage power plus ``pe_leakage_mw`` per PE, times the layer's
latency at ``clock_mhz``; kinds override :meth:`HardwareBase.leakage_power_mw`.
"""
from __future__ import annotations

from operator import attrgetter

from .errors import InternalError
from .hardware.common import HardwareBase, SramConfig
from .stats import Action


def unit_energy_pj(action: Action, hw: HardwareBase) -> float:
    """Energy of one event of ``action`` on ``hw`` (pJ)."""
    custom = hw.action_energy_pj(action)
    if custom is not None:
        return float(custom)
    table = hw.energy
    comp, kind = action.component, action.action
    if kind == "mac":
        return table.mac_energy_pj(action.bits, action.act_bits, action.scheme)
    if comp == "dram":
        if kind == "read":
            return hw.dram.pj_per_bit * action.bits
        if kind == "write":
            return hw.dram.write_energy_pj_per_bit() * action.bits
    if comp == "pe_rf":
        return table.pe_rf_pj(action.bits)
    if kind in ("op", "shift_add", "add"):
        return table.add_pj(action.bits)
    sram = getattr(hw, comp, None)
    if isinstance(sram, SramConfig):
        if kind == "read":
            return sram.read_energy_pj_per_bit(table) * action.bits
        if kind == "write":
            return sram.write_energy_pj_per_bit(table) * action.bits
    raise InternalError(f"no energy model for action {kind!r} on component {comp!r} of {hw.kind} hardware")


#: what an action's energy per event depends on: every field but its count
UNIT_SIGNATURE = attrgetter(*(f for f in Action.__dataclass_fields__ if f != "count"))


#: per hardware object (kept and compared with ``is``; hardware models are frozen): energy per
#: event by :data:`UNIT_SIGNATURE`, the default memo of :func:`price_actions` (FIFO-bounded)
_UNITS: dict[int, tuple[HardwareBase, dict[tuple[object, ...], float]]] = {}
_UNITS_MAX = 64


def _units_of(hw: HardwareBase) -> dict[tuple[object, ...], float]:
    hit = _UNITS.get(id(hw))
    if hit is not None and hit[0] is hw:
        return hit[1]
    if len(_UNITS) >= _UNITS_MAX:
        del _UNITS[next(iter(_UNITS))]
    units: dict[tuple[object, ...], float] = {}
    _UNITS[id(hw)] = (hw, units)
    return units


def price_actions(actions: list[Action], hw: HardwareBase,
                  memo: dict[tuple[object, ...], float] | None = None) -> dict[str, float]:
    """Dynamic energy per component (pJ). ``memo`` (keyed by :data:`UNIT_SIGNATURE`) keeps the
    energy per event of each distinct action across calls for the same ``hw``; default: one memo
    per ``hw`` object (:data:`_UNITS`; a unit energy is a function of the action's signature and
    the frozen ``hw`` only)."""
    units = _units_of(hw) if memo is None else memo
    out: dict[str, float] = {}
    for a in actions:
        sig = UNIT_SIGNATURE(a)
        u = units.get(sig)
        if u is None:
            u = units[sig] = unit_energy_pj(a, hw)
        out[a.component] = out.get(a.component, 0.0) + a.count * u
    return out


def leakage_power_mw(hw: HardwareBase) -> dict[str, float]:
    """Static power per component (mW): :meth:`HardwareBase.leakage_power_mw` (kinds may override)."""
    return dict(hw.leakage_power_mw())


def leakage_energy_pj(hw: HardwareBase, cycles: float, powers_mw: list[float] | None = None) -> float:
    """Static energy over ``cycles`` (pJ); ``powers_mw``: :func:`leakage_power_mw`'s values, if known."""
    if powers_mw is None:
        powers_mw = list(leakage_power_mw(hw).values())
    return sum(hw.leakage_pj(p, cycles) for p in powers_mw)
