//! The director end to end: frames built with smoltcp go through `Director::process`
//! (through the harness in `lvs_tests::director`, which checks the director's invariants
//! after every step), and what comes out is parsed with smoltcp, every checksum
//! verified. IPVS's behaviour (net/netfilter/ipvs/ip_vs_core.c, ip_vs_conn.c) is the
//! reference: states, ActiveConn/InActConn, counters, persistence, thresholds,
//! connection reuse, removed real servers, table pressure, ICMP errors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::conn::state::TcpState;
use lvs_core::conn::table::Proto;
use lvs_core::director::{Rx, ServiceKey, Verdict};
use lvs_core::service::{DestId, Method};
use lvs_core::stats::{Counters, DropReason};
use lvs_core::time::{Duration, Instant};
use lvs_tests::director::*;
use lvs_tests::frames::{self, CLIENT_MAC, DIRECTOR_MAC, Flow, IcmpError};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

// ------------------------------------------------------------------ addresses

fn vip(v6: bool) -> IpAddr {
    if v6 { Flow::v6().dst } else { Flow::v4().dst }
}

fn cip(v6: bool) -> IpAddr {
    if v6 { Flow::v6().src } else { Flow::v4().src }
}

/// Another client of the same /24 (or /64).
fn cip_near(v6: bool, n: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xc,
            0,
            0,
            0,
            0,
            0x100 + u16::from(n),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 100 + n))
    }
}

/// A client in another /24 (or /64).
fn cip_far(v6: bool, n: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, 0, u16::from(n)))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 51, 101, n))
    }
}

/// Real server `n` (1, 2, 3, ...).
fn rip(v6: bool, n: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xa,
            0,
            0,
            0,
            0,
            0x10 + u16::from(n),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10 + n))
    }
}

/// The FULLNAT local address.
fn lip(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))
    }
}

fn tun_src(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(TUN_SRC_V6)
    } else {
        IpAddr::V4(TUN_SRC_V4)
    }
}

/// `addr:port` as ipvsadm writes it.
fn ep(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A client flow to the VIP's port 80.
fn client(v6: bool, src: IpAddr, sport: u16) -> Flow {
    Flow {
        src,
        dst: vip(v6),
        sport,
        dport: 80,
    }
}

fn next_hop(v: &Verdict) -> IpAddr {
    match v {
        Verdict::Forward { next_hop, .. } => *next_hop,
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn ip_len(frame: &[u8]) -> u64 {
    frames::ip_of(frame).len() as u64
}

fn method_of(word: &str) -> Method {
    match word {
        "-m" => Method::Masq,
        "-b" => Method::FullNat,
        "-g" => Method::DirectRoute,
        "-i" => Method::Tunnel,
        _ => unreachable!(),
    }
}

/// A harness with `-t VIP:80 -s SCHED` and `n` real servers of method `m` (NAT and
/// FULLNAT on port 8080, DR and TUN on the virtual port), returning their ids in the
/// order added.
fn setup(v6: bool, sched: &str, m: &str, n: u8) -> (Harness, ServiceKey, Vec<DestId>) {
    setup_with(Harness::new(), v6, &format!("-s {sched}"), m, n)
}

fn setup_with(
    mut h: Harness,
    v6: bool,
    svc_words: &str,
    m: &str,
    n: u8,
) -> (Harness, ServiceKey, Vec<DestId>) {
    if m == "-b" {
        h.add_laddr(&lip(v6).to_string());
    }
    let key = h.add_service(&format!("-t {} {svc_words}", ep(vip(v6), 80)));
    let ids = (1..=n)
        .map(|i| {
            let r = match m {
                "-m" | "-b" => ep(rip(v6, i), 8080),
                _ => rip(v6, i).to_string(),
            };
            h.add_dest(&key, &format!("-r {r} {m} -w 1"))
        })
        .collect();
    (h, key, ids)
}

/// Opens a connection with a client SYN and returns the real server it went to.
fn syn(h: &mut Harness, now: Instant, f: &Flow) -> IpAddr {
    let (v, _) = h.step(now, &frames::tcp(f, SYN, &[]));
    next_hop(&v)
}

/// SYN then the client's ACK: ESTABLISHED from the director's view.
fn establish(h: &mut Harness, now: Instant, f: &Flow) -> IpAddr {
    let to = syn(h, now, f);
    let (v, _) = h.step(now, &frames::tcp(f, ACK, &[]));
    assert_eq!(next_hop(&v), to);
    to
}

fn counters(conns: u64, inpkts: u64, inbytes: u64, outpkts: u64, outbytes: u64) -> Counters {
    Counters {
        conns,
        inpkts,
        outpkts,
        inbytes,
        outbytes,
    }
}

// ------------------------------------------------------------------ TCP and UDP, every method

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

struct Step {
    side: Side,
    flags: u8,
    payload: &'static [u8],
    state: TcpState,
    /// (ActiveConn, InActConn) of the real server after the step.
    counts: (u32, u32),
}

const fn st(
    side: Side,
    flags: u8,
    payload: &'static [u8],
    state: TcpState,
    counts: (u32, u32),
) -> Step {
    Step {
        side,
        flags,
        payload,
        state,
        counts,
    }
}

use Side::{Client as C, Server as S};
use TcpState::{CloseWait, Established, FinWait, SynRecv, TimeWait};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// NAT and FULLNAT: both directions cross the director (the kernel's INPUT and OUTPUT
/// tables). SYN_RECV and ESTABLISHED count as active, the closing states as inactive.
const BOTH_WAYS: &[Step] = &[
    st(C, SYN, b"", SynRecv, (1, 0)),
    st(S, SYN | ACK, b"", SynRecv, (1, 0)),
    st(C, ACK, b"", Established, (1, 0)),
    st(C, PSH | ACK, REQUEST, Established, (1, 0)),
    st(S, PSH | ACK, RESPONSE, Established, (1, 0)),
    st(C, ACK, b"", Established, (1, 0)),
    st(C, FIN | ACK, b"", CloseWait, (0, 1)),
    st(S, ACK, b"", CloseWait, (0, 1)),
    st(S, FIN | ACK, b"", TimeWait, (0, 1)),
    st(C, ACK, b"", TimeWait, (0, 1)),
];

/// DR and TUN: the director sees the client's side only (the INPUT-ONLY table).
const INPUT_ONLY: &[Step] = &[
    st(C, SYN, b"", SynRecv, (1, 0)),
    st(C, ACK, b"", Established, (1, 0)),
    st(C, PSH | ACK, REQUEST, Established, (1, 0)),
    st(C, ACK, b"", Established, (1, 0)),
    st(C, FIN | ACK, b"", FinWait, (0, 1)),
    st(C, ACK, b"", FinWait, (0, 1)),
];

/// What a client-side packet must look like after the director, per method.
fn check_inbound(
    ctx: &str,
    m: Method,
    v6: bool,
    input: &[u8],
    v: &Verdict,
    out: &[u8],
    conn: &ConnView,
) {
    assert_eq!(next_hop(v), rip(v6, 1), "{ctx}: next hop");
    let inp = parse_frame(input).ip;
    let o = parse_frame(out);
    match m {
        Method::DirectRoute => {
            assert_eq!(out, input, "{ctx}: DR leaves the frame alone");
        }
        Method::Tunnel => {
            assert_eq!(o.ip.src, tun_src(v6), "{ctx}: tunnel source");
            assert_eq!(o.ip.dst, rip(v6, 1), "{ctx}: tunnel destination");
            assert_eq!(
                o.ip.protocol,
                if v6 { 41 } else { 4 },
                "{ctx}: tunnel protocol"
            );
            assert_eq!(o.ip.hop_limit, inp.hop_limit, "{ctx}: TTL copied");
            assert_eq!(o.ip.inner().bytes, inp.bytes, "{ctx}: inner packet intact");
            assert_eq!(o.src_mac, CLIENT_MAC);
            assert_eq!(o.dst_mac, DIRECTOR_MAC);
        }
        Method::Masq | Method::FullNat => {
            let (src, sport) = if m == Method::Masq {
                (cip(v6), conn.cport)
            } else {
                (lip(v6), conn.lport)
            };
            assert_eq!((o.ip.src, o.ip.dst), (src, rip(v6, 1)), "{ctx}: addresses");
            assert_eq!(o.ip.ports(), (sport, 8080), "{ctx}: ports");
            assert_eq!(o.ip.payload(), inp.payload(), "{ctx}: payload");
            if inp.protocol == 6 {
                assert_eq!(o.ip.tcp_flags(), inp.tcp_flags(), "{ctx}: flags");
            }
            assert_eq!(o.ip.hop_limit, inp.hop_limit, "{ctx}: TTL not decremented");
            assert_eq!(o.ip.total_len, inp.total_len, "{ctx}: length");
        }
    }
}

/// A reply from the real server, as it is addressed for NAT (to the client) or
/// FULLNAT (to the local address).
fn server_flow(m: Method, v6: bool, conn: &ConnView) -> Flow {
    match m {
        Method::Masq => Flow {
            src: rip(v6, 1),
            dst: conn.caddr,
            sport: 8080,
            dport: conn.cport,
        },
        Method::FullNat => Flow {
            src: rip(v6, 1),
            dst: conn.laddr,
            sport: 8080,
            dport: conn.lport,
        },
        _ => unreachable!("no replies through the director for {m:?}"),
    }
}

fn check_outbound(ctx: &str, v6: bool, input: &[u8], v: &Verdict, out: &[u8], conn: &ConnView) {
    assert_eq!(next_hop(v), conn.caddr, "{ctx}: reply next hop");
    let inp = parse_frame(input).ip;
    let o = parse_frame(out).ip;
    assert_eq!(
        (o.src, o.dst),
        (vip(v6), conn.caddr),
        "{ctx}: reply addresses"
    );
    assert_eq!(o.ports(), (80, conn.cport), "{ctx}: reply ports");
    assert_eq!(o.payload(), inp.payload(), "{ctx}: reply payload");
    if inp.protocol == 6 {
        assert_eq!(o.tcp_flags(), inp.tcp_flags(), "{ctx}: reply flags");
    }
}

const METHODS: [&str; 4] = ["-m", "-b", "-g", "-i"];

#[test]
fn tcp_connection_lifecycle_every_method_and_family() {
    for m in METHODS {
        for v6 in [false, true] {
            let method = method_of(m);
            let ctx = format!("{method:?} {}", if v6 { "IPv6" } else { "IPv4" });
            let (mut h, key, ids) = setup(v6, "rr", m, 1);
            let rs = ids[0];
            let f = client(v6, cip(v6), 40000);
            let steps = match method {
                Method::Masq | Method::FullNat => BOTH_WAYS,
                _ => INPUT_ONLY,
            };
            let (mut inp, mut inb, mut outp, mut outb) = (0, 0, 0, 0);
            let mut lport = None;
            let mut now = secs(0);
            for (i, s) in steps.iter().enumerate() {
                now = secs(1 + i as u64);
                let ctx = format!("{ctx} step {i} ({:?} flags {:#04x})", s.side, s.flags);
                match s.side {
                    Side::Client => {
                        let frame = frames::tcp(&f, s.flags, s.payload);
                        let (v, out) = h.step(now, &frame);
                        let conn = h.flow(cip(v6), 40000);
                        check_inbound(&ctx, method, v6, &frame, &v, &out, &conn);
                        inp += 1;
                        inb += ip_len(&frame);
                    }
                    Side::Server => {
                        let conn = h.flow(cip(v6), 40000);
                        let frame =
                            frames::tcp(&server_flow(method, v6, &conn), s.flags, s.payload);
                        let (v, out) = h.step(now, &frame);
                        check_outbound(&ctx, v6, &frame, &v, &out, &conn);
                        outp += 1;
                        outb += ip_len(&frame);
                    }
                }
                let conn = h.flow(cip(v6), 40000);
                assert_eq!(conn.tcp_state(), s.state, "{ctx}: state");
                assert_eq!(
                    conn.expires,
                    now + h.d.config().timeouts.tcp(s.state),
                    "{ctx}: timer re-armed with the state's timeout"
                );
                assert_eq!(conn.method, method, "{ctx}: method");
                assert_eq!(conn.dest, rs, "{ctx}: real server");
                assert_eq!(conn.inactive, s.counts.0 == 0, "{ctx}: INACTIVE flag");
                let (a, ia, p) = h.counts(rs);
                assert_eq!((a, ia, p), (s.counts.0, s.counts.1, 0), "{ctx}: counts");
                if method == Method::FullNat {
                    assert_eq!(conn.laddr, lip(v6), "{ctx}: local address");
                    assert!(conn.lport >= 1024, "{ctx}: local port");
                    assert_eq!(*lport.get_or_insert(conn.lport), conn.lport, "{ctx}: lport");
                }
            }
            let want = counters(1, inp, inb, outp, outb);
            assert_eq!(h.svc_stats(&key), want, "{ctx}: service counters");
            assert_eq!(h.dest_stats(rs), want, "{ctx}: real server counters");
            assert_eq!(*h.d.totals(), want, "{ctx}: totals");
            assert_eq!(h.d.drops().total(), 0, "{ctx}: no drops");
            // The last state's timeout, then the connection is gone.
            let last = h.flow(cip(v6), 40000);
            let expires = last.expires.instant(now);
            h.maintain(Instant::from_millis(expires.total_millis() - 1));
            assert!(
                h.find_flow(cip(v6), 40000).is_some(),
                "{ctx}: alive before expiry"
            );
            h.maintain(expires);
            assert!(h.find_flow(cip(v6), 40000).is_none(), "{ctx}: expired");
            assert_eq!(h.counts(rs), (0, 0, 0), "{ctx}: counts after expiry");
            assert!(now < expires);
        }
    }
}

#[test]
fn udp_flow_every_method_and_family() {
    for m in METHODS {
        for v6 in [false, true] {
            let method = method_of(m);
            let ctx = format!("UDP {method:?} {}", if v6 { "IPv6" } else { "IPv4" });
            let mut h = Harness::new();
            if m == "-b" {
                h.add_laddr(&lip(v6).to_string());
            }
            let key = h.add_service(&format!("-u {} -s rr", ep(vip(v6), 80)));
            let r = match m {
                "-m" | "-b" => ep(rip(v6, 1), 8080),
                _ => rip(v6, 1).to_string(),
            };
            let rs = h.add_dest(&key, &format!("-r {r} {m}"));
            let f = client(v6, cip(v6), 5353);
            let udp_timeout = h.d.config().timeouts.udp();
            let (mut inp, mut inb, mut outp, mut outb) = (0, 0, 0, 0);
            for (i, payload) in [&b"query one"[..], b"query two, longer", b"3"]
                .into_iter()
                .enumerate()
            {
                let now = secs(10 * i as u64 + 1);
                let frame = frames::udp(&f, payload);
                let (v, out) = h.step(now, &frame);
                let conn = h.flow(cip(v6), 5353);
                check_inbound(&ctx, method, v6, &frame, &v, &out, &conn);
                inp += 1;
                inb += ip_len(&frame);
                assert_eq!(conn.proto, Proto::Udp, "{ctx}");
                assert_eq!(conn.state, 0, "{ctx}: UDP has one state");
                assert!(conn.inactive, "{ctx}: UDP counts as inactive");
                assert_eq!(conn.expires, now + udp_timeout, "{ctx}: UDP timer re-armed");
                assert_eq!(h.counts(rs), (0, 1, 0), "{ctx}: InActConn");
                if matches!(method, Method::Masq | Method::FullNat) {
                    let reply = frames::udp(&server_flow(method, v6, &conn), b"answer");
                    let (v, out) = h.step(now + Duration::from_millis(5), &reply);
                    check_outbound(&ctx, v6, &reply, &v, &out, &conn);
                    outp += 1;
                    outb += ip_len(&reply);
                    let conn = h.flow(cip(v6), 5353);
                    assert_eq!(conn.expires, now + Duration::from_millis(5) + udp_timeout);
                }
            }
            assert_eq!(h.flows().len(), 1, "{ctx}: one connection for the flow");
            let want = counters(1, inp, inb, outp, outb);
            assert_eq!(h.svc_stats(&key), want, "{ctx}: service counters");
            assert_eq!(h.dest_stats(rs), want, "{ctx}: real server counters");
            let conn = h.flow(cip(v6), 5353);
            h.maintain(conn.expires.instant(secs(1)));
            assert!(h.flows().is_empty(), "{ctx}: expired after the UDP timeout");
            assert_eq!(h.counts(rs), (0, 0, 0), "{ctx}");
        }
    }
}

#[test]
fn udp_over_ipv4_without_checksum_stays_without() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-u {} -s rr", ep(vip(false), 53)));
    h.add_dest(&key, &format!("-r {} -m", ep(rip(false, 1), 5353)));
    let f = Flow {
        dport: 53,
        ..Flow::v4()
    };
    let (v, out) = h.step(secs(1), &frames::udp_v4_no_checksum(&f, b"no checksum"));
    assert_eq!(next_hop(&v), rip(false, 1));
    let o = parse_frame(&out).ip;
    assert_eq!(o.ports(), (f.sport, 5353));
    assert!(matches!(o.l4, L4::Udp { checksum: 0, .. }));
}

#[test]
fn vlan_tagged_frames_are_rewritten_behind_the_tag() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let f = client(false, cip(false), 40001);
    let frame = frames::with_vlan(&frames::tcp(&f, SYN, &[]), 0x0064);
    let (v, out) = h.step(secs(1), &frame);
    assert_eq!(next_hop(&v), rip(false, 1));
    let o = parse_frame(&out);
    assert_eq!(o.vlan, Some(0x0064));
    assert_eq!(o.ip.dst, rip(false, 1));
    assert_eq!(o.ip.ports(), (40001, 8080));
    // The reply, tagged too.
    let r = Flow {
        src: rip(false, 1),
        dst: cip(false),
        sport: 8080,
        dport: 40001,
    };
    let (v, out) = h.step(
        secs(2),
        &frames::with_vlan(&frames::tcp(&r, SYN | ACK, &[]), 0x0064),
    );
    assert_eq!(next_hop(&v), cip(false));
    let o = parse_frame(&out);
    assert_eq!(o.vlan, Some(0x0064));
    assert_eq!((o.ip.src, o.ip.ports()), (vip(false), (80, 40001)));
}

#[test]
fn tunnel_to_a_real_server_of_the_other_family() {
    for v6 in [false, true] {
        let mut h = Harness::new();
        let key = h.add_service(&format!("-t {} -s rr", ep(vip(v6), 80)));
        // 4in6 for an IPv4 service, 6in4 for an IPv6 one.
        let rs = h.add_dest(&key, &format!("-r {} -i", rip(!v6, 1)));
        let f = client(v6, cip(v6), 40000);
        let frame = frames::tcp(&f, SYN, &[]);
        let (v, out) = h.step(secs(1), &frame);
        assert_eq!(next_hop(&v), rip(!v6, 1));
        let o = parse_frame(&out);
        assert_eq!((o.ip.src, o.ip.dst), (tun_src(!v6), rip(!v6, 1)));
        assert_eq!(o.ip.protocol, if v6 { 41 } else { 4 });
        assert_eq!(o.ip.inner().bytes, frames::ip_of(&frame));
        assert_eq!(h.counts(rs), (1, 0, 0));
        let (v, _) = h.step(secs(2), &frames::tcp(&f, ACK, b"data"));
        assert_eq!(next_hop(&v), rip(!v6, 1));
        assert_eq!(h.flow(cip(v6), 40000).tcp_state(), Established);
    }
}

/// Every 4in4 encapsulation takes the next outer identification, whichever code makes
/// it: a new connection's (the general path), an established one's (the fast path), or
/// one moved into tailroom (`tun::encap`, no headroom for the fixed-offset one).
#[test]
fn tunnel_identifications_advance_by_one() {
    let (mut h, _, _) = setup(false, "rr", "-i", 1);
    let ident = |out: &[u8]| u16::from_be_bytes([out[18], out[19]]);
    let f = client(false, cip(false), 40000);
    let mut idents = Vec::new();
    for (t, flags, data) in [(1, SYN, &b""[..]), (2, ACK, b""), (3, PSH | ACK, b"data")] {
        let (v, out) = h.step(secs(t), &frames::tcp(&f, flags, data));
        assert_eq!(next_hop(&v), rip(false, 1));
        idents.push(ident(&out));
    }
    let rx = h.rx;
    let frame = frames::tcp(&client(false, cip(false), 40001), SYN, b"");
    let (v, out) = h.step_with(secs(4), rx, &frame, 0, 64);
    assert_eq!(next_hop(&v), rip(false, 1));
    idents.push(ident(&out));
    for w in idents.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{idents:?}");
    }
}

