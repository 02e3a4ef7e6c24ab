"""ZigZag mapping files end to end: ONNX + ZigZag accelerator + ZigZag mapping file -> accelsim,
compared with ZigZag 3.9.1's own runs with the same three files.

For each reference run (tests/data/reference/zigzag_runs: ResNet-18 on tpu_like, edge_tpu_like,
eyeriss_like; AlexNet on tpu_like; LOMA, lpf_limit=6, opt=latency) two rows:

- ``zigzag map``: ZigZag's own mapping of every layer priced by accelsim's cost model
  (:func:`accelsim.mapping.cost.evaluate`, default rounding: exact averages over the folds of an
  uneven unrolling); also the worst per-operand, per-level energy deviation from ZigZag's, with
  ZigZag's rounding of fractional unrollings / with accelsim's default (must be <= 2% with
  ZigZag's; the default differs only on fractional unrollings, tests/test_mapping_cost.py);
- ``searched``: ``accelsim.simulate`` with the accelerator as ``kind: loopnest`` hardware and the
  run's mapping file (its ``spatial_mapping`` fixed, or its ``spatial_mapping_hint`` searched for
  eyeriss_like; entry by name > operator type > default as ZigZag does), objective ``latency``:
  the layer latency and energy the report shows; and, as a cross-check, the range of the SimPy
  pipeline's latency of the same mappings (``extra['pipeline_latency_cycles']``) over ZigZag's.

Columns: total energy / ZigZag's, layers with latency <= 1.02x ZigZag's reported latency, worst
layer latency ratio (and the smallest), wall time of the run.

Run: python benchmarks/bench_zigzag_mapping.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.hardware import load_hardware  # noqa: E402
from accelsim.mapping.cost import evaluate  # noqa: E402
from accelsim.mapping.zigzag_runs import REFERENCE_RUNS, load_reference_run  # noqa: E402

REF = ROOT / "tests" / "data" / "reference"


def _summary(pairs: list[tuple[str, float, float, float, float]]) -> dict:
    """pairs: (layer, latency ours, latency ZigZag, energy ours, energy ZigZag)."""
    ratios = [(la / lz, name) for name, la, lz, _, _ in pairs]
    return {"layers": len(pairs), "ok": sum(r <= 1.02 for r, _ in ratios), "worst": max(ratios),
            "best": min(ratios), "energy_ratio": sum(p[3] for p in pairs) / sum(p[4] for p in pairs),
            "latency_ratio": sum(p[1] for p in pairs) / sum(p[2] for p in pairs)}


def on_zigzag_mapping(tag: str) -> dict:
    """ZigZag's mapping of every layer priced by accelsim's cost model."""
    hierarchy, rows = load_reference_run(REF, tag)
    t0 = time.perf_counter()
    pairs, dev = [], {"zigzag": 0.0, "accelsim": 0.0}
    for layer, zmap, ref in rows:
        for rounding in dev:
            c = evaluate(layer, hierarchy, zmap, rounding=rounding)
            for op, zz in ref.mem_energy_pj.items():
                for a, z in zip(c.energy_of(op), zz):
                    if z > 0:
                        dev[rounding] = max(dev[rounding], abs(a / z - 1))
        pairs.append((ref.name, c.latency_cycles, ref.latency_cycles, c.energy_pj, ref.energy_pj))
    return {**_summary(pairs), "worst_level_energy_dev": dev, "wall_s": time.perf_counter() - t0}


def searched(tag: str) -> dict:
    """accelsim.simulate of the run's three files: the reported layer latency and energy."""
    onnx_rel, acc_rel, map_rel = REFERENCE_RUNS[tag]
    _, rows = load_reference_run(REF, tag)
    hw = load_hardware(REF / acc_rel).model_copy(update={"mapping_file": str(REF / map_rel), "objective": "latency"})
    t0 = time.perf_counter()
    rep = accelsim.simulate(REF / onnx_rel, hw)
    wall = time.perf_counter() - t0
    by = {s.layer: s for s in rep.layers}
    pairs = [(r.name, by[r.name].latency_cycles, r.latency_cycles, by[r.name].energy_pj, r.energy_pj)
             for _, _, r in rows]
    pipe = [by[r.name].extra["pipeline_latency_cycles"] / r.latency_cycles for _, _, r in rows]
    return {**_summary(pairs), "pipeline_range": (min(pipe), max(pipe)), "wall_s": wall}


def main() -> None:
    print(f"{'run':<24} {'mapping':<11} {'energy/ZZ':>9} {'lat<=1.02x':>10} {'worst lat (layer)':>46} "
          f"{'min lat':>7} {'level E dev':>12} {'SimPy lat/ZZ':>13} {'wall_s':>7}")
    tot = ok = 0
    for tag in REFERENCE_RUNS:
        for kind, r in (("zigzag map", on_zigzag_mapping(tag)), ("searched", searched(tag))):
            d = r.get("worst_level_energy_dev")
            dev = f"{100 * d['zigzag']:.1f}/{100 * d['accelsim']:.1f}%" if d else "-"
            pipe = "{:.2f}-{:.2f}".format(*r["pipeline_range"]) if "pipeline_range" in r else "-"
            print(f"{tag:<24} {kind:<11} {r['energy_ratio']:>9.3f} {r['ok']:>7}/{r['layers']:<2} "
                  f"{r['worst'][0]:>7.3f} ({r['worst'][1][-34:]:>34}) {r['best'][0]:>7.3f} {dev:>12} {pipe:>13} "
                  f"{r['wall_s']:>7.2f}")
            if kind == "searched":
                tot += r["layers"]
                ok += r["ok"]
    print(f"searched, all runs: {ok}/{tot} layers' reported latency within 1.02x of ZigZag's ({100 * ok / tot:.1f}%)")


if __name__ == "__main__":
    main()
