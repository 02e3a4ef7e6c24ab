"""Malformed-input cases for the CLI and a judge of what the CLI did with them.

Shared by ``tests/test_fuzz_inputs.py`` (hypothesis, bounded) and ``benchmarks/fuzz_inputs.py``
(many more cases, counts printed). A *case* is a set of files written into a scratch directory
and one ``accelsim`` command line. The promise judged by :func:`judge`: exit 0 with sane output
(JSON without ``Infinity``/``NaN``), or exit 2 with a one-line ``accelsim: error:`` message (or
argparse's usage error); never exit 1 (internal error), never a traceback, never a hang.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "reference"

# --- base inputs ------------------------------------------------------------------------------

HW_SMALL: dict[str, Any] = {
    "kind": "systolic", "name": "fz", "clock_mhz": 1000, "rows": 8, "cols": 8, "dataflow": "os",
    "ifmap_sram": {"size_kb": 16}, "filter_sram": {"size_kb": 16}, "ofmap_sram": {"size_kb": 8},
    "dram": {"bw_gbps": 10.0},
}

WL_SMALL: dict[str, Any] = {
    "accelsim_workload": 1, "name": "fz",
    "layers": [
        {"name": "conv1", "op": "conv2d", "in_channels": 1, "out_channels": 4, "in_h": 8, "in_w": 8, "kernel": 3,
         "padding": 1},
        {"name": "fc", "op": "linear", "in_features": 256, "out_features": 10},
    ],
}

WL_MASKED: dict[str, Any] = {
    "accelsim_workload": 1, "name": "fzm", "masks": "m.npz",
    "layers": [
        {"name": "fc", "op": "linear", "in_features": 16, "out_features": 8,
         "compression": {"sparsity": {"kind": "unstructured", "density": 0.5, "mask": "fc"}}},
    ],
}

SWEEP_SMALL: dict[str, Any] = {
    "accelsim_sweep": 1, "name": "fz", "hardware": "hw.yaml", "workloads": ["wl.yaml"],
    "axes": {"rows": [4, 8], "dram.bw_gbps": {"linspace": [5, 10, 2]}},
    "search": {"method": "grid"}, "objectives": ["latency_ms", "energy_uj"],
}

RECIPE_SMALL: dict[str, Any] = {"prune": {"kind": "unstructured", "density": 0.5}, "quantize": {"weight_bits": 4}}

CFG_TEXT = """[general]
run_name = fz

[architecture_presets]
ArrayHeight:    8
ArrayWidth:     8
IfmapSramSzkB:   16
FilterSramSzkB:  16
OfmapSramSzkB:   8
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 4
Dataflow : ws
MemoryBanks:   1

[run_presets]
InterfaceBandwidth: USER
"""

CSV_TEXT = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1, 10, 10, 3, 3, 2, 4, 1,
Conv2, 8, 8, 1, 1, 4, 8, 2,
"""

GEMM_CSV_TEXT = """Layer, M, N, K,
g1, 16, 8, 32,
"""


def mask_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def good_mask() -> np.ndarray:
    m = np.zeros((8, 16), dtype=np.uint8)
    m[:, ::2] = 1
    return m


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False).encode()


# --- cases ------------------------------------------------------------------------------------

@dataclass
class Case:
    """Files (name -> bytes) written into a scratch directory and one command line run there."""

    label: str
    files: dict[str, bytes]
    argv: list[str]
    expect_ok: bool | None = None  # None: exit 0 or 2 both fine; False: must be refused (exit 2)

    def describe(self) -> str:
        shown = {k: (v[:300] + (b"..." if len(v) > 300 else b"")) for k, v in self.files.items()}
        return f"{self.label}: accelsim {' '.join(self.argv)}; files {shown}"


# value mutations of a YAML tree
HUGE = [10**6, 10**9, 10**12, 10**18, 10**30, 1e300]
WEIRD: list[Any] = [
    None, True, False, 0, -1, -(10**9), 0.5, -0.0, float("nan"), float("inf"), float("-inf"), 1e-300,
    "", "abc", "1e3", "ünï©ødé ✓", "../../etc/passwd", "/dev/zero", [], [1, 2], {}, {"x": 1}, *HUGE,
]


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, prefix + (i,))
    return out


