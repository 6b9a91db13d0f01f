"""Large value sets stored once, by hash, beside the outputs that name them.

An `in_set` expectation with a million values would be repeated in suite.json (twice: the suite and its
compiled form), validation_result.json and report.json. Every `value_set` longer than LARGE is written once
as value_sets/<sha256>.json and named in those files as {"$value_set": "sha256:<hex>", "size": N}; a suite.json
holding such references still loads with --suite (load_suite resolves them beside it and checks the hash).
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Callable

LARGE = 1000  # value sets with more values than this are stored by hash
REF_KEY = "$value_set"
DIRECTORY = "value_sets"


def _digest(values: list) -> str:
    return hashlib.sha256(json.dumps(values, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def file_name(hex_digest: str) -> str:
    return f"{DIRECTORY}/{hex_digest}.json"


def externalize(doc: Any, store: dict[str, list]) -> Any:
    """A copy of doc with every large value_set replaced by its reference; store collects {hex: values}."""
    doc = copy.deepcopy(doc)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "value_set" and isinstance(value, list) and len(value) > LARGE:
                    hex_digest = _digest(value)
                    store[hex_digest] = value
                    node[key] = {REF_KEY: f"sha256:{hex_digest}", "size": len(value)}
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(doc)
    return doc


def resolve(doc: Any, read: Callable[[str], bytes], where: str) -> Any:
    """doc with every value-set reference replaced by the values it names; read(name) returns the bytes of
    value_sets/<hex>.json beside the document. ValueError names a missing or altered file."""
    def walk(node):
        if isinstance(node, dict):
            if set(node) == {REF_KEY, "size"} and isinstance(node[REF_KEY], str):
                hex_digest = node[REF_KEY].removeprefix("sha256:")
                try:
                    values = json.loads(read(file_name(hex_digest)))
                except (OSError, ValueError) as e:
                    raise ValueError(f"{where}: value set {file_name(hex_digest)} cannot be read ({e}); it is "
                                     f"written beside suite.json by the run") from None
                if not isinstance(values, list) or _digest(values) != hex_digest:
                    raise ValueError(f"{where}: {file_name(hex_digest)} does not match its SHA-256; it was changed")
                return values
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    return walk(doc)
