"""Content digests: the keys of design points, cached tiling/timing and compressed models."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
