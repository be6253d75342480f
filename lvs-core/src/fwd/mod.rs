//! The IPVS forwarding methods as pure functions over a frame.
//!
//! | method | ipvsadm | module | what changes |
//! |---|---|---|---|
//! | NAT | `-m`, masq | [`nat`] | inbound destination VIP:vport → RIP:rport; outbound source RIP:rport → VIP:vport |
//! | FULLNAT | `-b` (DPVS) | [`fullnat`] | inbound CIP:cport → VIP:vport becomes LIP:lport → RIP:rport; outbound the reverse |
//! | DR | `-g`, droute | [`dr`] | the destination MAC only |
//! | TUN | `-i`, tunnel | [`tun`] | an outer IPv4/IPv6 header in front (4in4, 6in6, 4in6, 6in4) |
//!
//! ICMP errors about a forwarded connection (destination unreachable, fragmentation
//! needed / packet too big, time exceeded) are rewritten by [`icmp`]: the outer header
//! and the quoted datagram both, with every checksum fixed.
//!
//! Every function takes the frame and the [`FrameInfo`] parsed from it, rewrites in
//! place, and updates checksums incrementally (RFC 1624): the payload is never read.
//! As in IPVS, the TTL is not decremented: the director delivers the packet locally and
//! sends it again. A `FrameInfo` that does not describe the frame gives
//! [`Error::Mismatch`], never a panic or an out-of-bounds write.

pub mod dr;
pub mod fullnat;
pub mod icmp;
pub mod nat;
pub mod tun;

use core::net::IpAddr;

use crate::checksum::Delta;
use crate::wire::{
    self, EthernetAddress, EthernetFrame, FrameInfo, IpVersion, Ipv4Packet, Ipv6Packet, L4Info,
};

