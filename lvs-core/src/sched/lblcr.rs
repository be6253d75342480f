//! `lblcr`: locality-based least connections with replication (the kernel's
//! `ip_vs_lblcr.c`).
//!
//! Like [`lblc`](super::lblc), but a destination address ([`SchedInput::dst`]) maps to a
//! *set* of servers, so a hot site can be served by several caches. The algorithm, as
//! the kernel's `ip_vs_lblcr_schedule`:
//!
//! ```text
//! if set = table[dst] exists:
//!     n <- the least loaded available server of set (overhead / weight)
//!     if |set| > 1 and now - set.last_mod > expiration:
//!         remove the most loaded server of set (weight > 0) from it; set.last_mod <- now
//!     if n exists and not (n.active > n.weight and some member m has m.active < m.weight / 2):
//!         return n
//!     n <- weighted least connections over all members (none: return nothing)
//!     add n to set (if new: set.last_mod <- now); return n
//! else:
//!     n <- weighted least connections over all members; table[dst] <- {n}; return n
//! ```
//!
//! Every lookup refreshes the entry's `last_use`. "Least loaded" in a set scans it from
//! the newest member to the oldest (the kernel adds at the head of its list) and keeps
//! the first on a tie; so does "most loaded", which may therefore remove the very server
//! this call returns (equal loads), exactly as the kernel does. "Weighted least
//! connections" over the service is the kernel's `__ip_vs_lblcr_schedule` (see
//! [`lblc`](super::lblc)). Compaction uses the same `lblcr_expiration` as the entries.
//!
//! ## Storage
//! Caller-provided [`LblcrEntry`] slots in the open-addressing table described in
//! [`lblc`](super::lblc) (same hashing, [`PROBES`](super::lblc::PROBES)-slot window, same
//! replacement: a vacant slot, else the least recently used dead entry, expired or with
//! all its servers gone, else the least recently used entry of the window). Each set
//! holds at most [`LBLCR_SET`] servers (the kernel's sets are unbounded lists): adding
//! to a full set first evicts a member of weight 0 if there is one, else the most loaded
//! member (the one compaction would remove next).
//!
//! ## Expiration
//! An entry unused for [`Lblcr::expiration`] (default [`DEFAULT_EXPIRATION`], 24 h, the
//! `lblcr_expiration` sysctl) is dead; expiry is exact (the kernel's full check runs
//! every ~30 minutes).
//!
//! ## Removed servers
//! [`Scheduler::update`] does nothing. Set members that are no longer members of the
//! service (or whose id now names another server, checked by a 16-bit address/port tag)
//! are dropped from a set when it is used, without counting as a modification. The
//! kernel instead keeps them (unavailable) until compaction removes them or the entry
//! expires, and revives them if the same server is added back from its trash.
//!
//! ## Guarantees and complexity
//! - Returns only a member that is available ([`RealServer::is_available`]); `None` only
//!   when no member is available.
//! - An entry is 72 bytes (8-byte aligned `Instant`s).
//! - No allocation, no panic; `schedule` is O(n + [`PROBES`](super::lblc::PROBES) +
//!   [`LBLCR_SET`]) for n members, `update` is O(1), [`Lblcr::new`] and
//!   [`Lblcr::flush`] are O(capacity).

use core::net::IpAddr;

use super::lblc::{Slot, find, is_overloaded, least_loaded, member, more_loaded, tag, victim};
use super::{Dests, SchedInput, Scheduler};
use crate::service::{DestId, RealServer};
use crate::time::{Duration, Instant};

/// The kernel's default `lblcr_expiration`: 24 hours.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The most servers one destination address's set holds.
pub const LBLCR_SET: usize = 8;

/// A server of a set: its id and the tag of its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Member {
    id: DestId,
    tag: u16,
}

impl Member {
    const NONE: Member = Member { id: 0, tag: 0 };
}

/// One slot of the lblcr table: a destination address and its set of servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LblcrEntry {
    addr: Option<IpAddr>,
    last_use: Instant,
    last_mod: Instant,
    /// Members `set[..len]`, oldest first.
    len: u8,
    set: [Member; LBLCR_SET],
}

impl LblcrEntry {
    /// A vacant slot (what storage handed to [`Lblcr::new`] is filled with).
    pub const EMPTY: LblcrEntry = LblcrEntry {
        addr: None,
        last_use: Instant::ZERO,
        last_mod: Instant::ZERO,
        len: 0,
        set: [Member::NONE; LBLCR_SET],
    };

