//! Per-packet cost of `Director::process`, beside a limit baseline measured in the same
//! run. Results and how to read them: `BENCHMARKS.md`; the whole run: `scripts/bench.sh`.
//!
//! ## Established flows (`established/<method>/<dir>/<size>`)
//! A director whose IPv4 table holds exactly `size` connections (1K, 64K or 1M; the
//! table's capacity is `size`, its indexes the minimum 2 × `size` slots), every one
//! ESTABLISHED: each flow's SYN, the real server's SYN/ACK (NAT, FULLNAT) and the
//! client's ACK went through `process`. One virtual service per director (wlc, 8 real
//! servers; FULLNAT with 16 local addresses). Each flow has one 60-byte frame (TCP
//! ACK|PSH, 6 bytes of payload) in its own 64-byte slot (128 bytes with 40 bytes of
//! headroom for TUN), so at 1M the frames alone are 64 MiB and, like the table, come from
//! DRAM. A timed pass sends every flow's frame once, in a random order (a fixed random
//! permutation of the flows); then an untimed pass puts every frame back:
//! - `in` (NAT, FULLNAT): client → VIP frames. The untimed pass swaps source and
//!   destination (addresses and ports: no checksum changes), sends the reply through
//!   `process` and swaps again, which gives the original frame back byte for byte.
//! - `out` (NAT, FULLNAT): the replies (real server → client, or → local address for
//!   FULLNAT), restored the same way through the inbound path.
//! - `in` (DR: nothing to restore; TUN: the 14-byte Ethernet header that encapsulation
//!   overwrote is copied back).
//!
//! Only `process` (and the walk over the permutation) is timed, through criterion's
//! `iter_custom`; the clock is the fixed `NOW`, so nothing expires.
//!
//! `baseline/established/...` is the limit the issue sets, on its own copy of the same
//! frames in the same order: read the 4-tuple at fixed offsets (no validation), one
//! SipHash-1-3 by the table's own code (`conn::table::siphash13_14`, 128-bit key) over
//! the same bytes the table hashes (key kind, protocol, address, port, address, port),
//! one read of a 44-byte record at `hash & (size - 1)` in an array of `size` records
//! (the byte size of the table's entries), then the same rewrite as the director's fast
//! path with the target read from that record (NAT, FULLNAT: `fwd::rewrite_v4_fixed`;
//! TUN: `tun::encap_v4_fixed`; DR: none, as `process` does none for DR: the caller sets
//! the MACs). Before commit 1e4463d the baseline hashed through `siphasher`'s streaming API
//! and rewrote through the `FrameInfo`-based `nat::*`/`fullnat::*`, slower code than
//! the director's own: 309 instead of 246 instructions for NAT in at 1K. The records are filled from the
//! director's connections; two keys that share a record get one of the two targets, so a
//! FULLNAT baseline frame may move to another flow's addresses: every rewrite is still a
//! valid one of the same cost, which the checks below verify.
//!
//! `harness/established/<size>` is the walk alone (the frame's slot touched): a floor,
//! not an amount to subtract.
//!
//! Two NAT variants locate costs: `established/nat/in/<size>/sweep0` is the same with
//! `Config::sweep_budget` 0 (no expiry scan in `process`), and `lookup/in/<size>` is
//! `ConnTable::lookup_in` alone (hash and probe) for the same flows in the same order.
//! `hash/siphash13/*` hashes 1,024 keys three ways: five `write`s (one per field), the
//! same bytes in one `write`, and as whole words (`u64`, `u32`, `u16`), the table's and
//! the baseline's way; the three give the same hash (checked).
//!
//! ## New connections (`new-conn/<method>/<policy>`)
//! SYNs of flows never seen before (a fresh client address:port each), from a batch of
//! 4,096 generated untimed:
//! - `room`: a 1M-entry table, flushed (untimed) whenever it reaches half full
//!   (`room-64K`: the same with a 64K-entry table, which the caches hold);
//! - `expire`: a 1M-entry table in steady state: the clock advances 1 ms every 8 SYNs,
//!   so connections (SYN_RECV, 60 s) expire and the per-call sweep removes about one
//!   entry for every one inserted;
//! - `evict`: a full 64K-entry table of embryonic connections and a stopped clock: every
//!   SYN evicts one (`find_victim`) before it is inserted.
//!
//! `burst/new-conn/<method>/room` and `burst/new-conn/nat/room-64K` are `room` and
//! `room-64K` through `process_burst`, [`BURST`] SYNs at a time.
//!
//! `baseline/new-conn/nat/room` is the limit: fixed-offset 4-tuple, one SipHash (the
//! table's code), one read and one 44-byte write of a record in a 1M-record array, the
//! fast path's rewrite (`fwd::rewrite_v4_fixed`).
//!
//! ## Bursts (`burst/...`)
//! `burst/established/<method>/<dir>/<size>` is the established case through
//! `Director::process_burst`, [`BURST`] frames per call (the director reads ahead in
//! groups of 16 for tables of `Config::burst_read_ahead_from` entries and more: 64K and
//! 1M here, not 1K). Its baseline, `baseline-burst/...`, is the baseline staged the same
//! way: in groups of 16, every key hashed, then every key's record read along with the
//! next group's frames (the first group's are read before), then every frame rewritten.
//! The harness hands over the frames as `Packet`s, so both carry its cost. The ring's
//! slots start on 64-byte boundaries, as NIC receive buffers do.
//!
//! ## Checks
//! Before timing, every connection is ESTABLISHED and the table holds `size` of them.
//! After each case, every frame is put back and compared byte for byte with the frame
//! it started as (baseline FULLNAT frames: they must parse, checksums included), the
//! director has dropped nothing, and its packet counters account for every call.
//!
//! `LVS_BENCH_HUGEPAGES=1` asks for 2 MiB transparent huge pages (`MADV_HUGEPAGE`) under
//! the tables, the frames and the records, as a production director's storage would be
//! (the kernel's own tables sit in its huge-page direct map); by default the memory has
//! the ordinary 4 KiB pages.
//!
//! `LVS_BENCH_COUNT=N` runs every case without criterion, up to N packets in one call of
//! `lvs_bench_measure` (fewer when a pass is shorter: the count is printed), printing
//! `case <index> <name> <packets>`: `scripts/bench.sh` runs it under callgrind for
//! instructions per packet. `LVS_BENCH_SIZES=1K,64K` limits the table sizes.

#[path = "common/runner.rs"]
mod runner;
use runner::Runner;

use std::hash::Hasher;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant as WallClock};

use lvs_core::conn::state::TcpState;
use lvs_core::conn::table::{Conn, ConnTable, Proto, index_len_for, siphash13_14};
use lvs_core::director::{
    Config, DestMeta, DestSpec, Director, Packet, Rx, SchedStorage, Service, ServiceKey,
    ServiceSpec, Storage, Verdict,
};
use lvs_core::fwd::tun;
use lvs_core::fwd::{self, Endpoint};
use lvs_core::sched::{SchedFlags, SchedKind};
use lvs_core::service::{Method, RealServer};
use lvs_core::stats::DropReason;
use lvs_core::time::{Duration as LvsDuration, Instant};
use lvs_core::wire::{FrameInfo, L4Info};
use lvs_tests::frames::{self, Flow};
use siphasher::sip::SipHasher13;

