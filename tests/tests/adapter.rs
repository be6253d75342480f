//! lvs-smoltcp's adapter between in-memory devices: forwarding per method through routes
//! and the neighbour cache, ARP and NDP (for next hops, for VIPs on the client-facing port
//! only, for FULLNAT local addresses), the hold queue, frames for the local stack reaching
//! a real smoltcp `Interface`, and bad input.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::director::{Director, ServiceKey};
use lvs_core::time::Instant as CoreInstant;
use lvs_smoltcp::{Adapter, PortConfig, Route, Storage};
use lvs_tests::director::{Caps, config, dest_spec, director, service_spec};
use lvs_tests::frames::{self, Flow};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    HardwareAddress, Icmpv4Packet, Icmpv6Packet, Icmpv6Repr, IpAddress, IpCidr, IpProtocol,
    Ipv4Packet, Ipv6Packet, NdiscRepr, RawHardwareAddress, TcpPacket,
};

// ---- an in-memory device --------------------------------------------------------------

/// A device whose received frames are queued by the test and whose transmitted frames
/// are kept for it to inspect.
#[derive(Default)]
struct Wire {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    /// No transmit tokens (a full ring).
    busy: bool,
}

struct WireRx(Vec<u8>);
struct WireTx<'a>(&'a mut Vec<Vec<u8>>);

impl smoltcp::phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for Wire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
        if self.busy {
            return None;
        }
        let f = self.rx.pop_front()?;
        Some((WireRx(f), WireTx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
        (!self.busy).then_some(WireTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

// ---- the test topology ----------------------------------------------------------------

/// Port 0 faces the clients (203.0.113.1/24, 2001:db8:f::1/64; the VIPs live there;
/// clients are behind the router .254 / ::fe). Port 1 faces the real servers
/// (10.0.1.1/24, fd00:1::1/64).
const MAC0: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0a, 0]);
const MAC1: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0a, 1]);
const ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0b, 0xfe]);
const RS_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0c, 11]);
const RS2_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0c, 12]);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddress {
    IpAddress::Ipv4(Ipv4Addr::new(a, b, c, d))
}
fn v6(s: &str) -> IpAddress {
    IpAddress::Ipv6(s.parse().unwrap())
}
const ROUTER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
const RS4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const LADDR4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);
fn rs6() -> Ipv6Addr {
    "fd00:1::11".parse().unwrap()
}
fn router6() -> Ipv6Addr {
    "2001:db8:f::fe".parse().unwrap()
}

fn vip4() -> Ipv4Addr {
    match Flow::v4().dst {
        IpAddr::V4(a) => a,
        _ => unreachable!(),
    }
}
fn vip6() -> Ipv6Addr {
    match Flow::v6().dst {
        IpAddr::V6(a) => a,
        _ => unreachable!(),
    }
}

struct Rig {
    a: Adapter<'static, 64>,
    devs: [Wire; 2],
    now: Instant,
}

fn rig_with(rules: &[(&str, &[&str])]) -> Rig {
    rig_laddrs(rules, &[])
}

