#!/usr/bin/env bash
# cron: validate last night's data, train only when nanguard's gate passes.
#   15 2 * * *  /opt/train/nightly.sh >> /var/log/train.log 2>&1
set -uo pipefail
RAW=${RAW:-/data/raw}                      # one folder of Parquet files per day
VALIDATED=${VALIDATED:-/data/validated}
TRAIN=${TRAIN:-"python /opt/train/train.py"}
DAY=${DAY:-$(date -u +%F)}
OUT="$VALIDATED/$DAY"
nanguard run --input "$RAW/$DAY/*.parquet" --output "$OUT" --overwrite --label clicked:binary --log-format json
status=$?
case $status in
  0) $TRAIN --data "$OUT" ;;                                    # gate passed: train on the shards
  1) echo "nanguard gate failed; not training. See $OUT/report.html" >&2; exit 1 ;;
  *) echo "nanguard could not run (exit $status); not training" >&2; exit "$status" ;;
esac
