"""FPGA overlay accelerator: resources, hand-computed latencies, conservation, the integer programs.

Reference facts: device resources from literature.md F ([V], necst/faber_fpga boards.py); DSP
packing per Xilinx WP486 (two INT8 MACs per DSP48E2 sharing one operand). Latency/resource
expectations below are computed by hand from the model in the module docstrings (exact).
"""
from __future__ import annotations

import math
import random

import pytest

from accelsim import cli
from accelsim.api import simulate, simulate_programs
from accelsim.energy import unit_energy_pj
from accelsim.engines.base import lower_layer
from accelsim.engines.fpga import ArrayParams, PixelTiling, Work, pixel_blocks, tile_cost, tile_options, work_items
from accelsim.dse.fpga.ilp import (OverlaySpace, PipelineSpace, exhaustive_overlay, exhaustive_pipeline,
                                       optimize_overlay, optimize_pipeline)
from accelsim.errors import ConfigError, InfeasibleError, UnsupportedLayerError
from accelsim.hardware.fpga import (DEVICES, ArrayShape, FpgaAccelerator, array_resources, bram18_blocks,
                                    macs_per_dsp, uram_blocks)
from accelsim.hardware.io import hardware_from_dict, load_hardware
from accelsim.sim.run import simulate_layer_program
from accelsim.stats import Action, program_totals
from accelsim.workload.layer import Conv2d, Elementwise, Linear, Pool
from accelsim.workload.workload import Workload
from accelsim.workload.zoo import get_model

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ZU3EG = ROOT / "hw_configs" / "zu3eg.yaml"
ZCU104 = ROOT / "hw_configs" / "zcu104.yaml"


def fpga(**kw) -> FpgaAccelerator:
    data = dict(kind="fpga", name="t", device="zu3eg", clock_mhz=100, pe_in=8, pe_out=8, pe_pix=1,
                ifmap_sram={"size_kb": 64}, filter_sram={"size_kb": 64}, ofmap_sram={"size_kb": 64},
                dram={"bw_gbps": 100000.0})
    data.update(kw)
    return hardware_from_dict(data)  # type: ignore[return-value]


# --- device facts and resource arithmetic --------------------------------------------------------

def test_device_presets_match_literature():
    z = DEVICES["zu3eg"]
    assert (z["dsp"], z["bram18"], z["lut"], z["ff"], z["uram"]) == (360, 432, 70_560, 141_120, 0)
    z = DEVICES["zcu104"]
    assert (z["dsp"], z["bram18"], z["lut"], z["ff"], z["uram"]) == (1_728, 624, 230_400, 460_800, 96)


@pytest.mark.parametrize("width,depth,expected", [
    (36, 512, 1), (72, 512, 2), (36, 1024, 2), (18, 1024, 1),
    (256, 2048, 29),   # 36x512: 8*4=32, 18x1K: 15*2=30, 9x2K: 29*1=29
    (8, 16384, 8),     # every narrow mode needs 8
    (2048, 512, 57),   # 2048/36 -> 57 wide
])
def test_bram18_blocks(width, depth, expected):
    assert bram18_blocks(width, depth)[0] == expected


def test_uram_blocks():
    assert uram_blocks(4096, 4096) == (57, 57)
    assert uram_blocks(72, 4097) == (2, 1)


def test_dsp_packing_rules():
    # WP486: two int8 MACs per DSP when lanes pair along a shared operand
    assert macs_per_dsp(8, 8, pe_out=16, pe_pix=2, group_packing=False, dsp_packing=True, low_bit_macs=4) == 2
    assert macs_per_dsp(8, 8, pe_out=16, pe_pix=1, group_packing=False, dsp_packing=True, low_bit_macs=4) == 2
    assert macs_per_dsp(8, 8, pe_out=3, pe_pix=1, group_packing=False, dsp_packing=True, low_bit_macs=4) == 1
    assert macs_per_dsp(8, 8, pe_out=16, pe_pix=1, group_packing=True, dsp_packing=True, low_bit_macs=4) == 1
    assert macs_per_dsp(8, 8, pe_out=16, pe_pix=2, group_packing=False, dsp_packing=False, low_bit_macs=4) == 1
    assert macs_per_dsp(4, 4, pe_out=16, pe_pix=4, group_packing=False, dsp_packing=True, low_bit_macs=4) == 4
    assert macs_per_dsp(4, 4, pe_out=6, pe_pix=1, group_packing=False, dsp_packing=True, low_bit_macs=4) == 2
    assert macs_per_dsp(16, 16, pe_out=16, pe_pix=2, group_packing=False, dsp_packing=True, low_bit_macs=4) == 1
    assert macs_per_dsp(32, 32, pe_out=16, pe_pix=2, group_packing=False, dsp_packing=True, low_bit_macs=4) == 0.25


