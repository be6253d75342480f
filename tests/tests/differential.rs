//! Differential suite: every rewrite of `lvs_core::fwd`, checked against smoltcp.
//!
//! Each case builds its input with `lvs_tests::frames` (smoltcp's emitters), parses it
//! with `lvs_core::wire::FrameInfo`, applies the rewrite, and then:
//! - builds the frame the rewrite must produce, again from scratch with smoltcp's
//!   emitters (full checksums, never incremental), and compares byte for byte: every
//!   byte equal, except that a checksum field may hold the other one's-complement zero
//!   (0x0000 / 0xffff, both valid; never for UDP, where 0 means "no checksum");
//! - parses the output with smoltcp's views and checks every checksum (IPv4 header, TCP,
//!   UDP, ICMPv4, ICMPv6, and the datagram quoted in an ICMP error), the fields that
//!   had to change, and the payload against the input's.
//!
//! Plus `FrameInfo::parse` / `parse_ip` on arbitrary and mutated bytes: never a panic,
//! and agreement with smoltcp's views whenever they parse.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::fwd::icmp::{self as ficmp, IcmpRewrite};
use lvs_core::fwd::tun::{self, TunParams};
use lvs_core::fwd::{Endpoint, Error as FwdError, dr, fullnat, nat};
use lvs_core::wire::{EthernetAddress, Fragment, FrameInfo, IpVersion, L4Info};
use lvs_tests::frames::{self, CLIENT_MAC, DIRECTOR_MAC, Flow, IcmpError, REAL_MAC};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire as sw;

type TestResult = Result<(), TestCaseError>;

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, c) in b.chunks(16).enumerate() {
        let _ = write!(s, "\n{:04x}:", i * 16);
        for x in c {
            let _ = write!(s, " {x:02x}");
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// The model: what a test frame is made of.
// ---------------------------------------------------------------------------------------

/// The transport of a plain segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    /// TCP with these flags.
    Tcp(u8),
    /// UDP with a checksum.
    Udp,
    /// UDP over IPv4 with checksum 0.
    UdpNoCsum,
}

/// A TCP or UDP packet.
#[derive(Clone, Debug)]
struct Seg {
    flow: Flow,
    l4: L4,
    payload: Vec<u8>,
}

impl Seg {
    fn frame(&self) -> Vec<u8> {
        match self.l4 {
            L4::Tcp(f) => frames::tcp(&self.flow, f, &self.payload),
            L4::Udp => frames::udp(&self.flow, &self.payload),
            L4::UdpNoCsum => frames::udp_v4_no_checksum(&self.flow, &self.payload),
        }
    }

    fn with_flow(&self, flow: Flow) -> Seg {
        Seg {
            flow,
            ..self.clone()
        }
    }
}

/// An ICMP error quoting a segment.
#[derive(Clone, Debug)]
struct IcmpErr {
    src: IpAddr,
    dst: IpAddr,
    kind: IcmpError,
    quoted: Seg,
}

impl IcmpErr {
    fn frame(&self) -> Vec<u8> {
        frames::icmp_error(self.src, self.dst, self.kind, &self.quoted.frame())
    }
}

/// Anything the director may see.
#[derive(Clone, Debug)]
enum Body {
    Seg(Seg),
    Icmp(IcmpErr),
}

impl Body {
    fn frame(&self) -> Vec<u8> {
        match self {
            Body::Seg(s) => s.frame(),
            Body::Icmp(e) => e.frame(),
        }
    }
}

/// IP header fields that no L4 checksum covers, set after building.
#[derive(Clone, Copy, Debug)]
struct Tweak {
    tos: u8,
    ttl: u8,
    df: bool,
    ident: u16,
    flow_label: u32,
}

fn tweak_ip(ip: &mut [u8], t: &Tweak) {
    if ip[0] >> 4 == 4 {
        let mut p = sw::Ipv4Packet::new_unchecked(ip);
        p.set_dscp(t.tos >> 2);
        p.set_ecn(t.tos & 3);
        p.set_hop_limit(t.ttl);
        p.set_ident(t.ident);
        p.set_dont_frag(t.df);
        p.fill_checksum();
    } else {
        let mut p = sw::Ipv6Packet::new_unchecked(ip);
        p.set_traffic_class(t.tos);
        p.set_flow_label(t.flow_label & 0xf_ffff);
        p.set_hop_limit(t.ttl);
    }
}

/// What happens to a built frame before the director sees it.
#[derive(Clone, Debug)]
struct Wrap {
    tweak: Option<Tweak>,
    vlan: Option<u16>,
    /// Ethernet padding (bytes after the IP packet).
    pad: Vec<u8>,
}

impl Wrap {
    const NONE: Wrap = Wrap {
        tweak: None,
        vlan: None,
        pad: Vec::new(),
    };

    /// An untagged Ethernet frame → the frame the director sees.
    fn apply(&self, mut frame: Vec<u8>) -> Vec<u8> {
        if let Some(t) = &self.tweak {
            tweak_ip(&mut frame[14..], t);
        }
        let mut f = match self.vlan {
            Some(tci) => frames::with_vlan(&frame, tci),
            None => frame,
        };
        f.extend_from_slice(&self.pad);
        f
    }

    /// A bare IP packet → the bare packet the director sees (no tag).
    fn apply_ip(&self, mut ip: Vec<u8>) -> Vec<u8> {
        if let Some(t) = &self.tweak {
            tweak_ip(&mut ip, t);
        }
        ip.extend_from_slice(&self.pad);
        ip
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------

fn addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<[u8; 16]>()
            .prop_map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .boxed()
    } else {
        any::<[u8; 4]>()
            .prop_map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .boxed()
    }
}

fn endpoint(v6: bool) -> impl Strategy<Value = Endpoint> {
    (addr(v6), any::<u16>()).prop_map(|(a, p)| Endpoint::new(a, p))
}

fn flow(v6: bool) -> impl Strategy<Value = Flow> {
    (addr(v6), addr(v6), any::<u16>(), any::<u16>()).prop_map(|(src, dst, sport, dport)| Flow {
        src,
        dst,
        sport,
        dport,
    })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..1500)
}

fn l4(v6: bool) -> BoxedStrategy<L4> {
    if v6 {
        prop_oneof![any::<u8>().prop_map(L4::Tcp), Just(L4::Udp)].boxed()
    } else {
        prop_oneof![
            2 => any::<u8>().prop_map(L4::Tcp),
            1 => Just(L4::Udp),
            1 => Just(L4::UdpNoCsum),
        ]
        .boxed()
    }
}

fn seg(v6: bool) -> impl Strategy<Value = Seg> {
    (flow(v6), l4(v6), payload()).prop_map(|(flow, l4, payload)| Seg { flow, l4, payload })
}

/// A segment with at least 64 bytes of payload (to be fragmented).
fn long_seg(v6: bool) -> impl Strategy<Value = Seg> {
    (
        flow(v6),
        l4(v6),
        prop::collection::vec(any::<u8>(), 64..1500),
    )
        .prop_map(|(flow, l4, payload)| Seg { flow, l4, payload })
}

fn icmp_kind() -> impl Strategy<Value = IcmpError> {
    prop_oneof![
        Just(IcmpError::PortUnreachable),
        any::<u16>().prop_map(IcmpError::FragNeeded),
        Just(IcmpError::TimeExceeded),
    ]
}

fn icmp_err(v6: bool) -> impl Strategy<Value = IcmpErr> {
    (addr(v6), addr(v6), icmp_kind(), seg(v6)).prop_map(|(src, dst, kind, quoted)| IcmpErr {
        src,
        dst,
        kind,
        quoted,
    })
}

fn body(v6: bool) -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => seg(v6).prop_map(Body::Seg),
        1 => icmp_err(v6).prop_map(Body::Icmp),
    ]
}

fn tweak() -> impl Strategy<Value = Tweak> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        any::<u16>(),
        any::<u32>(),
    )
        .prop_map(|(tos, ttl, df, ident, flow_label)| Tweak {
            tos,
            ttl,
            df,
            ident,
            flow_label,
        })
}

fn wrap() -> impl Strategy<Value = Wrap> {
    (
        prop::option::of(tweak()),
        prop::option::of(any::<u16>()),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(tweak, vlan, pad)| Wrap { tweak, vlan, pad })
}

// ---------------------------------------------------------------------------------------
// smoltcp's reading of a frame, checksums verified.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SmolL4<'a> {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
        checksum: u16,
        payload: &'a [u8],
    },
    Icmp {
        msg_type: u8,
        code: u8,
        /// Bytes 4..8 (unused / MTU / pointer).
        rest: [u8; 4],
        quote: &'a [u8],
    },
    Other(&'a [u8]),
}

#[derive(Debug, Clone, Copy)]
struct SmolIp<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    /// The whole IP packet (length from its header).
    packet: &'a [u8],
    l4: SmolL4<'a>,
}

#[derive(Debug, Clone, Copy)]
struct SmolFrame<'a> {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlan: Option<u16>,
    ip: SmolIp<'a>,
}

fn smol_frame(frame: &[u8]) -> Result<SmolFrame<'_>, TestCaseError> {
    let eth = sw::EthernetFrame::new_checked(frame)
        .map_err(|e| fail(format!("smoltcp: ethernet: {e}")))?;
    let mut ethertype = u16::from(eth.ethertype());
    let mut rest = eth.payload();
    let mut vlan = None;
    if ethertype == frames::VLAN_TPID {
        if rest.len() < 4 {
            return Err(fail("smoltcp: truncated VLAN tag"));
        }
        vlan = Some(be16(rest, 0));
        ethertype = be16(rest, 2);
        rest = &rest[4..];
    }
    let ip = smol_ip(rest)?;
    let want = if ip.src.is_ipv4() { 0x0800 } else { 0x86dd };
    if ethertype != want {
        return Err(fail(format!(
            "EtherType {ethertype:#06x} for an IPv{} packet",
            if ip.src.is_ipv4() { 4 } else { 6 }
        )));
    }
    Ok(SmolFrame {
        dst_mac: eth.dst_addr().0,
        src_mac: eth.src_addr().0,
        vlan,
        ip,
    })
}