#[test]
fn tunnel_with_tailroom_only_moves_the_packet() {
    for v6 in [false, true] {
        let (mut h, _, _) = setup(v6, "rr", "-i", 1);
        let frame = frames::tcp(&client(v6, cip(v6), 40000), SYN, b"x");
        let rx = h.rx;
        let (v, out) = h.step_with(secs(1), rx, &frame, 0, 64);
        let Verdict::Forward { frame: range, .. } = &v else {
            panic!("{v:?}")
        };
        assert_eq!(range.start, 0);
        let o = parse_frame(&out);
        assert_eq!(o.ip.inner().bytes, frames::ip_of(&frame));
        // Neither headroom nor tailroom: no room for the outer header.
        let frame = frames::tcp(&client(v6, cip(v6), 40001), SYN, b"x");
        let (v, _) = h.step_with(secs(2), rx, &frame, 0, 0);
        assert_eq!(v, Verdict::Drop(DropReason::RewriteFailed));
    }
}

// ------------------------------------------------------------------ schedulers through the pipeline

/// The real server (by address) each of `n` new connections from distinct ports went to.
fn open_many(h: &mut Harness, v6: bool, now: Instant, first_port: u16, n: u16) -> Vec<IpAddr> {
    (0..n)
        .map(|i| syn(h, now, &client(v6, cip(v6), first_port + i)))
        .collect()
}

/// The same, each connection ESTABLISHED (so that a RST closes it).
fn establish_many(h: &mut Harness, v6: bool, now: Instant, first_port: u16, n: u16) -> Vec<IpAddr> {
    (0..n)
        .map(|i| establish(h, now, &client(v6, cip(v6), first_port + i)))
        .collect()
}

fn tally(hops: &[IpAddr], v6: bool, servers: u8) -> Vec<usize> {
    (1..=servers)
        .map(|i| hops.iter().filter(|&&a| a == rip(v6, i)).count())
        .collect()
}

#[test]
fn rr_is_exact_over_new_connections() {
    for v6 in [false, true] {
        let (mut h, key, ids) = setup(v6, "rr", "-m", 3);
        let hops = open_many(&mut h, v6, secs(1), 10000, 30);
        // The kernel's list order: the newest real server first.
        let order = [rip(v6, 3), rip(v6, 2), rip(v6, 1)];
        for (i, a) in hops.iter().enumerate() {
            assert_eq!(*a, order[i % 3], "connection {i}");
        }
        assert_eq!(tally(&hops, v6, 3), [10, 10, 10]);
        for id in ids {
            assert_eq!(h.counts(id), (10, 0, 0), "SYN_RECV counts as active");
            assert_eq!(h.dest_stats(id).conns, 10);
        }
        assert_eq!(h.svc_stats(&key).conns, 30);
    }
}

