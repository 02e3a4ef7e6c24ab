"""One progress line per step of an example script, on stderr (stdout keeps the tables clean).

    progress = Progress(total=15)
    progress.step("trained the dense model")   # -> "[ 1/15   12.3 s] trained the dense model"

Set ``ACCELSIM_QUIET=1`` to silence it.
"""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO


class Progress:
    """Counts steps and prints each with the time elapsed since the object was made."""

    def __init__(self, total: int | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.n = 0
        self.t0 = time.perf_counter()
        self.stream = stream
        self.quiet = bool(os.environ.get("ACCELSIM_QUIET"))

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t0

    def step(self, what: str) -> str:
        """Count one step and print ``[n/total  elapsed s] what``; returns the line."""
        self.n += 1
        width = len(str(self.total)) if self.total else 1
        count = f"{self.n:>{width}}/{self.total}" if self.total else f"{self.n}"
        line = f"[{count} {self.elapsed_s:7.1f} s] {what}"
        if not self.quiet:
            print(line, file=self.stream or sys.stderr, flush=True)
        return line


def write_docs_block(docs: "os.PathLike[str] | str", marker: str, text: str, cmd: str) -> None:
    """Replace the ``<!-- marker:start -->`` ... ``<!-- marker:end -->`` block of ``docs`` with
    ``text`` and the command that produced it (atomically)."""
    import re
    from pathlib import Path

    from accelsim._validation import atomic_write_text

    path = Path(docs)
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    doc = path.read_text(encoding="utf-8")
    if start not in doc or end not in doc:
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    block = f"{start}\nProduced by {cmd} on {time.strftime('%Y-%m-%d')}:\n\n{text}\n{end}"
    atomic_write_text(path, re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S))
    print(f"updated {path}")
