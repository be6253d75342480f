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

use core::net::IpAddr;

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

/// The available server with the least `overhead / weight`, compared by
/// cross-multiplication in `u64` as the kernel's wlc and sed do (no division, no
/// overflow); the first in list order wins ties. `name` labels the trace.
#[inline]
pub(crate) fn least_by_weight(
    dests: Dests<'_>,
    name: &'static str,
    overhead: impl Fn(&RealServer) -> u64,
) -> Option<DestId> {
    // (id, overhead, weight) of the choice so far.
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
    match least {
        Some((id, loh, lw)) => lvs_trace!("{}: server {} overhead {} weight {}", name, id, loh, lw),
        None => lvs_trace!("{}: no destination available", name),
    }
    least.map(|(id, _, _)| id)
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
    use crate::service::Method;
    use core::net::Ipv4Addr;

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
