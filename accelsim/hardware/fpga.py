"""FPGA accelerator: a DSP/LUT MAC array with BRAM/URAM tile buffers on a given device, under budgets.

The accelerator (``kind: fpga``) is an *overlay*: one array of ``pe_in x pe_out x pe_pix`` MAC
lanes (reduction x output-channel x output-pixel parallelism) that runs the layers one after
another, fed by three double-buffered on-chip buffers (``ifmap_sram``, ``filter_sram``,
``ofmap_sram``) and one DDR channel. :mod:`accelsim.engines.fpga` maps layers onto it;
:mod:`accelsim.dse.fpga.ilp` chooses its shape and buffers with an integer program.

**Resource model** (every count is an integer a designer can check by hand):

- *DSP48E2*. A DSP (27x18 multiplier, 48-bit accumulator) computes ``p`` MACs per cycle when the
  ``p`` MACs share one operand and the operands are narrow: ``p = 2`` for <= 8-bit operands
  (Xilinx WP486: two INT8 products that share one operand packed into the 27-bit pre-adder port;
  literature.md F, [V]); ``p = dsp_macs_low_bit`` (default 4) for <= 4-bit operands (assumption,
  after Xilinx WP521's INT4 packing, not verified); ``p = 1`` up to 18x27 bits; wider operands
  take ``ceil(max/27) * ceil(min/18)`` DSPs per MAC. The shared operand is the weight when lanes
  are paired along ``pe_pix`` (two pixels, one weight: WP486's case), or the activation when paired
  along ``pe_out`` (the product is symmetric in which operand is shared; not possible with
  ``group_packing`` because grouped lanes read different activations). ``p`` must divide the
  pairing dimension, else the next smaller power of two that does is used.
  ``DSP = ceil(lanes / p)`` (+ ``costs.dsp_base``). ``mac_impl: lut`` builds multipliers in LUTs
  instead (0 DSP).
- *LUT / FF*. Per DSP lane ``costs.lut_per_dsp_lane`` / ``ff_per_dsp_lane`` (operand routing,
  control; the reduction over ``pe_in`` runs on the DSP cascade) plus
  ``lut_per_packed_dsp`` per packed DSP (correction of the lower product's sign, WP486). A LUT
  lane costs ``lut_per_mult_bit2 * wb * ab`` LUTs for the multiplier plus ``accumulator_bits``
  LUTs for its adder (carry chain: one LUT per bit) and ``accumulator_bits + wb + ab`` FFs.
  ``group_packing`` adds a 2:1 select per input bit of every lane group
  (``lut_per_group_mux_bit * pe_in * pe_pix * pe_out * ab``). The vector unit (pooling, element-wise)
  costs ``lut/ff_per_vector_lane`` per lane; ``lut/ff/bram18_base`` cover DMA, AXI and control.
  All these defaults are assumptions of typical HLS results, not synthesis measurements.
- *BRAM / URAM*. A buffer must deliver one *port word* per cycle: ifmap ``pe_in * pe_pix``
  activations (``x pe_out`` with ``group_packing``), filter ``pe_in * pe_out`` weights, ofmap
  ``pe_out * pe_pix`` accumulators of ``accumulator_bits``. Its depth is
  ``ceil(size_bits / port_bits)``; a BRAM18 in simple-dual-port mode is 512x36, 1Kx18, 2Kx9,
  4Kx4, 8Kx2 or 16Kx1 and the buffer takes the cheapest ``ceil(port/w) * ceil(depth/d)``; a
  URAM288 is 4Kx72. ``size_kb`` is the whole buffer: each half holds one tile (double buffering).

**Fit** (:meth:`FpgaAccelerator.fits`): usage per resource against the budget (``budget`` limits,
``utilization_limit`` x the device, and the device itself, whichever is smallest); the binding
resource is the one with the highest usage/limit.

**Energy** (:meth:`action_energy_pj`, :meth:`leakage_power_mw`). Assumptions, derived from the
45 nm Horowitz figures of :mod:`accelsim.hardware.common` times the FPGA/ASIC dynamic-power gap
(Kuon & Rose 2007: ~14x for soft logic, ~7x with hard DSP/BRAM blocks; [M] not re-checked) times
~0.4 for 45 -> 16 nm: one DSP48E2 operation ``dsp_op_pj`` = 1.0 pJ (a packed DSP shares it among
its MACs); LUT multiplier 0.0175 pJ/bit^2, LUT adder 0.0175 pJ/bit; one BRAM18 port access
8 pJ, one URAM access 65 pJ; device static power (``device.static_power_mw``) from the preset.
DDR energy is ``dram.pj_per_bit`` (LPDDR4 8 pJ/bit, Accelergy's table [V]). Calibrate with
Xilinx Power Estimator for a real design.

**Ignored**: routing congestion and timing closure (the clock is taken as given),
LUTRAM buffers, BRAM cascading limits, clock-tree power, the processing system (PS),
partial-reconfiguration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..stats import Action
from .common import PRICING_ONLY, HardwareBase, _Config
from .registry import register_hardware
from .sparsity import sparsity_block

#: the FPGA array can only clock-gate its MAC lanes (no storage levels take sparsity settings)
FpgaSparsity = sparsity_block("fpga", ())

RESOURCES = ("dsp", "bram18", "uram", "lut", "ff")

#: BRAM18 simple-dual-port aspect ratios (width bits, depth words)
BRAM18_MODES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
URAM_WIDTH_BITS, URAM_DEPTH = 72, 4096


class FpgaDevice(_Config):
    """Resources of one FPGA part. ``static_power_mw`` is an assumption (set it from XPE)."""

    name: str = Field("custom", json_schema_extra=PRICING_ONLY)
    dsp: int = Field(ge=0)
    bram18: int = Field(ge=0, description="18 Kb block RAMs (one BRAM36 = two BRAM18)")
    lut: int = Field(ge=0)
    ff: int = Field(ge=0)
    uram: int = Field(0, ge=0, description="288 Kb UltraRAM blocks")
    static_power_mw: float = Field(0.0, ge=0)

    def limit(self, resource: str) -> int:
        return int(getattr(self, resource))


#: Device presets. Resources [V]: necst/faber_fpga src/model/boards.py (literature.md F).
#: static_power_mw: assumption (typical XPE PL static power), not measured.
DEVICES: dict[str, dict[str, Any]] = {
    "zu3eg": dict(name="zu3eg", dsp=360, bram18=432, lut=70_560, ff=141_120, uram=0, static_power_mw=250.0),
    "zu7ev": dict(name="zu7ev", dsp=1_728, bram18=624, lut=230_400, ff=460_800, uram=96, static_power_mw=600.0),
}
DEVICES["ultra96"] = DEVICES["zu3eg"]
DEVICES["zcu104"] = DEVICES["zu7ev"]


class ResourceBudget(_Config):
    """Absolute upper limits per resource (unset: the device's amount)."""

    dsp: int | None = Field(None, ge=0)
    bram18: int | None = Field(None, ge=0)
    uram: int | None = Field(None, ge=0)
    lut: int | None = Field(None, ge=0)
    ff: int | None = Field(None, ge=0)


class ResourceCosts(_Config):
    """Per-unit resource costs (assumptions of typical HLS designs; override per design)."""

    lut_per_dsp_lane: float = Field(8.0, ge=0)
    ff_per_dsp_lane: float = Field(16.0, ge=0)
    lut_per_packed_dsp: float = Field(10.0, ge=0)
    lut_per_mult_bit2: float = Field(1.0, ge=0, description="LUT multiplier: LUTs per weight bit x act bit")
    lut_per_group_mux_bit: float = Field(0.5, ge=0)
    lut_per_vector_lane: float = Field(40.0, ge=0)
    ff_per_vector_lane: float = Field(32.0, ge=0)
    lut_base: int = Field(6_000, ge=0, description="DMA, AXI interconnect, control")
    ff_base: int = Field(8_000, ge=0)
    bram18_base: int = Field(4, ge=0)
    dsp_base: int = Field(0, ge=0)
    dsp_macs_low_bit: int = Field(4, ge=1, le=8, description="MACs per DSP for <= 4-bit operands (assumption)")
    lut_per_stage: int = Field(500, ge=0, description="pipeline (dataflow) designs: control per layer stage")
    ff_per_stage: int = Field(800, ge=0)


class FpgaEnergy(_Config):
    """Dynamic energy per event on the FPGA (pJ); see the module docstring for the derivation."""

    dsp_op_pj: float = Field(1.0, ge=0, json_schema_extra=PRICING_ONLY)
    lut_mult_pj_per_bit2: float = Field(0.0175, ge=0, json_schema_extra=PRICING_ONLY)
    lut_add_pj_per_bit: float = Field(0.0175, ge=0, json_schema_extra=PRICING_ONLY)
    bram18_access_pj: float = Field(8.0, ge=0, json_schema_extra=PRICING_ONLY)
    uram_access_pj: float = Field(65.0, ge=0, json_schema_extra=PRICING_ONLY)


class FpgaBuffer(_Config):
    """A double-buffered on-chip buffer (``size_kb`` = both halves) in BRAM18 or URAM."""

    size_kb: float = Field(gt=0)
    memory: Literal["bram", "uram"] = "bram"

    @property
    def size_bits(self) -> int:
        return int(self.size_kb * 1024 * 8)

    @property
    def half_bits(self) -> int:
        return self.size_bits // 2


# --- resource arithmetic (shared by the config, the engine and the integer program) ------------

@dataclass(frozen=True)
class Resources:
    """A bundle of FPGA resources."""

    dsp: int = 0
    bram18: int = 0
    uram: int = 0
    lut: int = 0
    ff: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, r) + getattr(other, r) for r in RESOURCES))

    def as_dict(self) -> dict[str, int]:
        return {r: getattr(self, r) for r in RESOURCES}


