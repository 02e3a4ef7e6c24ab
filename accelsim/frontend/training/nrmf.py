"""NRMF: nuclear-norm rank minimisation with one global, dynamic rank budget, then factorisation.

Ran, Lin, So, Chesi, Wong, "Exploiting Elasticity in Tensor Ranks for Compressing Neural
Networks", ICPR 2020, arXiv 2105.04218 (literature.md "NRMF"): a nuclear-norm penalty on the
unfolded kernels during training reduces the Tucker ranks along the input and output channels,
with the ranks chosen globally and re-decided as training goes.

Method (:class:`NRMF`, a :class:`~.loop.Method` of :func:`~.loop.train`):

1. **Regularised training** (``reg_epochs``). After every optimiser step each target layer takes a
   proximal step of ``lam * sum_k ||W_(k)||_*``: singular-value soft-thresholding (:func:`svt`,
   the exact prox of one nuclear norm) of the mode-1 unfolding ``K x C*kh*kw`` and then of the
   mode-2 unfolding ``C x K*kh*kw`` of a conv kernel (a sequential splitting of the two terms),
   of ``W`` itself for a linear layer. The threshold is ``tau = lam * lr`` (the proximal-gradient
   step for SGD; with Adam it is a fixed per-step shrinkage) for singular values inside the current
   rank and ``tail_scale * tau`` beyond it, so the tail decays fast while a singular value that
   grows back above the global threshold re-enters the rank (elastic ranks).
2. **Global rank decision** at the start and after every epoch: every singular value of every
   unfolding is normalised by the largest of its unfolding; ranks grow greedily in decreasing
   order of normalised value, each step charged its marginal parameter cost (linear rank r:
   ``r (in + out)``; Tucker-2 ranks ``(r_out, r_in)``: ``C r_in + r_in r_out kh kw + r_out K``)
   while the factorised weights stay within ``budget`` x the target layers' dense weights. The last
   accepted value is the global threshold. Zero singular values are never added; a layer whose
   factorised form would not be smaller than its dense weight stays dense (which only lowers the
   total). Ranks, threshold and nuclear norms are logged per epoch.
3. **Factorised fine-tuning** (``finetune_epochs``): ranks are frozen; after every step each
   layer is projected onto its ranks (truncated SVD; for convs the Tucker-2 HOSVD projection
   ``W x_1 U0 U0^T x_2 U1 U1^T``), i.e. training on the set of rank-(r_out, r_in) kernels. At the end
   (:meth:`finalize`) the layers become :class:`~accelsim.frontend.factorization.Tucker2Conv` /
   :class:`~accelsim.frontend.factorization.LowRankLinear` (``tucker2`` / ``truncated`` with the
   final ranks: exact, the weights already have those ranks), exported with ``factor_of``.

Assumptions: grouped / depthwise convs are not targeted; rank >= ``min_rank`` per mode; the budget
counts conv/linear weights of the target layers only (biases and other layers are unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError
from .._deps import require_torch
from ..factorization import LowRankLinear, Tucker2Conv, factor_record, parts, svt, tucker2, _leading
from .loop import Method, TrainConfig
from .metrics import LayerCompression

torch = require_torch()
nn = torch.nn


@dataclass
class NRMFConfig:
    """Hyper-parameters; ``budget`` is the fraction of the target layers' dense weights kept."""

    budget: float = 0.3
    lam: float = 1e-2
    tail_scale: float = 1.0
    reg_epochs: int = 10
    finetune_epochs: int = 5
    finetune_lr_scale: float = 1.0
    min_rank: int = 1
    layers: list[str] | None = None  # None: every (ungrouped) conv / linear not in ``skip``
    skip: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        src = "NRMFConfig"
        if not 0.0 < self.budget <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.budget}", source=src, field="budget")
        for name in ("lam", "finetune_lr_scale"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", source=src, field=name)
        if self.tail_scale < 1:
            raise ConfigError(f"must be >= 1, got {self.tail_scale}", source=src, field="tail_scale")
        if self.min_rank < 1:
            raise ConfigError(f"must be >= 1, got {self.min_rank}", source=src, field="min_rank")
        for name in ("reg_epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", source=src, field=name)
        if self.reg_epochs + self.finetune_epochs < 1:
            raise ConfigError("reg_epochs + finetune_epochs must be >= 1", source=src, field="reg_epochs")


# --- unfoldings and costs ----------------------------------------------------------------------------

def unfold(w: "torch.Tensor", mode: int) -> "torch.Tensor":
    """Mode-``mode`` unfolding (0: outputs, 1: inputs) of a conv kernel / linear weight."""
    return w.movedim(mode, 0).reshape(w.shape[mode], -1)


def fold(mat: "torch.Tensor", mode: int, shape: tuple[int, ...]) -> "torch.Tensor":
    """Inverse of :func:`unfold`."""
    moved = (shape[mode],) + tuple(s for i, s in enumerate(shape) if i != mode)
    return mat.reshape(moved).movedim(0, mode)


def modes_of(shape: tuple[int, ...]) -> int:
    """Unfoldings regularised: 2 for a conv kernel (outputs, inputs), 1 for a linear weight."""
    return 2 if len(shape) == 4 else 1


def factorised_params(shape: tuple[int, ...], ranks: tuple[int, ...]) -> int:
    """Weights of the factorised layer: SVD ``r (in + out)``; Tucker-2 ``C r_in + r_in r_out kh kw + r_out K``."""
    if len(shape) == 4:
        k, c, kh, kw = shape
        r_out, r_in = ranks
        return c * r_in + r_in * r_out * kh * kw + r_out * k
    return ranks[0] * (shape[0] + shape[1])


def dense_params(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def layer_params(shape: tuple[int, ...], ranks: tuple[int, ...]) -> int:
    """What the layer will hold: factorised if that is smaller, else dense."""
    return min(factorised_params(shape, ranks), dense_params(shape))


def singular_values(w: "torch.Tensor") -> list[np.ndarray]:
    """Singular values (descending) of each regularised unfolding of ``w``."""
    with torch.no_grad():
        return [torch.linalg.svdvals(unfold(w.detach().double(), m)).cpu().numpy() for m in range(modes_of(tuple(w.shape)))]


def nuclear_norm(w: "torch.Tensor") -> float:
    """``sum_k ||W_(k)||_*`` over the regularised unfoldings."""
    return float(sum(s.sum() for s in singular_values(w)))


@dataclass
class RankDecision:
    """Ranks per layer (one per unfolding), the global threshold and the parameters they hold."""

    ranks: dict[str, tuple[int, ...]]
    threshold: float
    params: int
    budget_params: int
    dense_params: int


def decide_ranks(spectra: dict[str, list[np.ndarray]], shapes: dict[str, tuple[int, ...]], budget: float,
                 min_rank: int = 1) -> RankDecision:
    """Greedy global rank allocation (see the module docstring) for normalised singular values."""
    dense_total = sum(dense_params(s) for s in shapes.values())
    budget_params = int(budget * dense_total)
    ranks = {n: [min(min_rank, len(sp)) for sp in spectra[n]] for n in spectra}

    def fcost(n: str, r: list[int]) -> int:
        return factorised_params(shapes[n], tuple(r))

    total = sum(fcost(n, r) for n, r in ranks.items())
    units = []
    for li, (n, sps) in enumerate(spectra.items()):
        for m, sp in enumerate(sps):
            top = float(sp[0]) if len(sp) and sp[0] > 0 else 0.0
            for i in range(min_rank, len(sp)):
                v = float(sp[i]) / top if top > 0 else 0.0
                if v > 1e-8:
                    units.append((-v, li, m, i, n))
    units.sort()
    blocked: set[tuple[str, int]] = set()
    threshold = 1.0
    for negv, _, m, i, n in units:
        if (n, m) in blocked or ranks[n][m] != i:
            blocked.add((n, m))
            continue
        new = list(ranks[n])
        new[m] += 1
        delta = fcost(n, new) - fcost(n, ranks[n])
        if total + delta <= budget_params:
            ranks[n], total, threshold = new, total + delta, -negv
        else:
            blocked.add((n, m))
    final = {n: tuple(r) for n, r in ranks.items()}
    held = sum(layer_params(shapes[n], r) for n, r in final.items())
    return RankDecision(final, threshold, held, budget_params, dense_total)


def project_rank(w: "torch.Tensor", ranks: tuple[int, ...]) -> "torch.Tensor":
    """Projection onto rank ``ranks``: truncated SVD (linear) or Tucker-2 HOSVD (conv)."""
    wd = w.detach().double()
    if wd.dim() == 4:
        u0 = _leading(unfold(wd, 0), ranks[0])
        u1 = _leading(unfold(wd, 1), ranks[1])
        out = torch.einsum("kchw,ko,po,ci,qi->pqhw", wd, u0, u0, u1, u1)
    else:
        u, s, vh = torch.linalg.svd(wd, full_matrices=False)
        r = ranks[0]
        out = (u[:, :r] * s[:r]) @ vh[:r]
    return out.to(w.dtype)


def _svt_weighted(mat: "torch.Tensor", tau: float, rank: int, tail_scale: float) -> "torch.Tensor":
    """SVT with threshold ``tau`` for the first ``rank`` singular values and ``tail_scale * tau`` after."""
    if tail_scale == 1.0 or rank >= min(mat.shape):
        return svt(mat, tau)
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    t = torch.full_like(s, tau * tail_scale)
    t[:rank] = tau
    return (u * torch.clamp(s - t, min=0.0)[None, :]) @ vh


def nrmf_targets(model: "nn.Module", layers: list[str] | None = None, skip: list[str] | None = None) -> list[str]:
    """Names of the (ungrouped) Conv2d and Linear layers NRMF regularises, in definition order."""
    skip = set(skip or [])
    out = [n for n, m in model.named_modules()
           if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "groups", 1) == 1 and n not in skip
           and (layers is None or n in layers)]
    if layers is not None and set(layers) - set(out):
        raise ConfigError(f"no ungrouped conv/linear layer named {sorted(set(layers) - set(out))}",
                          source="NRMFConfig", field="layers")
    if not out:
        raise ConfigError("no layer to factorise", source="NRMFConfig", field="layers")
    return out


class NRMF(Method):
    """Nuclear-norm regularised training with a global dynamic rank budget, then Tucker-2 / SVD."""

    name = "nrmf"

    def __init__(self, config: NRMFConfig | None = None):
        self.cfg = config or NRMFConfig()
        self.targets: list[str] = []
        self.ranks: dict[str, tuple[int, ...]] = {}
        self.threshold = 1.0
        self.initial_ranks: dict[str, tuple[int, ...]] = {}  # the decision before the first step
        self.phase = ""
        self.log: list[dict[str, Any]] = []
        self.factorised: dict[str, dict[str, Any]] = {}  # name -> factor record + original shape
        self._model: "nn.Module | None" = None
        self._lr = 0.0

    # --- structure -------------------------------------------------------------------------------------
    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        self._model = model
        self._lr = config.lr
        self.targets = nrmf_targets(model, self.cfg.layers, self.cfg.skip)

    def _w(self, name: str) -> "torch.Tensor":
        assert self._model is not None
        return self._model.get_submodule(name).weight

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(self._w(n).shape) for n in self.targets}

    def total_epochs(self, config: TrainConfig) -> int:
        return self.cfg.reg_epochs + self.cfg.finetune_epochs

    def _phase_at(self, epoch: int) -> str:
        return "reg" if epoch < self.cfg.reg_epochs else "finetune"

    def schedule_span(self, epoch: int, total: int) -> tuple[int, int]:
        if self._phase_at(epoch) == "reg":
            return epoch, self.cfg.reg_epochs
        return epoch - self.cfg.reg_epochs, self.cfg.finetune_epochs

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        params = [p for p in model.parameters() if p.requires_grad]
        scale = self.cfg.finetune_lr_scale if self.phase == "finetune" else 1.0
        return [{"params": params, "lr": config.lr * scale}] if params else []

    # --- ranks -----------------------------------------------------------------------------------------
    def decide(self) -> RankDecision:
        """Re-decide the global ranks from the current weights (stored in :attr:`ranks`)."""
        spectra = {n: singular_values(self._w(n)) for n in self.targets}
        dec = decide_ranks(spectra, self.shapes(), self.cfg.budget, self.cfg.min_rank)
        self.ranks, self.threshold = dec.ranks, dec.threshold
        return dec

    def is_factorised(self, name: str) -> bool:
        """Whether ``name``'s ranks make a factorisation smaller than the dense weight."""
        shape = tuple(self._w(name).shape)
        return factorised_params(shape, self.ranks[name]) < dense_params(shape)

    def nuclear_norms(self) -> dict[str, float]:
        return {n: nuclear_norm(self._w(n)) for n in self.targets}

    # --- hooks -------------------------------------------------------------------------------------------
    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        phase = self._phase_at(epoch)
        if phase == self.phase:
            return False
        self.phase = phase
        self.decide()
        if not self.initial_ranks:
            self.initial_ranks = dict(self.ranks)
        if phase == "finetune":
            self._project()
        return True

    def _project(self) -> None:
        with torch.no_grad():
            for n in self.targets:
                if self.is_factorised(n):
                    w = self._w(n)
                    w.copy_(project_rank(w, self.ranks[n]))

    def after_step(self, model: "nn.Module") -> None:
        if self.phase == "finetune":
            self._project()
            return
        if self.cfg.lam == 0:
            return
        tau = self.cfg.lam * self._lr
        with torch.no_grad():
            for n in self.targets:
                w = self._w(n)
                shape = tuple(w.shape)
                for m in range(modes_of(shape)):
                    mat = unfold(w.detach(), m)
                    new = _svt_weighted(mat, tau, self.ranks[n][m], self.cfg.tail_scale)
                    w.copy_(fold(new, m, shape))

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        log["phase"] = self.phase
        norms = self.nuclear_norms()
        log["nuclear_norm"] = float(sum(norms.values()))
        if self.phase == "reg":
            self.decide()
        dec_params = sum(layer_params(s, self.ranks[n]) for n, s in self.shapes().items())
        log["ranks"] = {n: list(r) for n, r in self.ranks.items()}
        log["rank_threshold"] = self.threshold
        log["param_fraction"] = dec_params / max(sum(dense_params(s) for s in self.shapes().values()), 1)
        self.log.append({k: log[k] for k in ("epoch", "phase", "test_acc", "nuclear_norm", "ranks", "rank_threshold",
                                              "param_fraction") if k in log})
        return False

    def finalize(self, model: "nn.Module") -> None:
        """Replace every factorisable target by its Tucker-2 / SVD pieces (the final ranks)."""
        if not self.ranks:
            self.decide()
        with torch.no_grad():
            for n in self.targets:
                if not self.is_factorised(n):
                    continue
                m = model.get_submodule(n)
                if isinstance(m, nn.Conv2d):
                    new: nn.Module = _tucker_module(m, *self.ranks[n])
                    original = {"in_channels": m.in_channels, "out_channels": m.out_channels,
                                "kernel_h": m.kernel_size[0], "kernel_w": m.kernel_size[1]}
                else:
                    new = _lowrank_module(m, self.ranks[n][0])
                    original = {"in_features": m.in_features, "out_features": m.out_features}
                parent_name, _, child = n.rpartition(".")
                setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
                self.factorised[n] = {"record": factor_record(new), "original": original, "parts": parts(new)}

    # --- results -------------------------------------------------------------------------------------
    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        """Per-piece records of the factorised layers (exported with ``factor_of`` = the original layer)."""
        out: dict[str, LayerCompression] = {}
        for n, f in self.factorised.items():
            for i, child in enumerate(f["parts"]):
                name = f"{n}.{child}"
                out[name] = LayerCompression(name=name, unit_fields={"group": n, "factor": dict(f["record"]), "part": i,
                                                                     "original": dict(f["original"])})
        return out

    def param_count(self) -> tuple[int, int]:
        """(weights the target layers hold with the current ranks, their dense weights)."""
        shapes = {n: tuple(self._w(n).shape) for n in self.targets} if not self.factorised else self._orig_shapes
        held = sum(layer_params(s, self.ranks[n]) for n, s in shapes.items())
        return held, sum(dense_params(s) for s in shapes.values())

    @property
    def _orig_shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        assert self._model is not None
        for n in self.targets:
            if n in self.factorised:
                o = self.factorised[n]["original"]
                out[n] = ((o["out_channels"], o["in_channels"], o["kernel_h"], o["kernel_w"]) if "in_channels" in o
                          else (o["out_features"], o["in_features"]))
            else:
                out[n] = tuple(self._w(n).shape)
        return out

    def info(self) -> dict[str, Any]:
        held, dense = self.param_count()
        return {"ranks": {n: list(r) for n, r in self.ranks.items()},
                "initial_ranks": {n: list(r) for n, r in self.initial_ranks.items()}, "threshold": self.threshold,
                "param_fraction": held / max(dense, 1), "factorised": sorted(self.factorised), "log": self.log}

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "ranks": self.ranks, "threshold": self.threshold, "log": self.log,
                "initial_ranks": self.initial_ranks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase = state["phase"]
        self.ranks = {n: tuple(r) for n, r in state["ranks"].items()}
        self.threshold = state["threshold"]
        self.initial_ranks = {n: tuple(r) for n, r in state["initial_ranks"].items()}
        self.log = list(state["log"])


