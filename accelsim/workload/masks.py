"""Weight masks: layout convention, loading with validation, GEMM views and seeded synthetic masks.

**Layout** (shared with the front-end): a mask is a 0/1 array (bool or uint8; any integer or
float array holding only 0 and 1 is accepted) in the weight's natural (PyTorch) layout:

============  ==========================================  =====================================
op            mask shape                                   GEMM view (rows = outputs x reduction)
============  ==========================================  =====================================
conv2d        (out, in / groups, kh, kw)                   per group: (out/groups, in/groups*kh*kw)
linear        (out, in)                                    (out, in)
matmul        (heads, n, k)  (``b_operand: weight`` only)  per head: (n, k)
lstm / gru    (gates*hidden, input_size + hidden_size):    x-projection: columns [0, input_size);
              ``[W_ih | W_hh]`` side by side                recurrence: the remaining columns
============  ==========================================  =====================================

The reduction axis is the weight's natural flattening, ``weight.reshape(out, -1)`` (input
channel, then kernel row, then kernel column), as the front-end's pruning uses it. Everything
defined "along the reduction axis" follows it: N:M groups are ``m`` consecutive weights in that
order, block columns span it, SmartExchange pieces are ``S`` consecutive weights of it.

**Validation** (:func:`layer_mask`): shape against the layer, values 0/1, measured density
against the declared ``compression.sparsity`` density within :data:`DENSITY_TOLERANCE`
(absolute), and the declared structure (N:M groups, blocks all-or-nothing, GS rows of a group
holding equal non-zero counts). Every failure is a :class:`~accelsim.errors.MaskError` naming
the mask file, the layer and the field.
"""
from __future__ import annotations

import numpy as np

from ..errors import MaskError
from .compression import Sparsity
from .layer import Conv2d, LayerBase, Linear, Matmul, Recurrent
from .workload import Workload

#: allowed |measured density - declared density| (absolute) before a mask is rejected
DENSITY_TOLERANCE = 0.02


# --- layout ---------------------------------------------------------------------------------

def expected_mask_shape(layer: LayerBase) -> tuple[int, ...] | None:
    """The natural weight layout of ``layer`` (None: the layer has no weights)."""
    if isinstance(layer, Conv2d):
        return (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_h, layer.kernel_w)
    if isinstance(layer, Linear):
        return (layer.out_features, layer.in_features)
    if isinstance(layer, Matmul):
        return (layer.heads, layer.n, layer.k) if layer.b_operand == "weight" else None
    if isinstance(layer, Recurrent):
        return (layer.gates * layer.hidden_size, layer.input_size + layer.hidden_size)
    return None


def _layout_text(layer: LayerBase) -> str:
    return {
        "conv2d": "(out, in/groups, kh, kw)", "linear": "(out, in)", "matmul": "(heads, n, k)",
        "lstm": "(gates*hidden, input_size + hidden_size)", "gru": "(gates*hidden, input_size + hidden_size)",
    }.get(layer.op, "(no weights)")


