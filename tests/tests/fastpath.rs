//! The established-flow fast path of `Director::process` against the general path:
//! two directors set up alike, one with the fast path (the default) and one without
//! (`set_fast_path(false)`), fed the same random sequences of frames (connections'
//! packets both ways, new flows, mutated, cut, VLAN-tagged and IPv6 ones) and control
//! operations (time passing, removed real servers, switches). After every step they
//! must agree: the verdict, the output bytes, the drop and packet counters, every real
//! server and service, and both connection tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::director::{Packet, ServiceKey, Verdict};
use lvs_core::time::{Duration, Instant};
use lvs_tests::director::*;
use lvs_tests::frames::{self, Flow};
use proptest::prelude::*;

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10);

/// The services: words, then the real servers' words.
const SERVICES: [(&str, &[&str]); 7] = [
    (
        "-t 203.0.113.10:80 -s rr",
        &["-r 10.0.0.1:8080 -m -w 1", "-r 10.0.0.2:8080 -m -w 1"],
    ),
    ("-t 203.0.113.10:81 -s rr", &["-r 10.0.1.1:8080 -b -w 1"]),
    ("-t 203.0.113.10:82 -s rr", &["-r 10.0.2.1 -g -w 1"]),
    ("-t 203.0.113.10:83 -s rr", &["-r 10.0.3.1 -i -w 1"]),
    (
        "-u 203.0.113.10:53 -s rr",
        &["-r 10.0.4.1:5353 -m -w 1", "-r 10.0.4.2:5353 -b -w 1"],
    ),
    (
        "-t 203.0.113.10:84 -s rr -p 300",
        &["-r 10.0.5.1:8080 -m -w 1", "-r 10.0.5.2:8080 -m -w 1"],
    ),
    (
        "-t [2001:db8:f::10]:80 -s rr",
        &["-r [2001:db8:1::1]:8080 -m -w 1"],
    ),
];

const VPORTS: [u16; 8] = [80, 81, 82, 83, 53, 84, 85, 80];

/// Each service's port, the default of its real servers' ports.
const SVC_PORTS: [u16; 7] = [80, 81, 82, 83, 53, 84, 80];

fn harness(fast: bool) -> (Harness, Vec<ServiceKey>) {
    harness_of(fast, false)
}

/// The harness; with `fullnat`, every NAT real server forwards by FULLNAT instead (no
/// service has NAT members, so a burst reads its SYNs' FULLNAT out slots ahead).
fn harness_of(fast: bool, fullnat: bool) -> (Harness, Vec<ServiceKey>) {
    let mut h = Harness::new();
    h.d.set_fast_path(fast);
    h.add_laddr("10.0.9.1");
    if fullnat {
        h.add_laddr("10.0.9.2");
        h.add_laddr("2001:db8:9::1");
    }
    let mut keys = Vec::new();
    for (svc, dests) in SERVICES {
        let key = h.add_service(svc);
        for d in dests {
            if fullnat {
                h.add_dest(&key, &d.replace(" -m ", " -b "));
            } else {
                h.add_dest(&key, d);
            }
        }
        keys.push(key);
    }
    (h, keys)
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte; with `fix`, the IPv4 header checksum is recomputed after.
    Xor { pos: u16, val: u8, fix: bool },
    /// Cut the frame to this length.
    Truncate(u16),
    /// Grow the frame with zero bytes (Ethernet padding).
    Pad(u8),
    /// Tag it with a VLAN.
    Vlan,
}

#[derive(Debug, Clone)]
enum Op {
    /// A client packet to a service port (maybe no service), TCP with flags or UDP.
    Client {
        client: u8,
        cport: u8,
        vport: u8,
        v6: bool,
        l4: L4,
        mutation: Option<Mutation>,
    },
    /// A packet of the `k`-th connection in the table: from its client (`out` false)
    /// or its real server.
    Conn {
        k: usize,
        out: bool,
        l4: L4,
        mutation: Option<Mutation>,
    },
    /// The clock moves.
    Advance(u64),
    /// A real server removed (`-d`), by service and position.
    DeleteDest(u8, u8),
    /// A real server's weight set (0 quiesces it).
    Weight(u8, u8, u8),
    /// Switches flipped: bit 0 expire_nodest_conn, 1 secure_tcp, 2 sloppy_tcp, 3-4
    /// conn_reuse_mode.
    Switches(u8),
    /// `maintain` with a budget.
    Maintain(u8),
}

#[derive(Debug, Clone, Copy)]
enum L4 {
    Tcp(u8),
    Udp,
    UdpNoCsum,
}

