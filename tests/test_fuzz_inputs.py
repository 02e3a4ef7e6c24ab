"""Malformed inputs of every kind through the CLI: exit 0 with sane output or exit 2 with one error
line; never exit 1, a traceback or a hang (``signal.alarm`` turns a hang into a failure that prints
the input; nothing here measures time). ``benchmarks/fuzz_inputs.py`` runs many more cases.
"""
from __future__ import annotations

import io
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_support as fz  # noqa: E402

from accelsim.cli import main  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _check(case: fz.Case, workdir: Path) -> fz.Outcome:
    """Each case in a forked child: 60 s alarm (a hang fails the case, no time is measured) and at
    most 2 GiB more address space than this process (a blow-up fails the case, never the suite)."""
    o = fz.run_forked(case, workdir, timeout_s=60, mem_mb=2048)
    assert not o.problems, fz.first_problem_text(case, o)
    return o


# --- hypothesis: random single-field damage of each input kind --------------------------------

_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.lists(st.integers(), max_size=3),
    st.sampled_from([0, -1, 10**6, 10**9, 10**18, 1e-300, float("inf"), float("nan"), "../../etc/passwd", "ü✓"]),
)


def _mutate(tree: dict, data: st.DataObject) -> dict:
    paths = fz._paths(tree)
    path = data.draw(st.sampled_from(paths))
    if data.draw(st.booleans()) and len(path) > 0 and data.draw(st.integers(0, 4)) == 0:
        return fz._set(tree, path, None, delete=True)
    return fz._set(tree, path, data.draw(_values))


def _yaml_bytes(tree: object) -> bytes:
    try:
        return fz.dump(tree)
    except Exception:  # noqa: BLE001
        return b"{}"


@SETTINGS
@given(data=st.data())
def test_fuzz_hardware_yaml(tmp_path: Path, data: st.DataObject) -> None:
    tree = _mutate(fz.HW_SMALL, data)
    argv = data.draw(st.sampled_from(fz.hw_commands("h.yaml")))
    _check(fz.Case("hw", {**fz.base_files(), "h.yaml": _yaml_bytes(tree)}, argv), tmp_path / "c")


@SETTINGS
@given(data=st.data())
def test_fuzz_workload_yaml(tmp_path: Path, data: st.DataObject) -> None:
    tree = _mutate(fz.WL_SMALL, data)
    argv = data.draw(st.sampled_from(fz.wl_commands("w.yaml")))
    _check(fz.Case("wl", {**fz.base_files(), "w.yaml": _yaml_bytes(tree)}, argv), tmp_path / "c")


@SETTINGS
@given(data=st.data())
def test_fuzz_sweep_yaml(tmp_path: Path, data: st.DataObject) -> None:
    tree = _mutate(fz.SWEEP_SMALL, data)
    argv = ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"]
    _check(fz.Case("sweep", {**fz.base_files(), "s.yaml": _yaml_bytes(tree)}, argv), tmp_path / "c")


@SETTINGS
@given(line=st.integers(0, 30), value=st.sampled_from(["inf", "nan", "-1", "0", "1e30", "abc", "", "True", "3.5", "１６"]))
def test_fuzz_scalesim_cfg(tmp_path: Path, line: int, value: str) -> None:
    lines = fz.CFG_TEXT.splitlines()
    j = line % len(lines)
    if ":" in lines[j]:
        lines[j] = lines[j].split(":")[0] + ": " + value
    _check(fz.Case("cfg", {**fz.base_files(), "c.cfg": "\n".join(lines).encode()}, ["simulate", "-w", "wl.yaml", "--hw", "c.cfg",
                                                                                 "--format", "json"]), tmp_path / "c")


@SETTINGS
@given(row=st.integers(1, 2), col=st.integers(0, 8),
       value=st.one_of(st.sampled_from(["inf", "nan", "-1", "0", "1e30", "x" * 140_000, "2:4", "5:4", "1e9"]), st.text(max_size=12)))
def test_fuzz_topology_csv(tmp_path: Path, row: int, col: int, value: str) -> None:
    lines = fz.CSV_TEXT.splitlines()
    cells = lines[row].split(",")
    cells[col % len(cells)] = value
    lines[row] = ",".join(cells)
    _check(fz.Case("csv", {**fz.base_files(), "t.csv": "\n".join(lines).encode()}, ["validate", "t.csv"]), tmp_path / "c")


