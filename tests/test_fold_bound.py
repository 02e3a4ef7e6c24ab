"""The fold order's lower bound (``engine.fold_bound_program``) and the comparison that skips
lowering the fold order when the bound already loses (``searched.FOLD_SKIP``): the bound is at
most the real fold program's estimate on every objective (its ``tighter()`` one equal to it), its
tile count at least what the walk charges, and a searched simulation is identical with the skip
on and off (the fold order then walked exactly where it is kept)."""
from __future__ import annotations

import itertools

import pytest

import accelsim
from accelsim import stats
from accelsim.engines.systolic import engine as EN, searched as SR
from accelsim.workload.layer import Conv2d, Linear, Matmul, Recurrent
from accelsim.workload.workload import Workload

HW = "hw_configs/systolic_32x32_is.yaml"

LAYERS = [
    Conv2d(name="pw", in_channels=64, out_channels=256, in_h=28, in_w=28, kernel=1),
    Conv2d(name="pw_s2", in_channels=96, out_channels=160, in_h=28, in_w=28, kernel=1, stride=2),  # columns skipped
    Conv2d(name="c3", in_channels=64, out_channels=64, in_h=28, in_w=28, kernel=3, padding=1),
    Conv2d(name="c3_s2", in_channels=48, out_channels=128, in_h=29, in_w=29, kernel=3, stride=2, padding=1),
    Conv2d(name="c7_s2", in_channels=3, out_channels=64, in_h=56, in_w=56, kernel=7, stride=2, padding=3, batch=2),
    Conv2d(name="dw", in_channels=32, out_channels=32, in_h=28, in_w=28, kernel=3, padding=1, groups=32),
    Conv2d(name="dil", in_channels=32, out_channels=32, in_h=20, in_w=20, kernel=3, padding=2, dilation=2),
    Linear(name="fc", in_features=512, out_features=1000, tokens=4),
    Matmul(name="qk", m=64, k=32, n=64, heads=4),
    Matmul(name="w_heads", m=48, k=64, n=96, heads=2, batch=2, b_operand="weight"),
    Recurrent(name="lstm", input_size=64, hidden_size=96, seq_len=5),  # B shared by the repetitions
]
#: (rows, cols, SRAM KB each): small SRAMs refetch A/B, spill partial sums and split folds
ARRAYS = [(8, 8, 64), (16, 32, 2), (32, 32, 64), (128, 16, 4), (64, 128, 1)]


def _hw(base, df: str, rows: int, cols: int, kb: float, **extra):
    srams = {f"{s}_sram": getattr(base, f"{s}_sram").model_copy(update={"size_kb": kb})
             for s in ("ifmap", "filter", "ofmap")}
    return base.model_copy(update={"dataflow": df, "rows": rows, "cols": cols, **srams, **extra})


def _charged(layer, hw) -> tuple[int, object]:
    """Tiles the real fold walk charges, and its program."""
    token = stats._TILE_BUDGET.set([0, layer.name, None])
    try:
        prog = EN.SystolicEngine()._lower_folds_uncached(layer, hw, None)
        return stats._TILE_BUDGET.get()[0], prog
    finally:
        stats._TILE_BUDGET.reset(token)


def test_bound_is_below_the_fold_program_on_every_objective(root):
    """Conv 1x1/3x3/7x7 (strided, padded, batched), depthwise, dilated, linear, matmul, LSTM x
    OS/WS/IS x arrays and SRAM sizes, against the real walk; estimates x objectives x bandwidths."""
    base = accelsim.load_hardware(root / HW)
    exact_at_once = 0
    for layer, df, (rows, cols, kb) in itertools.product(LAYERS, ("os", "ws", "is"), ARRAYS):
        hw = _hw(base, df, rows, cols, kb)
        charged, real = _charged(layer, hw)
        bits = EN._operand_bits(layer, hw)
        tiles = sum(EN.GemmLowering(g, hw, bits, b_resident_from_before=pre).tiles_bound()
                    for g in layer.gemms() for pre, _ in EN._repetitions(g, hw, bits))
        assert tiles >= charged, (layer.name, df, rows, cols, kb)
        lazy = EN.fold_bound_program(layer, hw)
        assert lazy is not None
        bound = lazy.program
        assert bound.body == () and lazy.compute_cycles == bound.compute_cycles
        assert (lazy.dram_read_total_bits, lazy.dram_write_total_bits) == (bound.dram_read_total_bits,
                                                                            bound.dram_write_total_bits)
        assert bound.compute_cycles == real.compute_cycles and bound.macs == real.macs
        assert bound.compulsory_read_bits == real.compulsory_read_bits
        for key in ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ofmap_sram_reads"):
            assert bound.sram_accesses[key] == real.sram_accesses[key]
        # exact but for OS/IS input reads of convolutions (halos refetched); never above
        for side in ("dram_read_bits", "dram_write_bits"):
            for op, bits_moved in getattr(real, side).items():
                got = getattr(bound, side)[op]
                assert got <= bits_moved, (layer.name, df, rows, cols, kb, side, op)
                if not (op == "ifmap" and df in ("os", "is") and layer.op == "conv2d"):
                    assert got == bits_moved, (layer.name, df, rows, cols, kb, side, op)
        exact_at_once += bound.dram_read_bits == real.dram_read_bits
        assert lazy.exact == (df == "ws" or layer.op != "conv2d")
        tight = lazy.tighter() if not lazy.exact else lazy
        assert tight is not None and tight.exact and tight.tighter() is None
        assert (tight.program.dram_read_bits, tight.program.dram_write_bits) == (real.dram_read_bits,
                                                                                 real.dram_write_bits)
        for objective, bw, stall in itertools.product(("latency", "energy", "edp"), (0.2, 6.4, 200.0),
                                                      ("pipeline", "none")):
            h = hw.model_copy(update={"objective": objective, "stall_model": stall,
                                      "dram": hw.dram.model_copy(update={"bw_gbps": bw})})
            assert SR._estimate(lazy, h, objective) == SR._estimate(bound, h, objective)
            assert SR._estimate(tight, h, objective) == SR._estimate(real, h, objective)  # the walk's
            assert SR._estimate(bound, h, objective) <= SR._estimate(real, h, objective), (
                layer.name, df, rows, cols, kb, objective, bw, stall)
    assert exact_at_once > len(LAYERS) * 3 * len(ARRAYS) // 2  # mostly exact, not just below


