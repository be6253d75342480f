//! Never queue (`nq`, the kernel's `ip_vs_nq.c`).
//!
//! Two speeds: walking the list, the first available server (weight above 0, not
//! overloaded) with no active connection is chosen at once, even if a server earlier in
//! the list would have a shorter expected delay. When every available server is busy the
//! rule is [`sed`](super::sed)'s: least `(active + 1) / weight`, compared by
//! cross-multiplication in `u64`, ties to the first in list order. Inactive connections
//! do not count (a server with only inactive connections is idle).
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Nq::schedule`]): at most one pass over the servers, O(n); no state,
//!   no allocation, no panic; `None` only when no server is available.

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;
use core::ops::ControlFlow;

/// The never-queue scheduler (`nq`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nq;

impl Nq {
    /// The never-queue scheduler.
    pub const fn new() -> Self {
        Nq
    }
}

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        // (list position, overhead, weight) of the choice so far, weight 0 meaning "none
        // yet", and the rule by which a server replaces it, as in `least_by_weight`
        // (whose comment says why that is the kernel's rule, edges included).
        let (table, members) = dests.parts();
        let mut best: (usize, u64, u64) = (0, 1, 0);
        let idle = super::try_each_at(members, |p, id| {
            if let Some(d) = super::not_overloaded(table, id) {
                if d.active_conns == 0 {
                    // Taken at most once a decision (or a quiesced server, skipped below).
                    super::cold();
                    if d.weight != 0 {
                        return ControlFlow::Break((id, d.weight));
                    }
                }
                // The kernel's ip_vs_nq_dest_overhead: active connections plus the new
                // one, at most 2^32, so no product reaches 2^64.
                let (doh, dw) = (u64::from(d.active_conns) + 1, u64::from(d.weight));
                if best.1 * dw > doh * best.2 {
                    super::replace(&mut best, (p, doh, dw));
                }
            }
            ControlFlow::Continue(())
        });
        if let ControlFlow::Break((id, w)) = idle {
            lvs_trace!("nq: idle server {} weight {}", id, w);
            return Some(id);
        }
        let (lpos, loh, lw) = best;
        let lid = members.get(lpos).copied().filter(|_| lw != 0);
        match lid {
            Some(id) => lvs_trace!("nq: server {} overhead {} weight {}", id, loh, lw),
            None => lvs_trace!("nq: no destination available"),
        }
        lid
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::sed::Sed;
    use crate::sched::testutil::{arb_dests, input, plain_least_by_weight, table};
    use crate::service::RealServer;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pick(t: &[Option<RealServer>], m: &[DestId]) -> Option<DestId> {
        let mut s = Nq::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_idle_server_first() {
        // Server 0: (1+1)/10 is the shortest expected delay (sed's choice), but server 1
        // is idle and wins; inactive connections do not make it busy.
        let (mut t, m) = table(&[10, 1, 1]);
        t[0].as_mut().unwrap().active_conns = 1;
        t[1].as_mut().unwrap().inactive_conns = 40;
        assert_eq!(
            Sed::new().schedule(Dests::new(&t, &m), &input(1, 1, 0)),
            Some(0)
        );
        assert_eq!(pick(&t, &m), Some(1));
        // Every server idle: the first.
        t[0].as_mut().unwrap().active_conns = 0;
        assert_eq!(pick(&t, &m), Some(0));
        assert_eq!(Nq::new().name(), "nq");
    }

    #[test]
    fn test_busy_falls_back_to_sed() {
        let (mut t, m) = table(&[10, 1, 2]);
        t[0].as_mut().unwrap().active_conns = 9; // 10/10 = 1
        t[1].as_mut().unwrap().active_conns = 1; // 2/1
        t[2].as_mut().unwrap().active_conns = 1; // 2/2 = 1, tie: the first
        assert_eq!(pick(&t, &m), Some(0));
        t[0].as_mut().unwrap().active_conns = 10;
        assert_eq!(pick(&t, &m), Some(2));
    }

    #[test]
    fn test_weight_zero_overloaded_none() {
        // Idle, but weight 0 or overloaded: skipped.
        let (mut t, m) = table(&[0, 4, 1]);
        t[1].as_mut().unwrap().overloaded = true;
        t[2].as_mut().unwrap().active_conns = 7;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        // The first available idle server in list order, else sed's choice.
        let idle = dests
            .iter()
            .find(|(_, d)| d.is_available() && d.active_conns == 0);
        idle.map(|(id, _)| id)
            .or_else(|| plain_least_by_weight(dests, |d| u64::from(d.active_conns) + 1))
    }

    #[test]
    fn test_idle_but_quiesced_is_skipped() {
        // Weight 0 and idle: not available, so neither taken at once nor compared.
        let (mut t, m) = table(&[0, 2, 1]);
        t[1].as_mut().unwrap().active_conns = 5; // 6 / 2
        t[2].as_mut().unwrap().active_conns = 1; // 2 / 1
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().active_conns = 0;
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), Some(1));
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_idle_first_else_sed(
            ds in proptest::collection::vec((0u32..6, 0u32..4, 0u32..10, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.inactive_conns, s.overloaded) = (d.1, d.2, d.3);
            }
            let idle = t
                .iter()
                .flatten()
                .position(|d| d.is_available() && d.active_conns == 0)
                .map(|i| i as DestId);
            let want = idle.or_else(|| Sed::new().schedule(Dests::new(&t, &m), &input(1, 1, 0)));
            prop_assert_eq!(pick(&t, &m), want);
        }
    }
}