fn smol_ip(buf: &[u8]) -> Result<SmolIp<'_>, TestCaseError> {
    match buf.first().map(|b| b >> 4) {
        Some(4) => {
            let p = sw::Ipv4Packet::new_checked(buf)
                .map_err(|e| fail(format!("smoltcp: IPv4: {e}")))?;
            // Default capabilities: verifies the header checksum.
            let repr = sw::Ipv4Repr::parse(&p, &ChecksumCapabilities::default())
                .map_err(|e| fail(format!("smoltcp: IPv4 repr (checksum?): {e}")))?;
            let packet = &buf[..usize::from(p.total_len())];
            let header_len = usize::from(p.header_len());
            let (src, dst) = (IpAddr::V4(repr.src_addr), IpAddr::V4(repr.dst_addr));
            let protocol = u8::from(repr.next_header);
            let l4 = smol_l4(&packet[header_len..], src, dst, protocol)?;
            Ok(SmolIp {
                src,
                dst,
                protocol,
                packet,
                l4,
            })
        }
        Some(6) => {
            let p = sw::Ipv6Packet::new_checked(buf)
                .map_err(|e| fail(format!("smoltcp: IPv6: {e}")))?;
            let repr =
                sw::Ipv6Repr::parse(&p).map_err(|e| fail(format!("smoltcp: IPv6 repr: {e}")))?;
            let packet = &buf[..p.total_len()];
            let (src, dst) = (IpAddr::V6(repr.src_addr), IpAddr::V6(repr.dst_addr));
            let protocol = u8::from(repr.next_header);
            let l4 = smol_l4(&packet[40..], src, dst, protocol)?;
            Ok(SmolIp {
                src,
                dst,
                protocol,
                packet,
                l4,
            })
        }
        v => Err(fail(format!("smoltcp: IP version {v:?}"))),
    }
}

fn smol_l4(
    seg: &[u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
) -> Result<SmolL4<'_>, TestCaseError> {
    let (s, d) = (sw::IpAddress::from(src), sw::IpAddress::from(dst));
    Ok(match (protocol, src, dst) {
        (6, _, _) => {
            let t =
                sw::TcpPacket::new_checked(seg).map_err(|e| fail(format!("smoltcp: TCP: {e}")))?;
            if !t.verify_checksum(&s, &d) {
                return Err(fail("smoltcp: bad TCP checksum"));
            }
            SmolL4::Tcp {
                sport: t.src_port(),
                dport: t.dst_port(),
                flags: seg[13],
                payload: t.payload(),
            }
        }
        (17, _, _) => {
            let u =
                sw::UdpPacket::new_checked(seg).map_err(|e| fail(format!("smoltcp: UDP: {e}")))?;
            if usize::from(u.len()) != seg.len() {
                return Err(fail("UDP length differs from the IP payload length"));
            }
            let skip = src.is_ipv4() && u.checksum() == 0;
            if !skip && !u.verify_checksum(&s, &d) {
                return Err(fail(format!(
                    "smoltcp: bad UDP checksum {:#06x}",
                    u.checksum()
                )));
            }
            SmolL4::Udp {
                sport: u.src_port(),
                dport: u.dst_port(),
                checksum: u.checksum(),
                payload: u.payload(),
            }
        }
        (1, IpAddr::V4(_), _) => {
            let m = sw::Icmpv4Packet::new_checked(seg)
                .map_err(|e| fail(format!("smoltcp: ICMPv4: {e}")))?;
            if !m.verify_checksum() {
                return Err(fail("smoltcp: bad ICMPv4 checksum"));
            }
            SmolL4::Icmp {
                msg_type: u8::from(m.msg_type()),
                code: m.msg_code(),
                rest: [seg[4], seg[5], seg[6], seg[7]],
                quote: &seg[8..],
            }
        }
        (58, IpAddr::V6(s6), IpAddr::V6(d6)) => {
            let m = sw::Icmpv6Packet::new_checked(seg)
                .map_err(|e| fail(format!("smoltcp: ICMPv6: {e}")))?;
            if !m.verify_checksum(&s6, &d6) {
                return Err(fail("smoltcp: bad ICMPv6 checksum"));
            }
            if seg.len() < 8 {
                return Err(fail("ICMPv6 shorter than 8 bytes"));
            }
            SmolL4::Icmp {
                msg_type: u8::from(m.msg_type()),
                code: m.msg_code(),
                rest: [seg[4], seg[5], seg[6], seg[7]],
                quote: &seg[8..],
            }
        }
        _ => SmolL4::Other(seg),
    })
}

/// The datagram quoted in an ICMP error, as smoltcp reads it.
#[derive(Debug, Clone, Copy)]
struct SmolQuote<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    ports: Option<(u16, u16)>,
    /// The L4 part of the quote.
    l4: &'a [u8],
}

/// Reads a quote (no extension headers or options expected beyond IHL): verifies the
/// quoted IPv4 header checksum and, when the whole datagram is quoted, its L4 checksum.
fn smol_quote(q: &[u8]) -> Result<SmolQuote<'_>, TestCaseError> {
    let (src, dst, protocol, hl, total) = match q.first().map(|b| b >> 4) {
        Some(4) if q.len() >= 20 => {
            let p = sw::Ipv4Packet::new_unchecked(q);
            let hl = usize::from(p.header_len());
            if hl < 20 || q.len() < hl {
                return Err(fail("quoted IPv4 header truncated"));
            }
            if !p.verify_checksum() {
                return Err(fail("smoltcp: bad quoted IPv4 header checksum"));
            }
            (
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                u8::from(p.next_header()),
                hl,
                usize::from(p.total_len()),
            )
        }
        Some(6) if q.len() >= 40 => {
            let p = sw::Ipv6Packet::new_unchecked(q);
            (
                IpAddr::V6(p.src_addr()),
                IpAddr::V6(p.dst_addr()),
                u8::from(p.next_header()),
                40,
                p.total_len(),
            )
        }
        _ => return Err(fail("quote is not an IP header")),
    };
    let l4 = &q[hl..total.clamp(hl, q.len())];
    if q.len() >= total {
        // The whole datagram is quoted: its L4 checksum must verify too.
        smol_l4(l4, src, dst, protocol)?;
    }
    let ports = match protocol {
        6 | 17 if l4.len() >= 4 => Some((be16(l4, 0), be16(l4, 2))),
        _ => None,
    };
    Ok(SmolQuote {
        src,
        dst,
        protocol,
        ports,
        l4,
    })
}

// ---------------------------------------------------------------------------------------
// Byte comparison, checksum fields aside.
// ---------------------------------------------------------------------------------------

/// An lvs-core bug the byte comparison steps around, so that the proptests keep checking
/// everything else; `icmpv6_quoted_udp_checksum_is_never_zero` reports it.
/// Offsets of the checksum fields of an IP packet at `at` of `b` (a frame built here:
/// IPv4 without options, IPv6 without extension headers), the quote of an ICMP error
/// included. `(offset, is_udp)`.
fn checksum_fields(b: &[u8], at: usize, end: usize, quoted: bool, out: &mut Vec<(usize, bool)>) {
    if at + 20 > end {
        return;
    }
    let (hl, proto) = match b[at] >> 4 {
        4 => {
            out.push((at + 10, false));
            (usize::from(b[at] & 0x0f) * 4, b[at + 9])
        }
        _ if at + 40 <= end => (40, b[at + 6]),
        _ => return,
    };
    let l4 = at + hl;
    let field = |off: usize| (l4 + off + 2 <= end).then_some(l4 + off);
    match proto {
        6 => out.extend(field(16).map(|o| (o, false))),
        // A UDP checksum is never a computed zero, quoted or not.
        17 => out.extend(field(6).map(|o| (o, true))),
        1 | 58 if !quoted => {
            out.extend(field(2).map(|o| (o, false)));
            if l4 + 8 < end {
                checksum_fields(b, l4 + 8, end, true, out);
            }
        }
        _ => {}
    }
}

/// `out` must equal `expected` byte for byte, except that a checksum field may hold the
/// other one's-complement zero (not for UDP, where zero means "none").
fn assert_same(out: &[u8], expected: &[u8], l3: usize) -> TestResult {
    let mut fields = Vec::new();
    if l3 < expected.len() {
        let end = match expected[l3] >> 4 {
            4 => l3 + usize::from(be16(expected, l3 + 2)),
            _ => l3 + 40 + usize::from(be16(expected, l3 + 4)),
        };
        checksum_fields(expected, l3, end.min(expected.len()), false, &mut fields);
    }
    assert_same_fields(out, expected, &fields)
}

/// [`assert_same`] with the checksum fields given: `(offset, is_udp)`.
fn assert_same_fields(out: &[u8], expected: &[u8], fields: &[(usize, bool)]) -> TestResult {
    let diff = || format!("\n  got:{}\n  expected:{}", hex(out), hex(expected));
    if out.len() != expected.len() {
        return Err(fail(format!(
            "length {} != expected {}{}",
            out.len(),
            expected.len(),
            diff()
        )));
    }
    for i in 0..out.len() {
        if fields.iter().any(|&(o, _)| i == o || i == o + 1) {
            continue;
        }
        if out[i] != expected[i] {
            return Err(fail(format!(
                "byte {i:#x}: {:#04x} != expected {:#04x}{}",
                out[i],
                expected[i],
                diff()
            )));
        }
    }
    for &(o, udp) in fields {
        let (a, e) = (be16(out, o), be16(expected, o));
        let same = a == e || (!udp && matches!((a, e), (0, 0xffff) | (0xffff, 0)));
        if !same {
            return Err(fail(format!(
                "checksum at {o:#x}: {a:#06x} != expected {e:#06x}{}",
                diff()
            )));
        }
    }
    Ok(())
}

fn parse_input(bytes: &[u8], bare: bool) -> Result<FrameInfo, TestCaseError> {
    let r = if bare {
        FrameInfo::parse_ip(bytes)
    } else {
        FrameInfo::parse(bytes)
    };
    r.map_err(|e| {
        fail(format!(
            "FrameInfo::parse of a valid input: {e:?}{}",
            hex(bytes)
        ))
    })
}

// ---------------------------------------------------------------------------------------
// NAT and FULLNAT of TCP/UDP.
// ---------------------------------------------------------------------------------------

/// Applies `f` to `s` (wrapped by `w`) and checks the result is `s` readdressed to `new`.
fn check_tuple(
    s: &Seg,
    w: &Wrap,
    new: Flow,
    f: impl FnOnce(&mut [u8], &FrameInfo) -> Result<(), FwdError>,
) -> TestResult {
    let input = w.apply(s.frame());
    let info = parse_input(&input, false)?;
    prop_assert_eq!(info.vlan, w.vlan);
    let mut out = input.clone();
    f(&mut out, &info).map_err(|e| fail(format!("rewrite failed: {e:?}")))?;

    let expected = w.apply(s.with_flow(new).frame());
    assert_same(&out, &expected, info.l3_offset)?;

    let p = smol_frame(&out)?;
    prop_assert_eq!((p.src_mac, p.dst_mac), (CLIENT_MAC, DIRECTOR_MAC));
    prop_assert_eq!(p.vlan, w.vlan);
    prop_assert_eq!((p.ip.src, p.ip.dst), (new.src, new.dst));
    let in_l4 = smol_frame(&input)?.ip.l4;
    match (p.ip.l4, in_l4) {
        (
            SmolL4::Tcp {
                sport,
                dport,
                flags,
                payload,
            },
            SmolL4::Tcp {
                flags: f0,
                payload: p0,
                ..
            },
        ) => {
            prop_assert_eq!((sport, dport), (new.sport, new.dport));
            prop_assert_eq!(flags, f0);
            prop_assert_eq!(payload, p0);
        }
        (
            SmolL4::Udp {
                sport,
                dport,
                checksum,
                payload,
            },
            SmolL4::Udp {
                checksum: c0,
                payload: p0,
                ..
            },
        ) => {
            prop_assert_eq!((sport, dport), (new.sport, new.dport));
            prop_assert_eq!(checksum == 0, c0 == 0, "UDP checksum zero-ness changed");
            prop_assert_eq!(payload, p0);
        }
        (a, b) => return Err(fail(format!("L4 {a:?} from {b:?}"))),
    }
    prop_assert_eq!(
        &out[out.len() - w.pad.len()..],
        &w.pad[..],
        "padding changed"
    );
    Ok(())
}

