"""A small image-to-image task on scikit-learn digits, compact generators, and measured compression.

**Task** (:func:`load_sr_digits`): 2x super-resolution -- the 8x8 digit (pixels / 16, in [0, 1])
is the high-resolution target, its 2x2 average-pooled 4x4 version the input. Quality is PSNR
(peak 1.0, per image, averaged) and SSIM (3x3 uniform window, C1 = 0.01^2, C2 = 0.03^2, valid
6x6 region -- the 8x8 images are too small for the usual 11x11 Gaussian), both on the held-out
25 %. The bicubic-free baseline is nearest-neighbour upscaling.

**Generators** (:class:`GenSpec`, :class:`Generator`): a stem conv (1 -> ``stem`` channels,
3x3), a chain of cells, each ``(width, kernel, op)`` with ``op`` one of ``conv`` (conv + ReLU),
``dwsep`` (depthwise kxk + pointwise 1x1 + ReLU) or ``res`` (two convs with a skip when widths
match), a 3x3 head to 4 channels, a 2x pixel shuffle, and a global skip from the nearest-upscaled
input. :func:`gen_workload` builds the same network as an accelsim workload (exact MACs), so the
simulator times exactly what is trained.

Also here: per-layer magnitude pruning with masks kept during fine-tuning, the retained-magnitude
accuracy proxy for :mod:`accelsim.dse.constrained`, and per-layer fake quantisation (symmetric
per-output-channel weights, per-tensor activations calibrated on training data) to measure the
accuracy of bit-width configurations for :mod:`accelsim.dse.fpga.predictor`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

OPS = ("conv", "dwsep", "res")


def set_threads(n: int) -> None:
    """torch intra-op threads (1 per worker on the shared 2-core machines)."""
    torch.set_num_threads(n)


# --- data and metrics -------------------------------------------------------------------------------

@dataclass
class SRData:
    lr_train: torch.Tensor  # N x 1 x 4 x 4
    hr_train: torch.Tensor  # N x 1 x 8 x 8
    lr_test: torch.Tensor
    hr_test: torch.Tensor


def load_sr_digits(seed: int = 0, test_fraction: float = 0.25) -> SRData:
    """2x super-resolution pairs from scikit-learn digits (same split as the classifier's)."""
    from .training import load_digits_data

    d = load_digits_data(seed=seed, test_fraction=test_fraction)
    return SRData(F.avg_pool2d(d.x_train, 2), d.x_train, F.avg_pool2d(d.x_test, 2), d.x_test)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-image PSNR in dB (peak 1.0); predictions clipped to [0, 1]."""
    mse = ((pred.clamp(0, 1) - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM with a 3x3 uniform window over the valid region (see module doc)."""
    x, y = pred.clamp(0, 1), target
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    vx = F.avg_pool2d(x * x, 3, 1) - mx ** 2
    vy = F.avg_pool2d(y * y, 3, 1) - my ** 2
    cxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def nearest_baseline(data: SRData) -> tuple[float, float]:
    """(PSNR, SSIM) of nearest-neighbour upscaling on the test set."""
    up = F.interpolate(data.lr_test, scale_factor=2, mode="nearest")
    return psnr(up, data.hr_test), ssim(up, data.hr_test)


# --- generator space --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    width: int
    kernel: int = 3
    op: str = "conv"


@dataclass(frozen=True)
class GenSpec:
    """A generator: stem width, cells (width, kernel, op), see module doc."""

    stem: int
    cells: tuple[Cell, ...]

    def __post_init__(self) -> None:
        if self.stem < 1 or any(c.width < 1 for c in self.cells):
            raise ConfigError("widths must be >= 1", source="generator spec", field="width")
        for c in self.cells:
            if c.op not in OPS:
                raise ConfigError(f"op {c.op!r} not one of {', '.join(OPS)}", source="generator spec", field="op")
            if c.kernel < 1 or c.kernel % 2 == 0:
                raise ConfigError(f"kernel must be odd and >= 1, got {c.kernel}", source="generator spec", field="kernel")

    def label(self) -> str:
        return f"stem{self.stem} " + " ".join(f"{c.op}{c.kernel}x{c.width}" for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        return {"stem": self.stem, "cells": [[c.width, c.kernel, c.op] for c in self.cells]}


def uniform_spec(width: int, cells: int = 3, kernel: int = 3, op: str = "conv") -> GenSpec:
    return GenSpec(width, tuple(Cell(width, kernel, op) for _ in range(cells)))


class _CellModule(nn.Module):
    def __init__(self, cin: int, cell: Cell):
        super().__init__()
        k, w, p = cell.kernel, cell.width, cell.kernel // 2
        self.op = cell.op
        if cell.op == "conv":
            self.a = nn.Conv2d(cin, w, k, padding=p)
        elif cell.op == "dwsep":
            self.a = nn.Conv2d(cin, cin, k, padding=p, groups=cin)
            self.b = nn.Conv2d(cin, w, 1)
        else:
            self.a = nn.Conv2d(cin, w, k, padding=p)
            self.b = nn.Conv2d(w, w, k, padding=p)
        self.skip = cell.op == "res" and cin == w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "conv":
            return F.relu(self.a(x))
        if self.op == "dwsep":
            return F.relu(self.b(self.a(x)))
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + x if self.skip else y)


class Generator(nn.Module):
    """The torch module of a :class:`GenSpec` (4x4 -> 8x8)."""

    def __init__(self, spec: GenSpec):
        super().__init__()
        self.spec = spec
        self.stem = nn.Conv2d(1, spec.stem, 3, padding=1)
        cells, cin = [], spec.stem
        for c in spec.cells:
            cells.append(_CellModule(cin, c))
            cin = c.width
        self.cells = nn.ModuleList(cells)
        self.head = nn.Conv2d(cin, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.stem(x))
        for c in self.cells:
            y = c(y)
        return F.pixel_shuffle(self.head(y), 2) + F.interpolate(x, scale_factor=2, mode="nearest")


def make_generator(spec: GenSpec, seed: int = 0) -> Generator:
    """``Generator(spec)`` with its initial weights drawn from ``seed`` (reproducible runs)."""
    torch.manual_seed(seed)
    return Generator(spec)


def gen_workload(spec: GenSpec, batch: int = 1, name: str | None = None) -> Any:
    """The accelsim workload of ``Generator(spec)`` (layer names = module names; pixel shuffle is free)."""
    from ..workload.layer import Conv2d, Elementwise
    from ..workload.workload import Workload

    h = w = 4
    layers: list[Any] = []

    def conv(lname: str, cin: int, cout: int, k: int, groups: int = 1) -> None:
        layers.append(Conv2d(name=lname, batch=batch, in_channels=cin, out_channels=cout, in_h=h, in_w=w,
                             kernel_h=k, kernel_w=k, pad_h=k // 2, pad_w=k // 2, groups=groups))

    conv("stem", 1, spec.stem, 3)
    cin = spec.stem
    for i, c in enumerate(spec.cells):
        if c.op == "conv":
            conv(f"cells.{i}.a", cin, c.width, c.kernel)
        elif c.op == "dwsep":
            conv(f"cells.{i}.a", cin, cin, c.kernel, groups=cin)
            conv(f"cells.{i}.b", cin, c.width, 1)
        else:
            conv(f"cells.{i}.a", cin, c.width, c.kernel)
            conv(f"cells.{i}.b", c.width, c.width, c.kernel)
            if cin == c.width:
                layers.append(Elementwise(name=f"cells.{i}.add", batch=batch, elements=h * w * c.width))
        cin = c.width
    conv("head", cin, 4, 3)
    layers.append(Elementwise(name="skip_add", batch=batch, elements=8 * 8))
    return Workload(name=name or f"generator[{spec.label()}]", layers=layers)


def count_macs(spec: GenSpec) -> int:
    return int(sum(l.macs for l in gen_workload(spec).layers))


# --- training ---------------------------------------------------------------------------------------

def _batches(n: int, bs: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, bs):
        yield perm[i:i + bs]


def train_generator(model: nn.Module, data: SRData, *, epochs: int = 40, lr: float = 3e-3, seed: int = 0,
                    teacher: nn.Module | None = None, distill_weight: float = 1.0,
                    masks: Mapping[str, torch.Tensor] | None = None, batch_size: int = 64) -> nn.Module:
    """Adam on MSE to the HR target; with ``teacher``: ``distill_weight`` of the loss is the content
    loss to the teacher's output (AutoGAN-Distiller-style). ``masks`` (param name -> 0/1) stay applied."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    params = dict(model.named_parameters())
    t_out = None
    if teacher is not None:
        teacher.eval()
        with torch.no_grad():
            t_out = teacher(data.lr_train)
    model.train()
    for _ in range(epochs):
        for idx in _batches(len(data.lr_train), batch_size, gen):
            out = model(data.lr_train[idx])
            loss = F.mse_loss(out, data.hr_train[idx])
            if t_out is not None:
                loss = (1 - distill_weight) * loss + distill_weight * F.mse_loss(out, t_out[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for k, m in masks.items():
                        params[k].mul_(m)
        sched.step()
    model.eval()
    return model


def evaluate_generator(model: nn.Module, data: SRData) -> tuple[float, float]:
    """(PSNR dB, SSIM) on the test split."""
    model.eval()
    with torch.no_grad():
        out = model(data.lr_test)
    return psnr(out, data.hr_test), ssim(out, data.hr_test)


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
        for idx in _batches(len(x), batch_size, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for k, m in masks.items():
                        params[k].mul_(m)
    model.eval()
    return model


# --- generator search (AutoGAN-Distiller-style, budgeted) ---------------------------------------------

@dataclass
class Candidate:
    spec: GenSpec
    macs: int
    latency_ms: float | None
    proxy_psnr: float | None = None


@dataclass
class GenSearchResult:
    best: Candidate
    evaluated: list[Candidate]
    rejected_over_budget: int


def sample_spec(rng: np.random.Generator, widths: Sequence[int], kernels: Sequence[int], ops: Sequence[str],
                cells: int) -> GenSpec:
    return GenSpec(int(rng.choice(widths)), tuple(Cell(int(rng.choice(widths)), int(rng.choice(kernels)),
                                                       str(rng.choice(ops))) for _ in range(cells)))


def mutate_spec(spec: GenSpec, rng: np.random.Generator, widths: Sequence[int], kernels: Sequence[int],
                ops: Sequence[str]) -> GenSpec:
    """Change one choice (stem width, or one cell's width, kernel or op)."""
    cells = list(spec.cells)
    which = int(rng.integers(0, 1 + 3 * len(cells)))
    if which == 0:
        return GenSpec(int(rng.choice(widths)), spec.cells)
    i, field_ = divmod(which - 1, 3)
    c = cells[i]
    cells[i] = Cell(int(rng.choice(widths)), c.kernel, c.op) if field_ == 0 else (
        Cell(c.width, int(rng.choice(kernels)), c.op) if field_ == 1 else Cell(c.width, c.kernel, str(rng.choice(ops))))
    return GenSpec(spec.stem, tuple(cells))


def search_generator(teacher: nn.Module, data: SRData, *, max_macs: int | None = None,
                     max_latency_ms: float | None = None, latency_of: Callable[[Any], float] | None = None,
                     widths: Sequence[int] = (4, 8, 12, 16, 24), kernels: Sequence[int] = (1, 3, 5),
                     ops: Sequence[str] = OPS, cells: int = 3, population: int = 8, generations: int = 2,
                     proxy_epochs: int = 8, seed: int = 0,
                     progress: Callable[[str], None] | None = None) -> GenSearchResult:
    """Evolutionary search of the generator space under a MAC and/or simulated-latency budget.

    Every candidate is distilled from ``teacher`` for ``proxy_epochs`` (content loss to the
    teacher's output) and ranked by its PSNR on a validation slice of the *training* pairs (the
    test split is never seen); the best ``population // 2`` are mutated for the next generation.
    Candidates over budget are rejected before training (MACs counted; latency from
    ``latency_of(workload) -> ms``, e.g. accelsim's simulator: :func:`accelsim.dse.distill.generator_search`
    passes it). ASSUMPTION: short-distillation PSNR ranks candidates as full training would
    (AutoGAN-Distiller instead trains a weight-sharing supernet; see docs/dse.md).
    """
    if max_macs is None and max_latency_ms is None:
        raise ConfigError("give max_macs and/or max_latency_ms", source="generator search", field="budget")
    if max_latency_ms is not None and latency_of is None:
        raise ConfigError("max_latency_ms needs a latency model (latency_of)", source="generator search", field="hardware")
    bad = [o for o in ops if o not in OPS]
    if bad:
        raise ConfigError(f"unknown op(s) {bad}; choose from {', '.join(OPS)}", source="generator search", field="ops")
    rng = np.random.default_rng(seed)
    n_val = len(data.lr_train) // 5
    val = SRData(data.lr_train[n_val:], data.hr_train[n_val:], data.lr_train[:n_val], data.hr_train[:n_val])
    seen: dict[GenSpec, Candidate] = {}
    rejected = 0

    def admit(spec: GenSpec) -> Candidate | None:
        nonlocal rejected
        if spec in seen:
            return seen[spec]
        macs = count_macs(spec)
        if max_macs is not None and macs > max_macs:
            rejected += 1
            return None
        lat = None
        if latency_of is not None:
            lat = float(latency_of(gen_workload(spec)))
            if max_latency_ms is not None and lat > max_latency_ms:
                rejected += 1
                return None
        net = train_generator(make_generator(spec, seed), val, epochs=proxy_epochs, seed=seed, teacher=teacher)
        cand = Candidate(spec, macs, lat, evaluate_generator(net, val)[0])
        seen[spec] = cand
        if progress:
            progress(f"candidate {len(seen)}: {spec.label()} {macs:,} MACs -> proxy PSNR {cand.proxy_psnr:.2f} dB")
        return cand

    pop: list[Candidate] = []
    tries = 0
    while len(pop) < population and tries < 200 * population:
        tries += 1
        c = admit(sample_spec(rng, widths, kernels, ops, cells))
        if c is not None and c not in pop:
            pop.append(c)
    if not pop:
        raise ConfigError(f"no generator in the space meets the budget after {tries} samples "
                          f"(max_macs {max_macs}, max_latency_ms {max_latency_ms})", source="generator search",
                          field="budget")
    for _ in range(generations):
        parents = sorted(pop, key=lambda c: -(c.proxy_psnr or -math.inf))[:max(1, population // 2)]
        children = []
        tries = 0
        while len(children) < population - len(parents) and tries < 100 * population:
            tries += 1
            c = admit(mutate_spec(parents[len(children) % len(parents)].spec, rng, widths, kernels, ops))
            if c is not None and c not in parents and c not in children:
                children.append(c)
        pop = parents + children
    best = max(seen.values(), key=lambda c: c.proxy_psnr or -math.inf)
    return GenSearchResult(best, list(seen.values()), rejected)
