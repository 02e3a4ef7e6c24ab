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

from .._deps import require_torch
from .. import quantization as qz
from .loop import Method, TrainConfig
from .metrics import FLOAT_BITS, LayerCompression, compressible_layers, output_positions

torch = require_torch()
nn = torch.nn
F = torch.nn.functional
parametrize = torch.nn.utils.parametrize

POW2_BITS = (2, 4, 8, 16)


def _round_ste(x: "torch.Tensor") -> "torch.Tensor":
    return x + (torch.round(x) - x).detach()


class DQQuantizer(nn.Module):
    """Learnable uniform quantiser (step ``d``, range ``q_max``; both stored as logs)."""

    def __init__(self, signed: bool, init_bits: int = 8, pow2_bits: bool = False, min_bits: int = 2,
                 max_bits: int = 16):
        super().__init__()
        self.signed, self.init_bits, self.pow2_bits = signed, init_bits, pow2_bits
        self.min_bits, self.max_bits = min_bits, max_bits
        self.log_d = nn.Parameter(torch.zeros(()))
        self.log_qmax = nn.Parameter(torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def _levels(self, bits: "torch.Tensor | float") -> Any:
        return 2 ** (bits - 1) - 1 if self.signed else 2 ** bits - 1

    def init_from(self, x: "torch.Tensor") -> None:
        with torch.no_grad():
            qmax = x.detach().abs().amax().clamp_min(1e-8)
            self.log_qmax.fill_(float(torch.log(qmax)))
            self.log_d.fill_(float(torch.log(qmax / self._levels(self.init_bits))))
            self.initialized.fill_(True)

    def bits_continuous(self) -> "torch.Tensor":
        ratio = torch.exp(self.log_qmax - self.log_d)
        b = torch.log2(ratio + 1) + (1 if self.signed else 0)
        return b.clamp(self.min_bits, self.max_bits)

    def bits(self) -> int:
        """The integer bit-width this quantiser needs (a power of two with ``pow2_bits``)."""
        b = float(self.bits_continuous().detach())
        b_int = min(max(math.ceil(b - 1e-6), self.min_bits), self.max_bits)
        if self.pow2_bits:
            b_int = next(p for p in POW2_BITS if p >= b_int) if b_int <= POW2_BITS[-1] else POW2_BITS[-1]
        return b_int

    def bits_ste(self) -> "torch.Tensor":
        """Integer bits in the forward, the continuous bit-width's gradient in the backward."""
        b = self.bits_continuous()
        return b + (torch.tensor(float(self.bits()), dtype=b.dtype) - b).detach()

    def step(self) -> "torch.Tensor":
        d = torch.exp(self.log_d)
        if self.pow2_bits:
            d_eff = torch.exp(self.log_qmax) / self._levels(float(self.bits()))
            d = d + (d_eff - d).detach()
        return d

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if not bool(self.initialized):
            self.init_from(x)
        d, qmax = self.step(), torch.exp(self.log_qmax)
        lo = -qmax if self.signed else torch.zeros_like(qmax)
        xc = torch.minimum(torch.maximum(x, lo), qmax)
        return d * _round_ste(xc / d)


class VIBGate(nn.Module):
    """Per-channel multiplicative gate ``z ~ N(mu, sigma^2)`` (VIBNet)."""

    def __init__(self, channels: int, threshold: float = 0.0, init_log_var: float = -9.0):
        super().__init__()
        self.mu = nn.Parameter(torch.ones(channels))
        self.log_var = nn.Parameter(torch.full((channels,), init_log_var))
        self.threshold = threshold

    def log_alpha(self) -> "torch.Tensor":
        return self.log_var - torch.log(self.mu.pow(2) + 1e-8)

    def keep(self) -> "torch.Tensor":
        return (self.log_alpha() < self.threshold).detach()

    def keep_prob(self, temperature: float = 1.0) -> "torch.Tensor":
        return torch.sigmoid((self.threshold - self.log_alpha()) / temperature)

    def kl(self) -> "torch.Tensor":
        return 0.5 * torch.log1p(self.mu.pow(2) / torch.exp(self.log_var)).sum()

    def forward(self, y: "torch.Tensor") -> "torch.Tensor":
        shape = [1, -1] + [1] * (y.dim() - 2)
        if self.training:
            eps = torch.randn(y.shape[0], self.mu.numel(), dtype=y.dtype, device=y.device).view(y.shape[0], -1,
                                                                                                 *([1] * (y.dim() - 2)))
            z = self.mu.view(shape) + torch.exp(0.5 * self.log_var).view(shape) * eps
        else:
            z = (self.mu * self.keep().to(self.mu.dtype)).view(shape)
        return y * z


class _WeightQuant(nn.Module):
    """Parametrisation ``W -> Q(W)`` around a :class:`DQQuantizer`."""

    def __init__(self, q: DQQuantizer):
        super().__init__()
        self.q = q

    def forward(self, w: "torch.Tensor") -> "torch.Tensor":
        return self.q(w)


class DJPQ(Method):
    """Joint VIB channel pruning + learnable mixed precision (see the module docstring).

    ``example_input``: one input sample (to count MACs). ``quantize=False`` trains the gates only
    (stage 1 of the two-stage baseline). ``signed_acts``: inputs of the first layer may be signed
    (digits pixels are not; ReLU outputs never are).
    """

    name = "djpq"

    def __init__(self, example_input: "torch.Tensor", bops_weight: float = 1.0, kl_weight: float = 1e-4,
                 pow2_bits: bool = False, init_bits: int = 8, quantize: bool = True, gate_lr: float = 1e-2,
                 quant_lr: float = 1e-2, temperature: float = 1.0, signed_acts: bool = False):
        self.example_input = example_input
        self.bops_weight, self.kl_weight = bops_weight, kl_weight
        self.pow2_bits, self.init_bits, self.quantize = pow2_bits, init_bits, quantize
        self.gate_lr, self.quant_lr, self.temperature = gate_lr, quant_lr, temperature
        self.signed_acts = signed_acts
        self.layer_names: list[str] = []
        self.macs: dict[str, int] = {}
        self.gates: dict[str, VIBGate] = {}
        self.wq: dict[str, DQQuantizer] = {}
        self.aq: dict[str, DQQuantizer] = {}
        self.bops_ref = 1.0
        self._hooks: list[Any] = []
        self._act_hooks: list[Any] = []
        self.final: dict[str, dict[str, Any]] = {}
        self.bops_log: list[float] = []

    # --- set-up ------------------------------------------------------------------------------
    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        layers = compressible_layers(model)
        self.layer_names = list(layers)
        pos = output_positions(model, self.example_input)
        self.macs = {n: pos[n] * m.weight.numel() for n, m in layers.items()}
        self.bops_ref = float(sum(self.macs.values()) * 8 * 8)
        with torch.no_grad():
            acts = self._layer_inputs(model)
        for i, (name, m) in enumerate(layers.items()):
            if i + 1 < len(layers):
                gate = VIBGate(m.weight.shape[0])
                m.add_module("djpq_gate", gate)
                self.gates[name] = gate
                self._hooks.append(m.register_forward_hook(lambda mod, a, out: mod.djpq_gate(out)))
            if self.quantize:
                wq = DQQuantizer(True, self.init_bits, self.pow2_bits)
                wq.init_from(m.weight)
                parametrize.register_parametrization(m, "weight", _WeightQuant(wq))
                self.wq[name] = wq
                aq = DQQuantizer(self.signed_acts and i == 0, self.init_bits, self.pow2_bits)
                aq.init_from(acts[name])
                m.add_module("djpq_act", aq)
                self.aq[name] = aq
                self._act_hooks.append(m.register_forward_pre_hook(lambda mod, a: (mod.djpq_act(a[0]),) + a[1:]))

    def _layer_inputs(self, model: "nn.Module") -> dict[str, "torch.Tensor"]:
        out: dict[str, torch.Tensor] = {}
        hooks = [m.register_forward_pre_hook(lambda mod, a, n=n: out.__setitem__(n, a[0].detach()))
                 for n, m in compressible_layers(model).items()]
        was = model.training
        model.eval()
        try:
            model(self.example_input)
        finally:
            for h in hooks:
                h.remove()
            model.train(was)
        return out

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        special = {id(p) for g in self.gates.values() for p in g.parameters()}
        quant = {id(p) for q in list(self.wq.values()) + list(self.aq.values()) for p in q.parameters()}
        base = [p for p in model.parameters() if p.requires_grad and id(p) not in special | quant]
        groups = [{"params": base}]
        if self.gates:
            groups.append({"params": [p for g in self.gates.values() for p in g.parameters()], "lr": self.gate_lr,
                           "momentum": 0.0, "weight_decay": 0.0})
        if quant:
            groups.append({"params": [p for q in list(self.wq.values()) + list(self.aq.values()) for p in q.parameters()],
                           "lr": self.quant_lr, "momentum": 0.0, "weight_decay": 0.0})
        return groups

    # --- cost ------------------------------------------------------------------------------------
    def _bits(self, name: str, hard: bool) -> tuple[Any, Any]:
        if not self.quantize:
            return FLOAT_BITS, FLOAT_BITS
        if hard:
            return self.wq[name].bits(), self.aq[name].bits()
        return self.wq[name].bits_ste(), self.aq[name].bits_ste()

    def bops(self, hard: bool = False) -> Any:
        """Soft (differentiable) or hard BOPs of the current state."""
        total: Any = 0.0
        prev_keep: Any = 1.0
        for name in self.layer_names:
            gate = self.gates.get(name)
            if gate is None:
                keep: Any = 1.0
            elif hard:
                keep = float(gate.keep().float().mean())
            else:
                keep = gate.keep_prob(self.temperature).mean()
            bw, ba = self._bits(name, hard)
            total = total + self.macs[name] * prev_keep * keep * bw * ba
            prev_keep = keep
        return total

    def penalty(self, model: "nn.Module") -> "torch.Tensor | None":
        terms = []
        if self.kl_weight and self.gates:
            terms.append(self.kl_weight * sum(g.kl() for g in self.gates.values()))
        if self.bops_weight and (self.quantize or self.gates):
            terms.append(self.bops_weight * self.bops(hard=False) / self.bops_ref)
        if not terms:
            return None
        return sum(terms[1:], terms[0])

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        b = float(self.bops(hard=True))
        self.bops_log.append(b)
        log["bops"] = b
        log["kept_channels"] = {n: int(g.keep().sum()) for n, g in self.gates.items()}
        if self.quantize:
            log["bits"] = {n: (self.wq[n].bits(), self.aq[n].bits()) for n in self.layer_names}
        return False

    # --- finalisation ------------------------------------------------------------------------------
    def channel_keep(self) -> dict[str, "torch.Tensor"]:
        return {n: g.keep().clone() for n, g in self.gates.items()}

    def finalize(self, model: "nn.Module") -> None:
        keeps = self.channel_keep()
        layers = compressible_layers(model)
        with torch.no_grad():
            for i, name in enumerate(self.layer_names):
                m = layers[name]
                w = m.weight.detach().clone()  # Q(W) when quantised
                if parametrize.is_parametrized(m, "weight"):
                    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
                gate = self.gates.get(name)
                if gate is not None:
                    scale = gate.mu.detach() * keeps[name].to(w.dtype)
                    w = w * scale.view(-1, *([1] * (w.dim() - 1)))
                    if m.bias is not None:
                        m.bias.mul_(scale)
                struct = torch.ones_like(w, dtype=torch.bool)
                if gate is not None:
                    struct &= keeps[name].view(-1, *([1] * (w.dim() - 1)))
                if i > 0 and self.layer_names[i - 1] in keeps:
                    keep = keeps[self.layer_names[i - 1]]
                    per = w.shape[1] // keep.numel()
                    cols = keep.repeat_interleave(per) if per > 1 else keep
                    struct &= cols.view(1, -1, *([1] * (w.dim() - 2)))
                m.weight.copy_(w * struct.to(w.dtype))
                wb, ab = self._bits(name, hard=True)
                self.final[name] = {"weight_bits": wb, "act_bits": ab, "mask": struct, "keep": keeps.get(name)}
        for h in self._hooks:
            h.remove()
        self._hooks = []
        for name in self.gates:
            delattr(layers[name], "djpq_gate")

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
                                         scheme="int" if self.quantize else "float", prune=spec,
                                         mask=f["mask"] if spec is not None else None,
                                         granularity="channel" if self.quantize else "tensor")
        return out

    def info(self) -> dict[str, Any]:
        return {"bops_per_epoch": self.bops_log,
                "bits": {n: (f["weight_bits"], f["act_bits"]) for n, f in self.final.items()},
                "kept_channels": {n: int(f["keep"].sum()) for n, f in self.final.items() if f["keep"] is not None}}


