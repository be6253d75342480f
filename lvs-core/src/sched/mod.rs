//! The IPVS schedulers: which real server gets a new connection.
//!
//! One file per scheduler, each with the Linux kernel's semantics
//! (`net/netfilter/ipvs/ip_vs_<name>.c`):
//!
//! | name | module | decision |
//! |---|---|---|
//! | rr | [`rr`] | round robin |
//! | wrr | [`wrr`] | weighted round robin, interleaved (current weight steps down by the gcd) |
//! | lc | [`lc`] | least connections (`active*256 + inactive`) |
//! | wlc | [`wlc`] | weighted least connections, compared by cross-multiplication |
//! | sed | [`sed`] | shortest expected delay (`(active+1)/weight`) |
//! | nq | [`nq`] | never queue: an idle server first, else sed |
//! | dh | [`dh`] | destination hashing |
//! | sh | [`sh`] | source hashing (with `sh-fallback`, `sh-port`) |
//! | lblc | [`lblc`] | locality-based least connections |
//! | lblcr | [`lblcr`] | locality-based least connections with replication |
//! | mh | [`mh`] | Maglev hashing (with `mh-fallback`, `mh-port`) |
//! | fo | [`fo`] | weighted failover: the available server of highest weight |
//! | ovf | [`ovf`] | weighted overflow: the highest weight until its active conns reach its weight |
//! | twos | [`twos`] | random choice of two, the less loaded by weight |
//!
//! A scheduler never allocates: tables it needs (sh, dh, mh, lblc, lblcr) are arrays it
//! owns (const-sized) or storage the caller hands it. Servers of weight 0 (quiesced) or
//! overloaded are never chosen (for sh/dh/mh they make the lookup fail or fall back, as
//! in the kernel).

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

use core::convert::Infallible;
use core::net::IpAddr;
use core::ops::ControlFlow;

use crate::service::{DestId, RealServer};
use crate::time::Instant;

/// The real servers of one virtual service, as a scheduler sees them, in the kernel's
/// list order, which rr, wrr and every tie-break follow: the kernel adds a new server at
/// the head of the list (`list_add_rcu` in `__ip_vs_update_dest`), so the most recently
/// added comes first. Whoever builds `members` keeps that order.
#[derive(Clone, Copy)]
pub struct Dests<'a> {
    table: &'a [Option<RealServer>],
    members: &'a [DestId],
}

impl<'a> Dests<'a> {
    /// A view of the servers `members` (ids into `table`). Ids that are out of range or
    /// name an empty slot are skipped by every accessor.
    #[inline]
    pub const fn new(table: &'a [Option<RealServer>], members: &'a [DestId]) -> Dests<'a> {
        Dests { table, members }
    }

    /// Number of member ids (including any that name empty slots).
    #[inline]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the service has no real server.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member at list position `pos`, with its id.
    #[inline]
    pub fn get(&self, pos: usize) -> Option<(DestId, &'a RealServer)> {
        let id = *self.members.get(pos)?;
        let d = self.table.get(id as usize)?.as_ref()?;
        Some((id, d))
    }

    /// The server with id `id`, if it is a member.
    #[inline]
    pub fn by_id(&self, id: DestId) -> Option<&'a RealServer> {
        if !self.members.contains(&id) {
            return None;
        }
        self.table.get(id as usize)?.as_ref()
    }

    /// Members in list order, with their ids.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a RealServer)> + 'a {
        let table = self.table;
        self.members
            .iter()
            .filter_map(move |&id| Some((id, table.get(id as usize)?.as_ref()?)))
    }
}

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedInput {
    /// Client address.
    pub src: IpAddr,
    /// Virtual address the client spoke to.
    pub dst: IpAddr,
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// Virtual port.
    pub dst_port: u16,
    /// Now (lblc/lblcr expire their entries by it).
    pub now: Instant,
    /// 32 random bits from the director's generator (twos).
    pub random: u32,
}