fn with_src(f: Flow, e: Endpoint) -> Flow {
    Flow {
        src: e.addr,
        sport: e.port,
        ..f
    }
}

fn with_dst(f: Flow, e: Endpoint) -> Flow {
    Flow {
        dst: e.addr,
        dport: e.port,
        ..f
    }
}

proptest! {
    #[test]
    fn nat_inbound((s, w, real) in any::<bool>().prop_flat_map(|v6| (seg(v6), wrap(), endpoint(v6)))) {
        check_tuple(&s, &w, with_dst(s.flow, real), |f, i| nat::inbound(f, i, real))?;
    }

    #[test]
    fn nat_outbound((s, w, virt) in any::<bool>().prop_flat_map(|v6| (seg(v6), wrap(), endpoint(v6)))) {
        check_tuple(&s, &w, with_src(s.flow, virt), |f, i| nat::outbound(f, i, virt))?;
    }

    #[test]
    fn fullnat_inbound((s, w, local, real) in any::<bool>().prop_flat_map(|v6| (seg(v6), wrap(), endpoint(v6), endpoint(v6)))) {
        let new = with_dst(with_src(s.flow, local), real);
        check_tuple(&s, &w, new, |f, i| fullnat::inbound(f, i, local, real))?;
    }

    #[test]
    fn fullnat_outbound((s, w, virt, client) in any::<bool>().prop_flat_map(|v6| (seg(v6), wrap(), endpoint(v6), endpoint(v6)))) {
        let new = with_dst(with_src(s.flow, virt), client);
        check_tuple(&s, &w, new, |f, i| fullnat::outbound(f, i, virt, client))?;
    }
}

// ---------------------------------------------------------------------------------------
// ICMP errors: NAT, FULLNAT, and the general rewrite.
// ---------------------------------------------------------------------------------------

/// Applies `f` to the error `e` (wrapped by `w`) and checks the result is `e` with the
/// changes `rw` describes, built from scratch.
fn check_icmp(
    e: &IcmpErr,
    w: &Wrap,
    rw: &IcmpRewrite,
    f: impl FnOnce(&mut [u8], &FrameInfo) -> Result<(), FwdError>,
) -> TestResult {
    let input = w.apply(e.frame());
    let info = parse_input(&input, false)?;
    match info.l4 {
        L4Info::Icmp(i) if i.is_error && i.inner.is_some() => {}
        other => return Err(fail(format!("not parsed as an ICMP error: {other:?}"))),
    }
    let mut out = input.clone();
    f(&mut out, &info).map_err(|err| fail(format!("rewrite failed: {err:?}")))?;

    let q = e.quoted.flow;
    let new_q = Flow {
        src: rw.inner_src.map_or(q.src, |x| x.addr),
        sport: rw.inner_src.map_or(q.sport, |x| x.port),
        dst: rw.inner_dst.map_or(q.dst, |x| x.addr),
        dport: rw.inner_dst.map_or(q.dport, |x| x.port),
    };
    let want = IcmpErr {
        src: rw.outer_src.unwrap_or(e.src),
        dst: rw.outer_dst.unwrap_or(e.dst),
        kind: e.kind,
        quoted: e.quoted.with_flow(new_q),
    };
    let expected = w.apply(want.frame());
    assert_same(&out, &expected, info.l3_offset)?;

    let p = smol_frame(&out)?;
    let p0 = smol_frame(&input)?;
    prop_assert_eq!((p.ip.src, p.ip.dst), (want.src, want.dst));
    let (
        SmolL4::Icmp {
            msg_type,
            code,
            rest,
            quote,
        },
        SmolL4::Icmp {
            msg_type: t0,
            code: c0,
            rest: r0,
            quote: q0,
        },
    ) = (p.ip.l4, p0.ip.l4)
    else {
        return Err(fail("not ICMP after the rewrite"));
    };
    prop_assert_eq!((msg_type, code, rest), (t0, c0, r0));
    prop_assert_eq!(quote.len(), q0.len());
    let sq = smol_quote(quote)?;
    let sq0 = smol_quote(q0)?;
    prop_assert_eq!((sq.src, sq.dst), (new_q.src, new_q.dst));
    prop_assert_eq!(sq.protocol, sq0.protocol);
    prop_assert_eq!(sq.ports, Some((new_q.sport, new_q.dport)));
    // Past the ports and the L4 checksum, the quoted segment is untouched.
    let skip = if sq.protocol == 6 { 18 } else { 8 };
    if sq.l4.len() > skip {
        prop_assert_eq!(&sq.l4[skip..], &sq0.l4[skip..]);
    }
    if sq.protocol == 17 && e.quoted.l4 == L4::UdpNoCsum {
        prop_assert_eq!(be16(sq.l4, 6), 0, "quoted zero UDP checksum changed");
    }
    Ok(())
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

proptest! {
    #[test]
    fn nat_inbound_icmp((e, w, real) in any::<bool>().prop_flat_map(|v6| (icmp_err(v6), wrap(), endpoint(v6)))) {
        // The client side reports about VIP:vport → CIP:cport; the real server must see
        // its own RIP:rport → CIP:cport.
        let rw = IcmpRewrite { outer_dst: Some(real.addr), inner_src: Some(real), ..IcmpRewrite::NONE };
        check_icmp(&e, &w, &rw, |f, i| nat::inbound_icmp(f, i, real))?;
    }

    #[test]
    fn nat_outbound_icmp((e, w, virt) in any::<bool>().prop_flat_map(|v6| (icmp_err(v6), wrap(), endpoint(v6)))) {
        let rw = IcmpRewrite { outer_src: Some(virt.addr), inner_dst: Some(virt), ..IcmpRewrite::NONE };
        check_icmp(&e, &w, &rw, |f, i| nat::outbound_icmp(f, i, virt))?;
    }

    #[test]
    fn fullnat_inbound_icmp((e, w, local, real) in any::<bool>().prop_flat_map(|v6| (icmp_err(v6), wrap(), endpoint(v6), endpoint(v6)))) {
        let rw = IcmpRewrite {
            outer_src: Some(local.addr),
            outer_dst: Some(real.addr),
            inner_src: Some(real),
            inner_dst: Some(local),
        };
        check_icmp(&e, &w, &rw, |f, i| fullnat::inbound_icmp(f, i, local, real))?;
    }

    #[test]
    fn fullnat_outbound_icmp((e, w, virt, client) in any::<bool>().prop_flat_map(|v6| (icmp_err(v6), wrap(), endpoint(v6), endpoint(v6)))) {
        let rw = IcmpRewrite {
            outer_src: Some(virt.addr),
            outer_dst: Some(client.addr),
            inner_src: Some(client),
            inner_dst: Some(virt),
        };
        check_icmp(&e, &w, &rw, |f, i| fullnat::outbound_icmp(f, i, virt, client))?;
    }

    #[test]
    fn icmp_rewrite_error_any_subset(
        (e, w, rw) in any::<bool>().prop_flat_map(|v6| (
            icmp_err(v6),
            wrap(),
            (opt(addr(v6)), opt(addr(v6)), opt(endpoint(v6)), opt(endpoint(v6))).prop_map(
                |(outer_src, outer_dst, inner_src, inner_dst)| IcmpRewrite { outer_src, outer_dst, inner_src, inner_dst },
            ),
        ))
    ) {
        check_icmp(&e, &w, &rw, |f, i| ficmp::rewrite_error(f, i, &rw))?;
    }
}

// ---------------------------------------------------------------------------------------
// DR.
// ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn dr_forward(
        (b, w) in any::<bool>().prop_flat_map(|v6| (body(v6), wrap())),
        own in any::<[u8; 6]>(),
        real in any::<[u8; 6]>(),
    ) {
        let input = w.apply(b.frame());
        let mut out = input.clone();
        dr::forward(&mut out, EthernetAddress(own), EthernetAddress(real))
            .map_err(|e| fail(format!("{e:?}")))?;
        let mut expected = input.clone();
        {
            let mut eth = sw::EthernetFrame::new_unchecked(&mut expected[..]);
            eth.set_src_addr(sw::EthernetAddress(own));
            eth.set_dst_addr(sw::EthernetAddress(real));
        }
        prop_assert_eq!(&out, &expected);
        let p = smol_frame(&out)?;
        prop_assert_eq!((p.src_mac, p.dst_mac), (own, real));
        prop_assert_eq!(p.vlan, w.vlan);
    }
}

// ---------------------------------------------------------------------------------------
// TUN.
// ---------------------------------------------------------------------------------------

/// ECN on encapsulation as Linux's `INET_ECN_encapsulate`: CE inside → ECT(0) outside.
fn outer_tos(inner: u8) -> u8 {
    if inner & 3 == 3 {
        (inner & !3) | 2
    } else {
        inner
    }
}

/// The encapsulated frame `encap` must produce from `input` (IP packet at `l2`), built
/// with smoltcp: the L2 header with the outer EtherType, then the outer header.
fn expected_encap(input: &[u8], l2: usize, p: &TunParams) -> Vec<u8> {
    let inner = inner_ip(input, l2);
    let (tos, ttl, df) = if inner[0] >> 4 == 4 {
        let q = sw::Ipv4Packet::new_unchecked(inner);
        ((q.dscp() << 2) | q.ecn(), q.hop_limit(), q.dont_frag())
    } else {
        let q = sw::Ipv6Packet::new_unchecked(inner);
        (q.traffic_class(), q.hop_limit(), true)
    };
    let mut outer = frames::ipip(p.src, p.dst, inner);
    let tos = outer_tos(tos);
    if p.src.is_ipv4() {
        let mut o = sw::Ipv4Packet::new_unchecked(&mut outer[..]);
        o.set_dscp(tos >> 2);
        o.set_ecn(tos & 3);
        o.set_ident(p.ident);
        o.clear_flags();
        o.set_dont_frag(df);
        o.set_hop_limit(ttl);
        o.fill_checksum();
    } else {
        let mut o = sw::Ipv6Packet::new_unchecked(&mut outer[..]);
        o.set_traffic_class(tos);
        o.set_flow_label(p.flow_label & 0xf_ffff);
        o.set_hop_limit(ttl);
    }
    let mut out = input[..l2].to_vec();
    if l2 > 0 {
        let et: u16 = if p.src.is_ipv4() { 0x0800 } else { 0x86dd };
        out[l2 - 2..l2].copy_from_slice(&et.to_be_bytes());
    }
    out.extend_from_slice(&outer);
    out
}

