"""Front-end speed: one-shot compression + export of ResNet-50 (random init, 224x224, batch 1) with
every shipped recipe, and of a transformer encoder with BERT-base shapes (12 layers, hidden 768,
12 heads, FFN 3072, sequence 128).

    python benchmarks/bench_frontend.py [--threads 2] [--repeat 2] [--recipe recipes/x.yaml ...]
        [--models resnet50,bert_base]

Targets (issue #12): compress + export < 30 s per recipe for both models; export alone < 5 s.
Every export is cross-checked against torch's FlopCounterMode (included in the export time).
Also times ``CompressedModel.pruned_module()`` for the filter-pruning recipe. Prints the best of
``--repeat`` runs (the first run also pays one-off imports), wall and CPU seconds, and the load
average (on a shared machine wall time grows with the load). A recipe that does not apply to a
model (e.g. an override naming conv layers on the transformer) prints its one-line error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="resnet50,bert_base")
    ap.add_argument("--recipe", action="append", default=None, help="recipe(s) to time (default: all in recipes/)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    from accelsim.errors import ConfigError
    from accelsim.frontend import compress, export
    from accelsim.frontend.models import example_input, get_torch_model

    torch.set_num_threads(args.threads)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    recipes = args.recipe or [str(p) for p in sorted((ROOT / "recipes").glob("*.yaml"))]
    for mname in args.models.split(","):
        x = example_input(mname)
        t0 = time.perf_counter()
        model = get_torch_model(mname)
        build = time.perf_counter() - t0
        dense = min(_time(lambda: export(model, x)) for _ in range(args.repeat))
        wl = export(model, x)
        print(f"{mname}: {sum(p.numel() for p in model.parameters()):,} parameters, {wl.total_macs / 1e9:.2f} GMACs, "
              f"input {tuple(x.shape)}, torch {torch.__version__}, {args.threads} threads")
        print(f"  build model                 {build:7.2f} s")
        print(f"  export (dense, checked)     {dense:7.2f} s   target < 5 s  ({len(wl)} layers)")
        for r in recipes:
            best_c = best_e = best_p = best_cpu = float("inf")
            try:
                for _ in range(args.repeat):
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    cm = compress(model, r, example_input=x)
                    t1 = time.perf_counter()
                    wl = export(cm, x)
                    t2 = time.perf_counter()
                    best_c, best_e = min(best_c, t1 - t0), min(best_e, t2 - t1)
                    best_cpu = min(best_cpu, time.process_time() - c0)
                    if any(u.prune is not None and u.prune.kind in ("filter", "channel") for u in cm.units.values()):
                        t3 = time.perf_counter()
                        pm = cm.pruned_module()
                        best_p = min(best_p, time.perf_counter() - t3)
            except ConfigError as exc:
                print(f"  {Path(r).stem:22s}  does not apply: {exc}"[:200])
                continue
            extra = ""
            if best_p < float("inf"):
                n0 = sum(p.numel() for p in model.parameters())
                n1 = sum(p.numel() for p in pm.parameters())
                extra = f"; pruned_module {best_p:5.2f} s ({n0:,} -> {n1:,} parameters)"
            total = best_c + best_e
            print(f"  {Path(r).stem:22s}  compress {best_c:6.2f} s + export {best_e:5.2f} s = {total:6.2f} s wall "
                  f"({best_cpu:6.2f} s CPU)   target < 30 s {'ok' if total < 30 else 'MISSED'}  ({len(wl)} layers){extra}")
    return 0


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