/// The virtual service.
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VPORT: u16 = 80;
/// The real servers' port for NAT and FULLNAT (DR and TUN keep the virtual port).
const RPORT: u16 = 8080;
/// Real servers per service.
const N_REAL: usize = 8;
/// FULLNAT local addresses: 16 × 64,512 ports per real server leave room for 1M flows.
const N_LADDR: usize = 16;
/// The director's own address, the tunnel source.
const DIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The clock of every established case: nothing expires.
const NOW: Instant = Instant::from_secs(1000);
/// Ethernet header length (untagged).
const ETH: usize = 14;
/// Data frames: Ethernet + IPv4 + TCP + 6 bytes of payload, the Ethernet minimum.
const PAYLOAD: usize = 6;
const FRAME_LEN: usize = ETH + 20 + 20 + PAYLOAD;
/// Headroom for TUN (and for every frame of the setup).
const HEADROOM: usize = 40;
/// TCP ACK|PSH, SYN, SYN|ACK.
const ACK_PSH: u8 = 0x18;
const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
/// Seeds of the tables' SipHash keys and of the baseline's (same size, other values).
const SEED_V4: [u8; 16] = *b"lvs-bench-v4-key";
const SEED_V6: [u8; 16] = *b"lvs-bench-v6-key";
const SEED_BASE: [u8; 16] = *b"lvs-bench-base-k";
/// Fresh SYNs generated per untimed batch.
const BATCH: usize = 4096;

fn rip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 1 + i as u8)
}

fn lip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 2, 0, 1 + i as u8)
}

/// Client `i` of the established flows (retry `r` after a refused SYN): 32 ports per
/// address in 100.64.0.0/10.
fn client(i: usize, r: u16) -> Endpoint {
    let a = Ipv4Addr::from(0x6440_0000 + (i as u32 >> 5));
    Endpoint::new(IpAddr::V4(a), 1024 + (i as u16 & 31) * 2000 + r)
}

/// Fresh client `k` of the new-connection cases: 32 ports per address from 32.0.0.0.
fn fresh_client(k: u64) -> Endpoint {
    let a = Ipv4Addr::from(0x2000_0000u32.wrapping_add((k >> 5) as u32));
    Endpoint::new(IpAddr::V4(a), 1024 + (k as u16 & 31) * 2000)
}

fn v4(a: &IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => *a,
        IpAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// xorshift64: deterministic permutations and loads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A random permutation of `0..n`.
    fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            p.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
        p
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum M {
    Nat,
    FullNat,
    Dr,
    Tun,
}

impl M {
    const ALL: [M; 4] = [M::Nat, M::FullNat, M::Dr, M::Tun];

    fn name(self) -> &'static str {
        match self {
            M::Nat => "nat",
            M::FullNat => "fullnat",
            M::Dr => "dr",
            M::Tun => "tun",
        }
    }

    fn method(self) -> Method {
        match self {
            M::Nat => Method::Masq,
            M::FullNat => Method::FullNat,
            M::Dr => Method::DirectRoute,
            M::Tun => Method::Tunnel,
        }
    }

    /// Whether replies come back through the director.
    fn two_way(self) -> bool {
        matches!(self, M::Nat | M::FullNat)
    }

    fn rport(self) -> u16 {
        if self.two_way() { RPORT } else { VPORT }
    }

    /// Slot size and the frame's offset in it.
    fn stride(self) -> usize {
        if self == M::Tun { 128 } else { 64 }
    }

    fn head(self) -> usize {
        if self == M::Tun { HEADROOM } else { 0 }
    }
}

/// A frame to copy, and the rewrite that makes it another flow's.
struct Tmpl {
    frame: Vec<u8>,
    info: FrameInfo,
}

impl Tmpl {
    fn new(src: Endpoint, dst: Endpoint, flags: u8, payload: usize) -> Tmpl {
        let flow = Flow {
            src: src.addr,
            dst: dst.addr,
            sport: src.port,
            dport: dst.port,
        };
        let frame = frames::tcp(&flow, flags, &vec![0xa5; payload]);
        let info = FrameInfo::parse(&frame).expect("template parses");
        Tmpl { frame, info }
    }

    fn len(&self) -> usize {
        self.frame.len()
    }

    /// The template with its source and/or destination replaced, into `out`.
    fn write(&self, out: &mut [u8], src: Option<Endpoint>, dst: Option<Endpoint>) {
        let out = &mut out[..self.frame.len()];
        out.copy_from_slice(&self.frame);
        fwd::rewrite_tuple(out, &self.info, src, dst).expect("template rewrite");
    }
}

/// The frames of the cases: client → VIP data, SYN, and the real server's SYN/ACK.
struct Tmpls {
    data: Tmpl,
    syn: Tmpl,
    syn_ack: Tmpl,
}

impl Tmpls {
    fn new() -> Tmpls {
        let c = client(0, 0);
        let v = Endpoint::new(IpAddr::V4(VIP), VPORT);
        let r = Endpoint::new(IpAddr::V4(rip(0)), RPORT);
        let t = Tmpls {
            data: Tmpl::new(c, v, ACK_PSH, PAYLOAD),
            syn: Tmpl::new(c, v, SYN, 0),
            syn_ack: Tmpl::new(r, c, SYN_ACK, 0),
        };
        assert_eq!(t.data.len(), FRAME_LEN);
        t
    }

    fn eth(&self) -> [u8; ETH] {
        self.data.frame[..ETH].try_into().expect("ethernet header")
    }
}

/// Swaps source and destination (addresses and ports) of the IPv4/TCP frame at `head`:
/// no checksum changes, since every checksum covers both.
#[inline(always)]
fn swap(slot: &mut [u8], head: usize) {
    let f = &mut slot[head..head + ETH + 24];
    for i in 0..4 {
        f.swap(ETH + 12 + i, ETH + 16 + i);
    }
    for i in 0..2 {
        f.swap(ETH + 20 + i, ETH + 22 + i);
    }
}

/// Whether `LVS_BENCH_HUGEPAGES=1` asks for transparent huge pages (2 MiB) under the
/// table, the frames and the baseline's records.
fn hugepages() -> bool {
    std::env::var("LVS_BENCH_HUGEPAGES").is_ok_and(|v| v == "1")
}

/// `n` copies of `v`; with `LVS_BENCH_HUGEPAGES=1` the memory is advised for huge pages
/// (`madvise(MADV_HUGEPAGE)`) before it is first touched.
fn big<T: Clone>(n: usize, v: T) -> Vec<T> {
    let mut x: Vec<T> = Vec::with_capacity(n);
    if hugepages() {
        advise_huge(x.as_mut_ptr().cast(), n * size_of::<T>());
    }
    x.resize(n, v);
    x
}

