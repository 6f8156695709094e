#!/usr/bin/env bash
# Where a detector run's time goes (load, score, incidents, train, save: the `phases`
# of `detector --once --json`), and how each phase grows with
#   1. history length: cold starts on 12, 24 and 48 h at 20 packets/s;
#   2. packet rate: at 20, 50 and 100 packets/s, after a cold start on 24 h, the hourly
#      step (an hour of new rounds, fine-tuned) and the per-minute run (one new round);
#   3. a round's size and its distinct remote addresses and ports: one round of 200,000
#      and one of 2,046,370 packets of the shared mix (thousands of addresses), spread
#      over 55 s after the 20 packets/s history, scored without a fine-tune. Beside it,
#      sqlite3 reading the same packet columns the detector reads: the store's share of
#      "load" (the rest is building features; the two are one streamed pass).
# Peak RSS from /usr/bin/time. Usage: benches/phases.sh [WORKDIR] (release build;
# needs mergecap, editcap, python3, sqlite3). Output: WORKDIR/phases.tsv.
# Beside them, with PORTWATCH_KERAS=/path/to/python (a venv with tensorflow-cpu), the
# Keras baseline (benches/baselines/keras_ae.py) on the detector's shapes in the same
# run: 110 inputs (106 features, 4 time), windows of 12; the hourly step's 720 windows
# scored and 2 epochs of fine-tuning (its second run, with weights to load, as the
# steady hourly job), and the cold start's 12 epochs of 4,000 windows.
# PORTWATCH_PARTS=3 runs part 3 alone on the databases an earlier run kept
# (PORTWATCH_KEEP_DB=1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/portwatch-phases}
bin=${PORTWATCH_BIN:-$here/target/release}
pcaps=${PORTWATCH_PCAPS:-$here/../shared/pcaps}
mkdir -p "$work"
out=$work/phases.tsv
parts=${PORTWATCH_PARTS:-123}
[ "$parts" != 3 ] || out=$work/phases3.tsv
printf 'case\thistory_h\trate\tround_packets\tremote_addrs\tports\twall_s\tpeak_mib\tload\tscore\tincidents\ttrain\tsave\n' > "$out"

# run CASE HISTORY RATE PACKETS ADDRS PORTS -- detector args...: one timed run, a row.
run() {
  local case=$1 hist=$2 rate=$3 pk=$4 addrs=$5 ports=$6; shift 7
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin/detector" --once --json "$@" \
    > "$work/run.json" || true
  python3 - "$work/run.json" "$work/time" "$case" "$hist" "$rate" "$pk" "$addrs" "$ports" >> "$out" <<'PY'
import json, sys
batch = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
wall, rss = open(sys.argv[2]).read().split()[-2:]
p = batch["phases"]
print("\t".join(sys.argv[3:9] + [wall, f"{int(rss) / 1024:.0f}"] +
                [f"{p[k]:.2f}" for k in ("load", "score", "incidents", "train", "save")]))
PY
  tail -1 "$out"
}
sim() { "$bin/collector" simulate --seed 1 "$@"; }

# 1. History length.
[[ $parts == *1* ]] && for h in 12 24 48; do
  db=$work/h$h.db; rm -f "$db"*; rm -rf "$work/m-h$h"
  sim --db "$db" --hours "$h" --rate 20
  run cold "$h" 20 - - - -- --db "$db" --model-dir "$work/m-h$h" --min-history "$(( h - 1 ))h"
  [ "$h" = 24 ] || rm -f "$db"*
done

# 2. Packet rate.
[[ $parts == *2* ]] && for rate in 20 50 100; do
  db=$work/r$rate.db; m=$work/m-r$rate
  if [ "$rate" = 20 ]; then cp "$work/h24.db" "$db"; cp -r "$work/m-h24" "$m"
  else
    rm -f "$db"*; rm -rf "$m"
    sim --db "$db" --hours 24 --rate "$rate"
    run cold 24 "$rate" - - - -- --db "$db" --model-dir "$m" --min-history 23h
  fi
  sim --db "$db" --hours 1 --rate "$rate"
  run hourly 25 "$rate" - - - -- --db "$db" --model-dir "$m" --train
  sim --db "$db" --hours 0.0166667 --rate "$rate"
  run minute 25 "$rate" - - - -- --db "$db" --model-dir "$m"
  [ "$rate" = 20 ] || rm -f "$db"*
