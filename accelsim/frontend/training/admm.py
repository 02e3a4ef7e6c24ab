"""ADMM progressive pruning and quantisation (with a crossbar-aware mode).

Zhang et al., "A Systematic DNN Weight Pruning Framework using ADMM", arXiv 1804.03294; Ye et al.,
"Progressive DNN Compression: A Key to Achieve Ultra-High Weight Pruning and Quantization Rates
using ADMM", arXiv 1903.09769; crossbar mode after Yuan et al. (memristor ADMM, arXiv Aug 2019;
literature.md B5 and E "ADMM").

Problem: ``min f(W) + sum_i g_i(Z_i)  s.t.  W_i = Z_i`` where ``g_i`` is the indicator of a
constraint set (a sparsity set of any front-end granularity, a crossbar-block set, a set of
quantisation levels). Per ADMM epoch:

- W-step: SGD on ``f(W) + sum_i rho/2 ||W_i - Z_i + U_i||^2`` (every step; the second term's
  exact gradient ``rho (W - Z + U)`` is added after the backward pass, the logged loss is ``f``);
- Z-step: ``Z_i = Proj_S_i(W_i + U_i)`` (end of the epoch);
- U-step: ``U_i += W_i - Z_i``; then ``rho *= rho_growth`` (up to ``rho_max``).

Schedule (progressive): for every target density in ``stage_densities`` an ADMM phase of
``admm_epochs`` then a hard projection (mask fixed) and ``retrain_epochs`` of masked retraining;
when a quantiser is given, a last ADMM phase projects onto its levels inside the fixed mask and
the final retraining trains float shadow weights through the quantiser (straight-through),
keeping the mask. The result's weights are exactly on the levels and zero outside the mask.

Projections: front-end prune specs (:mod:`..recipe`: unstructured, filter, channel, block, nm,
pattern, gs) via :func:`..pruning.project_sparsity`; :class:`.crossbar.CrossbarBlockPrune`;
quantisers: front-end :class:`..recipe.QuantSpec` (int, pow2, binary, ternary) via
:func:`..quantization.quantize_weight`, or :class:`.crossbar.ConductanceQuant`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .._deps import require_torch
from .. import pruning as pr
from . import _fastquant as fq
from . import crossbar as xb
from .loop import Method, TrainConfig
from .metrics import FLOAT_BITS, LayerCompression, compressible_layers

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


@dataclass
class ADMMConfig:
    """``prune``/``quant`` apply to every conv/linear layer except ``skip`` (``overrides`` maps a
    layer name to ``(prune, quant)`` for that layer; None removes the constraint).

    ``stage_densities``: progressive target densities (the prune spec's ``density``, or
    ``kernel_density`` for patterns); None = one stage at the spec's own density.
    """

    prune: Any = None
    quant: Any = None
    skip: tuple[str, ...] = ()
    overrides: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    stage_densities: list[float] | None = None
    admm_epochs: int = 6
    retrain_epochs: int = 4
    quant_admm_epochs: int = 4
    quant_retrain_epochs: int = 4
    rho: float = 1e-3
    rho_growth: float = 1.5
    rho_max: float = 1.0
    retrain_lr_scale: float = 0.5

    def __post_init__(self) -> None:
        if self.prune is None and self.quant is None and not self.overrides:
            raise ConfigError("ADMM needs a prune and/or quant constraint", source="ADMMConfig", field="prune")
        if self.rho <= 0 or self.rho_growth < 1:
            raise ConfigError("rho must be > 0 and rho_growth >= 1", source="ADMMConfig", field="rho")


@dataclass
class _Phase:
    kind: str  # admm_prune | retrain | admm_quant | retrain_quant
    epochs: int
    stage: int = 0


def _with_density(spec: Any, density: float) -> Any:
    if spec is None:
        return None
    if isinstance(spec, xb.CrossbarBlockPrune):
        return xb.CrossbarBlockPrune(density, spec.rows, spec.cols)
    if spec.kind == "pattern":
        return spec.model_copy(update={"kernel_density": density})
    if hasattr(spec, "density"):
        return spec.model_copy(update={"density": density})
    return spec  # N:M has a fixed density


def prune_mask(w: "torch.Tensor", spec: Any, library: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Projection mask of ``w`` onto the sparsity set of ``spec`` (any front-end kind or crossbar)."""
    if isinstance(spec, xb.CrossbarBlockPrune):
        return xb.crossbar_block_mask(w, spec)
    return pr.project_sparsity(w, spec, library)


