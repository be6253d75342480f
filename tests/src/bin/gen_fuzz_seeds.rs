//! Writes the seed corpora of `fuzz/smoke.sh`, built with `lvs_tests::frames` (smoltcp's
//! emitters). Deterministic: the same bytes on every run, and the directories hold
//! exactly what this program writes (it empties them first). `tests/fuzz_seeds.rs` checks
//! that the committed seeds are current.
//!
//! ```sh
//! cargo run -p lvs-tests --bin gen_fuzz_seeds         # writes <workspace>/fuzz/seeds
//! cargo run -p lvs-tests --bin gen_fuzz_seeds -- DIR  # writes DIR/{frame,frame_bare,ip,l4,director}
//! ```
//!
//! - `frame/`: whole Ethernet frames, each behind the 64 parameter bytes the rewrite
//!   targets (`fwd_*`) read first (see `fuzz/fuzz_targets/common.rs`), in three variants
//!   named by the mode byte `params[0]`: `m00` (NAT/FULLNAT inbound, an ICMP rewrite
//!   that changes nothing, TUN over IPv4 with 64 bytes of headroom), `m05` (outbound,
//!   outer and quoted source rewritten, TUN over IPv6 with 64 bytes of headroom) and
//!   `m0e` (inbound, outer destination and both quoted endpoints rewritten, TUN over
//!   IPv4 with `params[1] % 64` = 10 bytes of headroom). `fwd_dr` reads only 12
//!   parameter bytes, so it sees the frame behind the other 52 (it only writes MACs).
//! - `frame_bare/`: the same frames without the prefix, for the parser targets
//!   (`wire_ethernet`, `wire_frame_info`), which read the whole input as a frame: behind
//!   the prefix they see the filler's EtherType and stop there.
//! - `ip/`: bare IP packets (and the truncated ones an ICMP error quotes), no prefix.
//! - `l4/`: bare TCP segments, UDP datagrams and ICMPv4/ICMPv6 messages, no prefix.
//! - `director/`: operation sequences for the `director` target in its input format (see
//!   the module docs of `fuzz/fuzz_targets/director.rs`; [`Ops`] below writes it):
//!   services and real servers, then frames the target builds from templates (a TCP
//!   handshake and teardown, replies, ICMP errors), for every forwarding method, with
//!   persistence, the table-storage schedulers, one-packet UDP and a full table.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use lvs_tests::frames::{self, Flow, IcmpError};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber,
};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// The 64 parameter bytes in front of a frame seed, for mode byte `mode`.
fn params(mode: u8) -> [u8; 64] {
    let mut p = [0u8; 64];
    // A fixed filler, so no field is all zeros by accident.
    for (i, b) in p.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    p[0] = mode;
    // fwd_tun: headroom (mode bit 1), MTU 1500, tunnel source and destination.
    p[1] = 10;
    p[2..4].copy_from_slice(&1500u16.to_be_bytes());
    p[4..8].copy_from_slice(&[192, 0, 2, 1]);
    p[20..24].copy_from_slice(&[192, 0, 2, 11]);
    // fwd_nat / fwd_fullnat: the first endpoint is params[1..19] (its address overlaps
    // the TUN fields above), port 8080; the second is params[20..38], port 61000.
    p[17..19].copy_from_slice(&8080u16.to_be_bytes());
    p[36..38].copy_from_slice(&61000u16.to_be_bytes());
    p
}

const MODES: [u8; 3] = [0x00, 0x05, 0x0e];

struct Seeds {
    frame: Vec<(String, Vec<u8>)>,
    ip: Vec<(String, Vec<u8>)>,
    l4: Vec<(String, Vec<u8>)>,
}

impl Seeds {
    fn frame(&mut self, name: &str, f: Vec<u8>) {
        self.frame.push((name.to_string(), f));
    }

    fn ip(&mut self, name: &str, p: Vec<u8>) {
        self.ip.push((name.to_string(), p));
    }

    fn l4(&mut self, name: &str, s: Vec<u8>) {
        self.l4.push((name.to_string(), s));
    }

    /// A frame seed and the bare IP seed inside it.
    fn both(&mut self, name: &str, ip: Vec<u8>) {
        self.frame(name, frames::ethernet(&ip));
        self.ip(name, ip);
    }
}

fn v4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn addrs4(flow: &Flow) -> (Ipv4Addr, Ipv4Addr) {
    match (flow.src, flow.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
        _ => unreachable!(),
    }
}

fn addrs6(flow: &Flow) -> (Ipv6Addr, Ipv6Addr) {
    match (flow.src, flow.dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => (s, d),
        _ => unreachable!(),
    }
}

