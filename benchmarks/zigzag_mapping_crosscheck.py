"""ZigZag 3.9.1 vs accelsim on the same three input files, for temporal_ordering rules.

Cases (files in tests/data/zigzag_mapping/ and ZigZag's shipped inputs): a 3x3 conv (64->64
channels, 14x14) on tpu_like with spatial K 32 x C 32 and

- ``partial_pins.yaml``: ``temporal_ordering [[FX, 3], [C, "*"]]`` (two pinned positions);
- ``complete_order.yaml``: a complete order (evaluated as given);
- ``wildcard_marker.yaml``: ``[[K, "*"], ["*", "*"], [OY, "*"]]`` (the marker is dropped in 3.9.1);
- ``pin_merged_by_zigzag.yaml``: ``[[OX, 7], [FY, "*"]]`` (ZigZag's lpf merge swallows the pinned 7);

and ZigZag's ``gemm_layer.yaml`` + ``gemm_l1.yaml`` + mapping ``gemm_l1.yaml`` (generic loop names,
pins D1, D2, D0). With ``--zigzag PYTHON`` (a Python with zigzag-dse 3.9.1, e.g. a throw-away
venv: ``python -m venv /tmp/zz && /tmp/zz/bin/pip install zigzag-dse==3.9.1 six``) ZigZag is
run on each case and its figures are written to ``tests/data/zigzag_mapping/zigzag_results.json``;
without, the stored figures are compared.

Run: python benchmarks/zigzag_mapping_crosscheck.py [--zigzag /tmp/zz/bin/python]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.mapping.workload_mapping import map_workload  # noqa: E402

DATA = ROOT / "tests" / "data" / "zigzag_mapping"
ZZ = ROOT / "tests" / "data" / "reference" / "zigzag_inputs"
RESULTS = DATA / "zigzag_results.json"

#: case -> (workload, accelerator, mapping file)
CASES: dict[str, tuple[Path, Path, Path]] = {
    "partial_pins": (DATA / "conv_14x14.yaml", ZZ / "hardware" / "tpu_like.yaml", DATA / "partial_pins.yaml"),
    "complete_order": (DATA / "conv_14x14.yaml", ZZ / "hardware" / "tpu_like.yaml", DATA / "complete_order.yaml"),
    "wildcard_marker": (DATA / "conv_14x14.yaml", ZZ / "hardware" / "tpu_like.yaml", DATA / "wildcard_marker.yaml"),
    "pin_merged_by_zigzag": (DATA / "conv_14x14.yaml", ZZ / "hardware" / "tpu_like.yaml",
                             DATA / "pin_merged_by_zigzag.yaml"),
    "gemm_l1": (ZZ / "workload" / "gemm_layer.yaml", ZZ / "hardware" / "gemm_l1.yaml",
                ZZ / "mapping" / "gemm_l1.yaml"),
}

_ZZ_SCRIPT = r"""
import sys, json, logging
logging.disable(logging.CRITICAL)
from zigzag.api import get_hardware_performance_zigzag
wl, acc, mp, out = sys.argv[1:5]
try:
    e, l, cmes = get_hardware_performance_zigzag(wl, acc, mp, opt="latency", dump_folder=out, lpf_limit=6,
                                                 loma_show_progress_bar=False)
    rows = [{"layer": c.layer.name, "latency_cycles": float(c.latency_total2), "energy_pj": float(c.energy_total),
             "temporal_mapping": str(c.temporal_mapping.mapping_dic_stationary)} for c, _ in cmes[0][1]]
    print(json.dumps({"ok": True, "layers": rows}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}))
"""


def run_zigzag(python: str) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(_ZZ_SCRIPT)
        for case, (wl, acc, mp) in CASES.items():
            res = subprocess.run([python, str(script), str(wl), str(acc), str(mp), str(Path(tmp) / case)],
                                 capture_output=True, text=True, check=False)
            out[case] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def run_accelsim() -> dict:
    out = {}
    for case, (wl, acc, mp) in CASES.items():
        try:
            res = map_workload(wl, acc, mp, objective="latency", cache=None)
            out[case] = {"ok": True, "layers": [{"layer": n, "latency_cycles": r.cost.latency_cycles,
                                                 "energy_pj": r.cost.energy_pj, "mapping": r.mapping.short()}
                                                for n, r in res.items()]}
        except ConfigError as exc:
            out[case] = {"ok": False, "error": str(exc)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zigzag", help="Python interpreter with zigzag-dse 3.9.1 installed (re-measures ZigZag)")
    args = ap.parse_args()
    if args.zigzag:
        zz = run_zigzag(args.zigzag)
        RESULTS.write_text(json.dumps(zz, indent=1) + "\n")
    else:
        zz = json.loads(RESULTS.read_text())
    acc = run_accelsim()
    for case in CASES:
        z, a = zz[case], acc[case]
        if not z["ok"]:
            print(f"{case:<22} ZigZag: {z['error'][:70]} | accelsim: "
                  + (f"{a['layers'][0]['latency_cycles']:,.0f} cycles {a['layers'][0]['mapping']}" if a["ok"]
                     else a["error"]))
            continue
        for zl, al in zip(z["layers"], a["layers"]):
            print(f"{case:<22} {zl['layer']:<8} latency ZigZag {zl['latency_cycles']:>9,.0f} accelsim "
                  f"{al['latency_cycles']:>9,.0f} | energy ZigZag {zl['energy_pj']:>13,.1f} accelsim "
                  f"{al['energy_pj']:>13,.1f} | {al['mapping']}")


if __name__ == "__main__":
    main()
