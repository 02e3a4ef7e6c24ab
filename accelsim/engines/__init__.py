"""Engines: one per hardware kind, each turning (layer, hardware) into a LayerProgram.

Engines are imported lazily by :func:`engine_for` (the hardware kind names its engine); shared
lowering pieces live in :mod:`.lowering`.
"""
from .base import Engine, engine_for, lower_layer

__all__ = ["Engine", "engine_for", "lower_layer"]
