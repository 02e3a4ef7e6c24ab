"""Searched mappings lowered into LayerPrograms (accelsim/mapping/lowering.py, engines/systolic/searched.py)."""
from __future__ import annotations

import itertools
from math import prod

import pytest

import accelsim
from accelsim.energy import price_actions
from accelsim.engines.base import lower_layer
from accelsim.engines.systolic.searched import (DATAFLOW_GROUPS, layer_dims, layer_hierarchy, search_best,
                                               searched_program)
from accelsim.errors import ConfigError
from accelsim.hardware import DramConfig, SramConfig, SystolicArray
from accelsim.hardware.io import hardware_from_dict, load_hardware
from accelsim.mapping.ir import Loop, Mapping, OPERANDS, SpatialUnroll, is_relevant
from accelsim.mapping.lowering import TrafficSummary, stream_chunks, tile_stream
from accelsim.mapping.search import MappingCache, search_layer
from accelsim.stats import Action, Repeat, Tile, iter_tiles, program_totals
from accelsim.workload import Linear, Workload
from accelsim.workload.compression import Compression, Quant
from accelsim.workload.layer import Conv2d
from accelsim.workload.zoo import get_model

HW_OS = "hw_configs/systolic_32x32_os_256kb.yaml"


def _small(df: str, rows: int = 8, cols: int = 8, kb: float = 4, **kw) -> SystolicArray:
    return SystolicArray(name=f"t_{df}", rows=rows, cols=cols, dataflow=df, ifmap_sram=SramConfig(size_kb=kb),
                         filter_sram=SramConfig(size_kb=kb), ofmap_sram=SramConfig(size_kb=kb),
                         dram=DramConfig(bw_gbps=8), **kw)


LAYERS = [
    Conv2d(name="conv", in_channels=16, out_channels=24, in_h=14, in_w=14, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1),
    Conv2d(name="strided", in_channels=8, out_channels=16, in_h=15, in_w=15, kernel_h=3, kernel_w=3, stride_h=2,
           stride_w=2),
    Conv2d(name="dw", in_channels=16, out_channels=16, in_h=12, in_w=12, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1,
           groups=16),
    Linear(name="fc", in_features=100, out_features=40, tokens=6),
    Conv2d(name="q4", in_channels=16, out_channels=16, in_h=10, in_w=10, kernel_h=1, kernel_w=1,
           compression=Compression(quant=Quant(weight_bits=4, act_bits=4))),
]


def _mac(layer) -> Action:
    q = layer.compression.quant
    return Action("mac", "mac", layer.macs, q.weight_bits, q.act_bits, q.scheme)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda ly: ly.name)
