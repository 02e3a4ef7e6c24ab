"""The kind registry: a kind is two files, found one way; engines load lazily; hooks and marks."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import accelsim
from accelsim.errors import AccelsimError, InternalError
from accelsim.hardware import hardware_from_dict, load_hardware
from accelsim.hardware import registry
from accelsim.hardware.registry import KINDS, PLUGINS_ENV
from accelsim.workload.layer import Linear
from accelsim.workload.workload import Workload

TOY_HW = '''
"""A toy accelerator: ``lanes`` MACs per cycle, everything streamed from DRAM."""
from typing import Literal

from pydantic import Field

from accelsim.hardware.common import HardwareBase
from accelsim.hardware.registry import register_hardware


@register_hardware("toy", engine="toy_engine:ToyEngine")
class ToyHardware(HardwareBase):
    kind: Literal["toy"] = "toy"
    lanes: int = Field(4, gt=0)

    @property
    def num_pes(self) -> int:
        return self.lanes
'''

TOY_ENGINE = '''
from accelsim.engines.base import Engine
from accelsim.stats import Action, LayerProgram, Tile
from accelsim.workload.layer import ceil_div

from toy_hw import ToyHardware


class ToyEngine(Engine[ToyHardware]):
    def lower(self, layer, hw: ToyHardware, workload=None) -> LayerProgram:
        q = layer.compression.quant
        macs = layer.macs
        cycles = max(ceil_div(macs, hw.lanes), 1)
        load = layer.input_words * q.act_bits + layer.weight_words * q.weight_bits
        store = layer.output_words * q.act_bits
        return LayerProgram(
            layer=layer.name, op=layer.op, engine="toy", body=(Tile(load, cycles, store),), compute_cycles=cycles,
            actions=[Action("mac", "mac", macs, q.weight_bits, q.act_bits),
                     Action("dram", "read", load // 8, 8), Action("dram", "write", store // 8, 8)],
            macs=macs, dense_macs=macs, pe_count=hw.lanes,
            dram_read_bits={"ifmap": load}, dram_write_bits={"ofmap": store},
            compulsory_read_bits=load, compulsory_write_bits=store)
'''


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    """Exactly two new files in a directory outside accelsim, named by ACCELSIM_PLUGINS."""
    (tmp_path / "toy_hw.py").write_text(TOY_HW)
    (tmp_path / "toy_engine.py").write_text(TOY_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, "toy_hw")
    registry._discover.cache_clear()
    yield tmp_path
    registry._discover.cache_clear()
    KINDS.pop("toy", None)
    from accelsim.hardware.registry import HARDWARE_KINDS
    from accelsim.engines import base

    HARDWARE_KINDS.pop("toy", None)
    base._INSTANCES.pop("toy", None)
    for mod in ("toy_hw", "toy_engine"):
        sys.modules.pop(mod, None)


def _one_layer() -> Workload:
    return Workload(name="one", layers=[Linear(name="fc", in_features=64, out_features=10)])


def test_toy_kind_from_a_temporary_package_simulates(toy_kind):
    hw = hardware_from_dict({"kind": "toy", "name": "t", "lanes": 8, "dram": {"bw_gbps": 8}})
    rep = accelsim.simulate(_one_layer(), hw)
    s = rep.layers[0]
    assert s.engine == "toy" and s.macs == 640
    assert s.compute_cycles == 80  # 640 MACs on 8 lanes
    # DRAM: (64 + 640) bytes in, 10 out at 8 GB/s and 1 GHz = 8 bytes per cycle
    assert s.dram_read_bytes == 64 + 640 and s.dram_write_bytes == 10
    assert s.latency_cycles >= 80
    assert rep.energy_pj > 0
    assert rep.area_by_component_mm2 == {}  # no area model: the Engine default


def test_engine_bug_is_an_internal_error_through_simulate(toy_kind, monkeypatch):
    """An engine that emits an action nothing prices fails with InternalError, which the explorer's
    ``except AccelsimError`` (status ``invalid``) does not catch: it is stored as ``error``."""
    hw = hardware_from_dict({"kind": "toy"})
    from accelsim.engines.base import engine_for
    from accelsim.stats import Action

    eng = engine_for(hw)
    good = type(eng).lower

    def buggy(self, layer, hw, workload=None):
        prog = good(self, layer, hw, workload)
        prog.actions.append(Action("flux_capacitor", "charge", 1))
        return prog

    monkeypatch.setattr(type(eng), "lower", buggy)
    with pytest.raises(InternalError, match="flux_capacitor"):
        accelsim.simulate(_one_layer(), hw)


def test_toy_kind_works_from_the_cli(toy_kind, tmp_path, capsys):
    from accelsim.cli import main

    hw = tmp_path / "toy.yaml"
    hw.write_text("kind: toy\nlanes: 2\n")
    assert main(["simulate", "--workload", "zoo:tiny_cnn", "--hw", str(hw)]) == 0
    assert "toy" in capsys.readouterr().out


def test_installed_plugin_found_through_its_entry_point(tmp_path, monkeypatch):
    """An installed package declares its hardware module in the ``accelsim.kinds`` group."""
    (tmp_path / "toy_hw.py").write_text(TOY_HW)
    (tmp_path / "toy_engine.py").write_text(TOY_ENGINE)
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[accelsim.kinds]\ntoy = toy_hw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    registry._entry_point_modules.cache_clear()
    registry._discover.cache_clear()
    try:
        hw = hardware_from_dict({"kind": "toy", "lanes": 16})
        assert accelsim.simulate(_one_layer(), hw).layers[0].compute_cycles == 40
    finally:
        registry._entry_point_modules.cache_clear()
        registry._discover.cache_clear()
        from accelsim.engines import base

        KINDS.pop("toy", None)
        registry.HARDWARE_KINDS.pop("toy", None)
        base._INSTANCES.pop("toy", None)
        for mod in ("toy_hw", "toy_engine"):
            sys.modules.pop(mod, None)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(AccelsimError, match="systolic"):
        hardware_from_dict({"kind": "nope"})


def test_engines_load_lazily():
    code = textwrap.dedent("""
        import sys
        import accelsim
        from accelsim.hardware import load_hardware
        from accelsim.workload.zoo import get_model
        hw = load_hardware("hw_configs/systolic_32x32_is.yaml")
        accelsim.simulate(get_model("tiny_cnn"), hw)
        print(sorted(m for m in sys.modules if m.startswith("accelsim.engines.") and m.count(".") == 2))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout.strip().splitlines()[-1])
    assert "accelsim.engines.systolic" in loaded
    for other in ("crossbar", "fpga", "gather_scatter", "smartexchange"):
        assert f"accelsim.engines.{other}" not in loaded


