"""The systolic engine's lowering memos: the fold order shared by points that differ only in the
DRAM (bandwidth, prices), and the fold order of a searched layer lowered only on a memo miss."""
from __future__ import annotations

import accelsim
from accelsim.engines.systolic import engine as EN, searched as SR
from accelsim.workload.zoo import get_model

HW = "hw_configs/systolic_32x32_is.yaml"


def _variants(hw):
    """``hw`` at three DRAM bandwidths and DRAM prices, in both mappings."""
    out = []
    for mapping in ("scalesim", "search"):
        for bw, pj in ((hw.dram.bw_gbps, None), (hw.dram.bw_gbps / 3, None), (hw.dram.bw_gbps * 2, 3.5)):
            dram = hw.dram.model_copy(update={"bw_gbps": bw, **({"pj_per_bit": pj} if pj is not None else {})})
            out.append(hw.model_copy(update={"mapping": mapping, "dram": dram}))
    return out


def test_fold_memo_matches_lowering_every_point(root, monkeypatch):
    wl = get_model("resnet18", resolution=64)
    hws = _variants(accelsim.load_hardware(root / HW))
    EN._FOLDS.clear()
    SR._LOWERED.clear()
    EN._BOUNDS.clear()
    memo = [accelsim.simulate(wl, hw).layers for hw in hws]
    assert 0 < len(EN._FOLDS) < sum(1 for ly in wl.layers if ly.op == "conv2d") * 2  # shared across the DRAM variants
    monkeypatch.setattr(EN, "_FOLDS_MAX", 0)
    monkeypatch.setattr(SR, "_LOWERED_MAX", 0)
    monkeypatch.setattr(EN, "_BOUNDS_MAX", 0)  # the fold-order bounds, shared across the DRAM variants too
    EN._FOLDS.clear()
    SR._LOWERED.clear()
    EN._BOUNDS.clear()
    plain = [accelsim.simulate(wl, hw).layers for hw in hws]
    assert memo == plain  # every field of every layer: names, notes, cycles, energy, mapping text
    # the bandwidth does change the timing (so the shared fold lowering is not a shared result)
    assert len({sum(s.latency_cycles for s in layers) for layers in plain[:3]}) == 3


def test_searched_layer_lowers_the_fold_order_only_on_a_memo_miss(root, monkeypatch):
    calls = []
    orig = EN.SystolicEngine._lower_folds_uncached

    def counted(self, layer, hw, workload):
        calls.append(layer.name)
        return orig(self, layer, hw, workload)

    monkeypatch.setattr(EN.SystolicEngine, "_lower_folds_uncached", counted)
    monkeypatch.setattr(SR, "FOLD_SKIP", False)  # every comparison lowers the fold order (skip: below)
    wl = get_model("resnet18", resolution=64)
    hw = accelsim.load_hardware(root / HW).model_copy(update={"mapping": "search", "name": "fold-memo-test"})
    EN._FOLDS.clear()
    SR._LOWERED.clear()
    first = accelsim.simulate(wl, hw)
    mapped = [ly for ly in wl.layers if SR.maps_layer(ly)]
    distinct = {ly.model_copy(update={"name": ""}) for ly in mapped}
    assert len(calls) == len(distinct) < len(mapped)
    calls.clear()
    EN._FOLDS.clear()  # the searched memo alone must spare the fold lowering
    again = accelsim.simulate(wl, hw)
    assert calls == [] and again.layers == first.layers
    monkeypatch.setattr(SR, "FOLD_SKIP", True)  # walks only where the bound cannot rule the fold order out
    SR._LOWERED.clear()
    skipped = accelsim.simulate(wl, hw)
    assert len(calls) < len(distinct) and skipped.layers == first.layers
