"""A factorised export collapses back to the dense model for the dense comparison."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from accelsim.frontend import compress, export  # noqa: E402
from accelsim.frontend.models import example_input, get_torch_model  # noqa: E402


def test_lowrank_export_densifies_to_the_dense_export(root):
    model = get_torch_model("resnet18", seed=0)
    x = example_input("resnet18")
    dense = export(model, x, name="r18")
    cm = compress(model, root / "recipes" / "lowrank.yaml")
    wl = export(cm, x, name="r18")
    parts = [layer for layer in wl.layers if layer.compression.factorization.kind != "none"]
    assert parts, "the recipe factorised nothing"
    assert all(layer.compression.factor_of for layer in parts)
    back = wl.densified()
    assert [layer.name for layer in back.layers] == [layer.name for layer in dense.layers]
    assert back.total_macs == dense.total_macs