def bram18_blocks(port_bits: int, depth: int) -> tuple[int, int]:
    """(BRAM18 count, BRAM18s read per port access) of a ``port_bits`` x ``depth`` memory."""
    best = None
    for w, d in BRAM18_MODES:
        n = math.ceil(port_bits / w) * math.ceil(depth / d)
        if best is None or n < best[0]:
            best = (n, math.ceil(port_bits / w))
    assert best is not None
    return best


def uram_blocks(port_bits: int, depth: int) -> tuple[int, int]:
    """(URAM count, URAMs read per port access) of a ``port_bits`` x ``depth`` memory."""
    per = math.ceil(port_bits / URAM_WIDTH_BITS)
    return per * math.ceil(depth / URAM_DEPTH), per


def buffer_resources(port_bits: int, size_bits: int, memory: str) -> Resources:
    """Blocks a buffer of ``size_bits`` with a ``port_bits``-wide port takes."""
    depth = max(math.ceil(size_bits / port_bits), 1)
    if memory == "uram":
        return Resources(uram=uram_blocks(port_bits, depth)[0])
    return Resources(bram18=bram18_blocks(port_bits, depth)[0])


def macs_per_dsp(weight_bits: int, act_bits: int, pe_out: int, pe_pix: int, group_packing: bool,
                 dsp_packing: bool, low_bit_macs: int) -> float:
    """MACs one DSP48E2 performs per cycle (< 1 when a MAC needs several DSPs); see module doc."""
    hi, lo = max(weight_bits, act_bits), min(weight_bits, act_bits)
    if hi > 27 or lo > 18:
        return 1.0 / (math.ceil(hi / 27) * math.ceil(lo / 18))
    if not dsp_packing or hi > 8:
        return 1.0
    want = low_bit_macs if hi <= 4 else 2
    pair_dim = pe_pix if pe_pix % 2 == 0 else (pe_out if not group_packing else 1)
    p = 1
    while p * 2 <= want and pair_dim % (p * 2) == 0:
        p *= 2
    if want < p * 2 and want > p and pair_dim % want == 0:  # non-power-of-two packing degree
        p = want
    return float(p)


