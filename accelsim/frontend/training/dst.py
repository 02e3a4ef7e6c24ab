"""Dynamic Sparse Training: trainable pruning thresholds.

Liu, Xu, Shi, Cheung, So, "Dynamic Sparse Training: Find Efficient Sparse Network From Scratch
With Trainable Masked Layers", ICLR 2020, arXiv 2005.06870 (code junjieliu2910/DynamicSparseTraining;
literature.md E "DST").

Every masked layer has a trainable threshold per output row (``granularity="row"``, the paper's
choice: one per neuron / filter) or one per layer. In the forward pass
``mask = step(|W| - t)`` (1 where the argument is > 0) and the layer uses ``W * mask``; in the
backward pass the step has the long-tailed surrogate derivative ``2 - 4|x|`` for ``|x| <= 0.4``,
``0.4`` for ``0.4 < |x| <= 1`` and ``0`` beyond, so both the weights and the thresholds learn.
The loss adds ``alpha * sum(exp(-t))`` over all thresholds, which pushes thresholds up (more
sparsity). Thresholds start at 0; when a layer keeps <= 1% of its weights its thresholds are reset
to 0 (as the reference code does). Nothing is removed for good: a pruned weight keeps its value
and returns when it grows above the threshold. After training the masks are baked into the
weights; :meth:`DST.info` has the density every layer reached.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .._deps import require_torch
from .loop import Method, TrainConfig
from .metrics import LayerCompression, compressible_layers

torch = require_torch()
nn = torch.nn

COLLAPSE_KEEP_RATIO = 0.01


class BinaryStep(torch.autograd.Function):
    """Forward ``x > 0``; backward the long-tailed surrogate derivative of DST."""

    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor") -> "torch.Tensor":
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: "torch.Tensor") -> "torch.Tensor":
        (x,) = ctx.saved_tensors
        a = x.abs()
        d = torch.where(a <= 0.4, 2 - 4 * a, torch.where(a <= 1.0, torch.full_like(a, 0.4), torch.zeros_like(a)))
        return grad * d


def surrogate_grad(x: "torch.Tensor") -> "torch.Tensor":
    """The surrogate derivative of the step at ``x`` (for tests and plots)."""
    x = x.detach().clone().requires_grad_(True)
    BinaryStep.apply(x).sum().backward()
    return x.grad


@njit(cache=True)
def _masked_forward(w2: np.ndarray, t: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover (numba)
    rows, cols = w2.shape
    per_row = t.shape[0] == rows and rows > 1
    kept = 0
    for r in range(rows):
        tr = t[r] if per_row else t[0]
        for c in range(cols):
            v = w2[r, c]
            if abs(v) - tr > 0:
                out[r, c] = v
                kept += 1
            else:
                out[r, c] = 0.0
    return kept


@njit(cache=True, fastmath=True)
def _masked_backward(g2: np.ndarray, w2: np.ndarray, t: np.ndarray, grad_w: np.ndarray, grad_t: np.ndarray,
                     alpha: float) -> None:  # pragma: no cover (numba)
    rows, cols = w2.shape
    per_row = t.shape[0] == rows and rows > 1
    total = np.float32(0.0)
    for r in range(rows):
        tr = t[r] if per_row else t[0]
        acc = np.float32(0.0)
        for c in range(cols):
            v = w2[r, c]
            av = abs(v)
            x = av - tr
            ax = abs(x)
            # long-tailed surrogate: 2 - 4|x| (|x| <= 0.4), 0.4 (0.4 < |x| <= 1), 0 beyond
            d = max(np.float32(2.0) - np.float32(4.0) * ax, np.float32(0.4))
            d = d if ax <= np.float32(1.0) else np.float32(0.0)
            gv = g2[r, c]
            gd = gv * d
            # d(W * step(|W| - t))/dW = step + W * s' * sign(W) = step + s' |W|
            grad_w[r, c] = (gv if x > 0 else np.float32(0.0)) + gd * av
            acc -= gd * v
        if per_row:
            grad_t[r] = acc - alpha * np.exp(-tr)  # + d/dt of the regulariser alpha * exp(-t)
        else:
            total += acc
    if not per_row:
        grad_t[0] = total - alpha * np.exp(-t[0])


def _use_numba(w: "torch.Tensor", backend: str) -> bool:
    """numba only for float32 CPU tensors (``auto``) or when asked; never ``.numpy()`` elsewhere."""
    fits = w.device.type == "cpu" and w.dtype == torch.float32
    if backend == "numba" and not fits:
        raise ValueError(f"the numba DST kernels need float32 CPU weights, got {w.dtype} on {w.device}")
    return backend == "numba" or (backend == "auto" and fits)


def _masked_forward_torch(w2: "torch.Tensor", t: "torch.Tensor") -> tuple["torch.Tensor", int]:
    tr = t.view(-1, 1) if t.numel() == w2.shape[0] and w2.shape[0] > 1 else t.view(1, 1)
    keep = (w2.abs() - tr) > 0
    return w2 * keep.to(w2.dtype), int(keep.sum())


def _masked_backward_torch(g2: "torch.Tensor", w2: "torch.Tensor", t: "torch.Tensor",
                           alpha: float) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The numba backward in torch ops (any device / dtype)."""
    per_row = t.numel() == w2.shape[0] and w2.shape[0] > 1
    tr = t.view(-1, 1) if per_row else t.view(1, 1)
    av = w2.abs()
    x = av - tr
    ax = x.abs()
    d = torch.where(ax <= 1.0, torch.clamp(2.0 - 4.0 * ax, min=0.4), torch.zeros_like(ax))
    gd = g2 * d
    grad_w = g2 * (x > 0).to(g2.dtype) + gd * av
    acc = -(gd * w2).sum(dim=1)
    if per_row:
        grad_t = acc - alpha * torch.exp(-t.view(-1))
    else:
        grad_t = (acc.sum() - alpha * torch.exp(-t.view(-1)[0])).view(1)
    return grad_w, grad_t.to(t.dtype)


