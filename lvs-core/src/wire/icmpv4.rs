//! A view over an ICMPv4 message (RFC 792, RFC 1191 for the next-hop MTU).
//!
//! The buffer is exactly the message: the caller slices the IP payload.
//!
//! [`Packet::check_len`] validates only that the buffer holds the 8-byte header (type,
//! code, checksum and the 4 type-specific bytes), else [`Error::Truncated`]. ICMPv4 has
//! no length-bearing field: the message is the whole buffer, so no setter can invalidate
//! the check.
//!
//! The type-specific getters read bytes 4..8 whatever the type is: the echo identifier
//! and sequence number, the next-hop MTU of a "fragmentation needed". For an error
//! ([`Packet::is_error`]), [`Packet::data`] is the quoted datagram.

use super::field::{Field, Rest};
use super::{Error, Result};
use crate::checksum;

mod field {
    use super::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const UNUSED: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const MTU: Field = 6..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMPv4 header, type-specific word included.
pub const HEADER_LEN: usize = field::UNUSED.end;

/// Offset of the checksum field within the ICMPv4 header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// An ICMPv4 message type. Unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message {
    /// Echo reply (0).
    EchoReply,
    /// Destination unreachable (3); see [`code`].
    DstUnreachable,
    /// Source quench (4, deprecated by RFC 6633).
    SourceQuench,
    /// Redirect (5).
    Redirect,
    /// Echo request (8).
    EchoRequest,
    /// Time exceeded (11); see [`code::time_exceeded`].
    TimeExceeded,
    /// Parameter problem (12).
    ParamProblem,
    /// Any other type.
    Unknown(u8),
}

impl Message {
    /// Whether this type is an error that quotes the offending datagram: destination
    /// unreachable, source quench, redirect, time exceeded, parameter problem.
    #[inline]
    pub const fn is_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable
                | Message::SourceQuench
                | Message::Redirect
                | Message::TimeExceeded
                | Message::ParamProblem
        )
    }
}

impl From<u8> for Message {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            4 => Message::SourceQuench,
            5 => Message::Redirect,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            12 => Message::ParamProblem,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline]
    fn from(m: Message) -> u8 {
        match m {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::SourceQuench => 4,
            Message::Redirect => 5,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(other) => other,
        }
    }
}