/// The IP packet at `l2` of `b`, Ethernet padding excluded.
fn inner_ip(b: &[u8], l2: usize) -> &[u8] {
    let ip = &b[l2..];
    let len = if ip[0] >> 4 == 4 {
        usize::from(be16(ip, 2))
    } else {
        40 + usize::from(be16(ip, 4))
    };
    &ip[..len]
}

#[derive(Clone, Copy, Debug)]
enum Room {
    /// Headroom of the outer header's length plus this.
    Head(usize),
    /// This much headroom (less than the outer header), tailroom for the outer header.
    Tail(usize),
    /// Neither (unless the padding gives the tailroom).
    None(usize),
}

fn room() -> impl Strategy<Value = Room> {
    prop_oneof![
        (0usize..16).prop_map(Room::Head),
        (0usize..20).prop_map(Room::Tail),
        (0usize..20).prop_map(Room::None),
    ]
}

fn tun_params(outer_v6: bool) -> impl Strategy<Value = TunParams> {
    (
        addr(outer_v6),
        addr(outer_v6),
        any::<u16>(),
        any::<u32>(),
        prop_oneof![Just(u16::MAX), Just(9000u16), 0u16..1700],
    )
        .prop_map(|(src, dst, ident, flow_label, mtu)| TunParams {
            src,
            dst,
            ident,
            flow_label,
            mtu,
        })
}

/// Input for TUN and ICMP replies: a frame, or (`bare`) the bare IP packet.
fn director_input(b: &Body, w: &Wrap, bare: bool) -> Vec<u8> {
    if bare {
        w.apply_ip(frames::ip_of(&b.frame()).to_vec())
    } else {
        w.apply(b.frame())
    }
}

/// `decap`'s FrameInfo must be what `FrameInfo::parse` says of the frame it returns.
fn check_decap_info(dec: &FrameInfo, reparsed: &FrameInfo) -> TestResult {
    prop_assert_eq!(
        *dec,
        *reparsed,
        "decap's FrameInfo differs from a parse of its output"
    );
    Ok(())
}

proptest! {
    #[test]
    fn tun_encap_then_decap(
        (b, w, p) in (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, ov6)| (body(v6), wrap(), tun_params(ov6))),
        bare in any::<bool>(),
        room in room(),
        junk in any::<u8>(),
    ) {
        let input = director_input(&b, &w, bare);
        let info = parse_input(&input, bare)?;
        let l2 = info.l3_offset;
        prop_assert_eq!(l2, if bare { 0 } else if w.vlan.is_some() { 18 } else { 14 });
        let olen = if p.src.is_ipv4() { 20 } else { 40 };
        let inner_len = info.ip.total_len;
        let (head, tail) = match room {
            Room::Head(x) => (olen + x, x),
            Room::Tail(x) => (x % olen, olen + x),
            Room::None(x) => (x % olen, (olen - 1).saturating_sub(w.pad.len())),
        };
        let mut buf = vec![junk; head];
        buf.extend_from_slice(&input);
        buf.extend(std::iter::repeat_n(junk, tail));
        let original = buf.clone();
        let frame = head..head + input.len();

        let r = tun::encap(&mut buf, frame.clone(), &info, &p);
        if inner_len + olen > usize::from(p.mtu) {
            let want = if info.ip.dont_fragment {
                FwdError::FragNeeded { mtu: p.mtu.saturating_sub(olen as u16) }
            } else {
                FwdError::TooBig
            };
            prop_assert_eq!(r, Err(want));
            prop_assert!(buf == original, "a refused encap touched the buffer");
            return Ok(());
        }
        let expected = expected_encap(&input, l2, &p);
        let fits_tail = head + l2 + olen + inner_len <= buf.len();
        let start = if head >= olen {
            head - olen
        } else if fits_tail {
            head
        } else {
            prop_assert_eq!(r, Err(FwdError::NoRoom));
            prop_assert!(buf == original, "a refused encap touched the buffer");
            return Ok(());
        };
        let out = r.map_err(|e| fail(format!("encap: {e:?}")))?;
        prop_assert_eq!(out.clone(), start..start + expected.len());
        assert_same(&buf[out.clone()], &expected, l2)?;
        prop_assert!(buf[..start] == original[..start], "encap wrote before its output");

        // smoltcp's reading of the outer header.
        let outer = if bare {
            smol_ip(&buf[out.clone()])?
        } else {
            let f = smol_frame(&buf[out.clone()])?;
            prop_assert_eq!(f.vlan, w.vlan);
            prop_assert_eq!((f.src_mac, f.dst_mac), (CLIENT_MAC, DIRECTOR_MAC));
            f.ip
        };
        prop_assert_eq!((outer.src, outer.dst), (p.src, p.dst));
        prop_assert_eq!(outer.protocol, if info.ip.version == IpVersion::V4 { 4 } else { 41 });
        let SmolL4::Other(carried) = outer.l4 else {
            return Err(fail("outer protocol read as an L4 protocol"));
        };
        prop_assert_eq!(carried, inner_ip(&input, l2));
        prop_assert!(outer.packet.len() <= usize::from(p.mtu));

        // decap(encap(x)) == x, byte for byte (padding dropped), and the same FrameInfo.
        let enc_info = parse_input(&buf[out.clone()], bare)?;
        prop_assert_eq!(enc_info.l4, L4Info::IpIp(info.ip.version));
        let inner_range = tun::inner_packet(&buf[out.clone()], &enc_info)
            .map_err(|e| fail(format!("inner_packet: {e:?}")))?;
        prop_assert_eq!(&buf[out.start..][inner_range], inner_ip(&input, l2));
        let (dec, dec_info) = tun::decap(&mut buf, out.clone(), &enc_info)
            .map_err(|e| fail(format!("decap: {e:?}")))?;
        let original_frame = &input[..l2 + inner_len];
        prop_assert_eq!(&buf[dec.clone()], original_frame, "decap(encap(x)) != x");
        prop_assert_eq!(dec.end, out.end);
        let reparsed = parse_input(original_frame, bare)?;
        check_decap_info(&dec_info, &reparsed)?;
    }

    /// Decapsulation of IP-in-IP built by smoltcp (independent of `encap`).
    #[test]
    fn tun_decap_smoltcp_ipip(
        (b, w, osrc, odst, otweak) in (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, ov6)| (body(v6), wrap(), addr(ov6), addr(ov6), opt(tweak()))),
        bare in any::<bool>(),
    ) {
        let inner = frames::ip_of(&b.frame()).to_vec();
        let mut outer = frames::ipip(osrc, odst, &inner);
        if let Some(t) = &otweak {
            tweak_ip(&mut outer, t);
        }
        let input = if bare {
            w.apply_ip(outer)
        } else {
            // The tweak of `w` would change the outer header; it is `otweak`'s job.
            Wrap { tweak: None, ..w.clone() }.apply(frames::ethernet(&outer))
        };
        let info = parse_input(&input, bare)?;
        let l2 = info.l3_offset;
        let iv = if inner[0] >> 4 == 4 { IpVersion::V4 } else { IpVersion::V6 };
        prop_assert_eq!(info.l4, L4Info::IpIp(iv));
        let mut buf = input.clone();
        let (dec, dec_info) = tun::decap(&mut buf, 0..input.len(), &info)
            .map_err(|e| fail(format!("decap: {e:?}")))?;
        let mut expected = input[..l2].to_vec();
        if l2 > 0 {
            let et: u16 = if iv == IpVersion::V4 { 0x0800 } else { 0x86dd };
            expected[l2 - 2..l2].copy_from_slice(&et.to_be_bytes());
        }
        expected.extend_from_slice(&inner);
        prop_assert_eq!(&buf[dec.clone()], &expected[..]);
        check_decap_info(&dec_info, &parse_input(&expected, bare)?)?;
        if !bare {
            smol_frame(&buf[dec])?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// ICMP "fragmentation needed" / "packet too big" replies.
// ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn icmp_too_big_reply(
        (b, w, src) in any::<bool>().prop_flat_map(|v6| (body(v6), wrap(), addr(v6))),
        bare in any::<bool>(),
        head in 0usize..8,
        tail in prop_oneof![0usize..64, 0usize..700],
        mtu in any::<u16>(),
        ident in any::<u16>(),
        junk in any::<u8>(),
    ) {
        let input = director_input(&b, &w, bare);
        let info = parse_input(&input, bare)?;
        let l2 = info.l3_offset;
        let ip = inner_ip(&input, l2).to_vec();
        let v4 = ip[0] >> 4 == 4;
        let (hdr, limit) = if v4 { (20, 576 - 28) } else { (40, 1280 - 48) };

        let mut buf = vec![junk; head];
        buf.extend_from_slice(&input);
        buf.extend(std::iter::repeat_n(junk, tail));
        let original = buf.clone();
        let room = buf.len() - head;
        let quote_len = ip.len().min(limit).min(room.saturating_sub(l2 + hdr + 8));
        let r = ficmp::too_big_reply(&mut buf, head..head + input.len(), &info, src, mtu, ident);
        if quote_len < (info.ip.header_len + 8).min(ip.len()) {
            prop_assert_eq!(r, Err(FwdError::NoRoom));
            prop_assert!(buf == original, "a refused reply touched the buffer");
            return Ok(());
        }
        let out = r.map_err(|e| fail(format!("too_big_reply: {e:?}")))?;
        prop_assert!(buf[..head] == original[..head]);

        // Expected, built with smoltcp.
        let quote = &ip[..quote_len];
        let sender = info.ip.src;
        let reply_ip = if v4 {
            let mut m = vec![0u8; 8 + quote_len];
            m[0] = 3;
            m[1] = 4;
            m[6..8].copy_from_slice(&mtu.to_be_bytes());
            m[8..].copy_from_slice(quote);
            sw::Icmpv4Packet::new_unchecked(&mut m[..]).fill_checksum();
            let mut p = frames::ip_packet(src, sender, 1, &m);
            let mut h = sw::Ipv4Packet::new_unchecked(&mut p[..]);
            h.set_dscp(0xc0 >> 2);
            h.set_ecn(0);
            h.set_ident(ident);
            h.clear_flags();
            h.fill_checksum();
            p
        } else {
            let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, sender) else { unreachable!() };
            let mut m = vec![0u8; 8 + quote_len];
            let mut pk = sw::Icmpv6Packet::new_unchecked(&mut m[..]);
            pk.set_msg_type(sw::Icmpv6Message::PktTooBig);
            pk.set_msg_code(0);
            pk.set_pkt_too_big_mtu(u32::from(mtu));
            pk.payload_mut().copy_from_slice(quote);
            pk.fill_checksum(&s6, &d6);
            frames::ip_packet(src, sender, 58, &m)
        };
        let mut expected = input[..l2].to_vec();
        if l2 > 0 {
            expected[..6].copy_from_slice(&input[6..12]);
            expected[6..12].copy_from_slice(&input[..6]);
            let et: u16 = if v4 { 0x0800 } else { 0x86dd };
            expected[l2 - 2..l2].copy_from_slice(&et.to_be_bytes());
        }
        expected.extend_from_slice(&reply_ip);
        prop_assert_eq!(out.clone(), head..head + expected.len());
        assert_same(&buf[out.clone()], &expected, l2)?;

        // smoltcp's reading, checksums verified by its Reprs.
        let reply = &buf[out];
        let ip_bytes = if bare {
            reply
        } else {
            let f = smol_frame(reply)?;
            prop_assert_eq!((f.src_mac, f.dst_mac), (DIRECTOR_MAC, CLIENT_MAC));
            prop_assert_eq!(f.vlan, w.vlan);
            &reply[l2..]
        };
        let caps = ChecksumCapabilities::default();
        if v4 {
            let p = sw::Ipv4Packet::new_checked(ip_bytes).map_err(|e| fail(e.to_string()))?;
            let r4 = sw::Ipv4Repr::parse(&p, &caps).map_err(|e| fail(e.to_string()))?;
            prop_assert_eq!((IpAddr::V4(r4.src_addr), IpAddr::V4(r4.dst_addr)), (src, sender));
            prop_assert_eq!(r4.next_header, sw::IpProtocol::Icmp);
            let m = sw::Icmpv4Packet::new_checked(p.payload()).map_err(|e| fail(e.to_string()))?;
            prop_assert!(m.verify_checksum(), "bad ICMPv4 checksum");
            prop_assert_eq!((m.msg_type(), m.msg_code()), (sw::Icmpv4Message::DstUnreachable, 4));
            // smoltcp's Icmpv4Repr reads a quote only if it holds the whole datagram.
            if quote_len == ip.len() {
                match sw::Icmpv4Repr::parse(&m, &caps).map_err(|e| fail(format!("ICMPv4 repr: {e}")))? {
                    sw::Icmpv4Repr::DstUnreachable { reason: sw::Icmpv4DstUnreachable::FragRequired, header, .. } => {
                        prop_assert_eq!(IpAddr::V4(header.src_addr), info.ip.src);
                        prop_assert_eq!(IpAddr::V4(header.dst_addr), info.ip.dst);
                    }
                    other => return Err(fail(format!("{other:?}"))),
                }
            }
            let q = smol_quote(m.data())?;
            prop_assert_eq!((q.src, q.dst), (info.ip.src, info.ip.dst));
            prop_assert_eq!(be16(p.payload(), 6), mtu);
            prop_assert_eq!(m.data(), quote);
        } else {
            let p = sw::Ipv6Packet::new_checked(ip_bytes).map_err(|e| fail(e.to_string()))?;
            let r6 = sw::Ipv6Repr::parse(&p).map_err(|e| fail(e.to_string()))?;
            prop_assert_eq!((IpAddr::V6(r6.src_addr), IpAddr::V6(r6.dst_addr)), (src, sender));
            let m = sw::Icmpv6Packet::new_checked(p.payload()).map_err(|e| fail(e.to_string()))?;
            match sw::Icmpv6Repr::parse(&r6.src_addr, &r6.dst_addr, &m, &caps)
                .map_err(|e| fail(format!("ICMPv6 repr (checksum?): {e}")))?
            {
                sw::Icmpv6Repr::PktTooBig { mtu: m6, header, .. } => {
                    prop_assert_eq!(m6, u32::from(mtu));
                    prop_assert_eq!(IpAddr::V6(header.src_addr), info.ip.src);
                    prop_assert_eq!(IpAddr::V6(header.dst_addr), info.ip.dst);
                }
                other => return Err(fail(format!("{other:?}"))),
            }
            prop_assert_eq!(&p.payload()[8..], quote);
            prop_assert!(ip_bytes.len() <= 1280);
        }
    }
}

