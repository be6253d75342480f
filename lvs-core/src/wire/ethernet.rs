//! Ethernet II frames, with at most one IEEE 802.1Q VLAN tag.
//!
//! # What is validated
//! [`Frame::check_len`] checks that the buffer holds the 14-byte header and, when the
//! outer EtherType is 802.1Q (`0x8100`), the 4-byte tag as well (18 bytes in all). After
//! that every getter and setter is panic-free. The *outer* EtherType is the one
//! length-bearing field: [`Frame::set_outer_ethertype`], and [`Frame::set_ethertype`]
//! with [`EtherType::Vlan`] on an untagged frame, change [`Frame::header_len`] and so
//! void the check.
//!
//! Only one tag is read. A second 802.1Q tag (Q-in-Q with `0x8100` twice) shows as an
//! effective EtherType of [`EtherType::Vlan`]; an 802.1ad S-tag (`0x88a8`) is just
//! `EtherType::Unknown(0x88a8)`. Neither is interpreted further. Nothing checks the
//! addresses, the payload length (Ethernet padding is part of the payload) or the FCS
//! (which a receive path has normally stripped already).

use core::fmt;

use super::{Error, Result};

/// A six-octet Ethernet (MAC) address.
#[derive(Debug, Hash, PartialEq, Eq, PartialOrd, Ord, Clone, Copy, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Address = Address([0xff; 6]);

    /// The address in `bytes`, or `None` unless `bytes` is exactly six octets long.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Option<Address> {
        <[u8; 6]>::try_from(bytes).ok().map(Address)
    }

    /// The six octets, in transmission order.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// Whether the group (I/G, "multicast") bit is set. The broadcast address is
    /// multicast too.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address: neither multicast nor broadcast.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the "locally administered" (U/L) bit is set.
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for Address {
    #[inline]
    fn from(bytes: [u8; 6]) -> Self {
        Address(bytes)
    }
}

impl From<Address> for [u8; 6] {
    #[inline]
    fn from(addr: Address) -> Self {
        addr.0
    }
}

/// Formats as six lower-case two-digit hex octets separated by colons:
/// `02:00:5e:10:00:01`.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Address {
    fn format(&self, f: defmt::Formatter) {
        let b = self.0;
        defmt::write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            b[5]
        )
    }
}

/// The error of parsing an [`Address`] from a string that is not six colon-separated
/// pairs of hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddressParseError;

impl fmt::Display for AddressParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid Ethernet address syntax (expected aa:bb:cc:dd:ee:ff)")
    }
}

impl core::error::Error for AddressParseError {}

/// Parses the [`Display`](fmt::Display) form: exactly six groups of exactly two hex
/// digits (either case) separated by `:`.
impl core::str::FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> core::result::Result<Address, AddressParseError> {
        fn hex(c: u8) -> core::result::Result<u8, AddressParseError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(AddressParseError),
            }
        }

        let s = s.as_bytes();
        // "aa:bb:cc:dd:ee:ff" is 6 * 2 digits + 5 colons.
        if s.len() != 17 {
            return Err(AddressParseError);
        }
        let mut out = [0u8; 6];
        for (i, octet) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && s[at - 1] != b':' {
                return Err(AddressParseError);
            }
            *octet = (hex(s[at])? << 4) | hex(s[at + 1])?;
        }
        Ok(Address(out))
    }
}

/// An EtherType. Unknown values round-trip through [`EtherType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EtherType {
    /// IPv4 (`0x0800`).
    Ipv4,
    /// IPv6 (`0x86dd`).
    Ipv6,
    /// ARP (`0x0806`).
    Arp,
    /// An IEEE 802.1Q VLAN tag (`0x8100`).
    Vlan,
    /// Any other value (including the 802.1ad S-tag `0x88a8`).
    Unknown(u16),
}

