//! Source hashing (`sh`), the kernel's `ip_vs_sh.c`, with `sh-fallback` and `sh-port`.
//!
//! A static table of `N` buckets (the kernel's `IP_VS_SH_TAB_SIZE`, 256) maps a hash of
//! the client's address (and, with [`SchedFlags::port`], its port) to a real server.
//!
//! [`update`](Scheduler::update) fills the table as `ip_vs_sh_reassign` does: walking the
//! server list in order, wrapping, each server takes as many consecutive buckets as its
//! weight, and at least one (a server of weight 0 takes exactly one, as in the kernel,
//! where `++d_count >= weight` is already true for weight 0). The kernel does not cap a
//! weight: the walk simply stops after `N` buckets, so a weight of `N` or more fills the
//! rest of the table and the servers after it get no bucket. The same happens here.
//!
//! [`schedule`](Scheduler::schedule) hashes `port + address` (the port is 0 without
//! `sh-port`; IPv6 addresses are folded by xor) with the kernel's `hash_32` to a bucket.
//! If the bucket's server is unavailable (weight 0 or overloaded), there is no server,
//! or with `sh-fallback` the kernel's `ip_vs_sh_get_fallback` walk: the buckets
//! `(2*h + k) mod N` for `k = 0, 1, ...` (the kernel adds the hash to the offset
//! `(k + h) mod N` it starts from) until an available server; an empty bucket ends the
//! walk. Bucket positions and the fill are the kernel's, so a client maps to the same
//! list position as on a Linux director with the same server list and weights.
//!
//! ## Guarantees
//! - No allocation; the table is an array inside the scheduler (`N` × 4 bytes).
//! - No panic: `N` is checked at compile time (a power of two, at most 2^20, the
//!   kernel's `CONFIG_IP_VS_SH_TAB_BITS` range ends at 20) and every access is checked.
//! - `schedule` never returns a server that is not a member of the `Dests` it is given,
//!   nor one that is unavailable. A bucket naming a server that left the list since the
//!   last `update` counts as unavailable.
//!
//! ## Complexity
//! `update`: O(N). `schedule`: one bucket and the membership check of
//! [`Dests::by_id`] (O(number of servers)); with fallback, at most `N + 1` buckets.

use super::dh::kernel_hash_32;
use super::{Dests, SchedFlags, SchedInput, Scheduler, addr_key};
use crate::service::DestId;

/// The kernel's table size (`IP_VS_SH_TAB_SIZE`, `1 << CONFIG_IP_VS_SH_TAB_BITS`).
pub const SH_DEFAULT_SIZE: usize = 256;

/// The source hashing scheduler with a table of `N` buckets (256 by default, as the
/// kernel's).
///
/// `N` must be a power of two no larger than 2^20 (a compile-time check in
/// [`Sh::new`]). Write the type with its default size as `Sh`:
/// `let sh: Sh = Sh::new(SchedFlags::default());`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sh<const N: usize = SH_DEFAULT_SIZE> {
    buckets: [Option<DestId>; N],
    flags: SchedFlags,
}

impl<const N: usize> Sh<N> {
    /// A scheduler with an empty table (every lookup fails until the first
    /// [`update`](Scheduler::update)) and the service's flags (`sh-fallback`,
    /// `sh-port`).
    pub const fn new(flags: SchedFlags) -> Sh<N> {
        const {
            assert!(
                N.is_power_of_two() && N <= 1 << 20,
                "Sh<N>: N must be a power of two <= 2^20"
            )
        };
        Sh {
            buckets: [None; N],
            flags,
        }
    }

    /// The flags it was built with.
    pub const fn flags(&self) -> SchedFlags {
        self.flags
    }

    /// The buckets, as the last `update` filled them.
    pub const fn buckets(&self) -> &[Option<DestId>; N] {
        &self.buckets
    }

    /// The kernel's `ip_vs_sh_hashkey(addr, port, 0)`: the first bucket a client
    /// address and port hash to (pass port 0 when `sh-port` is off).
    #[inline]
    pub fn bucket_of(addr: &core::net::IpAddr, port: u16) -> usize {
        let key = (port as u32).wrapping_add(addr_key(addr));
        kernel_hash_32(key, N.trailing_zeros()) as usize & (N - 1)
    }

