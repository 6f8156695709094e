#!/usr/bin/env bash
# `collector --read` of a >= 2M-packet mixed capture into an existing database with the
# production schema, beside tshark exporting the same columns from the same file.
# Usage: [PORTWATCH_OLD_BIN=…] [RUNS=N] benches/ingest.sh [WORKDIR]
#   (needs mergecap, tshark, hyperfine; release build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/portwatch-bench}
pcaps=${PORTWATCH_PCAPS:-$here/../shared/pcaps}
mkdir -p "$work"
big=$work/mixed2m.pcap
if [ ! -f "$big" ]; then
    # 43 copies of the 47,590-packet mix: 2,046,370 packets.
    mergecap -a -F pcap -w "$big" $(for _ in $(seq 43); do echo "$pcaps/bench_mixed_A.pcap"; done)
fi
bin=$here/target/release/collector
packets=$(capinfos -c -M "$big" | awk -F': *' '/Number of packets/ {print $2}')
echo "file: $big ($packets packets)"
cat "$big" > /dev/null   # page cache
# Each run appends a round to a database that already has the schema and earlier data.
db=$work/ingest.db
rm -f "$db" "$db-wal" "$db-shm"
"$bin" --db "$db" --read "$pcaps/tcpdump__dns_udp.pcap"
hyperfine --warmup 1 --runs 5 --export-json "$work/ingest.json" \
    "$bin --db $db --read $big"
/usr/bin/time -v "$bin" --db "$db" --read "$big" 2>&1 | grep -E 'Elapsed|Maximum resident|Percent of CPU'
# PORTWATCH_OLD_BIN: another build's collector, run in turn with this one (RUNS each,
# default 8) on databases of their own, so that both meet the same machine state
# (hyperfine runs one command's series, then the other's: the dirty pages the first
# left behind slow the second).
if [ -n "${PORTWATCH_OLD_BIN:-}" ]; then
    for who in new old; do
        rm -f "$work/$who.db" "$work/$who.db-wal" "$work/$who.db-shm"
    done
    "$bin" --db "$work/new.db" --read "$pcaps/tcpdump__dns_udp.pcap"
    "$PORTWATCH_OLD_BIN" --db "$work/old.db" --read "$pcaps/tcpdump__dns_udp.pcap"
    : > "$work/turns.txt"
    for _ in $(seq "${RUNS:-8}"); do
        /usr/bin/time -f "new %e %U %S %M" "$bin" --db "$work/new.db" --read "$big" 2>> "$work/turns.txt"
        /usr/bin/time -f "old %e %U %S %M" "$PORTWATCH_OLD_BIN" --db "$work/old.db" --read "$big" 2>> "$work/turns.txt"
    done
    for who in new old; do
        grep "^$who " "$work/turns.txt" | sort -k2 -n | awk -v who="$who" -v n="$packets" '
            { w[NR] = $2; u += $3; s += $4; if ($5 > m) m = $5 }
            END { med = (NR % 2) ? w[(NR + 1) / 2] : (w[NR / 2] + w[NR / 2 + 1]) / 2
                  printf "%s: wall median %.3f s (%.3f-%.3f), %.0f packets/s at the median, user %.2f s, sys %.2f s, peak RSS %d KB, %d runs\n",
                         who, med, w[1], w[NR], n / med, u / NR, s / NR, m, NR }'
    done
fi
# tshark exporting the same columns (time, layers, DNS names, ports, addresses, length,
# TCP flags, SNI).
/usr/bin/time -v tshark -r "$big" -T fields -e frame.time_epoch -e frame.protocols \
    -e dns.qry.name -e dns.resp.name -e tcp.srcport -e udp.srcport -e tcp.dstport \
    -e udp.dstport -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst -e frame.len \
    -e tcp.flags -e tls.handshake.extensions_server_name > /dev/null 2> "$work/tshark.time" || true
grep -E 'Elapsed|Maximum resident' "$work/tshark.time"