/// A SYN with MSS, window scale, SACK-permitted and timestamp options.
fn tcp_syn_with_options(flow: &Flow) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: flow.sport,
        dst_port: flow.dport,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(0x0102_0304),
        ack_number: None,
        window_len: 64240,
        window_scale: Some(7),
        max_seg_size: Some(1460),
        sack_permitted: true,
        sack_ranges: [None; 3],
        timestamp: Some(smoltcp::wire::TcpTimestampRepr::new(0x1000, 0)),
        payload: &[],
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[..]),
        &IpAddress::from(flow.src),
        &IpAddress::from(flow.dst),
        &ChecksumCapabilities::default(),
    );
    buf
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn build() -> Seeds {
    let mut s = Seeds {
        frame: Vec::new(),
        ip: Vec::new(),
        l4: Vec::new(),
    };
    let f4 = Flow::v4();
    let f6 = Flow::v6();
    let http = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();

    // TCP, both families, the handshake and the teardown.
    for (fam, flow) in [("v4", f4), ("v6", f6)] {
        let r = flow.reversed();
        s.both(&format!("tcp_syn_{fam}"), frames::tcp_ip(&flow, SYN, &[]));
        s.both(
            &format!("tcp_synack_{fam}"),
            frames::tcp_ip(&r, SYN | ACK, &[]),
        );
        s.both(&format!("tcp_ack_{fam}"), frames::tcp_ip(&flow, ACK, &[]));
        s.both(
            &format!("tcp_psh_ack_{fam}"),
            frames::tcp_ip(&flow, PSH | ACK, &http),
        );
        s.both(
            &format!("tcp_fin_ack_{fam}"),
            frames::tcp_ip(&flow, FIN | ACK, &[]),
        );
        s.both(&format!("tcp_rst_{fam}"), frames::tcp_ip(&r, RST, &[]));
        s.both(&format!("tcp_ack_{fam}_full_mtu"), {
            let hdr = if fam == "v4" { 40 } else { 60 };
            frames::tcp_ip(&flow, ACK, &payload(1500 - hdr))
        });
        let syn_opts = tcp_syn_with_options(&flow);
        s.both(
            &format!("tcp_syn_options_{fam}"),
            frames::ip_packet(flow.src, flow.dst, 6, &syn_opts),
        );
        s.l4(&format!("tcp_syn_options_{fam}"), syn_opts);
        s.l4(
            &format!("tcp_syn_{fam}"),
            frames::tcp_segment(flow.src, flow.dst, flow.sport, flow.dport, SYN, &[]),
        );
        s.l4(
            &format!("tcp_psh_ack_{fam}"),
            frames::tcp_segment(flow.src, flow.dst, flow.sport, flow.dport, PSH | ACK, &http),
        );
        s.both(
            &format!("udp_{fam}"),
            frames::udp_ip(&flow, b"\x12\x34\x01\x00\x00\x01"),
        );
        s.l4(
            &format!("udp_{fam}"),
            frames::udp_datagram(flow.src, flow.dst, 5353, 53, b"\x12\x34\x01\x00", true),
        );
    }

    // UDP without checksum (IPv4 only).
    let udp0 = frames::udp_datagram(f4.src, f4.dst, f4.sport, 53, b"no checksum", false);
    s.both(
        "udp_v4_no_checksum",
        frames::ip_packet(f4.src, f4.dst, 17, &udp0),
    );
    s.l4("udp_v4_no_checksum", udp0);

    // Ethernet padding: a 54-byte TCP ACK padded to the 60-byte minimum.
    let mut padded = frames::tcp(&f4, ACK, &[]);
    padded.resize(60, 0);
    s.frame("tcp_ack_v4_padded", padded);

    // IPv4 options (router alert, NOPs, a record-route slot).
    let (s4, d4) = addrs4(&f4);
    let seg = frames::tcp_segment(f4.src, f4.dst, f4.sport, f4.dport, SYN, &[]);
    s.both(
        "ipv4_options_tcp_syn",
        frames::ipv4_with_options(s4, d4, 6, &[0x94, 4, 0, 0, 1, 1, 7, 7, 4, 0, 0, 0, 0], &seg),
    );

    // IPv4 fragments of one UDP datagram: the first (with the UDP header) and a later one.
    let big = frames::udp_datagram(f4.src, f4.dst, f4.sport, 53, &payload(200), true);
    s.both(
        "ipv4_frag_first_udp",
        frames::ipv4_fragment(s4, d4, 17, 0x2a2a, 0, true, &big[..104]),
    );
    s.both(
        "ipv4_frag_later_udp",
        frames::ipv4_fragment(s4, d4, 17, 0x2a2a, 104, false, &big[104..]),
    );

    // IPv6 extension headers: hop-by-hop + destination options before TCP; fragments.
    let (s6, d6) = addrs6(&f6);
    let seg6 = frames::tcp_segment(f6.src, f6.dst, f6.sport, f6.dport, SYN, &[]);
    s.both(
        "ipv6_hbh_dstopts_tcp_syn",
        frames::ipv6_with_ext(
            s6,
            d6,
            &[(0, vec![5, 2, 0, 0]), (60, vec![1, 2, 0, 0])],
            6,
            &seg6,
        ),
    );
    let big6 = frames::udp_datagram(f6.src, f6.dst, f6.sport, 53, &payload(200), true);
    s.both(
        "ipv6_frag_first_udp",
        frames::ipv6_with_ext(
            s6,
            d6,
            &[(44, frames::ipv6_fragment_body(0, true, 0x1234_5678))],
            17,
            &big6[..104],
        ),
    );
    s.both(
        "ipv6_frag_later_udp",
        frames::ipv6_with_ext(
            s6,
            d6,
            &[(44, frames::ipv6_fragment_body(104, false, 0x1234_5678))],
            17,
            &big6[104..],
        ),
    );

    // ICMP errors quoting TCP and UDP, from a router on the path.
    let router4 = IpAddr::V4(v4([192, 0, 2, 254]));
    let router6: IpAddr = "2001:db8:ffff::fe".parse::<Ipv6Addr>().unwrap().into();
    for (fam, flow, router) in [("icmp4", f4, router4), ("icmp6", f6, router6)] {
        let tcp = frames::tcp(&flow, PSH | ACK, &http);
        let udp = frames::udp(&flow, &payload(64));
        let reply = flow.reversed();
        let kinds = [
            (
                "port_unreach_udp",
                flow.dst,
                IcmpError::PortUnreachable,
                &udp,
            ),
            ("frag_needed_tcp", router, IcmpError::FragNeeded(1400), &tcp),
            ("time_exceeded_tcp", router, IcmpError::TimeExceeded, &tcp),
            ("time_exceeded_udp", router, IcmpError::TimeExceeded, &udp),
        ];
        for (what, from, kind, offending) in kinds {
            let name = if fam == "icmp6" && what == "frag_needed_tcp" {
                "icmp6_pkt_too_big_tcp".to_string()
            } else {
                format!("{fam}_{what}")
            };
            let ip = frames::icmp_error_ip(from, reply.dst, kind, frames::ip_of(offending));
            let hl = if fam == "icmp4" { 20 } else { 40 };
            s.l4(&name, ip[hl..].to_vec());
            s.both(&name, ip);
        }
        // The quote alone, as the ICMP-error quote view reads it.
        let quoted = frames::ip_of(&tcp);
        let n = if fam == "icmp4" { 28 } else { quoted.len() };
        s.ip(&format!("quote_{fam}_tcp"), quoted[..n].to_vec());
    }

    // Echo request/reply (not errors: no quote).
    let mut echo = vec![0u8; 8 + 16];
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 1,
        data: &[0x42; 16],
    };
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut echo[..]),
        &ChecksumCapabilities::default(),
    );
    s.both(
        "icmp4_echo_request",
        frames::ip_packet(f4.dst, f4.src, 1, &echo),
    );
    s.l4("icmp4_echo_request", echo);
    let mut echo6 = vec![0u8; 8 + 16];
    let repr = Icmpv6Repr::EchoReply {
        ident: 0x1234,
        seq_no: 1,
        data: &[0x42; 16],
    };
    repr.emit(
        &s6,
        &d6,
        &mut Icmpv6Packet::new_unchecked(&mut echo6[..]),
        &ChecksumCapabilities::default(),
    );
    s.both(
        "icmp6_echo_reply",
        frames::ip_packet(f6.src, f6.dst, 58, &echo6),
    );
    s.l4("icmp6_echo_reply", echo6);

    // IP-in-IP, all four kinds: director → real server, around the client's packet.
    let d4 = (
        IpAddr::V4(v4([192, 0, 2, 1])),
        IpAddr::V4(v4([192, 0, 2, 11])),
    );
    let dir6: IpAddr = "2001:db8:2::1".parse::<Ipv6Addr>().unwrap().into();
    let rs6: IpAddr = "2001:db8:2::11".parse::<Ipv6Addr>().unwrap().into();
    let inner4 = frames::tcp_ip(&f4, SYN, &[]);
    let inner6 = frames::tcp_ip(&f6, SYN, &[]);
    s.both("ipip_4in4", frames::ipip(d4.0, d4.1, &inner4));
    s.both("ipip_6in6", frames::ipip(dir6, rs6, &inner6));
    s.both("ipip_4in6", frames::ipip(dir6, rs6, &inner4));
    s.both("ipip_6in4", frames::ipip(d4.0, d4.1, &inner6));

    // VLAN-tagged frames.
    s.frame(
        "vlan_tcp_syn_v4",
        frames::with_vlan(&frames::tcp(&f4, SYN, &[]), 0x0064),
    );
    s.frame(
        "vlan_udp_v6",
        frames::with_vlan(&frames::udp(&f6, b"tagged"), 0x2065),
    );
    s.frame(
        "vlan_icmp4_frag_needed_tcp",
        frames::with_vlan(
            &frames::icmp_error(
                router4,
                f4.src,
                IcmpError::FragNeeded(1400),
                &frames::tcp(&f4, ACK, &http),
            ),
            0x0066,
        ),
    );
    s.frame(
        "vlan_ipip_4in4",
        frames::with_vlan(
            &frames::ethernet(&frames::ipip(d4.0, d4.1, &inner4)),
            0x0067,
        ),
    );

    // Malformed: a frame cut inside the TCP header; IPv4 total lengths that lie (longer
    // than the buffer, shorter than the headers), with valid header checksums.
    let syn = frames::tcp(&f4, SYN, &[]);
    s.frame("truncated_tcp_v4", syn[..14 + 20 + 10].to_vec());
    s.ip("truncated_tcp_v4", frames::ip_of(&syn)[..30].to_vec());
    s.frame(
        "truncated_ipv6_header",
        frames::tcp(&f6, SYN, &[])[..14 + 30].to_vec(),
    );
    for (name, len) in [
        ("lying_total_len_long_v4", 1000u16),
        ("lying_total_len_short_v4", 24),
    ] {
        let mut f = frames::tcp(&f4, PSH | ACK, &http);
        frames::modify_ipv4(&mut f, |p| p.set_total_len(len));
        s.ip(name, f[14..].to_vec());
        s.frame(name, f);
    }
    let mut lying6 = frames::udp(&f6, b"lie");
    lying6[14 + 4..14 + 6].copy_from_slice(&900u16.to_be_bytes());
    s.ip("lying_payload_len_v6", lying6[14..].to_vec());
    s.frame("lying_payload_len_v6", lying6);

    s
}

