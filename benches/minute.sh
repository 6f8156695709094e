#!/usr/bin/env bash
# `detector --once` as cron runs it every minute: one new round, scored, incidents
# updated, no fine-tune (it is due hourly). Beside it, in the same run: a run with
# nothing new (the floor: load the model and look) and the hourly fine-tune.
# History: HISTORY hours at RATE packets/s and the cold start (untimed).
# Usage: [PORTWATCH_PROFILE=workstation] benches/minute.sh [RATE] [RUNS] [WORKDIR] [HISTORY]
#   (release build; the simulated host is a server unless PORTWATCH_PROFILE says otherwise)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}; runs=${2:-10}
work=${3:-/tmp/portwatch-minute-$rate}; history=${4:-24}
bin=${PORTWATCH_BIN:-$here/target/release}
profile=${PORTWATCH_PROFILE:-server}
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
"$bin/collector" simulate --db "$db" --profile "$profile" --hours "$history" --seed 1 --rate "$rate"
"$bin/detector" --once --db "$db" --min-history "$(( history > 2 ? history - 1 : 1 ))h" -v > /dev/null || true
measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "$label %e s wall, %U s user, %M KB peak RSS" "$@" > /dev/null 2>> "$work/times" || true
}
: > "$work/times"
"$bin/collector" simulate --db "$db" --profile "$profile" --hours 0.0166667 --seed 1 --rate "$rate"
"$bin/detector" --once --db "$db" -v   # what one minute's run does
for i in $(seq 1 "$runs"); do
  "$bin/collector" simulate --db "$db" --profile "$profile" --hours 0.0166667 --seed 1 --rate "$rate"
  measure "minute" "$bin/detector" --once --db "$db"
  measure "nothing-new" "$bin/detector" --once --db "$db"
done
"$bin/collector" simulate --db "$db" --profile "$profile" --hours 0.0166667 --seed 1 --rate "$rate"
measure "minute+fine-tune" "$bin/detector" --once --db "$db" --train
grep -E ' s wall' "$work/times"
for label in minute nothing-new; do
  walls=$(grep "^$label " "$work/times" | awk '{print $2}' | sort -n)
  rss=$(grep "^$label " "$work/times" | awk '{print $8}' | sort -n)
  n=$(echo "$walls" | wc -l)
  mid=$(( (n + 1) / 2 ))
  echo "$label: median $(echo "$walls" | sed -n "${mid}p") s wall (min $(echo "$walls" | head -1), max $(echo "$walls" | tail -1)), median peak RSS $(( $(echo "$rss" | sed -n "${mid}p") / 1024 )) MiB over $n runs"
done
rm -rf "$work"
