"""The compression record every layer carries.

Two axes are kept apart, as Timeloop does: *how dense* a tensor is (``Sparsity.kind`` and
``density``) and *how it is stored* (``Sparsity.format``). Quantisation and factorisation are
separate records. A dense, 8-bit, unfactorised layer has the default ``Compression()``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._validation import reject_bool_numbers

SparsityKind = Literal["dense", "unstructured", "channel", "filter", "block", "nm", "pattern", "gs"]
StorageFormat = Literal["dense", "bitmask", "csr", "rle", "coo", "nm_index", "gs_index", "pattern_index"]
QuantScheme = Literal["int", "pow2", "binary", "ternary", "float"]
FactorKind = Literal["none", "lowrank", "tucker", "smartexchange"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)


class Sparsity(_Record):
    """Weight sparsity of a layer.

    ``density`` is the fraction of weights kept (non-zero), in (0, 1]. Kinds:

    - ``dense``: no pruning (density must be 1).
    - ``unstructured``: any element may be zero.
    - ``channel`` / ``filter``: whole input channels / output filters removed. The exported layer
      shapes are already shrunk; ``density`` records the kept fraction for reporting.
    - ``block``: ``block_h`` x ``block_w`` blocks of the (rows = outputs, cols = reduction) weight
      matrix are all-zero or kept.
    - ``nm``: at most ``n`` non-zeros in every ``m`` consecutive weights along the reduction axis.
    - ``pattern``: PatDNN kernel patterns, ``pattern_entries`` non-zeros per kept 3x3 kernel chosen
      from a library of ``num_patterns``; ``kernel_density`` is the fraction of kernels kept
      (connectivity pruning).
    - ``gs``: gather-scatter patterns: every row of a group of ``gs_group_rows`` rows keeps the same
      number of non-zeros, so a gather/scatter engine stays load-balanced.

    ``mask`` names an array in the workload's mask file (``Workload.masks``); ``format`` is how
    the non-zeros are stored and ``index_bits`` the width of one stored index (metadata cost).
    """

    kind: SparsityKind = "dense"
    density: float = Field(1.0, gt=0.0, le=1.0)
    block_h: int | None = Field(None, gt=0)
    block_w: int | None = Field(None, gt=0)
    n: int | None = Field(None, gt=0)
    m: int | None = Field(None, gt=0)
    pattern_entries: int | None = Field(None, gt=0)
    num_patterns: int | None = Field(None, gt=0)
    kernel_density: float | None = Field(None, gt=0.0, le=1.0)
    gs_group_rows: int | None = Field(None, gt=0)
    mask: str | None = None
    format: StorageFormat = "dense"
    index_bits: int | None = Field(None, gt=0, le=32)

    @model_validator(mode="after")
    def _check_kind(self) -> "Sparsity":
        if self.kind == "dense" and self.density != 1.0:
            raise ValueError("kind 'dense' needs density 1.0; use kind 'unstructured' for pruned weights")
        if self.kind == "block" and (self.block_h is None or self.block_w is None):
            raise ValueError("kind 'block' needs block_h and block_w")
        if self.kind == "nm":
            if self.n is None or self.m is None:
                raise ValueError("kind 'nm' needs n and m (e.g. n: 2, m: 4)")
            if self.n > self.m:
                raise ValueError(f"N:M sparsity needs n <= m, got {self.n}:{self.m}")
            if abs(self.density - self.n / self.m) > 1e-9 and self.density != 1.0:
                raise ValueError(f"N:M {self.n}:{self.m} has density {self.n / self.m:g}, not {self.density:g}")
        if self.kind == "pattern" and self.pattern_entries is None:
            raise ValueError("kind 'pattern' needs pattern_entries (non-zeros per kept kernel)")
        return self

    @property
    def effective_density(self) -> float:
        """Fraction of weights that are non-zero (N:M without explicit density uses n/m)."""
        if self.kind == "nm" and self.density == 1.0 and self.n is not None and self.m is not None:
            return self.n / self.m
        return self.density


class Quant(_Record):
    """Numeric format of weights and activations.

    ``scheme``: ``int`` (uniform integer), ``pow2`` (signed powers of two: a multiply is a shift),
    ``binary`` / ``ternary`` (1 or 2 bits, multiply-free), ``float``.
    """

    weight_bits: int = Field(8, ge=1, le=32)
    act_bits: int = Field(8, ge=1, le=32)
    scheme: QuantScheme = "int"
    granularity: Literal["tensor", "channel"] = "tensor"
    symmetric: bool = True

    @model_validator(mode="after")
    def _check_scheme(self) -> "Quant":
        if self.scheme == "binary" and self.weight_bits != 1:
            raise ValueError("scheme 'binary' needs weight_bits 1")
        if self.scheme == "ternary" and self.weight_bits != 2:
            raise ValueError("scheme 'ternary' needs weight_bits 2")
        return self


class Factorization(_Record):
    """How a layer's weight was factorised.

    - ``lowrank``: W (out x in) ~ U (out x rank) V (rank x in); usually exported as two layers,
      this record keeps ``rank`` for reporting.
    - ``tucker``: Tucker-2 of a conv kernel with ``ranks = (rank_out, rank_in)``.
    - ``smartexchange``: W ~ Ce B with a ``basis_size`` x ``basis_size`` basis B and a sparse
      coefficient matrix Ce of density ``ce_density`` whose non-zeros are signed powers of two
      with ``ce_bits`` bits (sign + exponent).
    """

    kind: FactorKind = "none"
    rank: int | None = Field(None, gt=0)
    ranks: tuple[int, int] | None = None
    basis_size: int | None = Field(None, gt=0)
    ce_density: float | None = Field(None, gt=0.0, le=1.0)
    ce_bits: int | None = Field(None, ge=1, le=8)
    basis_bits: int | None = Field(None, ge=1, le=32)

    @model_validator(mode="after")
    def _check_kind(self) -> "Factorization":
        if self.kind == "lowrank" and self.rank is None:
            raise ValueError("kind 'lowrank' needs rank")
        if self.kind == "tucker" and self.ranks is None:
            raise ValueError("kind 'tucker' needs ranks [rank_out, rank_in]")
        if self.kind == "smartexchange" and (self.basis_size is None or self.ce_density is None):
            raise ValueError("kind 'smartexchange' needs basis_size and ce_density")
        return self


#: widths a dynamic-precision record may use: 0 (the layer is skipped) or an integer width 1..32
DYNAMIC_BITS_MAX = 32


class DynamicPrecision(_Record):
    """Input-dependent precision of a layer (DFS, dynamic fractional skipping), as measured.

    ``bits_probability`` maps each width ``b`` (0 = the layer is skipped for that input, else
    ``b``-bit weights and activations) to the share of ``inputs`` inputs of a data set whose gate
    chose it (shares sum to 1). Layers with the same ``gate`` take the same choice per input (e.g.
    the two convs of one residual branch). ``trace``, optional, is the width chosen for every input
    of the data set in order (the same inputs, in the same order, for every gate of the workload):
    with traces the simulator prices each input exactly, without them it assumes the gates choose
    independently of each other.
    """

    gate: str = Field(min_length=1)
    bits_probability: dict[int, float] = Field(min_length=1)
    inputs: int | None = Field(None, gt=0)
    trace: list[int] | None = None

    @model_validator(mode="after")
    def _check(self) -> "DynamicPrecision":
        bad = [b for b in self.bits_probability if not 0 <= b <= DYNAMIC_BITS_MAX]
        if bad:
            raise ValueError(f"bits_probability widths must be 0 (skip) or 1..{DYNAMIC_BITS_MAX}, got {bad}")
        if any(not 0.0 <= p <= 1.0 for p in self.bits_probability.values()):
            raise ValueError("bits_probability shares must be in [0, 1]")
        total = sum(self.bits_probability.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"bits_probability shares must sum to 1, got {total:.6g}")
        if self.trace is not None:
            if not self.trace:
                raise ValueError("trace must not be empty")
            if self.inputs is not None and len(self.trace) != self.inputs:
                raise ValueError(f"trace has {len(self.trace)} entries but inputs is {self.inputs}")
            n = len(self.trace)
            for b in set(self.trace) | set(self.bits_probability):
                share = self.trace.count(b) / n
                if abs(share - self.bits_probability.get(b, 0.0)) > 1e-6:
                    raise ValueError(f"trace chooses {b} bits for {share:.4g} of inputs but bits_probability says "
                                     f"{self.bits_probability.get(b, 0.0):.4g}")
        return self

    @property
    def widths(self) -> list[int]:
        """The widths with a non-zero share, ascending (0 = skipped)."""
        return sorted(b for b, p in self.bits_probability.items() if p > 0)


class Compression(_Record):
    """Everything that makes a layer cheaper than its dense fp/int8 original.

    ``act_density`` is the expected fraction of non-zero input activations (e.g. after ReLU);
    ``act_channel_density`` optionally its value per input channel (measured by the front-end;
    their mean is ``act_density``); ``act_mask`` names a real 0/1 mask of the layer's input
    activations (shape ``(N, C, H, W)`` or ``(tokens, features)``, one or more calibration
    inputs) in the workload's mask file.
    ``original`` holds layer fields from before structural pruning/factorisation (e.g.
    ``{out_channels: 64}``) so the dense baseline can be rebuilt. ``factor_of`` names the
    original layer a factorised layer was split from: of the layers sharing it, the one with
    ``original`` becomes the dense layer (under that name) and the others disappear.
    ``dynamic_precision`` (:class:`DynamicPrecision`) marks a layer whose width is chosen per input
    (DFS); ``quant`` is then the width the layer's own report row is simulated at.
    """

    sparsity: Sparsity = Sparsity()
    quant: Quant = Quant()
    factorization: Factorization = Factorization()
    act_density: float = Field(1.0, gt=0.0, le=1.0)
    act_channel_density: tuple[float, ...] | None = None
    act_mask: str | None = None
    original: dict[str, int] | None = None
    factor_of: str | None = None
    dynamic_precision: DynamicPrecision | None = None

    @model_validator(mode="after")
    def _check_act(self) -> "Compression":
        ch = self.act_channel_density
        if ch is not None:
            if not ch or any(not (0.0 <= d <= 1.0) for d in ch):
                raise ValueError("act_channel_density needs one density in [0, 1] per input channel")
            if abs(sum(ch) / len(ch) - self.act_density) > 0.02 + 1e-9:
                raise ValueError(f"act_channel_density averages {sum(ch) / len(ch):.3f}, "
                                 f"not act_density {self.act_density:.3f}")
        return self

    @property
    def is_factor_part(self) -> bool:
        """A piece of a factorised layer that has no dense counterpart of its own."""
        split = self.factor_of is not None or self.factorization.kind in ("lowrank", "tucker")
        return split and self.original is None

    @property
    def is_dense(self) -> bool:
        """True for the uncompressed default (dense, 8-bit int, unfactorised)."""
        return self == _dense_default()


@lru_cache(maxsize=1)
def _dense_default() -> Compression:
    """The uncompressed default (frozen: built once, not per :attr:`Compression.is_dense` call)."""
    return Compression()
