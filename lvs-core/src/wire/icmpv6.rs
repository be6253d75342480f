//! A view over an ICMPv6 message (RFC 4443; neighbour discovery types of RFC 4861).
//!
//! The buffer is exactly the message: the caller slices the IP payload (after any
//! extension headers).
//!
//! [`Packet::check_len`] validates only that the buffer holds the 8-byte header (type,
//! code, checksum and the 4 type-specific bytes), else [`Error::Truncated`]. ICMPv6 has
//! no length-bearing field: the message is the whole buffer, so no setter can invalidate
//! the check.
//!
//! The type-specific getters read bytes 4..8 whatever the type is: the echo identifier
//! and sequence number, the MTU of a packet too big, the pointer of a parameter problem.
//! For an error ([`Packet::is_error`], types below 128), [`Packet::data`] is the quoted
//! packet. The checksum covers the IPv6 pseudo-header (next header 58, length = the
//! buffer length) and the whole buffer.

use core::net::Ipv6Addr;

use super::field::{Field, Rest};
use super::{Error, Result};
use crate::checksum;

/// The IPv6 next-header number of ICMPv6, as the pseudo-header carries it.
const NEXT_HEADER: u8 = 58;

mod field {
    use super::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const UNUSED: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const MTU: Field = 4..8;
    pub const POINTER: Field = 4..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMPv6 header, type-specific word included.
pub const HEADER_LEN: usize = field::UNUSED.end;

/// Offset of the checksum field within the ICMPv6 header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// An ICMPv6 message type. Unknown values round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message {
    /// Destination unreachable (1); see [`code`].
    DstUnreachable,
    /// Packet too big (2): bytes 4..8 carry the MTU.
    PktTooBig,
    /// Time exceeded (3); see [`code::time_exceeded`].
    TimeExceeded,
    /// Parameter problem (4): bytes 4..8 point at the offending octet.
    ParamProblem,
    /// Echo request (128).
    EchoRequest,
    /// Echo reply (129).
    EchoReply,
    /// Router solicitation (133).
    RouterSolicit,
    /// Router advertisement (134).
    RouterAdvert,
    /// Neighbor solicitation (135).
    NeighborSolicit,
    /// Neighbor advertisement (136).
    NeighborAdvert,
    /// Redirect (137).
    Redirect,
    /// Any other type.
    Unknown(u8),
}

impl Message {
    /// Whether this type is an error message (type below 128, RFC 4443 §2.1), which
    /// quotes the offending packet.
    #[inline]
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

impl From<u8> for Message {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            1 => Message::DstUnreachable,
            2 => Message::PktTooBig,
            3 => Message::TimeExceeded,
            4 => Message::ParamProblem,
            128 => Message::EchoRequest,
            129 => Message::EchoReply,
            133 => Message::RouterSolicit,
            134 => Message::RouterAdvert,
            135 => Message::NeighborSolicit,
            136 => Message::NeighborAdvert,
            137 => Message::Redirect,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline]
    fn from(m: Message) -> u8 {
        match m {
            Message::DstUnreachable => 1,
            Message::PktTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParamProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::RouterSolicit => 133,
            Message::RouterAdvert => 134,
            Message::NeighborSolicit => 135,
            Message::NeighborAdvert => 136,
            Message::Redirect => 137,
            Message::Unknown(other) => other,
        }
    }
}

/// Codes of a [`Message::DstUnreachable`] (RFC 4443 §3.1).
pub mod code {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDR_UNREACHABLE: u8 = 3;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 4;
    /// Source address failed ingress/egress policy.
    pub const FAILED_POLICY: u8 = 5;
    /// Reject route to destination.
    pub const REJECT_ROUTE: u8 = 6;

    /// Codes of a [`Message::TimeExceeded`](super::Message::TimeExceeded).
    pub mod time_exceeded {
        /// Hop limit exceeded in transit.
        pub const HOP_LIMIT_EXCEEDED: u8 = 0;
        /// Fragment reassembly time exceeded.
        pub const FRAG_REASSEMBLY: u8 = 1;
    }

