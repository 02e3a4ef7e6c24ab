"""Structure the design promises: dependencies point one way; the core runs without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "accelsim"

# lower number = lower layer; a module may import only lower layers (or its own package)
LAYERS = {
    "errors": 0, "stats": 0, "_validation": 0.5,
    "workload": 1, "hardware": 1,
    "energy": 2, "mapping": 2,
    "engines": 3,
    "sim": 4,
    "report": 5,
    "api": 6,
    "dse": 7, "plot": 7, "cli": 7, "fpga_cli": 7, "frontend": 7,
}
# lazy imports that are allowed to point up (documented in the code)
ALLOWED_UP = {
    ("report", "plot"),        # Report.plot() draws with accelsim.plot, imported inside the method
}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "accelsim" else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT).with_suffix("")
    pkg_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    out.update(f"{mod}.{a.name}" for a in node.names)
                else:
                    out.add(mod)
            elif node.module:
                out.add(node.module)
    return out


def test_dependencies_point_one_way():
    problems = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts == ("accelsim", "__init__.py"):
            continue
        own = rel.parts[1].removesuffix(".py")
        if own not in LAYERS:
            problems.append(f"{rel}: package '{own}' has no layer in this test; add it to LAYERS")
            continue
        for imp in _imports(path):
            top = _top(imp)
            if top is None or top == own:
                continue
            if imp == "accelsim" or top == "__init__":
                continue
            if top not in LAYERS:
                continue
            if own == "frontend" and top not in ("workload", "errors", "stats", "_validation"):
                problems.append(f"{rel} imports accelsim.{top}: the front-end may depend on the workload IR only")
            elif own == "workload" and top == "hardware" or own == "hardware" and top == "workload":
                problems.append(f"{rel} imports accelsim.{top}: workload and hardware are siblings")
            elif LAYERS[own] == LAYERS[top] == 7:
                continue  # the user-facing layer (cli, dse, plot) may combine its parts
            elif LAYERS[top] >= LAYERS[own] and (own, top) not in ALLOWED_UP:
                problems.append(f"{rel} imports accelsim.{top} (layer {LAYERS[top]} >= {LAYERS[own]})")
    assert not problems, "\n".join(sorted(problems))


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
