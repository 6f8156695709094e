#!/usr/bin/env bash
# `collector prune` of one day of rounds at RATE packets/s (issue 13: ≤ 5 s): a
# simulated day (at the simulator's fixed past epoch, so `--older-than 1h` takes all of
# it), copied twice; one copy pruned by the collector, the other by the bare SQL a
# console user would type (the same rows, one statement each, then the same vacuum),
# both under /usr/bin/time.
# Usage: benches/prune.sh [RATE] [WORKDIR]   (needs target/release/collector)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}
work=${2:-/tmp/portwatch-prune-$rate}
bin=$here/target/release/collector
rm -rf "$work"; mkdir -p "$work"
"$bin" simulate --db "$work/day.db" --hours 24 --rate "$rate" --seed 1 -v
sqlite3 "$work/day.db" "SELECT count(*) || ' rounds, ' || sum(packets_stored) || ' packets' FROM rounds;
  SELECT (page_count * page_size / 1048576) || ' MiB' FROM pragma_page_count, pragma_page_size"
cp "$work/day.db" "$work/sql.db"
sync
echo "== collector prune --older-than 1h"
/usr/bin/time -v "$bin" prune --db "$work/day.db" --older-than 1h -v 2>&1 \
  | grep -E '^pruned|Elapsed|Maximum resident|User time|System time'
echo "== sqlite3: DELETE FROM packets; DELETE FROM rounds; incremental_vacuum"
/usr/bin/time -v sqlite3 "$work/sql.db" "PRAGMA foreign_keys = ON; DELETE FROM packets;
  DELETE FROM rounds; PRAGMA incremental_vacuum;" 2>&1 \
  | grep -E 'Elapsed|Maximum resident|User time|System time'
ls -l "$work"/*.db
rm -rf "$work"
