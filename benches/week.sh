#!/usr/bin/env bash
# Detection quality on a simulated week, run the way cron runs it: a clean first day,
# `detector --once` (cold start), then for each following hour `collector simulate
# --hours 1` (with the hour's injected event, if any) and `detector --once`.
# Usage: benches/week.sh NAME SEED [RATE] [DAYS] [extra cold-start detector flags...]
# Output in $PORTWATCH_BENCH/NAME (default /tmp/portwatch-week/NAME): log.txt, eval.txt,
# eval.json, events.tsv (each event's best round score and the threshold then),
# alarms.tsv (every anomalous round, its labels and top features). The database (about
# 1 GB per simulated day at 100 packets/s) is removed at the end unless
# PORTWATCH_KEEP_DB=1. Seeds: day 1 `--seed SEED`, hour h after it `--seed SEED*1000+h`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=$1; seed=$2; rate=${3:-100}; days=${4:-7}
shift $(( $# < 4 ? $# : 4 ))
bin=${PORTWATCH_BIN:-$here/target/release}
work=${PORTWATCH_BENCH:-/tmp/portwatch-week}/$name
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
"$bin/collector" simulate --db "$db" --hours 24 --seed "$seed" --rate "$rate"
"$bin/detector" --once --db "$db" -v "$@" > "$work/log.txt" 2>&1 || true
# Hour after day 1 -> injected event (plain forms: portscan, backdoor, dnstunnel, burst;
# hard forms: slowscan, backdoor-collide, dnstunnel-slow), about one every 8 hours.
declare -A inj=(
  [5]="portscan@0.4" [7]="portscan@0.4" [13]="backdoor@0.2" [20]="dnstunnel@0.5"
  [29]="burst@0.3" [38]="slowscan@0.6" [45]="backdoor-collide@0.1" [52]="dnstunnel-slow@0.7"
  [62]="portscan@0.2" [70]="backdoor@0.8" [77]="dnstunnel@0.3" [86]="burst@0.6"
  [95]="slowscan@0.2" [101]="backdoor-collide@0.5" [110]="dnstunnel-slow@0.4" [121]="burst@0.1"
  [130]="slowscan@0.5" [137]="dnstunnel-slow@0.2"
)
hours=$(( (days - 1) * 24 ))
for h in $(seq 0 $(( hours - 1 ))); do
  args=()
  if [ -n "${inj[$h]:-}" ]; then args=(--inject "${inj[$h]}"); fi
  "$bin/collector" simulate --db "$db" --hours 1 --seed $(( seed * 1000 + h )) --rate "$rate" "${args[@]}"
  "$bin/detector" --once --db "$db" -v >> "$work/log.txt" 2>&1 || true
done
"$bin/detector" evaluate --db "$db" > "$work/eval.txt"
"$bin/detector" evaluate --db "$db" --json > "$work/eval.json"
sqlite3 -separator $'\t' "$db" "SELECT l.event, l.kind, min(r.start_time), \
    round(max(b.score), 2), round(max(b.score) / bt.threshold, 2) FROM labels l \
    JOIN batches_rounds b ON b.round_id = l.round_id JOIN rounds r ON r.id = l.round_id \
    JOIN batches bt ON bt.id = b.batch_id GROUP BY l.event ORDER BY l.event" > "$work/events.tsv"
sqlite3 -separator $'\t' "$db" "SELECT a.round_id, r.start_time, round(a.score, 2), \
    round(a.threshold, 2), (SELECT group_concat(DISTINCT kind) FROM labels l \
    WHERE l.round_id BETWEEN a.round_id - 15 AND a.round_id), \
    substr(json_extract(a.explanation, '$.top_features'), 1, 300) \
    FROM anomalies a JOIN rounds r ON r.id = a.round_id ORDER BY a.round_id" > "$work/alarms.tsv"
if [ "${PORTWATCH_KEEP_DB:-0}" != 1 ]; then rm -f "$db" "$db-wal" "$db-shm"; fi
cat "$work/eval.txt"
