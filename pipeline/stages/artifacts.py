"""Where the graph leaves what the driver assembles the report from, inside a run's staging directory.

Small results (profiles, the fitted outputs, counts, shard and quarantine lists) are JSON files under
_artifacts/, the statistics are TFDV protos under stats/; the graph writes them and report.assemble reads them,
both through this one description of the layout.
"""
from __future__ import annotations

import dataclasses

from pipeline.files import join

ARTIFACTS_DIR, TMP_DIR, PROGRESS_DIR = "_artifacts", "_tmp", "_progress"  # removed when the run publishes
DATA_DIR, QUARANTINE_DIR, STATS_DIR = "data", "quarantine", "stats"


@dataclasses.dataclass(frozen=True)
class StagedRun:
    """The paths of one run's staging directory."""
    root: str

    def _artifact(self, name: str) -> str:
        return join(self.root, ARTIFACTS_DIR, name)

    @property
    def raw_profile(self) -> str:
        return self._artifact("raw_profile.json")

    @property
    def clean_profile(self) -> str:
        return self._artifact("clean_profile.json")

    @property
    def outputs(self) -> str:
        return self._artifact("outputs.json")

    @property
    def counts(self) -> str:
        return self._artifact("counts.json")

    @property
    def shards(self) -> str:
        return self._artifact("shards.json")

    @property
    def quarantine(self) -> str:
        return self._artifact("quarantine.json")

    @property
    def raw_stats(self) -> str:
        return join(self.root, STATS_DIR, "raw.pb")

    @property
    def clean_stats(self) -> str:
        return join(self.root, STATS_DIR, "clean.pb")

    @property
    def data_dir(self) -> str:
        return join(self.root, DATA_DIR)

    @property
    def quarantine_dir(self) -> str:
        return join(self.root, QUARANTINE_DIR)

    @property
    def tmp_dir(self) -> str:
        return join(self.root, TMP_DIR)

    @property
    def progress_dir(self) -> str:
        return join(self.root, PROGRESS_DIR)

    def output(self, name: str) -> str:
        """A published file's staged path (report.json, schema.pbtxt, ...)."""
        return join(self.root, name)
