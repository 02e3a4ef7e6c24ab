"""Bad input -> one clear line naming the file and field; the CLI exits with 2 and no traceback."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.errors import ConfigError
from accelsim.hardware import load_hardware
from accelsim.workload import load_workload

GOOD_HW = """kind: systolic
rows: 8
cols: 8
ifmap_sram: {size_kb: 8}
filter_sram: {size_kb: 8}
ofmap_sram: {size_kb: 8}
dram: {bw_gbps: 10}
"""
GOOD_WL = """name: w
layers:
  - {name: c1, op: conv2d, in_channels: 3, out_channels: 8, in_h: 8, in_w: 8, kernel: 3, padding: 1}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


WORKLOAD_CASES = [
    ("malformed.yaml", "name: w\nlayers: [\n", ["malformed YAML", "line"]),
    ("notmap.yaml", "- a\n- b\n", ["expected a mapping"]),
    ("unknown_field.yaml", GOOD_WL.replace("padding: 1", "padding: 1, kernal: 3"), ["layers[0](c1).kernal", "unknown field"]),
    ("negative.yaml", GOOD_WL.replace("in_channels: 3", "in_channels: -3"), ["layers[0](c1).in_channels", "greater than 0"]),
    ("zero.yaml", GOOD_WL.replace("in_h: 8", "in_h: 0"), ["in_h", "greater than 0"]),
    ("groups.yaml", GOOD_WL.replace("padding: 1", "padding: 1, groups: 2"), ["layers[0](c1)", "divisible by groups"]),
    ("kernel_too_big.yaml", GOOD_WL.replace("kernel: 3, padding: 1", "kernel: 11"), ["does not fit input"]),
    ("unknown_op.yaml", GOOD_WL.replace("op: conv2d", "op: conv3d"), ["layers[0](c1)", "conv3d"]),
    ("dup.yaml", GOOD_WL + "  - {name: c1, op: linear, in_features: 4, out_features: 4}\n", ["used twice"]),
    ("nm.yaml", GOOD_WL.replace("padding: 1}", "padding: 1, compression: {sparsity: {kind: nm, n: 4, m: 2}}}"),
     ["compression.sparsity", "n <= m"]),
    ("density.yaml", GOOD_WL.replace("padding: 1}", "padding: 1, compression: {sparsity: {kind: unstructured, density: 1.5}}}"),
     ["compression.sparsity.density"]),
    ("bits.yaml", GOOD_WL.replace("padding: 1}", "padding: 1, compression: {quant: {weight_bits: 0}}}"),
     ["compression.quant.weight_bits"]),
    ("nolayers.yaml", "name: w\nlayers: []\n", ["layers"]),
    ("hwfile.yaml", GOOD_HW, ["hardware file"]),
    ("topo.csv", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc1,8,8,3,3,x,4,1,\n",
     ["line 2 (c1)", "Channels", "positive integer"]),
    ("short.csv", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc1,8,8,3\n",
     ["line 2", "columns"]),
    ("neg.csv", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc1,8,8,3,3,-1,4,1,\n",
     ["Channels", "positive"]),
    ("bignm.csv", "Layer Name, M, N, K,\ng,4,4,4,5:4,\n", ["N:M"]),
    ("big_kernel.csv", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nc1,4,4,7,7,3,4,1,\n",
     ["line 2 (c1)", "does not fit"]),
    ("empty.csv", "", ["empty"]),
    ("weird.txt", "x", ["unknown workload file type"]),
]


