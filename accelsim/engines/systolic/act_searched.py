"""Zero gating/skipping and compressed formats (the ``sparsity:`` block) on a *searched* mapping.

The searched mapping keeps the array's dataflow (:data:`.searched.DATAFLOW_GROUPS`: OS unrolls
output pixels on rows ``D1`` and output channels on columns ``D2``; WS the reduction on ``D1``
and channels on ``D2``; IS the reduction on ``D1`` and pixels on ``D2``), so the lock-step
rules of :mod:`.act_sparsity` carry over with the mapping's own tiles:

- **gate**: cycles unchanged; ``mac`` and ``pe_rf`` actions x the effectual fraction
  (:meth:`ActSparsity.finish`), as on the fold order.
- **skip**, per temporal step of the mapping (``T`` = its ideal temporal cycles):

  * WS (``inputs``/``intersection``): a step feeds one input vector: the ``C x R x S`` box
    unrolled on ``D1`` (``s1`` elements) of a pixel's window; it is skipped when that vector is
    all zero: ``T' = T x`` the mean over (pixel, box) of ``1 - P_empty(in-bounds elements)`` --
    independent of the loop order; a box at a tap in the zero padding is all zero (counted per
    window position, exactly: :meth:`ActSparsity.valid_boxes`). Zeros of the stationary weights
    are gated (noted).
  * IS (``weights``/``intersection``): the same with the weight vector. Zeros of the stationary
    inputs are gated (noted).
  * OS: every PE streams its own reduction; lanes sync whenever a non-reduction loop steps, so
    the *segment* is the innermost run of temporal reduction loops (``C``, ``R``, ``S``; size
    ``t_seg``); ``T' = (T / t_seg) E[max over lanes of the non-zeros of a t_seg tile]``; lanes:
    ``D1`` pixels (``inputs``), ``D2`` channels (``weights``), all PEs (``intersection``).
    With no reduction loop innermost (``t_seg = 1``) every step is a lock-step: no skip, gated
    (noted).

  Statistical path: hypergeometric occupancy (:class:`~accelsim.sparsity.Uniform`; the OS
  intersection jointly over the grid, whose rows share inputs and columns weights:
  :func:`~accelsim.sparsity.actions.grid_intersection_max`; with dense weights it is the
  ``inputs`` lanes), a conv's zero padding counted per window position for WS vectors and folded
  into the input density of OS lanes of a non-overlapping conv (in-bounds fraction, stated); OS
  ``inputs`` lanes, and ``intersection`` rows without a weight mask, of a
  conv with overlapping windows from seeded draws of the input mask
  (:meth:`ActSparsity.window_samples`: correlated lanes). Actual path: the real
  masks: WS/IS vectors are the ``D1`` boxes of the im2col view; OS segments consecutive
  ``t_seg`` pieces of the im2col order and lanes consecutive pixels/channels (the mapping's boxes
  of ``C x R x S`` and ``P x Q`` approximated by consecutive runs; same statistics for
  uncorrelated masks); OS intersection with real input masks and no weight mask: the real input
  lane counts of a lock-step group, the weights drawn
  (:func:`~accelsim.sparsity.actions.grid_rows_intersection_max`).
  The tile stream's compute cycles are scaled by ``T'/T`` (fill/drain included; per tile rounded
  down, the remainder to the rounded total in one compute-only tile at the end); the program's
  compute cycles are the scaled stream's sum.
- **level actions and formats**: SRAM read actions of ``ifmap_sram``/``filter_sram`` x the
  read scale x format ratio; DRAM bits per operand x the DRAM format ratio (the merged DRAM
  actions by the total-bits ratio: one port word for every operand); an output format at
  ``ofmap_sram``: the final outputs written and read once at the format's bits, partial sums
  uncompressed (:func:`output_format_accesses`).
"""
from __future__ import annotations

from math import prod

import numpy as np

