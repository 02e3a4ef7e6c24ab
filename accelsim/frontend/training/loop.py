"""The shared training loop of the training-time methods: seeded, tqdm progress, resumable.

:func:`train` runs a :class:`Method` (a set of hooks; the base class is plain training) over a
:class:`~.data.DigitsData` split (or any tensors of the same form) or a :class:`LoaderData` of batch
iterables (``torch.utils.data.DataLoader``); batches go to the model's device. Every epoch ends with a
checkpoint written atomically (temp file + rename) holding the model, the optimiser, the method's
state, the data-order generator and the torch RNG state, so a run interrupted after any epoch and
resumed from its checkpoint is bit-identical to an uninterrupted one (tested).

Per-step wall time is measured around the optimisation step only (forward, loss, backward,
update and the method's per-step hooks), so a method's overhead over plain training can be quoted;
per-epoch work (ADMM Z/U updates, Early-Bird mask distance, evaluation) is timed separately.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from ..._validation import atomic_write_bytes
from ...errors import ConfigError
from .._deps import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Hyper-parameters of one run. ``epochs`` is the plain-training length; methods with phases
    (ADMM stages, retraining) define their own length in :meth:`Method.total_epochs`."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: lr * (1 + cos(pi * epoch / total)) / 2
    checkpoint: str | Path | None = None
    resume: bool = True
    progress: bool = True
    desc: str = ""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", source="TrainConfig", field=name)
        if self.lr <= 0:
            raise ConfigError(f"must be > 0, got {self.lr}", source="TrainConfig", field="lr")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"expected 'constant' or 'cosine', got {self.lr_schedule!r}", source="TrainConfig",
                              field="lr_schedule")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"expected 'sgd' or 'adam', got {self.optimizer!r}", source="TrainConfig",
                              field="optimizer")


class Method:
    """Hooks of the training loop; this base class is plain training (cross-entropy + optimiser)."""

    name = "plain"

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        """Prepare the model before a checkpoint is loaded (e.g. add parametrisations)."""

    def total_epochs(self, config: TrainConfig) -> int:
        return config.epochs

    def schedule_span(self, epoch: int, total: int) -> tuple[int, int]:
        """``(epoch within the current phase, phase length)`` for the learning-rate schedule; the
        base class has one phase of ``total`` epochs (methods with a retraining phase restart it)."""
        return epoch, total

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params}] if params else []

    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        """Called before every epoch; return True to rebuild the optimiser (a new phase began)."""
        return False

    def loss(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
        out = F.cross_entropy(model(x), y)
        extra = self.penalty(model)
        return out if extra is None else out + extra

    def penalty(self, model: "nn.Module") -> "torch.Tensor | None":
        return None

    def after_backward(self, model: "nn.Module") -> None:
        """Between ``backward()`` and ``optimizer.step()`` (e.g. mask gradients)."""

    def after_step(self, model: "nn.Module") -> None:
        """After ``optimizer.step()`` (e.g. re-apply masks)."""

    def train_step(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor",
                   optimizer: "torch.optim.Optimizer | None", x_int: "torch.Tensor | None" = None) -> float:
        """One optimisation step; returns the loss."""
        assert optimizer is not None
        optimizer.zero_grad(set_to_none=True)
        loss = self.loss(model, x, y)
        loss.backward()
        self.after_backward(model)
        optimizer.step()
        self.after_step(model)
        return float(loss.detach())

    def predict(self, model: "nn.Module", x: "torch.Tensor", x_int: "torch.Tensor | None" = None) -> "torch.Tensor":
        """Class predictions for evaluation (the model is in eval mode)."""
        return model(x).argmax(dim=1)

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        """After every epoch (``log`` may be extended); return True to end training now."""
        return False

    def finalize(self, model: "nn.Module") -> None:
        """Bake the method's state into plain weights once training has finished."""

    def info(self) -> dict[str, Any]:
        """Method-specific results for the report (found epoch, per-layer sparsity, ...)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class TrainResult:
    """What a run produced. ``step_time_s`` is the mean wall time of one optimisation step."""

    model: "nn.Module"
    method: Method
    test_accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)
    train_time_s: float = 0.0
    steps: int = 0
    epochs_run: int = 0
    finished: bool = True
    resumed_from_epoch: int = 0

    @property
    def step_time_s(self) -> float:
        return self.train_time_s / self.steps if self.steps else 0.0


@dataclass
class LoaderData:
    """Training data as iterables of batches (``torch.utils.data.DataLoader`` or any re-iterable
    of ``(x, y)`` / ``(x, y, x_int)`` tuples); ``train`` is iterated once per epoch, ``test`` once
    per evaluation. Batches are moved to the model's device. The batch order is the iterable's
    (seed a DataLoader's ``generator`` for reproducible runs; resuming from a checkpoint is then
    bit-identical only if the loader repeats its order per epoch)."""

    train: Iterable[Any]
    test: Iterable[Any]


def _device_of(model: "nn.Module") -> "torch.device":
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _split_batch(batch: Any, device: "torch.device") -> tuple[Any, Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ConfigError(f"a batch must be (x, y) or (x, y, x_int), got {type(batch).__name__}", source="data")
    x, y = batch[0].to(device), batch[1].to(device)
    return x, y, (batch[2].to(device) if len(batch) == 3 else None)


def evaluate(model: "nn.Module", x: Any, y: "torch.Tensor | None" = None, method: Method | None = None,
             x_int: "torch.Tensor | None" = None, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` tensors, or on an iterable of batches ``x`` (with
    ``y=None``), in eval mode without gradients, on the model's device."""
    method = method or Method()
    was = model.training
    model.eval()
    device = _device_of(model)
    correct = total = 0
    if y is None:
        batches: Iterable[Any] = x
    else:
        batches = ((x[i:i + batch_size], y[i:i + batch_size]) + ((x_int[i:i + batch_size],) if x_int is not None else ())
                   for i in range(0, len(y), batch_size))
    with torch.no_grad():
        for batch in batches:
            xb, yb, xi = _split_batch(batch, device)
            pred = method.predict(model, xb, xi)
            correct += int((pred == yb).sum())
            total += int(yb.numel())
    model.train(was)
    return correct / max(total, 1)


