//! Shortest expected delay (`sed`, the kernel's `ip_vs_sed.c`).
//!
//! The expected delay of a new connection on a server is `(active + 1) / weight`: its
//! active connections plus the new one, over its weight (its service rate). Inactive
//! connections do not count. The connection goes to the available server (weight above
//! 0, not overloaded) of least expected delay, compared by cross-multiplication in `u64`
//! (the kernel uses 32-bit unsigned products, which can wrap for very large counts and
//! weights; here none does). Ties go to the first in list order.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Sed::schedule`]): one pass over the servers, O(n); no state, no
//!   allocation, no panic; `None` only when no server is available.

use super::{Dests, SchedInput, Scheduler};
use crate::service::{DestId, RealServer};

/// The shortest-expected-delay scheduler (`sed`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sed;

impl Sed {
    /// The shortest-expected-delay scheduler.
    pub const fn new() -> Self {
        Sed
    }
}

/// The kernel's `ip_vs_sed_dest_overhead`: active connections plus the new one.
#[inline]
fn overhead(d: &RealServer) -> u64 {
    u64::from(d.active_conns) + 1
}

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        super::least_by_weight::<false>(dests, "sed", overhead)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{arb_dests, input, plain_least_by_weight, table};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pick(t: &[Option<RealServer>], m: &[DestId]) -> Option<DestId> {
        let mut s = Sed::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_expected_delay() {
        // All idle: 1/1, 1/3, 1/2: the heaviest wins (wlc would take the first).
        let (mut t, m) = table(&[1, 3, 2]);
        assert_eq!(pick(&t, &m), Some(1));
        // (2+1)/3 = 1 against (0+1)/1 = 1 and (0+1)/2: the weight-2 server.
        t[1].as_mut().unwrap().active_conns = 2;
        assert_eq!(pick(&t, &m), Some(2));
        // (1+1)/2 = 1 now ties with 1/1 and 3/3: the first, server 0.
        t[2].as_mut().unwrap().active_conns = 1;
        assert_eq!(pick(&t, &m), Some(0));
        // Inactive connections are not counted.
        t[0].as_mut().unwrap().inactive_conns = 1000;
        assert_eq!(pick(&t, &m), Some(0));
        assert_eq!(Sed::new().name(), "sed");
    }

    #[test]
    fn test_weight_zero_overloaded_none() {
        let (mut t, m) = table(&[0, 9, 1]);
        t[1].as_mut().unwrap().overloaded = true;
        t[2].as_mut().unwrap().active_conns = 50;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
    }

    #[test]
    fn test_large_values_do_not_overflow() {
        let (mut t, m) = table(&[u32::MAX, 1]);
        t[0].as_mut().unwrap().active_conns = u32::MAX;
        // 2^32 / (2^32 - 1) > 1 / 1.
        assert_eq!(pick(&t, &m), Some(1));
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        plain_least_by_weight(dests, |d| u64::from(d.active_conns) + 1)
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_minimal_available(
            ds in proptest::collection::vec((0u32..6, 0u32..10, 0u32..10, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.inactive_conns, s.overloaded) = (d.1, d.2, d.3);
            }
            let delay = |d: &RealServer| f64::from(d.active_conns + 1) / f64::from(d.weight);
            let avail: Vec<_> =
                t.iter().flatten().enumerate().filter(|(_, d)| d.is_available()).collect();
            let want = avail
                .iter()
                .find(|(_, d)| avail.iter().all(|(_, e)| {
                    // Exact: compare cross products, not the rounded quotients.
                    f64::from(d.active_conns + 1) * f64::from(e.weight)
                        <= f64::from(e.active_conns + 1) * f64::from(d.weight)
                }))
                .map(|(i, _)| *i as DestId);
            let got = pick(&t, &m);
            prop_assert_eq!(got, want);
            if let Some(g) = got {
                let min = avail.iter().map(|(_, d)| delay(d)).fold(f64::INFINITY, f64::min);
                prop_assert!((delay(&t[g as usize].unwrap()) - min).abs() < 1e-9);
            }
        }
    }
}