#[cfg(target_os = "linux")]
fn advise_huge(p: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (p as usize).next_multiple_of(PAGE);
    let end = (p as usize + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: advice about the pages of an allocation this process owns; madvise
        // with MADV_HUGEPAGE changes no contents and no mapping the program relies on.
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        assert_eq!(r, 0, "madvise(MADV_HUGEPAGE)");
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *mut u8, _: usize) {}

/// The process's anonymous memory in huge pages (`/proc/self/smaps_rollup`), for the log.
fn huge_kib() -> String {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".to_string())
}

/// Runs `f` with a director over fresh storage: an IPv4 table of `cap` entries (indexes
/// of the minimum length), a one-entry IPv6 table.
fn with_director<R>(cap: usize, cfg: Config, f: impl FnOnce(&mut Director<'_>) -> R) -> R {
    let mut services: Vec<Option<Service<'_, 64>>> = (0..4).map(|_| None).collect();
    let mut sched: [SchedStorage<'_>; 0] = [];
    let mut dests: Vec<Option<RealServer>> = vec![None; 64];
    let mut meta = vec![DestMeta::EMPTY; 64];
    let mut laddrs: Vec<Option<IpAddr>> = vec![None; N_LADDR];
    let mut e4 = big(cap, Conn::<Ipv4Addr>::empty());
    let mut i4 = big(index_len_for(cap), 0u32);
    let mut o4 = big(index_len_for(cap), 0u32);
    let mut e6 = vec![Conn::<Ipv6Addr>::empty(); 1];
    let mut i6 = vec![0u32; index_len_for(1)];
    let mut o6 = vec![0u32; index_len_for(1)];
    let v4 = ConnTable::new(&mut e4, &mut i4, &mut o4, SEED_V4).expect("v4 table");
    let v6 = ConnTable::new(&mut e6, &mut i6, &mut o6, SEED_V6).expect("v6 table");
    let mut d = Director::new(
        cfg,
        NOW,
        Storage {
            services: &mut services,
            sched: &mut sched,
            dests: &mut dests,
            dest_meta: &mut meta,
            laddrs: &mut laddrs,
            v4,
            v6,
        },
    );
    f(&mut d)
}

fn config() -> Config {
    Config {
        tun_src_v4: Some(DIP),
        ..Config::default()
    }
}

fn service_key() -> ServiceKey {
    ServiceKey::Addr {
        proto: Proto::Tcp,
        addr: IpAddr::V4(VIP),
        port: VPORT,
    }
}

/// One wlc service on VIP:80 with `N_REAL` real servers of method `m`.
fn add_service(d: &mut Director<'_>, m: M) {
    if m == M::FullNat {
        for i in 0..N_LADDR {
            d.add_laddr(IpAddr::V4(lip(i))).expect("laddr");
        }
    }
    let key = service_key();
    d.add_service(
        ServiceSpec {
            key,
            sched: SchedKind::Wlc,
            flags: SchedFlags::default(),
            persistence: None,
            one_packet: false,
        },
        NOW,
    )
    .expect("service");
    for i in 0..N_REAL {
        let spec = DestSpec {
            addr: IpAddr::V4(rip(i)),
            port: m.rport(),
            method: m.method(),
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        d.add_dest(&key, spec, NOW).expect("real server");
    }
}

/// Processes the `len`-byte frame at `HEADROOM` in `buf`; the forwarded frame's range.
fn send(
    d: &mut Director<'_>,
    now: Instant,
    buf: &mut [u8],
    len: usize,
) -> Option<std::ops::Range<usize>> {
    match d.process(now, Rx::default(), buf, HEADROOM..HEADROOM + len) {
        Verdict::Forward { frame, .. } => Some(frame),
        _ => None,
    }
}

/// Opens `n` connections through `process` (SYN, the real server's SYN/ACK for NAT and
/// FULLNAT, the client's ACK) and returns their clients.
fn establish(d: &mut Director<'_>, m: M, t: &Tmpls, n: usize) -> Vec<Endpoint> {
    let mut buf = [0u8; 256];
    let mut clients = Vec::with_capacity(n);
    let mut refused = 0;
    for i in 0..n {
        let mut r = 0;
        let c = loop {
            let c = client(i, r);
            t.syn.write(&mut buf[HEADROOM..], Some(c), None);
            if let Some(out) = send(d, NOW, &mut buf, t.syn.len()) {
                if m.two_way() {
                    // The real server answers the SYN it got: dst:dport → src:sport.
                    let fi = FrameInfo::parse(&buf[out]).expect("forwarded SYN parses");
                    let (sp, dp) = fi.l4.ports().expect("ports");
                    t.syn_ack.write(
                        &mut buf[HEADROOM..],
                        Some(Endpoint::new(fi.ip.dst, dp)),
                        Some(Endpoint::new(fi.ip.src, sp)),
                    );
                    send(d, NOW, &mut buf, t.syn_ack.len()).expect("SYN/ACK forwarded");
                }
                break c;
            }
            // A full probe window refuses the SYN (a few in a million at index load 1/2,
            // near the end): another port.
            r += 1;
            refused += 1;
            assert!(r < 100, "flow {i}: SYN refused 100 times");
        };
        t.data.write(&mut buf[HEADROOM..], Some(c), None);
        send(d, NOW, &mut buf, FRAME_LEN).expect("ACK forwarded");
        clients.push(c);
    }
    let table = d.conns_v4();
    assert_eq!(table.len(), n, "{m:?}: table holds every flow");
    let est = table
        .iter()
        .filter(|(_, c)| c.state == TcpState::Established as u8)
        .count();
    assert_eq!(est, n, "{m:?}: every flow ESTABLISHED");
    assert_eq!(
        d.drops().total(),
        refused,
        "{m:?}: drops while establishing"
    );
    assert_eq!(
        d.drops().get(DropReason::TableFull),
        refused,
        "{m:?}: refused SYNs"
    );
    clients
}

/// Frames in their slots: slot `f` is flow `f`'s. Slots start on 64-byte boundaries,
/// as a NIC's receive buffers do (DPDK's mbufs, AF_XDP's frames): a large `Vec<u8>`
/// from malloc starts 16 bytes into a page, which would put every frame's TCP
/// checksum in a second cache line.
struct Ring {
    buf: Vec<u8>,
    /// Where slot 0 starts in `buf`.
    off: usize,
    stride: usize,
    head: usize,
}

impl Ring {
    /// The alignment of slot 0: a cache line.
    const LINE: usize = 64;

    /// `n` zeroed slots of `stride` bytes, frames `head` bytes into them.
    fn blank(n: usize, stride: usize, head: usize) -> Ring {
        const LINE: usize = Ring::LINE;
        let buf = big(n * stride + LINE, 0u8);
        let off = (buf.as_ptr() as usize).next_multiple_of(LINE) - buf.as_ptr() as usize;
        Ring {
            buf,
            off,
            stride,
            head,
        }
    }

    fn new(m: M, t: &Tmpls, clients: &[Endpoint]) -> Ring {
        let mut r = Ring::blank(clients.len(), m.stride(), m.head());
        for (f, &c) in clients.iter().enumerate() {
            let head = r.head;
            t.data.write(&mut r.slot(f)[head..], Some(c), None);
        }
        r
    }

    /// Every slot, in order.
    fn area(&mut self) -> &mut [u8] {
        let end = self.buf.len() - (Ring::LINE - self.off);
        &mut self.buf[self.off..end]
    }

    #[inline(always)]
    fn slot(&mut self, f: usize) -> &mut [u8] {
        let at = self.off + f * self.stride;
        &mut self.buf[at..at + self.stride]
    }

    /// The frame of slot `f`.
    fn frame(&self, f: usize) -> &[u8] {
        let at = self.off + f * self.stride + self.head;
        &self.buf[at..at + FRAME_LEN]
    }
}

/// What puts a slot back after the timed call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Restore {
    /// Nothing changed (DR, the harness).
    None,
    /// Swap, send the other direction, swap (NAT, FULLNAT).
    Flip,
    /// Copy the Ethernet header back (TUN).
    Eth([u8; ETH]),
}

/// A case over a ring: passes over the flows in `perm` order, the timed one calling `p`
/// on each slot, the untimed one restoring every slot.
struct Passes<'r, P> {
    p: P,
    ring: &'r mut Ring,
    perm: &'r [u32],
    pos: usize,
    restore: Restore,
    /// Calls of `p`, timed and untimed.
    calls: u64,
}

impl<'r, R, P: FnMut(&mut [u8]) -> R> Passes<'r, P> {
    fn new(p: P, ring: &'r mut Ring, perm: &'r [u32], restore: Restore) -> Self {
        Passes {
            p,
            ring,
            perm,
            pos: 0,
            restore,
            calls: 0,
        }
    }

    /// Untimed: restores a finished pass; up to `n` timed calls may follow.
    fn prepare(&mut self, n: u64) -> u64 {
        if self.pos == self.perm.len() {
            self.finish();
        }
        let k = n.min((self.perm.len() - self.pos) as u64);
        self.calls += k;
        k
    }

    /// One timed call: the next flow's frame.
    #[inline(always)]
    fn one(&mut self) -> R {
        let f = self.perm[self.pos] as usize;
        self.pos += 1;
        (self.p)(self.ring.slot(f))
    }

    /// Restores the slots the current pass has visited.
    fn finish(&mut self) {
        let head = self.ring.head;
        for k in 0..self.pos {
            let slot = self.ring.slot(self.perm[k] as usize);
            match self.restore {
                Restore::None => {}
                Restore::Flip => {
                    swap(slot, head);
                    black_box((self.p)(slot));
                    swap(slot, head);
                    self.calls += 1;
                }
                Restore::Eth(eth) => slot[head..head + ETH].copy_from_slice(&eth),
            }
        }
        self.pos = 0;
    }

    /// Sends every frame once, untimed, and swaps it: client frames become replies and
    /// replies client frames.
    fn flip_all(&mut self) {
        let head = self.ring.head;
        for f in 0..self.perm.len() {
            let slot = self.ring.slot(f);
            black_box((self.p)(slot));
            swap(slot, head);
            self.calls += 1;
        }
    }
}

/// Frames per `process_burst` call in the burst cases: a typical receive batch.
const BURST: usize = 32;

/// A burst case over a ring: as [`Passes`], the timed pass handing the flows' frames
/// to `p` [`BURST`] at a time (fewer only when criterion asks for fewer packets), so
/// that each timed call of `one` is still one packet. The untimed pass restores as
/// [`Passes`] does, through `p` too.
struct BurstPasses<'r, P> {
    p: P,
    slots: Vec<Option<&'r mut [u8]>>,
    head: usize,
    perm: &'r [u32],
    pos: usize,
    restore: Restore,
    /// Flows queued for the next burst, and how many it takes.
    queued: Vec<u32>,
    size: usize,
    pkts: Vec<Packet<&'r mut [u8]>>,
    calls: u64,
}

impl<'r, P: FnMut(&mut [Packet<&'r mut [u8]>])> BurstPasses<'r, P> {
    fn new(p: P, ring: &'r mut Ring, perm: &'r [u32], restore: Restore) -> Self {
        let (head, stride) = (ring.head, ring.stride);
        BurstPasses {
            p,
            slots: ring.area().chunks_mut(stride).map(Some).collect(),
            head,
            perm,
            pos: 0,
            restore,
            queued: Vec::with_capacity(BURST),
            size: BURST,
            pkts: Vec::with_capacity(BURST),
            calls: 0,
        }
    }

    /// Untimed: restores a finished pass; up to `n` timed calls may follow, a whole
    /// number of bursts.
    fn prepare(&mut self, n: u64) -> u64 {
        if self.pos == self.perm.len() {
            self.finish();
        }
        let k = n.min((self.perm.len() - self.pos) as u64) as usize;
        let k = if k >= BURST { k - k % BURST } else { k };
        self.size = k.min(BURST);
        self.calls += k as u64;
        k as u64
    }

    /// Sends the frames of `flows` as one burst, each swapped first when `flip`.
    #[inline(always)]
    fn burst(&mut self, flows: &[u32], flip: bool) {
        let head = self.head;
        for &f in flows {
            let slot = self.slots[f as usize]
                .take()
                .expect("a slot in one burst once");
            if flip {
                swap(slot, head);
            }
            self.pkts
                .push(Packet::new(Rx::default(), slot, head..head + FRAME_LEN));
        }
        (self.p)(&mut self.pkts);
        for (&f, pkt) in flows.iter().zip(self.pkts.drain(..)) {
            if flip {
                swap(pkt.buf, head);
            }
            self.slots[f as usize] = Some(pkt.buf);
        }
    }

    /// One timed call: queues the next flow's frame, and sends the burst when full.
    #[inline(always)]
    fn one(&mut self) {
        self.queued.push(self.perm[self.pos]);
        self.pos += 1;
        if self.queued.len() == self.size {
            let q = std::mem::take(&mut self.queued);
            self.burst(&q, false);
            self.queued = q;
            self.queued.clear();
        }
    }

    /// Restores the slots the current pass has visited.
    fn finish(&mut self) {
        assert!(self.queued.is_empty(), "a burst left unsent");
        let perm = self.perm;
        for chunk in perm[..self.pos].chunks(BURST) {
            match self.restore {
                Restore::None => {}
                Restore::Flip => {
                    self.burst(chunk, true);
                    self.calls += chunk.len() as u64;
                }
                Restore::Eth(eth) => {
                    let head = self.head;
                    for &f in chunk {
                        let slot = self.slots[f as usize].as_mut().expect("slot");
                        slot[head..head + ETH].copy_from_slice(&eth);
                    }
                }
            }
        }
        self.pos = 0;
    }

    /// Sends every frame once, untimed, and swaps it (as [`Passes::flip_all`]).
    fn flip_all(&mut self) {
        let all: Vec<u32> = (0..self.slots.len() as u32).collect();
        for chunk in all.chunks(BURST) {
            self.burst(chunk, false);
            for &f in chunk {
                let head = self.head;
                swap(self.slots[f as usize].as_mut().expect("slot"), head);
            }
            self.calls += chunk.len() as u64;
        }
    }
}