/// The rig, with FULLNAT local addresses (added before the real servers that need them).
fn rig_laddrs(rules: &[(&str, &[&str])], laddrs: &[IpAddr]) -> Rig {
    let mut d: Director<'static, 64> = director(Caps::default(), config(), CoreInstant::ZERO);
    for l in laddrs {
        d.add_laddr(*l).unwrap();
    }
    for (svc, dests) in rules {
        let spec = service_spec(svc);
        d.add_service(spec, CoreInstant::ZERO).unwrap();
        for dest in *dests {
            d.add_dest(&spec.key, dest_spec(dest, 80), CoreInstant::ZERO)
                .unwrap();
        }
    }
    let mut a = Adapter::new(d, Storage::leak(16, 8, 1536));
    for l in laddrs {
        // Already the director's (adding is idempotent): the adapter records it, to
        // answer ARP/NDP for it.
        a.add_laddr(*l).unwrap();
        a.add_laddr(*l).unwrap();
    }
    let mut p0 = PortConfig::new(MAC0)
        .with_addr(IpCidr::new(v4(203, 0, 113, 1), 24))
        .unwrap()
        .with_addr(IpCidr::new(v6("2001:db8:f::1"), 64))
        .unwrap();
    p0.answer_vips = true;
    let p1 = PortConfig::new(MAC1)
        .with_addr(IpCidr::new(v4(10, 0, 1, 1), 24))
        .unwrap()
        .with_addr(IpCidr::new(v6("fd00:1::1"), 64))
        .unwrap();
    assert_eq!(a.add_port(p0).unwrap(), 0);
    assert_eq!(a.add_port(p1).unwrap(), 1);
    a.add_route(Route {
        prefix: IpCidr::new(v4(0, 0, 0, 0), 0),
        via: IpAddress::Ipv4(ROUTER4),
        port: None,
    })
    .unwrap();
    a.add_route(Route {
        prefix: IpCidr::new(v6("::"), 0),
        via: IpAddress::Ipv6(router6()),
        port: Some(0),
    })
    .unwrap();
    Rig {
        a,
        devs: [Wire::default(), Wire::default()],
        now: Instant::from_millis(1000),
    }
}

fn nat_rig() -> Rig {
    let mut r = rig_with(&[
        ("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11:8080 -m"]),
        ("-t [2001:db8:f::10]:80 -s rr", &["-r [fd00:1::11]:8080 -m"]),
    ]);
    r.a.add_neighbour(IpAddress::Ipv4(RS4), RS_MAC).unwrap();
    r.a.add_neighbour(IpAddress::Ipv4(ROUTER4), ROUTER_MAC)
        .unwrap();
    r.a.add_neighbour(IpAddress::Ipv6(rs6()), RS_MAC).unwrap();
    r.a.add_neighbour(IpAddress::Ipv6(router6()), ROUTER_MAC)
        .unwrap();
    r
}

/// A client frame as the router hands it to port 0.
fn from_router(ip: &[u8]) -> Vec<u8> {
    let ethertype = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
    frames::ethernet_with(ROUTER_MAC.0, MAC0.0, ethertype, ip)
}
/// A real server's frame to port 1.
fn from_rs(ip: &[u8]) -> Vec<u8> {
    let ethertype = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
    frames::ethernet_with(RS_MAC.0, MAC1.0, ethertype, ip)
}

impl Rig {
    /// Runs port `p` with nobody on the local side; returns frames received.
    fn poll(&mut self) -> usize {
        self.a.poll(self.now, &mut self.devs)
    }
    fn tx(&mut self, p: usize) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.devs[p].tx)
    }
    fn advance(&mut self, ms: i64) {
        self.now += smoltcp::time::Duration::from_millis(ms as u64);
    }
}

fn eth(f: &[u8]) -> EthernetFrame<&[u8]> {
    EthernetFrame::new_checked(f).unwrap()
}

fn arp_of(f: &[u8]) -> ArpRepr {
    let e = eth(f);
    assert_eq!(e.ethertype(), EthernetProtocol::Arp);
    ArpRepr::parse(&ArpPacket::new_checked(e.payload()).unwrap()).unwrap()
}

fn arp_frame(
    op: ArpOperation,
    smac: EthernetAddress,
    sip: Ipv4Addr,
    dmac: EthernetAddress,
    tip: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: smac,
        source_protocol_addr: sip,
        target_hardware_addr: if op == ArpOperation::Request {
            EthernetAddress([0; 6])
        } else {
            dmac
        },
        target_protocol_addr: tip,
    };
    let mut arp = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut arp[..]));
    let dst = if op == ArpOperation::Request {
        EthernetAddress::BROADCAST
    } else {
        dmac
    };
    frames::ethernet_with(smac.0, dst.0, 0x0806, &arp)
}

