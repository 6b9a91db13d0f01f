"""Profile: the exact profile (transforms.profile) of a PCollection of RecordBatches.

Partial profiles are built per bundle beside the bundle's main thread and reach the shuffle as accumulators;
one merge gives the profile. The step that merges also saves it (sketches included: the report's histograms,
the quantile expectations and drift are drawn from them) and passes on only its sketch-free copy, which is
what the checks and the fit read. A merged profile with sketches never crosses a step boundary: a sketch is
up to 128 KB a column, every boundary pickles and unpickles it, and Beam's default-value path for an empty
input added two crossings (BENCHMARKS.md has what they cost on a wide table).
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from pipeline.files import write_json
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


@beam.typehints.with_input_types(ProfileAccumulator)
@beam.typehints.with_output_types(ProfileAccumulator)
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
    """RecordBatches -> one sketch-free ProfileAccumulator (ProfileAccumulator.without_sketches) over `columns`:
    a partial profile per bundle, built on a background thread, then merged. With `save_to`, the merged profile
    (its quantile sketches too, when with_sketch) is saved there as JSON (profile_json) by the merging step.
    No rows give an empty profile, saved the same way."""

    def __init__(self, *, columns: tuple[str, ...], with_sketch: bool, save_to: str | None = None):
        super().__init__()
        self._columns, self._with_sketch, self._save_to = tuple(columns), with_sketch, save_to

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[ProfileAccumulator]:
        finish = _Finish(self._save_to)
        merged = (batches
                  | "Accumulate" >> beam.ParDo(_ProfileInBackgroundFn(self._columns, self._with_sketch)
                                               ).with_output_types(ProfileAccumulator)
                  | "Merge" >> beam.CombineGlobally(MergeProfilesFn(self._columns, self._with_sketch)
                                                    ).without_defaults().with_output_types(ProfileAccumulator)
                  | "Finish" >> beam.Map(finish).with_output_types(ProfileAccumulator))
        # Beam's own default for an empty input (CombineGlobally with defaults) would read the merged profile,
        # sketches and all, as a side input; this one reads the sketch-free copy.
        return (batches.pipeline
                | "Once" >> beam.Create([None])
                | "OrEmpty" >> beam.Map(_merged_or_empty, beam.pvalue.AsList(merged), finish=finish,
                                        columns=self._columns, with_sketch=self._with_sketch
                                        ).with_output_types(ProfileAccumulator))


def _merged_or_empty(_, merged: list, finish: "_Finish", columns: tuple[str, ...], with_sketch: bool
                     ) -> ProfileAccumulator:
    """The merged profile's sketch-free copy; none (no rows): an empty profile, finished the same way."""
    return merged[0] if merged else finish(ProfileAccumulator(columns, with_sketch))


class _Finish:
    """A merged profile -> saved (when save_to) -> its sketch-free copy."""

    def __init__(self, save_to: str | None):
        self._save_to = save_to

    def __call__(self, acc: ProfileAccumulator) -> ProfileAccumulator:
        if self._save_to is not None:
            write_json(self._save_to, profile_json(acc), indent=None)  # compact: read back only by the driver
        return acc.without_sketches()


def profile_json(acc: ProfileAccumulator) -> dict:
    """The driver's copy of a profile: summaries, and the sketches the report's histograms are drawn from."""
    return {"rows": acc.rows, "columns": acc.summaries(),
            "distinct_values": {c: acc.profiles[c].distinct_values(text=True) for c in sorted(acc.text)},
            "sketches": {c: p.sketch.to_dict() for c, p in acc.profiles.items()
                         if p.sketch is not None and p.finite}}
