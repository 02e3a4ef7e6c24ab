"""Co-exploration: compression knobs x hardware knobs, accuracy from the front-end (cached on disk).

A co-exploration sweep has a ``compression`` section (front-end model, base recipe, seed) and may
sweep ``recipe.<dotted path>`` axes next to hardware axes. For each distinct recipe the front-end
compresses the model, measures its accuracy on scikit-learn's digits and exports the compressed
network as a workload; the explorer then simulates that workload on every hardware point, so the
front relates accuracy, latency and energy -- "which network and which accelerator together".

The accuracy comes from an *evaluator*, one of

- a full evaluator ``(model, recipe, *, dataset, seed, **train)`` returning an object with
  ``accuracy`` (float in [0, 1]) and ``workload`` (an accelsim Workload, masks attached in
  memory); the default is the front-end's ``accelsim.frontend.evaluate:evaluate_recipe``;
- an accuracy function ``evaluate(model) -> float in [0, 1]`` (one required positional
  parameter): the front-end's evaluator builds and compresses the model and calls it on the
  compressed ``nn.Module`` instead of measuring digits accuracy.

A sweep file names it as ``compression.evaluator: "package.module:function"`` or
``"file.py:function"`` (resolved from the sweep file's directory, then the current directory; its
content is part of the cache key); from Python it may also be the callable itself. Either runs
the user's code. ``compression.model`` is a zoo name, ``file.py:factory`` / ``module:factory`` or
a callable factory likewise. Results are cached under ``cache_dir``
(one JSON + workload YAML + masks ``.npz`` per recipe fingerprint), so a recipe is trained and
evaluated once, however many hardware points use it and however often the sweep is rerun.

torch is never imported here: the evaluator (in the front-end) does that.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .._validation import atomic_write_bytes, atomic_write_text
from ..errors import ConfigError
from .keys import digest

DEFAULT_EVALUATOR = "accelsim.frontend.evaluate:evaluate_recipe"


@dataclass
class CompressedResult:
    """What co-exploration needs of one compressed model."""

    accuracy: float | None
    workload: Any
    cached: bool = False


def _frontend_digest() -> str:
    """Digest of the front-end's source (a new front-end re-measures accuracy)."""
    import hashlib

    root = Path(__file__).resolve().parent.parent / "frontend"
    h = hashlib.sha256()
    if root.is_dir():
        for f in sorted(root.rglob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _load_file_module(path: str) -> Any:
    import importlib.util
    import sys

    p = Path(path)
    name = f"_accelsim_evaluator_{digest(str(p.resolve()))[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    if not p.is_file():
        raise ConfigError(f"evaluator file {path!r} not found", source="sweep", field="compression.evaluator")
    spec = importlib.util.spec_from_file_location(name, p)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def resolve_user_file(ref: Any, base_dir: Path, *, field: str) -> Any:
    """``file.py:name`` with a relative path -> absolute, looked up in ``base_dir`` (the sweep file's
    directory), then the current directory; anything else is returned unchanged."""
    if not isinstance(ref, str):
        return ref
    path, _, name = ref.rpartition(":")
    if not path.endswith(".py") or Path(path).is_absolute():
        return ref
    for root in (base_dir, Path.cwd()):
        if (root / path).is_file():
            return f"{(root / path).resolve()}:{name}"
    raise ConfigError(f"{path!r} not found in {base_dir} or the current directory {Path.cwd()}", source="sweep",
                      field=field)


def callable_ref(fn: Any) -> str:
    """A stable label of a callable: ``module:qualname#<digest of its source>`` (for keys and the store)."""
    import inspect

    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = ""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}#{digest(src)[:12]}"


def is_accuracy_function(fn: Callable[..., Any]) -> bool:
    """True for ``evaluate(model) -> accuracy`` (exactly one required positional parameter, no ``recipe``)."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) == 1 and not any(p.name == "recipe" for p in params)


def resolve_evaluator(spec: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function`` (a callable is returned as is); missing
    torch -> a ConfigError saying what to install."""
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    target = spec or DEFAULT_EVALUATOR
    mod_name, _, fn_name = target.rpartition(":")
    if not mod_name or not fn_name:
        raise ConfigError(f"expected 'package.module:function' or 'file.py:function', got {target!r}", source="sweep",
                          field="compression.evaluator")
    try:
        mod = _load_file_module(mod_name) if mod_name.endswith(".py") else importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "sklearn"):
            raise ConfigError("co-exploration measures accuracy with the PyTorch front-end, which needs the torch "
                              "extra: pip install 'accelsim[torch]' (torch==2.13.0, scikit-learn)", source="sweep",
                              field="compression") from None
        raise ConfigError(f"accuracy evaluator module {mod_name!r} not found ({exc}); the front-end provides "
                          f"{DEFAULT_EVALUATOR}", source="sweep", field="compression.evaluator") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ConfigError(f"{mod_name} has no function {fn_name!r}", source="sweep", field="compression.evaluator")
    return fn  # type: ignore[no-any-return]