#[test]
fn wrr_follows_the_weights() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s wrr", ep(vip(false), 80)));
    for (i, w) in [(1, 4), (2, 3), (3, 2)] {
        h.add_dest(&key, &format!("-r {} -m -w {w}", ep(rip(false, i), 8080)));
    }
    let hops = open_many(&mut h, false, secs(1), 10000, 90);
    // Every cycle of 9 holds 4:3:2 exactly.
    for (c, cycle) in hops.chunks(9).enumerate() {
        assert_eq!(tally(cycle, false, 3), [4, 3, 2], "cycle {c}");
    }
    assert_eq!(tally(&hops, false, 3), [40, 30, 20]);
}

#[test]
fn lc_and_wlc_balance_through_the_pipeline() {
    // wlc with weights 1 and 3: new connections go 1:3 once both are loaded.
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s wlc", ep(vip(false), 80)));
    h.add_dest(&key, &format!("-r {} -m -w 1", ep(rip(false, 1), 8080)));
    h.add_dest(&key, &format!("-r {} -m -w 3", ep(rip(false, 2), 8080)));
    let hops = open_many(&mut h, false, secs(1), 10000, 40);
    assert_eq!(tally(&hops, false, 2), [10, 30]);
}

// ------------------------------------------------------------------ persistence

#[test]
fn persistence_keeps_a_client_on_its_server() {
    for v6 in [false, true] {
        let (mut h, _, ids) = setup_with(Harness::new(), v6, "-s rr -p 300", "-m", 3);
        let first = syn(&mut h, secs(1), &client(v6, cip(v6), 1000));
        // rr would move on; the template holds the client.
        for port in 1001..1010 {
            let to = syn(&mut h, secs(2), &client(v6, cip(v6), port));
            assert_eq!(to, first, "port {port}");
        }
        let t = h.templates();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].caddr, t[0].vaddr, t[0].vport), (cip(v6), vip(v6), 80));
        assert_eq!(t[0].n_control, 10);
        assert_eq!(
            t[0].expires,
            secs(2) + Duration::from_secs(300),
            "re-armed on use"
        );
        assert!(h.flows().iter().all(|c| c.controlled));
        let id = ids[(0..3).find(|&i| rip(v6, i as u8 + 1) == first).unwrap()];
        assert_eq!(h.counts(id), (10, 0, 1), "PersistConn counts the template");
        assert_eq!(h.dest_stats(id).conns, 10, "a template is no connection");
        // Another client is scheduled (rr moves on from the first pick).
        let other = syn(&mut h, secs(3), &client(v6, cip_near(v6, 1), 1000));
        assert_ne!(other, first);
        assert_eq!(h.templates().len(), 2);
    }
}

#[test]
fn persistence_netmask_groups_clients() {
    let mut h = Harness::new();
    let key = h.add_service(&format!(
        "-t {} -s rr -p 300 -M 255.255.255.0",
        ep(vip(false), 80)
    ));
    for i in 1..=3 {
        h.add_dest(&key, &format!("-r {} -m", ep(rip(false, i), 8080)));
    }
    let a = syn(&mut h, secs(1), &client(false, cip(false), 1000));
    for n in 1..6 {
        let b = syn(&mut h, secs(1), &client(false, cip_near(false, n), 2000));
        assert_eq!(b, a, "same /24");
    }
    let far = syn(&mut h, secs(1), &client(false, cip_far(false, 7), 1000));
    assert_ne!(far, a, "another /24 is scheduled");
    let t = h.templates();
    assert_eq!(t.len(), 2);
    assert!(
        t.iter()
            .any(|t| t.caddr == "198.51.100.0".parse::<IpAddr>().unwrap())
    );
    assert!(
        t.iter()
            .any(|t| t.caddr == "198.51.101.0".parse::<IpAddr>().unwrap())
    );

    // IPv6 with a /64 mask.
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr -p 300 -M 64", ep(vip(true), 80)));
    for i in 1..=3 {
        h.add_dest(&key, &format!("-r {} -m", ep(rip(true, i), 8080)));
    }
    let a = syn(&mut h, secs(1), &client(true, cip(true), 1000));
    assert_eq!(syn(&mut h, secs(1), &client(true, cip_near(true, 1), 1)), a);
    assert_ne!(syn(&mut h, secs(1), &client(true, cip_far(true, 1), 1)), a);
}

#[test]
fn persistence_across_ports_of_a_port_zero_service() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr -p 300", ep(vip(false), 0)));
    let ids: Vec<DestId> = (1..=3)
        .map(|i| h.add_dest(&key, &format!("-r {} -g", rip(false, i))))
        .collect();
    let mut hops = Vec::new();
    for (i, vport) in [80u16, 443, 8443, 22].into_iter().enumerate() {
        let f = Flow {
            src: cip(false),
            dst: vip(false),
            sport: 5000 + i as u16,
            dport: vport,
        };
        let (v, out) = h.step(secs(1), &frames::tcp(&f, SYN, &[]));
        hops.push(next_hop(&v));
        assert_eq!(
            parse_frame(&out).ip.ports(),
            (f.sport, vport),
            "DR keeps the port"
        );
    }
    assert!(hops.iter().all(|&a| a == hops[0]), "{hops:?}");
    let t = h.templates();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].vport, 0, "a port-zero service's template has port 0");
    assert_eq!(ids.iter().map(|&i| h.counts(i).2).sum::<u32>(), 1);
}

#[test]
fn persistence_template_expires_after_its_connections() {
    let (mut h, _, ids) = setup_with(Harness::new(), false, "-s rr -p 300", "-m", 3);
    let a = establish(&mut h, secs(1), &client(false, cip(false), 1000));
    assert_eq!(
        establish(&mut h, secs(2), &client(false, cip(false), 1001)),
        a
    );
    // Both reset: CLOSE, 10 s.
    for port in [1000, 1001] {
        let (v, _) = h.step(
            secs(3),
            &frames::tcp(&client(false, cip(false), port), RST, &[]),
        );
        assert_eq!(next_hop(&v), a);
    }
    h.maintain(secs(14));
    assert!(h.flows().is_empty());
    let id = ids[(0..3).find(|&i| rip(false, i as u8 + 1) == a).unwrap()];
    assert_eq!(
        h.counts(id),
        (0, 0, 1),
        "the template outlives its connections"
    );
    // Still used before its timeout (300 s after its last use, at 2 s).
    h.maintain(secs(301));
    assert_eq!(h.templates().len(), 1);
    h.maintain(secs(302));
    assert!(
        h.templates().is_empty(),
        "gone after the persistence timeout"
    );
    assert_eq!(h.counts(id), (0, 0, 0));
    // The client is scheduled afresh: rr continues from where it was.
    let b = syn(&mut h, secs(303), &client(false, cip(false), 1002));
    assert_ne!(b, a);
}

/// The kernel re-arms a template that still controls connections with 60 s
/// (`ip_vs_conn_expire`), so it dies within a minute of its last connection.
#[test]
fn persistence_template_rearmed_by_a_minute_while_it_controls() {
    let (mut h, _, ids) = setup_with(Harness::new(), false, "-s rr -p 30", "-m", 2);
    let f = client(false, cip(false), 1000);
    let a = establish(&mut h, secs(1), &f);
    let id = ids[(0..2).find(|&i| rip(false, i as u8 + 1) == a).unwrap()];
    // At 31 s the template times out but controls an ESTABLISHED connection.
    h.maintain(secs(31));
    let t = h.templates();
    assert_eq!(t.len(), 1, "kept while it controls a connection");
    assert_eq!(t[0].expires, secs(91), "re-armed for 60 s, as the kernel");
    // The connection ends at 40 s (RST: CLOSE for 10 s).
    h.step(secs(40), &frames::tcp(&f, RST, &[]));
    h.maintain(secs(50));
    assert!(h.flows().is_empty());
    h.maintain(secs(91));
    assert!(
        h.templates().is_empty(),
        "template gone a minute after re-arming"
    );
    assert_eq!(h.counts(id), (0, 0, 0));
}

/// A template that timed out but still controls connections (not yet swept) is still
/// the client's: the kernel re-arms it at expiry, so the client keeps its server.
#[test]
fn persistence_expired_template_with_connections_still_holds() {
    let mut h = Harness::with_config(|c| c.sweep_budget = 0);
    let key = h.add_service(&format!("-t {} -s rr -p 30", ep(vip(false), 80)));
    for i in 1..=2 {
        h.add_dest(&key, &format!("-r {} -m", ep(rip(false, i), 8080)));
    }
    let a = establish(&mut h, secs(1), &client(false, cip(false), 1000));
    // 35 s: the template's time has passed, nothing swept it, its connection lives.
    let (v, _) = h.step(
        secs(35),
        &frames::tcp(&client(false, cip(false), 1001), SYN, &[]),
    );
    assert_eq!(next_hop(&v), a, "same server");
    assert_eq!(h.d.drops().total(), 0);
    assert_eq!(h.flows().len(), 2);
}

/// When a client's template points at a server it can no longer use (removed, or
/// quiesced with `expire_quiescent_template`) while connections still hang on it, the
/// kernel invalidates the template and schedules the client anew.
#[test]
fn persistence_unusable_template_with_connections_reschedules() {
    for quiesce in [false, true] {
        let mut h = Harness::with_config(|c| c.expire_quiescent_template = true);
        let key = h.add_service(&format!("-t {} -s rr -p 300", ep(vip(false), 80)));
        for i in 1..=2 {
            h.add_dest(&key, &format!("-r {} -m", ep(rip(false, i), 8080)));
        }
        // Another client's embryonic connection: must not be evicted by any of this.
        let bystander = client(false, cip_far(false, 9), 7);
        syn(&mut h, secs(1), &bystander);
        let f = client(false, cip(false), 1000);
        let a = establish(&mut h, secs(1), &f);
        let n = (1..=2).find(|&i| rip(false, i) == a).unwrap();
        if quiesce {
            h.edit_dest(&key, &format!("-r {} -m -w 0", ep(a, 8080)));
        } else {
            h.d.delete_dest(&key, &a, 8080).unwrap();
            h.check();
        }
        let b = syn(&mut h, secs(2), &client(false, cip(false), 1001));
        assert_ne!(b, a, "quiesce={quiesce}: the client goes elsewhere");
        assert_eq!(h.d.drops().total(), 0, "quiesce={quiesce}");
        assert!(
            h.find_flow(bystander.src, bystander.sport).is_some(),
            "bystander kept"
        );
        // The client stays on its new server.
        assert_eq!(syn(&mut h, secs(3), &client(false, cip(false), 1002)), b);
        // The old connection: a quiesced server keeps serving it; a removed one's
        // traffic is dropped, as the kernel does.
        let (v, _) = h.step(secs(3), &frames::tcp(&f, ACK, b"more"));
        if quiesce {
            assert_eq!(next_hop(&v), rip(false, n));
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
        }
    }
}

#[test]
fn persistence_with_fwmark_spans_protocols() {
    let mut h = Harness::new();
    let key = h.add_service("-f 7 -s rr -p 300");
    for i in 1..=3 {
        h.add_dest(&key, &format!("-r {} -g", rip(false, i)));
    }
    let rx = Rx {
        iface: 0,
        fwmark: 7,
    };
    let f = client(false, cip(false), 1000);
    let (v, _) = h.step_rx(secs(1), rx, &frames::tcp(&f, SYN, &[]));
    let a = next_hop(&v);
    let u = Flow { dport: 53, ..f };
    let (v, _) = h.step_rx(secs(1), rx, &frames::udp(&u, b"q"));
    assert_eq!(
        next_hop(&v),
        a,
        "one template for the mark, TCP and UDP alike"
    );
    assert_eq!(h.templates().len(), 1);
}

