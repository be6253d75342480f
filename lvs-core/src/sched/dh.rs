//! Destination hashing (`dh`), the kernel's `ip_vs_dh.c`.
//!
//! A static table of `N` buckets (the kernel's `IP_VS_DH_TAB_SIZE`, 256) maps a hash of
//! the packet's *destination* address to a real server. [`Dh::update`](Scheduler::update)
//! deals the buckets out round robin over the real servers in list order (the kernel's
//! `ip_vs_dh_assign`): bucket `i` gets server `i mod n`. Weights play no part in the
//! assignment: a server of weight 0 keeps its buckets. [`Dh::schedule`](Scheduler::schedule)
//! hashes the destination address with the kernel's `hash_32` (IPv6 addresses folded
//! by xor, as `ip_vs_dh_hashkey` does) and returns the bucket's server only if it is
//! available (weight above 0 and not overloaded); otherwise no server, as in the kernel:
//! dh has no fallback (its use is cache clusters, where the director then bypasses the
//! cache).
//!
//! Because the assignment and the hash are the kernel's (`hash_32`, the top bits of the
//! product with `GOLDEN_RATIO_32`; kernels before `hash_32` kept the low bits of a
//! product with 2654435761), a destination address maps to the same list position as on
//! a Linux director with the same server list.
//!
//! ## Guarantees
//! - No allocation; the table is an array inside the scheduler (`N` × 4 bytes).
//! - No panic: `N` is checked at compile time (a power of two, at most 2^20) and every
//!   access is checked.
//! - `schedule` never returns a server that is not a member of the `Dests` it is given,
//!   nor one that is unavailable.
//!
//! ## Complexity
//! `update`: O(N). `schedule`: O(1) for the hash and the bucket, plus the membership
//! check of [`Dests::by_id`], O(number of servers).

use super::{Dests, SchedInput, Scheduler, addr_key};
use crate::service::DestId;

/// The kernel's table size (`IP_VS_DH_TAB_SIZE`, `1 << CONFIG_IP_VS_DH_TAB_BITS`).
pub const DH_DEFAULT_SIZE: usize = 256;

/// The kernel's `hash_32(val, bits)`: multiply by `GOLDEN_RATIO_32` and keep the top
/// `bits` bits (0 for `bits == 0`, a one-bucket table).
#[inline]
pub(crate) const fn kernel_hash_32(val: u32, bits: u32) -> u32 {
    if bits == 0 || bits > 32 {
        return 0;
    }
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// The destination hashing scheduler with a table of `N` buckets (256 by default, as
/// the kernel's).
///
/// `N` must be a power of two no larger than 2^20 (a compile-time check in
/// [`Dh::new`]). Write the type with its default size as `Dh` and build it with
/// `let dh: Dh = Dh::new();`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dh<const N: usize = DH_DEFAULT_SIZE> {
    buckets: [Option<DestId>; N],
}

impl<const N: usize> Dh<N> {
    /// A scheduler with an empty table: every lookup fails until the first
    /// [`update`](Scheduler::update).
    pub const fn new() -> Dh<N> {
        const {
            assert!(
                N.is_power_of_two() && N <= 1 << 20,
                "Dh<N>: N must be a power of two <= 2^20"
            )
        };
        Dh { buckets: [None; N] }
    }

    /// The buckets, as the last `update` filled them.
    pub const fn buckets(&self) -> &[Option<DestId>; N] {
        &self.buckets
    }

    /// The bucket a destination address hashes to (`ip_vs_dh_hashkey`).
    #[inline]
    pub fn bucket_of(addr: &core::net::IpAddr) -> usize {
        kernel_hash_32(addr_key(addr), N.trailing_zeros()) as usize & (N - 1)
    }
}