// ------------------------------------------------------------------ director seeds

/// Writes the `director` fuzz target's input format: four header bytes, then operations
/// (an opcode byte and its argument bytes). Indices refer to the target's pools:
/// `VIPS` 0-1 IPv4, 2-3 IPv6; `VPORTS` 80, 53, 0, 443; `RIPS` 0-2 IPv4, 3-5 IPv6;
/// `RPORTS` 80, 8080, 53, 0; frame endpoints `POOL` 0-2 clients, 3-4 VIPs, 5-6 RIPs,
/// 7 a local address; `PORTS` 1024, 1025, 40000, 80, 53, 443, 8080, 0.
struct Ops(Vec<u8>);

mod sched {
    pub const RR: u8 = 0;
    pub const WRR: u8 = 1;
    pub const LC: u8 = 2;
    pub const WLC: u8 = 3;
    pub const SED: u8 = 4;
    pub const DH: u8 = 6;
    pub const SH: u8 = 7;
    pub const LBLC: u8 = 8;
    pub const LBLCR: u8 = 9;
    pub const MH: u8 = 10;
    pub const FO: u8 = 11;
    pub const OVF: u8 = 12;
    pub const TWOS: u8 = 13;
}

const MASQ: u8 = 0;
const DROUTE: u8 = 1;
const TUNNEL: u8 = 2;
const FULLNAT: u8 = 3;

