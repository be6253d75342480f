//! Weighted least connections (`wlc`, the kernel's `ip_vs_wlc.c`; ipvsadm's default).
//!
//! The connection goes to the available server (weight above 0, not overloaded) with the
//! smallest `overhead / weight`, where the overhead is `active * 256 + inactive`
//! ([`RealServer::conn_overhead`]). As in the kernel there is no division: a later server
//! `d` replaces the current choice `l` when `overhead(l) * weight(d) > overhead(d) *
//! weight(l)`, computed in `u64`, where no product of two `u32` overflows. Ties go to the
//! first in list order.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Wlc::schedule`]): one pass over the servers, O(n); no state, no
//!   allocation, no panic; `None` only when no server is available.
//!
//! [`RealServer::conn_overhead`]: crate::service::RealServer::conn_overhead

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The weighted least-connection scheduler (`wlc`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Wlc;

impl Wlc {
    /// The weighted least-connection scheduler.
    pub const fn new() -> Self {
        Wlc
    }
}

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        super::least_by_weight::<true>(dests, "wlc", super::conn_overhead_exact)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{arb_dests, input, plain_least_by_weight, table};
    use crate::service::RealServer;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pick(t: &[Option<RealServer>], m: &[DestId]) -> Option<DestId> {
        let mut s = Wlc::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_weighted_least_overhead() {
        let (mut t, m) = table(&[1, 3, 2]);
        t[0].as_mut().unwrap().active_conns = 1; // 256 / 1
        t[1].as_mut().unwrap().active_conns = 2; // 512 / 3 = 170.6
        t[2].as_mut().unwrap().active_conns = 1; // 256 / 2 = 128
        assert_eq!(pick(&t, &m), Some(2));
        // 256 / 2 against 384 / 3: a tie, the first in list order wins.
        t[1].as_mut().unwrap().active_conns = 1;
        t[1].as_mut().unwrap().inactive_conns = 128;
        assert_eq!(pick(&t, &m), Some(1));
        assert_eq!(Wlc::new().name(), "wlc");
    }

    #[test]
    fn test_all_idle_first_wins() {
        let (t, m) = table(&[1, 50, 2]);
        assert_eq!(pick(&t, &m), Some(0));
    }

    #[test]
    fn test_weight_zero_overloaded_none() {
        let (mut t, m) = table(&[0, 5, 1]);
        t[1].as_mut().unwrap().overloaded = true;
        t[2].as_mut().unwrap().active_conns = 1000;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
    }

    #[test]
    fn test_large_values_do_not_overflow() {
        let (mut t, m) = table(&[u32::MAX, u32::MAX - 1]);
        t[0].as_mut().unwrap().inactive_conns = u32::MAX;
        t[1].as_mut().unwrap().inactive_conns = u32::MAX - 2;
        // (2^32-1)/(2^32-1) = 1 > (2^32-3)/(2^32-2).
        assert_eq!(pick(&t, &m), Some(1));
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        plain_least_by_weight(dests, |d| u64::from(d.conn_overhead()))
    }

    #[test]
    fn test_capped_overheads_tie() {
        // Equal weights, both overheads capped at u32::MAX: a tie, the first wins,
        // though uncapped the second would be less loaded.
        let (mut t, m) = table(&[3, 3, 5]);
        t[0].as_mut().unwrap().active_conns = 1 << 25;
        t[1].as_mut().unwrap().active_conns = 1 << 24;
        t[2].as_mut().unwrap().active_conns = u32::MAX;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().weight = 3;
        assert_eq!(pick(&t, &m), Some(0));
        // Capped against uncapped: u32::MAX / 3 against (2^32 - 256) / 3.
        t[1].as_mut().unwrap().active_conns = (1 << 24) - 1;
        assert_eq!(pick(&t, &m), Some(1));
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_minimal_available(
            ds in proptest::collection::vec((0u32..6, 0u32..4, 0u32..600, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.inactive_conns, s.overloaded) = (d.1, d.2, d.3);
            }
            // Brute force with exact rationals: the first server of least load.
            let load = |d: &RealServer| {
                (f64::from(d.active_conns * 256 + d.inactive_conns), f64::from(d.weight))
            };
            let avail: Vec<_> =
                t.iter().flatten().enumerate().filter(|(_, d)| d.is_available()).collect();
            let want = avail
                .iter()
                .find(|(_, d)| {
                    let (oh, w) = load(d);
                    avail.iter().all(|(_, e)| {
                        let (eo, ew) = load(e);
                        oh * ew <= eo * w
                    })
                })
                .map(|(i, _)| *i as DestId);
            prop_assert_eq!(pick(&t, &m), want);
        }
    }
}