impl Runner {
    /// A case over state `s`: `prepare(s, n)` (untimed) readies up to `n` calls of `one`
    /// and says how many; `one(s)` is one packet.
    fn case<S, R>(
        &mut self,
        name: &str,
        s: &mut S,
        mut prepare: impl FnMut(&mut S, u64) -> u64,
        mut one: impl FnMut(&mut S) -> R,
    ) {
        match self {
            Runner::Criterion(c) => {
                c.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let mut left = iters;
                        let mut t = Duration::ZERO;
                        while left > 0 {
                            let k = prepare(s, left);
                            assert!(k > 0, "{name}: nothing to run");
                            let start = WallClock::now();
                            lvs_bench_measure(k, s, &mut one);
                            t += start.elapsed();
                            left -= k;
                        }
                        t
                    })
                });
            }
            Runner::Count { n, index } => {
                let k = prepare(s, *n);
                println!("case {index} {name} {k}");
                lvs_bench_measure(k, s, &mut one);
                *index += 1;
            }
        }
    }

    /// Runs a pass-based case.
    fn passes<R, P: FnMut(&mut [u8]) -> R>(&mut self, name: &str, p: &mut Passes<'_, P>) {
        self.case(name, p, |p, n| p.prepare(n), |p| p.one());
        p.finish();
    }

    /// Runs a burst case.
    fn bursts<'r, P: FnMut(&mut [Packet<&'r mut [u8]>])>(
        &mut self,
        name: &str,
        p: &mut BurstPasses<'r, P>,
    ) {
        self.case(name, p, |p, n| p.prepare(n), |p| p.one());
        p.finish();
    }
}

/// Runs `one` `n` times: the function callgrind's `--toggle-collect` and `--dump-after`
/// name, so one dump holds exactly one case's packets. Criterion times the same loop.
#[inline(never)]
fn lvs_bench_measure<S, R>(n: u64, s: &mut S, one: &mut impl FnMut(&mut S) -> R) {
    for _ in 0..n {
        black_box(one(s));
    }
}

// ------------------------------------------------------------------------- baseline

/// A 44-byte record, the size of an IPv4 `Conn`: the inbound and outbound targets.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Rec {
    in_src: [u8; 4],
    in_dst: [u8; 4],
    out_src: [u8; 4],
    out_dst: [u8; 4],
    in_sport: u16,
    in_dport: u16,
    out_sport: u16,
    out_dport: u16,
    _rest: [u32; 5],
}

