"""Turn pydantic and YAML errors into one-line :class:`~accelsim.errors.ConfigError` s."""
from __future__ import annotations

import math
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def format_loc(loc: tuple[Any, ...], data: Any = None) -> str:
    """``('layers', 3, 'conv2d', 'kernel_h')`` -> ``layers[3].kernel_h`` (union tags dropped).

    When ``data`` (the raw input) is given, list indices are followed by the item's ``name``.
    """
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and "name" in node:
                    label = f"[{part}]({node['name']})"
            else:
                node = None
            out += label
            continue
        if isinstance(node, dict) and part not in node and isinstance(part, str) and _is_union_tag(part):
            continue  # discriminated-union tag such as 'conv2d' inserted by pydantic
        out += ("." if out else "") + str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _is_union_tag(part: str) -> bool:
    return part in {"conv2d", "linear", "matmul", "lstm", "gru", "elementwise", "pool"} or part.startswith(
        ("function-", "tagged-union", "union[")
    )


def validation_to_config_error(exc: ValidationError, source: str, data: Any = None) -> ConfigError:
    """The first error of a pydantic ValidationError as a ConfigError naming file and field; an
    unknown key is reported first (it is usually the misspelt missing one), and the other errors are
    named briefly: ``(and 3 more errors: 'layers' missing, 'name' missing, ...)``."""
    errors = exc.errors()
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    field = format_loc(tuple(err.get("loc", ())), data)
    msg = err.get("msg", "invalid value")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check the spelling; see the documented schema)"
    elif err.get("type") == "union_tag_invalid":
        ctx = err.get("ctx", {})
        msg = f"unknown value {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    elif err.get("type") == "union_tag_not_found":
        msg = f"missing the '{err.get('ctx', {}).get('discriminator', 'kind').strip(chr(39))}' field"
    msg = msg.removeprefix("Value error, ")
    others = [e for e in errors if e is not err]
    if others:
        def brief(e: Any) -> str:
            where = format_loc(tuple(e.get("loc", ())), data) or "top level"
            what = {"missing": "missing", "extra_forbidden": "unknown"}.get(e.get("type", ""), "invalid")
            return f"'{where}' {what}"

        named = ", ".join(brief(e) for e in others[:4]) + (", ..." if len(others) > 4 else "")
        msg += f" (and {len(others)} more error{'s' if len(others) > 1 else ''}: {named})"
    return ConfigError(msg, source=source, field=field or None)


def validate_model(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, source, data) from None


#: libyaml's parser when PyYAML was built with it (same data, ~8x faster: ResNet-50's workload
#: file parses in 15 ms instead of 110 ms), else the pure-Python one
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: deepest nesting of lists/mappings accepted in any input file (real files nest < 10 levels)
MAX_NESTING = 64
#: most values (scalars, lists, mappings; aliases counted each time used) in one input file
MAX_NODES = 2_000_000


class StrictSafeLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` (libyaml's when available) that refuses duplicate mapping keys.

    The one YAML loader of accelsim: every input file goes through :func:`load_yaml_text`.
    Python tags (``!!python/...``) stay refused (safe loader). With ``duplicates = "last"``
    (ZigZag's own files, read as they are) a repeated key keeps its last value, as PyYAML does,
    and is recorded in ``seen_duplicates`` (key, first line, repeat line) for a warning.
    """

    duplicates = "error"

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    if self.duplicates != "last":
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
                    self.__dict__.setdefault("seen_duplicates", []).append(
                        (key, seen[key] + 1, key_node.start_mark.line + 1))
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def check_plain_data(data: Any, source: str) -> None:
    """Refuse non-finite numbers (``.inf``, ``.nan``) anywhere and nesting deeper than
    :data:`MAX_NESTING`; the error names the file and the field (dotted path)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    visited = 0
    while stack:
        node, where, depth = stack.pop()
        visited += 1
        if visited > MAX_NODES:  # YAML aliases can expand a small file into billions of nodes
            raise ConfigError(f"more than {MAX_NODES:,} values (a YAML alias bomb?)", source=source)
        if depth > MAX_NESTING:
            raise ConfigError(f"nested deeper than {MAX_NESTING} levels", source=source, field=where or None)
        if isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"expected a finite number, got {node!r}", source=source, field=where or None)
        if isinstance(node, dict):
            for k, v in node.items():
                stack.append((v, f"{where}.{k}" if where else str(k), depth + 1))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, f"{where}[{i}]", depth + 1))


_WARNED_DUPLICATES: set[tuple[str, int]] = set()


def load_yaml_text(text: str, source: str, duplicates: str = "error") -> Any:
    """Parse YAML text with :class:`StrictSafeLoader`; malformed YAML, deep nesting and non-finite
    numbers raise ConfigError naming ``source``. Duplicate keys: ``"error"`` (accelsim's own files)
    raises; ``"last"`` (third-party files read as they are, e.g. ZigZag's ``tpu_like.yaml`` repeats
    ``ports``) keeps the last value like PyYAML and logs one warning per repeated key."""
    if duplicates not in ("error", "last"):
        raise ValueError(f"duplicates must be 'error' or 'last', not {duplicates!r}")
    loader = StrictSafeLoader(text)
    loader.duplicates = duplicates
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML{where}: {problem}", source=source) from None
    except RecursionError:
        raise ConfigError(f"malformed YAML: nested deeper than {MAX_NESTING} levels", source=source) from None
    finally:
        loader.dispose()
    if duplicates == "last":
        import logging

        log = logging.getLogger("accelsim")
        for key, first, again in getattr(loader, "seen_duplicates", [])[:10]:
            if (source, again) in _WARNED_DUPLICATES:  # a file read twice (kind detection, load) warns once
                continue
            _WARNED_DUPLICATES.add((source, again))
            log.warning("%s: duplicate key %r at line %d (first at line %d): the last value is used, "
                        "as PyYAML does", source, key, again, first)
    check_plain_data(data, source)
    return data


#: largest input text file read (bytes); real workload files are < 1 MB
MAX_INPUT_BYTES = 64 << 20


def read_text_file(path: str | Path) -> str:
    """A UTF-8 text file of at most :data:`MAX_INPUT_BYTES`; a missing, unreadable, oversized or
    non-regular file (``/dev/zero``, a FIFO) raises ConfigError naming the file."""
    p = Path(path)
    try:
        if p.exists() and not p.is_dir() and not p.is_file():
            raise ConfigError("not a regular file", source=str(path))
        if p.is_file() and p.stat().st_size > MAX_INPUT_BYTES:
            raise ConfigError(f"file larger than {MAX_INPUT_BYTES >> 20} MiB", source=str(path))
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file ({exc.__class__.__name__}: {exc})", source=str(path)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file whose top level is a mapping (see :func:`load_yaml_text`)."""
    data = load_yaml_text(read_text_file(path), str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}", source=str(path))
    return data


def _wants_number(annotation: Any) -> bool:
    """Does a field annotation accept int/float but not bool (``int``, ``float | None``, ...)?"""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _wants_number(args[0])
    if args and typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType")):
        return not any(a is bool for a in args) and any(_wants_number(a) for a in args)
    return annotation in (int, float)


def reject_bool_numbers(cls: type[BaseModel], data: Any) -> Any:
    """``mode="before"`` model-validator body: ``rows: true`` is an error, not 1 (strict numbers)."""
    if isinstance(data, dict):
        for name, info in cls.model_fields.items():
            for key in {name, info.alias} - {None}:
                value = data.get(key)
                if isinstance(value, bool) and _wants_number(info.annotation):
                    raise ValueError(f"'{key}' must be a number, got {str(value).lower()}")
    return data


def _umask_mode() -> int:
    import os

    old = os.umask(0)
    os.umask(old)
    return 0o666 & ~old


def read_config_file(path: str | Path, what: str, other_types: str = "") -> Any:
    """Parse a ``.yaml``/``.yml``/``.json`` file into data; anything else is a ConfigError.

    ``what`` names the kind of file in messages ("workload", "hardware"); ``other_types`` lists
    further extensions the caller handles itself (for the message only).
    """
    import json

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".json":
        text = read_text_file(p)
        try:
            data = json.loads(text, object_pairs_hook=_json_no_duplicates)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"malformed JSON at line {exc.lineno}: {exc.msg}", source=str(p)) from None
        except RecursionError:
            raise ConfigError(f"malformed JSON: nested deeper than {MAX_NESTING} levels", source=str(p)) from None
        except ValueError as exc:  # duplicate key
            raise ConfigError(f"malformed JSON: {exc}", source=str(p)) from None
        check_plain_data(data, str(p))
        return data
    if suffix in (".yaml", ".yml"):
        return read_yaml(p)
    raise ConfigError(f"unknown {what} file type {suffix!r}; expected .yaml, .yml, .json{other_types}", source=str(p))


def _json_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file so readers never see it half-written (temp file + rename)."""

    def write(tmp: str) -> None:
        import os

        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write_bytes(path, write)


#: temp files of :func:`atomic_write_bytes` are ``.<name>.accelsim-tmp-<boot>-<pid>-<random><suffix>``
_TMP_TAG = ".accelsim-tmp-"


def _remove_stale_temps(p: Path) -> int:
    """Remove temp files left next to ``p`` by writers of ``p`` that were killed (e.g. SIGKILL).

    Only files named by :func:`atomic_write_bytes` for this very target, made on this machine
    since its last boot by a process that no longer runs, are removed. Returns how many.
    """
    import os
    import re

    from ._proc import boot_id, is_alive

    pat = re.compile(re.escape(f".{p.name}{_TMP_TAG}") + r"([0-9A-Za-z]+)-(\d+)-")
    removed = 0
    try:
        names = os.listdir(p.parent)
    except OSError:
        return 0
    for name in names:
        m = pat.match(name)
        if m is None or m.group(1) != boot_id():
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or is_alive(f"{m.group(1)}:{pid}:0") is not False:
            continue
        try:
            os.unlink(p.parent / name)
            removed += 1
        except OSError:
            pass
    return removed


def atomic_write_bytes(path: str | Path, write) -> None:  # type: ignore[no-untyped-def]
    """Call ``write(tmp_path)`` then atomically rename the temp file onto ``path``.

    The temp file sits next to ``path`` (same file system, so the rename is atomic) and is removed
    when ``write`` or the rename fails (any exception, Ctrl-C included). A writer killed outright
    (SIGKILL) cannot clean up: its temp file is named after the target, the machine's boot and
    the writer's pid, and the next write of the same target removes it once that pid is gone.
    """
    import os
    import tempfile

    from ._proc import boot_id

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}{_TMP_TAG}{boot_id()}-{os.getpid()}-",
                               suffix=p.suffix or ".tmp", dir=p.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def finite_for_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (inf, -inf, NaN; numpy scalars included) replaced by
    ``None``, so JSON output is strict RFC 8259 (no ``Infinity``/``NaN``). The rule: a quantity
    that is not a finite number (e.g. a ratio over a zero denominator) is written ``null``."""
    if isinstance(obj, dict):
        return {str(k): finite_for_json(v) for k, v in obj.items()}  # JSON keys are strings
    if isinstance(obj, (list, tuple)):
        return [finite_for_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite_for_json` (``obj``) with ``allow_nan=False``; other values
    that are not JSON types go through ``float`` (numpy numbers) or ``str``."""
    import json

    def default(o: Any) -> Any:
        try:
            v = float(o)
        except (TypeError, ValueError):
            return str(o)
        return v if math.isfinite(v) else None

    return json.dumps(finite_for_json(obj), allow_nan=False, default=default, **kwargs)


#: File types ``--plot`` can write (matplotlib backends accelsim relies on).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def check_output_path(path: str, flag: str, suffixes: typing.Sequence[str] = ()) -> Path:
    """``path`` as a file to write for option ``flag``: not a directory (``.``, ``..``, a trailing
    slash), its directory must exist (nothing is created) and be writable, and its suffix must be
    one of ``suffixes`` when given; checked before any work so a bad path costs nothing (``--out
    /proc/nope/x.csv`` fails here, not after the table was printed)."""
    p = Path(path)
    if p.is_dir() or path.endswith(("/", "\\")) or p.name in ("", ".", ".."):
        raise ConfigError("is a directory, expected a file name", source=path, field=flag)
    if suffixes and p.suffix.lower() not in suffixes:
        raise ConfigError(f"unsupported file type {p.suffix or '(none)'!r}; expected one of {', '.join(suffixes)}",
                          source=path, field=flag)
    parent = p.parent
    if not parent.is_dir():
        raise ConfigError(f"directory {str(parent)!r} does not exist (accelsim does not create directories)",
                          source=path, field=flag)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"directory {str(parent)!r} is not writable", source=path, field=flag)
    return p


def positive_int_arg(text: str) -> int:
    """argparse type: an integer >= 1 (``--top 0`` is an error, not an empty plot)."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v
