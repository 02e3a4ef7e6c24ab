"""Executors: a local process pool and a real 2-worker dask LocalCluster give the inline results."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.dse import evaluate as ev_mod
from accelsim.dse import load, run_sweep
from accelsim.dse.executors import LocalExecutor

ROOT = Path(__file__).resolve().parent.parent
SWEEP = {
    "name": "ex",
    "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
    "workloads": [{"zoo": "resnet18", "resolution": 32}, "zoo:tiny_cnn"],
    "axes": {"rows": [8, 32, 128], "cols": {"same_as": "rows"}, "dataflow": ["os", "ws"],
             "energy.mac_pj": [0.1, 0.3], "ofmap_sram.size_kb": [0.001, 64]},
}
N_POINTS = 3 * 2 * 2 * 2  # valid points: 3 x 2 x 2 x 2 workloads; as many invalid (tiny ofmap SRAM)


@pytest.fixture(scope="module")
def inline_frame(tmp_path_factory):
    db = tmp_path_factory.mktemp("inline") / "s.sqlite"
    res = run_sweep(SWEEP, db, workers=1)
    assert res.evaluated == N_POINTS and res.invalid == N_POINTS
    return load(db).set_index("key").sort_index()


def _plain(series):
    return [None if v is None or v != v else v for v in series.tolist()]


def _same_results(df, ref):
    df = df.set_index("key").sort_index()
    assert list(df.index) == list(ref.index)
    for col in ("status", "latency_cycles", "energy_pj", "utilization", "energy_dram_pj", "error"):
        assert _plain(df[col]) == _plain(ref[col]), col


def test_local_pool_matches_inline(tmp_path, inline_frame):
    db = tmp_path / "s.sqlite"
    res = run_sweep(SWEEP, db, workers=2, chunk_size=2)
    assert res.executor == "local" and res.workers == 2 and res.evaluated == N_POINTS
    df = load(db)
    _same_results(df, inline_frame)
    pids = {w.split(":")[1] for w in df["worker"].dropna()}
    assert str(os.getpid()) not in pids and len(pids) >= 1


def test_local_pool_forks_after_loading_the_simulator_once(tmp_path):
    """The parent loads the simulator before forking (workers inherit it) and unfreezes its heap after."""
    import gc
    import subprocess
    import sys

    code = (
        "import gc, sys\n"
        "from accelsim.dse import run_sweep\n"
        f"res = run_sweep({{**{SWEEP!r}, 'workloads': ['zoo:tiny_cnn'], 'axes': {{'rows': [8, 16]}}}}, "
        f"{str(tmp_path / 's.sqlite')!r}, workers=2)\n"
        "assert res.evaluated == 2 and res.executor == 'local', res\n"
        "print('accelsim.api' in sys.modules, gc.get_freeze_count())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "0"]  # loaded in the parent; nothing left frozen
    assert gc.get_freeze_count() == 0


def test_dead_worker_fails_its_chunk_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = ev_mod.Evaluator.metrics

    def crash(self, wl, hw, tkey):
        if hw.rows == 32:
            os._exit(3)  # a worker process dying (segfault, OOM kill)
        return real(self, wl, hw, tkey)

    monkeypatch.setattr(ev_mod.Evaluator, "metrics", crash)  # forked workers inherit the patch
    ex = LocalExecutor(2)
    try:
        sweep = {**SWEEP, "workloads": ["zoo:tiny_cnn"], "axes": {"rows": [8, 16, 32, 64, 128]}}
        res = run_sweep(sweep, tmp_path / "s.sqlite", executor=ex, chunk_size=1)
    finally:
        ex.close()
    df = load(tmp_path / "s.sqlite")
    assert len(df) == 5
    bad = df[df["rows"] == 32].iloc[0]
    assert bad["status"] == "error" and "died" in bad["error"]
    # the chunks caught in the crash are rerun alone: only the culprit fails
    assert (res.evaluated, res.errors) == (4, 1)
    assert set(df[df.status == "ok"]["rows"]) == {8, 16, 64, 128}


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=40)
    try:
        yield cluster
    finally:
        cluster.close()


def test_dask_local_cluster_via_scheduler_address(tmp_path, dask_cluster, inline_frame, capsys):
    addr = dask_cluster.scheduler_address
    assert addr.startswith("tcp://127.0.0.1:")
    db = tmp_path / "s.sqlite"
    sweep_file = tmp_path / "ex.yaml"
    import yaml

    sweep_file.write_text(yaml.safe_dump(SWEEP))
    code = main(["sweep", str(sweep_file), "--store", str(db), "--scheduler", addr, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out  # some points are invalid (tiny ofmap SRAM): exit 1 (docs/dse.md, exit codes)
    assert f"{N_POINTS} simulated" in out and "dask x2" in out
    df = load(db)
    _same_results(df, inline_frame)
    worker_pids = {w.split(":")[1] for w in df["worker"].dropna()}
    assert str(os.getpid()) not in worker_pids and len(worker_pids) == 2  # both cluster workers did work
    # resume on the cluster: nothing left to do
    again = main(["sweep", str(sweep_file), "--store", str(db), "--scheduler", addr, "--no-progress"])
    assert "0 simulated" in capsys.readouterr().out
    assert again == 0  # nothing was tried this run


def test_unreachable_scheduler_is_one_line_error(capsys, tmp_path):
    pytest.importorskip("distributed")
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**SWEEP, "workloads": ["zoo:tiny_cnn"]}))
    code = main(["sweep", str(f), "--store", str(tmp_path / "x.sqlite"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the dask scheduler at tcp://127.0.0.1:9" in err and err.count("\n") == 1


def test_warm_up_loads_the_mapper_kernels_only_for_searched_points_and_leaves_caches_empty():
    """A pool's parent loads the mapper's numba kernels before forking when the first chunk searches
    mappings (workers inherit them), not for fold-order points; the search caches stay untouched."""
    import subprocess
    import sys

    code = (
        "import accelsim, numba\n"
        "from accelsim.dse import evaluate as E\n"
        "from accelsim.mapping import fast, search as S, _search_kernels as K\n"
        "ds = [getattr(m, n) for m in (fast, K) for n in dir(m) if isinstance(getattr(m, n), numba.core.registry.CPUDispatcher)]\n"
        f"hw = accelsim.load_hardware({str(ROOT / 'hw_configs' / 'systolic_128x128_os.yaml')!r}).model_dump(mode='json')\n"
        "caches = (S._ORDER_CACHE, S._PROBLEMS, S._CANDIDATES, S._MEMORIES_JSON, fast._HIER_CACHE, fast._COMPATIBLE)\n"
        "E.warm_up([{'hardware': {**hw, 'mapping': 'scalesim'}}])\n"
        "print(sum(bool(d.signatures) for d in ds))\n"
        "E.warm_up([{'hardware': {**hw, 'rows': 'bad'}}, {'hardware': hw}])\n"
        "print(sum(bool(d.signatures) for d in ds) > 0, sum(len(c) for c in caches))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "True", "0"]
