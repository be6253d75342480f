//! ICMP errors about forwarded connections.
//!
//! [`rewrite_error`] rewrites an ICMPv4/ICMPv6 error (destination unreachable,
//! fragmentation needed / packet too big, time exceeded, parameter problem) so that it
//! fits the other side of a NAT or FULLNAT connection: the outer addresses, and the
//! quoted datagram's addresses and ports. Every checksum involved is updated
//! incrementally: the outer IPv4 header, the quoted IPv4 header, the quoted TCP/UDP
//! checksum when the quote reaches it, and the ICMP checksum (which covers the quote,
//! and for ICMPv6 the outer pseudo-header too).
//!
//! [`too_big_reply`] turns a packet that cannot be tunnelled within the MTU into the ICMP
//! "fragmentation needed" (IPv4) or "packet too big" (IPv6) answer for its sender, in
//! the same buffer.

use core::net::IpAddr;
use core::ops::Range;

use super::{Endpoint, Error, ip_bounds, same_family, write_addr};
use crate::checksum::Delta;
use crate::wire::{
    EtherType, EthernetAddress, EthernetFrame, FrameInfo, Icmpv4Packet, Icmpv6Packet, IpProtocol,
    IpVersion, Ipv4Packet, Ipv6Packet, L4Info, icmpv4, icmpv6,
};

/// What to change in an ICMP error and in the datagram it quotes. `None` leaves a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRewrite {
    /// New outer source address.
    pub outer_src: Option<IpAddr>,
    /// New outer destination address.
    pub outer_dst: Option<IpAddr>,
    /// New source (address, port) of the quoted datagram.
    pub inner_src: Option<Endpoint>,
    /// New destination (address, port) of the quoted datagram.
    pub inner_dst: Option<Endpoint>,
}

impl IcmpRewrite {
    /// Changes nothing; a base for struct update syntax.
    pub const NONE: IcmpRewrite = IcmpRewrite {
        outer_src: None,
        outer_dst: None,
        inner_src: None,
        inner_dst: None,
    };
}

/// Offset of the L4 checksum within a TCP or UDP header.
fn l4_checksum_offset(p: IpProtocol) -> Option<usize> {
    match p {
        IpProtocol::Tcp => Some(16),
        IpProtocol::Udp => Some(6),
        _ => None,
    }
}

