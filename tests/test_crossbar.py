"""Memristor crossbar accelerator: ISAAC component table, hand-computed mappings, pruning, errors.

Reference figures: tests/data/reference/literature.md B1 / H-B1 (ISAAC, [V] where marked there)
and the per-action energies of the Accelergy ISAAC library (hwcomponents-library,
library/isaac.py), which assumes a 1.2 GS/s ADC where ISAAC says 1.28 GS/s.
"""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import accelsim
from accelsim.energy import unit_energy_pj
from accelsim.engines.base import lower_layer
from accelsim.engines.crossbar import block_shape, map_workload
from accelsim.engines.crossbar_kernels import block_nnz
from accelsim.errors import ConfigError, InfeasibleError, MaskError, UnsupportedLayerError
from accelsim.hardware.crossbar import Allocation, CrossbarAccelerator, exact_adc_bits
from accelsim.hardware.io import hardware_from_dict
from accelsim.stats import Action
from accelsim.workload import Workload
from accelsim.workload.compression import Compression, Quant, Sparsity
from accelsim.workload.layer import Conv2d, Linear, Matmul, Pool, Recurrent

from conftest import ROOT

ISAAC = ROOT / "hw_configs" / "isaac_like.yaml"
NEUROSIM = ROOT / "hw_configs" / "neurosim_like.yaml"


@pytest.fixture(scope="module")
def isaac() -> CrossbarAccelerator:
    hw = accelsim.load_hardware(ISAAC)
    assert isinstance(hw, CrossbarAccelerator)
    return hw


def small_hw(**changes) -> CrossbarAccelerator:
    """64x64 crossbars, 2-bit cells, one 64-column ADC at 0.64 GS/s (100 ns per step), 4 xbars/IMA."""
    base = dict(name="small", crossbar={"rows": 64, "cols": 64, "cell_bits": 2, "read_ns": 100},
                adc={"bits": "auto", "columns_per_adc": 64, "sample_rate_gsps": 0.64},
                ima={"crossbars": 4}, tile={"imas": 2}, chip={"tiles": 4}, reference={"weight_bits": 8, "act_bits": 8})
    base.update(changes)
    return CrossbarAccelerator.model_validate(base)


def wl_of(*layers, masks=None) -> Workload:
    wl = Workload(name="t", layers=list(layers))
    if masks is not None:
        wl.attach_masks(masks)
    return wl


def sparse(layer, **sp):
    return layer.model_copy(update={"compression": Compression(sparsity=Sparsity(**sp), quant=layer.compression.quant)})


# --- ISAAC component table (literature B1 / H-B1), all within 5 % -------------------------------

def test_isaac_ima_power_from_component_table(isaac):
    ima = isaac.ima_power_mw()
    assert ima["adc"] == pytest.approx(16.0, rel=0.05)          # 8 ADCs x 2 mW [V]
    assert sum(ima.values()) == pytest.approx(24.1, rel=0.05)   # ISAAC Table I IMA total
    assert ima["adc"] / sum(ima.values()) == pytest.approx(16 / 24.1, rel=0.05)  # ADCs dominate (66 %)


def test_isaac_tile_and_chip_from_component_table(isaac):
    assert sum(isaac.tile_power_mw().values()) == pytest.approx(330.0, rel=0.05)
    assert sum(isaac.tile_area_mm2().values()) == pytest.approx(0.37, rel=0.05)
    assert sum(isaac.chip_power_mw().values()) / 1e3 == pytest.approx(65.8, rel=0.05)   # [V] chip power
    assert sum(isaac.chip_area_mm2().values()) == pytest.approx(85.4, rel=0.05)         # [V] chip area


