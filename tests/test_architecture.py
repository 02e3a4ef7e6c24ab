"""Structure the design promises (docs/design.md): dependencies point one way, no import cycles,
the core runs without torch.

The checker reads the import statements of every module (``ast``, nothing is imported) and
builds the module import graph. An import at module level is a *top* edge; one inside a function
is a *lazy* edge; imports under ``if TYPE_CHECKING:`` never run and are ignored, and so are
imports by name (``importlib.import_module(...)``: the CLI's subcommand table, the façade's lazy
names, the hardware kind discovery). Rules:

1. **Layers.** Every edge (top or lazy) between two top-level parts of the package goes down the
   layer order :data:`LAYERS`; parts on the same layer are siblings and may not import each other;
   nothing imports the package's façade (``accelsim/__init__``), which sits above everything.
   Moving a module inside a part (``engines/masks.py`` -> ``workload/``) needs no change here;
   a new top-level part needs a line in :data:`LAYERS`.
2. **No cycles.** The module graph (top and lazy edges) has no cycle, within a part too.
3. **Exceptions are written down.** A lazy edge may point up only when it is in :data:`ALLOWED_UP`
   (it still counts for cycles: nothing below may import back), and may close a cycle only when it
   is in :data:`ALLOWED_CYCLE`, each with its reason; an allowed edge imported at module level
   still fails, and an entry that matches no edge any more fails (so the lists only shrink).
"""
from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "accelsim"

# lower number = lower layer; a part may import only lower layers (or itself)
LAYERS: dict[str, float] = {
    "errors": 0, "_version": 0, "_jit": 0, "components": 0, "_proc": 0, "_idmemo": 0,
    "stats": 0.25,  # raises the tile-budget ConfigError (accelsim.errors)
    "_validation": 0.5, "pareto": 0.5, "sparsity": 0.5,
    "workload": 1, "hardware": 1,
    "energy": 2, "mapping": 2,
    "engines": 3,
    "sim": 4,
    "report": 5,
    "program_cache": 5.5,
    "api": 6,
    # the user-facing top, in its own order: plot and frontend (siblings) < dse < cli
    "plot": 7, "frontend": 7,
    "dse": 8, "fpga_cli": 8,
    "cli": 9,
    "__init__": 10,  # the façade: imports everything lazily, imported by nothing
}
#: the front-end (torch) may depend on the workload IR and the lowest utilities only
FRONTEND_MAY_IMPORT = {"workload", "errors", "stats", "_validation", "_version"}

#: lazy imports allowed to point up: (importer, imported) fnmatch patterns -> why
ALLOWED_UP: dict[tuple[str, str], str] = {
    ("accelsim.report", "accelsim.plot.*"):
        "Report.plot() draws with accelsim.plot, imported inside the method (plot never imports report at run time)",
    ("accelsim.plot.html_report", "accelsim.dse.*"):
        "the sweep page of `accelsim report` reads a results store; imported only when that page is built",
}
#: lazy imports allowed to close an import cycle: (importer, imported) fnmatch patterns -> why
ALLOWED_CYCLE: dict[tuple[str, str], str] = {
    ("accelsim.hardware.registry", "accelsim.hardware"):
        "discover_kinds() walks the hardware package (pkgutil) once, on the first kind lookup",
}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    lazy: bool
    line: int
    path: str


