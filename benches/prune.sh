#!/usr/bin/env bash
# `collector prune` of one day of rounds at RATE packets/s (issue 13: ≤ 5 s), as the
# daily job meets it: two simulated days, the older one pruned (`--older-than` set so
# that the cutoff is the second day's midnight). Each contender gets a fresh copy of
# the same file, under /usr/bin/time:
#   - `collector prune` (batched transactions, freed pages kept for reuse);
#   - `collector prune --vacuum` (the same, then the pages returned to the file system);
#   - the bare SQL a console user would type: one transaction deleting the day's
#     packets by rowid range and its rounds (which cascade);
#   - OLD_BIN, when set: another build's `collector prune` (e.g. the previous commit's),
#     on the same two days simulated by OLD_BIN itself (its own schema).
# RUNS (default 3): how many times `collector prune` runs, each on a fresh copy.
# Usage: benches/prune.sh [RATE] [WORKDIR]   (needs target/release/collector)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}
work=${2:-/root/portwatch-prune-$rate}
bin=$here/target/release/collector
rm -rf "$work"; mkdir -p "$work"
"$bin" simulate --db "$work/two.db" --hours 48 --rate "$rate" --seed 1
first=$(sqlite3 "$work/two.db" "SELECT min(start_time) FROM rounds")
cutoff=$(date -u -d "$(date -u -d "$first" +%F) + 1 day" +%FT%TZ)
sqlite3 "$work/two.db" "SELECT count(*) || ' rounds before $cutoff, ' || sum(packets_stored)
  || ' packets' FROM rounds WHERE start_time < '$cutoff';
  SELECT (page_count * page_size / 1048576) || ' MiB in the file' FROM pragma_page_count, pragma_page_size"
older() { echo "$(( $(date +%s) - $(date -d "$cutoff" +%s) ))s"; }
measure() { # FILE NAME COMMAND...
  local src=$1 name=$2; shift 2
  rm -f "$work"/run.db*; cp "$src" "$work/run.db"; sync
  echo "== $name"
  /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" "$@" 2>&1 | grep -v '^$'
  sqlite3 "$work/run.db" "SELECT count(*) || ' rounds left; ' FROM rounds;
    SELECT (page_count * page_size / 1048576) || ' MiB file, ' || freelist_count || ' free pages'
      FROM pragma_page_count, pragma_page_size, pragma_freelist_count"
}
for _ in $(seq "${RUNS:-3}"); do
  measure "$work/two.db" "collector prune" "$bin" prune --db "$work/run.db" --older-than "$(older)" -v
done
measure "$work/two.db" "collector prune --vacuum" "$bin" prune --db "$work/run.db" --older-than "$(older)" --vacuum -v
last=$(sqlite3 "$work/two.db" "SELECT max(last_packet_id) FROM rounds WHERE start_time < '$cutoff'")
measure "$work/two.db" "sqlite3, one transaction" sqlite3 "$work/run.db" "PRAGMA foreign_keys = ON; BEGIN;
  DELETE FROM packets WHERE id <= $last; DELETE FROM rounds WHERE start_time < '$cutoff'; COMMIT;"
if [ -n "${OLD_BIN:-}" ]; then
  rm "$work/two.db"
  "$OLD_BIN" simulate --db "$work/old.db" --hours 48 --rate "$rate" --seed 1
  measure "$work/old.db" "OLD_BIN prune ($OLD_BIN)" "$OLD_BIN" prune --db "$work/run.db" --older-than "$(older)" -v
fi
rm -rf "$work"