// ---------------------------------------------------------------------------------------
// FrameInfo against smoltcp.
// ---------------------------------------------------------------------------------------

/// The IPv6 extension-header walk as the lvs-core docs specify it, over smoltcp's views:
/// (upper-layer protocol, its offset, fragment offset and M flag), or None where the
/// chain is not walkable.
/// Where an IPv6 extension-header walk ends: (upper-layer protocol, its offset, the
/// fragment header's offset and M flag).
type V6Walk = (u8, usize, Option<(u16, bool)>);

fn smol_v6_walk(ip: &[u8]) -> Option<V6Walk> {
    let mut next = ip[6];
    let mut off = 40;
    let mut frag = None;
    for count in 0..=8 {
        let len = match next {
            0 if count != 0 => return None,
            0 | 43 | 60 => {
                let h = sw::Ipv6ExtHeader::new_checked(ip.get(off..)?).ok()?;
                (usize::from(h.header_len()) + 1) * 8
            }
            51 => (usize::from(*ip.get(off + 1)?) + 2) * 4,
            44 => {
                let h = sw::Ipv6FragmentHeader::new_checked(ip.get(off + 2..off + 8)?).ok()?;
                frag = Some((h.frag_offset() * 8, h.more_frags()));
                8
            }
            p => return Some((p, off, frag)),
        };
        if count == 8 || off + len > ip.len() {
            return None;
        }
        next = ip[off];
        off += len;
        if matches!(frag, Some((o, _)) if o != 0) {
            return Some((next, off, frag));
        }
    }
    None
}

/// Whatever `FrameInfo` says of `bytes` must be what smoltcp reads there.
fn agree(bytes: &[u8], info: &FrameInfo, bare: bool) -> TestResult {
    let l3 = info.l3_offset;
    prop_assert!(info.l4_offset() <= info.ip_end() && info.ip_end() <= bytes.len());
    if bare {
        prop_assert_eq!(l3, 0);
        prop_assert_eq!(info.vlan, None);
    } else {
        let eth = sw::EthernetFrame::new_checked(bytes).map_err(|e| fail(e.to_string()))?;
        let et = u16::from(eth.ethertype());
        let inner_et = match info.vlan {
            Some(tci) => {
                prop_assert_eq!(et, frames::VLAN_TPID);
                prop_assert_eq!(be16(bytes, 14), tci);
                prop_assert_eq!(l3, 18);
                be16(bytes, 16)
            }
            None => {
                prop_assert_eq!(l3, 14);
                et
            }
        };
        let want = if info.ip.version == IpVersion::V4 {
            0x0800
        } else {
            0x86dd
        };
        prop_assert_eq!(inner_et, want);
    }
    let ip = &bytes[l3..info.ip_end()];
    match info.ip.version {
        IpVersion::V4 => {
            let p =
                sw::Ipv4Packet::new_checked(ip).map_err(|e| fail(format!("smoltcp IPv4: {e}")))?;
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.version(), 4);
            prop_assert_eq!(
                (info.ip.src, info.ip.dst),
                (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()))
            );
            prop_assert_eq!(info.ip.header_len, usize::from(p.header_len()));
            prop_assert_eq!(info.ip.total_len, usize::from(p.total_len()));
            prop_assert_eq!(u8::from(info.ip.protocol), u8::from(p.next_header()));
            prop_assert_eq!(info.ip.hop_limit, p.hop_limit());
            prop_assert_eq!(info.ip.dont_fragment, p.dont_frag());
            let frag = if p.frag_offset() != 0 {
                Fragment::Later
            } else if p.more_frags() {
                Fragment::First
            } else {
                Fragment::Whole
            };
            prop_assert_eq!(info.ip.fragment, frag);
        }
        IpVersion::V6 => {
            let p =
                sw::Ipv6Packet::new_checked(ip).map_err(|e| fail(format!("smoltcp IPv6: {e}")))?;
            prop_assert_eq!(p.version(), 6);
            prop_assert_eq!(
                (info.ip.src, info.ip.dst),
                (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))
            );
            prop_assert_eq!(info.ip.total_len, p.total_len());
            prop_assert_eq!(info.ip.hop_limit, p.hop_limit());
            let (proto, off, frag) = smol_v6_walk(ip)
                .ok_or_else(|| fail("smoltcp walk refuses a chain lvs-core accepted"))?;
            prop_assert_eq!(u8::from(info.ip.protocol), proto);
            prop_assert_eq!(info.ip.header_len, off);
            let frag = match frag {
                Some((o, _)) if o != 0 => Fragment::Later,
                Some((_, true)) => Fragment::First,
                _ => Fragment::Whole,
            };
            prop_assert_eq!(info.ip.fragment, frag);
        }
    }
    let seg = &ip[info.ip.header_len..];
    match info.l4 {
        L4Info::Tcp {
            src_port,
            dst_port,
            flags,
        } => {
            let t =
                sw::TcpPacket::new_checked(seg).map_err(|e| fail(format!("smoltcp TCP: {e}")))?;
            prop_assert_eq!((src_port, dst_port), (t.src_port(), t.dst_port()));
            prop_assert_eq!(flags.bits(), seg[13]);
        }
        L4Info::Udp { src_port, dst_port } => {
            if info.ip.fragment == Fragment::Whole {
                sw::UdpPacket::new_checked(seg).map_err(|e| fail(format!("smoltcp UDP: {e}")))?;
            }
            let u = sw::UdpPacket::new_unchecked(seg);
            prop_assert_eq!((src_port, dst_port), (u.src_port(), u.dst_port()));
        }
        L4Info::Icmp(i) => {
            prop_assert!(seg.len() >= 8);
            prop_assert_eq!((i.msg_type, i.code), (seg[0], seg[1]));
            let want_proto = if info.ip.version == IpVersion::V4 {
                1
            } else {
                58
            };
            prop_assert_eq!(u8::from(info.ip.protocol), want_proto);
            if let Some(inner) = i.inner {
                prop_assert!(i.is_error);
                prop_assert_eq!(inner.offset, info.l4_offset() + 8);
                let q = &bytes[inner.offset..info.ip_end()];
                let (src, dst) = match inner.version {
                    IpVersion::V4 => {
                        let p = sw::Ipv4Packet::new_unchecked(q);
                        (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()))
                    }
                    IpVersion::V6 => {
                        let p = sw::Ipv6Packet::new_unchecked(q);
                        (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))
                    }
                };
                prop_assert_eq!((inner.src, inner.dst), (src, dst));
                prop_assert!(inner.header_len <= q.len());
                // A quoted non-first fragment shows no L4 header.
                let later = match inner.version {
                    IpVersion::V4 => {
                        prop_assert_eq!(inner.header_len, usize::from(q[0] & 0x0f) * 4);
                        prop_assert_eq!(u8::from(inner.protocol), q[9]);
                        be16(q, 6) & 0x1fff != 0
                    }
                    IpVersion::V6 => {
                        let (proto, off, frag) = smol_v6_walk(q).ok_or_else(|| {
                            fail("smoltcp walk refuses a quoted chain lvs-core accepted")
                        })?;
                        prop_assert_eq!((u8::from(inner.protocol), inner.header_len), (proto, off));
                        matches!(frag, Some((o, _)) if o != 0)
                    }
                };
                let ql4 = if later {
                    &[][..]
                } else {
                    &q[inner.header_len..]
                };
                prop_assert_eq!(inner.l4_len, ql4.len());
                if let Some((sp, dp)) = inner.ports {
                    prop_assert!(matches!(u8::from(inner.protocol), 6 | 17));
                    prop_assert_eq!((sp, dp), (be16(ql4, 0), be16(ql4, 2)));
                }
            }
        }
        L4Info::IpIp(v) => {
            let want = if v == IpVersion::V4 { 4 } else { 41 };
            prop_assert_eq!(u8::from(info.ip.protocol), want);
        }
        L4Info::None => {}
    }
    Ok(())
}

