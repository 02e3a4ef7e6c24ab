"""kind: loopnest -- a ZigZag 3.9.1 accelerator file as --hw, every conv/GEMM on its searched mapping."""
from __future__ import annotations

import pytest

import accelsim
from accelsim.errors import ConfigError
from accelsim.hardware import load_hardware
from accelsim.hardware.loopnest import LoopNestAccelerator
from accelsim.mapping.workload_mapping import map_workload_detailed
from accelsim.mapping.zigzag_runs import load_reference_run


@pytest.fixture(scope="module")
def tpu(ref):
    acc = ref / "zigzag_inputs" / "hardware" / "tpu_like.yaml"
    mp = ref / "zigzag_inputs" / "mapping" / "tpu_like.yaml"
    onnx = ref / "zigzag_inputs" / "workload" / "resnet18.onnx"
    hw = load_hardware(acc).model_copy(update={"mapping_file": str(mp)})
    return onnx, acc, mp, hw, accelsim.simulate(onnx, hw)


def test_zigzag_file_loads_as_loopnest(ref):
    hw = load_hardware(ref / "zigzag_inputs" / "hardware" / "tpu_like.yaml")
    assert isinstance(hw, LoopNestAccelerator) and hw.kind == "loopnest" and hw.name == "tpu_like"
    assert hw.num_pes == 32 * 32
    assert hw.dram.bw_gbps == pytest.approx(64 * 1000 / 8000)  # 64-bit DRAM port at 1 GHz


def test_per_layer_energy_is_the_mappers(tpu):
    onnx, acc, mp, hw, rep = tpu
    ref = map_workload_detailed(onnx, acc, mp, "latency")
    mapped = [s for s in rep.layers if s.macs]
    assert {s.layer for s in mapped} == set(ref)
    for s in mapped:
        assert s.energy_pj == pytest.approx(ref[s.layer].result.cost.energy_pj, rel=1e-9)
        assert s.macs == ref[s.layer].result.layer.macs and s.engine == "loopnest" and s.mapping.startswith("spatial")
        assert 0 < s.utilization <= 1 and s.compute_utilization <= 1
        assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
        assert s.fill_cycles + s.compute_cycles + s.stall_cycles + s.drain_cycles == s.latency_cycles
        levels = {k for k in s.extra if k.startswith("energy_") and k.endswith("_pj")}
        assert sum(s.extra[k] for k in levels) + s.energy_by_component_pj["mac"] == pytest.approx(s.energy_pj, rel=1e-9)
    skipped = [s for s in rep.layers if not s.macs]
    assert skipped and all(s.latency_cycles == 0 and s.energy_pj == 0 and "skipped" in s.notes[0] for s in skipped)


def test_against_zigzag_run(tpu, ref):
    *_, rep = tpu
    _, rows = load_reference_run(ref, "resnet18_tpu_like")
    by = {s.layer: s for s in rep.layers}
    lat = sum(by[r.name].latency_cycles for _, _, r in rows) / sum(r.latency_cycles for _, _, r in rows)
    energy = sum(by[r.name].energy_pj for _, _, r in rows) / sum(r.energy_pj for _, _, r in rows)
    model = sum(by[r.name].extra["mapping_latency_cycles"] for _, _, r in rows) / sum(r.latency_cycles for _, _, r in rows)
    assert energy == pytest.approx(1.0, abs=0.01)
    assert model == pytest.approx(1.0, abs=0.02)  # the cost model's latency: bench_zigzag_mapping's tolerance
    assert lat == pytest.approx(1.0, abs=0.06)  # the pipeline's timing of the same mappings (measured 0.956)


def test_cli(tmp_path, ref, root, capsys):
    from accelsim.cli import main

    z = ref / "zigzag_inputs"
    out = tmp_path / "r.csv"
    wl = z / "workload" / "gemm_layer.yaml"
    assert main(["simulate", "--workload", str(wl), "--hw", str(z / "hardware" / "tpu_like.yaml"), "--mapping",
                 str(z / "mapping" / "tpu_like.yaml"), "--objective", "energy", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "objective energy" in text and out.exists() and "mapping" in out.read_text().splitlines()[0]
    assert main(["simulate", "--workload", str(wl), "--hw", str(root / "hw_configs" / "systolic_32x32_is.yaml"),
                 "--mapping", str(z / "mapping" / "tpu_like.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mapping" in err and "systolic" in err


def test_bad_accelerator_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="accelerator"):
        LoopNestAccelerator.model_validate({"kind": "loopnest", "accelerator": str(tmp_path / "missing.yaml")})
