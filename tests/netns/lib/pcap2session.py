#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Turns a capture of FTP control sessions into the text format of tests/data/sessions/README.md.

  pcap2session.py CAPTURE.pcap OUT.txt [--port 21] [--header "# text"]...

Reads a classic pcap (Ethernet or Linux cooked, IPv4, TCP), keeps the payload of every segment
to or from --port in capture order, drops retransmitted bytes (per direction, by sequence
number), and writes one chunk per line: "C " client to server, "S " server to client, bytes
escaped as \\r \\n \\\\ and \\xNN (anything outside printable ASCII). One session per file: the
first SYN to --port picks it, later sessions are ignored.
"""
import argparse
import struct
import sys


def escape(data: bytes) -> str:
    out = []
    for b in data:
        if b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            end = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            end = ">"
        else:
            sys.exit("pcap2session: not a classic pcap file")
        linktype = struct.unpack(end + "I", hdr[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(end + "I", rec[8:12])[0]
            yield linktype, f.read(incl)


def tcp_segments(path):
    for linktype, frame in packets(path):
        if linktype == 1:        # Ethernet
            eth_type, off = struct.unpack("!H", frame[12:14])[0], 14
        elif linktype == 113:    # Linux cooked (tcpdump -i any)
            eth_type, off = struct.unpack("!H", frame[14:16])[0], 16
        else:
            continue
        if eth_type != 0x0800 or len(frame) < off + 20:
            continue
        ip = frame[off:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        doff = (tcp[12] >> 4) * 4
        yield (src, sport), (dst, dport), seq, flags, tcp[doff:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("out")
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--header", action="append", default=[])
    a = ap.parse_args()

    session = None          # (client endpoint, server endpoint)
    next_seq = {}           # direction -> next expected sequence number
    lines = []
    for s, d, seq, flags, payload in tcp_segments(a.pcap):
        syn = flags & 0x02
        if session is None:
            if syn and not flags & 0x10 and d[1] == a.port:
                session = (s, d)
            else:
                continue
        if (s, d) == session:
            tag = "C"
        elif (d, s) == session:
            tag = "S"
        else:
            continue
        if syn:
            next_seq[tag] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload or tag not in next_seq:
            continue
        # Keep only bytes not seen before in this direction (retransmissions overlap).
        skip = (next_seq[tag] - seq) & 0xFFFFFFFF
        if skip >= 0x80000000:      # a gap: the capture lost bytes; say so rather than guess
            sys.exit("pcap2session: capture has a gap in direction %s" % tag)
        if skip >= len(payload):
            continue
        payload = payload[skip:]
        next_seq[tag] = (next_seq[tag] + len(payload)) & 0xFFFFFFFF
        lines.append("%s %s" % (tag, escape(payload)))
    if session is None:
        sys.exit("pcap2session: no session to port %d in %s" % (a.port, a.pcap))
    with open(a.out, "w", encoding="ascii") as f:
        for h in a.header:
            f.write(h + "\n")
        for line in lines:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
