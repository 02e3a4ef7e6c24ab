"""One simulate path: ``simulate(..., program_cache=)`` gives the same Report as without a cache;
``Report.summary()`` holds every metric the explorer stores; the table renders as pandas does."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

import accelsim
from accelsim.hardware.io import hardware_from_dict, hardware_to_dict, load_hardware
from accelsim.program_cache import ProgramCache, counters, layer_digests
from accelsim.report import SWEEP_METRICS
from accelsim.workload.compression import Compression, Quant, Sparsity
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hw_configs"


def _pruned(wl):
    comp = Compression(sparsity=Sparsity(kind="nm", n=2, m=4, density=0.5), quant=Quant(weight_bits=4))
    return wl.with_layers([l.model_copy(update={"compression": comp}) if l.op == "conv2d" and l.name != "conv1" else l
                           for l in wl.layers])


CASES = [
    ("systolic_128x128_os.yaml", lambda: get_model("resnet18", resolution=64)),
    ("systolic_32x32_os_sparse.yaml", lambda: _pruned(get_model("resnet18", resolution=32))),  # + dense baseline
    ("isaac_like.yaml", lambda: get_model("tiny_cnn")),
    ("gather_scatter_sve128.yaml", lambda: get_model("tiny_cnn")),
    ("smartexchange_32x32.yaml", lambda: get_model("tiny_cnn")),
    ("zu3eg.yaml", lambda: get_model("tiny_cnn")),
]


@pytest.mark.parametrize("hw_file,make", CASES, ids=[c[0] for c in CASES])
def test_cached_report_equals_uncached(hw_file, make):
    wl, hw = make(), load_hardware(HW / hw_file)
    ref = accelsim.simulate(wl, hw).to_dict()
    cache = ProgramCache()
    first = accelsim.simulate(wl, hw, program_cache=cache).to_dict()
    again = accelsim.simulate(wl, hw, program_cache=cache).to_dict()  # every layer from the cache
    assert first == ref and again == ref
    assert cache.hits > 0 and len(cache) == cache.misses


def test_cache_lowers_each_distinct_layer_once_and_reprices_the_rest():
    wl = get_model("resnet50", resolution=64)
    hw = load_hardware(HW / "systolic_128x128_os.yaml")
    distinct = len(set(layer_digests(wl)))
    assert distinct < len(wl.layers)  # ResNet-50 repeats its bottleneck blocks
    cache, before = ProgramCache(), counters()
    accelsim.simulate(wl, hw, program_cache=cache, timing_key="structure-A")
    assert counters()["lowered"] - before["lowered"] == distinct
    assert counters()["priced"] - before["priced"] == distinct
    d = hardware_to_dict(hw)
    d["dram"] = dict(d["dram"], pj_per_bit=20.0)  # a pricing-only change, same timing key
    pricier = hardware_from_dict(d)
    mid = counters()
    got = accelsim.simulate(wl, pricier, program_cache=cache, timing_key="structure-A")
    assert counters()["lowered"] == mid["lowered"]  # nothing lowered again
    assert got.to_dict() == accelsim.simulate(wl, pricier).to_dict()
    # without a timing key the whole config is the key: a price change lowers again (safe default)
    accelsim.simulate(wl, pricier, program_cache=cache)
    assert counters()["lowered"] - mid["lowered"] == distinct


def test_cache_is_bounded_and_copies_are_independent():
    wl = get_model("resnet18", resolution=32)
    hw = load_hardware(HW / "systolic_128x128_os.yaml")
    cache = ProgramCache(max_entries=5)
    rep = accelsim.simulate(wl, hw, program_cache=cache)
    assert len(cache) == 5
    same = [s for s in rep.layers if s.layer in ("layer1.0.conv1", "layer1.1.conv1")]
    assert len(same) == 2 and same[0].energy_pj == same[1].energy_pj
    same[0].notes.append("mine")
    same[0].energy_by_component_pj["mac"] = -1.0
    assert "mine" not in same[1].notes and same[1].energy_by_component_pj["mac"] > 0


@pytest.mark.parametrize("hw_file,make", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_summary_is_a_superset_of_the_stored_metrics(hw_file, make):
    wl, hw = make(), load_hardware(HW / hw_file)
    rep = accelsim.simulate(wl, hw)
    s, m = rep.summary(), rep.metrics()
    for k in SWEEP_METRICS:
        assert m[k] == s[k]
    for c, v in s["energy_by_component_pj"].items():
        assert m[f"energy_{c}_pj"] == v
    for c, v in s.get("area_by_component_mm2", {}).items():
        assert m[f"area_{c}_mm2"] == v
    assert set(m) == set(SWEEP_METRICS) | {f"energy_{c}_pj" for c in s["energy_by_component_pj"]} | (
        {"area_mm2"} | {f"area_{c}_mm2" for c in s["area_by_component_mm2"]} if "area_mm2" in s else set())
    # hand-checked definitions
    assert s["edp_uj_ms"] == pytest.approx(s["energy_uj"] * s["latency_ms"], rel=1e-12)
    assert s["pe_count"] == max(l.pe_count for l in rep.layers)
    assert s["peak_gops"] == pytest.approx(2 * s["pe_count"] * s["clock_mhz"] / 1e3)
    assert s["achieved_gops"] == pytest.approx(2 * s["macs"] / (s["latency_ms"] / 1e3) / 1e9)
    assert s["achieved_gops"] <= s["peak_gops"] * (1 + 1e-12)  # nothing runs faster than its roof
    assert s["operational_intensity"] == pytest.approx(2 * s["macs"] / (s["dram_read_bytes"] + s["dram_write_bytes"]))
    assert s["dram_bw_gbps"] == hw.dram.bw_gbps
    assert s["total_cycles"] == s["compute_cycles"] + s["stall_cycles"]


def _pandas_table(rep):
    from accelsim.report import energy_phrase, speed_phrase

    df = rep.to_frame()
    cols = ["layer", "op", "fill_cycles", "compute_cycles", "stall_cycles", "drain_cycles", "latency_cycles",
            "utilization", "dram_read_bytes", "dram_write_bytes", "energy_pj", "bottleneck"]
    if rep.compared_to_dense:
        cols[-1:-1] = ["speedup_vs_dense", "energy_saving_vs_dense"]
    view = df[cols].copy()
    view["utilization"] = (view["utilization"] * 100).map(lambda v: f"{v:5.1f}%")
    view["dram_read_bytes"] = (view["dram_read_bytes"] / 1024).map(lambda v: f"{v:,.1f}")
    view["dram_write_bytes"] = (view["dram_write_bytes"] / 1024).map(lambda v: f"{v:,.1f}")
    view["energy_pj"] = (view["energy_pj"] / 1e6).map(lambda v: f"{v:,.3f}")
    if "speedup_vs_dense" in view:
        view["speedup_vs_dense"] = view["speedup_vs_dense"].map(speed_phrase)
        view["energy_saving_vs_dense"] = view["energy_saving_vs_dense"].map(
            lambda v: energy_phrase(1 / v).replace(" energy", ""))
    notes: dict[str, int] = {}
    view["notes"] = [",".join(str(notes.setdefault(n, len(notes) + 1)) for n in s.notes) or "-" for s in rep.layers]
    view = view.rename(columns={"dram_read_bytes": "dram_rd_kb", "dram_write_bytes": "dram_wr_kb",
                                "energy_pj": "energy_uj", "speedup_vs_dense": "speed_vs_dense",
                                "energy_saving_vs_dense": "energy_vs_dense"})
    return view, notes


def _with_notes(text, notes):
    return text + ("\nnotes:\n" + "\n".join(f"  [{k}] {n}" for n, k in notes.items()) if notes else "")


@pytest.mark.parametrize("hw_file,make", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_table_renders_as_pandas_did(hw_file, make):
    rep = accelsim.simulate(make(), load_hardware(HW / hw_file))
    view, notes = _pandas_table(rep)
    assert rep.table() == _with_notes(view.to_string(index=False), notes)
    head_notes = {n: k for n, k in notes.items() if any(n in s.notes for s in rep.layers[:4])}
    assert rep.table(max_rows=4) == _with_notes(view.head(4).to_string(index=False), head_notes)


def test_metrics_are_json_numbers():
    rep = accelsim.simulate(get_model("tiny_cnn"), load_hardware(HW / "isaac_like.yaml"))
    m = copy.deepcopy(rep.metrics())
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m.values())
    assert m["area_mm2"] == pytest.approx(sum(v for k, v in m.items() if k.startswith("area_") and k != "area_mm2"))
