//! A view over a TCP segment (RFC 9293): the header, its options and the payload.
//!
//! The buffer is exactly the segment: the caller slices the IP payload.
//!
//! [`Packet::check_len`] validates that
//! - the buffer holds the 20-byte fixed header, else [`Error::Truncated`];
//! - the data offset is at least 5 words, else [`Error::BadHeaderLen`];
//! - the header the data offset claims fits in the buffer, else [`Error::Truncated`].
//!
//! The length-bearing field is the data offset ([`Packet::set_header_len`]). Even after
//! it changes, [`Packet::options`] and [`Packet::payload`] do not panic: they return an
//! empty slice for a range the buffer does not hold.
//!
//! The checksum covers the pseudo-header and the whole buffer: the segment length is the
//! buffer length.

use core::fmt;
use core::net::IpAddr;

use super::field::{Field, Rest};
use super::{Error, Result};
use crate::checksum;

/// The IP protocol number of TCP, as the pseudo-header carries it.
const PROTOCOL: u8 = 6;

mod field {
    use super::{Field, Rest};

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble), reserved bits and the AE/NS bit (low nibble).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const OPTIONS: Rest = URGENT.end..;
}

/// Length of the fixed TCP header (data offset 5).
pub const HEADER_LEN: usize = field::URGENT.end;