fn ndisc_frame(smac: EthernetAddress, src: Ipv6Addr, dst: Ipv6Addr, repr: NdiscRepr) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(repr);
    let mut body = vec![0u8; icmp.buffer_len()];
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut body[..]),
        &smoltcp::phy::ChecksumCapabilities::default(),
    );
    let mut ip = frames::ip_packet(IpAddr::V6(src), IpAddr::V6(dst), 58, &body);
    ip[7] = 255; // hop limit: from the link
    let o = dst.octets();
    let dmac = if dst.is_multicast() {
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        MAC0.0
    };
    frames::ethernet_with(smac.0, dmac, 0x86dd, &ip)
}

fn ndisc_of(f: &[u8]) -> NdiscRepr<'static> {
    let e = eth(f);
    assert_eq!(e.ethertype(), EthernetProtocol::Ipv6);
    let ip = Ipv6Packet::new_checked(e.payload()).unwrap();
    assert_eq!(ip.hop_limit(), 255);
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload().to_vec().leak();
    let icmp = Icmpv6Packet::new_checked(&payload[..]).unwrap();
    match Icmpv6Repr::parse(
        &s,
        &d,
        &icmp,
        &smoltcp::phy::ChecksumCapabilities::default(),
    )
    .unwrap()
    {
        Icmpv6Repr::Ndisc(n) => n,
        other => panic!("not NDP: {other:?}"),
    }
}

// ---- forwarding -----------------------------------------------------------------------

#[test]
fn nat_v4_both_directions_through_route_and_neighbours() {
    let mut r = nat_rig();
    let flow = Flow::v4();
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&flow, 0x02, b"")));
    assert_eq!(r.poll(), 1);
    let out = r.tx(1);
    assert_eq!(out.len(), 1, "SYN forwarded out of the server port");
    let e = eth(&out[0]);
    assert_eq!(e.src_addr(), MAC1);
    assert_eq!(e.dst_addr(), RS_MAC);
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert_eq!(ip.dst_addr(), RS4);
    assert!(ip.verify_checksum());
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(tcp.dst_port(), 8080);
    assert!(tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));

    // The SYN-ACK from the real server leaves by port 0 towards the default gateway.
    let reply = Flow {
        src: IpAddr::V4(RS4),
        sport: 8080,
        ..flow.reversed()
    };
    r.devs[1]
        .rx
        .push_back(from_rs(&frames::tcp_ip(&reply, 0x12, b"")));
    assert_eq!(r.poll(), 1);
    let out = r.tx(0);
    assert_eq!(out.len(), 1);
    let e = eth(&out[0]);
    assert_eq!((e.src_addr(), e.dst_addr()), (MAC0, ROUTER_MAC));
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert_eq!(ip.src_addr(), vip4());
    assert_eq!(TcpPacket::new_checked(ip.payload()).unwrap().src_port(), 80);
    assert_eq!(r.a.stats().forwarded, 2);
    r.a.director.check_invariants().unwrap();
}

#[test]
fn nat_v6_both_directions() {
    let mut r = nat_rig();
    let flow = Flow::v6();
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&flow, 0x02, b"")));
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1);
    let e = eth(&out[0]);
    assert_eq!((e.src_addr(), e.dst_addr()), (MAC1, RS_MAC));
    assert_eq!(
        Ipv6Packet::new_checked(e.payload()).unwrap().dst_addr(),
        rs6()
    );
    let reply = Flow {
        src: IpAddr::V6(rs6()),
        sport: 8080,
        ..flow.reversed()
    };
    r.devs[1]
        .rx
        .push_back(from_rs(&frames::tcp_ip(&reply, 0x12, b"")));
    r.poll();
    let out = r.tx(0);
    assert_eq!(out.len(), 1);
    assert_eq!(eth(&out[0]).dst_addr(), ROUTER_MAC);
}

#[test]
fn dr_changes_only_the_destination_mac() {
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11 -g"])]);
    r.a.add_neighbour(IpAddress::Ipv4(RS4), RS_MAC).unwrap();
    let input = from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"hello"));
    r.devs[0].rx.push_back(input.clone());
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &RS_MAC.0);
    assert_eq!(&out[0][6..12], &MAC1.0);
    assert_eq!(&out[0][12..], &input[12..], "IP packet untouched");
}

