"""Mapper vs ZigZag 3.9.1's LOMA on ZigZag's own runs, and mapper speed.

1. Quality. For each reference run (tests/data/reference/zigzag_runs: ResNet-18 on tpu_like,
   edge_tpu_like, eyeriss_like; AlexNet on tpu_like; LOMA, lpf_limit=6, opt=latency) every layer
   is mapped by ``accelsim.mapping.search`` with objective ``latency`` and ZigZag's chosen spatial
   unrolling as the given spatial mapping (``--spatial file`` instead uses the mapping file's
   ``spatial_mapping``/``spatial_mapping_hint``, as ZigZag did; ``--spatial free`` lets the
   mapper unroll anything). Printed per run: layers with searched latency <= 1.02x ZigZag's
   (ZigZag's mapping evaluated by accelsim's cost model, and ZigZag's reported figure), and total
   energy / latency ratios.
2. Speed. ResNet-18 and ResNet-50 (accelsim zoo) mapped on tpu_like (mapping file spec: K 32 x
   C 32), warm (numba compiled, empty mapping cache) and cached; with ``--zigzag`` and ZigZag
   installed in /tmp/zz (``python -m venv /tmp/zz && /tmp/zz/bin/pip install zigzag-dse==3.9.1
   six``), also ZigZag's wall time on the same ResNet-18 run and the ratio.

Run: python benchmarks/bench_mapper.py [--spatial zigzag|file|free] [--zigzag] [--run JSON:NET:HW:MAPPING]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelsim.mapping import search as S  # noqa: E402
from accelsim.mapping.cost import evaluate  # noqa: E402
from accelsim.errors import ConfigError  # noqa: E402
from accelsim.mapping.ir import LayerDims, validate  # noqa: E402
from accelsim.mapping.zigzag_runs import REFERENCE_RUNS, load_reference_run  # noqa: E402

REF = ROOT / "tests" / "data" / "reference"
ZZ_PY = Path("/tmp/zz/bin/python")


def spatial_spec(mode: str, mapping, entry) -> dict:
    if mode == "zigzag":
        return {"spatial": {su.array_dim: [(lp.dim, lp.size) for lp in su.loops] for su in mapping.spatial}}
    if mode == "free":
        return {}
    if entry.spatial is not None:
        return {"spatial": {ad: list(lps) for ad, lps in entry.spatial_letters().items()}}
    if entry.hint is not None:
        return {"hint": {ad: list(ds) for ad, ds in entry.hint_letters().items()}}
    return {}


def _extra_run(spec: str):
    """``JSON:NET:HW:MAPPING``: a run dumped in the reference format from ZigZag's shipped inputs."""
    from accelsim.hardware.zigzag_io import load_zigzag_accelerator
    from accelsim.mapping.zigzag_mapping import load_mapping_file
    from accelsim.mapping.zigzag_runs import load_run
    path, net, hw, mp = spec.split(":")
    zin = REF / "zigzag_inputs"
    mfile = load_mapping_file(zin / "mapping" / f"{mp}.yaml")
    hierarchy = load_zigzag_accelerator(zin / "hardware" / f"{hw}.yaml", mfile.spec_for("default").links)
    sizes = {d.name: d.size for d in hierarchy.array.dimensions}
    return hierarchy, load_run(path, zin / "workload" / f"{net}.onnx", mfile, sizes), mfile


def quality(tag: str, mode: str, cache: S.MappingCache, extra: str | None = None) -> dict:
    from accelsim.mapping.zigzag_mapping import load_mapping_file
    if extra is not None:
        hierarchy, rows, mfile = _extra_run(extra)
    else:
        hierarchy, rows = load_reference_run(REF, tag)
        mfile = load_mapping_file(REF / REFERENCE_RUNS[tag][2])
    n_ok_model = n_ok_ref = 0
    e_s = e_zm = e_zr = l_s = l_zm = l_zr = 0.0
    worst = (0.0, "")
    invalid: list[str] = []
    t0 = time.perf_counter()
    for layer, zmap, ref in rows:
        entry = mfile.spec_for(ref.name, "Conv" if layer.R * layer.S > 1 or layer.P * layer.Q > 1 else "Gemm")
        res = S.search_layer(layer, hierarchy, objective="latency", cache=cache, **spatial_spec(mode, zmap, entry))
        zc = evaluate(layer, hierarchy, zmap)
        c = res.cost
        try:
            validate(layer, res.mapping, hierarchy)
        except ConfigError as exc:
            invalid.append(f"{ref.name}: {exc}")
        n_ok_model += c.latency_cycles <= 1.02 * zc.latency_cycles
        n_ok_ref += c.latency_cycles <= 1.02 * ref.latency_cycles
        r = c.latency_cycles / zc.latency_cycles
        if r > worst[0]:
            worst = (r, ref.name)
        e_s += c.energy_pj
        e_zm += zc.energy_pj
        e_zr += ref.energy_pj
        l_s += c.latency_cycles
        l_zm += zc.latency_cycles
        l_zr += ref.latency_cycles
    dt = time.perf_counter() - t0
    return dict(tag=tag, n=len(rows), ok_model=n_ok_model, ok_ref=n_ok_ref, e_model=e_s / e_zm, e_ref=e_s / e_zr,
                l_model=l_s / l_zm, l_ref=l_s / l_zr, worst=worst, seconds=dt, invalid=invalid)


def zoo_layers(name: str) -> list[LayerDims]:
    import accelsim
    wl = accelsim.load_workload(f"zoo:{name}")
    out = []
    for ly in wl.layers:
        try:
            out.append(LayerDims.from_layer(ly))
        except Exception:  # element-wise / pooling layers have no loop-nest mapping
            continue
    return out


