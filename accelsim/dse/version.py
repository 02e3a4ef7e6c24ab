"""The version stamp of stored results: accelsim's version + a digest of the simulator's source.

A results-store key includes this stamp, so points simulated by different code are never mixed:
after an edit to an engine, the energy model or the IR, a resumed sweep simulates again.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from .._version import __version__

#: parts of the package whose code decides the numbers of a point
CORE_PARTS = ("api.py", "program_cache.py", "components.py", "energy.py", "stats.py", "report.py", "engines", "sim",
              "hardware", "workload")


@lru_cache(maxsize=1)
def model_version() -> str:
    """``<version>+<12 hex digits>`` over the simulator's source files (sorted, content-hashed)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for part in CORE_PARTS:
        p = root / part
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"
