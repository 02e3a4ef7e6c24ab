"""SmartExchange engine: weights rebuilt from a basis B and sparse power-of-two Ce, then MACs.

**Weight format** (as exported by :mod:`accelsim.frontend.smart_exchange`): every output row of
the weight (natural flattening, length ``k``) is cut into ``R = ceil(k / S)`` pieces of
``S = basis_size`` consecutive weights (a 3x3 kernel row for ``S = 3``); piece ``r`` of row
``o`` is ``Ce[o, r, :] @ B[o]`` with one ``S x S`` basis per output row. Stored: per Ce row one
bitmap bit (zero row or not; the *index* traffic), the ``S`` entries of each non-zero Ce row at
``ce_bits`` (sign + exponent), and B at ``basis_bits``.

**Dataflow.** PE line ``i`` of the ``pe_rows x pe_cols`` array computes output channel ``i`` of
a channel tile for ``pe_cols`` output pixels; each cycle every line takes one rebuilt weight
(broadcast along the line) and all lines share one broadcast activation vector (the same
reduction element for ``pe_cols`` pixels). Loops: channel tiles (outer) x pixel tiles x
reduction chunks sized to half the ``weight_buffer``. A piece (``S`` reduction elements) is
skipped -- no cycles -- when its Ce row is zero in *every* line of the tile (zero Ce rows
skip input channels); lines whose row is zero while others are not idle (clock-gated). So
vector-wise Ce sparsity aligned across output channels (SmartExchange's channel-wise
sparsity) saves time; sparsity that differs between the lines of a tile saves rebuild work,
MAC energy and storage but not cycles.

**Rebuild.** A piece costs ``nnz(Ce row) * S`` shift-adds (each non-zero power-of-two entry
shifts and adds one B row). The rebuild engine does ``rebuild_shift_adders`` per cycle as the
simulator's decoder stage (``Tile.decode_cycles``): it rebuilds chunk ``q+1`` into one half of
the weight buffer while the array consumes chunk ``q`` from the other, so rebuild time is hidden
unless it exceeds compute. A channel tile whose rebuilt weights fit half the weight buffer is
rebuilt once and reused by all its pixel tiles; otherwise it is rebuilt for every pixel tile
(trading rebuild compute for buffer -- the SmartExchange trade-off). Decode cycles and
``decoder`` energy are reported separately from MACs and memory (``extra['decode_cycles']``).

**Where Ce comes from.** In order: the exported Ce array ``<mask>.se_ce`` (shape
``(out, R, S)``) in the workload's mask file; else the weight mask (an all-zero piece is a zero
Ce row; non-zero rows hold ``ce_density * S / row_density`` entries); else the expectation for
i.i.d. Ce entries of density ``ce_density`` (a row is zero with probability
``(1 - ce_density)**S``) -- said in the layer's notes.

**Memory.** Activations are fetched once when the layer input fits half the ``act_buffer``,
else once per channel tile (whole input rows per pixel tile, line-buffer assumption). Ce and B
of a channel tile are loaded once when they fit half the ``ce_buffer``, else for every pixel
tile. Outputs drain through the ``out_buffer`` at activation precision. Layers without a
SmartExchange record run dense: plain ``weight_bits`` weights stream through the
``ce_buffer`` straight to the lines (no rebuild).

**Energy actions.** MACs at the layer's widths (executed: non-zero pieces only); two PE
register writes per MAC (latched weight and activation); ``decoder`` shift-adds at
``rebuild_acc_bits``; ``basis_buffer`` reads (one B entry per shift-add); ``ce_buffer``
reads per rebuild and fills; ``weight_buffer`` writes (rebuilt weights) and reads (one per line
per active cycle per pixel tile); ``act_buffer`` reads (one broadcast vector per cycle) and
fills; ``out_buffer`` writes/reads; DRAM by operand (``ifmap``, ``filter`` = Ce values,
``index`` = Ce row bitmaps, ``basis``, ``ofmap``).

**Zero activations** (``sparsity.compute`` acting on ``inputs``, :mod:`.act_sparsity`):
``gate`` clock-gates a PE whose broadcast activation is zero (MACs and PE-register writes
only for non-zero activations x active weights; cycles unchanged); ``skip`` also drops a
reduction element whose broadcast wave over the pixel tile is all zero (a dead input channel,
or a sparse narrow tile): no cycle, no weight read, no act_buffer read -- one zero-flag bit
per element and pixel tile is read instead. Statistical: the wave is empty with the uniform
model's ``P(empty)`` for ``w`` pixels (i.i.d., ~ ``(1-d)^w``); actual: counted per pixel tile
of the real view (exact when the mask covers the layer's pixels, else the mean over the
mask's tiles).

**Input formats** (``sparsity.levels.dram|act_buffer.format.inputs``, :func:`.act_sparsity.input_formats`):
the layer input moves from DRAM at the DRAM format's payload + metadata bits per word (payload as
``ifmap``, metadata as ``ifmap_meta``; compulsory traffic likewise) and sits in the act_buffer at
its format's bits (fill writes and the residency test use them). A decoder at the act_buffer port
expands the broadcast vector: reads per broadcast cycle are unchanged (pixel tiles stay sized on
uncompressed inputs). Weight/output formats at these levels are named in the notes as unused.

**Ignored**: index intersection of zero activations with non-aligned Ce zeros, Booth bit-serial
MACs (MACs are priced bit-parallel), the paper's 64-channel basis chunks (one basis per
output row, as exported), compiler scheduling across layers, pipeline fill of the array.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import MaskError
from ..hardware.smartexchange import SmartExchangeAccelerator
from ..stats import Action, LayerProgram, Node, Repeat, Tile, charge_tiles, tile_bounded
from ..workload.layer import Conv2d, Elementwise, Gemm, LayerBase, Linear, Pool, ceil_div
from ..workload.masks import layer_mask
from ..workload.workload import Workload
from .act_sparsity import ActSide, ActStorage, InputFormats, act_side, input_formats, level_notes, vector_format_notes
from .base import Engine
from .lowering import buffered_vector_program, compress_periodic, node_cycles


@dataclass
class ChannelTile:
    """Per reduction chunk of one channel tile: cycles, active weights, shift-adds, Ce bits."""

    lines: int
    cycles: np.ndarray       # union cycles per chunk (pieces non-zero in some line)
    active: np.ndarray       # rebuilt/used weights per chunk (sum over lines)
    shift_adds: np.ndarray   # per chunk
    ce_value_bits: np.ndarray
    ce_index_bits: np.ndarray
    basis_bits: int
    union: np.ndarray | None = None         # per piece: 1 if non-zero in some line (or its probability)
    piece_active: np.ndarray | None = None  # per piece: lines whose piece is non-zero (or its expectation)
    chunk_starts: np.ndarray | None = None
    act: "ActFactors | None" = None         # activation-side cycles / MACs (compute gate / skip on inputs)


@dataclass
class ActFactors:
    """Activation side of one channel tile: per chunk, cycles of a pixel tile of ``w`` pixels
    (``cycles[w]``; skip) and effectual MACs per pixel (``macs_per_pixel``)."""

    cycles: dict[int, np.ndarray]
    macs_per_pixel: np.ndarray

    def run_cycles(self, p: int, width: int, q: int) -> int:
        """Cycles of chunk ``q`` on pixel tile ``p`` of ``width`` pixels under ``skip``: the
        expected (or measured mean) count, rounded cumulatively over the pixel tiles so that
        their sum is the rounded total (tiles stay alike, so the program compresses)."""
        c = float(self.cycles[width][q])
        return int(round(c * (p + 1)) - round(c * p))


@dataclass
class _Fmt:
    se: bool
    s: int
    ce_bits: int
    basis_bits: int
    wb: int
    ab: int
    acc_bits: int
    a_dram: ActStorage | None = None  # layer input in DRAM (None: uncompressed at ab)
    a_buf: ActStorage | None = None   # layer input in the act_buffer

    def a_bits(self, where: str) -> float:
        """Bits per input word in DRAM (``dram``) or the act_buffer (``buf``)."""
        st = self.a_dram if where == "dram" else self.a_buf
        return float(self.ab) if st is None else st.payload_per_word + st.metadata_per_word


def _seg_len(k: int, s: int) -> np.ndarray:
    r = ceil_div(k, s)
    out = np.full(r, s, dtype=np.int64)
    if k % s:
        out[-1] = k % s
    return out


def _chunk_starts(r: int, chunk: int) -> np.ndarray:
    return np.arange(0, r, chunk, dtype=np.int64)


def _tiles_from_arrays(nz: np.ndarray, ce_nnz: np.ndarray, seg: np.ndarray, fmt: _Fmt, lines_per_tile: int,
                       chunk: int) -> list[ChannelTile]:
    """Channel tiles of one weight matrix from (rows, R) non-zero-piece and Ce-count arrays."""
    rows, r = nz.shape
    starts = _chunk_starts(r, chunk)
    charge_tiles(ceil_div(rows, lines_per_tile) * len(starts), "ce_buffer (channel tiles)")
    out = []
    for c0 in range(0, rows, lines_per_tile):
        z = nz[c0:c0 + lines_per_tile]
        e = ce_nnz[c0:c0 + lines_per_tile]
        lines = z.shape[0]
        union = z.any(axis=0)
        cyc = np.add.reduceat(union * seg, starts)
        act = np.add.reduceat((z * seg[None, :]).sum(axis=0), starts)
        sh = np.rint(np.add.reduceat((e * seg[None, :]).sum(axis=0), starts))
        if fmt.se:
            vbits = np.add.reduceat(z.sum(axis=0), starts) * fmt.s * fmt.ce_bits
            ibits = np.add.reduceat(np.full(r, lines, dtype=np.int64), starts)
            bbits = lines * fmt.s * fmt.s * fmt.basis_bits
        else:
            vbits = act * fmt.wb
            ibits = np.zeros_like(act)
            bbits = 0
        out.append(ChannelTile(lines, cyc.astype(np.int64), act.astype(np.int64), sh.astype(np.int64),
                               vbits.astype(np.int64), ibits.astype(np.int64), int(bbits), union.astype(float),
                               z.sum(axis=0).astype(float), starts))
    return out


def _tiles_expected(n: int, k: int, density: float, fmt: _Fmt, lines_per_tile: int, chunk: int) -> list[ChannelTile]:
    """Channel tiles when only ``ce_density`` is known (i.i.d. Ce entries)."""
    seg = _seg_len(k, fmt.s)
    r = seg.shape[0]
    starts = _chunk_starts(r, chunk)
    charge_tiles(ceil_div(n, lines_per_tile) * len(starts), "ce_buffer (channel tiles)")
    p_row = 1.0 - (1.0 - density) ** fmt.s
    out = []
    for c0 in range(0, n, lines_per_tile):
        lines = min(lines_per_tile, n - c0)
        p_union = 1.0 - (1.0 - p_row) ** lines
        cyc = np.add.reduceat(seg * p_union, starts)
        act = np.add.reduceat(seg * p_row * lines, starts)
        sh = np.add.reduceat(seg * density * fmt.s * lines, starts)
        vbits = np.add.reduceat(np.full(r, p_row * lines * fmt.s * fmt.ce_bits), starts)
        ibits = np.add.reduceat(np.full(r, float(lines)), starts)
        out.append(ChannelTile(lines, np.rint(cyc).astype(np.int64), np.rint(act).astype(np.int64),
                               np.rint(sh).astype(np.int64), np.rint(vbits).astype(np.int64),
                               np.rint(ibits).astype(np.int64), lines * fmt.s * fmt.s * fmt.basis_bits,
                               np.full(r, p_union), np.full(r, p_row * lines), starts))
    return out


def _piece_sums(per_element: np.ndarray, s: int, r: int) -> np.ndarray:
    """Sums of a per-element array (last axis) over the ``r`` pieces of ``s`` consecutive elements."""
    pad = r * s - per_element.shape[-1]
    x = per_element
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad))], axis=-1)
    return x.reshape(*x.shape[:-1], r, s).sum(axis=-1)


@dataclass
class _ActElems:
    busy: dict[int, np.ndarray]      # per width w: P(the wave of element j over w pixels holds a non-zero)
    nz: np.ndarray                   # per element: fraction of pixels with a non-zero activation


def act_element_factors(side: ActSide, k: int, inst: int, pe_cols: int, widths: set[int], pixels: int
                        ) -> list[_ActElems]:
    """Per weight instance, the activation side over the ``k`` reduction elements.

    Statistical: ``busy = 1 - P(empty)`` of the uniform model over the layer's input view for a
    wave of ``w`` pixels, ``nz`` = the density; for a padded conv or per-channel densities, per
    element the mean over the layer's ``w``-pixel tiles of ``1 - (1 - d_channel)^(real inputs in
    the wave)`` (:meth:`.act_sparsity.ActSide.wave_busy`; padding zeros cluster at the borders,
    sparse channels leave their elements' waves empty more often than the mean density says). Actual: the mean over the real view cut into
    consecutive ``pe_cols``-pixel tiles (the layer's own pixel tiles when the mask covers its
    ``pixels`` vectors, so the layer's total is exact up to rounding).
    """
    if side.structured:
        busy_w, nz = side.wave_busy(k, inst, pe_cols, widths)
        return [_ActElems({w: b[i] for w, b in busy_w.items()}, nz[i]) for i in range(inst)]
    if side.rows is None:
        model = side.model(max(pixels * k * inst, max(widths)))
        busy = {w: np.full(k, 1.0 - model.prob_empty(w)) for w in widths}
        return [_ActElems(busy, np.full(k, side.density))] * inst
    rows = side.rows
    m = rows.shape[0]
    out = []
    for i in range(inst):
        a = rows[:, i * k:(i + 1) * k]
        if m == 0:
            out.append(_ActElems({w: np.zeros(k) for w in widths}, np.zeros(k)))
            continue
        busy_j = np.logical_or.reduceat(a, np.arange(0, m, pe_cols), axis=0).mean(axis=0)
        out.append(_ActElems({w: busy_j for w in widths}, a.mean(axis=0)))
    return out


def attach_act(tiles: list[ChannelTile], el: _ActElems, s: int) -> list[ChannelTile]:
    """Copies of ``tiles`` carrying their activation factors."""
    out = []
    for ct in tiles:
        assert ct.union is not None and ct.piece_active is not None and ct.chunk_starts is not None
        r = ct.union.shape[0]
        cyc = {w: np.add.reduceat(ct.union * _piece_sums(b, s, r), ct.chunk_starts) for w, b in el.busy.items()}
        macs = np.add.reduceat(ct.piece_active * _piece_sums(el.nz, s, r), ct.chunk_starts)
        out.append(replace(ct, act=ActFactors(cyc, macs)))
    return out


def _natural_rows(layer: LayerBase, mask: np.ndarray, g_index: int) -> np.ndarray:
    """The natural-layout mask rows (out, row length) for GEMM ``g_index`` of the layer."""
    m = mask.astype(bool, copy=False)
    if layer.op in ("lstm", "gru"):
        i = layer.input_size  # type: ignore[attr-defined]
        return m[:, :i] if g_index == 0 else m[:, i:]
    if isinstance(layer, LayerBase) and layer.op == "matmul":
        return m.reshape(-1, m.shape[-1])
    return m.reshape(m.shape[0], -1)


def _se_ce_array(workload: Workload | None, layer: LayerBase) -> np.ndarray | None:
    key = layer.compression.sparsity.mask
    if workload is None or key is None:
        return None
    try:
        return workload.array(f"{key}.se_ce")
    except MaskError:
        return None


class SmartExchangeEngine(Engine[SmartExchangeAccelerator]):
    """Engine for :class:`~accelsim.hardware.smartexchange.SmartExchangeAccelerator`."""

    exploits = frozenset({"smartexchange"})
    ignore_reasons = {"act_sparsity": "sparsity.compute does not gate or skip zero inputs on this config (every "
                                      "broadcast activation is multiplied)"}

    def exploited(self, hw: SmartExchangeAccelerator) -> frozenset[str]:
        return self.exploits | ({"act_sparsity"} if hw.act_zero != "none" else set())

    def supports(self, layer: LayerBase, hw: SmartExchangeAccelerator) -> tuple[bool, str]:
        return True, ""

    @tile_bounded
    def lower(self, layer: LayerBase, hw: SmartExchangeAccelerator, workload: Workload | None = None) -> LayerProgram:
        if isinstance(layer, (Elementwise, Pool)):
            return self._lower_vector(layer, hw)
        c = layer.compression
        q, fac = c.quant, c.factorization
        se = fac.kind == "smartexchange"
        s = (fac.basis_size or 3) if se else 1
        ce_bits = fac.ce_bits or hw.default_ce_bits
        basis_bits = fac.basis_bits or hw.default_basis_bits
        acc = hw.rebuild_acc_bits or (basis_bits + 2 ** (ce_bits - 1) - 1)
        formats = input_formats(layer, workload, hw.sparsity, "smartexchange", ("dram", "act_buffer"), q.act_bits,
                                {"weights": "weights move in their SmartExchange Ce/B (or dense) form",
                                 "outputs": "outputs drain uncompressed"})
        fmt = _Fmt(se, s, ce_bits, basis_bits, q.weight_bits, q.act_bits, acc, formats.dram, formats.buffer)
        notes: list[str] = []
        mask = layer_mask(workload, layer) if c.sparsity.mask is not None else None
        se_ce = _se_ce_array(workload, layer) if se else None
        source = "dense weights (no SmartExchange record): no rebuild"
        if se:
            source = ("exported Ce array" if se_ce is not None else "weight mask" if mask is not None
                      else f"expectation for i.i.d. Ce entries at ce_density {fac.ce_density:g}")
            notes.append(f"SmartExchange Ce structure from the {source}")
        else:
            notes.append(source)
        body: list[Node] = []
        tot = dict.fromkeys(["macs", "wbuf_reads", "act_reads", "shift", "ce_reads_bits", "rebuilt",
                             "decode_cycles", "outputs", "a_fill_words", "act_flag_bits"], 0)
        side = act_side(layer, workload) if hw.act_zero != "none" else None
        if side is not None:
            notes.append(f"activation sparsity exploited ({hw.act_zero}) from {side.source}"
                         + ("; a reduction element is skipped only when its whole broadcast wave is zero"
                            if hw.act_zero == "skip" else ""))
        notes.extend(level_notes(hw.sparsity, "smartexchange"))
        notes.extend(formats.notes)
        dram = {"ifmap": 0, "filter": 0, "index": 0, "basis": 0, "ifmap_meta": 0}
        dram_w = {"ofmap": 0}
        compulsory = 0
        for gi, g in enumerate(layer.gemms()):
            weight = g.b_is_weight
            g_fmt = fmt if weight else _Fmt(False, 1, ce_bits, basis_bits, q.act_bits, q.act_bits, acc,
                                            formats.dram, formats.buffer)
            per_inst = self._channel_tiles(layer, g, gi, g_fmt, hw, mask if weight else None,
                                           se_ce if weight and gi == 0 else None)
            if side is not None and weight:
                per_inst = self._with_act(g, per_inst, side, g_fmt, hw)
            g_nodes = self._gemm_nodes(g, per_inst, g_fmt, hw, tot, dram, dram_w, notes)
            body.extend(g_nodes)
            compulsory += int(round(g.a_unique * g.count * fmt.a_bits("dram")))
            compulsory += sum(int(t.ce_value_bits.sum() + t.ce_index_bits.sum()) + t.basis_bits
                              for tiles in per_inst for t in tiles)
        compute_cycles = sum(node_cycles(n) for n in body)
        buf = formats.buffer
        macs = int(round(tot["macs"]))
        wb, ab = fmt.wb, fmt.ab
        actions = [
            Action("mac", "mac", macs, wb, ab, q.scheme),
            Action("pe_rf", "write", macs, wb), Action("pe_rf", "write", macs, ab),
            Action("ce_buffer", "write", (dram["filter"] + dram["index"]) // 8, 8),
            Action("act_buffer", "read", int(tot["act_reads"]), ab),
            Action("act_buffer", "read", int(tot["act_flag_bits"]) // 8, 8),
            Action("act_buffer", "write", int(round(tot["a_fill_words"] * buf.payload_per_word / ab)), ab),
            Action("act_buffer", "write", int(round(tot["a_fill_words"] * buf.metadata_per_word / 8)), 8),
            Action("out_buffer", "write", int(tot["outputs"]), ab),
            Action("out_buffer", "read", int(tot["outputs"]), ab),
            Action("dram", "read", dram["ifmap"] // ab, ab),
            Action("dram", "read", (dram["filter"] + dram["index"] + dram["basis"] + dram["ifmap_meta"]) // 8, 8),
            Action("dram", "write", dram_w["ofmap"] // ab, ab),
        ]
        if se:  # rebuild: Ce (+ bitmap) and B read, shift-added, rebuilt weights written then read by the lines
            actions += [
                Action("decoder", "shift_add", int(tot["shift"]), acc),
                Action("basis_buffer", "read", int(tot["shift"]), basis_bits),
                Action("basis_buffer", "write", dram["basis"] // 8, 8),
                Action("ce_buffer", "read", int(tot["ce_reads_bits"]) // 8, 8),
                Action("weight_buffer", "write", int(tot["rebuilt"]), wb),
                Action("weight_buffer", "read", int(tot["wbuf_reads"]), wb),
            ]
        else:  # plain weights go from the ce_buffer straight to the lines
            actions.append(Action("ce_buffer", "read", int(tot["wbuf_reads"]), wb))
        dense_macs = layer.densified().macs if not c.is_dense else layer.macs
        prog = LayerProgram(
            layer=layer.name, op=layer.op, engine="smartexchange", body=tuple(body), compute_cycles=compute_cycles,
            actions=[a for a in actions if a.count], macs=macs, dense_macs=dense_macs, pe_count=hw.num_pes,
            mapping_efficiency=macs / (compute_cycles * hw.num_pes) if compute_cycles else 0.0,
            dram_read_bits={k: v for k, v in dram.items() if v or k != "ifmap_meta"}, dram_write_bits=dict(dram_w),
            compulsory_read_bits=compulsory, compulsory_write_bits=layer.output_words * ab,
            sram_accesses={"act_buffer_reads": int(tot["act_reads"]), "weight_buffer_reads": int(tot["wbuf_reads"]),
                           "out_buffer_writes": int(tot["outputs"]), "basis_buffer_reads": int(tot["shift"])},
            notes=list(dict.fromkeys(notes)),
            extra={"decode_cycles": float(tot["decode_cycles"]), "shift_adds": float(tot["shift"]),
                   "effectual_macs": float(tot["macs"]),
                   "rebuilt_weights": float(tot["rebuilt"]), "index_dram_bytes": dram["index"] / 8,
                   "basis_dram_bytes": dram["basis"] / 8},
        )
        return prog

    # ------------------------------------------------------------------------------------
    def _chunk(self, hw: SmartExchangeAccelerator, fmt: _Fmt) -> int:
        """Pieces per reduction chunk: the chunk's rebuilt weights fill at most half the weight buffer."""
        if not fmt.se:  # plain weights stream from half the ce_buffer
            return max(1, (hw.ce_buffer.size_bits // 2) // (hw.pe_rows * fmt.wb))
        return max(1, (hw.weight_buffer.size_bits // 2) // (hw.pe_rows * fmt.s * fmt.wb))

    def _channel_tiles(self, layer: LayerBase, g: Gemm, gi: int, fmt: _Fmt, hw: SmartExchangeAccelerator,
                       mask: np.ndarray | None, se_ce: np.ndarray | None) -> list[list[ChannelTile]]:
        """Channel tiles of every distinct weight instance of GEMM ``g``."""
        inst = g.b_distinct
        n, k = g.n, g.k
        chunk = self._chunk(hw, fmt)
        seg = _seg_len(k, fmt.s)
        r = seg.shape[0]
        fac = layer.compression.factorization
        if not fmt.se:
            if mask is not None:
                rows = _natural_rows(layer, mask, gi).reshape(inst, n, -1)
                out = []
                for i in range(inst):
                    nz = rows[i].reshape(n, r, fmt.s).any(axis=2)
                    out.append(_tiles_from_arrays(nz, np.zeros_like(nz, dtype=np.int64), seg, fmt, hw.pe_rows, chunk))
                return out
            full = np.ones((n, r), dtype=bool)
            tiles = _tiles_from_arrays(full, np.zeros((n, r), dtype=np.int64), seg, fmt, hw.pe_rows, chunk)
            return [tiles] * inst
        if se_ce is not None and isinstance(layer, (Conv2d, Linear)):
            rows_total = n * inst
            if se_ce.shape != (rows_total, r, fmt.s):
                raise MaskError(f"SmartExchange Ce array has shape {tuple(se_ce.shape)}, expected (out, ceil(k/S), S) = "
                                f"{(rows_total, r, fmt.s)}", source=f"mask file of layer {layer.name}",
                                field=f"{layer.name}.compression.sparsity.mask (.se_ce)")
            nnz = (se_ce != 0).sum(axis=2).reshape(inst, n, r)
            return [_tiles_from_arrays(nnz[i] > 0, nnz[i], seg, fmt, hw.pe_rows, chunk) for i in range(inst)]
        density = fac.ce_density or 1.0
        if mask is not None:
            rows = _natural_rows(layer, mask, gi).reshape(inst, n, -1)
            out = []
            for i in range(inst):
                pad = r * fmt.s - rows.shape[2]
                m = np.concatenate([rows[i], np.zeros((n, pad), dtype=bool)], axis=1) if pad else rows[i]
                nz = m.reshape(n, r, fmt.s).any(axis=2)
                row_density = float(nz.mean()) if nz.size else 1.0
                per_row = min(float(fmt.s), max(1.0, density * fmt.s / row_density)) if row_density else 0.0
                ce_nnz = np.where(nz, per_row, 0.0)
                out.append(_tiles_from_arrays(nz, ce_nnz, seg, fmt, hw.pe_rows, chunk))
            return out
        tiles = _tiles_expected(n, k, density, fmt, hw.pe_rows, chunk)
        return [tiles] * inst

    def _with_act(self, g: Gemm, per_inst: list[list[ChannelTile]], side: ActSide, fmt: _Fmt,
                  hw: SmartExchangeAccelerator) -> list[list[ChannelTile]]:
        """Channel tiles carrying their activation factors (identical instances stay shared)."""
        widths = {min(hw.pe_cols, g.m), g.m % hw.pe_cols or hw.pe_cols}
        facs = act_element_factors(side, g.k, len(per_inst), hw.pe_cols, widths, g.m)
        if side.rows is None and all(t is per_inst[0] for t in per_inst):
            shared = attach_act(per_inst[0], facs[0], fmt.s)
            return [shared] * len(per_inst)
        return [attach_act(t, facs[i], fmt.s) for i, t in enumerate(per_inst)]

    def _gemm_nodes(self, g: Gemm, per_inst: list[list[ChannelTile]], fmt: _Fmt, hw: SmartExchangeAccelerator,
                    tot: dict[str, float], dram: dict[str, int], dram_w: dict[str, int],
                    notes: list[str] | None = None) -> list[Node]:
        """Tiles of all repetitions of ``g``; counters are added with their multiplicities."""
        inst = len(per_inst)
        whole_ce = sum(int(t.ce_value_bits.sum() + t.ce_index_bits.sum()) + t.basis_bits for t in per_inst[0])
        keep_ce = g.b_distinct == 1 and g.count > 1 and whole_ce <= hw.ce_buffer.size_bits // 2
        if inst > 1 and all(t is per_inst[0] for t in per_inst):  # identical instances (groups, heads)
            one = self._rep(g, per_inst[0], fmt, hw, True, tot, dram, dram_w, g.count, notes)
            return [Repeat(tuple(one), g.count)]
        if inst > 1:  # one pass over the distinct instances, repeated (batch x heads)
            times = max(g.count // inst, 1)
            nodes: list[Node] = []
            for i in range(inst):
                nodes.extend(self._rep(g, per_inst[i], fmt, hw, True, tot, dram, dram_w, times, notes))
            return [Repeat(tuple(nodes), times)] if times > 1 else nodes
        first = self._rep(g, per_inst[0], fmt, hw, True, tot, dram, dram_w, 1, notes)
        if g.count == 1:
            return first
        rest = self._rep(g, per_inst[0], fmt, hw, not keep_ce, tot, dram, dram_w, g.count - 1)
        return [*first, Repeat(tuple(rest), g.count - 1)]

    def _rep(self, g: Gemm, tiles: list[ChannelTile], fmt: _Fmt, hw: SmartExchangeAccelerator, load_weights: bool,
             tot: dict[str, float], dram: dict[str, int], dram_w: dict[str, int], times: int,
             notes: list[str] | None = None) -> list[Node]:
        """One repetition of ``g`` in the loop order with less DRAM traffic; counters added ``times`` times.

        *Channel-outer*: each channel tile's Ce/B is loaded once (when it fits half the
        ``ce_buffer``) and its pixel tiles follow; activations are re-fetched per channel tile
        unless the whole input fits half the ``act_buffer``. *Pixel-outer*: each pixel tile's
        activations are loaded once and all channel tiles run on it; Ce/B are re-fetched (and
        rebuilt) per pixel tile unless all of them fit half the ``ce_buffer``.
        """
        m = g.m
        ab = fmt.ab
        n_pt = ceil_div(m, hw.pe_cols)
        charge_tiles(n_pt * (1 + sum(int(ct.cycles.shape[0]) for ct in tiles)), "PE array (pixel x channel tiles)")
        pix = [(p * hw.pe_cols, min((p + 1) * hw.pe_cols, m)) for p in range(n_pt)]
        a_words = [g.a_words_for_rows(lo, hi) for lo, hi in pix]
        a_resident = g.a_unique * g.count * fmt.a_bits("buf") <= hw.act_buffer.size_bits // 2
        a_dram = fmt.a_dram if fmt.a_dram is not None else ActStorage(float(ab), 0.0)
        cap_ce = hw.ce_buffer.size_bits // 2
        rate = hw.rebuild_shift_adders
        ce_bits = [int(ct.ce_value_bits.sum() + ct.ce_index_bits.sum()) + ct.basis_bits for ct in tiles]
        a_bits = sum(a_words) * fmt.a_bits("dram")
        w_all = sum(ce_bits)
        traffic_c = a_bits * (1 if a_resident else len(tiles)) + sum(
            b * (1 if b <= cap_ce else n_pt) for b in ce_bits) * load_weights
        w_resident_all = w_all <= cap_ce
        traffic_p = a_bits + w_all * (1 if w_resident_all else n_pt) * load_weights
        pixel_outer = traffic_p < traffic_c
        if notes is not None and pixel_outer:
            notes.append("loop order: pixel tiles outer (re-fetching Ce/B is cheaper than re-fetching activations)")
        t = dict.fromkeys(tot, 0)
        dr = dict.fromkeys(dram, 0)
        dw = dict.fromkeys(dram_w, 0)

        def sub_tiles(ct: ChannelTile, p: int, fetch_a: bool, load_ce: bool, rebuild: bool) -> list[Tile]:
            lo, hi = pix[p]
            chunks = ct.cycles.shape[0]
            sub: list[Tile] = []
            for qi in range(chunks):
                load = 0
                if qi == 0 and fetch_a:
                    pay, meta = InputFormats.split(a_words[p], a_dram)
                    load += pay + meta
                    dr["ifmap"] += pay
                    dr["ifmap_meta"] += meta
                    t["a_fill_words"] += a_words[p]
                if load_ce:
                    vb, ib = int(ct.ce_value_bits[qi]), int(ct.ce_index_bits[qi])
                    bb = ct.basis_bits if qi == 0 else 0
                    load += vb + ib + bb
                    dr["filter"] += vb
                    dr["index"] += ib
                    dr["basis"] += bb
                dec = 0
                if rebuild:
                    sh = int(ct.shift_adds[qi])
                    dec = ceil_div(sh, rate)
                    t["shift"] += sh
                    t["rebuilt"] += int(ct.active[qi])
                    t["ce_reads_bits"] += int(ct.ce_value_bits[qi] + ct.ce_index_bits[qi])
                    t["decode_cycles"] += dec
                base_cyc = int(ct.cycles[qi])
                run_cyc = base_cyc
                if ct.act is not None and hw.act_zero == "skip":
                    run_cyc = ct.act.run_cycles(p, hi - lo, qi)
                    t["act_flag_bits"] += base_cyc
                cyc = run_cyc + (hw.tile_overhead_cycles if qi == chunks - 1 else 0)
                store = 0
                if qi == chunks - 1:
                    outs = ct.lines * (hi - lo)
                    store = outs * ab
                    dw["ofmap"] += store
                    t["outputs"] += outs
                if ct.act is not None:  # gated: only non-zero activations multiply
                    t["macs"] += float(ct.act.macs_per_pixel[qi]) * (hi - lo)
                else:
                    t["macs"] += int(ct.active[qi]) * (hi - lo)
                t["wbuf_reads"] += int(ct.active[qi]) * (run_cyc / base_cyc if base_cyc else 1.0)
                t["act_reads"] += run_cyc * (hi - lo)
                sub.append(Tile(load, cyc, store, dec))
            return sub

        if not pixel_outer:
            per_ct: list[tuple[Node, ...]] = []
            for ct_i, ct in enumerate(tiles):
                ce_resident = ce_bits[ct_i] <= cap_ce
                rebuild_once = ct.cycles.shape[0] == 1
                blocks = [tuple(sub_tiles(ct, p, (not a_resident) or ct_i == 0,
                                          load_weights and (p == 0 or not ce_resident),
                                          fmt.se and (p == 0 or not rebuild_once)))
                          for p in range(n_pt)]
                per_ct.append(tuple(compress_periodic(blocks)))  # type: ignore[arg-type]
            nodes = compress_periodic(per_ct)  # identical channel tiles in a row
        else:
            blocks = []
            for p in range(n_pt):
                blk: list[Tile] = []
                for ct_i, ct in enumerate(tiles):
                    blk.extend(sub_tiles(ct, p, ct_i == 0, load_weights and (p == 0 or not w_resident_all), fmt.se))
                blocks.append(tuple(blk))
            nodes = compress_periodic(blocks)  # type: ignore[arg-type]
        for src, dst in ((t, tot), (dr, dram), (dw, dram_w)):
            for key, val in src.items():
                dst[key] += val * times
        return nodes

    def _lower_vector(self, layer: Elementwise | Pool, hw: SmartExchangeAccelerator) -> LayerProgram:
        prog = buffered_vector_program(layer, lanes=hw.pe_cols, in_buffer="act_buffer", in_buffer_bits=hw.act_buffer.size_bits,
                                       out_buffer="out_buffer", engine="smartexchange.vector")
        prog.notes.extend(vector_format_notes(hw.sparsity, "smartexchange"))
        return prog
