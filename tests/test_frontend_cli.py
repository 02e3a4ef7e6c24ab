"""``accelsim compress`` end to end, bad recipes on the command line, the torch-less install,
and a tiny seeded slice of the digits demo."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TORCH = (
    "import sys, importlib.abc\n"
    "class B(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch blocked')\n"
    "sys.meta_path.insert(0, B())\n"
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_without_torch_accelsim_imports_and_compress_fails_with_install_hint(tmp_path):
    out = tmp_path / "x.yaml"
    r = _run("import accelsim, accelsim.frontend, accelsim.frontend.cli, accelsim.frontend.recipe\n"
             "from accelsim.cli import main\n"
             f"sys.exit(main(['compress', '--model', 'zoo:tiny_cnn', '--recipe', 'recipes/nm_2_4.yaml', '--out', r'{out}']))")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "accelsim[torch]" in lines[0] and "pip install" in lines[0]
    assert not out.exists()


def test_cli_compress_writes_a_simulatable_workload(tmp_path):
    pytest.importorskip("torch")
    from accelsim.cli import main

    out = tmp_path / "tiny_pattern_4bit.yaml"
    assert main(["compress", "--model", "zoo:tiny_cnn", "--recipe", str(ROOT / "recipes" / "pattern_4bit.yaml"),
                 "--out", str(out), "--threads", "1"]) == 0
    assert out.exists() and (tmp_path / "tiny_pattern_4bit_masks.npz").exists()
    from accelsim.workload import load_workload

    wl = load_workload(out)
    assert wl.name == "tiny_cnn_pattern_4bit" and wl["conv2"].compression.sparsity.kind == "pattern"
    assert wl.mask(wl["conv2"]).shape == (32, 16, 3, 3)
    assert main(["simulate", "--workload", str(out), "--hw", str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
                 "--format", "csv"]) == 0


@pytest.mark.parametrize("recipe, field", [
    ("prune: {kind: unstructured, density: 0}\n", "prune.unstructured.density"),
    ("quantize: {weight_bits: 0}\n", "quantize.weight_bits"),
    ("overrides:\n  - names: [nope]\n    quantize: {weight_bits: 4}\n", "overrides[0].names"),
    ("overrides:\n  - names: [conv1]\n    prune: {kind: nm, n: 2, m: 4}\n", "overrides[0].prune"),
])
def test_cli_bad_recipe_is_one_line_exit_2(tmp_path, capsys, recipe, field):
    pytest.importorskip("torch")
    from accelsim.cli import main

    f = tmp_path / "bad.yaml"
    f.write_text(recipe)
    code = main(["compress", "--model", "zoo:tiny_cnn", "--recipe", str(f), "--out", str(tmp_path / "o.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and field in err[0] and str(f) in err[0]


def test_cli_unknown_model(tmp_path, capsys):
    pytest.importorskip("torch")
    from accelsim.cli import main

    code = main(["compress", "--model", "zoo:resnet9000", "--recipe", str(ROOT / "recipes" / "nm_2_4.yaml"),
                 "--out", str(tmp_path / "o.yaml")])
    assert code == 2 and "resnet9000" in capsys.readouterr().err


def test_digits_demo_slice_is_seeded_and_compresses():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import digits_compression as demo
    finally:
        sys.path.pop(0)
    names = ["unstructured 20%", "int4 per-channel"]
    a = demo.run(seed=0, epochs=1, finetune_epochs=1, variants=names, max_steps=3)
    b = demo.run(seed=0, epochs=1, finetune_epochs=1, variants=names, max_steps=3)
    assert [r["acc_finetuned"] for r in a] == [r["acc_finetuned"] for r in b]
    assert [r["variant"] for r in a] == ["dense fp32"] + names
    dense, unstr, int4 = a
    assert unstr["macs"] == round(0.2 * dense["macs"]) or abs(unstr["macs"] - 0.2 * dense["macs"]) < 0.01 * dense["macs"]
    assert int4["bops"] == dense["macs"] * 4 * 8 and dense["bops"] == dense["macs"] * 32 * 32
    assert "| unstructured 20% |" in demo.table(a)
