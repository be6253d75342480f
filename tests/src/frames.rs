//! Frame builder for tests, benchmarks, fuzz seeds and the demo.
//!
//! Every frame is emitted with smoltcp's `wire` (`Repr::emit` and the packet views'
//! `fill_checksum`), an implementation independent of `lvs_core::wire`, so a test that
//! builds its input here and checks its output with smoltcp never checks our code
//! against itself.
//!
//! Conventions: Ethernet II from [`CLIENT_MAC`] to [`DIRECTOR_MAC`], TTL / hop limit
//! 64, IPv4 with DF set and identification 0 (smoltcp's `Ipv4Repr::emit`), IPv6 with
//! traffic class and flow label 0, valid checksums everywhere unless a function's name
//! says otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet,
    Icmpv6Message, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// The client's MAC (source of every frame built here).
pub const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The director's MAC (destination of every frame built here).
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// A real server's MAC (the DR next hop).
pub const REAL_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x03];

/// Length of an Ethernet II header without a VLAN tag.
pub const ETH_HEADER_LEN: usize = 14;
/// The TPID of an 802.1Q tag.
pub const VLAN_TPID: u16 = 0x8100;
/// TTL / hop limit of every packet built here.
pub const HOP_LIMIT: u8 = 64;
/// Sequence number of every TCP segment built here.
pub const TCP_SEQ: i32 = 0x1234_5678;
/// Acknowledgement number of every TCP segment with ACK built here (0 without ACK).
pub const TCP_ACK: i32 = 0x0abc_def0;
/// Window of every TCP segment built here.
pub const TCP_WINDOW: u16 = 64240;

/// A transport 4-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl Flow {
    /// 198.51.100.7:40000 → 203.0.113.10:80 (a client to a VIP).
    pub fn v4() -> Flow {
        Flow {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            sport: 40000,
            dport: 80,
        }
    }

    /// [2001:db8:c::7]:40000 → [2001:db8:f::10]:80 (a client to a VIP).
    pub fn v6() -> Flow {
        Flow {
            src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7)),
            dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10)),
            sport: 40000,
            dport: 80,
        }
    }

    /// The reply direction: addresses and ports swapped.
    pub fn reversed(&self) -> Flow {
        Flow {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// Whether both addresses are IPv4.
    pub fn is_v4(&self) -> bool {
        self.src.is_ipv4()
    }
}

/// The kinds of ICMP error [`icmp_error`] builds.
#[derive(Clone, Copy, Debug)]
pub enum IcmpError {
    /// ICMPv4 type 3 code 3; ICMPv6 type 1 code 4.
    PortUnreachable,
    /// ICMPv4 type 3 code 4 (fragmentation needed) with this next-hop MTU; ICMPv6 type 2
    /// (packet too big) with this MTU.
    FragNeeded(u16),
    /// ICMPv4 type 11 code 0; ICMPv6 type 3 code 0 (hop limit exceeded in transit).
    TimeExceeded,
}

fn addr(a: IpAddr) -> IpAddress {
    IpAddress::from(a)
}

fn same_family(a: IpAddr, b: IpAddr) {
    assert_eq!(
        a.is_ipv4(),
        b.is_ipv4(),
        "frames: mixed address families {a} / {b}"
    );
}

/// A bare TCP segment (header of 20 bytes, no options) with `flags` as the raw flags
/// byte (`lvs_core::wire::TcpFlags` bits), the checksum computed over `src`/`dst`.
pub fn tcp_segment(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    same_family(src, dst);
    let ack = flags & 0x10 != 0;
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control: TcpControl::None,
        seq_number: TcpSeqNumber(TCP_SEQ),
        ack_number: ack.then_some(TcpSeqNumber(TCP_ACK)),
        window_len: TCP_WINDOW,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    repr.emit(&mut p, &addr(src), &addr(dst), &caps);
    // The Repr knows one control flag at a time; the raw byte takes any combination.
    p.set_fin(flags & 0x01 != 0);
    p.set_syn(flags & 0x02 != 0);
    p.set_rst(flags & 0x04 != 0);
    p.set_psh(flags & 0x08 != 0);
    p.set_ack(flags & 0x10 != 0);
    p.set_urg(flags & 0x20 != 0);
    p.set_ece(flags & 0x40 != 0);
    p.set_cwr(flags & 0x80 != 0);
    p.fill_checksum(&addr(src), &addr(dst));
    buf
}

/// A bare UDP datagram; `checksum` false leaves the checksum field 0 (IPv4 only).
pub fn udp_datagram(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    checksum: bool,
) -> Vec<u8> {
    same_family(src, dst);
    assert!(
        checksum || src.is_ipv4(),
        "frames: a UDP checksum is mandatory over IPv6"
    );
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    let mut buf = vec![0u8; repr.header_len() + payload.len()];
    let mut caps = ChecksumCapabilities::default();
    if !checksum {
        caps.udp = Checksum::None;
    }
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf[..]),
        &addr(src),
        &addr(dst),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    buf
}

