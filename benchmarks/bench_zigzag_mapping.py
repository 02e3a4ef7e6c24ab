"""ZigZag mapping files end to end: ONNX + ZigZag accelerator + ZigZag mapping file -> map_workload,
compared with ZigZag 3.9.1's own runs with the same three files.

For each reference run (tests/data/reference/zigzag_runs: ResNet-18 on tpu_like, edge_tpu_like,
eyeriss_like; AlexNet on tpu_like; LOMA, lpf_limit=6, opt=latency) the workload is read from
ZigZag's ONNX file and mapped by ``accelsim.mapping.workload_mapping.map_workload`` with the run's
mapping file (its ``spatial_mapping`` fixed, or its ``spatial_mapping_hint`` searched for
eyeriss_like, each layer's entry chosen by name > operator type > default as ZigZag does),
objective ``latency``. Printed per run: layers whose latency is <= 1.02x ZigZag's (against ZigZag's
reported latency, and against ZigZag's mapping priced by accelsim's cost model), the worst layer,
total energy and latency ratios, and the wall time.

Run: python benchmarks/bench_zigzag_mapping.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelsim.mapping.cost import evaluate  # noqa: E402
from accelsim.mapping.search import MappingCache  # noqa: E402
from accelsim.mapping.workload_mapping import map_workload  # noqa: E402
from accelsim.mapping.zigzag_runs import REFERENCE_RUNS, load_reference_run  # noqa: E402

REF = ROOT / "tests" / "data" / "reference"


def run(tag: str) -> dict:
    onnx_rel, acc_rel, map_rel = REFERENCE_RUNS[tag]
    hierarchy, rows = load_reference_run(REF, tag)
    t0 = time.perf_counter()
    res = map_workload(REF / onnx_rel, REF / acc_rel, REF / map_rel, objective="latency", cache=MappingCache())
    wall = time.perf_counter() - t0
    ok_rep = ok_mod = 0
    worst = (0.0, "")
    e_a = e_z = l_a = l_z = 0.0
    for layer, zmap, ref in rows:
        c = res[ref.name].cost
        zc = evaluate(layer, hierarchy, zmap)
        r_rep = c.latency_cycles / ref.latency_cycles
        r_mod = c.latency_cycles / zc.latency_cycles
        ok_rep += r_rep <= 1.02
        ok_mod += r_mod <= 1.02
        worst = max(worst, (r_rep, ref.name))
        e_a += c.energy_pj
        e_z += ref.energy_pj
        l_a += c.latency_cycles
        l_z += ref.latency_cycles
    return {"tag": tag, "layers": len(rows), "ok_reported": ok_rep, "ok_model": ok_mod, "worst": worst,
            "energy_ratio": e_a / e_z, "latency_ratio": l_a / l_z, "wall_s": wall}


def main() -> None:
    print(f"{'run':<24} {'layers <=1.02x (reported / model)':>34} {'energy/ZZ':>10} {'latency/ZZ':>11} "
          f"{'worst layer (ratio)':>44} {'wall_s':>7}")
    tot = ok = 0
    for tag in REFERENCE_RUNS:
        r = run(tag)
        tot += r["layers"]
        ok += r["ok_reported"]
        print(f"{tag:<24} {r['ok_reported']:>15}/{r['layers']} / {r['ok_model']}/{r['layers']:<12} "
              f"{r['energy_ratio']:>10.3f} {r['latency_ratio']:>11.3f} "
              f"{r['worst'][1][-34:]:>36} ({r['worst'][0]:.3f}) {r['wall_s']:>7.2f}")
    print(f"all runs: {ok}/{tot} layers within 1.02x of ZigZag's reported latency ({100 * ok / tot:.1f}%)")


if __name__ == "__main__":
    main()
