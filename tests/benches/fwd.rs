//! Per-packet cost of every forwarding rewrite, beside a baseline measured in the same
//! run: copy one 64-byte header and compute one full IPv4 header checksum. The issue's
//! bar: a NAT rewrite with incremental checksums costs no more than that baseline.
//! The baseline runs twice: bare (`baseline/copy64+ipv4_csum`), and through the same
//! ring harness as every `*/rewrite` case (`baseline/ring/copy64+ipv4_csum`), the
//! like-for-like comparison, since each rewrite case also pays the harness.
//! Results and how to read them: `BENCHMARKS.md`; the whole run: `scripts/bench.sh`.
//!
//! Every case is one closure that does exactly one packet's work per call:
//! - `parse/*`: `FrameInfo::parse` of one frame.
//! - `*/rewrite`: the rewrite alone, with the `FrameInfo` parsed beforehand.
//! - `*/parse+rewrite`: `FrameInfo::parse` of the frame as it is, then the rewrite.
//!
//! A rewrite is made idempotent without copying anything back: each case cycles through
//! [`RING`] copies of its frame (consecutive calls touch different packets, as a
//! director's consecutive packets are, so no call waits for the previous one's stores),
//! and each copy's visits alternate between two endpoints: A → B, then B → A (with the
//! `FrameInfo` of the frame as it is). Every call is exactly one rewrite of the same cost.
//! `harness/ring-noop` is that machinery without a rewrite, and
//! `nat-inbound/v4-tcp64/rewrite-same-frame` the same rewrite flipping one frame, each
//! call depending on the checksums the previous call stored (latency, not throughput).
//!
//! TUN: `tun-encap/*/rewrite` is `tun::encap` into 40 bytes of headroom, then the 14
//! bytes it overwrote and reads again (the Ethernet header, moved back by the outer
//! header's length) are copied back: `tun/eth-reset14` is that copy alone, to subtract.
//! `tun-encap+decap/*/pair` resets the other way: encap, then the real server's
//! `tun::decap` (which parses the inner packet), which puts the frame back as it was.
//!
//! TCP frames carry 1,500 bytes of payload, and the NAT/FULLNAT/TUN rewrites are also
//! measured with 64 bytes: equal costs show that no rewrite reads the payload.
//!
//! `LVS_BENCH_COUNT=N` runs every case N times in `lvs_bench_measure` without criterion,
//! printing `case <index> <name>` before each: run it under `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect=fwd::lvs_bench_measure
//! --dump-after=fwd::lvs_bench_measure` and dump `k + 1` holds case `k`'s instructions,
//! N packets' worth (`scripts/bench.sh` does it).

#[path = "common/runner.rs"]
mod runner;
use runner::Runner;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// Copies of a frame a case cycles through.
const RING: usize = 16;

/// [`RING`] copies of a frame, each in a 64-byte-aligned slot after `head` bytes of
/// headroom. Call `i` works on copy `i % RING`, for the [`dir`]`(i)`-th time in a row.
struct Ring {
    buf: Vec<u8>,
    stride: usize,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(frame: &[u8], head: usize) -> Ring {
        let stride = (head + frame.len()).next_multiple_of(64);
        let mut buf = vec![0u8; stride * RING];
        for j in 0..RING {
            buf[j * stride + head..][..frame.len()].copy_from_slice(frame);
        }
        Ring {
            buf,
            stride,
            head,
            len: frame.len(),
        }
    }

    /// The slot of call `i`: headroom, then the frame.
    #[inline(always)]
    fn slot(&mut self, i: usize) -> &mut [u8] {
        let at = (i % RING) * self.stride;
        &mut self.buf[at..at + self.head + self.len]
    }

    /// The frame of call `i`.
    #[inline(always)]
    fn frame(&mut self, i: usize) -> &mut [u8] {
        let head = self.head;
        &mut self.slot(i)[head..]
    }

    /// After `calls` calls, copy `j` has been visited this many times.
    fn visits(calls: usize, j: usize) -> usize {
        calls / RING + usize::from(j < calls % RING)
    }

    /// Checks that after `calls` calls each copy went through `states` in turn.
    fn check(&mut self, calls: usize, states: &[&[u8]]) {
        for j in 0..RING {
            let want = states[Ring::visits(calls, j) % states.len()];
            assert!(self.frame(j) == want, "copy {j} after {calls} calls");
        }
    }
}

