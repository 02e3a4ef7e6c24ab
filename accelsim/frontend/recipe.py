"""Compression recipes: a YAML schema (pydantic) and per-layer resolution.

A recipe names default methods for every eligible layer and per-layer overrides selected by
exact name, regular expression (full match) and/or layer type, like SparseML / NNI config lists::

    accelsim_recipe: 1
    name: pattern_4bit
    prune: {kind: pattern, num_patterns: 8, kernel_density: 0.8}
    quantize: {weight_bits: 4, act_bits: 8, granularity: channel}
    overrides:
      - names: [conv1]          # first conv keeps all weights and 8 bits
        prune: null
        quantize: {weight_bits: 8}
      - regex: "fc|classifier\\..*"
        prune: {kind: unstructured, density: 0.5}

Sections: ``prune`` (one of the kinds below), ``quantize``, ``factorize``, ``smartexchange``,
``mixed_precision`` (bits assigned under a BOPs/size budget, see :mod:`.quantize`). An override
merges into the defaults field by field (a different ``kind`` replaces the section); ``null``
removes the section for the matched layers. Layer types are ``conv2d``, ``linear``, ``lstm``
(also GRU) and ``attention`` (``nn.MultiheadAttention``; not in the default ``types``; it takes
only ``prune: {kind: head}``, and an override selecting it by ``regex`` alone changes only its head
pruning -- its ``out_proj`` is a ``linear`` layer of its own). This module does not import torch.

Eligibility: a default (top-level) section is applied only to the layers it fits (``pattern``:
3x3 convs; ``nm``: layers whose reduction length is a multiple of ``m``; ``tucker2``: convs;
``svd``: linear layers); layers skipped that way are listed in the compression notes. A layer
that an override selects explicitly must fit, else the recipe is rejected naming the field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._validation import read_yaml, validate_model
from ..errors import ConfigError

Density = Annotated[float, Field(gt=0.0, le=1.0)]
LayerType = Literal["conv2d", "linear", "lstm", "attention"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- pruning -------------------------------------------------------------------------------------

class UnstructuredPrune(_Spec):
    """Magnitude pruning of single weights (Han et al., NeurIPS 2015, arXiv 1506.02626)."""

    kind: Literal["unstructured"] = "unstructured"
    density: Density
    scope: Literal["layer", "global"] = "layer"


class FilterPrune(_Spec):
    """Remove whole output filters / neurons by L1 or L2 norm (Li et al., ICLR 2017, arXiv 1608.08710)."""

    kind: Literal["filter"] = "filter"
    density: Density
    norm: Literal["l1", "l2"] = "l1"


class ChannelPrune(_Spec):
    """Remove whole input channels (weight columns) by L1 or L2 norm."""

    kind: Literal["channel"] = "channel"
    density: Density
    norm: Literal["l1", "l2"] = "l1"


class BlockPrune(_Spec):
    """Keep the strongest ``block[0] x block[1]`` blocks of the GEMM-view weight (BLK-REW, arXiv 2001.08357)."""

    kind: Literal["block"] = "block"
    density: Density
    block: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] = (4, 4)
    norm: Literal["l1", "l2"] = "l2"


class NMPrune(_Spec):
    """At most ``n`` non-zeros in every ``m`` consecutive weights along the reduction axis."""

    kind: Literal["nm"] = "nm"
    n: Annotated[int, Field(gt=0)]
    m: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _check(self) -> "NMPrune":
        if self.n > self.m:
            raise ValueError(f"N:M needs n <= m, got n={self.n}, m={self.m}")
        return self


class PatternPrune(_Spec):
    """PatDNN kernel patterns + connectivity pruning (Niu et al., ASPLOS 2020, arXiv 2001.00138)."""

    kind: Literal["pattern"] = "pattern"
    entries: Annotated[int, Field(gt=0, le=9)] = 4
    num_patterns: Annotated[int, Field(gt=0)] = 8
    kernel_density: Density = 1.0


class GSPrune(_Spec):
    """Gather-scatter patterns: equal non-zeros per row in groups of rows (Sun et al., arXiv 2112.10898)."""

    kind: Literal["gs"] = "gs"
    density: Density
    group_rows: Annotated[int, Field(gt=0)] = 8


class HeadPrune(_Spec):
    """Remove whole attention heads of ``nn.MultiheadAttention`` (layer type ``attention``), ranked by
    the L2 (or L1) norm of each head's Q/K/V rows and output-projection columns (see :mod:`.heads`)."""

    kind: Literal["head"] = "head"
    density: Density
    criterion: Literal["l2", "l1"] = "l2"


