"""Fuzz every input kind through the CLI and print the counts (cases, exit codes, tracebacks, hangs).

    python benchmarks/fuzz_inputs.py [--per-kind 60] [--seed 0] [--timeout 60] [--mem-mb 2048] [-v]
                                     [--baseline /work/main]

Each case runs in a forked child (address space limited to this process's size plus ``--mem-mb``
MiB, so a blow-up is a MemoryError traceback, not an OOM kill; ``SIGALRM`` after ``--timeout`` s,
counted as a hang). ``--baseline DIR`` first runs the same cases against the accelsim package of
another checkout (e.g. main) in a subprocess, then this one: "before" and "after" in one run. The cases come from ``tests/fuzz_support.py`` (the bounded
hypothesis test ``tests/test_fuzz_inputs.py`` draws from the same generators). Exit status 1 if
any case broke the promise (exit 0 with sane output or exit 2 with one error line).
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_support import run_forked, seeded_cases  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=60, help="random tree mutations per input kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=60, help="seconds before a case counts as a hang")
    ap.add_argument("--mem-mb", type=int, default=2048, help="address space per case beyond this process's (MiB)")
    ap.add_argument("--baseline", help="also run the cases against the accelsim of this checkout (e.g. /work/main)")
    ap.add_argument("--label", default="", help=argparse.SUPPRESS)
    ap.add_argument("--only", help="only cases whose label contains this text")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failing case")
    a = ap.parse_args()
    if a.baseline:
        import os
        import subprocess

        argv = [sys.executable, __file__, "--per-kind", str(a.per_kind), "--seed", str(a.seed), "--timeout",
                str(a.timeout), "--mem-mb", str(a.mem_mb), "--label", f"before ({a.baseline})"]
        argv += ["--only", a.only] if a.only else []
        env = dict(os.environ, PYTHONPATH=str(Path(a.baseline).resolve()))
        subprocess.run(argv + (["-v"] if a.verbose else []), env=env, check=False)
        a.label = a.label or f"after ({Path(__file__).resolve().parents[1]})"
    import accelsim.cli  # noqa: F401  (import once before forking: children start warm)

    print(f"{a.label or 'accelsim'}: {accelsim.cli.__file__}", flush=True)

    cases = seeded_cases(a.seed, a.per_kind)
    if a.only:
        cases = [c for c in cases if a.only in c.label]
    codes: collections.Counter[str] = collections.Counter()
    tracebacks = hangs = nonsense = 0
    failures = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for i, case in enumerate(cases):
            o = run_forked(case, Path(d) / "case", timeout_s=a.timeout, mem_mb=a.mem_mb)
            codes["hang" if o.code is None else str(o.code)] += 1
            tracebacks += any(p == "traceback" for p in o.problems)
            hangs += any(p == "hang" for p in o.problems)
            nonsense += any(p.startswith("nonsense accepted") for p in o.problems)
            if o.problems:
                failures.append((case, o))
                if a.verbose:
                    print(f"FAIL {case.label} | accelsim {' '.join(case.argv)} | {o.problems} | "
                          f"{o.stderr.strip().splitlines()[-1][:300] if o.stderr.strip() else ''}", flush=True)
    wall = time.perf_counter() - t0
    print(f"cases: {len(cases)}  exit codes: {dict(sorted(codes.items()))}  tracebacks: {tracebacks}  hangs: {hangs}  "
          f"nonsense accepted: {nonsense}  promise broken: {len(failures)}  ({wall:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
