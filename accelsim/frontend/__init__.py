"""PyTorch front-end (extra ``accelsim[torch]``): compress a model and export it as a workload.

>>> from accelsim.frontend import compress, export
>>> cm = compress(model, "recipes/pattern_4bit.yaml")
>>> wl = export(cm, example_input)          # accelsim Workload (+ masks in memory)

Modules: :mod:`.recipe` (YAML schema), :mod:`.pruning`, :mod:`.quantization`,
:mod:`.factorization`, :mod:`.smart_exchange` (algorithms / projections), :mod:`.compressor`
(apply a recipe to a model), :mod:`.exporter` (trace -> Workload), :mod:`.metrics`,
:mod:`.models` (torch model zoo), :mod:`.cli` (``accelsim compress``).

Nothing here imports torch until a torch-using name is first accessed, so ``accelsim`` and
``accelsim.frontend.cli`` import without torch installed.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "compress": "compressor", "prune": "compressor", "quantize": "compressor", "factorize": "compressor",
    "smartexchange": "compressor", "CompressedModel": "compressor",
    "export": "exporter", "save_export": "exporter",
    "compare": "metrics", "layer_metrics": "metrics", "metrics_table": "metrics",
    "load_recipe": "recipe", "Recipe": "recipe",
    "get_torch_model": "models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
