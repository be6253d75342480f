//! The firmware on a host, over a queue device: the same `Firmware` the boards run, with
//! the default rules and storage from `storage!`.

extern crate std;
use std::collections::VecDeque;
use std::string::String;
use std::vec::Vec;

use core::net::Ipv4Addr;

use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket,
};

use crate::{Board, Firmware, RULES, STATS_PORT};

const FW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

#[derive(Default)]
struct Queue {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl smoltcp::phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = std::vec![0u8; len];
        let r = f(&mut b);
        self.0.push(b);
        r
    }
}

impl Device for Queue {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((Rx(f), Tx(&mut self.tx)))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

fn eth(dst: EthernetAddress, ty: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let mut f = std::vec![0u8; 14 + payload.len()];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    EthernetRepr {
        src_addr: CLIENT_MAC,
        dst_addr: dst,
        ethertype: ty,
    }
    .emit(&mut e);
    e.payload_mut().copy_from_slice(payload);
    f
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: CLIENT_MAC,
        source_protocol_addr: CLIENT,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut b = std::vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    eth(EthernetAddress::BROADCAST, EthernetProtocol::Arp, &b)
}

/// An IPv4 packet from the client with a transport payload already built (checksum
/// filled by `fill`).
fn ipv4(dst: Ipv4Addr, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
    ipv4_from(CLIENT, dst, proto, l4)
}

fn ipv4_from(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: l4.len(),
        hop_limit: 64,
    };
    let mut b = std::vec![0u8; 20 + l4.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    repr.emit(&mut p, &smoltcp::phy::ChecksumCapabilities::default());
    p.payload_mut().copy_from_slice(l4);
    b
}

fn udp(dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_from(CLIENT, dst, dport, payload)
}

fn udp_from(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut l4 = std::vec![0u8; 8 + payload.len()];
    let mut u = UdpPacket::new_unchecked(&mut l4[..]);
    u.set_src_port(40000);
    u.set_dst_port(dport);
    u.set_len((8 + payload.len()) as u16);
    u.payload_mut().copy_from_slice(payload);
    u.fill_checksum(&src.into(), &dst.into());
    ipv4_from(src, dst, IpProtocol::Udp, &l4)
}

fn tcp_syn(dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut l4 = std::vec![0u8; 20];
    let mut t = TcpPacket::new_unchecked(&mut l4[..]);
    t.set_src_port(40001);
    t.set_dst_port(dport);
    t.set_seq_number(smoltcp::wire::TcpSeqNumber(1000));
    t.set_header_len(20);
    t.set_syn(true);
    t.set_window_len(64240);
    t.fill_checksum(&CLIENT.into(), &dst.into());
    ipv4(dst, IpProtocol::Tcp, &l4)
}

/// Each caller expands `storage!` itself: the statics are per expansion, once each.
fn boot(st: crate::Storage, devs: &mut [Queue; 1]) -> Firmware {
    let board = Board {
        name: "host-test",
        mac: FW_MAC,
        seed: 7,
    };
    Firmware::new(st, board, &RULES, devs, Instant::ZERO).expect("firmware starts")
}

fn run(fw: &mut Firmware, devs: &mut [Queue; 1], ms: i64) {
    for t in 0..5 {
        fw.poll(Instant::from_millis(ms + t), devs, &mut |w, d| {
            writeln!(w, "nic_host {}", d.len())
        });
    }
}

fn sent(devs: &mut [Queue; 1]) -> Vec<Vec<u8>> {
    core::mem::take(&mut devs[0].tx)
}

#[test]
fn test_answers_arp_for_its_address_and_its_vips() {
    let mut devs = [Queue::default()];
    let mut fw = boot(crate::storage!(conns_v4 = 64, conns_v6 = 4), &mut devs);
    for target in [DIRECTOR, Ipv4Addr::new(192, 0, 2, 10)] {
        devs[0].rx.push_back(arp_request(target));
        run(&mut fw, &mut devs, 10);
        let out = sent(&mut devs);
        let replies: Vec<_> = out
            .iter()
            .filter_map(|f| {
                let e = EthernetFrame::new_checked(&f[..]).ok()?;
                let a = ArpRepr::parse(&ArpPacket::new_checked(e.payload()).ok()?).ok()?;
                match a {
                    ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr,
                        source_protocol_addr,
                        ..
                    } => Some((source_hardware_addr, source_protocol_addr)),
                    _ => None,
                }
            })
            .collect();
        assert_eq!(replies, [(EthernetAddress(FW_MAC), target)], "for {target}");
    }
}

