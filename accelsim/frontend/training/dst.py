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

from .._deps import require_torch
from .loop import Method, TrainConfig
from .metrics import LayerCompression, compressible_layers

torch = require_torch()
nn = torch.nn
parametrize = torch.nn.utils.parametrize

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


class ThresholdMask(nn.Module):
    """Parametrisation ``W -> W * step(|W| - t)`` with trainable thresholds ``t``."""

    def __init__(self, rows: int, per_row: bool = True):
        super().__init__()
        self.threshold = nn.Parameter(torch.zeros(rows if per_row else 1))

    def mask(self, w: "torch.Tensor") -> "torch.Tensor":
        w2 = w.reshape(w.shape[0], -1)
        t = self.threshold.view(-1, 1)
        m = BinaryStep.apply(w2.abs() - t)
        if float(m.detach().mean()) <= COLLAPSE_KEEP_RATIO:
            with torch.no_grad():
                self.threshold.zero_()
            m = BinaryStep.apply(w2.abs() - self.threshold.view(-1, 1))
        return m.view_as(w)

    def forward(self, w: "torch.Tensor") -> "torch.Tensor":
        return w * self.mask(w)


class DST(Method):
    """Dynamic sparse training of every conv/linear layer except ``skip``.

    ``alpha`` weights the sparsity regulariser ``sum(exp(-t))``; ``granularity`` is ``row`` (a
    threshold per output neuron/filter) or ``layer``.
    """

    name = "dst"

    def __init__(self, alpha: float = 5e-3, granularity: str = "row", skip: tuple[str, ...] = ()):
        if granularity not in ("row", "layer"):
            raise ValueError(f"granularity must be 'row' or 'layer', got {granularity!r}")
        self.alpha = alpha
        self.granularity = granularity
        self.skip = skip
        self._layers: dict[str, "nn.Module"] = {}
        self.density_log: list[dict[str, float]] = []
        self.final_density: dict[str, float] = {}
        self.final_masks: dict[str, "torch.Tensor"] = {}

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        for name, m in compressible_layers(model).items():
            if name in self.skip or parametrize.is_parametrized(m, "weight"):
                continue
            parametrize.register_parametrization(m, "weight", ThresholdMask(m.weight.shape[0], self.granularity == "row"))
            self._layers[name] = m

    def _param(self, m: "nn.Module") -> "ThresholdMask":
        return m.parametrizations.weight[0]

    def thresholds(self) -> dict[str, "torch.Tensor"]:
        return {n: self._param(m).threshold.detach().clone() for n, m in self._layers.items()}

    def densities(self) -> dict[str, float]:
        """Fraction of weights each masked layer keeps now."""
        out = {}
        with torch.no_grad():
            for n, m in self._layers.items():
                raw = m.parametrizations.weight.original
                out[n] = float(self._param(m).mask(raw).mean())
        return out

    def penalty(self, model: "nn.Module") -> "torch.Tensor | None":
        total = None
        for m in self._layers.values():
            term = torch.exp(-self._param(m).threshold).sum()
            total = term if total is None else total + term
        return None if total is None else self.alpha * total

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        d = self.densities()
        log["layer_density"] = d
        self.density_log.append(d)
        return False

    def finalize(self, model: "nn.Module") -> None:
        for n, m in self._layers.items():
            with torch.no_grad():
                self.final_masks[n] = self._param(m).mask(m.parametrizations.weight.original).bool()
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            self.final_density[n] = float(self.final_masks[n].float().mean())

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


__all__ = ["DST", "BinaryStep", "ThresholdMask", "surrogate_grad"]
