"""Zero gating/skipping (the ``sparsity:`` block) on *searched* mappings (issue 14 with issue 10's
mapper): gating keeps the dense searched cycles and removes the gated fraction of MAC/register
energy; skipping conserves effectual work and its statistical and actual-mask paths agree."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.hardware.io import hardware_from_dict, load_hardware
from accelsim.workload.compression import Compression, Sparsity
from accelsim.workload.layer import Conv2d, Linear
from accelsim.workload.workload import Workload

SRAM = {"ifmap_sram": {"size_kb": 64}, "filter_sram": {"size_kb": 64}, "ofmap_sram": {"size_kb": 64}}
GATE_IN = {"compute": {"action": "gate", "on_zeros": "inputs"}}
SKIP_IN = {"compute": {"action": "skip", "on_zeros": "inputs"}}
SKIP_X = {"compute": {"action": "skip", "on_zeros": "intersection"}}


def searched(dataflow: str = "os", sparsity: dict | None = None, rows: int = 16, cols: int = 16):
    data = {"kind": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow, "stall_model": "none", **SRAM}
    if sparsity is not None:
        data["sparsity"] = sparsity
    return hardware_from_dict(data)


def run(layer, hw, masks: dict | None = None):
    wl = Workload(name="t", layers=[layer])
    if masks:
        wl.attach_masks(masks)
    return accelsim.simulate(wl, hw).layers[0]


def fc(m: int, k: int, n: int, density: float, mask: str | None = None, **comp) -> Linear:
    return Linear(name="fc", in_features=k, out_features=n, tokens=m,
                  compression=Compression(act_density=density, act_mask=mask, **comp))


def random_mask(shape: tuple[int, ...], density: float, seed: int) -> np.ndarray:
    """Exactly ``round(density x size)`` non-zeros at uniform positions (the hypergeometric model)."""
    rng = np.random.default_rng(seed)
    flat = np.zeros(int(np.prod(shape)), dtype=bool)
    flat[rng.choice(flat.size, int(round(density * flat.size)), replace=False)] = True
    return flat.reshape(shape)


def test_sparsity_block_defaults_to_search_and_shipped_configs_search():
    assert searched(sparsity=GATE_IN).mapping == "search"
    for name in ("eyeriss_like_gating", "eyeriss_like_dense", "scnn_like_skipping"):
        assert load_hardware(f"hw_configs/{name}.yaml").mapping == "search"


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_gating_on_searched_mapping_hand_computed(dataflow):
    layer = fc(64, 64, 32, 0.25)
    dense, gated = run(layer, searched(dataflow)), run(layer, searched(dataflow, GATE_IN))
    assert gated.mapping == dense.mapping and gated.mapping.startswith("spatial")
    assert gated.compute_cycles == dense.compute_cycles and gated.latency_cycles == dense.latency_cycles
    assert gated.actions_by_component["mac"]["mac"] == 64 * 64 * 32 // 4
    ed, eg = dense.energy_by_component_pj, gated.energy_by_component_pj
    # the gated fraction (3/4) of the MAC and PE-register energy is saved, nothing else changes
    saved = 0.75 * (ed["mac"] + ed.get("pe_rf", 0.0))
    assert sum(eg.values()) == pytest.approx(sum(ed.values()) - saved, rel=1e-6)
    assert gated.dram_read_bytes == dense.dram_read_bytes


def test_eyeriss_filter_read_gating_on_searched_mapping():
    layer = fc(64, 64, 32, 0.5)
    dense = run(layer, searched("ws"))
    g = run(layer, searched("ws", {**GATE_IN, "levels": {"filter_sram": {"action": "gate", "on_zeros": "inputs"}}}))
    for act, cnt in dense.actions_by_component["filter_sram"].items():
        want = cnt // 2 if act == "read" else cnt
        assert g.actions_by_component["filter_sram"][act] == pytest.approx(want, abs=1)


def test_os_skip_hand_computed_segments():
    """1024 pixels x k=256 on 16x16 OS: the mapping streams whole reductions (t_seg = k), so
    T' = T/k x E[max over 16 pixel lanes of their non-zeros]; actual mask: the real maxima."""
    m, k, n = 1024, 256, 32
    mask = random_mask((m, k), 0.3, 3)
    hw = searched("os", SKIP_IN)
    got = run(fc(m, k, n, float(mask.mean()), "fc.act"), hw, {"fc.act": mask})
    dense = run(fc(m, k, n, 1.0), searched("os"))
    lanes = mask.sum(axis=1).reshape(-1, 16).max(axis=1)  # per 16-pixel group: the busiest lane
    t_dense = (m // 16) * (n // 16) * k
    fill = dense.compute_cycles - t_dense
    want = t_dense / k * lanes.mean() + fill
    assert got.compute_cycles == pytest.approx(want, rel=0.01)
    assert got.actions_by_component["mac"]["mac"] == int(mask.sum()) * n  # conservation, exact


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("dataflow, block", [("os", SKIP_IN), ("ws", SKIP_IN), ("os", SKIP_X)])
def test_searched_skip_statistical_vs_actual_within_2_percent(density, dataflow, block):
    m, k, n = 1024, 256, 32
    a = random_mask((m, k), density, int(density * 100))
    w = random_mask((n, k), 0.5, 7)
    inter = block is SKIP_X
    wsp = {"sparsity": Sparsity(kind="unstructured", density=float(w.mean()))} if inter else {}
    hw = searched(dataflow, block)
    stat = run(fc(m, k, n, float(a.mean()), **wsp), hw)
    masks = {"fc.act": a, **({"fc": w} if inter else {})}
    real = run(fc(m, k, n, float(a.mean()), "fc.act",
                  **({"sparsity": Sparsity(kind="unstructured", density=float(w.mean()), mask="fc")} if inter else {})),
               hw, masks)
    assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
    eff_s, eff_r = stat.actions_by_component["mac"]["mac"], real.actions_by_component["mac"]["mac"]
    assert eff_r == pytest.approx(eff_s, rel=0.02)
    expect = m * k * n * a.mean() * (w.mean() if inter else 1.0)  # conservation in expectation
    assert eff_s == pytest.approx(expect, rel=0.02) and eff_r == pytest.approx(expect, rel=0.02)
    dense = run(fc(m, k, n, 1.0), searched(dataflow))
    assert stat.compute_cycles <= dense.compute_cycles and real.compute_cycles <= dense.compute_cycles


@pytest.mark.parametrize("mapping", ["scalesim", "search"])
def test_per_channel_densities_change_ws_skipping_and_match_the_mask(mapping):
    """WS skips a pixel's input vector when it is all zero over the row fold's channels: with
    channels 0-15 at 0.05 and 16-31 at 0.55 (mean 0.3) the first fold skips ~0.95^16 = 44% of its
    vectors, which the layer-mean model (0.7^16 = 0.3%) cannot see; the per-channel statistical
    path agrees with a mask drawn at those channel densities."""
    m, k, n = 1024, 32, 16
    dens = (0.05,) * 16 + (0.55,) * 16
    rng = np.random.default_rng(5)
    mask = np.zeros((m, k), dtype=bool)
    for c, d in enumerate(dens):
        mask[rng.choice(m, int(round(d * m)), replace=False), c] = True
    hw = hardware_from_dict({"kind": "systolic", "rows": 16, "cols": 16, "dataflow": "ws", "stall_model": "none",
                             "mapping": mapping, **SRAM, "sparsity": SKIP_IN})
    mean = float(np.mean(dens))
    flat = run(fc(m, k, n, mean), hw)
    per_ch = run(Linear(name="fc", in_features=k, out_features=n, tokens=m,
                        compression=Compression(act_density=mean, act_channel_density=dens)), hw)
    real = run(fc(m, k, n, float(mask.mean()), "fc.act"), hw, {"fc.act": mask})
    assert real.compute_cycles == pytest.approx(per_ch.compute_cycles, rel=0.02)
    assert per_ch.compute_cycles < 0.85 * flat.compute_cycles  # the layer mean misses the imbalance
    # MACs gated/skipped: the effectual fraction is linear in the densities, the layer mean is exact
    assert per_ch.actions_by_component["mac"]["mac"] == flat.actions_by_component["mac"]["mac"]


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dataflow, block", [("ws", SKIP_IN), ("is", SKIP_X)])
def test_searched_ws_is_padded_conv_statistical_vs_actual(density, stride, dataflow, block):
    """Padded 3x3 convs on searched WS/IS mappings: the statistical path counts each input
    vector's in-bounds elements per window position (border windows lose kernel rows/columns)
    and agrees with random actual masks of two inputs within 2% (cycles and effectual MACs; the
    two inputs keep the masks' sampling noise of the stride-2 effectual count near 1%)."""
    ch, size, n = 32, 28, 32
    act = random_mask((2, ch, size, size), density, int(density * 10) + stride)
    w = random_mask((n, ch, 3, 3), 0.5, 11)
    inter = block is SKIP_X

    def conv(**c):
        wsp = Sparsity(kind="unstructured", density=float(w.mean()), mask="c.w" if c else None) if inter else Sparsity()
        return Conv2d(name="c", in_channels=ch, out_channels=n, in_h=size, in_w=size, kernel=3, stride=stride,
                      padding=1, compression=Compression(act_density=float(act.mean()), sparsity=wsp, **c))

    hw = searched(dataflow, block, rows=8, cols=8)
    stat = run(conv(), hw)
    real = run(conv(act_mask="c.act"), hw, {"c.act": act, **({"c.w": w} if inter else {})})
    assert stat.mapping == real.mapping
    assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
    assert real.actions_by_component["mac"]["mac"] == pytest.approx(stat.actions_by_component["mac"]["mac"], rel=0.02)


def test_searched_ws_skips_padding_vectors_at_full_density():
    """Hand-computed: WS unrolls 8 channels at one kernel tap on D1, so a step whose tap falls in
    the zero padding feeds an all-zero vector even at input density 1. 3x3, pad 1, 14x14: the
    in-bounds taps per output row are 2, 3, ..., 3, 2 (sum 40), so 40 x 40 / (9 x 196) of the
    steps remain (the density folded over the vector, the old model, skipped none)."""
    def conv(**c):
        return Conv2d(name="c", in_channels=32, out_channels=32, in_h=14, in_w=14, kernel=3, padding=1,
                      compression=Compression(act_density=1.0, **c))

    dense = run(conv(), searched("ws", rows=8, cols=8))
    hw = searched("ws", SKIP_IN, rows=8, cols=8)
    stat = run(conv(), hw)
    real = run(conv(act_mask="c.act"), hw, {"c.act": np.ones((1, 32, 14, 14), dtype=bool)})
    assert stat.mapping.startswith("spatial D1:C8 ") and real.mapping == stat.mapping
    want = dense.compute_cycles * 1600 / (9 * 196)
    assert stat.compute_cycles == pytest.approx(want, abs=2) and real.compute_cycles == pytest.approx(want, abs=2)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_searched_ofmap_sram_output_format_hand_computed(dataflow):
    """Bitmask outputs at ofmap_sram, the next layer's input density 0.5, 32 output channels of
    8 bits: a fiber costs 32 mask bits + 16 x 8 value bits = 0.625 x dense. The final outputs
    (64 x 32 x 8 bits = 32 words of the 16-column array's 512-bit port) are written and read once
    at that ratio: 12 words fewer each way; partial sums (WS reads them back) stay uncompressed."""
    def net():
        return Workload(name="t", layers=[fc(64, 64, 32, 1.0),
                                          Linear(name="fc2", in_features=32, out_features=16, tokens=64,
                                                 compression=Compression(act_density=0.5))])

    def ofmap(block):
        r = accelsim.simulate(net(), searched(dataflow, block)).layers[0]
        return r.actions_by_component["ofmap_sram"], r

    plain, _ = ofmap(GATE_IN)
    fmt, r = ofmap({**GATE_IN, "levels": {"ofmap_sram": {"format": {"outputs": "bitmask"}}}})
    assert r.extra["format_ratio_ofmap_sram_outputs"] == pytest.approx(0.625)
    assert fmt["read"] == plain["read"] - 12 and fmt["write"] == plain["write"] - 12


@pytest.mark.parametrize("mapping", ["scalesim", "search"])
def test_format_larger_than_uncompressed_is_noted(mapping):
    """Run-length coding stores 8 + 5 bits per non-zero of 8-bit values: at input density 1 the
    inputs cost 13/8 = 1.625x in DRAM, which the layer notes (level, format, density, ratio);
    at density 0.3 (0.3 x 13/8 < 1 plus rare padding) it pays off and no note is made."""
    rle = {**GATE_IN, "levels": {"dram": {"format": {"inputs": "run_length", "run_bits": 5}}}}
    hw = hardware_from_dict({"kind": "systolic", "rows": 16, "cols": 16, "dataflow": "ws", "stall_model": "none",
                             "mapping": mapping, **SRAM, "sparsity": rle})
    dense_in = run(fc(64, 256, 32, 1.0), hw)
    note = [n for n in dense_in.notes if n.startswith("dram inputs in run_length cost")]
    assert note == ["dram inputs in run_length cost 1.625x their uncompressed bits at density 1.00 "
                    "(8-bit values, 5-bit runs): the format makes this traffic larger"]
    assert dense_in.extra["format_ratio_dram_inputs"] == pytest.approx(1.625)
    sparse_in = run(fc(64, 256, 32, 0.3), hw)
    assert sparse_in.extra["format_ratio_dram_inputs"] < 1.0
    assert not any("makes this traffic larger" in n for n in sparse_in.notes)


def test_os_intersection_with_real_input_masks():
    """OS intersection skipping with a real input mask: dense weights make it the input lanes
    exactly (same cycles as skipping on inputs); statistically sparse weights (no weight mask)
    keep the real lane counts and draw the weights -- within 2% of the all-statistical path and
    of real masks on both operands."""
    m, k, n = 1024, 256, 32
    a = random_mask((m, k), 0.3, 21)
    w = random_mask((n, k), 0.5, 22)
    d_a, d_w = float(a.mean()), float(w.mean())
    hx = searched("os", SKIP_X)
    dense_w = run(fc(m, k, n, d_a, "fc.act"), hx, {"fc.act": a})
    inputs_only = run(fc(m, k, n, d_a, "fc.act"), searched("os", SKIP_IN), {"fc.act": a})
    assert dense_w.compute_cycles == inputs_only.compute_cycles
    sp = Sparsity(kind="unstructured", density=d_w)
    mixed = run(fc(m, k, n, d_a, "fc.act", sparsity=sp), hx, {"fc.act": a})
    stat = run(fc(m, k, n, d_a, sparsity=sp), hx)
    both = run(fc(m, k, n, d_a, "fc.act", sparsity=Sparsity(kind="unstructured", density=d_w, mask="fc")), hx,
               {"fc.act": a, "fc": w})
    assert mixed.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.02)
    assert mixed.compute_cycles == pytest.approx(both.compute_cycles, rel=0.02)
    assert mixed.compute_cycles < 0.8 * dense_w.compute_cycles  # the weights' zeros are skipped too


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_os_intersection_padded_conv_statistical_lanes(density):
    """OS intersection on a padded 3x3 conv without a weight mask: the statistical rows are drawn
    input masks (padding and shared window zeros included, as for input skipping), not the
    density folded over every window (-0.8% / +1.0% at 0.1 / 0.9 against the real input mask with
    the same weight model; drawn: within 0.35%)."""
    ch, size, n = 32, 28, 32
    act = random_mask((2, ch, size, size), density, int(density * 10) + 1)
    sp = Sparsity(kind="unstructured", density=0.5)

    def conv(**c):
        return Conv2d(name="c", in_channels=ch, out_channels=n, in_h=size, in_w=size, kernel=3, padding=1,
                      compression=Compression(act_density=float(act.mean()), sparsity=sp, **c))

    hw = searched("os", SKIP_X)
    stat, real = run(conv(), hw), run(conv(act_mask="c.act"), hw, {"c.act": act})
    assert real.compute_cycles == pytest.approx(stat.compute_cycles, rel=0.006)
