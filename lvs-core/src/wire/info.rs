//! [`FrameInfo`]: the single parse a forwarding decision needs.
//!
//! One pass over the headers of a frame, bounded by the header sizes (never the payload):
//! Ethernet with at most one 802.1Q tag, IPv4 (header checksum verified, options skipped)
//! or IPv6 (extension headers walked, at most [`ipv6::MAX_EXT_HEADERS`]), then the ports
//! and flags of TCP, the ports of UDP, the type and code of ICMP with the datagram an
//! error quotes, or the inner version of an IP-in-IP packet.
//!
//! Every offset in a `FrameInfo` returned by `parse` lies inside the frame it was parsed
//! from: the `fwd` functions rely on that (and check it again cheaply, so a `FrameInfo`
//! from another frame gives an error, not a panic).

use core::net::IpAddr;

use super::ethernet::{EtherType, Frame as EthernetFrame};
use super::icmpv4::Packet as Icmpv4Packet;
use super::icmpv6::Packet as Icmpv6Packet;
use super::ip::{IpProtocol, IpVersion};
use super::ipv4::Packet as Ipv4Packet;
use super::ipv6::Packet as Ipv6Packet;
use super::quote::Quote;
use super::tcp::{Flags as TcpFlags, Packet as TcpPacket};
use super::udp::Packet as UdpPacket;
use super::{Error, Result};

/// Where a packet stands in fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fragment {
    /// Not a fragment (an IPv6 atomic fragment, offset 0 without more, counts as whole).
    Whole,
    /// The first fragment: it carries the L4 header, but not the whole datagram.
    First,
    /// A later fragment: no L4 header, so no ports.
    Later,
}

/// The IP layer of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IpInfo {
    /// IPv4 or IPv6.
    pub version: IpVersion,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Bytes from the IP header to the upper-layer header (IPv4 options and IPv6
    /// extension headers included).
    pub header_len: usize,
    /// Bytes of the IP packet (IPv4 total length, IPv6 40 + payload length). The frame
    /// may be longer (Ethernet padding).
    pub total_len: usize,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub protocol: IpProtocol,
    /// Fragmentation state.
    pub fragment: Fragment,
    /// TTL or hop limit.
    pub hop_limit: u8,
    /// IPv4 DF bit; always true for IPv6, which routers never fragment.
    pub dont_fragment: bool,
}

/// The datagram quoted in an ICMP error, as far as the quote shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InnerInfo {
    /// Offset of the quoted IP header in the frame.
    pub offset: usize,
    /// IP version of the quoted datagram.
    pub version: IpVersion,
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// Its header length (IPv6 extension headers included).
    pub header_len: usize,
    /// Its upper-layer protocol.
    pub protocol: IpProtocol,
    /// Source and destination ports, when the quote is TCP or UDP and shows them.
    pub ports: Option<(u16, u16)>,
    /// Bytes of its L4 header present in the quote.
    pub l4_len: usize,
}

/// The ICMP (v4 or v6) layer of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IcmpInfo {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// Whether the type is an error (it quotes a datagram).
    pub is_error: bool,
    /// The quoted datagram, for an error whose quote parses.
    pub inner: Option<InnerInfo>,
}

/// The transport layer of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum L4Info {
    /// No transport header: a later fragment, or a protocol we do not read.
    None,
    /// TCP.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flags.
        flags: TcpFlags,
    },
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMPv4 or ICMPv6.
    Icmp(IcmpInfo),
    /// IP-in-IP (protocol 4 or 41): a tunnelled packet of the given version.
    IpIp(IpVersion),
}

impl L4Info {
    /// Source and destination ports of TCP or UDP.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            L4Info::Tcp {
                src_port, dst_port, ..
            }
            | L4Info::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// The headers of one frame, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameInfo {
    /// Offset of the IP header: 14, 18 with an 802.1Q tag, 0 for a bare IP packet.
    pub l3_offset: usize,
    /// The 802.1Q tag control information, if tagged.
    pub vlan: Option<u16>,
    /// The IP layer.
    pub ip: IpInfo,
    /// The transport layer.
    pub l4: L4Info,
}

