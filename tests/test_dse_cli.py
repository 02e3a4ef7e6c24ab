"""``accelsim sweep | plot | results``: the console script, one-line errors, the figures' content."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim.cli import main
from accelsim.dse import load, pareto_front

ROOT = Path(__file__).resolve().parent.parent
SWEEP = {
    "name": "cli",
    "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
    "workloads": [{"zoo": "resnet18", "resolution": 32}],
    "axes": {"rows": [16, 32, 64], "cols": [16, 64], "dram.bw_gbps": [6.4, 25.6]},
    "objectives": ["latency", "energy"],
    "constraints": ["utilization >= 0.01"],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    f = d / "cli.yaml"
    f.write_text(yaml.safe_dump(SWEEP))
    exe = shutil.which("accelsim", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "accelsim.cli"]
    proc = subprocess.run(cmd + ["sweep", str(f), "--workers", "2", "--front-csv", str(d / "front.csv")], cwd=d,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "12 points requested, 12 simulated" in proc.stdout
    assert "Pareto front over latency_ms (min), energy_uj (min)" in proc.stdout
    assert "pt/s" in proc.stderr or "pt]" in proc.stderr  # tqdm progress bar with rate/ETA
    assert (d / "cli.sqlite").exists()  # default store: ./<sweep name>.sqlite
    return d / "cli.sqlite"


def test_front_csv_matches_store(store):
    import pandas as pd

    front = pd.read_csv(store.parent / "front.csv")
    df = load(store, status="ok")
    df = df[df["utilization"] >= 0.01]
    expect = pareto_front(df, [("latency_ms", "min"), ("energy_uj", "min")])
    assert sorted(front["key"]) == sorted(expect["key"])


@pytest.mark.parametrize("kind,extra", [
    ("pareto", ["--color", "rows"]),
    ("heatmap", ["--axes", "rows", "cols", "--metric", "energy"]),
    ("breakdown", []),
    ("breakdown", ["--point", "best:energy_uj"]),
    ("roofline", ["--point", "best:latency_ms"]),
])
def test_plot_kinds_write_figures(store, tmp_path, kind, extra):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", "--store", str(store), "--kind", kind, "--out", str(out)] + extra) == 0
    assert out.exists() and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_content(store):
    from accelsim.plot.heatmap import heatmap_table
    from accelsim.plot.pareto import plot_pareto

    df = load(store, status="ok")
    fig = plot_pareto(df, "latency_ms", "energy_uj")
    front = pareto_front(df, [("latency_ms", "min"), ("energy_uj", "min")])
    offsets = [c.get_offsets() for c in fig.axes[0].collections]
    highlighted = offsets[-1]
    assert len(highlighted) == len(front)
    assert np.allclose(sorted(highlighted[:, 0]), sorted(front["latency_ms"]))
    t = heatmap_table(df, "rows", "cols", "energy_uj", "min")
    assert t.shape == (2, 3)
    r, c = 32, 64
    assert t.loc[c, r] == df[(df["rows"] == r) & (df["cols"] == c)]["energy_uj"].min()


def test_roofline_points_under_the_roof(store):
    from accelsim.dse.plotting import resimulate, select_point
    from accelsim.dse.store import ResultsStore
    from accelsim.plot.roofline import roofline_frame

    df = load(store, status="ok")
    row = select_point(df, "best:energy_uj", [("energy_uj", "min")], "t")
    assert row["energy_uj"] == df["energy_uj"].min()
    with ResultsStore(store) as st:
        resolved = st.spec_of("cli")["_resolved"]
    rep = resimulate(row, resolved)
    assert rep.energy_pj == pytest.approx(row["energy_pj"], rel=1e-12)  # the stored point, rebuilt
    fr = roofline_frame(rep)
    assert len(fr) > 5
    roof = np.minimum(row["peak_gops"], row["dram_bw_gbps"] * fr["ops_per_byte"])
    assert (fr["gops"] <= roof * (1 + 1e-9)).all()  # no layer beats compute or bandwidth
    assert row["achieved_gops"] <= min(row["peak_gops"], row["dram_bw_gbps"] * row["operational_intensity"]) * (1 + 1e-9)


def test_results_and_export(store, tmp_path, capsys):
    out = tmp_path / "all.parquet"
    assert main(["results", str(store), "--export", str(out)]) == 0
    text = capsys.readouterr().out
    assert "12 points (12 ok" in text and "sweep 'cli': 12 points" in text
    import pandas as pd

    assert len(pd.read_parquet(out)) == 12


@pytest.mark.parametrize("argv,needle", [
    (["plot", "--kind", "pareto", "--x", "speed"], "unknown column 'speed'"),
    (["plot", "--kind", "breakdown", "--point", "zzzz"], "matches 0 points"),
    (["plot", "--kind", "heatmap", "--sweep", "nope"], "no sweep 'nope'"),
])
def test_plot_errors_are_one_line(store, capsys, argv, needle):
    argv = argv[:1] + ["--store", str(store)] + argv[1:]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_sweep_errors_are_one_line(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({**SWEEP, "axes": {"rowz": [1]}}))
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accelsim: error: {f}: field 'axes.rowz'") and err.count("\n") == 1
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", str(f), "--workers", "0"])


def test_grid_sweep_runs_on_the_base_install(tmp_path):
    """No dask, optuna, pyarrow or torch: a grid sweep (2 local workers) and its plots still work."""
    import textwrap

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**SWEEP, "workloads": ["zoo:tiny_cnn"]}))
    code = textwrap.dedent(f"""
        import sys
        for m in ('dask', 'distributed', 'optuna', 'pyarrow', 'torch', 'sklearn'):
            sys.modules[m] = None
        from accelsim.cli import main
        rc = main(['sweep', {str(f)!r}, '--store', 's.sqlite', '--workers', '2', '--no-progress'])
        rc = rc or main(['plot', '--store', 's.sqlite', '--kind', 'pareto', '--out', 'p.png'])
        rc2 = main(['sweep', {str(f)!r}, '--store', 's.sqlite', '--scheduler', 'tcp://127.0.0.1:8786'])
        print('rc', rc, rc2)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rc 0 2" in proc.stdout and "12 simulated" in proc.stdout
    assert "--scheduler needs dask.distributed: pip install 'accelsim[dask]'" in proc.stderr
    assert (tmp_path / "p.png").exists()