def test_energy_of_actions_equals_the_cost_model(layer, df):
    """energy.py pricing the program's actions reproduces the cost model's energy of the mapping."""
    hw = _small(df)
    prog, _ = searched_program(layer, hw, _mac(layer), layer.macs)
    assert prog.mapping.startswith("spatial ")
    dims = layer_dims(layer, hw)
    res = search_best(dims, layer_hierarchy(hw, _mac(layer), dims), hw)
    priced = sum(price_actions(prog.actions, hw).values())
    assert priced == pytest.approx(res.cost.energy_pj, rel=1e-9)
    assert "mapping_energy_pj" not in prog.extra  # price-free program (re-priced from its actions)
    assert {a.component for a in prog.actions} <= {"mac", "pe_rf", "filter_sram", "ifmap_sram", "ofmap_sram", "dram"}


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda ly: ly.name)
def test_conservation_of_the_lowered_program(layer, df):
    hw = _small(df)
    prog, _ = searched_program(layer, hw, _mac(layer), layer.macs)
    dims = layer_dims(layer, hw)
    res = search_best(dims, layer_hierarchy(hw, _mac(layer), dims), hw)
    tiles, load, cycles, store, _ = program_totals(prog.body)
    assert prog.macs == layer.macs == dims.macs  # MACs done = MACs in the workload
    assert load == prog.dram_read_total_bits and store == prog.dram_write_total_bits  # tiles carry all traffic
    assert cycles == prog.compute_cycles == res.mapping.temporal_cycles + round(res.cost.fill_drain_cycles)
    assert prog.dram_read_total_bits >= prog.compulsory_read_bits  # >= compulsory traffic
    assert prog.dram_write_bits["ofmap"] == prog.compulsory_write_bits
    assert 0 < prog.mapping_efficiency <= 1
    # cost-model DRAM words (energy) never exceed the bits the tiles move
    dram_words = sum(a.count * a.bits for a in prog.actions if a.component == "dram")
    assert dram_words <= prog.dram_read_total_bits + prog.dram_write_total_bits
    rep = accelsim.simulate(Workload(name="w", layers=[layer]), hw)
    s = rep.layers[0]  # the engine's choice (searched, or the fold order if that estimated better)
    assert 0 < s.utilization <= 1 and s.macs == layer.macs
    assert s.dram_read_bytes + s.dram_write_bytes >= s.compulsory_dram_bytes
    lowered = lower_layer(layer, hw)
    assert lowered.mapping in (prog.mapping, f"scalesim fold order ({df})")


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_spatial_unrolling_follows_the_dataflow(df):
    hw = _small(df)
    for layer in LAYERS:
        dims = layer_dims(layer, hw)
        m = search_best(dims, layer_hierarchy(hw, _mac(layer), dims), hw).mapping
        for su in m.spatial:
            assert {lp.dim for lp in su.loops} <= set(DATAFLOW_GROUPS[df][su.array_dim]), (layer.name, str(m))
        assert m.spatial_size <= hw.num_pes


def _brute_tiles(m: Mapping, traffic: TrafficSummary, fill_drain: int) -> list[tuple[int, int, int]]:
    """Independent per-iteration walk of the outer loops (module docstring of lowering.py)."""
    n = len(m.temporal)

    def refill(op):
        start = n - len(m.levels(op)[-1])
        return next((j for j in range(start, n) if m.temporal[j].size > 1 and is_relevant(op, m.temporal[j].dim)), n)

    f = {op: refill(op) for op in OPERANDS}
    base = min(f.values())
    outer = [lp.size for lp in m.temporal[base:]]
    cc = prod(lp.size for lp in m.temporal[:base])
    loads = {"W": traffic.read_bits["filter"], "I": traffic.read_bits["ifmap"], "O": traffic.read_bits["psum"]}
    ev = {op: prod(outer[f[op] - base:]) if f[op] < n else 1 for op in OPERANDS}
    stores = sum(traffic.write_bits.values())
    out = []
    digits_list = list(itertools.product(*[range(s) for s in reversed(outer)]))
    for idx, digits in enumerate(digits_list):
        d = list(reversed(digits))  # innermost first
        lb = sb = 0
        for op in OPERANDS:
            if all(x == 0 for x in d[: f[op] - base]):
                lb += loads[op] // ev[op] + (loads[op] - loads[op] // ev[op] * ev[op] if idx == 0 else 0)
        if all(x == s - 1 for x, s in zip(d[: f["O"] - base], outer)):
            sb = stores // ev["O"] + (stores - stores // ev["O"] * ev["O"] if idx == len(digits_list) - 1 else 0)
        c = cc + (fill_drain if idx == len(digits_list) - 1 else 0)
        out.append((lb, c, sb))
    return out


def _chunked(tiles, bpc):
    return [(t.load_bits, t.compute_cycles, t.store_bits)
            for lb, c, sb in tiles for t in iter_tiles(stream_chunks(Tile(lb, c, sb), bpc))]


