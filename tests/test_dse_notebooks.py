"""The notebooks in notebooks/ run top to bottom (nbclient, a real ipykernel) and show what they promise.

No wall-clock budget here: a loaded CI machine once turned this red while the notebook was fine.
How long each notebook takes is measured in benchmarks/, not asserted.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS_TORCH = {"02_compress_then_simulate"}


def test_notebooks_exist():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_quickstart", "02_compress_then_simulate", "03_hardware_sweep"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if path.stem in NEEDS_TORCH:
        pytest.importorskip("torch")
        pytest.importorskip("sklearn")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as in Jupyter
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"
    stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
    assert "Traceback" not in stderr
    assert "IProgress not found" not in stderr, "progress bars must not warn in a notebook without ipywidgets"
    texts = [o for o in outputs if o.get("output_type") in ("stream", "execute_result", "display_data")
             and (o.get("text") or "text/plain" in o.get("data", {}) or "text/html" in o.get("data", {}))]
    assert texts, "every notebook prints or displays a result"