def speed(hierarchy, layers: list[LayerDims], spec: dict, repeats: int = 3) -> tuple[float, float, int, float]:
    """(best warm seconds with empty caches, cached seconds, distinct shapes, seconds of the best
    warm run spent in the compiled evaluator ``fast._batch``: the rest is the mapper's overhead)."""
    from accelsim.mapping import fast as F

    kernel = F._batch
    spent = [0.0]

    def timed(*a):
        t = time.perf_counter()
        try:
            return kernel(*a)
        finally:
            spent[0] += time.perf_counter() - t

    best, best_kernel = float("inf"), 0.0
    F._batch = timed
    try:
        for _ in range(repeats):
            cache = S.MappingCache()
            S._ORDER_CACHE.clear()  # every loop-order enumeration counted
            spent[0] = 0.0
            t0 = time.perf_counter()
            S.search_layers(layers, hierarchy, objective="latency", cache=cache, **spec)
            if time.perf_counter() - t0 < best:
                best, best_kernel = time.perf_counter() - t0, spent[0]
    finally:
        F._batch = kernel
    t0 = time.perf_counter()
    S.search_layers(layers, hierarchy, objective="latency", cache=cache, **spec)
    return best, time.perf_counter() - t0, cache.misses, best_kernel


ZZ_SCRIPT = """
import time, logging
logging.disable(logging.CRITICAL)
from zigzag.api import get_hardware_performance_zigzag
R = {ref!r}
t = time.perf_counter()
get_hardware_performance_zigzag(R + "/zigzag_inputs/workload/resnet18.onnx", R + "/zigzag_inputs/hardware/tpu_like.yaml",
    R + "/zigzag_inputs/mapping/tpu_like.yaml", opt="latency", dump_folder="/tmp/zz_out", lpf_limit=6)
print(time.perf_counter() - t)
"""


def zigzag_seconds() -> float | None:
    if not ZZ_PY.exists():
        return None
    proc = subprocess.run(["nice", "-n", "10", str(ZZ_PY), "-c", ZZ_SCRIPT.format(ref=str(REF))],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        print("zigzag run failed:", proc.stderr.strip().splitlines()[-1:] or "?")
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spatial", choices=["zigzag", "file", "free"], default="zigzag")
    ap.add_argument("--zigzag", action="store_true", help="also time ZigZag 3.9.1 from /tmp/zz")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--run", action="append", default=[], metavar="JSON:NET:HW:MAPPING",
                    help="also compare with another ZigZag run dumped in the reference format")
    args = ap.parse_args()

    if not args.skip_quality:
        print(f"== searched (objective latency, spatial: {args.spatial}) vs ZigZag LOMA (lpf_limit 6)")
        print(f"{'run':<24} {'layers':>6} {'lat<=1.02x (model)':>18} {'(reported)':>10} {'E/E_zz model':>12} "
              f"{'E/E_zz rep':>10} {'L/L_zz model':>12} {'L/L_zz rep':>10} {'worst layer':>24} {'s':>6}")
        cache = S.MappingCache()
        tot_ok = tot_n = 0
        runs = [(tag, None) for tag in REFERENCE_RUNS] + [(Path(x.split(":")[0]).stem, x) for x in args.run]
        for tag, extra in runs:
            q = quality(tag, args.spatial, cache, extra)
            tot_ok += q["ok_model"]
            tot_n += q["n"]
            print(f"{tag:<24} {q['n']:>6} {q['ok_model']:>13}/{q['n']:<4} {q['ok_ref']:>6}/{q['n']:<3} "
                  f"{q['e_model']:>12.3f} {q['e_ref']:>10.3f} {q['l_model']:>12.3f} {q['l_ref']:>10.3f} "
                  f"{q['worst'][0]:>6.3f} {q['worst'][1][-17:]:>17} {q['seconds']:>6.2f}")
            for msg in q["invalid"]:
                print("   INVALID", msg)
        print(f"all runs: {tot_ok}/{tot_n} layers = {100 * tot_ok / tot_n:.1f}% with latency <= 1.02x ZigZag's mapping")

    if args.skip_speed:
        return
    from accelsim.hardware.zigzag_io import load_zigzag_accelerator
    hier = load_zigzag_accelerator(REF / "zigzag_inputs" / "hardware" / "tpu_like.yaml")
    spec = {"spatial": {"D1": [("K", 32)], "D2": [("C", 32)]}}
    print("\n== speed (tpu_like, spatial K 32 x C 32 as in ZigZag's mapping file, objective latency)")
    for net in ("resnet18", "resnet50"):
        layers = zoo_layers(net)
        S.search_layers(layers[:1], hier, objective="latency", cache=S.MappingCache(), **spec)  # JIT warm-up
        warm, cached, shapes, kernel = speed(hier, layers, spec)
        print(f"{net}: {len(layers)} conv/fc layers, {shapes} distinct shapes: {warm:.3f} s warm (empty caches; "
              f"evaluator kernel {kernel:.3f} s, rest of the mapper {warm - kernel:.3f} s), {cached * 1e3:.1f} ms cached")
        if net == "resnet18":
            r18 = warm
    zz = zigzag_seconds() if args.zigzag else None
    if zz is not None:
        print(f"ZigZag 3.9.1 ResNet-18 on tpu_like (same machine, nice 10): {zz:.1f} s -> mapper is {zz / r18:.0f}x faster")
    else:
        print("ZigZag not timed here (use --zigzag with ZigZag in /tmp/zz); the reference runs' README records "
              "57-340 s per ResNet-18 run on this machine")


if __name__ == "__main__":
    main()