from ...hardware.systolic import SystolicArray
from ...mapping.ir import Mapping
from ...sparsity import Uniform
from ...sparsity.actions import grid_intersection_max, grid_rows_intersection_max, lockstep_steps
from ...stats import Action, LayerProgram, Node, Tile
from ...workload.layer import Gemm, LayerBase
from ...workload.workload import Workload
from .act_sparsity import ActSparsity, _block_max, _block_sum, _tile_pixels, map_tiles, scale_dram_bits
from .searched import searched_program

REDUCTION_DIMS = ("C", "R", "S")


def os_segment(mapping: Mapping) -> int:
    """Elements of the innermost run of temporal reduction loops (1: none innermost)."""
    seg = 1
    for lp in mapping.temporal:
        if lp.size == 1:
            continue
        if lp.dim not in REDUCTION_DIMS:
            break
        seg *= lp.size
    return seg


def _chunks(x: np.ndarray, size: int) -> np.ndarray:
    """Non-zeros of consecutive ``size``-element chunks of the last axis (last chunk partial)."""
    return _block_sum(x.astype(np.int64), size, x.ndim - 1)


def _lane_groups(counts: np.ndarray, lanes: int) -> np.ndarray:
    """(groups, lanes): per-pixel counts (m, conv groups, segments) cut into lock-step groups of
    ``lanes`` consecutive pixels per conv group and segment (the last group zero-padded)."""
    m = counts.shape[0]
    x = np.pad(counts, ((0, -m % lanes), (0, 0), (0, 0)))
    return x.reshape(-1, lanes, *counts.shape[1:]).transpose(0, 2, 3, 1).reshape(-1, lanes)


def d1_box(mapping: Mapping, g: Gemm) -> tuple[int, int, int]:
    """The input vector of one WS/IS temporal step: the ``(C, R, S)`` box unrolled on ``D1``
    (a linear layer's reduction is ``C``)."""
    size = {d: prod(lp.size for lp in mapping.spatial_on("D1") if lp.dim == d) for d in REDUCTION_DIMS}
    return size["C"], (size["R"] if g.conv is not None else 1), (size["S"] if g.conv is not None else 1)


def box_nonzero_fraction(x: np.ndarray, g: Gemm, box: tuple[int, int, int]) -> float:
    """Fraction of the ``box``es of ``x``'s reduction (last axis, im2col order: channel, kernel row,
    kernel column) holding a non-zero: the vectors a WS/IS step cannot skip (real masks)."""
    kh, kw = (g.conv.kernel_h, g.conv.kernel_w) if g.conv is not None else (1, 1)
    y = x.reshape(*x.shape[:-1], -1, kh, kw).astype(np.int32)
    for axis, size in zip((-3, -2, -1), box):
        y = _block_sum(y, size, y.ndim + axis)
    return float((y > 0).mean())


def nonempty_fraction(act: ActSparsity, g: Gemm, box: tuple[int, int, int]) -> float:
    """Expected fraction of the input vectors (``box``es of a row's reduction) holding a non-zero:
    hypergeometric at the input density over each vector's in-bounds elements, a conv's padding
    counted exactly per window position (:meth:`ActSparsity.valid_boxes`)."""
    vals, cnt = act.valid_boxes(g, box)
    model = Uniform(max(act.d_i, 1e-6), max(g.a_unique, int(vals.max()), 1))
    p = np.array([1.0 - model.prob_empty(int(v)) if v > 0 else 0.0 for v in vals])
    return float((p * cnt).sum() / cnt.sum())


