"""Configuration of a systolic array (TPU-style) with three double-buffered SRAMs."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..stats import Action
from .common import Dataflow, HardwareBase, ScaleSimPorts, SramConfig, _Config
from .registry import register_hardware
from .sparsity import sparsity_block

#: storage levels a systolic ``sparsity:`` block may name
SYSTOLIC_LEVELS = ("dram", "ifmap_sram", "filter_sram", "ofmap_sram")
SystolicSparsity = sparsity_block("systolic", SYSTOLIC_LEVELS)


class SystolicSparseOptions(_Config):
    """Sparsity support of a systolic array (all off: the dense array, SCALE-Sim-compatible).

    - ``zero_skipping``: weights stored compressed (values + ``index_bits`` relative indices);
      each output channel's non-zeros are packed along the reduction, so a column fold runs as
      long as its densest output channel (load imbalance). Applies to unstructured, pattern, GS,
      N:M and block layers.
    - ``nm_speedup``: a sparse-tensor-core-style datapath for ``nm_n:nm_m`` (default 2:4): the
      reduction is compressed by ``nm_m / nm_n`` for layers whose N:M pattern fits it, with
      ``log2(nm_m)`` metadata bits per kept weight.
    - ``block_skipping``: all-zero weight tiles of a fold (OS: reduction steps of a column fold;
      WS: whole folds; IS: streamed output channels of a row fold) are skipped; kept tiles are
      stored dense with one ``index_bits`` index each.
    - ``bit_serial``: PEs of ``word_bits`` bit-serial lanes: a fold's streaming dimension takes
      ``ceil(T * weight_bits / word_bits)`` steps (faster below ``word_bits``, slower above);
      a MAC costs ``weight_bits`` shift-adds at ``act_bits + weight_bits`` plus one accumulate.
    """

    zero_skipping: bool = False
    nm_speedup: bool = False
    nm_n: int = Field(2, gt=0)
    nm_m: int = Field(4, gt=0)
    block_skipping: bool = False
    bit_serial: bool = False
    index_bits: int = Field(4, ge=1, le=32)

    @model_validator(mode="after")
    def _check_nm(self) -> "SystolicSparseOptions":
        if self.nm_n > self.nm_m:
            raise ValueError(f"nm_n {self.nm_n} must not exceed nm_m {self.nm_m}")
        return self

    @property
    def any(self) -> bool:
        return self.zero_skipping or self.nm_speedup or self.block_skipping or self.bit_serial


@register_hardware("systolic", engine="accelsim.engines.systolic:SystolicEngine")
class SystolicArray(HardwareBase):
    """A ``rows`` x ``cols`` array of MAC PEs fed by ifmap/filter SRAMs, draining to an ofmap SRAM.

    ``dataflow``: ``os`` (output stationary), ``ws`` (weight stationary), ``is`` (input
    stationary); see :mod:`accelsim.engines.systolic` for how each maps a GEMM.
    ``word_bits``: width of one SRAM word and of the operands at 8-bit-equivalent precision;
    quantised layers scale traffic by their own bit widths.
    ``stall_model``:

    - ``double_buffer`` (default): accelsim's model — tiles are fetched over one shared DRAM
      channel (``dram.bw_gbps``) into double-buffered SRAM halves while the previous tile
      computes; outputs drain the same way.
    - ``none``: infinite DRAM bandwidth (SCALE-Sim's CALC mode): stall cycles are 0.
    - ``scalesim_user``: emulate SCALE-Sim 3.0.0's USER-mode memory model with independent
      per-operand DRAM ports (``scalesim_ports``), to reproduce its stall counts.

    ``sparse`` (:class:`SystolicSparseOptions`, all off by default) adds zero skipping, an N:M
    sparse-tensor-core mode, block skipping and bit-serial PEs.

    ``mapping``: how dense conv/linear/matmul layers are laid onto the array. ``search``
    (default for accelsim configs): each layer runs on the best loop-nest mapping the mapper
    (:mod:`accelsim.mapping.search`) finds on the array's implied memory hierarchy, for
    ``objective`` (``latency`` | ``energy`` | ``edp``); the spatial unrolling follows
    ``dataflow`` (os: output pixels x K, ws: C/R/S x K, is: C/R/S x output pixels), the temporal
    loop order and tiling are searched. ``scalesim``: SCALE-Sim's fixed fold order (default for
    SCALE-Sim ``.cfg`` files and ``stall_model: scalesim_user``). Sparse modes and vector layers
    keep their own lowering either way.
    ``sparsity`` (:mod:`accelsim.hardware.sparsity`, empty by default) gates or skips zero
    activations/weights and stores operands compressed per level
    (:mod:`accelsim.engines.systolic.act_sparsity`); it cannot be combined with ``sparse``.
    """

    kind: Literal["systolic"] = "systolic"
    rows: int = Field(gt=0, le=4096)
    cols: int = Field(gt=0, le=4096)
    dataflow: Dataflow = "os"
    word_bits: int = Field(8, ge=1, le=64)
    ifmap_sram: SramConfig
    filter_sram: SramConfig
    ofmap_sram: SramConfig
    stall_model: Literal["double_buffer", "none", "scalesim_user"] = "double_buffer"
    scalesim_ports: ScaleSimPorts | None = None
    sparse: SystolicSparseOptions = SystolicSparseOptions()
    mapping: Literal["search", "scalesim"] = "search"
    objective: Literal["latency", "energy", "edp"] = "latency"

    @model_validator(mode="before")
    @classmethod
    def _default_mapping(cls, data: object) -> object:
        """``stall_model: scalesim_user`` replays SCALE-Sim's fold order: its default mapping is
        ``scalesim`` (a ``sparsity:`` block runs on either mapping, default ``search``)."""
        if isinstance(data, dict) and "mapping" not in data and data.get("stall_model") == "scalesim_user":
            return {**data, "mapping": "scalesim"}
        return data
    sparsity: SystolicSparsity = SystolicSparsity()  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> "SystolicArray":
        if self.stall_model == "scalesim_user" and self.mapping == "search":
            raise ValueError("mapping 'search' cannot be combined with stall_model 'scalesim_user' "
                             "(the SCALE-Sim emulation replays the fold order); use mapping: scalesim")
        if self.stall_model == "scalesim_user" and self.scalesim_ports is None:
            raise ValueError("stall_model 'scalesim_user' needs scalesim_ports (words per cycle per operand)")
        if self.stall_model == "scalesim_user" and self.sparse.any:
            raise ValueError("sparse options cannot be combined with stall_model 'scalesim_user' (a dense SCALE-Sim emulation)")
        if self.sparsity.any and (self.sparse.any or self.stall_model == "scalesim_user"):
            raise ValueError("sparsity (gate/skip/formats) cannot be combined with the 'sparse' weight options "
                             "or stall_model 'scalesim_user'")
        for name in ("ifmap_sram", "filter_sram", "ofmap_sram"):
            sram: SramConfig = getattr(self, name)
            if sram.words(self.word_bits) < 2:
                raise ValueError(f"{name}.size_kb {sram.size_kb} holds fewer than two {self.word_bits}-bit words")
        return self

    @classmethod
    def prices_steer_tiling(cls, data: dict) -> bool:
        """Whether energy prices change this config's lowering: with ``mapping: search`` and an
        ``energy``/``edp`` objective the mapper weighs them, so they are part of the timing key
        (``dse.space.timing_view``); ``latency`` breaks ties by bits moved, not by prices
        (``engines.systolic.searched.tiebreak_hierarchy``)."""
        mapping = data.get("mapping") or ("scalesim" if data.get("stall_model") == "scalesim_user" else "search")
        return mapping == "search" and data.get("objective", "latency") != "latency"

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols

    def action_energy_pj(self, action: Action) -> float | None:
        """Bit-serial MACs (``sparse.bit_serial``); everything else is priced generically."""
        if action.component == "mac" and action.action == "bit_serial_mac":
            t = self.energy
            return t.tech_scale * (action.bits * t.add_pj_per_bit * (action.bits + action.act_bits)
                                   + t.add_pj_per_bit * t.accumulator_bits)
        return None

    def summary(self) -> str:
        how = f"searched mappings ({self.objective})" if self.mapping == "search" else "SCALE-Sim fold order"
        return (f"systolic {self.rows}x{self.cols} {self.dataflow.upper()} '{self.name}', {how}, {self.clock_mhz:g} MHz, "
                f"SRAM I/F/O {self.ifmap_sram.size_kb:g}/{self.filter_sram.size_kb:g}/{self.ofmap_sram.size_kb:g} KB, "
                f"DRAM {self.dram.bw_gbps:g} GB/s")