/// A bare IP packet (IPv4 without options, DF set, ident 0; or IPv6 without extension
/// headers) carrying `payload` as protocol `protocol`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let next_header = IpProtocol::from(protocol);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let repr = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header,
                payload_len: payload.len(),
                hop_limit: HOP_LIMIT,
            };
            let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p, &ChecksumCapabilities::default());
            p.payload_mut().copy_from_slice(payload);
            buf
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header,
                payload_len: payload.len(),
                hop_limit: HOP_LIMIT,
            };
            let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
            let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p);
            p.payload_mut().copy_from_slice(payload);
            buf
        }
        _ => panic!("frames: mixed address families {src} / {dst}"),
    }
}

/// An Ethernet II frame from [`CLIENT_MAC`] to [`DIRECTOR_MAC`] around an IP packet; the
/// EtherType follows the packet's version nibble.
pub fn ethernet(ip: &[u8]) -> Vec<u8> {
    let ethertype = match ip.first().map(|b| b >> 4) {
        Some(6) => EthernetProtocol::Ipv6,
        _ => EthernetProtocol::Ipv4,
    };
    ethernet_with(CLIENT_MAC, DIRECTOR_MAC, u16::from(ethertype), ip)
}

/// An Ethernet II frame with explicit addresses and EtherType.
pub fn ethernet_with(src: [u8; 6], dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype: EthernetProtocol::from(ethertype),
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

/// Ethernet + IPv4/IPv6 + TCP with `flags` (`lvs_core::wire::TcpFlags` bits).
pub fn tcp(flow: &Flow, flags: u8, payload: &[u8]) -> Vec<u8> {
    ethernet(&tcp_ip(flow, flags, payload))
}

/// IPv4/IPv6 + TCP, no Ethernet header.
pub fn tcp_ip(flow: &Flow, flags: u8, payload: &[u8]) -> Vec<u8> {
    let seg = tcp_segment(flow.src, flow.dst, flow.sport, flow.dport, flags, payload);
    ip_packet(flow.src, flow.dst, 6, &seg)
}

/// Ethernet + IPv4/IPv6 + UDP with a checksum.
pub fn udp(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    ethernet(&udp_ip(flow, payload))
}

/// IPv4/IPv6 + UDP with a checksum, no Ethernet header.
pub fn udp_ip(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    let d = udp_datagram(flow.src, flow.dst, flow.sport, flow.dport, payload, true);
    ip_packet(flow.src, flow.dst, 17, &d)
}

/// Ethernet + IPv4 + UDP with the checksum field 0 ("no checksum"). Panics for IPv6.
pub fn udp_v4_no_checksum(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    let d = udp_datagram(flow.src, flow.dst, flow.sport, flow.dport, payload, false);
    ethernet(&ip_packet(flow.src, flow.dst, 17, &d))
}

/// The offset of the IP header in an Ethernet frame (14, or 18 after one 802.1Q tag).
pub fn l3_offset(frame: &[u8]) -> usize {
    if frame.len() >= 14 && u16::from_be_bytes([frame[12], frame[13]]) == VLAN_TPID {
        ETH_HEADER_LEN + 4
    } else {
        ETH_HEADER_LEN
    }
}

/// The IP packet inside an Ethernet frame (optionally 802.1Q-tagged), Ethernet padding
/// excluded (the IP length fields decide). Panics on a frame that does not hold one.
pub fn ip_of(frame: &[u8]) -> &[u8] {
    let ip = &frame[l3_offset(frame)..];
    let len = match ip[0] >> 4 {
        4 => usize::from(
            Ipv4Packet::new_checked(ip)
                .expect("frames: IPv4")
                .total_len(),
        ),
        6 => Ipv6Packet::new_checked(ip)
            .expect("frames: IPv6")
            .total_len(),
        v => panic!("frames: IP version {v}"),
    };
    &ip[..len]
}

/// An ICMPv4/ICMPv6 error from `src` to `dst` (family of `src`) quoting the IP packet of
/// `offending_frame` (an Ethernet frame, optionally tagged): IPv4 quotes the header and 8
/// bytes (RFC 792), IPv6 as much as fits in 1280 bytes (RFC 4443). Untagged Ethernet
/// from [`CLIENT_MAC`] to [`DIRECTOR_MAC`]; valid checksums.
pub fn icmp_error(src: IpAddr, dst: IpAddr, kind: IcmpError, offending_frame: &[u8]) -> Vec<u8> {
    ethernet(&icmp_error_ip(src, dst, kind, ip_of(offending_frame)))
}

/// [`icmp_error`] quoting a bare IP packet, without the Ethernet header.
pub fn icmp_error_ip(src: IpAddr, dst: IpAddr, kind: IcmpError, offending_ip: &[u8]) -> Vec<u8> {
    same_family(src, dst);
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let ihl = usize::from(offending_ip[0] & 0x0f) * 4;
            let quote = &offending_ip[..(ihl + 8).min(offending_ip.len())];
            let (msg, code, mtu) = match kind {
                IcmpError::PortUnreachable => (Icmpv4Message::DstUnreachable, 3, 0),
                IcmpError::FragNeeded(mtu) => (Icmpv4Message::DstUnreachable, 4, mtu),
                IcmpError::TimeExceeded => (Icmpv4Message::TimeExceeded, 0, 0),
            };
            let mut buf = vec![0u8; 8 + quote.len()];
            let mut m = Icmpv4Packet::new_unchecked(&mut buf[..]);
            m.set_msg_type(msg);
            m.set_msg_code(code);
            m.data_mut().copy_from_slice(quote);
            // Bytes 4..8: unused, or (RFC 1191) unused + next-hop MTU. No setter in smoltcp.
            buf[4..6].fill(0);
            buf[6..8].copy_from_slice(&mtu.to_be_bytes());
            Icmpv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
            ip_packet(src, dst, 1, &buf)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let quote = &offending_ip[..offending_ip.len().min(1280 - 40 - 8)];
            let mut buf = vec![0u8; 8 + quote.len()];
            let mut m = Icmpv6Packet::new_unchecked(&mut buf[..]);
            match kind {
                IcmpError::PortUnreachable => {
                    m.set_msg_type(Icmpv6Message::DstUnreachable);
                    m.set_msg_code(4); // the unused word stays zero
                }
                IcmpError::FragNeeded(mtu) => {
                    m.set_msg_type(Icmpv6Message::PktTooBig);
                    m.set_msg_code(0);
                    m.set_pkt_too_big_mtu(u32::from(mtu));
                }
                IcmpError::TimeExceeded => {
                    m.set_msg_type(Icmpv6Message::TimeExceeded);
                    m.set_msg_code(0); // the unused word stays zero
                }
            }
            m.payload_mut().copy_from_slice(quote);
            m.fill_checksum(&s, &d);
            ip_packet(src, dst, 58, &buf)
        }
        _ => unreachable!(),
    }
}

