#!/usr/bin/env bash
# Disk per round and per day (issue 13): a simulated day per host kind — a quiet server
# (2 packets/s), a busy one (100 packets/s), a workstation (20 packets/s in office
# hours, asleep most nights) — with the hourly detector's rows (one cold start, then
# `detector --once`), the WAL checkpointed; bytes per table from `dbstat`.
# Usage: benches/storage.sh [WORKDIR]   (release build; needs sqlite3 with dbstat)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/portwatch-storage}
bin=${PORTWATCH_BIN:-$here/target/release}
rm -rf "$work"; mkdir -p "$work"; chmod 700 "$work"
for spec in "quiet server 2" "busy server 100" "workstation workstation 20"; do
  set -- $spec
  name=$1; profile=$2; rate=$3
  db=$work/$name.db
  "$bin/collector" simulate --db "$db" --profile "$profile" --rate "$rate" --hours 24 --seed 3
  "$bin/detector" --once --db "$db" --model-dir "$work/$name.model" --min-history 12h > /dev/null || true
  sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" > /dev/null
  echo "== $name ($profile, $rate packets/s)"
  sqlite3 -separator ' ' "$db" "
    SELECT 'rounds', count(*), 'packets', (SELECT count(*) FROM packets),
           'socket rows', (SELECT count(*) FROM rounds_ports) FROM rounds;
    SELECT 'file', page_count * page_size, 'bytes; per round',
           page_count * page_size / (SELECT count(*) FROM rounds)
      FROM pragma_page_count, pragma_page_size;"
  sqlite3 -separator ' ' "$db" "
    SELECT coalesce(m.tbl_name, s.name) AS t, sum(s.pgsize) AS bytes
      FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name
     GROUP BY t ORDER BY bytes DESC LIMIT 8;"
  du -sb "$work/$name.model" | cut -f1 | sed 's/^/model bytes /'
done