// ------------------------------------------------------------------ weights and thresholds

#[test]
fn quiesced_server_keeps_its_connections_and_gets_no_new_ones() {
    let (mut h, key, ids) = setup(false, "rr", "-m", 2);
    let f = client(false, cip(false), 1000);
    let a = establish(&mut h, secs(1), &f);
    let ia = ids[(0..2).find(|&i| rip(false, i as u8 + 1) == a).unwrap()];
    h.edit_dest(&key, &format!("-r {} -m -w 0", ep(a, 8080)));
    assert_eq!(h.server(ia).weight, 0);
    for (i, to) in open_many(&mut h, false, secs(2), 2000, 10)
        .into_iter()
        .enumerate()
    {
        assert_ne!(to, a, "new connection {i} avoids the quiesced server");
    }
    let (v, out) = h.step(secs(3), &frames::tcp(&f, PSH | ACK, REQUEST));
    assert_eq!(next_hop(&v), a, "the existing connection continues");
    assert_eq!(parse_frame(&out).ip.payload(), REQUEST);
    assert_eq!(h.counts(ia), (1, 0, 0));
    // All quiesced: a new connection has nowhere to go.
    let other = (1..=2).map(|i| rip(false, i)).find(|&r| r != a).unwrap();
    h.edit_dest(&key, &format!("-r {} -m -w 0", ep(other, 8080)));
    let (v, _) = h.step(
        secs(4),
        &frames::tcp(&client(false, cip(false), 3000), SYN, &[]),
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoDest));
    assert_eq!(h.d.drops().get(DropReason::NoDest), 1);
}

#[test]
fn upper_threshold_sends_the_third_connection_elsewhere() {
    // fo: the highest weight while available.
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s fo", ep(vip(false), 80)));
    let a = h.add_dest(
        &key,
        &format!("-r {} -m -w 10 -x 2", ep(rip(false, 1), 8080)),
    );
    let b = h.add_dest(&key, &format!("-r {} -m -w 1", ep(rip(false, 2), 8080)));
    let hops = establish_many(&mut h, false, secs(1), 1000, 4);
    assert_eq!(
        hops,
        [rip(false, 1), rip(false, 1), rip(false, 2), rip(false, 2)]
    );
    assert!(h.server(a).overloaded);
    assert_eq!(h.counts(a), (2, 0, 0));
    assert_eq!(h.counts(b), (2, 0, 0));
    // One of A's connections ends: 1 * 4 < 2 * 3, available again.
    h.step(
        secs(2),
        &frames::tcp(&client(false, cip(false), 1000), RST, &[]),
    );
    assert!(
        h.server(a).overloaded,
        "a closed connection still counts until it expires"
    );
    h.maintain(secs(12));
    assert!(!h.server(a).overloaded);
    assert_eq!(
        syn(&mut h, secs(13), &client(false, cip(false), 1100)),
        rip(false, 1)
    );
}

#[test]
fn threshold_hysteresis_on_the_way_down() {
    // (words, connections at or below which the server is available again)
    for (words, free_at) in [
        // No lower threshold: available below 3/4 of the upper one (3 * 4 < 12 fails).
        ("-x 4", 2u32),
        // An explicit lower threshold: available below it.
        ("-x 4 -y 2", 1),
    ] {
        let mut h = Harness::new();
        let key = h.add_service(&format!("-t {} -s fo", ep(vip(false), 80)));
        let a = h.add_dest(
            &key,
            &format!("-r {} -m -w 10 {words}", ep(rip(false, 1), 8080)),
        );
        let b = h.add_dest(&key, &format!("-r {} -m -w 1", ep(rip(false, 2), 8080)));
        let hops = establish_many(&mut h, false, secs(1), 1000, 5);
        assert_eq!(&hops[..4], &[rip(false, 1); 4], "{words}");
        assert_eq!(hops[4], rip(false, 2), "{words}: the fifth goes elsewhere");
        assert!(h.server(a).overloaded);
        let mut t = 2;
        for (k, port) in (1000..1004u16).enumerate() {
            // One of A's connections ends and expires.
            h.step(
                secs(t),
                &frames::tcp(&client(false, cip(false), port), RST, &[]),
            );
            t += 11;
            h.maintain(secs(t));
            let left = 3 - k as u32;
            assert_eq!(h.counts(a), (left, 0, 0), "{words}");
            let overloaded = left > free_at;
            assert_eq!(h.server(a).overloaded, overloaded, "{words}: at {left}");
            // A probe connection goes to A only once it is available again.
            let probe = client(false, cip(false), 2000 + port);
            let to = establish(&mut h, secs(t), &probe);
            let want = if overloaded {
                rip(false, 2)
            } else {
                rip(false, 1)
            };
            assert_eq!(to, want, "{words}: at {left}");
            if !overloaded {
                break;
            }
            // Undo the probe.
            h.step(secs(t), &frames::tcp(&probe, RST, &[]));
            t += 11;
            h.maintain(secs(t));
            assert_eq!(h.counts(b), (1, 0, 0), "{words}");
        }
    }
}

// ------------------------------------------------------------------ connection reuse

/// Runs the NAT close of BOTH_WAYS on `f` until TIME_WAIT.
fn nat_full_connection(h: &mut Harness, now: Instant, f: &Flow) -> IpAddr {
    let to = syn(h, now, f);
    let back = Flow {
        src: to,
        dst: f.src,
        sport: 8080,
        dport: f.sport,
    };
    for (side, flags) in [
        (S, SYN | ACK),
        (C, ACK),
        (C, FIN | ACK),
        (S, ACK),
        (S, FIN | ACK),
        (C, ACK),
    ] {
        let frame = match side {
            C => frames::tcp(f, flags, &[]),
            S => frames::tcp(&back, flags, &[]),
        };
        let (v, _) = h.step(now, &frame);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }
    to
}

#[test]
fn syn_on_time_wait_connection_is_rescheduled() {
    let (mut h, _, ids) = setup(false, "rr", "-m", 2);
    let f = client(false, cip(false), 40000);
    let a = nat_full_connection(&mut h, secs(1), &f);
    let old = h.flow(cip(false), 40000);
    assert_eq!(old.tcp_state(), TimeWait);
    let b = syn(&mut h, secs(5), &f);
    assert_ne!(b, a, "conn_reuse_mode 1: a new connection, scheduled anew");
    let new = h.flow(cip(false), 40000);
    assert_eq!(new.tcp_state(), SynRecv);
    let (ia, ib) = if rip(false, 1) == a {
        (ids[0], ids[1])
    } else {
        (ids[1], ids[0])
    };
    assert_eq!(h.counts(ia), (0, 0, 0), "the TIME_WAIT entry is gone");
    assert_eq!(h.counts(ib), (1, 0, 0));
    assert_eq!(
        h.svc_stats(&h.d.services().next().unwrap().1.spec().key)
            .conns,
        2
    );

    // conn_reuse_mode 0: the SYN moves the old entry back to SYN_RECV.
    let (mut h, _, _) = setup_with(
        Harness::with_config(|c| c.conn_reuse_mode = 0),
        false,
        "-s rr",
        "-m",
        2,
    );
    let a = nat_full_connection(&mut h, secs(1), &f);
    let id = h.flow(cip(false), 40000).id;
    assert_eq!(syn(&mut h, secs(5), &f), a);
    let c = h.flow(cip(false), 40000);
    assert_eq!((c.id, c.tcp_state()), (id, SynRecv));
}

#[test]
fn syn_on_fin_wait_dr_connection_needs_reuse_mode_bit_2() {
    for (mode, rescheduled) in [(1u8, false), (3, true)] {
        let (mut h, _, _) = setup_with(
            Harness::with_config(|c| c.conn_reuse_mode = mode),
            false,
            "-s rr",
            "-g",
            2,
        );
        let f = client(false, cip(false), 40000);
        let a = establish(&mut h, secs(1), &f);
        h.step(secs(2), &frames::tcp(&f, FIN | ACK, &[]));
        assert_eq!(h.flow(cip(false), 40000).tcp_state(), FinWait);
        let b = syn(&mut h, secs(3), &f);
        assert_eq!(b != a, rescheduled, "conn_reuse_mode {mode}");
    }
}

#[test]
fn syn_on_time_wait_of_a_persistent_connection_keeps_it() {
    // A connection a template controls is never rescheduled.
    let (mut h, _, _) = setup_with(Harness::new(), false, "-s rr -p 300", "-m", 2);
    let f = client(false, cip(false), 40000);
    let a = nat_full_connection(&mut h, secs(1), &f);
    let id = h.flow(cip(false), 40000).id;
    assert_eq!(syn(&mut h, secs(5), &f), a);
    assert_eq!(h.flow(cip(false), 40000).id, id);
}

// ------------------------------------------------------------------ FULLNAT local ends

/// A FULLNAT connection's local end depends on its client-side key alone (under the
/// table's seed), not on the connections opened before it: a burst's read-ahead reads
/// the out slot of that end before the SYNs ahead of it are processed. The ends are
/// unique, and spread over the local addresses.
#[test]
fn fullnat_local_end_depends_on_the_flow_alone() {
    let now = Instant::from_secs(1);
    for v6 in [false, true] {
        let second = match lip(v6) {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(a.to_bits() + 1)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(a.to_bits() + 1)),
        };
        let make = || {
            let (mut h, _, _) = setup(v6, "rr", "-b", 1);
            h.add_laddr(&second.to_string());
            h
        };
        let flows: Vec<Flow> = (0..48).map(|i| client(v6, cip(v6), 20000 + i)).collect();
        let (mut a, mut b) = (make(), make());
        for f in &flows {
            syn(&mut a, now, f);
        }
        for f in flows.iter().rev() {
            syn(&mut b, now, f);
        }
        let mut ends = std::collections::HashSet::new();
        for f in &flows {
            let (x, y) = (a.flow(f.src, f.sport), b.flow(f.src, f.sport));
            assert_eq!((x.laddr, x.lport), (y.laddr, y.lport), "{f:?}");
            assert!(x.lport >= 1024);
            assert!(ends.insert((x.laddr, x.lport)), "{f:?}: end taken twice");
        }
        for l in [lip(v6), second] {
            assert!(ends.iter().any(|e| e.0 == l), "{l} never used");
        }
    }
}

// ------------------------------------------------------------------ ports of port-zero and fwmark services