    /// The server in bucket `i` if it is a member and available.
    #[inline]
    fn available(&self, dests: &Dests<'_>, i: usize) -> Slot {
        match self.buckets.get(i) {
            Some(Some(id)) => match dests.by_id(*id) {
                Some(d) if d.is_available() => Slot::Available(*id),
                _ => Slot::Unavailable,
            },
            _ => Slot::Empty,
        }
    }
}

impl<const N: usize> Default for Sh<N> {
    /// No flags.
    fn default() -> Self {
        Self::new(SchedFlags {
            fallback: false,
            port: false,
        })
    }
}

/// What a bucket holds, as a lookup sees it.
enum Slot {
    Empty,
    Unavailable,
    Available(DestId),
}

impl<const N: usize> Scheduler for Sh<N> {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn update(&mut self, dests: Dests<'_>) {
        let mut it = dests.iter();
        let mut cur = it.next();
        let mut count: u32 = 0;
        for b in self.buckets.iter_mut() {
            let Some((id, d)) = cur else {
                // No server at all (an empty list, or only ids of empty slots).
                *b = None;
                continue;
            };
            *b = Some(id);
            // Don't move on until the server has its weight in buckets (and at least
            // one: `1 >= 0` for weight 0).
            count += 1;
            if count >= d.weight {
                count = 0;
                cur = match it.next() {
                    Some(next) => Some(next),
                    None => {
                        it = dests.iter();
                        it.next()
                    }
                };
            }
        }
    }

    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId> {
        let port = if self.flags.port { input.src_port } else { 0 };
        let ihash = Self::bucket_of(&input.src, port);
        match self.available(&dests, ihash) {
            Slot::Available(id) => {
                lvs_trace!("sh: {}:{} -> dest {}", input.src, port, id);
                return Some(id);
            }
            Slot::Empty => return None,
            Slot::Unavailable if !self.flags.fallback => return None,
            Slot::Unavailable => {}
        }
        // ip_vs_sh_get_fallback: roffset = (k + ihash) mod N, then the hash key with
        // that offset adds ihash again.
        let start = ihash.wrapping_mul(2);
        for k in 0..N {
            match self.available(&dests, start.wrapping_add(k) & (N - 1)) {
                Slot::Available(id) => {
                    lvs_trace!("sh: {}:{} -> dest {} (fallback {})", input.src, port, id, k);
                    return Some(id);
                }
                Slot::Empty => return None,
                Slot::Unavailable => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{input, table};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    const PLAIN: SchedFlags = SchedFlags {
        fallback: false,
        port: false,
    };
    const FALLBACK: SchedFlags = SchedFlags {
        fallback: true,
        port: false,
    };
    const PORT: SchedFlags = SchedFlags {
        fallback: false,
        port: true,
    };

    fn count(sh: &Sh, id: DestId) -> usize {
        sh.buckets().iter().filter(|b| **b == Some(id)).count()
    }

    #[test]
    fn test_empty_table_schedules_nothing() {
        let (t, m) = table(&[1]);
        let mut sh: Sh = Sh::new(FALLBACK);
        assert_eq!(sh.name(), "sh");
        assert_eq!(sh.flags(), FALLBACK);
        assert_eq!(Sh::<256>::default().flags(), PLAIN);
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
        sh.update(Dests::new(&t, &[]));
        assert!(sh.buckets().iter().all(Option::is_none));
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
    }

    #[test]
    fn test_fill_follows_weights() {
        let (t, m) = table(&[1, 2, 3]);
        let mut sh: Sh = Sh::new(PLAIN);
        sh.update(Dests::new(&t, &m));
        let expect = [0, 1, 1, 2, 2, 2];
        for (i, b) in sh.buckets().iter().enumerate() {
            assert_eq!(*b, Some(expect[i % 6]), "bucket {i}");
        }
        // 256 = 42*6 + 4: the last round is 0, 1, 1, 2.
        assert_eq!((count(&sh, 0), count(&sh, 1), count(&sh, 2)), (43, 86, 127));
    }

    #[test]
    fn test_weight_zero_takes_one_bucket_and_big_weights_are_not_capped() {
        let (t, m) = table(&[2, 0, 1]);
        let mut sh: Sh = Sh::new(PLAIN);
        sh.update(Dests::new(&t, &m));
        assert_eq!(
            &sh.buckets()[..8],
            &[
                Some(0),
                Some(0),
                Some(1),
                Some(2),
                Some(0),
                Some(0),
                Some(1),
                Some(2)
            ]
        );
        // A weight of 300 fills the whole table: the kernel walks 256 buckets only.
        let (t, m) = table(&[300, 1]);
        sh.update(Dests::new(&t, &m));
        assert_eq!(count(&sh, 0), 256);
        let (t, m) = table(&[1, 250, 7]);
        sh.update(Dests::new(&t, &m));
        assert_eq!((count(&sh, 0), count(&sh, 1), count(&sh, 2)), (1, 250, 5));
    }

    #[test]
    fn test_kernel_bucket_index() {
        // hash_32(port + addr, 8): 10.1.1.1 = 0x0a010101.
        let a = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(
            Sh::<256>::bucket_of(&a, 0),
            (0x0a01_0101u32.wrapping_mul(0x61c8_8647) >> 24) as usize
        );
        assert_eq!(
            Sh::<256>::bucket_of(&a, 80),
            (0x0a01_0151u32.wrapping_mul(0x61c8_8647) >> 24) as usize
        );
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let fold = 0x2001_0db8u32 ^ 1;
        assert_eq!(
            Sh::<16>::bucket_of(&IpAddr::V6(v6), 0),
            (fold.wrapping_mul(0x61c8_8647) >> 28) as usize
        );
    }

    #[test]
    fn test_same_source_same_server() {
        let (t, m) = table(&[1, 1, 1, 1]);
        let mut sh: Sh = Sh::new(PLAIN);
        sh.update(Dests::new(&t, &m));
        for src in [0x0a00_0001u32, 0xc0a8_0101, 0x0808_0808, 0xffff_ffff] {
            let a = sh.schedule(Dests::new(&t, &m), &input(src, 1000, 0));
            assert!(a.is_some());
            // Without sh-port the port and destination do not matter.
            assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 2000, 7)), a);
            let expect = Sh::<256>::bucket_of(&IpAddr::V4(Ipv4Addr::from(src)), 0) % 4;
            assert_eq!(a, Some(expect as DestId));
        }
    }

