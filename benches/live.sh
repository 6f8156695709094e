#!/usr/bin/env bash
# Live capture on loopback at PPS packets/s for SECONDS: kernel drops and stored count.
# The load comes from tcpreplay (Debian's package) replaying a file of 64-byte UDP
# datagrams to 127.0.0.1:9999 in a loop, when it is installed: one process sending
# through sockets (examples/loopgen.rs, the fallback) reaches only about 130,000/s on
# this 2-core VM, as much kernel work per datagram as the capture itself.
# Usage: benches/live.sh [PPS] [SECONDS]   (root; release build of collector and loopgen)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pps=${1:-100000}
secs=${2:-10}
work=$(mktemp -d)
db=$work/live.db
if command -v tcpreplay > /dev/null; then
  # 100,000 frames of Ethernet (lo's link type) + IPv4 + UDP 40000 -> 9999, 64 bytes.
  python3 - "$work/udp.pcap" <<'PY'
import struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
udp = struct.pack('!HHHH', 40000, 9999, 72, 0) + b'\x5a' * 64
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 92, 0, 0x4000, 64, 17, 0, b'\x7f\0\0\x01', b'\x7f\0\0\x01')
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
frame = b'\0' * 12 + b'\x08\x00' + ip + udp
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(100000):
        f.write(struct.pack('<IIII', 0, i, len(frame), len(frame)) + frame)
PY
  gen=(tcpreplay -q -i lo --pps="$pps" --limit=$((pps * secs)) --loop=0 "$work/udp.pcap")
else
  gen=("$here/target/release/examples/loopgen" "$pps" "$secs" 9999)
fi
/usr/bin/time -f "collector peak RSS %M KB, user %U s, sys %S s" \
  "$here/target/release/collector" --db "$db" -i lo --duration $((secs + 4)) \
    --filter "udp port 9999" -v &
pid=$!
sleep 1.5
"${gen[@]}" 2>&1 | grep -Ev '^\s*$' | head -4
wait $pid
sqlite3 "$db" "SELECT 'stored', packets_stored, 'captured', packets_captured, 'dropped', packets_dropped FROM rounds"
# The alternative in the same run: tcpdump writing the same packets to a file, with the
# collector's ring size (-B 8192 KiB), under the same load.
if command -v tcpdump > /dev/null; then
  tcpdump -i lo -B 8192 -w "$work/tcpdump.pcap" "udp port 9999" 2> "$work/tcpdump.err" &
  tpid=$!
  sleep 1.5
  "${gen[@]}" > /dev/null 2>&1
  sleep 1
  kill -INT $tpid; wait $tpid || true
  echo "tcpdump: $(grep -E 'captured|dropped' "$work/tcpdump.err" | tr '\n' ' ')"
fi
rm -rf "$work"