/// A NAT real server added without a port to a port-zero or fwmark service keeps the
/// packet's port (the kernel's `dest->port ? dest->port : vport`); before the fix the
/// director rewrote the destination port to 0.
#[test]
fn nat_server_of_port_zero_keeps_the_packet_port() {
    // fwmark, not persistent.
    let mut h = Harness::new();
    let key = h.add_service("-f 9 -s rr");
    h.add_dest(&key, &format!("-r {} -m", rip(false, 1)));
    let rx = Rx {
        iface: 0,
        fwmark: 9,
    };
    for (i, dport) in [80u16, 443].into_iter().enumerate() {
        let f = Flow {
            dport,
            ..client(false, cip(false), 1000 + i as u16)
        };
        let (v, out) = h.step_rx(secs(1), rx, &frames::tcp(&f, SYN, &[]));
        assert_eq!(next_hop(&v), rip(false, 1));
        assert_eq!(parse_frame(&out).ip.ports(), (f.sport, dport));
        // The reply comes back from that port and is matched.
        let r = Flow {
            src: rip(false, 1),
            dst: cip(false),
            sport: dport,
            dport: f.sport,
        };
        let (v, out) = h.step(secs(1), &frames::tcp(&r, SYN | ACK, &[]));
        assert_eq!(next_hop(&v), cip(false));
        assert_eq!(parse_frame(&out).ip.ports(), (dport, f.sport));
    }
    // Port zero, persistent; and a persistent service maps only its own port.
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr -p 60", ep(vip(false), 0)));
    h.add_dest(&key, &format!("-r {} -m", rip(false, 1)));
    let f = Flow {
        dport: 8443,
        ..client(false, cip(false), 1000)
    };
    let (_, out) = h.step(secs(1), &frames::tcp(&f, SYN, &[]));
    assert_eq!(parse_frame(&out).ip.ports(), (1000, 8443));
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    h.add_dest(&key, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    let (_, out) = h.step(
        secs(1),
        &frames::tcp(&client(false, cip(false), 1), SYN, &[]),
    );
    assert_eq!(parse_frame(&out).ip.ports(), (1, 8080));
}

/// Two NAT services sending the same client port to the same real server collide on
/// the real-server side key. The second connection cannot be stored; before the fix
/// the director evicted an unrelated embryonic connection trying to make room.
#[test]
fn duplicate_key_does_not_evict_a_bystander() {
    let mut h = Harness::new();
    let vip2: IpAddr = "203.0.113.11".parse().unwrap();
    let k1 = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    let k2 = h.add_service(&format!("-t {} -s rr", ep(vip2, 80)));
    h.add_dest(&k1, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    h.add_dest(&k2, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    let bystander = client(false, cip_far(false, 3), 9);
    syn(&mut h, secs(1), &bystander);
    let f = client(false, cip(false), 1000);
    establish(&mut h, secs(1), &f);
    let (v, _) = h.step(secs(2), &frames::tcp(&Flow { dst: vip2, ..f }, SYN, &[]));
    assert_eq!(v, Verdict::Drop(DropReason::KeyCollision));
    assert!(
        h.find_flow(bystander.src, bystander.sport).is_some(),
        "bystander kept"
    );
    assert_eq!(h.flows().len(), 2);
}

// ------------------------------------------------------------------ removed real servers

#[test]
fn removed_server_without_expire_nodest_conn_drops_its_packets() {
    let (mut h, key, ids) = setup(false, "rr", "-m", 2);
    let f = client(false, cip(false), 1000);
    let a = establish(&mut h, secs(1), &f);
    let (ia, ib) = if a == rip(false, 1) {
        (ids[0], ids[1])
    } else {
        (ids[1], ids[0])
    };
    h.d.delete_dest(&key, &a, 8080).unwrap();
    h.check();
    assert!(!h.d.service(&key).unwrap().members().contains(&ia));
    let (server, meta) = h.d.dest(ia).expect("kept in the trash while referenced");
    assert!(meta.removed);
    assert_eq!(server.active_conns, 1);
    // As the kernel: its packets are dropped both ways; the connection stays (its
    // timer not restarted) until it times out.
    let expires = h.flow(cip(false), 1000).expires;
    let (v, _) = h.step(secs(2), &frames::tcp(&f, PSH | ACK, REQUEST));
    assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
    let r = Flow {
        src: a,
        dst: cip(false),
        sport: 8080,
        dport: 1000,
    };
    let (v, _) = h.step(secs(2), &frames::tcp(&r, PSH | ACK, RESPONSE));
    assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(
        h.flow(cip(false), 1000).expires,
        expires,
        "timer not restarted"
    );
    assert_eq!(h.d.drops().get(DropReason::DestUnavailable), 2);
    // New connections go elsewhere.
    for to in open_many(&mut h, false, secs(3), 2000, 4) {
        assert_ne!(to, a);
    }
    assert_eq!(h.counts(ib), (4, 0, 0));
    // Re-added, it comes back from the trash with its connection and counts, and the
    // connection flows again.
    let back = h.add_dest(&key, &format!("-r {} -m -w 1", ep(a, 8080)));
    assert_eq!(back, ia, "the same slot");
    assert!(!h.d.dest(ia).unwrap().1.removed);
    assert_eq!(h.counts(ia), (1, 0, 0));
    let (v, _) = h.step(secs(4), &frames::tcp(&f, ACK, &[]));
    assert_eq!(next_hop(&v), a);
    // Removed again, its slot is freed with its last connection (here: at its timeout).
    h.d.delete_dest(&key, &a, 8080).unwrap();
    h.maintain(secs(4 + 900 + 1));
    assert!(h.find_flow(cip(false), 1000).is_none(), "timed out");
    assert!(h.d.dest(ia).is_none(), "slot freed");
}

#[test]
fn removed_server_with_expire_nodest_conn_drops_its_connections() {
    let (mut h, key, _) = setup_with(
        Harness::with_config(|c| c.expire_nodest_conn = true),
        false,
        "-s rr",
        "-m",
        2,
    );
    let f = client(false, cip(false), 1000);
    let a = establish(&mut h, secs(1), &f);
    let ia = h.flow(cip(false), 1000).dest;
    h.d.delete_dest(&key, &a, 8080).unwrap();
    h.check();
    let (v, _) = h.step(secs(2), &frames::tcp(&f, PSH | ACK, REQUEST));
    assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(h.d.drops().get(DropReason::DestUnavailable), 1);
    assert!(h.find_flow(cip(false), 1000).is_none(), "expired at once");
    assert!(h.d.dest(ia).is_none(), "the slot is freed with it");
    // The next segment belongs to nothing: a non-SYN goes to the host's stack.
    let (v, _) = h.step(secs(2), &frames::tcp(&f, ACK, &[]));
    assert_eq!(v, Verdict::Local);
    // A new connection goes to the remaining server.
    assert_ne!(syn(&mut h, secs(3), &f), a);
}

/// With expire_nodest_conn, a SYN or a UDP datagram of a connection whose server was
/// removed expires it and is scheduled anew at once (Linux >= 5.9), not dropped.
#[test]
fn removed_server_with_expire_nodest_conn_reschedules_what_opens() {
    let (mut h, key, _) = setup_with(
        Harness::with_config(|c| c.expire_nodest_conn = true),
        false,
        "-s rr",
        "-m",
        2,
    );
    let f = client(false, cip(false), 1000);
    let a = establish(&mut h, secs(1), &f);
    h.d.delete_dest(&key, &a, 8080).unwrap();
    let (v, _) = h.step(secs(2), &frames::tcp(&f, SYN, &[]));
    let to = next_hop(&v);
    assert_ne!(to, a, "rescheduled to the remaining server");
    assert_eq!(h.d.drops().get(DropReason::DestUnavailable), 0);
}

#[test]
fn deleted_service_connections() {
    for expire in [false, true] {
        let (mut h, key, _) = setup_with(
            Harness::with_config(|c| c.expire_nodest_conn = expire),
            false,
            "-s rr",
            "-m",
            2,
        );
        let f = client(false, cip(false), 1000);
        let a = establish(&mut h, secs(1), &f);
        let id = h.flow(cip(false), 1000).dest;
        h.d.delete_service(&key).unwrap();
        h.check();
        assert!(h.d.service(&key).is_none());
        assert_eq!(h.d.services().count(), 0);
        let (v, _) = h.step(secs(2), &frames::tcp(&f, PSH | ACK, REQUEST));
        if expire {
            assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
            assert!(h.flows().is_empty());
            assert!(h.d.dest(id).is_none());
        } else {
            // As the kernel: dropped, the connection left to time out.
            assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
            let _ = a;
            assert_eq!(h.flows().len(), 1);
            assert!(h.d.dest(id).is_some(), "in the trash while referenced");
        }
        // No service: a new SYN is the host's.
        let (v, _) = h.step(
            secs(3),
            &frames::tcp(&client(false, cip(false), 2000), SYN, &[]),
        );
        assert_eq!(v, Verdict::Local);
        // The real server slots without connections are freed already.
        let slots = (0..32).filter(|&i| h.d.dest(i).is_some()).count();
        assert_eq!(slots, usize::from(!expire));
    }
}

/// A service deleted while connections remain, then another service in the same slot:
/// the old connections must not count as the new service's, and a real server of the
/// new service must not be "revived" from the old service's trash.
#[test]
fn deleted_service_slot_reused_by_another_service() {
    let (mut h, key, _) = setup(false, "rr", "-m", 1);
    let f = client(false, cip(false), 1000);
    establish(&mut h, secs(1), &f);
    let old = h.flow(cip(false), 1000).dest;
    h.d.delete_service(&key).unwrap();
    let vip2: IpAddr = "203.0.113.11".parse().unwrap();
    let k2 = h.add_service(&format!("-t {} -s rr", ep(vip2, 80)));
    let new = h.add_dest(&k2, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    assert_ne!(new, old, "not revived from another service's trash");
    assert_eq!(h.counts(new), (0, 0, 0));
    assert!(h.d.dest(old).unwrap().1.removed);
    // Traffic of the old connection: dropped (its server left with its service), and
    // not counted as the new service's.
    let (v, _) = h.step(secs(2), &frames::tcp(&f, PSH | ACK, REQUEST));
    assert_eq!(v, Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(
        h.svc_stats(&k2),
        Counters::ZERO,
        "not the new service's traffic"
    );
    // The new service works on its own.
    let g = Flow {
        dst: vip2,
        ..client(false, cip(false), 2000)
    };
    assert_eq!(syn(&mut h, secs(3), &g), rip(false, 1));
    assert_eq!(h.counts(new), (1, 0, 0));
    assert_eq!(h.svc_stats(&k2).conns, 1);
}

// ------------------------------------------------------------------ table pressure

#[test]
fn syn_flood_on_a_full_table() {
    let caps = Caps {
        conns_v4: 64,
        ..Caps::default()
    };
    let mut h = Harness::with(caps, config());
    let key = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    for i in 1..=2 {
        h.add_dest(&key, &format!("-r {} -m", ep(rip(false, i), 8080)));
    }
    let legit: Vec<Flow> = (0..8)
        .map(|i| client(false, cip(false), 1000 + i))
        .collect();
    for f in &legit {
        establish(&mut h, secs(1), f);
    }
    // 500 spoofed SYNs: each admitted by evicting a half-open one.
    for i in 0..500u32 {
        let f = Flow {
            src: IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i)),
            ..client(false, cip(false), 20000 + (i % 1000) as u16)
        };
        let now = Instant::from_millis(2000 + u64::from(i));
        let (v, _) = h.step(now, &frames::tcp(&f, SYN, &[]));
        assert!(matches!(v, Verdict::Forward { .. }), "SYN {i}: {v:?}");
    }
    assert_eq!(h.d.conns_v4().len(), 64, "full");
    assert_eq!(h.d.drops().get(DropReason::TableFull), 0);
    let embryonic = h
        .flows()
        .iter()
        .filter(|c| c.tcp_state() == SynRecv)
        .count();
    assert_eq!(embryonic, 56);
    // The established connections survived and still work.
    for f in &legit {
        assert_eq!(h.flow(f.src, f.sport).tcp_state(), Established);
        let (v, _) = h.step(secs(3), &frames::tcp(f, PSH | ACK, REQUEST));
        assert!(matches!(v, Verdict::Forward { .. }));
    }
    // Every half-open one completes: nothing left to evict.
    for c in h.flows() {
        if c.tcp_state() == SynRecv {
            let f = client(false, c.caddr, c.cport);
            h.step(secs(3), &frames::tcp(&f, ACK, &[]));
        }
    }
    assert!(h.flows().iter().all(|c| c.tcp_state() == Established));
    let (v, _) = h.step(
        secs(4),
        &frames::tcp(&client(false, cip(false), 3000), SYN, &[]),
    );
    assert_eq!(v, Verdict::Drop(DropReason::TableFull));
    assert_eq!(h.d.drops().get(DropReason::TableFull), 1);
    for f in &legit {
        let (v, _) = h.step(secs(4), &frames::tcp(f, ACK, &[]));
        assert!(matches!(v, Verdict::Forward { .. }));
    }
    // Once some expire, new connections are admitted again.
    h.step(secs(5), &frames::tcp(&legit[0], RST, &[]));
    h.maintain(secs(16));
    assert_eq!(h.d.conns_v4().len(), 63);
    syn(&mut h, secs(16), &client(false, cip(false), 3000));
}

#[test]
fn templates_and_expired_entries_under_pressure() {
    // A persistent service on a tiny table: templates are never victims; an expired
    // entry is taken first.
    let caps = Caps {
        conns_v4: 8,
        ..Caps::default()
    };
    let mut h = Harness::with(caps, config());
    let key = h.add_service(&format!("-t {} -s rr -p 300", ep(vip(false), 80)));
    h.add_dest(&key, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    // 4 clients: 4 templates + 4 half-open connections.
    for n in 0..4 {
        syn(&mut h, secs(1), &client(false, cip_near(false, n), 1000));
    }
    assert_eq!(h.d.conns_v4().len(), 8);
    // A fifth client needs a template and a connection: the template evicts a half-open
    // connection, the connection another.
    syn(&mut h, secs(2), &client(false, cip_near(false, 9), 1000));
    assert_eq!(h.templates().len(), 5);
    assert_eq!(h.flows().len(), 3);
}

// ------------------------------------------------------------------ ICMP errors

#[test]
fn icmp_port_unreachable_from_a_nat_real_server_reaches_the_client() {
    for (m, v6) in [("-m", false), ("-m", true), ("-b", false), ("-b", true)] {
        let ctx = format!("{m} v6={v6}");
        let mut h = Harness::new();
        if m == "-b" {
            h.add_laddr(&lip(v6).to_string());
        }
        let key = h.add_service(&format!("-u {} -s rr", ep(vip(v6), 53)));
        let rs = h.add_dest(&key, &format!("-r {} {m}", ep(rip(v6, 1), 5353)));
        let f = Flow {
            dport: 53,
            ..client(v6, cip(v6), 33000)
        };
        let (_, forwarded) = h.step(secs(1), &frames::udp(&f, b"query"));
        // The real server answers the forwarded datagram with "port unreachable".
        let sent = parse_frame(&forwarded).ip;
        let err = frames::icmp_error(rip(v6, 1), sent.src, IcmpError::PortUnreachable, &forwarded);
        let (v, out) = h.step(secs(2), &err);
        assert_eq!(next_hop(&v), cip(v6), "{ctx}");
        let o = parse_frame(&out).ip;
        assert_eq!((o.src, o.dst), (vip(v6), cip(v6)), "{ctx}: outer");
        let L4::Icmp {
            ty, code, quote, ..
        } = &o.l4
        else {
            panic!("{ctx}: {o:?}")
        };
        assert_eq!((*ty, *code), if v6 { (1, 4) } else { (3, 3) }, "{ctx}");
        let q = quote.as_ref().unwrap();
        assert_eq!((q.src, q.sport), (cip(v6), 33000), "{ctx}: quoted source");
        assert_eq!((q.dst, q.dport), (vip(v6), 53), "{ctx}: quoted destination");
        if v6 {
            assert_eq!(q.l4_checksum_ok, Some(true), "{ctx}: quoted UDP checksum");
        }
        let st = h.dest_stats(rs);
        assert_eq!(
            (st.inpkts, st.outpkts),
            (1, 1),
            "{ctx}: the error is counted out"
        );
    }
}

#[test]
fn icmp_frag_needed_from_the_client_side_reaches_the_real_server() {
    for (m, v6) in [
        ("-m", false),
        ("-m", true),
        ("-b", false),
        ("-g", false),
        ("-g", true),
        ("-i", false),
        ("-i", true),
    ] {
        let ctx = format!("{m} v6={v6}");
        let (mut h, _, _) = setup(v6, "rr", m, 1);
        let f = client(v6, cip(v6), 40000);
        establish(&mut h, secs(1), &f);
        // What the client side saw from the service (a reply from VIP:80), too big for
        // a router on the way, which tells the VIP.
        let reply = frames::tcp(&f.reversed(), PSH | ACK, &[0x55; 1400]);
        let router = if v6 {
            "2001:db8:c::1".parse().unwrap()
        } else {
            "198.51.100.1".parse().unwrap()
        };
        let err = frames::icmp_error(router, vip(v6), IcmpError::FragNeeded(1280), &reply);
        let (v, out) = h.step(secs(2), &err);
        assert_eq!(next_hop(&v), rip(v6, 1), "{ctx}");
        let o = parse_frame(&out).ip;
        let icmp = match method_of(m) {
            Method::Tunnel => {
                assert_eq!((o.src, o.dst), (tun_src(v6), rip(v6, 1)), "{ctx}: tunnel");
                assert_eq!(o.inner().bytes, frames::ip_of(&err), "{ctx}: inner intact");
                continue;
            }
            Method::DirectRoute => {
                assert_eq!(out, err, "{ctx}: DR forwards it as is");
                continue;
            }
            _ => o,
        };
        assert_eq!(icmp.dst, rip(v6, 1), "{ctx}: outer destination");
        let L4::Icmp {
            ty, rest, quote, ..
        } = &icmp.l4
        else {
            panic!("{ctx}")
        };
        assert_eq!(*ty, if v6 { 2 } else { 3 }, "{ctx}");
        assert_eq!(*rest & 0xffff, 1280, "{ctx}: MTU kept");
        let q = quote.as_ref().unwrap();
        assert_eq!((q.src, q.sport), (rip(v6, 1), 8080), "{ctx}: quoted source");
        let conn = h.flow(cip(v6), 40000);
        assert_eq!(
            (q.dst, q.dport),
            (conn.laddr, conn.lport),
            "{ctx}: quoted destination"
        );
        if method_of(m) == Method::FullNat {
            assert_eq!(icmp.src, lip(v6), "{ctx}: FULLNAT outer source");
        }
    }
}

#[test]
fn icmp_that_quotes_no_connection_is_local() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let stray = frames::udp(&client(false, cip(false), 1), b"x");
    let err = frames::icmp_error(
        rip(false, 1),
        cip(false),
        IcmpError::PortUnreachable,
        &stray,
    );
    assert_eq!(h.step(secs(1), &err).0, Verdict::Local);
    let err = frames::icmp_error(cip(false), vip(false), IcmpError::TimeExceeded, &stray);
    assert_eq!(h.step(secs(1), &err).0, Verdict::Local);
    assert_eq!(h.d.drops().total(), 0);
}

#[test]
fn tunnel_too_big_with_df_is_answered_with_frag_needed() {
    for v6 in [false, true] {
        let (mut h, _, _) = setup(v6, "rr", "-i", 1);
        let f = client(v6, cip(v6), 40000);
        establish(&mut h, secs(1), &f);
        let hdr = if v6 { 60 } else { 40 };
        let big = frames::tcp(&f, PSH | ACK, &vec![0xab; 1500 - hdr]);
        assert_eq!(frames::ip_of(&big).len(), 1500);
        let (v, out) = h.step(secs(2), &big);
        assert!(matches!(v, Verdict::Reply { .. }), "v6={v6}: {v:?}");
        let o = parse_frame(&out);
        assert_eq!(
            (o.dst_mac, o.src_mac),
            (CLIENT_MAC, DIRECTOR_MAC),
            "swapped"
        );
        assert_eq!((o.ip.src, o.ip.dst), (vip(v6), cip(v6)));
        let L4::Icmp {
            ty,
            code,
            rest,
            quote,
            ..
        } = &o.ip.l4
        else {
            panic!("{o:?}")
        };
        let outer = if v6 { 40 } else { 20 };
        if v6 {
            assert_eq!((*ty, *code, *rest), (2, 0, 1500 - outer));
        } else {
            assert_eq!((*ty, *code, *rest & 0xffff), (3, 4, 1500 - outer));
        }
        let q = quote.as_ref().unwrap();
        assert_eq!(
            (q.src, q.sport, q.dst, q.dport),
            (cip(v6), 40000, vip(v6), 80)
        );
        assert_eq!(h.d.drops().get(DropReason::TooBig), 1);
        // One byte less fits.
        let fits = frames::tcp(&f, PSH | ACK, &vec![0xab; 1500 - hdr - outer as usize]);
        let (v, _) = h.step(secs(3), &fits);
        assert_eq!(next_hop(&v), rip(v6, 1));
    }
    // IPv4 without DF: the kernel would fragment; this director drops.
    let (mut h, _, _) = setup(false, "rr", "-i", 1);
    let f = client(false, cip(false), 40000);
    establish(&mut h, secs(1), &f);
    let mut big = frames::tcp(&f, PSH | ACK, &[0xab; 1460]);
    frames::modify_ipv4(&mut big, |p| p.set_dont_frag(false));
    assert_eq!(h.step(secs(2), &big).0, Verdict::Drop(DropReason::TooBig));
}

// ------------------------------------------------------------------ service kinds

#[test]
fn one_packet_udp_leaves_no_connection() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-u {} -s rr -o", ep(vip(false), 53)));
    for i in 1..=2 {
        h.add_dest(&key, &format!("-r {} -m", ep(rip(false, i), 5353)));
    }
    let f = Flow {
        dport: 53,
        ..client(false, cip(false), 33000)
    };
    let mut hops = Vec::new();
    for i in 0..4 {
        let (v, out) = h.step(secs(1 + i), &frames::udp(&f, b"q"));
        hops.push(next_hop(&v));
        assert_eq!(parse_frame(&out).ip.ports(), (33000, 5353));
        assert!(h.flows().is_empty(), "no connection left");
    }
    assert_eq!(hops[0], hops[2]);
    assert_ne!(hops[0], hops[1], "each datagram scheduled on its own");
    assert_eq!(h.svc_stats(&key).conns, 4);
    assert_eq!(h.svc_stats(&key).inpkts, 4);
    // TCP is unaffected by -o.
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr -o", ep(vip(false), 80)));
    h.add_dest(&key, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    syn(&mut h, secs(1), &client(false, cip(false), 1));
    assert_eq!(h.flows().len(), 1);
}

#[test]
fn fwmark_service_matches_marked_packets() {
    for v6 in [false, true] {
        let mut h = Harness::new();
        let key = h.add_service(if v6 { "-f 7 -6 -s rr" } else { "-f 7 -s rr" });
        let rs = h.add_dest(&key, &format!("-r {} -m", ep(rip(v6, 1), 8080)));
        let f = client(v6, cip(v6), 1000);
        // Unmarked: not a service of ours (the VIP has no address service).
        assert_eq!(
            h.step(secs(1), &frames::tcp(&f, SYN, &[])).0,
            Verdict::Local
        );
        let (v, out) = h.step_rx(
            secs(1),
            Rx {
                iface: 0,
                fwmark: 7,
            },
            &frames::tcp(&f, SYN, &[]),
        );
        assert_eq!(next_hop(&v), rip(v6, 1));
        assert_eq!(parse_frame(&out).ip.ports(), (1000, 8080));
        assert_eq!(h.counts(rs), (1, 0, 0));
        // Another mark, or the other family's mark: not ours.
        let g = client(v6, cip(v6), 1001);
        let (v, _) = h.step_rx(
            secs(1),
            Rx {
                iface: 0,
                fwmark: 8,
            },
            &frames::tcp(&g, SYN, &[]),
        );
        assert_eq!(v, Verdict::Local);
        let g = client(!v6, cip(!v6), 1001);
        let (v, _) = h.step_rx(
            secs(1),
            Rx {
                iface: 0,
                fwmark: 7,
            },
            &frames::tcp(&g, SYN, &[]),
        );
        assert_eq!(v, Verdict::Local);
        // The connection, once made, needs no mark.
        let (v, _) = h.step(secs(2), &frames::tcp(&f, ACK, &[]));
        assert_eq!(next_hop(&v), rip(v6, 1));
    }
}

#[test]
fn fwmark_service_wins_over_an_address_service() {
    let mut h = Harness::new();
    let ka = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    h.add_dest(&ka, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    let kf = h.add_service("-f 3 -s rr");
    h.add_dest(&kf, &format!("-r {} -m", ep(rip(false, 2), 8080)));
    let rx = Rx {
        iface: 1,
        fwmark: 3,
    };
    let (v, _) = h.step_rx(
        secs(1),
        rx,
        &frames::tcp(&client(false, cip(false), 1), SYN, &[]),
    );
    assert_eq!(next_hop(&v), rip(false, 2));
    let (v, _) = h.step(
        secs(1),
        &frames::tcp(&client(false, cip(false), 2), SYN, &[]),
    );
    assert_eq!(next_hop(&v), rip(false, 1));
}

// ------------------------------------------------------------------ not ours, and bad input

#[test]
fn frames_that_are_not_for_a_service_are_local() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let arp = frames::ethernet_with(CLIENT_MAC, [0xff; 6], 0x0806, &[0u8; 28]);
    let f = client(false, cip(false), 1000);
    let elsewhere = Flow {
        dst: "203.0.113.99".parse().unwrap(),
        ..f
    };
    let other_port = Flow { dport: 81, ..f };
    let echo = {
        let mut m = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
        let c = !m
            .chunks(2)
            .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
        m[2..4].copy_from_slice(&(c as u16).to_be_bytes());
        frames::ethernet(&frames::ip_packet(cip(false), vip(false), 1, &m))
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ARP", arp),
        (
            "TCP ACK with no connection to the VIP",
            frames::tcp(&f, ACK, b"x"),
        ),
        (
            "TCP FIN with no connection",
            frames::tcp(&f, FIN | ACK, &[]),
        ),
        ("TCP RST with no connection", frames::tcp(&f, RST, &[])),
        ("SYN|ACK to the VIP", frames::tcp(&f, SYN | ACK, &[])),
        ("SYN to another address", frames::tcp(&elsewhere, SYN, &[])),
        ("SYN to another port", frames::tcp(&other_port, SYN, &[])),
        ("UDP to a TCP service", frames::udp(&f, b"x")),
        ("ICMP echo to the VIP", echo),
        (
            "GRE to the VIP",
            frames::ethernet(&frames::ip_packet(cip(false), vip(false), 47, &[0; 8])),
        ),
    ];
    for (name, frame) in cases {
        let (v, out) = h.step(secs(1), &frame);
        assert_eq!(v, Verdict::Local, "{name}");
        assert_eq!(out, frame, "{name}: untouched");
    }
    assert!(h.flows().is_empty());
    assert_eq!(h.d.drops().total(), 0);
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let f = client(false, cip(false), 1000);
    let good = frames::tcp(&f, SYN, b"payload");
    let good6 = frames::tcp(&client(true, cip(true), 1000), SYN, b"payload");
    let with = |base: &[u8], edit: &dyn Fn(&mut Vec<u8>)| {
        let mut v = base.to_vec();
        edit(&mut v);
        v
    };
    let refill = |v: &mut Vec<u8>| {
        frames::modify_ipv4(v, |_| {});
    };
    let (IpAddr::V6(s6), IpAddr::V6(d6)) = (cip(true), vip(true)) else {
        unreachable!()
    };
    let long_chain: Vec<(u8, Vec<u8>)> = (0..9).map(|_| (60u8, vec![0u8; 6])).collect();
    let seg = frames::tcp_segment(cip(true), vip(true), 1000, 80, SYN, &[]);
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        ("short Ethernet", good[..10].to_vec(), DropReason::Truncated),
        (
            "short IPv4 header",
            good[..14 + 12].to_vec(),
            DropReason::Truncated,
        ),
        (
            "IPv4 version 5",
            with(&good, &|v| {
                v[14] = 0x55;
                refill(v)
            }),
            DropReason::BadHeader,
        ),
        (
            "IPv4 IHL 4",
            with(&good, &|v| {
                v[14] = 0x44;
            }),
            DropReason::BadHeader,
        ),
        (
            "IPv4 total length beyond the frame",
            with(&good, &|v| {
                frames::modify_ipv4(v, |p| p.set_total_len(200));
            }),
            DropReason::Truncated,
        ),
        (
            "IPv4 total length below the header",
            with(&good, &|v| {
                frames::modify_ipv4(v, |p| p.set_total_len(16));
            }),
            DropReason::BadHeader,
        ),
        (
            "IPv4 header checksum",
            with(&good, &|v| v[14 + 10] ^= 0xff),
            DropReason::BadChecksum,
        ),
        (
            "TCP cut short",
            with(&good, &|v| {
                frames::modify_ipv4(v, |p| p.set_total_len(20 + 12));
                v.truncate(14 + 32);
            }),
            DropReason::Truncated,
        ),
        (
            "TCP data offset 4",
            with(&good, &|v| v[14 + 20 + 12] = 0x40),
            DropReason::BadHeader,
        ),
        (
            "TCP data offset beyond the segment",
            with(&good, &|v| v[14 + 20 + 12] = 0xf0),
            DropReason::Truncated,
        ),
        (
            "UDP length beyond the datagram",
            with(&frames::udp(&f, b"abc"), &|v| {
                v[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&[0, 99])
            }),
            DropReason::Truncated,
        ),
        (
            "IPv6 payload length beyond the frame",
            with(&good6, &|v| {
                v[14 + 4..14 + 6].copy_from_slice(&[0x05, 0xdc])
            }),
            DropReason::Truncated,
        ),
        (
            "short IPv6 header",
            good6[..14 + 30].to_vec(),
            DropReason::Truncated,
        ),
        (
            "IPv6 extension chain too long",
            frames::ethernet(&frames::ipv6_with_ext(s6, d6, &long_chain, 6, &seg)),
            DropReason::BadHeader,
        ),
    ];
    let mut want = [0u64; DropReason::COUNT];
    for (name, frame, reason) in &cases {
        let (v, _) = h.step(secs(1), frame);
        assert_eq!(v, Verdict::Drop(*reason), "{name}");
        assert!(reason.is_malformed(), "{name}");
        want[*reason as usize] += 1;
    }
    for (r, n) in h.d.drops().iter() {
        assert_eq!(n, want[r as usize], "{r}");
    }
    assert_eq!(h.d.drops().total(), cases.len() as u64);
    assert!(h.flows().is_empty());
    assert_eq!(*h.d.totals(), Counters::ZERO, "nothing counted as traffic");
}

#[test]
fn fragments_to_a_vip_are_dropped() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let (IpAddr::V4(c), IpAddr::V4(v)) = (cip(false), vip(false)) else {
        unreachable!()
    };
    let seg = frames::tcp_segment(cip(false), vip(false), 1000, 80, SYN, &[0u8; 64]);
    let first = frames::ethernet(&frames::ipv4_fragment(c, v, 6, 7, 0, true, &seg[..48]));
    let later = frames::ethernet(&frames::ipv4_fragment(c, v, 6, 7, 48, false, &seg[48..]));
    let (IpAddr::V6(c6), IpAddr::V6(v6)) = (cip(true), vip(true)) else {
        unreachable!()
    };
    let seg6 = frames::tcp_segment(cip(true), vip(true), 1000, 80, SYN, &[0u8; 64]);
    let first6 = frames::ethernet(&frames::ipv6_with_ext(
        c6,
        v6,
        &[(44, frames::ipv6_fragment_body(0, true, 9))],
        6,
        &seg6[..48],
    ));
    let later6 = frames::ethernet(&frames::ipv6_with_ext(
        c6,
        v6,
        &[(44, frames::ipv6_fragment_body(48, false, 9))],
        6,
        &seg6[48..],
    ));
    let key6 = h.add_service(&format!("-t {} -s rr", ep(vip(true), 80)));
    h.add_dest(&key6, &format!("-r {} -m", ep(rip(true, 1), 8080)));
    for (name, frame) in [
        ("first", first),
        ("later", later),
        ("first v6", first6),
        ("later v6", later6),
    ] {
        assert_eq!(
            h.step(secs(1), &frame).0,
            Verdict::Drop(DropReason::Fragment),
            "{name}"
        );
    }
    assert_eq!(h.d.drops().get(DropReason::Fragment), 4);
    assert!(h.flows().is_empty());
    // A fragment to another address is not ours.
    let other: Ipv4Addr = "203.0.113.99".parse().unwrap();
    let f = frames::ethernet(&frames::ipv4_fragment(
        c,
        other,
        6,
        7,
        48,
        false,
        &seg[48..],
    ));
    assert_eq!(h.step(secs(1), &f).0, Verdict::Local);
}

// ------------------------------------------------------------------ control calls

#[test]
fn zero_clears_counters() {
    let mut h = Harness::new();
    let k1 = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    let d1 = h.add_dest(&k1, &format!("-r {} -m", ep(rip(false, 1), 8080)));
    let k2 = h.add_service(&format!("-t {} -s rr", ep(vip(false), 443)));
    let d2 = h.add_dest(&k2, &format!("-r {} -m", ep(rip(false, 2), 8443)));
    establish(&mut h, secs(1), &client(false, cip(false), 1));
    let g = Flow {
        dport: 443,
        ..client(false, cip(false), 2)
    };
    establish(&mut h, secs(1), &g);
    h.step(
        secs(1),
        &frames::tcp(&client(false, cip(false), 3), 0x10, &[0; 4])[..20],
    );
    assert_eq!(h.d.drops().total(), 1);
    h.d.zero(Some(&k1)).unwrap();
    assert_eq!(h.svc_stats(&k1), Counters::ZERO);
    assert_eq!(h.dest_stats(d1), Counters::ZERO);
    assert_eq!(h.svc_stats(&k2).conns, 1, "another service untouched");
    assert_eq!(h.dest_stats(d2).inpkts, 2);
    assert_eq!(
        h.d.totals().conns,
        2,
        "totals untouched by one service's zero"
    );
    assert_eq!(
        h.counts(d1),
        (1, 0, 0),
        "connection counts are not counters"
    );
    h.d.zero(None).unwrap();
    assert_eq!(h.svc_stats(&k2), Counters::ZERO);
    assert_eq!(h.dest_stats(d2), Counters::ZERO);
    assert_eq!(*h.d.totals(), Counters::ZERO);
    assert_eq!(h.d.drops().total(), 0);
    let missing = ServiceKey::Addr {
        proto: Proto::Udp,
        addr: vip(false),
        port: 1,
    };
    assert!(h.d.zero(Some(&missing)).is_err());
    // Counting resumes.
    let (v, _) = h.step(
        secs(2),
        &frames::tcp(&client(false, cip(false), 1), ACK, &[]),
    );
    assert_eq!(next_hop(&v), rip(false, 1));
    assert_eq!(h.dest_stats(d1).inpkts, 1);
}

#[test]
fn set_timeouts_changes_expiry() {
    let mut h = Harness::new();
    let kt = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    h.add_dest(&kt, &format!("-r {} -g", rip(false, 1)));
    let ku = h.add_service(&format!("-u {} -s rr", ep(vip(false), 53)));
    h.add_dest(&ku, &format!("-r {} -g", rip(false, 1)));
    let early = client(false, cip(false), 999);
    establish(&mut h, secs(1), &early);
    assert_eq!(
        h.flow(cip(false), 999).expires,
        secs(1) + Duration::from_secs(900)
    );
    h.d.set_timeouts(
        Duration::from_secs(100),
        Duration::from_secs(30),
        Duration::from_secs(10),
    );
    assert_eq!(
        h.d.config().timeouts.get(),
        (
            Duration::from_secs(100),
            Duration::from_secs(30),
            Duration::from_secs(10)
        )
    );
    // Zero leaves a value.
    h.d.set_timeouts(Duration::ZERO, Duration::ZERO, Duration::from_secs(12));
    assert_eq!(h.d.config().timeouts.get().0, Duration::from_secs(100));
    assert_eq!(
        h.flow(cip(false), 999).expires,
        secs(901),
        "existing: until its next packet"
    );
    let f = client(false, cip(false), 1000);
    establish(&mut h, secs(2), &f);
    assert_eq!(h.flow(cip(false), 1000).expires, secs(102));
    h.step(secs(3), &frames::tcp(&f, FIN | ACK, &[]));
    assert_eq!(
        h.flow(cip(false), 1000).expires,
        secs(33),
        "FIN_WAIT takes tcpfin"
    );
    let u = Flow {
        dport: 53,
        ..client(false, cip(false), 2000)
    };
    h.step(secs(4), &frames::udp(&u, b"q"));
    assert_eq!(h.flow(cip(false), 2000).expires, secs(16));
    h.maintain(secs(15));
    assert!(h.find_flow(cip(false), 2000).is_some());
    h.maintain(secs(16));
    assert!(h.find_flow(cip(false), 2000).is_none());
    h.maintain(secs(33));
    assert!(h.find_flow(cip(false), 1000).is_none());
    h.step(secs(40), &frames::tcp(&early, ACK, &[]));
    assert_eq!(
        h.flow(cip(false), 999).expires,
        secs(140),
        "re-armed with the new value"
    );
}

#[test]
fn edit_service_to_another_scheduler_keeps_connections() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    h.add_dest(&key, &format!("-r {} -m -w 1", ep(rip(false, 1), 8080)));
    h.add_dest(&key, &format!("-r {} -m -w 3", ep(rip(false, 2), 8080)));
    let olds: Vec<(Flow, IpAddr)> = (0..4)
        .map(|i| {
            let f = client(false, cip(false), 1000 + i);
            (f, establish(&mut h, secs(1), &f))
        })
        .collect();
    assert_eq!(
        tally(&olds.iter().map(|x| x.1).collect::<Vec<_>>(), false, 2),
        [2, 2]
    );
    for sched in ["wrr", "mh", "lblc", "lblcr", "sh", "wlc", "rr"] {
        let mut spec = service_spec(&format!("-t {} -s {sched}", ep(vip(false), 80)));
        spec.flags.fallback = true;
        h.d.edit_service(spec)
            .unwrap_or_else(|e| panic!("{sched}: {e}"));
        h.check();
        assert_eq!(h.d.service(&key).unwrap().spec().sched.name(), sched);
        for (f, to) in &olds {
            let (v, _) = h.step(secs(2), &frames::tcp(f, ACK, b"x"));
            assert_eq!(next_hop(&v), *to, "{sched}: existing connection kept");
        }
    }
    // wrr with weights 1:3 over new connections.
    let spec = service_spec(&format!("-t {} -s wrr", ep(vip(false), 80)));
    h.d.edit_service(spec).unwrap();
    let hops = open_many(&mut h, false, secs(3), 5000, 8);
    assert_eq!(tally(&hops, false, 2), [2, 6]);
    assert_eq!(h.svc_stats(&key).conns, 12);
}