def test_unpriceable_action_is_an_internal_error_not_a_user_error():
    from accelsim.energy import unit_energy_pj
    from accelsim.stats import Action

    hw = load_hardware("hw_configs/systolic_32x32_is.yaml")
    with pytest.raises(InternalError) as err:
        unit_energy_pj(Action("warp_drive", "engage", 1), hw)
    assert not isinstance(err.value, AccelsimError)


def _old_name_rule(path: str) -> bool:
    leaf = path.rsplit(".", 1)[-1]
    return "pj" in leaf or leaf in {"name", "description", "sram_size_exponent"}


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


@pytest.mark.parametrize("cfg", sorted(__import__("pathlib").Path("hw_configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_pricing_only_marks_equal_the_former_name_rule(cfg):
    """The schema marks select the same leaves the explorer's former name rule did, so cached
    timing keys of stored sweeps stay valid."""
    hw = load_hardware(cfg)
    marked = type(hw).pricing_only_fields()
    for path in _leaves(hw.model_dump(mode="json")):
        assert (path in marked) == _old_name_rule(path), path


def test_hooks_have_defaults_on_the_base_class():
    hw = load_hardware("hw_configs/systolic_32x32_is.yaml")
    from accelsim.hardware.common import HardwareBase

    assert HardwareBase.component_table_text(hw) is None
    assert HardwareBase.action_energy_pj(hw, __import__("accelsim.stats").stats.Action("mac", "mac", 1)) is None
    assert set(hw.leakage_power_mw()) == {"ifmap_sram", "filter_sram", "ofmap_sram"}
    assert not type(hw).has_area_model and type(load_hardware("hw_configs/isaac_like.yaml")).has_area_model