impl FrameInfo {
    /// Offset of the upper-layer header in the frame.
    #[inline]
    pub fn l4_offset(&self) -> usize {
        self.l3_offset + self.ip.header_len
    }

    /// Offset just past the IP packet (before any Ethernet padding).
    #[inline]
    pub fn ip_end(&self) -> usize {
        self.l3_offset + self.ip.total_len
    }

    /// The same headers found `by` bytes further into a buffer: every offset (the IP
    /// header's and the quoted datagram's) moves; used when a bare IP packet gains a
    /// link-layer header in front.
    #[must_use]
    pub fn moved_by(mut self, by: usize) -> FrameInfo {
        self.l3_offset += by;
        if let L4Info::Icmp(IcmpInfo {
            inner: Some(ref mut q),
            ..
        }) = self.l4
        {
            q.offset += by;
        }
        self
    }

    /// Parses an Ethernet frame. Not IPv4/IPv6 (ARP, LLDP, a second VLAN tag) is
    /// `Err(Error::Unsupported)`; everything else that does not check is the view's error.
    ///
    /// The common case, an untagged IPv4 TCP or UDP packet without options that is not
    /// a fragment, takes a fast path of fixed-offset reads (the same checks, the header
    /// checksum included); anything else, and anything that does not check, takes the
    /// full parse, which decides the error. Both give the same result.
    #[inline]
    pub fn parse(frame: &[u8]) -> Result<FrameInfo> {
        match fast_v4(frame) {
            Some(f) => Ok(f.info()),
            None => Self::parse_full(frame),
        }
    }

    /// The full parse, without the fast path: every header layout.
    fn parse_full(frame: &[u8]) -> Result<FrameInfo> {
        let eth = EthernetFrame::new_checked(frame)?;
        let version = match eth.ethertype() {
            EtherType::Ipv4 => IpVersion::V4,
            EtherType::Ipv6 => IpVersion::V6,
            _ => return Err(Error::Unsupported),
        };
        Self::parse_at(frame, eth.header_len(), eth.vlan_tci(), version)
    }

    /// Parses a bare IP packet (from a TUN device, or an IP-in-IP payload): the version
    /// comes from the first nibble.
    pub fn parse_ip(packet: &[u8]) -> Result<FrameInfo> {
        let version = match packet.first().map(|b| b >> 4) {
            Some(4) => IpVersion::V4,
            Some(6) => IpVersion::V6,
            Some(_) => return Err(Error::BadVersion),
            None => return Err(Error::Truncated),
        };
        Self::parse_at(packet, 0, None, version)
    }

    #[inline(always)]
    fn parse_at(
        frame: &[u8],
        l3_offset: usize,
        vlan: Option<u16>,
        version: IpVersion,
    ) -> Result<FrameInfo> {
        let l3 = frame.get(l3_offset..).ok_or(Error::Truncated)?;
        let ip = match version {
            IpVersion::V4 => {
                let p = Ipv4Packet::new_checked(l3)?;
                if !p.verify_checksum() {
                    return Err(Error::BadChecksum);
                }
                let fragment = if p.frag_offset() != 0 {
                    Fragment::Later
                } else if p.more_frags() {
                    Fragment::First
                } else {
                    Fragment::Whole
                };
                IpInfo {
                    version,
                    src: IpAddr::V4(p.src_addr()),
                    dst: IpAddr::V4(p.dst_addr()),
                    header_len: p.header_len(),
                    total_len: p.total_len() as usize,
                    protocol: p.next_header(),
                    fragment,
                    hop_limit: p.hop_limit(),
                    dont_fragment: p.dont_frag(),
                }
            }
            IpVersion::V6 => {
                let p = Ipv6Packet::new_checked(l3)?;
                let walk = p.upper_layer()?;
                let fragment = match walk.fragment {
                    Some(f) if f.offset != 0 => Fragment::Later,
                    Some(f) if f.more => Fragment::First,
                    _ => Fragment::Whole,
                };
                IpInfo {
                    version,
                    src: IpAddr::V6(p.src_addr()),
                    dst: IpAddr::V6(p.dst_addr()),
                    header_len: walk.offset,
                    total_len: p.total_len(),
                    protocol: walk.protocol,
                    fragment,
                    hop_limit: p.hop_limit(),
                    dont_fragment: true,
                }
            }
        };
        let l4_offset = l3_offset + ip.header_len;
        let l4_bytes = frame
            .get(l4_offset..l3_offset + ip.total_len)
            .ok_or(Error::Truncated)?;
        let l4 = if ip.fragment == Fragment::Later {
            L4Info::None
        } else {
            parse_l4(l4_bytes, l4_offset, &ip)?
        };
        Ok(FrameInfo {
            l3_offset,
            vlan,
            ip,
            l4,
        })
    }
}