def quantize(w: "torch.Tensor", spec: Any) -> "torch.Tensor":
    """Projection of ``w`` onto the levels of ``spec`` (front-end QuantSpec or conductance levels)."""
    if isinstance(spec, xb.ConductanceQuant):
        return xb.quantize_conductance(w, spec)
    return fq.quantize_weight(w, spec)


def project(w: "torch.Tensor", prune: Any, quant: Any, mask: "torch.Tensor | None" = None,
            library: "torch.Tensor | None" = None) -> tuple["torch.Tensor", "torch.Tensor | None"]:
    """``(Z, mask)``: ``w`` projected onto the sparsity set (a new mask unless ``mask`` is fixed),
    then onto the quantisation levels inside the mask."""
    if mask is None and prune is not None:
        mask = prune_mask(w, prune, library)
    fmask = None if mask is None else (mask if mask.dtype == w.dtype else mask.to(w.dtype))
    z = w if fmask is None else w * fmask
    if quant is not None:
        z = quantize(z, quant)
        if fmask is not None and getattr(quant, "scheme", "") == "binary":  # the only set without a zero level
            z = z * fmask
    return z, mask


def _bits(quant: Any) -> tuple[int, int, str]:
    if quant is None:
        return FLOAT_BITS, FLOAT_BITS, "float"
    if isinstance(quant, xb.ConductanceQuant):
        return quant.weight_bits, quant.act_bits, "int"
    return quant.weight_bits, quant.act_bits, quant.scheme


