"""Apply a recipe to a PyTorch model: :func:`compress` and the step-by-step :func:`prune`,
:func:`quantize`, :func:`factorize`, :func:`smartexchange`.

The result is a :class:`CompressedModel`: the (copied) model plus one :class:`UnitState` per
compressed leaf module (conv, linear, LSTM/GRU, or a part of a factorised layer). Order of the
steps: factorise / SmartExchange, then prune (masks computed on the factorised weights), then
quantise. Conv and linear weights get a ``torch.nn.utils.parametrize`` projection
``W -> Q(W * mask)`` with a straight-through estimator, so the model can be fine-tuned directly
(the float weights train, the forward uses pruned and quantised ones); activations of quantised
layers are fake-quantised by a forward pre-hook. LSTM/GRU weights are projected in place
(call :meth:`CompressedModel.reproject` after optimiser steps when fine-tuning them).
SmartExchange weights are rebuilt from Ce and B and frozen (``requires_grad = False``).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import ConfigError
from . import factorization as fz
from . import pruning as pr
from . import quantization as qz
from ._deps import require_torch
from .recipe import (LayerInfo, LayerPlan, QuantSpec, Recipe, load_recipe, resolve)
from .exporter import export
from .smart_exchange import decompose
from .state import UnitState

torch = require_torch()
nn = torch.nn
parametrize = torch.nn.utils.parametrize


class _Projector(nn.Module):
    """Parametrisation ``W -> Q(W * mask)`` (straight-through for the quantiser)."""

    def __init__(self, mask: "torch.Tensor | None", quant: QuantSpec | None):
        super().__init__()
        self.register_buffer("mask", mask.clone() if mask is not None else None)
        self.quant = quant

    def forward(self, w: "torch.Tensor") -> "torch.Tensor":
        if self.mask is not None:
            w = w * self.mask.to(w.dtype)
        if self.quant is not None:
            q = qz.quantize_weight(w, self.quant)
            if self.mask is not None:
                q = q * self.mask.to(w.dtype)
            w = w + (q - w).detach()
        return w


class _ChannelMask(nn.Module):
    """Parametrisation ``p -> p * keep`` over dim 0 (bias / batch-norm affine of removed channels)."""

    def __init__(self, keep: "torch.Tensor"):
        super().__init__()
        self.register_buffer("keep", keep.to(torch.bool).clone())

    def forward(self, p: "torch.Tensor") -> "torch.Tensor":
        return p * self.keep.to(p.dtype)


def _act_hook(bits: int) -> Callable[..., Any]:
    def hook(module: "nn.Module", args: tuple[Any, ...]) -> Any:
        if args and torch.is_tensor(args[0]) and args[0].is_floating_point():
            return (qz.fake_quant_activation(args[0], bits),) + tuple(args[1:])
        return None
    return hook


def _is_rnn(m: "nn.Module") -> bool:
    return isinstance(m, (nn.LSTM, nn.GRU))


def layer_infos(model: "nn.Module") -> list[LayerInfo]:
    """The compressible leaf layers of ``model`` in definition order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            k = tuple(m.kernel_size)
            out.append(LayerInfo(name, "conv2d", k, m.in_channels // m.groups * k[0] * k[1], m.out_channels, m.groups))
        elif isinstance(m, nn.Linear):
            out.append(LayerInfo(name, "linear", (1, 1), m.in_features, m.out_features))
        elif _is_rnn(m):
            gates = 4 if isinstance(m, nn.LSTM) else 3
            out.append(LayerInfo(name, "lstm", (1, 1), m.input_size + m.hidden_size, gates * m.hidden_size))
        elif isinstance(m, nn.MultiheadAttention):
            out.append(LayerInfo(name, "attention", (1, 1), m.embed_dim, m.num_heads))
    return out


def _weight_params(m: "nn.Module") -> list[str]:
    if isinstance(m, nn.MultiheadAttention):
        from .heads import projection_params

        return projection_params(m)
    if _is_rnn(m):
        return [n for n, _ in m.named_parameters(recurse=False) if n.startswith("weight_")]
    return ["weight"]


def _get(model: "nn.Module", name: str) -> "nn.Module":
    return model.get_submodule(name)


def _set(model: "nn.Module", name: str, module: "nn.Module") -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _raw_weight(m: "nn.Module", p: str) -> "torch.Tensor":
    """The underlying float parameter (not the parametrised view)."""
    if parametrize.is_parametrized(m, p):
        return getattr(m.parametrizations, p).original
    return getattr(m, p)


class CompressedModel:
    """A model with compression applied and the per-layer state needed to export it."""

    def __init__(self, model: "nn.Module", original: "nn.Module | None" = None):
        self.model = model
        self.original = original
        self.units: dict[str, UnitState] = {}
        self.notes: list[str] = []
        self.recipes: list[str] = []
        self._hooks: dict[str, Any] = {}
        self._channel_params: list[tuple[str, str]] = []  # (module, param) carrying a _ChannelMask
        self._prune_version = 0
        self._synced_version = 0
        self._example_input: Any = None
        self.act_qparams: dict[str, Any] = {}  # static activation grids set by ptq.calibrate

    # --- inspection ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"CompressedModel({len(self.units)} compressed layers, recipes={self.recipes})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def mask(self, name: str) -> "torch.Tensor | None":
        """The weight mask of leaf ``name`` in the layout the exporter writes (LSTM: [W_ih | W_hh])."""
        u = self.units.get(name)
        if u is None or not u.masks:
            return None
        if len(u.params) == 1:
            return u.masks[u.params[0]]
        return None

    # --- projections ---------------------------------------------------------------------------
    def _install(self, unit: UnitState) -> None:
        m = _get(self.model, unit.name)
        if unit.smartexchange is not None:
            return
        for p in unit.params:
            mask = unit.masks.get(p)
            if unit.type == "lstm":
                with torch.no_grad():
                    w = getattr(m, p)
                    new = w * mask.to(w.dtype) if mask is not None else w.clone()
                    if unit.quant is not None:
                        q = qz.quantize_weight(new, unit.quant)
                        new = q * mask.to(w.dtype) if mask is not None else q
                    w.copy_(new)
                continue
            if parametrize.is_parametrized(m, p):
                parametrize.remove_parametrizations(m, p, leave_parametrized=False)
            if mask is not None or unit.quant is not None:
                parametrize.register_parametrization(m, p, _Projector(mask, unit.quant))
        old = self._hooks.pop(unit.name, None)
        if old is not None:
            old.remove()
        if unit.quant is not None and unit.quant.act_bits < 16:
            self._hooks[unit.name] = m.register_forward_pre_hook(_act_hook(unit.quant.act_bits))

    @contextmanager
    def without_act_quant(self) -> Iterator[None]:
        """Within the block, activations are not fake-quantised (shape / MAC passes of the exporter)."""
        saved = {name: h for name, h in self._hooks.items()}
        for h in saved.values():
            h.remove()
        self._hooks = {}
        try:
            yield
        finally:
            for u in self.units.values():
                if u.name in saved and u.quant is not None and u.quant.act_bits < 16:
                    m = _get(self.model, u.name)
                    self._hooks[u.name] = m.register_forward_pre_hook(_act_hook(u.quant.act_bits))

    def reproject(self) -> None:
        """Re-apply masks/quantisation to weights projected in place (LSTM/GRU) after an optimiser step."""
        for u in self.units.values():
            if u.type == "lstm":
                self._install(u)

    def freeze(self) -> "nn.Module":
        """The model with parametrisations baked into plain weights (for inference/export elsewhere)."""
        for u in self.units.values():
            m = _get(self.model, u.name)
            for p in u.params:
                if parametrize.is_parametrized(m, p):
                    parametrize.remove_parametrizations(m, p, leave_parametrized=True)
        for mod, p in self._channel_params:
            m = _get(self.model, mod)
            if parametrize.is_parametrized(m, p):
                parametrize.remove_parametrizations(m, p, leave_parametrized=True)
        self._channel_params = []
        return self.model

    # --- structural pruning -------------------------------------------------------------------------
    @property
    def needs_channel_sync(self) -> bool:
        """Whether filter / channel masks changed since the removed channels were last zeroed."""
        return self._prune_version != self._synced_version

    def sync_channel_masks(self, example_input: Any) -> None:
        """Make every channel the channel analysis (:func:`.graph.liveness`) calls removed exactly
        zero: mask the bias of conv / linear layers for their removed outputs and the affine
        parameters of batch norms on removed channels (Li et al. 2017 remove the feature map with
        its filter). Then the masked model computes what :meth:`pruned_module` computes. Runs when
        ``compress`` is given ``example_input``, otherwise on the first export / ``pruned_module``."""
        from .graph import liveness, op_kind, record_shapes, trace

        self._example_input = example_input if example_input is not None else self._example_input
        self._synced_version = self._prune_version
        for mod, p in self._channel_params:
            m = _get(self.model, mod)
            if parametrize.is_parametrized(m, p):
                parametrize.remove_parametrizations(m, p, leave_parametrized=False)
        self._channel_params = []
        if not any(u.prune is not None and u.prune.kind in ("filter", "channel") for u in self.units.values()):
            return
        try:
            gm = trace(self.model)
            was = self.model.training
            self.model.eval()
            try:
                record_shapes(gm, example_input)
            finally:
                self.model.train(was)
        except Exception as exc:  # untraceable: removed channels keep their bias / BN shift
            self.notes.append(f"filter pruning: fx cannot trace the model ({type(exc).__name__}); biases and batch "
                              f"norms of removed channels are not zeroed")
            return
        lv = liveness(gm, self.units.get)
        modules = dict(gm.named_modules())
        for node in gm.graph.nodes:
            kind = op_kind(node, modules)
            if kind in ("conv", "linear") and node in lv.keeps:
                keep = lv.keeps[node].keep_out
                m = modules[node.target]
                if not keep.all() and getattr(m, "bias", None) is not None:
                    self._mask_param(node.target, "bias", keep)
            elif kind == "channelwise" and node.op == "call_module":
                m = modules[node.target]
                alive = lv.of(node)
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and alive is not None and m.affine:
                    self._mask_param(node.target, "weight", alive)
                    self._mask_param(node.target, "bias", alive)

    def _mask_param(self, mod: str, p: str, keep: Any) -> None:
        m = _get(self.model, mod)
        if (mod, p) in self._channel_params:
            return
        ref = getattr(m, p)
        parametrize.register_parametrization(m, p, _ChannelMask(torch.as_tensor(keep, device=ref.device)))
        self._channel_params.append((mod, p))

    def pruned_module(self, example_input: Any = None) -> "nn.Module":
        """A new, physically smaller module computing what the masked model computes (see
        :func:`.surgery.pruned_module`); the masked model is not changed (beyond
        :meth:`sync_channel_masks`)."""
        from .surgery import pruned_module

        x = example_input if example_input is not None else self._example_input
        if x is None:
            raise ConfigError("pruned_module needs an example input (or compress(..., example_input=x))",
                              source="pruned_module", field="example_input")
        return pruned_module(self, x)

    # --- recipe application -------------------------------------------------------------------
    def apply(self, recipe: Recipe, source: str = "recipe", example_input: Any = None,
              sensitivity: Callable[[str, int], float] | None = None) -> "CompressedModel":
        infos = [i for i in layer_infos(self.model) if not self._is_part(i.name)]
        plans, notes = resolve(recipe, infos, source)
        self.notes += notes
        self.recipes.append(recipe.name)
        torch.manual_seed(recipe.seed)
        info_by = {i.name: i for i in infos}
        for name, plan in plans.items():
            if plan.factorize is not None:
                self._factorize(name, plan, info_by[name])
            elif plan.smartexchange is not None:
                self._smartexchange(name, plan, info_by[name])
        self._prune(plans, info_by)
        if example_input is not None:
            self._example_input = example_input
            if self.needs_channel_sync:
                self.sync_channel_masks(example_input)
        self._quantize(plans, info_by, recipe, example_input, sensitivity)
        return self

    def _is_part(self, name: str) -> bool:
        return any(name == u.name and u.factor is not None for u in self.units.values()) or any(
            name.startswith(g + ".") for g in {u.group for u in self.units.values() if u.factor is not None})

    def _unit(self, name: str, type_: str, group: str | None = None) -> UnitState:
        if name not in self.units:
            m = _get(self.model, name)
            self.units[name] = UnitState(name, type_, group or name, _weight_params(m))
        return self.units[name]

    def _units_of(self, group: str) -> list[UnitState]:
        us = [u for u in self.units.values() if u.group == group]
        return sorted(us, key=lambda u: u.part)

    def _factorize(self, name: str, plan: LayerPlan, info: LayerInfo) -> None:
        m = _get(self.model, name)
        before = sum(p.numel() for n, p in m.named_parameters() if "weight" in n)
        new = fz.factorize_linear(m, plan.factorize) if info.type == "linear" else fz.factorize_conv(m, plan.factorize)
        after = sum(p.numel() for n, p in new.named_parameters() if "weight" in n)
        if after >= before:
            self.notes.append(f"factorize not applied to {name}: rank {fz.factor_record(new)} keeps {after} >= {before} weights")
            return
        if info.type == "linear":
            original = {"in_features": m.in_features, "out_features": m.out_features}
        else:
            original = {"in_channels": m.in_channels, "out_channels": m.out_channels,
                        "kernel_h": m.kernel_size[0], "kernel_w": m.kernel_size[1]}
        _set(self.model, name, new)
        record = fz.factor_record(new)
        for i, child in enumerate(fz.parts(new)):
            u = self._unit(f"{name}.{child}", info.type, group=name)
            u.factor, u.part, u.original = record, i, original

    def _smartexchange(self, name: str, plan: LayerPlan, info: LayerInfo) -> None:
        spec = plan.smartexchange
        m = _get(self.model, name)
        res = decompose(m.weight.detach(), spec.basis_size, spec.ce_density, spec.ce_bits, spec.basis_bits, spec.iterations)
        with torch.no_grad():
            m.weight.copy_(res.weight)
        m.weight.requires_grad_(False)
        u = self._unit(name, info.type)
        u.smartexchange = res
        u.factor = {"kind": "smartexchange", "basis_size": res.basis_size, "ce_density": res.ce_density,
                    "ce_bits": res.ce_bits, "basis_bits": res.basis_bits}
        zero = res.weight == 0
        if bool(zero.any()):
            u.masks["weight"] = ~zero

    def _prune(self, plans: dict[str, LayerPlan], info_by: dict[str, LayerInfo]) -> None:
        groups: dict[Any, list[UnitState]] = {}
        for name, plan in plans.items():
            if plan.prune is None:
                continue
            for u in (self._units_of(name) or [self._unit(name, info_by[name].type)]):
                if u.smartexchange is not None:
                    self.notes.append(f"prune not applied to {u.name}: SmartExchange sets its own sparsity")
                    continue
                if u.factor is not None and plan.prune.kind in ("pattern", "nm"):
                    m = _get(self.model, u.name)
                    w = _raw_weight(m, "weight")
                    if plan.prune.kind == "pattern" and tuple(w.shape[2:]) != (3, 3):
                        continue
                    if plan.prune.kind == "nm" and w[0].numel() % plan.prune.m:
                        self.notes.append(f"prune not applied to {u.name}: reduction not a multiple of m")
                        continue
                groups.setdefault(plan.prune, []).append(u)
        for spec, units in groups.items():
            if spec.kind == "head":
                self._prune_heads(spec, units)
                continue
            weights = {}
            for u in units:
                m = _get(self.model, u.name)
                for p in u.params:
                    w = _raw_weight(m, p).detach()
                    old = u.masks.get(p)
                    weights[(u.name, p)] = w * old if old is not None else w
            if spec.kind == "unstructured" and spec.scope == "global":
                masks = pr.global_unstructured_masks(weights, spec.density)
            elif spec.kind == "pattern":
                lib = pr.pattern_library(list(weights.values()), spec.entries, spec.num_patterns)
                masks = {}
                for key, w in weights.items():
                    res = pr.pattern_mask(w, lib, spec.kernel_density)
                    masks[key] = res.mask
                    self.units[key[0]].pattern = res
            elif spec.kind == "gs":
                masks = {}
                for key, w in weights.items():
                    res = pr.gs_mask(w, spec.density, spec.group_rows)
                    masks[key] = res.mask
                    self.units[key[0]].gs = res
            elif spec.kind == "filter":  # grouped (non-depthwise) convs keep equal counts per group
                masks = {key: pr.filter_mask(w, spec.density, spec.norm, _filter_groups(_get(self.model, key[0])))
                         for key, w in weights.items()}
            else:
                masks = {key: pr.project_sparsity(w, spec) for key, w in weights.items()}
            for (uname, p), mask in masks.items():
                u = self.units[uname]
                old = u.masks.get(p)
                u.masks[p] = mask & old if old is not None else mask
                u.prune = spec
            if spec.kind in ("filter", "channel"):
                self._prune_version += 1

    def _prune_heads(self, spec: Any, units: list[UnitState]) -> None:
        """Head pruning of attention units (:mod:`.heads`): zero the removed heads' Q/K/V rows."""
        from . import heads

        for u in units:
            m = _get(self.model, u.name)
            why = heads.check_supported(m)
            if why is not None:
                raise ConfigError(f"{why} ({u.name})", source="recipe", field="prune.head")
            keep = heads.keep_heads(m, spec.density, spec.criterion)
            for p, mask in heads.head_masks(m, keep).items():
                old = u.masks.get(p)
                u.masks[p] = mask & old if old is not None else mask
            u.prune = spec

    def _quantize(self, plans: dict[str, LayerPlan], info_by: dict[str, LayerInfo], recipe: Recipe, example_input: Any,
                  sensitivity: Callable[[str, int], float] | None) -> None:
        mp = recipe.mixed_precision
        targets: dict[str, QuantSpec] = {}
        for name, plan in plans.items():
            if plan.quantize is not None:
                targets[name] = plan.quantize
            elif mp is not None and "quantize" not in plan.explicit and info_by[name].type in recipe.types \
                    and info_by[name].type != "attention":
                targets[name] = QuantSpec(act_bits=mp.act_bits)
        if mp is not None:
            targets = self._mixed_precision(targets, mp, example_input, sensitivity)
        touched = set()
        for name, spec in targets.items():
            units = self._units_of(name) or [self._unit(name, _type_of(self.model, name))]
            for u in units:
                u.quant = spec
                touched.add(u.name)
        for u in self.units.values():
            if u.masks or u.name in touched:
                self._install(u)

    def _mixed_precision(self, targets: dict[str, QuantSpec], mp: Any, example_input: Any,
                         sensitivity: Callable[[str, int], float] | None) -> dict[str, QuantSpec]:
        macs: dict[str, int] = {}
        if mp.budget == "bops":
            if example_input is None:
                raise ConfigError("mixed precision with a BOPs budget needs example_input (to count MACs)",
                                  source="recipe", field="mixed_precision.budget")
            wl = export(self, example_input, strict=False)
            for layer in wl.layers:
                group = self.units[layer.name].group if layer.name in self.units else layer.name
                d = layer.compression.sparsity.effective_density
                macs[group] = macs.get(group, 0) + int(layer.macs * d)
        info: dict[str, dict[str, Any]] = {}
        for name in targets:
            units = self._units_of(name) or [None]
            ws, nnz = [], 0
            for u in units:
                uname = u.name if u is not None else name
                m = _get(self.model, uname)
                for p in _weight_params(m):
                    w = getattr(m, p).detach()
                    ws.append(w.reshape(-1))
                    nnz += int((w != 0).sum())
            info[name] = {"weight": torch.cat(ws), "macs": macs.get(name, 0), "nnz": nnz}
        bits, summary = qz.assign_bits(info, mp.candidates, mp.budget, mp.budget_fraction, mp.act_bits,
                                       sensitivity, granularity="tensor", method=mp.method)
        if not summary["met"]:
            self.notes.append(f"mixed precision: budget {mp.budget_fraction:g} of the 8-bit {mp.budget} not met "
                              f"with candidates {mp.candidates}; reached {summary['cost'] / summary['reference']:.3f}")
        out = {}
        for name, spec in targets.items():
            base = spec or QuantSpec()
            b = bits[name]
            fields = base.model_dump()
            fields.update(weight_bits=b, act_bits=mp.act_bits, scheme="binary" if b == 1 else "int")
            out[name] = QuantSpec(**fields)
        return out


def _filter_groups(m: Any) -> int:
    """Groups of a grouped, non-depthwise conv (filter pruning per group), else 1."""
    g = getattr(m, "groups", 1)
    if isinstance(m, nn.Conv2d) and g > 1 and not (g == m.in_channels and m.out_channels == g):
        return int(g)
    return 1


def _type_of(model: "nn.Module", name: str) -> str:
    m = _get(model, name)
    return "conv2d" if isinstance(m, nn.Conv2d) else "lstm" if _is_rnn(m) else "linear"


# --- public API ---------------------------------------------------------------------------------

def _as_cm(model: "nn.Module | CompressedModel", inplace: bool) -> CompressedModel:
    if isinstance(model, CompressedModel):
        return model
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}", source="compress", field="model")
    work = model if inplace else copy.deepcopy(model)
    return CompressedModel(work, original=model)


def compress(model: "nn.Module | CompressedModel", recipe: "str | Path | dict[str, Any] | Recipe",
             example_input: Any = None, *, inplace: bool = False,
             sensitivity: Callable[[str, int], float] | None = None) -> CompressedModel:
    """Apply ``recipe`` (YAML path, dict or :class:`Recipe`) to a copy of ``model`` (or in place).

    ``example_input`` is needed only for mixed precision under a BOPs budget; ``sensitivity``
    optionally replaces the default quantisation sensitivity (see :func:`.quantization.assign_bits`).
    """
    source = str(recipe) if isinstance(recipe, (str, Path)) else "recipe"
    rec = load_recipe(recipe)
    return _as_cm(model, inplace).apply(rec, source, example_input, sensitivity)


def _single(section: str, spec: Any, layers: "list[str] | str | None", types: list[str] | None = None) -> Recipe:
    data: dict[str, Any] = {"name": section}
    body = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
    if layers is None:
        data[section] = body
    else:
        sel: dict[str, Any] = {"names": list(layers)} if isinstance(layers, (list, tuple)) else {"regex": layers}
        data["overrides"] = [{**sel, section: body}]
    if types is not None:
        data["types"] = types
    return load_recipe(data)


def prune(model: "nn.Module | CompressedModel", spec: Any, layers: "list[str] | str | None" = None,
          inplace: bool = False) -> CompressedModel:
    """Prune with one spec (dict or recipe prune model, e.g. ``{"kind": "nm", "n": 2, "m": 4}``) on all
    eligible layers, or on ``layers`` (list of names, or a regex string)."""
    return _as_cm(model, inplace).apply(_single("prune", spec, layers))


def quantize(model: "nn.Module | CompressedModel", spec: Any, layers: "list[str] | str | None" = None,
             inplace: bool = False) -> CompressedModel:
    """Quantise with one :class:`~.recipe.QuantSpec` (or dict) on all / the given layers."""
    return _as_cm(model, inplace).apply(_single("quantize", spec, layers))


def factorize(model: "nn.Module | CompressedModel", spec: Any, layers: "list[str] | str | None" = None,
              inplace: bool = False) -> CompressedModel:
    """Low-rank factorise (:class:`~.recipe.FactorizeSpec` or dict) all eligible / the given layers."""
    return _as_cm(model, inplace).apply(_single("factorize", spec, layers))


def smartexchange(model: "nn.Module | CompressedModel", spec: Any, layers: "list[str] | str | None" = None,
                  inplace: bool = False) -> CompressedModel:
    """SmartExchange-decompose (:class:`~.recipe.SmartExchangeSpec` or dict) the given layers."""
    return _as_cm(model, inplace).apply(_single("smartexchange", spec, layers))


__all__ = ["CompressedModel", "UnitState", "compress", "prune", "quantize", "factorize", "smartexchange", "layer_infos"]
