#!/usr/bin/env bash
# Where an ingest's CPU goes, thread by thread, for two builds in turn (so that both
# meet the same machine state): each run is `collector --read` of the mix into a
# database of that build's own, sampled by `perf` (task-clock at 1 kHz); prints each
# run's CPU seconds of the reading thread (`collector`), the writer and the
# checkpointer, then the means. Then, unless CALLGRIND=0, the instructions each build
# runs on the 47,590-packet mix under callgrind, whole and by thread (deterministic:
# the machine's speed does not enter them).
# Usage: benches/threads.sh NEW_BIN OLD_BIN [RUNS] [WORKDIR]   (needs perf, valgrind;
#   RUNS=0: the instruction counts alone)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pcaps=${PORTWATCH_PCAPS:-$here/../shared/pcaps}
new=$1 old=$2 runs=${3:-6} work=${4:-/root/portwatch-threads}
big=${BIG:-/tmp/portwatch-bench/mixed2m.pcap}   # benches/ingest.sh makes it
mkdir -p "$work"
for who in new old; do
    rm -f "$work/$who.db" "$work/$who.db-wal" "$work/$who.db-shm"
done
"$new" --db "$work/new.db" --read "$pcaps/tcpdump__dns_udp.pcap"
"$old" --db "$work/old.db" --read "$pcaps/tcpdump__dns_udp.pcap"
one() {  # BIN DB: one sampled ingest; prints "main writer checkpoint" seconds
    perf record -q -F 1000 -e task-clock -o "$work/perf.data" "$1" --db "$2" --read "$big" 2> /dev/null
    perf report -i "$work/perf.data" --sort comm -g none --stdio -F sample,comm 2> /dev/null |
        awk '/^ *[0-9]/ { n = $2; if (n != "writer" && n != "checkpoint") n = "main"; v[n] += $1 / 1000 }
             END { printf "%.2f %.2f %.2f\n", v["main"], v["writer"], v["checkpoint"] }'
}
if [ "$runs" -gt 0 ]; then
    : > "$work/threads.txt"
    for _ in $(seq "$runs"); do
        echo "new $(one "$new" "$work/new.db")" >> "$work/threads.txt"
        echo "old $(one "$old" "$work/old.db")" >> "$work/threads.txt"
    done
    cat "$work/threads.txt"
    for who in new old; do
        grep "^$who " "$work/threads.txt" | awk -v who="$who" '
            { m += $2; w += $3; c += $4 }
            END { printf "%s: mean CPU s over %d runs: reading %.3f, writer %.3f, checkpoint %.3f\n", who, NR, m / NR, w / NR, c / NR }'
    done
    rm -f "$work/perf.data"
fi
[ "${CALLGRIND:-1}" = 0 ] && exit 0
for who in new old; do
    bin=$new; [ "$who" = old ] && bin=$old
    db=$work/cg-$who.db
    rm -f "$db" "$db-wal" "$db-shm"
    "$bin" --db "$db" --read "$pcaps/tcpdump__dns_udp.pcap"
    valgrind -q --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg-$who.%p" \
        "$bin" --db "$db" --read "$pcaps/bench_mixed_A.pcap"
    total=0
    for f in "$work"/cg-"$who".*-[0-9]*; do
        ir=$(awk '/^summary:/ { print $2 }' "$f")
        thread=$(awk -F'[ (]' '/^cmd:/ {c=$2} /^thread:/ {t=$2} END {print t}' "$f")
        fn=$(callgrind_annotate --inclusive=yes "$f" 2> /dev/null |
            grep -oE 'writer::run|checkpoint|collector::main' | head -1)
        printf "%s thread %s (%s): %'d instructions\n" "$who" "$thread" "${fn:-?}" "$ir"
        total=$((total + ir))
    done
    printf "%s: %'d instructions in all\n" "$who" "$total"
    rm -f "$work"/cg-"$who".* "$db" "$db-wal" "$db-shm"
done
