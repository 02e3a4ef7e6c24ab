"""Hardware descriptions: validated configs per architecture kind, loaded from YAML or SCALE-Sim .cfg."""
from .common import DramConfig, EnergyTable, HardwareBase, ScaleSimPorts, SramConfig
from .io import hardware_from_dict, hardware_to_dict, load_hardware, read_scalesim_cfg
from .registry import HARDWARE_KINDS, register_hardware
from .systolic import SystolicArray

__all__ = [
    "DramConfig", "EnergyTable", "HardwareBase", "ScaleSimPorts", "SramConfig", "SystolicArray",
    "HARDWARE_KINDS", "register_hardware", "hardware_from_dict", "hardware_to_dict", "load_hardware",
    "read_scalesim_cfg",
]
