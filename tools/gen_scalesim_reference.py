#!/usr/bin/env python
"""Run the real SCALE-Sim 3.0.0 on a list of small new cases and record the results.

Usage (SCALE-Sim lives in its own venv, with numpy 1.26):

    /tmp/ssvenv/bin/python tools/gen_scalesim_reference.py            # all missing cases
    /tmp/ssvenv/bin/python tools/gen_scalesim_reference.py --list     # show the case list
    /tmp/ssvenv/bin/python tools/gen_scalesim_reference.py --cases a,b --redo

Every case runs in its own subprocess (one at a time) under a timeout, through SCALE-Sim's Python
API with ``save_disk_space=True`` (no trace files).  Results are appended to
``tests/data/scalesim_extra/scalesim_user_extra.csv`` as soon as a case finishes, so an
interrupted run can be resumed; the .cfg of every case is written to
``tests/data/scalesim_extra/configs/<case>.cfg``.  ``scalesim_seconds`` is the wall time of
``scalesim.run_scale`` alone (process start-up and imports excluded).

Config conventions (see tests/data/reference/scalesim_notes.md): in USER mode SCALE-Sim fills the
ifmap / filter SRAMs at ``[layout] IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth`` words per
cycle and drains the ofmap at ``Bandwidth`` (first value); bank count is set to 1 so any bandwidth
is accepted; custom layouts, sparsity and Ramulator traces are off.  GEMM cases run through
SCALE-Sim's GEMM input path (``input_type_gemm=True``), conv cases through the conv path.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT_DIR = os.path.join(ROOT, "tests", "data", "scalesim_extra")
CSV_NAME = "scalesim_user_extra.csv"
LAYOUT_CSV = os.path.join(ROOT, "tests", "data", "reference", "scalesim_topologies", "layout_test.csv")

COLUMNS = [
    "case", "dataflow", "rows", "cols", "ifmap_kb", "filter_kb", "ofmap_kb", "bw_mode",
    "ofmap_bw", "ifmap_bw", "filter_bw", "is_gemm", "ifmap_h", "ifmap_w", "filter_h", "filter_w",
    "channels", "num_filters", "stride", "compute_cycles", "stall_cycles", "total_cycles",
    "overall_util", "mapping_eff", "compute_util",
    "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
    "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes",
    "dram_ifmap_start", "dram_filter_start", "dram_ofmap_stop",
    "scalesim_seconds", "scalesim_version",
]


@dataclass
class Case:
    case: str
    dataflow: str
    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    bw_mode: str  # USER | CALC
    ofmap_bw: int
    ifmap_bw: int
    filter_bw: int
    # layer (conv row of a topology CSV); GEMMs are M x K ifmap, 1 x K filter, 1 channel, N filters
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int
    is_gemm: bool = False


def conv(h, w, r, s, c, n, stride):
    return dict(ifmap_h=h, ifmap_w=w, filter_h=r, filter_w=s, channels=c, num_filters=n,
                stride=stride, is_gemm=False)


def gemm(m, n, k):
    return dict(ifmap_h=m, ifmap_w=k, filter_h=1, filter_w=k, channels=1, num_filters=n,
                stride=1, is_gemm=True)


# Small layers (SCALE-Sim steps one demand row at a time in Python, so keep them short).
LAYERS = {
    "c3x3s1": conv(16, 16, 3, 3, 8, 16, 1),      # 14x14 ofmap, K=72
    "c3x3s2": conv(15, 15, 3, 3, 4, 8, 2),       # 7x7, K=36
    "c1x1s2": conv(14, 14, 1, 1, 16, 32, 2),     # 8x8 (rounded up: last row/col off the edge)
    "c5x5s1": conv(20, 20, 5, 5, 3, 8, 1),       # 16x16, K=75
    "c7x7s2": conv(23, 23, 7, 7, 3, 16, 2),      # 9x9, K=147
    "c3x3deep": conv(12, 12, 3, 3, 32, 24, 1),   # 10x10, K=288
    "c3x3wide": conv(9, 9, 3, 3, 64, 64, 1),     # 7x7, K=576
    "c1x1s1": conv(28, 28, 1, 1, 8, 16, 1),      # 28x28, K=8
    "c3x3s2odd": conv(18, 13, 3, 3, 6, 20, 2),   # 8x6, K=54
    "g48x40x96": gemm(48, 40, 96),
    "g100x20x60": gemm(100, 20, 60),
    "g16x256x32": gemm(16, 256, 32),
    "g1x256x128": gemm(1, 256, 128),
    "g200x50x30": gemm(200, 50, 30),
    "g96x96x96": gemm(96, 96, 96),
    "g50x80x50": gemm(50, 80, 50),               # filter 4000 words: just over half of 6 KB
    "c3x3mid": conv(30, 30, 3, 3, 32, 32, 1),    # 28x28, K=288 (speed-up reference)
}


def _c(name, layer, df, rows, cols, kb, bws, mode="USER"):
    ikb, fkb, okb = kb if isinstance(kb, tuple) else (kb, kb, kb)
    ibw, fbw, obw = bws if isinstance(bws, tuple) else (bws, bws, bws)
    return Case(case=name, dataflow=df, rows=rows, cols=cols, ifmap_kb=ikb, filter_kb=fkb,
                ofmap_kb=okb, bw_mode=mode, ofmap_bw=obw, ifmap_bw=ibw, filter_bw=fbw,
                **LAYERS[layer])


def build_cases():
    cases = []
    add = cases.append
    # --- os -------------------------------------------------------------------------------
    add(_c("os_8x8_c3x3s1_s4_bw3", "c3x3s1", "os", 8, 8, 4, 3))
    add(_c("os_16x16_c5x5s1_s2_bw1", "c5x5s1", "os", 16, 16, 2, 1))
    add(_c("os_8x32_c7x7s2_s8_bw5", "c7x7s2", "os", 8, 32, 8, 5))
    add(_c("os_64x16_c1x1s2_s16_bw20", "c1x1s2", "os", 64, 16, 16, 20))
    add(_c("os_32x64_c3x3deep_s64_bw7", "c3x3deep", "os", 32, 64, 64, 7))
    add(_c("os_16x16_c3x3wide_s6_bw12", "c3x3wide", "os", 16, 16, (6, 3, 2), (12, 5, 3)))
    add(_c("os_12x20_g48x40x96_s3_bw2", "g48x40x96", "os", 12, 20, 3, 2))
    add(_c("os_8x8_g100x20x60_s32_bw8", "g100x20x60", "os", 8, 8, 32, 8))
    add(_c("os_16x8_c3x3s2odd_s2_bw1", "c3x3s2odd", "os", 16, 8, 2, (1, 2, 1)))
    add(_c("os_24x12_g200x50x30_s5_bw16", "g200x50x30", "os", 24, 12, (5, 12, 3), (16, 3, 6)))
    add(_c("os_16x16_g96x96x96_s12_bw4", "g96x96x96", "os", 16, 16, 12, 4))
    add(_c("os_8x16_c1x1s1_s2_bw2", "c1x1s1", "os", 8, 16, 2, 2))
    add(_c("os_32x32_g1x256x128_s4_bw3", "g1x256x128", "os", 32, 32, 4, 3))
    add(_c("os_8x8_c3x3s2_s64_bw10_free", "c3x3s2", "os", 8, 8, 64, 10))
    # --- ws -------------------------------------------------------------------------------
    add(_c("ws_8x8_c3x3s1_s4_bw3", "c3x3s1", "ws", 8, 8, 4, 3))
    add(_c("ws_16x16_c5x5s1_s2_bw1", "c5x5s1", "ws", 16, 16, 2, 1))
    add(_c("ws_8x32_c7x7s2_s8_bw5", "c7x7s2", "ws", 8, 32, 8, 5))
    add(_c("ws_64x16_c1x1s2_s16_bw20", "c1x1s2", "ws", 64, 16, 16, 20))
    add(_c("ws_32x64_c3x3deep_s32_bw7", "c3x3deep", "ws", 32, 64, 32, 7))
    add(_c("ws_16x16_c3x3wide_s6_bw12", "c3x3wide", "ws", 16, 16, (6, 3, 2), (12, 5, 3)))
    add(_c("ws_12x20_g48x40x96_s3_bw2", "g48x40x96", "ws", 12, 20, 3, 2))
    add(_c("ws_8x8_g100x20x60_s32_bw8", "g100x20x60", "ws", 8, 8, 32, 8))
    add(_c("ws_16x8_c3x3s2odd_s2_bw1", "c3x3s2odd", "ws", 16, 8, 2, (1, 2, 1)))
    add(_c("ws_24x12_g200x50x30_s5_bw16", "g200x50x30", "ws", 24, 12, (5, 12, 3), (16, 3, 6)))
    add(_c("ws_16x16_g16x256x32_s6_bw3", "g16x256x32", "ws", 16, 16, 6, 3))
    add(_c("ws_8x16_c1x1s1_s2_bw2", "c1x1s1", "ws", 8, 16, 2, 2))
    add(_c("ws_32x32_g1x256x128_s4_bw3", "g1x256x128", "ws", 32, 32, 4, 3))
    add(_c("ws_8x8_c3x3s2_s64_bw10_free", "c3x3s2", "ws", 8, 8, 64, 10))
    # --- is -------------------------------------------------------------------------------
    add(_c("is_8x8_c3x3s1_s4_bw3", "c3x3s1", "is", 8, 8, 4, 3))
    add(_c("is_16x16_c5x5s1_s2_bw1", "c5x5s1", "is", 16, 16, 2, 1))
    add(_c("is_8x32_c7x7s2_s8_bw5", "c7x7s2", "is", 8, 32, 8, 5))
    add(_c("is_64x16_c1x1s2_s16_bw20", "c1x1s2", "is", 64, 16, 16, 20))
    add(_c("is_32x64_c3x3deep_s32_bw7", "c3x3deep", "is", 32, 64, 32, 7))
    add(_c("is_16x16_c3x3wide_s6_bw12", "c3x3wide", "is", 16, 16, (6, 3, 2), (12, 5, 3)))
    add(_c("is_12x20_g48x40x96_s3_bw2", "g48x40x96", "is", 12, 20, 3, 2))
    add(_c("is_8x8_g100x20x60_s32_bw8", "g100x20x60", "is", 8, 8, 32, 8))
    add(_c("is_16x8_c3x3s2odd_s2_bw1", "c3x3s2odd", "is", 16, 8, 2, (1, 2, 1)))
    add(_c("is_24x12_g200x50x30_s5_bw16", "g200x50x30", "is", 24, 12, (5, 12, 3), (16, 3, 6)))
    add(_c("is_16x16_g16x256x32_s6_bw3", "g16x256x32", "is", 16, 16, 6, 3))
    add(_c("is_8x16_c1x1s1_s2_bw2", "c1x1s1", "is", 8, 16, 2, 2))
    add(_c("is_32x32_g1x256x128_s4_bw3", "g1x256x128", "is", 32, 32, 4, 3))
    add(_c("is_8x8_c3x3s2_s64_bw10_free", "c3x3s2", "is", 8, 8, 64, 10))
    # --- ofmap drain bound, partial prefetch windows, larger layers ---------------------------
    add(_c("ws_16x16_c3x3s1_o2_obw1", "c3x3s1", "ws", 16, 16, (64, 64, 2), (20, 20, 1)))
    add(_c("os_8x8_g100x20x60_o2_obw1", "g100x20x60", "os", 8, 8, (32, 32, 2), (8, 8, 1)))
    add(_c("is_32x16_c1x1s1_o3_obw2", "c1x1s1", "is", 32, 16, (16, 16, 3), (10, 10, 2)))
    add(_c("os_16x16_g50x80x50_s6_bw2", "g50x80x50", "os", 16, 16, 6, 2))
    add(_c("ws_16x16_g50x80x50_s6_bw2", "g50x80x50", "ws", 16, 16, 6, 2))
    add(_c("is_16x16_g50x80x50_s6_bw2", "g50x80x50", "is", 16, 16, 6, 2))
    add(_c("os_16x16_c3x3mid_s8_bw4", "c3x3mid", "os", 16, 16, 8, 4))
    add(_c("ws_32x32_c3x3mid_s16_bw6", "c3x3mid", "ws", 32, 32, 16, 6))
    add(_c("is_16x32_c3x3mid_s8_bw9", "c3x3mid", "is", 16, 32, 8, 9))
    # --- CALC mode twins (stall must be 0; cycles/SRAM counts = closed forms) ------------------
    add(_c("calc_os_8x32_c7x7s2", "c7x7s2", "os", 8, 32, 8, 5, mode="CALC"))
    add(_c("calc_os_12x20_g48x40x96", "g48x40x96", "os", 12, 20, 3, 2, mode="CALC"))
    add(_c("calc_ws_16x16_c5x5s1", "c5x5s1", "ws", 16, 16, 2, 1, mode="CALC"))
    add(_c("calc_ws_24x12_g200x50x30", "g200x50x30", "ws", 24, 12, (5, 12, 3), (16, 3, 6), mode="CALC"))
    add(_c("calc_is_16x8_c3x3s2odd", "c3x3s2odd", "is", 16, 8, 2, (1, 2, 1), mode="CALC"))
    add(_c("calc_is_32x64_c3x3deep", "c3x3deep", "is", 32, 64, 32, 7, mode="CALC"))
    cases += random_cases()
    return cases


def _demand_rows_and_sram(c: Case):
    """Closed-form demand rows / SRAM accesses (to keep the random cases cheap to run)."""
    oh = -(-(c.ifmap_h - c.filter_h + c.stride) // c.stride)
    ow = -(-(c.ifmap_w - c.filter_w + c.stride) // c.stride)
    m, k, n = oh * ow, c.filter_h * c.filter_w * c.channels, c.num_filters
    r, q = c.rows, c.cols
    if c.dataflow == "os":
        rows = -(-m // r) * -(-n // q) * (k + r + q - 2)
        sram = -(-n // q) * m * k + -(-m // r) * k * n + m * n
    elif c.dataflow == "ws":
        rows = -(-k // r) * -(-n // q) * (2 * r + q + m - 2)
        sram = -(-n // q) * m * k + k * n + -(-k // r) * m * n
    else:
        rows = -(-k // r) * -(-m // q) * (2 * r + q + n - 2)
        sram = m * k + -(-m // q) * k * n + -(-k // r) * m * n
    return rows, sram


def random_cases(seed: int = 20240607, count: int = 30):
    """Seeded random cases: odd array shapes, SRAM sizes and per-operand bandwidths."""
    import random

    rng = random.Random(seed)
    out = []
    dfs = ["os", "ws", "is"]
    while len(out) < count:
        df = dfs[len(out) % 3]
        rows = rng.choice([2, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64])
        cols = rng.choice([2, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64])
        kb = tuple(rng.choice([2, 2, 3, 3, 4, 4, 5, 6, 8, 12, 16, 32, 64]) for _ in range(3))
        bws = tuple(rng.randint(1, 20) for _ in range(3))
        if rng.random() < 0.3:
            m, n, k = rng.randint(1, 160), rng.randint(1, 160), rng.randint(1, 160)
            layer = gemm(m, n, k)
            lname = f"g{m}x{n}x{k}"
        else:
            fh = rng.choice([1, 1, 2, 3, 3, 5, 7])
            fw = fh if rng.random() < 0.8 else rng.choice([1, 3, 5])
            h = rng.randint(max(fh, 4), 28)
            w = rng.randint(max(fw, 4), 28)
            ch = rng.choice([1, 3, 4, 8, 16, 32])
            nf = rng.randint(2, 64)
            st = rng.choice([1, 1, 2, 3])
            layer = conv(h, w, fh, fw, ch, nf, st)
            lname = f"c{h}x{w}x{ch}_f{fh}x{fw}n{nf}s{st}"
        name = (f"rnd{len(out):02d}_{df}_{rows}x{cols}_{lname}_"
                f"s{kb[0]}-{kb[1]}-{kb[2]}_bw{bws[0]}-{bws[1]}-{bws[2]}")
        c = Case(case=name, dataflow=df, rows=rows, cols=cols, ifmap_kb=kb[0], filter_kb=kb[1],
                 ofmap_kb=kb[2], bw_mode="USER", ofmap_bw=bws[2], ifmap_bw=bws[0],
                 filter_bw=bws[1], **layer)
        nrows, sram = _demand_rows_and_sram(c)
        if nrows > 40000 or sram > 600000 or nrows * max(rows, cols) > 1_500_000:
            continue
        out.append(c)
    return out


# ----------------------------------------------------------------------------------------------
def cfg_text(c: Case) -> str:
    return f"""[general]