fn mutation() -> impl Strategy<Value = Option<Mutation>> {
    prop_oneof![
        6 => Just(None),
        2 => (0u16..80, any::<u8>(), any::<bool>())
            .prop_map(|(pos, val, fix)| Some(Mutation::Xor { pos, val, fix })),
        1 => (0u16..80).prop_map(|n| Some(Mutation::Truncate(n))),
        1 => (1u8..40).prop_map(|n| Some(Mutation::Pad(n))),
        1 => Just(Some(Mutation::Vlan)),
    ]
}

fn l4() -> impl Strategy<Value = L4> {
    // FIN 1, SYN 2, RST 4, PSH 8, ACK 16.
    prop_oneof![
        4 => Just(L4::Tcp(0x10)),
        2 => Just(L4::Tcp(0x18)),
        2 => Just(L4::Tcp(0x02)),
        1 => Just(L4::Tcp(0x12)),
        1 => Just(L4::Tcp(0x11)),
        1 => Just(L4::Tcp(0x04)),
        1 => Just(L4::Tcp(0x14)),
        1 => any::<u8>().prop_map(L4::Tcp),
        2 => Just(L4::Udp),
        1 => Just(L4::UdpNoCsum),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..4, 0u8..8, proptest::bool::weighted(0.1), l4(), mutation()).prop_map(
            |(client, cport, vport, v6, l4, mutation)| Op::Client {
                client,
                cport,
                vport,
                v6,
                l4,
                mutation
            }
        ),
        10 => (any::<usize>(), any::<bool>(), l4(), mutation())
            .prop_map(|(k, out, l4, mutation)| Op::Conn { k, out, l4, mutation }),
        2 => prop_oneof![0u64..20, 0u64..5_000, 0u64..400_000].prop_map(Op::Advance),
        1 => (0u8..7, 0u8..2).prop_map(|(s, d)| Op::DeleteDest(s, d)),
        1 => (0u8..7, 0u8..2, 0u8..3).prop_map(|(s, d, w)| Op::Weight(s, d, w)),
        1 => any::<u8>().prop_map(Op::Switches),
        1 => any::<u8>().prop_map(Op::Maintain),
    ]
}

fn frame_of(flow: &Flow, l4: L4) -> Vec<u8> {
    let payload = [0x5au8; 11];
    match l4 {
        L4::Tcp(flags) => frames::tcp(flow, flags, &payload),
        L4::Udp => frames::udp(flow, &payload),
        L4::UdpNoCsum if flow.is_v4() => frames::udp_v4_no_checksum(flow, &payload),
        L4::UdpNoCsum => frames::udp(flow, &payload),
    }
}

fn ipv4_header_checksum(f: &mut [u8]) {
    if f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[14] >> 4 == 4 {
        let hl = usize::from(f[14] & 0x0f) * 4;
        if hl >= 20 && f.len() >= 14 + hl {
            lvs_core::wire::Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        }
    }
}

fn mutate(mut f: Vec<u8>, m: &Option<Mutation>) -> Vec<u8> {
    match m {
        None => {}
        Some(Mutation::Xor { pos, val, fix }) => {
            let n = f.len();
            if n > 0 {
                f[usize::from(*pos) % n] ^= val;
            }
            if *fix {
                ipv4_header_checksum(&mut f);
            }
        }
        Some(Mutation::Truncate(n)) => f.truncate(usize::from(*n)),
        Some(Mutation::Pad(n)) => f.resize(f.len() + usize::from(*n), 0),
        Some(Mutation::Vlan) => f = frames::with_vlan(&f, 7),
    }
    f
}

/// Everything the two directors must agree on besides the verdicts.
fn state(h: &Harness) -> String {
    let d = &h.d;
    let mut s = format!("drops {:?}\ntotals {:?}\n", d.drops(), d.totals());
    for (i, svc) in d.services() {
        s += &format!("svc {i} {:?} {:?}\n", svc.stats(), svc.members());
    }
    for id in 0..64u16 {
        if let Some((r, m)) = d.dest(id) {
            s += &format!("dest {id} {r:?} {m:?}\n");
        }
    }
    for c in h.conns() {
        s += &format!("{c:?}\n");
    }
    s
}

