"""RowCounts: what the checks counted over a pass, as one typed, mergeable value.

One CheckOutcome per batch becomes a RowCounts; a CombineFn sums them (any grouping, any order gives the same
result), and the report reads the fields by name. Expectations are keyed by their index in the compiled suite.
"""
from __future__ import annotations

import dataclasses

from transforms.evaluate import SAMPLE_SIZE, CheckOutcome


@dataclasses.dataclass
class RowCounts:
    rows: int = 0
    clean_rows: int = 0
    quarantined_rows: int = 0
    by_reason: dict[str, int] = dataclasses.field(default_factory=dict)  # rows each reason sent to quarantine
    warned: dict[str, int] = dataclasses.field(default_factory=dict)  # rows each warn-only reason flagged (kept)
    repaired: dict[str, int] = dataclasses.field(default_factory=dict)  # cells per "clipped:"/"imputed:" reason
    unexpected: dict[int, int] = dataclasses.field(default_factory=dict)  # expectation -> rows violating it
    evaluated: dict[int, int] = dataclasses.field(default_factory=dict)  # expectation -> rows it evaluates
    # expectation with a row_condition -> rows the condition selects (GE's element_count for it)
    selected: dict[int, int] = dataclasses.field(default_factory=dict)
    samples: dict[int, list] = dataclasses.field(default_factory=dict)  # expectation -> [[[file, row], value]]

    @classmethod
    def of(cls, outcome: CheckOutcome, expectations: list[int]) -> "RowCounts":
        """One batch's counts; `expectations` gives the suite index of each rule in the outcome."""
        counts = cls(rows=outcome.clean.num_rows + outcome.quarantined.num_rows, clean_rows=outcome.clean.num_rows,
                     quarantined_rows=outcome.quarantined.num_rows, by_reason=dict(outcome.quarantined_by),
                     warned=dict(outcome.warned), repaired=dict(outcome.repaired))
        for idx, hits, domain, sample in zip(expectations, outcome.rule_counts, outcome.rule_domains,
                                             outcome.samples):
            counts.unexpected[idx] = counts.unexpected.get(idx, 0) + hits
            counts.evaluated[idx] = counts.evaluated.get(idx, 0) + domain
            if sample:
                counts.samples[idx] = sample
        for rule, rows in outcome.rule_selected.items():
            idx = expectations[rule]
            counts.selected[idx] = counts.selected.get(idx, 0) + rows
        return counts

    def merge(self, other: "RowCounts") -> "RowCounts":
        """Adds `other` into this one. Samples keep the SAMPLE_SIZE entries with the smallest (file, row) keys,
        which are the same on every merge path."""
        self.rows += other.rows
        self.clean_rows += other.clean_rows
        self.quarantined_rows += other.quarantined_rows
        for mine, theirs in ((self.by_reason, other.by_reason), (self.warned, other.warned),
                             (self.repaired, other.repaired),
                             (self.unexpected, other.unexpected), (self.evaluated, other.evaluated),
                             (self.selected, other.selected)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for k, v in other.samples.items():
            self.samples[k] = sorted(self.samples.get(k, []) + v, key=lambda entry: entry[0])[:SAMPLE_SIZE]
        return self

    def to_json(self) -> dict:
        return {"rows": self.rows, "clean_rows": self.clean_rows, "quarantined_rows": self.quarantined_rows,
                **{name: {str(k): v for k, v in sorted(getattr(self, name).items())}
                   for name in ("by_reason", "warned", "repaired", "unexpected", "evaluated", "selected", "samples")}}

    @classmethod
    def from_json(cls, data: dict) -> "RowCounts":
        indexed = {name: {int(k): v for k, v in data[name].items()}
                   for name in ("unexpected", "evaluated", "selected", "samples")}
        return cls(rows=data["rows"], clean_rows=data["clean_rows"], quarantined_rows=data["quarantined_rows"],
                   by_reason=dict(data["by_reason"]), warned=dict(data["warned"]), repaired=dict(data["repaired"]),
                   **indexed)
