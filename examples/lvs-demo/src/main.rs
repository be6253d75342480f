//! `lvs-demo`: every forwarding method of `lvs_core::fwd` applied to the frames of one
//! small, realistic scenario, until the real tap director exists.
//!
//! A client (198.51.100.7, 2001:db8:c::7) opens an HTTP connection to the virtual service
//! 203.0.113.10:80 ([2001:db8:f::10]:80), served by the real server 10.0.0.11:8080
//! ([2001:db8:1::11]:8080), and asks a DNS question of VIP:53 (real server port 53). The
//! real server once answers the DNS query with "port unreachable", and a router towards
//! the client (192.0.2.1, 2001:db8:ff::1) answers the HTTP response with "fragmentation
//! needed". The director's local address 10.0.0.1 (2001:db8:1::1) is the FULLNAT source
//! and the tunnel source.
//!
//! Every frame is built with the workspace's fixture builder (`lvs_tests::frames`, made
//! with smoltcp, an independent stack), run through NAT, FULLNAT, DR and TUN (with the
//! real server's decapsulation, and the too-big answer when a 1500-byte packet does not
//! fit the tunnel), described by parsing the output with `FrameInfo::parse`, and checked:
//! every IPv4 header, TCP, UDP and ICMP checksum of every output frame (and of the
//! datagram an ICMP error quotes) is verified with lvs-core's views. With `--write` all
//! input and output frames go, in order, to a pcap file for tcpdump or Wireshark.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lvs_core::checksum;
use lvs_core::fwd::{self, Endpoint, dr, fullnat, icmp, nat, tun};
use lvs_core::wire::{
    EthernetAddress, EthernetFrame, FrameInfo, Icmpv4Packet, Icmpv6Packet, InnerInfo, IpProtocol,
    IpVersion, L4Info, TcpFlags, TcpPacket, UdpPacket,
};
use lvs_tests::frames::{self, Flow, IcmpError};
use pcap_file::pcap::{PcapPacket, PcapWriter};

/// Runs one small scenario (a TCP handshake with an HTTP GET and its response, a DNS
/// query and answer, and ICMP errors) through every lvs-core forwarding method: NAT,
/// FULLNAT, DR and TUN (4in4, 6in6, 4in6, 6in4, the real server's decapsulation, and the
/// too-big answer), over IPv4 and IPv6.
///
/// Prints one line per frame (method, direction, the packet before and after), verifies
/// every checksum of every output frame (IPv4 header, TCP, UDP, ICMP, and the datagram an
/// ICMP error quotes) and exits non-zero naming any frame that fails.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Also write every input and output frame, in order, to this pcap file (linktype
    /// Ethernet), for `tcpdump -nn -vv -e -r FILE.pcap` or Wireshark.
    #[arg(short, long, value_name = "FILE.pcap")]
    write: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------
// The scenario.

const CLIENT_PORT: u16 = 40000;
const DNS_CLIENT_PORT: u16 = 41000;
const HTTP_PORT: u16 = 80;
const REAL_HTTP_PORT: u16 = 8080;
const DNS_PORT: u16 = 53;
/// FULLNAT local ports, one per connection (from the director's local address pool).
const LOCAL_HTTP_PORT: u16 = 61000;
const LOCAL_DNS_PORT: u16 = 61001;
/// Initial sequence numbers of the client and of the real server.
const CLIENT_ISN: u32 = 0x1000_0000;
const SERVER_ISN: u32 = 0x5000_0000;
/// The MTU of the router's link towards the client (its "fragmentation needed").
const ROUTER_MTU: u16 = 1400;
/// The MTU of the director's link to the real servers, for tunnels.
const TUNNEL_MTU: u16 = 1500;
/// Room in front of and behind each frame in its buffer: encapsulation needs one.
const HEADROOM: usize = 64;
const TAILROOM: usize = 64;

/// The director's MAC, and the MACs on either side of it: the upstream router (towards
/// the client; the fixture calls it the client's) and the real server.
const DIRECTOR_MAC: EthernetAddress = EthernetAddress(frames::DIRECTOR_MAC);
const UPSTREAM_MAC: EthernetAddress = EthernetAddress(frames::CLIENT_MAC);
const REAL_MAC: EthernetAddress = EthernetAddress(frames::REAL_MAC);

/// The addresses of one address family.
#[derive(Debug, Clone, Copy)]
struct Site {
    client: IpAddr,
    vip: IpAddr,
    rip: IpAddr,
    lip: IpAddr,
    router: IpAddr,
}

impl Site {
    fn v4() -> Site {
        Site {
            client: Ipv4Addr::new(198, 51, 100, 7).into(),
            vip: Ipv4Addr::new(203, 0, 113, 10).into(),
            rip: Ipv4Addr::new(10, 0, 0, 11).into(),
            lip: Ipv4Addr::new(10, 0, 0, 1).into(),
            router: Ipv4Addr::new(192, 0, 2, 1).into(),
        }
    }

