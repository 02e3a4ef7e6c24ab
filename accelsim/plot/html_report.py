"""Self-contained interactive HTML pages (``accelsim report``), drawn with plotly.

Two pages:

- :func:`simulate_page` -- one simulate run: summary, dense comparison, per-layer latency
  (fill / compute / stall / drain) and energy-by-component bars with hover (op, engine,
  bottleneck and its reason, notes), a per-layer table and the hardware summary.
- :func:`store_page` -- one sweep of a results store: Pareto scatter (hover: the point's axis
  values and metrics; click: that point's breakdown below), the front as a table, a heatmap of
  the first objective over the first two axes.

Assumptions: plotly.js is embedded in the page (about 4.7 MB), so the file opens offline and
loads nothing from the network. Every piece of user text goes through ``html.escape`` or, in the
page's script, ``textContent``; JSON inside ``<script>`` has ``</`` escaped. Non-finite numbers
are written as ``null``. Only the first ``layers_for`` front points of a sweep are re-simulated
for a per-layer breakdown; every other point shows the totals the store holds.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .._validation import finite_for_json
from ..errors import AccelsimError
from ..report import SAME_RATIO_TOL, duration_text, energy_phrase, speed_phrase  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # pragma: no cover
    from ..report import Report

INSTALL_HINT = "the HTML report needs plotly: pip install 'accelsim[report]' (or pip install plotly)"
LATENCY_PARTS = ("fill", "compute", "stall", "drain")
_COLORS = {
    "mac": "#4C72B0", "pe_rf": "#64B5CD", "vector": "#8172B3", "decoder": "#CCB974", "ifmap_sram": "#55A868",
    "filter_sram": "#8DC891", "ofmap_sram": "#B7DEB8", "dram": "#C44E52", "static": "#999999",
    "compute": "#4C72B0", "stall": "#C44E52", "fill": "#DD8452", "drain": "#F2B880",
}


#: colours of components without a fixed one (crossbar, FPGA, ... parts), in order of first use
_EXTRA_COLORS = ("#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02", "#A6761D", "#17BECF",
                 "#BCBD22", "#8C564B", "#E377C2", "#7F7F7F", "#AEC7E8", "#FFBB78", "#98DF8A", "#FF9896")


def component_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per energy component: the fixed one where there is one, else the next unused extra colour."""
    out: dict[str, str] = {}
    extra = iter(c for c in _EXTRA_COLORS * (len(names) // len(_EXTRA_COLORS) + 1))
    for n in names:
        out[n] = _COLORS[n] if n in _COLORS and n not in LATENCY_PARTS else next(extra)
    return out


def _bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.0f} B"


def require_plotly():  # type: ignore[no-untyped-def]
    """``plotly.graph_objects``, or an :class:`AccelsimError` with the install hint."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise AccelsimError(INSTALL_HINT) from None
    return go


# --- wording ----------------------------------------------------------------------------------
def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not den:
        return None
    return float(num) / float(den)


def _fmt(v: Any) -> str:
    """A number as the pages show it (the page's script formats the same way): integers and
    integral floats with thousands separators, 4 significant digits below 10,000, whole
    numbers above."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()  # numpy scalar -> Python
        except (TypeError, ValueError):
            pass
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        if v.is_integer() or abs(v) >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(v)


# --- page assembly ----------------------------------------------------------------------------
_finite = finite_for_json  # a JSON-safe copy: non-finite floats -> None, numpy scalars -> Python


def _script_json(obj: Any) -> str:
    """JSON for a ``<script>`` block (``</`` and U+2028/9 escaped)."""
    text = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _fig_json(fig: Any) -> str:
    from plotly.io import to_json

    text = to_json(fig, validate=False, pretty=False, engine="json")
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:12px 20px;
color:#222;background:#fff}
h1{font-size:1.35em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9em}.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:120px}
.card b{display:block;font-size:1.15em}.card span{color:#666;font-size:.8em}
.verdict{font-size:1.05em;padding:6px 10px;border-left:4px solid #4C72B0;background:#f4f6fa;margin:8px 0}
.worse{color:#b02a2a}.better{color:#1e7b34}
table{border-collapse:collapse;font-size:.82em;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.t{text-align:left;max-width:420px}td.w{min-width:340px}
.kv{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0;font-size:.85em}.kv div{border:1px solid #ddd;border-radius:4px;padding:2px 6px}
.kv span{color:#666}
tr.sel td{background:#fff4c2}tr.click{cursor:pointer}tr.click:hover td{background:#eef3fb}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.82em}
.plot{width:100%}.note{color:#555;font-size:.85em}
"""


def _page(title: str, body: str, script: str) -> str:
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
        f"<script>{plotly_js}</script>\n</head><body>\n{body}\n"
        f"<script>\n\"use strict\";\n{script}\n</script>\n</body></html>\n"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, text_cols: Sequence[int] = (),
           row_attrs: Sequence[str] | None = None, wide_cols: Sequence[int] = ()) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for i, r in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        cells = "".join(f"<td class=\"t{' w' if j in wide_cols else ''}\">{html.escape(_fmt(v))}</td>" if j in text_cols
                        else f"<td>{html.escape(_fmt(v))}</td>" for j, v in enumerate(r))
        out.append(f"<tr{attrs}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


# --- per-layer breakdown (shared by both pages) -----------------------------------------------
def _wrap(text: str, width: int = 90) -> str:
    import textwrap

    return "<br>".join(textwrap.wrap(html.escape(text), width)) if text else ""


def layer_hover(s: Any, clock_mhz: float) -> str:
    """The hover text of one layer (plotly's hover label syntax: ``<br>`` for new lines)."""
    lines = [f"<b>{html.escape(s.layer)}</b> ({html.escape(s.op)}, {html.escape(s.engine)})",
             f"latency {s.latency_cycles:,} cycles = fill {s.fill_cycles:,} + compute {s.compute_cycles:,} "
             f"+ stall {s.stall_cycles:,} + drain {s.drain_cycles:,}",
             f"{s.latency_cycles / (clock_mhz * 1e3):.4g} ms; energy {s.energy_pj / 1e6:.4g} uJ; "
             f"utilization {s.utilization:.1%}",
             f"bottleneck: {html.escape(s.bottleneck)}"]
    if s.bottleneck_reason:
        lines.append(_wrap(s.bottleneck_reason))
    if s.dense_latency_cycles is not None:
        lines.append(f"vs dense: {speed_phrase(s.speedup_vs_dense)}, "
                     f"{energy_phrase(_ratio(s.energy_pj, s.dense_energy_pj))}")
    for n in s.notes:
        lines.append("note: " + _wrap(n))
    return "<br>".join(lines)


def breakdown_figure(report: "Report", *, title: str | None = None):  # type: ignore[no-untyped-def]
    """Two stacked bar charts sharing the layer axis: latency by part (cycles) and energy by component (uJ)."""
    go = require_plotly()
    from plotly.subplots import make_subplots

    from ..components import component_sort_key as _comp_key

    layers = list(report.layers)
    names = [s.layer for s in layers]
    hover = [layer_hover(s, report.clock_mhz) for s in layers]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("latency per layer (cycles)", "energy per layer (uJ)"))
    for part in LATENCY_PARTS:
        vals = [getattr(s, f"{part}_cycles") for s in layers]
        if not any(vals):
            continue
        fig.add_trace(go.Bar(x=names, y=vals, name=part, marker_color=_COLORS[part], legendgroup="latency",
                             legendgrouptitle_text="latency", hovertext=hover,
                             hovertemplate=f"{part}: %{{y:,}} cycles<br>%{{hovertext}}<extra></extra>"), row=1, col=1)
    comps = sorted({c for s in layers for c in s.energy_by_component_pj}, key=_comp_key)
    colors = component_colors(comps)
    for comp in comps:
        vals = [s.energy_by_component_pj.get(comp, 0.0) / 1e6 for s in layers]
        if not any(vals):
            continue
        share = [f"{(s.energy_by_component_pj.get(comp, 0.0) / s.energy_pj if s.energy_pj else 0):.1%}" for s in layers]
        fig.add_trace(go.Bar(x=names, y=vals, name=comp, marker_color=colors[comp], legendgroup="energy",
                             legendgrouptitle_text="energy", customdata=share, hovertext=hover,
                             hovertemplate=f"{comp}: %{{y:.4g}} uJ (%{{customdata}} of the layer)<br>%{{hovertext}}"
                                           "<extra></extra>"), row=2, col=1)
    fig.update_layout(barmode="stack", template="plotly_white", height=640, margin=dict(l=60, r=20, t=50, b=40),
                      title=dict(text=html.escape(title), font=dict(size=14)) if title else None,
                      legend=dict(groupclick="toggleitem"), hoverlabel=dict(align="left"))
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9), row=2, col=1)
    return fig


def dense_figure(report: "Report"):  # type: ignore[no-untyped-def]
    """Per-layer speedup (dense / this latency) and energy ratio (this / dense) on a log axis; 1 = dense."""
    go = require_plotly()
    layers = [s for s in report.layers if s.dense_latency_cycles is not None]
    names = [s.layer for s in layers]
    speed = [s.speedup_vs_dense for s in layers]
    eratio = [_ratio(s.energy_pj, s.dense_energy_pj) for s in layers]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=speed, name="speedup (dense latency / latency; > 1 is faster)",
                         marker_color="#4C72B0", hovertext=[f"<b>{html.escape(s.layer)}</b>: {speed_phrase(v)} vs dense"
                                                             f" ({s.dense_latency_cycles:,} -> {s.latency_cycles:,} cycles)"
                                                             for s, v in zip(layers, speed)],
                         hovertemplate="%{hovertext}<extra></extra>"))
    fig.add_trace(go.Bar(x=names, y=eratio, name="energy ratio (energy / dense energy; > 1 costs more)",
                         marker_color="#C44E52",
                         hovertext=[f"<b>{html.escape(s.layer)}</b>: {energy_phrase(v)} vs dense "
                                    f"({(s.dense_energy_pj or 0) / 1e6:.4g} -> {s.energy_pj / 1e6:.4g} uJ)"
                                    for s, v in zip(layers, eratio)],
                         hovertemplate="%{hovertext}<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot", line_color="#555")
    fig.update_layout(barmode="group", template="plotly_white", height=380, yaxis_type="log",
                      yaxis_title="ratio to dense (log)", margin=dict(l=60, r=20, t=30, b=40),
                      legend=dict(orientation="h", y=1.12), hoverlabel=dict(align="left"))
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9))
    return fig


def totals_figure(report: "Report"):  # type: ignore[no-untyped-def]
    """Energy by component (and area by component when the kind has an area model), whole network."""
    go = require_plotly()
    from plotly.subplots import make_subplots

    s = report.summary()
    colors = component_colors(list(s["energy_by_component_pj"]))  # the same colours as the per-layer bars
    comps = {k: v for k, v in s["energy_by_component_pj"].items() if v}
    area = {k: v for k, v in s.get("area_by_component_mm2", {}).items() if v}
    cols = 2 if area else 1
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.18,
                        subplot_titles=("energy by component (uJ)", "area by component (mm2)")[:cols])
    total_e = sum(comps.values()) or 1.0
    fig.add_trace(go.Bar(y=list(comps), x=[v / 1e6 for v in comps.values()], orientation="h", showlegend=False,
                         marker_color=[colors[k] for k in comps],
                         text=[f"{v / total_e:.1%}" for v in comps.values()], textposition="auto",
                         hovertemplate="%{y}: %{x:.4g} uJ (%{text})<extra></extra>"), row=1, col=1)
    if area:
        total_a = sum(area.values()) or 1.0
        fig.add_trace(go.Bar(y=list(area), x=list(area.values()), orientation="h", showlegend=False,
                             marker_color="#8172B3", text=[f"{v / total_a:.1%}" for v in area.values()],
                             textposition="auto", hovertemplate="%{y}: %{x:.4g} mm2 (%{text})<extra></extra>"),
                      row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template="plotly_white", height=max(260, 26 * max(len(comps), len(area)) + 90),
                      margin=dict(l=90, r=20, t=40, b=30))
    return fig


# --- page 1: one simulate run -----------------------------------------------------------------
def dense_verdict(report: "Report") -> str | None:
    """"vs the dense original on the same hardware: 1.21x faster, 2.20x more energy" (None when not compared)."""
    if not report.compared_to_dense or report.dense_latency_cycles is None:
        return None
    speed = _ratio(report.dense_latency_cycles, report.latency_cycles)
    energy = _ratio(report.energy_pj, report.dense_energy_pj)
    return f"vs the dense original on the same hardware: {speed_phrase(speed)}, {energy_phrase(energy)}"


def _summary_cards(report: "Report") -> str:
    s = report.summary()
    fill = sum(x.fill_cycles for x in report.layers)
    drain = sum(x.drain_cycles for x in report.layers)
    cards = [
        (duration_text(s["latency_ms"]), f"latency, {s['latency_cycles']:,} cycles at {report.clock_mhz:g} MHz"),
        (f"{s['energy_uj']:.4g} uJ", f"energy ({s['tops_per_w']:.3g} TOPS/W)"),
        (f"{s['utilization']:.1%}", "PE utilization"),
        (f"{s['inferences_per_s']:.4g}/s", "inferences"),
        (_bytes(s["dram_read_bytes"] + s["dram_write_bytes"]),
         f"DRAM traffic ({_bytes(s['dram_read_bytes'])} read, {_bytes(s['dram_write_bytes'])} write)"),
        (f"{s['macs']:,}", f"MACs in {s['layers']} layers"),
    ]
    if "area_mm2" in s:
        cards.append((f"{s['area_mm2']:.4g} mm2", "area"))
    body = "".join(f"<div class=\"card\"><b>{html.escape(a)}</b><span>{html.escape(b)}</span></div>" for a, b in cards)
    split = (f"latency {s['latency_cycles']:,} cycles = fill {fill:,} + compute {s['compute_cycles']:,} + stall "
             f"{s['stall_cycles']:,} + drain {drain:,}")
    return f"<div class=\"cards\">{body}</div><p class=\"meta\">{html.escape(split)}</p>"


def _layer_table(report: "Report") -> str:
    header = ["layer", "op", "engine", "latency (cycles)", "fill", "compute", "stall", "drain", "utilization",
              "energy (uJ)", "DRAM (KB)", "bottleneck"]
    if report.compared_to_dense:
        header += ["vs dense: latency", "vs dense: energy"]
    header += ["why / notes"]
    rows, attrs = [], []
    for s in report.layers:
        r: list[Any] = [s.layer, s.op, s.engine, s.latency_cycles, s.fill_cycles, s.compute_cycles, s.stall_cycles,
                        s.drain_cycles, f"{s.utilization:.1%}", s.energy_pj / 1e6,
                        (s.dram_read_bytes + s.dram_write_bytes) / 1024, s.bottleneck]
        worse = False
        if report.compared_to_dense:
            sp, er = s.speedup_vs_dense, _ratio(s.energy_pj, s.dense_energy_pj)
            r += [speed_phrase(sp), energy_phrase(er)]
            worse = (sp is not None and sp < 1 - SAME_RATIO_TOL) or (er is not None and er > 1 + SAME_RATIO_TOL)
        r.append("; ".join([s.bottleneck_reason] + list(s.notes)) if s.bottleneck_reason else "; ".join(s.notes))
        rows.append(r)
        attrs.append(" class=\"worse\"" if worse else "")
    ncol = len(header)
    return _table(header, rows, text_cols=(0, 1, 2, 11, ncol - 1, ncol - 2, ncol - 3) if report.compared_to_dense
                  else (0, 1, 2, 11, ncol - 1), row_attrs=attrs, wide_cols=(ncol - 1,))


def simulate_page(report: "Report", *, title: str | None = None) -> str:
    """The HTML page of one simulate run (see the module docstring)."""
    require_plotly()
    title = title or f"{report.workload} on {report.hardware}"
    figs: dict[str, Any] = {"breakdown": breakdown_figure(report), "totals": totals_figure(report)}
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class=\"meta\">{html.escape(report.hardware_summary or report.hardware)} "
             f"&middot; kind {html.escape(report.hardware_kind)} &middot; accelsim "
             f"{html.escape(report.accelsim_version or '?')}</p>",
             _summary_cards(report)]
    verdict = dense_verdict(report)
    if verdict is not None:
        figs["dense"] = dense_figure(report)
        d_ms = (report.dense_latency_cycles or 0) / (report.clock_mhz * 1e3)
        parts += ["<h2>Compared with the dense original</h2>",
                  f"<div class=\"verdict\" id=\"verdict\">{html.escape(verdict)} "
                  f"(dense: {d_ms:.4g} ms, {(report.dense_energy_pj or 0) / 1e6:.4g} uJ)</div>",
                  "<div id=\"fig-dense\" class=\"plot\"></div>"]
    parts += ["<h2>Per-layer breakdown</h2>",
              "<p class=\"note\">Hover a bar for the layer's cycles, bottleneck, reason and notes; click a legend "
              "entry to hide a part.</p><div id=\"fig-breakdown\" class=\"plot\"></div>",
              "<h2>Whole network</h2><div id=\"fig-totals\" class=\"plot\"></div>",
              "<h2>Layers</h2>" + ("<p class=\"note\">Rows in red are slower or cost more energy than dense.</p>"
                                   if verdict else "") + _layer_table(report),
              "<h2>Hardware</h2>", f"<pre>{html.escape(report.hardware_summary or report.hardware)}</pre>"]
    script = "const FIGS = {" + ",".join(f"{json.dumps(k)}:{_fig_json(f)}" for k, f in figs.items()) + "};\n" + _DRAW_JS
    return _page(title, "\n".join(parts), script)


_DRAW_JS = """
const CONFIG = {responsive: true, displaylogo: false};
for (const [name, fig] of Object.entries(FIGS)) {
  Plotly.newPlot("fig-" + name, fig.data, fig.layout, CONFIG);
}
"""


# --- page 2: a sweep in a results store -------------------------------------------------------
def _point_label(row: Any, axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={_fmt(row[a])}" for a in axes if a in row.index) or str(row["key"])[:12]


def _hover_texts(df: Any, names: Sequence[str], feasible: Any, on_front: Any) -> list[str]:
    """Per row: ``point <key12>`` (front / infeasible marks), then ``name = value`` for each of ``names``."""
    heads = [f"<b>point {html.escape(str(k)[:12])}</b>" + (" (Pareto front)" if o else "")
             + ("" if f else " (infeasible)") for k, f, o in zip(df["key"], feasible, on_front)]
    columns = [[f"{html.escape(c)} = {html.escape(_fmt(v))}" for v in df[c].tolist()] for c in names]
    return ["<br>".join(parts) for parts in zip(heads, *columns)]


def store_page(store_path: str | Path, *, sweep: str | None = None, x: str | None = None, y: str | None = None,
               layers_for: int = 20) -> str:
    """The HTML page of one sweep of a results store (default: its most recent sweep).

    ``x``/``y``: the scatter's metrics (default: the sweep's first two objectives).
    ``layers_for``: how many front points (best first objective first) get a per-layer breakdown
    (each is re-simulated from its stored hardware and workload; 0: none).
    """
    require_plotly()
    from ..dse.pareto import pareto_front
    from ..dse.plotting import _resolved, _sweep_name, resimulate
    from ..dse.spec import METRICS, canonical_metric, feasible_mask, parse_constraint
    from ..dse.store import ResultsStore, load
    from ..errors import ConfigError

    sp = Path(store_path)
    if not sp.is_file():
        raise ConfigError("results store not found", source=str(sp))
    with ResultsStore(sp) as st:
        name = _sweep_name(st, sweep)
        resolved = _resolved(st, name)
        counts = {k: st.count(sweep=name, status=k) for k in ("ok", "invalid", "error")}
    src = str(sp)
    df = load(sp, sweep=name, status="ok", version=resolved.get("version"))
    if len(df) == 0:
        df = load(sp, sweep=name, status="ok")
    if len(df) == 0:
        raise ConfigError(f"sweep {name!r} has no successfully simulated point", source=src)
    df = df.reset_index(drop=True)
    axes = [a for a in resolved.get("axes", []) if a in df.columns]
    if df["workload"].nunique() > 1:
        axes = ["workload"] + axes
    objectives = [tuple(o) for o in resolved.get("objectives", [])]
    senses = dict(objectives)

    def col(m: str, what: str) -> str:
        c = canonical_metric(m)
        if c not in df.columns:
            raise ConfigError(f"unknown metric {c!r}; metrics: {', '.join(k for k in df.columns if k in METRICS)}",
                              source=src, field=what)
        if not df[c].notna().any():
            raise ConfigError(f"metric {c!r} has no value in sweep {name!r} (e.g. area without an area model)",
                              source=src, field=what)
        return c

    xs = col(x or (objectives[0][0] if objectives else "latency_ms"), "x")
    ys = col(y or (objectives[1][0] if len(objectives) > 1 else "energy_uj"), "y")
    sense = {m: senses.get(m, METRICS.get(m, "min")) for m in (xs, ys)}
    constraints = [parse_constraint(t) for t in resolved.get("constraints", [])]
    feasible = feasible_mask(df, constraints).to_numpy(dtype=bool)
    front = pareto_front(df[feasible], [(xs, sense[xs]), (ys, sense[ys])])
    on_front = df.index.isin(front.index)
    shown_metrics = list(dict.fromkeys([xs, ys] + [o[0] for o in objectives if o[0] in df.columns]
                                       + [m for m in ("latency_ms", "energy_uj", "utilization", "area_mm2")
                                          if m in df.columns and df[m].notna().any()]))
    hover = _hover_texts(df, axes + shown_metrics, feasible, on_front)
    keys = [str(k) for k in df["key"]]

    # per-layer breakdowns of the first front points
    layer_figs: dict[str, Any] = {}
    layer_errors: dict[str, str] = {}
    for _, row in front.head(max(layers_for, 0)).iterrows():
        try:
            rep = resimulate(row, resolved)
        except AccelsimError as exc:  # e.g. a workload file that moved since the sweep: say so on the page
            layer_errors[str(row["key"])] = str(exc)
            continue
        layer_figs[row["key"]] = breakdown_figure(rep, title=f"{_point_label(row, axes)}: per-layer breakdown")

    go = require_plotly()
    fig = go.Figure()
    groups = [("infeasible", ~feasible, dict(color="rgba(0,0,0,0)", line=dict(color="#A8B0BA", width=1), size=7)),
              ("feasible", feasible & ~on_front, dict(color="#7A8796", opacity=0.7, size=7)),
              ("Pareto front", on_front, dict(color="#C44E52", line=dict(color="black", width=1), size=10))]
    Scatter = go.Scattergl if len(df) > 5000 else go.Scatter
    for label, mask, marker in groups:
        idx = [i for i in range(len(df)) if mask[i]]
        if not idx:
            continue
        sub = df.iloc[idx]
        if label == "Pareto front":
            order = sub[xs].argsort(kind="stable").to_numpy()
            idx = [idx[i] for i in order]
            sub = df.iloc[idx]
        fig.add_trace(Scatter(
            x=[_finite(v) for v in sub[xs]], y=[_finite(v) for v in sub[ys]], mode="markers" if label != "Pareto front"
            else "lines+markers", name=f"{label} ({len(idx)})", marker=marker,
            line=dict(color="#C44E52", width=1.2, shape="hv" if sense[xs] == sense[ys] else "linear"),
            customdata=[keys[i] for i in idx], hovertext=[hover[i] for i in idx],
            hovertemplate="%{hovertext}<extra></extra>"))
    wide = {m: _wide(df[m]) for m in (xs, ys)}
    fig.update_layout(template="plotly_white", height=520, margin=dict(l=70, r=20, t=30, b=60),
                      xaxis=dict(title=_label(xs, sense[xs]), type="log" if wide[xs] else "linear"),
                      yaxis=dict(title=_label(ys, sense[ys]), type="log" if wide[ys] else "linear"),
                      legend=dict(orientation="h", y=1.08), hoverlabel=dict(align="left"), clickmode="event")
    figs: dict[str, Any] = {"pareto": fig}

    heat_html = "<p class=\"note\">A heatmap needs two swept axes.</p>"
    hm_axes = [a for a in axes if a != "workload" and df[a].nunique() > 1][:2]
    if len(hm_axes) == 2:
        m = objectives[0][0] if objectives and objectives[0][0] in df.columns else xs
        agg = "min" if senses.get(m, METRICS.get(m, "min")) == "min" else "max"
        figs["heatmap"] = _heatmap_figure(df, hm_axes[0], hm_axes[1], m, agg)
        heat_html = (f"<p class=\"note\">{html.escape(m)} over {html.escape(hm_axes[0])} x {html.escape(hm_axes[1])}"
                     f": the {'lowest' if agg == 'min' else 'highest'} value of the points in each cell.</p>"
                     "<div id=\"fig-heatmap\" class=\"plot\"></div>")

    # what the detail panel needs for every point: axis values, metrics, stored totals
    energy_cols = sorted((c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"),
                         key=lambda c: _comp_order(c[7:-3]))
    detail_cols = list(dict.fromkeys(shown_metrics + [c for c in ("latency_cycles", "compute_cycles", "stall_cycles",
                                                                  "clock_mhz", "tops_per_w", "dram_read_bytes",
                                                                  "dram_write_bytes") if c in df.columns]))
    points = {
        "keys": keys,
        "axes": axes, "metrics": detail_cols, "energy": [c[7:-3] for c in energy_cols],
        "axis_values": _rows(df, axes), "metric_values": _rows(df, detail_cols), "energy_values": _rows(df, energy_cols),
        "front": [bool(v) for v in on_front], "feasible": [bool(v) for v in feasible],
        "colors": component_colors([c[7:-3] for c in energy_cols]),
        "layer_errors": layer_errors,
    }
    first = str(front.iloc[0]["key"]) if len(front) else str(df.iloc[0]["key"])

    front_rows = [[str(r["key"])[:12]] + [r[a] for a in axes] + [r[mm] for mm in shown_metrics]
                  for _, r in front.iterrows()]
    front_attrs = [f" class=\"click\" data-key=\"{html.escape(str(r['key']))}\"" for _, r in front.iterrows()]
    front_table = _table(["point"] + axes + shown_metrics, front_rows, text_cols=(0,), row_attrs=front_attrs)
    cons = ", ".join(str(c) for c in constraints) or "none"
    objs = ", ".join(f"{m} ({s})" for m, s in objectives) or "none"
    parts = [f"<h1>Sweep {html.escape(name)}</h1>",
             f"<p class=\"meta\">{html.escape(src)} &middot; {counts['ok']} ok, {counts['invalid']} invalid, "
             f"{counts['error']} failed points &middot; {int(feasible.sum())} feasible &middot; objectives "
             f"{html.escape(objs)} &middot; constraints {html.escape(cons)} &middot; simulator "
             f"{html.escape(str(resolved.get('version') or df['version'].iloc[0]))}</p>",
             f"<h2>Pareto front: {html.escape(xs)} vs {html.escape(ys)}</h2>",
             "<p class=\"note\">Hover a point for its axis values and metrics; click it (or a row of the table "
             "below) to show its breakdown.</p><div id=\"fig-pareto\" class=\"plot\"></div>",
             "<h2 id=\"detail-title\">Point</h2><div id=\"detail-info\"></div>"
             "<div id=\"detail-totals\" class=\"plot\"></div><div id=\"detail-layers\" class=\"plot\"></div>",
             f"<h2>Front ({len(front)} points)</h2>", front_table,
             "<h2>Heatmap</h2>", heat_html]
    script = ("const FIGS = {" + ",".join(f"{json.dumps(k)}:{_fig_json(f)}" for k, f in figs.items()) + "};\n"
              "const LAYER_FIGS = {" + ",".join(f"{json.dumps(k)}:{_fig_json(f)}" for k, f in layer_figs.items())
              + "};\n" + f"const POINTS = {_script_json(points)};\nconst FIRST = {json.dumps(first)};\n"
              f"const LAYERS_FOR = {int(max(layers_for, 0))};\n" + _DRAW_JS + _STORE_JS)
    return _page(f"sweep {name}", "\n".join(parts), script)


def _rows(df: Any, cols: Sequence[str]) -> list[list[Any]]:
    """``df[cols]`` as lists of plain Python values (JSON-safe)."""
    columns = [df[c].tolist() for c in cols]
    return [list(r) for r in zip(*columns)] if columns else [[] for _ in range(len(df))]


def _comp_order(name: str) -> tuple[int, str]:
    from ..components import component_sort_key as _comp_key

    return _comp_key(name)


def _wide(values: Any) -> bool:
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) > 1 and v.max() / v.min() > 100


def _label(metric: str, sense: str) -> str:
    from .pareto import _label as unit_label

    return unit_label(metric) + (" (higher is better)" if sense == "max" else "")


def _heatmap_figure(df: Any, xa: str, ya: str, metric: str, agg: str):  # type: ignore[no-untyped-def]
    go = require_plotly()
    from .heatmap import heatmap_table

    table = heatmap_table(df, xa, ya, metric, agg)
    counts = df.dropna(subset=[metric]).pivot_table(index=ya, columns=xa, values=metric, aggfunc="count")
    counts = counts.reindex(index=table.index, columns=table.columns)
    xlab = [_fmt(v) for v in table.columns]
    ylab = [_fmt(v) for v in table.index]
    z = [[_finite(float(v)) for v in row] for row in table.to_numpy(dtype=float)]
    n = [[0 if c != c else int(c) for c in row] for row in counts.to_numpy(dtype=float)]
    text = [[_fmt(v) if v is not None else "" for v in row] for row in z]
    from .pareto import _label as unit_label

    fig = go.Figure(go.Heatmap(
        z=z, x=xlab, y=ylab, text=text, texttemplate="%{text}", customdata=n, colorscale="Viridis_r",
        colorbar=dict(title=dict(text=unit_label(metric))), xgap=1, ygap=1,
        hovertemplate=f"{html.escape(xa)} = %{{x}}<br>{html.escape(ya)} = %{{y}}<br>{html.escape(metric)} "
                      f"({'lowest' if agg == 'min' else 'highest'} of %{{customdata}} points) = %{{z:.4g}}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=max(320, 40 * len(ylab) + 140),
                      margin=dict(l=70, r=20, t=20, b=60), xaxis=dict(title=xa, type="category"),
                      yaxis=dict(title=ya, type="category"))
    return fig


_STORE_JS = r"""
const INDEX = new Map(POINTS.keys.map((k, i) => [k, i]));
function fmt(v) {
  if (v === null || v === undefined) return "n/a";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 1e4) return Math.round(v).toLocaleString("en-US");
  return String(Number(v.toPrecision(4)));
}
function showPoint(key) {
  const i = INDEX.get(key);
  if (i === undefined) return;
  const label = POINTS.axes.map((a, j) => a + "=" + fmt(POINTS.axis_values[i][j])).join(", ");
  document.getElementById("detail-title").textContent = "Point " + key.slice(0, 12) + (label ? ": " + label : "") +
    (POINTS.front[i] ? " (Pareto front)" : "") + (POINTS.feasible[i] ? "" : " (infeasible)");
  const info = document.getElementById("detail-info");
  info.replaceChildren();
  const kv = document.createElement("div");
  kv.className = "kv";
  const add = (name, value) => {
    const d = document.createElement("div"), s = document.createElement("span");
    s.textContent = name + " ";
    d.appendChild(s);
    d.appendChild(document.createTextNode(fmt(value)));
    kv.appendChild(d);
  };
  POINTS.axes.forEach((a, j) => add(a, POINTS.axis_values[i][j]));
  POINTS.metrics.forEach((m, j) => add(m, POINTS.metric_values[i][j]));
  info.appendChild(kv);
  const mv = name => { const j = POINTS.metrics.indexOf(name); return j < 0 ? null : POINTS.metric_values[i][j]; };
  const traces = POINTS.energy.map((c, j) => ({
    type: "bar", orientation: "h", name: c, y: ["energy (uJ)"], x: [(POINTS.energy_values[i][j] || 0) / 1e6],
    marker: {color: POINTS.colors[c]}, xaxis: "x", yaxis: "y",
    hovertemplate: c + ": %{x:.4g} uJ<extra></extra>"}));
  const clock = mv("clock_mhz"), lat = mv("latency_cycles"), comp = mv("compute_cycles"), stall = mv("stall_cycles");
  if (clock && lat !== null && comp !== null && stall !== null) {
    const parts = [["compute", comp, "#4C72B0"], ["stall", stall, "#C44E52"], ["fill+drain", lat - comp - stall, "#DD8452"]];
    for (const [n, v, col] of parts) traces.push({type: "bar", orientation: "h", name: n, y: ["latency (ms)"],
      x: [v / (clock * 1e3)], marker: {color: col}, xaxis: "x2", yaxis: "y2",
      hovertemplate: n + ": %{x:.4g} ms (" + fmt(v) + " cycles)<extra></extra>"});
  }
  Plotly.react("detail-totals", traces, {barmode: "stack", template: FIGS.pareto.layout.template, height: 230,
    grid: {rows: 2, columns: 1, pattern: "independent"}, margin: {l: 100, r: 20, t: 10, b: 30},
    legend: {orientation: "h", y: -0.25}, showlegend: true}, CONFIG);
  const layers = document.getElementById("detail-layers");
  if (LAYER_FIGS[key]) {
    Plotly.react(layers, LAYER_FIGS[key].data, LAYER_FIGS[key].layout, CONFIG);
  } else {
    Plotly.purge(layers);
    layers.replaceChildren();
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = POINTS.layer_errors[key] ? "No per-layer breakdown: re-simulating this point failed: " +
      POINTS.layer_errors[key] : "Totals from the store. A per-layer breakdown is embedded for the first " +
      LAYERS_FOR + " front points; for this one run: accelsim plot --store STORE --kind breakdown --point " +
      key.slice(0, 12);
    layers.appendChild(p);
  }
  document.querySelectorAll("tr.click").forEach(tr => tr.classList.toggle("sel", tr.dataset.key === key));
  window.SELECTED = key;
}
document.getElementById("fig-pareto").on("plotly_click", ev => {
  if (ev.points.length) { const k = ev.points[0].customdata; history.replaceState(null, "", "#" + k.slice(0, 12)); showPoint(k); }
});
document.querySelectorAll("tr.click").forEach(tr => tr.addEventListener("click", () => {
  history.replaceState(null, "", "#" + tr.dataset.key.slice(0, 12)); showPoint(tr.dataset.key);
}));
const hash = location.hash.slice(1);
const fromHash = hash ? POINTS.keys.find(k => k.startsWith(hash)) : undefined;
showPoint(fromHash || FIRST);
"""


def check_out_path(path: str | Path) -> Path:
    """``path`` as an HTML file to write: an .html/.htm name in an existing directory (ConfigError otherwise)."""
    from ..errors import ConfigError

    p = Path(path)
    if p.is_dir():
        raise ConfigError("is a directory", source=str(p), field="out")
    if p.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"expected an .html file name, got {p.name!r}", source=str(p), field="out")
    if not p.parent.is_dir():
        raise ConfigError(f"directory {str(p.parent)!r} does not exist", source=str(p), field="out")
    return p


def write_page(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file + rename; see :func:`check_out_path`)."""
    from .._validation import atomic_write_text
    from ..errors import ConfigError

    p = check_out_path(path)
    try:
        atomic_write_text(p, text)
    except OSError as exc:
        raise ConfigError(f"cannot write ({exc.strerror or exc})", source=str(p), field="out") from None
    return p
