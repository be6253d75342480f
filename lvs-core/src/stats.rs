//! Traffic statistics as `ipvsadm` shows them, and why packets were dropped.
//!
//! - [`Counters`]: the kernel's `ip_vs_kstats` counters (`ipvsadm -L --stats`: Conns,
//!   InPkts, OutPkts, InBytes, OutBytes), one set per virtual service, per real server
//!   and in total.
//! - [`Estimator`]: the kernel's rate estimator (`ip_vs_est.c`): every 2 seconds an
//!   exponentially weighted moving average with weight 1/4 in fixed point, read back as
//!   `ipvsadm -L --rate` prints it ([`Rates`]: CPS, InPPS, OutPPS, InBPS, OutBPS).
//! - [`DropReason`] and [`DropCounters`]: what a director drops a packet for, counted per
//!   reason.
//!
//! "In" is client to real server, "out" real server to client, as in IPVS; for DR and
//! TUN the director sees no "out" traffic.
//!
//! ## Guarantees
//! - No panic: counters wrap at 2^64 as the kernel's `u64` counters do, the estimator
//!   uses wrapping fixed-point arithmetic and bounds the work a long gap costs.
//! - No allocation, no clock: the estimator is driven by the [`Instant`]s it is given.

use crate::time::{Duration, Instant};
use crate::{fwd, wire};

/// Connection, packet and byte counters (the kernel's `struct ip_vs_kstats` counters).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets from clients.
    pub inpkts: u64,
    /// Packets from real servers (NAT and FULLNAT only).
    pub outpkts: u64,
    /// Bytes from clients, counted as the kernel does: the IP packet's length.
    pub inbytes: u64,
    /// Bytes from real servers.
    pub outbytes: u64,
}

impl Counters {
    /// All zero.
    pub const ZERO: Counters = Counters {
        conns: 0,
        inpkts: 0,
        outpkts: 0,
        inbytes: 0,
        outbytes: 0,
    };

    /// Counts one packet of `bytes` bytes from a client (`ip_vs_in_stats`).
    #[inline]
    pub const fn add_in(&mut self, bytes: usize) {
        self.inpkts = self.inpkts.wrapping_add(1);
        self.inbytes = self.inbytes.wrapping_add(bytes as u64);
    }

    /// Counts one packet of `bytes` bytes from a real server (`ip_vs_out_stats`).
    #[inline]
    pub const fn add_out(&mut self, bytes: usize) {
        self.outpkts = self.outpkts.wrapping_add(1);
        self.outbytes = self.outbytes.wrapping_add(bytes as u64);
    }

    /// Counts one new connection (`ip_vs_conn_stats`).
    #[inline]
    pub const fn add_conn(&mut self) {
        self.conns = self.conns.wrapping_add(1);
    }

    /// Zeroes every counter (`ipvsadm -Z`; reset the [`Estimator`] reading these with
    /// [`Estimator::zero`] at the same time).
    #[inline]
    pub const fn zero(&mut self) {
        *self = Counters::ZERO;
    }
}

/// Rates in per-second units, as `ipvsadm -L --rate` prints them.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rates {
    /// Connections per second (CPS).
    pub cps: u64,
    /// Packets per second from clients (InPPS).
    pub inpps: u64,
    /// Packets per second from real servers (OutPPS).
    pub outpps: u64,
    /// Bytes (not bits) per second from clients (InBPS).
    pub inbps: u64,
    /// Bytes per second from real servers (OutBPS).
    pub outbps: u64,
}

