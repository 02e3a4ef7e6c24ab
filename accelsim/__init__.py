"""accelsim: how a compressed neural network runs on candidate accelerator hardware.

>>> import accelsim
>>> report = accelsim.simulate("models/resnet18.yaml", "hw_configs/systolic_128x128_os.yaml")
>>> report.to_frame()       # one row per layer
>>> report.summary()        # network totals
>>> report.plot("fig.png")  # energy / latency breakdown
"""
__version__ = "0.1.0"

from .errors import AccelsimError, ConfigError, UnsupportedLayerError  # noqa: E402
from .hardware import load_hardware  # noqa: E402
from .workload import Workload, load_workload, save_workload  # noqa: E402
from .api import simulate  # noqa: E402
from .report import LayerStats, Report  # noqa: E402

__all__ = [
    "__version__", "simulate", "load_workload", "save_workload", "load_hardware", "Workload", "Report",
    "LayerStats", "AccelsimError", "ConfigError", "UnsupportedLayerError",
]