class MaskedWeight(torch.autograd.Function):
    """``W * step(|W| - t)`` in one node; returns ``(masked W, kept count)``.

    ``alpha``: the gradient of the sparsity regulariser ``alpha * sum(exp(-t))`` is added to the
    thresholds' gradient in the same kernel (so the regulariser needs no graph of its own).
    ``backend``: ``auto`` (numba kernels for float32 CPU tensors, torch ops otherwise), ``torch``
    or ``numba``; both compute the same values (tested).

    ``t`` holds one threshold per row of the GEMM view of ``W`` (or one for the layer). Gradients:
    ``dW = g * mask + g * W * s'(|W| - t) * sign(W)`` and ``dt = -sum_row g * W * s'(|W| - t)``
    with ``s'`` the long-tailed surrogate of :class:`BinaryStep` — the same values autograd gives
    for the decomposed form ``W * BinaryStep(|W| - t)`` (tested).
    """

    @staticmethod
    def forward(ctx: Any, w: "torch.Tensor", t: "torch.Tensor", alpha: float = 0.0,
                backend: str = "auto") -> tuple["torch.Tensor", int]:
        w2 = w.detach().reshape(w.shape[0], -1).contiguous()
        tt = t.detach().reshape(-1).contiguous()
        fast = _use_numba(w2, backend)
        if fast:
            out = torch.empty_like(w2)
            kept = _masked_forward(w2.numpy(), tt.numpy(), out.numpy())
        else:
            out, kept = _masked_forward_torch(w2, tt)
        ctx.save_for_backward(w2, tt)
        ctx.w_shape, ctx.alpha, ctx.fast = w.shape, float(alpha), fast
        return out.view(w.shape), kept

    @staticmethod
    def backward(ctx: Any, g: "torch.Tensor", _kept: Any) -> tuple[Any, ...]:
        w2, tt = ctx.saved_tensors
        g2 = g.reshape(w2.shape).contiguous()
        if ctx.fast:
            grad_w = torch.empty_like(w2)
            grad_t = torch.empty_like(tt)
            _masked_backward(g2.numpy(), w2.numpy(), tt.numpy(), grad_w.numpy(), grad_t.numpy(), ctx.alpha)
        else:
            grad_w, grad_t = _masked_backward_torch(g2, w2, tt, ctx.alpha)
        return grad_w.view(ctx.w_shape), grad_t, None, None


