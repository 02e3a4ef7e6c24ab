"""Compile the SCALE-Sim USER-mode kernels ahead of first use: ``accelsim warmup``
(or ``python -m accelsim.sim.warmup``).

The replay kernels of :mod:`.scalesim_user` are numba functions with ``cache=True``: the first
process on a machine compiles them (~9 s) and writes the machine code to numba's on-disk cache
(next to the module, or ``NUMBA_CACHE_DIR``); later processes load it in well under a second.
:func:`warmup` runs one tiny layer per dataflow through the same code path as ``simulate`` so
every specialisation is compiled and cached. Run it once after installing (e.g. in a Docker
build step or CI setup). Concurrent warm-ups are safe: numba writes each cache file to a
temporary name and renames it into place, so a reader sees either no entry or a whole one.
"""
from __future__ import annotations

import time
from typing import Any


def warmup() -> float:
    """Compile (or load from cache) every USER-mode kernel; returns the seconds it took."""
    from .scalesim_user import ScaleSimArray, ScaleSimLayer, simulate_user_mode

    start = time.perf_counter()
    layer = ScaleSimLayer(ifmap_h=6, ifmap_w=6, filter_h=3, filter_w=3, channels=2, num_filters=4, stride=1)
    for df in ("os", "ws", "is"):
        simulate_user_mode(layer, ScaleSimArray(4, 4, df, 1, 1, 1, 2, 2, 2))
    return time.perf_counter() - start


def main(args: Any = None) -> int:
    print(f"accelsim: SCALE-Sim USER-mode kernels ready ({warmup():.1f} s)")
    return 0


def register(subparsers: Any) -> None:
    """Add ``accelsim warmup`` to the command line."""
    p = subparsers.add_parser("warmup", help="compile the SCALE-Sim USER-mode kernels into numba's cache (run once "
                                             "after installing)")
    p.set_defaults(func=main)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
