#!/usr/bin/env bash
# `detector --once` on one simulated hour (60 rounds x 12 samples) with the full-size
# model: wall time, CPU and peak RSS from /usr/bin/time -v. History: HISTORY hours at
# RATE packets/s and the cold start, then SKIP more hours evaluated untimed; with the
# defaults (24, 13) the timed hours are the daytime peak (13:00-16:00), the busiest of
# the simulated day. At 1000 packets/s a day of history is ~10 GB: use 3 and 0.
# Usage: benches/once.sh RATE [RUNS] [WORKDIR] [HISTORY] [SKIP]   (release build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}; runs=${2:-3}
work=${3:-/tmp/portwatch-once-$rate}; history=${4:-24}; skip=${5:-13}
bin=${PORTWATCH_BIN:-$here/target/release}
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
"$bin/collector" simulate --db "$db" --hours "$history" --seed 1 --rate "$rate"
"$bin/detector" --once --db "$db" --min-history "$(( history > 2 ? history - 1 : 1 ))h" -v || true
if [ "$skip" -gt 0 ]; then
  "$bin/collector" simulate --db "$db" --hours "$skip" --seed 2 --rate "$rate"
  "$bin/detector" --once --db "$db" -v || true
fi
for i in $(seq 1 "$runs"); do
  "$bin/collector" simulate --db "$db" --hours 1 --seed $((10 + i)) --rate "$rate"
  packets=$(sqlite3 "$db" "SELECT sum(packets_stored) FROM rounds WHERE id > (SELECT max(round_id) FROM batches_rounds)")
  echo "run $i: $packets packets in the hour"
  /usr/bin/time -v "$bin/detector" --once --db "$db" -v 2>&1 \
    | grep -E '^detector:|Elapsed|Maximum resident|User time|System time' || true
done
rm -rf "$work"
