"""Shared start of the example scripts: the repository root on ``sys.path`` (so ``accelsim`` imports
from this checkout without installing) and the arguments every example has.

    from _common import ROOT, example_parser   # run as `python examples/x.py`: examples/ is on sys.path
    ap = example_parser(__doc__)                # --seed and --write-docs already added
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "examples"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def example_parser(doc: str | None, *, seed: bool = True, write_docs: bool = True) -> argparse.ArgumentParser:
    """An ``argparse`` parser described by the first line of ``doc``, with ``--seed`` (default 0) and
    ``--write-docs`` (rewrite the script's block of its docs page) unless turned off."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    if seed:
        ap.add_argument("--seed", type=int, default=0)
    if write_docs:
        ap.add_argument("--write-docs", action="store_true")
    return ap


def report(text: str, write_docs: bool, docs: Path, marker: str, script: str) -> int:
    """Print an example's result and, with ``--write-docs``, replace its block in ``docs``
    (credited to ``python examples/<script> --write-docs``); returns the exit status 0."""
    print(text)
    if write_docs:
        from _progress import write_docs_block

        write_docs_block(docs, marker, text, f"`python examples/{script} --write-docs`")
    return 0