/// Service flags: persistence, one-packet, scheduler fallback / port.
const PERSIST: u8 = 4;
const ONE_PACKET: u8 = 8;
const FALLBACK: u8 = 1;
const HASH_PORT: u8 = 2;

/// Frame kinds of `Ops::packet`: family bit, then TCP / UDP / ICMP error.
const K_TCP4: u8 = 0;
const K_TCP6: u8 = 1;
const K_UDP4: u8 = 2;
const K_UDP6: u8 = 3;
const K_ICMP4: u8 = 4;
/// Frame kinds of `Ops::conn`: client -> virtual, the real server's reply, ICMP errors
/// on the client side and on the real-server side.
const C_IN: u8 = 0;
const C_REPLY: u8 = 1;
const C_ICMP_CLIENT: u8 = 2;
const C_ICMP_SERVER: u8 = 3;
/// Pool indices.
const CLIENT0: u8 = 0;
const CLIENT1: u8 = 1;
const CLIENT_OTHER_NET: u8 = 2;
const VIP0: u8 = 3;
const VIP1: u8 = 4;
/// `PORTS` indices.
const P1024: u8 = 0;
const P1025: u8 = 1;
const P40000: u8 = 2;
const P80: u8 = 3;
const P53: u8 = 4;
const P443: u8 = 5;
/// Rx bytes: fwmark 1; 64 bytes of headroom.
const RX_MARK1: u8 = 1;
const RX_HEADROOM: u8 = 3 << 2;
/// Shape bytes: DF; a VLAN tag.
const DF: u8 = 0x10;
const VLAN: u8 = 0x01;

/// A service key byte: UDP, `VIPS[vip]`, `VPORTS[port]`.
fn key(udp: bool, vip: u8, port: u8) -> u8 {
    u8::from(udp) | vip << 1 | port << 3
}

/// An fwmark service key byte.
fn mark_key(mark: u8, v6: bool) -> u8 {
    0x80 | (mark - 1) | u8::from(v6) << 1
}

