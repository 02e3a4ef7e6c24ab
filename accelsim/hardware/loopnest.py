"""A ZigZag 3.9.1 accelerator file as accelsim hardware (``kind: loopnest``).

The accelerator is a memory hierarchy over a MAC array (:func:`accelsim.hardware.zigzag_io.hierarchy_from_zigzag`);
every conv/GEMM/matmul layer runs on the mapping :mod:`accelsim.mapping` finds on it (engine
:mod:`accelsim.engines.loopnest`). ``load_hardware`` returns this kind for a YAML file with
``operational_array`` and ``memories``; it may also be written as accelsim YAML::

    kind: loopnest
    accelerator: tests/data/reference/zigzag_inputs/hardware/tpu_like.yaml
    mapping_file: tests/data/reference/zigzag_inputs/mapping/tpu_like.yaml   # optional
    objective: latency                                                        # latency | energy | edp

Assumptions (what ZigZag's file does not say):

- ``clock_mhz`` 1000 unless given; DRAM bandwidth = the top memory level's widest port in bits
  per cycle at that clock (``dram.bw_gbps`` derived, unless given); the DRAM channel of the
  pipeline cross-check is that port;
- latency: the cost model's (ZigZag's latency model, the mapper's objective) with the default
  ``stall_model: double_buffer``, the SimPy pipeline's figure kept in
  ``extra['pipeline_latency_cycles']``; ``stall_model: none``: ideal bandwidth (engine docstring);
- energy: each memory access costs the level's ``r_cost``/``w_cost`` per port word, a MAC the
  array's ``unit.energy`` (ZigZag's numbers, no technology table, no leakage: ``static`` is 0);
  so a layer's energy is the mapper's cost-model energy for its mapping;
- relative paths of ``accelerator``/``mapping_file`` are taken relative to the working directory
  (``load_hardware`` of a ZigZag file stores its path as given).
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..errors import ConfigError
from ..stats import Action
from .common import HardwareBase
from .hierarchy import MemoryHierarchy
from .registry import register_hardware


def _zigzag_data(path: str) -> dict:
    from .zigzag_io import _read_yaml, is_zigzag_accelerator

    data = _read_yaml(path)
    if not is_zigzag_accelerator(data):
        raise ConfigError("not a ZigZag accelerator (needs 'operational_array' and 'memories')", source=path,
                          field="accelerator")
    return data


@register_hardware("loopnest", engine="accelsim.engines.loopnest:LoopNestEngine")
class LoopNestAccelerator(HardwareBase):
    """A ZigZag accelerator (``accelerator``: its YAML) mapped layer by layer; ``mapping_file``: a
    ZigZag mapping YAML whose spatial mapping / hints / temporal ordering / operand links the
    mapper honours (None: free search); ``objective``: what the mapper minimises per layer."""

    kind: Literal["loopnest"] = "loopnest"
    accelerator: str = Field(min_length=1)
    mapping_file: str | None = None
    objective: Literal["latency", "energy", "edp"] = "latency"

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        """Name and DRAM bandwidth from the accelerator file when not given."""
        if not isinstance(data, dict) or not data.get("accelerator"):
            return data
        zz = _zigzag_data(str(data["accelerator"]))
        out = dict(data)
        out.setdefault("name", str(zz.get("name") or Path(str(data["accelerator"])).stem))
        if "dram" not in out:
            clock = float(out.get("clock_mhz", 1000.0))
            top = _hierarchy(zz, str(data["accelerator"])).memories[-1]
            bits = max(p.bandwidth_max_bits for p in top.ports)
            out["dram"] = {"bw_gbps": bits * clock / 8000.0, "type": f"ZigZag {top.name}"}
        return out

    @model_validator(mode="after")
    def _check(self) -> "LoopNestAccelerator":
        if self.mapping_file is not None:
            # read here (a missing file or bad YAML: one-line errors); its entries are parsed by the
            # mapping layer (accelsim.mapping.zigzag_mapping, above hardware): the CLI on load, the
            # engine when it maps (checked against the array then)
            from .zigzag_io import _read_yaml

            _read_yaml(self.mapping_file)
        return self

    @cached_property
    def hierarchy(self) -> MemoryHierarchy:
        """The accelerator's hierarchy with ZigZag's default operand links (I1 -> I, I2 -> W, O -> O)."""
        return _hierarchy(_zigzag_data(self.accelerator), self.accelerator)

    @property
    def num_pes(self) -> int:
        return self.hierarchy.array.num_macs

    def leakage_power_mw(self) -> dict[str, float]:
        """None: ZigZag's accelerator files carry no leakage."""
        return {}

    def action_energy_pj(self, action: Action) -> float | None:
        """A memory level's ``r_cost``/``w_cost`` per access (component = level name), the array's
        MAC energy per MAC; ``None`` (generic pricing) for anything else."""
        if action.component == "mac":
            return self.hierarchy.array.mac_energy_pj
        for mem in self.hierarchy.memories:
            if mem.name == action.component:
                return mem.read_pj if action.action == "read" else mem.write_pj
        return None

    def summary(self) -> str:
        h = self.hierarchy
        mems = " > ".join(m.name for m in h.memories)
        how = f"mapping file {Path(self.mapping_file).name}" if self.mapping_file else "free mapping search"
        return (f"ZigZag accelerator '{self.name}' ({Path(self.accelerator).name}): {h.array.num_macs} MACs, "
                f"memories {mems}; {how}, objective {self.objective}, {self.clock_mhz:g} MHz, "
                f"DRAM {self.dram.bw_gbps:g} GB/s")


def _hierarchy(data: dict, source: str) -> MemoryHierarchy:
    from .zigzag_io import hierarchy_from_zigzag

    return hierarchy_from_zigzag(data, source)


def loopnest_from_zigzag(path: str | Path, **fields: Any) -> LoopNestAccelerator:
    """``kind: loopnest`` hardware for the ZigZag accelerator file ``path``."""
    from .._validation import validate_model

    return validate_model(LoopNestAccelerator, {"kind": "loopnest", "accelerator": str(path), **fields}, str(path))