/// Codes of a [`Message::DstUnreachable`] (RFC 792, RFC 1122, RFC 1812).
pub mod code {
    /// Network unreachable.
    pub const NET_UNREACHABLE: u8 = 0;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 1;
    /// Protocol unreachable.
    pub const PROTO_UNREACHABLE: u8 = 2;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Fragmentation needed and DF set; bytes 6..8 carry the next-hop MTU (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SRC_ROUTE_FAILED: u8 = 5;
    /// Destination network unknown.
    pub const NET_UNKNOWN: u8 = 6;
    /// Destination host unknown.
    pub const HOST_UNKNOWN: u8 = 7;
    /// Source host isolated.
    pub const SRC_HOST_ISOLATED: u8 = 8;
    /// Network administratively prohibited.
    pub const NET_PROHIBITED: u8 = 9;
    /// Host administratively prohibited.
    pub const HOST_PROHIBITED: u8 = 10;
    /// Network unreachable for type of service.
    pub const NET_UNREACHABLE_TOS: u8 = 11;
    /// Host unreachable for type of service.
    pub const HOST_UNREACHABLE_TOS: u8 = 12;
    /// Communication administratively prohibited.
    pub const COMM_PROHIBITED: u8 = 13;
    /// Host precedence violation.
    pub const HOST_PRECEDENCE_VIOLATION: u8 = 14;
    /// Precedence cutoff in effect.
    pub const PRECEDENCE_CUTOFF: u8 = 15;

    /// Codes of a [`Message::TimeExceeded`](super::Message::TimeExceeded).
    pub mod time_exceeded {
        /// Time to live exceeded in transit.
        pub const TTL_EXCEEDED: u8 = 0;
        /// Fragment reassembly time exceeded.
        pub const FRAG_REASSEMBLY: u8 = 1;
    }
}

/// A view over a buffer holding exactly one ICMPv4 message.
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
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code (for a destination unreachable, one of [`code`]).
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The identifier of an echo request or reply (bytes 4..6).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply (bytes 6..8).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a "fragmentation needed" ([`code::FRAG_NEEDED`]), bytes 6..8;
    /// 0 from a router older than RFC 1191.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::MTU)
    }

    /// Whether the message is an error quoting a datagram (see [`Message::is_error`]).
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }

    /// The bytes after the header: the quoted datagram of an error, the data of an echo.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// Whether the checksum over the whole buffer is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The data, borrowed for as long as the buffer rather than the view.
    #[inline]
    pub fn into_data(self) -> &'a [u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_u16(&mut self, f: Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16(field::CHECKSUM, value);
    }

    /// Sets the echo identifier (bytes 4..6).
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        self.set_u16(field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number (bytes 6..8).
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.set_u16(field::ECHO_SEQNO, value);
    }

    /// Sets the next-hop MTU (bytes 6..8); bytes 4..6 are left alone, see
    /// [`clear_reserved`](Packet::clear_reserved).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.set_u16(field::MTU, value);
    }

    /// Zeroes the type-specific word (bytes 4..8), as an error other than "fragmentation
    /// needed" or parameter problem sends it.
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::UNUSED].fill(0);
    }

    /// The bytes after the header, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Computes the checksum over the whole buffer and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
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
    use proptest::prelude::*;
    use std::vec::Vec;

    // A Windows `ping`: echo request, identifier 1, sequence 33, 32 bytes of alphabet.
    static ECHO_REQUEST: [u8; 40] = [
        0x08, 0x00, 0x4d, 0x3a, 0x00, 0x01, 0x00, 0x21, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76,
        0x77, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    ];

    static ECHO_DATA: &[u8] = b"abcdefghijklmnopqrstuvwabcdefghi";

    // Destination unreachable, fragmentation needed, next-hop MTU 1400, quoting a
    // 1500-byte DF TCP segment 192.168.1.10:51234 -> 203.0.113.7:443 (IPv4 header with a
    // valid checksum and the first 8 bytes of TCP).
    static FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0x29, 0xa0, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x05, 0xdc, 0x1c, 0x46, 0x40,
        0x00, 0x40, 0x06, 0x1b, 0x1c, 0xc0, 0xa8, 0x01, 0x0a, 0xcb, 0x00, 0x71, 0x07, 0xc8, 0x22,
        0x01, 0xbb, 0x01, 0x02, 0x03, 0x04,
    ];

    #[test]
    fn test_deconstruct_echo() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x4d3a);
        assert_eq!(packet.echo_ident(), 1);
        assert_eq!(packet.echo_seq_no(), 33);
        assert!(!packet.is_error());
        assert_eq!(packet.data(), ECHO_DATA);
        assert_eq!(packet.into_data(), ECHO_DATA);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn test_construct_echo() {
        let mut bytes = [0xa5u8; 40];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::EchoRequest);
        packet.set_msg_code(0);
        packet.set_echo_ident(1);
        packet.set_echo_seq_no(33);
        packet.data_mut().copy_from_slice(ECHO_DATA);
        packet.fill_checksum();
        assert_eq!(bytes, ECHO_REQUEST);
    }

    #[test]
    fn test_deconstruct_frag_needed() {
        let packet = Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::DstUnreachable);
        assert_eq!(packet.msg_code(), code::FRAG_NEEDED);
        assert_eq!(packet.checksum(), 0x29a0);
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert!(packet.is_error());
        assert_eq!(packet.data(), &FRAG_NEEDED[8..]);
        // The quoted IPv4 header is intact: its own checksum verifies.
        assert_eq!(checksum::sum(&packet.data()[..20]), 0xffff);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn test_construct_frag_needed() {
        let mut bytes = [0xa5u8; 36];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::DstUnreachable);
        packet.set_msg_code(code::FRAG_NEEDED);
        packet.clear_reserved();
        packet.set_next_hop_mtu(1400);
        packet.data_mut().copy_from_slice(&FRAG_NEEDED[8..]);
        packet.fill_checksum();
        assert_eq!(bytes, FRAG_NEEDED);
    }

    #[test]
    fn test_clear_reserved() {
        let mut bytes = FRAG_NEEDED;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.clear_reserved();
        assert_eq!(packet.next_hop_mtu(), 0);
        assert!(!packet.verify_checksum());
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn test_checksum_corrupted() {
        let mut bytes = ECHO_REQUEST;
        bytes[39] ^= 0x20;
        assert!(!Packet::new_checked(&bytes[..]).unwrap().verify_checksum());
    }

    #[test]
    fn test_check_len() {
        assert_eq!(
            Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        let packet = Packet::new_checked(&ECHO_REQUEST[..8]).unwrap();
        assert_eq!(packet.data(), &[] as &[u8]);
    }

    #[test]
    fn test_message_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Message::from(v)), v);
        }
        assert_eq!(Message::from(13), Message::Unknown(13));
        let errors: Vec<u8> = (0..=255u8)
            .filter(|&v| Message::from(v).is_error())
            .collect();
        assert_eq!(errors, [3, 4, 5, 11, 12]);
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.msg_type(), packet.msg_code(), packet.checksum());
                let _ = (packet.echo_ident(), packet.echo_seq_no(), packet.next_hop_mtu());
                let _ = (packet.is_error(), packet.verify_checksum());
                prop_assert_eq!(packet.data().len() + HEADER_LEN, bytes.len());

                let mut copy = bytes.clone();
                let mut packet = Packet::new_checked(&mut copy[..]).unwrap();
                packet.set_msg_type(Message::Unknown(200));
                packet.set_msg_code(1);
                packet.set_echo_ident(2);
                packet.set_echo_seq_no(3);
                packet.set_next_hop_mtu(4);
                packet.clear_reserved();
                let _ = packet.data_mut();
                packet.fill_checksum();
                prop_assert!(packet.verify_checksum());
            } else {
                prop_assert!(bytes.len() < HEADER_LEN);
            }
        }

        #[test]
        fn prop_fill_then_verify(header in any::<[u8; 8]>(),
                                 data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = Vec::from(&header[..]);
            bytes.extend_from_slice(&data);
            let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
            packet.fill_checksum();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(packet.data(), &data[..]);
        }
    }
}
