"""Reason codes: why a row was quarantined, repaired or warned about, as "<code>:<column>".

Every rule builds its reasons here and every reader (report, summaries, tests) parses them here, so the
strings in quarantine files, counters and report.json have one definition. Codes are stable: users grep
quarantine files and alert on counters by them.
"""
from __future__ import annotations

import enum


class Code(str, enum.Enum):
    MISSING = "missing"
    NAN = "nan"
    POS_INF = "pos_inf"
    NEG_INF = "neg_inf"
    NULL = "null"
    NOT_NULL = "not_null"
    OUT_OF_RANGE = "out_of_range"
    NOT_IN_SET = "not_in_set"
    IN_FORBIDDEN_SET = "in_forbidden_set"
    EXTREME = "extreme"
    UNPARSEABLE = "unparseable"
    Z_SCORE = "z_score"
    PAIR_NOT_GREATER = "pair_not_greater"
    SUM_NOT_EQUAL = "sum_not_equal"
    BAD_LENGTH = "bad_length"  # a text value's length outside its bounds
    NO_REGEX_MATCH = "no_regex_match"
    MATCHES_REGEX = "matches_regex"  # matches a forbidden pattern
    CLIPPED = "clipped"  # a repair, not a quarantine reason: cells moved to the nearest allowed value
    IMPUTED = "imputed"  # a repair: cells filled with the clean mean or median

    def __str__(self) -> str:
        return self.value


def reason(code: Code | str, column: str) -> str:
    """The reason string for a code on a column: reason(Code.NAN, "f0") == "nan:f0"."""
    return f"{code.value if isinstance(code, Code) else code}:{column}"


def overflow(dtype: str, column: str) -> str:
    """A finite value beyond a float dtype's largest value: "float32_overflow:f0"."""
    return reason(f"{dtype}_overflow", column)


def label_code(kind: str) -> str:
    """The code of a value its label kind does not allow: "label_probability"."""
    return f"label_{kind}"


def label(kind: str, column: str) -> str:
    """A value its label kind does not allow: "label_probability:y"."""
    return reason(label_code(kind), column)


def split(text: str) -> tuple[str, str]:
    """(code, column) of a reason string; the column may itself hold ':'."""
    code, _, column = text.partition(":")
    return code, column
