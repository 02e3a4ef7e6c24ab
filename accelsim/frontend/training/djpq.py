"""DJPQ-style joint channel pruning + mixed precision under a BOPs penalty, and the two-stage baseline.

Wang, Lu, Blankevoort, "Differentiable Joint Pruning and Quantization for Hardware Efficiency",
ECCV 2020, arXiv 2007.10463 (literature.md E "DJPQ", H-E1 "BOPs"): one differentiable loss with
variational-information-bottleneck (VIB) channel gates and learnable bit-widths, optionally
restricted to powers of two, with BOPs as the cost.

Per conv/linear layer ``l`` of a chain network (each layer feeds the next one):

- **Channel gate** (VIBNet, Dai et al., ICML 2018, arXiv 1802.10399): the layer output is multiplied
  per channel by ``z ~ N(mu, sigma^2)`` while training and by ``mu`` (pruned channels: 0) when
  evaluating. ``log_alpha = log sigma^2 - log mu^2``; a channel is kept while ``log_alpha <
  threshold`` (0). KL term ``0.5 * sum log(1 + mu^2 / sigma^2)``. The classifier has no gate.
- **Learnable quantisers** for the weights and the layer's input activation, parametrised by the
  step ``d`` and the range ``q_max`` (DQ, Uhlich et al., ICLR 2020, arXiv 1905.11452):
  ``Q(x) = d * round(clip(x, -q_max, q_max) / d)`` (``[0, q_max]`` for non-negative activations),
  straight-through rounding; bit-width ``b = log2(q_max / d + 1) + 1`` (signed) or
  ``log2(q_max / d + 1)`` (unsigned), rounded up. With ``pow2_bits`` the bit-width is rounded up to
  {2, 4, 8, 16} and the forward uses the step that fills those levels (straight-through).
- **BOPs** (H-E1): ``sum_l MACs_l * p_in,l * p_out,l * b_w,l * b_a,l`` where ``p`` is the kept
  fraction of input/output channels (a sigmoid of ``threshold - log_alpha`` while training, exact
  counts after training). Loss = CE + ``kl_weight`` * KL + ``bops_weight`` * BOPs / BOPs(8-bit dense).

After training the gates are folded into the weights (``W_c <- mu_c Q(W)_c``: per-channel scale, so
the layer stays on a ``b_w``-bit grid), pruned filters/biases and the consumer's input columns are
zeroed, and the activation quantisers stay as forward pre-hooks.

:func:`two_stage_baseline` is the "prune, then quantise" reference at matched BOPs: stage 1 trains
the same VIB gates without quantisation or BOPs term and prunes; stage 2 assigns per-layer
weight bits with the front-end's greedy mixed-precision search
(:func:`..quantization.assign_bits`) so BOPs <= the DJPQ result, with fixed activation bits, and
fine-tunes with straight-through fake quantisation.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._deps import require_torch
from .. import quantization as qz
from . import _djpq_kernels as K
from . import _fastquant as fq
from .loop import Method, TrainConfig
from .graph import channel_groups, is_chain, weight_masks
from .metrics import FLOAT_BITS, LayerCompression, compressible_layers, output_positions

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

POW2_BITS = (2, 4, 8, 16)
MIN_BITS, MAX_BITS = 2, 16


def int_bits(log_d: float, log_qmax: float, signed: bool, pow2: bool = False) -> int:
    """Bits a quantiser with step ``exp(log_d)`` and range ``exp(log_qmax)`` needs: its levels are
    ``k * d`` for ``|k| <= round(q_max / d)`` (``0 <= k`` unsigned); at least 2, at most 16, rounded
    up to {2, 4, 8, 16} with ``pow2``."""
    r = round(math.exp(log_qmax - log_d))
    levels = 2 * r + 1 if signed else r + 1
    b = min(max(math.ceil(math.log2(max(levels, 2))), MIN_BITS), MAX_BITS)
    if pow2:
        b = next(p for p in POW2_BITS if p >= b)
    return b


def _levels(bits: int, signed: bool) -> int:
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


# --- torch references (autograd), used by the tests to check the kernels -------------------------

def dq_reference(x: "torch.Tensor", log_d: "torch.Tensor", log_qmax: "torch.Tensor", signed: bool,
                 pow2_bits: int | None = None) -> "torch.Tensor":
    """``d * round_ste(clip(x) / d)`` with autograd (``pow2_bits``: use the step filling that many bits)."""
    d, qmax = torch.exp(log_d), torch.exp(log_qmax)
    if pow2_bits is not None:
        d = d + (qmax.detach() / _levels(pow2_bits, signed) - d).detach()
    lo = -qmax if signed else torch.zeros_like(qmax)
    # where(), not minimum/maximum: a value exactly at the bound passes its gradient to x (as the
    # kernels), instead of splitting it between x and the bound
    xc = torch.where(x > qmax, qmax, torch.where(x < lo, lo, x))
    y = xc / d
    return d * (y + (torch.round(y) - y).detach())


def gate_reference(y: "torch.Tensor", mu: "torch.Tensor", log_var: "torch.Tensor", eps: "torch.Tensor") -> "torch.Tensor":
    """``y * (mu + exp(log_var / 2) * eps)`` per sample and channel, with autograd."""
    z = mu[None, :] + torch.exp(0.5 * log_var)[None, :] * eps
    return y * z.view(*z.shape, *([1] * (y.dim() - 2)))


def penalty_reference(qp: "torch.Tensor", bits: list[tuple[int, int]], signed_act: list[bool], macs: list[float],
                      quantize: bool, gates: list[tuple["torch.Tensor", "torch.Tensor"] | None], threshold: float,
                      temperature: float, kl_weight: float, bops_scale: float) -> "torch.Tensor":
    """The DJPQ penalty with autograd (straight-through integer bits)."""
    def cont(ld: "torch.Tensor", lq: "torch.Tensor", signed: bool) -> "torch.Tensor":
        return (torch.log2(torch.exp(lq - ld) + 1) + (1 if signed else 0)).clamp(MIN_BITS, MAX_BITS)

    total = torch.zeros((), dtype=torch.float64)
    kl = torch.zeros((), dtype=torch.float64)
    prev: Any = 1.0
    for l, m in enumerate(macs):
        g = gates[l]
        if g is None:
            keep: Any = 1.0
        else:
            mu, lv = g
            la = lv - torch.log(mu.pow(2) + 1e-8)
            keep = torch.sigmoid((threshold - la) / temperature).mean()
            kl = kl + 0.5 * torch.log1p(mu.pow(2) / torch.exp(lv)).sum()
        if quantize:
            bw = cont(qp[l, 0], qp[l, 1], True)
            ba = cont(qp[l, 2], qp[l, 3], signed_act[l])
            bw = bw + (bits[l][0] - bw).detach()
            ba = ba + (bits[l][1] - ba).detach()
        else:
            bw = ba = FLOAT_BITS
        total = total + m * prev * keep * bw * ba
        prev = keep
    return kl_weight * kl + bops_scale * total


# --- fast autograd functions (numba kernels of ._djpq_kernels) ---------------------------------------

class _Grads:
    """numpy views of the DJPQ parameters and float64 accumulators of their gradients.

    The quantiser kernels' backward passes add into these accumulators instead of returning
    gradient tensors (one add per step instead of one per call); :meth:`DJPQ.after_backward`
    adds the penalty's gradient (numba) and writes the sums into ``.grad``.
    """

    def __init__(self, state: "DJPQState"):
        self.qp = state.qp.detach().numpy()
        self.mu = state.mu.detach().numpy()
        self.lv = state.log_var.detach().numpy()
        self.g_qp = np.zeros(self.qp.shape)
        self.g_mu = np.zeros(self.mu.shape)
        self.g_lv = np.zeros(self.lv.shape)

    def reset(self) -> None:
        self.g_qp.fill(0.0)
        self.g_mu.fill(0.0)
        self.g_lv.fill(0.0)


def _dq_fwd(x: "torch.Tensor", acc: _Grads, row: int, col: int, signed: bool,
            pow2_bits: int | None) -> tuple["torch.Tensor", tuple[Any, ...]]:
    """Quantiser of row ``row`` / column ``col`` (0 weights, 2 activations) of ``qp`` (numba)."""
    d_raw, qmax = math.exp(float(acc.qp[row, col])), math.exp(float(acc.qp[row, col + 1]))
    d = qmax / _levels(pow2_bits, signed) if pow2_bits is not None else d_raw
    xf = x.detach().contiguous().reshape(-1)
    out = torch.empty_like(xf)
    K.dq_forward(xf.numpy(), np.float32(d), np.float32(qmax), signed, out.numpy())
    return out.view(x.shape), (row, col, signed, d, d_raw, qmax)


def _dq_bwd(g: "torch.Tensor", x: "torch.Tensor", meta: tuple[Any, ...], acc: _Grads) -> "torch.Tensor":
    """Straight-through input gradient; adds d loss / d (log d, log q_max) to ``acc``."""
    row, col, signed, d, d_raw, qmax = meta
    gf = g.contiguous().reshape(-1)
    gx = torch.empty_like(gf)
    sd, sq = K.dq_backward(gf.numpy(), x.detach().contiguous().reshape(-1).numpy(), np.float32(d), np.float32(qmax),
                           signed, gx.numpy())
    acc.g_qp[row, col] += sd * d_raw  # d exp(log_d) / d log_d = d (straight-through for the pow2 step)
    acc.g_qp[row, col + 1] += sq * qmax
    return gx.view(g.shape)


class _DQFunction(torch.autograd.Function):
    """A learnable quantiser alone (for tests and :meth:`DJPQ.finalize`)."""

    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor", acc: _Grads, row: int, col: int, signed: bool,
                pow2_bits: int | None) -> "torch.Tensor":
        out, meta = _dq_fwd(x, acc, row, col, signed, pow2_bits)
        ctx.save_for_backward(x)
        ctx.meta, ctx.acc = meta, acc
        return out

    @staticmethod
    def backward(ctx: Any, g: "torch.Tensor") -> tuple[Any, ...]:
        (x,) = ctx.saved_tensors
        return _dq_bwd(g, x, ctx.meta, ctx.acc), None, None, None, None, None


class _DJPQLayer(torch.autograd.Function):
    """One conv/linear layer under DJPQ in a single autograd node: quantise the input and the
    weight, run the layer, multiply by the VIB gate; the backward pass does the same in reverse
    (gate and quantiser-parameter gradients go to the method's accumulators)."""

    @staticmethod
    def forward(ctx: Any, x: "torch.Tensor", w: "torch.Tensor", b: "torch.Tensor | None", method: "DJPQ", i: int,
                training: bool) -> "torch.Tensor":
        acc, mod = method._acc, method._mods[i]
        xf = x.detach()
        wf = w.detach()
        if not xf.is_contiguous():
            xf = xf.contiguous()
        if not wf.is_contiguous():
            wf = wf.contiguous()
        qm = None
        if method.quantize:
            bw, ba = method._bits_now[i]
            sx = method._signed_act[i]
            dx, rx, qx = _step(acc, i, 2, sx, ba if method.pow2_bits else None)
            dw, rw, qw = _step(acc, i, 0, True, bw if method.pow2_bits else None)
            xq, wq = torch.empty(xf.shape, dtype=xf.dtype), torch.empty(wf.shape, dtype=wf.dtype)
            K.dq_forward2(xf.numpy().reshape(-1), np.float32(dx), np.float32(qx), sx, xq.numpy().reshape(-1),
                          wf.numpy().reshape(-1), np.float32(dw), np.float32(qw), wq.numpy().reshape(-1))
            qm = (dx, rx, qx, sx, dw, rw, qw)
        else:
            xq, wq = xf, wf
        bd = None if b is None else b.detach()
        if method._is_conv[i]:
            y = F.conv2d(xq, wq, bd, mod.stride, mod.padding, mod.dilation, mod.groups)
        else:
            y = F.linear(xq, wq, bd)
        gate = method._gate_list[i]
        eps = z = None
        out = y
        if gate is not None:
            a_, b_ = gate
            if training:  # VIB noise per sample and channel
                n = y.shape[0]
                if not y.is_contiguous():
                    y = y.contiguous()
                eps = torch.randn(n, b_ - a_, dtype=y.dtype)
                z = torch.empty(n, b_ - a_, dtype=y.dtype)
                out = torch.empty(y.shape, dtype=y.dtype)  # contiguous: the kernel writes through numpy
                shape3 = (n, b_ - a_, -1)
                K.gate_forward(y.numpy().reshape(shape3), acc.mu[a_:b_], acc.lv[a_:b_], eps.numpy(),
                               out.numpy().reshape(shape3), z.numpy())
            else:
                z = (torch.from_numpy(acc.mu[a_:b_]) * method._keep_vec(a_, b_).to(y.dtype)).view(1, -1)
                out = y * z.view([1, b_ - a_] + [1] * (y.dim() - 2))
        ctx.save_for_backward(xf, wf, xq, wq, y if gate is not None else None, eps, z)
        ctx.info = (method, i, qm, b is not None)
        return out

    @staticmethod
    def backward(ctx: Any, g: "torch.Tensor") -> tuple[Any, ...]:
        xf, wf, xq, wq, y, eps, z = ctx.saved_tensors
        method, i, qm, has_bias = ctx.info
        acc, mod = method._acc, method._mods[i]
        gate = method._gate_list[i]
        if not g.is_contiguous():
            g = g.contiguous()
        gy = g
        if gate is not None:
            a_, b_ = gate
            shape3 = (g.shape[0], b_ - a_, -1)
            gy = torch.empty(g.shape, dtype=g.dtype)
            K.gate_backward(g.numpy().reshape(shape3), y.numpy().reshape(shape3), z.numpy(), eps.numpy(),
                            acc.lv[a_:b_], gy.numpy().reshape(shape3), acc.g_mu[a_:b_], acc.g_lv[a_:b_])
        need_x = method.quantize or ctx.needs_input_grad[0]
        if method._is_conv[i]:
            gxq, gwq, gb = torch.ops.aten.convolution_backward(
                gy, xq, wq, [wq.shape[0]] if has_bias else None, list(mod.stride), list(mod.padding),
                list(mod.dilation), False, [0, 0], mod.groups, [need_x, True, has_bias])
        else:
            g2 = gy if gy.dim() == 2 else gy.reshape(-1, gy.shape[-1])
            gxq = (g2 @ wq).view(xq.shape) if need_x else None
            gwq = g2.t() @ (xq if xq.dim() == 2 else xq.reshape(-1, xq.shape[-1]))
            gb = g2.sum(dim=0) if has_bias else None
        if qm is not None:
            dx, rx, qx, sx, dw, rw, qw = qm
            if not gxq.is_contiguous():
                gxq = gxq.contiguous()
            gx, gw = torch.empty(gxq.shape, dtype=gxq.dtype), torch.empty(wf.shape, dtype=wf.dtype)
            sdx, sqx, sdw, sqw = K.dq_backward2(gxq.numpy().reshape(-1), xf.numpy().reshape(-1), np.float32(dx),
                                                np.float32(qx), sx, gx.numpy().reshape(-1),
                                                gwq.contiguous().numpy().reshape(-1), wf.numpy().reshape(-1),
                                                np.float32(dw), np.float32(qw), gw.numpy().reshape(-1))
            gq = acc.g_qp[i]
            gq[2] += sdx * rx  # chain rule through d = exp(log d) (straight-through for pow2 steps)
            gq[3] += sqx * qx
            gq[0] += sdw * rw
            gq[1] += sqw * qw
        else:
            gx, gw = gxq, gwq
        return (gx if ctx.needs_input_grad[0] else None), gw, gb, None, None, None


def _step(acc: _Grads, row: int, col: int, signed: bool, pow2_bits: int | None) -> tuple[float, float, float]:
    """``(step used, exp(log d), q_max)`` of a quantiser (the pow2 step fills its bit-width)."""
    d_raw, qmax = math.exp(float(acc.qp[row, col])), math.exp(float(acc.qp[row, col + 1]))
    return (qmax / _levels(pow2_bits, signed) if pow2_bits is not None else d_raw), d_raw, qmax


class _NumpyAdam:
    """Adam (Kingma & Ba; torch's defaults betas 0.9/0.999, eps 1e-8) on a numpy view, in place."""

    def __init__(self, shape: tuple[int, ...], lr: float):
        self.lr, self.t = lr, 0
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)

    def step(self, param: np.ndarray, grad: np.ndarray) -> None:
        if param.size == 0:
            return
        self.t += 1
        K.adam_step(param.reshape(-1), grad.reshape(-1), self.m.reshape(-1), self.v.reshape(-1), self.t, self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "m": self.m.copy(), "v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.m, self.v = state["t"], state["m"].copy(), state["v"].copy()


class DJPQState(nn.Module):
    """All learnable DJPQ parameters of a model: ``qp`` (layers x [log d_w, log qmax_w, log d_a,
    log qmax_a]) and the concatenated gate vectors ``mu`` / ``log_var``."""

    def __init__(self, layers: int, gate_channels: list[int], init_log_var: float = -9.0):
        super().__init__()
        total = sum(gate_channels)
        self.qp = nn.Parameter(torch.zeros(layers, 4))
        self.mu = nn.Parameter(torch.ones(total))
        self.log_var = nn.Parameter(torch.full((total,), init_log_var))
        offsets = [0]
        for c in gate_channels:
            offsets.append(offsets[-1] + c)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int64))


