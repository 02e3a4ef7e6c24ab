"""Write matplotlib figures atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .._validation import atomic_write_bytes


def save_figure(fig: Any, path: str | Path | None) -> None:
    """Write ``fig`` atomically (format from the extension) and close it; no-op without a path."""
    if path is None:
        return
    import matplotlib.pyplot as plt

    p = Path(path)
    fmt = p.suffix.lstrip(".").lower() or "png"
    atomic_write_bytes(p, lambda tmp: fig.savefig(tmp, dpi=120, format=fmt, bbox_inches="tight"))
    plt.close(fig)
