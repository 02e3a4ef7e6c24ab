"""Mask layout, validation errors (file, layer, field) and seeded synthetic masks."""
from __future__ import annotations

import numpy as np
import pytest

import accelsim
from accelsim.workload.masks import (
    DENSITY_TOLERANCE, expected_mask_shape, gemm_weight_views, layer_mask, mask_from_gemm_views, synthetic_mask,
    validate_mask,
)
from accelsim.errors import ConfigError, MaskError
from accelsim.hardware import load_hardware
from accelsim.workload import Conv2d, Elementwise, Linear, Matmul, Recurrent, Workload
from accelsim.workload.io import save_workload
from accelsim.workload.compression import Compression, Sparsity

from conftest import ROOT

CONV = Conv2d(name="conv", in_channels=8, out_channels=16, in_h=8, in_w=8, kernel=3, padding=1)


def _with(layer, **sp):
    return layer.model_copy(update={"compression": Compression(sparsity=Sparsity(**sp))})


def test_layouts():
    assert expected_mask_shape(CONV) == (16, 8, 3, 3)
    assert expected_mask_shape(Conv2d(name="g", in_channels=8, out_channels=16, in_h=4, in_w=4, kernel=3, groups=4)) == (16, 2, 3, 3)
    assert expected_mask_shape(Linear(name="l", in_features=5, out_features=7)) == (7, 5)
    assert expected_mask_shape(Matmul(name="m", m=4, k=5, n=6, heads=2, b_operand="weight")) == (2, 6, 5)
    assert expected_mask_shape(Matmul(name="a", m=4, k=5, n=6)) is None
    assert expected_mask_shape(Recurrent(name="r", input_size=3, hidden_size=2)) == (8, 5)
    assert expected_mask_shape(Elementwise(name="e", elements=4)) is None


def test_conv_gemm_view_is_the_natural_flattening():
    mask = np.zeros((16, 8, 3, 3), dtype=np.uint8)
    mask[0, 5, 1, 2] = 1  # out 0, in 5, kernel (1, 2)
    (view,) = gemm_weight_views(CONV, mask)
    assert view.shape == (1, 16, 72)
    assert np.flatnonzero(view[0, 0]).tolist() == [5 * 9 + 1 * 3 + 2]  # weight.reshape(out, -1) order
    back = mask_from_gemm_views(CONV, [view])
    assert np.array_equal(back, mask.astype(bool))


def test_recurrent_views_split_input_and_hidden():
    r = Recurrent(name="r", input_size=3, hidden_size=2)
    mask = np.zeros((8, 5), dtype=bool)
    mask[:, 4] = True
    x, h = gemm_weight_views(r, mask)
    assert x.shape == (1, 8, 3) and h.shape == (1, 8, 2)
    assert not x.any() and h[0, :, 1].all()


def test_validation_errors_name_file_layer_and_field():
    layer = _with(CONV, kind="unstructured", density=0.5, mask="conv_w")
    good = synthetic_mask(layer, seed=1)
    assert validate_mask(good, layer, source="m.npz").dtype == np.bool_
    with pytest.raises(MaskError) as e:
        validate_mask(good[:, :4], layer, source="m.npz")
    msg = str(e.value)
    assert "m.npz" in msg and "conv.compression.sparsity.mask" in msg and "(16, 8, 3, 3)" in msg
    assert isinstance(e.value, ConfigError)
    bad = good.astype(np.int64)
    bad[0, 0, 0, 0] = 2
    with pytest.raises(MaskError, match="only 0 and 1"):
        validate_mask(bad, layer, source="m.npz")
    with pytest.raises(MaskError, match="only 0 and 1"):
        validate_mask(good.astype(float) * 0.5, layer, source="m.npz")
    with pytest.raises(MaskError, match="dtype"):
        validate_mask(good.astype(str), layer, source="m.npz")
    dense = np.ones_like(good)
    with pytest.raises(MaskError, match=r"density 1\.0000.*declares unstructured density 0\.5000"):
        validate_mask(dense, layer, source="m.npz")
    # within the stated tolerance: accepted
    off = good.copy().reshape(-1)
    flip = np.flatnonzero(off == 0)[: int(0.01 * off.size)]
    off[flip] = 1
    assert abs(off.mean() - 0.5) <= DENSITY_TOLERANCE
    validate_mask(off.reshape(good.shape), layer, source="m.npz")
    with pytest.raises(MaskError, match="no weights"):
        validate_mask(np.ones(4), _with(Elementwise(name="e", elements=4), kind="unstructured", density=0.5, mask="x"),
                      source="m.npz")


