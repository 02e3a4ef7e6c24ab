"""Mapping cost model vs ZigZag 3.9.1 on ZigZag's own mappings, and evaluation speed.

For each reference run (tests/data/reference/zigzag_runs: ResNet-18 on tpu_like, edge_tpu_like,
eyeriss_like; AlexNet on tpu_like) every layer is evaluated on the mapping ZigZag chose, and the
relative error of accelsim's energy per operand per memory level and of the latency is printed
(max and mean |error| over layers), then evaluations per second of ``evaluate``.
Needs the ``onnx`` package (layer shapes). Run: python benchmarks/bench_mapping_cost.py [zigzag|accelsim]
(rounding of fractional unrollings: ZigZag's, the default here, or accelsim's exact averages).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from accelsim.mapping.cost import evaluate  # noqa: E402
from accelsim.mapping.fast import FastEvaluator  # noqa: E402
from accelsim.mapping.zigzag_runs import REFERENCE_RUNS, load_reference_run  # noqa: E402

REF = ROOT / "tests" / "data" / "reference"
ROUNDING = "zigzag"  # set by main(): "zigzag" reproduces ZigZag's rounding of fractional unrollings


def _err(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return abs(a - b) / abs(b)


def compare(tag: str) -> dict:
    hierarchy, rows = load_reference_run(REF, tag)
    cells: dict[tuple[str, str], list[float]] = {}
    lat, terms = [], {"stall": [], "onload": [], "offload": [], "fill/drain": []}
    for layer, mapping, ref in rows:
        c = evaluate(layer, hierarchy, mapping, rounding=ROUNDING)
        for op in "WIO":
            for name, a, b in zip(ref.mem_levels[op], c.energy_of(op), ref.mem_energy_pj[op]):
                cells.setdefault((op, name), []).append(_err(a, b))
        cells.setdefault(("MAC", "-"), []).append(_err(c.mac_energy_pj, ref.mac_energy_pj))
        lat.append(_err(c.latency_cycles, ref.latency_cycles))
        for key, a, b in (("stall", c.stall_cycles, ref.stall_cycles), ("onload", c.onload_cycles, ref.onload_cycles),
                          ("offload", c.offload_cycles, ref.offload_cycles),
                          ("fill/drain", c.fill_drain_cycles, ref.fill_drain_cycles)):
            terms[key].append(abs(a - b))
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        for layer, mapping, _ in rows:
            evaluate(layer, hierarchy, mapping, check=False)
            n += 1
    rate = n / (time.perf_counter() - t0)
    fast = [(FastEvaluator(layer, hierarchy), mapping) for layer, mapping, _ in rows]
    for fe, mapping in fast:  # compile / warm up
        fe.energy_latency(mapping)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        for fe, mapping in fast:
            fe.energy_latency(mapping)
            n += 1
    rate_fast = n / (time.perf_counter() - t0)
    batches = []
    for fe, mapping in fast:
        d, s, c = fe.mapping_arrays(mapping)
        b = 512
        batches.append((fe, mapping.spatial, np.tile(d, (b, 1)), np.tile(s, (b, 1)), np.full(b, len(d)),
                        np.tile(c, (b, 1, 1))))
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        for fe, sp, d, s, k, c in batches:
            fe.batch(sp, d, s, k, c)
            n += len(k)
    rate_batch = n / (time.perf_counter() - t0)
    return {"tag": tag, "layers": len(rows), "cells": cells, "lat": lat, "terms": terms, "rate": rate,
            "rate_fast": rate_fast, "rate_batch": rate_batch}


def main() -> None:
    global ROUNDING
    ROUNDING = sys.argv[1] if len(sys.argv) > 1 else "zigzag"
    print("accelsim mapping cost model vs ZigZag 3.9.1, evaluated on ZigZag's own mapping of each layer")
    print(f"(rounding={ROUNDING!r}; |relative error| over the run's layers; energy per operand per memory level;"
          " argument 'accelsim' for the default rounding)\n")
    rates = []
    for tag in REFERENCE_RUNS:
        r = compare(tag)
        print(f"== {tag} ({r['layers']} layers)")
        print(f"  {'operand':7} {'level':12} {'max err':>9} {'mean err':>9}")
        for (op, name), errs in r["cells"].items():
            print(f"  {op:7} {name:12} {100 * max(errs):9.2e}% {100 * sum(errs) / len(errs):9.2e}%")
        print(f"  {'latency':20} {100 * max(r['lat']):9.2e}% {100 * sum(r['lat']) / len(r['lat']):9.2e}%")
        print("  latency terms, max |accelsim - ZigZag| cycles: "
              + ", ".join(f"{k} {max(v):g}" for k, v in r["terms"].items()))
        print(f"  evaluations/s: cost.evaluate {r['rate']:.0f} (pure Python, check=False); "
              f"FastEvaluator.energy_latency {r['rate_fast']:.0f}; FastEvaluator.batch {r['rate_batch']:.0f}\n")
        rates.append((r["rate"], r["rate_fast"], r["rate_batch"]))
    k = len(rates)
    print("mean evaluations/s over runs: reference %.0f, compiled %.0f, compiled batch %.0f"
          % tuple(sum(x[i] for x in rates) / k for i in range(3)))


if __name__ == "__main__":
    main()
