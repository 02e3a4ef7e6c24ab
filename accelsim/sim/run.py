"""Time one LayerProgram on given hardware, with the hardware's stall model.

``hw.stall_model`` picks how DRAM shapes the timing:

- ``double_buffer`` (default): the SimPy pipeline of :mod:`.pipeline` (one shared DRAM channel,
  double-buffered halves), plus ``dram.latency_cycles`` once per layer as fill;
- ``none``: infinite DRAM bandwidth (SCALE-Sim's CALC mode): no stall, fill or drain, so
  ``latency_cycles`` is SCALE-Sim's "Total Cycles"; for programs with a topology row (single-GEMM
  systolic layers) ``Timing.prefetch_cycles`` adds what its "Total Cycles (incl. prefetch)" counts
  on top (start-up fill at 10 words/cycle, final ofmap drain at ``cols`` words/cycle;
  :func:`accelsim.sim.scalesim_user.simulate_calc_mode`), reported as
  ``latency_incl_prefetch_cycles``;
- ``scalesim_user``: SCALE-Sim 3.0.0's USER-mode memory model, replayed by
  :mod:`.scalesim_user` from the program's :class:`~accelsim.stats.TopologyRow`.

A program whose engine timed it with its own model (``LayerProgram.timing``, e.g. the loop-nest
cost model of ``kind: loopnest``) keeps that timing: the engine has applied the stall model;
under ``double_buffer`` the pipeline's latency of its body is added to ``prog.extra`` as
``pipeline_latency_cycles``, a cross-check.

In the last two the DRAM channel's busy time is still reported (traffic / bandwidth). In
``scalesim_user`` the traffic is the emulation's own DRAM counts (SCALE-Sim's ``num_access`` of the
ifmap/filter read buffers and the ofmap write buffer, in words of ``hw.word_bits``), returned in
``Timing.measured_dram``; :func:`with_measured_dram` puts them into the program (DRAM actions,
``dram_read_bits``/``dram_write_bits``) so the report's DRAM bytes, DRAM energy and bottleneck
text all use them.
"""
from __future__ import annotations

import dataclasses

from ..hardware.common import HardwareBase
from ..stats import Action, LayerProgram, MeasuredDram, Timing, program_totals
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
    stall, fill, source, res = timing_of_row(prog.topology, hw)
    measured = MeasuredDram(read_words={"ifmap": res.dram_ifmap_reads, "filter": res.dram_filter_reads},
                            write_words={"ofmap": res.dram_ofmap_writes}, word_bits=int(getattr(hw, "word_bits", 8)))
    bits = sum(measured.read_bits.values()) + sum(measured.write_bits.values())
    return Timing(
        compute_cycles=prog.compute_cycles, stall_cycles=stall, fill_cycles=fill, drain_cycles=0,
        dram_busy_cycles=int(bits / hw.dram_bits_per_cycle()), decode_busy_cycles=program_totals(prog.body)[4],
        source=source, stall_input_cycles=stall, measured_dram=measured,
    )


def with_measured_dram(prog: LayerProgram, timing: Timing) -> LayerProgram:
    """``prog`` with the DRAM traffic the timing model counted (``timing.measured_dram``): DRAM
    actions, per-operand bits and a note; ``prog`` itself when there is none."""
    m = timing.measured_dram
    if m is None:
        return prog
    wb = m.word_bits
    actions = [a for a in prog.actions if a.component != "dram"]
    actions += [Action("dram", "read", n, wb) for n in m.read_words.values() if n]
    actions += [Action("dram", "write", n, wb) for n in m.write_words.values() if n]
    words = ", ".join(f"{k} {v:,}" for k, v in {**m.read_words, **m.write_words}.items())
    note = f"DRAM traffic counted by the {timing.source} ({wb}-bit words: {words})"
    return dataclasses.replace(prog, actions=actions, dram_read_bits=m.read_bits, dram_write_bits=m.write_bits,
                               notes=[*prog.notes, note])


def simulate_layer_program(prog: LayerProgram, hw: HardwareBase, *, skip: bool = True) -> Timing:
    """Timing of ``prog`` on ``hw`` under ``hw.stall_model`` (the engine's own ``prog.timing`` when it has one)."""
    model = hw.stall_model
    if prog.timing is not None:
        if model == "double_buffer" and prog.body:  # the pipeline's figure, as a cross-check
            cross = simulate_program(prog.body, hw.dram_bits_per_cycle(), skip=skip)
            prog.extra["pipeline_latency_cycles"] = float(cross.latency_cycles + hw.dram.latency_cycles)
        return dataclasses.replace(prog.timing)
    if model == "none":
        timing = _unstalled(prog, hw, 0, 0, "ideal bandwidth (stall_model: none)")
        if prog.topology is not None:
            from .scalesim_user import calc_prefetch_cycles_of_row

            timing.prefetch_cycles = calc_prefetch_cycles_of_row(prog.topology, hw)  # type: ignore[arg-type]
        return timing
    if model == "scalesim_user":
        return _scalesim_user(prog, hw)
    timing = simulate_program(prog.body, hw.dram_bits_per_cycle(), skip=skip)
    if hw.dram.latency_cycles:
        timing.fill_cycles += hw.dram.latency_cycles
    return timing