/// The fields the fast path of [`FrameInfo::parse`] reads, checked
/// ([`fast_v4_tuple`]): a handful of scalars, from which the director's established-flow
/// fast path works without building a [`FrameInfo`], and from which the `FrameInfo` of
/// the parse fast path is built in place ([`FastV4::info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FastV4 {
    /// Source address, as in the header.
    pub src: [u8; 4],
    /// Destination address, as in the header.
    pub dst: [u8; 4],
    /// The IP total length (the packet ends at `14 + total_len`, within the frame).
    pub total_len: u16,
    /// Flags and fragment offset: only DF may be set.
    pub flags_frag: u16,
    /// TTL.
    pub hop_limit: u8,
    /// `true` for TCP, `false` for UDP.
    pub tcp: bool,
    /// The TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl FastV4 {
    /// The [`FrameInfo`] the full parse gives for the frame.
    #[inline(always)]
    pub(crate) fn info(self) -> FrameInfo {
        FrameInfo {
            l3_offset: 14,
            vlan: None,
            ip: IpInfo {
                version: IpVersion::V4,
                src: IpAddr::V4(core::net::Ipv4Addr::from(self.src)),
                dst: IpAddr::V4(core::net::Ipv4Addr::from(self.dst)),
                header_len: 20,
                total_len: usize::from(self.total_len),
                protocol: if self.tcp {
                    IpProtocol::Tcp
                } else {
                    IpProtocol::Udp
                },
                fragment: Fragment::Whole,
                hop_limit: self.hop_limit,
                dont_fragment: self.flags_frag & 0x4000 != 0,
            },
            l4: if self.tcp {
                L4Info::Tcp {
                    src_port: self.sport,
                    dst_port: self.dport,
                    flags: TcpFlags(self.tcp_flags),
                }
            } else {
                L4Info::Udp {
                    src_port: self.sport,
                    dst_port: self.dport,
                }
            },
        }
    }
}

/// The fast path of [`FrameInfo::parse`].
#[inline(always)]
fn fast_v4(frame: &[u8]) -> Option<FastV4> {
    fast_v4_tuple(frame)
}

/// The fast path's checks: an untagged Ethernet frame carrying IPv4 with a 20-byte
/// header (checksum verified), not a fragment, with a TCP or UDP header that checks.
/// `None` for anything else, including every error: the full parse then decides it, so
/// the fast path never gives a verdict of its own. When it is `Some`, the full parse
/// gives the same fields ([`FastV4::info`]; a proptest checks it).
#[inline(always)]
pub(crate) fn fast_v4_tuple(frame: &[u8]) -> Option<FastV4> {
    const ETH: usize = 14;
    // Ethernet, IPv4 and 8 bytes of L4: the least a UDP packet needs (a tap device
    // does not pad frames to Ethernet's 60 bytes).
    let f: &[u8; ETH + 28] = frame.first_chunk()?;
    let le32 = |o: usize| u32::from_le_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let be16 = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
    // EtherType IPv4 (untagged), version 4 with IHL 5: bytes 12, 13 and 14 in one word.
    if le32(12) & 0x00ff_ffff != 0x0045_0008 {
        return None;
    }
    let total_len = be16(16);
    let flags_frag = be16(20);
    // Not a fragment (MF and offset clear; DF may be set).
    if flags_frag & 0x3fff != 0 || ETH + usize::from(total_len) > frame.len() {
        return None;
    }
    // The header checksum. Its ones' complement sum is 0xffff exactly when the plain
    // sum of its 16-bit words is a non-zero multiple of 0xffff (2^16 = 1 modulo 0xffff,
    // so a fold does not change the residue). The same holds for the sum of its five
    // 32-bit words, read little-endian: 2^16 = 1 makes a 32-bit word the sum of its
    // halves, and a byte-swapped half is 256 times the half modulo 0xffff, which is
    // prime to 256. The sum is not zero: byte 14 is 0x45.
    let acc: u64 = [14, 18, 22, 26, 30]
        .iter()
        .map(|&o| u64::from(le32(o)))
        .sum();
    if !acc.is_multiple_of(0xffff) {
        return None;
    }
    let (tcp, tcp_flags, l4_ok) = match f[23] {
        // TCP: a data offset of 20 bytes at least, within the packet.
        6 => {
            let t: &[u8; ETH + 40] = frame.first_chunk()?;
            let hl = u16::from(t[ETH + 20 + 12] >> 4) * 4;
            (true, t[ETH + 20 + 13], hl >= 20 && hl + 20 <= total_len)
        }
        // UDP: its length field between 8 and the packet's L4 bytes.
        17 => {
            let ul = be16(ETH + 20 + 4);
            (
                false,
                0,
                ul >= 8 && u32::from(ul) + 20 <= u32::from(total_len),
            )
        }
        _ => return None,
    };
    if !l4_ok {
        return None;
    }
    Some(FastV4 {
        src: [f[26], f[27], f[28], f[29]],
        dst: [f[30], f[31], f[32], f[33]],
        total_len,
        flags_frag,
        hop_limit: f[22],
        tcp,
        tcp_flags,
        sport: be16(34),
        dport: be16(36),
    })
}

