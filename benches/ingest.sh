#!/usr/bin/env bash
# `collector --read` of a >= 2M-packet mixed capture into an existing database with the
# production schema, beside tshark exporting the same columns from the same file.
# Usage: benches/ingest.sh [WORKDIR]   (needs mergecap, tshark, hyperfine; release build)
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
# tshark exporting the same columns (time, layers, DNS names, ports, addresses, length,
# TCP flags, SNI).
/usr/bin/time -v tshark -r "$big" -T fields -e frame.time_epoch -e frame.protocols \
    -e dns.qry.name -e dns.resp.name -e tcp.srcport -e udp.srcport -e tcp.dstport \
    -e udp.dstport -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst -e frame.len \
    -e tcp.flags -e tls.handshake.extensions_server_name > /dev/null 2> "$work/tshark.time" || true
grep -E 'Elapsed|Maximum resident' "$work/tshark.time"
