"""The order in which energy components are listed in tables and stacked in figures."""
from __future__ import annotations

#: energy components in plotting order (others follow, alphabetically)
COMPONENT_ORDER = ["mac", "pe_rf", "vector", "decoder", "ifmap_sram", "filter_sram", "ofmap_sram", "dram", "static"]


def component_sort_key(name: str) -> tuple[int, str]:
    """Sort key: known components in :data:`COMPONENT_ORDER`, then the rest by name."""
    return (COMPONENT_ORDER.index(name) if name in COMPONENT_ORDER else len(COMPONENT_ORDER), name)