/// The frame `op` sends, built from the reference director's connections `flows` (`None` for a control
/// operation, which is applied to every director of `all`, or when there is no frame to
/// send).
fn apply(
    op: &Op,
    flows: &[ConnView],
    keys: &[ServiceKey],
    now: &mut Instant,
    all: &mut [&mut Harness],
) -> Result<Option<Vec<u8>>, TestCaseError> {
    Ok(match op {
        Op::Client {
            client,
            cport,
            vport,
            v6,
            l4,
            mutation,
        } => {
            let flow = if *v6 {
                Flow {
                    src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7)),
                    dst: IpAddr::V6(VIP6),
                    sport: 40000 + u16::from(*cport),
                    dport: 80,
                }
            } else {
                Flow {
                    src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + client)),
                    dst: IpAddr::V4(VIP),
                    sport: 40000 + u16::from(*cport),
                    dport: VPORTS[usize::from(*vport)],
                }
            };
            Some(mutate(frame_of(&flow, *l4), mutation))
        }
        Op::Conn {
            k,
            out,
            l4,
            mutation,
        } => {
            if flows.is_empty() {
                None
            } else {
                let c = flows[k % flows.len()];
                let flow = if *out {
                    Flow {
                        src: c.daddr,
                        dst: c.laddr,
                        sport: c.dport,
                        dport: c.lport,
                    }
                } else {
                    Flow {
                        src: c.caddr,
                        dst: c.vaddr,
                        sport: c.cport,
                        dport: c.vport,
                    }
                };
                // The connection's protocol, mostly.
                let l4 = match (c.proto, l4) {
                    (lvs_core::conn::table::Proto::Udp, L4::Tcp(f)) if f & 1 == 0 => L4::Udp,
                    (lvs_core::conn::table::Proto::Tcp, L4::Udp) => L4::Tcp(0x10),
                    _ => *l4,
                };
                if c.daddr.is_ipv4() != c.laddr.is_ipv4() {
                    None
                } else {
                    Some(mutate(frame_of(&flow, l4), mutation))
                }
            }
        }
        Op::Advance(ms) => {
            *now += Duration::from_millis(*ms);
            None
        }
        Op::DeleteDest(s, d) | Op::Weight(s, d, _) => {
            let (_, dests) = SERVICES[usize::from(*s)];
            let key = keys[usize::from(*s)];
            if let Some(words) = dests.get(usize::from(*d)) {
                let spec = dest_spec(words, SVC_PORTS[usize::from(*s)]);
                let mut results = Vec::new();
                for h in all.iter_mut() {
                    results.push(if let Op::Weight(_, _, w) = op {
                        let mut spec = spec;
                        spec.weight = u32::from(*w);
                        h.d.edit_dest(&key, spec)
                    } else {
                        h.d.delete_dest(&key, &spec.addr, spec.port)
                    });
                }
                prop_assert!(results.windows(2).all(|w| w[0] == w[1]), "{:?}", results);
            }
            None
        }
        Op::Switches(b) => {
            for h in all.iter_mut() {
                let c = h.d.config_mut();
                c.expire_nodest_conn = b & 1 != 0;
                c.secure_tcp = b & 2 != 0;
                c.sloppy_tcp = b & 4 != 0;
                c.conn_reuse_mode = (b >> 3) & 3;
            }
            None
        }
        Op::Maintain(budget) => {
            for h in all.iter_mut() {
                h.d.maintain(*now, usize::from(*budget));
            }
            None
        }
    })
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let (mut fast, keys) = harness(true);
    let (mut slow, _) = harness(false);
    let mut now = Instant::from_secs(10);
    for (i, op) in ops.iter().enumerate() {
        let flows = fast.flows();
        let frame = apply(op, &flows, &keys, &mut now, &mut [&mut fast, &mut slow])?;
        if let Some(f) = frame {
            let (va, oa) = fast.step(now, &f);
            let (vb, ob) = slow.step(now, &f);
            prop_assert_eq!(&va, &vb, "step {}: {:?}", i, op);
            prop_assert_eq!(oa, ob, "step {}: {:?} -> {:?}", i, op, va);
            if matches!(va, Verdict::Forward { .. }) {
                // Time moves a little between packets, as on a wire.
                now += Duration::from_millis(1);
            }
        }
        let (sa, sb) = (state(&fast), state(&slow));
        prop_assert!(
            sa == sb,
            "step {}: {:?}\nfast:\n{}\nslow:\n{}",
            i,
            op,
            sa,
            sb
        );
    }
    Ok(())
}