#[test]
fn tun_encapsulates_in_the_headroom() {
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11 -i"])]);
    r.a.add_neighbour(IpAddress::Ipv4(RS4), RS_MAC).unwrap();
    let inner = frames::tcp_ip(&Flow::v4(), 0x02, b"");
    r.devs[0].rx.push_back(from_router(&inner));
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1, "drops: {:?}", r.a.director.drops());
    let e = eth(&out[0]);
    assert_eq!(e.dst_addr(), RS_MAC);
    let outer = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert_eq!(outer.next_header(), IpProtocol::Unknown(4));
    assert_eq!(outer.dst_addr(), RS4);
    assert_eq!(outer.payload(), &inner[..]);
}

#[test]
fn unresolved_next_hop_is_asked_and_held_frames_follow_the_answer() {
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11:8080 -m"])]);
    for sport in [1000, 1001] {
        let flow = Flow {
            sport,
            ..Flow::v4()
        };
        r.devs[0]
            .rx
            .push_back(from_router(&frames::tcp_ip(&flow, 0x02, b"")));
    }
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1, "one ARP request for two held frames");
    match arp_of(&out[0]) {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } => {
            assert_eq!(operation, ArpOperation::Request);
            assert_eq!(source_hardware_addr, MAC1);
            assert_eq!(
                source_protocol_addr,
                Ipv4Addr::new(10, 0, 1, 1),
                "source on the RS subnet"
            );
            assert_eq!(target_protocol_addr, RS4);
        }
        _ => unreachable!(),
    }
    assert_eq!(r.a.stats().held, 2);
    r.devs[1].rx.push_back(arp_frame(
        ArpOperation::Reply,
        RS_MAC,
        RS4,
        MAC1,
        Ipv4Addr::new(10, 0, 1, 1),
    ));
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 2, "both held frames sent");
    for f in &out {
        assert_eq!(eth(f).dst_addr(), RS_MAC);
        assert_eq!(
            Ipv4Packet::new_checked(eth(f).payload())
                .unwrap()
                .dst_addr(),
            RS4
        );
    }
    // Now known: the next frame goes straight out.
    r.devs[0].rx.push_back(from_router(&frames::tcp_ip(
        &Flow {
            sport: 1002,
            ..Flow::v4()
        },
        0x02,
        b"",
    )));
    r.poll();
    assert_eq!(r.tx(1).len(), 1);
    assert!(
        r.a.neighbours()
            .any(|n| n.ip() == IpAddress::Ipv4(RS4) && n.mac() == RS_MAC)
    );
}

#[test]
fn silent_next_hop_is_retried_then_its_frames_dropped() {
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11:8080 -m"])]);
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    r.poll();
    assert_eq!(r.tx(1).len(), 1);
    let mut requests = 1;
    for _ in 0..6 {
        r.advance(1000);
        let now = r.now;
        r.a.maintain(now, &mut r.devs);
        requests += r.tx(1).len();
    }
    assert_eq!(requests, 3, "asked three times");
    assert_eq!(r.a.stats().unresolved, 1);
    assert!(r.a.neighbours().all(|n| n.ip() != IpAddress::Ipv4(RS4)));
}

#[test]
fn stale_neighbour_keeps_forwarding_while_it_is_reconfirmed() {
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11:8080 -m"])]);
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    r.poll();
    r.tx(1);
    r.devs[1].rx.push_back(arp_frame(
        ArpOperation::Reply,
        RS_MAC,
        RS4,
        MAC1,
        Ipv4Addr::new(10, 0, 1, 1),
    ));
    r.poll();
    assert_eq!(r.tx(1).len(), 1);
    r.advance(lvs_smoltcp::neigh::REACHABLE_MS + 1);
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x10, b"x")));
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 2, "the frame, and a re-confirmation request");
    assert_eq!(eth(&out[0]).dst_addr(), RS_MAC);
    assert_eq!(eth(&out[1]).ethertype(), EthernetProtocol::Arp);
}

