"""Compress a small CNN trained on scikit-learn's digits and report accuracy vs BOPs / size.

Rerun (seeded, CPU, about a minute on 2 cores)::

    python examples/digits_compression.py                # prints the table
    python examples/digits_compression.py --write-docs   # also refreshes the table in docs/frontend.md

Data: ``sklearn.datasets.load_digits`` (1,797 8x8 grey images of 10 digits, shipped with
scikit-learn: no download), pixels scaled to [0, 1], a stratified 75/25 train/test split
(``random_state = seed``). Model: :class:`accelsim.frontend.models.TinyCNN` (conv 1->16, conv
16->32, max-pool, linear 512->10; the ``tiny_cnn`` zoo workload). Training: Adam, lr 3e-3, batch
64, ``--epochs`` epochs. Every recipe is applied one-shot to the trained model, evaluated, then
fine-tuned for ``--finetune-epochs`` epochs with the masks and quantisers in place (straight-
through estimator) and evaluated again. Size and BOPs come from the exported workload
(:mod:`accelsim.frontend.metrics`: size = non-zeros x weight bits (SmartExchange: Ce + basis),
BOPs = effective MACs x weight bits x activation bits; index metadata is listed separately).
The dense float row counts 32-bit weights and activations.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "examples"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _progress import Progress  # noqa: E402  (examples/_progress.py: a line per step on stderr)

DOCS = ROOT / "docs" / "frontend.md"
START, END = "<!-- digits-table:start -->", "<!-- digits-table:end -->"
MP_START, MP_END = "<!-- digits-mp-bits:start -->", "<!-- digits-mp-bits:end -->"

# name -> recipe (dict form of a recipes/*.yaml file)
VARIANTS: dict[str, dict[str, Any]] = {
    "dense int8": {"quantize": {"weight_bits": 8, "act_bits": 8}},
    "unstructured 20%": {"prune": {"kind": "unstructured", "density": 0.2}, "quantize": {"weight_bits": 8}},
    "pattern 4/9, 80% kernels": {"prune": {"kind": "pattern", "num_patterns": 8, "kernel_density": 0.8},
                                 "quantize": {"weight_bits": 8}},
    "block 4x4, 30%": {"prune": {"kind": "block", "density": 0.3, "block": [4, 4]}, "quantize": {"weight_bits": 8}},
    "2:4 (N:M)": {"prune": {"kind": "nm", "n": 2, "m": 4}, "quantize": {"weight_bits": 8}},
    "GS 25%, 8-row groups": {"prune": {"kind": "gs", "density": 0.25, "group_rows": 8}, "quantize": {"weight_bits": 8}},
    "filter 50% (convs)": {"types": ["conv2d"], "prune": {"kind": "filter", "density": 0.5},
                           "quantize": {"weight_bits": 8}},
    "int4 per-channel": {"quantize": {"weight_bits": 4, "granularity": "channel"}},
    "pow2 4-bit": {"quantize": {"weight_bits": 4, "scheme": "pow2", "granularity": "channel"}},
    "ternary": {"quantize": {"weight_bits": 2, "scheme": "ternary"}},
    # measured sensitivity (calibration-loss increase per layer and bit-width, ptq.loss_sensitivity)
    # + the exact allocation; 25 % of the 8-bit BOPs would only admit all-2-bit
    "mixed precision {2,4,8}, 35% BOPs": {"mixed_precision": {"candidates": [2, 4, 8], "budget": "bops",
                                                              "budget_fraction": 0.35, "method": "optimal"},
                                          "_sensitivity": "loss"},
    "mixed precision {2,4,8}, 50% BOPs": {"mixed_precision": {"candidates": [2, 4, 8], "budget": "bops",
                                                              "budget_fraction": 0.5, "method": "optimal"},
                                          "_sensitivity": "loss"},
    "low-rank (energy 0.8)": {"factorize": {"rank_rule": "energy", "energy": 0.8}, "quantize": {"weight_bits": 8}},
    "SmartExchange Ce 30%, 4-bit": {"types": ["conv2d"], "smartexchange": {"ce_density": 0.3, "ce_bits": 4}},
    "pattern + int4": {"prune": {"kind": "pattern", "num_patterns": 8, "kernel_density": 0.8},
                       "quantize": {"weight_bits": 4, "granularity": "channel"}},
}


def load_data(seed: int) -> tuple[Any, Any, Any, Any]:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)
    return torch.tensor(xtr), torch.tensor(ytr), torch.tensor(xte), torch.tensor(yte)


def train(model: Any, xtr: Any, ytr: Any, epochs: int, seed: int, lr: float = 3e-3, max_steps: int | None = None) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    steps = 0
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                model.eval()
                return
    model.eval()


def accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run(seed: int = 0, epochs: int = 30, finetune_epochs: int = 5, variants: list[str] | None = None,
        max_steps: int | None = None) -> list[dict[str, Any]]:
    """Train, compress with every variant, fine-tune; one result row per variant."""
    import torch

    from accelsim.frontend import compress, export, ptq
    from accelsim.frontend.metrics import totals
    from accelsim.frontend.models import TinyCNN

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    chosen = [n for n in VARIANTS if variants is None or n in variants]
    progress = Progress(total=2 + len(chosen))
    xtr, ytr, xte, yte = load_data(seed)
    progress.step(f"digits loaded: {len(xtr)} train / {len(xte)} test images")
    model = TinyCNN()
    train(model, xtr, ytr, epochs, seed, max_steps=max_steps)
    example = xte[:1]
    dense_wl = export(model, example, name="tiny_cnn")
    t = totals(dense_wl)
    acc0 = accuracy(model, xte, yte)
    rows = [{"variant": "dense fp32", "acc_oneshot": acc0, "acc_finetuned": acc0, "size_kb": t["params"] * 32 / 8192,
             "meta_kb": 0.0, "macs": t["macs"], "bops": t["macs"] * 32 * 32, "seconds": 0.0}]
    sens = None
    progress.step(f"dense model trained ({epochs} epochs): test accuracy {acc0:.3f}")
    for name in chosen:
        recipe = VARIANTS[name]
        t0 = time.perf_counter()
        recipe = dict(recipe)
        if recipe.pop("_sensitivity", None) == "loss" and sens is None:  # 8 training batches of 64
            sens = ptq.loss_sensitivity(model, [(xtr[i:i + 64], ytr[i:i + 64]) for i in range(0, 512, 64)],
                                        granularity="tensor")
        cm = compress(model, {"name": re.sub(r"\W+", "_", name).strip("_"), "seed": seed, **recipe}, example_input=example,
                      sensitivity=sens if "mixed_precision" in recipe else None)
        bits = {n: u.quant.weight_bits for n, u in cm.units.items() if u.quant is not None}
        one = accuracy(cm.model, xte, yte)
        train(cm.model, xtr, ytr, finetune_epochs, seed + 1, lr=1e-3, max_steps=max_steps)
        cm.reproject()
        tuned = accuracy(cm.model, xte, yte)
        wl = export(cm, example, name=f"tiny_cnn_{name}")
        m = totals(wl)
        rows.append({"variant": name, "acc_oneshot": one, "acc_finetuned": tuned, "size_kb": m["size_bits"] / 8192,
                     "meta_kb": m["meta_bits"] / 8192, "macs": m["macs_eff"], "bops": m["bops"],
                     "seconds": time.perf_counter() - t0, "bits": bits if "mixed_precision" in recipe else None,
                     "bops_fraction_8bit": m["bops"] / (t["macs"] * 8 * 8)})
        progress.step(f"{name}: one-shot {one:.3f}, fine-tuned {tuned:.3f} ({time.perf_counter() - t0:.1f} s)")
    return rows


def bits_table(rows: list[dict[str, Any]]) -> str:
    """Per-layer weight bits the mixed-precision rows chose (activations 8-bit)."""
    mp = [r for r in rows if r.get("bits")]
    if not mp:
        return ""
    layers = list(mp[0]["bits"])
    lines = ["| variant | " + " | ".join(f"{n} bits" for n in layers) + " | BOPs / 8-bit BOPs | test acc fine-tuned |",
             "|---|" + "---:|" * (len(layers) + 2)]
    for r in mp:
        lines.append(f"| {r['variant']} | " + " | ".join(str(r["bits"][n]) for n in layers) +
                     f" | {r['bops_fraction_8bit']:.3f} | {r['acc_finetuned']:.3f} |")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = ["| variant | test acc one-shot | test acc fine-tuned | weights (KB) | index (KB) | MACs | BOPs (M) | BOPs vs fp32 | size vs fp32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['acc_oneshot']:.3f} | {r['acc_finetuned']:.3f} | {r['size_kb']:.2f} | "
                     f"{r['meta_kb']:.2f} | {r['macs']:,} | {r['bops'] / 1e6:.1f} | {base['bops'] / r['bops']:.1f}x | "
                     f"{base['size_kb'] / r['size_kb']:.1f}x |")
    return "\n".join(lines)


def write_docs(text: str, header: str, start: str = START, end: str = END) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    if start not in doc or end not in doc:
        raise SystemExit(f"{DOCS} has no {start} ... {end} markers")
    pre, rest = doc.split(start, 1)
    _, post = rest.split(end, 1)
    DOCS.write_text(pre + start + "\n" + header + "\n\n" + text + "\n" + end + post, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--write-docs", action="store_true", help=f"replace the table in {DOCS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(args.seed, args.epochs, args.finetune_epochs)
    text = table(rows)
    import torch

    header = (f"`python examples/digits_compression.py --seed {args.seed} --epochs {args.epochs} "
              f"--finetune-epochs {args.finetune_epochs}` (torch {torch.__version__}, "
              f"{time.perf_counter() - t0:.0f} s on this machine); 450 test images.")
    print(header)
    print(text)
    bt = bits_table(rows)
    print(bt)
    if args.write_docs:
        write_docs(text, header)
        if bt:
            write_docs(bt, "Per-layer weight bits of the mixed-precision rows (same run):", MP_START, MP_END)
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
