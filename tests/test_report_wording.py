"""Issue 13 items 5 and 6: reports say exactly what happened.

Ratios are stated in the direction that is true, the cycle split adds up to the latency in the
summary and in the table, the bottleneck reason is made of the layer's own numbers, notes reach
the CLI table, and every layer slower or costlier than its dense original says why.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import accelsim
from accelsim.cli import main
from accelsim.report import LayerStats, Report, dense_gap_note, energy_phrase, speed_phrase

ROOT = Path(__file__).resolve().parent.parent
SPARSE_HW = ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml"


def _stats(name: str, *, fill=0, compute=100, stall=0, drain=0, energy=None, macs=100, **kw) -> LayerStats:
    return LayerStats(layer=name, op="conv2d", engine="systolic", macs=macs, dense_macs=100, compute_cycles=compute,
                      stall_cycles=stall, fill_cycles=fill, drain_cycles=drain, utilization=0.5,
                      compute_utilization=0.5, mapping_efficiency=1.0, dram_read_bytes=kw.pop("rd", 0.0),
                      dram_write_bytes=0.0, compulsory_dram_bytes=0.0, dram_busy_cycles=0,
                      energy_by_component_pj=energy or {"mac": 1000.0}, **kw)


@pytest.mark.parametrize("ratio, text", [(1.21, "1.21x faster"), (0.46, "2.17x slower"), (1.0, "same latency"),
                                         (None, "n/a")])
def test_speed_phrase(ratio, text):
    assert speed_phrase(ratio) == text


@pytest.mark.parametrize("ratio, text", [(2.2, "2.20x more energy"), (0.45, "2.22x less energy"),
                                         (1.001, "same energy")])
def test_energy_phrase(ratio, text):
    assert energy_phrase(ratio) == text


def test_summary_states_the_true_direction():
    """The issue's case: faster but 2.2x more energy must not read "0.45x less energy"."""
    layers = [_stats("a", compute=1000, energy={"mac": 2200.0}, dense_latency_cycles=1210, dense_energy_pj=1000.0)]
    rep = Report(workload="w", hardware="h", hardware_kind="systolic", clock_mhz=1000.0, layers=layers,
                 compared_to_dense=True, dense_latency_cycles=1210, dense_energy_pj=1000.0)
    text = rep.summary_text()
    assert "1.21x faster" in text and "2.20x more energy" in text
    assert "less energy" not in text
    assert "1 layer(s) slower or costlier than dense (a)" in text
    table = rep.table()
    assert "1.21x faster" in table and "2.20x more" in table
    slow = Report(workload="w", hardware="h", hardware_kind="systolic", clock_mhz=1000.0, compared_to_dense=True,
                  layers=[_stats("a", compute=2000, dense_latency_cycles=920, dense_energy_pj=2000.0)],
                  dense_latency_cycles=920, dense_energy_pj=2000.0)
    assert "2.17x slower" in slow.summary_text() and "2.00x less energy" in slow.summary_text()
    assert not re.search(r"\b0\.\d+x (faster|slower|more|less)", slow.summary_text() + slow.table())


def test_dense_gap_note_names_what_grew():
    dense = _stats("l", fill=100, compute=1000, stall=200, drain=10, rd=4096.0,
                   dram_read_bytes_by_operand={"filter": 4096.0}, energy={"mac": 1000.0, "dram": 500.0})
    sparse = _stats("l", fill=100, compute=900, stall=800, drain=10, rd=6144.0, macs=90,
                    dram_read_bytes_by_operand={"filter": 3072.0, "index": 3072.0},
                    extra={"bank_conflict_cycles": 50.0}, energy={"mac": 900.0, "dram": 900.0},
                    bottleneck="dram_bandwidth")
    note = dense_gap_note(sparse, dense)
    assert note is not None
    assert note.startswith("1.38x slower than dense (1,810 vs 1,310 cycles; bottleneck dram_bandwidth)")
    assert "stall +600 cycles" in note and "compute" not in note.split(":")[1].split(";")[0]
    assert "index +3 KB" in note and "overhead bank_conflict_cycles 50" in note and "10% of MACs skipped" in note
    assert "1.20x the dense energy" in note and "dram +0.0004 uJ" in note
    assert dense_gap_note(dense, dense) is None
    faster = _stats("l", compute=500, energy={"mac": 100.0})
    assert dense_gap_note(faster, dense) is None


