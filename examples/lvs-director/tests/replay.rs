//! `lvs-director --replay`: a capture built by scapy (`fixtures/gen_replay.py`) runs
//! through the director's whole path (lvs-smoltcp's adapter, a smoltcp `Interface` for
//! the director's own addresses) as if received on the first port, and every frame it
//! transmits is checked:
//! - by meaning: each output frame parsed (checksums verified) and described in one line,
//!   compared with what the director must send (ARP and NDP answers for the VIPs and the
//!   FULLNAT local address, its own ARP and ping replies, NAT both ways, DR, TUN,
//!   FULLNAT, IPv6 NAT, a next hop resolved by ARP while its frame waits);
//! - byte for byte against `fixtures/replay_out.pcap` (re-recorded with `LVS_BLESS=1`
//!   once the meanings are right).
//!
//! No root needed: no device is opened.

mod common;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use common::{TempDir, director, fixtures, run};
use pcap_file::pcap::PcapReader;
use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    Icmpv6Message, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    UdpPacket,
};

/// The director of the capture: one port, the router and four real servers as static
/// neighbours (192.0.2.25 is left to ARP), a FULLNAT local address.
const FLAGS: &[&str] = &[
    "--iface",
    "lvs0,ip=192.0.2.1/24,ip=2001:db8::1/64,mac=02:00:00:00:00:01",
    "--route",
    "0.0.0.0/0,via=192.0.2.254",
    "--route",
    "::/0,via=2001:db8::fe",
    "--neigh",
    "192.0.2.254=02:00:00:00:00:fe",
    "--neigh",
    "2001:db8::fe=02:00:00:00:00:fe",
    "--neigh",
    "192.0.2.21=02:00:00:00:00:15",
    "--neigh",
    "192.0.2.22=02:00:00:00:00:16",
    "--neigh",
    "192.0.2.23=02:00:00:00:00:17",
    "--neigh",
    "192.0.2.24=02:00:00:00:00:18",
    "--neigh",
    "2001:db8::21=02:00:00:00:06:21",
    "--laddr",
    "192.0.2.100",
];

/// What the director sends, in order ("*" matches any one word).
const EXPECTED: &[&str] = &[
    // 1. ARP for the VIP, answered by the director.
    "02:00:00:00:00:01 > 02:00:00:00:00:fe ARP reply 192.0.2.10 is-at 02:00:00:00:00:01",
    // 2. ARP for its own address, answered by its local stack.
    "02:00:00:00:00:01 > 02:00:00:00:00:fe ARP reply 192.0.2.1 is-at 02:00:00:00:00:01",
    // 3. Ping of its own address.
    "02:00:00:00:00:01 > 02:00:00:00:00:fe IPv4 192.0.2.1 > 192.0.2.254 ICMP echo-reply",
    // 4. NAT in: to the real server's address, port and MAC.
    "02:00:00:00:00:01 > 02:00:00:00:00:15 IPv4 198.51.100.7:40000 > 192.0.2.21:8080 TCP S",
    // 5. NAT out: from the VIP, through the router.
    "02:00:00:00:00:01 > 02:00:00:00:00:fe IPv4 192.0.2.10:80 > 198.51.100.7:40000 TCP SA",
    // 6. DR: only the MAC changes.
    "02:00:00:00:00:01 > 02:00:00:00:00:16 IPv4 198.51.100.7:40001 > 192.0.2.11:80 TCP S",
    // 7. TUN: IP-in-IP from the director's address.
    "02:00:00:00:00:01 > 02:00:00:00:00:17 IPv4 192.0.2.1 > 192.0.2.23 IPIP [198.51.100.7:5353 > 192.0.2.12:53 UDP]",
    // 8. FULLNAT: from the local address, any port.
    "02:00:00:00:00:01 > 02:00:00:00:00:18 IPv4 192.0.2.100:* > 192.0.2.24:80 TCP S",
    // 9. ARP for the local address, answered.
    "02:00:00:00:00:01 > 02:00:00:00:00:18 ARP reply 192.0.2.100 is-at 02:00:00:00:00:01",
    // 10. The unknown real server is asked for...
    "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP request who-has 192.0.2.25 tell 192.0.2.1",
    // 11. ...and its SYN leaves when it answers.
    "02:00:00:00:00:01 > 02:00:00:00:00:19 IPv4 198.51.100.7:40003 > 192.0.2.14:80 TCP S",
    // 12. NDP for the IPv6 VIP.
    "02:00:00:00:00:01 > 02:00:00:00:00:fe IPv6 2001:db8::10 > 2001:db8::fe ICMPv6 NA 2001:db8::10",
    // 13. IPv6 NAT in.
    "02:00:00:00:00:01 > 02:00:00:00:06:21 IPv6 2001:db8:c::7:40004 > 2001:db8::21:8080 TCP S",
    // 14, 15: another host's frame and a runt: nothing.
];

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn tcp_flags(t: &TcpPacket<&[u8]>) -> String {
    let mut s = String::new();
    for (on, c) in [
        (t.syn(), 'S'),
        (t.ack(), 'A'),
        (t.fin(), 'F'),
        (t.rst(), 'R'),
        (t.psh(), 'P'),
    ] {
        if on {
            s.push(c);
        }
    }
    s
}

