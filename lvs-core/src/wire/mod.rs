//! Zero-copy views over the headers a layer-4 director reads and rewrites.
//!
//! The shape follows smoltcp's `wire`: a header is a view `Packet<T: AsRef<[u8]>>` over
//! a buffer, made with `new_unchecked` (trusted bytes, e.g. while emitting) or
//! `new_checked` (untrusted bytes). Getters live in `impl<T: AsRef<[u8]>>`, setters in
//! `impl<T: AsRef<[u8]> + AsMut<[u8]>>`.
//!
//! # The contract
//! **Once `check_len()` (or `new_checked`) has returned `Ok`, no accessor and no setter
//! of that view panics**, as long as the length-bearing fields are not changed through
//! setters afterwards (each view names those fields). Untrusted input must go through
//! `new_checked`. Every check returns a typed [`Error`]; nothing here panics on any input,
//! which the proptests and the fuzz targets in `fuzz/` exercise on arbitrary bytes.
//!
//! Unknown protocol numbers and EtherTypes round-trip through `Unknown` variants.
//!
//! [`FrameInfo::parse`] is the single pass a forwarding decision needs: Ethernet (with at
//! most one 802.1Q tag), IPv4 or IPv6 (with a bounded walk of extension headers), and the
//! transport ports, TCP flags, ICMP type and the datagram quoted in an ICMP error.

pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub(crate) mod info;
pub mod ip;
pub mod ipip;
pub mod ipv4;
pub mod ipv6;
pub mod quote;
pub mod tcp;
pub mod udp;

pub use ethernet::{Address as EthernetAddress, EtherType, Frame as EthernetFrame};
pub use icmpv4::Packet as Icmpv4Packet;
pub use icmpv6::Packet as Icmpv6Packet;
pub use info::{Fragment, FrameInfo, IcmpInfo, InnerInfo, IpInfo, L4Info};
pub use ip::{IpProtocol, IpVersion};
pub use ipv4::Packet as Ipv4Packet;
pub use ipv6::Packet as Ipv6Packet;
pub use quote::Quote as IcmpQuote;
pub use tcp::{Flags as TcpFlags, Packet as TcpPacket};
pub use udp::Packet as UdpPacket;

/// Why a buffer is not a valid header of the kind asked for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The buffer ends before the header does, or before the length a header field claims.
    Truncated,
    /// The IP version field is not the one this view reads.
    BadVersion,
    /// A header-length field is below its minimum (IPv4 IHL < 5, TCP data offset < 5).
    BadHeaderLen,
    /// A length field is smaller than the header it covers (IPv4 total length below the
    /// header length, UDP length below 8).
    BadLength,
    /// The IPv6 extension-header chain is longer than the walk allows, or runs off the end.
    ExtHeaderChain,
    /// Not something this parser reads at this point: not IPv4 or IPv6, a second VLAN tag.
    Unsupported,
    /// The IPv4 header checksum does not verify.
    BadChecksum,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated: buffer shorter than the header or its length field",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLen => "header length field below its minimum",
            Error::BadLength => "length field smaller than its header",
            Error::ExtHeaderChain => "IPv6 extension header chain too long or truncated",
            Error::Unsupported => "unsupported protocol or encapsulation",
            Error::BadChecksum => "bad IPv4 header checksum",
        })
    }
}

impl core::error::Error for Error {}

/// The result of a wire check.
pub type Result<T> = core::result::Result<T, Error>;

/// Byte ranges of header fields, as smoltcp's views keep them.
pub(crate) mod field {
    pub type Field = core::ops::Range<usize>;
    pub type Rest = core::ops::RangeFrom<usize>;
}
