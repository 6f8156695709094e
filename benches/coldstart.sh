#!/usr/bin/env bash
# The cold start on 24 h (issue 13 item 2c) at 20, 50 and 100 packets/s: `detector
# --once --json --min-history 23h` on a fresh copy of a simulated day with a fresh model
# directory; wall and peak RSS from /usr/bin/time, phases from the batch line.
# PORTWATCH_OLD_BIN=DIR runs another build's detector in turn with this one's (an A/B
# in the same run); PORTWATCH_KERAS=/path/to/python adds the Keras baseline on the cold
# start's shapes (4,000 windows of 12 × 110, 12 epochs) after each round of runs.
# PORTWATCH_PROFILE=workstation simulates a workstation's day instead of a server's
# (its browser reaches thousands of networks a day, which the rules read back over).
# Usage: benches/coldstart.sh [WORKDIR] [REPEATS]   (release build; prints one line a run)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/portwatch-coldstart}
reps=${2:-2}
bin=${PORTWATCH_BIN:-$here/target/release}
profile=${PORTWATCH_PROFILE:-server}
mkdir -p "$work"
cd "$work"
day() { if [ "$profile" = server ]; then echo "day$1.db"; else echo "$profile-day$1.db"; fi; }
for r in 20 50 100; do
  [ -f "$(day "$r")" ] || "$bin/collector" simulate --seed 1 --db "$(day "$r")" --hours 24 \
    --rate "$r" --profile "$profile" > /dev/null
done
builds=(new)
[ -z "${PORTWATCH_OLD_BIN:-}" ] || builds=(old new)
for _ in $(seq "$reps"); do
  for r in 20 50 100; do
    for which in "${builds[@]}"; do
      b=$bin; [ "$which" = new ] || b=$PORTWATCH_OLD_BIN
      cp "$(day "$r")" run.db; rm -f run.db-wal run.db-shm; rm -rf model; sync
      /usr/bin/time -f '%e %M' -o time.txt "$b/detector" --once --json --db run.db \
        --model-dir model --min-history 23h > run.json || true
      python3 - "$which" "$r" <<'PY'
import json, sys
b = [json.loads(l) for l in open("run.json") if l.strip()][-1]
wall, rss = open("time.txt").read().split()[-2:]
p = b["phases"]
print(sys.argv[1], f"{sys.argv[2]} packets/s:", f"{wall} s wall,", f"{int(rss) // 1024} MiB,",
      " ".join(f"{k} {p[k]:.2f}" for k in ("load", "score", "incidents", "train", "save")),
      f"threshold {b['threshold']:.3f}")
PY
    done
  done
  if [ -n "${PORTWATCH_KERAS:-}" ]; then
    rm -f keras_baseline.weights.h5
    echo "keras cold start (4,000 windows, 12 epochs): $( { /usr/bin/time -f '%e s wall, %M KB peak RSS' \
      "$PORTWATCH_KERAS" "$here/benches/baselines/keras_ae.py" --window 12 --features 110 \
      --windows 4000 --epochs 12 2>&1 | grep -E '^data|wall' | tr '\n' ' '; } )"
  fi
done
rm -f run.db run.db-wal run.db-shm run.json time.txt
