"""Small explicit memory hierarchies for the mapper tests (ZigZag 3.9.1's tpu_like, by hand)."""
from __future__ import annotations

from accelsim.hardware.hierarchy import MemoryHierarchy


def _port(name, typ, bmin, bmax, alloc):
    return {"name": name, "type": typ, "bandwidth_min_bits": bmin, "bandwidth_max_bits": bmax,
            "allocation": [{"operand": o, "direction": d} for o, d in alloc]}


def tpu_like(rows: int = 32, cols: int = 32, sram_bits: int = 16777216, rf_w_bits: int = 1024,
             rf_o_bits: int = 16) -> MemoryHierarchy:
    """ZigZag's tpu_like.yaml (values verbatim), optionally resized."""
    return MemoryHierarchy.model_validate({
        "name": "tpu_like",
        "array": {"dimensions": [{"name": "D1", "size": rows}, {"name": "D2", "size": cols}],
                  "mac_energy_pj": 0.04, "systolic_dimensions": ["D1", "D2"]},
        "memories": [
            {"name": "rf_128B", "size_bits": rf_w_bits, "operands": ["W"], "read_pj": 0.095, "write_pj": 0.095,
             "ports": [_port("r_port_1", "read", 8, 8, [("W", "tl")]), _port("w_port_1", "write", 8, 8, [("W", "fh")])],
             "served_dimensions": []},
            {"name": "rf_2B", "size_bits": rf_o_bits, "operands": ["O"], "read_pj": 0.021, "write_pj": 0.021,
             "ports": [_port("r_port_1", "read", 16, 16, [("O", "tl")]), _port("r_port_2", "read", 16, 16, [("O", "th")]),
                       _port("w_port_1", "write", 16, 16, [("O", "fh")]), _port("w_port_2", "write", 16, 16, [("O", "fl")])],
             "served_dimensions": []},
            {"name": "sram_2MB", "size_bits": sram_bits, "operands": ["I", "O"], "read_pj": 416.16, "write_pj": 378.4,
             "ports": [_port("r_port_1", "read", 64, 2048, [("I", "tl"), ("O", "tl"), ("O", "th")]),
                       _port("w_port_1", "write", 64, 2048, [("I", "fh"), ("O", "fh"), ("O", "fl")])],
             "served_dimensions": ["D1", "D2"]},
            {"name": "dram", "size_bits": 10_000_000_000, "operands": ["I", "W", "O"], "read_pj": 700, "write_pj": 750,
             "ports": [_port("rw_port_1", "read_write", 64, 64,
                             [(o, d) for o in ("I", "W") for d in ("fh", "tl")] + [("O", d) for d in ("fh", "tl", "fl", "th")])],
             "served_dimensions": ["D1", "D2"]},
        ],
    })
