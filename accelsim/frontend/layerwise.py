"""Per-layer compression of trained torch models, measured: masks, accuracy proxies, fake quantisation.

- magnitude pruning per layer with masks kept during fine-tuning (:func:`magnitude_masks`,
  :func:`apply_masks`); layer names are the module names (the same as the exported or hand-built
  accelsim workloads');
- accuracy proxies for :mod:`accelsim.dse.constrained`: retained magnitude
  (:func:`magnitude_scores`) and measured one-shot sensitivity (:func:`sensitivity_scores`);
- per-layer fake quantisation (symmetric per-output-channel weights, per-tensor activations
  calibrated on given inputs) to measure bit-width configurations for
  :mod:`accelsim.dse.fpga.predictor` (:func:`fake_quant_model`);
- a small Adam classifier loop that keeps masks applied (:func:`train_classifier`).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .imaging import batches, masked_step


# --- pruning ----------------------------------------------------------------------------------------

def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Layer name -> weight of every Conv2d/Linear (names match the exported/hand-built workloads)."""
    return {n: m.weight for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def magnitude_masks(model: nn.Module, densities: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Per-layer magnitude masks keeping ``densities[layer]`` of its weights (param name -> mask)."""
    out = {}
    for name, w in prunable_weights(model).items():
        d = densities.get(name, 1.0)
        if d >= 1.0:
            continue
        k = max(1, int(round(d * w.numel())))
        thresh = w.detach().abs().flatten().kthvalue(w.numel() - k + 1).values
        out[f"{name}.weight"] = (w.detach().abs() >= thresh).to(w.dtype)
    return out


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, m in masks.items():
            params[k].mul_(m)


def magnitude_scores(model: nn.Module, levels: Sequence[float]) -> dict[str, dict[float, float]]:
    """Retained-magnitude proxy: layer -> {density: share of the network's total |w| kept at that density}."""
    ws = prunable_weights(model)
    total = float(sum(w.detach().abs().sum() for w in ws.values()))
    out: dict[str, dict[float, float]] = {}
    for name, w in ws.items():
        a = w.detach().abs().flatten().sort(descending=True).values
        cum = torch.cumsum(a, 0)
        out[name] = {float(d): float(cum[max(1, int(round(d * a.numel()))) - 1]) / total for d in levels}
    return out


def sensitivity_scores(model: nn.Module, levels: Sequence[float],
                       metric: Callable[[nn.Module], float]) -> dict[str, dict[float, float]]:
    """Measured proxy: layer -> {density: ``metric`` of the model with only that layer magnitude-pruned}.

    One-shot (no fine-tuning); ``metric`` is higher-is-better (PSNR, accuracy). Summing it over
    layers assumes the layers' damages add up.
    """
    import copy

    out: dict[str, dict[float, float]] = {}
    for name in prunable_weights(model):
        out[name] = {}
        for d in levels:
            net = copy.deepcopy(model)
            apply_masks(net, magnitude_masks(net, {name: float(d)}))
            out[name][float(d)] = float(metric(net))
    return out


# --- per-layer fake quantisation ---------------------------------------------------------------------

def _qw(w: torch.Tensor, bits: int) -> torch.Tensor:
    qmax = 2 ** (bits - 1) - 1
    s = w.abs().flatten(1).amax(1).clamp_min(1e-12) / qmax
    s = s.view(-1, *([1] * (w.dim() - 1)))
    return (w / s).round().clamp(-qmax - 1, qmax) * s


def fake_quant_model(model: nn.Module, bits: Mapping[str, tuple[int, int]], calib: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose layer ``name`` runs with ``bits[name] = (weight_bits, act_bits)``.

    Weights: symmetric per output channel. Input activations: per tensor, unsigned when the
    calibration input is non-negative, ranges from ``calib``.
    """
    import copy

    q = copy.deepcopy(model).eval()
    mods = {n: m for n, m in q.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    unknown = [n for n in bits if n not in mods]
    if unknown:
        raise ConfigError(f"no Conv2d/Linear named {', '.join(unknown)}", source="fake_quant_model", field="bits")
    ranges: dict[str, tuple[float, float]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: ranges.__setitem__(n, (float(a[0].min()), float(a[0].max()))))
             for n, m in mods.items() if n in bits]
    with torch.no_grad():
        q(calib)
    for h in hooks:
        h.remove()
    for n, (wb, ab) in bits.items():
        m = mods[n]
        with torch.no_grad():
            m.weight.copy_(_qw(m.weight, wb))
        lo, hi = ranges[n]
        if lo >= 0:
            s, qlo, qhi = max(hi, 1e-12) / (2 ** ab - 1), 0, 2 ** ab - 1
        else:
            qhi = 2 ** (ab - 1) - 1
            s, qlo = max(abs(lo), abs(hi), 1e-12) / qhi, -qhi - 1

        def hook(mod: nn.Module, args: tuple, s: float = s, qlo: int = qlo, qhi: int = qhi) -> tuple:
            return ((args[0] / s).round().clamp(qlo, qhi) * s,)

        m.register_forward_pre_hook(hook)
    return q


def classifier_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30, lr: float = 3e-3,
                     seed: int = 0, masks: Mapping[str, torch.Tensor] | None = None, batch_size: int = 64) -> nn.Module:
    """Adam on cross-entropy; ``masks`` stay applied (for fine-tuning after pruning)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    params = dict(model.named_parameters())
    model.train()
    for _ in range(epochs):
        for idx in batches(len(x), batch_size, gen):
            masked_step(opt, F.cross_entropy(model(x[idx]), y[idx]), params, masks)
    model.eval()
    return model
