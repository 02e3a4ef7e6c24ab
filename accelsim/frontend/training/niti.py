"""Integer-only training, NITI-style.

Wang, Rasoulinezhad, Leong, So, "NITI: Training Integer Neural Networks Using Integer-only
Arithmetic", arXiv 2009.13108 (code wangmaolin/niti, ``ti_torch.py`` / ``ti_loss.py``;
literature.md E "NITI", H-E2).

Every tensor is an int8 array with one power-of-two exponent per tensor (block floating point,
value = int8 * 2^exp); weights, activations, errors and weight updates are integers throughout —
no float tensor is used to train (the weights are initialised once from a float Xavier draw, as
the reference does, and the input pixels 0..16 are int8 with exponent -4).

- conv / linear: int8 x int8 products accumulated in int32; the result is shifted back to int8 by
  ``shift = bit_length(max|acc|) - 7`` with round-half-away-from-zero (``RoundShift``); the output
  exponent is ``exp_in + exp_w + shift``. (NITI takes ``ceil(log2 max|acc|)``; the two differ only
  at exact powers of two, where the reference would overflow int8.)
- backward: errors are int8 with exponent; ``err_in = W^T err`` in int32, shifted back to int8
  the same way; weight gradients ``err^T act`` in int32 are shifted to ``grad_bits`` (the
  reference's ``GRAD_BITWIDTH``, 5 -> 4 -> 3 at 50 % / 75 % of training, as its VGG regime) with
  **pseudo-stochastic rounding** (``PstoShift``): the discarded low bits are split into an upper
  half (the rounding probability) and a lower half (used as the pseudo-random number); round up
  when the upper half is larger — no random generator. Update: ``w = clip(w - g, -127, 127)``.
  The "learning rate" is the gradient bit-width.
- loss: NITI's integer cross-entropy gradient: logits are converted to base 2
  (``s * 47274 >> 15`` ~ ``s * log2(e)``), shifted by the exponent, offset so the largest is 10,
  clamped at 0, ``2^s - 1`` approximates the softmax numerators, normalised to ``2^11``, the
  target's entry minus the total, then shifted by 4 to int8 (pseudo-stochastic, where the
  reference uses its RNG-based ``StoShift``).
- ReLU works on the int8 values; 2x2 max pooling compares a float32 copy (exact); biases are
  not used (as in NITI).

Integer GEMMs run on the float32 BLAS with exactly representable operands (PyTorch has no CPU
int8 GEMM): every partial sum of a reduction over ``K`` terms is an integer bounded by
``K * max|a| * max|b|``; reductions are split into chunks keeping that bound <= 2^24, where float32
is exact in any summation order, and the chunks' results are added in int32 — bit-identical to an
int32 accumulator (tested against int64 matmuls). Convolutions use PyTorch's direct float32
convolution (forward, input gradient) on the same exact operands with the same bound; the weight
gradient is computed in batch chunks that keep every reduction within 2^24 (tested against an
integer im2col reference). Overflow of int32 raises.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .._deps import require_torch
from .loop import Method, TrainConfig
from .metrics import LayerCompression

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

BITWIDTH = 7  # magnitude bits of the int8 values (clip to +-127)
INT8_MAX = 127
LOSS_SHIFT = 4
LOSS_SCALE_BITS = 11
FP32_EXACT = 2 ** 24
INT32_LIMIT = 2 ** 31


# --- integer arithmetic ------------------------------------------------------------------------

@njit(cache=True)
def _absmax_kernel(x: np.ndarray) -> int:  # pragma: no cover (numba)
    m = 0
    for i in range(x.size):
        v = abs(int(x[i]))
        if v > m:
            m = v
    return m


@njit(cache=True)
def _round_shift_kernel(x: np.ndarray, shift: int, out: np.ndarray) -> None:  # pragma: no cover (numba)
    half = 1 << (shift - 1)
    for i in range(x.size):
        v = int(x[i])
        q = (abs(v) + half) >> shift
        if q > INT8_MAX:
            q = INT8_MAX
        out[i] = q if v >= 0 else -q


@njit(cache=True)
def _psto_shift_kernel(x: np.ndarray, shift: int, out: np.ndarray) -> None:  # pragma: no cover (numba)
    half = shift // 2
    odd = shift % 2 == 1
    for i in range(x.size):
        v = int(x[i])
        m = abs(v)
        q = m >> shift
        rem = m - (q << shift)
        prob = rem >> half
        rnd = rem - (prob << half)
        if odd:
            rnd *= 2
        if prob > rnd:
            q += 1
        if q > INT8_MAX:
            q = INT8_MAX
        out[i] = q if v >= 0 else -q


def _flat_int(x: "torch.Tensor") -> np.ndarray:
    if x.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64):
        raise TypeError(f"expected an integer tensor, got {x.dtype}")
    return x.contiguous().reshape(-1).numpy()


def _fast(x: "torch.Tensor", backend: str) -> bool:
    """numba kernels for CPU tensors (``auto``) or when asked; torch integer ops otherwise."""
    if backend not in ("auto", "torch", "numba"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'numba', got {backend!r}")
    if backend == "numba" and x.device.type != "cpu":
        raise ValueError(f"the numba NITI kernels need CPU tensors, got {x.device}")
    return backend == "numba" or (backend == "auto" and x.device.type == "cpu" and USE_NUMBA)


USE_NUMBA = True  # set False to run the torch integer ops on CPU too (same results; tested)


def absmax(x: "torch.Tensor", backend: str = "auto") -> int:
    """``max|x|`` of an integer tensor (0 when empty)."""
    if not x.numel():
        return 0
    if _fast(x, backend):
        return int(_absmax_kernel(_flat_int(x)))
    if x.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64):
        raise TypeError(f"expected an integer tensor, got {x.dtype}")
    return int(x.to(torch.int64).abs().max())


def bit_length(x: "torch.Tensor", backend: str = "auto") -> int:
    """Bits needed for ``max|x|`` (0 for an all-zero tensor)."""
    return absmax(x, backend).bit_length()


def int8_clip(x: "torch.Tensor") -> "torch.Tensor":
    return torch.clamp(x, -INT8_MAX, INT8_MAX).to(torch.int8)


def _signed_int8(v: "torch.Tensor", q: "torch.Tensor") -> "torch.Tensor":
    q = torch.clamp(q, max=INT8_MAX)
    return torch.where(v >= 0, q, -q).to(torch.int8)


def round_shift(x: "torch.Tensor", shift: int, backend: str = "auto") -> "torch.Tensor":
    """``x / 2^shift`` rounded half away from zero (NITI ``RoundShift``), clipped to +-127, int8."""
    if shift <= 0:
        return int8_clip(x)
    if not _fast(x, backend):
        v = x.to(torch.int64)
        return _signed_int8(v, (v.abs() + (1 << (shift - 1))) >> shift)
    out = torch.empty(x.shape, dtype=torch.int8)
    _round_shift_kernel(_flat_int(x), shift, out.numpy().reshape(-1))
    return out


def psto_shift(x: "torch.Tensor", shift: int, backend: str = "auto") -> "torch.Tensor":
    """``x / 2^shift`` with NITI's pseudo-stochastic rounding (``PstoShift``), clipped, int8.

    Of the ``shift`` discarded bits of ``|x|``, the upper ``shift - shift//2`` bits are the
    probability and the lower ``shift//2`` bits (doubled when ``shift`` is odd, to the same width)
    the pseudo-random number; the magnitude rounds up when probability > number.
    """
    if shift <= 0:
        return int8_clip(x)
    if not _fast(x, backend):
        v = x.to(torch.int64)
        m = v.abs()
        q = m >> shift
        rem = m - (q << shift)
        half = shift // 2
        prob = rem >> half
        rnd = rem - (prob << half)
        if shift % 2 == 1:
            rnd = rnd * 2
        return _signed_int8(v, q + (prob > rnd).to(torch.int64))
    out = torch.empty(x.shape, dtype=torch.int8)
    _psto_shift_kernel(_flat_int(x), shift, out.numpy().reshape(-1))
    return out


def _mag_bound(x: "torch.Tensor") -> int:
    """An upper bound of ``max|x|``: 128 for int8 (no scan), the exact maximum otherwise."""
    return 128 if x.dtype == torch.int8 else absmax(x)


def _exact_mm(af: "torch.Tensor", bf: "torch.Tensor", per_term: int) -> "torch.Tensor":
    """``af @ bf`` of float32 tensors holding integers, |a_ik b_kj| <= ``per_term``: exact int32.

    Every partial sum of a float32 GEMM over <= ``2^24 / per_term`` terms is an integer of
    magnitude <= 2^24, hence exact in any order; longer reductions are split into such chunks whose
    int32 results are added.
    """
    k = af.shape[-1]
    if k * per_term >= INT32_LIMIT:
        raise OverflowError(f"int32 accumulator overflow: K={k}, |a*b| <= {per_term}")
    chunk = max(1, FP32_EXACT // max(per_term, 1))
    if k <= chunk:
        return torch.matmul(af, bf).to(torch.int32)
    out = None
    for s in range(0, k, chunk):
        part = torch.matmul(af[..., s:s + chunk], bf[..., s:s + chunk, :]).to(torch.int32)
        out = part if out is None else out + part
    return out


def int_matmul(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Exact integer ``a @ b`` (int32 result) of integer tensors (see the module docstring)."""
    return _exact_mm(a.to(torch.float32), b.to(torch.float32), _mag_bound(a) * _mag_bound(b))


