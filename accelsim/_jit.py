"""Notice of a one-off numba compilation (a fresh machine, or a new numba/source version).

Every hot kernel of accelsim is an ``@njit(cache=True)`` function: the first process on a machine
compiles it and writes the machine code to numba's on-disk cache; later processes load it. The
first use of a kernel family therefore costs seconds of CPU once. :func:`notice_if_cold` says so
through the ``accelsim`` logger (the CLI prints it on stderr) before it happens, so a slow first
run is never a mystery; ``accelsim warmup`` (:mod:`accelsim.sim.warmup`) compiles every family
ahead of time.
"""
from __future__ import annotations

import logging
import os
from typing import Any

_log = logging.getLogger("accelsim")


def _options_known(*names: str) -> bool:
    """True when this numba accepts every one of the target options ``names`` (``_nrt`` has an
    underscore but is long-standing; the wrapper switches are ordinary options)."""
    try:
        from numba.core.options import DefaultOptions
    except ImportError:  # pragma: no cover - numba internals moved
        return False
    return all(hasattr(DefaultOptions, n) for n in names)


def _nrt_option_known() -> bool:
    """True when this numba accepts the ``_nrt`` target option."""
    return _options_known("_nrt")


#: ``njit`` keywords that switch numba's runtime (atomic reference counting of array arguments)
#: off, for kernels that create no array: ``{"_nrt": False}``, or nothing on a numba without that
#: option (the kernels then run unchanged, only slower; results are equal either way).
NO_NRT: dict[str, bool] = {"_nrt": False} if _nrt_option_known() else {}
#: ``njit`` keywords for a kernel called only from other jitted code: numba generates neither the
#: CPython wrapper (unboxing every argument: tuples of arrays make it large) nor the C-callable
#: wrapper, so they cost no compile time; such a kernel cannot be called from Python (empty on a
#: numba without these options: the wrappers are then built, results equal).
JIT_ONLY: dict[str, bool] = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True} \
    if _options_known("no_cpython_wrapper", "no_cfunc_wrapper") else {}
_announced: set[str] = set()


def cache_is_cold(dispatcher: Any) -> bool:
    """True when numba's on-disk cache has no index for ``dispatcher`` yet. Relies on numba's
    cache layout (``_cache._cache_file._index_path``); anything unexpected reads as warm."""
    try:
        return not os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # pragma: no cover - numba internals moved
        return False


def notice_if_cold(dispatcher: Any, what: str, cpu_s: str) -> None:
    """Log once per process that ``what`` is about to be compiled (``cpu_s``: the measured cost,
    e.g. ``"~20 s"``) when ``dispatcher`` is neither compiled in this process nor cached on disk."""
    if what in _announced:
        return
    _announced.add(what)
    if not getattr(dispatcher, "signatures", None) and cache_is_cold(dispatcher):
        _log.info(f"compiling {what} for this machine (once, {cpu_s} of CPU; `accelsim warmup` after installing "
                  "does it ahead of time)")