/// The payloads of UDP frames sent from `port`.
fn udp_replies(out: &[Vec<u8>], port: u16) -> Vec<String> {
    out.iter()
        .filter_map(|f| {
            let e = EthernetFrame::new_checked(&f[..]).ok()?;
            let ip = Ipv4Packet::new_checked(e.payload()).ok()?;
            let u = UdpPacket::new_checked(ip.payload()).ok()?;
            (u.src_port() == port).then(|| String::from_utf8_lossy(u.payload()).into())
        })
        .collect()
}

#[test]
fn test_control_port_changes_rules_for_allowed_senders_only() {
    let mut devs = [Queue::default()];
    let mut fw = boot(crate::storage!(conns_v4 = 64, conns_v6 = 4), &mut devs);
    devs[0].rx.push_back(arp_request(DIRECTOR));
    run(&mut fw, &mut devs, 10);
    sent(&mut devs);
    let cmds = b"-A -t 192.0.2.30:80 -s rr\n-a -t 192.0.2.30:80 -r 198.51.100.11:8080 -m -w 2\n\
                 -a -t 192.0.2.99:80 -r 198.51.100.11\n-A -t 192.0.2.30:80 -s mh\n";
    let fw_mac = EthernetAddress(FW_MAC);
    devs[0].rx.push_back(eth(
        fw_mac,
        EthernetProtocol::Ipv4,
        &udp(DIRECTOR, 9998, cmds),
    ));
    run(&mut fw, &mut devs, 20);
    let replies = udp_replies(&sent(&mut devs), 9998);
    assert_eq!(
        replies,
        [
            "ok\nok\nerror: Service not defined\nerror: scheduler needs storage this firmware lacks\n"
        ]
    );
    let key = lvs_core::director::ServiceKey::Addr {
        proto: lvs_core::conn::table::Proto::Tcp,
        addr: Ipv4Addr::new(192, 0, 2, 30).into(),
        port: 80,
    };
    let svc = fw.adapter.director.service(&key).expect("added");
    assert_eq!(svc.members().len(), 1);
    let (rs, _) = fw.adapter.director.dest(svc.members()[0]).unwrap();
    assert_eq!(
        (rs.port, rs.weight, rs.method),
        (8080, 2, lvs_core::service::Method::Masq)
    );

    // From the real-server subnet: not heard, not answered, counted.
    let outsider = Ipv4Addr::new(198, 51, 100, 99);
    devs[0].rx.push_back(eth(
        fw_mac,
        EthernetProtocol::Ipv4,
        &udp_from(outsider, Ipv4Addr::new(198, 51, 100, 1), 9998, b"-C\n"),
    ));
    run(&mut fw, &mut devs, 30);
    assert!(udp_replies(&sent(&mut devs), 9998).is_empty());
    assert!(
        fw.adapter.director.service(&key).is_some(),
        "-C was ignored"
    );
    devs[0].rx.push_back(eth(
        fw_mac,
        EthernetProtocol::Ipv4,
        &udp(DIRECTOR, STATS_PORT, b"s"),
    ));
    run(&mut fw, &mut devs, 40);
    let stats = udp_replies(&sent(&mut devs), STATS_PORT);
    assert!(
        stats[0].contains("control_datagrams 1\ncontrol_refused 1\n"),
        "{}",
        stats[0]
    );
}

