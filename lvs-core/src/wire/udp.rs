//! A view over a UDP datagram (RFC 768; RFC 8200 §8.1 over IPv6).
//!
//! The buffer is the datagram: the caller slices the IP payload.
//!
//! [`Packet::check_len`] validates that
//! - the buffer holds the 8-byte header, else [`Error::Truncated`];
//! - the length field is at least 8, else [`Error::BadLength`];
//! - the buffer holds the length the field claims, else [`Error::Truncated`]. Bytes past
//!   that length (link padding) are allowed and ignored: the payload and the checksum end
//!   at the length field.
//!
//! The length-bearing field is the length ([`Packet::set_len`]). Even after it changes,
//! [`Packet::payload`] does not panic: it returns an empty slice for a range the buffer
//! does not hold.
//!
//! Checksum 0 means "none computed" over IPv4 and is invalid over IPv6; a computed 0 is
//! sent as `0xffff`.

use core::net::IpAddr;

use super::field::Field;
use super::{Error, Result};
use crate::checksum;

/// The IP protocol number of UDP, as the pseudo-header carries it.
const PROTOCOL: u8 = 17;

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// Offset of the checksum field within the UDP header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A view over a buffer holding one UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn get_u16(data: &[u8], f: Field) -> u16 {
    let b = &data[f];
    u16::from_be_bytes([b[0], b[1]])
}