#[test]
fn ndp_resolves_ipv6_next_hops() {
    let mut r = rig_with(&[("-t [2001:db8:f::10]:80 -s rr", &["-r [fd00:1::11]:8080 -m"])]);
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v6(), 0x02, b"")));
    r.a.add_neighbour(IpAddress::Ipv6(router6()), ROUTER_MAC)
        .unwrap();
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1);
    let o = rs6().octets();
    assert_eq!(
        &out[0][..6],
        &[0x33, 0x33, 0xff, o[13], o[14], o[15]],
        "solicited-node group"
    );
    match ndisc_of(&out[0]) {
        NdiscRepr::NeighborSolicit {
            target_addr,
            lladdr,
        } => {
            assert_eq!(target_addr, rs6());
            assert_eq!(lladdr, Some(RawHardwareAddress::from(MAC1)));
        }
        other => panic!("{other:?}"),
    }
    let na = ndisc_frame(
        RS_MAC,
        rs6(),
        "fd00:1::1".parse().unwrap(),
        NdiscRepr::NeighborAdvert {
            flags: smoltcp::wire::NdiscNeighborFlags::SOLICITED,
            target_addr: rs6(),
            lladdr: Some(RS_MAC.into()),
        },
    );
    let mut na = na;
    na[..6].copy_from_slice(&MAC1.0);
    r.devs[1].rx.push_back(na);
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1, "held frame released");
    assert_eq!(eth(&out[0]).dst_addr(), RS_MAC);
}

// ---- answering for VIPs and local addresses -------------------------------------------

#[test]
fn arp_for_a_vip_is_answered_on_the_client_port_only() {
    let mut r = nat_rig();
    let ask = |mac| {
        arp_frame(
            ArpOperation::Request,
            mac,
            ROUTER4,
            EthernetAddress([0; 6]),
            vip4(),
        )
    };
    r.devs[0].rx.push_back(ask(ROUTER_MAC));
    r.poll();
    let out = r.tx(0);
    assert_eq!(out.len(), 1);
    match arp_of(&out[0]) {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            ..
        } => {
            assert_eq!(operation, ArpOperation::Reply);
            assert_eq!(source_hardware_addr, MAC0);
            assert_eq!(source_protocol_addr, vip4());
            assert_eq!(target_hardware_addr, ROUTER_MAC);
        }
        _ => unreachable!(),
    }
    // The same question on the server port (where DR real servers hold the VIP) is not
    // answered.
    r.devs[1].rx.push_back(ask(RS2_MAC));
    r.poll();
    assert!(r.tx(1).is_empty());
    assert!(r.tx(0).is_empty());
    // Nor is an address the director does not have.
    r.devs[0].rx.push_back(arp_frame(
        ArpOperation::Request,
        ROUTER_MAC,
        ROUTER4,
        EthernetAddress([0; 6]),
        Ipv4Addr::new(203, 0, 113, 77),
    ));
    r.poll();
    assert!(r.tx(0).is_empty());
    assert_eq!(r.a.stats().answers, 1);
}

#[test]
fn neighbour_solicitation_for_a_v6_vip_is_advertised() {
    let mut r = nat_rig();
    let ns = ndisc_frame(
        ROUTER_MAC,
        router6(),
        lvs_smoltcp_solicited(vip6()),
        NdiscRepr::NeighborSolicit {
            target_addr: vip6(),
            lladdr: Some(ROUTER_MAC.into()),
        },
    );
    r.devs[0].rx.push_back(ns);
    r.poll();
    let out = r.tx(0);
    assert_eq!(out.len(), 1);
    assert_eq!(eth(&out[0]).dst_addr(), ROUTER_MAC);
    match ndisc_of(&out[0]) {
        NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        } => {
            assert_eq!(target_addr, vip6());
            assert_eq!(lladdr, Some(RawHardwareAddress::from(MAC0)));
            assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::SOLICITED));
        }
        other => panic!("{other:?}"),
    }
}

