#!/usr/bin/env bash
# Detection quality on a simulated week, run the way cron runs it: a clean first day,
# `detector --once` (cold start), then for each following hour `collector simulate
# --hours 1` (with the hour's injected event, if any) and `detector --once`.
# Usage: benches/week.sh NAME SEED [RATE] [DAYS] [extra cold-start detector flags...]
# Output in $PORTWATCH_BENCH/NAME (default /tmp/portwatch-week/NAME): log.txt, eval.txt,
# eval.json. Seeds: day 1 `--seed SEED`, hour h after it `--seed SEED*1000+h`.
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
cat "$work/eval.txt"
