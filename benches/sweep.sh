#!/usr/bin/env bash
# One-factor hyperparameter sweep, cheap enough to try many settings: for each
# configuration, a cold start on a clean simulated day (`detector --once --config`),
# then the next day, which holds one event of each of the seven kinds, scored in one
# `--no-train` batch. No fine-tuning, so this compares what the cold start learnt, not
# the hourly dynamics (benches/week.sh measures those).
# Usage: benches/sweep.sh SEED [RATE] -- 'JSON' ...   e.g. '{}' '{"hidden": 64}'
# One line per configuration on stdout (tab-separated): config, cold-start seconds,
# detected/events, false alarms (over both days), the weakest event's best round score
# as a multiple of the threshold, the median of the events' best multiples, and the
# threshold. The two days are simulated once per seed and kept in $work.
set -euo pipefail
export LC_ALL=C  # $EPOCHREALTIME with a decimal point
here=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: benches/sweep.sh SEED [RATE] -- 'JSON' ..." >&2; exit 2; }
[ $# -ge 1 ] || usage
seed=$1; rate=100; shift
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rate=$1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
[[ $seed =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ && $# -gt 0 ]] || usage
bin=${PORTWATCH_BIN:-$here/target/release}
work=${PORTWATCH_BENCH:-/tmp/portwatch-sweep}/s$seed-r$rate
mkdir -p "$work"
day1=$work/day1.db; both=$work/both.db
if [ ! -f "$work/ready" ]; then
  rm -f "$day1"* "$both"*
  "$bin/collector" simulate --db "$day1" --hours 24 --seed "$seed" --rate "$rate"
  sqlite3 "$day1" "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
  cp "$day1" "$both"
  "$bin/collector" simulate --db "$both" --hours 24 --seed $(( seed * 1000 + 1 )) --rate "$rate" \
    --inject portscan@2.4 --inject slowscan@5.6 --inject backdoor@9.2 \
    --inject backdoor-collide@12.1 --inject burst@15.3 --inject dnstunnel@18.5 \
    --inject dnstunnel-slow@21.7
  touch "$work/ready"
fi
clear="DELETE FROM anomalies; DELETE FROM batches_rounds; DELETE FROM batches;"
printf 'config\tcold_s\tdetected\tfalse\tmin_x\tmedian_x\tthreshold\n'
for cfg in "$@"; do
  model=$work/model; rm -rf "$model"
  printf '%s' "$cfg" > "$work/config.json"
  sqlite3 "$day1" "$clear"
  # Exit 1 only means anomalies; anything above is a failure worth its own row.
  rc=0; t0=$EPOCHREALTIME
  "$bin/detector" --once --db "$day1" --model-dir "$model" --config "$work/config.json" \
    > "$work/run.log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if [ "$rc" -gt 1 ]; then
    printf '%s\tFAILED: cold start exit %s: %s\n' "$cfg" "$rc" "$(tail -1 "$work/run.log")"
    continue
  fi
  # Day 1's evaluation moves into the two-day database, so the scored batch is day 2.
  sqlite3 "$both" "$clear ATTACH '$day1' AS d1; INSERT INTO batches SELECT * FROM d1.batches;
    INSERT INTO batches_rounds SELECT * FROM d1.batches_rounds;
    INSERT INTO anomalies SELECT * FROM d1.anomalies;"
  rc=0
  "$bin/detector" --once --no-train --db "$both" --model-dir "$model" > "$work/run.log" 2>&1 \
    || rc=$?
  if [ "$rc" -gt 1 ]; then
    printf '%s\tFAILED: day 2 exit %s: %s\n' "$cfg" "$rc" "$(tail -1 "$work/run.log")"
    continue
  fi
  ev=$("$bin/detector" evaluate --db "$both" --json)
  ratios=$(sqlite3 "$both" "SELECT max(b.score) / bt.threshold FROM labels l
    JOIN batches_rounds b ON b.round_id = l.round_id JOIN batches bt ON bt.id = b.batch_id
    GROUP BY l.event ORDER BY 1")
  thr=$(sqlite3 "$both" "SELECT round(threshold, 2) FROM batches ORDER BY id DESC LIMIT 1")
  python3 - "$cfg" "$t0" "$t1" "$ev" "$ratios" "$thr" <<'EOF'
import json, statistics, sys
cfg, t0, t1, ev, ratios, thr = sys.argv[1:]
cold = float(t1) - float(t0)
o = json.loads(ev)["overall"]
r = [float(x) for x in ratios.split()] or [0.0]
print(f"{cfg}\t{cold:.1f}\t{o['detected']}/{o['events']}\t{o['false_alarms']}\t"
      f"{min(r):.2f}\t{statistics.median(r):.2f}\t{thr}")
EOF
done
