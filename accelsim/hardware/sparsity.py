"""The ``sparsity:`` block of a hardware file: storage formats per level and skip/gate actions
per level and at compute (Sparseloop's per-level vocabulary, attached to a kind's buffers).

Example (an SCNN-like systolic array)::

    sparsity:
      compute: {action: skip, on_zeros: intersection}
      levels:
        dram:       {format: {inputs: run_length, weights: run_length}}
        ifmap_sram: {format: {inputs: run_length}, action: skip, on_zeros: inputs}

- ``levels.<name>``: one of the kind's storage levels (systolic: ``dram``, ``ifmap_sram``,
  ``filter_sram``, ``ofmap_sram``); an unknown name is a ConfigError naming it.
  ``format.<operand>`` (``weights``, ``inputs``, ``outputs``): ``uncompressed`` (default),
  ``bitmask``, ``run_length`` (``run_bits`` per run), ``coordinate_payload``, ``csr``
  (:mod:`accelsim.sparsity.formats`); payload and metadata bits move as traffic and sit as storage.
  ``action``/``on_zeros``: reads of this level skip or gate on the zeros of ``on_zeros``.
- ``compute``: ``action`` (``none``/``gate``/``skip``) on the zeros of ``on_zeros`` (``weights``,
  ``inputs``, ``intersection``); see :mod:`accelsim.sparsity.actions`.

The default (empty block) is today's behaviour: everything uncompressed, every access and MAC
executed. Kinds opt in by declaring ``sparsity: <kind>Sparsity`` made by :func:`sparsity_block`.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model, model_validator

from ..sparsity.actions import exploits
from .common import _Config

FormatName = Literal["uncompressed", "bitmask", "run_length", "coordinate_payload", "csr"]
ActionName = Literal["none", "gate", "skip"]
TargetName = Literal["weights", "inputs", "intersection"]
OperandName = Literal["weights", "inputs", "outputs"]


class OperandFormats(_Config):
    """Storage format of each operand at one level (``run_bits``: run-length field width)."""

    weights: FormatName = "uncompressed"
    inputs: FormatName = "uncompressed"
    outputs: FormatName = "uncompressed"
    run_bits: int = Field(4, ge=1, le=16)

    def of(self, operand: str) -> str:
        return str(getattr(self, operand))

    @property
    def any(self) -> bool:
        return any(self.of(o) != "uncompressed" for o in ("weights", "inputs", "outputs"))


class SparseAction(_Config):
    """Skip or gate on the zeros of ``on_zeros`` (``none``: execute everything)."""

    action: ActionName = "none"
    on_zeros: TargetName = "inputs"

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        if isinstance(data, dict) and (True in data or "on" in data):
            raise ValueError("write 'on_zeros:' ('on' is YAML 1.1's true and is not a field)")
        return data

    def acts_on(self, operand: str) -> bool:
        """Whether this action acts on zeros of ``operand`` (``weights`` or ``inputs``)."""
        return exploits(self.action, self.on_zeros, operand)


class LevelSparsity(SparseAction):
    """A storage level: its operands' formats and the skip/gate of its reads."""

    format: OperandFormats = OperandFormats()


#: the settings of a level the file does not name (frozen: one shared instance)
_DEFAULT_LEVEL = LevelSparsity()


class SparsityBase(_Config):
    """Shared part of every kind's ``sparsity:`` block (``levels`` is added per kind)."""

    compute: SparseAction = SparseAction()

    def level(self, name: str) -> LevelSparsity:
        """The level's settings (defaults when the file does not name it)."""
        levels = getattr(self, "levels", None)
        got = getattr(levels, name, None) if levels is not None else None
        return got if got is not None else _DEFAULT_LEVEL

    def level_names(self) -> tuple[str, ...]:
        levels = getattr(self, "levels", None)
        return tuple(type(levels).model_fields) if levels is not None else ()

    def acts_on(self, operand: str) -> bool:
        """Whether compute or any level gates/skips on zeros of ``operand``."""
        return self.compute.acts_on(operand) or any(self.level(n).acts_on(operand) for n in self.level_names())

    @property
    def any(self) -> bool:
        return self.compute.action != "none" or any(
            self.level(n).action != "none" or self.level(n).format.any for n in self.level_names())


def sparsity_block(kind: str, level_names: tuple[str, ...]) -> type[SparsityBase]:
    """The ``sparsity:`` schema of a kind whose storage levels are ``level_names``."""
    levels = create_model(f"{kind.title()}SparsityLevels", __base__=_Config,
                          **{n: (LevelSparsity | None, None) for n in level_names})  # type: ignore[call-overload]
    return create_model(f"{kind.title()}Sparsity", __base__=SparsityBase,
                        levels=(levels, levels()))  # type: ignore[call-overload]
