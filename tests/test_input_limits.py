"""Size limits that refuse absurd inputs but admit every shipped and realistic model; ZigZag's own
files read as they are (duplicate keys: last wins, with a warning) while accelsim's stay strict."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from accelsim import cli
from accelsim._validation import load_yaml_text
from accelsim.errors import ConfigError
from accelsim.hardware.io import load_hardware
from accelsim.workload import layer as L
from accelsim.workload.io import load_workload

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "models").glob("*.yaml"))
HW = sorted((ROOT / "hw_configs").glob("*.yaml"))
TPU_LIKE = ROOT / "tests" / "data" / "reference" / "zigzag_inputs" / "hardware" / "tpu_like.yaml"


# --- item 1: bounds admit what ships and what is realistic, refuse what is absurd ---------------
@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_every_shipped_model_loads(model: Path) -> None:
    wl = load_workload(model)
    assert wl.layers and sum(layer.macs for layer in wl.layers) > 0


def test_every_shipped_hardware_loads_and_runs_gnmt() -> None:
    """GNMT's attention element-wise layer (1,048,576+ elements) broke a per-axis bound."""
    from accelsim.api import simulate
    from accelsim.errors import UnsupportedLayerError

    wl = load_workload(ROOT / "models" / "gnmt.yaml")
    assert max(getattr(layer, "elements", 0) for layer in wl.layers) > L.MAX_DIM
    ran = 0
    for path in HW:
        hw = load_hardware(path)
        try:
            rep = simulate(wl, hw)
        except UnsupportedLayerError as exc:  # analog crossbars cannot do activation x activation
            assert hw.kind == "crossbar" and "activation" in str(exc)
            continue
        ran += 1
        assert sum(s.dense_macs for s in rep.layers) == sum(layer.macs for layer in wl.layers)
    assert ran >= len(HW) - 2


def _conv(**kw: int) -> dict:
    return {"name": "c", "op": "conv2d", "in_channels": 3, "out_channels": 64, "in_h": 8, "in_w": 8,
            "kernel_h": 3, "kernel_w": 3, "pad_h": 1, "pad_w": 1, **kw}


REALISTIC = {
    "4K image conv": _conv(in_h=2160, in_w=3840),
    "8K image conv at batch 8": _conv(in_h=4320, in_w=7680, batch=8),
    "GPT-3 FFN up (2048 tokens x 8)": {"name": "f", "op": "linear", "in_features": 12288, "out_features": 49152,
                                       "tokens": 2048, "batch": 8},
    "GPT-3 vocabulary projection": {"name": "v", "op": "linear", "in_features": 12288, "out_features": 50257,
                                    "tokens": 2048},
    "GPT-3 attention scores (96 heads)": {"name": "s", "op": "matmul", "m": 2048, "k": 128, "n": 2048, "heads": 96},
    "4K 64-channel residual add at batch 16": {"name": "a", "op": "elementwise", "elements": 64 * 2160 * 3840,
                                                "batch": 16},
    "256k-vocabulary embedding": {"name": "e", "op": "embedding", "elements": 2048 * 4096,
                                  "num_embeddings": 256_000, "embedding_dim": 4096},
}

ABSURD = {
    "H=W=10^6 conv": (_conv(in_h=10**6, in_w=10**6), "MAX_GEMM_ROWS"),
    "K=10^9 conv": (_conv(out_channels=10**9), "less than or equal"),
    "10^9 x 10^9 linear": ({"name": "f", "op": "linear", "in_features": 10**9, "out_features": 10**9},
                           "less than or equal"),
    "10^15-element add": ({"name": "a", "op": "elementwise", "elements": 10**15}, "less than or equal"),
    "2^40 elements x 2^20 batch": ({"name": "a", "op": "elementwise", "elements": 2**40, "batch": 2**20},
                                   "MAX_LAYER_WORDS"),
    "2^20 x 2^20 x 2^20 matmul": ({"name": "m", "op": "matmul", "m": 2**20, "k": 2**20, "n": 2**20},
                                  "MAX_LAYER_MACS"),
}


def _workload(layer: dict) -> dict:
    return {"accelsim_workload": 1, "name": "t", "layers": [layer]}


@pytest.mark.parametrize("name", REALISTIC)
def test_realistic_large_layers_are_admitted(name: str) -> None:
    from accelsim.workload.io import workload_from_dict

    wl = workload_from_dict(_workload(REALISTIC[name]), source=name)
    assert wl.layers[0].input_words > 0


