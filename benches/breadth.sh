#!/usr/bin/env bash
# Incident-level detection on a simulated week with every kind of event, run the way
# cron runs it (hourly here: a per-minute run scores the same rounds, and fine-tunes
# hourly too): a clean first day and the cold start, then for each following hour
# `collector simulate --hours 1` (with the hour's event, if any) and `detector --once`.
# A `deploy` (a service put in production for good) goes on in every hour after it.
# Usage: benches/breadth.sh NAME SEED PROFILE [RATE] [DAYS] [cold-start detector flags...]
# (release build; e.g. --zscore-baseline for the per-feature z-score scorer; given to
# every run, since a workstation's first day may be too short to cold-start on and the
# cold start then comes an hour later)
# Output in $PORTWATCH_BENCH/NAME (default /tmp/portwatch-breadth/NAME): log.txt,
# eval.txt, eval.json, incidents.txt. The database is removed unless PORTWATCH_KEEP_DB=1.
# PORTWATCH_EXTRA="HOUR=KIND@FRAC ..." adds events at hours the plan leaves free (a
# kind measured apart, e.g. "40=bruteforce@0.3 90=bruteforce@0.6").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=$1; seed=$2; profile=$3; rate=${4:-20}; days=${5:-7}
shift $(( $# < 5 ? $# : 5 ))
bin=${PORTWATCH_BIN:-$here/target/release}
work=${PORTWATCH_BENCH:-/tmp/portwatch-breadth}/$name
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
sim() { "$bin/collector" simulate --db "$db" --profile "$profile" --rate "$rate" "$@"; }
sim --hours 24 --seed "$seed"
"$bin/detector" --once --db "$db" -v "$@" > "$work/log.txt" 2>&1 || true
# Hour after day 1 -> event: each kind twice or more, about one every 7 hours.
declare -A inj=(
  [4]="portscan@0.4" [11]="outscan@0.3" [17]="beacon@0.2" [24]="dnstunnel@0.5"
  [31]="upload@0.3" [38]="flood@0.6" [45]="outage@0.1" [52]="backdoor@0.4"
  [59]="burst@0.3" [66]="slowscan@0.2" [73]="outscan@0.5" [80]="upload@0.6"
  [87]="flood@0.2" [94]="beacon@0.4" [100]="deploy@0.3" [107]="outage@0.5"
  [114]="portscan@0.7" [121]="dnstunnel-slow@0.3" [128]="backdoor-collide@0.2"
  [134]="backdoor@0.6"
)
for extra in ${PORTWATCH_EXTRA:-}; do inj[${extra%%=*}]=${extra#*=}; done
hours=$(( (days - 1) * 24 ))
deployed=0
for h in $(seq 0 $(( hours - 1 ))); do
  args=()
  if [ -n "${inj[$h]:-}" ]; then args+=(--inject "${inj[$h]}"); fi
  if [ "${inj[$h]:-}" = "deploy@0.3" ]; then deployed=1;
  elif [ "$deployed" = 1 ]; then args+=(--inject deploy@0); fi
  sim --hours 1 --seed "$seed" "${args[@]}"
  "$bin/detector" --once --db "$db" -v "$@" >> "$work/log.txt" 2>&1 || true
done
"$bin/detector" evaluate --db "$db" > "$work/eval.txt"
"$bin/detector" evaluate --db "$db" --json > "$work/eval.json"
"$bin/detector" incidents --db "$db" > "$work/incidents.txt"
if [ "${PORTWATCH_KEEP_DB:-0}" != 1 ]; then rm -f "$db" "$db-wal" "$db-shm"; fi
cat "$work/eval.txt"
