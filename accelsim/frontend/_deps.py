"""The optional torch dependency: imported only here, with an install hint when missing."""
from __future__ import annotations

from types import ModuleType

from ..errors import ConfigError

INSTALL_HINT = "the PyTorch front-end needs the torch extra: pip install 'accelsim[torch]' (torch==2.13.0)"


class MissingDependencyError(ConfigError):
    """An optional dependency of the front-end is not installed."""


def require_torch() -> ModuleType:
    """``import torch`` or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    return torch