def _test_accuracy(model: "nn.Module", data: Any, method: Method) -> float:
    if isinstance(data, LoaderData):
        return evaluate(model, data.test, None, method)
    return evaluate(model, data.x_test, data.y_test, method, getattr(data, "x_test_int", None))


def _epoch_batches(data: Any, gen: "torch.Generator", bs: int) -> Iterator[tuple[Any, Any, Any]]:
    if isinstance(data, LoaderData):
        yield from data.train
        return
    x, y = data.x_train, data.y_train
    x_int = getattr(data, "x_train_int", None)
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), bs):
        idx = perm[i:i + bs]
        yield (x[idx], y[idx]) + ((x_int[idx],) if x_int is not None else ())


def _build_optimizer(method: Method, model: "nn.Module", config: TrainConfig) -> "torch.optim.Optimizer | None":
    groups = method.optimizer_params(model, config)
    if not groups:
        return None
    # foreach: one fused update over all parameters of a group (much less per-parameter overhead)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           foreach=True)


def _save(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda tmp: torch.save(payload, tmp))


def checkpoint_safe_globals() -> list[Any]:
    """The only non-torch types a checkpoint may hold: numpy arrays, dtypes and scalars (method
    state). Everything else a checkpoint could name -- any other class or function -- is refused
    by ``torch.load(weights_only=True)``, so loading an untrusted checkpoint runs no code."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64, np.complex64, np.complex128)
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dict.fromkeys(type(np.dtype(k)) for k in kinds)]


def _load(path: Path) -> dict[str, Any]:
    """Read a checkpoint as data: ``weights_only=True`` plus :func:`checkpoint_safe_globals`."""
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read the checkpoint: {exc}", source=str(path)) from None
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"not an accelsim training checkpoint (version {CHECKPOINT_VERSION})", source=str(path),
                          field="version")
    return payload


def train(model: "nn.Module", data: Any, method: Method | None = None, config: TrainConfig | None = None, *,
          max_epochs_this_run: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (a :class:`~.data.DigitsData`) with ``method``'s hooks.

    With ``config.checkpoint`` set, a checkpoint is written after every epoch and, when
    ``config.resume`` is true and the file exists, training continues from it (model, optimiser,
    method state and RNG streams restored). ``max_epochs_this_run`` stops after that many epochs of
    this call (``finished=False``) — used to test resuming. After the last epoch the method's
    :meth:`~Method.finalize` bakes its state into the model.
    """
    config = config or TrainConfig()
    method = method or Method()
    torch.manual_seed(config.seed)
    method.setup(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    total = method.total_epochs(config)
    history: list[dict[str, Any]] = []
    start, train_time, steps = 0, 0.0, 0
    ckpt = Path(config.checkpoint) if config.checkpoint is not None else None
    opt_state = None
    if ckpt is not None and config.resume and ckpt.exists():
        payload = _load(ckpt)
        if payload.get("method") != method.name:
            raise ConfigError(f"checkpoint was written by method {payload.get('method')!r}, not {method.name!r}",
                              source=str(ckpt), field="method")
        model.load_state_dict(payload["model"])
        method.load_state_dict(payload["method_state"])
        gen.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        start, train_time, steps = payload["epoch"], payload["train_time_s"], payload["steps"]
        history = payload["history"]
        opt_state = payload["optimizer"]
    resumed_from = start
    opt = _build_optimizer(method, model, config)
    if opt is not None and opt_state is not None:
        opt.load_state_dict(opt_state)
    if not isinstance(data, LoaderData) and not hasattr(data, "x_train"):
        raise ConfigError("data must be a DigitsData-like split (x_train, y_train, x_test, y_test) or a LoaderData "
                          "of batch iterables", source="train", field="data")
    device = _device_of(model)
    bs = config.batch_size
    from tqdm import tqdm  # plain text bar: tqdm.auto warns "IProgress not found" in notebooks without ipywidgets

    bar = tqdm(range(start, total), desc=config.desc or method.name, disable=not config.progress, leave=False,
               initial=start, total=total)
    epochs_this_run = 0
    finished = start >= total or bool(history and history[-1].get("stop"))
    for epoch in bar:
        if finished:
            break
        if method.on_epoch_start(model, epoch):
            opt = _build_optimizer(method, model, config)
        if opt is not None and config.lr_schedule == "cosine":
            import math

            e, span = method.schedule_span(epoch, total)
            factor = 0.5 * (1.0 + math.cos(math.pi * e / max(span, 1)))
            for g in opt.param_groups:
                g["lr"] = g.setdefault("initial_lr", g["lr"]) * factor
        model.train()
        losses = []
        t_epoch = 0.0
        for batch in _epoch_batches(data, gen, bs):
            xb, yb, xi = _split_batch(batch, device)
            t0 = time.perf_counter()
            losses.append(method.train_step(model, xb, yb, opt, xi))
            t_epoch += time.perf_counter() - t0
            steps += 1
        train_time += t_epoch
        t1 = time.perf_counter()
        acc = _test_accuracy(model, data, method)
        log: dict[str, Any] = {"epoch": epoch, "loss": sum(losses) / max(len(losses), 1), "test_acc": acc,
                               "epoch_train_s": t_epoch}
        stop = method.on_epoch_end(model, epoch, log)
        log["eval_s"] = time.perf_counter() - t1
        log["stop"] = bool(stop)
        history.append(log)
        bar.set_postfix(loss=f"{log['loss']:.3f}", acc=f"{acc:.3f}")
        epochs_this_run += 1
        if ckpt is not None:
            _save(ckpt, {"version": CHECKPOINT_VERSION, "method": method.name, "epoch": epoch + 1,
                         "model": model.state_dict(), "optimizer": opt.state_dict() if opt is not None else None,
                         "method_state": method.state_dict(), "generator": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "train_time_s": train_time, "steps": steps,
                         "history": history, "config": {k: str(v) for k, v in asdict(config).items()}})
        if stop or epoch + 1 >= total:
            finished = True
            break
        if max_epochs_this_run is not None and epochs_this_run >= max_epochs_this_run:
            break
    bar.close()
    if finished:
        method.finalize(model)
    acc = _test_accuracy(model, data, method)
    return TrainResult(model=model, method=method, test_accuracy=acc, history=history, train_time_s=train_time,
                       steps=steps, epochs_run=len(history), finished=finished, resumed_from_epoch=resumed_from)


__all__ = ["TrainConfig", "Method", "TrainResult", "LoaderData", "train", "evaluate", "CHECKPOINT_VERSION"]
