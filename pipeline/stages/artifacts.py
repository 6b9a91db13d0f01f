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
INDEX_DIR = "index"  # per shard, each record's __source_file and __row_index

# The JSON artifacts under _artifacts/.
RAW_PROFILE, CLEAN_PROFILE, OUTPUTS = "raw_profile.json", "clean_profile.json", "outputs.json"
COUNTS, SHARDS, QUARANTINE = "counts.json", "shards.json", "quarantine.json"
WRITTEN = "written.json"  # the exact profile of the values as written (transforms.written_values)
# The TFDV statistics under stats/.
RAW_STATS, CLEAN_STATS = "raw.pb", "clean.pb"


@dataclasses.dataclass(frozen=True)
class StagedRun:
    """The paths of one run's staging directory."""
    root: str

    def artifact(self, name: str) -> str:
        return join(self.root, ARTIFACTS_DIR, name)

    def stats(self, name: str) -> str:
        return join(self.root, STATS_DIR, name)

    def path(self, name: str) -> str:
        """A path in the stage: a published file (report.json, schema.pbtxt, ...) or a directory (DATA_DIR,
        QUARANTINE_DIR, TMP_DIR, PROGRESS_DIR)."""
        return join(self.root, name)
