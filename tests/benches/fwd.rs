//! Per-packet cost of every forwarding rewrite, beside a baseline measured in the same
//! run: copy one 64-byte header and compute one full IPv4 header checksum. The issue's
//! bar: a NAT rewrite with incremental checksums costs no more than that baseline.
//! Results and how to read them: `BENCHMARKS.md`; the whole run: `scripts/bench.sh`.
//!
//! Every case is one closure that does exactly one packet's work per call:
//! - `parse/*`: `FrameInfo::parse` of one frame.
//! - `*/rewrite`: the rewrite alone, with the `FrameInfo` parsed beforehand. A rewrite is
//!   made idempotent per iteration by alternating between two endpoints: odd calls take
//!   the frame from A to B, even calls from B back to A (each with the `FrameInfo` of the
//!   frame it gets), so every call is exactly one rewrite of the same cost, and nothing
//!   is copied to reset the frame.
//! - `*/parse+rewrite`: `FrameInfo::parse` of the frame as it is, then the rewrite.
//! - `tun-encap/*/rewrite`: `tun::encap` into 40 bytes of headroom, then the only bytes
//!   encap overwrote that it reads again (the 14-byte Ethernet header, moved back by the
//!   outer header's length) are copied back; `tun/eth-reset14` is that copy alone, to
//!   subtract. `tun-encap+decap/*` is the other way to reset: encap then the real
//!   server's `tun::decap` (which parses the inner packet), the frame back as it was.
//!
//! TCP frames carry 1,500 bytes of payload, and the NAT/FULLNAT/TUN rewrites are also
//! measured with 64 bytes: equal costs show that no rewrite reads the payload.
//!
//! `LVS_BENCH_COUNT=N` runs every case N times in `lvs_bench_measure` without criterion,
//! printing `case <index> <name>` before each: run it under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*lvs_bench_measure*'
//! --dump-after='*lvs_bench_measure*'` and dump `k` holds case `k`'s instructions, N
//! packets' worth (`scripts/bench.sh` does it).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::Criterion;
use lvs_core::checksum::checksum;
use lvs_core::fwd::tun::{self, TunParams};
use lvs_core::fwd::{Endpoint, Error, dr, fullnat, nat};
use lvs_core::wire::{EthernetAddress, FrameInfo, L4Info};
use lvs_tests::frames::{self, DIRECTOR_MAC, Flow, IcmpError, REAL_MAC};

/// The real server's port (NAT and FULLNAT map vport 80 to it).
const RPORT: u16 = 8080;
/// The FULLNAT local port.
const LPORT: u16 = 50_000;
/// Headroom in front of the frame for `tun::encap` (the larger outer header, IPv6).
const HEADROOM: usize = 40;
/// Ethernet header length (no VLAN tag in these frames).
const ETH: usize = 14;
/// The payload that shows a rewrite does not read it, and the small one to compare.
const BIG: usize = 1500;
const SMALL: usize = 64;
/// Tunnel MTU: jumbo, so a 1,500-byte payload plus two IP headers still fits and encap
/// does its work instead of answering `FragNeeded`.
const TUN_MTU: u16 = 9000;

/// The addresses of one family: the fixture's flow is client → VIP.
struct Family {
    name: &'static str,
    /// CIP:cport → VIP:vport.
    flow: Flow,
    rip: IpAddr,
    lip: IpAddr,
    /// The director's own address, the tunnel source.
    dip: IpAddr,
}

impl Family {
    fn v4() -> Family {
        Family {
            name: "v4",
            flow: Flow::v4(),
            rip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            lip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    fn v6() -> Family {
        Family {
            name: "v6",
            flow: Flow::v6(),
            rip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            lip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            dip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, 1)),
        }
    }

    fn cip(&self) -> Endpoint {
        Endpoint::new(self.flow.src, self.flow.sport)
    }

    fn vip(&self) -> Endpoint {
        Endpoint::new(self.flow.dst, self.flow.dport)
    }

