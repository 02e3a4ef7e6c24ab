"""Hand a trained model to the front-end's exporter (:func:`accelsim.frontend.export`).

The training methods describe their result as :class:`~.metrics.LayerCompression` records;
:func:`to_compressed_model` turns them into the front-end's :class:`~..compressor.CompressedModel`
(one :class:`~..compressor.UnitState` per layer: prune spec, mask, quantisation) so the exporter
writes the same IR as a one-shot recipe would: shrunk shapes for filter pruning, masks for
unstructured / block / pattern sparsity, bit-widths. Float layers export with the IR's default
8-bit quantisation (the simulated hardware's dense baseline).
"""
from __future__ import annotations

from typing import Any

from .._deps import require_torch
from .metrics import LayerCompression

torch = require_torch()
nn = torch.nn


def _quant_spec(rec: LayerCompression) -> Any:
    from ..recipe import QuantSpec

    if rec.scheme == "float":
        return None
    ab = min(max(int(rec.act_bits), 1), 16)
    if rec.scheme == "binary" or rec.weight_bits == 1:
        return QuantSpec(weight_bits=1, act_bits=ab, scheme="binary", granularity=rec.granularity)
    if rec.scheme == "ternary":
        return QuantSpec(weight_bits=2, act_bits=ab, scheme="ternary", granularity=rec.granularity)
    scheme = "pow2" if rec.scheme == "pow2" else "int"
    return QuantSpec(weight_bits=min(max(int(rec.weight_bits), 2), 16), act_bits=ab, scheme=scheme,
                     granularity=rec.granularity)


def to_compressed_model(model: "nn.Module", records: dict[str, LayerCompression], method: str = "training") -> Any:
    """A front-end ``CompressedModel`` wrapping ``model`` (not copied) with one unit per record."""
    from ..compressor import CompressedModel, UnitState

    cm = CompressedModel(model)
    for name, rec in records.items():
        m = model.get_submodule(name)
        kind = "conv2d" if isinstance(m, nn.Conv2d) else "linear"
        masks = {"weight": rec.mask.bool()} if rec.mask is not None and rec.prune is not None else {}
        params = ["weight"]
        if isinstance(m, (nn.LSTM, nn.GRU)):  # recurrent: one mask per weight_ih_lK / weight_hh_lK
            kind = "lstm"
            params = [n for n, _ in m.named_parameters(recurse=False) if n.startswith("weight_")]
            pm = rec.param_masks or {}
            masks = {n: pm[n].bool() for n in params if n in pm} if rec.prune is not None else {}
        unit = UnitState(name=name, type=kind, group=name, params=params, prune=rec.prune if masks else None,
                         masks=masks, quant=_quant_spec(rec))
        for key, value in rec.unit_fields.items():
            setattr(unit, key, value)
        cm.units[name] = unit
    cm.recipes.append(method)
    return cm


def export_trained(model: "nn.Module", records: dict[str, LayerCompression], example_input: "torch.Tensor",
                   name: str, method: str = "training", dynamic: dict[str, Any] | None = None,
                   notes: list[str] | None = None) -> Any:
    """The :class:`~accelsim.workload.Workload` of a trained model (masks attached in memory).

    ``dynamic`` maps layer names to :class:`~accelsim.workload.compression.DynamicPrecision`
    records (DFS: the measured per-input width distribution), set on those layers' compression;
    ``notes`` are added to the workload's notes."""
    from ..exporter import export

    wl = export(to_compressed_model(model, records, method), example_input, name=name)
    if not dynamic and not notes:
        return wl
    missing = sorted(set(dynamic or {}) - {layer.name for layer in wl.layers})
    if missing:
        raise ValueError(f"dynamic records name layers the export does not have: {missing}")
    layers = [layer.model_copy(update={"compression": layer.compression.model_copy(
        update={"dynamic_precision": (dynamic or {})[layer.name]})}) if layer.name in (dynamic or {}) else layer
        for layer in wl.layers]
    return wl.with_layers(layers, notes=list(wl.notes) + list(notes or []))


__all__ = ["to_compressed_model", "export_trained"]
