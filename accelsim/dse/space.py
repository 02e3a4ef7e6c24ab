"""From axis values to concrete design points: hardware dict, recipe, store key.

A point's hardware is the base config with each hardware axis written at its dotted path, then
validated by the hardware kind's pydantic model; an invalid combination (e.g. an SRAM too small
for two words) becomes an ``invalid`` point carrying the validation message, never a crash.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import ConfigError
from .axes import iter_grid, iter_random
from .keys import digest
from .spec import Sweep
from .version import model_version

__all__ = ["DesignSpace", "Point", "canonical_hardware", "digest", "hardware_of", "is_pricing_field", "locality_view",
           "set_path", "timing_view", "workload_fingerprint"]

#: ``recipe.layers[<layer name>].<section>.<field>``: a per-layer compression choice (an override)
_LAYER_PARAM = re.compile(r"^recipe\.layers\[(.+?)\]\.(.+)$")


def _hardware_class(kind: str) -> Any:
    from ..errors import ConfigError
    from ..hardware.registry import kind_spec

    spec = kind_spec(kind)
    if spec is None:
        raise ConfigError(f"unknown hardware kind {kind!r}", field="kind")
    return spec.hardware

def is_pricing_field(path: str, kind: str) -> bool:
    """Whether hardware field ``path`` of ``kind`` only changes prices (energy per action, labels), not
    tiling/timing: the schema marks it pricing-only (``HardwareBase.pricing_only_fields``).
    ``tests/test_dse_core.py`` checks the marks on every shipped hardware config."""
    return path in _hardware_class(kind).pricing_only_fields()

def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Write ``value`` at dotted ``path``, creating (or replacing ``None`` by) sections as needed."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value

def hardware_of(data: dict[str, Any], source: str = "point") -> Any:
    """Validate a hardware dict; skips re-discovering the hardware kinds once a kind is registered."""
    from .._validation import validate_model
    from ..hardware.io import hardware_from_dict
    from ..hardware.registry import HARDWARE_KINDS

    cls = HARDWARE_KINDS.get(str(data.get("kind"))) if isinstance(data, dict) and "layers" not in data else None
    if cls is None:
        return hardware_from_dict(data, source=source)
    return validate_model(cls, data, source)

def timing_view(hw_dict: dict[str, Any]) -> dict[str, Any]:
    """``hw_dict`` without pricing-only fields (the key of cached tiling/timing); a kind whose
    ``prices_steer_tiling(hw_dict)`` is true (a systolic array with ``mapping: search``: the
    mapper's objective weighs the prices) keeps them all but ``name``/``description``."""
    cls = _hardware_class(str(hw_dict.get("kind")))
    steer = getattr(cls, "prices_steer_tiling", None)
    pricing = frozenset({"name", "description"}) if steer is not None and steer(hw_dict) else cls.pricing_only_fields()

    def strip(d: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out[k] = strip(v, f"{prefix}{k}.")
            elif f"{prefix}{k}" not in pricing:
                out[k] = v
        return out

    return strip(hw_dict, "")

#: systolic fields that do not decide which mapping problems a ``mapping: search`` point poses, but
#: only which of them it picks: the mapper searches each layer on the hierarchy with the array
#: shrunk to the spatial unrolling (``engines.systolic.searched._spec_array``), so arrays of one
#: dataflow and SRAM sizes whose longer edge (the SRAM port width, ``mapping.implied``) is equal
#: share searches; DRAM bandwidth (in bits per cycle: ``dram.bw_gbps`` / ``clock_mhz``) leaves the
#: enumerated loop orders (``mapping.search._ORDER_CACHE``) shared
_SEARCH_SHARED_FIELDS = ("rows", "cols", "clock_mhz", "dram.bw_gbps")


def locality_view(view: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a point's :func:`timing_view` ``view`` that decides which per-process caches (mapping
    searches, loop-order enumerations) its evaluation fills and reuses: the key by which the
    explorer keeps points on one worker (``executors.LocalExecutor``). A systolic array with
    ``mapping: search`` drops :data:`_SEARCH_SHARED_FIELDS` and keeps the array's longer edge;
    any other point has none (``None``: its caches are keyed by its timing view). Only where
    points run depends on it, never their results."""
    mapping = view.get("mapping") or ("scalesim" if view.get("stall_model") == "scalesim_user" else "search")
    if view.get("kind") != "systolic" or mapping != "search":
        return None
    edge = max(int(view.get("rows", 0)), int(view.get("cols", 0)))

    def strip(d: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {k: strip(v, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in d.items()
                if f"{prefix}{k}" not in _SEARCH_SHARED_FIELDS}

    return {**strip(view, ""), "_array_edge": edge}


def canonical_hardware(hw: Any) -> dict[str, Any]:
    """The identity of a hardware point: its compact dict without ``name``/``description``."""
    from ..hardware.io import hardware_to_dict

    d = hardware_to_dict(hw)
    d.pop("name", None)
    d.pop("description", None)
    return d

@dataclass
class Point:
    """One design point of a sweep (for one workload)."""

    index: int
    params: dict[str, Any]
    workload: str                    # label
    workload_fp: str                 # content fingerprint
    hardware: dict[str, Any] | None  # canonical dict (None when invalid)
    recipe: dict[str, Any] | None
    key: str
    error: str | None = None         # validation message of an invalid point
    timing_key: str = ""
    locality: str = ""               # worker affinity key (digest of :func:`locality_view`; "" for none)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.error is None

class DesignSpace:
    """Turns axis values into :class:`Point` s for every workload of a sweep."""

    def __init__(self, sweep: Sweep, workload_fps: dict[str, str], compression: dict[str, Any] | None = None):
        self.sweep = sweep
        self.compression = compression
        self.workload_fps = workload_fps
        self.version = model_version()
        self.pricing_axes = [a.path for a in sweep.hardware_axes if is_pricing_field(a.path, str(sweep.base_hardware.get("kind")))]

    # --- enumeration --------------------------------------------------------------------
    def iter_params(self) -> Iterator[dict[str, Any]]:
        """Grid or random parameter sets, lazily (nsga2 asks its own)."""
        s = self.sweep.spec.search
        if s.method == "grid":
            # recipe axes outermost (each compression setting once per block), pricing axes innermost
            recipe_first = sorted(self.sweep.axes, key=lambda a: 0 if a.path.startswith("recipe.") else 1)
            yield from iter_grid(recipe_first, fastest=self.pricing_axes)
        elif s.method == "random":
            yield from iter_random(self.sweep.axes, s.samples or 0, s.seed)
        else:
            raise ConfigError("nsga2 points come from the search, not from enumeration", source=self.sweep.source,
                              field="search.method")

    def size(self) -> int | None:
        s = self.sweep.spec.search
        from .axes import grid_size

        n_wl = max(1, len(self.sweep.workloads))
        if s.method == "grid":
            return grid_size(self.sweep.axes) * n_wl
        if s.method == "random":
            return (s.samples or 0) * n_wl
        return s.population * s.generations * n_wl

    # --- one point ----------------------------------------------------------------------
    def hardware_for(self, params: dict[str, Any]) -> tuple[Any | None, str | None]:
        """The validated hardware object of ``params`` (or None and the reason it is invalid)."""
        data = copy.deepcopy(self.sweep.base_hardware)
        swept = []
        for path, value in params.items():
            if not path.startswith("recipe."):
                set_path(data, path, value)
                swept.append(f"{path}={value:g}" if isinstance(value, float) else f"{path}={value}")
        if swept:  # the point's own name (not the base config's), axes in sweep order; identity ignores names
            order = {a.path: i for i, a in enumerate(self.sweep.axes)}
            swept.sort(key=lambda t: order.get(t.split("=", 1)[0], len(order)))
            data["name"] = f"{data.get('name', 'hw')}[{','.join(swept)}]"
        try:
            return hardware_of(data), None
        except ConfigError as exc:
            return None, str(exc).removeprefix("point: ")

    def recipe_for(self, params: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        if self.sweep.base_recipe is None:
            return None, None
        from ..frontend.recipe import load_recipe

        data = copy.deepcopy(self.sweep.base_recipe)
        per_layer: dict[str, dict[str, Any]] = {}
        for path, value in params.items():
            m = _LAYER_PARAM.match(path)
            if m:  # a per-layer choice of the differentiable search -> an override of that layer
                set_path(per_layer.setdefault(m.group(1), {}), m.group(2), value)
            elif path.startswith("recipe."):
                set_path(data, path[len("recipe."):], value)
        if per_layer:
            data["overrides"] = list(data.get("overrides") or []) + [
                {"names": [name], **sections} for name, sections in sorted(per_layer.items())]
        try:
            rec = load_recipe(data)
        except ConfigError as exc:
            return None, f"recipe: {exc.field + ': ' if exc.field else ''}{exc.message}"
        return rec.model_dump(mode="json"), None  # full dump: canonical and loads back

    def compression_fingerprint(self, recipe: dict[str, Any]) -> str:
        from .coexplore import fingerprint

        assert self.compression is not None
        return fingerprint(self.compression, recipe)

    def points_for(self, index: int, params: dict[str, Any]) -> list[Point]:
        """The points of ``params``: one per workload (co-exploration: one for the compressed model)."""
        hw, hw_err = self.hardware_for(params)
        recipe, rec_err = self.recipe_for(params)
        error = hw_err or rec_err
        from ..hardware.io import hardware_to_dict

        hw_dict = hardware_to_dict(hw) if hw is not None else None  # keeps the name for messages/reports
        ident_hw = canonical_hardware(hw) if hw is not None else None  # identity: without name/description
        tview = timing_view(ident_hw) if ident_hw is not None else None
        tkey = digest(tview) if tview is not None else ""
        lview = locality_view(tview) if tview is not None else None
        locality = digest(lview) if lview is not None else ""
        out = []
        if self.sweep.spec.compression is not None:
            c = self.sweep.spec.compression
            from .coexplore import ref_label

            label = ref_label(c.model)
            fp = self.compression_fingerprint(recipe) if recipe is not None else digest(params)
            targets = [(label, fp)]
        else:
            targets = [(w.label, self.workload_fps[w.label]) for w in self.sweep.workloads]
        for label, fp in targets:
            ident = {"workload": fp, "hardware": ident_hw, "compression": recipe, "version": self.version}
            if error is not None:  # invalid points are keyed by their parameters
                ident = {"workload": fp, "params": params, "base": self.sweep.base_hardware, "version": self.version}
            out.append(Point(index=index, params=dict(params), workload=label, workload_fp=fp, hardware=hw_dict,
                             recipe=recipe, key=digest(ident), error=error, timing_key=tkey,
                             locality=locality))
        return out

def workload_fingerprint(wl: Any) -> str:
    """Content hash of a workload (layers, compression and real masks)."""
    from ..workload.io import workload_to_dict

    h = hashlib.sha256(json.dumps(workload_to_dict(wl), sort_keys=True, default=str).encode())
    if any(layer.compression.sparsity.mask for layer in wl.layers):
        masks = wl._load_masks()
        for k in sorted(masks):
            h.update(k.encode())
            h.update(masks[k].tobytes())
    return h.hexdigest()
