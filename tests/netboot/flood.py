#!/usr/bin/env python3
"""A misbehaving LAN host, for tests/netboot/run.sh flood (network namespaces only).

  flood.py dhcp SERVER SOURCES COUNT SECS DHCPDISCOVERs from random MACs, as PXE clients
  flood.py tftp SERVER SOURCES COUNT SECS read requests that are never acknowledged
  flood.py tcp  SERVER:PORT SOURCES COUNT SECS  idle connections, held SECS seconds

SOURCES is a comma-separated list of this host's addresses to send from. Each prints one line
of figures when done.
"""
import os
import random
import socket
import struct
import sys
import time


def sockets(sources, port=0):
    out = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, port))
        s.setblocking(False)
        out.append(s)
    return out


def discover(mac, xid):
    pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4),
                      bytes(4), mac + bytes(10), bytes(64), bytes(128))
    vendor = b"PXEClient:Arch:00007:UNDI:003016"
    opts = bytes([99, 130, 83, 99, 53, 1, 1, 93, 2, 0, 7, 60, len(vendor)]) + vendor + bytes([255])
    return pkt + opts


def send_all(sock, pkt, to):
    while True:
        try:
            sock.sendto(pkt, to)
            return
        except BlockingIOError:
            time.sleep(0.001)


def dhcp(server, sources, count, secs):
    socks = sockets(sources, 68)
    start = time.time()
    for i in range(count):
        mac = bytes([0x02]) + os.urandom(5)
        send_all(socks[i % len(socks)], discover(mac, random.getrandbits(32)), (server, 67))
        if i % 100 == 99:
            ahead = start + secs * (i + 1) / count - time.time()
            if ahead > 0:
                time.sleep(ahead)
    print(f"flood: sent {count} DHCPDISCOVERs from random MACs in {time.time() - start:.1f}s")


def tftp(server, sources, count, secs):
    socks = sockets(sources)
    rrq = b"\x00\x01snponly.efi\x00octet\x00blksize\x001432\x00timeout\x00255\x00windowsize\x0064\x00"
    start = time.time()
    for i in range(count):
        send_all(socks[i % len(socks)], rrq, (server, 69))
        # Spread over SECS seconds.
        ahead = start + secs * (i + 1) / count - time.time()
        if ahead > 0:
            time.sleep(ahead)
    busy = 0
    for s in socks:
        while True:
            try:
                data = s.recv(1500)
            except BlockingIOError:
                break
            busy += data[:2] == b"\x00\x05" and b"busy" in data
    print(f"flood: sent {count} TFTP read requests (never acknowledged) in {time.time() - start:.1f}s; "
          f"{busy} 'server busy' answers still queued")


def tcp(server, sources, count, secs):
    host, port = server.rsplit(":", 1)
    conns = []
    refused = 0
    start = time.time()
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((sources[i % len(sources)], 0))
        try:
            s.connect((host, int(port)))
            s.setblocking(False)
            conns.append(s)
        except OSError:
            refused += 1
            s.close()
    time.sleep(max(0.0, secs - (time.time() - start)))
    closed = 0
    for s in conns:
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(f"flood: opened {len(conns)} idle TCP connections ({refused} refused), held {secs}s; "
          f"{closed} closed by the server")


if __name__ == "__main__":
    what, server, sources = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    if what == "dhcp":
        dhcp(server, sources, int(sys.argv[4]), float(sys.argv[5]))
    elif what == "tftp":
        tftp(server, sources, int(sys.argv[4]), float(sys.argv[5]))
    elif what == "tcp":
        tcp(server, sources, int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(f"unknown flood {what}")