#[inline]
fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Rewrites an ICMP error and the datagram it quotes (see the module docs).
///
/// The quoted datagram must be TCP or UDP with its ports quoted when a port is to change;
/// address-only rewrites work for any quoted protocol. Errors leave the frame untouched.
pub fn rewrite_error(frame: &mut [u8], info: &FrameInfo, rw: &IcmpRewrite) -> Result<(), Error> {
    let end = ip_bounds(frame, info)?;
    let v = info.ip.version;
    let inner = match info.l4 {
        L4Info::Icmp(i) if i.is_error => i.inner.ok_or(Error::NotIcmpError)?,
        _ => return Err(Error::NotIcmpError),
    };
    let iv = inner.version;
    for a in [rw.outer_src, rw.outer_dst].into_iter().flatten() {
        if !same_family(&a, v) {
            return Err(Error::FamilyMismatch);
        }
    }
    for e in [rw.inner_src, rw.inner_dst].into_iter().flatten() {
        if !same_family(&e.addr, iv) {
            return Err(Error::FamilyMismatch);
        }
    }
    let l4 = info.l4_offset();
    let ihl = inner.header_len;
    let inner_l4 = inner.offset.checked_add(ihl).ok_or(Error::Mismatch)?;
    if l4 + 8 > end || inner_l4 > end || inner.offset != l4 + 8 {
        return Err(Error::Mismatch);
    }
    let wants_ports = rw.inner_src.is_some() || rw.inner_dst.is_some();
    let ports = inner.ports.filter(|_| inner_l4 + 4 <= end);
    if wants_ports && ports.is_none() && matches!(inner.protocol, IpProtocol::Tcp | IpProtocol::Udp)
    {
        return Err(Error::NotIcmpError);
    }

    // Deltas: outer addresses; quoted addresses; quoted ports.
    let mut outer = Delta::ZERO;
    if let Some(a) = rw.outer_src {
        outer.add_addr(&info.ip.src, &a);
    }
    if let Some(a) = rw.outer_dst {
        outer.add_addr(&info.ip.dst, &a);
    }
    let mut inner_addr = Delta::ZERO;
    if let Some(e) = rw.inner_src {
        inner_addr.add_addr(&inner.src, &e.addr);
    }
    if let Some(e) = rw.inner_dst {
        inner_addr.add_addr(&inner.dst, &e.addr);
    }
    let mut inner_ports = Delta::ZERO;
    let (old_sport, old_dport) = ports.unwrap_or((0, 0));
    if ports.is_some() {
        if let Some(e) = rw.inner_src {
            inner_ports.add16(old_sport, e.port);
        }
        if let Some(e) = rw.inner_dst {
            inner_ports.add16(old_dport, e.port);
        }
    }
    // Everything inside the ICMP message that changes sums into `icmp`.
    let mut icmp = inner_addr.merge(inner_ports);
    if v == IpVersion::V6 {
        icmp = icmp.merge(outer);
    }

    // The outer header.
    let l3 = info.l3_offset;
    {
        let ip = &mut frame[l3..end];
        if let Some(a) = rw.outer_src {
            write_addr(ip, v, &a, true);
        }
        if let Some(a) = rw.outer_dst {
            write_addr(ip, v, &a, false);
        }
        if v == IpVersion::V4 && !outer.is_zero() {
            let mut p = Ipv4Packet::new_unchecked(ip);
            let c = outer.apply(p.checksum());
            p.set_checksum(c);
        }
    }

    // The quoted header: addresses, and its own IPv4 header checksum.
    {
        let q = &mut frame[inner.offset..end];
        if let Some(e) = rw.inner_src {
            write_addr(q, iv, &e.addr, true);
        }
        if let Some(e) = rw.inner_dst {
            write_addr(q, iv, &e.addr, false);
        }
        if iv == IpVersion::V4 && !inner_addr.is_zero() {
            let old = get16(q, 10);
            let new = inner_addr.apply(old);
            put16(q, 10, new);
            icmp.add16(old, new);
        }
    }

    // The quoted ports, and the quoted L4 checksum when the quote reaches it.
    if ports.is_some() {
        let seg = &mut frame[inner_l4..end];
        if let Some(e) = rw.inner_src {
            put16(seg, 0, e.port);
        }
        if let Some(e) = rw.inner_dst {
            put16(seg, 2, e.port);
        }
        if let Some(off) = l4_checksum_offset(inner.protocol)
            && off + 2 <= seg.len()
        {
            let old = get16(seg, off);
            let d = inner_addr.merge(inner_ports);
            // UDP never carries a computed zero (RFC 768, RFC 8200 §8.1): 0xffff instead.
            let new = if inner.protocol == IpProtocol::Udp {
                d.apply_udp(old)
            } else {
                d.apply(old)
            };
            put16(seg, off, new);
            icmp.add16(old, new);
        }
    }

    // The ICMP checksum (offset 2 in both ICMPv4 and ICMPv6).
    let m = &mut frame[l4..end];
    let c = icmp.apply(get16(m, 2));
    put16(m, 2, c);
    Ok(())
}

/// The most of the offending datagram an ICMPv4 error quotes: the reply stays within 576
/// bytes (RFC 1812 §4.3.2.3).
pub const QUOTE_MAX_V4: usize = 576 - 20 - 8;
/// The most an ICMPv6 error quotes: the reply stays within the IPv6 minimum MTU
/// (RFC 4443 §2.4).
pub const QUOTE_MAX_V6: usize = 1280 - 40 - 8;

