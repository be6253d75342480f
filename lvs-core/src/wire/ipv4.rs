//! IPv4 headers (RFC 791).
//!
//! # What is validated
//! [`Packet::check_len`] checks, in this order, and returns the first failure:
//! 1. the buffer holds the 20-byte fixed header, else [`Error::Truncated`];
//! 2. the version is 4, else [`Error::BadVersion`];
//! 3. the IHL is at least 5, else [`Error::BadHeaderLen`];
//! 4. the buffer holds the `IHL * 4` header bytes, else [`Error::Truncated`];
//! 5. the total length covers the header, else [`Error::BadLength`];
//! 6. the buffer holds the total length, else [`Error::Truncated`].
//!
//! Bytes after the total length (Ethernet padding, say) are allowed and ignored by
//! [`Packet::payload`]. The checksum, the options, the flags, the fragment fields and
//! the addresses are not validated: [`Packet::verify_checksum`] is a separate, explicit
//! step.
//!
//! After a successful check every getter and setter is panic-free, as long as the
//! length-bearing fields are left alone: [`Packet::set_version`] (check 2),
//! [`Packet::set_header_len`] and [`Packet::set_total_len`] void the check.

use core::net::Ipv4Addr;

use super::{Error, IpProtocol, Result};
use crate::checksum;