/// Scheduler flags (`ipvsadm -b` / `--sched-flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback`: if the hashed server is unavailable, try others.
    pub fallback: bool,
    /// `sh-port` / `mh-port`: hash the source port too.
    pub port: bool,
}

/// A connection scheduler (the kernel's `ip_vs_scheduler`).
///
/// `update` is called after every change to the service's real servers (add, edit,
/// remove, weight 0) and before the first `schedule`; `schedule` never allocates and
/// never panics, and returns `None` when no real server is available.
pub trait Scheduler {
    /// The name ipvsadm uses (`rr`, `wrr`, ...).
    fn name(&self) -> &'static str;

    /// The service's real servers changed: recompute what depends on them (weights'
    /// gcd and maximum, hash tables).
    fn update(&mut self, dests: Dests<'_>);

    /// Chooses the real server for a new connection.
    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId>;
}

// The schedulers that look at every server per decision (lc, wlc, sed, nq, fo, ovf, twos,
// wrr) scan `members` themselves with the helpers below rather than through
// `Dests::iter`: one bounds check a member, no `(id, &server)` pair built and tested per
// step, the common path straight (updates of the choice so far in `cold` branches), the
// loop unrolled by four. Each scan's comment says why it chooses what the plain scan
// over `Dests::iter` chooses; the tests keep that plain scan as the reference.

impl<'a> Dests<'a> {
    /// The table and the member list, for the schedulers' own scans.
    #[inline(always)]
    fn parts(&self) -> (&'a [Option<RealServer>], &'a [DestId]) {
        (self.table, self.members)
    }
}

/// Marks the branch it is called in as rarely taken (as `core::hint::cold_path` does,
/// stable only since Rust 1.95): the common path is laid out straight, and a rare update
/// is a branch rather than conditional moves on every step.
#[cold]
#[inline(always)]
fn cold() {}

/// The server a member id names if it is not overloaded (it is available if its weight
/// is above 0 too). One test: an empty slot and an overloaded server are told apart from
/// the rest by the same byte.
#[inline(always)]
fn not_overloaded(table: &[Option<RealServer>], id: DestId) -> Option<&RealServer> {
    match table.get(usize::from(id)) {
        Some(Some(d)) if !d.overloaded => Some(d),
        _ => {
            // Rare in a service: laid out off the common path.
            cold();
            None
        }
    }
}

/// `*to = v`, for the rare update of a scan's choice so far (a new least or heaviest
/// server): a `cold` branch, and `v` passed through `black_box` (an optimisation barrier;
/// the value is unchanged) so that the code generator stores it there rather than
/// folding the update into the loop as copies between registers on every step (which it
/// does for the unrolled loop otherwise, 3 instructions a server for wlc).
#[inline(always)]
fn replace<T>(to: &mut T, v: T) {
    cold();
    *to = core::hint::black_box(v);
}

/// Calls `f` with each member's list position and id, in list order, until it breaks;
/// four members a round, so that the loop's own cost is shared by four.
#[inline(always)]
fn try_each_at<B>(
    members: &[DestId],
    mut f: impl FnMut(usize, DestId) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let mut chunks = members.chunks_exact(4);
    let mut p = 0;
    for c in &mut chunks {
        f(p, c[0])?;
        f(p + 1, c[1])?;
        f(p + 2, c[2])?;
        f(p + 3, c[3])?;
        p += 4;
    }
    for &id in chunks.remainder() {
        f(p, id)?;
        p += 1;
    }
    ControlFlow::Continue(())
}

/// Calls `f` with each member's list position and id, in list order.
#[inline(always)]
fn each_at(members: &[DestId], mut f: impl FnMut(usize, DestId)) {
    let _ = try_each_at(members, |p, id| {
        f(p, id);
        ControlFlow::<Infallible>::Continue(())
    });
}

/// `active * 256 + inactive` in `u64`, exact (below 2^41). [`RealServer::conn_overhead`]
/// is `min(this, u32::MAX)`: if `active * 256` saturates, so does the sum and the
/// minimum is `u32::MAX` too; otherwise the saturating add is that minimum.
#[inline(always)]
fn conn_overhead_exact(d: &RealServer) -> u64 {
    u64::from(d.active_conns) * 256 + u64::from(d.inactive_conns)
}

/// [`RealServer::conn_overhead`], computed in `u64` (see [`conn_overhead_exact`]).
#[inline(always)]
fn conn_overhead64(d: &RealServer) -> u64 {
    conn_overhead_exact(d).min(u64::from(u32::MAX))
}

/// The available server with the least `overhead / weight`, compared by
/// cross-multiplication in `u64` as the kernel's wlc and sed do (no division, no
/// overflow); the first in list order wins ties. `name` labels the trace.
///
/// `overhead` gives the overhead compared, at most 2^32, when `SATURATED` is false (sed),
/// and `active * 256 + inactive` unsaturated ([`conn_overhead_exact`]) when it is
/// true (wlc), whose overhead is that capped at `u32::MAX` ([`conn_overhead64`]).
#[inline(always)]
pub(crate) fn least_by_weight<const SATURATED: bool>(
    dests: Dests<'_>,
    name: &'static str,
    overhead: impl Fn(&RealServer) -> u64,
) -> Option<DestId> {
    let (table, members) = dests.parts();
    // The choice so far, `(list position, overhead, weight)`, weight 0 meaning "none
    // yet". A server `d` of weight `w(d)` replaces the choice `l` when `oh(l) * w(d) >
    // oh(d) * w(l)`: the kernel's rule when both are available servers. At the edges:
    // with no choice yet, `1 * w(d) > oh(d) * 0` holds for every server of weight above
    // 0, so the first available server is taken; a server of weight 0 (quiesced, so not
    // available) never replaces anything (`oh(l) * 0 > ..` is false); overloaded ones
    // and empty slots are skipped.
    let mut best: (usize, u64, u64) = (0, 1, 0);
    // The bits of every overhead compared: above u32::MAX when one of them is.
    let mut all = 0u64;
    each_at(members, |p, id| {
        if let Some(d) = not_overloaded(table, id) {
            let (doh, dw) = (overhead(d), u64::from(d.weight));
            all |= doh;
            // Exact unless an overhead is above 2^32 (with SATURATED only; then the result
            // is thrown away below), so wrapping only to keep debug builds quiet.
            if best.1.wrapping_mul(dw) > doh.wrapping_mul(best.2) {
                replace(&mut best, (p, doh, dw));
            }
        }
    });
    if SATURATED && all > u64::from(u32::MAX) {
        // Some server's overhead is capped (2^24 active connections or more, or nearly
        // 2^32 inactive ones): the scan above compared uncapped overheads, which may also
        // have wrapped. Rare: the plain scan with the capped ones.
        cold();
        best = least_capped(table, members);
    }
    let (lpos, loh, lw) = best;
    // Otherwise every overhead compared is at most u32::MAX (at most 2^32 for sed), so
    // equal to the capped one for wlc and no product reaches 2^64: the scan was exact.
    let lid = members.get(lpos).copied().filter(|_| lw != 0);
    match lid {
        Some(id) => lvs_trace!("{}: server {} overhead {} weight {}", name, id, loh, lw),
        None => lvs_trace!("{}: no destination available", name),
    }
    lid
}

/// [`least_by_weight`]'s scan with the capped overhead [`conn_overhead64`], for the rare
/// tables where some overhead is capped.
#[inline(never)]
fn least_capped(table: &[Option<RealServer>], members: &[DestId]) -> (usize, u64, u64) {
    let (mut lpos, mut loh, mut lw): (usize, u64, u64) = (0, 1, 0);
    for (p, &id) in members.iter().enumerate() {
        if let Some(d) = not_overloaded(table, id) {
            let (doh, dw) = (conn_overhead64(d), u64::from(d.weight));
            if loh * dw > doh * lw {
                (lpos, loh, lw) = (p, doh, dw);
            }
        }
    }
    (lpos, loh, lw)
}

/// The 14 IPVS schedulers by name, as `ipvsadm -s` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (ipvsadm's default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Random of two, weighted.
    Twos,
}

