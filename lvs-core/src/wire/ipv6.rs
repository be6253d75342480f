//! IPv6 headers (RFC 8200) and a bounded walk of the extension-header chain.
//!
//! # What is validated
//! [`Packet::check_len`] checks, in this order, and returns the first failure:
//! 1. the buffer holds the 40-byte fixed header, else [`Error::Truncated`];
//! 2. the version is 6, else [`Error::BadVersion`];
//! 3. the buffer holds `40 + payload_len` bytes, else [`Error::Truncated`].
//!
//! Bytes after `40 + payload_len` (link-layer padding) are allowed and ignored by
//! [`Packet::payload`]. Jumbograms (payload length 0 with a Jumbo Payload option) are not
//! supported: their payload reads as empty. The extension headers are not part of the
//! check; [`Packet::upper_layer`] and [`walk_ext`] walk them on demand, with a bound on
//! their number.
//!
//! After a successful check every getter and setter is panic-free, as long as the
//! length-bearing fields are left alone: [`Packet::set_version`] (check 2) and
//! [`Packet::set_payload_len`] void the check.

use core::net::Ipv6Addr;

use super::{Error, IpProtocol, Result};

mod field {
    use crate::wire::field::*;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The most extension headers [`walk_ext`] goes through before giving up with
/// [`Error::ExtHeaderChain`].
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 header and its payload over a byte buffer.
///
/// See the [module documentation](self) for what [`check_len`](Packet::check_len)
/// validates.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the fixed header (40).
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
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if self.total_len() > len {
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
    fn read_u32(&self, f: core::ops::Range<usize>) -> u32 {
        let data = self.buffer.as_ref();
        u32::from_be_bytes([
            data[f.start],
            data[f.start + 1],
            data[f.start + 2],
            data[f.start + 3],
        ])
    }

    #[inline]
    fn read_addr(&self, f: core::ops::Range<usize>) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[f]);
        Ipv6Addr::from(a)
    }

    /// The version field (6 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// The traffic class byte (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.read_u32(field::VER_TC_FLOW) >> 20) as u8
    }

    /// The differentiated services code point (upper 6 bits of the traffic class).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// The explicit congestion notification bits (lower 2 bits of the traffic class).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// The 20-bit flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.read_u32(field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// The payload length field: everything after the fixed header, extension headers
    /// included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The length of the whole packet: `40 + payload_len`.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The next header field: the first extension header or the upper layer.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        self.read_addr(field::SRC_ADDR)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        self.read_addr(field::DST_ADDR)
    }

    /// The payload: bytes `40..total_len`, extension headers included. Anything after
    /// the total length (link-layer padding) is not included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// Walks the extension headers of this packet (within `total_len`) to the
    /// upper-layer header: [`walk_ext`] over `&buffer[..total_len]` from offset 40.
    #[inline]
    pub fn upper_layer(&self) -> Result<ExtWalk> {
        let data = &self.buffer.as_ref()[..self.total_len()];
        walk_ext(data, self.next_header(), HEADER_LEN)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// As [`payload`](Packet::payload), but borrowed for the lifetime of the underlying
    /// buffer rather than of this view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let end = self.total_len();
        let data: &'a [u8] = self.buffer.as_ref();
        &data[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn write_u32(&mut self, f: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version field (the upper 4 bits of `value` are ignored). Anything but 6
    /// voids an earlier [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW.start];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the traffic class byte.
    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        let w = self.read_u32(field::VER_TC_FLOW);
        self.write_u32(
            field::VER_TC_FLOW,
            (w & 0xf00f_ffff) | (u32::from(value) << 20),
        );
    }

    /// Sets the DSCP (6 bits), keeping the ECN bits.
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let tc = (self.traffic_class() & 0x03) | (value << 2);
        self.set_traffic_class(tc);
    }

    /// Sets the ECN bits (2 bits), keeping the DSCP.
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let tc = (self.traffic_class() & 0xfc) | (value & 0x03);
        self.set_traffic_class(tc);
    }

    /// Sets the flow label (the upper 12 bits of `value` are ignored).
    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        let w = self.read_u32(field::VER_TC_FLOW);
        self.write_u32(
            field::VER_TC_FLOW,
            (w & 0xfff0_0000) | (value & 0x000f_ffff),
        );
    }

    /// Sets the payload length field. Length-bearing: voids an earlier
    /// [`check_len`](Packet::check_len).
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the next header field.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// The payload (bytes `40..total_len`), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fragment header met by [`walk_ext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FragmentHeader {
    /// Offset of the fragment header itself, from the start of the walked buffer.
    pub header_offset: usize,
    /// The fragment offset, in bytes (the 13-bit field times 8).
    pub offset: u16,
    /// The "more fragments" flag.
    pub more: bool,
    /// The identification field.
    pub ident: u32,
}