def check_available(comp: dict[str, Any]) -> None:
    """Fail early (one clear line) when co-exploration cannot run here (no torch, no evaluator)."""
    if not comp.get("evaluator") or is_accuracy_function(resolve_evaluator(comp.get("evaluator"))):
        try:
            from ..frontend._deps import require_torch

            require_torch()
        except ConfigError as exc:
            raise ConfigError(f"co-exploration measures accuracy with the PyTorch front-end; {exc}", source="sweep",
                              field="compression") from None
    resolve_evaluator(comp.get("evaluator"))


def fingerprint(comp: dict[str, Any], recipe: dict[str, Any]) -> str:
    """Cache key of one compressed model: model, recipe, seed, dataset, training options, front-end code."""
    return digest({"model": _ref_digest(comp["model"]), "recipe": recipe, "seed": comp.get("seed", 0),
                   "dataset": comp.get("dataset", "digits"), "train": comp.get("train") or {},
                   "evaluator": _ref_digest(comp.get("evaluator") or DEFAULT_EVALUATOR), "frontend": _frontend_digest()})


def _ref_digest(ref: Any) -> str:
    """Identity of a model / evaluator reference: a callable's label + source, a file's content, else the text."""
    if callable(ref):
        return callable_ref(ref)
    mod = str(ref).rpartition(":")[0]
    return f"{_file_digest(mod)}:{str(ref).rpartition(':')[2]}" if mod.endswith(".py") else str(ref)


def _file_digest(path: str) -> str:
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return path


def ref_label(ref: Any) -> str:
    """Printable name of a model / evaluator reference (string as given, callable as ``module:qualname``)."""
    if ref is None:
        return DEFAULT_EVALUATOR
    return callable_ref(ref).partition("#")[0] if callable(ref) else str(ref)


def _paths(cache_dir: str, fp: str) -> tuple[Path, Path, Path]:
    d = Path(cache_dir)
    return d / f"{fp}.json", d / f"{fp}.yaml", d / f"{fp}_masks.npz"


def is_cached(comp: dict[str, Any], recipe: dict[str, Any]) -> bool:
    return _paths(comp["cache_dir"], fingerprint(comp, recipe))[0].exists()


def _load_cached(comp: dict[str, Any], fp: str) -> CompressedResult | None:
    meta_p, wl_p, _ = _paths(comp["cache_dir"], fp)
    if not meta_p.exists():
        return None
    try:
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
        from ..workload.io import load_workload

        wl = load_workload(wl_p)
        return CompressedResult(accuracy=meta.get("accuracy"), workload=wl, cached=True)
    except (OSError, ValueError, ConfigError):
        return None  # a damaged entry is recomputed


def _save(comp: dict[str, Any], fp: str, recipe: dict[str, Any], res: Any) -> None:
    import numpy as np

    from ..workload.io import dump_workload_yaml

    meta_p, wl_p, npz_p = _paths(comp["cache_dir"], fp)
    wl = res.workload
    masks: dict[str, Any] = {}
    if any(layer.compression.sparsity.mask for layer in wl.layers):
        masks = dict(wl._load_masks())
    if masks:
        wl = wl.with_layers(list(wl.layers), masks=npz_p.name)
        atomic_write_bytes(npz_p, lambda tmp: _savez(tmp, masks, np))
    atomic_write_text(wl_p, dump_workload_yaml(wl))
    accuracy = getattr(res, "accuracy", None)
    atomic_write_text(meta_p, json.dumps({"accuracy": None if accuracy is None else float(accuracy), "model": ref_label(comp["model"]),
                                          "recipe": recipe, "seed": comp.get("seed", 0),
                                          "dataset": comp.get("dataset", "digits")}, sort_keys=True, indent=1) + "\n")


def _savez(tmp: str, masks: dict[str, Any], np: Any) -> None:
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{k: np.asarray(v) for k, v in masks.items()})


_MEMO: dict[str, CompressedResult] = {}


def compressed_model(comp: dict[str, Any], recipe: dict[str, Any]) -> CompressedResult:
    """Accuracy and workload of ``comp['model']`` compressed by ``recipe`` (disk-cached, memoised)."""
    fp = fingerprint(comp, recipe)
    hit = _MEMO.get(fp)
    if hit is not None:
        return hit
    res = _load_cached(comp, fp)
    if res is None:
        fn = resolve_evaluator(comp.get("evaluator"))
        kwargs = dict(dataset=comp.get("dataset", "digits"), seed=comp.get("seed", 0), **(comp.get("train") or {}))
        if is_accuracy_function(fn):
            from ..frontend.evaluate import evaluate_recipe

            out = evaluate_recipe(comp["model"], dict(recipe), accuracy=fn, **kwargs)
        else:
            out = fn(comp["model"], dict(recipe), **kwargs)
        if getattr(out, "workload", None) is None:
            raise ConfigError(f"evaluator {ref_label(comp.get('evaluator'))} returned no workload",
                              source="sweep", field="compression.evaluator")
        os.makedirs(comp["cache_dir"], exist_ok=True)
        _save(comp, fp, recipe, out)
        res = _load_cached(comp, fp) or CompressedResult(accuracy=getattr(out, "accuracy", None), workload=out.workload)
        res.cached = False
    if len(_MEMO) > 128:
        _MEMO.clear()
    _MEMO[fp] = res
    return res
