"""The event simulator: times LayerPrograms on a double-buffered DRAM/compute pipeline (SimPy)."""
from .pipeline import PipelineSim, replay_program, simulate_program
from .run import simulate_layer_program

__all__ = ["PipelineSim", "replay_program", "simulate_program", "simulate_layer_program"]