impl SchedKind {
    /// Every scheduler, in the order of the table above.
    pub const ALL: [SchedKind; 14] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Mh,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Twos,
    ];

    /// The name ipvsadm uses.
    pub const fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Mh => "mh",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Twos => "twos",
        }
    }

    /// The scheduler ipvsadm calls `name`.
    pub fn from_name(name: &str) -> Option<SchedKind> {
        SchedKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A keyed 32-bit hash for the hashing schedulers: not attacker-proof (the kernel's are
/// not either), but stable, cheap and well mixed; `seed` lets a director change it.
#[inline]
pub fn hash32(data: u32, seed: u32) -> u32 {
    // The kernel multiplies by the golden ratio (hash_32); a final avalanche keeps the
    // high bits well mixed for table sizes that are not powers of two.
    let mut x = data ^ seed;
    x = x.wrapping_mul(0x9e37_79b1);
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^ (x >> 13)
}

/// Folds an address to 32 bits for hashing (IPv6: the xor of its four words, as the
/// kernel's `ip_vs_*_hashkey` do).
#[inline]
pub fn addr_key(a: &IpAddr) -> u32 {
    match a {
        IpAddr::V4(v) => u32::from_be_bytes(v.octets()),
        IpAddr::V6(v) => {
            let o = v.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_names_round_trip() {
        for k in SchedKind::ALL {
            assert_eq!(SchedKind::from_name(k.name()), Some(k));
        }
        assert_eq!(SchedKind::from_name("wlc"), Some(SchedKind::Wlc));
        assert_eq!(SchedKind::from_name("WLC"), None);
        assert_eq!(SchedKind::from_name("maglev"), None);
    }

    proptest::proptest! {
        #[test]
        fn prop_conn_overhead64_is_conn_overhead(
            active in testutil::arb_count(),
            inactive in testutil::arb_count(),
        ) {
            let mut d = RealServer::new(
                IpAddr::V4(core::net::Ipv4Addr::LOCALHOST),
                80,
                crate::service::Method::Masq,
                1,
            );
            (d.active_conns, d.inactive_conns) = (active, inactive);
            proptest::prop_assert_eq!(conn_overhead64(&d), u64::from(d.conn_overhead()));
            proptest::prop_assert_eq!(
                conn_overhead_exact(&d) > u64::from(u32::MAX),
                d.conn_overhead() == u32::MAX && conn_overhead_exact(&d) != u64::from(u32::MAX)
            );
        }
    }

    #[test]
    fn test_dests_view_skips_holes() {
        let (mut t, m) = testutil::table(&[1, 2, 3]);
        t[1] = None;
        let d = Dests::new(&t, &m);
        assert_eq!(d.len(), 3);
        assert_eq!(
            d.iter().map(|(id, _)| id).collect::<std::vec::Vec<_>>(),
            [0, 2]
        );
        assert!(d.get(1).is_none());
        assert!(d.by_id(2).is_some());
        assert!(d.by_id(7).is_none());
        let out_of_range = [9u16];
        assert!(Dests::new(&t, &out_of_range).get(0).is_none());
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Building blocks for the scheduler tests.
    use super::*;

    /// The proptest every rewritten scan has: over [`arb_dests`] tables, the module's
    /// `pick` (the scheduler) chooses what its `reference` (the plain scan it replaced)
    /// chooses.
    macro_rules! prop_same_as_plain_scan {
        () => {
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(2000))]
                #[test]
                fn prop_same_as_plain_scan((t, m) in arb_dests()) {
                    prop_assert_eq!(pick(&t, &m), reference(Dests::new(&t, &m)));
                }
            }
        };
    }
    use crate::service::Method;
    use core::net::Ipv4Addr;
    pub(crate) use prop_same_as_plain_scan;
    use proptest::prelude::*;

    /// The plain least-`overhead / weight` scan the kernel's wlc, sed and nq write
    /// (`Dests::iter`, `is_available`, `Option` state, cross-multiplication in `u64`,
    /// the first in list order winning ties): the reference the unrolled scans must
    /// agree with.
    pub fn plain_least_by_weight(
        dests: Dests<'_>,
        overhead: impl Fn(&RealServer) -> u64,
    ) -> Option<DestId> {
        let mut least: Option<(DestId, u64, u64)> = None;
        for (id, d) in dests.iter() {
            if !d.is_available() {
                continue;
            }
            let (doh, dw) = (overhead(d), u64::from(d.weight));
            match least {
                Some((_, loh, lw)) if loh * dw <= doh * lw => {}
                _ => least = Some((id, doh, dw)),
            }
        }
        least.map(|(id, _, _)| id)
    }

    /// A table with one real server per weight (10.0.0.1, 10.0.0.2, ...) and the member
    /// list 0..n.
    pub fn table(weights: &[u32]) -> (std::vec::Vec<Option<RealServer>>, std::vec::Vec<DestId>) {
        let t = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Some(RealServer::new(
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)),
                    80,
                    Method::Masq,
                    w,
                ))
            })
            .collect();
        let m = (0..weights.len() as DestId).collect();
        (t, m)
    }

    /// A connection count: 0, small, around 2^24 (where `active * 256` reaches
    /// u32::MAX), near u32::MAX, or anything.
    pub fn arb_count() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            0u32..8,
            (1u32 << 24) - 3..(1u32 << 24) + 3,
            250u32..262,
            u32::MAX - 300..=u32::MAX,
            any::<u32>(),
        ]
    }

    /// A weight: 0, small (ties are common), near u32::MAX, or anything.
    pub fn arb_weight() -> impl Strategy<Value = u32> {
        prop_oneof![
            2 => Just(0u32),
            6 => 1u32..5,
            1 => u32::MAX - 3..=u32::MAX,
            1 => any::<u32>(),
        ]
    }

    /// A server table with empty slots, and a member list (in any order, with repeats
    /// and ids past the table's end) over it, for comparing a scheduler with a plain
    /// reference scan: weights 0 and huge, overloaded servers, connection counts around
    /// the overhead's saturation.
    #[allow(clippy::type_complexity)]
    pub fn arb_dests()
    -> impl Strategy<Value = (std::vec::Vec<Option<RealServer>>, std::vec::Vec<DestId>)> {
        let server = (arb_weight(), any::<bool>(), arb_count(), arb_count()).prop_map(
            |(w, overloaded, active, inactive)| {
                let mut s =
                    RealServer::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80, Method::Masq, w);
                (s.overloaded, s.active_conns, s.inactive_conns) = (overloaded, active, inactive);
                s
            },
        );
        let slot = prop_oneof![1 => Just(None), 6 => server.prop_map(Some)];
        proptest::collection::vec(slot, 0..12).prop_flat_map(|t| {
            let n = t.len() as DestId;
            let ids = proptest::collection::vec(0..n + 3, 0..20);
            let identity = Just((0..n).collect::<std::vec::Vec<DestId>>());
            let members = prop_oneof![ids, identity];
            (Just(t), members)
        })
    }

    /// A packet from `src`:`port` to 192.0.2.1:80.
    pub fn input(src: u32, port: u16, random: u32) -> SchedInput {
        SchedInput {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            src_port: port,
            dst_port: 80,
            now: Instant::ZERO,
            random,
        }
    }
}
