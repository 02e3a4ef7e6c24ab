"""The SimPy pipeline: hand-computed timings, and fast-forward == full replay on random programs."""
from __future__ import annotations

import random

import pytest
import simpy

from accelsim.sim.pipeline import replay_program, simulate_program
from accelsim.stats import Repeat, Tile, iter_tiles, program_totals


def test_single_tile_hand_computed():
    # load 800 bits at 8 bits/cycle = 100 cycles, compute 50, store 160 bits = 20 cycles
    t = simulate_program((Tile(800, 50, 160),), 8.0)
    assert (t.fill_cycles, t.compute_cycles, t.stall_cycles, t.drain_cycles) == (100, 50, 0, 20)
    assert t.latency_cycles == 170
    assert t.dram_busy_cycles == 120


def test_compute_bound_overlaps_loads():
    # each tile loads in 10 cycles and computes for 100: only the first load is exposed
    prog = (Repeat((Tile(80, 100, 0),), 50),)
    t = replay_program(prog, 8.0)
    assert t.fill_cycles == 10 and t.stall_cycles == 0 and t.compute_cycles == 5000 and t.drain_cycles == 0


def test_bandwidth_bound_stalls_by_the_deficit():
    # loads take 100 cycles, compute 10: steady state one tile per 100 cycles
    n = 40
    t = replay_program((Repeat((Tile(800, 10, 0),), n),), 8.0)
    assert t.fill_cycles == 100
    assert t.compute_cycles == 10 * n
    assert t.stall_cycles == (n - 1) * 90  # each later tile waits 100 - 10 cycles
    assert t.stall_input_cycles == t.stall_cycles and t.stall_output_cycles == 0


def test_shared_channel_serialises_loads_and_stores():
    # 60-cycle load + 60-cycle store per tile over one channel: 120 cycles per tile
    n = 30
    t = replay_program((Repeat((Tile(480, 10, 480),), n),), 8.0)
    assert t.dram_busy_cycles == 120 * n
    assert t.latency_cycles >= 120 * n


def _random_program(rng: random.Random, depth: int = 0):
    nodes = []
    for _ in range(rng.randint(1, 4)):
        if depth < 2 and rng.random() < 0.45:
            nodes.append(Repeat(_random_program(rng, depth + 1), rng.randint(0, 12)))
        else:
            nodes.append(Tile(
                load_bits=rng.choice([0, rng.randint(1, 4000)]),
                compute_cycles=rng.randint(0, 400),
                store_bits=rng.choice([0, 0, rng.randint(1, 3000)]),
                decode_cycles=rng.choice([0, 0, 0, rng.randint(1, 300)]),
            ))
    return tuple(nodes)


@pytest.mark.parametrize("seed", range(150))
def test_fast_forward_equals_full_replay(seed):
    rng = random.Random(seed)
    prog = _random_program(rng)
    bw = rng.choice([1.0, 3.0, 8.0, 16.5, 64.0])
    fast = simulate_program(prog, bw)
    full = replay_program(prog, bw)
    for field in ("compute_cycles", "stall_cycles", "fill_cycles", "drain_cycles", "dram_busy_cycles",
                  "decode_busy_cycles", "stall_input_cycles", "stall_output_cycles"):
        assert getattr(fast, field) == getattr(full, field), field
    assert fast.simulated_tiles + fast.skipped_tiles == full.simulated_tiles
    assert full.compute_cycles == program_totals(prog)[2]


def test_fast_forward_skips_long_runs():
    prog = (Tile(5000, 10, 0), Repeat((Tile(300, 120, 64), Repeat((Tile(900, 30, 0),), 200), Tile(0, 5, 900)), 300))
    fast = simulate_program(prog, 8.0)
    assert fast.skipped_tiles > 0.95 * (fast.skipped_tiles + fast.simulated_tiles)
    full = replay_program(prog, 8.0)
    assert (fast.latency_cycles, fast.stall_cycles) == (full.latency_cycles, full.stall_cycles)


def test_iter_tiles_matches_totals():
    prog = (Tile(1, 2, 3), Repeat((Tile(4, 5, 6), Repeat((Tile(7, 8, 9),), 3)), 2))
    tiles = list(iter_tiles(prog))
    assert len(tiles) == program_totals(prog)[0] == 9
    assert sum(t.compute_cycles for t in tiles) == program_totals(prog)[2]


def test_bad_bandwidth_rejected():
    with pytest.raises(ValueError):
        simulate_program((Tile(1, 1, 1),), 0.0)


@pytest.mark.parametrize("hw_file", ["systolic_128x128_os.yaml", "systolic_32x32_is.yaml", "systolic_128x128_ws.yaml"])
def test_fast_forward_equals_replay_on_real_layers(root, hw_file):
    import accelsim

    hw = accelsim.load_hardware(root / "hw_configs" / hw_file)
    wl = accelsim.load_workload(root / "models" / "resnet18.yaml")
    fast = accelsim.simulate(wl, hw)
    full = accelsim.simulate(wl, hw, skip=False)
    assert [(s.stall_cycles, s.latency_cycles) for s in fast.layers] == [(s.stall_cycles, s.latency_cycles) for s in full.layers]
    assert fast.energy_pj == pytest.approx(full.energy_pj, rel=1e-12)


