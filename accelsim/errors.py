"""One error family for accelsim.

Every error a user can cause by bad input is an :class:`AccelsimError`. The CLI prints
``str(err)`` on one line and exits with code 2; library code never calls ``sys.exit``.
"""
from __future__ import annotations


class AccelsimError(Exception):
    """Base class of every error accelsim raises on purpose."""


class ConfigError(AccelsimError):
    """A file or object that does not describe a valid workload/hardware/sweep.

    ``source`` is the file (or a short description of the object), ``field`` the dotted path of
    the offending field (may be empty when the whole file is unreadable).
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnsupportedLayerError(AccelsimError):
    """An engine cannot run a layer; the message says why (never a silent fallback)."""


class MaskError(ConfigError):
    """A sparsity mask that does not fit its layer (shape, values, density)."""


class InfeasibleError(AccelsimError):
    """No configuration satisfies the given resource budgets."""


class InternalError(RuntimeError):
    """A bug in accelsim or in a plugin engine (e.g. an action no energy model prices).

    Deliberately *not* an :class:`AccelsimError`: no user input can fix it, so the explorer stores
    such a point as ``error`` (not ``invalid``) and the CLI shows a traceback.
    """
