"""Activation (and weight) zero gating, zero skipping and compressed formats on the systolic
array: the ``sparsity:`` block of :class:`~accelsim.hardware.systolic.SystolicArray`
(vocabulary: :mod:`accelsim.hardware.sparsity`, :mod:`accelsim.sparsity.actions`).

Densities: inputs ``d_i`` (``compression.act_density``, or the real mask ``compression.act_mask``
when the workload has one), weights ``d_w`` (``compression.sparsity``, or its mask). A MAC is
effectual when both operands are non-zero.

**Compute ``gate``** (Eyeriss): every MAC keeps its cycle; MACs whose gated operand (``on``) is
zero, and their PE-register accesses, cost no energy: the ``mac`` and ``pe_rf`` action counts
are multiplied by the effectual fraction (``d_i``, ``d_w`` or, for the intersection, the
fraction of (m, n, k) with both non-zero -- ``d_w d_i`` in expectation, counted exactly from the
masks when both exist). A conv's zero padding counts as zero inputs: without a mask the input
density of the im2col view is ``d_i`` x the in-bounds fraction of the windows. Cycles are unchanged.

**Compute ``skip``** (Cnvlutin/SCNN-like): ineffectual MACs are not issued; the streaming
dimension ``T`` of a fold shrinks to the work of the busiest lane among those moving in
lock-step (fold cycles ``T' + R + C - 2`` OS, ``2R + C + T' - 2`` WS/IS):

- OS (``T = k``, every PE streams its own reduction): ``inputs`` -- the lanes are the fold's
  rows (one output pixel each; PEs of a row index their weights by the input's coordinate),
  ``T'`` = max over the rows of the non-zeros of the pixel's input window; ``weights`` -- lanes
  are the columns (output channels); ``intersection`` -- lanes are the fold's PEs, each with the
  intersection count of its pixel's window and its channel's weights.
- WS (``T = m`` pixels stream through stationary weights): ``inputs``/``intersection`` -- a
  pixel's input vector is skipped when it is all zero over the fold's ``k``-range (partial sums
  of a column are accumulated in lock-step, so single zeros cannot be skipped); zeros of the
  stationary weights are gated, not skipped.
- IS (``T = n`` output channels stream through stationary inputs): ``weights``/``intersection``
  -- a channel is skipped when its weights are all zero over the fold's ``k``-range; zeros of
  the stationary inputs are gated, not skipped.

Statistical path: ``uniform`` (hypergeometric) occupancy of the tile (each OS lane's in-bounds
window -- a conv's zero padding is zeros too, so border pixels hold fewer candidates -- and the
fold's ``k``-range for an all-zero vector, with the padding folded into the density), E[max]
over independent lanes ``sum_j 1 - prod_lanes F_lane(j)``
(:func:`accelsim.sparsity.actions.lockstep_steps`) -- except OS ``inputs`` lanes of a conv whose
windows overlap, whose counts are correlated (a zero sits in up to ``R x S`` windows): E[max] over
seeded draws of input masks from the uniform model (:meth:`ActSparsity.window_samples`); the intersection by its compound occupancy
(:class:`accelsim.sparsity.actions.Intersection`);
N:M weights use the structured model. Actual path: counts from the real masks (im2col of the
activation mask, the weight mask's GEMM view), averaged over the mask's inputs and a conv's
groups. Every fold of a column takes the rounded mean steps of that row fold (tiles stay
periodic; compute cycles exact to rounding). Skipped MACs are also gated (the ``mac``/``pe_rf``
counts drop by the effectual fraction as for ``gate``), and the skipped operands' zeros are not
read from their SRAM (reads x density).

**Level actions**: ``gate``/``skip`` on a buffer (``ifmap_sram``/``filter_sram``) drops the
reads of its operand whose ``on_zeros`` operand is zero (reads x the density of ``on_zeros``;
Eyeriss: a filter read is skipped when the input activation is zero). Cycles are unchanged (the compute level decides them).

**Formats**: a level's ``format.<operand>`` re-prices that operand's traffic at the level by the
ratio ``E[bits of a fiber in the format] / dense bits`` (payload + metadata,
:func:`accelsim.sparsity.expected_format_bits`; fiber = the input channels of a pixel for conv
inputs -- channel-last, as SCNN/Cnvlutin compress -- the features of a row for linear inputs,
the reduction of an output channel for weights, the output channels of a pixel for outputs).
``dram``: DRAM reads/writes and the fills/drains of the buffers (what arrives is stored);
``ifmap_sram``/``filter_sram``/``ofmap_sram``: the buffer's reads. Output density is the input
density of the next layer of the workload when that is a MAC layer (a chain: stated assumption);
otherwise it is unknown and the outputs are moved uncompressed (noted). The
tiling is the dense one (buffers are sized for the dense worst case, because the density varies
from input to input); the compressed footprint is reported in ``extra``. DRAM transfer time:
each tile's loads/stores are scaled by the layer's overall ratio (totals exact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from ...hardware.systolic import SystolicArray
from ...sparsity import Uniform, density_model, expected_format_bits
from ...sparsity.actions import intersection_model, lockstep_steps, target_density, weight_density
from ...stats import Action, LayerProgram, Node, Repeat, Tile
from ...workload.layer import Conv2d, Gemm, LayerBase, Linear
from ...workload.masks import gemm_weight_views, layer_act_mask, layer_mask
from ...workload.workload import Workload
from .folds import FoldOverrides, FoldPlan
from .program import LayerCounters


#: seeded input draws of :meth:`ActSparsity.window_samples` (at most), and the im2col elements they may total
WINDOW_TRIALS = 8
WINDOW_ELEMS = 8_000_000


def im2col_mask(mask_chw: np.ndarray, layer: Conv2d) -> np.ndarray:
    """(out_h*out_w, groups, cin*kh*kw) bool: each output pixel's input window (zero padding is
    zero), reduction ordered (channel, kernel row, kernel column) as the weights are."""
    c, _, _ = mask_chw.shape
    ph, pw, dh, dw_ = layer.pad_h, layer.pad_w, layer.dilation_h, layer.dilation_w
    x = np.pad(mask_chw, ((0, 0), (ph, ph), (pw, pw)))
    eh, ew = dh * (layer.kernel_h - 1) + 1, dw_ * (layer.kernel_w - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(1, 2))[:, ::layer.stride_h, ::layer.stride_w,
                                                                           ::dh, ::dw_]
    win = win[:, :layer.out_h, :layer.out_w]  # (C, OH, OW, kh, kw)
    cols = win.transpose(1, 2, 0, 3, 4).reshape(layer.out_h * layer.out_w, layer.groups, -1)
    return cols


def _spans(cv) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """In-bounds kernel taps of every output row and column of a conv: (out_h, kh), (out_w, kw) bool."""
    def span(out: int, kern: int, stride: int, pad: int, dil: int, size: int) -> np.ndarray:
        pos = np.arange(out)[:, None] * stride - pad + np.arange(kern)[None, :] * dil
        return (pos >= 0) & (pos < size)

    return (span(cv.out_h, cv.kernel_h, cv.stride_h, cv.pad_h, cv.dilation_h, cv.in_h),
            span(cv.out_w, cv.kernel_w, cv.stride_w, cv.pad_w, cv.dilation_w, cv.in_w))


def _extents(total: int, tile: int) -> np.ndarray:
    n = -(-total // tile)
    out = np.full(n, tile, dtype=np.int64)
    if total % tile:
        out[-1] = total % tile
    return out


def _block_max(values: np.ndarray, block: int, axis: int) -> np.ndarray:
    """Max over consecutive blocks of ``block`` along ``axis`` (last block partial)."""
    n = values.shape[axis]
    starts = np.arange(0, n, block)
    return np.maximum.reduceat(values, starts, axis=axis)


def _block_sum(values: np.ndarray, block: int, axis: int) -> np.ndarray:
    return np.add.reduceat(values, np.arange(0, values.shape[axis], block), axis=axis)


@dataclass
class ActSparsity:
    """The ``sparsity:`` block applied to one MAC layer (see module docstring)."""

    layer: LayerBase
    hw: SystolicArray
    d_i: float
    d_w: float
    d_out: float | None
    act_cols: list[np.ndarray] | None = None   # per input image: (m_img, groups, k) bool windows
    w_views: list[np.ndarray] | None = None    # per GEMM: (instances, n, k) bool
    effectual: float = 1.0                     # fraction of MACs the compute action keeps
    notes: list[str] = field(default_factory=list)
    _dense_read_bits: int = 0
    _dense_write_bits: int = 0
    _formats: dict[str, float] = field(default_factory=dict)
    _samples: list[np.ndarray] | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def for_layer(cls, layer: LayerBase, hw: SystolicArray, workload: Workload | None) -> "ActSparsity | None":
        if not hw.sparsity.any:
            return None
        comp = layer.compression
        act = layer_act_mask(workload, layer)
        wmask = layer_mask(workload, layer)
        cols = None
        d_i = comp.act_density
        if act is not None:
            if isinstance(layer, Conv2d):
                cols = [im2col_mask(img, layer) for img in act]
            else:
                cols = [img.reshape(-1, 1, img.shape[-1]) for img in act]  # (rows, 1 group, k)
            d_i = max(float(act.mean()), 1e-6)
        views = gemm_weight_views(layer, wmask) if wmask is not None else None
        d_w = weight_density(comp.sparsity.kind, comp.sparsity.effective_density) if wmask is None \
            else max(float(wmask.mean()), 1e-6)
        d_out = None  # the next layer's input density when it is a MAC layer (a chain), else unknown
        if workload is not None:
            names = [x.name for x in workload.layers]
            if layer.name in names:
                i = names.index(layer.name)
                if i + 1 < len(names) and workload.layers[i + 1].macs > 0:
                    d_out = workload.layers[i + 1].compression.act_density
        self = cls(layer, hw, d_i, d_w, d_out, cols, views)
        self.effectual = self._effectual_fraction()
        return self

    @property
    def compute(self):  # type: ignore[no-untyped-def]
        return self.hw.sparsity.compute

    def _effectual_fraction(self) -> float:
        """Fraction of MACs kept by the compute action (1 when it does nothing)."""
        c = self.compute
        if c.action == "none":
            return 1.0
        if c.on_zeros == "inputs" and self.act_cols is not None:
            return float(np.mean([x.mean() for x in self.act_cols]))
        if c.on_zeros == "intersection" and self.act_cols is not None and self.w_views is not None:
            w = self.w_views[0]  # (groups, n, k)
            fr = []
            for x in self.act_cols:  # sum_k (sum_m I[m,k]) (sum_n W[k,n]) / (m n k), per group
                xs = x.sum(axis=0, dtype=np.int64)          # (groups, k)
                ws = w.sum(axis=1, dtype=np.int64)          # (groups, k)
                fr.append(float((xs * ws).sum()) / (x.shape[0] * w.shape[1] * x.shape[2] * x.shape[1]))
            return float(np.mean(fr))
        if c.on_zeros == "intersection" and self.act_cols is not None:
            return float(np.mean([x.mean() for x in self.act_cols])) * self.d_w
        vf = self._valid_fraction(self.layer.gemms()[0]) if isinstance(self.layer, Conv2d) else 1.0
        return target_density(c.on_zeros, self.d_w, self.d_i * (1.0 if c.on_zeros == "weights" else vf))

    # -- skipping: per-fold cycles ----------------------------------------------------------------
    def channel_densities(self) -> np.ndarray | None:
        """The layer's measured per-input-channel densities when they differ (else None)."""
        ch = self.layer.compression.act_channel_density
        if ch is None or len(ch) < 2 or max(ch) - min(ch) < 1e-9:
            return None
        return np.asarray(ch, dtype=float)

    def window_samples(self, channels_only: bool = False) -> list[np.ndarray] | None:
        """Statistical input lanes drawn, not computed in closed form: im2col of
        ``WINDOW_TRIALS`` seeded input masks from the uniform model (exactly ``round(d C H W)``
        non-zeros at uniform positions; per channel ``round(d_c H W)`` when the front-end measured
        ``act_channel_density``). Used when the closed form would be wrong:

        - a conv whose windows overlap (OS input lanes; not with ``channels_only``): a zero shared
          by up to ``R x S`` windows makes the lanes' counts correlated, so E[max] over lock-step
          lanes is taken over draws (the independent-lane formula overestimates it: -2.7% at
          density 0.1 on a padded 3x3 conv);
        - per-channel densities that differ: a fold's or segment's reduction covers a channel
          range, so its occupancy depends on which channels it holds (WS: all-zero vectors per
          row fold; OS: lane counts are sums over channels of unequal density).

        None otherwise (linear, 1x1 or non-overlapping windows at one density: the hypergeometric
        formula is exact) or when a real mask is given."""
        lay, ch = self.layer, self.channel_densities()
        if self.act_cols is not None or not isinstance(lay, (Conv2d, Linear)):
            return None
        overlap = isinstance(lay, Conv2d) and lay.kernel_h * lay.kernel_w > 1 and not (
            lay.stride_h >= lay.kernel_h and lay.stride_w >= lay.kernel_w)
        if ch is None and (channels_only or not overlap):
            return None
        if self._samples is None:
            if isinstance(lay, Conv2d):
                c, plane = lay.in_channels, lay.in_h * lay.in_w
                per_trial = c * plane * lay.kernel_h * lay.kernel_w
            else:
                c, plane = lay.in_features, max(lay.gemms()[0].m, 1)
                per_trial = c * plane
            if ch is not None and ch.size != c:
                return None
            dens = ch if ch is not None else np.full(c, self.d_i)
            trials = int(min(WINDOW_TRIALS, max(1, WINDOW_ELEMS // max(per_trial, 1))))
            rng = np.random.default_rng(0)
            out = []
            for _ in range(trials):
                if ch is None:
                    flat = np.zeros(c * plane, dtype=bool)
                    flat[rng.choice(flat.size, int(round(self.d_i * flat.size)), replace=False)] = True
                    m = flat.reshape(c, plane)
                else:
                    keys = rng.random((c, plane))  # channel c: its round(d_c plane) smallest keys non-zero
                    n = np.rint(dens * plane).astype(int)
                    thr = np.sort(keys, axis=1)[np.arange(c), np.clip(n - 1, 0, plane - 1)]
                    m = (keys <= thr[:, None]) & (n > 0)[:, None]
                if isinstance(lay, Conv2d):
                    out.append(im2col_mask(m.reshape(c, lay.in_h, lay.in_w), lay))
                else:
                    out.append(m.T.reshape(plane, 1, c))
            self._samples = out
        return self._samples

    def _weight_model(self, size: int):  # type: ignore[no-untyped-def]
        sp = self.layer.compression.sparsity
        if sp.kind == "nm" and sp.n and sp.m:
            return density_model(size=size, n=sp.n, m=sp.m)
        return Uniform(self.d_w, size)

    def overrides(self, gi: int, g: Gemm, plan: FoldPlan) -> FoldOverrides | None:
        """Per-fold cycles under compute ``skip`` (None: the dense folds)."""
        c, hw = self.compute, self.hw
        if c.action != "skip" or not g.b_is_weight:
            return None
        df, R, C = hw.dataflow, hw.rows, hw.cols
        rows_r, cols_c = _extents(plan.sr, R), _extents(plan.sc, C)
        t = np.full((plan.row_folds, plan.col_folds), float(plan.t))
        acts = self.act_cols if (self.act_cols is not None and gi == 0) else None
        wv = self.w_views[gi] if self.w_views is not None else None
        k = g.k
        if df == "os":
            if c.on_zeros == "inputs":
                acts = acts if acts is not None else (self.window_samples() if gi == 0 else None)
                if acts is not None:
                    per_pix = [_tile_pixels(x.sum(axis=2), g.m) for x in acts]  # (m, groups)
                    steps = np.mean([_block_max(p, R, 0).mean(axis=1) for p in per_pix], axis=0)
                else:
                    model = Uniform(self.d_i, max(g.a_unique, k))
                    steps = self._fold_max(g, R, rows_r, model.occupancy_pmf, 1)
                t[:, :] = steps[:, None]
            elif c.on_zeros == "weights":
                if wv is not None:
                    steps = _block_max(wv.sum(axis=2), C, 1).mean(axis=0)  # (col_folds,)
                else:
                    model = self._weight_model(g.b_unique)
                    memo = {int(c_): lockstep_steps(model, k, int(c_)) for c_ in set(cols_c.tolist())}
                    steps = np.array([memo[int(c_)] for c_ in cols_c])
                t[:, :] = steps[None, :]
            else:
                if acts is not None and wv is not None:
                    acc = np.zeros((plan.row_folds, plan.col_folds))
                    for x in acts:
                        xg = _tile_pixels(x.astype(np.float32), g.m)                 # (m, groups, k)
                        cnt = np.einsum("mgk,gnk->gmn", xg, wv.astype(np.float32))   # (groups, m, n)
                        acc += _block_max(_block_max(cnt, R, 1), C, 2).mean(axis=0)
                    t = acc / len(acts)
                else:
                    im = Uniform(self.d_i, max(g.a_unique, k))
                    model = intersection_model(self._weight_model(g.b_unique), im, k)
                    per_c = {int(cc): self._fold_max(g, R, rows_r, model.occupancy_pmf, int(cc))
                             for cc in set(cols_c.tolist())}
                    t = np.stack([per_c[int(cc)] for cc in cols_c], axis=1)
        elif df == "ws":
            if c.on_zeros == "weights":
                self._note("ws: weights are stationary, their zeros are gated, not skipped")
                return None
            acts = acts if acts is not None else (self.window_samples(channels_only=True) if gi == 0 else None)
            if acts is not None:
                frac = []
                for x in acts:
                    nz = _block_sum(x.astype(np.int32), R, 2) > 0  # (m_img, groups, row_folds)
                    frac.append(nz.mean(axis=(0, 1)))
                steps = np.mean(frac, axis=0) * g.m
            else:  # padding zeros folded into the density (stated)
                model = Uniform(max(self.d_i * self._valid_fraction(g), 1e-6), max(g.a_unique, int(rows_r.max())))
                memo = {int(r): g.m * (1.0 - model.prob_empty(int(r))) for r in set(rows_r.tolist())}
                steps = np.array([memo[int(r)] for r in rows_r])
            t[:, :] = steps[:, None]
            if c.on_zeros == "intersection":
                self._note("ws: all-zero input vectors skipped; zeros of the stationary weights gated")
        else:  # is
            if c.on_zeros == "inputs":
                self._note("is: inputs are stationary, their zeros are gated, not skipped")
                return None
            if wv is not None:
                nz = _block_sum(wv.astype(np.int32), R, 2) > 0  # (inst, n, row_folds)
                steps = nz.mean(axis=0).sum(axis=0)
            else:
                model = self._weight_model(max(g.b_unique, int(rows_r.max())))
                memo = {int(r): g.n * (1.0 - model.prob_empty(int(r))) for r in set(rows_r.tolist())}
                steps = np.array([memo[int(r)] for r in rows_r])
            t[:, :] = steps[:, None]
            if c.on_zeros == "intersection":
                self._note("is: all-zero weight vectors skipped; zeros of the stationary inputs gated")
        ti = np.rint(t).astype(np.int64)
        per = ti + R + C - 2 if df == "os" else 2 * R + C + ti - 2
        return FoldOverrides(np.where(ti > 0, per, 0).astype(np.int64))

    def _valid(self, g: Gemm) -> np.ndarray:
        """In-bounds (not zero-padding) elements of each GEMM row's reduction: (m,)."""
        cv = g.conv
        if cv is None:
            return np.full(g.m, g.k, dtype=np.int64)
        vh, vw = _spans(cv)
        per_image = (vh.sum(axis=1)[:, None] * vw.sum(axis=1)[None, :]).ravel() * cv.channels
        return np.tile(per_image, cv.batch)[: g.m]

    def valid_boxes(self, g: Gemm, box: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """In-bounds elements of every input vector a mapping feeds: the reduction of a GEMM row
        (channels x kernel rows x kernel columns of a conv window) cut into boxes of
        ``box = (channels, kernel rows, kernel columns)``; returned as (distinct counts, how many
        (pixel, box) pairs of one image hold each). A conv's zero padding is counted per window
        position, exactly: a box at a tap outside the input is all padding."""
        c1, r1, s1 = box
        if g.conv is None:
            vals, cnt = np.unique(_extents(g.k, c1 * r1 * s1), return_counts=True)
            return vals, cnt * g.m
        vh, vw = _spans(g.conv)
        ch = _extents(g.conv.channels, c1)
        bh = _block_sum(vh.astype(np.int64), r1, 1)          # (out_h, kernel-row boxes)
        bw = _block_sum(vw.astype(np.int64), s1, 1)          # (out_w, kernel-column boxes)
        full = ch[None, None, :, None, None] * bh[:, None, None, :, None] * bw[None, :, None, None, :]
        return np.unique(full, return_counts=True)

    def _valid_fraction(self, g: Gemm) -> float:
        return float(self._valid(g).sum()) / (g.m * g.k) if g.conv is not None else 1.0

    def _fold_max(self, g: Gemm, R: int, rows_r: np.ndarray, pmf_of, mult: int) -> np.ndarray:  # type: ignore[no-untyped-def]
        """E[max over a row fold's lanes] of the non-zeros of each lane's in-bounds window (``mult``
        lanes per row), lanes independent: ``sum_j 1 - prod_lanes F_lane(j)``. Memoised by the
        fold's multiset of window sizes."""
        valid, k = self._valid(g), g.k
        cdfs: dict[int, np.ndarray] = {}
        memo: dict[tuple[tuple[int, int], ...], float] = {}
        out = np.zeros(len(rows_r))
        for r, n in enumerate(rows_r):
            vals, counts = np.unique(valid[r * R:r * R + int(n)], return_counts=True)
            key = tuple(zip(vals.tolist(), counts.tolist()))
            if key not in memo:
                log_f = np.zeros(k + 1)
                for t, c_ in key:
                    if t not in cdfs:
                        f = np.ones(k + 1)
                        f[: t + 1] = np.minimum(np.cumsum(pmf_of(t)), 1.0)
                        cdfs[t] = np.log(np.maximum(f, 1e-300))
                    log_f += c_ * mult * cdfs[t]
                memo[key] = float(np.sum(1.0 - np.exp(log_f[:-1])))
            out[r] = memo[key]
        return out

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- formats and level actions: counters -------------------------------------------------------
    def _ratio(self, level: str, operand: str, value_bits: int) -> float:
        lv = self.hw.sparsity.level(level)
        fmt = lv.format.of(operand)
        if fmt == "uncompressed":
            return 1.0
        lay = self.layer
        if operand == "inputs":
            fiber = lay.in_channels if isinstance(lay, Conv2d) else getattr(lay, "in_features", 64)
            d = self.d_i
        elif operand == "weights":
            fiber = lay.gemms()[0].k
            d = self.d_w
        else:
            if self.d_out is None:
                self._note(f"outputs written uncompressed at {level}: their density is unknown (no next MAC "
                           "layer records its input density)")
                return 1.0
            fiber = lay.out_channels if isinstance(lay, Conv2d) else getattr(lay, "out_features", 64)
            d = self.d_out
        ratio = _format_ratio(fmt, float(d), max(int(fiber), 1), int(value_bits), int(lv.format.run_bits))
        if ratio > 1.0 + 1e-9:
            runs = f", {lv.format.run_bits}-bit runs" if fmt == "run_length" else ""
            self._note(f"{level} {operand} in {fmt} cost {ratio:.3f}x their uncompressed bits at density {d:.2f} "
                       f"({value_bits}-bit values{runs}): the format makes this traffic larger")
        return ratio

    def _read_scale(self, level: str, operand: str) -> float:
        """Reads of ``operand`` at ``level`` kept by level actions and by compute skip."""
        lv = self.hw.sparsity.level(level)
        scale = 1.0
        if lv.action != "none":  # e.g. Eyeriss: the filter read is skipped when the input is zero
            scale = target_density(lv.on_zeros, self.d_w, self.d_i)
        if self.compute.action == "skip" and self.compute.acts_on(operand):
            scale = min(scale, self.d_i if operand == "inputs" else self.d_w)
        return scale

    def scales(self, act_bits: int, weight_bits: int) -> dict[str, float]:
        """Factors of level actions and formats: SRAM reads (``*_reads``), format ratios per level and
        operand; also recorded for the report (``extra['format_ratio_*']``)."""
        s = {"ifmap_sram_inputs": self._ratio("ifmap_sram", "inputs", act_bits),
             "filter_sram_weights": self._ratio("filter_sram", "weights", weight_bits),
             "ofmap_sram_outputs": self._ratio("ofmap_sram", "outputs", act_bits),
             "dram_inputs": self._ratio("dram", "inputs", act_bits),
             "dram_weights": self._ratio("dram", "weights", weight_bits),
             "dram_outputs": self._ratio("dram", "outputs", act_bits)}
        s["ifmap_sram_reads"] = s["ifmap_sram_inputs"] * self._read_scale("ifmap_sram", "inputs")
        s["filter_sram_reads"] = s["filter_sram_weights"] * self._read_scale("filter_sram", "weights")
        self._formats = {k: s[k] for k in ("dram_inputs", "dram_weights", "dram_outputs", "ifmap_sram_inputs",
                                           "filter_sram_weights", "ofmap_sram_outputs")}
        return s

    def compulsory_bits(self, act_bits: int, weight_bits: int, s: dict[str, float]) -> float:
        """Compulsory DRAM read bits in the DRAM formats."""
        gs = self.layer.gemms()
        return (sum(g.a_unique * act_bits * g.count for g in gs) * s["dram_inputs"]
                + sum(g.b_unique * weight_bits * g.b_distinct for g in gs) * s["dram_weights"])

    def adjust_counters(self, c: LayerCounters, act_bits: int, weight_bits: int) -> None:
        """Scale the layer's SRAM reads and DRAM traffic by level actions and formats."""
        self._dense_read_bits = sum(c.dram_read_bits.values())
        self._dense_write_bits = sum(c.dram_write_bits.values())
        s = self.scales(act_bits, weight_bits)
        c.sram["ifmap_reads"] = int(round(c.sram["ifmap_reads"] * s["ifmap_sram_reads"]))
        c.sram["filter_reads"] = int(round(c.sram["filter_reads"] * s["filter_sram_reads"]))
        r_o = s["ofmap_sram_outputs"]
        if r_o != 1.0:
            outs = sum(g.c_unique * g.count for g in self.layer.gemms())
            c.sram["ofmap_reads"] = int(round(c.sram["ofmap_reads"] - outs + outs * r_o))
        scale_dram_bits(c.dram_read_bits, c.dram_write_bits, s, act_bits, weight_bits)
        c.compulsory_read_bits = int(round(self.compulsory_bits(act_bits, weight_bits, s)))

    def mac_action(self, mac: Action) -> Action:
        """The MAC action with only the effectual (not gated/skipped) MACs counted."""
        return Action(mac.component, mac.action, int(round(mac.count * self.effectual)), mac.bits, mac.act_bits,
                      mac.scheme)

    # -- the program ---------------------------------------------------------------------------------
    def finish(self, prog: LayerProgram) -> None:
        """PE-register accesses gated with their MACs, tile traffic re-scaled, notes and extra."""
        if self.effectual < 1.0:
            prog.actions = [Action(a.component, a.action, int(round(a.count * self.effectual)), a.bits, a.act_bits,
                                   a.scheme) if a.component == "pe_rf" else a for a in prog.actions]
            prog.actions = [a for a in prog.actions if a.count]
        rd = prog.dram_read_total_bits / self._dense_read_bits if self._dense_read_bits else 1.0
        wr = prog.dram_write_total_bits / self._dense_write_bits if self._dense_write_bits else 1.0
        if abs(rd - 1.0) > 1e-12 or abs(wr - 1.0) > 1e-12:
            prog.body = _scale_traffic(prog.body, rd, wr)
        c = self.compute
        src = "actual masks" if (self.act_cols is not None or self.w_views is not None) else "density model"
        if c.action != "none":
            prog.notes.append(f"zero {'gating' if c.action == 'gate' else 'skipping'} on {c.on_zeros} "
                              f"(input density {self.d_i:.3f}, weight density {self.d_w:.3f}, {src}): "
                              f"{self.effectual:.3f} of MACs effectual")
        prog.notes.extend(self.notes)
        prog.extra.update({"act_density": self.d_i, "effectual_mac_fraction": self.effectual,
                           "effectual_macs": prog.macs * self.effectual})
        for key, val in getattr(self, "_formats", {}).items():
            if val != 1.0:
                prog.extra[f"format_ratio_{key}"] = val
        ab = self.layer.compression.quant.act_bits
        prog.extra["stored_input_bits"] = self.layer.input_words * ab * self._formats.get("ifmap_sram_inputs", 1.0)


def scale_dram_bits(read_bits: dict[str, int], write_bits: dict[str, int], s: dict[str, float], act_bits: int,
                    weight_bits: int) -> None:
    """DRAM bits per operand x the DRAM format ratios of ``s`` (:meth:`ActSparsity.scales`), in place,
    in whole words so the program's word counts (bits // width) are exact."""
    for bits, key, ratio, word in ((read_bits, "ifmap", s["dram_inputs"], act_bits),
                                   (read_bits, "filter", s["dram_weights"], weight_bits),
                                   (write_bits, "ofmap", s["dram_outputs"], act_bits)):
        bits[key] = int(round(bits.get(key, 0) * ratio / word)) * word


@lru_cache(maxsize=4096)
def _format_ratio(fmt: str, density: float, fiber: int, value_bits: int, run_bits: int) -> float:
    """E[bits of a ``fiber``-element fiber in ``fmt``] / its dense bits, non-zeros uniform at
    ``density`` (hypergeometric over a tensor of 64 fibers)."""
    cost = expected_format_bits(fmt, Uniform(density, fiber * 64), fiber, value_bits, run_bits=run_bits)
    return float(cost.total_bits / (fiber * value_bits))


def _tile_pixels(a: np.ndarray, m: int) -> np.ndarray:
    """Per-image pixel rows repeated to the GEMM's ``m`` rows (batch > 1: the same image statistics)."""
    if a.shape[0] == m:
        return a
    reps = -(-m // a.shape[0])
    return np.concatenate([a] * reps, axis=0)[:m]


def map_tiles(nodes: tuple[Node, ...], fn: Callable[[Tile], Tile]) -> tuple[Node, ...]:
    """``nodes`` with every tile replaced by ``fn(tile)`` (repeats kept)."""
    return tuple(fn(n) if isinstance(n, Tile) else Repeat(map_tiles(n.body, fn), n.count) for n in nodes)


def _scale_traffic(nodes: tuple[Node, ...], rd: float, wr: float) -> tuple[Node, ...]:
    # rounded up: the stream moves at least the counted traffic (totals within a bit per tile)
    return map_tiles(nodes, lambda n: Tile(math.ceil(n.load_bits * rd - 1e-9), n.compute_cycles,
                                           math.ceil(n.store_bits * wr - 1e-9), n.decode_cycles))


__all__ = ["ActSparsity", "im2col_mask", "map_tiles", "scale_dram_bits"]
