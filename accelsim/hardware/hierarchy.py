"""Explicit memory hierarchy of a spatial array (ZigZag-style), for the mapping cost model.

A :class:`MemoryHierarchy` is an operational array (named dimensions ``D1, D2, ...`` with sizes,
energy per MAC, which dimensions are systolic) plus memory levels listed **innermost first**.
Each level says which layer operands it holds (``W`` weights, ``I`` inputs, ``O`` outputs and
partial sums), its capacity in bits, its per-access read/write energy (pJ for one access of one
port word, i.e. ``bandwidth_max_bits``, as ZigZag prices it), its ports and which array
dimensions share one instance of it (``served_dimensions``: ``[]`` = one instance per PE,
``[D1, D2]`` = one instance for the whole 2-D array).

Ports carry ZigZag's four data-movement directions per operand: ``fh`` (written from the level
above), ``tl`` (read to the level below), ``fl`` (written from below: partial sums coming back
up), ``th`` (read to the level above: partial sums / final outputs going up). A port's
``bandwidth_max_bits`` is bits per cycle; ``bandwidth_min_bits`` the smallest access granularity.

``double_buffering``: ``auto`` (ZigZag's rule: a level is double-buffered for an operand when its
mapped tile uses at most half of the capacity it can give that operand), ``always`` or ``never``.

This file has no dependency on the workload IR (hardware and workload are siblings).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._validation import reject_bool_numbers

Operand = Literal["W", "I", "O"]
Direction = Literal["fh", "tl", "fl", "th"]
OPERANDS: tuple[str, ...] = ("W", "I", "O")
DIRECTIONS: tuple[str, ...] = ("fh", "tl", "fl", "th")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)


class PortAllocation(_Config):
    """One (operand, direction) data movement served by a port."""

    operand: Operand
    direction: Direction


class MemoryPort(_Config):
    """A read, write or read-write port of ``bandwidth_max_bits`` bits per cycle."""

    name: str
    type: Literal["read", "write", "read_write"]
    bandwidth_min_bits: int = Field(gt=0)
    bandwidth_max_bits: int = Field(gt=0)
    allocation: tuple[PortAllocation, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> "MemoryPort":
        if self.bandwidth_min_bits > self.bandwidth_max_bits:
            raise ValueError(f"port {self.name}: bandwidth_min_bits exceeds bandwidth_max_bits")
        for a in self.allocation:
            reading = a.direction in ("tl", "th")
            if self.type == "read" and not reading or self.type == "write" and reading:
                raise ValueError(f"port {self.name} ({self.type}) cannot serve {a.operand},{a.direction}")
        return self


class MemoryLevel(_Config):
    """One memory (register file, buffer or DRAM); ``size_bits`` is per instance."""

    name: str
    size_bits: int = Field(gt=0)
    operands: tuple[Operand, ...] = Field(min_length=1)
    read_pj: float = Field(ge=0, description="pJ per read access of one bandwidth_max word")
    write_pj: float = Field(ge=0, description="pJ per write access of one bandwidth_max word")
    fh_write_pj: float | None = Field(None, ge=0, description="pJ per write coming from the level above "
                                      "(direction fh), when it differs from write_pj (accelsim's implied "
                                      "systolic accumulators: a forwarded partial sum is wiring)")
    ports: tuple[MemoryPort, ...] = Field(min_length=1)
    served_dimensions: tuple[str, ...] = ()
    double_buffering: Literal["auto", "always", "never"] = "auto"

    @model_validator(mode="after")
    def _check(self) -> "MemoryLevel":
        if len(set(self.operands)) != len(self.operands):
            raise ValueError(f"memory {self.name}: an operand is listed twice")
        for p in self.ports:
            for a in p.allocation:
                if a.operand not in self.operands:
                    raise ValueError(f"memory {self.name}: port {p.name} serves {a.operand}, which the memory does not hold")
        return self

    @property
    def fh_pj(self) -> float:
        """pJ per write from the level above (``fh_write_pj``, default ``write_pj``)."""
        return self.write_pj if self.fh_write_pj is None else self.fh_write_pj

    def port_of(self, operand: str, direction: str) -> MemoryPort | None:
        """The port that serves ``operand`` in ``direction`` (None when none does)."""
        for p in self.ports:
            for a in p.allocation:
                if a.operand == operand and a.direction == direction:
                    return p
        return None


class ArrayDimension(_Config):
    name: str
    size: int = Field(gt=0)


class ArrayPrecision(_Config):
    """Operand widths of the MAC datapath (bits): weights, inputs, partial sums, final outputs.

    Defaults are ZigZag's (8-bit operands, 16-bit partial sums, 8-bit outputs); a layer's own
    quantisation, when given, takes precedence (``LayerDims`` carries the widths a cost uses).
    """

    w_bits: int = Field(8, ge=1, le=64)
    i_bits: int = Field(8, ge=1, le=64)
    o_bits: int = Field(16, ge=1, le=64)
    o_final_bits: int = Field(8, ge=1, le=64)


class OperationalArray(_Config):
    """The MAC array: named dimensions, energy per MAC, systolic dimensions (fill/drain), precision."""

    dimensions: tuple[ArrayDimension, ...] = Field(min_length=1)
    mac_energy_pj: float = Field(ge=0)
    systolic_dimensions: tuple[str, ...] = ()
    precision: ArrayPrecision = ArrayPrecision()

    @model_validator(mode="after")
    def _check(self) -> "OperationalArray":
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError("array dimension names must be unique")
        for s in self.systolic_dimensions:
            if s not in names:
                raise ValueError(f"systolic dimension {s} is not an array dimension")
        return self

    @property
    def num_macs(self) -> int:
        n = 1
        for d in self.dimensions:
            n *= d.size
        return n

    def size_of(self, name: str) -> int:
        for d in self.dimensions:
            if d.name == name:
                return d.size
        raise KeyError(name)


class MemoryHierarchy(_Config):
    """Operational array + memories innermost first; every operand must reach a top level."""

    name: str = "hierarchy"
    array: OperationalArray
    memories: tuple[MemoryLevel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "MemoryHierarchy":
        names = [m.name for m in self.memories]
        if len(set(names)) != len(names):
            raise ValueError("memory names must be unique")
        dims = {d.name for d in self.array.dimensions}
        for m in self.memories:
            for d in m.served_dimensions:
                if d not in dims:
                    raise ValueError(f"memory {m.name}: served dimension {d} is not an array dimension")
        for op in OPERANDS:
            if not any(op in m.operands for m in self.memories):
                raise ValueError(f"no memory holds operand {op}")
        return self

    def levels(self, operand: str) -> tuple[MemoryLevel, ...]:
        """The memories holding ``operand``, innermost first."""
        return tuple(m for m in self.memories if operand in m.operands)

    def instances(self, memory: MemoryLevel) -> int:
        """How many copies of ``memory`` exist (array dimensions it does not serve multiply)."""
        n = 1
        for d in self.array.dimensions:
            if d.name not in memory.served_dimensions:
                n *= d.size
        return n


__all__ = [
    "Operand", "Direction", "OPERANDS", "DIRECTIONS", "PortAllocation", "MemoryPort", "MemoryLevel",
    "ArrayDimension", "ArrayPrecision", "OperationalArray", "MemoryHierarchy",
]
