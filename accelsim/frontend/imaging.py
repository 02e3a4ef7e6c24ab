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

Per-layer pruning/quantisation helpers are in :mod:`.layerwise`, the generator search in
:mod:`.gen_search`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

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

def batches(n: int, bs: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, bs):
        yield perm[i:i + bs]


def masked_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor] | None) -> None:
    """One optimiser step on ``loss``, then re-apply the 0/1 ``masks`` (param name -> mask) so pruned
    weights stay zero."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    if masks:
        with torch.no_grad():
            for k, m in masks.items():
                params[k].mul_(m)


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
        for idx in batches(len(data.lr_train), batch_size, gen):
            out = model(data.lr_train[idx])
            loss = F.mse_loss(out, data.hr_train[idx])
            if t_out is not None:
                loss = (1 - distill_weight) * loss + distill_weight * F.mse_loss(out, t_out[idx])
            masked_step(opt, loss, params, masks)
        sched.step()
    model.eval()
    return model


def evaluate_generator(model: nn.Module, data: SRData) -> tuple[float, float]:
    """(PSNR dB, SSIM) on the test split."""
    model.eval()
    with torch.no_grad():
        out = model(data.lr_test)
    return psnr(out, data.hr_test), ssim(out, data.hr_test)