def _install(module: "nn.Module", per_row: bool, alpha: float, backend: str = "auto") -> Any:
    """``torch.nn.utils.prune``-style: ``weight_orig`` + ``dst_threshold`` parameters and a forward
    pre-hook that sets ``module.weight`` to the masked weight before every forward."""
    w = module.weight
    del module._parameters["weight"]
    module.register_parameter("weight_orig", nn.Parameter(w.detach().clone()))
    module.register_parameter("dst_threshold", nn.Parameter(torch.zeros(w.shape[0] if per_row else 1, dtype=w.dtype,
                                                                        device=w.device)))
    module.weight = w.detach().clone()

    def hook(mod: "nn.Module", args: Any) -> None:
        t = mod.dst_threshold
        masked, kept = MaskedWeight.apply(mod.weight_orig, t, alpha, backend)
        if kept <= COLLAPSE_KEEP_RATIO * masked.numel():
            with torch.no_grad():  # the reference resets a collapsed layer's thresholds
                t.zero_()
            masked, kept = MaskedWeight.apply(mod.weight_orig, t, alpha, backend)
        mod.weight = masked

    return module.register_forward_pre_hook(hook)


def layer_mask(module: "nn.Module") -> "torch.Tensor":
    """The current boolean mask ``|W| > t`` of a DST layer."""
    w = module.weight_orig.detach()
    return (w.reshape(w.shape[0], -1).abs() > module.dst_threshold.detach().view(-1, 1)).view(w.shape)


class DST(Method):
    """Dynamic sparse training of every conv/linear layer except ``skip``.

    ``alpha`` weights the sparsity regulariser ``sum(exp(-t))`` (its exact gradient
    ``-alpha * exp(-t)`` is added to the thresholds' gradients by the backward kernel; the logged
    loss is the cross-entropy only, the regulariser is logged per epoch); ``granularity`` is ``row`` (a threshold per output
    neuron/filter) or ``layer``.
    """

    name = "dst"

    def __init__(self, alpha: float = 5e-3, granularity: str = "row", skip: tuple[str, ...] = (),
                 backend: str = "auto"):
        if granularity not in ("row", "layer"):
            raise ValueError(f"granularity must be 'row' or 'layer', got {granularity!r}")
        if backend not in ("auto", "torch", "numba"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'numba', got {backend!r}")
        self.backend = backend
        self.alpha = alpha
        self.granularity = granularity
        self.skip = skip
        self._layers: dict[str, "nn.Module"] = {}
        self._hooks: list[Any] = []
        self.density_log: list[dict[str, float]] = []
        self.final_density: dict[str, float] = {}
        self.final_masks: dict[str, "torch.Tensor"] = {}

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        for name, m in compressible_layers(model).items():
            if name in self.skip or hasattr(m, "dst_threshold"):
                continue
            self._hooks.append(_install(m, self.granularity == "row", self.alpha, self.backend))
            self._layers[name] = m

    def thresholds(self) -> dict[str, "torch.Tensor"]:
        return {n: m.dst_threshold.detach().clone() for n, m in self._layers.items()}

    def densities(self) -> dict[str, float]:
        """Fraction of weights each masked layer keeps now."""
        return {n: float(layer_mask(m).float().mean()) for n, m in self._layers.items()}

    def regularizer(self) -> float:
        return self.alpha * sum(float(torch.exp(-m.dst_threshold.detach()).sum()) for m in self._layers.values())

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        d = self.densities()
        log["layer_density"] = d
        log["regularizer"] = self.regularizer()
        self.density_log.append(d)
        return False

    def finalize(self, model: "nn.Module") -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        for n, m in self._layers.items():
            mask = layer_mask(m)
            w = m.weight_orig.detach() * mask.to(m.weight_orig.dtype)
            del m.weight
            del m._parameters["weight_orig"]
            del m._parameters["dst_threshold"]
            m.register_parameter("weight", nn.Parameter(w))
            self.final_masks[n] = mask
            self.final_density[n] = float(mask.float().mean())

    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        from ..recipe import UnstructuredPrune

        return {n: LayerCompression(name=n, prune=UnstructuredPrune(density=max(self.final_density[n], 1e-9)),
                                    mask=self.final_masks[n]) for n in self.final_masks}

    def info(self) -> dict[str, Any]:
        return {"layer_density": dict(self.final_density), "density_per_epoch": self.density_log}

    def state_dict(self) -> dict[str, Any]:
        return {"density_log": self.density_log}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.density_log = list(state["density_log"])


__all__ = ["DST", "BinaryStep", "MaskedWeight", "surrogate_grad", "layer_mask"]