const _: () = assert!(size_of::<Rec>() == size_of::<Conn<Ipv4Addr>>());

/// A SipHash-1-3 key, as the table holds it.
#[derive(Clone, Copy)]
struct SipKey(u64, u64);

impl SipKey {
    fn new(seed: &[u8; 16]) -> SipKey {
        let (k0, k1) = SipHasher13::new_with_key(seed).keys();
        SipKey(k0, k1)
    }
}

/// The table's key hash, by the table's own code (`conn::table::siphash13_14`):
/// SipHash-1-3 over kind, protocol, then each address and port in network order, the
/// 14 bytes as one little-endian `u64` and a 6-byte tail, as `Key::hash` feeds it.
#[inline(always)]
fn key_hash(h: &SipKey, kind: u8, a1: [u8; 4], p1: u16, a2: [u8; 4], p2: u16) -> u64 {
    let m0 = u64::from(kind)
        | u64::from(Proto::Tcp as u8) << 8
        | u64::from(u32::from_le_bytes(a1)) << 16
        | u64::from(p1.swap_bytes()) << 48;
    let tail = u64::from(u32::from_le_bytes(a2)) | u64::from(p2.swap_bytes()) << 32;
    siphash13_14(h.0, h.1, m0, tail)
}

/// The same hash through `siphasher`'s streaming API, fed whole words (a `u64`, a `u32`
/// and a `u16`): the same value (checked), for the `hash/siphash13/*` cases.
#[inline(always)]
fn key_hash_siphasher(
    h: &SipHasher13,
    kind: u8,
    a1: [u8; 4],
    p1: u16,
    a2: [u8; 4],
    p2: u16,
) -> u64 {
    let mut s = *h;
    let p1 = p1.to_be_bytes();
    s.write_u64(u64::from_le_bytes([
        kind,
        Proto::Tcp as u8,
        a1[0],
        a1[1],
        a1[2],
        a1[3],
        p1[0],
        p1[1],
    ]));
    s.write_u32(u32::from_le_bytes(a2));
    s.write_u16(u16::from_le_bytes(p2.to_be_bytes()));
    s.finish()
}

/// The key kinds of `conn::table`: a client-side flow, a real-server-side one.
const KIND_IN: u8 = 0;
const KIND_OUT: u8 = 2;

/// The 4-tuple of an untagged IPv4/TCP frame with a 20-byte header, read at fixed
/// offsets without any check: the least a forwarder reads.
#[inline(always)]
fn extract(frame: &[u8]) -> ([u8; 4], u16, [u8; 4], u16) {
    let f: &[u8; 38] = frame[..38].try_into().expect("38 bytes");
    let be16 = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
    let src = [f[26], f[27], f[28], f[29]];
    let dst = [f[30], f[31], f[32], f[33]];
    (src, be16(34), dst, be16(36))
}

/// The limit: hash, one record read, the rewrite.
struct Baseline {
    m: M,
    hasher: SipKey,
    records: Vec<Rec>,
    mask: usize,
    head: usize,
    ident: u16,
}

impl Baseline {
    /// Records for the director's connections, keyed as the table keys them.
    fn new(m: M, d: &Director<'_>, clients: &[Endpoint]) -> Baseline {
        let n = clients.len();
        assert!(n.is_power_of_two());
        let hasher = SipKey::new(&SEED_BASE);
        let table = d.conns_v4();
        let conn = |c: &Endpoint| {
            let id = table
                .lookup_in(Proto::Tcp, v4(&c.addr), c.port, VIP, VPORT)
                .expect("connection");
            *table.get(id).expect("live")
        };
        let c0 = conn(&clients[0]);
        let fill = |r: &mut Rec, c: &Conn<Ipv4Addr>, inbound: bool, outbound: bool| {
            if inbound {
                r.in_src = c.laddr.octets();
                r.in_sport = c.lport;
                r.in_dst = c.daddr.octets();
                r.in_dport = c.dport;
            }
            if outbound {
                r.out_src = VIP.octets();
                r.out_sport = VPORT;
                r.out_dst = c.caddr.octets();
                r.out_dport = c.cport;
            }
        };
        let mut r0 = Rec::default();
        fill(&mut r0, &c0, true, true);
        let mut records = big(n, r0);
        for cl in clients {
            let c = conn(cl);
            let h = key_hash(
                &hasher,
                KIND_IN,
                c.caddr.octets(),
                c.cport,
                c.vaddr.octets(),
                c.vport,
            );
            fill(&mut records[h as usize & (n - 1)], &c, true, false);
            if m.two_way() {
                let h = key_hash(
                    &hasher,
                    KIND_OUT,
                    c.daddr.octets(),
                    c.dport,
                    c.laddr.octets(),
                    c.lport,
                );
                fill(&mut records[h as usize & (n - 1)], &c, false, true);
            }
        }
        Baseline {
            m,
            hasher,
            records,
            mask: n - 1,
            head: m.head(),
            ident: 0,
        }
    }

    /// One packet: its next hop, as `process`'s verdict gives it.
    #[inline(always)]
    fn one(&mut self, slot: &mut [u8]) -> Result<IpAddr, fwd::Error> {
        let h = self.hash(slot);
        self.apply(slot, h)
    }

    /// The hash of a slot's frame's key.
    #[inline(always)]
    fn hash(&self, slot: &[u8]) -> u64 {
        let (src, sport, dst, dport) = extract(&slot[self.head..]);
        let kind = if dport == VPORT { KIND_IN } else { KIND_OUT };
        key_hash(&self.hasher, kind, src, sport, dst, dport)
    }

    /// A burst, staged as `process_burst` stages it: in groups of 16, every key hashed,
    /// then every key's record read along with the next group's frames (the first
    /// group's are read before), then every frame rewritten from its record.
    #[inline(always)]
    fn burst(&mut self, pkts: &mut [Packet<&mut [u8]>]) {
        const GROUP: usize = 16;
        // The same two bytes of each frame as the director: the IP protocol and the
        // 54th byte, in the next cache line when the frame does not start on one.
        let touch = |group: &[Packet<&mut [u8]>]| {
            group.iter().fold(0u8, |x, p| {
                x ^ p.buf[p.frame.start + 23] ^ p.buf[(p.frame.start + 53).min(p.frame.end - 1)]
            })
        };
        let n = pkts.len();
        let mut sink = touch(&pkts[..n.min(GROUP)]);
        let mut start = 0;
        while start < n {
            let end = n.min(start + GROUP);
            let mut hashes = [0u64; GROUP];
            for (p, h) in pkts[start..end].iter().zip(&mut hashes) {
                *h = self.hash(p.buf);
            }
            sink ^= touch(&pkts[end..n.min(end + GROUP)]);
            for &h in &hashes {
                sink ^= self.records[h as usize & self.mask].in_src[0];
            }
            for (p, &h) in pkts[start..end].iter_mut().zip(&hashes) {
                p.verdict = match self.apply(p.buf, h) {
                    Ok(hop) => Verdict::Forward {
                        frame: p.frame.clone(),
                        next_hop: hop,
                    },
                    Err(_) => Verdict::Local,
                };
            }
            start = end;
        }
        black_box(sink);
    }