/// The kernel's rate estimator (`ip_vs_est.c`, `struct ip_vs_estimator`).
///
/// Every 2 seconds each rate moves a quarter of the way towards the rate of the last
/// period: `avg += (rate - avg) / 4`, in the kernel's fixed point (connections and
/// packets per second scaled by 2^10, bytes per second by 2^5), with the kernel's
/// arithmetic shift. [`Estimator::rates`] reads it back rounded as
/// `ip_vs_read_estimator` does. A steady rate is reached to within 1% after 17 periods
/// (34 s).
///
/// [`Estimator::tick`] may be called as often as the caller likes: it acts only when a
/// 2-second period has ended, on a fixed grid from the instant the estimator started.
/// When several periods ended since the last call, the traffic counted meanwhile is
/// spread evenly over them and each is averaged in turn, so a late call neither shows a
/// spike nor loses counts (the kernel, whose estimator thread is never that late,
/// would put the whole delta in one period). After [`Estimator::MAX_CATCH_UP`] periods
/// the average has converged whatever it was, so a gap of any length costs at most
/// that many steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Estimator {
    /// The counters at the end of the last period averaged in.
    last: Counters,
    /// Connections per second, scaled by 2^10.
    cps: u64,
    /// Packets per second in, scaled by 2^10.
    inpps: u64,
    /// Packets per second out, scaled by 2^10.
    outpps: u64,
    /// Bytes per second in, scaled by 2^5.
    inbps: u64,
    /// Bytes per second out, scaled by 2^5.
    outbps: u64,
    /// When the current period ends.
    next: Instant,
}

/// The estimation period in milliseconds.
const PERIOD_MS: u64 = 2000;

/// One step of the kernel's average: `avg += (rate - avg) >> 2`, signed, wrapping.
#[inline]
const fn ewma(avg: u64, rate: u64) -> u64 {
    avg.wrapping_add_signed((rate as i64).wrapping_sub(avg as i64) >> 2)
}

/// The count of period `j` (0 = oldest) when `delta` is spread over `n` periods: an
/// equal share, the remainder going one each to the oldest periods.
#[inline]
const fn share(delta: u64, n: u64, j: u64) -> u64 {
    delta / n + (j < delta % n) as u64
}

impl Estimator {
    /// The estimation period: 2 seconds, as in the kernel.
    pub const PERIOD: Duration = Duration::from_millis(PERIOD_MS);

    /// The most periods one [`Estimator::tick`] averages in. From any state, this many
    /// steps bring every average to within its rounding of the rate of the periods
    /// averaged (each step takes a quarter of the difference: (3/4)^160 · 2^64 < 1), so
    /// skipping older periods of a longer gap changes nothing.
    pub const MAX_CATCH_UP: u64 = 160;

    /// An estimator whose first period starts at `now`, taking `counters` as its
    /// baseline (so counts from before it started are not seen as traffic).
    pub const fn new(now: Instant, counters: &Counters) -> Estimator {
        Estimator {
            last: *counters,
            cps: 0,
            inpps: 0,
            outpps: 0,
            inbps: 0,
            outbps: 0,
            next: Instant::from_millis(now.total_millis().saturating_add(PERIOD_MS)),
        }
    }

    /// Averages in every 2-second period that ended at or before `now`, given the
    /// counters as they are at `now`. Returns how many periods ended (0 when `now` is
    /// still inside the current period, or earlier).
    pub fn tick(&mut self, now: Instant, counters: &Counters) -> u64 {
        if now < self.next {
            return 0;
        }
        let late = now.saturating_since(self.next).total_millis();
        let n = late / PERIOD_MS + 1;
        self.next = Instant::from_millis(
            self.next
                .total_millis()
                .saturating_add(n.saturating_mul(PERIOD_MS)),
        );

        let d_conns = counters.conns.wrapping_sub(self.last.conns);
        let d_inpkts = counters.inpkts.wrapping_sub(self.last.inpkts);
        let d_outpkts = counters.outpkts.wrapping_sub(self.last.outpkts);
        let d_inbytes = counters.inbytes.wrapping_sub(self.last.inbytes);
        let d_outbytes = counters.outbytes.wrapping_sub(self.last.outbytes);

        let first = n - n.min(Estimator::MAX_CATCH_UP);
        for j in first..n {
            // Scaled by 2^10 (or 2^5), divided by the 2-second period.
            self.cps = ewma(self.cps, share(d_conns, n, j) << 9);
            self.inpps = ewma(self.inpps, share(d_inpkts, n, j) << 9);
            self.outpps = ewma(self.outpps, share(d_outpkts, n, j) << 9);
            self.inbps = ewma(self.inbps, share(d_inbytes, n, j) << 4);
            self.outbps = ewma(self.outbps, share(d_outbytes, n, j) << 4);
        }
        self.last = *counters;
        n
    }

