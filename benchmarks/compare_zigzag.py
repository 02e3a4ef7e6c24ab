"""ResNet-18 on ZigZag's TPU-like accelerator: accelsim vs ZigZag 3.9.1, per component.

Uses ZigZag's own per-access energies (hw_configs/zigzag_tpu_like.yaml) and ZigZag's results
(tests/data/reference/zigzag_results.csv). Prints per-layer and total energy per component and
the accelsim/ZigZag ratios, plus latency. Run: python benchmarks/compare_zigzag.py
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402

# ZigZag memory level -> accelsim component(s)
GROUPS = {
    "MAC": (["mac"], ["mac"]),
    "PE registers (rf_128B W + rf_2B O | pe_rf + filter_sram)": (["rf_128B", "rf_2B"], ["pe_rf", "filter_sram"]),
    "2 MB SRAM (I + O | ifmap_sram + ofmap_sram)": (["sram_2MB"], ["ifmap_sram", "ofmap_sram"]),
    "DRAM": (["dram"], ["dram"]),
}


def zigzag_rows() -> list[dict[str, str]]:
    with open(ROOT / "tests" / "data" / "reference" / "zigzag_results.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["workload"] == "resnet18" and r["accelerator"] == "tpu_like"]


def torch_name(onnx_node: str) -> str:
    """'/layer2/layer2.0/downsample/downsample.0/Conv' -> 'layer2.0.downsample.0'."""
    parts = [p for p in onnx_node.split("/") if p][:-1]
    leaf = parts[-1]
    for anc in reversed(parts[:-1]):
        if "." in anc:
            return f"{anc}.{leaf}"
    return leaf


def zigzag_levels(row: dict[str, str]) -> dict[str, float]:
    out = {"mac": float(row["mac_energy_pJ"])}
    for part in row["mem_energy_per_level_pJ"].split(";"):
        k, v = part.split("=")
        out[k] = float(v)
    return out


def compare() -> dict[str, object]:
    zz = zigzag_rows()
    wl = accelsim.load_workload(ROOT / "models" / "resnet18.yaml")
    hw = accelsim.load_hardware(ROOT / "hw_configs" / "zigzag_tpu_like.yaml")
    rep = accelsim.simulate(wl, hw)
    ours = {s.layer: s for s in rep.layers if s.op in ("conv2d", "linear")}
    assert len(ours) == len(zz), (len(ours), len(zz))
    names = [torch_name(r["layer"]) for r in zz]
    per_layer = []
    totals_z = {g: 0.0 for g in GROUPS}
    totals_a = {g: 0.0 for g in GROUPS}
    lat_z = lat_a = 0
    for name, row in zip(names, zz):
        s = ours[name]
        assert int(row["macs"]) == s.macs, (name, row["layer"])
        zl = zigzag_levels(row)
        entry = {"layer": name, "zigzag_layer": row["layer"]}
        for g, (zkeys, akeys) in GROUPS.items():
            z = sum(zl.get("mac" if k == "MAC" else k, 0.0) for k in zkeys)
            a = sum(s.energy_by_component_pj.get(k, 0.0) for k in akeys)
            totals_z[g] += z
            totals_a[g] += a
            entry[g] = (a, z)
        entry["latency"] = (s.latency_cycles, float(row["latency_cycles"]))
        lat_z += float(row["latency_cycles"])
        lat_a += s.latency_cycles
        per_layer.append(entry)
    return {"per_layer": per_layer, "totals_accelsim": totals_a, "totals_zigzag": totals_z,
            "latency_accelsim": lat_a, "latency_zigzag": lat_z,
            "energy_accelsim": sum(totals_a.values()), "energy_zigzag": sum(totals_z.values())}


def main() -> None:
    res = compare()
    print("ResNet-18 (21 conv/FC layers) on ZigZag tpu_like, energies in uJ")
    print(f"{'component':58s} {'accelsim':>10s} {'ZigZag':>10s} {'ratio':>7s}")
    for g in GROUPS:
        a, z = res["totals_accelsim"][g], res["totals_zigzag"][g]
        print(f"{g:58s} {a / 1e6:10.2f} {z / 1e6:10.2f} {a / z if z else float('nan'):7.2f}")
    a, z = res["energy_accelsim"], res["energy_zigzag"]
    print(f"{'total':58s} {a / 1e6:10.2f} {z / 1e6:10.2f} {a / z:7.2f}")
    print(f"latency (cycles): accelsim {res['latency_accelsim']:,} ZigZag {res['latency_zigzag']:,.0f} "
          f"ratio {res['latency_accelsim'] / res['latency_zigzag']:.2f}")
    print("\nper layer: ratio accelsim/ZigZag of each component, latency")
    for e in res["per_layer"]:
        cells = [f"{(e[g][0] / e[g][1]) if e[g][1] else float('nan'):6.2f}" for g in GROUPS]
        la, lz = e["latency"]
        print(f"  {e['layer']:24s} " + " ".join(cells) + f"  lat {la / lz:5.2f}")


if __name__ == "__main__":
    main()