# --- two-stage baseline -------------------------------------------------------------------------------

class FixedQAT(Method):
    """Fine-tune with fixed per-layer bits (straight-through fake quantisation) inside fixed masks.

    Weights: the front-end's symmetric per-channel integer quantiser; activations: its dynamic
    per-batch quantiser (:func:`..quantization.fake_quant_activation`) as forward pre-hooks.
    """

    name = "fixed_qat"

    def __init__(self, bits: dict[str, tuple[int, int]], masks: dict[str, "torch.Tensor"],
                 bias_masks: dict[str, "torch.Tensor"] | None = None):
        self.bits, self.masks, self.bias_masks = bits, masks, bias_masks or {}
        self._layers: dict[str, "nn.Module"] = {}
        self._shadow: dict[str, "torch.Tensor"] = {}
        self._hooks: list[Any] = []

    def _spec(self, name: str) -> Any:
        from ..recipe import QuantSpec

        wb, ab = self.bits[name]
        if wb == 1:
            return QuantSpec(weight_bits=1, act_bits=ab, scheme="binary", granularity="channel")
        return QuantSpec(weight_bits=wb, act_bits=ab, granularity="channel")

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        self._layers = {n: m for n, m in compressible_layers(model).items() if n in self.bits}
        for name, m in self._layers.items():
            ab = self.bits[name][1]
            self._hooks.append(m.register_forward_pre_hook(
                lambda mod, a, ab=ab: (qz.fake_quant_activation(a[0], ab),) + a[1:]))

    def _q(self, name: str, w: "torch.Tensor") -> "torch.Tensor":
        q = qz.quantize_weight(w, self._spec(name))
        mask = self.masks.get(name)
        return q * mask.to(q.dtype) if mask is not None else q

    def loss(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
        with torch.no_grad():
            for name, m in self._layers.items():
                self._shadow[name] = m.weight.detach().clone()
                m.weight.copy_(self._q(name, m.weight))
        return super().loss(model, x, y)

    def after_backward(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, w in self._shadow.items():
                m = self._layers[name]
                m.weight.copy_(w)
                mask = self.masks.get(name)
                if mask is not None and m.weight.grad is not None:
                    m.weight.grad.mul_(mask.to(w.dtype))
                bm = self.bias_masks.get(name)
                if bm is not None and m.bias is not None and m.bias.grad is not None:
                    m.bias.grad.mul_(bm.to(w.dtype))
        self._shadow = {}

    def after_step(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, m in self._layers.items():
                mask = self.masks.get(name)
                if mask is not None:
                    m.weight.mul_(mask.to(m.weight.dtype))
                bm = self.bias_masks.get(name)
                if bm is not None and m.bias is not None:
                    m.bias.mul_(bm.to(m.bias.dtype))

    def predict(self, model: "nn.Module", x: "torch.Tensor", x_int: "torch.Tensor | None" = None) -> "torch.Tensor":
        with torch.no_grad():
            saved = {n: m.weight.detach().clone() for n, m in self._layers.items()}
            for name, m in self._layers.items():
                m.weight.copy_(self._q(name, m.weight))
            try:
                return model(x).argmax(dim=1)
            finally:
                for name, m in self._layers.items():
                    m.weight.copy_(saved[name])

    def finalize(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, m in self._layers.items():
                m.weight.copy_(self._q(name, m.weight))


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
    masks = {n: (m.weight.detach() != 0) for n, m in compressible_layers(model).items()}
    bias_masks = {n: f["keep"] for n, f in stage1.final.items() if f["keep"] is not None}
    cost = model_cost(model, example_input)
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


__all__ = ["DJPQ", "DQQuantizer", "VIBGate", "FixedQAT", "two_stage_baseline", "POW2_BITS"]
