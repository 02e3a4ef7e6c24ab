"""AutoGAN-Distiller-style search for a compact generator under a simulated-latency budget.

Rerun (seeded, CPU, a few minutes on 2 cores)::

    python examples/generator_search.py                # prints the table
    python examples/generator_search.py --write-docs   # also refreshes the table in docs/dse.md
    python examples/generator_search.py --budget-kind macs --write-docs   # the MAC-budget table

Task: 2x super-resolution of downsampled scikit-learn digits (:mod:`accelsim.frontend.imaging`).
A teacher generator (3 cells of ``--teacher-width`` 3x3 convs) is trained on the high-resolution
targets; under a budget of ``--budget`` x the teacher's simulated latency on ``--hw``
(:func:`accelsim.dse.distillation_search`):

- *hand-shrunk*: the widest uniform copy of the teacher that meets the budget, distilled;
- *searched*: evolutionary search over per-cell width, kernel (1/3/5) and op (conv, depthwise-
  separable, residual), candidates over budget rejected by simulation before training, each
  distilled for ``--proxy-epochs`` and ranked on a validation slice of the training pairs; the
  winner distilled as long as the hand-shrunk student.

Quality is PSNR/SSIM on the held-out 25 % of digits; latency is simulated.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from _common import ROOT, example_parser  # noqa: E402  (examples/ is on sys.path when run as a script)
from _progress import Progress, write_docs_block  # noqa: E402

DOCS = ROOT / "docs" / "dse.md"
MARKER = "generator-search"


def main() -> int:
    ap = example_parser(__doc__)
    ap.add_argument("--hw", default=str(ROOT / "hw_configs" / "systolic_32x32_os_256kb.yaml"))
    ap.add_argument("--budget", type=float, default=0.3, help="budget as a fraction of the teacher's latency (or MACs)")
    ap.add_argument("--budget-kind", choices=["latency", "macs"], default="latency")
    ap.add_argument("--teacher-width", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--population", type=int, default=10)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--proxy-epochs", type=int, default=20)
    ap.add_argument("--json", help="write the report (all candidates) as JSON")
    ap.add_argument("--save-workloads", metavar="DIR",
                    help="write teacher/hand_shrunk/searched workload YAMLs (list them in a sweep file's workloads)")
    args = ap.parse_args()

    from accelsim.dse import distillation_search
    from accelsim.dse.distill import simulated_latency_ms
    from accelsim.frontend.imaging import count_macs, gen_workload, uniform_spec
    from accelsim.hardware.io import load_hardware

    hw = load_hardware(args.hw)
    teacher_ms = simulated_latency_ms(hw)(gen_workload(uniform_spec(args.teacher_width)))
    teacher_macs = count_macs(uniform_spec(args.teacher_width))
    budget_ms = args.budget * teacher_ms if args.budget_kind == "latency" else None
    budget_macs = int(args.budget * teacher_macs) if args.budget_kind == "macs" else None
    progress = Progress()  # one line per trained network and distilled candidate (their number depends on the search)
    rep = distillation_search(hw, max_latency_ms=budget_ms, max_macs=budget_macs, teacher_width=args.teacher_width,
                              epochs=args.epochs,
                              population=args.population, generations=args.generations,
                              proxy_epochs=args.proxy_epochs, seed=args.seed, progress=progress.step)
    what = (f"simulated latency <= {budget_ms * 1e3:.2f} us ({args.budget:.0%} of the teacher's {teacher_ms * 1e3:.2f} us)"
            if budget_ms is not None else f"MACs <= {budget_macs:,} ({args.budget:.0%} of the teacher's {teacher_macs:,})")
    text = (f"Budget: {what} on {hw.name}; {rep.candidates} candidates distilled "
            f"({args.proxy_epochs} epochs each), {rep.rejected_over_budget} samples rejected over budget before training; "
            f"{rep.seconds:.0f} s in total.\n\n" + rep.text())
    print(text)
    if args.save_workloads:
        for path in rep.save_workloads(args.save_workloads):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rep.to_dict(), indent=1))
    if args.write_docs:
        marker = MARKER if args.budget_kind == "latency" else MARKER + "-macs"
        cmd = "python examples/generator_search.py" + ("" if args.budget_kind == "latency" else " --budget-kind macs")
        write_docs_block(DOCS, marker, text, f"`{cmd} --write-docs`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
