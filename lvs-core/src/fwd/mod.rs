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
    self, EthernetAddress, EthernetFrame, FrameInfo, Icmpv6Packet, IpVersion, Ipv4Packet,
    Ipv6Packet, L4Info, TcpPacket, UdpPacket,
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

/// Rewrites the source and/or the destination (address and port) of an IP packet in
/// place: the core of NAT and FULLNAT.
///
/// Fixes the IPv4 header checksum and, through the pseudo-header and the ports, the TCP,
/// UDP (a zero UDP checksum over IPv4 stays zero) and ICMPv6 checksums, all
/// incrementally. Ports are rewritten for TCP and UDP (the first fragment included,
/// whose checksum covers the whole datagram); a later fragment, or a protocol without
/// ports, gets its addresses rewritten only. ICMP errors need [`icmp::rewrite_error`].
pub fn rewrite_tuple(
    frame: &mut [u8],
    info: &FrameInfo,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
) -> Result<(), Error> {
    let end = ip_bounds(frame, info)?;
    let v = info.ip.version;
    let l3 = info.l3_offset;
    let l4 = info.l4_offset();

    let mut addr = Delta::ZERO;
    for (ep, old) in [(&src, &info.ip.src), (&dst, &info.ip.dst)] {
        if let Some(ep) = ep {
            if !same_family(&ep.addr, v) {
                return Err(Error::FamilyMismatch);
            }
            addr.add_addr(old, &ep.addr);
        }
    }
    // Check L4 bounds before the first write, so an error leaves the frame untouched.
    let l4_need = match info.l4 {
        L4Info::Tcp { .. } => wire::tcp::HEADER_LEN,
        L4Info::Udp { .. } => wire::udp::HEADER_LEN,
        L4Info::Icmp(_) if v == IpVersion::V6 => wire::icmpv6::HEADER_LEN,
        _ => 0,
    };
    if l4 + l4_need > end {
        return Err(Error::Mismatch);
    }

    let ip = &mut frame[l3..end];
    if let Some(ep) = &src {
        write_addr(ip, v, &ep.addr, true);
    }
    if let Some(ep) = &dst {
        write_addr(ip, v, &ep.addr, false);
    }
    if v == IpVersion::V4 && !addr.is_zero() {
        let mut p = Ipv4Packet::new_unchecked(&mut *ip);
        let c = addr.apply(p.checksum());
        p.set_checksum(c);
    }

    let seg = &mut frame[l4..end];
    match info.l4 {
        L4Info::Tcp {
            src_port, dst_port, ..
        } => {
            let mut t = TcpPacket::new_unchecked(seg);
            let mut d = addr;
            if let Some(ep) = &src {
                d.add16(src_port, ep.port);
                t.set_src_port(ep.port);
            }
            if let Some(ep) = &dst {
                d.add16(dst_port, ep.port);
                t.set_dst_port(ep.port);
            }
            let c = d.apply(t.checksum());
            t.set_checksum(c);
        }
        L4Info::Udp { src_port, dst_port } => {
            let mut u = UdpPacket::new_unchecked(seg);
            let mut d = addr;
            if let Some(ep) = &src {
                d.add16(src_port, ep.port);
                u.set_src_port(ep.port);
            }
            if let Some(ep) = &dst {
                d.add16(dst_port, ep.port);
                u.set_dst_port(ep.port);
            }
            let c = d.apply_udp(u.checksum());
            u.set_checksum(c);
        }
        L4Info::Icmp(_) if v == IpVersion::V6 => {
            // ICMPv6 covers the pseudo-header; ICMPv4 does not.
            let mut m = Icmpv6Packet::new_unchecked(seg);
            let c = addr.apply(m.checksum());
            m.set_checksum(c);
        }
        _ => {
            // A later fragment: its datagram's L4 checksum sits in the first fragment and
            // is fixed there. Other protocols: no checksum we know covers addresses.
            lvs_trace!(
                "rewrite_tuple: addresses only, protocol {}",
                u8::from(info.ip.protocol)
            );
        }
    }
    Ok(())
}

/// Sets the Ethernet source and destination of a frame (the next hop, after routing).
pub fn set_macs(frame: &mut [u8], src: EthernetAddress, dst: EthernetAddress) -> Result<(), Error> {
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| Error::Mismatch)?;
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
    Ok(())
}
