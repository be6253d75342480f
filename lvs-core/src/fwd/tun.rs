//! TUN (`ipvsadm -i`, IP tunnelling, `tunnel`): the packet is encapsulated in an outer
//! IP header from the director to the real server, which decapsulates it and answers the
//! client directly from the VIP. All four combinations: 4in4, 6in6, 4in6 and 6in4.
//!
//! [`encap`] builds the outer header as Linux IPVS does: DSCP copied from the inner
//! packet (ECN copied, CE sent as ECT(0) as `INET_ECN_encapsulate` does), the inner TTL /
//! hop limit copied, DF copied from an inner IPv4 header (set for inner IPv6), and the
//! caller's identification. It works in place when the buffer has headroom in front of
//! the frame (one copy of the Ethernet header), else it moves the packet back by the
//! outer header's length when there is tailroom.
//!
//! When the result would exceed the MTU and the inner packet may not be fragmented, it
//! returns [`Error::FragNeeded`] with the MTU to announce; [`super::icmp::too_big_reply`]
//! turns the packet into that answer.
//!
//! [`decap`] is the real server's side: this project's real servers need no kernel `ipip`
//! module.

use core::net::IpAddr;
use core::ops::Range;

use super::{Error, ip_bounds};
use crate::wire::ipip::{self, Outer};
use crate::wire::{
    EtherType, EthernetFrame, Fragment, FrameInfo, IpVersion, Ipv4Packet, Ipv6Packet, L4Info,
};

/// The outer header's parameters that the caller chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TunParams {
    /// Tunnel source: the director's address.
    pub src: IpAddr,
    /// Tunnel destination: the real server's address (RIP).
    pub dst: IpAddr,
    /// IPv4 identification of the outer header (a per-director counter).
    pub ident: u16,
    /// IPv6 flow label of the outer header (e.g. from the connection's hash, for ECMP).
    pub flow_label: u32,
    /// The output link's MTU (IP bytes).
    pub mtu: u16,
}

fn ethertype_of(v: IpVersion) -> EtherType {
    match v {
        IpVersion::V4 => EtherType::Ipv4,
        IpVersion::V6 => EtherType::Ipv6,
    }
}

/// ECN on encapsulation, as Linux's `INET_ECN_encapsulate`: CE in the inner header is
/// sent as ECT(0) outside.
#[inline]
fn outer_tos(inner_tos: u8) -> u8 {
    if inner_tos & 0x03 == 0x03 {
        (inner_tos & !0x03) | 0x02
    } else {
        inner_tos
    }
}

/// Encapsulates the frame `buf[frame]` (parsed as `info`) for the real server and returns
/// the range of the encapsulated frame in `buf`. The Ethernet header (with its VLAN tag)
/// is kept in front, its EtherType set to the outer version; Ethernet padding is dropped.
pub fn encap(
    buf: &mut [u8],
    frame: Range<usize>,
    info: &FrameInfo,
    p: &TunParams,
) -> Result<Range<usize>, Error> {
    let head = frame.start;
    let f = buf.get(frame.clone()).ok_or(Error::Mismatch)?;
    let end = ip_bounds(f, info)?;
    let ov = (Outer {
        src: p.src,
        dst: p.dst,
        tos: 0,
        hop_limit: 0,
        ident: 0,
        dont_frag: false,
        flow_label: 0,
    })
    .version()
    .ok_or(Error::FamilyMismatch)?;
    let olen = ipip::outer_len(ov);
    let l2 = info.l3_offset;
    let inner_len = end - l2;
    if inner_len + olen > p.mtu as usize {
        if info.ip.dont_fragment {
            return Err(Error::FragNeeded {
                mtu: p.mtu.saturating_sub(olen as u16),
            });
        }
        return Err(Error::TooBig);
    }

    // Outer fields from the inner header.
    let inner = &f[l2..end];
    let (tos, hop_limit, dont_frag) = match info.ip.version {
        IpVersion::V4 => {
            let ip = Ipv4Packet::new_unchecked(inner);
            (ip.tos(), ip.hop_limit(), ip.dont_frag())
        }
        IpVersion::V6 => {
            let ip = Ipv6Packet::new_unchecked(inner);
            (ip.traffic_class(), ip.hop_limit(), true)
        }
    };
    let outer = Outer {
        src: p.src,
        dst: p.dst,
        tos: outer_tos(tos),
        hop_limit,
        ident: p.ident,
        dont_frag,
        flow_label: p.flow_label & 0xf_ffff,
    };

    // Make room: L2 header moves back by `olen` into headroom, or the IP packet moves
    // forward by `olen` into tailroom.
    let new_head = if head >= olen {
        buf.copy_within(head..head + l2, head - olen);
        head - olen
    } else if head + l2 + olen + inner_len <= buf.len() {
        buf.copy_within(head + l2..head + end, head + l2 + olen);
        head
    } else {
        return Err(Error::NoRoom);
    };
    let outer_at = new_head + l2;
    outer
        .emit(&mut buf[outer_at..], info.ip.version, inner_len)
        .map_err(|_| Error::TooBig)?;
    if l2 > 0 {
        EthernetFrame::new_unchecked(&mut buf[new_head..outer_at]).set_ethertype(ethertype_of(ov));
    }
    Ok(new_head..outer_at + olen + inner_len)
}

