//! Weighted overflow (`ovf`, the kernel's `ip_vs_ovf.c`).
//!
//! Connections go to the available server (weight above 0, not overloaded) of highest
//! weight as long as its active connections do not exceed its weight; a server with
//! more active connections than its weight is passed over, so traffic overflows to the
//! next heaviest. On a tie the first in list order wins. Only active connections count
//! (the kernel notes the scheduler may not suit UDP, whose connections are inactive).
//!
//! The kernel skips a server when `activeconns > weight`, so a server of weight `w`
//! still takes a connection with exactly `w` active: it can reach `w + 1` active
//! connections before it overflows. This module keeps that test.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Ovf::schedule`]): one pass over the servers, O(n); no state, no
//!   allocation, no panic; `None` when no server is available or every one is over its
//!   weight.

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The weighted overflow scheduler (`ovf`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ovf;

impl Ovf {
    /// The weighted overflow scheduler.
    pub const fn new() -> Self {
        Ovf
    }
}

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        // (list position, weight) of the heaviest eligible server so far; weight 0 is
        // "none yet". An eligible server (available, active connections not above its
        // weight) has a weight above 0, so the first replaces "none yet", a later one
        // only with a strictly higher weight, and one of weight 0 never.
        let (table, members) = dests.parts();
        let mut best: (usize, u32) = (0, 0);
        super::each_at(members, |p, id| {
            if let Some(d) = super::not_overloaded(table, id)
                && d.weight > best.1
                && d.active_conns <= d.weight
            {
                super::replace(&mut best, (p, d.weight));
            }
        });
        let (bpos, hw) = best;
        let bid = members.get(bpos).copied().filter(|_| hw != 0);
        match bid {
            Some(id) => lvs_trace!("ovf: server {} weight {}", id, hw),
            None => lvs_trace!("ovf: no destination available"),
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
        let mut s = Ovf::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_overflows_past_weight() {
        let (mut t, m) = table(&[1, 3, 3, 2]);
        assert_eq!(pick(&t, &m), Some(1));
        // Exactly at its weight: still chosen (the kernel skips only active > weight).
        t[1].as_mut().unwrap().active_conns = 3;
        t[1].as_mut().unwrap().inactive_conns = 1000;
        assert_eq!(pick(&t, &m), Some(1));
        // Over it: the next of the same weight, then the lighter ones.
        t[1].as_mut().unwrap().active_conns = 4;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().active_conns = 4;
        assert_eq!(pick(&t, &m), Some(3));
        t[3].as_mut().unwrap().active_conns = 3;
        assert_eq!(pick(&t, &m), Some(0));
        t[0].as_mut().unwrap().active_conns = 2;
        // All full.
        assert_eq!(pick(&t, &m), None);
        assert_eq!(Ovf::new().name(), "ovf");
    }

    #[test]
    fn test_weight_zero_overloaded_none() {
        let (mut t, m) = table(&[0, 5, 1]);
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), Some(2));
        t[2].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        let mut best: Option<(DestId, u32)> = None;
        for (id, d) in dests.iter() {
            if !d.is_available() || d.active_conns > d.weight {
                continue;
            }
            match best {
                Some((_, hw)) if d.weight <= hw => {}
                _ => best = Some((id, d.weight)),
            }
        }
        best.map(|(id, _)| id)
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_first_of_highest_not_full(
            ds in proptest::collection::vec((0u32..5, 0u32..7, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.overloaded) = (d.1, d.2);
            }
            let ok = || {
                t.iter()
                    .flatten()
                    .enumerate()
                    .filter(|(_, d)| d.is_available() && d.active_conns <= d.weight)
            };
            let want = ok()
                .map(|(_, d)| d.weight)
                .max()
                .and_then(|hw| ok().find(|(_, d)| d.weight == hw))
                .map(|(i, _)| i as DestId);
            prop_assert_eq!(pick(&t, &m), want);
        }
    }
}
