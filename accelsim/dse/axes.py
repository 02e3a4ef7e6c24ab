"""Sweep axes: the values one dotted-path field takes, and how grid/random points are drawn.

An axis is written in the sweep file as a list of values or a mapping with one generator::

    rows: [32, 64, 128]                       # these values
    cols: {same_as: rows}                     # tied to another axis (square arrays)
    ifmap_sram.size_kb: {pow2: [64, 1024]}    # 64, 128, 256, 512, 1024
    dram.bw_gbps: {linspace: [12.8, 51.2, 4]} # n evenly spaced values, both ends included
    energy.mac_pj: {geomspace: [0.1, 1.0, 5]} # n log-spaced values
    ofmap_sram.size_kb: {range: [64, 256, 64]}# start, stop (included when hit), step
    clock_mhz: {uniform: [200, 1000]}         # random / nsga2 only: continuous
    energy.pe_leakage_mw: {loguniform: [1e-4, 1e-2]}
    rows: {randint: [8, 256]}                 # random / nsga2 only: integers, both ends included

Finite axes (values, same_as, range, linspace, geomspace, pow2) can be gridded; distributions
(uniform, loguniform, randint) only sampled. Every random draw comes from one seeded
``numpy.random.Generator``, axis by axis in the order the sweep file lists them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import ConfigError

FINITE_KINDS = ("values", "range", "linspace", "geomspace", "pow2")
RANDOM_KINDS = ("uniform", "loguniform", "randint")
ALL_KINDS = FINITE_KINDS + RANDOM_KINDS + ("same_as",)


def _clean(v: Any) -> Any:
    """numpy scalars -> Python; floats that are whole stay floats (pydantic converts for int fields)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _round_float(x: float) -> float:
    """Round away float noise from linspace/geomspace (12 significant digits)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.12g}")


@dataclass(frozen=True)
class Axis:
    """One swept field: ``path`` (dotted), a generator ``kind`` and its arguments."""

    path: str
    kind: str
    args: tuple[Any, ...]

    @property
    def is_finite(self) -> bool:
        return self.kind in FINITE_KINDS

    @property
    def is_tied(self) -> bool:
        return self.kind == "same_as"

    def values(self) -> list[Any]:
        """All values of a finite axis, in order."""
        k, a = self.kind, self.args
        if k == "values":
            return [_clean(v) for v in a]
        if k == "range":
            start, stop, step = a
            out, i = [], 0
            while True:
                v = start + i * step
                if (step > 0 and v > stop + 1e-12 * abs(step)) or (step < 0 and v < stop - 1e-12 * abs(step)):
                    break
                out.append(_round_float(v) if isinstance(v, float) else v)
                i += 1
            return out
        if k == "linspace":
            lo, hi, n = a
            return [_round_float(v) for v in np.linspace(lo, hi, int(n))]
        if k == "geomspace":
            lo, hi, n = a
            return [_round_float(v) for v in np.geomspace(lo, hi, int(n))]
        if k == "pow2":
            lo, hi = a
            e0, e1 = math.ceil(math.log2(lo) - 1e-12), math.floor(math.log2(hi) + 1e-12)
            vals = [2 ** e for e in range(e0, e1 + 1)]
            return [int(v) if v >= 1 else float(v) for v in vals]
        raise ConfigError(f"axis '{self.path}' ({self.kind}) is a distribution, not a finite list of values")

    def sample(self, rng: np.random.Generator) -> Any:
        """One random value (finite axes: uniform choice among their values)."""
        k, a = self.kind, self.args
        if k == "uniform":
            return float(rng.uniform(a[0], a[1]))
        if k == "loguniform":
            return float(math.exp(rng.uniform(math.log(a[0]), math.log(a[1]))))
        if k == "randint":
            return int(rng.integers(a[0], a[1], endpoint=True))
        vals = self.values()
        return vals[int(rng.integers(0, len(vals)))]

    def describe(self) -> str:
        if self.kind == "values":
            return f"{self.path}: {list(self.args)}"
        return f"{self.path}: {self.kind} {list(self.args)}"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: most values one finite axis may have (range, linspace, geomspace counts)
MAX_AXIS_VALUES = 1_000_000
#: generator bounds must lie within +-this (randint then fits int64, uniform's width stays finite)
MAX_AXIS_MAGNITUDE = 1e15


def _check_values(values: Sequence[Any], bad: Any) -> None:
    if len(values) > MAX_AXIS_VALUES:
        raise bad(f"an axis has at most {MAX_AXIS_VALUES:,} values, got {len(values):,}")
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise bad(f"expected finite values, got {v!r}")


def parse_axis(path: str, spec: Any, source: str) -> Axis:
    """Validate one ``axes:`` entry; errors name the sweep file and ``axes.<path>``."""
    field = f"axes.{path}"

    def bad(msg: str) -> ConfigError:
        return ConfigError(msg, source=source, field=field)

    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise bad("axis names are dotted field paths such as 'rows' or 'dram.bw_gbps'")
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise bad("an axis needs at least one value")
        _check_values(spec, bad)
        return Axis(path, "values", tuple(spec))
    if not isinstance(spec, dict):
        raise bad(f"expected a list of values or a mapping with one of {list(ALL_KINDS)}, got {spec!r}")
    kinds = [k for k in spec if k in ALL_KINDS]
    unknown = [k for k in spec if k not in ALL_KINDS]
    if unknown:
        raise bad(f"unknown axis generator {unknown[0]!r}; expected one of {list(ALL_KINDS)}")
    if len(kinds) != 1:
        raise bad(f"give exactly one of {list(ALL_KINDS)}, got {kinds}")
    kind = kinds[0]
    arg = spec[kind]
    if kind == "same_as":
        if not isinstance(arg, str):
            raise bad("same_as names another axis, e.g. {same_as: rows}")
        return Axis(path, kind, (arg,))
    if kind == "values":
        if not isinstance(arg, (list, tuple)) or not arg:
            raise bad("values needs a non-empty list")
        _check_values(arg, bad)
        return Axis(path, kind, tuple(arg))
    nargs = {"range": 3, "linspace": 3, "geomspace": 3, "pow2": 2, "uniform": 2, "loguniform": 2, "randint": 2}[kind]
    if not isinstance(arg, (list, tuple)) or len(arg) != nargs or not all(_number(x) for x in arg):
        shape = {"range": "[start, stop, step]", "linspace": "[low, high, count]", "geomspace": "[low, high, count]",
                 "pow2": "[low, high]", "uniform": "[low, high]", "loguniform": "[low, high]",
                 "randint": "[low, high]"}[kind]
        raise bad(f"{kind} needs {nargs} numbers {shape}, got {arg!r}")
    if not all(math.isfinite(x) for x in arg):
        raise bad(f"{kind} needs finite numbers, got {list(arg)}")
    if any(abs(x) > MAX_AXIS_MAGNITUDE for x in arg):
        raise bad(f"{kind} bounds must lie within +-{MAX_AXIS_MAGNITUDE:g}, got {list(arg)}")
    if kind == "range":
        if arg[2] == 0:
            raise bad("range step must not be 0")
        if (arg[1] - arg[0]) * arg[2] < 0:
            raise bad(f"range {list(arg)} is empty (the step points away from stop)")
        if (arg[1] - arg[0]) / arg[2] > MAX_AXIS_VALUES:
            raise bad(f"range has more than {MAX_AXIS_VALUES:,} values")
    if kind in ("linspace", "geomspace"):
        if not float(arg[2]).is_integer() or arg[2] < 1:
            raise bad(f"{kind} count must be a positive integer, got {arg[2]!r}")
        if arg[2] > MAX_AXIS_VALUES:
            raise bad(f"{kind} count must be at most {MAX_AXIS_VALUES:,}, got {arg[2]:g}")
    if kind in ("geomspace", "pow2", "loguniform") and (arg[0] <= 0 or arg[1] <= 0):
        raise bad(f"{kind} needs positive bounds, got {list(arg)}")
    if kind in ("pow2", "uniform", "loguniform", "randint") and arg[0] > arg[1]:
        raise bad(f"{kind} needs low <= high, got {list(arg)}")
    if kind == "randint" and not all(float(x).is_integer() for x in arg):
        raise bad(f"randint needs integer bounds, got {list(arg)}")
    if kind == "randint":
        arg = [int(x) for x in arg]
    axis = Axis(path, kind, tuple(arg))
    if axis.is_finite and not axis.values():
        raise bad(f"{kind} {list(arg)} gives no values")
    return axis


def resolve_ties(axes: Sequence[Axis], source: str) -> None:
    """Check every ``same_as`` points at a non-tied axis that exists."""
    by_path = {a.path: a for a in axes}
    for a in axes:
        if a.is_tied:
            target = by_path.get(a.args[0])
            if target is None:
                raise ConfigError(f"same_as names unknown axis {a.args[0]!r}; axes are {list(by_path)}",
                                  source=source, field=f"axes.{a.path}")
            if target.is_tied:
                raise ConfigError("same_as must name an axis with its own values, not another same_as",
                                  source=source, field=f"axes.{a.path}")


def _fill_ties(point: dict[str, Any], tied: Sequence[Axis]) -> dict[str, Any]:
    for a in tied:
        point[a.path] = point[a.args[0]]
    return point


def grid_size(axes: Sequence[Axis]) -> int:
    n = 1
    for a in axes:
        if not a.is_tied:
            n *= len(a.values())
    return n


def iter_grid(axes: Sequence[Axis], fastest: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Every combination, lazily. Axes named in ``fastest`` vary fastest (innermost loop).

    Putting energy-only axes innermost lets consecutive points reuse the cached tiling/timing.
    """
    free = [a for a in axes if not a.is_tied]
    tied = [a for a in axes if a.is_tied]
    order = [a for a in free if a.path not in fastest] + [a for a in free if a.path in fastest]
    value_lists = [a.values() for a in order]
    for combo in itertools.product(*value_lists):
        point = {a.path: v for a, v in zip(order, combo)}
        point = {a.path: point[a.path] for a in free}  # keep the sweep file's column order
        yield _fill_ties(point, tied)


def iter_random(axes: Sequence[Axis], samples: int, seed: int) -> Iterator[dict[str, Any]]:
    """``samples`` independent draws from a ``numpy`` Generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    free = [a for a in axes if not a.is_tied]
    tied = [a for a in axes if a.is_tied]
    for _ in range(samples):
        point = {a.path: a.sample(rng) for a in free}
        yield _fill_ties(point, tied)
