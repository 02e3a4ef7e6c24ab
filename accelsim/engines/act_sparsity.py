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

from dataclasses import dataclass, replace
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
    ``valid``: statistical path of a padded conv: its :func:`padding_pattern` (else None);
    ``channel_density``: statistical path: ``compression.act_channel_density`` per input channel
    (``cols_per_channel`` view columns each: kh*kw of a conv, 1 of a linear layer), else None.
    """

    density: float
    rows: np.ndarray | None
    fibres: np.ndarray | None
    act_density: float
    source: str
    valid: np.ndarray | None = None
    channel_density: np.ndarray | None = None
    cols_per_channel: int = 1

    @property
    def measured(self) -> bool:
        return self.rows is not None

    def model(self, size: int) -> DensityModel:
        """Density model of ``size``-element runs of one input vector (statistical: uniform)."""
        return Uniform(self.density, max(int(size), 1))

    @property
    def structured(self) -> bool:
        """Statistical path with a padding pattern or per-channel densities (not one i.i.d. density)."""
        return self.rows is None and (self.valid is not None or self.channel_density is not None)

    def column_density(self, width: int) -> np.ndarray:
        """Per view column (natural flattening: channel-major, kernel positions inner, instances
        side by side): the density of its input channel (``act_density`` when not per channel)."""
        if self.channel_density is None:
            return np.full(width, self.act_density)
        return np.resize(np.repeat(self.channel_density, self.cols_per_channel), width)

    def _log_empty(self, width: int) -> np.ndarray:
        return np.log(np.maximum(1.0 - self.column_density(width), 1e-300))

    def busy_sets(self, spans: list[tuple[int, int]], width: int) -> np.ndarray:
        """P(the view entries of a ``[lo, hi)`` column span hold a non-zero) per span, averaged
        over the output pixels: ``1 - prod (1 - d_col)`` over the span's real (non-padding)
        entries, i.i.d. over the real inputs at each column's channel density."""
        lg = self._log_empty(width)[None, :]
        if self.valid is not None:
            lg = _columns(self.valid, width) * lg
        cs = np.concatenate([np.zeros((lg.shape[0], 1)), np.cumsum(lg, axis=1)], axis=1)
        lo = np.array([a for a, _ in spans], dtype=np.int64)
        hi = np.array([b for _, b in spans], dtype=np.int64)
        return (1.0 - np.exp(cs[:, hi] - cs[:, lo])).mean(axis=0)

    def wave_busy(self, k: int, inst: int, tile: int, widths: set[int]
                  ) -> tuple[dict[int, list[np.ndarray]], list[np.ndarray]]:
        """Broadcast waves of one reduction element over a pixel tile (the layer's output pixels
        cut into consecutive ``tile``-pixel tiles, the last shorter; ``widths``: the tile widths
        asked for): per width and instance, per element ``1 - mean_tiles prod (1 - d_col)`` over
        the wave's real inputs; and per instance the element densities (``d_col x`` the real
        fraction of its kernel position)."""
        per = self.valid.shape[1] if self.valid is not None else 1
        pos = np.arange(k) % per
        counts: dict[int, np.ndarray] = {w: np.full((1, k), w) for w in widths}
        frac = np.ones(k)
        if self.valid is not None:
            m = self.valid.shape[0]
            starts = np.arange(0, m, tile)
            sums = np.add.reduceat(self.valid.astype(np.int64), starts, axis=0)
            tw = np.minimum(starts + tile, m) - starts
            counts = {w: sums[tw == w][:, pos] if np.any(tw == w) else counts[w] for w in widths}
            frac = self.valid.mean(axis=0)[pos]
        lg = self._log_empty(k * inst)
        busy = {w: [1.0 - np.exp(c * lg[None, i * k:(i + 1) * k]).mean(axis=0) for i in range(inst)]
                for w, c in counts.items()}
        dens = self.column_density(k * inst)
        return busy, [dens[i * k:(i + 1) * k] * frac for i in range(inst)]

    def sample_rows(self, count: int, width: int, seed: int) -> np.ndarray:
        """``count`` input vectors of ``width`` elements: evenly spaced real rows, or seeded
        Bernoulli(``density``) rows in the statistical path (per column at its channel's density,
        zero at padding positions of evenly spaced output pixels, when those are known)."""
        if self.rows is not None:
            n = self.rows.shape[0]
            idx = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))
            return self.rows[idx, :width]
        rng = np.random.default_rng([seed, width, int(self.density * 1e6)])
        if not self.structured:
            return rng.random((count, width)) < self.density
        rows = rng.random((count, width)) < self.column_density(width)[None, :]
        if self.valid is not None:
            idx = np.linspace(0, self.valid.shape[0] - 1, count).round().astype(np.int64)
            rows &= _columns(self.valid[idx], width)
        return rows


def _columns(valid: np.ndarray, width: int) -> np.ndarray:
    """A (pixels, kh*kw) padding pattern repeated over ``width`` view columns (every channel and
    instance sees the same pattern)."""
    return np.tile(valid, (1, -(-width // valid.shape[1])))[:, :width]


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
    ch, per = _channel_density(layer)
    src = (f"act_density {d:.2f} (statistical, uniform i.i.d." + (" per input channel" if ch is not None else "")
           + (" over the real inputs, padding pattern exact)" if pat is not None else ")"))
    side = ActSide(d, None, None, d, src, pat, ch, per)
    dens = float(side.column_density(per * ch.size).mean()) if ch is not None else d
    return replace(side, density=dens * (1.0 if pat is None else float(pat.mean())))


def _channel_density(layer: LayerBase) -> tuple[np.ndarray | None, int]:
    """``compression.act_channel_density`` when it has one density per input channel (conv:
    ``in_channels``, kh*kw view columns each; linear: ``in_features``, one column each)."""
    ch = layer.compression.act_channel_density
    if isinstance(layer, Conv2d):
        n, per = layer.in_channels, layer.kernel_h * layer.kernel_w
    elif isinstance(layer, Linear):
        n, per = layer.in_features, 1
    else:
        return None, 1
    if ch is None or len(ch) != n:
        return None, per
    return np.asarray(ch, dtype=float), per


def level_notes(block, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Notes for ``sparsity.levels.<name>.action`` entries a kind's engine does not model on its own."""
    from ..hardware.act_zero import unmodelled_level_actions

    return [f"sparsity.levels.{n}.action not modelled on {kind}: sparsity.compute decides which activations are "
            "read and multiplied" for n in unmodelled_level_actions(block)]


def vector_format_notes(block, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Notes for input formats a kind's vector (pool / elementwise) layers do not use: they
    stream their inputs uncompressed."""
    return [f"sparsity.levels.{n}.format.inputs ({block.level(n).format.inputs}) not used on {kind} vector layers: "
            "their inputs stream uncompressed" for n in block.level_names() if block.level(n).format.inputs != "uncompressed"]


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
