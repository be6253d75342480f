//! Round robin (`rr`, the kernel's `ip_vs_rr.c`).
//!
//! The scheduler remembers the list position of the server it chose last and gives the
//! next connection to the first available server after it, wrapping round the end of
//! the list; the last server chosen is tried last, so it is chosen again when it is the
//! only available one. Servers of weight 0 or overloaded are skipped (the kernel tests
//! the same two conditions).
//!
//! On a change of the list ([`Scheduler::update`]) the position follows the server it
//! named, wherever it now is. When that server was removed, the position moves to the
//! list slot before it, so the server that followed it is next, as the kernel's
//! `ip_vs_rr_del_dest` does by stepping back to the previous entry; a removed first
//! server sends the position back to the head of the list.
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Rr::schedule`]): O(n) in the number of servers, looking at each at
//!   most once; no allocation, no panic; `None` only when no server is available.
//! - Updating ([`Rr::update`]): O(n).
//! - The state is one list position and the id found there: a few bytes, `Copy`.

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The round-robin scheduler (`rr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rr {
    /// List position and id of the server chosen last; `None` is the list head (nothing
    /// chosen yet), as the kernel's `sched_data` pointing at `svc->destinations`.
    last: Option<(usize, DestId)>,
}

impl Rr {
    /// A round-robin scheduler positioned at the head of the list.
    pub const fn new() -> Self {
        Rr { last: None }
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn update(&mut self, dests: Dests<'_>) {
        let Some((pos, id)) = self.last else {
            return;
        };
        // The server chosen last is still there: follow it.
        if let Some(p) = (0..dests.len()).find(|&p| matches!(dests.get(p), Some((d, _)) if d == id))
        {
            self.last = Some((p, id));
            return;
        }
        // It was removed: step back to the slot before it, so that the server that
        // followed it comes next (a removed head restarts at the list head).
        self.last = match pos.checked_sub(1) {
            Some(prev) if prev < dests.len() => dests.get(prev).map(|(pid, _)| (prev, pid)),
            _ => None,
        };
    }

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        let n = dests.len();
        // The scan starts after the last one chosen and ends on it (kernel: two passes
        // of the list, the second stopping at `last`).
        let start = match self.last {
            Some((p, _)) if p < n => p + 1,
            _ => 0,
        };
        for i in 0..n {
            let mut pos = start + i;
            if pos >= n {
                pos -= n;
            }
            if let Some((id, d)) = dests.get(pos)
                && d.is_available()
            {
                self.last = Some((pos, id));
                lvs_trace!("rr: server {} weight {}", id, d.weight);
                return Some(id);
            }
        }
        lvs_trace!("rr: no destination available");
        None
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{input, table};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn run(
        s: &mut Rr,
        t: &[Option<crate::service::RealServer>],
        m: &[DestId],
        k: usize,
    ) -> Vec<Option<DestId>> {
        (0..k)
            .map(|_| s.schedule(Dests::new(t, m), &input(1, 1, 0)))
            .collect()
    }

    #[test]
    fn test_cycles_in_list_order() {
        let (t, m) = table(&[1, 5, 1]);
        let mut s = Rr::new();
        s.update(Dests::new(&t, &m));
        assert_eq!(s.name(), "rr");
        let got = run(&mut s, &t, &m, 7);
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn test_skips_weight_zero_and_overloaded() {
        let (mut t, m) = table(&[1, 0, 1, 1]);
        t[2].as_mut().unwrap().overloaded = true;
        let mut s = Rr::new();
        s.update(Dests::new(&t, &m));
        assert_eq!(run(&mut s, &t, &m, 4), [0, 3, 0, 3].map(Some));
    }

    #[test]
    fn test_only_one_available_is_chosen_again() {
        let (t, m) = table(&[0, 3, 0]);
        let mut s = Rr::new();
        assert_eq!(run(&mut s, &t, &m, 3), [1, 1, 1].map(Some));
    }

    #[test]
    fn test_empty_and_unavailable() {
        let mut s = Rr::new();
        let (t, m) = table(&[]);
        s.update(Dests::new(&t, &m));
        assert_eq!(s.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
        let (mut t, m) = table(&[0, 2]);
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(s.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
        // Nothing chosen: the position did not move.
        assert_eq!(s, Rr::new());
    }

    #[test]
    fn test_update_follows_the_last_server() {
        let (t, _) = table(&[1, 1, 1, 1]);
        let mut s = Rr::new();
        let m = [0, 1, 2, 3];
        assert_eq!(run(&mut s, &t, &m, 2), [0, 1].map(Some));
        // Reordered: 1 is now at position 3, so the next is at position 0 again.
        let m2 = [3, 2, 0, 1];
        s.update(Dests::new(&t, &m2));
        assert_eq!(run(&mut s, &t, &m2, 2), [3, 2].map(Some));
    }

    #[test]
    fn test_update_after_removing_the_last_server() {
        let (t, _) = table(&[1, 1, 1, 1]);
        let mut s = Rr::new();
        let m = [0, 1, 2, 3];
        assert_eq!(run(&mut s, &t, &m, 3), [0, 1, 2].map(Some));
        // 2 removed: the server after it (3) is next, as in the kernel.
        let m2 = [0, 1, 3];
        s.update(Dests::new(&t, &m2));
        assert_eq!(run(&mut s, &t, &m2, 2), [3, 0].map(Some));
        // The head (0) chosen last, then removed: restart at the new head.
        let m3 = [1, 3];
        s.update(Dests::new(&t, &m3));
        assert_eq!(run(&mut s, &t, &m3, 1), [1].map(Some));
        // Everything removed: back to the head; a stale position never panics.
        s.update(Dests::new(&t, &[]));
        assert_eq!(s, Rr::new());
        let mut stale = Rr { last: Some((9, 9)) };
        assert_eq!(run(&mut stale, &t, &m3, 1), [1].map(Some));
    }

    proptest! {
        #[test]
        fn prop_each_available_once_per_cycle(
            ws in proptest::collection::vec((0u32..4, any::<bool>()), 0..10),
            warmup in 0usize..10,
        ) {
            let weights: Vec<u32> = ws.iter().map(|w| w.0).collect();
            let (mut t, m) = table(&weights);
            for (slot, w) in t.iter_mut().zip(&ws) {
                slot.as_mut().unwrap().overloaded = w.1;
            }
            let avail: Vec<DestId> = m
                .iter()
                .copied()
                .filter(|&i| t[i as usize].unwrap().is_available())
                .collect();
            let mut s = Rr::new();
            s.update(Dests::new(&t, &m));
            run(&mut s, &t, &m, warmup);
            let got = run(&mut s, &t, &m, avail.len());
            let mut got: Vec<DestId> = got.into_iter().map(|g| g.unwrap()).collect();
            got.sort_unstable();
            prop_assert_eq!(got, avail.clone());
            if avail.is_empty() {
                prop_assert_eq!(s.schedule(Dests::new(&t, &m), &input(1, 1, 0)), None);
            }
        }
    }
}