    #[test]
    fn test_distribution_proportional_to_weight() {
        let (t, m) = table(&[1, 3]);
        let mut sh: Sh = Sh::new(PLAIN);
        sh.update(Dests::new(&t, &m));
        let mut hits = [0u32; 2];
        for src in 0..4096u32 {
            let id = sh
                .schedule(Dests::new(&t, &m), &input(0x0a00_0000 + src * 7919, 0, 0))
                .unwrap();
            hits[id as usize] += 1;
        }
        // 64 buckets : 192 buckets; clients spread over them about evenly.
        let share = hits[1] as f64 / 4096.0;
        assert!((share - 0.75).abs() < 0.05, "{hits:?}");
    }

    #[test]
    fn test_port_flag_changes_the_mapping() {
        let (t, m) = table(&[1, 1, 1, 1, 1, 1, 1, 1]);
        let mut plain: Sh = Sh::new(PLAIN);
        let mut port: Sh = Sh::new(PORT);
        plain.update(Dests::new(&t, &m));
        port.update(Dests::new(&t, &m));
        let src = 0x0a01_0203;
        let base = plain.schedule(Dests::new(&t, &m), &input(src, 0, 0));
        // Port 0 hashes like no port at all.
        assert_eq!(port.schedule(Dests::new(&t, &m), &input(src, 0, 0)), base);
        let mut seen = std::collections::BTreeSet::new();
        for p in 1000..1064u16 {
            assert_eq!(plain.schedule(Dests::new(&t, &m), &input(src, p, 0)), base);
            let a = port
                .schedule(Dests::new(&t, &m), &input(src, p, 0))
                .unwrap();
            assert_eq!(
                port.schedule(Dests::new(&t, &m), &input(src, p, 0)),
                Some(a)
            );
            seen.insert(a);
        }
        assert!(seen.len() >= 6, "{seen:?}");
    }