    fn v6() -> Site {
        let a = |c, h| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, c, 0, 0, 0, 0, h));
        Site {
            client: a(0xc, 0x7),
            vip: a(0xf, 0x10),
            rip: a(0x1, 0x11),
            lip: a(0x1, 0x1),
            router: a(0xff, 0x1),
        }
    }

    fn is_v4(&self) -> bool {
        self.client.is_ipv4()
    }

    fn http(&self) -> Conn {
        Conn {
            protocol: IpProtocol::Tcp,
            client: Endpoint::new(self.client, CLIENT_PORT),
            virt: Endpoint::new(self.vip, HTTP_PORT),
            local: Endpoint::new(self.lip, LOCAL_HTTP_PORT),
            real: Endpoint::new(self.rip, REAL_HTTP_PORT),
        }
    }

    fn dns(&self) -> Conn {
        Conn {
            protocol: IpProtocol::Udp,
            client: Endpoint::new(self.client, DNS_CLIENT_PORT),
            virt: Endpoint::new(self.vip, DNS_PORT),
            local: Endpoint::new(self.lip, LOCAL_DNS_PORT),
            real: Endpoint::new(self.rip, DNS_PORT),
        }
    }
}

/// One connection as the (future) connection table will hold it.
#[derive(Debug, Clone, Copy)]
struct Conn {
    protocol: IpProtocol,
    client: Endpoint,
    virt: Endpoint,
    local: Endpoint,
    real: Endpoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Nat,
    FullNat,
}

impl Method {
    /// Whom the real server talks to: the client (NAT) or the director's local address.
    fn peer(self, c: &Conn) -> Endpoint {
        match self {
            Method::Nat => c.client,
            Method::FullNat => c.local,
        }
    }
}

/// Which way a frame crosses the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// From the client side (the upstream router's MAC) to the virtual service.
    In,
    /// From the real server.
    Out,
}

/// One frame of the scenario as it reaches the director.
struct Step {
    name: &'static str,
    dir: Dir,
    frame: Vec<u8>,
}

impl Step {
    fn inbound(name: &'static str, ip: Vec<u8>) -> Step {
        Step {
            name,
            dir: Dir::In,
            frame: frames::ethernet(&ip),
        }
    }

    fn outbound(name: &'static str, ip: Vec<u8>) -> Step {
        let ethertype = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
        Step {
            name,
            dir: Dir::Out,
            frame: frames::ethernet_with(frames::REAL_MAC, frames::DIRECTOR_MAC, ethertype, &ip),
        }
    }
}

fn flow(src: Endpoint, dst: Endpoint) -> Flow {
    Flow {
        src: src.addr,
        dst: dst.addr,
        sport: src.port,
        dport: dst.port,
    }
}

const SYN: u8 = TcpFlags::SYN.bits();
const ACK: u8 = TcpFlags::ACK.bits();
const PSH: u8 = TcpFlags::PSH.bits();

/// A bare IP + TCP packet from the fixture, with the conversation's sequence and
/// acknowledgement numbers (the fixture uses constants) and the checksum refilled by
/// smoltcp, so the input stays independent of lvs-core.
fn tcp_ip(flow: &Flow, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    use smoltcp::wire::{IpAddress, TcpPacket as SmolTcp, TcpSeqNumber};
    let mut ip = frames::tcp_ip(flow, flags, payload);
    let l4 = if flow.is_v4() { 20 } else { 40 };
    let mut t = SmolTcp::new_unchecked(&mut ip[l4..]);
    t.set_seq_number(TcpSeqNumber(seq as i32));
    t.set_ack_number(TcpSeqNumber(if flags & ACK != 0 { ack as i32 } else { 0 }));
    t.fill_checksum(&IpAddress::from(flow.src), &IpAddress::from(flow.dst));
    ip
}

fn http_get() -> Vec<u8> {
    b"GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
        .to_vec()
}

/// An HTTP response filling one full-sized segment (a 1500-byte IP packet): headers and
/// the start of a PNG image, binary, so tcpdump prints the headers only.
fn http_response(site: &Site) -> Vec<u8> {
    let payload_len = if site.is_v4() { 1460 } else { 1440 };
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: real-server {}\r\nContent-Type: image/png\r\n\
         Content-Length: 48213\r\n\r\n",
        site.rip
    )
    .into_bytes();
    r.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut x: u32 = 0x2545_f491;
    while r.len() < payload_len {
        // xorshift32: incompressible-looking image data, the same every run
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        r.push(x as u8);
    }
    r
}

