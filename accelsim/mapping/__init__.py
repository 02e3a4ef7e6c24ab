"""Loop-nest mappings of conv/GEMM layers onto explicit memory hierarchies, and their cost."""
from .cost import MappingCost, OperandLevelCost, evaluate, validate
from .ir import DIMS, OPERANDS, LayerDims, Loop, Mapping, SpatialUnroll

__all__ = ["DIMS", "OPERANDS", "LayerDims", "Loop", "Mapping", "SpatialUnroll", "validate",
           "MappingCost", "OperandLevelCost", "evaluate"]