/// A real-server byte: `RIPS[rip]`, `RPORTS[port]`.
fn rs(rip: u8, port: u8) -> u8 {
    rip | port << 4
}

impl Ops {
    /// Switches byte (expire_nodest_conn 1, expire_quiescent_template 2, sloppy_tcp 4,
    /// secure_tcp 8, conn_reuse_mode in bits 6-7), sweep budget, victim budget, MTU
    /// index (0: 1500).
    fn new(switches: u8) -> Ops {
        Ops(vec![switches, 4, 64, 0])
    }

    fn op(mut self, bytes: &[u8]) -> Ops {
        self.0.extend_from_slice(bytes);
        self
    }

    fn add_service(self, key: u8, sched: u8, flags: u8, timeout_4s: u8, prefix: u8) -> Ops {
        self.op(&[0, key, sched, flags, timeout_4s, prefix])
    }

    fn edit_service(self, key: u8, sched: u8, flags: u8, timeout_4s: u8, prefix: u8) -> Ops {
        self.op(&[1, key, sched, flags, timeout_4s, prefix])
    }

    fn delete_service(self, key: u8) -> Ops {
        self.op(&[2, key])
    }

    fn add_dest(self, key: u8, rs: u8, method: u8, weight: u8) -> Ops {
        self.op(&[3, key, rs, method, weight, 0])
    }

    fn edit_dest(self, key: u8, rs: u8, method: u8, weight: u8, thresholds: u8) -> Ops {
        self.op(&[4, key, rs, method, weight, thresholds])
    }

    fn delete_dest(self, key: u8, rs: u8) -> Ops {
        self.op(&[5, key, rs])
    }

    /// `LADDRS`: 0-1 IPv4, 2-3 IPv6.
    fn add_laddr(self, i: u8) -> Ops {
        self.op(&[6, i])
    }

    fn zero_all(self) -> Ops {
        self.op(&[7, 0])
    }

    fn clear(self) -> Ops {
        self.op(&[8])
    }

    fn set_timeouts_4s(self, tcp: u8, tcpfin: u8, udp: u8) -> Ops {
        self.op(&[9, tcp, tcpfin, udp])
    }

    fn advance_secs(self, s: u8) -> Ops {
        self.op(&[10, 2, s])
    }

    fn advance_mins(self, m: u8) -> Ops {
        self.op(&[10, 3, m])
    }

    fn set_config(self, switches: u8, mtu_index: u8) -> Ops {
        self.op(&[11, switches, mtu_index])
    }

    /// A frame `src:sp -> dst:dp` of `kind` (for an ICMP error: from `src` to `dst`,
    /// quoting `dst:dp -> src:sp`, TCP).
    #[allow(clippy::too_many_arguments)]
    fn packet(
        self,
        kind: u8,
        src: u8,
        dst: u8,
        sp: u8,
        dp: u8,
        flags: u8,
        len: u8,
        shape: u8,
        rx: u8,
    ) -> Ops {
        self.op(&[12, kind, src, dst, sp, dp, flags, len, 0, shape, rx])
    }

    /// A frame of the `n`-th connection in the tables.
    fn conn(self, n: u8, kind: u8, flags: u8, len: u8, rx: u8) -> Ops {
        self.op(&[13, n, kind, flags, len, 0, 0, rx])
    }

    fn raw(self, frame: &[u8]) -> Ops {
        let len = u16::try_from(frame.len()).unwrap();
        self.op(&[14, 0]).op(&len.to_be_bytes()).op(frame)
    }

    fn maintain(self, budget: u8) -> Ops {
        self.op(&[15, budget])
    }

    /// The TCP handshake, a request, its answer and the teardown of the only
    /// connection, client `src:sp` to `vip:dp`, with replies when `replies` (NAT,
    /// FULLNAT; DR and TUN replies bypass the director).
    #[allow(clippy::too_many_arguments)]
    fn tcp_session(self, kind: u8, src: u8, vip: u8, sp: u8, dp: u8, replies: bool, rx: u8) -> Ops {
        let mut o = self.packet(kind, src, vip, sp, dp, SYN, 0, 0, rx);
        if replies {
            o = o.conn(0, C_REPLY, SYN | ACK, 0, 0);
        }
        o = o.packet(kind, src, vip, sp, dp, ACK, 0, 0, rx).packet(
            kind,
            src,
            vip,
            sp,
            dp,
            PSH | ACK,
            37,
            0,
            rx,
        );
        if replies {
            o = o.conn(0, C_REPLY, PSH | ACK, 100, 0);
        }
        o = o.packet(kind, src, vip, sp, dp, FIN | ACK, 0, 0, rx);
        if replies {
            o = o.conn(0, C_REPLY, FIN | ACK, 0, 0);
        }
        o.packet(kind, src, vip, sp, dp, ACK, 0, 0, rx)
    }
}