#[test]
fn test_stats_port_answers_with_counters() {
    let mut devs = [Queue::default()];
    let mut fw = boot(crate::storage!(conns_v4 = 64, conns_v6 = 4), &mut devs);
    // The firmware must know the client's MAC to answer: it learns it from the ARP.
    devs[0].rx.push_back(arp_request(DIRECTOR));
    run(&mut fw, &mut devs, 10);
    sent(&mut devs);
    let fw_mac = EthernetAddress(FW_MAC);
    devs[0].rx.push_back(eth(
        fw_mac,
        EthernetProtocol::Ipv4,
        &udp(DIRECTOR, STATS_PORT, b"stats"),
    ));
    run(&mut fw, &mut devs, 20);
    let out = sent(&mut devs);
    let text: Vec<String> = out
        .iter()
        .filter_map(|f| {
            let e = EthernetFrame::new_checked(&f[..]).ok()?;
            let ip = Ipv4Packet::new_checked(e.payload()).ok()?;
            let u = UdpPacket::new_checked(ip.payload()).ok()?;
            (u.src_port() == STATS_PORT).then(|| String::from_utf8_lossy(u.payload()).into())
        })
        .collect();
    assert_eq!(text.len(), 1, "one reply: {out:?}");
    let t = &text[0];
    for line in [
        "board host-test\n",
        "stats_requests 1\n",
        "conns 0\n",
        "conns_capacity 64\n",
        "rs 198.51.100.11:8080 conns 0",
        "nic_host 1\n",
    ] {
        assert!(t.contains(line), "{line:?} missing in:\n{t}");
    }
    assert_eq!(t.matches("\nrs ").count(), 9, "three services of three");
}

#[test]
fn test_syn_to_a_vip_is_scheduled_and_its_real_server_resolved() {
    let mut devs = [Queue::default()];
    let mut fw = boot(crate::storage!(conns_v4 = 64, conns_v6 = 4), &mut devs);
    let vip = Ipv4Addr::new(192, 0, 2, 10);
    devs[0].rx.push_back(eth(
        EthernetAddress(FW_MAC),
        EthernetProtocol::Ipv4,
        &tcp_syn(vip, 80),
    ));
    run(&mut fw, &mut devs, 10);
    assert_eq!(fw.adapter.director.conns_v4().len(), 1);
    assert_eq!(fw.adapter.director.totals().conns, 1);
    // The SYN waits in the hold queue while the first real server is asked for.
    let out = sent(&mut devs);
    let asked: Vec<Ipv4Addr> = out
        .iter()
        .filter_map(|f| {
            let e = EthernetFrame::new_checked(&f[..]).ok()?;
            match ArpRepr::parse(&ArpPacket::new_checked(e.payload()).ok()?).ok()? {
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    target_protocol_addr,
                    ..
                } => Some(target_protocol_addr),
                _ => None,
            }
        })
        .collect();
    assert_eq!(asked.len(), 1, "{out:?}");
    assert!(
        [11, 12, 13]
            .map(|n| Ipv4Addr::new(198, 51, 100, n))
            .contains(&asked[0])
    );
    assert_eq!(fw.adapter.stats().held, 1);
}

#[test]
fn test_storage_figures() {
    use crate::storage::{bytes_per_conn_v4, ram_bytes};
    // 44-byte entries (32-bit deadlines) and two 4-byte index slots per entry at the
    // minimum index size: the 4,096-connection table is 240 KiB, under the 256 KiB goal.
    assert_eq!(bytes_per_conn_v4(), 60);
    assert!(4096 * bytes_per_conn_v4() < 256 * 1024);
    // The other tables come on top: report, do not hide, what it takes.
    let total = ram_bytes(4096, 16);
    assert!(total > 4096 * 60, "{total}");
    assert!(total < 4096 * 60 + 64 * 1024, "{total}");
}
