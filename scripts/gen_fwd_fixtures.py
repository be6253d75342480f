#!/usr/bin/env python3
"""Writes lvs-core/src/fwd/fixtures.rs: input frames and the frames each forwarding
method must produce, both built by scapy (an implementation independent of ours) with
every checksum computed in full. Run: pip install scapy && python3 scripts/gen_fwd_fixtures.py
"""
import os
from scapy.all import Ether, Dot1Q, IP, IPv6, TCP, UDP, ICMP, ICMPv6DestUnreach, ICMPv6PacketTooBig, Raw, raw

CMAC, DMAC, RMAC = "02:00:00:00:00:01", "02:00:00:00:00:0d", "02:00:00:00:00:11"
CIP, VIP, RIP, LIP, ROUTER = "198.51.100.7", "203.0.113.10", "10.0.0.11", "10.0.0.1", "10.0.0.254"
CIP6, VIP6, RIP6, LIP6 = "2001:db8:c::7", "2001:db8:f::10", "2001:db8:1::11", "2001:db8:1::1"
GET = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"
SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]

cases = {}

def add(name, pkt):
    cases[name] = raw(pkt)

def eth(src=CMAC, dst=DMAC):
    return Ether(src=src, dst=dst)

# NAT, IPv4 TCP SYN with options: destination VIP:80 -> RIP:8080.
add("NAT_IN_V4_TCP", eth() / IP(src=CIP, dst=VIP, id=1, flags="DF", ttl=64) / TCP(sport=40000, dport=80, flags="S", seq=1000, options=SYN_OPTS))
add("NAT_IN_V4_TCP_OUT", eth() / IP(src=CIP, dst=RIP, id=1, flags="DF", ttl=64) / TCP(sport=40000, dport=8080, flags="S", seq=1000, options=SYN_OPTS))
# NAT, reply: source RIP:8080 -> VIP:80.
add("NAT_OUT_V4_TCP", eth(RMAC, DMAC) / IP(src=RIP, dst=CIP, id=7, ttl=64) / TCP(sport=8080, dport=40000, flags="SA", seq=5000, ack=1001) / Raw(b"x" * 300))
add("NAT_OUT_V4_TCP_OUT", eth(RMAC, DMAC) / IP(src=VIP, dst=CIP, id=7, ttl=64) / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001) / Raw(b"x" * 300))
# NAT, IPv4 UDP without checksum: stays without.
u = eth() / IP(src=CIP, dst=VIP) / UDP(sport=5353, dport=53, chksum=0) / Raw(b"\x12\x34query")
add("NAT_IN_V4_UDP0", u)
add("NAT_IN_V4_UDP0_OUT", eth() / IP(src=CIP, dst=RIP) / UDP(sport=5353, dport=5300, chksum=0) / Raw(b"\x12\x34query"))
# NAT, IPv6 UDP in a VLAN.
add("NAT_IN_V6_UDP_VLAN", eth() / Dot1Q(vlan=42, prio=3) / IPv6(src=CIP6, dst=VIP6, hlim=64) / UDP(sport=5353, dport=53) / Raw(b"\x12\x34query6"))
add("NAT_IN_V6_UDP_VLAN_OUT", eth() / Dot1Q(vlan=42, prio=3) / IPv6(src=CIP6, dst=RIP6, hlim=64) / UDP(sport=5353, dport=5300) / Raw(b"\x12\x34query6"))
# FULLNAT, IPv6 TCP with data: CIP:cport -> VIP:vport becomes LIP:lport -> RIP:rport.
add("FULLNAT_IN_V6_TCP", eth() / IPv6(src=CIP6, dst=VIP6, fl=0x12345) / TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5001) / Raw(GET))
add("FULLNAT_IN_V6_TCP_OUT", eth() / IPv6(src=LIP6, dst=RIP6, fl=0x12345) / TCP(sport=5000, dport=8080, flags="PA", seq=1001, ack=5001) / Raw(GET))
# FULLNAT, IPv4 reply: RIP:rport -> LIP:lport becomes VIP:vport -> CIP:cport.
add("FULLNAT_OUT_V4_TCP", eth(RMAC, DMAC) / IP(src=RIP, dst=LIP, id=9) / TCP(sport=8080, dport=5000, flags="A", seq=5001, ack=1030) / Raw(b"HTTP/1.1 200 OK\r\n\r\n"))
add("FULLNAT_OUT_V4_TCP_OUT", eth(RMAC, DMAC) / IP(src=VIP, dst=CIP, id=9) / TCP(sport=80, dport=40000, flags="A", seq=5001, ack=1030) / Raw(b"HTTP/1.1 200 OK\r\n\r\n"))
# DR: destination MAC only.
add("DR_V4", eth() / IP(src=CIP, dst=VIP) / TCP(sport=40000, dport=80, flags="S"))
add("DR_V4_OUT", eth(DMAC, RMAC) / IP(src=CIP, dst=VIP) / TCP(sport=40000, dport=80, flags="S"))
# TUN 4in4: outer LIP -> RIP, DSCP/ECN(CE -> ECT(0)), TTL and DF from the inner header.
inner4 = IP(src=CIP, dst=VIP, tos=0x2b, ttl=61, flags="DF", id=77) / TCP(sport=40000, dport=80, flags="PA") / Raw(GET)
add("TUN_V4", eth() / inner4)
add("TUN_4IN4_OUT", eth(DMAC, RMAC) / IP(src=LIP, dst=RIP, tos=0x2a, ttl=61, flags="DF", id=0x1234, proto=4) / inner4)
# TUN 6in6 and 6in4.
inner6 = IPv6(src=CIP6, dst=VIP6, tc=0xb8, hlim=60) / UDP(sport=5353, dport=53) / Raw(b"q6")
add("TUN_V6", eth() / inner6)
add("TUN_6IN6_OUT", eth(DMAC, RMAC) / IPv6(src=LIP6, dst=RIP6, tc=0xb8, hlim=60, fl=0xabcde, nh=41) / inner6)
add("TUN_6IN4_OUT", eth(DMAC, RMAC) / IP(src=LIP, dst=RIP, tos=0xb8, ttl=60, flags="DF", id=0x1234, proto=41) / inner6)
# ICMP error from a router behind the director (NAT outbound): port unreachable about
# CIP:5353 -> RIP:5300 (UDP) becomes, to the client, from VIP, about CIP:5353 -> VIP:53.
sent = IP(src=CIP, dst=RIP, ttl=63, id=5) / UDP(sport=5353, dport=5300) / Raw(b"\x12\x34query")
seen = IP(src=CIP, dst=VIP, ttl=63, id=5) / UDP(sport=5353, dport=53) / Raw(b"\x12\x34query")
add("ICMP_NAT_OUT_V4", eth(RMAC, DMAC) / IP(src=ROUTER, dst=CIP, id=300) / ICMP(type=3, code=3) / Raw(raw(sent)[:28]))
add("ICMP_NAT_OUT_V4_OUT", eth(RMAC, DMAC) / IP(src=VIP, dst=CIP, id=300) / ICMP(type=3, code=3) / Raw(raw(seen)[:28]))
# ICMPv6 error from the client side (FULLNAT inbound): packet too big about VIP:80 -> CIP:40000
# becomes, to the real server, from LIP, about RIP:8080 -> LIP:5000; the whole TCP header quoted.
sent6 = IPv6(src=VIP6, dst=CIP6) / TCP(sport=80, dport=40000, flags="A", seq=9, ack=10) / Raw(b"y" * 40)
seen6 = IPv6(src=RIP6, dst=LIP6) / TCP(sport=8080, dport=5000, flags="A", seq=9, ack=10) / Raw(b"y" * 40)
add("ICMP_FULLNAT_IN_V6", eth() / IPv6(src=CIP6, dst=VIP6) / ICMPv6PacketTooBig(mtu=1280) / Raw(raw(sent6)))
add("ICMP_FULLNAT_IN_V6_OUT", eth() / IPv6(src=LIP6, dst=RIP6) / ICMPv6PacketTooBig(mtu=1280) / Raw(raw(seen6)))
# TUN too big: a 1500-byte DF packet for a 1500-byte link is answered with frag-needed (MTU 1480).
big = IP(src=CIP, dst=VIP, flags="DF", id=8, ttl=64) / TCP(sport=40000, dport=80, flags="A") / Raw(b"z" * 1460)
add("TOO_BIG_V4", eth() / big)
add("TOO_BIG_V4_OUT", eth(DMAC, CMAC) / IP(src=VIP, dst=CIP, tos=0xc0, ttl=64, id=0x55, flags=0) / ICMP(type=3, code=4, nexthopmtu=1480) / Raw(raw(big)[:548]))

out = ["// @generated by scripts/gen_fwd_fixtures.py (scapy); do not edit by hand.",
       "//! Input frames and the frames each forwarding method must produce, built by scapy",
       "//! with every checksum computed in full (an implementation independent of ours).",
       ""]
for name, b in cases.items():
    out.append(f"pub const {name}: &[u8] = &[")
    for i in range(0, len(b), 16):
        out.append("    " + ", ".join(f"0x{x:02x}" for x in b[i:i + 16]) + ",")
    out.append("];")
path = os.path.join(os.path.dirname(__file__), "..", "lvs-core", "src", "fwd", "fixtures.rs")
open(path, "w").write("\n".join(out) + "\n")
print(f"wrote {len(cases)} frames to {os.path.normpath(path)}")
