"""Pin the numbers of every shipped hardware config x a few models (tests/data/golden.json).

A change in simulated numbers must be a visible decision (ZigZag's golden tests do the same):
when a model change is intended, rerun this script and commit the new golden file with it.
Run: python tools/update_golden.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import accelsim  # noqa: E402
from accelsim.errors import AccelsimError  # noqa: E402

MODELS = ["resnet18", "mobilenet_v2", "bert_base", "tiny_cnn"]
GOLDEN = ROOT / "tests" / "data" / "golden.json"


def golden_entry(hw_path: Path, model: str) -> dict:
    hw = accelsim.load_hardware(hw_path)
    wl = accelsim.load_workload(ROOT / "models" / f"{model}.yaml")
    try:
        rep = accelsim.simulate(wl, hw)
    except AccelsimError as exc:
        return {"unsupported": str(exc)}
    return {
        "latency_cycles": rep.latency_cycles,
        "total_cycles": rep.total_cycles,
        "energy_pj": rep.energy_pj,
        "dram_bytes": sum(s.dram_read_bytes + s.dram_write_bytes for s in rep.layers),
        "macs": rep.macs,
    }


def compute() -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for hw_path in sorted((ROOT / "hw_configs").glob("*.yaml")):
        out[hw_path.name] = {m: golden_entry(hw_path, m) for m in MODELS}
    return out


def main() -> None:
    data = compute()
    from accelsim._validation import atomic_write_text

    atomic_write_text(GOLDEN, json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(data)} hardware configs x {len(MODELS)} models)")


if __name__ == "__main__":
    main()