@dataclass(frozen=True)
class ArrayShape:
    """The parts of an FPGA accelerator the integer program chooses (besides the buffers)."""

    pe_in: int
    pe_out: int
    pe_pix: int = 1
    mac_impl: str = "dsp"
    group_packing: bool = False

    @property
    def lanes(self) -> int:
        return self.pe_in * self.pe_out * self.pe_pix


def port_bits(shape: ArrayShape, weight_bits: int, act_bits: int, accumulator_bits: int) -> dict[str, int]:
    """Width of the word each buffer delivers per cycle."""
    ifmap_lanes = shape.pe_in * shape.pe_pix * (shape.pe_out if shape.group_packing else 1)
    return {
        "ifmap_sram": ifmap_lanes * act_bits,
        "filter_sram": shape.pe_in * shape.pe_out * weight_bits,
        "ofmap_sram": shape.pe_out * shape.pe_pix * accumulator_bits,
    }


def array_resources(shape: ArrayShape, weight_bits: int, act_bits: int, accumulator_bits: int,
                    costs: ResourceCosts, dsp_packing: bool = True) -> tuple[Resources, float]:
    """(resources of the MAC array, MACs per DSP)."""
    lanes = shape.lanes
    wb, ab = weight_bits, act_bits
    if shape.mac_impl == "lut":
        lut = lanes * (costs.lut_per_mult_bit2 * wb * ab + accumulator_bits)
        ff = lanes * (accumulator_bits + wb + ab)
        p = 0.0
        dsp = 0
    else:
        p = macs_per_dsp(wb, ab, shape.pe_out, shape.pe_pix, shape.group_packing, dsp_packing, costs.dsp_macs_low_bit)
        dsp = math.ceil(lanes / p)
        packed = dsp if p > 1 else 0
        lut = lanes * costs.lut_per_dsp_lane + packed * costs.lut_per_packed_dsp
        ff = lanes * costs.ff_per_dsp_lane
    if shape.group_packing:
        lut += costs.lut_per_group_mux_bit * shape.pe_in * shape.pe_pix * shape.pe_out * ab
    return Resources(dsp=dsp, lut=math.ceil(lut), ff=math.ceil(ff)), p