#[inline(always)]
fn parse_l4(bytes: &[u8], l4_offset: usize, ip: &IpInfo) -> Result<L4Info> {
    Ok(match (ip.protocol, ip.version) {
        (IpProtocol::Tcp, _) => {
            let t = TcpPacket::new_checked(bytes)?;
            L4Info::Tcp {
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                flags: t.flags(),
            }
        }
        (IpProtocol::Udp, _) => {
            // A first fragment carries the header but not the length it announces.
            let u = if ip.fragment == Fragment::First {
                if bytes.len() < 8 {
                    return Err(Error::Truncated);
                }
                UdpPacket::new_unchecked(bytes)
            } else {
                UdpPacket::new_checked(bytes)?
            };
            L4Info::Udp {
                src_port: u.src_port(),
                dst_port: u.dst_port(),
            }
        }
        (IpProtocol::Icmp, IpVersion::V4) => {
            let m = Icmpv4Packet::new_checked(bytes)?;
            let is_error = m.is_error();
            let inner = if is_error {
                inner_info(m.data(), l4_offset + 8)
            } else {
                None
            };
            L4Info::Icmp(IcmpInfo {
                msg_type: m.msg_type().into(),
                code: m.msg_code(),
                is_error,
                inner,
            })
        }
        (IpProtocol::Icmpv6, IpVersion::V6) => {
            let m = Icmpv6Packet::new_checked(bytes)?;
            let is_error = m.is_error();
            let inner = if is_error {
                inner_info(m.data(), l4_offset + 8)
            } else {
                None
            };
            L4Info::Icmp(IcmpInfo {
                msg_type: m.msg_type().into(),
                code: m.msg_code(),
                is_error,
                inner,
            })
        }
        (IpProtocol::IpIp, _) => L4Info::IpIp(IpVersion::V4),
        (IpProtocol::Ipv6, _) => L4Info::IpIp(IpVersion::V6),
        _ => L4Info::None,
    })
}