def test_structure_checks():
    nm = _with(CONV, kind="nm", n=2, m=4, density=0.5, mask="k")
    m = synthetic_mask(nm, seed=0)
    validate_mask(m, nm, source="f")
    (view,) = gemm_weight_views(nm, m)
    v = view.copy()
    row = v[0, 0]
    row[:4] = [True, True, True, False]  # 3 non-zeros in the first group of 4 (density shifts by 1/1152)
    with pytest.raises(MaskError, match="2:4"):
        validate_mask(mask_from_gemm_views(nm, [v]).astype(np.uint8), nm, source="f")
    blk = _with(CONV, kind="block", density=0.5, block_h=4, block_w=8, mask="b")
    mb = synthetic_mask(blk, seed=0)
    validate_mask(mb, blk, source="f")
    (vb,) = gemm_weight_views(blk, mb)
    vb = vb.copy()
    kept = np.argwhere(vb[0])[0]
    vb[0, kept[0], kept[1]] = False
    vb[0, np.argwhere(~vb[0])[-1][0], np.argwhere(~vb[0])[-1][1]] = True
    with pytest.raises(MaskError, match="partially kept"):
        validate_mask(mask_from_gemm_views(blk, [vb]), blk, source="f")
    gs = _with(CONV, kind="gs", density=0.25, gs_group_rows=8, mask="g")
    mg = synthetic_mask(gs, seed=0)
    validate_mask(mg, gs, source="f")
    (vg,) = gemm_weight_views(gs, mg)
    vg = vg.copy()
    j = np.flatnonzero(vg[0, 3])[0]
    vg[0, 3, j] = False
    vg[0, 3 + 8, np.flatnonzero(~vg[0, 11])[0]] = True
    with pytest.raises(MaskError, match="GS pattern"):
        validate_mask(mask_from_gemm_views(gs, [vg]), gs, source="f")


@pytest.mark.parametrize("sp", [
    dict(kind="unstructured", density=0.3), dict(kind="block", density=0.25, block_h=4, block_w=4),
    dict(kind="nm", n=1, m=4, density=0.25), dict(kind="gs", density=0.2, gs_group_rows=4),
    dict(kind="pattern", density=4 / 9 * 0.5, pattern_entries=4, num_patterns=6, kernel_density=0.5),
])
def test_synthetic_masks_have_declared_structure(sp):
    layer = _with(CONV, mask="x", **sp)
    a = synthetic_mask(layer, seed=3)
    b = synthetic_mask(layer, seed=3)
    assert np.array_equal(a, b)  # seeded
    assert not np.array_equal(a, synthetic_mask(layer, seed=4))
    validate_mask(a, layer, source="synthetic")


def test_mask_file_through_simulate(tmp_path):
    """A workload on disk with a bad .npz: one clear error naming the file, layer and field."""
    lin = _with(Linear(name="fc", in_features=64, out_features=32, tokens=4), kind="unstructured", density=0.25,
                mask="fc.weight")
    wl = Workload(name="w", layers=[lin], masks="w_masks.npz")
    path = tmp_path / "w.yaml"
    save_workload(wl, path)
    np.savez(tmp_path / "w_masks.npz", **{"fc.weight": np.ones((32, 63), dtype=np.uint8)})
    hw = load_hardware(ROOT / "hw_configs" / "gather_scatter_sve128.yaml")
    with pytest.raises(MaskError) as e:
        accelsim.simulate(path, hw)
    assert "w_masks.npz" in str(e.value) and "fc.compression.sparsity.mask" in str(e.value)
    good = synthetic_mask(lin, seed=0)
    np.savez(tmp_path / "w_masks.npz", **{"fc.weight": good})
    rep = accelsim.simulate(path, hw)
    assert rep.layers[0].extra["mask_measured"] == 1.0
    loaded = accelsim.load_workload(path)
    assert np.array_equal(layer_mask(loaded, loaded.layers[0]), good.astype(bool))
    np.savez(tmp_path / "w_masks.npz", other=good)
    with pytest.raises(MaskError, match="not found"):
        accelsim.simulate(path, hw)


def test_front_end_style_nm_and_block_masks_validate():
    """The front-end prunes along weight.reshape(out, -1); such masks pass the structure checks."""
    nm = _with(CONV, kind="nm", n=2, m=4, density=0.5, mask="k")
    flat = np.tile(np.array([1, 1, 0, 0], dtype=np.uint8), (16, 72 // 4))
    validate_mask(flat.reshape(16, 8, 3, 3), nm, source="f")
    blk = _with(CONV, kind="block", density=40 / 72, block_h=4, block_w=8, mask="b")
    flat = np.zeros((16, 72), dtype=np.uint8)
    flat[:, :40] = 1  # five whole 8-wide block columns of the natural flattening
    validate_mask(flat.reshape(16, 8, 3, 3), blk, source="f")