def requantize(acc: "torch.Tensor", exp: int) -> tuple["torch.Tensor", int]:
    """int32 accumulator -> int8 with ``shift = bit_length(max|acc|) - 7`` (``act_calc``/``err_calc``)."""
    shift = bit_length(acc) - BITWIDTH
    if shift > 0:
        return round_shift(acc, shift), exp + shift
    return acc.to(torch.int8), exp


def grad_to_bits(acc: "torch.Tensor", bits: int) -> "torch.Tensor":
    """Weight gradient int32 -> ``bits``-bit int8 with pseudo-stochastic rounding (``grad_calc``)."""
    if not 1 <= bits <= BITWIDTH:
        raise ValueError(f"gradient bits must be in 1..{BITWIDTH}, got {bits}")
    bl = bit_length(acc)
    if bl == 0:
        return torch.zeros(acc.shape, dtype=torch.int8, device=acc.device)
    shift = bl - bits
    if shift < 1:
        return acc.to(torch.int8)
    return psto_shift(acc, shift)


def integer_ce_grad(logits: "torch.Tensor", exp: int, target: "torch.Tensor") -> "torch.Tensor":
    """NITI's integer cross-entropy gradient (int8, exponent 0) of int8 ``logits * 2^exp``."""
    s = logits.to(torch.int64)
    if exp > -7:
        s = (s * 47274) >> 15  # s * log2(e): change the base of the softmax from e to 2
        s = s << exp if exp >= 0 else s >> (-exp)
        offset = s.max(dim=1, keepdim=True).values - 10
        s = torch.clamp(s - offset, min=0)
        g = (torch.ones_like(s) << s) - 1
    else:  # logits too small for the base-2 form: 2^(1-2e) (1 + x + x^2/2), x = s 2^e
        g = (1 << (1 - 2 * exp)) + s * (1 << (1 - exp)) + s * s
    total = g.sum(dim=1, keepdim=True)
    g = torch.div(g << LOSS_SCALE_BITS, total, rounding_mode="floor")
    rows = torch.arange(len(target), device=target.device)
    g[rows, target] -= g.sum(dim=1)
    return psto_shift(g, LOSS_SHIFT)


