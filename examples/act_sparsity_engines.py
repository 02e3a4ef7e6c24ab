"""Activation sparsity on the gather-scatter, SmartExchange and crossbar engines (the table in
docs/sparse_engines.md, section "Zero activations"; GS/SE/crossbar rows only).

ResNet-50 (batch 1) with every layer but the first given input-activation density ``d``
(statistical: uniform i.i.d. zeros); for each engine the latency and energy with
``sparsity.compute`` ``gate`` / ``skip`` on inputs relative to ``none`` (which ignores the zeros
and notes it). Then the actual-mask path: seeded random activation masks (one input per layer)
attached to the workload, and the warm time of one simulation; last, the activation DRAM traffic per input format.

    /work/venv/bin/python examples/act_sparsity_engines.py          # ~1 min
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import accelsim
from accelsim.engines.base import lower_layer
from accelsim.workload import Conv2d, Linear, Workload
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hw_configs"
ENGINES = ("gather_scatter_sve128", "smartexchange_32x32", "isaac_like")
DENSITIES = (0.2, 0.4, 0.6, 0.8)


def with_act_density(wl: Workload, d: float) -> Workload:
    """Every weight layer but the first reads activations of density ``d``."""
    first = True
    layers = []
    for layer in wl.layers:
        if isinstance(layer, (Conv2d, Linear)):
            if not first:
                layer = layer.model_copy(update={"compression": layer.compression.model_copy(update={"act_density": d})})
            first = False
        layers.append(layer)
    return wl.with_layers(layers)


#: each engine's input buffer level in its ``sparsity:`` block
INPUT_BUFFER = {"gather_scatter_sve128": "scratchpad", "smartexchange_32x32": "act_buffer", "isaac_like": "tile_buffer"}


def hardware(name: str, action: str, fmt: str = "uncompressed"):  # type: ignore[no-untyped-def]
    """A shipped config whose compute ``action`` acts on zero inputs, inputs stored in ``fmt`` in
    DRAM and the input buffer."""
    hw = accelsim.load_hardware(HW / f"{name}.yaml")
    levels = {lvl: {"format": {"inputs": fmt}} for lvl in ("dram", INPUT_BUFFER[name])} if fmt != "uncompressed" else {}
    block = type(hw.sparsity).model_validate({"compute": {"action": action, "on_zeros": "inputs"}, "levels": levels})
    return hw.model_copy(update={"sparsity": block})


def run(wl: Workload, hw) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    r = accelsim.simulate(wl, hw, compare_dense=False)
    return r.latency_cycles, r.energy_pj


def trends() -> None:
    base = get_model("resnet50")
    print("ResNet-50, latency / energy relative to compute action 'none' at the same density")
    print(f"{'engine':24s} {'d':>4s} {'gate lat':>9s} {'gate E':>7s} {'skip lat':>9s} {'skip E':>7s}")
    for name in ENGINES:
        hws = {a: hardware(name, a) for a in ("none", "gate", "skip")}
        for d in DENSITIES:
            wl = with_act_density(base, d)
            got = {a: run(wl, h) for a, h in hws.items()}
            (ln, en), (lg, eg), (ls, es) = got["none"], got["gate"], got["skip"]
            print(f"{name:24s} {d:4.1f} {lg / ln:9.3f} {eg / en:7.3f} {ls / ln:9.3f} {es / en:7.3f}")


def actual_masks(d: float = 0.4, seed: int = 0) -> None:
    wl = with_act_density(get_model("resnet50"), d)
    rng = np.random.default_rng(seed)
    masks = {}
    layers = []
    for layer in wl.layers:
        shape = None
        if isinstance(layer, Conv2d) and layer.compression.act_density < 1.0:
            shape = (layer.in_channels, layer.in_h, layer.in_w)
        elif isinstance(layer, Linear) and layer.compression.act_density < 1.0:
            shape = (layer.in_features,)
        if shape is not None:
            key = f"{layer.name}.act"
            masks[key] = rng.random(shape) < d
            layer = layer.model_copy(update={"compression": layer.compression.model_copy(update={"act_mask": key})})
        layers.append(layer)
    wl = wl.with_layers(layers)
    wl.attach_masks(masks)
    print(f"\nResNet-50 with real activation masks (density {d}, one input per layer): statistical vs actual, "
          "and warm time of one simulation")
    stat_wl = with_act_density(get_model("resnet50"), d)
    for name in ENGINES:
        hw = hardware(name, "skip")
        run(wl, hw)  # warm (numba compile, caches)
        t0 = time.perf_counter()
        la, ea = run(wl, hw)
        dt = time.perf_counter() - t0
        ls, es = run(stat_wl, hw)
        print(f"{name:24s} latency actual/stat {la / ls:6.3f}  energy actual/stat {ea / es:6.3f}  warm {dt:5.2f} s")


def input_formats(d: float = 0.4) -> None:
    """DRAM read traffic (activation payload + metadata, and weights: SmartExchange may change its
    loop order when the inputs shrink) of the conv/linear layers at density ``d`` per input
    format, relative to uncompressed, with compute ``skip``."""
    wl = with_act_density(get_model("resnet50"), d)
    sparse = [layer for layer in wl.layers if isinstance(layer, (Conv2d, Linear)) and layer.compression.act_density < 1]
    fmts = ("bitmask", "run_length", "coordinate_payload")
    print(f"\nResNet-50, conv/linear layers at density {d}: DRAM read bits "
          "(activations incl. metadata, weights) relative to uncompressed inputs")
    print(f"{'engine':24s} " + " ".join(f"{f:>18s}" for f in fmts))

    def act_bits(hw) -> int:  # type: ignore[no-untyped-def]
        progs = (lower_layer(layer, hw, wl) for layer in sparse)
        return sum(sum(p.dram_read_bits.values()) for p in progs)

    for name in ENGINES:
        plain = act_bits(hardware(name, "skip"))
        cells = [f"{act_bits(hardware(name, 'skip', f)) / plain:18.3f}" if plain else f"{'no DRAM reads':>18s}" for f in fmts]
        print(f"{name:24s} " + " ".join(cells))


if __name__ == "__main__":
    trends()
    actual_masks()
    input_formats()
