"""DFS (per-input bit widths) vs static mixed precision vs layer skipping on a digits ResNet.

Rerun (seeded, CPU; a few minutes on 2 cores)::

    python examples/dfs.py                  # prints the table
    python examples/dfs.py --write-docs     # also refreshes docs/training.md

A residual network (``DigitsResNet(widths=(16, 32), blocks=(2, 2))``: stem conv, four basic blocks,
pool, fc) is trained in float (``--pretrain`` epochs); copies are then trained for ``--epochs``
with :class:`~accelsim.frontend.training.DFS` gates on the four blocks, at each BOPs budget of
``--budgets`` (fraction of the all-full-precision BOPs of the gated convs):

- ``dfs``: per-input gate, widths {0 (skip), 4, 8, 32};
- ``static mixed``: the same widths, one learned choice per block for all inputs;
- ``layer skip``: per-input gate, widths {0, 32} (skip or full precision).

Columns: test accuracy; mean BOPs ratio over the test set (hard choices); the per-block choice
distribution; simulated expected / p50 / p95 latency per input over the test set
(:func:`~accelsim.frontend.training.simulate_dfs`) on a 32x32 OS systolic array with bit-serial PEs
(``systolic_32x32_os_sparse.yaml`` with only ``bit_serial`` on: a ``b``-bit layer streams
``b / 8`` of the int8 time) and on the dense int8 ``systolic_32x32_is.yaml`` (no gain below 8 bits
except smaller weight traffic; full precision priced as 16-bit); the expected energy on the
bit-serial array; the training wall time (optimisation steps).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from _progress import write_docs_block  # noqa: E402  (examples/_progress.py)

DOCS = ROOT / "docs" / "training.md"
MARKER = "dfs-table"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--budgets", default="0.3,0.04")
    ap.add_argument("--bops-weight", type=float, default=5.0)
    ap.add_argument("--out", default=str(ROOT / "out" / "dfs"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import accelsim
    from accelsim.frontend.training.data import load_digits_data
    from accelsim.frontend.training.dfs import DFS, DFSConfig
    from accelsim.frontend.training.dfs_sim import simulate_dfs
    from accelsim.frontend.training.loop import Method, TrainConfig, train
    from accelsim.frontend.training.models import DigitsResNet
    from accelsim.hardware.io import load_hardware

    hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
    bit_serial = hw.model_copy(update={"name": "systolic-32x32-os-bitserial", "sparse": hw.sparse.model_copy(update={
        "zero_skipping": False, "nm_speedup": False, "block_skipping": False, "bit_serial": True})})
    dense = load_hardware(ROOT / "hw_configs" / "systolic_32x32_is.yaml")
    data = load_digits_data(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tc = dict(optimizer="adam", lr=3e-3, seed=args.seed, progress=False, batch_size=64)
    t_all = time.perf_counter()
    torch.manual_seed(args.seed)
    base = train(DigitsResNet(widths=(16, 32), blocks=(2, 2)), data, Method(),
                 TrainConfig(epochs=args.pretrain, checkpoint=out / "float.pt", **tc))
    print(f"float {base.test_accuracy:.4f} ({base.train_time_s:.1f} s)", flush=True)
    variants = {"dfs": dict(bits=(0, 4, 8, 32)), "static mixed": dict(bits=(0, 4, 8, 32), input_dependent=False),
                "layer skip": dict(bits=(0, 32))}
    lines = ["| budget | variant | accuracy | mean BOPs ratio | choices per block (share of inputs) | "
             "bit-serial E[lat] / p50 / p95 (us) | int8 array E[lat] / p50 / p95 (us) | bit-serial E[energy] (uJ) | "
             "train time (s) |", "|---|---|---|---|---|---|---|---|---|"]
    notes: set[str] = set()
    ref_bs: dict[int, float] = {}
    for budget in (float(b) for b in args.budgets.split(",")):
        for name, kw in variants.items():
            m = DFS(DFSConfig(budget=budget, bops_weight=args.bops_weight, **kw))
            res = train(copy.deepcopy(base.model), data, m, TrainConfig(epochs=args.epochs, **tc))
            ratio = m.mean_bops_ratio(res.model, data.x_test)
            dist = m.bit_distribution(res.model, data.x_test)
            desc = "; ".join(f"{blk}: " + ", ".join(f"{b}b {p:.2f}" for b, p in d.items() if p > 0)
                             for blk, d in dist.items())
            s_bs = simulate_dfs(res.model, m, data.x_test,
                                lambda wl: accelsim.simulate(wl, bit_serial, compare_dense=False))
            s_d = simulate_dfs(res.model, m, data.x_test, lambda wl: accelsim.simulate(wl, dense, compare_dense=False))
            notes.update(s_bs.notes + s_d.notes)
            if name == "dfs":
                ref_bs = s_bs.by_bits_latency_us
            a, b = s_bs.summary(), s_d.summary()
            lines.append(f"| {budget:g} | {name} | {res.test_accuracy:.4f} | {ratio:.4f} | {desc} | "
                         f"{a['expected_latency_us']:.2f} / {a['p50_latency_us']:.2f} / {a['p95_latency_us']:.2f} | "
                         f"{b['expected_latency_us']:.2f} / {b['p50_latency_us']:.2f} / {b['p95_latency_us']:.2f} | "
                         f"{a['expected_energy_uj']:.3f} | {res.train_time_s:.1f} |")
            print(lines[-1], flush=True)
    wall = time.perf_counter() - t_all
    text = (f"Float network: accuracy {base.test_accuracy:.4f}. Whole network with every block at one width, "
            f"bit-serial array: " + ", ".join(f"{b} bits {v:.2f} us" for b, v in sorted(ref_bs.items())) + ".\n\n"
            + "\n".join(lines) + "\n\nSimulator notes:\n\n" + "\n".join(f"- {n}" for n in sorted(notes)) +
            f"\n\nWhole script wall time: {wall:.0f} s.\n")
    print(text)
    if args.write_docs:
        cmd = "`python " + " ".join(["examples/dfs.py"] + [a for a in (argv if argv is not None else sys.argv[1:])
                                                           if a != "--write-docs"]) + "`"
        write_docs_block(DOCS, MARKER, text, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