    /// The record read and the rewrite, for a frame whose key hashes to `h`.
    #[inline(always)]
    fn apply(&mut self, slot: &mut [u8], h: u64) -> Result<IpAddr, fwd::Error> {
        let head = self.head;
        let (_, sport, dst, dport) = extract(&slot[head..]);
        let inbound = dport == VPORT;
        let r = self.records[h as usize & self.mask];
        let frame = head..head + FRAME_LEN;
        // The director's fast path's rewrite: `fwd::rewrite_v4_fixed`.
        let rewrite = |slot: &mut [u8], s, d, hop: [u8; 4]| {
            let ok = fwd::rewrite_v4_fixed(&mut slot[frame.clone()], true, (sport, dport), s, d);
            ok.then_some(IpAddr::V4(Ipv4Addr::from(hop)))
                .ok_or(fwd::Error::Mismatch)
        };
        match (self.m, inbound) {
            (M::Nat, true) => rewrite(slot, None, Some((r.in_dst, r.in_dport)), r.in_dst),
            (M::Nat, false) => rewrite(slot, Some((r.out_src, r.out_sport)), None, dst),
            (M::FullNat, true) => rewrite(
                slot,
                Some((r.in_src, r.in_sport)),
                Some((r.in_dst, r.in_dport)),
                r.in_dst,
            ),
            (M::FullNat, false) => rewrite(
                slot,
                Some((r.out_src, r.out_sport)),
                Some((r.out_dst, r.out_dport)),
                r.out_dst,
            ),
            (M::Dr, _) => Ok(IpAddr::V4(Ipv4Addr::from(r.in_dst))),
            (M::Tun, _) => {
                // The fast path's encapsulation: `tun::encap_v4_fixed`.
                self.ident = self.ident.wrapping_add(1);
                let total = u16::from_be_bytes([slot[head + 16], slot[head + 17]]);
                let dst = Ipv4Addr::from(r.in_dst);
                tun::encap_v4_fixed(slot, frame, total, DIP.octets(), r.in_dst, self.ident, 1500)
                    .map(|_| IpAddr::V4(dst))
                    .ok_or(fwd::Error::NoRoom)
            }
        }
    }
}

// ---------------------------------------------------------------- established flows

/// Checks that every frame of `ring` is flow `f`'s original client frame.
fn check_original(ring: &Ring, t: &Tmpls, clients: &[Endpoint], what: &str) {
    let mut want = [0u8; FRAME_LEN];
    for (f, &c) in clients.iter().enumerate() {
        t.data.write(&mut want, Some(c), None);
        assert!(
            ring.frame(f) == want,
            "{what}: frame of flow {f} not restored"
        );
    }
}

/// Checks that every frame of `ring` parses (so every checksum verifies).
fn check_parses(ring: &Ring, n: usize, what: &str) {
    for f in 0..n {
        let info = FrameInfo::parse(ring.frame(f)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(matches!(info.l4, L4Info::Tcp { .. }), "{what}: flow {f}");
    }
}

/// The director's counters after a case: nothing dropped, every call counted.
fn check_counters(d: &Director<'_>, before: (u64, u64), calls: u64, what: &str) {
    assert_eq!(d.drops().total(), before.1, "{what}: drops");
    let t = d.totals();
    assert_eq!(
        t.inpkts + t.outpkts - before.0,
        calls,
        "{what}: packets counted"
    );
}

/// Packets counted and packets dropped so far.
fn packets(d: &Director<'_>) -> (u64, u64) {
    (d.totals().inpkts + d.totals().outpkts, d.drops().total())
}

fn established(r: &mut Runner, size: &str, n: usize, rng: &mut Rng) {
    let t = Tmpls::new();
    let perm = rng.permutation(n);
    for m in M::ALL {
        with_director(n, config(), |d| {
            add_service(d, m);
            let clients = establish(d, m, &t, n);
            let mut ring = Ring::new(m, &t, &clients);
            let mut base_ring = Ring::new(m, &t, &clients);
            let mut base = Baseline::new(m, d, &clients);
            if hugepages() {
                eprintln!("# {}/{size}: AnonHugePages {}", m.name(), huge_kib());
            }
            let head = m.head();

            if m == M::Nat {
                let mut h = Passes::new(
                    |slot: &mut [u8]| black_box(slot[0]),
                    &mut ring,
                    &perm,
                    Restore::None,
                );
                r.passes(&format!("harness/established/{size}"), &mut h);
            }

            let restore = match m {
                M::Nat | M::FullNat => Restore::Flip,
                M::Dr => Restore::None,
                M::Tun => Restore::Eth(t.eth()),
            };
            let name = format!("established/{}/in/{size}", m.name());
            let before = packets(d);
            let mut p = Passes::new(
                |slot: &mut [u8]| d.process(NOW, Rx::default(), slot, head..head + FRAME_LEN),
                &mut ring,
                &perm,
                restore,
            );
            r.passes(&name, &mut p);
            let calls = p.calls;
            check_original(&ring, &t, &clients, &name);
            check_counters(d, before, calls, &name);

            let bname = format!("baseline/{name}");
            let mut p = Passes::new(
                |slot: &mut [u8]| base.one(slot),
                &mut base_ring,
                &perm,
                restore,
            );
            r.passes(&bname, &mut p);
            if m == M::FullNat {
                check_parses(&base_ring, n, &bname);
            } else {
                check_original(&base_ring, &t, &clients, &bname);
            }

            if m == M::Nat {
                // The same without the per-call expiry scan: what `sweep_budget` costs.
                let budget = d.config().sweep_budget;
                d.config_mut().sweep_budget = 0;
                let name = format!("{name}/sweep0");
                let before = packets(d);
                let mut p = Passes::new(
                    |slot: &mut [u8]| d.process(NOW, Rx::default(), slot, head..head + FRAME_LEN),
                    &mut ring,
                    &perm,
                    restore,
                );
                r.passes(&name, &mut p);
                let calls = p.calls;
                check_original(&ring, &t, &clients, &name);
                check_counters(d, before, calls, &name);
                d.config_mut().sweep_budget = budget;

                // The table's own lookup (hash and probe) of the same flows, same order.
                let mut l = Lookups {
                    table: d.conns_v4(),
                    keys: clients.iter().map(|c| (v4(&c.addr), c.port)).collect(),
                    perm: &perm,
                    pos: 0,
                };
                r.case(
                    &format!("lookup/in/{size}"),
                    &mut l,
                    |l, n| l.prepare(n),
                    |l| l.one(),
                );
                assert!(
                    l.keys
                        .iter()
                        .all(|&(a, p)| l.table.lookup_in(Proto::Tcp, a, p, VIP, VPORT).is_some()),
                    "lookup/in/{size}: every flow found"
                );
            }

            if m.two_way() {
                // Replies: every frame flipped once (untimed) first, and back at the end.
                let name = format!("established/{}/out/{size}", m.name());
                let before = packets(d);
                let mut p = Passes::new(
                    |slot: &mut [u8]| d.process(NOW, Rx::default(), slot, head..head + FRAME_LEN),
                    &mut ring,
                    &perm,
                    restore,
                );
                p.flip_all();
                r.passes(&name, &mut p);
                p.flip_all();
                let calls = p.calls;
                check_original(&ring, &t, &clients, &name);
                check_counters(d, before, calls, &name);

                let bname = format!("baseline/{name}");
                let mut p = Passes::new(
                    |slot: &mut [u8]| base.one(slot),
                    &mut base_ring,
                    &perm,
                    restore,
                );
                p.flip_all();
                r.passes(&bname, &mut p);
                p.flip_all();
                if m == M::FullNat {
                    check_parses(&base_ring, n, &bname);
                } else {
                    check_original(&base_ring, &t, &clients, &bname);
                }
            }
            // The same in bursts (`process_burst`), beside the baseline staged alike.
            for out in [false, true] {
                if out && !m.two_way() {
                    continue;
                }
                let dir = if out { "out" } else { "in" };
                let name = format!("burst/established/{}/{dir}/{size}", m.name());
                let before = packets(d);
                let mut p = BurstPasses::new(
                    |pkts: &mut [Packet<&mut [u8]>]| d.process_burst(NOW, pkts),
                    &mut ring,
                    &perm,
                    restore,
                );
                if out {
                    p.flip_all();
                }
                r.bursts(&name, &mut p);
                if out {
                    p.flip_all();
                }
                let calls = p.calls;
                drop(p);
                check_original(&ring, &t, &clients, &name);
                check_counters(d, before, calls, &name);

                let bname = format!("baseline-burst/established/{}/{dir}/{size}", m.name());
                let mut p = BurstPasses::new(
                    |pkts: &mut [Packet<&mut [u8]>]| base.burst(pkts),
                    &mut base_ring,
                    &perm,
                    restore,
                );
                if out {
                    p.flip_all();
                }
                r.bursts(&bname, &mut p);
                if out {
                    p.flip_all();
                }
                drop(p);
                if m == M::FullNat {
                    check_parses(&base_ring, n, &bname);
                } else {
                    check_original(&base_ring, &t, &clients, &bname);
                }
            }
            let est = d
                .conns_v4()
                .iter()
                .filter(|(_, c)| c.state == TcpState::Established as u8)
                .count();
            assert_eq!(est, n, "{}/{size}: every flow still ESTABLISHED", m.name());
        });
    }
}

/// `ConnTable::lookup_in` of established flows, in the permutation's order.
struct Lookups<'t, 'a, 'p> {
    table: &'t ConnTable<'a, Ipv4Addr>,
    keys: Vec<(Ipv4Addr, u16)>,
    perm: &'p [u32],
    pos: usize,
}