# --- the lean event engine (accelsim.sim.lean_des) against SimPy itself ---------------------------

def _tie_heavy_program(rng: random.Random, depth: int = 0):
    """Few distinct small values: DRAM requests of loads and stores often fall in the same cycle."""
    nodes = []
    for _ in range(rng.randint(1, 4)):
        if depth < 2 and rng.random() < 0.5:
            nodes.append(Repeat(_tie_heavy_program(rng, depth + 1), rng.randint(0, 9)))
        else:
            nodes.append(Tile(rng.choice([0, 8, 16, 24, 64]), rng.choice([0, 1, 2, 3, 8]),
                              rng.choice([0, 0, 8, 16, 24]), rng.choice([0, 0, 0, 1, 2, 8])))
    return tuple(nodes)


@pytest.mark.parametrize("seed", range(60))
def test_lean_engine_equals_simpy_on_random_programs(seed):
    from accelsim.sim.pipeline import PipelineSim

    rng = random.Random(7000 + seed)
    for prog, bw in ((_random_program(rng), rng.choice([1.0, 3.0, 8.0, 16.5, 64.0])),
                     (_tie_heavy_program(rng), rng.choice([1.0, 2.0, 3.0, 4.0, 8.0]))):
        for skip in (True, False):
            lean = PipelineSim(prog, bw, skip=skip).run()
            ref = PipelineSim(prog, bw, skip=skip, engine="simpy").run()
            assert lean == ref  # every field: cycles, counters, simulated/skipped tiles, source


@pytest.mark.parametrize("hw_file", ["systolic_128x128_os.yaml", "systolic_32x32_is.yaml", "systolic_128x128_ws.yaml",
                                     "scnn_like_skipping.yaml"])
def test_lean_engine_equals_simpy_on_real_layers(root, hw_file, monkeypatch):
    import accelsim
    from accelsim.sim import run as RUN
    from accelsim.sim.pipeline import PipelineSim

    programs = []
    orig = RUN.simulate_program

    def record(body, bw, skip=True):
        programs.append((body, bw))
        return orig(body, bw, skip=skip)

    monkeypatch.setattr(RUN, "simulate_program", record)
    hw = accelsim.load_hardware(root / "hw_configs" / hw_file)
    for mapping in ("search", "scalesim"):
        accelsim.simulate(accelsim.load_workload(root / "models" / "resnet18.yaml"), hw.model_copy(update={"mapping": mapping}))
    distinct = list(dict.fromkeys(programs))
    assert len(distinct) > 10
    for body, bw in distinct:
        assert PipelineSim(body, bw).run() == PipelineSim(body, bw, engine="simpy").run()


def _random_actor(env, rng: random.Random, pid: int, res: dict, log: list):
    """A process doing random resource operations (zero delays included); logs each step's time."""
    for step in range(rng.randint(1, 12)):
        kind = rng.choice(["timeout", "timeout0", "get", "put", "sget", "sput", "request"])
        if kind == "timeout":
            yield env.timeout(rng.randint(1, 3))
        elif kind == "timeout0":
            yield env.timeout(0)
        elif kind == "get":
            yield res["box"].get(rng.randint(1, 2))
        elif kind == "put":
            yield res["box"].put(rng.randint(1, 2))
        elif kind == "sget":
            item = yield res["store"].get()
            log.append(("item", pid, item))
        elif kind == "sput":
            yield res["store"].put((pid, step))
        else:
            with res["lock"].request() as req:
                yield req
                log.append(("got", pid, env.now, res["lock"].count, len(res["lock"].queue)))
                yield env.timeout(rng.randint(0, 2))
        log.append((pid, step, kind, env.now, res["box"].level, len(res["store"].items)))


@pytest.mark.parametrize("seed", range(40))
def test_lean_engine_event_order_equals_simpy(seed):
    """lean_des's time-FIFO + timeout heap gives SimPy's event order on random processes sharing a
    container, a store and a resource (zero-delay timeouts, same-time contention, dead ends)."""
    from accelsim.sim import lean_des

    steps = 0
    for sub in range(5):
        logs = []
        for des in (lean_des, simpy):
            rng = random.Random(100 * seed + sub)
            env = des.Environment()
            res = {"box": des.Container(env, capacity=3, init=rng.randint(0, 3)), "store": des.Store(env),
                   "lock": des.Resource(env, capacity=1)}
            log: list = []
            for pid in range(rng.randint(2, 6)):
                env.process(_random_actor(env, rng, pid, res, log))
            env.run()
            logs.append(log)
        assert logs[0] == logs[1]
        steps += len(logs[0])
    assert steps > 20
