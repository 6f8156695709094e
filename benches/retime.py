#!/usr/bin/env python3
"""Rewrites a classic pcap's timestamps to spread its packets evenly over SPAN seconds
from BASE (epoch seconds): a capture from many sources and years becomes one round's
worth of traffic, for the detector's benchmarks. Usage: retime.py IN OUT BASE SPAN"""
import struct
import sys

src, dst, base, span = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
with open(src, "rb") as f:
    header = f.read(24)
    if struct.unpack("<I", header[:4])[0] != 0xA1B2C3D4:
        sys.exit("retime.py: only little-endian microsecond pcap files")
    lengths = []
    while len(h := f.read(16)) == 16:
        incl = struct.unpack("<IIII", h)[2]
        lengths.append(incl)
        f.seek(incl, 1)
n = max(len(lengths), 1)
with open(src, "rb") as f, open(dst, "wb") as o:
    o.write(f.read(24))
    for i, incl in enumerate(lengths):
        h = f.read(16)
        t = base + span * i / n
        sec = int(t)
        o.write(struct.pack("<II", sec, int((t - sec) * 1e6)) + h[8:])
        o.write(f.read(incl))
print(len(lengths))
