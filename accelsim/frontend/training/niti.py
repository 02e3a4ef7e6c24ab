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
- ReLU, 2x2 max pooling, im2col/col2im work on the integer values; biases are not used (as in
  NITI).

Integer GEMMs run on the float32 BLAS with exactly representable operands: every partial sum is an
integer bounded by ``K * max|a| * max|b|``; when that bound is below 2^24 float32 is exact
(otherwise float64, exact below 2^53); the result is cast to int32 — bit-identical to an int32
accumulator (tested against int64 matmuls). Overflow of int32 raises.
"""
from __future__ import annotations

from typing import Any

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
FP64_EXACT = 2 ** 53
INT32_LIMIT = 2 ** 31


# --- integer arithmetic ------------------------------------------------------------------------

def _absmax(x: "torch.Tensor") -> int:
    return int(x.abs().max()) if x.numel() else 0


def bit_length(x: "torch.Tensor") -> int:
    """Bits needed for ``max|x|`` (0 for an all-zero tensor)."""
    return _absmax(x.to(torch.int64)).bit_length()


def int8_clip(x: "torch.Tensor") -> "torch.Tensor":
    return torch.clamp(x, -INT8_MAX, INT8_MAX).to(torch.int8)


def round_shift(x: "torch.Tensor", shift: int) -> "torch.Tensor":
    """``x / 2^shift`` rounded half away from zero (NITI ``RoundShift``), clipped to int8."""
    if shift <= 0:
        return int8_clip(x)
    x = x.to(torch.int64)
    mag = x.abs()
    q = (mag + (1 << (shift - 1))) >> shift
    return int8_clip(torch.sign(x) * q)


def psto_shift(x: "torch.Tensor", shift: int) -> "torch.Tensor":
    """``x / 2^shift`` with NITI's pseudo-stochastic rounding (``PstoShift``), clipped to int8.

    Of the ``shift`` discarded bits of ``|x|``, the upper ``shift - shift//2`` bits are the
    probability and the lower ``shift//2`` bits (doubled when ``shift`` is odd, to the same width)
    the pseudo-random number; the magnitude rounds up when probability > number.
    """
    if shift <= 0:
        return int8_clip(x)
    x = x.to(torch.int64)
    mag = x.abs()
    q = mag >> shift
    rem = mag - (q << shift)
    half = shift // 2
    prob = rem >> half
    rnd = rem - (prob << half)
    if shift % 2 == 1:
        rnd = rnd * 2
    up = (prob > rnd).to(torch.int64)
    return int8_clip(torch.sign(x) * (q + up))


def int_matmul(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Exact integer ``a @ b`` (int32 result) of integer tensors (see the module docstring)."""
    k = a.shape[-1]
    bound = k * _absmax(a) * _absmax(b)
    if bound >= INT32_LIMIT:
        raise OverflowError(f"int32 accumulator overflow: K={k}, bound {bound}")
    dt = torch.float32 if bound < FP32_EXACT else torch.float64
    return torch.matmul(a.to(dt), b.to(dt)).to(torch.int32)


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
        return torch.zeros(acc.shape, dtype=torch.int8)
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
    rows = torch.arange(len(target))
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
        self._cols: "torch.Tensor | None" = None

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        return h + 2 * self.padding - self.kernel + 1, w + 2 * self.padding - self.kernel + 1

    def _im2col(self, x: "torch.Tensor") -> "torch.Tensor":
        """N x C*k*k x L int8 patches (channel-major, as ``weight.reshape(O, -1)``); stride 1."""
        n, c, h, w = x.shape
        k, p = self.kernel, self.padding
        oh, ow = self._out_hw(h, w)
        xp = F.pad(x, (p, p, p, p))
        cols = torch.stack([xp[:, :, i:i + oh, j:j + ow] for i in range(k) for j in range(k)], dim=2)
        return cols.reshape(n, c * k * k, oh * ow)

    def _col2im(self, cols: "torch.Tensor", h: int, w: int) -> "torch.Tensor":
        """Inverse of :meth:`_im2col` summing overlaps, in int32."""
        n = cols.shape[0]
        k, p = self.kernel, self.padding
        oh, ow = self._out_hw(h, w)
        c = cols.shape[1] // (k * k)
        cols = cols.reshape(n, c, k * k, oh, ow)
        out = torch.zeros(n, c, h + 2 * p, w + 2 * p, dtype=torch.int32)
        for i in range(k):
            for j in range(k):
                out[:, :, i:i + oh, j:j + ow] += cols[:, :, i * k + j]
        return out[:, :, p:p + h, p:p + w]

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        n, c, h, w = x.shape
        self._x = inp
        cols = self._im2col(x)
        self._cols = cols
        w2 = self.weight.reshape(self.weight.shape[0], -1)
        acc = int_matmul(w2, cols)  # N x O x L, int32
        acc = acc.reshape(n, -1, *self._out_hw(h, w))
        return requantize(acc, e + int(self.weight_exp))

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        x, _ = self._x
        n, o, h, w = g.shape
        g2 = g.reshape(n, o, h * w)
        w2 = self.weight.reshape(o, -1)
        out = None
        if need_input_err:
            col_err = int_matmul(w2.t(), g2)  # N x C*k*k x L, int32
            if self.kernel * self.kernel * _absmax(col_err) >= INT32_LIMIT:
                raise OverflowError("int32 overflow in the convolution's input gradient")
            out = requantize(self._col2im(col_err, x.shape[2], x.shape[3]), ge + int(self.weight_exp))
        # weight gradient: sum over samples and positions of err x im2col(input)
        gl = g2.permute(1, 0, 2).reshape(o, -1)  # O x N*L
        cl = self._cols.permute(0, 2, 1).reshape(-1, self._cols.shape[1])  # N*L x C*k*k
        self.weight_grad_int32 = int_matmul(gl, cl).reshape(self.weight.shape)
        self.weight_update_int8 = grad_to_bits(self.weight_grad_int32, grad_bits)
        self.weight.copy_(int8_clip(self.weight.to(torch.int16) - self.weight_update_int8.to(torch.int16)))
        return out


