"""Time one LayerProgram on given hardware (respecting external stall models)."""
from __future__ import annotations

from ..hardware.common import HardwareBase
from ..stats import LayerProgram, Timing, program_totals
from .pipeline import simulate_program


def simulate_layer_program(prog: LayerProgram, hw: HardwareBase, *, skip: bool = True) -> Timing:
    """Timing of ``prog``: the SimPy pipeline, or the engine's stall override when it has one."""
    if prog.stall_override is not None:
        o = prog.stall_override
        _, load_bits, _, store_bits, decode = program_totals(prog.body)
        bw = hw.dram_bits_per_cycle()
        return Timing(
            compute_cycles=prog.compute_cycles, stall_cycles=o.stall_cycles, fill_cycles=o.fill_cycles,
            drain_cycles=o.drain_cycles, dram_busy_cycles=int((load_bits + store_bits) / bw),
            decode_busy_cycles=decode, source=o.source, stall_input_cycles=o.stall_cycles,
        )
    timing = simulate_program(prog.body, hw.dram_bits_per_cycle(), skip=skip)
    latency = getattr(hw.dram, "latency_cycles", 0)
    if latency:
        timing.fill_cycles += latency
    return timing
