"""What TFDV's statistics and nanguard's profiles hold in memory, outside Beam, one thread:

    python -m benchmarks.statistics_memory floor  [INPUT]   (default: bench-data/wide-5000x10000.parquet)
    python -m benchmarks.statistics_memory growth [INPUT]   (default: bench-data/trips-10000000.parquet)
    python -m benchmarks.statistics_memory groups G [G ...] [--input INPUT]   (default: the wide table)

floor: the malloc memory in use (glibc's mallinfo2) of TFDV's accumulators (its default StatsOptions, the
pipeline's generators) for INPUT's first 1,000 columns after 1, 100, 1,000 and 10,000 rows, before and after
compaction: what a numeric feature costs whatever the rows.
growth: the same for every column of INPUT as its row groups stream in (TFDV's sketches grow with rows).
groups: TFDV's statistics (accumulate, compact, extract) and nanguard's raw profile (with sketches) of every
column of INPUT, reading G groups of columns one after another, each group's state dropped before the next:
seconds and peak RSS, each G in a fresh process. G=1 is the pipeline's one pass over every column; a larger G
is what statistics by column groups would hold (it is not how the pipeline runs).
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLOOR_COLUMNS = 1000
FLOOR_ROWS = (1, 100, 1000, 10000)
MB = 2 ** 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_in_use():
    """Bytes malloc has handed out and not had back (heap and mmapped chunks); None off glibc."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd
    return in_use


def _wide(name: str) -> str:
    return os.path.join(ROOT, "bench-data", name)


def floor(path: str) -> None:
    import pyarrow.parquet as pq
    from pipeline.stages.statistics import StatisticsPartial, tfdv_generators
    in_use = _require_mallinfo()
    pf = pq.ParquetFile(path)
    columns = pf.schema_arrow.names[:FLOOR_COLUMNS]
    table = pf.read(columns=columns).combine_chunks()
    print(f"TFDV accumulators of {len(columns)} columns of {os.path.basename(path)} (malloc in use):")
    for rows in FLOOR_ROWS:
        if rows > table.num_rows:
            break
        batch = table.slice(0, rows).to_batches()[0]
        before = in_use()
        partial = StatisticsPartial(tfdv_generators())
        partial.add(batch)
        added = in_use() - before
        partial.compact()
        compacted = in_use() - before
        print(f"  {rows:>6,} rows: {added / MB:7.0f} MB ({added / len(columns) / 1024:5.0f} KB a feature), "
              f"compacted {compacted / MB:5.0f} MB ({compacted / len(columns) / 1024:5.0f} KB a feature)")
        del partial, batch


def growth(path: str) -> None:
    import pyarrow.parquet as pq
    from pipeline.stages.statistics import StatisticsPartial, tfdv_generators
    in_use = _require_mallinfo()
    pf = pq.ParquetFile(path)
    before = in_use()
    partial = StatisticsPartial(tfdv_generators())
    groups = pf.num_row_groups
    marks = {0, groups - 1} | {g for g in range(groups) if g % max(1, groups // 10) == 0}
    print(f"TFDV accumulators of the {pf.metadata.num_columns} columns of {os.path.basename(path)} as its rows "
          f"stream in (malloc in use):")
    rows = 0
    for g in range(groups):
        batch = pf.read_row_group(g).combine_chunks().to_batches()[0]
        partial.add(batch)
        rows += batch.num_rows
        del batch
        if g in marks:
            print(f"  {rows:>11,} rows: {(in_use() - before) / MB:6.0f} MB")


def groups_child(path: str, count: int) -> dict:
    import pyarrow.parquet as pq
    from pipeline.stages.background import release_freed_memory
    from pipeline.stages.statistics import MergeStatisticsFn, StatisticsAccumulators, StatisticsPartial, \
        tfdv_generators
    from transforms.profile import ProfileAccumulator
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    size = -(-len(names) // count)
    merge = MergeStatisticsFn()
    started = time.perf_counter()
    for start in range(0, len(names), size):
        columns = names[start:start + size]
        batches = pf.read(columns=columns).combine_chunks().to_batches()
        profile = ProfileAccumulator(tuple(columns), with_sketch=True)
        partial = StatisticsPartial(tfdv_generators())
        for batch in batches:
            profile.add_batch(batch)
            partial.add(batch)
        del batches
        partial.compact()
        merge.extract_output(StatisticsAccumulators(partial.accumulators)).SerializeToString()
        del partial, profile
        release_freed_memory()
    return {"groups": count, "columns": len(names), "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def groups(counts: list[int], path: str) -> None:
    print(f"TFDV statistics and the raw profile of {os.path.basename(path)}, by column groups (fresh process each):")
    for count in counts:
        out = subprocess.run([sys.executable, "-m", "benchmarks.statistics_memory", "_child", str(count), path],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"  {count:>3} group(s) of {-(-result['columns'] // count):>5} columns: {result['seconds']:6.1f} s, "
              f"peak RSS {result['peak_rss_mb']:,} MB")


def _require_mallinfo():
    in_use = _malloc_in_use()
    if in_use is None:
        sys.exit("benchmarks.statistics_memory floor/growth need glibc's mallinfo2")
    return in_use


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("floor", "growth", "groups", "_child"):
        print(__doc__)
        return 2
    what, rest = argv[0], argv[1:]
    if what == "floor":
        floor(rest[0] if rest else _wide("wide-5000x10000.parquet"))
    elif what == "growth":
        growth(rest[0] if rest else _wide("trips-10000000.parquet"))
    elif what == "_child":
        print(json.dumps(groups_child(rest[1], int(rest[0]))))
    else:
        path = _wide("wide-5000x10000.parquet")
        if "--input" in rest:
            i = rest.index("--input")
            path, rest = rest[i + 1], rest[:i] + rest[i + 2:]
        groups([int(g) for g in rest] or [1, 10], path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
