"""Profile: the exact profile (transforms.profile) of a PCollection of RecordBatches.

Partial profiles are built per bundle beside the bundle's main thread and reach the shuffle as small
accumulators; one merge gives the profile the checks, the fit and the report use.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from pipeline.stages.background import MAX_PENDING_BATCHES, AccumulateInBackground
from pipeline.stages.coders import SizedPickleCoder
from transforms.profile import ProfileAccumulator


class ProfileCoder(SizedPickleCoder):
    """ProfileAccumulators, sized by their sketches' arrays (registered for PCollections typed so)."""

    def estimate_size(self, acc: ProfileAccumulator) -> int:
        return acc.nbytes()

    def to_type_hint(self):
        return ProfileAccumulator


beam.coders.registry.register_coder(ProfileAccumulator, ProfileCoder)


class _ProfileInBackgroundFn(AccumulateInBackground):
    """RecordBatches -> one partial ProfileAccumulator per bundle, built on a background thread: the profile's
    numpy work releases the GIL, so it overlaps with reading and checking the next batches."""

    def __init__(self, columns: tuple[str, ...], with_sketch: bool):
        super().__init__("nanguard-profile", 1, MAX_PENDING_BATCHES)
        self._columns, self._with_sketch = tuple(columns), with_sketch

    def new_partial(self, lane: int) -> ProfileAccumulator:
        return ProfileAccumulator(self._columns, self._with_sketch)

    def add(self, partial: ProfileAccumulator, batch: pa.RecordBatch) -> None:
        partial.add_batch(batch)

    def output(self, partial: ProfileAccumulator):
        return partial if partial.rows else None


class MergeProfilesFn(beam.CombineFn):
    """Partial ProfileAccumulators -> their merge; an empty profile of `columns` when there are none. Merging
    does not depend on order or grouping (see transforms.profile), so every runner gets the same profile."""

    def __init__(self, columns: tuple[str, ...], with_sketch: bool):
        self._columns, self._with_sketch = tuple(columns), with_sketch

    def create_accumulator(self) -> ProfileAccumulator:
        return ProfileAccumulator(self._columns, self._with_sketch)

    def add_input(self, acc: ProfileAccumulator, partial: ProfileAccumulator) -> ProfileAccumulator:
        return acc.merge(partial)

    def merge_accumulators(self, accs) -> ProfileAccumulator:
        accs = iter(accs)
        out = next(accs)
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc: ProfileAccumulator) -> ProfileAccumulator:
        return acc

    def get_accumulator_coder(self) -> ProfileCoder:
        return ProfileCoder()


class Profile(beam.PTransform):
    """RecordBatches -> one ProfileAccumulator over `columns` (quantile sketches when with_sketch): a partial
    profile per bundle, built on a background thread, then merged."""

    def __init__(self, *, columns: tuple[str, ...], with_sketch: bool):
        super().__init__()
        self._columns, self._with_sketch = tuple(columns), with_sketch

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[ProfileAccumulator]:
        return (batches
                | "Accumulate" >> beam.ParDo(_ProfileInBackgroundFn(self._columns, self._with_sketch)
                                             ).with_output_types(ProfileAccumulator)
                | "Merge" >> beam.CombineGlobally(MergeProfilesFn(self._columns, self._with_sketch)
                                                  ).with_output_types(ProfileAccumulator))


def profile_json(acc: ProfileAccumulator) -> dict:
    """The driver's copy of a profile: summaries, and the sketches the report's histograms are drawn from."""
    return {"rows": acc.rows, "columns": acc.summaries(),
            "distinct_values": {c: acc.profiles[c].distinct_values(text=True) for c in sorted(acc.text)},
            "sketches": {c: p.sketch.to_dict() for c, p in acc.profiles.items()
                         if p.sketch is not None and p.finite}}
