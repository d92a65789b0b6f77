#!/usr/bin/env python3
"""DHCP fixtures from a packet capture: pull out what the clients sent, and describe it.

Standard library only; reads the classic pcap format (what `tcpdump -w` writes) with struct:
global header, record headers, Ethernet II (with or without an 802.1Q tag), IPv4, UDP.

  dhcp-fixtures.py extract PCAP FIRMWARE OUTDIR [--kinds K,K] [--max N]
      Writes each client packet (a BOOTREQUEST to UDP port 67 or 4011) as its raw BOOTP/DHCP
      payload to OUTDIR/FIRMWARE-KIND-N-TYPE[-4011].bin, where KIND is what sent it: `ipxe`
      (option 77 holds iPXE), `http` (option 60 HTTPClient...), `pxe` (option 60 PXEClient...),
      else `dhcp`. Keeps the first packet of each (message type, port) per kind, at most N
      (default 3) per kind: retries are dropped. Old FIRMWARE-KIND-*.bin files of the kinds it
      writes are removed first. Prints the files it wrote.
  dhcp-fixtures.py seen PCAP KIND[:TYPE] ...
      Exits 0 once the capture holds a client packet of each KIND (and message TYPE, such as
      `request`); 1 otherwise. For polling a capture that is still being written.
  dhcp-fixtures.py table FILE...
      A Markdown table: one line per fixture (type, option 93, 60, 77, 57, chaddr).
  dhcp-fixtures.py details FILE...
      Everything else worth knowing about each packet: length, flags, option order, and so on.
"""
import os
import struct
import sys

MESSAGE_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
                 7: "release", 8: "inform"}
COOKIE = b"\x63\x82\x53\x63"


def pcap_records(path):
    """Yields (timestamp, frame bytes) for each record; stops quietly at a truncated last record
    (the capture may still be being written)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a pcap file (pcapng is not read: use tcpdump -w)")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, linktype = struct.unpack(endian + "HHiIII", data[4:24])
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, not Ethernet (capture on an Ethernet device)")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            return
        yield sec + frac / (1e9 if nanos else 1e6), data[off:off + incl]
        off += incl


def udp_of_frame(frame):
    """(src ip, dst ip, src port, dst port, payload) of an IPv4 UDP frame, else None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    off = 14
    while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:  # VLAN tags
        ethertype = struct.unpack("!H", frame[off + 2:off + 4])[0]
        off += 4
    if ethertype != 0x0800 or len(frame) < off + 20:
        return None
    ip = frame[off:]
    if ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    flags_frag = struct.unpack("!H", ip[6:8])[0]
    if ip[9] != 17 or flags_frag & 0x3FFF:  # not UDP, or a fragment
        return None
    ip = ip[:total]
    udp = ip[ihl:]
    if len(udp) < 8:
        return None
    sport, dport, ulen = struct.unpack("!HHH", udp[:6])
    return ip[12:16], ip[16:20], sport, dport, udp[8:ulen]


def options(payload):
    """[(code, bytes)] in order (pad bytes are skipped), plus the bytes after option 255 (None
    when there is no 255)."""
    out, i = [], 240
    while i < len(payload):
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            return out, payload[i + 1:]
        if i + 1 >= len(payload):
            break
        n = payload[i + 1]
        out.append((code, payload[i + 2:i + 2 + n]))
        i += 2 + n
    return out, None


def decode(payload):
    """A dict of what a boot server cares about in a BOOTP/DHCP packet."""
    if len(payload) < 240 or payload[236:240] != COOKIE:
        return None
    op, htype, hlen, hops, xid, secs, flags = struct.unpack("!BBBBIHH", payload[:12])
    opts, trailer = options(payload)
    d = dict(op=op, htype=htype, hlen=hlen, hops=hops, xid=xid, secs=secs, flags=flags,
             ciaddr=payload[12:16], chaddr=payload[28:28 + min(hlen, 16)],
             sname=payload[44:108], file=payload[108:236], opts=opts, trailer=trailer,
             length=len(payload))
    d["o"] = {}
    for code, value in opts:
        d["o"].setdefault(code, value)
    t = d["o"].get(53)
    d["type"] = MESSAGE_TYPES.get(t[0], f"type{t[0]}") if t else "bootp"
    return d


def kind_of(d):
    if b"iPXE" in d["o"].get(77, b""):
        return "ipxe"
    vendor = d["o"].get(60, b"")
    if vendor.startswith(b"HTTPClient"):
        return "http"
    if vendor.startswith(b"PXEClient"):
        return "pxe"
    return "dhcp"


def client_packets(path):
    """Yields (dst port, payload, decoded) for each BOOTREQUEST to port 67 or 4011."""
    for _ts, frame in pcap_records(path):
        udp = udp_of_frame(frame)
        if not udp:
            continue
        _src, _dst, _sport, dport, payload = udp
        if dport not in (67, 4011):
            continue
        d = decode(payload)
        if d and d["op"] == 1:
            yield dport, payload, d