def test_tile_stream_equals_a_brute_force_walk_of_the_outer_loops():
    sp = (SpatialUnroll("D1", (Loop("K", 2),)), SpatialUnroll("D2", (Loop("C", 2),)))
    temporal = (Loop("C", 3), Loop("P", 2), Loop("K", 3), Loop("Q", 2), Loop("C", 2), Loop("P", 3))
    cases = [
        {"W": (1, 1, 4), "I": (1, 3, 2), "O": (0, 2, 4)},
        {"W": (0, 2, 4), "I": (2, 0, 4), "O": (1, 5, 0)},
        {"W": (0, 0, 6), "I": (0, 0, 6), "O": (0, 0, 6)},
        {"W": (6, 0, 0), "I": (6, 0, 0), "O": (6, 0, 0)},
    ]
    traffic = TrafficSummary({"ifmap": 1001, "filter": 777, "psum": 123}, {"ofmap": 512, "psum": 97})
    for counts in cases:
        m = Mapping(spatial=sp, temporal=temporal, level_counts=tuple(counts.items()))
        for bpc in (1e9, 3.0):  # no chunking / chunked streams
            got = [(t.load_bits, t.compute_cycles, t.store_bits) for t in iter_tiles(tile_stream(m, traffic, 7, bpc))]
            assert got == _chunked(_brute_tiles(m, traffic, 7), bpc), counts


def test_config_defaults_and_forcing(tmp_path):
    assert load_hardware(HW_OS).mapping == "search" and load_hardware(HW_OS).objective == "latency"
    cfgs = sorted(__import__("pathlib").Path("tests/data/reference/scalesim_configs").glob("*.cfg"))
    assert cfgs and all(load_hardware(c).mapping == "scalesim" for c in cfgs)
    d = load_hardware(HW_OS).model_dump(mode="json")
    d["scalesim_ports"] = {"ifmap_words_per_cycle": 10, "filter_words_per_cycle": 10, "ofmap_words_per_cycle": 10}
    user = {**d, "stall_model": "scalesim_user"}
    user.pop("mapping")
    assert hardware_from_dict(user).mapping == "scalesim"
    with pytest.raises(ConfigError, match="mapping"):
        hardware_from_dict({**user, "mapping": "search"})
    assert hardware_from_dict({**d, "mapping": "scalesim"}).mapping == "scalesim"
    with pytest.raises(ConfigError, match="objective"):
        hardware_from_dict({**d, "objective": "speed"})


def test_report_mapping_column_and_scalesim_label():
    wl = get_model("tiny_cnn")
    hw = load_hardware(HW_OS)
    df = accelsim.simulate(wl, hw).to_frame()
    mapped = df[df.op.isin(["conv2d", "linear"])]
    assert mapped.mapping.str.startswith("spatial D").all()
    assert mapped.mapping.iloc[0].startswith("spatial D1:OY8,OX4 D2:K16 | W: reg_w[")
    assert mapped.mapping.str.contains(r"\| W: reg_w\[").all()
    df2 = accelsim.simulate(wl, hw.model_copy(update={"mapping": "scalesim"})).to_frame()
    assert (df2[df2.op.isin(["conv2d", "linear"])].mapping == "scalesim fold order (os)").all()


def test_identical_shapes_are_mapped_once(monkeypatch):
    from accelsim.engines.systolic import searched as SR
    from accelsim.mapping import search as S

    monkeypatch.setattr(SR, "_LOWERED_MAX", 0)  # the mapping cache itself (not the lowering memo)

    wl = get_model("resnet18", resolution=64)
    hw = load_hardware(HW_OS).model_copy(update={"name": "cache-test", "objective": "edp"})
    before = (S._DEFAULT_CACHE.hits, S._DEFAULT_CACHE.misses)
    r1 = accelsim.simulate(wl, hw)
    mid = (S._DEFAULT_CACHE.hits, S._DEFAULT_CACHE.misses)
    r2 = accelsim.simulate(wl, hw)
    after = (S._DEFAULT_CACHE.hits, S._DEFAULT_CACHE.misses)
    assert after[1] == mid[1]  # second run: no new searches
    assert mid[0] - before[0] > 0  # repeated shapes inside ResNet-18 hit the cache on the first run too
    assert r1.latency_cycles == r2.latency_cycles and r1.energy_pj == r2.energy_pj  # deterministic


