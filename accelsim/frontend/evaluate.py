"""Accuracy evaluator for co-exploration sweeps: compress a digits model and measure it.

The default evaluator of :mod:`accelsim.dse.coexplore` (``accelsim.frontend.evaluate:evaluate_recipe``).
It composes the front-end's public API: train the dense model once per (model, seed, epochs) and
process, apply the recipe (:func:`accelsim.frontend.compress`), fine-tune with the masks and
quantisers in place, measure top-1 accuracy on the held-out 25 % of scikit-learn's digits and
export the compressed network as a workload (real masks attached). Seeded: the same arguments give
the same accuracy and workload. Needs the torch extra (``pip install 'accelsim[torch]'``).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

_DENSE: dict[tuple, Any] = {}


def _dense(model: str, seed: int, epochs: int, lr: float):  # type: ignore[no-untyped-def]
    import torch

    from .models import get_torch_model
    from .training import TrainConfig, load_digits_data, train

    key = (model, seed, epochs, lr)
    if key not in _DENSE:
        torch.set_num_threads(1)  # one sweep worker per core
        data = load_digits_data(seed=seed)
        net = get_torch_model(model, seed=seed).train()
        res = train(net, data, config=TrainConfig(epochs=epochs, lr=lr, seed=seed, progress=False))
        _DENSE[key] = (net.state_dict(), data, res.test_accuracy)
    return _DENSE[key]


def evaluate_recipe(model: str, recipe: dict, *, dataset: str = "digits", seed: int = 0, epochs: int = 6,
                    finetune_epochs: int = 2, lr: float = 0.05, finetune_lr: float = 0.01) -> SimpleNamespace:
    """``accuracy`` (test top-1 after compression + fine-tuning) and ``workload`` of ``model`` under ``recipe``."""
    from . import compress, export
    from .models import get_torch_model
    from .training import TrainConfig, evaluate, train

    if dataset != "digits":
        raise ValueError(f"this evaluator knows the digits data set only, not {dataset!r}")
    state, data, dense_acc = _dense(model, seed, epochs, lr)
    net = get_torch_model(model, seed=seed)
    net.load_state_dict(state)
    cm = compress(net, recipe)
    if finetune_epochs:
        train(cm.model, data, config=TrainConfig(epochs=finetune_epochs, lr=finetune_lr, seed=seed, progress=False))
    cm.model.eval()
    acc = float(evaluate(cm.model, data.x_test, data.y_test))
    wl = export(cm, data.x_test[:1], name=f"{model}_compressed")
    return SimpleNamespace(accuracy=acc, workload=wl, dense_accuracy=dense_acc)