/// A DNS query for www.example.com (A over IPv4, AAAA over IPv6), recursion desired.
fn dns_query(site: &Site) -> Vec<u8> {
    let mut q = vec![0x1a, 0x2b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["www", "example", "com"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(if site.is_v4() { &[0, 1] } else { &[0, 28] });
    q.extend_from_slice(&[0, 1]);
    q
}

/// The answer to [`dns_query`]: the VIP, TTL 300.
fn dns_answer(site: &Site) -> Vec<u8> {
    let mut a = dns_query(site);
    a[2..4].copy_from_slice(&[0x81, 0x80]);
    a[6..8].copy_from_slice(&[0, 1]);
    a.extend_from_slice(&[0xc0, 0x0c]);
    let (rtype, rdata): ([u8; 2], Vec<u8>) = match site.vip {
        IpAddr::V4(v) => ([0, 1], v.octets().to_vec()),
        IpAddr::V6(v) => ([0, 28], v.octets().to_vec()),
    };
    a.extend_from_slice(&rtype);
    a.extend_from_slice(&[0, 1, 0, 0, 0x01, 0x2c]);
    a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    a.extend_from_slice(&rdata);
    a
}

/// The frames of the scenario as they reach the director, for NAT or FULLNAT (which
/// decides whom the real server answers). DR and TUN use the inbound ones.
fn conversation(site: &Site, method: Method) -> Vec<Step> {
    let http = site.http();
    let dns = site.dns();
    let c2v = flow(http.client, http.virt);
    let r2p = flow(http.real, method.peer(&http));
    let get = http_get();
    let resp = http_response(site);
    let (c, s) = (CLIENT_ISN, SERVER_ISN);
    let (g, r) = (get.len() as u32, resp.len() as u32);
    let q2v = flow(dns.client, dns.virt);
    let query = dns_query(site);
    // What the director sent on: the query to the real server, the response to the client.
    let forwarded_query = frames::udp_ip(&flow(method.peer(&dns), dns.real), &query);
    let sent_response = tcp_ip(
        &flow(http.virt, http.client),
        PSH | ACK,
        s + 1,
        c + 1 + g,
        &resp,
    );
    vec![
        Step::inbound("syn", tcp_ip(&c2v, SYN, c, 0, &[])),
        Step::outbound("syn-ack", tcp_ip(&r2p, SYN | ACK, s, c + 1, &[])),
        Step::inbound("ack", tcp_ip(&c2v, ACK, c + 1, s + 1, &[])),
        Step::inbound("get", tcp_ip(&c2v, PSH | ACK, c + 1, s + 1, &get)),
        Step::outbound("200", tcp_ip(&r2p, PSH | ACK, s + 1, c + 1 + g, &resp)),
        Step::inbound("ack2", tcp_ip(&c2v, ACK, c + 1 + g, s + 1 + r, &[])),
        Step::inbound("query", frames::udp_ip(&q2v, &query)),
        Step::outbound(
            "port-unreachable",
            frames::icmp_error_ip(
                dns.real.addr,
                method.peer(&dns).addr,
                IcmpError::PortUnreachable,
                &forwarded_query,
            ),
        ),
        Step::inbound("retry", frames::udp_ip(&q2v, &query)),
        Step::outbound(
            "answer",
            frames::udp_ip(&flow(dns.real, method.peer(&dns)), &dns_answer(site)),
        ),
        Step::inbound(
            "frag-needed",
            frames::icmp_error_ip(
                site.router,
                site.vip,
                IcmpError::FragNeeded(ROUTER_MTU),
                &sent_response,
            ),
        ),
    ]
}

/// The inbound frames DR and TUN show (the handshake's ACKs and the retry add nothing).
fn inbound_for_dr_tun(site: &Site) -> Vec<Step> {
    conversation(site, Method::Nat)
        .into_iter()
        .filter(|s| s.dir == Dir::In && ["syn", "get", "query", "frag-needed"].contains(&s.name))
        .collect()
}

/// A 1500-byte IP packet from the client (DF set): an upload that fills its segment.
fn upload_1500(site: &Site) -> Vec<u8> {
    let http = site.http();
    let n = if site.is_v4() { 1460 } else { 1440 };
    let mut body =
        b"POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 100000\r\n\r\n"
            .to_vec();
    body.resize(n, b'x');
    let seq = CLIENT_ISN + 1 + http_get().len() as u32;
    let ack = SERVER_ISN + 1 + http_response(site).len() as u32;
    frames::ethernet(&tcp_ip(
        &flow(http.client, http.virt),
        PSH | ACK,
        seq,
        ack,
        &body,
    ))
}

// ---------------------------------------------------------------------------------------
// Describing frames.

fn endpoint(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}:{port}"),
        IpAddr::V6(_) => format!("[{a}]:{port}"),
    }
}

fn tuple(info: &FrameInfo) -> String {
    match info.l4.ports() {
        Some((s, d)) => format!(
            "{} -> {}",
            endpoint(info.ip.src, s),
            endpoint(info.ip.dst, d)
        ),
        None => format!("{} -> {}", info.ip.src, info.ip.dst),
    }
}

fn inner_tuple(q: &InnerInfo) -> String {
    match q.ports {
        Some((s, d)) => format!("{} -> {}", endpoint(q.src, s), endpoint(q.dst, d)),
        None => format!("{} -> {}", q.src, q.dst),
    }
}

fn protocol_name(p: IpProtocol) -> String {
    match p {
        IpProtocol::Tcp => "TCP".into(),
        IpProtocol::Udp => "UDP".into(),
        IpProtocol::Icmp => "ICMP".into(),
        IpProtocol::Icmpv6 => "ICMPv6".into(),
        other => format!("protocol {}", u8::from(other)),
    }
}

fn version_digit(v: IpVersion) -> char {
    match v {
        IpVersion::V4 => '4',
        IpVersion::V6 => '6',
    }
}

