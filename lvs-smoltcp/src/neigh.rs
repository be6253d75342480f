//! Neighbour resolution state: the neighbour cache and the hold queue.
//!
//! Both live in caller storage and have fixed capacity. The cache is a small open-addressed
//! table: an entry sits somewhere in a window of [`WINDOW`] slots after its address's home
//! slot, so a lookup reads at most that many slots, and deleting is clearing a slot. The
//! hold queue keeps frames whose next hop is still being resolved, a few per next hop,
//! and hands them back when the answer comes or drops them when it does not.
//!
//! Entries are learnt only for addresses the director itself asked about (or that asked
//! the director), so a host on the link cannot fill the cache with addresses of its
//! choosing; the window bounds the work per frame either way.

use core::ops::Range;

use smoltcp::wire::{EthernetAddress, IpAddress};

/// Slots a neighbour may sit in after its home slot.
pub const WINDOW: usize = 8;

/// How long an answer is trusted before the entry is re-confirmed (while it is still used).
pub const REACHABLE_MS: i64 = 30_000;
/// Time between two solicitations of the same address.
pub const RETRANS_MS: i64 = 1_000;
/// Solicitations before an address is given up (its held frames are dropped).
pub const MAX_PROBES: u8 = 3;

/// What is known of one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NeighbourState {
    /// A free slot.
    Empty,
    /// Asked, no answer yet: frames to it wait in the hold queue.
    Incomplete,
    /// Answered at `confirmed`; past [`REACHABLE_MS`] it is used while being re-asked.
    Reachable,
    /// Configured (`--neigh`): never asked, never expires.
    Static,
}

/// One slot of the neighbour cache. Storage is an array of [`Neighbour::EMPTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    state: NeighbourState,
    ip: IpAddress,
    mac: EthernetAddress,
    port: u8,
    probes: u8,
    /// Reachable: when last confirmed. Incomplete: when last asked.
    at: i64,
    /// When the next solicitation is due (Incomplete, or Reachable past its time).
    next_probe: i64,
}

impl Neighbour {
    /// A free slot, to fill storage arrays with.
    pub const EMPTY: Neighbour = Neighbour {
        state: NeighbourState::Empty,
        ip: IpAddress::Ipv4(core::net::Ipv4Addr::UNSPECIFIED),
        mac: EthernetAddress([0; 6]),
        port: 0,
        probes: 0,
        at: 0,
        next_probe: 0,
    };

    fn reachable(ip: IpAddress, mac: EthernetAddress, port: usize, now: i64) -> Neighbour {
        Neighbour {
            state: NeighbourState::Reachable,
            ip,
            mac,
            port: port as u8,
            probes: 0,
            at: now,
            next_probe: now,
        }
    }

    /// Its address.
    pub fn ip(&self) -> IpAddress {
        self.ip
    }
    /// Its link-layer address (meaningless while [`NeighbourState::Incomplete`]).
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }
    /// The port it was resolved on.
    pub fn port(&self) -> usize {
        self.port as usize
    }
    /// What is known of it.
    pub fn state(&self) -> NeighbourState {
        self.state
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Send to this address; `probe` says a re-confirmation is due now.
    Known { mac: EthernetAddress, probe: bool },
    /// Being resolved: hold the frame; `probe` says a solicitation is due now.
    Pending { probe: bool },
    /// Not in the cache and no room to ask.
    Full,
}

/// The neighbour cache over caller storage.
pub(crate) struct Cache<'a> {
    slots: &'a mut [Neighbour],
}