def test_search_beats_the_fold_order_on_latency_for_resnet18():
    wl = get_model("resnet18", resolution=64)
    hw = load_hardware(HW_OS)
    searched = accelsim.simulate(wl, hw)
    fold = accelsim.simulate(wl, hw.model_copy(update={"mapping": "scalesim"}))
    assert searched.macs == fold.macs == wl.total_macs
    assert searched.latency_cycles < fold.latency_cycles


def test_search_cache_key_separates_objectives():
    hw = _small("os")
    layer = LAYERS[0]
    dims = layer_dims(layer, hw)
    h = layer_hierarchy(hw, _mac(layer), dims)
    cache = MappingCache()
    spec = {"D1": [("Q", 8)], "D2": [("K", 8)]}
    a = search_layer(dims, h, objective="latency", spatial=spec, cache=cache)
    b = search_layer(dims, h, objective="energy", spatial=spec, cache=cache)
    assert cache.misses == 2 and a.cost.latency_cycles <= b.cost.latency_cycles and b.cost.energy_pj <= a.cost.energy_pj


@pytest.mark.parametrize("df", ["os", "ws"])
@pytest.mark.parametrize("layer", LAYERS[:4], ids=lambda ly: ly.name)
def test_search_best_latency_tie_rule_over_all_spatial_candidates(layer, df):
    """``objective: latency`` on a systolic array: among all mappings of the dataflow's spatial
    candidates within LATENCY_TIE_SHARE of the fastest, the fewest tie-break bits (then latency,
    then candidate order) -- checked against every mapping of every candidate, unpruned."""
    from accelsim.engines.systolic import searched as SR
    from accelsim.mapping.fast import FastEvaluator

    hw = _small(df)
    dims = layer_dims(layer, hw)
    hier = layer_hierarchy(hw, _mac(layer), dims)
    pts = []
    for si, spec in enumerate(SR.dataflow_spatial_specs(dims, hw)):
        h = SR._spec_array(SR.tiebreak_hierarchy(hier), spec)
        fe = FastEvaluator(dims, h)

        def record(ld, hh, m, fe=fe, si=si):
            c = fe.evaluate(m)
            pts.append((c.latency_cycles, c.energy_pj, si, len(pts), m))
            return c
        search_layer(dims, h, objective="latency", spatial=spec, evaluator=record, cache=None, dedupe=False,
                     bound=False)
    l_min = min(p[0] for p in pts)
    want = min((p for p in pts if p[0] <= (1 + SR.LATENCY_TIE_SHARE) * l_min), key=lambda p: (p[1], p[0], p[2], p[3]))
    got = search_best(dims, hier, hw)
    assert got.mapping == want[4]
    assert got.cost.latency_cycles <= (1 + SR.LATENCY_TIE_SHARE) * l_min * (1 + 1e-12)


def test_pipeline_memo_returns_equal_independent_timings():
    """simulate_program's memo: a repeated (program, bandwidth) gets an equal, independent copy."""
    from accelsim.sim import pipeline as P

    body = (Tile(512, 7, 64), Repeat((Tile(300, 5, 0), Tile(0, 3, 128)), 40), Tile(64, 2, 256))
    P._MEMO.clear()
    a = P.simulate_program(body, 16.0)
    a.fill_cycles += 1000  # callers mutate their Timing (e.g. DRAM latency): the memo must not see it
    b = P.simulate_program(body, 16.0)
    assert len(P._MEMO) == 1
    assert b == P.PipelineSim(body, 16.0).run() and b.fill_cycles == a.fill_cycles - 1000
    assert P.simulate_program(body, 8.0).latency_cycles > b.latency_cycles  # bandwidth is in the key
    assert P.simulate_program([Tile(512, 7, 64)], 16.0) == P.PipelineSim((Tile(512, 7, 64),), 16.0).run()