class IntReLU(IntLayer):
    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._pos = x > 0
        return torch.where(self._pos, x, torch.zeros_like(x)), e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        return torch.where(self._pos, g, torch.zeros_like(g)), ge


class IntMaxPool2d(IntLayer):
    def __init__(self, kernel: int = 2):
        super().__init__()
        self.kernel = kernel

    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        n, c, h, w = x.shape
        k = self.kernel
        self._shape = x.shape
        win = x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5)
        y, idx = win.reshape(n, c, h // k, w // k, k * k).max(dim=-1)
        self._idx = idx
        return y, e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        n, c, h, w = self._shape
        k = self.kernel
        win = torch.zeros(n, c, h // k, w // k, k * k, dtype=g.dtype)
        win.scatter_(4, self._idx.unsqueeze(-1), g.unsqueeze(-1))
        out = torch.zeros(n, c, h, w, dtype=g.dtype)
        out[:, :, :h // k * k, :w // k * k] = win.reshape(n, c, h // k, w // k, k, k).permute(0, 1, 2, 4, 3, 5) \
            .reshape(n, c, h // k * k, w // k * k)
        return out, ge


class IntFlatten(IntLayer):
    def forward(self, inp: tuple["torch.Tensor", int]) -> tuple["torch.Tensor", int]:
        x, e = inp
        self._shape = x.shape
        return x.reshape(x.shape[0], -1), e

    def backward(self, err: tuple["torch.Tensor", int], grad_bits: int, need_input_err: bool = True) -> Any:
        g, ge = err
        return g.reshape(self._shape), ge


class IntNet(nn.Module):
    """A chain of integer layers; ``kind`` ``cnn`` (conv1 16, conv2 32, pool, fc) or ``mlp``
    (64-128-64-10), the digits networks of :mod:`.models` without biases."""

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
        else:
            raise ValueError(f"unknown kind {kind!r}; expected 'cnn' or 'mlp'")
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
                for n, m in model.layers() if m.has_weight}

    def state_dict(self) -> dict[str, Any]:
        return {"grad_bits": self.grad_bits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.grad_bits = state["grad_bits"]


__all__ = ["IntNet", "IntLinear", "IntConv2d", "IntReLU", "IntMaxPool2d", "IntFlatten", "NITI", "float_twin",
           "round_shift", "psto_shift", "int_matmul", "requantize", "grad_to_bits", "integer_ce_grad", "bit_length"]