def gemm_weight_views(layer: LayerBase, mask: np.ndarray) -> list[np.ndarray]:
    """Per GEMM of ``layer.gemms()``: a bool array (instances, rows=outputs, reduction).

    ``instances`` is the number of distinct weight matrices of that GEMM (conv groups, heads;
    1 for shared recurrent weights). Views of ``mask`` where numpy allows.
    """
    m = mask if mask.dtype == np.bool_ else mask.astype(bool)
    if isinstance(layer, Conv2d):
        g = layer.groups
        return [m.reshape(g, layer.out_channels // g, -1)]
    if isinstance(layer, Linear):
        return [m.reshape(1, layer.out_features, layer.in_features)]
    if isinstance(layer, Matmul):
        return [m.reshape(layer.heads, layer.n, layer.k)]
    if isinstance(layer, Recurrent):
        i = layer.input_size
        return [m[None, :, :i], m[None, :, i:]]
    raise MaskError(f"layer {layer.name!r} ({layer.op}) has no weights to mask", source=layer.name,
                    field=f"{layer.name}.compression.sparsity.mask")


def mask_from_gemm_views(layer: LayerBase, views: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`gemm_weight_views`: the natural-layout mask (bool)."""
    if isinstance(layer, Recurrent):
        return np.concatenate([views[0][0], views[1][0]], axis=1)
    shape = expected_mask_shape(layer)
    assert shape is not None
    return views[0].reshape(shape)


# --- validation -----------------------------------------------------------------------------

def _mask_source(workload: Workload) -> str:
    return workload.mask_source


def validate_mask(mask: object, layer: LayerBase, *, source: str, tolerance: float = DENSITY_TOLERANCE) -> np.ndarray:
    """Check ``mask`` against ``layer`` and return it as a bool array (see module docstring)."""
    sp = layer.compression.sparsity
    field = f"{layer.name}.compression.sparsity.mask"
    key = sp.mask or "<mask>"
    if not isinstance(mask, np.ndarray):
        raise MaskError(f"mask {key!r} is a {type(mask).__name__}, expected a numpy array", source=source, field=field)
    shape = expected_mask_shape(layer)
    if shape is None:
        raise MaskError(f"layer {layer.name!r} ({layer.op}) has no weights, but names mask {key!r}",
                        source=source, field=field)
    if tuple(mask.shape) != shape:
        raise MaskError(f"mask {key!r} has shape {tuple(mask.shape)}, but layer {layer.name!r} ({layer.op}) "
                        f"needs {_layout_text(layer)} = {shape}", source=source, field=field)
    if mask.dtype == np.bool_:
        out = mask
    elif mask.dtype.kind in "iuf":
        if mask.size and mask.dtype.kind in "iu":
            ok = int(mask.min()) >= 0 and int(mask.max()) <= 1
        else:
            ok = bool(np.all((mask == 0) | (mask == 1)))
        if not ok:
            bad = mask[(mask != 0) & (mask != 1)]
            raise MaskError(f"mask {key!r} must hold only 0 and 1, found {bad.flat[0]!r} "
                            f"({bad.size} such entries)", source=source, field=field)
        out = mask.astype(bool)
    else:
        raise MaskError(f"mask {key!r} has dtype {mask.dtype}, expected bool or 0/1 integers", source=source, field=field)
    measured = float(np.count_nonzero(out)) / out.size if out.size else 1.0
    declared = sp.effective_density
    if abs(measured - declared) > tolerance:
        raise MaskError(f"mask {key!r} has density {measured:.4f}, but the layer declares {sp.kind} density "
                        f"{declared:.4f} (tolerance +-{tolerance:g})", source=source, field=field)
    _check_structure(out, layer, sp, source=source, field=field, key=key)
    return out


def _check_structure(mask: np.ndarray, layer: LayerBase, sp: Sparsity, *, source: str, field: str, key: str) -> None:
    views = gemm_weight_views(layer, mask)
    if sp.kind == "nm":
        n, m = sp.n or 1, sp.m or 1
        for v in views:
            counts = nm_group_counts(v, m)
            worst = int(counts.max()) if counts.size else 0
            if worst > n:
                raise MaskError(f"mask {key!r} breaks the declared {n}:{m} sparsity: a group of {m} consecutive "
                                f"weights holds {worst} non-zeros", source=source, field=field)
    elif sp.kind == "block":
        bh, bw = sp.block_h or 1, sp.block_w or 1
        for v in views:
            kept = block_counts(v, bh, bw)
            full = block_sizes(v.shape[1], v.shape[2], bh, bw)
            partial = (kept > 0) & (kept < full[None])
            if partial.any():
                raise MaskError(f"mask {key!r} has {int(partial.sum())} partially kept {bh}x{bw} blocks; kind 'block' "
                                "keeps or removes whole blocks", source=source, field=field)
    elif sp.kind == "gs":
        g = sp.gs_group_rows or 1
        for v in views:
            nnz = v.sum(axis=2, dtype=np.int64)  # (instances, rows)
            rows = nnz.shape[1]
            pad = (-rows) % g
            if pad:
                last = nnz[:, -(rows % g):]
                if (last.max(axis=1) != last.min(axis=1)).any():
                    raise MaskError(f"mask {key!r} is not a GS pattern: rows of the last group of {rows % g} hold "
                                    "different non-zero counts", source=source, field=field)
                nnz = nnz[:, : rows - rows % g]
            if nnz.size:
                grp = nnz.reshape(nnz.shape[0], -1, g)
                bad = grp.max(axis=2) != grp.min(axis=2)
                if bad.any():
                    i = int(np.argmax(bad.any(axis=0)))
                    raise MaskError(f"mask {key!r} is not a GS pattern: rows {i * g}..{i * g + g - 1} (a group of "
                                    f"gs_group_rows={g}) hold different non-zero counts", source=source, field=field)


def layer_mask(workload: Workload | None, layer: LayerBase, *, tolerance: float = DENSITY_TOLERANCE) -> np.ndarray | None:
    """The validated bool mask of ``layer`` if it names one (and a workload provides it), else None."""
    if workload is None or layer.compression.sparsity.mask is None:
        return None
    raw = workload.mask(layer)
    if raw is None:
        return None
    return validate_mask(raw, layer, source=_mask_source(workload), tolerance=tolerance)


def validate_workload_masks(workload: Workload) -> None:
    """Validate every mask the workload's layers name (done by :func:`accelsim.workload.load_workload`,
    so a bad mask file fails when it loads, not in the middle of a simulation)."""
    if workload.masks is None:
        return
    for layer in workload.layers:
        layer_mask(workload, layer)
        layer_act_mask(workload, layer)


# --- structure counts (shared by the engines) ------------------------------------------------

def nm_group_counts(view: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros in each group of ``m`` consecutive reduction elements: (instances, rows, groups)."""
    inst, rows, k = view.shape
    pad = (-k) % m
    v = view
    if pad:
        v = np.concatenate([view, np.zeros((inst, rows, pad), dtype=bool)], axis=2)
    return v.reshape(inst, rows, -1, m).sum(axis=3, dtype=np.int32)


def block_sizes(rows: int, k: int, bh: int, bw: int) -> np.ndarray:
    """Element count of each (bh x bw) block of a rows x k matrix (edge blocks are smaller)."""
    hs = np.full(-(-rows // bh), bh, dtype=np.int64)
    if rows % bh:
        hs[-1] = rows % bh
    ws = np.full(-(-k // bw), bw, dtype=np.int64)
    if k % bw:
        ws[-1] = k % bw
    return hs[:, None] * ws[None, :]


def block_counts(view: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """Non-zeros per (bh x bw) block: (instances, block rows, block cols)."""
    inst, rows, k = view.shape
    ph, pw = (-rows) % bh, (-k) % bw
    v = view
    if ph or pw:
        v = np.zeros((inst, rows + ph, k + pw), dtype=bool)
        v[:, :rows, :k] = view
    return v.reshape(inst, (rows + ph) // bh, bh, (k + pw) // bw, bw).sum(axis=(2, 4), dtype=np.int64)


# --- synthetic masks (tests, benchmarks, experiments) ---------------------------------------

def synthetic_mask(layer: LayerBase, sparsity: Sparsity | None = None, *, seed: int = 0,
                   row_scale_sigma: float = 0.0) -> np.ndarray:
    """A seeded random mask of ``layer`` (natural layout, uint8) with the declared structure.

    ``unstructured`` keeps the ``density`` fraction of largest ``|N(0,1)| * s_row`` scores, where
    ``s_row = exp(row_scale_sigma * N(0,1))`` varies per output row (magnitude pruning of rows with
    different norms; 0 gives i.i.d. positions). ``block`` keeps a random ``density`` fraction of
    blocks; ``nm`` keeps ``n`` random positions per ``m`` consecutive weights; ``gs`` keeps the same
    random number of positions (``round(density * k)``) in every row (load-balanced by
    construction); ``pattern`` keeps ``kernel_density`` of the kernels, each with one of
    ``num_patterns`` random ``pattern_entries``-element patterns. Exact densities differ from the
    declared one only by rounding (edge blocks, partial N:M groups).
    """
    sp = sparsity or layer.compression.sparsity
    shape = expected_mask_shape(layer)
    if shape is None:
        raise MaskError(f"layer {layer.name!r} ({layer.op}) has no weights to mask", source="synthetic_mask",
                        field=f"{layer.name}.compression.sparsity")
    rng = np.random.default_rng(seed)
    d = sp.effective_density
    out = np.ones(shape, dtype=bool)
    if sp.kind in ("dense", "channel", "filter") or d >= 1.0:
        return out.astype(np.uint8)
    if sp.kind == "unstructured":
        size = out.size
        scores = np.abs(rng.standard_normal(size, dtype=np.float32)).reshape(shape[0], -1)
        if row_scale_sigma > 0:
            scores *= np.exp(row_scale_sigma * rng.standard_normal((shape[0], 1))).astype(np.float32)
        keep = int(round(d * size))
        if keep <= 0:
            return np.zeros(shape, dtype=np.uint8)
        thresh = np.partition(scores.reshape(-1), size - keep)[size - keep]
        return (scores >= thresh).reshape(shape).astype(np.uint8)
    if sp.kind == "pattern" and len(shape) == 4:
        o, c, kh, kw = shape
        entries = min(sp.pattern_entries or 4, kh * kw)
        lib = np.zeros((sp.num_patterns or 8, kh * kw), dtype=np.uint8)
        for p in range(lib.shape[0]):
            lib[p, rng.choice(kh * kw, entries, replace=False)] = 1
        kernels = lib[rng.integers(0, lib.shape[0], size=o * c)]
        kd = sp.kernel_density if sp.kernel_density is not None else min(1.0, d * kh * kw / entries)
        kernels[rng.random(o * c) >= kd] = 0
        return kernels.reshape(shape)
    # block / nm / gs (and pattern on non-conv layers) are defined per GEMM weight matrix
    views = [np.ones(v.shape, dtype=bool) for v in gemm_weight_views(layer, out)]
    for view in views:
        for inst in range(view.shape[0]):
            _fill_structured(view[inst], sp, d, rng)
    return mask_from_gemm_views(layer, views).astype(np.uint8)


def _fill_structured(sub: np.ndarray, sp: Sparsity, d: float, rng: np.random.Generator) -> None:
    rows, k = sub.shape
    if sp.kind == "block":
        bh, bw = sp.block_h or 1, sp.block_w or 1
        nbr, nbc = -(-rows // bh), -(-k // bw)
        nblocks = nbr * nbc
        keep = np.zeros(nblocks, dtype=bool)
        keep[rng.choice(nblocks, int(round(d * nblocks)), replace=False)] = True
        full = np.repeat(np.repeat(keep.reshape(nbr, nbc), bh, axis=0), bw, axis=1)
        sub[...] = full[:rows, :k]
    elif sp.kind == "nm":
        n, m = sp.n or 1, sp.m or 1
        pad = (-k) % m
        scores = rng.random((rows, k + pad))
        if pad:
            scores[:, k:] = -1.0  # never keep padding
        grp = scores.reshape(rows, -1, m)
        order = np.argsort(-grp, axis=2)
        keep = np.zeros_like(grp, dtype=bool)
        np.put_along_axis(keep, order[:, :, :n], True, axis=2)
        sub[...] = keep.reshape(rows, -1)[:, :k]
    elif sp.kind == "gs":
        per_row = int(round(d * k))
        scores = rng.random((rows, k))
        idx = np.argpartition(scores, k - per_row, axis=1)[:, k - per_row:] if per_row else np.zeros((rows, 0), int)
        sub[...] = False
        np.put_along_axis(sub, idx, True, axis=1)
    else:  # unstructured on a 3-D (heads) layout, or anything else: i.i.d. exact count
        keep = int(round(d * rows * k))
        flat = np.zeros(rows * k, dtype=bool)
        flat[rng.choice(rows * k, keep, replace=False)] = True
        sub[...] = flat.reshape(rows, k)


__all__ = [
    "DENSITY_TOLERANCE", "expected_mask_shape", "gemm_weight_views", "mask_from_gemm_views", "validate_mask", "layer_mask",
    "nm_group_counts", "block_counts", "block_sizes", "synthetic_mask",
]


# --- activation masks -------------------------------------------------------------------------

def expected_act_mask_shape(layer: LayerBase) -> tuple[int, ...] | None:
    """Shape of one input of ``layer``'s input-activation mask (None: not supported):
    conv2d ``(in_channels, in_h, in_w)``, linear ``(tokens, in_features)`` (or ``(in_features,)``)."""
    if isinstance(layer, Conv2d):
        return (layer.in_channels, layer.in_h, layer.in_w)
    if isinstance(layer, Linear):
        return (layer.tokens, layer.in_features)
    return None


def layer_act_mask(workload: Workload | None, layer: LayerBase) -> np.ndarray | None:
    """The validated bool input-activation mask of ``layer`` (``compression.act_mask``), shaped
    ``(inputs, *expected_act_mask_shape)``, or None when the layer names none.

    The file holds one or more calibration inputs: conv2d ``(N, C, H, W)`` or ``(C, H, W)``;
    linear ``(N, tokens, features)`` (N inputs), ``(rows, features)`` or ``(features,)`` (one input;
    its rows are cycled over the layer's ``batch x tokens`` GEMM rows). Values 0/1.
    """
    key = layer.compression.act_mask
    if workload is None or key is None:
        return None
    field = f"{layer.name}.compression.act_mask"
    source = _mask_source(workload)
    raw = workload.array(key)
    if raw is None:
        raise MaskError(f"activation mask {key!r} not found in the mask file", source=source, field=field)
    shape = expected_act_mask_shape(layer)
    if shape is None:
        raise MaskError(f"layer {layer.name!r} ({layer.op}): activation masks are supported for conv2d and linear "
                        "layers only", source=source, field=field)
    arr = np.asarray(raw)
    if arr.dtype != np.bool_ and not (arr.dtype.kind in "iuf" and bool(np.all((arr == 0) | (arr == 1)))):
        raise MaskError(f"activation mask {key!r} must hold only 0 and 1", source=source, field=field)
    if isinstance(layer, Linear):
        if arr.ndim == 0 or arr.shape[-1] != layer.in_features:
            raise MaskError(f"activation mask {key!r} has shape {tuple(arr.shape)}, but layer {layer.name!r} needs "
                            f"(..., {layer.in_features}) (last axis = in_features)", source=source, field=field)
        if arr.ndim <= 2:  # one input: (features,) or (rows, features)
            return arr.reshape(1, -1, layer.in_features).astype(bool)
        return arr.reshape(arr.shape[0], -1, layer.in_features).astype(bool)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or tuple(arr.shape[1:]) != shape:
        raise MaskError(f"activation mask {key!r} has shape {tuple(np.shape(raw))}, but layer {layer.name!r} (conv2d) "
                        f"needs (N, {shape[0]}, {shape[1]}, {shape[2]})", source=source, field=field)
    return arr.astype(bool)
