"""Real simulations that fit and check the surrogates of the differentiable and min-max searches."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .relax import HardwareSpace
from .surrogate import LogQuadSurrogate


def sample_hardware(session: Any, hs: HardwareSpace, rng: np.random.Generator, n: int,
                    tries: int = 20) -> list[tuple[dict[str, Any], Any]]:
    """``n`` valid random hardware designs (params, hardware object); invalid draws are redrawn."""
    out: list[tuple[dict[str, Any], Any]] = []
    for _ in range(n * tries):
        if len(out) == n:
            break
        prm = hs.sample(rng)
        hw, err = session.space.hardware_for(prm)
        if hw is not None:
            out.append((prm, hw))
    if len(out) < n:
        raise ConfigError(f"only {len(out)} of {n} random hardware draws were valid configurations",
                          source=session.sweep.source, field="axes")
    return out


def simulate_exact(wl: Any, hw: Any) -> Any:
    from ..api import simulate

    return simulate(wl, hw, compare_dense=False)


def fit_models(hs: HardwareSpace, samples: list[tuple[dict[str, Any], list[np.ndarray]]], metrics: Sequence[str],
               extra_cat: int | None = None) -> tuple[dict[str, LogQuadSurrogate], dict[str, float]]:
    """Fit one surrogate per metric on ``[(params, values...)]``; metrics that are always 0 go to ``floor``."""
    models: dict[str, LogQuadSurrogate] = {}
    floor: dict[str, float] = {}
    Z = np.array([hs.encode(p)[0] for p, _ in samples]).reshape(len(samples), hs.dims)
    Q = [np.array([hs.encode(p)[1][j] for p, _ in samples]) for j in range(len(hs.cat_sizes))]
    if extra_cat is not None:
        Q.append(np.array([v[-1] for _, v in samples]))
    cats = hs.cat_sizes + ([extra_cat] if extra_cat is not None else [])
    for k, m in enumerate(metrics):
        y = np.array([v[0][k] for _, v in samples], dtype=float)
        if np.all(y <= 0):
            floor[m] = 0.0
            continue
        y = np.maximum(y, 1e-9 * y.max())
        models[m] = LogQuadSurrogate(hs.dims, cats).fit(Z, Q, y)
    return models, floor
