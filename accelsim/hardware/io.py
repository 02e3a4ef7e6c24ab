"""Load hardware descriptions: accelsim YAML/JSON (``kind:`` picks the schema) or SCALE-Sim ``.cfg``.

accelsim YAML example (``hw_configs/systolic_128x128_os.yaml``)::

    kind: systolic
    name: tpu-like-128
    clock_mhz: 1000
    rows: 128
    cols: 128
    dataflow: os
    ifmap_sram: {size_kb: 512}
    filter_sram: {size_kb: 512}
    ofmap_sram: {size_kb: 256}
    dram: {bw_gbps: 25.6, pj_per_bit: 8, type: LPDDR4}
    energy: {mac_pj: 0.3}          # optional overrides of the 45 nm table

Unknown fields are errors (typos never pass silently).
"""
from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from .._validation import read_text_file, read_config_file, validate_model
from ..errors import ConfigError
from .common import HardwareBase
from .registry import discover_kinds, kind_spec
from .systolic import SystolicArray


def _known_kinds() -> str:
    return ", ".join(sorted(discover_kinds()))


def hardware_from_dict(data: Any, source: str = "<hardware>") -> HardwareBase:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with a 'kind' field", source=source)
    if "layers" in data:
        raise ConfigError("this looks like a workload file (it has 'layers'), not hardware", source=source)
    kind = data.get("kind")
    if kind is None:
        raise ConfigError(f"missing 'kind' (one of: {_known_kinds()})", source=source, field="kind")
    spec = kind_spec(str(kind))
    if spec is None:
        raise ConfigError(f"unknown hardware kind {kind!r}; expected one of: {_known_kinds()}", source=source, field="kind")
    return validate_model(spec.hardware, data, source)