fn lvs_smoltcp_solicited(a: Ipv6Addr) -> Ipv6Addr {
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

#[test]
fn fullnat_local_address_is_answered_where_its_subnet_is() {
    let mut r = rig_laddrs(
        &[("-t 203.0.113.10:80 -s rr", &["-r 10.0.1.11:8080 -b"])],
        &[IpAddr::V4(LADDR4)],
    );
    r.a.add_neighbour(IpAddress::Ipv4(RS4), RS_MAC).unwrap();
    r.a.add_neighbour(IpAddress::Ipv4(ROUTER4), ROUTER_MAC)
        .unwrap();
    r.devs[1].rx.push_back(arp_frame(
        ArpOperation::Request,
        RS_MAC,
        RS4,
        EthernetAddress([0; 6]),
        LADDR4,
    ));
    r.devs[0].rx.push_back(arp_frame(
        ArpOperation::Request,
        ROUTER_MAC,
        ROUTER4,
        EthernetAddress([0; 6]),
        LADDR4,
    ));
    r.poll();
    assert_eq!(r.tx(0).len(), 0, "not on the client port");
    let out = r.tx(1);
    assert_eq!(out.len(), 1);
    assert!(
        matches!(arp_of(&out[0]), ArpRepr::EthernetIpv4 { operation: ArpOperation::Reply, source_protocol_addr, .. } if source_protocol_addr == LADDR4)
    );
    // And the real server sees the local address as the client.
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    r.poll();
    let out = r.tx(1);
    assert_eq!(out.len(), 1);
    let ip = Ipv4Packet::new_checked(eth(&out[0]).payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (LADDR4, RS4));
}

// ---- the local stack ------------------------------------------------------------------

#[test]
fn own_addresses_reach_a_smoltcp_interface_which_answers() {
    let mut r = nat_rig();
    let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(MAC0));
    cfg.random_seed = 7;
    let mut iface = {
        let mut dev = r.a.device(&mut r.devs, 0);
        Interface::new(cfg, &mut dev, r.now)
    };
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(v4(203, 0, 113, 1), 24)).unwrap();
    });
    let mut sockets = SocketSet::new(vec![]);
    // ARP for the port's own address, and a ping to it, mixed with a forwarded SYN.
    r.devs[0].rx.push_back(arp_frame(
        ArpOperation::Request,
        ROUTER_MAC,
        ROUTER4,
        EthernetAddress([0; 6]),
        Ipv4Addr::new(203, 0, 113, 1),
    ));
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    let echo = {
        let mut icmp = vec![8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'];
        let sum = lvs_core::checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        frames::ip_packet(
            IpAddr::V4(ROUTER4),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            1,
            &icmp,
        )
    };
    r.devs[0].rx.push_back(from_router(&echo));
    let now = r.now;
    iface.poll(now, &mut r.a.device(&mut r.devs, 0), &mut sockets);
    assert_eq!(r.tx(1).len(), 1, "the SYN was forwarded on the way");
    let out = r.tx(0);
    let arp_reply = out
        .iter()
        .find(|f| eth(f).ethertype() == EthernetProtocol::Arp)
        .expect("smoltcp answered ARP");
    assert!(matches!(
        arp_of(arp_reply),
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            ..
        }
    ));
    let pong = out
        .iter()
        .find(|f| eth(f).ethertype() == EthernetProtocol::Ipv4)
        .expect("smoltcp answered the ping");
    let ip = Ipv4Packet::new_checked(eth(pong).payload()).unwrap();
    assert_eq!(ip.dst_addr(), ROUTER4);
    assert_eq!(
        Icmpv4Packet::new_checked(ip.payload()).unwrap().msg_type(),
        smoltcp::wire::Icmpv4Message::EchoReply
    );
    assert_eq!(r.a.stats().local, 2);
}

