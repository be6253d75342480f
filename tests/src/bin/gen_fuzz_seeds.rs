//! Writes the seed corpora of `fuzz/smoke.sh`, built with `lvs_tests::frames` (smoltcp's
//! emitters). Deterministic: the same bytes on every run, and the directories hold
//! exactly what this program writes (it empties them first). `tests/fuzz_seeds.rs` checks
//! that the committed seeds are current.
//!
//! ```sh
//! cargo run -p lvs-tests --bin gen_fuzz_seeds         # writes <workspace>/fuzz/seeds
//! cargo run -p lvs-tests --bin gen_fuzz_seeds -- DIR  # writes DIR/{frame,frame_bare,ip,l4}
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
    println!("{count} seed files written");
    Ok(())
}