def load_hardware(path: str | Path) -> HardwareBase:
    """Load a hardware file: ``.yaml``/``.yml``/``.json`` (accelsim), ``.cfg`` (SCALE-Sim) or a ZigZag
    3.9.1 accelerator YAML (``operational_array`` + ``memories``: ``kind: loopnest``)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".cfg":
        return read_scalesim_cfg(p)
    try:
        data = read_config_file(p, "hardware", ", .cfg")
    except ConfigError as exc:
        # ZigZag files are read as they are (ZigZag's own tpu_like.yaml repeats 'ports'): a repeated
        # key is tolerated (last value wins, with a warning) only in a ZigZag accelerator file
        if "duplicate key" not in str(exc) or suffix not in (".yaml", ".yml"):
            raise
        from .zigzag_io import _read_yaml, is_zigzag_accelerator

        if not is_zigzag_accelerator(_read_yaml(p)):
            raise
        data = {"operational_array": None, "memories": None}
    if isinstance(data, dict) and "kind" not in data and "operational_array" in data and "memories" in data:
        from .loopnest import loopnest_from_zigzag  # a ZigZag 3.9.1 accelerator file

        return loopnest_from_zigzag(p)
    return hardware_from_dict(data, source=str(p))


def hardware_to_dict(hw: HardwareBase) -> dict[str, Any]:
    """Compact dict (defaults left out) that loads back to an equal object."""
    data = hw.model_dump(exclude_defaults=True, mode="json")
    data = {"kind": hw.kind, **{k: v for k, v in data.items() if k != "kind"}}
    return data


# --- SCALE-Sim .cfg -----------------------------------------------------------------------

_CFG_KEYS: dict[str, set[str]] = {
    "general": {"run_name"},
    "architecture_presets": {
        "arrayheight", "arraywidth", "ifmapsramszkb", "filtersramszkb", "ofmapsramszkb", "ifmapoffset",
        "filteroffset", "ofmapoffset", "dataflow", "bandwidth", "memorybanks", "readrequestbuffer",
        "writerequestbuffer",
    },
    "layout": {
        "ifmapcustomlayout", "ifmapsrambankbandwidth", "ifmapsrambanknum", "ifmapsrambankport",
        "filtercustomlayout", "filtersrambankbandwidth", "filtersrambanknum", "filtersrambankport",
    },
    "sparsity": {"sparsitysupport", "sparserep", "optimizedmapping", "blocksize", "randomnumbergeneratorseed", "nonzeroelems"},
    "run_presets": {"interfacebandwidth", "useramulatortrace"},
    "network_presets": {"topologycsvloc", "layoutcsvloc"},
}
_REQUIRED = {
    "architecture_presets": ("arrayheight", "arraywidth", "ifmapsramszkb", "filtersramszkb", "ofmapsramszkb", "dataflow"),
}


def read_scalesim_cfg(path: str | Path, clock_mhz: float = 1000.0) -> SystolicArray:
    """Read a SCALE-Sim 3 config as a :class:`SystolicArray`.

    Mapping: ArrayHeight/Width -> rows/cols; Sram sizes (KB, 1-byte words) -> SRAMs; Dataflow;
    ``InterfaceBandwidth: CALC`` -> ``stall_model: none`` (SCALE-Sim never stalls in CALC mode);
    ``USER`` -> ``stall_model: scalesim_user`` with ifmap/filter fill bandwidth from
    ``[layout] Ifmap/FilterSRAMBankBandwidth`` and ofmap drain bandwidth from ``Bandwidth`` (as
    SCALE-Sim 3.0.0 does). ``dram.bw_gbps`` is set from the larger read port at ``clock_mhz``.
    Custom layouts, sparsity and Ramulator traces are not supported and are rejected.
    """
    p = Path(path)
    source = str(p)
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    text = read_text_file(p)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"malformed cfg: {first}", source=source) from None
    for section in parser.sections():
        allowed = _CFG_KEYS.get(section)
        if allowed is None:
            raise ConfigError(f"unknown section [{section}]; expected {sorted(_CFG_KEYS)}", source=source, field=section)
        for key in parser[section]:
            if key not in allowed:
                raise ConfigError("unknown key", source=source, field=f"{section}.{key}")
    for section, keys in _REQUIRED.items():
        if not parser.has_section(section):
            raise ConfigError(f"missing section [{section}]", source=source, field=section)
        for key in keys:
            if not parser.has_option(section, key):
                raise ConfigError("missing key", source=source, field=f"{section}.{key}")

    def get(section: str, key: str, default: str | None = None) -> str | None:
        if parser.has_option(section, key):
            return parser.get(section, key).strip()
        return default

    def get_int(section: str, key: str, default: int | None = None, positive: bool = True) -> int:
        raw = get(section, key)
        if raw is None:
            if default is None:
                raise ConfigError("missing key", source=source, field=f"{section}.{key}")
            return default
        try:
            value = int(float(raw.split(",")[0]))
        except (ValueError, OverflowError):  # OverflowError: inf
            raise ConfigError(f"expected an integer, got {raw!r}", source=source, field=f"{section}.{key}") from None
        if positive and value <= 0:
            raise ConfigError(f"must be > 0, got {value}", source=source, field=f"{section}.{key}")
        return value

    def get_bool(section: str, key: str) -> bool:
        raw = (get(section, key, "false") or "false").lower()
        if raw not in ("true", "false", "yes", "no", "1", "0"):
            raise ConfigError(f"expected True or False, got {raw!r}", source=source, field=f"{section}.{key}")
        return raw in ("true", "yes", "1")

    arch = "architecture_presets"
    rows = get_int(arch, "arrayheight")
    cols = get_int(arch, "arraywidth")
    dataflow = (get(arch, "dataflow") or "").lower()
    if dataflow not in ("os", "ws", "is"):
        raise ConfigError(f"expected os, ws or is, got {dataflow!r}", source=source, field=f"{arch}.Dataflow")
    sizes = {k: get_int(arch, f"{k}sramszkb") for k in ("ifmap", "filter", "ofmap")}
    mode = (get("run_presets", "interfacebandwidth", "CALC") or "CALC").upper()
    if mode not in ("CALC", "USER"):
        raise ConfigError(f"expected CALC or USER, got {mode!r}", source=source, field="run_presets.InterfaceBandwidth")
    if get_bool("run_presets", "useramulatortrace"):
        raise ConfigError("Ramulator traces are not supported; set it to False", source=source, field="run_presets.UseRamulatorTrace")
    for key in ("ifmapcustomlayout", "filtercustomlayout"):
        if get_bool("layout", key):
            raise ConfigError("custom SRAM layouts are not supported; set it to False", source=source, field=f"layout.{key}")
    if get_bool("sparsity", "sparsitysupport"):
        raise ConfigError("SCALE-Sim's sparsity mode is not read from .cfg; give sparsity in the workload", source=source,
                          field="sparsity.SparsitySupport")
    name = get("general", "run_name", p.stem) or p.stem
    ports = None
    stall_model = "none"
    read_words = 10
    if mode == "USER":
        ofmap_bw = get_int(arch, "bandwidth")
        ifmap_bw = get_int("layout", "ifmapsrambankbandwidth", default=ofmap_bw)
        filter_bw = get_int("layout", "filtersrambankbandwidth", default=ofmap_bw)
        ports = {"ifmap_words_per_cycle": ifmap_bw, "filter_words_per_cycle": filter_bw, "ofmap_words_per_cycle": ofmap_bw}
        stall_model = "scalesim_user"
        read_words = max(ifmap_bw, filter_bw)
    data = {
        "kind": "systolic", "name": name, "description": f"from SCALE-Sim config {p.name} ({mode} mode)",
        "clock_mhz": clock_mhz, "rows": rows, "cols": cols, "dataflow": dataflow, "word_bits": 8,
        "ifmap_sram": {"size_kb": sizes["ifmap"]}, "filter_sram": {"size_kb": sizes["filter"]},
        "ofmap_sram": {"size_kb": sizes["ofmap"]},
        "dram": {"bw_gbps": read_words * clock_mhz * 1e6 / 1e9},
        "stall_model": stall_model, "scalesim_ports": ports, "mapping": "scalesim",
    }
    # nested parts are plain dicts so every bound is checked inside the error wrapper; the field of
    # an error is then renamed to the .cfg key it came from
    try:
        return validate_model(SystolicArray, data, source)
    except ConfigError as exc:
        field = _CFG_FIELD_OF.get((exc.field or "").split("[")[0], exc.field)
        raise ConfigError(exc.message, source=source, field=field) from None


#: accelsim field -> the SCALE-Sim .cfg key it is read from (for error messages)
_CFG_FIELD_OF = {
    "rows": "architecture_presets.ArrayHeight", "cols": "architecture_presets.ArrayWidth",
    "dataflow": "architecture_presets.Dataflow",
    "ifmap_sram.size_kb": "architecture_presets.IfmapSramSzkB",
    "filter_sram.size_kb": "architecture_presets.FilterSramSzkB",
    "ofmap_sram.size_kb": "architecture_presets.OfmapSramSzkB",
    "dram.bw_gbps": "layout.IfmapSRAMBankBandwidth/FilterSRAMBankBandwidth (or architecture_presets.Bandwidth)",
    "scalesim_ports.ifmap_words_per_cycle": "layout.IfmapSRAMBankBandwidth",
    "scalesim_ports.filter_words_per_cycle": "layout.FilterSRAMBankBandwidth",
    "scalesim_ports.ofmap_words_per_cycle": "architecture_presets.Bandwidth",
}