def _tucker_module(conv: "nn.Conv2d", r_out: int, r_in: int) -> "Tucker2Conv":
    w = conv.weight.detach()
    core, u0, u1 = tucker2(w, r_out, r_in)
    out = Tucker2Conv(conv, r_in, r_out)
    out.first.weight.copy_(u1.T.reshape(r_in, -1, 1, 1).to(w.dtype))
    out.core.weight.copy_(core.to(w.dtype))
    out.last.weight.copy_(u0.reshape(w.shape[0], r_out, 1, 1).to(w.dtype))
    if conv.bias is not None:
        out.last.bias.copy_(conv.bias.detach())
    return out.to(w.device)


def _lowrank_module(layer: "nn.Linear", rank: int) -> "LowRankLinear":
    w = layer.weight.detach().double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    out = LowRankLinear(layer.in_features, layer.out_features, rank, bias=layer.bias is not None)
    out.v.weight.copy_((vh[:rank] * root[:, None]).to(layer.weight.dtype))
    out.u.weight.copy_((u[:, :rank] * root[None, :]).to(layer.weight.dtype))
    if layer.bias is not None:
        out.u.bias.copy_(layer.bias.detach())
    return out.to(layer.weight.device)


__all__ = ["NRMF", "NRMFConfig", "RankDecision", "decide_ranks", "project_rank", "nuclear_norm", "singular_values",
           "factorised_params", "layer_params", "unfold", "fold", "nrmf_targets"]