def extract(pcap, firmware, outdir, kinds=None, limit=3):
    os.makedirs(outdir, exist_ok=True)
    chosen = {}  # kind -> [(dport, payload, d)]
    for dport, payload, d in client_packets(pcap):
        k = kind_of(d)
        if kinds and k not in kinds:
            continue
        kept = chosen.setdefault(k, [])
        if len(kept) < limit and all((x[2]["type"], x[0]) != (d["type"], dport) for x in kept):
            kept.append((dport, payload, d))
    written = []
    for k, kept in chosen.items():
        prefix = f"{firmware}-{k}-"
        for old in os.listdir(outdir):
            if old.startswith(prefix) and old.endswith(".bin"):
                os.remove(os.path.join(outdir, old))
        for n, (dport, payload, d) in enumerate(kept, 1):
            name = f"{prefix}{n}-{d['type']}{'-4011' if dport == 4011 else ''}.bin"
            with open(os.path.join(outdir, name), "wb") as f:
                f.write(payload)
            written.append(os.path.join(outdir, name))
    return written


def text(b):
    try:
        s = b.decode("ascii")
        if s.isprintable():
            return s
    except UnicodeDecodeError:
        pass
    return b.hex()


def mac(b):
    return ":".join(f"{x:02x}" for x in b)


def summary(d):
    o = d["o"]
    arch = o.get(93)
    arch = ",".join(str(a) for a in struct.unpack(f"!{len(arch) // 2}H", arch)) if arch else "-"
    size = str(struct.unpack("!H", o[57])[0]) if len(o.get(57, b"")) == 2 else "-"
    return dict(type=d["type"], arch=arch, vendor=text(o[60]) if 60 in o else "-",
                user=text(o[77]) if 77 in o else "-", size=size, chaddr=mac(d["chaddr"]))


def table(files):
    print("| file | type | 93 arch | 60 vendor class | 77 user class | 57 max size | chaddr |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for path in files:
        with open(path, "rb") as f:
            d = decode(f.read())
        s = summary(d)
        print(f"| `{os.path.basename(path)}` | {s['type'].upper()} | {s['arch']} | `{s['vendor']}` | "
              f"`{s['user']}` | {s['size']} | {s['chaddr']} |")


def details(files):
    for path in files:
        with open(path, "rb") as f:
            payload = f.read()
        d = decode(payload)
        sname, file = (text(d[k].rstrip(b"\0")) or "empty" for k in ("sname", "file"))
        print(f"{os.path.basename(path)}: {d['length']} bytes, xid {d['xid']:08x}, secs {d['secs']}, "
              f"flags {d['flags']:#06x}{' (broadcast)' if d['flags'] & 0x8000 else ''}, "
              f"ciaddr {'.'.join(map(str, d['ciaddr']))}, hops {d['hops']}, sname {sname}, file {file}")
        print("  option order: " + " ".join(str(c) for c, _ in d["opts"]))
        for code, value in d["opts"]:
            if code == 55:
                shown = " ".join(str(x) for x in value)
            elif code in (60, 77, 12):
                shown = repr(value.decode("latin-1"))
            elif code in (50, 54) and len(value) == 4:
                shown = ".".join(map(str, value))
            elif code in (57, 93) and len(value) % 2 == 0:
                shown = " ".join(str(x) for x in struct.unpack(f"!{len(value) // 2}H", value))
            else:
                shown = value.hex()
            print(f"  {code:3} len {len(value):3}: {shown}")
        t = d["trailer"]
        if t is None:
            print("  no option 255 (end)")
        elif t:
            zeros = "all zero" if not t.strip(b"\0") else "NOT all zero"
            print(f"  {len(t)} bytes after option 255 ({zeros})")
        else:
            print("  nothing after option 255")


def main(argv):
    if len(argv) >= 4 and argv[0] == "extract":
        pcap, firmware, outdir = argv[1:4]
        kinds, limit, rest = None, 3, argv[4:]
        while rest:
            if rest[0] == "--kinds" and len(rest) > 1:
                kinds = set(rest[1].split(","))
            elif rest[0] == "--max" and len(rest) > 1:
                limit = int(rest[1])
            else:
                raise SystemExit(f"unknown argument {rest[0]}")
            rest = rest[2:]
        for path in extract(pcap, firmware, outdir, kinds, limit):
            print(path)
        return 0
    if len(argv) >= 3 and argv[0] == "seen":
        got = {(kind_of(d), d["type"]) for _p, _b, d in client_packets(argv[1])}
        for want in argv[2:]:
            k, _, t = want.partition(":")
            if not any(gk == k and (not t or gt == t) for gk, gt in got):
                return 1
        return 0
    if len(argv) >= 2 and argv[0] == "table":
        table(argv[1:])
        return 0
    if len(argv) >= 2 and argv[0] == "details":
        details(argv[1:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
