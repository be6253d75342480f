//! ARP and NDP messages: the ones the adapter reads to learn neighbours and the ones it
//! writes (requests for next hops, answers for VIPs and FULLNAT local addresses). Built
//! and parsed with `smoltcp::wire`, straight into the device's transmit buffer.

use core::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Address, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

/// An ARP or NDP message the adapter cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    /// ARP request or reply (`request` tells which).
    Arp {
        request: bool,
        sender_mac: EthernetAddress,
        sender_ip: Ipv4Address,
        target_ip: Ipv4Address,
    },
    /// Neighbour solicitation from `src` (unspecified during DAD).
    Solicit {
        src: Ipv6Addr,
        src_mac: EthernetAddress,
        lladdr: Option<EthernetAddress>,
        target: Ipv6Addr,
    },
    /// Neighbour advertisement.
    Advert {
        target: Ipv6Addr,
        lladdr: Option<EthernetAddress>,
    },
}

fn ethernet(raw: Option<RawHardwareAddress>) -> Option<EthernetAddress> {
    let raw = raw?;
    let b = raw.as_bytes();
    (b.len() == 6).then(|| EthernetAddress::from_bytes(b))
}

/// Reads an ARP frame, or an ICMPv6 neighbour solicitation/advertisement (hop limit 255,
/// valid checksum, as RFC 4861 requires). Anything else is `None`.
pub(crate) fn parse(frame: &[u8]) -> Option<Message> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).ok()?;
            match ArpRepr::parse(&arp).ok()? {
                ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } => Some(Message::Arp {
                    request: operation == ArpOperation::Request,
                    sender_mac: source_hardware_addr,
                    sender_ip: source_protocol_addr,
                    target_ip: target_protocol_addr,
                }),
                _ => None,
            }
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != 255 {
                return None;
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            let repr =
                Icmpv6Repr::parse(&src, &dst, &icmp, &ChecksumCapabilities::default()).ok()?;
            match repr {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr,
                    lladdr,
                }) => Some(Message::Solicit {
                    src,
                    src_mac: eth.src_addr(),
                    lladdr: ethernet(lladdr),
                    target: target_addr,
                }),
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                    target_addr,
                    lladdr,
                    ..
                }) => Some(Message::Advert {
                    target: target_addr,
                    lladdr: ethernet(lladdr),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Length of an Ethernet ARP frame.
pub(crate) const ARP_LEN: usize = 14 + 28;

/// Writes an ARP request or reply into `buf` (at least [`ARP_LEN`] bytes).
pub(crate) fn emit_arp(
    buf: &mut [u8],
    request: bool,
    src_mac: EthernetAddress,
    src_ip: Ipv4Address,
    dst_mac: EthernetAddress,
    dst_ip: Ipv4Address,
) {
    let eth = EthernetRepr {
        src_addr: src_mac,
        dst_addr: if request {
            EthernetAddress::BROADCAST
        } else {
            dst_mac
        },
        ethertype: EthernetProtocol::Arp,
    };
    let mut frame = EthernetFrame::new_unchecked(&mut *buf);
    eth.emit(&mut frame);
    let arp = ArpRepr::EthernetIpv4 {
        operation: if request {
            ArpOperation::Request
        } else {
            ArpOperation::Reply
        },
        source_hardware_addr: src_mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: if request {
            EthernetAddress([0; 6])
        } else {
            dst_mac
        },
        target_protocol_addr: dst_ip,
    };
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
}

/// The solicited-node multicast address of `a` (RFC 4291 2.7.1).
pub(crate) fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464 7).
pub(crate) fn multicast_mac(a: Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Length of a neighbour solicitation or advertisement with one link-layer option.
pub(crate) const NDISC_LEN: usize = 14 + 40 + 32;

/// Writes a neighbour solicitation for `target` (`advert` false) or an advertisement of
/// `target` at `src_mac` to `dst_ip`/`dst_mac` (`advert` true) into `buf` (at least
/// [`NDISC_LEN`] bytes).
pub(crate) fn emit_ndisc(
    buf: &mut [u8],
    advert: bool,
    src_mac: EthernetAddress,
    src_ip: Ipv6Addr,
    dst_mac: EthernetAddress,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
) {
    let (dst_mac, dst_ip) = if advert {
        (dst_mac, dst_ip)
    } else {
        let group = solicited_node(target);
        (multicast_mac(group), group)
    };
    let ndisc = if advert {
        NdiscRepr::NeighborAdvert {
            flags: if dst_ip.is_multicast() {
                NdiscNeighborFlags::OVERRIDE
            } else {
                NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE
            },
            target_addr: target,
            lladdr: Some(src_mac.into()),
        }
    } else {
        NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: Some(src_mac.into()),
        }
    };
    let icmp = Icmpv6Repr::Ndisc(ndisc);
    let eth = EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = EthernetFrame::new_unchecked(&mut *buf);
    eth.emit(&mut frame);
    let ip = Ipv6Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &src_ip,
        &dst_ip,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
}

#[cfg(test)]
mod test {
    use super::*;

    const A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    #[test]
    fn arp_round_trips() {
        let mut buf = [0u8; ARP_LEN];
        let (x, y) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        emit_arp(&mut buf, true, A, x, B, y);
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(
            parse(&buf),
            Some(Message::Arp {
                request: true,
                sender_mac: A,
                sender_ip: x,
                target_ip: y
            })
        );
        emit_arp(&mut buf, false, A, x, B, y);
        assert_eq!(&buf[..6], &B.0);
        assert!(matches!(
            parse(&buf),
            Some(Message::Arp { request: false, .. })
        ));
    }

    #[test]
    fn ndisc_round_trips_and_checks_hop_limit() {
        let mut buf = [0u8; NDISC_LEN];
        let me: Ipv6Addr = "fd00::1".parse().unwrap();
        let t: Ipv6Addr = "fd00::1234:5678".parse().unwrap();
        emit_ndisc(&mut buf, false, A, me, B, me, t);
        assert_eq!(&buf[..6], &[0x33, 0x33, 0xff, 0x34, 0x56, 0x78]);
        assert_eq!(
            parse(&buf),
            Some(Message::Solicit {
                src: me,
                src_mac: A,
                lladdr: Some(A),
                target: t
            })
        );
        emit_ndisc(&mut buf, true, A, t, B, me, t);
        assert_eq!(
            parse(&buf),
            Some(Message::Advert {
                target: t,
                lladdr: Some(A)
            })
        );
        // Hop limit below 255: not from the link, ignored (RFC 4861 7.1).
        buf[14 + 7] = 64;
        assert_eq!(parse(&buf), None);
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0u8; 13]), None);
        let mut buf = [0u8; ARP_LEN];
        emit_arp(
            &mut buf,
            true,
            A,
            Ipv4Address::new(1, 2, 3, 4),
            B,
            Ipv4Address::new(5, 6, 7, 8),
        );
        assert_eq!(parse(&buf[..ARP_LEN - 1]), None);
    }
}
