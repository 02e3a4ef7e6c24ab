"""Reweighted group Lasso for block-structured pruning (BLK-REW).

Ma et al., "BLK-REW: A Unified Block-based DNN Pruning Framework using Reweighted Regularization
Method", arXiv 2001.08357; for BERT-style transformers Li et al., "Efficient Transformer-based
Large Scale Language Representations using Hardware-friendly Block Structured Pruning", EMNLP
Findings 2020, arXiv 2009.08065. Reweighting as in Candes, Wakin, Boyd, "Enhancing Sparsity by
Reweighted l1 Minimization", 2008.

Method (:class:`ReweightedGroupLasso`, a :class:`~.loop.Method` of :func:`~.loop.train`):

1. **Penalty phase** (``penalty_epochs``): loss ``CE + lam * sum_layers sum_g P_g ||W_g||_F`` over
   the ``bh x bw`` blocks ``W_g`` of every target weight's *GEMM view* (conv ``out x in/groups*kh*kw``,
   linear ``out x in``, LSTM/GRU layer k ``gates*hidden x (input + hidden)`` = ``[W_ih | W_hh]``, the
   layout the exporter writes; edge blocks may be partial, zero padded). The factors
   ``P_g = 1 / (||W_g|| + eps)`` are recomputed from the current weights every ``reweight_every``
   optimisation steps (first at the phase's first step), so blocks that are already small are
   pushed harder and large ones are left alone (the penalty approaches the count of non-zero
   blocks). ``reweight=False`` keeps ``P_g = 1`` (plain group Lasso, Wen et al., NeurIPS 2016,
   arXiv 1608.03665); ``lam=0`` is plain training (the one-shot magnitude baseline).
2. **Hard pruning** at the first retraining epoch: per layer, keep the ``density`` fraction of
   blocks of largest L2 norm (:func:`~accelsim.frontend.pruning.block_mask`; ``round(density *
   blocks)``, at least one), zero the rest.
3. **Masked retraining** (``retrain_epochs``, lr scaled by ``retrain_lr_scale``): gradients and
   weights are masked after every step, so pruned blocks stay exactly zero.

Assumptions: the penalty is minimised by the optimiser's (sub)gradient steps (as in the papers),
so the penalty phase drives blocks *towards* zero and the hard projection removes them; every
target layer gets the same block density (per-layer rates as in BLK-REW's uniform setting).
``nn.MultiheadAttention``'s packed ``in_proj_weight`` is not targeted (its ``out_proj`` is a
Linear and is); hand-written attention with q/k/v/out Linear layers is fully covered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .._deps import require_torch
from .loop import Method, TrainConfig
from .metrics import LayerCompression

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


@dataclass
class ReweightedGroupLassoConfig:
    """Hyper-parameters. ``density`` is the fraction of blocks kept per target layer."""

    density: float = 0.25
    block: tuple[int, int] = (4, 4)
    lam: float = 1e-3
    eps: float = 1e-3
    reweight: bool = True
    reweight_every: int = 10
    penalty_epochs: int = 10
    retrain_epochs: int = 10
    retrain_lr_scale: float = 1.0
    layers: list[str] | None = None  # None: every conv / linear / LSTM / GRU not in ``skip``
    skip: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        src = "ReweightedGroupLassoConfig"
        if not 0.0 < self.density <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.density}", source=src, field="density")
        if len(self.block) != 2 or min(self.block) < 1:
            raise ConfigError(f"must be two positive ints, got {self.block}", source=src, field="block")
        self.block = (int(self.block[0]), int(self.block[1]))
        for name in ("lam", "retrain_lr_scale"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", source=src, field=name)
        if self.eps <= 0:
            raise ConfigError(f"must be > 0, got {self.eps}", source=src, field="eps")
        if self.reweight_every < 1:
            raise ConfigError(f"must be >= 1, got {self.reweight_every}", source=src, field="reweight_every")
        for name in ("penalty_epochs", "retrain_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", source=src, field=name)
        if self.penalty_epochs + self.retrain_epochs < 1:
            raise ConfigError("penalty_epochs + retrain_epochs must be >= 1", source=src, field="retrain_epochs")


@dataclass
class BlockGroup:
    """One GEMM view: module ``module`` and the parameters concatenated along the reduction axis."""

    key: str  # "conv1" or "lstm.l0"
    module: str
    params: list[str]


def gemm_view(tensors: list["torch.Tensor"]) -> "torch.Tensor":
    """``out x reduction`` view: each tensor as ``out x -1``, concatenated along columns."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1) if len(tensors) > 1 else \
        tensors[0].reshape(tensors[0].shape[0], -1)


def block_norms(view: "torch.Tensor", block: tuple[int, int]) -> "torch.Tensor":
    """Frobenius norm of every ``bh x bw`` block of a 2-D ``view`` (edge blocks zero padded),
    ``ceil(rows/bh) x ceil(cols/bw)``; differentiable (``+1e-12`` inside the root)."""
    bh, bw = block
    rows, cols = view.shape
    nbr, nbc = math.ceil(rows / bh), math.ceil(cols / bw)
    padded = F.pad(view, (0, nbc * bw - cols, 0, nbr * bh - rows))
    return padded.reshape(nbr, bh, nbc, bw).pow(2).sum(dim=(1, 3)).add(1e-12).sqrt()