class DJPQ(Method):
    """Joint VIB channel pruning + learnable mixed precision (see the module docstring).

    ``example_input``: one input sample (to count MACs). ``quantize=False`` trains the gates only
    (stage 1 of the two-stage baseline). ``signed_acts``: inputs of the first layer may be signed
    (digits pixels are not; ReLU outputs never are). The learnable parameters live in a
    :class:`DJPQState` module attached to the model as ``djpq_state`` until :meth:`finalize`.
    The network's weights use the loop's optimiser; the gate and quantiser parameters have their
    own Adam (learning rates ``gate_lr`` / ``quant_lr``).
    """

    name = "djpq"

    def __init__(self, example_input: "torch.Tensor", bops_weight: float = 1.0, kl_weight: float = 1e-4,
                 pow2_bits: bool = False, init_bits: int = 8, quantize: bool = True, gate_lr: float = 1e-2,
                 quant_lr: float = 1e-2, temperature: float = 1.0, threshold: float = 0.0,
                 signed_acts: bool = False, backend: str = "auto"):
        if backend not in ("auto", "torch", "numba"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'numba', got {backend!r}")
        self.backend = backend
        self.use_numba = False
        self.example_input = example_input
        self.bops_weight, self.kl_weight = bops_weight, kl_weight
        self.pow2_bits, self.init_bits, self.quantize = pow2_bits, init_bits, quantize
        self.gate_lr, self.quant_lr, self.temperature = gate_lr, quant_lr, temperature
        self.threshold, self.signed_acts = threshold, signed_acts
        self.layer_names: list[str] = []
        self.macs: dict[str, int] = {}
        self.bops_ref = 1.0
        self.state: DJPQState | None = None
        self._layers: dict[str, "nn.Module"] = {}
        self._hooks: list[Any] = []
        self._gate_hooks: list[Any] = []
        self._act_uncalibrated: set[int] = set()
        self._in_gate: list[int] = []
        self._mods: list["nn.Module"] = []
        self._gate_list: list[tuple[int, int] | None] = []
        self._gate_of: dict[str, tuple[int, int]] = {}
        self._signed_act: list[bool] = []
        self._bits_now: list[tuple[int, int]] | None = None
        self._qp_np: np.ndarray | None = None
        self.final: dict[str, dict[str, Any]] = {}
        self.bops_log: list[float] = []
        self.last_penalty: tuple[float, float, float] = (0.0, 0.0, 0.0)

    # --- set-up ------------------------------------------------------------------------------
    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        layers = compressible_layers(model)
        self._layers = layers
        self.layer_names = list(layers)
        self._groups = channel_groups(model)
        chain = is_chain(self._groups)
        on_cpu = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
        if self.backend == "numba" and not (chain and on_cpu):
            raise ValueError("the numba DJPQ path needs a float32 CPU chain network (each layer feeding only the next)")
        self.use_numba = self.backend == "numba" or (self.backend == "auto" and chain and on_cpu)
        pos = output_positions(model, self.example_input)
        self.macs = {n: pos[n] * m.weight.numel() for n, m in layers.items()}
        self.bops_ref = float(sum(self.macs.values()) * 8 * 8)
        acts = self._layer_inputs(model)
        # gates on the layers whose output channels are free (graph.py); in a chain: all but the last
        gated = [n for n in self.layer_names if self._groups[n].free]
        producer = {c: n for n in gated for c, _ in self._groups[n].consumers}
        self._in_gate = [self.layer_names.index(producer[n]) if n in producer else -1 for n in self.layer_names]
        channels = [layers[n].weight.shape[0] for n in gated]
        state = DJPQState(len(layers), channels)
        off = 0
        for n, c in zip(gated, channels):
            self._gate_of[n] = (off, off + c)
            off += c
        # signed input quantiser: the first layer's if asked, and every layer whose measured input on
        # the example has negative values (LayerNorm outputs, residual streams); ReLU outputs are not
        self._signed_act = [(self.signed_acts and i == 0) or (i > 0 and bool((acts[n] < 0).any()))
                            for i, n in enumerate(self.layer_names)]
        with torch.no_grad():
            for i, (name, m) in enumerate(layers.items()):
                wmax = float(m.weight.detach().abs().max().clamp_min(1e-8))
                amax = float(acts[name].abs().max().clamp_min(1e-8))
                state.qp[i, 1] = math.log(wmax)
                state.qp[i, 0] = math.log(wmax / _levels(self.init_bits, True))
                state.qp[i, 3] = math.log(amax)
                state.qp[i, 2] = math.log(amax / _levels(self.init_bits, self._signed_act[i]))
        device = next(model.parameters()).device
        state = state.to(device)
        model.add_module("djpq_state", state)
        self.state = state
        self._device = device
        if not self.use_numba:
            self._setup_torch(model)
            return
        self._acc = _Grads(state)  # numpy views of the parameters (updated in place)
        self._qp_np = self._acc.qp
        self._adam_q = _NumpyAdam(self._acc.qp.shape, self.quant_lr)
        self._adam_mu = _NumpyAdam(self._acc.mu.shape, self.gate_lr)
        self._adam_lv = _NumpyAdam(self._acc.lv.shape, self.gate_lr)
        L = len(self.layer_names)
        offsets = np.zeros(L + 1, dtype=np.int64)
        for i, n in enumerate(self.layer_names):
            a, b = self._gate_of.get(n, (offsets[i], offsets[i]))
            offsets[i], offsets[i + 1] = a, b
        self._static = (np.array(self._signed_act), np.array([float(self.macs[n]) for n in self.layer_names]),
                        offsets, np.array([n in self._gate_of for n in self.layer_names]))
        s_a = np.array([1.0 if x else 0.0 for x in self._signed_act])
        self._clip = (-math.log(2.0 ** (MAX_BITS - 1) - 1), -math.log(2.0 ** (MIN_BITS - 1) - 1),
                      -np.log(2.0 ** (MAX_BITS - s_a) - 1), -np.log(np.maximum(2.0 ** (MIN_BITS - s_a) - 1, 1.0)))
        self._install(model)

    # --- torch path (any device, any fx-traceable graph) ----------------------------------------------
    def _setup_torch(self, model: "nn.Module") -> None:
        """Plain autograd: quantisers are :func:`dq_reference` inside each layer's forward, gates a
        forward hook on the gate point (the layer, or the BN / ChannelScale after it), the penalty
        :meth:`_penalty_torch`; the DJPQ parameters get their own ``torch.optim.Adam``."""
        st = self.state
        self._opt = torch.optim.Adam([{"params": [st.qp], "lr": self.quant_lr},
                                      {"params": [st.mu, st.log_var], "lr": self.gate_lr}])
        self._macs_t = torch.tensor([float(self.macs[n]) for n in self.layer_names], dtype=torch.float64,
                                    device=self._device)
        s_a = torch.tensor([1.0 if x else 0.0 for x in self._signed_act], dtype=torch.float64)
        self._clip = (-math.log(2.0 ** (MAX_BITS - 1) - 1), -math.log(2.0 ** (MIN_BITS - 1) - 1),
                      (-torch.log(2.0 ** (MAX_BITS - s_a) - 1)).to(self._device),
                      (-torch.log(torch.clamp(2.0 ** (MIN_BITS - s_a) - 1, min=1.0))).to(self._device))
        self._mods = [self._layers[n] for n in self.layer_names]
        has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
        self._act_uncalibrated = set(range(len(self._mods))) if has_bn else set()
        self._hooks.append(model.register_forward_pre_hook(lambda mod, a: self._reset_bits()))
        for i, m in enumerate(self._mods):
            def forward(x: "torch.Tensor", m: "nn.Module" = m, i: int = i) -> "torch.Tensor":
                if self.quantize and m.training and i in self._act_uncalibrated:
                    self._calibrate_act(i, x)
                if self.quantize:
                    bw, ba = self._bits()[i]
                    qp = self.state.qp
                    x = dq_reference(x, qp[i, 2], qp[i, 3], self._signed_act[i], ba if self.pow2_bits else None)
                    w = dq_reference(m.weight, qp[i, 0], qp[i, 1], True, bw if self.pow2_bits else None)
                else:
                    w = m.weight
                if isinstance(m, nn.Conv2d):
                    return F.conv2d(x, w, m.bias, m.stride, m.padding, m.dilation, m.groups)
                return F.linear(x, w, m.bias)

            m.forward = forward
        for name, (a, b) in self._gate_of.items():
            point = model.get_submodule(self._groups[name].gate_point)
            self._gate_hooks.append(point.register_forward_hook(self._gate_hook(a, b)))

    def _calibrate_act(self, i: int, x: "torch.Tensor") -> None:
        """Set the input quantiser's range from the first training batch (``max |x|``, step for
        ``init_bits``): with BatchNorm the eval-mode example input of set-up is not representative."""
        with torch.no_grad():
            amax = float(x.detach().abs().max().clamp_min(1e-8))
            self.state.qp[i, 3] = math.log(amax)
            self.state.qp[i, 2] = math.log(amax / _levels(self.init_bits, self._signed_act[i]))
        self._act_uncalibrated.discard(i)
        self._bits_now = None

    def _gate_hook(self, a: int, b: int) -> Any:
        def hook(mod: "nn.Module", args: Any, out: "torch.Tensor") -> "torch.Tensor":
            st, c = self.state, b - a
            if mod.training:  # VIB noise per sample and channel
                eps = torch.randn(out.shape[0], c, dtype=out.dtype, device=out.device)
                z = st.mu[a:b][None, :] + torch.exp(0.5 * st.log_var[a:b])[None, :] * eps
            else:
                z = (st.mu[a:b] * self._keep_vec(a, b).to(out.dtype))[None, :]
            if out.dim() > 2 and isinstance(self._gate_layer(a), nn.Linear):  # channels last (tokens)
                return out * z.view(z.shape[0], *([1] * (out.dim() - 2)), c)
            return out * z.view(*z.shape, *([1] * (out.dim() - 2)))
        return hook

    def _gate_layer(self, a: int) -> "nn.Module":
        return next(self._layers[n] for n, (x, _) in self._gate_of.items() if x == a)

    def _reset_bits(self) -> None:
        self._bits_now = None

    def _bits(self) -> list[tuple[int, int]]:
        if self._bits_now is None:
            q = self.state.qp.detach().to("cpu", torch.float64).numpy()  # explicit host copy of 4 x L numbers
            self._bits_now = [self._bits_from(q, i) for i in range(len(self.layer_names))]
        return self._bits_now

    def _bits_from(self, q: np.ndarray, i: int) -> tuple[int, int]:
        return (int_bits(float(q[i, 0]), float(q[i, 1]), True, self.pow2_bits),
                int_bits(float(q[i, 2]), float(q[i, 3]), self._signed_act[i], self.pow2_bits))

    def _penalty_torch(self) -> "torch.Tensor":
        """``kl_weight * KL + bops_weight * soft BOPs / BOPs_ref`` with autograd; a layer's input
        kept fraction is that of the gated layer producing its input (1 if none)."""
        st = self.state
        L = len(self.layer_names)
        keep = [None] * L
        kl = st.mu.new_zeros((), dtype=torch.float64)
        for i, n in enumerate(self.layer_names):
            if n in self._gate_of:
                a, b = self._gate_of[n]
                mu, lv = st.mu[a:b].double(), st.log_var[a:b].double()
                la = lv - torch.log(mu.pow(2) + 1e-8)
                keep[i] = torch.sigmoid((self.threshold - la) / self.temperature).mean()
                kl = kl + 0.5 * torch.log1p(mu.pow(2) / torch.exp(lv)).sum()
        total = st.mu.new_zeros((), dtype=torch.float64)
        bits = self._bits() if self.quantize else None
        qp = st.qp.double()

        def cont(ld: "torch.Tensor", lq: "torch.Tensor", signed: bool) -> "torch.Tensor":
            return (torch.log2(torch.exp(lq - ld) + 1) + (1 if signed else 0)).clamp(MIN_BITS, MAX_BITS)

        for i in range(L):
            term = self._macs_t[i]
            if keep[i] is not None:
                term = term * keep[i]
            if self._in_gate[i] >= 0:
                term = term * keep[self._in_gate[i]]
            if bits is not None:
                bw = cont(qp[i, 0], qp[i, 1], True)
                ba = cont(qp[i, 2], qp[i, 3], self._signed_act[i])
                term = term * (bw + (bits[i][0] - bw).detach()) * (ba + (bits[i][1] - ba).detach())
            else:
                term = term * FLOAT_BITS * FLOAT_BITS
            total = total + term
        return self.kl_weight * kl + (self.bops_weight / self.bops_ref) * total

    def _install(self, model: "nn.Module") -> None:
        """Route every layer's forward through :class:`_DJPQLayer` (an instance attribute that
        :meth:`finalize` removes; the module's parameters and names are unchanged)."""
        self._mods = [self._layers[n] for n in self.layer_names]
        self._is_conv = [isinstance(m, nn.Conv2d) for m in self._mods]
        self._gate_list = [self._gate_of.get(n) for n in self.layer_names]
        for i, m in enumerate(self._mods):
            def forward(x: "torch.Tensor", m: "nn.Module" = m, i: int = i) -> "torch.Tensor":
                if i == 0 or self._bits_now is None:
                    self._bits_now = [self._step_bits(j) for j in range(len(self._mods))] if self.quantize else None
                return _DJPQLayer.apply(x, m.weight, m.bias, self, i, m.training)

            m.forward = forward

    def _layer_inputs(self, model: "nn.Module") -> dict[str, "torch.Tensor"]:
        out: dict[str, torch.Tensor] = {}
        hooks = [m.register_forward_pre_hook(lambda mod, a, n=n: out.__setitem__(n, a[0].detach()))
                 for n, m in compressible_layers(model).items()]
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(self.example_input)
        finally:
            for h in hooks:
                h.remove()
            model.train(was)
        return out

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        """The network's own parameters; the DJPQ parameters have their own small Adam
        (:class:`_NumpyAdam`, learning rates ``gate_lr`` / ``quant_lr``)."""
        st = self.state
        special = {id(st.qp), id(st.mu), id(st.log_var)}
        return [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in special]}]

    # --- per step ---------------------------------------------------------------------------------
    def _step_bits(self, i: int) -> tuple[int, int]:
        if not self.use_numba:
            return self._bits_from(self.state.qp.detach().to("cpu", torch.float64).numpy(), i)
        q = self._qp_np
        return (int_bits(float(q[i, 0]), float(q[i, 1]), True, self.pow2_bits),
                int_bits(float(q[i, 2]), float(q[i, 3]), self._signed_act[i], self.pow2_bits))

    def _keep_vec(self, a: int, b: int) -> "torch.Tensor":
        st = self.state
        la = st.log_var.detach()[a:b] - torch.log(st.mu.detach()[a:b].pow(2) + 1e-8)
        return la < self.threshold

    def _kernel_args(self) -> tuple[Any, ...]:
        L = len(self.layer_names)
        if self.quantize:
            bits = np.array(self._bits_now or [self._step_bits(i) for i in range(L)], dtype=np.float64)
        else:
            bits = np.full((L, 2), 32.0)
        signed_act, macs, offsets, gated = self._static
        acc = self._acc
        return (acc.qp, bits, signed_act, macs, self.quantize, acc.mu, acc.lv, offsets, gated, float(self.threshold),
                float(self.temperature), float(self.kl_weight), float(self.bops_weight / self.bops_ref),
                float(MIN_BITS), float(MAX_BITS))

    def loss(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
        self._bits_now = None
        if not self.use_numba:
            self._opt.zero_grad(set_to_none=True)
            out = F.cross_entropy(model(x), y)
            pen = self._penalty_torch()
            self.last_penalty = (float(pen.detach()), 0.0, 0.0)
            return out + pen.to(out.dtype)
        self._acc.reset()
        return super().loss(model, x, y)

    def after_backward(self, model: "nn.Module") -> None:
        """Add the exact gradient of ``kl_weight * KL + bops_weight * BOPs / BOPs_ref`` (numba) to
        the gradients of the DJPQ parameters accumulated by the layers' backward passes."""
        if not self.use_numba:
            return
        acc = self._acc
        self.last_penalty = K.penalty(*self._kernel_args(), acc.g_qp, acc.g_mu, acc.g_lv)

    def after_step(self, model: "nn.Module") -> None:
        """Adam step of the DJPQ parameters; keep every quantiser's bit-width within [2, 16]."""
        if not self.use_numba:
            self._opt.step()
            if self.quantize:
                lo_w, hi_w, lo_a, hi_a = self._clip
                with torch.no_grad():
                    q = self.state.qp
                    q[:, 0].copy_(torch.minimum(torch.maximum(q[:, 0], q[:, 1] + lo_w), q[:, 1] + hi_w))
                    q[:, 2].copy_(torch.minimum(torch.maximum(q[:, 2], q[:, 3] + lo_a.to(q.dtype)),
                                                q[:, 3] + hi_a.to(q.dtype)))
            return
        acc = self._acc
        if self.quantize:
            self._adam_q.step(acc.qp, acc.g_qp)
        if self._gate_of:
            self._adam_mu.step(acc.mu, acc.g_mu)
            self._adam_lv.step(acc.lv, acc.g_lv)
        if not self.quantize:
            return
        K.clip_steps(acc.qp, *self._clip)

    # --- cost ------------------------------------------------------------------------------------
    def bops(self) -> float:
        """Hard BOPs: kept channels counted exactly, integer bits."""
        keep = {n: float(self._keep_vec(*ab).float().mean()) for n, ab in self._gate_of.items()}
        total = 0.0
        for i, name in enumerate(self.layer_names):
            p_in = keep[self.layer_names[self._in_gate[i]]] if self._in_gate[i] >= 0 else 1.0
            bw, ba = self._step_bits(i) if self.quantize else (FLOAT_BITS, FLOAT_BITS)
            total += self.macs[name] * p_in * keep.get(name, 1.0) * bw * ba
        return total

    def penalty_value(self) -> tuple[float, float, float]:
        """``(total, KL, soft BOPs)`` of the current state (no gradients; torch path: total only)."""
        if not self.use_numba:
            with torch.no_grad():
                return float(self._penalty_torch()), float("nan"), float("nan")
        acc = self._acc
        return K.penalty(*self._kernel_args(), np.zeros(acc.g_qp.shape), np.zeros(acc.g_mu.shape),
                         np.zeros(acc.g_lv.shape))

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        b = self.bops()
        self.bops_log.append(b)
        log["bops"] = b
        log["kept_channels"] = {n: int(self._keep_vec(*ab).sum()) for n, ab in self._gate_of.items()}
        if self.quantize:
            log["bits"] = {n: self._step_bits(i) for i, n in enumerate(self.layer_names)}
        return False

    # --- finalisation ------------------------------------------------------------------------------
    def channel_keep(self) -> dict[str, "torch.Tensor"]:
        return {n: self._keep_vec(*ab).clone() for n, ab in self._gate_of.items()}

    def finalize(self, model: "nn.Module") -> None:
        keeps = self.channel_keep()
        st = self.state
        q = st.qp.detach().to("cpu", torch.float64).numpy().copy()
        for h in self._gate_hooks + self._hooks:
            h.remove()
        self._gate_hooks, self._hooks = [], []
        structs = weight_masks(model, self._groups, keeps)
        with torch.no_grad():
            for i, name in enumerate(self.layer_names):
                m = self._layers[name]
                del m.forward  # back to the module's own forward
                bw, ba = self._step_bits(i) if self.quantize else (FLOAT_BITS, FLOAT_BITS)
                if self.quantize and self.use_numba:
                    w = _dq_fwd(m.weight.detach(), self._acc, i, 0, True, bw if self.pow2_bits else None)[0]
                elif self.quantize:
                    w = dq_reference(m.weight.detach(), st.qp[i, 0].detach(), st.qp[i, 1].detach(), True,
                                     bw if self.pow2_bits else None)
                else:
                    w = m.weight.detach().clone()
                del m._parameters["weight"]
                if name in self._gate_of:
                    a, b = self._gate_of[name]
                    scale = st.mu.detach()[a:b] * keeps[name].to(w.dtype)
                    point = self._groups[name].scale
                    if point is None:  # gate on the layer output: per-channel scale of the weight rows
                        w = w * scale.view(-1, *([1] * (w.dim() - 1)))
                        if m.bias is not None:
                            m.bias.mul_(scale)
                    else:  # gate after BN / ChannelScale: fold it into that module's affine
                        sm = model.get_submodule(point)
                        sm.weight.mul_(scale)
                        if getattr(sm, "bias", None) is not None:
                            sm.bias.mul_(scale)
                        if m.bias is not None:
                            m.bias.mul_(keeps[name].to(m.bias.dtype))
                struct = structs.get(name, torch.ones(w.shape, dtype=torch.bool, device=w.device))
                m.register_parameter("weight", nn.Parameter(w * struct.to(w.dtype)))
                if self.quantize:  # inference keeps the learned activation quantiser (constant now)
                    signed = self._signed_act[i]
                    qmax = math.exp(float(q[i, 3]))
                    d = qmax / _levels(ba, signed) if self.pow2_bits else math.exp(float(q[i, 2]))
                    self._hooks.append(m.register_forward_pre_hook(_fixed_act_quant(d, qmax, signed)))
                self.final[name] = {"weight_bits": bw, "act_bits": ba, "mask": struct, "keep": keeps.get(name)}
        delattr(model, "djpq_state")

    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        """Gated layers: filter pruning with the structural mask (kept rows and live input columns);
        other layers lose only the input columns of pruned producers, which the exporter's channel
        liveness removes from the shapes, so they carry no prune spec."""
        from ..recipe import FilterPrune

        out = {}
        for name, f in self.final.items():
            keep = f["keep"]
            spec = FilterPrune(density=max(float(keep.float().mean()), 1e-9)) if keep is not None else None
            out[name] = LayerCompression(name=name, weight_bits=f["weight_bits"], act_bits=f["act_bits"],
                                         scheme="int" if self.quantize else "float", prune=spec, mask=f["mask"],
                                         granularity="channel" if self.quantize else "tensor")
        return out

    def info(self) -> dict[str, Any]:
        return {"bops_per_epoch": self.bops_log,
                "bits": {n: (f["weight_bits"], f["act_bits"]) for n, f in self.final.items()},
                "kept_channels": {n: int(f["keep"].sum()) for n, f in self.final.items() if f["keep"] is not None}}

    def state_dict(self) -> dict[str, Any]:
        if not self.use_numba:
            return {"bops_log": self.bops_log, "torch_adam": self._opt.state_dict(),
                    "act_uncalibrated": sorted(self._act_uncalibrated)}
        return {"bops_log": self.bops_log, "adam": [a.state_dict() for a in (self._adam_q, self._adam_mu, self._adam_lv)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bops_log = list(state["bops_log"])
        if not self.use_numba:
            self._opt.load_state_dict(state["torch_adam"])
            self._act_uncalibrated = set(state.get("act_uncalibrated", []))
            return
        for a, st in zip((self._adam_q, self._adam_mu, self._adam_lv), state["adam"]):
            a.load_state_dict(st)


def _fixed_act_quant(d: float, qmax: float, signed: bool) -> Any:
    lo = -qmax if signed else 0.0

    def hook(mod: "nn.Module", args: Any) -> Any:
        x = args[0].clamp(lo, qmax)
        return (torch.round(x / d) * d,) + tuple(args[1:])
    return hook


# --- two-stage baseline -------------------------------------------------------------------------------

class FixedQAT(Method):
    """Fine-tune with fixed per-layer bits (straight-through fake quantisation) inside fixed masks.

    Weights: the front-end's symmetric per-channel integer quantiser; activations: its dynamic
    per-batch quantiser (:func:`..quantization.fake_quant_activation`); both in one fused layer
    (:func:`._fastquant.install_quant_forward`) while training, activation pre-hooks afterwards.
    """

    name = "fixed_qat"

    def __init__(self, bits: dict[str, tuple[int, int]], masks: dict[str, "torch.Tensor"],
                 bias_masks: dict[str, "torch.Tensor"] | None = None):
        self.bits, self.masks, self.bias_masks = bits, masks, bias_masks or {}
        self._layers: dict[str, "nn.Module"] = {}
        self._fmasks: dict[str, "torch.Tensor"] = {}
        self._specs: dict[str, Any] = {}
        self._hooks: list[Any] = []

    def _spec(self, name: str) -> Any:
        spec = self._specs.get(name)
        if spec is None:
            from ..recipe import QuantSpec

            wb, ab = self.bits[name]
            spec = QuantSpec(weight_bits=1, act_bits=ab, scheme="binary", granularity="channel") if wb == 1 else \
                QuantSpec(weight_bits=wb, act_bits=ab, granularity="channel")
            self._specs[name] = spec
        return spec

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        self._layers = {n: m for n, m in compressible_layers(model).items() if n in self.bits}
        for name, m in self._layers.items():
            fmask = self.masks[name].to(m.weight.dtype) if self.masks.get(name) is not None else None
            self._fmasks[name] = fmask
            fq.install_quant_forward(m, lambda w, name=name: self._q(name, w), self.bits[name][1], fmask)

    def _q(self, name: str, w: "torch.Tensor") -> "torch.Tensor":
        q = fq.quantize_weight(w, self._spec(name))
        fmask = self._fmasks.get(name)
        return q * fmask if fmask is not None else q

    def after_backward(self, model: "nn.Module") -> None:
        for name, bm in self.bias_masks.items():
            m = self._layers.get(name)
            if m is not None and m.bias is not None and m.bias.grad is not None:
                m.bias.grad.mul_(bm.to(m.bias.dtype))

    def after_step(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, m in self._layers.items():
                fmask = self._fmasks.get(name)
                if fmask is not None:
                    m.weight.mul_(fmask)
                bm = self.bias_masks.get(name)
                if bm is not None and m.bias is not None:
                    m.bias.mul_(bm.to(m.bias.dtype))

    def finalize(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, m in self._layers.items():
                fq.remove_quant_forward(m)
                m.weight.copy_(self._q(name, m.weight))
                ab = self.bits[name][1]
                self._hooks.append(m.register_forward_pre_hook(
                    lambda mod, a, ab=ab: (fq.fake_quant_act(a[0], ab),) + a[1:]))


def two_stage_baseline(model: "nn.Module", data: Any, example_input: "torch.Tensor", target_bops: float,
                       act_bits: int, prune_config: TrainConfig, qat_config: TrainConfig, kl_weight: float = 1e-4,
                       candidates: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)) -> dict[str, Any]:
    """Prune (VIB gates, no quantisation) then quantise at BOPs <= ``target_bops``; returns a dict
    with both :class:`~.loop.TrainResult` s, the bits, the records and the achieved BOPs."""
    from .loop import train
    from .metrics import model_cost

    stage1 = DJPQ(example_input, bops_weight=0.0, kl_weight=kl_weight, quantize=False)
    r1 = train(model, data, stage1, prune_config)
    recs = stage1.records(model)
    masks = {n: rec.mask for n, rec in recs.items()}
    bias_masks = {n: f["keep"] for n, f in stage1.final.items() if f["keep"] is not None}
    cost = model_cost(model, example_input, recs)
    layers_info = {c.name: {"weight": model.get_submodule(c.name).weight.detach(), "macs": c.macs_eff,
                            "nnz": c.nonzeros} for c in cost.layers}
    reference = sum(c.macs_eff for c in cost.layers) * 8 * act_bits
    fraction = min(max(target_bops / reference, 1e-6), 1.0)
    bits_w, summary = qz.assign_bits(layers_info, list(candidates), "bops", fraction, act_bits=act_bits)
    bits = {n: (b, act_bits) for n, b in bits_w.items()}
    stage2 = FixedQAT(bits, masks, bias_masks)
    r2 = train(model, data, stage2, qat_config)
    for name, rec in recs.items():
        rec.weight_bits, rec.act_bits, rec.scheme = bits[name][0], act_bits, "int"
        rec.granularity = "channel"
    return {"prune_result": r1, "qat_result": r2, "bits": bits, "records": recs, "assign_summary": summary,
            "bops": sum(c.macs_eff * bits[c.name][0] * act_bits for c in cost.layers)}


__all__ = ["DJPQ", "DJPQState", "FixedQAT", "two_stage_baseline", "int_bits", "dq_reference", "gate_reference",
           "penalty_reference", "POW2_BITS"]