/// One line for a transport packet; panics on a bad checksum.
fn transport(proto: IpProtocol, src: IpAddress, dst: IpAddress, payload: &[u8]) -> String {
    let ep = |a: IpAddress, p: u16| format!("{a}:{p}");
    match proto {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(payload).expect("TCP header");
            assert!(t.verify_checksum(&src, &dst), "TCP checksum");
            format!(
                "{} > {} TCP {}",
                ep(src, t.src_port()),
                ep(dst, t.dst_port()),
                tcp_flags(&t)
            )
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(payload).expect("UDP header");
            assert!(u.verify_checksum(&src, &dst), "UDP checksum");
            format!("{} > {} UDP", ep(src, u.src_port()), ep(dst, u.dst_port()))
        }
        other => format!("{src} > {dst} {other}"),
    }
}

/// One line for a frame: addresses, protocol, the facts the director is responsible
/// for. Every checksum on the way is verified.
fn describe(frame: &[u8]) -> String {
    let eth = EthernetFrame::new_checked(frame).expect("Ethernet header");
    let mut s = format!(
        "{} > {} ",
        mac(eth.src_addr().as_bytes()),
        mac(eth.dst_addr().as_bytes())
    );
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let a = ArpPacket::new_checked(eth.payload()).expect("ARP");
            let spa = Ipv4Addr::from(<[u8; 4]>::try_from(a.source_protocol_addr()).unwrap());
            let tpa = Ipv4Addr::from(<[u8; 4]>::try_from(a.target_protocol_addr()).unwrap());
            match a.operation() {
                ArpOperation::Request => write!(s, "ARP request who-has {tpa} tell {spa}"),
                ArpOperation::Reply => {
                    write!(s, "ARP reply {spa} is-at {}", mac(a.source_hardware_addr()))
                }
                other => write!(s, "ARP {other:?}"),
            }
            .unwrap();
        }
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).expect("IPv4");
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            let (src, dst) = (
                IpAddress::Ipv4(ip.src_addr()),
                IpAddress::Ipv4(ip.dst_addr()),
            );
            s.push_str("IPv4 ");
            match ip.next_header() {
                IpProtocol::Icmp => {
                    let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("ICMP");
                    assert!(icmp.verify_checksum(), "ICMP checksum");
                    let what = match icmp.msg_type() {
                        Icmpv4Message::EchoReply => "echo-reply".to_string(),
                        other => format!("{other}"),
                    };
                    write!(s, "{src} > {dst} ICMP {what}").unwrap();
                }
                IpProtocol::Unknown(4) => {
                    let inner = Ipv4Packet::new_checked(ip.payload()).expect("inner IPv4");
                    assert!(inner.verify_checksum(), "inner IPv4 checksum");
                    let t = transport(
                        inner.next_header(),
                        IpAddress::Ipv4(inner.src_addr()),
                        IpAddress::Ipv4(inner.dst_addr()),
                        inner.payload(),
                    );
                    write!(s, "{src} > {dst} IPIP [{t}]").unwrap();
                }
                p => s.push_str(&transport(p, src, dst, ip.payload())),
            }
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).expect("IPv6");
            let (src6, dst6): (Ipv6Addr, Ipv6Addr) = (ip.src_addr(), ip.dst_addr());
            let (src, dst) = (IpAddress::Ipv6(src6), IpAddress::Ipv6(dst6));
            s.push_str("IPv6 ");
            match ip.next_header() {
                IpProtocol::Icmpv6 => {
                    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("ICMPv6");
                    assert!(icmp.verify_checksum(&src6, &dst6), "ICMPv6 checksum");
                    let what = match icmp.msg_type() {
                        Icmpv6Message::NeighborAdvert => {
                            // Type, code, checksum, flags: the target follows.
                            let target =
                                Ipv6Addr::from(<[u8; 16]>::try_from(&ip.payload()[8..24]).unwrap());
                            format!("NA {target}")
                        }
                        Icmpv6Message::NeighborSolicit => "NS".to_string(),
                        other => format!("{other}"),
                    };
                    write!(s, "{src} > {dst} ICMPv6 {what}").unwrap();
                }
                p => s.push_str(&transport(p, src, dst, ip.payload())),
            }
        }
        other => write!(s, "{other}").unwrap(),
    }
    s
}