def _set(tree: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    import copy

    t = copy.deepcopy(tree)
    node = t
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return t


def tree_mutations(tree: dict, rng: random.Random, n: int) -> list[tuple[str, Any]]:
    """``n`` single-field mutations: (description, mutated tree)."""
    paths = _paths(tree)
    out = []
    for _ in range(n):
        path = rng.choice(paths)
        where = ".".join(map(str, path))
        if rng.random() < 0.2:
            out.append((f"delete {where}", _set(tree, path, None, delete=True)))
        else:
            v = rng.choice(WEIRD)
            out.append((f"{where} = {v!r}", _set(tree, path, v)))
    return out


def file_mutations(text: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """Whole-file damage: empty, binary, truncated, bombs, tags, nesting, duplicate keys, unicode."""
    cut = rng.randrange(1, max(len(text), 2))
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n".encode() for p, c in zip("abcdefgh", "bcdefghi"))
    return [
        ("empty file", b""),
        ("binary", bytes(rng.randrange(256) for _ in range(200))),
        ("truncated", text[:cut]),
        ("yaml bomb", bomb),
        ("python tag", b"!!python/object/apply:os.system ['echo pwned']\n"),
        ("python name tag", b"kind: !!python/name:os.system\n"),
        ("deep list", b"[" * 5000),
        ("deep map", b"a: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n"),
        ("duplicate keys", text + b"\n" + text.split(b"\n")[0] + b"\n" if text else b"a: 1\na: 2\n"),
        ("nul bytes", text.replace(b"\n", b"\x00\n", 1)),
        ("latin-1", "é: ü\n".encode("latin-1")),
        ("top-level list", b"- 1\n- 2\n"),
        ("top-level scalar", b"42\n"),
        ("long line", b"name: " + b"x" * 200_000 + b"\n"),
    ]


def _refuse(desc: str) -> bool | None:
    """File damage that must be refused; a truncated file may still be a valid (shorter) one."""
    return None if desc == "truncated" else False


def npz_mutations() -> list[tuple[str, bytes, bool]]:
    """Broken mask files: (description, bytes, must_refuse)."""
    good = good_mask()
    full = mask_bytes({"fc": good})
    big_unused = io.BytesIO()
    # an unused array whose header claims 2**31 elements (written as a zip member without data)
    import zipfile

    with zipfile.ZipFile(big_unused, "w") as zf:
        zf.writestr("fc.npy", _npy_bytes(good))
        header = _npy_header(np.dtype("<f8"), (2**20, 2**12))
        zf.writestr("huge.npy", header)  # truncated data: must never be read
    npy = io.BytesIO()
    np.save(npy, good)
    return [
        ("good", full, False),
        ("empty", b"", True),
        ("truncated", full[: len(full) // 2], True),
        ("npy not npz", npy.getvalue(), True),
        ("structured dtype", mask_bytes({"fc": np.zeros((8, 16), dtype=[("a", "u1"), ("b", "u1")])}), True),
        ("strings", mask_bytes({"fc": np.full((8, 16), "1")}), True),
        ("halves", mask_bytes({"fc": np.full((8, 16), 0.5)}), True),
        ("nan", mask_bytes({"fc": np.where(good, np.nan, 0.0)}), True),
        ("twos", mask_bytes({"fc": good * 2}), True),
        ("all zero at density 0.5", mask_bytes({"fc": np.zeros((8, 16), np.uint8)}), True),
        ("wrong shape", mask_bytes({"fc": np.ones((16, 8), np.uint8)}), True),
        ("0x0", mask_bytes({"fc": np.zeros((0, 0), np.uint8)}), True),
        ("complex", mask_bytes({"fc": good.astype(np.complex64)}), True),
        ("missing key", mask_bytes({"other": good}), True),
        ("unused huge member", big_unused.getvalue(), False),
        ("huge used member", _zip_with("fc.npy", _npy_header(np.dtype("u1"), (2**20, 2**16))), True),
        ("binary", bytes(range(256)) * 4, True),
    ]


def npz_mutations_by_name() -> list[tuple[str, bytes]]:
    return [(d, b) for d, b, _ in npz_mutations()]


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    from numpy.lib import format as npf

    buf = io.BytesIO()
    npf.write_array_header_1_0(buf, {"descr": npf.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _zip_with(name: str, data: bytes) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data + b"\x00" * 1000)
    return buf.getvalue()


def base_files() -> dict[str, bytes]:
    return {"hw.yaml": dump(HW_SMALL), "wl.yaml": dump(WL_SMALL)}


def hw_commands(name: str) -> list[list[str]]:
    return [["validate", name], ["info", name], ["simulate", "-w", "wl.yaml", "--hw", name, "--format", "json"]]


def wl_commands(name: str) -> list[list[str]]:
    return [["validate", name], ["info", name], ["simulate", "-w", name, "--hw", "hw.yaml", "--format", "json"]]


CLI_ARG_CASES: list[tuple[list[str], bool]] = [
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--top", "0", "--plot", "p.png"], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--top", "-3", "--plot", "p.png"], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--plot", "x.exe"], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--out", "."], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--out", "/proc/nope/x.csv"], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--out", "nodir/x.csv"], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--max-rows", "-1"], False),
    (["sweep", "sweep.yaml", "--scheduler", "notaurl"], False),
    (["sweep", "sweep.yaml", "--workers", "0"], False),
    (["sweep", "sweep.yaml", "--workers", "-2"], False),
    (["results", "nostore.sqlite"], False),
    (["results", "hw.yaml"], False),
    (["info", "zoo:nonexistent"], False),
    (["info", "/dev/null"], False),
    (["validate", "nonexistent.yaml"], False),
    (["validate", "."], False),
    (["simulate", "-w", "wl.yaml", "--hw", "hw.yaml", "--format", "json"], True),
]


def seeded_cases(seed: int, per_kind: int) -> list[Case]:
    """A deterministic list of cases covering every input kind (``per_kind`` tree mutations each)."""
    rng = random.Random(seed)
    cases: list[Case] = []
    base = base_files()

    def add(label: str, files: dict[str, bytes], argv: list[str], expect_ok: bool | None = None) -> None:
        cases.append(Case(label, {**base, **files}, argv, expect_ok))

    # hardware YAML (every shipped config as a base) -------------------------------------------
    hw_bases = [HW_SMALL] + [yaml.safe_load((ROOT / "hw_configs" / f).read_text())
                             for f in sorted(os.listdir(ROOT / "hw_configs"))]
    for i in range(per_kind):
        tree = rng.choice(hw_bases)
        desc, mutated = tree_mutations(tree, rng, 1)[0]
        try:
            data = dump(mutated)
        except Exception:  # noqa: BLE001 (unrepresentable value: skip)
            continue
        add(f"hw {desc}", {"h.yaml": data}, rng.choice(hw_commands("h.yaml")))
    for desc, data in file_mutations(dump(HW_SMALL), rng):
        add(f"hw {desc}", {"h.yaml": data}, rng.choice(hw_commands("h.yaml")), expect_ok=_refuse(desc))
    # workload YAML ----------------------------------------------------------------------------
    wl_bases = [WL_SMALL, yaml.safe_load((ROOT / "models" / "tiny_cnn.yaml").read_text())]
    for i in range(per_kind):
        desc, mutated = tree_mutations(rng.choice(wl_bases), rng, 1)[0]
        add(f"wl {desc}", {"w.yaml": dump(mutated)}, rng.choice(wl_commands("w.yaml")))
    for desc, data in file_mutations(dump(WL_SMALL), rng):
        add(f"wl {desc}", {"w.yaml": data}, rng.choice(wl_commands("w.yaml")), expect_ok=_refuse(desc))
    for dim in ("in_h", "in_w", "out_channels", "in_channels", "batch", "kernel"):
        for v in (10**6, 10**9, 10**12):
            layer = dict(WL_SMALL["layers"][0], **{dim: v})
            wl = dict(WL_SMALL, layers=[layer])
            add(f"wl absurd {dim}={v}", {"w.yaml": dump(wl)}, rng.choice(wl_commands("w.yaml")))
    # masks ------------------------------------------------------------------------------------
    for desc, data, refuse in npz_mutations():
        for argv in (["validate", "w.yaml"], ["simulate", "-w", "w.yaml", "--hw", "hw.yaml", "--format", "json"]):
            add(f"mask {desc}", {"w.yaml": dump(WL_MASKED), "m.npz": data}, argv, expect_ok=not refuse)
    for name in ("../m", "/etc/passwd", "", "a/b", "fc\x00"):
        wl = _set(WL_MASKED, ("layers", 0, "compression", "sparsity", "mask"), name)
        add(f"mask name {name!r}", {"w.yaml": dump(wl), "m.npz": mask_bytes({"fc": good_mask()})}, ["validate", "w.yaml"],
            expect_ok=False)
    for path in ("/dev/zero", "/etc/passwd", "../../../../etc/hostname", "nothere.npz", "."):
        add(f"mask file {path!r}", {"w.yaml": dump(dict(WL_MASKED, masks=path))}, ["validate", "w.yaml"], expect_ok=False)
    # SCALE-Sim cfg / CSV ----------------------------------------------------------------------
    cfg_lines = CFG_TEXT.splitlines()
    for i in range(per_kind):
        j = rng.randrange(len(cfg_lines))
        line = cfg_lines[j]
        if ":" in line or "=" in line:
            sep = ":" if ":" in line else "="
            key = line.split(sep)[0]
            v = rng.choice(["inf", "nan", "-1", "0", "1e30", "abc", "", "True", "3.5", "99999999999", "１６"])
            new = cfg_lines[:j] + [f"{key}{sep} {v}"] + cfg_lines[j + 1:]
            desc = f"cfg {key.strip()}={v}"
        else:
            new = cfg_lines[:j] + cfg_lines[j + 1:]
            desc = f"cfg drop line {line!r}"
        add(desc, {"c.cfg": "\n".join(new).encode()}, rng.choice(hw_commands("c.cfg")))
    add("cfg unknown key", {"c.cfg": CFG_TEXT.replace("MemoryBanks", "MemoryBankz").encode()}, ["validate", "c.cfg"], False)
    for desc, data in file_mutations(CFG_TEXT.encode(), rng):  # a NUL inside run_name is only a name
        add(f"cfg {desc}", {"c.cfg": data}, rng.choice(hw_commands("c.cfg")), expect_ok=None if "nul" in desc else _refuse(desc))
    csv_lines = CSV_TEXT.splitlines()
    for i in range(per_kind):
        base_lines = rng.choice([csv_lines, GEMM_CSV_TEXT.splitlines()])
        j = rng.randrange(1, len(base_lines))
        cells = base_lines[j].split(",")
        k = rng.randrange(len(cells))
        v = rng.choice(["inf", "nan", "-1", "0", "1e30", "x" * 140_000, "2:4", "5:4", "1e9", "1000000", "", "3.5"])
        cells[k] = v
        new = base_lines[:j] + [",".join(cells)] + base_lines[j + 1:]
        add(f"csv cell {k} = {v[:20]!r}", {"t.csv": "\n".join(new).encode()}, rng.choice(wl_commands("t.csv")))
    for desc, data in file_mutations(CSV_TEXT.encode(), rng):
        add(f"csv {desc}", {"t.csv": data}, rng.choice(wl_commands("t.csv")), expect_ok=_refuse(desc))
    # sweeps -----------------------------------------------------------------------------------
    axis_specs = [
        {"range": [8, float("nan"), 1]}, {"linspace": [1, 100, 1000000000]}, {"pow2": [1, float("inf")]},
        {"uniform": [0, float("inf")]}, {"randint": [1, 1e30]}, {"range": [1, 10**12, 1]}, {"geomspace": [1, 1e308, 3]},
        {"linspace": [float("-inf"), 1, 3]}, {"values": [float("nan")]}, [True, False], [None], [10**12], {"same_as": "zz"},
    ]
    for spec in axis_specs:
        sw = dict(SWEEP_SMALL, axes={"rows": spec})
        if isinstance(spec, dict) and set(spec) & {"uniform", "randint"}:
            sw["search"] = {"method": "random", "samples": 2, "seed": 0}
        add(f"sweep axis {spec!r}", {"s.yaml": dump(sw)}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"], expect_ok=False)
    for seed_v in (-1, 2**70, 0.5, "x"):
        sw = dict(SWEEP_SMALL, axes={"rows": {"randint": [4, 8]}}, search={"method": "random", "samples": 2, "seed": seed_v})
        add(f"sweep seed {seed_v!r}", {"s.yaml": dump(sw)}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"], expect_ok=False)
    for i in range(per_kind):
        desc, mutated = tree_mutations(SWEEP_SMALL, rng, 1)[0]
        add(f"sweep {desc}", {"s.yaml": dump(mutated)}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"])
    for desc, data in file_mutations(dump(SWEEP_SMALL), rng):
        add(f"sweep {desc}", {"s.yaml": data}, ["sweep", "s.yaml", "--store", "st.sqlite", "--workers", "1", "--no-progress"],
            expect_ok=_refuse(desc))
    # stores -----------------------------------------------------------------------------------
    for desc, data in (("garbage store", b"not a database" * 10), ("empty store", b"")):
        add(desc, {"st.sqlite": data}, ["results", "st.sqlite"], expect_ok=False)
    cases.append(Case("store garbage schema", {**base, **{"st.sqlite": _garbage_schema_store()}}, ["results", "st.sqlite"],
                      expect_ok=False))
    # recipes ----------------------------------------------------------------------------------
    for i in range(max(per_kind // 4, 2)):
        desc, mutated = tree_mutations(RECIPE_SMALL, rng, 1)[0]
        add(f"recipe {desc}", {"r.yaml": dump(mutated)}, ["validate", "r.yaml"])
    # ZigZag accelerator / workload YAML and ONNX ---------------------------------------------
    zz_hw = REF / "zigzag_inputs" / "hardware" / "tpu_like.yaml"
    zz_wl = REF / "zigzag_inputs" / "workload" / "gemm_layer.yaml"
    zz_onnx = REF / "zigzag_inputs" / "workload" / "alexnet.onnx"
    if zz_wl.exists():
        zwl = yaml.safe_load(zz_wl.read_text())
        for i in range(max(per_kind // 2, 2)):
            desc, mutated = tree_mutations({"l": zwl}, rng, 1)[0]
            if not isinstance(mutated.get("l"), list):
                continue
            add(f"zigzag wl {desc}", {"z.yaml": dump(mutated["l"])}, rng.choice(wl_commands("z.yaml")))
    if zz_hw.exists():
        zhw = yaml.safe_load(zz_hw.read_text())
        for i in range(max(per_kind // 2, 2)):
            desc, mutated = tree_mutations(zhw, rng, 1)[0]
            add(f"zigzag hw {desc}", {"za.yaml": dump(mutated)}, ["validate", "za.yaml"])
    if zz_onnx.exists():
        blob = zz_onnx.read_bytes()
        for i in range(max(per_kind // 2, 2)):
            b = bytearray(blob)
            for _ in range(rng.randrange(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            add("onnx flipped bytes", {"m.onnx": bytes(b)}, rng.choice(wl_commands("m.onnx")))
        add("onnx truncated", {"m.onnx": blob[: len(blob) // 3]}, ["info", "m.onnx"], expect_ok=False)
        add("onnx empty", {"m.onnx": b""}, ["info", "m.onnx"], expect_ok=False)
    # command-line arguments -------------------------------------------------------------------
    sweep_files = {"sweep.yaml": dump(SWEEP_SMALL)}
    for argv, ok in CLI_ARG_CASES:
        add(f"cli {' '.join(argv)}", sweep_files, argv, expect_ok=ok)
    return cases


def _garbage_schema_store() -> bytes:
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.sqlite"
        con = sqlite3.connect(p)
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        con.execute("INSERT INTO meta VALUES ('schema', 'garbage; DROP TABLE x')")
        con.execute("INSERT INTO meta VALUES ('schema_version', 'garbage')")
        con.commit()
        con.close()
        return p.read_bytes()


# --- running and judging ----------------------------------------------------------------------

@dataclass
class Outcome:
    code: int | None  # None: hang (alarm fired) or killed by a signal
    stdout: str = ""
    stderr: str = ""
    signal: int | None = None
    problems: list[str] = field(default_factory=list)


class _Hang(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:  # noqa: ARG001
    raise _Hang()


def run_in_process(case: Case, workdir: Path, timeout_s: int = 30) -> Outcome:
    """Run the case through ``accelsim.cli.main`` in this process (``signal.alarm`` turns a hang into
    code None). Restores the working directory."""
    from accelsim.cli import main

    write_files(case, workdir)
    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    old = signal.signal(signal.SIGALRM, _alarm)
    code: int | None
    try:
        os.chdir(workdir)
        signal.alarm(timeout_s)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(case.argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except _Hang:
        code = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(old_cwd)
    return judge(case, Outcome(code, out.getvalue(), err.getvalue()))


def _vsize_mb() -> int:
    """This process's current address-space size (MiB), from /proc (0 where unavailable)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE") >> 20
    except (OSError, ValueError, IndexError):
        return 0


def run_forked(case: Case, workdir: Path, timeout_s: int = 60, mem_mb: int = 2048) -> Outcome:
    """Run the case in a forked child with an alarm and an address-space limit of the parent's
    current size plus ``mem_mb`` MiB: a blow-up is a ``MemoryError`` (a traceback, i.e. a failed
    case) in the child, never an OOM kill of the test process."""
    import resource
    import tempfile

    write_files(case, workdir)
    so = tempfile.TemporaryFile(mode="w+")
    se = tempfile.TemporaryFile(mode="w+")
    limit = (_vsize_mb() + mem_mb) << 20
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            os.chdir(workdir)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.alarm(timeout_s)
            sys.stdout, sys.stderr = so, se
            from accelsim.cli import main

            try:
                code = main(case.argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc(file=se)
                code = 1
        finally:
            try:
                so.flush()
                se.flush()
            finally:
                os._exit(code if isinstance(code, int) else 3)
    _, status = os.waitpid(pid, 0)
    so.seek(0)
    se.seek(0)
    out, err = so.read(), se.read()
    if os.WIFSIGNALED(status):
        return judge(case, Outcome(None, out, err, signal=os.WTERMSIG(status)))
    return judge(case, Outcome(os.WEXITSTATUS(status), out, err))


def write_files(case: Case, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for f in workdir.iterdir():
        if f.is_file():
            f.unlink()
    for name, data in case.files.items():
        (workdir / name).write_bytes(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JSON output")


def judge(case: Case, o: Outcome) -> Outcome:
    """Fill ``o.problems`` with every way the outcome breaks the input promise."""
    if o.code is None:
        o.problems.append("hang" if o.signal in (None, signal.SIGALRM) else f"killed by signal {o.signal}")
        return o
    if "Traceback" in o.stderr or "Traceback" in o.stdout:
        o.problems.append("traceback")
    if o.code == 0:
        if case.expect_ok is False:
            o.problems.append("nonsense accepted (exit 0)")
        if "--format" in case.argv and "json" in case.argv and o.stdout.strip():
            try:
                json.loads(o.stdout, parse_constant=_reject_constant)
            except ValueError as exc:
                o.problems.append(f"bad JSON output: {str(exc)[:80]}")
    elif o.code == 2:
        lines = [ln for ln in o.stderr.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("accelsim: error:") or ": error:" in ln]
        if not errors:
            o.problems.append(f"exit 2 without an error line: {o.stderr[-200:]!r}")
        elif lines[-1].startswith("accelsim: error:") and len(lines[-1]) > 2000:
            o.problems.append("error line longer than 2000 characters")
        if case.expect_ok is True:
            o.problems.append(f"valid input refused: {o.stderr.strip()[-200:]}")
    elif o.code == 1 and case.argv[:1] == ["sweep"] and "internal error" not in o.stderr \
            and "points of sweep" in o.stderr and "are invalid" in o.stderr:
        pass  # some points invalid, the others simulated: exit 1 with the count (docs/dse.md)
    else:
        o.problems.append(f"exit {o.code}: {o.stderr.strip()[-300:]}")
    return o


def first_problem_text(case: Case, o: Outcome) -> str:
    return f"{o.problems} for {case.describe()}; stderr: {o.stderr[-500:]!r}"


Runner = Callable[[Case, Path], Outcome]
