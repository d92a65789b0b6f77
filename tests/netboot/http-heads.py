#!/usr/bin/env python3
"""Writes the HTTP request heads in a pcap file (what nodes sent the boot server) as fuzzing
seeds and test fixtures: one file per distinct head, tokens replaced by a fixed one.

  http-heads.py CAPTURE.pcap OUT_DIR PREFIX
"""
import os
import re
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        header = f.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(endian + "I", header[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            _, _, incl, _ = struct.unpack(endian + "IIII", rec)
            yield linktype, f.read(incl)


def tcp_payload(linktype, frame):
    if linktype == 1:  # Ethernet
        if struct.unpack("!H", frame[12:14])[0] != 0x0800:
            return None
        ip = frame[14:]
    elif linktype == 113:  # Linux cooked
        ip = frame[16:]
    else:
        return None
    if len(ip) < 20 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    tcp = ip[ihl:]
    offset = (tcp[12] >> 4) * 4
    return tcp[offset:]


def main():
    pcap, out, prefix = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    seen = set()
    for linktype, frame in packets(pcap):
        data = tcp_payload(linktype, frame)
        if not data or not re.match(rb"(GET|POST|HEAD) /", data):
            continue
        head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        # Tokens are 32 letters and digits after a /v1/ path part.
        head = re.sub(rb"(/v1/[a-z]+/)[A-Za-z0-9]{32}", rb"\1Tok3nForTheTestMachine0123456789", head)
        # The port and address of this run's server are kept; the MAC path too.
        key = re.sub(rb"\?.*? ", b" ", head.split(b"\r\n", 1)[0].split(b" ")[1]) + head.split(b"\r\n", 1)[1]
        if key in seen:
            continue
        seen.add(key)
        name = f"{prefix}-{len(seen)}.txt"
        with open(os.path.join(out, name), "wb") as f:
            f.write(head)
        print(f"{name}: {head.splitlines()[0].decode(errors='replace')}")


if __name__ == "__main__":
    main()