    /// The destination address this slot remembers, `None` if vacant.
    #[inline]
    pub fn addr(&self) -> Option<IpAddr> {
        self.addr
    }

    /// The servers of its set, the most recently added first.
    pub fn servers(&self) -> impl Iterator<Item = DestId> + '_ {
        self.members().iter().rev().map(|m| m.id)
    }

    /// When it was last looked up or set.
    #[inline]
    pub fn last_use(&self) -> Instant {
        self.last_use
    }

    /// When a server was last added to or removed from its set.
    #[inline]
    pub fn last_mod(&self) -> Instant {
        self.last_mod
    }

    #[inline]
    fn members(&self) -> &[Member] {
        self.set.get(..usize::from(self.len)).unwrap_or(&[])
    }

    #[inline]
    fn expired(&self, now: Instant, expiration: Duration) -> bool {
        now.saturating_since(self.last_use) >= expiration
    }

    /// Whether the entry is of no use any more: expired, or no server of its set is still
    /// a member.
    fn is_dead(&self, dests: Dests<'_>, now: Instant, expiration: Duration) -> bool {
        self.expired(now, expiration)
            || self
                .members()
                .iter()
                .all(|m| member(dests, m.id, m.tag).is_none())
    }

    /// Drops the servers that are no longer members (order kept, `last_mod` untouched).
    fn purge(&mut self, dests: Dests<'_>) {
        let mut kept = 0usize;
        for i in 0..usize::from(self.len).min(LBLCR_SET) {
            let Some(&m) = self.set.get(i) else { break };
            if member(dests, m.id, m.tag).is_some() {
                if let Some(slot) = self.set.get_mut(kept) {
                    *slot = m;
                }
                kept += 1;
            }
        }
        self.len = kept as u8;
    }

    /// Removes the member at position `pos` (order kept).
    fn erase(&mut self, pos: usize) {
        let n = usize::from(self.len).min(LBLCR_SET);
        if pos >= n {
            return;
        }
        if let Some(tail) = self.set.get_mut(pos..n) {
            tail.rotate_left(1);
        }
        self.len -= 1;
    }

    /// The kernel's `ip_vs_dest_set_min`: the available member least loaded, scanning
    /// newest first and keeping the first on a tie.
    fn least<'d>(&self, dests: Dests<'d>) -> Option<(DestId, &'d RealServer)> {
        let mut least: Option<(DestId, &RealServer)> = None;
        for m in self.members().iter().rev() {
            let Some(d) = member(dests, m.id, m.tag) else {
                continue;
            };
            if !d.is_available() {
                continue;
            }
            match least {
                Some((_, l)) if !more_loaded(l, d) => {}
                _ => least = Some((m.id, d)),
            }
        }
        least
    }

    /// The kernel's `ip_vs_dest_set_max`: the position of the member of weight > 0 most
    /// loaded, scanning newest first and keeping the first on a tie.
    fn most(&self, dests: Dests<'_>) -> Option<usize> {
        let mut most: Option<(usize, &RealServer)> = None;
        for (pos, m) in self.members().iter().enumerate().rev() {
            let Some(d) = member(dests, m.id, m.tag) else {
                continue;
            };
            if d.weight == 0 {
                continue;
            }
            match most {
                Some((_, w)) if !more_loaded(d, w) => {}
                _ => most = Some((pos, d)),
            }
        }
        most.map(|(pos, _)| pos)
    }

    /// The kernel's `ip_vs_dest_set_insert` (with its duplicate check): adds `id` as
    /// the newest member unless present, evicting one from a full set.
    fn insert(&mut self, dests: Dests<'_>, id: DestId, d: &RealServer, now: Instant) {
        let new = Member { id, tag: tag(d) };
        if self.members().contains(&new) {
            return;
        }
        if usize::from(self.len) >= LBLCR_SET {
            let quiesced = self
                .members()
                .iter()
                .position(|m| member(dests, m.id, m.tag).is_none_or(|d| d.weight == 0));
            let pos = quiesced.or_else(|| self.most(dests)).unwrap_or(0);
            self.erase(pos);
        }
        if let Some(slot) = self.set.get_mut(usize::from(self.len)) {
            *slot = new;
            self.len += 1;
        }
        self.last_mod = now;
    }
}

