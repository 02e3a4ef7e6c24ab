"""Training-time compression: the methods that decide *where* to prune and *how many bits* while
training (issue #4). Results are exported with the front-end's exporter like any compressed model.

Modules (torch is imported only when a name is first accessed):

- :mod:`.loop` — shared training loop (seeded, tqdm progress, resumable atomic checkpoints).
- :mod:`.admm` — ADMM progressive pruning + quantisation (any front-end granularity, crossbar
  blocks; int / pow2 / binary / conductance levels).
- :mod:`.dst` — Dynamic Sparse Training (trainable thresholds).
- :mod:`.earlybird` — Early-Bird tickets from BatchNorm scales.
- :mod:`.djpq` — joint channel pruning + learnable mixed precision under a BOPs penalty, and the
  two-stage baseline.
- :mod:`.reweighted` — reweighted group Lasso for block pruning (BLK-REW).
- :mod:`.nrmf` — nuclear-norm rank minimisation with a global rank budget, then factorisation.
- :mod:`.niti` — integer-only training (int8 + power-of-two exponents).
- :mod:`.crossbar` — crossbar-block masks, conductance levels and device mismatch.
- :mod:`.metrics`, :mod:`.export`, :mod:`.data`, :mod:`.models` — costs, export, digits data, networks.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "loop", "Method": "loop", "TrainResult": "loop", "train": "loop", "evaluate": "loop", "LoaderData": "loop",
    "ADMM": "admm", "ADMMConfig": "admm",
    "DST": "dst",
    "EarlyBird": "earlybird", "EarlyBirdDetector": "earlybird", "mask_distance": "earlybird",
    "DJPQ": "djpq", "two_stage_baseline": "djpq", "FixedQAT": "djpq",
    "ReweightedGroupLasso": "reweighted", "ReweightedGroupLassoConfig": "reweighted",
    "NRMF": "nrmf", "NRMFConfig": "nrmf",
    "DFS": "dfs", "DFSConfig": "dfs", "simulate_dfs": "dfs_sim",
    "NITI": "niti", "IntNet": "niti", "float_twin": "niti",
    "CrossbarBlockPrune": "crossbar", "ConductanceQuant": "crossbar", "program_crossbar": "crossbar",
    "LayerCompression": "metrics", "model_cost": "metrics",
    "export_trained": "export", "to_compressed_model": "export",
    "load_digits_data": "data", "DigitsData": "data",
    "build_model": "models",
    "channel_groups": "graph", "ChannelGroup": "graph",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
