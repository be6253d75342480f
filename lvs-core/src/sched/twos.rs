//! Power of two choices (`twos`, the kernel's `ip_vs_twos.c`).
//!
//! Two servers are drawn at random, each with probability proportional to its weight,
//! and the connection goes to the one with the smaller `overhead / weight` (overhead
//! `active * 256 + inactive`, [`RealServer::conn_overhead`]), compared by
//! cross-multiplication in `u64`; on a tie, the first draw.
//!
//! The draw is the kernel's: with `T` the sum of the weights of the available servers
//! (weight above 0, not overloaded), a number `r` is taken in `0..=T` and the list is
//! walked subtracting each available server's weight from `r`; the server that brings
//! it to 0 or below is drawn. (The range is inclusive, as in the kernel, so the first
//! available server is drawn with probability `(w + 1) / (T + 1)`, the others with
//! `w / (T + 1)`.) Both draws are made in the same walk.
//!
//! Randomness: the kernel calls its generator twice. Here the scheduler takes the 32
//! bits of [`SchedInput::random`]: the first draw is `random % (T + 1)` and the second
//! uses `hash32(random, ..)` (a bijection of the 32 bits) the same way. The choice is a
//! pure function of the servers and `random`.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Twos::schedule`]): two passes over the servers, O(n); no state, no
//!   allocation, no panic; `None` only when no server is available, and never an
//!   unavailable server.
//!
//! [`RealServer::conn_overhead`]: crate::service::RealServer::conn_overhead

use super::{Dests, SchedInput, Scheduler, hash32};
use crate::service::DestId;

/// The power-of-two-choices scheduler (`twos`). It has no state: its randomness is
/// [`SchedInput::random`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Twos;

/// Seed that derives the second draw's 32 bits from the first's.
const SECOND_DRAW_SEED: u32 = 0x5bd1_e995;

impl Twos {
    /// The power-of-two-choices scheduler.
    pub const fn new() -> Self {
        Twos
    }
}

/// The two draws, each in `0..=total`, from the caller's 32 random bits.
fn draws(random: u32, total: u64) -> (u64, u64) {
    let m = total.saturating_add(1);
    (
        u64::from(random) % m,
        u64::from(hash32(random, SECOND_DRAW_SEED)) % m,
    )
}

