"""Accuracy evaluator for co-exploration sweeps: compress a model and measure it.

The default evaluator of :mod:`accelsim.dse.coexplore` (``accelsim.frontend.evaluate:evaluate_recipe``).
It composes the front-end's public API: build the model, train it densely on scikit-learn's digits
once per (model, seed, epochs) and process (zoo models), apply the recipe
(:func:`accelsim.frontend.compress`), fine-tune with the masks and quantisers in place, measure its
accuracy and export the compressed network as a workload (real masks attached).

The model and the accuracy measurement can be the user's own:

- ``model``: a front-end zoo name (``tiny_cnn``, ``zoo:tiny_cnn``), a factory ``path/to/file.py:factory``
  or ``package.module:factory`` (looked up from the current directory first), or a callable
  ``factory() -> nn.Module``. A factory returns the network ready to compress (trained by the
  user); it is trained / fine-tuned on digits only when ``epochs`` / ``finetune_epochs`` are given.
- ``accuracy``: a callable ``evaluate(model) -> float in [0, 1]`` measuring the compressed
  ``nn.Module`` (eval mode) on the user's data; default: top-1 on the held-out 25 % of digits.

Seeded: the same arguments give the same accuracy and workload. Needs the torch extra
(``pip install 'accelsim[torch]'``).
"""
from __future__ import annotations

import math
import re
from types import SimpleNamespace
from typing import Any, Callable

from ..errors import ConfigError

_DENSE: dict[tuple, Any] = {}
_FIELD = "compression.model"


def _is_zoo(model: Any) -> bool:
    return isinstance(model, str) and ":" not in model.removeprefix("zoo:")


def build_model(model: "str | Callable[[], Any]", seed: int) -> Any:
    """The ``nn.Module`` named by ``model`` (zoo name, ``file.py:factory``, ``module:factory`` or a callable)."""
    import torch

    from .models import get_torch_model

    if _is_zoo(model):
        return get_torch_model(model.removeprefix("zoo:"), seed=seed)  # type: ignore[union-attr]
    if isinstance(model, str):
        from .cli import _import_model_module

        mod_name, _, attr = model.rpartition(":")
        try:
            factory = getattr(_import_model_module(mod_name), attr)
        except (ImportError, AttributeError, OSError, SyntaxError) as exc:
            raise ConfigError(f"cannot import model factory {model!r}: {exc}", source="sweep", field=_FIELD) from None
    else:
        factory = model
    if not callable(factory):
        raise ConfigError(f"model factory {model!r} is not callable", source="sweep", field=_FIELD)
    torch.manual_seed(seed)
    net = factory()
    if not isinstance(net, torch.nn.Module):
        raise ConfigError(f"model factory {model!r} returned {type(net).__name__}, not an nn.Module", source="sweep",
                          field=_FIELD)
    return net


def _model_key(model: Any) -> Any:
    return model if isinstance(model, str) else f"{getattr(model, '__module__', '')}:{getattr(model, '__qualname__', id(model))}"


def _dense(model: Any, seed: int, epochs: int, lr: float):  # type: ignore[no-untyped-def]
    """(state_dict, digits data, dense accuracy) of ``model`` trained ``epochs`` on digits (memoised)."""
    import torch

    from .training import TrainConfig, evaluate, load_digits_data, train

    key = (_model_key(model), seed, epochs, lr)
    if key not in _DENSE:
        torch.set_num_threads(1)  # one sweep worker per core
        data = load_digits_data(seed=seed)
        net = build_model(model, seed).train()
        if epochs:
            res = train(net, data, config=TrainConfig(epochs=epochs, lr=lr, seed=seed, progress=False))
            acc = res.test_accuracy
        else:
            acc = float(evaluate(net, data.x_test, data.y_test))
        _DENSE[key] = ({k: v.clone() for k, v in net.state_dict().items()}, data, acc)
    return _DENSE[key]


def _checked_accuracy(value: Any, fn: Callable[..., Any]) -> float:
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        acc = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"accuracy function {name} returned {value!r}, not a number in [0, 1]", source="sweep",
                          field="compression.evaluator") from None
    if not (math.isfinite(acc) and 0.0 <= acc <= 1.0):
        raise ConfigError(f"accuracy function {name} returned {acc}, not in [0, 1]", source="sweep",
                          field="compression.evaluator")
    return acc


def evaluate_recipe(model: "str | Callable[[], Any]", recipe: dict, *, dataset: str = "digits", seed: int = 0,
                    epochs: int | None = None, finetune_epochs: int | None = None, lr: float = 0.05,
                    finetune_lr: float = 0.01, accuracy: Callable[[Any], float] | None = None,
                    input_shape: list[int] | tuple[int, ...] | None = None) -> SimpleNamespace:
    """``accuracy`` (after compression + fine-tuning), ``workload`` and ``dense_accuracy`` of ``model`` under ``recipe``.

    ``epochs`` / ``finetune_epochs`` default to 6 / 2 for zoo models and 0 / 0 for factories;
    ``input_shape`` (default: one digits image, 1x1x8x8) is the export's example input;
    ``accuracy`` replaces the digits test accuracy by the user's measurement (see the module doc).
    """
    import torch

    from . import compress, export
    from .training import TrainConfig, evaluate, train

    if dataset != "digits":
        raise ConfigError(f"this evaluator knows the digits data set only, not {dataset!r}", source="sweep",
                          field="compression.dataset")
    zoo = _is_zoo(model)
    epochs = (6 if zoo else 0) if epochs is None else int(epochs)
    finetune_epochs = (2 if zoo else 0) if finetune_epochs is None else int(finetune_epochs)
    if not zoo and not epochs and not finetune_epochs and accuracy is not None:
        net, data, dense_acc = build_model(model, seed), None, None  # the user's trained network as is
    else:
        state, data, dense_acc = _dense(model, seed, epochs, lr)
        net = build_model(model, seed)
        net.load_state_dict(state)
    if accuracy is not None and dense_acc is None:
        dense_acc = _checked_accuracy(accuracy(net.eval()), accuracy)
    if input_shape is not None:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(tuple(int(v) for v in input_shape), generator=gen)
    else:
        if data is None:
            from .training import load_digits_data

            data = load_digits_data(seed=seed)
        x = data.x_test[:1]
    cm = compress(net, recipe)
    if finetune_epochs:
        train(cm.model, data, config=TrainConfig(epochs=finetune_epochs, lr=finetune_lr, seed=seed, progress=False))
    cm.model.eval()
    if accuracy is not None:
        acc = _checked_accuracy(accuracy(cm.model), accuracy)
    else:
        acc = float(evaluate(cm.model, data.x_test, data.y_test))
    name = model.removeprefix("zoo:") if zoo else str(_model_key(model)).rpartition(":")[2].lower()
    name = re.sub(r"\W+", "_", name).strip("_") or "model"
    wl = export(cm, x, name=f"{name}_compressed")
    return SimpleNamespace(accuracy=acc, workload=wl, dense_accuracy=dense_acc)
