"""DFS (per-input bit widths) vs static mixed precision vs layer skipping at equal average BOPs.

Rerun (seeded, CPU, about two minutes on 2 cores)::

    python examples/dfs.py                  # prints the tables (progress on stderr)
    python examples/dfs.py --write-docs     # also refreshes docs/training.md

A residual network (``DigitsResNet(widths=(16, 32), blocks=(2, 2))``: stem conv, four basic blocks,
pool, fc) is trained in float (``--pretrain`` epochs); copies are then trained for ``--epochs`` with
:class:`~accelsim.frontend.training.DFS` gates on the four blocks, for each BOPs target of
``--targets`` (fraction of the all-full-precision BOPs of the gated convs):

- ``dfs``: per-input gate on the standardised pooled block input, widths {0 (skip), 4, 8, 32};
- ``dfs, raw gate input``: the same without standardising the gate's features (the first version);
- ``static mixed``: the same widths, one learned choice per block for all inputs;
- ``layer skip``: per-input gate, widths {0, 32} (skip or full precision).

Each is trained with ``budget = target`` and then calibrated (:meth:`DFS.calibrate`, one logit shift
for all gates, on the training set) to the target, so the variants are compared at (nearly) equal
average BOPs; the test set gives the accuracy and the realised BOPs ratio. The network is exported
with the measured per-input widths (:meth:`DFS.export`, traces included) and simulated with
:func:`accelsim.simulate` (the path ``accelsim simulate --workload dfs.yaml`` takes): expected / p50 /
p95 latency per input on a 32x32 OS systolic array with bit-serial PEs (``systolic_32x32_os_sparse.yaml``
with only ``bit_serial`` on), on the dense int8 ``systolic_32x32_is.yaml`` and on the ``zcu104.yaml``
FPGA with its datapath widened to 16 bits and half the output lanes to fit the device (its DSP
packing is fixed by the hardware's own widths; 16-bit operands are needed for the full-precision class). A second table repeats the mechanism on a
constructed data set where half the inputs are blank images (label 0): a per-input gate can skip
exactly those.
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
from _progress import Progress, write_docs_block  # noqa: E402  (examples/_progress.py)

DOCS = ROOT / "docs" / "training.md"
MARKER = "dfs-table"


def _accuracy(model, x, y) -> float:  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _with_blanks(d):  # type: ignore[no-untyped-def]
    """The digits split with as many blank images (label 0) appended to train and test."""
    import torch

    from accelsim.frontend.training.data import DigitsData

    def mix(x, y):  # type: ignore[no-untyped-def]
        return torch.cat([x, torch.zeros_like(x)]), torch.cat([y, torch.zeros_like(y)])

    xtr, ytr = mix(d.x_train, d.y_train)
    xte, yte = mix(d.x_test, d.y_test)
    return DigitsData(xtr, ytr, xte, yte, mix(d.x_train_int, d.y_train)[0], mix(d.x_test_int, d.y_test)[0], d.seed)


def _fpga16(hw):  # type: ignore[no-untyped-def]
    """zcu104 with 16-bit operands (one MAC per DSP) and half the output lanes, so it fits the device."""
    return type(hw).model_validate({**hw.model_dump(), "weight_bits": 16, "act_bits": 16, "pe_out": hw.pe_out // 2,
                                    "name": "zcu104-16bit"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--targets", default="0.15,0.05", help="average BOPs targets (fraction of all-32-bit)")
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
    from accelsim.frontend.training.loop import Method, TrainConfig, train
    from accelsim.frontend.training.models import DigitsResNet
    from accelsim.hardware.io import load_hardware
    from accelsim.workload.io import save_workload

    hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
    hws = {"bit-serial": hw.model_copy(update={"name": "systolic-32x32-os-bitserial", "sparse": hw.sparse.model_copy(
        update={"zero_skipping": False, "nm_speedup": False, "block_skipping": False, "bit_serial": True})}),
        "int8 array": load_hardware(ROOT / "hw_configs" / "systolic_32x32_is.yaml"),
        "FPGA 16-bit": _fpga16(load_hardware(ROOT / "hw_configs" / "zcu104.yaml"))}
    targets = [float(t) for t in args.targets.split(",")]
    variants = {"dfs": dict(bits=(0, 4, 8, 32)), "dfs, raw gate input": dict(bits=(0, 4, 8, 32), normalize_gate_input=False),
                "static mixed": dict(bits=(0, 4, 8, 32), input_dependent=False), "layer skip": dict(bits=(0, 32))}
    progress = Progress(total=1 + len(targets) * len(variants) + 1 + 3)
    data = load_digits_data(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tc = dict(optimizer="adam", lr=3e-3, seed=args.seed, progress=False, batch_size=64)
    t_all = time.perf_counter()
    torch.manual_seed(args.seed)
    base = train(DigitsResNet(widths=(16, 32), blocks=(2, 2)), data, Method(),
                 TrainConfig(epochs=args.pretrain, checkpoint=out / "float.pt", **tc))
    progress.step(f"float network: accuracy {base.test_accuracy:.4f} ({base.train_time_s:.1f} s)")
    head = ("| target BOPs | variant | accuracy | test BOPs ratio | choices per block (share of test inputs) | "
            "distinct per-input width patterns | " + " | ".join(f"{h} E[lat] / p50 / p95 (us)" for h in hws) +
            " | bit-serial E[energy] / p95 (uJ) | train + calibrate time (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    notes: dict[str, set[str]] = {h: set() for h in hws}
    by_bits: dict[str, dict[int, float]] = {}
    indep: list[str] = []
    saved = None
    for target in targets:
        for name, kw in variants.items():
            m = DFS(DFSConfig(budget=target, bops_weight=args.bops_weight, **kw))
            t0 = time.perf_counter()
            res = train(copy.deepcopy(base.model), data, m, TrainConfig(epochs=args.epochs, **tc))
            m.calibrate(res.model, data.x_train, target)
            dt = time.perf_counter() - t0
            acc = _accuracy(res.model, data.x_test, data.y_test)
            ratio = m.mean_bops_ratio(res.model, data.x_test)
            ch = m.choices(res.model, data.x_test)
            patterns = len({tuple(int(c[i]) for c in ch.values()) for i in range(len(data.x_test))})
            dist = m.bit_distribution(res.model, data.x_test)
            desc = "; ".join(f"{blk}: " + ", ".join(f"{b}b {p:.2f}" for b, p in d.items() if p > 0)
                             for blk, d in dist.items())
            wl = m.export(res.model, data.x_test, name=f"dfs_{name.replace(' ', '_').replace(',', '')}_{target:g}")
            cells = []
            bs_energy = ""
            for h, hwc in hws.items():
                s = accelsim.simulate(wl, hwc, compare_dense=False).summary()
                rep_notes = s["dynamic_notes"]
                notes[h].update(n for n in rep_notes if "exploit" in n)
                cells.append(f"{s['expected_latency_ms'] * 1e3:.2f} / {s['p50_latency_ms'] * 1e3:.2f} / "
                              f"{s['p95_latency_ms'] * 1e3:.2f}")
                if h == "bit-serial":
                    bs_energy = f"{s['expected_energy_uj']:.3f} / {s['p95_energy_uj']:.3f}"
                    if name == "dfs":
                        by_bits = {h: {b: v * 1e3 for b, v in s["latency_ms_by_bits"].items()}}
                        untraced = wl.with_layers([layer.model_copy(update={"compression": layer.compression.model_copy(
                            update={"dynamic_precision": layer.compression.dynamic_precision.model_copy(
                                update={"trace": None})})}) if layer.compression.dynamic_precision else layer
                            for layer in wl.layers])
                        si = accelsim.simulate(untraced, hwc, compare_dense=False).summary()
                        indep.append(f"target {target:g}: exact p50 / p95 {s['p50_latency_ms'] * 1e3:.2f} / "
                                     f"{s['p95_latency_ms'] * 1e3:.2f} us, assuming independent gates "
                                     f"{si['p50_latency_ms'] * 1e3:.2f} / {si['p95_latency_ms'] * 1e3:.2f} us")
            if name == "dfs" and saved is None:
                saved = out / "dfs.yaml"
                save_workload(wl, saved)
            lines.append(f"| {target:g} | {name} | {acc:.4f} | {ratio:.4f} | {desc} | {patterns} | " + " | ".join(cells) +
                         f" | {bs_energy} | {dt:.1f} |")
            progress.step(lines[-1])
    # the constructed case: half the inputs are blank
    blanks = _with_blanks(data)
    torch.manual_seed(args.seed)
    base_b = train(DigitsResNet(widths=(16, 32), blocks=(2, 2)), blanks, Method(), TrainConfig(epochs=args.pretrain, **tc))
    progress.step(f"float network on digits + blanks: accuracy {base_b.test_accuracy:.4f}")
    n = len(data.x_test)
    blines = ["| variant | accuracy | test BOPs ratio | blank inputs skipped (per block) | digit inputs skipped (per block) |",
              "|---|---|---|---|---|"]
    for name, kw in {"dfs, skip or full": dict(bits=(0, 32)),
                     "dfs, skip or full, raw gate input": dict(bits=(0, 32), normalize_gate_input=False),
                     "static, skip or full": dict(bits=(0, 32), input_dependent=False)}.items():
        m = DFS(DFSConfig(budget=0.5, bops_weight=args.bops_weight, **kw))
        res = train(copy.deepcopy(base_b.model), blanks, m, TrainConfig(epochs=args.epochs, **tc))
        m.calibrate(res.model, blanks.x_train, 0.5)
        ch = m.choices(res.model, blanks.x_test)
        blines.append(f"| {name} | {_accuracy(res.model, blanks.x_test, blanks.y_test):.4f} | "
                      f"{m.mean_bops_ratio(res.model, blanks.x_test):.4f} | "
                      + ", ".join(f"{float((c[n:] == 0).float().mean()):.2f}" for c in ch.values()) + " | "
                      + ", ".join(f"{float((c[:n] == 0).float().mean()):.2f}" for c in ch.values()) + " |")
        progress.step(blines[-1])
    wall = time.perf_counter() - t_all
    text = (f"Float network: accuracy {base.test_accuracy:.4f}. Whole network with every block at one width, "
            "bit-serial array: " + ", ".join(f"{'skipped' if b == 0 else f'{b} bits'} {v:.2f} us"
                                             for b, v in sorted(by_bits.get("bit-serial", {}).items())) +
            " (full precision priced as 16-bit integers).\n\n" + "\n".join(lines) +
            "\n\nSpread of the `dfs` rows on the bit-serial array, exact (per-input traces) vs assuming the gates "
            "choose independently:\n\n" + "\n".join(f"- {x}" for x in indep) +
            "\n\nSimulator notes (where the hardware cannot exploit the narrower widths):\n\n" +
            "\n".join(f"- {x}" for h in hws for x in sorted(notes[h])) +
            f"\n\nConstructed case: the digits split plus as many blank images (label 0); float network "
            f"{base_b.test_accuracy:.4f}; budget and calibration target 0.5; test shares of skipped inputs per block "
            f"(layer1.0, layer1.1, layer2.0, layer2.1):\n\n" + "\n".join(blines) +
            f"\n\nWhole script wall time: {wall:.0f} s. Exported `dfs` workload (first target): "
            f"`accelsim simulate --workload {saved.relative_to(ROOT) if saved and saved.is_relative_to(ROOT) else saved} "
            "--hw hw_configs/systolic_32x32_is.yaml`.\n")
    print(text)
    if args.write_docs:
        cmd = "`python " + " ".join(["examples/dfs.py"] + [a for a in (argv if argv is not None else sys.argv[1:])
                                                           if a != "--write-docs"]) + "`"
        write_docs_block(DOCS, MARKER, text, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