#[test]
fn burst_bounds_the_work_of_one_receive() {
    let mut r = nat_rig();
    r.a.burst = 10;
    for sport in 0..25u16 {
        let flow = Flow {
            sport: 2000 + sport,
            ..Flow::v4()
        };
        r.devs[0]
            .rx
            .push_back(from_router(&frames::tcp_ip(&flow, 0x02, b"")));
    }
    let now = r.now;
    assert!(r.a.device(&mut r.devs, 0).receive(now).is_none());
    assert_eq!(r.devs[0].rx.len(), 15);
    assert_eq!(r.tx(1).len(), 10);
    assert_eq!(r.poll(), 10);
    assert_eq!(r.poll(), 5);
}

// ---- bad input and edge cases ---------------------------------------------------------

#[test]
fn frames_for_other_macs_and_runts_are_counted_not_processed() {
    let mut r = nat_rig();
    let mut f = from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b""));
    f[..6].copy_from_slice(&RS2_MAC.0);
    r.devs[0].rx.push_back(f);
    r.devs[0].rx.push_back(vec![0xff; 7]);
    r.devs[0].rx.push_back(vec![0u8; 5000]); // larger than the scratch buffer
    r.poll();
    assert!(r.tx(1).is_empty() && r.tx(0).is_empty());
    let s = r.a.stats();
    assert_eq!((s.rx, s.not_ours, s.malformed), (3, 1, 2));
    assert_eq!(r.a.director.conns_v4().len(), 0);
}

#[test]
fn busy_device_and_missing_route_are_counted() {
    let mut r = nat_rig();
    r.devs[1].busy = true;
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    r.poll();
    assert_eq!(r.a.stats().tx_busy, 1);
    // A real server off every subnet and route: nowhere to send.
    let mut r = rig_with(&[("-t 203.0.113.10:80 -s rr", &["-r 192.0.2.99:80 -m"])]);
    r.a = {
        // Same director, without the default routes.
        let Rig { a, .. } = r;
        let mut b = Adapter::new(a.director, Storage::leak(4, 4, 1536));
        b.add_port(
            PortConfig::new(MAC0)
                .with_addr(IpCidr::new(v4(203, 0, 113, 1), 24))
                .unwrap(),
        )
        .unwrap();
        b
    };
    r.devs = [Wire::default(), Wire::default()];
    r.devs[0]
        .rx
        .push_back(from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b"")));
    r.poll();
    assert_eq!(r.a.stats().no_route, 1);
}

#[test]
fn control_errors_are_clear() {
    let mut r = nat_rig();
    let err =
        r.a.add_route(Route {
            prefix: IpCidr::new(v4(0, 0, 0, 0), 0),
            via: v4(192, 0, 2, 1),
            port: None,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no such port, or the gateway is on no port's subnet"
    );
    for _ in 0..2 {
        let _ = r.a.add_port(PortConfig::new(MAC1));
    }
    assert_eq!(
        r.a.add_port(PortConfig::new(MAC1)),
        Err(lvs_smoltcp::Error::TooManyPorts)
    );
    let mut small = Adapter::new(
        director(Caps::default(), config(), CoreInstant::ZERO),
        Storage::leak(4, 4, 600),
    );
    assert_eq!(
        small.add_port(PortConfig::new(MAC0)),
        Err(lvs_smoltcp::Error::ScratchTooSmall)
    );
    let _ = ServiceKey::FwMark {
        mark: 1,
        family: lvs_core::wire::IpVersion::V4,
    };
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any frames, in any order, on either port: counted, never a panic, and the
        /// director's table agrees with its counters.
        #[test]
        fn arbitrary_frames_never_break_the_adapter(
            frames in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200), 0u8..4), 1..40)
        ) {
            let mut r = nat_rig();
            let mut n = 0u64;
            for (port, mut f, kind) in frames {
                // Aim some at us, some at ARP/IPv4/IPv6 parsing.
                if f.len() >= 14 {
                    let mac = if port { MAC1 } else { MAC0 };
                    if kind > 0 { f[..6].copy_from_slice(&mac.0); }
                    let et: [u8; 2] = match kind { 1 => [8, 6], 2 => [8, 0], 3 => [0x86, 0xdd], _ => [f[12], f[13]] };
                    f[12..14].copy_from_slice(&et);
                }
                r.devs[port as usize].rx.push_back(f);
                n += 1;
            }
            r.poll();
            r.advance(5000);
            let now = r.now;
            r.a.maintain(now, &mut r.devs);
            prop_assert_eq!(r.a.stats().rx, n);
            prop_assert!(r.a.director.check_invariants().is_ok());
        }
    }
}