fn inner_info(quote: &[u8], offset: usize) -> Option<InnerInfo> {
    let q = Quote::new_checked(quote).ok()?;
    Some(InnerInfo {
        offset,
        version: q.version(),
        src: q.src_addr(),
        dst: q.dst_addr(),
        header_len: q.header_len(),
        protocol: q.protocol(),
        ports: q.ports(),
        l4_len: q.l4().len(),
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::fwd::fixtures::*;
    use core::net::Ipv4Addr;

    #[test]
    fn test_parse_tcp_syn_v4() {
        let i = FrameInfo::parse(NAT_IN_V4_TCP).unwrap();
        assert_eq!(i.l3_offset, 14);
        assert_eq!(i.vlan, None);
        assert_eq!(i.ip.version, IpVersion::V4);
        assert_eq!(i.ip.src, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!(i.ip.dst, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(i.ip.header_len, 20);
        assert_eq!(i.ip.protocol, IpProtocol::Tcp);
        assert_eq!(i.ip.fragment, Fragment::Whole);
        assert!(i.ip.dont_fragment);
        assert_eq!(i.ip.hop_limit, 64);
        assert_eq!(
            i.l4,
            L4Info::Tcp {
                src_port: 40000,
                dst_port: 80,
                flags: TcpFlags::SYN
            }
        );
        assert_eq!(i.l4_offset(), 34);
        assert_eq!(i.ip_end(), NAT_IN_V4_TCP.len());
    }

    #[test]
    fn test_parse_vlan_v6_udp() {
        let i = FrameInfo::parse(NAT_IN_V6_UDP_VLAN).unwrap();
        assert_eq!(i.l3_offset, 18);
        assert_eq!(i.vlan.map(|t| t & 0xfff), Some(42));
        assert_eq!(i.ip.version, IpVersion::V6);
        assert_eq!(
            i.l4,
            L4Info::Udp {
                src_port: 5353,
                dst_port: 53
            }
        );
        assert!(i.ip.dont_fragment);
    }

    #[test]
    fn test_parse_icmp_error_quotes() {
        let i = FrameInfo::parse(ICMP_NAT_OUT_V4).unwrap();
        let L4Info::Icmp(m) = i.l4 else {
            panic!("not ICMP")
        };
        assert_eq!((m.msg_type, m.code, m.is_error), (3, 3, true));
        let q = m.inner.unwrap();
        assert_eq!(q.offset, 14 + 20 + 8);
        assert_eq!(q.protocol, IpProtocol::Udp);
        assert_eq!(q.ports, Some((5353, 5300)));
        assert_eq!(q.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)));
        assert_eq!(q.l4_len, 8);

        let i = FrameInfo::parse(ICMP_FULLNAT_IN_V6).unwrap();
        let L4Info::Icmp(m) = i.l4 else {
            panic!("not ICMPv6")
        };
        assert_eq!((m.msg_type, m.is_error), (2, true));
        assert_eq!(m.inner.unwrap().ports, Some((80, 40000)));
    }

    #[test]
    fn test_parse_ipip_and_bare_ip() {
        let i = FrameInfo::parse(TUN_4IN4_OUT).unwrap();
        assert_eq!(i.l4, L4Info::IpIp(IpVersion::V4));
        let i = FrameInfo::parse(TUN_6IN4_OUT).unwrap();
        assert_eq!(i.l4, L4Info::IpIp(IpVersion::V6));
        let bare = FrameInfo::parse_ip(&TUN_V6[14..]).unwrap();
        assert_eq!(bare.l3_offset, 0);
        assert_eq!(
            bare.l4,
            L4Info::Udp {
                src_port: 5353,
                dst_port: 53
            }
        );
        assert_eq!(FrameInfo::parse_ip(&[]), Err(Error::Truncated));
        assert_eq!(FrameInfo::parse_ip(&[0x50; 40]), Err(Error::BadVersion));
    }

    #[test]
    fn test_bad_input_gets_typed_errors() {
        // ARP is not ours to parse.
        let mut arp = NAT_IN_V4_TCP[..42].to_vec();
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(FrameInfo::parse(&arp), Err(Error::Unsupported));
        // Two 802.1Q tags.
        let mut qinq = std::vec![0u8; 12];
        qinq.extend_from_slice(&[0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x08, 0]);
        qinq.extend_from_slice(&NAT_IN_V4_TCP[14..]);
        assert_eq!(FrameInfo::parse(&qinq), Err(Error::Unsupported));
        // A corrupted IPv4 header checksum.
        let mut bad = NAT_IN_V4_TCP.to_vec();
        bad[24] ^= 0xff;
        assert_eq!(FrameInfo::parse(&bad), Err(Error::BadChecksum));
        // IHL below 5, total length lying beyond the frame, and a cut TCP header.
        let mut f = NAT_IN_V4_TCP.to_vec();
        f[14] = 0x44;
        assert_eq!(FrameInfo::parse(&f), Err(Error::BadHeaderLen));
        assert_eq!(
            FrameInfo::parse(&NAT_IN_V4_TCP[..NAT_IN_V4_TCP.len() - 1]),
            Err(Error::Truncated)
        );
        let mut cut = NAT_IN_V4_TCP[..14 + 20 + 10].to_vec();
        cut[16..18].copy_from_slice(&30u16.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut cut[14..]).fill_checksum();
        assert_eq!(FrameInfo::parse(&cut), Err(Error::Truncated));
        // Ethernet shorter than its header.
        assert_eq!(
            FrameInfo::parse(&NAT_IN_V4_TCP[..13]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn test_first_fragment_of_udp_keeps_ports() {
        // A first fragment announces the whole datagram's UDP length, more than it holds.
        let mut f = NAT_IN_V4_UDP0.to_vec();
        f[20] = 0x20; // MF
        let udp_len_at = 14 + 20 + 4;
        f[udp_len_at..udp_len_at + 2].copy_from_slice(&4000u16.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        let i = FrameInfo::parse(&f).unwrap();
        assert_eq!(i.ip.fragment, Fragment::First);
        assert_eq!(
            i.l4,
            L4Info::Udp {
                src_port: 5353,
                dst_port: 53
            }
        );
        // Not a fragment: the lying length is a truncation.
        f[20] = 0;
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        assert_eq!(FrameInfo::parse(&f), Err(Error::Truncated));
    }

    /// Every IPv4 fixture, the frames the fast path is for and the ones it is not.
    const V4_FIXTURES: [&[u8]; 8] = [
        NAT_IN_V4_TCP,
        NAT_OUT_V4_TCP,
        NAT_IN_V4_UDP0,
        FULLNAT_OUT_V4_TCP,
        DR_V4,
        TUN_V4,
        TUN_4IN4_OUT,
        ICMP_NAT_OUT_V4,
    ];

    #[test]
    fn test_fast_path_taken_for_plain_tcp_and_udp() {
        for f in [NAT_IN_V4_TCP, NAT_OUT_V4_TCP, NAT_IN_V4_UDP0, DR_V4] {
            let fast = fast_v4(f).expect("fast path").info();
            assert_eq!(Ok(fast), FrameInfo::parse_full(f));
        }
        for f in [
            TUN_4IN4_OUT,
            ICMP_NAT_OUT_V4,
            NAT_IN_V6_UDP_VLAN,
            FULLNAT_IN_V6_TCP,
        ] {
            assert!(fast_v4(f).is_none());
        }
    }

    /// Refreshes the IPv4 header checksum of an untagged frame, if it has a header.
    fn refill(f: &mut [u8]) {
        if f.len() >= 34 && f[14] >> 4 == 4 {
            let hl = usize::from(f[14] & 0xf) * 4;
            if hl >= 20 && f.len() >= 14 + hl {
                Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The fast path agrees with the full parse on whatever it accepts, on frames
        /// mutated at random (with the header checksum fixed up or not) and cut short.
        #[test]
        fn prop_fast_path_agrees_with_full_parse(
            which in 0..V4_FIXTURES.len(),
            edits in proptest::collection::vec((0usize..80, proptest::prelude::any::<u8>()), 0..4),
            fix in proptest::prelude::any::<bool>(),
            cut in proptest::option::of(0usize..24),
        ) {
            let mut f = V4_FIXTURES[which].to_vec();
            for (at, b) in edits {
                if let Some(x) = f.get_mut(at) {
                    *x = b;
                }
            }
            if fix {
                refill(&mut f);
            }
            let f = &f[..f.len().saturating_sub(cut.unwrap_or(0))];
            let full = FrameInfo::parse_full(f);
            if let Some(fast) = fast_v4(f) {
                proptest::prop_assert_eq!(Ok(fast.info()), full);
            }
            proptest::prop_assert_eq!(FrameInfo::parse(f), full);
        }
    }

    #[test]
    fn test_ethernet_padding_is_not_payload() {
        let mut f = NAT_IN_V4_UDP0.to_vec();
        let ip_end = f.len();
        f.resize(ip_end + 10, 0xee);
        let i = FrameInfo::parse(&f).unwrap();
        assert_eq!(i.ip_end(), ip_end);
    }
}
