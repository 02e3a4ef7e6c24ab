"""Regenerate docs/img/report_simulate.png and docs/img/report_sweep.png with headless Chromium.

    python tools/report_screenshots.py [--chromium /usr/bin/chromium]

Writes the two ``accelsim report`` pages of the docs' examples into a temporary directory (a
compressed resnet18 at 64x64 on the sparse 32x32 systolic array; a 100-point array-size sweep),
opens each in headless Chromium (for the sweep page, the mouse is moved onto the best front point
first so its hover label shows), and stores 256-colour PNGs under docs/img/.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOVER_JS = r"""
window.addEventListener("load", () => setTimeout(() => {
  const gd = document.getElementById("fig-pareto");
  const t = gd.data.find(t => t.name.startsWith("Pareto front"));
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  const x = r.left + xa._offset + xa.d2p(t.x[1]), y = r.top + ya._offset + ya.d2p(t.y[1]);
  document.elementFromPoint(x, y).dispatchEvent(new MouseEvent("mousemove", {clientX: x, clientY: y, bubbles: true}));
}, 500));
"""


def _compressed_resnet18():  # type: ignore[no-untyped-def]
    from accelsim.workload import Compression, Quant, Sparsity
    from accelsim.workload.zoo import resnet18

    wl = resnet18(resolution=64)
    layers = []
    for i, layer in enumerate(wl.layers):
        if layer.op in ("conv2d", "linear") and i > 0:
            comp = (Compression(sparsity=Sparsity(kind="unstructured", density=0.3)) if i % 3 == 0 else
                    Compression(sparsity=Sparsity(kind="nm", density=0.5, n=2, m=4),
                                quant=Quant(weight_bits=4, act_bits=8)))
            layer = layer.model_copy(update={"compression": comp})
        layers.append(layer)
    return wl.with_layers(layers, name="resnet18-64px-2of4-mixed")


def _shoot(chromium: str, page: Path, png: Path, height: int, extra_js: str = "") -> None:
    from PIL import Image

    if extra_js:
        text = page.read_text(encoding="utf-8").replace("<head>", f"<head><script>{extra_js}</script>", 1)
        page.write_text(text, encoding="utf-8")
    raw = page.with_suffix(".raw.png")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={page.parent / 'profile'}", f"--window-size=1200,{height}",
                    "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=8000",
                    f"--screenshot={raw}", page.as_uri()], check=True, capture_output=True, timeout=300)
    Image.open(raw).convert("RGB").quantize(colors=256).save(png, optimize=True)
    print(f"wrote {png} ({png.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("google-chrome"))
    args = ap.parse_args()
    if not args.chromium:
        sys.exit("no chromium found (apt-get install chromium)")
    import accelsim
    from accelsim.dse import run_sweep
    from accelsim.plot.html_report import simulate_page, store_page, write_page

    img = ROOT / "docs" / "img"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rep = accelsim.simulate(_compressed_resnet18(), ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
        _shoot(args.chromium, write_page(tmp / "run.html", simulate_page(rep)), img / "report_simulate.png", 1850)
        sweep = {
            "name": "r18_array", "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
            "workloads": [{"zoo": "resnet18", "resolution": 64}],
            "axes": {"rows": [8, 16, 32, 64, 128], "cols": [8, 16, 32, 64, 128], "dataflow": ["os", "ws"],
                     "dram.bw_gbps": [6.4, 25.6]},
            "objectives": ["latency", {"metric": "peak_gops", "goal": "min"}],
            "constraints": ["utilization >= 0.2"],
        }
        run_sweep(sweep, tmp / "r18.sqlite", workers=2)
        page = write_page(tmp / "front.html", store_page(tmp / "r18.sqlite", layers_for=3))
        _shoot(args.chromium, page, img / "report_sweep.png", 2000, HOVER_JS)


if __name__ == "__main__":
    main()