fn director_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |name: &str, ops: Ops| out.push((name.to_string(), ops.0));
    let http4 = key(false, 0, 0); // TCP 10.0.0.1:80
    let http6 = key(false, 2, 0); // TCP [2001:db8::1]:80
    let dns4 = key(true, 0, 1); // UDP 10.0.0.1:53
    let dns6 = key(true, 2, 1); // UDP [2001:db8::1]:53

    // NAT, TCP over IPv4: handshake, data, replies, teardown, ICMP errors, expiry.
    add(
        "nat_tcp_v4",
        Ops::new(0)
            .add_service(http4, sched::WLC, 0, 0, 0)
            .add_dest(http4, rs(0, 1), MASQ, 1)
            .add_dest(http4, rs(1, 1), MASQ, 2)
            .tcp_session(K_TCP4, CLIENT0, VIP0, P1024, P80, true, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P40000, P80, SYN, 0, VLAN, 0)
            .conn(0, C_IN, SYN, 0, 0)
            .conn(0, C_ICMP_CLIENT, PSH | ACK, 20, 0)
            .conn(0, C_ICMP_SERVER, PSH | ACK, 20, 0)
            .advance_mins(2)
            .maintain(255)
            .zero_all(),
    );
    // NAT, TCP over IPv6, with the secure TCP state table.
    add(
        "nat_tcp_v6_secure",
        Ops::new(8)
            .add_service(http6, sched::RR, 0, 0, 0)
            .add_dest(http6, rs(3, 1), MASQ, 1)
            .add_dest(http6, rs(4, 1), MASQ, 1)
            .tcp_session(K_TCP6, CLIENT0, VIP0, P1025, P80, true, 0),
    );
    // NAT, UDP over IPv6 and IPv4: datagrams, replies, ICMP errors from both sides.
    add(
        "nat_udp",
        Ops::new(0)
            .add_service(dns6, sched::SED, 0, 0, 0)
            .add_dest(dns6, rs(3, 2), MASQ, 1)
            .add_dest(dns6, rs(4, 2), MASQ, 3)
            .add_service(dns4, sched::WRR, 0, 0, 0)
            .add_dest(dns4, rs(0, 2), MASQ, 2)
            .add_dest(dns4, rs(1, 2), MASQ, 1)
            .packet(K_UDP6, CLIENT0, VIP0, P40000, P53, 0, 30, 0, 0)
            .conn(0, C_REPLY, 0, 60, 0)
            .packet(K_UDP4, CLIENT0, VIP0, P40000, P53, 0, 30, 0, 0)
            .packet(K_UDP4, CLIENT1, VIP0, P1024, P53, 0, 30, 0, 0)
            .conn(0, C_REPLY, 0, 90, 0)
            .conn(1, C_ICMP_CLIENT, 1, 20, 0)
            .conn(2, C_ICMP_SERVER, 1, 20, 0)
            .set_timeouts_4s(0, 0, 2)
            .advance_secs(10)
            .maintain(64),
    );
    // FULLNAT over both families: local addresses, replies to them, ICMP errors.
    add(
        "fullnat",
        Ops::new(0)
            .add_laddr(0)
            .add_laddr(2)
            .add_service(http4, sched::RR, 0, 0, 0)
            .add_dest(http4, rs(0, 1), FULLNAT, 1)
            .add_service(http6, sched::WLC, 0, 0, 0)
            .add_dest(http6, rs(3, 1), FULLNAT, 1)
            .tcp_session(K_TCP4, CLIENT0, VIP0, P1024, P80, true, 0)
            .packet(K_TCP6, CLIENT1, VIP0, P1025, P80, SYN, 0, 0, 0)
            .conn(1, C_REPLY, SYN | ACK, 0, 0)
            .conn(1, C_ICMP_CLIENT, ACK, 20, 0)
            .conn(1, C_ICMP_SERVER, ACK, 20, 0),
    );
    // Direct routing, with sh; an ICMP error from the client side.
    add(
        "droute",
        Ops::new(0)
            .add_service(key(false, 1, 3), sched::SH, FALLBACK | HASH_PORT, 0, 0)
            .add_dest(key(false, 1, 3), rs(0, 0), DROUTE, 1)
            .add_dest(key(false, 1, 3), rs(1, 0), DROUTE, 1)
            .tcp_session(K_TCP4, CLIENT0, VIP1, P40000, P443, false, 0)
            .packet(K_ICMP4, CLIENT0, VIP1, P40000, P443, 0, 16, 0, 0),
    );
    // IP-in-IP: 4in4 and 4in6 from an IPv4 service, 6in6 and 6in4 from an IPv6 one;
    // headroom or not; a full-size packet with DF turns into "fragmentation needed".
    add(
        "tunnel",
        Ops::new(0)
            .add_service(http4, sched::RR, 0, 0, 0)
            .add_dest(http4, rs(0, 0), TUNNEL, 1)
            .add_dest(http4, rs(3, 0), TUNNEL, 1)
            .add_service(http6, sched::RR, 0, 0, 0)
            .add_dest(http6, rs(4, 0), TUNNEL, 1)
            .add_dest(http6, rs(1, 0), TUNNEL, 1)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, SYN, 0, 0, RX_HEADROOM)
            .packet(K_TCP4, CLIENT1, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(
                K_TCP4,
                CLIENT0,
                VIP0,
                P1024,
                P80,
                ACK,
                0x80 | 93,
                DF,
                RX_HEADROOM,
            )
            .packet(K_TCP6, CLIENT0, VIP0, P1024, P80, SYN, 0, 0, RX_HEADROOM)
            .packet(K_TCP6, CLIENT1, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(K_TCP6, CLIENT1, VIP0, P1024, P80, ACK, 0x80 | 90, 0, 0),
    );
    // Persistence: a port-0 service with a /24 mask; clients of one /24 stick to one
    // real server across ports; templates outlive their connections, then expire. An
    // fwmark service with persistence too.
    let any4 = key(false, 0, 2);
    add(
        "persistence",
        Ops::new(0)
            .add_service(any4, sched::RR, PERSIST, 75, 24)
            .add_dest(any4, rs(0, 1), MASQ, 1)
            .add_dest(any4, rs(1, 1), MASQ, 1)
            .add_dest(any4, rs(2, 1), MASQ, 1)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P1025, P443, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT_OTHER_NET, VIP0, P1024, P80, SYN, 0, 0, 0)
            .conn(0, C_REPLY, SYN | ACK, 0, 0)
            .advance_mins(3)
            .maintain(255)
            .packet(K_TCP4, CLIENT0, VIP0, P40000, P80, SYN, 0, 0, 0)
            .edit_dest(any4, rs(0, 1), MASQ, 0, 0)
            .set_config(2, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P40000, P80, SYN, 0, 0, 0)
            .advance_mins(10)
            .maintain(255)
            .add_service(mark_key(1, false), sched::WLC, PERSIST, 30, 32)
            .add_dest(mark_key(1, false), rs(2, 0), MASQ, 1)
            .packet(K_TCP4, CLIENT0, VIP1, P1024, P443, SYN, 0, 0, RX_MARK1)
            .packet(K_UDP4, CLIENT0, VIP1, P1024, P53, 0, 8, 0, RX_MARK1),
    );
    // The schedulers with table storage (mh, lblc, lblcr) in the three slots that have
    // it, a fourth service without; then edits between schedulers, removals and clear.
    let https4 = key(false, 0, 3);
    let http4b = key(false, 1, 0);
    add(
        "schedulers",
        Ops::new(0)
            .add_service(http4, sched::MH, FALLBACK | HASH_PORT, 0, 0)
            .add_service(https4, sched::LBLC, 0, 0, 0)
            .add_service(http4b, sched::LBLCR, 0, 0, 0)
            .add_service(http6, sched::TWOS, 0, 0, 0)
            .add_dest(http4, rs(0, 1), MASQ, 1)
            .add_dest(http4, rs(1, 1), MASQ, 2)
            .add_dest(https4, rs(0, 1), MASQ, 1)
            .add_dest(https4, rs(2, 1), DROUTE, 1)
            .add_dest(http4b, rs(1, 0), MASQ, 1)
            .add_dest(http4b, rs(2, 0), MASQ, 3)
            .add_dest(http6, rs(3, 0), MASQ, 1)
            .add_dest(http6, rs(5, 0), MASQ, 4)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P1024, P443, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT0, VIP1, P1025, P80, SYN, 0, 0, 0)
            .packet(K_TCP6, CLIENT0, VIP0, P1025, P80, SYN, 0, 0, 0)
            .edit_service(http4, sched::LBLCR, 0, 0, 0)
            .edit_service(http4b, sched::MH, 0, 0, 0)
            .edit_service(http6, sched::MH, 0, 0, 0)
            .edit_service(https4, sched::OVF, 0, 0, 0)
            .edit_dest(http4, rs(1, 1), MASQ, 5, 0x21)
            .delete_dest(http4, rs(0, 1))
            .packet(K_TCP4, CLIENT1, VIP0, P40000, P80, SYN, 0, 0, 0)
            .edit_service(http4, sched::FO, 0, 0, 0)
            .edit_service(http4b, sched::DH, 0, 0, 0)
            .packet(K_TCP4, CLIENT1, VIP1, P40000, P80, SYN, 0, 0, 0)
            .delete_service(https4)
            .clear()
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, ACK, 0, 0, 0),
    );
    // One-packet UDP scheduling; a UDP fragment.
    add(
        "one_packet_udp",
        Ops::new(0)
            .add_service(dns4, sched::RR, ONE_PACKET, 0, 0)
            .add_dest(dns4, rs(0, 2), MASQ, 1)
            .add_dest(dns4, rs(1, 2), MASQ, 1)
            .packet(K_UDP4, CLIENT0, VIP0, P40000, P53, 0, 12, 0, 0)
            .packet(K_UDP4, CLIENT0, VIP0, P40000, P53, 0, 12, 0, 0)
            .packet(K_UDP4, CLIENT0, VIP0, P40000, P53, 0, 100, 0x04, 0),
    );
    // expire_nodest_conn and sloppy_tcp: a connection opened by an ACK; its real server
    // removed, then its next packet; a removed server added back.
    add(
        "nodest_sloppy",
        Ops::new(1 | 4)
            .add_service(http4, sched::LC, 0, 0, 0)
            .add_dest(http4, rs(0, 1), MASQ, 1)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, ACK, 10, 0, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P1024, P80, SYN, 0, 0, 0)
            .delete_dest(http4, rs(0, 1))
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, ACK, 10, 0, 0)
            .add_dest(http4, rs(0, 1), MASQ, 1)
            .packet(K_TCP4, CLIENT1, VIP0, P1024, P80, ACK, 10, 0, 0),
    );
    // A full IPv4 table: 4 services x 3 clients x 6 ports of SYNs, more than its 64
    // entries (embryonic victims make room). Each service has its own real server, so
    // the real-server-side keys differ.
    let mut full = Ops::new(0);
    let svcs = [
        (http4, rs(0, 1)),
        (https4, rs(1, 1)),
        (http4b, rs(2, 1)),
        (key(false, 1, 3), rs(0, 0)),
    ];
    for (k, dest) in svcs {
        full = full
            .add_service(k, sched::RR, 0, 0, 0)
            .add_dest(k, dest, MASQ, 1);
    }
    for (vip, dp) in [(VIP0, P80), (VIP0, P443), (VIP1, P80), (VIP1, P443)] {
        for c in [CLIENT0, CLIENT1, CLIENT_OTHER_NET] {
            for sp in [P1024, P1025, P40000, P80, P53, P443] {
                full = full.packet(K_TCP4, c, vip, sp, dp, SYN, 0, 0, 0);
            }
        }
    }
    add("table_full_v4", full);
    // Two NAT services sharing a real server: one client port to both gives two
    // connections with the same real-server-side key.
    add(
        "nat_shared_real_server",
        Ops::new(0)
            .add_service(http4, sched::RR, 0, 0, 0)
            .add_service(https4, sched::RR, 0, 0, 0)
            .add_dest(http4, rs(0, 1), MASQ, 1)
            .add_dest(https4, rs(0, 1), MASQ, 1)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT1, VIP0, P1024, P80, SYN, 0, 0, 0)
            .packet(K_TCP4, CLIENT0, VIP0, P1024, P443, SYN, 0, 0, 0)
            .conn(0, C_REPLY, SYN | ACK, 0, 0)
            .conn(1, C_REPLY, SYN | ACK, 0, 0),
    );
    // Not IP (an ARP request), then a malformed IPv4 header.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    add(
        "raw_frames",
        Ops::new(0)
            .add_service(http4, sched::RR, 0, 0, 0)
            .raw(&arp)
            .raw(&frames::tcp(&Flow::v4(), SYN, &[])[..30]),
    );
    out
}