mod field {
    use crate::wire::field::*;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the fixed IPv4 header, without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Flags and fragment offset (bytes 6..8).
const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 header and its payload over a byte buffer.
///
/// See the [module documentation](self) for what [`check_len`](Packet::check_len)
/// validates.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the fixed header (20).
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking it. Accessors may panic unless
    /// [`check_len`](Packet::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and [`check_len`](Packet::check_len)s it.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures that no accessor panics; see the [module documentation](self) for the
    /// checks and the order they are made in.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadLength);
        }
        if total_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn read_u16(&self, f: core::ops::Range<usize>) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[f.start], data[f.start + 1]])
    }

    #[inline]
    fn read_addr(&self, f: core::ops::Range<usize>) -> Ipv4Addr {
        let data = self.buffer.as_ref();
        Ipv4Addr::new(
            data[f.start],
            data[f.start + 1],
            data[f.start + 2],
            data[f.start + 3],
        )
    }

    /// The version field (4 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (`IHL * 4`), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The differentiated services code point (upper 6 bits of the TOS byte).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// The explicit congestion notification bits (lower 2 bits of the TOS byte).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// The whole type-of-service byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length field: header and payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    /// The "don't fragment" flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_DF != 0
    }

    /// The "more fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLG_OFF) & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram: "more fragments" is set or the
    /// fragment offset is not zero.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.read_u16(field::FLG_OFF) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// The time-to-live field.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol field.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        self.read_addr(field::SRC_ADDR)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.read_addr(field::DST_ADDR)
    }

    /// Whether the header checksum (over `header_len` bytes, options included) is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        checksum::sum(&data[..self.header_len()]) == !0
    }

    /// The options: the header bytes after the fixed 20 (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[HEADER_LEN..self.header_len()]
    }

    /// The payload: bytes `header_len..total_len`. Anything after the total length
    /// (link-layer padding) is not included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[self.header_len()..usize::from(self.total_len())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// As [`payload`](Packet::payload), but borrowed for the lifetime of the underlying
    /// buffer rather than of this view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        let data: &'a [u8] = self.buffer.as_ref();
        &data[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn write_u16(&mut self, f: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version field (the upper 4 bits of `value` are ignored). Anything but 4
    /// voids an earlier [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes; the IHL becomes `value / 4` (4 bits).
    /// Length-bearing: voids an earlier [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let ihl = ((value / 4) & 0x0f) as u8;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ihl;
    }

    /// Sets the DSCP (6 bits), keeping the ECN bits.
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    /// Sets the ECN bits (2 bits), keeping the DSCP.
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (value & 0x03);
    }

    /// Sets the whole type-of-service byte.
    #[inline]
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length field. Length-bearing: voids an earlier
    /// [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        self.write_u16(field::IDENT, value);
    }

    /// Clears all three flag bits (reserved, DF, MF), keeping the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let v = self.read_u16(field::FLG_OFF) & !(FLAG_RESERVED | FLAG_DF | FLAG_MF);
        self.write_u16(field::FLG_OFF, v);
    }

    #[inline]
    fn set_flag(&mut self, flag: u16, on: bool) {
        let v = self.read_u16(field::FLG_OFF);
        let v = if on { v | flag } else { v & !flag };
        self.write_u16(field::FLG_OFF, v);
    }

    /// Sets or clears the "don't fragment" flag.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value);
    }

    /// Sets or clears the "more fragments" flag.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value);
    }

    /// Sets the fragment offset, in bytes (stored as `value / 8`), keeping the flags.
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let flags = self.read_u16(field::FLG_OFF) & !FRAG_OFFSET_MASK;
        self.write_u16(field::FLG_OFF, flags | (value >> 3));
    }

    /// Sets the time-to-live field.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol field.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes the header checksum over `header_len` bytes (options included) and
    /// stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(c);
    }

    /// The payload (bytes `header_len..total_len`), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
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
    use proptest::prelude::*;
    use std::vec::Vec;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    // 20-byte header, DF, TTL 64, UDP, 8 bytes of payload, then 2 bytes of padding.
    static PACKET: [u8; 30] = [
        0x45, 0xb8, 0x00, 0x1c, // v4, IHL 5, DSCP 46 (EF), ECN 0, total 28
        0x12, 0x34, 0x40, 0x00, // ident 0x1234, DF, offset 0
        0x40, 0x11, 0x5c, 0x3a, // TTL 64, UDP, checksum
        0x0a, 0x00, 0x00, 0x01, // 10.0.0.1
        0xc0, 0xa8, 0x01, 0x02, // 192.168.1.2
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP 1234 -> 53
        0x00, 0x00, // Ethernet padding
    ];

    // IHL 6 with a Router Alert option; a middle fragment: MF, offset 1480.
    static PACKET_OPTS_FRAG: [u8; 28] = [
        0x46, 0x01, 0x00, 0x1c, // v4, IHL 6, ECN 1, total 28
        0xab, 0xcd, 0x20, 0xb9, // ident 0xabcd, MF, offset 185 * 8
        0x01, 0x06, 0x8c, 0xa5, // TTL 1, TCP, checksum
        0x0a, 0x00, 0x00, 0x01, // 10.0.0.1
        0xc0, 0xa8, 0x01, 0x02, // 192.168.1.2
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0xb8);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0x5c3a);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert_eq!(p.options(), &[] as &[u8]);
        // The padding after the total length is not payload.
        assert_eq!(p.payload(), &PACKET[20..28]);
        assert_eq!(p.into_payload(), &PACKET[20..28]);
    }

    #[test]
    fn test_deconstruct_options_fragment() {
        let p = Packet::new_checked(&PACKET_OPTS_FRAG[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 1);
        assert_eq!(p.ident(), 0xabcd);
        assert!(!p.dont_frag());
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.next_header(), IpProtocol::Tcp);
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);

        // The last fragment: offset only.
        let mut b = PACKET_OPTS_FRAG;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_more_frags(false);
        assert!(p.is_fragment());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        // The first fragment: MF only.
        p.set_more_frags(true);
        p.set_frag_offset(0);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        // A bad checksum is reported, not rejected.
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 30];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp(46);
        p.set_ecn(0);
        p.set_total_len(28);
        p.set_ident(0x1234);
        p.clear_flags();
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_hop_limit(64);
        p.set_next_header(IpProtocol::Udp);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        p.payload_mut()
            .copy_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        p.fill_checksum();
        assert_eq!(b, PACKET);
    }

    #[test]
    fn test_construct_options_fragment() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_tos(0x01);
        p.set_total_len(28);
        p.set_ident(0xabcd);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        p.set_hop_limit(1);
        p.set_next_header(IpProtocol::Tcp);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.set_checksum(0x8ca5);
        assert_eq!(b, PACKET_OPTS_FRAG);
    }

    #[test]
    fn test_setters_keep_neighbours() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_ecn(3);
        assert_eq!(p.dscp(), 46);
        p.set_dscp(10);
        assert_eq!(p.ecn(), 3);
        assert_eq!(p.tos(), (10 << 2) | 3);
        p.set_frag_offset(8 * 0x1fff);
        assert!(p.dont_frag());
        assert_eq!(p.frag_offset(), 8 * 0x1fff);
        p.clear_flags();
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 8 * 0x1fff);
        p.set_version(4);
        p.set_header_len(20);
        assert!(p.check_len().is_ok());
        // The reserved flag is cleared too.
        b[6] = 0xff;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.clear_flags();
        assert_eq!(b[6], 0x1f);
    }

    #[test]
    fn test_check_len() {
        let check = |b: &[u8]| Packet::new_checked(b).map(|_| ());
        // Shorter than the fixed header.
        assert_eq!(check(&[]), Err(Error::Truncated));
        assert_eq!(check(&PACKET[..19]), Err(Error::Truncated));
        // Not version 4.
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(check(&b), Err(Error::BadVersion));
        // IHL < 5.
        let mut b = PACKET;
        b[0] = 0x44;
        assert_eq!(check(&b), Err(Error::BadHeaderLen));
        let mut b = PACKET;
        b[0] = 0x40;
        assert_eq!(check(&b), Err(Error::BadHeaderLen));
        // IHL * 4 beyond the buffer: 6 * 4 = 24 > 23.
        assert_eq!(check(&PACKET_OPTS_FRAG[..23]), Err(Error::Truncated));
        let mut b = PACKET;
        b[0] = 0x4f;
        assert_eq!(check(&b), Err(Error::Truncated));
        // Total length below the header length.
        let mut b = PACKET_OPTS_FRAG;
        b[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(check(&b), Err(Error::BadLength));
        let mut b = PACKET;
        b[2..4].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(check(&b), Err(Error::BadLength));
        // Total length beyond the buffer.
        assert_eq!(check(&PACKET[..27]), Err(Error::Truncated));
        let mut b = PACKET;
        b[2..4].copy_from_slice(&31u16.to_be_bytes());
        assert_eq!(check(&b), Err(Error::Truncated));
        // Exactly the total length, and trailing padding, are fine.
        assert_eq!(check(&PACKET[..28]), Ok(()));
        assert_eq!(check(&PACKET), Ok(()));
        // A header with no payload.
        let mut b = PACKET;
        b[2..4].copy_from_slice(&20u16.to_be_bytes());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_check_len_order() {
        // Every check fails at once: the first one in the documented order wins.
        let mut b = PACKET;
        b[0] = 0x61; // version 6, IHL 1
        b[2..4].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadVersion);
        b[0] = 0x41;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLen
        );
        b[0] = 0x4f; // 60 > 30
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[0] = 0x46;
        b[2..4].copy_from_slice(&20u16.to_be_bytes()); // 20 < 24
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadLength);
    }

    /// Calls every getter and every setter that leaves the length-bearing fields alone.
    fn exercise<T: AsRef<[u8]> + AsMut<[u8]>>(mut p: Packet<T>, v: (u8, u16, u32, bool)) {
        let (b, w, a, f) = v;
        let _ = p.version();
        let hl = p.header_len();
        let _ = (p.dscp(), p.ecn(), p.tos(), p.ident());
        let tl = p.total_len();
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.is_fragment(),
        );
        let _ = (p.hop_limit(), p.next_header(), p.checksum());
        let _ = (p.src_addr(), p.dst_addr(), p.verify_checksum());
        assert_eq!(p.options().len(), hl - HEADER_LEN);
        assert_eq!(p.payload().len(), usize::from(tl) - hl);
        p.set_dscp(b);
        p.set_ecn(b);
        p.set_tos(b);
        p.set_ident(w);
        p.clear_flags();
        p.set_dont_frag(f);
        p.set_more_frags(f);
        p.set_frag_offset(w);
        p.set_hop_limit(b);
        p.set_next_header(IpProtocol::from(b));
        p.set_checksum(w);
        p.set_src_addr(Ipv4Addr::from(a));
        p.set_dst_addr(Ipv4Addr::from(a));
        p.fill_checksum();
        assert!(p.verify_checksum());
        let _ = p.payload_mut();
        assert!(p.check_len().is_ok());
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            v in any::<(u8, u16, u32, bool)>(),
        ) {
            let mut data: Vec<u8> = data;
            if let Ok(p) = Packet::new_checked(&mut data[..]) {
                exercise(p, v);
            }
        }

        // Mostly-plausible headers, so that the Ok path is taken often.
        #[test]
        fn prop_plausible_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            ihl in 0u8..16,
            total in any::<prop::sample::Index>(),
            v in any::<(u8, u16, u32, bool)>(),
        ) {
            let mut data: Vec<u8> = data;
            if data.len() >= HEADER_LEN {
                data[0] = 0x40 | ihl;
                let t = total.index(data.len() + 1) as u16;
                data[2..4].copy_from_slice(&t.to_be_bytes());
            }
            match Packet::new_checked(&mut data[..]) {
                Ok(p) => exercise(p, v),
                Err(e) => prop_assert!(matches!(
                    e,
                    Error::Truncated | Error::BadHeaderLen | Error::BadLength
                )),
            }
        }
    }
}