#[test]
fn control_errors() {
    let mut h = Harness::new();
    let key = h.add_service(&format!("-t {} -s rr", ep(vip(false), 80)));
    use lvs_core::director::ControlError as E;
    let spec = service_spec(&format!("-t {} -s rr", ep(vip(false), 80)));
    assert_eq!(h.d.add_service(spec, secs(0)), Err(E::ServiceExists));
    let spec = service_spec(&format!("-t {} -s rr", ep(vip(false), 0)));
    assert_eq!(
        h.d.add_service(spec, secs(0)),
        Err(E::Invalid),
        "port 0 needs -p"
    );
    let d = dest_spec(&format!("-r {} -m", ep(rip(true, 1), 80)), 80);
    assert_eq!(h.d.add_dest(&key, d, secs(0)), Err(E::FamilyMismatch));
    let d = dest_spec(&format!("-r {} -b", ep(rip(false, 1), 80)), 80);
    assert_eq!(h.d.add_dest(&key, d, secs(0)), Err(E::NoLocalAddress));
    let d = dest_spec(&format!("-r {} -m -w 70000", ep(rip(false, 1), 80)), 80);
    assert_eq!(h.d.add_dest(&key, d, secs(0)), Err(E::Invalid));
    h.add_dest(&key, &format!("-r {} -m", ep(rip(false, 1), 80)));
    let d = dest_spec(&format!("-r {} -m", ep(rip(false, 1), 80)), 80);
    assert_eq!(h.d.add_dest(&key, d, secs(0)), Err(E::DestExists));
    assert_eq!(h.d.delete_dest(&key, &rip(false, 2), 80), Err(E::NoDest));
    let other = ServiceKey::Addr {
        proto: Proto::Tcp,
        addr: vip(false),
        port: 81,
    };
    assert_eq!(h.d.delete_service(&other), Err(E::NoService));
    h.d.clear();
    assert_eq!(h.d.services().count(), 0);
    h.check();
}