@SETTINGS
@given(data=st.data())
def test_fuzz_zigzag_and_recipe(tmp_path: Path, data: st.DataObject) -> None:
    zwl = yaml.safe_load((fz.REF / "zigzag_inputs" / "workload" / "gemm_layer.yaml").read_text())
    tree = _mutate({"l": zwl}, data)
    body = _yaml_bytes(tree["l"]) if isinstance(tree.get("l"), list) else _yaml_bytes(tree)
    _check(fz.Case("zz", {**fz.base_files(), "z.yaml": body}, ["validate", "z.yaml"]), tmp_path / "c")
    rec = _mutate(fz.RECIPE_SMALL, data)
    _check(fz.Case("recipe", {**fz.base_files(), "r.yaml": _yaml_bytes(rec)}, ["validate", "r.yaml"]), tmp_path / "r")


# --- the fixed list: every case of the issue --------------------------------------------------

_FIXED = fz.seeded_cases(seed=0, per_kind=0)


@pytest.mark.parametrize("case", _FIXED, ids=[f"{i}-{c.label[:40]}" for i, c in enumerate(_FIXED)])
def test_listed_case(tmp_path: Path, case: fz.Case) -> None:
    _check(case, tmp_path / "c")


# --- focused regressions ----------------------------------------------------------------------

def _run(tmp_path: Path, files: dict[str, bytes], argv: list[str]) -> fz.Outcome:
    return fz.run_in_process(fz.Case("t", {**fz.base_files(), **files}, argv), tmp_path)


def test_duplicate_yaml_key_names_the_key(tmp_path: Path) -> None:
    o = _run(tmp_path, {"h.yaml": fz.dump(fz.HW_SMALL) + b"rows: 16\n"}, ["validate", "h.yaml"])
    assert o.code == 2 and "duplicate key 'rows'" in o.stderr


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    o = _run(tmp_path, {"h.yaml": fz.dump(dict(fz.HW_SMALL, rows=True))}, ["validate", "h.yaml"])
    assert o.code == 2 and "rows" in o.stderr and "number" in o.stderr


@pytest.mark.parametrize("field,value", [("clock_mhz", 1e-300), ("dram", {"bw_gbps": 0}), ("dram", {"bw_gbps": -1.0}),
                                         ("dram", {"bw_gbps": float("inf")}), ("ifmap_sram", {"size_kb": 1e30})])
def test_hardware_bounds(tmp_path: Path, field: str, value: object) -> None:
    o = _run(tmp_path, {"h.yaml": fz.dump(dict(fz.HW_SMALL, **{field: value}))}, ["validate", "h.yaml"])
    assert o.code == 2 and field in o.stderr, o.stderr


def test_json_output_is_strict(tmp_path: Path) -> None:
    o = _run(tmp_path, {}, ["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--format", "json"])
    assert o.code == 0
    json.loads(o.stdout, parse_constant=fz._reject_constant)


def test_out_checked_before_the_table(tmp_path: Path) -> None:
    o = _run(tmp_path, {}, ["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--out", "/proc/nope/x.csv"])
    assert o.code == 2 and o.stdout == "" and "/proc/nope" in o.stderr


def test_unused_huge_mask_array_is_never_read(tmp_path: Path) -> None:
    """The zip member header claims 2^32 float64s; only the used array is decompressed."""
    data = dict(fz.npz_mutations_by_name())["unused huge member"]
    o = _run(tmp_path, {"w.yaml": fz.dump(fz.WL_MASKED), "m.npz": data},
             ["simulate", "-w", "w.yaml", "--hw", "hw.yaml", "--format", "json"])
    assert o.code == 0, o.stderr


def test_huge_used_mask_refused_from_its_header(tmp_path: Path) -> None:
    from accelsim.errors import MaskError
    from accelsim.workload.npz_reader import NpzArchive

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fc.npy", fz._npy_header(np.dtype("u1"), (2**20, 2**16)))
    (tmp_path / "m.npz").write_bytes(buf.getvalue())
    with pytest.raises(MaskError, match="more than"):
        NpzArchive(tmp_path / "m.npz").read("fc")