/// `process_burst` against `process` one frame at a time: the frames between two
/// control operations (cut into bursts of 1 to `max` frames) go through
/// `process_burst` on one director and through `process`, at the same clock, on the
/// other; the verdicts, the output bytes and then the whole state must agree.
fn run_burst(ops: &[Op], max: usize, fullnat: bool) -> Result<(), TestCaseError> {
    let (mut seq, keys) = harness_of(true, fullnat);
    let (mut burst, _) = harness_of(true, fullnat);
    // Read ahead whatever the table's size (the default skips it for small tables).
    burst.d.config_mut().burst_read_ahead_from = 0;
    let mut now = Instant::from_secs(10);
    // Frames sent to `seq` and not yet to `burst`, with what `seq` answered.
    let mut pending: Vec<(Vec<u8>, Verdict, Vec<u8>)> = Vec::new();
    let flush = |burst: &mut Harness,
                 pending: &mut Vec<(Vec<u8>, Verdict, Vec<u8>)>,
                 now: Instant|
     -> Result<(), TestCaseError> {
        let mut pkts: Vec<Packet<Vec<u8>>> = pending
            .iter()
            .map(|(f, _, _)| {
                let mut buf = vec![0u8; HEADROOM + f.len() + TAILROOM];
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                Packet::new(burst.rx, buf, HEADROOM..HEADROOM + f.len())
            })
            .collect();
        burst.d.process_burst(now, &mut pkts);
        for (k, (p, (_, v, out))) in pkts.iter().zip(pending.iter()).enumerate() {
            prop_assert_eq!(&p.verdict, v, "frame {} of the burst", k);
            let got = match &p.verdict {
                Verdict::Forward { frame, .. } | Verdict::Reply { frame } => &p.buf[frame.clone()],
                Verdict::Local | Verdict::Drop(_) => &p.buf[p.frame.clone()],
            };
            prop_assert_eq!(got, &out[..], "frame {} of the burst", k);
        }
        pending.clear();
        Ok(())
    };
    for (i, op) in ops.iter().enumerate() {
        let flows = seq.flows();
        let is_frame = matches!(op, Op::Client { .. } | Op::Conn { .. });
        if !is_frame {
            flush(&mut burst, &mut pending, now)?;
        }
        let frame = apply(op, &flows, &keys, &mut now, &mut [&mut seq, &mut burst])?;
        if let Some(f) = frame {
            let (v, out) = seq.step(now, &f);
            pending.push((f, v, out));
            if pending.len() > i % max {
                flush(&mut burst, &mut pending, now)?;
            }
        }
        if pending.is_empty() {
            let (sa, sb) = (state(&seq), state(&burst));
            prop_assert!(
                sa == sb,
                "step {}: {:?}\nseq:\n{}\nburst:\n{}",
                i,
                op,
                sa,
                sb
            );
        }
    }
    flush(&mut burst, &mut pending, now)?;
    let (sa, sb) = (state(&seq), state(&burst));
    prop_assert!(sa == sb, "end\nseq:\n{}\nburst:\n{}", sa, sb);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The fast path and the general path agree on everything, step by step.
    #[test]
    fn prop_fast_path_equals_general_path(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }

    /// `process_burst` gives what `process` gives frame by frame, bursts of 1 to 40
    /// frames (more than one group of 16).
    #[test]
    fn prop_burst_equals_process(ops in proptest::collection::vec(op(), 1..120)) {
        run_burst(&ops, 40, false)?;
    }

    /// The same with FULLNAT in place of NAT: the SYNs' out slots read ahead are
    /// those of the local ends their connections try first.
    #[test]
    fn prop_burst_equals_process_fullnat(ops in proptest::collection::vec(op(), 1..120)) {
        run_burst(&ops, 40, true)?;
    }
}

/// The fast path is taken: an established NAT flow's packets do not need the general
/// path, and the result is the one the general path gives.
#[test]
fn test_established_nat_both_ways() {
    let (mut fast, _) = harness(true);
    let (mut slow, _) = harness(false);
    let flow = Flow {
        src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        dst: IpAddr::V4(VIP),
        sport: 40000,
        dport: 80,
    };
    let now = Instant::from_secs(10);
    for flags in [0x02, 0x10, 0x18, 0x11, 0x10] {
        let f = frames::tcp(&flow, flags, b"hello");
        assert_eq!(fast.step(now, &f), slow.step(now, &f));
        let c = fast.flow(flow.src, flow.sport);
        let reply = Flow {
            src: c.daddr,
            dst: c.caddr,
            sport: c.dport,
            dport: c.cport,
        };
        let f = frames::tcp(&reply, flags | 0x10, b"world");
        assert_eq!(fast.step(now, &f), slow.step(now, &f));
        assert_eq!(state(&fast), state(&slow));
    }
}

/// A burst whose frame ranges lie outside their buffers (up to `usize::MAX`) gets a
/// verdict for each, as `process` gives it, and no panic (debug builds check overflow).
#[test]
fn test_burst_with_ranges_outside_the_buffer() {
    let (mut burst, _) = harness(true);
    burst.d.config_mut().burst_read_ahead_from = 0;
    let (mut seq, _) = harness(true);
    let now = Instant::from_secs(10);
    let ranges = [
        usize::MAX - 1..usize::MAX,
        usize::MAX..usize::MAX,
        std::ops::Range { start: 40, end: 20 },
        0..1000,
        10..70,
    ];
    let mut pkts: Vec<Packet<Vec<u8>>> = ranges
        .iter()
        .map(|r| Packet::new(burst.rx, vec![0u8; 64], r.clone()))
        .collect();
    burst.d.process_burst(now, &mut pkts);
    for (p, r) in pkts.iter().zip(ranges) {
        let want = seq.d.process(now, seq.rx, &mut [0u8; 64], r.clone());
        assert_eq!(p.verdict, want, "{r:?}");
    }
    assert_eq!(state(&burst), state(&seq));
}
