"""``accelsim report``: the HTML pages' content, their wording, bad input, and a real headless browser.

The browser tests open the written page in the system Chromium (``chromium --headless --dump-dom``)
with a probe script added at the top of ``<head>``: it records every error (uncaught exceptions,
``console.error``, failed resource loads, rejected promises) and every resource the page fetched
(the network is also cut off with ``--host-resolver-rules``), moves the mouse onto a point with real
DOM mouse events, reads plotly's hover label, clicks, and writes what it saw into the DOM. They are
skipped when no Chromium binary is found (``apt-get install chromium``, or set ``ACCELSIM_CHROMIUM``).
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import accelsim
from accelsim.cli import main
from accelsim.report import LayerStats, Report
from accelsim.workload import Compression, Quant, Sparsity

pytest.importorskip("plotly", reason="the HTML report needs plotly (pip install 'accelsim[report]')")

from accelsim.plot.html_report import (  # noqa: E402
    _fmt, dense_verdict, energy_phrase, simulate_page, speed_phrase, store_page,
)

ROOT = Path(__file__).resolve().parent.parent
SPARSE_HW = ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml"
SWEEP = {
    "name": "html",
    "hardware": str(ROOT / "hw_configs" / "systolic_128x128_os.yaml"),
    "workloads": [{"zoo": "resnet18", "resolution": 32}],
    "axes": {"rows": [8, 16, 32, 64], "cols": [16, 64], "dataflow": ["os", "ws"]},
    "objectives": ["latency", {"metric": "peak_gops", "goal": "min"}],
    "constraints": ["utilization >= 0.03"],
}
BROWSER_TIMEOUT_S = 180  # a hang guard for a cold start on a loaded machine, not a speed check


def _chromium() -> str | None:
    env = os.environ.get("ACCELSIM_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
                 "chromium-headless-shell", "headless_shell"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary found (apt-get install chromium, "
                                   "or set ACCELSIM_CHROMIUM=/path/to/chrome); the HTML pages are not opened")


def _compressed_resnet18():  # type: ignore[no-untyped-def]
    """resnet18 at 32x32: every third conv unstructured 30% (this array skips zeros at a cost), the
    other convs/fc 2:4 with 4-bit weights (the 2:4 datapath doubles the math)."""
    from accelsim.workload.zoo import resnet18

    wl = resnet18(resolution=32)
    layers = []
    for i, layer in enumerate(wl.layers):
        if layer.op in ("conv2d", "linear") and i > 0:
            comp = (Compression(sparsity=Sparsity(kind="unstructured", density=0.3)) if i % 3 == 0 else
                    Compression(sparsity=Sparsity(kind="nm", density=0.5, n=2, m=4),
                                quant=Quant(weight_bits=4, act_bits=8)))
            layer = layer.model_copy(update={"compression": comp})
        layers.append(layer)
    return wl.with_layers(layers, name="resnet18-mixed")


@pytest.fixture(scope="module")
def sim_report():
    return accelsim.simulate(_compressed_resnet18(), SPARSE_HW)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    from accelsim.dse import run_sweep

    d = tmp_path_factory.mktemp("html_store")
    res = run_sweep(SWEEP, d / "html.sqlite", workers=1)
    assert res.evaluated == 16
    return d / "html.sqlite"


# --- wording ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio, text", [(1.21, "1.21x faster"), (0.46, "2.17x slower"), (1.0, "same latency"),
                                         (1.004, "same latency"), (None, "n/a"), (float("nan"), "n/a")])
def test_speed_phrase_states_the_true_direction(ratio, text):
    assert speed_phrase(ratio) == text


@pytest.mark.parametrize("ratio, text", [(2.2, "2.20x more energy"), (0.45, "2.22x less energy"),
                                         (1.0, "same energy"), (0.0, "n/a")])
def test_energy_phrase_states_the_true_direction(ratio, text):
    assert energy_phrase(ratio) == text


def _layer(name: str, latency: int, energy_pj: float, dense_latency: int, dense_energy: float) -> LayerStats:
    return LayerStats(layer=name, op="conv2d", engine="systolic", macs=100, dense_macs=100, compute_cycles=latency,
                      stall_cycles=0, fill_cycles=0, drain_cycles=0, utilization=0.5, compute_utilization=0.5,
                      mapping_efficiency=1.0, dram_read_bytes=0.0, dram_write_bytes=0.0, compulsory_dram_bytes=0.0,
                      dram_busy_cycles=0, energy_by_component_pj={"mac": energy_pj},
                      dense_latency_cycles=dense_latency, dense_energy_pj=dense_energy,
                      notes=["decoder costs more than the skipped MACs save"])


def test_costlier_than_dense_is_said_so():
    """The issue's case: 1.21x faster but 2.2x *more* energy -- never "0.45x less energy"."""
    layers = [_layer("a", 1000, 2200.0, 1210, 1000.0)]
    rep = Report(workload="w", hardware="h", hardware_kind="systolic", clock_mhz=1000.0, layers=layers,
                 compared_to_dense=True, dense_latency_cycles=1210, dense_energy_pj=1000.0)
    verdict = dense_verdict(rep)
    assert verdict is not None and verdict.endswith(": 1.21x faster, 2.20x more energy")
    page = simulate_page(rep)
    assert "2.20x more energy" in page and "0.45x" not in page
    assert "decoder costs more than the skipped MACs save" in page  # the layer's note is on the page
    assert 'class="worse"' in page  # the costlier row is marked


