"""Early-Bird tickets: find the channel-pruned subnetwork early, then train only the ticket.

You, Li, Xu, Fu, Wang, Chen, Baraniuk, Wang, Lin, "Drawing Early-Bird Tickets: Towards More
Efficient Training of Deep Networks", ICLR 2020, arXiv 1909.11957 (code GATECH-EIC/Early-Bird-Tickets;
literature.md E "Early-Bird").

- Channel mask from the BatchNorm scales: all ``|gamma|`` of the network are pooled, sorted, and
  the value at index ``int(total * prune_ratio)`` is the global threshold; a channel is kept when
  ``|gamma| > threshold`` (the reference ``EarlyBird.pruning``).
- A FIFO keeps the masks of the last ``fifo`` epochs (5); the distance of two masks is the
  normalised Hamming distance ``1 - (#equal entries) / (#entries)``. The ticket is drawn when the
  FIFO is full and the newest mask is within ``threshold`` (0.1; the reference rejects only
  distances > 0.1) of every older one.
- Search training uses the network-slimming L1 penalty on the BN scales (``l1_bn``, ``s = 1e-4``
  in the reference scripts), added to the gradient as ``s * sign(gamma)``.
- Once drawn (or after ``max_search_epochs`` without one), the pruned channels are removed: their
  BN scale and shift, their filter (and bias) and the consumer's input columns are zeroed and kept
  zero; the ticket is then trained for ``retrain_epochs`` with a fresh optimiser.

Training cost is counted in MACs: one training sample costs ~3x the forward MACs (forward,
input-gradient and weight-gradient GEMMs of equal size); :meth:`EarlyBird.training_cost` compares
search + ticket training against training the dense network for the whole search budget and then
retraining the pruned one (the standard prune-after-training pipeline).
"""
from __future__ import annotations

from collections import deque
from typing import Any

from .._deps import require_torch
from .loop import Method, TrainConfig
from .graph import ChannelGroup, channel_groups, weight_masks
from .metrics import LayerCompression, model_cost

torch = require_torch()
nn = torch.nn

TRAIN_MACS_PER_FORWARD_MAC = 3


def bn_layers(model: "nn.Module") -> dict[str, "nn.Module"]:
    """Every channel-scale module: BatchNorm1d/2d and :class:`~.models.ChannelScale` (L1-penalised)."""
    from .models import ChannelScale

    return {n: m for n, m in model.named_modules()
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, ChannelScale)) and m.weight is not None}


def prunable_scales(model: "nn.Module", groups: dict[str, ChannelGroup] | None = None) -> dict[str, str]:
    """``{scale module: producing layer}`` for the layers whose channels are free (:mod:`.graph`)."""
    groups = groups if groups is not None else channel_groups(model)
    return {g.scale: g.layer for g in groups.values() if g.free and g.scale is not None}


def bn_channel_mask(model: "nn.Module", prune_ratio: float, scales: list[str] | None = None) -> "torch.Tensor":
    """Flat 0/1 mask over the channels of ``scales`` (default: every BN / scale module), global
    |gamma| threshold at ``prune_ratio``."""
    mods = bn_layers(model)
    names = scales if scales is not None else list(mods)
    gammas = torch.cat([mods[n].weight.detach().abs().reshape(-1) for n in names])
    total = gammas.numel()
    y, _ = torch.sort(gammas)
    thre = y[min(int(total * prune_ratio), total - 1)]
    return (gammas > thre).to(torch.float32)


def mask_distance(a: "torch.Tensor", b: "torch.Tensor") -> float:
    """Normalised Hamming distance ``1 - (#equal) / (#entries)`` of two masks of equal size."""
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return 1.0 - float((a == b).sum()) / a.numel()