/// The ICMP message's name, with the MTU it announces.
fn icmp_name(pkt: &[u8], info: &FrameInfo) -> String {
    let seg = &pkt[info.l4_offset()..info.ip_end()];
    let L4Info::Icmp(m) = info.l4 else {
        return String::new();
    };
    match info.ip.version {
        IpVersion::V4 => {
            let mtu = Icmpv4Packet::new_checked(seg).map_or(0, |p| p.next_hop_mtu());
            match (m.msg_type, m.code) {
                (3, 3) => "ICMP port-unreachable".into(),
                (3, 4) => format!("ICMP frag-needed mtu {mtu}"),
                (3, c) => format!("ICMP unreachable code {c}"),
                (11, _) => "ICMP time-exceeded".into(),
                (t, c) => format!("ICMP type {t} code {c}"),
            }
        }
        IpVersion::V6 => {
            let mtu = Icmpv6Packet::new_checked(seg).map_or(0, |p| p.pkt_too_big_mtu());
            match (m.msg_type, m.code) {
                (1, 4) => "ICMPv6 port-unreachable".into(),
                (1, c) => format!("ICMPv6 unreachable code {c}"),
                (2, _) => format!("ICMPv6 packet-too-big mtu {mtu}"),
                (3, _) => "ICMPv6 time-exceeded".into(),
                (t, c) => format!("ICMPv6 type {t} code {c}"),
            }
        }
    }
}

/// What a packet is: `TCP [SYN]`, `UDP 33 bytes`, an ICMP message, a tunnel.
fn what(pkt: &[u8], info: &FrameInfo) -> String {
    let seg = &pkt[info.l4_offset()..info.ip_end()];
    match info.l4 {
        L4Info::Tcp { flags, .. } => {
            let n = TcpPacket::new_checked(seg).map_or(0, |t| t.payload().len());
            if n == 0 {
                format!("TCP [{flags}]")
            } else {
                format!("TCP [{flags}] {n} bytes")
            }
        }
        L4Info::Udp { .. } => {
            let n = UdpPacket::new_checked(seg).map_or(0, |u| u.payload().len());
            format!("UDP {n} bytes")
        }
        L4Info::Icmp(m) => match m.inner {
            Some(q) => format!(
                "{} quoting {} {}",
                icmp_name(pkt, info),
                protocol_name(q.protocol),
                inner_tuple(&q)
            ),
            None => icmp_name(pkt, info),
        },
        L4Info::IpIp(v) => {
            let tunnel = format!("{}in{}", version_digit(v), version_digit(info.ip.version));
            match FrameInfo::parse_ip(seg) {
                Ok(inner) => format!(
                    "{tunnel} tunnel of {}  {}",
                    tuple(&inner),
                    what(seg, &inner)
                ),
                Err(e) => format!("{tunnel} tunnel of an unparsable packet ({e})"),
            }
        }
        L4Info::None => protocol_name(info.ip.protocol),
    }
}

// ---------------------------------------------------------------------------------------
// Verifying checksums with lvs-core's views.

/// Every checksum of an Ethernet frame: the IPv4 header (checked by `FrameInfo::parse`),
/// TCP, UDP, ICMPv4, ICMPv6, the quoted datagram of an ICMP error, a tunnel's inner packet.
fn verify(frame: &[u8]) -> Result<FrameInfo, String> {
    let info = FrameInfo::parse(frame).map_err(|e| format!("does not parse: {e}"))?;
    verify_l4(frame, &info)?;
    Ok(info)
}

fn verify_l4(pkt: &[u8], info: &FrameInfo) -> Result<(), String> {
    let seg = pkt
        .get(info.l4_offset()..info.ip_end())
        .ok_or("IP lengths outside the frame")?;
    let (src, dst) = (info.ip.src, info.ip.dst);
    match info.l4 {
        L4Info::Tcp { .. } => {
            let t = TcpPacket::new_checked(seg).map_err(|e| format!("TCP: {e}"))?;
            if !t.verify_checksum(&src, &dst) {
                return Err(format!("bad TCP checksum {:#06x}", t.checksum()));
            }
        }
        L4Info::Udp { .. } => {
            let u = UdpPacket::new_checked(seg).map_err(|e| format!("UDP: {e}"))?;
            if !u.verify_checksum(&src, &dst) {
                return Err(format!("bad UDP checksum {:#06x}", u.checksum()));
            }
        }
        L4Info::Icmp(m) => {
            let ok = match (src, dst) {
                (IpAddr::V6(s), IpAddr::V6(d)) => Icmpv6Packet::new_checked(seg)
                    .map_err(|e| format!("ICMPv6: {e}"))?
                    .verify_checksum(&s, &d),
                _ => Icmpv4Packet::new_checked(seg)
                    .map_err(|e| format!("ICMP: {e}"))?
                    .verify_checksum(),
            };
            if !ok {
                return Err(format!("bad {} checksum", protocol_name(info.ip.protocol)));
            }
            if let Some(q) = m.inner {
                verify_quote(pkt, info, &q)?;
            }
        }
        L4Info::IpIp(_) => {
            let inner = FrameInfo::parse_ip(seg).map_err(|e| format!("tunnelled packet: {e}"))?;
            verify_l4(seg, &inner).map_err(|e| format!("tunnelled packet: {e}"))?;
        }
        L4Info::None => {}
    }
    Ok(())
}