def test_lut_macs_use_no_dsp():
    from accelsim.hardware.fpga import ResourceCosts

    res, p = array_resources(ArrayShape(4, 4, 1, "lut"), 4, 4, 32, ResourceCosts())
    assert res.dsp == 0 and p == 0
    assert res.lut == 16 * (1.0 * 4 * 4 + 32)
    assert res.ff == 16 * (32 + 4 + 4)


def test_zu3eg_config_utilization_by_hand():
    hw = load_hardware(ZU3EG)
    t = hw.fits()
    # 16x16x2 = 512 lanes, 2 MACs/DSP -> 256 DSP; LUT 512*8 + 256*10 + 32*40 + 6000; FF 512*16 + 32*32 + 8000
    assert t.used["dsp"] == 256
    assert t.used["lut"] == 512 * 8 + 256 * 10 + 32 * 40 + 6000
    assert t.used["ff"] == 512 * 16 + 32 * 32 + 8000
    # ifmap 256-bit port, 64 KB -> depth 2048 -> 29; filter 2048-bit x 512 -> 57; ofmap 1024-bit x 1024 -> 57; +4 control
    assert t.by_component["ifmap_sram"]["bram18"] == 29
    assert t.by_component["filter_sram"]["bram18"] == 57
    assert t.by_component["ofmap_sram"]["bram18"] == 57
    assert t.used["bram18"] == 29 + 57 + 57 + 4
    assert t.fits and t.binding == "dsp"
    assert all(t.utilization(r) <= 1 for r in t.used)
    assert "fits zu3eg: yes" in t.text()


