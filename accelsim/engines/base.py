"""The engine interface: one module per hardware kind turns (layer, hardware) into a LayerProgram.

All architecture knowledge lives in engines; they never touch SimPy. A new architecture is a new
module with a hardware config class (``@register_hardware``) and an engine (``@register_engine``).
"""
from __future__ import annotations

from typing import Callable, Protocol, TypeVar

from ..errors import AccelsimError, UnsupportedLayerError
from ..hardware.common import HardwareBase
from ..stats import LayerProgram
from ..workload.layer import LayerBase
from ..workload.workload import Workload


class Engine(Protocol):
    """What every engine provides."""

    kind: str

    def supports(self, layer: LayerBase, hw: HardwareBase) -> tuple[bool, str]:
        """Whether ``layer`` can run on ``hw``; the reason when it cannot."""
        ...

    def lower(self, layer: LayerBase, hw: HardwareBase, workload: Workload | None = None) -> LayerProgram:
        """The tile program and action counts of ``layer`` on ``hw``."""
        ...


ENGINES: dict[str, Engine] = {}
E = TypeVar("E")


def register_engine(kind: str) -> Callable[[type[E]], type[E]]:
    """Class decorator: instances of the class run hardware of ``kind``."""

    def deco(cls: type[E]) -> type[E]:
        ENGINES[kind] = cls()  # type: ignore[assignment]
        return cls

    return deco


def engine_for(hw: HardwareBase) -> Engine:
    from . import _load_all  # noqa: F401  (engines register on import)

    try:
        return ENGINES[hw.kind]
    except KeyError:
        raise AccelsimError(f"no engine for hardware kind {hw.kind!r}; known: {', '.join(sorted(ENGINES))}") from None


def lower_layer(layer: LayerBase, hw: HardwareBase, workload: Workload | None = None) -> LayerProgram:
    """Check support, then lower; an unsupported layer raises with the engine's reason."""
    engine = engine_for(hw)
    ok, reason = engine.supports(layer, hw)
    if not ok:
        raise UnsupportedLayerError(f"layer {layer.name!r} ({layer.op}) cannot run on {hw.kind} '{hw.name}': {reason}")
    return engine.lower(layer, hw, workload)