/// Inserts an 802.1Q tag with `tci` after the Ethernet addresses.
pub fn with_vlan(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&VLAN_TPID.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&frame[12..]);
    out
}

/// Applies `f` to the IPv4 header of an Ethernet frame (tagged or not) and refills the
/// header checksum. For fields the L4 checksums do not cover (TOS, ident, flags, TTL).
pub fn modify_ipv4(frame: &mut [u8], f: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
    let off = l3_offset(frame);
    let mut p = Ipv4Packet::new_unchecked(&mut frame[off..]);
    f(&mut p);
    p.fill_checksum();
}

/// Applies `f` to the IPv6 header of an Ethernet frame (tagged or not). For fields the L4
/// checksums do not cover (traffic class, flow label, hop limit).
pub fn modify_ipv6(frame: &mut [u8], f: impl FnOnce(&mut Ipv6Packet<&mut [u8]>)) {
    let off = l3_offset(frame);
    f(&mut Ipv6Packet::new_unchecked(&mut frame[off..]));
}

/// An IP-in-IP packet: an outer header from `outer_src` to `outer_dst` (protocol 4 for an
/// inner IPv4 packet, 41 for IPv6) around the bare IP packet `inner`.
pub fn ipip(outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    let protocol = if inner[0] >> 4 == 6 { 41 } else { 4 };
    ip_packet(outer_src, outer_dst, protocol, inner)
}

/// An IPv4 packet with header options (`options` padded with EOL to a multiple of 4).
pub fn ipv4_with_options(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    assert!(opts.len() <= 40, "frames: IPv4 options over 40 bytes");
    let hlen = 20 + opts.len();
    let base = ip_packet(src.into(), dst.into(), protocol, payload);
    let mut buf = Vec::with_capacity(hlen + payload.len());
    buf.extend_from_slice(&base[..20]);
    buf.extend_from_slice(&opts);
    buf.extend_from_slice(payload);
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    p.set_header_len(hlen as u8);
    p.set_total_len((hlen + payload.len()) as u16);
    p.fill_checksum();
    buf
}