@pytest.mark.parametrize("name,text,needles", WORKLOAD_CASES, ids=[c[0] for c in WORKLOAD_CASES])
def test_bad_workloads(tmp_path, name, text, needles):
    p = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_workload(p)
    msg = str(info.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, msg
    assert "\n" not in msg


HW_CASES = [
    ("nokind.yaml", GOOD_HW.replace("kind: systolic\n", ""), ["kind", "missing"]),
    ("badkind.yaml", GOOD_HW.replace("kind: systolic", "kind: quantum"), ["unknown hardware kind 'quantum'", "systolic"]),
    ("unknown.yaml", GOOD_HW + "colz: 3\n", ["colz", "unknown field"]),
    ("zero.yaml", GOOD_HW.replace("rows: 8", "rows: 0"), ["field 'rows'", "greater than 0"]),
    ("negsram.yaml", GOOD_HW.replace("ifmap_sram: {size_kb: 8}", "ifmap_sram: {size_kb: -8}"), ["ifmap_sram.size_kb"]),
    ("dataflow.yaml", GOOD_HW + "dataflow: xs\n", ["dataflow", "'os'"]),
    ("bw.yaml", GOOD_HW.replace("bw_gbps: 10", "bw_gbps: 0"), ["dram.bw_gbps"]),
    ("type.yaml", GOOD_HW.replace("rows: 8", "rows: eight"), ["rows", "integer"]),
    ("malformed.yaml", "kind: systolic\nrows: [8\n", ["malformed YAML"]),
    ("workload.yaml", GOOD_WL, ["workload file"]),
    ("missing.yaml", None, ["file not found"]),
]


@pytest.mark.parametrize("name,text,needles", HW_CASES, ids=[c[0] for c in HW_CASES])
def test_bad_hardware(tmp_path, name, text, needles):
    p = tmp_path / name if text is None else _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_hardware(p)
    msg = str(info.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, msg


CFG = """[general]
run_name = t
[architecture_presets]
ArrayHeight: 8
ArrayWidth: 8
IfmapSramSzkB: 8
FilterSramSzkB: 8
OfmapSramSzkB: 8
Dataflow : os
Bandwidth : 4
[run_presets]
InterfaceBandwidth: USER
"""

CFG_CASES = [
    ("noheader.cfg", "ArrayHeight: 8\n", ["malformed cfg"]),
    ("unknownkey.cfg", CFG.replace("Bandwidth : 4", "Bandwidth : 4\nArrayDepth: 3"), ["architecture_presets.arraydepth", "unknown key"]),
    ("dataflow.cfg", CFG.replace("Dataflow : os", "Dataflow : rs"), ["Dataflow", "os, ws or is"]),
    ("zero.cfg", CFG.replace("ArrayHeight: 8", "ArrayHeight: 0"), ["arrayheight", "> 0"]),
    ("missing.cfg", CFG.replace("IfmapSramSzkB: 8\n", ""), ["ifmapsramszkb", "missing"]),
    ("mode.cfg", CFG.replace("USER", "MAGIC"), ["InterfaceBandwidth", "CALC or USER"]),
    ("notint.cfg", CFG.replace("ArrayWidth: 8", "ArrayWidth: wide"), ["arraywidth", "integer"]),
    ("section.cfg", CFG + "[extras]\nfoo: 1\n", ["unknown section [extras]"]),
]


@pytest.mark.parametrize("name,text,needles", CFG_CASES, ids=[c[0] for c in CFG_CASES])
def test_bad_scalesim_cfg(tmp_path, name, text, needles):
    p = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_hardware(p)
    msg = str(info.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, msg


def test_good_files_load(tmp_path):
    assert load_hardware(_write(tmp_path, "hw.yaml", GOOD_HW)).rows == 8
    assert load_workload(_write(tmp_path, "wl.yaml", GOOD_WL)).layers[0].out_h == 8
    assert load_hardware(_write(tmp_path, "a.cfg", CFG)).stall_model == "scalesim_user"


@pytest.mark.parametrize("case", [WORKLOAD_CASES[2], WORKLOAD_CASES[4], WORKLOAD_CASES[14]], ids=lambda c: c[0])
def test_cli_bad_workload_exit_2(tmp_path, capsys, case):
    name, text, needles = case
    wl = _write(tmp_path, name, text)
    hw = _write(tmp_path, "hw.yaml", GOOD_HW)
    assert main(["simulate", "--workload", str(wl), "--hw", str(hw)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accelsim: error: ") and str(wl) in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_cli_bad_hardware_exit_2(tmp_path, capsys):
    wl = _write(tmp_path, "wl.yaml", GOOD_WL)
    hw = _write(tmp_path, "hw.yaml", GOOD_HW.replace("rows: 8", "rows: -1"))
    assert main(["simulate", "--workload", str(wl), "--hw", str(hw)]) == 2
    err = capsys.readouterr().err
    assert "field 'rows'" in err and "Traceback" not in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    """The real entry point in a subprocess: exit code 2, one line on stderr."""
    wl = _write(tmp_path, "wl.yaml", GOOD_WL.replace("in_h: 8", "in_h: -8"))
    hw = _write(tmp_path, "hw.yaml", GOOD_HW)
    proc = subprocess.run([sys.executable, "-m", "accelsim.cli", "simulate", "--workload", str(wl), "--hw", str(hw)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "in_h" in proc.stderr


def test_cli_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--workload", "x.yaml"])  # --hw missing
    assert info.value.code == 2


def test_cli_unsupported_layer_is_one_line(tmp_path, capsys):
    # SCALE-Sim USER-mode emulation cannot run a pooling layer: a reason, not a fallback
    cfg = _write(tmp_path, "u.cfg", CFG)
    wl = _write(tmp_path, "wl.yaml", "name: w\nlayers:\n  - {name: p, op: pool, channels: 4, in_h: 8, in_w: 8, kernel: 2, stride: 2}\n")
    assert main(["simulate", "--workload", str(wl), "--hw", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cannot run on systolic" in err and "SCALE-Sim" in err
