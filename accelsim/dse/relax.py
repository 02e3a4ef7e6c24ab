"""Continuous relaxation of a sweep's hardware axes (shared by the differentiable and min-max searches).

Numeric axes (finite lists of numbers, ``uniform``/``loguniform``/``randint``) become coordinates
``z`` in [-1, 1]: in log2 space when every value is positive (``rows`` 8..256 -> evenly spaced),
linear otherwise. Non-numeric or boolean axes (``dataflow``, ``sparse.zero_skipping``) become
categorical blocks, relaxed as softmax probabilities over their values. Axes with one value are
fixed; ``same_as`` axes follow their target. :meth:`HardwareSpace.decode` snaps a relaxed design
back to the sweep's values: the nearest value in ``z`` space for finite numeric axes, rounding for
``randint``, the most probable value of each categorical block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .axes import Axis


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def softmax_vjp(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the logits of ``softmax`` given the gradient ``g`` w.r.t. its output ``p``."""
    return p * (g - float(p @ g))


@dataclass
class _Num:
    axis: Axis
    lo: float
    hi: float
    log: bool
    values: list[Any] | None  # finite axes: snap to these

    def to_u(self, v: float) -> float:
        x = math.log2(v) if self.log else float(v)
        return 0.0 if self.hi == self.lo else 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0

    def from_u(self, u: float) -> Any:
        x = self.lo + (float(np.clip(u, -1, 1)) + 1.0) / 2.0 * (self.hi - self.lo)
        if self.values is not None:
            return min(self.values, key=lambda v: abs(self.to_u(v) - float(np.clip(u, -1, 1))))
        v = 2.0 ** x if self.log else x
        return int(round(v)) if self.axis.kind == "randint" else float(v)


class HardwareSpace:
    """The relaxed hardware axes of a sweep: ``z`` (numeric) and categorical probability blocks."""

    def __init__(self, axes: Sequence[Axis]):
        self.fixed: dict[str, Any] = {}
        self.tied = [a for a in axes if a.is_tied]
        self.num: list[_Num] = []
        self.cat: list[tuple[Axis, list[Any]]] = []
        for a in axes:
            if a.is_tied:
                continue
            if a.is_finite:
                vals = a.values()
                if len(vals) == 1:
                    self.fixed[a.path] = vals[0]
                elif all(_numeric(v) for v in vals):
                    log = all(v > 0 for v in vals)
                    xs = [math.log2(v) if log else float(v) for v in vals]
                    self.num.append(_Num(a, min(xs), max(xs), log, vals))
                else:
                    self.cat.append((a, vals))
            else:
                lo, hi = float(a.args[0]), float(a.args[1])
                log = a.kind == "loguniform" or (a.kind == "randint" and lo > 0)
                self.num.append(_Num(a, math.log2(lo) if log else lo, math.log2(hi) if log else hi, log, None))

    @property
    def dims(self) -> int:
        return len(self.num)

    @property
    def cat_sizes(self) -> list[int]:
        return [len(v) for _, v in self.cat]

    def encode(self, params: dict[str, Any]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Exact design -> (z, one-hot blocks)."""
        z = np.array([n.to_u(params[n.axis.path]) for n in self.num], dtype=float)
        qs = []
        for a, vals in self.cat:
            q = np.zeros(len(vals))
            q[vals.index(params[a.path])] = 1.0
            qs.append(q)
        return z, qs

    def decode(self, z: np.ndarray, qs: Sequence[np.ndarray]) -> dict[str, Any]:
        """Relaxed design -> the nearest exact design (a parameter dict of the sweep's axes)."""
        out: dict[str, Any] = dict(self.fixed)
        for n, u in zip(self.num, z):
            out[n.axis.path] = n.from_u(float(u))
        for (a, vals), q in zip(self.cat, qs):
            out[a.path] = vals[int(np.argmax(q))]
        for t in self.tied:
            out[t.path] = out[t.args[0]]
        return out

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fixed)
        for n in self.num:
            out[n.axis.path] = n.axis.sample(rng)
        for a, vals in self.cat:
            out[a.path] = vals[int(rng.integers(0, len(vals)))]
        for t in self.tied:
            out[t.path] = out[t.args[0]]
        return out


class Adam:
    """Plain Adam on a flat parameter vector (deterministic)."""

    def __init__(self, n: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps

    def step(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        mh = self.m / (1 - self.b1 ** self.t)
        vh = self.v / (1 - self.b2 ** self.t)
        return x - self.lr * mh / (np.sqrt(vh) + self.eps)