impl Lookups<'_, '_, '_> {
    fn prepare(&mut self, n: u64) -> u64 {
        if self.pos == self.perm.len() {
            self.pos = 0;
        }
        n.min((self.perm.len() - self.pos) as u64)
    }

    #[inline(always)]
    fn one(&mut self) -> Option<u32> {
        let (a, p) = self.keys[self.perm[self.pos] as usize];
        self.pos += 1;
        self.table.lookup_in(Proto::Tcp, a, p, VIP, VPORT)
    }
}

/// SipHash-1-3 of 1,024 random flow keys, four ways, all inlined: through `siphasher`
/// with five `write`s (one per field), the same 14 bytes in one `write`, and as whole
/// words (`u64`, `u32`, `u16`); and by the table's own written-out function, which the
/// table and the baseline use.
fn hashes(r: &mut Runner, rng: &mut Rng) {
    struct Keys {
        hasher: SipHasher13,
        table: SipKey,
        keys: Vec<([u8; 4], u16, [u8; 4], u16)>,
        i: usize,
    }
    impl Keys {
        #[inline(always)]
        fn next(&mut self) -> ([u8; 4], u16, [u8; 4], u16) {
            let k = self.keys[self.i];
            self.i = (self.i + 1) & (self.keys.len() - 1);
            k
        }
    }
    let mut k = Keys {
        hasher: SipHasher13::new_with_key(&SEED_BASE),
        table: SipKey::new(&SEED_BASE),
        keys: (0..1024)
            .map(|_| {
                let x = rng.next();
                (
                    (x as u32).to_be_bytes(),
                    (x >> 32) as u16,
                    VIP.octets(),
                    VPORT,
                )
            })
            .collect(),
        i: 0,
    };
    let five = |h: &SipHasher13, (a1, p1, a2, p2): ([u8; 4], u16, [u8; 4], u16)| {
        let mut s = *h;
        s.write(&[KIND_IN, Proto::Tcp as u8]);
        s.write(&a1);
        s.write(&p1.to_be_bytes());
        s.write(&a2);
        s.write(&p2.to_be_bytes());
        s.finish()
    };
    let one = |h: &SipHasher13, (a1, p1, a2, p2): ([u8; 4], u16, [u8; 4], u16)| {
        let mut b = [0u8; 16];
        b[0] = KIND_IN;
        b[1] = Proto::Tcp as u8;
        b[2..6].copy_from_slice(&a1);
        b[6..8].copy_from_slice(&p1.to_be_bytes());
        b[8..12].copy_from_slice(&a2);
        b[12..14].copy_from_slice(&p2.to_be_bytes());
        let mut s = *h;
        s.write(&b[..14]);
        s.finish()
    };
    // The three feed the same bytes: the same hash.
    for &(a1, p1, a2, p2) in &k.keys[..16] {
        let w = key_hash_siphasher(&k.hasher, KIND_IN, a1, p1, a2, p2);
        assert_eq!(w, five(&k.hasher, (a1, p1, a2, p2)), "5 writes");
        assert_eq!(w, one(&k.hasher, (a1, p1, a2, p2)), "1 write");
        assert_eq!(w, key_hash(&k.table, KIND_IN, a1, p1, a2, p2), "table's");
    }
    r.case(
        "hash/siphash13/5-writes",
        &mut k,
        |_, n| n,
        |k| {
            let key = k.next();
            five(&k.hasher, key)
        },
    );
    r.case(
        "hash/siphash13/1-write",
        &mut k,
        |_, n| n,
        |k| {
            let key = k.next();
            one(&k.hasher, key)
        },
    );
    r.case(
        "hash/siphash13/words",
        &mut k,
        |_, n| n,
        |k| {
            let (a1, p1, a2, p2) = k.next();
            key_hash_siphasher(&k.hasher, KIND_IN, a1, p1, a2, p2)
        },
    );
    r.case(
        "hash/siphash13/table",
        &mut k,
        |_, n| n,
        |k| {
            let (a1, p1, a2, p2) = k.next();
            key_hash(&k.table, KIND_IN, a1, p1, a2, p2)
        },
    );
}

// ----------------------------------------------------------------- new connections

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Flush (untimed) at half full.
    Room,
    /// The clock advances 1 ms every `SYNS_PER_MS` SYNs; the sweep frees.
    Expire,
    /// Full table, stopped clock: every SYN evicts.
    Evict,
}

const SYNS_PER_MS: u64 = 8;

/// Fresh SYNs through `process`, a batch at a time.
struct NewConns<'d, 'a> {
    d: &'d mut Director<'a>,
    syn: Tmpl,
    batch: Ring,
    pos: usize,
    next_flow: u64,
    now: Instant,
    policy: Policy,
    cap: usize,
    ms_carry: u64,
    calls: u64,
    /// Through `process_burst`, [`BURST`] SYNs at a time (`size`: the current burst's).
    burst: bool,
    size: usize,
    queued: usize,
}

impl NewConns<'_, '_> {
    fn prepare(&mut self, n: u64) -> u64 {
        if self.pos == BATCH {
            let head = self.batch.head;
            for i in 0..BATCH {
                let c = fresh_client(self.next_flow);
                self.next_flow += 1;
                self.syn
                    .write(&mut self.batch.slot(i)[head..], Some(c), None);
            }
            self.pos = 0;
        }
        let mut k = n.min((BATCH - self.pos) as u64);
        if self.burst {
            // Whole bursts (BATCH is a multiple of BURST), fewer only when asked for fewer.
            let b = BURST as u64;
            k = if k >= b { k - k % b } else { k };
            self.size = k.min(b) as usize;
        }
        match self.policy {
            Policy::Room => {
                if self.d.conns_v4().len() + k as usize > self.cap / 2 {
                    // Everything expires a day later: one full sweep empties the table.
                    self.now += LvsDuration::from_secs(86_400);
                    self.d.maintain(self.now, self.cap);
                    assert_eq!(self.d.conns_v4().len(), 0, "flushed");
                }
            }
            Policy::Expire => {
                self.ms_carry += k;
                self.now += LvsDuration::from_millis(self.ms_carry / SYNS_PER_MS);
                self.ms_carry %= SYNS_PER_MS;
            }
            Policy::Evict => {}
        }
        self.calls += k;
        k
    }

