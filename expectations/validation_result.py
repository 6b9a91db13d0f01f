"""validation_result.json: the run's expectation results in Great Expectations' ExpectationSuiteValidationResult
shape, so GE tooling (Data Docs, checkpoints' stores, `ExpectationSuiteValidationResult(**doc)`) can read them.

Row expectations carry element_count, unexpected_count, unexpected_percent, missing_count and the first 20
unexpected values in input order (partial_unexpected_list); aggregate ones carry observed_value. Non-finite
floats are written as GE writes them (Infinity, -Infinity, NaN), so the file is Python-JSON, as GE's is.
"""
from __future__ import annotations

import json

ROW_RESULT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")


def validation_result(suite_name: str, expectations: list[dict], meta: dict) -> dict:
    """expectations: the report's expectation entries (description plus result); those the suite did not hold
    (label kinds, parseability, --mixed-precision's float16 rule) stay in report.json only."""
    results = [_result(e) for e in expectations if e.get("origin", "suite") == "suite"]
    passed = sum(r["success"] for r in results)
    return {
        "success": passed == len(results),
        "results": results,
        "suite_name": suite_name,
        "suite_parameters": {},
        "statistics": {"evaluated_expectations": len(results), "successful_expectations": passed,
                       "unsuccessful_expectations": len(results) - passed,
                       "success_percent": 100.0 * passed / len(results) if results else None},
        "meta": dict(meta),
    }


def _result(e: dict) -> dict:
    if e["kind"] == "aggregate":
        result = {"observed_value": e.get("observed_value")}
    else:
        result = {k: e[k] for k in ROW_RESULT_KEYS}
        n = e["element_count"]
        result["missing_percent"] = 100.0 * e["missing_count"] / n if n else None
        result["unexpected_percent_total"] = 100.0 * e["unexpected_count"] / n if n else None
        result["unexpected_percent_nonmissing"] = e["unexpected_percent"]
        result["partial_unexpected_list"] = list(e.get("partial_unexpected_list", []))
    meta = dict(e.get("meta") or {})
    meta.setdefault("nanguard", {})
    meta["nanguard"] = dict(meta["nanguard"], on_fail=e["action"])
    return {"success": bool(e["success"]), "expectation_config": {"type": e["type"], "kwargs": dict(e["kwargs"]),
                                                                  "meta": meta},
            "result": result, "meta": {},
            "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None}}


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, allow_nan=True)
