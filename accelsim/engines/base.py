"""The engine interface: one engine per hardware kind turns (layer, hardware) into a LayerProgram.

All architecture knowledge lives in engines; they never touch SimPy. A kind's hardware class
names its engine (``@register_hardware("kind", engine="module:Class")``,
:mod:`accelsim.hardware.registry`); :func:`engine_for` imports that module the first time a layer
is lowered on the kind, so only the engines in use are ever imported.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from ..errors import AccelsimError, InternalError, UnsupportedLayerError
from ..hardware.common import HardwareBase
from ..hardware.registry import kind_spec
from ..stats import LayerProgram
from ..workload.layer import LayerBase
from ..workload.workload import Workload

H = TypeVar("H", bound=HardwareBase)


#: compression properties a layer may carry that an engine may or may not exploit
EXPLOITABLE = ("act_sparsity", "smartexchange")

#: default reason of the note for a property the engine ignores (engines may override per property)
DEFAULT_IGNORE_REASON = {
    "act_sparsity": "this array does not gate or skip zero activations (every MAC is executed and priced)",
    "smartexchange": "the weights run as stored, rebuilt dense (W = Ce B); no Ce/basis datapath",
}


class Engine(ABC, Generic[H]):
    """What every engine provides, for its hardware type ``H``.

    ``exploits`` names the compression properties of :data:`EXPLOITABLE` the engine models
    (``act_sparsity``: ``act_density < 1``; ``smartexchange``: a SmartExchange factorisation);
    :func:`lower_layer` notes every other one a layer carries, with the engine's
    ``ignore_reasons`` (or :data:`DEFAULT_IGNORE_REASON`), so nothing is ignored silently.
    """

    exploits: ClassVar[frozenset[str]] = frozenset()
    ignore_reasons: ClassVar[dict[str, str]] = {}

    def exploited(self, hw: H) -> frozenset[str]:
        """What this engine exploits on ``hw`` (``exploits`` unless a hardware option, e.g. a
        ``sparsity:`` block gating zero activations, turns a property on or off)."""
        return self.exploits

    def supports(self, layer: LayerBase, hw: H) -> tuple[bool, str]:
        """Whether ``layer`` can run on ``hw``; the reason when it cannot (or a note when it can)."""
        return True, ""

    @abstractmethod
    def lower(self, layer: LayerBase, hw: H, workload: Workload | None = None) -> LayerProgram:
        """The tile program and action counts of ``layer`` on ``hw``."""

    def area_mm2(self, workload: Workload, hw: H) -> dict[str, float]:
        """Area by component of the hardware ``workload`` occupies on ``hw`` (empty: no area model).

        Kinds with an area model set ``HardwareBase.has_area_model``; which units a workload
        occupies is a mapping question, so the engine answers it.
        """
        return {}


_INSTANCES: dict[str, Engine[Any]] = {}


def engine_for(hw: HardwareBase) -> Engine[Any]:
    """The engine of ``hw``'s kind (imported and instantiated on first use)."""
    engine = _INSTANCES.get(hw.kind)
    if engine is not None:
        return engine
    spec = kind_spec(hw.kind)
    if spec is None:
        raise AccelsimError(f"no engine for hardware kind {hw.kind!r}")
    module_name, _, class_name = spec.engine.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InternalError(f"engine {spec.engine!r} of hardware kind {hw.kind!r} cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise InternalError(f"engine {spec.engine!r} of hardware kind {hw.kind!r} is not an accelsim Engine subclass")
    engine = _INSTANCES[hw.kind] = cls()
    return engine


def unexploited_notes(layer: LayerBase, engine: Engine[Any], macs: int, hw: HardwareBase | None = None) -> list[str]:
    """One note per compression property ``layer`` carries that ``engine`` does not exploit
    (on ``hw``: :meth:`Engine.exploited`; MAC layers only: element-wise and pooling layers have
    nothing to skip)."""
    if macs <= 0:
        return []
    comp = layer.compression
    exploited = engine.exploits if hw is None else engine.exploited(hw)
    found: dict[str, str] = {}
    if comp.act_density < 1.0:
        found["act_sparsity"] = f"activation sparsity (density {comp.act_density:.2f})"
    fac = comp.factorization
    if fac.kind == "smartexchange":
        found["smartexchange"] = f"SmartExchange factorisation (basis {fac.basis_size}x{fac.basis_size}, Ce density {fac.ce_density:.2f})"
    return [f"{what} not exploited: {engine.ignore_reasons.get(prop, DEFAULT_IGNORE_REASON[prop])}"
            for prop, what in found.items() if prop not in exploited]


def lower_layer(layer: LayerBase, hw: HardwareBase, workload: Workload | None = None) -> LayerProgram:
    """Check support, then lower; an unsupported layer raises with the engine's reason. The
    program's notes get :func:`unexploited_notes`."""
    engine = engine_for(hw)
    ok, reason = engine.supports(layer, hw)
    if not ok:
        raise UnsupportedLayerError(f"layer {layer.name!r} ({layer.op}) cannot run on {hw.kind} '{hw.name}': {reason}")
    prog = engine.lower(layer, hw, workload)
    extra = [n for n in unexploited_notes(layer, engine, prog.macs, hw) if n not in prog.notes]
    if extra:
        prog.notes.extend(extra)
    return prog