/// Removes the regular files of `dir` (this program's earlier output) and creates it.
fn reset(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        for e in fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                fs::remove_file(e.path())?;
            }
        }
    }
    fs::create_dir_all(dir)
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds"),
        PathBuf::from,
    );
    let seeds = build();
    let mut count = 0;
    for (sub, items) in [
        ("frame", &seeds.frame),
        ("frame_bare", &seeds.frame),
        ("ip", &seeds.ip),
        ("l4", &seeds.l4),
    ] {
        let mut names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), items.len(), "duplicate seed names in {sub}/");
        let dir = root.join(sub);
        reset(&dir)?;
        for (name, bytes) in items.iter() {
            if sub == "frame" {
                // The three parameter variants (see the module docs).
                for mode in MODES {
                    let mut seed = params(mode).to_vec();
                    seed.extend_from_slice(bytes);
                    fs::write(dir.join(format!("{name}-m{mode:02x}")), seed)?;
                    count += 1;
                }
            } else {
                fs::write(dir.join(name), bytes)?;
                count += 1;
            }
        }
        let shown = fs::canonicalize(&dir)?;
        println!("{}: {} seeds", shown.display(), fs::read_dir(&dir)?.count());
    }
    let director = director_seeds();
    let dir = root.join("director");
    reset(&dir)?;
    for (name, bytes) in director.iter() {
        fs::write(dir.join(name), bytes)?;
        count += 1;
    }
    println!(
        "{}: {} seeds",
        fs::canonicalize(&dir)?.display(),
        director.len()
    );
    println!("{count} seed files written");
    Ok(())
}
