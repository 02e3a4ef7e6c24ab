"""Peak Python allocations (tracemalloc) of exporting a results store, streamed vs loaded whole.

    python benchmarks/bench_export_memory.py [ROWS ...]     (default 5000 20000)

Prints, per store size, the peak of :func:`accelsim.dse.export` (streamed) and of the former way
(``load()`` the whole store into a DataFrame, then ``to_csv``/``to_parquet``). Imports are done
before measuring. Memory figures only; tracemalloc slows both sides several-fold.
"""
from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_dse_export_stream import _make_store  # noqa: E402

from accelsim.dse.store import export, load  # noqa: E402


def _peak_mb(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20, time.perf_counter() - t0
    finally:
        tracemalloc.stop()


def main(sizes: list[int]) -> None:
    import pyarrow.parquet  # noqa: F401  (imported before measuring)

    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            db = Path(d) / f"s{n}.sqlite"
            _make_store(db, n)
            for suffix in (".csv", ".parquet"):
                out = Path(d) / f"o{suffix}"
                export(db, out, sweep="none")
                new, t_new = _peak_mb(lambda: export(db, out, sweep="big"))

                def whole() -> None:
                    df = load(db, sweep="big")
                    (df.to_csv(out, index=False) if suffix == ".csv" else df.to_parquet(out, index=False))

                old, t_old = _peak_mb(whole)
                print(f"{n:>7} rows {suffix:<8}: streamed export peak {new:6.1f} MB ({t_new:5.1f} s traced); "
                      f"load-then-write peak {old:6.1f} MB ({t_old:5.1f} s traced)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5000, 20000])