def skip_temporal_cycles(act: ActSparsity, mapping: Mapping) -> float | None:
    """``T'`` of the module docstring (None: the compute action skips nothing on this mapping)."""
    c, hw = act.compute, act.hw
    if c.action != "skip":
        return None
    g = act.layer.gemms()[0]
    if not g.b_is_weight:
        return None
    T = float(mapping.temporal_cycles)
    s1 = prod(lp.size for lp in mapping.spatial_on("D1"))
    s2 = prod(lp.size for lp in mapping.spatial_on("D2"))
    acts = act.act_cols
    wv = act.w_views[0] if act.w_views is not None else None
    vf = act._valid_fraction(g)
    d_in = max(act.d_i * vf, 1e-6)
    if hw.dataflow in ("ws", "is"):
        stationary = "weights" if hw.dataflow == "ws" else "inputs"
        if c.on_zeros == stationary:
            act._note(f"{hw.dataflow}: {stationary} are stationary, their zeros are gated, not skipped")
            return None
        if c.on_zeros == "intersection":
            act._note(f"{hw.dataflow}: all-zero {'input' if stationary == 'weights' else 'weight'} vectors "
                      f"skipped; zeros of the stationary {stationary} gated")
        box = d1_box(mapping, g)
        if prod(box) != s1:
            raise ValueError(f"{hw.dataflow} mapping unrolls a non-reduction dimension on D1: {mapping}")
        if hw.dataflow == "ws":
            acts = acts if acts is not None else act.window_samples(channels_only=True)
            if acts is not None:
                return T * float(np.mean([box_nonzero_fraction(x, g, box) for x in acts]))
            return T * nonempty_fraction(act, g, box)
        if wv is not None:
            return T * box_nonzero_fraction(wv, g, box)
        return T * (1.0 - act._weight_model(max(g.b_unique, s1)).prob_empty(s1))
    seg = os_segment(mapping)
    if seg == 1:
        act._note("os: no reduction loop innermost on this mapping, every step is a lock-step: zeros gated, not skipped")
        return None
    on = c.on_zeros
    if on == "intersection" and wv is None and act.d_w >= 1.0:
        on = "inputs"  # dense weights: a PE's intersection is its input lane's non-zeros
    if on == "inputs":
        acts = acts if acts is not None else act.window_samples()
        if acts is not None:
            per = [_block_max(_chunks(_tile_pixels(x, g.m), seg), s1, 0).mean() for x in acts]
            return T / seg * float(np.mean(per))
        return T / seg * lockstep_steps(Uniform(d_in, max(g.a_unique, seg)), seg, s1)
    if on == "weights":
        if wv is not None:
            return T / seg * float(_block_max(_chunks(wv, seg), s2, 1).mean())
        return T / seg * lockstep_steps(act._weight_model(g.b_unique), seg, s2)
    if acts is not None and wv is not None:
        per = []
        for x in acts:
            xg = _tile_pixels(x, g.m)
            pad = -xg.shape[-1] % seg
            xc = np.pad(xg, ((0, 0), (0, 0), (0, pad))).reshape(xg.shape[0], xg.shape[1], -1, seg).astype(np.float32)
            wc = np.pad(wv, ((0, 0), (0, 0), (0, pad))).reshape(wv.shape[0], wv.shape[1], -1, seg).astype(np.float32)
            cnt = np.einsum("mgck,gnck->gcmn", xc, wc)
            per.append(_block_max(_block_max(cnt, s1, 2), s2, 3).mean())
        return T / seg * float(np.mean(per))
    acts = acts if (acts is not None or wv is not None) else act.window_samples()
    if acts is not None:  # real (or drawn: padding, overlapping windows) input lanes, weights from their model
        wm = act._weight_model(max(g.b_unique, seg))
        per = [grid_rows_intersection_max(_lane_groups(_chunks(_tile_pixels(x, g.m), seg), s1), wm, seg, s2)
               for x in acts]
        return T / seg * float(np.mean(per))
    return T / seg * grid_intersection_max(Uniform(d_in, max(g.a_unique, seg)), act._weight_model(g.b_unique),
                                           seg, s1, s2)


def _scale_compute(nodes: tuple[Node, ...], ratio: float) -> tuple[Node, ...]:
    return map_tiles(nodes, lambda n: Tile(n.load_bits, int(n.compute_cycles * ratio + 1e-9), n.store_bits,
                                           n.decode_cycles))


def _compute_sum(nodes: tuple[Node, ...]) -> int:
    return sum(n.compute_cycles if isinstance(n, Tile) else n.count * _compute_sum(n.body) for n in nodes)


def _scaled(a: Action, factor: float) -> Action:
    return Action(a.component, a.action, int(round(a.count * factor)), a.bits, a.act_bits, a.scheme)


