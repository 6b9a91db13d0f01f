#!/usr/bin/env bash
# cron: validate last night's data against the training run, train only when nanguard's gate passes.
#   15 2 * * *  BASELINE=/data/validated/train /opt/train/nightly.sh >> /var/log/train.log 2>&1
# Settings from the environment (or the command line: arguments after the script name go to `nanguard run`):
#   INPUT     what to read for the day        (default: $RAW/$DAY/*)
#   BASELINE  a previous output to normalize and compare against (empty: none; the run fits its own)
#   LABELS    --label flags                   (default: none; with BASELINE its labels are reused)
set -uo pipefail
RAW=${RAW:-/data/raw}
VALIDATED=${VALIDATED:-/data/validated}
TRAIN=${TRAIN:-"python /opt/train/train.py"}
DAY=${DAY:-$(date -u +%F)}
INPUT=${INPUT:-"$RAW/$DAY/*"}
BASELINE=${BASELINE:-}
LABELS=${LABELS:-}
OUT="$VALIDATED/$DAY"
args=(run --input "$INPUT" --output "$OUT" --overwrite --log-format json)
[ -n "$BASELINE" ] && args+=(--baseline "$BASELINE")
# shellcheck disable=SC2206  # LABELS is a list of flags
[ -n "$LABELS" ] && args+=($LABELS)
nanguard "${args[@]}" "$@"
status=$?
case $status in
  0) $TRAIN --data "$OUT" ;;                                    # gate passed: train on the shards
  1) echo "nanguard gate failed (quarantine or drift); not training. See $OUT/report.html" >&2; exit 1 ;;
  *) echo "nanguard could not run (exit $status); not training" >&2; exit "$status" ;;
esac