def test_isaac_peak_throughput_and_density(isaac):
    # one IMA = 8 x (128 rows x 16 16-bit weights); 16 steps of 100 ns -> 10.24 GMAC/s
    assert isaac.peak_macs_per_s(alloc=isaac.full_ima()) == pytest.approx(16384 / 1.6e-6, rel=1e-9)
    assert isaac.peak_tops() == pytest.approx(41.3, rel=0.05)           # [D] 2016 IMAs x 10.24 GMAC/s x 2
    assert isaac.peak_gops_per_mm2() == pytest.approx(479.0, rel=0.05)  # [V] ISAAC-CE 479 GOP/s/mm^2
    assert isaac.peak_gops_per_mm2() / 63.5 == pytest.approx(7.5, rel=0.05)  # [V] 7.5x DaDianNao density


def test_isaac_per_action_energies_match_accelergy_library(isaac):
    e = isaac.unit_energies_pj()
    f = 1.28 / 1.2  # the library's actions last 1.28/1.2 longer (1.2 GS/s ADC)
    assert e["adc.convert"] * f == pytest.approx(1.666666667, rel=0.01)
    assert e["dac.drive"] * f == pytest.approx(0.41667, rel=0.01)
    assert e["shift_add.op"] * f == pytest.approx(0.021, rel=0.01)
    assert e["tile_buffer.bit"] * f == pytest.approx(20.45 / 256, rel=0.01)
    assert e["router.bit"] * f == pytest.approx(20.74 / 256, rel=0.01)
    assert e["bus.bit"] * f == pytest.approx(0.054, rel=0.01)


def test_adc_resolution_rule():
    assert exact_adc_bits(128, 1, 2) == 9        # log2(128) + 1 + 2 - 1 (literature B1)
    assert exact_adc_bits(128, 1, 1) == 8
    assert exact_adc_bits(128, 2, 2) == 11       # log2(R) + v + w when neither is 1
    assert exact_adc_bits(64, 1, 4) == 10
    hw = CrossbarAccelerator(adc={"bits": "auto"})
    assert hw.adc_bits == 8                      # ISAAC: 9 - 1 for weight flipping
    assert CrossbarAccelerator(adc={"bits": "auto"}, weight_flipping=False).adc_bits == 9
    # unset ADC power/area follow the 8-bit ISAAC ADC, scaled per bit (higher resolution costs more)
    p = [CrossbarAccelerator(adc={"bits": b}).adc_power_mw for b in (5, 8, 10)]
    assert p[1] == pytest.approx(2.0) and p[0] < p[1] < p[2]


# --- hand-computed mapping and counts --------------------------------------------------------------

def test_hand_computed_linear_layer():
    hw = small_hw()
    layer = Linear(name="fc", in_features=300, out_features=200, tokens=5)
    wl = wl_of(layer)
    cm = map_workload(wl, hw)
    g = cm.layers["fc"].gemms[0]
    # 8-bit weights on 2-bit cells: 4 columns per weight -> 16 weights per 64-column crossbar
    assert (g.cpw, g.wcols, g.row_blocks, g.col_blocks) == (4, 16, 5, 13)
    assert cm.allocation == Allocation(crossbars=65, imas=17, tiles=9, chips=3)
    prog = lower_layer(layer, hw, wl)
    assert prog.compute_cycles == 5 * 8 * 100 + 100          # 5 vectors x 8 bit-steps x 100 ns + fill
    assert prog.macs == 300 * 200 * 5 == layer.macs
    acts = {(a.component, a.action): a.count for a in prog.actions}
    assert acts[("dac", "drive")] == 300 * 13 * 8 * 5         # used rows of every block x steps x vectors
    assert acts[("adc", "convert")] == 200 * 5 * 4 * 8 * 5    # used outputs x row blocks x cpw x steps
    assert acts[("shift_add", "tile_op")] == (4 * 200 + 200) * 5   # row-block merges + offset corrections
    assert prog.pe_count == math.ceil(65 * 64 * 16 / 800)
    assert prog.dram_read_bits == {"ifmap": 5 * 300 * 8} and prog.dram_write_bits == {"ofmap": 5 * 200 * 8}
    e = {(a.component, a.action): a.count * unit_energy_pj(a, hw) for a in prog.actions}
    assert e[("adc", "convert")] == pytest.approx(acts[("adc", "convert")] * hw.adc_energy_pj)


