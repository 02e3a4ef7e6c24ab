"""Activation sparsity (issue 14 part A): the hardware ``sparsity:`` block, the systolic and FPGA
engines' gating/skipping/formats, activation masks, and the statistical vs actual-mask paths."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.errors import ConfigError, MaskError
from accelsim.hardware.io import hardware_from_dict, load_hardware
from accelsim.sparsity import Uniform, expected_format_bits
from accelsim.workload.compression import Compression, Sparsity
from accelsim.workload.layer import Conv2d, Linear
from accelsim.workload.workload import Workload

SRAM = {"ifmap_sram": {"size_kb": 64}, "filter_sram": {"size_kb": 64}, "ofmap_sram": {"size_kb": 64}}


def systolic(rows: int = 4, cols: int = 4, dataflow: str = "os", sparsity: dict | None = None, **kw):
    # fold order unless ``mapping=`` says otherwise (searched mappings: tests/test_act_sparsity_searched.py)
    data = {"kind": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow, "stall_model": "none",
            "mapping": "scalesim", **SRAM}
    data.update(kw)
    if sparsity is not None:
        data["sparsity"] = sparsity
    return hardware_from_dict(data)


def linear(m: int, k: int, n: int, act_density: float = 1.0, **comp) -> Linear:
    return Linear(name="fc", in_features=k, out_features=n, tokens=m,
                  compression=Compression(act_density=act_density, **comp))


def run(layer, hw, masks: dict | None = None):
    wl = Workload(name="t", layers=[layer])
    if masks:
        wl.attach_masks(masks)
    return accelsim.simulate(wl, hw).layers[0]


GATE_IN = {"compute": {"action": "gate", "on_zeros": "inputs"}}
SKIP_IN = {"compute": {"action": "skip", "on_zeros": "inputs"}}


# --- schema -----------------------------------------------------------------------------------

def test_default_block_changes_nothing():
    hw = systolic()
    assert not hw.sparsity.any
    layer = linear(16, 32, 8, act_density=0.4)
    base = run(layer, hw)
    explicit = run(layer, systolic(sparsity={"compute": {"action": "none"}}))
    assert base.compute_cycles == explicit.compute_cycles and base.energy_by_component_pj == explicit.energy_by_component_pj
    assert any("not exploited" in n for n in base.notes)


@pytest.mark.parametrize("block, where", [
    ({"levels": {"l2_sram": {}}}, "sparsity.levels.l2_sram"),
    ({"compute": {"action": "zap"}}, "sparsity.compute.action"),
    ({"compute": {"on_zeros": "outputs"}}, "sparsity.compute.on_zeros"),
    ({"levels": {"dram": {"format": {"inputs": "huffman"}}}}, "sparsity.levels.dram.format.inputs"),
])
def test_bad_sparsity_values_name_the_field(block, where):
    with pytest.raises(ConfigError) as e:
        hardware_from_dict({"kind": "systolic", "rows": 4, "cols": 4, **SRAM, "sparsity": block}, source="hw.yaml")
    msg = str(e.value)
    assert "hw.yaml" in msg and where in msg and "\n" not in msg


def test_sparsity_excludes_weight_sparse_options_and_fpga_skip():
    with pytest.raises(ConfigError, match="sparse"):
        systolic(sparsity=GATE_IN, sparse={"zero_skipping": True})
    fpga = load_hardware("hw_configs/zu3eg.yaml")
    data = {"kind": "fpga", **fpga.model_dump(exclude_defaults=True, mode="json")}
    with pytest.raises(ConfigError, match="skip"):
        hardware_from_dict({**data, "sparsity": SKIP_IN})
    with pytest.raises(ConfigError, match="levels"):
        hardware_from_dict({**data, "sparsity": {"levels": {"dram": {}}}})


# --- gating: hand-computed ----------------------------------------------------------------------

def test_gating_hand_computed_energy_not_cycles():
    layer = linear(8, 16, 4, act_density=0.25)
    dense, gated = run(layer, systolic()), run(layer, systolic(sparsity=GATE_IN))
    assert gated.compute_cycles == dense.compute_cycles and gated.latency_cycles == dense.latency_cycles
    assert layer.macs == 8 * 16 * 4 == gated.macs  # the work is all there ...
    assert gated.actions_by_component["mac"]["mac"] == 8 * 16 * 4 // 4  # ... a quarter is effectual
    for act, cnt in dense.actions_by_component["pe_rf"].items():
        assert gated.actions_by_component["pe_rf"][act] == cnt // 4
    assert gated.energy_by_component_pj["mac"] == pytest.approx(dense.energy_by_component_pj["mac"] / 4)
    assert sum(gated.energy_by_component_pj.values()) < sum(dense.energy_by_component_pj.values())
    assert gated.dram_read_bytes == dense.dram_read_bytes  # no format: traffic unchanged
    assert not any("not exploited" in n for n in gated.notes)


def test_gating_intersection_with_weight_density():
    layer = linear(8, 16, 4, act_density=0.5, sparsity=Sparsity(kind="unstructured", density=0.5))
    g = run(layer, systolic(sparsity={"compute": {"action": "gate", "on_zeros": "intersection"}}))
    assert g.actions_by_component["mac"]["mac"] == 8 * 16 * 4 // 4
    assert not any("executed dense" in n for n in g.notes)


def test_skip_os_hand_computed_from_actual_mask():
    # 4 pixels x k=8 on a 2x2 OS array: row folds {0,1}, {2,3}; input non-zeros per pixel 3,5 | 1,2
    mask = np.zeros((4, 8), dtype=bool)
    for p, nnz in enumerate((3, 5, 1, 2)):
        mask[p, :nnz] = True
    layer = Linear(name="fc", in_features=8, out_features=2, tokens=4,
                   compression=Compression(act_density=float(mask.mean()), act_mask="fc.act"))
    hw = systolic(2, 2, sparsity=SKIP_IN)
    got = run(layer, hw, {"fc.act": mask})
    # folds: T' = 5 and 2; OS fold = T' + R + C - 2; one column fold; 0-based total (-1)
    assert got.compute_cycles == (5 + 2) + (2 + 2) - 1
    dense = run(layer, systolic(2, 2))
    assert dense.compute_cycles == 2 * (8 + 2) - 1
    assert got.actions_by_component["mac"]["mac"] == int(mask.sum()) * 2


def test_skip_ws_all_zero_vectors_and_is_falls_back_to_gating():
    mask = np.zeros((6, 4), dtype=bool)  # k=4 on 4 rows: one row fold; pixels 1 and 4 all zero
    mask[[0, 2, 3, 5], 1] = True
    layer = Linear(name="fc", in_features=4, out_features=4, tokens=6,
                   compression=Compression(act_density=float(mask.mean()), act_mask="fc.act"))
    ws = run(layer, systolic(4, 4, "ws", sparsity=SKIP_IN), {"fc.act": mask})
    assert ws.compute_cycles == (2 * 4 + 4 + 4 - 2) - 1  # T = 6 pixels -> 4 streamed
    is_ = run(layer, systolic(4, 4, "is", sparsity=SKIP_IN), {"fc.act": mask})
    is_dense = run(layer, systolic(4, 4, "is"))
    assert is_.compute_cycles == is_dense.compute_cycles
    assert any("stationary" in n for n in is_.notes)


# --- statistical vs actual-mask paths -----------------------------------------------------------

@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_statistical_and_actual_paths_agree_within_2_percent(density, dataflow):
    m, k, n = 1024, 256, 32
    rng = np.random.default_rng(int(density * 100))
    flat = np.zeros(m * k, dtype=bool)
    flat[rng.choice(m * k, int(round(density * m * k)), replace=False)] = True  # exactly the uniform model
    mask = flat.reshape(m, k)
    hw = systolic(16, 16, dataflow, sparsity=SKIP_IN)
    stat = run(linear(m, k, n, act_density=float(mask.mean())), hw)
    real = run(Linear(name="fc", in_features=k, out_features=n, tokens=m,
                      compression=Compression(act_density=float(mask.mean()), act_mask="fc.act")), hw, {"fc.act": mask})
    assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
    assert real.actions_by_component["mac"]["mac"] == pytest.approx(stat.actions_by_component["mac"]["mac"], rel=0.02)
    dense = run(linear(m, k, n), systolic(16, 16, dataflow))
    assert stat.compute_cycles <= dense.compute_cycles


def test_conv_actual_mask_matches_im2col_effectual_count():
    rng = np.random.default_rng(3)
    act = rng.random((1, 8, 10, 10)) < 0.4
    w = rng.random((16, 8, 3, 3)) < 0.5
    comp = Compression(act_density=float(act.mean()), act_mask="c.act",
                       sparsity=Sparsity(kind="unstructured", density=float(w.mean()), mask="c.w"))
    layer = Conv2d(name="c", in_channels=8, out_channels=16, in_h=10, in_w=10, kernel=3, padding=1, compression=comp)
    hw = systolic(8, 8, sparsity={"compute": {"action": "gate", "on_zeros": "intersection"}})
    got = run(layer, hw, {"c.act": act, "c.w": w})
    # brute force: effectual MACs = sum over pixels and filters of |window non-zeros & weight non-zeros|
    x = np.pad(act[0], ((0, 0), (1, 1), (1, 1)))
    eff = 0
    for i in range(10):
        for j in range(10):
            win = x[:, i:i + 3, j:j + 3]
            eff += int((win[None] & w).sum())
    assert got.actions_by_component["mac"]["mac"] == eff
    # conservation: in expectation effectual = MACs x d_w x d_i (zero padding adds zeros: below)
    assert eff <= layer.macs * act.mean() * w.mean() * 1.05


def test_intersection_skip_statistical_vs_actual():
    m, k, n = 512, 128, 64
    rng = np.random.default_rng(7)
    a = rng.random((m, k)) < 0.5
    w = rng.random((n, k)) < 0.4
    hw = systolic(16, 16, sparsity={"compute": {"action": "skip", "on_zeros": "intersection"}})
    sp = Sparsity(kind="unstructured", density=float(w.mean()))
    stat = run(linear(m, k, n, act_density=float(a.mean()), sparsity=sp), hw)
    real = run(Linear(name="fc", in_features=k, out_features=n, tokens=m,
                      compression=Compression(act_density=float(a.mean()), act_mask="fc.act",
                                              sparsity=sp.model_copy(update={"mask": "fc.w"}))),
               hw, {"fc.act": a, "fc.w": w})
    assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
    eff = int((a.astype(np.int64) @ w.T.astype(np.int64)).sum())
    assert real.actions_by_component["mac"]["mac"] == eff
    assert eff == pytest.approx(m * n * k * a.mean() * w.mean(), rel=0.02)  # conservation in expectation


# --- formats ------------------------------------------------------------------------------------

def test_bitmask_format_traffic_hand_computed():
    layer = linear(64, 256, 16, act_density=0.5)
    dense = run(layer, systolic(8, 8))
    hw = systolic(8, 8, sparsity={"levels": {"dram": {"format": {"inputs": "bitmask"}}}})
    got = run(layer, hw)
    # bitmask of a 256-feature row at density 0.5: 128 x 8 payload + 256 mask bits = 0.625 x dense
    ratio = expected_format_bits("bitmask", Uniform(0.5, 256 * 64), 256, 8).total_bits / (256 * 8)
    assert ratio == pytest.approx(0.625)
    assert got.dram_read_bytes_by_operand["ifmap"] == pytest.approx(dense.dram_read_bytes_by_operand["ifmap"] * 0.625)
    assert got.dram_read_bytes_by_operand["ifmap"] >= 64 * 256 * 0.625  # >= the compressed input, once
    assert got.compulsory_dram_bytes < dense.compulsory_dram_bytes
    assert got.compute_cycles == dense.compute_cycles
    assert got.extra["format_ratio_dram_inputs"] == pytest.approx(0.625)


# --- activation masks ---------------------------------------------------------------------------

def test_activation_mask_shape_is_checked():
    layer = Linear(name="fc", in_features=8, out_features=2, tokens=4,
                   compression=Compression(act_density=0.5, act_mask="fc.act"))
    with pytest.raises(MaskError, match="in_features"):
        run(layer, systolic(sparsity=GATE_IN), {"fc.act": np.ones((4, 7), dtype=bool)})
    with pytest.raises(MaskError, match="not found"):
        run(layer, systolic(sparsity=GATE_IN), {"other": np.ones((4, 8), dtype=bool)})


def test_channel_densities_must_average_to_act_density():
    Compression(act_density=0.5, act_channel_density=(0.4, 0.6))
    with pytest.raises(ValueError, match="averages"):
        Compression(act_density=0.5, act_channel_density=(0.9, 0.9))


# --- FPGA gating --------------------------------------------------------------------------------

def test_fpga_gating_saves_mac_energy_only():
    fpga = load_hardware("hw_configs/zu3eg.yaml")
    data = {"kind": "fpga", **fpga.model_dump(exclude_defaults=True, mode="json")}
    gated_hw = hardware_from_dict({**data, "sparsity": GATE_IN})
    layer = Conv2d(name="c", in_channels=32, out_channels=32, in_h=16, in_w=16, kernel=3, padding=1,
                   compression=Compression(act_density=0.4))
    dense, gated = run(layer, fpga), run(layer, gated_hw)
    assert gated.compute_cycles == dense.compute_cycles and gated.latency_cycles == dense.latency_cycles
    assert gated.actions_by_component["mac"]["mac"] == round(layer.macs * 0.4)
    assert sum(gated.energy_by_component_pj.values()) < sum(dense.energy_by_component_pj.values())
    assert any("not exploited" in n for n in dense.notes)
    assert not any("not exploited" in n for n in gated.notes)


# --- shipped configs ----------------------------------------------------------------------------

def test_shipped_eyeriss_and_scnn_configs():
    eye, eye_dense = load_hardware("hw_configs/eyeriss_like_gating.yaml"), load_hardware("hw_configs/eyeriss_like_dense.yaml")
    scnn = load_hardware("hw_configs/scnn_like_skipping.yaml")
    layer = Conv2d(name="c", in_channels=32, out_channels=32, in_h=14, in_w=14, kernel=3, padding=1,
                   compression=Compression(act_density=0.4, sparsity=Sparsity(kind="unstructured", density=0.4)))
    e, d = run(layer, eye), run(layer, eye_dense)
    assert e.compute_cycles == d.compute_cycles
    assert e.energy_by_component_pj["mac"] < d.energy_by_component_pj["mac"]
    s = run(layer, scnn)
    dense_scnn = run(layer, systolic(32, 32))
    assert s.compute_cycles < dense_scnn.compute_cycles


CONV_CASES = {  # (channels, size, kernel, padding): padded / unpadded 3x3 (overlapping windows), 1x1
    "3x3_pad1": (32, 28, 3, 1), "3x3_pad0": (32, 28, 3, 0), "1x1": (64, 56, 1, 0)}


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("mapping", ["scalesim", "search"])
def test_conv_statistical_and_actual_paths_agree(density, case, mapping):
    """OS input skipping on convs: the density model (each pixel's in-bounds window, padding is
    zeros; overlapping 3x3 windows share zeros, so E[max] over lock-step lanes comes from seeded
    draws of the input mask) vs a random actual mask -- within 2% at 0.1..0.9, on both mappings
    (docs/sparsity.md: the independent-lane formula alone was -2.7% at 0.1 on the padded 3x3)."""
    ch, size, kern, pad = CONV_CASES[case]
    rng = np.random.default_rng(int(density * 10) + 17)
    flat = np.zeros(ch * size * size, dtype=bool)
    flat[rng.choice(flat.size, int(round(density * flat.size)), replace=False)] = True
    mask = flat.reshape(1, ch, size, size)

    def conv(**c):
        return Conv2d(name="l", in_channels=ch, out_channels=32, in_h=size, in_w=size, kernel=kern, padding=pad,
                      compression=Compression(act_density=float(mask.mean()), **c))

    for block in ((SKIP_IN, GATE_IN) if case == "3x3_pad1" else (SKIP_IN,)):
        hw = systolic(16, 16, sparsity=block, mapping=mapping)
        stat, real = run(conv(), hw), run(conv(act_mask="l.act"), hw, {"l.act": mask})
        assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
        assert real.actions_by_component["mac"]["mac"] == pytest.approx(stat.actions_by_component["mac"]["mac"], rel=0.01)


def test_yaml_on_key_gets_a_clear_error(tmp_path):
    p = tmp_path / "hw.yaml"
    p.write_text("kind: systolic\nrows: 4\ncols: 4\nifmap_sram: {size_kb: 8}\nfilter_sram: {size_kb: 8}\n"
                 "ofmap_sram: {size_kb: 8}\nsparsity:\n  compute: {action: gate, on: inputs}\n")
    with pytest.raises(ConfigError, match="on_zeros") as e:
        load_hardware(p)
    assert "sparsity.compute" in str(e.value)


def test_channel_pruned_weights_are_not_gated_twice():
    # filter pruning already shrank the layer: its recorded density must not gate the (dense) weights again
    layer = linear(8, 16, 4, act_density=0.5, sparsity=Sparsity(kind="filter", density=0.5))
    g = run(layer, systolic(sparsity={"compute": {"action": "gate", "on_zeros": "intersection"}}))
    assert g.actions_by_component["mac"]["mac"] == 8 * 16 * 4 // 2
