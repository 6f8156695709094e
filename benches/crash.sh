#!/usr/bin/env bash
# Crash safety: SIGKILL the collector at random points, live on `lo` under a ping
# flood and during `--read` of the shared mix, then check the database after each kill:
# `PRAGMA integrity_check` is ok, the next round runs and marks the dead one `failed`,
# and the dead round's counted packets are all there as one contiguous rowid range
# (rows lost = packets_stored − rows found, summed). Then SIGKILL the detector while it
# trains and saves: after each kill the model directory must load (`--no-train`
# scoring works, never exit 3).
# Usage: benches/crash.sh [COLLECTOR_KILLS] [DETECTOR_KILLS]   (release build, as root)
# Prints one summary line per half; the README's testing section records the last run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kills=${1:-1000}; dkills=${2:-200}
bin=${PORTWATCH_BIN:-$here/target/release}
pcaps=${PORTWATCH_PCAPS:-$here/../shared/pcaps}
work=${PORTWATCH_BENCH:-/tmp/portwatch-crash}
rm -rf "$work"; mkdir -p -m 0700 "$work"
db=$work/c.db
q() { sqlite3 "$db" "$1"; }
rand_ms() { echo $(( $1 + RANDOM % ($2 - $1) )); }

ping -f -q 127.0.0.1 > /dev/null 2>&1 & flood=$!
trap 'kill $flood 2>/dev/null || true' EXIT

lost=0; bad=0; live=0; reads=0
for i in $(seq 1 "$kills"); do
  if (( i % 2 )); then
    "$bin/collector" --db "$db" -i lo --duration 2 --scan-interval 0.5 2>/dev/null & pid=$!
    live=$((live + 1))
  else
    "$bin/collector" --db "$db" --read "$pcaps/bench_mixed_A.pcap" 2>/dev/null & pid=$!
    reads=$((reads + 1))
  fi
  sleep "0.$(printf '%03d' "$(rand_ms 0 999)")"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # No schema yet (killed before its migrations ran): no round died.
  dead=$(q "SELECT max(id) FROM rounds" 2>/dev/null || true)
  # The next round runs (closing the dead one as failed if it was still running).
  if ! "$bin/collector" --db "$db" --read "$pcaps/tcpdump__dns_udp.pcap" 2>/dev/null; then
    echo "kill $i: the next round failed"; bad=$((bad + 1))
  fi
  ok=$(q "PRAGMA integrity_check")
  [ "$ok" = ok ] || { echo "kill $i: integrity_check: $ok"; bad=$((bad + 1)); }
  if [ -n "$dead" ]; then
    read -r status stored found span < <(q "SELECT status, packets_stored,
        (SELECT count(*) FROM packets WHERE id BETWEEN r.first_packet_id AND r.last_packet_id),
        coalesce(last_packet_id - first_packet_id + 1, 0) FROM rounds r WHERE id = $dead" | tr '|' ' ')
    case $status in complete|failed|partial) ;; *) echo "kill $i: round $dead is $status"; bad=$((bad + 1));; esac
    [ "$found" = "$span" ] || { echo "kill $i: round $dead range has holes ($found of $span)"; bad=$((bad + 1)); }
    lost=$((lost + stored - found))
  fi
done
echo "collector: $kills kills ($live live, $reads --read): problems $bad, rows lost $lost, rounds $(q 'SELECT count(*) FROM rounds' 2>/dev/null || echo 0), packets $(q 'SELECT count(*) FROM packets' 2>/dev/null || echo 0)"

# The detector, killed while it trains and saves.
ddb=$work/d.db; model=$work/model
"$bin/collector" simulate --db "$ddb" --hours 3 --rate 5 --seed 1 > /dev/null
"$bin/detector" --once --db "$ddb" --model-dir "$model" --min-history 2h > /dev/null || true
# Kills spread over a whole fine-tuning run (load, score, train, save), measured once.
"$bin/collector" simulate --db "$ddb" --hours 0.1 --rate 5 --seed 1000000 > /dev/null
t0=$(date +%s%N)
"$bin/detector" --once --db "$ddb" --model-dir "$model" --train > /dev/null 2>&1 || true
run_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
dbad=0
for i in $(seq 1 "$dkills"); do
  "$bin/collector" simulate --db "$ddb" --hours 0.1 --rate 5 --seed $((i + 1)) > /dev/null
  "$bin/detector" --once --db "$ddb" --model-dir "$model" --train > /dev/null 2>&1 & pid=$!
  ms=$(rand_ms 0 $(( run_ms * 12 / 10 + 1 )))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  set +e
  "$bin/detector" --once --db "$ddb" --model-dir "$model" --no-train > /dev/null 2> "$work/derr"
  code=$?
  set -e
  if [ "$code" != 0 ] && [ "$code" != 1 ]; then
    echo "detector kill $i: exit $code: $(cat "$work/derr")"; dbad=$((dbad + 1))
  fi
  ok=$(sqlite3 "$ddb" "PRAGMA integrity_check")
  [ "$ok" = ok ] || { echo "detector kill $i: integrity_check: $ok"; dbad=$((dbad + 1)); }
done
echo "detector: $dkills kills over 0–$((run_ms * 12 / 10)) ms of a ${run_ms} ms fine-tuning run: problems $dbad, model version $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_version"])' "$model/model.json" 2>/dev/null || echo '?')"