class ADMM(Method):
    """ADMM progressive compression as a :class:`~.loop.Method` (see the module docstring)."""

    name = "admm"

    def __init__(self, config: ADMMConfig):
        self.cfg = config
        self.targets: dict[str, tuple[Any, Any]] = {}
        self.phases: list[_Phase] = []
        self.phase_index = -1
        self.rho = config.rho
        self.Z: dict[str, "torch.Tensor"] = {}
        self.U: dict[str, "torch.Tensor"] = {}
        self.masks: dict[str, "torch.Tensor"] = {}
        self.library: "torch.Tensor | None" = None
        self.base_lr = 0.0
        self._fused: set[str] = set()
        self._layers: dict[str, "nn.Module"] = {}
        self.log: list[dict[str, Any]] = []
        self._hooks: list[Any] = []
        self._c: dict[str, "torch.Tensor"] = {}
        self._fmasks: dict[str, tuple["torch.Tensor", "torch.Tensor"]] = {}

    # --- schedule --------------------------------------------------------------------------
    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        self._layers = compressible_layers(model)
        for name in self._layers:
            if name in self.cfg.skip:
                continue
            prune, quant = self.cfg.overrides.get(name, (self.cfg.prune, self.cfg.quant))
            if prune is None and quant is None:
                continue
            if prune is not None and getattr(prune, "kind", "") == "pattern" and \
                    tuple(self._layers[name].weight.shape[2:]) != (3, 3):
                prune = None  # patterns only fit 3x3 kernels (as the front-end's eligibility rule)
            if prune is not None or quant is not None:
                self.targets[name] = (prune, quant)
        if not self.targets:
            raise ConfigError("no layer gets an ADMM constraint", source="ADMMConfig", field="skip")
        any_prune = any(p is not None for p, _ in self.targets.values())
        any_quant = any(q is not None for _, q in self.targets.values())
        stages = self.cfg.stage_densities or [None]
        self.phases = []
        if any_prune:
            for s in range(len(stages)):
                self.phases.append(_Phase("admm_prune", self.cfg.admm_epochs, s))
                self.phases.append(_Phase("retrain", self.cfg.retrain_epochs, s))
        if any_quant:
            self.phases.append(_Phase("admm_quant", self.cfg.quant_admm_epochs))
            self.phases.append(_Phase("retrain_quant", self.cfg.quant_retrain_epochs))
        self.phases = [p for p in self.phases if p.epochs > 0]
        self.base_lr = config.lr

    def total_epochs(self, config: TrainConfig) -> int:
        return sum(p.epochs for p in self.phases)

    def _phase_at(self, epoch: int) -> int:
        acc = 0
        for i, p in enumerate(self.phases):
            acc += p.epochs
            if epoch < acc:
                return i
        return len(self.phases) - 1

    def _stage_spec(self, prune: Any, stage: int) -> Any:
        if prune is None or self.cfg.stage_densities is None:
            return prune
        return _with_density(prune, self.cfg.stage_densities[stage])

    @property
    def phase(self) -> _Phase:
        return self.phases[self.phase_index]

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        params = [p for p in model.parameters() if p.requires_grad]
        lr = config.lr
        if self.phase_index >= 0 and self.phase.kind.startswith("retrain"):
            lr = config.lr * self.cfg.retrain_lr_scale
        return [{"params": params, "lr": lr}]

    # --- phase transitions ----------------------------------------------------------------------
    def _w(self, name: str) -> "torch.Tensor":
        return self._layers[name].weight

    def _fmask(self, name: str) -> "torch.Tensor | None":
        """The mask of ``name`` as a float tensor (cached per mask object)."""
        mask = self.masks.get(name)
        if mask is None:
            return None
        cached = self._fmasks.get(name)
        if cached is None or cached[0] is not mask:
            cached = (mask, mask.to(self._w(name).dtype))
            self._fmasks[name] = cached
        return cached[1]

    def _sync_act_hooks(self) -> None:
        """From the quantised retraining on, quantised layers run through a fused straight-through
        layer: weights projected onto the levels inside the mask, inputs fake-quantised with the
        front-end's dynamic per-batch quantiser (so the reported activation bits are real)."""
        if self._fused or self.phase_index < 0 or self.phase.kind != "retrain_quant":
            return
        for name, (_, quant) in self.targets.items():
            if quant is None:
                continue
            fmask = self._fmask(name)

            def weight_fn(w: "torch.Tensor", quant: Any = quant, fmask: Any = fmask) -> "torch.Tensor":
                return project(w, None, quant, mask=fmask)[0]

            fq.install_quant_forward(self._layers[name], weight_fn, quant.act_bits, fmask)
            self._fused.add(name)

    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        idx = self._phase_at(epoch)
        if idx == self.phase_index:
            self._sync_act_hooks()
            return False
        self.phase_index = idx
        ph = self.phase
        with torch.no_grad():
            if ph.kind == "admm_prune":
                self.rho = self.cfg.rho
                self._maybe_library(ph.stage)
                for name, (prune, _) in self.targets.items():
                    if prune is None:
                        continue
                    spec = self._stage_spec(prune, ph.stage)
                    w = self._w(name).detach()
                    z, _ = project(w, spec, None, library=self.library)
                    self.Z[name], self.U[name] = z.clone(), torch.zeros_like(w)
            elif ph.kind in ("retrain", "admm_quant"):
                if ph.kind == "retrain" or not self.masks:
                    self._hard_prune(ph.stage)
                if ph.kind == "admm_quant":
                    self.rho = self.cfg.rho
                    self.Z, self.U = {}, {}
                    for name, (_, quant) in self.targets.items():
                        if quant is None:
                            continue
                        w = self._w(name).detach()
                        z, _ = project(w, None, quant, mask=self.masks.get(name))
                        self.Z[name], self.U[name] = z.clone(), torch.zeros_like(w)
            elif ph.kind == "retrain_quant":
                if not self.masks and any(p is not None for p, _ in self.targets.values()):
                    self._hard_prune(len(self.cfg.stage_densities or [0]) - 1)
                self.Z, self.U = {}, {}
        self._sync_act_hooks()
        self._refresh_offsets()
        return True

    def _maybe_library(self, stage: int) -> None:
        pats = [(n, p) for n, (p, _) in self.targets.items() if p is not None and getattr(p, "kind", "") == "pattern"]
        if pats and self.library is None:
            spec = pats[0][1]
            self.library = pr.pattern_library([self._w(n).detach() for n, _ in pats], spec.entries, spec.num_patterns)

    def _hard_prune(self, stage: int) -> None:
        """Fix the masks of the stage (projection of the current weights) and zero the rest."""
        for name, (prune, _) in self.targets.items():
            if prune is None:
                continue
            spec = self._stage_spec(prune, stage)
            w = self._w(name)
            mask = prune_mask(w.detach(), spec, self.library)
            self.masks[name] = mask
            w.mul_(mask.to(w.dtype))
        self.Z, self.U = {}, {}

    # --- per step -------------------------------------------------------------------------------
    def _refresh_offsets(self) -> None:
        """``U - Z`` per layer (constant between Z/U updates): the W-step gradient is ``rho (W + U - Z)``."""
        self._c = {name: self.U[name] - z for name, z in self.Z.items()}

    def augmented_term(self) -> float:
        """``sum rho/2 ||W - Z + U||^2`` now (for logging; its gradient is added in :meth:`after_backward`)."""
        with torch.no_grad():
            return 0.5 * self.rho * sum(float((self._w(n) - z + self.U[n]).pow(2).sum()) for n, z in self.Z.items())

    def after_backward(self, model: "nn.Module") -> None:
        with torch.no_grad():
            if self.Z:  # exact gradient of the augmented-Lagrangian term rho/2 ||W - Z + U||^2
                if len(self._c) != len(self.Z):
                    self._refresh_offsets()
                for name, c in self._c.items():
                    w = self._w(name)
                    if w.grad is None:
                        w.grad = torch.zeros_like(w)
                    w.grad.add_(w.detach() + c, alpha=self.rho)
            if self.phase_index >= 0 and self.phase.kind != "admm_prune":
                for name in self.masks:
                    g = self._w(name).grad
                    if g is not None and name not in self._fused:  # fused layers mask in their backward
                        g.mul_(self._fmask(name))

    def after_step(self, model: "nn.Module") -> None:
        if self.phase_index >= 0 and self.phase.kind != "admm_prune":
            with torch.no_grad():
                for name, mask in self.masks.items():
                    self._w(name).mul_(self._fmask(name))

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        ph = self.phase
        log["phase"] = ph.kind
        if ph.kind in ("admm_prune", "admm_quant") and self.Z:
            res = 0.0
            with torch.no_grad():
                for name in list(self.Z):
                    prune, quant = self.targets[name]
                    w = self._w(name).detach()
                    if ph.kind == "admm_prune":
                        z, _ = project(w + self.U[name], self._stage_spec(prune, ph.stage), None, library=self.library)
                    else:
                        z, _ = project(w + self.U[name], None, quant, mask=self.masks.get(name))
                    self.Z[name] = z
                    self.U[name] = self.U[name] + w - z
                    res += float((w - z).pow(2).sum())
            log["admm_residual"] = res
            log["rho"] = self.rho
            self.rho = min(self.rho * self.cfg.rho_growth, self.cfg.rho_max)
            self._refresh_offsets()
            log["augmented_term"] = self.augmented_term()
        self.log.append({k: v for k, v in log.items() if k in ("epoch", "phase", "admm_residual", "rho", "augmented_term")})
        return False

    def finalize(self, model: "nn.Module") -> None:
        for name in self._fused:
            fq.remove_quant_forward(self._layers[name])
        self._fused = set()
        with torch.no_grad():
            for name, (prune, quant) in self.targets.items():
                if quant is not None and quant.act_bits < 16:  # inference keeps the activation quantiser
                    self._hooks.append(self._layers[name].register_forward_pre_hook(_act_hook(quant.act_bits)))
                w = self._w(name)
                mask = self.masks.get(name)
                if prune is not None and mask is None:
                    mask = prune_mask(w.detach(), self._stage_spec(prune, len(self.cfg.stage_densities or [0]) - 1),
                                      self.library)
                    self.masks[name] = mask
                w.copy_(project(w, None, quant, mask=mask)[0])

    # --- results -----------------------------------------------------------------------------------
    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        """Per-layer compression description (for metrics and export)."""
        from ..recipe import BlockPrune, UnstructuredPrune

        out: dict[str, LayerCompression] = {}
        for name, (prune, quant) in self.targets.items():
            wb, ab, scheme = _bits(quant)
            mask = self.masks.get(name)
            spec = None
            unit: dict[str, Any] = {}
            if prune is not None and mask is not None:
                density = float(mask.float().mean())
                if isinstance(prune, xb.CrossbarBlockPrune):
                    spec = BlockPrune(density=max(density, 1e-9), block=prune.block)
                elif prune.kind == "pattern":
                    spec = prune
                    if self.library is not None:
                        unit["pattern"] = _pattern_from_mask(mask, self.library)
                elif prune.kind == "unstructured":
                    spec = UnstructuredPrune(density=max(density, 1e-9))
                elif prune.kind == "gs":
                    spec = prune
                    unit["gs"] = pr.gs_mask(self._w(name).detach(), prune.density, prune.group_rows)
                else:
                    spec = prune
            out[name] = LayerCompression(name=name, weight_bits=wb, act_bits=ab, scheme=scheme, prune=spec, mask=mask,
                                         granularity=getattr(quant, "granularity", "tensor"), unit_fields=unit)
        return out

    def info(self) -> dict[str, Any]:
        return {"phases": [(p.kind, p.epochs) for p in self.phases], "admm_log": self.log}

    def state_dict(self) -> dict[str, Any]:
        return {"phase_index": self.phase_index, "rho": self.rho, "Z": self.Z, "U": self.U, "masks": self.masks,
                "library": self.library, "log": self.log}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase_index = state["phase_index"]
        self.rho = state["rho"]
        self.Z, self.U, self.masks = dict(state["Z"]), dict(state["U"]), dict(state["masks"])
        self.library = state["library"]
        self.log = list(state["log"])
        self._c = {}


def _act_hook(bits: int) -> Any:
    def hook(module: "nn.Module", args: tuple[Any, ...]) -> Any:
        return (fq.fake_quant_act(args[0], bits),) + tuple(args[1:])
    return hook


def _pattern_from_mask(mask: "torch.Tensor", library: "torch.Tensor") -> "pr.PatternResult":
    """The PatternResult (library index per kernel, -1 = removed) that ``mask`` realises."""
    o, i = mask.shape[:2]
    k = mask.reshape(o * i, 9)
    lib = library.reshape(-1, 9)
    eq = (k[:, None, :] == lib[None, :, :]).all(dim=2)
    kept = k.any(dim=1)
    idx = torch.where(eq.any(dim=1), eq.float().argmax(dim=1), torch.full((o * i,), -1))
    idx = torch.where(kept, idx, torch.full_like(idx, -1))
    return pr.PatternResult(mask.clone(), library.clone(), idx.reshape(o, i),
                            {"kernels_kept": int(kept.sum()), "kernels": o * i})


__all__ = ["ADMM", "ADMMConfig", "project", "prune_mask", "quantize"]
