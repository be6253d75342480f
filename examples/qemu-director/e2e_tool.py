#!/usr/bin/env python3
"""Client-side helpers of e2e.sh (run inside the client namespace). Standard library only.

  e2e_tool.py stats ADDR                 print the firmware's stats reply (UDP 9999);
                                         retries for up to --wait seconds
  e2e_tool.py control ADDR LINE...       send ipvsadm-style lines to the control port (UDP
                                         9998), print the reply
  e2e_tool.py replay IFACE MAC DIR...    send every file under DIR as one Ethernet frame
                                         (destination MAC set to MAC), paced; prints the count
  e2e_tool.py flood IFACE MAC ADDR VIP PORT
                                         hold an HTTP/1.1 keep-alive connection to VIP:PORT,
                                         flood SYNs from spoofed clients until the firmware
                                         reports a full table (or --deadline), then use the
                                         kept connection again; prints a JSON verdict
"""

import argparse
import http.client
import json
import os
import random
import socket
import struct
import sys
import time

STATS_PORT = 9999


def stats(addr, wait=0.0):
    """The stats reply as a dict: `name value` lines, and `rs` lines under 'rs'."""
    deadline = time.monotonic() + wait
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        while True:
            try:
                s.sendto(b"stats", (addr, STATS_PORT))
                data, _ = s.recvfrom(4096)
                break
            except (socket.timeout, OSError):
                if time.monotonic() >= deadline:
                    raise SystemExit(f"no stats reply from {addr}:{STATS_PORT}")
    finally:
        s.close()
    out = {"rs": {}, "text": data.decode()}
    for line in data.decode().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "rs":
            out["rs"][parts[1]] = {parts[i]: int(parts[i + 1]) for i in range(2, len(parts) - 1, 2)}
        elif len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                out[parts[0]] = parts[1]
    return out


def control(addr, lines):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5.0)
    s.sendto("\n".join(lines).encode() + b"\n", (addr, 9998))
    data, _ = s.recvfrom(4096)
    print(data.decode(), end="")


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def replay(iface, mac, dirs, pace):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    dst = mac_bytes(mac)
    own = s.getsockname()[4]
    sent = 0
    burst = 0
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in sorted(files):
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                # Our MAC in front so the chip's address filter lets it in; the rest is
                # the corpus as it is, cut to what Ethernet carries, padded to a header.
                frame = (dst + data[6:])[:1514].ljust(14, b"\0")
                # A bridge drops a multicast or zero source address before the board
                # sees it: such a frame gets ours (the director reads no source MAC).
                if frame[6] & 1 or frame[6:12] == bytes(6):
                    frame = frame[:6] + own + frame[12:]
                s.send(frame)
                sent += 1
                burst += len(frame) + 8
                # QEMU's LAN9118 RX FIFO holds 10 KiB (and 176 status words), and QEMU
                # drops what does not fit without counting it: pause every 6 KiB so the
                # firmware drains it.
                if burst >= 6 * 1024:
                    time.sleep(pace)
                    burst = 0
    print(sent)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_frame(dst_mac, src_mac, src, dst, sport, dport):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, r.getheader("X-Real-Server"), body


def flood(iface, mac, addr, vip, port, deadline_s, batch, pace):
    conn = http.client.HTTPConnection(vip, port, timeout=10)
    status1, rs1, _ = get(conn, "/id")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    dst = mac_bytes(mac)
    before = stats(addr, 10)
    cap = before["conns_capacity"]
    sent = 0
    deadline = time.monotonic() + deadline_s
    full = before
    while time.monotonic() < deadline:
        for _ in range(batch):
            src = f"192.0.2.{random.randint(150, 250)}"
            s.send(syn_frame(dst, src_mac, src, vip, random.randint(1024, 65535), port))
            sent += 1
            if sent % 32 == 0:
                time.sleep(pace)
        full = stats(addr, 10)
        if full["conns"] >= cap and sent >= cap + batch:
            break
    status2, rs2, _ = get(conn, "/id")
    conn.close()
    after = stats(addr, 10)
    print(json.dumps({
        "sent": sent, "capacity": cap, "conns_at_peak": full["conns"],
        "first": [status1, rs1], "second": [status2, rs2],
        "drops_before": before.get("drops", 0), "drops_after": after.get("drops", 0),
        "stats_after": after["text"],
    }))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("stats")
    a.add_argument("addr")
    a.add_argument("--wait", type=float, default=0.0)
    a.add_argument("--json", action="store_true")
    a = sub.add_parser("control")
    a.add_argument("addr")
    a.add_argument("lines", nargs="+")
    a = sub.add_parser("replay")
    a.add_argument("iface")
    a.add_argument("mac")
    a.add_argument("dirs", nargs="+")
    a.add_argument("--pace", type=float, default=0.02)
    a = sub.add_parser("flood")
    a.add_argument("iface")
    a.add_argument("mac")
    a.add_argument("addr")
    a.add_argument("vip")
    a.add_argument("port", type=int)
    a.add_argument("--deadline", type=float, default=120.0)
    a.add_argument("--batch", type=int, default=256)
    a.add_argument("--pace", type=float, default=0.004)
    args = p.parse_args()
    if args.cmd == "stats":
        st = stats(args.addr, args.wait)
        print(json.dumps(st) if args.json else st["text"], end="" if not args.json else "\n")
    elif args.cmd == "control":
        control(args.addr, args.lines)
    elif args.cmd == "replay":
        replay(args.iface, args.mac, args.dirs, args.pace)
    elif args.cmd == "flood":
        flood(args.iface, args.mac, args.addr, args.vip, args.port, args.deadline, args.batch, args.pace)


if __name__ == "__main__":
    sys.exit(main())