/// Why a frame could not be rewritten.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The `FrameInfo` does not describe this frame (offsets outside it).
    Mismatch,
    /// A new address is not of the packet's family.
    FamilyMismatch,
    /// Not an ICMP error with a quoted datagram this rewrite understands.
    NotIcmpError,
    /// Not an IP-in-IP packet (decapsulation).
    NotTunnel,
    /// The packet is a fragment where a whole packet is needed.
    Fragmented,
    /// The buffer has no room for what must be added (encapsulation, ICMP reply).
    NoRoom,
    /// The encapsulated packet would exceed the MTU and must not be fragmented (DF set,
    /// or IPv6): answer the client with ICMP "fragmentation needed" / "packet too big"
    /// carrying this MTU (see [`icmp::too_big_reply`]).
    FragNeeded {
        /// The MTU to announce: the link MTU less the outer header.
        mtu: u16,
    },
    /// The encapsulated packet would exceed the MTU; fragmentation is allowed but this
    /// crate does not fragment.
    TooBig,
    /// The inner packet of a tunnel does not parse.
    Inner(wire::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Mismatch => f.write_str("frame info does not describe this frame"),
            Error::FamilyMismatch => f.write_str("address family differs from the packet's"),
            Error::NotIcmpError => f.write_str("not an ICMP error about a TCP/UDP datagram"),
            Error::NotTunnel => f.write_str("not an IP-in-IP packet"),
            Error::Fragmented => f.write_str("packet is a fragment"),
            Error::NoRoom => f.write_str("no room in the buffer"),
            Error::FragNeeded { mtu } => write!(f, "fragmentation needed (mtu {mtu})"),
            Error::TooBig => f.write_str("packet exceeds the MTU"),
            Error::Inner(e) => write!(f, "inner packet: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// A transport endpoint: address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Endpoint {
    /// IP address.
    pub addr: IpAddr,
    /// TCP/UDP port (ignored for protocols without ports).
    pub port: u16,
}

impl Endpoint {
    /// An endpoint from an address and a port.
    #[inline]
    pub const fn new(addr: IpAddr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }
}

/// Checks that `info`'s offsets lie inside `frame` and returns the end of the IP packet.
#[inline]
pub(crate) fn ip_bounds(frame: &[u8], info: &FrameInfo) -> Result<usize, Error> {
    let end = info
        .l3_offset
        .checked_add(info.ip.total_len)
        .ok_or(Error::Mismatch)?;
    let min_header = match info.ip.version {
        IpVersion::V4 => 20,
        IpVersion::V6 => 40,
    };
    let l4 = info
        .l3_offset
        .checked_add(info.ip.header_len)
        .ok_or(Error::Mismatch)?;
    if end > frame.len() || info.ip.header_len < min_header || l4 > end {
        return Err(Error::Mismatch);
    }
    Ok(end)
}

#[inline]
fn same_family(a: &IpAddr, v: IpVersion) -> bool {
    IpVersion::of(a) == v
}

/// Writes the source or destination address of the IP header at `l3` and returns the
/// old one. The caller has checked bounds and family.
#[inline]
fn write_addr(ip: &mut [u8], version: IpVersion, new: &IpAddr, source: bool) {
    match (version, new) {
        (IpVersion::V4, IpAddr::V4(a)) => {
            let mut p = Ipv4Packet::new_unchecked(ip);
            if source {
                p.set_src_addr(*a)
            } else {
                p.set_dst_addr(*a)
            }
        }
        (IpVersion::V6, IpAddr::V6(a)) => {
            let mut p = Ipv6Packet::new_unchecked(ip);
            if source {
                p.set_src_addr(*a)
            } else {
                p.set_dst_addr(*a)
            }
        }
        _ => {}
    }
}

/// An address family's header layout, so that the tuple rewrite is compiled once per
/// family with constant offsets instead of deciding on `IpAddr` for every field.
trait Family {
    /// The address as it sits in the header.
    type Addr: Copy + AsRef<[u8]>;
    /// IPv4: the header has its own checksum; ICMP has no pseudo-header.
    const V4: bool;
    /// Length of the fixed IP header, and the offsets of the addresses in it.
    const HLEN: usize;
    const SRC: usize;
    const DST: usize;
    fn addr(a: &IpAddr) -> Option<Self::Addr>;
    fn add(d: &mut Delta, old: &[u8], new: &Self::Addr);
}

struct V4;
struct V6;

impl Family for V4 {
    type Addr = [u8; 4];
    const V4: bool = true;
    const HLEN: usize = 20;
    const SRC: usize = 12;
    const DST: usize = 16;
    #[inline(always)]
    fn addr(a: &IpAddr) -> Option<[u8; 4]> {
        match a {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        }
    }
    #[inline(always)]
    fn add(d: &mut Delta, old: &[u8], new: &[u8; 4]) {
        if let Ok(old) = <[u8; 4]>::try_from(old) {
            d.add32(old, *new);
        }
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    const V4: bool = false;
    const HLEN: usize = 40;
    const SRC: usize = 8;
    const DST: usize = 24;
    #[inline(always)]
    fn addr(a: &IpAddr) -> Option<[u8; 16]> {
        match a {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }
    #[inline(always)]
    fn add(d: &mut Delta, old: &[u8], new: &[u8; 16]) {
        if let Ok(old) = <&[u8; 16]>::try_from(old) {
            d.add128(old, new);
        }
    }
}

#[inline(always)]
fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline(always)]
fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Rewrites the source and/or the destination (address and port) of an IP packet in
/// place: the core of NAT and FULLNAT.
///
/// Fixes the IPv4 header checksum and, through the pseudo-header and the ports, the TCP,
/// UDP (a zero UDP checksum over IPv4 stays zero) and ICMPv6 checksums, all
/// incrementally. Ports are rewritten for TCP and UDP (the first fragment included,
/// whose checksum covers the whole datagram); a later fragment, or a protocol without
/// ports, gets its addresses rewritten only. ICMP errors need [`icmp::rewrite_error`].
#[inline(always)]
pub fn rewrite_tuple(
    frame: &mut [u8],
    info: &FrameInfo,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
) -> Result<(), Error> {
    match info.ip.version {
        IpVersion::V4 => rewrite::<V4>(frame, info, src, dst),
        IpVersion::V6 => rewrite::<V6>(frame, info, src, dst),
    }
}

#[inline(always)]
fn rewrite<F: Family>(
    frame: &mut [u8],
    info: &FrameInfo,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
) -> Result<(), Error> {
    // Every check before the first write, so an error leaves the frame untouched.
    if let Some(e) = &src
        && F::addr(&e.addr).is_none()
    {
        return Err(Error::FamilyMismatch);
    }
    if let Some(e) = &dst
        && F::addr(&e.addr).is_none()
    {
        return Err(Error::FamilyMismatch);
    }
    let end = ip_bounds(frame, info)?;
    let l3 = info.l3_offset;
    let l4 = info.l4_offset();
    let (sp, dp) = (src.map(|e| e.port), dst.map(|e| e.port));
    // One match on the L4 kind: each arm checks that the L4 header holds what it
    // rewrites before the first write, then rewrites the IP header and the L4 header.
    match info.l4 {
        L4Info::Tcp {
            src_port, dst_port, ..
        } if l4 + TCP_CSUM + 2 <= end => {
            let d = rewrite_ip::<F>(frame, l3, &src, &dst);
            fix_l4::<TCP_CSUM, false>(frame, l4, d, (src_port, dst_port), (sp, dp));
        }
        L4Info::Udp { src_port, dst_port } if l4 + UDP_CSUM + 2 <= end => {
            let d = rewrite_ip::<F>(frame, l3, &src, &dst);
            fix_l4::<UDP_CSUM, true>(frame, l4, d, (src_port, dst_port), (sp, dp));
        }
        // ICMPv6 covers the pseudo-header (no ports); ICMPv4 does not.
        L4Info::Icmp(_) if !F::V4 && l4 + ICMP_CSUM + 2 <= end => {
            let d = rewrite_ip::<F>(frame, l3, &src, &dst);
            fix_l4::<ICMP_CSUM, false>(frame, l4, d, (0, 0), (None, None));
        }
        L4Info::Tcp { .. } | L4Info::Udp { .. } => return Err(Error::Mismatch),
        L4Info::Icmp(_) if !F::V4 => return Err(Error::Mismatch),
        // A later fragment: its datagram's L4 checksum sits in the first fragment and is
        // fixed there. Other protocols: no checksum we know covers the addresses.
        _ => {
            lvs_trace!(
                "rewrite_tuple: addresses only, protocol {}",
                u8::from(info.ip.protocol)
            );
            rewrite_ip::<F>(frame, l3, &src, &dst);
        }
    }
    Ok(())
}

/// Writes the new addresses into the IP header at `l3` (fixing the IPv4 header checksum)
/// and returns the change for the L4 pseudo-header. The caller checked the bounds and
/// the families.
#[inline(always)]
fn rewrite_ip<F: Family>(
    frame: &mut [u8],
    l3: usize,
    src: &Option<Endpoint>,
    dst: &Option<Endpoint>,
) -> Delta {
    // `ip_bounds` proved header_len >= HLEN; a constant-length slice lets the compiler
    // drop the bounds checks of every constant offset below.
    let ip = &mut frame[l3..l3 + F::HLEN];
    let mut d = Delta::ZERO;
    if let Some(a) = src.as_ref().and_then(|e| F::addr(&e.addr)) {
        let field = &mut ip[F::SRC..F::SRC + a.as_ref().len()];
        F::add(&mut d, field, &a);
        field.copy_from_slice(a.as_ref());
    }
    if let Some(a) = dst.as_ref().and_then(|e| F::addr(&e.addr)) {
        let field = &mut ip[F::DST..F::DST + a.as_ref().len()];
        F::add(&mut d, field, &a);
        field.copy_from_slice(a.as_ref());
    }
    if F::V4 {
        let c = d.apply(get16(ip, 10));
        put16(ip, 10, c);
    }
    d
}

const TCP_CSUM: usize = 16;
const UDP_CSUM: usize = 6;
const ICMP_CSUM: usize = 2;

/// Rewrites the ports (when given) of the L4 header at `l4` and folds the address
/// change `d` and the port change into its checksum at `AT`. The caller checked that
/// `AT + 2` bytes are there.
#[inline(always)]
fn fix_l4<const AT: usize, const UDP: bool>(
    frame: &mut [u8],
    l4: usize,
    mut d: Delta,
    old: (u16, u16),
    new: (Option<u16>, Option<u16>),
) {
    let seg = &mut frame[l4..l4 + AT + 2];
    let c = get16(seg, AT);
    if let Some(p) = new.0 {
        d.add16(old.0, p);
        put16(seg, 0, p);
    }
    if let Some(p) = new.1 {
        d.add16(old.1, p);
        put16(seg, 2, p);
    }
    if UDP && c == 0 {
        return; // UDP over IPv4 without a checksum stays without (RFC 768)
    }
    let c = d.apply(c);
    // UDP never carries a computed zero: 0xffff instead (RFC 768, RFC 8200 §8.1).
    put16(seg, AT, if UDP && c == 0 { 0xffff } else { c });
}

/// Rewrites the source (`src`) and/or destination (`dst`) address and port of an
/// IPv4 TCP (`tcp`) or UDP frame at fixed offsets, with incremental checksums: the
/// rewrite of [`nat`] and [`fullnat`] for the frames the director's fast path takes
/// (untagged Ethernet, a 20-byte IPv4 header at 14, the L4 header at 34 with its
/// checksum inside the frame, ports `old`), without a [`FrameInfo`]. The bytes are the
/// same as those functions write (the same terms in the same incremental sums); UDP
/// without a checksum stays without. `false`, with the frame untouched, if the frame is
/// too short for the header fields.
#[inline(always)]
pub fn rewrite_v4_fixed(
    frame: &mut [u8],
    tcp: bool,
    old: (u16, u16),
    src: Option<([u8; 4], u16)>,
    dst: Option<([u8; 4], u16)>,
) -> bool {
    const L4: usize = 34;
    let Some((head, rest)) = frame.split_at_mut_checked(L4) else {
        return false;
    };
    let Ok(head) = <&mut [u8; L4]>::try_from(head) else {
        return false;
    };
    let at = if tcp { TCP_CSUM } else { UDP_CSUM };
    let Some(seg) = rest.get_mut(..at + 2) else {
        return false;
    };
    let mut d = Delta::ZERO;
    if let Some((a, _)) = src {
        let field = &mut head[14 + 12..14 + 16];
        if let Ok(o) = <[u8; 4]>::try_from(&*field) {
            d.add32(o, a);
        }
        field.copy_from_slice(&a);
    }
    if let Some((a, _)) = dst {
        let field = &mut head[14 + 16..14 + 20];
        if let Ok(o) = <[u8; 4]>::try_from(&*field) {
            d.add32(o, a);
        }
        field.copy_from_slice(&a);
    }
    let c = d.apply(get16(head, 14 + 10));
    put16(head, 14 + 10, c);
    let c = get16(seg, at);
    if let Some((_, p)) = src {
        d.add16(old.0, p);
        put16(seg, 0, p);
    }
    if let Some((_, p)) = dst {
        d.add16(old.1, p);
        put16(seg, 2, p);
    }
    if !tcp && c == 0 {
        return true; // UDP over IPv4 without a checksum stays without (RFC 768)
    }
    let c = d.apply(c);
    put16(seg, at, if !tcp && c == 0 { 0xffff } else { c });
    true
}

/// Sets the Ethernet source and destination of a frame (the next hop, after routing).
pub fn set_macs(frame: &mut [u8], src: EthernetAddress, dst: EthernetAddress) -> Result<(), Error> {
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| Error::Mismatch)?;
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures;

/// Table-driven fixtures: each input frame and the exact frame the method must produce,
/// both built by scapy with full checksums (`scripts/gen_fwd_fixtures.py`).
#[cfg(test)]
mod test {
    use super::fixtures::*;
    use super::icmp::{IcmpRewrite, too_big_reply};
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::vec::Vec;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }
    fn ep(a: IpAddr, p: u16) -> Endpoint {
        Endpoint::new(a, p)
    }
    const DMAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0d]);
    const RMAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);

    /// Applies `f` to a copy of `input` and checks the result is `expected`, byte for byte.
    fn check(
        input: &[u8],
        expected: &[u8],
        f: impl FnOnce(&mut [u8], &FrameInfo) -> Result<(), Error>,
    ) {
        let mut frame = input.to_vec();
        let info = FrameInfo::parse(&frame).unwrap();
        f(&mut frame, &info).unwrap();
        assert_eq!(hex(&frame), hex(expected));
    }

    fn hex(b: &[u8]) -> Vec<std::string::String> {
        b.chunks(16)
            .map(|c| c.iter().map(|x| std::format!("{x:02x}")).collect())
            .collect()
    }

    #[test]
    fn test_nat_inbound_v4_tcp_syn_with_options() {
        check(NAT_IN_V4_TCP, NAT_IN_V4_TCP_OUT, |f, i| {
            nat::inbound(f, i, ep(v4("10.0.0.11"), 8080))
        });
    }

    #[test]
    fn test_nat_outbound_v4_tcp_reply() {
        check(NAT_OUT_V4_TCP, NAT_OUT_V4_TCP_OUT, |f, i| {
            nat::outbound(f, i, ep(v4("203.0.113.10"), 80))
        });
    }

    #[test]
    fn test_nat_inbound_v4_udp_zero_checksum_stays_zero() {
        check(NAT_IN_V4_UDP0, NAT_IN_V4_UDP0_OUT, |f, i| {
            nat::inbound(f, i, ep(v4("10.0.0.11"), 5300))
        });
    }

    #[test]
    fn test_nat_inbound_v6_udp_vlan() {
        check(NAT_IN_V6_UDP_VLAN, NAT_IN_V6_UDP_VLAN_OUT, |f, i| {
            assert_eq!(i.vlan, Some(0x602a));
            nat::inbound(f, i, ep(v6("2001:db8:1::11"), 5300))
        });
    }

    #[test]
    fn test_fullnat_inbound_v6_tcp() {
        check(FULLNAT_IN_V6_TCP, FULLNAT_IN_V6_TCP_OUT, |f, i| {
            fullnat::inbound(
                f,
                i,
                ep(v6("2001:db8:1::1"), 5000),
                ep(v6("2001:db8:1::11"), 8080),
            )
        });
    }

    #[test]
    fn test_fullnat_outbound_v4_tcp() {
        check(FULLNAT_OUT_V4_TCP, FULLNAT_OUT_V4_TCP_OUT, |f, i| {
            fullnat::outbound(
                f,
                i,
                ep(v4("203.0.113.10"), 80),
                ep(v4("198.51.100.7"), 40000),
            )
        });
    }

    #[test]
    fn test_dr_changes_the_destination_mac_only() {
        check(DR_V4, DR_V4_OUT, |f, _| dr::forward(f, DMAC, RMAC));
    }

    #[test]
    fn test_nat_outbound_icmp_port_unreachable_v4() {
        check(ICMP_NAT_OUT_V4, ICMP_NAT_OUT_V4_OUT, |f, i| {
            nat::outbound_icmp(f, i, ep(v4("203.0.113.10"), 53))
        });
    }

    #[test]
    fn test_fullnat_inbound_icmpv6_packet_too_big() {
        check(ICMP_FULLNAT_IN_V6, ICMP_FULLNAT_IN_V6_OUT, |f, i| {
            fullnat::inbound_icmp(
                f,
                i,
                ep(v6("2001:db8:1::1"), 5000),
                ep(v6("2001:db8:1::11"), 8080),
            )
        });
    }

    fn tun_params(src: IpAddr, dst: IpAddr) -> tun::TunParams {
        tun::TunParams {
            src,
            dst,
            ident: 0x1234,
            flow_label: 0xabcde,
            mtu: 1500,
        }
    }

    /// Encapsulates `input` placed at `headroom` in a buffer of `extra` tailroom, and
    /// checks the result against `expected` (MACs set as the director would).
    fn check_encap(
        input: &[u8],
        expected: &[u8],
        p: &tun::TunParams,
        headroom: usize,
        extra: usize,
    ) {
        let mut buf = std::vec![0u8; headroom + input.len() + extra];
        buf[headroom..headroom + input.len()].copy_from_slice(input);
        let info = FrameInfo::parse(input).unwrap();
        let out = tun::encap(&mut buf, headroom..headroom + input.len(), &info, p).unwrap();
        set_macs(&mut buf[out.clone()], DMAC, RMAC).unwrap();
        assert_eq!(hex(&buf[out.clone()]), hex(expected));

        // And back: the real server's decapsulation restores the inner frame.
        let enc = FrameInfo::parse(&buf[out.clone()]).unwrap();
        let (inner, inner_info) = tun::decap(&mut buf, out, &enc).unwrap();
        assert_eq!(&buf[inner.start + 14..inner.end], &input[14..]);
        assert_eq!(inner_info.ip, info.ip);
    }

    #[test]
    fn test_tun_4in4_in_headroom_and_by_moving_the_packet() {
        let p = tun_params(v4("10.0.0.1"), v4("10.0.0.11"));
        check_encap(TUN_V4, TUN_4IN4_OUT, &p, 64, 0);
        check_encap(TUN_V4, TUN_4IN4_OUT, &p, 0, 20);
        let info = FrameInfo::parse(TUN_V4).unwrap();
        let mut small = TUN_V4.to_vec();
        let n = small.len();
        assert_eq!(tun::encap(&mut small, 0..n, &info, &p), Err(Error::NoRoom));
    }

    #[test]
    fn test_tun_4in4_fixed_matches_the_fixture() {
        let mut buf = std::vec![0u8; 64 + TUN_V4.len()];
        buf[64..].copy_from_slice(TUN_V4);
        let n = buf.len();
        let total = u16::from_be_bytes([TUN_V4[16], TUN_V4[17]]);
        let (s, d) = ([10, 0, 0, 1], [10, 0, 0, 11]);
        let out = tun::encap_v4_fixed(&mut buf, 64..n, total, s, d, 0x1234, 1500).unwrap();
        set_macs(&mut buf[out.clone()], DMAC, RMAC).unwrap();
        assert_eq!(hex(&buf[out]), hex(TUN_4IN4_OUT));
        // No headroom, or too big for the MTU: left to `encap`, the buffer untouched.
        let mut small = TUN_V4.to_vec();
        let n = small.len();
        assert_eq!(
            tun::encap_v4_fixed(&mut small, 0..n, total, s, d, 1, 1500),
            None
        );
        assert_eq!(small, TUN_V4);
        let mut b2 = std::vec![0u8; 64 + TUN_V4.len()];
        b2[64..].copy_from_slice(TUN_V4);
        let n = b2.len();
        assert_eq!(
            tun::encap_v4_fixed(&mut b2, 64..n, total, s, d, 1, total + 19),
            None
        );
        assert_eq!(&b2[64..], TUN_V4);
    }

    proptest::proptest! {
        /// The fixed-offset 4in4 encapsulation writes what `encap` writes, for any TOS
        /// (ECN CE included), DF, TTL, identification, padding and headroom, and declines
        /// exactly where `encap` would not work in the headroom.
        #[test]
        fn prop_tun_4in4_fixed_equals_encap(
            tos in proptest::prelude::any::<u8>(),
            df in proptest::prelude::any::<bool>(),
            ttl in proptest::prelude::any::<u8>(),
            ident in proptest::prelude::any::<u16>(),
            pad in 0usize..8,
            headroom in 0usize..40,
            mtu in 40u16..200,
        ) {
            let mut frame = TUN_V4.to_vec();
            frame[15] = tos;
            frame[20] = if df { 0x40 } else { 0 };
            frame[21] = 0;
            frame[22] = ttl;
            frame[24] = 0;
            frame[25] = 0;
            let c = crate::checksum::checksum(&frame[14..34]);
            frame[24..26].copy_from_slice(&c.to_be_bytes());
            frame.resize(frame.len() + pad, 0);
            let info = FrameInfo::parse(&frame).unwrap();
            let total = u16::from_be_bytes([frame[16], frame[17]]);
            let mut a = std::vec![0u8; headroom + frame.len()];
            a[headroom..].copy_from_slice(&frame);
            let mut b = a.clone();
            let range = headroom..a.len();
            let p = tun::TunParams { ident, mtu, ..tun_params(v4("10.0.0.1"), v4("10.0.0.11")) };
            let fixed = tun::encap_v4_fixed(&mut a, range.clone(), total, [10, 0, 0, 1], [10, 0, 0, 11], ident, mtu);
            match fixed {
                Some(out) => {
                    let want = tun::encap(&mut b, range, &info, &p).unwrap();
                    proptest::prop_assert_eq!(&out, &want);
                    proptest::prop_assert_eq!(&a[out.clone()], &b[want]);
                }
                None => {
                    proptest::prop_assert_eq!(&a[headroom..], &frame[..]);
                    let r = tun::encap(&mut b, range, &info, &p);
                    proptest::prop_assert!(headroom < 20 || r.is_err(), "{:?}", r);
                }
            }
        }
    }

    #[test]
    fn test_tun_6in6_and_6in4() {
        check_encap(
            TUN_V6,
            TUN_6IN6_OUT,
            &tun_params(v6("2001:db8:1::1"), v6("2001:db8:1::11")),
            40,
            0,
        );
        check_encap(
            TUN_V6,
            TUN_6IN4_OUT,
            &tun_params(v4("10.0.0.1"), v4("10.0.0.11")),
            40,
            0,
        );
    }

    #[test]
    fn test_tun_too_big_answers_frag_needed() {
        let info = FrameInfo::parse(TOO_BIG_V4).unwrap();
        let p = tun_params(v4("10.0.0.1"), v4("10.0.0.11"));
        let mut buf = std::vec![0u8; 64 + TOO_BIG_V4.len()];
        buf[64..].copy_from_slice(TOO_BIG_V4);
        let range = 64..buf.len();
        let err = tun::encap(&mut buf, range.clone(), &info, &p).unwrap_err();
        assert_eq!(err, Error::FragNeeded { mtu: 1480 });
        let Error::FragNeeded { mtu } = err else {
            unreachable!()
        };
        let reply = too_big_reply(&mut buf, range, &info, v4("203.0.113.10"), mtu, 0x55).unwrap();
        assert_eq!(hex(&buf[reply]), hex(TOO_BIG_V4_OUT));
    }

    #[test]
    fn test_tun_without_df_is_too_big_not_frag_needed() {
        let mut frame = TOO_BIG_V4.to_vec();
        // clear DF (byte 20 of the frame: flags) and fix the header checksum
        frame[20] &= !0x40;
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.fill_checksum();
        let info = FrameInfo::parse(&frame).unwrap();
        let n = frame.len();
        frame.resize(n + 20, 0);
        let p = tun_params(v4("10.0.0.1"), v4("10.0.0.11"));
        assert_eq!(tun::encap(&mut frame, 0..n, &info, &p), Err(Error::TooBig));
    }

    #[test]
    fn test_refusals_leave_the_frame_untouched() {
        let info = FrameInfo::parse(NAT_IN_V4_TCP).unwrap();
        let mut f = NAT_IN_V4_TCP.to_vec();
        assert_eq!(
            nat::inbound(&mut f, &info, ep(v6("2001:db8::1"), 1)),
            Err(Error::FamilyMismatch)
        );
        assert_eq!(
            nat::inbound_icmp(&mut f, &info, ep(v4("10.0.0.1"), 1)),
            Err(Error::NotIcmpError)
        );
        assert_eq!(
            tun::decap(&mut f, 0..NAT_IN_V4_TCP.len(), &info).map(|_| ()),
            Err(Error::NotTunnel)
        );
        // A FrameInfo from a longer frame than this one.
        let short = &mut f[..40];
        assert_eq!(
            nat::inbound(short, &info, ep(v4("10.0.0.1"), 1)),
            Err(Error::Mismatch)
        );
        assert_eq!(f, NAT_IN_V4_TCP);
        let icmp_info = FrameInfo::parse(ICMP_NAT_OUT_V4).unwrap();
        let rw = IcmpRewrite {
            inner_src: Some(ep(v6("::1"), 1)),
            ..IcmpRewrite::NONE
        };
        let mut g = ICMP_NAT_OUT_V4.to_vec();
        assert_eq!(
            icmp::rewrite_error(&mut g, &icmp_info, &rw),
            Err(Error::FamilyMismatch)
        );
        assert_eq!(g, ICMP_NAT_OUT_V4);
    }

    #[test]
    fn test_later_fragment_gets_addresses_only() {
        // A later fragment of a UDP datagram: no ports to rewrite; the IPv4 header
        // checksum still follows the address.
        let mut frame = NAT_IN_V4_UDP0.to_vec();
        frame[20] = 0x00;
        frame[21] = 0x10; // offset 128 bytes
        Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
        let info = FrameInfo::parse(&frame).unwrap();
        assert_eq!(info.l4, L4Info::None);
        let before_l4 = frame[34..].to_vec();
        nat::inbound(&mut frame, &info, ep(v4("10.0.0.11"), 5300)).unwrap();
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(10, 0, 0, 11));
        assert_eq!(&frame[34..], &before_l4[..]);
    }
}