run_name = {c.case}

[architecture_presets]
ArrayHeight:    {c.rows}
ArrayWidth:     {c.cols}
IfmapSramSzkB:   {c.ifmap_kb}
FilterSramSzkB:  {c.filter_kb}
OfmapSramSzkB:   {c.ofmap_kb}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : {c.ofmap_bw}
Dataflow : {c.dataflow}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {c.ifmap_bw}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {c.filter_bw}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {c.bw_mode}
UseRamulatorTrace: False
"""


def topo_text(c: Case) -> str:
    if c.is_gemm:
        # Layer Name, M, N, K,
        return f"Layer,M,N,K,\nL0,{c.ifmap_h},{c.num_filters},{c.ifmap_w},\n"
    return ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,\n"
            f"L0,{c.ifmap_h},{c.ifmap_w},{c.filter_h},{c.filter_w},{c.channels},"
            f"{c.num_filters},{c.stride},\n")


def _read_report(path):
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    vals = [x.strip() for x in lines[1].split(",") if x.strip() != ""]
    return [float(x) for x in vals]


def run_one(c: Case, workdir: str) -> dict:
    """Runs inside the SCALE-Sim venv (child process)."""
    import importlib.metadata

    from scalesim.scale_sim import scalesim

    cfg_path = os.path.join(workdir, c.case + ".cfg")
    topo_path = os.path.join(workdir, "topo.csv")
    with open(cfg_path, "w") as f:
        f.write(cfg_text(c))
    with open(topo_path, "w") as f:
        f.write(topo_text(c))
    s = scalesim(save_disk_space=True, verbose=False, config=cfg_path, topology=topo_path,
                 layout=LAYOUT_CSV, input_type_gemm=c.is_gemm)
    t0 = time.perf_counter()
    s.run_scale(top_path=workdir)
    dt = time.perf_counter() - t0
    rep = os.path.join(workdir, c.case)
    comp = _read_report(os.path.join(rep, "COMPUTE_REPORT.csv"))
    det = _read_report(os.path.join(rep, "DETAILED_ACCESS_REPORT.csv"))
    out = asdict(c)
    out.update(
        total_cycles=int(comp[1]), compute_cycles=int(comp[2]), stall_cycles=int(comp[3]),
        overall_util=comp[4], mapping_eff=comp[5], compute_util=comp[6],
        sram_ifmap_reads=int(det[3]), sram_filter_reads=int(det[6]), sram_ofmap_writes=int(det[9]),
        dram_ifmap_start=int(det[10]), dram_ifmap_reads=int(det[12]),
        dram_filter_start=int(det[13]), dram_filter_reads=int(det[15]),
        dram_ofmap_stop=int(det[17]), dram_ofmap_writes=int(det[18]),
        scalesim_seconds=round(dt, 3), scalesim_version=importlib.metadata.version("scalesim"),
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--redo", action="store_true", help="re-run cases already in the CSV")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per case")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--run-one", default="", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.run_one:  # child mode
        c = Case(**json.loads(args.run_one))
        print("RESULT " + json.dumps(run_one(c, args.workdir)), flush=True)
        return 0

    cases = build_cases()
    if args.list:
        for c in cases:
            print(c.case)
        return 0
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.case in wanted]

    os.makedirs(os.path.join(args.out, "configs"), exist_ok=True)
    csv_path = os.path.join(args.out, CSV_NAME)
    done = {}
    if os.path.exists(csv_path):
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                done[row["case"]] = row
    for c in cases:
        with open(os.path.join(args.out, "configs", c.case + ".cfg"), "w") as f:
            f.write(cfg_text(c))
        if c.case in done and not args.redo:
            continue
        with tempfile.TemporaryDirectory(prefix="ssref_") as wd:
            cmd = [sys.executable, os.path.abspath(__file__), "--run-one", json.dumps(asdict(c)),
                   "--workdir", wd]
            t0 = time.time()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{c.case}: TIMEOUT after {args.timeout:.0f} s", flush=True)
                continue
            res = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if p.returncode != 0 or not res:
                print(f"{c.case}: FAILED rc={p.returncode}\n{p.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(res[-1][len("RESULT "):])
            print(f"{c.case}: stall={row['stall_cycles']} cycles={row['compute_cycles']} "
                  f"scalesim {row['scalesim_seconds']} s (wall {time.time() - t0:.1f} s)", flush=True)
        done[c.case] = row
        # rewrite the CSV in case-list order after every case (resumable)
        order = [x.case for x in build_cases()]
        rows = sorted(done.values(), key=lambda r: order.index(r["case"]) if r["case"] in order else 1e9)
        with open(csv_path, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            wr.writeheader()
            for r in rows:
                wr.writerow(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
