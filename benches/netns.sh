#!/usr/bin/env bash
# The scanner on a host with many network namespaces (issue 12 item 6): NS namespaces
# (default 50), each with a process holding 200 TCP sockets (50 listeners, 75
# connections to them, both ends), then in the same run:
#   - the scanner's sample as the collector takes it, every namespace read
#     (`sample_once`, 30 samples after a warm-up), and its own namespace only;
#   - `ss -tuanp` in each namespace one after the other (`ss -N NAME`, no process of
#     ip's in between), with hyperfine.
# Needs root, python3, ip, ss, hyperfine; release build of the example.
# Each namespace's TCP dump walks the kernel's TCP hash table, which is one for every
# namespace unless `net.ipv4.tcp_child_ehash_entries` gave the new ones their own:
# PORTWATCH_CHILD_EHASH=N sets it for the namespaces this script creates (and puts the
# old value back after).
# PORTWATCH_OLD_EXAMPLE=PATH runs another build's sample_once beside this one's, in turn.
# PORTWATCH_EMPTY=1 puts no socket in the namespaces (a `sleep` holds each): what is
# left is the kernel's walk of its TCP hash once per namespace, the floor any reader of
# the socket tables pays.
# Usage: benches/netns.sh [NS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-50}
prefix=pwbench$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$n"); do ip netns del "$prefix-$i" 2>/dev/null || true; done
}
old_ehash=$(sysctl -n net.ipv4.tcp_child_ehash_entries)
if [ -n "${PORTWATCH_CHILD_EHASH:-}" ]; then
  sysctl -q -w net.ipv4.tcp_child_ehash_entries="$PORTWATCH_CHILD_EHASH"
fi
trap 'cleanup; sysctl -q -w net.ipv4.tcp_child_ehash_entries="$old_ehash"' EXIT
script='
import socket, time
ls = []
for i in range(50):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 20000 + i)); s.listen(128); ls.append(s)
held = []
for i in range(75):
    c = socket.create_connection(("127.0.0.1", 20000 + i % 50))
    a, _ = ls[i % 50].accept(); held += [c, a]
print("ready", flush=True); time.sleep(3600)
'
for i in $(seq 1 "$n"); do
  ns=$prefix-$i
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if [ -n "${PORTWATCH_EMPTY:-}" ]; then
    ip netns exec "$ns" sh -c 'echo ready; exec sleep 3600' > "/tmp/$ns.ready" &
  else
    ip netns exec "$ns" python3 -c "$script" > "/tmp/$ns.ready" &
  fi
  pids+=($!)
done
for i in $(seq 1 "$n"); do
  until grep -q ready "/tmp/$prefix-$i.ready" 2>/dev/null; do sleep 0.1; done
  rm -f "/tmp/$prefix-$i.ready"
done
cargo build --release --quiet -p portwatch-scan --example sample_once --manifest-path "$here/Cargo.toml"
ex=$here/target/release/examples/sample_once
[ -z "${PORTWATCH_PERF:-}" ] || perf record -g -o "$PORTWATCH_PERF" "$ex" 30
echo "every namespace:   $("$ex" 30)"
echo "own namespace only: $("$ex" 30 --own-namespace-only)"
# PORTWATCH_OLD_EXAMPLE=PATH: another build's sample_once, in turn with this one, for an
# A/B in the same run.
if [ -n "${PORTWATCH_OLD_EXAMPLE:-}" ]; then
  for _ in 1 2; do
    echo "old, every namespace: $("$PORTWATCH_OLD_EXAMPLE" 30)"
    echo "new, every namespace: $("$ex" 30)"
  done
fi
names=$(for i in $(seq 1 "$n"); do printf '%s ' "$prefix-$i"; done)
hyperfine --warmup 1 --runs 5 \
  "for ns in $names; do ss -N \$ns -tuanp > /dev/null; done" \
  "for ns in $names; do ss -N \$ns -tuan > /dev/null; done" 2>&1 | grep -E 'Time|Range|Benchmark'