    fn rip(&self) -> Endpoint {
        Endpoint::new(self.rip, RPORT)
    }

    fn lip(&self) -> Endpoint {
        Endpoint::new(self.lip, LPORT)
    }

    /// A flow between two endpoints.
    fn flow(src: Endpoint, dst: Endpoint) -> Flow {
        Flow {
            src: src.addr,
            dst: dst.addr,
            sport: src.port,
            dport: dst.port,
        }
    }
}

/// TCP ACK|PSH: an established connection's data segment.
const ACK_PSH: u8 = 0x18;

fn tcp(flow: &Flow, payload: usize) -> Vec<u8> {
    frames::tcp(flow, ACK_PSH, &vec![0xa5; payload])
}

fn parse(frame: &[u8]) -> FrameInfo {
    FrameInfo::parse(frame).expect("fixture frame parses")
}

/// How the cases run: measured by criterion, or counted under callgrind.
enum Runner {
    Criterion(Box<Criterion>),
    Count { n: u64, index: usize },
}

impl Runner {
    fn case<R>(&mut self, name: &str, mut f: impl FnMut() -> R) {
        match self {
            Runner::Criterion(c) => {
                c.bench_function(name, |b| b.iter(&mut f));
            }
            Runner::Count { n, index } => {
                println!("case {index} {name}");
                lvs_bench_measure(*n, &mut f);
                *index += 1;
            }
        }
    }
}

/// Runs `f` `n` times: the function callgrind's `--toggle-collect` and `--dump-after`
/// name, so one dump holds exactly one case. The loop is criterion's `Bencher::iter`
/// loop without the clock.
#[inline(never)]
fn lvs_bench_measure<R>(n: u64, f: &mut impl FnMut() -> R) {
    for _ in 0..n {
        black_box(f());
    }
}

/// A rewrite `rw(frame, info, target)` that takes `frame` (A) to B with `targets[0]` and
/// B back to A with `targets[1]`: returns B and the `FrameInfo`s of A and B, after
/// checking that both rewrites succeed, that B parses (so its checksums verify) and that
/// the round trip gives A back byte for byte.
fn flip_infos<T: Copy>(
    frame: &[u8],
    targets: [T; 2],
    rw: impl Fn(&mut [u8], &FrameInfo, T) -> Result<(), Error>,
) -> (Vec<u8>, [FrameInfo; 2]) {
    let a = parse(frame);
    let mut f = frame.to_vec();
    rw(&mut f, &a, targets[0]).expect("rewrite A → B");
    assert_ne!(f, frame, "the rewrite changes the frame");
    let b = parse(&f);
    let frame_b = f.clone();
    rw(&mut f, &b, targets[1]).expect("rewrite B → A");
    assert_eq!(f, frame, "the round trip restores the frame");
    (frame_b, [a, b])
}

/// The two cases of one rewrite: `<name>/rewrite` with the `FrameInfo` parsed beforehand,
/// and `<name>/parse+rewrite`.
fn flip_cases<T: Copy>(
    r: &mut Runner,
    name: &str,
    frame: Vec<u8>,
    targets: [T; 2],
    rw: impl Fn(&mut [u8], &FrameInfo, T) -> Result<(), Error> + Copy,
) {
    let (frame_b, infos) = flip_infos(&frame, targets, rw);
    // After any number of calls the frame is A or B: every call did its rewrite.
    let a_or_b = |f: &[u8], k: usize| assert_eq!(f, [&frame[..], &frame_b[..]][k]);

    let mut f = frame.clone();
    let mut k = 0;
    r.case(&format!("{name}/rewrite"), || {
        let res = rw(
            black_box(&mut f[..]),
            &black_box(&infos)[k],
            black_box(&targets)[k],
        );
        k ^= 1;
        res
    });
    a_or_b(&f, k);

    let mut f = frame.clone();
    let mut k = 0;
    r.case(&format!("{name}/parse+rewrite"), || {
        let res = match FrameInfo::parse(black_box(&f[..])) {
            Ok(info) => rw(&mut f[..], &info, black_box(&targets)[k]),
            Err(e) => Err(Error::Inner(e)),
        };
        k ^= 1;
        res
    });
    a_or_b(&f, k);
}