PruneSpec = Annotated[
    Union[UnstructuredPrune, FilterPrune, ChannelPrune, BlockPrune, NMPrune, PatternPrune, GSPrune, HeadPrune],
    Field(discriminator="kind"),
]
PRUNE_KINDS = ("unstructured", "filter", "channel", "block", "nm", "pattern", "gs", "head")


# --- quantisation / factorisation / SmartExchange ---------------------------------------------

class QuantSpec(_Spec):
    """Weight and activation formats (see :mod:`accelsim.frontend.quantize`)."""

    weight_bits: Annotated[int, Field(ge=1, le=16)] = 8
    act_bits: Annotated[int, Field(ge=1, le=16)] = 8
    scheme: Literal["int", "pow2", "binary", "ternary"] = "int"
    granularity: Literal["tensor", "channel"] = "tensor"
    symmetric: bool = True

    @model_validator(mode="after")
    def _check(self) -> "QuantSpec":
        if self.scheme == "binary" and self.weight_bits != 1:
            raise ValueError("scheme 'binary' needs weight_bits 1")
        if self.scheme == "ternary" and self.weight_bits != 2:
            raise ValueError("scheme 'ternary' needs weight_bits 2")
        if self.scheme == "int" and self.weight_bits < 2:
            raise ValueError("scheme 'int' needs weight_bits >= 2 (use scheme 'binary' for 1 bit)")
        if self.scheme == "pow2" and self.weight_bits < 2:
            raise ValueError("scheme 'pow2' needs weight_bits >= 2 (sign + exponent)")
        return self


class MixedPrecisionSpec(_Spec):
    """Assign weight bits per layer from ``candidates`` under a budget (fraction of 8-bit dense cost)."""

    candidates: list[Annotated[int, Field(ge=1, le=16)]] = [2, 4, 8]
    budget: Literal["bops", "size"] = "bops"
    budget_fraction: Density = 0.5
    act_bits: Annotated[int, Field(ge=1, le=16)] = 8
    method: Literal["greedy", "optimal"] = "greedy"  # optimal: exact knapsack (quantization.assign_bits)


class FactorizeSpec(_Spec):
    """Low-rank factorisation: ``svd`` (linear), ``tucker2`` / ``channel`` (conv), ``auto`` (svd for linear,
    tucker2 for k x k convs, channel for 1x1); rank by ``energy`` (kept squared singular values),
    ``vbmf`` or ``fixed`` (``rank`` or ``rank_fraction`` of the full rank). A factorisation that
    would not save parameters is skipped (and noted)."""

    method: Literal["auto", "svd", "tucker2", "channel"] = "auto"
    rank_rule: Literal["energy", "vbmf", "fixed"] = "energy"
    energy: Density = 0.9
    rank_fraction: Density | None = None
    rank: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _check(self) -> "FactorizeSpec":
        if self.rank_rule == "fixed" and self.rank is None and self.rank_fraction is None:
            raise ValueError("rank_rule 'fixed' needs rank or rank_fraction")
        return self


class SmartExchangeSpec(_Spec):
    """W ~ Ce B (Zhao et al., ISCA 2020, arXiv 2005.03403); see :mod:`.smartexchange`."""

    basis_size: Annotated[int, Field(gt=0)] = 3
    ce_density: Density = 0.5
    ce_bits: Annotated[int, Field(ge=2, le=8)] = 4
    basis_bits: Annotated[int, Field(ge=1, le=16)] = 8
    iterations: Annotated[int, Field(ge=1, le=50)] = 4


class Override(_Spec):
    """Sections for the layers selected by ``names`` (exact), ``regex`` (full match) and ``types``."""

    names: list[str] | None = None
    regex: str | None = None
    types: list[LayerType] | None = None
    prune: dict[str, Any] | None = Field(default=None)
    quantize: dict[str, Any] | None = None
    factorize: dict[str, Any] | None = None
    smartexchange: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> "Override":
        if self.names is None and self.regex is None and self.types is None:
            raise ValueError("an override needs names, regex or types to select layers")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.regex!r}: {exc}") from None
        return self


class Recipe(_Spec):
    """A compression recipe (see the module docstring for the YAML form)."""

    accelsim_recipe: Literal[1] = 1
    name: str = "recipe"
    description: str = ""
    types: list[LayerType] = ["conv2d", "linear", "lstm"]
    prune: PruneSpec | None = None
    quantize: QuantSpec | None = None
    factorize: FactorizeSpec | None = None
    smartexchange: SmartExchangeSpec | None = None
    mixed_precision: MixedPrecisionSpec | None = None
    overrides: list[Override] = []
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "Recipe":
        if self.mixed_precision is not None and self.quantize is not None and self.quantize.scheme != "int":
            raise ValueError("mixed_precision assigns integer bit-widths; quantize.scheme must be 'int'")
        return self