def fixed_resources(vector_lanes: int, costs: ResourceCosts) -> dict[str, Resources]:
    """Vector unit and control/DMA (independent of the array shape and buffers)."""
    return {
        "vector": Resources(lut=math.ceil(vector_lanes * costs.lut_per_vector_lane),
                            ff=math.ceil(vector_lanes * costs.ff_per_vector_lane)),
        "control": Resources(dsp=costs.dsp_base, bram18=costs.bram18_base, lut=costs.lut_base, ff=costs.ff_base),
    }


@dataclass
class UtilizationTable:
    """Per-resource usage against the budget, with the usage of each component."""

    device: str
    used: dict[str, int]
    limit: dict[str, int]
    device_total: dict[str, int]
    by_component: dict[str, dict[str, int]] = field(default_factory=dict)

    def utilization(self, resource: str) -> float:
        lim = self.limit[resource]
        used = self.used[resource]
        if lim == 0:
            return 0.0 if used == 0 else math.inf
        return used / lim

    @property
    def fits(self) -> bool:
        return all(self.used[r] <= self.limit[r] for r in RESOURCES)

    @property
    def over(self) -> list[str]:
        """Resources whose usage exceeds the limit, worst first."""
        bad = [r for r in RESOURCES if self.used[r] > self.limit[r]]
        return sorted(bad, key=lambda r: -self.utilization(r))

    @property
    def binding(self) -> str:
        """The resource with the highest usage/limit (the one that limits the design)."""
        return max(RESOURCES, key=lambda r: (self.utilization(r), -RESOURCES.index(r)))

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"resource": r, "used": self.used[r], "limit": self.limit[r], "device": self.device_total[r],
             "utilization": self.utilization(r), "fits": self.used[r] <= self.limit[r],
             **{f"used_by_{c}": v.get(r, 0) for c, v in self.by_component.items()}}
            for r in RESOURCES
        ]

    def to_frame(self):  # type: ignore[no-untyped-def]
        import pandas as pd

        return pd.DataFrame(self.rows())

    def text(self) -> str:
        comps = list(self.by_component)
        head = f"{'resource':<8} {'used':>9} {'limit':>9} {'device':>9} {'util':>7}  " + " ".join(f"{c:>11}" for c in comps)
        lines = [head]
        for r in RESOURCES:
            u = self.utilization(r)
            util = "inf" if math.isinf(u) else f"{u:6.1%}"
            flag = "" if self.used[r] <= self.limit[r] else "  << over budget"
            lines.append(f"{r:<8} {self.used[r]:>9,} {self.limit[r]:>9,} {self.device_total[r]:>9,} {util:>7}  "
                         + " ".join(f"{self.by_component[c].get(r, 0):>11,}" for c in comps) + flag)
        if self.fits:
            lines.append(f"fits {self.device}: yes (binding resource: {self.binding} at {self.utilization(self.binding):.1%})")
        else:
            lines.append(f"fits {self.device}: NO -- over budget: " + ", ".join(
                f"{r} {self.used[r]:,} > {self.limit[r]:,}" for r in self.over))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "fits": self.fits, "binding": self.binding, "rows": self.rows()}