    #[test]
    fn test_unavailable_without_fallback_is_none() {
        let (mut t, m) = table(&[1, 1]);
        let mut sh: Sh = Sh::new(PLAIN);
        sh.update(Dests::new(&t, &m));
        let src = (0u32..)
            .find(|&s| sh.schedule(Dests::new(&t, &m), &input(s, 0, 0)) == Some(0))
            .unwrap();
        t[0].as_mut().unwrap().overloaded = true;
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), None);
        t[0].as_mut().unwrap().overloaded = false;
        t[0].as_mut().unwrap().weight = 0;
        sh.update(Dests::new(&t, &m));
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), None);
    }

    #[test]
    fn test_fallback_walks_from_twice_the_hash() {
        let (mut t, m) = table(&[1, 1, 1, 1]);
        let mut sh = Sh::<16>::new(FALLBACK);
        sh.update(Dests::new(&t, &m));
        // Bucket i holds server i % 4. Take a client whose bucket h has server 1 and
        // make 1 unavailable: the walk starts at bucket 2h, which holds server 2h % 4.
        let src = (0u32..)
            .find(|&s| {
                let h = Sh::<16>::bucket_of(&IpAddr::V4(Ipv4Addr::from(s)), 0);
                h % 4 == 1
            })
            .unwrap();
        let h = Sh::<16>::bucket_of(&IpAddr::V4(Ipv4Addr::from(src)), 0);
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), Some(1));
        t[1].as_mut().unwrap().weight = 0;
        // 2h % 4 == 2 for odd h.
        assert_eq!(
            sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)),
            Some(((2 * h) % 4) as DestId)
        );
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), Some(3));
        // Every server unavailable: none, after one walk around the table.
        for d in t.iter_mut() {
            d.as_mut().unwrap().overloaded = true;
        }
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), None);
        // Without the flag, nothing.
        t[3].as_mut().unwrap().overloaded = false;
        let mut plain = Sh::<16>::new(PLAIN);
        plain.update(Dests::new(&t, &m));
        assert_eq!(plain.schedule(Dests::new(&t, &m), &input(src, 0, 0)), None);
        assert_eq!(sh.schedule(Dests::new(&t, &m), &input(src, 0, 0)), Some(3));
    }

    #[test]
    fn test_removed_server_without_update_is_skipped() {
        let (t, m) = table(&[1, 1]);
        let mut sh = Sh::<16>::new(FALLBACK);
        sh.update(Dests::new(&t, &m));
        for s in 0..64u32 {
            assert_eq!(
                sh.schedule(Dests::new(&t, &m[1..]), &input(s, 0, 0)),
                Some(1)
            );
        }
    }

    proptest! {
        #[test]
        fn prop_deterministic(weights in proptest::collection::vec(0u32..6, 0..10), flags in any::<(bool, bool)>()) {
            let (t, m) = table(&weights);
            let f = SchedFlags { fallback: flags.0, port: flags.1 };
            let mut a: Sh = Sh::new(f);
            let mut b: Sh = Sh::new(f);
            a.update(Dests::new(&t, &m));
            b.update(Dests::new(&t, &m));
            prop_assert_eq!(&a, &b);
            a.update(Dests::new(&t, &m));
            prop_assert_eq!(&a, &b);
        }

        #[test]
        fn prop_never_unavailable_or_foreign(
            weights in proptest::collection::vec(0u32..4, 0..12),
            overloaded in proptest::collection::vec(any::<bool>(), 12),
            keep in proptest::collection::vec(any::<bool>(), 12),
            flags in any::<(bool, bool)>(),
            srcs in proptest::collection::vec((any::<u32>(), any::<u16>()), 1..32),
        ) {
            let (mut t, m) = table(&weights);
            let mut sh = Sh::<32>::new(SchedFlags { fallback: flags.0, port: flags.1 });
            sh.update(Dests::new(&t, &m));
            for (d, o) in t.iter_mut().zip(&overloaded) {
                d.as_mut().unwrap().overloaded = *o;
            }
            let kept: Vec<DestId> = m.iter().copied().zip(&keep).filter(|(_, k)| **k).map(|(id, _)| id).collect();
            for (src, port) in srcs {
                let a = sh.schedule(Dests::new(&t, &kept), &input(src, port, 0));
                if let Some(id) = a {
                    prop_assert!(kept.contains(&id));
                    prop_assert!(t[id as usize].unwrap().is_available());
                } else if flags.0 {
                    // The fallback walk covers every bucket: no kept, available server
                    // may own one.
                    let reachable = kept
                        .iter()
                        .any(|&id| t[id as usize].unwrap().is_available() && sh.buckets().contains(&Some(id)));
                    prop_assert!(!reachable);
                }
            }
        }
    }
}
