"""The registry of hardware kinds: a kind registers its config schema and its engine together.

A kind is two modules: a hardware module whose config class carries
``@register_hardware("kind", engine="package.module:EngineClass")`` and the engine module named
there (imported only when a layer is first lowered on that kind). Kind modules are found one way,
by :func:`discover_kinds`, from three lists of module names:

1. every module of the ``accelsim.hardware`` package (the shipped kinds);
2. the ``accelsim.kinds`` entry-point group of installed distributions (value: the hardware
   module, e.g. ``toy = "mypkg.toy_hw"``);
3. the ``ACCELSIM_PLUGINS`` environment variable (comma-separated module names on ``sys.path``),
   for code that is not installed.

Nothing else needs editing to add a kind (``docs/hardware_format.md``, "Adding a kind").
"""
from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from dataclasses import dataclass
from typing import Callable, TypeVar

from .common import HardwareBase

H = TypeVar("H", bound=type[HardwareBase])

ENTRY_POINT_GROUP = "accelsim.kinds"
PLUGINS_ENV = "ACCELSIM_PLUGINS"


@dataclass(frozen=True)
class KindSpec:
    """One hardware kind: its config class and where its engine lives (``module:Class``)."""

    kind: str
    hardware: type[HardwareBase]
    engine: str


KINDS: dict[str, KindSpec] = {}
HARDWARE_KINDS: dict[str, type[HardwareBase]] = {}  # kind -> config class (view of KINDS)


def register_hardware(kind: str, *, engine: str) -> Callable[[H], H]:
    """Class decorator: ``kind:`` in hardware files resolves to this class, run by ``engine``
    (``"module:Class"``, an :class:`accelsim.engines.base.Engine` subclass, imported lazily)."""
    if ":" not in engine:
        raise ValueError(f"engine of kind {kind!r} must be 'module:Class', got {engine!r}")

    def deco(cls: H) -> H:
        old = KINDS.get(kind)
        if old is not None and (old.hardware.__module__, old.hardware.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"hardware kind {kind!r} is registered twice ({old.hardware.__module__} and {cls.__module__})")
        KINDS[kind] = KindSpec(kind, cls, engine)
        HARDWARE_KINDS[kind] = cls
        return cls

    return deco


@functools.lru_cache(maxsize=None)
def _entry_point_modules() -> tuple[str, ...]:
    try:
        from importlib.metadata import entry_points

        return tuple(ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # pragma: no cover - broken metadata of some other distribution
        return ()


def _plugin_modules() -> tuple[str, ...]:
    env = tuple(n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip())
    return _entry_point_modules() + env


@functools.lru_cache(maxsize=None)
def _discover(plugins: tuple[str, ...]) -> None:
    from .. import hardware

    for info in pkgutil.iter_modules(hardware.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{hardware.__name__}.{info.name}")
    for name in plugins:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            from ..errors import ConfigError

            raise ConfigError(f"cannot import hardware plugin module {name!r}: {exc}",
                              source=PLUGINS_ENV if name in os.environ.get(PLUGINS_ENV, "") else ENTRY_POINT_GROUP) from None


def discover_kinds() -> dict[str, KindSpec]:
    """Import every kind module (once per plugin list) and return the registry."""
    _discover(_plugin_modules())
    return KINDS


def kind_spec(kind: str) -> KindSpec | None:
    """The registered kind (after discovery), or None."""
    spec = KINDS.get(kind)
    return spec if spec is not None else discover_kinds().get(kind)