/// The harness around every `*/rewrite` case without the rewrite: the alternation and
/// the loads of the `FrameInfo` and the target, handed to `black_box` instead of to a
/// rewrite. A floor to read the small cases against, not a number to subtract exactly.
fn harness_case(r: &mut Runner) {
    let fam = Family::v4();
    let mut f = tcp(&fam.flow, SMALL);
    let infos = [parse(&f); 2];
    let targets = [fam.rip(), fam.vip()];
    let mut k = 0;
    r.case("harness/flip-noop", || {
        let res = (
            black_box(&mut f[..]).len(),
            &black_box(&infos)[k],
            black_box(&targets)[k],
        );
        k ^= 1;
        black_box(res);
    });
}

/// The baseline: copy a 64-byte header into a buffer and compute the full checksum of
/// the 20-byte IPv4 header in the copy; and each half alone.
fn baseline(r: &mut Runner) {
    let frame = tcp(&Family::v4().flow, SMALL);
    let header: [u8; 64] = frame[..64].try_into().expect("64 bytes");
    let mut buf = [0u8; 64];
    r.case("baseline/copy64+ipv4_csum", || {
        let buf = black_box(&mut buf);
        buf.copy_from_slice(black_box(&header));
        checksum(&black_box(&*buf)[ETH..ETH + 20])
    });
    r.case("baseline/copy64", || {
        black_box(&mut buf).copy_from_slice(black_box(&header));
    });
    r.case("baseline/ipv4_csum", || {
        checksum(&black_box(&header)[ETH..ETH + 20])
    });
}

fn parse_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let icmp = frames::icmp_error(
        fam.rip,
        fam.flow.src,
        IcmpError::FragNeeded(1400),
        &tcp(&Family::flow(fam.cip(), fam.rip()), SMALL),
    );
    for (what, frame) in [
        (format!("tcp{BIG}"), tcp(&fam.flow, BIG)),
        (format!("tcp{SMALL}"), tcp(&fam.flow, SMALL)),
        (format!("udp{BIG}"), frames::udp(&fam.flow, &[0x5a; BIG])),
        ("icmp-tcp".to_string(), icmp),
    ] {
        parse(&frame);
        r.case(&format!("parse/{n}-{what}"), || {
            FrameInfo::parse(black_box(&frame[..]))
        });
    }
}

fn nat_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let (cip, vip, rip) = (fam.cip(), fam.vip(), fam.rip());
    // Inbound: CIP:cport → VIP:vport becomes CIP:cport → RIP:rport, and back.
    let inbound = Family::flow(cip, vip);
    // Outbound: RIP:rport → CIP:cport becomes VIP:vport → CIP:cport, and back.
    let outbound = Family::flow(rip, cip);
    for (what, fin, fout) in [
        (format!("tcp{BIG}"), tcp(&inbound, BIG), tcp(&outbound, BIG)),
        (
            format!("tcp{SMALL}"),
            tcp(&inbound, SMALL),
            tcp(&outbound, SMALL),
        ),
        (
            format!("udp{BIG}"),
            frames::udp(&inbound, &[0x5a; BIG]),
            frames::udp(&outbound, &[0x5a; BIG]),
        ),
    ] {
        flip_cases(
            r,
            &format!("nat-inbound/{n}-{what}"),
            fin,
            [rip, vip],
            nat::inbound,
        );
        flip_cases(
            r,
            &format!("nat-outbound/{n}-{what}"),
            fout,
            [vip, rip],
            nat::outbound,
        );
    }
}