@pytest.mark.parametrize("name", ABSURD)
def test_absurd_sizes_are_refused_at_load(name: str) -> None:
    from accelsim.workload.io import workload_from_dict

    layer, needle = ABSURD[name]
    with pytest.raises(ConfigError, match=needle):
        workload_from_dict(_workload(layer), source=name)


# --- item 2: ZigZag files as they are, accelsim's strict ----------------------------------------
def test_tolerant_mode_keeps_the_last_value_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="accelsim"):
        assert load_yaml_text("a: 1\nb: 2\na: 3\n", "x.yaml", duplicates="last") == {"a": 3, "b": 2}
    assert "duplicate key 'a' at line 3 (first at line 1)" in caplog.text
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        load_yaml_text("a: 1\na: 3\n", "y.yaml")


def test_zigzag_tpu_like_with_repeated_ports_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    """ZigZag's own tpu_like.yaml repeats ``ports`` in one memory; PyYAML (ZigZag) keeps the last."""
    import yaml

    from accelsim.hardware.zigzag_io import load_zigzag_accelerator

    from accelsim import _validation

    _validation._WARNED_DUPLICATES.clear()  # another test in this process may have read the file already
    text = TPU_LIKE.read_text()
    assert text.count("    ports:") > len(yaml.safe_load(text)["memories"])  # the file really repeats it
    for command in ("validate", "info"):
        assert cli.main([command, str(TPU_LIKE)]) == 0
    err = capsys.readouterr().err
    assert err.count("duplicate key 'ports'") == 1  # warned once, not once per read
    h = load_zigzag_accelerator(TPU_LIKE)
    want = yaml.safe_load(text)["memories"]  # PyYAML's reading: the last 'ports' of each memory
    assert {m.name: len(m.ports) for m in h.memories} == {k: len(v["ports"]) for k, v in want.items()}


def test_accelsim_hardware_yaml_stays_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = (ROOT / "hw_configs" / "systolic_32x32_is.yaml").read_text()
    bad = tmp_path / "h.yaml"
    bad.write_text(src + "\nname: again\n")
    assert cli.main(["validate", str(bad)]) == 2
    assert "duplicate key 'name'" in capsys.readouterr().err


# --- item 4: --format json never emits Infinity/NaN -----------------------------------------------
def test_strict_json_writes_non_finite_numbers_as_null() -> None:
    import json

    import numpy as np

    from accelsim._validation import dumps_strict_json

    text = dumps_strict_json({"a": float("inf"), "b": [np.float64("nan"), 1.5, np.int64(3)], "c": -float("inf"),
                              "d": np.float32(2.0)})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == \
        {"a": None, "b": [None, 1.5, 3], "c": None, "d": 2.0}


