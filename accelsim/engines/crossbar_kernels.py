"""Hot loop of the crossbar engine: non-zeros per crossbar block of a real weight mask (numba)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _block_nnz(mask: np.ndarray, groups: int, rows: int, wcols: int) -> np.ndarray:  # pragma: no cover - jitted
    out_ch, red = mask.shape
    per_group = out_ch // groups
    row_blocks = (red + rows - 1) // rows
    col_blocks = (per_group + wcols - 1) // wcols
    counts = np.zeros((groups, row_blocks, col_blocks), dtype=np.int64)
    for o in range(out_ch):
        g = o // per_group
        c = (o - g * per_group) // wcols
        for k in range(red):
            if mask[o, k] != 0:
                counts[g, k // rows, c] += 1
    return counts


@njit(cache=True)
def _block_nnz_t(mask_t: np.ndarray, groups: int, rows: int, wcols: int) -> np.ndarray:  # pragma: no cover - jitted
    """Same as :func:`_block_nnz` for the transposed mask ``(reduction, out_channels)`` (memory order)."""
    red, out_ch = mask_t.shape
    per_group = out_ch // groups
    row_blocks = (red + rows - 1) // rows
    col_blocks = (per_group + wcols - 1) // wcols
    counts = np.zeros((groups, row_blocks, col_blocks), dtype=np.int64)
    for k in range(red):
        r = k // rows
        for o in range(out_ch):
            if mask_t[k, o] != 0:
                g = o // per_group
                counts[g, r, (o - g * per_group) // wcols] += 1
    return counts


def block_nnz(mask2d: np.ndarray, groups: int, rows: int, wcols: int) -> np.ndarray:
    """Non-zeros per crossbar block, shape ``(groups, row_blocks, col_blocks)``.

    ``mask2d`` is ``(out_channels, reduction)``: output ``o`` belongs to group
    ``o // (out_channels / groups)``; a block spans ``rows`` reduction indices (crossbar rows)
    and ``wcols`` outputs of one group (the weights one crossbar's columns hold).
    """
    if mask2d.ndim != 2:
        raise ValueError("mask2d must be 2-D (out_channels, reduction)")
    if groups < 1 or mask2d.shape[0] % groups:
        raise ValueError(f"{mask2d.shape[0]} output channels do not split into {groups} groups")
    if rows < 1 or wcols < 1:
        raise ValueError("block sizes must be >= 1")
    if mask2d.dtype.itemsize != 1:
        mask2d = mask2d != 0
    if not mask2d.flags.c_contiguous and mask2d.flags.f_contiguous:  # walk memory in order
        return _block_nnz_t(mask2d.T.view(np.uint8), int(groups), int(rows), int(wcols))
    return _block_nnz(np.ascontiguousarray(mask2d).view(np.uint8), int(groups), int(rows), int(wcols))