def test_lowering_memo_gives_the_same_report_as_lowering_every_layer(monkeypatch):
    """lower_searched's memo (repeated layer shapes lowered once): report equal, layer by layer
    (names, notes, mapping text included), to one with the memo off; copies are independent."""
    from accelsim.engines.systolic import searched as SR

    hw, wl = load_hardware(HW_OS), get_model("resnet18")
    SR._LOWERED.clear()
    memo = accelsim.simulate(wl, hw)
    assert len(SR._LOWERED) < sum(1 for ly in wl.layers if ly.op == "conv2d")  # shapes repeat
    again = accelsim.simulate(wl, hw)
    monkeypatch.setattr(SR, "_LOWERED_MAX", 0)
    SR._LOWERED.clear()
    plain = accelsim.simulate(wl, hw)
    assert memo.layers == plain.layers and again.layers == plain.layers
    assert [s.layer for s in memo.layers] == [ly.name for ly in wl.layers]



def _top_of_views(dims, hier, mapping) -> dict:
    """Per operand: (tl, fl) (amount, bits, count) at its top level and the instances above it, from
    the full energy views (dram_traffic's inputs before ``top_moves``)."""
    from accelsim.mapping.cost import _views

    out = {}
    for op, v in _views(dims, hier, mapping, "energy").items():
        out[op] = ({d: (v.moves[-1][d].amount, v.moves[-1][d].bits, v.moves[-1][d].count) for d in ("tl", "fl")},
                   v.unit_count[v.n])
    return out


def test_top_moves_equal_the_full_views_at_the_top_level():
    """``cost.top_moves`` (dram_traffic's) gives exactly the full energy views' top-level movements,
    on the searched mappings of several layers, buffer sizes and objectives (partial-sum spills
    to DRAM included)."""
    from accelsim.mapping.cost import top_moves

    psum_spills = 0
    for df, layer, kb, objective in itertools.product(("os", "ws", "is"), LAYERS, (0.25, 4),
                                                      ("latency", "energy", "edp")):
        hw = _small(df, kb=kb, objective=objective)
        dims = layer_dims(layer, hw)
        hier = layer_hierarchy(hw, _mac(layer), dims)
        mapping = search_best(dims, hier, hw).mapping
        got = {op: ({d: (mv[d].amount, mv[d].bits, mv[d].count) for d in ("tl", "fl")}, units)
               for op, (mv, units) in top_moves(dims, hier, mapping).items()}
        assert got == _top_of_views(dims, hier, mapping)
        psum_spills += got["O"][0]["tl"][0] > 0
    assert psum_spills > 0


def test_fresh_copy_renames_and_unshares_the_containers():
    """``fresh_copy`` equals ``dataclasses.replace`` with the list/dict fields copied."""
    import copy
    import dataclasses

    from accelsim.engines.systolic.searched import fresh_copy

    hw, layer = _small("ws"), LAYERS[0]
    prog, _ = searched_program(layer, hw, _mac(layer), layer.macs)
    out = fresh_copy(prog, "renamed")
    assert out == dataclasses.replace(prog, layer="renamed", **{
        f.name: copy.copy(getattr(prog, f.name)) for f in dataclasses.fields(prog)
        if isinstance(getattr(prog, f.name), (list, dict))})
    assert prog.layer == layer.name and out.layer == "renamed"
    for f in ("actions", "notes", "extra", "sram_accesses", "dram_read_bits", "dram_write_bits"):
        assert getattr(out, f) == getattr(prog, f) and getattr(out, f) is not getattr(prog, f)
    assert out.body is prog.body  # immutable parts shared