def test_report_json_with_a_non_finite_ratio_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from accelsim.api import simulate
    from accelsim.report import Report

    rep = simulate(load_workload(ROOT / "models" / "tiny_cnn.yaml"), load_hardware(HW[0]))
    real = Report.to_dict
    monkeypatch.setattr(Report, "to_dict", lambda self: {**real(self), "speedup": float("inf"), "x": float("nan")})
    data = json.loads(rep.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["speedup"] is None and data["x"] is None and data["layers"]


# --- item 6 (issue item 12): validate opens masks; every engine validates masks the same way ----
import numpy as np  # noqa: E402

_MASK_WL = {"accelsim_workload": 1, "name": "m", "layers": [
    {"name": "fc", "op": "linear", "in_features": 16, "out_features": 8,
     "compression": {"sparsity": {"kind": "unstructured", "density": 0.5, "mask": "fc"}}}]}
_HALF = np.tile(np.array([1, 0], dtype=np.uint8), (8, 8))
BROKEN_MASKS = {
    "strings": (np.full((8, 16), "1"), "dtype"),
    "0.5 everywhere": (np.full((8, 16), 0.5), "only 0 and 1"),
    "NaN": (np.where(_HALF == 1, np.nan, 0.0), "only 0 and 1"),
    "a 2": (np.where(_HALF == 1, 2, 0).astype(np.int8), "only 0 and 1"),
    "all zero at density 0.5": (np.zeros((8, 16), dtype=bool), "density 0.0000"),
    "wrong shape": (np.ones((16, 8), dtype=bool), "shape"),
    "0x0": (np.zeros((0, 0), dtype=bool), "shape"),
}
ENGINE_HW = ["systolic_32x32_is.yaml", "gather_scatter_sve128.yaml", "isaac_like.yaml", "smartexchange_32x32.yaml",
             "zu3eg.yaml", "tpu_v1_like.yaml"]


@pytest.mark.parametrize("name", BROKEN_MASKS)
def test_broken_mask_refused_by_validate_and_identically_by_every_engine(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from accelsim.api import simulate
    from accelsim.errors import MaskError
    from accelsim.workload.io import workload_from_dict

    arr, needle = BROKEN_MASKS[name]
    np.savez(tmp_path / "m.npz", fc=arr)
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(dict(_MASK_WL, masks="m.npz")))
    assert cli.main(["validate", str(tmp_path / "w.yaml")]) == 2  # validate opens the mask file
    err = capsys.readouterr().err
    assert needle in err and "fc.compression.sparsity.mask" in err and err.count("\n") == 1
    messages = set()
    for hw_name in ENGINE_HW:  # masks attached in memory reach the engines unchecked by the loader
        wl = workload_from_dict(_MASK_WL, source="w")
        wl.attach_masks({"fc": arr})
        with pytest.raises(MaskError) as exc:
            simulate(wl, load_hardware(ROOT / "hw_configs" / hw_name))
        messages.add(str(exc.value))
    assert len(messages) == 1 and needle in messages.pop()


def test_good_mask_runs_on_every_engine(tmp_path: Path) -> None:
    from accelsim.api import simulate
    from accelsim.workload.io import workload_from_dict

    for hw_name in ENGINE_HW:
        wl = workload_from_dict(_MASK_WL, source="w")
        wl.attach_masks({"fc": _HALF.astype(bool)})
        rep = simulate(wl, load_hardware(ROOT / "hw_configs" / hw_name))
        assert rep.layers[0].dense_macs == 16 * 8


# --- stop 20: bounds on what a lowering materialises (tiles), not on folds it never builds -------
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_support as fz  # noqa: E402


def test_split_tile_arrays_equals_split_tile() -> None:
    """The vectorised split (folds.py) gives the tiles ``split_tile`` gives, loads of 2^50 included."""
    from accelsim.stats import Tile, split_tile, split_tile_arrays

    rng = np.random.default_rng(7)
    lb, cc, sb = rng.integers(0, 2**50, 40), rng.integers(0, 40, 40), rng.integers(0, 2**40, 40)
    parts = rng.integers(1, 60, 40)
    want = [(t.load_bits, t.compute_cycles, t.store_bits) for a, b, c, p in
            zip(lb.tolist(), cc.tolist(), sb.tolist(), parts.tolist()) for t in split_tile(Tile(a, b, c), p)]
    got = split_tile_arrays(lb, cc, sb, parts)
    assert list(zip(*(g.tolist() for g in got))) == want
    assert [int(g.sum()) for g in got] == [int(lb.sum()), int(cc.sum()), int(sb.sum())]  # totals kept


def _run_in_child(tmp_path: Path, hw: dict, layer: dict, expect_ok: bool) -> fz.Outcome:
    """simulate in a forked child with 1 GiB more address space: exit 0, or 2 with one error line."""
    case = fz.Case("absurd", {"hw.yaml": fz.dump(hw), "w.yaml": fz.dump(dict(fz.WL_SMALL, layers=[layer]))},
                   ["simulate", "-w", "w.yaml", "--hw", "hw.yaml"], expect_ok=expect_ok)
    o = fz.run_forked(case, tmp_path, timeout_s=300, mem_mb=1024)
    assert not o.problems and o.code == (0 if expect_ok else 2), fz.first_problem_text(case, o)
    assert expect_ok or len(o.stderr.strip().splitlines()) == 1
    return o


def test_wide_conv_runs_searched_and_fold_order_refused_before_allocating(tmp_path: Path) -> None:
    """in_w: 10^6 on an 8x8 array with 16 kB SRAMs: the fold order splits 10^6 folds into 2.4e7
    sub-tiles (was 'internal error: MemoryError', exit 1). The searched mapping (the fuzz array's
    default) runs it in bounded memory without the comparison; ``mapping: scalesim`` is refused
    with the layer and what to change, before allocating."""
    layer = dict(fz.WL_SMALL["layers"][0], in_w=10**6)
    o = _run_in_child(tmp_path / "s", fz.HW_SMALL, layer, expect_ok=True)
    assert "fold order not compared: it needs more than 2,097,152 tiles" in o.stdout
    o = _run_in_child(tmp_path / "f", dict(fz.HW_SMALL, mapping="scalesim"), layer, expect_ok=False)
    err = o.stderr.strip()
    assert "layers.conv1" in err and "layer 'conv1' needs more than 2,097,152 tiles" in err and "size_kb" in err


def test_wide_conv_refused_on_gather_scatter(tmp_path: Path) -> None:
    import yaml

    hw = yaml.safe_load((ROOT / "hw_configs" / "gather_scatter_sve128.yaml").read_text())
    err = _run_in_child(tmp_path, hw, dict(fz.WL_SMALL["layers"][0], in_w=10**6), expect_ok=False).stderr
    assert "layer 'conv1' needs more than 2,097,152 tiles through the scratchpad (8,000,000" in err


def _gnmt_lstm() -> L.LayerBase:
    wl = load_workload(ROOT / "models" / "gnmt.yaml")
    return next(layer for layer in wl.layers if layer.name == "encoder.rnn_layers.0")


def test_fold_order_with_many_folds_but_few_tiles_runs() -> None:
    """GNMT's first LSTM on the 1x8 dense peer of the gather-scatter engine: 26.7 M folds (refused
    by the old fold-count bound), but the fold order lowers it as 1,024 row folds x 2 kinds of
    column fold; it runs, every MAC counted, and the per-fold (sparse) lowering is still refused."""
    from accelsim.api import simulate
    from accelsim.engines.systolic.engine import MAX_FOLDS_PER_LAYER, layer_folds
    from accelsim.hardware.peers import dense_peer
    from accelsim.stats import TileLimitError
    from accelsim.workload.workload import Workload

    layer = _gnmt_lstm()
    peer = dense_peer(load_hardware(ROOT / "hw_configs" / "gather_scatter_sve128.yaml"))
    assert (peer.rows, peer.cols) == (1, 8) and layer_folds(layer, peer) == 26_738_688 > MAX_FOLDS_PER_LAYER
    wl = Workload(name="lstm", layers=[layer])
    rep = simulate(wl, peer, compare_dense=False)
    assert rep.layers[0].macs == layer.macs and rep.latency_cycles >= layer.macs / 8
    from accelsim.workload.compression import Sparsity

    sparse = Sparsity(kind="nm", n=2, m=4, density=0.5)
    nm_layer = layer.model_copy(update={"compression": layer.compression.model_copy(update={"sparsity": sparse})})
    sparse_hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml").model_copy(
        update={"rows": 1, "cols": 8, "dataflow": "ws"})  # the 2:4 datapath keeps per-fold arrays
    with pytest.raises(TileLimitError, match="26,738,688 folds of the 1x8 array"):
        simulate(Workload(name="nm", layers=[nm_layer]), sparse_hw, compare_dense=False)


def test_searched_mapping_kept_when_fold_order_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mapping: search`` compares with the fold order only when that can be lowered; otherwise
    the searched mapping alone, with a note (a tiny budget stands in for a huge layer)."""
    from accelsim import stats
    from accelsim.api import simulate
    from accelsim.engines.systolic.searched import searched_program
    from accelsim.stats import Action
    from accelsim.workload.io import workload_from_dict

    hw = load_hardware(ROOT / "hw_configs" / "systolic_32x32_is.yaml").model_copy(update={"mapping": "search"})
    wl = workload_from_dict(_workload({"name": "f", "op": "linear", "in_features": 256, "out_features": 512,
                                       "tokens": 64}), source="t")
    monkeypatch.setattr(stats, "MAX_TILES_PER_LAYER", 8)
    rep = simulate(wl, hw, compare_dense=False)
    assert any(n.startswith("fold order not compared: it needs more than 8 tiles") for n in rep.layers[0].notes)
    layer = wl.layers[0]
    want, _ = searched_program(layer, hw, Action("mac", "mac", layer.macs, 8, 8, "int"), layer.macs)
    assert rep.layers[0].compute_cycles == want.compute_cycles and rep.layers[0].macs == layer.macs
