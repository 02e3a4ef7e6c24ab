"""Activation side of a GEMM for the engines that gate or skip zero input activations.

An engine sees the input activations of a weight GEMM as its *reduction view*: one row per
input vector (output pixel / token), ``k`` columns in the weight's natural flattening
(input channel, kernel row, kernel column -- the order of ``weight.reshape(out, -1)``), all
weight instances (conv groups) side by side. :func:`act_side` describes that view either

- **statistically** -- ``compression.act_density`` of the layer, i.i.d. over the elements
  (Sparseloop's ``uniform`` density model, :class:`accelsim.sparsity.Uniform`); for a padded
  convolution the padding positions are zeros, so the view's per-element density is
  ``act_density x`` (fraction of view entries that are not padding). Counts that are linear in
  the elements (MACs, driven rows, gathers) need only that mean; the probability that a *set* of
  view entries is all zero (SmartExchange's broadcast waves, crossbar row blocks) does not: the
  padding zeros sit together at the borders, so a border wave is empty far more often than an
  i.i.d. spread of the same zeros says (measured: the i.i.d. view over-predicted SmartExchange
  skip cycles by up to 5.6 % on a padded 3x3 conv, crossbar ADC conversions by 2.6 % on a
  depthwise one). ``ActSide.valid`` therefore carries the layer's padding pattern (which view
  entries are real inputs, per output pixel and kernel position) and :meth:`ActSide.prob_busy`
  gives ``1 - (1 - act_density)^(real entries)`` per set, i.i.d. over the real inputs only; or
- **from a real mask** -- a 0/1 input-activation mask of the layer (one input ``(C, H, W)`` /
  ``(tokens, features)`` or several stacked on a leading axis), named by ``compression.act_mask``. The
  view is built by im2col (padding positions are zeros); engines use its exact counts, or an
  evenly spaced deterministic subsample of its rows where a per-vector kernel would be too slow.

Only ``conv2d`` and ``linear`` layers have an actual-mask path (other weight layers fall back to
the statistical one, with a note). Assumption everywhere: a non-zero activation is non-zero in
every bit slice (we know the zero pattern, not the values).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..sparsity import FORMATS, Actual, DensityModel, Uniform, expected_format_bits
from ..workload.layer import Conv2d, LayerBase, Linear
from ..workload.workload import Workload

#: what a config does with zero input activations
ActZero = Literal["none", "gate", "skip"]
ACT_ZERO_MODES: tuple[str, ...] = ("none", "gate", "skip")


def act_mask(workload: Workload | None, layer: LayerBase) -> np.ndarray | None:
    """The layer's validated input-activation mask (``compression.act_mask`` in the workload's
    mask file, :func:`accelsim.workload.masks.layer_act_mask`), with a leading input axis, or None."""
    from ..workload.masks import layer_act_mask

    return layer_act_mask(workload, layer)


def _conv_im2col(layer: Conv2d, mask: np.ndarray) -> np.ndarray:
    """(vectors, C*kh*kw) view of a (B, C, H, W) mask; padding positions are False."""
    ph, pw = layer.pad_h, layer.pad_w
    x = np.pad(mask, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, c = x.shape[:2]
    oh, ow = layer.out_h, layer.out_w
    out = np.empty((b, oh, ow, c, layer.kernel_h, layer.kernel_w), dtype=bool)
    for r in range(layer.kernel_h):
        h0 = r * layer.dilation_h
        for s in range(layer.kernel_w):
            w0 = s * layer.dilation_w
            sl = x[:, :, h0:h0 + layer.stride_h * (oh - 1) + 1:layer.stride_h, w0:w0 + layer.stride_w * (ow - 1) + 1:layer.stride_w]
            out[..., r, s] = sl.transpose(0, 2, 3, 1)
    return out.reshape(b * oh * ow, c * layer.kernel_h * layer.kernel_w)


def _as_batch(layer: LayerBase, mask: np.ndarray) -> np.ndarray | None:
    """The mask with a leading input axis, or None when its shape does not fit the layer."""
    if isinstance(layer, Conv2d):
        shape = (layer.in_channels, layer.in_h, layer.in_w)
    elif isinstance(layer, Linear):
        shape = (layer.in_features,)
    else:
        return None
    if tuple(mask.shape) == shape:
        return mask.reshape((1, *shape))
    if tuple(mask.shape[-len(shape):]) == shape:
        return mask.reshape((-1, *shape))
    from ..errors import MaskError

    raise MaskError(f"activation mask shape {tuple(mask.shape)} does not match the layer input {shape}",
                    field=f"{layer.name} activation mask")


def padding_pattern(layer: LayerBase) -> np.ndarray | None:
    """(output pixels, kh*kw) bool: which view entries of one input channel are real inputs (not
    convolution padding); None for a layer without padding."""
    if not isinstance(layer, Conv2d) or (layer.pad_h == 0 and layer.pad_w == 0):
        return None
    one = layer.model_copy(update={"in_channels": 1, "out_channels": 1, "groups": 1})
    return _conv_im2col(one, np.ones((1, 1, layer.in_h, layer.in_w), dtype=bool))


def padding_valid_fraction(layer: LayerBase) -> float:
    """Fraction of the reduction view's entries that are real inputs (not convolution padding)."""
    pat = padding_pattern(layer)
    return 1.0 if pat is None else float(pat.mean())


