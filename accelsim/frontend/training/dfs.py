"""DFS, Dynamic Fractional Skipping: a per-input bit width for every residual block, {0 = skip, 4, 8, full}.

Shen, Fu, Lin, Wang, "Fractional Skipping: Towards Finer-Grained Dynamic CNN Inference", AAAI
2020, arXiv 2001.00705 (literature.md "DFS"). :class:`DFS` (a :class:`~.loop.Method`) wraps every
:class:`~.models.BasicBlock` of a residual network in a :class:`GatedBlock`:

- a gate ``Linear(C_in, |bits|)`` on the globally average-pooled block input, standardised over
  the batch (``BatchNorm1d`` without affine, running statistics at inference;
  ``normalize_gate_input``), picks, **per input**, one bit width ``b`` from ``bits`` (default
  ``(0, 4, 8, 32)``): ``0`` skips the residual branch (the block outputs ``relu(shortcut(x))``),
  ``4`` / ``8`` run both convs with ``b``-bit weights (symmetric per-tensor, the front-end's
  ``quantize_int``) and ``b``-bit inputs (the front-end's dynamic per-tensor activation
  quantiser), ``32`` is full precision. Standardising matters: the budget term pushes every input
  the same way, and on raw (all-positive, post-ReLU) features that push moves the weights too, so
  every gate settles on one width for all inputs; on centred features it moves the bias and the
  weights learn what differs between inputs. Training samples the choice with straight-through
  Gumbel-softmax (temperature ``tau``, optionally annealed to ``tau_end``; hard one-hot forward,
  soft backward); inference takes the arg-max. ``input_dependent=False`` makes the gate a
  per-block constant (static mixed precision); ``bits=(0, 32)`` is plain layer skipping.
- cost: ``BOPs(x) = sum_blocks MACs_block * b^2`` per input (the branch convs; the shortcut and the
  ungated layers are constant), ``ratio = BOPs / BOPs(all 32-bit)``; the loss adds
  ``bops_weight * relu(E[ratio] - budget)`` with ``E`` over the gates' soft probabilities
  (batch mean), so a lower budget moves the average choice down. The penalty acts on soft
  probabilities, so the hard average can land far from the budget; :meth:`DFS.calibrate` shifts
  all gates' logits by ``-s * (b/32)^2`` to meet a BOPs target at inference (one ``s``, bisection).

Assumptions: all branches are computed and the chosen one selected per input (training cost x
``|bits|-1``; BatchNorm statistics are updated by every branch); the activation quantiser's range
is per batch. :meth:`DFS.choices` returns the per-input choices on a data set,
:meth:`DFS.bit_distribution` the per-block distribution, :meth:`DFS.export` the workload with the
measured distribution (and per-input trace) on every gated conv, which :func:`accelsim.simulate`
prices (expected / p50 / p95 per input); :mod:`.dfs_sim` does the same sum in Python as a check.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from .._deps import require_torch
from ..quantization import fake_quant_activation, quantize_int
from .loop import Method, TrainConfig
from .models import BasicBlock

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

FULL_BITS = 32
#: full precision (float) is exported / simulated as integer arithmetic of this width (the IR's widest)
SIM_FULL_BITS = 16


@dataclass
class DFSConfig:
    """Bit-width choices, the BOPs budget (fraction of all-full-precision BOPs) and the gate mode."""

    bits: tuple[int, ...] = (0, 4, 8, FULL_BITS)
    budget: float = 0.1
    bops_weight: float = 1.0
    tau: float = 1.0
    tau_end: float | None = None  # anneal tau geometrically to this by the last epoch (None: constant)
    input_dependent: bool = True
    normalize_gate_input: bool = True  # standardise the pooled gate features over the batch (running stats)
    gate_lr_scale: float = 10.0  # gate parameters train at lr * gate_lr_scale

    def __post_init__(self) -> None:
        src = "DFSConfig"
        self.bits = tuple(int(b) for b in self.bits)
        if len(self.bits) < 2 or len(set(self.bits)) != len(self.bits) or any(
                b != 0 and b != FULL_BITS and not 2 <= b <= 16 for b in self.bits):
            raise ConfigError(f"need >= 2 distinct widths from 0, 2..16, {FULL_BITS}; got {self.bits}", source=src,
                              field="bits")
        if not 0.0 < self.budget <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.budget}", source=src, field="budget")
        if self.bops_weight < 0:
            raise ConfigError(f"must be >= 0, got {self.bops_weight}", source=src, field="bops_weight")
        if self.tau <= 0 or (self.tau_end is not None and self.tau_end <= 0):
            raise ConfigError("temperatures must be > 0", source=src, field="tau")
        if self.gate_lr_scale <= 0:
            raise ConfigError(f"must be > 0, got {self.gate_lr_scale}", source=src, field="gate_lr_scale")

    def tau_at(self, epoch: int, epochs: int) -> float:
        """Gumbel-softmax temperature of ``epoch`` (0-based) of ``epochs``: ``tau`` annealed
        geometrically to ``tau_end`` at the last epoch."""
        if self.tau_end is None or epochs <= 1:
            return self.tau
        return self.tau * (self.tau_end / self.tau) ** (min(epoch, epochs - 1) / (epochs - 1))


def _fq_weight(w: "torch.Tensor", bits: int) -> "torch.Tensor":
    if bits >= FULL_BITS:
        return w
    return w + (quantize_int(w.detach(), bits, True, False) - w).detach()


def _fq_act(x: "torch.Tensor", bits: int) -> "torch.Tensor":
    return x if bits >= FULL_BITS else fake_quant_activation(x, bits)


class GatedBlock(nn.Module):
    """A :class:`BasicBlock` whose residual branch runs at a per-input bit width chosen by a gate."""

    def __init__(self, block: "BasicBlock", bits: tuple[int, ...], input_dependent: bool = True,
                 normalize: bool = True):
        super().__init__()
        self.block = block
        self.bits = bits
        self.input_dependent = input_dependent
        cin = block.conv1.in_channels
        self.gate = nn.Linear(cin, len(bits)) if input_dependent else None
        # centred features: the budget's batch-uniform pressure moves the bias, the weights learn what differs per input
        self.gate_norm = nn.BatchNorm1d(cin, affine=False) if input_dependent and normalize else None
        self.static_logits = None if input_dependent else nn.Parameter(torch.zeros(len(bits)))
        with torch.no_grad():  # start input-independent, at the widest width (the pretrained network)
            start = self.gate.bias if self.gate is not None else self.static_logits
            if self.gate is not None:
                self.gate.weight.zero_()
            start.zero_()
            start[max(range(len(bits)), key=lambda i: bits[i])] = 1.0
        self.tau = 1.0
        # logits - cost_shift * (b / 32)^2: set by DFS.calibrate to meet a BOPs target at inference
        self.register_buffer("cost_shift", torch.zeros(()))
        self.register_buffer("_cost", torch.tensor([(b / FULL_BITS) ** 2 for b in bits]))
        self.last_probs: "torch.Tensor | None" = None  # soft probabilities of the last forward (N x |bits|)
        self.last_choice: "torch.Tensor | None" = None  # index into bits per input
        self.macs = 0  # branch MACs per input (conv1 + conv2), set on the first forward

    def logits(self, x: "torch.Tensor") -> "torch.Tensor":
        if self.gate is not None:
            f = x.mean(dim=(2, 3))
            out = self.gate(self.gate_norm(f) if self.gate_norm is not None else f)
        else:
            assert self.static_logits is not None
            out = self.static_logits.expand(x.shape[0], -1)
        return out - self.cost_shift * self._cost if bool(self.cost_shift != 0) else out

    def branch_macs(self, h: int, w: int) -> int:
        """MACs of conv1 + conv2 for one ``h x w`` input."""
        b = self.block
        (kh, kw), (sh, sw), (ph, pw) = b.conv1.kernel_size, b.conv1.stride, b.conv1.padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        return int(b.conv1.weight.numel() * oh * ow + b.conv2.weight.numel() * oh * ow)

    def branch(self, x: "torch.Tensor", bits: int) -> "torch.Tensor":
        b = self.block
        h = F.conv2d(_fq_act(x, bits), _fq_weight(b.conv1.weight, bits), b.conv1.bias, b.conv1.stride, b.conv1.padding)
        h = F.relu(b.bn1(h))
        h = F.conv2d(_fq_act(h, bits), _fq_weight(b.conv2.weight, bits), b.conv2.bias, b.conv2.stride, b.conv2.padding)
        return b.bn2(h)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if not self.macs:
            self.macs = self.branch_macs(x.shape[2], x.shape[3])
        logits = self.logits(x)
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.tau, hard=True)
            probs = F.softmax(logits / self.tau, dim=1)
        else:
            probs = F.softmax(logits, dim=1)
            onehot = F.one_hot(logits.argmax(dim=1), len(self.bits)).to(x.dtype)
        self.last_probs, self.last_choice = probs, onehot.argmax(dim=1).detach()
        idt = x if self.block.downsample is None else self.block.downsample(x)
        out = torch.zeros_like(idt)
        for i, bits in enumerate(self.bits):
            if bits == 0:
                continue
            sel = onehot[:, i]
            if not self.training and not bool(sel.any()):
                continue
            br = self.branch(x, bits)
            out = out + sel[:, None, None, None] * br
        return F.relu(out + idt)


def gated_blocks(model: "nn.Module") -> dict[str, GatedBlock]:
    return {n: m for n, m in model.named_modules() if isinstance(m, GatedBlock)}


def plain_copy(model: "nn.Module") -> "nn.Module":
    """A copy of a DFS model with the gated blocks unwrapped (plain BasicBlocks, exportable)."""
    net = copy.deepcopy(model)
    for n in list(gated_blocks(net)):
        parent, _, child = n.rpartition(".")
        holder = net.get_submodule(parent) if parent else net
        setattr(holder, child, getattr(holder, child).block)
    return net


def sim_bits(bits: int) -> int:
    """The integer width a DFS width is exported / simulated at (full precision -> :data:`SIM_FULL_BITS`)."""
    return min(int(bits), SIM_FULL_BITS)


class DFS(Method):
    """Trains per-input bit-width gates of every residual block under a BOPs budget."""

    name = "dfs"

    def __init__(self, config: DFSConfig | None = None):
        self.cfg = config or DFSConfig()
        self.log: list[dict[str, Any]] = []
        self._model: "nn.Module | None" = None
        self._epochs = 1

    def setup(self, model: "nn.Module", config: TrainConfig) -> None:
        """Wrap every BasicBlock in a GatedBlock (deterministic: checkpoints of the wrapped model load)."""
        self._model = model
        self._epochs = config.epochs
        if gated_blocks(model):
            return
        names = [n for n, m in model.named_modules() if isinstance(m, BasicBlock)]
        if not names:
            raise ConfigError("DFS needs a residual network of BasicBlocks (e.g. build_model('resnet'))",
                              source="DFS", field="model")
        for n in names:
            parent, _, child = n.rpartition(".")
            holder = model.get_submodule(parent) if parent else model
            gb = GatedBlock(getattr(holder, child), self.cfg.bits, self.cfg.input_dependent,
                            self.cfg.normalize_gate_input)
            gb.tau = self.cfg.tau
            setattr(holder, child, gb)

    def on_epoch_start(self, model: "nn.Module", epoch: int) -> bool:
        tau = self.cfg.tau_at(epoch, self._epochs)
        for gb in gated_blocks(model).values():
            gb.tau = tau
        return False

    def optimizer_params(self, model: "nn.Module", config: TrainConfig) -> list[dict[str, Any]]:
        gate_ids = {id(p) for gb in gated_blocks(model).values()
                    for p in (gb.gate.parameters() if gb.gate is not None else [gb.static_logits])}
        gates = [p for p in model.parameters() if id(p) in gate_ids and p.requires_grad]
        rest = [p for p in model.parameters() if id(p) not in gate_ids and p.requires_grad]
        return [{"params": rest, "lr": config.lr}, {"params": gates, "lr": config.lr * self.cfg.gate_lr_scale}]

    def bops_ratio(self, model: "nn.Module", soft: bool = True) -> "torch.Tensor":
        """Mean over the last batch of ``BOPs / BOPs(all full precision)`` of the gated branches."""
        blocks = list(gated_blocks(model).values())
        cost = torch.tensor([float(b * b) for b in self.cfg.bits])
        num = den = None
        for gb in blocks:
            assert gb.last_probs is not None
            w = gb.last_probs if soft else F.one_hot(gb.last_choice, len(self.cfg.bits)).to(gb.last_probs.dtype)
            term = gb.macs * (w @ cost.to(w.dtype)).mean()
            num = term if num is None else num + term
            d = gb.macs * float(FULL_BITS * FULL_BITS)
            den = d if den is None else den + d
        assert num is not None and den
        return num / den

    def loss(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
        ce = F.cross_entropy(model(x), y)
        if self.cfg.bops_weight == 0:
            return ce
        return ce + self.cfg.bops_weight * F.relu(self.bops_ratio(model) - self.cfg.budget)

    def choices(self, model: "nn.Module", x: "torch.Tensor", batch_size: int = 256) -> dict[str, "torch.Tensor"]:
        """Per block, the bit width chosen for every input of ``x`` (eval mode, arg-max gates)."""
        was = model.training
        model.eval()
        out: dict[str, list["torch.Tensor"]] = {n: [] for n in gated_blocks(model)}
        bits = torch.tensor(self.cfg.bits)
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
                for n, gb in gated_blocks(model).items():
                    assert gb.last_choice is not None
                    out[n].append(bits[gb.last_choice])
        model.train(was)
        return {n: torch.cat(v) for n, v in out.items()}

    def bit_distribution(self, model: "nn.Module", x: "torch.Tensor") -> dict[str, dict[int, float]]:
        """Per block, the fraction of inputs of ``x`` at every bit width."""
        dist = {}
        for n, c in self.choices(model, x).items():
            dist[n] = {b: float((c == b).float().mean()) for b in self.cfg.bits}
        return dist

    def export(self, model: "nn.Module", x: "torch.Tensor", example_input: "torch.Tensor | None" = None,
               name: str = "dfs", trace: bool = True) -> Any:
        """The workload of a DFS-trained ``model`` with, on both convs of every gated block, the
        measured distribution of the widths its gate chose over the inputs ``x``
        (:class:`~accelsim.workload.compression.DynamicPrecision`; ``trace=True`` also stores the
        per-input choices, so the simulator prices the joint choice of all gates exactly).

        The convs' own ``quant`` is the widest width chosen (the report rows); full precision is
        recorded as :data:`SIM_FULL_BITS`-bit integers; ungated layers export at 8 bits."""
        from ...workload.compression import DynamicPrecision
        from .export import export_trained
        from .metrics import LayerCompression

        choices = self.choices(model, x)
        n = len(x)
        records: dict[str, LayerCompression] = {}
        dynamic: dict[str, DynamicPrecision] = {}
        for blk, ch in choices.items():
            widths = [sim_bits(int(b)) for b in ch.tolist()]
            counts: dict[int, int] = {}
            for b in widths:
                counts[b] = counts.get(b, 0) + 1
            dp = DynamicPrecision(gate=blk, bits_probability={b: counts[b] / n for b in sorted(counts)}, inputs=n,
                                  trace=widths if trace else None)
            row_bits = max(max(counts), 1)
            for conv in (f"{blk}.conv1", f"{blk}.conv2"):
                records[conv] = LayerCompression(name=conv, weight_bits=row_bits, act_bits=row_bits, scheme="int")
                dynamic[conv] = dp
        note = (f"DFS ({self.cfg.bits} bits, 0 = skipped): per-input widths measured over {n} inputs; "
                f"full precision recorded as {SIM_FULL_BITS}-bit integers; the block's residual add and its "
                "shortcut run for every input")
        ex = x[:1] if example_input is None else example_input
        return export_trained(plain_copy(model), records, ex, name=name, method="dfs", dynamic=dynamic, notes=[note])

    def calibrate(self, model: "nn.Module", x: "torch.Tensor", target: float, iters: int = 40) -> float:
        """Shift every gate's logits by ``-s * (b/32)^2`` (one ``s`` for all gates) so that the
        inference-time mean BOPs ratio over ``x`` is at most ``target`` and as close to it as the
        discrete choices allow (bisection on ``s``: the chosen widths only narrow as ``s`` grows).
        Used to compare variants at equal average BOPs; returns the ratio reached on ``x``."""
        blocks = list(gated_blocks(model).values())

        def ratio(shift: float) -> float:
            for gb in blocks:
                gb.cost_shift.fill_(shift)
            return self.mean_bops_ratio(model, x)

        lo, hi = -1.0, 1.0
        while ratio(lo) <= target and lo > -1e6:
            lo *= 4
        while ratio(hi) > target and hi < 1e6:
            hi *= 4
        for _ in range(iters):
            mid = (lo + hi) / 2
            if ratio(mid) > target:
                lo = mid
            else:
                hi = mid
        return ratio(hi)

    def mean_bops_ratio(self, model: "nn.Module", x: "torch.Tensor") -> float:
        """Average over ``x`` of the hard-choice BOPs ratio (inference)."""
        blocks = gated_blocks(model)
        ch = self.choices(model, x)
        num = sum(gb.macs * float((ch[n].double() ** 2).mean()) for n, gb in blocks.items())
        return num / sum(gb.macs * FULL_BITS ** 2 for gb in blocks.values())

    def on_epoch_end(self, model: "nn.Module", epoch: int, log: dict[str, Any]) -> bool:
        with torch.no_grad():
            log["bops_ratio_soft"] = float(self.bops_ratio(model))
        self.log.append({k: log[k] for k in ("epoch", "test_acc", "bops_ratio_soft") if k in log})
        return False

    def info(self) -> dict[str, Any]:
        return {"log": self.log}

    def state_dict(self) -> dict[str, Any]:
        return {"log": self.log}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log = list(state["log"])


__all__ = ["DFS", "DFSConfig", "GatedBlock", "gated_blocks", "plain_copy", "sim_bits", "FULL_BITS", "SIM_FULL_BITS"]
