"""Where nanguard's CPU goes, kernel by kernel, outside Beam and without threads:

    python -m benchmarks.kernels [INPUT]      (default: bench-data/trips-1000000.parquet)

Streams INPUT through the pipeline's three passes (profile; checks, clean profile and TFDV statistics; checks,
normalize, encode, compress, written-values profile) in one thread, batch by batch as the pipeline reads them, and prints the CPU seconds each per-row
step took. In the pipeline the TFDV statistics and the gzip compression run on background threads; the sum is
what the rows cost before any runner overhead, threads or contention.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv: list[str]) -> int:
    import numpy as np
    from isal import isal_zlib

    from benchmarks.data import LABELS, MISSING, PASSTHROUGH
    from pipeline.config import RunConfig
    from pipeline.inputs.plan import plan_inputs
    from expectations.compiler import CompileOptions, compile_suite
    from expectations.suite import default_suite
    from pipeline.stages.read import ReadUnitFn
    from pipeline.stages.shards import GZIP_LEVEL
    from pipeline.stages.statistics import StatisticsPartial, tfdv_generators
    from transforms.example_encoding import plan_output_columns, to_output_batch
    from transforms.columns import ROW_INDEX
    from transforms.profile import ProfileAccumulator
    from transforms.evaluate import check_batch
    from transforms.sharding import shard_ids
    from transforms.tfrecord_encoding import encode_framed
    from transforms.written_values import WrittenValues

    path = argv[0] if argv else os.path.join(ROOT, "bench-data", "trips-1000000.parquet")
    config = RunConfig.from_settings(inputs=[path], output=os.path.join(ROOT, "bench-data", "out-kernels"),
                                     labels=list(LABELS), missing=list(MISSING), passthrough=list(PASSTHROUGH))
    plan = plan_inputs(config.inputs, config.format, ())
    compiled = compile_suite(default_suite(), plan.schema, CompileOptions(
        config.labels, config.passthrough, config.extreme_threshold, config.extreme_action, config.mixed_precision,
        dict(config.missing)))
    cpu: dict[str, float] = {}

    def timed(label, fn, *args):
        started = time.process_time()
        out = fn(*args)
        cpu[label] = cpu.get(label, 0.0) + time.process_time() - started
        return out

    reader = ReadUnitFn(plan)

    def read():
        for task in plan.tasks:
            batches = iter(reader.process(task))
            while (batch := timed("read + conform (3 passes)", next, batches, None)) is not None:
                yield batch

    columns = tuple(plan.kinds)
    raw, rows = ProfileAccumulator(columns, with_sketch=True), 0
    for b in read():  # the profile pass
        rows += b.num_rows
        timed("raw profile with sketches", raw.add_batch, b)
    rules = [rule for _, rule in compiled.bind(raw.profiles)]
    profile = ProfileAccumulator(columns, with_sketch=True)
    clean_stats, quarantined_stats = StatisticsPartial(tfdv_generators()), StatisticsPartial(tfdv_generators())
    for b in read():  # the fit pass
        outcome = timed("row checks (2 passes)", check_batch, b, rules, None, 0)
        timed("clean profile with sketches", profile.add_batch, outcome.clean)
        timed("TFDV statistics (threads)", clean_stats.add, outcome.clean)
        timed("TFDV statistics (threads)", quarantined_stats.add, outcome.quarantined)
    outputs = plan_output_columns(profile, dict(plan.kinds), tuple(lab.column for lab in config.labels),
                                  tuple(config.passthrough), config.normalize, compiled.fills_missing,
                                  compiled.indicators)
    impute = {c: profile.profiles[c].statistic(fill) if isinstance(fill, str) else fill
              for c, fill in compiled.impute.items()}
    compressor = isal_zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    written_values = WrittenValues()
    for b in read():  # the write pass
        clean = timed("row checks (2 passes)", check_batch, b, rules, impute, 0).clean
        written = timed("normalize (to_output_batch)", to_output_batch, clean, outputs)
        shards = shard_ids(path, clean.column(clean.schema.get_field_index(ROW_INDEX)).to_numpy(), 4)
        framed = timed("tf.Example encoding + framing", encode_framed, written, shards)
        blocks_by_shard, _ = timed("split by shard", framed.split, 4)
        for blocks in blocks_by_shard:
            for block in blocks:
                timed("gzip (ISA-L; writer thread)", compressor.compress, block)
        timed("written-values profile", written_values.add_batch, written)
    print(f"CPU seconds per kernel over {rows:,} rows, in the pipeline's three passes:")
    for label, seconds in cpu.items():
        print(f"{seconds:7.2f}  {label}")
    print(f"{sum(cpu.values()):7.2f}  in all; {np.float64(sum(cpu.values())) / rows * 1e6:.1f} us a row")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
