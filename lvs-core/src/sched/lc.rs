//! Least connections (`lc`, the kernel's `ip_vs_lc.c`).
//!
//! The connection goes to the available server (weight above 0, not overloaded) with the
//! smallest overhead `active * 256 + inactive` ([`RealServer::conn_overhead`], the
//! kernel's `ip_vs_dest_conn_overhead`). Weights other than 0 play no part. On a tie the
//! first in list order wins: a later server replaces the current choice only when its
//! overhead is strictly smaller, as in the kernel.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Lc::schedule`]): one pass over the servers, O(n); no state, no
//!   allocation, no panic; `None` only when no server is available.
//!
//! [`RealServer::conn_overhead`]: crate::service::RealServer::conn_overhead

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The least-connection scheduler (`lc`). It has no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lc;

impl Lc {
    /// The least-connection scheduler.
    pub const fn new() -> Self {
        Lc
    }
}

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn update(&mut self, _dests: Dests<'_>) {}

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        // The least overhead so far, and its server; NONE (above every overhead) until
        // an available server is seen.
        const NONE: u64 = u64::MAX;
        let (table, members) = dests.parts();
        let mut best: (usize, u64) = (0, NONE);
        super::each_at(members, |p, id| {
            let Some(d) = super::not_overloaded(table, id) else {
                return;
            };
            // The kernel's rule: an available server replaces the choice when its
            // overhead `min(x, u32::MAX)` is below the least so far, `loh`. That is when
            // `x < loh`: `loh` is NONE or an overhead, at most u32::MAX, so if `x` is
            // capped only NONE is above the cap, and NONE is above every `x`; otherwise the
            // two are `x`.
            let x = super::conn_overhead_exact(d);
            if x < best.1 && d.weight != 0 {
                super::replace(&mut best, (p, x.min(u64::from(u32::MAX))));
            }
        });
        let (lpos, loh) = best;
        let lid = members.get(lpos).copied().filter(|_| loh != NONE);
        match lid {
            Some(id) => lvs_trace!("lc: server {} overhead {}", id, loh),
            None => lvs_trace!("lc: no destination available"),
        }
        lid
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{arb_dests, input, table};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pick(t: &[Option<crate::service::RealServer>], m: &[DestId]) -> Option<DestId> {
        let mut s = Lc::new();
        s.update(Dests::new(t, m));
        s.schedule(Dests::new(t, m), &input(1, 1, 0))
    }

    #[test]
    fn test_least_overhead_wins() {
        let (mut t, m) = table(&[1, 1, 1]);
        // 1 active (256) vs 255 inactive vs 2 active.
        t[0].as_mut().unwrap().active_conns = 1;
        t[1].as_mut().unwrap().inactive_conns = 255;
        t[2].as_mut().unwrap().active_conns = 2;
        assert_eq!(pick(&t, &m), Some(1));
        t[1].as_mut().unwrap().inactive_conns = 256;
        // A tie (256 and 256): the first in list order.
        assert_eq!(pick(&t, &m), Some(0));
        assert_eq!(Lc::new().name(), "lc");
    }

    #[test]
    fn test_weights_do_not_matter_but_zero_skips() {
        let (mut t, m) = table(&[100, 1, 0]);
        t[0].as_mut().unwrap().inactive_conns = 2;
        t[1].as_mut().unwrap().inactive_conns = 1;
        assert_eq!(pick(&t, &m), Some(1));
        // Weight 0: skipped though idle.
        assert_eq!(t[2].unwrap().conn_overhead(), 0);
    }

    #[test]
    fn test_overloaded_skipped_and_none() {
        let (mut t, m) = table(&[1, 1]);
        t[0].as_mut().unwrap().overloaded = true;
        t[1].as_mut().unwrap().inactive_conns = 9;
        assert_eq!(pick(&t, &m), Some(1));
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[]);
        assert_eq!(pick(&t, &m), None);
        let (t, m) = table(&[0, 0]);
        assert_eq!(pick(&t, &m), None);
    }

    /// The scan as it was before it was unrolled (`Dests::iter`, `is_available`,
    /// `Option` state): the reference the unrolled scan must agree with.
    fn reference(dests: Dests<'_>) -> Option<DestId> {
        let mut least: Option<(DestId, u32)> = None;
        for (id, d) in dests.iter() {
            if !d.is_available() {
                continue;
            }
            let doh = d.conn_overhead();
            match least {
                Some((_, loh)) if doh >= loh => {}
                _ => least = Some((id, doh)),
            }
        }
        least.map(|(id, _)| id)
    }

    #[test]
    fn test_capped_overheads_tie() {
        // Both overheads are capped at u32::MAX (2^24 active connections, or 2^24 - 1
        // and many inactive ones): a tie, the first wins, though uncapped the second
        // would be less.
        let (mut t, m) = table(&[1, 1]);
        t[0].as_mut().unwrap().active_conns = 1 << 24;
        t[1].as_mut().unwrap().active_conns = (1 << 24) - 1;
        t[1].as_mut().unwrap().inactive_conns = 256;
        assert_eq!(t[1].unwrap().conn_overhead(), u32::MAX);
        assert_eq!(pick(&t, &m), Some(0));
        t[1].as_mut().unwrap().inactive_conns = 254;
        assert_eq!(pick(&t, &m), Some(1));
    }

    crate::sched::testutil::prop_same_as_plain_scan!();

    proptest! {
        #[test]
        fn prop_minimal_available(
            ds in proptest::collection::vec((0u32..3, 0u32..4, 0u32..600, any::<bool>()), 0..10),
        ) {
            let weights: Vec<u32> = ds.iter().map(|d| d.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, d) in t.iter_mut().zip(&ds) {
                let s = slot.as_mut().unwrap();
                (s.active_conns, s.inactive_conns, s.overloaded) = (d.1, d.2, d.3);
            }
            let avail: Vec<_> =
                t.iter().flatten().enumerate().filter(|(_, d)| d.is_available()).collect();
            let want = avail
                .iter()
                .map(|(_, d)| d.active_conns * 256 + d.inactive_conns)
                .min()
                .and_then(|min| avail.iter().find(|(_, d)| d.conn_overhead() == min))
                .map(|(i, _)| *i as DestId);
            prop_assert_eq!(pick(&t, &m), want);
        }
    }
}
