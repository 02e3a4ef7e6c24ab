"""Layers of the workload IR and their GEMM view.

Every compute layer lowers to one or more :class:`Gemm` s, ``C[m x n] = A[m x k] @ B[k x n]``,
repeated ``count`` times one after another (conv groups, attention heads, LSTM time steps):

============  =========================  ==========================  =====================
op            m (output rows)            n (output columns)          k (reduction)
============  =========================  ==========================  =====================
conv2d        batch * P * Q              out_channels / groups       R * S * in_ch / groups
linear        batch * tokens             out_features                in_features
matmul        m                          n                           k  (count = batch*heads)
lstm / gru    x-projection: batch*seq;   gates * hidden              input_size
              recurrence: batch          gates * hidden              hidden  (count = seq)
============  =========================  ==========================  =====================

``A`` is the input-activation operand ("ifmap"), ``B`` the weight operand ("filter") and ``C``
the output ("ofmap"), as in SCALE-Sim. Element counts are *unique* words (an im2col matrix
repeats input pixels; DRAM only has to deliver each once).

Output size of conv/pool: ``floor((H + 2*pad - dil*(R-1) - 1) / stride) + 1``; with
``out_rounding: ceil`` the division rounds up (SCALE-Sim topologies: no padding, rounded up).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._validation import reject_bool_numbers
from .compression import Compression

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Upper bounds checked when a layer is built (before anything is allocated or looped over;
#: the table in docs/workload_format.md gives the reasons):
#:
#: - ``MAX_DIM`` (2^20): every single axis (channels, features, H, W, kernel, stride, padding,
#:   batch, tokens, heads, ...). Engines loop in Python/numba over one axis at a time (output
#:   rows of a conv on the FPGA engine, input spans of strided convs, crossbar output columns),
#:   so one axis bounds their time; 2^20 admits 4K/8K images, GPT-3's widths (12288, 49152,
#:   vocabulary 50257) and million-token contexts, and refuses K=10^9.
#: - ``MAX_GEMM_ROWS`` (2^28) output rows (``batch * P * Q``) and ``MAX_GEMM_DIM`` (2^24)
#:   columns / reduction of each GEMM a layer lowers to, and ``MAX_LAYER_MACS`` (2^50) dense
#:   MACs: H=W=10^6 (10^12 rows) is refused, a 4K image at batch 32 (2.7e8 rows) admitted.
#: - ``MAX_LAYER_WORDS`` (2^44) words read + written (+ element ops) by one layer, and the
#:   ``elements`` of an element-wise layer: words x 64 bit stays below 2^53, so traffic counts
#:   are exact in float64 and never overflow int64 (a 4K 64-channel map at batch 256 is 2^37).
#:
#: What an engine *materialises* is bounded where it allocates: masks by
#: :data:`accelsim.workload.npz_reader.MAX_ARRAY_BYTES`, the gather-scatter expectation sample by
#: :data:`accelsim.engines.gather_scatter.MAX_SAMPLE_ELEMENTS`; both are checked before allocating.
MAX_DIM = 2**20
MAX_GEMM_ROWS = 2**28
MAX_GEMM_DIM = 2**24
MAX_LAYER_MACS = 2**50
MAX_LAYER_WORDS = 2**44

PosInt = Annotated[int, Field(gt=0, le=MAX_DIM)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_DIM)]
#: a tensor size (elements of an element-wise layer), not one axis
TensorSize = Annotated[int, Field(gt=0, le=MAX_LAYER_WORDS)]


def input_span(lo: int, hi: int, kernel: int, stride: int, pad: int, dilation: int, size: int) -> int:
    """Distinct input indices (rows or columns) read by outputs lo..hi (inclusive) along one axis."""
    extent = dilation * (kernel - 1) + 1
    if stride <= extent and dilation == 1:
        first = max(lo * stride - pad, 0)
        last = min(hi * stride - pad + extent - 1, size - 1)
        return max(last - first + 1, 0)
    idx: set[int] = set()
    for o in range(lo, hi + 1):
        base = o * stride - pad
        for r in range(kernel):
            i = base + r * dilation
            if 0 <= i < size:
                idx.add(i)
    return len(idx)


@dataclass(frozen=True)
class ConvGeometry:
    """What an engine needs to count unique input pixels of a slice of output pixels."""

    batch: int
    in_h: int
    in_w: int
    channels: int  # input channels of one group
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    dilation_h: int
    dilation_w: int
    out_h: int
    out_w: int


    def input_rows_for_output_rows(self, oh_lo: int, oh_hi: int) -> int:
        """Number of distinct input rows (within one image) read by output rows [oh_lo, oh_hi]."""
        return input_span(oh_lo, oh_hi, self.kernel_h, self.stride_h, self.pad_h, self.dilation_h, self.in_h)

    def input_cols_used(self) -> int:
        """Distinct input columns read by a whole output row (strided 1x1 convs skip columns)."""
        return input_span(0, self.out_w - 1, self.kernel_w, self.stride_w, self.pad_w, self.dilation_w, self.in_w)

    def input_words_for_pixels(self, p_lo: int, p_hi: int) -> int:
        """Distinct input words (all channels of the group) for output pixels [p_lo, p_hi).

        Pixels are numbered batch-major then row-major, as rows of the im2col matrix. An input
        row is fetched whole (line-buffer assumption) except for the columns no output reads
        (strided convs with stride > kernel).
        """
        if p_hi <= p_lo:
            return 0
        per_image = self.out_h * self.out_w
        row_words = self.input_cols_used() * self.channels
        img_a, img_b = p_lo // per_image, (p_hi - 1) // per_image
        oh_a = (p_lo - img_a * per_image) // self.out_w
        oh_b = (p_hi - 1 - img_b * per_image) // self.out_w
        if img_a == img_b:
            return self.input_rows_for_output_rows(oh_a, oh_b) * row_words
        # closed form (no loop over images): partial first image, whole images, partial last image
        full = self.input_rows_for_output_rows(0, self.out_h - 1)
        rows = (self.input_rows_for_output_rows(oh_a, self.out_h - 1) + (img_b - img_a - 1) * full
                + self.input_rows_for_output_rows(0, oh_b))
        return rows * row_words

    def input_words_for_pixel_ranges(self, lo: "np.ndarray", hi: "np.ndarray") -> "np.ndarray":
        """:meth:`input_words_for_pixels` of many ranges ``[lo[i], hi[i])`` at once (numpy)."""
        import numpy as np

        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        per_image = self.out_h * self.out_w
        row_words = self.input_cols_used() * self.channels
        nonempty = hi > lo
        last = np.maximum(hi - 1, lo)
        img_a, img_b = lo // per_image, last // per_image
        oh_a = (lo - img_a * per_image) // self.out_w
        oh_b = (last - img_b * per_image) // self.out_w
        same = img_a == img_b
        full = self.input_rows_for_output_rows(0, self.out_h - 1)
        rows = np.where(
            same, self._rows_span(oh_a, oh_b),
            self._rows_span(oh_a, np.full_like(oh_a, self.out_h - 1)) + self._rows_span(np.zeros_like(oh_b), oh_b)
            + np.maximum(img_b - img_a - 1, 0) * full)
        return np.where(nonempty, rows * row_words, 0)

    def _rows_span(self, oh_lo: "np.ndarray", oh_hi: "np.ndarray") -> "np.ndarray":
        """:meth:`input_rows_for_output_rows` elementwise."""
        import numpy as np

        k, s, pad, dil, size = self.kernel_h, self.stride_h, self.pad_h, self.dilation_h, self.in_h
        extent = dil * (k - 1) + 1
        if s <= extent and dil == 1:
            first = np.maximum(oh_lo * s - pad, 0)
            last = np.minimum(oh_hi * s - pad + extent - 1, size - 1)
            return np.maximum(last - first + 1, 0)
        pairs = {(a, b): input_span(a, b, k, s, pad, dil, size) for a, b in set(zip(oh_lo.tolist(), oh_hi.tolist()))}
        return np.array([pairs[(a, b)] for a, b in zip(oh_lo.tolist(), oh_hi.tolist())], dtype=np.int64)


@dataclass(frozen=True)
class Gemm:
    """One GEMM ``C[m x n] = A[m x k] @ B[k x n]`` repeated ``count`` times in sequence."""

    m: int
    n: int
    k: int
    count: int = 1
    a_words: int = 0  # unique input-activation words per repetition (0 -> m*k)
    b_words: int = 0  # unique weight words per repetition (0 -> k*n)
    b_is_weight: bool = True  # False for activation x activation (attention scores)
    b_instances: int = 0  # distinct B matrices among the repetitions (0 -> count); 1 = shared
    tag: str = "main"
    conv: ConvGeometry | None = None

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count

    @property
    def a_unique(self) -> int:
        return self.a_words or self.m * self.k

    @property
    def b_unique(self) -> int:
        return self.b_words or self.k * self.n

    @property
    def c_unique(self) -> int:
        return self.m * self.n

    @property
    def b_distinct(self) -> int:
        """How many different B matrices the ``count`` repetitions use."""
        return self.b_instances or self.count

    def a_words_for_rows(self, lo: int, hi: int) -> int:
        """Unique A words needed by output rows [lo, hi) (whole reduction)."""
        if self.conv is not None:
            return self.conv.input_words_for_pixels(lo, hi)
        return max(hi - lo, 0) * self.k

    def a_words_for_row_ranges(self, lo: "np.ndarray", hi: "np.ndarray") -> "np.ndarray":
        """:meth:`a_words_for_rows` of many ranges at once (numpy arrays)."""
        import numpy as np

        if self.conv is not None:
            return self.conv.input_words_for_pixel_ranges(lo, hi)
        return np.maximum(np.asarray(hi, dtype=np.int64) - np.asarray(lo, dtype=np.int64), 0) * self.k


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"expected one integer or a pair [h, w], got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _expand_pairs(data: Any, names: tuple[str, ...]) -> Any:
    """Accept ``kernel: 3`` / ``stride: [2, 1]`` shorthands for the ``*_h``/``*_w`` fields."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for short in names:
        if short in data:
            value = data.pop(short)
            long = "kernel" if short == "kernel" else short
            prefix = {"kernel": "kernel", "stride": "stride", "padding": "pad", "dilation": "dilation"}[long]
            try:
                h, w = _pair(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"'{short}': {exc}") from None
            data.setdefault(f"{prefix}_h", h)
            data.setdefault(f"{prefix}_w", w)
    return data


