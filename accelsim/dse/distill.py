"""AutoGAN-Distiller-style generator search under a MAC or simulated-latency budget.

The experiment (:func:`distillation_search`) on the digits 2x super-resolution task of
:mod:`accelsim.frontend.imaging`:

1. train a teacher generator (default 3 cells of 32 channels) on the HR targets;
2. a *hand-shrunk* student: the widest uniform copy of the teacher (same cells, one width) that
   meets the budget, distilled from the teacher;
3. a *searched* student: evolutionary search over per-cell width, kernel and op
   (:func:`accelsim.frontend.gen_search.search_generator`), candidates over budget rejected before
   training, each distilled briefly and ranked on a validation slice of the training pairs; the
   winner is distilled for as long as the hand-shrunk student;
4. every network is timed by :func:`accelsim.simulate` on ``hardware`` and measured (PSNR, SSIM)
   on the held-out digits.

The simulator is the latency model of the budget. torch is imported only when this runs (the
front-end extra). ASSUMPTIONS are those of the search: short distillation ranks candidates like
full training; AutoGAN-Distiller's weight-sharing differentiable supernet is replaced by an
evolutionary search over independently distilled candidates (the space and the content-loss
distillation are the paper's; the search method is not).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError


@dataclass
class GeneratorRow:
    role: str  # teacher / hand-shrunk / searched / nearest (no network)
    spec: str
    macs: int
    latency_ms: float | None
    psnr_db: float
    ssim: float


@dataclass
class DistillReport:
    rows: list[GeneratorRow]
    budget: dict[str, Any]
    candidates: int
    rejected_over_budget: int
    seconds: float
    hardware: str
    search_log: list[dict[str, Any]] = field(default_factory=list)
    workloads: dict[str, Any] = field(default_factory=dict)  # role -> accelsim workload of that network
    specs: dict[str, Any] = field(default_factory=dict)  # role -> GenSpec (teacher, hand_shrunk, searched)
    evaluated: list[Any] = field(default_factory=list)  # the search's candidates (gen_search.Candidate)

    def save_workloads(self, directory: str | Path) -> list[Path]:
        """Write each network's workload as YAML (``teacher.yaml``, ``hand_shrunk.yaml``, ``searched.yaml``)
        so a sweep file can list them under ``workloads``; returns the paths."""
        from ..workload.io import save_workload

        out = []
        Path(directory).mkdir(parents=True, exist_ok=True)
        for role, wl in self.workloads.items():
            path = Path(directory) / f"{role}.yaml"
            save_workload(wl, path)
            out.append(path)
        return out

    def text(self) -> str:
        lines = [f"| network | spec | MACs | simulated latency ({self.hardware}) | PSNR dB | SSIM |",
                 "|---|---|---:|---:|---:|---:|"]
        for r in self.rows:
            lat = f"{r.latency_ms * 1e3:.2f} us" if r.latency_ms is not None else "-"
            lines.append(f"| {r.role} | `{r.spec}` | {r.macs:,} | {lat} | {r.psnr_db:.2f} | {r.ssim:.4f} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.__dict__ for r in self.rows], "budget": self.budget, "candidates": self.candidates,
                "rejected_over_budget": self.rejected_over_budget, "seconds": self.seconds, "hardware": self.hardware,
                "search_log": self.search_log}


def simulated_latency_ms(hardware: Any) -> Callable[[Any], float]:
    """``workload -> latency in ms`` by :func:`accelsim.simulate` on ``hardware``."""
    from ..api import simulate

    def run(wl: Any) -> float:
        rep = simulate(wl, hardware, compare_dense=False)
        return rep.latency_cycles / (rep.clock_mhz * 1e3)

    return run


def distillation_search(hardware: Any, *, max_latency_ms: float | None = None, max_macs: int | None = None,
                        teacher_width: int = 32, cells: int = 3, epochs: int = 40, widths: Sequence[int] = (4, 8, 12, 16, 24),
                        kernels: Sequence[int] = (1, 3, 5), ops: Sequence[str] = ("conv", "dwsep", "res"),
                        population: int = 8, generations: int = 2, proxy_epochs: int = 8, seed: int = 0,
                        progress: Callable[[str], None] | None = None) -> DistillReport:
    """Teacher vs hand-shrunk vs searched students under the budget (module doc)."""
    if max_latency_ms is None and max_macs is None:
        raise ConfigError("give max_latency_ms and/or max_macs", source="distillation search", field="budget")
    try:
        from ..frontend import gen_search as gs
        from ..frontend import imaging as im
    except ImportError:
        raise ConfigError("the generator search trains networks: it needs torch (pip install 'accelsim[torch]')",
                          source="distillation search") from None

    t0 = time.perf_counter()
    im.set_threads(1)
    say = progress or (lambda _m: None)
    lat_of = simulated_latency_ms(hardware)
    data = im.load_sr_digits(seed=seed)

    def fits(spec: Any) -> bool:
        return ((max_macs is None or im.count_macs(spec) <= max_macs)
                and (max_latency_ms is None or lat_of(im.gen_workload(spec)) <= max_latency_ms))

    def row(role: str, spec: Any, net: Any) -> GeneratorRow:
        p, s = im.evaluate_generator(net, data)
        return GeneratorRow(role, spec.label(), im.count_macs(spec), lat_of(im.gen_workload(spec)), p, s)

    p0, s0 = im.nearest_baseline(data)
    rows = [GeneratorRow("nearest upscaling", "-", 0, None, p0, s0)]
    t_spec = im.uniform_spec(teacher_width, cells)
    teacher = im.train_generator(im.make_generator(t_spec, seed), data, epochs=epochs, seed=seed)
    rows.append(row("teacher", t_spec, teacher))
    say(f"trained the teacher {t_spec.label()}: {rows[-1].psnr_db:.2f} dB")
    hand = next((im.uniform_spec(w, cells) for w in range(teacher_width, 0, -1) if fits(im.uniform_spec(w, cells))), None)
    if hand is None:
        raise ConfigError(f"even width 1 exceeds the budget (max_macs {max_macs}, max_latency_ms {max_latency_ms})",
                          source="distillation search", field="budget")
    h_net = im.train_generator(im.make_generator(hand, seed), data, epochs=epochs, seed=seed, teacher=teacher)
    rows.append(row("hand-shrunk (distilled)", hand, h_net))
    say(f"distilled the hand-shrunk student {hand.label()}: {rows[-1].psnr_db:.2f} dB")
    res = gs.search_generator(teacher, data, max_macs=max_macs, max_latency_ms=max_latency_ms,
                              latency_of=lat_of if max_latency_ms is not None else None, widths=widths,
                              kernels=kernels, ops=ops, cells=cells, population=population, generations=generations,
                              proxy_epochs=proxy_epochs, seed=seed, progress=say)
    s_net = im.train_generator(im.make_generator(res.best.spec, seed), data, epochs=epochs, seed=seed, teacher=teacher)
    rows.append(row("searched (distilled)", res.best.spec, s_net))
    say(f"distilled the searched student {res.best.spec.label()}: {rows[-1].psnr_db:.2f} dB")
    log = [{"spec": c.spec.to_dict(), "macs": c.macs, "latency_ms": c.latency_ms, "proxy_psnr_db": c.proxy_psnr}
           for c in res.evaluated]
    wls = {role: im.gen_workload(spec, name=f"sr_{role}")
           for role, spec in (("teacher", t_spec), ("hand_shrunk", hand), ("searched", res.best.spec))}
    specs = {"teacher": t_spec, "hand_shrunk": hand, "searched": res.best.spec}
    return DistillReport(rows, {"max_latency_ms": max_latency_ms, "max_macs": max_macs}, len(res.evaluated),
                         res.rejected_over_budget, time.perf_counter() - t0, hardware.name, log, wls, specs,
                         list(res.evaluated))


# --- search: {method: distill} in a sweep file ------------------------------------------------------

#: final networks of a report: role in ``specs``/``workloads`` -> index of its row in ``rows``
_FINAL_ROWS = {"teacher": 1, "hand_shrunk": 2, "searched": 3}
OBJECTIVES = [("latency_ms", "min"), ("psnr_db", "max")]


def _spec_params(role: str, spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": role, "stem": spec.stem}
    for i, c in enumerate(spec.cells):
        out.update({f"cell{i}.width": c.width, f"cell{i}.kernel": c.kernel, f"cell{i}.op": c.op})
    return out


def report_points(report: DistillReport, hardware: Any, config: dict[str, Any]) -> list[Any]:
    """The teacher, the two distilled students and every search candidate as results-store points.

    Metrics: the network simulated on ``hardware`` (``simulate(...).metrics()``), ``macs``,
    ``within_budget`` (1/0) and its quality: ``psnr_db``/``ssim`` on the held-out digits for the
    three final networks (trained ``epochs``), ``proxy_psnr_db`` (validation slice of the training
    pairs after ``proxy_epochs`` of distillation) for candidates. ``config`` (the whole search
    configuration) is part of every point's identity, since training depends on it."""
    from ..api import simulate
    from ..frontend import imaging as im
    from .external import ExternalPoint
    from .space import canonical_hardware, workload_fingerprint

    hw_dict = canonical_hardware(hardware)
    budget = report.budget

    def point(role: str, spec: Any, wl: Any, quality: dict[str, Any]) -> Any:
        m = simulate(wl, hardware, compare_dense=False).metrics()
        macs = im.count_macs(spec)
        ok = ((budget["max_macs"] is None or macs <= budget["max_macs"])
              and (budget["max_latency_ms"] is None or m["latency_ms"] <= budget["max_latency_ms"]))
        return ExternalPoint(wl.name, workload_fingerprint(wl), hw_dict, {"distill": role, **config},
                             _spec_params(role, spec), {**m, "macs": macs, "within_budget": int(ok), **quality})

    out = []
    for role, spec in report.specs.items():
        r = report.rows[_FINAL_ROWS[role]]
        out.append(point(role, spec, report.workloads[role], {"psnr_db": r.psnr_db, "ssim": r.ssim}))
    for c in report.evaluated:
        out.append(point("candidate", c.spec, im.gen_workload(c.spec, name=f"sr_{c.spec.label().replace(' ', '_')}"),
                         {"proxy_psnr_db": c.proxy_psnr}))
    return out