/// The quoted IPv4 header's checksum, and the quoted TCP/UDP checksum when the quote holds
/// the whole datagram (an ICMPv6 error quoting a small packet).
fn verify_quote(pkt: &[u8], info: &FrameInfo, q: &InnerInfo) -> Result<(), String> {
    let quote = pkt
        .get(q.offset..info.ip_end())
        .ok_or("quote outside the frame")?;
    let header = quote.get(..q.header_len).ok_or("quoted header truncated")?;
    let total = match q.version {
        IpVersion::V4 => {
            if checksum::sum(header) != 0xffff {
                return Err("bad quoted IPv4 header checksum".into());
            }
            usize::from(u16::from_be_bytes([header[2], header[3]]))
        }
        IpVersion::V6 => 40 + usize::from(u16::from_be_bytes([header[4], header[5]])),
    };
    let Some(l4) = quote.get(q.header_len..total) else {
        return Ok(()); // a truncated quote: its L4 checksum cannot be checked
    };
    let ok = match q.protocol {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(l4).is_ok_and(|t| t.verify_checksum(&q.src, &q.dst))
        }
        IpProtocol::Udp => {
            UdpPacket::new_checked(l4).is_ok_and(|u| u.verify_checksum(&q.src, &q.dst))
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("bad quoted {} checksum", protocol_name(q.protocol)))
    }
}

// ---------------------------------------------------------------------------------------
// Running frames through lvs-core and reporting.

/// One printed line: a frame, or a problem.
enum Line {
    Frame(Row),
    Problem(String),
}

/// A frame's line: numbers, method and direction, before, after, what, checksum verdict.
struct Row {
    frames: String,
    label: String,
    before: String,
    after: String,
    what: String,
    status: String,
}

struct Demo {
    pcap: Option<PcapWriter<BufWriter<File>>>,
    frames: usize,
    lines: Vec<Line>,
    failures: Vec<String>,
    ident: u16,
}

/// A forwarding operation on `buf[range]`, returning the output's range in `buf`.
type Op<'a> = dyn FnMut(&mut [u8], Range<usize>, &FrameInfo) -> Result<Range<usize>, String> + 'a;