# --- resolution ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerInfo:
    """What resolution needs to know about a compressible layer (filled by the torch side)."""

    name: str
    type: str  # conv2d | linear | lstm
    kernel: tuple[int, int] = (1, 1)
    reduction: int = 1  # columns of the GEMM-view weight (in/groups * kh * kw)
    rows: int = 1  # outputs (rows of the GEMM-view weight)
    groups: int = 1


@dataclass
class LayerPlan:
    """The resolved sections for one layer (None = not applied)."""

    name: str
    prune: Any = None
    quantize: QuantSpec | None = None
    factorize: FactorizeSpec | None = None
    smartexchange: SmartExchangeSpec | None = None
    explicit: set[str] = field(default_factory=set)  # sections set by an override selecting this layer

    @property
    def is_empty(self) -> bool:
        return self.prune is None and self.quantize is None and self.factorize is None and self.smartexchange is None


_SECTION_MODELS: dict[str, Any] = {
    "quantize": QuantSpec, "factorize": FactorizeSpec, "smartexchange": SmartExchangeSpec,
}


def _prune_model(data: dict[str, Any], where: str, source: str) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from .._validation import validation_to_config_error

    try:
        return TypeAdapter(PruneSpec).validate_python(data)
    except ValidationError as exc:
        err = validation_to_config_error(exc, source, data)
        raise ConfigError(err.message, source=source, field=f"{where}.{err.field}" if err.field else where) from None


def _section(name: str, data: dict[str, Any], where: str, source: str) -> Any:
    if name == "prune":
        return _prune_model(data, where, source)
    from pydantic import ValidationError

    from .._validation import validation_to_config_error

    try:
        return _SECTION_MODELS[name].model_validate(data)
    except ValidationError as exc:
        err = validation_to_config_error(exc, source, data)
        raise ConfigError(err.message, source=source, field=f"{where}.{err.field}" if err.field else where) from None


def _merge(base: Any, change: dict[str, Any] | None, section: str, where: str, source: str) -> Any:
    if change is None:
        return None
    if base is None or ("kind" in change and getattr(base, "kind", None) != change["kind"]):
        return _section(section, dict(change), where, source)
    merged = base.model_dump()
    merged.update(change)
    return _section(section, merged, where, source)


def eligibility(section: str, spec: Any, info: LayerInfo) -> str | None:
    """Why ``spec`` cannot be applied to ``info`` (None when it can)."""
    if info.type == "attention" and not (section == "prune" and spec.kind == "head"):
        return f"attention layers take only head pruning, not {section} {getattr(spec, 'kind', '')} ({info.name})".replace(" )", ")")
    if section == "prune" and spec.kind == "head" and info.type != "attention":
        return f"head pruning applies to attention layers (nn.MultiheadAttention), {info.name} is {info.type}"
    if section == "prune":
        if spec.kind == "pattern" and not (info.type == "conv2d" and info.kernel == (3, 3)):
            return f"pattern pruning needs a 3x3 conv, {info.name} is a {info.type} with kernel {info.kernel}"
        if spec.kind == "pattern" and spec.entries > 9:
            return "a 3x3 kernel has 9 entries"
        if spec.kind == "nm" and info.reduction % spec.m:
            return (f"N:M {spec.n}:{spec.m} needs the reduction length of {info.name} ({info.reduction}) "
                    f"to be a multiple of m={spec.m}")
        if spec.kind in ("filter", "channel") and info.type == "lstm":
            return f"{spec.kind} pruning of recurrent layers is not supported ({info.name})"
    if section == "factorize":
        method = spec.method
        if method in ("tucker2", "channel") and info.type != "conv2d":
            return f"{method} needs a conv layer, {info.name} is {info.type}"
        if method == "svd" and info.type != "linear":
            return f"svd factorisation applies to linear layers, {info.name} is {info.type}"
        if info.type == "lstm":
            return f"factorisation of recurrent layers is not supported ({info.name})"
        if info.type == "conv2d" and info.groups > 1:
            return f"factorisation of grouped convs is not supported ({info.name})"
    if section == "smartexchange" and info.type == "lstm":
        return f"SmartExchange of recurrent layers is not supported ({info.name})"
    return None


