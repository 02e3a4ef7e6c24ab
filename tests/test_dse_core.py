"""Design-space explorer core: points, keys, the cached evaluator (== simulate), invalid/failing points."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

import accelsim
from accelsim.dse import evaluate as ev_mod
from accelsim.dse import load, run_sweep
from accelsim.dse.evaluate import Evaluator, counters
from accelsim.dse.space import is_pricing_field, set_path, timing_view
from accelsim.hardware.io import hardware_from_dict, hardware_to_dict, load_hardware
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hw_configs" / "systolic_128x128_os.yaml"


def sweep_dict(**over):
    d = {"name": "t", "hardware": str(HW), "workloads": [{"zoo": "resnet18", "resolution": 32}],
         "axes": {"rows": [16, 64], "cols": {"same_as": "rows"}}, "objectives": ["latency_ms", "energy_uj"]}
    d.update(over)
    return d


def _metrics(wl, hw):
    ctx = {"id": "x", "workloads": [], "compression": None}
    ev = Evaluator(ctx)
    from accelsim.dse.space import canonical_hardware, digest

    return ev.metrics(wl, hw, digest(timing_view(canonical_hardware(hw))))


@pytest.mark.parametrize("hw_file,model,kwargs", [
    ("systolic_128x128_os.yaml", "resnet18", {"resolution": 64}),
    ("systolic_32x32_is.yaml", "mobilenet_v2", {"resolution": 64}),
    ("tpu_v1_like.yaml", "bert_base", {"seq_len": 16, "num_layers": 1}),
    ("isaac_like.yaml", "resnet18", {"resolution": 32}),
    ("neurosim_like.yaml", "tiny_cnn", {}),
    ("zu3eg.yaml", "resnet18", {"resolution": 32}),
])
def test_fast_metrics_equal_simulate_summary_exactly(hw_file, model, kwargs):
    wl = get_model(model, **kwargs)
    hw = load_hardware(ROOT / "hw_configs" / hw_file)
    m = _metrics(wl, hw)
    s = accelsim.simulate(wl, hw, compare_dense=False).summary()
    for k in ("latency_cycles", "energy_pj", "macs", "compute_cycles", "stall_cycles", "utilization",
              "inferences_per_s", "tops_per_w", "dram_read_bytes", "dram_write_bytes", "latency_ms", "energy_uj"):
        assert m[k] == s[k], k  # bit-identical: same sums in the same order
    for comp, v in s["energy_by_component_pj"].items():
        assert m[f"energy_{comp}_pj"] == pytest.approx(v, rel=1e-12)
    assert m["macs"] == wl.total_macs  # conservation: every MAC of the workload is done
    assert 0 < m["utilization"] <= 1
    assert m["edp_uj_ms"] == pytest.approx(m["energy_uj"] * m["latency_ms"])


def test_compressed_workload_metrics_equal_simulate(root):
    from accelsim.workload.compression import Compression, Quant, Sparsity

    wl = get_model("resnet18", resolution=32)
    layers = [l.model_copy(update={"compression": Compression(sparsity=Sparsity(kind="nm", n=2, m=4, density=0.5),
                                                              quant=Quant(weight_bits=4))})
              if l.op == "conv2d" and l.name != "conv1" else l for l in wl.layers]
    wl = wl.with_layers(layers)
    hw = load_hardware(HW)
    m = _metrics(wl, hw)
    s = accelsim.simulate(wl, hw, compare_dense=False).summary()
    assert m["latency_cycles"] == s["latency_cycles"] and m["energy_pj"] == s["energy_pj"]


def _shipped_configs():
    return sorted((ROOT / "hw_configs").glob("*.yaml"))


def _pricing_leaves(d, kind, prefix=""):
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _pricing_leaves(v, kind, path + ".")
        elif is_pricing_field(path, kind) and (v is None or isinstance(v, (int, float))) and not isinstance(v, bool):
            yield path, v


@pytest.mark.parametrize("cfg", _shipped_configs(), ids=lambda p: p.stem)
def test_pricing_fields_never_change_tiling_or_timing(cfg):
    """The cache rule: changing only fields that is_pricing_field() names keeps every program and timing."""
    from accelsim.engines.base import engine_for, lower_layer
    from accelsim.sim.run import simulate_layer_program

    hw = load_hardware(cfg)
    full = hw.model_dump(mode="json")
    if getattr(type(hw), "prices_steer_tiling", lambda d: False)(full):
        # mapping: search weighs prices (timing_view keeps them, test below); the rule holds for the fold order
        full["mapping"] = "scalesim"
        hw = hardware_from_dict(full)
    leaves = list(_pricing_leaves(full, hw.kind))
    assert leaves, "every hardware kind has energy fields"
    perturbed = copy.deepcopy(full)
    for path, v in leaves:
        set_path(perturbed, path, 0.37 if v in (None, 0) else v * 1.7 + 0.01)
    try:
        hw2 = hardware_from_dict(perturbed)
    except accelsim.ConfigError:  # some combination refused: perturb one field at a time instead
        hw2 = None
    wl = get_model("tiny_cnn")
    eng = engine_for(hw)
    pairs = [hw2] if hw2 is not None else []
    if hw2 is None:
        for path, v in leaves:
            d = copy.deepcopy(full)
            set_path(d, path, 0.37 if v in (None, 0) else v * 1.7 + 0.01)
            try:
                pairs.append(hardware_from_dict(d))
            except accelsim.ConfigError:
                continue
    assert pairs
    checked = 0
    for layer in wl.layers:
        if not eng.supports(layer, hw)[0]:
            continue
        p1 = lower_layer(layer, hw, wl)
        t1 = simulate_layer_program(p1, hw)
        for other in pairs:
            p2 = lower_layer(layer, other, wl)
            assert p2 == p1, f"{cfg.name}: {layer.name} lowering depends on a pricing field"
            assert simulate_layer_program(p2, other) == t1
        checked += 1
    assert checked >= 1


def test_timing_view_drops_only_pricing_fields():
    d = hardware_to_dict(load_hardware(HW))
    d["energy"] = {"mac_pj": 0.3, "accumulator_bits": 24}
    d["mapping"] = "scalesim"  # the fold order: prices never steer it
    v = timing_view(d)
    assert "pj_per_bit" not in v["dram"] and v["dram"]["bw_gbps"] == 25.6
    assert v["energy"] == {"accumulator_bits": 24}  # psum width changes traffic: kept
    assert v["rows"] == 128 and "name" not in v


def test_timing_view_keeps_prices_when_they_steer_the_mapping_search():
    d = {**hardware_to_dict(load_hardware(HW)), "objective": "energy"}
    assert load_hardware(HW).mapping == "search"
    v = timing_view(d)
    assert v["dram"]["pj_per_bit"] == d["dram"]["pj_per_bit"] and "name" not in v
    assert "pj_per_bit" not in timing_view({**d, "mapping": "scalesim"})["dram"]
    # latency breaks ties by bits moved (searched.tiebreak_hierarchy): prices do not steer it
    assert "pj_per_bit" not in timing_view({**d, "objective": "latency"})["dram"]


def test_energy_only_axes_reuse_tiling(tmp_path):
    """5 x 3 energy-table points on one structure lower each distinct layer once."""
    before = counters()
    # on the fold order (mapping: search weighs prices, so they are part of its timing key)
    res = run_sweep(sweep_dict(axes={"energy.mac_pj": {"linspace": [0.1, 0.5, 5]}, "dram.pj_per_bit": [4, 8, 20],
                                     "mapping": ["scalesim"]}),
                    tmp_path / "s.sqlite", workers=1)
    after = counters()
    wl = get_model("resnet18", resolution=32)
    distinct = len({str(l.model_dump(exclude={"name"})) for l in wl.layers})
    assert res.evaluated == 15
    assert after["lowered"] - before["lowered"] == distinct
    assert after["priced"] - before["priced"] == 15 * distinct
    df = load(tmp_path / "s.sqlite")
    # energy rises with the MAC price; latency is the same for all 15
    assert df["latency_cycles"].nunique() == 1
    by_mac = df.groupby("energy.mac_pj")["energy_mac_pj"].first()
    assert by_mac.is_monotonic_increasing and by_mac.iloc[-1] == pytest.approx(5 * by_mac.iloc[0])


def test_invalid_points_recorded_not_crashed(tmp_path):
    res = run_sweep(sweep_dict(axes={"rows": [16, 5000], "ifmap_sram.size_kb": [0.001, 64]}), tmp_path / "s.sqlite",
                    workers=1)
    assert (res.evaluated, res.invalid, res.errors) == (1, 3, 0)
    df = load(tmp_path / "s.sqlite")
    bad = df[df.status == "invalid"]
    assert len(bad) == 3 and bad["latency_ms"].isna().all()
    msgs = " ".join(bad["error"])
    assert "rows" in msgs and "less than or equal to 4096" in msgs
    assert "ifmap_sram.size_kb 0.001 holds fewer than two" in msgs


def test_failing_point_records_error_and_sweep_goes_on(tmp_path, monkeypatch):
    real = ev_mod.Evaluator.metrics

    def flaky(self, wl, hw, tkey):
        if hw.rows == 32:
            raise ZeroDivisionError("boom at 32 rows")
        return real(self, wl, hw, tkey)

    monkeypatch.setattr(ev_mod.Evaluator, "metrics", flaky)
    store = tmp_path / "s.sqlite"
    res = run_sweep(sweep_dict(axes={"rows": [16, 32, 64]}), store, workers=1)
    assert (res.evaluated, res.errors) == (2, 1)
    df = load(store)
    err = df[df.status == "error"].iloc[0]
    assert err["rows"] == 32 and "ZeroDivisionError: boom at 32 rows" in err["error"]
    # a rerun retries the failed point (now fixed) and keeps the others
    monkeypatch.setattr(ev_mod.Evaluator, "metrics", real)
    res2 = run_sweep(sweep_dict(axes={"rows": [16, 32, 64]}), store, workers=1)
    assert (res2.evaluated, res2.skipped, res2.errors) == (1, 2, 0)
    df2 = load(store)
    assert len(df2) == 3 and (df2.status == "ok").all()


def test_same_hardware_from_two_spellings_is_one_point(tmp_path):
    """128 and 128.0 (and an explicit default) validate to the same hardware: one key."""
    store = tmp_path / "s.sqlite"
    run_sweep(sweep_dict(name="a", axes={"rows": [64]}), store, workers=1)
    res = run_sweep(sweep_dict(name="b", axes={"rows": [64.0], "word_bits": [8]}), store, workers=1)
    assert res.skipped == 1 and res.evaluated == 0
    assert len(load(store)) == 1
    assert len(load(store, sweep="b")) == 1


def test_random_sweep_is_seeded(tmp_path):
    axes = {"rows": {"randint": [8, 256]}, "dram.bw_gbps": {"uniform": [5, 50]},
            "energy.mac_pj": {"loguniform": [0.05, 1.0]}}
    a = run_sweep(sweep_dict(name="r", axes=axes, search={"method": "random", "samples": 6, "seed": 3}),
                  tmp_path / "a.sqlite", workers=1)
    b = run_sweep(sweep_dict(name="r", axes=axes, search={"method": "random", "samples": 6, "seed": 3}),
                  tmp_path / "b.sqlite", workers=1)
    c = run_sweep(sweep_dict(name="r", axes=axes, search={"method": "random", "samples": 6, "seed": 4}),
                  tmp_path / "c.sqlite", workers=1)
    assert a.evaluated == 6
    ka, kb, kc = (sorted(load(tmp_path / f"{n}.sqlite")["key"]) for n in "abc")
    assert ka == kb and ka != kc
    df = load(tmp_path / "a.sqlite")
    assert df["rows"].between(8, 256).all() and df["dram.bw_gbps"].between(5, 50).all()
    assert all(float(v).is_integer() for v in df["rows"])


def test_front_respects_constraints(tmp_path):
    res = run_sweep(sweep_dict(axes={"rows": [8, 16, 32, 64, 128], "cols": {"same_as": "rows"}},
                               constraints=["utilization >= 0.5"]), tmp_path / "s.sqlite", workers=1)
    df = load(tmp_path / "s.sqlite")
    assert res.feasible == int((df["utilization"] >= 0.5).sum()) < len(df)
    assert (res.front["utilization"] >= 0.5).all()
    # the front is non-dominated among feasible points and nothing feasible dominates a front point
    feas = df[df["utilization"] >= 0.5]
    for _, f in res.front.iterrows():
        dominated = (feas["latency_ms"] <= f["latency_ms"]) & (feas["energy_uj"] <= f["energy_uj"]) & (
            (feas["latency_ms"] < f["latency_ms"]) | (feas["energy_uj"] < f["energy_uj"]))
        assert not dominated.any()
    assert math.isfinite(res.points_per_s)


def test_batched_front_equals_one_shot_front(tmp_path):
    from accelsim.dse import front_of, load_sweep
    from accelsim.dse.pareto import pareto_front
    from accelsim.dse.store import ResultsStore

    sw = load_sweep(sweep_dict(axes={"rows": [8, 16, 32, 64], "cols": [8, 16, 32, 64], "dataflow": ["os", "ws"]},
                               constraints=["utilization >= 0.02"]))
    run_sweep(sw, tmp_path / "s.sqlite", workers=1)
    df = load(tmp_path / "s.sqlite")
    df = df[df["utilization"] >= 0.02]
    expect = sorted(pareto_front(df, [("latency_ms", "min"), ("energy_uj", "min")])["key"])
    with ResultsStore(tmp_path / "s.sqlite") as st:
        for batch in (1, 3, 7, 1000):
            front, feasible = front_of(st, sw, batch=batch)
            assert sorted(front["key"]) == expect and feasible == len(df), batch