impl Demo {
    /// Numbers the frame (as Wireshark does, from 1) and writes it to the pcap file.
    fn record(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.frames += 1;
        if let Some(w) = &mut self.pcap {
            // A fixed start time and one millisecond per frame: the same file every run.
            let ts = Duration::from_secs(1_767_225_600) + Duration::from_millis(self.frames as u64);
            w.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame))
                .map_err(io::Error::other)?;
        }
        Ok(self.frames)
    }

    /// Runs `input` through `op`, records both frames, verifies the output and adds a row.
    /// `input_no` is the input's frame number when it was recorded already (the output
    /// of an earlier step). Returns the output and its frame number.
    fn step(
        &mut self,
        label: &str,
        input: &[u8],
        input_no: Option<usize>,
        op: &mut Op<'_>,
    ) -> io::Result<Option<(Vec<u8>, usize)>> {
        let in_no = match input_no {
            Some(n) => n,
            None => self.record(input)?,
        };
        let in_info = match verify(input) {
            Ok(i) => i,
            Err(e) => {
                self.fail(format!("input frame #{in_no} ({label}): {e}"));
                return Ok(None);
            }
        };
        let mut buf = vec![0u8; HEADROOM + input.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(input);
        let range = match op(&mut buf, HEADROOM..HEADROOM + input.len(), &in_info) {
            Ok(r) => r,
            Err(e) => {
                self.fail(format!(
                    "{label} {} ({}): lvs-core: {e}",
                    tuple(&in_info),
                    what(input, &in_info)
                ));
                return Ok(None);
            }
        };
        let output = buf[range].to_vec();
        let out_no = self.record(&output)?;
        let frames = format!("#{in_no}>#{out_no}");
        let (after, what_out, status) = match verify(&output) {
            Ok(out_info) => (
                tuple(&out_info),
                describe_change(input, &in_info, &output, &out_info),
                "checksums ok".to_string(),
            ),
            Err(e) => {
                self.fail(format!(
                    "output frame #{out_no} ({label} {}, from input #{in_no}): {e}",
                    tuple(&in_info)
                ));
                let after = FrameInfo::parse(&output).map_or("?".into(), |i| tuple(&i));
                (after, what(input, &in_info), format!("CHECKSUM ERROR: {e}"))
            }
        };
        self.lines.push(Line::Frame(Row {
            frames,
            label: label.to_string(),
            before: tuple(&in_info),
            after,
            what: what_out,
            status,
        }));
        Ok(Some((output, out_no)))
    }

    fn fail(&mut self, msg: String) {
        self.lines.push(Line::Problem(msg.clone()));
        self.failures.push(msg);
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Prints the lines gathered since the last section, columns aligned.
    fn section(&mut self, title: &str) {
        println!("\n{title}");
        let rows = || {
            self.lines.iter().filter_map(|l| match l {
                Line::Frame(r) => Some(r),
                Line::Problem(_) => None,
            })
        };
        let w = |f: fn(&Row) -> &String| rows().map(|r| f(r).len()).max().unwrap_or(0);
        let (wf, wl, wb, wa) = (
            w(|r| &r.frames),
            w(|r| &r.label),
            w(|r| &r.before),
            w(|r| &r.after),
        );
        for line in self.lines.drain(..) {
            match line {
                Line::Frame(r) => println!(
                    "  {:<wf$}  {:<wl$}  {:<wb$}  =>  {:<wa$}  {}  {}",
                    r.frames, r.label, r.before, r.after, r.what, r.status
                ),
                Line::Problem(msg) => println!("  ERROR {msg}"),
            }
        }
    }
}

/// The output's description; for an ICMP error, how its quote changed; for DR, the MACs.
fn describe_change(
    input: &[u8],
    in_info: &FrameInfo,
    output: &[u8],
    out_info: &FrameInfo,
) -> String {
    if let (L4Info::Icmp(a), L4Info::Icmp(b)) = (in_info.l4, out_info.l4)
        && let (Some(qa), Some(qb)) = (a.inner, b.inner)
        && qa != qb
    {
        return format!(
            "{} quoting {} {} => {}",
            icmp_name(output, out_info),
            protocol_name(qb.protocol),
            inner_tuple(&qa),
            inner_tuple(&qb)
        );
    }
    let mut s = what(output, out_info);
    if input[frames::ETH_HEADER_LEN..] == output[frames::ETH_HEADER_LEN..] {
        let mac = |f: &[u8]| EthernetFrame::new_checked(f).map(|e| e.dst_addr());
        if let (Ok(a), Ok(b)) = (mac(input), mac(output)) {
            s.push_str(&format!(", dst MAC {a} => {b}"));
        }
    }
    s
}

/// Finds the connection a packet belongs to, as the director's table will.
fn lookup(conns: &[Conn], protocol: IpProtocol, pred: impl Fn(&Conn) -> bool) -> Option<&Conn> {
    conns.iter().find(|c| c.protocol == protocol && pred(c))
}

fn src_ep(info: &FrameInfo) -> Option<Endpoint> {
    info.l4.ports().map(|(s, _)| Endpoint::new(info.ip.src, s))
}

fn dst_ep(info: &FrameInfo) -> Option<Endpoint> {
    info.l4.ports().map(|(_, d)| Endpoint::new(info.ip.dst, d))
}

fn quote_of(info: &FrameInfo) -> Option<InnerInfo> {
    match info.l4 {
        L4Info::Icmp(m) if m.is_error => m.inner,
        _ => None,
    }
}

fn quote_src(q: &InnerInfo) -> Option<Endpoint> {
    q.ports.map(|(s, _)| Endpoint::new(q.src, s))
}

fn quote_dst(q: &InnerInfo) -> Option<Endpoint> {
    q.ports.map(|(_, d)| Endpoint::new(q.dst, d))
}

const NO_CONN: &str = "no connection for this packet";

/// NAT or FULLNAT, one frame: the lookup and the rewrite a director does.
fn masquerade(
    method: Method,
    conns: &[Conn],
    dir: Dir,
    buf: &mut [u8],
    range: Range<usize>,
    info: &FrameInfo,
) -> Result<Range<usize>, String> {
    let f = &mut buf[range.clone()];
    let e = |e: fwd::Error| e.to_string();
    match (dir, quote_of(info)) {
        (Dir::In, None) => {
            let (s, d) = (src_ep(info), dst_ep(info));
            let c = lookup(conns, info.ip.protocol, |c| {
                Some(c.client) == s && Some(c.virt) == d
            })
            .ok_or(NO_CONN)?;
            match method {
                Method::Nat => nat::inbound(f, info, c.real),
                Method::FullNat => fullnat::inbound(f, info, c.local, c.real),
            }
            .map_err(e)?;
            fwd::set_macs(f, DIRECTOR_MAC, REAL_MAC).map_err(e)?;
        }
        (Dir::Out, None) => {
            let (s, d) = (src_ep(info), dst_ep(info));
            let c = lookup(conns, info.ip.protocol, |c| {
                Some(c.real) == s && Some(method.peer(c)) == d
            })
            .ok_or(NO_CONN)?;
            match method {
                Method::Nat => nat::outbound(f, info, c.virt),
                Method::FullNat => fullnat::outbound(f, info, c.virt, c.client),
            }
            .map_err(e)?;
            fwd::set_macs(f, DIRECTOR_MAC, UPSTREAM_MAC).map_err(e)?;
        }
        (Dir::In, Some(q)) => {
            // About a packet the director sent to the client: VIP:vport -> CIP:cport.
            let c = lookup(conns, q.protocol, |c| {
                quote_src(&q) == Some(c.virt) && quote_dst(&q) == Some(c.client)
            })
            .ok_or(NO_CONN)?;
            match method {
                Method::Nat => nat::inbound_icmp(f, info, c.real),
                Method::FullNat => fullnat::inbound_icmp(f, info, c.local, c.real),
            }
            .map_err(e)?;
            fwd::set_macs(f, DIRECTOR_MAC, REAL_MAC).map_err(e)?;
        }
        (Dir::Out, Some(q)) => {
            // About a packet the director forwarded: peer -> RIP:rport.
            let c = lookup(conns, q.protocol, |c| {
                quote_src(&q) == Some(method.peer(c)) && quote_dst(&q) == Some(c.real)
            })
            .ok_or(NO_CONN)?;
            match method {
                Method::Nat => nat::outbound_icmp(f, info, c.virt),
                Method::FullNat => fullnat::outbound_icmp(f, info, c.virt, c.client),
            }
            .map_err(e)?;
            fwd::set_macs(f, DIRECTOR_MAC, UPSTREAM_MAC).map_err(e)?;
        }
    }
    Ok(range)
}

fn tun_params(site_outer: &Site, ident: u16) -> tun::TunParams {
    tun::TunParams {
        src: site_outer.lip,
        dst: site_outer.rip,
        ident,
        flow_label: 0x1_2345,
        mtu: TUNNEL_MTU,
    }
}

fn run(demo: &mut Demo) -> io::Result<()> {
    let (v4, v6) = (Site::v4(), Site::v6());

    println!("lvs-demo: every lvs-core forwarding method over one small scenario");
    for s in [&v4, &v6] {
        let (h, d) = (s.http(), s.dns());
        println!(
            "  client {}  VIP {} (TCP) and {} (UDP)  real server {} and {}  director {}  router {}",
            s.client,
            endpoint(h.virt.addr, h.virt.port),
            endpoint(d.virt.addr, d.virt.port),
            endpoint(h.real.addr, h.real.port),
            endpoint(d.real.addr, d.real.port),
            s.lip,
            s.router
        );
    }
    println!(
        "  MACs: upstream router {UPSTREAM_MAC}, director {DIRECTOR_MAC}, real server {REAL_MAC}"
    );
    println!("  frames: #input>#output, numbered as in the pcap file (tcpdump/Wireshark)");

    for (method, name, title) in [
        (
            Method::Nat,
            "NAT",
            "NAT (ipvsadm -m, masquerading): in = client to real server, out = replies and errors back to the client",
        ),
        (
            Method::FullNat,
            "FULLNAT",
            "FULLNAT (DPVS ipvsadm -b): the real server sees the director's local address and port",
        ),
    ] {
        for site in [&v4, &v6] {
            let conns = [site.http(), site.dns()];
            for step in conversation(site, method) {
                let label = match step.dir {
                    Dir::In => format!("{name} in"),
                    Dir::Out => format!("{name} out"),
                };
                demo.step(&label, &step.frame, None, &mut |b, r, i| {
                    masquerade(method, &conns, step.dir, b, r, i)
                })?;
            }
        }
        demo.section(title);
    }

    for site in [&v4, &v6] {
        for step in inbound_for_dr_tun(site) {
            demo.step("DR in", &step.frame, None, &mut |b, r, _| {
                dr::forward(&mut b[r.clone()], DIRECTOR_MAC, REAL_MAC)
                    .map_err(|e| e.to_string())?;
                Ok(r)
            })?;
        }
    }
    demo.section("DR (ipvsadm -g, direct routing): only the destination MAC changes; the real server answers the client itself");

    for (inner, outer, all) in [
        (&v4, &v4, true),
        (&v6, &v6, true),
        (&v4, &v6, false),
        (&v6, &v4, false),
    ] {
        let kind = format!(
            "{}in{}",
            if inner.is_v4() { '4' } else { '6' },
            if outer.is_v4() { '4' } else { '6' }
        );
        for step in inbound_for_dr_tun(inner) {
            if !all && !["syn", "get"].contains(&step.name) {
                continue;
            }
            let ident = demo.next_ident();
            let p = tun_params(outer, ident);
            let encapped =
                demo.step(&format!("TUN {kind}"), &step.frame, None, &mut |b, r, i| {
                    let out = tun::encap(b, r, i, &p).map_err(|e| e.to_string())?;
                    fwd::set_macs(&mut b[out.clone()], DIRECTOR_MAC, REAL_MAC)
                        .map_err(|e| e.to_string())?;
                    Ok(out)
                })?;
            if let Some((frame, no)) = encapped {
                demo.step("TUN decap", &frame, Some(no), &mut |b, r, i| {
                    tun::decap(b, r, i)
                        .map(|(out, _)| out)
                        .map_err(|e| e.to_string())
                })?;
            }
        }
    }
    demo.section("TUN (ipvsadm -i, IP-in-IP): the director encapsulates; \"decap\" is the real server's side (lvs-core, no ipip module)");

    for site in [&v4, &v6] {
        let ident = demo.next_ident();
        let p = tun_params(site, ident);
        let vip = site.vip;
        demo.step(
            "TUN too-big",
            &upload_1500(site),
            None,
            &mut |b, r, i| match tun::encap(b, r.clone(), i, &p) {
                Err(fwd::Error::FragNeeded { mtu }) => {
                    icmp::too_big_reply(b, r, i, vip, mtu, ident).map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("expected FragNeeded, got {e}")),
                Ok(_) => Err("a 1500-byte packet fit a 1500-byte tunnel MTU".into()),
            },
        )?;
    }
    demo.section(&format!(
        "TUN too big: a 1500-byte packet with DF does not fit the {TUNNEL_MTU}-byte tunnel MTU; the director answers the client"
    ));
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pcap = match &args.write {
        Some(path) => {
            let file = match File::create(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: cannot create {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            match PcapWriter::new(BufWriter::new(file)) {
                Ok(w) => Some(w),
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let mut demo = Demo {
        pcap,
        frames: 0,
        lines: Vec::new(),
        failures: Vec::new(),
        ident: 0,
    };
    if let Err(e) = run(&mut demo) {
        eprintln!("error: writing the pcap file: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(w) = demo.pcap.take() {
        let mut inner = w.into_writer();
        if let Err(e) = io::Write::flush(&mut inner) {
            eprintln!("error: writing the pcap file: {e}");
            return ExitCode::FAILURE;
        }
    }

    println!();
    if let Some(path) = &args.write {
        println!("wrote {} frames to {}", demo.frames, path.display());
    }
    if demo.failures.is_empty() {
        println!(
            "{} frames, every output frame's checksums verified (IPv4 header, TCP, UDP, ICMP, quoted datagrams)",
            demo.frames
        );
        ExitCode::SUCCESS
    } else {
        for f in &demo.failures {
            eprintln!("error: {f}");
        }
        eprintln!("{} problem(s)", demo.failures.len());
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_flow() -> Flow {
        flow(Site::v4().http().client, Site::v4().http().virt)
    }

    #[test]
    fn the_whole_scenario_passes() {
        let mut demo = Demo {
            pcap: None,
            frames: 0,
            lines: Vec::new(),
            failures: Vec::new(),
            ident: 0,
        };
        run(&mut demo).unwrap();
        assert_eq!(demo.failures, Vec::<String>::new());
        assert_eq!(demo.frames, 144);
    }

    #[test]
    fn a_bad_output_frame_is_named() {
        let mut demo = Demo {
            pcap: None,
            frames: 0,
            lines: Vec::new(),
            failures: Vec::new(),
            ident: 0,
        };
        let input = frames::tcp(&v4_flow(), SYN, b"");
        demo.step("NAT in", &input, None, &mut |b, r, _| {
            b[r.start + frames::ETH_HEADER_LEN + 20 + 16] ^= 1; // the TCP checksum
            Ok(r)
        })
        .unwrap();
        assert_eq!(demo.failures.len(), 1);
        let f = &demo.failures[0];
        assert!(
            f.starts_with("output frame #2 (NAT in") && f.contains("bad TCP checksum"),
            "{f}"
        );
    }

    #[test]
    fn verify_accepts_the_fixture_frames() {
        let f4 = v4_flow();
        let f6 = flow(Site::v6().http().client, Site::v6().http().virt);
        let t4 = frames::tcp(&f4, SYN, b"");
        let u6 = frames::udp(&f6, b"query");
        for f in [
            t4.clone(),
            u6.clone(),
            frames::icmp_error(f4.dst, f4.src, IcmpError::PortUnreachable, &t4),
            frames::icmp_error(f6.dst, f6.src, IcmpError::FragNeeded(1280), &u6),
            frames::ethernet(&frames::ipip(
                Site::v6().lip,
                Site::v6().rip,
                frames::ip_of(&t4),
            )),
        ] {
            verify(&f).unwrap();
        }
    }

    /// Flips one byte of `frame` at `at` and expects `verify` to name `what`.
    fn rejects(frame: &[u8], at: usize, what: &str) {
        let mut f = frame.to_vec();
        f[at] ^= 0x5a;
        let e = verify(&f).unwrap_err();
        assert!(
            e.contains(what),
            "byte {at}: {e:?} does not mention {what:?}"
        );
    }

    #[test]
    fn verify_finds_every_bad_checksum() {
        let f4 = v4_flow();
        let f6 = flow(Site::v6().http().client, Site::v6().http().virt);
        let eth = frames::ETH_HEADER_LEN;
        rejects(&frames::tcp(&f4, SYN, b""), eth + 10, "IPv4 header");
        rejects(&frames::tcp(&f4, SYN, b"x"), eth + 20 + 16, "TCP");
        rejects(&frames::tcp(&f6, ACK, b"x"), eth + 40 + 20, "TCP");
        rejects(&frames::udp(&f4, b"abc"), eth + 20 + 6, "UDP");
        rejects(&frames::udp(&f6, b"abc"), eth + 40 + 8, "UDP");
        let t4 = frames::tcp(&f4, SYN, b"");
        let e4 = frames::icmp_error(f4.dst, f4.src, IcmpError::PortUnreachable, &t4);
        rejects(&e4, eth + 20 + 2, "ICMP");
        let u6 = frames::udp(&f6, b"query");
        let e6 = frames::icmp_error(f6.dst, f6.src, IcmpError::PortUnreachable, &u6);
        rejects(&e6, eth + 40 + 2, "ICMPv6");

        // A quote whose own checksums are wrong, inside an ICMP message that is right.
        let mut bad_hdr = frames::ip_of(&t4).to_vec();
        bad_hdr[10] ^= 0x5a;
        let e = frames::ethernet(&frames::icmp_error_ip(
            f4.dst,
            f4.src,
            IcmpError::PortUnreachable,
            &bad_hdr,
        ));
        assert!(verify(&e).unwrap_err().contains("quoted IPv4 header"));
        let mut bad_udp = frames::ip_of(&u6).to_vec();
        bad_udp[40 + 8] ^= 0x5a;
        let e = frames::ethernet(&frames::icmp_error_ip(
            f6.dst,
            f6.src,
            IcmpError::PortUnreachable,
            &bad_udp,
        ));
        assert!(verify(&e).unwrap_err().contains("quoted UDP"));

        // Inside a tunnel.
        let mut inner = frames::ip_of(&t4).to_vec();
        inner[20 + 16] ^= 0x5a;
        let t = frames::ethernet(&frames::ipip(Site::v4().lip, Site::v4().rip, &inner));
        assert!(
            verify(&t)
                .unwrap_err()
                .contains("tunnelled packet: bad TCP")
        );
    }
}