def output_format_accesses(actions: list[Action], sram: dict[str, int], outputs: int, out_bits: int,
                           ratio: float) -> list[Action]:
    """An output format at ``ofmap_sram``: the final outputs are written once and read once (to
    DRAM or the next level) at the format's bits (``ratio`` x dense); partial sums move
    uncompressed. Of the widest-port ``ofmap_sram`` read and write actions, the final outputs'
    ``outputs x out_bits / port bits`` words become ``ratio`` x as many (``sram`` accesses
    likewise, in place)."""
    if ratio == 1.0:
        return actions
    out = list(actions)
    for kind in ("read", "write"):
        idx = [i for i, a in enumerate(out) if a.component == "ofmap_sram" and a.action == kind]
        if not idx:
            continue
        i = max(idx, key=lambda j: out[j].bits)
        a = out[i]
        final = min(outputs * out_bits / a.bits, a.count)
        delta = int(round(final * (ratio - 1.0)))
        out[i] = Action(a.component, a.action, a.count + delta, a.bits, a.act_bits, a.scheme)
        key = f"ofmap_sram_{kind}s"
        if key in sram:
            sram[key] = max(sram[key] + delta, 0)
    return [a for a in out if a.count]


def apply_to_searched(act: ActSparsity, prog: LayerProgram, mapping: Mapping, act_bits: int, weight_bits: int) -> None:
    """Apply the ``sparsity:`` block to a searched layer program in place (module docstring)."""
    t_skip = skip_temporal_cycles(act, mapping)
    if t_skip is not None and mapping.temporal_cycles:
        ratio = t_skip / mapping.temporal_cycles
        target = int(round(_compute_sum(prog.body) * ratio))
        body = _scale_compute(prog.body, ratio)  # per tile rounded down, the remainder in a last tile
        rest = target - _compute_sum(body)
        prog.body = body + ((Tile(0, rest, 0),) if rest > 0 else ())
        prog.compute_cycles = _compute_sum(prog.body)
    act._dense_read_bits = prog.dram_read_total_bits
    act._dense_write_bits = prog.dram_write_total_bits
    s = act.scales(act_bits, weight_bits)
    outs = sum(g.c_unique * g.count for g in act.layer.gemms())
    read_scale = {"ifmap_sram": s["ifmap_sram_reads"], "filter_sram": s["filter_sram_reads"]}
    scale_dram_bits(prog.dram_read_bits, prog.dram_write_bits, s, act_bits, weight_bits)
    rd = prog.dram_read_total_bits / act._dense_read_bits if act._dense_read_bits else 1.0
    wr = prog.dram_write_total_bits / act._dense_write_bits if act._dense_write_bits else 1.0
    acts = []
    for a in prog.actions:
        if a.component == "mac":
            a = act.mac_action(a)
        elif a.component in read_scale and a.action == "read":
            a = _scaled(a, read_scale[a.component])
        elif a.component == "dram":
            a = _scaled(a, rd if a.action == "read" else wr)
        acts.append(a)
    prog.actions = output_format_accesses(acts, prog.sram_accesses, outs, act_bits, s["ofmap_sram_outputs"])
    for lvl, val in read_scale.items():
        if f"{lvl}_reads" in prog.sram_accesses:
            prog.sram_accesses[f"{lvl}_reads"] = int(round(prog.sram_accesses[f"{lvl}_reads"] * val))
    prog.compulsory_read_bits = int(round(act.compulsory_bits(act_bits, weight_bits, s)))
    act.finish(prog)


def searched_sparse_program(layer: LayerBase, hw: SystolicArray, workload: Workload | None, mac: Action,
                            dense_macs: int) -> LayerProgram:
    """The layer on its searched mapping with the config's ``sparsity:`` block applied."""
    prog, res = searched_program(layer, hw, mac, dense_macs)
    act = ActSparsity.for_layer(layer, hw, workload)
    if act is not None:
        q = layer.compression.quant
        apply_to_searched(act, prog, res.mapping, q.act_bits, q.weight_bits)
    return prog


__all__ = ["apply_to_searched", "os_segment", "output_format_accesses", "searched_sparse_program",
           "skip_temporal_cycles"]