def block_keep_mask(norms: "torch.Tensor", density: float) -> "torch.Tensor":
    """Boolean block mask keeping ``round(density * blocks)`` (>= 1) blocks of largest norm (stable ties)."""
    flat = norms.reshape(-1)
    keep = max(1, min(flat.numel(), int(round(density * flat.numel()))))
    idx = torch.argsort(flat, descending=True, stable=True)[:keep]
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[idx] = True
    return mask.reshape(norms.shape)


def expand_blocks(bmask: "torch.Tensor", shape: tuple[int, int], block: tuple[int, int]) -> "torch.Tensor":
    """Element mask of a ``rows x cols`` view from its block mask."""
    bh, bw = block
    full = bmask.repeat_interleave(bh, dim=0).repeat_interleave(bw, dim=1)
    return full[:shape[0], :shape[1]].clone()


def block_groups(model: "nn.Module", layers: list[str] | None = None, skip: list[str] | None = None) -> list[BlockGroup]:
    """The GEMM views of ``model`` to prune: every Conv2d / Linear ``weight`` and every LSTM/GRU
    layer (and direction) ``[weight_ih_lK | weight_hh_lK]``, in definition order."""
    skip = set(skip or [])
    out: list[BlockGroup] = []
    found = set()
    for name, m in model.named_modules():
        if name in skip or (layers is not None and name not in layers):
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out.append(BlockGroup(name, name, ["weight"]))
            found.add(name)
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            for k in range(m.num_layers):
                for sfx in ([""] + (["_reverse"] if m.bidirectional else [])):
                    out.append(BlockGroup(f"{name}.l{k}{sfx}", name, [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}"]))
            found.add(name)
    if layers is not None and set(layers) - found:
        raise ConfigError(f"no conv/linear/LSTM layer named {sorted(set(layers) - found)}",
                          source="ReweightedGroupLassoConfig", field="layers")
    if not out:
        raise ConfigError("no layer to prune", source="ReweightedGroupLassoConfig", field="layers")
    return out


class ReweightedGroupLasso(Method):
    """BLK-REW block pruning: reweighted group-Lasso phase, hard block pruning, masked retraining."""

    name = "blk_rew"

    def __init__(self, config: ReweightedGroupLassoConfig | None = None):
        self.cfg = config or ReweightedGroupLassoConfig()
        self.groups: list[BlockGroup] = []
        self.factors: dict[str, "torch.Tensor"] = {}  # P_g per group (blocks)
        self.block_masks: dict[str, "torch.Tensor"] = {}  # kept blocks per group (after hard pruning)
        self.phase = ""
        self.penalty_steps = 0
        self.reweights = 0
        self.log: list[dict[str, Any]] = []
        self._model: "nn.Module | None" = None
        self._emasks: dict[str, list["torch.Tensor"]] = {}

    # --- structure ----------------------------------------------------------------------------------
    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        self._model = model
        self.groups = block_groups(model, self.cfg.layers, self.cfg.skip)

    def _tensors(self, g: BlockGroup) -> list["torch.Tensor"]:
        assert self._model is not None
        m = self._model.get_submodule(g.module)
        return [getattr(m, p) for p in g.params]

    def total_epochs(self, config: TrainConfig) -> int:
        return self.cfg.penalty_epochs + self.cfg.retrain_epochs

    def _phase_at(self, epoch: int) -> str:
        return "penalty" if epoch < self.cfg.penalty_epochs else "retrain"

    def schedule_span(self, epoch: int, total: int) -> tuple[int, int]:
        if self._phase_at(epoch) == "penalty":
            return epoch, self.cfg.penalty_epochs
        return epoch - self.cfg.penalty_epochs, self.cfg.retrain_epochs

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        params = [p for p in model.parameters() if p.requires_grad]
        scale = self.cfg.retrain_lr_scale if self.phase == "retrain" else 1.0
        return [{"params": params, "lr": config.lr * scale}] if params else []

    # --- reweighting ----------------------------------------------------------------------------------
    def current_norms(self) -> dict[str, "torch.Tensor"]:
        """Block norms of every group now (detached)."""
        with torch.no_grad():
            return {g.key: block_norms(gemm_view([t.detach() for t in self._tensors(g)]), self.cfg.block)
                    for g in self.groups}

    def reweight_now(self) -> None:
        """``P_g = 1 / (||W_g|| + eps)`` from the current weights (1 for plain group Lasso)."""
        for key, norms in self.current_norms().items():
            self.factors[key] = 1.0 / (norms + self.cfg.eps) if self.cfg.reweight else torch.ones_like(norms)
        self.reweights += 1

    def group_penalty(self) -> "torch.Tensor":
        """``sum_g P_g ||W_g||`` over all groups (differentiable in the weights)."""
        total = None
        for g in self.groups:
            term = (self.factors[g.key] * block_norms(gemm_view(self._tensors(g)), self.cfg.block)).sum()
            total = term if total is None else total + term
        assert total is not None
        return total

    def penalty(self, model: "nn.Module") -> "torch.Tensor | None":
        if self.phase != "penalty" or self.cfg.lam == 0:
            return None
        if self.penalty_steps % self.cfg.reweight_every == 0 or not self.factors:
            self.reweight_now()
        self.penalty_steps += 1
        return self.cfg.lam * self.group_penalty()

    # --- pruning ------------------------------------------------------------------------------------
    def hard_prune(self) -> None:
        """Fix the block masks from the current weights (top ``density`` blocks per group) and zero the rest."""
        with torch.no_grad():
            for key, norms in self.current_norms().items():
                self.block_masks[key] = block_keep_mask(norms, self.cfg.density)
        self._emasks = {}
        self._apply_masks(grads=False)

    def element_masks(self, g: BlockGroup) -> list["torch.Tensor"]:
        """Masks of the group's parameters (their own shapes) from its block mask."""
        cached = self._emasks.get(g.key)
        if cached is None:
            ts = self._tensors(g)
            view_shape = (ts[0].shape[0], sum(t[0].numel() for t in ts))
            full = expand_blocks(self.block_masks[g.key], view_shape, self.cfg.block)
            cached, start = [], 0
            for t in ts:
                width = t[0].numel()
                cached.append(full[:, start:start + width].reshape(t.shape).to(t.dtype))
                start += width
            self._emasks[g.key] = cached
        return cached

    def _apply_masks(self, grads: bool) -> None:
        with torch.no_grad():
            for g in self.groups:
                if g.key not in self.block_masks:
                    continue
                for t, m in zip(self._tensors(g), self.element_masks(g)):
                    if grads:
                        if t.grad is not None:
                            t.grad.mul_(m)
                    else:
                        t.mul_(m)

    # --- hooks ----------------------------------------------------------------------------------------
    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        phase = self._phase_at(epoch)
        if phase == self.phase:
            return False
        self.phase = phase
        if phase == "retrain":
            self.hard_prune()
        return True

    def after_backward(self, model: "nn.Module") -> None:
        if self.phase == "retrain":
            self._apply_masks(grads=True)

    def after_step(self, model: "nn.Module") -> None:
        if self.phase == "retrain":
            self._apply_masks(grads=False)

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        log["phase"] = self.phase
        norms = self.current_norms()
        flat = torch.cat([n.reshape(-1) for n in norms.values()])
        log["small_block_fraction"] = float((flat < 1e-2 * float(flat.max())).float().mean())
        if self.phase == "penalty" and self.factors:
            with torch.no_grad():
                log["group_penalty"] = float(self.group_penalty())
        if self.block_masks:
            log["block_density"] = self.block_density()
        self.log.append({k: log[k] for k in ("epoch", "phase", "small_block_fraction", "group_penalty",
                                              "block_density", "test_acc") if k in log})
        return False

    def finalize(self, model: "nn.Module") -> None:
        if not self.block_masks:  # no retraining phase: prune now
            self.hard_prune()
        self._apply_masks(grads=False)

    # --- results ----------------------------------------------------------------------------------------
    def block_density(self) -> float:
        """Kept blocks / blocks over all target groups."""
        kept = sum(int(m.sum()) for m in self.block_masks.values())
        return kept / max(sum(m.numel() for m in self.block_masks.values()), 1)

    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        """Per-module block-sparsity records (masks in the exporter's layouts)."""
        from ..recipe import BlockPrune

        out: dict[str, LayerCompression] = {}
        for g in self.groups:
            if g.key not in self.block_masks:
                continue
            bm = self.block_masks[g.key]
            masks = [m.bool() for m in self.element_masks(g)]
            rec = out.get(g.module)
            if rec is None:
                rec = LayerCompression(name=g.module, prune=None)
                out[g.module] = rec
            if g.params == ["weight"]:
                rec.mask = masks[0]
            else:
                rec.param_masks = {**(rec.param_masks or {}), **dict(zip(g.params, masks))}
                rec.mask = None
            kept = float(bm.float().mean())
            rec.prune = BlockPrune(density=max(kept, 1e-9), block=self.cfg.block)
        return out

    def info(self) -> dict[str, Any]:
        return {"block_density": self.block_density() if self.block_masks else 1.0, "reweights": self.reweights,
                "layer_block_density": {k: float(m.float().mean()) for k, m in self.block_masks.items()},
                "log": self.log}

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "factors": self.factors, "block_masks": self.block_masks,
                "penalty_steps": self.penalty_steps, "reweights": self.reweights, "log": self.log}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase = state["phase"]
        self.factors = dict(state["factors"])
        self.block_masks = dict(state["block_masks"])
        self.penalty_steps = state["penalty_steps"]
        self.reweights = state["reweights"]
        self.log = list(state["log"])
        self._emasks = {}


__all__ = ["ReweightedGroupLasso", "ReweightedGroupLassoConfig", "BlockGroup", "block_groups", "block_norms",
           "block_keep_mask", "expand_blocks", "gemm_view"]