impl Default for LblcrEntry {
    fn default() -> LblcrEntry {
        LblcrEntry::EMPTY
    }
}

impl Slot for LblcrEntry {
    #[inline]
    fn key(&self) -> Option<&IpAddr> {
        self.addr.as_ref()
    }

    #[inline]
    fn last_use(&self) -> Instant {
        self.last_use
    }
}

/// The lblcr scheduler over caller-provided table storage.
#[derive(Debug)]
pub struct Lblcr<'a> {
    entries: &'a mut [LblcrEntry],
    expiration: Duration,
    seed: u32,
}

impl<'a> Lblcr<'a> {
    /// An lblcr scheduler whose table is `entries` (emptied here), with the default
    /// expiration and hash seed 0.
    pub fn new(entries: &'a mut [LblcrEntry]) -> Lblcr<'a> {
        entries.fill(LblcrEntry::EMPTY);
        Lblcr {
            entries,
            expiration: DEFAULT_EXPIRATION,
            seed: 0,
        }
    }

    /// The same with the expiration `expiration` (the `lblcr_expiration` sysctl), for
    /// both entries and set compaction.
    #[must_use]
    pub fn with_expiration(mut self, expiration: Duration) -> Lblcr<'a> {
        self.expiration = expiration;
        self
    }

    /// The same with the hash seed `seed` (the table is emptied, since every address's
    /// home slot moves).
    #[must_use]
    pub fn with_seed(mut self, seed: u32) -> Lblcr<'a> {
        self.seed = seed;
        self.flush();
        self
    }

    /// Changes the expiration; it applies to existing entries too.
    #[inline]
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.expiration = expiration;
    }

    /// How long an unused entry lives, and how long a set stays unmodified before its
    /// most loaded server is removed.
    #[inline]
    pub fn expiration(&self) -> Duration {
        self.expiration
    }

    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The slots, for inspection (expired entries included).
    #[inline]
    pub fn entries(&self) -> &[LblcrEntry] {
        self.entries
    }

    /// Forgets every entry (the kernel's `ip_vs_lblcr_flush`).
    pub fn flush(&mut self) {
        self.entries.fill(LblcrEntry::EMPTY);
    }

    /// The live entry for `dst` at `now`, without refreshing it.
    pub fn lookup(&self, dst: &IpAddr, now: Instant) -> Option<&LblcrEntry> {
        let e = self.entries.get(find(self.entries, self.seed, dst)?)?;
        (!e.expired(now, self.expiration)).then_some(e)
    }
}