def modules_of(pkg_dir: Path, pkg_name: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``pkg_dir`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = list(path.relative_to(pkg_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([pkg_name, *parts])] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_edges(pkg_dir: Path, pkg_name: str) -> list[Edge]:
    """Every import of a module of the package by a module of the package (TYPE_CHECKING blocks skipped)."""
    mods = modules_of(pkg_dir, pkg_name)
    edges: list[Edge] = []

    def resolve(name: str) -> str | None:
        while name and name not in mods:  # `import a.b.c` of a non-module attribute: its module
            name = name.rpartition(".")[0]
        return name or None

    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

        def visit(node: ast.AST, lazy: bool) -> None:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.orelse:
                    visit(child, lazy)
                return
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                lazy = True
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = here.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import name`: the submodule when `name` is one, else the package itself
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t == pkg_name or t.startswith(pkg_name + "."):
                    dst = resolve(t)
                    if dst is not None and dst != mod:
                        edges.append(Edge(mod, dst, lazy, getattr(node, "lineno", 0), str(path)))
            for child in ast.iter_child_nodes(node):
                visit(child, lazy)

        visit(tree, False)
    return edges


def _part(mod: str, pkg_name: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _allowed(edge: Edge, allowed: dict[tuple[str, str], str]) -> tuple[str, str] | None:
    for pat in allowed:
        if fnmatch.fnmatchcase(edge.src, pat[0]) and fnmatch.fnmatchcase(edge.dst, pat[1]):
            return pat
    return None


def _cycles(nodes: set[str], edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle path."""
    graph: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edges:
        graph.setdefault(e.src, set()).add(e.dst)
        graph.setdefault(e.dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # recursion depth = length of an import chain: small
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    out = []
    for comp in comps:  # one concrete cycle through the component's first module, for the message
        members = set(comp)
        start = comp[0]
        path, seen = [start], {start}
        while True:
            nxt = sorted(w for w in graph[path[-1]] if w in members)
            back = [w for w in nxt if w == start]
            if back and len(path) > 1:
                out.append(path + [start])
                break
            fresh = [w for w in nxt if w not in seen]
            if not fresh:
                out.append(comp + [comp[0]])
                break
            path.append(fresh[0])
            seen.add(fresh[0])
    return out


def check_package(pkg_dir: Path, pkg_name: str, layers: dict[str, float], allowed_up: dict[tuple[str, str], str],
                  allowed_cycle: dict[tuple[str, str], str], frontend_may_import: set[str] | None = None) -> list[str]:
    """Every layer violation, import cycle and misused/unused allow-list entry of the package."""
    edges = import_edges(pkg_dir, pkg_name)
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    graph_edges: list[Edge] = []
    for e in edges:
        where = f"{Path(e.path).relative_to(pkg_dir.parent)}:{e.line}"
        up, cyc = _allowed(e, allowed_up), _allowed(e, allowed_cycle)
        for pat in (up, cyc):
            if pat is not None and not e.lazy:
                problems.append(f"{where}: {e.src} imports {e.dst} at module level; allowed only inside a function")
            elif pat is not None:
                used.add(pat)
        if cyc is None or not e.lazy:
            graph_edges.append(e)  # an allowed up-edge still counts: nothing below may import back
        if up is not None and e.lazy:
            continue
        own, top = _part(e.src, pkg_name), _part(e.dst, pkg_name)
        if own == top:
            continue
        for part in (own, top):
            if part not in layers:
                problems.append(f"{where}: '{part}' has no layer; add it to LAYERS")
        if own not in layers or top not in layers:
            continue
        if top == "__init__":
            problems.append(f"{where}: {e.src} imports the package façade {e.dst}; import the defining module")
        elif own == "frontend" and frontend_may_import is not None and top not in frontend_may_import:
            problems.append(f"{where}: {e.src} imports {e.dst}: the front-end may depend on the workload IR only")
        elif layers[top] == layers[own]:
            problems.append(f"{where}: {e.src} imports {e.dst}: '{own}' and '{top}' are siblings (layer {layers[own]})")
        elif layers[top] > layers[own]:
            problems.append(f"{where}: {e.src} imports {e.dst} (layer {layers[top]} > {layers[own]}: against the layer order)")
    for cycle in _cycles({e.src for e in graph_edges} | {e.dst for e in graph_edges}, graph_edges):
        problems.append("import cycle: " + " -> ".join(cycle))
    for name, allowed in (("ALLOWED_UP", allowed_up), ("ALLOWED_CYCLE", allowed_cycle)):
        for pat, why in allowed.items():
            if pat not in used:
                problems.append(f"{name} entry {pat} matches no lazy import any more; remove it ({why[:60]}...)")
    return sorted(dict.fromkeys(problems))


def test_dependencies_point_one_way_and_no_cycles():
    problems = check_package(PKG, "accelsim", LAYERS, ALLOWED_UP, ALLOWED_CYCLE, FRONTEND_MAY_IMPORT)
    assert not problems, "\n".join(problems)


# --- the checker itself, on a small fake package -------------------------------------------------
FAKE_LAYERS = {"low": 0, "mid": 1, "top": 2, "side": 2, "__init__": 3}


def _fake(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "fakepkg"
    for rel, text in {"__init__.py": "", "low.py": "", "mid/__init__.py": "", "top.py": "", "side.py": "",
                      **files}.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return pkg


def test_checker_accepts_a_clean_package(tmp_path):
    pkg = _fake(tmp_path, {
        "mid/__init__.py": "from ..low import x\nfrom . import a\n",
        "mid/a.py": "import fakepkg.low\n",
        "mid/b.py": "from .a import y\n",
        "top.py": "from .mid.b import z\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .side import s\n",
        "__init__.py": "def __getattr__(n):\n    from . import top\n",
    })
    assert check_package(pkg, "fakepkg", FAKE_LAYERS, {}, {}) == []


def test_checker_rejects_a_deliberate_cycle(tmp_path):
    pkg = _fake(tmp_path, {"mid/a.py": "from . import b\n", "mid/b.py": "from .c import f\n",
                           "mid/c.py": "import fakepkg.mid.a\n"})
    problems = check_package(pkg, "fakepkg", FAKE_LAYERS, {}, {})
    assert problems == ["import cycle: fakepkg.mid.a -> fakepkg.mid.b -> fakepkg.mid.c -> fakepkg.mid.a"]


def test_checker_rejects_a_cycle_closed_inside_a_function_unless_allowed(tmp_path):
    files = {"mid/a.py": "from .b import g\n", "mid/b.py": "def f():\n    from .a import h\n"}
    problems = check_package(_fake(tmp_path, files), "fakepkg", FAKE_LAYERS, {}, {})
    assert problems == ["import cycle: fakepkg.mid.a -> fakepkg.mid.b -> fakepkg.mid.a"]
    allowed = {("fakepkg.mid.b", "fakepkg.mid.a"): "documented"}
    assert check_package(_fake(tmp_path, files), "fakepkg", FAKE_LAYERS, {}, allowed) == []


def test_checker_allowed_up_edge_still_counts_for_cycles(tmp_path):
    files = {"low.py": "def draw():\n    from .top import t\n", "top.py": "def f():\n    from .low import g\n"}
    allowed_up = {("fakepkg.low", "fakepkg.top"): "low draws with top, lazily"}
    problems = check_package(_fake(tmp_path, files), "fakepkg", FAKE_LAYERS, allowed_up, {})
    assert problems == ["import cycle: fakepkg.low -> fakepkg.top -> fakepkg.low"]
    files["top.py"] = ""
    assert check_package(_fake(tmp_path, files), "fakepkg", FAKE_LAYERS, allowed_up, {}) == []


def test_checker_rejects_imports_against_the_layers(tmp_path):
    pkg = _fake(tmp_path, {"low.py": "from .mid import m\n", "top.py": "from .side import s\n",
                           "side.py": "def f():\n    from .top import t\n", "mid/a.py": "from .. import __version__\n"})
    problems = check_package(pkg, "fakepkg", FAKE_LAYERS, {}, {})
    text = "\n".join(problems)
    assert "fakepkg.low imports fakepkg.mid (layer 1 > 0" in text
    assert "'top' and 'side' are siblings" in text and "'side' and 'top' are siblings" in text
    assert "imports the package façade fakepkg" in text
    assert "import cycle: fakepkg.side -> fakepkg.top -> fakepkg.side" in text


def test_checker_allow_list_is_lazy_only_and_never_stale(tmp_path):
    pkg = _fake(tmp_path, {"low.py": "from .top import t\n"})
    allowed = {("fakepkg.low", "fakepkg.top"): "up, but lazily", ("fakepkg.nothing", "fakepkg.*"): "gone"}
    problems = check_package(pkg, "fakepkg", FAKE_LAYERS, allowed, {})
    assert any("imports fakepkg.top at module level; allowed only inside a function" in p for p in problems)
    assert any("ALLOWED_UP entry ('fakepkg.nothing', 'fakepkg.*') matches no lazy import" in p for p in problems)


def test_checker_needs_a_layer_for_every_part(tmp_path):
    pkg = _fake(tmp_path, {"newpart.py": "from .low import x\n"})
    assert check_package(pkg, "fakepkg", FAKE_LAYERS, {}, {}) == [
        "fakepkg/newpart.py:1: 'newpart' has no layer; add it to LAYERS"]


# --- torch stays in the front-end ------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def test_torch_only_in_frontend():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "frontend":
            continue
        for imp in _imports(path):
            if imp == "torch" or imp.startswith("torch."):
                bad.append(str(rel))
    assert not bad, bad


def test_core_imports_and_simulates_without_torch():
    code = textwrap.dedent(f"""
        import sys
        sys.modules['torch'] = None          # any 'import torch' now raises ImportError
        import accelsim
        r = accelsim.simulate({str(ROOT / 'models' / 'resnet18.yaml')!r}, {str(ROOT / 'hw_configs' / 'systolic_128x128_os.yaml')!r})
        assert r.macs > 1e9
        from accelsim.cli import build_parser
        build_parser()                       # optional subcommands register without torch
        print('ok', 'torch' in sys.modules and sys.modules['torch'] is None)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


@pytest.mark.parametrize("stmt,heavy", [
    ("import accelsim", ("numpy", "pandas", "pydantic", "matplotlib", "numba", "torch", "accelsim.api")),
    ("import accelsim.cli; accelsim.cli.build_parser()", ("pandas", "matplotlib", "numba", "torch", "accelsim.dse.runner")),
    ("import accelsim.dse", ("numpy", "pandas", "accelsim.dse.runner")),
    ("import accelsim.plot", ("matplotlib", "pandas")),
])
def test_imports_stay_lazy(stmt, heavy):
    """What ``import accelsim`` and the CLI's start-up load: none of the heavy libraries (speed: benchmarks/)."""
    code = f"import sys\n{stmt}\nprint(sorted(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{stmt} loads {proc.stdout.strip()}"