impl EtherType {
    /// The 802.1Q tag protocol identifier.
    const TPID_VLAN: u16 = 0x8100;
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x86dd => EtherType::Ipv6,
            0x0806 => EtherType::Arp,
            EtherType::TPID_VLAN => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => EtherType::TPID_VLAN,
            EtherType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

mod field {
    use crate::wire::field::*;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    /// The outer EtherType, or the TPID of an 802.1Q tag.
    pub const ETHERTYPE: Field = 12..14;
    /// Tag control information (PCP, DEI, VID) of an 802.1Q tag.
    pub const VLAN_TCI: Field = 14..16;
    /// The EtherType that follows an 802.1Q tag.
    pub const VLAN_ETHERTYPE: Field = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::VLAN_ETHERTYPE.end;

/// A view of an Ethernet II frame, with at most one 802.1Q tag, over a byte buffer.
///
/// See the [module documentation](self) for what [`check_len`](Frame::check_len)
/// validates.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Length of an untagged header (14).
    pub const HEADER_LEN: usize = HEADER_LEN;
    /// Length of a header with one 802.1Q tag (18).
    pub const VLAN_HEADER_LEN: usize = VLAN_HEADER_LEN;

    /// Wraps a buffer without checking it. Accessors may panic unless
    /// [`check_len`](Frame::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer and [`check_len`](Frame::check_len)s it.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Ensures that no accessor panics.
    ///
    /// `Err(Error::Truncated)` if the buffer is shorter than 14 bytes, or the outer
    /// EtherType is 802.1Q and the buffer is shorter than 18 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.is_tagged() && data.len() < VLAN_HEADER_LEN {
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

    /// Whether the outer EtherType is 802.1Q (the frame carries a VLAN tag).
    #[inline]
    pub fn is_tagged(&self) -> bool {
        self.read_u16(field::ETHERTYPE) == EtherType::TPID_VLAN
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Address {
        let data = self.buffer.as_ref();
        let mut a = [0u8; 6];
        a.copy_from_slice(&data[field::DESTINATION]);
        Address(a)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Address {
        let data = self.buffer.as_ref();
        let mut a = [0u8; 6];
        a.copy_from_slice(&data[field::SOURCE]);
        Address(a)
    }

    /// The outer EtherType (bytes 12..14): [`EtherType::Vlan`] for a tagged frame.
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from(self.read_u16(field::ETHERTYPE))
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), when the frame is tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.is_tagged() {
            Some(self.read_u16(field::VLAN_TCI))
        } else {
            None
        }
    }

    /// The 802.1Q VLAN identifier (low 12 bits of the TCI), when the frame is tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|tci| tci & 0x0fff)
    }