@pytest.fixture(scope="module")
def slow_pruned(tmp_path_factory):
    """ResNet-18 at 90% density (CSR): on the zero-skipping 32x32 array the index traffic makes
    several layers slower and costlier than dense."""
    d = yaml.safe_load((ROOT / "models" / "resnet18.yaml").read_text())
    for layer in d["layers"]:
        if layer["op"] in ("conv2d", "linear"):
            layer["compression"] = {"sparsity": {"kind": "unstructured", "density": 0.9, "format": "csr"}}
    path = tmp_path_factory.mktemp("wl") / "r18_90.yaml"
    path.write_text(yaml.safe_dump(d))
    return path, accelsim.simulate(path, SPARSE_HW)


def test_every_worse_layer_says_why(slow_pruned):
    _, rep = slow_pruned
    worse = [s for s in rep.layers if s.latency_cycles > s.dense_latency_cycles * 1.005
             or s.energy_pj > s.dense_energy_pj * 1.005]
    assert len(worse) >= 5
    for s in worse:
        why = [n for n in s.notes if "than dense" in n or "the dense energy" in n]
        assert len(why) == 1, s.layer
        if s.latency_cycles > s.dense_latency_cycles * 1.005:
            assert f"vs {s.dense_latency_cycles:,} cycles" in why[0] and "index +" in why[0]
    better = [s for s in rep.layers if s not in worse]
    assert all(not any("than dense" in n for n in s.notes) for s in better)


def test_cycle_split_adds_up_in_summary_and_table(slow_pruned):
    _, rep = slow_pruned
    s = rep.summary()
    assert s["fill_cycles"] + s["compute_cycles"] + s["stall_cycles"] + s["drain_cycles"] == s["latency_cycles"]
    text = rep.summary_text()
    assert (f"latency {s['latency_cycles']:,} cycles" in text and
            f"= fill {s['fill_cycles']:,} + compute {s['compute_cycles']:,} + stall {s['stall_cycles']:,} + drain "
            f"{s['drain_cycles']:,} cycles" in text)
    lines = rep.table().splitlines()
    head = lines[0].split()
    idx = {h: head.index(h) for h in ("fill_cycles", "compute_cycles", "stall_cycles", "drain_cycles",
                                      "latency_cycles")}
    for line, layer in zip(lines[1:1 + len(rep.layers)], rep.layers):
        cells = line.split()
        assert cells[0] == layer.layer
        parts = [int(cells[idx[h]]) for h in ("fill_cycles", "compute_cycles", "stall_cycles", "drain_cycles")]
        assert sum(parts) == int(cells[idx["latency_cycles"]]) == layer.latency_cycles


def test_bottleneck_reason_uses_the_layers_numbers(slow_pruned):
    _, rep = slow_pruned
    for s in rep.layers:
        r = s.bottleneck_reason
        if s.stall_cycles == 0:
            assert "stall" not in r and "waits" not in r, (s.layer, r)
        if s.bottleneck.startswith("dram"):
            for part in ("fill", "stall", "drain"):
                n = getattr(s, f"{part}_cycles")
                assert (f"{part} {n:,} (" in r) == (n > 0), (s.layer, part, r)
            assert f"of {s.latency_cycles:,} cycles (compute {s.compute_cycles:,})" in r
    dense = accelsim.simulate(ROOT / "models" / "resnet18.yaml", ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    add = next(s for s in dense.layers if s.op == "elementwise" and s.stall_cycles == 0)
    assert "compute waits" not in add.bottleneck_reason and f"fill {add.fill_cycles:,}" in add.bottleneck_reason


def test_cli_table_shows_notes_as_footnotes(slow_pruned, capsys):
    path, rep = slow_pruned
    assert main(["simulate", "-w", str(path), "--hw", str(SPARSE_HW)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head[-1] == "notes" and "speed_vs_dense" in head and "latency_cycles" in head
    notes = sorted({n for s in rep.layers for n in s.notes})
    foot = dict(re.findall(r"^  \[(\d+)\] (.*)$", out, flags=re.M))
    assert sorted(foot.values()) == notes
    row = next(line for line in out.splitlines() if line.split() and line.split()[0] == rep.layers[0].layer)
    refs = row.split()[-1].split(",")
    assert [foot[r] for r in refs] == rep.layers[0].notes
    assert "less energy" not in out or "0." not in out.split("vs dense")[1].split("\n")[0]
