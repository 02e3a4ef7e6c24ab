"""Parts every accelerator shares: DRAM, SRAM buffers and the technology energy table.

Defaults are published 45 nm figures (``docs/energy.md`` and ``literature.md`` section A):

- integer multiply 0.2 pJ at 8x8 bit, 3.1 pJ at 32x32 (Horowitz ISSCC'14) -> ``E_mul = k * wb * ab``
  with ``k = 0.2 / 64 = 3.125e-3 pJ/bit^2`` (3.2 pJ predicted at 32 bit);
- integer add 0.03 pJ at 8 bit, 0.1 pJ at 32 bit -> ``E_add = 3.75e-3 pJ/bit * bits`` (the MAC's
  accumulator add runs at ``accumulator_bits``);
- floating point (Horowitz): multiply FP16 1.1 / FP32 3.7 pJ, add FP16 0.4 / FP32 0.9 pJ; a float
  MAC accumulates in an FP adder of ``accumulator_bits`` (FP16 MAC into FP32: 2.0 pJ);
- SRAM read 10 pJ per 64-bit word at 8 KB, growing with sqrt(capacity) (20 pJ at 32 KB, 100 pJ at
  1 MB in Horowitz's table; sqrt gives 20 and 113) -> ``0.156 pJ/bit * sqrt(size_kb / 8)``;
  writes cost the same unless overridden;
- DRAM 20 pJ/bit (Horowitz 1.3 nJ per 64-bit access; Han et al. 640 pJ per 32 bit);
- PE register files 0.012 pJ/bit (ZigZag's TPU-like 128 B register, 0.095 pJ per 8-bit access;
  consistent with Eyeriss' RF ~ 1x MAC energy);
- SRAM leakage 0.0072 mW/KB (PUMA's 64 KB eDRAM: 0.46 mW).

Every number can be overridden per hardware file; ``technology_nm`` (7..130 nm) scales them all
except DRAM and leakage (Stillmaker & Baas 2017, :mod:`accelsim.hardware.technology`).
"""
from __future__ import annotations

import functools
import math
import types
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._validation import reject_bool_numbers

from .technology import MAX_NODE_NM, MIN_NODE_NM, energy_scale

if TYPE_CHECKING:  # pragma: no cover
    from ..stats import Action

#: ``json_schema_extra`` of a field that only prices actions (energy per event, labels): the
#: tiling and timing never depend on it, so the explorer may reuse cached programs across it.
PRICING_ONLY = {"pricing_only": True}


#: Bounds checked when a hardware file loads (documented in docs/hardware_format.md): clock
#: 1 MHz .. 100 GHz (a lower clock turns microseconds into years and energies into 1e300 uJ),
#: SRAMs up to 16 GiB, DRAM bandwidth up to 1 PB/s, any energy per action up to 1 uJ.
MIN_CLOCK_MHZ = 1.0
MAX_CLOCK_MHZ = 1e5
MAX_SRAM_KB = float(2**24)
MAX_BW_GBPS = 1e6
MAX_PJ = 1e6


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)


#: Horowitz ISSCC'14, 45 nm: FP16 multiply 1.1 pJ, FP32 3.7 pJ -> E = 1.1 (b/16)^1.75
FP_MULT_PJ_AT_16B, FP_MULT_EXPONENT = 1.1, 1.75
#: Horowitz ISSCC'14, 45 nm: FP16 add 0.4 pJ, FP32 0.9 pJ -> E = 0.4 (b/16)^log2(0.9/0.4)
FP_ADD_PJ_AT_16B, FP_ADD_EXPONENT = 0.4, math.log2(0.9 / 0.4)