// ---- composing with smoltcp's device decorators ---------------------------------------

/// A wire the test keeps a handle to, so it stays reachable under decorators that do not
/// lend their inner device (`FaultInjector`).
#[derive(Clone, Default)]
struct SharedWire(std::rc::Rc<std::cell::RefCell<Wire>>);
struct SharedTx(std::rc::Rc<std::cell::RefCell<Wire>>);

impl smoltcp::phy::TxToken for SharedTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.borrow_mut().tx.push(buf);
        r
    }
}

impl Device for SharedWire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = SharedTx;
    fn receive(&mut self, _: Instant) -> Option<(WireRx, SharedTx)> {
        let f = self.0.borrow_mut().rx.pop_front()?;
        Some((WireRx(f), SharedTx(self.0.clone())))
    }
    fn transmit(&mut self, _: Instant) -> Option<SharedTx> {
        Some(SharedTx(self.0.clone()))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        self.0.borrow().capabilities()
    }
}

/// A pcap sink the test can read back.
#[derive(Clone, Default)]
struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn composes_with_pcap_writer_tracer_and_fault_injector() {
    use smoltcp::phy::{FaultInjector, PcapMode, PcapWriter, Tracer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TRACED: AtomicUsize = AtomicUsize::new(0);

    let Rig { mut a, now, .. } = nat_rig();
    let wires = [SharedWire::default(), SharedWire::default()];
    let pcap = [SharedBuf::default(), SharedBuf::default()];
    let wrap = |d: SharedWire, sink: SharedBuf| {
        let traced = Tracer::new(d, |_, _| {
            TRACED.fetch_add(1, Ordering::Relaxed);
        });
        // The injector with no faults set passes everything through.
        PcapWriter::new(FaultInjector::new(traced, 7), sink, PcapMode::Both)
    };
    let mut devs = [
        wrap(wires[0].clone(), pcap[0].clone()),
        wrap(wires[1].clone(), pcap[1].clone()),
    ];
    let syn = from_router(&frames::tcp_ip(&Flow::v4(), 0x02, b""));
    wires[0].0.borrow_mut().rx.push_back(syn.clone());
    assert_eq!(a.poll(now, &mut devs), 1);
    let out = std::mem::take(&mut wires[1].0.borrow_mut().tx);
    assert_eq!(out.len(), 1, "forwarded through three decorators");
    assert_eq!(eth(&out[0]).dst_addr(), RS_MAC);
    assert_eq!(
        TRACED.load(Ordering::Relaxed),
        2,
        "the tracer saw the frame in and out"
    );
    // The pcap writer recorded both: a 24-byte file header, then two records of a
    // 16-byte header and the frame.
    let frame_len = out[0].len();
    assert_eq!(
        pcap[0].0.borrow().len(),
        24 + 16 + frame_len,
        "port 0 saw the SYN in"
    );
    assert_eq!(
        pcap[1].0.borrow().len(),
        24 + 16 + frame_len,
        "port 1 saw it out"
    );
    // The injector told to drop everything received: the frame never reaches the
    // adapter, and nothing breaks.
    devs[0].get_mut().set_drop_chance(100);
    wires[0].0.borrow_mut().rx.push_back(syn);
    assert_eq!(a.poll(now, &mut devs), 0);
    assert_eq!(a.stats().rx, 1);
    assert!(wires[1].0.borrow().tx.is_empty());
}