    /// The rates per second, rounded as `ip_vs_read_estimator` rounds them.
    pub const fn rates(&self) -> Rates {
        Rates {
            cps: self.cps.wrapping_add(0x1FF) >> 10,
            inpps: self.inpps.wrapping_add(0x1FF) >> 10,
            outpps: self.outpps.wrapping_add(0x1FF) >> 10,
            inbps: self.inbps.wrapping_add(0xF) >> 5,
            outbps: self.outbps.wrapping_add(0xF) >> 5,
        }
    }

    /// Zeroes the rates and takes `counters` as the new baseline
    /// (`ip_vs_zero_estimator`, part of `ipvsadm -Z`). The period grid is unchanged.
    pub const fn zero(&mut self, counters: &Counters) {
        self.last = *counters;
        self.cps = 0;
        self.inpps = 0;
        self.outpps = 0;
        self.inbps = 0;
        self.outbps = 0;
    }
}

impl Default for Estimator {
    /// Started at [`Instant::ZERO`] on zero counters.
    fn default() -> Estimator {
        Estimator::new(Instant::ZERO, &Counters::ZERO)
    }
}

/// Why the director dropped a packet.
///
/// Some of these the kernel does not drop but hands to the host's own stack (which then
/// answers or discards): [`DropReason::NotSyn`] and [`DropReason::IcmpUnrelated`]. A
/// packet for no virtual service is not dropped at all: it is not the director's and
/// goes to the host.
#[non_exhaustive]
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// Malformed: the frame ends before a header, or before the length a header claims
    /// ([`wire::Error::Truncated`]).
    Truncated = 0,
    /// Malformed: a header field is invalid (IP version, header length, total length,
    /// an IPv6 extension chain too long, an unsupported encapsulation).
    BadHeader = 1,
    /// Malformed: the IPv4 header checksum does not verify.
    BadChecksum = 2,
    /// A fragment the director cannot place: it does not reassemble, and a later
    /// fragment belongs to no known connection (the kernel reassembles first).
    Fragment = 3,
    /// A new connection for a virtual service with no available real server (none, all
    /// of weight 0, or all overloaded): the kernel's `ip_vs_leave`, which also answers
    /// ICMP port unreachable.
    NoDest = 4,
    /// The connection table has no room for a new connection (the kernel's table has no
    /// fixed size; it fails only when memory does).
    TableFull = 5,
    /// A TCP segment for a virtual service that is not a SYN and belongs to no
    /// connection (the kernel, without `sloppy_tcp`, passes it to the host's stack).
    NotSyn = 6,
    /// The packet would exceed the MTU once encapsulated: with DF set (or IPv6) the
    /// client gets ICMP "fragmentation needed" / "packet too big", as from the kernel;
    /// without DF the kernel would fragment and this crate does not.
    TooBig = 7,
    /// The real server's address family cannot carry the packet with its forwarding
    /// method.
    FamilyMismatch = 8,
    /// The forwarding rewrite refused the frame (no room in the buffer, a frame that does
    /// not match its parse).
    RewriteFailed = 9,
    /// A packet of a connection whose real server was removed (no longer
    /// `IP_VS_DEST_F_AVAILABLE`). The kernel drops it; with `expire_nodest_conn` it also
    /// expires the connection at once.
    DestUnavailable = 10,
    /// An ICMP error that quotes no known connection, or an ICMP message of a type the
    /// director does not relate to connections (the kernel passes both to the host).
    IcmpUnrelated = 11,
    /// Shed by a defense or rate limit, such as the kernel's `drop_packet` defense
    /// (`ip_vs_todrop`), which drops a share of new connections under memory pressure.
    RateLimited = 12,
    /// A new connection's key collides with an existing one's: typically two NAT
    /// services sending the same client port to the same real server port, which the
    /// real server itself could not tell apart.
    KeyCollision = 13,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 14;

    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadHeader,
        DropReason::BadChecksum,
        DropReason::Fragment,
        DropReason::NoDest,
        DropReason::TableFull,
        DropReason::NotSyn,
        DropReason::TooBig,
        DropReason::FamilyMismatch,
        DropReason::RewriteFailed,
        DropReason::DestUnavailable,
        DropReason::IcmpUnrelated,
        DropReason::RateLimited,
        DropReason::KeyCollision,
    ];

    /// The reason with discriminant `v`.
    pub const fn from_u8(v: u8) -> Option<DropReason> {
        if (v as usize) < DropReason::COUNT {
            Some(DropReason::ALL[v as usize])
        } else {
            None
        }
    }

    /// A `snake_case` name for listings and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadHeader => "bad_header",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Fragment => "fragment",
            DropReason::NoDest => "no_dest",
            DropReason::TableFull => "table_full",
            DropReason::NotSyn => "not_syn",
            DropReason::TooBig => "too_big",
            DropReason::FamilyMismatch => "family_mismatch",
            DropReason::RewriteFailed => "rewrite_failed",
            DropReason::DestUnavailable => "dest_unavailable",
            DropReason::IcmpUnrelated => "icmp_unrelated",
            DropReason::RateLimited => "rate_limited",
            DropReason::KeyCollision => "key_collision",
        }
    }

    /// Whether the packet itself was malformed (truncated, bad header, bad checksum).
    pub const fn is_malformed(self) -> bool {
        matches!(
            self,
            DropReason::Truncated | DropReason::BadHeader | DropReason::BadChecksum
        )
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parse error folded into the three malformed reasons.
impl From<wire::Error> for DropReason {
    fn from(e: wire::Error) -> DropReason {
        match e {
            wire::Error::Truncated => DropReason::Truncated,
            wire::Error::BadChecksum => DropReason::BadChecksum,
            wire::Error::BadVersion
            | wire::Error::BadHeaderLen
            | wire::Error::BadLength
            | wire::Error::ExtHeaderChain
            | wire::Error::Unsupported => DropReason::BadHeader,
        }
    }
}

/// A refused rewrite: the MTU errors are [`DropReason::TooBig`], a fragment
/// [`DropReason::Fragment`], an unparsable inner packet its parse error's reason.
impl From<fwd::Error> for DropReason {
    fn from(e: fwd::Error) -> DropReason {
        match e {
            fwd::Error::FamilyMismatch => DropReason::FamilyMismatch,
            fwd::Error::NotIcmpError => DropReason::IcmpUnrelated,
            fwd::Error::Fragmented => DropReason::Fragment,
            fwd::Error::FragNeeded { .. } | fwd::Error::TooBig => DropReason::TooBig,
            fwd::Error::Inner(e) => DropReason::from(e),
            fwd::Error::Mismatch | fwd::Error::NotTunnel | fwd::Error::NoRoom => {
                DropReason::RewriteFailed
            }
        }
    }
}

/// Dropped packets counted per [`DropReason`].
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl DropCounters {
    /// All zero.
    pub const ZERO: DropCounters = DropCounters {
        counts: [0; DropReason::COUNT],
    };

    /// Counts one drop for `reason`.
    #[inline]
    pub const fn inc(&mut self, reason: DropReason) {
        let c = &mut self.counts[reason as usize];
        *c = c.wrapping_add(1);
    }

    /// The drops counted for `reason`.
    #[inline]
    pub const fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Every reason with its count, in [`DropReason::ALL`] order (zeros included).
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> {
        DropReason::ALL.into_iter().zip(self.counts)
    }

    /// All drops (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |t, &c| t.saturating_add(c))
    }

    /// Zeroes every count.
    #[inline]
    pub const fn zero(&mut self) {
        *self = DropCounters::ZERO;
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn secs(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    /// Steady traffic: `cps` connections, `pps` packets each way of `size` bytes, per
    /// second, as counters at `t` seconds.
    fn steady(t: u64, cps: u64, pps: u64, size: u64) -> Counters {
        Counters {
            conns: cps * t,
            inpkts: pps * t,
            outpkts: pps * t,
            inbytes: pps * size * t,
            outbytes: pps * size * t,
        }
    }

    fn within(got: u64, want: u64, pct: u64) -> bool {
        got.abs_diff(want) * 100 <= want * pct
    }

    #[test]
    fn test_counters() {
        let mut c = Counters::default();
        c.add_conn();
        c.add_in(60);
        c.add_in(1500);
        c.add_out(40);
        assert_eq!(
            c,
            Counters {
                conns: 1,
                inpkts: 2,
                outpkts: 1,
                inbytes: 1560,
                outbytes: 40
            }
        );
        c.zero();
        assert_eq!(c, Counters::ZERO);
        // Wraps like the kernel's u64 counters instead of panicking.
        let mut c = Counters {
            inbytes: u64::MAX,
            conns: u64::MAX,
            ..Counters::ZERO
        };
        c.add_in(2);
        c.add_conn();
        assert_eq!((c.inbytes, c.conns), (1, 0));
    }

    #[test]
    fn test_one_period_is_the_kernels_arithmetic() {
        let mut e = Estimator::new(secs(0), &Counters::ZERO);
        let c = steady(2, 1000, 10_000, 100);
        assert_eq!(e.tick(secs(1), &c), 0);
        assert_eq!(e.tick(Instant::from_millis(1999), &c), 0);
        assert_eq!(e.tick(secs(2), &c), 1);
        // 2000 conns in 2 s: rate 2000 << 9, avg = rate >> 2 = 256000, read 250.
        assert_eq!(e.cps, 256_000);
        assert_eq!(e.inbps, (2_000_000u64 << 4) >> 2);
        assert_eq!(
            e.rates(),
            Rates {
                cps: 250,
                inpps: 2500,
                outpps: 2500,
                inbps: 250_000,
                outbps: 250_000
            }
        );
        // Nothing more until the next period ends.
        assert_eq!(
            e.tick(Instant::from_millis(3999), &steady(4, 1000, 10_000, 100)),
            0
        );
    }

    #[test]
    fn test_converges_to_a_steady_rate() {
        let mut e = Estimator::new(secs(0), &Counters::ZERO);
        for t in (2..=60).step_by(2) {
            assert_eq!(e.tick(secs(t), &steady(t, 1000, 10_000, 1000)), 1);
        }
        let r = e.rates();
        assert!(within(r.cps, 1000, 1), "{r:?}");
        assert!(within(r.inpps, 10_000, 1), "{r:?}");
        assert!(within(r.outpps, 10_000, 1), "{r:?}");
        assert!(within(r.inbps, 10_000_000, 1), "{r:?}");
        assert!(within(r.outbps, 10_000_000, 1), "{r:?}");
    }

    #[test]
    fn test_decays_to_zero_after_traffic_stops() {
        let mut e = Estimator::new(secs(0), &Counters::ZERO);
        for t in (2..=60).step_by(2) {
            e.tick(secs(t), &steady(t, 1000, 10_000, 1000));
        }
        let stopped = steady(60, 1000, 10_000, 1000);
        let mut prev = e.rates().cps;
        for t in (62..=80).step_by(2) {
            e.tick(secs(t), &stopped);
            let cps = e.rates().cps;
            assert!(cps < prev || cps == 0, "{cps} {prev}");
            prev = cps;
        }
        // (3/4)^10 of 1000: about 56.
        assert!((50..=60).contains(&prev), "{prev}");
        for t in (82..=400).step_by(2) {
            e.tick(secs(t), &stopped);
        }
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn test_frequent_calls_act_once_per_period() {
        // Traffic at 1500 conns/s sampled every 100 ms or every 2 s gives the same result.
        let at = |ms: u64| Counters {
            conns: ms * 3 / 2,
            ..Counters::ZERO
        };
        let mut fast = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let mut slow = fast;
        let mut acted = 0;
        for ms in (100..=40_000).step_by(100) {
            acted += fast.tick(Instant::from_millis(ms), &at(ms));
            if ms % 2000 == 0 {
                slow.tick(Instant::from_millis(ms), &at(ms));
            }
        }
        assert_eq!(acted, 20);
        assert_eq!(fast, slow);
    }

    #[test]
    fn test_a_late_tick_spreads_the_gap() {
        // Even traffic over a 10-period gap is averaged as if ticked every period.
        let mut gap = Estimator::new(secs(0), &Counters::ZERO);
        let mut each = gap;
        for t in (2..=20).step_by(2) {
            each.tick(secs(t), &steady(t, 1000, 10_000, 1000));
        }
        assert_eq!(gap.tick(secs(21), &steady(20, 1000, 10_000, 1000)), 10);
        assert_eq!(gap.rates(), each.rates());
        assert!(within(gap.rates().cps, 944, 1), "{:?}", gap.rates());
        // The grid stays on even seconds: the next period ends at 22 s.
        assert_eq!(gap.tick(Instant::from_millis(21_999), &Counters::ZERO), 0);
    }

    #[test]
    fn test_long_gaps() {
        let mut e = Estimator::new(secs(0), &Counters::ZERO);
        for t in (2..=60).step_by(2) {
            e.tick(secs(t), &steady(t, 1000, 10_000, 1000));
        }
        // Traffic went on at the same rate, but nobody called for 40 s: no spike.
        assert_eq!(e.tick(secs(100), &steady(100, 1000, 10_000, 1000)), 20);
        assert!(within(e.rates().cps, 1000, 1), "{:?}", e.rates());
        // Then silence for an hour, seen in one call: all rates back to zero, with a
        // bounded amount of work.
        let quiet = steady(100, 1000, 10_000, 1000);
        assert_eq!(e.tick(secs(3700), &quiet), 1800);
        assert_eq!(e.rates(), Rates::default());
        // A gap of the clock's whole range neither panics nor loops for long.
        let mut e = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let n = e.tick(Instant::from_millis(u64::MAX), &steady(1, 5, 5, 5));
        assert_eq!(n, (u64::MAX - 2000) / 2000 + 1);
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn test_clock_going_back_does_nothing() {
        let mut e = Estimator::new(secs(10), &Counters::ZERO);
        let c = steady(2, 1000, 0, 0);
        assert_eq!(e.tick(secs(5), &c), 0);
        assert_eq!(e.tick(Instant::ZERO, &c), 0);
        assert_eq!(e.rates(), Rates::default());
        assert_eq!(e.tick(secs(12), &c), 1);
        assert_eq!(e.rates().cps, 250);
    }

    #[test]
    fn test_baseline_and_zero() {
        // Counts from before the estimator started are not traffic.
        let before = steady(1000, 1000, 1000, 1000);
        let mut e = Estimator::new(secs(1000), &before);
        e.tick(secs(1002), &before);
        assert_eq!(e.rates(), Rates::default());
        // ipvsadm -Z: counters and rates both start again.
        e.tick(secs(1004), &steady(1002, 1000, 1000, 1000));
        assert_ne!(e.rates(), Rates::default());
        let mut c = steady(1002, 1000, 1000, 1000);
        c.zero();
        e.zero(&c);
        assert_eq!(e.rates(), Rates::default());
        e.tick(secs(1006), &c);
        assert_eq!(e.rates(), Rates::default());
        assert_eq!(
            Estimator::default(),
            Estimator::new(Instant::ZERO, &Counters::ZERO)
        );
    }

    #[test]
    fn test_drop_reasons() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(DropReason::from_u8(i as u8), Some(*r));
            let name = r.name();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(std::format!("{r}"), name);
        }
        assert_eq!(DropReason::from_u8(DropReason::COUNT as u8), None);
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        let malformed: Vec<DropReason> = DropReason::ALL
            .into_iter()
            .filter(|r| r.is_malformed())
            .collect();
        assert_eq!(
            malformed,
            [
                DropReason::Truncated,
                DropReason::BadHeader,
                DropReason::BadChecksum
            ]
        );
    }

    #[test]
    fn test_errors_fold_into_reasons() {
        assert_eq!(
            DropReason::from(wire::Error::Truncated),
            DropReason::Truncated
        );
        assert_eq!(
            DropReason::from(wire::Error::BadChecksum),
            DropReason::BadChecksum
        );
        for e in [
            wire::Error::BadVersion,
            wire::Error::BadHeaderLen,
            wire::Error::BadLength,
            wire::Error::ExtHeaderChain,
            wire::Error::Unsupported,
        ] {
            assert_eq!(DropReason::from(e), DropReason::BadHeader);
        }
        assert_eq!(
            DropReason::from(fwd::Error::FragNeeded { mtu: 1480 }),
            DropReason::TooBig
        );
        assert_eq!(DropReason::from(fwd::Error::TooBig), DropReason::TooBig);
        assert_eq!(
            DropReason::from(fwd::Error::Fragmented),
            DropReason::Fragment
        );
        assert_eq!(
            DropReason::from(fwd::Error::FamilyMismatch),
            DropReason::FamilyMismatch
        );
        assert_eq!(
            DropReason::from(fwd::Error::NotIcmpError),
            DropReason::IcmpUnrelated
        );
        assert_eq!(
            DropReason::from(fwd::Error::NoRoom),
            DropReason::RewriteFailed
        );
        assert_eq!(
            DropReason::from(fwd::Error::Mismatch),
            DropReason::RewriteFailed
        );
        assert_eq!(
            DropReason::from(fwd::Error::Inner(wire::Error::Truncated)),
            DropReason::Truncated
        );
    }

    #[test]
    fn test_drop_counters() {
        let mut d = DropCounters::default();
        assert_eq!(d, DropCounters::ZERO);
        assert_eq!(d.total(), 0);
        d.inc(DropReason::NoDest);
        d.inc(DropReason::NoDest);
        d.inc(DropReason::Truncated);
        d.inc(DropReason::RateLimited);
        assert_eq!(d.get(DropReason::NoDest), 2);
        assert_eq!(d.get(DropReason::Truncated), 1);
        assert_eq!(d.get(DropReason::TableFull), 0);
        assert_eq!(d.total(), 4);
        let listed: Vec<(DropReason, u64)> = d.iter().filter(|&(_, n)| n > 0).collect();
        assert_eq!(
            listed,
            [
                (DropReason::Truncated, 1),
                (DropReason::NoDest, 2),
                (DropReason::RateLimited, 1)
            ]
        );
        assert_eq!(d.iter().count(), DropReason::COUNT);
        d.zero();
        assert_eq!(d.total(), 0);
        let mut full = DropCounters::ZERO;
        full.counts = [u64::MAX; DropReason::COUNT];
        assert_eq!(full.total(), u64::MAX);
        full.inc(DropReason::Fragment);
        assert_eq!(full.get(DropReason::Fragment), 0);
    }

    proptest! {
        #[test]
        fn prop_estimator_never_panics_and_idle_stays_zero(
            steps in proptest::collection::vec((0u64..10_000_000, any::<u64>(), any::<bool>()), 0..64),
        ) {
            let mut busy = Estimator::default();
            let mut idle = Estimator::default();
            let mut now = Instant::ZERO;
            let mut c = Counters::ZERO;
            for (advance, bytes, conn) in steps {
                now += Duration::from_millis(advance);
                c.add_in(bytes as usize);
                c.add_out((bytes >> 3) as usize);
                if conn {
                    c.add_conn();
                }
                busy.tick(now, &c);
                let _ = busy.rates();
                idle.tick(now, &Counters::ZERO);
                prop_assert_eq!(idle.rates(), Rates::default());
            }
        }

        #[test]
        fn prop_steady_rate_is_read_back(cps in 0u64..1_000_000, pps in 0u64..10_000_000) {
            let mut e = Estimator::default();
            for t in (2..=80).step_by(2) {
                e.tick(secs(t), &steady(t, cps, pps, 1));
            }
            let r = e.rates();
            prop_assert!(r.cps.abs_diff(cps) <= cps / 100 + 1, "{:?}", r);
            prop_assert!(r.inpps.abs_diff(pps) <= pps / 100 + 1, "{:?}", r);
            prop_assert!(r.inbps.abs_diff(pps) <= pps / 100 + 1, "{:?}", r);
        }
    }
}