/// An IPv4 fragment: `data` (a slice of the datagram's payload) at byte offset `offset`
/// (a multiple of 8), with More Fragments as given and DF clear.
pub fn ipv4_fragment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ident: u16,
    offset: u16,
    more: bool,
    data: &[u8],
) -> Vec<u8> {
    assert!(
        offset.is_multiple_of(8),
        "frames: fragment offset not a multiple of 8"
    );
    let mut buf = ip_packet(src.into(), dst.into(), protocol, data);
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    p.set_ident(ident);
    p.clear_flags();
    p.set_more_frags(more);
    p.set_frag_offset(offset);
    p.fill_checksum();
    buf
}

/// An IPv6 packet whose upper-layer header (`protocol`, `payload`) follows a chain of
/// extension headers, each `(type, body)` where `body` excludes the 2 bytes of next
/// header and length and is padded with PadN to a multiple of 8 bytes in total
/// (hop-by-hop 0, routing 43, fragment 44, destination options 60).
pub fn ipv6_with_ext(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ext: &[(u8, Vec<u8>)],
    protocol: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, body)) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(protocol, |e| e.0);
        let mut h = vec![next, 0];
        h.extend_from_slice(body);
        let pad = (8 - h.len() % 8) % 8;
        match pad {
            0 => {}
            1 => h.push(0), // Pad1
            n => {
                h.push(1); // PadN
                h.push((n - 2) as u8);
                h.extend(std::iter::repeat_n(0, n - 2));
            }
        }
        h[1] = (h.len() / 8 - 1) as u8;
        chain.extend_from_slice(&h);
    }
    chain.extend_from_slice(payload);
    let first = ext.first().map_or(protocol, |e| e.0);
    ip_packet(src.into(), dst.into(), first, &chain)
}

/// The body (6 bytes after next header and reserved) of an IPv6 fragment header.
pub fn ipv6_fragment_body(offset: u16, more: bool, ident: u32) -> Vec<u8> {
    assert!(
        offset.is_multiple_of(8),
        "frames: fragment offset not a multiple of 8"
    );
    let off_flags = offset | u16::from(more);
    let mut b = off_flags.to_be_bytes().to_vec();
    b.extend_from_slice(&ident.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_frames_parse_with_smoltcp() {
        for flow in [Flow::v4(), Flow::v6()] {
            let f = tcp(&flow, 0x12, b"hello");
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            assert_eq!(eth.src_addr(), EthernetAddress(CLIENT_MAC));
            let seg = match flow.src {
                IpAddr::V4(_) => {
                    let p = Ipv4Packet::new_checked(eth.payload()).unwrap();
                    Ipv4Repr::parse(&p, &ChecksumCapabilities::default()).unwrap();
                    p.payload()
                }
                IpAddr::V6(_) => Ipv6Packet::new_checked(eth.payload()).unwrap().payload(),
            };
            let t = TcpPacket::new_checked(seg).unwrap();
            assert!(t.verify_checksum(&addr(flow.src), &addr(flow.dst)));
            assert!(t.syn() && t.ack() && !t.fin());
            assert_eq!(t.payload(), b"hello");
        }
    }

    #[test]
    fn icmp_errors_verify() {
        let f4 = udp(&Flow::v4(), &[7; 100]);
        let e = icmp_error(
            Flow::v4().dst,
            Flow::v4().src,
            IcmpError::FragNeeded(1400),
            &f4,
        );
        let ip = Ipv4Packet::new_checked(ip_of(&e)).unwrap();
        let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum());
        assert_eq!(m.data().len(), 28);
        let f6 = udp(&Flow::v6(), &[7; 1500]);
        let e = icmp_error(
            Flow::v6().dst,
            Flow::v6().src,
            IcmpError::FragNeeded(1280),
            &f6,
        );
        assert_eq!(ip_of(&e).len(), 1280);
        let ip = Ipv6Packet::new_checked(ip_of(&e)).unwrap();
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(m.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
        assert_eq!(m.pkt_too_big_mtu(), 1280);
    }

    #[test]
    fn vlan_and_ext_headers() {
        let f = with_vlan(&tcp(&Flow::v4(), 0x02, &[]), 0x0064);
        assert_eq!(l3_offset(&f), 18);
        assert_eq!(ip_of(&f).len(), 40);
        let Flow { src, dst, .. } = Flow::v6();
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
            unreachable!()
        };
        let p = ipv6_with_ext(s, d, &[(0, vec![]), (60, vec![0; 10])], 17, &[0; 8]);
        assert_eq!(p.len(), 40 + 8 + 16 + 8);
        assert_eq!(Ipv6Packet::new_checked(&p[..]).unwrap().payload_len(), 32);
    }
}