# --- layers ----------------------------------------------------------------------------------------

def _init_weight(shape: tuple[int, ...], generator: "torch.Generator") -> tuple["torch.Tensor", int]:
    """Xavier-uniform float draw quantised once to int8 + exponent (NITI ``weight_quant``)."""
    fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
    fan_out = shape[0] * (shape[2] * shape[3] if len(shape) == 4 else 1)
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    w = (torch.rand(shape, generator=generator) * 2 - 1) * bound
    rng = float(w.abs().max())
    exp = int(torch.ceil(torch.log2(torch.tensor(rng)))) - BITWIDTH
    return torch.round(w / rng * INT8_MAX).to(torch.int8), exp


class IntLayer(nn.Module):
    """Base of the integer layers: ``forward((x, exp)) -> (y, exp)``, ``backward((err, exp), grad_bits)``."""

    has_weight = False

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:  # pragma: no cover
        raise NotImplementedError

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        raise NotImplementedError  # pragma: no cover


class IntLinear(IntLayer):
    has_weight = True

    def __init__(self, in_features: int, out_features: int, generator: "torch.Generator"):
        super().__init__()
        w, e = _init_weight((out_features, in_features), generator)
        self.register_buffer("weight", w)
        self.register_buffer("weight_exp", torch.tensor(e, dtype=torch.int64))
        self._x: tuple["torch.Tensor", int] | None = None

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._x = inp
        acc = int_matmul(x, self.weight.t())
        return requantize(acc, e + int(self.weight_exp))

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        x, _ = self._x
        out = None
        if need_input_err:
            out = requantize(int_matmul(g, self.weight), ge + int(self.weight_exp))
        self.weight_grad_int32 = int_matmul(g.t(), x)
        self.weight_update_int8 = grad_to_bits(self.weight_grad_int32, grad_bits)
        self.weight.copy_(int8_clip(self.weight.to(torch.int16) - self.weight_update_int8.to(torch.int16)))
        return out


