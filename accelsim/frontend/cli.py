"""``accelsim compress``: compress a PyTorch model with a recipe and export the workload.

    accelsim compress --model zoo:resnet18 --recipe recipes/pattern_4bit.yaml \\
        --out models/resnet18_pattern_4bit.yaml

``--model`` is ``zoo:<name>`` (the in-house torch zoo: resnet18, resnet50, mobilenet_v2, vgg16,
bert_base, small_lstm, tiny_cnn), ``path/to/file.py:factory`` or ``package.module:factory`` (a
callable returning an ``nn.Module``, looked up from the current directory first; give
``--input-shape``). ``--weights`` loads a state dict. This module imports
torch only when the command runs; without torch it fails with a one-line install hint.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("compress", help="compress a PyTorch model with a recipe and export it as a workload",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", required=True, help="zoo:<name>, path/to/file.py:factory or package.module:factory")
    p.add_argument("--recipe", "-r", required=True, help="recipe YAML (see recipes/)")
    p.add_argument("--out", "-o", required=True, help="workload YAML to write (masks go to <stem>_masks.npz)")
    p.add_argument("--weights", help="state dict (.pt) to load before compressing")
    p.add_argument("--input-shape", help="example input shape, e.g. 1,3,224,224 (default: the zoo model's)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the example input (zoo models)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and example input")
    p.add_argument("--name", help="workload name (default: model name + recipe name)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--no-strict", action="store_true",
                   help="export modules the exporter cannot model (or whose MACs disagree with torch's FLOP "
                        "counter) with a note instead of failing")
    p.set_defaults(func=run)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"expected integers separated by commas, got {text!r}", source="command line",
                          field="--input-shape") from None
    if not shape or any(v <= 0 for v in shape):
        raise ConfigError(f"expected positive integers, got {text!r}", source="command line", field="--input-shape")
    return shape


def _load_model(spec: str, seed: int) -> tuple[Any, str]:
    from .models import get_torch_model

    if spec.startswith("zoo:"):
        return get_torch_model(spec[4:], seed=seed), spec[4:]
    mod_name, _, attr = spec.rpartition(":")
    if not mod_name or not attr:
        raise ConfigError(f"expected zoo:<name>, path/to/file.py:factory or package.module:factory, got {spec!r}",
                          source="command line", field="--model")
    try:
        factory = getattr(_import_model_module(mod_name), attr)
    except (ImportError, AttributeError, OSError, SyntaxError) as exc:
        raise ConfigError(f"cannot import {spec!r}: {exc}", source="command line", field="--model") from None
    if not callable(factory):
        raise ConfigError(f"{attr!r} in {mod_name!r} is not callable", source="command line", field="--model")
    import torch

    torch.manual_seed(seed)
    return factory(), attr.lower()


def _import_model_module(mod_name: str) -> Any:
    """A module given as ``path/to/file.py`` or a dotted name, looked up from the current directory first."""
    if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
        path = Path(mod_name).expanduser().resolve()
        if not path.is_file():
            raise ImportError(f"no such file: {path}")
        from importlib import util as importlib_util

        name = f"_accelsim_user_model_{path.stem}"
        spec = importlib_util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib_util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # the file may import its neighbours
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(mod_name)
    finally:
        if added:
            sys.path.remove(cwd)


def run(args: argparse.Namespace) -> int:
    from ._deps import require_torch

    torch = require_torch()
    from .compressor import compress
    from .exporter import export, save_export
    from .metrics import totals
    from .models import example_input
    from .recipe import load_recipe

    torch.set_num_threads(max(1, args.threads))
    recipe = load_recipe(args.recipe)  # validate before building the model
    model, mname = _load_model(args.model, args.seed)
    if args.weights:
        try:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot load weights: {str(exc).splitlines()[0]}", source=args.weights,
                              field="--weights") from None
    if args.input_shape:
        g = torch.Generator().manual_seed(args.seed)
        x = torch.randn(*_parse_shape(args.input_shape), generator=g)
    elif args.model.startswith("zoo:"):
        x = example_input(mname, batch=args.batch, seed=args.seed)
    else:
        raise ConfigError("a model that is not from the zoo needs --input-shape", source="command line",
                          field="--input-shape")
    strict = not args.no_strict
    try:
        before = export(model, x, name=mname, strict=strict)
    except RuntimeError as exc:
        raise ConfigError(f"the model does not run on an input of shape {tuple(x.shape)}: {str(exc).splitlines()[0]}",
                          source="command line", field="--input-shape") from None
    cm = compress(model, args.recipe, example_input=x)
    name = args.name or f"{mname}_{recipe.name}"
    try:
        wl = export(cm, x, name=name, strict=strict)
    except RuntimeError as exc:
        raise ConfigError(f"the model does not run on an input of shape {tuple(x.shape)}: {str(exc).splitlines()[0]}",
                          source="command line", field="--input-shape") from None
    out = save_export(wl, Path(args.out))
    tb, ta = totals(before), totals(wl)
    print(f"wrote {out} ({len(wl)} layers)" + (f" and {out.with_name(out.stem + '_masks.npz')}" if wl._mask_cache else ""))
    print(f"  size   {tb['size_bits'] / 8e6:10.3f} MB -> {ta['size_bits'] / 8e6:10.3f} MB  "
          f"({tb['size_bits'] / max(ta['size_bits'], 1):.2f}x)")
    print(f"  MACs   {tb['macs'] / 1e6:10.2f} M  -> {ta['macs_eff'] / 1e6:10.2f} M   "
          f"({tb['macs'] / max(ta['macs_eff'], 1):.2f}x, effective)")
    print(f"  BOPs   {tb['bops'] / 1e9:10.2f} G  -> {ta['bops'] / 1e9:10.2f} G   ({tb['bops'] / max(ta['bops'], 1):.2f}x)")
    for note in wl.notes:
        print(f"  note: {note}", file=sys.stderr)
    return 0
