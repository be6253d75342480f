//! The datagram quoted in an ICMP error: its IP header and the start of its L4 header.
//!
//! An ICMPv4 error quotes the offending datagram's IP header and at least 8 bytes of what
//! follows (RFC 792; RFC 1812 routers quote more); ICMPv6 quotes as much as fits in the
//! minimum MTU (RFC 4443). The quote is a truncated packet, so its length fields are not
//! checked against the buffer: only the header itself must be whole.
//!
//! [`Quote::new_checked`] validates: the version nibble (4 or 6), for IPv4 an IHL of at
//! least 5 and a header that fits; for IPv6 the fixed header and a bounded extension
//! header walk inside the quote. After that no accessor panics. The computed header
//! length and upper-layer protocol are kept in the view, so accessors do not walk again.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ip::{IpProtocol, IpVersion};
use super::{Error, Result, ipv6};

/// A checked view of the datagram quoted in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<T: AsRef<[u8]>> {
    buffer: T,
    version: IpVersion,
    header_len: usize,
    protocol: IpProtocol,
    later_fragment: bool,
}

impl<T: AsRef<[u8]>> Quote<T> {
    /// Checks `buffer` (the ICMP error's data, after its 8-byte header) and makes a view.
    pub fn new_checked(buffer: T) -> Result<Quote<T>> {
        let b = buffer.as_ref();
        let first = *b.first().ok_or(Error::Truncated)?;
        let (version, header_len, protocol, later_fragment) = match first >> 4 {
            4 => {
                if b.len() < 20 {
                    return Err(Error::Truncated);
                }
                let ihl = (first & 0x0f) as usize * 4;
                if ihl < 20 {
                    return Err(Error::BadHeaderLen);
                }
                if ihl > b.len() {
                    return Err(Error::Truncated);
                }
                let frag = u16::from_be_bytes([b[6], b[7]]) & 0x1fff;
                (IpVersion::V4, ihl, IpProtocol::from(b[9]), frag != 0)
            }
            6 => {
                if b.len() < 40 {
                    return Err(Error::Truncated);
                }
                let walk = ipv6::walk_ext(b, IpProtocol::from(b[6]), 40)?;
                let later = walk.fragment.is_some_and(|f| f.offset != 0);
                (IpVersion::V6, walk.offset, walk.protocol, later)
            }
            _ => return Err(Error::BadVersion),
        };
        Ok(Quote {
            buffer,
            version,
            header_len,
            protocol,
            later_fragment,
        })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version of the quoted datagram.
    #[inline]
    pub fn version(&self) -> IpVersion {
        self.version
    }

    /// Length of the quoted IP header, IPv6 extension headers included: the offset of
    /// the quoted L4 header.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The quoted datagram's upper-layer protocol.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.protocol
    }

    /// Source address of the quoted datagram.
    #[inline]
    pub fn src_addr(&self) -> IpAddr {
        self.addr(12, 8)
    }

    /// Destination address of the quoted datagram.
    #[inline]
    pub fn dst_addr(&self) -> IpAddr {
        self.addr(16, 24)
    }

    fn addr(&self, v4: usize, v6: usize) -> IpAddr {
        let b = self.buffer.as_ref();
        match self.version {
            IpVersion::V4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(&b[v4..v4 + 4]);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            IpVersion::V6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[v6..v6 + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    }

    /// The quoted bytes of the L4 header (usually 8, possibly more, possibly fewer).
    /// Empty for a non-first fragment, which quotes no L4 header.
    #[inline]
    pub fn l4(&self) -> &[u8] {
        if self.later_fragment {
            return &[];
        }
        &self.buffer.as_ref()[self.header_len..]
    }

    /// Source and destination ports of a quoted TCP or UDP datagram, when at least the
    /// first 4 bytes of its header are quoted.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.protocol {
            IpProtocol::Tcp | IpProtocol::Udp => match self.l4() {
                [a, b, c, d, ..] => {
                    Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    // IPv4 header of a TCP SYN 10.0.0.1:40000 -> 192.0.2.10:80, then 8 bytes of TCP.
    const QUOTE_V4: [u8; 28] = [
        0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 1, 192,
        0, 2, 10, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
    ];

    #[test]
    fn test_deconstruct_v4() {
        let q = Quote::new_checked(&QUOTE_V4[..]).unwrap();
        assert_eq!(q.version(), IpVersion::V4);
        assert_eq!(q.header_len(), 20);
        assert_eq!(q.protocol(), IpProtocol::Tcp);
        assert_eq!(q.src_addr(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(q.dst_addr(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(q.ports(), Some((40000, 80)));
        assert_eq!(q.l4().len(), 8);
    }

    #[test]
    fn test_v4_short_l4_has_no_ports() {
        let q = Quote::new_checked(&QUOTE_V4[..22]).unwrap();
        assert_eq!(q.ports(), None);
    }

    #[test]
    fn test_v4_errors() {
        assert_eq!(Quote::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Quote::new_checked(&QUOTE_V4[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut q = QUOTE_V4;
        q[0] = 0x44;
        assert_eq!(Quote::new_checked(&q[..]).unwrap_err(), Error::BadHeaderLen);
        q[0] = 0x4f; // 60-byte header in a 28-byte quote
        assert_eq!(Quote::new_checked(&q[..]).unwrap_err(), Error::Truncated);
        q[0] = 0x55;
        assert_eq!(Quote::new_checked(&q[..]).unwrap_err(), Error::BadVersion);
    }

    #[test]
    fn test_v4_later_fragment_quotes_no_ports() {
        let mut q = QUOTE_V4;
        q[6] = 0x00;
        q[7] = 0x10; // offset 128 bytes
        let q = Quote::new_checked(&q[..]).unwrap();
        assert_eq!(q.ports(), None);
        assert!(q.l4().is_empty());
    }

    fn quote_v6(next: u8, ext: &[u8], l4: &[u8]) -> std::vec::Vec<u8> {
        let mut v = std::vec![0x60, 0, 0, 0, 0, 0, next, 64];
        v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(ext);
        v.extend_from_slice(l4);
        v
    }

    #[test]
    fn test_deconstruct_v6_with_ext() {
        // destination options (8 bytes) then UDP 5353 -> 53
        let q = quote_v6(
            60,
            &[17, 0, 1, 4, 0, 0, 0, 0],
            &[0x14, 0xe9, 0x00, 0x35, 0, 8, 0, 0],
        );
        let q = Quote::new_checked(&q[..]).unwrap();
        assert_eq!(q.version(), IpVersion::V6);
        assert_eq!(q.header_len(), 48);
        assert_eq!(q.protocol(), IpProtocol::Udp);
        assert_eq!(q.ports(), Some((5353, 53)));
        assert_eq!(q.dst_addr(), IpAddr::V6("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn test_v6_truncated_ext_chain() {
        let q = quote_v6(60, &[17, 1, 0, 0], &[]);
        assert_eq!(
            Quote::new_checked(&q[..]).unwrap_err(),
            Error::ExtHeaderChain
        );
        assert_eq!(Quote::new_checked(&q[..39]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn prop_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(q) = Quote::new_checked(&bytes[..]) {
                let _ = (q.src_addr(), q.dst_addr(), q.ports(), q.l4(), q.protocol());
                prop_assert!(q.header_len() <= bytes.len());
            }
        }
    }
}