def test_simulate_page_content(sim_report):
    rep = sim_report
    page = simulate_page(rep)
    assert rep.compared_to_dense
    s = rep.summary()
    verdict = dense_verdict(rep)
    assert html.escape(verdict) in page
    speed = s["dense_latency_cycles"] / s["latency_cycles"]
    assert verdict.split(": ")[1].startswith(f"{speed:.2f}x faster" if speed > 1 else f"{1 / speed:.2f}x slower")
    assert not re.search(r"\b0\.\d+x (faster|slower|more|less)", page)  # a ratio below 1 is never printed
    for layer in rep.layers:  # every layer, its latency split and every note are in the page
        assert html.escape(layer.layer) in page
        for note in layer.notes:
            assert html.escape(note)[:60] in page
    fill = sum(x.fill_cycles for x in rep.layers)
    drain = sum(x.drain_cycles for x in rep.layers)
    assert fill + s["compute_cycles"] + s["stall_cycles"] + drain == s["latency_cycles"]  # the split adds up
    assert (f"latency {s['latency_cycles']:,} cycles = fill {fill:,} + compute {s['compute_cycles']:,} + stall "
            f"{s['stall_cycles']:,} + drain {drain:,}") in page
    assert html.escape(rep.hardware_summary) in page
    # self-contained: plotly.js inline, no script/style/link fetched from anywhere
    assert re.search(r"<script[^>]+src=", page) is None and "<link" not in page
    assert "Plotly.newPlot" in page and len(page) > 3_000_000


def test_json_output_of_simulate_is_accepted(sim_report, tmp_path, capsys):
    from accelsim.plot._html_cli import load_report_json

    f = tmp_path / "run.json"
    f.write_text(sim_report.to_json())
    back = load_report_json(f)
    assert back.latency_cycles == sim_report.latency_cycles
    assert back.energy_pj == pytest.approx(sim_report.energy_pj)
    assert dense_verdict(back) == dense_verdict(sim_report)
    assert [x.notes for x in back.layers] == [x.notes for x in sim_report.layers]
    out = tmp_path / "run.html"
    assert main(["report", "--json", str(f), "--out", str(out)]) == 0
    assert html.escape(dense_verdict(sim_report)) in out.read_text()


def test_report_from_workload_and_hw(tmp_path):
    out = tmp_path / "tiny.html"
    assert main(["report", "-w", str(ROOT / "models" / "tiny_cnn.yaml"), "--hw", str(SPARSE_HW), "--out", str(out)]) == 0
    page = out.read_text()
    rep = accelsim.simulate(ROOT / "models" / "tiny_cnn.yaml", SPARSE_HW)
    assert f"{rep.latency_cycles:,} cycles" in page and "Compared with the dense original" not in page  # dense: no comparison
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.html"]  # no temp file left behind


