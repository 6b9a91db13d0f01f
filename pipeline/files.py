"""Every file nanguard reads or writes outside a Beam stage goes through here, on any Beam filesystem.

Remote paths (gs://, s3://, any scheme Beam knows) use Beam's FileSystems; local paths use the OS directly, so
`nanguard gate` and `load_dataset`'s report check do not import Beam. Small JSON artifacts are written with
non-finite floats as null (strict JSON that every reader accepts).
"""
from __future__ import annotations

import json
import math
import os
import re


def is_remote(path: str) -> bool:
    return "://" in path


def _filesystems():
    from apache_beam.io.filesystems import FileSystems
    return FileSystems


def join(*parts: str) -> str:
    if any(is_remote(p) for p in parts):
        return _filesystems().join(*parts)
    return os.path.join(*parts)


def exists(path: str) -> bool:
    return _filesystems().exists(path) if is_remote(path) else os.path.exists(path)


def open_read(path: str):
    """A binary file object, as stored (no decompression)."""
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes
        return _filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open(path, "rb")


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The file's bytes; with `limit`, an OSError for a file (or a device such as /dev/zero) longer than that."""
    with open_read(path) as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise OSError(f"longer than {limit >> 20} MB")
    return data


def read_json(path: str):
    return json.loads(read_bytes(path).decode("utf-8"))


def write_bytes(path: str, data: bytes) -> str:
    if is_remote(path):
        with _filesystems().create(path) as f:
            f.write(data)
        return path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_text(path: str, text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def plain(obj):
    """JSON-safe copy: non-finite floats (an overflowing variance, say) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def write_json(path: str, obj, indent: int | None = 2) -> str:
    """indent None: compact, for files only nanguard reads back (a run's artifacts). Objects that are already
    plain (no non-finite float, only string keys: most) are written without plain()'s copy, which took ~1.5 s
    for a 1,000-column run's profiles."""
    try:
        text = json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False)
    except (ValueError, TypeError):  # a NaN or Inf somewhere, or a key JSON cannot take as it is
        text = json.dumps(plain(obj), indent=indent, sort_keys=False, allow_nan=False)
    return write_text(path, text)


def size(path: str) -> int:
    """A file's size in bytes, on any filesystem."""
    if is_remote(path):
        return _filesystems().match([path])[0].metadata_list[0].size_in_bytes
    return os.path.getsize(path)


def match(pattern: str) -> list[str]:
    """Paths of the files a pattern (glob) matches, on any filesystem. Local patterns are matched here, with
    Beam's glob semantics (`*` within a directory, `**` across them), so planning a local run does not import
    Beam's filesystems (seconds, with the cloud clients they load)."""
    if is_remote(pattern):
        return [m.path for m in _filesystems().match([pattern])[0].metadata_list]
    first = _GLOB_CHARS.search(pattern)
    if first is None:
        return [pattern] if os.path.exists(pattern) else []
    root = os.path.dirname(pattern[:first.start()])
    regex = re.compile(_glob_regex(pattern))
    found = []
    for directory, _, names in os.walk(root or "."):
        for name in names:
            path = os.path.join(directory, name) if root else os.path.relpath(os.path.join(directory, name))
            if regex.match(path):
                found.append(path)
    return found


_GLOB_CHARS = re.compile(r"[*?\[]")


def _glob_regex(pattern: str) -> str:
    """A glob as a regex: `**` any characters, `*` any but '/', `?` one character, `[...]` a class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 2:]:
            j = pattern.index("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            body = pattern[i + 1:j].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "(?s)" + "".join(out) + r"\Z"


def delete(paths: list[str]) -> None:
    _filesystems().delete(paths)


def rename(sources: list[str], destinations: list[str]) -> None:
    _filesystems().rename(sources, destinations)
