"""Per-layer compression metrics of exported workloads: params, non-zeros, size, MACs, BOPs.

Definitions (per layer of a :class:`~accelsim.workload.Workload`):

- ``params``: weight words of the exported shapes (``layer.weight_words``; biases/BN excluded).
- ``nnz``: non-zero weights: the mask's count when the workload has one, else
  ``params * density``. Filter/channel pruning shrinks ``params`` itself.
- ``size_bits``: ``nnz * weight_bits``; SmartExchange layers store ``nnz(Ce) * ce_bits +
  numel(B) * basis_bits`` instead. ``meta_bits``: index metadata (``nnz * index_bits`` for
  N:M / GS formats, ``index_bits`` per kept kernel for patterns, one bit per weight for a
  bitmask), reported separately.
- ``macs``: dense MACs of the exported shapes; ``macs_eff`` = ``macs * weight density`` for
  element-sparse kinds (unstructured, block, nm, pattern, gs).
- ``bops`` = ``macs_eff * weight_bits * act_bits`` (HAWQ-V3 / Bayesian Bits, arXiv 2011.10680);
  activation x activation matmuls use ``act_bits`` for both operands.

No torch needed: this module reads workloads only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..workload import Workload
from ..workload.layer import LayerBase

ELEMENT_SPARSE = {"unstructured", "block", "nm", "pattern", "gs"}
FACTOR_PARTS = {"v", "u", "first", "core", "last"}


@dataclass(frozen=True)
class LayerMetrics:
    layer: str
    group: str  # the original layer a factorised part belongs to
    op: str
    params: int
    nnz: int
    weight_bits: int
    act_bits: int
    size_bits: int
    meta_bits: int
    macs: int
    macs_eff: int
    bops: int


def group_of(layer: LayerBase) -> str:
    """Name of the original layer (factorised parts ``fc.v`` / ``conv.core`` map to ``fc`` / ``conv``)."""
    kind = layer.compression.factorization.kind
    head, _, tail = layer.name.rpartition(".")
    if kind in ("lowrank", "tucker") and tail in FACTOR_PARTS and head:
        return head
    return layer.name


def layer_metrics(wl: Workload) -> list[LayerMetrics]:
    """Metrics of every compute layer of ``wl`` (memory-bound layers are left out)."""
    out = []
    cache = wl._mask_cache or {}
    for layer in wl.layers:
        if not layer.is_compute:
            continue
        c = layer.compression
        sp, q, fac = c.sparsity, c.quant, c.factorization
        params = layer.weight_words
        mask = cache.get(sp.mask) if sp.mask else None
        if mask is None and sp.mask and wl.masks:
            mask = wl.mask(layer)
        density = sp.effective_density
        if sp.kind in ("filter", "channel"):
            nnz = int(mask.sum()) if mask is not None else params
        else:
            nnz = int(mask.sum()) if mask is not None else int(round(params * density))
        wb, ab = q.weight_bits, q.act_bits
        if fac.kind == "smartexchange":
            ce = cache.get(f"{sp.mask}.se_ce") if sp.mask else None
            rows = _rows(layer)
            s = fac.basis_size or 3
            if ce is not None:
                ce_nnz = int((ce != 0).sum())
            else:
                ce_nnz = int(round((fac.ce_density or 1.0) * rows * math.ceil(max(params, 1) / max(rows, 1) / s) * s))
            size = ce_nnz * (fac.ce_bits or 4) + rows * s * s * (fac.basis_bits or 8)
        else:
            size = nnz * wb
        if sp.kind == "dense" or sp.kind in ("filter", "channel"):
            meta = 0
        elif sp.kind == "pattern" and sp.index_bits:  # one pattern id per kept kernel
            meta = math.ceil(nnz / (sp.pattern_entries or 1)) * sp.index_bits
        elif sp.index_bits:
            meta = nnz * sp.index_bits
        else:
            meta = params  # bitmask
        macs = layer.macs
        macs_eff = int(round(macs * density)) if sp.kind in ELEMENT_SPARSE else macs
        if params == 0:  # activation x activation
            nnz, size, meta, wb = 0, 0, 0, ab
        out.append(LayerMetrics(layer.name, group_of(layer), layer.op, params, nnz, wb, ab, size, meta, macs,
                                macs_eff, macs_eff * wb * ab))
    return out


def _rows(layer: LayerBase) -> int:
    return int(getattr(layer, "out_channels", getattr(layer, "out_features", 1)))


def totals(wl: Workload) -> dict[str, int]:
    """Network totals of :func:`layer_metrics`."""
    keys = ("params", "nnz", "size_bits", "meta_bits", "macs", "macs_eff", "bops")
    ms = layer_metrics(wl)
    return {k: sum(getattr(m, k) for m in ms) for k in keys}


def compare(before: Workload, after: Workload) -> Any:
    """Per original layer: before/after metrics and ratios (pandas DataFrame, one row per group,
    plus a ``TOTAL`` row). Factorised parts are summed into their original layer."""
    import pandas as pd

    def frame(wl: Workload) -> Any:
        df = pd.DataFrame([asdict(m) for m in layer_metrics(wl)])
        return df.groupby("group", sort=False).agg(
            op=("op", "first"), params=("params", "sum"), nnz=("nnz", "sum"), weight_bits=("weight_bits", "max"),
            size_bits=("size_bits", "sum"), macs=("macs", "sum"), macs_eff=("macs_eff", "sum"), bops=("bops", "sum"))

    b, a = frame(before), frame(after)
    df = b.add_suffix("_before").join(a.add_suffix("_after"), how="outer")
    df = df.drop(columns=["op_after"]).rename(columns={"op_before": "op"})
    num = [c for c in df.columns if c != "op"]
    df[num] = df[num].fillna(0).astype("int64")
    total = df[num].sum().astype(object)
    total["op"] = ""
    df.loc["TOTAL"] = total
    df["size_ratio"] = df["size_bits_before"] / df["size_bits_after"].where(df["size_bits_after"] > 0)
    df["bops_ratio"] = df["bops_before"] / df["bops_after"].where(df["bops_after"] > 0)
    return df.reset_index().rename(columns={"group": "layer"})


def metrics_table(before: Workload, after: Workload, max_rows: int | None = None) -> str:
    """A plain-text table of :func:`compare` (params, nnz, size, MACs, BOPs before -> after)."""
    df = compare(before, after)
    cols = ["layer", "op", "params_before", "nnz_after", "size_bits_before", "size_bits_after", "macs_before",
            "macs_eff_after", "bops_before", "bops_after", "weight_bits_after"]
    view = df[cols]
    if max_rows is not None and len(view) > max_rows + 1:
        view = view.iloc[list(range(max_rows)) + [len(view) - 1]]
    return view.to_string(index=False)


__all__ = ["LayerMetrics", "layer_metrics", "totals", "compare", "metrics_table", "group_of"]
