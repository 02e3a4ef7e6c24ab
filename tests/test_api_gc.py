"""accelsim.simulate pauses Python's cyclic garbage collector during a call and restores it."""
from __future__ import annotations

import gc

import pytest

import accelsim
from accelsim import api
from accelsim.workload.zoo import get_model


def _hw(root):
    return accelsim.load_hardware(root / "hw_configs" / "systolic_32x32_is.yaml")


def test_collector_paused_inside_and_restored_after(root, monkeypatch):
    seen = []
    real = api.lower_layer

    def spy(*a, **k):
        seen.append(gc.isenabled())
        return real(*a, **k)

    monkeypatch.setattr(api, "lower_layer", spy)
    assert gc.isenabled()
    report = accelsim.simulate(get_model("tiny_cnn"), _hw(root))
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()  # a caller that paused it itself keeps it paused
    try:
        assert accelsim.simulate(get_model("tiny_cnn"), _hw(root)).latency_cycles == report.latency_cycles
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collector_restored_after_an_error(root, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "lower_layer", boom)
    with pytest.raises(RuntimeError):
        accelsim.simulate(get_model("tiny_cnn"), _hw(root))
    assert gc.isenabled()
