"""Activation sparsity (zero gating / skipping) on the gather-scatter, SmartExchange and crossbar
engines: hand-computed cases, statistical vs actual-mask agreement, conservation, notes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import accelsim
from accelsim.engines.base import lower_layer
from accelsim.workload import Workload
from accelsim.workload.compression import Compression, Sparsity
from accelsim.workload.layer import Conv2d, LayerBase, Linear

ROOT = Path(__file__).resolve().parents[1]


def _hw(name: str, act_zero: str = "none", dram_inputs: str = "uncompressed", **update):  # type: ignore[no-untyped-def]
    """A shipped config with ``sparsity: {compute: {action: act_zero, on: inputs}}``."""
    hw = accelsim.load_hardware(ROOT / "hw_configs" / f"{name}.yaml")
    block = type(hw.sparsity).model_validate({"compute": {"action": act_zero, "on_zeros": "inputs"},
                                              "levels": {"dram": {"format": {"inputs": dram_inputs}}}})
    return hw.model_copy(update={**update, "sparsity": block})


def _wl(layer: LayerBase, act: np.ndarray | None = None, wmask: np.ndarray | None = None) -> Workload:
    if act is not None:
        layer = layer.model_copy(update={"compression": layer.compression.model_copy(update={"act_mask": "a"})})
    wl = Workload(name="t", layers=[layer])
    masks = {}
    if act is not None:
        masks["a"] = act.astype(np.uint8)
    if wmask is not None:
        masks["w"] = wmask.astype(np.uint8)
    if masks:
        wl.attach_masks(masks)
    return wl


def _prog(layer: LayerBase, hw, act: np.ndarray | None = None, wmask: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    wl = _wl(layer, act, wmask)
    return lower_layer(wl.layers[0], hw, wl)


def _count(prog, component: str, action: str) -> int:  # type: ignore[no-untyped-def]
    return sum(a.count for a in prog.actions if a.component == component and a.action == action)


def _act_rows(*nnz_slices: list[tuple[int, int]], width: int) -> np.ndarray:
    out = np.zeros((len(nnz_slices), width), dtype=bool)
    for i, spans in enumerate(nnz_slices):
        for lo, hi in spans:
            out[i, lo:hi] = True
    return out


# --- hand-computed cases -------------------------------------------------------------------------

def test_gather_scatter_dense_column_skip_hand_case():
    """8 lanes, 16 outputs (2 row groups), 4 tokens with 16, 32, 0, 64 non-zero activations of 64:
    skip issues 2 x 112 vector MACs + 1 loop cycle per group and vector = 232 cycles; gate keeps
    the dense (2 x 64 + 2) x 4 = 520 cycles and prices 16 x 112 = 1792 MACs."""
    layer = Linear(name="fc", in_features=64, out_features=16, tokens=4)
    act = _act_rows([(0, 16)], [(0, 32)], [], [(0, 64)], width=64)
    skip = _prog(layer, _hw("gather_scatter_sve128", act_zero="skip", dram_inputs="bitmask"), act)
    gate = _prog(layer, _hw("gather_scatter_sve128", act_zero="gate"), act)
    none = _prog(layer, _hw("gather_scatter_sve128"), act)
    assert skip.compute_cycles == 232 and skip.macs == 1792
    assert gate.compute_cycles == none.compute_cycles == 520
    assert gate.macs == _count(gate, "mac", "mac") == 1792 and none.macs == 16 * 64 * 4
    # bitmask activations under skip: 64 payload bits per non-zero... 8-bit words + 1 mask bit per element
    assert skip.dram_read_bits["ifmap"] == 112 * 8 and skip.dram_read_bits["ifmap_meta"] == 4 * 64
    assert skip.compulsory_read_bits <= sum(skip.dram_read_bits.values())


def test_gather_scatter_intersection_hand_case():
    """Weight row i keeps columns i and i+8; token 0 activates columns 0-7, token 1 column 15:
    effectual pairs = 8 + 1 = 9 (the intersection), fewer cycles than without skipping."""
    w = np.zeros((8, 16), dtype=bool)
    w[np.arange(8), np.arange(8)] = True
    w[np.arange(8), np.arange(8) + 8] = True
    layer = Linear(name="fc", in_features=16, out_features=8, tokens=2,
                   compression=Compression(sparsity=Sparsity(kind="unstructured", density=0.125, mask="w")))
    act = _act_rows([(0, 8)], [(15, 16)], width=16)
    skip = _prog(layer, _hw("gather_scatter_sve128", act_zero="skip"), act, w)
    none = _prog(layer, _hw("gather_scatter_sve128"), act, w)
    assert skip.macs == 9 and skip.extra["effectual_macs"] == 9
    assert none.macs == 32 and skip.compute_cycles < none.compute_cycles


def test_smartexchange_all_zero_wave_skip_hand_case():
    """2 pixels per wave, 6 reduction elements, 4 lines: pixel tile {t0, t1} has non-zeros at
    elements 0 and 5 (2 waves), tile {t2, t3} at element 1 (1 wave): 3 cycles instead of 12;
    gating prices 4 lines x 3 non-zero activations = 12 MACs."""
    layer = Linear(name="fc", in_features=6, out_features=4, tokens=4)
    act = _act_rows([(0, 1)], [(5, 6)], [], [(1, 2)], width=6)
    kw = dict(pe_rows=4, pe_cols=2)
    skip = _prog(layer, _hw("smartexchange_32x32", act_zero="skip", **kw), act)
    gate = _prog(layer, _hw("smartexchange_32x32", act_zero="gate", **kw), act)
    none = _prog(layer, _hw("smartexchange_32x32", **kw), act)
    assert none.compute_cycles == gate.compute_cycles == 12
    assert skip.compute_cycles == 3
    assert skip.macs == gate.macs == 12 and none.macs == 4 * 6 * 4
    assert _count(skip, "act_buffer", "read") < _count(none, "act_buffer", "read")


def test_crossbar_wave_skip_hand_case():
    """256 inputs = 2 row blocks of 128; tokens: t0 non-zero in block 1 only, t1 in both, t2 none,
    t3 in block 0 only. Each block is busy for 2 of 4 vectors: half the ADC conversions; the
    crossbars run in lock-step, so only the all-zero t2 saves its round (3 rounds of 4); gating
    drives 23 non-zero rows x 8 bit slices."""
    layer = Linear(name="fc", in_features=256, out_features=16, tokens=4)
    act = _act_rows([(128, 138)], [(0, 5), (128, 133)], [], [(0, 3)], width=256)
    hw_none, hw_gate, hw_skip = (_hw("isaac_like", act_zero=m) for m in ("none", "gate", "skip"))
    none, gate, skip = (_prog(layer, h, act) for h in (hw_none, hw_gate, hw_skip))
    steps = hw_none.input_steps(8)
    assert _count(gate, "dac", "drive") == 23 * steps and _count(none, "dac", "drive") == 256 * 4 * steps
    assert _count(gate, "adc", "convert") == _count(none, "adc", "convert")
    assert _count(skip, "adc", "convert") * 2 == _count(none, "adc", "convert")
    mvm = max(hw_none.ns_to_cycles(hw_none.mvm_ns(8)), 1)
    fill = hw_none.ns_to_cycles(hw_none.fill_ns)
    assert none.compute_cycles == 4 * mvm + fill and gate.compute_cycles == none.compute_cycles
    assert skip.compute_cycles == 3 * mvm + fill


# --- statistical vs actual masks -----------------------------------------------------------------

def _conv(d: float, **comp) -> Conv2d:  # unpadded (padded shapes: SHAPES below)
    return Conv2d(name="c", in_channels=16, out_channels=32, in_h=12, in_w=12, kernel_h=3, kernel_w=3,
                  compression=Compression(act_density=d, **comp))


def _random_act(d: float, seed: int, inputs: int = 8) -> np.ndarray:
    """``inputs`` masks of round(d x size) non-zeros placed uniformly at random (the uniform
    density model's tensor), as a calibration batch would record them."""
    return _random_shaped((16, 12, 12), d, seed, inputs)


CASES = [
    ("gather_scatter_sve128", dict(act_zero="skip"), {}),
    ("gather_scatter_sve128", dict(act_zero="skip", act_sample_vectors=512),
     dict(sparsity=Sparsity(kind="unstructured", density=0.5))),
    ("gather_scatter_sve128", dict(act_zero="gate"), {}),
    ("smartexchange_32x32", dict(act_zero="skip", pe_cols=4), {}),
    ("smartexchange_32x32", dict(act_zero="gate"), {}),
    ("isaac_like", dict(act_zero="skip"), {}),
]


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("cfg,update,comp", CASES, ids=[f"{c}-{u['act_zero']}{'-w' if k else ''}" for c, u, k in CASES])
def test_statistical_matches_actual_mask(cfg, update, comp, density):
    hw = _hw(cfg, **update)
    if cfg == "isaac_like":  # small crossbars, so all-zero blocks happen at these densities
        hw = hw.model_copy(update={"crossbar": hw.crossbar.model_copy(update={"rows": 8})})
    layer = _conv(density, **comp)
    stat = _prog(layer, hw)
    act = _prog(layer, hw, _random_act(density, seed=int(density * 100)))
    assert "statistical" in " ".join(stat.notes) and "activation mask" in " ".join(act.notes)
    for what in ("compute_cycles", "macs"):
        s, a = getattr(stat, what), getattr(act, what)
        assert a == pytest.approx(s, rel=0.02), (what, s, a)
    for comp, action in (("adc", "convert"), ("dac", "drive"), ("mac", "mac"), ("gather_unit", "gather")):
        s, a = _count(stat, comp, action), _count(act, comp, action)
        assert a == pytest.approx(s, rel=0.02), (comp, action, s, a)


SHAPES = {  # padded 3x3 (stride 1, 2), depthwise, linear: padding zeros cluster at the borders
    "pad_s1": dict(in_channels=16, out_channels=32, pad_h=1, pad_w=1),
    "pad_s2": dict(in_channels=16, out_channels=32, pad_h=1, pad_w=1, stride_h=2, stride_w=2),
    "depthwise": dict(in_channels=16, out_channels=16, groups=16, pad_h=1, pad_w=1),
}


def _shaped(name: str, d: float) -> tuple[LayerBase, tuple[int, ...]]:
    if name == "linear":
        return (Linear(name="fc", in_features=256, out_features=64, tokens=16, compression=Compression(act_density=d)),
                (16, 256))
    return (Conv2d(name="c", in_h=12, in_w=12, kernel_h=3, kernel_w=3, compression=Compression(act_density=d),
                   **SHAPES[name]), (16, 12, 12))


def _random_shaped(shape: tuple[int, ...], d: float, seed: int, inputs: int = 8) -> np.ndarray:
    n = int(np.prod(shape))
    out = np.zeros((inputs, n), dtype=bool)
    rng = np.random.default_rng(seed)
    for row in out:
        row[rng.permutation(n)[:round(d * n)]] = True
    return out.reshape((inputs, *shape))


@pytest.mark.parametrize("shape", [*SHAPES, "linear"])
@pytest.mark.parametrize("cfg,update,comp", [c for c in CASES if not c[2]],
                         ids=[f"{c}-{u['act_zero']}" for c, u, k in CASES if not k])
def test_statistical_matches_actual_mask_padded_depthwise_linear(cfg, update, comp, shape):
    """As above on padded (stride 1 and 2), depthwise and linear layers, densities 0.1-0.9: the
    statistical path models the padding pattern exactly (i.i.d. over the real inputs only)."""
    hw = _hw(cfg, **update)
    if cfg == "isaac_like":
        hw = hw.model_copy(update={"crossbar": hw.crossbar.model_copy(update={"rows": 8})})
    for density in (0.1, 0.3, 0.5, 0.7, 0.9):
        layer, in_shape = _shaped(shape, density)
        stat = _prog(layer, hw)
        act = _prog(layer, hw, _random_shaped(in_shape, density, seed=int(density * 100)))
        for what in ("compute_cycles", "macs"):
            s, a = getattr(stat, what), getattr(act, what)
            assert a == pytest.approx(s, rel=0.02), (density, what, s, a)
        for c, action in (("adc", "convert"), ("dac", "drive"), ("mac", "mac"), ("gather_unit", "gather")):
            s, a = _count(stat, c, action), _count(act, c, action)
            assert a == pytest.approx(s, rel=0.02), (density, c, action, s, a)


def test_padding_pattern_and_channel_density_hand_case():
    """3x3 conv, pad 1, on a 2x2 input, 2 channels, d = 0.5: every output pixel sees 4 real inputs
    of its 9 kernel positions per channel. A wave over both pixels of a 2-pixel tile at a corner
    position holds 0 real inputs in one tile and 1 in the other: P(busy) = (0 + 0.5) / 2; the
    centre holds 2 in both: 1 - 0.5^2. A vector's 18 rows hold 8 real inputs: 1 - 0.5^8; channel 0
    alone 4. With per-channel densities (0, 1) channel 0's rows are never busy, channel 1's always."""
    from accelsim.engines.act_sparsity import act_side

    kw = dict(name="c", in_channels=2, out_channels=4, in_h=2, in_w=2, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1)
    side = act_side(Conv2d(**kw, compression=Compression(act_density=0.5)), None)
    assert side is not None and side.valid is not None and side.valid.sum(axis=1).tolist() == [4, 4, 4, 4]
    assert side.density == pytest.approx(0.5 * 16 / 36)
    busy, nz = side.wave_busy(18, 1, 2, {2})
    assert busy[2][0][[0, 4, 9, 13]] == pytest.approx([0.25, 0.75, 0.25, 0.75])
    assert nz[0][[0, 4]] == pytest.approx([0.5 * 1 / 4, 0.5 * 4 / 4])  # corner: real for 1 of 4 pixels
    assert side.busy_sets([(0, 18), (0, 9)], 18) == pytest.approx([1 - 0.5 ** 8, 1 - 0.5 ** 4])
    ch = act_side(Conv2d(**kw, compression=Compression(act_density=0.5, act_channel_density=(0.0, 1.0))), None)
    assert ch is not None and ch.busy_sets([(0, 9), (9, 18)], 18) == pytest.approx([0.0, 1.0])
    assert ch.density == pytest.approx(side.density)


def _imbalanced(density_lo: float, density_hi: float) -> tuple[Conv2d, Conv2d, tuple[float, ...]]:
    """The unpadded test conv with half its 16 input channels at each density, and its mean-density twin."""
    ch = (density_lo,) * 8 + (density_hi,) * 8
    mean = sum(ch) / 16
    return _conv(mean, act_channel_density=ch), _conv(mean), ch


def _random_channels(ch: tuple[float, ...], seed: int, inputs: int = 8) -> np.ndarray:
    out = np.zeros((inputs, 16, 144), dtype=bool)
    rng = np.random.default_rng(seed)
    for x in out:
        for c, d in enumerate(ch):
            x[c, rng.permutation(144)[:round(d * 144)]] = True
    return out.reshape(inputs, 16, 12, 12)


@pytest.mark.parametrize("cfg,update", [("smartexchange_32x32", dict(act_zero="skip", pe_cols=4)),
                                        ("isaac_like", dict(act_zero="skip"))])
def test_per_channel_density_imbalance(cfg, update):
    """Channels at 0.1 and 0.9 (mean 0.5): gated MACs / driven rows are linear in the densities
    and equal the mean-density run; skipped waves (SmartExchange cycles, crossbar conversions)
    are not: sparse channels leave their waves / row blocks empty far more often, so the
    per-channel run is cheaper -- and agrees with a real mask of those channel densities (2%)."""
    hw = _hw(cfg, **update)
    if cfg == "isaac_like":
        hw = hw.model_copy(update={"crossbar": hw.crossbar.model_copy(update={"rows": 8})})
    per_ch, mean, ch = _imbalanced(0.1, 0.9)
    p, m = _prog(per_ch, hw), _prog(mean, hw)
    a = _prog(per_ch.model_copy(update={"compression": per_ch.compression.model_copy(
        update={"act_channel_density": None})}), hw, _random_channels(ch, seed=3))
    assert "per input channel" in " ".join(p.notes)
    assert p.macs == pytest.approx(m.macs, rel=1e-3)
    assert _count(p, "dac", "drive") == pytest.approx(_count(m, "dac", "drive"), rel=1e-3)
    what = ("adc", "convert") if cfg == "isaac_like" else None
    per, avg, real = ((_count(p, *what), _count(m, *what), _count(a, *what)) if what else
                      (p.compute_cycles, m.compute_cycles, a.compute_cycles))
    assert per < 0.95 * avg
    assert real == pytest.approx(per, rel=0.02)
    flat, _, _ = _imbalanced(0.5, 0.5)  # equal channels: the per-channel run is the mean run
    assert _prog(flat, hw).compute_cycles == pytest.approx(m.compute_cycles, rel=1e-3)


# --- conservation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", ["gather_scatter_sve128", "smartexchange_32x32", "isaac_like"])
@pytest.mark.parametrize("mode", ["gate", "skip"])
def test_conservation(cfg, mode):
    """Effectual MACs = the MACs the engine runs without activation sparsity x activation density
    (expectation, i.i.d.); on the gather-scatter engine, which also skips weight zeros, that is
    dense MACs x weight density x activation density. Utilization <= 1, DRAM >= compulsory."""
    wd, ad = 0.5, 0.3
    layer = _conv(ad, sparsity=Sparsity(kind="unstructured", density=wd))
    wl = Workload(name="t", layers=[layer])
    hw = _hw(cfg, act_zero=mode)
    stats = accelsim.simulate(wl, hw, compare_dense=False).layers[0]
    prog = lower_layer(layer, hw, wl)
    base = lower_layer(layer, _hw(cfg), wl)
    assert prog.extra["effectual_macs"] == pytest.approx(base.macs * ad, rel=1e-6)
    assert prog.macs <= base.macs
    if cfg == "gather_scatter_sve128":
        assert prog.extra["effectual_macs"] == pytest.approx(layer.densified().macs * wd * ad, rel=0.03)
    assert 0.0 <= stats.utilization <= 1.0 and stats.mapping_efficiency <= 1.0 + 1e-9
    assert stats.dram_read_bytes + stats.dram_write_bytes >= stats.compulsory_dram_bytes - 1e-9


@pytest.mark.parametrize("cfg", ["gather_scatter_sve128", "smartexchange_32x32", "isaac_like"])
def test_zero_activation_gating_lowers_energy_and_none_notes(cfg):
    layer = _conv(0.3)
    wl = Workload(name="t", layers=[layer])
    none = accelsim.simulate(wl, _hw(cfg), compare_dense=False).layers[0]
    gate = accelsim.simulate(wl, _hw(cfg, act_zero="gate"), compare_dense=False).layers[0]
    skip = accelsim.simulate(wl, _hw(cfg, act_zero="skip"), compare_dense=False).layers[0]
    assert any(n.startswith("activation sparsity (density 0.30) not exploited: sparsity.compute does not gate or "
                            "skip zero inputs on this config") for n in none.notes)
    for s in (gate, skip):
        assert not any("not exploited" in n for n in s.notes)
        assert any(n.startswith("activation sparsity exploited") for n in s.notes)
    assert gate.energy_pj < none.energy_pj and skip.energy_pj <= gate.energy_pj * 1.001
    assert gate.compute_cycles == none.compute_cycles and skip.compute_cycles <= none.compute_cycles
    dense = accelsim.simulate(Workload(name="t", layers=[_conv(1.0)]), _hw(cfg, act_zero="gate"),
                              compare_dense=False).layers[0]
    assert dense.energy_pj == pytest.approx(accelsim.simulate(Workload(name="t", layers=[_conv(1.0)]), _hw(cfg),
                                                              compare_dense=False).layers[0].energy_pj)


def test_activation_mask_shape_is_checked():
    from accelsim.errors import MaskError

    with pytest.raises(MaskError, match="activation mask 'a' has shape"):
        _prog(_conv(0.5), _hw("gather_scatter_sve128", act_zero="gate"), np.ones((3, 5, 5), dtype=bool))


def test_sparsity_block_targets_and_level_actions():
    """``on_zeros: weights`` does not touch activations (noted as not exploited); a level read
    action these engines do not model on its own is named in the notes, not silently dropped."""
    layer = _conv(0.3)
    wl = Workload(name="t", layers=[layer])
    for cfg in ("gather_scatter_sve128", "smartexchange_32x32", "isaac_like"):
        hw = accelsim.load_hardware(ROOT / "hw_configs" / f"{cfg}.yaml")
        weights_only = hw.model_copy(update={"sparsity": type(hw.sparsity).model_validate(
            {"compute": {"action": "skip", "on_zeros": "weights"}})})
        notes = lower_layer(layer, weights_only, wl).notes
        assert any(n.startswith("activation sparsity (density 0.30) not exploited") for n in notes)
        both = hw.model_copy(update={"sparsity": type(hw.sparsity).model_validate(
            {"compute": {"action": "gate", "on_zeros": "intersection"}, "levels": {"dram": {"action": "skip"}}})})
        notes = lower_layer(layer, both, wl).notes
        assert not any("not exploited" in n for n in notes)
        assert any(n.startswith("sparsity.levels.dram.action not modelled") for n in notes)


def test_compressed_dram_inputs_move_metadata():
    """Bitmask inputs from DRAM: payload = non-zeros x 8 bits, metadata = 1 bit per element
    (expected under the uniform model), reported as ``ifmap_meta``."""
    layer = Linear(name="fc", in_features=64, out_features=16, tokens=4, compression=Compression(act_density=0.25))
    prog = _prog(layer, _hw("gather_scatter_sve128", act_zero="gate", dram_inputs="bitmask"))
    assert prog.dram_read_bits["ifmap"] == pytest.approx(4 * 64 * 0.25 * 8, rel=0.01)
    assert prog.dram_read_bits["ifmap_meta"] == pytest.approx(4 * 64, rel=0.01)


def _fmt_hw(name: str, levels: dict):  # type: ignore[no-untyped-def]
    hw = accelsim.load_hardware(ROOT / "hw_configs" / f"{name}.yaml")
    return hw.model_copy(update={"sparsity": type(hw.sparsity).model_validate({"levels": levels})})


@pytest.mark.parametrize("cfg,buf", [("smartexchange_32x32", "act_buffer"), ("isaac_like", "tile_buffer")])
@pytest.mark.parametrize("fmt,meta", [("bitmask", 64), ("coordinate_payload", 16 * 6), ("uncompressed", 0)])
def test_input_formats_hand_case(cfg, buf, fmt, meta):
    """One 64-element input vector with 16 non-zeros (density 0.25, a real mask): bitmask = 16
    payload words (128 b) + 64 b of mask; COO = 128 b + 16 x lg 64 = 96 b of coordinates. DRAM
    moves payload (``ifmap``) and metadata (``ifmap_meta``); the input buffer is filled with both;
    compulsory DRAM traffic is the compressed input, so DRAM >= compulsory still holds."""
    layer = Linear(name="fc", in_features=64, out_features=16, tokens=1, compression=Compression(act_density=0.25))
    act = np.zeros((1, 64), dtype=bool)
    act[0, ::4] = True
    hw = _fmt_hw(cfg, {"dram": {"format": {"inputs": fmt}}, buf: {"format": {"inputs": fmt}}})
    prog = _prog(layer, hw, act)
    pay = 128 if fmt != "uncompressed" else 512
    assert prog.dram_read_bits["ifmap"] == pay
    assert prog.dram_read_bits.get("ifmap_meta", 0) == meta
    weights = sum(v for k, v in prog.dram_read_bits.items() if not k.startswith("ifmap"))
    assert prog.compulsory_read_bits - weights == pay + meta
    if cfg == "isaac_like":
        assert _count(prog, "tile_buffer", "write") == pay + meta + 16 * 8  # input (as stored) + outputs
        assert _count(prog, "dram", "read") == pay // 8 + meta // 8
    else:
        writes = [(a.count, a.bits) for a in prog.actions if a.component == "act_buffer" and a.action == "write"]
        assert sorted(writes) == sorted([(pay // 8, 8)] + ([(meta // 8, 8)] if meta else []))
    notes = " ".join(prog.notes)
    assert (f"input activations stored as {fmt} in dram" in notes) == (fmt != "uncompressed")


@pytest.mark.parametrize("cfg,buf", [("smartexchange_32x32", "act_buffer"), ("isaac_like", "tile_buffer")])
def test_input_formats_dense_input_and_unused_formats(cfg, buf):
    """A dense input in a bitmask still pays 1 metadata bit per word; weight/output formats the
    engine cannot store in are named in the notes; input bit-slice skipping (crossbar DAC
    drives) and MACs are untouched by the format."""
    layer = _conv(1.0)
    plain = _prog(layer, _hw(cfg, act_zero="skip"))
    hw = _fmt_hw(cfg, {"dram": {"format": {"inputs": "bitmask", "weights": "csr"}},
                       buf: {"format": {"outputs": "run_length"}}})
    hw = hw.model_copy(update={"sparsity": hw.sparsity.model_copy(update={"compute": _hw(cfg, "skip").sparsity.compute})})
    prog = _prog(layer, hw)
    assert prog.dram_read_bits["ifmap"] == plain.dram_read_bits["ifmap"]  # every word fetched, each 8 b
    assert prog.dram_read_bits["ifmap_meta"] == plain.dram_read_bits["ifmap"] // 8  # + 1 mask bit per word
    assert prog.macs == plain.macs and prog.compute_cycles >= plain.compute_cycles
    assert _count(prog, "dac", "drive") == _count(plain, "dac", "drive")
    notes = " ".join(prog.notes)
    assert f"sparsity.levels.dram.format.weights (csr) not used on {'crossbar' if cfg == 'isaac_like' else 'smartexchange'}" in notes
    assert f"sparsity.levels.{buf}.format.outputs (run_length) not used" in notes
    from accelsim.workload.layer import Pool

    pool = Pool(name="p", channels=16, in_h=12, in_w=12, kernel_h=2, kernel_w=2, stride_h=2, stride_w=2)
    pool_notes = " ".join(lower_layer(pool, hw, Workload(name="t", layers=[pool])).notes)
    assert "sparsity.levels.dram.format.inputs (bitmask) not used on" in pool_notes


@pytest.mark.parametrize("mode", ["gate", "skip"])
def test_per_channel_density_gather_scatter_is_linear(mode):
    """Gather-scatter skips zero activations element by element (cycles and MACs linear in the
    densities): channels at 0.1/0.9 cost what their mean 0.5 costs, and a real mask agrees."""
    hw = _hw("gather_scatter_sve128", act_zero=mode)
    per_ch, mean, ch = _imbalanced(0.1, 0.9)
    p, m = _prog(per_ch, hw), _prog(mean, hw)
    a = _prog(mean, hw, _random_channels(ch, seed=3))
    assert p.compute_cycles == m.compute_cycles and p.macs == m.macs
    assert a.compute_cycles == pytest.approx(p.compute_cycles, rel=0.02) and a.macs == pytest.approx(p.macs, rel=0.02)