/// The direction of call `i` on its copy: 0 (A → B) or 1 (B → A).
#[inline(always)]
fn dir(i: usize) -> usize {
    (i / RING) & 1
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
    let states = [&frame[..], &frame_b[..]];

    let mut ring = Ring::new(&frame, 0);
    let mut i = 0;
    r.case(&format!("{name}/rewrite"), || {
        let d = dir(i);
        let res = rw(
            black_box(ring.frame(i)),
            &black_box(&infos)[d],
            black_box(&targets)[d],
        );
        i += 1;
        res
    });
    ring.check(i, &states);

    let mut ring = Ring::new(&frame, 0);
    let mut i = 0;
    r.case(&format!("{name}/parse+rewrite"), || {
        let d = dir(i);
        let f = black_box(ring.frame(i));
        let res = match FrameInfo::parse(f) {
            Ok(info) => rw(f, &info, black_box(&targets)[d]),
            Err(e) => Err(Error::Inner(e)),
        };
        i += 1;
        res
    });
    ring.check(i, &states);
}

/// The ring machinery of every `*/rewrite` case without the rewrite: the frame, the
/// `FrameInfo` and the target of call `i` handed to `black_box`. A floor to read the
/// smallest cases against, not an exact amount to subtract.
fn harness_case(r: &mut Runner) {
    let fam = Family::v4();
    let mut ring = Ring::new(&tcp(&fam.flow, SMALL), 0);
    let infos = [parse(ring.frame(0)); 2];
    let targets = [fam.rip(), fam.vip()];
    let mut i = 0;
    r.case("harness/ring-noop", || {
        let d = dir(i);
        black_box((
            black_box(ring.frame(i)).len(),
            &black_box(&infos)[d],
            black_box(&targets)[d],
        ));
        i += 1;
    });
}