impl Scheduler for Lblcr<'_> {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    /// Nothing to recompute: removed servers leave the sets when those are used.
    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId> {
        let now = input.now;
        let expiration = self.expiration;
        let found = find(self.entries, self.seed, &input.dst);
        if let Some(e) = found.and_then(|i| self.entries.get_mut(i)) {
            if e.expired(now, expiration) {
                *e = LblcrEntry::EMPTY;
            } else {
                e.last_use = now;
                e.purge(dests);
                let least = e.least(dests);
                if e.len > 1
                    && now.saturating_since(e.last_mod) > expiration
                    && let Some(pos) = e.most(dests)
                {
                    e.erase(pos);
                    e.last_mod = now;
                }
                if let Some((id, d)) = least
                    && !is_overloaded(d, dests)
                {
                    lvs_trace!("lblcr: server {} of the set", id);
                    return Some(id);
                }
                let (id, d) = least_loaded(dests)?;
                e.insert(dests, id, d, now);
                lvs_trace!("lblcr: server {} added to the set", id);
                return Some(id);
            }
        }

        let (id, d) = least_loaded(dests)?;
        let slot = match found {
            Some(i) => Some(i),
            None => victim(self.entries, self.seed, &input.dst, |e| {
                e.is_dead(dests, now, expiration)
            }),
        };
        if let Some(e) = slot.and_then(|i| self.entries.get_mut(i)) {
            *e = LblcrEntry::EMPTY;
            e.addr = Some(input.dst);
            e.last_use = now;
            e.insert(dests, id, d, now);
        }
        lvs_trace!("lblcr: new set with server {}", id);
        Some(id)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::lblc::test::{kernel_is_overloaded, kernel_wlc, ops, run_ops};
    use crate::sched::lblc::{PROBES, tag};
    use crate::sched::testutil::table;
    use crate::service::Method;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn v4(last: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 | last)) // 198.51.100.x
    }

    fn at(dst: IpAddr, millis: u64) -> SchedInput {
        SchedInput {
            src: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            dst,
            src_port: 40000,
            dst_port: 80,
            now: Instant::from_millis(millis),
            random: 0,
        }
    }

    fn srv(t: &mut [Option<RealServer>], i: usize) -> &mut RealServer {
        t[i].as_mut().unwrap()
    }

    fn set_of(s: &Lblcr<'_>, dst: IpAddr, millis: u64) -> Vec<DestId> {
        s.lookup(&dst, Instant::from_millis(millis))
            .map(|e| e.servers().collect())
            .unwrap_or_default()
    }

    #[test]
    fn test_name_and_empty_service() {
        let mut storage = [LblcrEntry::EMPTY; 4];
        let mut s = Lblcr::new(&mut storage);
        assert_eq!(s.name(), "lblcr");
        let (t, _) = table(&[1]);
        assert_eq!(s.schedule(Dests::new(&t, &[]), &at(v4(1), 0)), None);
        assert!(s.entries().iter().all(|e| e.addr().is_none()));
    }

    #[test]
    fn test_entry_size() {
        // Address, last use, last modification, length and 8 (id, tag) pairs.
        assert!(core::mem::size_of::<LblcrEntry>() <= 72);
        assert_eq!(LblcrEntry::default(), LblcrEntry::EMPTY);
    }

    #[test]
    fn test_same_destination_sticks_while_not_overloaded() {
        let (mut t, m) = table(&[10, 10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 64];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(0));
        srv(&mut t, 0).active_conns = 10;
        srv(&mut t, 0).inactive_conns = 99;
        for i in 1..20 {
            assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, i)), Some(0));
        }
        assert_eq!(set_of(&s, a, 20), [0]);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(2), 20)), Some(1));
    }

    #[test]
    fn test_replica_added_under_load_then_least_of_set() {
        let (mut t, m) = table(&[10, 10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 64];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(0));
        // Not overloaded by the kernel's rule while nobody is below half its weight.
        srv(&mut t, 0).active_conns = 11;
        srv(&mut t, 1).active_conns = 5;
        srv(&mut t, 2).active_conns = 6;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 1)), Some(0));
        assert_eq!(
            s.lookup(&a, Instant::from_millis(1)).unwrap().last_mod(),
            Instant::ZERO
        );
        // Server 1 at 4 active (8 < 10): 0 is overloaded, 1 joins the set.
        srv(&mut t, 1).active_conns = 4;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 2)), Some(1));
        assert_eq!(set_of(&s, a, 2), [1, 0]);
        let e = s.lookup(&a, Instant::from_millis(2)).unwrap();
        assert_eq!(
            (e.last_mod(), e.last_use()),
            (Instant::from_millis(2), Instant::from_millis(2))
        );
        // Now the least loaded of the set is chosen, the set unchanged.
        srv(&mut t, 1).active_conns = 7;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 3)), Some(1));
        srv(&mut t, 0).active_conns = 6;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 4)), Some(0));
        assert_eq!(set_of(&s, a, 4), [1, 0]);
        assert_eq!(
            s.lookup(&a, Instant::from_millis(4)).unwrap().last_mod(),
            Instant::from_millis(2)
        );
        // A set with no available server: the least loaded of the service is added.
        srv(&mut t, 0).weight = 0;
        srv(&mut t, 1).overloaded = true;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 5)), Some(2));
        assert_eq!(set_of(&s, a, 5), [2, 1, 0]);
    }

    #[test]
    fn test_compaction_drops_most_loaded_after_expiration() {
        let (mut t, m) = table(&[10, 10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 64];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        let exp = DEFAULT_EXPIRATION.total_millis();
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(0));
        srv(&mut t, 0).active_conns = 11;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 1000)), Some(1));
        assert_eq!(set_of(&s, a, 1000), [1, 0]);
        srv(&mut t, 1).active_conns = 3;
        // Used in between so the entry itself stays alive.
        assert_eq!(
            s.schedule(Dests::new(&t, &m), &at(a, 1000 + exp / 2)),
            Some(1)
        );
        // Exactly `expiration` after the last change: not yet (the kernel's time_after).
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 1000 + exp)), Some(1));
        assert_eq!(set_of(&s, a, 1000 + exp), [1, 0]);
        // One tick later the most loaded (0) goes.
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 1001 + exp)), Some(1));
        assert_eq!(set_of(&s, a, 1001 + exp), [1]);
        let e = s.lookup(&a, Instant::from_millis(1001 + exp)).unwrap();
        assert_eq!(e.last_mod(), Instant::from_millis(1001 + exp));
        // A single server is never removed.
        assert_eq!(
            s.schedule(Dests::new(&t, &m), &at(a, 1000 + 2 * exp)),
            Some(1)
        );
        assert_eq!(
            s.schedule(Dests::new(&t, &m), &at(a, 999 + 3 * exp)),
            Some(1)
        );
        let e = s.lookup(&a, Instant::from_millis(999 + 3 * exp)).unwrap();
        assert_eq!(e.servers().collect::<Vec<_>>(), [1]);
        assert_eq!(e.last_mod(), Instant::from_millis(1001 + exp));
    }

    #[test]
    fn test_compaction_may_remove_the_returned_server_as_the_kernel() {
        let (mut t, m) = table(&[10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 8];
        let mut s = Lblcr::new(&mut storage).with_expiration(Duration::from_secs(10));
        let a = v4(1);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(0));
        srv(&mut t, 0).active_conns = 11;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(1));
        // Equal loads: the newest (1) is both the least and the most loaded.
        srv(&mut t, 0).active_conns = 1;
        srv(&mut t, 1).active_conns = 1;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 5_000)), Some(1));
        assert_eq!(set_of(&s, a, 5_000), [1, 0]);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 10_001)), Some(1));
        assert_eq!(set_of(&s, a, 10_001), [0]);
        // Weight 0 members are not "most loaded"; available ones are chosen.
        let (mut t, m) = table(&[10, 10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 8];
        let mut s = Lblcr::new(&mut storage).with_expiration(Duration::from_secs(10));
        s.schedule(Dests::new(&t, &m), &at(a, 0));
        srv(&mut t, 0).active_conns = 11;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(1));
        srv(&mut t, 0).weight = 0;
        srv(&mut t, 1).inactive_conns = 1;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 5_000)), Some(1));
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 10_001)), Some(1));
        assert_eq!(set_of(&s, a, 10_001), [0]);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 10_002)), Some(2));
        assert_eq!(set_of(&s, a, 10_002), [2, 0]);
    }

    #[test]
    fn test_entries_expire() {
        let (mut t, m) = table(&[10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 16];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        let exp = DEFAULT_EXPIRATION.total_millis();
        assert_eq!(s.expiration(), DEFAULT_EXPIRATION);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(0));
        srv(&mut t, 0).active_conns = 3;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, exp - 1)), Some(0));
        assert!(s.lookup(&a, Instant::from_millis(2 * exp - 2)).is_some());
        assert!(s.lookup(&a, Instant::from_millis(2 * exp - 1)).is_none());
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 2 * exp - 1)), Some(1));
        assert_eq!(set_of(&s, a, 2 * exp - 1), [1]);
        s.set_expiration(Duration::from_secs(1));
        assert!(
            s.lookup(&a, Instant::from_millis(2 * exp - 1 + 1000))
                .is_none()
        );
    }

    #[test]
    fn test_removed_server_is_not_returned() {
        let (mut t, m) = table(&[10, 10, 10]);
        let mut storage = [LblcrEntry::EMPTY; 16];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        s.schedule(Dests::new(&t, &m), &at(a, 0));
        srv(&mut t, 0).active_conns = 11;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(1));
        srv(&mut t, 0).active_conns = 0;
        srv(&mut t, 1).active_conns = 1;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 1)), Some(0));
        // 0 leaves the service: dropped from the set, 1 used.
        let without0 = [1, 2];
        s.update(Dests::new(&t, &without0));
        assert_eq!(s.schedule(Dests::new(&t, &without0), &at(a, 2)), Some(1));
        assert_eq!(set_of(&s, a, 2), [1]);
        // Id 1 now names another server: not the one in the set.
        t[1] = Some(RealServer::new(
            IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            80,
            Method::Masq,
            10,
        ));
        srv(&mut t, 2).active_conns = 1;
        assert_eq!(s.schedule(Dests::new(&t, &without0), &at(a, 3)), Some(1));
        let e = s.lookup(&a, Instant::from_millis(3)).unwrap();
        assert_eq!(e.servers().collect::<Vec<_>>(), [1]);
        assert_eq!(e.last_mod(), Instant::from_millis(3));
    }

    #[test]
    fn test_full_set_evicts_most_loaded() {
        let weights = [2u32; 10];
        let (mut t, m) = table(&weights);
        let mut storage = [LblcrEntry::EMPTY; 8];
        let mut s = Lblcr::new(&mut storage);
        let a = v4(1);
        // Each chosen server becomes overloaded (3 active > weight 2), so the set grows.
        for k in 0..LBLCR_SET {
            assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(k as DestId));
            srv(&mut t, k).active_conns = 3;
            srv(&mut t, k).inactive_conns = k as u32;
        }
        assert_eq!(set_of(&s, a, 0), [7, 6, 5, 4, 3, 2, 1, 0]);
        // The ninth replaces the most loaded member, 7.
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(8));
        assert_eq!(set_of(&s, a, 0), [8, 6, 5, 4, 3, 2, 1, 0]);
        // A quiesced member goes first (9 is the only server left without load).
        srv(&mut t, 8).active_conns = 3;
        srv(&mut t, 2).weight = 0;
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(a, 0)), Some(9));
        assert_eq!(set_of(&s, a, 0), [9, 8, 6, 5, 4, 3, 1, 0]);
    }

    #[test]
    fn test_full_table_replaces_least_recently_used_in_window() {
        let (t, m) = table(&[1, 1]);
        let (only0, only1) = ([0], [1]);
        // Eight slots: every address's window is the whole table.
        let mut storage = [LblcrEntry::EMPTY; PROBES];
        let mut s = Lblcr::new(&mut storage);
        for i in 0..PROBES as u32 - 1 {
            let d = Dests::new(&t, &only0);
            assert_eq!(s.schedule(d, &at(v4(i), u64::from(i))), Some(0));
        }
        assert_eq!(s.schedule(Dests::new(&t, &only1), &at(v4(7), 7)), Some(1));
        // Full: refresh v4(0); a new address replaces the least recently used, v4(1).
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(0), 50)), Some(0));
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(100), 60)), Some(0));
        assert!(s.lookup(&v4(1), Instant::from_millis(100)).is_none());
        assert_eq!(set_of(&s, v4(100), 100), [0]);
        assert!((2..7).all(|i| set_of(&s, v4(i), 100) == [0]));
        // A slot whose set names only removed servers is taken before the LRU one.
        assert_eq!(
            s.schedule(Dests::new(&t, &only0), &at(v4(101), 70)),
            Some(0)
        );
        assert!(s.lookup(&v4(7), Instant::from_millis(100)).is_none());
        assert!((2..7).all(|i| set_of(&s, v4(i), 100) == [0]));
        assert_eq!(set_of(&s, v4(101), 100), [0]);
        // No server: nothing is stored.
        assert_eq!(s.schedule(Dests::new(&t, &[]), &at(v4(102), 80)), None);
        assert!(s.lookup(&v4(102), Instant::from_millis(100)).is_none());
        assert_eq!(s.capacity(), PROBES);
        s.flush();
        assert!(s.entries().iter().all(|e| *e == LblcrEntry::EMPTY));
    }

    #[test]
    fn test_tiny_tables() {
        let (t, m) = table(&[1, 3]);
        let mut none: [LblcrEntry; 0] = [];
        let mut s = Lblcr::new(&mut none);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(1), 0)), Some(0));
        let mut one = [LblcrEntry::EMPTY; 1];
        let mut s = Lblcr::new(&mut one).with_seed(7);
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(1), 0)), Some(0));
        assert_eq!(s.schedule(Dests::new(&t, &m), &at(v4(2), 1)), Some(0));
        assert!(s.lookup(&v4(1), Instant::from_millis(1)).is_none());
        assert_eq!(set_of(&s, v4(2), 1), [0]);
    }

    proptest! {
        #[test]
        fn prop_only_available_members(cap in 0usize..40, seed in any::<u32>(), exp in 1u64..200_000, ops in ops()) {
            let mut storage = std::vec![LblcrEntry::EMPTY; cap];
            let mut s = Lblcr::new(&mut storage).with_seed(seed).with_expiration(Duration::from_secs(exp));
            run_ops(&mut s, &ops, Duration::from_secs(exp), |_, _, _| Ok(()))?;
            let mut seen: Vec<IpAddr> = s.entries().iter().filter_map(|e| e.addr()).collect();
            let n = seen.len();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), n);
            for e in s.entries() {
                prop_assert!(usize::from(e.len) <= LBLCR_SET);
                let mut ids: Vec<Member> = e.members().to_vec();
                ids.sort_by_key(|m| (m.id, m.tag));
                ids.dedup();
                prop_assert_eq!(ids.len(), usize::from(e.len));
                if e.addr().is_none() {
                    prop_assert_eq!(e.len, 0);
                }
            }
        }
    }

    /// A set as the kernel keeps it: newest first.
    type Set = Vec<(DestId, u16)>;

    /// The kernel's lblcr over an unbounded map (with this crate's two rules: overloaded
    /// servers are unavailable, removed servers leave the sets when used).
    struct Model {
        map: std::collections::HashMap<IpAddr, (Set, Instant, Instant)>,
        exp: Duration,
    }

    impl Model {
        fn schedule(&mut self, d: Dests<'_>, input: &SchedInput) -> Option<DestId> {
            let (dst, now) = (input.dst, input.now);
            if let Some((mut set, last_use, mut last_mod)) = self.map.remove(&dst)
                && now - last_use < self.exp
            {
                set.retain(|&(id, tg)| d.by_id(id).is_some_and(|r| tag(r) == tg));
                let srv: Vec<(DestId, RealServer)> = set
                    .iter()
                    .map(|&(id, _)| (id, *d.by_id(id).unwrap()))
                    .collect();
                // ip_vs_dest_set_min, as written.
                let mut it = srv.iter();
                let mut min = it
                    .by_ref()
                    .find(|(_, r)| !r.overloaded && r.weight > 0)
                    .copied();
                if let Some((mut lid, mut l)) = min {
                    for &(id, r) in it {
                        if r.overloaded {
                            continue;
                        }
                        let loh = i128::from(l.conn_overhead());
                        let doh = i128::from(r.conn_overhead());
                        if loh * i128::from(r.weight) > doh * i128::from(l.weight) {
                            (lid, l) = (id, r);
                        }
                    }
                    min = Some((lid, l));
                }
                // Compaction: ip_vs_dest_set_max, as written.
                if set.len() > 1 && now - last_mod > self.exp {
                    let mut it = srv.iter().enumerate();
                    if let Some((mut mpos, &(_, mut m))) =
                        it.by_ref().find(|(_, (_, r))| r.weight > 0)
                    {
                        for (pos, &(_, r)) in it {
                            let moh = i128::from(m.conn_overhead());
                            if moh * i128::from(r.weight)
                                < i128::from(r.conn_overhead()) * i128::from(m.weight)
                                && r.weight > 0
                            {
                                (mpos, m) = (pos, r);
                            }
                        }
                        set.remove(mpos);
                        last_mod = now;
                    }
                }
                let ret = match min {
                    Some((id, r)) if !kernel_is_overloaded(&r, d) => Some(id),
                    _ => kernel_wlc(d).inspect(|&id| {
                        let t = tag(d.by_id(id).unwrap());
                        if !set.contains(&(id, t)) {
                            set.insert(0, (id, t));
                            last_mod = now;
                        }
                    }),
                };
                self.map.insert(dst, (set, now, last_mod));
                return ret;
            }
            let id = kernel_wlc(d)?;
            self.map
                .insert(dst, (std::vec![(id, tag(d.by_id(id)?))], now, now));
            Some(id)
        }
    }

    proptest! {
        #[test]
        fn prop_matches_kernel_model_while_the_table_has_room(
            seed in any::<u32>(), exp in 1u64..200_000, ops in ops()
        ) {
            let mut storage = std::vec![LblcrEntry::EMPTY; 4096];
            let exp = Duration::from_secs(exp);
            let mut s = Lblcr::new(&mut storage).with_seed(seed).with_expiration(exp);
            let mut model = Model { map: Default::default(), exp };
            run_ops(&mut s, &ops, exp, |d, input, got| {
                prop_assert_eq!(model.schedule(d, input), got);
                Ok(())
            })?;
        }
    }
}
