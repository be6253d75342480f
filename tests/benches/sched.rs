//! The cost of one scheduling decision, `Scheduler::schedule`, for each of the 14
//! schedulers at 4, 64 and 1024 real servers, beside a baseline measured in the same
//! run: one `hash32` of the client address and one read of a 4,096-entry table of server
//! ids, the least a hashing scheduler does. Results: `BENCHMARKS.md`; the whole run:
//! `scripts/bench.sh`.
//!
//! - **Servers**: 10.1.x.y:80, weights uniform in 1..=100, active connections uniform in
//!   0.5..1.5 × the weight (half the weight for the server in the middle of the list, so
//!   that ovf always has one under its weight), inactive ones uniform in 0..=4 × active;
//!   no thresholds, so every server is available. The loads do not change during a case (`schedule` only
//!   changes the scheduler's own state): lc/wlc/sed/nq/fo/ovf/twos and the lblc/lblcr
//!   fallbacks scan the same list every time.
//! - **Inputs**: a ring of 16,384 new-connection inputs, each a random client address
//!   and port, `dst` (the address the client asked for, which dh, lblc and lblcr key on)
//!   one of 8,192 random sites, and 32 random bits (twos). Call `i` takes input
//!   `i % 16384`.
//! - **Tables**: sh and dh with the kernel's 256 buckets, mh with its default 4,093
//!   entries (`mh` takes up to 1,024 servers), lblc and lblcr with 16,384 entries (the
//!   kernel's lblc garbage-collection threshold). Before timing, lblc and lblcr see every
//!   input once, so each site has its entry: timed calls find it, as in a warm cache
//!   cluster.
//! - The scheduler is called through `&mut dyn Scheduler`, as `Director` calls it.
//!
//! `LVS_BENCH_COUNT=N` runs every case N times in `lvs_bench_measure` without criterion,
//! printing `case <index> <name> <N>`: `scripts/bench.sh` runs it under callgrind for
//! instructions per decision.

#[path = "common/runner.rs"]
mod runner;
use runner::Runner;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as WallClock;

use lvs_core::sched::dh::Dh;
use lvs_core::sched::fo::Fo;
use lvs_core::sched::lblc::{Lblc, LblcEntry};
use lvs_core::sched::lblcr::{Lblcr, LblcrEntry};
use lvs_core::sched::lc::Lc;
use lvs_core::sched::mh::{MH_DEFAULT_SIZE, Mh};
use lvs_core::sched::nq::Nq;
use lvs_core::sched::ovf::Ovf;
use lvs_core::sched::rr::Rr;
use lvs_core::sched::sed::Sed;
use lvs_core::sched::sh::Sh;
use lvs_core::sched::twos::Twos;
use lvs_core::sched::wlc::Wlc;
use lvs_core::sched::wrr::Wrr;
use lvs_core::sched::{Dests, SchedFlags, SchedInput, SchedKind, Scheduler, addr_key, hash32};
use lvs_core::service::{DestId, Method, RealServer};
use lvs_core::time::Instant;

/// Real servers per case.
const SIZES: [usize; 3] = [4, 64, 1024];
/// Inputs in the ring.
const INPUTS: usize = 16_384;
/// Distinct destination addresses (sites) among the inputs.
const SITES: usize = 8192;
/// lblc/lblcr table entries.
const LBLC_ENTRIES: usize = 16_384;
/// The baseline's table of server ids.
const BASE_TABLE: usize = 4096;
const NOW: Instant = Instant::from_secs(1000);