/// Well-formed packets beyond the plain ones: IPv4 options, fragments, IPv6 extension
/// headers, IP-in-IP.
fn exotic_ip(v6: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        seg(v6),
        0u8..6,
        any::<u16>(),
        0u16..200,
        any::<bool>(),
        addr(v6),
        addr(v6),
    )
        .prop_map(move |(s, kind, ident, off8, more, a, b)| {
            let ip = frames::ip_of(&s.frame()).to_vec();
            let proto = if v6 { ip[6] } else { ip[9] };
            let hl = if v6 { 40 } else { 20 };
            let l4 = &ip[hl..];
            match (kind, s.flow.src, s.flow.dst) {
                (0, IpAddr::V4(x), IpAddr::V4(y)) => {
                    // Router alert + NOP + timestamp-ish option bytes.
                    frames::ipv4_with_options(x, y, proto, &[0x94, 0x04, 0, 0, 1, 0x44, 4, 5], l4)
                }
                (1, IpAddr::V4(x), IpAddr::V4(y)) => {
                    let n = l4.len().min(usize::from(off8 % 16) * 8 + 24).min(l4.len());
                    frames::ipv4_fragment(x, y, proto, ident, 0, true, &l4[..n])
                }
                (2, IpAddr::V4(x), IpAddr::V4(y)) => frames::ipv4_fragment(
                    x,
                    y,
                    proto,
                    ident,
                    (off8 + 1) * 8,
                    more,
                    &l4[..l4.len().min(64)],
                ),
                (0, IpAddr::V6(x), IpAddr::V6(y)) => frames::ipv6_with_ext(
                    x,
                    y,
                    &[(0, vec![5, 2, 0, 0]), (60, vec![1, 2, 0, 0])],
                    proto,
                    l4,
                ),
                (1, IpAddr::V6(x), IpAddr::V6(y)) => {
                    let n = l4.len().min(usize::from(off8 % 16) * 8 + 24);
                    frames::ipv6_with_ext(
                        x,
                        y,
                        &[(44, frames::ipv6_fragment_body(0, true, ident.into()))],
                        proto,
                        &l4[..n],
                    )
                }
                (2, IpAddr::V6(x), IpAddr::V6(y)) => frames::ipv6_with_ext(
                    x,
                    y,
                    &[
                        (0, vec![]),
                        (
                            44,
                            frames::ipv6_fragment_body((off8 + 1) * 8, more, ident.into()),
                        ),
                    ],
                    proto,
                    &l4[..l4.len().min(64)],
                ),
                (3, _, _) => frames::ipip(a, b, &ip),
                (4, _, _) => {
                    // The other family inside.
                    let other = if v6 { Flow::v4() } else { Flow::v6() };
                    let inner =
                        frames::tcp_ip(&other, 0x10, &s.payload[..s.payload.len().min(100)]);
                    frames::ipip(a, b, &inner)
                }
                _ => ip,
            }
        })
}

fn well_formed() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, bare)| {
        let ip = prop_oneof![
            body(v6).prop_map(|b| frames::ip_of(&b.frame()).to_vec()),
            exotic_ip(v6),
        ];
        (ip, wrap()).prop_map(move |(ip, w)| {
            let bytes = if bare {
                w.apply_ip(ip)
            } else {
                w.apply(frames::ethernet(&ip))
            };
            (bytes, bare)
        })
    })
}