done

if [ -n "${PORTWATCH_KERAS:-}" ] && [[ $parts == *2* ]]; then
  keras() { (cd "$work" && /usr/bin/time -f '%e s wall, %M KB peak RSS' \
    "$PORTWATCH_KERAS" "$here/benches/baselines/keras_ae.py" --window 12 --features 110 "$@" 2>&1 \
    | grep -E '^data|wall' | tr '\n' ' '; echo); }
  rm -f "$work/keras_baseline.weights.h5"
  keras --windows 720 --epochs 2 > /dev/null
  echo "keras hourly (720 windows, 2 epochs): $(keras --windows 720 --epochs 2)" | tee -a "$work/keras.txt"
  rm -f "$work/keras_baseline.weights.h5"
  echo "keras cold start (4000 windows, 12 epochs): $(keras --windows 4000 --epochs 12)" | tee -a "$work/keras.txt"
fi

# 3. Big rounds of many addresses, on the 20 packets/s history and model.
big=$work/mixed2m.pcap
[ -f "$big" ] || mergecap -a -F pcap -w "$big" \
  $(for _ in $(seq 43); do echo "$pcaps/bench_mixed_A.pcap"; done)
[[ $parts == *3* ]] && for n in 200000 2046370; do
  db=$work/big.db; m=$work/m-big
  rm -f "$db"*; rm -rf "$m"
  cp "$work/r20.db" "$db"; cp -r "$work/m-r20" "$m"
  "$bin/detector" --once --db "$db" --model-dir "$m" > /dev/null || true  # the minute before
  editcap -F pcap -r "$big" "$work/part.pcap" "1-$n"
  last=$(sqlite3 "$db" "SELECT unixepoch(max(end_time)) FROM rounds")
  python3 "$here/benches/retime.py" "$work/part.pcap" "$work/round.pcap" "$(( last + 5 ))" 55 > /dev/null
  "$bin/collector" --db "$db" --read "$work/round.pcap"
  # A file round is not evaluated; this one stands for a live round that busy.
  id=$(sqlite3 "$db" "UPDATE rounds SET source = 'simulated' WHERE id = (SELECT max(id) FROM rounds) RETURNING id")
  range=$(sqlite3 -separator ' AND ' "$db" "SELECT first_packet_id, last_packet_id FROM rounds WHERE id = $id")
  addrs=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT src_addr FROM packets WHERE id BETWEEN $range UNION SELECT dst_addr FROM packets WHERE id BETWEEN $range)")
  ports=$(sqlite3 "$db" "SELECT count(DISTINCT dest_port) FROM packets WHERE id BETWEEN $range")
  run round 25 20 "$n" "$addrs" "$ports" -- --db "$db" --model-dir "$m" --no-train
  /usr/bin/time -f "sqlite3 reading the round's $n packets (the detector's columns): %e s wall, %M KB" \
    sqlite3 "$db" "SELECT count(*), sum(length(timestamp) + length(protocols) + coalesce(length(qry_name), 0) + (resp_name IS NOT NULL) + coalesce(port_id, 0) + coalesce(dest_port, 0) + coalesce(length(src_addr), 0) + coalesce(length(dst_addr), 0) + length + coalesce(tcp_flags, 0) + coalesce(dns_qr, 0) + coalesce(length(process), 0)) FROM packets WHERE id BETWEEN $range"
done
rm -f "$work/part.pcap" "$work/round.pcap"
[ "${PORTWATCH_KEEP_DB:-0}" = 1 ] || rm -f "$work"/*.db*
column -t -s $'\t' "$out"
