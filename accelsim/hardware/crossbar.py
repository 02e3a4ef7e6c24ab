"""Memristor-crossbar in-memory-compute accelerator (ISAAC / NeuroSim style): config and component table.

**Hierarchy.** A *crossbar* of ``rows x cols`` memristor cells (``cell_bits`` each) with one DAC
per row, one sample-and-hold (S&H) per column and one ADC per ``columns_per_adc`` columns. An
*IMA* (in-situ multiply-accumulate unit; NeuroSim's "PE") holds ``ima.crossbars`` crossbars,
shift-and-add units and input/output registers. A *tile* holds ``tile.imas`` IMAs, a buffer
(ISAAC: eDRAM), a bus, a share of a router, digital units (shift-and-add for partial sums,
activation, pooling) and an output register. A *chip* holds ``chip.tiles`` tiles and its
off-chip links (``chip.io``). Every field defaults to ISAAC-CE (Shafiee et al., ISCA 2016;
``tests/data/reference/literature.md`` B1/H-B1); ``hw_configs/isaac_like.yaml`` spells them out.

**Component table.** Every unit has ``power_mw`` (one unit at full activity, the way ISAAC's
Table I lists it), ``area_mm2`` and ``leakage_mw`` (static, charged over time; 0 unless
given). The per-IMA, per-tile and per-chip tables (:meth:`~CrossbarAccelerator.ima_power_mw`,
:meth:`~CrossbarAccelerator.tile_power_mw`, :meth:`~CrossbarAccelerator.chip_power_mw` and the
``*_area_mm2`` twins) are sums of count x unit value.

**Energy per action** (what the engine's counts are priced with) is ``energy_pj`` when given,
otherwise derived from the unit's power and how long one action keeps it busy:

- crossbar read, DAC drive, S&H sample: ``power_mw x crossbar.read_ns`` (mW x ns = pJ); a
  crossbar read is priced per driven row (``/ rows``) so partly used arrays cost less;
- ADC conversion: ``power_mw / sample_rate_gsps``;
- digital units (shift-and-add, activation, pooling): ``power_mw / ops_per_ns``;
- registers, tile buffer, bus, router (per bit): ``power_mw / bw_bits_per_ns``.

A rate or bandwidth left empty is the *peak demand* of the hierarchy at the ``reference``
precision (ISAAC: 16-bit weights and inputs): every crossbar full, every input fetched once per
vector, every output merged once (:meth:`~CrossbarAccelerator.peak_demand_per_ns`). So an IMA
running flat out at the reference precision draws exactly its table power; the derived per-bit
energies agree with the ISAAC-derived Accelergy library (tests).

**ADC.** The exact-sum resolution is ``ceil(log2(rows (2^dac_bits - 1)(2^cell_bits - 1) + 1))``
bits (128 rows, 1-bit DAC, 2-bit cells: 9), one less with ISAAC's weight flipping
(``weight_flipping: true``). ``adc.bits: auto`` takes that value; a smaller explicit value is
allowed (NeuroSim's 5-bit default) and reported as clipping partial sums (accuracy not modelled).
Unset ADC power/area follow ISAAC's 8-bit 1.28 GS/s SAR ADC (2 mW, 1200 um^2) scaled per bit
by the capacitive-DAC SAR model the Accelergy ISAAC library tabulates (4..10 bits,
extrapolated geometrically outside).

**Timing** (used by :mod:`accelsim.engines.crossbar`). One input bit-slice ("step") reads all
crossbars at once. With S&H the column currents are held while the ADC converts its
``columns_per_adc`` columns, overlapped with the next read: a step takes
``max(read_ns, columns_per_adc / sample_rate)``. Without S&H (NeuroSim's column mux) each of the
``columns_per_adc`` mux positions needs its own read and conversion: ``columns_per_adc x
(read_ns + 1 / sample_rate)``. An explicit IMA shift-and-add rate adds a third bound. A vector
takes ``ceil(act_bits / dac.bits)`` steps.

**Ignored here**: wire/IR drop, device variation, conductance drift, write (programming) energy
and time of the weights (programmed once before inference), technology scaling between nodes
(give numbers for your node), and data-dependent read energy (a read costs its average).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .common import PRICING_ONLY, HardwareBase, _Config
from .registry import register_hardware
from .act_zero import act_zero_mode
from .sparsity import sparsity_block

#: storage levels a crossbar ``sparsity:`` block may name
CrossbarSparsity = sparsity_block("crossbar", ("dram", "tile_buffer"))

if TYPE_CHECKING:  # pragma: no cover
    from ..stats import Action

#: components in table order (also the energy/area breakdown names)
COMPONENTS = ("crossbar", "dac", "adc", "sample_hold", "shift_add", "input_register", "output_register",
              "tile_buffer", "bus", "router", "activation", "pool", "chip_io")

# SAR ADC energy (pJ/conversion) and area (um^2) by resolution at 32 nm, 1.2 GS/s: ISAAC's 8-bit ADC
# (Kull et al., ISSCC 2013) scaled with Saberi et al. 2011 -- the table in the comments of
# Accelergy-Project/hwcomponents-library, library/isaac.py (IsaacADC).
_ADC_ENERGY_PJ = {4: 0.79, 5: 0.99, 6: 1.20, 7: 1.42, 8: 1.666666667, 9: 1.969078145, 10: 2.379022742}
_ADC_AREA_UM2 = {4: 361.04, 5: 476.91, 6: 626.91, 7: 845.18, 8: 1200.0, 9: 1827.911647, 10: 3002.008032}
ISAAC_ADC_POWER_MW = 2.0        # per ADC at 8 bits, 1.28 GS/s (16 mW for 8 ADCs)
ISAAC_ADC_RATE_GSPS = 1.28


def _adc_scale(table: dict[int, float], bits: int) -> float:
    """Value at ``bits`` relative to 8 bits (geometric extrapolation outside the table)."""
    lo, hi = min(table), max(table)
    if bits < lo:
        value = table[lo] * (table[lo] / table[lo + 1]) ** (lo - bits)
    elif bits > hi:
        value = table[hi] * (table[hi] / table[hi - 1]) ** (bits - hi)
    else:
        value = table[bits]
    return value / table[8]


def exact_adc_bits(rows: int, dac_bits: int, cell_bits: int) -> int:
    """ADC bits that represent every column sum exactly: ``ceil(log2(rows (2^v-1)(2^w-1) + 1))``."""
    max_sum = rows * (2 ** dac_bits - 1) * (2 ** cell_bits - 1)
    return max(1, math.ceil(math.log2(max_sum + 1)))


# --- unit descriptions --------------------------------------------------------------------------

class CrossbarArray(_Config):
    """One memristor array. ``power_mw`` while being read with all rows driven."""

    rows: int = Field(128, gt=0, le=4096)
    cols: int = Field(128, gt=0, le=4096)
    cell_bits: int = Field(2, ge=1, le=8, description="bits stored per memristor cell")
    read_ns: float = Field(100.0, gt=0, description="one crossbar read (one input bit-slice)")
    power_mw: float = Field(0.3, ge=0)
    area_mm2: float = Field(2.5e-5, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    energy_pj: float | None = Field(None, ge=0, description="one full read; default power_mw x read_ns", json_schema_extra=PRICING_ONLY)

    @field_validator("cell_bits", mode="before")
    @classmethod
    def _cell_bits(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v > 8:
            raise ValueError(f"cells store at most 8 bits (multi-level cells beyond 8 bits are not physical); got {v}")
        return v


class Dac(_Config):
    """One row driver. ``power_mw`` while driving one read."""

    bits: int = Field(1, ge=1, le=8)
    power_mw: float = Field(4.0 / 1024, ge=0)
    area_mm2: float = Field(0.166015625e-6, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    energy_pj: float | None = Field(None, ge=0, description="per row per step; default power_mw x read_ns", json_schema_extra=PRICING_ONLY)


class Adc(_Config):
    """Column ADC shared by ``columns_per_adc`` columns. ``bits: auto`` = the exact-sum rule."""

    bits: int | None = Field(None, le=16, description="resolution; null/'auto' = exact-sum rule")
    columns_per_adc: int = Field(128, ge=1)
    sample_rate_gsps: float = Field(ISAAC_ADC_RATE_GSPS, gt=0)
    power_mw: float | None = Field(None, ge=0, description="default: ISAAC's ADC scaled to bits and rate")
    area_mm2: float | None = Field(None, ge=0, description="default: ISAAC's ADC scaled to bits")
    leakage_mw: float = Field(0.0, ge=0)
    energy_pj: float | None = Field(None, ge=0, description="per conversion; default power_mw / rate", json_schema_extra=PRICING_ONLY)

    @field_validator("bits", mode="before")
    @classmethod
    def _auto(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 1:
            raise ValueError(f"ADC resolution must be at least 1 bit, got {v} (use 'auto' for the exact-sum rule)")
        return v


class SampleHold(_Config):
    """One S&H per column: holds a read while the ADC converts (pipelines read and conversion)."""

    enabled: bool = True
    power_mw: float = Field(0.01 / 1024, ge=0)
    area_mm2: float = Field(0.00004 / 1024, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    energy_pj: float | None = Field(None, ge=0, description="per sample; default power_mw x read_ns", json_schema_extra=PRICING_ONLY)


class DigitalUnit(_Config):
    """``count`` digital units (per IMA or tile), each doing ``ops_per_ns`` operations."""

    count: int = Field(1, ge=0)
    power_mw: float = Field(0.0, ge=0)
    area_mm2: float = Field(0.0, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    ops_per_ns: float | None = Field(None, gt=0, description="per unit; default: keeps pace at peak")
    energy_pj: float | None = Field(None, ge=0, description="per op; default power_mw / ops_per_ns", json_schema_extra=PRICING_ONLY)


class Memory(_Config):
    """A register file or buffer; ``power_mw`` at ``bw_bits_per_ns``."""

    size_kb: float = Field(gt=0)
    power_mw: float = Field(0.0, ge=0)
    area_mm2: float = Field(0.0, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    bw_bits_per_ns: float | None = Field(None, gt=0, description="default: the peak demand")
    energy_pj_per_bit: float | None = Field(None, ge=0, description="default power_mw / bw_bits_per_ns", json_schema_extra=PRICING_ONLY)

    @property
    def size_bits(self) -> int:
        return int(self.size_kb * 8192)


class Interconnect(_Config):
    """A bus or router; ``shared_by`` tiles share one (ISAAC: one router per 4 tiles)."""

    power_mw: float = Field(0.0, ge=0)
    area_mm2: float = Field(0.0, ge=0)
    leakage_mw: float = Field(0.0, ge=0)
    shared_by: int = Field(1, ge=1)
    bw_bits_per_ns: float | None = Field(None, gt=0, description="default: the peak demand")
    energy_pj_per_bit: float | None = Field(None, ge=0, description="default power_mw / bw_bits_per_ns", json_schema_extra=PRICING_ONLY)


class ChipIO(_Config):
    """Off-chip links of one chip (ISAAC: 4 HyperTransport links, 10.4 W, 22.88 mm^2).

    Their power is in the chip table; chip-to-chip traffic is not modelled, so they cost energy
    only as ``leakage_mw`` (always-on links) -- 0 by default, set it to charge the links.
    """

    power_mw: float = Field(10400.0, ge=0)
    area_mm2: float = Field(22.88, ge=0)
    leakage_mw: float = Field(0.0, ge=0)


class Ima(_Config):
    crossbars: int = Field(8, ge=1, le=4096)
    shift_add: DigitalUnit = DigitalUnit(count=4, power_mw=0.05, area_mm2=60e-6)
    input_register: Memory = Memory(size_kb=2, power_mw=1.24, area_mm2=0.0021)
    output_register: Memory = Memory(size_kb=0.25, power_mw=0.23, area_mm2=0.00077)


class Tile(_Config):
    imas: int = Field(12, ge=1, le=4096)
    buffer: Memory = Memory(size_kb=64, power_mw=20.7, area_mm2=0.083)
    bus: Interconnect = Interconnect(power_mw=7.0, area_mm2=0.090)
    router: Interconnect = Interconnect(power_mw=42.0, area_mm2=0.151, shared_by=4)
    shift_add: DigitalUnit = DigitalUnit(count=1, power_mw=0.05, area_mm2=0.00006)
    activation: DigitalUnit = DigitalUnit(count=2, power_mw=0.26, area_mm2=0.0003)
    pool: DigitalUnit = DigitalUnit(count=1, power_mw=0.4, area_mm2=0.00024)
    output_register: Memory = Memory(size_kb=3, power_mw=1.68, area_mm2=0.0032)


class Chip(_Config):
    tiles: int = Field(168, ge=1, le=1_000_000)
    io: ChipIO = ChipIO()


class Reference(_Config):
    """Operating point at which the unit powers hold (derives rates left empty)."""

    weight_bits: int = Field(16, ge=1, le=32)
    act_bits: int = Field(16, ge=1, le=32)


class Mapping(_Config):
    """Weight-stationary mapping options.

    ``replication``: ``none`` (every layer's weights once), ``balance`` (spend the crossbars
    left in the ``max_chips`` budget on copies of the layers that save the most cycles per IMA,
    greedily) or a mapping ``{layer name: copies}``. ``max_replication`` caps any layer.
    ``pack_groups``: groups of a grouped/depthwise conv whose weights fit in one crossbar block
    share crossbars block-diagonally (``min(rows // K, W // N)`` groups per block; empty groups
    are left out).
    """

    replication: Literal["none", "balance"] | dict[str, int] = "none"
    max_replication: int = Field(1024, ge=1)
    pack_groups: bool = Field(True, description="share crossbars between small conv groups (block-diagonal)")

    @field_validator("replication")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for name, r in v.items():
                if r < 1:
                    raise ValueError(f"replication of layer {name!r} must be >= 1, got {r}")
        return v


@dataclass(frozen=True)
class Allocation:
    """Hardware a mapping uses: crossbar-level parts per crossbar, IMA parts per IMA, and so on."""

    crossbars: int
    imas: int
    tiles: int
    chips: int


# --- the accelerator ------------------------------------------------------------------------------

@register_hardware("crossbar", engine="accelsim.engines.crossbar:CrossbarEngine")
class CrossbarAccelerator(HardwareBase):
    """ISAAC/NeuroSim-style memristor crossbar accelerator; see the module docstring.

    ``signed_weights``: ``offset`` stores ``w + 2^(b-1)`` and subtracts the bias times the
    input sum digitally (one tile shift-and-add op per output and vector; ISAAC's encoding);
    ``differential`` stores ``w+`` and ``w-`` on two columns (twice the columns, ADC
    conversions and shift-adds). ``slice_layout``: ``adjacent`` puts the ``ceil(wbits /
    cell_bits)`` slices of a weight in neighbouring columns of one crossbar (ISAAC: 2 KB input
    register = 8 crossbars x 128 rows x 16-bit inputs; NeuroSim's numColPerSynapse);
    ``separate`` puts each slice in its own crossbar sharing the input (PUMA).
    ``max_chips`` is the budget: a workload needing more is infeasible (an error). Area is
    that of the hardware the mapping allocates (built to order): fully pruned crossbar blocks
    get no crossbar, DACs, S&H or ADCs.
    """

    kind: Literal["crossbar"] = "crossbar"
    has_area_model: ClassVar[bool] = True
    name: str = Field("isaac-ce", json_schema_extra=PRICING_ONLY)
    clock_mhz: float = Field(1000.0, gt=0)
    crossbar: CrossbarArray = CrossbarArray()
    dac: Dac = Dac()
    adc: Adc = Adc()
    sample_hold: SampleHold = SampleHold()
    ima: Ima = Ima()
    tile: Tile = Tile()
    chip: Chip = Chip()
    signed_weights: Literal["offset", "differential"] = "offset"
    weight_flipping: bool = Field(True, description="ISAAC's flipped-column encoding: one ADC bit less")
    slice_layout: Literal["adjacent", "separate"] = "adjacent"
    psum_bits: int = Field(16, ge=1, le=64, description="partial sums in registers, bus and tile merges")
    reference: Reference = Reference()
    max_chips: int | None = Field(None, ge=1, description="chip budget; null = as many as the workload needs")
    mapping: Mapping = Mapping()
    sparsity: CrossbarSparsity = Field(  # type: ignore[valid-type]
        CrossbarSparsity(), description="compute: {action, on_zeros: inputs} on zero input activations: none (every row "
        "driven), gate (zero rows not driven: DAC, row-read and input-register energy), skip (gate, and a crossbar "
        "whose rows are all zero for a vector skips its bit-slice waves: no read, ADC conversion, S&H or shift-add; "
        "the crossbars stay in lock-step, so a round is saved only when the whole vector is zero)")

    @property
    def act_zero(self) -> str:
        """What the crossbars do with zero input activations (``sparsity.compute``)."""
        return act_zero_mode(self.sparsity)

    @model_validator(mode="after")
    def _check(self) -> "CrossbarAccelerator":
        if self.adc.columns_per_adc > self.crossbar.cols:
            raise ValueError(f"adc.columns_per_adc {self.adc.columns_per_adc} exceeds crossbar.cols {self.crossbar.cols}")
        if self.mapping.replication == "balance" and self.max_chips is None:
            raise ValueError("mapping.replication 'balance' needs max_chips (the budget whose spare crossbars hold the copies)")
        ref_cpw = self.columns_per_weight(self.reference.weight_bits)
        if self.slice_layout == "adjacent" and ref_cpw > self.crossbar.cols:
            raise ValueError(f"reference.weight_bits {self.reference.weight_bits} needs {ref_cpw} columns per weight "
                             f"but crossbar.cols is {self.crossbar.cols}")
        return self

    # --- geometry -------------------------------------------------------------------------------
    def columns_per_weight(self, weight_bits: int) -> int:
        """Physical columns one weight occupies (bit slices, doubled for differential pairs)."""
        slices = -(-weight_bits // self.crossbar.cell_bits)
        return slices * (2 if self.signed_weights == "differential" else 1)

    def weight_cols_per_block(self, weight_bits: int) -> int:
        """Weights (outputs) a crossbar block spans: ``cols // cpw`` (adjacent) or ``cols`` (separate)."""
        if self.slice_layout == "separate":
            return self.crossbar.cols
        return self.crossbar.cols // self.columns_per_weight(weight_bits)

    def crossbars_per_block(self, weight_bits: int) -> int:
        return self.columns_per_weight(weight_bits) if self.slice_layout == "separate" else 1

    @property
    def adcs_per_crossbar(self) -> int:
        return -(-self.crossbar.cols // self.adc.columns_per_adc)

    @property
    def adc_bits_required(self) -> int:
        bits = exact_adc_bits(self.crossbar.rows, self.dac.bits, self.crossbar.cell_bits)
        return max(1, bits - (1 if self.weight_flipping else 0))

    @property
    def adc_bits(self) -> int:
        return self.adc.bits if self.adc.bits is not None else self.adc_bits_required

    def input_steps(self, act_bits: int) -> int:
        """Bit-serial steps of one input vector."""
        return -(-act_bits // self.dac.bits)

    # --- timing -----------------------------------------------------------------------------------
    @property
    def reads_per_step(self) -> int:
        """Crossbar reads per input step: 1 with S&H, one per ADC mux position without."""
        return 1 if self.sample_hold.enabled else self.adc.columns_per_adc

    @property
    def step_ns(self) -> float:
        """One input bit-slice through every crossbar of an IMA (steady state)."""
        conv_ns = 1.0 / self.adc.sample_rate_gsps
        k = self.adc.columns_per_adc
        if self.sample_hold.enabled:
            t = max(self.crossbar.read_ns, k * conv_ns)
        else:
            t = k * (self.crossbar.read_ns + conv_ns)
        sa = self.ima.shift_add
        if sa.ops_per_ns is not None and sa.count > 0:
            conversions = self.ima.crossbars * self.crossbar.cols
            t = max(t, conversions / (sa.count * sa.ops_per_ns))
        return t

    @property
    def fill_ns(self) -> float:
        """Pipeline fill of a layer: with S&H the last conversion trails the last read by one read."""
        return self.crossbar.read_ns if self.sample_hold.enabled else 0.0

    def mvm_ns(self, act_bits: int) -> float:
        return self.input_steps(act_bits) * self.step_ns

    def ns_to_cycles(self, ns: float) -> int:
        return max(0, math.ceil(ns * self.clock_mhz / 1000.0 - 1e-9))

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    # --- unit values ------------------------------------------------------------------------------
    @property
    def adc_energy_pj(self) -> float:
        if self.adc.energy_pj is not None:
            return self.adc.energy_pj
        return self.adc_power_mw / self.adc.sample_rate_gsps

    @property
    def adc_power_mw(self) -> float:
        if self.adc.power_mw is not None:
            return self.adc.power_mw
        per_conv = ISAAC_ADC_POWER_MW / ISAAC_ADC_RATE_GSPS * _adc_scale(_ADC_ENERGY_PJ, self.adc_bits)
        return per_conv * self.adc.sample_rate_gsps

    @property
    def adc_area_mm2(self) -> float:
        if self.adc.area_mm2 is not None:
            return self.adc.area_mm2
        return 1200e-6 * _adc_scale(_ADC_AREA_UM2, self.adc_bits)

    def _blocks_per_ima(self, weight_bits: int) -> float:
        return self.ima.crossbars / self.crossbars_per_block(weight_bits)

    def peak_demand_per_ns(self) -> dict[str, float]:
        """Actions per ns of ONE unit of each kind at the reference precision, all crossbars busy.

        Per IMA and vector: inputs ``SR = blocks x rows`` fetched once, outputs
        ``SC = blocks x weight columns``; no input reuse, every output merged once (tile
        shift-add, tile output register) and sent to the next layer through the router.
        """
        wb, ab = self.reference.weight_bits, self.reference.act_bits
        cpw, xpb = self.columns_per_weight(wb), self.crossbars_per_block(wb)
        bpi = self._blocks_per_ima(wb)
        sr = bpi * self.crossbar.rows
        sc = bpi * self.weight_cols_per_block(wb)
        t = self.mvm_ns(ab)
        steps = self.input_steps(ab)
        n_ima = self.tile.imas
        tl = self.tile
        per_unit = {
            "ima_shift_add": sc * cpw * steps / max(self.ima.shift_add.count, 1) / t,
            "input_register": sr * ab * (1 + xpb) / t,
            "output_register": 2 * sc * self.psum_bits / t,
            "bus": n_ima * (sr * ab + sc * self.psum_bits) / t,
            "tile_buffer": n_ima * 2 * (sr + sc) * ab / t,
            "router": tl.router.shared_by * n_ima * (sr + sc) * ab / t,
            "tile_shift_add": n_ima * sc / max(tl.shift_add.count, 1) / t,
            "tile_output_register": n_ima * 2 * sc * self.psum_bits / t,
            "activation": n_ima * sc / max(tl.activation.count, 1) / t,
            "pool": n_ima * sc / max(tl.pool.count, 1) / t,
        }
        return per_unit

    def _rate(self, given: float | None, key: str) -> float:
        return given if given is not None else self.peak_demand_per_ns()[key]

    def unit_energies_pj(self) -> dict[str, float]:
        """Energy of one action of each kind (pJ); see the module docstring for the actions."""
        xb, read = self.crossbar, self.crossbar.read_ns
        ima, tl = self.ima, self.tile

        def digital(u: DigitalUnit, key: str) -> float:
            return u.energy_pj if u.energy_pj is not None else u.power_mw / self._rate(u.ops_per_ns, key)

        def per_bit(u: Memory | Interconnect, key: str) -> float:
            if u.energy_pj_per_bit is not None:
                return u.energy_pj_per_bit
            return u.power_mw / self._rate(u.bw_bits_per_ns, key)

        full_read = xb.energy_pj if xb.energy_pj is not None else xb.power_mw * read
        return {
            "crossbar.row_read": full_read / xb.rows,
            "dac.drive": self.dac.energy_pj if self.dac.energy_pj is not None else self.dac.power_mw * read,
            "adc.convert": self.adc_energy_pj,
            "sample_hold.sample": (self.sample_hold.energy_pj if self.sample_hold.energy_pj is not None
                                   else self.sample_hold.power_mw * read),
            "shift_add.op": digital(ima.shift_add, "ima_shift_add"),
            "shift_add.tile_op": digital(tl.shift_add, "tile_shift_add"),
            "input_register.bit": per_bit(ima.input_register, "input_register"),
            "output_register.bit": per_bit(ima.output_register, "output_register"),
            "output_register.tile_bit": per_bit(tl.output_register, "tile_output_register"),
            "tile_buffer.bit": per_bit(tl.buffer, "tile_buffer"),
            "bus.bit": per_bit(tl.bus, "bus"),
            "router.bit": per_bit(tl.router, "router"),
            "activation.op": digital(tl.activation, "activation"),
            "pool.op": digital(tl.pool, "pool"),
        }

    def digital_ops_per_ns(self, unit: Literal["activation", "pool"]) -> float:
        """Throughput of one tile's activation or pooling units (ops per ns)."""
        u: DigitalUnit = getattr(self.tile, unit)
        return u.count * self._rate(u.ops_per_ns, unit)

    def buffer_bw_bits_per_ns(self) -> float | None:
        """Tile-buffer bandwidth when given explicitly (a timing bound), else None (never binding)."""
        return self.tile.buffer.bw_bits_per_ns

    # --- energy interface used by accelsim.energy ----------------------------------------------------
    def action_energy_pj(self, action: "Action") -> float | None:
        """pJ of one event of ``action``; None for generic actions (DRAM)."""
        comp, kind = action.component, action.action
        if comp == "dram":
            return None
        if kind in ("static", "tile_static"):  # count = unit-cycles of one leaking unit
            return self._unit_static_mw(comp, kind) * self.ns_per_cycle
        e = self.unit_energies_pj()
        if comp in ("input_register", "output_register", "tile_buffer", "bus", "router"):
            key = f"{comp}.tile_bit" if kind.startswith("tile_") else f"{comp}.bit"
            return e[key] * action.bits
        key = f"{comp}.{kind}"
        if key in e:
            return e[key]
        return None

    def leakage_power_mw(self) -> dict[str, float]:
        """Empty: static power depends on what a workload allocates, so the engine charges it per
        layer as ``static`` actions (:meth:`static_groups`; see :mod:`accelsim.engines.crossbar`)."""
        return {}

    def static_groups(self, alloc: Allocation) -> list[tuple[str, str, int, float]]:
        """(component, action, leaking units, static mW per unit) of ``alloc``; zero-power groups left out.

        ``action`` is ``static`` for crossbar/IMA/chip parts and ``tile_static`` for tile parts
        (the tile's shift-add and output register share component names with the IMA's).
        """
        xb, ima, tl = alloc.crossbars, alloc.imas, alloc.tiles
        t = self.tile
        groups = [
            ("crossbar", "static", xb, self.crossbar.leakage_mw),
            ("dac", "static", xb * self.crossbar.rows, self.dac.leakage_mw),
            ("adc", "static", xb * self.adcs_per_crossbar, self.adc.leakage_mw),
            ("sample_hold", "static", xb * self.crossbar.cols if self.sample_hold.enabled else 0, self.sample_hold.leakage_mw),
            ("shift_add", "static", ima * self.ima.shift_add.count, self.ima.shift_add.leakage_mw),
            ("input_register", "static", ima, self.ima.input_register.leakage_mw),
            ("output_register", "static", ima, self.ima.output_register.leakage_mw),
            ("tile_buffer", "tile_static", tl, t.buffer.leakage_mw),
            ("bus", "tile_static", tl, t.bus.leakage_mw),
            ("router", "tile_static", tl, t.router.leakage_mw / t.router.shared_by),
            ("shift_add", "tile_static", tl * t.shift_add.count, t.shift_add.leakage_mw),
            ("activation", "tile_static", tl * t.activation.count, t.activation.leakage_mw),
            ("pool", "tile_static", tl * t.pool.count, t.pool.leakage_mw),
            ("output_register", "tile_static", tl, t.output_register.leakage_mw),
            ("chip_io", "static", alloc.chips, self.chip.io.leakage_mw),
        ]
        return [g for g in groups if g[2] > 0 and g[3] > 0]

    def static_power_mw_of(self, alloc: Allocation) -> float:
        return float(sum(units * mw for _, _, units, mw in self.static_groups(alloc)))

    def _unit_static_mw(self, component: str, action: str) -> float:
        for comp, act, _, mw in self.static_groups(Allocation(1, 1, 1, 1)):
            if comp == component and act == action:
                return mw
        return 0.0

    # --- component tables ---------------------------------------------------------------------------
    def _unit_table(self, attr: str) -> dict[str, list[tuple[str, float, float]]]:
        """Per level: (component, units per level, value per unit) for ``power_mw`` or ``area_mm2``."""
        xb, ima, tl = self.crossbar, self.ima, self.tile
        adc_value = self.adc_power_mw if attr == "power_mw" else self.adc_area_mm2
        sh_units = xb.cols if self.sample_hold.enabled else 0
        router_units = 1.0 / tl.router.shared_by
        return {
            "crossbar": [("crossbar", 1, getattr(xb, attr)), ("dac", xb.rows, getattr(self.dac, attr)),
                         ("adc", self.adcs_per_crossbar, adc_value),
                         ("sample_hold", sh_units, getattr(self.sample_hold, attr))],
            "ima": [("shift_add", ima.shift_add.count, getattr(ima.shift_add, attr)),
                    ("input_register", 1, getattr(ima.input_register, attr)),
                    ("output_register", 1, getattr(ima.output_register, attr))],
            "tile": [("tile_buffer", 1, getattr(tl.buffer, attr)), ("bus", 1, getattr(tl.bus, attr)),
                     ("router", router_units, getattr(tl.router, attr)),
                     ("shift_add", tl.shift_add.count, getattr(tl.shift_add, attr)),
                     ("activation", tl.activation.count, getattr(tl.activation, attr)),
                     ("pool", tl.pool.count, getattr(tl.pool, attr)),
                     ("output_register", 1, getattr(tl.output_register, attr))],
            "chip": [("chip_io", 1, getattr(self.chip.io, attr))],
        }

    def _sum(self, attr: str, alloc: Allocation) -> dict[str, float]:
        counts = {"crossbar": alloc.crossbars, "ima": alloc.imas, "tile": alloc.tiles, "chip": alloc.chips}
        out: dict[str, float] = {}
        for level, rows in self._unit_table(attr).items():
            for comp, units, value in rows:
                if counts[level] and units:
                    out[comp] = out.get(comp, 0.0) + counts[level] * units * value
        return {c: out[c] for c in COMPONENTS if c in out}

    def full_ima(self) -> Allocation:
        return Allocation(crossbars=self.ima.crossbars, imas=1, tiles=0, chips=0)

    def full_tile(self) -> Allocation:
        return Allocation(crossbars=self.ima.crossbars * self.tile.imas, imas=self.tile.imas, tiles=1, chips=0)

    def full_chip(self) -> Allocation:
        t = self.chip.tiles
        return Allocation(crossbars=self.ima.crossbars * self.tile.imas * t, imas=self.tile.imas * t, tiles=t, chips=1)

    def power_mw_of(self, alloc: Allocation) -> dict[str, float]:
        """Table power (every unit at full activity) of allocated hardware, by component."""
        return self._sum("power_mw", alloc)

    def area_mm2_of(self, alloc: Allocation) -> dict[str, float]:
        return self._sum("area_mm2", alloc)

    def ima_power_mw(self) -> dict[str, float]:
        return self.power_mw_of(self.full_ima())

    def tile_power_mw(self) -> dict[str, float]:
        return self.power_mw_of(self.full_tile())

    def chip_power_mw(self) -> dict[str, float]:
        return self.power_mw_of(self.full_chip())

    def ima_area_mm2(self) -> dict[str, float]:
        return self.area_mm2_of(self.full_ima())

    def tile_area_mm2(self) -> dict[str, float]:
        return self.area_mm2_of(self.full_tile())

    def chip_area_mm2(self) -> dict[str, float]:
        return self.area_mm2_of(self.full_chip())

    # --- peak figures -------------------------------------------------------------------------------
    def peak_macs_per_s(self, weight_bits: int | None = None, act_bits: int | None = None,
                        alloc: Allocation | None = None) -> float:
        """Weight-slot MACs per second with every crossbar of ``alloc`` (default: one chip) busy."""
        wb = weight_bits if weight_bits is not None else self.reference.weight_bits
        ab = act_bits if act_bits is not None else self.reference.act_bits
        alloc = alloc or self.full_chip()
        weights_per_crossbar = self.crossbar.rows * self.weight_cols_per_block(wb) / self.crossbars_per_block(wb)
        return alloc.crossbars * weights_per_crossbar / (self.mvm_ns(ab) * 1e-9)

    def peak_tops(self, weight_bits: int | None = None, act_bits: int | None = None) -> float:
        """Peak tera-operations per second of one chip (2 ops per MAC)."""
        return 2 * self.peak_macs_per_s(weight_bits, act_bits) / 1e12

    def peak_gops_per_mm2(self, weight_bits: int | None = None, act_bits: int | None = None) -> float:
        """Peak computational density of one chip (GOP/s/mm^2), over the chip's table area."""
        return 2 * self.peak_macs_per_s(weight_bits, act_bits) / 1e9 / sum(self.chip_area_mm2().values())

    def peak_gops_per_w(self, weight_bits: int | None = None, act_bits: int | None = None) -> float:
        return 2 * self.peak_macs_per_s(weight_bits, act_bits) / 1e9 / (sum(self.chip_power_mw().values()) / 1e3)

    def component_table_text(self) -> str:
        """The per-IMA / per-tile / per-chip power and area tables and the peak figures, as text."""
        levels = [("IMA", self.full_ima()), ("tile", self.full_tile()), ("chip", self.full_chip())]
        lines = [f"{'component':<16}" + "".join(f"{n + ' mW':>14}{n + ' mm2':>14}" for n, _ in levels)]
        tables = [(self.power_mw_of(a), self.area_mm2_of(a)) for _, a in levels]
        for comp in COMPONENTS:
            if not any(comp in p or comp in a for p, a in tables):
                continue
            lines.append(f"{comp:<16}" + "".join(f"{p.get(comp, 0.0):>14.4g}{a.get(comp, 0.0):>14.4g}" for p, a in tables))
        lines.append(f"{'total':<16}" + "".join(f"{sum(p.values()):>14.5g}{sum(a.values()):>14.5g}" for p, a in tables))
        wb, ab = self.reference.weight_bits, self.reference.act_bits
        lines.append(f"peak at {wb}-bit weights / {ab}-bit inputs: {self.peak_tops():.4g} TOPS per chip, "
                     f"{self.peak_gops_per_mm2():.4g} GOP/s/mm2, {self.peak_gops_per_w():.4g} GOP/s/W; "
                     f"ADC {self.adc_bits} b (exact sums need {self.adc_bits_required + (1 if self.weight_flipping else 0)} b"
                     f"{', 1 saved by weight flipping' if self.weight_flipping else ''})")
        return "\n".join(lines)

    def summary(self) -> str:
        xb = self.crossbar
        return (f"crossbar '{self.name}': {xb.rows}x{xb.cols} x{xb.cell_bits}b cells, {self.ima.crossbars} xbars/IMA, "
                f"{self.tile.imas} IMAs/tile, {self.chip.tiles} tiles/chip, {self.dac.bits}b DAC, "
                f"{self.adc_bits}b ADC/{self.adc.columns_per_adc} cols, step {self.step_ns:g} ns, "
                f"{self.clock_mhz:g} MHz")