/// Where an extension-header walk ([`walk_ext`], [`Packet::upper_layer`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtWalk {
    /// The upper-layer protocol: the first next-header value that is not an extension
    /// header the walk reads, or the next header of a non-first fragment.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the walked buffer (of the
    /// fragment data, for a non-first fragment). At most the buffer's length: the
    /// upper-layer header itself is not checked to be there.
    pub offset: usize,
    /// The fragment header, if the walk went through one.
    pub fragment: Option<FragmentHeader>,
}

/// Length of an IPv6 fragment header.
const FRAG_HEADER_LEN: usize = 8;

/// Walks the IPv6 extension-header chain in `buf` (a whole IPv6 packet, or the possibly
/// truncated one quoted in an ICMPv6 error) from the header of type `first` at offset
/// `start` (40 for a packet's own chain) to the upper-layer header.
///
/// Read as extension headers: Hop-by-Hop Options (only as the first header), Routing and
/// Destination Options (`(hdr_ext_len + 1) * 8` bytes), Authentication (`(len + 2) * 4`
/// bytes) and Fragment (8 bytes). Any other value ends the walk as the upper layer
/// (TCP, UDP, ICMPv6, ESP, No Next Header, IP-in-IP, unknown values, ...) and is
/// returned with its offset. A fragment header with a nonzero offset ends the walk too:
/// its packet carries no upper-layer header, so the walk returns that header's next
/// header, the offset just after it, and the fragment.
///
/// # Errors
/// - [`Error::Truncated`] if `start > buf.len()`;
/// - [`Error::ExtHeaderChain`] if an extension header needs bytes past the end of
///   `buf`, if Hop-by-Hop Options appears anywhere but first, or if there are more than
///   [`MAX_EXT_HEADERS`] extension headers.
///
/// Never panics, and looks at no more than `MAX_EXT_HEADERS + 1` headers, whatever the
/// bytes. On `Ok`, `offset <= buf.len()`.
pub fn walk_ext(buf: &[u8], first: IpProtocol, start: usize) -> Result<ExtWalk> {
    if start > buf.len() {
        return Err(Error::Truncated);
    }
    let mut protocol = first;
    let mut offset = start;
    let mut fragment = None;
    // `count` extension headers have been walked; the loop runs at most
    // MAX_EXT_HEADERS + 1 times, the last one returning in any case.
    for count in 0..=MAX_EXT_HEADERS {
        let is_frag = match protocol {
            IpProtocol::HopByHop if count != 0 => return Err(Error::ExtHeaderChain),
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => false,
            IpProtocol::Ah => false,
            IpProtocol::Ipv6Frag => true,
            _ => {
                return Ok(ExtWalk {
                    protocol,
                    offset,
                    fragment,
                });
            }
        };
        if count == MAX_EXT_HEADERS {
            return Err(Error::ExtHeaderChain);
        }
        // Every extension header starts with next header and a length byte.
        let (next, len_field) = match buf.get(offset..).and_then(|r| r.get(..2)) {
            Some(&[next, len]) => (next, usize::from(len)),
            _ => return Err(Error::ExtHeaderChain),
        };
        let len = match protocol {
            IpProtocol::Ah => (len_field + 2) * 4,
            IpProtocol::Ipv6Frag => FRAG_HEADER_LEN,
            _ => (len_field + 1) * 8,
        };
        let Some(header) = buf.get(offset..).and_then(|r| r.get(..len)) else {
            return Err(Error::ExtHeaderChain);
        };
        let end = offset + len;
        protocol = IpProtocol::from(next);
        if is_frag {
            let off_m = u16::from_be_bytes([header[2], header[3]]);
            let frag = FragmentHeader {
                header_offset: offset,
                offset: off_m & 0xfff8,
                more: off_m & 0x0001 != 0,
                ident: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            };
            fragment = Some(frag);
            if frag.offset != 0 {
                return Ok(ExtWalk {
                    protocol,
                    offset: end,
                    fragment,
                });
            }
        }
        offset = end;
    }
    // Unreachable: the last iteration returns on every path.
    Err(Error::ExtHeaderChain)
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xffff, 2);

    /// A fixed header: TC 0xb9 (DSCP 46, ECN 1), flow 0x12345, hop limit 64.
    fn header(next: u8, payload_len: u16) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[..4].copy_from_slice(&[0x6b, 0x91, 0x23, 0x45]);
        h[4..6].copy_from_slice(&payload_len.to_be_bytes());
        h[6] = next;
        h[7] = 64;
        h[8..24].copy_from_slice(&SRC.octets());
        h[24..40].copy_from_slice(&DST.octets());
        h
    }

    fn packet(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = Vec::from(header(next, rest.len() as u16));
        v.extend_from_slice(rest);
        v
    }

    // Fixed header, UDP, 8 bytes of payload, 2 bytes of padding.
    static PACKET: [u8; 50] = [
        0x6b, 0x91, 0x23, 0x45, // v6, TC 0xb9, flow 0x12345
        0x00, 0x08, 0x11, 0x40, // payload 8, UDP, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // 2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // 2001:db8::ffff:2
        0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x02, //
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP 1234 -> 53
        0x00, 0x00, // padding
    ];

    const TCP: [u8; 20] = [
        0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb9);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 1);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert_eq!(p.payload(), &PACKET[40..48]);
        assert_eq!(
            p.upper_layer(),
            Ok(ExtWalk {
                protocol: IpProtocol::Udp,
                offset: 40,
                fragment: None
            })
        );
        assert_eq!(p.into_payload(), &PACKET[40..48]);
        assert_eq!(&header(17, 8)[..], &PACKET[..40]);
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 50];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version(6);
        p.set_traffic_class(0xb9);
        p.set_flow_label(0xfff1_2345);
        p.set_payload_len(8);
        p.set_next_header(IpProtocol::Udp);
        p.set_hop_limit(64);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        p.payload_mut()
            .copy_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        assert_eq!(b, PACKET);

        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_dscp(10);
        assert_eq!(p.ecn(), 1);
        p.set_ecn(2);
        assert_eq!(p.dscp(), 10);
        assert_eq!(p.traffic_class(), (10 << 2) | 2);
        assert_eq!(p.version(), 6);
        assert_eq!(p.flow_label(), 0x12345);
        p.set_flow_label(0);
        assert_eq!(p.traffic_class(), (10 << 2) | 2);
    }

    #[test]
    fn test_check_len() {
        let check = |b: &[u8]| Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&[]), Err(Error::Truncated));
        assert_eq!(check(&PACKET[..39]), Err(Error::Truncated));
        let mut b = PACKET;
        b[0] = 0x4b;
        assert_eq!(check(&b), Err(Error::BadVersion));
        // The payload length lies: 40 + 8 > 47.
        assert_eq!(check(&PACKET[..47]), Err(Error::Truncated));
        let mut b = PACKET;
        b[4..6].copy_from_slice(&11u16.to_be_bytes());
        assert_eq!(check(&b), Err(Error::Truncated));
        assert_eq!(check(&PACKET[..48]), Ok(()));
        assert_eq!(check(&PACKET[..]), Ok(()));
        // Header only.
        let h = header(59, 0);
        let p = Packet::new_checked(&h[..]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
        assert_eq!(p.upper_layer().unwrap().protocol, IpProtocol::Ipv6NoNxt);
        assert_eq!(p.upper_layer().unwrap().offset, 40);
    }

    #[test]
    fn test_ext_hbh_destopts_tcp() {
        let mut rest = Vec::new();
        rest.extend_from_slice(&[60, 0, 0x01, 0x04, 0, 0, 0, 0]); // HBH, PadN
        rest.extend_from_slice(&[6, 0, 0x01, 0x04, 0, 0, 0, 0]); // DestOpts, PadN
        rest.extend_from_slice(&TCP);
        let b = packet(0, &rest);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(
            p.upper_layer(),
            Ok(ExtWalk {
                protocol: IpProtocol::Tcp,
                offset: 56,
                fragment: None
            })
        );
    }

    #[test]
    fn test_ext_routing() {
        // Routing header (type 4, SRH) of (2 + 1) * 8 = 24 bytes, then UDP.
        let mut rest = Vec::new();
        rest.extend_from_slice(&[17, 2, 4, 1, 0, 0, 0, 0]);
        rest.extend_from_slice(&SRC.octets());
        rest.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let b = packet(43, &rest);
        let p = Packet::new_checked(&b[..]).unwrap();
        let w = p.upper_layer().unwrap();
        assert_eq!(w.protocol, IpProtocol::Udp);
        assert_eq!(w.offset, 64);
        assert_eq!(w.fragment, None);
    }

    #[test]
    fn test_ext_ah() {
        // AH with payload len 4: (4 + 2) * 4 = 24 bytes, then ICMPv6.
        let mut rest = Vec::from([58u8, 4, 0, 0]);
        rest.extend_from_slice(&[0xaa; 20]);
        rest.extend_from_slice(&[128, 0, 0, 0]);
        let b = packet(51, &rest);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(w.protocol, IpProtocol::Icmpv6);
        assert_eq!(w.offset, 64);
    }

    #[test]
    fn test_ext_esp_ends_walk() {
        let b = packet(50, &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(w.protocol, IpProtocol::Esp);
        assert_eq!(w.offset, 40);
    }

    #[test]
    fn test_ext_first_fragment() {
        // Offset 0, M set: the walk goes on to the upper layer.
        let mut rest = Vec::from([6u8, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        rest.extend_from_slice(&TCP);
        let b = packet(44, &rest);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(
            w,
            ExtWalk {
                protocol: IpProtocol::Tcp,
                offset: 48,
                fragment: Some(FragmentHeader {
                    header_offset: 40,
                    offset: 0,
                    more: true,
                    ident: 0xdead_beef
                }),
            }
        );
    }

    #[test]
    fn test_ext_later_fragment() {
        // HBH, then a fragment at offset 1448 (181 * 8), M clear: the walk stops after
        // it even though what follows looks like more extension headers.
        let mut rest = Vec::new();
        rest.extend_from_slice(&[44, 0, 0x01, 0x04, 0, 0, 0, 0]);
        rest.extend_from_slice(&[60, 0, 0x05, 0xa8, 0, 0, 0, 7]);
        rest.extend_from_slice(&[0xff; 16]);
        let b = packet(0, &rest);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(
            w,
            ExtWalk {
                protocol: IpProtocol::Ipv6Opts,
                offset: 56,
                fragment: Some(FragmentHeader {
                    header_offset: 48,
                    offset: 1448,
                    more: false,
                    ident: 7
                }),
            }
        );
        // A fragment header with nothing after it.
        let b = packet(44, &[17, 0, 0x05, 0xa9, 0, 0, 0, 7]);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(w.protocol, IpProtocol::Udp);
        assert_eq!(w.offset, 48);
        assert_eq!(w.offset, b.len());
        assert!(w.fragment.unwrap().more);
    }

    fn dest_opts_chain(n: usize) -> Vec<u8> {
        let mut rest = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { 6 } else { 60 };
            rest.extend_from_slice(&[next, 0, 0x01, 0x04, 0, 0, 0, 0]);
        }
        rest.extend_from_slice(&TCP);
        packet(60, &rest)
    }

    #[test]
    fn test_ext_chain_max() {
        let b = dest_opts_chain(MAX_EXT_HEADERS);
        let w = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(w.protocol, IpProtocol::Tcp);
        assert_eq!(w.offset, 40 + 8 * MAX_EXT_HEADERS);
        let b = dest_opts_chain(MAX_EXT_HEADERS + 1);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
    }

    #[test]
    fn test_ext_chain_off_the_end() {
        // HBH claims (1 + 1) * 8 = 16 bytes, 8 are there.
        let b = packet(0, &[6, 1, 0x01, 0x04, 0, 0, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
        // Not even the two bytes of next header and length.
        let b = packet(60, &[6]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
        // A fragment header cut short.
        let b = packet(44, &[6, 0, 0, 0, 0, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
        // The chain fits the buffer but not total_len: padding does not count.
        let mut b = packet(60, &[6, 0, 0x01, 0x04, 0, 0, 0, 0]);
        b[4..6].copy_from_slice(&4u16.to_be_bytes());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
    }

    #[test]
    fn test_ext_hbh_not_first() {
        let mut rest = Vec::new();
        rest.extend_from_slice(&[0, 0, 0x01, 0x04, 0, 0, 0, 0]); // DestOpts -> HBH
        rest.extend_from_slice(&[6, 0, 0x01, 0x04, 0, 0, 0, 0]);
        rest.extend_from_slice(&TCP);
        let b = packet(60, &rest);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::ExtHeaderChain));
    }

    #[test]
    fn test_walk_ext_quote() {
        // A truncated quote: the walk reaches TCP, whose header is not all there.
        let mut rest = Vec::new();
        rest.extend_from_slice(&[6, 0, 0x01, 0x04, 0, 0, 0, 0]);
        rest.extend_from_slice(&TCP);
        let b = packet(0, &rest);
        let w = walk_ext(&b[..52], IpProtocol::HopByHop, 40).unwrap();
        assert_eq!((w.protocol, w.offset), (IpProtocol::Tcp, 48));
        // Cut inside the HBH header.
        assert_eq!(
            walk_ext(&b[..44], IpProtocol::HopByHop, 40),
            Err(Error::ExtHeaderChain)
        );
        // Nothing after the fixed header, upper layer straight away.
        let w = walk_ext(&b[..40], IpProtocol::Udp, 40).unwrap();
        assert_eq!((w.protocol, w.offset), (IpProtocol::Udp, 40));
        // A start past the end.
        assert_eq!(
            walk_ext(&b[..40], IpProtocol::Udp, 41),
            Err(Error::Truncated)
        );
        assert_eq!(
            walk_ext(&b[..40], IpProtocol::HopByHop, usize::MAX),
            Err(Error::Truncated)
        );
    }

    /// Calls every getter and every setter that leaves the length-bearing fields alone.
    fn exercise<T: AsRef<[u8]> + AsMut<[u8]>>(mut p: Packet<T>, v: (u8, u32, u128)) {
        let (b, w, a) = v;
        let _ = (
            p.version(),
            p.traffic_class(),
            p.dscp(),
            p.ecn(),
            p.flow_label(),
        );
        let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
        let tl = p.total_len();
        assert_eq!(tl, 40 + usize::from(p.payload_len()));
        assert_eq!(p.payload().len(), tl - 40);
        if let Ok(walk) = p.upper_layer() {
            assert!(walk.offset <= tl);
            assert!(walk.offset >= 40);
        }
        p.set_traffic_class(b);
        p.set_dscp(b);
        p.set_ecn(b);
        p.set_flow_label(w);
        p.set_next_header(IpProtocol::from(b));
        p.set_hop_limit(b);
        p.set_src_addr(Ipv6Addr::from(a));
        p.set_dst_addr(Ipv6Addr::from(a));
        let _ = p.upper_layer();
        let _ = p.payload_mut();
        assert!(p.check_len().is_ok());
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            v in any::<(u8, u32, u128)>(),
        ) {
            let mut data: Vec<u8> = data;
            if let Ok(p) = Packet::new_checked(&mut data[..]) {
                exercise(p, v);
            }
        }

        // Mostly-plausible headers with extension-header-heavy next-header values, so
        // that the Ok path and the walk are taken often.
        #[test]
        fn prop_plausible_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            payload in any::<prop::sample::Index>(),
            next in prop::sample::select(&[0u8, 6, 17, 43, 44, 50, 51, 58, 59, 60, 255][..]),
            v in any::<(u8, u32, u128)>(),
        ) {
            let mut data: Vec<u8> = data;
            if data.len() >= HEADER_LEN {
                data[0] = 0x60 | (data[0] & 0x0f);
                let pl = payload.index(data.len() - HEADER_LEN + 1) as u16;
                data[4..6].copy_from_slice(&pl.to_be_bytes());
                data[6] = next;
                // Bias the chain towards extension headers too.
                for i in (HEADER_LEN..data.len()).step_by(8) {
                    if data[i] & 1 == 0 {
                        data[i] = [0, 43, 44, 51, 60][usize::from(data[i] >> 1) % 5];
                    }
                }
            }
            match Packet::new_checked(&mut data[..]) {
                Ok(p) => exercise(p, v),
                Err(e) => prop_assert_eq!(e, Error::Truncated),
            }
        }

        #[test]
        fn prop_walk_ext_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            first in any::<u8>(),
            start in prop_oneof![0usize..220, any::<usize>()],
        ) {
            if let Ok(w) = walk_ext(&data, IpProtocol::from(first), start) {
                prop_assert!(w.offset <= data.len());
                prop_assert!(w.offset >= start);
                if let Some(f) = w.fragment {
                    prop_assert!(f.header_offset + 8 <= w.offset);
                }
            }
        }

        // Chains made only of extension headers: the walk ends within the bound.
        #[test]
        fn prop_walk_ext_chains(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            start in 0usize..16,
        ) {
            let mut data: Vec<u8> = data;
            for i in (0..data.len()).step_by(8) {
                data[i] = [0, 43, 44, 51, 60][usize::from(data[i]) % 5];
                if i + 1 < data.len() {
                    data[i + 1] &= 0x01;
                }
            }
            let _ = walk_ext(&data, IpProtocol::Ipv6Opts, start);
        }
    }
}
