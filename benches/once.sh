#!/usr/bin/env bash
# `detector --once` on one simulated hour (60 rounds x 12 samples) with the full-size
# model: wall time, CPU and peak RSS from /usr/bin/time -v. History: a day at RATE
# packets/s and the cold start, then 13 more hours evaluated untimed, so the timed
# hours are the daytime peak (13:00-16:00), the busiest of the simulated day.
# Usage: benches/once.sh RATE [RUNS] [WORKDIR]   (release build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}; runs=${2:-3}
work=${3:-/tmp/portwatch-once-$rate}
bin=${PORTWATCH_BIN:-$here/target/release}
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
"$bin/collector" simulate --db "$db" --hours 24 --seed 1 --rate "$rate"
"$bin/detector" --once --db "$db" -v || true
"$bin/collector" simulate --db "$db" --hours 13 --seed 2 --rate "$rate"
"$bin/detector" --once --db "$db" -v || true
for i in $(seq 1 "$runs"); do
  "$bin/collector" simulate --db "$db" --hours 1 --seed $((10 + i)) --rate "$rate"
  packets=$(sqlite3 "$db" "SELECT sum(packets_stored) FROM rounds WHERE id > (SELECT max(round_id) FROM batches_rounds)")
  echo "run $i: $packets packets in the hour"
  /usr/bin/time -v "$bin/detector" --once --db "$db" -v 2>&1 \
    | grep -E '^detector:|Elapsed|Maximum resident|User time|System time' || true
done