def resolve(recipe: Recipe, layers: list[LayerInfo], source: str = "recipe") -> tuple[dict[str, LayerPlan], list[str]]:
    """Per-layer plans and notes (skipped defaults). Raises ConfigError naming the recipe field."""
    plans: dict[str, LayerPlan] = {}
    by_name = {info.name: info for info in layers}
    for info in layers:
        plan = LayerPlan(info.name)
        if info.type in recipe.types:
            plan.prune, plan.quantize = recipe.prune, recipe.quantize
            plan.factorize, plan.smartexchange = recipe.factorize, recipe.smartexchange
        plans[info.name] = plan
    for i, ov in enumerate(recipe.overrides):
        where = f"overrides[{i}]"
        selected = list(by_name)
        if ov.names is not None:
            unknown = [n for n in ov.names if n not in by_name]
            if unknown:
                raise ConfigError(f"unknown layer name(s) {unknown}; the model's compressible layers: "
                                  f"{_layer_list(by_name)}", source=source, field=f"{where}.names")
            selected = [n for n in selected if n in ov.names]
        if ov.regex is not None:
            rx = re.compile(ov.regex)
            selected = [n for n in selected if rx.fullmatch(n)]
            if not selected:
                raise ConfigError(f"regex {ov.regex!r} matches no compressible layer of this model; its layers: "
                                  f"{_layer_list(by_name)}", source=source, field=f"{where}.regex")
        if ov.types is not None:
            selected = [n for n in selected if by_name[n].type in ov.types]
            if not selected:
                raise ConfigError(f"types {list(ov.types)} select no compressible layer of this model; its layers: "
                                  f"{_layer_list(by_name)}", source=source, field=f"{where}.types")
        given = ov.model_fields_set
        named = set(ov.names or ()) | {n for n in selected if ov.types is not None}
        for n in selected:
            plan = plans[n]
            for section in ("prune", "quantize", "factorize", "smartexchange"):
                if section in given:
                    head = section == "prune" and (ov.prune or {}).get("kind", getattr(plan.prune, "kind", None)) == "head"
                    if n not in named and (by_name[n].type == "attention") != head:
                        continue  # a regex-only override: head pruning for attention layers, the rest for others
                    setattr(plan, section, _merge(getattr(plan, section), getattr(ov, section), section,
                                                  f"{where}.{section}", source))
                    plan.explicit.add(section)
    notes: list[str] = []
    for name, plan in plans.items():
        info = by_name[name]
        for section in ("prune", "quantize", "factorize", "smartexchange"):
            if section == "quantize" and info.type != "attention":
                continue
            spec = getattr(plan, section)
            if spec is None:
                continue
            why = eligibility(section, spec, info)
            if why is None:
                continue
            if section in plan.explicit:
                idx = _override_index(recipe, name, by_name)
                raise ConfigError(why, source=source, field=f"overrides[{idx}].{section}" if idx is not None else section)
            notes.append(f"{section} not applied to {name}: {why}")
            setattr(plan, section, None)
        if plan.factorize is not None and plan.smartexchange is not None:
            raise ConfigError(f"layer {name} gets both factorize and smartexchange; pick one per layer",
                              source=source, field="smartexchange")
    return plans, notes


def _layer_list(by_name: dict[str, LayerInfo], limit: int = 60) -> str:
    names = [f"{n} ({i.type})" for n, i in by_name.items()]
    more = f" ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _override_index(recipe: Recipe, name: str, by_name: dict[str, LayerInfo]) -> int | None:
    last = None
    for i, ov in enumerate(recipe.overrides):
        ok = (ov.names is None or name in ov.names) and (ov.regex is None or re.fullmatch(ov.regex, name))
        ok = ok and (ov.types is None or by_name[name].type in ov.types)
        if ok:
            last = i
    return last


def load_recipe(path: str | Path | dict[str, Any] | Recipe) -> Recipe:
    """A :class:`Recipe` from a YAML file, a dict or a Recipe (errors name the file and field)."""
    if isinstance(path, Recipe):
        return path
    if isinstance(path, dict):
        return validate_model(Recipe, path, "recipe")
    data = read_yaml(path)
    return validate_model(Recipe, data, str(path))


__all__ = [
    "Recipe", "Override", "UnstructuredPrune", "FilterPrune", "ChannelPrune", "BlockPrune", "NMPrune",
    "PatternPrune", "GSPrune", "HeadPrune", "QuantSpec", "MixedPrecisionSpec", "FactorizeSpec", "SmartExchangeSpec",
    "LayerInfo", "LayerPlan", "resolve", "load_recipe", "eligibility", "PRUNE_KINDS",
]
