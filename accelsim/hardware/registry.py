"""Registry of hardware kinds: a new architecture is a new module that registers its config."""
from __future__ import annotations

from typing import Callable, TypeVar

from .common import HardwareBase

H = TypeVar("H", bound=type[HardwareBase])

HARDWARE_KINDS: dict[str, type[HardwareBase]] = {}


def register_hardware(kind: str) -> Callable[[H], H]:
    """Class decorator: make ``kind:`` in hardware files resolve to this config class."""

    def deco(cls: H) -> H:
        if kind in HARDWARE_KINDS and HARDWARE_KINDS[kind] is not cls:
            raise ValueError(f"hardware kind {kind!r} is registered twice")
        HARDWARE_KINDS[kind] = cls
        return cls

    return deco