    /// The effective EtherType: the outer one of an untagged frame, the one after the
    /// tag of a tagged frame. A second 802.1Q tag reads as [`EtherType::Vlan`].
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            EtherType::from(self.read_u16(field::VLAN_ETHERTYPE))
        } else {
            self.outer_ethertype()
        }
    }

    /// The header length: 14, or 18 for a tagged frame.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Everything after the header (after the tag, if any), including any Ethernet
    /// padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let start = self.header_len();
        &self.buffer.as_ref()[start..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// As [`payload`](Frame::payload), but borrowed for the lifetime of the underlying
    /// buffer rather than of this view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        let data: &'a [u8] = self.buffer.as_ref();
        &data[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    fn write_u16(&mut self, f: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0);
    }

    /// Sets the effective EtherType: bytes 12..14 of an untagged frame, 16..18 of a
    /// tagged one.
    ///
    /// Writing [`EtherType::Vlan`] into an untagged frame makes it tagged: the header
    /// length becomes 18, which voids an earlier [`check_len`](Frame::check_len).
    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        if self.is_tagged() {
            self.write_u16(field::VLAN_ETHERTYPE, value.into());
        } else {
            self.write_u16(field::ETHERTYPE, value.into());
        }
    }

    /// Sets the outer EtherType (bytes 12..14). Length-bearing: switching between
    /// [`EtherType::Vlan`] and anything else changes the header length and voids an
    /// earlier [`check_len`](Frame::check_len).
    #[inline]
    pub fn set_outer_ethertype(&mut self, value: EtherType) {
        self.write_u16(field::ETHERTYPE, value.into());
    }

    /// Sets the 802.1Q tag control information. Does nothing on an untagged frame.
    #[inline]
    pub fn set_vlan_tci(&mut self, value: u16) {
        if self.is_tagged() {
            self.write_u16(field::VLAN_TCI, value);
        }
    }

    /// Everything after the header (after the tag, if any), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::ToString;
    use std::vec::Vec;

    static FRAME_UNTAGGED: [u8; 18] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // dst
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    static FRAME_TAGGED: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // src
        0x81, 0x00, // 802.1Q
        0x60, 0x64, // PCP 3, DEI 0, VID 100
        0x86, 0xdd, // IPv6
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    static FRAME_DOUBLE_TAGGED: [u8; 24] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // dst
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // src
        0x81, 0x00, // 802.1Q
        0x00, 0x0a, // VID 10
        0x81, 0x00, // 802.1Q again
        0x00, 0x14, // VID 20
        0x08, 0x00, // IPv4
        0xaa, 0xbb,
    ];

    const DST: Address = Address([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    const SRC: Address = Address([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);

    #[test]
    fn test_deconstruct_untagged() {
        let f = Frame::new_checked(&FRAME_UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), DST);
        assert_eq!(f.src_addr(), SRC);
        assert_eq!(f.outer_ethertype(), EtherType::Ipv4);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert!(!f.is_tagged());
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(f.into_payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_deconstruct_tagged() {
        let f = Frame::new_checked(&FRAME_TAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), Address::BROADCAST);
        assert_eq!(f.src_addr(), SRC);
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.ethertype(), EtherType::Ipv6);
        assert!(f.is_tagged());
        assert_eq!(f.vlan_tci(), Some(0x6064));
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_deconstruct_double_tagged() {
        let f = Frame::new_checked(&FRAME_DOUBLE_TAGGED[..]).unwrap();
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.vlan_id(), Some(10));
        // Only one tag is read: the second one is the effective EtherType.
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &FRAME_DOUBLE_TAGGED[18..]);
    }

    #[test]
    fn test_qinq_s_tag_is_unknown() {
        let mut b = FRAME_TAGGED;
        b[12] = 0x88;
        b[13] = 0xa8;
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.outer_ethertype(), EtherType::Unknown(0x88a8));
        assert_eq!(f.ethertype(), EtherType::Unknown(0x88a8));
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.header_len(), 14);
    }

    #[test]
    fn test_construct_untagged() {
        let mut b = [0u8; 18];
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_dst_addr(DST);
        f.set_src_addr(SRC);
        f.set_ethertype(EtherType::Ipv4);
        // No tag: setting the TCI is a no-op.
        f.set_vlan_tci(0xffff);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(b, FRAME_UNTAGGED);
    }

    #[test]
    fn test_construct_tagged() {
        let mut b = [0u8; 22];
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_dst_addr(Address::BROADCAST);
        f.set_src_addr(SRC);
        f.set_outer_ethertype(EtherType::Vlan);
        f.set_vlan_tci(0x6064);
        f.set_ethertype(EtherType::Ipv6);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(b, FRAME_TAGGED);

        // The same through set_ethertype alone: Vlan into an untagged frame tags it.
        let mut c = [0u8; 22];
        let mut f = Frame::new_unchecked(&mut c[..]);
        f.set_ethertype(EtherType::Vlan);
        f.set_ethertype(EtherType::Ipv6);
        f.set_vlan_tci(0x6064);
        assert_eq!(&c[12..18], &FRAME_TAGGED[12..18]);
    }

    #[test]
    fn test_check_len() {
        assert_eq!(Frame::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Frame::new_checked(&FRAME_UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
        assert!(Frame::new_checked(&FRAME_UNTAGGED[..14]).is_ok());
        // A tagged frame must hold the whole tag.
        for len in 14..18 {
            assert_eq!(
                Frame::new_checked(&FRAME_TAGGED[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let f = Frame::new_checked(&FRAME_TAGGED[..18]).unwrap();
        assert_eq!(f.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_address() {
        assert!(Address::BROADCAST.is_broadcast());
        assert!(Address::BROADCAST.is_multicast());
        assert!(!Address::BROADCAST.is_unicast());
        assert!(Address::BROADCAST.is_local());
        assert!(DST.is_unicast());
        assert!(!DST.is_local());
        assert!(SRC.is_local());
        assert!(Address([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert_eq!(Address::default(), Address([0; 6]));
        assert_eq!(Address::from_bytes(&SRC.0), Some(SRC));
        assert_eq!(Address::from_bytes(&[0; 5]), None);
        assert_eq!(Address::from_bytes(&[0; 7]), None);
        assert_eq!(SRC.as_bytes(), &[0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    }

    #[test]
    fn test_address_display_parse() {
        assert_eq!(SRC.to_string(), "02:00:5e:10:00:01");
        assert_eq!(Address::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        assert_eq!("02:00:5e:10:00:01".parse::<Address>(), Ok(SRC));
        assert_eq!("02:00:5E:10:00:01".parse::<Address>(), Ok(SRC));
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:",
            "02:00:5e:10:00:1",
            "2:00:5e:10:00:01",
            "02-00-5e-10-00-01",
            "02:00:5e:10:00:0g",
            "02:00:5e:10:00:+1",
            "02::005e:10:00:01",
            "02:00:5é:10:00:0",
        ] {
            assert_eq!(bad.parse::<Address>(), Err(AddressParseError), "{bad:?}");
        }
        assert!(!format!("{AddressParseError}").is_empty());
    }

    #[test]
    fn test_ethertype_round_trip() {
        for v in [0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8, 0, 0xffff] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x8100), EtherType::Vlan);
        assert_eq!(EtherType::from(0x88a8), EtherType::Unknown(0x88a8));
        assert_eq!(EtherType::Unknown(0x88a8).to_string(), "0x88a8");
    }

    fn exercise<T: AsRef<[u8]> + AsMut<[u8]>>(mut f: Frame<T>, a: Address, et: u16, tci: u16) {
        let _ = f.dst_addr();
        let _ = f.src_addr();
        let _ = f.outer_ethertype();
        let _ = f.ethertype();
        let _ = f.vlan_tci();
        let _ = f.vlan_id();
        let hl = f.header_len();
        assert_eq!(f.payload().len() + hl, f.as_ref().len());
        f.set_dst_addr(a);
        f.set_src_addr(a);
        f.set_vlan_tci(tci);
        // A non-VLAN EtherType never changes the header length.
        if et != 0x8100 {
            f.set_ethertype(EtherType::from(et));
            assert_eq!(f.header_len(), hl);
        }
        let _ = f.payload_mut();
        assert!(f.check_len().is_ok());
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            tag in any::<bool>(),
            a in any::<[u8; 6]>(),
            et in any::<u16>(),
            tci in any::<u16>(),
        ) {
            let mut data: Vec<u8> = data;
            if tag && data.len() >= 14 {
                data[12] = 0x81;
                data[13] = 0x00;
            }
            if let Ok(f) = Frame::new_checked(&mut data[..]) {
                exercise(f, Address(a), et, tci);
            }
        }

        #[test]
        fn prop_address_display_parses_back(a in any::<[u8; 6]>()) {
            let a = Address(a);
            prop_assert_eq!(a.to_string().parse::<Address>(), Ok(a));
        }

        #[test]
        fn prop_address_parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<Address>();
        }
    }
}
