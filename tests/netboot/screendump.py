#!/usr/bin/env python3
"""Saves what a QEMU machine's screen shows as PNG, through its monitor socket:
    screendump.py MONITOR_SOCKET OUT.png
For the logs of a failed network-boot run (the firmware's menus and iPXE's messages show on
the screen, not always on the serial console). Python's standard library only."""
import os
import socket
import struct
import sys
import time
import zlib


def dump(sock_path: str, ppm: str) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.recv(4096)  # the banner
    s.sendall(f"screendump {ppm}\n".encode())
    for _ in range(100):
        if os.path.exists(ppm) and os.path.getsize(ppm) > 0:
            time.sleep(0.3)
            break
        time.sleep(0.1)
    s.close()


def ppm_to_png(ppm: str, png: str) -> None:
    data = open(ppm, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:  # P6 width height maxval, separated by whitespace
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    width, height = int(fields[1]), int(fields[2])
    pixels = data[pos:pos + width * height * 3]
    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(png, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 6)))
        f.write(chunk(b"IEND", b""))


if __name__ == "__main__":
    sock, out = sys.argv[1], sys.argv[2]
    ppm = out + ".ppm"
    dump(sock, ppm)
    ppm_to_png(ppm, out)
    os.remove(ppm)
