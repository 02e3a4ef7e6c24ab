"""Time one LayerProgram on given hardware, with the hardware's stall model.

``hw.stall_model`` picks how DRAM shapes the timing:

- ``double_buffer`` (default): the SimPy pipeline of :mod:`.pipeline` (one shared DRAM channel,
  double-buffered halves), plus ``dram.latency_cycles`` once per layer as fill;
- ``none``: infinite DRAM bandwidth (SCALE-Sim's CALC mode): no stall, fill or drain;
- ``scalesim_user``: SCALE-Sim 3.0.0's USER-mode memory model, replayed by
  :mod:`.scalesim_user` from the program's :class:`~accelsim.stats.TopologyRow`.

In the last two the DRAM channel's busy time is still reported (traffic / bandwidth).
"""
from __future__ import annotations

from ..hardware.common import HardwareBase
from ..stats import LayerProgram, Timing, program_totals
from .pipeline import simulate_program


def _unstalled(prog: LayerProgram, hw: HardwareBase, stall: int, fill: int, source: str) -> Timing:
    _, load_bits, _, store_bits, decode = program_totals(prog.body)
    bw = hw.dram_bits_per_cycle()
    return Timing(
        compute_cycles=prog.compute_cycles, stall_cycles=stall, fill_cycles=fill, drain_cycles=0,
        dram_busy_cycles=int((load_bits + store_bits) / bw), decode_busy_cycles=decode, source=source,
        stall_input_cycles=stall,
    )


def _scalesim_user(prog: LayerProgram, hw: HardwareBase) -> Timing:
    from .scalesim_user import timing_of_row

    if prog.topology is None:  # the engine refuses such layers in supports(); this is an engine bug
        from ..errors import InternalError

        raise InternalError(f"layer {prog.layer!r}: stall model 'scalesim_user' needs the program's topology row")
    stall, fill, source = timing_of_row(prog.topology, hw)
    return _unstalled(prog, hw, stall, fill, source)


def simulate_layer_program(prog: LayerProgram, hw: HardwareBase, *, skip: bool = True) -> Timing:
    """Timing of ``prog`` on ``hw`` under ``hw.stall_model``."""
    model = hw.stall_model
    if model == "none":
        return _unstalled(prog, hw, 0, 0, "ideal bandwidth (stall_model: none)")
    if model == "scalesim_user":
        return _scalesim_user(prog, hw)
    timing = simulate_program(prog.body, hw.dram_bits_per_cycle(), skip=skip)
    if hw.dram.latency_cycles:
        timing.fill_cycles += hw.dram.latency_cycles
    return timing
