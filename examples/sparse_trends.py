"""Side-by-side sparse-engine experiment (the tables in docs/sparse_engines.md).

1. Gather-scatter engine: GS patterns vs unstructured (CSR) vs block vs N:M at *equal
   sparsity*, on the GS paper's workloads (ResNet-50, GNMT, Jasper), on two design points
   (``gather_scatter_sve128``: 8 lanes, 16 banks, sorted format; ``gather_scatter_sve512_banked``:
   32 lanes, 64 banks, bank-aware packing).
   Each model also runs dense on the engine's systolic peer (``accelsim.hardware.peers.dense_peer``).
2. SmartExchange accelerator vs its dense peer (``dense_peer``: a systolic array of equal PE count,
   SRAM and DRAM on searched mappings; also in SCALE-Sim fold order, paying fill/drain per fold,
   against SmartExchange paying the same per tile), on ResNet-50, MobileNetV2 and VGG-16, with
   the energy breakdown.
3. The sparse systolic array's options on ResNet-50.

Masks are synthetic and seeded (``accelsim.workload.masks.synthetic_mask``): i.i.d. positions for
unstructured, random kept blocks, random N:M choices, equal counts per row for GS. ResNet-50 runs
with real masks through the numba kernels; GNMT and Jasper (127 M and 330 M weights) use the
engine's expectation mode, which the tests show agrees with i.i.d. masks within 3 %.

    /work/venv/bin/python examples/sparse_trends.py            # all three parts (~7 min on 2 shared cores)
    /work/venv/bin/python examples/sparse_trends.py --part 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import accelsim
from accelsim.errors import ConfigError
from accelsim.workload.masks import expected_mask_shape, synthetic_mask
from accelsim.hardware import load_hardware
from accelsim.hardware.peers import dense_peer, with_tile_overheads
from accelsim.workload import Conv2d, Elementwise, LayerBase, Workload
from accelsim.workload.compression import Compression, Factorization, Sparsity
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hw_configs"
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))
from _progress import Progress  # noqa: E402  (a line per step on stderr)

PROGRESS = Progress()


# --- workloads ----------------------------------------------------------------------------------

def jasper(frames: int = 1000, mels: int = 64, vocab: int = 29) -> Workload:
    """Jasper 10x5 (Li et al., "Jasper: An End-to-End Convolutional Neural Acoustic Model",
    arXiv 1904.03288, Table 1): prologue conv 11/256 stride 2; 10 blocks of 5 sub-blocks with
    kernels 11,11,13,13,17,17,21,21,25,25 and 256,256,384,384,512,512,640,640,768,768 channels;
    epilogue conv 29/896 dilation 2, conv 1/1024, conv 1/vocab. A 1-D convolution over time is a
    Conv2d with time as the height and width 1 (so line buffers hold time steps). Residuals are modelled BxR-style (one 1x1 projection per block); the dense-residual
    variant adds more 1x1 projections (not modelled). ``frames`` = 10 ms frames of audio (1000 = 10 s).
    """
    layers: list[LayerBase] = []
    t = frames

    def conv(name: str, cin: int, cout: int, k: int, stride: int = 1, dil: int = 1) -> None:
        nonlocal t
        pad = dil * (k - 1) // 2
        layers.append(Conv2d(name=name, in_channels=cin, out_channels=cout, in_h=t, in_w=1, kernel_h=k, kernel_w=1,
                             stride_h=stride, stride_w=1, pad_h=pad, pad_w=0, dilation_h=dil, dilation_w=1))
        t = layers[-1].out_h  # type: ignore[attr-defined]

    conv("prologue", mels, 256, 11, stride=2)
    cin = 256
    spec = list(zip([11, 11, 13, 13, 17, 17, 21, 21, 25, 25], [256, 256, 384, 384, 512, 512, 640, 640, 768, 768]))
    for b, (k, c) in enumerate(spec):
        block_in = cin
        for s in range(5):
            conv(f"b{b + 1}.{s}", cin, c, k)
            cin = c
        conv(f"b{b + 1}.res", block_in, c, 1)
        layers.append(Elementwise(name=f"b{b + 1}.add", elements=c * t, num_inputs=2))
    conv("epilogue.0", cin, 896, 29, dil=2)
    conv("epilogue.1", 896, 1024, 1)
    conv("epilogue.2", 1024, vocab, 1)
    return Workload(name="jasper", layers=layers, description=f"Jasper 10x5 (BxR residuals), {frames} frames",
                    source="arXiv 1904.03288")


def sparsify(wl: Workload, sp: Sparsity | None, *, masks: bool, seed: int = 0, row_scale_sigma: float = 0.0) -> Workload:
    """Every weight layer gets ``sp``; with ``masks`` a seeded synthetic mask each."""
    if sp is None:
        return wl
    layers, arrays = [], {}
    for i, lay in enumerate(wl.layers):
        if expected_mask_shape(lay) is not None:
            lay = lay.model_copy(update={"compression": Compression(sparsity=sp)})
            if masks:
                arrays[lay.name] = synthetic_mask(lay, seed=seed + i, row_scale_sigma=row_scale_sigma)
                s = sp.model_copy(update={"mask": lay.name})
                if sp.kind == "block":  # few large blocks cannot hit the density exactly: declare what the mask has
                    s = s.model_copy(update={"density": float(arrays[lay.name].mean())})
                lay = lay.model_copy(update={"compression": Compression(sparsity=s)})
        layers.append(lay)
    out = wl.with_layers(layers)
    if masks:
        out.attach_masks(arrays)
    return out


# --- part 1: gather-scatter ------------------------------------------------------------------

def patterns(density: float, lanes: int) -> list[tuple[str, Sparsity | None, float]]:
    m = int(round(1 / density))
    return [
        ("dense", None, 0.0),
        ("unstructured (CSR)", Sparsity(kind="unstructured", density=density), 0.0),
        ("unstructured, skewed rows", Sparsity(kind="unstructured", density=density), 0.5),
        ("block 8x8", Sparsity(kind="block", density=density, block_h=8, block_w=8), 0.0),
        (f"block {lanes}x1 (= vector width)", Sparsity(kind="block", density=density, block_h=lanes, block_w=1), 0.0),
        (f"N:M 1:{m}", Sparsity(kind="nm", n=1, m=m, density=1 / m), 0.0),
        (f"GS (G = V = {lanes})", Sparsity(kind="gs", density=density, gs_group_rows=lanes), 0.0),
    ]


def part_gs(densities: tuple[float, ...] = (0.25, 0.125)) -> None:
    models = [("ResNet-50", get_model("resnet50"), True), ("GNMT", get_model("gnmt"), False), ("Jasper", jasper(), False)]
    for hw_name in ("gather_scatter_sve128", "gather_scatter_sve512_banked"):
        hw = load_hardware(HW / f"{hw_name}.yaml")
        print(f"\n### Gather-scatter engine `{hw_name}` ({hw.lanes} lanes, {hw.banks} banks, "
              f"pack_for_banks={hw.pack_for_banks})\n")
        print("| workload | density | pattern | masks | latency Mcycles | speedup vs dense | lane util | "
              "bank-conflict share | weight+index DRAM MB | energy mJ |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        peer = dense_peer(hw)
        for mname, wl, real in models:
            dense = accelsim.simulate(wl, hw, compare_dense=False)
            PROGRESS.step(f"part 1, {hw_name}: {mname} dense")
            try:
                prep = accelsim.simulate(wl, peer, compare_dense=False)
            except ConfigError as exc:  # e.g. a size bound of the systolic engine (docs/workload_format.md)
                print(f"| {mname} | 1.0 | dense on the systolic peer (1x{hw.lanes}, searched) | - | "
                      f"refused: {str(exc).split(': ', 1)[-1]} | - | - | - | - | - |")
            else:
                print(f"| {mname} | 1.0 | dense on the systolic peer (1x{hw.lanes}, searched) | - | "
                      f"{prep.latency_cycles / 1e6:,.1f} | {dense.latency_cycles / prep.latency_cycles:.2f}x | - | - | "
                      f"{sum(s.dram_read_bytes_by_operand.get('filter', 0) for s in prep.layers) / 1e6:,.1f} | "
                      f"{prep.energy_pj / 1e9:,.2f} |")
            PROGRESS.step(f"part 1, {hw_name}: {mname} on the dense systolic peer")
            for d in densities:
                for label, sp, sigma in patterns(d, hw.lanes):
                    if sp is None and d != densities[0]:
                        continue
                    if sigma and not real:
                        continue
                    w = sparsify(wl, sp, masks=real, row_scale_sigma=sigma)
                    rep = dense if sp is None else accelsim.simulate(w, hw, compare_dense=False)
                    PROGRESS.step(f"part 1, {hw_name}: {mname} {label} at density {d:g}")
                    lat = rep.latency_cycles
                    mac_layers = [s for s in rep.layers if s.macs]
                    instr = sum(s.extra.get("vector_instructions", 0.0) for s in mac_layers)
                    util = sum(s.macs for s in mac_layers) / (instr * hw.lanes) if instr else 0.0
                    conflict = sum(s.extra.get("bank_conflict_cycles", 0.0) for s in mac_layers)
                    comp = sum(s.compute_cycles for s in mac_layers)
                    wbytes = sum(s.dram_read_bytes_by_operand.get("filter", 0) + s.dram_read_bytes_by_operand.get("index", 0)
                                 for s in rep.layers)
                    print(f"| {mname} | {'1.0' if sp is None else f'{sp.effective_density:.3f}'} | {label} | "
                          f"{'real' if real and sp is not None else 'expected' if sp is not None else '-'} | "
                          f"{lat / 1e6:,.1f} | {dense.latency_cycles / lat:.2f}x | {util:.2f} | "
                          f"{conflict / comp if comp else 0:.1%} | {wbytes / 1e6:,.1f} | {rep.energy_pj / 1e9:,.2f} |")


# --- part 2: SmartExchange vs dense systolic -----------------------------------------------------

def se_workload(wl: Workload, ce_density: float, *, channel_wise: float = 0.0, seed: int = 0) -> Workload:
    """SmartExchange records on every conv/linear layer.

    ``channel_wise`` > 0: exported Ce arrays in which that fraction of input channels is zero for
    the whole layer (SmartExchange's channel-wise sparsity) and the other Ce entries are kept with
    the density that brings the layer to ``ce_density``.
    """
    fac = Factorization(kind="smartexchange", basis_size=3, ce_density=ce_density, ce_bits=4, basis_bits=8)
    rng = np.random.default_rng(seed)
    layers, arrays = [], {}
    for lay in wl.layers:
        if lay.op in ("conv2d", "linear"):
            sp = Sparsity()
            if channel_wise:
                shape = expected_mask_shape(lay)
                assert shape is not None
                out, k = shape[0], int(np.prod(shape[1:]))
                r = -(-k // 3)
                per_c = int(np.prod(shape[2:])) if len(shape) == 4 else 1
                cin = shape[1]
                keep_c = rng.random(cin) >= channel_wise
                if not keep_c.any():
                    keep_c[0] = True
                inner = min(1.0, ce_density / keep_c.mean())
                ce = (rng.random((out, r, 3)) < inner).astype(np.int8)
                weight_ok = np.repeat(keep_c, per_c)  # natural flattening: channel-major
                piece_ok = np.zeros(r, dtype=bool)
                for p in range(r):
                    piece_ok[p] = weight_ok[3 * p: 3 * p + 3].any()
                ce[:, ~piece_ok, :] = 0
                mask = np.repeat((ce != 0).any(axis=2), 3, axis=1)[:, :k].reshape(shape).astype(np.uint8)
                key = lay.name
                arrays[key], arrays[f"{key}.se_ce"] = mask, ce
                sp = Sparsity(kind="unstructured", density=float(mask.mean()), mask=key) if mask.mean() < 1 else Sparsity()
                if mask.mean() >= 1:
                    del arrays[key]
            lay = lay.model_copy(update={"compression": Compression(sparsity=sp, factorization=fac)})
        layers.append(lay)
    out_wl = wl.with_layers(layers)
    if arrays:
        out_wl.attach_masks(arrays)
    return out_wl


def _breakdown(rep: accelsim.Report) -> dict[str, float]:
    e: dict[str, float] = {}
    for s in rep.layers:
        for comp, v in s.energy_by_component_pj.items():
            key = ("sram" if comp.endswith(("_sram", "_buffer")) else comp)
            key = "mac+pe_rf" if key in ("mac", "pe_rf") else key
            e[key] = e.get(key, 0.0) + v
    return e


def part_se() -> None:
    se = load_hardware(HW / "smartexchange_32x32.yaml")
    sy = dense_peer(se)  # equal to hw_configs/systolic_32x32_os_256kb.yaml (tests/test_peers.py)
    fold = sy.model_copy(update={"mapping": "scalesim"})
    se_ovh = with_tile_overheads(se)
    print(f"\n### SmartExchange `{se.name}` vs its dense peer `{sy.name}` ({se.num_pes} PEs each, "
          f"{se.total_sram_kb:g} KB SRAM each, same DRAM; speedup and energy eff. vs the peer on searched "
          "mappings)\n")
    print("| workload | hardware / model | latency Mcycles | speedup | energy mJ | energy eff. | MAC+RF mJ | "
          "decoder mJ | SRAM mJ | DRAM mJ | static mJ | DRAM MB | decode Mcycles |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mname in ("resnet50", "mobilenet_v2", "vgg16"):
        wl = get_model(mname)
        runs = [("systolic peer, searched, dense int8", sy, wl),
                (f"systolic peer, fold order (fill/drain per fold), dense int8", fold, wl),
                ("SE hw, dense int8", se, wl),
                (f"SE hw, dense int8, {se_ovh.tile_overhead_cycles} cycles per tile", se_ovh, wl),
                ("SE hw, Ce 0.5 (i.i.d.)", se, se_workload(wl, 0.5)),
                ("SE hw, Ce 0.25 (i.i.d.)", se, se_workload(wl, 0.25))]
        if mname != "vgg16":
            runs.append(("SE hw, Ce 0.25, 50% channel-wise", se, se_workload(wl, 0.25, channel_wise=0.5)))
        base = None
        for label, hw, w in runs:
            rep = accelsim.simulate(w, hw, compare_dense=False)
            PROGRESS.step(f"part 2: {mname} on {label}")
            base = base or rep
            b = _breakdown(rep)
            dram_mb = sum(s.dram_read_bytes + s.dram_write_bytes for s in rep.layers) / 1e6
            dec = sum(s.extra.get("decode_cycles", 0.0) for s in rep.layers)
            print(f"| {mname} | {label} | {rep.latency_cycles / 1e6:.2f} | {base.latency_cycles / rep.latency_cycles:.2f}x | "
                  f"{rep.energy_pj / 1e9:.2f} | {base.energy_pj / rep.energy_pj:.2f}x | {b.get('mac+pe_rf', 0) / 1e9:.2f} | "
                  f"{b.get('decoder', 0) / 1e9:.3f} | {b.get('sram', 0) / 1e9:.2f} | {b.get('dram', 0) / 1e9:.2f} | "
                  f"{b.get('static', 0) / 1e9:.3f} | {dram_mb:.1f} | {dec / 1e6:.2f} |")


# --- part 3: sparse systolic -------------------------------------------------------------------

def part_systolic() -> None:
    dense_hw = load_hardware(HW / "systolic_32x32_os_256kb.yaml")
    hw = load_hardware(HW / "systolic_32x32_os_sparse.yaml")
    wl = get_model("resnet50")
    print(f"\n### Sparse systolic `{hw.name}` on ResNet-50 (real masks)\n")
    print("| weights | latency Mcycles | speedup vs dense array | executed GMACs | energy mJ | index DRAM MB |")
    print("|---|---|---|---|---|---|")
    base = accelsim.simulate(wl, dense_hw)
    PROGRESS.step("part 3: ResNet-50 dense")
    print(f"| dense | {base.latency_cycles / 1e6:.2f} | 1.00x | {base.macs / 1e9:.2f} | {base.energy_pj / 1e9:.2f} | 0.0 |")
    for label, sp in (("unstructured 0.25, zero skipping", Sparsity(kind="unstructured", density=0.25)),
                      ("2:4 on the 2:4 datapath", Sparsity(kind="nm", n=2, m=4, density=0.5)),
                      ("block 32x32 at 0.25, block skipping", Sparsity(kind="block", density=0.25, block_h=32, block_w=32))):
        rep = accelsim.simulate(sparsify(wl, sp, masks=True), hw, compare_dense=False)
        PROGRESS.step(f"part 3: ResNet-50 {label}")
        idx = sum(s.dram_read_bytes_by_operand.get("index", 0) for s in rep.layers)
        print(f"| {label} | {rep.latency_cycles / 1e6:.2f} | {base.latency_cycles / rep.latency_cycles:.2f}x | "
              f"{rep.macs / 1e9:.2f} | {rep.energy_pj / 1e9:.2f} | {idx / 1e6:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", type=int, choices=(1, 2, 3), help="run one part only")
    args = ap.parse_args()
    t = time.perf_counter()
    if args.part in (None, 1):
        part_gs()
    if args.part in (None, 2):
        part_se()
    if args.part in (None, 3):
        part_systolic()
    print(f"\n(ran in {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
