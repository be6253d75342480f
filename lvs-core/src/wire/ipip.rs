//! IP-in-IP: the outer header of the IPVS `tunnel` method, in all four combinations.
//!
//! An IPv4 outer header carries protocol 4 for an inner IPv4 packet (4in4) and 41 for an
//! inner IPv6 packet (6in4); an IPv6 outer header uses next header 4 (4in6) and 41
//! (6in6). [`Outer::emit`] writes the outer header in front of an inner packet;
//! [`inner_version`] tells what a received outer header carries.

use core::net::IpAddr;

use super::ip::{IpProtocol, IpVersion};
use super::ipv4::Packet as Ipv4Packet;
use super::ipv6::Packet as Ipv6Packet;
use super::{Error, Result};

/// Length of an outer header of the given version (no options, no extension headers).
#[inline]
pub const fn outer_len(version: IpVersion) -> usize {
    match version {
        IpVersion::V4 => 20,
        IpVersion::V6 => 40,
    }
}

/// The protocol number an outer header uses for an inner packet of `inner` version.
#[inline]
pub const fn protocol_for(inner: IpVersion) -> IpProtocol {
    match inner {
        IpVersion::V4 => IpProtocol::IpIp,
        IpVersion::V6 => IpProtocol::Ipv6,
    }
}

/// The version of the packet an outer header with protocol `protocol` carries, if it is
/// IP-in-IP at all.
#[inline]
pub const fn inner_version(protocol: IpProtocol) -> Option<IpVersion> {
    match protocol {
        IpProtocol::IpIp => Some(IpVersion::V4),
        IpProtocol::Ipv6 => Some(IpVersion::V6),
        _ => None,
    }
}

/// The fields of an outer IP-in-IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outer {
    /// Tunnel source: the director's address.
    pub src: IpAddr,
    /// Tunnel destination: the real server.
    pub dst: IpAddr,
    /// DSCP and ECN byte (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    /// TTL / hop limit.
    pub hop_limit: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ident: u16,
    /// IPv4 DF bit (ignored for IPv6).
    pub dont_frag: bool,
    /// IPv6 flow label (ignored for IPv4).
    pub flow_label: u32,
}

impl Outer {
    /// The outer header's version, from its addresses; `None` if they are of mixed
    /// families.
    #[inline]
    pub fn version(&self) -> Option<IpVersion> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Some(IpVersion::V4),
            (IpAddr::V6(_), IpAddr::V6(_)) => Some(IpVersion::V6),
            _ => None,
        }
    }

    /// Writes the outer header at the start of `buf`, for an inner packet of
    /// `inner` version and `inner_len` bytes, and returns the header's length.
    ///
    /// Errors: `Unsupported` for mixed-family addresses, `Truncated` if `buf` is shorter
    /// than the header, `BadLength` if the result would exceed the outer length field.
    pub fn emit(&self, buf: &mut [u8], inner: IpVersion, inner_len: usize) -> Result<usize> {
        let version = self.version().ok_or(Error::Unsupported)?;
        let len = outer_len(version);
        let header = buf.get_mut(..len).ok_or(Error::Truncated)?;
        match (version, self.src, self.dst) {
            (IpVersion::V4, IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = u16::try_from(len + inner_len).map_err(|_| Error::BadLength)?;
                let mut p = Ipv4Packet::new_unchecked(header);
                p.set_version(4);
                p.set_header_len(20);
                p.set_tos(self.tos);
                p.set_total_len(total);
                p.set_ident(self.ident);
                p.clear_flags();
                p.set_dont_frag(self.dont_frag);
                p.set_frag_offset(0);
                p.set_hop_limit(self.hop_limit);
                p.set_next_header(protocol_for(inner));
                p.set_src_addr(s);
                p.set_dst_addr(d);
                p.fill_checksum();
            }
            (IpVersion::V6, IpAddr::V6(s), IpAddr::V6(d)) => {
                let payload = u16::try_from(inner_len).map_err(|_| Error::BadLength)?;
                let mut p = Ipv6Packet::new_unchecked(header);
                p.set_version(6);
                p.set_traffic_class(self.tos);
                p.set_flow_label(self.flow_label);
                p.set_payload_len(payload);
                p.set_next_header(protocol_for(inner));
                p.set_hop_limit(self.hop_limit);
                p.set_src_addr(s);
                p.set_dst_addr(d);
            }
            _ => return Err(Error::Unsupported),
        }
        Ok(len)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn outer(src: IpAddr, dst: IpAddr) -> Outer {
        Outer {
            src,
            dst,
            tos: 0xb8,
            hop_limit: 63,
            ident: 0x1234,
            dont_frag: true,
            flow_label: 0xabcde,
        }
    }

    #[test]
    fn test_emit_4in4_and_6in4() {
        let o = outer(
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
        );
        let mut buf = [0xffu8; 20];
        assert_eq!(o.emit(&mut buf, IpVersion::V4, 60), Ok(20));
        let p = Ipv4Packet::new_checked(&[&buf[..], &[0u8; 60][..]].concat()[..]).map(|_| ());
        assert_eq!(p, Ok(()));
        let p = Ipv4Packet::new_unchecked(&buf[..]);
        assert_eq!(p.total_len(), 80);
        assert_eq!(p.next_header(), IpProtocol::IpIp);
        assert!(p.dont_frag());
        assert_eq!(p.tos(), 0xb8);
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.verify_checksum());
        assert_eq!(o.emit(&mut buf, IpVersion::V6, 60), Ok(20));
        assert_eq!(
            Ipv4Packet::new_unchecked(&buf[..]).next_header(),
            IpProtocol::Ipv6
        );
        assert_eq!(
            o.emit(&mut buf, IpVersion::V4, 65516),
            Err(Error::BadLength)
        );
        assert_eq!(
            o.emit(&mut buf[..19], IpVersion::V4, 60),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn test_emit_6in6_and_4in6() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let o = outer(s.into(), d.into());
        let mut buf = [0u8; 40];
        assert_eq!(o.emit(&mut buf, IpVersion::V6, 100), Ok(40));
        let p = Ipv6Packet::new_unchecked(&buf[..]);
        assert_eq!(p.payload_len(), 100);
        assert_eq!(p.next_header(), IpProtocol::Ipv6);
        assert_eq!(p.flow_label(), 0xabcde);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.src_addr(), s);
        assert_eq!(o.emit(&mut buf, IpVersion::V4, 100), Ok(40));
        assert_eq!(
            Ipv6Packet::new_unchecked(&buf[..]).next_header(),
            IpProtocol::IpIp
        );
    }

    #[test]
    fn test_mixed_family_is_unsupported() {
        let o = outer(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into());
        assert_eq!(o.version(), None);
        assert_eq!(
            o.emit(&mut [0u8; 40], IpVersion::V4, 1),
            Err(Error::Unsupported)
        );
    }

    #[test]
    fn test_inner_version() {
        assert_eq!(inner_version(IpProtocol::IpIp), Some(IpVersion::V4));
        assert_eq!(inner_version(IpProtocol::Ipv6), Some(IpVersion::V6));
        assert_eq!(inner_version(IpProtocol::Tcp), None);
    }
}