@dataclass(frozen=True)
class ActSide:
    """The input activations of a layer's GEMM as an engine sees them.

    ``density``: per-element density of the reduction view (padding counted as zero);
    ``rows``: the real view (vectors, instances x k) from a mask, or None (statistical);
    ``fibres``: the real mask as NHWC channel fibres (for storage formats), or None;
    ``act_density``: the layer's recorded density (for notes);
    ``valid``: statistical path of a padded conv: its :func:`padding_pattern` (else None).
    """

    density: float
    rows: np.ndarray | None
    fibres: np.ndarray | None
    act_density: float
    source: str
    valid: np.ndarray | None = None

    def real_counts(self, spans: list[tuple[int, int]], width: int) -> np.ndarray | None:
        """(output pixels, spans): real (non-padding) entries of each ``[lo, hi)`` column span of
        a ``width``-column view (natural flattening: the kernel positions repeat per channel and
        instance); None without padding."""
        if self.valid is None:
            return None
        per = self.valid.shape[1]
        cols = np.tile(self.valid, (1, -(-width // per)))[:, :width]
        cs = np.concatenate([np.zeros((cols.shape[0], 1), np.int32), np.cumsum(cols, axis=1, dtype=np.int32)], axis=1)
        lo = np.array([a for a, _ in spans], dtype=np.int64)
        hi = np.array([b for _, b in spans], dtype=np.int64)
        return cs[:, hi] - cs[:, lo]

    def position_counts(self, width: int) -> dict[int, np.ndarray] | None:
        """Per pixel-tile width ``w`` (consecutive output pixels, as the engine tiles them, the last
        tile shorter): (tiles of that width, kh*kw) real entries per kernel position; None
        without padding."""
        if self.valid is None:
            return None
        m = self.valid.shape[0]
        starts = np.arange(0, m, width)
        sums = np.add.reduceat(self.valid.astype(np.int32), starts, axis=0)
        widths = np.minimum(starts + width, m) - starts
        return {int(w): sums[widths == w] for w in np.unique(widths)}

    def prob_busy(self, real: np.ndarray) -> np.ndarray:
        """P(a set of ``real`` real input entries holds a non-zero): ``1 - (1 - act_density)^real``."""
        return 1.0 - (1.0 - self.act_density) ** real

    @property
    def measured(self) -> bool:
        return self.rows is not None

    def model(self, size: int) -> DensityModel:
        """Density model of ``size``-element runs of one input vector (statistical: uniform)."""
        return Uniform(self.density, max(int(size), 1))

    def sample_rows(self, count: int, width: int, seed: int) -> np.ndarray:
        """``count`` input vectors of ``width`` elements: evenly spaced real rows, or seeded
        Bernoulli(``density``) rows in the statistical path."""
        if self.rows is not None:
            n = self.rows.shape[0]
            idx = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))
            return self.rows[idx, :width]
        rng = np.random.default_rng([seed, width, int(self.density * 1e6)])
        return rng.random((count, width)) < self.density


def act_side(layer: LayerBase, workload: Workload | None) -> ActSide | None:
    """The activation side of ``layer`` (None: dense activations and no mask)."""
    d = float(layer.compression.act_density)
    raw = act_mask(workload, layer)
    batch = _as_batch(layer, raw) if raw is not None else None
    if batch is not None:
        if isinstance(layer, Conv2d):
            rows = _conv_im2col(layer, batch)
            fibres = batch.transpose(0, 2, 3, 1).reshape(-1, layer.in_channels)
        else:
            rows = batch.reshape(batch.shape[0], -1)
            fibres = rows
        what = f"{batch.shape[0]} input(s)" if isinstance(layer, Conv2d) else f"{rows.shape[0]} row(s)"
        src = f"activation mask '{layer.compression.act_mask}' ({what}, measured density {float(batch.mean()):.3f})"
        return ActSide(float(rows.mean()) if rows.size else 0.0, rows, fibres, d, src)
    if d >= 1.0:
        return None
    pat = padding_pattern(layer)
    src = f"act_density {d:.2f} (statistical, uniform i.i.d." + (" over the real inputs, padding pattern exact)" if pat is not None else ")")
    return ActSide(d * (1.0 if pat is None else float(pat.mean())), None, None, d, src, pat)


def level_notes(block, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Notes for ``sparsity.levels.<name>.action`` entries a kind's engine does not model on its own."""
    from ..hardware.act_zero import unmodelled_level_actions

    return [f"sparsity.levels.{n}.action not modelled on {kind}: sparsity.compute decides which activations are "
            "read and multiplied" for n in unmodelled_level_actions(block)]


@dataclass(frozen=True)
class ActStorage:
    """Bits of the layer input in a storage format: payload and metadata per stored activation."""

    payload_per_word: float
    metadata_per_word: float


def act_storage(layer: LayerBase, side: ActSide | None, fmt: str, act_bits: int, run_bits: int = 4) -> ActStorage:
    """Expected bits per input activation word when inputs are stored in ``fmt`` (tiles are NHWC
    channel fibres of a conv input, the feature vector of a linear input; Sparseloop's
    per-level format with its metadata). ``uncompressed``: ``act_bits`` and no metadata."""
    if fmt not in FORMATS:
        from ..errors import ConfigError

        raise ConfigError(f"unknown activation format {fmt!r} (expected one of {', '.join(FORMATS)})", field="act_format")
    if fmt == "uncompressed" or side is None:
        return ActStorage(float(act_bits), 0.0)
    tile = layer.in_channels if isinstance(layer, Conv2d) else getattr(layer, "in_features", 0) or 64
    if side.fibres is not None:
        model: DensityModel = Actual(side.fibres)
        tile = side.fibres.shape[1]
    else:
        model = Uniform(side.act_density, max(layer.input_words, tile))
    cost = expected_format_bits(fmt, model, tile, act_bits, run_bits=run_bits)
    return ActStorage(cost.payload_bits / tile, cost.metadata_bits / tile)


@dataclass(frozen=True)
class InputFormats:
    """The layer input as stored in DRAM (``dram``) and in the engine's input buffer (``buffer``),
    in bits per input word (payload, metadata); ``notes`` for the report."""

    dram: ActStorage
    buffer: ActStorage
    notes: tuple[str, ...]

    @staticmethod
    def split(words: int, storage: ActStorage) -> tuple[int, int]:
        """(payload bits, metadata bits) of ``words`` input words in ``storage`` (rounded so that
        their sum is the rounded total)."""
        total = int(round(words * (storage.payload_per_word + storage.metadata_per_word)))
        payload = min(int(round(words * storage.payload_per_word)), total)
        return payload, total - payload


def input_formats(layer: LayerBase, workload: Workload | None, block, kind: str,  # type: ignore[no-untyped-def]
                  levels: tuple[str, str], act_bits: int, unused: dict[str, str]) -> InputFormats:
    """Storage of the layer input under ``sparsity.levels.<dram>/<buffer>.format.inputs`` of a
    kind's ``sparsity:`` block (``levels``: the DRAM level and the input buffer's level).

    Expected bits per word come from :func:`act_storage` (the real mask's channel fibres when the
    layer has one, else the uniform model at ``act_density``; a dense input, ``act_density`` 1,
    still pays the format's metadata). A format given for an operand the engine cannot store in
    it (``unused``: operand -> reason) is named in the notes, not silently dropped."""
    notes: list[str] = []
    for lvl in levels:
        f = block.level(lvl).format
        for op, why in unused.items():
            if f.of(op) != "uncompressed":
                notes.append(f"sparsity.levels.{lvl}.format.{op} ({f.of(op)}) not used on {kind}: {why}")
    fmts = [block.level(lvl).format for lvl in levels]
    side = None
    if any(f.inputs != "uncompressed" for f in fmts):
        side = act_side(layer, workload) or ActSide(1.0, None, None, 1.0, "act_density 1.00 (dense input)")
    got = [act_storage(layer, side, f.inputs, act_bits, f.run_bits) for f in fmts]
    for lvl, f, st in zip(levels, fmts, got):
        if f.inputs != "uncompressed" and side is not None:
            notes.append(f"input activations stored as {f.inputs} in {lvl} ({st.payload_per_word:.2f} payload + "
                         f"{st.metadata_per_word:.2f} metadata bits per word, from {side.source})")
    return InputFormats(got[0], got[1], tuple(notes))