pub(crate) fn home(ip: &IpAddress, n: usize) -> usize {
    // Entries are only created for addresses the director asks about, so a multiplicative
    // hash spreads them well enough; the window bounds the worst case. The product's high
    // half picks the slot (no division on the per-frame path).
    let h = match ip {
        IpAddress::Ipv4(a) => u32::from(*a).wrapping_mul(0x9e37_79b1),
        IpAddress::Ipv6(a) => {
            let x = u128::from(*a);
            ((x as u64) ^ (x >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u32
                ^ (x as u32).wrapping_mul(0x9e37_79b1)
        }
    };
    ((u64::from(h) * n as u64) >> 32) as usize
}

impl<'a> Cache<'a> {
    pub(crate) fn new(slots: &'a mut [Neighbour]) -> Cache<'a> {
        Cache { slots }
    }

    fn window(&self, ip: &IpAddress) -> impl Iterator<Item = usize> + use<> {
        let n = self.slots.len();
        let h = home(ip, n);
        (0..WINDOW.min(n)).map(move |k| if h + k >= n { h + k - n } else { h + k })
    }

    fn find(&self, ip: &IpAddress) -> Option<usize> {
        self.window(ip).find(|&i| {
            let s = &self.slots[i];
            s.state != NeighbourState::Empty && s.ip == *ip
        })
    }

    /// The link-layer address of `ip` on `port`, or what to do instead. Starts resolving
    /// an unknown address.
    pub(crate) fn lookup(&mut self, ip: IpAddress, port: usize, now: i64) -> Lookup {
        if let Some(i) = self.find(&ip) {
            let s = &mut self.slots[i];
            return match s.state {
                NeighbourState::Static => Lookup::Known {
                    mac: s.mac,
                    probe: false,
                },
                NeighbourState::Reachable => {
                    let stale = now - s.at >= REACHABLE_MS;
                    let probe = stale && now >= s.next_probe;
                    if probe {
                        s.next_probe = now + RETRANS_MS;
                        s.probes = s.probes.saturating_add(1);
                    }
                    Lookup::Known { mac: s.mac, probe }
                }
                NeighbourState::Incomplete => Lookup::Pending { probe: false },
                NeighbourState::Empty => Lookup::Full,
            };
        }
        // Unknown: claim a free slot in the window, or the oldest non-static entry.
        let victim = self
            .window(&ip)
            .find(|&i| self.slots[i].state == NeighbourState::Empty)
            .or_else(|| {
                self.window(&ip)
                    .filter(|&i| self.slots[i].state != NeighbourState::Static)
                    .min_by_key(|&i| self.slots[i].at)
            });
        let Some(i) = victim else {
            return Lookup::Full;
        };
        self.slots[i] = Neighbour {
            state: NeighbourState::Incomplete,
            ip,
            mac: EthernetAddress([0; 6]),
            port: port as u8,
            probes: 1,
            at: now,
            next_probe: now + RETRANS_MS,
        };
        Lookup::Pending { probe: true }
    }

    /// Records an answer for `ip`. Only addresses already in the cache are updated unless
    /// `create` (the frame was addressed to us). Returns whether it changed the cache in
    /// a way that may release held frames.
    pub(crate) fn learn(
        &mut self,
        ip: IpAddress,
        mac: EthernetAddress,
        port: usize,
        now: i64,
        create: bool,
    ) -> bool {
        if !mac.is_unicast() {
            return false;
        }
        if let Some(i) = self.find(&ip) {
            let s = &mut self.slots[i];
            if s.state == NeighbourState::Static {
                return false;
            }
            let was_pending = s.state == NeighbourState::Incomplete;
            *s = Neighbour::reachable(ip, mac, port, now);
            return was_pending;
        }
        if create
            && let Some(i) = self
                .window(&ip)
                .find(|&i| self.slots[i].state == NeighbourState::Empty)
        {
            self.slots[i] = Neighbour::reachable(ip, mac, port, now);
        }
        false
    }

    /// Adds a static entry (replacing whatever the cache knew of `ip`).
    pub(crate) fn add_static(&mut self, ip: IpAddress, mac: EthernetAddress) -> bool {
        let slot = self.find(&ip).or_else(|| {
            self.window(&ip)
                .find(|&i| self.slots[i].state != NeighbourState::Static)
        });
        let Some(i) = slot else { return false };
        self.slots[i] = Neighbour {
            state: NeighbourState::Static,
            ip,
            mac,
            port: 0,
            probes: 0,
            at: 0,
            next_probe: i64::MAX,
        };
        true
    }

    /// Timers: calls `solicit(ip, port)` for every address due for a solicitation and
    /// `give_up(ip)` for every address that stopped answering (removed from the cache).
    /// Returns the earliest time something is due.
    pub(crate) fn tick(
        &mut self,
        now: i64,
        mut solicit: impl FnMut(IpAddress, usize),
        mut give_up: impl FnMut(IpAddress),
    ) -> Option<i64> {
        let mut next: Option<i64> = None;
        for s in self.slots.iter_mut() {
            match s.state {
                NeighbourState::Incomplete => {
                    if now >= s.next_probe {
                        if s.probes >= MAX_PROBES {
                            give_up(s.ip);
                            *s = Neighbour::EMPTY;
                            continue;
                        }
                        s.probes += 1;
                        s.next_probe = now + RETRANS_MS;
                        solicit(s.ip, s.port as usize);
                    }
                    next = Some(next.map_or(s.next_probe, |n| n.min(s.next_probe)));
                }
                NeighbourState::Reachable => {
                    // A stale entry that was probed MAX_PROBES times without an answer is
                    // forgotten; the next frame to it starts afresh (and waits).
                    if now - s.at >= REACHABLE_MS && s.probes >= MAX_PROBES && now >= s.next_probe {
                        *s = Neighbour::EMPTY;
                    } else if now - s.at >= REACHABLE_MS * 10 {
                        // Unused for a long time: free the slot.
                        *s = Neighbour::EMPTY;
                    }
                }
                NeighbourState::Empty | NeighbourState::Static => {}
            }
        }
        next
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Neighbour> {
        self.slots
            .iter()
            .filter(|s| s.state != NeighbourState::Empty)
    }
}

/// One held frame's bookkeeping. Storage is an array of [`Held::EMPTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    next_hop: Option<IpAddress>,
    port: u8,
    len: u16,
    seq: u32,
}

impl Held {
    /// A free slot, to fill storage arrays with.
    pub const EMPTY: Held = Held {
        next_hop: None,
        port: 0,
        len: 0,
        seq: 0,
    };
}

/// Frames waiting for their next hop's link-layer address.
pub(crate) struct HoldQueue<'a> {
    meta: &'a mut [Held],
    bytes: &'a mut [u8],
    slot_len: usize,
    seq: u32,
}

impl<'a> HoldQueue<'a> {
    pub(crate) fn new(meta: &'a mut [Held], bytes: &'a mut [u8]) -> HoldQueue<'a> {
        let slot_len = bytes.len().checked_div(meta.len()).unwrap_or(0);
        HoldQueue {
            meta,
            bytes,
            slot_len,
            seq: 0,
        }
    }

    fn range(&self, i: usize) -> Range<usize> {
        i * self.slot_len..(i + 1) * self.slot_len
    }

    /// Holds `frame` for `next_hop`, at most `per_hop` frames per next hop (the oldest
    /// of that hop makes room). Returns false (frame dropped) when it cannot be held.
    pub(crate) fn push(
        &mut self,
        next_hop: IpAddress,
        port: usize,
        frame: &[u8],
        per_hop: usize,
    ) -> bool {
        if frame.len() > self.slot_len || per_hop == 0 {
            return false;
        }
        let mine = self
            .meta
            .iter()
            .filter(|h| h.next_hop == Some(next_hop))
            .count();
        let slot = if mine >= per_hop {
            self.meta
                .iter()
                .enumerate()
                .filter(|(_, h)| h.next_hop == Some(next_hop))
                .min_by_key(|(_, h)| h.seq)
                .map(|(i, _)| i)
        } else {
            self.meta.iter().position(|h| h.next_hop.is_none())
        };
        let Some(i) = slot else { return false };
        let r = self.range(i);
        self.bytes[r.start..r.start + frame.len()].copy_from_slice(frame);
        self.seq = self.seq.wrapping_add(1);
        self.meta[i] = Held {
            next_hop: Some(next_hop),
            port: port as u8,
            len: frame.len() as u16,
            seq: self.seq,
        };
        true
    }

    /// Takes every frame held for `next_hop`, oldest first, passing (port, frame bytes)
    /// to `f`. Returns how many.
    pub(crate) fn release(
        &mut self,
        next_hop: IpAddress,
        mut f: impl FnMut(usize, &mut [u8]),
    ) -> usize {
        let mut n = 0;
        loop {
            let oldest = self
                .meta
                .iter()
                .enumerate()
                .filter(|(_, h)| h.next_hop == Some(next_hop))
                .min_by_key(|(_, h)| h.seq)
                .map(|(i, _)| i);
            let Some(i) = oldest else { return n };
            let h = self.meta[i];
            self.meta[i] = Held::EMPTY;
            let r = self.range(i);
            f(
                h.port as usize,
                &mut self.bytes[r.start..r.start + h.len as usize],
            );
            n += 1;
        }
    }

    /// Drops every frame held for `next_hop`; returns how many.
    pub(crate) fn discard(&mut self, next_hop: IpAddress) -> usize {
        let mut n = 0;
        for h in self
            .meta
            .iter_mut()
            .filter(|h| h.next_hop == Some(next_hop))
        {
            *h = Held::EMPTY;
            n += 1;
        }
        n
    }

    /// Frames held now.
    pub(crate) fn len(&self) -> usize {
        self.meta.iter().filter(|h| h.next_hop.is_some()).count()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddress {
        IpAddress::Ipv4(Ipv4Addr::new(10, 0, 1, n))
    }
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    #[test]
    fn unknown_is_asked_then_learnt() {
        let mut slots = [Neighbour::EMPTY; 16];
        let mut c = Cache::new(&mut slots);
        assert_eq!(c.lookup(ip(1), 0, 0), Lookup::Pending { probe: true });
        assert_eq!(c.lookup(ip(1), 0, 10), Lookup::Pending { probe: false });
        assert!(c.learn(ip(1), MAC, 0, 20, false));
        assert_eq!(
            c.lookup(ip(1), 0, 30),
            Lookup::Known {
                mac: MAC,
                probe: false
            }
        );
        // Stale: still used, re-asked once per RETRANS_MS.
        let t = 20 + REACHABLE_MS;
        assert_eq!(
            c.lookup(ip(1), 0, t),
            Lookup::Known {
                mac: MAC,
                probe: true
            }
        );
        assert_eq!(
            c.lookup(ip(1), 0, t + 1),
            Lookup::Known {
                mac: MAC,
                probe: false
            }
        );
    }

    #[test]
    fn unsolicited_answers_are_not_learnt() {
        let mut slots = [Neighbour::EMPTY; 16];
        let mut c = Cache::new(&mut slots);
        assert!(!c.learn(ip(7), MAC, 0, 0, false));
        assert_eq!(c.iter().count(), 0);
        c.learn(ip(7), MAC, 0, 0, true);
        assert_eq!(c.iter().count(), 1);
        // Broadcast or multicast link addresses are never learnt.
        c.learn(ip(8), EthernetAddress::BROADCAST, 0, 0, true);
        assert_eq!(c.iter().count(), 1);
    }

    #[test]
    fn unanswered_addresses_are_given_up() {
        let mut slots = [Neighbour::EMPTY; 4];
        let mut c = Cache::new(&mut slots);
        c.lookup(ip(1), 0, 0);
        let (mut asked, mut gone) = (0, 0);
        let mut t = 0;
        for _ in 0..10 {
            t += RETRANS_MS;
            c.tick(t, |_, _| asked += 1, |_| gone += 1);
        }
        assert_eq!(asked as u8, MAX_PROBES - 1);
        assert_eq!(gone, 1);
        assert_eq!(c.iter().count(), 0);
    }

    #[test]
    fn static_entries_stay_and_full_window_evicts_oldest() {
        let mut slots = [Neighbour::EMPTY; 4];
        let mut c = Cache::new(&mut slots);
        assert!(c.add_static(ip(1), MAC));
        for n in 2..=4 {
            c.lookup(ip(n), 0, n as i64);
        }
        // Full: the oldest non-static (ip 2) makes room; the static entry stays.
        assert_eq!(c.lookup(ip(5), 0, 100), Lookup::Pending { probe: true });
        assert!(
            c.iter()
                .any(|s| s.ip() == ip(1) && s.state() == NeighbourState::Static)
        );
        assert!(!c.iter().any(|s| s.ip() == ip(2)));
        assert_eq!(
            c.lookup(ip(1), 0, 1 << 40),
            Lookup::Known {
                mac: MAC,
                probe: false
            }
        );
    }

    #[test]
    fn hold_queue_keeps_order_and_bounds() {
        let mut meta = [Held::EMPTY; 4];
        let mut bytes = [0u8; 4 * 8];
        let mut q = HoldQueue::new(&mut meta, &mut bytes);
        assert!(q.push(ip(1), 0, &[1], 2));
        assert!(q.push(ip(1), 0, &[2], 2));
        assert!(q.push(ip(1), 0, &[3], 2)); // replaces [1]
        assert!(q.push(ip(2), 1, &[9; 8], 2));
        assert!(!q.push(ip(2), 1, &[9; 9], 2)); // larger than a slot
        assert_eq!(q.len(), 3);
        let mut got = [0u8; 4];
        let mut k = 0;
        assert_eq!(
            q.release(ip(1), |port, f| {
                assert_eq!(port, 0);
                got[k] = f[0];
                k += 1;
            }),
            2
        );
        assert_eq!(&got[..2], &[2, 3]);
        assert_eq!(q.discard(ip(2)), 1);
        assert_eq!(q.len(), 0);
    }
}