fn fullnat_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let (cip, vip, rip, lip) = (fam.cip(), fam.vip(), fam.rip(), fam.lip());
    // Inbound: CIP:cport → VIP:vport becomes LIP:lport → RIP:rport, and back.
    let inbound = Family::flow(cip, vip);
    // Outbound: RIP:rport → LIP:lport becomes VIP:vport → CIP:cport, and back.
    let outbound = Family::flow(rip, lip);
    for payload in [BIG, SMALL] {
        flip_cases(
            r,
            &format!("fullnat-inbound/{n}-tcp{payload}"),
            tcp(&inbound, payload),
            [(lip, rip), (cip, vip)],
            |f, i, (s, d)| fullnat::inbound(f, i, s, d),
        );
        flip_cases(
            r,
            &format!("fullnat-outbound/{n}-tcp{payload}"),
            tcp(&outbound, payload),
            [(vip, cip), (rip, lip)],
            |f, i, (s, d)| fullnat::outbound(f, i, s, d),
        );
    }
}

fn dr_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let own = EthernetAddress(DIRECTOR_MAC);
    let real = EthernetAddress(REAL_MAC);
    // Idempotent as it is: the same two MACs written each time.
    let mut f = tcp(&fam.flow, BIG);
    dr::forward(&mut f, own, real).expect("dr forward");
    r.case(&format!("dr/{n}-tcp{BIG}/rewrite"), || {
        dr::forward(black_box(&mut f[..]), black_box(own), black_box(real))
    });
    r.case(
        &format!("dr/{n}-tcp{BIG}/parse+rewrite"),
        || match FrameInfo::parse(black_box(&f[..])) {
            Ok(info) => {
                black_box(&info);
                dr::forward(&mut f[..], black_box(own), black_box(real))
            }
            Err(e) => Err(Error::Inner(e)),
        },
    );
}

/// The 14-byte copy that undoes what `tun::encap` overwrote (measured on its own: it is
/// part of the `tun-encap/*/rewrite` cases).
fn tun_reset_case(r: &mut Runner) {
    let frame = tcp(&Family::v4().flow, SMALL);
    let eth: [u8; ETH] = frame[..ETH].try_into().expect("ethernet header");
    let mut buf = vec![0u8; HEADROOM + frame.len()];
    r.case("tun/eth-reset14", || {
        black_box(&mut buf[..])[HEADROOM..HEADROOM + ETH].copy_from_slice(black_box(&eth));
    });
}

fn tun_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let params = TunParams {
        src: fam.dip,
        dst: fam.rip,
        ident: 0x4242,
        flow_label: 0x1_2345,
        mtu: TUN_MTU,
    };
    for payload in [BIG, SMALL] {
        let frame = tcp(&fam.flow, payload);
        let info = parse(&frame);
        let eth: [u8; ETH] = frame[..ETH].try_into().expect("ethernet header");
        let mut orig = vec![0u8; HEADROOM];
        orig.extend_from_slice(&frame);
        let at = HEADROOM..HEADROOM + frame.len();

        // Check once: the result is IP-in-IP around the untouched packet, and decap gives
        // the frame back where it was.
        let mut buf = orig.clone();
        let enc = tun::encap(&mut buf, at.clone(), &info, &params).expect("encap");
        let enc_info = parse(&buf[enc.clone()]);
        assert!(
            matches!(enc_info.l4, L4Info::IpIp(_)),
            "encap gives IP-in-IP"
        );
        assert_eq!(&buf[enc.end - (frame.len() - ETH)..enc.end], &frame[ETH..]);
        let mut buf2 = buf.clone();
        buf2[at.start..at.start + ETH].copy_from_slice(&eth);
        assert_eq!(
            tun::encap(&mut buf2, at.clone(), &info, &params),
            Ok(enc.clone()),
        );
        assert_eq!(buf2, buf, "encap after the reset repeats the same work");
        let (dec, _) = tun::decap(&mut buf, enc.clone(), &enc_info).expect("decap");
        assert_eq!(dec, at);
        assert_eq!(&buf[at.clone()], &frame[..], "decap restores the frame");

        let mut buf = orig.clone();
        r.case(&format!("tun-encap/{n}-tcp{payload}/rewrite"), || {
            let res = tun::encap(
                black_box(&mut buf[..]),
                black_box(at.clone()),
                black_box(&info),
                black_box(&params),
            );
            buf[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);
            res
        });
        if payload == BIG {
            let mut buf = orig.clone();
            r.case(&format!("tun-encap/{n}-tcp{payload}/parse+rewrite"), || {
                let buf = black_box(&mut buf[..]);
                let res = match FrameInfo::parse(&buf[at.clone()]) {
                    Ok(info) => tun::encap(buf, at.clone(), &info, black_box(&params)),
                    Err(e) => Err(Error::Inner(e)),
                };
                buf[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);
                res
            });
            let mut buf = orig.clone();
            r.case(&format!("tun-encap+decap/{n}-tcp{payload}/pair"), || {
                let buf = black_box(&mut buf[..]);
                match tun::encap(buf, black_box(at.clone()), black_box(&info), &params) {
                    Ok(enc) => tun::decap(buf, enc, black_box(&enc_info)).map(|(r, _)| r),
                    Err(e) => Err(e),
                }
            });
        }
    }
}

