"""Issue 13 item 8, plots: legends beside the bars, roofline labels apart, a readable colour bar
label, and titles whose units fit the numbers."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import accelsim  # noqa: E402
from accelsim.plot.breakdown import plot_breakdown  # noqa: E402
from accelsim.plot.heatmap import colorbar_label, plot_heatmap  # noqa: E402
from accelsim.plot.roofline import label_positions, plot_roofline, roofline_frame  # noqa: E402
from accelsim.report import duration_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("ms, text", [(12.345, "12.345 ms"), (0.0412, "41.2 us"), (0.00085, "850 ns"),
                                      (1.0, "1.000 ms"), (0.001, "1 us")])
def test_duration_text(ms, text):
    assert duration_text(ms) == text


def test_breakdown_legend_beside_bars_and_title_units():
    import matplotlib.pyplot as plt

    rep = accelsim.simulate("zoo:tiny_cnn", ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    assert rep.summary()["latency_ms"] < 0.1  # a tiny net: the title must not say "0.00x ms"
    fig = plot_breakdown(rep)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1  # never over a bar
    title = fig.axes[0].get_title()
    assert " us," in title and " 0.0" not in title
    plt.close(fig)


def test_heatmap_colorbar_label():
    import matplotlib.pyplot as plt

    assert colorbar_label("latency_ms", "min") == "min latency (ms)"
    df = pd.DataFrame({"rows": [8, 8, 16, 16, 8], "cols": [8, 16, 8, 16, 8], "latency_ms": [1.0, 2, 3, 4, 0.5]})
    fig = plot_heatmap(df, "rows", "cols", "latency_ms", agg="min")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "min latency (ms)" in labels and not any(") (" in lbl for lbl in labels)
    plt.close(fig)


def test_roofline_labels_do_not_overlap():
    import matplotlib.pyplot as plt

    rep = accelsim.simulate(ROOT / "models" / "resnet18.yaml", ROOT / "hw_configs" / "systolic_128x128_os.yaml")
    frame = roofline_frame(rep)
    placed = label_positions(frame, 6)
    # ResNet-18 has pairs of identical layers: they share a label instead of printing on top of each other
    texts = [t for _, t, _ in placed]
    assert any("," in t for t in texts)
    named = sum(len(t.split(", ")) if "more" not in t else 2 + int(t.split("+")[1].split()[0]) for t in texts)
    assert named == 6
    coords = [(math.log10(x), math.log10(y), dy) for (x, y), _, dy in placed]
    for i, (x1, y1, d1) in enumerate(coords):  # close labels never share an offset
        for x2, y2, d2 in coords[:i]:
            if abs(x1 - x2) < 0.12 and abs(y1 - y2) < 0.12:
                assert d1 != d2
    s = rep.summary()
    fig = plot_roofline(frame, s["peak_gops"], s["dram_bw_gbps"], label_top=6)
    assert len([t for t in fig.axes[0].texts if t.get_text() in texts]) == len(texts)
    plt.close(fig)
