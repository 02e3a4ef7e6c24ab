"""Accuracy predictor for HAO-style co-design: per-layer bit widths and densities -> accuracy.

HAO (arXiv 2104.12766) fits an accuracy model on a few measured quantised/pruned variants and
uses it inside the integer program instead of retraining every candidate. Ours is a ridge
regression that is **additive over layers** so the integer program stays linear::

    acc(config) = b0 + sum_l [ sum_{v != ref} w_{l,v} [wbits_l = v] + sum_{v != ref} u_{l,v} [abits_l = v]
                               + p_l (1 - d_l) + q_l (1 - d_l)^2 ]

(``ref`` = the largest bit width seen, one-hot indicators per layer; ``d_l`` the layer's weight
density.) ASSUMPTIONS: layers interact only additively (no cross terms); bit widths outside the
fitted set are rejected, densities are interpolated by the quadratic. The held-out error is
measured on a seeded split (``test_fraction`` of the points), then the model is refitted on all
points; both figures are stored with the model. numpy only.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import ConfigError

LayerConfig = Mapping[str, float]  # {"weight_bits": 8, "act_bits": 8, "density": 1.0}


def _cfg(cfg: LayerConfig, default_bits: int) -> tuple[int, int, float]:
    return (int(cfg.get("weight_bits", default_bits)), int(cfg.get("act_bits", cfg.get("weight_bits", default_bits))),
            float(cfg.get("density", 1.0)))


@dataclass
class AccuracyPredictor:
    """Fitted additive accuracy model (see module doc); ``predict`` takes ``{layer: LayerConfig}``."""

    layers: list[str]
    bits: list[int]
    intercept: float
    weight_bit_terms: dict[str, dict[str, float]]  # layer -> {str(bits): delta}; ref bits -> 0
    act_bit_terms: dict[str, dict[str, float]]
    density_terms: dict[str, list[float]]  # layer -> [p, q]
    holdout_mae: float = float("nan")
    holdout_max_abs_error: float = float("nan")
    n_train: int = 0
    n_test: int = 0
    ridge: float = 1e-3
    meta: dict[str, Any] = field(default_factory=dict)
    #: the measured points it was fitted on: ``[{"config": {layer: LayerConfig}, "accuracy": a}]``
    measured: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ref_bits(self) -> int:
        return max(self.bits)

    def term(self, layer: str, weight_bits: int, act_bits: int, density: float = 1.0) -> float:
        """The additive contribution of one layer's choice (0 for a layer the model does not know)."""
        if layer not in self.weight_bit_terms:
            return 0.0
        for b in (weight_bits, act_bits):
            if b not in self.bits:
                raise ConfigError(f"bit width {b} of layer {layer!r} is outside the fitted set {self.bits}",
                                  source="accuracy predictor", field="bits")
        p, q = self.density_terms[layer]
        dd = 1.0 - density
        return (self.weight_bit_terms[layer].get(str(weight_bits), 0.0) + self.act_bit_terms[layer].get(str(act_bits), 0.0)
                + p * dd + q * dd * dd)

    def predict(self, config: Mapping[str, LayerConfig]) -> float:
        """Predicted accuracy of one configuration (missing layers sit at the reference bits, density 1)."""
        unknown = [n for n in config if n not in self.weight_bit_terms]
        if unknown:
            raise ConfigError(f"layer(s) {', '.join(unknown)} not in the predictor ({', '.join(self.layers)})",
                              source="accuracy predictor", field="layers")
        return self.intercept + sum(self.term(n, *_cfg(c, self.ref_bits)) for n, c in config.items())

    def uniform(self, weight_bits: int, act_bits: int | None = None, density: float = 1.0) -> float:
        """Predicted accuracy with every layer at the same bit widths and density."""
        return self.predict({n: {"weight_bits": weight_bits, "act_bits": act_bits or weight_bits, "density": density}
                             for n in self.layers})

    def measured_accuracy(self, bits: Mapping[str, tuple[int, int]]) -> float | None:
        """The measured accuracy of ``{layer: (weight_bits, act_bits)}`` (density 1) if it was one of the
        fitted points (layers not given sit at the reference bits, as in :meth:`predict`), else None."""
        return MeasuredPoints(self.measured, self.layers, self.ref_bits).get(bits)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        from ..._validation import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "AccuracyPredictor":
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except FileNotFoundError:
            raise ConfigError("no such file", source=str(path)) from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"not an accuracy predictor file ({str(exc).splitlines()[0]})", source=str(path)) from None