class IntConv2d(IntLayer):
    """3x3 (any k) convolution, stride 1, given padding, no bias; NCHW int8."""

    has_weight = True

    def __init__(self, in_channels: int, out_channels: int, kernel: int, padding: int, generator: "torch.Generator"):
        super().__init__()
        w, e = _init_weight((out_channels, in_channels, kernel, kernel), generator)
        self.register_buffer("weight", w)
        self.register_buffer("weight_exp", torch.tensor(e, dtype=torch.int64))
        self.kernel, self.padding = kernel, padding
        self._x: tuple["torch.Tensor", int] | None = None

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._x = inp
        per = _mag_bound(self.weight) * _mag_bound(x)
        k_terms = self.weight[0].numel()
        if k_terms * per > FP32_EXACT:
            raise OverflowError(f"conv reduction of {k_terms} terms may exceed float32's exact range")
        self._xf = x.to(torch.float32)
        self._wf = self.weight.to(torch.float32)
        acc = F.conv2d(self._xf, self._wf, padding=self.padding).to(torch.int32)
        return requantize(acc, e + int(self.weight_exp))

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        n, o, h, w = g.shape
        gf = g.to(torch.float32)
        per = _mag_bound(g) * _mag_bound(self.weight)
        out = None
        conv_bwd = torch.ops.aten.convolution_backward
        args = ([1, 1], [self.padding, self.padding], [1, 1], False, [0, 0], 1)
        if need_input_err:
            # each input pixel sums <= O * k * k products: exact in float32 below 2^24
            if o * self.kernel * self.kernel * per > FP32_EXACT:
                raise OverflowError("the convolution's input gradient may exceed float32's exact range")
            gi = conv_bwd(gf, self._xf, self._wf, None, *args, [True, False, False])[0]
            out = requantize(gi.to(torch.int32), ge + int(self.weight_exp))
        # weight gradient sums N * P * Q products per weight: in batch chunks of <= 2^24 / (P Q per) terms
        per_w = _mag_bound(g) * _mag_bound(self._x[0])
        chunk = max(1, FP32_EXACT // (h * w * per_w))
        grad = torch.zeros(self.weight.shape, dtype=torch.int32, device=self.weight.device)
        for s0 in range(0, n, chunk):
            gw = conv_bwd(gf[s0:s0 + chunk], self._xf[s0:s0 + chunk], self._wf, None, *args, [False, True, False])[1]
            grad += gw.to(torch.int32)
        self.weight_grad_int32 = grad
        self.weight_update_int8 = grad_to_bits(grad, grad_bits)
        self.weight.copy_(int8_clip(self.weight.to(torch.int16) - self.weight_update_int8.to(torch.int16)))
        return out


class IntReLU(IntLayer):
    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        y = x.clamp_min(0)
        self._pos = y.clamp_max(1)  # 1 where x > 0 (integers), else 0
        return y, e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        return g * self._pos, ge


class IntMaxPool2d(IntLayer):
    """``kernel x kernel`` max pooling (stride = kernel) of int8 values; the comparisons run on a
    float32 copy (exact), the error is routed to the arg-max positions."""

    def __init__(self, kernel: int = 2):
        super().__init__()
        self.kernel = kernel

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._shape = x.shape
        y, idx = F.max_pool2d(x.to(torch.float32), self.kernel, return_indices=True)
        self._idx = idx
        return y.to(torch.int8), e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        out = F.max_unpool2d(g.to(torch.float32), self._idx, self.kernel, output_size=self._shape[2:])
        return out.to(torch.int8), ge


class IntFlatten(IntLayer):
    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._shape = x.shape
        return x.reshape(x.shape[0], -1), e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        return g.reshape(self._shape), ge


def int_add(a: tuple["torch.Tensor", int], b: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
    """Residual add of two block-floating-point int8 tensors: the one with the smaller exponent is
    shifted right to the larger (round-half-away), the int8 sum is exact in int32 and shifted back
    to int8 like a GEMM result (:func:`requantize`)."""
    (x, ex), (y, ey) = a, b
    e = max(ex, ey)
    xs = round_shift(x.to(torch.int32), e - ex) if ex < e else x
    ys = round_shift(y.to(torch.int32), e - ey) if ey < e else y
    return requantize(xs.to(torch.int32) + ys.to(torch.int32), e)


class IntResBlock(IntLayer):
    """A BN-free basic block: ``relu(conv2(relu(conv1(x))) + skip(x))`` with 3x3 convs and, when
    the width changes, a 1x1 conv on the skip path. The add is :func:`int_add`; its error goes to
    both branches unchanged (derivative 1), and the two input errors are added with :func:`int_add`."""

    has_weight = True

    def __init__(self, c_in: int, c_out: int, generator: "torch.Generator"):
        super().__init__()
        self.conv1 = IntConv2d(c_in, c_out, 3, 1, generator)
        self.relu1 = IntReLU()
        self.conv2 = IntConv2d(c_out, c_out, 3, 1, generator)
        self.proj = IntConv2d(c_in, c_out, 1, 0, generator) if c_in != c_out else None
        self.relu2 = IntReLU()

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        main = self.conv2(self.relu1(self.conv1(inp)))
        skip = self.proj(inp) if self.proj is not None else inp
        return self.relu2(int_add(main, skip))

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g = self.relu2.backward(err, grad_bits)
        e_main = self.conv1.backward(self.relu1.backward(self.conv2.backward(g, grad_bits), grad_bits), grad_bits,
                                     need_input_err)
        e_skip = self.proj.backward(g, grad_bits, need_input_err) if self.proj is not None else g
        return int_add(e_main, e_skip) if need_input_err else None


class IntNet(nn.Module):
    """A chain of integer layers; ``kind`` ``cnn`` (conv1 16, conv2 32, pool, fc), ``mlp``
    (64-128-64-10), the digits networks of :mod:`.models` without biases, or ``resnet``: a BN-free
    residual net (conv 16, block 16, pool, block 16->32 with a 1x1 skip conv, pool, fc)."""

    def __init__(self, kind: str = "cnn", seed: int = 0, num_classes: int = 10):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.kind = kind
        if kind == "cnn":
            self.names = ["conv1", "relu1", "conv2", "relu2", "pool", "flatten", "fc"]
            mods = [IntConv2d(1, 16, 3, 1, g), IntReLU(), IntConv2d(16, 32, 3, 1, g), IntReLU(), IntMaxPool2d(2),
                    IntFlatten(), IntLinear(32 * 16, num_classes, g)]
        elif kind == "mlp":
            self.names = ["flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]
            mods = [IntFlatten(), IntLinear(64, 128, g), IntReLU(), IntLinear(128, 64, g), IntReLU(),
                    IntLinear(64, num_classes, g)]
        elif kind == "resnet":
            self.names = ["conv1", "relu1", "block1", "pool1", "block2", "pool2", "flatten", "fc"]
            mods = [IntConv2d(1, 16, 3, 1, g), IntReLU(), IntResBlock(16, 16, g), IntMaxPool2d(2),
                    IntResBlock(16, 32, g), IntMaxPool2d(2), IntFlatten(), IntLinear(32 * 4, num_classes, g)]
        else:
            raise ValueError(f"unknown kind {kind!r}; expected 'cnn', 'mlp' or 'resnet'")
        for n, m in zip(self.names, mods):
            self.add_module(n, m)

    def layers(self) -> list[tuple[str, IntLayer]]:
        return [(n, getattr(self, n)) for n in self.names]

    def forward(self, x: "torch.Tensor", exp: int) -> tuple["torch.Tensor", int]:  # type: ignore[override]
        inp = (x, exp)
        for _, m in self.layers():
            inp = m(inp)
        return inp

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int) -> None:
        layers = self.layers()
        first_weight = next(i for i, (_, m) in enumerate(layers) if m.has_weight)
        for i in range(len(layers) - 1, -1, -1):
            need = i > first_weight
            err = layers[i][1].backward(err, grad_bits, need_input_err=need)
            if not need and layers[i][1].has_weight:
                break

    def to_float(self) -> "nn.Module":
        """An equivalent float ``nn.Module`` (weights ``int8 * 2^exp``) for metrics and export."""
        from .models import DigitsMLP

        if self.kind == "resnet":
            net = FloatResTwin()
            with torch.no_grad():
                for n, m in self.named_modules():
                    if isinstance(m, (IntConv2d, IntLinear)):
                        net.get_submodule(n).weight.copy_(m.weight.to(torch.float32) * 2.0 ** int(m.weight_exp))
            return net.eval()
        if self.kind == "cnn":
            from ..models import TinyCNN

            net = TinyCNN()
            net.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
            net.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
            net.fc = nn.Linear(32 * 16, 10, bias=False)
        else:
            net = DigitsMLP()
            net.fc1, net.fc2, net.fc3 = nn.Linear(64, 128, bias=False), nn.Linear(128, 64, bias=False), \
                nn.Linear(64, 10, bias=False)
        with torch.no_grad():
            for n, m in self.layers():
                if m.has_weight:
                    getattr(net, n).weight.copy_(m.weight.to(torch.float32) * 2.0 ** int(m.weight_exp))
        return net.eval()


class _FloatBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.proj = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else None

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class FloatResTwin(nn.Module):
    """The float network with the layers of ``IntNet("resnet")`` (no biases, no batch norm)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.block1 = _FloatBlock(16, 16)
        self.block2 = _FloatBlock(16, 32)
        self.fc = nn.Linear(32 * 4, num_classes, bias=False)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        y = F.max_pool2d(self.block1(F.relu(self.conv1(x))), 2)
        y = F.max_pool2d(self.block2(y), 2)
        return self.fc(y.flatten(1))


def float_twin(kind: str, seed: int = 0) -> "nn.Module":
    """The float network with the same layers as :class:`IntNet` (no biases) — the float baseline."""
    torch.manual_seed(seed)
    net = IntNet(kind, seed).to_float()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return net.train()


class NITI(Method):
    """Integer-only training of an :class:`IntNet` on the integer pixels of the data
    (``x_train_int``, exponent ``input_exp``). ``grad_bits_schedule``: ``(fraction of training,
    bits)`` pairs; the loop's ``loss`` column is the training error rate of each batch."""

    name = "niti"

    def __init__(self, input_exp: int = -4, grad_bits_schedule: tuple[tuple[float, int], ...] = ((0.0, 5), (0.5, 4),
                                                                                                   (0.75, 3))):
        self.input_exp = input_exp
        self.schedule = sorted(grad_bits_schedule)
        self.grad_bits = self.schedule[0][1]
        self.total = 1

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        if not isinstance(model, IntNet):
            raise TypeError("NITI trains an IntNet (see accelsim.frontend.training.niti.IntNet)")
        self.total = config.epochs

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        return []

    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        frac = epoch / max(self.total, 1)
        self.grad_bits = [b for f, b in self.schedule if f <= frac][-1]
        return False

    def train_step(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor", optimizer: Any,
                   x_int: "torch.Tensor | None" = None) -> float:
        if x_int is None:
            raise ValueError("NITI needs integer inputs (data.x_train_int)")
        logits, e = model(x_int, self.input_exp)
        err = integer_ce_grad(logits, e, y)
        model.backward((err, 0), self.grad_bits)
        return float(int((logits.argmax(dim=1) != y).sum())) / len(y)

    def predict(self, model: "nn.Module", x: "torch.Tensor", x_int: "torch.Tensor | None" = None) -> "torch.Tensor":
        if x_int is None:
            raise ValueError("NITI needs integer inputs (data.x_test_int)")
        return model(x_int, self.input_exp)[0].argmax(dim=1)

    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        return {n: LayerCompression(name=n, weight_bits=8, act_bits=8, scheme="int")
                for n, m in model.named_modules() if isinstance(m, (IntConv2d, IntLinear))}

    def state_dict(self) -> dict[str, Any]:
        return {"grad_bits": self.grad_bits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.grad_bits = state["grad_bits"]


__all__ = ["IntNet", "IntResBlock", "int_add", "FloatResTwin", "IntLinear", "IntConv2d", "IntReLU", "IntMaxPool2d", "IntFlatten", "NITI", "float_twin",
           "round_shift", "psto_shift", "int_matmul", "requantize", "grad_to_bits", "integer_ce_grad", "bit_length"]