/// [`encap`] for the frames the director's fast path takes: untagged Ethernet, an IPv4
/// packet with a 20-byte header at 14 whose total length is `total_len`, tunnelled 4in4
/// from `src` to `dst` with identification `ident`, without a [`FrameInfo`]. The same
/// bytes as [`encap`]. `None`, with the buffer untouched, where [`encap`] would do
/// something else: less than 20 bytes of headroom, a packet that does not fit `mtu`
/// with the outer header, or a frame shorter than its IPv4 header says.
#[inline]
pub fn encap_v4_fixed(
    buf: &mut [u8],
    frame: Range<usize>,
    total_len: u16,
    src: [u8; 4],
    dst: [u8; 4],
    ident: u16,
    mtu: u16,
) -> Option<Range<usize>> {
    const ETH: usize = 14;
    const OLEN: usize = 20;
    let head = frame.start;
    let inner_len = usize::from(total_len);
    let new_head = head.checked_sub(OLEN)?;
    if inner_len + OLEN > usize::from(mtu) || inner_len < 20 {
        return None;
    }
    let end = head.checked_add(ETH + inner_len)?;
    if end > frame.end {
        return None;
    }
    let region = buf.get_mut(new_head..end)?;
    let (tos, df, ttl) = (
        region[OLEN + ETH + 1],
        region[OLEN + ETH + 6] & 0x40,
        region[OLEN + ETH + 8],
    );
    region.copy_within(OLEN..OLEN + ETH, 0);
    let total = (OLEN + inner_len) as u16;
    let mut h = [0u8; OLEN];
    h[0] = 0x45;
    h[1] = outer_tos(tos);
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6] = df;
    h[8] = ttl;
    h[9] = ipip::protocol_for(IpVersion::V4).into();
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = crate::checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    region[ETH..ETH + OLEN].copy_from_slice(&h);
    Some(new_head..end)
}

/// Decapsulates the IP-in-IP frame `buf[frame]` (parsed as `info`): the outer header is
/// removed, the Ethernet header (if any) moves forward over it with its EtherType set to
/// the inner version, and the range of the inner frame is returned. The inner packet is
/// checked with [`FrameInfo::parse_ip`]; its result comes back too.
pub fn decap(
    buf: &mut [u8],
    frame: Range<usize>,
    info: &FrameInfo,
) -> Result<(Range<usize>, FrameInfo), Error> {
    let head = frame.start;
    let f = buf.get(frame.clone()).ok_or(Error::Mismatch)?;
    let end = ip_bounds(f, info)?;
    let iv = match info.l4 {
        L4Info::IpIp(v) => v,
        _ => return Err(Error::NotTunnel),
    };
    if info.ip.fragment != Fragment::Whole {
        return Err(Error::Fragmented);
    }
    let l2 = info.l3_offset;
    let l4 = info.l4_offset();
    let inner_info = FrameInfo::parse_ip(&f[l4..end]).map_err(Error::Inner)?;
    if inner_info.ip.version != iv {
        return Err(Error::Inner(crate::wire::Error::BadVersion));
    }
    let olen = info.ip.header_len;
    let new_head = head + olen;
    if l2 > 0 {
        buf.copy_within(head..head + l2, new_head);
        EthernetFrame::new_unchecked(&mut buf[new_head..new_head + l2])
            .set_ethertype(ethertype_of(iv));
    }
    let inner_info = FrameInfo {
        vlan: info.vlan,
        ..inner_info.moved_by(l2)
    };
    Ok((new_head..head + end, inner_info))
}

/// The range of the inner IP packet of an IP-in-IP frame, for consumers that take bare
/// IP packets (a TUN device): nothing is moved.
pub fn inner_packet(frame: &[u8], info: &FrameInfo) -> Result<Range<usize>, Error> {
    let end = ip_bounds(frame, info)?;
    match info.l4 {
        L4Info::IpIp(_) if info.ip.fragment == Fragment::Whole => Ok(info.l4_offset()..end),
        L4Info::IpIp(_) => Err(Error::Fragmented),
        _ => Err(Error::NotTunnel),
    }
}
