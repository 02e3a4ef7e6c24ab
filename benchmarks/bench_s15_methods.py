"""Per-step overhead of reweighted group Lasso (BLK-REW) and NRMF over plain training (issue 15).

    python benchmarks/bench_s15_methods.py [--blocks 7] [--steps 30] [--batch 64] [--threads 1]

For every method phase x network (digits CNN, LSTM, transformer) the same random mini-batches run
through ``method.train_step`` (forward, loss, backward, optimiser step and the method's per-step
hooks: the block penalty and reweighting; NRMF's SVT proximal steps or rank projections) and through
plain training of the same network with the same optimiser. Blocks of ``--steps`` steps alternate;
the figure is the minimum over ``--blocks`` of the CPU time per step (``time.process_time``) and
the ratio is method / plain. NRMF's per-epoch rank decision (one SVD per unfolding) is timed
separately.
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
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from accelsim.frontend.training.loop import Method, TrainConfig, _build_optimizer
    from accelsim.frontend.training.models import build_model
    from accelsim.frontend.training.nrmf import NRMF, NRMFConfig
    from accelsim.frontend.training.reweighted import ReweightedGroupLasso, ReweightedGroupLassoConfig

    setups = {"cnn": ("sgd", 0.05, ["conv1", "fc"], ["conv1"]), "lstm": ("adam", 1e-2, ["fc"], ["fc"]),
              "transformer": ("adam", 3e-3, ["embed", "head"], ["embed", "head"])}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)

    def per_step(kind: str, make: Callable[[], Method], epoch: int, cfg: TrainConfig) -> float:
        model = build_model(kind, seed=0)
        method = make()
        method.setup(model, cfg)
        method.on_epoch_start(model, epoch)
        opt = _build_optimizer(method, model, cfg)
        for _ in range(3):
            method.train_step(model, x, y, opt)
        t0 = time.process_time()
        for _ in range(args.steps):
            method.train_step(model, x, y, opt)
        return (time.process_time() - t0) / args.steps

    rows: list[tuple[str, str, float, float]] = []
    for kind, (opt, lr, skip_blk, skip_nrmf) in setups.items():
        cfg = TrainConfig(optimizer=opt, lr=lr, progress=False)
        cases: list[tuple[str, Callable[[], Method], int]] = [
            ("blk-rew penalty (reweight every 10)",
             lambda: ReweightedGroupLasso(ReweightedGroupLassoConfig(lam=1e-3, skip=skip_blk)), 0),
            ("blk-rew masked retraining",
             lambda: ReweightedGroupLasso(ReweightedGroupLassoConfig(lam=1e-3, penalty_epochs=1, skip=skip_blk)), 1),
            ("nrmf SVT steps", lambda: NRMF(NRMFConfig(lam=1e-2, skip=skip_nrmf)), 0),
            ("nrmf rank-projected fine-tuning", lambda: NRMF(NRMFConfig(lam=1e-2, reg_epochs=1, skip=skip_nrmf)), 1),
        ]
        for name, make, epoch in cases:
            plain, meth = [], []
            for _ in range(args.blocks):
                plain.append(per_step(kind, Method, 0, cfg))
                meth.append(per_step(kind, make, epoch, cfg))
            rows.append((name, kind, min(plain) * 1e3, min(meth) * 1e3))
            print(f"{kind:12s} {name:36s} plain {rows[-1][2]:.3f} ms  method {rows[-1][3]:.3f} ms  "
                  f"ratio {rows[-1][3] / rows[-1][2]:.2f}", flush=True)
        model = build_model(kind, seed=0)
        m = NRMF(NRMFConfig(skip=skip_nrmf))
        m.setup(model, cfg)
        t0 = time.process_time()
        for _ in range(5):
            m.decide()
        print(f"{kind:12s} nrmf rank decision: {(time.process_time() - t0) / 5 * 1e3:.2f} ms per epoch")
    print("\n| method | net | plain ms/step | method ms/step | ratio |\n|---|---|---|---|---|")
    for name, kind, p, q in rows:
        print(f"| {name} | {kind} | {p:.3f} | {q:.3f} | {q / p:.2f} |")


if __name__ == "__main__":
    main()
