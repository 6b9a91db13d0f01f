"""Pure batch kernels (numpy / pyarrow; no Beam): checks, profiles, normalization, encoding."""
from transforms.columns import BatchView, to_list_array
from transforms.example_encoding import OutputColumn, to_output_batch
from transforms.extreme import DEFAULT_THRESHOLD, extreme_bounds
from transforms.labels import LabelRule, LabelSpec
from transforms.normalize import Scaling, fit
from transforms.profile import ColumnProfile, ProfileAccumulator
from transforms.quantile_sketch import QuantileSketch
from transforms.evaluate import CheckOutcome, check_batch
from transforms.row_checks import Between, Extreme, FitsDtype, InSet, NotNull, Parseable, PresentAndFinite
from transforms.sharding import shard_ids

__all__ = [
    "BatchView", "Between", "CheckOutcome", "ColumnProfile", "DEFAULT_THRESHOLD", "Extreme", "FitsDtype", "InSet",
    "LabelRule", "LabelSpec", "NotNull", "OutputColumn", "Parseable", "PresentAndFinite", "ProfileAccumulator",
    "QuantileSketch", "Scaling", "check_batch", "extreme_bounds", "fit", "shard_ids", "to_list_array",
    "to_output_batch",
]
