"""Small JSON artifacts on any Beam filesystem: what the pipeline hands to the driver and what users read."""
from __future__ import annotations

import json
import math

from apache_beam.io.filesystems import FileSystems


def plain(obj):
    """JSON-safe copy: non-finite floats (an overflowing variance, say) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def write_json(path: str, obj) -> str:
    with FileSystems.create(path) as f:
        f.write(json.dumps(plain(obj), indent=2, sort_keys=False, allow_nan=False).encode("utf-8"))
    return path


def read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def join(*parts: str) -> str:
    return FileSystems.join(*parts)
