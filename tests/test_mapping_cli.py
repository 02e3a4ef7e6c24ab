"""`accelsim map`: prints the best mappings of a layer; refuses kinds without a loop-nest hierarchy."""
from __future__ import annotations

from pathlib import Path

from accelsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZZ = ROOT / "tests" / "data" / "reference" / "zigzag_inputs"


def test_map_prints_best_mappings_on_a_systolic_config(capsys):
    rc = main(["map", "--workload", str(ROOT / "models" / "tiny_cnn.yaml"), "--hw",
               str(ROOT / "hw_configs" / "systolic_32x32_is.yaml"), "--layer", "conv2", "--top", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "layer conv2" in out and out.count("  spatial ") == 2
    assert "energy_pj" in out


def test_map_refuses_a_kind_without_hierarchy(capsys):
    rc = main(["map", "--workload", str(ROOT / "models" / "tiny_cnn.yaml"), "--hw",
               str(ROOT / "hw_configs" / "gather_scatter_sve128.yaml"), "--layer", "conv2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "field 'kind'" in err and "Traceback" not in err


def test_map_unknown_layer_names_the_layers(capsys):
    rc = main(["map", "--workload", str(ROOT / "models" / "tiny_cnn.yaml"), "--hw",
               str(ZZ / "hardware" / "tpu_like.yaml"), "--layer", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "conv2" in err
