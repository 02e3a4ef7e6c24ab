"""One PE-register accounting on both sides: the implied hierarchy (mapping/implied.py) priced
by the cost model on the fold order's own loop nest gives the fold model's ``pe_rf`` energy
(engines/systolic/program.py), per dataflow."""
from __future__ import annotations

import pytest

from accelsim.energy import price_actions
from accelsim.engines.base import lower_layer
from accelsim.engines.systolic.searched import layer_dims, layer_hierarchy
from accelsim.hardware import DramConfig, SramConfig, SystolicArray
from accelsim.hardware.common import EnergyTable
from accelsim.mapping.cost import evaluate
from accelsim.mapping.implied import implied_hierarchy
from accelsim.mapping.ir import Mapping
from accelsim.stats import Action
from accelsim.workload import Linear
from accelsim.workload.compression import Compression, Quant

ROWS = COLS = 8


def _hw(df: str, **kw) -> SystolicArray:
    sram = SramConfig(size_kb=256)  # the whole layer fits: every fold loop sits at the SRAM level
    return SystolicArray(name=f"t_{df}", rows=ROWS, cols=COLS, dataflow=df, ifmap_sram=sram, filter_sram=sram,
                         ofmap_sram=sram, dram=DramConfig(bw_gbps=8), **kw)


def fold_order_mapping(df: str, n: int, k: int, c: int) -> Mapping:
    """SCALE-Sim's fold order of an ``n x c`` by ``c x k`` GEMM (bounds multiples of the array) as a
    loop nest: per fold the array's rows x cols, the streamed dimension innermost in time."""
    if df == "os":  # pixels x K on the array, C streamed; the sum stays in the accumulator
        sp, stream, folds = {"D1": [("N", ROWS)], "D2": [("K", COLS)]}, ("C", c), [("N", n // ROWS), ("K", k // COLS)]
        return Mapping.from_levels(sp, {"W": [[], [stream] + folds, []], "I": [[], [stream] + folds, []],
                                        "O": [[stream], folds, []]})
    if df == "ws":  # C x K weights stationary, pixels streamed
        sp, stream, folds = {"D1": [("C", ROWS)], "D2": [("K", COLS)]}, ("N", n), [("C", c // ROWS), ("K", k // COLS)]
        return Mapping.from_levels(sp, {"W": [[stream], folds, []], "I": [[], [stream] + folds, []],
                                        "O": [[], [stream] + folds, []]})
    sp, stream, folds = {"D1": [("C", ROWS)], "D2": [("N", COLS)]}, ("K", k), [("C", c // ROWS), ("N", n // COLS)]
    return Mapping.from_levels(sp, {"I": [[stream], folds, []], "W": [[], [stream] + folds, []],
                                    "O": [[], [stream] + folds, []]})


STATIONARY = {"os": None, "ws": "W", "is": "I"}
SHAPES = [(16, 16, 32, 8, 8, "int"), (32, 8, 64, 8, 8, "int"), (16, 24, 16, 4, 4, "int"), (8, 16, 16, 16, 16, "float")]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:5])) + s[5])
def test_cost_model_on_the_fold_order_gives_the_fold_models_register_energy(df, shape):
    n, k, c, wb, ab, scheme = shape
    hw = _hw(df)
    layer = Linear(name="fc", in_features=c, out_features=k, tokens=n,
                   compression=Compression(quant=Quant(weight_bits=wb, act_bits=ab, scheme=scheme)))
    dims = layer_dims(layer, hw)
    h = layer_hierarchy(hw, Action("mac", "mac", layer.macs, wb, ab, scheme), dims)
    cost = evaluate(dims, h, fold_order_mapping(df, n, k, c))
    reg = {x.operand: x.energy_pj for x in cost.levels if x.level.startswith("reg_")}
    fold = lower_layer(layer, hw.model_copy(update={"mapping": "scalesim"}))
    assert fold.mapping == f"scalesim fold order ({df})" and fold.macs == dims.macs
    pe = [a for a in fold.actions if a.component == "pe_rf"]
    pj = hw.energy.pe_rf_pj
    macs, pb = layer.macs, hw.energy.accumulator_bits
    # hand-computed fold-model rule (program.py), then the fold program's own priced actions
    stat = STATIONARY[df]
    moving = [op for op, b in (("W", wb), ("I", ab)) if op != stat]
    hand = {op: macs * pj(wb if op == "W" else ab) for op in ("W", "I")}
    hand["O"] = 0.0 if df == "os" else macs * pj(pb)
    assert sum(price_actions(pe, hw).values()) == pytest.approx(sum(hand.values()), rel=1e-12)
    for op in moving + ["O"]:  # moving operands and partial sums: exactly the fold model's energy
        assert reg[op] == pytest.approx(hand[op], rel=1e-12, abs=1e-9), op
    if stat:  # stationary datum: read once per stay at the MAC input + one fill (ZigZag's rule),
        stay = n if df == "ws" else k  # the fold model reads it every MAC: 2 / stay of its energy
        assert reg[stat] == pytest.approx(hand[stat] * 2 / stay, rel=1e-12)
        assert reg[stat] <= hand[stat]
    # the searched side prices the same accesses: lowering emits no action for unpriced wiring
    total = sum(reg.values())
    assert total <= sum(hand.values()) + 1e-9


def test_register_prices_scale_with_technology_and_operand_width():
    hw45, hw7 = _hw("ws"), _hw("ws", energy=EnergyTable(technology_nm=7))
    r45 = {m.name: m for m in implied_hierarchy(hw45).memories}
    r7 = {m.name: m for m in implied_hierarchy(hw7).memories}
    scale = hw7.energy.tech_scale
    assert scale < 1
    assert r7["reg_w"].read_pj == pytest.approx(r45["reg_w"].read_pj * scale)
    assert r45["reg_w"].read_pj == pytest.approx(hw45.energy.pe_rf_pj_per_bit * 8)
    wide = {m.name: m for m in implied_hierarchy(hw45, w_bits=16, i_bits=16).memories}
    assert wide["reg_w"].size_bits == wide["reg_i"].size_bits == 16
    assert wide["reg_i"].fh_pj == pytest.approx(2 * r45["reg_i"].fh_pj)
    # moving input: reads are wiring; WS accumulator: only MAC updates are priced
    assert r45["reg_i"].read_pj == 0 and r45["reg_o"].read_pj == 0 and r45["reg_o"].fh_pj == 0
    assert r45["reg_o"].write_pj == pytest.approx(hw45.energy.pe_rf_pj(hw45.energy.accumulator_bits))
    os_regs = {m.name: m for m in implied_hierarchy(_hw("os")).memories}
    assert os_regs["reg_o"].write_pj == os_regs["reg_o"].fh_pj == os_regs["reg_o"].read_pj == 0
