"""Price one design point fast: cached tiling/timing per (layer shape, hardware-without-prices).

This is what runs in a worker (a local process or a dask worker). For a point it needs the
network totals that :meth:`accelsim.report.Report.summary` gives, and computes them the same
way (same sums in the same order, so the numbers are bit-identical to ``simulate()``), but:

- layers with the same shape and compression are lowered and timed once per point (ResNet-50 has
  30 distinct layers out of 72);
- the (LayerProgram, Timing) pair is cached across points under a key of the hardware without its
  pricing-only fields (:func:`accelsim.dse.space.is_pricing_field`), so an axis such as
  ``energy.mac_pj`` or ``dram.pj_per_bit`` only re-prices the cached action counts;
- the cache is a bounded LRU, so memory stays flat however many points a worker sees.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..errors import AccelsimError
from .space import digest, timing_view

PROGRAM_CACHE_ENTRIES = 4096

_COUNTERS = {"lowered": 0, "priced": 0}


def counters() -> dict[str, int]:
    """How many layers this process lowered+timed and priced (for tests and benchmarks)."""
    return dict(_COUNTERS)


@dataclass
class _Prepared:
    workload: Any
    layer_keys: list[str]


class Evaluator:
    """Evaluates points of one sweep context; keeps workloads and the program cache."""

    def __init__(self, context: dict[str, Any]):
        self.context = context
        self._workloads: dict[str, _Prepared] = {}
        self._programs: OrderedDict[tuple[str, str], tuple[Any, Any]] = OrderedDict()
        self.max_entries = int(context.get("cache_entries") or PROGRAM_CACHE_ENTRIES)

    # --- workloads ----------------------------------------------------------------------
    def _prepare(self, wl: Any) -> _Prepared:
        keys = []
        for layer in wl.layers:
            d = layer.model_dump(mode="json", exclude={"name"})
            if layer.compression.sparsity.mask:
                mask = wl.mask(layer)
                d["_mask"] = hashlib.sha256(mask.tobytes()).hexdigest() + str(mask.shape) if mask is not None else None
            keys.append(json.dumps(d, sort_keys=True))
        return _Prepared(wl, keys)

    def workload(self, label: str, recipe: dict[str, Any] | None) -> tuple[_Prepared, float | None]:
        """The (prepared) workload of a point and, in co-exploration, the model's accuracy."""
        comp = self.context.get("compression")
        if comp is not None:
            from .coexplore import compressed_model

            cache_key = digest(recipe)
            prep = self._workloads.get(cache_key)
            result = compressed_model(comp, recipe or {})
            if prep is None:
                prep = self._prepare(result.workload)
                if len(self._workloads) > 256:
                    self._workloads.clear()
                self._workloads[cache_key] = prep
            return prep, result.accuracy
        prep = self._workloads.get(label)
        if prep is None:
            from .spec import WorkloadRef

            ref = next(WorkloadRef(**w) for w in self.context["workloads"] if w["label"] == label)
            prep = self._prepare(ref.load())
            self._workloads[label] = prep
        return prep, None

    # --- one point ----------------------------------------------------------------------
    def _program(self, lk: str, tkey: str, layer: Any, hw: Any, wl: Any) -> tuple[Any, Any]:
        from ..engines.base import lower_layer
        from ..sim.run import simulate_layer_program

        k = (lk, tkey)
        hit = self._programs.get(k)
        if hit is not None:
            self._programs.move_to_end(k)
            return hit
        prog = lower_layer(layer, hw, wl)
        timing = simulate_layer_program(prog, hw)
        _COUNTERS["lowered"] += 1
        self._programs[k] = (prog, timing)
        if len(self._programs) > self.max_entries:
            self._programs.popitem(last=False)
        return prog, timing

    def metrics(self, prep: _Prepared, hw: Any, tkey: str) -> dict[str, Any]:
        """Network totals of ``prep.workload`` on ``hw`` (as ``simulate(...).summary()`` computes them)."""
        from ..energy import leakage_power_mw, unit_energy_pj

        wl = prep.workload
        # the same arithmetic as energy.price_actions / leakage_energy_pj (bit-identical sums),
        # with the unit energy of each distinct action and the leakage powers computed once per point
        powers = list(leakage_power_mw(hw).values())
        units: dict[tuple[str, str, int, int, str], float] = {}

        def price(actions: list[Any]) -> dict[str, float]:
            out: dict[str, float] = {}
            for a in actions:
                sig = (a.component, a.action, a.bits, a.act_bits, a.scheme)
                u = units.get(sig)
                if u is None:
                    u = units[sig] = unit_energy_pj(a, hw)
                out[a.component] = out.get(a.component, 0.0) + a.count * u
            return out

        per_key: dict[str, tuple[Any, Any, dict[str, float], float]] = {}
        latency = compute = stall = macs = pe_cycles = 0
        energy_total_terms: list[float] = []
        by_comp: dict[str, float] = {}
        dram_r = dram_w = 0.0
        pe_max = 0
        for layer, lk in zip(wl.layers, prep.layer_keys):
            got = per_key.get(lk)
            if got is None:
                prog, timing = self._program(lk, tkey, layer, hw, wl)
                energy = price(prog.actions)
                energy["static"] = sum(hw.leakage_pj(p, timing.latency_cycles) for p in powers)
                _COUNTERS["priced"] += 1
                got = (prog, timing, energy, float(sum(energy.values())))
                per_key[lk] = got
            prog, timing, energy, e_layer = got
            latency += timing.latency_cycles
            compute += timing.compute_cycles
            stall += timing.stall_cycles
            macs += prog.macs
            if prog.macs:
                pe_cycles += timing.total_cycles * prog.pe_count
            energy_total_terms.append(e_layer)
            for c, v in energy.items():
                by_comp[c] = by_comp.get(c, 0.0) + v
            dram_r += prog.dram_read_total_bits / 8
            dram_w += prog.dram_write_total_bits / 8
            pe_max = max(pe_max, prog.pe_count)
        energy_pj = float(sum(energy_total_terms))
        latency_s = latency / (hw.clock_mhz * 1e6)
        energy_j = energy_pj * 1e-12
        out: dict[str, Any] = {
            "latency_cycles": latency, "latency_ms": latency_s * 1e3, "energy_pj": energy_pj,
            "energy_uj": energy_pj * 1e-6, "edp_uj_ms": energy_pj * 1e-6 * latency_s * 1e3,
            "macs": macs, "compute_cycles": compute, "stall_cycles": stall,
            "utilization": macs / pe_cycles if pe_cycles else 0.0,
            "inferences_per_s": 1.0 / latency_s if latency_s else float("inf"),
            "tops_per_w": (2 * macs / energy_j) / 1e12 if energy_j else 0.0,
            "dram_read_bytes": dram_r, "dram_write_bytes": dram_w,
            "pe_count": pe_max, "clock_mhz": hw.clock_mhz, "dram_bw_gbps": hw.dram.bw_gbps,
            "peak_gops": 2 * pe_max * hw.clock_mhz * 1e6 / 1e9,
            "achieved_gops": 2 * macs / latency_s / 1e9 if latency_s else 0.0,
            "operational_intensity": 2 * macs / (dram_r + dram_w) if dram_r + dram_w else float("inf"),
            "layers": len(wl.layers),
        }
        for c, v in by_comp.items():
            out[f"energy_{c}_pj"] = v
        if type(hw).has_area_model:
            from ..engines.base import engine_for

            areas = engine_for(hw).area_mm2(wl, hw)
            out["area_mm2"] = float(sum(areas.values()))
            for c, v in areas.items():
                out[f"area_{c}_mm2"] = float(v)
        return out

    def prepare(self, task: dict[str, Any]) -> dict[str, Any]:
        """Co-exploration: compress + measure one recipe into the disk cache (never raises)."""
        from .coexplore import compressed_model

        t0 = time.perf_counter()
        res: dict[str, Any] = {"key": task["key"], "status": "ok", "error": None}
        try:
            res["accuracy"] = compressed_model(self.context["compression"], task["recipe"]).accuracy
        except Exception as exc:
            res["status"], res["error"] = "error", f"{exc.__class__.__name__}: {exc}"
        res["elapsed_s"] = time.perf_counter() - t0
        return res

    def evaluate(self, task: dict[str, Any]) -> dict[str, Any]:
        """One point -> ``{key, status: ok|invalid|error, error, metrics, elapsed_s}``; never raises."""
        from .space import hardware_of

        t0 = time.perf_counter()
        res: dict[str, Any] = {"key": task["key"], "status": "ok", "error": None, "metrics": None,
                               "worker": f"{os.uname().nodename}:{os.getpid()}"}
        try:
            hw = hardware_of(task["hardware"])
            tkey = task.get("timing_key") or digest(timing_view(task["hardware"]))
            prep, accuracy = self.workload(task["workload"], task.get("recipe"))
            m = self.metrics(prep, hw, tkey)
            if accuracy is not None:
                m["accuracy"] = float(accuracy)
            res["metrics"] = m
        except AccelsimError as exc:  # the hardware cannot run this workload / bad combination
            res["status"], res["error"] = "invalid", str(exc)
        except Exception as exc:  # a bug: record it and go on
            tb = traceback.format_exc(limit=3).strip().splitlines()
            res["status"] = "error"
            res["error"] = f"{exc.__class__.__name__}: {exc} [{' | '.join(line.strip() for line in tb[-3:])}]"
        res["elapsed_s"] = time.perf_counter() - t0
        return res


_EVALUATORS: dict[str, Evaluator] = {}


def evaluator_for(context: dict[str, Any]) -> Evaluator:
    """The process-wide evaluator of ``context`` (workers keep it between tasks)."""
    key = context["id"]
    ev = _EVALUATORS.get(key)
    if ev is None:
        if len(_EVALUATORS) > 8:
            _EVALUATORS.clear()
        ev = Evaluator(context)
        _EVALUATORS[key] = ev
    return ev


def evaluate_chunk(context: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate a list of point tasks (the unit of work sent to an executor)."""
    ev = evaluator_for(context)
    return [ev.prepare(t) if t.get("prepare") else ev.evaluate(t) for t in tasks]