fn matches(got: &str, want: &str) -> bool {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.split(' ').collect(), want.split(' ').collect());
    g.len() == w.len()
        && g.iter().zip(&w).all(|(g, w)| {
            g == w
                || w.strip_suffix('*')
                    .is_some_and(|prefix| !prefix.is_empty() && g.starts_with(prefix))
        })
}

fn frames(path: &std::path::Path) -> Vec<(std::time::Duration, Vec<u8>)> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

#[test]
fn replay_sends_what_a_director_must() {
    let dir = TempDir::new("replay");
    let out = dir.join("out.pcap");
    let fx = fixtures();
    let rules = fx.join("replay.rules");
    let input = fx.join("replay_in.pcap");
    let (_, err, code) = run(director()
        .args(FLAGS)
        .arg("--rules")
        .arg(&rules)
        .arg("--replay")
        .arg(&input)
        .arg("--write")
        .arg(&out));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.starts_with("lvs-director: replayed 15 frames, wrote 13"),
        "{err}"
    );

    let got = frames(&out);
    let lines: Vec<String> = got.iter().map(|(_, f)| describe(f)).collect();
    for (i, (g, w)) in lines.iter().zip(EXPECTED).enumerate() {
        assert!(
            matches(g, w),
            "output frame {}:\n got  {g}\n want {w}",
            i + 1
        );
    }
    assert_eq!(
        lines.len(),
        EXPECTED.len(),
        "output frames:\n{}",
        lines.join("\n")
    );
    // Output timestamps are those of the input frame being processed.
    let input_ts: Vec<_> = frames(&input).into_iter().map(|(t, _)| t).collect();
    for (t, _) in &got {
        assert!(
            input_ts.contains(t),
            "output timestamp {t:?} is no input frame's"
        );
    }

    let expected = fx.join("replay_out.pcap");
    let bytes = std::fs::read(&out).unwrap();
    if std::env::var_os("LVS_BLESS").is_some() {
        std::fs::write(&expected, &bytes).unwrap();
        eprintln!("recorded {}", expected.display());
    } else {
        let want = std::fs::read(&expected).unwrap_or_default();
        assert!(
            bytes == want,
            "{} differs from this run's output (the frames mean what they must; if the \
             change is intended, re-record with LVS_BLESS=1)",
            expected.display()
        );
    }
}

#[test]
fn replay_is_deterministic() {
    let dir = TempDir::new("replay2");
    let fx = fixtures();
    let mut outs = Vec::new();
    for n in 0..2 {
        let out = dir.join(&format!("out{n}.pcap"));
        let (_, err, code) = run(director()
            .args(FLAGS)
            .arg("--rules")
            .arg(fx.join("replay.rules"))
            .arg("--replay")
            .arg(fx.join("replay_in.pcap"))
            .arg("--write")
            .arg(&out));
        assert_eq!(code, Some(0), "{err}");
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn replay_refuses_what_it_cannot_read() {
    let dir = TempDir::new("replay3");
    let not_pcap = dir.write("x.pcap", "not a capture");
    let (_, err, code) = run(director().args([
        "--iface",
        "lvs0",
        "--replay",
        not_pcap.to_str().unwrap(),
        "--write",
        dir.join("o.pcap").to_str().unwrap(),
    ]));
    assert_eq!(code, Some(1));
    assert!(err.contains("x.pcap: not a pcap capture"), "{err}");
    let (_, err, code) = run(director().args([
        "--iface",
        "lvs0",
        "--replay",
        "/nonexistent/in.pcap",
        "--write",
        dir.join("o.pcap").to_str().unwrap(),
    ]));
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent/in.pcap: No such file"), "{err}");
}