def test_sweep_with_some_invalid_points_runs_the_rest_and_exits_1(tmp_path: Path) -> None:
    from accelsim.dse.store import ResultsStore

    sw = dict(fz.SWEEP_SMALL, axes={"rows": [8, 10**9, 4]})
    argv = ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress", "--export", "all.csv"]
    o = _run(tmp_path, {"s.yaml": fz.dump(sw)}, argv)
    assert o.code == 1 and "1 of 3 points of sweep 'fz' are invalid, 2 were simulated" in o.stderr, o.stderr
    assert "internal error" not in o.stderr and not o.problems
    st = ResultsStore(tmp_path / "st.sqlite")
    assert st.count(status="ok") == 2 and st.count(status="invalid") == 1
    assert (tmp_path / "all.csv").is_file()  # the valid points are exported all the same


def test_sweep_with_every_point_invalid_exits_2(tmp_path: Path) -> None:
    sw = dict(fz.SWEEP_SMALL, axes={"rows": [10**9, 10**8]})
    o = _run(tmp_path, {"s.yaml": fz.dump(sw)}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"])
    assert o.code == 2 and "all 2 points of this run are invalid" in o.stderr, o.stderr


def test_input_words_closed_form_matches_per_image_loop() -> None:
    from accelsim.workload.layer import ConvGeometry

    rng = np.random.default_rng(0)
    for _ in range(400):
        kh, s, pad, d = (int(x) for x in rng.integers(1, [6, 7, 4, 4]))
        h = int(rng.integers(kh * d, 21))
        oh = (h + 2 * pad - d * (kh - 1) - 1) // s + 1
        ow = int(rng.integers(1, 7))
        g = ConvGeometry(int(rng.integers(1, 5)), h, ow * s, 2, kh, 1, s, 1, pad, 0, d, 1, oh, ow)
        total = g.batch * oh * ow
        lo = int(rng.integers(0, total + 1))
        hi = int(rng.integers(lo, total + 1))
        want, p = 0, lo  # the per-image loop the closed form replaced
        while p < hi:
            img = p // (oh * ow)
            end = min((img + 1) * oh * ow, hi)
            want += g.input_rows_for_output_rows((p - img * oh * ow) // ow, (end - 1 - img * oh * ow) // ow) \
                * g.input_cols_used() * g.channels
            p = end
        assert g.input_words_for_pixels(lo, hi) == want


def test_info_on_huge_batch_is_refused_at_load(tmp_path: Path) -> None:
    wl = dict(fz.WL_SMALL, layers=[dict(fz.WL_SMALL["layers"][0], batch=10**9)])
    o = _run(tmp_path, {"w.yaml": fz.dump(wl)}, ["info", "w.yaml"])
    assert o.code == 2 and "batch" in o.stderr


def test_gather_scatter_refuses_huge_linear(tmp_path: Path) -> None:
    hw = fz.ROOT / "hw_configs" / "gather_scatter_sve128.yaml"
    for n in (10**9, 2**24):
        wl = {"accelsim_workload": 1, "name": "big", "layers": [
            {"name": "fc", "op": "linear", "in_features": n, "out_features": n,
             "compression": {"sparsity": {"kind": "unstructured", "density": 0.5}}}]}
        o = _run(tmp_path, {"w.yaml": fz.dump(wl)}, ["simulate", "-w", "w.yaml", "--hw", str(hw), "--format", "json"])
        assert o.code == 2 and not o.problems, o.stderr
    assert math.isfinite(1.0)


def test_cfg_sram_over_the_bound_names_the_cfg_key(tmp_path: Path) -> None:
    """A bound of a nested model (SRAM size) is checked inside the error wrapper (was a pydantic
    ValidationError) and named by the .cfg key it came from."""
    text = fz.CFG_TEXT.replace("IfmapSramSzkB:   16", "IfmapSramSzkB:   99999999999")
    assert text != fz.CFG_TEXT
    o = _run(tmp_path, {"big.cfg": text.encode()}, ["validate", "big.cfg"])
    assert o.code == 2 and not o.problems, o.stderr
    assert "big.cfg" in o.stderr and "architecture_presets.IfmapSramSzkB" in o.stderr, o.stderr


def test_sweep_point_with_unstorable_cycles_is_invalid_naming_the_axis(tmp_path: Path) -> None:
    """``dram.bw_gbps`` 1e-300 gives ~1e303 cycles, beyond SQLite's INTEGER (was an OverflowError):
    that point is ``invalid`` with a message naming the axis values; the others are stored."""
    from accelsim.dse.store import ResultsStore

    sw = dict(fz.SWEEP_SMALL, axes={"rows": [4, 8], "dram.bw_gbps": {"linspace": [1e-300, 10, 2]}})
    o = _run(tmp_path, {"s.yaml": fz.dump(sw)}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"])
    assert o.code == 1 and "2 of 4 points of sweep 'fz' are invalid" in o.stderr and not o.problems, o.stderr
    st = ResultsStore(tmp_path / "st.sqlite")
    assert st.count(status="ok") == 2 and st.count(status="invalid") == 2
    errors = [r[0] for r in st.conn.execute("SELECT error FROM points WHERE status = 'invalid'")]
    assert all("latency_cycles" in e and "dram.bw_gbps=1e-300" in e for e in errors), errors


@pytest.mark.parametrize("key,value,expected", [
    ("operator_type", {}, "operator_type"), ("operator_type", ["Gemm"], "operator_type"),
    ("name", ["a"], "name"), ("dimension_relations", 5, "dimension_relations"),
    ("loop_dims", [{}, "D1", "D2"], "loop_dims"), ("loop_sizes", [10**30, 128, 128], "loop_sizes"),
    ("operand_precision", {"W": True}, "operand_precision.W"), ("pr_loop_sizes", 3, "pr_loop_sizes"),
])
def test_zigzag_workload_unhashable_or_huge_values(tmp_path: Path, key: str, value: object, expected: str) -> None:
    """Every field of a ZigZag layer is type-checked before use (``operator_type: {}`` was a TypeError)."""
    layer = yaml.safe_load((fz.REF / "zigzag_inputs" / "workload" / "gemm_layer.yaml").read_text())[0]
    layer[key] = value
    o = _run(tmp_path, {"z.yaml": fz.dump([layer])}, ["validate", "z.yaml"])
    assert o.code == 2 and not o.problems, o.stderr
    assert "z.yaml" in o.stderr and expected in o.stderr, o.stderr


@pytest.mark.parametrize("path,value,expected", [
    (("operational_array", "sizes", 0), float("inf"), "operational_array"),
    (("operational_array", "dimensions"), 5, "operational_array.dimensions"),
    (("memories", "rf_128B", "operands"), 5, "memories.rf_128B.operands"),
    (("memories", "rf_128B", "size"), float("inf"), "memories.rf_128B"),
])
def test_zigzag_accelerator_wrong_types_and_infinities(tmp_path: Path, path: tuple, value: object, expected: str) -> None:
    """Lists are type-checked and int(inf) is caught (were TypeError/OverflowError)."""
    data = yaml.safe_load((fz.REF / "zigzag_inputs" / "hardware" / "tpu_like.yaml").read_text())
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    o = _run(tmp_path, {"za.yaml": fz.dump(data)}, ["validate", "za.yaml"])
    assert o.code == 2 and not o.problems, o.stderr
    assert "za.yaml" in o.stderr and expected in o.stderr, o.stderr


@pytest.mark.parametrize("what", ["node", "initializer"])
def test_onnx_name_that_is_not_utf8_is_one_error(tmp_path: Path, what: str) -> None:
    """Flipped bytes in a node or tensor name (fuzz seed 2): protobuf returns ``bytes`` or raises
    ``UnicodeDecodeError`` on access, which was 'internal error' (exit 1); now one line, exit 2."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 8), dtype=np.float32), name="weightQQ")
    node = helper.make_node("MatMul", ["x", "weightQQ"], ["y"], name="matmulQQ")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w])
    blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    name = b"matmulQQ" if what == "node" else b"weightQQ"
    head, _, tail = blob.rpartition(name)  # the node's name / the initializer's (the last occurrence)
    (tmp_path / "m.onnx").write_bytes(head + name[:-2] + b"\xb0\xff" + tail)  # same length: still parses
    case = fz.Case("onnx bad utf-8", {**fz.base_files(), "m.onnx": (tmp_path / "m.onnx").read_bytes()},
                   ["simulate", "-w", "m.onnx", "--hw", "hw.yaml", "--format", "json"], expect_ok=False)
    o = _check(case, tmp_path / "c")
    assert o.code == 2 and "is not valid UTF-8 text" in o.stderr and o.stderr.strip().count("\n") == 0
