"""Compile every numba kernel ahead of first use: ``accelsim warmup`` (or ``python -m
accelsim.sim.warmup``).

accelsim's hot kernels are numba functions with ``cache=True``: the first process on a machine
compiles them and writes the machine code to numba's on-disk cache (next to the module, or
``NUMBA_CACHE_DIR``); later processes load it in well under a second. Measured on a 2-core
machine (CPU seconds, cold cache): the mapper ~30 s, the SCALE-Sim USER-mode replay ~5 s, the
gather-scatter and crossbar mask kernels ~2 s, the fold-program encoder ~0.6 s. :func:`warmup` runs each family once on tiny inputs
of the argument types the simulator uses, so every specialisation is compiled and cached. It is
part of installing (the README's commands). Without it, the first run that needs a family
compiles it and says so on stderr (:mod:`accelsim._jit`). Concurrent warm-ups are safe: numba
writes each cache file to a temporary name and renames it into place, so a reader sees either no
entry or a whole one.
"""
from __future__ import annotations

import time
from typing import Any, Callable


def _scalesim_user() -> None:
    from .scalesim_user import ScaleSimArray, ScaleSimLayer, simulate_user_mode

    layer = ScaleSimLayer(ifmap_h=6, ifmap_w=6, filter_h=3, filter_w=3, channels=2, num_filters=4, stride=1)
    for df in ("os", "ws", "is"):
        simulate_user_mode(layer, ScaleSimArray(4, 4, df, 1, 1, 1, 2, 2, 2))


def _mapper() -> None:
    from ..hardware.systolic import SystolicArray
    from ..mapping.implied import implied_hierarchy
    from ..mapping.ir import LayerDims
    from ..mapping.search import MappingCache, search_layer
    from ..workload.layer import Conv2d

    sram = {"size_kb": 8}
    hw = SystolicArray(name="warmup", rows=4, cols=4, ifmap_sram=sram, filter_sram=sram, ofmap_sram=sram)
    layer = Conv2d(name="c", in_channels=8, out_channels=8, in_h=6, in_w=6, kernel_h=3, kernel_w=3)
    search_layer(LayerDims.from_layer(layer), implied_hierarchy(hw), objective="latency", cache=MappingCache())


def _mask_kernels() -> None:
    import numpy as np

    from ..engines import gs_kernels as K
    from ..engines.crossbar_kernels import block_nnz

    mask = np.zeros((4, 8), dtype=np.uint8)
    mask[::2, 1::3] = 1
    ptr, idx = K.csr_of(mask)
    bank = (np.arange(8, dtype=np.int64) % 2).astype(np.int64)
    K.csr_reduction_cost(ptr, idx, bank, 2, 4, 4)
    K.csr_vertical_cost(ptr, idx, bank, 2, 4, 4)
    K.packed_cost(ptr, idx, bank, 2, 4, 4, 2)
    K.bank_aware_row_cost(ptr, idx, bank, 2, 4, 4)
    K.bank_aware_group_cost(ptr, idx, bank, 2, 4, 4, 2, False)
    block_nnz(mask, 1, 2, 2)
    block_nnz(np.asfortranarray(mask), 1, 2, 2)


def _periodic() -> None:
    from ..engines.lowering import compress_periodic_arrays

    compress_periodic_arrays([1, 2, 1, 2, 1, 2, 3], [1] * 7, [0] * 7)


#: kernel families: (name, warm-up function)
FAMILIES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("mapper", _mapper), ("SCALE-Sim USER mode", _scalesim_user), ("mask kernels", _mask_kernels),
    ("fold-program encoder", _periodic),
)


def warmup() -> dict[str, float]:
    """Compile (or load from cache) every kernel family; seconds per family."""
    out = {}
    for name, fn in FAMILIES:
        start = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - start
    return out


def main(args: Any = None) -> int:
    times = warmup()
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    print(f"accelsim: kernels ready ({parts})")
    return 0


def register(subparsers: Any) -> None:
    """Add ``accelsim warmup`` to the command line."""
    p = subparsers.add_parser("warmup", help="compile every numba kernel into numba's on-disk cache (run once after "
                                             "installing; later runs load it)")
    p.set_defaults(func=main)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