def effective_limits(device: FpgaDevice, budget: ResourceBudget, utilization_limit: float) -> dict[str, int]:
    """Smallest of the budget, ``utilization_limit`` x device and the device, per resource."""
    out = {}
    for r in RESOURCES:
        total = device.limit(r)
        lim = math.floor(total * utilization_limit + 1e-9)
        b = getattr(budget, r)
        if b is not None:
            lim = min(lim, b)
        out[r] = min(lim, total)
    return out


# --- the hardware config -------------------------------------------------------------------------

@register_hardware("fpga", engine="accelsim.engines.fpga:FpgaEngine")
class FpgaAccelerator(HardwareBase):
    """An FPGA overlay accelerator: ``pe_in x pe_out x pe_pix`` MAC lanes + BRAM/URAM tile buffers.

    See the module docstring for the resource and energy model and
    :mod:`accelsim.engines.fpga` for how layers are tiled onto it.
    ``device``: a preset name (``zu3eg``/``ultra96``, ``zu7ev``/``zcu104``) or a mapping of
    resources. ``weight_bits``/``act_bits``: the datapath widths the array is built for (layers
    with narrower operands run at these widths; wider ones are rejected).
    ``sparsity.compute``: ``gate`` clock-gates the MAC (DSP/LUT) of a lane whose operand (``on_zeros``)
    is zero (energy only; ``skip`` is rejected: the lanes run in lock-step with wide buffer reads).
    """

    kind: Literal["fpga"] = "fpga"
    device: FpgaDevice
    budget: ResourceBudget = ResourceBudget()
    utilization_limit: float = Field(1.0, gt=0, le=1.0, description="fraction of each device resource usable")
    pe_in: int = Field(gt=0, le=1024, description="reduction (input channel x kernel) lanes")
    pe_out: int = Field(gt=0, le=1024, description="output-channel lanes")
    pe_pix: int = Field(1, gt=0, le=64, description="output-pixel lanes (share the weight)")
    weight_bits: int = Field(8, ge=1, le=32)
    act_bits: int = Field(8, ge=1, le=32)
    accumulator_bits: int = Field(32, ge=8, le=64)
    mac_impl: Literal["dsp", "lut"] = "dsp"
    dsp_packing: bool = True
    group_packing: bool = Field(False, description="run several groups (depthwise channels) side by side on pe_out")
    ifmap_sram: FpgaBuffer
    filter_sram: FpgaBuffer
    ofmap_sram: FpgaBuffer
    vector_lanes: int = Field(16, gt=0, le=4096, description="lanes of the pooling/element-wise unit")
    tile_overhead_cycles: int | None = Field(None, ge=0, description="pipeline fill per tile (default 4 + log2(pe_in))")
    costs: ResourceCosts = ResourceCosts()
    fpga_energy: FpgaEnergy = FpgaEnergy()
    sparsity: FpgaSparsity = FpgaSparsity()  # type: ignore[valid-type]

    @field_validator("device", mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = value.lower()
            if key not in DEVICES:
                raise ValueError(f"unknown device {value!r}; presets: {', '.join(sorted(DEVICES))}, or give a mapping "
                                 "{name, dsp, bram18, lut, ff, uram}")
            return DEVICES[key]
        return value

    @model_validator(mode="after")
    def _check(self) -> "FpgaAccelerator":
        if self.sparsity.compute.action == "skip":
            raise ValueError("sparsity.compute.action 'skip' is not supported on the FPGA array (use 'gate')")
        for r in RESOURCES:
            b = getattr(self.budget, r)
            if b is not None and b > self.device.limit(r):
                raise ValueError(f"budget.{r} {b} exceeds the device's {self.device.limit(r)} ({self.device.name})")
        for name in ("ifmap_sram", "filter_sram", "ofmap_sram"):
            buf: FpgaBuffer = getattr(self, name)
            if buf.memory == "uram" and self.device.uram == 0:
                raise ValueError(f"{name}.memory is 'uram' but device {self.device.name} has no URAM")
            width = self.port_bits[name]
            if buf.size_bits < 2 * width:
                raise ValueError(f"{name}.size_kb {buf.size_kb:g} holds fewer than two {width}-bit port words "
                                 f"(needs >= {2 * width / 8192:g} KB for this array)")
        return self

    # --- shape ------------------------------------------------------------------------------
    @property
    def shape(self) -> ArrayShape:
        return ArrayShape(self.pe_in, self.pe_out, self.pe_pix, self.mac_impl, self.group_packing)

    @property
    def num_pes(self) -> int:
        return self.pe_in * self.pe_out * self.pe_pix

    @property
    def overhead_cycles(self) -> int:
        if self.tile_overhead_cycles is not None:
            return self.tile_overhead_cycles
        return 4 + math.ceil(math.log2(self.pe_in)) if self.pe_in > 1 else 4

    @property
    def port_bits(self) -> dict[str, int]:
        return port_bits(self.shape, self.weight_bits, self.act_bits, self.accumulator_bits)

    @property
    def macs_per_dsp(self) -> float:
        return array_resources(self.shape, self.weight_bits, self.act_bits, self.accumulator_bits, self.costs,
                               self.dsp_packing)[1]

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.num_pes

    # --- resources --------------------------------------------------------------------------
    def resources_by_component(self) -> dict[str, Resources]:
        arr, _ = array_resources(self.shape, self.weight_bits, self.act_bits, self.accumulator_bits, self.costs,
                                 self.dsp_packing)
        out = {"mac": arr}
        for name, width in self.port_bits.items():
            buf: FpgaBuffer = getattr(self, name)
            out[name] = buffer_resources(width, buf.size_bits, buf.memory)
        out.update(fixed_resources(self.vector_lanes, self.costs))
        return out

    def resources(self) -> Resources:
        total = Resources()
        for r in self.resources_by_component().values():
            total = total + r
        return total

    def limits(self) -> dict[str, int]:
        return effective_limits(self.device, self.budget, self.utilization_limit)

    def fits(self) -> UtilizationTable:
        """Per-resource utilisation table against the budget (``.fits``, ``.binding``, ``.text()``)."""
        comps = self.resources_by_component()
        return UtilizationTable(
            device=self.device.name, used=self.resources().as_dict(), limit=self.limits(),
            device_total={r: self.device.limit(r) for r in RESOURCES},
            by_component={k: v.as_dict() for k, v in comps.items()},
        )

    def buffer_access_blocks(self, name: str) -> int:
        """Memory blocks read in parallel for one port access of buffer ``name``."""
        buf: FpgaBuffer = getattr(self, name)
        width = self.port_bits[name]
        depth = max(math.ceil(buf.size_bits / width), 1)
        return (uram_blocks if buf.memory == "uram" else bram18_blocks)(width, depth)[1]

    # --- energy -----------------------------------------------------------------------------
    def action_energy_pj(self, action: Action) -> float | None:
        """FPGA energy per event; ``None`` for the generic ones (DRAM)."""
        e = self.fpga_energy
        comp, kind = action.component, action.action
        if kind == "mac":
            if self.mac_impl == "lut":
                return e.lut_mult_pj_per_bit2 * self.weight_bits * self.act_bits + e.lut_add_pj_per_bit * self.accumulator_bits
            p = self.macs_per_dsp
            return e.dsp_op_pj / p if p >= 1 else e.dsp_op_pj * round(1 / p)
        if comp in ("ifmap_sram", "filter_sram", "ofmap_sram") and kind in ("read", "write"):
            buf: FpgaBuffer = getattr(self, comp)
            per = e.uram_access_pj if buf.memory == "uram" else e.bram18_access_pj
            return per * self.buffer_access_blocks(comp)
        if comp == "vector":
            return e.lut_add_pj_per_bit * action.bits
        return None

    def leakage_power_mw(self) -> dict[str, float]:
        """Device static power (an assumption from the preset; override ``device.static_power_mw``)."""
        return {"static": self.device.static_power_mw} if self.device.static_power_mw else {}

    def summary(self) -> str:
        t = self.fits()
        util = ", ".join(f"{r.upper()} {t.used[r]:,}/{t.limit[r]:,}" for r in RESOURCES if t.limit[r] or t.used[r])
        return (f"fpga '{self.name}' on {self.device.name}: {self.pe_in}x{self.pe_out}x{self.pe_pix} "
                f"{self.mac_impl.upper()} lanes ({self.macs_per_dsp:g} MAC/DSP), {self.clock_mhz:g} MHz, "
                f"buffers I/F/O {self.ifmap_sram.size_kb:g}/{self.filter_sram.size_kb:g}/{self.ofmap_sram.size_kb:g} KB, "
                f"DDR {self.dram.bw_gbps:g} GB/s; {util}")