fn icmp_cases(r: &mut Runner, fam: &Family) {
    let n = fam.name;
    let (cip, vip, rip, lip) = (fam.cip(), fam.vip(), fam.rip(), fam.lip());
    // NAT, from the real-server side: RIP → CIP "fragmentation needed" quoting
    // CIP:cport → RIP:rport becomes VIP → CIP quoting CIP:cport → VIP:vport.
    let frame = frames::icmp_error(
        rip.addr,
        cip.addr,
        IcmpError::FragNeeded(1400),
        &tcp(&Family::flow(cip, rip), SMALL),
    );
    flip_cases(
        r,
        &format!("icmp-nat-outbound/{n}-tcp"),
        frame,
        [vip, rip],
        nat::outbound_icmp,
    );
    // FULLNAT, from the real-server side: RIP → LIP quoting LIP:lport → RIP:rport becomes
    // VIP → CIP quoting CIP:cport → VIP:vport: all four addresses and both ports.
    let frame = frames::icmp_error(
        rip.addr,
        lip.addr,
        IcmpError::FragNeeded(1400),
        &tcp(&Family::flow(lip, rip), SMALL),
    );
    flip_cases(
        r,
        &format!("icmp-fullnat-outbound/{n}-tcp"),
        frame,
        [(vip, cip), (rip, lip)],
        |f, i, (v, c)| fullnat::outbound_icmp(f, i, v, c),
    );
}

fn all(r: &mut Runner) {
    baseline(r);
    harness_case(r);
    let fams = [Family::v4(), Family::v6()];
    for fam in &fams {
        parse_cases(r, fam);
    }
    for fam in &fams {
        nat_cases(r, fam);
    }
    for fam in &fams {
        fullnat_cases(r, fam);
    }
    for fam in &fams {
        dr_cases(r, fam);
    }
    tun_reset_case(r);
    for fam in &fams {
        tun_cases(r, fam);
    }
    for fam in &fams {
        icmp_cases(r, fam);
    }
}

fn main() {
    if let Ok(n) = std::env::var("LVS_BENCH_COUNT") {
        let n = n.parse().expect("LVS_BENCH_COUNT: a number of iterations");
        all(&mut Runner::Count { n, index: 0 });
        return;
    }
    // About 1.3 s a case, ~100 s for the ~75 cases: enough for a stable median of a
    // few-nanosecond routine (millions of iterations); `scripts/bench.sh` adds the
    // instruction counts, which do not depend on the machine's load.
    let c = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .sample_size(30)
        .nresamples(2000)
        .configure_from_args();
    let mut r = Runner::Criterion(Box::new(c));
    all(&mut r);
    if let Runner::Criterion(c) = r {
        c.final_summary();
    }
}
