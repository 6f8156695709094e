#!/usr/bin/env bash
# Live capture on loopback at 100,000 packets/s for 10 s: kernel drops and stored count.
# Usage: benches/live.sh [PPS] [SECONDS]   (root; release build of collector and loopgen)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pps=${1:-100000}
secs=${2:-10}
work=$(mktemp -d)
db=$work/live.db
"$here/target/release/collector" --db "$db" -i lo --duration $((secs + 4)) \
    --filter "udp port 9999" -v &
pid=$!
sleep 1.5
"$here/target/release/examples/loopgen" "$pps" "$secs" 9999
wait $pid
sqlite3 "$db" "SELECT 'stored', packets_stored, 'captured', packets_captured, 'dropped', packets_dropped FROM rounds"
rm -rf "$work"
