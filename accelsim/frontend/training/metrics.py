"""What a trained, compressed model costs: sparsity, average bits and BOPs per layer.

Every method describes its result as one :class:`LayerCompression` per conv/linear layer: bits,
the sparsity spec it enforced and the *support* mask (the weights it keeps; for channel pruning
also the consumer's input columns fed by removed channels). Weights that quantise to zero inside
the support are kept weights (they are not pruned; the exported workload counts them the same way).

- ``MACs_eff`` of a layer = (kept weights) x (output positions it is applied at), i.e. the MACs
  left when multiplications by pruned weights are skipped. A layer without a mask is dense.
- ``BOPs`` = sum over layers of ``MACs_eff * b_w * b_a`` — the simplified BOPs of Bayesian Bits /
  HAWQ-V3 with MACs counted after pruning (literature.md H-E1, "accelsim default"). Float
  layers count 32 bits.
- ``avg_bits`` = weight-count-weighted mean of the weight bit-widths over the compressible layers;
  ``sparsity`` = 1 - non-zeros / weights over the same layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._deps import require_torch

torch = require_torch()
nn = torch.nn

FLOAT_BITS = 32


@dataclass
class LayerCompression:
    """How one conv/linear layer is compressed (for metrics and export).

    ``prune`` is a front-end recipe prune spec (``kind`` + parameters, e.g.
    :class:`~accelsim.frontend.recipe.BlockPrune`) or None; ``mask`` the boolean support (kept
    weights; exported as the layer's mask only together with a ``prune`` spec — input columns
    removed because a producer lost channels are left to the exporter's channel liveness);
    ``scheme`` ``float`` | ``int`` | ``pow2`` | ``binary`` | ``ternary``.
    """

    name: str
    weight_bits: int = FLOAT_BITS
    act_bits: int = FLOAT_BITS
    scheme: str = "float"
    prune: Any = None
    mask: "torch.Tensor | None" = None
    granularity: str = "tensor"
    notes: list[str] = field(default_factory=list)
    unit_fields: dict[str, Any] = field(default_factory=dict)  # extra UnitState fields (pattern, gs)
    param_masks: "dict[str, torch.Tensor] | None" = None  # LSTM/GRU: one mask per weight_ih_lK / weight_hh_lK


def compressible_layers(model: "nn.Module") -> dict[str, "nn.Module"]:
    """Conv2d and Linear modules by qualified name, in definition order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def output_positions(model: "nn.Module", example_input: "torch.Tensor") -> dict[str, int]:
    """How many times each conv/linear weight is applied for ``example_input`` (N*P*Q or N*tokens)."""
    layers = compressible_layers(model)
    out: dict[str, int] = {}
    hooks = []
    for name, m in layers.items():
        def hook(mod: "nn.Module", args: Any, res: "torch.Tensor", name: str = name) -> None:
            if isinstance(mod, nn.Conv2d):
                out[name] = int(res.shape[0] * res.shape[2] * res.shape[3])
            else:
                out[name] = int(res.numel() // res.shape[-1])
        hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out


@dataclass
class LayerCost:
    name: str
    weights: int
    nonzeros: int
    positions: int
    weight_bits: int
    act_bits: int

    @property
    def dense_macs(self) -> int:
        return self.weights * self.positions

    @property
    def macs_eff(self) -> int:
        return self.nonzeros * self.positions

    @property
    def bops(self) -> int:
        return self.macs_eff * self.weight_bits * self.act_bits


@dataclass
class ModelCost:
    """Per-layer costs and the totals the result table prints."""

    layers: list[LayerCost]

    @property
    def weights(self) -> int:
        return sum(c.weights for c in self.layers)

    @property
    def sparsity(self) -> float:
        return 1.0 - sum(c.nonzeros for c in self.layers) / max(self.weights, 1)

    @property
    def avg_bits(self) -> float:
        return sum(c.weights * c.weight_bits for c in self.layers) / max(self.weights, 1)

    @property
    def bops(self) -> int:
        return sum(c.bops for c in self.layers)

    @property
    def macs_eff(self) -> int:
        return sum(c.macs_eff for c in self.layers)

    def per_layer(self) -> dict[str, dict[str, float]]:
        return {c.name: {"density": c.nonzeros / max(c.weights, 1), "weight_bits": c.weight_bits,
                         "act_bits": c.act_bits, "bops": c.bops} for c in self.layers}


def model_cost(model: "nn.Module", example_input: "torch.Tensor",
               records: dict[str, LayerCompression] | None = None) -> ModelCost:
    """Costs of ``model`` (weights as they are now) with bit-widths from ``records`` (float if absent).

    ``example_input`` fixes the batch (use a single sample for per-inference BOPs).
    """
    records = records or {}
    pos = output_positions(model, example_input)
    costs = []
    for name, m in compressible_layers(model).items():
        w = m.weight.detach()
        rec = records.get(name)
        kept = int(rec.mask.sum()) if rec is not None and rec.mask is not None else w.numel()
        costs.append(LayerCost(name=name, weights=w.numel(), nonzeros=kept, positions=pos.get(name, 0),
                               weight_bits=rec.weight_bits if rec else FLOAT_BITS,
                               act_bits=rec.act_bits if rec else FLOAT_BITS))
    return ModelCost(costs)


__all__ = ["LayerCompression", "LayerCost", "ModelCost", "model_cost", "output_positions", "compressible_layers",
           "FLOAT_BITS"]
