"""A workload: an ordered list of layers (+ an optional mask file)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from .._validation import reject_bool_numbers
from ..errors import ConfigError, MaskError
from .layer import Layer, LayerBase

SCHEMA_VERSION = 1


class Workload(BaseModel):
    """Ordered layers of one network (the simulator runs them one after another).

    ``masks`` is the path of an ``.npz`` file (relative to the workload file) holding real
    weight masks, keyed by the layers' ``compression.sparsity.mask`` names. ``notes`` are what its
    producer could not model exactly (e.g. a module the PyTorch exporter left out); simulation
    reports repeat them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)

    name: str = Field(min_length=1)
    layers: list[Layer] = Field(min_length=1)
    description: str = ""
    source: str = ""
    masks: str | None = None
    notes: list[str] = Field(default_factory=list)  # what the producer could not model exactly
    accelsim_workload: int = SCHEMA_VERSION

    _base_dir: Path | None = PrivateAttr(default=None)
    _mask_cache: dict[str, np.ndarray] | None = PrivateAttr(default=None)
    _mask_archive: Any = PrivateAttr(default=None)  # NpzArchive opened on the first mask read
    _masks_attached: bool = PrivateAttr(default=False)  # attach_masks(): the cache is authoritative
    _masks_checked: bool = PrivateAttr(default=False)  # attached masks validated (once, by simulate)

    @model_validator(mode="after")
    def _unique_names(self) -> "Workload":
        seen: set[str] = set()
        for i, layer in enumerate(self.layers):
            if layer.name in seen:
                raise ValueError(f"layer name {layer.name!r} (layers[{i}]) is used twice; names must be unique")
            seen.add(layer.name)
        if self.accelsim_workload != SCHEMA_VERSION:
            raise ValueError(f"accelsim_workload schema {self.accelsim_workload} is not supported (expected {SCHEMA_VERSION})")
        return self

    def __eq__(self, other: object) -> bool:
        """Equal when the public fields are (where the file was loaded from does not matter)."""
        if not isinstance(other, Workload):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    # --- views --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):  # type: ignore[override]
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> LayerBase:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(key)
        return self.layers[key]

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_weight_words(self) -> int:
        return sum(layer.weight_words for layer in self.layers)

    @property
    def is_dense(self) -> bool:
        return all(layer.compression.is_dense for layer in self.layers)

    def densified(self) -> "Workload":
        """The dense original of this workload (compression removed, shapes restored).

        Factorised layers collapse back into one: the piece carrying ``compression.original``
        becomes the original layer, the other pieces are dropped.
        """
        layers = [layer.densified() for layer in self.layers if not layer.compression.is_factor_part]
        return Workload(name=self.name, layers=layers, description=self.description, source=self.source,
                        notes=list(self.notes))

    def with_layers(self, layers: list[LayerBase], **changes: Any) -> "Workload":
        data = {"name": self.name, "description": self.description, "source": self.source, "masks": self.masks,
                "notes": list(self.notes)}
        data.update(changes)
        wl = Workload(layers=list(layers), **data)
        wl._base_dir = self._base_dir
        if wl.masks == self.masks:  # same mask file: share what was read of it
            wl._mask_cache = self._mask_cache
            wl._mask_archive = self._mask_archive
            wl._masks_attached = self._masks_attached
        elif self._mask_cache is not None:  # renamed file (being written): keep every array in memory
            wl.attach_masks(self._load_masks())
        return wl

    def to_frame(self):  # type: ignore[no-untyped-def]
        """One row per layer: op, shapes, MACs, operand sizes, compression summary."""
        import pandas as pd

        rows = []
        for layer in self.layers:
            c = layer.compression
            rows.append({
                "layer": layer.name, "op": layer.op, "macs": layer.macs,
                "input_words": layer.input_words, "weight_words": layer.weight_words,
                "output_words": layer.output_words, "sparsity": c.sparsity.kind,
                "density": c.sparsity.effective_density, "weight_bits": c.quant.weight_bits,
                "act_bits": c.quant.act_bits, "factorization": c.factorization.kind,
            })
        return pd.DataFrame(rows)

    # --- masks --------------------------------------------------------------------------
    def mask(self, layer: LayerBase) -> np.ndarray | None:
        """The real mask of ``layer`` (0/1 array) if the workload has one, else None.

        Only the arrays that layers name are read from the mask file (bounded, see
        :mod:`accelsim.workload.npz_reader`)."""
        key = layer.compression.sparsity.mask
        if key is None:
            return None
        field = f"{layer.name}.compression.sparsity.mask"
        if self._mask_cache is None or key not in self._mask_cache:
            arr = self._read_array(key, field)
            if arr is None:
                raise MaskError(f"mask {key!r} not found in the mask file", source=str(self._mask_path()), field=field)
            return arr
        return self._mask_cache[key]

    @property
    def mask_source(self) -> str:
        """Where this workload's masks come from (for error messages)."""
        path = self._mask_path()
        return str(path) if path is not None else f"masks attached to workload '{self.name}'"

    def array(self, key: str) -> np.ndarray | None:
        """A companion array of the mask file (e.g. ``<mask>.se_ce``), or None if absent."""
        if self.masks is None and self._mask_cache is None:
            return None
        if self._mask_cache is not None and key in self._mask_cache:
            return self._mask_cache[key]
        return self._read_array(key, "masks")

    def _read_array(self, key: str, field: str) -> np.ndarray | None:
        """One array of the mask file (cached), None when the file has no such array."""
        if self._masks_attached:
            return None  # masks attached in memory: nothing else exists
        if self._mask_archive is None:
            from .npz_reader import NpzArchive

            path = self._mask_path()
            if path is None:
                raise MaskError("layers name masks but the workload has no 'masks' file", source=self.name, field="masks")
            self._mask_archive = NpzArchive(path)
        if key not in self._mask_archive:
            return None
        arr = self._mask_archive.read(key, field)
        if self._mask_cache is None:
            self._mask_cache = {}
        self._mask_cache[key] = arr
        return arr

    def attach_masks(self, masks: dict[str, np.ndarray]) -> None:
        """Provide masks in memory (e.g. straight from the front-end); checked when simulated."""
        self._mask_cache = dict(masks)
        self._masks_attached = True
        self._masks_checked = False

    def _mask_path(self) -> Path | None:
        if self.masks is None:
            return None
        p = Path(self.masks)
        if not p.is_absolute() and self._base_dir is not None:
            p = self._base_dir / p
        return p

    def _load_masks(self) -> dict[str, np.ndarray]:
        """Every array of the mask file (each bounded as in :meth:`mask`), or the attached masks."""
        if self._masks_attached:
            return self._mask_cache or {}
        path = self._mask_path()
        if path is None:
            raise MaskError("layers name masks but the workload has no 'masks' file", source=self.name, field="masks")
        if self._mask_archive is None:
            from .npz_reader import NpzArchive

            self._mask_archive = NpzArchive(path)
        for key in self._mask_archive.keys():
            self._read_array(key, "masks")
        return dict(self._mask_cache or {})


def check_unique(names: list[str], source: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"layer name {n!r} is used twice", source=source, field="layers")
        seen.add(n)
