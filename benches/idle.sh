#!/usr/bin/env bash
# An idle collector round (default 55 s, 12 samples) on an interface with no traffic of
# interest: CPU time and peak RSS; and start-up, as the wall time of a 1 ms round.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
bin=$here/target/release/collector
"$bin" --db "$work/idle.db" -i lo --duration 0.001   # schema exists before timing
/usr/bin/time -v "$bin" --db "$work/idle.db" -i lo --filter "port 9" 2>&1 \
    | grep -E 'User time|System time|Elapsed|Maximum resident'
hyperfine --warmup 3 --runs 20 "$bin --db $work/idle.db -i lo --filter 'port 9' --duration 0.001"
rm -rf "$work"
