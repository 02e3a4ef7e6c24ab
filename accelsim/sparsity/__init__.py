"""Sparsity vocabulary shared by engines (Sparseloop-style): statistical density models of a
tensor (:mod:`.density`), kept separate from the storage formats that encode it (:mod:`.formats`)."""
from .density import Actual, DensityModel, Structured, Uniform, density_model
from .formats import FORMATS, FormatCost, expected_format_bits, format_cost, rle_padding_from_mask

__all__ = ["DensityModel", "Uniform", "Structured", "Actual", "density_model", "FORMATS", "FormatCost", "format_cost",
           "expected_format_bits", "rle_padding_from_mask"]