def test_separate_slices_and_differential_pairs():
    layer = Linear(name="fc", in_features=64, out_features=64)
    sep = map_workload(wl_of(layer), small_hw(slice_layout="separate"))
    assert sep.layers["fc"].gemms[0].crossbars == 4            # one 64x64 block, 4 slice crossbars
    diff = map_workload(wl_of(layer), small_hw(signed_weights="differential"))
    g = diff.layers["fc"].gemms[0]
    assert (g.cpw, g.wcols, g.col_blocks) == (8, 8, 8)          # w+ and w- double the columns


def test_full_ima_draws_table_power_and_peak_throughput(isaac):
    # 128 inputs x 128 16-bit outputs = exactly one full IMA (8 crossbars of 128 x 16 weights)
    q = Compression(quant=Quant(weight_bits=16, act_bits=16))
    layer = Linear(name="fc", in_features=128, out_features=128, tokens=2000, compression=q)
    wl = wl_of(layer)
    cm = map_workload(wl, isaac)
    assert (cm.allocation.crossbars, cm.allocation.imas) == (8, 1)
    prog = lower_layer(layer, isaac, wl)
    seconds = prog.compute_cycles * isaac.ns_per_cycle * 1e-9
    ima_parts = set(isaac.ima_power_mw())
    energy = {}
    for a in prog.actions:
        if a.component in ima_parts and a.action not in ("tile_op", "tile_write", "tile_read", "static"):
            energy[a.component] = energy.get(a.component, 0.0) + a.count * unit_energy_pj(a, isaac)
    busy = (prog.compute_cycles - 100) / prog.compute_cycles  # minus the pipeline fill
    for comp, mw in isaac.ima_power_mw().items():
        assert energy[comp] * 1e-12 / seconds * 1e3 == pytest.approx(mw * busy, rel=1e-6), comp
    macs_per_s = prog.macs / seconds
    assert macs_per_s == pytest.approx(isaac.peak_macs_per_s(alloc=isaac.full_ima()) * busy, rel=1e-6)
    assert prog.macs / (prog.compute_cycles * prog.pe_count) <= 1.0


# --- crossbar-block pruning -----------------------------------------------------------------------