proptest! {
    #[test]
    fn frame_info_agrees_on_well_formed((bytes, bare) in well_formed()) {
        let info = parse_input(&bytes, bare)?;
        agree(&bytes, &info, bare)?;
    }

    #[test]
    fn frame_info_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(info) = FrameInfo::parse(&bytes) {
            agree(&bytes, &info, false)?;
        }
        if let Ok(info) = FrameInfo::parse_ip(&bytes) {
            agree(&bytes, &info, true)?;
        }
    }

    #[test]
    fn frame_info_never_panics_on_mutated_frames(
        (bytes, _bare) in well_formed(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in opt(any::<prop::sample::Index>()),
        fix_v4_checksum in any::<bool>(),
    ) {
        let mut b = bytes;
        for (i, x) in flips {
            let i = i.index(b.len());
            b[i] = x;
        }
        if let Some(c) = cut {
            let n = c.index(b.len() + 1);
            b.truncate(n);
        }
        // Flips behind a valid header checksum reach the deeper layers.
        if fix_v4_checksum {
            for l3 in [0usize, 14, 18] {
                if b.len() >= l3 + 20 && b[l3] >> 4 == 4 {
                    let hl = usize::from(b[l3] & 0x0f) * 4;
                    if hl >= 20 && l3 + hl <= b.len() {
                        sw::Ipv4Packet::new_unchecked(&mut b[l3..l3 + hl]).fill_checksum();
                    }
                }
            }
        }
        if let Ok(info) = FrameInfo::parse(&b) {
            agree(&b, &info, false)?;
        }
        if let Ok(info) = FrameInfo::parse_ip(&b) {
            agree(&b, &info, true)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed, table-driven cases.
// ---------------------------------------------------------------------------------------

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn run(r: TestResult) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

fn seg_of(flow: Flow, l4: L4, payload: &[u8]) -> Seg {
    Seg {
        flow,
        l4,
        payload: payload.to_vec(),
    }
}

#[test]
fn table_nat_and_fullnat() {
    let rip4 = Endpoint::new(v4("10.0.0.11"), 8080);
    let rip6 = Endpoint::new(v6("2001:db8:1::11"), 8080);
    let lip4 = Endpoint::new(v4("10.0.0.1"), 61000);
    let lip6 = Endpoint::new(v6("2001:db8:1::1"), 61000);
    let vlan = Wrap {
        vlan: Some(0x2064),
        ..Wrap::NONE
    };
    let cases: Vec<(&str, Seg, Wrap)> = vec![
        (
            "v4 TCP SYN",
            seg_of(Flow::v4(), L4::Tcp(0x02), b""),
            Wrap::NONE,
        ),
        (
            "v4 TCP PSH|ACK",
            seg_of(Flow::v4(), L4::Tcp(0x18), b"GET / HTTP/1.1\r\n\r\n"),
            Wrap::NONE,
        ),
        ("v4 UDP", seg_of(Flow::v4(), L4::Udp, b"query"), Wrap::NONE),
        (
            "v4 UDP no checksum",
            seg_of(Flow::v4(), L4::UdpNoCsum, b"query"),
            Wrap::NONE,
        ),
        (
            "v6 TCP FIN|ACK tagged",
            seg_of(Flow::v6(), L4::Tcp(0x11), b""),
            vlan.clone(),
        ),
        (
            "v6 UDP",
            seg_of(Flow::v6(), L4::Udp, &[0u8; 1400]),
            Wrap::NONE,
        ),
    ];
    for (name, s, w) in cases {
        let (rip, lip) = if s.flow.is_v4() {
            (rip4, lip4)
        } else {
            (rip6, lip6)
        };
        let vip = Endpoint::new(s.flow.dst, s.flow.dport);
        let cip = Endpoint::new(s.flow.src, s.flow.sport);
        eprintln!("table: {name}");
        run(check_tuple(&s, &w, with_dst(s.flow, rip), |f, i| {
            nat::inbound(f, i, rip)
        }));
        // The reply from the real server, back through the director.
        let reply = s.with_flow(Flow {
            src: rip.addr,
            sport: rip.port,
            ..s.flow.reversed()
        });
        run(check_tuple(
            &reply,
            &w,
            with_src(reply.flow, vip),
            |f, i| nat::outbound(f, i, vip),
        ));
        run(check_tuple(
            &s,
            &w,
            Flow {
                src: lip.addr,
                sport: lip.port,
                dst: rip.addr,
                dport: rip.port,
            },
            |f, i| fullnat::inbound(f, i, lip, rip),
        ));
        let back = s.with_flow(Flow {
            src: rip.addr,
            sport: rip.port,
            dst: lip.addr,
            dport: lip.port,
        });
        run(check_tuple(
            &back,
            &w,
            Flow {
                src: vip.addr,
                sport: vip.port,
                dst: cip.addr,
                dport: cip.port,
            },
            |f, i| fullnat::outbound(f, i, vip, cip),
        ));
    }
}

#[test]
fn table_icmp_errors() {
    let rip4 = Endpoint::new(v4("10.0.0.11"), 8080);
    let rip6 = Endpoint::new(v6("2001:db8:1::11"), 8080);
    for (flow, rip, router) in [
        (Flow::v4(), rip4, v4("192.0.2.254")),
        (Flow::v6(), rip6, v6("2001:db8:ffff::fe")),
    ] {
        let vip = Endpoint::new(flow.dst, flow.dport);
        for kind in [
            IcmpError::PortUnreachable,
            IcmpError::FragNeeded(1400),
            IcmpError::TimeExceeded,
        ] {
            for l4 in [L4::Tcp(0x18), L4::Udp] {
                // Inbound: a router on the client side reports about the director's reply.
                let e = IcmpErr {
                    src: router,
                    dst: vip.addr,
                    kind,
                    quoted: seg_of(flow.reversed(), l4, &[0x5a; 600]),
                };
                let rw = IcmpRewrite {
                    outer_dst: Some(rip.addr),
                    inner_src: Some(rip),
                    ..IcmpRewrite::NONE
                };
                run(check_icmp(&e, &Wrap::NONE, &rw, |f, i| {
                    nat::inbound_icmp(f, i, rip)
                }));
                // Outbound: the real server reports about the client's forwarded packet.
                let e = IcmpErr {
                    src: rip.addr,
                    dst: flow.src,
                    kind,
                    quoted: seg_of(with_dst(flow, rip), l4, b"x"),
                };
                let rw = IcmpRewrite {
                    outer_src: Some(vip.addr),
                    inner_dst: Some(vip),
                    ..IcmpRewrite::NONE
                };
                run(check_icmp(&e, &Wrap::NONE, &rw, |f, i| {
                    nat::outbound_icmp(f, i, vip)
                }));
            }
        }
    }
}

#[test]
fn table_tun_all_four_kinds() {
    let d4 = (v4("192.0.2.1"), v4("192.0.2.11"));
    let d6 = (v6("2001:db8:2::1"), v6("2001:db8:2::11"));
    for (name, flow, (src, dst), olen, proto) in [
        ("4in4", Flow::v4(), d4, 20, 4u8),
        ("6in6", Flow::v6(), d6, 40, 41),
        ("4in6", Flow::v4(), d6, 40, 4),
        ("6in4", Flow::v6(), d4, 20, 41),
    ] {
        let input = frames::tcp(&flow, 0x02, b"");
        let info = FrameInfo::parse(&input).unwrap();
        let p = TunParams {
            src,
            dst,
            ident: 0x4242,
            flow_label: 0x12345,
            mtu: 1500,
        };
        // With headroom.
        let mut buf = vec![0u8; olen];
        buf.extend_from_slice(&input);
        let out = tun::encap(&mut buf, olen..olen + input.len(), &info, &p).unwrap();
        assert_eq!(out, 0..input.len() + olen, "{name}");
        let expected = expected_encap(&input, 14, &p);
        run(assert_same(&buf[out.clone()], &expected, 14));
        let f = smol_frame(&buf[out.clone()]).unwrap();
        assert_eq!(f.ip.protocol, proto, "{name}");
        assert_eq!(
            f.ip.packet[if src.is_ipv4() { 8 } else { 7 }],
            64,
            "{name}: TTL"
        );
        // Without headroom: the packet moves into the tailroom.
        let mut buf2 = input.clone();
        buf2.extend(std::iter::repeat_n(0, olen));
        let out2 = tun::encap(&mut buf2, 0..input.len(), &info, &p).unwrap();
        assert_eq!(&buf2[out2.clone()], &buf[out.clone()], "{name}: tailroom");
        // And back.
        let enc = FrameInfo::parse(&buf2[out2.clone()]).unwrap();
        let (dec, _) = tun::decap(&mut buf2, out2, &enc).unwrap();
        assert_eq!(&buf2[dec], &input[..], "{name}: decap");
        // Over the MTU with DF: the MTU to announce, then the reply.
        let small = TunParams { mtu: 50, ..p };
        let mut buf3 = input.clone();
        buf3.extend(std::iter::repeat_n(0, 100));
        let r = tun::encap(&mut buf3, 0..input.len(), &info, &small);
        assert_eq!(
            r,
            Err(FwdError::FragNeeded {
                mtu: 50 - olen as u16
            }),
            "{name}"
        );
        let reply = ficmp::too_big_reply(
            &mut buf3,
            0..input.len(),
            &info,
            flow.dst,
            50 - olen as u16,
            7,
        )
        .unwrap();
        let f = smol_frame(&buf3[reply]).unwrap();
        assert_eq!((f.ip.src, f.ip.dst), (flow.dst, flow.src), "{name}");
        assert_eq!((f.src_mac, f.dst_mac), (DIRECTOR_MAC, CLIENT_MAC));
    }
}

#[test]
fn table_refusals_leave_the_frame_untouched() {
    let tcp4 = frames::tcp(&Flow::v4(), 0x02, b"abc");
    let tcp6 = frames::tcp(&Flow::v6(), 0x02, b"abc");
    let e6 = Endpoint::new(v6("2001:db8::1"), 1);
    let e4 = Endpoint::new(v4("10.0.0.1"), 1);
    type Op = Box<dyn Fn(&mut [u8], &FrameInfo) -> Result<(), FwdError>>;
    let cases: Vec<(&str, &Vec<u8>, Op, FwdError)> = vec![
        (
            "nat v4 to v6",
            &tcp4,
            Box::new(move |f, i| nat::inbound(f, i, e6)),
            FwdError::FamilyMismatch,
        ),
        (
            "nat v6 to v4",
            &tcp6,
            Box::new(move |f, i| nat::outbound(f, i, e4)),
            FwdError::FamilyMismatch,
        ),
        (
            "fullnat mixed",
            &tcp4,
            Box::new(move |f, i| fullnat::inbound(f, i, e4, e6)),
            FwdError::FamilyMismatch,
        ),
        (
            "icmp rewrite of TCP",
            &tcp4,
            Box::new(move |f, i| nat::inbound_icmp(f, i, e4)),
            FwdError::NotIcmpError,
        ),
        (
            "frame info of another frame",
            &tcp4,
            Box::new(|f, i| {
                let short = FrameInfo {
                    ip: lvs_core::wire::IpInfo {
                        total_len: 4000,
                        ..i.ip
                    },
                    ..*i
                };
                nat::inbound(f, &short, Endpoint::new(v4("10.0.0.2"), 2))
            }),
            FwdError::Mismatch,
        ),
    ];
    for (name, input, op, want) in cases {
        let info = FrameInfo::parse(input).unwrap();
        let mut f = input.clone();
        assert_eq!(op(&mut f, &info), Err(want), "{name}");
        assert_eq!(&f, input, "{name}: touched");
    }
    // decap of something that is not a tunnel; encap with mixed outer families.
    let info = FrameInfo::parse(&tcp4).unwrap();
    let mut buf = tcp4.clone();
    assert_eq!(
        tun::decap(&mut buf, 0..tcp4.len(), &info),
        Err(FwdError::NotTunnel)
    );
    let p = TunParams {
        src: v4("192.0.2.1"),
        dst: v6("2001:db8::2"),
        ident: 0,
        flow_label: 0,
        mtu: 1500,
    };
    let mut buf = vec![0u8; 64];
    buf.extend_from_slice(&tcp4);
    let before = buf.clone();
    assert_eq!(
        tun::encap(&mut buf, 64..64 + tcp4.len(), &info, &p),
        Err(FwdError::FamilyMismatch)
    );
    assert_eq!(buf, before);
    let mut buf = tcp4.clone();
    buf.extend(std::iter::repeat_n(0, 600));
    assert_eq!(
        ficmp::too_big_reply(&mut buf, 0..tcp4.len(), &info, v6("2001:db8::1"), 1280, 0),
        Err(FwdError::FamilyMismatch)
    );
}

/// `decap` returns the FrameInfo of the inner frame. For an inner ICMP error, the offset
/// of the quoted datagram must be an offset in that frame (Ethernet header included), as
/// `FrameInfo::parse` gives it, or `rewrite_error` refuses the decapsulated frame.
#[test]
fn decap_info_of_icmp_error_is_usable() {
    let quoted = frames::udp(&Flow::v4(), b"hello");
    let err = frames::icmp_error(
        v4("192.0.2.254"),
        Flow::v4().src,
        IcmpError::PortUnreachable,
        &quoted,
    );
    let tunnelled = frames::ethernet(&frames::ipip(
        v4("192.0.2.1"),
        v4("192.0.2.11"),
        frames::ip_of(&err),
    ));
    let info = FrameInfo::parse(&tunnelled).unwrap();
    let mut buf = tunnelled.clone();
    let (range, dec_info) = tun::decap(&mut buf, 0..tunnelled.len(), &info).unwrap();
    assert_eq!(&buf[range.clone()], &err[..]);
    assert_eq!(
        dec_info,
        FrameInfo::parse(&err).unwrap(),
        "decap's FrameInfo != parse of the same frame"
    );
    let mut frame = buf[range].to_vec();
    nat::outbound_icmp(&mut frame, &dec_info, Endpoint::new(Flow::v4().dst, 80)).unwrap();
}

/// The comparator itself: a changed byte is caught, the other zero of a checksum is not
/// (except for UDP).
#[test]
fn assert_same_catches_what_it_must() {
    let f = frames::tcp(&Flow::v4(), 0x18, b"payload");
    assert!(assert_same(&f, &f, 14).is_ok());
    let mut g = f.clone();
    *g.last_mut().unwrap() ^= 1;
    assert!(assert_same(&g, &f, 14).is_err());
    let mut a = f.clone();
    let mut b = f.clone();
    a[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&[0, 0]);
    b[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&[0xff, 0xff]);
    assert!(assert_same(&a, &b, 14).is_ok());
    let u = frames::udp(&Flow::v4(), b"payload");
    let (mut a, mut b) = (u.clone(), u.clone());
    a[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    b[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0xff, 0xff]);
    assert!(assert_same(&a, &b, 14).is_err());
    let mut c = u.clone();
    c[14 + 20 + 6] ^= 0x10;
    assert!(assert_same(&c, &u, 14).is_err() || smol_frame(&c).is_err());
    assert!(
        smol_frame(&c).is_err(),
        "smoltcp must catch a bad UDP checksum"
    );
}

/// DR on fixed frames: only the MACs change.
#[test]
fn table_dr() {
    for f in [
        frames::tcp(&Flow::v4(), 0x02, b""),
        frames::with_vlan(&frames::udp(&Flow::v6(), b"x"), 7),
    ] {
        let mut out = f.clone();
        dr::forward(
            &mut out,
            EthernetAddress(DIRECTOR_MAC),
            EthernetAddress(REAL_MAC),
        )
        .unwrap();
        assert_eq!(&out[..6], &REAL_MAC);
        assert_eq!(&out[6..12], &DIRECTOR_MAC);
        assert_eq!(&out[12..], &f[12..]);
    }
    let mut short = vec![0u8; 10];
    assert_eq!(
        dr::forward(
            &mut short,
            EthernetAddress(DIRECTOR_MAC),
            EthernetAddress(REAL_MAC)
        ),
        Err(FwdError::Mismatch)
    );
    assert_eq!(short, vec![0u8; 10]);
}

// ---------------------------------------------------------------------------------------
// Fragments: the first fragment's L4 checksum covers the whole datagram.
// ---------------------------------------------------------------------------------------

/// The two fragments (bare IP) of the datagram `s`, split after `split` bytes of its L4
/// part; and the L4 offset in each.
fn fragments(s: &Seg, split: usize, ident: u16) -> [(Vec<u8>, usize); 2] {
    let ip = frames::ip_of(&s.frame()).to_vec();
    let (hl, proto) = if s.flow.is_v4() {
        (20, ip[9])
    } else {
        (40, ip[6])
    };
    let l4 = &ip[hl..];
    match (s.flow.src, s.flow.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => [
            (
                frames::ipv4_fragment(a, b, proto, ident, 0, true, &l4[..split]),
                20,
            ),
            (
                frames::ipv4_fragment(a, b, proto, ident, split as u16, false, &l4[split..]),
                20,
            ),
        ],
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let first = frames::ipv6_fragment_body(0, true, ident.into());
            let later = frames::ipv6_fragment_body(split as u16, false, ident.into());
            [
                (
                    frames::ipv6_with_ext(a, b, &[(44, first)], proto, &l4[..split]),
                    48,
                ),
                (
                    frames::ipv6_with_ext(a, b, &[(44, later)], proto, &l4[split..]),
                    48,
                ),
            ]
        }
        _ => unreachable!(),
    }
}

proptest! {
    /// NAT of both fragments of a datagram (each parsed on its own), then reassembly:
    /// the datagram is the one built for the new destination, its checksum valid.
    #[test]
    fn nat_inbound_fragments_reassemble(
        (s, w, real) in any::<bool>().prop_flat_map(|v6| (long_seg(v6), wrap(), endpoint(v6))),
        k in 0usize..5,
        ident in any::<u16>(),
    ) {
        let hl = if s.flow.is_v4() { 20 } else { 40 };
        let l4_len = frames::ip_of(&s.frame()).len() - hl;
        let split = 24 + 8 * k;
        assert!(split < l4_len);
        let new = with_dst(s.flow, real);
        let got = fragments(&s, split, ident);
        let want = fragments(&s.with_flow(new), split, ident);
        let mut datagram = Vec::new();
        for (i, ((ip, l4_off), (exp, _))) in got.into_iter().zip(want).enumerate() {
            let w = Wrap { tweak: None, ..w.clone() };
            let input = w.apply(frames::ethernet(&ip));
            let info = parse_input(&input, false)?;
            let want_frag = if i == 0 { Fragment::First } else { Fragment::Later };
            prop_assert_eq!(info.ip.fragment, want_frag);
            let mut out = input.clone();
            nat::inbound(&mut out, &info, real).map_err(|e| fail(format!("fragment {i}: {e:?}")))?;
            let expected = w.apply(frames::ethernet(&exp));
            let l3 = info.l3_offset;
            let mut fields = Vec::new();
            if s.flow.is_v4() {
                fields.push((l3 + 10, false));
            }
            if i == 0 {
                match s.l4 {
                    L4::Tcp(_) => fields.push((l3 + l4_off + 16, false)),
                    _ => fields.push((l3 + l4_off + 6, true)),
                }
            }
            assert_same_fields(&out, &expected, &fields)?;
            datagram.extend_from_slice(&out[l3 + l4_off..info.ip_end()]);
        }
        // The reassembled datagram verifies with smoltcp, over the new addresses.
        prop_assert_eq!(datagram.len(), l4_len);
        let proto = match s.l4 { L4::Tcp(_) => 6, _ => 17 };
        match smol_l4(&datagram, new.src, new.dst, proto)? {
            SmolL4::Tcp { sport, dport, payload, .. } => {
                prop_assert_eq!((sport, dport), (new.sport, new.dport));
                prop_assert_eq!(payload, &s.payload[..]);
            }
            SmolL4::Udp { sport, dport, checksum, payload } => {
                prop_assert_eq!((sport, dport), (new.sport, new.dport));
                prop_assert_eq!(checksum == 0, s.l4 == L4::UdpNoCsum);
                prop_assert_eq!(payload, &s.payload[..]);
            }
            other => return Err(fail(format!("{other:?}"))),
        }
    }
}

/// Echo messages through NAT: ICMPv6's checksum covers the addresses (pseudo-header),
/// ICMPv4's does not; both must verify after the rewrite.
#[test]
fn table_nat_icmp_echo() {
    use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr};
    let caps = ChecksumCapabilities::default();
    for flow in [Flow::v4(), Flow::v6()] {
        let data = [0x42u8; 40];
        let mut m = vec![0u8; 8 + data.len()];
        let proto = match (flow.src, flow.dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let r = Icmpv6Repr::EchoRequest {
                    ident: 1,
                    seq_no: 2,
                    data: &data,
                };
                r.emit(&s, &d, &mut Icmpv6Packet::new_unchecked(&mut m[..]), &caps);
                58
            }
            _ => {
                let r = Icmpv4Repr::EchoRequest {
                    ident: 1,
                    seq_no: 2,
                    data: &data,
                };
                r.emit(&mut Icmpv4Packet::new_unchecked(&mut m[..]), &caps);
                1
            }
        };
        let input = frames::ethernet(&frames::ip_packet(flow.src, flow.dst, proto, &m));
        let info = FrameInfo::parse(&input).unwrap();
        let real = if flow.is_v4() {
            Endpoint::new(v4("10.0.0.11"), 0)
        } else {
            Endpoint::new(v6("2001:db8:1::11"), 0)
        };
        let mut out = input.clone();
        nat::inbound(&mut out, &info, real).unwrap();
        let p = smol_frame(&out).unwrap();
        assert_eq!(p.ip.dst, real.addr);
        let SmolL4::Icmp {
            msg_type, quote, ..
        } = p.ip.l4
        else {
            panic!("{:?}", p.ip.l4)
        };
        assert_eq!(msg_type, if flow.is_v4() { 8 } else { 128 });
        assert_eq!(quote, &data[..]);
        let expected = frames::ethernet(&frames::ip_packet(flow.src, real.addr, proto, &{
            let mut m2 = m.clone();
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (flow.src, real.addr) {
                Icmpv6Packet::new_unchecked(&mut m2[..]).fill_checksum(&s, &d);
            }
            m2
        }));
        run(assert_same(&out, &expected, 14));
    }
}