/// Turns the frame `buf[frame]` (parsed as `info`) into an ICMP "fragmentation needed"
/// (IPv4, type 3 code 4) or "packet too big" (IPv6, type 2) error for its sender,
/// announcing `mtu`, from `src` (the address the client spoke to: the VIP, as Linux
/// answers for a local destination). The Ethernet addresses are swapped; the quote is
/// as much of the packet as RFC 1812 / RFC 4443 allow and the buffer holds. Returns the
/// range of the reply in `buf`.
pub fn too_big_reply(
    buf: &mut [u8],
    frame: Range<usize>,
    info: &FrameInfo,
    src: IpAddr,
    mtu: u16,
    ident: u16,
) -> Result<Range<usize>, Error> {
    let head = frame.start;
    let f = buf.get(frame.clone()).ok_or(Error::Mismatch)?;
    let end = ip_bounds(f, info)?;
    let v = info.ip.version;
    if !same_family(&src, v) {
        return Err(Error::FamilyMismatch);
    }
    let l2 = info.l3_offset;
    let (hdr, limit) = match v {
        IpVersion::V4 => (20, QUOTE_MAX_V4),
        IpVersion::V6 => (40, QUOTE_MAX_V6),
    };
    let ip_len = end - l2;
    let room = buf.len() - head;
    let quote_len = ip_len.min(limit).min(room.saturating_sub(l2 + hdr + 8));
    // At least the offending header and 8 bytes of what follows.
    if quote_len < (info.ip.header_len + 8).min(ip_len) {
        return Err(Error::NoRoom);
    }
    let ip_at = head + l2;
    let icmp_at = ip_at + hdr;
    let quote_at = icmp_at + 8;
    buf.copy_within(ip_at..ip_at + quote_len, quote_at);

    if l2 > 0 {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[head..ip_at]);
        let (s, d): (EthernetAddress, EthernetAddress) = (eth.src_addr(), eth.dst_addr());
        eth.set_src_addr(d);
        eth.set_dst_addr(s);
        eth.set_ethertype(match v {
            IpVersion::V4 => EtherType::Ipv4,
            IpVersion::V6 => EtherType::Ipv6,
        });
    }
    let icmp_len = 8 + quote_len;
    match (src, info.ip.src) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Ipv4Packet::new_unchecked(&mut buf[ip_at..icmp_at]);
            p.set_version(4);
            p.set_header_len(20);
            p.set_tos(0xc0); // CS6, network control, as Linux sends ICMP errors
            p.set_total_len((hdr + icmp_len) as u16);
            p.set_ident(ident);
            p.clear_flags();
            p.set_frag_offset(0);
            p.set_hop_limit(64);
            p.set_next_header(IpProtocol::Icmp);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            p.fill_checksum();
            let mut m = Icmpv4Packet::new_unchecked(&mut buf[icmp_at..quote_at + quote_len]);
            m.set_msg_type(icmpv4::Message::DstUnreachable);
            m.set_msg_code(icmpv4::code::FRAG_NEEDED);
            m.clear_reserved();
            m.set_next_hop_mtu(mtu);
            m.fill_checksum();
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Ipv6Packet::new_unchecked(&mut buf[ip_at..icmp_at]);
            p.set_version(6);
            p.set_traffic_class(0);
            p.set_flow_label(0);
            p.set_payload_len(icmp_len as u16);
            p.set_next_header(IpProtocol::Icmpv6);
            p.set_hop_limit(64);
            p.set_src_addr(s);
            p.set_dst_addr(d);
            let mut m = Icmpv6Packet::new_unchecked(&mut buf[icmp_at..quote_at + quote_len]);
            m.set_msg_type(icmpv6::Message::PktTooBig);
            m.set_msg_code(0);
            m.set_pkt_too_big_mtu(mtu as u32);
            m.fill_checksum(&s, &d);
        }
        _ => return Err(Error::FamilyMismatch),
    }
    Ok(head..quote_at + quote_len)
}
