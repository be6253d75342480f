//! What the smoltcp adapter adds per forwarded frame, beside the bare core in the same
//! run. Results: `BENCHMARKS.md` ("lvs-smoltcp: the adapter's cost").
//!
//! `adapter/nat/in/1K`: `Adapter::poll` over an in-memory device that hands out the
//! client → VIP frames of 1,024 established NAT flows (in a fixed shuffled order, 64 per
//! poll), and whose transmit token writes into one reused buffer: the copy into the
//! adapter's buffer, lvs-core's `process`, the route and neighbour lookups, the MAC
//! rewrite and the copy into the device's buffer. No allocation per frame.
//!
//! `core/nat/in/1K`: the same frames, each copied into a buffer with the same headroom
//! and run through `Director::process`: the core's own cost. The ratio of the two is the
//! adapter's overhead.
//!
//! Checks: before timing, every flow is established; after, every frame was forwarded,
//! nothing was dropped, held or lost.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lvs_core::director::{Director, Rx, Verdict};
use lvs_core::time::Instant as CoreInstant;
use lvs_smoltcp::{Adapter, HEADROOM, PortConfig, Route, Storage};
use lvs_tests::director::{Caps, config, dest_spec, director, service_spec};
use lvs_tests::frames::{self, Flow};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

const FLOWS: usize = 1024;
const BURST: usize = 64;
const MAC0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0xa, 0]);
const MAC1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0xa, 1]);
const PEER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0xb, 1]);

/// Hands out `frames` round-robin, `budget` at a time; transmits into one buffer.
struct Loop {
    frames: Vec<Vec<u8>>,
    next: usize,
    budget: usize,
    out: Vec<u8>,
    sent: u64,
}

struct LoopRx<'a>(&'a [u8]);
struct LoopTx<'a>(&'a mut [u8], &'a mut u64);

impl smoltcp::phy::RxToken for LoopRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}
impl smoltcp::phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        *self.1 += 1;
        f(&mut self.0[..len])
    }
}

impl Device for Loop {
    type RxToken<'a> = LoopRx<'a>;
    type TxToken<'a> = LoopTx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(LoopRx<'_>, LoopTx<'_>)> {
        if self.budget == 0 || self.frames.is_empty() {
            return None;
        }
        self.budget -= 1;
        let i = self.next;
        self.next = (i + 1) % self.frames.len();
        Some((
            LoopRx(&self.frames[i]),
            LoopTx(&mut self.out, &mut self.sent),
        ))
    }
    fn transmit(&mut self, _: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx(&mut self.out, &mut self.sent))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

fn new_director() -> Director<'static, 64> {
    let mut d = director(
        Caps {
            conns_v4: FLOWS,
            ..Caps::default()
        },
        config(),
        CoreInstant::ZERO,
    );
    let spec = service_spec("-t 203.0.113.10:80 -s wlc");
    d.add_service(spec, CoreInstant::ZERO).unwrap();
    for i in 0..8 {
        d.add_dest(
            &spec.key,
            dest_spec(&format!("-r 10.0.1.{}:8080 -m", 11 + i), 80),
            CoreInstant::ZERO,
        )
        .unwrap();
    }
    d
}

fn flows() -> Vec<Flow> {
    (0..FLOWS)
        .map(|i| Flow {
            src: IpAddr::V4(Ipv4Addr::new(
                198,
                51,
                100 + (i / 250) as u8,
                (i % 250) as u8 + 1,
            )),
            sport: 10_000 + i as u16,
            ..Flow::v4()
        })
        .collect()
}

fn frame(flow: &Flow, flags: u8) -> Vec<u8> {
    frames::ethernet_with(
        PEER.0,
        MAC0.0,
        0x0800,
        &frames::tcp_ip(flow, flags, b"abcdef"),
    )
}