/// A UDP checksum that computes to zero is sent as 0xffff (RFC 768); over IPv6 a zero
/// checksum field is invalid (RFC 8200 §8.1). The quoted UDP datagram of an ICMPv6 error
/// must follow that rule after a rewrite, as `rewrite_tuple` does for UDP itself.
#[test]
fn icmpv6_quoted_udp_checksum_is_never_zero() {
    let flow = Flow::v6();
    let client = Endpoint::new(flow.src, flow.sport);
    let virt = Endpoint::new(flow.dst, flow.dport);
    // Payload word chosen so that the rewritten datagram (client → VIP) sums to zero.
    let base = frames::udp_datagram(flow.src, flow.dst, flow.sport, flow.dport, &[0, 0], true);
    let payload = [base[6], base[7]];
    let rewritten =
        frames::udp_datagram(flow.src, flow.dst, flow.sport, flow.dport, &payload, true);
    assert_eq!(
        &rewritten[6..8],
        &[0xff, 0xff],
        "setup: the full checksum computes to zero"
    );
    // FULLNAT outbound: the real server's error about LIP:lport → RIP:rport.
    let lip = Endpoint::new(v6("2001:db8:1::1"), 61000);
    let rip = Endpoint::new(v6("2001:db8:1::11"), 8080);
    let quoted = frames::udp(
        &Flow {
            src: lip.addr,
            sport: lip.port,
            dst: rip.addr,
            dport: rip.port,
        },
        &payload,
    );
    let input = frames::icmp_error(rip.addr, lip.addr, IcmpError::PortUnreachable, &quoted);
    let info = FrameInfo::parse(&input).unwrap();
    let mut out = input.clone();
    fullnat::outbound_icmp(&mut out, &info, virt, client).unwrap();
    let quoted_udp = 14 + 40 + 8 + 40;
    assert_eq!(
        &out[quoted_udp..quoted_udp + 8],
        &rewritten[..8],
        "quoted UDP header after the rewrite (checksum at bytes 6..8)"
    );
}

/// NAT and the ICMP-error rewrite behind IPv4 options and IPv6 extension headers: the
/// L4 header is found after them, and they pass unchanged.
#[test]
fn table_options_and_extension_headers() {
    let opts = [0x94, 4, 0, 0, 1, 1, 7, 7]; // router alert, NOPs, a made-up option
    let ext = |body: &[u8]| vec![(0u8, vec![5, 2, 0, 0]), (60, body.to_vec())];
    // The packet of `flow` (TCP PSH|ACK), with options or extension headers.
    let build = |flow: &Flow| -> Vec<u8> {
        let seg = frames::tcp_segment(flow.src, flow.dst, flow.sport, flow.dport, 0x18, b"data");
        match (flow.src, flow.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => frames::ipv4_with_options(s, d, 6, &opts, &seg),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                frames::ipv6_with_ext(s, d, &ext(&[1, 2, 0, 0]), 6, &seg)
            }
            _ => unreachable!(),
        }
    };
    for (flow, rip, router) in [
        (
            Flow::v4(),
            Endpoint::new(v4("10.0.0.11"), 8080),
            v4("192.0.2.254"),
        ),
        (
            Flow::v6(),
            Endpoint::new(v6("2001:db8:1::11"), 8080),
            v6("2001:db8:ffff::fe"),
        ),
    ] {
        let input = frames::ethernet(&build(&flow));
        let info = FrameInfo::parse(&input).unwrap();
        assert!(info.ip.header_len > if flow.is_v4() { 20 } else { 40 });
        let mut out = input.clone();
        nat::inbound(&mut out, &info, rip).unwrap();
        let expected = frames::ethernet(&build(&with_dst(flow, rip)));
        let l4 = info.l4_offset();
        let mut fields = vec![(l4 + 16, false)];
        if flow.is_v4() {
            fields.push((14 + 10, false));
        }
        run(assert_same_fields(&out, &expected, &fields));
        smol_l4(&out[l4..], flow.src, rip.addr, 6).unwrap();

        // A router's error about the real server's reply (which carries options /
        // extension headers), passed on to the client: the quote readdressed from the VIP.
        let reply = Flow {
            src: rip.addr,
            sport: rip.port,
            ..flow.reversed()
        };
        let vip = Endpoint::new(flow.dst, flow.dport);
        let input = frames::ethernet(&frames::icmp_error_ip(
            router,
            rip.addr,
            IcmpError::TimeExceeded,
            &build(&reply),
        ));
        let info = FrameInfo::parse(&input).unwrap();
        let mut out = input.clone();
        let rw = IcmpRewrite {
            outer_dst: Some(flow.src),
            inner_src: Some(vip),
            ..IcmpRewrite::NONE
        };
        ficmp::rewrite_error(&mut out, &info, &rw).unwrap();
        let expected = frames::ethernet(&frames::icmp_error_ip(
            router,
            flow.src,
            IcmpError::TimeExceeded,
            &build(&with_src(reply, vip)),
        ));
        let p = smol_frame(&out).unwrap();
        let SmolL4::Icmp { quote, .. } = p.ip.l4 else {
            panic!()
        };
        let q = smol_quote(quote).unwrap();
        assert_eq!((q.src, q.dst), (vip.addr, flow.src));
        let L4Info::Icmp(icmp) = info.l4 else {
            panic!()
        };
        let inner = icmp.inner.unwrap();
        assert!(inner.header_len > if flow.is_v4() { 20 } else { 40 });
        let q_l4 = inner.offset + inner.header_len;
        let mut fields = vec![(info.l4_offset() + 2, false)];
        if flow.is_v4() {
            fields.extend([(14 + 10, false), (inner.offset + 10, false)]);
        }
        if q_l4 + 18 <= expected.len() {
            fields.push((q_l4 + 16, false));
        }
        run(assert_same_fields(&out, &expected, &fields));
    }
}