class EarlyBirdDetector:
    """FIFO of the last ``fifo`` masks; :meth:`update` returns True when the ticket has emerged."""

    def __init__(self, prune_ratio: float = 0.5, fifo: int = 5, threshold: float = 0.1):
        if not 0.0 < prune_ratio < 1.0:
            raise ValueError(f"prune_ratio must be in (0, 1), got {prune_ratio}")
        if fifo < 2:
            raise ValueError(f"the FIFO needs >= 2 masks, got {fifo}")
        self.prune_ratio, self.fifo, self.threshold = prune_ratio, fifo, threshold
        self.masks: deque["torch.Tensor"] = deque(maxlen=fifo)
        self.dists: list[float] = []

    def update(self, mask: "torch.Tensor") -> bool:
        self.masks.append(mask)
        if len(self.masks) < self.fifo:
            self.dists = []
            return False
        newest = self.masks[-1]
        self.dists = [mask_distance(newest, m) for m in list(self.masks)[:-1]]
        return max(self.dists) <= self.threshold

    def state_dict(self) -> dict[str, Any]:
        return {"masks": list(self.masks), "dists": list(self.dists)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks = deque(state["masks"], maxlen=self.fifo)
        self.dists = list(state["dists"])


class EarlyBird(Method):
    """Early-Bird ticket search + ticket training (see the module docstring).

    Any fx-traceable network with BatchNorm (or :class:`~.models.ChannelScale`) after the layers
    to prune: the prunable channels are those of :func:`.graph.channel_groups` whose producer has
    a scale module and feeds only conv/linear inputs (in a ResNet the channels inside the residual
    blocks; in the digits transformer the FFN neurons). The |gamma| threshold is global over these
    scales; the L1 penalty applies to every BN / scale module, as the reference code.
    """

    name = "earlybird"

    def __init__(self, prune_ratio: float = 0.5, fifo: int = 5, threshold: float = 0.1,
                 max_search_epochs: int = 30, retrain_epochs: int = 10, l1_bn: float = 1e-4):
        self.detector = EarlyBirdDetector(prune_ratio, fifo, threshold)
        self.max_search_epochs = max_search_epochs
        self.retrain_epochs = retrain_epochs
        self.l1_bn = l1_bn
        self.found_epoch: int | None = None  # epochs of search training when the ticket was drawn
        self.pruned_at: int | None = None
        self.channel_masks: dict[str, "torch.Tensor"] = {}  # per producing layer: kept output channels
        self.distance_log: list[float | None] = []
        self._model: "nn.Module | None" = None
        self._macs: tuple[int, int] | None = None

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        if not bn_layers(model):
            raise ValueError("Early-Bird needs BatchNorm layers (build the model with bn=True)")
        self._model = model
        self._groups = channel_groups(model)
        self._scales = prunable_scales(model, self._groups)  # scale module -> producing layer
        if not self._scales:
            raise ValueError("Early-Bird found no prunable channels: no BatchNorm / ChannelScale follows a layer "
                             "whose outputs feed only conv/linear inputs")

    def total_epochs(self, config: TrainConfig) -> int:
        return self.max_search_epochs + self.retrain_epochs

    def schedule_span(self, epoch: int, total: int) -> tuple[int, int]:
        """Search: one schedule over ``max_search_epochs``; the ticket is retrained with a fresh one
        over ``retrain_epochs`` (as retraining a pruned network from its early-bird weights)."""
        if self.pruned_at is None:
            return epoch, self.max_search_epochs
        return epoch - self.pruned_at, self.retrain_epochs

    @property
    def searching(self) -> bool:
        return self.pruned_at is None

    def after_backward(self, model: "nn.Module") -> None:
        if self.searching:
            if self.l1_bn:
                for m in bn_layers(model).values():
                    if m.weight.grad is not None:
                        m.weight.grad.add_(self.l1_bn * torch.sign(m.weight.detach()))
        else:
            self._mask_grads(model)

    def after_step(self, model: "nn.Module") -> None:
        if not self.searching:
            self._apply_masks(model)

    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        # the optimiser is rebuilt once, at the first ticket-training epoch
        return self.pruned_at is not None and epoch == self.pruned_at

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        if self.searching:
            found = self.detector.update(bn_channel_mask(model, self.detector.prune_ratio, list(self._scales)))
            dist = max(self.detector.dists) if self.detector.dists else None
            self.distance_log.append(dist)
            log["eb_distance"] = dist
            if found or epoch + 1 >= self.max_search_epochs:
                if found:
                    self.found_epoch = epoch + 1
                self._draw(model)
                self.pruned_at = epoch + 1
            log["phase"] = "search"
            return False
        log["phase"] = "ticket"
        return epoch + 1 >= self.pruned_at + self.retrain_epochs

    # --- pruning ----------------------------------------------------------------------------
    def _draw(self, model: "nn.Module") -> None:
        flat = bn_channel_mask(model, self.detector.prune_ratio, list(self._scales)).bool()
        mods = bn_layers(model)
        self.channel_masks, i = {}, 0
        for scale, layer in self._scales.items():
            n = mods[scale].weight.numel()
            keep = flat[i:i + n].clone()
            i += n
            if not keep.any():
                keep[int(mods[scale].weight.detach().abs().argmax())] = True
            self.channel_masks[layer] = keep
        self._apply_masks(model)

    def _weight_masks(self, model: "nn.Module") -> dict[str, "torch.Tensor"]:
        """Boolean weight masks: pruned filters of each layer and the matching consumer inputs."""
        return weight_masks(model, self._groups, self.channel_masks)

    def _channel_params(self, model: "nn.Module") -> list[tuple["torch.Tensor", "torch.Tensor"]]:
        """(parameter, kept-channel mask) of the producers' biases and the scales' weight/bias."""
        mods = bn_layers(model)
        out = []
        for scale, layer in self._scales.items():
            keep = self.channel_masks.get(layer)
            if keep is None:
                continue
            for p in (model.get_submodule(layer).bias, mods[scale].weight, getattr(mods[scale], "bias", None)):
                if p is not None:
                    out.append((p, keep.to(p.device)))
        return out

    def _apply_masks(self, model: "nn.Module") -> None:
        with torch.no_grad():
            for name, mask in self._weight_masks(model).items():
                mod = model.get_submodule(name)
                mod.weight.mul_(mask.to(mod.weight.dtype))
            for p, keep in self._channel_params(model):
                p.mul_(keep.to(p.dtype))

    def _mask_grads(self, model: "nn.Module") -> None:
        for name, mask in self._weight_masks(model).items():
            g = model.get_submodule(name).weight.grad
            if g is not None:
                g.mul_(mask.to(g.dtype))
        for p, keep in self._channel_params(model):
            if p.grad is not None:
                p.grad.mul_(keep.to(p.grad.dtype))

    # --- results ----------------------------------------------------------------------------------
    def records(self, model: "nn.Module") -> dict[str, LayerCompression]:
        from ..recipe import FilterPrune

        out = {}
        for name, mask in self._weight_masks(model).items():
            keep = self.channel_masks.get(name)
            # a layer that only lost input columns (the classifier) carries no prune spec: the
            # exporter removes those columns through channel liveness
            spec = FilterPrune(density=max(float(keep.float().mean()), 1e-9)) if keep is not None else None
            out[name] = LayerCompression(name=name, prune=spec, mask=mask)
        return out

    def training_cost(self, model: "nn.Module", example_input: "torch.Tensor", samples_per_epoch: int,
                      dense_macs: int | None = None) -> dict[str, float]:
        """Training MACs of this run vs the standard pipeline (dense training for
        ``max_search_epochs``, then the same ticket retraining). ``example_input``: one sample."""
        ticket = model_cost(model, example_input, self.records(model)).macs_eff
        dense = dense_macs if dense_macs is not None else self._dense_macs
        search_epochs = self.pruned_at or 0
        k = TRAIN_MACS_PER_FORWARD_MAC * samples_per_epoch
        eb = k * (search_epochs * dense + self.retrain_epochs * ticket)
        std = k * (self.max_search_epochs * dense + self.retrain_epochs * ticket)
        return {"eb_train_macs": float(eb), "standard_train_macs": float(std), "saving": std / eb if eb else 0.0,
                "dense_forward_macs": float(dense), "ticket_forward_macs": float(ticket)}

    @property
    def _dense_macs(self) -> int:
        if self._macs is None:
            raise ValueError("call record_dense_macs(model, example_input) before training")
        return self._macs[0]

    def record_dense_macs(self, model: "nn.Module", example_input: "torch.Tensor") -> int:
        """Forward MACs of the dense network for one sample (call before training)."""
        macs = model_cost(model, example_input).macs_eff
        self._macs = (macs, macs)
        return macs

    def info(self) -> dict[str, Any]:
        return {"found_epoch": self.found_epoch, "pruned_after_epochs": self.pruned_at,
                "distances": self.distance_log,
                "kept_channels": {k: int(v.sum()) for k, v in self.channel_masks.items()},
                "total_channels": {k: int(v.numel()) for k, v in self.channel_masks.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.state_dict(), "found_epoch": self.found_epoch, "pruned_at": self.pruned_at,
                "channel_masks": self.channel_masks, "distance_log": self.distance_log, "macs": self._macs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state["detector"])
        self.found_epoch, self.pruned_at = state["found_epoch"], state["pruned_at"]
        self.channel_masks = dict(state["channel_masks"])
        self.distance_log = list(state["distance_log"])
        self._macs = state["macs"]


__all__ = ["EarlyBird", "EarlyBirdDetector", "bn_channel_mask", "mask_distance", "bn_layers", "prunable_scales",
           "TRAIN_MACS_PER_FORWARD_MAC"]
