"""accelsim: how a compressed neural network runs on candidate accelerator hardware.

>>> import accelsim
>>> report = accelsim.simulate("models/resnet18.yaml", "hw_configs/systolic_128x128_os.yaml")
>>> report.to_frame()       # one row per layer
>>> report.summary()        # network totals
>>> report.plot("fig.png")  # energy / latency breakdown

The names below are imported on first use (``import accelsim`` stays fast; the simulator's
modules, numpy, pydantic and the engines load when ``simulate`` or a loader is first touched).
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name -> module that defines it
_LAZY = {
    "simulate": "accelsim.api",
    "load_workload": "accelsim.workload.io", "save_workload": "accelsim.workload.io",
    "Workload": "accelsim.workload.workload",
    "load_hardware": "accelsim.hardware.io",
    "Report": "accelsim.report", "LayerStats": "accelsim.report", "ProgramCache": "accelsim.program_cache",
    "AccelsimError": "accelsim.errors", "ConfigError": "accelsim.errors", "UnsupportedLayerError": "accelsim.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .api import simulate
    from .errors import AccelsimError, ConfigError, UnsupportedLayerError
    from .hardware.io import load_hardware
    from .program_cache import ProgramCache
    from .report import LayerStats, Report
    from .workload.io import load_workload, save_workload
    from .workload.workload import Workload


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562) and keep it as a module attribute."""
    target = _LAZY.get(name)
    if target is None:  # a subpackage used as an attribute (``accelsim.workload.zoo``) is imported too
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'accelsim' has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
