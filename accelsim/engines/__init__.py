"""Engines: one module per hardware kind, each turning (layer, hardware) into a LayerProgram."""
from .base import ENGINES, Engine, engine_for, lower_layer, register_engine
from . import _load_all  # noqa: F401  (registers every shipped engine)

__all__ = ["ENGINES", "Engine", "engine_for", "lower_layer", "register_engine"]