class EnergyTable(_Config):
    """Energy per action (pJ), with bit-width, number-format and technology scaling.

    Every coefficient of this table is a 45 nm figure (module docstring). Models:

    - multiply: int ``mult_pj_per_bit2 * wb * ab``; ``pow2`` weights: a shift (adder of ``ab``
      bits); ``binary``/``ternary``: none; ``float``: Horowitz' FP multiply ``1.1 (b/16)^1.75`` pJ
      at ``b = max(wb, ab)`` (FP16 1.1, FP32 3.7 pJ);
    - accumulate: an integer adder of ``accumulator_bits`` (``add_pj_per_bit * bits``; 0.12 pJ at
      32 bit), or for ``float`` MACs a floating-point adder of ``accumulator_bits``
      ``0.4 (b/16)^1.17`` pJ (Horowitz: FP16 add 0.4, FP32 0.9 pJ). An FP16 MAC accumulating in
      FP32 costs 1.1 + 0.9 = 2.0 pJ, an int8 MAC 0.2 + 0.12 = 0.32 pJ;
    - ``mac_pj`` (override): the energy of the *reference* MAC, int8 x int8 with this table's
      accumulator. Every other format and width costs ``mac_pj`` times the built-in model's ratio
      ``E(wb, ab, scheme) / E(8, 8, int)`` (so an override keeps the format's relative cost:
      fp16 = 6.25x, binary = 0.375x, int4 = 0.53x the int8 MAC at the defaults);
    - technology: every energy of this table (MAC, multiply, adders, PE registers, SRAM per-bit
      size model, ``mac_pj``) is multiplied by :func:`~accelsim.hardware.technology.energy_scale`
      of ``technology_nm`` (Stillmaker & Baas 2017; 1.0 at 45 nm; valid 7..130 nm, other values
      are rejected). Not scaled: DRAM (``dram.pj_per_bit`` is an interface figure, not logic),
      explicit per-memory ``read_pj_per_bit``/``write_pj_per_bit`` overrides (they describe a
      concrete macro), leakage powers, and kind-specific tables (crossbar, FPGA).
    """

    # not marked PRICING_ONLY although it only prices: the explorer's stored timing keys keep it
    technology_nm: int = Field(45, ge=MIN_NODE_NM, le=MAX_NODE_NM,
                               description="CMOS node; scales the table's energies (Stillmaker & Baas 2017)")
    mult_pj_per_bit2: float = Field(0.2 / 64, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    add_pj_per_bit: float = Field(0.03 / 8, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    accumulator_bits: int = Field(32, ge=1, le=64)
    mac_pj: float | None = Field(None, ge=0, le=MAX_PJ, description="energy of the int8 x int8 reference MAC; other formats "
                                 "scale by the bit-width model's ratios", json_schema_extra=PRICING_ONLY)
    pe_rf_pj_per_bit: float = Field(0.095 / 8, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    sram_pj_per_bit_at_8kb: float = Field(10.0 / 64, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    sram_size_exponent: float = Field(0.5, ge=0, le=1.5, json_schema_extra=PRICING_ONLY)
    sram_leakage_mw_per_kb: float = Field(0.46 / 64, ge=0, le=MAX_PJ)
    pe_leakage_mw: float = Field(0.0, ge=0, le=MAX_PJ, description="static power per PE (0: not modelled)")
    shift_add_pj_per_bit: float = Field(0.03 / 8, ge=0, description="shift-and-add / decoder ops", json_schema_extra=PRICING_ONLY)

    @property
    def tech_scale(self) -> float:
        """Energy factor of ``technology_nm`` relative to 45 nm (Stillmaker & Baas 2017)."""
        return energy_scale(self.technology_nm)

    # -- 45 nm reference figures (unscaled) ---------------------------------------------------
    def _mult_ref_pj(self, weight_bits: int, act_bits: int, scheme: str) -> float:
        if scheme in ("binary", "ternary"):
            return 0.0
        if scheme == "pow2":
            return self.add_pj_per_bit * act_bits
        if scheme == "float":
            return FP_MULT_PJ_AT_16B * (max(weight_bits, act_bits) / 16) ** FP_MULT_EXPONENT
        return self.mult_pj_per_bit2 * weight_bits * act_bits

    def _accumulate_ref_pj(self, scheme: str) -> float:
        if scheme == "float":
            return FP_ADD_PJ_AT_16B * (self.accumulator_bits / 16) ** FP_ADD_EXPONENT
        return self.add_pj_per_bit * self.accumulator_bits

    def _mac_ref_pj(self, weight_bits: int, act_bits: int, scheme: str) -> float:
        return self._mult_ref_pj(weight_bits, act_bits, scheme) + self._accumulate_ref_pj(scheme)

    # -- priced at technology_nm ----------------------------------------------------------------
    def mult_pj(self, weight_bits: int, act_bits: int, scheme: str = "int") -> float:
        """One multiply. pow2 weights shift (an add-sized op); binary/ternary need none."""
        return self.tech_scale * self._mult_ref_pj(weight_bits, act_bits, scheme)

    def accumulate_pj(self, scheme: str = "int") -> float:
        """The MAC's accumulator add at ``accumulator_bits`` (a floating-point adder for ``float``)."""
        return self.tech_scale * self._accumulate_ref_pj(scheme)

    def mac_energy_pj(self, weight_bits: int = 8, act_bits: int = 8, scheme: str = "int") -> float:
        """One multiply-accumulate at the given operand widths and number format."""
        ref = self._mac_ref_pj(weight_bits, act_bits, scheme)
        if self.mac_pj is not None:
            int8 = self._mac_ref_pj(8, 8, "int")
            ref = self.mac_pj * (ref / int8) if int8 > 0 else self.mac_pj
        return self.tech_scale * ref

    def add_pj(self, bits: int) -> float:
        """An integer adder (vector ops, bit-serial steps) of ``bits``."""
        return self.tech_scale * self.add_pj_per_bit * bits

    def shift_add_pj(self, bits: int) -> float:
        """A shift-and-add / decoder op of ``bits``."""
        return self.tech_scale * self.shift_add_pj_per_bit * bits

    def pe_rf_pj(self, bits: int) -> float:
        """A PE register access of ``bits``."""
        return self.tech_scale * self.pe_rf_pj_per_bit * bits

    def sram_pj_per_bit(self, size_kb: float) -> float:
        """Per-bit access energy of an SRAM of ``size_kb`` (sqrt-of-capacity scaling)."""
        return self.tech_scale * self.sram_pj_per_bit_at_8kb * (max(size_kb, 1e-3) / 8.0) ** self.sram_size_exponent


class SramConfig(_Config):
    """An on-chip buffer. Energies default to the technology table's size model."""

    size_kb: float = Field(gt=0, le=MAX_SRAM_KB)
    read_pj_per_bit: float | None = Field(None, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    write_pj_per_bit: float | None = Field(None, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    leakage_mw: float | None = Field(None, ge=0, le=MAX_PJ)
    banks: int = Field(1, gt=0, le=2**16)

    @property
    def size_bits(self) -> int:
        return int(self.size_kb * 1024 * 8)

    def words(self, word_bits: int) -> int:
        return int(self.size_kb * 1024 * 8) // word_bits

    def read_energy_pj_per_bit(self, table: EnergyTable) -> float:
        return self.read_pj_per_bit if self.read_pj_per_bit is not None else table.sram_pj_per_bit(self.size_kb)

    def write_energy_pj_per_bit(self, table: EnergyTable) -> float:
        return self.write_pj_per_bit if self.write_pj_per_bit is not None else table.sram_pj_per_bit(self.size_kb)

    def leakage_power_mw(self, table: EnergyTable) -> float:
        return self.leakage_mw if self.leakage_mw is not None else table.sram_leakage_mw_per_kb * self.size_kb


class DramConfig(_Config):
    """Off-chip memory: one channel shared by reads and writes.

    ``bw_gbps`` is in GB/s (1e9 bytes per second). ``pj_per_bit`` defaults to Horowitz' 45 nm
    figure (20 pJ/bit); typical values: LPDDR4 8, DDR3 70, HBM2 3.9 (Accelergy's table).
    ``latency_cycles`` is added once per layer (first access) — bandwidth, not latency, shapes
    steady-state stalls.
    """

    bw_gbps: float = Field(gt=0, le=MAX_BW_GBPS)
    pj_per_bit: float = Field(20.0, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    write_pj_per_bit: float | None = Field(None, ge=0, le=MAX_PJ, json_schema_extra=PRICING_ONLY)
    latency_cycles: int = Field(0, ge=0, le=10**9)
    type: str = "generic"

    def bits_per_cycle(self, clock_mhz: float) -> float:
        return self.bw_gbps * 8e9 / (clock_mhz * 1e6)

    def write_energy_pj_per_bit(self) -> float:
        return self.write_pj_per_bit if self.write_pj_per_bit is not None else self.pj_per_bit


class HardwareBase(_Config):
    """Fields every accelerator has. Subclasses add a ``kind`` literal and their own fields."""

    kind: str
    name: str = Field("unnamed", json_schema_extra=PRICING_ONLY)
    description: str = Field("", json_schema_extra=PRICING_ONLY)
    clock_mhz: float = Field(1000.0, ge=MIN_CLOCK_MHZ, le=MAX_CLOCK_MHZ)
    dram: DramConfig = DramConfig(bw_gbps=25.6)
    energy: EnergyTable = EnergyTable()
    stall_model: Literal["double_buffer", "none"] = "double_buffer"

    #: whether :meth:`accelsim.engines.base.Engine.area_mm2` of this kind's engine is an area model
    has_area_model: ClassVar[bool] = False

    @property
    def num_pes(self) -> int:
        """Processing elements (for per-PE leakage and utilisation); 0 when not meaningful."""
        return 0

    def action_energy_pj(self, action: "Action") -> float | None:
        """Energy of one event of a kind-specific action; None: priced by the generic rules of
        :func:`accelsim.energy.unit_energy_pj`."""
        return None

    def leakage_power_mw(self) -> dict[str, float]:
        """Static power by component: every SRAM field's leakage plus ``pe_leakage_mw`` per PE."""
        out: dict[str, float] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SramConfig):
                out[name] = value.leakage_power_mw(self.energy)
        if self.num_pes and self.energy.pe_leakage_mw:
            out["pe_array"] = self.energy.pe_leakage_mw * self.num_pes
        return out

    def component_table_text(self) -> str | None:
        """Per-component power/area tables for ``accelsim hw`` (None: the kind has none)."""
        return None

    @classmethod
    def pricing_only_fields(cls) -> frozenset[str]:
        """Dotted paths of the fields marked pricing-only (:data:`PRICING_ONLY`)."""
        return pricing_only_fields(cls)

    def dram_bits_per_cycle(self) -> float:
        return self.dram.bits_per_cycle(self.clock_mhz)

    def cycles_to_seconds(self, cycles: float) -> float:
        return cycles / (self.clock_mhz * 1e6)

    def leakage_pj(self, power_mw: float, cycles: float) -> float:
        """mW x cycles / MHz -> pJ (1 mW for 1 us = 1 nJ)."""
        return power_mw * cycles / self.clock_mhz * 1e3

    def summary(self) -> str:
        return f"{self.kind} '{self.name}' at {self.clock_mhz:g} MHz"


Dataflow = Literal["os", "ws", "is"]


class ScaleSimPorts(_Config):
    """SCALE-Sim USER-mode DRAM port bandwidths in words per cycle (one port per operand)."""

    ifmap_words_per_cycle: int = Field(gt=0)
    filter_words_per_cycle: int = Field(gt=0)
    ofmap_words_per_cycle: int = Field(gt=0)


def _model_types(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (``Model``, ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _model_types(a)]
    return []


@functools.lru_cache(maxsize=None)
def pricing_only_fields(model: type[BaseModel]) -> frozenset[str]:
    """Dotted paths of every field of ``model`` (and its nested sections) marked :data:`PRICING_ONLY`."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("pricing_only"):
            out.add(name)
        for sub in _model_types(info.annotation):
            out.update(f"{name}.{p}" for p in pricing_only_fields(sub))
    return frozenset(out)