/// Opens every flow through `process`: SYN, the server's SYN/ACK, the client's ACK.
fn establish(d: &mut Director<'static, 64>, flows: &[Flow]) {
    let mut buf = vec![0u8; 2048];
    let mut run = |d: &mut Director<'static, 64>, f: &[u8]| -> Option<Vec<u8>> {
        buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
        match d.process(
            CoreInstant::ZERO,
            Rx::default(),
            &mut buf,
            HEADROOM..HEADROOM + f.len(),
        ) {
            Verdict::Forward { frame, .. } => Some(buf[frame].to_vec()),
            _ => None,
        }
    };
    for flow in flows {
        let out = run(d, &frame(flow, 0x02)).expect("SYN forwarded");
        let ip = frames::ip_of(&out).to_vec();
        let rip = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap()));
        let dport = u16::from_be_bytes([ip[22], ip[23]]);
        let reply = Flow {
            src: rip,
            sport: dport,
            ..flow.reversed()
        };
        let synack =
            frames::ethernet_with(PEER.0, MAC1.0, 0x0800, &frames::tcp_ip(&reply, 0x12, b""));
        assert!(run(d, &synack).is_some(), "SYN/ACK forwarded");
        assert!(run(d, &frame(flow, 0x10)).is_some(), "ACK forwarded");
    }
    assert_eq!(d.conns_v4().len(), FLOWS);
}

fn shuffled(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn bench(c: &mut Criterion) {
    let flows = flows();
    let data: Vec<Vec<u8>> = shuffled(flows.iter().map(|f| frame(f, 0x18)).collect());

    let mut g = c.benchmark_group("adapter");
    g.throughput(Throughput::Elements(BURST as u64));

    // The adapter.
    let mut d = new_director();
    establish(&mut d, &flows);
    let mut a = Adapter::new(d, Storage::leak(64, 16, 1536));
    a.burst = BURST;
    a.add_port(
        PortConfig::new(MAC0)
            .with_addr(IpCidr::new(IpAddress::v4(203, 0, 113, 1), 24))
            .unwrap(),
    )
    .unwrap();
    a.add_port(
        PortConfig::new(MAC1)
            .with_addr(IpCidr::new(IpAddress::v4(10, 0, 1, 1), 24))
            .unwrap(),
    )
    .unwrap();
    a.add_route(Route {
        prefix: IpCidr::new(IpAddress::v4(0, 0, 0, 0), 0),
        via: IpAddress::v4(203, 0, 113, 254),
        port: None,
    })
    .unwrap();
    for i in 0..8 {
        a.add_neighbour(IpAddress::v4(10, 0, 1, 11 + i), PEER)
            .unwrap();
    }
    let mut devs = [
        Loop {
            frames: data.clone(),
            next: 0,
            budget: 0,
            out: vec![0; 2048],
            sent: 0,
        },
        Loop {
            frames: Vec::new(),
            next: 0,
            budget: 0,
            out: vec![0; 2048],
            sent: 0,
        },
    ];
    let now = Instant::from_millis(0);
    let mut polls = 0u64;
    g.bench_function("nat/in/1K", |b| {
        b.iter(|| {
            devs[0].budget = BURST;
            polls += 1;
            black_box(a.poll(now, &mut devs))
        })
    });
    let s = *a.stats();
    assert_eq!(
        s.forwarded,
        polls * BURST as u64,
        "every frame forwarded: {s:?}"
    );
    assert_eq!(devs[1].sent, s.forwarded);
    assert_eq!((s.held, s.local_lost, s.dropped, s.no_route), (0, 0, 0, 0));

    // The core alone on the same frames.
    let mut d = new_director();
    establish(&mut d, &flows);
    let mut buf = vec![0u8; 2048];
    let mut next = 0usize;
    g.bench_function("core/nat/in/1K", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                let f = &data[next];
                next = (next + 1) % data.len();
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                let v = d.process(
                    CoreInstant::ZERO,
                    Rx::default(),
                    &mut buf,
                    HEADROOM..HEADROOM + f.len(),
                );
                black_box(v);
            }
        })
    });
    assert_eq!(d.drops().total(), 0);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
