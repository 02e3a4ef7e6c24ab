"""``accelsim warmup`` compiles (or loads from numba's cache) every USER-mode kernel ahead of use."""
from __future__ import annotations


def test_warmup_compiles_the_replay_kernels(capsys):
    from accelsim.cli import main
    from accelsim.sim import scalesim_user

    assert main(["warmup"]) == 0
    assert "kernels ready" in capsys.readouterr().out
    assert scalesim_user._replay.signatures  # compiled for the argument types simulate uses
    from accelsim.engines import _periodic_kernel, crossbar_kernels, gs_kernels
    from accelsim.mapping import _search_kernels, fast

    for kernel in (fast._batch, _search_kernels.enumerate_orders, gs_kernels.csr_reduction_cost,
                   gs_kernels.bank_aware_group_cost, crossbar_kernels._block_nnz, crossbar_kernels._block_nnz_t,
                   _periodic_kernel.periodic_plan):
        assert kernel.signatures, kernel


def test_cold_notice_names_the_family_once(monkeypatch, caplog):
    """Only a kernel neither compiled in this process nor cached on disk is announced, once."""
    import logging
    from types import SimpleNamespace

    from accelsim import _jit

    monkeypatch.setattr(_jit, "_announced", set())
    monkeypatch.setattr(_jit, "cache_is_cold", lambda d: True)
    with caplog.at_level(logging.INFO, logger="accelsim"):
        _jit.notice_if_cold(SimpleNamespace(signatures=[]), "the test kernels", "~1 s")
        _jit.notice_if_cold(SimpleNamespace(signatures=[]), "the test kernels", "~1 s")
        _jit.notice_if_cold(SimpleNamespace(signatures=["(int64,)"]), "compiled kernels", "~1 s")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["compiling the test kernels for this machine (once, ~1 s of CPU; `accelsim warmup` after "
                    "installing does it ahead of time)"]


def test_a_cold_cache_is_announced_once_and_a_warm_one_not(tmp_path):
    """A fresh machine's first USER-mode run says on stderr that it compiles (and how to avoid it);
    the next process loads the kernels from numba's cache and says nothing."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    topo = tmp_path / "one.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "c1, 10, 10, 3, 3, 4, 8, 1,\n")
    cfg = root / "tests/data/reference/scalesim_configs/stall_s64k_bw10_Resnet18_L12_32x32_os.cfg"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "accelsim.cli", "simulate", "--workload", str(topo), "--hw", str(cfg)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "compiling the SCALE-Sim USER-mode kernels" in first.stderr
    assert "accelsim warmup" in first.stderr
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    assert second.stdout == first.stdout  # same numbers from the cached kernels


def test_no_nrt_option_is_known_to_the_installed_numba():
    """The mapper's per-row kernels switch numba's reference counting off through ``NO_NRT``; on a
    numba without the option it is empty (kernels compile unchanged). The installed one has it."""
    from accelsim._jit import JIT_ONLY, NO_NRT, _nrt_option_known

    assert _nrt_option_known() and NO_NRT == {"_nrt": False}
    assert JIT_ONLY == {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


def test_a_searched_run_after_warmup_compiles_nothing_new():
    """Warm-up compiles every specialisation a searched simulate uses: the run adds no signature to
    any mapper kernel (a new one would be a cold compile at run time, despite ``accelsim warmup``)."""
    from pathlib import Path

    from numba.core.registry import CPUDispatcher

    import accelsim
    from accelsim.mapping import _search_kernels, fast
    from accelsim.sim.warmup import warmup
    from accelsim.workload.zoo import get_model

    warmup()
    kernels = {f"{m.__name__}.{n}": d for m in (fast, _search_kernels) for n, d in vars(m).items()
               if isinstance(d, CPUDispatcher)}
    before = {k: list(d.signatures) for k, d in kernels.items()}
    root = Path(__file__).resolve().parent.parent
    hw = accelsim.load_hardware(root / "hw_configs" / "systolic_128x128_os.yaml")
    for update in ({"rows": 16, "cols": 32}, {"rows": 8, "cols": 8, "dataflow": "ws"}):
        accelsim.simulate(get_model("tiny_cnn"), hw.model_copy(update={"mapping": "search", **update}),
                          compare_dense=False)
    assert {k: list(d.signatures) for k, d in kernels.items()} == before
