"""Front-end speed: one-shot compression + export of ResNet-50 (random init, 224x224, batch 1).

    python benchmarks/bench_frontend.py [--threads 2] [--recipe recipes/pattern_4bit.yaml] [--repeat 3]

Targets (issue #3): compression + export < 30 s and export alone < 5 s on 2 cores. Prints the
best of ``--repeat`` runs for each phase (model build, dense export, compress, compressed export).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--recipe", action="append", default=None,
                    help="recipe(s) to time (default: pattern_4bit, unstructured_global, lowrank)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    from accelsim.frontend import compress, export
    from accelsim.frontend.models import example_input, get_torch_model

    torch.set_num_threads(args.threads)
    recipes = args.recipe or [str(ROOT / "recipes" / f) for f in ("pattern_4bit.yaml", "unstructured_global.yaml",
                                                                   "nm_2_4.yaml", "lowrank.yaml")]
    x = example_input(args.model)
    t0 = time.perf_counter()
    model = get_torch_model(args.model)
    build = time.perf_counter() - t0
    dense = min(_time(lambda: export(model, x)) for _ in range(args.repeat))
    print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} parameters, torch {torch.__version__}, "
          f"{args.threads} threads")
    print(f"  build model                 {build:7.2f} s")
    print(f"  export (dense)              {dense:7.2f} s   target < 5 s")
    for r in recipes:
        best_c, best_e = float("inf"), float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cm = compress(model, r)
            t1 = time.perf_counter()
            wl = export(cm, x)
            t2 = time.perf_counter()
            best_c, best_e = min(best_c, t1 - t0), min(best_e, t2 - t1)
        print(f"  {Path(r).stem:26s}  compress {best_c:6.2f} s + export {best_e:5.2f} s = {best_c + best_e:6.2f} s"
              f"   target < 30 s  ({len(wl)} layers)")
    return 0


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