def test_bound_refuses_when_the_walk_might_exceed_the_tile_budget(root, monkeypatch):
    hw = _hw(accelsim.load_hardware(root / HW), "os", 16, 32, 2)
    layer = LAYERS[2]
    charged, _ = _charged(layer, hw)
    monkeypatch.setattr(stats, "MAX_TILES_PER_LAYER", charged - 1)
    assert EN.fold_bound_program(layer, hw) is None  # the walk would raise: only lowering it tells
    with pytest.raises(stats.TileLimitError):
        _charged(layer, hw)


def _run(wl, hw, skip: bool, monkeypatch) -> tuple[list, dict, int]:
    """Layer stats, metrics and the number of fold walks of a cold searched simulation."""
    calls = []
    orig = EN.SystolicEngine.__dict__["_lower_folds_uncached"]
    monkeypatch.setattr(EN.SystolicEngine, "_lower_folds_uncached",
                        lambda self, layer, h, w: calls.append(layer.name) or orig(self, layer, h, w))
    monkeypatch.setattr(SR, "FOLD_SKIP", skip)
    EN._FOLDS.clear()
    EN._BOUNDS.clear()
    SR._LOWERED.clear()
    rep = accelsim.simulate(wl, hw, compare_dense=False)
    return rep.layers, rep.metrics(), len(calls)


def test_skip_changes_nothing_but_the_fold_walks(root, monkeypatch):
    """Every layer field (programs' notes and mapping text included) and the metrics equal with the
    skip on and off, over dataflows, arrays, objectives and bandwidths; folds kept and skipped both occur."""
    base = accelsim.load_hardware(root / HW).model_copy(update={"mapping": "search"})
    wl = Workload(name="mix", layers=[ly for ly in LAYERS if SR.maps_layer(ly)])
    kept = skipped = 0
    for df, (rows, cols, kb), objective, bw in [
        ("os", (32, 32, 64), "latency", 6.4), ("ws", (16, 32, 16), "latency", 0.5), ("is", (8, 8, 64), "latency", 50.0),
        ("os", (128, 16, 8), "energy", 6.4), ("ws", (32, 32, 64), "edp", 6.4), ("is", (16, 32, 16), "edp", 1.0),
        ("ws", (8, 8, 64), "energy", 12.8), ("os", (64, 128, 16), "latency", 0.3),
    ]:
        hw = _hw(base, df, rows, cols, kb, objective=objective, dram=base.dram.model_copy(update={"bw_gbps": bw}))
        on, on_metrics, walks_on = _run(wl, hw, True, monkeypatch)
        off, off_metrics, walks_off = _run(wl, hw, False, monkeypatch)
        assert on == off and on_metrics == off_metrics, (df, rows, cols, objective)
        n_kept = sum(s.mapping.startswith("scalesim") for s in on)
        assert walks_off == len(wl.layers) and walks_on == n_kept  # the bounds end exact: walked iff kept
        kept += n_kept
        skipped += walks_off - walks_on
    assert kept > 0 and skipped > 0


@pytest.mark.parametrize("budget", [8, 100, 200, 600])
def test_skip_keeps_the_tile_budget_outcome(root, monkeypatch, budget):
    """A budget the fold walk exceeds (searched mapping alone, with the note) or not: same report."""
    hw = _hw(accelsim.load_hardware(root / HW), "ws", 16, 32, 16, mapping="search")
    wl = Workload(name="b", layers=[LAYERS[2], LAYERS[7]])
    monkeypatch.setattr(stats, "MAX_TILES_PER_LAYER", budget)
    on, _, _ = _run(wl, hw, True, monkeypatch)
    off, _, _ = _run(wl, hw, False, monkeypatch)
    assert on == off