def _out_size(size: int, kernel: int, stride: int, pad: int, dilation: int, rounding: str) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    steps = -(-span // stride) if rounding == "ceil" else span // stride
    return steps + 1


class LayerBase(BaseModel):
    """Fields and derived quantities shared by every layer."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        return reject_bool_numbers(cls, data)

    name: str = Field(min_length=1)
    batch: PosInt = 1
    compression: Compression = Compression()

    @model_validator(mode="after")
    def _size_bounds(self) -> "LayerBase":
        macs = 0
        for g in self.gemms():
            if g.m > MAX_GEMM_ROWS:
                raise ValueError(f"lowers to a GEMM with {g.m:,} output rows, more than the {MAX_GEMM_ROWS:,} "
                                 "accelsim simulates (see accelsim.workload.layer.MAX_GEMM_ROWS)")
            if max(g.n, g.k) > MAX_GEMM_DIM:
                raise ValueError(f"lowers to a GEMM of {g.n:,} columns x {g.k:,} reduction, more than the "
                                 f"{MAX_GEMM_DIM:,} accelsim simulates (MAX_GEMM_DIM)")
            macs += g.macs
        if macs > MAX_LAYER_MACS:
            raise ValueError(f"has {macs:,} MACs, more than the {MAX_LAYER_MACS:,} accelsim simulates (MAX_LAYER_MACS)")
        words = self.input_words + self.output_words + int(getattr(self, "vector_ops", 0))
        if words > MAX_LAYER_WORDS:
            raise ValueError(f"reads, writes and operates on {words:,} words, more than the {MAX_LAYER_WORDS:,} "
                             "accelsim simulates (MAX_LAYER_WORDS)")
        return self

    # --- overridden by subclasses -------------------------------------------------------
    def gemms(self) -> list[Gemm]:
        """The GEMMs this layer lowers to (empty for memory-bound layers)."""
        return []

    @property
    def input_words(self) -> int:
        """Unique input-activation words the layer reads."""
        raise NotImplementedError

    @property
    def weight_words(self) -> int:
        """Weight words (dense count; compression is applied by engines)."""
        return sum(g.b_unique * g.b_distinct for g in self.gemms() if g.b_is_weight)

    @property
    def output_words(self) -> int:
        raise NotImplementedError

    # --- derived ------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Dense multiply-accumulates (compression not applied)."""
        return sum(g.macs for g in self.gemms())

    @property
    def is_compute(self) -> bool:
        return bool(self.gemms())

    def densified(self) -> "LayerBase":
        """The same layer without compression (original shapes restored; a factorised layer
        takes back the name of the layer it was split from)."""
        fields = self.model_dump()
        original = self.compression.original or {}
        fields.update(original)
        if self.compression.factor_of:
            fields["name"] = self.compression.factor_of
        fields["compression"] = Compression()
        return type(self).model_validate(fields)

    @property
    def dense_name(self) -> str:
        """Name of the layer of the dense original this layer stands for."""
        return self.compression.factor_of or self.name

    def describe(self) -> str:
        return f"{self.name} ({getattr(self, 'op', '?')})"


class Conv2d(LayerBase):
    """2-D convolution, incl. grouped and depthwise (``groups == in_channels``)."""

    op: Literal["conv2d"] = "conv2d"
    in_channels: PosInt
    out_channels: PosInt
    in_h: PosInt
    in_w: PosInt
    kernel_h: PosInt
    kernel_w: PosInt
    stride_h: PosInt = 1
    stride_w: PosInt = 1
    pad_h: NonNegInt = 0
    pad_w: NonNegInt = 0
    dilation_h: PosInt = 1
    dilation_w: PosInt = 1
    groups: PosInt = 1
    out_rounding: Literal["floor", "ceil"] = "floor"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _expand_pairs(data, ("kernel", "stride", "padding", "dilation"))

    @model_validator(mode="after")
    def _check(self) -> "Conv2d":
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels {self.in_channels} is not divisible by groups {self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}")
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(
                f"kernel {self.kernel_h}x{self.kernel_w} does not fit input {self.in_h}x{self.in_w}"
                f" with padding {self.pad_h},{self.pad_w}"
            )
        return self

    @property
    def out_h(self) -> int:
        return _out_size(self.in_h, self.kernel_h, self.stride_h, self.pad_h, self.dilation_h, self.out_rounding)

    @property
    def out_w(self) -> int:
        return _out_size(self.in_w, self.kernel_w, self.stride_w, self.pad_w, self.dilation_w, self.out_rounding)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels

    def gemms(self) -> list[Gemm]:
        g = self.groups
        cin = self.in_channels // g
        geom = ConvGeometry(
            self.batch, self.in_h, self.in_w, cin, self.kernel_h, self.kernel_w, self.stride_h,
            self.stride_w, self.pad_h, self.pad_w, self.dilation_h, self.dilation_w, self.out_h, self.out_w,
        )
        m = self.batch * self.out_h * self.out_w
        return [
            Gemm(
                m=m, n=self.out_channels // g, k=self.kernel_h * self.kernel_w * cin, count=g,
                a_words=geom.input_words_for_pixels(0, m), tag="conv", conv=geom,
            )
        ]

    @property
    def input_words(self) -> int:
        return self.batch * self.in_channels * self.in_h * self.in_w

    @property
    def output_words(self) -> int:
        return self.batch * self.out_channels * self.out_h * self.out_w


class Linear(LayerBase):
    """Fully connected layer applied to ``batch * tokens`` rows."""

    op: Literal["linear"] = "linear"
    in_features: PosInt
    out_features: PosInt
    tokens: PosInt = 1

    def gemms(self) -> list[Gemm]:
        return [Gemm(m=self.batch * self.tokens, n=self.out_features, k=self.in_features, tag="linear")]

    @property
    def input_words(self) -> int:
        return self.batch * self.tokens * self.in_features

    @property
    def output_words(self) -> int:
        return self.batch * self.tokens * self.out_features


class Matmul(LayerBase):
    """Batched matrix product ``[m x k] @ [k x n]`` repeated ``batch * heads`` times.

    ``b_operand: activation`` (default) marks both operands as activations (attention
    ``Q K^T`` and ``softmax(.) V``); ``weight`` makes B a weight (compressible).
    """

    op: Literal["matmul"] = "matmul"
    m: PosInt
    k: PosInt
    n: PosInt
    heads: PosInt = 1
    b_operand: Literal["activation", "weight"] = "activation"

    def gemms(self) -> list[Gemm]:
        return [
            Gemm(m=self.m, n=self.n, k=self.k, count=self.batch * self.heads,
                 b_is_weight=self.b_operand == "weight", tag="matmul",
                 b_instances=self.heads if self.b_operand == "weight" else 0)
        ]

    @property
    def input_words(self) -> int:
        extra = 0 if self.b_operand == "weight" else self.k * self.n
        return self.batch * self.heads * (self.m * self.k + extra)

    @property
    def weight_words(self) -> int:
        return self.k * self.n * self.heads if self.b_operand == "weight" else 0

    @property
    def output_words(self) -> int:
        return self.batch * self.heads * self.m * self.n


class Recurrent(LayerBase):
    """One LSTM or GRU layer (one direction) over ``seq_len`` steps, lowered to two GEMMs.

    The input projection of all steps is one GEMM; the recurrent projection runs once per step
    (``count = seq_len``) because step t needs h(t-1). Gate non-linearities are not counted as
    MACs (they are ``gates * hidden`` element-wise operations per step).
    """

    op: Literal["lstm", "gru"] = "lstm"
    input_size: PosInt
    hidden_size: PosInt
    seq_len: PosInt = 1

    @property
    def gates(self) -> int:
        return 4 if self.op == "lstm" else 3

    def gemms(self) -> list[Gemm]:
        n = self.gates * self.hidden_size
        return [
            Gemm(m=self.batch * self.seq_len, n=n, k=self.input_size, tag="x_proj"),
            Gemm(m=self.batch, n=n, k=self.hidden_size, count=self.seq_len, tag="h_proj", b_instances=1),
        ]

    @property
    def input_words(self) -> int:
        return self.batch * self.seq_len * self.input_size

    @property
    def output_words(self) -> int:
        return self.batch * self.seq_len * self.hidden_size


class Elementwise(LayerBase):
    """Element-wise op over ``elements`` per input (residual add, activation, scaling).

    Memory-bound: reads ``num_inputs * elements`` words and writes ``elements`` words.
    """

    op: Literal["elementwise"] = "elementwise"
    elements: TensorSize
    num_inputs: PosInt = 2
    ops_per_element: PosInt = 1

    @property
    def input_words(self) -> int:
        return self.batch * self.elements * self.num_inputs

    @property
    def output_words(self) -> int:
        return self.batch * self.elements

    @property
    def vector_ops(self) -> int:
        return self.batch * self.elements * self.ops_per_element


class Embedding(Elementwise):
    """Embedding table lookup: ``elements`` = tokens x ``embedding_dim`` words gathered from a
    ``num_embeddings x embedding_dim`` table (``weight_words``). No MACs; it runs on the vector /
    element-wise path of every engine (it *is* an :class:`Elementwise` with one input): it reads
    the gathered rows (``input_words``) and writes them (``output_words``). Assumption: only the
    rows looked up are fetched, the table itself is not streamed.
    """

    op: Literal["embedding"] = "embedding"  # type: ignore[assignment]
    num_embeddings: PosInt
    embedding_dim: PosInt
    num_inputs: PosInt = 1
    ops_per_element: PosInt = 1

    @model_validator(mode="after")
    def _check_rows(self) -> "Embedding":
        if self.elements % self.embedding_dim:
            raise ValueError(f"elements {self.elements} is not a multiple of embedding_dim {self.embedding_dim}")
        return self

    @property
    def tokens(self) -> int:
        return self.elements // self.embedding_dim

    @property
    def weight_words(self) -> int:
        return self.num_embeddings * self.embedding_dim


class Pool(LayerBase):
    """Max/average pooling (``global_pool: true`` pools the whole map)."""

    op: Literal["pool"] = "pool"
    channels: PosInt
    in_h: PosInt
    in_w: PosInt
    kernel_h: PosInt = 1
    kernel_w: PosInt = 1
    stride_h: PosInt = 1
    stride_w: PosInt = 1
    pad_h: NonNegInt = 0
    pad_w: NonNegInt = 0
    mode: Literal["max", "avg"] = "max"
    global_pool: bool = False
    out_rounding: Literal["floor", "ceil"] = "floor"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _expand_pairs(data, ("kernel", "stride", "padding"))

    @model_validator(mode="after")
    def _check(self) -> "Pool":
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(f"pool window {self.kernel_h}x{self.kernel_w} does not fit input {self.in_h}x{self.in_w}")
        return self

    @property
    def out_h(self) -> int:
        if self.global_pool:
            return 1
        return _out_size(self.in_h, self.kernel_h, self.stride_h, self.pad_h, 1, self.out_rounding)

    @property
    def out_w(self) -> int:
        if self.global_pool:
            return 1
        return _out_size(self.in_w, self.kernel_w, self.stride_w, self.pad_w, 1, self.out_rounding)

    @property
    def input_words(self) -> int:
        return self.batch * self.channels * self.in_h * self.in_w

    @property
    def output_words(self) -> int:
        return self.batch * self.channels * self.out_h * self.out_w

    @property
    def vector_ops(self) -> int:
        window = self.in_h * self.in_w if self.global_pool else self.kernel_h * self.kernel_w
        return self.output_words * window


Layer = Annotated[Union[Conv2d, Linear, Matmul, Recurrent, Elementwise, Embedding, Pool], Field(discriminator="op")]
LAYER_TYPES: dict[str, type[LayerBase]] = {
    "conv2d": Conv2d, "linear": Linear, "matmul": Matmul, "lstm": Recurrent, "gru": Recurrent,
    "elementwise": Elementwise, "embedding": Embedding, "pool": Pool,
}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ = [
    "ConvGeometry", "Gemm", "LayerBase", "Conv2d", "Linear", "Matmul", "Recurrent", "Elementwise",
    "Embedding", "Pool", "Layer", "LAYER_TYPES", "ceil_div",
]