/// NAT inbound flipping a single frame: each call loads the checksums the previous call
/// stored, so this is the latency of one rewrite rather than the throughput the ring
/// cases measure.
fn same_frame_case(r: &mut Runner) {
    let fam = Family::v4();
    let frame = tcp(&fam.flow, SMALL);
    let targets = [fam.rip(), fam.vip()];
    let (frame_b, infos) = flip_infos(&frame, targets, nat::inbound);
    let mut f = frame.clone();
    let mut k = 0;
    r.case("nat-inbound/v4-tcp64/rewrite-same-frame", || {
        let res = nat::inbound(
            black_box(&mut f[..]),
            &black_box(&infos)[k],
            black_box(&targets)[k],
        );
        k ^= 1;
        res
    });
    assert_eq!(f, [&frame, &frame_b][k][..]);
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
    // The same work with the sum read 2 bytes further on (bytes 16..36 of the copy): no
    // 4-byte load then straddles two of the copy's 16-byte stores, so the load is
    // forwarded from the store buffer instead of waiting for both stores to commit.
    // Shows how much of the baseline is that store-to-load forwarding stall.
    r.case("baseline/copy64+csum_bytes16..36", || {
        let buf = black_box(&mut buf);
        buf.copy_from_slice(black_box(&header));
        checksum(&black_box(&*buf)[16..36])
    });
    // The same work through the ring harness every `*/rewrite` case uses (call `i` takes
    // its frame from the ring and black-boxes a FrameInfo and a target, as
    // `harness/ring-noop` does): the like-for-like baseline for the rewrites.
    let fam = Family::v4();
    let mut ring = Ring::new(&frame, 0);
    let infos = [parse(ring.frame(0)); 2];
    let targets = [fam.rip(), fam.vip()];
    let mut i = 0;
    r.case("baseline/ring/copy64+ipv4_csum", || {
        let d = dir(i);
        let f = black_box(ring.frame(i));
        black_box((&black_box(&infos)[d], black_box(&targets)[d]));
        buf.copy_from_slice(&f[..64]);
        i += 1;
        checksum(&black_box(&buf)[ETH..ETH + 20])
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
    let mut frame = tcp(&fam.flow, BIG);
    dr::forward(&mut frame, own, real).expect("dr forward");
    let mut ring = Ring::new(&frame, 0);
    let mut i = 0;
    r.case(&format!("dr/{n}-tcp{BIG}/rewrite"), || {
        let res = dr::forward(black_box(ring.frame(i)), black_box(own), black_box(real));
        i += 1;
        res
    });
    ring.check(i, &[&frame]);
    let mut i = 0;
    r.case(&format!("dr/{n}-tcp{BIG}/parse+rewrite"), || {
        let f = black_box(ring.frame(i));
        i += 1;
        match FrameInfo::parse(f) {
            Ok(info) => {
                black_box(&info);
                dr::forward(f, black_box(own), black_box(real))
            }
            Err(e) => Err(Error::Inner(e)),
        }
    });
    ring.check(i, &[&frame]);
}

/// The 14-byte copy that undoes what `tun::encap` overwrote (measured on its own: it is
/// part of the `tun-encap/*/rewrite` cases).
fn tun_reset_case(r: &mut Runner) {
    let frame = tcp(&Family::v4().flow, SMALL);
    let eth: [u8; ETH] = frame[..ETH].try_into().expect("ethernet header");
    let mut ring = Ring::new(&frame, HEADROOM);
    let mut i = 0;
    r.case("tun/eth-reset14", || {
        black_box(ring.slot(i))[HEADROOM..HEADROOM + ETH].copy_from_slice(black_box(&eth));
        i += 1;
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
        let mut slot = vec![0u8; HEADROOM];
        slot.extend_from_slice(&frame);
        let at = HEADROOM..HEADROOM + frame.len();

        // Check once: the result is IP-in-IP around the untouched packet, encap after the
        // reset does the same work again, and decap gives the frame back where it was.
        let mut buf = slot.clone();
        let enc = tun::encap(&mut buf, at.clone(), &info, &params).expect("encap");
        let enc_info = parse(&buf[enc.clone()]);
        assert!(matches!(enc_info.l4, L4Info::IpIp(_)), "IP-in-IP");
        assert_eq!(&buf[enc.end - (frame.len() - ETH)..enc.end], &frame[ETH..]);
        let encapsulated = buf.clone();
        let mut again = buf.clone();
        again[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);
        assert_eq!(
            tun::encap(&mut again, at.clone(), &info, &params),
            Ok(enc.clone())
        );
        assert_eq!(again, buf, "encap after the reset repeats the same work");
        let (dec, _) = tun::decap(&mut buf, enc.clone(), &enc_info).expect("decap");
        assert_eq!(dec, at);
        assert_eq!(&buf[at.clone()], &frame[..], "decap restores the frame");
        // What a slot holds after encap and the reset: the encapsulated frame's outer
        // header, and the original Ethernet header back in front of the inner packet.
        let mut after_reset = encapsulated.clone();
        after_reset[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);

        let mut ring = Ring::new(&slot[HEADROOM..], HEADROOM);
        let mut i = 0;
        r.case(&format!("tun-encap/{n}-tcp{payload}/rewrite"), || {
            let s = black_box(ring.slot(i));
            i += 1;
            let res = tun::encap(
                s,
                black_box(at.clone()),
                black_box(&info),
                black_box(&params),
            );
            s[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);
            res
        });
        for j in 0..RING.min(i) {
            assert!(ring.slot(j) == &after_reset[..], "encap + reset, copy {j}");
        }
        if payload != BIG {
            continue;
        }
        let mut ring = Ring::new(&slot[HEADROOM..], HEADROOM);
        let mut i = 0;
        r.case(&format!("tun-encap/{n}-tcp{payload}/parse+rewrite"), || {
            let s = black_box(ring.slot(i));
            i += 1;
            let res = match FrameInfo::parse(&s[at.clone()]) {
                Ok(info) => tun::encap(s, at.clone(), &info, black_box(&params)),
                Err(e) => Err(Error::Inner(e)),
            };
            s[HEADROOM..HEADROOM + ETH].copy_from_slice(&eth);
            res
        });
        for j in 0..RING.min(i) {
            assert!(
                ring.slot(j) == &after_reset[..],
                "parse + encap + reset, copy {j}"
            );
        }
        let mut ring = Ring::new(&slot[HEADROOM..], HEADROOM);
        let mut i = 0;
        r.case(&format!("tun-encap+decap/{n}-tcp{payload}/pair"), || {
            let s = black_box(ring.slot(i));
            i += 1;
            match tun::encap(s, black_box(at.clone()), black_box(&info), &params) {
                Ok(enc) => tun::decap(s, enc, black_box(&enc_info)).map(|(r, _)| r),
                Err(e) => Err(e),
            }
        });
        for j in 0..RING {
            assert!(ring.frame(j) == &frame[..], "encap + decap, copy {j}");
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
    same_frame_case(r);
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
    // About 1.3 s a case, ~100 s for the 75 cases: enough for a stable median of a
    // few-nanosecond routine (millions of iterations); `scripts/bench.sh` adds the
    // instruction counts, which do not depend on the machine's load.
    runner::main(all, 200, 800);
}
