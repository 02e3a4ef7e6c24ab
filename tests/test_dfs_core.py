"""Dynamic precision (DFS) in the core: the compression record, expected / p50 / p95 per input, notes, CLI."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

import accelsim
from accelsim.cli import main
from accelsim.errors import ConfigError
from accelsim.hardware.io import hardware_to_dict, load_hardware
from accelsim.sim.dfs import GateCosts, combine, quantile
from accelsim.workload.compression import DynamicPrecision
from accelsim.workload.io import dump_workload_yaml, load_workload, workload_from_dict

ROOT = Path(__file__).resolve().parents[1]


def _conv(name, gate=None, probs=None, trace=None, c=16):
    d = {"name": name, "op": "conv2d", "in_channels": c, "out_channels": c, "in_h": 16, "in_w": 16, "kernel": 3,
         "padding": 1}
    if gate is not None:
        dp = {"gate": gate, "bits_probability": probs}
        if trace is not None:
            dp["trace"] = trace
        d["compression"] = {"quant": {"weight_bits": 8, "act_bits": 8}, "dynamic_precision": dp}
    return d


def _workload(gates: dict[str, dict], traces: dict[str, list[int]] | None = None) -> dict:
    layers = [_conv("stem", c=16)]
    for g, probs in gates.items():
        tr = (traces or {}).get(g)
        layers += [_conv(f"{g}.conv1", g, probs, tr), _conv(f"{g}.conv2", g, probs, tr)]
    layers.append({"name": "fc", "op": "linear", "in_features": 4096, "out_features": 10})
    return {"accelsim_workload": 1, "name": "dfs_toy", "layers": layers}


def _bit_serial():
    hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
    return hw.model_copy(update={"name": "bitserial", "sparse": hw.sparse.model_copy(update={
        "zero_skipping": False, "nm_speedup": False, "block_skipping": False, "bit_serial": True})})


def test_record_validation_names_the_field(tmp_path):
    ok = DynamicPrecision(gate="g", bits_probability={0: 0.5, 8: 0.5}, trace=[0, 8, 8, 0])
    assert ok.widths == [0, 8]
    for bad, match in [({"gate": "g", "bits_probability": {0: 0.5, 8: 0.6}}, "sum to 1"),
                       ({"gate": "g", "bits_probability": {40: 1.0}}, "0 \\(skip\\) or 1..32"),
                       ({"gate": "g", "bits_probability": {0: 0.5, 8: 0.5}, "trace": [0, 8, 8]}, "trace chooses"),
                       ({"gate": "g", "bits_probability": {8: 1.0}, "inputs": 3, "trace": [8, 8]}, "inputs is 3")]:
        with pytest.raises(ValueError, match=match):
            DynamicPrecision(**bad)
    wl = _workload({"b1": {0: 0.25, 4: 0.25, 8: 0.6}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(wl))
    with pytest.raises(ConfigError, match=r"bad\.yaml.*layers\[1\]\(b1\.conv1\)\.compression\.dynamic_precision.*sum to 1"):
        load_workload(path)
    assert main(["simulate", "-w", str(path), "--hw", str(ROOT / "hw_configs" / "systolic_32x32_is.yaml")]) == 2


def test_yaml_round_trip_keeps_distribution_and_trace():
    wl = workload_from_dict(_workload({"b1": {0: 0.25, 4: 0.25, 8: 0.5}}, {"b1": [0, 4, 8, 8] * 5}))
    text = dump_workload_yaml(wl)
    assert "trace: [0, 4, 8, 8, 0," in text  # one line
    back = workload_from_dict(yaml.safe_load(text))
    assert back == wl
    assert back["b1.conv2"].compression.dynamic_precision.bits_probability == {0: 0.25, 4: 0.25, 8: 0.5}


def test_combine_matches_brute_force_enumeration():
    rng = np.random.default_rng(0)
    gates = []
    for i in range(3):
        probs = dict(zip((0, 4, 8), rng.dirichlet(np.ones(3)).tolist()))
        lat = {0: 0, 4: int(rng.integers(10, 100)), 8: int(rng.integers(100, 200))}
        en = {0: 0.0, 4: float(rng.uniform(1, 5)), 8: float(rng.uniform(5, 9))}
        gates.append(GateCosts(f"g{i}", (f"g{i}.a",), probs, lat, en))
    out = combine(1000, 50.0, gates)
    vals, ws, evals = [], [], []
    for combo in itertools.product((0, 4, 8), repeat=3):
        ws.append(np.prod([g.probability[b] for g, b in zip(gates, combo)]))
        vals.append(1000 + sum(g.latency_cycles[b] for g, b in zip(gates, combo)))
        evals.append(50.0 + sum(g.energy_pj[b] for g, b in zip(gates, combo)))
    vals, ws, evals = np.array(vals, float), np.array(ws), np.array(evals)
    assert out.expected_latency_cycles == pytest.approx(float(vals @ ws))
    assert out.expected_energy_pj == pytest.approx(float(evals @ ws))
    assert out.p50_latency_cycles == quantile(vals, ws, 0.5)
    assert out.p95_latency_cycles == quantile(vals, ws, 0.95)
    assert out.p95_energy_pj == pytest.approx(quantile(evals, ws, 0.95))
    assert out.latency_cycles_by_bits[0] == 1000  # every gate skipped: only the fixed layers
    assert out.latency_cycles_by_bits[8] == 1000 + sum(g.latency_cycles[8] for g in gates)
    assert sum(out.expected_latency_cycles_by_bits.values()) + 1000 == pytest.approx(out.expected_latency_cycles)
    assert not out.exact_spread
    # with traces the spread is exact over the inputs: two inputs, one all-skip, one all-8-bit
    traced = [GateCosts(g.gate, g.layers, {0: 0.5, 8: 0.5}, g.latency_cycles, g.energy_pj, (0, 8)) for g in gates]
    t = combine(1000, 50.0, traced)
    assert t.exact_spread and t.inputs == 2
    assert t.p50_latency_cycles == 1000 and t.p95_latency_cycles == t.latency_cycles_by_bits[8]
    # independence would put mass on mixed inputs: its p50 lies strictly between
    ind = combine(1000, 50.0, [GateCosts(g.gate, g.layers, g.probability, g.latency_cycles, g.energy_pj) for g in traced])
    assert 1000 < ind.p50_latency_cycles < t.latency_cycles_by_bits[8]


def test_simulate_prices_each_width_and_conserves_the_layers():
    bs = _bit_serial()
    wl = workload_from_dict(_workload({"b1": {0: 0.25, 4: 0.25, 8: 0.5}, "b2": {4: 1.0}}))
    rep = accelsim.simulate(wl, bs, compare_dense=False)
    d = rep.dynamic
    assert d is not None and d.gates == 2
    by_name = {s.layer: s for s in rep.layers}
    fixed = by_name["stem"].latency_cycles + by_name["fc"].latency_cycles
    assert d.fixed_latency_cycles == fixed
    # the record's own quant (8 bits) is what the rows priced: the 8-bit class of a gate equals its rows
    assert d.latency_cycles_by_bits[8] == rep.latency_cycles
    # bit-serial PEs: 4-bit layers are faster than 8-bit ones, skipping is cheapest
    assert d.latency_cycles_by_bits[0] < d.latency_cycles_by_bits[4] < d.latency_cycles_by_bits[8]
    # gate b2 is always 4-bit; b1 skips a quarter: expected = fixed + E[b1] + cost_b2(4)
    four = {s.layer: s for s in accelsim.simulate(wl.with_layers([
        layer.model_copy(update={"compression": layer.compression.model_copy(update={
            "quant": layer.compression.quant.model_copy(update={"weight_bits": 4, "act_bits": 4}),
            "dynamic_precision": None})}) for layer in wl.layers]), bs, compare_dense=False).layers}
    b1_4 = four["b1.conv1"].latency_cycles + four["b1.conv2"].latency_cycles
    b1_8 = by_name["b1.conv1"].latency_cycles + by_name["b1.conv2"].latency_cycles
    b2_4 = four["b2.conv1"].latency_cycles + four["b2.conv2"].latency_cycles
    assert d.expected_latency_cycles == pytest.approx(fixed + 0.25 * b1_4 + 0.5 * b1_8 + b2_4)
    assert d.p50_latency_cycles == fixed + b1_4 + b2_4 and d.p95_latency_cycles == fixed + b1_8 + b2_4
    assert d.p50_latency_cycles <= d.p95_latency_cycles <= d.latency_cycles_by_bits[8]
    assert not any("exploit" in n for n in d.notes)
    from accelsim.program_cache import ProgramCache
    cached = accelsim.simulate(wl, bs, compare_dense=False, program_cache=ProgramCache()).summary()
    assert {k: cached[k] for k in cached if "latency" in k or "energy" in k} == \
        {k: v for k, v in rep.summary().items() if "latency" in k or "energy" in k}


def test_int8_array_and_fpga_say_they_cannot_exploit_narrow_widths():
    wl = workload_from_dict(_workload({"b1": {0: 0.5, 4: 0.25, 8: 0.25}}))
    for cfg in ("systolic_32x32_is.yaml", "zcu104.yaml"):
        rep = accelsim.simulate(wl, ROOT / "hw_configs" / cfg)
        notes = [n for n in rep.dynamic.notes if "barely exploits narrower widths" in n and "4-bit" in n]
        assert len(notes) == 1, rep.dynamic.notes
        assert rep.dynamic.latency_cycles_by_bits[0] < rep.dynamic.latency_cycles_by_bits[4]  # skipping still pays


def test_layers_of_one_gate_must_agree():
    wl = _workload({"b1": {0: 0.5, 8: 0.5}})
    wl["layers"][2]["compression"]["dynamic_precision"]["bits_probability"] = {0: 0.25, 8: 0.75}
    with pytest.raises(ConfigError, match="disagree"):
        accelsim.simulate(workload_from_dict(wl), _bit_serial())


def test_cli_prints_expected_and_spread(tmp_path, capsys):
    wl = workload_from_dict(_workload({"b1": {0: 0.25, 4: 0.25, 8: 0.5}, "b2": {0: 0.5, 8: 0.5}},
                                      {"b1": [0, 4, 8, 8] * 5, "b2": [0, 0, 8, 8] * 5}))
    (tmp_path / "dfs.yaml").write_text(dump_workload_yaml(wl))
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hardware_to_dict(_bit_serial()), sort_keys=False))
    assert main(["simulate", "-w", str(tmp_path / "dfs.yaml"), "--hw", str(tmp_path / "hw.yaml")]) == 0
    out = capsys.readouterr().out
    s = accelsim.simulate(tmp_path / "dfs.yaml", tmp_path / "hw.yaml").summary()
    line = next(x for x in out.splitlines() if "expected latency" in x)
    assert f"expected latency {accelsim.report.duration_text(s['expected_latency_ms'])}" in line
    assert f"p50 {accelsim.report.duration_text(s['p50_latency_ms'])}" in line
    assert f"p95 {accelsim.report.duration_text(s['p95_latency_ms'])}" in line
    assert "exact over 20 measured inputs" in line
    assert "expected energy" in out and "every gate at one width: skipped" in out
    assert s["p50_latency_ms"] <= s["p95_latency_ms"] and s["expected_latency_ms"] < s["latency_ms_by_bits"][8]
    assert main(["simulate", "-w", str(tmp_path / "dfs.yaml"), "--hw", str(tmp_path / "hw.yaml"),
                 "--format", "json"]) == 0
    js = __import__("json").loads(capsys.readouterr().out)
    assert js["summary"]["p95_latency_cycles"] == s["p95_latency_cycles"]


def test_a_width_the_hardware_cannot_run_is_named(tmp_path, capsys):
    wl = _workload({"b1": {0: 0.5, 16: 0.5}})  # rows at 8 bits run; the 16-bit class does not fit an 8-bit FPGA
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wl))
    with pytest.raises(accelsim.errors.UnsupportedLayerError, match="dynamic precision: the 16-bit class"):
        accelsim.simulate(workload_from_dict(wl), ROOT / "hw_configs" / "zcu104.yaml")
    assert main(["simulate", "-w", str(tmp_path / "w.yaml"), "--hw", str(ROOT / "hw_configs" / "zcu104.yaml")]) == 2
    assert "16-bit class" in capsys.readouterr().err


def test_large_supports_are_merged_on_a_grid_close_to_exact(monkeypatch):
    import accelsim.sim.dfs as dfs

    rng = np.random.default_rng(1)
    gates = [GateCosts(f"g{i}", (f"g{i}.a",), dict(zip((0, 4, 8), rng.dirichlet(np.ones(3)).tolist())),
                       {0: 0, 4: int(rng.integers(100, 1000)), 8: int(rng.integers(1000, 2000))},
                       {0: 0.0, 4: float(rng.uniform(1, 5)), 8: float(rng.uniform(5, 9))}) for i in range(9)]
    exact = combine(0, 0.0, gates)  # 3^9 = 19,683 values: below MAX_SUPPORT, exact
    assert "grid" not in exact.notes[-1]
    monkeypatch.setattr(dfs, "MAX_SUPPORT", 200)
    merged = combine(0, 0.0, gates)
    assert "grid" in merged.notes[-1]
    span = exact.latency_cycles_by_bits[8]
    for k in ("p50_latency_cycles", "p95_latency_cycles"):
        assert abs(getattr(merged, k) - getattr(exact, k)) <= 9 * span / 200  # <= one grid step per merge
    assert merged.expected_latency_cycles == exact.expected_latency_cycles  # the mean never uses the grid