# --- the store page ---------------------------------------------------------------------------
def test_store_page_hover_texts_match_the_store(sweep_store):
    """Every point of the scatter carries its key and a hover text with the store's axis values and metrics."""
    from accelsim.dse import load

    page = store_page(sweep_store, layers_for=2)
    df = load(sweep_store, sweep="html", status="ok").set_index("key")
    figs = json.loads(re.search(r"const FIGS = (\{.*?\});\nconst LAYER_FIGS", page, re.S).group(1).replace("<\\/", "</"))
    traces = figs["pareto"]["data"]
    keys = [k for t in traces for k in t["customdata"]]
    assert sorted(keys) == sorted(df.index)  # every ok point once
    for t in traces:
        for key, text in zip(t["customdata"], t["hovertext"]):
            _check_hover_lines(text.split("<br>"), df.loc[key])
    assert sum(len(t["customdata"]) for t in traces if t["name"].startswith("Pareto front")) >= 2
    layer_figs = re.search(r"const LAYER_FIGS = (\{.*?\});\nconst POINTS", page, re.S).group(1)
    assert len(json.loads(layer_figs.replace("<\\/", "</"))) == 2  # per-layer breakdown of the first 2 front points
    assert "fig-heatmap" in page


def _check_hover_lines(lines: list[str], row) -> None:  # type: ignore[no-untyped-def]
    """``point <key12>`` then ``name = value`` lines, each equal to the store's value."""
    assert lines[0].replace("<b>", "").startswith(f"point {row.name[:12]}")
    seen = 0
    for line in lines[1:]:
        name, value = html.unescape(line).split(" = ", 1)
        assert value == _fmt(row[name]), (name, value, row[name])
        seen += 1
    assert seen >= len(SWEEP["axes"]) + 2  # every axis and at least the two plotted metrics


