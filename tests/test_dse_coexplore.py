"""Co-exploration (compression x hardware): one evaluation per recipe, disk cache, accuracy on the front.

The accuracy evaluator here is a deterministic stand-in (no torch) so the explorer's side is tested
on its own; the front-end's real evaluator is exercised by the co-exploration notebook/sweep.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from accelsim.cli import main
from accelsim.dse import load, run_sweep
from accelsim.dse.pareto import non_dominated_mask, to_minimisation

ROOT = Path(__file__).resolve().parent.parent
CALLS: list[dict] = []


def fake_evaluator(model, recipe, *, dataset, seed, **train):
    """Accuracy falls with pruning and low bit widths; the workload carries the recipe's compression."""
    from accelsim.workload.compression import Compression, Quant, Sparsity
    from accelsim.workload.zoo import get_model

    CALLS.append({"model": model, "recipe": recipe, "seed": seed, "train": train})
    density = (recipe.get("prune") or {}).get("density", 1.0)
    bits = (recipe.get("quantize") or {}).get("weight_bits", 8)
    wl = get_model(model)
    comp = Compression(sparsity=Sparsity(kind="unstructured", density=density) if density < 1 else Sparsity(),
                       quant=Quant(weight_bits=bits))
    wl = wl.with_layers([l.model_copy(update={"compression": comp}) if l.is_compute else l for l in wl.layers])
    acc = 0.98 - 0.4 * (1 - density) ** 2 - 0.02 * (8 - bits)
    return SimpleNamespace(accuracy=acc, workload=wl)


def sweep(tmp_path, **over):
    d = {"name": "co", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
         "compression": {"model": "tiny_cnn", "seed": 3,
                         "recipe": {"prune": {"kind": "unstructured", "density": 1.0}, "quantize": {"weight_bits": 8}},
                         "evaluator": "test_dse_coexplore:fake_evaluator", "cache_dir": str(tmp_path / "cache"),
                         "train": {"epochs": 2}},
         "axes": {"recipe.prune.density": [0.3, 0.6, 1.0], "recipe.quantize.weight_bits": [4, 8],
                  "rows": [8, 16, 32], "cols": {"same_as": "rows"}},
         "objectives": ["accuracy", "latency_ms", "energy_uj"]}
    d.update(over)
    return d


def test_coexploration_front_and_cache(tmp_path):
    CALLS.clear()
    res = run_sweep(sweep(tmp_path), tmp_path / "a.sqlite", workers=1)
    assert res.evaluated == 3 * 2 * 3 and res.errors == 0
    assert len(CALLS) == 6  # one compression + accuracy measurement per distinct recipe
    assert {c["seed"] for c in CALLS} == {3} and CALLS[0]["train"] == {"epochs": 2}
    df = load(tmp_path / "a.sqlite")
    assert df["accuracy"].notna().all()
    # accuracy depends on the recipe only, latency/energy on both
    assert df.groupby(["recipe.prune.density", "recipe.quantize.weight_bits"])["accuracy"].nunique().eq(1).all()
    lo = df[(df["recipe.quantize.weight_bits"] == 4) & (df["rows"] == 16)]["energy_pj"].iloc[0]
    hi = df[(df["recipe.quantize.weight_bits"] == 8) & (df["rows"] == 16)]["energy_pj"].iloc[0]
    assert lo < hi  # 4-bit weights move and multiply fewer bits
    # the front is the non-dominated set of (max accuracy, min latency, min energy)
    vals = to_minimisation(df[["accuracy", "latency_ms", "energy_uj"]].to_numpy(float), ["max", "min", "min"])
    assert sorted(res.front["key"]) == sorted(df[non_dominated_mask(vals)]["key"])
    assert res.front["accuracy"].max() == pytest.approx(0.98)
    assert (res.front["recipe.quantize.weight_bits"] == 4).any()  # cheap low-bit points trade accuracy away
    # the cached compressed models serve a new store without re-evaluating any recipe
    CALLS.clear()
    res2 = run_sweep(sweep(tmp_path, name="co2"), tmp_path / "b.sqlite", workers=1)
    assert CALLS == [] and res2.evaluated == 18
    assert sorted(load(tmp_path / "b.sqlite")["energy_pj"]) == sorted(df["energy_pj"])
    cached = list((tmp_path / "cache").glob("*.json"))
    assert len(cached) == 6


def test_invalid_recipe_points_are_recorded(tmp_path):
    CALLS.clear()
    s = sweep(tmp_path, axes={"recipe.prune.density": [0.5, 1.5], "rows": [8]})
    s["compression"]["recipe"] = {"prune": {"kind": "unstructured", "density": 0.5}}
    res = run_sweep(s, tmp_path / "a.sqlite", workers=1)
    assert (res.evaluated, res.invalid) == (1, 1)
    bad = load(tmp_path / "a.sqlite", status="invalid").iloc[0]
    assert bad["error"].startswith("recipe: prune") and "density" in bad["error"] and "less than or equal to 1" in bad["error"]


def test_accuracy_objective_needs_compression_section(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"name": "x", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
                                 "workloads": ["zoo:tiny_cnn"], "axes": {"rows": [8]},
                                 "objectives": ["accuracy", "latency"]}))
    assert main(["sweep", str(f), "--store", str(tmp_path / "x.sqlite")]) == 2


def test_without_torch_coexploration_says_how_to_install(tmp_path):
    f = tmp_path / "co.yaml"
    s = sweep(tmp_path)
    del s["compression"]["evaluator"]
    f.write_text(yaml.safe_dump(s))
    code = textwrap.dedent(f"""
        import sys
        sys.modules['torch'] = None
        from accelsim.cli import main
        sys.exit(main(['sweep', {str(f)!r}, '--store', {str(tmp_path / 'x.sqlite')!r}, '--no-progress']))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "co-exploration measures accuracy with the PyTorch front-end" in err
    assert "pip install 'accelsim[torch]'" in err and len(err.splitlines()) == 1


def test_shipped_coexploration_sweep_with_the_front_end(tmp_path):
    """The real thing, trimmed: the front-end trains, compresses and measures TinyCNN on digits."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from accelsim.dse.spec import load_sweep

    sw = load_sweep(ROOT / "sweeps" / "coexplore_tiny_cnn.yaml")
    data = sw.spec.model_dump(mode="json")
    data["axes"] = {"recipe.prune.density": [0.2, 1.0], "rows": [16], "cols": {"same_as": "rows"},
                    "sparse.zero_skipping": [True, False]}
    data["compression"]["train"] = {"epochs": 3, "finetune_epochs": 1}
    data["compression"]["cache_dir"] = str(tmp_path / "cache")
    sw2 = load_sweep(data, base_dir=ROOT / "sweeps")
    res = run_sweep(sw2, tmp_path / "co.sqlite", workers=1)
    assert res.evaluated == 4 and res.errors == 0
    df = load(tmp_path / "co.sqlite")
    acc = df.groupby("recipe.prune.density")["accuracy"].first()
    assert 0.8 < acc[0.2] <= 1 and 0.9 < acc[1.0] <= 1  # a trained digits CNN, not chance (0.1)
    sparse = df[(df["recipe.prune.density"] == 0.2)].set_index("sparse.zero_skipping")
    assert sparse.loc[True, "energy_pj"] < sparse.loc[False, "energy_pj"]  # skipping pays off on a pruned net
    assert len(list((tmp_path / "cache").glob("*_masks.npz"))) >= 1  # real masks cached with the workload
