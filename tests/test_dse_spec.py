"""Sweep files and axes: generators, and errors that name the sweep file and the field."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim.dse.axes import grid_size, iter_grid, iter_random, parse_axis
from accelsim.dse.spec import load_sweep
from accelsim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_axis_generators():
    assert parse_axis("a", {"pow2": [16, 256]}, "s").values() == [16, 32, 64, 128, 256]
    assert parse_axis("a", {"pow2": [20, 100]}, "s").values() == [32, 64]
    assert parse_axis("a", {"range": [64, 256, 64]}, "s").values() == [64, 128, 192, 256]
    assert parse_axis("a", {"range": [0.1, 0.5, 0.2]}, "s").values() == [0.1, 0.3, 0.5]
    assert parse_axis("a", {"linspace": [0.2, 0.6, 3]}, "s").values() == [0.2, 0.4, 0.6]
    assert parse_axis("a", {"geomspace": [1, 100, 3]}, "s").values() == [1.0, 10.0, 100.0]
    assert parse_axis("a", ["os", "ws"], "s").values() == ["os", "ws"]


def test_grid_enumeration_and_ties():
    axes = [parse_axis("rows", [8, 16], "s"), parse_axis("cols", {"same_as": "rows"}, "s"),
            parse_axis("energy.mac_pj", [0.1, 0.2, 0.3], "s")]
    pts = list(iter_grid(axes))
    assert grid_size(axes) == len(pts) == 6
    assert all(p["rows"] == p["cols"] for p in pts)
    assert list(pts[0]) == ["rows", "energy.mac_pj", "cols"] or set(pts[0]) == {"rows", "cols", "energy.mac_pj"}
    fast = list(iter_grid(axes, fastest=["energy.mac_pj"]))
    assert [p["energy.mac_pj"] for p in fast[:3]] == [0.1, 0.2, 0.3]  # innermost
    slow = list(iter_grid(axes, fastest=["rows"]))
    assert [p["rows"] for p in slow[:2]] == [8, 16]


def test_random_draws_follow_seed_and_bounds():
    axes = [parse_axis("x", {"uniform": [1, 2]}, "s"), parse_axis("y", {"loguniform": [1e-3, 1]}, "s"),
            parse_axis("z", {"randint": [3, 5]}, "s"), parse_axis("w", [7, 8], "s")]
    a = list(iter_random(axes, 300, seed=1))
    assert a == list(iter_random(axes, 300, seed=1))
    assert a != list(iter_random(axes, 300, seed=2))
    xs, ys, zs = (np.array([p[k] for p in a]) for k in "xyz")
    assert xs.min() >= 1 and xs.max() <= 2 and ys.min() >= 1e-3 and ys.max() <= 1
    assert set(zs) == {3, 4, 5} and {p["w"] for p in a} == {7, 8}
    assert np.median(np.log10(ys)) == pytest.approx(-1.5, abs=0.3)  # log-uniform, not uniform


def write(tmp_path, data, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


BASE = {"name": "t", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"), "workloads": ["zoo:tiny_cnn"],
        "axes": {"rows": [8, 16]}}


@pytest.mark.parametrize("change,field,needle", [
    ({"axes": {"rowz": [8]}}, "axes.rowz", "unknown hardware field 'rowz'"),
    ({"axes": {"dram.bandwidth": [8]}}, "axes.dram.bandwidth", "known fields: bw_gbps"),
    ({"axes": {"dram": [8]}}, "axes.dram", "is a section"),
    ({"axes": {"rows": {"linspace": [1, 2]}}}, "axes.rows", "linspace needs 3 numbers"),
    ({"axes": {"rows": {"uniform": [8, 64]}}}, "axes.rows", "a grid needs finite values"),
    ({"axes": {"rows": {"steps": [8, 64]}}}, "axes.rows", "unknown axis generator 'steps'"),
    ({"axes": {"cols": {"same_as": "rowz"}}}, "axes.cols", "unknown axis 'rowz'"),
    ({"axes": {"rows": {"range": [8, 4, 2]}}}, "axes.rows", "is empty"),
    ({"objectives": ["speed"]}, "objectives[0]", "unknown metric 'speed'"),
    ({"objectives": ["area"]}, "objectives", "has no area model"),
    ({"objectives": ["accuracy"]}, "objectives", "comes from the front-end"),
    ({"constraints": ["area < ten"]}, "constraints[0]", "expected 'metric <op> number'"),
    ({"constraints": ["speed >= 3"]}, "constraints[0]", "unknown metric or axis"),
    ({"search": {"method": "random"}}, "search", "needs samples"),
    ({"search": {"method": "anneal"}}, "search.method", "'grid', 'random', 'nsga2', 'differentiable' or 'distill'"),
    ({"workloads": ["zoo:resnet51"]}, "workloads[0]", "unknown model"),
    ({"workloads": ["missing.yaml"]}, "workloads[0]", "not found"),
    ({"workloads": []}, None, "give workloads"),
    ({"hardware": "nope.yaml"}, "hardware", "file not found"),
    ({"speed": 3}, "speed", "unknown field"),
    ({"name": "has space"}, "name", "should match pattern"),
])
def test_bad_sweep_files_name_file_and_field(tmp_path, change, field, needle):
    p = write(tmp_path, {**BASE, **change})
    with pytest.raises(ConfigError) as err:
        load_sweep(p)
    msg = str(err.value)
    assert str(p) in msg and needle in msg, msg
    if field:
        assert f"field '{field}'" in msg, msg
    assert "\n" not in msg


def test_malformed_yaml_and_relative_paths(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: t\naxes: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_sweep(p)
    # hardware given relative to the sweep file
    sub = tmp_path / "sweeps"
    sub.mkdir()
    (tmp_path / "hw.yaml").write_text((ROOT / "hw_configs" / "systolic_32x32_is.yaml").read_text())
    s = load_sweep(write(sub, {**BASE, "hardware": "../hw.yaml"}))
    assert s.base_hardware["rows"] == 32 and s.base_hardware["dataflow"] == "is"


def test_shipped_sweeps_load():
    for f in sorted((ROOT / "sweeps").glob("*.yaml")):
        s = load_sweep(f)
        assert (s.axes or s.spec.search.method == "distill") and s.objectives, f