    /// Codes of a [`Message::ParamProblem`](super::Message::ParamProblem).
    pub mod param_problem {
        /// Erroneous header field encountered.
        pub const HEADER_FIELD: u8 = 0;
        /// Unrecognized next header type encountered.
        pub const NEXT_HEADER: u8 = 1;
        /// Unrecognized IPv6 option encountered.
        pub const OPTION: u8 = 2;
    }
}

/// A view over a buffer holding exactly one ICMPv6 message.
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

/// The sum of the pseudo-header for a message of `len` bytes, `None` past `u32::MAX`.
#[inline]
fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize) -> Option<u16> {
    let len = u32::try_from(len).ok()?;
    Some(checksum::pseudo_header_v6(src, dst, NEXT_HEADER, len))
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

    /// The message code.
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

    /// The MTU of a packet too big (bytes 4..8).
    #[inline]
    pub fn pkt_too_big_mtu(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::MTU)
    }

    /// The pointer of a parameter problem (bytes 4..8): the offset of the offending
    /// octet in the quoted packet.
    #[inline]
    pub fn param_problem_ptr(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::POINTER)
    }

    /// Whether the message is an error (type below 128) quoting a packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.buffer.as_ref()[field::TYPE] < 128
    }

    /// The bytes after the header: the quoted packet of an error, the data of an echo.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// Whether the checksum is valid for a message carried from `src` to `dst`: the
    /// pseudo-header (length = the buffer length, next header 58) and the whole buffer.
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        match pseudo_header(src, dst, data.len()) {
            Some(pseudo) => checksum::combine(pseudo, checksum::sum(data)) == 0xffff,
            None => false,
        }
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

    #[inline]
    fn set_u32(&mut self, f: Field, value: u32) {
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

    /// Sets the MTU of a packet too big (bytes 4..8).
    #[inline]
    pub fn set_pkt_too_big_mtu(&mut self, value: u32) {
        self.set_u32(field::MTU, value);
    }

    /// Sets the pointer of a parameter problem (bytes 4..8).
    #[inline]
    pub fn set_param_problem_ptr(&mut self, value: u32) {
        self.set_u32(field::POINTER, value);
    }

    /// Zeroes the type-specific word (bytes 4..8), as destination unreachable and time
    /// exceeded send it.
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::UNUSED].fill(0);
    }

    /// The bytes after the header, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Computes the checksum for a message carried from `src` to `dst` and writes it.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let Some(pseudo) = pseudo_header(src, dst, self.buffer.as_ref().len()) else {
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
    use proptest::prelude::*;
    use std::vec::Vec;

    const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    // Packet too big, MTU 1280, from router 2001:db8:1::1 to 2001:db8:2::2, quoting the
    // IPv6 header of a 1452-byte TCP segment 2001:db8:2::2 -> 2001:db8:3::3 and the first
    // 8 bytes of TCP (443 -> 51234).
    static PKT_TOO_BIG: [u8; 56] = [
        0x02, 0x00, 0x07, 0xc9, 0x00, 0x00, 0x05, 0x00, 0x60, 0x00, 0x00, 0x00, 0x05, 0xac, 0x06,
        0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x01, 0xbb, 0xc8, 0x22, 0x01, 0x02, 0x03, 0x04,
    ];

    // Echo request 2001:db8::1 -> 2001:db8::2, identifier 0x4242, sequence 7, "0123456789".
    static ECHO_REQUEST: [u8; 18] = [
        0x80, 0x00, 0xdc, 0xea, 0x42, 0x42, 0x00, 0x07, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
        0x37, 0x38, 0x39,
    ];

    #[test]
    fn test_deconstruct_pkt_too_big() {
        let packet = Packet::new_checked(&PKT_TOO_BIG[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::PktTooBig);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x07c9);
        assert_eq!(packet.pkt_too_big_mtu(), 1280);
        assert!(packet.is_error());
        assert_eq!(packet.data(), &PKT_TOO_BIG[8..]);
        assert_eq!(packet.into_data()[0] >> 4, 6);
        assert!(packet.verify_checksum(&ROUTER, &SERVER));
        assert!(!packet.verify_checksum(&SERVER, &SERVER));
    }

    #[test]
    fn test_construct_pkt_too_big() {
        let mut bytes = [0xa5u8; 56];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::PktTooBig);
        packet.set_msg_code(0);
        packet.set_pkt_too_big_mtu(1280);
        packet.data_mut().copy_from_slice(&PKT_TOO_BIG[8..]);
        packet.fill_checksum(&ROUTER, &SERVER);
        assert_eq!(bytes, PKT_TOO_BIG);
    }

    #[test]
    fn test_deconstruct_echo() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0xdcea);
        assert_eq!(packet.echo_ident(), 0x4242);
        assert_eq!(packet.echo_seq_no(), 7);
        assert!(!packet.is_error());
        assert_eq!(packet.data(), b"0123456789");
        assert!(packet.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn test_construct_echo() {
        let mut bytes = [0u8; 18];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::EchoRequest);
        packet.set_echo_ident(0x4242);
        packet.set_echo_seq_no(7);
        packet.data_mut().copy_from_slice(b"0123456789");
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(bytes, ECHO_REQUEST);
    }

    #[test]
    fn test_param_problem_and_reserved() {
        let mut bytes = PKT_TOO_BIG;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_msg_type(Message::ParamProblem);
        packet.set_msg_code(code::param_problem::HEADER_FIELD);
        packet.set_param_problem_ptr(6);
        assert_eq!(packet.param_problem_ptr(), 6);
        assert_eq!(packet.pkt_too_big_mtu(), 6);
        assert!(packet.is_error());
        packet.clear_reserved();
        assert_eq!(packet.param_problem_ptr(), 0);
        assert!(!packet.verify_checksum(&ROUTER, &SERVER));
        packet.fill_checksum(&ROUTER, &SERVER);
        assert!(packet.verify_checksum(&ROUTER, &SERVER));
    }

    #[test]
    fn test_checksum_corrupted() {
        let mut bytes = PKT_TOO_BIG;
        bytes[7] = 0x01; // MTU 1281
        assert!(
            !Packet::new_checked(&bytes[..])
                .unwrap()
                .verify_checksum(&ROUTER, &SERVER)
        );
    }

    #[test]
    fn test_check_len() {
        assert_eq!(
            Packet::new_checked(&PKT_TOO_BIG[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        let packet = Packet::new_checked(&PKT_TOO_BIG[..8]).unwrap();
        assert_eq!(packet.data(), &[] as &[u8]);
    }

    #[test]
    fn test_message_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Message::from(v)), v);
            assert_eq!(Message::from(v).is_error(), v < 128);
        }
        assert_eq!(Message::from(130), Message::Unknown(130));
        assert_eq!(Message::from(1), Message::DstUnreachable);
        assert_eq!(Message::from(137), Message::Redirect);
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                     src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.msg_type(), packet.msg_code(), packet.checksum());
                let _ = (packet.echo_ident(), packet.echo_seq_no());
                let _ = (packet.pkt_too_big_mtu(), packet.param_problem_ptr());
                let _ = packet.verify_checksum(&src, &dst);
                prop_assert_eq!(packet.is_error(), packet.msg_type().is_error());
                prop_assert_eq!(packet.data().len() + HEADER_LEN, bytes.len());

                let mut copy = bytes.clone();
                let mut packet = Packet::new_checked(&mut copy[..]).unwrap();
                packet.set_msg_type(Message::Unknown(200));
                packet.set_msg_code(1);
                packet.set_echo_ident(2);
                packet.set_echo_seq_no(3);
                packet.set_pkt_too_big_mtu(4);
                packet.set_param_problem_ptr(5);
                packet.clear_reserved();
                let _ = packet.data_mut();
                packet.fill_checksum(&src, &dst);
                prop_assert!(packet.verify_checksum(&src, &dst));
            } else {
                prop_assert!(bytes.len() < HEADER_LEN);
            }
        }

        #[test]
        fn prop_fill_then_verify(header in any::<[u8; 8]>(),
                                 data in proptest::collection::vec(any::<u8>(), 0..300),
                                 src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut bytes = Vec::from(&header[..]);
            bytes.extend_from_slice(&data);
            let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
            packet.fill_checksum(&src, &dst);
            prop_assert!(packet.verify_checksum(&src, &dst));
            prop_assert_eq!(packet.data(), &data[..]);
        }
    }
}
