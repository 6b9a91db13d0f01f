"""Expectation suites in Great Expectations' JSON format: loading and shape checks, before any pipeline runs.

GE 1.x shape: {"name", "expectations": [{"type", "kwargs", "meta"}], "meta"}. The 0.x keys
(expectation_suite_name, expectation_type) are accepted with a deprecation note. Anything malformed or
unsupported is refused here with a message naming the expectation, never skipped.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from importlib import resources
from typing import Any, Callable, Mapping

from expectations.catalog import IMPUTE_STATISTICS, ROW_ACTIONS, SUPPORTED, actions_for, default_action
from expectations.errors import SuiteError
from expectations.value_sets import resolve


@dataclasses.dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def action(self) -> str:
        """meta.nanguard.on_fail: quarantine (row types' default), clip, impute, warn or fail (aggregates')."""
        return (self.meta.get("nanguard") or {}).get("on_fail", default_action(self.type))

    @property
    def impute_with(self) -> str:
        """meta.nanguard.impute: the clean statistic an `impute` action fills in (mean or median)."""
        return (self.meta.get("nanguard") or {}).get("impute", "mean")

    def to_json(self) -> dict:
        return {"type": self.type, "kwargs": dict(self.kwargs), "meta": dict(self.meta)}


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    expectations: tuple[Expectation, ...]
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "expectations": [e.to_json() for e in self.expectations], "meta": dict(self.meta)}


def parse_suite(doc: Any, where: str) -> Suite:
    """A suite from GE's JSON, or from the suite.json a nanguard run wrote beside its report (the suite it ran,
    under "suite"), so a run's rules can be passed back with --suite."""
    if isinstance(doc, dict) and WRITTEN_SUITE_KEYS <= set(doc) and isinstance(doc["suite"], dict):
        doc = doc["suite"]
    if not isinstance(doc, dict):
        raise SuiteError(f"{where}: a suite is a JSON object with 'name' and 'expectations', got {type(doc).__name__}")
    if "expectation_suite_name" in doc and "name" not in doc:
        warnings.warn(f"{where}: 'expectation_suite_name' is the Great Expectations 0.x key; use 'name'",
                      DeprecationWarning, stacklevel=2)
    name = doc.get("name", doc.get("expectation_suite_name"))
    items = doc.get("expectations")
    if not isinstance(name, str) or not isinstance(items, list):
        raise SuiteError(f"{where}: a suite needs a string 'name' and a list 'expectations'")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SuiteError(f"{where}: expectations[{i}] is not a JSON object")
        etype = item.get("type", item.get("expectation_type"))
        kwargs = item.get("kwargs", {})
        meta = item.get("meta") or {}
        if not isinstance(etype, str) or not isinstance(kwargs, dict) or not isinstance(meta, dict):
            raise SuiteError(f"{where}: expectations[{i}] needs a string 'type' and an object 'kwargs'")
        if "expectation_type" in item and "type" not in item:
            warnings.warn(f"{where}: expectations[{i}] uses the Great Expectations 0.x key 'expectation_type'; "
                          f"use 'type'", DeprecationWarning, stacklevel=2)
        e = Expectation(etype, dict(kwargs), dict(meta))
        if not isinstance(meta.get("nanguard", {}), dict):
            raise SuiteError(f"{where}: expectations[{i}] ({etype}): meta.nanguard must be an object")
        if e.action not in ROW_ACTIONS or (etype in SUPPORTED and e.action not in actions_for(etype)):
            raise SuiteError(f"{where}: expectations[{i}] ({etype}): meta.nanguard.on_fail {e.action!r} does not "
                              f"apply here; use one of {', '.join(actions_for(etype) if etype in SUPPORTED else ROW_ACTIONS)}")
        if e.action == "impute" and e.impute_with not in IMPUTE_STATISTICS:
            raise SuiteError(f"{where}: expectations[{i}] ({etype}): meta.nanguard.impute {e.impute_with!r} is not "
                              f"one of {', '.join(IMPUTE_STATISTICS)}")
        out.append(e)
    return Suite(name, tuple(out), dict(doc.get("meta") or {}))


def written_suite(source: str, suite: Suite, compiled: list[dict]) -> dict:
    """What a run writes as suite.json: where the suite came from, the suite (loadable with --suite), and its
    expectations as compiled for the run's columns."""
    return {"source": source, "suite": suite.to_json(), "compiled": compiled}


WRITTEN_SUITE_KEYS = {"source", "suite", "compiled"}
MAX_SUITE_BYTES = 64 << 20  # a suite is configuration: anything larger is a wrong path (or /dev/zero)


def _read_local(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_SUITE_BYTES + 1)
    if len(data) > MAX_SUITE_BYTES:
        raise OSError(f"longer than {MAX_SUITE_BYTES >> 20} MB; is it the suite?")
    return data


def load_suite(path: str, read: Callable[[str], bytes] = _read_local) -> Suite:
    """The suite in a GE JSON file; `read` fetches the file's bytes (the pipeline passes one that reads any
    Beam filesystem, so `--suite gs://...` works)."""
    try:
        doc = json.loads(read(path).decode("utf-8"))
    except OSError as e:
        raise SuiteError(f"--suite {path}: cannot read it ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SuiteError(f"--suite {path}: not valid JSON ({e})") from None
    except RecursionError:
        raise SuiteError(f"--suite {path}: JSON nested too deeply to be a suite") from None
    base = path.rsplit("/", 1)[0] if "/" in path else "."
    try:  # large value sets of a suite.json a run wrote live beside it (expectations.value_sets)
        doc = resolve(doc, lambda name: read(f"{base}/{name}"), f"--suite {path}")
    except ValueError as e:
        raise SuiteError(str(e)) from None
    return parse_suite(doc, f"--suite {path}")


def default_suite() -> Suite:
    text = resources.files("expectations").joinpath("suites/default.json").read_text(encoding="utf-8")
    return parse_suite(json.loads(text), "the packaged default suite")