def test_store_errors_are_one_line(sweep_store, tmp_path, capsys):
    cases = [
        (["--store", str(sweep_store), "--sweep", "nope"], "no sweep 'nope'"),
        (["--store", str(sweep_store), "--x", "speed"], "unknown metric 'speed'"),
        (["--store", str(sweep_store), "--y", "area"], "metric 'area_mm2' has no value"),
        (["--store", str(tmp_path / "missing.sqlite")], "results store not found"),
        (["--store", str(sweep_store), "--json", "x.json"], "give exactly one of"),
        ([], "give exactly one of"),
        (["-w", "zoo:resnet18"], "--workload and --hw go together"),
        (["--json", "run.json", "--sweep", "html"], "--sweep only apply to --store"),
        (["--store", str(sweep_store), "--no-compare-dense"], "only apply to --workload/--hw"),
    ]
    for argv, needle in cases:
        assert main(["report", *argv, "--out", str(tmp_path / "x.html")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err, err
    for out, needle in [(tmp_path / "no" / "dir" / "x.html", "does not exist"), (tmp_path, "is a directory"),
                        (tmp_path / "x.exe", "expected an .html file name")]:
        assert main(["report", "--store", str(sweep_store), "--out", str(out)]) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "no").exists() and not (tmp_path / "x.html").exists()


@pytest.mark.parametrize("content, needle", [
    ("{", "not a simulate JSON report"),
    ("[1, 2]", "expected the JSON object"),
    ('{"workload": "w", "hardware": "h", "clock_mhz": 1000}', "field 'layers'"),
    ('{"workload": "w", "hardware": "h", "clock_mhz": 1000, "layers": []}', "non-empty list"),
    ('{"workload": "w", "hardware": "h", "clock_mhz": NaN, "layers": [{}]}', "non-finite"),
    ('{"workload": "w", "hardware": "h", "clock_mhz": 0, "layers": [{}]}', "field 'clock_mhz'"),
    ('{"workload": "w", "hardware": "h", "clock_mhz": 1, "layers": [{"layer": "a"}]}', "field 'layers[0]': missing"),
    ("[" * 100000, "not a simulate JSON report"),
])
def test_bad_json_is_one_line(tmp_path, capsys, content, needle):
    f = tmp_path / "bad.json"
    f.write_text(content)
    assert main(["report", "--json", str(f), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err


def test_bad_layer_values_in_json(sim_report, tmp_path, capsys):
    data = json.loads(sim_report.to_json())
    data["layers"][1]["stall_cycles"] = -5
    f = tmp_path / "neg.json"
    f.write_text(json.dumps(data))
    assert main(["report", "--json", str(f), "--out", str(tmp_path / "x.html")]) == 2
    assert "layers[1]" in capsys.readouterr().err


def test_without_plotly_core_imports_and_report_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['plotly'] = None\n"
            "import accelsim, accelsim.cli, accelsim.dse\n"
            "from accelsim.cli import main\n"
            f"sys.exit(main(['report', '-w', 'zoo:tiny_cnn', '--hw', {str(SPARSE_HW)!r}, '--out', 'x.html']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "pip install 'accelsim[report]'" in err, err
    assert not (tmp_path / "x.html").exists()


# --- in a real browser ------------------------------------------------------------------------
_PROBE = r"""
window.__probe = {errors: []};
window.addEventListener("error", e => window.__probe.errors.push(e.message ? "error: " + e.message
  : "resource failed: " + (e.target && (e.target.src || e.target.href))), true);
window.addEventListener("unhandledrejection", e => window.__probe.errors.push("unhandled rejection: " + e.reason));
const __consoleError = console.error.bind(console);
console.error = (...a) => { window.__probe.errors.push("console.error: " + a.join(" ")); __consoleError(...a); };
function __sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
function __mouse(el, type, x, y) {
  el.dispatchEvent(new MouseEvent(type, {clientX: x, clientY: y, bubbles: true, cancelable: true, view: window,
                                         buttons: type === "mousedown" ? 1 : 0}));
}
async function __hover(gd, xv, yv, xaxis, yaxis) {
  const xa = gd._fullLayout[xaxis || "xaxis"], ya = gd._fullLayout[yaxis || "yaxis"], r = gd.getBoundingClientRect();
  const x = r.left + xa._offset + xa.d2p(xv), y = r.top + ya._offset + ya.d2p(yv);
  __mouse(document.elementFromPoint(x, y), "mousemove", x, y);
  await __sleep(250);
  return {x, y, lines: [...gd.querySelectorAll(".hoverlayer .hovertext text tspan.line")].map(s => s.textContent),
          text: [...gd.querySelectorAll(".hoverlayer .hovertext text")].map(s => s.textContent)};
}
async function __click(x, y) {
  const el = document.elementFromPoint(x, y);
  for (const t of ["mousedown", "mouseup", "click"]) __mouse(el, t, x, y);
  await __sleep(300);
}
window.addEventListener("load", async () => {
  const out = {};
  try {
    await __sleep(300);
    out.plots = [...document.querySelectorAll(".js-plotly-plot")].map(d => d.id);
    await PROBE_BODY(out);
  } catch (e) { window.__probe.errors.push("probe: " + e + " " + e.stack); }
  out.errors = window.__probe.errors;
  out.resources = performance.getEntriesByType("resource").map(e => e.name);
  const pre = document.createElement("pre"); pre.id = "__probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""

_STORE_PROBE = r"""
async function PROBE_BODY(out) {
  const gd = document.getElementById("fig-pareto");
  out.before = document.getElementById("detail-title").textContent;
  out.hovers = [];
  for (const name of ["Pareto front", "feasible"]) {   // a front point and one off the front
    const t = gd.data.find(t => t.name.startsWith(name));
    const i = name === "feasible" ? t.customdata.length - 1 : 0;  // front point 0: best first objective
    const h = await __hover(gd, t.x[i], t.y[i]);
    h.key = t.customdata[i];
    await __click(h.x, h.y);
    h.detail = document.getElementById("detail-title").textContent;
    h.selected = window.SELECTED;
    h.layerPlot = !!document.querySelector("#detail-layers .main-svg");
    out.hovers.push(h);
  }
}
"""

_SIM_PROBE = r"""
async function PROBE_BODY(out) {
  const gd = document.getElementById("fig-breakdown");
  const t = gd.data.find(t => t.name === "compute");
  let i = 0;
  for (let j = 0; j < t.y.length; j++) if (t.y[j] > t.y[i]) i = j;   // the tallest compute bar
  const h = await __hover(gd, t.x[i], t.y[i] / 2, "xaxis", "yaxis");
  h.layer = t.x[i];
  out.hover = h;
  out.verdict = (document.getElementById("verdict") || {}).textContent;
}
"""


def _open_in_chromium(page: Path, probe_body: str, tmp_path: Path) -> dict:
    """Load ``page`` (plus the probe) in headless Chromium with the network cut off; the probe's findings."""
    text = page.read_text(encoding="utf-8")
    probed = tmp_path / f"probe_{page.name}"
    probed.write_text(text.replace("<head>", "<head><script>" + _PROBE + probe_body + "</script>", 1), encoding="utf-8")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,2000",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", "--dump-dom", probed.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    m = re.search(r'<pre id="__probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the probe did not report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    uncaught = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and "Uncaught" in ln]
    assert not uncaught, uncaught
    return json.loads(html.unescape(m.group(1)))


@needs_browser
def test_store_page_in_a_browser(sweep_store, tmp_path):
    from accelsim.dse import load

    out = tmp_path / "front.html"
    assert main(["report", "--store", str(sweep_store), "--layers", "1", "--out", str(out)]) == 0
    seen = _open_in_chromium(out, _STORE_PROBE, tmp_path)
    assert seen["errors"] == [] and seen["resources"] == [], seen
    assert set(seen["plots"]) >= {"fig-pareto", "fig-heatmap", "detail-totals"}
    df = load(sweep_store, sweep="html", status="ok").set_index("key")
    assert seen["before"].startswith("Point ")  # a point is shown before any click
    for h in seen["hovers"]:
        assert h["lines"], f"no hover label at {h['x']}, {h['y']}"
        key12 = h["lines"][0].split()[1]
        hits = [k for k in df.index if k.startswith(key12)]
        assert len(hits) == 1 and hits[0] == h["key"], (key12, h["key"])
        _check_hover_lines(h["lines"], df.loc[h["key"]])  # the label's text is the store's row
        assert h["selected"] == h["key"] and h["detail"].startswith(f"Point {key12}")  # click -> its breakdown
    front, off = seen["hovers"]
    assert "(Pareto front)" in front["detail"] and "(Pareto front)" not in off["detail"]
    assert front["layerPlot"] and not off["layerPlot"]  # --layers 1: the best front point has per-layer bars


@needs_browser
def test_simulate_page_in_a_browser(sim_report, tmp_path):
    from accelsim.plot.html_report import write_page

    out = write_page(tmp_path / "run.html", simulate_page(sim_report))
    seen = _open_in_chromium(out, _SIM_PROBE, tmp_path)
    assert seen["errors"] == [] and seen["resources"] == [], seen
    assert set(seen["plots"]) == {"fig-dense", "fig-breakdown", "fig-totals"}
    assert seen["verdict"].startswith(dense_verdict(sim_report))
    layer = next(x for x in sim_report.layers if x.layer == seen["hover"]["layer"])
    lines = seen["hover"]["lines"]
    assert lines[0] == f"compute: {layer.compute_cycles:,} cycles", lines
    assert lines[1] == f"{layer.layer} ({layer.op}, {layer.engine})"
    assert any(ln.startswith(f"latency {layer.latency_cycles:,} cycles = fill {layer.fill_cycles:,}") for ln in lines)
    assert any(ln == f"bottleneck: {layer.bottleneck}" for ln in lines)


def test_point_that_cannot_be_resimulated_is_noted(tmp_path):
    """The workload file moved after the sweep: the page is still written and says why a point has no layers."""
    from accelsim.dse import run_sweep

    wl = tmp_path / "tiny.yaml"
    shutil.copy(ROOT / "models" / "tiny_cnn.yaml", wl)
    run_sweep({**SWEEP, "name": "moved", "workloads": [str(wl)], "axes": {"rows": [8, 16]}}, tmp_path / "m.sqlite",
              workers=1)
    wl.unlink()
    page = store_page(tmp_path / "m.sqlite", layers_for=5)
    points = json.loads(re.search(r"const POINTS = (\{.*?\});\n", page).group(1).replace("<\\/", "</"))
    assert points["layer_errors"] and all("tiny.yaml" in m for m in points["layer_errors"].values())
    assert re.search(r"const LAYER_FIGS = \{\};", page)


def test_component_colours_are_fixed_or_distinct():
    from accelsim.plot.html_report import _COLORS, component_colors

    c = component_colors(["mac", "adc", "dram", "dac", "tile_buffer"])
    assert c["mac"] == _COLORS["mac"] and c["dram"] == _COLORS["dram"]
    assert len(set(c.values())) == 5  # the crossbar parts get colours of their own