class MeasuredPoints:
    """Measured accuracies looked up by configuration (``{"config": {layer: LayerConfig}, "accuracy": a}``
    entries; a layer missing from a configuration is at ``ref_bits``, density 1)."""

    def __init__(self, entries: Sequence[Mapping[str, Any]], layers: Sequence[str], ref_bits: int, source: str = "measured"):
        self.layers = sorted(set(layers) | {n for e in entries for n in (e.get("config") or {})})
        self.ref_bits = ref_bits
        self.table: dict[tuple[Any, ...], float] = {}
        for i, e in enumerate(entries):
            if not isinstance(e, Mapping) or not isinstance(e.get("config"), Mapping) \
                    or not isinstance(e.get("accuracy"), (int, float)) or isinstance(e.get("accuracy"), bool):
                raise ConfigError("expected {\"config\": {layer: {\"weight_bits\": b, \"act_bits\": b}}, "
                                  "\"accuracy\": number}", source=source, field=f"[{i}]")
            try:
                self.table[self._key(e["config"])] = float(e["accuracy"])
            except (TypeError, ValueError, AttributeError):
                raise ConfigError("bit widths must be integers and densities numbers", source=source,
                                  field=f"[{i}].config") from None

    def _key(self, config: Mapping[str, LayerConfig]) -> tuple[Any, ...]:
        return tuple((n, *_cfg(config.get(n, {}), self.ref_bits)) for n in self.layers)

    def get(self, bits: Mapping[str, tuple[int, int]]) -> float | None:
        return self.table.get(self._key({n: {"weight_bits": w, "act_bits": a} for n, (w, a) in bits.items()}))

    def __len__(self) -> int:
        return len(self.table)


def load_measured(path: str | Path) -> list[dict[str, Any]]:
    """Measured points from a JSON file: a list of ``{"config", "accuracy"}`` entries, or a predictor file's
    ``measured`` list."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("no such file", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON ({exc.msg} at line {exc.lineno})", source=str(path)) from None
    if isinstance(data, dict) and "measured" in data:
        data = data["measured"]
    if not isinstance(data, list):
        raise ConfigError("expected a list of {\"config\": ..., \"accuracy\": ...} entries (or a predictor file)",
                          source=str(path), field="measured")
    MeasuredPoints(data, [], 0, str(path))  # validates every entry
    return data


def _design(samples: Sequence[Mapping[str, LayerConfig]], layers: list[str], bits: list[int]) -> np.ndarray:
    ref = max(bits)
    others = [b for b in bits if b != ref]
    cols_per_layer = 2 * len(others) + 2
    X = np.zeros((len(samples), len(layers) * cols_per_layer))
    for i, s in enumerate(samples):
        for li, name in enumerate(layers):
            wb, ab, d = _cfg(s.get(name, {}), ref)
            base = li * cols_per_layer
            for k, b in enumerate(others):
                X[i, base + k] = wb == b
                X[i, base + len(others) + k] = ab == b
            X[i, base + 2 * len(others)] = 1.0 - d
            X[i, base + 2 * len(others) + 1] = (1.0 - d) ** 2
    return X


def _ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    xm, ym = X.mean(axis=0), y.mean()
    Xc = X - xm
    w = np.linalg.solve(Xc.T @ Xc + alpha * len(y) * np.eye(X.shape[1]), Xc.T @ (y - ym))
    return float(ym - xm @ w), w


def fit_predictor(samples: Sequence[Mapping[str, LayerConfig]], accuracies: Sequence[float], *,
                  test_fraction: float = 0.25, ridge: float = 1e-3, seed: int = 0) -> AccuracyPredictor:
    """Fit the additive model on measured points; report its error on a seeded held-out split.

    ``samples[i]`` maps layer name -> ``{"weight_bits", "act_bits", "density"}`` (missing keys:
    reference bits, density 1); ``accuracies[i]`` is the measured accuracy of that configuration.
    """
    if len(samples) != len(accuracies) or len(samples) < 4:
        raise ConfigError(f"need >= 4 measured points with one accuracy each, got {len(samples)} samples and "
                          f"{len(accuracies)} accuracies", source="fit_predictor", field="samples")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}", source="fit_predictor",
                          field="test_fraction")
    layers = sorted({n for s in samples for n in s})
    bits = sorted({int(c.get(k, 0)) for s in samples for c in s.values() for k in ("weight_bits", "act_bits") if k in c})
    if not bits:
        raise ConfigError("no sample gives weight_bits/act_bits", source="fit_predictor", field="samples")
    X = _design(samples, layers, bits)
    y = np.asarray(accuracies, dtype=float)
    n_test = int(round(test_fraction * len(y)))
    mae = mx = float("nan")
    if n_test:
        perm = np.random.default_rng(seed).permutation(len(y))
        te, tr = perm[:n_test], perm[n_test:]
        b0, w = _ridge(X[tr], y[tr], ridge)
        err = np.abs(X[te] @ w + b0 - y[te])
        mae, mx = float(err.mean()), float(err.max())
    b0, w = _ridge(X, y, ridge)
    ref = max(bits)
    others = [b for b in bits if b != ref]
    per = 2 * len(others) + 2
    wt, at, dt = {}, {}, {}
    for li, name in enumerate(layers):
        c = w[li * per:(li + 1) * per]
        wt[name] = {str(ref): 0.0, **{str(b): float(c[k]) for k, b in enumerate(others)}}
        at[name] = {str(ref): 0.0, **{str(b): float(c[len(others) + k]) for k, b in enumerate(others)}}
        dt[name] = [float(c[-2]), float(c[-1])]
    measured = [{"config": {n: dict(c) for n, c in smp.items()}, "accuracy": float(a)} for smp, a in zip(samples, y)]
    return AccuracyPredictor(layers, bits, b0, wt, at, dt, mae, mx, len(y) - n_test, n_test, ridge, measured=measured)