def test_shipped_configs_fit():
    for path in (ZU3EG, ZCU104):
        hw = load_hardware(path)
        assert isinstance(hw, FpgaAccelerator) and hw.fits().fits


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="budget.dsp 400 exceeds"):
        fpga(budget={"dsp": 400})
    with pytest.raises(ConfigError, match="unknown device"):
        fpga(device="xc7z020")
    with pytest.raises(ConfigError, match="no URAM"):
        fpga(ifmap_sram={"size_kb": 64, "memory": "uram"})
    with pytest.raises(ConfigError, match="pe_in"):
        fpga(pe_in=0)
    with pytest.raises(ConfigError, match="fewer than two"):
        fpga(pe_in=64, pe_out=64, filter_sram={"size_kb": 1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: fpga\nname: x\ndevice: zu3eg\npe_in: 8\npe_out: 8\nifmap_sram: {size_kb: 8}\n"
                   "filter_sram: {size_kb: 8}\nofmap_sram: {size_kb: 8}\nwhatever: 1\n")
    with pytest.raises(ConfigError, match="whatever"):
        load_hardware(bad)


# --- hand-computed latency ------------------------------------------------------------------------

def test_linear_layer_by_hand():
    # 1x64 @ 64x32 on 8x8x1, overhead 4 + log2(8) = 7: one tile of ceil(64/8)*ceil(32/8) = 32 cycles + 7.
    # DDR is effectively infinite (1 cycle per transfer): latency = 1 load + 39 + 1 store.
    hw = fpga()
    layer = Linear(name="fc", in_features=64, out_features=32)
    prog = lower_layer(layer, hw)
    assert prog.compute_cycles == 39
    assert prog.macs == 64 * 32
    assert prog.dram_read_bits == {"ifmap": 64 * 8, "filter": 64 * 32 * 8}
    assert prog.dram_write_bits == {"ofmap": 32 * 8}
    t = simulate_layer_program(prog, hw)
    assert (t.fill_cycles, t.compute_cycles, t.stall_cycles, t.drain_cycles) == (1, 39, 0, 1)
    assert prog.extra["est_cycles"] == 41 == t.latency_cycles


def test_conv_layer_by_hand():
    # 3x3 conv, pad 1, 2->4 channels on 4x4; array 2x4x2 (k=18, n=4, m=16 pixels).
    # One tile: ceil(16/2) * ceil(4/4) * ceil(18/2) = 72 cycles + overhead 4 + log2(2) = 77.
    hw = fpga(pe_in=2, pe_out=4, pe_pix=2)
    layer = Conv2d(name="c", in_channels=2, out_channels=4, in_h=4, in_w=4, kernel=3, padding=1)
    prog = lower_layer(layer, hw)
    assert prog.compute_cycles == 77
    assert prog.dram_read_bits == {"ifmap": 4 * 4 * 2 * 8, "filter": 18 * 4 * 8}
    assert simulate_layer_program(prog, hw).latency_cycles == 1 + 77 + 1
    assert hw.macs_per_dsp == 2 and hw.fits().used["dsp"] == 8


def test_halo_rows_counted():
    layer = Conv2d(name="c", in_channels=2, out_channels=4, in_h=4, in_w=4, kernel=3, padding=1)
    w = work_items(layer, ArrayShape(2, 4, 2))[0]
    blocks = pixel_blocks(w, PixelTiling(rows=2))
    # output rows 0-1 read input rows 0-2, rows 2-3 read rows 1-3: 3 rows x 4 cols x 2 channels each
    assert blocks.pixels == (8, 8) and blocks.a_words == (24, 24)
    seg = pixel_blocks(w, PixelTiling(seg=2))
    # 2-pixel segments: columns 0-1 read input cols 0-2 (3), cols 2-3 read 1-3 (3); rows 2 at the edges, else 3
    assert seg.count == 8 and sum(seg.a_words) == (2 + 3 + 3 + 2) * 2 * 3 * 2


def test_reload_counts_by_hand():
    # m=64 (8 tm blocks of 8), n=32, k=64 on 8x8x1. wr, whole k: B once, A once per n block.
    p = ArrayParams(ArrayShape(8, 8, 1), 8, 8, 32, 0, 1e9)
    w = Work("fc", m=64, n=32, k=64, count=1)
    blocks = pixel_blocks(w, PixelTiling(tm=8))
    c = tile_cost(w, blocks, tn=8, tk=64, order="wr", p=p)
    assert (c.a_load_words, c.b_load_words) == (64 * 64 * 4, 64 * 32)
    c = tile_cost(w, blocks, tn=8, tk=64, order="ir", p=p)
    assert (c.a_load_words, c.b_load_words) == (64 * 64, 64 * 32 * 8)
    c = tile_cost(w, blocks, tn=8, tk=16, order="wr", p=p)  # split reduction: both refetched
    assert (c.a_load_words, c.b_load_words) == (64 * 64 * 4, 64 * 32 * 8)
    assert c.compute_cycles == 64 * 4 * 8  # 64 pixels x ceil(32/8) x ceil(64/8), no overhead
    assert c.tiles == 8 * 4 * 4
    assert c.need_bits == (8 * 16 * 8, 16 * 8 * 8, 8 * 8 * 32)


def test_table_matches_scalar_cost():
    hw = load_hardware(ZU3EG)
    p = ArrayParams.of(hw)
    layer = get_model("resnet18").layers[5]
    w = work_items(layer, hw.shape)[0]
    opts = tile_options(w, p)
    rng = random.Random(0)
    for choice, cost in rng.sample(opts, 40):
        ref = tile_cost(w, pixel_blocks(w, choice.pixels), choice.tn, choice.tk, choice.order, p)
        assert ref == cost


def test_vector_layers_by_hand():
    hw = fpga(vector_lanes=16)
    pool = Pool(name="p", channels=8, in_h=8, in_w=8, kernel=2, stride=2)
    prog = lower_layer(pool, hw)
    assert prog.compute_cycles == math.ceil(8 * 4 * 4 * 4 / 16)
    add = Elementwise(name="a", elements=1000)
    prog = lower_layer(add, hw)
    assert prog.compute_cycles == math.ceil(1000 / 16)
    assert prog.dram_read_bits == {"ifmap": 2000 * 8}


def test_group_packing_fills_the_array():
    dw = Conv2d(name="dw", in_channels=32, out_channels=32, in_h=8, in_w=8, kernel=3, padding=1, groups=32)
    plain = lower_layer(dw, fpga(pe_in=9, pe_out=16))
    packed = lower_layer(dw, fpga(pe_in=9, pe_out=16, group_packing=True))
    assert plain.macs == packed.macs == dw.macs
    # group by group: 32 x (64 px x 1 x 1 + overhead); packed: 2 passes of 16 groups
    assert packed.compute_cycles * 8 < plain.compute_cycles
    assert [w.groups for w in work_items(dw, ArrayShape(9, 16, 1, group_packing=True))] == [16]


# --- conservation on whole networks ---------------------------------------------------------------

@pytest.mark.parametrize("model,hw_path", [("resnet18", ZU3EG), ("mobilenet_v2", ZCU104), ("tiny_cnn", ZU3EG)])
def test_conservation_on_networks(model, hw_path):
    hw = load_hardware(hw_path)
    wl = get_model(model)
    pairs = simulate_programs(wl, hw)
    assert sum(p.macs for p, _ in pairs) == wl.total_macs
    for prog, t in pairs:
        tiles, load, compute, store, _ = program_totals(prog.body)
        assert load == prog.dram_read_total_bits and store == prog.dram_write_total_bits
        assert compute == prog.compute_cycles == t.compute_cycles
        assert prog.dram_read_total_bits >= prog.compulsory_read_bits
        assert prog.dram_write_total_bits >= prog.compulsory_write_bits
        # the roofline estimate the ILP optimises is a lower bound of the simulated latency
        assert t.latency_cycles >= prog.extra["est_cycles"]
        if prog.macs:
            assert prog.macs <= t.compute_cycles * prog.pe_count
    rep = simulate(wl, hw)
    assert all(0 <= s.utilization <= 1 for s in rep.layers)
    assert set(rep.summary()["energy_by_component_pj"]) >= {"mac", "ifmap_sram", "filter_sram", "ofmap_sram", "dram", "static"}


def test_fast_forward_equals_replay():
    hw = load_hardware(ZU3EG)
    layer = get_model("resnet18").layers[2]
    prog = lower_layer(layer, hw)
    fast, full = simulate_layer_program(prog, hw, skip=True), simulate_layer_program(prog, hw, skip=False)
    assert fast.skipped_tiles > 0
    for f in ("compute_cycles", "stall_cycles", "fill_cycles", "drain_cycles", "dram_busy_cycles"):
        assert getattr(fast, f) == getattr(full, f)


def test_energy_prices():
    hw = load_hardware(ZU3EG)
    assert unit_energy_pj(Action("mac", "mac", 1), hw) == pytest.approx(1.0 / 2)  # one DSP op shared by 2 MACs
    assert unit_energy_pj(Action("filter_sram", "read", 1), hw) == pytest.approx(57 * 8.0)
    assert unit_energy_pj(Action("dram", "read", 1, 8), hw) == pytest.approx(8 * 8.0)
    assert hw.leakage_power_mw() == {"static": 250.0}


def test_unsupported_layers_say_why():
    hw = fpga()
    wide = Linear(name="fc16", in_features=8, out_features=8, compression={"quant": {"weight_bits": 16, "act_bits": 16}})
    with pytest.raises(UnsupportedLayerError, match="datapath"):
        lower_layer(wide, hw)
    fp = Linear(name="fp", in_features=8, out_features=8, compression={"quant": {"scheme": "float", "weight_bits": 8}})
    with pytest.raises(UnsupportedLayerError, match="fixed-point"):
        lower_layer(fp, hw)


def test_config_over_budget_is_a_clear_error():
    hw = fpga(pe_in=32, pe_out=32, pe_pix=2)
    assert not hw.fits().fits and hw.fits().over == ["dsp"]
    with pytest.raises(InfeasibleError, match=r"binding resource: dsp"):
        simulate(get_model("tiny_cnn"), hw)


# --- integer programs vs exhaustive search -------------------------------------------------------

def _random_workload(seed: int) -> Workload:
    rng = random.Random(seed)
    layers = []
    c, h = rng.choice([3, 8, 16]), rng.choice([8, 14, 16])
    for i in range(rng.randint(2, 4)):
        out = rng.choice([8, 16, 24, 32, 48])
        k = rng.choice([1, 3])
        groups = c if (k == 3 and rng.random() < 0.3 and out == c) else 1
        layers.append(Conv2d(name=f"c{i}", in_channels=c, out_channels=out, in_h=h, in_w=h, kernel=k, padding=k // 2,
                             stride=rng.choice([1, 1, 2]), groups=groups))
        c, h = out, layers[-1].out_h
    layers.append(Linear(name="fc", in_features=c * h * h, out_features=rng.choice([10, 100])))
    return Workload(name=f"rand{seed}", layers=layers)


SMALL = OverlaySpace(pe_in=(4, 8, 16), pe_out=(4, 8, 16), pe_pix=(1, 2), group_packing=(False, True),
                     depths=(512, 1024, 2048), memories=("bram",))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_overlay_ilp_finds_the_exhaustive_optimum(seed):
    rng = random.Random(100 + seed)
    wl = _random_workload(seed)
    base = fpga(clock_mhz=200, dram={"bw_gbps": rng.choice([1.0, 4.26, 19.2])},
                budget={"dsp": rng.choice([40, 90, 200]), "bram18": rng.choice([60, 150, 432])})
    ilp = optimize_overlay(wl, base, SMALL)
    ref = exhaustive_overlay(wl, base, SMALL)
    assert ilp.stats.status == "optimal"
    assert ilp.est_cycles == ref.est_cycles
    assert ilp.utilization.fits
    # the engine, given the chosen hardware, picks tilings with the same estimates
    progs = simulate_programs(wl, ilp.hw)
    assert sum(int(p.extra["est_cycles"]) for p, _ in progs) == ilp.est_cycles


def test_overlay_ilp_on_a_network_subgraph_with_uram():
    wl = get_model("resnet18")
    sub = [l.name for l in wl.layers[2:6]]
    base = load_hardware(ZCU104)
    space = OverlaySpace(pe_in=(8, 16, 32), pe_out=(16, 32), pe_pix=(1, 2), group_packing=(False,),
                         depths=(512, 2048, 4096), memories=("bram", "uram"))
    ilp = optimize_overlay(wl, base, space, layers=sub)
    ref = exhaustive_overlay(wl, base, space, layers=sub)
    assert ilp.est_cycles == ref.est_cycles
    assert [g.layer for g in ilp.choices if g.layer in sub] == [n for n in sub if wl[n].macs]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pipeline_ilp_finds_the_exhaustive_optimum(seed):
    rng = random.Random(seed)
    wl = _random_workload(10 + seed)
    base = fpga(clock_mhz=200, dram={"bw_gbps": 4.26},
                budget={"dsp": rng.choice([30, 60, 120]), "bram18": rng.choice([40, 100, 432])})
    space = PipelineSpace(parallel=(1, 2, 4, 8, 16))
    names = [l.name for l in wl.layers[:3]]
    ilp = optimize_pipeline(wl, base, space, layers=names)
    ref = exhaustive_pipeline(wl, base, space, layers=names)
    assert ilp.interval_cycles == ref.interval_cycles
    assert ilp.utilization.fits
    assert ilp.interval_cycles == max(max(s.option.cycles for s in ilp.stages), ilp.dram_cycles)
    # hand check of one stage: cycles = pixels * ceil(K / pe_in) * ceil(N / pe_out)
    s0, l0 = ilp.stages[0], wl[names[0]]
    g = l0.gemms()[0]
    assert s0.option.cycles == g.m * math.ceil(g.k / s0.option.pe_in) * math.ceil(g.n * g.count / s0.option.pe_out)


def test_overlay_infeasible_names_binding_resource():
    wl = get_model("tiny_cnn")
    with pytest.raises(InfeasibleError, match="binding resource: dsp") as err:
        optimize_overlay(wl, fpga(budget={"dsp": 2}), SMALL)
    assert err.value.binding == ["dsp"]  # type: ignore[attr-defined]
    with pytest.raises(InfeasibleError, match="bram18") as err:
        optimize_overlay(wl, fpga(budget={"bram18": 8}), SMALL)
    assert "bram18" in err.value.binding  # type: ignore[attr-defined]


def test_infeasible_with_two_binding_resources():
    # no DSPs allowed -> LUT MACs, but the LUT budget cannot hold them either: both bind
    wl = get_model("tiny_cnn")
    space = OverlaySpace(pe_in=(4, 8), pe_out=(4, 8), pe_pix=(1,), mac_impl=("dsp", "lut"), group_packing=(False,),
                         depths=(512, 1024), memories=("bram",))
    with pytest.raises(InfeasibleError) as err:
        optimize_overlay(wl, fpga(budget={"dsp": 0, "lut": 8000}), space)
    assert set(err.value.binding) == {"dsp", "lut"}  # type: ignore[attr-defined]
    assert "needs at least" in str(err.value)


def test_pipeline_infeasible_whole_resnet():
    with pytest.raises(InfeasibleError, match="bram18"):
        optimize_pipeline(get_model("resnet18"), load_hardware(ZU3EG))


# --- command line ---------------------------------------------------------------------------------

@pytest.fixture
def run_cli(monkeypatch, capsys):
    mods = list(cli.SUBCOMMAND_MODULES)
    if "accelsim.dse.fpga.cli" not in mods:
        mods.append("accelsim.dse.fpga.cli")
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", mods)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_simulate_shipped_config(run_cli):
    code, out, err = run_cli("simulate", "--workload", ROOT / "models" / "resnet18.yaml", "--hw", ZU3EG)
    assert code == 0, err
    assert "200 MHz" in out and "ms" in out and "dram" in out and "static" in out


def test_cli_fpga_fit(run_cli, tmp_path):
    code, out, _ = run_cli("fpga-fit", "--hw", ZU3EG, "--plot", tmp_path / "u.png")
    assert code == 0 and "fits zu3eg: yes" in out and (tmp_path / "u.png").stat().st_size > 1000
    code, out, _ = run_cli("fpga-fit", "--hw", ZU3EG, "--budget", "dsp=200")
    assert code == 1 and "over budget: dsp 256 > 200" in out
    code, _, err = run_cli("fpga-fit", "--hw", ZU3EG, "--budget", "gpu=3")
    assert code == 2 and err.count("\n") == 1 and "--budget" in err
    code, _, err = run_cli("fpga-fit", "--hw", ROOT / "hw_configs" / "systolic_32x32_is.yaml")
    assert code == 2 and "kind: fpga" in err


def test_cli_fpga_optimize_writes_a_config_that_simulates(run_cli, tmp_path):
    out_yaml = tmp_path / "best.yaml"
    code, out, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", ZU3EG, "--pe-in", "4,8,16",
                             "--pe-out", "8,16", "--pe-pix", "1,2", "--depths", "512,1024", "--check-exhaustive",
                             "--out", out_yaml)
    assert code == 0, err
    assert "same optimum" in out and "simulated:" in out and "fits zu3eg: yes" in out
    hw = load_hardware(out_yaml)
    assert isinstance(hw, FpgaAccelerator) and hw.fits().fits
    code, out, _ = run_cli("simulate", "-w", "zoo:tiny_cnn", "--hw", out_yaml)
    assert code == 0


def test_cli_fpga_optimize_infeasible_and_pipeline(run_cli):
    code, _, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", ZU3EG, "--budget", "dsp=2",
                           "--pe-in", "4,8", "--pe-out", "4,8")
    assert code == 2 and "binding resource: dsp" in err and err.count("\n") == 1
    code, out, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", ZU3EG, "--mode", "pipeline",
                             "--parallel", "1,2,4,8,16", "--check-exhaustive")
    assert code == 0, err
    assert "frame interval" in out and "same optimum" in out
    code, _, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", ZU3EG, "--layers", "nope")
    assert code == 2 and "unknown layer" in err
