"""Per-step overhead of each training-time method over plain training (issue #4).

    python benchmarks/bench_training.py [--blocks 7] [--steps 40] [--batch 64] [--threads 1]

For every method x network (digits CNN and MLP) the same random mini-batches (batch 64, the
training batch size) are run through ``method.train_step`` — forward, loss, backward, optimiser
step and the method's per-step hooks — and through plain training of the same network with the
same optimiser. Blocks of ``--steps`` steps alternate between the two; the figure is the
minimum over ``--blocks`` blocks of the CPU time per step (``time.process_time``, robust to other
processes sharing the machine), and the ratio is method / plain. Per-epoch work (ADMM Z/U
updates, Early-Bird mask distance, evaluation) is not a per-step cost and is reported separately.
The NITI row compares integer training with float training of the same layers (no biases).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument("--write-docs", action="store_true", help="refresh the table in docs/training.md")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from accelsim.frontend.recipe import QuantSpec, UnstructuredPrune
    from accelsim.frontend.training import admm, crossbar, djpq, dst, earlybird, niti
    from accelsim.frontend.training.data import load_digits_data
    from accelsim.frontend.training.loop import Method, TrainConfig, _build_optimizer
    from accelsim.frontend.training.models import build_model

    data = load_digits_data(0)
    ex = data.x_test[:1]

    class Runner:
        def __init__(self, model: Any, method: Any, cfg: Any, epoch: int = 0, prep: Callable[..., None] | None = None):
            self.model, self.method = model, method
            method.setup(model, cfg)
            if prep is not None:
                prep(model, method)
            method.on_epoch_start(model, epoch)
            self.opt = _build_optimizer(method, model, cfg)
            g = torch.Generator().manual_seed(1)
            self.batches = [torch.randint(0, len(data.y_train), (args.batch,), generator=g) for _ in range(args.steps)]
            self.block()  # warm-up (numba compilation, allocator)

        def block(self) -> float:
            t = time.process_time()
            for i in self.batches:
                self.method.train_step(self.model, data.x_train[i], data.y_train[i], self.opt, data.x_train_int[i])
            return (time.process_time() - t) / len(self.batches) * 1e3

    sgd = TrainConfig(lr=0.05)
    adam = TrainConfig(optimizer="adam", lr=1e-3)

    def eb_ticket(model: Any, method: Any) -> None:
        method._draw(model)
        method.pruned_at = 0

    cases: list[tuple[str, str, Callable[[], Runner], Callable[[], Runner]]] = []
    for kind in ("cnn", "mlp"):
        cases += [
            ("admm (ADMM epochs, unstructured)", kind,
             lambda k=kind: Runner(build_model(k), Method(), sgd),
             lambda k=kind: Runner(build_model(k), admm.ADMM(admm.ADMMConfig(
                 prune=UnstructuredPrune(density=0.1), quant=QuantSpec(weight_bits=4))), sgd, 0)),
            ("admm (masked quantised retraining)", kind,
             lambda k=kind: Runner(build_model(k), Method(), sgd),
             lambda k=kind: Runner(build_model(k), admm.ADMM(admm.ADMMConfig(
                 prune=UnstructuredPrune(density=0.1), quant=QuantSpec(weight_bits=4))), sgd, 10_000)),
            ("admm crossbar (ADMM epochs)", kind,
             lambda k=kind: Runner(build_model(k), Method(), sgd),
             lambda k=kind: Runner(build_model(k), admm.ADMM(admm.ADMMConfig(
                 prune=crossbar.CrossbarBlockPrune(0.5, 16, 16), quant=crossbar.ConductanceQuant(16))), sgd, 0)),
            ("dst", kind,
             lambda k=kind: Runner(build_model(k), Method(), adam),
             lambda k=kind: Runner(build_model(k), dst.DST(alpha=2e-2), adam)),
            ("earlybird (search, BN L1)", kind,
             lambda k=kind: Runner(build_model(k, bn=True), Method(), sgd),
             lambda k=kind: Runner(build_model(k, bn=True), earlybird.EarlyBird(), sgd)),
            ("earlybird (ticket training)", kind,
             lambda k=kind: Runner(build_model(k, bn=True), Method(), sgd),
             lambda k=kind: Runner(build_model(k, bn=True), earlybird.EarlyBird(), sgd, 0, eb_ticket)),
            ("djpq", kind,
             lambda k=kind: Runner(build_model(k), Method(), adam),
             lambda k=kind: Runner(build_model(k), djpq.DJPQ(ex), adam)),
            ("two-stage baseline (fixed-bit QAT)", kind,
             lambda k=kind: Runner(build_model(k), Method(), sgd),
             lambda k=kind: Runner(build_model(k), djpq.FixedQAT(
                 {n: (4, 8) for n in ("conv1", "conv2", "fc", "fc1", "fc2", "fc3")}, {}), sgd)),
            ("niti (int8) vs float twin", kind,
             lambda k=kind: Runner(niti.float_twin(k), Method(), sgd),
             lambda k=kind: Runner(niti.IntNet(k), niti.NITI(), sgd)),
        ]

    print(f"per-step CPU time, batch {args.batch}, torch threads {args.threads}, min over {args.blocks} blocks "
          f"of {args.steps} steps")
    print(f"{'method':38s} {'net':4s} {'plain ms':>9s} {'method ms':>10s} {'ratio':>6s}")
    worst = 0.0
    md = ["| method | net | plain ms/step | method ms/step | ratio |", "|---|---|---|---|---|"]
    for name, kind, mk_plain, mk_method in cases:
        if args.only and args.only not in name:
            continue
        plain, meth = mk_plain(), mk_method()
        tp, tm = [], []
        for _ in range(args.blocks):
            tp.append(plain.block())
            tm.append(meth.block())
        ratio = min(tm) / min(tp)
        worst = max(worst, ratio)
        print(f"{name:38s} {kind:4s} {min(tp):9.3f} {min(tm):10.3f} {ratio:6.2f}")
        md.append(f"| {name} | {kind} | {min(tp):.3f} | {min(tm):.3f} | {ratio:.2f} |")
    print(f"largest ratio: {worst:.2f}")

    # per-epoch work (not per step)
    m = build_model("cnn")
    a = admm.ADMM(admm.ADMMConfig(prune=UnstructuredPrune(density=0.1), quant=QuantSpec(weight_bits=4)))
    a.setup(m, sgd)
    a.on_epoch_start(m, 0)
    t = time.process_time()
    a.on_epoch_end(m, 0, {})
    z_ms = (time.process_time() - t) * 1e3
    mb = build_model("cnn", bn=True)
    eb = earlybird.EarlyBird()
    eb.setup(mb, sgd)
    t = time.process_time()
    for e in range(5):
        eb.on_epoch_end(mb, e, {})
    d_ms = (time.process_time() - t) * 1e3 / 5
    print(f"per epoch: ADMM Z/U update (cnn) {z_ms:.2f} ms; Early-Bird mask + distances (cnn) {d_ms:.2f} ms")
    if args.write_docs:
        _write_docs("\n".join(md) + f"\n\nLargest ratio {worst:.2f}.", args)


def _write_docs(table: str, args: argparse.Namespace) -> None:
    import re

    from accelsim._validation import atomic_write_text

    root = Path(__file__).resolve().parent.parent
    doc_path = root / "docs" / "training.md"
    start, end = "<!-- training-bench:start -->", "<!-- training-bench:end -->"
    doc = doc_path.read_text(encoding="utf-8")
    cmd = (f"`python benchmarks/bench_training.py --blocks {args.blocks} --steps {args.steps} --batch {args.batch} "
           f"--threads {args.threads}` on {time.strftime('%Y-%m-%d')}")
    block = f"{start}\nProduced by {cmd}:\n\n{table}\n{end}"
    doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    atomic_write_text(doc_path, doc)
    print(f"updated {doc_path}")


if __name__ == "__main__":
    main()
