"""AutoGAN-Distiller-style search of the generator space of :mod:`.imaging` under a compute budget.

Evolutionary: seeded random candidates within the budget (MACs counted, latency from a caller's
model such as accelsim's simulator), each distilled briefly from the teacher and ranked on a
validation slice of the training pairs; the best half is mutated (one choice per child) for the
next generation. See :func:`search_generator` for the assumptions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch.nn as nn

from ..errors import ConfigError
from .imaging import (OPS, Cell, GenSpec, SRData, count_macs, evaluate_generator, gen_workload, make_generator,
                      train_generator)


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
