//! Oracles shared by the rewrite targets.
#![allow(dead_code)]
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use lvs_core::fwd::Endpoint;
use lvs_core::wire::{
    Fragment, FrameInfo, Icmpv4Packet, Icmpv6Packet, IpVersion, L4Info, TcpPacket, UdpPacket,
};

/// Bytes the rewrite targets take from the front of the input as parameters.
pub const PARAMS: usize = 64;

/// An address of `v` from 16 parameter bytes.
pub fn addr(b: &[u8], v: IpVersion) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    match v {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

/// An endpoint of `v` from 18 parameter bytes.
pub fn endpoint(b: &[u8], v: IpVersion) -> Endpoint {
    Endpoint::new(addr(b, v), u16::from_be_bytes([b[16], b[17]]))
}

/// Whether the L4 checksum of a whole packet verifies (None: not checkable).
pub fn l4_valid(frame: &[u8], info: &FrameInfo) -> Option<bool> {
    if info.ip.fragment != Fragment::Whole {
        return None;
    }
    let seg = &frame[info.l4_offset()..info.ip_end()];
    let (s, d) = (info.ip.src, info.ip.dst);
    match info.l4 {
        L4Info::Tcp { .. } => Some(TcpPacket::new_unchecked(seg).verify_checksum(&s, &d)),
        L4Info::Udp { .. } => Some(UdpPacket::new_unchecked(seg).verify_checksum(&s, &d)),
        L4Info::Icmp(_) => match (s, d) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                Some(Icmpv6Packet::new_unchecked(seg).verify_checksum(&s, &d))
            }
            _ => Some(Icmpv4Packet::new_unchecked(seg).verify_checksum()),
        },
        _ => None,
    }
}

/// After a successful rewrite: the frame parses again, and a checksum that verified
/// before verifies after.
pub fn check_rewritten(frame: &[u8], before: &FrameInfo, valid_before: Option<bool>) -> FrameInfo {
    let after =
        FrameInfo::parse(frame).expect("a rewritten frame parses (IPv4 header checksum included)");
    assert_eq!(after.ip.version, before.ip.version);
    assert_eq!(after.ip.total_len, before.ip.total_len);
    if valid_before == Some(true) {
        assert_eq!(
            l4_valid(frame, &after),
            Some(true),
            "L4 checksum broken by the rewrite"
        );
    }
    after
}
