"""Issue 13 items 2, 3 and 8: the README's fpga-optimize form, file kinds in info/validate, output
paths, error summaries, help text and the workload description."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from accelsim import cli
from accelsim.cli import detect_kind, main

ROOT = Path(__file__).resolve().parent.parent
ZZ = ROOT / "tests" / "data" / "reference" / "zigzag_inputs"


@pytest.fixture
def run(capsys):
    def go(*argv) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return go


# --- item 2 -------------------------------------------------------------------------------------
def test_fpga_device_presets_equal_the_shipped_configs():
    from accelsim.dse.fpga.cli import DEVICE_BASE_CONFIGS, load_device
    from accelsim.hardware.io import hardware_to_dict, load_hardware

    for name, path in (("zu3eg", "zu3eg.yaml"), ("ultra96", "zu3eg.yaml"), ("zcu104", "zcu104.yaml"),
                       ("ZU7EV", "zcu104.yaml")):
        assert hardware_to_dict(load_device(name)) == hardware_to_dict(load_hardware(ROOT / "hw_configs" / path))
    assert set(DEVICE_BASE_CONFIGS) == {"zu3eg", "ultra96", "zu7ev", "zcu104"}


def test_fpga_optimize_readme_form(run):
    code, out, err = run("fpga-optimize", "--workload", "zoo:tiny_cnn", "--device", "zu3eg", "--pe-in", "4,8",
                         "--pe-out", "4,8", "--pe-pix", "1", "--depths", "512", "--no-simulate")
    assert code == 0, err
    assert "zu3eg" in out
    code, _, err = run("fpga-optimize", "--workload", "zoo:tiny_cnn", "--device", "zu9")
    assert code == 2 and "not a device preset; presets: ultra96, zcu104, zu3eg, zu7ev" in err


# --- item 3 -------------------------------------------------------------------------------------
KINDS = [
    (ROOT / "recipes" / "pattern_4bit.yaml", "recipe"),
    (ROOT / "recipes" / "mixed_precision.yaml", "recipe"),
    (ROOT / "sweeps" / "systolic_resnet50.yaml", "sweep"),
    (ROOT / "sweeps" / "coexplore_tiny_cnn.yaml", "sweep"),
    (ZZ / "workload" / "gemm_layer.yaml", "zigzag workload"),
    (ZZ / "workload" / "resnet18.yaml", "zigzag workload"),
    (ZZ / "hardware" / "tpu_like.yaml", "zigzag accelerator"),
    (ZZ / "mapping" / "tpu_like.yaml", "zigzag mapping"),
    (ROOT / "models" / "resnet18.yaml", "workload"),
    (ROOT / "hw_configs" / "isaac_like.yaml", "hardware"),
]


@pytest.mark.parametrize("path, kind", KINDS, ids=[f"{p.parent.name}/{p.name}" for p, _ in KINDS])
def test_validate_and_info_detect_the_kind(run, path, kind):
    assert detect_kind(str(path)) == kind
    # ZigZag's own tpu_like.yaml repeats the key 'ports': read as it is, with one warning line
    warn = "duplicate key 'ports'" if path == ZZ / "hardware" / "tpu_like.yaml" else None
    from accelsim import _validation

    _validation._WARNED_DUPLICATES.clear()  # warned once per file and process: start afresh
    code, out, err = run("validate", path)
    assert (code, out.strip()) == (0, f"{path}: valid {kind}")
    assert all(warn in line for line in err.splitlines()) and err if warn else err == "", err
    _validation._WARNED_DUPLICATES.clear()
    code, out, err = run("info", path)
    assert code == 0 and "Field required" not in out
    assert (warn in err) if warn else err == ""


def test_every_shipped_recipe_and_sweep_validates(run):
    files = sorted((ROOT / "recipes").glob("*.yaml")) + sorted((ROOT / "sweeps").glob("*.yaml"))
    code, out, err = run("validate", *files)
    assert code == 0, err
    assert len(out.splitlines()) == len(files)


def test_info_describes_sweeps_and_recipes(run):
    code, out, _ = run("info", ROOT / "sweeps" / "systolic_resnet50.yaml")
    assert code == 0
    assert "search: grid, 1,800 points" in out and "rows: pow2 [16, 256]  (5 values)" in out
    assert "objectives: latency_ms (min), energy_uj (min)" in out
    code, out, _ = run("info", ROOT / "recipes" / "pattern_4bit.yaml")
    assert code == 0 and "recipe 'pattern_4bit'" in out and "prune: kind=pattern" in out and "override 0:" in out
    code, out, _ = run("info", ZZ / "mapping" / "tpu_like.yaml")
    assert "default: spatial D1: K32; D2: C32" in out


def test_a_bad_recipe_is_reported_as_a_recipe(run, tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("accelsim_recipe: 1\nprune: {kind: nm, n: 2}\n")
    code, _, err = run("validate", bad)
    assert code == 2 and "layers" not in err and "prune" in err


# --- item 8 -------------------------------------------------------------------------------------
def test_out_into_a_missing_directory_is_an_error(run, tmp_path):
    missing = tmp_path / "nope" / "dir" / "r.csv"
    code, out, err = run("simulate", "-w", "zoo:tiny_cnn", "--hw", ROOT / "hw_configs" / "systolic_32x32_is.yaml",
                         "--out", missing)
    assert code == 2 and out == "" and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "nope").exists()
    code, _, err = run("simulate", "-w", "zoo:tiny_cnn", "--hw", ROOT / "hw_configs" / "systolic_32x32_is.yaml",
                       "--plot", tmp_path)
    assert code == 2 and "is a directory" in err


def test_unknown_key_is_reported_with_the_missing_ones(run, tmp_path):
    bad = tmp_path / "w.yaml"
    bad.write_text("accelsim_workload: 1\nlyers: []\n")
    code, _, err = run("validate", bad)
    assert code == 2
    assert "field 'lyers': unknown field" in err and "'layers' missing" in err and "'name' missing" in err
    hw = tmp_path / "h.yaml"
    hw.write_text("kind: systolic\nname: x\nrowz: 4\n")
    code, _, err = run("validate", hw)
    assert code == 2 and "field 'rowz': unknown field" in err and "'rows' missing" in err


def test_help_is_plain_text():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "``" not in text, name
    assert "fill + compute + stall + drain" in sub.choices["simulate"].format_help()


def test_info_shapes_and_density_of_weight_layers(run, tmp_path):
    d = yaml.safe_load((ROOT / "models" / "resnet18.yaml").read_text())
    for layer in d["layers"]:
        if layer["op"] in ("conv2d", "linear"):
            layer["compression"] = {"sparsity": {"kind": "nm", "n": 2, "m": 4}}
    path = tmp_path / "r18_24.yaml"
    path.write_text(yaml.safe_dump(d))
    code, out, _ = run("info", path)
    assert code == 0
    assert "compressed layers: 21 of 21 with weights; mean density 0.50 over those 21 layers" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and not line.startswith(" ")}
    head = rows["layer"]
    conv1 = dict(zip(head, rows["conv1"]))
    assert (conv1["C"], conv1["K"], conv1["H"], conv1["W"], conv1["R"], conv1["S"], conv1["stride"]) == \
        ("3", "64", "224", "224", "7", "7", "2")
    fc = dict(zip(head, rows["fc"]))
    assert (fc["C"], fc["K"], fc["R"], fc["S"]) == ("512", "1000", "1", "1")
    add = dict(zip(head, rows["layer1.0.add"]))
    assert add["density"] == "-" and add["C"] == "-"
    assert re.search(r"R/S: kernel height/width", out)


# --- item 7 -------------------------------------------------------------------------------------
def test_a_swept_point_is_named_by_its_axis_values(tmp_path):
    import json

    from accelsim.dse import load, run_sweep
    from accelsim.dse.plotting import _resolved, resimulate
    from accelsim.dse.store import ResultsStore

    sweep = {"name": "names", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
             "workloads": [{"zoo": "resnet18", "resolution": 32}],
             "axes": {"rows": [16, 64], "cols": {"same_as": "rows"}, "dram.bw_gbps": [12.8]},
             "objectives": ["latency_ms", "energy_uj"]}
    store = tmp_path / "s.sqlite"
    run_sweep(sweep, store, workers=1)
    df = load(store)
    names = {json.loads(h)["name"] for h in df["hardware_json"]}
    assert names == {"systolic-128x128-os[rows=16,cols=16,dram.bw_gbps=12.8]",
                     "systolic-128x128-os[rows=64,cols=64,dram.bw_gbps=12.8]"}
    best = df.sort_values("latency_ms").iloc[0]
    with ResultsStore(store) as st:
        rep = resimulate(best, _resolved(st, "names"))
    assert rep.hardware == json.loads(best["hardware_json"])["name"] and "rows=64" in rep.hardware
