#!/usr/bin/env bash
# The README's console cookbook ("## Looking at the data"), timed in the sqlite3 console
# on a simulated day: every ```sql block of that section, run RUNS times in one sqlite3
# process after one untimed run (`.timer on`, rows to /dev/null); per query the median,
# min and max of SQLite's wall time (`.timer` counts whole milliseconds), and the rows
# it returned.
# History: the queries' windows are relative to 'now', so the day must end now. The
# simulator appends after the database's last round, so the script creates the schema
# with init.sql, writes one empty seed round a day and a minute ago, and simulates 24 h
# after it at RATE packets/s with a deploy (tcp/8443, 4 h ago) and a port scan (30 min
# ago), as crates/sim/tests/cookbook.rs does. The simulated load follows the time of
# day, so the "last hour" queries read more packets in the (UTC) afternoon.
# Usage: benches/cookbook.sh [RATE] [RUNS] [WORKDIR]   (builds the release collector;
# PORTWATCH_BIN=DIR uses DIR/collector as it is)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rate=${1:-100}; runs=${2:-5}
work=${3:-/tmp/portwatch-cookbook-$rate}
cd "$here"
if [ -z "${PORTWATCH_BIN:-}" ]; then
  cargo build --release --quiet -p portwatch-collector
fi
bin=${PORTWATCH_BIN:-$here/target/release}
rm -rf "$work"; mkdir -p "$work"
db=$work/ports.db
seed="strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-1 day', '-1 minute')"
sqlite3 -init init.sql "$db" \
  "INSERT INTO rounds (start_time, end_time, source, status) VALUES ($seed, $seed, 'simulated', 'complete')" > /dev/null
"$bin/collector" simulate --db "$db" --hours 24 --seed 1 --rate "$rate" \
  --inject deploy@20 --inject portscan@23.5 -v
hour() { # packets of the rounds that started between two offsets from now
  sqlite3 "$db" "SELECT coalesce(sum(packets_stored), 0) FROM rounds
    WHERE start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '$1')
      AND start_time < strftime('%Y-%m-%dT%H:%M:%S', 'now', '$2')"
}
echo "sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(date -u +%FT%TZ); $(du -m "$db" | cut -f1) MiB;" \
  "$(sqlite3 "$db" 'SELECT count(*) FROM packets') packets," \
  "$(sqlite3 "$db" 'SELECT count(*) FROM rounds_ports') socket rows;" \
  "last hour $(hour '-1 hour' '+1 hour') packets, 3 to 2 hours ago $(hour '-3 hours' '-2 hours')," \
  "busiest hour $(sqlite3 "$db" "SELECT max(n) FROM (SELECT sum(packets_stored) AS n FROM rounds
    GROUP BY substr(start_time, 1, 13))")"

# Each ```sql block of the section, one file per query.
awk -v dir="$work" '
  /^## / { inside = ($0 == "## Looking at the data"); next }
  inside && /^```sql$/ { n++; f = sprintf("%s/q%02d.sql", dir, n); block = 1; next }
  block && /^```$/ { block = 0; close(f); next }
  block { print > f }
' README.md
queries=("$work"/q*.sql)
[ -e "${queries[0]}" ] || { echo "no \`\`\`sql block under \"## Looking at the data\" in README.md" >&2; exit 1; }

# The queries whose text says 'now' again, as if it were the end of the day's busiest
# clock hour: on a copy whose history ends there, with 'now' replaced by that time (the
# views keep their own 'now', so they are not in this column).
peak=$(sqlite3 "$db" "SELECT strftime('%Y-%m-%dT%H:%M:%S', substr(start_time, 1, 13) || ':00:00',
  '+1 hour') FROM rounds GROUP BY substr(start_time, 1, 13) ORDER BY sum(packets_stored) DESC LIMIT 1")
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
cp "$db" "$work/peak.db"
sqlite3 "$work/peak.db" "PRAGMA foreign_keys = ON;
  DELETE FROM packets WHERE id > (SELECT max(last_packet_id) FROM rounds WHERE start_time < '$peak');
  DELETE FROM rounds WHERE start_time >= '$peak';"
echo "busiest hour ends $peak: $(sqlite3 "$work/peak.db" "SELECT sum(packets_stored) FROM rounds
  WHERE start_time >= strftime('%Y-%m-%dT%H:%M:%S', '$peak', '-1 hour')") packets in it"
timed() { # DB FILE: median, min and max wall ms of RUNS runs after an untimed one
  { echo ".timer on"; echo ".output /dev/null"; cat "$2"
    for _ in $(seq 1 "$runs"); do cat "$2"; done; } > "$work/timed.sql"
  sqlite3 -batch "$1" < "$work/timed.sql" | sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p' \
    | tail -n "$runs" | sort -n | awk '
        { t[NR] = $1 * 1000 }
        END {
          if (NR == 0) exit 1
          m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
          printf "%.0f %.0f %.0f\n", m, t[1], t[NR]
        }'
}
printf '%-3s %9s %5s %5s %7s %9s  %s\n' "#" "median ms" "min" "max" "rows" "busiest h" "question"
for q in "${queries[@]}"; do
  n=$(basename "$q" .sql); n=$((10#${n#q}))
  question=$(awk '!/^--/ { exit } { sub(/^-- *([0-9]+\.)? */, ""); printf "%s ", $0 }' "$q" \
    | sed 's/?.*/?/')
  rows=$(sqlite3 -batch -list "$db" < "$q" | wc -l)
  read -r med lo hi < <(timed "$db" "$q")
  at_peak=-
  if grep -q "'now'" "$q"; then
    sed "s/'now'/'$peak'/g" "$q" > "$work/peak.sql"
    read -r at_peak _ _ < <(timed "$work/peak.db" "$work/peak.sql")
  fi
  over=""
  { [ "$med" -gt 100 ] || { [ "$at_peak" != - ] && [ "$at_peak" -gt 100 ]; }; } && over="  [over 100 ms]"
  printf '%-3s %9s %5s %5s %7s %9s  %s%s\n' "$n" "$med" "$lo" "$hi" "$rows" "$at_peak" "$question" "$over"
done
rm -rf "$work"