def run_distill_sweep(sweep: Any, store_path: str | Path, *, progress: bool = False) -> Any:
    """Run a sweep file's ``search: {method: distill}`` and store its networks as points (docs/dse.md)."""
    from ..hardware.io import hardware_from_dict
    from .external import store_points
    from .store import ResultsStore
    from .version import model_version

    s = sweep.spec.search
    d = s.distill
    hw = hardware_from_dict(sweep.base_hardware, source=f"{sweep.source}: hardware")
    t0 = time.perf_counter()
    spec_json = sweep.spec.model_dump(mode="json")
    done = _stored_run(store_path, sweep.name, spec_json)
    if done is not None:  # this exact search is stored already: nothing to train again
        return _result(sweep.name, store_path, *done, requested=done[2], evaluated=0, t0=t0)
    say = (lambda m: print(m, file=__import__("sys").stderr)) if progress else None
    rep = distillation_search(hw, max_latency_ms=d.max_latency_ms, max_macs=d.max_macs, teacher_width=d.teacher_width,
                              cells=d.cells, epochs=d.epochs, widths=tuple(d.widths), kernels=tuple(d.kernels),
                              ops=tuple(d.ops), population=s.population, generations=s.generations,
                              proxy_epochs=d.proxy_epochs, seed=s.seed, progress=say)
    config = {**d.model_dump(mode="json"), "population": s.population, "generations": s.generations, "seed": s.seed}
    stored = store_points(store_path, sweep.name, sweep.source, spec_json, OBJECTIVES,
                          report_points(rep, hw, config), executor="distill")
    info = {**rep.to_dict(), "method": "distill", "version": model_version()}
    with ResultsStore(store_path) as st:
        st.save_search_info(sweep.name, stored.run_id, info)
    return _result(sweep.name, store_path, stored.run_id, info, stored.skipped, requested=stored.requested,
                   evaluated=stored.evaluated, t0=t0)


