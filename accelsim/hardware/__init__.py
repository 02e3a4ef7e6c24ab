"""Hardware descriptions: validated configs per architecture kind, loaded from YAML or SCALE-Sim .cfg."""
from .common import PRICING_ONLY, DramConfig, EnergyTable, HardwareBase, ScaleSimPorts, SramConfig, pricing_only_fields
from .io import hardware_from_dict, hardware_to_dict, load_hardware, read_scalesim_cfg
from .registry import HARDWARE_KINDS, KINDS, KindSpec, discover_kinds, register_hardware
from .systolic import SystolicArray

__all__ = [
    "DramConfig", "EnergyTable", "HardwareBase", "ScaleSimPorts", "SramConfig", "SystolicArray",
    "HARDWARE_KINDS", "KINDS", "KindSpec", "discover_kinds", "register_hardware", "PRICING_ONLY",
    "pricing_only_fields", "hardware_from_dict", "hardware_to_dict", "load_hardware", "read_scalesim_cfg",
]