// ------------------------------------------------------------------ header variants, TCP modes, rates

#[test]
fn ipv4_options_and_ipv6_extension_headers_through_nat() {
    let (mut h, _, _) = setup(false, "rr", "-m", 1);
    let (IpAddr::V4(c), IpAddr::V4(v)) = (cip(false), vip(false)) else {
        unreachable!()
    };
    let seg = frames::tcp_segment(cip(false), vip(false), 1000, 80, SYN, b"opt");
    // Record route, 3 slots.
    let frame = frames::ethernet(&frames::ipv4_with_options(
        c,
        v,
        6,
        &[7, 15, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &seg,
    ));
    let (verdict, out) = h.step(secs(1), &frame);
    assert_eq!(next_hop(&verdict), rip(false, 1));
    let o = parse_frame(&out).ip;
    assert_eq!(
        (o.dst, o.ports(), o.payload()),
        (rip(false, 1), (1000, 8080), &b"opt"[..])
    );
    assert_eq!(o.total_len, frames::ip_of(&frame).len());

    let (mut h, _, _) = setup(true, "rr", "-m", 1);
    let (IpAddr::V6(c), IpAddr::V6(v)) = (cip(true), vip(true)) else {
        unreachable!()
    };
    let seg = frames::tcp_segment(cip(true), vip(true), 1000, 80, SYN, b"ext");
    let frame = frames::ethernet(&frames::ipv6_with_ext(
        c,
        v,
        &[(0, vec![]), (60, vec![0; 10])],
        6,
        &seg,
    ));
    let (verdict, out) = h.step(secs(1), &frame);
    assert_eq!(next_hop(&verdict), rip(true, 1));
    let o = parse_frame(&out).ip;
    assert_eq!(
        (o.dst, o.ports(), o.payload()),
        (rip(true, 1), (1000, 8080), &b"ext"[..])
    );
}

#[test]
fn secure_tcp_needs_the_server_to_establish() {
    for secure in [false, true] {
        let (mut h, _, _) = setup_with(
            Harness::with_config(|c| c.secure_tcp = secure),
            false,
            "-s rr",
            "-m",
            1,
        );
        let f = client(false, cip(false), 1000);
        establish(&mut h, secs(1), &f);
        let want = if secure { SynRecv } else { Established };
        assert_eq!(
            h.flow(cip(false), 1000).tcp_state(),
            want,
            "secure_tcp={secure}"
        );
    }
}

#[test]
fn sloppy_tcp_opens_on_any_segment_but_rst() {
    let (mut h, _, _) = setup_with(
        Harness::with_config(|c| c.sloppy_tcp = true),
        false,
        "-s rr",
        "-m",
        1,
    );
    let f = client(false, cip(false), 1000);
    let (v, _) = h.step(secs(1), &frames::tcp(&f, ACK, b"mid-stream"));
    assert_eq!(next_hop(&v), rip(false, 1));
    assert_eq!(h.flow(cip(false), 1000).tcp_state(), Established);
    let g = client(false, cip(false), 1001);
    assert_eq!(
        h.step(secs(1), &frames::tcp(&g, RST, &[])).0,
        Verdict::Local
    );
    assert!(h.find_flow(cip(false), 1001).is_none());
}

#[test]
fn rates_follow_steady_traffic() {
    let (mut h, key, ids) = setup(false, "rr", "-m", 2);
    // 10 new connections a second (one SYN each, 40 bytes) for a minute.
    let mut port = 1000;
    for t in 0..60u64 {
        for k in 0..10u64 {
            syn(
                &mut h,
                Instant::from_millis(t * 1000 + k * 100),
                &client(false, cip(false), port),
            );
            port += 1;
        }
    }
    h.maintain(secs(60));
    let r = h.d.rates();
    assert!((9..=11).contains(&r.cps), "{r:?}");
    assert!((9..=11).contains(&r.inpps), "{r:?}");
    assert!((360..=440).contains(&r.inbps), "{r:?}");
    assert_eq!(r.outpps, 0);
    let s = h.d.service(&key).unwrap().rates();
    assert!((9..=11).contains(&s.cps), "{s:?}");
    let d = h.d.dest(ids[0]).unwrap().1.rates();
    assert!((4..=6).contains(&d.cps), "{d:?}");
    h.d.zero(None).unwrap();
    assert_eq!(h.d.rates().cps, 0);
}

/// Connection deadlines are 32-bit milliseconds (`Deadline`). A clock that jumps further
/// than they can be compared over (here 30 days, past the 24.8-day wrap, where a stale
/// deadline would read as 5.2 days ahead) expires every connection instead of bringing
/// them back; a jump within the range leaves the comparison exact.
#[test]
fn clock_jumps_past_the_deadline_wrap_expire_connections() {
    for (days, v6) in [(30u64, false), (30, true), (20, false)] {
        let (mut h, _, _) = setup(v6, "rr", "-m", 2);
        let f = client(v6, cip(v6), 41000);
        let (v, _) = h.step(secs(1), &frames::tcp(&f, SYN, &[]));
        assert!(matches!(v, Verdict::Forward { .. }));
        let (v, _) = h.step(secs(2), &frames::tcp(&f, ACK, &[]));
        assert!(matches!(v, Verdict::Forward { .. }));
        assert_eq!(h.flows().len(), 1);
        // Only a packet of the same flow after the jump: its own lookup must not find the
        // connection alive.
        let later = secs(2 + days * 86_400);
        let (v, _) = h.step(later, &frames::tcp(&f, ACK, b"late"));
        assert!(
            !matches!(v, Verdict::Forward { .. }),
            "{days} days later (v6 {v6}): a plain ACK must not be forwarded: {v:?}"
        );
        assert!(h.flows().is_empty(), "{days} days: the connection expired");
    }
}
