"""NITI integer-only training on a residual network (digits), against its float twin.

    python examples/niti_residual.py [--epochs 30] [--seed 0] [--write-docs]

``IntNet("resnet")``: conv 16, a basic block 16 -> 16, 2x2 max-pool, a block 16 -> 32 with a 1x1
skip conv, 2x2 max-pool, fc 128 -> 10; no biases and no batch norm (accelsim's NITI, like the
paper's networks, has no integer batch norm); residual adds in integer arithmetic
(:func:`accelsim.frontend.training.niti.int_add`). The float twin has the same layers, Xavier
init, SGD lr 0.05 (as the CNN/MLP float twins of ``examples/training_methods.py``). Seeded, CPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs" / "training.md"
START, END = "<!-- niti-residual:start -->", "<!-- niti-residual:end -->"


def main(argv: list[str] | None = None) -> int:
    import torch

    from accelsim.frontend.training import TrainConfig, load_digits_data, train
    from accelsim.frontend.training.loop import Method
    from accelsim.frontend.training import niti

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args(argv)
    data = load_digits_data(seed=args.seed)
    rows = []
    t0 = time.perf_counter()
    net, method = niti.IntNet("resnet", seed=args.seed), niti.NITI()
    res = train(net, data, method, TrainConfig(epochs=args.epochs, seed=args.seed, progress=False))
    rows.append(("niti int8", res.test_accuracy, time.perf_counter() - t0))
    t0 = time.perf_counter()
    tw = train(niti.float_twin("resnet", seed=args.seed), data, Method(),
               TrainConfig(epochs=args.epochs, lr=0.05, seed=args.seed, progress=False))
    rows.append(("float twin (same layers)", tw.test_accuracy, time.perf_counter() - t0))
    n_params = sum(m.weight.numel() for m in net.modules() if isinstance(m, (niti.IntConv2d, niti.IntLinear)))
    header = (f"Produced by `python examples/niti_residual.py --epochs {args.epochs} --seed {args.seed}` "
              f"(torch {torch.__version__}, 2 shared cores; {n_params:,} weights, 450 test images):")
    lines = ["| method | model | accuracy | train time (s) |", "|---|---|---|---|"]
    lines += [f"| {name} | int-resnet | {acc:.4f} | {sec:.1f} |" for name, acc, sec in rows]
    text = "\n".join(lines)
    print(header)
    print(text)
    if args.write_docs:
        doc = DOCS.read_text(encoding="utf-8")
        pre, rest = doc.split(START, 1)
        _, post = rest.split(END, 1)
        DOCS.write_text(pre + START + "\n" + header + "\n\n" + text + "\n" + END + post, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
