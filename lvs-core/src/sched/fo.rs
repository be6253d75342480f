//! Weighted failover (`fo`, the kernel's `ip_vs_fo.c`).
//!
//! Every new connection goes to the available server (weight above 0, not overloaded)
//! of highest weight; on a tie the first in list order wins (a later server replaces the
//! choice only with a strictly higher weight, as in the kernel). Lowering a server's
//! weight, or its overload, fails over to the next heaviest. Connection counts play no
//! part.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Fo::schedule`]): one pass over the servers, O(n); no state, no
//!   allocation, no panic; `None` only when no server is available.

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The weighted failover scheduler (`fo`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fo;

impl Fo {
    /// The weighted failover scheduler.
    pub const fn new() -> Self {
        Fo
    }
}

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        // (list position, weight) of the heaviest available server so far; weight 0 is
        // "none yet". An available server has a weight above 0, so the first replaces
        // "none yet", a later one only with a strictly higher weight, and one of weight 0
        // never.
        let (table, members) = dests.parts();
        let mut best: (usize, u32) = (0, 0);
        super::each_at(members, |p, id| {
            if let Some(d) = super::not_overloaded(table, id)
                && d.weight > best.1
            {
                super::replace(&mut best, (p, d.weight));
            }
        });
        let (bpos, hw) = best;
        let bid = members.get(bpos).copied().filter(|_| hw != 0);
        match bid {
            Some(id) => lvs_trace!("fo: server {} weight {}", id, hw),
            None => lvs_trace!("fo: no destination available"),
        }
        bid
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{arb_dests, input, table};
    use crate::service::RealServer;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pick(t: &[Option<RealServer>], m: &[DestId]) -> Option<DestId> {
        let mut s = Fo::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_highest_weight_then_failover() {
        let (mut t, m) = table(&[2, 5, 5, 3]);
        t[1].as_mut().unwrap().active_conns = 10_000;
        // A tie at 5: the first; connections do not matter.
        assert_eq!(pick(&t, &m), Some(1));
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().weight = 0;
        assert_eq!(pick(&t, &m), Some(3));
        assert_eq!(Fo::new().name(), "fo");
    }

    #[test]
    fn test_none() {
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
        let (mut t, m) = table(&[0, 4]);
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        let mut best: Option<(DestId, u32)> = None;
        let mut hw = 0u32;
        for (id, d) in dests.iter() {
            if d.is_available() && d.weight > hw {
                best = Some((id, d.weight));
                hw = d.weight;
            }
        }
        best.map(|(id, _)| id)
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_first_of_highest_available(
            ds in proptest::collection::vec((0u32..5, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                slot.as_mut().unwrap().overloaded = d.1;
            }
            let avail = || t.iter().flatten().enumerate().filter(|(_, d)| d.is_available());
            let want = avail()
                .map(|(_, d)| d.weight)
                .max()
                .and_then(|hw| avail().find(|(_, d)| d.weight == hw))
                .map(|(i, _)| i as DestId);
            prop_assert_eq!(pick(&t, &m), want);
        }
    }
}
