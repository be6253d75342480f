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
use crate::service::{DestId, RealServer};
use core::ops::ControlFlow;

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

/// The first available server at or after list position `from` with `sum` at least `r`,
/// where `sum` (updated) adds up the available weights from the start of the walk,
/// through that server: its position and itself.
#[inline(always)]
fn draw<'a>(
    table: &'a [Option<RealServer>],
    members: &[DestId],
    from: usize,
    sum: &mut u64,
    r: u64,
) -> Option<(usize, &'a RealServer)> {
    let rest = members.get(from..).unwrap_or(&[]);
    let found = super::try_each_at(rest, |p, id| {
        if let Some(d) = super::not_overloaded(table, id) {
            *sum += u64::from(d.weight);
            if *sum >= r {
                // Once `sum` reaches `r` this holds at every later step, until a server
                // of weight above 0 (available) is found.
                super::cold();
                if d.weight != 0 {
                    return ControlFlow::Break((from + p, d));
                }
            }
        }
        ControlFlow::Continue(())
    });
    match found {
        ControlFlow::Break(c) => Some(c),
        ControlFlow::Continue(()) => None,
    }
}

/// The kernel's walk for draws `r1` and `r2` (each in `0..=T`), then the comparison.
///
/// The kernel subtracts each available server's weight from `r` (saturating at 0 here)
/// and draws the first server that brings it to 0: after the servers up to `i`, `r` is
/// `max(0, r - S(i))` with `S(i)` the sum of the available weights up to `i`
/// inclusive, so the draw is the first available server with `S(i) >= r`. `S` only
/// grows: one walk finds the draw of the smaller `r`, then goes on (from that server,
/// which may be the other draw too) to the draw of the larger.
fn pick(dests: Dests<'_>, r1: u64, r2: u64) -> Option<DestId> {
    let (table, members) = dests.parts();
    let (lo, hi) = (r1.min(r2), r1.max(r2));
    let mut sum = 0u64;
    let c_lo = draw(table, members, 0, &mut sum, lo);
    let c_hi = match c_lo {
        Some(c) if sum >= hi => Some(c),
        Some((p, _)) => draw(table, members, p + 1, &mut sum, hi),
        None => None,
    };
    let (c1, c2) = if r1 <= r2 { (c_lo, c_hi) } else { (c_hi, c_lo) };
    // (id, weight, overhead) of each draw.
    let entry = |c: Option<(usize, &RealServer)>| {
        let (p, d) = c?;
        Some((
            *members.get(p)?,
            u64::from(d.weight),
            u64::from(d.conn_overhead()),
        ))
    };
    let (c1, c2) = (entry(c1), entry(c2));
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
        let (table, members) = dests.parts();
        // The sum of the available weights (weight 0 adds nothing).
        let mut total = 0u64;
        super::each_at(members, |_, id| {
            if let Some(d) = super::not_overloaded(table, id) {
                total += u64::from(d.weight);
            }
        });
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
    use crate::sched::testutil::{arb_dests, input, table};
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

    /// The walk as it was before it was unrolled (`Dests::iter`, both draws subtracted
    /// at every step): the reference the two-stage walk must agree with.
    fn reference_pick(dests: Dests<'_>, mut r1: u64, mut r2: u64) -> Option<DestId> {
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
        match (c1, c2) {
            (Some((_, w1, oh1)), Some((id2, w2, oh2))) if w2 * oh1 > w1 * oh2 => Some(id2),
            (Some((id1, _, _)), _) => Some(id1),
            (None, c2) => c2.map(|c| c.0),
        }
    }

    /// The schedule as it was, with [`reference_pick`].
    fn reference(dests: Dests<'_>, random: u32) -> Option<DestId> {
        let total: u64 = dests
            .iter()
            .filter(|(_, d)| d.is_available())
            .map(|(_, d)| u64::from(d.weight))
            .sum();
        if total == 0 {
            return None;
        }
        let (r1, r2) = draws(random, total);
        reference_pick(dests, r1, r2)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn prop_same_as_plain_walk(
            (t, m) in arb_dests(),
            random in any::<u32>(),
            r in (any::<u64>(), any::<u64>(), 0u64..40, 0u64..40),
        ) {
            let d = Dests::new(&t, &m);
            prop_assert_eq!(sched(&t, &m, random), reference(d, random));
            // Draws anywhere, past the total included.
            prop_assert_eq!(pick(d, r.0, r.1), reference_pick(d, r.0, r.1));
            prop_assert_eq!(pick(d, r.2, r.3), reference_pick(d, r.2, r.3));
            prop_assert_eq!(pick(d, r.2, r.0), reference_pick(d, r.2, r.0));
        }
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