/// Offset of the checksum field within the TCP header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// The eight TCP control bits of header byte 13.
///
/// The AE (formerly NS) bit in byte 12 is not part of this set; [`Packet::set_flags`]
/// leaves it alone.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Flags(pub u8);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// Push function.
    pub const PSH: Flags = Flags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x10);
    /// The urgent pointer field is significant.
    pub const URG: Flags = Flags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: Flags = Flags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x80);
    /// No flag set.
    pub const NONE: Flags = Flags(0);

    const NAMES: [(Flags, &'static str); 8] = [
        (Flags::FIN, "FIN"),
        (Flags::SYN, "SYN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::ACK, "ACK"),
        (Flags::URG, "URG"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
    ];

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether FIN is set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }

    /// Whether SYN is set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }

    /// Whether RST is set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.contains(Flags::RST)
    }

    /// Whether PSH is set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.contains(Flags::PSH)
    }

    /// Whether ACK is set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }

    /// Whether URG is set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.contains(Flags::URG)
    }

    /// Whether ECE is set.
    #[inline]
    pub const fn ece(self) -> bool {
        self.contains(Flags::ECE)
    }

    /// Whether CWR is set.
    #[inline]
    pub const fn cwr(self) -> bool {
        self.contains(Flags::CWR)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;

    #[inline]
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    #[inline]
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;

    #[inline]
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

/// Prints the set flags joined by `|` in bit order (`SYN|ACK`), or `(none)`.
impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        let mut first = true;
        for (flag, name) in Flags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Same as [`Debug`](fmt::Debug): `SYN|ACK`.
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A view over a buffer holding exactly one TCP segment.
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

#[inline]
fn get_u32(data: &[u8], f: Field) -> u32 {
    let b = &data[f];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

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
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes or than the data
    /// offset; [`Error::BadHeaderLen`] when the data offset is below 5.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            Err(Error::BadHeaderLen)
        } else if header_len > len {
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

    /// The sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// The acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// The header length in bytes, options included (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The eight control bits of byte 13.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The receive window (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options: bytes 20 up to the header length (empty with data offset 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let header_len = self.header_len();
        self.buffer
            .as_ref()
            .get(field::OPTIONS.start..header_len)
            .unwrap_or(&[])
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let header_len = self.header_len();
        self.buffer.as_ref().get(header_len..).unwrap_or(&[])
    }

    /// Whether the checksum is valid for a segment carried from `src` to `dst`.
    ///
    /// The pseudo-header length is the buffer length. `false` when the addresses are of
    /// different families, or over IPv4 when the buffer is longer than 65535 bytes.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        match checksum::pseudo_header(src, dst, PROTOCOL, len) {
            Some(pseudo) => checksum::combine(pseudo, checksum::sum(data)) == 0xffff,
            None => false,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, borrowed for as long as the buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let header_len = self.header_len();
        self.buffer.as_ref().get(header_len..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_u16(&mut self, f: Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    fn set_u32(&mut self, f: Field, value: u32) {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        self.set_u32(field::SEQ_NUM, value);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        self.set_u32(field::ACK_NUM, value);
    }

    /// Sets the data offset from a header length in bytes (a multiple of 4 from 20 to
    /// 60; other values are truncated to `(len / 4) & 0xf` words). The low nibble of
    /// byte 12 (reserved bits and AE) is kept.
    ///
    /// This is the length-bearing field: a value the buffer does not hold invalidates
    /// [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let words = ((len / 4) & 0x0f) as u8;
        let data = self.buffer.as_mut();
        data[field::DATA_OFF] = (data[field::DATA_OFF] & 0x0f) | (words << 4);
    }

    /// Sets the eight control bits of byte 13.
    #[inline]
    pub fn set_flags(&mut self, flags: Flags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the receive window.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        self.set_u16(field::WIN_SIZE, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16(field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        self.set_u16(field::URGENT, value);
    }

    /// The options, mutably (see [`options`](Packet::options)).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(field::OPTIONS.start..header_len)
            .unwrap_or(&mut [])
    }

    /// The payload, mutably (see [`payload`](Packet::payload)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(header_len..)
            .unwrap_or(&mut [])
    }

    /// Computes the checksum of the whole buffer for a segment carried from `src` to
    /// `dst` and writes it.
    ///
    /// Leaves the checksum field as it was when the addresses are of different families
    /// or, over IPv4, when the buffer is longer than 65535 bytes (the cases where
    /// [`verify_checksum`](Packet::verify_checksum) is always `false`).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        let Ok(len) = u32::try_from(self.buffer.as_ref().len()) else {
            return;
        };
        let Some(pseudo) = checksum::pseudo_header(src, dst, PROTOCOL, len) else {
            return;
        };
        self.set_checksum(0);
        let value = !checksum::combine(pseudo, checksum::sum(self.buffer.as_ref()));
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
    use std::format;
    use std::vec::Vec;

    const CLIENT_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    const SERVER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    const SRC_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    const DST_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

    // A Linux SYN 192.168.1.10:51234 -> 192.168.1.1:80 with data offset 10 and the usual
    // options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
    static SYN_V4: [u8; 40] = [
        0xc8, 0x22, 0x00, 0x50, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x6e, 0xd2, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x9a,
        0x3b, 0x5c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    static SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x9a, 0x3b, 0x5c, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    // 192.168.1.1:80 -> 192.168.1.10:51234, PSH|ACK, "GET / HTTP/1.0\r\n\r\n".
    static DATA_V4: [u8; 38] = [
        0x00, 0x50, 0xc8, 0x22, 0xde, 0xad, 0xbe, 0xef, 0x1a, 0x2b, 0x3c, 0x4e, 0x50, 0x18, 0x01,
        0xf6, 0x8f, 0x3f, 0x00, 0x00, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50,
        0x2f, 0x31, 0x2e, 0x30, 0x0d, 0x0a, 0x0d, 0x0a,
    ];

    static DATA_V4_PAYLOAD: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

    // [2001:db8::1]:443 -> [2001:db8::2]:40000, FIN|ACK, "hello" (odd length).
    static DATA_V6: [u8; 25] = [
        0x01, 0xbb, 0x9c, 0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x50, 0x11, 0x04,
        0x00, 0x6e, 0x89, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ];

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&DATA_V4[..]).unwrap();
        assert_eq!(packet.src_port(), 80);
        assert_eq!(packet.dst_port(), 51234);
        assert_eq!(packet.seq_number(), 0xdead_beef);
        assert_eq!(packet.ack_number(), 0x1a2b_3c4e);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.flags(), Flags::PSH | Flags::ACK);
        assert!(packet.flags().psh() && packet.flags().ack());
        assert!(!packet.flags().syn() && !packet.flags().fin() && !packet.flags().rst());
        assert_eq!(packet.window_len(), 502);
        assert_eq!(packet.checksum(), 0x8f3f);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload(), DATA_V4_PAYLOAD);
        assert_eq!(packet.into_payload(), DATA_V4_PAYLOAD);
        assert!(packet.verify_checksum(&SERVER_V4, &CLIENT_V4));
    }

    #[test]
    fn test_deconstruct_with_options() {
        let packet = Packet::new_checked(&SYN_V4[..]).unwrap();
        assert_eq!(packet.src_port(), 51234);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x1a2b_3c4d);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), Flags::SYN);
        assert!(packet.flags().syn() && !packet.flags().ack());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.checksum(), 0x6ed2);
        assert_eq!(packet.options(), &SYN_OPTIONS[..]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(packet.verify_checksum(&CLIENT_V4, &SERVER_V4));
        // The pseudo-header covers the addresses.
        assert!(!packet.verify_checksum(&SERVER_V4, &SRC_V6));
        assert!(!packet.verify_checksum(&CLIENT_V4, &IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2))));
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 38];
        // The low nibble of byte 12 (reserved, AE) is not the header length's.
        bytes[12] = 0;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(80);
        packet.set_dst_port(51234);
        packet.set_seq_number(0xdead_beef);
        packet.set_ack_number(0x1a2b_3c4e);
        packet.set_header_len(20);
        packet.set_flags(Flags::PSH | Flags::ACK);
        packet.set_window_len(502);
        packet.set_urgent_at(0);
        packet.payload_mut().copy_from_slice(DATA_V4_PAYLOAD);
        packet.fill_checksum(&SERVER_V4, &CLIENT_V4);
        assert_eq!(bytes, DATA_V4);
    }

    #[test]
    fn test_construct_with_options() {
        let mut bytes = [0u8; 40];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(51234);
        packet.set_dst_port(80);
        packet.set_seq_number(0x1a2b_3c4d);
        packet.set_header_len(40);
        packet.set_flags(Flags::SYN);
        packet.set_window_len(64240);
        packet.options_mut().copy_from_slice(&SYN_OPTIONS);
        assert!(packet.payload_mut().is_empty());
        packet.set_checksum(0xffff);
        packet.fill_checksum(&CLIENT_V4, &SERVER_V4);
        assert_eq!(bytes, SYN_V4);
    }

    #[test]
    fn test_set_header_len_keeps_low_nibble() {
        let mut bytes = DATA_V4;
        bytes[12] = 0x51; // data offset 5, AE bit set
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_header_len(24);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(bytes[12], 0x61);
    }

    #[test]
    fn test_check_len() {
        // Shorter than the fixed header.
        assert_eq!(
            Packet::new_checked(&DATA_V4[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        // Data offset below 5.
        let mut bytes = DATA_V4;
        bytes[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadHeaderLen
        );
        // Data offset past the end of the buffer.
        assert_eq!(
            Packet::new_checked(&SYN_V4[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut bytes = DATA_V4;
        bytes[12] = 0xf0;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Truncated
        );
        // Exactly the header.
        assert!(Packet::new_checked(&SYN_V4[..]).is_ok());
        assert!(Packet::new_checked(&DATA_V4[..20]).is_ok());
    }

    #[test]
    fn test_length_field_changed_after_check() {
        let mut bytes = DATA_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_header_len(60);
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(packet.options_mut().is_empty());
        assert!(packet.payload_mut().is_empty());
        packet.set_header_len(8);
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload().len(), 30);
    }

    #[test]
    fn test_checksum_v6() {
        let packet = Packet::new_checked(&DATA_V6[..]).unwrap();
        assert_eq!(packet.flags(), Flags::FIN | Flags::ACK);
        assert_eq!(packet.payload(), b"hello");
        assert!(packet.verify_checksum(&SRC_V6, &DST_V6));
        assert!(!packet.verify_checksum(&SRC_V6, &SRC_V6));
        assert!(!packet.verify_checksum(&SRC_V6, &CLIENT_V4));

        let mut bytes = DATA_V6;
        bytes[24] ^= 0x01;
        assert!(
            !Packet::new_checked(&bytes[..])
                .unwrap()
                .verify_checksum(&SRC_V6, &DST_V6)
        );
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.payload_mut()[4] = b'o';
        packet.set_checksum(0);
        packet.fill_checksum(&SRC_V6, &DST_V6);
        assert_eq!(bytes, DATA_V6);
    }

    #[test]
    fn test_checksum_v4_corrupted() {
        let mut bytes = DATA_V4;
        bytes[4] ^= 0x80;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum(&SERVER_V4, &CLIENT_V4));
    }

    #[test]
    fn test_fill_checksum_mixed_families_leaves_field() {
        let mut bytes = DATA_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&SERVER_V4, &DST_V6);
        assert_eq!(packet.checksum(), 0x8f3f);
    }

    #[test]
    fn test_flags() {
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK), "SYN|ACK");
        assert_eq!(
            format!("{}", Flags(0xff)),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
        assert_eq!(format!("{:?}", Flags::default()), "(none)");
        assert_eq!(format!("{:?}", Flags::RST), "RST");
        let f = Flags::SYN | Flags::ACK;
        assert!(f.contains(Flags::SYN));
        assert!(f.contains(Flags::SYN | Flags::ACK));
        assert!(!f.contains(Flags::SYN | Flags::FIN));
        assert!(f.intersects(Flags::SYN | Flags::FIN));
        assert_eq!(f.bits(), 0x12);
        assert_eq!(f & Flags::ACK, Flags::ACK);
        let mut g = Flags::NONE;
        assert!(g.is_empty());
        g |= Flags::URG;
        assert!(g.urg() && !g.ece() && !g.cwr());
        assert!(Flags(0xc0).ece() && Flags(0xc0).cwr());
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
                let _ = (packet.src_port(), packet.dst_port(), packet.seq_number());
                let _ = (packet.ack_number(), packet.flags(), packet.window_len());
                let _ = (packet.checksum(), packet.urgent_at());
                let _ = packet.verify_checksum(&src, &dst);
                prop_assert!(packet.header_len() >= HEADER_LEN);
                prop_assert_eq!(packet.header_len() + packet.payload().len(), bytes.len());
                prop_assert_eq!(packet.options().len(), packet.header_len() - HEADER_LEN);

                let mut copy = bytes.clone();
                let mut packet = Packet::new_checked(&mut copy[..]).unwrap();
                packet.set_src_port(1);
                packet.set_dst_port(2);
                packet.set_seq_number(3);
                packet.set_ack_number(4);
                packet.set_flags(Flags(0xff));
                packet.set_window_len(5);
                packet.set_urgent_at(6);
                let _ = packet.options_mut();
                let _ = packet.payload_mut();
                packet.fill_checksum(&src, &dst);
                prop_assert!(packet.verify_checksum(&src, &dst));
                packet.set_header_len(bytes.len());
                let _ = (packet.options().len(), packet.payload().len());
            }
        }

        #[test]
        fn prop_fill_then_verify(header in any::<[u8; 20]>(),
                                 options_words in 0usize..=10,
                                 payload in proptest::collection::vec(any::<u8>(), 0..300),
                                 (src, dst) in addr_pair()) {
            let mut bytes = Vec::from(&header[..]);
            bytes.resize(HEADER_LEN + options_words * 4, 0x01);
            bytes.extend_from_slice(&payload);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_header_len(HEADER_LEN + options_words * 4);
            packet.fill_checksum(&src, &dst);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum(&src, &dst));
            prop_assert_eq!(packet.payload(), &payload[..]);
        }
    }
}