#[allow(clippy::len_without_is_empty)]
impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Accessors may panic unless
    /// [`check_len`](Packet::check_len) has returned `Ok`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks it with [`check_len`](Packet::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that no accessor or setter will panic (see the [module](self) doc).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes or than the length
    /// field; [`Error::BadLength`] when the length field is below 8.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            Err(Error::BadLength)
        } else if field_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Consumes the view, returning the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header and payload, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The checksum field (0: none computed, over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload: bytes 8 up to the length field (trailing bytes excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = usize::from(self.len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Whether the checksum is valid for a datagram carried from `src` to `dst`.
    ///
    /// The checksum covers the pseudo-header and the bytes up to the length field. Over
    /// IPv4 a zero checksum means none was computed and verifies; over IPv6 a zero
    /// checksum is invalid. `false` for addresses of different families.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let zero = self.checksum() == 0;
        let pseudo = match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) if zero => return true,
            (IpAddr::V6(_), IpAddr::V6(_)) if zero => return false,
            _ => match checksum::pseudo_header(src, dst, PROTOCOL, u32::from(self.len())) {
                Some(pseudo) => pseudo,
                None => return false,
            },
        };
        let end = usize::from(self.len());
        match self.buffer.as_ref().get(..end) {
            Some(datagram) => checksum::combine(pseudo, checksum::sum(datagram)) == 0xffff,
            None => false,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, borrowed for as long as the buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let end = usize::from(self.len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_u16(&mut self, f: Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        self.set_u16(field::SRC_PORT, value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        self.set_u16(field::DST_PORT, value);
    }

    /// Sets the length field.
    ///
    /// This is the length-bearing field: a value below 8 or above the buffer length
    /// invalidates [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        self.set_u16(field::LENGTH, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16(field::CHECKSUM, value);
    }

    /// The payload, mutably (see [`payload`](Packet::payload)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Computes the checksum for a datagram carried from `src` to `dst` over the bytes
    /// up to the length field, and writes it; a computed 0 is written as `0xffff`.
    ///
    /// Leaves the checksum field as it was when the addresses are of different families
    /// or the buffer is shorter than the length field.
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        let len = self.len();
        let end = usize::from(len);
        if self.buffer.as_ref().len() < end || end < HEADER_LEN {
            return;
        }
        let Some(pseudo) = checksum::pseudo_header(src, dst, PROTOCOL, u32::from(len)) else {
            return;
        };
        self.set_checksum(0);
        let value = match !checksum::combine(pseudo, checksum::sum(&self.buffer.as_ref()[..end])) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    const CLIENT_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const RESOLVER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));
    const SRC_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    const DST_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));

    // A DNS query for example.com A, 10.0.0.1:53000 -> 10.0.0.53:53 (odd length 37).
    static DNS_V4: [u8; 37] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0xa0, 0xf5, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63,
        0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    static DNS_PAYLOAD: [u8; 29] = [
        0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    // [fe80::1]:5000 -> [ff02::1]:6000, "ping!".
    static UDP_V6: [u8; 13] = [
        0x13, 0x88, 0x17, 0x70, 0x00, 0x0d, 0xd7, 0x85, 0x70, 0x69, 0x6e, 0x67, 0x21,
    ];

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&DNS_V4[..]).unwrap();
        assert_eq!(packet.src_port(), 53000);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 37);
        assert_eq!(packet.checksum(), 0xa0f5);
        assert_eq!(packet.payload(), &DNS_PAYLOAD[..]);
        assert_eq!(packet.into_payload(), &DNS_PAYLOAD[..]);
        assert!(packet.verify_checksum(&CLIENT_V4, &RESOLVER_V4));
        assert!(!packet.verify_checksum(&RESOLVER_V4, &RESOLVER_V4));
        assert!(!packet.verify_checksum(&CLIENT_V4, &DST_V6));
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 37];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(53000);
        packet.set_dst_port(53);
        packet.set_len(37);
        packet.payload_mut().copy_from_slice(&DNS_PAYLOAD);
        packet.fill_checksum(&CLIENT_V4, &RESOLVER_V4);
        assert_eq!(bytes, DNS_V4);
    }

    #[test]
    fn test_trailing_bytes() {
        // Ethernet padding after the datagram is neither payload nor checksummed.
        let mut bytes = [0u8; 46];
        bytes[..37].copy_from_slice(&DNS_V4);
        bytes[37..].fill(0xee);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &DNS_PAYLOAD[..]);
        assert!(packet.verify_checksum(&CLIENT_V4, &RESOLVER_V4));
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.payload_mut().len(), 29);
        packet.set_checksum(0x1234);
        packet.fill_checksum(&CLIENT_V4, &RESOLVER_V4);
        assert_eq!(packet.checksum(), 0xa0f5);
    }

    #[test]
    fn test_check_len() {
        // Shorter than the header.
        assert_eq!(
            Packet::new_checked(&DNS_V4[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        // Length field below 8.
        let mut bytes = DNS_V4;
        bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        // Length field past the end of the buffer.
        assert_eq!(
            Packet::new_checked(&DNS_V4[..36]).unwrap_err(),
            Error::Truncated
        );
        // A bare header.
        let packet = Packet::new_checked(&[0, 1, 0, 2, 0, 8, 0, 0][..]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_length_field_changed_after_check() {
        let mut bytes = DNS_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_len(100);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(packet.payload_mut().is_empty());
        assert!(!packet.verify_checksum(&CLIENT_V4, &RESOLVER_V4));
        packet.fill_checksum(&CLIENT_V4, &RESOLVER_V4);
        assert_eq!(packet.checksum(), 0xa0f5);
        packet.set_len(3);
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_checksum_v6() {
        let packet = Packet::new_checked(&UDP_V6[..]).unwrap();
        assert_eq!(packet.src_port(), 5000);
        assert_eq!(packet.dst_port(), 6000);
        assert_eq!(packet.payload(), b"ping!");
        assert!(packet.verify_checksum(&SRC_V6, &DST_V6));
        assert!(!packet.verify_checksum(&DST_V6, &DST_V6));

        let mut bytes = UDP_V6;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.payload_mut()[0] = b'P';
        assert!(!packet.verify_checksum(&SRC_V6, &DST_V6));
        packet.fill_checksum(&SRC_V6, &DST_V6);
        assert!(packet.verify_checksum(&SRC_V6, &DST_V6));
    }

    #[test]
    fn test_zero_checksum() {
        let mut bytes = DNS_V4;
        bytes[6] = 0;
        bytes[7] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        // None computed: valid over IPv4 ...
        assert!(packet.verify_checksum(&CLIENT_V4, &RESOLVER_V4));
        // ... but not over IPv6 (RFC 8200 §8.1), nor across families.
        assert!(!packet.verify_checksum(&SRC_V6, &DST_V6));
        assert!(!packet.verify_checksum(&CLIENT_V4, &DST_V6));
    }

    #[test]
    fn test_computed_zero_is_sent_as_ffff() {
        // A datagram whose sum with the pseudo-header is 0xffff computes to checksum 0.
        let src = IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0));
        let dst = IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0));
        // pseudo: 17 + 10; header: ports + length 10; payload chosen to reach 0xffff.
        let rest = 0xffffu32 - 17 - 10 - 10;
        let mut bytes = [0u8; 10];
        bytes[4..6].copy_from_slice(&10u16.to_be_bytes());
        bytes[8..10].copy_from_slice(&(rest as u16).to_be_bytes());
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&src, &dst);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(&src, &dst));
        let src6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        packet.fill_checksum(&src6, &src6);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(&src6, &src6));
    }

    fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>())
                .prop_map(|(s, d)| (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)))),
            (any::<[u8; 16]>(), any::<[u8; 16]>())
                .prop_map(|(s, d)| (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))),
        ]
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                     (src, dst) in addr_pair()) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.src_port(), packet.dst_port(), packet.checksum());
                let _ = packet.verify_checksum(&src, &dst);
                prop_assert_eq!(packet.payload().len() + HEADER_LEN, usize::from(packet.len()));

                let mut copy = bytes.clone();
                let mut packet = Packet::new_checked(&mut copy[..]).unwrap();
                packet.set_src_port(1);
                packet.set_dst_port(2);
                let _ = packet.payload_mut();
                packet.fill_checksum(&src, &dst);
                prop_assert!(packet.verify_checksum(&src, &dst));
                prop_assert_ne!(packet.checksum(), 0);
                packet.set_len(u16::MAX);
                let _ = (packet.payload().len(), packet.payload_mut().len());
                let _ = packet.verify_checksum(&src, &dst);
                packet.fill_checksum(&src, &dst);
            }
        }

        #[test]
        fn prop_fill_then_verify(ports in any::<[u8; 4]>(),
                                 payload in proptest::collection::vec(any::<u8>(), 0..300),
                                 trailer in proptest::collection::vec(any::<u8>(), 0..8),
                                 (src, dst) in addr_pair()) {
            let mut bytes = Vec::from(&ports[..]);
            bytes.extend_from_slice(&[0; 4]);
            bytes.extend_from_slice(&payload);
            bytes.extend_from_slice(&trailer);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_len((HEADER_LEN + payload.len()) as u16);
            packet.fill_checksum(&src, &dst);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_ne!(packet.checksum(), 0);
            prop_assert!(packet.verify_checksum(&src, &dst));
            prop_assert_eq!(packet.payload(), &payload[..]);
        }
    }
}