def _stored_run(store_path: str | Path, name: str, spec_json: dict[str, Any]) -> tuple[str, dict[str, Any], int] | None:
    """``(run_id, search info, points)`` when the store holds a finished distill run of exactly this spec
    (same simulator version), else None."""
    from .store import ResultsStore
    from .version import model_version

    if not Path(store_path).exists():
        return None
    with ResultsStore(store_path) as st:
        old, info = st.spec_of(name), st.search_info(name)
        n = st.count(sweep=name, status="ok")
        row = st.conn.execute("SELECT run_id FROM search_info WHERE sweep = ?", (name,)).fetchone()
    if (old is None or info is None or row is None or not n or info.get("version") != model_version()
            or {k: v for k, v in old.items() if k != "_resolved"} != spec_json):
        return None
    return row[0], info, n


def _result(name: str, store_path: str | Path, run_id: str, info: dict[str, Any], skipped: int, *, requested: int,
            evaluated: int, t0: float) -> Any:
    """The :class:`~accelsim.dse.result.SweepResult` of a distill sweep: front over the final networks."""
    import pandas as pd

    from .pareto import pareto_front
    from .result import SweepResult
    from .store import load

    df = load(store_path, sweep=name, status="ok")
    finals = df[df["role"] != "candidate"] if len(df) else df
    front = pareto_front(finals, OBJECTIVES) if len(finals) else pd.DataFrame()
    return SweepResult(name, Path(store_path), run_id, "distill", 1, requested=requested, evaluated=evaluated,
                       skipped=skipped, wall_s=time.perf_counter() - t0, objectives=list(OBJECTIVES), front=front,
                       params=["role", "macs"], feasible=len(finals), search_info=info)