/// The kernel's walk for draws `r1` and `r2` (each in `0..=T`), then the comparison.
fn pick(dests: Dests<'_>, mut r1: u64, mut r2: u64) -> Option<DestId> {
    // (id, weight, overhead) of each draw.
    let mut c1: Option<(DestId, u64, u64)> = None;
    let mut c2: Option<(DestId, u64, u64)> = None;
    for (id, d) in dests.iter() {
        if !d.is_available() {
            continue;
        }
        let w = u64::from(d.weight);
        let entry = (id, w, u64::from(d.conn_overhead()));
        r1 = r1.saturating_sub(w);
        r2 = r2.saturating_sub(w);
        if r1 == 0 && c1.is_none() {
            c1 = Some(entry);
        }
        if r2 == 0 && c2.is_none() {
            c2 = Some(entry);
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    let chosen = match (c1, c2) {
        // The second draw wins only with a strictly smaller overhead / weight.
        (Some((_, w1, oh1)), Some((id2, w2, oh2))) if w2 * oh1 > w1 * oh2 => Some(id2),
        (Some((id1, _, _)), _) => Some(id1),
        (None, c2) => c2.map(|c| c.0),
    };
    match chosen {
        Some(id) => lvs_trace!("twos: server {}", id),
        None => lvs_trace!("twos: no destination available"),
    }
    chosen
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, input: &SchedInput) -> Option<DestId> {
        let total: u64 = dests
            .iter()
            .filter(|(_, d)| d.is_available())
            .map(|(_, d)| u64::from(d.weight))
            .sum();
        if total == 0 {
            lvs_trace!("twos: no destination available");
            return None;
        }
        let (r1, r2) = draws(input.random, total);
        pick(dests, r1, r2)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{input, table};
    use crate::service::RealServer;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn sched(t: &[Option<RealServer>], m: &[DestId], random: u32) -> Option<DestId> {
        let mut s = Twos::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, random))
    }

    #[test]
    fn test_weighted_draw_positions() {
        // Weights 2, 0, 1 (B quiesced), T = 3: r in 0..=3. A for r = 0, 1, 2; C for 3.
        let (t, m) = table(&[2, 0, 1]);
        let d = Dests::new(&t, &m);
        assert_eq!(pick(d, 0, 0), Some(0));
        assert_eq!(pick(d, 2, 2), Some(0));
        assert_eq!(pick(d, 3, 3), Some(2));
        // Equal load (none): the first draw.
        assert_eq!(pick(d, 3, 0), Some(2));
        assert_eq!(pick(d, 0, 3), Some(0));
        assert_eq!(Twos::new().name(), "twos");
    }

    #[test]
    fn test_less_loaded_by_weight_wins() {
        let (mut t, m) = table(&[2, 1]);
        t[0].as_mut().unwrap().active_conns = 1; // 256 / 2 = 128
        t[1].as_mut().unwrap().inactive_conns = 100; // 100 / 1
        let d = Dests::new(&t, &m);
        assert_eq!(pick(d, 0, 3), Some(1));
        assert_eq!(pick(d, 3, 0), Some(1));
        t[1].as_mut().unwrap().inactive_conns = 128; // a tie: the first draw
        let d = Dests::new(&t, &m);
        assert_eq!(pick(d, 0, 3), Some(0));
        assert_eq!(pick(d, 3, 0), Some(1));
    }

    #[test]
    fn test_single_and_none() {
        let (mut t, m) = table(&[3, 7, 0]);
        t[1].as_mut().unwrap().overloaded = true;
        for r in [0, 1, 2, 3, 0xffff_ffff, 0x1234_5678] {
            assert_eq!(sched(&t, &m, r), Some(0));
        }
        t[0].as_mut().unwrap().overloaded = true;
        assert_eq!(sched(&t, &m, 5), None);
        let (t, m) = table(&[]);
        assert_eq!(sched(&t, &m, 5), None);
    }

    #[test]
    fn test_draws_in_range_and_distinct_sources() {
        for r in [0u32, 1, 7, 0xdead_beef, u32::MAX] {
            let (a, b) = draws(r, 10);
            assert!(a <= 10 && b <= 10);
        }
        // The two draws are not the same number (they would be, from one source).
        let same = (0..1000u32).filter(|&r| {
            let (a, b) = draws(r.wrapping_mul(2_654_435_761), 99);
            a == b
        });
        assert!(same.count() < 50);
    }

    proptest! {
        #[test]
        fn prop_available_and_deterministic(
            ds in proptest::collection::vec((0u32..8, 0u32..3, 0u32..300, any::<bool>()), 0..10),
            random in any::<u32>(),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.inactive_conns, s.overloaded) = (d.1, d.2, d.3);
            }
            let got = sched(&t, &m, random);
            prop_assert_eq!(sched(&t, &m, random), got);
            let any_avail = t.iter().flatten().any(|d| d.is_available());
            prop_assert_eq!(got.is_some(), any_avail);
            if let Some(g) = got {
                prop_assert!(t[g as usize].unwrap().is_available());
            }
        }

        #[test]
        fn prop_draw_is_weighted(
            ds in proptest::collection::vec((0u32..8, any::<bool>()), 1..8),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                slot.as_mut().unwrap().overloaded = d.1;
            }
            let avail: Vec<usize> =
                (0..t.len()).filter(|&i| t[i].unwrap().is_available()).collect();
            let total: u64 = avail.iter().map(|&i| u64::from(t[i].unwrap().weight)).sum();
            // With equal loads the first draw is the choice: over every r in 0..=T each
            // server is drawn weight times, the first available once more.
            let mut count = std::vec![0u64; t.len()];
            for r in 0..=total {
                if let Some(g) = pick(Dests::new(&t, &m), r, r) {
                    count[g as usize] += 1;
                }
            }
            let mut want: Vec<u64> = t.iter().map(|d| {
                let d = d.unwrap();
                if d.is_available() { u64::from(d.weight) } else { 0 }
            }).collect();
            if let Some(&first) = avail.first() {
                want[first] += 1;
            }
            prop_assert_eq!(count, want);
        }
    }
}