/// xorshift64.
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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` servers with random weights and loads, and the member list `0..n`.
fn servers(n: usize, rng: &mut Rng) -> (Vec<Option<RealServer>>, Vec<DestId>) {
    let table = (0..n)
        .map(|i| {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i as u32));
            let weight = 1 + rng.below(100) as u32;
            let mut s = RealServer::new(addr, 80, Method::Masq, weight);
            s.active_conns = weight * (50 + rng.below(101) as u32) / 100;
            if i == n / 2 {
                // At least one server under its weight, so ovf has a choice.
                s.active_conns = weight / 2;
            }
            s.inactive_conns = rng.below(4 * u64::from(s.active_conns) + 1) as u32;
            Some(s)
        })
        .collect();
    (table, (0..n as DestId).collect())
}

fn inputs(rng: &mut Rng) -> Vec<SchedInput> {
    let sites: Vec<IpAddr> = (0..SITES)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    (0..INPUTS)
        .map(|_| SchedInput {
            src: IpAddr::V4(Ipv4Addr::from(0x6440_0000 + rng.below(1 << 22) as u32)),
            dst: sites[rng.below(SITES as u64) as usize],
            src_port: 1024 + rng.below(64_512) as u16,
            dst_port: 80,
            now: NOW,
            random: rng.next() as u32,
        })
        .collect()
}

/// Storage the table-based schedulers borrow.
struct Tables {
    mh: Vec<u16>,
    lblc: Vec<LblcEntry>,
    lblcr: Vec<LblcrEntry>,
}

impl Tables {
    fn new() -> Tables {
        Tables {
            mh: vec![0; MH_DEFAULT_SIZE],
            lblc: vec![LblcEntry::EMPTY; LBLC_ENTRIES],
            lblcr: vec![LblcrEntry::EMPTY; LBLC_ENTRIES],
        }
    }

    /// The scheduler `kind` with default flags, over this storage.
    fn sched(&mut self, kind: SchedKind) -> Box<dyn Scheduler + '_> {
        let flags = SchedFlags::default();
        match kind {
            SchedKind::Rr => Box::new(Rr::new()),
            SchedKind::Wrr => Box::new(Wrr::new()),
            SchedKind::Lc => Box::new(Lc::new()),
            SchedKind::Wlc => Box::new(Wlc::new()),
            SchedKind::Sed => Box::new(Sed::new()),
            SchedKind::Nq => Box::new(Nq::new()),
            SchedKind::Dh => Box::new(Dh::<256>::new()),
            SchedKind::Sh => Box::new(Sh::<256>::new(flags)),
            SchedKind::Fo => Box::new(Fo::new()),
            SchedKind::Ovf => Box::new(Ovf::new()),
            SchedKind::Twos => Box::new(Twos::new()),
            SchedKind::Mh => Box::new(Mh::new(&mut self.mh, flags).expect("mh table size")),
            SchedKind::Lblc => Box::new(Lblc::new(&mut self.lblc)),
            SchedKind::Lblcr => Box::new(Lblcr::new(&mut self.lblcr)),
        }
    }
}

impl Runner {
    fn case<S, R>(&mut self, name: &str, s: &mut S, mut one: impl FnMut(&mut S) -> R) {
        match self {
            Runner::Criterion(c) => {
                c.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let start = WallClock::now();
                        lvs_bench_measure(iters, s, &mut one);
                        start.elapsed()
                    })
                });
            }
            Runner::Count { n, index } => {
                println!("case {index} {name} {n}");
                lvs_bench_measure(*n, s, &mut one);
                *index += 1;
            }
        }
    }
}

/// Runs `one` `n` times: the function callgrind's `--toggle-collect` and `--dump-after`
/// name, so one dump holds exactly one case. Criterion times the same loop.
#[inline(never)]
fn lvs_bench_measure<S, R>(n: u64, s: &mut S, one: &mut impl FnMut(&mut S) -> R) {
    for _ in 0..n {
        black_box(one(s));
    }
}

/// A case's state: the scheduler, its servers, the input ring.
struct Case<'s> {
    sched: Box<dyn Scheduler + 's>,
    table: &'s [Option<RealServer>],
    members: &'s [DestId],
    inputs: &'s [SchedInput],
    i: usize,
}

impl Case<'_> {
    #[inline(always)]
    fn one(&mut self) -> Option<DestId> {
        let input = &self.inputs[self.i];
        self.i += 1;
        if self.i == self.inputs.len() {
            self.i = 0;
        }
        self.sched
            .schedule(Dests::new(self.table, self.members), input)
    }
}

/// The baseline: one hash32 of the client address, one read of a table of ids.
struct Base<'s> {
    table: Vec<DestId>,
    inputs: &'s [SchedInput],
    i: usize,
}

impl Base<'_> {
    #[inline(always)]
    fn one(&mut self) -> Option<DestId> {
        let input = &self.inputs[self.i];
        self.i += 1;
        if self.i == self.inputs.len() {
            self.i = 0;
        }
        let h = hash32(addr_key(&input.src), 0x9e37_79b9) as usize;
        self.table.get(h & (BASE_TABLE - 1)).copied()
    }
}

fn all(r: &mut Runner) {
    let mut rng = Rng(0x5c4e_d00d_1234_5678);
    let inputs = inputs(&mut rng);
    let mut base = Base {
        table: (0..BASE_TABLE).map(|_| rng.below(1024) as DestId).collect(),
        inputs: &inputs,
        i: 0,
    };
    r.case("baseline/sched/hash32+read", &mut base, |b| b.one());
    for n in SIZES {
        let (table, members) = servers(n, &mut rng);
        for kind in SchedKind::ALL {
            let mut tables = Tables::new();
            let mut sched = tables.sched(kind);
            sched.update(Dests::new(&table, &members));
            let mut case = Case {
                sched,
                table: &table,
                members: &members,
                inputs: &inputs,
                i: 0,
            };
            // Every input once: lblc/lblcr learn every site; every scheduler must find
            // a server for every input (all servers are available).
            for _ in 0..inputs.len() {
                assert!(case.one().is_some(), "{}/{n}: no server", kind.name());
            }
            r.case(&format!("sched/{}/{n}", kind.name()), &mut case, |c| {
                c.one()
            });
        }
    }
}

fn main() {
    // About 1 s a case, ~45 s for the 43 cases.
    runner::main(all, 200, 700);
}