def test_block_nnz_kernel_matches_numpy():
    rng = np.random.default_rng(0)
    for groups, out, red, rows, wcols in [(1, 37, 101, 16, 8), (4, 24, 50, 7, 3), (2, 10, 9, 9, 5)]:
        m = rng.random((out, red)) < 0.05
        got = block_nnz(m, groups, rows, wcols)
        pg = out // groups
        ref = np.zeros_like(got)
        for o, k in zip(*np.nonzero(m)):
            g = o // pg
            ref[g, k // rows, (o - g * pg) // wcols] += 1
        assert np.array_equal(got, ref)
        assert got.sum() == m.sum()
        assert np.array_equal(block_nnz(np.asfortranarray(m.astype(np.float32)), groups, rows, wcols), ref)


def test_mask_empties_blocks_exactly():
    hw = small_hw()
    layer = Linear(name="fc", in_features=300, out_features=200)
    mask = np.ones((200, 300), np.uint8)
    mask[0:32, 64:128] = 0            # outputs 0..31 = column blocks 0,1; reduction 64..127 = row block 1
    pruned = sparse(layer, kind="block", density=float(mask.mean()), block_h=16, block_w=64, mask="fc")
    wl = wl_of(pruned, masks={"fc": mask})
    g = map_workload(wl, hw).layers["fc"].gemms[0]
    assert (g.total_blocks, g.nonempty_blocks, g.source) == (65, 63, "mask")
    prog = lower_layer(pruned, hw, wl)
    assert prog.macs == 300 * 200 - 2 * 64 * 16        # the two empty blocks are not computed
    assert prog.macs >= int(mask.sum())                  # zeros inside kept blocks still are
    acts = {(a.component, a.action): a.count for a in prog.actions}
    assert acts[("dac", "drive")] == (300 * 13 - 2 * 64) * 8


def test_mask_shape_is_checked():
    layer = sparse(Linear(name="fc", in_features=30, out_features=20), kind="unstructured", density=0.5, mask="fc")
    with pytest.raises(MaskError, match="has shape .30, 20.*needs"):
        map_workload(wl_of(layer, masks={"fc": np.ones((30, 20))}), small_hw())


def test_depthwise_groups_pack_block_diagonally():
    hw = small_hw()
    dw = Conv2d(name="dw", in_channels=16, out_channels=16, groups=16, in_h=8, in_w=8, kernel=3, padding=1)
    g = map_workload(wl_of(dw), hw).layers["dw"].gemms[0]
    assert (g.packed, g.nonempty_blocks) == (7, 3)       # 64 // 9 = 7 groups per crossbar block
    mask = np.zeros((16, 1, 3, 3), np.uint8)
    mask[:6] = 1                                         # 6 groups keep their filter (density 6/16)
    pruned = sparse(dw, kind="filter", density=6 / 16, mask="dw")
    g2 = map_workload(wl_of(pruned, masks={"dw": mask}), hw).layers["dw"].gemms[0]
    assert g2.nonempty_blocks == 1 and g2.cells_used == 6 * 9
    assert map_workload(wl_of(dw), small_hw(mapping={"pack_groups": False})).layers["dw"].gemms[0].nonempty_blocks == 16


def test_block_record_estimate_without_mask():
    hw = small_hw()
    layer = Linear(name="fc", in_features=1024, out_features=1024)
    rows, wcols = block_shape(layer, hw)
    aligned = sparse(layer, kind="block", density=0.25, block_h=wcols, block_w=rows)
    g = map_workload(wl_of(aligned), hw).layers["fc"].gemms[0]
    assert g.total_blocks == 1024 and g.nonempty_blocks == 256     # a block is empty with probability 0.75
    unstructured = sparse(layer, kind="unstructured", density=0.25)
    assert map_workload(wl_of(unstructured), hw).layers["fc"].gemms[0].nonempty_blocks == 1024  # no whole block empty


def test_block_pruning_saves_area_and_power_admm_direction(isaac):
    """Memristor ADMM direction (literature B5): crossbar-block pruning cuts crossbar area and power."""
    rng = np.random.default_rng(1)
    layers = [Conv2d(name="c1", in_channels=64, out_channels=128, in_h=16, in_w=16, kernel=3, padding=1),
              Conv2d(name="c2", in_channels=128, out_channels=128, in_h=16, in_w=16, kernel=3, padding=1),
              Linear(name="fc", in_features=2048, out_features=512)]
    dense = wl_of(*layers)
    masks, pruned_layers = {}, []
    for layer in layers:
        rows, wcols = block_shape(layer, isaac)
        shape = (layer.out_channels, layer.in_channels, 3, 3) if isinstance(layer, Conv2d) else (512, 2048)
        out, red = shape[0], int(np.prod(shape[1:]))
        keep = rng.random((math.ceil(red / rows), math.ceil(out / wcols))) < 0.1
        keep[0, 0] = True
        m2 = np.repeat(np.repeat(keep, rows, 0)[:red], wcols, 1)[:, :out].T
        masks[layer.name] = m2.reshape(shape).astype(np.uint8)
        pruned_layers.append(sparse(layer, kind="block", density=float(m2.mean()), block_h=wcols, block_w=rows,
                                    mask=layer.name))
    pruned = wl_of(*pruned_layers, masks=masks)
    rd, rp = accelsim.simulate(dense, isaac), accelsim.simulate(pruned, isaac, compare_dense=True)
    ad, ap = rd.area_by_component_mm2, rp.area_by_component_mm2
    kept = sum(g.nonempty_blocks for lm in map_workload(pruned, isaac).layers.values() for g in lm.gemms)
    total = sum(g.total_blocks for lm in map_workload(pruned, isaac).layers.values() for g in lm.gemms)
    assert ap["crossbar"] / ad["crossbar"] == pytest.approx(kept / total, rel=1e-9)   # area follows kept blocks
    assert ap["adc"] / ad["adc"] < 0.2
    on_chip = [c for c in ad if c != "chip_io"]  # one chip each: the I/O links do not shrink
    assert sum(ap[c] for c in on_chip) < 0.5 * sum(ad[c] for c in on_chip)
    assert rp.energy_pj < 0.5 * rd.energy_pj
    assert rp.summary()["energy_saving_vs_dense"] > 2.0
    pw_d = isaac.power_mw_of(map_workload(dense, isaac).allocation)
    pw_p = isaac.power_mw_of(map_workload(pruned, isaac).allocation)
    assert pw_p["adc"] < 0.2 * pw_d["adc"]


# --- replication, digital layers, unsupported layers ----------------------------------------------

def test_balance_replication_uses_the_budget(isaac):
    wl = accelsim.load_workload(ROOT / "models" / "tiny_cnn.yaml")
    base = accelsim.simulate(wl, isaac)
    hw = isaac.model_copy(update={"max_chips": 1, "mapping": isaac.mapping.model_copy(update={"replication": "balance"}),
                                  "chip": isaac.chip.model_copy(update={"tiles": 1})})
    hw = CrossbarAccelerator.model_validate(hw.model_dump())
    cm = map_workload(wl, hw)
    assert cm.allocation.imas <= hw.tile.imas                       # within the 1-tile budget
    assert cm.layers["conv1"].replication > 1 and cm.layers["fc"].replication == 1  # fc has one vector
    rep = accelsim.simulate(wl, hw)
    assert rep.latency_cycles < base.latency_cycles
    assert rep.macs == base.macs == wl.total_macs
    # explicit copies: conv1's 64 vectors over 4 copies -> 16 rounds of 8 steps x 100 ns (+ fill)
    fixed = CrossbarAccelerator.model_validate({**isaac.model_dump(), "mapping": {"replication": {"conv1": 4}}})
    prog = lower_layer(wl["conv1"], fixed, wl)
    assert prog.compute_cycles == 16 * 800 + 100 and prog.extra["replication"] == 4
    assert map_workload(wl, fixed).layers["conv1"].imas == 4 * map_workload(wl, isaac).layers["conv1"].imas
    bad = CrossbarAccelerator.model_validate({**isaac.model_dump(), "mapping": {"replication": {"nope": 2}}})
    with pytest.raises(ConfigError, match="mapping.replication.nope"):
        map_workload(wl, bad)


def test_pool_and_lstm_run_attention_does_not(isaac):
    pool = Pool(name="p", channels=64, in_h=32, in_w=32, kernel=2, stride=2)
    prog = lower_layer(pool, isaac, None)
    assert prog.macs == 0 and prog.compute_cycles >= 1
    assert any(a.component == "pool" and a.count == pool.vector_ops for a in prog.actions)
    lstm = Recurrent(name="lstm", op="lstm", input_size=256, hidden_size=256, seq_len=10)
    rep = accelsim.simulate(wl_of(lstm), isaac)
    assert rep.macs == lstm.macs
    att = Matmul(name="qk", m=128, k=64, n=128, heads=12)
    with pytest.raises(UnsupportedLayerError, match="attention"):
        lower_layer(att, isaac, None)


@pytest.mark.parametrize("hw_file", [ISAAC, NEUROSIM])
@pytest.mark.parametrize("model", ["vgg16", "resnet18", "mobilenet_v2", "alexnet"])
def test_conservation_on_shipped_configs(hw_file, model):
    hw = accelsim.load_hardware(hw_file)
    wl = accelsim.load_workload(ROOT / "models" / f"{model}.yaml")
    rep = accelsim.simulate(wl, hw)
    assert rep.macs == wl.total_macs
    for s in rep.layers:
        assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
        assert 0.0 <= s.utilization <= 1.0 + 1e-12 and 0.0 <= s.mapping_efficiency <= 1.0 + 1e-12
        assert s.latency_cycles == s.fill_cycles + s.compute_cycles + s.stall_cycles + s.drain_cycles
        assert all(v >= 0 for v in s.energy_by_component_pj.values())
    assert set(rep.area_by_component_mm2) >= {"crossbar", "adc", "dac", "shift_add", "tile_buffer", "router"}
    assert rep.layers[0].dram_read_bytes > 0 and rep.layers[-1].dram_write_bytes > 0  # first in, last out


def test_deterministic_and_fast_forward_exact(isaac):
    wl = accelsim.load_workload(ROOT / "models" / "tiny_cnn.yaml")
    a, b = accelsim.simulate(wl, isaac), accelsim.simulate(wl, isaac, skip=False)
    assert a.to_frame().equals(accelsim.simulate(wl, isaac).to_frame())
    cols = [c for c in a.to_frame().columns if c != "timing_source"]
    assert a.to_frame()[cols].equals(b.to_frame()[cols])     # fast-forward = full replay


# --- bad configs and the CLI -------------------------------------------------------------------------

@pytest.mark.parametrize("patch, field, words", [
    ({"adc": {"bits": 0}}, "adc.bits", "at least 1 bit"),
    ({"crossbar": {"cell_bits": 9}}, "crossbar.cell_bits", "at most 8 bits"),
    ({"adc": {"columns_per_adc": 256}}, None, "exceeds crossbar.cols"),
    ({"mapping": {"replication": "balance"}}, None, "needs max_chips"),
    ({"dac": {"bits": 1, "volts": 2}}, "dac.volts", "unknown field"),
])
def test_bad_configs_are_config_errors(patch, field, words):
    with pytest.raises(ConfigError) as exc:
        hardware_from_dict({"kind": "crossbar", **patch}, source="bad.yaml")
    assert words in str(exc.value) and "bad.yaml" in str(exc.value)
    if field:
        assert exc.value.field == field


def test_budget_exceeded_is_infeasible(isaac):
    hw = CrossbarAccelerator.model_validate({**isaac.model_dump(), "max_chips": 1})
    with pytest.raises(InfeasibleError, match="needs 3 chips"):
        accelsim.simulate(ROOT / "models" / "vgg16.yaml", hw)


def test_cli_simulate_with_plot_and_errors(tmp_path):
    out = tmp_path / "x.png"
    cmd = [sys.executable, "-m", "accelsim.cli", "simulate", "--workload", str(ROOT / "models" / "vgg16.yaml"),
           "--hw", str(ISAAC), "--plot", str(out), "--max-rows", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000 and "vgg16 on crossbar 'isaac-ce'" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISAAC.read_text().replace("max_chips: null", "max_chips: 1"))
    proc = subprocess.run(cmd[:7] + [str(bad)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1          # one line, exit code 2
    assert "needs 3 chips" in proc.stderr and "Traceback" not in proc.stderr


def test_area_plot_writes_file(tmp_path, isaac):
    from accelsim.plot.area import area_plot_path, plot_area

    rep = accelsim.simulate(ROOT / "models" / "tiny_cnn.yaml", isaac)
    path = area_plot_path(tmp_path / "fig.png")
    plot_area({"tiny": rep, "table": isaac.ima_area_mm2()}, path)
    assert path.name == "fig_area.png" and path.stat().st_size > 1000
    with pytest.raises(ValueError):
        plot_area({})
