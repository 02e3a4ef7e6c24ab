"""Co-exploration with the user's own model factory and accuracy function (issue 12)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.cli import main  # noqa: E402
from accelsim.dse import load, run_sweep  # noqa: E402
from accelsim.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HW = str(ROOT / "hw_configs" / "systolic_128x128_os.yaml")
SEEN: list[int] = []


def small_net():
    """A user network the front-end's zoo does not know (digits-shaped input)."""
    return torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(6 * 6 * 6, 10))


def weight_density(model) -> float:
    """'Accuracy' = fraction of non-zero conv/linear weights of the compressed model (checkable by hand)."""
    SEEN.append(id(model))
    ws = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return float(sum(int((w != 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def _sweep(**comp):
    base = {"recipe": {"prune": {"kind": "unstructured", "density": 1.0}}, "seed": 1}
    base.update(comp)
    return {"name": "user", "hardware": HW, "compression": base,
            "axes": {"recipe.prune.density": [0.25, 1.0], "rows": [16], "cols": {"same_as": "rows"}},
            "objectives": ["accuracy", "latency_ms"]}


def test_python_callables_as_model_and_evaluator(tmp_path):
    SEEN.clear()
    res = run_sweep(_sweep(model=small_net, evaluator=weight_density, cache_dir=str(tmp_path / "c")),
                    tmp_path / "a.sqlite", workers=1)
    assert res.evaluated == 2 and res.errors == 0
    df = load(tmp_path / "a.sqlite")
    acc = df.set_index("recipe.prune.density")["accuracy"]
    # unstructured layer-wise pruning keeps round(density * n) weights per layer: 54 + 2160 weights
    assert acc[1.0] == pytest.approx(1.0)
    assert acc[0.25] == pytest.approx((round(0.25 * 54) + round(0.25 * 2160)) / 2214, abs=1e-9)
    assert len(SEEN) == 4  # the dense net and the compressed net of each recipe were measured by the callable
    assert set(df["workload"]) == {"test_dse_coexplore_user:small_net"}
    # the exported workload is the user's network: conv 6x(1x3x3) on 8x8 + linear 216 -> 10
    assert df.set_index("recipe.prune.density")["macs"][1.0] == 6 * 9 * 36 + 216 * 10
    # cached: a second run measures nothing
    SEEN.clear()
    run_sweep(_sweep(model=small_net, evaluator=weight_density, cache_dir=str(tmp_path / "c"), ), tmp_path / "b.sqlite",
              workers=1)
    assert SEEN == []


def test_sweep_file_evaluator_and_factory_files(tmp_path, monkeypatch):
    """evaluator file next to the sweep file, model file in the current directory; both run user code."""
    sweeps, work = tmp_path / "sweeps", tmp_path / "work"
    sweeps.mkdir(), work.mkdir()
    (sweeps / "myeval.py").write_text(textwrap.dedent("""
        import torch
        def accuracy(model):
            ws = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
            return sum(int((w != 0).sum()) for w in ws) / sum(w.numel() for w in ws)
    """))
    (work / "mynets.py").write_text(textwrap.dedent("""
        import torch
        def tiny():
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 10))
    """))
    s = _sweep(model="mynets.py:tiny", evaluator="myeval.py:accuracy", cache_dir="cache",
               train={"epochs": 2, "finetune_epochs": 1})  # a factory may also be trained on digits
    (sweeps / "s.yaml").write_text(yaml.safe_dump(s))
    monkeypatch.chdir(work)
    assert main(["sweep", str(sweeps / "s.yaml"), "--store", str(tmp_path / "s.sqlite"), "--no-progress"]) == 0
    df = load(tmp_path / "s.sqlite")
    acc = df.set_index("recipe.prune.density")["accuracy"]
    assert acc[1.0] == pytest.approx(1.0)
    assert acc[0.25] == pytest.approx((round(0.25 * 2048) + round(0.25 * 320)) / 2368, abs=1e-9)
    assert len(list((sweeps / "cache").glob("*.json"))) == 2
    # a missing file is one line naming the field
    s["compression"]["evaluator"] = "nothere.py:accuracy"
    (sweeps / "bad.yaml").write_text(yaml.safe_dump(s))
    assert main(["sweep", str(sweeps / "bad.yaml"), "--store", str(tmp_path / "x.sqlite"), "--no-progress"]) == 2


def test_accuracy_function_must_return_a_fraction():
    from accelsim.frontend.evaluate import evaluate_recipe

    with pytest.raises(ConfigError, match="compression.evaluator.*not in \\[0, 1\\]"):
        evaluate_recipe(small_net, {"prune": {"kind": "unstructured", "density": 0.5}}, accuracy=lambda m: 97.0)
    with pytest.raises(ConfigError, match="compression.model"):
        evaluate_recipe(lambda: "not a module", {}, accuracy=weight_density)
    out = evaluate_recipe(small_net, {"quantize": {"weight_bits": 4}}, accuracy=weight_density, input_shape=[2, 1, 8, 8])
    assert out.dense_accuracy == 1.0 and 0.5 < out.accuracy < 1.0  # 4-bit rounding zeroes the smallest weights
    assert out.workload.layers[0].compression.quant.weight_bits == 4 and out.workload.layers[0].batch == 2


def test_accuracy_function_detection():
    from accelsim.dse.coexplore import is_accuracy_function
    from accelsim.frontend.evaluate import evaluate_recipe

    assert is_accuracy_function(weight_density) and is_accuracy_function(lambda model, scale=1.0: 0.5)
    assert not is_accuracy_function(evaluate_recipe)
    assert not is_accuracy_function(lambda model, recipe: 0.5)