impl<const N: usize> Default for Dh<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Scheduler for Dh<N> {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn update(&mut self, dests: Dests<'_>) {
        // Round robin over the list; the iterator restarts when it runs out, and an
        // empty list leaves every bucket empty.
        let mut it = dests.iter();
        for b in self.buckets.iter_mut() {
            *b = match it.next() {
                Some((id, _)) => Some(id),
                None => {
                    it = dests.iter();
                    it.next().map(|(id, _)| id)
                }
            };
        }
    }

    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId> {
        let id = (*self.buckets.get(Self::bucket_of(&input.dst))?)?;
        let d = dests.by_id(id)?;
        if d.is_available() {
            lvs_trace!("dh: {} -> dest {}", input.dst, id);
            Some(id)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{input, table};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn to(dst: u32) -> SchedInput {
        let mut i = input(0x0a01_0101, 1234, 0);
        i.dst = IpAddr::V4(Ipv4Addr::from(dst));
        i
    }

    #[test]
    fn test_kernel_hash_32() {
        // hash_32(1, 8) = 0x61c88647 >> 24.
        assert_eq!(kernel_hash_32(1, 8), 0x61);
        assert_eq!(kernel_hash_32(0, 8), 0);
        assert_eq!(kernel_hash_32(0xdead_beef, 0), 0);
        assert_eq!(kernel_hash_32(2, 32), 0xc391_0c8e);
    }

    #[test]
    fn test_empty_table_schedules_nothing() {
        let (t, m) = table(&[1, 1]);
        let mut dh: Dh = Dh::new();
        assert_eq!(dh.name(), "dh");
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(1)), None);
        dh.update(Dests::new(&t, &[]));
        assert!(dh.buckets().iter().all(Option::is_none));
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(1)), None);
    }

    #[test]
    fn test_round_robin_buckets_ignore_weights() {
        let (t, m) = table(&[1, 5, 0]);
        let mut dh: Dh = Dh::new();
        dh.update(Dests::new(&t, &m));
        for (i, b) in dh.buckets().iter().enumerate() {
            assert_eq!(*b, Some((i % 3) as DestId));
        }
        // 256 = 3*85 + 1: 86, 85, 85.
        let count = |id| dh.buckets().iter().filter(|b| **b == Some(id)).count();
        assert_eq!((count(0), count(1), count(2)), (86, 85, 85));
    }

    #[test]
    fn test_same_destination_same_server() {
        let (t, m) = table(&[1, 1, 1, 1]);
        let mut dh: Dh = Dh::new();
        dh.update(Dests::new(&t, &m));
        for dst in [0xc000_0201u32, 0x0808_0808, 0x0a00_0001] {
            let a = dh.schedule(Dests::new(&t, &m), &to(dst));
            assert!(a.is_some());
            // The source does not matter.
            let mut i = to(dst);
            i.src = IpAddr::V4(Ipv4Addr::new(172, 16, 9, 9));
            i.src_port = 999;
            assert_eq!(dh.schedule(Dests::new(&t, &m), &i), a);
            assert_eq!(a, Some((Dh::<256>::bucket_of(&i.dst) % 4) as DestId));
        }
    }

    #[test]
    fn test_kernel_bucket_index() {
        // 192.0.2.1 = 0xc0000201; 0xc0000201 * 0x61c88647 mod 2^32 = 0x32d51447.
        assert_eq!(
            Dh::<256>::bucket_of(&IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            0x32
        );
        // IPv6: the xor of the four words, then the same hash.
        let v6: Ipv6Addr = "2001:db8::c000:201".parse().unwrap();
        let fold = 0x2001_0db8u32 ^ 0xc000_0201;
        assert_eq!(
            Dh::<256>::bucket_of(&IpAddr::V6(v6)),
            (fold.wrapping_mul(0x61c8_8647) >> 24) as usize
        );
    }

    #[test]
    fn test_unavailable_server_gives_none() {
        let (mut t, m) = table(&[1, 1]);
        let mut dh: Dh = Dh::new();
        dh.update(Dests::new(&t, &m));
        // Find destinations that land on server 0 and on server 1.
        let on = |want: DestId| {
            (1u32..)
                .find(|&d| Dh::<256>::bucket_of(&to(d).dst) % 2 == want as usize)
                .unwrap()
        };
        let (d0, d1) = (on(0), on(1));
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(d0)), Some(0));
        // Quiesced: no fallback, and the other server keeps its buckets.
        t[0].as_mut().unwrap().weight = 0;
        dh.update(Dests::new(&t, &m));
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(d0)), None);
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(d1)), Some(1));
        // Overloaded: the same.
        t[0].as_mut().unwrap().weight = 1;
        t[0].as_mut().unwrap().overloaded = true;
        assert_eq!(dh.schedule(Dests::new(&t, &m), &to(d0)), None);
        // A server removed without an update is never returned.
        t[0].as_mut().unwrap().overloaded = false;
        assert_eq!(dh.schedule(Dests::new(&t, &m[1..]), &to(d0)), None);
    }

    #[test]
    fn test_small_table_and_skipped_slots() {
        // An id naming an empty slot takes no bucket.
        let (mut t, _) = table(&[1, 1, 1]);
        t[1] = None;
        let m: Vec<DestId> = std::vec![0, 1, 2];
        let mut dh = Dh::<8>::new();
        dh.update(Dests::new(&t, &m));
        assert_eq!(
            dh.buckets(),
            &[
                Some(0),
                Some(2),
                Some(0),
                Some(2),
                Some(0),
                Some(2),
                Some(0),
                Some(2)
            ]
        );
        let mut one = Dh::<1>::new();
        one.update(Dests::new(&t, &m));
        assert_eq!(one.schedule(Dests::new(&t, &m), &to(12345)), Some(0));
    }

    proptest! {
        #[test]
        fn prop_never_unavailable_or_foreign(
            weights in proptest::collection::vec(0u32..4, 0..12),
            overloaded in proptest::collection::vec(any::<bool>(), 12),
            keep in proptest::collection::vec(any::<bool>(), 12),
            dsts in proptest::collection::vec(any::<u32>(), 1..32),
        ) {
            let (mut t, m) = table(&weights);
            let mut dh: Dh = Dh::new();
            dh.update(Dests::new(&t, &m));
            for (d, o) in t.iter_mut().zip(&overloaded) {
                d.as_mut().unwrap().overloaded = *o;
            }
            let kept: Vec<DestId> = m.iter().copied().zip(&keep).filter(|(_, k)| **k).map(|(id, _)| id).collect();
            for dst in dsts {
                let a = dh.schedule(Dests::new(&t, &kept), &to(dst));
                if let Some(id) = a {
                    prop_assert!(kept.contains(&id));
                    prop_assert!(t[id as usize].unwrap().is_available());
                }
                prop_assert_eq!(a, dh.schedule(Dests::new(&t, &kept), &to(dst)));
            }
        }
    }
}