    #[inline(always)]
    fn one(&mut self) -> Verdict {
        let head = self.batch.head;
        let len = self.syn.len();
        if self.burst {
            self.pos += 1;
            self.queued += 1;
            if self.queued == self.size {
                let stride = self.batch.stride;
                let first = self.pos - self.queued;
                let mut pkts: Vec<Packet<&mut [u8]>> = self.batch.area()
                    [first * stride..self.pos * stride]
                    .chunks_mut(stride)
                    .map(|slot| Packet::new(Rx::default(), slot, head..head + len))
                    .collect();
                self.d.process_burst(self.now, &mut pkts);
                self.queued = 0;
                return pkts.pop().map_or(Verdict::Local, |p| p.verdict);
            }
            return Verdict::Local;
        }
        let slot = self.batch.slot(self.pos);
        self.pos += 1;
        self.d
            .process(self.now, Rx::default(), slot, head..head + len)
    }
}

/// The limit for a new connection: fixed-offset 4-tuple, one hash, one record read and
/// one record write, `nat::inbound`.
struct NewBase {
    hasher: SipKey,
    records: Vec<Rec>,
    mask: usize,
    syn: Tmpl,
    batch: Ring,
    pos: usize,
    next_flow: u64,
}

impl NewBase {
    fn prepare(&mut self, n: u64) -> u64 {
        if self.pos == BATCH {
            for i in 0..BATCH {
                let c = fresh_client(self.next_flow);
                self.next_flow += 1;
                self.syn.write(self.batch.slot(i), Some(c), None);
            }
            self.pos = 0;
        }
        n.min((BATCH - self.pos) as u64)
    }

    #[inline(always)]
    fn one(&mut self) -> Result<IpAddr, fwd::Error> {
        let len = self.syn.len();
        let slot = self.batch.slot(self.pos);
        self.pos += 1;
        let (src, sport, dst, dport) = extract(slot);
        let h = key_hash(&self.hasher, KIND_IN, src, sport, dst, dport);
        let i = h as usize & self.mask;
        let old = self.records[i];
        let rec = Rec {
            in_src: src,
            in_sport: sport,
            in_dst: rip(0).octets(),
            in_dport: RPORT,
            out_src: dst,
            out_sport: dport,
            // Something of the slot's old content survives, as an insert reads it first.
            _rest: [old._rest[0].wrapping_add(1), 0, 0, 0, 0],
            ..old
        };
        self.records[i] = rec;
        let ok = fwd::rewrite_v4_fixed(
            &mut slot[..len],
            true,
            (sport, dport),
            None,
            Some((rec.in_dst, rec.in_dport)),
        );
        ok.then_some(IpAddr::V4(Ipv4Addr::from(rec.in_dst)))
            .ok_or(fwd::Error::Mismatch)
    }
}

fn new_conns(r: &mut Runner) {
    // (method, policy, table capacity, case name)
    let cases = [
        (M::Nat, Policy::Room, 1 << 20, "room"),
        (M::FullNat, Policy::Room, 1 << 20, "room"),
        (M::Dr, Policy::Room, 1 << 20, "room"),
        (M::Tun, Policy::Room, 1 << 20, "room"),
        (M::Nat, Policy::Room, 1 << 16, "room-64K"),
        // The same through `process_burst` (named burst/new-conn/nat/room...).
        (M::Nat, Policy::Room, 1 << 20, "room+burst"),
        (M::Nat, Policy::Room, 1 << 16, "room-64K+burst"),
        (M::FullNat, Policy::Room, 1 << 20, "room+burst"),
        (M::Dr, Policy::Room, 1 << 20, "room+burst"),
        (M::Tun, Policy::Room, 1 << 20, "room+burst"),
        (M::Nat, Policy::Expire, 1 << 20, "expire"),
        (M::Nat, Policy::Evict, 1 << 16, "evict"),
    ];
    for (m, policy, cap, pname) in cases {
        with_director(cap, config(), |d| {
            add_service(d, m);
            let t = Tmpls::new();
            let mut s = NewConns {
                d,
                syn: t.syn,
                batch: Ring::blank(BATCH, m.stride(), m.head()),
                pos: BATCH,
                next_flow: 0,
                now: NOW,
                policy,
                cap,
                ms_carry: 0,
                calls: 0,
                burst: pname.ends_with("+burst"),
                size: BURST,
                queued: 0,
            };
            // Untimed warm-up: the evict table full, the expire table in steady state.
            let warm = match policy {
                Policy::Room => 0,
                Policy::Expire => 3 * cap as u64 / 2,
                Policy::Evict => cap as u64 + BATCH as u64,
            };
            let mut done = 0;
            while done < warm {
                let k = s.prepare(warm - done);
                for _ in 0..k {
                    black_box(s.one());
                }
                done += k;
            }
            if policy == Policy::Evict {
                assert_eq!(s.d.conns_v4().len(), cap, "evict: the table is full");
            }
            let conns = s.d.totals().conns;
            let calls = s.calls;
            let drops0 = s.d.drops().total();
            let name = match pname.strip_suffix("+burst") {
                Some(p) => format!("burst/new-conn/{}/{p}", m.name()),
                None => format!("new-conn/{}/{pname}", m.name()),
            };
            r.case(&name, &mut s, |s, n| s.prepare(n), |s| s.one());
            // A SYN whose key finds its probe window full (0.014 % of inserts into a full
            // table, see `conn::table::MAX_PROBE`) is dropped when no victim helps.
            let all_drops = s.d.drops().total();
            let full = s.d.drops().get(DropReason::TableFull);
            assert_eq!(all_drops, full, "{name}: drops other than TableFull");
            let drops = all_drops - drops0;
            assert!(
                drops * 1000 <= s.calls,
                "{name}: {drops} drops in {} SYNs",
                s.calls
            );
            assert_eq!(
                s.d.totals().conns - conns,
                s.calls - calls - drops,
                "{name}: every other SYN made a connection"
            );
            if policy != Policy::Room {
                eprintln!(
                    "# {name}: {} connections in the table at the end, {drops} SYNs dropped",
                    s.d.conns_v4().len()
                );
            }
            if m == M::Nat && pname == "room" {
                let mut b = NewBase {
                    hasher: SipKey::new(&SEED_BASE),
                    records: big(cap, Rec::default()),
                    mask: cap - 1,
                    syn: Tmpls::new().syn,
                    batch: Ring::blank(BATCH, 64, 0),
                    pos: BATCH,
                    next_flow: 0,
                };
                r.case(
                    &format!("baseline/{name}"),
                    &mut b,
                    |b, n| b.prepare(n),
                    |b| b.one(),
                );
                // The SYNs it rewrote (none if a filter skipped the case) still parse.
                let done = if b.next_flow == 0 { 0 } else { b.pos };
                for i in 0..done {
                    FrameInfo::parse(&b.batch.slot(i)[..b.syn.len()]).expect("baseline SYN parses");
                }
            }
        });
    }
}

fn sizes() -> Vec<(&'static str, usize)> {
    let all = [("1K", 1 << 10), ("64K", 1 << 16), ("1M", 1 << 20)];
    match std::env::var("LVS_BENCH_SIZES") {
        Ok(s) => all
            .into_iter()
            .filter(|(name, _)| s.split(',').any(|x| x == *name))
            .collect(),
        Err(_) => all.to_vec(),
    }
}

fn all(r: &mut Runner) {
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    for (name, n) in sizes() {
        established(r, name, n, &mut rng);
    }
    hashes(r, &mut rng);
    new_conns(r);
}

fn main() {
    // 1 s of timed packets a case (plus as much untimed restoring): the 1M cases see
    // millions of packets, far more than the 1M flows.
    runner::main(all, 300, 1000);
}
